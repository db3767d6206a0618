/* thread.h: layer 5, per-thread state (thread.c): the caches the fast paths use, made on a
 * thread's first slow path, flushed and parked or settled at its exit, recycled, summed for the
 * stats, and what fork() does to them; plus the shared "orphan" state of threads past their exit.
 * The struct itself is in thread_state.h, below this layer: the policy calls (layer 4) take it. */
#ifndef HAK_THREAD_H
#define HAK_THREAD_H

#include <pthread.h>

#include "thread_state.h"


/* The calling thread's state, made (from the current ownership policy) if needed; NULL once the
 * thread is past its exit hook, or when no memory is left for a state. hak__init() ran. */
HAK_HIDDEN struct hak_thread *hak__thread_get(void);
HAK_HIDDEN struct hak_thread *hak__thread_sentinel_gone(void); /* the state of a gone thread */
/* The calling thread's own state t takes the TLS caches (thread_state.h): the malloc slow path,
 * once per state. Does nothing for any other state, or while the exit hook is not set. */
HAK_HIDDEN void hak__thread_attach(struct hak_thread *t);
HAK_HIDDEN void hak__thread_flush(struct hak_thread *t);     /* every cache, through the policy */
/* A slab of big class cls took pages not resident yet: t's caches of the other big classes go
 * back at its next hak__after_slow (hak__thread_flush_big), so their slabs, if empty, can give
 * their resident units to the next slab of any class. t is the caller's own state. */
HAK_HIDDEN void hak__thread_grew_big(struct hak_thread *t, unsigned cls);
HAK_HIDDEN void hak__thread_flush_big(struct hak_thread *t);
/* t's gathered foreign frees (thread_state.h) to their slab's policy; t is the caller's own
 * state, or one whose thread is gone. No lock held. */
HAK_HIDDEN void hak__thread_foreign_flush(struct hak_thread *t);
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
/* The pool's hook before it maps a SuperSlab (pool.h): parked states retire and, now and then,
 * live threads reclaim (below), all tried; nonzero when units went back. */
HAK_HIDDEN unsigned hak__threads_before_map(void);
/* From slab_acquire (inside a refill): now and then live threads reclaim, all tried. */
HAK_HIDDEN void hak__threads_before_acquire(void);
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
/* fn(t, ctx) for every live thread state (the orphan's included), thread lock held: fn takes no
 * lock and allocates nothing (introspection reads, recording marks the caches). */
HAK_HIDDEN void hak__threads_each(void (*fn)(struct hak_thread *t, void *ctx), void *ctx);
/* out_bytes and out_blocks of the states retired or parked, and of frees that went through no
 * state. */
HAK_HIDDEN void hak__threads_out_retired(int64_t bytes[2], int64_t blocks[2]);
/* A small block of `bytes` in a 2^lg SuperSlab came back to slab land (a foreign free): off
 * t's counts (or, for a thread without a state of its own, the retired totals). */
HAK_HIDDEN void hak__thread_out_sub(struct hak_thread *t, unsigned lg, uint32_t bytes);
/* Blocks out of slab land (with the program or in a cache): the sum of every state's
 * out_blocks and the retired ones. Exact at quiescence; other threads' counts are read
 * without stopping them. */
HAK_HIDDEN int64_t hak__threads_active_total(void);

/* The orphan state: shared, locked, for threads whose own state is gone. */
HAK_HIDDEN void hak__orphan_lock(void);
HAK_HIDDEN void hak__orphan_unlock(void);
HAK_HIDDEN struct hak_thread *hak__orphan(void); /* orphan lock held; NULL: no memory */

HAK_HIDDEN void hak__thread_init_hooks(void); /* once, from hak__init */
HAK_HIDDEN bool hak__threads_leader_gone(void); /* the main thread called pthread_exit() */
/* fn runs first in every thread's exit hook (the recorder's, layer 8: trace.c). */
HAK_HIDDEN void hak__threads_set_exit_hook(void (*fn)(void));
HAK_HIDDEN bool hak__thread_fork_prepare(void); /* fork.c: through hak__fork_take (lock.h) */
HAK_HIDDEN void hak__thread_fork_child(bool self_consistent);

#endif
