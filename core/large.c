/* large.c: blocks above HAK_SMALL_MAX (and over-aligned ones): one mapping each, found through
 * an open-addressing table keyed by the block's address (16 shards, each with its own lock), so
 * an unknown pointer is recognised.
 * Freed mappings wait in a cache for reuse (realloc chains, threads that free many large blocks
 * as they end, repeated 5-25 MB blocks), within the limits of large.h, oldest sent back first.
 * They age: a mapping no allocation took between two of the trim policy's passes goes back to
 * the OS at the second one; an explicit trim sends them all back at once. */
#include "large.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

struct large_entry {
	uintptr_t user; /* block address handed out; 0 empty, 1 deleted */
	char *base;     /* mapping start */
	size_t len;     /* mapping length */
	size_t asked;   /* the most the program asked of it (malloc, realloc): a realloc shrinks
			 * the mapping only below half of that, not below half of a cached mapping
			 * bigger than ever asked for */
};

#define LARGE_SHARDS 16

struct shard {
	pthread_mutex_t lock;      /* this shard's table */
	struct large_entry *table; /* open addressing, linear probing */
	size_t cap, used, tombs;   /* slots, live entries, deleted entries */
} __attribute__((aligned(64)));

static struct shard shards[LARGE_SHARDS] = {
	[0 ... LARGE_SHARDS - 1] = {.lock = PTHREAD_MUTEX_INITIALIZER},
};
const struct hak_large_limits hak__large_limits_default = HAK_LARGE_LIMITS_DEFAULT;

/* The cache (cache_lock): oldest first, so the limits send cache[0] back first. */
struct cached {
	char *base;
	size_t len;
	unsigned passes; /* aging passes it has waited through: the second sends it back */
};
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cached cache[HAK_LARGE_SLOTS_MAX];
static size_t cache_n, cache_bytes;
static struct hak_large_limits limits = HAK_LARGE_LIMITS_DEFAULT;
static _Atomic uint64_t live_n;

/* Whether the trim policy knows that cached mappings wait for aging passes: a free that caches
 * a mapping while PASS_NONE makes it PASS_WANTED; hak__large_after_free turns that into one
 * tick (PASS_ASKED); every aging pass starts over at PASS_NONE. So a stream of large frees
 * costs the policy one tick per pass, not one per free. */
enum { PASS_NONE, PASS_WANTED, PASS_ASKED };
static _Atomic int xpass_request;

static uint64_t hash_of(uintptr_t user)
{
	return (uint64_t)(user >> 12) * UINT64_C(0x9E3779B97F4A7C15);
}

/* The shard of a block, locked. */
static struct shard *shard_lock(uintptr_t user)
{
	struct shard *sh = &shards[hash_of(user) >> 60];
	pthread_mutex_lock(&sh->lock);
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
	hak_add_relaxed(&live_n, 1);
	return 0;
}

