/* superslab.c: SuperSlabs and the slabs inside them. Owns the address map, the pool lists
 * (partly used per ownership model, empty), slab carving and return, remote queues, the
 * abandoned-slab lists, releasing empty SuperSlabs and purging free units.
 * Lock order: abandoned_lock, then pool_lock. Neither is held while a policy is called. */
#include "hakmem_internal.h"

#include <errno.h>
#include <string.h>

struct hak_slab *hak__map_zero_leaf[1u << HAK_MAP_L2_BITS]; /* .bss: reads cost no memory */
struct hak_slab **_Atomic hak__map[1u << HAK_MAP_L1_BITS] = {
	[0 ...(1u << HAK_MAP_L1_BITS) - 1] = hak__map_zero_leaf,
};

enum { LIST_NONE = 0, LIST_PARTIAL = 1, LIST_EMPTY = 2 };

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hak_superslab *partial[HAK_MAX_MODELS]; /* SuperSlabs with free units */
static struct hak_superslab *empty_head;              /* no slab in use; newest first */
static unsigned empty_n;
static struct hak_superslab *all_head;                /* every mapped SuperSlab */
static uint64_t live_n;
static uint64_t live_by_lg[HAK_SS_LG_MAX + 1]; /* live SuperSlabs of each size */
static uint64_t peak_by_lg[HAK_SS_LG_MAX + 1]; /* the most live at once, of each size */

static pthread_mutex_t abandoned_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hak_slab *abandoned[HAK_NCLASSES];

/* ---- Address map ---------------------------------------------------------------------------- */

/* The map entry of unit u of ss; its leaf is made on demand (never freed) unless the caller
 * only clears. NULL when no leaf could be made. */
static struct hak_slab **map_slot(struct hak_superslab *ss, unsigned u, bool make)
{
	uintptr_t a = (uintptr_t)ss + ((uintptr_t)u << HAK_UNIT_SHIFT);
	struct hak_slab **_Atomic *slot = &hak__map[a >> HAK_MAP_L1_SHIFT];
	struct hak_slab **leaf = hak_load_acquire(slot);
	if (leaf == hak__map_zero_leaf) {
		if (!make)
			return NULL;
		/* 2 MB of address space; only pages holding entries of mapped SuperSlabs are touched */
		size_t bytes = sizeof(*leaf) << HAK_MAP_L2_BITS;
		leaf = hak__os_map(bytes, 4096);
		if (!leaf)
			return NULL;
		struct hak_slab **expect = hak__map_zero_leaf;
		if (!hak_cas_strong(slot, &expect, leaf)) {
			hak__os_unmap(leaf, bytes);
			leaf = expect;
		}
	}
	return &leaf[(a >> HAK_UNIT_SHIFT) & ((1u << HAK_MAP_L2_BITS) - 1)];
}

/* Point units [first, first + n) of ss at their slab records (ss->unit_slab), or at NULL. */
static int map_units(struct hak_superslab *ss, unsigned first, unsigned n, bool mapped)
{
	for (unsigned u = first; u < first + n; u++) {
		struct hak_slab **e = map_slot(ss, u, mapped);
		if (e)
			*e = mapped ? ss->unit_slab[u] : NULL;
		else if (mapped)
			return ENOMEM;
	}
	return 0;
}

/* ---- Pool lists (pool_lock held) -------------------------------------------------------------- */

static void list_remove(struct hak_superslab *ss)
{
	struct hak_superslab **head = ss->on_list == LIST_EMPTY ? &empty_head : &partial[ss->model];
	if (ss->on_list == LIST_NONE)
		return;
	if (ss->prev)
		ss->prev->next = ss->next;
	else
		*head = ss->next;
	if (ss->next)
		ss->next->prev = ss->prev;
	if (ss->on_list == LIST_EMPTY)
		__atomic_store_n(&empty_n, empty_n - 1, __ATOMIC_RELAXED); /* read unlocked */
	ss->next = ss->prev = NULL;
	ss->on_list = LIST_NONE;
}

static void list_push(struct hak_superslab *ss, int which)
{
	struct hak_superslab **head = which == LIST_EMPTY ? &empty_head : &partial[ss->model];
	ss->prev = NULL;
	ss->next = *head;
	if (*head)
		(*head)->prev = ss;
	*head = ss;
	ss->on_list = (uint8_t)which;
	if (which == LIST_EMPTY)
		__atomic_store_n(&empty_n, empty_n + 1, __ATOMIC_RELAXED);
}

