/* test_plugin_decay.c: trim policy `decay` (policies/trim_decay.c) on the fake core
 * (fake_core.h): the curve (nothing purged at the free, everything at decay_ms, monotone and
 * smoothstep-shaped between), each pass purging only the excess over it, empty SuperSlabs on
 * the same curve above a reserve that stays a floor, cached large mappings, decay_ms 0 and -1,
 * out of memory, start / stop / fork, the settings and their errors, and the helper loop on a
 * real thread (it sleeps until the allocator has work, and ends when stopped). The fake's
 * purge purges nothing by itself: the tests play the core, turning what a pass asked to purge
 * into a clean run, and removing the runs of the SuperSlabs a pass unmapped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "fake_core.h"

FAKE_PLUGIN(trim_decay);
#define DECAY (&hak__builtin_trim_decay)

#define MS 1000000ull
#define SS_SIZE ((uint64_t)2 << 20)
#define SS_HDR 4096u
#define SS_BASE ((uintptr_t)0x7f0000000000ull)

static const struct hak_trim_ops *ops(void)
{
	return DECAY->ops;
}

/* smoothstep from 1 to 0 over [0, 1]: the curve the policy promises */
static double h_of(double u)
{
	return u >= 1 ? 0 : u <= 0 ? 1 : 1 - u * u * (3 - 2 * u);
}

static struct hak_free_run a_run(uintptr_t base, uint64_t bytes, uint64_t since, int dirty, int empty)
{
	return (struct hak_free_run){(const void *)base, bytes, since, dirty, empty, (const void *)(base & ~(uintptr_t)0x1fffff)};
}

/* The purge the last pass asked for (max_bytes), 0 when it asked none; then forgets the log. */
static uint64_t asked_purge(void)
{
	unsigned n = fake_count("purge");
	const struct fake_call *c = n ? fake_nth("purge", n - 1) : NULL;
	uint64_t v = c ? c->arg[1] : 0;
	if (c)
		assert_int_equal(c->arg[0], 0); /* longest-free first, whatever their age */
	assert_true(n <= 1);
	fake_clear();
	return v;
}

/* ---- settings ---------------------------------------------------------------------------- */

