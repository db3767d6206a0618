/* trim_idle.c: the default trim policy. Empty SuperSlabs beyond `empty_reserve` (default 2)
 * go back at the helper's next pass (at once while no helper runs). A helper thread, started the first time a SuperSlab empties
 * or the allocator gets busy or a thread exits (the core ticks then; signals blocked), wakes
 * every `idle_ms` (default 50) while the allocator has been busy, and twice more once it goes
 * quiet (then it sleeps until the allocator wakes it: an idle program sees no wake-up; it ends
 * when it is the process's last thread), and runs the core's composite trim pass: retire the states exited threads left parked,
 * drain what dead threads left, return empty SuperSlabs beyond the reserve, and return what
 * stayed free since the previous pass (units are purged; empty SuperSlabs, reserve included,
 * unmapped; cached large mappings unmapped). While the helper runs, exited threads' states are
 * parked for their successors (set_parking). After fork() it is restarted only when the child
 * empties a SuperSlab or gets busy. Out of memory: everything that can go back goes back. */
#include <hakmem_policy.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PARK_STATES 8 /* exited threads' states kept for successors */
#define PARK_UNITS 64 /* 4 MB of slabs each at most */

struct idle_settings {
	unsigned long idle_ms;       /* pass interval */
	unsigned long empty_reserve; /* empty SuperSlabs kept mapped */
	struct hak_large_limits large;
};

static const struct hak_setting_spec idle_spec[] = {
	{"idle_ms", HAK_SETTING_UINT, 1, 60000, offsetof(struct idle_settings, idle_ms), "50",
	 "milliseconds between the helper's trim passes while the allocator is busy"},
	{"empty_reserve", HAK_SETTING_UINT, 0, 1024, offsetof(struct idle_settings, empty_reserve), "2",
	 "empty SuperSlabs kept mapped while the allocator draws on them"},
	HAK_LARGE_CACHE_SETTINGS(struct idle_settings, large),
};

struct idle_state {
	const struct hak_core_api *core;
	struct idle_settings set;
	_Atomic int started;        /* helper thread running */
	_Atomic int stopping;       /* stop ran: the helper ends at its next wake */
	_Atomic unsigned long work; /* bumped by the allocator when a pass may help */
};

static struct idle_state builtin_state; /* with no settings: the built-in runs inside the first malloc */

/* The core's sleep (2.1): woken by the allocator's tick when there is work, and told when the
 * helper is the process's last thread (it must return then). An older core: nanosleep. */
static int idle_sleep(struct idle_state *s, uint64_t ns)
{
	if (HAK_CORE_HAS(s->core, helper_sleep))
		return s->core->helper_sleep(ns);
	if (ns == UINT64_MAX)
		ns = (uint64_t)s->set.idle_ms * 1000000u;
	struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
	nanosleep(&ts, NULL);
	return 0;
}

static void idle_wake(struct idle_state *s)
{
	if (HAK_CORE_HAS(s->core, helper_wake))
		s->core->helper_wake();
}

/* A pass every idle_ms while the allocator says it is busy; once it is quiet (two passes after
 * the last activity: the first marks what is free, the second gives back what stayed free, aged
 * units and an unused empty reserve), no wake-up at all until it says so again. */
static void *idle_loop(void *arg)
{
	struct idle_state *s = arg;
	uint64_t period = (uint64_t)s->set.idle_ms * 1000000u;
	unsigned long seen = 0;
	unsigned quiet = 0;
	while (!atomic_load_explicit(&s->stopping, memory_order_relaxed)) {
		if (idle_sleep(s, quiet >= 2 ? UINT64_MAX : period))
			break; /* the process's last thread: it ends when this one does */
		unsigned long w = atomic_load_explicit(&s->work, memory_order_relaxed);
		if (w != seen)
			quiet = 0;
		else if (quiet >= 2)
			continue; /* woken with nothing new */
		else
			quiet++;
		seen = w;
		s->core->trim_pass((unsigned)s->set.empty_reserve, HAK_TRIM_PURGE | HAK_TRIM_LARGE_AGE);
	}
	atomic_store(&s->started, 0);
	return NULL;
}

