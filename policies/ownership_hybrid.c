/* ownership_hybrid.c: Option G or Option F per size class, chosen at run time. Every class
 * starts as Option G (ownership_tls.c: thread-owned slabs, remote MPSC queues drained by the
 * owner); a class whose frees are mostly cross-thread switches to Option F (ownership_central.c:
 * ANY slabs, a per-class bounded MPMC queue of batches, carving under the class lock) for the
 * slabs it makes from then on, and back when its cross-thread share falls. It owns the per-class
 * models, the measurements and the switching rule, the class queues and ANY slabs, and each
 * thread's G slabs. Both models' code is copied from those two plugins (a plugin may not call
 * another); only this file's rules about mixing them are new.
 *
 * Measuring. Under G the share is exact: frees into caches (class_local_frees, the fast path's
 * counts, read once per window) against frees of other threads' G blocks (free_foreign, counted
 * in striped relaxed atomics). Under F every thread caches every block, so no free is "remote"
 * any more; the share is then the cross-thread FLOW: per thread and class, blocks brought in by
 * refills against blocks sent out by flushes (and foreign frees of ANY blocks), reported in
 * chunks. A producer's surplus of refills is only matched by consumers' surplus of flushes when
 * blocks travel between threads, so min(surplus in, surplus out) over a window is a lower bound
 * of the blocks that moved; a thread-local churn has neither surplus (its cache absorbs both).
 * The bound misses symmetric exchange (every thread both gives and takes): such a class would
 * leave F, find G's exact share high and come back; a class that returns to F within 2 * dwell
 * windows of leaving it doubles its F dwell (up to 64 times), so the re-probing fades.
 *
 * Switching rule. Every `window_ms` (checked on each thread's 16th refill or flush; no helper
 * thread), one thread reads the counts of every class; a class's window completes once it has
 * seen `window_frees` frees (a quiet class's window spans several looks). A G class whose share
 * is at least `remote_high` for `dwell` windows in a row becomes F; an F class at most
 * `remote_low` for dwell (times its back-off) windows in a row becomes G. A switch changes the
 * class's model and bumps an epoch; threads follow lazily, under their own policy lock:
 *   G -> F: a thread's next refill or flush of any class settles its G slabs of that class (the
 *           free ones go back, the rest are abandoned: adoptable by F carving as ANY slabs and
 *           by G refills) and makes its cache accept ANY.
 *   F -> G: the switching thread returns the class queue to the ANY slabs; a thread's next
 *           refill of the class makes its cache accept its token. ANY slabs keep their live
 *           blocks; those come back through remote queues drained under the class lock (each
 *           evaluation and each trim pass), and the slabs go back once entirely free.
 * A thread's cache may therefore hold blocks of both kinds after a switch, until its next
 * refill of that class: flush then sorts block by block (own G slabs: chain_return; ANY slabs:
 * queue or class lock; anything else, e.g. slabs abandoned meanwhile: remote_push).
 * Threads accept ANY by default (caches_any = 1): a thread that only frees a class (a
 * consumer) caches its blocks as soon as the class is F, without ever refilling it; G refills
 * set the token first, as the pairing rule asks.
 *
 * Invariants: an ANY slab stays ANY until released (never abandoned), and is the class's
 * `cur` or in its ring; the class queue holds only blocks of ANY slabs; a thread's own G slabs
 * of a class are its `cur` or in its ring for that class; a cache not marked `mixed` holds only
 * blocks of the owner its tstate says it accepts. */
#include <hakmem_batch_queue.h>
#include <hakmem_policy.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define HY_MAX_CLASSES 112    /* tstate: 16 + 112 * 32 bytes, under the 4096 the core allows */
#define HY_SCAN_MAX 32        /* slabs looked at per refill before adopting or mapping */
#define HY_WALK_MAX 1024      /* slabs of one class looked at per reclaim / drain */
#define HY_STRIPES 16         /* remote-free counters, each thread hashed to one stripe */
#define HY_TICK_EVERY 16      /* a thread's refills + flushes between looks at the clock */
/* A thread's F flows are reported once this many batches moved: enough for its own refills and
 * flushes to cancel out (a cache holds 2 batches), few enough (at most 1024 blocks) for a
 * window of window_frees >= 1024 frees to see several reports of each side. */
#define HY_REPORT_BATCHES 16
#define HY_MULT_MAX 64        /* most the F dwell is stretched by the back-off */

enum { HY_G = 0, HY_F = 1 };

/* ---- Settings ----------------------------------------------------------------------------- */

struct hy_settings {
	unsigned long remote_high;  /* percent: G -> F at or above */
	unsigned long remote_low;   /* percent: F -> G at or below */
	unsigned long window_ms;    /* between evaluations; 0: every look (tests) */
	unsigned long window_frees; /* frees a class's window needs to count */
	unsigned long dwell;        /* consecutive windows past a threshold before a switch */
};

