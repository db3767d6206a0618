/* test_config.c: the INI parser (core/config.c): the [core] table, policy sections, every kind of
 * bad input from DESIGN.md section 5 and issue 3 (one line with file and line, then safe
 * defaults), file safety checks, the choice of the file and secure mode, the shipped conf/ files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <sys/types.h>

#include "../fixtures/unit_helpers.h"
#include "config.h"


/* Parses a fixture INI file's text under its real name (so relative paths resolve there). */
static int parse_fixture(const char *name, struct hak_config *cfg, char *label, size_t size)
{
	size_t len;
	snprintf(label, size, "%s/%s", FIXTURE_INI_DIR, name);
	const char *text = slurp(label, &len);
	return hak__config_parse_buffer(text, len, label, cfg);
}

static void assert_defaults(const struct hak_config *cfg)
{
	assert_string_equal(cfg->core.policy_dir, HAK_PLUGIN_DIR);
	assert_int_equal(cfg->core.stats, HAK_STATS_OFF);
	assert_int_equal(cfg->core.map_budget, 0);
	assert_false(cfg->core.verbose);
	for (int i = 0; i < HAK_KIND_COUNT; i++) {
		assert_null(cfg->policy[i].name);
		assert_int_equal(cfg->policy[i].count, 0);
	}
}

/* ---- Defaults and the good file ---------------------------------------------------------------- */

static void test_defaults(void **state)
{
	(void)state;
	struct hak_config cfg;
	log_start();
	hak__config_defaults(&cfg);
	assert_defaults(&cfg);
	assert_string_equal(cfg.file, HAK_CONFIG_NO_FILE);
	assert_int_equal(hak__config_load(NULL, &cfg), 0);
	assert_defaults(&cfg);
	struct hak_settings s = hak__config_settings(&cfg, HAK_KIND_INDEX_TRIM);
	assert_string_equal(s.file, HAK_CONFIG_NO_FILE);
	assert_int_equal(s.count, 0);
	hak__config_free(&cfg);
	assert_log_count(0);
}

static void test_good_file(void **state)
{
	(void)state;
	struct hak_config cfg;
	char label[512];
	log_start();
	assert_int_equal(parse_fixture("good.ini", &cfg, label, sizeof label), 0);
	assert_log_count(0);
	assert_int_equal(cfg.diagnostics, 0);
	assert_string_equal(cfg.file, label);
	assert_string_equal(cfg.dir, FIXTURE_INI_DIR);
	assert_string_equal(cfg.core.policy_dir, FIXTURE_INI_DIR "/../../build/tests/fixtures");
	assert_int_equal(cfg.core.stats, HAK_STATS_JSON);
	assert_int_equal(cfg.core.map_budget, 30000);
	assert_true(cfg.core.verbose);

	const struct hak_policy_choice *t = &cfg.policy[HAK_KIND_INDEX_TRIM];
	assert_string_equal(t->name, "good");
	assert_int_equal(t->section_line, 9);
	assert_int_equal(t->line, 10);
	assert_int_equal(t->count, 2);
	assert_string_equal(t->items[0].key, "idle_ms");
	assert_string_equal(t->items[0].value, "250"); /* inline comment and blanks gone */
	assert_int_equal(t->items[0].line, 11);
	assert_string_equal(t->items[1].key, "empty_reserve"); /* indented: not a continuation */
	assert_string_equal(t->items[1].value, "3");
	assert_int_equal(t->items[1].line, 12);

	const struct hak_policy_choice *s = &cfg.policy[HAK_KIND_INDEX_SUPERSLAB];
	assert_string_equal(s->name, "good");
	assert_int_equal(s->section_line, 15);
	assert_int_equal(s->count, 1);
	assert_string_equal(s->items[0].key, "size"); /* `key: value` is accepted too */
	assert_string_equal(s->items[0].value, "1M");

	const struct hak_policy_choice *o = &cfg.policy[HAK_KIND_INDEX_OWNERSHIP];
	assert_string_equal(o->name, "good");
	assert_int_equal(o->section_line, 19); /* "[ ownership ]": blanks inside the brackets */
	assert_int_equal(o->line, 20);
	struct hak_settings st = hak__config_settings(&cfg, HAK_KIND_INDEX_OWNERSHIP);
	assert_string_equal(st.file, label);
	assert_int_equal(st.count, 1);
	assert_string_equal(st.items[0].key, "answer");
	assert_string_equal(st.items[0].value, "42");
	assert_int_equal(st.items[0].line, 21);
	hak__config_free(&cfg);
	assert_defaults(&cfg);
}

