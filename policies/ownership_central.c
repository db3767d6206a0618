/* ownership_central.c: Option F. No slab has an owner: every thread caches any block it frees
 * (its TLS cache still batches), and a cache that overflows pushes the batch onto the class's
 * central lock-free MPMC stack; refills pop a whole batch. Only when the stack is empty does a
 * refill carve from the class's slabs, under the class lock. A trim pass (consolidate) takes
 * each stack whole and returns the blocks to their slabs, so fully free slabs and SuperSlabs
 * go back to the OS: Option F gives memory back too.
 *
 * The stack links batches through word 1 of each batch's first block (word 0 links the blocks
 * of a batch). Its head pairs the pointer with a 64-bit tag against ABA. A popper reads
 * the head block's word 1 before its CAS; `poppers` tells consolidate when no thread can still
 * be reading a block it is about to give back (which may unmap it). */
#include <hakmem_policy.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 stack_word;

union central_head {
	stack_word word; /* {top, tag}, swapped whole */
	struct {
		void *top;    /* first batch, NULL when empty */
		uint64_t tag; /* bumped by every push and pop */
	} half;
};
#define CENTRAL_SCAN_MAX 32

struct central_class {
	union central_head xhead __attribute__((aligned(16))); /* top of the stack of batches */
	_Atomic unsigned xpoppers; /* threads between reading the head and their CAS */
	pthread_mutex_t lock;      /* slab list, current slab, and every slab free list */
	hak_slab *cur;             /* slab refills carve from */
	hak_slab *ring;            /* the class's other slabs, circular via the policy links */
	char pad[64];              /* keep the next class's head off this line */
} __attribute__((aligned(64)));

struct central_state {
	const struct hak_core_api *core;
	unsigned nclasses;
	struct central_class cls[];
};

static const struct hak_core_api *core;

/* ---- the lock-free stack of batches ------------------------------------------------------- */

/* The head is {top, tag} swapped as one 16-byte unit (cmpxchg16b): the 64-bit tag grows on
 * every change, so a popper that read a block which was popped, reused and pushed back while
 * it slept fails its swap instead of installing a stale `next` (ABA). */
#define CX16 __attribute__((target("cx16")))

static inline stack_word pack(void *top, uint64_t tag)
{
	return (stack_word)tag << 64 | (uintptr_t)top;
}

static inline void *top_of(stack_word w)
{
	return (void *)(uintptr_t)(uint64_t)w;
}

static inline uint64_t tag_of(stack_word w)
{
	return (uint64_t)(w >> 64);
}

/* An atomic read of both halves (a swap of 0 for 0 changes nothing). */
CX16 static inline stack_word head_load(struct central_class *c)
{
	return __sync_val_compare_and_swap(&c->xhead.word, (stack_word)0, (stack_word)0);
}

CX16 static void stack_push(struct central_class *c, void *head)
{
	stack_word old = head_load(c), seen;
	for (;;) {
		((void **)head)[1] = top_of(old);
		seen = __sync_val_compare_and_swap(&c->xhead.word, old, pack(head, tag_of(old) + 1));
		if (seen == old)
			return;
		old = seen;
	}
}

CX16 static void *stack_pop(struct central_class *c)
{
	if (!__atomic_load_n(&c->xhead.half.top, __ATOMIC_RELAXED)) /* cheap peek: empty */
		return NULL;
	atomic_fetch_add_explicit(&c->xpoppers, 1, memory_order_acq_rel);
	stack_word old = head_load(c), seen;
	void *top;
	for (;;) {
		top = top_of(old);
		if (!top)
			break;
		/* top may already be someone else's: then this read is stale and the swap fails */
		seen = __sync_val_compare_and_swap(&c->xhead.word, old, pack(((void **)top)[1], tag_of(old) + 1));
		if (seen == old)
			break;
		old = seen;
	}
	atomic_fetch_sub_explicit(&c->xpoppers, 1, memory_order_release);
	return top;
}

/* Take the whole stack; return once no popper can still read a block of it. */
CX16 static void *stack_take_all(struct central_class *c)
{
	stack_word old = head_load(c), seen;
	while ((seen = __sync_val_compare_and_swap(&c->xhead.word, old, pack(NULL, tag_of(old) + 1))) != old)
		old = seen;
	while (atomic_load_explicit(&c->xpoppers, memory_order_acquire))
		sched_yield();
	return top_of(old);
}

static struct hak_chain chain_of(void *head)
{
	struct hak_chain ch = {head, head, 1};
	while (((void **)ch.tail)[0]) {
		ch.tail = ((void **)ch.tail)[0];
		ch.count++;
	}
	return ch;
}

