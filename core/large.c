/* large.c: layer 3, blocks above HAK_SMALL_MAX (and over-aligned ones): one mapping each, found
 * through an open-addressing table keyed by the block's address (16 shards, each with its own
 * lock), so an unknown pointer is recognised.
 * Freed mappings wait in a cache for reuse (realloc chains, repeated 5-25 MB blocks), within the
 * limits the trim policy sets (hak__large_set_limits); the trim policy also decides when they go
 * back (hak__large_release, by idle time); the core never sends them back on its own, except to
 * make room within the limits. */
#include "large.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "lock.h"
#include "os.h"

struct large_entry {
	uintptr_t user; /* block address handed out; 0 empty, 1 deleted */
	char *base;     /* mapping start */
	size_t len;     /* mapping length */
	size_t asked;   /* the most the program asked of it (malloc, realloc): a realloc shrinks
			 * the mapping only below half of that, not below half of a cached mapping
			 * bigger than ever asked for */
};

#define LARGE_CACHE_SLOTS_MAX 256 /* the most struct hak_large_limits.slots may ask */
#define LARGE_SHARDS 16

struct shard {
	pthread_mutex_t lock;      /* this shard's table */
	struct large_entry *table; /* open addressing, linear probing */
	size_t cap, used, tombs;   /* slots, live entries, deleted entries */
} __attribute__((aligned(64)));

static struct shard shards[LARGE_SHARDS] = {
	[0 ... LARGE_SHARDS - 1] = {.lock = PTHREAD_MUTEX_INITIALIZER},
};

/* The defaults, until the trim policy says otherwise (trim policies' large_cache_* keys). */
#define LARGE_DEFAULT_LIMITS HAK_LARGE_LIMITS_DEFAULT

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hak_large_limits limits = LARGE_DEFAULT_LIMITS; /* cache lock */
/* The cache (cache lock): oldest first, so making room and releasing by age start at [0]. */
struct cached {
	char *base;
	size_t len;
	uint64_t since_ns; /* when it was cached */
};
HAK_BIG_BSS static struct cached cache[LARGE_CACHE_SLOTS_MAX];
static size_t cache_n, cache_bytes;
/* Whoever holds the cache lock marks the cache as changing (cache_enter, cache_leave). A fork
 * does not take that lock from a signal handler that interrupted its holder, nor from a trying
 * fork that gave up on another thread holding it (lock.h): a child that finds the mark forgets
 * the cache (its mappings leak) instead of handing out a slot half written (cache_n is stored
 * before the slot it counts) or a mapping listed twice (cache_remove's memmove). */
static int cache_changing;

static void cache_enter(void)
{
	hak__lock(&cache_lock);
	cache_changing = 1;
	atomic_signal_fence(memory_order_seq_cst);
}

static void cache_leave(void)
{
	atomic_signal_fence(memory_order_seq_cst);
	cache_changing = 0;
	hak__unlock(&cache_lock);
}
static _Atomic uint64_t live_n, live_bytes;  /* mappings in the tables, their lengths */
static _Atomic uint64_t peak_n, peak_bytes;  /* the most of each at once (malloc_stats) */
static _Atomic uint64_t xmapped_total, xreleased_total;

/* Whether the trim policy knows that cached mappings wait: a free that caches a mapping while
 * PASS_NONE makes it PASS_ASKED and tells its caller to tick the trim policy; every release
 * pass starts over at PASS_NONE. So a stream of large frees costs the policy one tick per pass,
 * not one per free. */
enum { PASS_NONE, PASS_ASKED };
static _Atomic int xpass_request;

/* The one way a large mapping goes back. */
static void large_unmap(void *base, size_t len)
{
	hak__os_unmap(base, len);
	hak_add_relaxed(&xreleased_total, 1);
}

static uint64_t hash_of(uintptr_t user)
{
	return (uint64_t)(user >> 12) * UINT64_C(0x9E3779B97F4A7C15);
}

/* The shard of a block, locked. */
static struct shard *shard_lock(uintptr_t user)
{
	struct shard *sh = &shards[hash_of(user) >> 60];
	hak__lock(&sh->lock);
	return sh;
}

static size_t slot_of(uintptr_t user, size_t cap)
{
	return (size_t)(hash_of(user) >> 20) & (cap - 1);
}

static struct large_entry *find(struct shard *sh, uintptr_t user)
{
	if (!sh->table)
		return NULL;
	for (size_t i = slot_of(user, sh->cap);; i = (i + 1) & (sh->cap - 1)) {
		if (sh->table[i].user == user)
			return &sh->table[i];
		if (sh->table[i].user == 0)
			return NULL;
	}
}

