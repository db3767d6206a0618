/* trim_decay.c: trim by decay (jemalloc's dirty decay, per SuperSlab unit). Of the pages that
 * became free at time t, the share still kept at t + x is h(x / decay_ms), h(u) = 1 - (3u^2 - 2u^3)
 * (smoothstep from 1 down to 0, reached at decay_ms; default 10000; 0: everything at once, like
 * eager; -1: never). A pass lets at most the sum of bytes * h(now - free_since) stay dirty, the
 * sum taken over every free run (dirty or already purged) and over the empty SuperSlabs earlier
 * passes unmapped, and purges the excess longest-free first; empty SuperSlabs follow the same
 * curve (at most the ceiling of the sum of h over their ages stay mapped, never fewer than
 * `empty_reserve`), and so do the cached large mappings (by bytes, with jemalloc's backlog of
 * what was cached in each of 32 epochs: the core gives no age per mapping). A pass also retires
 * parked thread states, consolidates, collects abandoned slabs and reclaims for idle threads.
 * Passes come from the program's slow paths while it is busy (tick, at most every pass_ms,
 * default decay_ms / 32) and from a helper thread once it goes quiet; the helper sleeps without
 * a time limit when nothing is left on the curve, until the allocator has work again. While the
 * helper runs, exited threads' states are parked for successors. Out of memory: everything goes
 * back. Written against include/hakmem_policy.h alone. */
#include <hakmem_policy.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PARK_STATES 8  /* exited threads' states kept for successors while the helper runs */
#define PARK_UNITS 64  /* 4 MB of slabs each at most */
#define LARGE_STEPS 32 /* epochs of the large cache's backlog over decay_ms */
#define H_ONE 65536u   /* h in Q16: h(0) = H_ONE, h(1) = 0 */
#define OLDEST 64      /* empty SuperSlabs one pass may unmap */
#define RELEASED 256   /* unmapped SuperSlabs remembered while on the curve */

/* An empty SuperSlab: when it emptied, and its free bytes. */
struct gone {
	uint64_t since;
	uint64_t bytes;
};

struct decay_settings {
	long decay_ms;               /* -1: never; 0: at once */
	unsigned long empty_reserve; /* empty SuperSlabs always kept mapped (a floor) */
	unsigned long pass_ms;       /* 0: automatic (decay_ms / 32, at least 10) */
	struct hak_large_limits large;
};

static const struct hak_setting_spec decay_spec[] = {
	{"decay_ms", HAK_SETTING_INT, -1, 600000, offsetof(struct decay_settings, decay_ms), "10000",
	 "milliseconds after which a freed page is surely returned; the share kept falls smoothly "
	 "until then (0: at once, -1: never)"},
	{"empty_reserve", HAK_SETTING_UINT, 0, 1024, offsetof(struct decay_settings, empty_reserve), "2",
	 "empty SuperSlabs always kept mapped (their pages are purged all the same)"},
	{"pass_ms", HAK_SETTING_UINT, 0, 60000, offsetof(struct decay_settings, pass_ms), "0",
	 "milliseconds between passes at most (0: decay_ms / 32, at least 10)"},
	HAK_LARGE_CACHE_SETTINGS(struct decay_settings, large),
};

/* The plugin's counters (policies.trim.counters in the stats). */
enum { C_PASSES, C_PURGED, C_RELEASED, C_LARGE, C_DIRTY_LIMIT, C_N };
static const char *const counter_names[C_N] = {"passes", "purged_bytes", "superslabs_released",
					       "large_released", "dirty_limit_bytes"};

struct decay_state {
	const struct hak_core_api *core;
	hak_policy *self;
	struct decay_settings set;
	uint64_t decay_ns, pass_ns; /* from the settings */
	int counter[C_N];           /* ids, -1: uncounted */
	_Atomic int xstarted;       /* a helper thread runs */
	_Atomic int xstopping;      /* stop ran: no more helper */
	_Atomic int xbusy;          /* a pass runs (one at a time: the backlog is not shared) */
	_Atomic int xpending;       /* the last pass left something on the curve */
	_Atomic int xsleeping;      /* the helper waits without a time limit */
	_Atomic uint64_t xlast_pass_ns;
	_Atomic unsigned long xwork; /* bumped by the allocator's calls */
	pthread_mutex_t lock;        /* the helper's sleep without a time limit */
	pthread_cond_t wake;
	/* The large cache's backlog (written by the pass that holds xbusy). */
	uint64_t backlog[LARGE_STEPS]; /* bytes newly cached per epoch, [LARGE_STEPS - 1] the newest */
	uint64_t epoch_ns, epoch_start, large_seen;
	/* Empty SuperSlabs passes unmapped, while still on the curve (same writer). */
	unsigned gone_n;
	struct gone gone[RELEASED];
};

