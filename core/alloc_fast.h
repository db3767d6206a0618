/* alloc_fast.h: layer 8, the two fast paths, inlined into the exported malloc and free (api.c).
 * Neither makes an indirect call, an atomic read-modify-write, or a system call. Their slow
 * paths and the call tree below them: malloc.c. */
#ifndef HAK_ALLOC_FAST_H
#define HAK_ALLOC_FAST_H

#include "alloc.h"

/* HAK_FAST_ASM: the exported malloc and free are these two hand-scheduled for x86-64
 * (alloc_fast_x86_64.h), on by default there; `make FAST_ASM=0` builds the C ones, and so do
 * debug builds (`make test-debug` runs the end-to-end tests on them) and sanitizer builds.
 * calloc, cfree, free_sized and the unit tests always use the C versions below. */
#ifndef HAK_FAST_ASM
#if defined(__x86_64__) && defined(__GNUC__) && HAK_DEBUG == 0 && !defined(__SANITIZE_ADDRESS__) && \
	!defined(__SANITIZE_THREAD__)
#define HAK_FAST_ASM 1
#else
#define HAK_FAST_ASM 0
#endif
#endif

/* malloc, n <= 1 KB with a warm cache. Budget (15 instructions and ret; the asm: 12): size
 * test, one table load indexed by n, the address of the thread's caches (hak__tcs: its offset
 * from the GOT, the thread pointer, the add), a pop (load head, load next, store head), the
 * room counter, and the store that clears the free mark. */
HAK_INLINE void *hak__malloc_fast(size_t n)
{
	if (likely(n <= HAK_FAST_MAX)) {
		struct hak_tcache *tc = (struct hak_tcache *)((char *)&hak__tcs + hak__tc_off_of_small[n]);
		void *b = hak__tc_pop(tc);
		if (likely(b != NULL))
			return b;
	}
	return hak__malloc_slow(n);
}

/* free of a small block this thread may cache. Budget (30 instructions and ret; the asm: 28):
 * the flat address map (5: never NULL, addrmap.h), the address of the thread's caches (3), the
 * class's cache and owner test (4), the free mark (2), block-start test (a multiply, a rotate,
 * the carved count compared in memory: 7), free-mark test (2), room (2), push (4 stores and
 * the cache's free counter: 5). A pointer hakmem did not hand out
 * fails one of the tests (the flat map's sentinel fails them all) and the slow path names it. */
HAK_INLINE void hak__free_fast(void *p)
{
	struct hak_slab *s = hak__slab_lookup_fast(p);
	struct hak_tcache *tc = hak__slab_cache(s);
	uintptr_t mark = hak__block_mark(p); /* once: the asm of the room test is a barrier */
	if (likely(hak_load_relaxed(&s->xowner) == tc->accept && hak__block_is_aligned(s, p) &&
		   ((uintptr_t *)p)[1] != mark && hak__room_take(&tc->room))) {
		hak__tc_push_marked(tc, p, mark);
		return;
	}
	hak__free_slow(p);
}

#endif
