/* hakmem.c: the `hakmem` command. Owns the command line, --help, and the launcher: it sets
 * LD_PRELOAD (libhakmem first), HAKMEM_CONF and HAKMEM_STATS, then execs the program, like
 * jemalloc's jemalloc.sh; `record` is the launcher with HAKMEM_TRACE set, `replay` execs the
 * replay driver (tools/hakmem_replay.py, which runs tools/replayer.c once per allocator).
 * The `policies` and `check` subcommands live in hakmem_policies.c and hakmem_check.c. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "hakmem_tool.h"

static const char usage_text[] =
	"usage: hakmem [-c FILE] [--stats[=table|json|off]] [--lib PATH] [--] PROGRAM [ARGS...]\n"
	"       hakmem record [-o TRACE] [-c FILE] [--lib PATH] [--] PROGRAM [ARGS...]\n"
	"       hakmem replay TRACE [--config FILE.ini]... [--alloc NAME|PATH.so]... [--runs N]\n"
	"                     [--timed] [--out DIR]\n"
	"       hakmem policies [--keys] [DIR]\n"
	"       hakmem check [FILE]\n"
	"       hakmem --help | --version\n";

static void help(void)
{
	printf("%s", usage_text);
	printf("\n"
	       "Runs PROGRAM with the hakmem allocator: libhakmem is put first in LD_PRELOAD (anything\n"
	       "already there is kept after it), then PROGRAM is executed in place of this command.\n"
	       "\n"
	       "Options (before PROGRAM):\n"
	       "  -c, --config FILE   set HAKMEM_CONF=FILE (made absolute): the INI file of settings and\n"
	       "                      policies; see hakmem.ini(5). Without -c, HAKMEM_CONF is left as it is\n"
	       "                      (unset: hakmem reads %s when it exists)\n"
	       "  --stats[=MODE]      set HAKMEM_STATS: counters on stderr at exit; MODE is table (the\n"
	       "                      default), json (one line) or off\n"
	       "  --lib PATH          the libhakmem to preload (also: environment HAKMEM_LIB)\n"
	       "  --                  end of options: what follows is PROGRAM, even 'check' or 'policies'\n"
	       "  -h, --help          this text;  -V, --version  version and compiled-in paths\n"
	       "\n"
	       "The library preloaded is the first of: --lib, $HAKMEM_LIB, <bin>/%s/%s\n"
	       "(installed), <bin>/../libhakmem.so (a build folder: build/bin/hakmem), %s/%s.\n"
	       "\n"
	       "hakmem record [-o TRACE] [options above] [--] PROGRAM [ARGS...]\n"
	       "  Runs PROGRAM like above, recording every allocation call it makes (malloc, free, calloc,\n"
	       "  realloc, the memalign family, sized frees: thread, size, alignment, block, time) into\n"
	       "  TRACE (default hakmem.trace), by setting HAKMEM_TRACE. Programs it forks or executes\n"
	       "  under hakmem append their own sections to the same file.\n"
	       "\n"
	       "hakmem replay TRACE [--config FILE.ini]... [--alloc NAME|PATH.so]... [--runs N] [--timed]\n"
	       "  Replays TRACE once per allocator and configuration, each in a process of its own with\n"
	       "  the allocator preloaded: the same calls from the same threads, blocks freed by the thread\n"
	       "  that freed them, as fast as possible (--timed: at the recorded times), every block checked.\n"
	       "  Prints a Markdown table (time, CPU, faults, peak and final RSS, mappings, hakmem's\n"
	       "  counters) and writes CSV, JSON and gnuplot files (--out DIR, default beside TRACE).\n"
	       "  NAME is glibc, mimalloc, jemalloc or tcmalloc; --config FILE.ini is hakmem with that\n"
	       "  file. Without either: glibc and hakmem as configured now. --help lists the rest.\n"
	       "\n"
	       "hakmem policies [--keys] [DIR]\n"
	       "  Lists the policy plugins (<kind>_<name>.so) of DIR with kind, name, version and the\n"
	       "  summary each plugin carries, after the checks the loader makes (refused ones say why).\n"
	       "  --keys also lists the INI keys each plugin declares, with type, range and default.\n"
	       "  DIR defaults to the policy_dir of -c FILE, else the installed folder beside this\n"
	       "  command (<bin>/%s), else <bin>/../policies in a build folder,\n"
	       "  else %s. Exit status 1 when a plugin is refused.\n"
	       "\n"
	       "hakmem check [FILE]\n"
	       "  Reads FILE with hakmem's own parser, printing the same diagnostics a program would\n"
	       "  get, then the effective configuration in INI syntax: the [core] settings, and per kind\n"
	       "  the policy that would run (the plugin and its version, or the built-in with why) and\n"
	       "  the keys it receives. Plugins are opened and checked like at start-up and their init\n"
	       "  is called to validate the keys, then fini; the core services they receive are inert\n"
	       "  (no memory, no helper threads), so nothing runs. Without FILE: -c FILE, else the file\n"
	       "  a program would read ($HAKMEM_CONF, else %s). HAKMEM_STATS is applied\n"
	       "  on top, as at start-up. Exit status 0 when clean, 1 when there were mistakes\n"
	       "  (a policy replaced by its built-in is one; so is a file that cannot be read),\n"
	       "  2 when the command line is wrong.\n"
	       "\n"
	       "Examples:\n"
	       "  hakmem --stats ./program\n"
	       "  hakmem -c /etc/hakmem-option-f.ini --stats=json ./server\n"
	       "  hakmem check my.ini && hakmem -c my.ini ./program\n"
	       "  hakmem record -o my.trace -- ./program args\n"
	       "  hakmem replay my.trace --config conf/option-f.ini --config conf/option-g.ini --alloc glibc\n"
	       "\n"
	       "See hakmem(7) and hakmem.ini(5).\n",
	       HAK_CONFIG_SYSTEM_PATH, HAK_LIB_FROM_BIN, HAK_SONAME, HAK_LIBDIR, HAK_SONAME,
	       HAK_PLUGIN_DIR_FROM_BIN, HAK_PLUGIN_DIR, HAK_CONFIG_SYSTEM_PATH);
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "hakmem: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%s(hakmem --help tells more)\n", usage_text);
	return HAK_TOOL_USAGE;
}

/* ---- Where things are --------------------------------------------------------------------- */

