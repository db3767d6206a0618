/* os.c: layer 0, everything hakmem asks of the kernel: aligned single mappings, purges, the
 * mapping budget against vm.max_map_count, the metadata arena, the clock and the process's RSS.
 * errno is preserved around munmap/madvise; a mapping failure is ENOMEM. */
#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "lock.h"

static _Atomic long hak__mappings;
static _Atomic long hak__mappings_peak;
/* Until the constructor reads vm.max_map_count, assume the kernel default minus a margin
 * left for the program's own mappings. */
static _Atomic unsigned long map_budget = 65530 - 4096;
static _Atomic int budget_warned;

void hak__os_set_map_budget(unsigned long budget)
{
	hak_store_relaxed(&map_budget, budget);
}

unsigned long hak__os_map_budget(void)
{
	return hak_load_relaxed(&map_budget);
}

static bool mapping_reserve(void)
{
	long n = hak_add_relaxed(&hak__mappings, 1) + 1;
	if (unlikely((unsigned long)n > hak_load_relaxed(&map_budget))) {
		hak_add_relaxed(&hak__mappings, -1);
		if (!atomic_exchange(&budget_warned, 1))
			hak__log("mapping budget of %lu reached (vm.max_map_count guard); allocation fails with ENOMEM",
				 hak_load_relaxed(&map_budget));
		return false;
	}
	long peak = hak_load_relaxed(&hak__mappings_peak);
	while (n > peak && !atomic_compare_exchange_weak(&hak__mappings_peak, &peak, n))
		;
	return true;
}

/* One mapping of `size` bytes aligned to `align` (a power of two >= page size): over-map by
 * align, then unmap the unaligned head and the tail so exactly one mapping remains. */
void *hak__os_map(size_t size, size_t align)
{
	if (!mapping_reserve()) {
		errno = ENOMEM;
		return NULL;
	}
	int saved = errno;
	size_t over = align > 4096 ? size + align : size;
	if (over < size) { /* overflow */
		hak_add_relaxed(&hak__mappings, -1);
		errno = ENOMEM;
		return NULL;
	}
	char *raw = mmap(NULL, over, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED) {
		hak_add_relaxed(&hak__mappings, -1);
		errno = ENOMEM;
		return NULL;
	}
	if (align > 4096) {
		char *base = (char *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
		size_t head = (size_t)(base - raw), tail = over - head - size;
		if (head)
			munmap(raw, head);
		if (tail)
			munmap(base + size, tail);
		raw = base;
	}
	errno = saved;
	return raw;
}

void hak__os_unmap(void *p, size_t size)
{
	int saved = errno;
	if (munmap(p, size) == 0)
		hak_add_relaxed(&hak__mappings, -1);
	errno = saved;
}

void hak__os_purge(void *p, size_t size)
{
	int saved = errno;
	madvise(p, size, MADV_DONTNEED);
	errno = saved;
}

void hak__os_advise_table(void *p, size_t size)
{
	int saved = errno;
	madvise(p, size, MADV_NOHUGEPAGE); /* a written entry costs a page, not 2 MB */
	madvise(p, size, MADV_DONTDUMP);   /* address space, not data: keep it out of core dumps */
	errno = saved;
}

long hak__os_mappings(void)
{
	return hak_load_relaxed(&hak__mappings);
}

long hak__os_mappings_peak(void)
{
	return hak_load_relaxed(&hak__mappings_peak);
}

/* Resident bytes: the second field of /proc/self/statm, in pages. No stdio, no allocation. */
uint64_t hak__process_rss(void)
{
	int saved = errno;
	char buf[96];
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
	if (fd >= 0)
		close(fd);
	errno = saved;
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	const char *p = buf;
	while (*p && *p != ' ')
		p++;
	uint64_t pages = 0;
	for (p++; *p >= '0' && *p <= '9'; p++)
		pages = pages * 10 + (uint64_t)(*p - '0');
	return pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

uint64_t hak__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Metadata arena: thread states, address-map leaves, the large-block table. Bump allocation
 * from 1 MB chunks under a spin flag; nothing here is ever returned to the OS. */
static atomic_flag meta_busy = ATOMIC_FLAG_INIT;
static char *meta_cur, *meta_end;

void *hak__meta_alloc(size_t size)
{
	size = (size + 63) & ~(size_t)63;
	hak__held_push(&meta_busy); /* lock.h: a fork from a signal handler must not wait for it */
	while (atomic_flag_test_and_set_explicit(&meta_busy, memory_order_acquire))
		;
	void *p = NULL;
	if ((size_t)(meta_end - meta_cur) < size) {
		size_t chunk = size > (1u << 20) ? (size + 4095) & ~(size_t)4095 : (1u << 20);
		char *c = hak__os_map(chunk, 4096);
		if (!c)
			goto out;
		meta_cur = c;
		meta_end = c + chunk;
	}
	p = meta_cur;
	meta_cur += size;
out:
	atomic_flag_clear_explicit(&meta_busy, memory_order_release);
	hak__held_pop(&meta_busy);
	return p;
}

/* fork(): hold the arena across it so the child never sees a half-made bump. A fork from a
 * signal handler may go on without it (lock.h): the bump it copied may be half made (a new
 * chunk's start with the old chunk's end), so that child drops the rest of the chunk (a leak)
 * and its next allocation maps a new one. */
static bool fork_without_arena;

bool hak__os_fork_prepare(void)
{
	if (!hak__fork_take(&hak__fork_flag_ops, &meta_busy))
		return false;
	fork_without_arena = !hak__fork_took(&meta_busy);
	return true;
}

void hak__os_fork_child(void)
{
	if (fork_without_arena) {
		fork_without_arena = false;
		meta_cur = meta_end = NULL;
	}
	atomic_flag_clear_explicit(&meta_busy, memory_order_release);
}
