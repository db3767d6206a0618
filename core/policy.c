/* policy.c: the policies in force. Boots the built-in defaults (no I/O), installs plugins the
 * loader accepted, keeps every ownership model that ever made a SuperSlab (they stay callable
 * for that memory), fills the table of core services plugins receive, and runs trim passes. */
#include "hakmem_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>

struct hak_model hak__models[HAK_MAX_MODELS];
_Atomic unsigned hak__model_count;
struct hak_model *_Atomic hak__model_current;
struct hak_active_policy hak__trim_policy, hak__size_policy;

/* ---- Services for plugins (wrappers where the internal signature differs) ------------------ */

static unsigned api_class_count(void)
{
	return HAK_NCLASSES;
}

static size_t api_class_block_size(unsigned cls)
{
	return cls < HAK_NCLASSES ? hak__classes[cls].block_size : 0;
}

static unsigned api_class_batch(unsigned cls)
{
	return cls < HAK_NCLASSES ? hak__classes[cls].batch : 0;
}

/* Slow start: 4 blocks (or the whole batch if smaller), then twice the last, up to the batch. */
static unsigned api_refill_count(hak_thread *t, unsigned cls)
{
	if (cls >= HAK_NCLASSES)
		return 0;
	unsigned batch = hak__classes[cls].batch;
	if (!t)
		return batch;
	struct hak_tcache *tc = &t->cache[cls];
	unsigned n = tc->want ? tc->want : (batch < 4 ? batch : 4);
	tc->want = (uint16_t)(n * 2 < batch ? n * 2 : batch);
	return n;
}

static uintptr_t api_thread_token(hak_thread *t)
{
	return t ? t->token : HAK_OWNER_NONE;
}

static void *api_thread_policy_state(hak_thread *t, enum hak_policy_kind kind)
{
	return t && kind == HAK_POLICY_OWNERSHIP ? t->own_tstate : NULL;
}

/* The model a slab is acquired for: the core sets it before every ownership-policy call. */
__thread unsigned hak__calling_model __attribute__((tls_model("initial-exec")));

/* Slabs a thread takes for itself count towards the size of its state (heap.c parks small
 * ones at exit). The sentinels' tokens are never owners, so they are never written. */
static hak_slab *note_taken(hak_slab *s, uintptr_t owner)
{
	struct hak_thread *me = hak__tls;
	if (s && me->token == owner)
		me->units_taken += s->nunits;
	return s;
}

static hak_slab *api_slab_acquire(unsigned cls, uintptr_t owner)
{
	if (cls >= HAK_NCLASSES)
		return NULL;
	return note_taken(hak__slab_acquire(cls, owner, hak__calling_model), owner);
}

static hak_slab *api_slab_adopt(unsigned cls, uintptr_t owner)
{
	return note_taken(hak__slab_adopt(cls, owner), owner);
}

static hak_slab *api_slab_of(const void *block)
{
	struct hak_superslab *ss = hak__ss_lookup(block);
	if (!ss)
		return NULL;
	struct hak_slab *s = hak__slab_of_ss(ss, block);
	return s->nunits ? s : NULL;
}

static int api_slab_claim(hak_slab *s, uintptr_t expected, uintptr_t owner)
{
	return hak_cas_strong(&s->xowner, &expected, owner);
}

static void **api_slab_policy_links(hak_slab *s)
{
	return s->links;
}

static void api_count(hak_thread *t, enum hak_counter which, uint64_t n)
{
	if ((unsigned)which >= 4)
		return;
	if (t)
		t->counters[which] += n;
	else
		hak_add_relaxed(&hak__g.retired_counters[which], n);
}

static unsigned api_live_superslabs(void)
{
	return (unsigned)hak__live_superslabs();
}

_Atomic int hak__helper_running;

static int api_spawn_helper(void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 << 10);
	pthread_t tid;
	int err = pthread_create(&tid, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!err)
		hak_store_relaxed(&hak__helper_running, 1);
	return err;
}

