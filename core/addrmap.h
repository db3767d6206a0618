/* addrmap.h: layer 1, the address map (addrmap.c): every 64 KB unit hakmem mapped for a
 * SuperSlab -> the slab record holding it (or the idle record of a free unit); addresses hakmem
 * never mapped read NULL. Two levels so only touched leaves cost memory: every first-level
 * entry points at a leaf, the unused ones at one shared, never written leaf of NULLs (.bss),
 * so a lookup needs no test between its two loads. A leaf covers 16 GB and takes 2 MB of
 * address space, of which only the pages holding entries of mapped SuperSlabs are touched. */
#ifndef HAK_ADDRMAP_H
#define HAK_ADDRMAP_H

#include "base.h"

struct hak_slab;

#define HAK_MAP_L1_BITS 13 /* address bits 34..46 */
#define HAK_MAP_L2_BITS 18 /* address bits 16..33 */
#define HAK_MAP_L1_SHIFT (HAK_UNIT_SHIFT + HAK_MAP_L2_BITS)
HAK_HIDDEN extern struct hak_slab **_Atomic hak__map[1u << HAK_MAP_L1_BITS];
HAK_HIDDEN extern struct hak_slab *hak__map_zero_leaf[1u << HAK_MAP_L2_BITS];

/* The slab whose unit holds p, or NULL when hakmem did not map p: exact, for the slow paths. */
HAK_INLINE struct hak_slab *hak__slab_lookup(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	if (unlikely(a >> (HAK_MAP_L1_SHIFT + HAK_MAP_L1_BITS)))
		return NULL;
	struct hak_slab **leaf = hak_load_relaxed(&hak__map[a >> HAK_MAP_L1_SHIFT]);
	return leaf[(a >> HAK_UNIT_SHIFT) & ((1u << HAK_MAP_L2_BITS) - 1)];
}

/* The same for the free fast path, without the range test: an address beyond 47 bits aliases
 * into the map, and the block-start test that follows (its quotient is then far beyond the
 * slab's carved blocks) turns it away. Budget: two dependent loads, four ALU operations. */
HAK_INLINE struct hak_slab *hak__slab_lookup_fast(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	struct hak_slab **leaf =
		hak_load_relaxed(&hak__map[(a >> HAK_MAP_L1_SHIFT) & ((1u << HAK_MAP_L1_BITS) - 1)]);
	return leaf[(a >> HAK_UNIT_SHIFT) & ((1u << HAK_MAP_L2_BITS) - 1)];
}

/* Point the n units starting at `base` (unit aligned) at entries[0..n-1], making leaves as
 * needed (never freed). 0, or ENOMEM when a leaf could not be made (the units already set
 * stay set: clear them). */
HAK_HIDDEN int hak__map_set(uintptr_t base, unsigned n, struct hak_slab *const *entries);
/* Point them at NULL again (no leaf is made). */
HAK_HIDDEN void hak__map_clear(uintptr_t base, unsigned n);

#endif