bool hak__tool_exe_dir(char *buf, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", buf, size - 1);
	if (n <= 0 || (size_t)n >= size - 1)
		return false;
	buf[n] = '\0';
	char *slash = strrchr(buf, '/');
	if (!slash)
		return false;
	if (slash == buf)
		slash[1] = '\0';
	else
		*slash = '\0';
	return true;
}

bool hak__tool_near_exe(const char *rel, bool want_dir, char *buf, size_t size)
{
	char dir[PATH_MAX];
	if (rel[0] == '/') {
		if (snprintf(buf, size, "%s", rel) >= (int)size)
			return false;
	} else if (!hak__tool_exe_dir(dir, sizeof dir) || snprintf(buf, size, "%s/%s", dir, rel) >= (int)size) {
		return false;
	}
	struct stat st;
	if (stat(buf, &st) != 0)
		return false;
	return want_dir ? S_ISDIR(st.st_mode) : (S_ISREG(st.st_mode) && access(buf, R_OK) == 0);
}

/* The libhakmem to preload, absolute (realpath), into buf; false with a message when none. */
static bool find_library(const char *opt_lib, char buf[static PATH_MAX])
{
	char tried[4][PATH_MAX], cand[PATH_MAX];
	int ntried = 0;
	const char *given = opt_lib ? opt_lib : secure_getenv("HAKMEM_LIB");
	if (given && *given) {
		if (!realpath(given, buf) || access(buf, R_OK) != 0) {
			fprintf(stderr, "hakmem: %s '%s': %s\n", opt_lib ? "--lib" : "HAKMEM_LIB", given, strerror(errno));
			return false;
		}
		return true;
	}
	static const char *const rel[] = {HAK_LIB_FROM_BIN "/" HAK_SONAME, "../libhakmem.so", HAK_LIBDIR "/" HAK_SONAME};
	for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
		if (hak__tool_near_exe(rel[i], false, cand, sizeof cand) && realpath(cand, buf))
			return true;
		snprintf(tried[ntried++], PATH_MAX, "%s", rel[i][0] == '/' ? rel[i] : cand);
	}
	fprintf(stderr, "hakmem: cannot find libhakmem; tried");
	for (int i = 0; i < ntried; i++)
		fprintf(stderr, "%s %s", i ? "," : "", tried[i]);
	fprintf(stderr, "; use --lib PATH or HAKMEM_LIB\n");
	return false;
}

/* ---- The launcher ---------------------------------------------------------------------------- */

/* True when `list` (LD_PRELOAD: names split by blanks or ':') already holds `name`. */
static bool preload_has(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = list; *p;) {
		size_t len = strcspn(p, " :\t");
		if (len == n && memcmp(p, name, n) == 0)
			return true;
		p += len;
		p += strspn(p, " :\t");
	}
	return false;
}

static int set_env(const char *name, const char *value)
{
	if (setenv(name, value, 1) == 0)
		return 0;
	fprintf(stderr, "hakmem: cannot set %s: %s\n", name, strerror(errno));
	return HAK_TOOL_USAGE;
}

