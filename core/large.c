/* large.c: blocks above HAK_SMALL_MAX (and over-aligned ones): one mapping each, found through
 * an open-addressing table keyed by the block's address, so an unknown pointer is recognised.
 * Freed mappings wait in a small cache for reuse (realloc chains, repeated 5-25 MB blocks)
 * until a trim pass or the cache limit sends them back. */
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

static pthread_mutex_t large_lock = PTHREAD_MUTEX_INITIALIZER;
static struct large_entry *table;
static size_t table_cap, table_used, table_tombs;
static struct {
	char *base;
	size_t len;
} cache[LARGE_CACHE_SLOTS];
static size_t cache_n, cache_bytes;
static uint64_t live_n;

static size_t slot_of(uintptr_t user, size_t cap)
{
	return (size_t)((user >> 12) * UINT64_C(0x9E3779B97F4A7C15) >> 20) & (cap - 1);
}

static struct large_entry *find(uintptr_t user)
{
	if (!table)
		return NULL;
	for (size_t i = slot_of(user, table_cap);; i = (i + 1) & (table_cap - 1)) {
		if (table[i].user == user)
			return &table[i];
		if (table[i].user == 0)
			return NULL;
	}
}

/* Grow (or clean) the table when it is 3/4 full counting tombstones. Old tables are leaked to
 * the metadata arena: growth is geometric and rare. */
static int table_reserve(void)
{
	if (table && (table_used + table_tombs + 1) * 4 < table_cap * 3)
		return 0;
	size_t cap = table_cap ? table_cap : 1024;
	while ((table_used + 1) * 2 > cap)
		cap *= 2;
	struct large_entry *t = hak__meta_alloc(cap * sizeof *t);
	if (!t)
		return ENOMEM;
	for (size_t i = 0; i < table_cap; i++)
		if (table[i].user > 1) {
			size_t j = slot_of(table[i].user, cap);
			while (t[j].user)
				j = (j + 1) & (cap - 1);
			t[j] = table[i];
		}
	table = t;
	table_cap = cap;
	table_tombs = 0;
	return 0;
}

static int insert(uintptr_t user, char *base, size_t len)
{
	if (table_reserve())
		return ENOMEM;
	size_t i = slot_of(user, table_cap);
	while (table[i].user > 1)
		i = (i + 1) & (table_cap - 1);
	if (table[i].user == 1)
		table_tombs--;
	table[i] = (struct large_entry){user, base, len};
	table_used++;
	live_n++;
	return 0;
}

static void erase(struct large_entry *e)
{
	e->user = 1;
	table_used--;
	table_tombs++;
	live_n--;
}

/* Best fitting cached mapping of at least need bytes and at most twice that (lock held). */
static bool cache_take(size_t need, char **base, size_t *len)
{
	size_t best = LARGE_CACHE_SLOTS;
	for (size_t i = 0; i < cache_n; i++)
		if (cache[i].len >= need && cache[i].len / 2 <= need &&
		    (best == LARGE_CACHE_SLOTS || cache[i].len < cache[best].len))
			best = i;
	if (best == LARGE_CACHE_SLOTS)
		return false;
	*base = cache[best].base;
	*len = cache[best].len;
	cache_bytes -= *len;
	cache[best] = cache[--cache_n];
	return true;
}

void *hak__large_alloc(size_t n, size_t align, bool zero)
{
	if (n > PTRDIFF_MAX - ((size_t)1 << 21) || align > ((size_t)1 << 30)) {
		errno = ENOMEM;
		return NULL;
	}
	size_t need = (n + 4095) & ~(size_t)4095;
	if (need == 0)
		need = 4096;
	char *base = NULL;
	size_t len = need;
	bool fresh = true;
	pthread_mutex_lock(&large_lock);
	if (align <= 4096 && cache_take(need, &base, &len))
		fresh = false;
	pthread_mutex_unlock(&large_lock);
	if (!base) {
		base = hak__os_map(need, align > 4096 ? align : 4096);
		if (!base)
			return NULL;
		hak_add_relaxed(&hak__g.large_mapped, 1);
	}
	if (zero && !fresh)
		memset(base, 0, n);
	pthread_mutex_lock(&large_lock);
	int err = insert((uintptr_t)base, base, len);
	pthread_mutex_unlock(&large_lock);
	if (err) {
		hak__os_unmap(base, len);
		errno = ENOMEM;
		return NULL;
	}
	return base;
}

