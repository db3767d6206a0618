/* policy_call.h: layer 4, the ONE home of every call into a policy (SQLite's os.c manner): one
 * wrapper per op. Each wrapper picks the policy (the current one of the kind, or the ownership
 * policy that made the memory at hand), takes or skips the thread's policy lock as the op's
 * contract says, reads an op only when the plugin's table is big enough to hold it (an older
 * plugin's table ends sooner) and only when it is not NULL, and checks the op's contract in
 * debug builds. No other file calls through a policy's function pointer.
 *
 * Re-entry: a trim op runs at most once per thread at a time (a trim op that runs a pass which
 * would tick the policy again is not re-entered: the inner call is dropped). */
#ifndef HAK_POLICY_CALL_H
#define HAK_POLICY_CALL_H

#include <sched.h>

#include "lock.h"
#include "policy.h"
#include "thread_state.h"

/* The kind's ops table of p, and one op of it: NULL when p's table predates the member. */
#define HAK__OPS(p, type) ((const struct type *)(p)->ops)
#define HAK__OP(p, type, member) \
	(HAK_STRUCT_HAS(HAK__OPS(p, type), member) ? HAK__OPS(p, type)->member : NULL)

/* ---- The per-thread policy lock -------------------------------------------------------------------
 * A thread holds its own lock around every call into its ownership policy that touches the
 * policy's per-thread state or its slabs' private lists (refill, flush, thread_exit); a trim
 * pass takes it with a try, so it can reclaim for a thread that sleeps (op reclaim).
 * Uncontended cost: one exchange and one store per refill or flush, which move a batch each.
 * From enter to leave the thread counts as inside a policy call (lock.h: a fork from a signal
 * handler must not wait for the policy's own locks then). */
HAK_INLINE void hak__policy_enter(struct hak_thread *t)
{
	hak__held_push(&t->xplock);
	hak__opaque_begin();
	while (atomic_exchange_explicit(&t->xplock, 1, memory_order_acquire))
		sched_yield(); /* a trim pass is reclaiming for this thread: it is short */
}

HAK_INLINE bool hak__policy_try(struct hak_thread *t)
{
	hak__held_push(&t->xplock);
	hak__opaque_begin();
	if (!atomic_exchange_explicit(&t->xplock, 1, memory_order_acquire))
		return true;
	hak__opaque_end();
	hak__held_pop(&t->xplock);
	return false;
}

HAK_INLINE void hak__policy_leave(struct hak_thread *t)
{
	atomic_store_explicit(&t->xplock, 0, memory_order_release);
	hak__opaque_end();
	hak__held_pop(&t->xplock);
}

/* ---- Lifecycle (also used by the loader and the tools) -------------------------------------------- */

HAK_INLINE int hak__pcall_init(const struct hak_policy_desc *d, const struct hak_core_api *core, hak_policy *self,
			       const struct hak_settings *settings, void **state, char *err, size_t errlen)
{
	*state = NULL;
	if (errlen)
		err[0] = '\0';
	int rc = d->init(core, self, settings, state, err, errlen);
	if (errlen)
		err[errlen - 1] = '\0';
	return rc;
}

/* For a policy that never started (tools, a replaced choice). */
HAK_INLINE void hak__pcall_fini(const struct hak_policy_desc *d, void *state)
{
	if (d->fini)
		d->fini(state);
}

HAK_INLINE void hak__pcall_start(struct hak_policy *p)
{
	if (atomic_exchange(&p->xstarted, 1))
		return;
	if (p->desc->start)
		p->desc->start(p->state);
}

HAK_INLINE void hak__pcall_stop(struct hak_policy *p)
{
	if (!atomic_load(&p->xstarted) || p->stopped)
		return;
	p->stopped = 1;
	if (p->desc->stop)
		p->desc->stop(p->state);
}

/* fork (fork.c takes every started policy's locks, in kind order, between the core's thread
 * locks and its slab locks): does p have fork locks; take them only if all are free at once
 * (fork_try_prepare, since 2.1; false: none taken, or p has no try: then has_fork_try is
 * false and only the blocking fork_prepare remains); take them, waiting; release them. */