const struct hak_core_api hak__core_api = {
	.abi_major = HAK_POLICY_ABI_MAJOR,
	.abi_minor = HAK_POLICY_ABI_MINOR,
	.size = sizeof(struct hak_core_api),
	.log = hak__log,
	.now_ns = hak__now_ns,
	.class_count = api_class_count,
	.class_block_size = api_class_block_size,
	.class_batch = api_class_batch,
	.thread_token = api_thread_token,
	.thread_policy_state = api_thread_policy_state,
	.slab_acquire = api_slab_acquire,
	.slab_release = hak__slab_release,
	.slab_of = api_slab_of,
	.slab_take = hak__slab_take,
	.chain_return = hak__chain_return,
	.slab_get_info = hak__slab_info,
	.slab_claim = api_slab_claim,
	.slab_policy_links = api_slab_policy_links,
	.remote_push = hak__remote_push,
	.remote_drain = hak__remote_drain,
	.slab_abandon = hak__slab_abandon,
	.slab_adopt = api_slab_adopt,
	.cache_fill = hak__cache_fill,
	.count = api_count,
	.release_empty = hak__release_empty,
	.purge_free = hak__purge_free,
	.trim_pass = hak__trim_pass_aging,
	.empty_count = hak__empty_count,
	.live_superslabs = api_live_superslabs,
	.spawn_helper = api_spawn_helper,
	.refill_count = api_refill_count,
};

/* ---- Models ---------------------------------------------------------------------------------- */

static struct hak_model *model_add(const struct hak_policy_desc *d, void *state)
{
	unsigned n = atomic_load(&hak__model_count);
	if (n == HAK_MAX_MODELS)
		return NULL;
	struct hak_model *m = &hak__models[n];
	m->desc = d;
	m->ops = d->ownership;
	m->state = state;
	m->index = n;
	atomic_store(&hak__model_count, n + 1);
	return m;
}

/* Built-in defaults: idle trim, fixed 2 MB, thread-owned slabs. No file I/O, no dlopen:
 * this runs inside the first malloc. */
void hak__policies_boot(void)
{
	static const struct hak_settings none = {"(defaults)", NULL, 0};
	char err[128];
	void *state = NULL;
	const struct hak_policy_desc *d = &hak__builtin_superslab_fixed;
	if (d->init(&hak__core_api, &none, &state, err, sizeof err) != 0)
		hak__fatal("built-in policy '%s' failed: %s", d->name, err);
	hak__size_policy = (struct hak_active_policy){d, state};
	d = &hak__builtin_trim_idle;
	state = NULL;
	if (d->init(&hak__core_api, &none, &state, err, sizeof err) != 0)
		hak__fatal("built-in policy '%s' failed: %s", d->name, err);
	hak__trim_policy = (struct hak_active_policy){d, state};
	d = &hak__builtin_ownership_tls;
	state = NULL;
	if (d->init(&hak__core_api, &none, &state, err, sizeof err) != 0)
		hak__fatal("built-in policy '%s' failed: %s", d->name, err);
	atomic_store(&hak__model_current, model_add(d, state));
}

/* Make an initialised policy the active one of its kind. Ownership models are kept: memory
 * they made stays theirs. The calling thread's state is retired so its next allocation runs
 * under the new model. Returns 0 or an errno value. */
int hak__policy_install(const struct hak_policy_desc *d, void *state)
{
	switch (d->kind) {
	case HAK_POLICY_TRIM:
		hak__trim_policy = (struct hak_active_policy){d, state};
		return 0;
	case HAK_POLICY_SUPERSLAB:
		hak__size_policy = (struct hak_active_policy){d, state};
		return 0;
	case HAK_POLICY_OWNERSHIP: {
		struct hak_model *m = model_add(d, state);
		if (!m)
			return ENOSPC;
		atomic_store(&hak__model_current, m);
		hak__thread_restart();
		return 0;
	}
	}
	return EINVAL;
}

/* ---- Trim plumbing --------------------------------------------------------------------------- */

static _Atomic unsigned pending_empty;

void hak__trim_notify_empty(void)
{
	hak_add_relaxed(&pending_empty, 1);
}

