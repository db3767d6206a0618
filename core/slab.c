/* slab.c: layer 3, slabs inside SuperSlabs (see slab.h): carving and giving back, remote
 * queues, the abandoned lists (per ownership policy and class, under the abandoned lock, which
 * is taken before the pool lock), and the accounting of chains (the counts each thread state
 * keeps of the blocks it moved out of slab land). */
#include "slab.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "lock.h"
#include "size_class.h"

static pthread_mutex_t abandoned_lock = PTHREAD_MUTEX_INITIALIZER;
HAK_BIG_BSS static struct hak_slab *abandoned[HAK_POLICY_SLOTS][HAK_NCLASSES];
static _Atomic int xabandoned_dirty; /* a block was freed into an abandoned slab */
/* The last fork went on without the abandoned lock (lock.h): its holder may have been half-way
 * through a list, so the child forgets the lists (their slabs leak in it) as pool.c does. */
static bool fork_without_lock;

/* Bit lg - HAK_SS_LG_MIN of class_heaps[cls]: a slab of cls was ever made in a 2^lg SuperSlab
 * (set in slab_init, never cleared). A class that lives in one heap size only, as every class
 * does under a fixed SuperSlab size, is accounted from the chain's count without a walk. A block
 * reaches a chain only after its slab was made (the program or a policy's queue synchronised
 * with that), so the bit of its heap is visible to whoever accounts it. */
static _Atomic uint8_t class_heaps[HAK_NCLASSES];

static void class_heap_note(unsigned cls, unsigned lg)
{
	uint8_t bit = (uint8_t)(1u << (lg - HAK_SS_LG_MIN));
	if (!(hak_load_relaxed(&class_heaps[cls]) & bit))
		atomic_fetch_or_explicit(&class_heaps[cls], bit, memory_order_relaxed);
}

/* ---- Slabs ------------------------------------------------------------------------------------------- */

struct slab_init_args {
	unsigned cls;
	uintptr_t owner;
	struct hak_slab *made; /* out */
};

/* Under the pool lock (hak__pool_units_take). */
static void slab_init(struct hak_superslab *ss, unsigned first, void *ctx)
{
	const struct slab_init_args *a = ctx;
	unsigned cls = a->cls;
	uintptr_t owner = a->owner;
	const struct hak_class_info *ci = &hak__classes[cls];
	unsigned units = ci->slab_units;
	struct hak_slab *s = &ss->slabs[first];
	char *start = (char *)ss + ((size_t)first << HAK_UNIT_SHIFT) + (first == 0 ? HAK_SS_HEADER : 0);
	size_t bytes = ((size_t)units << HAK_UNIT_SHIFT) - (first == 0 ? HAK_SS_HEADER : 0);
	s->free = NULL;
	s->nfree = 0;
	s->carved = 0;
	s->block_size = ci->block_size;
	s->div_inv = ci->div_inv;
	s->div_shift = ci->div_shift;
	s->tls_off = ci->tls_off;
	s->capacity = (uint32_t)(bytes / ci->block_size);
	hak_store_relaxed(&s->xcarved, 0);
	s->start = start;
	s->cls = (uint8_t)cls;
	s->first_unit = (uint8_t)first;
	s->ss = ss;
	s->links[0] = s->links[1] = NULL;
	s->abandon_next = NULL;
	hak_store_relaxed(&s->xremote, NULL);
	hak_store_release(&s->xowner, owner);
	for (unsigned u = first; u < first + units; u++)
		ss->unit_slab[u] = s;
	s->nunits = (uint8_t)units;
	class_heap_note(cls, ss->lg_size);
	/* The leaf exists: it was made when ss was mapped. */
	hak__map_set((uintptr_t)ss + ((uintptr_t)first << HAK_UNIT_SHIFT), units, &ss->unit_slab[first]);
	((struct slab_init_args *)ctx)->made = s;
}

struct hak_slab *hak__slab_acquire(unsigned cls, uintptr_t owner, unsigned model, unsigned lg, unsigned size_by)
{
	HAK_ASSERT(cls < HAK_NCLASSES);
	struct slab_init_args a = {cls, owner, NULL};
	if (!hak__pool_units_take(hak__classes[cls].slab_units, lg, model, size_by, slab_init, &a))
		return NULL;
	return a.made;
}

