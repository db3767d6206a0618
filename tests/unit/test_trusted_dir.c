/* test_trusted_dir.c: the folder rule for files hakmem trusts (core/trusted_dir.c), on real
 * folders made in the scratch folder with exact modes: a safe path opens; a folder (or any folder
 * above it) writable by group or others, sticky or not, or owned by someone else is refused with
 * its own name and mode; symbolic links on the way are followed through checked folders only;
 * relative paths include the current folder's own parents; the loader and the INI reader use it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <limits.h>

#include "../fixtures/unit_helpers.h"
#include "config.h"
#include "loader.h"
#include "trusted_dir.h"

static void core_log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	hak__vlog(fmt, ap);
	va_end(ap);
}

/* tmp_root/name made (mkdir -p) with exactly `mode`; returns the path (static). */
static const char *folder(const char *name, mode_t mode)
{
	static char path[8][512];
	static int next;
	char *p = path[next++ % 8];
	snprintf(p, sizeof path[0], "%s/%s", tmp_root, name);
	for (char *s = p + strlen(tmp_root) + 1; (s = strchr(s, '/')) != NULL; s++) {
		*s = '\0';
		mkdir(p, 0755);
		*s = '/';
	}
	if (mkdir(p, 0700) != 0 && errno != EEXIST)
		fail_msg("cannot mkdir %s", p);
	if (chmod(p, mode) != 0)
		fail_msg("cannot chmod %s", p);
	return p;
}

/* hak__open_trusted on path: the error it gives, with its reason in why. */
static int open_err(const char *path, char *why, size_t size)
{
	int err = -1;
	int fd = hak__open_trusted(path, &err, why, size);
	if (fd >= 0) {
		close(fd);
		assert_int_equal(err, 0);
		return 0;
	}
	assert_true(err > 0);
	return err;
}

static void expect_refusal(const char *path, int want, const char *reason)
{
	char why[300];
	int err = open_err(path, why, sizeof why);
	if (err != want)
		fail_msg("%s: error %d (%s), expected %d", path, err, err ? why : "opened", want);
	if (!strstr(why, reason))
		fail_msg("%s: reason '%s' lacks '%s'", path, why, reason);
}

static void expect_open(const char *path)
{
	char why[300];
	if (open_err(path, why, sizeof why) != 0)
		fail_msg("%s refused: %s", path, why);
}

static void test_safe_paths(void **state)
{
	(void)state;
	folder("safe/a/b", 0755);
	tmp_file("safe/a/b/file", "x", 1, 0644);
	char p[600];
	snprintf(p, sizeof p, "%s/safe/a/b/file", tmp_root);
	expect_open(p);
	/* The same with ".", "..", doubled slashes. */
	snprintf(p, sizeof p, "%s/safe/./a//b/../b/file", tmp_root);
	expect_open(p);
	/* The checkout's own folders, and a system folder reached through a link (/lib -> usr/lib on
	 * merged-/usr systems). */
	expect_open(FIXTURE_SO_DIR "/ownership_good.so");
	expect_open(FIXTURE_INI_DIR "/good.ini");
	if (access("/lib/x86_64-linux-gnu/libc.so.6", R_OK) == 0)
		expect_open("/lib/x86_64-linux-gnu/libc.so.6");
	/* The folder alone. */
	int err;
	char why[300];
	snprintf(p, sizeof p, "%s/safe/a", tmp_root);
	int fd = hak__trusted_dir_open(p, &err, why, sizeof why);
	assert_true(fd >= 0);
	close(fd);
	fd = hak__trusted_dir_open("/", &err, why, sizeof why);
	assert_true(fd >= 0);
	close(fd);
}

