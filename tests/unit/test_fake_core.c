/* test_fake_core.c: the fake core of the plugin tests (fake_core.h) itself: its table is
 * complete, its models follow the header's words (release_empty's floor, max and age;
 * trim_pass's purging rule; chain_return's on_slab_free), and it catches a policy breaking
 * the rules (the test plays a broken plugin, then forgives it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "core_services.h"
#include "fake_core.h"

static const struct hak_core_api *const core = &fake_core_api;

/* Every service of the list is there, and HAK_CORE_HAS says so. */
static void table_is_complete(void **unused)
{
	(void)unused;
	assert_int_equal(core->abi_major, HAK_POLICY_ABI_MAJOR);
	assert_int_equal(core->size, sizeof(struct hak_core_api));
#define HAS(name) assert_true(HAK_CORE_HAS(core, name));
	HAK_CORE_SERVICES(HAS)
#undef HAS
}

static void calls_are_recorded_in_order(void **unused)
{
	(void)unused;
	core->now_ns();
	core->release_empty(2, 0, ~0u);
	core->set_parking(1, 2);
	core->log("hello %d", 7);
	assert_int_equal(fake_ncalls(), 4);
	assert_string_equal(fake_trace(), "now_ns()=1000000000 release_empty(2,0,~0u)=0 set_parking(1,2) log()");
	assert_string_equal(fake_actions(), "release_empty(2,0,~0u)=0 set_parking(1,2) log()");
	FAKE_ASSERT_CALL(fake_call_at(1), "release_empty", 2, 0, ~0u);
	FAKE_ASSERT_CALL(fake_nth("set_parking", 0), "set_parking", 1, 2);
	assert_null(fake_nth("set_parking", 1));
	assert_string_equal(fake_call_at(3)->text, "hello 7");
	assert_string_equal(fake_last_log(), "hello 7");
	assert_int_equal(fake_count("release_empty"), 1);
	fake_clear();
	assert_int_equal(fake_ncalls(), 0);
	assert_string_equal(fake_actions(), "");
}

/* Oldest first, never below the floor, at most max, only those empty long enough. */
static void release_empty_follows_the_header(void **unused)
{
	(void)unused;
	fake_add_empty(2);
	fake_advance(1000);
	fake_add_empty(3);
	assert_int_equal(core->empty_count(), 5);
	assert_int_equal(core->release_empty(0, 500, ~0u), 2); /* the three young ones stay */
	assert_int_equal(core->release_empty(1, 0, 1), 1);     /* max */
	assert_int_equal(core->release_empty(1, 0, ~0u), 1);   /* floor */
	assert_int_equal(core->release_empty(1, 0, ~0u), 0);
	assert_int_equal(fake_empties(), 1);
	assert_int_equal(fake_released_total(), 4);
	assert_int_equal(core->live_superslabs(), 1);
	struct hak_heap_facts f = {.size = sizeof f};
	core->heap_facts(&f);
	assert_int_equal(f.superslabs_empty, 1);
	assert_int_equal(f.now_ns, 1000001000);
	assert_int_equal(f.oldest_empty_ns, 1000001000);
}

/* trim_pass: beyond keep at once; with PURGE also what was empty at the previous purging pass. */
static void trim_pass_purges_what_stayed_empty(void **unused)
{
	(void)unused;
	fake.trim_large = 3;
	fake_add_empty(4);
	struct hak_trim_result r = core->trim_pass(1, HAK_TRIM_PURGE);
	assert_int_equal(r.superslabs_released, 3);
	assert_int_equal(r.large_released, 3);
	fake_add_empty(1);
	r = core->trim_pass(5, 0); /* not a purging pass: nothing */
	assert_int_equal(r.superslabs_released, 0);
	r = core->trim_pass(5, HAK_TRIM_PURGE); /* the one seen at the first pass */
	assert_int_equal(r.superslabs_released, 1);
	r = core->trim_pass(5, HAK_TRIM_PURGE);
	assert_int_equal(r.superslabs_released, 1);
	assert_int_equal(fake_empties(), 0);
}

static void count_run(void *ctx, const struct hak_free_run *run)
{
	uint64_t *bytes = ctx;
	*bytes += run->dirty ? run->bytes : 0;
}