static void test_load_good_copy(void **state)
{
	(void)state;
	struct hak_config cfg;
	const char *path = tmp_copy(FIXTURE_INI_DIR "/good.ini", "good.ini", 0644);
	log_start();
	assert_int_equal(hak__config_load(path, &cfg), 0);
	assert_log_count(0);
	assert_string_equal(cfg.file, path);
	assert_string_equal(cfg.dir, tmp_root);
	char want[512];
	snprintf(want, sizeof want, "%s/../../build/tests/fixtures", tmp_root);
	assert_string_equal(cfg.core.policy_dir, want);
	assert_string_equal(cfg.policy[HAK_KIND_INDEX_OWNERSHIP].name, "good");
	hak__config_free(&cfg);
}

static void test_syntax_variants(void **state)
{
	(void)state;
	struct hak_config cfg;
	/* BOM, CRLF, tabs, absolute policy_dir, uppercase names, empty policy = the default. */
	const char text[] = "\xEF\xBB\xBF[CORE]\r\n\tPolicy_Dir = /opt/hak/plugins \r\nSTATS=Table\r\n"
			    "[trim]\r\npolicy =\r\n[ownership]\r\npolicy = central ; Option F\r\n"
			    "note = a;b\r\n";
	log_start();
	assert_int_equal(hak__config_parse_string(text, "mem.ini", &cfg), 0);
	assert_log_count(0);
	assert_string_equal(cfg.dir, ".");
	assert_string_equal(cfg.core.policy_dir, "/opt/hak/plugins");
	assert_int_equal(cfg.core.stats, HAK_STATS_TABLE);
	assert_string_equal(cfg.policy[HAK_KIND_INDEX_TRIM].name, "");
	assert_string_equal(cfg.policy[HAK_KIND_INDEX_OWNERSHIP].name, "central");
	assert_string_equal(cfg.policy[HAK_KIND_INDEX_OWNERSHIP].items[0].value, "a;b"); /* no blank before ';' */
	hak__config_free(&cfg);

	/* A bare file name resolves relative paths against "."; "/x.ini" against "/". */
	assert_int_equal(hak__config_parse_string("[core]\npolicy_dir = p\n", "x.ini", &cfg), 0);
	assert_string_equal(cfg.core.policy_dir, "./p");
	hak__config_free(&cfg);
	assert_int_equal(hak__config_parse_string("[core]\npolicy_dir = p\n", "/x.ini", &cfg), 0);
	assert_string_equal(cfg.core.policy_dir, "//p");
	hak__config_free(&cfg);
	/* Two items on one line: the second is reported, not silently lost. */
	log_start();
	assert_int_equal(hak__config_parse_string("[core] stats = json\n[trim] ; fine\n", "one.ini", &cfg), EINVAL);
	assert_log_count(1);
	EXPECT_LINE(0, "one.ini:1: text after ']' ignored");
	assert_int_equal(cfg.core.stats, HAK_STATS_OFF);
	hak__config_free(&cfg);
	log_start();
	assert_int_equal(hak__config_parse_string("", "empty.ini", &cfg), 0);
	assert_defaults(&cfg);
	hak__config_free(&cfg);
	assert_log_count(0);
}

/* ---- Bad content: one line each, with file and line, then the fallback ------------------------- */

static void test_bad_values(void **state)
{
	(void)state;
	struct hak_config cfg;
	char label[512];
	log_start();
	assert_int_equal(parse_fixture("bad_values.ini", &cfg, label, sizeof label), EINVAL);
	assert_log_count(6);
	assert_int_equal(cfg.diagnostics, 6);
	char where[600];
	snprintf(where, sizeof where, "hakmem: %s:3: ", label);
	EXPECT_LINE(0, where, "stats = 'banana'", "expected off, table or json", "; using off");
	EXPECT_LINE(1, ":4: ", "map_budget = '-5banana'", "expected an integer in 0..2147483647", "; using 0");
	EXPECT_LINE(2, ":5: ", "map_budget = '99999999999'", "; using 0");
	EXPECT_LINE(3, ":6: ", "verbose = 'perhaps'", "expected on or off", "; using off");
	EXPECT_LINE(4, ":7: ", "unknown key 'colour' in [core]; ignored");
	EXPECT_LINE(5, ":8: ", "policy_dir = ''", "empty", "; using " HAK_PLUGIN_DIR);
	assert_string_equal(cfg.core.policy_dir, HAK_PLUGIN_DIR);
	assert_int_equal(cfg.core.stats, HAK_STATS_OFF);
	assert_int_equal(cfg.core.map_budget, 0);
	/* A plugin's own key is not ours to judge: it reaches init untouched, with its line. */
	const struct hak_policy_choice *t = &cfg.policy[HAK_KIND_INDEX_TRIM];
	assert_int_equal(t->count, 1);
	assert_string_equal(t->items[0].value, "-5banana");
	assert_int_equal(t->items[0].line, 11);
	hak__config_free(&cfg);
}

