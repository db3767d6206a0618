/* thread.c: layer 5, per-thread state (see thread.h). Creation on a thread's first slow path, the
 * exit hook that flushes the caches and parks the state with its slabs for the next thread (when
 * the trim policy allows parking) or lets the ownership policy settle them, recycling of the
 * structs (thousands of short-lived threads), the orphan state used by threads whose state is
 * gone (other libraries' TLS destructors), the sums for the stats, and what fork() does to them.
 * Lock order: the orphan lock, then the thread lock; a policy lock may be taken under the thread
 * lock, never the other way round (reap_parked_try exists for that). */
#include "thread.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "lock.h"
#include "os.h"
#include "policy_call.h"
#include "slab.h"

/* Sentinels: every cache empty with max 0 and an `accept` no slab has, so the slow paths
 * never cache in them. Their tokens are never a slab owner. */
#define SENTINEL(self, tok)                                                                    \
	{                                                                                      \
		.cache = self.home, .home = {[0 ... HAK_NCLASSES - 1] = {.accept = (tok)}},     \
		.token = (tok), .state = (tok) == 2 ? HAK_THREAD_BOOT : HAK_THREAD_GONE         \
	}
static struct hak_thread boot_thread = SENTINEL(boot_thread, HAK_TLS_NOBODY);
static struct hak_thread gone_thread = SENTINEL(gone_thread, 3);

__thread struct hak_thread *hak__tls __attribute__((tls_model("initial-exec"))) = &boot_thread;

static pthread_mutex_t thread_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hak_thread *live_threads; /* registry, for stats, reclaim and fork */
static struct hak_thread *free_threads; /* recycled structs */
/* Counters of states retired and of counting without a live state: atomics, since counting may
 * happen under the thread lock (a parked state settling from inside a reap). */
static _Atomic uint64_t retired[HAK_TCOUNT_N];
static uint64_t retired_plugin[HAK_THREAD_PLUGIN_COUNTERS];
static uint64_t retired_local, retired_class[HAK_NCLASSES];
static _Atomic int64_t retired_out_bytes[2], retired_out_blocks[2];
static uint64_t live_n;
/* Parked states: threads that exited with their caches flushed but their slabs still owned by
 * their token. A new thread takes one over whole (no adoption, no fresh slabs, and the blocks
 * the dead thread left are its own to free). The trim policy enables parking (set_parking) and
 * retires parked states in its passes; a SuperSlab about to be mapped and the exit of a thread
 * that freed many other threads' blocks retire them too (nothing stays stranded); a state that
 * took many slabs, or one beyond the limit, is settled at once. */
#define REAP_AFTER_REMOTE_FREES 1024
static struct hak_thread *parked_threads; /* linked through next_free (thread lock) */
static unsigned parked_n;                 /* read unlocked as a hint */
static _Atomic unsigned xpark_max_states, xpark_max_units;
static _Atomic unsigned xflush_epoch;     /* request_cache_flush rounds */
static pthread_key_t exit_key;
static _Atomic int exit_key_ready;

static pthread_mutex_t orphan_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hak_thread *orphan_thread;

static void thread_exit_hook(void *arg);
static void (*_Atomic xexit_hook)(void);

void hak__threads_set_exit_hook(void (*fn)(void))
{
	hak_store_release(&xexit_hook, fn);
}

struct hak_thread *hak__thread_sentinel_gone(void)
{
	return &gone_thread;
}

/* Thread lock held. A fork from a signal handler may copy these lists half updated (it goes on
 * without the thread lock, lock.h): every update keeps the forward links whole at each step (the
 * signal fences keep the compiler's order), so such a child re-derives the back links and the
 * counts from them (hak__thread_fork_child). */
static void register_live(struct hak_thread *t)
{
	t->prev_live = NULL;
	t->next_live = live_threads;
	atomic_signal_fence(memory_order_seq_cst);
	if (live_threads)
		live_threads->prev_live = t;
	live_threads = t;
	atomic_signal_fence(memory_order_seq_cst);
	live_n++;
}

static void unregister(struct hak_thread *t)
{
	if (t->prev_live)
		t->prev_live->next_live = t->next_live;
	else
		live_threads = t->next_live;
	atomic_signal_fence(memory_order_seq_cst);
	if (t->next_live)
		t->next_live->prev_live = t->prev_live;
	t->next_live = t->prev_live = NULL;
	live_n--;
}

