/* test_plugin_ownership.c: the ownership policies' own decisions (tls: Option G, central:
 * Option F), on the fake core (fake_core.h): where a refill takes its blocks from and in which
 * order, what a flush, an exit, a reclaim or a foreign free gives back, which slabs go back to
 * the core, their counters, fork; and central's queues under real threads. The fake's slabs
 * carry real blocks, so a block lost, duplicated or handed to the wrong place breaks a rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "fake_core.h"

FAKE_PLUGIN(ownership_tls);
FAKE_PLUGIN(ownership_central);

#define TLS (&hak__builtin_ownership_tls)
#define CENTRAL (&hak__builtin_ownership_central)
#define CLS 3 /* 64-byte blocks */

static const struct hak_ownership_ops *ops_of(const struct hak_policy_desc *d)
{
	return d->ops;
}

/* Every block of t's cache of CLS to the program; how many, into out[]. */
static unsigned pop_all(hak_thread *t, void **out, unsigned max)
{
	unsigned n = 0;
	for (void *b; n < max && (b = fake_cache_pop(t, CLS));)
		out[n++] = b;
	return n;
}

/* ---- tls (Option G) -------------------------------------------------------------------------- */

struct tls_fixture {
	void *st;
	hak_thread *t, *other;
	void *ts;
};

static struct tls_fixture tls_up(void)
{
	fake.slab_capacity = 8;
	fake.refill_count = 4;
	struct tls_fixture f = {fake_load(TLS, FAKE_NO_KV), fake_thread_new(), fake_thread_new(), NULL};
	f.ts = fake_tstate(f.t);
	assert_true(ops_of(TLS)->thread_state_size <= FAKE_TSTATE_MAX);
	return f;
}

static int tls_refill(struct tls_fixture *f)
{
	return ops_of(TLS)->refill(f->st, f->t, f->ts, CLS);
}

static void tls_declares_its_model(void **unused)
{
	(void)unused;
	const struct hak_ownership_ops *o = ops_of(TLS);
	assert_int_equal(o->caches_any, 0); /* threads cache their own token's blocks */
	assert_non_null(o->reclaim);
	assert_null(o->consolidate);
	void *st;
	assert_int_equal(fake_init(TLS, FAKE_KV("queue = 4"), &st), EINVAL);
	assert_string_equal(fake_err(), "line 1: unknown key 'queue' (this policy takes: nothing)");
}

/* Nothing yet: adopt first, then a new slab owned by the calling thread, for this policy. */
static void tls_refill_adopts_then_acquires_for_itself(void **unused)
{
	(void)unused;
	struct tls_fixture f = tls_up();
	assert_int_equal(tls_refill(&f), 0);
	assert_string_equal(fake_actions(), "slab_adopt(self,3,4096)=0 slab_acquire(self,3,4096)=s1 "
					    "remote_drain(s1)=0 slab_take(s1,4)=4 cache_fill(t1,3,4)");
	FAKE_ASSERT_CALL(fake_nth("slab_acquire", 0), "slab_acquire", (uintptr_t)fake_self, CLS, fake_token(f.t));
	assert_int_equal(fake_cached(f.t, CLS), 4);
	assert_int_equal(fake_slab_info(fake_slab_by_id(1)).owner, fake_token(f.t));
	assert_int_equal(fake_count("cache_accept"), 0); /* the default (its token) is right */
}

