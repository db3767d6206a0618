/* ownership_central.c: Option F. No slab has an owner: every thread caches any block it frees
 * (its TLS cache still batches), and a cache that overflows hands the batch to the class's
 * central lock-free MPMC queue; refills take a whole batch from it. Only when the queue is
 * empty does a refill carve from the class's slabs, under the class lock; when it is full the
 * batch goes straight back to its slabs under that lock, so the central lists stay bounded.
 * A trim pass (consolidate) empties each queue back into the slabs, so fully free slabs and
 * SuperSlabs go back to the OS: Option F gives memory back too.
 *
 * The queue (D. Vyukov's bounded MPMC array queue) holds pointers to batches, chains linked
 * through word 0: nothing is written into a free block beyond that link, so every block keeps
 * the core's free mark (a double free is caught wherever the block waits), no thread ever
 * reads a block another thread may be handing out (no ABA), and taking a batch needs no
 * memory-reclamation scheme. */
#include <errno.h>
#include <hakmem_batch_queue.h>
#include <hakmem_policy.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define CENTRAL_SCAN_MAX 32

struct central_class {
	struct hak_batch_queue q; /* batches of freed blocks (hakmem_batch_queue.h) */
	pthread_mutex_t lock; /* slab list, current slab, and every slab free list */
	hak_slab *cur;        /* slab refills carve from */
	hak_slab *ring;       /* the class's other slabs, circular via the policy links */
	int forgotten;        /* a fork child's: its old slabs may be half updated (fork_child) */
} __attribute__((aligned(64)));

struct central_state {
	const struct hak_core_api *core;
	hak_policy *self;       /* this policy's handle: slabs are acquired on its behalf */
	int pops_id, pushes_id; /* its named counters */
	int fork_locked;        /* this fork took every class lock (fork_prepare or fork_try_prepare) */
	unsigned nclasses;
	struct central_class cls[];
};

static const struct hak_core_api *core;

/* ---- the class's slabs (class lock held) -------------------------------------------------- */

static int carve(struct central_state *st, struct central_class *c, unsigned cls, unsigned n, struct hak_chain *ch)
{
	for (;;) {
		if (c->cur && core->slab_take(c->cur, n, ch))
			return 0;
		if (c->cur)
			hak_ring_add(core, &c->ring, c->cur);
		c->cur = NULL;
		for (unsigned i = 0; i < CENTRAL_SCAN_MAX && c->ring; i++) {
			struct hak_slab_info info;
			core->slab_get_info(c->ring, &info);
			if (info.free) {
				c->cur = c->ring;
				hak_ring_remove(core, &c->ring, c->cur);
				break;
			}
			c->ring = hak_ring_next(core, c->ring);
		}
		if (!c->cur && !(c->cur = core->slab_acquire(st->self, cls, HAK_OWNER_ANY)))
			return 12;
	}
}

/* ---- slow paths ------------------------------------------------------------------------------ */

static int central_refill(void *state, hak_thread *t, void *tstate, unsigned cls)
{
	(void)tstate;
	struct central_state *st = state;
	struct central_class *c = &st->cls[cls];
	void *batch = hak_batch_queue_take(&c->q);
	if (batch) {
		core->counter_add(t, st->pops_id, 1);
		core->cache_fill(t, cls, hak_chain_of(batch));
		return 0;
	}
	struct hak_chain ch;
	unsigned n = core->refill_count(t, cls);
	pthread_mutex_lock(&c->lock);
	int err = carve(st, c, cls, n, &ch);
	pthread_mutex_unlock(&c->lock);
	if (!err)
		core->cache_fill(t, cls, ch);
	return err;
}

static void on_slab_free(void *ctx, hak_slab *s);

struct consolidate_ctx {
	struct central_class *c;
};

/* Blocks back to their slabs (class lock held); slabs entirely free then go back too. */
static void return_to_slabs(struct central_class *c, struct hak_chain chain)
{
	if (c->forgotten)
		return; /* a fork child's class whose old slabs may be half updated: the chain leaks */
	struct consolidate_ctx ctx = {c};
	core->chain_return(chain, on_slab_free, &ctx);
}

static void central_flush(void *state, hak_thread *t, void *tstate, unsigned cls, struct hak_chain chain)
{
	(void)tstate;
	struct central_state *st = state;
	struct central_class *c = &st->cls[cls];
	if (hak_batch_queue_put(&c->q, chain.head)) {
		core->counter_add(t, st->pushes_id, 1);
		return;
	}
	pthread_mutex_lock(&c->lock); /* the queue is full: straight back to the slabs */
	return_to_slabs(c, chain);
	pthread_mutex_unlock(&c->lock);
}

/* A thread that may not cache ANY blocks freed one (a Option G thread, or one exiting). */
static void central_free_foreign(void *state, hak_thread *t, hak_slab *s, void *block)
{
	struct hak_slab_info info;
	core->slab_get_info(s, &info);
	((void **)block)[0] = NULL;
	central_flush(state, t, NULL, info.cls, (struct hak_chain){block, block, 1});
}

/* Such frees of one slab gathered by the core (2.1): queued as one batch. */
static void central_free_foreign_chain(void *state, hak_thread *t, hak_slab *s, struct hak_chain chain)
{
	struct hak_slab_info info;
	core->slab_get_info(s, &info);
	central_flush(state, t, NULL, info.cls, chain);
}

