/* hakmem_check.c: `hakmem check [FILE]`. Reads the INI file with the core's parser and turns it
 * into policies with the core's loader (hak__policy_activate, the very start-up decision), so
 * the diagnostics are the ones a program would print; then prints the effective configuration
 * in INI syntax. Plugins get a table of inert core services: no memory, no helper thread, so
 * their init validates the keys and nothing runs. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "core_services.h"
#include "hakmem_tool.h"
#include "loader.h"
#include "policy.h" /* scratch policy records: the handle each init gets */
#include "policy_call.h"
#include "size_class.h" /* the real size classes for the plugins' init */

/* ---- Inert core services ------------------------------------------------------------------ */
/* What a plugin's init may ask about (classes, clock, logging) is real; everything that would
 * touch memory or start something answers "nothing", and spawn_helper refuses. Built from the
 * core's own list of services, so a service added to the ABI must be added here too. */

static uint64_t inert_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
#define inert_log hak__log
static unsigned inert_class_count(void) { return HAK_NCLASSES; }
static size_t inert_class_block_size(unsigned cls) { return cls < HAK_NCLASSES ? hak__classes[cls].block_size : 0; }
static unsigned inert_class_batch(unsigned cls) { return cls < HAK_NCLASSES ? hak__classes[cls].batch : 0; }
static int inert_counter_register(hak_policy *self, const char *name, enum hak_counter_type type, unsigned n)
{
	(void)self, (void)name, (void)type, (void)n;
	return -1;
}
static void inert_counter_add(hak_thread *t, int id, uint64_t n) { (void)t, (void)id, (void)n; }
static void inert_counter_set(int id, int64_t v) { (void)id, (void)v; }
static int inert_spawn_helper(void *(*fn)(void *), void *arg) { (void)fn, (void)arg; return EPERM; }
static uintptr_t inert_thread_token(hak_thread *t) { (void)t; return HAK_OWNER_NONE; }
static unsigned inert_refill_count(hak_thread *t, unsigned cls) { (void)t; return inert_class_batch(cls); }
static void inert_cache_fill(hak_thread *t, unsigned cls, struct hak_chain c) { (void)t, (void)cls, (void)c; }
static void inert_cache_accept(hak_thread *t, unsigned cls, uintptr_t o) { (void)t, (void)cls, (void)o; }
static void inert_class_local_frees(uint64_t *out, unsigned n) { memset(out, 0, n * sizeof *out); }
static hak_slab *inert_slab_acquire(hak_policy *p, unsigned cls, uintptr_t o) { (void)p, (void)cls, (void)o; return NULL; }
#define inert_slab_adopt inert_slab_acquire
static void inert_slab(hak_slab *s) { (void)s; }
#define inert_slab_release inert_slab
#define inert_slab_abandon inert_slab
static unsigned inert_slab_take(hak_slab *s, unsigned max, struct hak_chain *out)
{
	(void)s, (void)max;
	*out = (struct hak_chain){0};
	return 0;
}
static void inert_chain_return(struct hak_chain c, void (*fn)(void *, hak_slab *), void *ctx) { (void)c, (void)fn, (void)ctx; }
static void inert_slab_get_info(const hak_slab *s, struct hak_slab_info *out) { (void)s; *out = (struct hak_slab_info){0}; }
static void **inert_slab_policy_links(hak_slab *s)
{
	static void *links[2];
	(void)s;
	return links;
}
static hak_slab *inert_slab_of(const void *b) { (void)b; return NULL; }
static void inert_remote_push(hak_slab *s, void *b) { (void)s, (void)b; }
static unsigned inert_remote_drain(hak_slab *s) { (void)s; return 0; }
static unsigned inert_zero(void) { return 0; }
#define inert_reap_parked inert_zero
#define inert_collect_abandoned inert_zero
#define inert_reclaim_threads inert_zero
#define inert_empty_count inert_zero
#define inert_live_superslabs inert_zero
static void inert_nothing(void) {}
#define inert_consolidate inert_nothing
#define inert_request_cache_flush inert_nothing
static unsigned inert_release_empty(unsigned f, uint64_t m, unsigned x) { (void)f, (void)m, (void)x; return 0; }
static uint64_t inert_purge(uint64_t m, uint64_t x) { (void)m, (void)x; return 0; }
static unsigned inert_large_release(uint64_t m, uint64_t k) { (void)m, (void)k; return 0; }
static void inert_large_limits(const struct hak_large_limits *l) { (void)l; }
static void inert_set_parking(unsigned s, unsigned u) { (void)s, (void)u; }
static void inert_heap_facts(struct hak_heap_facts *out)
{
	size_t size = out->size;
	memset(out, 0, size < sizeof *out ? size : sizeof *out);
	out->size = size;
}
static void inert_free_runs_each(void (*fn)(void *, const struct hak_free_run *), void *ctx) { (void)fn, (void)ctx; }
static uint64_t inert_process_rss(void) { return 0; }
static struct hak_trim_result inert_trim_pass(unsigned keep, unsigned flags)
{
	(void)keep, (void)flags;
	return (struct hak_trim_result){0, 0, 0};
}

