/* alloc.c: core start-up (no file I/O, no dlopen) and the slow paths behind the fast ones:
 * refill through the ownership policy, cache overflow, foreign frees, invalid-free checks,
 * and calloc / realloc / memalign / usable size for every size. */
#include "alloc_fast.h"
#include "trace.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/auxv.h>

_Atomic int hak__inited;
uintptr_t hak__free_key;
static _Atomic int init_claimed;

/* Bring the core up on the built-in policies. Safe to call from any first malloc. */
void hak__init(void)
{
	if (likely(hak_load_acquire(&hak__inited)))
		return;
	int expect = 0;
	if (!atomic_compare_exchange_strong(&init_claimed, &expect, 1)) {
		while (!hak_load_acquire(&hak__inited))
			sched_yield();
		return;
	}
	hak__size_classes_init();
	/* The free mark is secret so a program's data is not taken for it: the kernel's
	 * AT_RANDOM bytes (no system call), mixed with an ASLR'd address. */
	uintptr_t key = (uintptr_t)&expect * UINT64_C(0x9E3779B97F4A7C15);
	const unsigned char *rnd = (const unsigned char *)getauxval(AT_RANDOM);
	if (rnd) {
		uint64_t r;
		memcpy(&r, rnd + 8, sizeof r);
		key ^= r;
	}
	hak__free_key = key | 1;
	hak__policies_boot();
	hak_store_release(&hak__inited, 1);
}

/* ---- Accounting ------------------------------------------------------------------------------- */

/* Add sign to the active count of each block's SuperSlab, one atomic per run of blocks that
 * share a SuperSlab. */
void hak__account_chain(struct hak_chain chain, int sign)
{
	struct hak_superslab *cur = NULL;
	uintptr_t lo = 0, size = 0;
	int64_t run = 0;
	for (void **b = chain.head; b; b = b[0]) {
		if ((uintptr_t)b - lo >= size) {
			if (cur)
				hak_add_relaxed(&cur->xactive, run * sign);
			cur = hak__ss_lookup(b);
			lo = (uintptr_t)cur;
			size = (uintptr_t)1 << cur->lg_size;
			run = 0;
		}
		run++;
	}
	if (cur)
		hak_add_relaxed(&cur->xactive, run * sign);
}

/* The policy hands a chain to t's cache: it leaves slab land. */
void hak__cache_fill(struct hak_thread *t, unsigned cls, struct hak_chain chain)
{
	if (!chain.head)
		return;
	hak__account_chain(chain, +1);
	void **head = chain.head;
	head[1] = (void *)(hak__free_key ^ (uintptr_t)head); /* a central-list head used word 1 */
	struct hak_tcache *tc = &t->cache[cls];
	((void **)chain.tail)[0] = tc->head;
	tc->head = chain.head;
	tc->room = !hak__tc_full(tc) && tc->room > chain.count ? tc->room - chain.count : 0;
}

/* ---- Slow-path guard -------------------------------------------------------------------------- */

/* Nonzero while this thread is inside a slow path (which may hold a lock or have a list half
 * updated). Entering again on the same thread can only be a signal handler calling malloc or
 * free: say so and abort, instead of deadlocking on our own lock or corrupting the heap. */
__thread int hak__busy __attribute__((tls_model("initial-exec")));

static _Noreturn void reentered(const char *what)
{
	hak__fatal("%s() re-entered on the same thread while hakmem was inside it (malloc from a "
		   "signal handler?); aborting instead of deadlocking or corrupting the heap",
		   what);
}

static inline void enter(const char *what)
{
	if (unlikely(hak__busy))
		reentered(what);
	hak__busy = 1;
}

static inline void leave(void)
{
	hak__busy = 0;
}

/* After a slow path, outside the guard (a policy may start a thread, which allocates): run
 * what the trim policy asked for. Only for a thread with its own state: a gone thread goes
 * through the orphan state, and must not start anything. */
static void after_slow(void)
{
	static __thread unsigned ticks __attribute__((tls_model("initial-exec")));
	if (hak__tls->state != HAK_THREAD_LIVE)
		return;
	if ((++ticks & 255) == 0)
		hak__trim_tick();
	else
		hak__trim_run_pending();
}

/* The calling thread's state, made (outside the guard: making it may allocate) if needed;
 * NULL when the thread is past its exit hook. */
static struct hak_thread *current(void)
{
	struct hak_thread *t = hak__tls;
	return likely(t->state == HAK_THREAD_LIVE) ? t : hak__thread_get();
}

/* ---- malloc ----------------------------------------------------------------------------------- */

