/* services.c: layer 7, the table of core services every policy receives (struct hak_core_api,
 * built from core_services.h), each a thin wrapper over the layers below, and the policies'
 * start-up in the core: the built-in defaults booted inside the first malloc (no I/O), and a
 * loaded policy made the active one of its kind. */
#include "services.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

#include "core_services.h"
#include "large.h"
#include "os.h"
#include "policy_call.h"
#include "slab.h"
#include "thread.h"
#include "trim.h"

/* ---- General ------------------------------------------------------------------------------------- */

#define api_log hak__log
#define api_now_ns hak__now_ns

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

static int api_counter_register(hak_policy *self, const char *name, enum hak_counter_type type, unsigned n)
{
	return hak__counter_register(self, name, (unsigned)type, n);
}

static void api_counter_add(hak_thread *t, int id, uint64_t n)
{
	int slot = hak__counter_thread_slot(id);
	if (slot >= 0 && t && t->state == HAK_THREAD_LIVE)
		t->plugin_counters[slot] += n;
	else
		hak__counter_add_global(id, n);
}

#define api_counter_set hak__counter_set

/* helper.c: spawn_helper (the helper names itself "hakmem-helper": the recorder's writer,
 * trace.c, ends a process in which only hakmem's own threads are left), helper_sleep,
 * helper_wake. */
#define api_spawn_helper hak__helper_spawn
#define api_helper_sleep hak__helper_sleep
#define api_helper_wake hak__helper_wake

/* ---- Threads and caches --------------------------------------------------------------------------- */