static void idle_start_helper(struct idle_state *s)
{
	int expect = 0;
	if (atomic_load_explicit(&s->started, memory_order_relaxed) || atomic_load(&s->stopping) ||
	    !atomic_compare_exchange_strong(&s->started, &expect, 1))
		return;
	int err = s->core->spawn_helper(idle_loop, s);
	if (err) {
		/* No thread (limits): trim inline instead, from the slow paths. */
		atomic_store(&s->started, 0);
		s->core->trim_pass((unsigned)s->set.empty_reserve, HAK_TRIM_PURGE | HAK_TRIM_LARGE_AGE);
		return;
	}
	s->core->set_parking(PARK_STATES, PARK_UNITS); /* its passes retire what waits too long */
}

/* Empty SuperSlabs beyond the reserve wait for the helper's next pass (within idle_ms), which
 * unmaps them: a program whose threads all end at once and new ones start (mimalloc-bench's
 * mstress) reuses them instead of mapping and faulting in as many again, and peak RSS does not
 * grow, their pages were in use a moment ago. Without a helper (not started yet, or none could
 * be made) no pass is coming: they go back at once. */
static void idle_superslab_empty(void *state)
{
	struct idle_state *s = state;
	atomic_fetch_add_explicit(&s->work, 1, memory_order_relaxed);
	idle_wake(s); /* the pass that unmaps them comes within idle_ms, even after a quiet spell */
	if (!atomic_load(&s->started)) { /* also the first empty, which starts the helper */
		if (s->core->empty_count() > s->set.empty_reserve)
			s->core->release_empty((unsigned)s->set.empty_reserve, 0, ~0u);
		idle_start_helper(s);
	}
}

/* The allocator is busy (a thread passed 256 slow paths, or one exited and its state may be
 * parked): free units of partly used SuperSlabs are worth purging, and parked states
 * retiring, even when no SuperSlab has emptied, so the helper starts now. */
static void idle_tick(void *state)
{
	struct idle_state *s = state;
	atomic_fetch_add_explicit(&s->work, 1, memory_order_relaxed);
	idle_wake(s);
	if (!atomic_load_explicit(&s->started, memory_order_relaxed))
		idle_start_helper(s);
}

static int idle_out_of_memory(void *state, size_t bytes)
{
	struct idle_state *s = state;
	(void)bytes;
	struct hak_trim_result r = s->core->trim_pass(0, HAK_TRIM_PURGE | HAK_TRIM_LARGE_ALL);
	return r.superslabs_released || r.large_released || r.bytes_purged;
}

static void idle_start(void *state)
{
	struct idle_state *s = state;
	s->core->large_limits(&s->set.large);
}

static void idle_stop(void *state)
{
	struct idle_state *s = state;
	atomic_store(&s->stopping, 1);
	idle_wake(s);
	s->core->set_parking(0, 0); /* nothing would retire them now */
}

static void idle_fork_child(void *state)
{
	struct idle_state *s = state;
	atomic_store(&s->started, 0); /* the thread did not survive fork */
	s->core->set_parking(0, 0);   /* until the child's own helper runs */
}

static int idle_init(const struct hak_core_api *core, hak_policy *self, const struct hak_settings *settings,
		     void **state, char *err, size_t errlen)
{
	(void)self;
	struct idle_state st = {.core = core,
				.set = {.idle_ms = 50, .empty_reserve = 2, .large = HAK_LARGE_LIMITS_DEFAULT}};
	int e = hak_settings_parse(settings, idle_spec, sizeof idle_spec / sizeof idle_spec[0], &st.set, err, errlen);
	if (e)
		return e;
	struct idle_state *s = settings->count ? malloc(sizeof *s) : &builtin_state;
	if (!s)
		return 12;
	memcpy(s, &st, sizeof st);
	*state = s;
	return 0;
}

static void idle_fini(void *state)
{
	if (state != &builtin_state)
		free(state);
}

static const struct hak_trim_ops idle_ops = {
	.size = sizeof(struct hak_trim_ops),
	.superslab_empty = idle_superslab_empty,
	.tick = idle_tick,
	.out_of_memory = idle_out_of_memory,
};

HAK_POLICY_EXPORT(hak__builtin_trim_idle) = {
	HAK_POLICY_DESC_INIT(HAK_POLICY_TRIM, "idle", "2.0.0",
			     "helper thread trims every idle_ms while busy; keeps empty_reserve empty SuperSlabs"),
	.init = idle_init,
	.start = idle_start,
	.stop = idle_stop,
	.fini = idle_fini,
	.fork_child = idle_fork_child,
	.ops = &idle_ops,
	HAK_SETTINGS_SPEC(idle_spec),
};