static void erase(struct shard *sh, struct large_entry *e)
{
	e->user = 1;
	sh->used--;
	sh->tombs++;
	hak_add_relaxed(&live_n, -1);
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

static void unmap_cached(struct cached c)
{
	hak__os_unmap(c.base, c.len);
	hak_add_relaxed(&hak__g.large_released, 1);
}

/* Whether a mapping of len bytes may join the cache as it is (lock held). */
static bool cache_fits(size_t len)
{
	return cache_n < limits.slots && cache_bytes + len <= limits.max_bytes;
}

/* Send the oldest cached mappings back until what the cache holds is within the limits. */
static void cache_shrink(void)
{
	for (;;) {
		pthread_mutex_lock(&cache_lock);
		if (!cache_n || (cache_n <= limits.slots && cache_bytes <= limits.max_bytes)) {
			pthread_mutex_unlock(&cache_lock);
			return;
		}
		struct cached c = cache_remove(0);
		pthread_mutex_unlock(&cache_lock);
		unmap_cached(c);
	}
}

int hak__large_set_limits(const struct hak_large_limits *l)
{
	if (l->slots > HAK_LARGE_SLOTS_MAX || l->max_one > l->max_bytes)
		return EINVAL;
	pthread_mutex_lock(&cache_lock);
	limits = *l;
	pthread_mutex_unlock(&cache_lock);
	cache_shrink();
	for (;;) { /* what is now too big to be cached at all */
		pthread_mutex_lock(&cache_lock);
		size_t i = 0;
		while (i < cache_n && cache[i].len <= limits.max_one)
			i++;
		if (i == cache_n) {
			pthread_mutex_unlock(&cache_lock);
			return 0;
		}
		struct cached c = cache_remove(i);
		pthread_mutex_unlock(&cache_lock);
		unmap_cached(c);
	}
}

void hak__large_get_limits(struct hak_large_limits *out)
{
	pthread_mutex_lock(&cache_lock);
	*out = limits;
	pthread_mutex_unlock(&cache_lock);
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
		pthread_mutex_lock(&cache_lock);
		bool got = cache_take(need, &base, &len);
		pthread_mutex_unlock(&cache_lock);
		if (got) {
			used = len < n ? len : n; /* bytes that may hold old data */
			if (len < need) {
				int saved = errno;
				char *q = mremap(base, len, need, MREMAP_MAYMOVE);
				errno = saved;
				if (q == MAP_FAILED) {
					hak__os_unmap(base, len);
					hak_add_relaxed(&hak__g.large_released, 1);
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
		if (!base && hak__large_trim(0)) /* cached mappings count against the budget */
			base = hak__os_map(need, align > 4096 ? align : 4096);
		if (!base)
			return NULL;
		hak_add_relaxed(&hak__g.large_mapped, 1);
	}
	if (zero && used)
		memset(base, 0, used); /* fresh pages are already zero */
	struct shard *sh = shard_lock((uintptr_t)base);
	int err = insert(sh, (uintptr_t)base, base, len, n);
	pthread_mutex_unlock(&sh->lock);
	if (err) {
		hak__os_unmap(base, len);
		errno = ENOMEM;
		return NULL;
	}
	return base;
}

bool hak__large_free(void *p)
{
	struct shard *sh = shard_lock((uintptr_t)p);
	struct large_entry *e = find(sh, (uintptr_t)p);
	if (!e) {
		pthread_mutex_unlock(&sh->lock);
		return false;
	}
	char *base = e->base;
	size_t len = e->len;
	erase(sh, e);
	pthread_mutex_unlock(&sh->lock);
	/* Make room by sending the oldest back, a few at a time outside the lock; a mapping that
	 * would need more (one bigger than most of the cache) goes back itself. */
	struct cached out[4];
	size_t n_out = 0;
	bool cached = false;
	pthread_mutex_lock(&cache_lock);
	if (len <= limits.max_one && limits.slots) {
		while (!cache_fits(len) && cache_n && n_out < 4)
			out[n_out++] = cache_remove(0);
		if (cache_fits(len)) {
			cache[cache_n++] = (struct cached){base, len, 0};
			cache_bytes += len;
			cached = true;
		}
	}
	pthread_mutex_unlock(&cache_lock);
	if (cached) {
		int none = PASS_NONE;
		if (hak_load_relaxed(&xpass_request) == PASS_NONE)
			hak_cas_strong(&xpass_request, &none, PASS_WANTED);
	}
	for (size_t i = 0; i < n_out; i++)
		unmap_cached(out[i]);
	if (!cached)
		unmap_cached((struct cached){base, len, 0});
	return true;
}

size_t hak__large_usable(const void *p)
{
	struct shard *sh = shard_lock((uintptr_t)p);
	struct large_entry *e = find(sh, (uintptr_t)p);
	size_t n = e ? e->len - (size_t)((const char *)p - e->base) : 0;
	pthread_mutex_unlock(&sh->lock);
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
		pthread_mutex_unlock(&sh->lock);
		return NULL;
	}
	*handled = true;
	size_t len = e->len, asked = e->asked > n ? e->asked : n;
	if (need <= len && (need >= len / 2 || n >= e->asked / 2)) {
		/* In place: a block from a bigger cached mapping (a string builder that got one)
		 * keeps its resident pages for its growth instead of shrinking to its first size
		 * and faulting them in again step by step. */
		e->asked = asked;
		pthread_mutex_unlock(&sh->lock);
		return p;
	}
	/* Forget p before it moves: once mremap releases its old range, another thread may map
	 * a new block at that very address and record it. */
	erase(sh, e);
	pthread_mutex_unlock(&sh->lock);
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
	pthread_mutex_unlock(&sh->lock);
	if (err) /* the table could not grow: give the block back rather than lose track of it */
		hak__fatal("realloc(): no memory to record a %zu-byte block at %p", want, (void *)q);
	if (failed) {
		errno = ENOMEM;
		return NULL;
	}
	return q;
}

/* After a large free, outside the allocator's guard (the policy may start its helper thread,
 * which allocates): the first mapping cached since the last aging pass tells the trim policy
 * there is work, and so does every 64th large free of a thread (a policy that rate-limits its
 * ticks, like eager, may have dropped the first). Budget when nothing is due: one relaxed
 * load, one thread-local increment. */
void hak__large_after_free(void)
{
	static __thread unsigned frees __attribute__((tls_model("initial-exec")));
	bool first = hak_load_relaxed(&xpass_request) == PASS_WANTED;
	if (likely(!first && (++frees & 63) != 0))
		return;
	if (hak__tls->state == HAK_THREAD_GONE) /* past its exit hook: leave it to another thread */
		return;
	int wanted = PASS_WANTED;
	if (!first || hak_cas_strong(&xpass_request, &wanted, PASS_ASKED))
		hak__trim_tick();
}

/* One aging pass (the trim policy's periodic pass): cached mappings that waited through the
 * previous pass go back to the OS, the others are counted as having waited. Returns how many stay
 * cached, so the caller can ask for the pass that will send them back. */
unsigned hak__large_age(void)
{
	pthread_mutex_lock(&cache_lock);
	for (size_t i = 0; i < cache_n; i++)
		cache[i].passes++;
	hak_store_relaxed(&xpass_request, PASS_NONE);
	pthread_mutex_unlock(&cache_lock);
	for (;;) { /* one at a time: the system call runs outside the lock */
		pthread_mutex_lock(&cache_lock);
		size_t i = 0;
		while (i < cache_n && cache[i].passes < 2)
			i++;
		if (i == cache_n) {
			unsigned left = (unsigned)cache_n;
			pthread_mutex_unlock(&cache_lock);
			return left;
		}
		struct cached c = cache_remove(i);
		pthread_mutex_unlock(&cache_lock);
		unmap_cached(c);
	}
}

/* Send cached mappings back, oldest first, until at most keep_bytes stay cached. */
unsigned hak__large_trim(size_t keep_bytes)
{
	unsigned n = 0;
	for (;;) {
		pthread_mutex_lock(&cache_lock);
		if (cache_n == 0 || cache_bytes <= keep_bytes) {
			pthread_mutex_unlock(&cache_lock);
			return n;
		}
		struct cached c = cache_remove(0);
		pthread_mutex_unlock(&cache_lock);
		unmap_cached(c);
		n++;
	}
}

void hak__large_stats(uint64_t *live, uint64_t *cached)
{
	*live = hak_load_relaxed(&live_n);
	pthread_mutex_lock(&cache_lock);
	*cached = cache_n;
	pthread_mutex_unlock(&cache_lock);
}

void hak__large_fork_prepare(void)
{
	for (unsigned i = 0; i < LARGE_SHARDS; i++)
		pthread_mutex_lock(&shards[i].lock);
	pthread_mutex_lock(&cache_lock);
}

void hak__large_fork_parent(void)
{
	pthread_mutex_unlock(&cache_lock);
	for (unsigned i = LARGE_SHARDS; i-- > 0;)
		pthread_mutex_unlock(&shards[i].lock);
}

void hak__large_fork_child(void)
{
	/* The parent's trim helper did not come along: the child's next large free asks anew. */
	hak_store_relaxed(&xpass_request, cache_n ? PASS_WANTED : PASS_NONE);
	pthread_mutex_init(&cache_lock, NULL);
	for (unsigned i = 0; i < LARGE_SHARDS; i++)
		pthread_mutex_init(&shards[i].lock, NULL);
}