/* Onto free_threads or parked_threads (thread lock held): the link before the head. */
static void push_free(struct hak_thread **head, struct hak_thread *t)
{
	t->next_free = *head;
	atomic_signal_fence(memory_order_seq_cst);
	*head = t;
	atomic_signal_fence(memory_order_seq_cst);
}

/* A state for a new thread: a parked one of the current model when take_parked allows (same
 * token, same slabs: it carries on where the dead thread stopped), else a zeroed one. */
static struct hak_thread *thread_new(bool take_parked)
{
	struct hak_policy *m = hak__policy_current(HAK_POLICY_OWNERSHIP);
	size_t size = sizeof(struct hak_thread) + ((hak__own_tstate_size(m) + 15) & ~(size_t)15);
	struct hak_thread *t = NULL;
	hak__lock(&thread_lock);
	for (struct hak_thread **pp = &parked_threads; take_parked && *pp; pp = &(*pp)->next_free)
		if ((*pp)->model == m) {
			t = *pp;
			*pp = t->next_free;
			__atomic_store_n(&parked_n, parked_n - 1, __ATOMIC_RELAXED);
			t->next_free = NULL;
			t->state = HAK_THREAD_LIVE;
			t->flush_epoch = atomic_load(&xflush_epoch);
			for (unsigned c = 0; c < HAK_NCLASSES; c++) /* recording marks accept (tcache.h) */
				t->cache[c].accept = hak__accept_real(t->cache[c].accept) | hak__accept_mark;
			register_live(t);
			hak__unlock(&thread_lock);
			return t;
		}
	for (struct hak_thread **pp = &free_threads; *pp; pp = &(*pp)->next_free)
		if ((*pp)->alloc_size >= size) {
			t = *pp;
			*pp = t->next_free;
			break;
		}
	hak__unlock(&thread_lock);
	if (t) {
		size = t->alloc_size;
		memset(t, 0, size);
	} else if (!(t = hak__meta_alloc(size))) {
		return NULL;
	}
	t->cache = t->home; /* detached until its thread's first malloc slow path (attach) */
	t->alloc_size = size;
	t->token = (uintptr_t)t;
	t->state = HAK_THREAD_LIVE;
	t->model = m;
	t->own_tstate = (char *)t + sizeof(struct hak_thread);
	t->flush_epoch = atomic_load(&xflush_epoch);
	uintptr_t accept = hak__own_default_accept(m, t->token) | hak__accept_mark; /* tcache.h */
	for (unsigned c = 0; c < HAK_NCLASSES; c++) {
		t->cache[c].max = t->cache[c].room = hak__classes[c].cache_max;
		t->cache[c].accept = accept;
	}
	hak__lock(&thread_lock);
	register_live(t);
	hak__unlock(&thread_lock);
	return t;
}

void hak__thread_init_hooks(void)
{
	if (atomic_load(&exit_key_ready))
		return;
	hak__lock(&thread_lock);
	if (!atomic_load(&exit_key_ready) && pthread_key_create(&exit_key, thread_exit_hook) == 0)
		atomic_store(&exit_key_ready, 1);
	hak__unlock(&thread_lock);
}

struct hak_thread *hak__thread_get(void)
{
	struct hak_thread *t = hak__tls;
	if (likely(t->state == HAK_THREAD_LIVE))
		return t;
	if (t->state == HAK_THREAD_GONE)
		return NULL;
	hak__thread_init_hooks();
	t = thread_new(true);
	if (!t)
		return NULL;
	hak__tls = t; /* before setspecific: it may allocate, and must find this state */
	if (atomic_load(&exit_key_ready))
		pthread_setspecific(exit_key, t);
	return t;
}

/* Attach: the state's caches move into the calling thread's TLS, where the fast paths find
 * them. Only from the malloc slow path of the state's own thread, and only when the exit hook
 * is registered for it: that hook detaches the state (a state made by a free after the
 * thread's TSD destructors, as glibc's own frees at thread exit are, stays detached: its
 * thread's TLS is about to go). Under the thread lock, so the sums and threads_each see the
 * caches in one place or the other. */
