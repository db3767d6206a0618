/* test_plugin_trim_pressure.c: the decisions of the trim policy `pressure`
 * (policies/trim_pressure.c, included whole with HAK_BUILTIN so its helper's step is callable
 * without its loop) on the fake core (fake_core.h): what it asks the core after a reading below,
 * between and above the marks, when the cgroup's events rise, with nothing to read; its ops
 * (empties, ticks, out of memory, start, stop, fork) as idle's; and its helper loop on a real
 * thread. The readings come from file trees made in a scratch folder (its fs_root key). */
/* Before every include: the plugin's descriptor gets its hidden built-in name (hakmem_policy.h
 * decides HAK_POLICY_EXPORT when it is first included). */
#define HAK_BUILTIN 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake_core.h"

#include "../../policies/trim_pressure.c"

#define PRESSURE (&hak__builtin_trim_pressure)
#define OPS ((const struct hak_trim_ops *)PRESSURE->ops)
#define V2 "sys/fs/cgroup/t.slice/"

/* ---- a file tree for fs_root ---------------------------------------------------------------- */

static char root[256];

static void put(const char *rel, const char *text)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/%s", root, rel);
	for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		mkdir(path, 0700);
		*p = '/';
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		fail_msg("cannot write %s", path);
	close(fd);
}

