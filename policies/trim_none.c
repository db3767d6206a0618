/* trim_none.c: never trims on its own; every SuperSlab stays mapped (the baseline to measure
 * the other trim policies against). An explicit malloc_trim() or hak_trim() still trims. */
#include <hakmem_policy.h>

static int none_init(const struct hak_core_api *core, const struct hak_settings *settings, void **state,
		     char *err, size_t errlen)
{
	(void)core;
	if (settings->count)
		return hak_setting_unknown(&settings->items[0], "nothing", err, errlen);
	*state = NULL;
	return 0;
}

static const struct hak_trim_ops none_ops = {0};

HAK_POLICY_EXPORT(hak__builtin_trim_none) = {
	HAK_POLICY_DESC_INIT(HAK_POLICY_TRIM, "none", "1.0.0", "never trims: every SuperSlab stays mapped"),
	.init = none_init,
	.trim = &none_ops,
};
