/* os.h: layer 0, everything hakmem asks of the kernel (os.c): single aligned mappings counted
 * against the mapping budget, purges, the metadata arena, the clock, the process's RSS. */
#ifndef HAK_OS_H
#define HAK_OS_H

#include "base.h"

HAK_HIDDEN void *hak__os_map(size_t size, size_t align); /* one mapping, aligned; NULL + ENOMEM */
HAK_HIDDEN void hak__os_unmap(void *p, size_t size);     /* preserves errno */
HAK_HIDDEN void hak__os_purge(void *p, size_t size);     /* MADV_DONTNEED, preserves errno */
HAK_HIDDEN void hak__os_advise_table(void *p, size_t size); /* sparse table: no THP, no dump */
HAK_HIDDEN void *hak__meta_alloc(size_t size);           /* zeroed, never freed, 64-aligned */
HAK_HIDDEN void hak__os_set_map_budget(unsigned long budget);
HAK_HIDDEN unsigned long hak__os_map_budget(void);
HAK_HIDDEN uint64_t hak__now_ns(void);                   /* CLOCK_MONOTONIC */
HAK_HIDDEN uint64_t hak__process_rss(void);              /* bytes, from /proc/self/statm; 0 if unknown */
HAK_HIDDEN long hak__os_mappings(void);                  /* live mappings hakmem made */
HAK_HIDDEN long hak__os_mappings_peak(void);
HAK_HIDDEN bool hak__os_fork_prepare(void); /* fork.c: through hak__fork_take (lock.h) */
HAK_HIDDEN void hak__os_fork_child(void);

#endif
