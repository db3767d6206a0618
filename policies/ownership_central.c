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
#include <hakmem_policy.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define CENTRAL_SCAN_MAX 32
#define QUEUE_SLOTS 64 /* batches per class; a power of two */

struct queue_cell {
	_Atomic size_t xseq; /* ticket: the cell is free for enqueue at pos, full at pos + 1 */
	void *batch;         /* head of a chain */
};

struct central_class {
	_Atomic size_t xenq;  /* next enqueue ticket */
	char pad0[56];
	_Atomic size_t xdeq;  /* next dequeue ticket */
	char pad1[56];
	struct queue_cell cells[QUEUE_SLOTS];
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

/* ---- the bounded MPMC queue of batches ----------------------------------------------------- */

static void queue_reset(struct central_class *c)
{
	for (size_t i = 0; i < QUEUE_SLOTS; i++)
		atomic_store_explicit(&c->cells[i].xseq, i, memory_order_relaxed);
	atomic_store_explicit(&c->xenq, 0, memory_order_relaxed);
	atomic_store_explicit(&c->xdeq, 0, memory_order_relaxed);
}

/* Claim the next cell at *xpos (the enqueue or dequeue counter) once its sequence number says
 * it is ready: pos for a put (ahead 0), pos + 1 for a take (ahead 1). NULL when the queue is
 * full (put) or empty (take); otherwise the cell, and its position in *out. */
static struct queue_cell *queue_claim(struct central_class *c, _Atomic size_t *xpos, size_t ahead,
				      size_t *out)
{
	size_t pos = atomic_load_explicit(xpos, memory_order_relaxed);
	for (;;) {
		struct queue_cell *cell = &c->cells[pos & (QUEUE_SLOTS - 1)];
		size_t seq = atomic_load_explicit(&cell->xseq, memory_order_acquire);
		intptr_t dif = (intptr_t)seq - (intptr_t)(pos + ahead);
		if (dif == 0) {
			if (atomic_compare_exchange_weak_explicit(xpos, &pos, pos + 1, memory_order_relaxed,
								  memory_order_relaxed)) {
				*out = pos;
				return cell;
			}
		} else if (dif < 0) {
			return NULL;
		} else {
			pos = atomic_load_explicit(xpos, memory_order_relaxed);
		}
	}
}

/* false when the queue is full. */
static bool queue_put(struct central_class *c, void *batch)
{
	size_t pos;
	struct queue_cell *cell = queue_claim(c, &c->xenq, 0, &pos);
	if (!cell)
		return false;
	cell->batch = batch;
	atomic_store_explicit(&cell->xseq, pos + 1, memory_order_release);
	return true;
}

/* NULL when the queue is empty. */
static void *queue_take(struct central_class *c)
{
	size_t pos;
	struct queue_cell *cell = queue_claim(c, &c->xdeq, 1, &pos);
	if (!cell)
		return NULL;
	void *batch = cell->batch;
	atomic_store_explicit(&cell->xseq, pos + QUEUE_SLOTS, memory_order_release);
	return batch;
}

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
	void *batch = queue_take(c);
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
	if (queue_put(c, chain.head)) {
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
		void *batch = c->forgotten ? NULL : queue_take(c); /* its batches serve refills */
		if (!batch)
			continue;
		pthread_mutex_lock(&c->lock);
		for (; batch; batch = queue_take(c))
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

/* Only the forking thread survives. A queue operation another thread had half done would
 * block its cell for ever: keep every published batch, rebuild the queue around them. (The
 * chain in a cell whose enqueue was half done is lost to the child: a leak, not a fault.)
 * When the fork did not take the class locks (the core only tries them from a signal
 * handler), a class whose lock was held (by another thread, or by the code the handler
 * interrupted) may have its slabs half updated: the child forgets them and starts the class
 * afresh; blocks of the class never go back to slabs in that child (queues, or leaked). */
static void central_fork_child(void *state)
{
	struct central_state *st = state;
	int locked = st->fork_locked;
	st->fork_locked = 0;
	for (unsigned i = 0; i < st->nclasses; i++) {
		struct central_class *c = &st->cls[i];
		if (!locked && pthread_mutex_trylock(&c->lock) != 0) {
			c->cur = c->ring = NULL;
			c->forgotten = 1;
		} else if (!locked) {
			pthread_mutex_unlock(&c->lock); /* nobody was in it; a lock held is not re-initialised
							 * (nor one per class held at once: ThreadSanitizer
							 * counts 64 at most) */
		}
		pthread_mutex_init(&c->lock, NULL);
		void *kept[QUEUE_SLOTS];
		unsigned n = 0;
		size_t deq = atomic_load(&c->xdeq), enq = atomic_load(&c->xenq);
		for (size_t pos = deq; pos != enq && n < QUEUE_SLOTS; pos++) {
			struct queue_cell *cell = &c->cells[pos & (QUEUE_SLOTS - 1)];
			if (atomic_load(&cell->xseq) == pos + 1)
				kept[n++] = cell->batch;
		}
		queue_reset(c);
		for (unsigned k = 0; k < n; k++)
			queue_put(c, kept[k]);
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
		queue_reset(&st->cls[i]);
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