/* The current slab first; an exhausted one joins the ring; then adopt, then acquire. */
static void tls_refill_takes_from_cur_then_ring_then_new(void **unused)
{
	(void)unused;
	struct tls_fixture f = tls_up();
	tls_refill(&f);
	fake_clear();
	assert_int_equal(tls_refill(&f), 0);
	assert_string_equal(fake_actions(), "remote_drain(s1)=0 slab_take(s1,4)=4 cache_fill(t1,3,4)");
	fake_clear();
	assert_int_equal(tls_refill(&f), 0); /* s1 is exhausted, nothing in the ring has room */
	assert_string_equal(fake_actions(), "remote_drain(s1)=0 slab_take(s1,4)=0 slab_adopt(self,3,4096)=0 "
					    "slab_acquire(self,3,4096)=s2 remote_drain(s2)=0 slab_take(s2,4)=4 "
					    "cache_fill(t1,3,4)");
	/* Another thread frees two of s1's blocks: s1 has remote frees, the ring finds it. */
	void *b[16];
	unsigned n = pop_all(f.t, b, 16);
	assert_int_equal(n, 12);
	hak_slab *s1 = fake_slab_by_id(1);
	unsigned freed = 0;
	for (unsigned i = 0; i < n && freed < 2; i++)
		if (fake_block_slab(b[i]) == s1) {
			fake_free_foreign(TLS, f.st, f.other, b[i]);
			freed++;
		}
	assert_int_equal(tls_refill(&f), 0); /* s2 still has 4 */
	fake_clear();
	assert_int_equal(tls_refill(&f), 0);
	assert_string_equal(fake_actions(),
			    "remote_drain(s2)=0 slab_take(s2,4)=0 remote_drain(s1)=2 slab_take(s1,4)=2 cache_fill(t1,3,2)");
	assert_int_equal(fake_count("slab_adopt"), 0);
}

/* An abandoned slab is adopted before anything is mapped, and its queue drained first. */
static void tls_refill_adopts_an_abandoned_slab(void **unused)
{
	(void)unused;
	struct tls_fixture f = tls_up();
	hak_slab *a = fake_slab_new(CLS, HAK_OWNER_NONE, 8);
	fake_slab_set(a, 3, 1); /* 3 blocks out, 1 of them freed to its queue */
	fake_clear();
	assert_int_equal(tls_refill(&f), 0);
	assert_string_equal(fake_actions(), "slab_adopt(self,3,4096)=s1 remote_drain(s1)=1 slab_take(s1,4)=4 "
					    "cache_fill(t1,3,4)");
	assert_int_equal(fake_slab_info(a).owner, fake_token(f.t));
	assert_int_equal(fake_slab_info(a).free, 2);
}

static void tls_refill_without_memory_fails(void **unused)
{
	(void)unused;
	struct tls_fixture f = tls_up();
	fake.acquire_fail = ~0u;
	assert_int_equal(tls_refill(&f), ENOMEM);
	assert_string_equal(fake_actions(), "slab_adopt(self,3,4096)=0 slab_acquire(self,3,4096)=0");
	fake.acquire_fail = 0; /* memory again: the next refill maps */
	assert_int_equal(tls_refill(&f), 0);
	assert_int_equal(fake_cached(f.t, CLS), 4);
}

/* A flushed chain goes back to its slabs; a slab it frees entirely goes back to the core,
 * except the current one. */
static void tls_flush_returns_and_releases_all_but_cur(void **unused)
{
	(void)unused;
	struct tls_fixture f = tls_up();
	for (int i = 0; i < 3; i++)
		tls_refill(&f); /* s1: 8 taken (in the ring), s2 (cur): 4 taken */
	fake_clear();
	ops_of(TLS)->flush(f.st, f.t, f.ts, CLS, fake_cache_take(f.t, CLS));
	assert_string_equal(fake_actions(), "chain_return(12) slab_release(s1)");
	assert_true(fake_slab_released(fake_slab_by_id(1)));
	assert_false(fake_slab_released(fake_slab_by_id(2)));
	assert_int_equal(fake_slab_info(fake_slab_by_id(2)).used, 0);
	fake_clear();
	assert_int_equal(tls_refill(&f), 0); /* cur is still used */
	assert_string_equal(fake_actions(), "remote_drain(s2)=0 slab_take(s2,4)=4 cache_fill(t1,3,4)");
}

/* A current slab of fewer than 8 blocks (a big class's) goes back too once entirely free: its
 * pages serve the next slab of any class; the next refill takes a new one. */