/* The facts a trim policy decides on come from the script; a small facts struct (a plugin
 * built against an older header) gets only what fits. */
static void facts_come_from_the_script(void **unused)
{
	(void)unused;
	fake.process_rss = 12345;
	fake.facts.dirty_bytes = 1 << 20;
	fake.facts.large_cached_bytes = 4096;
	fake.runs[0] = (struct hak_free_run){NULL, 65536, 5, 1, 0, NULL};
	fake.runs[1] = (struct hak_free_run){NULL, 131072, 7, 0, 1, NULL};
	fake.runs[2] = (struct hak_free_run){NULL, 65536, 9, 1, 1, NULL};
	fake.nruns = 3;
	fake.local_frees[4] = 99;
	assert_int_equal(core->process_rss(), 12345);
	uint64_t dirty = 0;
	core->free_runs_each(count_run, &dirty);
	assert_int_equal(dirty, 131072);
	struct hak_heap_facts f = {.size = sizeof f};
	core->heap_facts(&f);
	assert_int_equal(f.dirty_bytes, 1 << 20);
	assert_int_equal(f.large_cached_bytes, 4096);
	struct hak_heap_facts small;
	memset(&small, 0xee, sizeof small);
	small.size = offsetof(struct hak_heap_facts, superslabs_empty);
	core->heap_facts(&small);
	assert_int_equal(small.now_ns, 1000000000);
	assert_int_equal(small.superslabs_empty, 0xeeeeeeeeeeeeeeeeull); /* past its size: untouched */
	uint64_t frees[8];
	core->class_local_frees(frees, 8);
	assert_int_equal(frees[4], 99);
	assert_int_equal(frees[3], 0);
	assert_string_equal(fake_actions(), ""); /* all of them queries */
	assert_int_equal(fake_ncalls(), 5);
}

static void on_free(void *ctx, hak_slab *s)
{
	hak_slab **seen = ctx;
	*seen = s;
	core->slab_release(s); /* a service from inside a service's callback */
}

/* Blocks move as the core moves them; on_slab_free the moment a slab is entirely free. */
static void slabs_move_blocks(void **unused)
{
	(void)unused;
	fake.slab_capacity = 4;
	hak_thread *t = fake_thread_new();
	hak_slab *s = core->slab_acquire(fake_self, 3, fake_token(t));
	assert_non_null(s);
	struct hak_chain ch;
	assert_int_equal(core->slab_take(s, 3, &ch), 3);
	assert_int_equal(ch.count, 3);
	core->cache_fill(t, 3, ch);
	assert_int_equal(fake_cached(t, 3), 3);
	void *b = fake_cache_pop(t, 3);
	assert_ptr_equal(core->slab_of(b), s);
	fake_program_free(b); /* freed by a thread that does not cache it */
	core->remote_push(s, b);
	struct hak_slab_info in;
	core->slab_get_info(s, &in);
	assert_int_equal(in.free, 1);
	assert_int_equal(in.used, 3);
	assert_true(in.remote_pending);
	hak_slab *seen = NULL;
	core->chain_return(fake_cache_take(t, 3), on_free, &seen);
	assert_null(seen); /* one block still queued */
	assert_int_equal(core->remote_drain(s), 1);
	assert_int_equal(fake_slab_info(s).free, 4);
	assert_int_equal(fake_blocks_out(), 0);
	core->slab_release(s);
	assert_true(fake_slab_released(s));
	assert_string_equal(fake_actions(), "slab_acquire(self,3,4096)=s1 slab_take(s1,3)=3 cache_fill(t1,3,3) "
					    "remote_push(s1,s1#0) chain_return(2) remote_drain(s1)=1 slab_release(s1)");

	hak_slab *s2 = core->slab_acquire(fake_self, 3, 0x42);
	assert_int_equal(core->slab_take(s2, 8, &ch), 4); /* capacity 4 */
	core->chain_return(ch, on_free, &seen);
	assert_ptr_equal(seen, s2);
	assert_true(fake_slab_released(s2));
	assert_int_equal(fake_broken(), 0);
}

