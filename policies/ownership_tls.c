/* ownership_tls.c: Option G, the default. Each slab is owned by one thread, which alone takes
 * blocks from it, without atomics. Other threads push the blocks they free to the slab's
 * remote queue; the owner drains it when it refills. An exiting thread gives fully free slabs
 * back and abandons the rest; refills adopt abandoned slabs before mapping anything new, and
 * the core's trim pass drains and releases those nobody adopts. Trim passes also drain the
 * parked slabs of live threads (tls_reclaim), so what others free to an idle thread goes back.
 * Per thread and class: the current slab and a ring of the thread's other slabs. */
#include <hakmem_policy.h>
#include <string.h>

#define TLS_SCAN_MAX 32       /* other slabs looked at per refill before adopting or mapping */
#define TLS_RECLAIM_MAX 1024  /* parked slabs of one class looked at per trim pass */

struct tls_class {
	hak_slab *cur;  /* slab refills take from first */
	hak_slab *ring; /* the thread's other slabs of this class, circular, via the policy links */
};

struct tls_tstate {
	struct tls_class cls[128]; /* indexed by size class (the core has fewer) */
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
	struct tls_class *c = &((struct tls_tstate *)tstate)->cls[cls];
	uintptr_t me = core->thread_token(t);
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

/* A slab became entirely free: give it back unless it is the one refills use. */
static void on_slab_free(void *ctx, hak_slab *s)
{
	struct tls_class *c = ((struct flush_ctx *)ctx)->c;
	if (s == c->cur)
		return;
	hak_ring_remove(core, &c->ring, s);
	core->slab_release(s);
}

static void tls_flush(void *state, hak_thread *t, void *tstate, unsigned cls, struct hak_chain chain)
{
	(void)state;
	(void)t;
	struct flush_ctx ctx = {&((struct tls_tstate *)tstate)->cls[cls]};
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

/* A trim pass, with t outside its slow paths: drain the remote queues of t's parked slabs
 * and give back those entirely free. The current slab of each class stays: refills use it. */
static void tls_reclaim(void *state, hak_thread *t, void *tstate)
{
	(void)state, (void)t;
	struct tls_tstate *ts = tstate;
	unsigned n = core->class_count();
	for (unsigned cls = 0; cls < n; cls++) {
		struct tls_class *c = &ts->cls[cls];
		hak_slab *s = c->ring, *first_kept = NULL;
		for (unsigned i = 0; s && i < TLS_RECLAIM_MAX; i++) {
			hak_slab *next = hak_ring_next(core, s);
			struct hak_slab_info info;
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