/* Every block of s is back in its free list: give its units to the SuperSlab. */
void hak__slab_release(struct hak_slab *s)
{
	HAK_CHECK(s->nunits && s->nfree == s->carved,
		  "internal: slab %p released with %u of %u blocks free", (void *)s, s->nfree, s->carved);
	HAK_ASSERT(!hak_load_relaxed(&s->xremote));
	hak_store_release(&s->xowner, HAK_OWNER_NONE);
	hak__pool_units_give(s);
}

/* Up to max blocks from the free list, then from the never-carved tail. The free list's blocks
 * already carry the free mark (chain_return and the remote queues set it); carved ones get it
 * here. The chain is built in locals: stores through `out` in the loop would alias the blocks.
 * The list's first blocks become the chain as they stand (their links already are the chain's);
 * the count, then the head, move past them before the list is cut, and a list that ran out
 * means a count of 0: a fork that copies this slab while another thread's refill is half done
 * here (a signal handler's fork does not wait for that thread's policy lock, fork.c) gives the
 * child a count no higher than its list, never one that promises blocks the list has not (a
 * refill would spin on such a slab for ever). */
unsigned hak__slab_take(struct hak_slab *s, unsigned max, struct hak_chain *out)
{
	void *head = NULL, *tail = NULL, *b = s->free;
	unsigned n = 0;
	if (b && max) {
		head = b;
		for (;;) {
			HAK_INVARIANT(hak__block_is_free(b));
			tail = b;
			b = hak__block_next(b);
			if (++n == max || !b)
				break;
		}
	}
	s->nfree = b && s->nfree > n ? s->nfree - n : 0;
	atomic_signal_fence(memory_order_seq_cst); /* the count before the head (TSO: as stored) */
	s->free = b;
	unsigned k = max - n, left = s->capacity - s->carved;
	if (k > left)
		k = left;
	if (k) {
		char *p = s->start + (size_t)s->carved * s->block_size;
		if (tail)
			hak__block_set_next(tail, p);
		else
			head = p;
		for (unsigned i = 1; i < k; i++, p += s->block_size) {
			hak__block_set_free(p);
			hak__block_set_next(p, p + s->block_size);
		}
		hak__block_set_free(p);
		tail = p;
		n += k;
		/* Stored only when it changes: every store takes the line other threads' frees read. */
		s->carved += k;
		hak_store_relaxed(&s->xcarved, s->carved);
	}
	if (tail)
		hak__block_set_next(tail, NULL);
	*out = (struct hak_chain){head, tail, n};
	return n;
}

/* Each block back to its own slab's free list; report slabs that became entirely free. */
void hak__chain_return(struct hak_chain chain, void (*on_slab_free)(void *, hak_slab *), void *ctx)
{
	void *b = chain.head;
	while (b) {
		void *next = hak__block_next(b);
		struct hak_superslab *ss = hak__ss_lookup(b);
		HAK_CHECK(ss, "internal: a chain holds %p, which is not hakmem's", b);
		struct hak_slab *s = hak__slab_of_ss(ss, b);
		HAK_INVARIANT(s->nunits && hak__block_is_aligned(s, b));
		hak__block_set_next(b, s->free);
		hak__block_set_free(b);
		s->free = b;
		HAK_CHECK(++s->nfree <= s->carved, "internal: slab %p has more free blocks (%u) than it carved (%u)",
			  (void *)s, s->nfree, s->carved);
		if (s->nfree == s->carved && on_slab_free)
			on_slab_free(ctx, s);
		b = next;
	}
}

/* free and used are a snapshot off the slab's owner (the header says so): a foreign free of
 * Option F asks for cls while another thread returns blocks to the slab. nfree and carved are
 * read as one aligned word each; ThreadSanitizer is told not to report it. */
