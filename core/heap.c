/* heap.c: per-thread state. Creation on a thread's first slow path, the exit hook that flushes
 * the caches and parks the state with its slabs for the next thread (or lets the ownership
 * policy abandon them), recycling of the structs (thousands of short-lived threads), the orphan
 * state used by threads whose state is gone (other libraries' TLS destructors), and what fork()
 * does to all of them. */
#include "hakmem_internal.h"
#include "trace.h"

#include <errno.h>
#include <string.h>

/* Sentinels: every cache empty with max 0, so both fast paths fall into the slow ones.
 * Their tokens are never a slab owner. */
static struct hak_thread boot_thread = {.token = 2, .accept = 2, .state = HAK_THREAD_BOOT};
static struct hak_thread gone_thread = {.token = 3, .accept = 3, .state = HAK_THREAD_GONE};

__thread struct hak_thread *hak__tls __attribute__((tls_model("initial-exec"))) = &boot_thread;

static pthread_mutex_t heap_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hak_thread *live_threads; /* registry, for stats and fork */
static struct hak_thread *free_threads; /* recycled structs */
/* Parked states: threads that exited with their caches flushed but their slabs still owned by
 * their token. A new thread takes one over whole (no adoption, no fresh slabs, and the blocks
 * the dead thread left are its own to free). A trim pass, a SuperSlab about to be mapped, and
 * the exit of a thread that freed many other threads' blocks retire them through the policy
 * (nothing stays stranded); a state that took many slabs, or one beyond PARKED_MAX, is retired
 * at once, so what parked states hold stays small. States are parked only while a helper
 * thread runs trim passes (the default idle policy): without one (eager, none) nothing would
 * retire them if no thread came, and eager gives memory back at the exit itself. */
#define PARKED_MAX 8
#define PARK_MAX_UNITS 64 /* 4 MB of slabs */
#define REAP_AFTER_REMOTE_FREES 1024
static struct hak_thread *parked_threads; /* linked through next_free (heap lock) */
static unsigned parked_n;                 /* read unlocked as a hint */
static pthread_key_t exit_key;
static _Atomic int exit_key_ready;

static pthread_mutex_t orphan_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hak_thread *orphan_thread;

static void thread_exit_hook(void *arg);

/* heap lock held */
static void register_live(struct hak_thread *t)
{
	t->prev_live = NULL;
	t->next_live = live_threads;
	if (live_threads)
		live_threads->prev_live = t;
	live_threads = t;
}

/* A state for a new thread: a parked one of the current model when take_parked allows (same
 * token, same slabs: it carries on where the dead thread stopped), else a zeroed one. */
static struct hak_thread *thread_new(bool take_parked)
{
	struct hak_model *m = atomic_load(&hak__model_current);
	size_t size = sizeof(struct hak_thread) + ((m->ops->thread_state_size + 15) & ~(size_t)15);
	struct hak_thread *t = NULL;
	pthread_mutex_lock(&heap_lock);
	for (struct hak_thread **pp = &parked_threads; take_parked && *pp; pp = &(*pp)->next_free)
		if ((*pp)->model == m) {
			t = *pp;
			*pp = t->next_free;
			__atomic_store_n(&parked_n, parked_n - 1, __ATOMIC_RELAXED);
			t->next_free = NULL;
			t->state = HAK_THREAD_LIVE;
			hak__trace_state_new(t); /* recording marks accept (trace.h) */
			register_live(t);
			pthread_mutex_unlock(&heap_lock);
			return t;
		}
	for (struct hak_thread **pp = &free_threads; *pp; pp = &(*pp)->next_free)
		if ((*pp)->alloc_size >= size) {
			t = *pp;
			*pp = t->next_free;
			break;
		}
	pthread_mutex_unlock(&heap_lock);
	if (t) {
		size = t->alloc_size;
		memset(t, 0, size);
	} else if (!(t = hak__meta_alloc(size))) {
		return NULL;
	}
	t->alloc_size = size;
	t->token = (uintptr_t)t;
	t->accept = m->ops->caches_any ? HAK_OWNER_ANY : t->token;
	hak__trace_state_new(t); /* recording marks accept (trace.h) */
	t->state = HAK_THREAD_LIVE;
	t->model = m;
	t->own_tstate = (char *)t + sizeof(struct hak_thread);
	for (unsigned c = 0; c < HAK_NCLASSES; c++) {
		t->cache[c].max = t->cache[c].room = hak__classes[c].cache_max;
		t->cache[c].want = 0; /* refill_count starts small */
	}
	pthread_mutex_lock(&heap_lock);
	register_live(t);
	pthread_mutex_unlock(&heap_lock);
	return t;
}

