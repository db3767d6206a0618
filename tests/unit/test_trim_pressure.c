/* test_trim_pressure.c: the trim policy `pressure` (policies/trim_pressure.c, included here
 * whole with HAK_BUILTIN so its static parsers and helper steps are callable): its parsers fed
 * the samples under tests/fixtures/pressure/ (recorded on the development machine, or written in
 * the kernel's format) and bad and truncated text; its settings; its discovery of the source
 * and its readings over file trees made in a scratch folder (fs_root). */
/* Before every include: the plugin's descriptor gets its hidden built-in name (hakmem_policy.h
 * decides HAK_POLICY_EXPORT when it is first included). */
#define HAK_BUILTIN 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <sys/stat.h>

#include "../fixtures/unit_helpers.h"
#include "config.h"

#include "../../policies/trim_pressure.c"

#define SAMPLES HAK_SOURCE_ROOT "/tests/fixtures/pressure/"

/* A sample file's text (static buffer, valid until the next call). */
static const char *sample(const char *name, size_t *len)
{
	char path[512];
	snprintf(path, sizeof path, "%s%s", SAMPLES, name);
	return slurp(path, len);
}

/* ---- PSI ------------------------------------------------------------------------------------- */

static void psi_recorded_quiet(void **state)
{
	(void)state;
	size_t len;
	const char *t = sample("recorded/pressure-memory.vm-6.18", &len);
	struct pr_psi psi;
	const char *why = NULL;
	assert_int_equal(pr_parse_psi(t, len, &psi, &why), 0);
	assert_int_equal(psi.some.avg10, 0);
	assert_int_equal(psi.some.avg300, 0);
	assert_true(psi.has_full);
	assert_int_equal(psi.full.total, 0);
}

static void psi_recorded_under_pressure(void **state)
{
	(void)state;
	size_t len;
	const char *t = sample("recorded/pressure-memory.vm-6.18.oom-loop", &len);
	struct pr_psi psi;
	const char *why = NULL;
	assert_int_equal(pr_parse_psi(t, len, &psi, &why), 0);
	assert_int_equal(psi.some.avg10, 46); /* "0.46" */
	assert_int_equal(psi.some.avg60, 12);
	assert_int_equal(psi.some.avg300, 2);
	assert_int_equal(psi.some.total, 103427);
	assert_int_equal(psi.full.avg10, 22);
	assert_int_equal(psi.full.total, 61971);
}

static void psi_kernel_format_busy(void **state)
{
	(void)state;
	size_t len;
	const char *t = sample("kernel-format/pressure-memory.busy", &len);
	struct pr_psi psi;
	const char *why = NULL;
	assert_int_equal(pr_parse_psi(t, len, &psi, &why), 0);
	assert_int_equal(psi.some.avg10, 1234);
	assert_int_equal(psi.some.avg60, 500);
	assert_int_equal(psi.some.avg300, 105);
	assert_int_equal(psi.full.avg10, 250);
	assert_true(psi.full.total == 23456789);
	struct pressure_settings set = {.psi_threshold = 10};
	assert_int_equal(pr_band_of_psi(&set, &psi), PR_MID); /* some 12.34 >= 10, full 2.50 < 10 */
	set.psi_threshold = 2;
	assert_int_equal(pr_band_of_psi(&set, &psi), PR_HIGH);
	set.psi_threshold = 13;
	assert_int_equal(pr_band_of_psi(&set, &psi), PR_LOW);
}

static void psi_variants_accepted(void **state)
{
	(void)state;
	static const char *const good[] = {
		"some avg10=0.00 avg60=0.00 avg300=0.00 total=0",            /* no newline, no full line */
		"some avg10=100.00 avg60=0.5 avg300=7 total=18446744073709551615\n", /* one digit, none, max */
		"some total=5 avg300=0.00 avg60=0.00 avg10=3.14 extra=9\n",   /* any order, unknown keys */
		"some avg10=1.239 avg60=0.00 avg300=0.00 total=0\n\n",         /* more digits: truncated */
	};
	static const uint32_t avg10[] = {0, 10000, 314, 123};
	for (unsigned i = 0; i < sizeof good / sizeof good[0]; i++) {
		struct pr_psi psi;
		const char *why = NULL;
		if (pr_parse_psi(good[i], strlen(good[i]), &psi, &why))
			fail_msg("refused '%s': %s", good[i], why);
		assert_int_equal(psi.some.avg10, avg10[i]);
	}
}