#define HY_DEFAULTS {50, 20, 10, 4096, 3}

static const struct hak_setting_spec hy_spec[] = {
	{"remote_high", HAK_SETTING_PERCENT, 1, 100, offsetof(struct hy_settings, remote_high), "50",
	 "an Option G class whose share of cross-thread frees is at least this for `dwell` windows becomes Option F"},
	{"remote_low", HAK_SETTING_PERCENT, 0, 99, offsetof(struct hy_settings, remote_low), "20",
	 "an Option F class whose cross-thread share is at most this for `dwell` windows goes back to Option G"},
	{"window_ms", HAK_SETTING_UINT, 0, 60000, offsetof(struct hy_settings, window_ms), "10",
	 "milliseconds between evaluations of every class's share (0: at every 16th refill or flush of a thread)"},
	{"window_frees", HAK_SETTING_UINT, 1024, 1UL << 30, offsetof(struct hy_settings, window_frees), "4096",
	 "frees a class must see for a window to count (a quiet class's window spans several evaluations)"},
	{"dwell", HAK_SETTING_UINT, 1, 1000, offsetof(struct hy_settings, dwell), "3",
	 "windows in a row past a threshold before a class switches: also the fewest it stays in a model"},
};

/* ---- State -------------------------------------------------------------------------------- */

/* What the evaluating thread keeps per class (only it reads or writes this). */
struct hy_eval {
	uint64_t last_local, last_remote, last_anyfree, last_in, last_out; /* counters at the previous look */
	uint64_t acc_remote, acc_in, acc_out, acc_total;     /* the window being filled */
	unsigned streak;  /* complete windows in a row past the threshold towards the other model */
	unsigned windows; /* complete windows since the last switch */
	unsigned mult;    /* the F side's dwell multiplier (back-off) */
	int left_f;       /* the last switch was F -> G */
	int share;        /* the last complete window's share in percent, -1 before one */
};

struct hy_class {
	struct hak_batch_queue q; /* F: batches of freed blocks (hakmem_batch_queue.h) */
	pthread_mutex_t lock;   /* the ANY slabs: cur, ring, and their free lists */
	hak_slab *cur;          /* ANY slab refills carve from */
	hak_slab *ring;         /* the class's other ANY slabs, circular via the policy links */
	_Atomic int xmodel;     /* HY_G or HY_F: written by the evaluating thread only */
	_Atomic int xany_remote; /* a block went to an ANY slab's remote queue since the last drain */
	_Atomic uint64_t xflow_in, xflow_out; /* F measure: reported surpluses of refills, flushes */
	uint32_t report_at;     /* blocks a thread moves between two reports of its flows */
	struct hy_eval ev;
} __attribute__((aligned(64)));

struct hy_state {
	hak_policy *self; /* this policy's handle: slabs are acquired and adopted on its behalf */
	struct hy_settings set;
	unsigned nclasses;
	int id_model, id_switches, id_share, id_pops, id_pushes, id_evals; /* named counters */
	_Atomic uint64_t xepoch;        /* switches so far: a thread re-reads the models when it moved */
	_Atomic uint64_t xnext_eval_ns; /* no evaluation before */
	_Atomic int xevaluating;        /* one evaluation at a time */
	/* free_foreign's counts per stripe and class: frees of other threads' G blocks (remote),
	 * and of ANY blocks by threads that did not cache them (anyfree) */
	_Atomic uint64_t xremote[HY_STRIPES][HY_MAX_CLASSES] __attribute__((aligned(64)));
	_Atomic uint64_t xanyfree[HY_STRIPES][HY_MAX_CLASSES] __attribute__((aligned(64)));
	struct hy_class cls[];
};

/* Per thread and class (tstate; zeroed for a new thread: accepts ANY, no slabs). */
struct hy_tclass {
	hak_slab *cur;  /* own G slab refills take from first */
	hak_slab *ring; /* the thread's other G slabs of this class */
	uint32_t in;    /* blocks refilled from ANY slabs or the queue since the last report */
	uint32_t out;   /* blocks of ANY slabs flushed since the last report */
	uint8_t tok;    /* the cache accepts the thread's token (else HAK_OWNER_ANY) */
	uint8_t mixed;  /* the cache may hold blocks of the other kind until its next refill */
};

struct hy_tstate {
	uint64_t epoch; /* the switch epoch this thread's accepts follow */
	uint32_t ticks; /* refills + flushes */
	uint32_t unused;
	struct hy_tclass cls[HY_MAX_CLASSES];
};
_Static_assert(sizeof(struct hy_tstate) <= 4096, "the core keeps at most 4096 bytes per thread");