/* The calling thread's state, made on first use; NULL once the thread's exit hook ran. */
struct hak_thread *hak__thread_get(void)
{
	struct hak_thread *t = hak__tls;
	if (likely(t->state == HAK_THREAD_LIVE))
		return t;
	if (t->state == HAK_THREAD_GONE)
		return NULL;
	hak__init();
	if (!atomic_load(&exit_key_ready)) {
		pthread_mutex_lock(&heap_lock);
		if (!atomic_load(&exit_key_ready) && pthread_key_create(&exit_key, thread_exit_hook) == 0)
			atomic_store(&exit_key_ready, 1);
		pthread_mutex_unlock(&heap_lock);
	}
	t = thread_new(true);
	if (!t)
		return NULL;
	hak__tls = t; /* before setspecific: it may allocate, and must find this state */
	if (atomic_load(&exit_key_ready))
		pthread_setspecific(exit_key, t);
	return t;
}

/* Empty every cache of t through its ownership policy. */
void hak__thread_flush(struct hak_thread *t)
{
	hak__calling_model = t->model->index;
	hak__policy_enter(t);
	for (unsigned c = 0; c < HAK_NCLASSES; c++) {
		struct hak_tcache *tc = &t->cache[c];
		if (!tc->head)
			continue;
		struct hak_chain chain = {tc->head, NULL, 1};
		void **b = tc->head;
		while (b[0]) { /* counted, not trusted: the room may be off after a fork from a handler */
			b = b[0];
			chain.count++;
		}
		chain.tail = b;
		tc->head = NULL;
		tc->room = tc->max;
		hak__account_chain(chain, -1);
		t->model->ops->flush(t->model->state, t, t->own_tstate, c, chain);
	}
	hak__policy_leave(t);
}

static void unregister(struct hak_thread *t)
{
	if (t->prev_live)
		t->prev_live->next_live = t->next_live;
	else
		live_threads = t->next_live;
	if (t->next_live)
		t->next_live->prev_live = t->prev_live;
	t->next_live = t->prev_live = NULL;
}

static void fold_counters(struct hak_thread *t)
{
	hak_add_relaxed(&hak__g.retired_local, t->local_frees);
	hak_add_relaxed(&hak__g.retired_remote, t->remote_frees);
	for (unsigned i = 0; i < 4; i++)
		hak_add_relaxed(&hak__g.retired_counters[i], t->counters[i]);
	t->local_frees = t->remote_frees = 0;
	memset(t->counters, 0, sizeof t->counters);
}

/* The policy settles the slabs t owns (gives back the free ones, abandons the rest). */
static void settle_slabs(struct hak_thread *t)
{
	unsigned saved = hak__calling_model;
	hak__calling_model = t->model->index;
	hak__policy_enter(t);
	t->model->ops->thread_exit(t->model->state, t, t->own_tstate);
	hak__policy_leave(t);
	hak__calling_model = saved;
}

/* Flush, let the policy abandon what the thread owned, fold its counters, recycle the struct. */
void hak__thread_retire(struct hak_thread *t)
{
	hak__thread_flush(t);
	settle_slabs(t);
	fold_counters(t);
	t->state = HAK_THREAD_GONE;
	pthread_mutex_lock(&heap_lock);
	unregister(t);
	t->next_free = free_threads;
	free_threads = t;
	pthread_mutex_unlock(&heap_lock);
}

