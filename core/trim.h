/* trim.h: layer 6, the trim primitives the core offers trim policies (trim.c), each doing one
 * thing over the layers below, and today's composite pass built on them. The core calls none of
 * them on its own (malloc_trim and hak_trim run the composite). */
#ifndef HAK_TRIM_H
#define HAK_TRIM_H

#include "base.h"
#include "hakmem_policy.h"

HAK_HIDDEN unsigned hak__trim_reap_parked(void);
HAK_HIDDEN void hak__trim_consolidate(void);
HAK_HIDDEN unsigned hak__trim_collect_abandoned(void);
HAK_HIDDEN unsigned hak__trim_reclaim_threads(void);
HAK_HIDDEN unsigned hak__trim_release_empty(unsigned floor, uint64_t min_empty_ns, unsigned max);
HAK_HIDDEN uint64_t hak__trim_purge(uint64_t min_free_ns, uint64_t max_bytes);
HAK_HIDDEN unsigned hak__trim_large_release(uint64_t min_idle_ns, uint64_t keep_bytes);
HAK_HIDDEN void hak__trim_facts(struct hak_heap_facts *out);
HAK_HIDDEN struct hak_trim_result hak__trim_pass(unsigned keep, unsigned flags);
HAK_HIDDEN uint64_t hak__trim_passes(void); /* composite passes run */
HAK_HIDDEN void hak__trim_fork_child(void);  /* fork.c */

#endif
