/* superslab_adaptive.c: SuperSlab size by demand. While fewer than `grow_after` SuperSlabs are
 * live (default 4), new ones are 1 MB: a small heap keeps less untouched address space and an
 * empty SuperSlab is half as hard to get. From then on new ones are 2 MB: half the mappings
 * against vm.max_map_count for the same heap. The largest classes (slabs of 8 units) always get
 * 2 MB so one SuperSlab holds several of their slabs. */
#include <hakmem_policy.h>
#include <stdlib.h>
#include <string.h>

struct adaptive_state {
	const struct hak_core_api *core;
	unsigned long grow_after; /* live SuperSlabs before new ones are 2 MB */
};

static const struct hak_setting_spec adaptive_spec[] = {
	{"grow_after", HAK_SETTING_UINT, 0, 1 << 20, offsetof(struct adaptive_state, grow_after), "4",
	 "live SuperSlabs before new ones are 2 MB"},
};

static int adaptive_init(const struct hak_core_api *core, hak_policy *self, const struct hak_settings *settings,
			 void **state, char *err, size_t errlen)
{
	(void)self;
	struct adaptive_state st = {core, 4};
	int e = hak_settings_parse(settings, adaptive_spec, 1, &st, err, errlen);
	if (e)
		return e;
	struct adaptive_state *s = malloc(sizeof *s);
	if (!s)
		return 12;
	*s = st;
	*state = s;
	return 0;
}

static unsigned adaptive_lg_size_for(void *state, unsigned cls)
{
	struct adaptive_state *s = state;
	if (s->core->class_block_size(cls) > 16384)
		return 21;
	return s->core->live_superslabs() < s->grow_after ? 20 : 21;
}

static void adaptive_fini(void *state)
{
	free(state);
}

static const struct hak_superslab_ops adaptive_ops = {
	.size = sizeof(struct hak_superslab_ops),
	.lg_size_for = adaptive_lg_size_for,
};

HAK_POLICY_EXPORT(hak__builtin_superslab_adaptive) = {
	HAK_POLICY_DESC_INIT(HAK_POLICY_SUPERSLAB, "adaptive", "2.0.0",
			     "1 MB SuperSlabs for small heaps, 2 MB once grow_after are live"),
	.init = adaptive_init,
	.fini = adaptive_fini,
	.ops = &adaptive_ops,
	HAK_SETTINGS_SPEC(adaptive_spec),
};