/* First free run of `units` units; -1 when none. Runs of power-of-two length start at a
 * multiple of it, so small slabs do not split the space big ones need. */
static int find_run(const struct hak_superslab *ss, unsigned units)
{
	uint64_t want = ((uint64_t)1 << units) - 1;
	unsigned step = (units & (units - 1)) ? 1 : units;
	for (unsigned first = 0; first + units <= ss->nunits; first += step)
		if (((ss->unit_mask >> first) & want) == 0)
			return (int)first;
	return -1;
}

static struct hak_superslab *superslab_map(unsigned lg, unsigned model)
{
	size_t size = (size_t)1 << lg;
	struct hak_superslab *ss = hak__os_map(size, size);
	if (!ss)
		return NULL;
	ss->magic = HAK_SS_MAGIC;
	ss->lg_size = (uint8_t)lg;
	ss->nunits = (uint8_t)(size >> HAK_UNIT_SHIFT);
	ss->model = (uint8_t)model;
	ss->size_by = hak__size_policy.desc;
	/* Every unit points at a slab slot, so the free fast path never follows NULL: an unused
	 * slot has owner NONE and no units, which sends a stray pointer to the checks. */
	for (unsigned u = 0; u < HAK_SS_MAX_UNITS; u++)
		ss->unit_slab[u] = &ss->slabs[u];
	if (map_units(ss, 0, ss->nunits, true) != 0) {
		map_units(ss, 0, ss->nunits, false);
		hak__os_unmap(ss, size);
		errno = ENOMEM;
		return NULL;
	}
	hak_add_relaxed(&hak__g.ss_mapped, 1);
	hak_store_relaxed(&hak__g.ss_last_lg, lg);
	return ss;
}

static void slab_init(struct hak_superslab *ss, unsigned first, unsigned cls, uintptr_t owner)
{
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
	s->tc_off = ci->tc_off;
	s->capacity = (uint32_t)(bytes / ci->block_size);
	hak_store_relaxed(&s->xcarved, 0);
	s->start = start;
	s->cls = (uint16_t)cls;
	s->nunits = (uint8_t)units;
	s->first_unit = (uint8_t)first;
	s->ss = ss;
	s->links[0] = s->links[1] = NULL;
	s->abandon_next = NULL;
	hak_store_relaxed(&s->xremote, NULL);
	hak_store_release(&s->xowner, owner);
	for (unsigned u = first; u < first + units; u++)
		ss->unit_slab[u] = s;
	map_units(ss, first, units, true); /* the leaf exists: made when ss was mapped */
	ss->unit_mask |= (uint32_t)((((uint64_t)1 << units) - 1) << first);
	ss->dirty_mask &= ~(uint32_t)((((uint64_t)1 << units) - 1) << first);
	ss->aged_mask &= ~(uint32_t)((((uint64_t)1 << units) - 1) << first);
}

/* A slab of `cls` for `owner`, from a partly used SuperSlab of the model, an empty one of the
 * size the SuperSlab policy wants, or a new mapping. */
struct hak_slab *hak__slab_acquire(unsigned cls, uintptr_t owner, unsigned model)
{
	unsigned units = hak__classes[cls].slab_units;
	unsigned lg = hak__size_policy.desc->superslab->lg_size_for(hak__size_policy.state, cls);
	if (lg < HAK_SS_LG_MIN || lg > HAK_SS_LG_MAX)
		lg = HAK_SS_LG_MAX;
retry:
	pthread_mutex_lock(&pool_lock);
	struct hak_superslab *ss;
	int first = -1;
	for (ss = partial[model]; ss; ss = ss->next)
		if ((first = find_run(ss, units)) >= 0)
			break;
	if (!ss) {
		for (ss = empty_head; ss && ss->lg_size != lg; ss = ss->next)
			;
		if (ss) {
			list_remove(ss);
			ss->model = (uint8_t)model;
			list_push(ss, LIST_PARTIAL);
		} else {
			/* Before mapping more, what exited threads still own goes back or becomes
			 * adoptable (their slabs may free exactly the units wanted). */
			pthread_mutex_unlock(&pool_lock);
			if (hak__threads_reap_parked_try())
				goto retry;
			pthread_mutex_lock(&pool_lock);
			ss = superslab_map(lg, model);
			if (!ss) {
				pthread_mutex_unlock(&pool_lock);
				return NULL;
			}
			ss->all_next = all_head;
			if (all_head)
				all_head->all_prev = ss;
			all_head = ss;
			__atomic_store_n(&live_n, live_n + 1, __ATOMIC_RELAXED);
			__atomic_store_n(&live_by_lg[lg], live_by_lg[lg] + 1, __ATOMIC_RELAXED);
			if (live_by_lg[lg] > peak_by_lg[lg])
				__atomic_store_n(&peak_by_lg[lg], live_by_lg[lg], __ATOMIC_RELAXED);
			uint64_t peak = hak_load_relaxed(&hak__g.ss_peak_live);
			if (live_n > peak)
				hak_store_relaxed(&hak__g.ss_peak_live, live_n);
			list_push(ss, LIST_PARTIAL);
		}
		first = find_run(ss, units);
	}
	slab_init(ss, (unsigned)first, cls, owner);
	if (find_run(ss, 1) < 0)
		list_remove(ss);
	pthread_mutex_unlock(&pool_lock);
	return &ss->slabs[first];
}

