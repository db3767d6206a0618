/* free.c: layer 8, the free slow path (cache overflow, foreign frees, large blocks), the one
 * pointer check free, realloc and malloc_usable_size share, and malloc_usable_size itself.
 * The call tree is at the top of malloc.c. */
#include "alloc.h"

#include <errno.h>

#include "alloc_fast.h"
#include "large.h"
#include "policy_call.h"
#include "slab.h"
#include "trace.h"

/* Inlined into free's slow path (every foreign free comes through it), called by the others. */
HAK_INLINE struct hak_slab *ptr_check(const void *p, const char *what, bool check_freed)
{
	struct hak_superslab *ss = hak__ss_lookup(p);
	if (!ss)
		return NULL;
	struct hak_slab *s = hak__slab_of_ss(ss, p);
	/* A unit in no slab: never handed out, or its slab went back once every block was free. */
	HAK_CHECK(s->nunits != 0, "%s(): invalid pointer %p (not allocated by hakmem, or already freed)", what, p);
	HAK_CHECK(hak__block_is_aligned(s, p), "%s(): invalid pointer %p (not the start of a block)", what, p);
	if (check_freed && unlikely(hak__block_is_free(p))) {
		if (what[0] == 'f')
			hak__fatal("%s(): double free of %p", what, p);
		hak__fatal("%s(): invalid pointer %p (already freed)", what, p);
	}
	return s;
}

struct hak_slab *hak__ptr_check(const void *p, const char *what, bool check_freed)
{
	return ptr_check(p, what, check_freed);
}

/* Keep the hot top half of an overflowing cache, hand the colder bottom half to the policy. */
static void cache_overflow(struct hak_thread *t, unsigned cls)
{
	struct hak_tcache *tc = &t->cache[cls];
	uint32_t keep = tc->max / 2;
	void *b = tc->head;
	for (uint32_t i = 1; i < keep && b; i++)
		b = hak__block_next(b);
	if (!b || !hak__block_next(b)) { /* the count was wrong (a fork from a signal handler): recount */
		uint32_t n = hak__chain_of(tc->head).count;
		tc->room = n < tc->max ? tc->max - n : 0;
		return;
	}
	struct hak_chain chain = hak__chain_of(hak__block_next(b));
	hak__block_set_next(b, NULL);
	tc->room = tc->max - keep;
	hak__account_chain(chain, -1, cls, t->out_bytes, t->out_blocks);
	hak__policy_enter(t);
	hak__own_flush_locked(t, cls, chain);
	hak__policy_leave(t);
}

/* A block whose owner t does not accept: free from now on, whoever drains it later, and marked
 * so (word 1 is the core's: a policy that queues it, Option F for a thread with no state, hands
 * it to a cache as it is). `gather` (t is the calling thread's own state) joins it to t's
 * gathered frees of its slab when the slab's policy takes chains, so one atomic hands over up
 * to a class batch of them. */
HAK_INLINE void free_foreign(struct hak_thread *t, struct hak_superslab *ss, struct hak_slab *s, void *p,
			 uintptr_t owner, bool gather)
{
	hak__block_set_free(p);
	hak__ss_active_add(ss, -1);
	if (gather) { /* the caller's own live state: its counts, written in place */
		unsigned h = ss->lg_size - HAK_SS_LG_MIN;
		t->out_bytes[h] -= s->block_size;
		t->out_blocks[h]--;
		t->counters[HAK_TCOUNT_remote_frees]++;
	} else {
		hak__thread_out_sub(t, ss->lg_size, s->block_size);
		hak__thread_count(t, HAK_TCOUNT_remote_frees, 1);
	}
	struct hak_policy *m = hak__policy_at(HAK_POLICY_OWNERSHIP, ss->model);
	if (gather && hak__own_gathers(m)) {
		if (t->foreign_slab != s || t->foreign_count >= hak__classes[s->cls].batch) {
			hak__thread_foreign_flush(t);
			t->foreign_slab = s;
		}
		hak__block_set_next(p, t->foreign_head);
		if (!t->foreign_head)
			t->foreign_tail = p;
		/* The slab and the links before the head: a fork copies a chain it can walk (the
		 * child recounts it: hak__thread_fork_child). TSO keeps the order as stored. */
		atomic_signal_fence(memory_order_seq_cst);
		t->foreign_head = p;
		t->foreign_count++;
		return;
	}
	if (owner == HAK_OWNER_NONE)
		hak__abandoned_note_free(); /* a thread exit or a trim pass will collect */
	hak__own_free_foreign(m, t, s, p);
}

