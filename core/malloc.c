/* malloc.c: layer 8, the allocation slow paths: a small class through the ownership policy's
 * refill, large blocks, calloc, and what runs after every slow path.
 *
 * Call tree (fast paths in alloc_fast.h; "policy:" marks a call through policy_call.h):
 *
 *   malloc(n)                      api.c
 *   └ hak__malloc_fast             n <= 1 KB and the class's cache has a block: pop, done
 *     └ hak__malloc_slow           (noinline)
 *       ├ 1 KB < n <= 128 KB, cache warm: pop, done
 *       ├ hak__init_once           first malloc of the process: built-in policies
 *       ├ n > 128 KB: hak__large_alloc_guarded -> hak__large_alloc (large.c)
 *       │                          no memory: policy: trim out_of_memory, then once more
 *       └ hak__alloc_class(cls)
 *         ├ hak__current           the thread's state (made on first use: thread.c)
 *         ├ hak__enter             re-entry guard (a signal handler calling malloc)
 *         ├ alloc_from: cache empty -> policy: ownership refill
 *         │             ├ slab_adopt / slab_acquire (services.c -> slab.c -> pool.c)
 *         │             │            pool: before mapping, retire parked states (thread.c)
 *         │             └ cache_fill (services.c)
 *         │             still empty -> policy: trim out_of_memory, then refill once more
 *         ├ hak__leave
 *         └ hak__after_slow        every 256th: policy: trim tick; emptied SuperSlabs:
 *                                  policy: trim superslab_empty; a requested cache flush
 *
 *   free(p)                        api.c
 *   └ hak__free_fast               p's slab accepted by the thread's cache, p a block start,
 *     │                            not marked free, room in the cache: push, done
 *     └ hak__free_slow             (noinline, free.c): hak__ptr_check, then
 *       ├ p not in a SuperSlab: hak__large_free, or "invalid pointer" and abort
 *       ├ owner accepted: push (a full cache sends half to policy: ownership flush)
 *       ├ owner not accepted: policy: ownership free_foreign of the slab's policy
 *       └ hak__after_slow
 */
#include "alloc.h"

#include <errno.h>
#include <string.h>

#include "alloc_fast.h"
#include "large.h"
#include "policy_call.h"
#include "trace.h"

__thread int hak__busy __attribute__((tls_model("initial-exec")));

void hak__reentered(const char *what)
{
	hak__fatal("%s() re-entered on the same thread while hakmem was inside it (malloc from a "
		   "signal handler?); aborting instead of deadlocking or corrupting the heap",
		   what);
}

/* The trim policy's calls, out of line: inlined, their policy-call bookkeeping (lock.h's opaque
 * count, the re-entry flag) made every slow path save two more registers, 4 instructions per
 * foreign free, for calls that run every 256th slow path or when SuperSlabs emptied. */
__attribute__((noinline, cold)) static void after_slow_tick(void)
{
	hak__trim_tick();
}

__attribute__((noinline, cold)) static void after_slow_empty(void)
{
	hak__trim_superslab_empty();
}

/* Outside the guard (a policy may start a thread, which allocates): what the policies asked
 * for. Only for a thread with its own state: a gone thread goes through the orphan state, and
 * must not start anything. Budget: about 21 instructions and two calls (flush request, empties)
 * while no big class grew the heap (the flag that hands the other big caches back). */
void hak__after_slow(void)
{
	static __thread unsigned ticks __attribute__((tls_model("initial-exec")));
	struct hak_thread *t = hak__tls;
	if (t->state != HAK_THREAD_LIVE)
		return;
	hak__thread_flush_if_asked(t);
	if (unlikely(t->big_grew))
		hak__thread_flush_big(t);
	if ((++ticks & 255) == 0)
		after_slow_tick();
	if (hak__pool_empties_take()) /* hak__trim_notify_pending, its call out of line */
		after_slow_empty();
}

static void *alloc_from(struct hak_thread *t, unsigned cls)
{
	struct hak_tcache *tc = &t->cache[cls];
	if (!tc->head) {
		int err = hak__own_refill(t, cls);
		/* No memory, or the mapping budget is spent: the trim policy decides whether what
		 * the policies hold (central lists, empty SuperSlabs, cached large mappings) goes
		 * back so the refill can try once more. */
		if (!tc->head && hak__trim_out_of_memory(hak__classes[cls].block_size))
			err = hak__own_refill(t, cls);
		if (!tc->head) {
			errno = err ? err : ENOMEM;
			return NULL;
		}
	}
	return hak__tc_pop(tc);
}

void *hak__alloc_class(unsigned cls)
{
	struct hak_thread *t = hak__current();
	void *p;
	if (likely(t != NULL) && unlikely(t->cache != hak__tcs.cache))
		hak__thread_attach(t); /* its caches into TLS, where the fast paths look (thread.h) */
	hak__enter("malloc");
	if (likely(t != NULL)) {
		p = alloc_from(t, cls);
	} else {
		hak__orphan_lock();
		t = hak__orphan();
		p = t ? alloc_from(t, cls) : NULL;
		hak__orphan_unlock();
		if (!p)
			errno = ENOMEM;
	}
	hak__leave();
	hak__after_slow();
	return p;
}

void *hak__large_alloc_guarded(size_t n, size_t align, bool zero)
{
	hak__init_once();
	hak__enter("malloc");
	void *p = hak__large_alloc(n, align, zero);
	if (!p && errno == ENOMEM && hak__trim_out_of_memory(n))
		p = hak__large_alloc(n, align, zero);
	hak__leave();
	return p;
}

void *hak__malloc_untraced(size_t n)
{
	if (likely(n > 1024 && n <= HAK_SMALL_MAX)) {
		/* 1 KB < n <= 128 KB with a warm cache: the fast path's pop with the class computed
		 * (no table that big). Detached TLS caches are all empty. */
		void *b = hak__tc_pop(&hak__tcs.cache[hak__size_to_class_slow(n)]);
		if (likely(b != NULL))
			return b;
	}
	hak__init_once();
	if (n > HAK_SMALL_MAX)
		return hak__large_alloc_guarded(n, 0, false);
	return hak__alloc_class(hak__size_to_class(n));
}

void *hak__malloc_slow(size_t n)
{
	if (hak__tracing()) /* recording: every malloc comes here, trace.c makes it (trace.h) */
		return hak__trace_malloc(n);
	return hak__malloc_untraced(n);
}

void *hak__malloc(size_t n)
{
	return hak__malloc_fast(n);
}

void *hak__calloc(size_t n, size_t size)
{
	size_t bytes;
	if (__builtin_mul_overflow(n, size, &bytes)) {
		errno = ENOMEM;
		return NULL;
	}
	/* From 128 KB (glibc's mmap threshold), a mapping of its own: its fresh pages are zero and
	 * stay untouched until the program uses them, where a slab block would be written whole
	 * (a program's big zeroed table is often mostly unused). */
	if (bytes >= HAK_SMALL_MAX)
		return hak__large_alloc_guarded(bytes, 0, true);
	void *p = hak__malloc_fast(bytes);
	if (p)
		memset(p, 0, bytes);
	return p;
}
