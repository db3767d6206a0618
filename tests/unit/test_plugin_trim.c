/* test_plugin_trim.c: the trim policies' own decisions (idle, eager, none), on the fake core
 * (fake_core.h): what each asks the core, in order, with which arguments, when SuperSlabs
 * empty, when the allocator ticks, when memory runs out, at start, stop and fork; their keys;
 * and idle's helper loop on a real thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include "fake_core.h"

FAKE_PLUGIN(trim_idle);
FAKE_PLUGIN(trim_eager);
FAKE_PLUGIN(trim_none);

#define IDLE (&hak__builtin_trim_idle)
#define EAGER (&hak__builtin_trim_eager)
#define NONE (&hak__builtin_trim_none)

static const struct hak_trim_ops *ops_of(const struct hak_policy_desc *d)
{
	return d->ops;
}

/* ---- idle ------------------------------------------------------------------------------------ */

/* init asks the core nothing; start hands the large-cache keys over, defaults or configured. */
static void idle_start_sets_large_limits(void **unused)
{
	(void)unused;
	void *st = fake_load(IDLE, FAKE_NO_KV);
	assert_string_equal(fake_actions(), "");
	IDLE->start(st);
	assert_string_equal(fake_actions(), "large_limits(100663296,33554432,64)");
	fake_unload(IDLE, st);

	fake_clear();
	st = fake_load(IDLE, FAKE_KV("large_cache_bytes = 8M", "large_cache_max_one = 1M", "large_cache_slots = 3"));
	IDLE->start(st);
	assert_string_equal(fake_actions(), "large_limits(8388608,1048576,3)");
	struct hak_large_limits l = fake_limits();
	assert_int_equal(l.size, sizeof l);
	assert_int_equal(l.slots, 3);
	fake_unload(IDLE, st);
}

static void idle_rejects_bad_settings(void **unused)
{
	(void)unused;
	void *st;
	assert_int_equal(fake_init(IDLE, FAKE_KV("idle_ms = 0"), &st), EINVAL);
	assert_string_equal(fake_err(), "line 1: idle_ms = '0': expected an integer in [1, 60000]");
	assert_int_equal(fake_init(IDLE, FAKE_KV("idle_ms = 5", "empty_reserve = lots"), &st), EINVAL);
	assert_string_equal(fake_err(), "line 2: empty_reserve = 'lots': expected an integer in [0, 1024]");
	assert_int_equal(fake_init(IDLE, FAKE_KV("large_cache_bytes = 3X"), &st), EINVAL);
	assert_string_equal(fake_err(),
			    "line 1: large_cache_bytes = '3X': expected a size (K, M or G suffix allowed) in [0, 1099511627776]");
	assert_int_equal(fake_init(IDLE, FAKE_KV("reserve = 2"), &st), EINVAL);
	assert_string_equal(fake_err(), "line 1: unknown key 'reserve' (this policy takes: idle_ms, empty_reserve, "
					"large_cache_bytes, large_cache_max_one, large_cache_slots)");
	assert_string_equal(fake_actions(), ""); /* a refused init asked the core nothing */
}

/* The first empty, no helper yet: empties beyond the reserve go back at once (no pass is
 * coming), then the helper starts and exited threads' states may park. */
static void idle_first_empty_releases_beyond_reserve_and_starts_helper(void **unused)
{
	(void)unused;
	void *st = fake_load(IDLE, FAKE_KV("empty_reserve = 2"));
	fake_add_empty(5);
	ops_of(IDLE)->superslab_empty(st);
	assert_string_equal(fake_actions(), "release_empty(2,0,~0u)=3 spawn_helper(p,state)=0 set_parking(8,64)");
	FAKE_ASSERT_CALL(fake_nth("release_empty", 0), "release_empty", 2, 0, ~0u);
	assert_int_equal(fake_empties(), 2);
	assert_int_equal(fake_helpers(), 1);
	unsigned states, units;
	fake_parking(&states, &units);
	assert_int_equal(states, 8);
	assert_int_equal(units, 64);
	fake_unload(IDLE, st);
}

