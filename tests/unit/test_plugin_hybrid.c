/* test_plugin_hybrid.c: the hybrid ownership policy's own decisions (policies/ownership_hybrid.c),
 * on the fake core (fake_core.h): what it asks the core, in order, when a class refills, flushes,
 * gets foreign frees, switches G -> F and back, when a thread exits, at trim passes and fork;
 * and the rules the fake checks (no slab released with blocks out, no block moved from the
 * wrong place) hold through the switches. The switching rule's arithmetic and the real-core
 * accounting through switches are in test_hybrid.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "fake_core.h"

FAKE_PLUGIN(ownership_hybrid);

#define HY (&hak__builtin_ownership_hybrid)
#define ANY HAK_OWNER_ANY

enum { C = 2, TICK = 5 }; /* the class under test (48 B, batch 64), one to make ticks with */

static const struct hak_ownership_ops *ops(void)
{
	return HY->ops;
}

/* Evaluations at every 16th refill or flush, one window is enough to switch. */
#define KV_FAST FAKE_KV("window_ms = 0", "window_frees = 1024", "dwell = 1")

static void *load(const char *const *kv)
{
	fake.refill_count = 4;
	fake.slab_capacity = 16;
	return fake_load(HY, kv);
}

static void refill(void *st, hak_thread *t, unsigned cls)
{
	assert_int_equal(ops()->refill(st, t, fake_tstate(t), cls), 0);
}

/* The whole cache leaves, as at a thread's flush. */
static void flush_all(void *st, hak_thread *t, unsigned cls)
{
	struct hak_chain ch = fake_cache_take(t, cls);
	if (ch.head)
		ops()->flush(st, t, fake_tstate(t), cls, ch);
}

/* Refills and flushes of another class on t until the policy evaluated once more. */
static void evaluate(void *st, hak_thread *t)
{
	unsigned before = fake_count("class_local_frees");
	for (int i = 0; i < 64 && fake_count("class_local_frees") == before; i++) {
		if (fake_cached(t, TICK))
			flush_all(st, t, TICK);
		else
			refill(st, t, TICK);
	}
	assert_int_equal(fake_count("class_local_frees"), before + 1);
}

/* The last value counter_set gave entry `cls` of gauge `name`, or -1. */
static int64_t gauge(const char *name, unsigned cls)
{
	int id = fake_counter_id(name);
	int64_t v = -1;
	for (unsigned n = 0;; n++) {
		const struct fake_call *c = fake_nth("counter_set", n);
		if (!c)
			return v;
		if (c->arg[0] == (uint64_t)(id + (int)cls))
			v = (int64_t)c->arg[1];
	}
}

/* The sum of counter_add on entry `cls` of count `name` (0 for a scalar). */
static uint64_t count(const char *name, unsigned cls)
{
	int id = fake_counter_id(name);
	uint64_t v = 0;
	for (unsigned n = 0;; n++) {
		const struct fake_call *c = fake_nth("counter_add", n);
		if (!c)
			return v;
		if (c->arg[1] == (uint64_t)(id + (int)cls))
			v += c->arg[2];
	}
}

/* `n` blocks of a slab of another thread (`owner`), freed by t: remote frees of class C. */
static void remote_frees(void *st, hak_thread *t, uintptr_t owner, unsigned n)
{
	hak_slab *s = fake_slab_new(C, owner, n);
	for (unsigned i = 0; i < n; i++)
		fake_free_foreign(&hak__builtin_ownership_hybrid, st, t, fake_slab_give(s));
}

/* Class C to F: 600 remote frees by t2 of t1's blocks and 424 local ones, one window (58%). */
static void switch_to_f(void *st, hak_thread *t1, hak_thread *t2)
{
	remote_frees(st, t2, fake_token(t1), 600);
	fake.local_frees[C] += 424;
	evaluate(st, t2);
	assert_int_equal(gauge("class_model", C), 1);
	assert_int_equal(gauge("remote_share", C), 58);
}

/* ---- init ------------------------------------------------------------------------------------ */