static void psi_bad_refused_with_a_reason(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",
		"\n",
		"garbage\n",
		"full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",            /* no some line */
		"some avg10=0.00 avg60=0.0",                                   /* cut short */
		"some avg10=0.00 avg60=0.00 avg300=0.00 total=\n",
		"some avg10=0.00 avg60=0.00 avg300=0.00\n",
		"some avg10=101.00 avg60=0.00 avg300=0.00 total=0\n",          /* above 100 % */
		"some avg10=100.01 avg60=0.00 avg300=0.00 total=0\n",
		"some avg10=-1.00 avg60=0.00 avg300=0.00 total=0\n",
		"some avg10=abc avg60=0.00 avg300=0.00 total=0\n",
		"some avg10=1. avg60=0.00 avg300=0.00 total=0\n",
		"some avg10=1.2.3 avg60=0.00 avg300=0.00 total=0\n",
		"some avg10=0.00 avg60=0.00 avg300=0.00 total=99999999999999999999999\n",
		"some avg10 0.00 avg60=0.00 avg300=0.00 total=0\n",
		"some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=\n",
		"some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nnoise\n",
		"SOME avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
	};
	for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct pr_psi psi;
		const char *why = NULL;
		if (pr_parse_psi(bad[i], strlen(bad[i]), &psi, &why) != EINVAL)
			fail_msg("accepted bad PSI text %u: '%s'", i, bad[i]);
		assert_non_null(why);
		assert_true(strlen(why) > 4);
	}
}

/* Every prefix of a real file (a read cut anywhere) is parsed or refused, and when parsed its
 * "some" line is the full file's. Not NUL-terminated: the parser must keep within len. */
static void psi_every_truncation(void **state)
{
	(void)state;
	size_t len;
	char text[512];
	const char *t = sample("recorded/pressure-memory.vm-6.18.oom-loop", &len);
	assert_true(len < sizeof text);
	memcpy(text, t, len);
	struct pr_psi whole, psi;
	const char *why;
	assert_int_equal(pr_parse_psi(text, len, &whole, &why), 0);
	unsigned parsed = 0;
	for (size_t cut = 0; cut <= len; cut++) {
		char *copy = malloc(cut ? cut : 1); /* exactly cut bytes: valgrind/ASan see overreads */
		memcpy(copy, text, cut);
		int e = pr_parse_psi(copy, cut, &psi, &why);
		free(copy);
		assert_true(e == 0 || e == EINVAL);
		if (e == 0) {
			parsed++;
			assert_int_equal(psi.some.avg10, whole.some.avg10);
		}
	}
	assert_true(parsed >= 2 && parsed < len / 2); /* only cuts that end inside total's digits or at line ends */
}

/* ---- /proc/self/cgroup ------------------------------------------------------------------------ */

static void cgroups_recorded_hybrid(void **state)
{
	(void)state;
	size_t len;
	const char *t = sample("recorded/proc-self-cgroup.hybrid-v1-memory", &len);
	struct pr_cgroups cg;
	const char *why = NULL;
	assert_int_equal(pr_parse_cgroups(t, len, &cg, &why), 0);
	assert_true(cg.has_v2);
	assert_string_equal(cg.v2, "/");
	assert_true(cg.has_v1_memory);
	assert_string_equal(cg.v1_memory, "/process_api/bff829f06fe7736ca89aff8295e68527");
}

static void cgroups_v2_and_combined_v1(void **state)
{
	(void)state;
	size_t len;
	const char *t = sample("kernel-format/v2.proc-self-cgroup", &len);
	struct pr_cgroups cg;
	const char *why = NULL;
	assert_int_equal(pr_parse_cgroups(t, len, &cg, &why), 0);
	assert_true(cg.has_v2);
	assert_false(cg.has_v1_memory);
	assert_string_equal(cg.v2, "/user.slice/user-1000.slice/session-2.scope");
	const char *v1 = "5:cpu,memory,blkio:/a:b/c\n3:memoryx:/nope\n";
	assert_int_equal(pr_parse_cgroups(v1, strlen(v1), &cg, &why), 0);
	assert_false(cg.has_v2);
	assert_true(cg.has_v1_memory);
	assert_string_equal(cg.v1_memory, "/a:b/c"); /* a colon in the path is the path's */
}