__attribute__((no_sanitize_thread)) void hak__slab_info(const struct hak_slab *s, struct hak_slab_info *out)
{
	out->cls = s->cls;
	out->capacity = s->capacity;
	out->free = __atomic_load_n(&s->nfree, __ATOMIC_RELAXED) +
		    (s->capacity - __atomic_load_n(&s->carved, __ATOMIC_RELAXED));
	out->used = s->capacity - out->free;
	out->owner = hak_load_acquire(&s->xowner);
	out->remote_pending = hak_load_relaxed(&s->xremote) != NULL;
}

struct hak_slab *hak__slab_of_block(const void *block)
{
	struct hak_superslab *ss = hak__ss_lookup(block);
	if (!ss)
		return NULL;
	struct hak_slab *s = hak__slab_of_ss(ss, block);
	return s->nunits ? s : NULL;
}

/* ---- Remote queues ---------------------------------------------------------------------------------- */

/* Lock-free push of a block freed by a non-owner. The caller already took it off the active
 * count: the block is free from this moment, whoever drains it later (the seed's bug). */
void hak__remote_push(struct hak_slab *s, void *block)
{
	hak__block_set_free(block);
	void *head = hak_load_relaxed(&s->xremote);
	do
		hak__block_set_next(block, head);
	while (!atomic_compare_exchange_weak_explicit(&s->xremote, &head, block, memory_order_release,
						      memory_order_relaxed));
}

void hak__remote_push_chain(struct hak_slab *s, struct hak_chain chain)
{
	if (!chain.head)
		return;
	HAK_ASSERT(chain.tail && !hak__block_next(chain.tail));
	void *head = hak_load_relaxed(&s->xremote);
	do
		hak__block_set_next(chain.tail, head);
	while (!atomic_compare_exchange_weak_explicit(&s->xremote, &head, chain.head, memory_order_release,
						      memory_order_relaxed));
}

/* Take the whole queue with one exchange and append it to the private free list. */
unsigned hak__remote_drain(struct hak_slab *s)
{
	if (!hak_load_relaxed(&s->xremote))
		return 0;
	void *b = hak_xchg_acq_rel(&s->xremote, NULL);
	unsigned n = 0;
	while (b) {
		void *next = hak__block_next(b);
		hak__block_set_next(b, s->free);
		s->free = b;
		n++;
		b = next;
	}
	s->nfree += n;
	HAK_CHECK(s->nfree <= s->carved, "internal: slab %p drained to %u free blocks of %u carved", (void *)s,
		  s->nfree, s->carved);
	return n;
}

/* ---- Abandoned slabs ------------------------------------------------------------------------------- */

void hak__slab_abandon(struct hak_slab *s)
{
	unsigned model = s->ss->model;
	hak__lock(&abandoned_lock);
	hak_store_release(&s->xowner, HAK_OWNER_NONE);
	s->abandon_next = abandoned[model][s->cls];
	__atomic_store_n(&abandoned[model][s->cls], s, __ATOMIC_RELAXED);
	hak__unlock(&abandoned_lock);
}

struct hak_slab *hak__slab_adopt(unsigned cls, uintptr_t owner, unsigned model)
{
	if (!__atomic_load_n(&abandoned[model][cls], __ATOMIC_RELAXED)) /* a stale miss maps a bit sooner */
		return NULL;
	hak__lock(&abandoned_lock);
	struct hak_slab *s = abandoned[model][cls];
	if (s) {
		__atomic_store_n(&abandoned[model][cls], s->abandon_next, __ATOMIC_RELAXED);
		s->abandon_next = NULL;
		hak_store_release(&s->xowner, owner);
	}
	hak__unlock(&abandoned_lock);
	return s;
}

bool hak__abandoned_dirty(void)
{
	return hak_load_relaxed(&xabandoned_dirty) != 0;
}

void hak__abandoned_note_free(void)
{
	if (!hak_load_relaxed(&xabandoned_dirty))
		hak_store_relaxed(&xabandoned_dirty, 1);
}