static void init_declares_counters_and_checks_keys(void **unused)
{
	(void)unused;
	void *st = load(FAKE_NO_KV);
	unsigned n = fake_core_api.class_count();
	static const struct {
		const char *name;
		unsigned type, n;
	} want[] = {{"class_model", HAK_COUNTER_GAUGE, 0}, {"switches", HAK_COUNTER_COUNT, 0},
		    {"remote_share", HAK_COUNTER_GAUGE, 0}, {"pops", HAK_COUNTER_COUNT, 1},
		    {"pushes", HAK_COUNTER_COUNT, 1}, {"evaluations", HAK_COUNTER_COUNT, 1}};
	assert_int_equal(fake_count("counter_register"), 6);
	for (unsigned i = 0; i < 6; i++) {
		const struct fake_call *c = fake_nth("counter_register", i);
		assert_string_equal(c->text, want[i].name);
		FAKE_ASSERT_CALL(c, "counter_register", (uintptr_t)fake_self, want[i].type, want[i].n ? want[i].n : n);
	}
	assert_int_equal(fake_count("counter_register"), fake_ncalls() - fake_count("class_count") -
								  fake_count("class_batch")); /* nothing else */
	fake_unload(HY, st);

	assert_int_equal(fake_init(HY, FAKE_KV("remote_high = 40", "remote_low = 45%"), &st), EINVAL);
	assert_string_equal(fake_err(), "line 2: remote_low = 45%, remote_high = 40%: expected remote_low below remote_high");
	assert_int_equal(fake_init(HY, FAKE_KV("window_frees = 100"), &st), EINVAL);
	assert_string_equal(fake_err(), "line 1: window_frees = '100': expected an integer in [1024, 1073741824]");
	assert_int_equal(fake_init(HY, FAKE_KV("remote_high = half"), &st), EINVAL);
	assert_string_equal(fake_err(), "line 1: remote_high = 'half': expected a percentage in [1, 100]");
}

/* No room for counters: the policy runs on, uncounted (ids -1 ignored). */
static void full_counter_table_is_not_fatal(void **unused)
{
	(void)unused;
	fake.counters_full = true;
	void *st = load(KV_FAST);
	hak_thread *t1 = fake_thread_new(), *t2 = fake_thread_new();
	remote_frees(st, t2, fake_token(t1), 600);
	fake.local_frees[C] = 424;
	evaluate(st, t2);
	assert_true(fake_count("counter_set") >= 1); /* the model and share, both with id -1 */
	for (unsigned n = 0; fake_nth("counter_set", n); n++)
		assert_int_equal(fake_nth("counter_set", n)->arg[0], (uint64_t)(int64_t)-1);
	refill(st, t1, C); /* F all the same */
	assert_int_equal(fake_accept(t1, C), 0); /* never set: the default (ANY) stands */
	assert_int_equal(fake_count("slab_acquire"), 2); /* TICK's G slab, then C's ANY one */
	FAKE_ASSERT_CALL(fake_nth("slab_acquire", 1), "slab_acquire", (uintptr_t)fake_self, C, ANY);
	fake_unload(HY, st);
}

/* ---- Option G ------------------------------------------------------------------------------ */

/* A class's first refill: the cache accepts the thread's token before a slab is taken for it
 * (the pairing rule), adoption before mapping. */
static void g_refill_pairs_the_token_with_the_slab(void **unused)
{
	(void)unused;
	void *st = load(KV_FAST);
	hak_thread *t = fake_thread_new();
	fake_clear();
	refill(st, t, C);
	assert_string_equal(fake_actions(), "cache_accept(t1,2,4096) slab_adopt(self,2,4096)=0 slab_acquire(self,2,4096)=s1 "
					"remote_drain(s1)=0 slab_take(s1,4)=4 cache_fill(t1,2,4)");
	assert_int_equal(fake_accept(t, C), fake_token(t));
	/* its own blocks come back to its slab; the slab refills use stays */
	fake_clear();
	flush_all(st, t, C);
	assert_string_equal(fake_actions(), "chain_return(4)");
	fake_unload(HY, st);
}

/* Frees of other threads' G blocks are counted, not kept: each goes to its slab's queue. */
static void g_foreign_frees_go_to_the_remote_queue(void **unused)
{
	(void)unused;
	void *st = load(KV_FAST);
	hak_thread *t1 = fake_thread_new(), *t2 = fake_thread_new();
	refill(st, t1, C);
	hak_slab *s1 = fake_slab_by_id(1);
	void *b = fake_cache_pop(t1, C);
	fake_clear();
	fake_free_foreign(&hak__builtin_ownership_hybrid, st, t2, b);
	assert_string_equal(fake_actions(), "remote_push(s1,s1#0)");
	assert_int_equal(fake_slab_remote(s1), 1);
	/* t1's next refill drains it before carving on */
	flush_all(st, t1, C);
	fake_clear();
	refill(st, t1, C);
	assert_string_equal(fake_actions(), "remote_drain(s1)=1 slab_take(s1,4)=4 cache_fill(t1,2,4)");
	fake_unload(HY, st);
}