static void tls_flush_releases_an_empty_cur_of_few_blocks(void **unused)
{
	(void)unused;
	struct tls_fixture f = tls_up();
	fake.slab_capacity = 4;
	fake.refill_count = 1;
	tls_refill(&f); /* s1 (cur): 1 taken of 4 */
	fake_clear();
	ops_of(TLS)->flush(f.st, f.t, f.ts, CLS, fake_cache_take(f.t, CLS));
	assert_string_equal(fake_actions(), "chain_return(1) slab_release(s1)");
	assert_true(fake_slab_released(fake_slab_by_id(1)));
	fake_clear();
	assert_int_equal(tls_refill(&f), 0);
	assert_string_equal(fake_actions(), "slab_adopt(self,3,4096)=0 slab_acquire(self,3,4096)=s2 "
					    "remote_drain(s2)=0 slab_take(s2,1)=1 cache_fill(t1,3,1)");
}

/* At exit: free slabs back to the core (after draining), the rest abandoned for adoption. */
static void tls_thread_exit_releases_free_and_abandons_the_rest(void **unused)
{
	(void)unused;
	struct tls_fixture f = tls_up();
	for (int i = 0; i < 3; i++)
		tls_refill(&f);
	void *b[16];
	unsigned n = pop_all(f.t, b, 16);
	hak_slab *s1 = fake_slab_by_id(1), *s2 = fake_slab_by_id(2);
	for (unsigned i = 0; i < n; i++) /* s1's blocks are freed by another thread */
		if (fake_block_slab(b[i]) == s1)
			fake_free_foreign(TLS, f.st, f.other, b[i]);
	fake_clear();
	ops_of(TLS)->thread_exit(f.st, f.t, f.ts);
	assert_string_equal(fake_actions(), "remote_drain(s2)=0 slab_abandon(s2) remote_drain(s1)=8 slab_release(s1)");
	assert_true(fake_slab_released(s1));
	assert_true(fake_slab_abandoned(s2));
	/* The next thread adopts what this one left. */
	fake_clear();
	assert_int_equal(ops_of(TLS)->refill(f.st, f.other, fake_tstate(f.other), CLS), 0);
	assert_string_equal(fake_actions(), "slab_adopt(self,3,8192)=s2 remote_drain(s2)=0 slab_take(s2,4)=4 "
					    "cache_fill(t2,3,4)");
}

/* A reclaim of a thread that refills: the queues of its other slabs drained, the entirely free
 * ones released, its current slab untouched even though the others' frees emptied it. A second
 * one with no refill between finds the thread idle: the emptied current slab goes back, its
 * other slabs are abandoned for the threads that allocate, and the blocks of them its cache
 * still held go, when it flushes, to their queues, not to slabs it no longer owns; once a
 * refill found that cache empty, its flushes go the usual way again. */
static void tls_reclaim_drains_releases_and_hands_over_an_idle_threads_slabs(void **unused)
{
	(void)unused;
	struct tls_fixture f = tls_up();
	for (int i = 0; i < 5; i++)
		tls_refill(&f); /* s1, s2 exhausted in the ring; s3 is cur with 4 taken */
	void *b[32];
	unsigned n = pop_all(f.t, b, 32);
	assert_int_equal(n, 20);
	hak_slab *s1 = fake_slab_by_id(1), *s2 = fake_slab_by_id(2), *s3 = fake_slab_by_id(3);
	unsigned of_s2 = 0;
	void *kept[8];
	unsigned nkept = 0;
	for (unsigned i = 0; i < n; i++) {
		hak_slab *s = fake_block_slab(b[i]);
		if (s == s1 || s == s3 || (s == s2 && of_s2++ < 4))
			fake_free_foreign(TLS, f.st, f.other, b[i]);
		else if (s == s2)
			kept[nkept++] = b[i];
	}
	assert_int_equal(nkept, 4);
	fake_clear();
	ops_of(TLS)->reclaim(f.st, f.t, f.ts);
	assert_string_equal(fake_actions(), "remote_drain(s1)=8 slab_release(s1) remote_drain(s2)=4");
	assert_true(fake_slab_released(s1));
	assert_false(fake_slab_released(s3));
	assert_false(fake_slab_released(s2));
	fake_cache_push(f.t, CLS, kept[0]); /* the program frees one of s2's into the cache */
	fake_clear();
	ops_of(TLS)->reclaim(f.st, f.t, f.ts); /* no refill since: idle */
	assert_string_equal(fake_actions(), "remote_drain(s3)=4 slab_release(s3) remote_drain(s2)=0 slab_abandon(s2)");
	assert_true(fake_slab_released(s3));
	assert_true(fake_slab_abandoned(s2));
	fake_clear();
	ops_of(TLS)->flush(f.st, f.t, f.ts, CLS, fake_cache_take(f.t, CLS));
	assert_int_equal(fake_count("remote_push"), 1);
	assert_int_equal(fake_count("chain_return"), 0);
	assert_int_equal(fake_slab_remote(s2), 1);
	fake_clear();
	ops_of(TLS)->reclaim(f.st, f.t, f.ts); /* nothing left: nothing done */
	assert_string_equal(fake_actions(), "");
	/* The thread resumes: its refill finds the cache empty, so what it caches from then on is
	 * its own, and its flushes no longer look up each block's slab. */
	assert_int_equal(tls_refill(&f), 0);
	n = pop_all(f.t, b, 32);
	for (unsigned i = 0; i < n; i++)
		fake_cache_push(f.t, CLS, b[i]);
	fake_clear();
	ops_of(TLS)->flush(f.st, f.t, f.ts, CLS, fake_cache_take(f.t, CLS));
	assert_int_equal(fake_count("slab_of"), 0);
	assert_int_equal(fake_count("chain_return"), 1);
	for (unsigned i = 1; i < nkept; i++)
		fake_free_foreign(TLS, f.st, f.other, kept[i]);
}

