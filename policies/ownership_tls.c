/* ownership_tls.c: Option G, the default. Each slab is owned by one thread, which alone takes
 * blocks from it, without atomics. Other threads push the blocks they free to the slab's
 * remote queue; the owner drains it when it refills. An exiting thread gives fully free slabs
 * back and abandons the rest; refills adopt abandoned slabs before mapping anything new, and
 * the core's trim pass drains and releases those nobody adopts. Trim passes and other threads'
 * slab acquisitions also drain the slabs of live threads (tls_reclaim), so what others free to
 * an idle thread goes back, and a thread that stopped allocating hands its slabs over.
 * Per thread and class: the current slab and a ring of the thread's other slabs. */
#include <hakmem_policy.h>
#include <stdbool.h>
#include <string.h>

#define TLS_SCAN_MAX 32       /* other slabs looked at per refill before adopting or mapping */
#define TLS_RECLAIM_MAX 1024  /* parked slabs of one class looked at per trim pass */

struct tls_class {
	hak_slab *cur;  /* slab refills take from first */
	hak_slab *ring; /* the thread's other slabs of this class, circular, via the policy links */
};

struct tls_tstate {
	struct tls_class cls[128]; /* indexed by size class (the core has fewer) */
	unsigned refills;          /* refills so far */
	unsigned refills_seen;     /* refills at the previous reclaim: none since, the thread is idle */
	uint64_t handed[2];        /* bit cls: a reclaim abandoned slabs of this class of the
				    * thread, whose cache of it may hold blocks of slabs the thread no
				    * longer owns (tls_flush); cleared by the next refill, which
				    * finds that cache empty */
};

static const struct hak_core_api *core;
static hak_policy *self; /* this policy's handle: slabs are acquired and adopted on its behalf */

/* ---- slow paths ---------------------------------------------------------------------------- */

/* Blocks other threads freed come first (one load when there are none): carving on while they
 * wait would grow the slab for nothing. */
static int take_into_cache(hak_thread *t, hak_slab *s, unsigned cls, unsigned n)
{
	struct hak_chain ch;
	core->remote_drain(s); /* the core counts what it moves */
	if (!core->slab_take(s, n, &ch))
		return 0;
	core->cache_fill(t, cls, ch);
	return 1;
}

/* A slab from the ring with free or remotely freed blocks; rotates so the scan is fair. */
static hak_slab *ring_find(struct tls_class *c)
{
	for (unsigned i = 0; i < TLS_SCAN_MAX && c->ring; i++) {
		hak_slab *s = c->ring;
		struct hak_slab_info info;
		core->slab_get_info(s, &info);
		if (info.free || info.remote_pending) {
			hak_ring_remove(core, &c->ring, s);
			return s;
		}
		c->ring = hak_ring_next(core, s);
	}
	return NULL;
}

static int tls_refill(void *state, hak_thread *t, void *tstate, unsigned cls)
{
	(void)state;
	struct tls_tstate *ts = tstate;
	struct tls_class *c = &ts->cls[cls];
	uintptr_t me = core->thread_token(t);
	ts->refills++;
	ts->handed[cls / 64] &= ~((uint64_t)1 << (cls % 64)); /* the cache is empty: nothing foreign */
	unsigned n = core->refill_count(t, cls);
	for (;;) {
		if (c->cur) {
			if (take_into_cache(t, c->cur, cls, n))
				return 0;
			hak_ring_add(core, &c->ring, c->cur); /* exhausted: park it with the others */
			c->cur = NULL;
		}
		hak_slab *s = ring_find(c);
		if (!s)
			s = core->slab_adopt(self, cls, me);
		if (!s)
			s = core->slab_acquire(self, cls, me);
		if (!s)
			return 12; /* ENOMEM */
		c->cur = s;
	}
}

struct flush_ctx {
	struct tls_class *c;
};

/* A slab became entirely free: give it back unless it is the one refills use, which is kept
 * only if it holds many blocks. A slab of a few big blocks (the core flushes such caches when
 * another big class grows the heap) is many resident pages the next slab of any class can use;
 * keeping it would save one slab_acquire the next time its class is wanted. */
#define TLS_KEEP_CUR_MIN 8 /* blocks a slab holds at least for an empty current one to be kept */

static void on_slab_free(void *ctx, hak_slab *s)
{
	struct tls_class *c = ((struct flush_ctx *)ctx)->c;
	if (s == c->cur) {
		struct hak_slab_info info;
		core->slab_get_info(s, &info);
		if (info.capacity >= TLS_KEEP_CUR_MIN)
			return;
		c->cur = NULL;
		core->slab_release(s);
		return;
	}
	hak_ring_remove(core, &c->ring, s);
	core->slab_release(s);
}

/* The blocks of slabs t no longer owns (a reclaim handed them over while they sat in t's
 * cache) go to their slabs' remote queues; the others back to their slabs as usual. */
static void flush_handed(struct flush_ctx *ctx, uintptr_t me, struct hak_chain chain)
{
	struct hak_chain mine = {NULL, NULL, 0};
	hak_slab *s = NULL;
	uintptr_t owner = 0;
	for (void *b = chain.head, *next; b; b = next) {
		next = ((void **)b)[0];
		hak_slab *bs = core->slab_of(b);
		if (bs != s) {
			struct hak_slab_info info;
			core->slab_get_info(bs, &info);
			s = bs;
			owner = info.owner;
		}
		if (owner != me) {
			core->remote_push(s, b);
			continue;
		}
		hak_chain_append(&mine, b);
	}
	if (mine.head)
		core->chain_return(mine, on_slab_free, ctx);
}

