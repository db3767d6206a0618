/* trim_eager.c: an empty SuperSlab goes back to the OS the moment it empties, and free units that
 * stayed free since the previous such moment are purged with it (`empty_reserve`, default 0,
 * empty SuperSlabs may stay). A unit freed and taken again between two empties is not purged:
 * purging everything at every empty made a churning program fault its pages in again (mstress:
 * 227k minor faults, 800 MB purged in a second). Its passes
 * (exited threads' slabs, cached large mappings) run from the program's own slow paths, at most
 * every 10 ms; no helper thread. The most frugal setting, and the one that pays the most system
 * calls under churn. */
#include <hakmem_policy.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct eager_settings {
	unsigned long empty_reserve;
	struct hak_large_limits large;
};

static const struct hak_setting_spec eager_spec[] = {
	{"empty_reserve", HAK_SETTING_UINT, 0, 1024, offsetof(struct eager_settings, empty_reserve), "0",
	 "empty SuperSlabs kept mapped"},
	HAK_LARGE_CACHE_SETTINGS(struct eager_settings, large),
};

struct eager_state {
	const struct hak_core_api *core;
	struct eager_settings set;
	_Atomic uint64_t last_pass_ns; /* ticks run a full pass at most every 10 ms */
	_Atomic uint64_t last_purge_ns; /* the previous empty's purge */
};

static void eager_superslab_empty(void *state)
{
	struct eager_state *s = state;
	s->core->release_empty((unsigned)s->set.empty_reserve, 0, ~0u);
	/* What has been free since the previous empty's purge (the first empty only marks). */
	uint64_t now = s->core->now_ns(), prev = atomic_exchange(&s->last_purge_ns, now);
	if (prev)
		s->core->purge(now - prev, UINT64_MAX);
}

/* Slabs that threads left behind only empty through a pass: run one now and then. */
static void eager_tick(void *state)
{
	struct eager_state *s = state;
	uint64_t now = s->core->now_ns(), last = atomic_load(&s->last_pass_ns);
	if (now - last < 10000000u || !atomic_compare_exchange_strong(&s->last_pass_ns, &last, now))
		return;
	s->core->trim_pass((unsigned)s->set.empty_reserve, HAK_TRIM_PURGE | HAK_TRIM_LARGE_AGE);
}

static int eager_out_of_memory(void *state, size_t bytes)
{
	struct eager_state *s = state;
	(void)bytes;
	struct hak_trim_result r = s->core->trim_pass(0, HAK_TRIM_PURGE | HAK_TRIM_LARGE_ALL);
	return r.superslabs_released || r.large_released || r.bytes_purged;
}

static void eager_start(void *state)
{
	struct eager_state *s = state;
	s->core->large_limits(&s->set.large);
}

static int eager_init(const struct hak_core_api *core, hak_policy *self, const struct hak_settings *settings,
		      void **state, char *err, size_t errlen)
{
	(void)self;
	struct eager_state st = {.core = core, .set = {.empty_reserve = 0, .large = HAK_LARGE_LIMITS_DEFAULT}};
	int e = hak_settings_parse(settings, eager_spec, sizeof eager_spec / sizeof eager_spec[0], &st.set, err, errlen);
	if (e)
		return e;
	struct eager_state *s = malloc(sizeof *s);
	if (!s)
		return 12;
	memcpy(s, &st, sizeof st);
	*state = s;
	return 0;
}

static void eager_fini(void *state)
{
	free(state);
}

static const struct hak_trim_ops eager_ops = {
	.size = sizeof(struct hak_trim_ops),
	.superslab_empty = eager_superslab_empty,
	.tick = eager_tick,
	.out_of_memory = eager_out_of_memory,
};

HAK_POLICY_EXPORT(hak__builtin_trim_eager) = {
	HAK_POLICY_DESC_INIT(HAK_POLICY_TRIM, "eager", "2.0.0",
			     "returns each SuperSlab the moment it empties and purges units free since the previous empty"),
	.init = eager_init,
	.start = eager_start,
	.fini = eager_fini,
	.ops = &eager_ops,
	HAK_SETTINGS_SPEC(eager_spec),
};