static void tls_free_foreign_pushes_to_the_remote_queue(void **unused)
{
	(void)unused;
	struct tls_fixture f = tls_up();
	tls_refill(&f);
	void *b = fake_cache_pop(f.t, CLS);
	hak_slab *s = fake_block_slab(b);
	fake_clear();
	fake_free_foreign(TLS, f.st, f.other, b);
	assert_string_equal(fake_actions(), "remote_push(s1,s1#0)");
	assert_int_equal(fake_slab_remote(s), 1);
	assert_ptr_equal((void *)(uintptr_t)fake_call_at(0)->arg[1], b);
}

/* Frees of one slab the core gathered (2.1): the whole chain onto the queue at once, which the
 * owner's next refill drains. */
static void tls_free_foreign_chain_pushes_the_chain_at_once(void **unused)
{
	(void)unused;
	struct tls_fixture f = tls_up();
	tls_refill(&f);
	void *b[4];
	assert_int_equal(pop_all(f.t, b, 4), 4);
	hak_slab *s = fake_block_slab(b[0]);
	fake_clear();
	fake_free_foreign_chain(TLS, f.st, f.other, b, 4);
	assert_string_equal(fake_actions(), "remote_push_chain(s1,4)");
	assert_int_equal(fake_slab_remote(s), 4);
	fake_clear();
	tls_refill(&f);
	assert_int_equal(fake_count("remote_drain"), 1);
	assert_int_equal(fake_nth("remote_drain", 0)->ret, 4);
	assert_int_equal(fake_slab_remote(s), 0);
}

/* ---- central (Option F) ---------------------------------------------------------------------- */

struct central_fixture {
	void *st;
	hak_thread *t, *t2;
	int pops, pushes;
};

static struct central_fixture central_up(void)
{
	fake.refill_count = 4;
	struct central_fixture f = {fake_load(CENTRAL, FAKE_NO_KV), fake_thread_new(), fake_thread_new(), -1, -1};
	f.pops = fake_counter_id("pops");
	f.pushes = fake_counter_id("pushes");
	return f;
}

static int central_refill(struct central_fixture *f, hak_thread *t)
{
	return ops_of(CENTRAL)->refill(f->st, t, NULL, CLS);
}

/* The queued batch of one block b, as the core hands it to flush. */
static struct hak_chain one(hak_thread *t, void *b)
{
	fake_cache_push(t, CLS, b);
	return fake_cache_take(t, CLS);
}