static void test_unsafe_folders(void **state)
{
	(void)state;
	static const struct {
		mode_t mode;
		const char *what;
	} modes[] = {
		{0777, "is world-writable (mode 0777), expected no write bit for group and others on every folder up to /"},
		{0775, "is group-writable (mode 0775)"},
		{0757, "is world-writable (mode 0757)"},
		{01777, "is world-writable (mode 1777)"}, /* sticky, like /tmp: refused too */
		{03775, "is group-writable (mode 3775)"},
	};
	for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
		/* The plugin's own folder. */
		const char *d = folder("unsafe/direct", modes[i].mode);
		tmp_file("unsafe/direct/file", "x", 1, 0644);
		char p[600], want[700];
		snprintf(p, sizeof p, "%s/file", d);
		snprintf(want, sizeof want, "folder %s %s", d, modes[i].what);
		expect_refusal(p, EPERM, want);
		chmod(d, 0755);
		expect_open(p);
		/* A folder above it, two levels up; the one below is fine. */
		const char *top = folder("unsafe/up", modes[i].mode);
		folder("unsafe/up/mid/low", 0755);
		chmod(top, 0755);
		tmp_file("unsafe/up/mid/low/file", "x", 1, 0644);
		chmod(top, modes[i].mode);
		snprintf(p, sizeof p, "%s/mid/low/file", top);
		snprintf(want, sizeof want, "folder %s %s", top, modes[i].what);
		expect_refusal(p, EPERM, want);
		chmod(top, 0755);
		expect_open(p);
	}
	/* /tmp itself, where it is world-writable. */
	struct stat st;
	if (stat("/tmp", &st) == 0 && (st.st_mode & S_IWOTH) && (st.st_mode & S_ISVTX))
		expect_refusal("/tmp/hakmem-no-such-plugin.so", EPERM, "folder /tmp is world-writable (mode 1777)");
}

static void test_owner(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		print_message("  (not root: chown to another uid skipped)\n");
		return;
	}
	const char *d = folder("owner/other", 0755);
	tmp_file("owner/other/file", "x", 1, 0644);
	assert_int_equal(chown(d, 4242, 4242), 0);
	char p[600], want[700];
	snprintf(p, sizeof p, "%s/file", d);
	snprintf(want, sizeof want, "folder %s is owned by uid 4242, expected root or uid 0", d);
	expect_refusal(p, EPERM, want);
	/* Secure-execution mode: only root may own the folders. */
	assert_int_equal(chown(d, 0, 0), 0);
	expect_open(p);
	hak__test_secure_mode = 1;
	expect_open(p); /* root-owned everywhere */
	assert_int_equal(chown(d, 4242, 4242), 0);
	snprintf(want, sizeof want, "folder %s is owned by uid 4242, expected root (secure-execution mode)", d);
	expect_refusal(p, EPERM, want);
	hak__test_secure_mode = -1;
	assert_int_equal(chown(d, 0, 0), 0);
}

static void test_links(void **state)
{
	(void)state;
	const char *safe = folder("links/safe", 0755);
	tmp_file("links/safe/file", "x", 1, 0644);
	const char *open_dir = folder("links/open", 0777);
	char p[700], l[400], want[800];
	/* A link to a safe folder, absolute and relative: followed. */
	snprintf(l, sizeof l, "%s/links/abs", tmp_root);
	assert_int_equal(symlink(safe, l), 0);
	snprintf(p, sizeof p, "%s/file", l);
	expect_open(p);
	snprintf(l, sizeof l, "%s/links/rel", tmp_root);
	assert_int_equal(symlink("./safe/../safe", l), 0);
	snprintf(p, sizeof p, "%s/file", l);
	expect_open(p);
	/* A link to a world-writable folder: the target is checked and named. */
	tmp_file("links/open/file", "x", 1, 0644);
	snprintf(l, sizeof l, "%s/links/to_open", tmp_root);
	assert_int_equal(symlink(open_dir, l), 0);
	snprintf(p, sizeof p, "%s/file", l);
	snprintf(want, sizeof want, "folder %s is world-writable (mode 0777)", open_dir);
	expect_refusal(p, EPERM, want);
	/* A link inside a world-writable folder, pointing at a safe one: refused at the open folder,
	 * since anyone could have made (or may swap) that link. */
	snprintf(l, sizeof l, "%s/inner", open_dir);
	assert_int_equal(symlink(safe, l), 0);
	snprintf(p, sizeof p, "%s/file", l);
	expect_refusal(p, EPERM, want);
	/* A loop, a link to a file used as a folder, a missing component. */
	char a[400], b[400];
	snprintf(a, sizeof a, "%s/links/loop_a", tmp_root);
	snprintf(b, sizeof b, "%s/links/loop_b", tmp_root);
	assert_int_equal(symlink(b, a), 0);
	assert_int_equal(symlink(a, b), 0);
	snprintf(p, sizeof p, "%s/file", a);
	expect_refusal(p, ELOOP, "more than 40 symbolic links");
	snprintf(p, sizeof p, "%s/file/x", safe);
	snprintf(want, sizeof want, "%s/file is not a folder", safe);
	expect_refusal(p, ENOTDIR, want);
	snprintf(p, sizeof p, "%s/missing/x", safe);
	snprintf(want, sizeof want, "cannot open: No such file or directory (%s/missing)", safe);
	expect_refusal(p, ENOENT, want);
	/* The file itself as a link stays refused (the file is what is checked). */
	snprintf(l, sizeof l, "%s/links/safe/link", tmp_root);
	snprintf(p, sizeof p, "%s/file", safe);
	assert_int_equal(symlink(p, l), 0);
	expect_refusal(l, ELOOP, "is a symbolic link");
	chmod(open_dir, 0755);
}

