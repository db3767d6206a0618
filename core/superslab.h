/* superslab.h: the records at the base of every SuperSlab: the SuperSlab header (layer 2,
 * pool.c) and its slab records (layer 3, slab.c), with the inline lookups both layers and the
 * fast paths use. A SuperSlab is one mapping of 1 or 2 MB aligned to its size; its first 4 KB
 * hold this header; its 64 KB units are carved into slabs of 1 to 8 units. */
#ifndef HAK_SUPERSLAB_H
#define HAK_SUPERSLAB_H

#include "addrmap.h"
#include "hakmem_policy.h"
#include "size_class.h"

#define HAK_SS_MAGIC 0x53534b48u /* "HKSS" */

struct hak_superslab;

struct hak_slab {
	/* ---- first cache line: everything the free fast path reads ---- */
	_Atomic uintptr_t xowner;      /* HAK_OWNER_* or a thread token */
	char *start;                   /* first block */
	uint64_t div_inv;              /* copy of the class's, for the block-start test */
	_Atomic uint64_t xcarved;      /* copy of `carved` the free path reads unlocked (64 bits:
					* it compares with one instruction) */
	int32_t tls_off;               /* copy of the class's: where its cache is (hak__slab_cache;
					* 0 in a slot never used) */
	uint8_t div_shift;             /* copy of the class's */
	uint8_t nunits;                /* units in this slab, 0 when the slot is unused */
	uint8_t cls;                   /* size class */
	uint8_t first_unit;            /* index of its first unit */
	/* ---- the rest: slow paths ---- */
	void *free;                    /* private free list (owner, or the policy's lock) */
	uint32_t nfree;                /* blocks in `free` */
	uint32_t carved;               /* blocks handed out of the bump area so far */
	uint32_t capacity;             /* blocks this slab holds */
	uint32_t block_size;           /* copy of the class size */
	_Atomic(void *) xremote;       /* remote queue: MPSC stack linked through word 0 */
	struct hak_superslab *ss;      /* the SuperSlab it lives in */
	void *links[2];                /* for the owning policy's lists */
	struct hak_slab *abandon_next; /* link in the core's abandoned list */
};

struct hak_superslab {
	uint32_t magic;                        /* HAK_SS_MAGIC */
	uint8_t lg_size;                       /* 20 or 21 */
	uint8_t nunits;                        /* 16 or 32 */
	uint8_t model;                         /* the ownership policy that made it (its index) */
	uint8_t size_by;                       /* the SuperSlab size policy that made it (its index) */
	uint8_t on_list;                       /* which pool list holds it (pool.c) */
	uint16_t pool_gen;                     /* the pool's generation when mapped: a fork child
						* that forgot its lists forgets older ones (pool.c) */
#if HAK_DEBUG >= 2
	_Atomic int64_t xactive;               /* debug builds: its blocks out of slab land */
#endif
	uint32_t unit_mask;                    /* units in use by slabs (pool lock) */
	uint32_t dirty_mask;                   /* free units touched since their last purge */
	uint64_t empty_since_ns;               /* when the last slab went; 0 while not empty */
	struct hak_superslab *next, *prev;     /* pool lists (pool lock) */
	struct hak_superslab *all_next, *all_prev; /* every mapped SuperSlab (pool lock) */
	uint64_t unit_free_ns[HAK_SS_MAX_UNITS]; /* when each free unit became free (pool lock) */
	struct hak_slab *unit_slab[HAK_SS_MAX_UNITS]; /* unit -> its slab (stale for free units) */
	struct hak_slab slabs[HAK_SS_MAX_UNITS]; /* valid where nunits != 0 */
};
_Static_assert(sizeof(struct hak_superslab) <= HAK_SS_HEADER, "SuperSlab header too large");
_Static_assert(sizeof(struct hak_slab) <= HAK_FLAT_ENTRIES_AT, "the flat map's sentinel fits M's first page");
_Static_assert(offsetof(struct hak_slab, free) <= 64, "the free fast path reads one cache line of a slab");
_Static_assert(HAK_NCLASSES <= 256, "a slab's class is 8 bits");

