/* trim_none.c: never trims on its own; every SuperSlab stays mapped, and an allocation that
 * finds no memory fails without anything being given back (the baseline to measure the other
 * trim policies against). An explicit malloc_trim() or hak_trim() still trims. It takes the
 * large-cache keys, so the cache can be sized or turned off. */
#include <hakmem_policy.h>
#include <stdlib.h>

struct none_state {
	const struct hak_core_api *core;
	struct hak_large_limits large;
};

static const struct hak_setting_spec none_spec[] = {
	HAK_LARGE_CACHE_SETTINGS(struct none_state, large),
};

static int none_init(const struct hak_core_api *core, hak_policy *self, const struct hak_settings *settings,
		     void **state, char *err, size_t errlen)
{
	(void)self;
	struct none_state st = {core, HAK_LARGE_LIMITS_DEFAULT};
	int e = hak_settings_parse(settings, none_spec, sizeof none_spec / sizeof none_spec[0], &st, err, errlen);
	if (e)
		return e;
	struct none_state *s = malloc(sizeof *s);
	if (!s)
		return 12;
	*s = st;
	*state = s;
	return 0;
}

static void none_start(void *state)
{
	struct none_state *s = state;
	s->core->large_limits(&s->large);
}

static void none_fini(void *state)
{
	free(state);
}

static const struct hak_trim_ops none_ops = {.size = sizeof(struct hak_trim_ops)};

HAK_POLICY_EXPORT(hak__builtin_trim_none) = {
	HAK_POLICY_DESC_INIT(HAK_POLICY_TRIM, "none", "2.0.0", "never trims: every SuperSlab stays mapped"),
	.init = none_init,
	.start = none_start,
	.fini = none_fini,
	.ops = &none_ops,
	HAK_SETTINGS_SPEC(none_spec),
};
