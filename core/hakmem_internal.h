/* hakmem_internal.h: the core's types, constants and cross-file internals.
 *
 * Glossary
 *   SuperSlab    one mmap'ed region of 1 or 2 MB, aligned to its size, registered in the
 *                address map. Its header (this file's struct hak_superslab) sits at its base.
 *   unit         64 KB piece of a SuperSlab; a slab is a run of 1 to 8 units.
 *   slab         a run of units holding blocks of one size class, carved lazily (bump pointer).
 *   size class   one of HAK_NCLASSES block sizes, 16 B .. 128 KB, at most 12.5% apart above 128 B.
 *   TLS cache    per thread, per class, a singly linked stack of free blocks: the fast paths.
 *   remote queue per slab, a lock-free MPSC stack where non-owners push the blocks they free.
 *   owner        the thread token allowed to cache a slab's blocks (Option G), or HAK_OWNER_ANY
 *                (Option F), or HAK_OWNER_NONE (abandoned, waiting for adoption or trim).
 *   empty reserve empty SuperSlabs kept mapped for reuse instead of being unmapped.
 *   active count per SuperSlab, blocks that left slab land (into a TLS cache or to the program)
 *                minus blocks that came back (cache flush, foreign free). At quiescence, with
 *                caches flushed, it equals the program's live blocks exactly.
 *   large block  anything above HAK_SMALL_MAX: its own mapping, found through a hash table.
 */
#ifndef HAKMEM_INTERNAL_H
#define HAKMEM_INTERNAL_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hakmem_policy.h"
#include "log.h"

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define HAK_NOINLINE __attribute__((noinline))
#define HAK_INLINE static inline __attribute__((always_inline))

/* ---- Geometry ------------------------------------------------------------------------------- */
#define HAK_UNIT_SHIFT 16                       /* 64 KB units */
#define HAK_UNIT_SIZE ((size_t)1 << HAK_UNIT_SHIFT)
#define HAK_SS_LG_MIN 20                        /* 1 MB */
#define HAK_SS_LG_MAX 21                        /* 2 MB */
#define HAK_SS_MAX_UNITS (1u << (HAK_SS_LG_MAX - HAK_UNIT_SHIFT))
#define HAK_SS_HEADER 4096                      /* bytes reserved for the header at the base */
#define HAK_SS_MAGIC 0x53534b48u                /* "HKSS" */
#define HAK_NCLASSES 88
#define HAK_SMALL_MAX ((size_t)128 << 10)       /* largest size served from slabs */
#define HAK_ALIGN 16                            /* every block is at least this aligned */
#define HAK_MAX_MODELS 8                        /* ownership policies that may own SuperSlabs */

/* ---- Atomics: visible, with the order in the name (STYLE habit 3) ------------------------- */
#define hak_load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
#define hak_load_acquire(p) atomic_load_explicit((p), memory_order_acquire)
#define hak_store_relaxed(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define hak_store_release(p, v) atomic_store_explicit((p), (v), memory_order_release)
#define hak_add_relaxed(p, v) atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define hak_xchg_acq_rel(p, v) atomic_exchange_explicit((p), (v), memory_order_acq_rel)
#define hak_cas_acq_rel(p, expp, v) \
	atomic_compare_exchange_weak_explicit((p), (expp), (v), memory_order_acq_rel, memory_order_acquire)
#define hak_cas_strong(p, expp, v) \
	atomic_compare_exchange_strong_explicit((p), (expp), (v), memory_order_acq_rel, memory_order_acquire)