void hak__thread_attach(struct hak_thread *t)
{
	if (t != hak__tls || t->state != HAK_THREAD_LIVE || t->cache != t->home || !atomic_load(&exit_key_ready))
		return;
	hak__lock(&thread_lock);
	memcpy(hak__tcs.cache, t->home, sizeof hak__tcs.cache);
	t->cache = hak__tcs.cache;
	hak__unlock(&thread_lock);
}

/* The caches go back into the state, wherever they are (its thread's TLS, or in a fork child a
 * dead thread's TLS, still mapped); the calling thread's TLS is left detached when it held
 * them. Thread lock held (or a fork child's only thread). */
static void take_home(struct hak_thread *t)
{
	if (t->cache == t->home)
		return;
	bool mine = t->cache == hak__tcs.cache;
	memcpy(t->home, t->cache, sizeof t->home);
	t->cache = t->home;
	if (mine)
		for (unsigned c = 0; c < HAK_NCLASSES; c++)
			hak__tcs.cache[c] = (struct hak_tcache){.accept = HAK_TLS_NOBODY};
}

static void detach(struct hak_thread *t)
{
	hak__lock(&thread_lock);
	take_home(t);
	hak__unlock(&thread_lock);
}

void hak__thread_count(struct hak_thread *t, unsigned which, uint64_t n)
{
	if (t && t->state == HAK_THREAD_LIVE) {
		t->counters[which] += n;
		return;
	}
	hak_add_relaxed(&retired[which], n);
}

void hak__thread_foreign_flush(struct hak_thread *t)
{
	struct hak_slab *s = t->foreign_slab;
	if (!t->foreign_head)
		return;
	struct hak_chain chain = {t->foreign_head, t->foreign_tail, t->foreign_count};
	t->foreign_head = NULL;
	atomic_signal_fence(memory_order_seq_cst); /* the head first: a fork copies no half-reset chain */
	t->foreign_slab = NULL;
	t->foreign_tail = NULL;
	t->foreign_count = 0;
	if (hak_load_relaxed(&s->xowner) == HAK_OWNER_NONE)
		hak__abandoned_note_free(); /* a thread exit or a trim pass will collect */
	hak__own_free_foreign_chain(hak__policy_at(HAK_POLICY_OWNERSHIP, s->ss->model), t, s, chain);
}

/* Empty t's caches of classes `from` and up, but `except`, through its ownership policy
 * (counted, not trusted: the room may be off after a fork from a handler). */
static void flush_classes(struct hak_thread *t, unsigned from, unsigned except)
{
	hak__policy_enter(t);
	for (unsigned c = from; c < HAK_NCLASSES; c++) {
		struct hak_tcache *tc = &t->cache[c];
		if (!tc->head || c == except)
			continue;
		struct hak_chain chain = hak__chain_of(tc->head);
		tc->head = NULL;
		tc->room = tc->max;
		hak__account_chain(chain, -1, c, t->out_bytes, t->out_blocks);
		hak__own_flush_locked(t, c, chain);
	}
	hak__policy_leave(t);
}

void hak__thread_flush(struct hak_thread *t)
{
	hak__thread_foreign_flush(t); /* the op runs without the policy lock */
	flush_classes(t, 0, HAK_NCLASSES);
}

/* Big classes hold a few blocks per slab, each block many pages: one cached block keeps its
 * slab's pages resident. A program that reads files one after another into buffers of new sizes
 * (an interpreter loading its modules) would keep one slab per size for nothing; given back,
 * the slabs' units, still resident, make the next slab of any class. */
void hak__thread_grew_big(struct hak_thread *t, unsigned cls)
{
	if (t && t->state == HAK_THREAD_LIVE && cls >= hak__first_big_class)
		t->big_grew = cls + 1;
}

void hak__thread_flush_big(struct hak_thread *t)
{
	unsigned except = t->big_grew - 1;
	t->big_grew = 0;
	flush_classes(t, hak__first_big_class, except);
}

void hak__threads_request_flush(void)
{
	atomic_fetch_add(&xflush_epoch, 1);
}

