/* test_loader.c: the plugin loader (core/loader.c) against the fixture plugins built from
 * tests/fixtures/ (one .so per .c): name rules, the pure descriptor check, one exact line per refusal (file,
 * symbol, found, expected, fallback), the fall-back to the built-in, and the listing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dlfcn.h>
#include <errno.h>
#include <link.h>

#include "../fixtures/fixture_state.h"
#include "../fixtures/unit_helpers.h"
#include "loader.h"

/* ---- A minimal core for the plugins: only the ABI fields and the logger. ----------------------- */

static void core_log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	hak__vlog(fmt, ap);
	va_end(ap);
}

static const struct hak_core_api core = {
	.abi_major = HAK_POLICY_ABI_MAJOR,
	.abi_minor = HAK_POLICY_ABI_MINOR,
	.size = sizeof(struct hak_core_api),
	.log = core_log,
};

/* The handle each init gets: opaque to the loader, which only passes it on. */
static char self_record[64];
#define SELF ((hak_policy *)(void *)self_record)

/* ---- A built-in stand-in: records what its init saw; refuses a key named `reject`. ------------ */

static struct {
	int calls;
	size_t last_count;
} builtin_seen;

static int builtin_init(const struct hak_core_api *c, hak_policy *self, const struct hak_settings *s, void **state,
			char *err, size_t errlen)
{
	(void)c;
	assert_ptr_equal(self, SELF);
	builtin_seen.calls++;
	builtin_seen.last_count = s->count;
	for (size_t i = 0; i < s->count; i++)
		if (!strcmp(s->items[i].key, "reject")) {
			snprintf(err, errlen, "unknown key 'reject' at line %d", s->items[i].line);
			return EINVAL;
		}
	*state = &builtin_seen;
	return 0;
}

static int builtin_refill(void *st, hak_thread *t, void *ts, unsigned cls)
{
	(void)st, (void)t, (void)ts, (void)cls;
	return 0;
}
static void builtin_flush(void *st, hak_thread *t, void *ts, unsigned cls, struct hak_chain ch)
{
	(void)st, (void)t, (void)ts, (void)cls, (void)ch;
}
static void builtin_free_foreign(void *st, hak_thread *t, hak_slab *s, void *b)
{
	(void)st, (void)t, (void)s, (void)b;
}
static void builtin_thread_exit(void *st, hak_thread *t, void *ts)
{
	(void)st, (void)t, (void)ts;
}
static void builtin_noop(void *st)
{
	(void)st;
}
static const struct hak_ownership_ops builtin_ops = {
	.size = sizeof(struct hak_ownership_ops),
	.refill = builtin_refill,
	.flush = builtin_flush,
	.free_foreign = builtin_free_foreign,
	.thread_exit = builtin_thread_exit,
};
static const struct hak_policy_desc builtin_tls = {
	HAK_POLICY_DESC_INIT(HAK_POLICY_OWNERSHIP, "tls", "1.0.0", "test stand-in for the built-in"),
	.init = builtin_init,
	.ops = &builtin_ops,
};


/* A config whose [ownership] names `name` at line 7 of "/etc/hakmem.ini", plugins in `dir`. */
static void config_for(struct hak_config *cfg, const char *dir, const char *name)
{
	hak__config_defaults(cfg);
	snprintf(cfg->file, sizeof cfg->file, "/etc/hakmem.ini");
	snprintf(cfg->core.policy_dir, sizeof cfg->core.policy_dir, "%s", dir);
	struct hak_policy_choice *c = &cfg->policy[HAK_KIND_INDEX_OWNERSHIP];
	c->name = name ? strdup(name) : NULL;
	c->section_line = 6;
	c->line = 7;
}

static int count_objects_cb(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)info, (void)size;
	++*(int *)data;
	return 0;
}

static int loaded_objects(void)
{
	int n = 0;
	dl_iterate_phdr(count_objects_cb, &n);
	return n;
}

/* ---- Names and paths --------------------------------------------------------------------------- */