static void cgroups_bad_and_truncated(void **state)
{
	(void)state;
	static const char *const bad[] = {"", "0:/x\n", "x::/a\n", "0::relative\n", "0::\n", ":memory:/a\n",
					  "4:memory:/a\n0:", "4:mem"};
	struct pr_cgroups cg;
	const char *why;
	for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (pr_parse_cgroups(bad[i], strlen(bad[i]), &cg, &why) != EINVAL)
			fail_msg("accepted bad /proc/self/cgroup text '%s'", bad[i]);
	char longer[PR_PATH + 16] = "0::/";
	memset(longer + 4, 'a', PR_PATH);
	longer[PR_PATH + 4] = '\n';
	assert_int_equal(pr_parse_cgroups(longer, PR_PATH + 5, &cg, &why), EINVAL);
	assert_non_null(strstr(why, "longer"));
	/* Every prefix of the recorded file: parsed or refused, never read past the cut. */
	size_t len;
	const char *t = sample("recorded/proc-self-cgroup.hybrid-v1-memory", &len);
	char text[512];
	memcpy(text, t, len);
	for (size_t cut = 0; cut <= len; cut++) {
		char *copy = malloc(cut ? cut : 1);
		memcpy(copy, text, cut);
		int e = pr_parse_cgroups(copy, cut, &cg, &why);
		free(copy);
		assert_true(e == 0 || e == EINVAL);
	}
}

/* ---- One-value and keyed files ------------------------------------------------------------------ */

static void values(void **state)
{
	(void)state;
	size_t len;
	uint64_t v;
	int is_max;
	const char *why;
	const char *t = sample("kernel-format/v2.memory.current", &len);
	assert_int_equal(pr_parse_value(t, len, &v, &is_max, &why), 0);
	assert_true(v == 268435456 && !is_max);
	t = sample("kernel-format/v2.memory.high", &len);
	assert_int_equal(pr_parse_value(t, len, &v, &is_max, &why), 0);
	assert_true(is_max);
	assert_int_equal(pr_parse_value(t, len, &v, NULL, &why), EINVAL); /* usage is never "max" */
	t = sample("recorded/v1.memory.limit_in_bytes", &len);
	assert_int_equal(pr_parse_value(t, len, &v, NULL, &why), 0);
	assert_true(v == 9223372036854771712u && v >= PR_V1_UNLIMITED);
	t = sample("recorded/v1.memory.usage_in_bytes", &len);
	assert_int_equal(pr_parse_value(t, len, &v, NULL, &why), 0);
	static const char *const bad[] = {"", "\n", "12a\n", "-1\n", " 12\n", "12 \n", "1\n2\n", "maximum\n",
					  "99999999999999999999999\n", "0x10\n"};
	for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (pr_parse_value(bad[i], strlen(bad[i]), &v, &is_max, &why) != EINVAL)
			fail_msg("accepted bad value '%s'", bad[i]);
}

