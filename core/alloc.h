/* alloc.h: layer 8, what the allocation slow paths share (init.c, malloc.c, free.c, realloc.c,
 * memalign.c): start-up, the re-entry guard, the thread-state lookup, the one pointer check,
 * and the entry points api.c exports. The fast paths are in alloc_fast.h. */
#ifndef HAK_ALLOC_H
#define HAK_ALLOC_H

#include "superslab.h"
#include "thread.h"

HAK_HIDDEN void hak__init(void); /* the core on its built-in policies; idempotent, thread-safe */
HAK_HIDDEN extern _Atomic int hak__inited;

HAK_INLINE void hak__init_once(void)
{
	if (unlikely(!hak_load_acquire(&hak__inited)))
		hak__init();
}

/* Nonzero while this thread is inside a slow path (which may hold a lock or have a list half
 * updated). Entering again on the same thread can only be a signal handler calling malloc or
 * free: say so and abort, instead of deadlocking on our own lock or corrupting the heap. */
HAK_HIDDEN extern __thread int hak__busy;
HAK_HIDDEN _Noreturn void hak__reentered(const char *what);

HAK_INLINE void hak__enter(const char *what)
{
	if (unlikely(hak__busy))
		hak__reentered(what);
	hak__busy = 1;
}

HAK_INLINE void hak__leave(void)
{
	hak__busy = 0;
}

/* The calling thread's state, made (outside the guard: making it may allocate) if needed;
 * NULL when the thread is past its exit hook. */
HAK_INLINE struct hak_thread *hak__current(void)
{
	struct hak_thread *t = hak__tls;
	return likely(t->state == HAK_THREAD_LIVE) ? t : hak__thread_get();
}

/* After a slow path, outside the guard: what the policies asked for (malloc.c). */
HAK_HIDDEN void hak__after_slow(void);

/* p must be a small block hakmem handed out: its slab, or NULL when p is in no SuperSlab
 * (a large block, or not hakmem's: the caller decides). A pointer into a SuperSlab that is not
 * a block's start, or (with check_freed) a block already free: one line naming `what`, abort. */
HAK_HIDDEN struct hak_slab *hak__ptr_check(const void *p, const char *what, bool check_freed);

HAK_HIDDEN void *hak__alloc_class(unsigned cls); /* the slow path of a small class */
HAK_HIDDEN void *hak__large_alloc_guarded(size_t n, size_t align, bool zero);

HAK_HIDDEN HAK_NOINLINE void *hak__malloc_slow(size_t n);
HAK_HIDDEN HAK_NOINLINE void hak__free_slow(void *p);
HAK_HIDDEN void *hak__malloc(size_t n);
HAK_HIDDEN void hak__free(void *p);
HAK_HIDDEN void *hak__calloc(size_t n, size_t size);
HAK_HIDDEN void *hak__realloc(void *p, size_t n);
HAK_HIDDEN void *hak__memalign(size_t align, size_t n);
HAK_HIDDEN size_t hak__usable_size(const void *p);

#endif