/* ---- The curve ------------------------------------------------------------------------------ */

/* h(age / decay) in Q16: exact integer smoothstep, so it never rises as age grows. */
static uint64_t decay_h(uint64_t age, uint64_t decay_ns)
{
	if (age >= decay_ns)
		return 0;
	uint64_t x = (age << 16) / decay_ns;             /* Q16, < H_ONE (age < 2^47 ns) */
	uint64_t s = (x * x * (3 * (uint64_t)H_ONE - 2 * x)) >> 32; /* 3x^2 - 2x^3, Q16; < 2^50 before */
	return H_ONE - s;
}

/* What one walk of the free runs found. The curve's limit on dirty bytes is the sum of
 * bytes * h(age) over every free run, dirty or already purged: of the pages freed at t, the
 * share h may still be dirty (a sum over the dirty runs alone would apply h again to what
 * earlier passes left, and compound). Empty SuperSlabs are found among the runs (each names its
 * SuperSlab, and they come SuperSlab by SuperSlab); the oldest OLDEST of them are kept, to
 * remember those a pass unmaps. */
struct scan {
	uint64_t now, decay_ns;
	uint64_t dirty, dirty_limit; /* bytes */
	unsigned empties;
	uint64_t empties_h;          /* sum of h over them, Q16 */
	const void *group_ss;        /* the open empty SuperSlab; NULL: none */
	struct gone group;           /* its emptying time (its last unit's free time) and bytes */
	unsigned oldest_n;
	struct gone oldest[OLDEST];  /* the longest-empty ones, oldest first */
};

static uint64_t age_of(uint64_t now, uint64_t since)
{
	return now > since ? now - since : 0;
}

static void scan_close(struct scan *sc)
{
	if (!sc->group_ss)
		return;
	sc->group_ss = NULL;
	sc->empties++;
	sc->empties_h += decay_h(age_of(sc->now, sc->group.since), sc->decay_ns);
	unsigned i = sc->oldest_n < OLDEST ? sc->oldest_n++ : OLDEST;
	while (i > 0 && sc->oldest[i - 1].since > sc->group.since) {
		if (i < OLDEST)
			sc->oldest[i] = sc->oldest[i - 1];
		i--;
	}
	if (i < OLDEST)
		sc->oldest[i] = sc->group;
}

/* Runs under the pool lock: arithmetic only. */
static void scan_run(void *ctx, const struct hak_free_run *r)
{
	struct scan *sc = ctx;
	if (r->dirty)
		sc->dirty += r->bytes;
	if (r->free_since_ns) /* 0: never used since it was mapped, not on the curve */
		sc->dirty_limit += (r->bytes * decay_h(age_of(sc->now, r->free_since_ns), sc->decay_ns)) >> 16;
	if (!r->superslab_empty) {
		scan_close(sc);
		return;
	}
	if (r->superslab != sc->group_ss) {
		scan_close(sc);
		sc->group_ss = r->superslab;
		sc->group = (struct gone){0, 0};
	}
	if (r->free_since_ns > sc->group.since)
		sc->group.since = r->free_since_ns;
	sc->group.bytes += r->bytes;
}

static void decay_scan(struct decay_state *s, uint64_t now, struct scan *sc)
{
	memset(sc, 0, offsetof(struct scan, oldest));
	sc->now = now;
	sc->decay_ns = s->decay_ns;
	s->core->free_runs_each(scan_run, sc);
	scan_close(sc);
}

/* The unmapped SuperSlabs still on the curve: they count in the limits as if still there (of
 * the SuperSlabs that emptied at t, the share h may stay mapped; of their pages, the share h
 * may stay dirty). Forgets those past decay_ms; returns the sum of h (Q16) and of bytes * h. */
static uint64_t gone_limits(struct decay_state *s, uint64_t now, uint64_t *bytes_limit)
{
	uint64_t hsum = 0, bsum = 0;
	unsigned k = 0;
	for (unsigned i = 0; i < s->gone_n; i++) {
		uint64_t h = decay_h(age_of(now, s->gone[i].since), s->decay_ns);
		if (!h)
			continue;
		s->gone[k++] = s->gone[i];
		hsum += h;
		bsum += (s->gone[i].bytes * h) >> 16;
	}
	s->gone_n = k;
	*bytes_limit = bsum;
	return hsum;
}