static void central_registers_its_counters(void **unused)
{
	(void)unused;
	struct central_fixture f = central_up();
	assert_string_equal(fake_actions(), "counter_register(self,0,1)=0 counter_register(self,0,1)=1");
	assert_string_equal(fake_nth("counter_register", 0)->text, "pops");
	assert_string_equal(fake_nth("counter_register", 1)->text, "pushes");
	assert_int_equal(f.pops, 0);
	assert_int_equal(f.pushes, 1);
	assert_int_equal(ops_of(CENTRAL)->caches_any, 1);
	assert_int_equal(ops_of(CENTRAL)->thread_state_size, 0);
	fake_unload(CENTRAL, f.st);
}

/* An empty queue: carve from a slab of no owner, under the class lock. */
static void central_refill_carves_when_the_queue_is_empty(void **unused)
{
	(void)unused;
	struct central_fixture f = central_up();
	fake_clear();
	assert_int_equal(central_refill(&f, f.t), 0);
	assert_string_equal(fake_actions(), "slab_acquire(self,3,1)=s1 slab_take(s1,4)=4 cache_fill(t1,3,4)");
	FAKE_ASSERT_CALL(fake_nth("slab_acquire", 0), "slab_acquire", (uintptr_t)fake_self, CLS, HAK_OWNER_ANY);
	fake_clear();
	assert_int_equal(central_refill(&f, f.t2), 0); /* the same slab, for any thread */
	assert_string_equal(fake_actions(), "slab_take(s1,4)=4 cache_fill(t2,3,4)");
	fake.acquire_fail = ~0u;
	fake.refill_count = 2000; /* more than s1 holds: a second slab is needed, and none comes */
	assert_int_equal(central_refill(&f, f.t), 0); /* s1's rest first */
	assert_int_equal(central_refill(&f, f.t), ENOMEM);
	fake.acquire_fail = 0;
	fake_unload(CENTRAL, f.st);
}

/* A flush queues the batch; the next refill, on any thread, takes that batch whole. */
static void central_refill_takes_a_queued_batch_first(void **unused)
{
	(void)unused;
	struct central_fixture f = central_up();
	central_refill(&f, f.t);
	fake_clear();
	ops_of(CENTRAL)->flush(f.st, f.t, NULL, CLS, fake_cache_take(f.t, CLS));
	assert_string_equal(fake_actions(), "counter_add(t1,1,1)");
	fake_clear();
	assert_int_equal(central_refill(&f, f.t2), 0);
	assert_string_equal(fake_actions(), "counter_add(t2,0,1) cache_fill(t2,3,4)");
	assert_int_equal(fake_cached(f.t2, CLS), 4);
	assert_int_equal(fake_counter("pops"), 1);
	assert_int_equal(fake_counter("pushes"), 1);
	fake_clear();
	assert_int_equal(central_refill(&f, f.t2), 0); /* the queue is empty again: carve */
	assert_string_equal(fake_actions(), "slab_take(s1,4)=4 cache_fill(t2,3,4)");
	fake_unload(CENTRAL, f.st);
}

/* A full queue: the batch goes straight back to its slabs. Consolidate empties every queue
 * into the slabs, and a slab then entirely free goes back, the current one included. */
static void central_full_queue_and_consolidate_go_back_to_slabs(void **unused)
{
	(void)unused;
	struct central_fixture f = central_up();
	fake.refill_count = 65;
	central_refill(&f, f.t);
	void *b[65];
	assert_int_equal(pop_all(f.t, b, 65), 65);
	for (unsigned i = 0; i < 64; i++)
		ops_of(CENTRAL)->flush(f.st, f.t, NULL, CLS, one(f.t, b[i]));
	assert_int_equal(fake_counter("pushes"), 64);
	fake_clear();
	ops_of(CENTRAL)->flush(f.st, f.t, NULL, CLS, one(f.t, b[64]));
	assert_string_equal(fake_actions(), "chain_return(1)"); /* the queue holds 64 batches */
	assert_int_equal(fake_counter("pushes"), 64);
	fake_clear();
	ops_of(CENTRAL)->consolidate(f.st);
	assert_int_equal(fake_count("chain_return"), 64);
	assert_int_equal(fake_count("slab_release"), 1);
	FAKE_ASSERT_CALL(fake_call_at(fake_ncalls() - 1), "slab_release", (uintptr_t)fake_slab_by_id(1));
	assert_true(fake_slab_released(fake_slab_by_id(1)));
	assert_int_equal(fake_blocks_out(), 0);
	fake_clear();
	ops_of(CENTRAL)->consolidate(f.st); /* nothing queued: nothing done */
	assert_string_equal(fake_actions(), "");
	fake_clear();
	fake.refill_count = 4;
	assert_int_equal(central_refill(&f, f.t), 0); /* the released slab is forgotten: a new one */
	assert_string_equal(fake_actions(), "slab_acquire(self,3,1)=s2 slab_take(s2,4)=4 cache_fill(t1,3,4)");
	fake_unload(CENTRAL, f.st);
}