/* Grow (or clean) a table when it is 3/4 full counting tombstones. Old tables are leaked to
 * the metadata arena: growth is geometric and rare. */
static int table_reserve(struct shard *sh)
{
	if (sh->table && (sh->used + sh->tombs + 1) * 4 < sh->cap * 3)
		return 0;
	size_t cap = sh->cap ? sh->cap : 256;
	while ((sh->used + 1) * 2 > cap)
		cap *= 2;
	struct large_entry *t = hak__meta_alloc(cap * sizeof *t);
	if (!t)
		return ENOMEM;
	for (size_t i = 0; i < sh->cap; i++)
		if (sh->table[i].user > 1) {
			size_t j = slot_of(sh->table[i].user, cap);
			while (t[j].user)
				j = (j + 1) & (cap - 1);
			t[j] = sh->table[i];
		}
	sh->table = t;
	sh->cap = cap;
	sh->tombs = 0;
	return 0;
}

static void raise_to(_Atomic uint64_t *peak, uint64_t v)
{
	uint64_t old = hak_load_relaxed(peak);
	while (v > old && !hak_cas_acq_rel(peak, &old, v))
		;
}

static int insert(struct shard *sh, uintptr_t user, char *base, size_t len, size_t asked)
{
	if (table_reserve(sh))
		return ENOMEM;
	size_t i = slot_of(user, sh->cap);
	while (sh->table[i].user > 1)
		i = (i + 1) & (sh->cap - 1);
	if (sh->table[i].user == 1)
		sh->tombs--;
	sh->table[i] = (struct large_entry){user, base, len, asked};
	sh->used++;
	raise_to(&peak_n, hak_add_relaxed(&live_n, 1) + 1);
	raise_to(&peak_bytes, hak_add_relaxed(&live_bytes, len) + len);
	return 0;
}

static void erase(struct shard *sh, struct large_entry *e)
{
	e->user = 1;
	sh->used--;
	sh->tombs++;
	hak_add_relaxed(&live_n, -1);
	hak_add_relaxed(&live_bytes, -(uint64_t)e->len);
}

static struct cached cache_remove(size_t i)
{
	struct cached c = cache[i];
	cache_bytes -= c.len;
	memmove(&cache[i], &cache[i + 1], (cache_n - i - 1) * sizeof cache[0]);
	cache_n--;
	return c;
}

/* A cached mapping for need bytes (lock held): the smallest of at least need bytes, else the
 * largest smaller one, which the caller grows with mremap (its pages stay resident, only the
 * extension is new); the newest of equals. false when the cache is empty. Budget: one pass over
 * at most limits.slots entries, far less than the faults of a fresh mapping's pages. */
static bool cache_take(size_t need, char **base, size_t *len)
{
	if (!cache_n)
		return false;
	size_t best = cache_n - 1;
	for (size_t i = best; i-- > 0;) {
		bool fits = cache[i].len >= need, best_fits = cache[best].len >= need;
		if ((fits && (!best_fits || cache[i].len < cache[best].len)) ||
		    (!fits && !best_fits && cache[i].len > cache[best].len))
			best = i;
	}
	struct cached c = cache_remove(best);
	*base = c.base;
	*len = c.len;
	return true;
}

/* Whether a mapping of len bytes may join the cache as it is (lock held). */
static bool cache_fits(size_t len)
{
	return cache_n < limits.slots && cache_bytes + len <= limits.max_bytes;
}

static size_t page_round(size_t n)
{
	return n ? (n + 4095) & ~(size_t)4095 : 4096;
}

void *hak__large_alloc(size_t n, size_t align, bool zero)
{
	if (n > PTRDIFF_MAX - ((size_t)1 << 21) || align > ((size_t)1 << 30)) {
		errno = ENOMEM;
		return NULL;
	}
	size_t need = page_round(n), len = need, used = 0;
	char *base = NULL;
	if (align <= 4096) {
		cache_enter();
		bool got = cache_take(need, &base, &len);
		cache_leave();
		if (got) {
			used = len < n ? len : n; /* bytes that may hold old data */
			if (len < need) {
				int saved = errno;
				char *q = mremap(base, len, need, MREMAP_MAYMOVE);
				errno = saved;
				if (q == MAP_FAILED) {
					large_unmap(base, len);
					base = NULL;
				} else {
					base = q;
					len = need;
				}
			}
		}
	}
	if (!base) {
		len = need;
		used = 0;
		base = hak__os_map(need, align > 4096 ? align : 4096);
		if (!base)
			return NULL; /* the caller asks the trim policy (out_of_memory) and retries */
		hak_add_relaxed(&xmapped_total, 1);
	}
	if (zero && used)
		memset(base, 0, used); /* fresh pages are already zero */
	struct shard *sh = shard_lock((uintptr_t)base);
	int err = insert(sh, (uintptr_t)base, base, len, n);
	hak__unlock(&sh->lock);
	if (err) {
		hak__os_unmap(base, len);
		errno = ENOMEM;
		return NULL;
	}
	return base;
}

