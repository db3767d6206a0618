/* thread.h: layer 5, per-thread state (thread.c): the caches the fast paths use, made on a
 * thread's first slow path, flushed and parked or settled at its exit, recycled, summed for the
 * stats, and what fork() does to them; plus the shared "orphan" state of threads past their exit.
 * The struct is declared here, below its layer, because the policy calls (layer 4) take it. */
#ifndef HAK_THREAD_H
#define HAK_THREAD_H

#include <pthread.h>
#include <sched.h>

#include "size_class.h"

struct hak_policy;

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
	/* First, so that the zeros of hak__tc_off_of_small before hak__init() (a malloc from
	 * another library's constructor, before ours) name cache[0], empty in the sentinels. */
	struct hak_tcache cache[HAK_NCLASSES];
	uintptr_t token;               /* owner token (the struct's address) */
	/* ---- cold ---- */
	int state;                     /* enum hak_thread_state */
	struct hak_policy *model;      /* the ownership policy this thread's slabs follow */
	void *own_tstate;              /* that policy's per-thread state */
	uint64_t counters[HAK_TCOUNT_N];
	uint64_t plugin_counters[HAK_THREAD_PLUGIN_COUNTERS];
	unsigned flush_epoch;          /* the request_cache_flush round this thread honoured */
	struct hak_thread *next_live, *prev_live; /* registry of live threads (thread lock) */
	struct hak_thread *next_free;  /* recycled structs and parked states (thread lock) */
	_Atomic int xplock;            /* policy lock: see policy_call.h */
	int fork_held;                 /* a fork holds xplock (thread.c; the thread lock held) */
	size_t alloc_size;             /* bytes of this struct plus policy state */
	uint32_t units_taken;          /* units of slabs acquired or adopted for its token since the
					* state was made: a small state is parked at exit, a big one
					* settled */
};
_Static_assert(offsetof(struct hak_thread, cache) == 0, "see struct hak_thread");

HAK_HIDDEN extern __thread struct hak_thread *hak__tls;

/* The calling thread's state, made (from the current ownership policy) if needed; NULL once the
 * thread is past its exit hook, or when no memory is left for a state. hak__init() ran. */
HAK_HIDDEN struct hak_thread *hak__thread_get(void);
HAK_HIDDEN struct hak_thread *hak__thread_sentinel_gone(void); /* the state of a gone thread */
HAK_HIDDEN void hak__thread_flush(struct hak_thread *t);     /* every cache, through the policy */
HAK_HIDDEN void hak__thread_retire(struct hak_thread *t);
HAK_HIDDEN void hak__thread_restart(void); /* retire the caller's state; next use makes one anew */
HAK_HIDDEN void hak__thread_count(struct hak_thread *t, unsigned which, uint64_t n); /* t may be NULL */

/* Parking of exited threads' states (the trim policy's set_parking). */
HAK_HIDDEN void hak__threads_set_parking(unsigned max_states, unsigned max_units);
HAK_HIDDEN bool hak__threads_parking_enabled(void);
/* Retire the parked states (their slabs settle: released or abandoned). _try: from a path that
 * may hold a policy lock; does nothing when the thread lock is busy. */
HAK_HIDDEN unsigned hak__threads_reap_parked(void);
HAK_HIDDEN unsigned hak__threads_reap_parked_try(void);
HAK_HIDDEN unsigned hak__threads_parked(void);
/* The ownership op `reclaim` for every live thread outside its slow paths. */
HAK_HIDDEN unsigned hak__threads_reclaim(void);
/* Live threads flush their caches at their next slow path (hak__thread_flush_if_asked). */
HAK_HIDDEN void hak__threads_request_flush(void);
HAK_HIDDEN void hak__thread_flush_if_asked(struct hak_thread *t);

/* Sums for the stats over live threads and those that exited. */
struct hak_thread_sums {
	uint64_t local_frees;
	uint64_t counters[HAK_TCOUNT_N];
	uint64_t plugin_counters[HAK_THREAD_PLUGIN_COUNTERS];
	uint64_t live, parked;
};
HAK_HIDDEN void hak__threads_sum(struct hak_thread_sums *out);
HAK_HIDDEN void hak__threads_class_frees(uint64_t *out, unsigned n); /* local frees per class */

/* The orphan state: shared, locked, for threads whose own state is gone. */
HAK_HIDDEN void hak__orphan_lock(void);
HAK_HIDDEN void hak__orphan_unlock(void);
HAK_HIDDEN struct hak_thread *hak__orphan(void); /* orphan lock held; NULL: no memory */

HAK_HIDDEN void hak__thread_init_hooks(void); /* once, from hak__init */
HAK_HIDDEN bool hak__threads_leader_gone(void); /* the main thread called pthread_exit() */
HAK_HIDDEN bool hak__thread_fork_prepare(void); /* fork.c: through hak__fork_take (lock.h) */
HAK_HIDDEN void hak__thread_fork_child(bool self_consistent);

#endif
