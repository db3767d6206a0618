/* introspect.h: layer 9, the figures behind glibc's introspection calls (introspect.c): mallinfo2,
 * malloc_stats and malloc_info, which api.c exports. */
#ifndef HAK_INTROSPECT_H
#define HAK_INTROSPECT_H

#include <stdio.h>

#include "base.h"
#include "large.h"

/* One heap per SuperSlab size. Bytes; "blocks" are counts. Read without stopping the threads:
 * exact for the calling thread's own allocations and at quiescence, otherwise a snapshot
 * that may be off by what other threads do meanwhile. */
struct hak_heap_figures {
	uint64_t superslabs, peak_superslabs, empty_superslabs;
	uint64_t system, peak_system;   /* bytes mapped for its SuperSlabs, now and at most */
	uint64_t in_use, in_use_blocks; /* blocks the program holds */
	uint64_t cached, cached_blocks; /* free blocks waiting in thread caches */
	uint64_t free_in_slabs, free_in_slabs_blocks; /* free blocks of slabs outside thread caches:
						       * free lists, remote and central queues, never
						       * carved */
	uint64_t free_units, free_runs; /* units in no slab, runs of them; an empty SuperSlab
					 * counts whole, as one run */
	uint64_t dirty_free_units;      /* free units of SuperSlabs in use touched since their
					 * last purge (a trim pass purges them) */
	uint64_t empty;                 /* bytes of the empty SuperSlabs (a trim pass unmaps them) */
	uint64_t overhead;              /* headers of SuperSlabs in use, slab tails no block fits */
	uint64_t class_free_blocks[HAK_NCLASSES]; /* in free lists or never carved, per class */
};
struct hak_figures {
	struct hak_heap_figures heap[2]; /* [0] 1 MB SuperSlabs, [1] 2 MB */
	struct hak_large_figures large;
};
HAK_HIDDEN void hak__figures(struct hak_figures *out);
struct mallinfo2;
HAK_HIDDEN void hak__mallinfo2(struct mallinfo2 *out);
HAK_HIDDEN int hak__malloc_stats_format(char *buf, size_t len);
HAK_HIDDEN int hak__malloc_info_write(FILE *fp); /* stdio, no hakmem lock held */

#endif
