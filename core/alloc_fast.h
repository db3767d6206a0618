/* alloc_fast.h: the two fast paths, inlined into the exported malloc and free (api.c).
 * Neither makes an indirect call, an atomic read-modify-write, or a system call. */
#ifndef HAK_ALLOC_FAST_H
#define HAK_ALLOC_FAST_H

#include "hakmem_internal.h"

HAK_HIDDEN HAK_NOINLINE void *hak__malloc_slow(size_t n);
HAK_HIDDEN HAK_NOINLINE void hak__free_slow(void *p);

/* room-- and the test that there was room, in one instruction and a branch: a full cache is
 * left at UINT32_MAX on the way to the slow path, which reads any room above max as none
 * (hak__tc_full). Compilers keep the counter in a register for the test otherwise (5 steps). */
HAK_INLINE bool hak__room_take(uint32_t *room)
{
#if defined(__x86_64__) && defined(__GNUC__)
	__asm__ goto("subl $1, %0\n\tjc %l[full]" : "+m"(*room) : : "cc" : full);
	return true;
full:
	return false;
#else
	return !__builtin_sub_overflow(*room, 1, room);
#endif
}

/* Pop a block from a cache, NULL when it is empty: the malloc fast path's and the medium
 * sizes' (hak__malloc_slow) common step. */
HAK_INLINE void *hak__tc_pop(struct hak_tcache *tc)
{
	void **b = tc->head;
	if (likely(b != NULL)) {
		tc->head = b[0];
		tc->room++;
		b[1] = NULL; /* clear the free mark so a later free is not taken for a double free */
	}
	return b;
}

/* malloc, n <= 1 KB with a warm cache. Budget (16 instructions and ret): size test, one table load,
 * the TLS pointer (two loads), a pop (load head, load next, store head), the room counter,
 * and the store that clears the free mark. */
HAK_INLINE void *hak__malloc_fast(size_t n)
{
	if (likely(n <= 1024)) {
		struct hak_tcache *tc =
			(struct hak_tcache *)((char *)hak__tls + hak__tc_off_of_small[(n + 15) >> 4]);
		void *b = hak__tc_pop(tc);
		if (likely(b != NULL))
			return b;
	}
	return hak__malloc_slow(n);
}

/* free of a small block this thread may cache. Budget (37 instructions and ret): address map
 * (two loads and a NULL test: 11), the TLS pointer (2), owner test (3), block-start test (a
 * multiply and a rotate: 8), free-mark test (4), cache and room (4), push (4 stores), the
 * local-free counter. Without the block-start and free-mark tests a pair costs 10 fewer.
 * A pointer hakmem did not hand out fails one of the tests and the slow path names it. */
HAK_INLINE void hak__free_fast(void *p)
{
	struct hak_slab *s = hak__slab_lookup_fast(p);
	if (likely(s != NULL)) {
		struct hak_thread *t = hak__tls;
		void **b = p;
		uintptr_t mark = hak__free_key ^ (uintptr_t)p;
		if (likely(hak_load_relaxed(&s->xowner) == t->accept && hak__block_is_aligned(s, p) &&
			   (uintptr_t)b[1] != mark)) {
			struct hak_tcache *tc = (struct hak_tcache *)((char *)t + s->tc_off);
			if (likely(hak__room_take(&tc->room))) {
				b[0] = tc->head;
				b[1] = (void *)mark;
				tc->head = b;
				t->local_frees++;
				return;
			}
		}
	}
	hak__free_slow(p);
}

#endif
