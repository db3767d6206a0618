/* rlimit_as: under RLIMIT_AS the address space runs out. Once it has (1 MB blocks, then 64 KB,
 * then 64 B ones until NULL), every entry point asked for a block that needs a new mapping
 * returns NULL with errno ENOMEM (posix_memalign returns ENOMEM and leaves *memptr alone), and
 * small requests either succeed or fail the same way; nothing crashes. Then everything is freed
 * and the same space can be had again. Single-threaded, so no thread stack competes for space.
 *   rlimit_as [HEADROOM_MB]     address space allowed beyond what the process has (default 256) */
#include "rel.h"

#include <malloc.h>
#include <sys/resource.h>

#define MiB ((size_t)1 << 20)

struct list {
	void **v;
	size_t n, cap;
};

/* The list's own array comes from mmap, so it never competes with what is measured. */
static void list_push(struct list *l, void *p)
{
	if (l->n == l->cap) {
		static void **room;
		if (!room) {
			l->cap = 8 << 20; /* 8M pointers, reserved before the limit is set */
			room = malloc(l->cap * sizeof *room);
			REL_CHECK(room, "cannot reserve the pointer list");
			memset(room, 0, l->cap * sizeof *room);
			l->v = room;
		} else {
			REL_FAIL("more than %zu blocks: the limit is not in force", l->cap);
		}
	}
	l->v[l->n++] = p;
}

static size_t fill(struct list *l, size_t size)
{
	size_t got = 0;
	for (;;) {
		errno = 0;
		void *p = malloc(size);
		if (!p) {
			REL_CHECK(errno == ENOMEM, "malloc(%zu) returned NULL with errno %d, want ENOMEM", size, errno);
			return got;
		}
		((char *)p)[0] = 1;
		((char *)p)[size - 1] = 2;
		list_push(l, p);
		got++;
	}
}

#define EXPECT_ENOMEM(expr, what) do {                                                           \
		errno = 0;                                                                       \
		void *r_ = (expr);                                                               \
		int e_ = errno;                                                                  \
		REL_CHECK(!r_ && e_ == ENOMEM, "%s once memory is exhausted: %p, errno %d, want NULL ENOMEM", \
			  what, r_, e_);                                                         \
	} while (0)

/* Either a usable block or NULL with ENOMEM. */
#define EXPECT_BLOCK_OR_ENOMEM(expr, what, size) do {                                            \
		errno = 0;                                                                       \
		char *r_ = (expr);                                                               \
		int e_ = errno;                                                                  \
		if (r_) {                                                                        \
			memset(r_, 5, (size));                                                   \
			free(r_);                                                                \
		} else {                                                                         \
			REL_CHECK(e_ == ENOMEM, "%s: NULL with errno %d, want ENOMEM", what, e_);  \
		}                                                                                \
	} while (0)

static size_t vm_size(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	REL_CHECK(f, "cannot read /proc/self/status");
	char line[256];
	size_t kb = 0;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmSize: %zu kB", &kb) == 1)
			break;
	fclose(f);
	REL_CHECK(kb, "no VmSize in /proc/self/status");
	return kb << 10;
}

static void every_entry_point_fails(size_t n, void *small)
{
	EXPECT_ENOMEM(malloc(n), "malloc");
	EXPECT_ENOMEM(calloc(1, n), "calloc");
	EXPECT_ENOMEM(realloc(NULL, n), "realloc(NULL, n)");
	EXPECT_ENOMEM(realloc(small, n), "realloc(small block, n)");
	EXPECT_ENOMEM(reallocarray(small, n / 16, 16), "reallocarray");
	EXPECT_ENOMEM(memalign(4096, n), "memalign");
	EXPECT_ENOMEM(aligned_alloc(64, n), "aligned_alloc");
	EXPECT_ENOMEM(valloc(n), "valloc");
	EXPECT_ENOMEM(pvalloc(n), "pvalloc");
	void *mp = (void *)0x1234;
	int rc = posix_memalign(&mp, 64, n);
	REL_CHECK(rc == ENOMEM && mp == (void *)0x1234, "posix_memalign once memory is exhausted: %d, want ENOMEM", rc);
}

int main(int argc, char **argv)
{
	size_t headroom = (argc > 1 ? (size_t)atoi(argv[1]) : 256) * MiB;
	struct list l = {0};
	list_push(&l, malloc(16)); /* reserves the list before the limit */
	char *small = malloc(100);
	REL_CHECK(small, "malloc failed");
	strcpy(small, "still here");
	printf("rlimit_as: starting\n");
	fflush(stdout);

	struct rlimit rl = {vm_size() + headroom, RLIM_INFINITY};
	REL_CHECK(setrlimit(RLIMIT_AS, &rl) == 0, "setrlimit failed: %s", strerror(errno));

	size_t mb = fill(&l, MiB);
	size_t k64 = fill(&l, 64 << 10);
	size_t b64 = fill(&l, 64);
	REL_CHECK(mb > 0, "not a single 1 MB block under a %zu MB headroom", headroom >> 20);
	every_entry_point_fails(MiB, small);
	every_entry_point_fails(64 * MiB, small);
	REL_CHECK(strcmp(small, "still here") == 0, "a failed realloc damaged its block");
	EXPECT_BLOCK_OR_ENOMEM(malloc(64), "malloc(64)", 64);
	EXPECT_BLOCK_OR_ENOMEM(malloc(5000), "malloc(5000)", 5000);
	EXPECT_BLOCK_OR_ENOMEM(calloc(10, 100), "calloc(10, 100)", 1000);
	EXPECT_BLOCK_OR_ENOMEM(memalign(256, 1000), "memalign(256, 1000)", 1000);

	for (size_t i = 1; i < l.n; i++)
		free(l.v[i]);
	l.n = 1;
	/* Everything came back: the same space can be had again. Not all of it necessarily
	 * (caches, metadata), but at least half of the 1 MB blocks. */
	size_t again = fill(&l, MiB);
	REL_CHECK(again * 2 >= mb, "after freeing everything only %zu 1 MB blocks, first time %zu", again, mb);
	for (size_t i = 1; i < l.n; i++)
		free(l.v[i]);
	l.n = 1;
	void *p = malloc(MiB), *q = calloc(1000, 64), *r = memalign(4096, 100000);
	REL_CHECK(p && q && r, "allocation after freeing everything failed");
	free(p);
	free(q);
	free(r);
	small = realloc(small, 10000);
	REL_CHECK(small && strcmp(small, "still here") == 0, "realloc after freeing everything failed");
	free(small);
	printf("rlimit_as: %zu MB of headroom: %zu x 1 MB, %zu x 64 KB, %zu x 64 B until ENOMEM; every entry "
	       "point NULL/ENOMEM; %zu x 1 MB again after freeing: ok\n",
	       headroom >> 20, mb, k64, b64, again);
	return 0;
}
