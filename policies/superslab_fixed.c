/* superslab_fixed.c: every new SuperSlab has the same size, `size = 1M | 2M` (default 2M).
 * Built into the core as the default and shipped as build/policies/superslab_fixed.so. */
#include <hakmem_policy.h>
#include <stdlib.h>
#include <string.h>

struct fixed_state {
	uint64_t size; /* bytes: 1M or 2M */
};

static const struct hak_setting_spec fixed_spec[] = {
	{"size", HAK_SETTING_BYTES, 1 << 20, 2 << 20, offsetof(struct fixed_state, size), "2M",
	 "the size of every new SuperSlab: 1M or 2M"},
};

static struct fixed_state builtin_state; /* with no settings: the built-in runs inside the first malloc */

static int fixed_init(const struct hak_core_api *core, hak_policy *self, const struct hak_settings *settings,
		      void **state, char *err, size_t errlen)
{
	(void)core, (void)self;
	struct fixed_state st = {(uint64_t)2 << 20};
	for (size_t i = 0; i < settings->count; i++) { /* the spec's checks, then 1M or 2M exactly */
		const struct hak_settings one = {settings->file, &settings->items[i], 1};
		int e = hak_settings_parse(&one, fixed_spec, 1, &st, err, errlen);
		if (e && strcmp(settings->items[i].key, "size") != 0)
			return e;
		if (e || (st.size != (1u << 20) && st.size != (2u << 20))) {
			snprintf(err, errlen, "line %d: size = '%s': expected 1M or 2M", settings->items[i].line,
				 settings->items[i].value);
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
	return ((struct fixed_state *)state)->size == (1u << 20) ? 20 : 21;
}

static void fixed_fini(void *state)
{
	if (state != &builtin_state)
		free(state);
}

static const struct hak_superslab_ops fixed_ops = {
	.size = sizeof(struct hak_superslab_ops),
	.lg_size_for = fixed_lg_size_for,
};

HAK_POLICY_EXPORT(hak__builtin_superslab_fixed) = {
	HAK_POLICY_DESC_INIT(HAK_POLICY_SUPERSLAB, "fixed", "2.0.0", "every SuperSlab the same size: size = 1M | 2M"),
	.init = fixed_init,
	.fini = fixed_fini,
	.ops = &fixed_ops,
	HAK_SETTINGS_SPEC(fixed_spec),
};