static void test_sections_and_syntax(void **state)
{
	(void)state;
	struct hak_config cfg;
	char label[512];
	log_start();
	assert_int_equal(parse_fixture("sections.ini", &cfg, label, sizeof label), EINVAL);
	assert_log_count(5);
	EXPECT_LINE(0, ":1: ", "key 'stray' before any [section]; ignored");
	EXPECT_LINE(1, ":4: ", "unknown section [memory]; ignored");
	EXPECT_LINE(2, ":7: ", "'[' without ']'");
	EXPECT_LINE(3, ":11: ", "expected 'key = value' or '[section]'; line ignored");
	EXPECT_LINE(4, ":12: ", "no key before '='; line ignored");
	/* The lines inside the unknown and the broken section changed nothing. */
	assert_int_equal(cfg.core.stats, HAK_STATS_TABLE);
	assert_null(cfg.policy[HAK_KIND_INDEX_TRIM].name);
	assert_int_equal(cfg.policy[HAK_KIND_INDEX_TRIM].section_line, 0);
	assert_string_equal(cfg.policy[HAK_KIND_INDEX_OWNERSHIP].name, "central");
	hak__config_free(&cfg);
}

static void test_repeats(void **state)
{
	(void)state;
	struct hak_config cfg;
	const char text[] = "[core]\nstats = table\nstats = json\n[trim]\npolicy = a\npolicy = b\n"
			    "idle_ms = 1\nidle_ms = 2\n[trim]\nempty_reserve = 0\n";
	log_start();
	assert_int_equal(hak__config_parse_string(text, "r.ini", &cfg), EINVAL);
	assert_log_count(3);
	EXPECT_LINE(0, "r.ini:3: ", "stats was already set at line 2; using this line");
	EXPECT_LINE(1, "r.ini:6: ", "[trim] policy was already set at line 5; using this line");
	EXPECT_LINE(2, "r.ini:8: ", "[trim] idle_ms was already set at line 7; using this line");
	assert_int_equal(cfg.core.stats, HAK_STATS_JSON);
	const struct hak_policy_choice *t = &cfg.policy[HAK_KIND_INDEX_TRIM];
	assert_string_equal(t->name, "b");
	assert_int_equal(t->section_line, 4); /* the first header; a second one merges */
	assert_int_equal(t->count, 2);
	assert_string_equal(t->items[0].value, "2");
	assert_int_equal(t->items[0].line, 8);
	assert_string_equal(t->items[1].key, "empty_reserve");
	hak__config_free(&cfg);
}

static void test_long_line(void **state)
{
	(void)state;
	struct hak_config cfg;
	char text[2000];
	int n = snprintf(text, sizeof text, "[core]\npolicy_dir = /");
	memset(text + n, 'a', 600);
	snprintf(text + n + 600, sizeof text - (size_t)n - 600, "\nstats = json\n[ownership]\npolicy = x\n");
	log_start();
	assert_int_equal(hak__config_parse_string(text, "long.ini", &cfg), EINVAL);
	assert_log_count(1);
	EXPECT_LINE(0, "long.ini:2: ", "line longer than", "ignored");
	/* Not split into pieces that would parse as other lines; the next lines still count. */
	assert_string_equal(cfg.core.policy_dir, HAK_PLUGIN_DIR);
	assert_int_equal(cfg.core.stats, HAK_STATS_JSON);
	assert_string_equal(cfg.policy[HAK_KIND_INDEX_OWNERSHIP].name, "x");
	hak__config_free(&cfg);
}

