/* trim.c: layer 6, the trim primitives and the composite pass (see trim.h and the services'
 * descriptions in include/hakmem_policy.h). The composite keeps the times of the previous
 * purging and aging passes: "free since the previous pass" is "free for at least now minus
 * then", so every step is one primitive with an age. */
#include "trim.h"

#include "large.h"
#include "lock.h"
#include "os.h"
#include "policy_call.h"
#include "pool.h"
#include "slab.h"
#include "thread.h"

static _Atomic uint64_t xlast_purge_ns, xlast_age_ns, xpasses;

/* One composite pass at a time: a pass that runs while another is half done (the helper's, say,
 * with slabs it took off a list and has not released yet, or a thread's policy lock held for a
 * reclaim) would find nothing to release, and malloc_trim()/hak_trim() would return with memory
 * that goes back a moment later (issue 14 item 6). Lock order: after the orphan lock (an
 * allocation out of memory may run a pass from inside the orphan state), before every lock a
 * pass takes. Not taken by fork (a pass in flight only holds what the others guard): reset in
 * the child. */
static pthread_mutex_t pass_lock = PTHREAD_MUTEX_INITIALIZER;

unsigned hak__trim_reap_parked(void)
{
	return hak__threads_reap_parked();
}

void hak__trim_consolidate(void)
{
	hak__own_consolidate_all();
}

unsigned hak__trim_collect_abandoned(void)
{
	return hak__abandoned_collect();
}

unsigned hak__trim_reclaim_threads(void)
{
	return hak__threads_reclaim();
}

unsigned hak__trim_release_empty(unsigned floor, uint64_t min_empty_ns, unsigned max)
{
	return hak__pool_release_empty(floor, min_empty_ns, max, hak__now_ns());
}

uint64_t hak__trim_purge(uint64_t min_free_ns, uint64_t max_bytes)
{
	return hak__pool_purge(min_free_ns, max_bytes, hak__now_ns());
}

unsigned hak__trim_large_release(uint64_t min_idle_ns, uint64_t keep_bytes)
{
	return hak__large_release(min_idle_ns, keep_bytes, hak__now_ns());
}

void hak__trim_facts(struct hak_heap_facts *out)
{
	if (HAK_STRUCT_HAS(out, now_ns))
		out->now_ns = hak__now_ns();
	hak__pool_facts(out);
	hak__large_facts(out);
	if (HAK_STRUCT_HAS(out, parked_states))
		out->parked_states = hak__threads_parked();
	if (HAK_STRUCT_HAS(out, mappings))
		out->mappings = (uint64_t)hak__os_mappings();
	if (HAK_STRUCT_HAS(out, map_budget))
		out->map_budget = hak__os_map_budget();
}

/* Age since the previous pass of this sort, and now the previous one. The first pass of a sort
 * sees age `now` (nothing that became free after the clock's start qualifies): it only marks. */
static uint64_t since_previous(_Atomic uint64_t *last, uint64_t now)
{
	uint64_t prev = atomic_exchange(last, now);
	return now - prev;
}

struct hak_trim_result hak__trim_pass(unsigned keep, unsigned flags)
{
	struct hak_trim_result r = {0, 0, 0};
	hak__lock(&pass_lock);
	hak__threads_reap_parked(); /* exited threads' slabs become adoptable or go back */
	hak__own_consolidate_all();
	hak__abandoned_collect();
	hak__threads_reclaim();
	uint64_t now = hak__now_ns();
	r.superslabs_released = hak__pool_release_empty(keep, 0, ~0u, now);
	if (flags & HAK_TRIM_PURGE) {
		/* What stayed free a whole interval is not absorbing churn: the reserve too. */
		uint64_t age = since_previous(&xlast_purge_ns, now);
		r.superslabs_released += hak__pool_release_empty(0, age, ~0u, now);
		r.bytes_purged = hak__pool_purge(age, UINT64_MAX, now);
	}
	struct hak_heap_facts left = {.size = sizeof left};
	if (flags & HAK_TRIM_LARGE_ALL) {
		r.large_released = hak__large_release(0, 0, now);
	} else if (flags & HAK_TRIM_LARGE_AGE) {
		r.large_released = hak__large_release(since_previous(&xlast_age_ns, now), 0, now);
		hak__large_facts(&left);
	}
	hak_add_relaxed(&xpasses, 1);
	hak__pool_empties_take(); /* what emptied before now was seen by this pass */
	hak__unlock(&pass_lock);
	/* Young cached mappings stayed: tell the policy there is work, so the pass that sends them
	 * back comes even if the program goes idle now (not from inside a trim op: the wrapper
	 * drops a nested call; after the pass lock: a tick may run a pass). */
	if (left.large_cached)
		hak__trim_tick();
	return r;
}

void hak__trim_fork_child(void)
{
	pthread_mutex_init(&pass_lock, NULL);
}

uint64_t hak__trim_passes(void)
{
	return hak_load_relaxed(&xpasses);
}