void hak__thread_restart(void)
{
	struct hak_thread *t = hak__tls;
	if (t->state != HAK_THREAD_LIVE)
		return;
	if (atomic_load(&exit_key_ready))
		pthread_setspecific(exit_key, NULL);
	hak__tls = &boot_thread;
	hak__thread_retire(t);
}

/* The exit hook's retire: flush the caches (the active counts stay exact) and park the state,
 * slabs and all, for the next thread; retire it if it is big or enough are parked already. */
static void thread_park(struct hak_thread *t)
{
	hak__thread_flush(t);
	for (unsigned c = 0; c < HAK_NCLASSES; c++)
		t->cache[c].want = 0; /* the next thread's refills start small again */
	fold_counters(t);
	t->state = HAK_THREAD_GONE;
	pthread_mutex_lock(&heap_lock);
	unregister(t);
	bool park = hak_load_relaxed(&hak__helper_running) && parked_n < PARKED_MAX &&
		    t->units_taken <= PARK_MAX_UNITS;
	if (park) {
		t->next_free = parked_threads;
		parked_threads = t;
		__atomic_store_n(&parked_n, parked_n + 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&heap_lock);
	if (park)
		return;
	settle_slabs(t);
	pthread_mutex_lock(&heap_lock);
	t->next_free = free_threads;
	free_threads = t;
	pthread_mutex_unlock(&heap_lock);
}

/* heap lock held (or tried). Every parked state's slabs settle through its policy. */
static unsigned reap_locked(void)
{
	unsigned n = 0;
	while (parked_threads) {
		struct hak_thread *t = parked_threads;
		settle_slabs(t);
		parked_threads = t->next_free;
		__atomic_store_n(&parked_n, parked_n - 1, __ATOMIC_RELAXED);
		t->next_free = free_threads;
		free_threads = t;
		n++;
	}
	return n;
}

/* Retire every parked state. The heap lock is held throughout, so fork() never sees one half
 * settled. Returns how many. */
unsigned hak__threads_reap_parked(void)
{
	if (!__atomic_load_n(&parked_n, __ATOMIC_RELAXED))
		return 0;
	pthread_mutex_lock(&heap_lock);
	unsigned n = reap_locked();
	pthread_mutex_unlock(&heap_lock);
	return n;
}

/* The same from a path that may hold a policy lock (ordered after the heap lock): only when
 * the heap lock is free at once. */
unsigned hak__threads_reap_parked_try(void)
{
	if (!__atomic_load_n(&parked_n, __ATOMIC_RELAXED) || pthread_mutex_trylock(&heap_lock) != 0)
		return 0;
	unsigned n = reap_locked();
	pthread_mutex_unlock(&heap_lock);
	return n;
}

static void thread_exit_hook(void *arg)
{
	struct hak_thread *t = arg;
	hak__trace_thread_exit(); /* the recording's THREAD_END; later calls go to its orphan stream */
	hak__tls = &gone_thread; /* later frees by other destructors take the orphan path */
	if (t && t->state == HAK_THREAD_LIVE) {
		/* A thread that freed many blocks of other threads (a consumer) may have emptied
		 * the slabs of parked states: settle them now, not at the next trim pass. */
		if (t->remote_frees >= REAP_AFTER_REMOTE_FREES)
			hak__threads_reap_parked();
		thread_park(t);
		hak__trim_tick(); /* a parked state waits for a trim pass if no thread comes */
	}
	/* Blocks this thread freed into slabs whose owners had exited: drain those slabs now, so
	 * what became free goes back without waiting for a trim pass. */
	if (hak_load_relaxed(&hak__abandoned_dirty))
		hak__abandoned_collect();
	hak__trim_run_pending(); /* what the exit emptied goes back now, not at the next pass */
}

/* ---- The orphan state: shared, locked, for threads whose own state is gone. ------------------ */

void hak__orphan_lock(void)
{
	pthread_mutex_lock(&orphan_lock);
}

void hak__orphan_unlock(void)
{
	pthread_mutex_unlock(&orphan_lock);
}

/* Call with the orphan lock held. */
struct hak_thread *hak__orphan(void)
{
	if (!orphan_thread)
		orphan_thread = thread_new(false); /* shared and never retired: not a parked one */
	return orphan_thread;
}

/* ---- Recording (trace.c): visit every live state. ---------------------------------------- */
void hak__threads_each(void (*fn)(struct hak_thread *t))
{
	pthread_mutex_lock(&heap_lock);
	for (struct hak_thread *t = live_threads; t; t = t->next_live)
		fn(t);
	pthread_mutex_unlock(&heap_lock); /* the orphan state is registered too */
}

/* ---- Stats: sum the live threads' counters. -------------------------------------------------- */
void hak__threads_sum(uint64_t *local, uint64_t *remote, uint64_t counters[4])
{
	pthread_mutex_lock(&heap_lock);
	for (struct hak_thread *t = live_threads; t; t = t->next_live) {
		*local += t->local_frees;
		*remote += t->remote_frees;
		for (unsigned i = 0; i < 4; i++)
			counters[i] += t->counters[i];
	}
	pthread_mutex_unlock(&heap_lock);
}

/* ---- Trim passes: reclaim for live threads that are outside their slow paths. ---------------- */

/* Let each live thread's ownership policy give back what the thread owns but does not use
 * (blocks other threads freed to it while it sleeps). A thread inside a slow path is skipped:
 * its next refill sees those blocks anyway. Returns how many threads were visited. */
unsigned hak__threads_reclaim(void)
{
	unsigned n = 0;
	pthread_mutex_lock(&heap_lock); /* no state is retired or recycled meanwhile */
	for (struct hak_thread *t = live_threads; t; t = t->next_live) {
		void (*reclaim)(void *, hak_thread *, void *) = hak__model_reclaim_op(t->model);
		if (!reclaim || !hak__policy_try(t))
			continue;
		hak__calling_model = t->model->index;
		reclaim(t->model->state, t, t->own_tstate);
		hak__policy_leave(t);
		n++;
	}
	pthread_mutex_unlock(&heap_lock);
	return n;
}

/* ---- fork ------------------------------------------------------------------------------------ */

void hak__heap_fork_prepare(void)
{
	pthread_mutex_lock(&orphan_lock);
	pthread_mutex_lock(&heap_lock);
}

void hak__heap_fork_parent(void)
{
	pthread_mutex_unlock(&heap_lock);
	pthread_mutex_unlock(&orphan_lock);
}

/* Only the forking thread lives on: every other thread's state is retired as if it had exited,
 * so its cached blocks return and its slabs become adoptable (nothing stranded in the child).
 * When the fork came from a signal handler that interrupted this thread inside hakmem, its own
 * state may be half-updated: it is left alone (leaked) and the thread starts a fresh one. */
void hak__heap_fork_child(bool self_consistent)
{
	pthread_mutex_init(&heap_lock, NULL);
	pthread_mutex_init(&orphan_lock, NULL);
	struct hak_thread *self = hak__tls;
	if (!self_consistent && self->state == HAK_THREAD_LIVE) {
		unregister(self);
		if (atomic_load(&exit_key_ready))
			pthread_setspecific(exit_key, NULL);
		hak__tls = &boot_thread;
		self = NULL;
	}
	struct hak_thread *t = live_threads;
	while (t) {
		struct hak_thread *next = t->next_live;
		atomic_store(&t->plock, 0); /* its thread is gone; it may have held it at the fork */
		if (t != self && t != orphan_thread)
			hak__thread_retire(t);
		t = next;
	}
}
