/* pool.c: layer 2, the SuperSlab pool (see pool.h). Owns the pool lock and the lists: the
 * partly used SuperSlabs of each ownership policy, the empty ones (newest first), and all of
 * them; maps SuperSlabs (one mapping each, over-mapped and trimmed to its alignment by the OS
 * layer), registers their units in the address map, and releases and purges on the trim
 * policy's request. Lock order: the slab layer's abandoned lock, then the pool lock; no call
 * leaves this file while the pool lock is held, except to layers 0 and 1 and a free-run callback
 * that must not call back. */
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "lock.h"
#include "os.h"

enum { LIST_NONE = 0, LIST_PARTIAL = 1, LIST_EMPTY = 2 };

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hak_superslab *partial[HAK_POLICY_SLOTS]; /* SuperSlabs with free units, by model */
static struct hak_superslab *empty_head;                /* no slab in use; newest first */
static struct hak_superslab *all_head;                  /* every mapped SuperSlab */
static unsigned empty_n;                                /* written locked, read unlocked */
static uint64_t live_n;
static uint64_t live_by_lg[HAK_SS_LG_MAX + 1];          /* live SuperSlabs of each size */
static uint64_t peak_by_lg[HAK_SS_LG_MAX + 1];          /* the most live at once, of each size */
static _Atomic uint64_t xmapped_total, xreleased_total, xpeak_live, xpurged_total;
__thread bool hak__pool_grew __attribute__((tls_model("initial-exec")));
static _Atomic unsigned xempties_new;                   /* since hak__pool_empties_take */
static unsigned (*before_map)(void);
static uint64_t units_given; /* units ever given back (pool lock to write) */
/* A fork from a signal handler goes on without the pool lock when the code it interrupted (or
 * another thread, for longer than a trying fork waits) holds it (lock.h), and that code may be
 * half-way through a list update (the lists, the counts, a SuperSlab's masks). Such a child
 * forgets the lists and starts a new generation: the SuperSlabs of older ones stay mapped and in
 * the address map, so their blocks still resolve and free into their slabs, but a slab of them
 * that empties gives its units to nobody (hak__pool_units_give), a leak and not a fault, as
 * large.c does with a cache it cannot trust. */
static uint16_t pool_gen;       /* pool lock (a fork child alone changes it) */
static bool fork_without_lock;  /* set by the last hak__pool_fork_prepare, read by the child */

/* ---- Lists (pool lock held) --------------------------------------------------------------------- */

static struct hak_superslab **list_head(struct hak_superslab *ss, int which)
{
	return which == LIST_EMPTY ? &empty_head : &partial[ss->model];
}

static void list_remove(struct hak_superslab *ss)
{
	if (ss->on_list == LIST_NONE)
		return;
	struct hak_superslab **head = list_head(ss, ss->on_list);
	HAK_INVARIANT(ss->prev ? ss->prev->next == ss : *head == ss);
	HAK_INVARIANT(!ss->next || ss->next->prev == ss);
	if (ss->prev)
		ss->prev->next = ss->next;
	else
		*head = ss->next;
	if (ss->next)
		ss->next->prev = ss->prev;
	if (ss->on_list == LIST_EMPTY)
		__atomic_store_n(&empty_n, empty_n - 1, __ATOMIC_RELAXED);
	ss->next = ss->prev = NULL;
	ss->on_list = LIST_NONE;
}

static void list_push(struct hak_superslab *ss, int which)
{
	HAK_ASSERT(ss->on_list == LIST_NONE);
	struct hak_superslab **head = list_head(ss, which);
	ss->prev = NULL;
	ss->next = *head;
	if (*head)
		(*head)->prev = ss;
	*head = ss;
	ss->on_list = (uint8_t)which;
	if (which == LIST_EMPTY)
		__atomic_store_n(&empty_n, empty_n + 1, __ATOMIC_RELAXED);
}

static uint32_t run_bits(unsigned first, unsigned units)
{
	return (uint32_t)((((uint64_t)1 << units) - 1) << first);
}

