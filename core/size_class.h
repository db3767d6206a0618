/* size_class.h: layer 0, the size classes (size_class.c): 16 B .. 128 KB, 8 per doubling
 * above 128 B, the units per slab of each, refill batches, cache limits, and the tables the
 * malloc fast path reads. Filled once by hak__size_classes_init, before any allocation. */
#ifndef HAK_SIZE_CLASS_H
#define HAK_SIZE_CLASS_H

#include "tcache.h"

struct hak_class_info {
	uint32_t block_size; /* bytes per block, multiple of 16 */
	uint8_t slab_units;  /* units per slab: 1 to 8 */
	uint16_t batch;      /* blocks per refill */
	uint16_t cache_max;  /* TLS cache limit before a flush */
	uint8_t div_shift;   /* block_size = 2^div_shift * m, m odd */
	uint64_t div_inv;    /* m^-1 mod 2^64 (hak__block_is_aligned) */
	uint16_t tc_off;     /* offset of the class's cache in hak__tcs */
	int32_t tls_off;     /* that cache's offset from the thread pointer (the same in every
			      * thread: static TLS) where the compiler has the thread pointer
			      * (HAK_TLS_FROM_TP), else tc_off: what the free fast path adds */
};
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__aarch64__)) && \
	(defined(__clang__) || __GNUC__ >= 11)
#define HAK_TLS_FROM_TP 1 /* __builtin_thread_pointer() */
#else
#define HAK_TLS_FROM_TP 0
#endif

/* The calling thread's caches, in static initial-exec TLS (defined in size_class.c): the fast
 * paths reach a cache at a fixed offset from the thread pointer (the class's tc_off within
 * hak__tcs, tls_off from the thread pointer), with no state pointer to load. They hold the
 * caches of the thread's state while it is attached (thread.c, thread_state.h: only from the
 * malloc slow path, and only a state whose exit hook will detach it again); otherwise every
 * cache is empty and accepts HAK_TLS_NOBODY, an owner no slab has, so both fast paths miss. The
 * zeros of hak__tc_off_of_small before hak__init() name cache[0]: empty then too. */
#define HAK_TLS_NOBODY ((uintptr_t)2) /* the boot sentinel's token (thread.c) */
struct hak_tls_caches {
	struct hak_tcache cache[HAK_NCLASSES];
	void *trace_null; /* always NULL: while recording, malloc's size table names it as every
			   * small size's cache, so every malloc misses (trace.c) */
};
HAK_HIDDEN extern __thread struct hak_tls_caches hak__tcs;

HAK_HIDDEN extern struct hak_class_info hak__classes[HAK_NCLASSES];
HAK_HIDDEN extern uint8_t hak__class_of_small[1024 / 16 + 1]; /* index (n + 15) >> 4 */
/* The malloc fast path's table, indexed by the size itself (0 .. HAK_FAST_MAX): that size's
 * class's tc_off (2 KB, so the index needs no rounding). */
#define HAK_FAST_MAX 1024
HAK_HIDDEN extern uint16_t hak__tc_off_of_small[HAK_FAST_MAX + 1];
_Static_assert(HAK_NCLASSES * sizeof(struct hak_tcache) < 65536, "tc_off is 16 bits");

HAK_HIDDEN void hak__size_classes_init(void);
HAK_HIDDEN unsigned hak__size_to_class_slow(size_t n); /* n <= HAK_SMALL_MAX */
/* Big classes: above 16 KB, fewer than 8 blocks per slab (thread.c gives their caches back when
 * one of them grows the heap). */
#define HAK_BIG_BLOCK 16384
HAK_HIDDEN extern unsigned hak__first_big_class;

/* Class of a request of n bytes, n <= HAK_SMALL_MAX. Budget: one load for n <= 1 KB. */
HAK_INLINE unsigned hak__size_to_class(size_t n)
{
	if (likely(n <= 1024))
		return hak__class_of_small[(n + 15) >> 4];
	return hak__size_to_class_slow(n);
}

#endif