void hak__thread_flush_if_asked(struct hak_thread *t)
{
	unsigned e = hak_load_relaxed(&xflush_epoch);
	if (likely(t->flush_epoch == e))
		return;
	t->flush_epoch = e;
	hak__thread_flush(t);
}

/* thread lock held */
static void fold_counters(struct hak_thread *t)
{
	for (unsigned i = 0; i < HAK_TCOUNT_N; i++)
		hak_add_relaxed(&retired[i], t->counters[i]);
	for (unsigned i = 0; i < HAK_THREAD_PLUGIN_COUNTERS; i++)
		retired_plugin[i] += t->plugin_counters[i];
	for (unsigned c = 0; c < HAK_NCLASSES; c++) {
		retired_local += t->cache[c].frees;
		retired_class[c] += t->cache[c].frees;
		t->cache[c].frees = 0;
	}
	memset(t->counters, 0, sizeof t->counters);
	memset(t->plugin_counters, 0, sizeof t->plugin_counters);
	for (unsigned h = 0; h < 2; h++) {
		hak_add_relaxed(&retired_out_bytes[h], t->out_bytes[h]);
		hak_add_relaxed(&retired_out_blocks[h], t->out_blocks[h]);
		t->out_bytes[h] = t->out_blocks[h] = 0;
	}
}

/* Flush, let the policy settle what the thread owned, fold its counters, recycle the struct. */
void hak__thread_retire(struct hak_thread *t)
{
	hak__thread_flush(t);
	hak__own_thread_exit(t);
	t->state = HAK_THREAD_GONE;
	hak__lock(&thread_lock);
	take_home(t); /* a fork child's other threads: their TLS goes with the struct's reuse */
	fold_counters(t);
	unregister(t);
	push_free(&free_threads, t);
	hak__unlock(&thread_lock);
}

void hak__thread_restart(void)
{
	struct hak_thread *t = hak__tls;
	if (t->state != HAK_THREAD_LIVE)
		return;
	if (atomic_load(&exit_key_ready))
		pthread_setspecific(exit_key, NULL);
	hak__tls = &boot_thread;
	detach(t);
	hak__thread_retire(t);
}

void hak__threads_set_parking(unsigned max_states, unsigned max_units)
{
	atomic_store(&xpark_max_states, max_states);
	atomic_store(&xpark_max_units, max_units);
}

bool hak__threads_parking_enabled(void)
{
	return atomic_load(&xpark_max_states) != 0;
}

/* The exit hook's retire: flush the caches (the active counts stay exact) and park the state,
 * slabs and all, for the next thread; settle it if it is big or enough are parked already. */
static void thread_park(struct hak_thread *t)
{
	hak__thread_flush(t);
	for (unsigned c = 0; c < HAK_NCLASSES; c++)
		t->cache[c].want = 0; /* the next thread's refills start small again */
	t->state = HAK_THREAD_GONE;
	hak__lock(&thread_lock);
	fold_counters(t);
	unregister(t);
	bool park = parked_n < atomic_load(&xpark_max_states) && t->units_taken <= atomic_load(&xpark_max_units);
	if (park) {
		push_free(&parked_threads, t);
		__atomic_store_n(&parked_n, parked_n + 1, __ATOMIC_RELAXED);
	}
	hak__unlock(&thread_lock);
	if (park)
		return;
	hak__own_thread_exit(t);
	hak__lock(&thread_lock);
	push_free(&free_threads, t);
	hak__unlock(&thread_lock);
}

/* thread lock held (or tried). Every parked state's slabs settle through its policy. */
static unsigned reap_locked(void)
{
	unsigned n = 0;
	while (parked_threads) {
		struct hak_thread *t = parked_threads;
		hak__own_thread_exit(t);
		parked_threads = t->next_free;
		__atomic_store_n(&parked_n, parked_n - 1, __ATOMIC_RELAXED);
		push_free(&free_threads, t);
		n++;
	}
	return n;
}

/* The thread lock is held throughout, so fork() never sees a state half settled. */
unsigned hak__threads_reap_parked(void)
{
	if (!__atomic_load_n(&parked_n, __ATOMIC_RELAXED))
		return 0;
	hak__lock(&thread_lock);
	unsigned n = reap_locked();
	hak__unlock(&thread_lock);
	return n;
}