/* Not more empties than the reserve: nothing released, the helper still starts. */
static void idle_empty_within_reserve_releases_nothing(void **unused)
{
	(void)unused;
	void *st = fake_load(IDLE, FAKE_KV("empty_reserve = 2"));
	fake_add_empty(2);
	ops_of(IDLE)->superslab_empty(st);
	assert_string_equal(fake_actions(), "spawn_helper(p,state)=0 set_parking(8,64)");
	assert_int_equal(fake_count("empty_count"), 1); /* it looked */
	assert_int_equal(fake_empties(), 2);
	fake_unload(IDLE, st);
}

/* While a helper runs, an empty or a tick waits for its next pass: nothing inline. */
static void idle_with_helper_running_does_nothing_inline(void **unused)
{
	(void)unused;
	void *st = fake_load(IDLE, FAKE_KV("empty_reserve = 1"));
	ops_of(IDLE)->tick(st); /* the allocator got busy: the helper starts (held by the fake) */
	assert_string_equal(fake_actions(), "spawn_helper(p,state)=0 set_parking(8,64)");
	fake_clear();
	fake_add_empty(4);
	ops_of(IDLE)->superslab_empty(st);
	ops_of(IDLE)->tick(st);
	ops_of(IDLE)->superslab_empty(st);
	assert_string_equal(fake_actions(), "");
	assert_int_equal(fake_empties(), 4);
	assert_int_equal(fake_helpers(), 1);
	fake_unload(IDLE, st);
}

/* No thread can be made: every empty and tick runs the pass inline. Exactly the reserve stays
 * after one pass, none after two idle passes (the second unmaps what the first saw empty). */
static void idle_without_thread_trims_inline(void **unused)
{
	(void)unused;
	fake.spawn = FAKE_SPAWN_REFUSE;
	void *st = fake_load(IDLE, FAKE_KV("empty_reserve = 2"));
	fake_add_empty(5);
	ops_of(IDLE)->superslab_empty(st);
	assert_string_equal(fake_actions(), "release_empty(2,0,~0u)=3 spawn_helper(p,state)=11 trim_pass(2,3)");
	FAKE_ASSERT_CALL(fake_nth("trim_pass", 0), "trim_pass", 2, HAK_TRIM_PURGE | HAK_TRIM_LARGE_AGE);
	assert_int_equal(fake_empties(), 2);
	fake_clear();
	ops_of(IDLE)->tick(st);
	assert_string_equal(fake_actions(), "spawn_helper(p,state)=11 trim_pass(2,3)");
	assert_int_equal(fake_empties(), 0);
	unsigned states, units;
	fake_parking(&states, &units);
	assert_int_equal(states, 0); /* no helper: nothing would retire parked states */
	assert_int_equal(fake_helpers(), 0);
	fake_unload(IDLE, st);
}

/* Out of memory: everything goes back, reserve and every cached large mapping included; the
 * core retries only when something did. */
static void idle_out_of_memory_gives_everything_back(void **unused)
{
	(void)unused;
	void *st = fake_load(IDLE, FAKE_NO_KV);
	assert_int_equal(ops_of(IDLE)->out_of_memory(st, 1 << 20), 0);
	assert_string_equal(fake_actions(), "trim_pass(0,5)");
	FAKE_ASSERT_CALL(fake_call_at(0), "trim_pass", 0, HAK_TRIM_PURGE | HAK_TRIM_LARGE_ALL);
	fake.trim_large = 1;
	assert_int_not_equal(ops_of(IDLE)->out_of_memory(st, 1 << 20), 0);
	fake.trim_large = 0;
	fake.trim_purged = 4096;
	assert_int_not_equal(ops_of(IDLE)->out_of_memory(st, 1 << 20), 0);
	fake.trim_purged = 0;
	fake_add_empty(1);
	assert_int_not_equal(ops_of(IDLE)->out_of_memory(st, 1 << 20), 0);
	assert_int_equal(fake_empties(), 0);
	assert_int_equal(fake_count("spawn_helper"), 0); /* no helper from the allocating thread */
	fake_unload(IDLE, st);
}

/* stop: no more parking, and no helper starts afterwards. */
static void idle_stop_ends_parking_and_helpers(void **unused)
{
	(void)unused;
	void *st = fake_load(IDLE, FAKE_KV("empty_reserve = 1"));
	IDLE->stop(st);
	assert_string_equal(fake_actions(), "set_parking(0,0)");
	fake_clear();
	fake_add_empty(3);
	ops_of(IDLE)->superslab_empty(st);
	ops_of(IDLE)->tick(st);
	assert_string_equal(fake_actions(), "release_empty(1,0,~0u)=2");
	fake_unload(IDLE, st);
}