static void settings_defaults_and_errors(void **unused)
{
	(void)unused;
	void *st;
	assert_int_equal(fake_init(DECAY, FAKE_NO_KV, &st), 0);
	fake_unload(DECAY, st);
	assert_int_equal(fake_init(DECAY, FAKE_KV("decay_ms = -1", "decay_ms = 0", "decay_ms = 600000",
						  "empty_reserve = 0", "pass_ms = 60000"),
				   &st),
			 0);
	fake_unload(DECAY, st);
	static const struct {
		const char *kv, *msg;
	} bad[] = {
		{"decay_ms = -2", "line 1: decay_ms = '-2': expected an integer in [-1, 600000]"},
		{"decay_ms = 600001", "line 1: decay_ms = '600001': expected an integer in [-1, 600000]"},
		{"decay_ms = 10s", "line 1: decay_ms = '10s': expected an integer in [-1, 600000]"},
		{"empty_reserve = 1025", "line 1: empty_reserve = '1025': expected an integer in [0, 1024]"},
		{"pass_ms = -1", "line 1: pass_ms = '-1': expected an integer in [0, 60000]"},
		{"large_cache_slots = 257", "line 1: large_cache_slots = '257': expected an integer in [0, 256]"},
		{"decay = 5", "line 1: unknown key 'decay' (this policy takes: decay_ms, empty_reserve, pass_ms, "
			      "large_cache_bytes, large_cache_max_one, large_cache_slots)"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(fake_init(DECAY, FAKE_KV(bad[i].kv), &st), EINVAL);
		assert_string_equal(fake_err(), bad[i].msg);
	}
	/* The second line is named when it is the bad one. */
	assert_int_equal(fake_init(DECAY, FAKE_KV("decay_ms = 5", "empty_reserve = lots"), &st), EINVAL);
	assert_string_equal(fake_err(), "line 2: empty_reserve = 'lots': expected an integer in [0, 1024]");
	assert_string_equal(fake_actions(), ""); /* init asked the core nothing */
	/* The keys as `hakmem policies --keys` shows them. */
	assert_int_equal(DECAY->settings_count, 6);
	assert_string_equal(DECAY->settings_spec[0].key, "decay_ms");
	assert_string_equal(DECAY->settings_spec[0].def, "10000");
	assert_int_equal(DECAY->settings_spec[0].lo, -1);
	assert_string_equal(DECAY->settings_spec[1].def, "2");
}

/* start: the large cache's keys, and the counters by name. */
static void start_sets_limits_and_counters(void **unused)
{
	(void)unused;
	void *st = fake_load(DECAY, FAKE_KV("large_cache_bytes = 8M", "large_cache_slots = 3"));
	DECAY->start(st);
	FAKE_ASSERT_CALL(fake_nth("large_limits", 0), "large_limits", 8u << 20, 32u << 20, 3);
	assert_int_equal(fake_count("counter_register"), 5);
	assert_true(fake_counter_id("passes") >= 0);
	assert_true(fake_counter_id("purged_bytes") >= 0);
	assert_true(fake_counter_id("superslabs_released") >= 0);
	assert_true(fake_counter_id("large_released") >= 0);
	assert_true(fake_counter_id("dirty_limit_bytes") >= 0);
	fake.spawn = FAKE_SPAWN_REFUSE;
	ops()->tick(st);
	assert_int_equal(fake_counter("passes"), 1);
	fake_unload(DECAY, st);
}

/* ---- the curve --------------------------------------------------------------------------- */

/* One run of 1 MB freed at t0, passes every decay_ms / 32: the share kept dirty follows h,
 * nothing goes at the free, everything at decay_ms, never more than the curve asks per pass. */
static void dirty_pages_follow_the_curve(void **unused)
{
	(void)unused;
	const uint64_t B = 1 << 20, decay = 1000 * MS, t0 = fake.now_ns;
	void *st = fake_load(DECAY, FAKE_KV("decay_ms = 1000"));
	DECAY->start(st);
	fake.spawn = FAKE_SPAWN_REFUSE; /* passes from the ticks only */
	uint64_t purged = 0, last = 0;
	double worst = 0;
	for (unsigned step = 0; step <= 33; step++) {
		fake.nruns = 0;
		if (purged)
			fake.runs[fake.nruns++] = a_run(SS_BASE, purged, t0, 0, 0);
		if (purged < B)
			fake.runs[fake.nruns++] = a_run(SS_BASE + purged, B - purged, t0, 1, 0);
		fake_clear();
		ops()->tick(st);
		assert_int_equal(fake_count("free_runs_each"), 1); /* a pass ran */
		uint64_t ask = asked_purge();
		double u = (double)(fake.now_ns - t0) / (double)decay;
		double want = (double)(B - purged) - (double)B * h_of(u); /* the excess over the curve */
		if (want < 0)
			want = 0;
		assert_true((double)ask >= want - 64 && (double)ask <= want + 64); /* Q16 rounding */
		assert_true(ask <= B - purged);
		if (step == 0)
			assert_int_equal(ask, 0); /* at the free: nothing */
		if (step > 0 && step < 32)
			worst = (double)ask / (double)B > worst ? (double)ask / (double)B : worst;
		purged += ask;
		assert_true(purged >= last); /* monotone */
		last = purged;
		fake_advance(decay / 32);
	}
	assert_int_equal(purged, B); /* at decay_ms: everything */
	/* The steepest slope of smoothstep is 1.5 / decay_ms: a pass every decay_ms / 32 purges at
	 * most 1.5 / 32 of what was freed (no burst of madvise). */
	assert_true(worst <= 1.5 / 32 + 0.001);
	assert_true(worst > 1.4 / 32);
	fake_unload(DECAY, st);
}

/* Half-way the policy has purged half, a quarter in a fifth of the way at most. */
static void curve_points(void **unused)
{
	(void)unused;
	const uint64_t B = 64 << 20, t0 = fake.now_ns;
	static const struct {
		unsigned ms;
		double kept;
	} pts[] = {{0, 1.0}, {100, 0.972}, {250, 0.84375}, {500, 0.5}, {750, 0.15625}, {900, 0.028}, {1000, 0}, {5000, 0}};
	for (size_t i = 0; i < sizeof pts / sizeof pts[0]; i++) {
		fake_reset();
		fake.now_ns = t0 + (uint64_t)pts[i].ms * MS;
		fake.spawn = FAKE_SPAWN_REFUSE;
		void *st = fake_load(DECAY, FAKE_KV("decay_ms = 1000"));
		fake.runs[0] = a_run(SS_BASE, B, t0, 1, 0);
		fake.nruns = 1;
		fake_clear();
		ops()->tick(st);
		double kept = 1 - (double)asked_purge() / (double)B;
		assert_true(kept > pts[i].kept - 0.001 && kept < pts[i].kept + 0.001);
		fake_unload(DECAY, st);
	}
}

/* Two passes within pass_ms: the second does nothing (the ticks are rate-limited). Purged
 * pages still count on the curve: a second pass at the same point asks for nothing more. */
static void one_pass_per_interval_and_no_compounding(void **unused)
{
	(void)unused;
	const uint64_t B = 1 << 20, t0 = fake.now_ns;
	void *st = fake_load(DECAY, FAKE_KV("decay_ms = 1000", "pass_ms = 50"));
	fake.spawn = FAKE_SPAWN_REFUSE;
	fake.runs[0] = a_run(SS_BASE, B, t0, 1, 0);
	fake.nruns = 1;
	fake_advance(500 * MS);
	ops()->tick(st);
	uint64_t ask = asked_purge();
	assert_true(ask > B / 2 - 64 && ask < B / 2 + 64);
	ops()->tick(st);
	fake_advance(49 * MS);
	ops()->tick(st);
	assert_int_equal(fake_count("free_runs_each"), 0); /* rate-limited */
	/* The core purged what was asked: a clean run and a dirty one, both freed at t0. */
	fake.runs[0] = a_run(SS_BASE, ask, t0, 0, 0);
	fake.runs[1] = a_run(SS_BASE + ask, B - ask, t0, 1, 0);
	fake.nruns = 2;
	fake_advance(1 * MS);
	ops()->tick(st);
	/* 550 ms: h = 0.425; the second pass asks only the difference, 0.075 B. */
	uint64_t more = asked_purge();
	double want = (double)B * (h_of(0.5) - h_of(0.55));
	assert_true((double)more > want - 64 && (double)more < want + 64);
	fake_unload(DECAY, st);
}

/* Units never used since their SuperSlab was mapped (free_since 0) are not on the curve. */
static void never_used_units_are_not_on_the_curve(void **unused)
{
	(void)unused;
	void *st = fake_load(DECAY, FAKE_KV("decay_ms = 1000"));
	fake.spawn = FAKE_SPAWN_REFUSE;
	fake.runs[0] = a_run(SS_BASE, 1 << 20, 0, 0, 0);           /* clean, never used */
	fake.runs[1] = a_run(SS_BASE + (1 << 20), 1 << 20, fake.now_ns, 1, 0); /* dirty, freed now */
	fake.nruns = 2;
	fake_advance(500 * MS);
	ops()->tick(st);
	uint64_t ask = asked_purge();
	assert_true(ask > (1 << 19) - 64 && ask < (1 << 19) + 64); /* half of the dirty MB, not of 2 MB */
	fake_unload(DECAY, st);
}

/* ---- empty SuperSlabs -------------------------------------------------------------------- */

/* n empty SuperSlabs, emptied at `since`, as free runs (each in two runs: a purged first part,
 * so the runs of one SuperSlab must be put together) and in the fake's model. */
static void add_empties(unsigned first, unsigned n, uint64_t since)
{
	for (unsigned i = first; i < first + n; i++) {
		uintptr_t ss = SS_BASE + i * SS_SIZE;
		fake.runs[fake.nruns++] = a_run(ss + SS_HDR, (64 << 10) - SS_HDR, since, 0, 1);
		fake.runs[fake.nruns++] = a_run(ss + (64 << 10), SS_SIZE - (64 << 10), since, 1, 1);
	}
}

/* The oldest `n` (the first in the runs) were unmapped: their runs go. */
static void drop_empties(unsigned n)
{
	memmove(fake.runs, fake.runs + 2 * n, (fake.nruns - 2 * n) * sizeof fake.runs[0]);
	fake.nruns -= 2 * n;
}

static unsigned asked_release(void)
{
	const struct fake_call *c = fake_nth("release_empty", 0);
	if (!c)
		return 0;
	assert_int_equal(fake_count("release_empty"), 1);
	assert_int_equal(c->arg[1], 0); /* longest-empty first, whatever their age */
	return (unsigned)c->arg[2];
}

/* 6 empties, reserve 2: the count kept follows ceil(6 h), the reserve stays for ever; the
 * released ones count on the curve (no compounding). */
static void empties_follow_the_curve_above_the_reserve(void **unused)
{
	(void)unused;
	const uint64_t t0 = fake.now_ns;
	void *st = fake_load(DECAY, FAKE_KV("decay_ms = 1000", "empty_reserve = 2"));
	fake.spawn = FAKE_SPAWN_REFUSE;
	fake_add_empty(6);
	add_empties(0, 6, t0);
	unsigned left = 6;
	for (unsigned ms = 0; ms <= 1500; ms += 50) {
		fake.now_ns = t0 + ms * MS;
		fake_clear();
		ops()->tick(st);
		unsigned want_keep = (unsigned)__builtin_ceil(6 * h_of(ms / 1000.0) - 1e-9);
		if (want_keep < 2)
			want_keep = 2;
		unsigned asked = asked_release();
		assert_int_equal(asked, left > want_keep ? left - want_keep : 0);
		if (asked) {
			FAKE_ASSERT_CALL(fake_nth("release_empty", 0), "release_empty", 2, 0, asked);
			drop_empties(asked);
			left -= asked;
		}
		assert_int_equal(fake_empties(), left);
		assert_true(left >= 2);
	}
	assert_int_equal(left, 2); /* the reserve, a floor */
	fake_unload(DECAY, st);
}

/* A reserve above what the curve keeps: only what is beyond it goes. */
static void the_reserve_is_a_floor(void **unused)
{
	(void)unused;
	const uint64_t t0 = fake.now_ns;
	void *st = fake_load(DECAY, FAKE_KV("decay_ms = 1000", "empty_reserve = 4"));
	fake.spawn = FAKE_SPAWN_REFUSE;
	fake_add_empty(5);
	add_empties(0, 5, t0);
	fake_advance(2000 * MS);
	ops()->tick(st);
	FAKE_ASSERT_CALL(fake_nth("release_empty", 0), "release_empty", 4, 0, 1);
	assert_int_equal(fake_empties(), 4);
	drop_empties(1);
	fake_clear();
	fake_advance(100 * MS);
	ops()->tick(st);
	assert_int_equal(fake_count("release_empty"), 0);
	/* Their pages are purged all the same: all of them dirty, none on the curve. */
	assert_int_equal(asked_purge(), 4 * (SS_SIZE - (64 << 10)));
	fake_unload(DECAY, st);
}

/* ---- cached large mappings --------------------------------------------------------------- */

/* A lone cached mapping stays until decay_ms; three go one by one as the curve falls. */
static void large_mappings_follow_the_curve(void **unused)
{
	(void)unused;
	const uint64_t t0 = fake.now_ns, M10 = 10 << 20;
	void *st = fake_load(DECAY, FAKE_KV("decay_ms = 1000"));
	DECAY->start(st);
	fake.spawn = FAKE_SPAWN_REFUSE;
	fake.facts.large_cached = 1;
	fake.facts.large_cached_bytes = M10;
	fake.facts.oldest_large_ns = t0;
	for (unsigned ms = 0; ms < 1000; ms += 40) {
		fake.now_ns = t0 + ms * MS;
		fake_clear();
		ops()->tick(st);
		assert_int_equal(fake_count("large_release"), 0);
	}
	fake.now_ns = t0 + 1000 * MS;
	fake_clear();
	ops()->tick(st);
	FAKE_ASSERT_CALL(fake_nth("large_release", 0), "large_release", 0, 0);
	fake_unload(DECAY, st);

	/* Three of 10 MB cached at once: kept while the curve wants 2/3 of them at least. */
	fake_reset();
	fake.spawn = FAKE_SPAWN_REFUSE;
	st = fake_load(DECAY, FAKE_KV("decay_ms = 1000"));
	DECAY->start(st);
	const uint64_t t1 = fake.now_ns;
	fake.facts.large_cached = 3;
	fake.facts.large_cached_bytes = 3 * M10;
	unsigned first = 0;
	for (unsigned ms = 0; ms <= 1000 && !first; ms += 20) {
		fake.now_ns = t1 + ms * MS;
		fake_clear();
		ops()->tick(st);
		if (fake_count("large_release"))
			first = ms;
	}
	/* h < 2/3 from u = 0.39: one goes (keep_bytes leaves room for two). */
	assert_true(first >= 380 && first <= 420);
	const struct fake_call *c = fake_nth("large_release", 0);
	assert_true(c->arg[1] >= 2 * M10 - M10 / 2 && c->arg[1] < 3 * M10);
	fake_unload(DECAY, st);
}

/* ---- decay_ms 0 and -1 ------------------------------------------------------------------- */

static void decay_zero_is_eager(void **unused)
{
	(void)unused;
	void *st = fake_load(DECAY, FAKE_KV("decay_ms = 0", "empty_reserve = 1"));
	fake.spawn = FAKE_SPAWN_REFUSE;
	fake_add_empty(3);
	ops()->superslab_empty(st);
	assert_string_equal(fake_actions(), "release_empty(1,0,~0u)=2 purge(0,~0)=0 spawn_helper(p,state)=11");
	/* A pass: everything dirty goes at once, whatever its age. */
	fake.runs[0] = a_run(SS_BASE, 1 << 20, fake.now_ns, 1, 0);
	fake.nruns = 1;
	fake_clear();
	ops()->tick(st);
	assert_int_equal(asked_purge(), 1 << 20);
	fake_unload(DECAY, st);
}

static void decay_minus_one_never_purges(void **unused)
{
	(void)unused;
	void *st = fake_load(DECAY, FAKE_KV("decay_ms = -1"));
	fake_add_empty(3);
	fake.runs[0] = a_run(SS_BASE, 1 << 20, fake.now_ns, 1, 0);
	fake.nruns = 1;
	ops()->superslab_empty(st);
	fake_advance(3600000 * MS);
	ops()->tick(st);
	/* Only the housekeeping: no purge, no release, no helper. */
	assert_string_equal(fake_actions(), "reap_parked()=0 consolidate() collect_abandoned()=0 reclaim_threads()=0");
	assert_int_equal(fake_empties(), 3);
	fake_unload(DECAY, st);
}

/* ---- out of memory, stop, fork ----------------------------------------------------------- */

static void out_of_memory_gives_everything_back(void **unused)
{
	(void)unused;
	void *st = fake_load(DECAY, FAKE_KV("empty_reserve = 2"));
	fake_add_empty(3);
	assert_int_not_equal(ops()->out_of_memory(st, 1 << 20), 0);
	assert_string_equal(fake_actions(), "reap_parked()=0 consolidate() collect_abandoned()=0 reclaim_threads()=0 "
					    "release_empty(0,0,~0u)=3 purge(0,~0)=0 large_release(0,0)=0");
	fake_clear();
	assert_int_equal(ops()->out_of_memory(st, 1 << 20), 0); /* nothing left: the allocation fails */
	fake_unload(DECAY, st);
}

static void helper_starts_once_and_again_after_fork(void **unused)
{
	(void)unused;
	void *st = fake_load(DECAY, FAKE_NO_KV);
	ops()->superslab_empty(st);
	assert_string_equal(fake_actions(), "spawn_helper(p,state)=0 set_parking(8,64)");
	fake_clear();
	ops()->superslab_empty(st);
	assert_string_equal(fake_actions(), "");
	DECAY->fork_child(st); /* the helper did not survive fork() */
	assert_string_equal(fake_actions(), "set_parking(0,0)");
	fake_clear();
	ops()->superslab_empty(st);
	assert_string_equal(fake_actions(), "spawn_helper(p,state)=0 set_parking(8,64)");
	fake_clear();
	DECAY->stop(st);
	assert_string_equal(fake_actions(), "set_parking(0,0)");
	fake_clear();
	fake_advance(1000 * MS);
	ops()->tick(st); /* a pass, but no helper any more */
	assert_int_equal(fake_count("spawn_helper"), 0);
	assert_int_equal(fake_helpers(), 2);
	fake_unload(DECAY, st);
}

/* ---- the helper on a real thread --------------------------------------------------------- */

/* The helper gives back what is on the curve while the program is quiet (coming back by
 * itself while something is left), goes to sleep once nothing is left, wakes when the allocator
 * has work again, and ends when stopped. The fake clock moves only when the test moves it, so
 * the helper's passes in between find nothing due. */
static void helper_passes_while_quiet_then_sleeps(void **unused)
{
	(void)unused;
	const uint64_t B = 1 << 20, t0 = fake.now_ns;
	void *st = fake_load(DECAY, FAKE_KV("decay_ms = 100")); /* pass_ms: 10 */
	fake.runs[0] = a_run(SS_BASE, B, t0, 1, 0);
	fake.nruns = 1;
	ops()->tick(st); /* a pass at the free (nothing to purge yet), and the helper */
	assert_int_equal(fake_count("purge"), 0);
	assert_int_equal(fake_helpers(), 1);
	fake_lock();
	fake.now_ns = t0 + 50 * MS; /* half-way: half of it goes */
	fake.purge_ret = B / 2;
	fake_unlock();
	fake_helper_start(0);
	assert_int_equal(fake_wait_count("purge", 1), 0);
	fake_lock();
	uint64_t ask = fake_nth("purge", 0)->arg[1];
	assert_true(ask > B / 2 - 64 && ask < B / 2 + 64);
	fake.runs[0] = a_run(SS_BASE, ask, t0, 0, 0); /* the core purged it */
	fake.runs[1] = a_run(SS_BASE + ask, B - ask, t0, 1, 0);
	fake.nruns = 2;
	fake.now_ns = t0 + 100 * MS; /* the program stays quiet past decay_ms: no call wakes it */
	fake.purge_ret = B - ask;
	fake_unlock();
	assert_int_equal(fake_wait_count("purge", 2), 0);
	fake_lock();
	assert_int_equal(fake_nth("purge", 1)->arg[1], B - ask); /* the rest, from the helper */
	fake.runs[1].dirty = 0;
	unsigned scans = fake_count("free_runs_each");
	fake.now_ns += 50 * MS;
	fake_unlock();
	/* Nothing left: it waits for work. A SuperSlab empties: it wakes and passes again. */
	ops()->superslab_empty(st);
	assert_int_equal(fake_wait_count("free_runs_each", scans + 1), 0);
	DECAY->stop(st);
	fake_helper_join(0); /* it ends: stop woke it */
	fake_unload(DECAY, st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(settings_defaults_and_errors, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(start_sets_limits_and_counters, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(dirty_pages_follow_the_curve, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(curve_points, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(one_pass_per_interval_and_no_compounding, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(never_used_units_are_not_on_the_curve, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(empties_follow_the_curve_above_the_reserve, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(the_reserve_is_a_floor, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(large_mappings_follow_the_curve, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(decay_zero_is_eager, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(decay_minus_one_never_purges, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(out_of_memory_gives_everything_back, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(helper_starts_once_and_again_after_fork, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(helper_passes_while_quiet_then_sleeps, fake_setup, fake_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