static void test_path_too_long(void **state)
{
	(void)state;
	struct hak_config cfg;
	char label[HAK_CONFIG_PATH_MAX - 1]; /* the longest label that fits cfg->file */
	memset(label, 'd', sizeof label - 7);
	snprintf(label + sizeof label - 7, 7, "/x.ini");
	log_start();
	assert_int_equal(hak__config_parse_string("[core]\npolicy_dir = plugins/here\n", label, &cfg), EINVAL);
	assert_log_count(1);
	EXPECT_LINE(0, "x.ini:2: ", "path longer than", "; using " HAK_PLUGIN_DIR);
	assert_true(strlen(log_lines[0]) < 400); /* the label was shortened for the line */
	hak__config_free(&cfg);
}

static void test_nul_byte(void **state)
{
	(void)state;
	struct hak_config cfg;
	const char data[] = "[core]\nstats = json\nmap\0_budget = 5\n";
	log_start();
	assert_int_equal(hak__config_parse_buffer(data, sizeof data - 1, "bin.ini", &cfg), EINVAL);
	assert_log_count(1);
	EXPECT_LINE(0, "bin.ini:3: ", "NUL byte", "using built-in defaults");
	assert_defaults(&cfg); /* nothing of a binary file is used, not even the good first lines */
	hak__config_free(&cfg);
}

static void test_too_many_mistakes(void **state)
{
	(void)state;
	struct hak_config cfg;
	char text[4096] = "";
	for (int i = 0; i < 50; i++)
		strcat(text, "garbage\n");
	strcat(text, "[core]\nstats = table\n");
	log_start();
	assert_int_equal(hak__config_parse_string(text, "junk.ini", &cfg), EINVAL);
	assert_log_count(HAK_CONFIG_MAX_REPORTS + 1);
	EXPECT_LINE(HAK_CONFIG_MAX_REPORTS, "junk.ini: more than 20 mistakes");
	assert_int_equal(cfg.diagnostics, 50);
	assert_int_equal(cfg.core.stats, HAK_STATS_TABLE);
	hak__config_free(&cfg);
}

static void test_many_plugin_keys(void **state)
{
	(void)state;
	struct hak_config cfg;
	static char text[8192];
	int n = snprintf(text, sizeof text, "[superslab]\n");
	for (int i = 0; i <= HAK_CONFIG_MAX_KEYS; i++)
		n += snprintf(text + n, sizeof text - (size_t)n, "k%d = %d\n", i, i);
	log_start();
	assert_int_equal(hak__config_parse_string(text, "keys.ini", &cfg), EINVAL);
	assert_log_count(1);
	EXPECT_LINE(0, "keys.ini:66: ", "more than 64 keys in [superslab]; 'k64' ignored");
	assert_int_equal(cfg.policy[HAK_KIND_INDEX_SUPERSLAB].count, HAK_CONFIG_MAX_KEYS);
	assert_string_equal(cfg.policy[HAK_KIND_INDEX_SUPERSLAB].items[63].key, "k63");
	hak__config_free(&cfg);
}

/* A control byte or invalid UTF-8 makes the whole file "not text": one line naming the byte
 * and its line, nothing of its content echoed, the defaults used. */
static void test_control_bytes_quoted(void **state)
{
	(void)state;
	struct hak_config cfg;
	log_start();
	assert_int_equal(hak__config_parse_string("[core]\nstats = \x1b[31mred\n", "esc.ini", &cfg), EINVAL);
	assert_log_count(1);
	EXPECT_LINE(0, "esc.ini:2: byte 0x1b is not text");
	assert_int_equal(cfg.core.stats, HAK_STATS_OFF);
	hak__config_free(&cfg);
	log_start();
	assert_int_equal(hak__config_parse_string("[core]\nstats = json\n; \xff\xfe\n", "bin.ini", &cfg), EINVAL);
	assert_log_count(1);
	EXPECT_LINE(0, "bin.ini:3: byte 0xff is not text");
	assert_int_equal(cfg.core.stats, HAK_STATS_OFF); /* nothing of a non-text file is used */
	hak__config_free(&cfg);
	log_start(); /* UTF-8 text is fine, in comments and values */
	assert_int_equal(hak__config_parse_string("; caf\xc3\xa9\n[core]\nstats = json\n", "utf8.ini", &cfg), 0);
	assert_log_count(0);
	assert_int_equal(cfg.core.stats, HAK_STATS_JSON);
	hak__config_free(&cfg);

	char buf[16];
	assert_string_equal(hak__log_quote(buf, sizeof buf, "a\tb\nc", false), "a?b?c");
	assert_string_equal(hak__log_quote(buf, sizeof buf, "0123456789abcdefghij", false), "0123456789ab...");
	assert_string_equal(hak__log_quote(buf, sizeof buf, "0123456789abcdefghij", true), "...89abcdefghij");
	assert_string_equal(hak__log_quote(buf, sizeof buf, NULL, false), "(null)");
}

