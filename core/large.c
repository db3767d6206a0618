/* large.c: blocks above HAK_SMALL_MAX (and over-aligned ones): one mapping each, found through
 * an open-addressing table keyed by the block's address (16 shards, each with its own lock), so
 * an unknown pointer is recognised.
 * Freed mappings wait in a small cache for reuse (realloc chains, repeated 5-25 MB blocks).
 * They age: a mapping no allocation took between two of the trim policy's passes goes back to
 * the OS at the second one; an explicit trim or the cache limit sends them back at once. */
#include "hakmem_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

struct large_entry {
	uintptr_t user; /* block address handed out; 0 empty, 1 deleted */
	char *base;     /* mapping start */
	size_t len;     /* mapping length */
};

#define LARGE_CACHE_SLOTS 16
#define LARGE_CACHE_MAX_BYTES ((size_t)96 << 20)
#define LARGE_CACHE_MAX_ONE ((size_t)32 << 20)

#define LARGE_SHARDS 16

struct shard {
	pthread_mutex_t lock;      /* this shard's table */
	struct large_entry *table; /* open addressing, linear probing */
	size_t cap, used, tombs;   /* slots, live entries, deleted entries */
} __attribute__((aligned(64)));

static struct shard shards[LARGE_SHARDS] = {
	[0 ... LARGE_SHARDS - 1] = {.lock = PTHREAD_MUTEX_INITIALIZER},
};
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char *base;
	size_t len;
	bool aged; /* already cached at the previous aging pass: the next one sends it back */
} cache[LARGE_CACHE_SLOTS];
static size_t cache_n, cache_bytes;
static _Atomic uint64_t live_n, live_bytes;  /* mappings in the tables, their lengths */
static _Atomic uint64_t peak_n, peak_bytes;  /* the most of each at once (malloc_stats) */

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

static void raise_to(_Atomic uint64_t *peak, uint64_t v)
{
	uint64_t old = hak_load_relaxed(peak);
	while (v > old && !hak_cas_acq_rel(peak, &old, v))
		;
}

static int insert(struct shard *sh, uintptr_t user, char *base, size_t len)
{
	if (table_reserve(sh))
		return ENOMEM;
	size_t i = slot_of(user, sh->cap);
	while (sh->table[i].user > 1)
		i = (i + 1) & (sh->cap - 1);
	if (sh->table[i].user == 1)
		sh->tombs--;
	sh->table[i] = (struct large_entry){user, base, len};
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

/* A cached mapping for need bytes (lock held): the smallest of at least need bytes, else the
 * largest smaller one, which the caller grows with mremap (its pages stay resident, only the
 * extension is new). false when the cache is empty. */
static bool cache_take(size_t need, char **base, size_t *len)
{
	size_t best = LARGE_CACHE_SLOTS;
	for (size_t i = 0; i < cache_n; i++) {
		if (best == LARGE_CACHE_SLOTS) {
			best = i;
			continue;
		}
		bool fits = cache[i].len >= need, best_fits = cache[best].len >= need;
		if ((fits && (!best_fits || cache[i].len < cache[best].len)) ||
		    (!fits && !best_fits && cache[i].len > cache[best].len))
			best = i;
	}
	if (best == LARGE_CACHE_SLOTS)
		return false;
	*base = cache[best].base;
	*len = cache[best].len;
	cache_bytes -= *len;
	cache[best] = cache[--cache_n];
	return true;
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
	int err = insert(sh, (uintptr_t)base, base, len);
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
	char *base = e->base, *evict_base = NULL;
	size_t len = e->len, evict_len = 0;
	erase(sh, e);
	pthread_mutex_unlock(&sh->lock);
	if (len <= LARGE_CACHE_MAX_ONE) {
		pthread_mutex_lock(&cache_lock);
		if (cache_n && (cache_n == LARGE_CACHE_SLOTS || cache_bytes + len > LARGE_CACHE_MAX_BYTES)) {
			/* make room: send the oldest (slot 0) back */
			evict_base = cache[0].base;
			evict_len = cache[0].len;
			cache_bytes -= evict_len;
			cache[0] = cache[--cache_n];
		}
		if (cache_n < LARGE_CACHE_SLOTS && cache_bytes + len <= LARGE_CACHE_MAX_BYTES) {
			cache[cache_n].base = base;
			cache[cache_n].len = len;
			cache[cache_n++].aged = false;
			cache_bytes += len;
			base = NULL;
		}
		pthread_mutex_unlock(&cache_lock);
		int none = PASS_NONE;
		if (!base && hak_load_relaxed(&xpass_request) == PASS_NONE)
			hak_cas_strong(&xpass_request, &none, PASS_WANTED);
	}
	if (evict_base) {
		hak__os_unmap(evict_base, evict_len);
		hak_add_relaxed(&hak__g.large_released, 1);
	}
	if (base) {
		hak__os_unmap(base, len);
		hak_add_relaxed(&hak__g.large_released, 1);
	}
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
	size_t len = e->len;
	if (need <= len && need >= len / 2) {
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
	}
	sh = shard_lock((uintptr_t)q);
	int err = insert(sh, (uintptr_t)q, q, want);
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

/* One aging pass (the trim policy's periodic pass): cached mappings already aged at the previous
 * pass go back to the OS, the others are marked aged. Returns how many stay cached, so the
 * caller can ask for the pass that will send them back. */
unsigned hak__large_age(void)
{
	struct {
		char *base;
		size_t len;
	} out[LARGE_CACHE_SLOTS];
	unsigned n = 0;
	pthread_mutex_lock(&cache_lock);
	for (size_t i = 0; i < cache_n;) {
		if (!cache[i].aged) {
			cache[i++].aged = true;
			continue;
		}
		out[n].base = cache[i].base;
		out[n++].len = cache[i].len;
		cache_bytes -= cache[i].len;
		cache[i] = cache[--cache_n];
	}
	unsigned left = (unsigned)cache_n;
	hak_store_relaxed(&xpass_request, PASS_NONE);
	pthread_mutex_unlock(&cache_lock);
	for (unsigned i = 0; i < n; i++) {
		hak__os_unmap(out[i].base, out[i].len);
		hak_add_relaxed(&hak__g.large_released, 1);
	}
	return left;
}

/* Send cached mappings back until at most keep_bytes stay cached. */
unsigned hak__large_trim(size_t keep_bytes)
{
	unsigned n = 0;
	for (;;) {
		pthread_mutex_lock(&cache_lock);
		if (cache_n == 0 || cache_bytes <= keep_bytes) {
			pthread_mutex_unlock(&cache_lock);
			return n;
		}
		char *base = cache[0].base;
		size_t len = cache[0].len;
		cache_bytes -= len;
		cache[0] = cache[--cache_n];
		pthread_mutex_unlock(&cache_lock);
		hak__os_unmap(base, len);
		hak_add_relaxed(&hak__g.large_released, 1);
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

void hak__large_figures(struct hak_large_figures *out)
{
	out->live = hak_load_relaxed(&live_n);
	out->live_bytes = hak_load_relaxed(&live_bytes);
	out->peak = hak_load_relaxed(&peak_n);
	out->peak_bytes = hak_load_relaxed(&peak_bytes);
	pthread_mutex_lock(&cache_lock);
	out->cached = cache_n;
	out->cached_bytes = cache_bytes;
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