/* A window below remote_high keeps G; one at or above it switches (dwell 1). */
static void remote_share_decides_the_switch(void **unused)
{
	(void)unused;
	void *st = load(KV_FAST);
	hak_thread *t1 = fake_thread_new(), *t2 = fake_thread_new();
	remote_frees(st, t2, fake_token(t1), 500);
	fake.local_frees[C] = 524; /* 48% */
	evaluate(st, t2);
	assert_int_equal(gauge("remote_share", C), 48);
	assert_int_equal(gauge("class_model", C), -1); /* never set: still G */
	assert_int_equal(count("switches", C), 0);
	remote_frees(st, t2, fake_token(t1), 300);
	fake.local_frees[C] += 100; /* this window: 300 of 400 frees... */
	evaluate(st, t2);
	assert_int_equal(gauge("remote_share", C), 48); /* ...is not complete (400 < 1024) */
	remote_frees(st, t2, fake_token(t1), 400);
	fake.local_frees[C] += 224;
	evaluate(st, t2);
	assert_int_equal(gauge("remote_share", C), 68); /* 700 of 1024 */
	assert_int_equal(gauge("class_model", C), 1);
	assert_int_equal(count("switches", C), 1);
	assert_int_equal(count("evaluations", 0), 3);
	fake_unload(HY, st);
}

/* With window_ms, the clock decides when to look: not before it passed. */
static void evaluations_wait_for_window_ms(void **unused)
{
	(void)unused;
	void *st = load(FAKE_KV("window_ms = 10"));
	hak_thread *t = fake_thread_new();
	for (int i = 0; i < 16; i++)
		refill(st, t, TICK), flush_all(st, t, TICK);
	assert_int_equal(fake_count("class_local_frees"), 1); /* the first look, at once */
	assert_true(fake_count("now_ns") >= 1);
	fake_advance(9000000);
	for (int i = 0; i < 16; i++)
		refill(st, t, TICK), flush_all(st, t, TICK);
	assert_int_equal(fake_count("class_local_frees"), 1);
	fake_advance(1000000);
	for (int i = 0; i < 8; i++)
		refill(st, t, TICK), flush_all(st, t, TICK);
	assert_int_equal(fake_count("class_local_frees"), 2);
	fake_unload(HY, st);
}

/* ---- G -> F -------------------------------------------------------------------------------- */

/* The owner follows at its next flush: its G slab is abandoned (blocks are out), its cache
 * accepts ANY, what it held goes to the abandoned slab's queue; its next refill carves from
 * what it abandoned, adopted as an ANY slab. */
static void threads_follow_a_switch_to_f(void **unused)
{
	(void)unused;
	void *st = load(KV_FAST);
	hak_thread *t1 = fake_thread_new(), *t2 = fake_thread_new();
	refill(st, t1, C);
	hak_slab *s1 = fake_slab_by_id(1);
	void *b = fake_cache_pop(t1, C); /* with the program across the switch */
	switch_to_f(st, t1, t2);
	fake_clear();
	flush_all(st, t1, C);
	assert_string_equal(fake_actions(), "remote_drain(s1)=0 slab_abandon(s1) cache_accept(t1,2,1) "
					"remote_push(s1,s1#1) remote_push(s1,s1#2) remote_push(s1,s1#3)");
	assert_int_equal(fake_accept(t1, C), ANY);
	assert_true(fake_slab_abandoned(s1));
	fake_clear();
	fake_free_foreign(&hak__builtin_ownership_hybrid, st, t1, b); /* its own old block: foreign now */
	assert_string_equal(fake_actions(), "remote_push(s1,s1#0)");
	fake_clear();
	refill(st, t1, C);
	assert_string_equal(fake_actions(), "slab_adopt(self,2,1)=s1 remote_drain(s1)=4 slab_take(s1,4)=4 cache_fill(t1,2,4)");
	assert_int_equal(fake_slab_info(s1).owner, ANY);
	fake_unload(HY, st);
}

/* Under F a flush goes to the class queue and any thread's refill takes the batch whole. */
static void f_batches_travel_through_the_queue(void **unused)
{
	(void)unused;
	void *st = load(KV_FAST);
	hak_thread *t1 = fake_thread_new(), *t2 = fake_thread_new();
	switch_to_f(st, t1, t2);
	refill(st, t1, C); /* F: an ANY slab */
	void *b = fake_cache_pop(t1, C);
	assert_int_equal(fake_slab_info(fake_block_slab(b)).owner, ANY);
	fake_cache_push(t1, C, b); /* the program frees it: cached */
	fake_clear();
	flush_all(st, t1, C);
	assert_int_equal(count("pushes", 0), 1);
	assert_int_equal(fake_count("chain_return"), 0);
	fake_clear();
	refill(st, t2, C); /* t2 never refilled C: it accepts ANY already */
	assert_int_equal(count("pops", 0), 1);
	assert_int_equal(fake_cached(t2, C), 4);
	assert_int_equal(fake_count("slab_take"), 0);
	assert_int_equal(fake_count("cache_accept"), 0);
	fake_unload(HY, st);
}