/* Random bytes, and random mixes of INI tokens: never a crash, a hang or an unbounded report. */
static void test_random_input(void **state)
{
	(void)state;
	static const char *const tokens[] = {"[", "]", "core", "trim", "ownership", "=", ":", ";", "#", " ",
					      "\t", "\n", "\r\n", "policy", "stats", "json", "map_budget",
					      "-5", "banana", "policy_dir", "..", "/", "\xEF\xBB\xBF", "\xff"};
	static char buf[4096];
	uint64_t x = 88172645463325252ull;
	log_start();
	for (int round = 0; round < 3000; round++) {
		size_t len = 0;
		size_t want = (size_t)(x % sizeof buf);
		while (len < want) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			if (round % 2) {
				buf[len++] = (char)(x & 0xff);
			} else {
				const char *t = tokens[x % (sizeof tokens / sizeof tokens[0])];
				size_t tl = strlen(t);
				if (len + tl > want)
					break;
				memcpy(buf + len, t, tl);
				len += tl;
			}
		}
		struct hak_config cfg;
		log_count = 0;
		int rc = hak__config_parse_buffer(buf, len, "fuzz.ini", &cfg);
		assert_true(rc == 0 || rc == EINVAL);
		assert_true(log_count <= HAK_CONFIG_MAX_REPORTS + 1);
		hak__config_free(&cfg);
	}
}

/* ---- Files: missing, unreadable, not regular, unsafe ------------------------------------------- */

static void test_missing_file(void **state)
{
	(void)state;
	struct hak_config cfg;
	log_start();
	assert_int_equal(hak__config_load("/nonexistent/hakmem.ini", &cfg), ENOENT);
	assert_log_count(1);
	EXPECT_LINE(0, "hakmem: /nonexistent/hakmem.ini: cannot open: No such file or directory (/nonexistent); using built-in defaults");
	assert_defaults(&cfg);
	hak__config_free(&cfg);
	log_start();
	assert_int_equal(hak__config_load("", &cfg), ENOENT);
	assert_log_count(1);
	EXPECT_LINE(0, "empty file name; using built-in defaults");
}

static void test_directory(void **state)
{
	(void)state;
	struct hak_config cfg;
	log_start();
	assert_int_equal(hak__config_load(tmp_root, &cfg), EISDIR);
	assert_log_count(1);
	EXPECT_LINE(0, tmp_root, "is a directory, expected a regular file; using built-in defaults");
	assert_defaults(&cfg);
}

static void test_fifo_does_not_hang(void **state)
{
	(void)state;
	struct hak_config cfg;
	char path[256];
	snprintf(path, sizeof path, "%s/fifo.ini", tmp_root);
	assert_int_equal(mkfifo(path, 0600), 0);
	log_start();
	assert_int_equal(hak__config_load(path, &cfg), EINVAL);
	assert_log_count(1);
	EXPECT_LINE(0, "is a FIFO, expected a regular file; using built-in defaults");
	log_start();
	assert_int_equal(hak__config_load("/dev/null", &cfg), EINVAL);
	EXPECT_LINE(0, "/dev/null: is a device");
}

static void test_writable_refused(void **state)
{
	(void)state;
	struct hak_config cfg;
	const char text[] = "[core]\nstats = json\n";
	const char *world = tmp_file("world.ini", text, sizeof text - 1, 0666);
	const char *group = tmp_file("group.ini", text, sizeof text - 1, 0664);
	const char *fine = tmp_file("fine.ini", text, sizeof text - 1, 0640);
	log_start();
	assert_int_equal(hak__config_load(world, &cfg), EPERM);
	assert_log_count(1);
	EXPECT_LINE(0, world, "is world-writable (mode 0666)", "using built-in defaults");
	assert_int_equal(cfg.core.stats, HAK_STATS_OFF);
	log_start();
	assert_int_equal(hak__config_load(group, &cfg), EPERM);
	assert_log_count(1);
	EXPECT_LINE(0, group, "is group-writable (mode 0664)", "using built-in defaults");
	log_start();
	assert_int_equal(hak__config_load(fine, &cfg), 0);
	assert_log_count(0);
	assert_int_equal(cfg.core.stats, HAK_STATS_JSON);
	hak__config_free(&cfg);
}