/* ---- Size classes (size_class.c) ----------------------------------------------------------- */
struct hak_class_info {
	uint32_t block_size; /* bytes per block, multiple of 16 */
	uint8_t slab_units;  /* units per slab: 1 to 8 */
	uint16_t batch;      /* blocks per refill */
	uint16_t cache_max;  /* TLS cache limit before a flush */
	uint8_t div_shift;   /* block_size = 2^div_shift * m, m odd */
	uint64_t div_inv;    /* m^-1 mod 2^64 (hak__block_is_aligned) */
	uint16_t tc_off;     /* offsetof(struct hak_thread, cache[class]) */
};
HAK_HIDDEN extern struct hak_class_info hak__classes[HAK_NCLASSES];
HAK_HIDDEN extern uint8_t hak__class_of_small[1024 / 16 + 1]; /* index (n + 15) >> 4 */
HAK_HIDDEN extern uint16_t hak__tc_off_of_small[1024 / 16 + 1]; /* that class's tc_off */
_Static_assert(HAK_NCLASSES * 16 < 65536, "tc_off is 16 bits");

HAK_HIDDEN void hak__size_classes_init(void);
HAK_HIDDEN unsigned hak__size_to_class_slow(size_t n); /* n <= HAK_SMALL_MAX */

/* Class of a request of n bytes, n <= HAK_SMALL_MAX. Budget: one load for n <= 1 KB. */
HAK_INLINE unsigned hak__size_to_class(size_t n)
{
	if (likely(n <= 1024))
		return hak__class_of_small[(n + 15) >> 4];
	return hak__size_to_class_slow(n);
}

/* ---- Slabs and SuperSlabs (superslab.c) ---------------------------------------------------- */
struct hak_superslab;
struct hak_model;

struct hak_slab {
	/* ---- first cache line: everything the free fast path reads ---- */
	_Atomic uintptr_t xowner;      /* HAK_OWNER_* or a thread token */
	char *start;                   /* first block */
	uint64_t div_inv;              /* copy of the class's, for the block-start test */
	_Atomic uint64_t xcarved;      /* copy of `carved` the free path reads unlocked (64 bits:
					* it compares with one instruction) */
	uint16_t tc_off;               /* offset of the class's cache in struct hak_thread */
	uint8_t div_shift;             /* copy of the class's */
	uint8_t nunits;                /* units in this slab, 0 when the slot is unused */
	uint16_t cls;                  /* size class */
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
	uint8_t model;                         /* index in hak__models: the ownership policy */
	uint8_t on_list;                       /* which pool list holds it (superslab.c) */
	uint8_t idle_seen;                     /* empty at the last hak__release_idle_empty */
	_Atomic int64_t xactive;               /* blocks out of slab land (see glossary) */
	uint32_t unit_mask;                    /* units in use by slabs (pool lock) */
	uint32_t dirty_mask;                   /* free units touched since their last purge */
	uint32_t aged_mask;                    /* dirty units already free at the previous pass */
	const struct hak_policy_desc *size_by; /* the SuperSlab size policy that made it */
	struct hak_superslab *next, *prev;     /* pool lists (pool lock) */
	struct hak_superslab *all_next, *all_prev; /* every mapped SuperSlab (pool lock) */
	struct hak_slab *unit_slab[HAK_SS_MAX_UNITS]; /* unit -> its slab (stale for free units) */
	struct hak_slab slabs[HAK_SS_MAX_UNITS]; /* valid where nunits != 0 */
};
_Static_assert(sizeof(struct hak_superslab) <= HAK_SS_HEADER, "SuperSlab header too large");

/* The address map: 64 KB units -> the slab holding them, two levels so only touched leaves
 * cost memory. Every unit of a mapped SuperSlab has an entry (a slab, or the idle slot of a
 * free unit); addresses hakmem never mapped read NULL. Every first-level entry points at a
 * leaf; the unused ones at one shared, never written leaf of NULLs (.bss), so a lookup needs
 * no test between its two loads. A leaf covers 16 GB and takes 2 MB of address space, of
 * which only the pages holding entries of mapped SuperSlabs are ever touched. */
#define HAK_MAP_L1_BITS 13 /* address bits 34..46 */
#define HAK_MAP_L2_BITS 18 /* address bits 16..33 */
#define HAK_MAP_L1_SHIFT (HAK_UNIT_SHIFT + HAK_MAP_L2_BITS)
HAK_HIDDEN extern struct hak_slab **_Atomic hak__map[1u << HAK_MAP_L1_BITS];
HAK_HIDDEN extern struct hak_slab *hak__map_zero_leaf[1u << HAK_MAP_L2_BITS];