/* A cgroup v2 with memory.high = 1000 bytes and `usage` in memory.current. */
static void cgroup(unsigned usage, unsigned high_events)
{
	char v[64];
	put("proc/self/cgroup", "0::/t.slice\n");
	snprintf(v, sizeof v, "%u\n", usage);
	put(V2 "memory.current", v);
	put(V2 "memory.high", "1000\n");
	put(V2 "memory.max", "max\n");
	snprintf(v, sizeof v, "low 0\nhigh %u\nmax 0\noom 0\noom_kill 0\n", high_events);
	put(V2 "memory.events", v);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static int setup(void **unused)
{
	snprintf(root, sizeof root, "%s/build/unit-pressure-XXXXXX", HAK_SOURCE_ROOT);
	if (!mkdtemp(root))
		fail_msg("mkdtemp(%s)", root);
	return fake_setup(unused);
}

static int teardown(void **unused)
{
	nftw(root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	return fake_teardown(unused);
}

/* The policy loaded on the fake core, reading the tree, started, its helper made (held by
 * the fake, never run: the test takes the helper's steps itself) and the source found. */
static struct pressure_state *load(const char *extra)
{
	char kv[300];
	snprintf(kv, sizeof kv, "fs_root = %s", root);
	struct pressure_state *s =
		fake_load(PRESSURE, extra ? FAKE_KV(kv, "empty_reserve = 2", extra) : FAKE_KV(kv, "empty_reserve = 2"));
	PRESSURE->start(s);
	OPS->tick(s); /* the allocator got busy: the helper is made */
	assert_int_equal(fake_helpers(), 1);
	pr_discover(s);
	pr_publish(s);
	fake_clear();
	return s;
}

/* A reading after activity (the allocator ticked), or after none. */
static void step(struct pressure_state *s, int active)
{
	if (active)
		atomic_fetch_add(&s->work, 1);
	fake_clear();
	pr_step(s);
}

/* The calls that give memory back or ask threads to, in order (counter_set left out). */
static const char *gives(void)
{
	static char out[1024];
	out[0] = '\0';
	for (size_t i = 0; i < fake_ncalls(); i++) {
		const struct fake_call *c = fake_call_at(i);
		static const char *const acts[] = {"trim_pass", "release_empty", "purge", "large_release",
						   "request_cache_flush", "reclaim_threads", "reap_parked",
						   "collect_abandoned", "consolidate"};
		for (unsigned k = 0; k < sizeof acts / sizeof acts[0]; k++)
			if (!strcmp(c->name, acts[k])) {
				char one[96];
				if (c->nargs == 2)
					snprintf(one, sizeof one, "%s%s(%llu,%llu)", out[0] ? " " : "", c->name,
						 (unsigned long long)c->arg[0], (unsigned long long)c->arg[1]);
				else if (c->nargs == 3)
					snprintf(one, sizeof one, "%s%s(%llu,%llu,%llu)", out[0] ? " " : "", c->name,
						 (unsigned long long)c->arg[0], (unsigned long long)c->arg[1],
						 (unsigned long long)c->arg[2]);
				else
					snprintf(one, sizeof one, "%s%s()", out[0] ? " " : "", c->name);
				strncat(out, one, sizeof out - strlen(out) - 1);
			}
	}
	return out;
}

#define AGING "trim_pass(2,3)" /* idle's pass: keep the reserve, PURGE | LARGE_AGE */
#define MID "release_empty(2,0,4294967295) purge(0,18446744073709551615)"
#define HIGH                                                                                   \
	"request_cache_flush() large_release(0,0) reclaim_threads() trim_pass(0,5) "            \
	"purge(0,18446744073709551615)"
#define HIGH_NO_FLUSH "large_release(0,0) reclaim_threads() trim_pass(0,5) purge(0,18446744073709551615)"

/* ---- the bands ------------------------------------------------------------------------------- */

/* Below the low mark: what idle does and nothing more: a pass after activity, two more after
 * it, then nothing; no purge of young units, no empties beyond what the pass returns, no
 * thread asked anything. */
static void below_low_only_idles_passes(void **unused)
{
	(void)unused;
	cgroup(500, 0); /* 50 % */
	struct pressure_state *s = load(NULL);
	assert_int_equal(s->m.source, PR_CGROUP2);
	fake_add_empty(4);
	step(s, 1);
	assert_string_equal(gives(), AGING);
	step(s, 0);
	assert_string_equal(gives(), AGING);
	step(s, 0);
	assert_string_equal(gives(), AGING);
	step(s, 0);
	assert_string_equal(gives(), ""); /* quiet: nothing, as idle */
	step(s, 0);
	assert_string_equal(gives(), "");
	step(s, 1);
	assert_string_equal(gives(), AGING);
	assert_int_equal(fake_counter("band"), PR_LOW);
	assert_int_equal(fake_counter("share_percent"), 50);
	assert_int_equal(fake_counter("source"), PR_CGROUP2);
	assert_int_equal(fake_counter("mid_passes"), 0);
	assert_int_equal(fake_counter("high_passes"), 0);
	assert_int_equal(fake_count("log"), 0);
	fake_unload(PRESSURE, s);
}

/* Between the marks: empties beyond the reserve and every free unit go back at each reading,
 * with or without activity (after idle's pass when there was some). */
static void between_marks_purges_and_releases_beyond_reserve(void **unused)
{
	(void)unused;
	cgroup(750, 0);
	struct pressure_state *s = load(NULL);
	fake_add_empty(5);
	step(s, 1);
	assert_string_equal(gives(), AGING " " MID);
	FAKE_ASSERT_CALL(fake_nth("release_empty", 0), "release_empty", 2, 0, ~0u);
	FAKE_ASSERT_CALL(fake_nth("purge", 0), "purge", 0, UINT64_MAX);
	for (int i = 0; i < 4; i++)
		step(s, 0);
	assert_string_equal(gives(), MID); /* quiet allocator: still, each reading */
	assert_int_equal(fake_counter("band"), PR_MID);
	assert_int_equal(fake_counter("mid_passes"), 5);
	assert_int_equal(fake_counter("high_passes"), 0);
	assert_int_equal(fake_counter("share_percent"), 75);
	fake_unload(PRESSURE, s);
}

/* Above the high mark: the threads are asked to flush, idle threads reclaimed, the large cache
 * emptied, every empty unmapped (keep 0) and every free unit purged. The flush is asked again
 * only after the allocator was used since. */
static void above_high_gives_everything_back(void **unused)
{
	(void)unused;
	cgroup(950, 0);
	struct pressure_state *s = load(NULL);
	fake_add_empty(3);
	step(s, 1);
	assert_string_equal(gives(), HIGH);
	FAKE_ASSERT_CALL(fake_nth("trim_pass", 0), "trim_pass", 0, HAK_TRIM_PURGE | HAK_TRIM_LARGE_ALL);
	assert_int_equal(fake_empties(), 0);
	step(s, 0);
	assert_string_equal(gives(), HIGH_NO_FLUSH); /* nothing refilled the caches since */
	step(s, 1);
	assert_string_equal(gives(), HIGH);
	assert_int_equal(fake_counter("band"), PR_HIGH);
	assert_int_equal(fake_counter("high_passes"), 3);
	fake_unload(PRESSURE, s);
}

/* Bands follow the readings both ways; the cgroup hitting memory.high between two readings
 * counts as above, once. */
static void bands_follow_readings_and_events(void **unused)
{
	(void)unused;
	cgroup(100, 0);
	struct pressure_state *s = load(NULL);
	step(s, 1);
	assert_string_equal(gives(), AGING);
	cgroup(800, 0);
	step(s, 0);
	assert_string_equal(gives(), AGING " " MID);
	cgroup(800, 4); /* memory.events' high count rose */
	step(s, 0);
	assert_string_equal(gives(), HIGH);
	step(s, 0);
	assert_string_equal(gives(), AGING " " MID); /* no new event: between again; idle's 2nd quiet pass */
	cgroup(200, 4);
	step(s, 0);
	assert_string_equal(gives(), "");
	assert_int_equal(fake_counter("band"), PR_LOW);
	assert_int_equal(fake_counter("mid_passes"), 2);
	assert_int_equal(fake_counter("high_passes"), 1);
	fake_unload(PRESSURE, s);
}

/* PSI without a cgroup: "some" at or above the threshold is between, "full" above. */
static void psi_bands(void **unused)
{
	(void)unused;
	put("proc/pressure/memory", "some avg10=12.00 avg60=0.00 avg300=0.00 total=5\n"
				    "full avg10=1.00 avg60=0.00 avg300=0.00 total=1\n");
	struct pressure_state *s = load("psi_threshold = 10");
	assert_int_equal(s->m.source, PR_PSI);
	step(s, 1);
	assert_string_equal(gives(), AGING " " MID);
	put("proc/pressure/memory", "some avg10=40.00 avg60=0.00 avg300=0.00 total=5\n"
				    "full avg10=10.00 avg60=0.00 avg300=0.00 total=1\n");
	step(s, 1);
	assert_string_equal(gives(), HIGH);
	assert_int_equal(fake_counter("source"), PR_PSI);
	assert_int_equal(fake_counter("share_percent"), 40);
	fake_unload(PRESSURE, s);
}

/* Nothing to read: one line, then exactly idle's passes. */
static void no_source_one_line_then_idle(void **unused)
{
	(void)unused;
	struct pressure_state *s = load(NULL); /* an empty tree */
	assert_int_equal(s->m.source, PR_NONE);
	assert_non_null(strstr(fake_last_log(), "trim pressure: no memory pressure to read"));
	assert_non_null(strstr(fake_last_log(), "trimming as idle"));
	fake_add_empty(4);
	step(s, 1);
	assert_string_equal(gives(), AGING);
	step(s, 0);
	step(s, 0);
	assert_string_equal(gives(), AGING);
	step(s, 0);
	assert_string_equal(gives(), "");
	assert_int_equal(fake_count("log"), 0); /* said once, at discovery */
	assert_int_equal(fake_counter("source"), PR_NONE);
	fake_unload(PRESSURE, s);
}

/* A source that goes bad: one line, then idle (no more reading, no band). */
static void source_gone_bad_falls_back_to_idle(void **unused)
{
	(void)unused;
	cgroup(950, 0);
	struct pressure_state *s = load(NULL);
	put(V2 "memory.current", "garbage\n");
	step(s, 1);
	assert_string_equal(gives(), AGING);
	assert_int_equal(fake_count("log"), 1);
	assert_non_null(strstr(fake_last_log(), "memory.current: expected a byte count, found 'garbage'"));
	cgroup(950, 0); /* good again: not read any more */
	step(s, 1);
	assert_string_equal(gives(), AGING);
	assert_int_equal(fake_count("log"), 0);
	assert_int_equal(fake_counter("source"), PR_NONE);
	fake_unload(PRESSURE, s);
}

/* ---- the ops: idle's ------------------------------------------------------------------------ */

static void start_hands_over_large_limits_and_registers_gauges(void **unused)
{
	(void)unused;
	void *st = fake_load(PRESSURE, FAKE_KV("large_cache_bytes = 8M", "large_cache_slots = 3"));
	assert_string_equal(fake_actions(), ""); /* init asks the core nothing */
	PRESSURE->start(st);
	assert_int_equal(fake_count("large_limits"), 1);
	FAKE_ASSERT_CALL(fake_nth("large_limits", 0), "large_limits", 8u << 20, 32u << 20, 3);
	assert_int_equal(fake_count("counter_register"), 5);
	static const char *const names[] = {"source", "band", "share_percent", "mid_passes", "high_passes"};
	for (unsigned i = 0; i < 5; i++) {
		assert_string_equal(fake_nth("counter_register", i)->text, names[i]);
		FAKE_ASSERT_CALL(fake_nth("counter_register", i), "counter_register", (uintptr_t)fake_self,
				 HAK_COUNTER_GAUGE, 1);
	}
	assert_int_equal(fake_helpers(), 0); /* no helper, no file read, until the allocator works */
	fake_unload(PRESSURE, st);
}

static void first_empty_without_helper_releases_beyond_reserve_then_starts_it(void **unused)
{
	(void)unused;
	char kv[300];
	snprintf(kv, sizeof kv, "fs_root = %s", root);
	void *st = fake_load(PRESSURE, FAKE_KV(kv, "empty_reserve = 2"));
	fake_add_empty(5);
	OPS->superslab_empty(st);
	assert_string_equal(fake_actions(), "release_empty(2,0,~0u)=3 spawn_helper(p,state)=0 set_parking(8,64)");
	fake_clear();
	OPS->superslab_empty(st); /* the helper runs (is made): the next reading does it */
	OPS->tick(st);
	assert_string_equal(fake_actions(), "");
	fake_unload(PRESSURE, st);
}

static void no_thread_trims_inline_and_reads_nothing(void **unused)
{
	(void)unused;
	cgroup(950, 0);
	char kv[300];
	snprintf(kv, sizeof kv, "fs_root = %s", root);
	fake.spawn = FAKE_SPAWN_REFUSE;
	struct pressure_state *s = fake_load(PRESSURE, FAKE_KV(kv, "empty_reserve = 1"));
	OPS->tick(s);
	assert_string_equal(fake_actions(), "spawn_helper(p,state)=11 trim_pass(1,3)");
	assert_false(s->m.discovered); /* the files are read on the helper only */
	fake_unload(PRESSURE, s);
}

static void out_of_memory_gives_everything(void **unused)
{
	(void)unused;
	void *st = fake_load(PRESSURE, FAKE_NO_KV);
	fake_add_empty(2);
	assert_int_equal(OPS->out_of_memory(st, 1 << 20), 1);
	assert_string_equal(fake_actions(), "trim_pass(0,5)");
	fake_clear();
	assert_int_equal(OPS->out_of_memory(st, 1 << 20), 0); /* nothing left: the allocation fails */
	fake_unload(PRESSURE, st);
}

static void stop_and_fork_child_end_parking(void **unused)
{
	(void)unused;
	struct pressure_state *s = load(NULL);
	PRESSURE->fork_child(s);
	assert_string_equal(fake_actions(), "set_parking(0,0)");
	fake_clear();
	OPS->tick(s); /* the child's helper is made again at its first tick */
	assert_string_equal(fake_actions(), "spawn_helper(p,state)=0 set_parking(8,64)");
	fake_clear();
	PRESSURE->stop(s);
	assert_string_equal(fake_actions(), "set_parking(0,0)");
	fake_clear();
	OPS->tick(s); /* stopped (its helper ends at its next wake): nothing made, nothing inline */
	assert_string_equal(fake_actions(), "");
	fake_unload(PRESSURE, s);
}

/* The helper's own loop on a real thread: it finds the source, reads at its interval, acts, and
 * ends after stop. */
static void helper_loop_reads_acts_and_ends(void **unused)
{
	(void)unused;
	cgroup(950, 0);
	char kv[300];
	snprintf(kv, sizeof kv, "fs_root = %s", root);
	void *st = fake_load(PRESSURE, FAKE_KV(kv, "interval_ms = 1"));
	PRESSURE->start(st);
	OPS->tick(st);
	fake_helper_start(0);
	assert_int_equal(fake_wait_count("reclaim_threads", 2), 0);
	PRESSURE->stop(st);
	fake_helper_join(0);
	assert_true(fake_count("request_cache_flush") >= 1);
	assert_int_equal(fake_counter("band"), PR_HIGH);
	assert_true(fake_counter("high_passes") >= 2);
	assert_int_equal(fake_count("log"), 0);
	fake_unload(PRESSURE, st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(below_low_only_idles_passes, setup, teardown),
		cmocka_unit_test_setup_teardown(between_marks_purges_and_releases_beyond_reserve, setup, teardown),
		cmocka_unit_test_setup_teardown(above_high_gives_everything_back, setup, teardown),
		cmocka_unit_test_setup_teardown(bands_follow_readings_and_events, setup, teardown),
		cmocka_unit_test_setup_teardown(psi_bands, setup, teardown),
		cmocka_unit_test_setup_teardown(no_source_one_line_then_idle, setup, teardown),
		cmocka_unit_test_setup_teardown(source_gone_bad_falls_back_to_idle, setup, teardown),
		cmocka_unit_test_setup_teardown(start_hands_over_large_limits_and_registers_gauges, setup, teardown),
		cmocka_unit_test_setup_teardown(first_empty_without_helper_releases_beyond_reserve_then_starts_it, setup,
						teardown),
		cmocka_unit_test_setup_teardown(no_thread_trims_inline_and_reads_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(out_of_memory_gives_everything, setup, teardown),
		cmocka_unit_test_setup_teardown(stop_and_fork_child_end_parking, setup, teardown),
		cmocka_unit_test_setup_teardown(helper_loop_reads_acts_and_ends, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
