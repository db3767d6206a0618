/* pool.h: layer 2, the SuperSlab pool (pool.c): mapping SuperSlabs (one mapping each,
 * registered in the address map), handing out runs of free units to slabs and taking them back,
 * the lists (partly used per ownership policy, empty, all), and the trim primitives that work
 * on SuperSlabs: releasing empties, purging free units, the facts trim policies decide on.
 * Nothing here decides *when*: the trim policy does, through layer 6. */
#ifndef HAK_POOL_H
#define HAK_POOL_H

#include "superslab.h"

/* A run of `units` free units for a slab of ownership policy `model`: from a partly used
 * SuperSlab of that model, else an empty one of 2^lg bytes, else a new mapping (recording
 * `model` and `size_by`, the SuperSlab size policy's index). The units are reserved (in
 * unit_mask) and init(ss, first, ctx) has set up the slab record, under the pool lock (so a walk
 * of the pool never sees a record half made), when it returns. NULL with errno ENOMEM when
 * nothing could be mapped. Before mapping it calls the hook of hak__pool_set_before_map once,
 * and searches again if the hook says it freed something. */
HAK_HIDDEN struct hak_superslab *hak__pool_units_take(unsigned units, unsigned lg, unsigned model, unsigned size_by,
						      void (*init)(struct hak_superslab *ss, unsigned first, void *ctx),
						      void *ctx);
/* Slab s's units go back, its record is marked unused, under the pool lock. true when its
 * SuperSlab became empty. */
HAK_HIDDEN bool hak__pool_units_give(struct hak_slab *s);
/* The layer above takes back what threads hold but do not use when the pool is about to map:
 * fn returns nonzero when units went back (they may be the ones wanted). */
HAK_HIDDEN void hak__pool_set_before_map(unsigned (*fn)(void));
/* Units ever given back (hak__pool_units_give): a hint, read unlocked. */
HAK_HIDDEN uint64_t hak__pool_units_given(void);
/* SuperSlabs that became empty since the previous call (coalesced). */
HAK_HIDDEN unsigned hak__pool_empties_take(void);
/* Set by a hak__pool_units_take of the calling thread that gave units not all dirty (pages not
 * resident yet); its caller clears it. */
HAK_HIDDEN extern __thread bool hak__pool_grew;

/* Trim primitives (see hak_core_api). `now` is hak__now_ns() read by the caller. */
HAK_HIDDEN unsigned hak__pool_release_empty(unsigned floor, uint64_t min_empty_ns, unsigned max, uint64_t now);
HAK_HIDDEN uint64_t hak__pool_purge(uint64_t min_free_ns, uint64_t max_bytes, uint64_t now);
HAK_HIDDEN void hak__pool_free_runs_each(void (*fn)(void *ctx, const struct hak_free_run *run), void *ctx);
HAK_HIDDEN void hak__pool_facts(struct hak_heap_facts *out); /* the SuperSlab fields */
/* fn(ss, ctx) for every mapped SuperSlab, pool lock held: fn reads, takes no lock, allocates
 * nothing. Slab geometry (units, class, capacity) is stable meanwhile; free counts are not. */
HAK_HIDDEN void hak__pool_each(void (*fn)(const struct hak_superslab *ss, void *ctx), void *ctx);

/* Counts, read unlocked as hints. */
HAK_HIDDEN unsigned hak__pool_empty_count(void);
HAK_HIDDEN uint64_t hak__pool_live(void);
HAK_HIDDEN uint64_t hak__pool_live_of(unsigned lg); /* live SuperSlabs of 2^lg bytes */
HAK_HIDDEN uint64_t hak__pool_peak_of(unsigned lg); /* most live at once, of 2^lg bytes */
HAK_HIDDEN uint64_t hak__pool_mapped_total(void);   /* since start */
/* Mapped and released since start and live now, read together: live == mapped - released. */
HAK_HIDDEN void hak__pool_counts(uint64_t *mapped, uint64_t *released, uint64_t *live);
HAK_HIDDEN uint64_t hak__pool_released_total(void);
HAK_HIDDEN uint64_t hak__pool_peak_live(void);
HAK_HIDDEN uint64_t hak__pool_purged_total(void);   /* bytes */
#if HAK_DEBUG >= 2
/* Debug builds, for tests: the SuperSlabs' own active counts summed (superslab.h); at
 * quiescence it equals the thread states' sum, hak__threads_active_total. */
HAK_HIDDEN int64_t hak__pool_active_total(void);
#endif
/* Every SuperSlab walked: slabs and units agree, lists are linked both ways (HAK_DEBUG >= 2
 * callers); returns the number of SuperSlabs. */
HAK_HIDDEN uint64_t hak__pool_check(void);

HAK_HIDDEN bool hak__pool_fork_prepare(void); /* fork.c: through hak__fork_take (lock.h) */
HAK_HIDDEN void hak__pool_fork_child(void);

#endif