/* Called from slow paths once no core state is half-done. */
void hak__trim_run_pending(void)
{
	if (!hak_load_relaxed(&pending_empty))
		return;
	if (!atomic_exchange(&pending_empty, 0))
		return;
	const struct hak_trim_ops *ops = hak__trim_policy.desc->trim;
	if (ops->superslab_empty)
		ops->superslab_empty(hak__trim_policy.state);
}

void hak__trim_tick(void)
{
	hak__trim_run_pending();
	const struct hak_trim_ops *ops = hak__trim_policy.desc->trim;
	if (ops->tick)
		ops->tick(hak__trim_policy.state);
}

/* Retire parked thread states, consolidate every model, drain what dead threads left and what
 * live ones do not use (ownership op `reclaim`), release empty SuperSlabs beyond keep, purge
 * free units. A purging pass also releases the empties that stayed empty since the previous one
 * (the reserve decays when unused). Cached large mappings: with `aging` (the trim policy's own
 * passes) those unused since the previous pass go back; without (malloc_trim, hak_trim, out of
 * memory) all of them. */
static struct hak_trim_result trim_pass(unsigned keep, int purge, bool aging)
{
	struct hak_trim_result r = {0, 0};
	hak__threads_reap_parked(); /* exited threads' slabs become adoptable or go back */
	unsigned n = atomic_load(&hak__model_count);
	for (unsigned i = 0; i < n; i++)
		if (hak__models[i].ops->consolidate) {
			hak__calling_model = i;
			hak__models[i].ops->consolidate(hak__models[i].state);
		}
	hak__abandoned_collect();
	hak__threads_reclaim();
	r.superslabs_released = hak__release_empty(keep);
	unsigned large_young = 0;
	if (purge) {
		r.superslabs_released += hak__release_idle_empty();
		r.bytes_purged = hak__purge_free(1);
		if (aging)
			large_young = hak__large_age();
		else
			hak__large_trim(0);
	}
	hak_add_relaxed(&hak__g.trim_passes, 1);
	atomic_store(&pending_empty, 0);
	/* Young large mappings stayed: tell the policy there is work, so the pass that sends them
	 * back comes even if the program goes idle now (the idle helper skips passes while nothing
	 * signals). Not from a pass that this very tick started: a policy may trim inline in tick. */
	static __thread bool resignalling __attribute__((tls_model("initial-exec")));
	if (large_young && !resignalling) {
		resignalling = true;
		const struct hak_trim_ops *ops = hak__trim_policy.desc->trim;
		if (ops->tick)
			ops->tick(hak__trim_policy.state);
		resignalling = false;
	}
	return r;
}

struct hak_trim_result hak__trim_pass(unsigned keep, int purge)
{
	return trim_pass(keep, purge, false);
}

struct hak_trim_result hak__trim_pass_aging(unsigned keep, int purge)
{
	return trim_pass(keep, purge, true);
}

/* ---- fork: every model's locks, in model order, between the heap and the pool locks ---------- */

void hak__policies_fork_prepare(void)
{
	unsigned n = atomic_load(&hak__model_count);
	for (unsigned i = 0; i < n; i++)
		if (hak__models[i].ops->fork_prepare)
			hak__models[i].ops->fork_prepare(hak__models[i].state);
}

void hak__policies_fork_parent(void)
{
	unsigned n = atomic_load(&hak__model_count);
	for (unsigned i = n; i-- > 0;)
		if (hak__models[i].ops->fork_parent)
			hak__models[i].ops->fork_parent(hak__models[i].state);
}

void hak__policies_fork_child(void)
{
	hak_store_relaxed(&hak__helper_running, 0); /* helper threads do not survive fork */
	unsigned n = atomic_load(&hak__model_count);
	for (unsigned i = 0; i < n; i++)
		if (hak__models[i].ops->fork_child)
			hak__models[i].ops->fork_child(hak__models[i].state);
	if (hak__trim_policy.desc->trim->fork_child)
		hak__trim_policy.desc->trim->fork_child(hak__trim_policy.state);
}