static void gone_add(struct decay_state *s, struct gone g)
{
	unsigned at = s->gone_n;
	if (at == RELEASED) { /* full: forget the oldest (the least left on the curve) */
		at = 0;
		for (unsigned i = 1; i < RELEASED; i++)
			if (s->gone[i].since < s->gone[at].since)
				at = i;
	} else {
		s->gone_n++;
	}
	s->gone[at] = g;
}

/* The large cache's backlog moves on to `now`, takes in what was cached since the last pass,
 * and says how many bytes the curve lets stay cached. */
static uint64_t large_limit(struct decay_state *s, uint64_t now, uint64_t cached)
{
	if (!s->decay_ns)
		return 0;
	uint64_t adv = (now - s->epoch_start) / s->epoch_ns;
	if (adv >= LARGE_STEPS) {
		memset(s->backlog, 0, sizeof s->backlog);
		s->epoch_start = now;
	} else if (adv) {
		memmove(s->backlog, s->backlog + adv, (LARGE_STEPS - adv) * sizeof s->backlog[0]);
		memset(s->backlog + LARGE_STEPS - adv, 0, adv * sizeof s->backlog[0]);
		s->epoch_start += adv * s->epoch_ns;
	}
	if (cached > s->large_seen)
		s->backlog[LARGE_STEPS - 1] += cached - s->large_seen;
	uint64_t limit = 0, into = now - s->epoch_start;
	for (unsigned i = 0; i < LARGE_STEPS; i++)
		limit += (s->backlog[i] * decay_h((LARGE_STEPS - 1 - i) * s->epoch_ns + into, s->decay_ns)) >> 16;
	return limit;
}

/* ---- A pass ----------------------------------------------------------------------------------- */

static void count(struct decay_state *s, int which, uint64_t n)
{
	if (n && s->counter[which] >= 0)
		s->core->counter_add(NULL, s->counter[which], n);
}

/* One pass (xbusy held): the housekeeping, then everything above the curve goes back. Returns
 * nonzero when something is left that a later pass will give back (or a parked state to retire). */
static int decay_pass_locked(struct decay_state *s)
{
	const struct hak_core_api *c = s->core;
	c->reap_parked(); /* exited threads' slabs become adoptable or go back */
	c->consolidate();
	c->collect_abandoned();
	c->reclaim_threads();
	count(s, C_PASSES, 1);
	struct hak_heap_facts f = {.size = sizeof f};
	c->heap_facts(&f);
	if (s->set.decay_ms < 0)
		return f.parked_states != 0; /* never purge: only the housekeeping */
	uint64_t now = c->now_ns(), gone_bytes;
	struct scan sc;
	decay_scan(s, now, &sc);
	/* Empty SuperSlabs: of those that emptied at t, at most ceil(sum of h) stay mapped, the
	 * reserve always; the longest-empty go first. */
	uint64_t keep = (sc.empties_h + gone_limits(s, now, &gone_bytes) + H_ONE - 1) / H_ONE;
	if (keep < s->set.empty_reserve)
		keep = s->set.empty_reserve;
	if (sc.empties > keep) {
		unsigned want = sc.empties - (unsigned)keep, n;
		if (want > sc.oldest_n)
			want = sc.oldest_n; /* the rest at the next pass */
		n = c->release_empty((unsigned)s->set.empty_reserve, 0, want);
		count(s, C_RELEASED, n);
		if (n) {
			for (unsigned i = 0; i < n && s->decay_ns; i++)
				gone_add(s, sc.oldest[i]);
			decay_scan(s, now, &sc); /* their pages went with them */
			gone_limits(s, now, &gone_bytes);
			c->heap_facts(&f);
		}
	}
	/* Dirty free units: what is above the curve is purged, longest-free first. */
	uint64_t limit = sc.dirty_limit + gone_bytes, purged = 0;
	if (sc.dirty > limit)
		purged = c->purge(0, sc.dirty - limit);
	count(s, C_PURGED, purged);
	if (s->counter[C_DIRTY_LIMIT] >= 0)
		c->counter_set(s->counter[C_DIRTY_LIMIT], (int64_t)limit);
	/* Cached large mappings, by bytes. A mapping goes whole: one goes only when those left
	 * still hold the curve's bytes, within one mapping of the average size (the ceiling, as
	 * for empty SuperSlabs: a lone mapping stays until decay_ms). */
	uint64_t lkeep = large_limit(s, now, f.large_cached_bytes);
	s->large_seen = f.large_cached_bytes;
	if (f.large_cached && lkeep)
		lkeep += f.large_cached_bytes / f.large_cached - 1;
	if (f.large_cached_bytes > lkeep) {
		unsigned n = c->large_release(0, lkeep);
		count(s, C_LARGE, n);
		if (n) {
			c->heap_facts(&f);
			s->large_seen = f.large_cached_bytes;
		}
	}
	return sc.dirty > purged || sc.empties > s->set.empty_reserve || f.large_cached || f.parked_states;
}