/* A block freed by a thread that may not cache it: queued as a batch of one. */
static void central_free_foreign_queues_the_block(void **unused)
{
	(void)unused;
	struct central_fixture f = central_up();
	central_refill(&f, f.t);
	void *b = fake_cache_pop(f.t, CLS);
	fake_clear();
	fake_free_foreign(CENTRAL, f.st, f.t2, b);
	assert_string_equal(fake_actions(), "counter_add(t2,1,1)");
	assert_int_equal(fake_count("slab_get_info"), 1); /* for the block's class */
	fake_clear();
	central_refill(&f, f.t2);
	assert_string_equal(fake_actions(), "counter_add(t2,0,1) cache_fill(t2,3,1)");
	ops_of(CENTRAL)->thread_exit(f.st, f.t, NULL); /* owns nothing */
	fake_unload(CENTRAL, f.st);
}

/* Such frees of one slab gathered by the core (2.1): queued as one batch, which a refill hands
 * over whole. */
static void central_free_foreign_chain_queues_one_batch(void **unused)
{
	(void)unused;
	struct central_fixture f = central_up();
	central_refill(&f, f.t);
	void *b[4];
	assert_int_equal(pop_all(f.t, b, 4), 4);
	fake_clear();
	fake_free_foreign_chain(CENTRAL, f.st, f.t2, b, 4);
	assert_string_equal(fake_actions(), "counter_add(t2,1,1)");
	fake_clear();
	central_refill(&f, f.t2);
	assert_string_equal(fake_actions(), "counter_add(t2,0,1) cache_fill(t2,3,4)");
	assert_int_equal(fake_cached(f.t2, CLS), 4);
	ops_of(CENTRAL)->thread_exit(f.st, f.t, NULL); /* owns nothing */
	fake_unload(CENTRAL, f.st);
}

/* fork_child rebuilds each queue around the batches it holds: none lost, none doubled, even
 * once the queue's positions have gone round. */
static void central_fork_child_keeps_the_queued_batches(void **unused)
{
	(void)unused;
	struct central_fixture f = central_up();
	fake.refill_count = 1;
	for (int i = 0; i < 70; i++) { /* positions past QUEUE_SLOTS */
		central_refill(&f, f.t);
		ops_of(CENTRAL)->flush(f.st, f.t, NULL, CLS, fake_cache_take(f.t, CLS));
	}
	void *b[6]; /* six batches of one wait: the one left queued, then five carved */
	for (int i = 0; i < 6; i++)
		central_refill(&f, f.t2);
	assert_int_equal(pop_all(f.t2, b, 6), 6);
	for (int i = 0; i < 6; i++)
		ops_of(CENTRAL)->flush(f.st, f.t2, NULL, CLS, one(f.t2, b[i]));
#ifndef __SANITIZE_THREAD__ /* ThreadSanitizer tracks at most 64 locks held by one thread: it
			    * cannot follow fork_prepare, which takes a lock per class */
	CENTRAL->fork_prepare(f.st);
	CENTRAL->fork_parent(f.st);
	CENTRAL->fork_prepare(f.st); /* the child starts with every lock held */
#endif
	CENTRAL->fork_child(f.st);
	fake_clear();
	for (int i = 0; i < 6; i++) /* a batch of one each */
		assert_int_equal(central_refill(&f, f.t), 0);
	assert_int_equal(fake_count("counter_add"), 6);
	FAKE_ASSERT_CALL(fake_nth("counter_add", 5), "counter_add", (uintptr_t)f.t, (uint64_t)f.pops, 1);
	assert_int_equal(fake_cached(f.t, CLS), 6);
	assert_int_equal(fake_count("slab_take"), 0);
	fake_clear();
	central_refill(&f, f.t); /* the queue is empty: carve */
	assert_int_equal(fake_count("slab_take"), 1);
	assert_int_equal(fake_count("counter_add"), 0);
	fake_unload(CENTRAL, f.st);
}