bool hak__large_free(void *p)
{
	char *evict_base = NULL;
	size_t evict_len = 0;
	pthread_mutex_lock(&large_lock);
	struct large_entry *e = find((uintptr_t)p);
	if (!e) {
		pthread_mutex_unlock(&large_lock);
		return false;
	}
	char *base = e->base;
	size_t len = e->len;
	erase(e);
	if (len <= LARGE_CACHE_MAX_ONE) {
		if (cache_n == LARGE_CACHE_SLOTS || cache_bytes + len > LARGE_CACHE_MAX_BYTES) {
			/* make room: send the oldest (slot 0) back */
			if (cache_n) {
				evict_base = cache[0].base;
				evict_len = cache[0].len;
				cache_bytes -= evict_len;
				cache[0] = cache[--cache_n];
			}
		}
		if (cache_n < LARGE_CACHE_SLOTS && cache_bytes + len <= LARGE_CACHE_MAX_BYTES) {
			cache[cache_n].base = base;
			cache[cache_n++].len = len;
			cache_bytes += len;
			base = NULL;
		}
	}
	pthread_mutex_unlock(&large_lock);
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
	pthread_mutex_lock(&large_lock);
	struct large_entry *e = find((uintptr_t)p);
	size_t n = e ? e->len - (size_t)((const char *)p - e->base) : 0;
	pthread_mutex_unlock(&large_lock);
	return n;
}

/* Large to large: mremap keeps it one mapping and avoids the copy. Anything else: not handled. */
void *hak__large_realloc(void *p, size_t n, bool *handled)
{
	*handled = false;
	if (n <= HAK_SMALL_MAX || n > PTRDIFF_MAX - ((size_t)1 << 21))
		return NULL;
	size_t need = (n + 4095) & ~(size_t)4095;
	pthread_mutex_lock(&large_lock);
	struct large_entry *e = find((uintptr_t)p);
	if (!e || (uintptr_t)e->base != (uintptr_t)p) { /* unknown, or over-aligned: copy */
		pthread_mutex_unlock(&large_lock);
		return NULL;
	}
	*handled = true;
	if (need <= e->len && need >= e->len / 2) {
		pthread_mutex_unlock(&large_lock);
		return p;
	}
	int saved = errno;
	char *q = mremap(e->base, e->len, need, MREMAP_MAYMOVE);
	if (q == MAP_FAILED) {
		pthread_mutex_unlock(&large_lock);
		errno = ENOMEM;
		return NULL; /* the old block stays intact */
	}
	errno = saved;
	erase(e);
	insert((uintptr_t)q, q, need); /* cannot fail: we just freed a slot */
	pthread_mutex_unlock(&large_lock);
	return q;
}

/* Send cached mappings back until at most keep_bytes stay cached. */
unsigned hak__large_trim(size_t keep_bytes)
{
	unsigned n = 0;
	for (;;) {
		pthread_mutex_lock(&large_lock);
		if (cache_n == 0 || cache_bytes <= keep_bytes) {
			pthread_mutex_unlock(&large_lock);
			return n;
		}
		char *base = cache[0].base;
		size_t len = cache[0].len;
		cache_bytes -= len;
		cache[0] = cache[--cache_n];
		pthread_mutex_unlock(&large_lock);
		hak__os_unmap(base, len);
		hak_add_relaxed(&hak__g.large_released, 1);
		n++;
	}
}

void hak__large_stats(uint64_t *live, uint64_t *cached)
{
	pthread_mutex_lock(&large_lock);
	*live = live_n;
	*cached = cache_n;
	pthread_mutex_unlock(&large_lock);
}

void hak__large_fork_prepare(void)
{
	pthread_mutex_lock(&large_lock);
}

void hak__large_fork_parent(void)
{
	pthread_mutex_unlock(&large_lock);
}

void hak__large_fork_child(void)
{
	pthread_mutex_init(&large_lock, NULL);
}
