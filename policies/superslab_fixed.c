/* superslab_fixed.c: every new SuperSlab has the same size, `size = 1M | 2M` (default 2M).
 * Built into the core as the default and shipped as build/policies/superslab_fixed.so. */
#include <hakmem_policy.h>
#include <stdlib.h>
#include <string.h>

struct fixed_state {
	unsigned lg; /* log2 of the SuperSlab size */
};

static int fixed_init(const struct hak_core_api *core, const struct hak_settings *settings, void **state,
		      char *err, size_t errlen)
{
	(void)core;
	static struct fixed_state builtin_state; /* the built-in runs inside the first malloc */
	struct fixed_state st = {21};
	for (size_t i = 0; i < settings->count; i++) {
		const struct hak_setting *it = &settings->items[i];
		if (strcmp(it->key, "size") != 0)
			return hak_setting_unknown(it, "size", err, errlen);
		if (!strcmp(it->value, "1M") || !strcmp(it->value, "1MB") || !strcmp(it->value, "1048576"))
			st.lg = 20;
		else if (!strcmp(it->value, "2M") || !strcmp(it->value, "2MB") || !strcmp(it->value, "2097152"))
			st.lg = 21;
		else {
			snprintf(err, errlen, "line %d: size = '%s': expected 1M or 2M", it->line, it->value);
			return 22;
		}
	}
	struct fixed_state *s = settings->count ? malloc(sizeof *s) : &builtin_state;
	if (!s)
		return 12;
	*s = st;
	*state = s;
	return 0;
}

static unsigned fixed_lg_size_for(void *state, unsigned cls)
{
	(void)cls;
	return ((struct fixed_state *)state)->lg;
}

static const struct hak_superslab_ops fixed_ops = {
	.lg_size_for = fixed_lg_size_for,
};

HAK_POLICY_EXPORT(hak__builtin_superslab_fixed) = {
	HAK_POLICY_DESC_INIT(HAK_POLICY_SUPERSLAB, "fixed", "1.0.0", "every SuperSlab the same size: size = 1M | 2M"),
	.init = fixed_init,
	.superslab = &fixed_ops,
};