/* Every block of s is back in its free list: give its units to the SuperSlab. */
void hak__slab_release(struct hak_slab *s)
{
	struct hak_superslab *ss = s->ss;
	bool now_empty = false;
	hak_store_release(&s->xowner, HAK_OWNER_NONE);
	pthread_mutex_lock(&pool_lock);
	uint32_t bits = (uint32_t)((((uint64_t)1 << s->nunits) - 1) << s->first_unit);
	ss->unit_mask &= ~bits;
	ss->dirty_mask |= bits;
	s->nunits = 0;
	if (ss->unit_mask == 0) {
		list_remove(ss);
		list_push(ss, LIST_EMPTY);
		ss->idle_seen = 0;
		now_empty = true;
	} else if (ss->on_list == LIST_NONE) {
		list_push(ss, LIST_PARTIAL);
	}
	pthread_mutex_unlock(&pool_lock);
	if (now_empty)
		hak__trim_notify_empty();
}

/* Append a free block (marked free) to a chain under construction. */
static inline void chain_append(struct hak_chain *ch, void **b, uintptr_t key)
{
	if (ch->tail)
		((void **)ch->tail)[0] = b;
	else
		ch->head = b;
	ch->tail = b;
	b[1] = (void *)(key ^ (uintptr_t)b);
	ch->count++;
}

/* Up to max blocks from the free list, then from the never-carved tail. */
unsigned hak__slab_take(struct hak_slab *s, unsigned max, struct hak_chain *out)
{
	uintptr_t key = hak__free_key;
	*out = (struct hak_chain){NULL, NULL, 0};
	while (out->count < max && s->free) {
		void **b = s->free;
		s->free = b[0];
		chain_append(out, b, key);
	}
	s->nfree -= out->count;
	unsigned k = max - out->count, left = s->capacity - s->carved;
	if (k > left)
		k = left;
	char *p = s->start + (size_t)s->carved * s->block_size;
	for (unsigned i = 0; i < k; i++, p += s->block_size)
		chain_append(out, (void **)p, key);
	s->carved += k;
	hak_store_relaxed(&s->xcarved, s->carved);
	if (out->tail)
		((void **)out->tail)[0] = NULL;
	return out->count;
}

/* Each block back to its own slab's free list; report slabs that became entirely free. */
void hak__chain_return(struct hak_chain chain, void (*on_slab_free)(void *, hak_slab *), void *ctx)
{
	uintptr_t key = hak__free_key;
	void **b = chain.head;
	while (b) {
		void **next = b[0];
		struct hak_superslab *ss = hak__ss_lookup(b);
		struct hak_slab *s = hak__slab_of_ss(ss, b);
		b[0] = s->free;
		b[1] = (void *)(key ^ (uintptr_t)b);
		s->free = b;
		if (++s->nfree == s->carved && on_slab_free)
			on_slab_free(ctx, s);
		b = next;
	}
}

void hak__slab_info(const struct hak_slab *s, struct hak_slab_info *out)
{
	out->cls = s->cls;
	out->capacity = s->capacity;
	out->free = s->nfree + (s->capacity - s->carved);
	out->used = s->capacity - out->free;
	out->owner = hak_load_acquire(&s->xowner);
	out->remote_pending = hak_load_relaxed(&s->xremote) != NULL;
}