static void test_symlink_refused(void **state)
{
	(void)state;
	struct hak_config cfg;
	const char text[] = "[core]\nstats = json\n";
	const char *target = tmp_file("target.ini", text, sizeof text - 1, 0644);
	char link[256];
	snprintf(link, sizeof link, "%s/link.ini", tmp_root);
	assert_int_equal(symlink(target, link), 0);
	log_start();
	assert_int_equal(hak__config_load(link, &cfg), ELOOP);
	assert_log_count(1);
	EXPECT_LINE(0, "link.ini: is a symbolic link", "using built-in defaults");
	assert_int_equal(cfg.core.stats, HAK_STATS_OFF);
}

static void test_foreign_owner_refused(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		print_message("  (not root: cannot give a file to another user; skipped)\n");
		skip();
	}
	struct hak_config cfg;
	const char text[] = "[core]\nstats = json\n";
	const char *path = tmp_file("theirs.ini", text, sizeof text - 1, 0644);
	assert_int_equal(chown(path, 12345, 12345), 0);
	log_start();
	assert_int_equal(hak__config_load(path, &cfg), EPERM);
	assert_log_count(1);
	EXPECT_LINE(0, "is owned by uid 12345, expected root or uid 0; using built-in defaults");
}

/* Drops (or takes back, from the permitted set) CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH in
 * the effective set of the calling thread. */
static void dac_override(bool on)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];
	assert_int_equal(syscall(SYS_capget, &h, d), 0);
	uint32_t bits = (1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH);
	d[0].effective = on ? d[0].effective | (bits & d[0].permitted) : d[0].effective & ~bits;
	assert_int_equal(syscall(SYS_capset, &h, d), 0);
}

static void test_unreadable(void **state)
{
	(void)state;
	struct hak_config cfg;
	const char text[] = "[core]\nstats = json\n";
	const char *path = tmp_file("secret.ini", text, sizeof text - 1, 0000);
	/* Root reads anything: it gives up the two capabilities that let it, for the open, and stays
	 * root (becoming nobody instead fails earlier wherever the checkout sits below a folder only
	 * root may enter, such as /root). */
	bool root = geteuid() == 0;
	if (root)
		dac_override(false);
	log_start();
	int rc = hak__config_load(path, &cfg);
	if (root)
		dac_override(true);
	assert_int_equal(rc, EACCES);
	assert_log_count(1);
	EXPECT_LINE(0, "secret.ini: cannot open: Permission denied; using built-in defaults");
	assert_defaults(&cfg);
}

static void test_huge_file(void **state)
{
	(void)state;
	struct hak_config cfg;
	static char big[HAK_CONFIG_MAX_BYTES + 100];
	memset(big, '\n', sizeof big);
	memcpy(big, "[core]\nstats = json\n", 20);
	const char *path = tmp_file("big.ini", big, sizeof big, 0644);
	log_start();
	assert_int_equal(hak__config_load(path, &cfg), EFBIG);
	assert_log_count(1);
	EXPECT_LINE(0, "big.ini: larger than 262144 bytes; using built-in defaults");
	assert_defaults(&cfg);
	/* /proc files say size 0: the read loop still stops at the limit. */
	log_start();
	assert_int_equal(hak__config_parse_buffer(big, sizeof big, "big2.ini", &cfg), EFBIG);
	assert_log_count(1);
}