static void tls_flush(void *state, hak_thread *t, void *tstate, unsigned cls, struct hak_chain chain)
{
	(void)state;
	struct tls_tstate *ts = tstate;
	struct flush_ctx ctx = {&ts->cls[cls]};
	if (ts->handed[cls / 64] >> (cls % 64) & 1)
		flush_handed(&ctx, core->thread_token(t), chain);
	else
		core->chain_return(chain, on_slab_free, &ctx);
}

static void tls_free_foreign(void *state, hak_thread *t, hak_slab *s, void *block)
{
	(void)state;
	(void)t;
	core->remote_push(s, block);
}

static void tls_free_foreign_chain(void *state, hak_thread *t, hak_slab *s, struct hak_chain chain)
{
	(void)state;
	(void)t;
	core->remote_push_chain(s, chain); /* one atomic for the whole chain */
}

/* The thread leaves: fully free slabs go back, the rest wait for adoption or the trim pass. */
static void settle(hak_slab *s)
{
	struct hak_slab_info info;
	core->remote_drain(s);
	core->slab_get_info(s, &info);
	if (info.used == 0)
		core->slab_release(s);
	else
		core->slab_abandon(s);
}

static void tls_thread_exit(void *state, hak_thread *t, void *tstate)
{
	(void)state;
	(void)t;
	struct tls_tstate *ts = tstate;
	unsigned n = core->class_count();
	for (unsigned cls = 0; cls < n; cls++) {
		struct tls_class *c = &ts->cls[cls];
		if (c->cur) {
			settle(c->cur);
			c->cur = NULL;
		}
		while (c->ring) {
			hak_slab *s = c->ring;
			hak_ring_remove(core, &c->ring, s);
			settle(s);
		}
	}
}

/* A trim pass or another thread's refill, with t outside its slow paths: drain the remote
 * queues of t's slabs and give back those entirely free. A thread that has not refilled since
 * the previous reclaim is idle: its current slab of each class goes back too when the others'
 * frees emptied it (a server's main thread that made blocks for others and then waits would
 * otherwise hold one slab per class for ever), and its other slabs are abandoned, so the
 * threads that allocate adopt them (and fill the holes others' frees make in them) instead of
 * taking new units while it holds them; a current slab still in use stays for when it resumes.
 * A busy thread keeps its current slabs untouched: releasing one that is empty for a moment
 * would only make its next refill take it back. */
static void tls_reclaim(void *state, hak_thread *t, void *tstate)
{
	(void)state, (void)t;
	struct tls_tstate *ts = tstate;
	bool idle = ts->refills == ts->refills_seen;
	ts->refills_seen = ts->refills;
	unsigned n = core->class_count();
	for (unsigned cls = 0; cls < n; cls++) {
		struct tls_class *c = &ts->cls[cls];
		struct hak_slab_info info;
		if (idle && c->cur) {
			core->remote_drain(c->cur);
			core->slab_get_info(c->cur, &info);
			if (info.used == 0) {
				core->slab_release(c->cur);
				c->cur = NULL;
			}
		}
		hak_slab *s = c->ring, *first_kept = NULL;
		for (unsigned i = 0; s && i < TLS_RECLAIM_MAX; i++) {
			hak_slab *next = hak_ring_next(core, s);
			if (!idle) {
				core->slab_get_info(s, &info);
				if (info.remote_pending) {
					core->remote_drain(s);
					core->slab_get_info(s, &info);
				}
				if (info.used == 0) {
					hak_ring_remove(core, &c->ring, s);
					core->slab_release(s);
				} else if (!first_kept) {
					first_kept = s;
				}
			} else {
				hak_ring_remove(core, &c->ring, s);
				ts->handed[cls / 64] |= (uint64_t)1 << (cls % 64);
				settle(s);
			}
			if (!c->ring || next == first_kept)
				break; /* all given back, or went round */
			s = next;
		}
	}
}

static int tls_init(const struct hak_core_api *api, hak_policy *handle, const struct hak_settings *settings,
		    void **state, char *err, size_t errlen)
{
	if (settings->count)
		return hak_setting_unknown(&settings->items[0], "nothing", err, errlen);
	if (api->class_count() > 128) {
		snprintf(err, errlen, "core has %u size classes, this policy handles 128", api->class_count());
		return 22;
	}
	core = api;
	self = handle;
	*state = NULL;
	return 0;
}

static const struct hak_ownership_ops tls_ops = {
	.size = sizeof(struct hak_ownership_ops),
	.thread_state_size = sizeof(struct tls_tstate),
	.caches_any = 0,
	.refill = tls_refill,
	.flush = tls_flush,
	.free_foreign = tls_free_foreign,
	.thread_exit = tls_thread_exit,
	.reclaim = tls_reclaim,
	.free_foreign_chain = tls_free_foreign_chain,
};

HAK_POLICY_EXPORT(hak__builtin_ownership_tls) = {
	HAK_POLICY_DESC_INIT(HAK_POLICY_OWNERSHIP, "tls", "2.0.0",
			     "Option G: thread-owned slabs, remote MPSC queues drained by the owner, adoption"),
	.init = tls_init,
	.ops = &tls_ops,
};