/* First run of `units` units whose bits are all set in `avail`; -1 when none. Runs of
 * power-of-two length start at a multiple of it, so small slabs do not split the space big
 * ones need. */
static int find_run_in(const struct hak_superslab *ss, unsigned units, uint64_t avail)
{
	uint64_t want = ((uint64_t)1 << units) - 1;
	unsigned step = (units & (units - 1)) ? 1 : units;
	for (unsigned first = 0; first + units <= ss->nunits; first += step)
		if (((avail >> first) & want) == want)
			return (int)first;
	return -1;
}

/* First free run of `units` units; -1 when none. */
static int find_run(const struct hak_superslab *ss, unsigned units)
{
	return find_run_in(ss, units, ~(uint64_t)ss->unit_mask);
}

/* First free run of `units` units that are all dirty (their pages still resident: taking them
 * costs no fault and no RSS); -1 when none. */
static int find_dirty_run(const struct hak_superslab *ss, unsigned units)
{
	uint64_t dirty = ss->dirty_mask & ~ss->unit_mask;
	return dirty ? find_run_in(ss, units, dirty) : -1;
}

/* ---- Mapping -------------------------------------------------------------------------------------- */

static struct hak_superslab *superslab_map(unsigned lg, unsigned model, unsigned size_by)
{
	size_t size = (size_t)1 << lg;
	struct hak_superslab *ss = hak__os_map(size, size);
	if (!ss)
		return NULL;
	ss->magic = HAK_SS_MAGIC;
	ss->lg_size = (uint8_t)lg;
	ss->nunits = (uint8_t)(size >> HAK_UNIT_SHIFT);
	ss->model = (uint8_t)model;
	ss->size_by = (uint8_t)size_by;
	ss->pool_gen = pool_gen;
	/* Every unit points at a slab slot, so the free fast path never follows NULL: an unused
	 * slot has owner NONE and no units, which sends a stray pointer to the checks. */
	for (unsigned u = 0; u < HAK_SS_MAX_UNITS; u++)
		ss->unit_slab[u] = &ss->slabs[u];
	if (hak__map_set((uintptr_t)ss, ss->nunits, ss->unit_slab) != 0) {
		hak__map_clear((uintptr_t)ss, ss->nunits);
		hak__os_unmap(ss, size);
		errno = ENOMEM;
		return NULL;
	}
	hak_add_relaxed(&xmapped_total, 1);
	return ss;
}

/* pool lock held */
static void register_new(struct hak_superslab *ss)
{
	ss->all_next = all_head;
	if (all_head)
		all_head->all_prev = ss;
	all_head = ss;
	__atomic_store_n(&live_n, live_n + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&live_by_lg[ss->lg_size], live_by_lg[ss->lg_size] + 1, __ATOMIC_RELAXED);
	if (live_by_lg[ss->lg_size] > peak_by_lg[ss->lg_size])
		__atomic_store_n(&peak_by_lg[ss->lg_size], live_by_lg[ss->lg_size], __ATOMIC_RELAXED);
	if (live_n > hak_load_relaxed(&xpeak_live))
		hak_store_relaxed(&xpeak_live, live_n);
}

uint64_t hak__pool_units_given(void)
{
	return __atomic_load_n(&units_given, __ATOMIC_RELAXED);
}

void hak__pool_set_before_map(unsigned (*fn)(void))
{
	before_map = fn;
}