/* fork_child: the helper did not survive; parking off until the child's own helper runs,
 * which the child's next tick starts. */
static void idle_fork_child_forgets_the_helper(void **unused)
{
	(void)unused;
	void *st = fake_load(IDLE, FAKE_NO_KV);
	ops_of(IDLE)->tick(st);
	assert_int_equal(fake_helpers(), 1);
	fake_clear();
	IDLE->fork_child(st);
	assert_string_equal(fake_actions(), "set_parking(0,0)");
	fake_clear();
	ops_of(IDLE)->tick(st);
	assert_string_equal(fake_actions(), "spawn_helper(p,state)=0 set_parking(8,64)");
	assert_int_equal(fake_helpers(), 2);
	fake_unload(IDLE, st);
}

/* The helper loop on a real thread: a pass each idle_ms while the allocator is busy, and two
 * more once it goes quiet, then none until it is busy again; it ends after stop. The counts do
 * not depend on timing: the loop counts its own wake-ups. */
static void idle_helper_passes_while_busy_then_twice_more(void **unused)
{
	(void)unused;
	void *st = fake_load(IDLE, FAKE_KV("idle_ms = 1", "empty_reserve = 2"));
	fake_add_empty(5);
	ops_of(IDLE)->superslab_empty(st); /* 3 go back inline, the helper is spawned (held) */
	assert_int_equal(fake_empties(), 2);
	fake_clear();
	fake_helper_start(0);
	assert_int_equal(fake_wait_count("trim_pass", 3), 0);
	nanosleep(&(struct timespec){0, 30 * 1000000}, NULL); /* tens of wake-ups with nothing new */
	assert_int_equal(fake_count("trim_pass"), 3);
	assert_int_equal(fake_empties(), 0); /* the reserve went at the second pass */
	ops_of(IDLE)->tick(st);              /* busy again: three more */
	assert_int_equal(fake_wait_count("trim_pass", 6), 0);
	nanosleep(&(struct timespec){0, 30 * 1000000}, NULL);
	assert_int_equal(fake_count("trim_pass"), 6);
	for (unsigned i = 0; i < 6; i++)
		FAKE_ASSERT_CALL(fake_nth("trim_pass", i), "trim_pass", 2, HAK_TRIM_PURGE | HAK_TRIM_LARGE_AGE);
	IDLE->stop(st);
	fake_helper_join(0); /* returns: the loop saw stopping at its next wake */
	assert_int_equal(fake_count("spawn_helper"), 0); /* the helper itself never spawns */
	fake_unload(IDLE, st);
}

/* ---- eager ----------------------------------------------------------------------------------- */

/* Each empty goes back at once, free units purged with it. */
static void eager_empty_releases_and_purges_at_once(void **unused)
{
	(void)unused;
	void *st = fake_load(EAGER, FAKE_NO_KV);
	fake_add_empty(3);
	fake.purge_ret = 65536;
	ops_of(EAGER)->superslab_empty(st);
	assert_string_equal(fake_actions(), "release_empty(0,0,~0u)=3 purge(0,~0)=65536");
	FAKE_ASSERT_CALL(fake_call_at(1), "purge", 0, UINT64_MAX);
	assert_int_equal(fake_empties(), 0);
	fake_unload(EAGER, st);

	fake_clear();
	st = fake_load(EAGER, FAKE_KV("empty_reserve = 1"));
	fake_add_empty(3);
	ops_of(EAGER)->superslab_empty(st);
	assert_string_equal(fake_actions(), "release_empty(1,0,~0u)=2 purge(0,~0)=65536");
	assert_int_equal(fake_empties(), 1);
	fake_unload(EAGER, st);
}