static void test_name_check(void **state)
{
	(void)state;
	char why[200];
	static const char *const good[] = {"tls", "central", "my_policy-2", "A", "x0"};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		assert_int_equal(hak__policy_name_check(good[i], why, sizeof why), 0);
	static const struct {
		const char *name, *why;
	} bad[] = {
		{"", "empty name"},
		{"../../tmp/evil", "contains '/'"},
		{"..", "contains '..'"},
		{"a..b", "contains '..'"},
		{"/etc/passwd", "contains '/'"},
		{"a/b", "contains '/'"},
		{".hidden", "contains '.'"},
		{"tls.so", "contains '.'"},
		{"sp ace", "contains byte 0x20"},
		{"tab\t", "contains byte 0x09"},
		{"x\xc3\xa9", "contains byte 0xc3"},
		{"0123456789012345678901234567890123456789012345678901234567890123456789", "longer than 64"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		why[0] = '\0';
		assert_int_equal(hak__policy_name_check(bad[i].name, why, sizeof why), EINVAL);
		if (!strstr(why, bad[i].why))
			fail_msg("name '%s': reason '%s' lacks '%s'", bad[i].name, why, bad[i].why);
	}
	assert_int_equal(hak__policy_name_check(NULL, why, sizeof why), EINVAL);
}

static void test_path_rule(void **state)
{
	(void)state;
	char out[64];
	assert_int_equal(hak__policy_path("/usr/lib/hakmem", HAK_POLICY_OWNERSHIP, "central", out, sizeof out), 0);
	assert_string_equal(out, "/usr/lib/hakmem/ownership_central.so");
	assert_int_equal(hak__policy_path("build/policies", HAK_POLICY_TRIM, "idle", out, sizeof out), 0);
	assert_string_equal(out, "build/policies/trim_idle.so");
	assert_int_equal(hak__policy_path("d", HAK_POLICY_SUPERSLAB, "fixed", out, sizeof out), 0);
	assert_string_equal(out, "d/superslab_fixed.so");
	assert_int_equal(hak__policy_path("/a/very/long/folder/name/indeed", HAK_POLICY_SUPERSLAB, "adaptive",
					  out, 40),
			 ENAMETOOLONG);
	assert_int_equal(hak__policy_path("d", 0, "x", out, sizeof out), EINVAL);
	assert_int_equal(hak__policy_path("d", 4, "x", out, sizeof out), EINVAL);
	assert_string_equal(hak__builtin_name(HAK_POLICY_TRIM), "idle");
	assert_string_equal(hak__builtin_name(HAK_POLICY_SUPERSLAB), "fixed");
	assert_string_equal(hak__builtin_name(HAK_POLICY_OWNERSHIP), "tls");
	assert_null(hak__builtin_name(9));
}

/* ---- The pure descriptor check ------------------------------------------------------------------ */

static void expect_invalid(const struct hak_policy_desc *d, size_t avail, uint32_t kind, const char *name,
			   const char *found, const char *expected)
{
	char err[256] = "";
	assert_int_equal(hak__policy_validate(d, avail, kind, name, err, sizeof err), EINVAL);
	if (!strstr(err, found) || (expected && !strstr(err, expected)))
		fail_msg("validate: '%s' lacks '%s' / '%s'", err, found, expected ? expected : "");
}

static void test_validate(void **state)
{
	(void)state;
	char err[256];
	const struct hak_policy_desc good = builtin_tls;
	struct hak_policy_desc d;
	assert_int_equal(hak__policy_validate(&good, sizeof good, HAK_POLICY_OWNERSHIP, "tls", err, sizeof err), 0);
	assert_int_equal(hak__policy_validate(&good, SIZE_MAX, 0, NULL, err, sizeof err), 0);

	expect_invalid(NULL, SIZE_MAX, 3, "tls", "NULL", "struct hak_policy_desc");
	expect_invalid(&good, 4, 3, "tls", "object of 4 bytes", "expected a struct hak_policy_desc");
	expect_invalid(&good, 16, 3, "tls", "object of 16 bytes", "expected at least");
	expect_invalid(&good, 64, 3, "tls", "object of 64 bytes", "expected at least");

	d = good, d.magic = 0x1122334455667788ull;
	expect_invalid(&d, sizeof d, 3, "tls", "magic 0x1122334455667788", "expected 0x314c4f50484b4148");
	d = good, d.abi_major = 3;
	expect_invalid(&d, sizeof d, 3, "tls", "ABI major 3", "expected 2");
	d = good, d.min_core_minor = HAK_POLICY_ABI_MINOR + 1; /* needs services this core lacks */
	expect_invalid(&d, sizeof d, 3, "tls", "needs core ABI 2.", "expected at most 2.");
	d = good, d.abi_minor = 7; /* a newer minor only appended fields: fine */
	d.size = sizeof d + 64;
	assert_int_equal(hak__policy_validate(&d, SIZE_MAX, 3, "tls", err, sizeof err), 0);
	d = good, d.size = 40;
	expect_invalid(&d, sizeof d, 3, "tls", "struct size 40", "expected at least");
	d = good, d.signature = NULL;
	expect_invalid(&d, sizeof d, 3, "tls", "signature NULL", "expected '" HAK_POLICY_SIGNATURE "'");
	d = good, d.signature = "hakmem-abi-1/ptr4/1234/chain-next-at-0";
	expect_invalid(&d, sizeof d, 3, "tls", "signature 'hakmem-abi-1/ptr4/1234/chain-next-at-0'",
		       "expected '" HAK_POLICY_SIGNATURE "'");
	d = good, d.fork_prepare = builtin_noop;
	expect_invalid(&d, sizeof d, 3, "tls", "only one of fork_prepare and fork_parent", "both or neither");
	d = good, d.settings_count = 2;
	expect_invalid(&d, sizeof d, 3, "tls", "settings_count 2 with no settings_spec", "expected a table");
	d = good, d.signature = HAK_POLICY_SIGNATURE "-and-more";
	expect_invalid(&d, sizeof d, 3, "tls", "signature '", "expected '");
	expect_invalid(&good, sizeof good, HAK_POLICY_TRIM, "tls", "kind 3 (ownership)", "expected 1 (trim)");
	d = good, d.kind = 9;
	expect_invalid(&d, sizeof d, 0, NULL, "kind 9", "expected 1..3");
	d = good, d.name = NULL;
	expect_invalid(&d, sizeof d, 3, "tls", "name NULL", "expected 'tls'");
	d = good, d.name = "";
	expect_invalid(&d, sizeof d, 3, "tls", "name '' (not a bare name)", "expected 'tls'");
	d = good, d.name = "../x";
	expect_invalid(&d, sizeof d, 3, NULL, "name '../x' (not a bare name)", "expected a bare name");
	expect_invalid(&good, sizeof good, 3, "central", "name 'tls'", "expected 'central'");
	d = good, d.init = NULL;
	expect_invalid(&d, sizeof d, 3, "tls", "init is NULL", "expected a function");
	d = good, d.ops = NULL;
	expect_invalid(&d, sizeof d, 3, "tls", "ownership ops table is NULL", "expected one");

	struct hak_ownership_ops ops = builtin_ops;
	d = good, d.ops = &ops;
	ops.flush = NULL;
	expect_invalid(&d, sizeof d, 3, "tls", "ownership ops: flush is NULL", "expected a function");
	ops = builtin_ops, ops.thread_exit = NULL;
	expect_invalid(&d, sizeof d, 3, "tls", "ownership ops: thread_exit is NULL", NULL);
	ops = builtin_ops, ops.thread_state_size = 1 << 20;
	expect_invalid(&d, sizeof d, 3, "tls", "thread_state_size 1048576", "expected at most 4096");
	ops = builtin_ops, ops.caches_any = 2;
	expect_invalid(&d, sizeof d, 3, "tls", "caches_any 2", "expected 0 or 1");
	ops = builtin_ops, ops.size = 16; /* a table from before its mandatory ops */
	expect_invalid(&d, sizeof d, 3, "tls", "ownership ops table of 16 bytes", "expected at least");
	ops = builtin_ops, ops.size = sizeof ops + 64; /* a newer plugin's longer table: fine */
	assert_int_equal(hak__policy_validate(&d, sizeof d, 3, "tls", err, sizeof err), 0);

	static const struct hak_superslab_ops no_fn = {.size = sizeof(struct hak_superslab_ops)};
	d = good, d.kind = HAK_POLICY_SUPERSLAB, d.name = "fixed", d.ops = NULL;
	expect_invalid(&d, sizeof d, 2, "fixed", "superslab ops table is NULL", NULL);
	d.ops = &no_fn;
	expect_invalid(&d, sizeof d, 2, "fixed", "superslab ops: lg_size_for is NULL", NULL);
	static const struct hak_trim_ops all_null = {.size = sizeof(struct hak_trim_ops)}; /* all optional */
	d = good, d.kind = HAK_POLICY_TRIM, d.name = "none", d.ops = NULL;
	expect_invalid(&d, sizeof d, 1, "none", "trim ops table is NULL", NULL);
	d.ops = &all_null;
	assert_int_equal(hak__policy_validate(&d, sizeof d, 1, "none", err, sizeof err), 0);
}

/* ---- Loading the fixtures ------------------------------------------------------------------------ */

static void test_load_good_of_each_kind(void **state)
{
	(void)state;
	struct hak_config cfg;
	char label[512], path[600];
	size_t len;
	snprintf(label, sizeof label, "%s/plugins.ini", FIXTURE_INI_DIR);
	const char *text = slurp(label, &len);
	log_start();
	assert_int_equal(hak__config_parse_buffer(text, len, label, &cfg), 0);
	free(cfg.policy[HAK_KIND_INDEX_SUPERSLAB].name);
	cfg.policy[HAK_KIND_INDEX_SUPERSLAB].name = strdup("good");
	int before = loaded_objects();
	/* Three loads in a row through /proc/self/fd: each must get its own object, not the first one
	 * again under a reused fd name (glibc matches names before files). */
	static const uint32_t kinds[] = {HAK_POLICY_TRIM, HAK_POLICY_SUPERSLAB, HAK_POLICY_OWNERSHIP};
	for (int i = 0; i < 3; i++) {
		struct hak_policy_instance inst;
		assert_int_equal(hak__policy_load(kinds[i], "good", &cfg, &core, SELF, &inst), 0);
		assert_non_null(inst.desc);
		assert_non_null(inst.handle);
		assert_false(inst.builtin);
		assert_int_equal(inst.desc->kind, kinds[i]);
		assert_string_equal(inst.desc->name, "good");
		assert_string_equal(inst.desc->version, "9.8.7");
		snprintf(path, sizeof path, "%s/../../build/tests/fixtures/%s_good.so", FIXTURE_INI_DIR,
			 hak__kind_name(kinds[i]));
		assert_string_equal(inst.path, path);
		/* init saw the section's settings, with the file and lines. */
		const struct fixture_state *fs = inst.state;
		assert_int_equal(fs->init_calls, 1);
		assert_string_equal(fs->file, label);
		if (kinds[i] == HAK_POLICY_TRIM) {
			assert_int_equal(fs->count, 1);
			assert_string_equal(fs->first_key, "keep");
			assert_string_equal(fs->first_value, "1");
			assert_int_equal(fs->first_line, 7);
		} else if (kinds[i] == HAK_POLICY_OWNERSHIP) {
			assert_int_equal(fs->count, 1);
			assert_string_equal(fs->first_key, "answer");
			assert_int_equal(fs->first_line, 14);
		} else {
			assert_int_equal(fs->count, 0);
		}
		/* Never closed: the descriptor is still mapped after the loader returned. */
		Dl_info info;
		assert_true(dladdr(inst.desc, &info) != 0);
	}
	assert_int_equal(loaded_objects(), before + 3);
	assert_log_count(0);
	hak__config_free(&cfg);
}

/* Each bad fixture: an error, ONE line naming the ini line, the file, the symbol, found and expected
 * and the fallback, and nothing left loaded. */
static void test_bad_plugins(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		int err;
		const char *found, *expected;
	} cases[] = {
		{"nodesc", ENOENT, "symbol hak_policy_descriptor: not found", "expected a struct hak_policy_desc"},
		{"badmagic", EINVAL, "symbol hak_policy_descriptor: magic 0x1122334455667788",
		 "expected 0x314c4f50484b4148"},
		{"abi2", EINVAL, "symbol hak_policy_descriptor: ABI major 3", "expected 2"},
		{"wrongkind", EINVAL, "symbol hak_policy_descriptor: kind 1 (trim)", "expected 3 (ownership)"},
		{"misnamed", EINVAL, "symbol hak_policy_descriptor: name 'other'", "expected 'misnamed'"},
		{"small", EINVAL, "symbol hak_policy_descriptor: struct size 40", "expected at least"},
		{"badsig", EINVAL, "symbol hak_policy_descriptor: signature 'hakmem-abi-2/ptr4/1234/link-word0-mark-word1'",
		 "expected '" HAK_POLICY_SIGNATURE "'"},
		{"tinysym", EINVAL, "symbol hak_policy_descriptor: object of 8 bytes", "expected at least"},
		{"norefill", EINVAL, "symbol hak_policy_descriptor: ownership ops: refill is NULL",
		 "expected a function"},
		{"initfail", ENOMEM, "symbol hak_policy_descriptor: init failed (ENOMEM): no memory for the central lists",
		 NULL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct hak_config cfg;
		struct hak_policy_instance inst;
		char so[600];
		config_for(&cfg, FIXTURE_SO_DIR, cases[i].name);
		snprintf(so, sizeof so, "ownership_%s.so", cases[i].name);
		char policy[100];
		snprintf(policy, sizeof policy, "hakmem: /etc/hakmem.ini:7: policy '%s': ", cases[i].name);
		int before = loaded_objects();
		log_start();
		int rc = hak__policy_load(HAK_POLICY_OWNERSHIP, cases[i].name, &cfg, &core, SELF, &inst);
		if (rc != cases[i].err)
			fail_msg("%s: returned %d, expected %d", cases[i].name, rc, cases[i].err);
		assert_null(inst.desc);
		assert_null(inst.handle);
		assert_log_count(1);
		EXPECT_LINE(0, policy, so, cases[i].found, "; using built-in 'tls'");
		if (cases[i].expected)
			EXPECT_LINE(0, cases[i].expected);
		assert_int_equal(loaded_objects(), before); /* dlclosed */
		hak__config_free(&cfg);
	}
}

static void test_missing_plugin(void **state)
{
	(void)state;
	struct hak_config cfg;
	struct hak_policy_instance inst;
	config_for(&cfg, FIXTURE_SO_DIR, "nosuch");
	log_start();
	assert_int_equal(hak__policy_load(HAK_POLICY_OWNERSHIP, "nosuch", &cfg, &core, SELF, &inst), ENOENT);
	assert_log_count(1);
	EXPECT_LINE(0, "hakmem: /etc/hakmem.ini:7: policy 'nosuch': ", "/ownership_nosuch.so: cannot open: No such file or directory; using built-in 'tls'");
	hak__config_free(&cfg);
}

static void test_traversal_refused(void **state)
{
	(void)state;
	struct hak_config cfg;
	char label[512];
	size_t len;
	snprintf(label, sizeof label, "%s/traversal.ini", FIXTURE_INI_DIR);
	const char *text = slurp(label, &len);
	assert_int_equal(hak__config_parse_buffer(text, len, label, &cfg), 0);
	static const struct {
		uint32_t kind;
		int line;
		const char *what;
	} cases[] = {{HAK_POLICY_TRIM, 5, "contains '/'"},
		     {HAK_POLICY_SUPERSLAB, 7, "contains '/'"},
		     {HAK_POLICY_OWNERSHIP, 9, "contains '/'"}};
	for (size_t i = 0; i < 3; i++) {
		struct hak_policy_instance inst;
		char where[600];
		const char *name = cfg.policy[cases[i].kind - 1].name;
		snprintf(where, sizeof where, "traversal.ini:%d: policy '%s': not a bare name", cases[i].line, name);
		log_start();
		assert_int_equal(hak__policy_load(cases[i].kind, name, &cfg, &core, SELF, &inst), EINVAL);
		assert_log_count(1);
		EXPECT_LINE(0, where, cases[i].what, "; using built-in '");
		assert_string_equal(inst.path, ""); /* no file was even named */
	}
	hak__config_free(&cfg);
}

static void test_unsafe_plugin_files(void **state)
{
	(void)state;
	struct hak_config cfg;
	struct hak_policy_instance inst;
	char sub[300], link[400];
	snprintf(sub, sizeof sub, "%s/plugins", tmp_root);
	assert_int_equal(mkdir(sub, 0755), 0);
	config_for(&cfg, sub, "good");
	assert_non_null(tmp_copy(FIXTURE_SO_DIR "/ownership_good.so", "plugins/ownership_good.so", 0777));
	log_start();
	assert_int_equal(hak__policy_load(HAK_POLICY_OWNERSHIP, "good", &cfg, &core, SELF, &inst), EPERM);
	assert_log_count(1);
	EXPECT_LINE(0, "policy 'good': ", "ownership_good.so: is world-writable (mode 0777)", "using built-in 'tls'");

	assert_non_null(tmp_copy(FIXTURE_SO_DIR "/ownership_good.so", "plugins/ownership_good.so", 0775));
	log_start();
	assert_int_equal(hak__policy_load(HAK_POLICY_OWNERSHIP, "good", &cfg, &core, SELF, &inst), EPERM);
	EXPECT_LINE(0, "ownership_good.so: is group-writable (mode 0775)");

	/* A symbolic link is refused even when it points at a good plugin. */
	snprintf(link, sizeof link, "%s/ownership_good.so", sub);
	unlink(link);
	assert_int_equal(symlink(FIXTURE_SO_DIR "/ownership_good.so", link), 0);
	log_start();
	assert_int_equal(hak__policy_load(HAK_POLICY_OWNERSHIP, "good", &cfg, &core, SELF, &inst), ELOOP);
	EXPECT_LINE(0, "ownership_good.so: is a symbolic link", "using built-in 'tls'");

	if (geteuid() == 0) {
		unlink(link);
		const char *p = tmp_copy(FIXTURE_SO_DIR "/ownership_good.so", "plugins/ownership_good.so", 0755);
		assert_int_equal(chown(p, 4242, 4242), 0);
		log_start();
		assert_int_equal(hak__policy_load(HAK_POLICY_OWNERSHIP, "good", &cfg, &core, SELF, &inst), EPERM);
		EXPECT_LINE(0, "ownership_good.so: is owned by uid 4242, expected root or uid 0");
	}
	/* Not a regular file: a folder with the plugin's name. */
	unlink(link);
	assert_int_equal(mkdir(link, 0755), 0);
	log_start();
	assert_int_equal(hak__policy_load(HAK_POLICY_OWNERSHIP, "good", &cfg, &core, SELF, &inst), EISDIR);
	EXPECT_LINE(0, "ownership_good.so: is a directory, expected a regular file");
	rmdir(link);
	hak__config_free(&cfg);
}

/* A damaged copy of a good plugin (cut short, for another machine, not ELF at all) is refused by
 * the ELF check before dlopen could map it: one line naming the file and what is wrong, the
 * built-in instead, nothing loaded. */
static void test_damaged_plugin_files(void **state)
{
	(void)state;
	static char so[1 << 20];
	int fd = open(FIXTURE_SO_DIR "/ownership_good.so", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	ssize_t len = read(fd, so, sizeof so);
	close(fd);
	assert_true(len > 9000);
	char sub[300];
	snprintf(sub, sizeof sub, "%s/damaged", tmp_root);
	assert_int_equal(mkdir(sub, 0755), 0);
	struct hak_config cfg;
	config_for(&cfg, sub, "good");
	static const struct {
		size_t len;
		int patch; /* 0: none, 1: e_machine = AArch64, 2: random bytes */
		const char *what;
	} cases[] = {
		{0, 0, "ownership_good.so: empty file (0 bytes), expected an ELF shared object"},
		{700, 0, "ownership_good.so: ELF file of 700 bytes, expected at least"},
		{4096, 0, "ownership_good.so: ELF file of 4096 bytes, expected at least"},
		{9000, 0, "ownership_good.so: ELF file of 9000 bytes, expected at least"},
		{(size_t)-1, 0, "ownership_good.so: ELF file of"}, /* one byte short */
		{(size_t)-2, 1, "ownership_good.so: ELF machine 183 (AArch64), expected 62 (x86-64, this process's)"},
		{(size_t)-2, 2, "ownership_good.so: not an ELF file"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		static char copy[1 << 20];
		size_t n = cases[i].len == (size_t)-1 ? (size_t)len - 1 : cases[i].len == (size_t)-2 ? (size_t)len : cases[i].len;
		memcpy(copy, so, n);
		if (cases[i].patch == 1)
			copy[18] = (char)EM_AARCH64, copy[19] = 0;
		for (size_t k = 0; cases[i].patch == 2 && k < n; k++)
			copy[k] = (char)(k * 2654435761u >> 13);
		tmp_file("damaged/ownership_good.so", copy, n, 0644);
		struct hak_policy_instance inst;
		int before = loaded_objects();
		log_start();
		assert_int_equal(hak__policy_load(HAK_POLICY_OWNERSHIP, "good", &cfg, &core, SELF, &inst), ENOEXEC);
		assert_null(inst.desc);
		assert_log_count(1);
		EXPECT_LINE(0, "hakmem: /etc/hakmem.ini:7: policy 'good': ", cases[i].what, "; using built-in 'tls'");
		assert_int_equal(loaded_objects(), before);
	}
	/* The same file, whole: loads. */
	tmp_file("damaged/ownership_good.so", so, (size_t)len, 0644);
	struct hak_policy_instance inst;
	log_start();
	assert_int_equal(hak__policy_load(HAK_POLICY_OWNERSHIP, "good", &cfg, &core, SELF, &inst), 0);
	assert_log_count(0);
	hak__config_free(&cfg);
}

static void test_init_refuses_settings(void **state)
{
	(void)state;
	struct hak_config cfg;
	struct hak_policy_instance inst;
	const char text[] = "[core]\npolicy_dir = " FIXTURE_SO_DIR "\n[trim]\npolicy = good\nidle = 1\nreject = -5banana\n";
	assert_int_equal(hak__config_parse_string(text, "/etc/hakmem.ini", &cfg), 0);
	log_start();
	assert_int_equal(hak__policy_load(HAK_POLICY_TRIM, "good", &cfg, &core, SELF, &inst), EINVAL);
	assert_log_count(1);
	EXPECT_LINE(0, "/etc/hakmem.ini:4: policy 'good': ", "trim_good.so: symbol hak_policy_descriptor: init failed (EINVAL): line 6: reject = '-5banana' is refused on purpose; using built-in 'idle'");
	assert_null(inst.desc);
	hak__config_free(&cfg);
}

/* ---- The whole decision: plugin, built-in, fallback --------------------------------------------- */

static void test_activate(void **state)
{
	(void)state;
	struct hak_config cfg;
	struct hak_policy_instance inst;

	/* No `policy =`: the built-in, with the section's settings; no file, no line. */
	config_for(&cfg, "/nonexistent", NULL);
	builtin_seen.calls = 0;
	log_start();
	assert_int_equal(hak__policy_activate(HAK_POLICY_OWNERSHIP, &cfg, &core, &builtin_tls, false, SELF, &inst), 0);
	assert_ptr_equal(inst.desc, &builtin_tls);
	assert_true(inst.builtin);
	assert_false(inst.fallback);
	assert_null(inst.handle);
	assert_ptr_equal(inst.state, &builtin_seen);
	assert_int_equal(builtin_seen.calls, 1);
	assert_log_count(0);
	hak__config_free(&cfg);

	/* The built-in's default instance already runs (start-up): a plugin that cannot load
	 * falls back to it, and its init is not run a second time (its state is static). */
	config_for(&cfg, "/nonexistent", "nosuch");
	builtin_seen.calls = 0;
	log_start();
	assert_int_equal(hak__policy_activate(HAK_POLICY_OWNERSHIP, &cfg, &core, &builtin_tls, true, SELF, &inst), 0);
	assert_ptr_equal(inst.desc, &builtin_tls);
	assert_true(inst.builtin && inst.fallback && inst.reused);
	assert_null(inst.state);
	assert_int_equal(builtin_seen.calls, 0);
	assert_log_count(1);
	hak__config_free(&cfg);

	/* The built-in's own name: the compiled copy, even though no .so exists anywhere. */
	config_for(&cfg, "/nonexistent", "tls");
	log_start();
	assert_int_equal(hak__policy_activate(HAK_POLICY_OWNERSHIP, &cfg, &core, &builtin_tls, false, SELF, &inst), 0);
	assert_true(inst.builtin);
	assert_false(inst.fallback);
	assert_log_count(0);
	hak__config_free(&cfg);

	/* A plugin that loads. */
	config_for(&cfg, FIXTURE_SO_DIR, "good");
	log_start();
	assert_int_equal(hak__policy_activate(HAK_POLICY_OWNERSHIP, &cfg, &core, &builtin_tls, false, SELF, &inst), 0);
	assert_false(inst.builtin);
	assert_string_equal(inst.desc->name, "good");
	assert_log_count(0);
	/* ...and says so when verbose. */
	cfg.core.verbose = true;
	log_start();
	assert_int_equal(hak__policy_activate(HAK_POLICY_OWNERSHIP, &cfg, &core, &builtin_tls, false, SELF, &inst), 0);
	assert_log_count(1);
	EXPECT_LINE(0, "hakmem: ownership policy 'good' 9.8.7 from ", "ownership_good.so");
	hak__config_free(&cfg);

	/* A plugin that fails: one line, then the built-in WITHOUT the plugin's settings. */
	config_for(&cfg, FIXTURE_SO_DIR, "abi2");
	struct hak_setting item = {"answer", "42", 8};
	cfg.policy[HAK_KIND_INDEX_OWNERSHIP].items = &item;
	cfg.policy[HAK_KIND_INDEX_OWNERSHIP].count = 1;
	builtin_seen.calls = 0;
	log_start();
	assert_int_equal(hak__policy_activate(HAK_POLICY_OWNERSHIP, &cfg, &core, &builtin_tls, false, SELF, &inst), 0);
	assert_true(inst.builtin);
	assert_true(inst.fallback);
	assert_int_equal(builtin_seen.calls, 1);
	assert_int_equal(builtin_seen.last_count, 0);
	assert_log_count(1);
	EXPECT_LINE(0, "/etc/hakmem.ini:7: policy 'abi2': ", "ABI major 3, expected 2; using built-in 'tls'");
	cfg.policy[HAK_KIND_INDEX_OWNERSHIP].items = NULL;
	cfg.policy[HAK_KIND_INDEX_OWNERSHIP].count = 0;
	hak__config_free(&cfg);

	/* The built-in refuses its settings: one line, then the built-in with none. */
	config_for(&cfg, "/nonexistent", NULL);
	struct hak_setting rej = {"reject", "1", 9};
	cfg.policy[HAK_KIND_INDEX_OWNERSHIP].items = &rej;
	cfg.policy[HAK_KIND_INDEX_OWNERSHIP].count = 1;
	builtin_seen.calls = 0;
	log_start();
	assert_int_equal(hak__policy_activate(HAK_POLICY_OWNERSHIP, &cfg, &core, &builtin_tls, false, SELF, &inst), 0);
	assert_true(inst.builtin);
	assert_true(inst.fallback);
	assert_int_equal(builtin_seen.calls, 2);
	assert_int_equal(builtin_seen.last_count, 0);
	assert_log_count(1);
	EXPECT_LINE(0, "/etc/hakmem.ini:7: policy 'tls' (built-in): init failed (EINVAL): unknown key 'reject' at line 9; using built-in 'tls' with default settings");
	cfg.policy[HAK_KIND_INDEX_OWNERSHIP].items = NULL;
	cfg.policy[HAK_KIND_INDEX_OWNERSHIP].count = 0;
	hak__config_free(&cfg);

	/* A broken built-in is a bug: reported, nothing started. */
	struct hak_policy_desc broken = builtin_tls;
	broken.kind = HAK_POLICY_TRIM;
	config_for(&cfg, "/nonexistent", NULL);
	log_start();
	assert_int_equal(hak__policy_activate(HAK_POLICY_OWNERSHIP, &cfg, &core, &broken, false, SELF, &inst), EINVAL);
	assert_null(inst.desc);
	assert_log_count(1);
	EXPECT_LINE(0, "built-in ownership policy: kind 1 (trim), expected 3 (ownership)");
	hak__config_free(&cfg);
}

/* ---- Listing --------------------------------------------------------------------------------------- */

struct listing {
	int n;
	char line[32][300];
};

static void list_cb(void *ctx, const struct hak_policy_info *info)
{
	struct listing *l = ctx;
	if (l->n < 32)
		snprintf(l->line[l->n], sizeof l->line[0], "%s %s %s %s | %s", hak__kind_name(info->kind), info->name,
			 info->version ? info->version : "-", info->summary ? info->summary : "-",
			 info->error ? info->error : "ok");
	l->n++;
}

static void test_list(void **state)
{
	(void)state;
	static struct listing l;
	memset(&l, 0, sizeof l);
	assert_int_equal(hak__policy_list(FIXTURE_SO_DIR, list_cb, &l), 0);
	/* Sorted by file name; every fixture .so is listed, good or bad. */
	static const char *const want[] = {
		"ownership abi2 - - | ", "ownership badmagic", "ownership badsig", "ownership good 9.8.7 fixture good | ok",
		"ownership initfail 9.8.7", "ownership misnamed - - | ", "ownership nodesc - - | ",
		"ownership norefill - -", "ownership small - -", "ownership tinysym - -", "ownership wrongkind - -",
		"superslab good 9.8.7 fixture good | ok", "trim good 9.8.7 fixture good | ok",
	};
	for (int i = 0; i < l.n && i < 32; i++)
		print_message("  %s\n", l.line[i]);
	assert_int_equal(l.n, (int)(sizeof want / sizeof want[0]));
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		if (strncmp(l.line[i], want[i], strlen(want[i])) != 0)
			fail_msg("listing %zu: '%s', expected it to start with '%s'", i, l.line[i], want[i]);
	assert_non_null(strstr(l.line[0], "ABI major 3, expected 2"));
	/* Other files are skipped; a missing folder is an error. */
	char sub[300];
	snprintf(sub, sizeof sub, "%s/list", tmp_root);
	assert_int_equal(mkdir(sub, 0755), 0);
	tmp_file("list/README", "x", 1, 0644);
	tmp_file("list/other_thing.so", "x", 1, 0644);
	tmp_file("list/trim_.so", "x", 1, 0644);
	tmp_file("list/trim_junk.so", "not an ELF", 10, 0644);
	memset(&l, 0, sizeof l);
	assert_int_equal(hak__policy_list(sub, list_cb, &l), 0);
	assert_int_equal(l.n, 1);
	assert_non_null(strstr(l.line[0], "trim junk - - | "));
	assert_non_null(strstr(l.line[0], "trim_junk.so: not an ELF file (starts with 6e 6f 74 20)"));
	/* A cut copy of a good plugin is listed as refused with the reason, never dlopened. */
	static char so[1 << 20];
	int fd = open(FIXTURE_SO_DIR "/trim_good.so", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	ssize_t n = read(fd, so, sizeof so);
	close(fd);
	assert_true(n > 9000);
	tmp_file("list/trim_cut.so", so, 9000, 0644);
	memset(&l, 0, sizeof l);
	assert_int_equal(hak__policy_list(sub, list_cb, &l), 0);
	assert_int_equal(l.n, 2);
	assert_non_null(strstr(l.line[0], "trim cut - - | "));
	assert_non_null(strstr(l.line[0], "trim_cut.so: ELF file of 9000 bytes, expected at least"));
	assert_non_null(strstr(l.line[0], "truncated"));
	assert_int_equal(hak__policy_list("/nonexistent/dir", list_cb, &l), ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_check),
		cmocka_unit_test(test_path_rule),
		cmocka_unit_test(test_validate),
		cmocka_unit_test(test_load_good_of_each_kind),
		cmocka_unit_test(test_bad_plugins),
		cmocka_unit_test(test_missing_plugin),
		cmocka_unit_test(test_traversal_refused),
		cmocka_unit_test(test_unsafe_plugin_files),
		cmocka_unit_test(test_damaged_plugin_files),
		cmocka_unit_test(test_init_refuses_settings),
		cmocka_unit_test(test_activate),
		cmocka_unit_test(test_list),
	};
	return cmocka_run_group_tests_name("loader", tests, helpers_setup, helpers_teardown);
}