static void keyed_files(void **state)
{
	(void)state;
	size_t len;
	uint64_t v;
	const char *why;
	const char *t = sample("recorded/meminfo.vm-6.18", &len);
	assert_int_equal(pr_parse_keyed(t, len, "MemAvailable", &v, &why), 0);
	assert_true(v == (uint64_t)23933076 << 10);
	assert_int_equal(pr_parse_keyed(t, len, "MemAvail", &v, &why), ENOENT); /* a whole key only */
	t = sample("kernel-format/v2.memory.events", &len);
	assert_int_equal(pr_parse_keyed(t, len, "high", &v, &why), 0);
	assert_int_equal(v, 12);
	assert_int_equal(pr_parse_keyed(t, len, "max", &v, &why), 0);
	assert_int_equal(v, 3);
	assert_int_equal(pr_parse_keyed(t, len, "oom", &v, &why), 0); /* not oom_kill's line */
	assert_int_equal(v, 1);
	assert_int_equal(pr_parse_keyed(t, len, "nope", &v, &why), ENOENT);
	static const char *const bad[] = {"MemAvailable: x kB\n", "MemAvailable: 12 kB extra\n", "MemAvailable:\n",
					  "MemAvailable: 18446744073709551615 kB\n", "MemAvailable: 12 MB\n"};
	for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (pr_parse_keyed(bad[i], strlen(bad[i]), "MemAvailable", &v, &why) != EINVAL)
			fail_msg("accepted bad line '%s'", bad[i]);
	/* Every prefix of meminfo: found, absent or refused; never past the cut. */
	t = sample("recorded/meminfo.vm-6.18", &len);
	char *text = malloc(len);
	memcpy(text, t, len);
	for (size_t cut = 0; cut <= len; cut++) {
		char *copy = malloc(cut ? cut : 1);
		memcpy(copy, text, cut);
		int e = pr_parse_keyed(copy, cut, "MemAvailable", &v, &why);
		free(copy);
		assert_true(e == 0 || e == ENOENT || e == EINVAL);
	}
	free(text);
}

static void shares_and_bands(void **state)
{
	(void)state;
	struct pressure_settings set = {.low_watermark = 70, .high_watermark = 90};
	assert_int_equal(pr_share(0, 100), 0);
	assert_int_equal(pr_share(69, 100), 69);
	assert_int_equal(pr_share(5, 0), 0);
	assert_int_equal(pr_share(UINT64_MAX, UINT64_MAX), 100); /* no overflow */
	assert_int_equal(pr_share(UINT64_MAX, 1), 1000);         /* saturated */
	assert_int_equal(pr_band_of_share(&set, 69), PR_LOW);
	assert_int_equal(pr_band_of_share(&set, 70), PR_MID);
	assert_int_equal(pr_band_of_share(&set, 89), PR_MID);
	assert_int_equal(pr_band_of_share(&set, 90), PR_HIGH);
	assert_int_equal(pr_band_of_share(&set, 1000), PR_HIGH);
}

/* ---- Settings ------------------------------------------------------------------------------------ */

static int init_with(const struct hak_setting *items, size_t n, struct pressure_state **out, char *err)
{
	struct hak_settings settings = {"test.ini", items, n};
	void *st = NULL;
	static const struct hak_core_api inert = {.size = sizeof inert};
	int e = pressure_init(&inert, NULL, &settings, &st, err, 200);
	*out = st;
	return e;
}

static void settings_defaults_and_values(void **state)
{
	(void)state;
	struct pressure_state *s;
	char err[200] = "";
	assert_int_equal(init_with(NULL, 0, &s, err), 0);
	assert_int_equal(s->set.interval_ms, 100);
	assert_int_equal(s->set.low_watermark, 70);
	assert_int_equal(s->set.high_watermark, 90);
	assert_int_equal(s->set.psi_threshold, 10);
	assert_int_equal(s->set.empty_reserve, 2);
	assert_string_equal(s->root, "");
	pressure_fini(s);
	const struct hak_setting items[] = {{"low_watermark", "40%", 3}, {"high_watermark", "60", 4},
					    {"interval_ms", "20", 5},    {"psi_threshold", "5%", 6},
					    {"fs_root", "/some/where//", 7}, {"large_cache_bytes", "8M", 8}};
	assert_int_equal(init_with(items, 6, &s, err), 0);
	assert_int_equal(s->set.low_watermark, 40);
	assert_int_equal(s->set.high_watermark, 60);
	assert_int_equal(s->set.interval_ms, 20);
	assert_int_equal(s->set.psi_threshold, 5);
	assert_true(s->set.large.max_bytes == 8u << 20);
	assert_string_equal(s->root, "/some/where");
	pressure_fini(s);
	const struct hak_setting slash[] = {{"fs_root", "/", 1}};
	assert_int_equal(init_with(slash, 1, &s, err), 0);
	assert_string_equal(s->root, "");
	pressure_fini(s);
}

