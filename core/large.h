/* large.h: layer 3, blocks above HAK_SMALL_MAX and over-aligned ones (large.c): one mapping
 * each, found through a sharded open-addressing table, and a cache of freed mappings whose
 * limits and release times the trim policy sets (large_limits, large_release). */
#ifndef HAK_LARGE_H
#define HAK_LARGE_H

#include "base.h"
#include "hakmem_policy.h"

HAK_HIDDEN void *hak__large_alloc(size_t n, size_t align, bool zero); /* NULL + ENOMEM */
/* false: p is not a large block. *wants_pass: a mapping was cached while no trim pass knew
 * that cached mappings wait (the caller tells the trim policy, outside its guard). */
HAK_HIDDEN bool hak__large_free(void *p, bool *wants_pass);
HAK_HIDDEN size_t hak__large_usable(const void *p); /* 0: not a large block */
HAK_HIDDEN void *hak__large_realloc(void *p, size_t n, bool *handled);
/* Unmap cached mappings idle for at least min_idle_ns, oldest first, until at most keep_bytes
 * stay cached; every pass of the trim policy ends the "a pass is wanted" state. */
HAK_HIDDEN unsigned hak__large_release(uint64_t min_idle_ns, uint64_t keep_bytes, uint64_t now);
HAK_HIDDEN void hak__large_set_limits(const struct hak_large_limits *limits);
HAK_HIDDEN void hak__large_default_limits(struct hak_large_limits *out);
HAK_HIDDEN void hak__large_get_limits(struct hak_large_limits *out);
HAK_HIDDEN void hak__large_facts(struct hak_heap_facts *out); /* the large fields */
HAK_HIDDEN void hak__large_stats(uint64_t *live, uint64_t *cached, uint64_t *mapped_total,
				 uint64_t *released_total);
struct hak_large_figures {
	uint64_t live, live_bytes;     /* mappings of blocks the program holds, their lengths */
	uint64_t peak, peak_bytes;     /* the most of each at any one time */
	uint64_t cached, cached_bytes; /* freed mappings kept for reuse */
};
HAK_HIDDEN void hak__large_figures(struct hak_large_figures *out); /* introspection */
HAK_HIDDEN bool hak__large_fork_prepare(void); /* fork.c: through hak__fork_take (lock.h) */
HAK_HIDDEN void hak__large_fork_child(void);

#endif