/* ---- Remote queues ---------------------------------------------------------------------------- */

/* Lock-free push of a block freed by a non-owner. The caller already took it off the active
 * count: the block is free from this moment, whoever drains it later (the seed's bug). */
void hak__remote_push(struct hak_slab *s, void *block)
{
	void **b = block;
	b[1] = (void *)(hak__free_key ^ (uintptr_t)b);
	void *head = hak_load_relaxed(&s->xremote);
	do
		b[0] = head;
	while (!atomic_compare_exchange_weak_explicit(&s->xremote, &head, block, memory_order_release,
						      memory_order_relaxed));
}

/* Take the whole queue with one exchange and append it to the private free list. */
unsigned hak__remote_drain(struct hak_slab *s)
{
	if (!hak_load_relaxed(&s->xremote))
		return 0;
	void **b = hak_xchg_acq_rel(&s->xremote, NULL);
	unsigned n = 0;
	while (b) {
		void **next = b[0];
		b[0] = s->free;
		s->free = b;
		n++;
		b = next;
	}
	s->nfree += n;
	return n;
}

/* ---- Abandoned slabs -------------------------------------------------------------------------- */

void hak__slab_abandon(struct hak_slab *s)
{
	pthread_mutex_lock(&abandoned_lock);
	hak_store_release(&s->xowner, HAK_OWNER_NONE);
	s->abandon_next = abandoned[s->cls];
	__atomic_store_n(&abandoned[s->cls], s, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&abandoned_lock);
}

struct hak_slab *hak__slab_adopt(unsigned cls, uintptr_t owner)
{
	if (!__atomic_load_n(&abandoned[cls], __ATOMIC_RELAXED)) /* a stale miss maps a bit sooner */
		return NULL;
	pthread_mutex_lock(&abandoned_lock);
	struct hak_slab *s = abandoned[cls];
	if (s) {
		__atomic_store_n(&abandoned[cls], s->abandon_next, __ATOMIC_RELAXED);
		s->abandon_next = NULL;
		hak_store_release(&s->xowner, owner);
	}
	pthread_mutex_unlock(&abandoned_lock);
	return s;
}

/* Drain every abandoned slab's remote queue; slabs that turn out entirely free go back to
 * their SuperSlab. Returns how many slabs were released. */
_Atomic int hak__abandoned_dirty;

