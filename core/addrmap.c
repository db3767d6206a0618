/* addrmap.c: layer 1, the address map's storage and updates (see addrmap.h). */
#include "addrmap.h"

#include "os.h"

struct hak_slab *hak__map_zero_leaf[1u << HAK_MAP_L2_BITS]; /* .bss: reads cost no memory */
struct hak_slab **_Atomic hak__map[1u << HAK_MAP_L1_BITS] = {
	[0 ...(1u << HAK_MAP_L1_BITS) - 1] = hak__map_zero_leaf,
};

/* The entry of the unit at address a; its leaf is made on demand unless the caller only clears.
 * NULL when there is no leaf (clearing) or none could be made. */
static struct hak_slab **map_slot(uintptr_t a, bool make)
{
	struct hak_slab **_Atomic *slot = &hak__map[a >> HAK_MAP_L1_SHIFT];
	struct hak_slab **leaf = hak_load_acquire(slot);
	if (leaf == hak__map_zero_leaf) {
		if (!make)
			return NULL;
		/* 2 MB of address space; only pages holding entries of mapped SuperSlabs are touched */
		size_t bytes = sizeof(*leaf) << HAK_MAP_L2_BITS;
		leaf = hak__os_map(bytes, 4096);
		if (!leaf)
			return NULL;
		struct hak_slab **expect = hak__map_zero_leaf;
		if (!hak_cas_strong(slot, &expect, leaf)) {
			hak__os_unmap(leaf, bytes);
			leaf = expect;
		}
	}
	return &leaf[(a >> HAK_UNIT_SHIFT) & ((1u << HAK_MAP_L2_BITS) - 1)];
}

int hak__map_set(uintptr_t base, unsigned n, struct hak_slab *const *entries)
{
	HAK_ASSERT((base & (HAK_UNIT_SIZE - 1)) == 0 && (base >> (HAK_MAP_L1_SHIFT + HAK_MAP_L1_BITS)) == 0);
	for (unsigned u = 0; u < n; u++) {
		struct hak_slab **e = map_slot(base + ((uintptr_t)u << HAK_UNIT_SHIFT), true);
		if (!e)
			return 12; /* ENOMEM */
		*e = entries[u];
	}
	return 0;
}

void hak__map_clear(uintptr_t base, unsigned n)
{
	for (unsigned u = 0; u < n; u++) {
		struct hak_slab **e = map_slot(base + ((uintptr_t)u << HAK_UNIT_SHIFT), false);
		if (e)
			*e = NULL;
	}
}