static int refill(struct hak_thread *t, unsigned cls)
{
	hak__calling_model = t->model->index;
	hak__policy_enter(t);
	int err = t->model->ops->refill(t->model->state, t, t->own_tstate, cls);
	hak__policy_leave(t);
	return err;
}

static void *alloc_from(struct hak_thread *t, unsigned cls)
{
	struct hak_tcache *tc = &t->cache[cls];
	if (!tc->head) {
		int err = refill(t, cls);
		if (!tc->head) {
			/* No memory, or the mapping budget is spent: what the policies hold (central
			 * lists, empty SuperSlabs, cached large mappings) may be what is missing. */
			hak__trim_pass(0, 1);
			err = refill(t, cls);
		}
		if (!tc->head) {
			errno = err ? err : ENOMEM;
			return NULL;
		}
	}
	void **b = tc->head;
	tc->head = b[0];
	if (tc->room < tc->max)
		tc->room++;
	b[1] = NULL;
	return b;
}

static void *alloc_class(unsigned cls)
{
	struct hak_thread *t = current();
	void *p;
	enter("malloc");
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
	leave();
	after_slow();
	return p;
}

static void *large_alloc(size_t n, size_t align, bool zero)
{
	if (unlikely(!hak_load_acquire(&hak__inited)))
		hak__init();
	enter("malloc");
	void *p = hak__large_alloc(n, align, zero);
	leave();
	return p;
}