unsigned hak__abandoned_collect(void)
{
	hak_store_relaxed(&hak__abandoned_dirty, 0);
	struct hak_slab *to_release = NULL;
	unsigned released = 0;
	pthread_mutex_lock(&abandoned_lock);
	for (unsigned c = 0; c < HAK_NCLASSES; c++) {
		struct hak_slab **pp = &abandoned[c];
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
	pthread_mutex_unlock(&abandoned_lock);
	while (to_release) {
		struct hak_slab *s = to_release;
		to_release = s->abandon_next;
		s->abandon_next = NULL;
		hak__slab_release(s);
		released++;
	}
	return released;
}

/* ---- Trim services ---------------------------------------------------------------------------- */

/* Take an empty SuperSlab off every list and out of the map (pool lock held), to unmap later. */
static void retire_empty(struct hak_superslab *ss, struct hak_superslab **victims)
{
	list_remove(ss);
	map_units(ss, 0, ss->nunits, false);
	if (ss->all_prev)
		ss->all_prev->all_next = ss->all_next;
	else
		all_head = ss->all_next;
	if (ss->all_next)
		ss->all_next->all_prev = ss->all_prev;
	__atomic_store_n(&live_n, live_n - 1, __ATOMIC_RELAXED);
	__atomic_store_n(&live_by_lg[ss->lg_size], live_by_lg[ss->lg_size] - 1, __ATOMIC_RELAXED);
	ss->next = *victims;
	*victims = ss;
}

static unsigned unmap_victims(struct hak_superslab *victims)
{
	unsigned n = 0;
	while (victims) {
		struct hak_superslab *ss = victims;
		victims = ss->next;
		hak__os_unmap(ss, (size_t)1 << ss->lg_size);
		hak_add_relaxed(&hak__g.ss_released, 1);
		n++;
	}
	return n;
}

/* Unmap the oldest empty SuperSlabs until at most `keep` remain. */
unsigned hak__release_empty(unsigned keep)
{
	struct hak_superslab *victims = NULL;
	pthread_mutex_lock(&pool_lock);
	while (empty_n > keep) {
		struct hak_superslab *ss = empty_head;
		while (ss->next)
			ss = ss->next; /* oldest is last */
		retire_empty(ss, &victims);
	}
	pthread_mutex_unlock(&pool_lock);
	return unmap_victims(victims);
}

/* Unmap the empty SuperSlabs that were already empty at the previous call, whatever the
 * reserve: a reserve nobody drew on for a whole trim interval is not absorbing churn, and its
 * pages were purged already, so mapping anew later costs only the two system calls. */
unsigned hak__release_idle_empty(void)
{
	struct hak_superslab *victims = NULL;
	pthread_mutex_lock(&pool_lock);
	for (struct hak_superslab *ss = empty_head, *next; ss; ss = next) {
		next = ss->next;
		if (ss->idle_seen)
			retire_empty(ss, &victims);
		else
			ss->idle_seen = 1;
	}
	pthread_mutex_unlock(&pool_lock);
	return unmap_victims(victims);
}

/* madvise the free units that were touched since their last purge and stayed free since the
 * previous pass (a unit freed just now is likely to be reused at once: purging it would only
 * buy page faults). */
uint64_t hak__purge_free(int aged_only)
{
	uint64_t bytes = 0;
	pthread_mutex_lock(&pool_lock);
	for (struct hak_superslab *ss = all_head; ss; ss = ss->all_next) {
		uint32_t free_dirty = ss->dirty_mask & ~ss->unit_mask;
		uint32_t dirty = aged_only ? free_dirty & ss->aged_mask : free_dirty;
		ss->aged_mask = free_dirty & ~dirty; /* purged below, or old enough next time */
		while (dirty) {
			unsigned u = (unsigned)__builtin_ctz(dirty), v = u;
			while (v < ss->nunits && (dirty >> v) & 1u)
				v++;
			size_t from = ((size_t)u << HAK_UNIT_SHIFT) + (u == 0 ? HAK_SS_HEADER : 0);
			size_t to = (size_t)v << HAK_UNIT_SHIFT;
			hak__os_purge((char *)ss + from, to - from);
			bytes += to - from;
			uint32_t run = (uint32_t)((((uint64_t)1 << (v - u)) - 1) << u);
			dirty &= ~run;
			ss->dirty_mask &= ~run;
		}
	}
	pthread_mutex_unlock(&pool_lock);
	hak_add_relaxed(&hak__g.bytes_purged, bytes);
	return bytes;
}

unsigned hak__empty_count(void)
{
	return __atomic_load_n(&empty_n, __ATOMIC_RELAXED);
}

uint64_t hak__live_superslabs(void)
{
	return __atomic_load_n(&live_n, __ATOMIC_RELAXED);
}

uint64_t hak__live_superslabs_of(unsigned lg)
{
	return lg <= HAK_SS_LG_MAX ? __atomic_load_n(&live_by_lg[lg], __ATOMIC_RELAXED) : 0;
}

uint64_t hak__peak_superslabs_of(unsigned lg)
{
	return lg <= HAK_SS_LG_MAX ? __atomic_load_n(&peak_by_lg[lg], __ATOMIC_RELAXED) : 0;
}

void hak__superslabs_each(void (*fn)(const struct hak_superslab *ss, void *ctx), void *ctx)
{
	pthread_mutex_lock(&pool_lock);
	for (struct hak_superslab *ss = all_head; ss; ss = ss->all_next)
		fn(ss, ctx);
	pthread_mutex_unlock(&pool_lock);
}

int64_t hak__superslab_active_total(void)
{
	int64_t sum = 0;
	pthread_mutex_lock(&pool_lock);
	for (struct hak_superslab *ss = all_head; ss; ss = ss->all_next)
		sum += hak_load_relaxed(&ss->xactive);
	pthread_mutex_unlock(&pool_lock);
	return sum;
}

/* ---- fork ------------------------------------------------------------------------------------- */

void hak__superslab_fork_prepare(void)
{
	pthread_mutex_lock(&abandoned_lock);
	pthread_mutex_lock(&pool_lock);
}

void hak__superslab_fork_parent(void)
{
	pthread_mutex_unlock(&pool_lock);
	pthread_mutex_unlock(&abandoned_lock);
}

void hak__superslab_fork_child(void)
{
	pthread_mutex_init(&pool_lock, NULL);
	pthread_mutex_init(&abandoned_lock, NULL);
}