static void settings_bad_named_with_line_key_expected_found(void **state)
{
	(void)state;
	struct {
		struct hak_setting it[2];
		size_t n;
		const char *want[3];
	} cases[] = {
#define A16 "aaaaaaaaaaaaaaaa"
#define LONG_ROOT "/" A16 A16 A16 A16 A16 A16 A16 A16 A16 A16 A16 A16 A16 A16 A16 A16 /* 257 bytes */
		{{{"high_watermark", "50", 9}}, 1, {"line 9: high_watermark = '50'", "above low_watermark (70)", NULL}},
		{{{"low_watermark", "95", 4}}, 1, {"line 4: low_watermark = '95'", "below high_watermark (90)", NULL}},
		{{{"low_watermark", "50", 2}, {"high_watermark", "50", 3}}, 2, {"line 3: high_watermark = '50'", NULL}},
		{{{"low_watermark", "0", 5}}, 1, {"line 5: low_watermark = '0'", "percentage in [1, 99]", NULL}},
		{{{"high_watermark", "101%", 6}}, 1, {"line 6: high_watermark = '101%'", NULL}},
		{{{"psi_threshold", "ten", 7}}, 1, {"line 7: psi_threshold = 'ten'", "expected a percentage", NULL}},
		{{{"interval_ms", "0", 8}}, 1, {"line 8: interval_ms = '0'", "[1, 60000]", NULL}},
		{{{"fs_root", "relative/dir", 10}}, 1, {"line 10: fs_root = 'relative/dir'", "absolute", NULL}},
		{{{"fs_root", LONG_ROOT, 12}}, 1, {"line 12: fs_root = '/aaaa", NULL}}, /* the rest is cut */
		{{{"fs_root", "", 13}}, 1, {"line 13: fs_root = ''", "expected text of 1 to 255 bytes", NULL}},
		{{{"idle_ms", "100", 11}}, 1, {"line 11: unknown key 'idle_ms'", "interval_ms", "low_watermark"}},
	};
	for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct pressure_state *s = NULL;
		char err[200] = "";
		assert_int_equal(init_with(cases[i].it, cases[i].n, &s, err), EINVAL);
		assert_null(s);
		for (int k = 0; k < 3 && cases[i].want[k]; k++)
			if (!strstr(err, cases[i].want[k]))
				fail_msg("case %u: message '%s' lacks '%s'", i, err, cases[i].want[k]);
	}
}

/* The shipped conf/trim-pressure.ini is what the plugin takes, and says its defaults. */
static void shipped_conf_is_valid(void **state)
{
	(void)state;
	char path[512];
	struct hak_config cfg;
	snprintf(path, sizeof path, "%s/conf/trim-pressure.ini", HAK_SOURCE_ROOT);
	log_start();
	assert_int_equal(hak__config_parse_string(slurp(path, NULL), path, &cfg), 0);
	assert_log_count(0);
	hak__log_set_sink(NULL);
	struct hak_settings s = hak__config_settings(&cfg, HAK_KIND_INDEX_TRIM);
	assert_true(s.count >= 5);
	struct pressure_state *st;
	char err[200] = "";
	if (init_with(s.items, s.count, &st, err))
		fail_msg("conf/trim-pressure.ini refused: %s", err);
	assert_int_equal(st->set.low_watermark, 70);
	assert_int_equal(st->set.high_watermark, 90);
	assert_int_equal(st->set.psi_threshold, 10);
	assert_int_equal(st->set.interval_ms, 100);
	pressure_fini(st);
	hak__config_free(&cfg);
}

/* ---- Discovery and readings over file trees (fs_root) -------------------------------------------- */

/* Writes tmp_root/rel, making its folders. */
static void tree_put(const char *rel, const char *text)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/%s", tmp_root, rel);
	for (char *p = path + strlen(tmp_root) + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		mkdir(path, 0700);
		*p = '/';
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		fail_msg("cannot create %s", path);
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		fail_msg("cannot write %s", path);
	close(fd);
}

static int tree_setup(void **state)
{
	(void)state;
	tmp_make();
	log_start();
	return 0;
}

static int tree_teardown(void **state)
{
	(void)state;
	tmp_remove();
	hak__log_set_sink(NULL);
	return 0;
}