static void test_open_trusted_direct(void **state)
{
	(void)state;
	char why[200];
	int err = -1;
	const char *ok = tmp_file("ok.so", "x", 1, 0755);
	int fd = hak__open_trusted(ok, &err, why, sizeof why);
	assert_true(fd >= 0);
	assert_int_equal(err, 0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
	const char *bad = tmp_file("bad.so", "x", 1, 0757);
	assert_int_equal(hak__open_trusted(bad, &err, why, sizeof why), -1);
	assert_int_equal(err, EPERM);
	assert_non_null(strstr(why, "world-writable (mode 0757)"));
}

/* ---- Which file, the environment, secure mode ------------------------------------------------- */

static void test_choose_path(void **state)
{
	(void)state;
	const char *sys = tmp_file("system.ini", "", 0, 0644);
	char absent[256];
	snprintf(absent, sizeof absent, "%s/absent.ini", tmp_root);
	assert_string_equal(hak__config_choose_path("/x/my.ini", false, sys), "/x/my.ini");
	assert_null(hak__config_choose_path("", false, sys)); /* HAKMEM_CONF= : no file at all */
	assert_ptr_equal(hak__config_choose_path(NULL, false, sys), sys);
	assert_null(hak__config_choose_path(NULL, false, absent));
	/* Secure mode: the variable does not count, the system file still does. */
	assert_ptr_equal(hak__config_choose_path("/x/my.ini", true, sys), sys);
	assert_null(hak__config_choose_path("/x/my.ini", true, absent));
	/* A dangling link at the system name is still named, so its refusal gets reported. */
	char dangling[256];
	snprintf(dangling, sizeof dangling, "%s/dangling.ini", tmp_root);
	assert_int_equal(symlink("/nonexistent/x", dangling), 0);
	assert_ptr_equal(hak__config_choose_path(NULL, false, dangling), dangling);
}

static void test_env_and_secure_mode(void **state)
{
	(void)state;
	setenv("HAKMEM_CONF", "/some/where.ini", 1);
	hak__test_secure_mode = 0;
	assert_false(hak__secure_mode());
	assert_string_equal(hak__config_path_from_env(), "/some/where.ini");
	assert_string_equal(hak__getenv("HAKMEM_CONF"), "/some/where.ini");
	hak__test_secure_mode = 1;
	assert_true(hak__secure_mode());
	assert_null(hak__getenv("HAKMEM_CONF"));
	const char *p = hak__config_path_from_env();
	assert_true(p == NULL || strcmp(p, HAK_CONFIG_SYSTEM_PATH) == 0);
	hak__test_secure_mode = -1;
	assert_false(hak__secure_mode()); /* the test runner is no setuid program */
	unsetenv("HAKMEM_CONF");
}

static void test_secure_mode_owner(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		print_message("  (not root: cannot give a file to another user; skipped)\n");
		skip();
	}
	char why[200];
	int err;
	const char *path = tmp_file("user.ini", "", 0, 0644);
	assert_int_equal(chown(path, 1000, 1000), 0);
	hak__test_secure_mode = 1;
	assert_int_equal(hak__open_trusted(path, &err, why, sizeof why), -1);
	hak__test_secure_mode = -1;
	assert_int_equal(err, EPERM);
	assert_non_null(strstr(why, "expected root (secure-execution mode)"));
}

static void test_stats_env(void **state)
{
	(void)state;
	struct hak_config cfg;
	static const struct {
		const char *value;
		enum hak_stats_mode want;
	} cases[] = {{"1", HAK_STATS_TABLE}, {"table", HAK_STATS_TABLE}, {"json", HAK_STATS_JSON},
		     {"0", HAK_STATS_OFF},   {"off", HAK_STATS_OFF},     {"JSON", HAK_STATS_JSON}};
	log_start();
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		hak__config_defaults(&cfg);
		cfg.core.stats = HAK_STATS_TABLE;
		if (cases[i].want == HAK_STATS_TABLE)
			cfg.core.stats = HAK_STATS_OFF;
		setenv("HAKMEM_STATS", cases[i].value, 1);
		hak__config_apply_env(&cfg);
		assert_int_equal(cfg.core.stats, cases[i].want);
	}
	assert_log_count(0);
	hak__config_defaults(&cfg);
	cfg.core.stats = HAK_STATS_JSON;
	setenv("HAKMEM_STATS", "banana", 1);
	hak__config_apply_env(&cfg);
	assert_int_equal(cfg.core.stats, HAK_STATS_JSON);
	assert_log_count(1);
	EXPECT_LINE(0, "HAKMEM_STATS='banana': expected", "; using json");
	/* Ignored in secure mode. */
	setenv("HAKMEM_STATS", "table", 1);
	hak__test_secure_mode = 1;
	hak__config_apply_env(&cfg);
	hak__test_secure_mode = -1;
	assert_int_equal(cfg.core.stats, HAK_STATS_JSON);
	unsetenv("HAKMEM_STATS");
}

/* ---- Documentation and the shipped configurations ------------------------------------------- */