unsigned hak__threads_reap_parked_try(void)
{
	if (!__atomic_load_n(&parked_n, __ATOMIC_RELAXED) || hak__trylock(&thread_lock) != 0)
		return 0;
	unsigned n = reap_locked();
	hak__unlock(&thread_lock);
	return n;
}

/* Before the pool maps a SuperSlab (from inside a refill, which holds the calling thread's
 * policy lock: the thread lock and the other threads' policy locks are only tried). Parked
 * states retire, and, at most once per BEFORE_MAP_RECLAIM_NS, every live thread gives back the
 * slabs other threads' frees emptied (the ownership op reclaim, as in a trim pass): a thread
 * that made blocks and then waits (a main thread that handed them to workers) would otherwise
 * hold those slabs until the next pass while the workers map as much again. Nonzero when units
 * went back. */
#define BEFORE_MAP_RECLAIM_NS 10000000u
static _Atomic uint64_t xbefore_map_ns;
static unsigned reclaim_locked(void);

/* Every live thread reclaims, unless a round ran less than every_ns ago (*last_ns: when the last
 * one did) or the thread lock is taken: from inside a refill, nothing is waited for. */
static void reclaim_now_and_then(_Atomic uint64_t *last_ns, uint64_t every_ns)
{
	uint64_t now = hak__now_ns(), last = hak_load_relaxed(last_ns);
	if (now - last >= every_ns && atomic_compare_exchange_strong(last_ns, &last, now) &&
	    hak__trylock(&thread_lock) == 0) {
		reclaim_locked();
		hak__unlock(&thread_lock);
	}
}

unsigned hak__threads_before_map(void)
{
	uint64_t given = hak__pool_units_given();
	hak__threads_reap_parked_try();
	reclaim_now_and_then(&xbefore_map_ns, BEFORE_MAP_RECLAIM_NS);
	return hak__pool_units_given() != given;
}

/* Before a refill takes new units (slab_acquire, from inside a refill: every lock only tried),
 * at most once per BEFORE_ACQUIRE_RECLAIM_NS: live threads reclaim, as before a map. A thread
 * that stopped allocating (one about to exit that already started its successor, a main thread
 * that handed its blocks to workers) gives back or hands over the slabs the others' frees are
 * emptying, and the refill takes those units instead of new ones. */
#define BEFORE_ACQUIRE_RECLAIM_NS 500000u
static _Atomic uint64_t xbefore_acquire_ns;

void hak__threads_before_acquire(void)
{
	reclaim_now_and_then(&xbefore_acquire_ns, BEFORE_ACQUIRE_RECLAIM_NS);
}

unsigned hak__threads_parked(void)
{
	return __atomic_load_n(&parked_n, __ATOMIC_RELAXED);
}

/* The main thread called pthread_exit() (its exit hook ran): from now on the process ends with
 * its last thread, and a helper must not be that one (helper.c). */
static _Atomic int leader_gone;

bool hak__threads_leader_gone(void)
{
	return atomic_load_explicit(&leader_gone, memory_order_relaxed);
}

static void thread_exit_hook(void *arg)
{
	struct hak_thread *t = arg;
	if (!hak__threads_leader_gone() && gettid() == getpid())
		atomic_store(&leader_gone, 1); /* before the tick below, which wakes the helper */
	void (*hook)(void) = hak_load_acquire(&xexit_hook);
	if (hook) /* the recorder's (trace.c): the thread's end, before its later frees */
		hook();
	hak__tls = &gone_thread; /* later frees by other destructors take the orphan path */
	if (t && t->state == HAK_THREAD_LIVE) {
		detach(t); /* the fast paths miss from here on; this TLS goes soon */
		/* A thread that freed many blocks of other threads (a consumer) may have emptied
		 * the slabs of parked states: settle them now, not at the next trim pass. */
		if (t->counters[HAK_TCOUNT_remote_frees] >= REAP_AFTER_REMOTE_FREES)
			hak__threads_reap_parked();
		thread_park(t);
		hak__trim_tick(); /* a parked state waits for a trim pass if no thread comes */
	}
	/* Blocks this thread freed into slabs whose owners had exited: drain those slabs now, so
	 * what became free goes back without waiting for a trim pass. */
	if (hak__abandoned_dirty())
		hak__abandoned_collect();
	hak__trim_notify_pending(); /* what the exit emptied goes back now, not at the next pass */
}

