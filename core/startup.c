/* startup.c: the second half of start-up, run by the library constructor once the core already
 * serves allocations on its built-in policies: the mapping budget from vm.max_map_count, the
 * INI file, the plugins. Every failure here is reported and falls back; none is fatal. */
#include "startup.h"

#include "loader.h"
#include "os.h"
#include "policy_call.h"
#include "services.h"
#include "trace.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum hak_stats_mode hak__stats_mode;

/* Many programs close stderr before exit (coreutils' close_stdout), so the exit-time stats
 * keep a private copy of it. The program may close that copy too and reuse the number for a
 * file of its own: remember what the copy was, and at exit use it only if it still is. */
static int stats_fd = -1;
static dev_t stats_dev;
static ino_t stats_ino;

void hak__stats_keep_stderr(void)
{
	struct stat st;
	int fd = fcntl(2, F_DUPFD_CLOEXEC, 100);
	if (fd < 0)
		return;
	if (fstat(fd, &st) != 0) {
		close(fd);
		return;
	}
	stats_fd = fd;
	stats_dev = st.st_dev;
	stats_ino = st.st_ino;
}

int hak__stats_exit_fd(void)
{
	struct stat st;
	if (stats_fd >= 0 && fstat(stats_fd, &st) == 0 && st.st_dev == stats_dev && st.st_ino == stats_ino)
		return stats_fd;
	return 2;
}

static unsigned long read_max_map_count(void)
{
	char buf[32];
	int fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 65530;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 65530;
	/* Digits by hand: strtoul is libc's locale-aware parser, whose code and tables are pages of
	 * libc a small program would not touch otherwise. */
	unsigned long v = 0;
	for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9' && v < ULONG_MAX / 10; i++)
		v = v * 10 + (unsigned long)(buf[i] - '0');
	return v ? v : 65530;
}


/* The mapping budget: an eighth of the kernel's limit (at least 1024) is left to the program's own
 * mappings; a configured budget (map_budget, 0 = automatic) may only lower it. */
static unsigned long map_budget(uint64_t configured)
{
	unsigned long max = read_max_map_count(), spare = max / 8 > 1024 ? max / 8 : 1024;
	unsigned long budget = max > spare ? max - spare : max / 2;
	if (configured && configured < budget)
		budget = (unsigned long)configured;
	return budget;
}

/* The running built-in needs no replacement when the configuration asked for it unchanged. */
static bool same_as_running(const struct hak_policy_instance *inst, const struct hak_config *cfg)
{
	if (!inst->builtin)
		return false;
	return inst->fallback || cfg->policy[inst->desc->kind - 1].count == 0;
}

/* One kind: the configured policy in a new record, made the active one; or nothing changes. */
static void start_kind(uint32_t kind, const struct hak_config *cfg)
{
	/* The running built-in, asked for with no keys: nothing to do, and its init is not run
	 * again (a built-in keeps its state in static storage). */
	const struct hak_policy_choice *c = &cfg->policy[kind - 1];
	const struct hak_policy *cur = hak__policy_current(kind);
	if ((!c->name || !*c->name || !strcmp(c->name, cur->desc->name)) && c->count == 0 &&
	    cur->desc == hak__builtin_desc(kind))
		return;
	struct hak_policy *p = hak__policy_reserve(kind);
	if (!p) {
		hak__log("%s: no room for another %s policy (%d were started); keeping the running one", cfg->file,
			 hak__kind_name(kind), HAK_POLICY_SLOTS);
		return;
	}
	struct hak_policy_instance inst;
	bool builtin_running = cur->desc == hak__builtin_desc(kind) && cur->index == 0;
	if (hak__policy_activate(kind, cfg, &hak__core_api, hak__builtin_desc(kind), builtin_running, p, &inst) != 0 ||
	    !inst.desc) {
		hak__policy_unreserve(p);
		return;
	}
	if (inst.reused || same_as_running(&inst, cfg)) {
		if (!inst.reused)
			hak__pcall_fini(inst.desc, inst.state);
		hak__policy_unreserve(p);
		return;
	}
	hak__policy_fill(p, inst.desc, inst.state, inst.handle);
	hak__policy_install(p);
}

/* What start-up reads lives in a mapping of its own, given back at the end: the configuration is
 * 16 KB (four file names of HAK_CONFIG_PATH_MAX), and on the program's stack its pages would stay
 * resident as long as the program runs. Without that mapping, the built-in defaults go on. */
void hak__startup(void)
{
	struct hak_config *cfg = mmap(NULL, sizeof *cfg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (cfg == MAP_FAILED) {
		hak__log("start-up: no memory to read the configuration in; running on the built-in defaults");
		hak__os_set_map_budget(map_budget(0));
		return;
	}
	hak__config_defaults(cfg);
	const char *path = hak__config_path_from_env();
	if (path)
		hak__config_load(path, cfg);
	hak__config_apply_env(cfg);
	hak__stats_mode = cfg->core.stats;
	if (hak__stats_mode)
		hak__stats_keep_stderr();
	hak__os_set_map_budget(map_budget(cfg->core.map_budget));

	/* The SuperSlab size first (the others may map), ownership last (it restarts the thread). */
	static const uint32_t order[] = {HAK_POLICY_SUPERSLAB, HAK_POLICY_TRIM, HAK_POLICY_OWNERSHIP};
	for (unsigned i = 0; i < sizeof order / sizeof order[0]; i++)
		start_kind(order[i], cfg);
	/* Recording (HAKMEM_TRACE, [core] trace) starts once the policies are in: trace.c. */
	hak__trace_start(cfg->core.trace);
	hak__config_free(cfg);
	munmap(cfg, sizeof *cfg);
}