static uintptr_t api_thread_token(hak_thread *t)
{
	return t ? t->token : HAK_OWNER_NONE;
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

/* The policy hands a chain to t's cache: it leaves slab land. The blocks keep their free marks
 * (a policy never touches word 1). */
static void api_cache_fill(hak_thread *t, unsigned cls, struct hak_chain chain)
{
	if (!chain.head)
		return;
	HAK_ASSERT(cls < HAK_NCLASSES && chain.tail && chain.count);
	HAK_INVARIANT(hak__block_is_free(chain.head) && hak__block_is_free(chain.tail));
	hak__account_chain(chain, +1, cls, t->out_bytes, t->out_blocks);
	struct hak_tcache *tc = &t->cache[cls];
	hak__block_set_next(chain.tail, tc->head);
	tc->head = chain.head;
	tc->room = !hak__tc_full(tc) && tc->room > chain.count ? tc->room - chain.count : 0;
}

static void api_cache_accept(hak_thread *t, unsigned cls, uintptr_t owner)
{
	if (cls < HAK_NCLASSES && t && t->state == HAK_THREAD_LIVE)
		t->cache[cls].accept = owner | hak__accept_mark; /* recording marks it (tcache.h) */
}

#define api_class_local_frees hak__threads_class_frees

/* ---- Slabs ---------------------------------------------------------------------------------------- */

/* Slabs a thread takes for itself count towards the size of its state (thread.c parks small
 * ones at exit). The sentinels' tokens are never owners, so they are never written. */
static hak_slab *note_taken(hak_slab *s, uintptr_t owner)
{
	struct hak_thread *me = hak__tls;
	if (s && me->token == owner)
		me->units_taken += s->nunits;
	return s;
}

static bool owner_policy_ok(const hak_policy *self)
{
	return self && self->kind == HAK_POLICY_OWNERSHIP && self->desc &&
	       self == hak__policy_at(HAK_POLICY_OWNERSHIP, self->index);
}

static hak_slab *api_slab_acquire(hak_policy *self, unsigned cls, uintptr_t owner)
{
	HAK_CHECK(owner_policy_ok(self), "slab_acquire: %p is not an ownership policy's handle", (void *)self);
	if (cls >= HAK_NCLASSES)
		return NULL;
	hak__threads_before_acquire();
	unsigned size_by;
	unsigned lg = hak__size_lg_for(cls, &size_by);
	hak__pool_grew = false;
	hak_slab *s = hak__slab_acquire(cls, owner, self->index, lg, size_by);
	if (s && hak__pool_grew)
		hak__thread_grew_big(hak__tls, cls); /* big classes only */
	return note_taken(s, owner);
}

static hak_slab *api_slab_adopt(hak_policy *self, unsigned cls, uintptr_t owner)
{
	HAK_CHECK(owner_policy_ok(self), "slab_adopt: %p is not an ownership policy's handle", (void *)self);
	if (cls >= HAK_NCLASSES)
		return NULL;
	hak_slab *s = hak__slab_adopt(cls, owner, self->index);
	if (s)
		hak__thread_count(hak__tls, HAK_TCOUNT_adoptions, 1);
	return note_taken(s, owner);
}

#define api_slab_release hak__slab_release
#define api_slab_abandon hak__slab_abandon
#define api_slab_take hak__slab_take
#define api_chain_return hak__chain_return
#define api_slab_get_info hak__slab_info
#define api_slab_of hak__slab_of_block
#define api_remote_push hak__remote_push
#define api_remote_push_chain hak__remote_push_chain

static void **api_slab_policy_links(hak_slab *s)
{
	return s->links;
}

static unsigned api_remote_drain(hak_slab *s)
{
	unsigned n = hak__remote_drain(s);
	if (n)
		hak__thread_count(hak__tls, HAK_TCOUNT_remote_drained, n);
	return n;
}

/* ---- Trim primitives ------------------------------------------------------------------------------ */

#define api_reap_parked hak__trim_reap_parked
#define api_consolidate hak__trim_consolidate
#define api_collect_abandoned hak__trim_collect_abandoned
#define api_reclaim_threads hak__trim_reclaim_threads
#define api_request_cache_flush hak__threads_request_flush
#define api_release_empty hak__trim_release_empty
#define api_purge hak__trim_purge
#define api_large_release hak__trim_large_release
#define api_large_limits hak__large_set_limits
#define api_set_parking hak__threads_set_parking
#define api_heap_facts hak__trim_facts
#define api_empty_count hak__pool_empty_count

static unsigned api_live_superslabs(void)
{
	return (unsigned)hak__pool_live();
}

#define api_free_runs_each hak__pool_free_runs_each
#define api_process_rss hak__process_rss
#define api_trim_pass hak__trim_pass

#define API(name) .name = api_##name,
const struct hak_core_api hak__core_api = {HAK_CORE_API_HEADER, HAK_CORE_SERVICES(API)};
#undef API

/* ---- Start-up in the core --------------------------------------------------------------------------- */

/* The built-in default of every kind: no file I/O, no dlopen: this runs inside the first
 * malloc. The superslab policy first (the others may map), ownership last. */
void hak__policies_boot(void)
{
	static const struct hak_settings none = {"(defaults)", NULL, 0};
	static const uint32_t order[] = {HAK_POLICY_SUPERSLAB, HAK_POLICY_TRIM, HAK_POLICY_OWNERSHIP};
	for (unsigned i = 0; i < sizeof order / sizeof order[0]; i++) {
		const struct hak_policy_desc *d = hak__builtin_desc(order[i]);
		struct hak_policy *p = hak__policy_reserve(order[i]);
		char err[128];
		void *state;
		HAK_CHECK(p, "internal: no policy record for the built-in %s policy", hak__kind_name(order[i]));
		if (hak__pcall_init(d, &hak__core_api, p, &none, &state, err, sizeof err) != 0)
			hak__fatal("built-in %s policy '%s' failed: %s", hak__kind_name(order[i]), d->name, err);
		hak__policy_fill(p, d, state, NULL);
		hak__policy_make_current(p);
		hak__pcall_start(p);
	}
}

/* p (filled) becomes the active policy of its kind: it starts, the previous one stops (an
 * ownership policy stays callable for the memory it made), and for ownership the calling
 * thread's state is retired so its next allocation runs under the new policy. */
void hak__policy_install(struct hak_policy *p)
{
	struct hak_policy *prev = hak__policy_make_current(p);
	hak__pcall_start(p);
	if (prev && prev != p)
		hak__pcall_stop(prev);
	if (p->kind == HAK_POLICY_OWNERSHIP)
		hak__thread_restart();
}

/* At exit: every current policy stops its background work. */
void hak__policies_stop_all(void)
{
	for (uint32_t k = 1; k <= HAK_KIND_COUNT; k++) {
		struct hak_policy *p = hak__policy_current(k);
		if (p)
			hak__pcall_stop(p);
	}
}