/* ---- The orphan state ---------------------------------------------------------------------------------- */

void hak__orphan_lock(void)
{
	hak__lock(&orphan_lock);
}

void hak__orphan_unlock(void)
{
	hak__unlock(&orphan_lock);
}

struct hak_thread *hak__orphan(void)
{
	if (!orphan_thread)
		__atomic_store_n(&orphan_thread, thread_new(false), __ATOMIC_RELAXED); /* shared, never retired */
	return orphan_thread;
}

/* ---- Sums for the stats and for policies ---------------------------------------------------------------- */

void hak__threads_sum(struct hak_thread_sums *out)
{
	memset(out, 0, sizeof *out);
	hak__lock(&thread_lock);
	out->local_frees = retired_local;
	for (unsigned i = 0; i < HAK_TCOUNT_N; i++)
		out->counters[i] = hak_load_relaxed(&retired[i]);
	memcpy(out->plugin_counters, retired_plugin, sizeof retired_plugin);
	for (struct hak_thread *t = live_threads; t; t = t->next_live) {
		for (unsigned c = 0; c < HAK_NCLASSES; c++)
			out->local_frees += t->cache[c].frees;
		for (unsigned i = 0; i < HAK_TCOUNT_N; i++)
			out->counters[i] += t->counters[i];
		for (unsigned i = 0; i < HAK_THREAD_PLUGIN_COUNTERS; i++)
			out->plugin_counters[i] += t->plugin_counters[i];
	}
	/* threads' own states: not the shared one (set once, under the orphan lock) */
	out->live = live_n - (__atomic_load_n(&orphan_thread, __ATOMIC_RELAXED) != NULL);
	out->parked = parked_n;
	hak__unlock(&thread_lock);
}

void hak__threads_each(void (*fn)(struct hak_thread *t, void *ctx), void *ctx)
{
	hak__lock(&thread_lock);
	for (struct hak_thread *t = live_threads; t; t = t->next_live)
		fn(t, ctx); /* the orphan state is registered too */
	hak__unlock(&thread_lock);
}

void hak__threads_out_retired(int64_t bytes[2], int64_t blocks[2])
{
	for (unsigned h = 0; h < 2; h++) {
		bytes[h] = hak_load_relaxed(&retired_out_bytes[h]);
		blocks[h] = hak_load_relaxed(&retired_out_blocks[h]);
	}
}

void hak__thread_out_sub(struct hak_thread *t, unsigned lg, uint32_t bytes)
{
	unsigned h = lg - HAK_SS_LG_MIN;
	if (t->state == HAK_THREAD_LIVE) {
		t->out_bytes[h] -= bytes;
		t->out_blocks[h]--;
	} else {
		hak_add_relaxed(&retired_out_bytes[h], -(int64_t)bytes);
		hak_add_relaxed(&retired_out_blocks[h], -1);
	}
}

/* Another thread's counts, read while it may write them: one aligned word each, a snapshot by
 * design (introspect.c reads them the same way); ThreadSanitizer is told not to report it. */
__attribute__((noinline, no_sanitize_thread)) static int64_t read_blocks(const struct hak_thread *t)
{
	return __atomic_load_n(&t->out_blocks[0], __ATOMIC_RELAXED) +
	       __atomic_load_n(&t->out_blocks[1], __ATOMIC_RELAXED);
}

int64_t hak__threads_active_total(void)
{
	hak__lock(&thread_lock); /* no state is retired (folded) meanwhile */
	int64_t n = hak_load_relaxed(&retired_out_blocks[0]) + hak_load_relaxed(&retired_out_blocks[1]);
	for (struct hak_thread *t = live_threads; t; t = t->next_live)
		n += read_blocks(t);
	hak__unlock(&thread_lock);
	return n;
}

void hak__threads_class_frees(uint64_t *out, unsigned n)
{
	if (n > HAK_NCLASSES)
		n = HAK_NCLASSES;
	hak__lock(&thread_lock);
	for (unsigned c = 0; c < n; c++)
		out[c] = retired_class[c];
	for (struct hak_thread *t = live_threads; t; t = t->next_live)
		for (unsigned c = 0; c < n; c++)
			out[c] += t->cache[c].frees;
	hak__unlock(&thread_lock);
}