struct hak_superslab *hak__pool_units_take(unsigned units, unsigned lg, unsigned model, unsigned size_by,
					   void (*init)(struct hak_superslab *ss, unsigned first, void *ctx), void *ctx)
{
	HAK_ASSERT(model < HAK_POLICY_SLOTS && lg >= HAK_SS_LG_MIN && lg <= HAK_SS_LG_MAX);
	bool hooked = false;
	struct hak_superslab *ss;
	int f = -1;
retry:
	hak__lock(&pool_lock);
	/* Dirty units first: a purged unit taken while dirty ones wait for their purge faults its
	 * pages in again, and the process holds both. */
	for (ss = partial[model]; ss; ss = ss->next)
		if ((f = find_dirty_run(ss, units)) >= 0)
			break;
	if (!ss)
		for (ss = partial[model]; ss; ss = ss->next)
			if ((f = find_run(ss, units)) >= 0)
				break;
	if (!ss) {
		for (ss = empty_head; ss && ss->lg_size != lg; ss = ss->next)
			;
		if (ss) {
			list_remove(ss);
			ss->model = (uint8_t)model;
			ss->empty_since_ns = 0;
		} else {
			/* Before mapping more, what exited threads still own goes back or becomes
			 * adoptable (their slabs may free exactly the units wanted). */
			if (before_map && !hooked) {
				hak__unlock(&pool_lock);
				hooked = true;
				if (before_map())
					goto retry;
				hak__lock(&pool_lock);
			}
			ss = superslab_map(lg, model, size_by);
			if (!ss) {
				hak__unlock(&pool_lock);
				return NULL;
			}
			register_new(ss);
		}
		list_push(ss, LIST_PARTIAL);
		f = find_run(ss, units);
	}
	HAK_ASSERT(f >= 0);
	uint32_t bits = run_bits((unsigned)f, units);
	if (bits & ~ss->dirty_mask)
		hak__pool_grew = true; /* some of its pages are not resident yet */
	ss->unit_mask |= bits;
	ss->dirty_mask &= ~bits; /* in use: its pages are the slab's now */
	if (find_run(ss, 1) < 0)
		list_remove(ss);
	init(ss, (unsigned)f, ctx);
	hak__unlock(&pool_lock);
	return ss;
}

bool hak__pool_units_give(struct hak_slab *s)
{
	struct hak_superslab *ss = s->ss;
	uint64_t now = hak__now_ns();
	bool now_empty = false;
	unsigned first = s->first_unit, units = s->nunits;
	uint32_t bits = run_bits(first, units);
	hak__lock(&pool_lock);
	s->nunits = 0;
	if (unlikely(ss->pool_gen != pool_gen)) { /* forgotten by a fork child: see pool_gen */
		hak__unlock(&pool_lock);
		return false;
	}
	HAK_CHECK((ss->unit_mask & bits) == bits, "internal: units %u+%u of SuperSlab %p given back twice", first,
		  units, (void *)ss);
	ss->unit_mask &= ~bits;
	__atomic_store_n(&units_given, units_given + units, __ATOMIC_RELAXED);
	ss->dirty_mask |= bits;
	for (unsigned u = first; u < first + units; u++)
		ss->unit_free_ns[u] = now;
	if (ss->unit_mask == 0) {
		list_remove(ss);
		list_push(ss, LIST_EMPTY);
		ss->empty_since_ns = now;
		now_empty = true;
	} else if (ss->on_list == LIST_NONE) {
		list_push(ss, LIST_PARTIAL);
	}
	hak__unlock(&pool_lock);
	if (now_empty)
		hak_add_relaxed(&xempties_new, 1);
	return now_empty;
}

unsigned hak__pool_empties_take(void)
{
	if (!hak_load_relaxed(&xempties_new))
		return 0;
	return atomic_exchange_explicit(&xempties_new, 0, memory_order_relaxed);
}

/* ---- Releasing and purging ----------------------------------------------------------------------- */

/* Take an empty SuperSlab off every list and out of the map (pool lock held), to unmap later. */
static void retire_empty(struct hak_superslab *ss, struct hak_superslab **victims)
{
	HAK_ASSERT(ss->unit_mask == 0 && ss->on_list == LIST_EMPTY);
	/* Every slab of it went back with all its blocks in its free list (hak__slab_release
	 * checks that in every build), so no block of it is out of slab land; debug builds also
	 * hold the count that says so. */
#if HAK_DEBUG >= 2
	HAK_CHECK(hak_load_relaxed(&ss->xactive) == 0,
		  "internal: empty SuperSlab %p has %lld active blocks", (void *)ss,
		  (long long)hak_load_relaxed(&ss->xactive));
#endif
	list_remove(ss);
	hak__map_clear((uintptr_t)ss, ss->nunits);
	if (ss->all_prev)
		ss->all_prev->all_next = ss->all_next;
	else
		all_head = ss->all_next;
	if (ss->all_next)
		ss->all_next->all_prev = ss->all_prev;
	__atomic_store_n(&live_n, live_n - 1, __ATOMIC_RELAXED);
	hak_add_relaxed(&xreleased_total, 1); /* with live_n, under the lock: a snapshot agrees */
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
		n++;
	}
	return n;
}

