/* test_fork.c: what a fork child keeps of the slab layer and the pool. A fork that took the
 * abandoned and pool locks gives its child the lists as they were; a fork that went on without
 * them (a signal handler's fork that interrupted their holder, lock.h) gives it none of them: its
 * SuperSlabs stay mapped and resolvable, and a slab of them that empties gives its units to
 * nobody (a leak), where walking a list half updated crashed (fork_handler nested). The children
 * here are simulated in this process: the steps of fork.c's prepare and child handlers, driven
 * from inside the pool's free-run walk, which holds the pool lock as an interrupted update does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core_test.h"

static int setup(void **state)
{
	(void)state;
	hak__init();
	return 0;
}

struct prepare_result {
	bool called, ok;
};

/* The prepare steps of a fork re-entered while the pool lock is held on this thread. */
static void prepare_inside_pool_lock(void *ctx, const struct hak_free_run *run)
{
	(void)run;
	struct prepare_result *r = ctx;
	if (r->called)
		return;
	r->called = true;
	assert_true(hak__fork_frame_begin()); /* trying: the pool lock is on this thread's list */
	r->ok = hak__slab_fork_prepare();
	hak__fork_release_all(); /* the abandoned lock, which it took */
}

/* A slab of a SuperSlab with free units left, and one block out of it. */
static struct hak_slab *slab_with_a_block_out(void **block)
{
	struct hak_slab *s = test_slab_acquire(hak__size_to_class(64), HAK_OWNER_ANY, 0);
	assert_non_null(s);
	struct hak_chain c;
	assert_int_equal(hak__slab_take(s, 1, &c), 1);
	*block = c.head;
	return s;
}

static void child_keeps_the_lists_of_a_fork_that_took_the_locks(void **state)
{
	(void)state;
	void *block;
	struct hak_slab *s = slab_with_a_block_out(&block);
	uint64_t live = hak__pool_live();
	assert_false(hak__fork_frame_begin()); /* a plain fork: nothing held */
	assert_true(hak__slab_fork_prepare());
	hak__fork_release_all(); /* (a real child re-makes them held: undefined in this process) */
	hak__slab_fork_child();
	assert_int_equal(hak__pool_live(), live);
	assert_int_equal(hak__pool_check(), live);
	hak__chain_return(hak_chain_of(block), NULL, NULL);
	hak__slab_release(s); /* back to its SuperSlab */
	assert_int_equal(hak__pool_check(), live);
}

static void child_forgets_the_lists_of_a_fork_without_the_pool_lock(void **state)
{
	(void)state;
	void *block;
	struct hak_slab *s = slab_with_a_block_out(&block);
	struct hak_superslab *ss = s->ss;
	assert_true(hak__pool_live() >= 1);
	struct prepare_result r = {false, false};
	hak__pool_free_runs_each(prepare_inside_pool_lock, &r);
	assert_true(r.called && r.ok);
	hak__slab_fork_child(); /* the pool lock was released meanwhile: re-made all the same */

	assert_int_equal(hak__pool_live(), 0); /* no list of the parent's */
	assert_int_equal(hak__pool_empty_count(), 0);
	assert_int_equal(hak__pool_check(), 0);
	assert_ptr_equal(hak__ss_lookup(block), ss); /* its blocks still resolve */
	hak__chain_return(hak_chain_of(block), NULL, NULL);
	uint64_t mapped = hak__pool_mapped_total();
	hak__slab_release(s); /* its units go to nobody */
	assert_int_equal(hak__pool_empty_count(), 0);
	assert_int_equal(hak__pool_check(), 0);

	/* A new slab comes from a new SuperSlab, never from the forgotten one. */
	struct hak_slab *t = test_slab_acquire(hak__size_to_class(64), HAK_OWNER_ANY, 0);
	assert_non_null(t);
	assert_ptr_not_equal(t->ss, ss);
	assert_int_equal(hak__pool_mapped_total(), mapped + 1);
	assert_int_equal(hak__pool_check(), 1);
	hak__slab_release(t);
	assert_int_equal(hak__pool_empty_count(), 1);
	assert_int_equal(test_release_empty(0), 1);
	assert_int_equal(hak__pool_check(), 0);
	assert_ptr_equal(hak__ss_lookup(block), ss); /* leaked, still mapped */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(child_keeps_the_lists_of_a_fork_that_took_the_locks),
		cmocka_unit_test(child_forgets_the_lists_of_a_fork_without_the_pool_lock),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