unsigned hak__abandoned_collect(void)
{
	hak_store_relaxed(&xabandoned_dirty, 0);
	struct hak_slab *to_release = NULL;
	unsigned released = 0;
	hak__lock(&abandoned_lock);
	for (unsigned m = 0; m < HAK_POLICY_SLOTS; m++)
		for (unsigned c = 0; c < HAK_NCLASSES; c++) {
			struct hak_slab **pp = &abandoned[m][c];
			while (*pp) {
				struct hak_slab *s = *pp;
				hak__remote_drain(s);
				if (s->nfree == s->carved) {
					__atomic_store_n(pp, s->abandon_next, __ATOMIC_RELAXED);
					s->abandon_next = to_release;
					to_release = s;
				} else {
					pp = &s->abandon_next;
				}
			}
		}
	/* Released before the abandoned lock goes (abandoned, then pool: the lock order): a collect
	 * that finds the list empty must not return while slabs it would have released are still
	 * on their way (a trim pass running meanwhile saw no empty SuperSlab: issue 14 item 6). */
	while (to_release) {
		struct hak_slab *s = to_release;
		to_release = s->abandon_next;
		s->abandon_next = NULL;
		hak__slab_release(s);
		released++;
	}
	hak__unlock(&abandoned_lock);
	return released;
}

/* ---- Accounting -------------------------------------------------------------------------------------- */

#if HAK_DEBUG >= 2
/* The per-SuperSlab counts of debug builds, one atomic per run of blocks sharing a SuperSlab. */
static void account_superslabs(struct hak_chain chain, int sign)
{
	struct hak_superslab *cur = NULL;
	uintptr_t lo = 0, size = 0;
	int64_t run = 0;
	uint32_t n = 0;
	for (void *b = chain.head; b; b = hak__block_next(b), n++) {
		if ((uintptr_t)b - lo >= size) {
			if (cur)
				hak__ss_active_add(cur, run * sign);
			cur = hak__ss_lookup(b);
			HAK_CHECK(cur, "internal: a chain holds %p, which is not hakmem's", b);
			lo = (uintptr_t)cur;
			size = (uintptr_t)1 << cur->lg_size;
			run = 0;
		}
		run++;
	}
	if (cur)
		hak__ss_active_add(cur, run * sign);
	HAK_INVARIANT(n == chain.count);
}
#endif

void hak__account_chain(struct hak_chain chain, int sign, unsigned cls, int64_t *bytes, int64_t *blocks)
{
	int64_t size = (int64_t)hak__classes[cls].block_size;
#if HAK_DEBUG >= 2
	account_superslabs(chain, sign);
#endif
	uint8_t heaps = hak_load_relaxed(&class_heaps[cls]);
	if (likely(heaps != 3)) { /* one heap size: no walk */
		unsigned h = heaps >> 1;
		blocks[h] += (int64_t)chain.count * sign;
		bytes[h] += (int64_t)chain.count * sign * size;
		return;
	}
	struct hak_superslab *cur = NULL;
	uintptr_t lo = 0, span = 0;
	for (void *b = chain.head; b; b = hak__block_next(b)) {
		if ((uintptr_t)b - lo >= span) {
			cur = hak__ss_lookup(b);
			HAK_CHECK(cur, "internal: a chain holds %p, which is not hakmem's", b);
			lo = (uintptr_t)cur;
			span = (uintptr_t)1 << cur->lg_size;
		}
		unsigned h = cur->lg_size - HAK_SS_LG_MIN;
		blocks[h] += sign;
		bytes[h] += sign * size;
	}
}

/* ---- fork ---------------------------------------------------------------------------------------------- */

bool hak__slab_fork_prepare(void)
{
	if (!hak__fork_take_mutex(&abandoned_lock))
		return false;
	fork_without_lock = !hak__fork_took(&abandoned_lock);
	return hak__pool_fork_prepare();
}

void hak__slab_fork_child(void)
{
	hak__pool_fork_child();
	pthread_mutex_init(&abandoned_lock, NULL);
	if (fork_without_lock) { /* see fork_without_lock: a leak, not a fault */
		fork_without_lock = false;
		memset(abandoned, 0, sizeof abandoned);
		hak_store_relaxed(&xabandoned_dirty, 0);
	}
}