/* The slab whose unit holds p, or NULL when hakmem did not map p: exact, for the slow paths. */
HAK_INLINE struct hak_slab *hak__slab_lookup(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	if (unlikely(a >> (HAK_MAP_L1_SHIFT + HAK_MAP_L1_BITS)))
		return NULL;
	struct hak_slab **leaf = hak_load_relaxed(&hak__map[a >> HAK_MAP_L1_SHIFT]);
	return leaf[(a >> HAK_UNIT_SHIFT) & ((1u << HAK_MAP_L2_BITS) - 1)];
}

/* The same for the free fast path, without the range test: an address beyond 47 bits aliases
 * into the map, and the block-start test that follows (its quotient is then far beyond the
 * slab's carved blocks) turns it away. Budget: two dependent loads, four ALU operations. */
HAK_INLINE struct hak_slab *hak__slab_lookup_fast(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	struct hak_slab **leaf =
		hak_load_relaxed(&hak__map[(a >> HAK_MAP_L1_SHIFT) & ((1u << HAK_MAP_L1_BITS) - 1)]);
	return leaf[(a >> HAK_UNIT_SHIFT) & ((1u << HAK_MAP_L2_BITS) - 1)];
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
 * checks divisibility and range at once. Budget: sub, multiply, rotate, compare. */
HAK_INLINE bool hak__block_is_aligned(const struct hak_slab *s, const void *p)
{
	uint64_t q = (uint64_t)((const char *)p - s->start) * s->div_inv;
	unsigned k = s->div_shift;
	q = (q >> k) | (q << ((64 - k) & 63));
	return q < hak_load_relaxed(&s->xcarved);
}

HAK_HIDDEN struct hak_slab *hak__slab_acquire(unsigned cls, uintptr_t owner, unsigned model);
HAK_HIDDEN void hak__slab_release(struct hak_slab *s);
HAK_HIDDEN unsigned hak__slab_take(struct hak_slab *s, unsigned max, struct hak_chain *out);
HAK_HIDDEN void hak__chain_return(struct hak_chain chain, void (*on_slab_free)(void *, hak_slab *), void *ctx);
HAK_HIDDEN void hak__slab_info(const struct hak_slab *s, struct hak_slab_info *out);
HAK_HIDDEN void hak__remote_push(struct hak_slab *s, void *block);
HAK_HIDDEN unsigned hak__remote_drain(struct hak_slab *s);
HAK_HIDDEN void hak__slab_abandon(struct hak_slab *s);
HAK_HIDDEN struct hak_slab *hak__slab_adopt(unsigned cls, uintptr_t owner);
HAK_HIDDEN unsigned hak__abandoned_collect(void);
HAK_HIDDEN extern _Atomic int hak__abandoned_dirty; /* a block was freed into an abandoned slab */
HAK_HIDDEN unsigned hak__release_empty(unsigned keep);
HAK_HIDDEN unsigned hak__release_idle_empty(void);
HAK_HIDDEN uint64_t hak__purge_free(int aged_only);
HAK_HIDDEN unsigned hak__empty_count(void);
HAK_HIDDEN uint64_t hak__live_superslabs(void);
HAK_HIDDEN uint64_t hak__live_superslabs_of(unsigned lg); /* live SuperSlabs of 2^lg bytes */
HAK_HIDDEN void hak__superslab_fork_prepare(void);
HAK_HIDDEN void hak__superslab_fork_parent(void);
HAK_HIDDEN void hak__superslab_fork_child(void);
/* Expensive invariant check for tests: sums and lists agree. Returns 0 or the bad count. */
HAK_HIDDEN int64_t hak__superslab_active_total(void);

/* ---- OS layer (os.c) ---------------------------------------------------------------------- */
HAK_HIDDEN void *hak__os_map(size_t size, size_t align); /* one mapping, aligned; NULL + ENOMEM */
HAK_HIDDEN void hak__os_unmap(void *p, size_t size);     /* preserves errno */
HAK_HIDDEN void hak__os_purge(void *p, size_t size);     /* MADV_DONTNEED, preserves errno */
HAK_HIDDEN void *hak__meta_alloc(size_t size);           /* zeroed, never freed, 16-aligned */
HAK_HIDDEN void hak__os_set_map_budget(unsigned long budget);
HAK_HIDDEN unsigned long hak__os_map_budget(void);
HAK_HIDDEN uint64_t hak__now_ns(void);
HAK_HIDDEN void hak__os_fork_prepare(void);
HAK_HIDDEN void hak__os_fork_parent(void);
HAK_HIDDEN void hak__os_fork_child(void);
HAK_HIDDEN extern _Atomic long hak__mappings;      /* live mappings hakmem made */
HAK_HIDDEN extern _Atomic long hak__mappings_peak;

/* ---- Thread state (heap.c) ---------------------------------------------------------------- */
struct hak_tcache {
	void *head;     /* top of the stack of free blocks, linked through word 0 */
	uint32_t room;  /* blocks the stack may still take: max - count; 0 in the sentinels */
	uint16_t max;   /* blocks it holds at most: a free that finds no room flushes half */
	uint16_t want;  /* blocks the next refill brings: slow start up to the class batch */
};

/* The free fast path decrements the room before it knows there was any: a full cache is left
 * with room UINT32_MAX on the way to the slow path, which treats any room above max as none.
 * After a fork from a signal handler that interrupted a fast path the room may also be one
 * off; the slow paths walk the stack rather than trust it. */
HAK_INLINE bool hak__tc_full(const struct hak_tcache *tc)
{
	return tc->room == 0 || tc->room > tc->max;
}

enum hak_thread_state { HAK_THREAD_BOOT = 0, HAK_THREAD_LIVE = 1, HAK_THREAD_GONE = 2 };

struct hak_thread {
	/* First, so that the zeros of hak__tc_off_of_small before hak__init() (a malloc from
	 * another library's constructor, before ours) name cache[0], empty in the sentinels. */
	struct hak_tcache cache[HAK_NCLASSES];
	uintptr_t token;        /* owner token (the struct's address) */
	uintptr_t accept;       /* slab owner whose blocks it caches: token (G) or HAK_OWNER_ANY (F) */
	uint64_t local_frees;   /* frees that went to this cache: the only fast-path counter */
	/* ---- cold ---- */
	int state;              /* enum hak_thread_state */
	struct hak_model *model; /* ownership policy this thread's slabs follow */
	void *own_tstate;       /* that policy's per-thread state */
	uint64_t remote_frees;  /* blocks freed here that went to another owner */
	uint64_t counters[4];   /* enum hak_counter */
	struct hak_thread *next_live, *prev_live; /* registry of live threads (heap lock) */
	struct hak_thread *next_free;             /* recycled structs (heap lock) */
	_Atomic int plock;      /* policy lock: hak__policy_enter */
	size_t alloc_size;      /* bytes of this struct plus policy state */
	uint32_t units_taken;   /* units of the slabs acquired or adopted for its token since the
				 * state was made: a small state is parked at exit, a big one settled */
	void *trace_null;       /* always NULL: while recording, malloc's size table names it as
				 * every small size's cache, so every malloc misses (trace.c) */
};
_Static_assert(offsetof(struct hak_thread, cache) == 0, "see struct hak_thread");

HAK_HIDDEN extern __thread struct hak_thread *hak__tls;
/* The policy lock of a thread state. The thread holds it around every call into its ownership
 * policy that touches the policy's per-thread state or its slabs' private lists (refill,
 * flush, thread_exit); a trim pass takes it with a try, so it can reclaim for a thread that
 * sleeps (ownership op `reclaim`). Uncontended cost: one exchange and one store per refill or
 * flush, which move a batch of blocks each. */
HAK_INLINE void hak__policy_enter(struct hak_thread *t)
{
	while (atomic_exchange_explicit(&t->plock, 1, memory_order_acquire))
		sched_yield(); /* a trim pass is reclaiming for this thread: it is short */
}

HAK_INLINE bool hak__policy_try(struct hak_thread *t)
{
	return !atomic_exchange_explicit(&t->plock, 1, memory_order_acquire);
}

HAK_INLINE void hak__policy_leave(struct hak_thread *t)
{
	atomic_store_explicit(&t->plock, 0, memory_order_release);
}

HAK_HIDDEN struct hak_thread *hak__thread_get(void); /* creates the state; NULL when gone */
HAK_HIDDEN void hak__thread_flush(struct hak_thread *t);
HAK_HIDDEN unsigned hak__threads_reclaim(void); /* trim passes: the ownership op `reclaim` */
HAK_HIDDEN void hak__thread_retire(struct hak_thread *t);
HAK_HIDDEN void hak__thread_restart(void); /* retire the caller's state; next use makes one anew */
HAK_HIDDEN void hak__heap_fork_prepare(void);
HAK_HIDDEN void hak__heap_fork_parent(void);
HAK_HIDDEN void hak__heap_fork_child(bool self_consistent);
HAK_HIDDEN void hak__orphan_lock(void);
HAK_HIDDEN void hak__orphan_unlock(void);
HAK_HIDDEN struct hak_thread *hak__orphan(void);
HAK_HIDDEN void hak__threads_sum(uint64_t *local, uint64_t *remote, uint64_t counters[4]);
/* Retire the parked states of exited threads (their slabs settle: released or abandoned).
 * _try: from a path that may hold a policy lock; does nothing when the heap lock is busy. */
HAK_HIDDEN unsigned hak__threads_reap_parked(void);
HAK_HIDDEN unsigned hak__threads_reap_parked_try(void);

/* ---- Policies in force (policy.c) --------------------------------------------------------- */
struct hak_model {
	const struct hak_policy_desc *desc;  /* ownership descriptor */
	const struct hak_ownership_ops *ops;
	void *state;
	unsigned index;                      /* position in hak__models */
};
struct hak_active_policy {
	const struct hak_policy_desc *desc;
	void *state;
};
HAK_HIDDEN extern struct hak_model hak__models[HAK_MAX_MODELS];

/* The model's `reclaim` op, or NULL: a field since ABI 1.1, not read from older plugins. */
HAK_INLINE void (*hak__model_reclaim_op(const struct hak_model *m))(void *, hak_thread *, void *)
{
	return m->desc->abi_minor >= 1 ? m->ops->reclaim : NULL;
}
HAK_HIDDEN extern _Atomic unsigned hak__model_count;
HAK_HIDDEN extern struct hak_model *_Atomic hak__model_current;
HAK_HIDDEN extern struct hak_active_policy hak__trim_policy, hak__size_policy;
HAK_HIDDEN extern const struct hak_core_api hak__core_api;
HAK_HIDDEN extern const struct hak_policy_desc hak__builtin_trim_idle, hak__builtin_superslab_fixed,
	hak__builtin_ownership_tls;
HAK_HIDDEN void hak__policies_boot(void);       /* built-in defaults, no I/O */
HAK_HIDDEN const struct hak_policy_desc *hak__builtin_desc(uint32_t kind); /* builtin.c */
HAK_HIDDEN int hak__policy_install(const struct hak_policy_desc *d, void *state);
HAK_HIDDEN extern __thread unsigned hak__calling_model; /* set before each ownership call */
/* A policy's helper thread is running (spawn_helper succeeded since start-up or fork): a trim
 * helper retires parked thread states within a pass, so heap.c parks only then. */
HAK_HIDDEN extern _Atomic int hak__helper_running;
HAK_HIDDEN void hak__trim_notify_empty(void);
HAK_HIDDEN void hak__trim_run_pending(void);
HAK_HIDDEN void hak__trim_tick(void);
HAK_HIDDEN struct hak_trim_result hak__trim_pass(unsigned keep, int purge);
/* The pass the trim policy runs (core_api trim_pass): cached large mappings age instead. */
HAK_HIDDEN struct hak_trim_result hak__trim_pass_aging(unsigned keep, int purge);
HAK_HIDDEN void hak__policies_fork_prepare(void);
HAK_HIDDEN void hak__policies_fork_parent(void);
HAK_HIDDEN void hak__policies_fork_child(void);

/* ---- Allocation paths (alloc.c, large.c) -------------------------------------------------- */
HAK_HIDDEN void hak__init(void);
HAK_HIDDEN extern _Atomic int hak__inited;
HAK_HIDDEN extern uintptr_t hak__free_key;  /* random: marks free blocks in word 1 */
HAK_HIDDEN extern __thread int hak__busy;   /* this thread is inside a slow path */
HAK_HIDDEN void *hak__malloc(size_t n);
HAK_HIDDEN void hak__free(void *p);
HAK_HIDDEN void *hak__calloc(size_t n, size_t size);
HAK_HIDDEN void *hak__realloc(void *p, size_t n);
HAK_HIDDEN void *hak__memalign(size_t align, size_t n);
HAK_HIDDEN size_t hak__usable_size(const void *p);
HAK_HIDDEN void hak__cache_fill(struct hak_thread *t, unsigned cls, struct hak_chain chain);
HAK_HIDDEN void hak__account_chain(struct hak_chain chain, int sign);

HAK_HIDDEN void *hak__large_alloc(size_t n, size_t align, bool zero);
HAK_HIDDEN bool hak__large_free(void *p);            /* false: not a large block */
HAK_HIDDEN size_t hak__large_usable(const void *p);  /* 0: not a large block */
HAK_HIDDEN void *hak__large_realloc(void *p, size_t n, bool *handled);
HAK_HIDDEN unsigned hak__large_trim(size_t keep_bytes);
HAK_HIDDEN unsigned hak__large_age(void);        /* one aging pass; returns mappings still cached */
HAK_HIDDEN void hak__large_after_free(void);     /* outside the guard: may tick the trim policy */
HAK_HIDDEN void hak__large_stats(uint64_t *live, uint64_t *cached);
HAK_HIDDEN void hak__large_fork_prepare(void);
HAK_HIDDEN void hak__large_fork_parent(void);
HAK_HIDDEN void hak__large_fork_child(void);

/* ---- Counters (stats.c) ------------------------------------------------------------------- */
struct hak_stats {
	uint64_t ss_mapped, ss_released, ss_live, ss_peak_live;
	uint64_t ss_size_bytes;
	uint64_t frees_local, frees_remote;
	uint64_t adoptions, remote_drained, central_pops, central_pushes;
	uint64_t trim_passes, bytes_purged;
	uint64_t large_mapped, large_released, large_live, large_cached;
	uint64_t ss_empty;
	uint64_t ss_live_1m, ss_live_2m; /* live SuperSlabs by size */
	long mappings, mappings_peak;
	unsigned long map_budget;
	int64_t active_blocks;
};
struct hak_global_counters {
	_Atomic uint64_t ss_mapped, ss_released, ss_peak_live;
	_Atomic unsigned ss_last_lg; /* size of the newest SuperSlab */
	_Atomic uint64_t trim_passes, bytes_purged;
	_Atomic uint64_t large_mapped, large_released;
	_Atomic uint64_t retired_local, retired_remote; /* from threads that exited */
	_Atomic uint64_t retired_counters[4];
};
HAK_HIDDEN extern struct hak_global_counters hak__g;
HAK_HIDDEN void hak__stats_collect(struct hak_stats *out);
HAK_HIDDEN int hak__stats_format(char *buf, size_t len, int json);
HAK_HIDDEN void hak__stats_fd(int fd, int json);

#endif /* HAKMEM_INTERNAL_H */