/* A thread that caches its own G blocks follows the switch at a refill of another class: its
 * cache of C then holds both kinds, and its flush sorts them block by block. */
static void a_mixed_cache_is_sorted_at_flush(void **unused)
{
	(void)unused;
	void *st = load(KV_FAST);
	hak_thread *t1 = fake_thread_new(), *t2 = fake_thread_new();
	refill(st, t1, C); /* 4 own G blocks cached */
	hak_slab *s1 = fake_slab_by_id(1);
	switch_to_f(st, t1, t2);
	refill(st, t1, TICK); /* follows: s1 abandoned, accept ANY */
	assert_true(fake_slab_abandoned(s1));
	hak_slab *a = fake_slab_new(C, ANY, 8); /* ANY blocks the program frees into t1's cache */
	void *x = fake_slab_give(a), *y = fake_slab_give(a);
	fake_slab_give(a); /* one stays with the program: a never empties here */
	fake_cache_push(t1, C, x);
	fake_cache_push(t1, C, y);
	fake_clear();
	flush_all(st, t1, C);
	assert_int_equal(fake_count("remote_push"), 4); /* s1's, to its queue */
	for (unsigned i = 0; i < 4; i++)
		assert_ptr_equal(fake_nth("remote_push", i)->arg[0], (uintptr_t)s1);
	assert_int_equal(count("pushes", 0), 1); /* a's two, one batch */
	assert_int_equal(fake_slab_remote(s1), 4);
	/* the cache is homogeneous from its next refill on */
	refill(st, t1, C);
	fake_clear();
	flush_all(st, t1, C);
	assert_int_equal(fake_count("remote_push"), 0);
	assert_int_equal(count("pushes", 0), 1);
	fake_unload(HY, st);
}

/* A thread that caches its token frees an ANY block: to the slab's queue, drained under the
 * class lock by the next carve. */
static void any_blocks_freed_by_g_threads_wait_in_the_remote_queue(void **unused)
{
	(void)unused;
	void *st = load(KV_FAST);
	hak_thread *t1 = fake_thread_new(), *t2 = fake_thread_new(), *t3 = fake_thread_new();
	refill(st, t3, C); /* t3 caches its token for C */
	flush_all(st, t3, C);
	switch_to_f(st, t1, t2);
	refill(st, t2, C); /* an ANY slab */
	hak_slab *a = fake_block_slab(fake_cache_pop(t2, C));
	void *b = fake_cache_pop(t2, C);
	fake_clear();
	fake_free_foreign(&hak__builtin_ownership_hybrid, st, t3, b);
	assert_int_equal(fake_count("remote_push"), 1);
	FAKE_ASSERT_CALL(fake_nth("remote_push", 0), "remote_push", (uintptr_t)a, (uintptr_t)b);
	flush_all(st, t2, C); /* two batches' worth left: the queue */
	fake_clear();
	ops()->consolidate(st);
	assert_int_equal(fake_slab_remote(a), 0); /* drained */
	assert_int_equal(fake_count("chain_return"), 1); /* the queued batch back to its slab */
	fake_unload(HY, st);
}

/* ---- F -> G -------------------------------------------------------------------------------- */

/* A thread-local churn under F: refills and flushes cancel out, the class goes back to G, the
 * queue goes back to the slabs at once, and the next refill pairs the token again. */
static void thread_local_churn_brings_f_back_to_g(void **unused)
{
	(void)unused;
	void *st = load(KV_FAST);
	hak_thread *t1 = fake_thread_new(), *t2 = fake_thread_new();
	switch_to_f(st, t1, t2);
	for (int i = 0; i < 300; i++) { /* 4 in, 4 out: 2400 blocks moved, none between threads */
		refill(st, t1, C);
		flush_all(st, t1, C);
	}
	fake.local_frees[C] += 2400;
	evaluate(st, t1);
	assert_int_equal(gauge("class_model", C), 0);
	assert_int_equal(gauge("remote_share", C), 0);
	assert_int_equal(count("switches", C), 2);
	fake_clear();
	refill(st, t1, C);
	FAKE_ASSERT_CALL(fake_nth("cache_accept", 0), "cache_accept", (uintptr_t)t1, C, fake_token(t1));
	FAKE_ASSERT_CALL(fake_nth("slab_acquire", 0), "slab_acquire", (uintptr_t)fake_self, C, fake_token(t1));
	fake_unload(HY, st);
}