/* A state reading the tree, with the core's log only (no other service is called by a reading). */
static struct pressure_state *tree_state(const char *extra_key, const char *extra_value)
{
	static struct hak_core_api core;
	memset(&core, 0, sizeof core);
	core.size = sizeof core;
	core.log = hak__log; /* captured by log_start's sink */
	struct hak_setting items[2] = {{"fs_root", tmp_root, 1}, {extra_key, extra_value, 2}};
	struct hak_settings settings = {"test.ini", items, extra_key ? 2 : 1};
	void *st = NULL;
	char err[200];
	if (pressure_init(&core, NULL, &settings, &st, err, sizeof err))
		fail_msg("init: %s", err);
	return st;
}

#define V2DIR "sys/fs/cgroup/app.slice/x.scope/"

/* One reading, counted as the helper's step counts them (every PR_REFRESH-th refreshes). */
static unsigned sample_once(struct pressure_state *s)
{
	unsigned band = pr_sample(s);
	s->m.samples++;
	return band;
}

static void discover_v2_with_high(void **state)
{
	(void)state;
	tree_put("proc/self/cgroup", "0::/app.slice/x.scope\n");
	tree_put(V2DIR "memory.current", "100\n");
	tree_put(V2DIR "memory.high", "1000\n");
	tree_put(V2DIR "memory.max", "2000\n");
	tree_put(V2DIR "memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n");
	tree_put("proc/pressure/memory", "some avg10=99.00 avg60=0.00 avg300=0.00 total=0\n"); /* not used */
	struct pressure_state *s = tree_state(NULL, NULL);
	pr_discover(s);
	assert_int_equal(s->m.source, PR_CGROUP2);
	assert_true(s->m.limit == 1000); /* memory.high before memory.max */
	assert_int_equal(sample_once(s), PR_LOW);
	assert_int_equal(s->m.share, 10);
	tree_put(V2DIR "memory.current", "700\n");
	assert_int_equal(sample_once(s), PR_MID);
	tree_put(V2DIR "memory.current", "900\n");
	assert_int_equal(sample_once(s), PR_HIGH);
	/* Between the marks, but the cgroup hit memory.high since the last look: above. */
	tree_put(V2DIR "memory.current", "750\n");
	assert_int_equal(sample_once(s), PR_MID);
	tree_put(V2DIR "memory.events", "low 0\nhigh 1\nmax 0\noom 0\noom_kill 0\n");
	assert_int_equal(sample_once(s), PR_HIGH);
	assert_int_equal(sample_once(s), PR_MID); /* no new event */
	/* The limit is read again at or above the low mark: raised, the share falls. */
	tree_put(V2DIR "memory.high", "max\n");
	assert_int_equal(sample_once(s), PR_LOW); /* 750 of memory.max 2000 */
	assert_int_equal(s->m.share, 37);
	assert_int_equal(s->m.source, PR_CGROUP2);
	assert_log_count(0);
	pressure_fini(s);
}

static void discover_v2_without_limit_uses_memavailable(void **state)
{
	(void)state;
	tree_put("proc/self/cgroup", "0::/app.slice/x.scope\n");
	tree_put(V2DIR "memory.current", "104857600\n"); /* 100 MB */
	tree_put(V2DIR "memory.high", "max\n");
	tree_put(V2DIR "memory.max", "max\n");
	tree_put(V2DIR "memory.events", "low 0\nhigh 0\nmax 0\noom 0\n");
	tree_put("proc/meminfo", "MemTotal:  1000000 kB\nMemFree:   10 kB\nMemAvailable:   25600 kB\n"); /* 25 MB */
	struct pressure_state *s = tree_state(NULL, NULL);
	pr_discover(s);
	assert_int_equal(s->m.source, PR_CGROUP2);
	assert_true(s->m.limit == 0 && s->m.avail == 25600u << 10);
	assert_int_equal(sample_once(s), PR_MID); /* 100 / (25 + 100) = 80 % */
	assert_int_equal(s->m.share, 80);
	assert_log_count(0);
	pressure_fini(s);
}