/* A pass unless one ran less than min_gap ago or runs now. */
static void decay_pass(struct decay_state *s, uint64_t min_gap)
{
	uint64_t now = s->core->now_ns(), last = atomic_load_explicit(&s->xlast_pass_ns, memory_order_relaxed);
	if (now - last < min_gap || atomic_exchange(&s->xbusy, 1))
		return;
	atomic_store_explicit(&s->xlast_pass_ns, now, memory_order_relaxed);
	atomic_store(&s->xpending, decay_pass_locked(s));
	atomic_store(&s->xbusy, 0);
}

/* ---- The helper thread ---------------------------------------------------------------------- */

/* The helper's only sleep: `ns`, or until the allocator has work (ns = UINT64_MAX) while the
 * work count is still `seen`. Returns nonzero when the helper must end: a core of 2.1 says so
 * when the helper is the process's last thread (its helper_sleep; decay_wake calls helper_wake,
 * and a wake since its previous return counts, so none is lost between the test and the wait).
 * An older core: nanosleep, or the policy's own condition. */
static int decay_sleep(struct decay_state *s, uint64_t ns, unsigned long seen)
{
	if (HAK_CORE_HAS(s->core, helper_sleep)) {
		if (ns == UINT64_MAX && (atomic_load(&s->xwork) != seen || atomic_load(&s->xstopping)))
			return 0;
		return s->core->helper_sleep(ns);
	}
	if (ns != UINT64_MAX) {
		struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
		nanosleep(&ts, NULL);
		return 0;
	}
	pthread_mutex_lock(&s->lock);
	atomic_store(&s->xsleeping, 1); /* then read xwork: a waker bumps it, then reads xsleeping */
	while (atomic_load(&s->xwork) == seen && !atomic_load(&s->xstopping))
		pthread_cond_wait(&s->wake, &s->lock);
	atomic_store(&s->xsleeping, 0);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* The allocator has work: count it, and wake the helper if it sleeps without a time limit. */
static void decay_wake(struct decay_state *s)
{
	atomic_fetch_add(&s->xwork, 1);
	if (HAK_CORE_HAS(s->core, helper_wake))
		s->core->helper_wake();
	if (atomic_load(&s->xsleeping)) {
		pthread_mutex_lock(&s->lock);
		pthread_cond_signal(&s->wake);
		pthread_mutex_unlock(&s->lock);
	}
}

/* A pass every pass_ms while something is on the curve or the allocator is busy (skipped when
 * a tick ran one meanwhile); no wake-up at all once nothing is left and nothing happened. */
static void *decay_loop(void *arg)
{
	struct decay_state *s = arg;
	unsigned long seen = 0; /* the call that started the helper bumped xwork: a pass is due */
	while (!atomic_load(&s->xstopping)) {
		unsigned long w = atomic_load(&s->xwork);
		int quiet = w == seen && !atomic_load(&s->xpending);
		seen = w;
		if (decay_sleep(s, quiet ? UINT64_MAX : s->pass_ns, seen))
			break;
		if (atomic_load(&s->xstopping))
			break;
		decay_pass(s, s->pass_ns - s->pass_ns / 4); /* a tick's pass of late counts */
	}
	atomic_store(&s->xstarted, 0);
	return NULL;
}

static void decay_start_helper(struct decay_state *s)
{
	int expect = 0;
	if (s->set.decay_ms < 0 || atomic_load_explicit(&s->xstarted, memory_order_relaxed) ||
	    atomic_load(&s->xstopping) || !atomic_compare_exchange_strong(&s->xstarted, &expect, 1))
		return;
	if (s->core->spawn_helper(decay_loop, s)) {
		atomic_store(&s->xstarted, 0); /* no thread (limits): the ticks' passes only */
		return;
	}
	s->core->set_parking(PARK_STATES, PARK_UNITS); /* its passes retire what waits */
}

/* ---- The ops ------------------------------------------------------------------------------- */

/* A SuperSlab emptied: its pages are on the curve from now (nothing goes yet unless decay_ms
 * is 0); the helper must come. */
static void decay_superslab_empty(void *state)
{
	struct decay_state *s = state;
	if (s->set.decay_ms == 0) {
		uint64_t purged;
		count(s, C_RELEASED, s->core->release_empty((unsigned)s->set.empty_reserve, 0, ~0u));
		purged = s->core->purge(0, UINT64_MAX);
		count(s, C_PURGED, purged);
	}
	decay_wake(s);
	if (!atomic_load_explicit(&s->xstarted, memory_order_relaxed))
		decay_start_helper(s);
}

/* The allocator is busy: a pass, at most every pass_ms (one clock read otherwise). */
static void decay_tick(void *state)
{
	struct decay_state *s = state;
	decay_pass(s, s->pass_ns);
	decay_wake(s);
	if (!atomic_load_explicit(&s->xstarted, memory_order_relaxed))
		decay_start_helper(s);
}

static int decay_out_of_memory(void *state, size_t bytes)
{
	struct decay_state *s = state;
	const struct hak_core_api *c = s->core;
	(void)bytes;
	c->reap_parked();
	c->consolidate();
	c->collect_abandoned();
	c->reclaim_threads();
	unsigned n = c->release_empty(0, 0, ~0u);
	uint64_t purged = c->purge(0, UINT64_MAX);
	unsigned large = c->large_release(0, 0);
	count(s, C_RELEASED, n);
	count(s, C_PURGED, purged);
	count(s, C_LARGE, large);
	return n || purged || large;
}

static void decay_start(void *state)
{
	struct decay_state *s = state;
	s->core->large_limits(&s->set.large);
	for (int i = 0; i < C_N; i++)
		s->counter[i] = s->core->counter_register(s->self, counter_names[i],
							  i == C_DIRTY_LIMIT ? HAK_COUNTER_GAUGE : HAK_COUNTER_COUNT, 1);
	s->epoch_start = s->core->now_ns();
}

static void decay_stop(void *state)
{
	struct decay_state *s = state;
	atomic_store(&s->xstopping, 1);
	if (HAK_CORE_HAS(s->core, helper_wake))
		s->core->helper_wake();
	pthread_mutex_lock(&s->lock);
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
	s->core->set_parking(0, 0); /* nothing would retire them now */
}

static void decay_fork_child(void *state)
{
	struct decay_state *s = state;
	pthread_mutex_init(&s->lock, NULL); /* another thread may have held it at fork() */
	pthread_cond_init(&s->wake, NULL);
	atomic_store(&s->xstarted, 0); /* the thread did not survive fork */
	atomic_store(&s->xsleeping, 0);
	atomic_store(&s->xbusy, 0);    /* nor a pass another thread was running */
	s->core->set_parking(0, 0);    /* until the child's own helper runs */
}

static int decay_init(const struct hak_core_api *core, hak_policy *self, const struct hak_settings *settings,
		      void **state, char *err, size_t errlen)
{
	struct decay_settings set = {.decay_ms = 10000, .empty_reserve = 2, .pass_ms = 0,
				     .large = HAK_LARGE_LIMITS_DEFAULT};
	int e = hak_settings_parse(settings, decay_spec, sizeof decay_spec / sizeof decay_spec[0], &set, err, errlen);
	if (e)
		return e;
	struct decay_state *s = calloc(1, sizeof *s);
	if (!s)
		return 12;
	s->core = core;
	s->self = self;
	s->set = set;
	s->decay_ns = set.decay_ms > 0 ? (uint64_t)set.decay_ms * 1000000u : 0;
	uint64_t pass_ms = set.pass_ms;
	if (!pass_ms)
		pass_ms = set.decay_ms < 0 ? 1000 : (uint64_t)set.decay_ms / 32 > 10 ? (uint64_t)set.decay_ms / 32 : 10;
	s->pass_ns = pass_ms * 1000000u;
	s->epoch_ns = s->decay_ns / LARGE_STEPS ? s->decay_ns / LARGE_STEPS : 1;
	for (int i = 0; i < C_N; i++)
		s->counter[i] = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->wake, NULL);
	*state = s;
	return 0;
}

static void decay_fini(void *state)
{
	struct decay_state *s = state;
	pthread_cond_destroy(&s->wake);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static const struct hak_trim_ops decay_ops = {
	.size = sizeof(struct hak_trim_ops),
	.superslab_empty = decay_superslab_empty,
	.tick = decay_tick,
	.out_of_memory = decay_out_of_memory,
};

HAK_POLICY_EXPORT(hak__builtin_trim_decay) = {
	HAK_POLICY_DESC_INIT(HAK_POLICY_TRIM, "decay", "1.0.0",
			     "free pages go back gradually: the share kept falls smoothly to 0 at decay_ms"),
	.init = decay_init,
	.start = decay_start,
	.stop = decay_stop,
	.fini = decay_fini,
	.fork_child = decay_fork_child,
	.ops = &decay_ops,
	HAK_SETTINGS_SPEC(decay_spec),
};