unsigned hak__pool_release_empty(unsigned floor, uint64_t min_empty_ns, unsigned max, uint64_t now)
{
	struct hak_superslab *victims = NULL, *oldest = NULL;
	unsigned n = 0;
	hak__lock(&pool_lock);
	for (struct hak_superslab *ss = empty_head; ss; ss = ss->next)
		oldest = ss; /* the list is newest first: its tail emptied longest ago */
	for (struct hak_superslab *ss = oldest, *prev; ss && n < max && empty_n > floor; ss = prev) {
		prev = ss->prev;
		if (now - ss->empty_since_ns < min_empty_ns)
			break; /* every one before it emptied later still */
		retire_empty(ss, &victims);
		n++;
	}
	hak__unlock(&pool_lock);
	return unmap_victims(victims);
}

/* Bytes of unit u's pages that may hold data (unit 0 starts with the header). */
static size_t unit_from(unsigned u)
{
	return ((size_t)u << HAK_UNIT_SHIFT) + (u == 0 ? HAK_SS_HEADER : 0);
}

/* Purge units [u, v) of ss (pool lock held). */
static uint64_t purge_run(struct hak_superslab *ss, unsigned u, unsigned v)
{
	size_t from = unit_from(u), to = (size_t)v << HAK_UNIT_SHIFT;
	hak__os_purge((char *)ss + from, to - from);
	ss->dirty_mask &= ~run_bits(u, v - u);
	return to - from;
}

static bool unit_ripe(const struct hak_superslab *ss, unsigned u, uint64_t min_free_ns, uint64_t now)
{
	uint32_t bit = (uint32_t)1 << u;
	return (ss->dirty_mask & ~ss->unit_mask & bit) && now - ss->unit_free_ns[u] >= min_free_ns;
}

/* Everything ripe, in runs (one madvise per run of adjacent units). */
static uint64_t purge_all(uint64_t min_free_ns, uint64_t now)
{
	uint64_t bytes = 0;
	for (struct hak_superslab *ss = all_head; ss; ss = ss->all_next) {
		if (!(ss->dirty_mask & ~ss->unit_mask))
			continue;
		for (unsigned u = 0; u < ss->nunits;) {
			if (!unit_ripe(ss, u, min_free_ns, now)) {
				u++;
				continue;
			}
			unsigned v = u + 1;
			while (v < ss->nunits && unit_ripe(ss, v, min_free_ns, now))
				v++;
			bytes += purge_run(ss, u, v);
			u = v;
		}
	}
	return bytes;
}

/* Longest-free first until the budget is spent: the 64 oldest ripe units per walk. */
static uint64_t purge_oldest(uint64_t min_free_ns, uint64_t max_bytes, uint64_t now)
{
	enum { PICK = 64 };
	struct {
		struct hak_superslab *ss;
		unsigned u;
		uint64_t at;
	} pick[PICK];
	uint64_t bytes = 0;
	for (;;) {
		unsigned n = 0;
		for (struct hak_superslab *ss = all_head; ss; ss = ss->all_next) {
			if (!(ss->dirty_mask & ~ss->unit_mask))
				continue;
			for (unsigned u = 0; u < ss->nunits; u++) {
				if (!unit_ripe(ss, u, min_free_ns, now))
					continue;
				uint64_t at = ss->unit_free_ns[u];
				if (n == PICK && at >= pick[n - 1].at)
					continue;
				unsigned i = n < PICK ? n++ : PICK - 1;
				while (i > 0 && pick[i - 1].at > at) {
					pick[i] = pick[i - 1];
					i--;
				}
				pick[i].ss = ss;
				pick[i].u = u;
				pick[i].at = at;
			}
		}
		for (unsigned i = 0; i < n; i++) {
			if (bytes >= max_bytes)
				return bytes;
			bytes += purge_run(pick[i].ss, pick[i].u, pick[i].u + 1);
		}
		if (n < PICK || bytes >= max_bytes)
			return bytes;
	}
}

