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
#include "hakmem_internal.h" /* the size classes only: hak__classes, hak__size_classes_init */
#include "hakmem_tool.h"
#include "loader.h"

/* ---- Inert core services ------------------------------------------------------------------ */
/* What a plugin's init may ask about (classes, clock, logging) is real; everything that would
 * touch memory or start something answers "nothing", and spawn_helper refuses. */

static uint64_t inert_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
static unsigned inert_class_count(void) { return HAK_NCLASSES; }
static size_t inert_class_block_size(unsigned cls) { return cls < HAK_NCLASSES ? hak__classes[cls].block_size : 0; }
static unsigned inert_class_batch(unsigned cls) { return cls < HAK_NCLASSES ? hak__classes[cls].batch : 0; }
static uintptr_t inert_thread_token(hak_thread *t) { (void)t; return HAK_OWNER_NONE; }
static void *inert_thread_policy_state(hak_thread *t, enum hak_policy_kind k) { (void)t; (void)k; return NULL; }
static hak_slab *inert_slab_acquire(unsigned cls, uintptr_t owner) { (void)cls; (void)owner; return NULL; }
static void inert_slab(hak_slab *s) { (void)s; }
static hak_slab *inert_slab_of(const void *block) { (void)block; return NULL; }
static unsigned inert_slab_take(hak_slab *s, unsigned max, struct hak_chain *out)
{
	(void)s; (void)max;
	*out = (struct hak_chain){0};
	return 0;
}
static void inert_chain_return(struct hak_chain c, void (*fn)(void *, hak_slab *), void *ctx)
{
	(void)c; (void)fn; (void)ctx;
}
static void inert_slab_get_info(const hak_slab *s, struct hak_slab_info *out) { (void)s; *out = (struct hak_slab_info){0}; }
static int inert_slab_claim(hak_slab *s, uintptr_t e, uintptr_t o) { (void)s; (void)e; (void)o; return 0; }
static void **inert_slab_policy_links(hak_slab *s)
{
	static void *links[2];
	(void)s;
	return links;
}
static void inert_remote_push(hak_slab *s, void *b) { (void)s; (void)b; }
static unsigned inert_remote_drain(hak_slab *s) { (void)s; return 0; }
static hak_slab *inert_slab_adopt(unsigned cls, uintptr_t o) { (void)cls; (void)o; return NULL; }
static void inert_cache_fill(hak_thread *t, unsigned cls, struct hak_chain c) { (void)t; (void)cls; (void)c; }
static void inert_count(hak_thread *t, enum hak_counter w, uint64_t n) { (void)t; (void)w; (void)n; }
static unsigned inert_release_empty(unsigned keep) { (void)keep; return 0; }
static uint64_t inert_purge_free(int aged_only) { (void)aged_only; return 0; }
static struct hak_trim_result inert_trim_pass(unsigned keep, int purge)
{
	(void)keep; (void)purge;
	return (struct hak_trim_result){0, 0};
}
static unsigned inert_zero(void) { return 0; }
static int inert_spawn_helper(void *(*fn)(void *), void *arg) { (void)fn; (void)arg; return EPERM; }
static unsigned inert_refill_count(hak_thread *t, unsigned cls) { (void)t; return inert_class_batch(cls); }

static const struct hak_core_api inert_core = {
	.abi_major = HAK_POLICY_ABI_MAJOR,
	.abi_minor = HAK_POLICY_ABI_MINOR,
	.size = sizeof(struct hak_core_api),
	.log = hak__log,
	.now_ns = inert_now_ns,
	.class_count = inert_class_count,
	.class_block_size = inert_class_block_size,
	.class_batch = inert_class_batch,
	.thread_token = inert_thread_token,
	.thread_policy_state = inert_thread_policy_state,
	.slab_acquire = inert_slab_acquire,
	.slab_release = inert_slab,
	.slab_of = inert_slab_of,
	.slab_take = inert_slab_take,
	.chain_return = inert_chain_return,
	.slab_get_info = inert_slab_get_info,
	.slab_claim = inert_slab_claim,
	.slab_policy_links = inert_slab_policy_links,
	.remote_push = inert_remote_push,
	.remote_drain = inert_remote_drain,
	.slab_abandon = inert_slab,
	.slab_adopt = inert_slab_adopt,
	.cache_fill = inert_cache_fill,
	.count = inert_count,
	.release_empty = inert_release_empty,
	.purge_free = inert_purge_free,
	.trim_pass = inert_trim_pass,
	.empty_count = inert_zero,
	.live_superslabs = inert_zero,
	.spawn_helper = inert_spawn_helper,
	.refill_count = inert_refill_count,
};

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
	bool replaced = false;
	for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
		struct hak_policy_instance *in = &inst[order[i] - 1];
		if (hak__policy_activate(order[i], &cfg, &inert_core, hak__builtin_desc(order[i]), in) != 0)
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
		if (inst[k].desc && inst[k].desc->fini)
			inst[k].desc->fini(inst[k].state);
	bool failed = unusable || cfg.diagnostics || replaced;
	hak__config_free(&cfg);
	return failed ? HAK_TOOL_FAILED : HAK_TOOL_OK;
}