static void discover_hybrid_unified_and_v1(void **state)
{
	(void)state;
	/* The v2 line points at the unified mount, which has no memory files: v1's group is used. */
	tree_put("proc/self/cgroup", "4:memory:/job/7\n0::/\n");
	tree_put("sys/fs/cgroup/unified/cgroup.controllers", "hugetlb\n");
	tree_put("sys/fs/cgroup/memory/job/7/memory.usage_in_bytes", "60\n");
	tree_put("sys/fs/cgroup/memory/job/7/memory.limit_in_bytes", "100\n");
	tree_put("sys/fs/cgroup/memory/job/7/memory.failcnt", "0\n");
	struct pressure_state *s = tree_state(NULL, NULL);
	pr_discover(s);
	assert_int_equal(s->m.source, PR_CGROUP1);
	assert_int_equal(sample_once(s), PR_LOW);
	tree_put("sys/fs/cgroup/memory/job/7/memory.usage_in_bytes", "80\n");
	assert_int_equal(sample_once(s), PR_MID);
	tree_put("sys/fs/cgroup/memory/job/7/memory.failcnt", "3\n");
	assert_int_equal(sample_once(s), PR_HIGH); /* the limit was hit since */
	assert_log_count(0);
	pressure_fini(s);
}

static void discover_v1_unlimited_recorded(void **state)
{
	(void)state;
	size_t len;
	tree_put("proc/self/cgroup", sample("recorded/proc-self-cgroup.hybrid-v1-memory", &len));
	char dir[256] = "sys/fs/cgroup/memory/process_api/bff829f06fe7736ca89aff8295e68527/", path[512];
	static const char *const f[] = {"memory.usage_in_bytes", "memory.limit_in_bytes", "memory.failcnt"};
	for (int i = 0; i < 3; i++) {
		char name[128];
		snprintf(name, sizeof name, "recorded/v1.%s", f[i]);
		snprintf(path, sizeof path, "%s%s", dir, f[i]);
		tree_put(path, sample(name, &len));
	}
	tree_put("proc/meminfo", sample("recorded/meminfo.vm-6.18", &len));
	struct pressure_state *s = tree_state(NULL, NULL);
	pr_discover(s);
	assert_int_equal(s->m.source, PR_CGROUP1);
	assert_true(s->m.limit == 0); /* 2^63 - 4096 is v1's "no limit" */
	assert_int_equal(sample_once(s), PR_LOW);
	assert_int_equal(s->m.share, 0); /* 61 MB of 23 GB available */
	assert_log_count(0);
	pressure_fini(s);
}