static const struct hak_core_api *core;

/* Expensive checks of the invariants above, for the unit tests (they define HY_CHECKS). */
#ifdef HY_CHECKS
#define HY_CHECK(cond)                                                                          \
	do {                                                                                    \
		if (!(cond)) {                                                                  \
			core->log("%s:%d: hybrid check failed: %s", __FILE__, __LINE__, #cond); \
			abort();                                                                \
		}                                                                               \
	} while (0)

static uintptr_t owner_of(const void *b)
{
	struct hak_slab_info info;
	core->slab_get_info(core->slab_of(b), &info);
	return info.owner;
}

static bool chain_all_owned_by(struct hak_chain ch, uintptr_t owner)
{
	for (void *b = ch.head; b; b = ((void **)b)[0])
		if (owner_of(b) != owner)
			return false;
	return true;
}

static bool in_ring(hak_slab *ring, hak_slab *s)
{
	hak_slab *r = ring;
	for (unsigned i = 0; r && i < 100000; i++) {
		if (r == s)
			return true;
		r = hak_ring_next(core, r);
		if (r == ring)
			break;
	}
	return false;
}
#else
#define HY_CHECK(cond) ((void)0)
#endif
/* Hooks for a test that sees the core's internals: every block of a chain that moves is free
 * (marked), and a slab about to be released has every block it carved back. */
#ifndef HY_CHECK_CHAIN
#define HY_CHECK_CHAIN(ch) ((void)0)
#endif
#ifndef HY_CHECK_RELEASE
#define HY_CHECK_RELEASE(s) ((void)0)
#endif


/* ---- The switching rule (pure: the unit tests drive it directly) --------------------------- */

/* What a class did since the previous look: `remote` frees of other threads' G blocks, `in`
 * and `out` the F flows' surpluses, `total` frees. */
struct hy_look {
	uint64_t remote, in, out, total;
};

/* One look at a class; returns the model the class is to be in from now on. A window's share
 * is the model's own measure: G, the remote frees; F, the smaller of the two surpluses, taken
 * over the whole window (each side is reported in chunks, so one look may see only one). */
static int hy_decide(struct hy_eval *e, int model, struct hy_look l, const struct hy_settings *s)
{
	e->acc_remote += l.remote;
	e->acc_in += l.in;
	e->acc_out += l.out;
	e->acc_total += l.total;
	if (e->acc_total < s->window_frees)
		return model; /* the window goes on */
	uint64_t cross = model == HY_G ? e->acc_remote : e->acc_in < e->acc_out ? e->acc_in : e->acc_out;
	uint64_t share = cross >= e->acc_total ? 100 : cross * 100 / e->acc_total;
	e->acc_remote = e->acc_in = e->acc_out = e->acc_total = 0;
	e->share = (int)share;
	e->windows++;
	if (e->mult == 0)
		e->mult = 1;
	if (model == HY_G) {
		e->streak = share >= s->remote_high ? e->streak + 1 : 0;
		if (e->streak < s->dwell)
			return HY_G;
		/* Back to F soon after leaving it: F's flow measure missed this class's traffic. */
		if (e->left_f && e->windows <= 2 * s->dwell)
			e->mult = e->mult * 2 > HY_MULT_MAX ? HY_MULT_MAX : e->mult * 2;
		else
			e->mult = 1;
		e->left_f = 0;
		e->streak = e->windows = 0;
		return HY_F;
	}
	e->streak = share <= s->remote_low ? e->streak + 1 : 0;
	if (e->streak < s->dwell * e->mult)
		return HY_F;
	e->left_f = 1;
	e->streak = e->windows = 0;
	return HY_G;
}

/* ---- Option G: a thread's own slabs (ownership_tls.c) -------------------------------------- */

static int take_into_cache(hak_thread *t, hak_slab *s, unsigned cls, unsigned n)
{
	struct hak_chain ch;
	core->remote_drain(s);
	if (!core->slab_take(s, n, &ch))
		return 0;
	HY_CHECK_CHAIN(ch);
	core->cache_fill(t, cls, ch);
	return 1;
}

static hak_slab *ring_find(hak_slab **ring)
{
	for (unsigned i = 0; i < HY_SCAN_MAX && *ring; i++) {
		hak_slab *s = *ring;
		struct hak_slab_info info;
		core->slab_get_info(s, &info);
		if (info.free || info.remote_pending) {
			hak_ring_remove(core, ring, s);
			return s;
		}
		*ring = hak_ring_next(core, s);
	}
	return NULL;
}

static int g_refill(struct hy_state *st, hak_thread *t, struct hy_tclass *c, unsigned cls)
{
	uintptr_t me = core->thread_token(t);
	unsigned n = core->refill_count(t, cls);
	for (;;) {
		if (c->cur) {
			if (take_into_cache(t, c->cur, cls, n))
				return 0;
			hak_ring_add(core, &c->ring, c->cur);
			c->cur = NULL;
		}
		hak_slab *s = ring_find(&c->ring);
		if (!s)
			s = core->slab_adopt(st->self, cls, me);
		if (!s)
			s = core->slab_acquire(st->self, cls, me);
		if (!s)
			return 12; /* ENOMEM */
		c->cur = s;
	}
}

/* One of the thread's G slabs became entirely free: back, unless refills use it. */
static void on_g_free(void *ctx, hak_slab *s)
{
	struct hy_tclass *c = ctx;
	if (s == c->cur)
		return;
	HY_CHECK(in_ring(c->ring, s));
	hak_ring_remove(core, &c->ring, s);
	HY_CHECK_RELEASE(s);
	core->slab_release(s);
}

static void settle(hak_slab *s)
{
	struct hak_slab_info info;
	core->remote_drain(s);
	core->slab_get_info(s, &info);
	if (info.used == 0) {
		HY_CHECK_RELEASE(s);
		core->slab_release(s);
	} else {
		core->slab_abandon(s);
	}
}

/* The thread leaves G for this class (or exits): free slabs go back, the rest are adoptable. */
static void settle_class(struct hy_tclass *c)
{
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

/* ---- Option F: the class's ANY slabs (ownership_central.c; class lock held) --------------- */

/* An ANY slab became entirely free: it goes back, even the current one. */
static void on_any_free(void *ctx, hak_slab *s)
{
	struct hy_class *c = ctx;
	HY_CHECK(s == c->cur || in_ring(c->ring, s));
	if (s == c->cur)
		c->cur = NULL;
	else
		hak_ring_remove(core, &c->ring, s);
	HY_CHECK_RELEASE(s);
	core->slab_release(s);
}

static int carve(struct hy_state *st, struct hy_class *c, unsigned cls, unsigned n, struct hak_chain *ch)
{
	for (;;) {
		if (c->cur) {
			core->remote_drain(c->cur); /* foreign frees of ANY blocks wait there */
			if (core->slab_take(c->cur, n, ch))
				return 0;
			hak_ring_add(core, &c->ring, c->cur);
			c->cur = NULL;
		}
		c->cur = ring_find(&c->ring);
		if (!c->cur) /* what G threads abandoned serves F as well */
			c->cur = core->slab_adopt(st->self, cls, HAK_OWNER_ANY);
		if (!c->cur)
			c->cur = core->slab_acquire(st->self, cls, HAK_OWNER_ANY);
		if (!c->cur)
			return 12;
	}
}

/* Every slab of a ring (a G thread's parked slabs, or an F class's) whose blocks are all free
 * goes back to the core, its remote queue drained first; at most HY_WALK_MAX slabs, once round. */
static void ring_release_free(hak_slab **ring)
{
	hak_slab *s = *ring, *first_kept = NULL;
	for (unsigned i = 0; s && i < HY_WALK_MAX; i++) {
		hak_slab *next = hak_ring_next(core, s);
		struct hak_slab_info info;
		core->slab_get_info(s, &info);
		if (info.remote_pending) {
			core->remote_drain(s);
			core->slab_get_info(s, &info);
		}
		if (info.used == 0) {
			hak_ring_remove(core, ring, s);
			HY_CHECK_RELEASE(s);
			core->slab_release(s);
		} else if (!first_kept) {
			first_kept = s;
		}
		if (!*ring || next == first_kept)
			break;
		s = next;
	}
}

/* The queue back to the slabs, remote queues drained, entirely free slabs released. */
static void any_drain_locked(struct hy_class *c)
{
	for (void *batch = hak_batch_queue_take(&c->q); batch; batch = hak_batch_queue_take(&c->q)) {
		HY_CHECK_CHAIN(hak_chain_of(batch));
		core->chain_return(hak_chain_of(batch), on_any_free, c);
	}
	ring_release_free(&c->ring);
	if (c->cur) {
		struct hak_slab_info info;
		core->remote_drain(c->cur);
		core->slab_get_info(c->cur, &info);
		if (info.used == 0) {
			HY_CHECK_RELEASE(c->cur);
			core->slab_release(c->cur);
			c->cur = NULL;
		}
	}
}

static void any_drain(struct hy_class *c)
{
	atomic_store_explicit(&c->xany_remote, 0, memory_order_relaxed);
	pthread_mutex_lock(&c->lock);
	any_drain_locked(c);
	pthread_mutex_unlock(&c->lock);
}

/* A chain of ANY blocks leaves a cache: to the queue while the class is F, else (or when the
 * queue is full) back to the slabs under the class lock. */
static void any_put(struct hy_state *st, hak_thread *t, unsigned cls, struct hak_chain chain)
{
	struct hy_class *c = &st->cls[cls];
	HY_CHECK_CHAIN(chain);
	if (atomic_load_explicit(&c->xmodel, memory_order_relaxed) == HY_F && hak_batch_queue_put(&c->q, chain.head)) {
		core->counter_add(t, st->id_pushes, 1);
		return;
	}
	pthread_mutex_lock(&c->lock);
	core->chain_return(chain, on_any_free, c);
	pthread_mutex_unlock(&c->lock);
}

static int f_refill(struct hy_state *st, hak_thread *t, struct hy_tclass *tc, unsigned cls)
{
	struct hy_class *c = &st->cls[cls];
	struct hak_chain ch;
	void *batch = hak_batch_queue_take(&c->q);
	if (batch) {
		core->counter_add(t, st->id_pops, 1);
		ch = hak_chain_of(batch);
		HY_CHECK(chain_all_owned_by(ch, HAK_OWNER_ANY));
		HY_CHECK_CHAIN(ch);
		core->cache_fill(t, cls, ch);
		tc->in += ch.count;
		return 0;
	}
	unsigned n = core->refill_count(t, cls);
	pthread_mutex_lock(&c->lock);
	int err = carve(st, c, cls, n, &ch);
	pthread_mutex_unlock(&c->lock);
	if (!err) {
		HY_CHECK_CHAIN(ch);
		core->cache_fill(t, cls, ch);
		tc->in += ch.count;
	}
	return err;
}

/* ---- Measuring and switching ---------------------------------------------------------------- */

static unsigned stripe_of(const hak_thread *t)
{
	return (unsigned)((((uintptr_t)t >> 6) * UINT64_C(0x9E3779B97F4A7C15)) >> 60) & (HY_STRIPES - 1);
}

/* A thread's F flows of a class, once they are worth a report (or `force`: it exits). */
static void flow_report(struct hy_state *st, struct hy_tclass *tc, unsigned cls, bool force)
{
	struct hy_class *c = &st->cls[cls];
	if (!force && tc->in + tc->out < c->report_at)
		return;
	if (tc->in > tc->out)
		atomic_fetch_add_explicit(&c->xflow_in, tc->in - tc->out, memory_order_relaxed);
	else if (tc->out > tc->in)
		atomic_fetch_add_explicit(&c->xflow_out, tc->out - tc->in, memory_order_relaxed);
	tc->in = tc->out = 0;
}

static void set_model(struct hy_state *st, hak_thread *t, unsigned cls, int model)
{
	struct hy_class *c = &st->cls[cls];
	atomic_store_explicit(&c->xmodel, model, memory_order_release);
	atomic_fetch_add_explicit(&st->xepoch, 1, memory_order_release);
	core->counter_set(st->id_model < 0 ? -1 : st->id_model + (int)cls, model);
	core->counter_add(t, st->id_switches < 0 ? -1 : st->id_switches + (int)cls, 1);
	if (model == HY_G)
		any_drain(c); /* nobody takes from the queue under G */
}

/* A counter's growth since the previous look (0 if it went back: a fork child may forget the
 * frees of a state it could not trust). */
static uint64_t since(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

/* Every class's counts since the previous look, through hy_decide. One thread at a time, under
 * its own policy lock and no class lock (class_local_frees takes the thread registry lock). */
static void evaluate(struct hy_state *st, hak_thread *t)
{
	uint64_t local[HY_MAX_CLASSES];
	unsigned n = st->nclasses;
	core->class_local_frees(local, n);
	core->counter_add(t, st->id_evals, 1);
	for (unsigned cls = 0; cls < n; cls++) {
		struct hy_class *c = &st->cls[cls];
		struct hy_eval *e = &c->ev;
		uint64_t remote = 0, anyfree = 0;
		for (unsigned k = 0; k < HY_STRIPES; k++) {
			remote += atomic_load_explicit(&st->xremote[k][cls], memory_order_relaxed);
			anyfree += atomic_load_explicit(&st->xanyfree[k][cls], memory_order_relaxed);
		}
		uint64_t in = atomic_load_explicit(&c->xflow_in, memory_order_relaxed);
		uint64_t out = atomic_load_explicit(&c->xflow_out, memory_order_relaxed);
		uint64_t dl = since(local[cls], e->last_local), dr = since(remote, e->last_remote);
		uint64_t da = since(anyfree, e->last_anyfree), din = since(in, e->last_in);
		uint64_t dout = since(out, e->last_out) + da;
		e->last_local = local[cls], e->last_remote = remote, e->last_anyfree = anyfree;
		e->last_in = in, e->last_out = out;
		int model = atomic_load_explicit(&c->xmodel, memory_order_relaxed);
		/* G: frees of other threads' G blocks among all frees of G blocks (frees of ANY blocks
		 * left from an F period are neither). F: the blocks that moved between threads. */
		struct hy_look look = {dr, din, dout, model == HY_G ? dl + dr : dl + dr + da};
		int shown = e->share;
		int next = hy_decide(e, model, look, &st->set);
		if (e->share != shown)
			core->counter_set(st->id_share < 0 ? -1 : st->id_share + (int)cls, e->share);
		if (next != model)
			set_model(st, t, cls, next);
		else if (model == HY_G && atomic_load_explicit(&c->xany_remote, memory_order_relaxed))
			any_drain(c); /* ANY blocks freed under G: their slabs may be free now */
	}
}

static void maybe_evaluate(struct hy_state *st, hak_thread *t)
{
	uint64_t next = atomic_load_explicit(&st->xnext_eval_ns, memory_order_relaxed);
	uint64_t now = st->set.window_ms ? core->now_ns() : next;
	if (now < next)
		return;
	if (st->set.window_ms &&
	    !atomic_compare_exchange_strong_explicit(&st->xnext_eval_ns, &next, now + st->set.window_ms * 1000000u,
						     memory_order_relaxed, memory_order_relaxed))
		return;
	if (atomic_exchange_explicit(&st->xevaluating, 1, memory_order_acquire))
		return;
	evaluate(st, t);
	atomic_store_explicit(&st->xevaluating, 0, memory_order_release);
}

/* Classes that became F since this thread last looked: its G slabs settle and its cache accepts
 * ANY. The cache of `empty_cls` is known empty (a refill of it); any other may still hold the
 * old kind's blocks: marked mixed until its next refill. t's policy lock held. */
static void follow_switches(struct hy_state *st, hak_thread *t, struct hy_tstate *ts, unsigned empty_cls)
{
	for (unsigned cls = 0; cls < st->nclasses; cls++) {
		struct hy_tclass *tc = &ts->cls[cls];
		if (!tc->tok || atomic_load_explicit(&st->cls[cls].xmodel, memory_order_acquire) != HY_F)
			continue;
		settle_class(tc);
		core->cache_accept(t, cls, HAK_OWNER_ANY);
		tc->tok = 0;
		tc->mixed = cls != empty_cls;
	}
}

/* At each refill and flush: follow switches made since the last one, look at the clock now
 * and then. Budget: one load and a compare, an increment and a test. */
static void tick(struct hy_state *st, hak_thread *t, struct hy_tstate *ts, unsigned empty_cls)
{
	uint64_t e = atomic_load_explicit(&st->xepoch, memory_order_acquire);
	if (e != ts->epoch) {
		ts->epoch = e;
		follow_switches(st, t, ts, empty_cls);
	}
	if (++ts->ticks % HY_TICK_EVERY == 0)
		maybe_evaluate(st, t);
}

/* ---- The ops ---------------------------------------------------------------------------------- */

static int hy_refill(void *state, hak_thread *t, void *tstate, unsigned cls)
{
	struct hy_state *st = state;
	struct hy_tstate *ts = tstate;
	struct hy_tclass *tc = &ts->cls[cls];
	tick(st, t, ts, cls);
	tc->mixed = 0; /* the cache is empty */
	if (atomic_load_explicit(&st->cls[cls].xmodel, memory_order_acquire) == HY_G) {
		if (!tc->tok) {
			core->cache_accept(t, cls, core->thread_token(t)); /* before the slabs: pairing */
			tc->tok = 1;
		}
		return g_refill(st, t, tc, cls);
	}
	if (tc->tok) { /* a switch this thread had not followed yet */
		settle_class(tc);
		core->cache_accept(t, cls, HAK_OWNER_ANY);
		tc->tok = 0;
	}
	int err = f_refill(st, t, tc, cls);
	flow_report(st, tc, cls, false);
	return err;
}

/* A cache's blocks sorted one by one (a switch left both kinds in it). */
static void flush_sorted(struct hy_state *st, hak_thread *t, struct hy_tclass *tc, unsigned cls,
			 struct hak_chain chain)
{
	uintptr_t me = core->thread_token(t);
	struct hak_chain own = {NULL, NULL, 0}, any = {NULL, NULL, 0};
	for (void *b = chain.head, *next; b; b = next) {
		next = ((void **)b)[0];
		hak_slab *s = core->slab_of(b);
		struct hak_slab_info info;
		core->slab_get_info(s, &info);
		struct hak_chain *to = info.owner == HAK_OWNER_ANY ? &any : tc->tok && info.owner == me ? &own : NULL;
		if (!to) { /* another owner (a slab abandoned at a switch, adopted since...): its queue */
			core->remote_push(s, b);
			continue;
		}
		hak_chain_append(to, b);
	}
	if (own.head)
		core->chain_return(own, on_g_free, tc);
	if (any.head) {
		tc->out += any.count;
		any_put(st, t, cls, any);
	}
}

static void hy_flush(void *state, hak_thread *t, void *tstate, unsigned cls, struct hak_chain chain)
{
	struct hy_state *st = state;
	struct hy_tstate *ts = tstate;
	struct hy_tclass *tc = &ts->cls[cls];
	HY_CHECK_CHAIN(chain);
	tick(st, t, ts, ~0u);
	if (tc->mixed) {
		flush_sorted(st, t, tc, cls, chain);
	} else if (tc->tok) {
		HY_CHECK(chain_all_owned_by(chain, core->thread_token(t)));
		core->chain_return(chain, on_g_free, tc); /* only blocks of this thread's G slabs */
		return;
	} else {
		HY_CHECK(chain_all_owned_by(chain, HAK_OWNER_ANY));
		tc->out += chain.count;
		any_put(st, t, cls, chain); /* only blocks of ANY slabs */
	}
	flow_report(st, tc, cls, false);
}

/* Any thread, no lock held: never touch a slab's private list here. */
/* A foreign free of `block`, or (block NULL) of the gathered `chain`, all of slab s. */
static void foreign_free(struct hy_state *st, hak_thread *t, hak_slab *s, void *block, struct hak_chain chain)
{
	struct hak_slab_info info;
	core->slab_get_info(s, &info);
	unsigned k = stripe_of(t), n = block ? 1 : chain.count;
	bool any = info.owner == HAK_OWNER_ANY; /* by a thread caching its token for this class */
	if (any)
		atomic_fetch_add_explicit(&st->xanyfree[k][info.cls], n, memory_order_relaxed);
	else if (info.owner != core->thread_token(t)) /* another thread's G slab, or an abandoned one */
		atomic_fetch_add_explicit(&st->xremote[k][info.cls], n, memory_order_relaxed);
	if (block)
		core->remote_push(s, block);
	else
		core->remote_push_chain(s, chain);
	/* after the push: ANY slabs' queues are drained under the class lock */
	if (any && !atomic_load_explicit(&st->cls[info.cls].xany_remote, memory_order_relaxed))
		atomic_store_explicit(&st->cls[info.cls].xany_remote, 1, memory_order_relaxed);
}

static void hy_free_foreign(void *state, hak_thread *t, hak_slab *s, void *block)
{
	foreign_free(state, t, s, block, (struct hak_chain){NULL, NULL, 0});
}

/* Such frees of one slab gathered by the core (2.1): counted as many, pushed with one atomic. */
static void hy_free_foreign_chain(void *state, hak_thread *t, hak_slab *s, struct hak_chain chain)
{
	foreign_free(state, t, s, NULL, chain);
}

static void hy_thread_exit(void *state, hak_thread *t, void *tstate)
{
	(void)t;
	struct hy_state *st = state;
	struct hy_tstate *ts = tstate;
	for (unsigned cls = 0; cls < st->nclasses; cls++) {
		struct hy_tclass *tc = &ts->cls[cls];
		settle_class(tc); /* no class lock: this may run inside another thread's carve */
		flow_report(st, tc, cls, true);
	}
}

/* A trim pass, t outside its slow paths: its parked G slabs drained, the free ones back. */
static void hy_reclaim(void *state, hak_thread *t, void *tstate)
{
	(void)t;
	struct hy_state *st = state;
	struct hy_tstate *ts = tstate;
	for (unsigned cls = 0; cls < st->nclasses; cls++) {
		ring_release_free(&ts->cls[cls].ring);
	}
}

static void hy_consolidate(void *state)
{
	struct hy_state *st = state;
	for (unsigned cls = 0; cls < st->nclasses; cls++)
		any_drain(&st->cls[cls]);
}

static void hy_fork_prepare(void *state)
{
	struct hy_state *st = state;
	for (unsigned i = 0; i < st->nclasses; i++)
		pthread_mutex_lock(&st->cls[i].lock);
}

/* The same, only if every class lock is free at once (ABI 2.1: the core never waits for a policy
 * lock while it holds glibc's stdio list lock, or in a fork from a signal handler). */
static int hy_fork_try_prepare(void *state)
{
	struct hy_state *st = state;
	for (unsigned i = 0; i < st->nclasses; i++)
		if (pthread_mutex_trylock(&st->cls[i].lock) != 0) {
			while (i-- > 0)
				pthread_mutex_unlock(&st->cls[i].lock);
			return 16; /* EBUSY */
		}
	return 0;
}

static void hy_fork_parent(void *state)
{
	struct hy_state *st = state;
	for (unsigned i = st->nclasses; i-- > 0;)
		pthread_mutex_unlock(&st->cls[i].lock);
}

/* Only the forking thread survives: locks re-made, each queue rebuilt around the batches fully
 * published (hak_batch_queue_fork_child), and an evaluation cut short by the fork forgotten. */
static void hy_fork_child(void *state)
{
	struct hy_state *st = state;
	for (unsigned i = 0; i < st->nclasses; i++) {
		struct hy_class *c = &st->cls[i];
		pthread_mutex_init(&c->lock, NULL);
		hak_batch_queue_fork_child(&c->q);
	}
	atomic_store(&st->xevaluating, 0);
}

static int hy_init(const struct hak_core_api *api, hak_policy *self, const struct hak_settings *settings,
		   void **state, char *err, size_t errlen)
{
	struct hy_settings set = HY_DEFAULTS;
	int e = hak_settings_parse(settings, hy_spec, sizeof hy_spec / sizeof hy_spec[0], &set, err, errlen);
	if (e)
		return e;
	if (set.remote_low >= set.remote_high) {
		int line = 0;
		for (size_t i = 0; i < settings->count; i++)
			if (!strcmp(settings->items[i].key, "remote_low") || !strcmp(settings->items[i].key, "remote_high"))
				line = settings->items[i].line;
		snprintf(err, errlen, "line %d: remote_low = %lu%%, remote_high = %lu%%: expected remote_low below remote_high",
			 line, set.remote_low, set.remote_high);
		return 22;
	}
	unsigned n = api->class_count();
	if (n > HY_MAX_CLASSES) {
		snprintf(err, errlen, "core has %u size classes, this policy handles %u", n, HY_MAX_CLASSES);
		return 22;
	}
	size_t size = sizeof(struct hy_state) + n * sizeof(struct hy_class);
	struct hy_state *st = aligned_alloc(64, (size + 63) & ~(size_t)63);
	if (!st) {
		snprintf(err, errlen, "no memory for %u class queues", n);
		return 12;
	}
	memset(st, 0, size);
	st->self = self;
	st->set = set;
	st->nclasses = n;
	st->id_model = api->counter_register(self, "class_model", HAK_COUNTER_GAUGE, n); /* 0 G, 1 F */
	st->id_switches = api->counter_register(self, "switches", HAK_COUNTER_COUNT, n);
	st->id_share = api->counter_register(self, "remote_share", HAK_COUNTER_GAUGE, n); /* percent */
	st->id_pops = api->counter_register(self, "pops", HAK_COUNTER_COUNT, 1);     /* batches from a queue */
	st->id_pushes = api->counter_register(self, "pushes", HAK_COUNTER_COUNT, 1); /* batches into one */
	st->id_evals = api->counter_register(self, "evaluations", HAK_COUNTER_COUNT, 1);
	for (unsigned i = 0; i < n; i++) {
		pthread_mutex_init(&st->cls[i].lock, NULL);
		hak_batch_queue_reset(&st->cls[i].q);
		st->cls[i].ev.share = -1;
		st->cls[i].report_at = HY_REPORT_BATCHES * api->class_batch(i);
		st->cls[i].ev.mult = 1;
	}
	core = api;
	*state = st;
	return 0;
}

static void hy_fini(void *state)
{
	free(state);
}

static const struct hak_ownership_ops hy_ops = {
	.size = sizeof(struct hak_ownership_ops),
	.thread_state_size = sizeof(struct hy_tstate),
	.caches_any = 1, /* a class's G refill sets the token before it takes a slab */
	.refill = hy_refill,
	.flush = hy_flush,
	.free_foreign = hy_free_foreign,
	.thread_exit = hy_thread_exit,
	.consolidate = hy_consolidate,
	.reclaim = hy_reclaim,
	.free_foreign_chain = hy_free_foreign_chain,
};

HAK_POLICY_EXPORT(hak__builtin_ownership_hybrid) = {
	HAK_POLICY_DESC_INIT(HAK_POLICY_OWNERSHIP, "hybrid", "1.0.0",
			     "Option G or F per size class: G until a class's frees are mostly cross-thread, then F, and back"),
	.init = hy_init,
	.fini = hy_fini,
	.fork_prepare = hy_fork_prepare,
	.fork_parent = hy_fork_parent,
	.fork_child = hy_fork_child,
	.fork_try_prepare = hy_fork_try_prepare,
	.ops = &hy_ops,
	HAK_SETTINGS_SPEC(hy_spec),
};
