/* trim_eager.c: an empty SuperSlab goes back to the OS the moment it empties, and free units are
 * purged at the same time (`empty_reserve`, default 0, empty SuperSlabs may stay). The most
 * frugal setting, and the one that pays the most system calls under churn. */
#include <hakmem_policy.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct eager_state {
	const struct hak_core_api *core;
	unsigned long empty_reserve;
	_Atomic uint64_t last_pass_ns; /* ticks run a full pass at most every 10 ms */
};

static void eager_superslab_empty(void *state)
{
	struct eager_state *s = state;
	s->core->release_empty((unsigned)s->empty_reserve);
	s->core->purge_free(0);
}

/* Slabs that threads left behind only empty through a pass: run one now and then. */
static void eager_tick(void *state)
{
	struct eager_state *s = state;
	uint64_t now = s->core->now_ns(), last = atomic_load(&s->last_pass_ns);
	if (now - last < 10000000u || !atomic_compare_exchange_strong(&s->last_pass_ns, &last, now))
		return;
	s->core->trim_pass((unsigned)s->empty_reserve, 1);
}

static int eager_init(const struct hak_core_api *core, const struct hak_settings *settings, void **state,
		      char *err, size_t errlen)
{
	struct eager_state st = {.core = core};
	for (size_t i = 0; i < settings->count; i++) {
		const struct hak_setting *it = &settings->items[i];
		int e = strcmp(it->key, "empty_reserve")
				? hak_setting_unknown(it, "empty_reserve", err, errlen)
				: hak_setting_uint(it, 0, 1024, &st.empty_reserve, err, errlen);
		if (e)
			return e;
	}
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
	.superslab_empty = eager_superslab_empty,
	.tick = eager_tick,
};

HAK_POLICY_EXPORT(hak__builtin_trim_eager) = {
	HAK_POLICY_DESC_INIT(HAK_POLICY_TRIM, "eager", "1.0.0",
			     "returns each SuperSlab the moment it empties and purges free units"),
	.init = eager_init,
	.fini = eager_fini,
	.trim = &eager_ops,
};