/* Abandoned slabs: adopt hands back the latest abandoned of the class and policy. */
static void adopt_takes_the_latest_abandoned(void **unused)
{
	(void)unused;
	hak_slab *a = fake_slab_new(5, HAK_OWNER_NONE, 8);
	hak_slab *b = core->slab_acquire(fake_self, 5, 0x2000);
	fake_slab_set(b, 2, 1);
	core->slab_abandon(b);
	assert_true(fake_slab_abandoned(b));
	assert_ptr_equal(core->slab_adopt(fake_self, 5, 0x3000), b);
	assert_int_equal(fake_slab_info(b).owner, 0x3000);
	assert_ptr_equal(core->slab_adopt(fake_self, 5, 0x3000), a);
	assert_null(core->slab_adopt(fake_self, 5, 0x3000));
	assert_null(core->slab_adopt(fake_self, 6, 0x3000));
	fake.acquire_fail = 1;
	assert_null(core->slab_acquire(fake_self, 5, 0x3000));
	assert_non_null(core->slab_acquire(fake_self, 5, 0x3000));
}

static void counters_are_kept(void **unused)
{
	(void)unused;
	int a = core->counter_register(fake_self, "hits", HAK_COUNTER_COUNT, 1);
	int g = core->counter_register(fake_self, "level", HAK_COUNTER_GAUGE, 4);
	assert_int_equal(a, 0);
	assert_int_equal(g, 1);
	core->counter_add(NULL, a, 2);
	core->counter_add(NULL, a, 3);
	core->counter_set(g, -7);
	core->counter_add(NULL, -1, 1); /* the core had no room: ignored */
	assert_int_equal(fake_counter("hits"), 5);
	assert_int_equal(fake_counter("level"), -7);
	assert_string_equal(fake_nth("counter_register", 1)->text, "level");
	fake.counters_full = true;
	assert_int_equal(core->counter_register(fake_self, "more", HAK_COUNTER_COUNT, 1), -1);
	assert_int_equal(fake_counter_id("more"), -1);
	assert_int_equal(fake_broken(), 0);
}

/* The rules: each broken one is caught, with a message naming it. */
static void broken_rules_are_caught(void **unused)
{
	(void)unused;
	fake.slab_capacity = 4;
	hak_slab *s = core->slab_acquire(fake_self, 2, 0x1000);
	struct hak_chain ch;
	core->slab_take(s, 2, &ch);

	core->slab_release(s); /* blocks out */
	assert_int_equal(fake_broken(), 1);
	assert_string_equal(fake_broken_first(), "slab_release: s1 has 2 of 4 blocks out (0 in its remote queue)");
	fake_forgive();

	struct hak_chain wrong = ch;
	wrong.count = 3;
	core->chain_return(wrong, NULL, NULL);
	assert_int_equal(fake_broken(), 1);
	fake_forgive();

	((uint64_t *)ch.head)[1] = 0; /* a policy writing the core's free mark */
	core->chain_return(ch, NULL, NULL);
	assert_int_equal(fake_broken(), 1);
	assert_non_null(strstr(fake_broken_first(), "word 1"));
	((uint64_t *)ch.head)[1] = 0x5a17ab1e0ddba115ull ^ (uint64_t)(uintptr_t)ch.head; /* put it back */
	fake_forgive();

	core->chain_return(ch, NULL, NULL); /* right this time */
	core->chain_return(ch, NULL, NULL); /* and again: the blocks are in the slab already */
	assert_int_equal(fake_broken(), 1);
	assert_non_null(strstr(fake_broken_first(), "is in its slab"));
	fake_forgive();

	core->slab_release(s);
	core->slab_release(s); /* twice */
	assert_int_equal(fake_broken(), 1);
	fake_forgive();

	core->slab_acquire((hak_policy *)&ch, 2, 0x1000); /* not the handle init got */
	core->slab_acquire(fake_self, 88, 0x1000);       /* no such class */
	assert_int_equal(fake_broken(), 2);
	fake_forgive();
}

#define T(f) cmocka_unit_test_setup_teardown(f, fake_setup, fake_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(table_is_complete),
		T(calls_are_recorded_in_order),
		T(release_empty_follows_the_header),
		T(trim_pass_purges_what_stayed_empty),
		T(facts_come_from_the_script),
		T(slabs_move_blocks),
		T(adopt_takes_the_latest_abandoned),
		T(counters_are_kept),
		T(broken_rules_are_caught),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