/* Consumers that only free and producers that only refill, under F: the flows do not cancel,
 * the class stays F. */
static void producer_consumer_flows_keep_f(void **unused)
{
	(void)unused;
	void *st = load(KV_FAST);
	hak_thread *t1 = fake_thread_new(), *t2 = fake_thread_new(), *p = fake_thread_new(), *k = fake_thread_new();
	switch_to_f(st, t1, t2);
	for (int i = 0; i < 300; i++) { /* p allocates, k frees what p allocated */
		refill(st, p, C);
		for (void *b; (b = fake_cache_pop(p, C));)
			fake_cache_push(k, C, b);
		flush_all(st, k, C);
	}
	fake.local_frees[C] += 1200;
	evaluate(st, p);
	assert_true(gauge("remote_share", C) >= 80);
	assert_int_equal(gauge("class_model", C), 1);
	fake_unload(HY, st);
}

/* ---- exit, trim passes, fork ----------------------------------------------------------------- */

/* An exiting thread's G slabs settle: a free one goes back, one with blocks out is abandoned. */
static void thread_exit_settles_g_slabs(void **unused)
{
	(void)unused;
	void *st = load(KV_FAST);
	fake.slab_capacity = 4;
	hak_thread *t = fake_thread_new();
	refill(st, t, C); /* s1, all 4 */
	void *b = fake_cache_pop(t, C);
	refill(st, t, TICK);
	flush_all(st, t, C);  /* 3 back to s1; b stays out */
	flush_all(st, t, TICK);
	fake_clear();
	ops()->thread_exit(st, t, fake_tstate(t));
	assert_string_equal(fake_actions(), "remote_drain(s1)=0 slab_abandon(s1) remote_drain(s2)=0 slab_release(s2)");
	(void)b;
	fake_unload(HY, st);
}

/* A trim pass reclaims for an idle thread: its parked slabs' queues drained, the free ones
 * back; the current slab stays. */
static void reclaim_drains_parked_slabs(void **unused)
{
	(void)unused;
	void *st = load(KV_FAST);
	fake.slab_capacity = 4;
	hak_thread *t1 = fake_thread_new(), *t2 = fake_thread_new();
	refill(st, t1, C); /* s1 */
	void *b[4];
	for (int i = 0; i < 4; i++)
		b[i] = fake_cache_pop(t1, C);
	refill(st, t1, C); /* s1 exhausted: parked in the ring; s2 current */
	hak_slab *s1 = fake_slab_by_id(1);
	for (int i = 0; i < 4; i++)
		fake_free_foreign(&hak__builtin_ownership_hybrid, st, t2, b[i]);
	fake_clear();
	ops()->reclaim(st, t1, fake_tstate(t1));
	assert_string_equal(fake_actions(), "remote_drain(s1)=4 slab_release(s1)");
	assert_true(fake_slab_released(s1));
	fake_unload(HY, st);
}

/* fork: the class locks around it; the child keeps the batches that were queued. */
static void fork_child_keeps_queued_batches(void **unused)
{
	(void)unused;
	void *st = load(KV_FAST);
	hak_thread *t1 = fake_thread_new(), *t2 = fake_thread_new();
	switch_to_f(st, t1, t2);
	refill(st, t1, C);
	flush_all(st, t1, C);
	assert_int_equal(count("pushes", 0), 1);
	HY->fork_prepare(st);
	HY->fork_parent(st);
	HY->fork_prepare(st);
	HY->fork_child(st);
	fake_clear();
	refill(st, t2, C);
	assert_int_equal(count("pops", 0), 1);
	assert_int_equal(fake_cached(t2, C), 4);
	fake_unload(HY, st);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, fake_setup, fake_teardown)
	const struct CMUnitTest tests[] = {
		T(init_declares_counters_and_checks_keys),
		T(full_counter_table_is_not_fatal),
		T(g_refill_pairs_the_token_with_the_slab),
		T(g_foreign_frees_go_to_the_remote_queue),
		T(remote_share_decides_the_switch),
		T(evaluations_wait_for_window_ms),
		T(threads_follow_a_switch_to_f),
		T(f_batches_travel_through_the_queue),
		T(a_mixed_cache_is_sorted_at_flush),
		T(any_blocks_freed_by_g_threads_wait_in_the_remote_queue),
		T(thread_local_churn_brings_f_back_to_g),
		T(producer_consumer_flows_keep_f),
		T(thread_exit_settles_g_slabs),
		T(reclaim_drains_parked_slabs),
		T(fork_child_keeps_queued_batches),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