/* No room for its counters in the core: it runs on, uncounted. */
static void central_runs_without_counters(void **unused)
{
	(void)unused;
	fake.counters_full = true;
	struct central_fixture f = central_up();
	assert_int_equal(f.pops, -1);
	central_refill(&f, f.t);
	ops_of(CENTRAL)->flush(f.st, f.t, NULL, CLS, fake_cache_take(f.t, CLS));
	central_refill(&f, f.t);
	FAKE_ASSERT_CALL(fake_nth("counter_add", 0), "counter_add", (uintptr_t)f.t, (uint64_t)-1, 1);
	assert_int_equal(fake_cached(f.t, CLS), 4);
	fake_unload(CENTRAL, f.st);
}

/* Threads refilling from and flushing to the same queues at once: at the end, consolidate
 * gives every block back and every slab goes back; the fake's rules catch a block lost or
 * handed out twice. (ThreadSanitizer runs this too: make test-tsan.) */
enum { THREADS = 4, ROUNDS = 3000 };

struct worker {
	struct central_fixture *f;
	hak_thread *t;
};

static void *churn(void *arg)
{
	struct worker *w = arg;
	void *held[64];
	for (int r = 0; r < ROUNDS; r++) {
		assert_int_equal(ops_of(CENTRAL)->refill(w->f->st, w->t, NULL, CLS), 0);
		unsigned n = pop_all(w->t, held, 64);
		for (unsigned i = 0; i < n; i++)
			fake_cache_push(w->t, CLS, held[i]);
		ops_of(CENTRAL)->flush(w->f->st, w->t, NULL, CLS, fake_cache_take(w->t, CLS));
	}
	return NULL;
}

static void central_queues_under_threads(void **unused)
{
	(void)unused;
	fake.quiet = true; /* too many calls to log; the rules are still checked */
	struct central_fixture f = central_up();
	fake.refill_count = 8;
	pthread_t tid[THREADS];
	struct worker w[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){&f, fake_thread_new()};
		assert_int_equal(pthread_create(&tid[i], NULL, churn, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(tid[i], NULL);
	assert_int_equal(fake_broken(), 0);
	ops_of(CENTRAL)->consolidate(f.st);
	assert_int_equal(fake_blocks_out(), 0);
	for (unsigned id = 1; id <= fake_slab_count(); id++)
		assert_true(fake_slab_released(fake_slab_by_id(id)));
	assert_true(fake_counter("pushes") > 0);
	fake_unload(CENTRAL, f.st);
}

#define T(f) cmocka_unit_test_setup_teardown(f, fake_setup, fake_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(tls_declares_its_model),
		T(tls_refill_adopts_then_acquires_for_itself),
		T(tls_refill_takes_from_cur_then_ring_then_new),
		T(tls_refill_adopts_an_abandoned_slab),
		T(tls_refill_without_memory_fails),
		T(tls_flush_returns_and_releases_all_but_cur),
		T(tls_flush_releases_an_empty_cur_of_few_blocks),
		T(tls_thread_exit_releases_free_and_abandons_the_rest),
		T(tls_reclaim_drains_releases_and_hands_over_an_idle_threads_slabs),
		T(tls_free_foreign_pushes_to_the_remote_queue),
		T(tls_free_foreign_chain_pushes_the_chain_at_once),
		T(central_registers_its_counters),
		T(central_refill_carves_when_the_queue_is_empty),
		T(central_refill_takes_a_queued_batch_first),
		T(central_full_queue_and_consolidate_go_back_to_slabs),
		T(central_free_foreign_queues_the_block),
		T(central_free_foreign_chain_queues_one_batch),
		T(central_fork_child_keeps_the_queued_batches),
		T(central_runs_without_counters),
		T(central_queues_under_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