HAK_INLINE bool hak__pcall_has_fork_locks(const struct hak_policy *p)
{
	return atomic_load(&p->xstarted) && p->desc->fork_prepare;
}

HAK_INLINE bool hak__pcall_has_fork_try(const struct hak_policy *p)
{
	return HAK_STRUCT_HAS(p->desc, fork_try_prepare) && p->desc->fork_try_prepare;
}

HAK_INLINE bool hak__pcall_fork_try_prepare(struct hak_policy *p)
{
	return p->desc->fork_try_prepare(p->state) == 0;
}

HAK_INLINE void hak__pcall_fork_prepare(struct hak_policy *p)
{
	p->desc->fork_prepare(p->state);
}

HAK_INLINE void hak__pcall_fork_parent(struct hak_policy *p)
{
	p->desc->fork_parent(p->state);
}

HAK_INLINE void hak__pcall_fork_child_all(void)
{
	for (uint32_t k = HAK_KIND_COUNT; k >= 1; k--)
		for (unsigned i = hak__policy_count(k); i-- > 0;) {
			struct hak_policy *p = hak__policy_at(k, i);
			if (atomic_load(&p->xstarted) && p->desc->fork_child)
				p->desc->fork_child(p->state);
		}
}

/* ---- Ownership ------------------------------------------------------------------------------------ */

#define HAK__OWN(p) HAK__OPS(p, hak_ownership_ops)

/* t's cache of cls is empty: the policy fills it. 0 or an errno value. */
HAK_INLINE int hak__own_refill(struct hak_thread *t, unsigned cls)
{
	struct hak_policy *m = t->model;
	hak__policy_enter(t);
	int err = HAK__OWN(m)->refill(m->state, t, t->own_tstate, cls);
	hak__policy_leave(t);
	HAK_ASSERT(err != 0 || t->cache[cls].head != NULL);
	return err;
}

/* The chain left t's cache; the caller holds t's policy lock (hak__policy_enter). */
HAK_INLINE void hak__own_flush_locked(struct hak_thread *t, unsigned cls, struct hak_chain chain)
{
	struct hak_policy *m = t->model;
	HAK_ASSERT(atomic_load(&t->xplock) && chain.head && chain.count);
	HAK_INVARIANT(hak_chain_of(chain.head).count == chain.count);
	HAK__OWN(m)->flush(m->state, t, t->own_tstate, cls, chain);
}

/* A block of a slab that `m` made, freed by a thread (t, or the shared state) that does not
 * accept its owner. No lock held. */
HAK_INLINE void hak__own_free_foreign(struct hak_policy *m, struct hak_thread *t, hak_slab *s, void *block)
{
	HAK_ASSERT(m && m->desc && t);
	hak__opaque_begin(); /* lock.h: the policy may take its own locks */
	HAK__OWN(m)->free_foreign(m->state, t, s, block);
	hak__opaque_end();
}

/* t's state is retired (its caches were flushed): the policy settles t's slabs. */
HAK_INLINE void hak__own_thread_exit(struct hak_thread *t)
{
	struct hak_policy *m = t->model;
	hak__policy_enter(t);
	HAK__OWN(m)->thread_exit(m->state, t, t->own_tstate);
	hak__policy_leave(t);
}

/* The op reclaim for t when t is outside its slow paths; false when t was busy or its policy
 * has no reclaim. Called with the thread registry locked (t cannot be retired meanwhile). */
HAK_INLINE bool hak__own_reclaim_try(struct hak_thread *t)
{
	struct hak_policy *m = t->model;
	void (*reclaim)(void *, hak_thread *, void *) = HAK__OP(m, hak_ownership_ops, reclaim);
	if (!reclaim || !hak__policy_try(t))
		return false;
	reclaim(m->state, t, t->own_tstate);
	hak__policy_leave(t);
	return true;
}