uint64_t hak__pool_purge(uint64_t min_free_ns, uint64_t max_bytes, uint64_t now)
{
	if (!max_bytes)
		return 0;
	hak__lock(&pool_lock);
	uint64_t bytes = max_bytes == UINT64_MAX ? purge_all(min_free_ns, now) : purge_oldest(min_free_ns, max_bytes, now);
	hak__unlock(&pool_lock);
	hak_add_relaxed(&xpurged_total, bytes);
	return bytes;
}

/* ---- Facts -------------------------------------------------------------------------------------------- */

void hak__pool_free_runs_each(void (*fn)(void *ctx, const struct hak_free_run *run), void *ctx)
{
	hak__lock(&pool_lock);
	for (struct hak_superslab *ss = all_head; ss; ss = ss->all_next) {
		uint32_t free_units = ~ss->unit_mask & (uint32_t)(((uint64_t)1 << ss->nunits) - 1);
		for (unsigned u = 0; u < ss->nunits;) {
			if (!((free_units >> u) & 1)) {
				u++;
				continue;
			}
			int dirty = (ss->dirty_mask >> u) & 1;
			unsigned v = u;
			uint64_t since = 0;
			while (v < ss->nunits && ((free_units >> v) & 1) && (int)((ss->dirty_mask >> v) & 1) == dirty) {
				if (ss->unit_free_ns[v] > since)
					since = ss->unit_free_ns[v];
				v++;
			}
			struct hak_free_run run = {(char *)ss + unit_from(u), ((uint64_t)v << HAK_UNIT_SHIFT) - unit_from(u),
						   since, dirty, ss->unit_mask == 0, ss};
			fn(ctx, &run);
			u = v;
		}
	}
	hak__unlock(&pool_lock);
}

#define FACT(out, field, v)                                  \
	do {                                                 \
		if (HAK_STRUCT_HAS(out, field))              \
			(out)->field = (v);                  \
	} while (0)

void hak__pool_facts(struct hak_heap_facts *out)
{
	uint64_t mapped = 0, free_bytes = 0, dirty = 0, oldest = 0;
	hak__lock(&pool_lock);
	for (struct hak_superslab *ss = all_head; ss; ss = ss->all_next) {
		mapped += (uint64_t)1 << ss->lg_size;
		for (unsigned u = 0; u < ss->nunits; u++) {
			if ((ss->unit_mask >> u) & 1)
				continue;
			uint64_t b = HAK_UNIT_SIZE - (u == 0 ? HAK_SS_HEADER : 0);
			free_bytes += b;
			if ((ss->dirty_mask >> u) & 1)
				dirty += b;
		}
	}
	for (struct hak_superslab *ss = empty_head; ss; ss = ss->next)
		oldest = ss->empty_since_ns;
	FACT(out, superslabs_live, live_n);
	FACT(out, superslabs_empty, empty_n);
	FACT(out, oldest_empty_ns, oldest);
	hak__unlock(&pool_lock);
	FACT(out, mapped_bytes, mapped);
	FACT(out, free_unit_bytes, free_bytes);
	FACT(out, dirty_bytes, dirty);
}

unsigned hak__pool_empty_count(void)
{
	return __atomic_load_n(&empty_n, __ATOMIC_RELAXED);
}

uint64_t hak__pool_live(void)
{
	return __atomic_load_n(&live_n, __ATOMIC_RELAXED);
}

uint64_t hak__pool_live_of(unsigned lg)
{
	return lg <= HAK_SS_LG_MAX ? __atomic_load_n(&live_by_lg[lg], __ATOMIC_RELAXED) : 0;
}

uint64_t hak__pool_peak_of(unsigned lg)
{
	return lg <= HAK_SS_LG_MAX ? __atomic_load_n(&peak_by_lg[lg], __ATOMIC_RELAXED) : 0;
}