static int launch(char **argv, const char *config, const char *stats, const char *opt_lib)
{
	char lib[PATH_MAX];
	if (!find_library(opt_lib, lib))
		return 127;
	if (strpbrk(lib, " :\t")) {
		fprintf(stderr, "hakmem: %s: LD_PRELOAD cannot hold a path with blanks or ':'\n", lib);
		return 127;
	}
	const char *old = getenv("LD_PRELOAD");
	if (!old || !*old) {
		if (set_env("LD_PRELOAD", lib))
			return 127;
	} else if (!preload_has(old, lib)) {
		size_t len = strlen(lib) + 1 + strlen(old) + 1;
		char *both = malloc(len);
		if (!both)
			return 127;
		snprintf(both, len, "%s:%s", lib, old); /* first, so hakmem's malloc wins */
		int rc = set_env("LD_PRELOAD", both);
		free(both);
		if (rc)
			return 127;
	}
	if (config) {
		/* Absolute without resolving links: the library refuses a symbolic link itself, and
		 * must see the same name the user gave. */
		char abs[PATH_MAX], cwd[PATH_MAX];
		if (config[0] == '/' || !getcwd(cwd, sizeof cwd))
			snprintf(abs, sizeof abs, "%s", config);
		else if (snprintf(abs, sizeof abs, "%s/%s", cwd, config) >= (int)sizeof abs)
			snprintf(abs, sizeof abs, "%s", config);
		if (access(abs, R_OK) != 0) {
			fprintf(stderr, "hakmem: -c %s: %s\n", config, strerror(errno));
			return HAK_TOOL_USAGE;
		}
		if (set_env("HAKMEM_CONF", abs))
			return 127;
	}
	if (stats && set_env("HAKMEM_STATS", stats))
		return 127;
	execvp(argv[0], argv);
	int e = errno;
	fprintf(stderr, "hakmem: cannot run '%s': %s\n", argv[0], strerror(e));
	return e == ENOENT ? 127 : 126; /* the shell's codes */
}

/* ---- record and replay ----------------------------------------------------------------------- */

/* record: the launcher with HAKMEM_TRACE=<absolute TRACE>; a session of an outer recording is
 * not this one's. */
static int record(char **argv, const char *trace, const char *config, const char *stats, const char *opt_lib)
{
	char abs[PATH_MAX], cwd[PATH_MAX], dir[PATH_MAX];
	if (trace[0] == '/' || !getcwd(cwd, sizeof cwd))
		snprintf(abs, sizeof abs, "%s", trace);
	else if (snprintf(abs, sizeof abs, "%s/%s", cwd, trace) >= (int)sizeof abs)
		return usage_error("-o %s: name too long", trace);
	snprintf(dir, sizeof dir, "%s", abs);
	char *slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	if (access(dir, W_OK) != 0) {
		fprintf(stderr, "hakmem: record -o %s: cannot write in %s: %s\n", trace, dir, strerror(errno));
		return HAK_TOOL_USAGE;
	}
	if (set_env("HAKMEM_TRACE", abs))
		return 127;
	unsetenv("HAKMEM_TRACE_SESSION");
	return launch(argv, config, stats, opt_lib);
}

/* The first of `rel` (relative to this command's folder, or absolute) that exists. */
static bool find_near(const char *const *rel, size_t n, char buf[static PATH_MAX], char *tried, size_t tlen)
{
	char cand[PATH_MAX];
	size_t used = 0;
	for (size_t i = 0; i < n; i++) {
		if (hak__tool_near_exe(rel[i], false, cand, sizeof cand) && realpath(cand, buf))
			return true;
		used += (size_t)snprintf(tried + used, used < tlen ? tlen - used : 0, "%s%s", i ? ", " : "", rel[i]);
	}
	return false;
}

/* replay: the driver, a Python program that runs the replayer once per allocator and reports
 * like the benchmark lab (it imports bench/run.py). This command is never preloaded. */
