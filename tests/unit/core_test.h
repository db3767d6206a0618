/* core_test.h: what the cmocka tests of the core modules share: the core's headers and a few
 * helpers that drive the layers the way the slow paths and the trim policies do. */
#ifndef HAK_CORE_TEST_H
#define HAK_CORE_TEST_H

#include "alloc.h"
#include "large.h"
#include "os.h"
#include "policy_call.h"
#include "pool.h"
#include "services.h"
#include "slab.h"
#include "thread.h"
#include "trim.h"

/* A policy descriptor initialised with `settings` and made the active one of its kind, as the
 * library constructor does with a configured one. Returns its record. */
static inline struct hak_policy *test_install(const struct hak_policy_desc *d, const struct hak_settings *settings)
{
	static const struct hak_settings none = {"(test)", NULL, 0};
	struct hak_policy *p = hak__policy_reserve(d->kind);
	void *state = NULL;
	char err[160];
	if (!p || hak__pcall_init(d, &hak__core_api, p, settings ? settings : &none, &state, err, sizeof err) != 0)
		hak__fatal("test_install: %s: %s", d->name, p ? err : "no record left");
	hak__policy_fill(p, d, state, NULL);
	hak__policy_install(p);
	return p;
}

/* malloc_trim's pass: everything free goes back. */
static inline struct hak_trim_result test_trim(unsigned keep)
{
	return hak__trim_pass(keep, HAK_TRIM_PURGE | HAK_TRIM_LARGE_ALL);
}

static inline unsigned test_release_empty(unsigned floor)
{
	return hak__trim_release_empty(floor, 0, ~0u);
}

/* A slab as the built-in ownership policy (record 0) would get it, in a 2 MB SuperSlab. */
static inline struct hak_slab *test_slab_acquire(unsigned cls, uintptr_t owner, unsigned model)
{
	return hak__slab_acquire(cls, owner, model, 21, 0);
}

/* Blocks out of slab land (hak_active_blocks): the thread states' sum, checked against the
 * SuperSlabs' own counts that debug builds keep (equal whenever no thread is inside hakmem). */
static inline int64_t test_active_blocks(void)
{
	int64_t n = hak__threads_active_total();
	HAK_CHECK(n == hak__pool_active_total(), "active blocks: the thread states say %lld, the SuperSlabs %lld",
		  (long long)n, (long long)hak__pool_active_total());
	return n;
}

static inline uint64_t test_local_frees(const struct hak_thread *t)
{
	uint64_t n = 0;
	for (unsigned c = 0; c < HAK_NCLASSES; c++)
		n += t->cache[c].frees;
	return n;
}

#endif