/* consolidate of every ownership policy that made memory. */
HAK_INLINE void hak__own_consolidate_all(void)
{
	for (unsigned i = 0, n = hak__policy_count(HAK_POLICY_OWNERSHIP); i < n; i++) {
		struct hak_policy *m = hak__policy_at(HAK_POLICY_OWNERSHIP, i);
		void (*consolidate)(void *) = m->desc ? HAK__OP(m, hak_ownership_ops, consolidate) : NULL;
		if (consolidate) {
			hak__opaque_begin();
			consolidate(m->state);
			hak__opaque_end();
		}
	}
}

HAK_INLINE size_t hak__own_tstate_size(const struct hak_policy *m)
{
	return HAK__OWN(m)->thread_state_size;
}

HAK_INLINE uintptr_t hak__own_default_accept(const struct hak_policy *m, uintptr_t token)
{
	return HAK__OWN(m)->caches_any ? HAK_OWNER_ANY : token;
}

/* ---- Trim ----------------------------------------------------------------------------------------- */

HAK_HIDDEN extern __thread int hak__in_trim_op;

#define HAK__TRIM_CALL(member, ...)                                                          \
	do {                                                                                 \
		struct hak_policy *p_ = hak__policy_current(HAK_POLICY_TRIM);               \
		void (*op_)(void *) = p_ ? HAK__OP(p_, hak_trim_ops, member) : NULL;          \
		if (op_ && !hak__in_trim_op) {                                               \
			hak__in_trim_op = 1;                                                 \
			hak__opaque_begin();                                                 \
			op_(p_->state);                                                      \
			hak__opaque_end();                                                   \
			hak__in_trim_op = 0;                                                 \
		}                                                                            \
	} while (0)

/* SuperSlabs became empty (coalesced): outside every core lock. */
HAK_INLINE void hak__trim_superslab_empty(void)
{
	HAK__TRIM_CALL(superslab_empty);
}

HAK_INLINE void hak__trim_tick(void)
{
	HAK__TRIM_CALL(tick);
}

/* An allocation of `bytes` found no memory: true when the policy gave some back (retry once). */
HAK_INLINE bool hak__trim_out_of_memory(size_t bytes)
{
	struct hak_policy *p = hak__policy_current(HAK_POLICY_TRIM);
	int (*op)(void *, size_t) = p ? HAK__OP(p, hak_trim_ops, out_of_memory) : NULL;
	if (!op || hak__in_trim_op)
		return false;
	hak__in_trim_op = 1;
	hak__opaque_begin();
	int rc = op(p->state, bytes);
	hak__opaque_end();
	hak__in_trim_op = 0;
	return rc != 0;
}

#include "pool.h"

/* SuperSlabs that emptied since the last look go to the trim policy (one call for many). From a
 * slow path once no core state is half-done, or a thread's exit. */
HAK_INLINE void hak__trim_notify_pending(void)
{
	if (hak__pool_empties_take())
		hak__trim_superslab_empty();
}

/* ---- SuperSlab size -------------------------------------------------------------------------------- */

/* log2 of the size for a new SuperSlab of class cls: 20 or 21 (anything else is logged once and
 * read as 21), and *by the index of the policy that decided. */
HAK_INLINE unsigned hak__size_lg_for(unsigned cls, unsigned *by)
{
	struct hak_policy *p = hak__policy_current(HAK_POLICY_SUPERSLAB);
	unsigned lg = HAK__OPS(p, hak_superslab_ops)->lg_size_for(p->state, cls);
	*by = p->index;
	if (unlikely(lg < HAK_SS_LG_MIN || lg > HAK_SS_LG_MAX)) {
		static _Atomic int warned;
		if (!atomic_exchange(&warned, 1))
			hak__log("superslab policy '%s': lg_size_for(%u) returned %u, expected %d or %d; using %d",
				 p->desc->name, cls, lg, HAK_SS_LG_MIN, HAK_SS_LG_MAX, HAK_SS_LG_MAX);
		lg = HAK_SS_LG_MAX;
	}
	return lg;
}

#endif