static int replay(int argc, char **argv, const char *opt_lib)
{
	static const char *const drivers[] = {HAK_DRIVER_FROM_BIN, "../../tools/hakmem_replay.py"};
	static const char *const replayers[] = {HAK_REPLAYER_FROM_BIN, "hakmem-replay"};
	char driver[PATH_MAX], replayer[PATH_MAX], lib[PATH_MAX], tried[2 * PATH_MAX];
	if (!find_near(drivers, 2, driver, tried, sizeof tried)) {
		fprintf(stderr, "hakmem: replay: cannot find the replay driver; tried %s (beside %s)\n", tried, argv[0]);
		return 127;
	}
	if (!find_near(replayers, 2, replayer, tried, sizeof tried)) {
		fprintf(stderr, "hakmem: replay: cannot find hakmem-replay; tried %s\n", tried);
		return 127;
	}
	if (!find_library(opt_lib, lib))
		return 127;
	char **args = calloc((size_t)argc + 8, sizeof *args);
	if (!args)
		return 127;
	int n = 0;
	args[n++] = "python3";
	args[n++] = driver;
	args[n++] = "--replayer";
	args[n++] = replayer;
	args[n++] = "--hakmem-lib";
	args[n++] = lib;
	for (int i = 0; i < argc; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	unsetenv("LD_PRELOAD"); /* the driver measures others; it never runs on them itself */
	execvp("python3", args);
	int e = errno;
	fprintf(stderr, "hakmem: replay: cannot run python3: %s (the replay driver needs it)\n", strerror(e));
	free(args);
	return e == ENOENT ? 127 : 126;
}

/* ---- main ------------------------------------------------------------------------------------ */

/* `name` is argv[i]: "-c" takes argv[i + 1], "--config=X" and "-cX" carry it. NULL when absent. */
static const char *option_value(int argc, char **argv, int *i, const char *shrt, const char *lng)
{
	const char *a = argv[*i];
	size_t ll = strlen(lng);
	if (strcmp(a, shrt) == 0 || strcmp(a, lng) == 0)
		return *i + 1 < argc ? argv[++*i] : NULL;
	if (strncmp(a, lng, ll) == 0 && a[ll] == '=')
		return a + ll + 1;
	return a + strlen(shrt); /* -cFILE */
}

int main(int argc, char **argv)
{
	const char *config = NULL, *stats = NULL, *lib = NULL, *trace = NULL;
	bool dashdash = false, recording = false;
	int i;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			dashdash = true;
			i++;
			break;
		}
		if (!recording && !strcmp(a, "record")) {
			recording = true; /* its options follow, then PROGRAM */
			continue;
		}
		if (!recording && !strcmp(a, "replay"))
			return replay(argc - i - 1, argv + i + 1, lib);
		if (a[0] != '-' || a[1] == '\0')
			break;
		if (recording && (!strncmp(a, "-o", 2) || !strcmp(a, "--output") || !strncmp(a, "--output=", 9))) {
			if (!(trace = option_value(argc, argv, &i, "-o", "--output")) || !*trace)
				return usage_error("%s needs a TRACE file", a);
			continue;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			help();
			return HAK_TOOL_OK;
		} else if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
			printf("hakmem %s (policy ABI %u.%u; library %s/%s; plugins %s)\n", HAK_VERSION,
			       HAK_POLICY_ABI_MAJOR, HAK_POLICY_ABI_MINOR, HAK_LIBDIR, HAK_SONAME, HAK_PLUGIN_DIR);
			return HAK_TOOL_OK;
		} else if (!strncmp(a, "-c", 2) || !strcmp(a, "--config") || !strncmp(a, "--config=", 9)) {
			if (!(config = option_value(argc, argv, &i, "-c", "--config")) || !*config)
				return usage_error("%s needs a FILE", a);
		} else if (!strcmp(a, "--lib") || !strncmp(a, "--lib=", 6)) {
			if (!(lib = option_value(argc, argv, &i, "--lib", "--lib")) || !*lib)
				return usage_error("%s needs a PATH", a);
		} else if (!strcmp(a, "--stats")) {
			stats = "table";
		} else if (!strncmp(a, "--stats=", 8)) {
			stats = a + 8;
			if (strcmp(stats, "table") && strcmp(stats, "json") && strcmp(stats, "off"))
				return usage_error("--stats=%s: expected table, json or off", stats);
		} else {
			return usage_error("unknown option '%s'", a);
		}
	}
	if (i >= argc)
		return usage_error("no PROGRAM to run");
	if (recording)
		return record(argv + i, trace ? trace : "hakmem.trace", config, stats, lib);
	if (!recording && !dashdash && (!strcmp(argv[i], "policies") || !strcmp(argv[i], "check"))) {
		bool check = argv[i][0] == 'c';
		if (stats || lib)
			return usage_error("--stats and --lib are for running a program, not for '%s'", argv[i]);
		bool keys = !check && argc - i >= 2 && !strcmp(argv[i + 1], "--keys");
		if (keys)
			i++;
		if (argc - i > 2)
			return usage_error("too many arguments to '%s'", argv[i]);
		const char *arg = argc - i == 2 ? argv[i + 1] : NULL;
		if (check)
			return hak__tool_check(arg ? arg : config);
		return hak__tool_policies(arg, config, keys);
	}
	return launch(argv + i, config, stats, lib);
}