static int inert_helper_sleep(uint64_t ns) { (void)ns; return 1; } /* no helper runs here */
static void inert_helper_wake(void) {}

#define INERT(name) .name = inert_##name,
static const struct hak_core_api inert_core = {HAK_CORE_API_HEADER, HAK_CORE_SERVICES(INERT)};

/* ---- Printing ------------------------------------------------------------------------------- */

static const char *const stats_words[] = {"off", "table", "json"};

#define KEY_WIDTH 10 /* the longest [core] key is padded to this */

static void print_PATH(const char *key, const char *v)
{
	char real[PATH_MAX];
	/* Resolved for the reader (the file's folder may be relative to where check ran). */
	printf("%-*s = %s\n", KEY_WIDTH, key, realpath(v, real) ? real : v);
}
static void print_FILE(const char *key, const char *v)
{
	printf("%-*s = %s%s\n", KEY_WIDTH, key, v, *v ? "" : "; (empty: no recording)");
}
static void print_UINT(const char *key, uint64_t v) { printf("%-*s = %llu\n", KEY_WIDTH, key, (unsigned long long)v); }
static void print_BOOL(const char *key, bool v) { printf("%-*s = %s\n", KEY_WIDTH, key, v ? "on" : "off"); }
static void print_STATS(const char *key, enum hak_stats_mode v)
{
	printf("%-*s = %s\n", KEY_WIDTH, key, (unsigned)v < 3 ? stats_words[v] : "?");
}

static void print_core(const struct hak_config *cfg, enum hak_stats_mode file_stats)
{
	printf("[core]\n");
	if (cfg->core.stats != file_stats)
		printf("; stats: HAKMEM_STATS overrides the file's '%s'\n",
		       (unsigned)file_stats < 3 ? stats_words[file_stats] : "?");
	/* Every key of the settings table, in its order: a new setting shows up here by itself. */
#define HAK__X(key, type, def, lo, hi, help) print_##type(#key, cfg->core.key);
	HAK_CORE_SETTINGS(HAK__X)
#undef HAK__X
}

static void print_keys(const struct hak_config *cfg, int k, const char *how)
{
	const struct hak_policy_choice *c = &cfg->policy[k];
	char qk[64], qv[160];
	if (!c->count) {
		printf("; no keys: the policy's own defaults\n");
		return;
	}
	if (how)
		printf("; %s:\n", how);
	for (size_t i = 0; i < c->count; i++)
		printf("%s%s = %s\n", how ? "; " : "", hak__log_quote(qk, sizeof qk, c->items[i].key, false),
		       hak__log_quote(qv, sizeof qv, c->items[i].value, false));
}