void *hak__malloc_untraced(size_t n)
{
	if (likely(n > 1024 && n <= HAK_SMALL_MAX)) {
		/* 1 KB < n <= 128 KB with a warm cache: the fast path's pop with the class computed
		 * (no table that big). Before hak__init() the sentinel's caches are all empty. */
		void *b = hak__tc_pop(&hak__tls->cache[hak__size_to_class_slow(n)]);
		if (likely(b != NULL))
			return b;
	}
	if (unlikely(!hak_load_acquire(&hak__inited)))
		hak__init();
	if (n > HAK_SMALL_MAX)
		return large_alloc(n, 0, false);
	return alloc_class(hak__size_to_class(n));
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

/* ---- free ------------------------------------------------------------------------------------- */

/* Keep the hot top half of an overflowing cache, hand the colder bottom half to the policy. */
static void cache_overflow(struct hak_thread *t, unsigned cls)
{
	struct hak_tcache *tc = &t->cache[cls];
	uint32_t keep = tc->max / 2;
	void **b = tc->head;
	for (uint32_t i = 1; i < keep && b; i++)
		b = b[0];
	if (!b || !b[0]) { /* the count was wrong (a fork from a signal handler): recount */
		uint32_t n = 0;
		for (void **x = tc->head; x; x = x[0])
			n++;
		tc->room = n < tc->max ? tc->max - n : 0;
		return;
	}
	struct hak_chain chain = {b[0], NULL, 0};
	b[0] = NULL;
	tc->room = tc->max - keep;
	void **tail = chain.head;
	chain.count = 1;
	while (tail[0]) {
		tail = tail[0];
		chain.count++;
	}
	chain.tail = tail;
	hak__account_chain(chain, -1);
	hak__calling_model = t->model->index;
	hak__policy_enter(t);
	t->model->ops->flush(t->model->state, t, t->own_tstate, cls, chain);
	hak__policy_leave(t);
}

static void free_from(struct hak_thread *t, struct hak_superslab *ss, struct hak_slab *s, void *p)
{
	uintptr_t owner = hak_load_acquire(&s->xowner);
	if (owner == hak__accept_real(t->accept)) { /* recording marks accept (trace.h) */
		struct hak_tcache *tc = &t->cache[s->cls];
		if (hak__tc_full(tc))
			cache_overflow(t, s->cls);
		void **b = p;
		b[0] = tc->head;
		b[1] = (void *)(hak__free_key ^ (uintptr_t)p);
		tc->head = b;
		tc->room--;
		t->local_frees++;
	} else {
		/* Not ours to cache: the block is free from now on, whoever drains it later. */
		hak_add_relaxed(&ss->xactive, -1);
		if (owner == HAK_OWNER_NONE && !hak_load_relaxed(&hak__abandoned_dirty))
			hak_store_relaxed(&hak__abandoned_dirty, 1); /* a thread exit will collect */
		struct hak_model *m = &hak__models[ss->model];
		hak__calling_model = m->index;
		m->ops->free_foreign(m->state, t, s, p);
		t->remote_frees++;
	}
}

static void free_slow(void *p);

void hak__free_untraced(void *p)
{
	int saved = errno;
	free_slow(p);
	errno = saved;
}

void hak__free_slow(void *p)
{
	if (hak__tracing()) /* recording: every free comes here, trace.c makes it (trace.h) */
		return hak__trace_free(p);
	hak__free_untraced(p);
}

static void free_slow(void *p)
{
	if (!p)
		return;
	struct hak_superslab *ss = hak__ss_lookup(p);
	if (!ss) {
		enter("free");
		bool large = hak__large_free(p);
		leave();
		if (large) {
			hak__large_after_free();
			return;
		}
		hak__fatal("free(): invalid pointer %p (not allocated by hakmem, or already freed)", p);
	}
	struct hak_slab *s = hak__slab_of_ss(ss, p);
	if (unlikely(s->nunits == 0 || !hak__block_is_aligned(s, p)))
		hak__fatal("free(): invalid pointer %p (not the start of a block)", p);
	if (unlikely(((uintptr_t *)p)[1] == (hak__free_key ^ (uintptr_t)p)))
		hak__fatal("free(): double free of %p", p);
	struct hak_thread *t = current();
	enter("free");
	if (likely(t != NULL)) {
		free_from(t, ss, s, p);
	} else {
		hak__orphan_lock();
		t = hak__orphan();
		if (t) {
			free_from(t, ss, s, p);
		} else { /* no memory even for the orphan state: hand it to the owner's queue */
			hak_add_relaxed(&ss->xactive, -1);
			hak__remote_push(s, p);
		}
		hak__orphan_unlock();
	}
	leave();
	after_slow();
}

void hak__free(void *p)
{
	hak__free_fast(p);
}

/* ---- The rest of the surface ------------------------------------------------------------------ */

size_t hak__usable_size(const void *p)
{
	if (!p)
		return 0;
	struct hak_superslab *ss = hak__ss_lookup(p);
	if (ss) {
		struct hak_slab *s = hak__slab_of_ss(ss, p);
		if (s->nunits == 0 || !hak__block_is_aligned(s, p))
			hak__fatal("malloc_usable_size(): invalid pointer %p", p);
		return s->block_size;
	}
	enter("malloc_usable_size");
	size_t n = hak__large_usable(p);
	leave();
	if (!n)
		hak__fatal("malloc_usable_size(): invalid pointer %p (not allocated by hakmem)", p);
	return n;
}

void *hak__calloc(size_t n, size_t size)
{
	size_t bytes;
	if (__builtin_mul_overflow(n, size, &bytes)) {
		errno = ENOMEM;
		return NULL;
	}
	if (bytes > HAK_SMALL_MAX)
		return large_alloc(bytes, 0, true);
	void *p = hak__malloc_fast(bytes);
	if (p)
		memset(p, 0, bytes);
	return p;
}

void *hak__realloc(void *p, size_t n)
{
	if (!p)
		return hak__malloc_fast(n);
	if (n == 0) { /* glibc: realloc(p, 0) frees p and returns NULL */
		hak__free(p);
		return NULL;
	}
	size_t old;
	struct hak_superslab *ss = hak__ss_lookup(p);
	if (ss) {
		struct hak_slab *s = hak__slab_of_ss(ss, p);
		if (s->nunits == 0 || !hak__block_is_aligned(s, p))
			hak__fatal("realloc(): invalid pointer %p (not the start of a block)", p);
		if (((uintptr_t *)p)[1] == (hak__free_key ^ (uintptr_t)p))
			hak__fatal("realloc(): invalid pointer %p (already freed)", p);
		old = s->block_size;
		/* Stay in place while it fits and does not waste more than half. */
		if (n <= old && (n >= old / 2 || old <= 32))
			return p;
	} else {
		bool handled = false;
		enter("realloc");
		void *q = hak__large_realloc(p, n, &handled);
		old = handled ? 0 : hak__large_usable(p);
		leave();
		if (handled)
			return q;
		if (!old)
			hak__fatal("realloc(): invalid pointer %p (not allocated by hakmem)", p);
	}
	void *q = hak__malloc_fast(n);
	if (!q)
		return NULL; /* the old block stays intact */
	memcpy(q, p, n < old ? n : old);
	hak__free(p);
	return q;
}

/* align is a power of two. Small requests take the first class whose size is a multiple of
 * align (slab starts are 4 KB aligned, so every block of that class is aligned). */
void *hak__memalign(size_t align, size_t n)
{
	if (align <= HAK_ALIGN)
		return hak__malloc_fast(n);
	if (unlikely(!hak_load_acquire(&hak__inited)))
		hak__init();
	size_t want = n > align ? n : align;
	if (align > 4096 || want > HAK_SMALL_MAX)
		return large_alloc(n, align, false);
	unsigned cls = hak__size_to_class(want);
	while (hak__classes[cls].block_size % align)
		cls++;
	return alloc_class(cls);
}
