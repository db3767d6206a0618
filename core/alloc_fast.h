/* alloc_fast.h: the two fast paths, inlined into the exported malloc and free (api.c).
 * Neither makes an indirect call, an atomic read-modify-write, or a system call. */
#ifndef HAK_ALLOC_FAST_H
#define HAK_ALLOC_FAST_H

#include "hakmem_internal.h"

HAK_HIDDEN HAK_NOINLINE void *hak__malloc_slow(size_t n);
HAK_HIDDEN HAK_NOINLINE void hak__free_slow(void *p);

/* malloc, n <= 1 KB with a warm cache. Budget: one table load, one TLS load, a pop
 * (load head, load next, two stores) and the store that clears the free mark. */
HAK_INLINE void *hak__malloc_fast(size_t n)
{
	if (likely(n <= 1024)) {
		struct hak_tcache *tc = &hak__tls->cache[hak__class_of_small[(n + 15) >> 4]];
		void **b = tc->head;
		if (likely(b != NULL)) {
			tc->head = b[0];
			tc->count--;
			b[1] = NULL; /* clear the free mark so a later free is not taken for a double free */
			return b;
		}
	}
	return hak__malloc_slow(n);
}

/* free of a small block this thread may cache. Budget: address map (two loads), slab (one
 * load), owner test, cache room test, block-start test (one multiply), free-mark test, push
 * (three stores and a counter). */
HAK_INLINE void hak__free_fast(void *p)
{
	struct hak_superslab *ss = hak__ss_lookup_fast(p);
	if (likely(ss != NULL)) {
		struct hak_slab *s = hak__slab_of_ss(ss, p);
		struct hak_thread *t = hak__tls;
		uintptr_t owner = hak_load_relaxed(&s->xowner);
		struct hak_tcache *tc = &t->cache[s->cls];
		void **b = p;
		uintptr_t mark = hak__free_key ^ (uintptr_t)p;
		if (likely(owner == t->accept && tc->count < tc->max &&
			   hak__block_is_aligned(s, p) && (uintptr_t)b[1] != mark)) {
			b[0] = tc->head;
			b[1] = (void *)mark;
			tc->head = b;
			tc->count++;
			t->local_frees++;
			return;
		}
	}
	hak__free_slow(p);
}

#endif