/* ---- Trim passes: reclaim for live threads outside their slow paths -------------------------------------- */

/* thread lock held: no state is retired or recycled meanwhile */
static unsigned reclaim_locked(void)
{
	unsigned n = 0;
	for (struct hak_thread *t = live_threads; t; t = t->next_live)
		n += hak__own_reclaim_try(t);
	return n;
}

unsigned hak__threads_reclaim(void)
{
	hak__lock(&thread_lock);
	unsigned n = reclaim_locked();
	hak__unlock(&thread_lock);
	return n;
}

/* ---- fork ---------------------------------------------------------------------------------------------------- */

/* Every live thread's policy lock: a thread inside a refill or a flush is between two
 * consistent states of its caches and slabs, and the child retires every state but its own.
 * Not the ones on this thread's list (lock.h): a fork from a signal handler that interrupted a
 * refill must not wait for its own. A plain fork takes all or none (a busy one is waited for, by
 * its lock, after the fork let everything go); a trying fork takes every one it can, each tried
 * a bounded number of times (a trim pass may hold a sleeping thread's lock a while: giving up on
 * all for it would leave every state unguarded). One entry in the fork frame however many
 * threads there are.
 * Each fork keeps the states it took in its own list (plocks_taken, through fork_next) and
 * releases exactly those: a trying fork may go on without the thread lock, so the registry can
 * change under it (an exiting thread unregisters between its last flush and its policy's
 * thread_exit, which waits for its own lock), and several forks may run at once; releasing by a
 * walk of the registry and fork_held left a state taken by one fork locked for ever once its
 * thread unregistered (two exiting threads spun on their own locks), and let one fork release
 * another's. */
static __thread struct hak_thread *plock_busy __attribute__((tls_model("initial-exec")));
static __thread struct hak_thread *plocks_taken __attribute__((tls_model("initial-exec")));

static void plocks_release(void *unused);

static bool plocks_try(void *unused)
{
	(void)unused;
	bool trying = hak__fork_trying();
	for (struct hak_thread *t = live_threads; t; t = t->next_live) {
		if (hak__held_has(&t->xplock))
			continue;
		unsigned tries = 0;
		while (atomic_exchange_explicit(&t->xplock, 1, memory_order_acquire)) {
			if (!trying) {
				plocks_release(NULL);
				plock_busy = t;
				return false;
			}
			if (++tries == HAK_FORK_TRIES)
				break; /* on without it */
			sched_yield();
		}
		if (tries < HAK_FORK_TRIES) {
			t->fork_held = 1;
			t->fork_next = plocks_taken;
			plocks_taken = t;
		}
	}
	return true;
}

/* Holding nothing: until the busy one is free (a state is never unmapped: its lock stays readable). */
static void plocks_wait(void *unused)
{
	(void)unused;
	struct hak_thread *t = plock_busy;
	while (t && atomic_load_explicit(&t->xplock, memory_order_acquire))
		sched_yield();
}

static void plocks_release(void *unused)
{
	(void)unused;
	while (plocks_taken) {
		struct hak_thread *t = plocks_taken;
		plocks_taken = t->fork_next;
		t->fork_next = NULL;
		t->fork_held = 0;
		atomic_store_explicit(&t->xplock, 0, memory_order_release);
	}
}

static const struct hak_fork_lock_ops plocks_ops = {plocks_try, NULL, plocks_release, plocks_wait, false};

static bool fork_without_registry; /* the last fork went on without the thread lock */

bool hak__thread_fork_prepare(void)
{
	if (!hak__fork_take_mutex(&orphan_lock) || !hak__fork_take_mutex(&thread_lock))
		return false;
	fork_without_registry = !hak__fork_took(&thread_lock);
	return hak__fork_take(&plocks_ops, NULL);
}

/* A child whose fork went on without the thread lock: the registry as its forward links say
 * (see register_live); the counts recounted. */
