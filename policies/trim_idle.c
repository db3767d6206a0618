/* trim_idle.c: the default trim policy. Empty SuperSlabs beyond `empty_reserve` (default 2)
 * go back at the helper's next pass (at once while no helper runs). A helper thread, started
 * the first time a SuperSlab empties or the allocator gets busy or a thread exits (the core
 * ticks then; signals blocked), wakes every `idle_ms` (default 100) while the allocator has
 * been busy, and twice more once it goes quiet, and runs a trim pass: retire the states exited
 * threads left parked, drain what dead threads left, return empty SuperSlabs beyond the
 * reserve, and return what stayed free since the previous pass (units are purged; empty
 * SuperSlabs, reserve included, unmapped). While it runs, the core parks exited threads'
 * states for their successors.
 * After fork() it is restarted only when the child empties a SuperSlab or gets busy. */
#include <hakmem_policy.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct idle_state {
	const struct hak_core_api *core;
	unsigned long idle_ms;       /* pass interval */
	unsigned long empty_reserve; /* empty SuperSlabs kept mapped */
	_Atomic int started;         /* helper thread running */
	_Atomic unsigned long work;  /* bumped by the allocator when a pass may help */
};

static void *idle_loop(void *arg)
{
	struct idle_state *s = arg;
	struct timespec ts = {(time_t)(s->idle_ms / 1000), (long)(s->idle_ms % 1000) * 1000000L};
	unsigned long seen = 0;
	unsigned quiet = 0;
	for (;;) {
		nanosleep(&ts, NULL);
		unsigned long w = atomic_load_explicit(&s->work, memory_order_relaxed);
		if (w != seen)
			quiet = 0;
		else if (++quiet > 2)
			continue; /* idle allocator: nothing changed, and what aged is gone by now */
		seen = w;
		/* Two passes after the last activity: the first marks what is free, the second
		 * gives back what stayed free (aged units, an unused empty reserve). */
		s->core->trim_pass((unsigned)s->empty_reserve, 1);
	}
	return NULL;
}

static void idle_start(struct idle_state *s)
{
	int expect = 0;
	if (atomic_load_explicit(&s->started, memory_order_relaxed) ||
	    !atomic_compare_exchange_strong(&s->started, &expect, 1))
		return;
	int err = s->core->spawn_helper(idle_loop, s);
	if (err) {
		/* No thread (limits): trim inline instead, from the slow paths. */
		atomic_store(&s->started, 0);
		s->core->trim_pass((unsigned)s->empty_reserve, 1);
	}
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
	if (!atomic_load(&s->started)) { /* also the first empty, which starts the helper */
		if (s->core->empty_count() > s->empty_reserve)
			s->core->release_empty((unsigned)s->empty_reserve);
		idle_start(s);
	}
}

/* The allocator is busy (a thread passed 256 slow paths, or one exited and its state may be
 * parked): free units of partly used SuperSlabs are worth purging, and parked states
 * retiring, even when no SuperSlab has emptied, so the helper starts now. */
static void idle_tick(void *state)
{
	struct idle_state *s = state;
	atomic_fetch_add_explicit(&s->work, 1, memory_order_relaxed);
	if (!atomic_load_explicit(&s->started, memory_order_relaxed))
		idle_start(s);
}

static void idle_fork_child(void *state)
{
	struct idle_state *s = state;
	atomic_store(&s->started, 0); /* the thread did not survive fork */
}

static int idle_init(const struct hak_core_api *core, const struct hak_settings *settings, void **state,
		     char *err, size_t errlen)
{
	static struct idle_state builtin_state; /* the built-in runs inside the first malloc */
	struct idle_state st = {.core = core, .idle_ms = 100, .empty_reserve = 2};
	for (size_t i = 0; i < settings->count; i++) {
		const struct hak_setting *it = &settings->items[i];
		int e;
		if (!strcmp(it->key, "idle_ms"))
			e = hak_setting_uint(it, 1, 60000, &st.idle_ms, err, errlen);
		else if (!strcmp(it->key, "empty_reserve"))
			e = hak_setting_uint(it, 0, 1024, &st.empty_reserve, err, errlen);
		else
			e = hak_setting_unknown(it, "idle_ms, empty_reserve", err, errlen);
		if (e)
			return e;
	}
	struct idle_state *s = settings->count ? malloc(sizeof *s) : &builtin_state;
	if (!s)
		return 12;
	memcpy(s, &st, sizeof st);
	*state = s;
	return 0;
}

static const struct hak_trim_ops idle_ops = {
	.superslab_empty = idle_superslab_empty,
	.tick = idle_tick,
	.fork_child = idle_fork_child,
};

HAK_POLICY_EXPORT(hak__builtin_trim_idle) = {
	HAK_POLICY_DESC_INIT(HAK_POLICY_TRIM, "idle", "1.0.0",
			     "helper thread trims every idle_ms while busy; keeps empty_reserve empty SuperSlabs"),
	.init = idle_init,
	.trim = &idle_ops,
};