static void test_doc_lists_every_key(void **state)
{
	(void)state;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	hak__config_doc(f);
	fclose(f);
#define HAK__X(key, type, def, lo, hi, help) assert_non_null(strstr(text, "| `" #key "` |"));
	HAK_CORE_SETTINGS(HAK__X)
#undef HAK__X
	assert_non_null(strstr(text, "| `stats` | `off`, `table` or `json` | `off` |"));
	assert_non_null(strstr(text, "| `map_budget` | integer 0..2147483647 | `0` |"));
	assert_non_null(strstr(text, "`" HAK_PLUGIN_DIR "`"));
	assert_non_null(strstr(text, "<kind>_<name>.so"));
	free(text);
}

static void test_shipped_configs(void **state)
{
	(void)state;
	static const struct {
		const char *file;
		const char *trim, *superslab, *ownership;
		const char *superslab_size;
	} confs[] = {
		{"hakmem.ini", "idle", "fixed", "tls", "2M"},
		{"option-g.ini", NULL, NULL, "tls", NULL},
		{"option-f.ini", NULL, NULL, "central", NULL},
		{"hybrid.ini", NULL, NULL, "hybrid", NULL},
		{"superslab-1mb.ini", NULL, "fixed", NULL, "1M"},
		{"trim-none.ini", "none", NULL, NULL, NULL},
		{"trim-eager.ini", "eager", NULL, NULL, NULL},
		{"trim-pressure.ini", "pressure", NULL, NULL, NULL},
		{"trim-decay.ini", "decay", NULL, NULL, NULL},
	};
	for (size_t i = 0; i < sizeof confs / sizeof confs[0]; i++) {
		char path[512];
		struct hak_config cfg;
		snprintf(path, sizeof path, "%s/conf/%s", HAK_SOURCE_ROOT, confs[i].file);
		const char *text = slurp(path, NULL);
		log_start();
		assert_int_equal(hak__config_parse_string(text, path, &cfg), 0);
		assert_log_count(0);
		assert_string_equal(cfg.core.policy_dir, HAK_SOURCE_ROOT "/conf/../build/policies");
		const char *want[] = {confs[i].trim, confs[i].superslab, confs[i].ownership};
		for (int k = 0; k < HAK_KIND_COUNT; k++) {
			if (!want[k])
				continue;
			assert_non_null(cfg.policy[k].name);
			assert_string_equal(cfg.policy[k].name, want[k]);
		}
		if (confs[i].superslab_size) {
			struct hak_settings s = hak__config_settings(&cfg, HAK_KIND_INDEX_SUPERSLAB);
			assert_int_equal(s.count, 1);
			assert_string_equal(s.items[0].key, "size");
			assert_string_equal(s.items[0].value, confs[i].superslab_size);
		}
		if (i == 0) {
			/* The reference file documents every [core] key and every built-in key. */
#define HAK__X(key, type, def, lo, hi, help) assert_non_null(strstr(text, #key " ="));
			HAK_CORE_SETTINGS(HAK__X)
#undef HAK__X
			assert_non_null(strstr(text, "idle_ms = 50"));
			assert_non_null(strstr(text, "empty_reserve = 2"));
			assert_non_null(strstr(text, "size = 2M"));
			assert_non_null(strstr(text, "grow_after"));
		}
		hak__config_free(&cfg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_good_file),
		cmocka_unit_test(test_load_good_copy),
		cmocka_unit_test(test_syntax_variants),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_sections_and_syntax),
		cmocka_unit_test(test_repeats),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_path_too_long),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_too_many_mistakes),
		cmocka_unit_test(test_many_plugin_keys),
		cmocka_unit_test(test_control_bytes_quoted),
		cmocka_unit_test(test_random_input),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_directory),
		cmocka_unit_test(test_fifo_does_not_hang),
		cmocka_unit_test(test_writable_refused),
		cmocka_unit_test(test_symlink_refused),
		cmocka_unit_test(test_foreign_owner_refused),
		cmocka_unit_test(test_unreadable),
		cmocka_unit_test(test_huge_file),
		cmocka_unit_test(test_open_trusted_direct),
		cmocka_unit_test(test_choose_path),
		cmocka_unit_test(test_env_and_secure_mode),
		cmocka_unit_test(test_secure_mode_owner),
		cmocka_unit_test(test_stats_env),
		cmocka_unit_test(test_doc_lists_every_key),
		cmocka_unit_test(test_shipped_configs),
	};
	return cmocka_run_group_tests_name("config", tests, helpers_setup, helpers_teardown);
}