/* A pass from the slow paths at most every 10 ms of the clock. */
static void eager_tick_runs_a_pass_at_most_every_10ms(void **unused)
{
	(void)unused;
	void *st = fake_load(EAGER, FAKE_KV("empty_reserve = 1"));
	ops_of(EAGER)->tick(st);
	assert_string_equal(fake_actions(), "trim_pass(1,3)");
	fake_clear();
	ops_of(EAGER)->tick(st);
	fake_advance(9999999);
	ops_of(EAGER)->tick(st);
	assert_string_equal(fake_actions(), "");
	assert_int_equal(fake_count("now_ns"), 2);
	fake_advance(1);
	ops_of(EAGER)->tick(st);
	assert_string_equal(fake_actions(), "trim_pass(1,3)");
	fake_clear();
	fake_advance(25000000);
	ops_of(EAGER)->tick(st);
	ops_of(EAGER)->tick(st);
	assert_string_equal(fake_actions(), "trim_pass(1,3)");
	assert_int_equal(fake_count("spawn_helper"), 0); /* no helper thread, ever */
	fake_unload(EAGER, st);
}

static void eager_out_of_memory_and_start(void **unused)
{
	(void)unused;
	void *st = fake_load(EAGER, FAKE_KV("large_cache_bytes = 0"));
	assert_int_equal(ops_of(EAGER)->out_of_memory(st, 4096), 0);
	fake.trim_large = 2;
	assert_int_not_equal(ops_of(EAGER)->out_of_memory(st, 4096), 0);
	assert_string_equal(fake_actions(), "trim_pass(0,5) trim_pass(0,5)");
	fake_clear();
	EAGER->start(st);
	assert_string_equal(fake_actions(), "large_limits(0,33554432,64)");
	fake_unload(EAGER, st);
}

static void eager_rejects_bad_settings(void **unused)
{
	(void)unused;
	void *st;
	assert_int_equal(fake_init(EAGER, FAKE_KV("empty_reserve = 2000"), &st), EINVAL);
	assert_string_equal(fake_err(), "line 1: empty_reserve = '2000': expected an integer in [0, 1024]");
	assert_int_equal(fake_init(EAGER, FAKE_KV("idle_ms = 5"), &st), EINVAL);
	assert_string_equal(fake_err(), "line 1: unknown key 'idle_ms' (this policy takes: empty_reserve, "
					"large_cache_bytes, large_cache_max_one, large_cache_slots)");
}

/* ---- none ------------------------------------------------------------------------------------ */

/* No op at all: nothing is ever released on its own; start still sets the large cache. */
static void none_has_no_op_but_start(void **unused)
{
	(void)unused;
	const struct hak_trim_ops *o = ops_of(NONE);
	assert_int_equal(o->size, sizeof *o);
	assert_null(o->superslab_empty);
	assert_null(o->tick);
	assert_null(o->out_of_memory);
	assert_null(NONE->stop);
	assert_null(NONE->fork_child);
	void *st = fake_load(NONE, FAKE_KV("large_cache_slots = 0", "large_cache_max_one = 64K"));
	assert_string_equal(fake_actions(), "");
	NONE->start(st);
	assert_string_equal(fake_actions(), "large_limits(100663296,65536,0)");
	fake_unload(NONE, st);
}

static void none_takes_only_the_large_cache_keys(void **unused)
{
	(void)unused;
	void *st;
	assert_int_equal(fake_init(NONE, FAKE_KV("empty_reserve = 1"), &st), EINVAL);
	assert_string_equal(fake_err(), "line 1: unknown key 'empty_reserve' (this policy takes: large_cache_bytes, "
					"large_cache_max_one, large_cache_slots)");
	assert_int_equal(fake_init(NONE, FAKE_KV("large_cache_slots = 257"), &st), EINVAL);
	assert_string_equal(fake_err(), "line 1: large_cache_slots = '257': expected an integer in [0, 256]");
}

#define T(f) cmocka_unit_test_setup_teardown(f, fake_setup, fake_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(idle_start_sets_large_limits),
		T(idle_rejects_bad_settings),
		T(idle_first_empty_releases_beyond_reserve_and_starts_helper),
		T(idle_empty_within_reserve_releases_nothing),
		T(idle_with_helper_running_does_nothing_inline),
		T(idle_without_thread_trims_inline),
		T(idle_out_of_memory_gives_everything_back),
		T(idle_stop_ends_parking_and_helpers),
		T(idle_fork_child_forgets_the_helper),
		T(idle_helper_passes_while_busy_then_twice_more),
		T(eager_empty_releases_and_purges_at_once),
		T(eager_tick_runs_a_pass_at_most_every_10ms),
		T(eager_out_of_memory_and_start),
		T(eager_rejects_bad_settings),
		T(none_has_no_op_but_start),
		T(none_takes_only_the_large_cache_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