/* One policy section of the report, from what hak__policy_activate decided. */
static void print_policy(const struct hak_config *cfg, uint32_t kind, const struct hak_policy_instance *inst)
{
	int k = (int)kind - 1;
	const struct hak_policy_choice *c = &cfg->policy[k];
	const char *asked = c->name && *c->name ? c->name : NULL;
	char qa[HAK_POLICY_NAME_MAX + 8];
	printf("\n[%s]\n", hak__kind_name(kind));
	if (!inst->desc) {
		printf("; no policy could be started (see the diagnostics)\n");
		return;
	}
	const struct hak_policy_desc *d = inst->desc;
	const char *version = d->version ? d->version : "?";
	if (!inst->builtin) {
		char qp[PATH_MAX], real[PATH_MAX];
		printf("; plugin '%s' %s from %s\n", d->name, version,
		       hak__log_quote(qp, sizeof qp, realpath(inst->path, real) ? real : inst->path, true));
		printf("policy = %s\n", d->name);
		print_keys(cfg, k, NULL);
	} else if (!inst->fallback) {
		printf("; built-in '%s' %s (compiled into libhakmem%s)\n", d->name, version,
		       asked ? "" : "; no policy = in the file");
		printf("policy = %s\n", d->name);
		print_keys(cfg, k, NULL);
	} else if (asked && strcmp(asked, d->name) != 0) {
		printf("; built-in '%s' %s INSTEAD of '%s', which was refused (see the diagnostics)\n", d->name,
		       version, hak__log_quote(qa, sizeof qa, asked, false));
		printf("policy = %s\n", d->name);
		print_keys(cfg, k, "not used, they were meant for the refused plugin");
	} else {
		printf("; built-in '%s' %s with its DEFAULT settings: it refused the keys (see the diagnostics)\n",
		       d->name, version);
		printf("policy = %s\n", d->name);
		print_keys(cfg, k, "not used");
	}
}

/* ---- The command ---------------------------------------------------------------------------- */


int hak__tool_check(const char *file)
{
	struct hak_config cfg;
	const char *path = file ? file : hak__config_path_from_env();
	hak__size_classes_init();
	int rc = hak__config_load(path, &cfg); /* NULL: the built-in defaults, no file */
	bool unusable = rc != 0 && rc != EINVAL;
	enum hak_stats_mode file_stats = cfg.core.stats;
	hak__config_apply_env(&cfg); /* a bad HAKMEM_STATS counts as a mistake, as it would at start-up */

	/* The start-up order (startup.c), so the lines come out as a program would print them. */
	static const uint32_t order[] = {HAK_POLICY_SUPERSLAB, HAK_POLICY_TRIM, HAK_POLICY_OWNERSHIP};
	struct hak_policy_instance inst[HAK_KIND_COUNT];
	static struct hak_policy scratch[HAK_KIND_COUNT]; /* the handles the plugins' init get */
	bool replaced = false;
	for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
		struct hak_policy_instance *in = &inst[order[i] - 1];
		scratch[order[i] - 1].kind = order[i];
		if (hak__policy_activate(order[i], &cfg, &inert_core, hak__builtin_desc(order[i]), false,
					 &scratch[order[i] - 1], in) != 0)
			in->desc = NULL;
		replaced |= !in->desc || in->fallback;
	}
	fflush(stderr);

	char q[PATH_MAX];
	if (!path)
		printf("; no file: HAKMEM_CONF is unset and %s does not exist; built-in defaults\n",
		       HAK_CONFIG_SYSTEM_PATH);
	else if (unusable)
		printf("; %s could not be used (see the diagnostics): built-in defaults\n",
		       hak__log_quote(q, sizeof q, path, true));
	else if (cfg.diagnostics || replaced)
		printf("; %s: %u mistake%s reported%s; what would run:\n", hak__log_quote(q, sizeof q, path, true),
		       cfg.diagnostics, cfg.diagnostics == 1 ? "" : "s", replaced ? ", policies replaced" : "");
	else
		printf("; %s: clean; what would run:\n", hak__log_quote(q, sizeof q, path, true));
	print_core(&cfg, file_stats);
	for (uint32_t kind = 1; kind <= HAK_KIND_COUNT; kind++)
		print_policy(&cfg, kind, &inst[kind - 1]);

	for (int k = 0; k < HAK_KIND_COUNT; k++)
		if (inst[k].desc)
			hak__pcall_fini(inst[k].desc, inst[k].state);
	bool failed = unusable || cfg.diagnostics || replaced;
	hak__config_free(&cfg);
	return failed ? HAK_TOOL_FAILED : HAK_TOOL_OK;
}