/* The calling thread's cache of s's class (size_class.h: tls_off). */
HAK_INLINE struct hak_tcache *hak__slab_cache(const struct hak_slab *s)
{
#if HAK_TLS_FROM_TP
	return (struct hak_tcache *)((char *)__builtin_thread_pointer() + s->tls_off);
#else
	return (struct hak_tcache *)((char *)&hak__tcs + s->tls_off);
#endif
}

/* Debug builds (HAK_DEBUG >= 2) keep each SuperSlab's count of blocks out of slab land, to
 * check that one whose slabs have all gone back has none (pool.c) and that the thread states'
 * counts add up to the SuperSlabs' (the unit tests). Other builds keep only the per-thread
 * counts (thread_state.h): no decision reads a SuperSlab's count (trim goes by unit_mask), and
 * an atomic on the header line at every foreign free and refill cost a third of the CPU of a
 * producer/consumer program (bench/RESULTS.md, issue 12). */
HAK_INLINE void hak__ss_active_add(struct hak_superslab *ss, int64_t n)
{
#if HAK_DEBUG >= 2
	hak_add_relaxed(&ss->xactive, n);
#else
	(void)ss, (void)n;
#endif
}

/* A slab's SuperSlab: the slab records live in the header, in the first page of the
 * SuperSlab, which is aligned to at least 1 MB. */
HAK_INLINE struct hak_superslab *hak__ss_of_slab(const struct hak_slab *s)
{
	return (struct hak_superslab *)((uintptr_t)s & ~(uintptr_t)(HAK_SS_HEADER - 1));
}

/* SuperSlab holding p, or NULL: exact, for the slow paths. */
HAK_INLINE struct hak_superslab *hak__ss_lookup(const void *p)
{
	struct hak_slab *s = hak__slab_lookup(p);
	return s ? hak__ss_of_slab(s) : NULL;
}

HAK_INLINE struct hak_slab *hak__slab_of_ss(struct hak_superslab *ss, const void *p)
{
	return ss->unit_slab[(((uintptr_t)p - (uintptr_t)ss) >> HAK_UNIT_SHIFT) & (HAK_SS_MAX_UNITS - 1)];
}

/* 1 when p is the start of a block of s that was carved, so an interior pointer, a pointer
 * into the slab's tail or header, and a pointer into a slab made anew since (a stale pointer,
 * a late double free) are not taken for a live block.
 * The block size is 2^k * m with m odd, and inv * m == 1 (mod 2^64). For off = p - start,
 * rotr(off * inv, k) is off / size when size divides off, and otherwise at least
 * 2^64 / size / 2 (the usual exact-division test), so one compare against the carved count
 * checks divisibility and range at once. Budget: sub, multiply, rotate, compare with the
 * carved count in memory. hak__block_index is that quotient: the block's index in its slab
 * when p is a block start. */
HAK_INLINE uint64_t hak__block_index(const struct hak_slab *s, const void *p)
{
	uint64_t q = (uint64_t)((const char *)p - s->start) * s->div_inv;
	unsigned k = s->div_shift;
	return (q >> k) | (q << ((64 - k) & 63));
}

HAK_INLINE bool hak__block_is_aligned(const struct hak_slab *s, const void *p)
{
	uint64_t q = hak__block_index(s, p);
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__SANITIZE_THREAD__)
	/* The compare reads xcarved itself: an aligned 8-byte load, a relaxed atomic read on
	 * x86-64, which compilers otherwise load into a register first (one more instruction).
	 * ThreadSanitizer builds keep the C11 load, which it sees. */
	__asm__ goto("cmpq %0, %1\n\tjae %l[outside]" : : "m"(s->xcarved), "r"(q) : "cc" : outside);
	return true;
outside:
	return false;
#else
	return q < hak_load_relaxed(&s->xcarved);
#endif
}

#endif