static void registry_relink(void)
{
	uint64_t n = 0;
	struct hak_thread *prev = NULL;
	for (struct hak_thread *t = live_threads; t; prev = t, t = t->next_live, n++)
		t->prev_live = prev;
	live_n = n;
	unsigned parked = 0;
	for (struct hak_thread *t = parked_threads; t; t = t->next_free)
		parked++;
	__atomic_store_n(&parked_n, parked, __ATOMIC_RELAXED);
}

/* In the child, a state whose thread did not come along: its gathered foreign frees (free.c
 * gathers them without its policy lock) as the fork copied them, mid-update maybe. free.c stores
 * the slab and the links before the head and hak__thread_foreign_flush clears the head first,
 * so a chain that has a head is whole and of that slab; only its count and tail are recounted
 * (the count is stored after the head). */
static void foreign_recount(struct hak_thread *t)
{
	if (!t->foreign_head || !t->foreign_slab) {
		t->foreign_head = t->foreign_tail = NULL;
		t->foreign_slab = NULL;
		t->foreign_count = 0;
		return;
	}
	struct hak_chain chain = hak__chain_of(t->foreign_head);
	t->foreign_tail = chain.tail;
	t->foreign_count = chain.count;
}

/* Only the forking thread lives on: every other thread's state is retired as if it had exited,
 * so its cached blocks return and its slabs become adoptable (nothing stranded in the child).
 * When the fork came from a signal handler that interrupted this thread inside hakmem, its own
 * state may be half-updated: it is left alone (leaked) and the thread starts a fresh one. */
void hak__thread_fork_child(bool self_consistent)
{
	atomic_store(&leader_gone, 0); /* the forking thread is the child's main thread */
	pthread_mutex_init(&thread_lock, NULL);
	pthread_mutex_init(&orphan_lock, NULL);
	if (fork_without_registry) {
		fork_without_registry = false;
		registry_relink();
	}
	/* The states this fork took, registered or not (a parked one is reaped later): their
	 * threads are gone. fork_held stays set for the walk below. */
	for (struct hak_thread *t = plocks_taken; t; t = t->fork_next)
		atomic_store(&t->xplock, 0);
	struct hak_thread *self = hak__tls;
	if (!self_consistent && self->state == HAK_THREAD_LIVE) {
		for (unsigned h = 0; h < 2; h++) { /* its cached blocks are lost: counted as in use */
			hak_add_relaxed(&retired_out_bytes[h], self->out_bytes[h]);
			hak_add_relaxed(&retired_out_blocks[h], self->out_blocks[h]);
			self->out_bytes[h] = self->out_blocks[h] = 0;
		}
		unregister(self);
		if (atomic_load(&exit_key_ready))
			pthread_setspecific(exit_key, NULL);
		hak__tls = &boot_thread;
		take_home(self); /* the TLS caches may be half updated: leaked with the state */
		self = NULL;
	}
	/* A state whose policy lock someone else held at the fork (the fork only tried it: a
	 * signal handler's fork) may be between two updates of its caches, rings and slabs: it is
	 * left alone (leaked with what it holds), like this thread's own above, never retired. */
	struct hak_thread *t = live_threads;
	while (t) {
		struct hak_thread *next = t->next_live;
		bool unsure = atomic_load(&t->xplock) && !t->fork_held && t != self;
		atomic_store(&t->xplock, 0); /* its thread is gone; it may have held it at the fork */
		t->fork_held = 0;
		if (unsure && t == orphan_thread) {
			unregister(t);
			__atomic_store_n(&orphan_thread, NULL, __ATOMIC_RELAXED); /* a new one when needed */
		} else if (unsure) {
			for (unsigned h = 0; h < 2; h++) { /* what it had out counts as in use */
				hak_add_relaxed(&retired_out_bytes[h], t->out_bytes[h]);
				hak_add_relaxed(&retired_out_blocks[h], t->out_blocks[h]);
				t->out_bytes[h] = t->out_blocks[h] = 0;
			}
			unregister(t);
		} else if (t != self && t != orphan_thread) {
			foreign_recount(t);
			hak__thread_retire(t);
		}
		t = next;
	}
	while (plocks_taken) {
		struct hak_thread *t = plocks_taken;
		plocks_taken = t->fork_next;
		t->fork_next = NULL;
		t->fork_held = 0;
	}
}
