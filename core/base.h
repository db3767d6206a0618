/* base.h: what every core file shares, at the bottom of the layers: branch hints and attributes,
 * the geometry constants, the atomics dialect (the order is in the name), and the three tiers of
 * checks. Includes nothing of the core but log.h.
 *
 * The core's layers, bottom up (a file calls only into its own layer and the ones below; a lower
 * layer reaches a higher one only through a callback it was handed or a value it returns):
 *   0 base     base.h, log.c, os.c, size_class.c, block.c,      the kernel, classes, the free mark,
 *              lock.c                                          the locks a thread holds (fork)
 *   1 map      addrmap.c                                       address -> slab
 *   2 pool     pool.c                                          SuperSlabs: map, lists, empties, purge
 *   3 slab     slab.c, large.c                                 slabs, remote queues, abandoned; large
 *   4 policy   policy.c, policy_call.h                         policies in force, the one home of calls
 *   5 thread   thread.c                                        thread states, caches, parking, fork
 *   6 trim     trim.c                                          trim primitives and the composite pass
 *   7 services services.c, helper.c                            the table of services plugins get
 *   8 alloc    init.c malloc.c free.c realloc.c memalign.c     the slow paths (alloc_fast.h: fast,
 *                                                              alloc_fast_x86_64.h: the same in asm)
 *   9 edge     api.c, startup.c, stats.c, fork.c               libc names, constructor, counters, fork
 * Beside them, just above layer 0, used by the core and the tools alike: config.c, kinds.c,
 * loader.c, elf_check.c, trusted_dir.c (files and plugins), which call into no layer above 0
 * (a policy's init goes through policy_call.h's inline lifecycle wrapper).
 * tools/check-layers (run by `make test`) checks the includes and the calls of every file. */
#ifndef HAK_BASE_H
#define HAK_BASE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define HAK_NOINLINE __attribute__((noinline))
#define HAK_INLINE static inline __attribute__((always_inline))

/* ---- Geometry ------------------------------------------------------------------------------- */
#define HAK_UNIT_SHIFT 16                       /* 64 KB units */
#define HAK_UNIT_SIZE ((size_t)1 << HAK_UNIT_SHIFT)
#define HAK_SS_LG_MIN 20                        /* 1 MB */
#define HAK_SS_LG_MAX 21                        /* 2 MB */
#define HAK_SS_MAX_UNITS (1u << (HAK_SS_LG_MAX - HAK_UNIT_SHIFT))
#define HAK_SS_HEADER 4096                      /* bytes reserved for the header at the base */
#define HAK_NCLASSES 88
#define HAK_SMALL_MAX ((size_t)128 << 10)       /* largest size served from slabs */
#define HAK_ALIGN 16                            /* every block is at least this aligned */
#define HAK_POLICY_SLOTS 8                      /* policies of one kind that may ever be in force */

/* ---- Atomics: visible, with the order in the name (STYLE habit 3) ------------------------- */
#define hak_load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
#define hak_load_acquire(p) atomic_load_explicit((p), memory_order_acquire)
#define hak_store_relaxed(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define hak_store_release(p, v) atomic_store_explicit((p), (v), memory_order_release)
#define hak_add_relaxed(p, v) atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define hak_xchg_acquire(p, v) atomic_exchange_explicit((p), (v), memory_order_acquire)
#define hak_xchg_acq_rel(p, v) atomic_exchange_explicit((p), (v), memory_order_acq_rel)
#define hak_cas_acq_rel(p, expp, v) \
	atomic_compare_exchange_weak_explicit((p), (expp), (v), memory_order_acq_rel, memory_order_acquire)
#define hak_cas_strong(p, expp, v) \
	atomic_compare_exchange_strong_explicit((p), (expp), (v), memory_order_acq_rel, memory_order_acquire)

/* ---- Checks in three tiers (STYLE habit 8) ----------------------------------------------------
 * HAK_CHECK      always on, cheap: a broken invariant here means heap corruption or a misused
 *                API; one line naming it, then abort(), instead of silent damage.
 * HAK_ASSERT     debug builds (HAK_DEBUG >= 1, `make test` builds one): the core's own logic.
 * HAK_INVARIANT  expensive checks (HAK_DEBUG >= 2: the unit tests and the debug library):
 *                list links, counts against walks. */
#ifndef HAK_DEBUG
#define HAK_DEBUG 0
#endif
#define HAK_CHECK(cond, ...)                      \
	do {                                      \
		if (unlikely(!(cond)))            \
			hak__fatal(__VA_ARGS__);  \
	} while (0)
#if HAK_DEBUG >= 1
#define HAK_ASSERT(cond) \
	HAK_CHECK(cond, "%s:%d: internal check failed: %s", __FILE__, __LINE__, #cond)
#else
#define HAK_ASSERT(cond) ((void)sizeof(!(cond)))
#endif
#if HAK_DEBUG >= 2
#define HAK_INVARIANT(cond) \
	HAK_CHECK(cond, "%s:%d: invariant broken: %s", __FILE__, __LINE__, #cond)
#else
#define HAK_INVARIANT(cond) ((void)sizeof(!(cond)))
#endif

#endif