static void central_thread_exit(void *state, hak_thread *t, void *tstate)
{
	(void)state;
	(void)t;
	(void)tstate; /* nothing owned: the core already flushed the caches to the queues */
}

/* Even the current slab goes back when it is entirely free. */
static void on_slab_free(void *ctx, hak_slab *s)
{
	struct central_class *c = ((struct consolidate_ctx *)ctx)->c;
	if (s == c->cur)
		c->cur = NULL;
	else
		hak_ring_remove(core, &c->ring, s);
	core->slab_release(s);
}

/* Blocks in the queues go back to their slabs; slabs that are then fully free go back too. */
static void central_consolidate(void *state)
{
	struct central_state *st = state;
	for (unsigned cls = 0; cls < st->nclasses; cls++) {
		struct central_class *c = &st->cls[cls];
		void *batch = c->forgotten ? NULL : hak_batch_queue_take(&c->q); /* its batches serve refills */
		if (!batch)
			continue;
		pthread_mutex_lock(&c->lock);
		for (; batch; batch = hak_batch_queue_take(&c->q))
			return_to_slabs(c, hak_chain_of(batch));
		pthread_mutex_unlock(&c->lock);
	}
}

static void central_fork_prepare(void *state)
{
	struct central_state *st = state;
	for (unsigned i = 0; i < st->nclasses; i++)
		pthread_mutex_lock(&st->cls[i].lock);
	st->fork_locked = 1;
}

/* The same, only if every class lock is free at once (the core never waits for one while it
 * holds glibc's stdio list lock, or in a fork from a signal handler). */
static int central_fork_try_prepare(void *state)
{
	struct central_state *st = state;
	for (unsigned i = 0; i < st->nclasses; i++)
		if (pthread_mutex_trylock(&st->cls[i].lock) != 0) {
			while (i-- > 0)
				pthread_mutex_unlock(&st->cls[i].lock);
			return EBUSY;
		}
	st->fork_locked = 1;
	return 0;
}

static void central_fork_parent(void *state)
{
	struct central_state *st = state;
	st->fork_locked = 0;
	for (unsigned i = st->nclasses; i-- > 0;)
		pthread_mutex_unlock(&st->cls[i].lock);
}

/* Only the forking thread survives: each queue is rebuilt around its published batches
 * (hak_batch_queue_fork_child). When the fork did not take the class locks (the core only
 * tries them from a signal handler), a class whose lock was held (by another thread, or by the
 * code the handler interrupted) may have its slabs half updated: the child forgets them and
 * starts the class afresh; blocks of the class never go back to slabs in that child (queues,
 * or leaked). */
static void central_fork_child(void *state)
{
	struct central_state *st = state;
	int locked = st->fork_locked;
	st->fork_locked = 0;
	for (unsigned i = 0; i < st->nclasses; i++) {
		struct central_class *c = &st->cls[i];
		if (!locked) {
			if (pthread_mutex_trylock(&c->lock) != 0) {
				c->cur = c->ring = NULL;
				c->forgotten = 1;
			} else {
				pthread_mutex_unlock(&c->lock); /* free: let it go before the init below (a
								 * thread that holds 64 locks overflows
								 * ThreadSanitizer's deadlock detector) */
			}
		}
		pthread_mutex_init(&c->lock, NULL);
		hak_batch_queue_fork_child(&c->q);
	}
}

static int central_init(const struct hak_core_api *api, hak_policy *self, const struct hak_settings *settings,
			void **state, char *err, size_t errlen)
{
	if (settings->count)
		return hak_setting_unknown(&settings->items[0], "nothing", err, errlen);
	unsigned n = api->class_count();
	size_t size = sizeof(struct central_state) + n * sizeof(struct central_class);
	struct central_state *st = aligned_alloc(64, (size + 63) & ~(size_t)63);
	if (!st) {
		snprintf(err, errlen, "no memory for %u central lists", n);
		return 12;
	}
	memset(st, 0, size);
	st->core = api;
	st->self = self;
	st->pops_id = api->counter_register(self, "pops", HAK_COUNTER_COUNT, 1);     /* batches from a queue */
	st->pushes_id = api->counter_register(self, "pushes", HAK_COUNTER_COUNT, 1); /* batches into one */
	st->nclasses = n;
	for (unsigned i = 0; i < n; i++) {
		pthread_mutex_init(&st->cls[i].lock, NULL);
		hak_batch_queue_reset(&st->cls[i].q);
	}
	core = api;
	*state = st;
	return 0;
}

static void central_fini(void *state)
{
	free(state);
}

static const struct hak_ownership_ops central_ops = {
	.size = sizeof(struct hak_ownership_ops),
	.thread_state_size = 0,
	.caches_any = 1,
	.refill = central_refill,
	.flush = central_flush,
	.free_foreign = central_free_foreign,
	.thread_exit = central_thread_exit,
	.consolidate = central_consolidate,
	.free_foreign_chain = central_free_foreign_chain,
};

HAK_POLICY_EXPORT(hak__builtin_ownership_central) = {
	HAK_POLICY_DESC_INIT(HAK_POLICY_OWNERSHIP, "central", "2.0.0",
			     "Option F: no owner; per-class lock-free MPMC queues of batches, slabs carved under a class lock"),
	.init = central_init,
	.fini = central_fini,
	.fork_prepare = central_fork_prepare,
	.fork_parent = central_fork_parent,
	.fork_child = central_fork_child,
	.fork_try_prepare = central_fork_try_prepare,
	.ops = &central_ops,
};
