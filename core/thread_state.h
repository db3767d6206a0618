/* thread_state.h: the per-thread state's layout (layer 4 boundary): what the policy calls
 * (policy_call.h) and the fast paths read of a thread. Its functions are layer 5 (thread.h). */
#ifndef HAK_THREAD_STATE_H
#define HAK_THREAD_STATE_H

#include "size_class.h"

struct hak_policy;
struct hak_slab;

/* Counters a thread keeps for the core, declared once: the struct fields, the fold at exit and
 * the sums for the stats come from this list. (Local frees are counted per cache.) */
#define HAK_THREAD_COUNTERS(X)                                                                  \
	X(remote_frees, "frees of blocks another thread (or nobody) owned")                      \
	X(adoptions, "abandoned slabs taken over")                                               \
	X(remote_drained, "blocks moved from remote queues to free lists")
enum {
#define HAK__X(name, help) HAK_TCOUNT_##name,
	HAK_THREAD_COUNTERS(HAK__X)
#undef HAK__X
	HAK_TCOUNT_N
};
#define HAK_THREAD_PLUGIN_COUNTERS 16 /* scalar COUNT counters of plugins kept per thread */

enum hak_thread_state { HAK_THREAD_BOOT = 0, HAK_THREAD_LIVE = 1, HAK_THREAD_GONE = 2 };


struct hak_thread {
	/* Its caches: hak__tcs.cache of its thread while attached, else `home` (thread.c). */
	struct hak_tcache *cache;
	uintptr_t token;               /* owner token (the struct's address) */
	/* ---- cold ---- */
	int state;                     /* enum hak_thread_state */
	struct hak_policy *model;      /* the ownership policy this thread's slabs follow */
	void *own_tstate;              /* that policy's per-thread state */
	uint64_t counters[HAK_TCOUNT_N];
	uint64_t plugin_counters[HAK_THREAD_PLUGIN_COUNTERS];
	unsigned flush_epoch;          /* the request_cache_flush round this thread honoured */
	unsigned big_grew;             /* 1 + a big class whose slab took pages not resident yet:
					* the thread's other big caches go back (thread.c) */
	struct hak_thread *next_live, *prev_live; /* registry of live threads (thread lock) */
	struct hak_thread *next_free;  /* recycled structs and parked states (thread lock) */
	_Atomic int xplock;            /* policy lock: see policy_call.h */
	int fork_held;                 /* a fork holds xplock (thread.c: written by that fork only) */
	struct hak_thread *fork_next;  /* the states that fork holds (its holder's list, thread.c) */
	size_t alloc_size;             /* bytes of this struct plus policy state */
	uint32_t units_taken;          /* units of slabs acquired or adopted for its token since the
					* state was made: a small state is parked at exit, a big one
					* settled */
	int64_t out_bytes[2];          /* bytes of small blocks that left slab land through this
					* state (cache fills) minus those that came back (flushes,
					* foreign frees), by SuperSlab size (1 MB, 2 MB): written only by
					* whoever uses the state, summed for mallinfo2 (introspect.c) */
	int64_t out_blocks[2];         /* the same in blocks: summed over every state, the blocks out
					* of slab land (hak_active_blocks, DESIGN contract 6) */
	/* Foreign frees of one slab gathered for its policy's free_foreign_chain (free.c), handed
	 * over by hak__thread_foreign_flush: a chain of foreign_count blocks, marked free. */
	struct hak_slab *foreign_slab;
	void *foreign_head, *foreign_tail;
	uint32_t foreign_count;
	struct hak_tcache home[HAK_NCLASSES]; /* the caches while no thread's TLS holds them */
};

HAK_HIDDEN extern __thread struct hak_thread *hak__tls;

#endif