HAK_INLINE void free_from(struct hak_thread *t, struct hak_superslab *ss, struct hak_slab *s, void *p, bool gather)
{
	uintptr_t owner = hak_load_acquire(&s->xowner);
	struct hak_tcache *tc = &t->cache[s->cls];
	if (owner == hak__accept_real(tc->accept)) { /* recording marks accept (trace.h) */
		if (hak__tc_full(tc))
			cache_overflow(t, s->cls);
		if (!hak__tc_full(tc)) {
			tc->room--;
			hak__tc_push(tc, p);
			return;
		}
	}
	free_foreign(t, ss, s, p, owner, gather); /* not ours to cache, or the cache could not take it */
}

/* The state a free goes through, or NULL. A free from a thread without a state does not make
 * one: glibc frees after a thread's TSD destructors ran (a detached thread frees its TLS vector
 * last of all, after its exit hook), and a state made then, or a parked one taken over, would
 * never be retired (issue 14 item 5). Such a free goes to the block's owner as a foreign one,
 * through the gone sentinel (a cache that accepts no owner). A thread that keeps freeing and
 * never allocates (a consumer) is alive, though: after STATELESS_FREES frees it gets a state,
 * as its first malloc would give it one. A thread past its exit hook (gone) never does. */
#define STATELESS_FREES 64

static struct hak_thread *free_thread(void)
{
	static __thread unsigned stateless_frees __attribute__((tls_model("initial-exec")));
	struct hak_thread *t = hak__tls;
	if (likely(t->state == HAK_THREAD_LIVE))
		return t;
	if (t->state == HAK_THREAD_BOOT && ++stateless_frees > STATELESS_FREES)
		return hak__thread_get();
	return NULL;
}

static void free_slow(void *p)
{
	if (!p)
		return;
	struct hak_slab *s = ptr_check(p, "free", true);
	if (!s) {
		bool wants_pass = false;
		hak__enter("free");
		bool large = hak__large_free(p, &wants_pass);
		hak__leave();
		HAK_CHECK(large, "free(): invalid pointer %p (not allocated by hakmem, or already freed)", p);
		/* The first mapping cached since the last pass tells the trim policy there is work,
		 * and so does every 64th large free of a thread (a policy that rate-limits its ticks,
		 * like eager, may have dropped the first). */
		static __thread unsigned large_frees __attribute__((tls_model("initial-exec")));
		if ((wants_pass || (++large_frees & 63) == 0) && hak__tls->state != HAK_THREAD_GONE)
			hak__trim_tick();
		return;
	}
	struct hak_superslab *ss = hak__ss_of_slab(s);
	struct hak_thread *t = free_thread();
	hak__enter("free");
	/* gather: the calling thread's own live state, never the shared sentinel of a thread
	 * without one */
	free_from(t ? t : hak__thread_sentinel_gone(), ss, s, p, t != NULL);
	hak__leave();
	hak__after_slow();
}

/* Out of line, so that hak__free_slow is a test and two jumps: no registers saved for a
 * free that trace.c makes. */
HAK_NOINLINE void hak__free_untraced(void *p)
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

void hak__free(void *p)
{
	hak__free_fast(p);
}

size_t hak__usable_size(const void *p)
{
	if (!p)
		return 0;
	struct hak_slab *s = hak__ptr_check(p, "malloc_usable_size", false);
	if (s)
		return s->block_size;
	hak__enter("malloc_usable_size");
	size_t n = hak__large_usable(p);
	hak__leave();
	HAK_CHECK(n, "malloc_usable_size(): invalid pointer %p (not allocated by hakmem)", p);
	return n;
}