bool hak__large_free(void *p, bool *wants_pass)
{
	*wants_pass = false;
	struct shard *sh = shard_lock((uintptr_t)p);
	struct large_entry *e = find(sh, (uintptr_t)p);
	if (!e) {
		hak__unlock(&sh->lock);
		return false;
	}
	char *base = e->base;
	size_t len = e->len;
	erase(sh, e);
	hak__unlock(&sh->lock);
	/* Make room by sending the oldest back, a few at a time (unmapped outside the lock); a
	 * mapping that would need more (one bigger than most of the cache) goes back itself. */
	struct cached out[4];
	size_t n_out = 0;
	bool cached = false;
	cache_enter();
	if (len <= limits.max_one && limits.slots) {
		while (!cache_fits(len) && cache_n && n_out < 4)
			out[n_out++] = cache_remove(0);
		if (cache_fits(len)) {
			cache[cache_n++] = (struct cached){base, len, hak__now_ns()};
			cache_bytes += len;
			cached = true;
		}
	}
	cache_leave();
	int none = PASS_NONE;
	if (cached && hak_load_relaxed(&xpass_request) == PASS_NONE && hak_cas_strong(&xpass_request, &none, PASS_ASKED))
		*wants_pass = true;
	for (size_t i = 0; i < n_out; i++)
		large_unmap(out[i].base, out[i].len);
	if (!cached)
		large_unmap(base, len);
	return true;
}

size_t hak__large_usable(const void *p)
{
	struct shard *sh = shard_lock((uintptr_t)p);
	struct large_entry *e = find(sh, (uintptr_t)p);
	size_t n = e ? e->len - (size_t)((const char *)p - e->base) : 0;
	hak__unlock(&sh->lock);
	return n;
}

/* Large to large: mremap keeps it one mapping and moves page tables instead of bytes. A
 * growing block gets a quarter more than asked, so a block grown by small appends (a string
 * builder) costs a system call every so often rather than at every page. The system call runs
 * outside the lock: only the block's owner may realloc it meanwhile. */
void *hak__large_realloc(void *p, size_t n, bool *handled)
{
	*handled = false;
	if (n <= HAK_SMALL_MAX || n > PTRDIFF_MAX - ((size_t)1 << 21))
		return NULL;
	size_t need = page_round(n);
	struct shard *sh = shard_lock((uintptr_t)p);
	struct large_entry *e = find(sh, (uintptr_t)p);
	if (!e || (uintptr_t)e->base != (uintptr_t)p) { /* unknown, or over-aligned: copy */
		hak__unlock(&sh->lock);
		return NULL;
	}
	*handled = true;
	size_t len = e->len, asked = e->asked > n ? e->asked : n;
	if (need <= len && (need >= len / 2 || n >= e->asked / 2)) {
		/* In place: a block from a bigger cached mapping (a string builder that got one)
		 * keeps its resident pages for its growth instead of shrinking to its first size
		 * and faulting them in again step by step. */
		e->asked = asked;
		hak__unlock(&sh->lock);
		return p;
	}
	/* Forget p before it moves: once mremap releases its old range, another thread may map
	 * a new block at that very address and record it. */
	erase(sh, e);
	hak__unlock(&sh->lock);
	size_t want = need;
	if (need > len && need < PTRDIFF_MAX / 2)
		want = page_round(need > len + len / 4 ? need : len + len / 4);
	int saved = errno;
	char *q = mremap(p, len, want, MREMAP_MAYMOVE);
	if (q == MAP_FAILED && want > need)
		q = mremap(p, len, want = need, MREMAP_MAYMOVE);
	bool failed = q == MAP_FAILED;
	if (failed) { /* the old block stays intact, and recorded again */
		q = p;
		want = len;
	} else {
		errno = saved;
		asked = n;
	}
	sh = shard_lock((uintptr_t)q);
	int err = insert(sh, (uintptr_t)q, q, want, asked);
	hak__unlock(&sh->lock);
	if (err) /* the table could not grow: give the block back rather than lose track of it */
		hak__fatal("realloc(): no memory to record a %zu-byte block at %p", want, (void *)q);
	if (failed) {
		errno = ENOMEM;
		return NULL;
	}
	return q;
}