static void discover_root_v1_group_is_not_a_source(void **state)
{
	(void)state;
	tree_put("proc/self/cgroup", "4:memory:/\n");
	tree_put("sys/fs/cgroup/memory/memory.usage_in_bytes", "60\n");
	tree_put("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
	tree_put("proc/pressure/memory", "some avg10=20.00 avg60=0.00 avg300=0.00 total=0\n"
					 "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
	struct pressure_state *s = tree_state(NULL, NULL);
	pr_discover(s);
	assert_int_equal(s->m.source, PR_PSI);
	assert_int_equal(sample_once(s), PR_MID);
	assert_int_equal(s->m.share, 20);
	tree_put("proc/pressure/memory", "some avg10=30.00 avg60=0.00 avg300=0.00 total=0\n"
					 "full avg10=10.00 avg60=0.00 avg300=0.00 total=0\n");
	assert_int_equal(sample_once(s), PR_HIGH);
	tree_put("proc/pressure/memory", "some avg10=9.99 avg60=0.00 avg300=0.00 total=0\n"
					 "full avg10=9.99 avg60=0.00 avg300=0.00 total=0\n");
	assert_int_equal(sample_once(s), PR_LOW);
	assert_log_count(0);
	pressure_fini(s);
}

static void discover_nothing_says_so_once(void **state)
{
	(void)state;
	struct pressure_state *s = tree_state(NULL, NULL); /* an empty tree */
	pr_discover(s);
	assert_int_equal(s->m.source, PR_NONE);
	assert_log_count(1);
	EXPECT_LINE(0, "trim pressure: no memory pressure to read", "/proc/self/cgroup: no such file",
		    "/proc/pressure/memory: no such file", "trimming as idle");
	pressure_fini(s);
}

/* A file that is there but is not what the kernel writes: one line, then idle for good. */
static void discover_bad_files_give_up_with_one_line(void **state)
{
	(void)state;
	static const struct {
		const char *file, *text, *want;
	} cases[] = {
		{"proc/self/cgroup", "0:/oops\n", "/proc/self/cgroup: a line is not 'id:controllers:/path'"},
		{V2DIR "memory.current", "12 MB\n", "memory.current: expected a byte count, found '12 MB'"},
		{V2DIR "memory.high", "lots\n", "memory.high: expected a byte count or 'max', found 'lots'"},
		{V2DIR "memory.max", "", "memory.max: expected a byte count or 'max', found ''"},
		{"proc/pressure/memory", "some avg10=0.00 avg6", "/proc/pressure/memory: a field is not key=value"},
	};
	for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		tmp_remove();
		tmp_make();
		log_start();
		if (strncmp(cases[i].file, "proc/pressure", 13)) {
			tree_put("proc/self/cgroup", "0::/app.slice/x.scope\n");
			tree_put(V2DIR "memory.current", "100\n");
			tree_put(V2DIR "memory.high", "1000\n");
			tree_put(V2DIR "memory.max", "max\n");
		}
		tree_put(cases[i].file, cases[i].text);
		struct pressure_state *s = tree_state(NULL, NULL);
		pr_discover(s);
		assert_int_equal(s->m.source, PR_NONE);
		assert_log_count(1);
		EXPECT_LINE(0, cases[i].want, "trimming as idle");
		pressure_fini(s);
	}
}

/* A source that goes bad later (file cut short, cgroup removed): one line, idle, no more reads. */
static void reading_goes_bad_later(void **state)
{
	(void)state;
	tree_put("proc/self/cgroup", "0::/app.slice/x.scope\n");
	tree_put(V2DIR "memory.current", "100\n");
	tree_put(V2DIR "memory.high", "1000\n");
	tree_put(V2DIR "memory.max", "max\n");
	tree_put(V2DIR "memory.events", "low 0\nhigh 0\nmax 0\noom 0\n");
	struct pressure_state *s = tree_state(NULL, NULL);
	pr_discover(s);
	assert_int_equal(s->m.source, PR_CGROUP2);
	char path[1024];
	snprintf(path, sizeof path, "%s/" V2DIR "memory.current", tmp_root);
	unlink(path);
	assert_int_equal(sample_once(s), PR_LOW);
	assert_int_equal(s->m.source, PR_NONE);
	assert_log_count(1);
	EXPECT_LINE(0, "memory.current: no such file", "trimming as idle from now on");
	/* memory.events that lost its keys, in PSI's stead: same rule. */
	log_start();
	tree_put(V2DIR "memory.current", "800\n");
	s->m.source = PR_CGROUP2;
	tree_put(V2DIR "memory.events", "low 0\n");
	assert_int_equal(sample_once(s), PR_LOW);
	assert_int_equal(s->m.source, PR_NONE);
	assert_log_count(1);
	EXPECT_LINE(0, "memory.events: 'high': no such line", "trimming as idle from now on");
	pressure_fini(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(psi_recorded_quiet),
		cmocka_unit_test(psi_recorded_under_pressure),
		cmocka_unit_test(psi_kernel_format_busy),
		cmocka_unit_test(psi_variants_accepted),
		cmocka_unit_test(psi_bad_refused_with_a_reason),
		cmocka_unit_test(psi_every_truncation),
		cmocka_unit_test(cgroups_recorded_hybrid),
		cmocka_unit_test(cgroups_v2_and_combined_v1),
		cmocka_unit_test(cgroups_bad_and_truncated),
		cmocka_unit_test(values),
		cmocka_unit_test(keyed_files),
		cmocka_unit_test(shares_and_bands),
		cmocka_unit_test(settings_defaults_and_values),
		cmocka_unit_test(settings_bad_named_with_line_key_expected_found),
		cmocka_unit_test(shipped_conf_is_valid),
		cmocka_unit_test_setup_teardown(discover_v2_with_high, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(discover_v2_without_limit_uses_memavailable, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(discover_hybrid_unified_and_v1, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(discover_v1_unlimited_recorded, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(discover_root_v1_group_is_not_a_source, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(discover_nothing_says_so_once, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(discover_bad_files_give_up_with_one_line, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(reading_goes_bad_later, tree_setup, tree_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
