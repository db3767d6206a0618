/* addrmap.c: layer 1, the address maps' storage and updates (see addrmap.h). Updates come
 * from the pool and the slab layer under their locks; the fast path reads the flat map
 * without any. */
#include "addrmap.h"

#include "os.h"

HAK_BIG_BSS struct hak_slab **_Atomic hak__map[1u << HAK_MAP_L1_BITS]; /* .bss: NULL, no leaf */

/* M until the flat map is reserved, and for good when it cannot be: the sentinel, mask 0, and
 * entry 0, all zero and never written (.bss). */
HAK_BIG_BSS static _Alignas(64) char flat_none[HAK_FLAT_ENTRIES_AT + sizeof(intptr_t)];
char *_Atomic hak__flat = flat_none;
_Atomic uintptr_t hak__flat_mask;


void hak__map_init(void)
{
	if (hak_load_acquire(&hak__flat) != flat_none)
		return;
	/* The largest window first; a refused reservation (an address-space limit) tries a
	 * quarter of it, down to 1 GB (128 kB of entries). */
	for (unsigned lg = HAK_FLAT_WINDOW_LG; lg >= 30; lg -= 2) {
		size_t units = (size_t)1 << (lg - HAK_UNIT_SHIFT);
		size_t bytes = HAK_FLAT_ENTRIES_AT + units * sizeof(intptr_t);
		char *m = hak__os_map(bytes, 4096);
		if (!m)
			continue;
		hak__os_advise_table(m, bytes);
		char *expect = flat_none;
		if (!atomic_compare_exchange_strong_explicit(&hak__flat, &expect, m, memory_order_release,
							     memory_order_relaxed)) {
			hak__os_unmap(m, bytes); /* another thread's init won */
			return;
		}
		hak_store_release(&hak__flat_mask, units - 1); /* after M (addrmap.h) */
		return;
	}
	hak__log("no address space for the free fast path's map (1 GB to 256 GB windows refused); "
		 "every free takes the slow path");
}

size_t hak__map_flat_window(void)
{
	if (hak_load_acquire(&hak__flat) == flat_none)
		return 0;
	return (hak_load_acquire(&hak__flat_mask) + 1) << HAK_UNIT_SHIFT;
}

/* The flat entry of the unit at address a, NULL when there is no flat map. */
static intptr_t *flat_slot(char *m, uintptr_t a)
{
	if (m == flat_none)
		return NULL;
	uintptr_t i = (a >> HAK_UNIT_SHIFT) & hak_load_acquire(&hak__flat_mask);
	return &((intptr_t *)(m + HAK_FLAT_ENTRIES_AT))[i];
}

/* Whether two slab records are in the same SuperSlab's header (its first page). */
static bool same_superslab(const void *a, const void *b)
{
	return (((uintptr_t)a ^ (uintptr_t)b) & ~(uintptr_t)(HAK_SS_HEADER - 1)) == 0;
}

/* The exact map's entry of the unit at address a; its leaf is made on demand unless the caller
 * only clears. NULL when there is no leaf (clearing) or none could be made. */
static struct hak_slab **map_slot(uintptr_t a, bool make)
{
	struct hak_slab **_Atomic *slot = &hak__map[a >> HAK_MAP_L1_SHIFT];
	struct hak_slab **leaf = hak_load_acquire(slot);
	if (!leaf) {
		if (!make)
			return NULL;
		/* 2 MB of address space; only pages holding entries of mapped SuperSlabs are touched */
		size_t bytes = sizeof(*leaf) << HAK_MAP_L2_BITS;
		leaf = hak__os_map(bytes, 4096);
		if (!leaf)
			return NULL;
		struct hak_slab **expect = NULL;
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
	char *m = hak_load_acquire(&hak__flat);
	for (unsigned u = 0; u < n; u++) {
		uintptr_t a = base + ((uintptr_t)u << HAK_UNIT_SHIFT);
		struct hak_slab **e = map_slot(a, true);
		if (!e)
			return 12; /* ENOMEM */
		*e = entries[u];
		intptr_t *f = flat_slot(m, a);
		/* a unit aliasing another SuperSlab's keeps that one's entry */
		if (f && (*f == 0 || same_superslab(m + *f, entries[u])))
			*f = (intptr_t)((char *)entries[u] - m);
	}
	return 0;
}

void hak__map_clear(uintptr_t base, unsigned n)
{
	char *m = hak_load_acquire(&hak__flat);
	for (unsigned u = 0; u < n; u++) {
		uintptr_t a = base + ((uintptr_t)u << HAK_UNIT_SHIFT);
		struct hak_slab **e = map_slot(a, false);
		if (!e)
			continue;
		intptr_t *f = flat_slot(m, a);
		if (f && *f != 0 && *e && same_superslab(m + *f, *e))
			*f = 0;
		*e = NULL;
	}
}