void hak__pool_each(void (*fn)(const struct hak_superslab *ss, void *ctx), void *ctx)
{
	hak__lock(&pool_lock);
	for (struct hak_superslab *ss = all_head; ss; ss = ss->all_next)
		fn(ss, ctx);
	hak__unlock(&pool_lock);
}

void hak__pool_counts(uint64_t *mapped, uint64_t *released, uint64_t *live)
{
	hak__lock(&pool_lock);
	*mapped = hak_load_relaxed(&xmapped_total);
	*released = hak_load_relaxed(&xreleased_total);
	*live = live_n;
	hak__unlock(&pool_lock);
}

uint64_t hak__pool_mapped_total(void)
{
	return hak_load_relaxed(&xmapped_total);
}

uint64_t hak__pool_released_total(void)
{
	return hak_load_relaxed(&xreleased_total);
}

uint64_t hak__pool_peak_live(void)
{
	return hak_load_relaxed(&xpeak_live);
}

uint64_t hak__pool_purged_total(void)
{
	return hak_load_relaxed(&xpurged_total);
}

#if HAK_DEBUG >= 2
int64_t hak__pool_active_total(void)
{
	int64_t sum = 0;
	hak__lock(&pool_lock);
	for (struct hak_superslab *ss = all_head; ss; ss = ss->all_next)
		sum += hak_load_relaxed(&ss->xactive);
	hak__unlock(&pool_lock);
	return sum;
}
#endif

uint64_t hak__pool_check(void)
{
	uint64_t n = 0, empties = 0;
	hak__lock(&pool_lock);
	for (struct hak_superslab *ss = all_head; ss; ss = ss->all_next, n++) {
		HAK_CHECK(ss->magic == HAK_SS_MAGIC, "SuperSlab %p: bad magic", (void *)ss);
		HAK_CHECK(!ss->all_next || ss->all_next->all_prev == ss, "SuperSlab %p: all-list link", (void *)ss);
		uint32_t used = 0;
		for (unsigned u = 0; u < ss->nunits; u++) {
			const struct hak_slab *s = &ss->slabs[u];
			if (!s->nunits)
				continue;
			HAK_CHECK(s->first_unit == u && u + s->nunits <= ss->nunits, "SuperSlab %p: slab %u", (void *)ss, u);
			used |= run_bits(u, s->nunits);
			HAK_CHECK(s->carved <= s->capacity && s->nfree <= s->carved, "slab %p: counts", (const void *)s);
		}
		HAK_CHECK(used == ss->unit_mask, "SuperSlab %p: unit mask %x, slabs cover %x", (void *)ss,
			  ss->unit_mask, used);
		HAK_CHECK((ss->unit_mask == 0) == (ss->on_list == LIST_EMPTY), "SuperSlab %p: empty but not listed",
			  (void *)ss);
		empties += ss->on_list == LIST_EMPTY;
	}
	HAK_CHECK(n == live_n && empties == empty_n, "pool: %llu SuperSlabs (%llu empty) walked, counts say %llu (%u)",
		  (unsigned long long)n, (unsigned long long)empties, (unsigned long long)live_n, empty_n);
	hak__unlock(&pool_lock);
	return n;
}

/* ---- fork --------------------------------------------------------------------------------------------- */

bool hak__pool_fork_prepare(void)
{
	if (!hak__fork_take_mutex(&pool_lock))
		return false;
	fork_without_lock = !hak__fork_took(&pool_lock);
	return true;
}

/* The child's lists, counts and masks as the fork copied them; see pool_gen for one that went on
 * without the pool lock. */
void hak__pool_fork_child(void)
{
	pthread_mutex_init(&pool_lock, NULL);
	if (!fork_without_lock)
		return;
	fork_without_lock = false;
	pool_gen++;
	memset(partial, 0, sizeof partial);
	empty_head = all_head = NULL;
	__atomic_store_n(&empty_n, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&live_n, 0, __ATOMIC_RELAXED);
	for (unsigned lg = 0; lg <= HAK_SS_LG_MAX; lg++)
		__atomic_store_n(&live_by_lg[lg], 0, __ATOMIC_RELAXED);
	hak_store_relaxed(&xempties_new, 0);
}
