/* addrmap.h: layer 1, the address maps (addrmap.c): every 64 KB unit hakmem mapped for a
 * SuperSlab -> the slab record holding it (or the idle record of a free unit). Two maps:
 *
 * The exact map, for the slow paths: two levels so only touched leaves cost memory; addresses
 * hakmem never mapped read NULL. The first level is .bss (a NULL entry: no leaf yet, nothing
 * mapped there), so it costs a process neither relocations nor dirty pages. A leaf covers
 * 16 GB and takes 2 MB of address space, of which only the pages holding entries of mapped
 * SuperSlabs are touched.
 *
 * The flat map, for the free fast path: one 8-byte entry per unit, indexed by the address's unit
 * number modulo the window (256 GB: 32 MB of MAP_NORESERVE address space, or a smaller one when
 * that cannot be reserved), holding `slab - M` where M is the map's own base. M's first page
 * holds the sentinel, a zero slab record (owner NONE, nothing carved: every test of the free
 * fast path fails on it), never written; the entries follow. An entry never written
 * reads 0 and so decodes to the sentinel: no NULL test, and the load and the add are one
 * instruction. An address outside the window aliases onto another unit's entry, whose slab
 * then fails the block-start test (superslab.h); two SuperSlabs whose units alias share an
 * entry, which the first keeps (the second's frees take the slow path: still exact). Before
 * the map is reserved (hak__map_init) and when no window could be, M is a static page of zeros
 * and one entry, with mask 0.
 * The mask is a variable of its own, so the fast path loads it and M side by side rather than
 * one after the other. M is published before the mask: a reader that loads the mask first
 * (acquire) pairs a new mask only with the new M, and an old mask (0) with either, whose entry
 * 0 exists in both. */
#ifndef HAK_ADDRMAP_H
#define HAK_ADDRMAP_H

#include "base.h"

struct hak_slab;

#define HAK_MAP_L1_BITS 13 /* address bits 34..46 */
#define HAK_MAP_L2_BITS 18 /* address bits 16..33 */
#define HAK_MAP_L1_SHIFT (HAK_UNIT_SHIFT + HAK_MAP_L2_BITS)
HAK_HIDDEN extern struct hak_slab **_Atomic hak__map[1u << HAK_MAP_L1_BITS];

#define HAK_FLAT_WINDOW_LG 38       /* the largest window: 256 GB of address space */
#define HAK_FLAT_ENTRIES_AT 4096    /* where entry 0 sits */
HAK_HIDDEN extern char *_Atomic hak__flat; /* M */
HAK_HIDDEN extern _Atomic uintptr_t hak__flat_mask; /* units in the window - 1 */

/* The slab whose unit holds p, or NULL when hakmem did not map p: exact, for the slow paths. */
HAK_INLINE struct hak_slab *hak__slab_lookup(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	if (unlikely(a >> (HAK_MAP_L1_SHIFT + HAK_MAP_L1_BITS)))
		return NULL;
	struct hak_slab **leaf = hak_load_acquire(&hak__map[a >> HAK_MAP_L1_SHIFT]);
	if (!leaf)
		return NULL;
	return leaf[(a >> HAK_UNIT_SHIFT) & ((1u << HAK_MAP_L2_BITS) - 1)];
}

/* The flat map's answer for the free fast path: a slab record, never NULL; the sentinel, or
 * an aliasing slab, when hakmem did not map p (the checks that follow turn it away). Budget:
 * the mask and the map's base (two independent loads), the index (two ALU operations), one add
 * from memory (the asm folds the mask's load into the and). */
HAK_INLINE struct hak_slab *hak__slab_lookup_fast(const void *p)
{
	uintptr_t mask = hak_load_acquire(&hak__flat_mask); /* first: see above */
	char *m = hak_load_relaxed(&hak__flat);
	uintptr_t i = ((uintptr_t)p >> HAK_UNIT_SHIFT) & mask;
	return (struct hak_slab *)(m + ((const intptr_t *)(m + HAK_FLAT_ENTRIES_AT))[i]);
}

/* Reserve the flat map (the largest window the kernel grants, down to 1 GB; none: the fast
 * path never hits, still correct). Once, before the first SuperSlab is mapped (hak__init). */
HAK_HIDDEN void hak__map_init(void);
/* The window the flat map covers, in bytes (0: none). For the tests and the stats. */
HAK_HIDDEN size_t hak__map_flat_window(void);

/* Point the n units starting at `base` (unit aligned) at entries[0..n-1], all slab records of
 * the one SuperSlab holding base, in both maps, making leaves of the exact map as needed (never
 * freed). 0, or ENOMEM when a leaf could not be made (the units already set stay set: clear
 * them). */
HAK_HIDDEN int hak__map_set(uintptr_t base, unsigned n, struct hak_slab *const *entries);
/* Point them at NULL again (no leaf is made), and the flat entries this SuperSlab holds at the
 * sentinel. */
HAK_HIDDEN void hak__map_clear(uintptr_t base, unsigned n);

#endif
