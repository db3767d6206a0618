/* trace.h: recording every allocation call of the process into a trace file (HAKMEM_TRACE,
 * [core] trace, `hakmem record`); the file's layout is trace_format.h's. What the rest of the
 * core calls: the switch, the slow-path hooks, the entry-point wrappers, the thread-state hooks.
 *
 * Off costs nothing on the fast paths: they are not touched. On, every call misses them: the
 * constructor points malloc's size table (hak__tc_off_of_small) at a field that is always NULL,
 * so every small malloc finds an empty cache, and marks every cache's `accept` with
 * HAK_ACCEPT_TRACED, a bit no slab owner has, so every free fails the owner test. The slow paths
 * then hand the call to trace.c, which uses the real caches (and free_from unmasks accept). */
#ifndef HAK_TRACE_H
#define HAK_TRACE_H

#include "alloc.h"

/* Nonzero while recording: the slow paths and the entry points call the hooks. */
HAK_HIDDEN extern _Atomic int hak__xtrace_on;

HAK_INLINE bool hak__tracing(void)
{
	return unlikely(hak_load_relaxed(&hak__xtrace_on) != 0);
}

/* The constructor, after the configuration is read: starts recording into `path` (NULL or ""
 * : nothing). Any failure is one `hakmem:` line and no recording. */
HAK_HIDDEN void hak__trace_start(const char *path);
/* The destructor: writes what every thread recorded so far, and the process's END record. */
HAK_HIDDEN void hak__trace_finish(void);

/* A thread's exit hook runs (registered with thread.c while recording); its later calls go to
 * the shared orphan stream. */
HAK_HIDDEN void hak__trace_thread_exit(void);

/* alloc.c: the slow paths, while recording, hand every call over: trace.c makes it (the fast
 * paths' pop and push with the real cache and accept, else the untraced slow path) and records
 * it. */
HAK_HIDDEN void *hak__trace_malloc(size_t n);
HAK_HIDDEN void hak__trace_free(void *p);
/* alloc.c: the slow paths themselves, without the hand-over. */
HAK_HIDDEN void *hak__malloc_untraced(size_t n);
HAK_HIDDEN void hak__free_untraced(void *p);

/* api.c: the entry points that are not plain malloc and free, while recording. Each makes the
 * real call (nested slow paths record nothing) and records it as one operation. */
HAK_HIDDEN void *hak__trace_calloc(size_t n, size_t size);
HAK_HIDDEN void *hak__trace_realloc(void *p, size_t n);
HAK_HIDDEN void *hak__trace_memalign(unsigned kind, size_t align, size_t n); /* enum hak_trace_align_kind */
HAK_HIDDEN void hak__trace_free_sized(void *p, size_t size, size_t align);   /* align 0: free_sized */
HAK_HIDDEN void hak__trace_trim(size_t pad);

#endif