/* ---- the class's slabs (class lock held) -------------------------------------------------- */

static int carve(struct central_class *c, unsigned cls, unsigned n, struct hak_chain *ch)
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
		if (!c->cur && !(c->cur = core->slab_acquire(cls, HAK_OWNER_ANY)))
			return 12;
	}
}

/* ---- slow paths ------------------------------------------------------------------------------ */

static int central_refill(void *state, hak_thread *t, void *tstate, unsigned cls)
{
	(void)tstate;
	struct central_class *c = &((struct central_state *)state)->cls[cls];
	void *batch = stack_pop(c);
	if (batch) {
		core->count(t, HAK_COUNT_CENTRAL_POPS, 1);
		core->cache_fill(t, cls, chain_of(batch));
		return 0;
	}
	struct hak_chain ch;
	unsigned n = core->refill_count(t, cls);
	pthread_mutex_lock(&c->lock);
	int err = carve(c, cls, n, &ch);
	pthread_mutex_unlock(&c->lock);
	if (!err)
		core->cache_fill(t, cls, ch);
	return err;
}

static void central_flush(void *state, hak_thread *t, void *tstate, unsigned cls, struct hak_chain chain)
{
	(void)tstate;
	stack_push(&((struct central_state *)state)->cls[cls], chain.head);
	core->count(t, HAK_COUNT_CENTRAL_PUSHES, 1);
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
	(void)tstate; /* nothing owned: the core already flushed the caches to the stacks */
}

struct consolidate_ctx {
	struct central_class *c;
};

/* During a trim pass even the current slab goes back when it is entirely free. */
static void on_slab_free(void *ctx, hak_slab *s)
{
	struct central_class *c = ((struct consolidate_ctx *)ctx)->c;
	if (s == c->cur)
		c->cur = NULL;
	else
		hak_ring_remove(core, &c->ring, s);
	core->slab_release(s);
}

/* Blocks on the stacks go back to their slabs; slabs that are then fully free go back too. */
static void central_consolidate(void *state)
{
	struct central_state *st = state;
	for (unsigned cls = 0; cls < st->nclasses; cls++) {
		struct central_class *c = &st->cls[cls];
		if (!__atomic_load_n(&c->xhead.half.top, __ATOMIC_RELAXED))
			continue;
		void *batch = stack_take_all(c);
		struct consolidate_ctx ctx = {c};
		pthread_mutex_lock(&c->lock);
		while (batch) {
			void *next = ((void **)batch)[1];
			core->chain_return(chain_of(batch), on_slab_free, &ctx);
			batch = next;
		}
		pthread_mutex_unlock(&c->lock);
	}
}

static void central_fork_prepare(void *state)
{
	struct central_state *st = state;
	for (unsigned i = 0; i < st->nclasses; i++)
		pthread_mutex_lock(&st->cls[i].lock);
}

static void central_fork_parent(void *state)
{
	struct central_state *st = state;
	for (unsigned i = st->nclasses; i-- > 0;)
		pthread_mutex_unlock(&st->cls[i].lock);
}

static void central_fork_child(void *state)
{
	struct central_state *st = state;
	for (unsigned i = 0; i < st->nclasses; i++) {
		pthread_mutex_init(&st->cls[i].lock, NULL);
		atomic_store(&st->cls[i].xpoppers, 0); /* poppers were other threads: gone */
	}
}

static int central_init(const struct hak_core_api *api, const struct hak_settings *settings, void **state,
			char *err, size_t errlen)
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
	st->nclasses = n;
	for (unsigned i = 0; i < n; i++)
		pthread_mutex_init(&st->cls[i].lock, NULL);
	core = api;
	*state = st;
	return 0;
}

static void central_fini(void *state)
{
	free(state);
}

static const struct hak_ownership_ops central_ops = {
	.thread_state_size = 0,
	.caches_any = 1,
	.refill = central_refill,
	.flush = central_flush,
	.free_foreign = central_free_foreign,
	.thread_exit = central_thread_exit,
	.consolidate = central_consolidate,
	.fork_child = central_fork_child,
	.fork_prepare = central_fork_prepare,
	.fork_parent = central_fork_parent,
};

HAK_POLICY_EXPORT(hak__builtin_ownership_central) = {
	HAK_POLICY_DESC_INIT(HAK_POLICY_OWNERSHIP, "central", "1.0.0",
			     "Option F: no owner; per-class lock-free MPMC batch stacks, slabs carved under a class lock"),
	.init = central_init,
	.fini = central_fini,
	.ownership = &central_ops,
};