static void test_relative(void **state)
{
	(void)state;
	char cwd[PATH_MAX], want[700];
	assert_non_null(getcwd(cwd, sizeof cwd));
	const char *here = folder("rel/here", 0755);
	folder("rel/here/sub", 0755);
	tmp_file("rel/here/sub/file", "x", 1, 0644);
	assert_int_equal(chdir(here), 0);
	expect_open("sub/file");
	expect_open("./sub/../sub/file");
	/* The current folder's own parents count: make the one above it world-writable. */
	char up[600];
	snprintf(up, sizeof up, "%s/rel", tmp_root);
	chmod(up, 0777);
	snprintf(want, sizeof want, "folder %s is world-writable (mode 0777)", up);
	expect_refusal("sub/file", EPERM, want);
	chmod(up, 0755);
	tmp_file("rel/here/plain", "x", 1, 0644);
	expect_open("plain");
	assert_int_equal(chdir(cwd), 0);
}

/* The loader and the INI reader both go through the rule; `hakmem policies` shows the reason. */
static void test_users(void **state)
{
	(void)state;
	const char *d = folder("users/plugins", 0777);
	tmp_copy(FIXTURE_SO_DIR "/ownership_good.so", "users/plugins/ownership_good.so", 0644);
	char want[700];
	snprintf(want, sizeof want, "folder %s is world-writable (mode 0777)", d);
	struct hak_config cfg;
	hak__config_defaults(&cfg);
	snprintf(cfg.core.policy_dir, sizeof cfg.core.policy_dir, "%s", d);
	snprintf(cfg.file, sizeof cfg.file, "%s", "/etc/hakmem.ini");
	cfg.policy[HAK_KIND_INDEX_OWNERSHIP].name = strdup("good");
	cfg.policy[HAK_KIND_INDEX_OWNERSHIP].line = 7;
	struct hak_policy_instance inst;
	static const struct hak_core_api core = {.abi_major = HAK_POLICY_ABI_MAJOR,
						  .abi_minor = HAK_POLICY_ABI_MINOR,
						  .size = sizeof(struct hak_core_api),
						  .log = core_log};
	static char self[64]; /* the handle init gets: opaque to the loader */
	log_start();
	assert_int_equal(hak__policy_load(HAK_POLICY_OWNERSHIP, "good", &cfg, &core, (hak_policy *)(void *)self, &inst),
			 EPERM);
	assert_null(inst.desc);
	assert_log_count(1);
	EXPECT_LINE(0, "hakmem: /etc/hakmem.ini:7: policy 'good': ", "ownership_good.so: ", want, "; using built-in 'tls'");
	chmod(d, 0755);
	log_start();
	assert_int_equal(hak__policy_load(HAK_POLICY_OWNERSHIP, "good", &cfg, &core, (hak_policy *)(void *)self, &inst), 0);
	assert_log_count(0);
	hak__config_free(&cfg);
	/* The INI file's folder too. */
	const char *c = folder("users/conf", 0777);
	tmp_file("users/conf/hakmem.ini", "[core]\nstats = json\n", 20, 0644);
	char ini[600];
	snprintf(ini, sizeof ini, "%s/hakmem.ini", c);
	snprintf(want, sizeof want, "folder %s is world-writable (mode 0777)", c);
	log_start();
	assert_int_equal(hak__config_load(ini, &cfg), EPERM);
	assert_log_count(1);
	EXPECT_LINE(0, "hakmem.ini: ", want, "; using built-in defaults");
	assert_int_equal(cfg.core.stats, HAK_STATS_OFF);
	hak__config_free(&cfg);
	chmod(c, 0755);
	log_start();
	assert_int_equal(hak__config_load(ini, &cfg), 0);
	assert_log_count(0);
	assert_int_equal(cfg.core.stats, HAK_STATS_JSON);
	hak__config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_safe_paths),
		cmocka_unit_test(test_unsafe_folders),
		cmocka_unit_test(test_owner),
		cmocka_unit_test(test_links),
		cmocka_unit_test(test_relative),
		cmocka_unit_test(test_users),
	};
	return cmocka_run_group_tests_name("trusted_dir", tests, helpers_setup, helpers_teardown);
}