unsigned hak__large_release(uint64_t min_idle_ns, uint64_t keep_bytes, uint64_t now)
{
	unsigned n = 0;
	cache_enter();
	hak_store_relaxed(&xpass_request, PASS_NONE);
	cache_leave();
	for (;;) { /* oldest first, one at a time: the system call runs outside the lock */
		cache_enter();
		if (!cache_n || cache_bytes <= keep_bytes || now - cache[0].since_ns < min_idle_ns) {
			cache_leave();
			return n;
		}
		struct cached c = cache_remove(0);
		cache_leave();
		large_unmap(c.base, c.len);
		n++;
	}
}

void hak__large_default_limits(struct hak_large_limits *out)
{
	*out = (struct hak_large_limits)LARGE_DEFAULT_LIMITS;
}

/* New limits; what no longer fits goes back at once, oldest first. */
/* New limits; what no longer fits goes back at once, oldest first. */
void hak__large_set_limits(const struct hak_large_limits *l)
{
	struct hak_large_limits v = LARGE_DEFAULT_LIMITS;
	if (HAK_STRUCT_HAS(l, max_bytes))
		v.max_bytes = l->max_bytes;
	if (HAK_STRUCT_HAS(l, max_one))
		v.max_one = l->max_one;
	if (HAK_STRUCT_HAS(l, slots))
		v.slots = l->slots < LARGE_CACHE_SLOTS_MAX ? l->slots : LARGE_CACHE_SLOTS_MAX;
	cache_enter();
	limits = v;
	cache_leave();
	for (;;) {
		cache_enter();
		size_t i = 0;
		if (cache_n <= limits.slots && cache_bytes <= limits.max_bytes)
			while (i < cache_n && cache[i].len <= limits.max_one)
				i++;
		if (i == cache_n) {
			cache_leave();
			return;
		}
		struct cached c = cache_remove(i);
		cache_leave();
		large_unmap(c.base, c.len);
	}
}

void hak__large_get_limits(struct hak_large_limits *out)
{
	cache_enter();
	*out = limits;
	cache_leave();
}

void hak__large_facts(struct hak_heap_facts *out)
{
	cache_enter();
	uint64_t oldest = cache_n ? cache[0].since_ns : 0;
	if (HAK_STRUCT_HAS(out, large_cached))
		out->large_cached = cache_n;
	if (HAK_STRUCT_HAS(out, large_cached_bytes))
		out->large_cached_bytes = cache_bytes;
	cache_leave();
	if (HAK_STRUCT_HAS(out, oldest_large_ns))
		out->oldest_large_ns = oldest;
	if (HAK_STRUCT_HAS(out, large_live))
		out->large_live = hak_load_relaxed(&live_n);
}

void hak__large_stats(uint64_t *live, uint64_t *cached, uint64_t *mapped_total, uint64_t *released_total)
{
	*live = hak_load_relaxed(&live_n);
	cache_enter();
	*cached = cache_n;
	cache_leave();
	*mapped_total = hak_load_relaxed(&xmapped_total);
	*released_total = hak_load_relaxed(&xreleased_total);
}

void hak__large_figures(struct hak_large_figures *out)
{
	out->live = hak_load_relaxed(&live_n);
	out->live_bytes = hak_load_relaxed(&live_bytes);
	out->peak = hak_load_relaxed(&peak_n);
	out->peak_bytes = hak_load_relaxed(&peak_bytes);
	cache_enter();
	out->cached = cache_n;
	out->cached_bytes = cache_bytes;
	cache_leave();
}

bool hak__large_fork_prepare(void)
{
	for (unsigned i = 0; i < LARGE_SHARDS; i++)
		if (!hak__fork_take_mutex(&shards[i].lock))
			return false;
	return hak__fork_take_mutex(&cache_lock);
}

void hak__large_fork_child(void)
{
	/* The parent's trim helper did not come along: the child's next large free asks anew. */
	hak_store_relaxed(&xpass_request, PASS_NONE);
	if (cache_changing) { /* see cache_changing: a leak, not a fault */
		cache_n = cache_bytes = 0;
		cache_changing = 0;
	}
	pthread_mutex_init(&cache_lock, NULL);
	for (unsigned i = 0; i < LARGE_SHARDS; i++)
		pthread_mutex_init(&shards[i].lock, NULL);
}
