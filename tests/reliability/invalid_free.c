/* invalid_free: makes ONE invalid call to the allocator, named by argv[1], after printing
 * "addr=<the pointer>" on stdout. The allocator must abort with one "hakmem:" line naming the
 * problem and that address (tests/reliability/run.sh checks both). If the call returns, the
 * program says so on stderr and exits 3: the invalid call went unnoticed.
 *   invalid_free CASE        CASE as listed in `cases` below; `invalid_free list` prints them */
#include "rel.h"

#include <pthread.h>

#define SMALL 48              /* a small size class */
#define LARGE ((size_t)1 << 20) /* above the largest small class: its own mapping */

static char global_block[64] __attribute__((aligned(16)));

/* Print the address, make it visible to the runner before anything can abort. */
static void announce(const void *p)
{
	printf("addr=%p\n", p);
	fflush(stdout);
}

/* The invalid call returned. Say so, and whether the heap is now corrupt: the block handed out
 * twice by the allocations that follow (only meaningful for blocks that were really freed). */
static void survived(const char *what, void *p, size_t size)
{
	int probe = size > 65536 ? 64 : 100000, twice = 0;
	if (size) {
		void *seen = NULL;
		for (int i = 0; i < probe; i++) {
			void *q = malloc(size);
			if (q == p && seen == p)
				twice = 1;
			if (q == p)
				seen = p;
		}
	}
	fprintf(stderr, "invalid_free: %s returned: the invalid call went unnoticed%s\n", what,
		twice ? ", and the block was then handed out twice (heap corrupted)" : "");
	exit(3);
}

static void double_free(void)
{
	char *p = malloc(SMALL);
	REL_CHECK(p, "malloc failed");
	free(p);
	announce(p);
	free(rel_opaque(p));
	survived("the second free", p, SMALL);
}

/* Freed first, then buried under other frees of its own class and of others. */
static void double_free_after_others(void)
{
	enum { N = 64 };
	void *same[N], *other[N];
	for (int i = 0; i < N; i++) {
		same[i] = malloc(SMALL);
		other[i] = malloc(16 + (size_t)i * 24);
		REL_CHECK(same[i] && other[i], "malloc failed");
	}
	void *p = same[0];
	free(p);
	for (int i = 1; i < N; i++)
		free(same[i]);
	for (int i = 0; i < N; i++)
		free(other[i]);
	announce(p);
	free(rel_opaque(p));
	survived("the second free", p, SMALL);
}

/* Freed first, then so many frees of its class that it leaves the thread cache (the cache
 * overflows into the ownership policy). */
static void double_free_after_flush(void)
{
	enum { N = 20000 };
	void **v = malloc(N * sizeof *v);
	REL_CHECK(v, "malloc failed");
	for (int i = 0; i < N; i++)
		REL_CHECK((v[i] = malloc(SMALL)) != NULL, "malloc failed");
	void *p = v[0];
	for (int i = 0; i < N; i++)
		free(v[i]);
	announce(p);
	free(rel_opaque(p));
	survived("the second free", p, SMALL);
}

/* ---- two threads ---- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static void *shared;
static int stage;

static void wait_stage(int s)
{
	pthread_mutex_lock(&mu);
	while (stage < s)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

static void set_stage(int s)
{
	pthread_mutex_lock(&mu);
	stage = s;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

/* Thread A: allocates and frees the block, then stays alive (stage 1) until B is done. */
static void *thread_a_alive(void *arg)
{
	(void)arg;
	void *p = malloc(SMALL);
	REL_CHECK(p, "malloc failed");
	free(p);
	shared = p;
	set_stage(1);
	wait_stage(2);
	return NULL;
}

/* Thread A, variant: allocates and frees the block, then exits (its cache is flushed). */
static void *thread_a_exits(void *arg)
{
	(void)arg;
	void *p = malloc(SMALL);
	REL_CHECK(p, "malloc failed");
	free(p);
	shared = p;
	return NULL;
}

/* Thread B: frees the block A already freed. */
static void *thread_b(void *arg)
{
	(void)arg;
	wait_stage(1);
	announce(shared);
	free(rel_opaque(shared));
	survived("the free on thread B", shared, SMALL);
	return NULL;
}

static void double_free_thread(void)
{
	pthread_t a, b;
	REL_CHECK(pthread_create(&a, NULL, thread_a_alive, NULL) == 0, "pthread_create failed");
	REL_CHECK(pthread_create(&b, NULL, thread_b, NULL) == 0, "pthread_create failed");
	pthread_join(b, NULL);
	set_stage(2);
	pthread_join(a, NULL);
}

static void *come_and_go(void *arg)
{
	free(malloc(SMALL));
	return arg;
}

/* Whatever a thread's exit and a new thread allocate is allocated before A frees its block:
 * made later, it could take the very address A freed (A's slab went back), and B's free would
 * free that. glibc allocates each new thread's TLS vector, and an allocator may start a helper
 * thread when the first thread exits; so a first thread comes and goes, and B is made first. */
static void double_free_thread_exited(void)
{
	pthread_t a, b;
	REL_CHECK(pthread_create(&a, NULL, come_and_go, NULL) == 0, "pthread_create failed");
	pthread_join(a, NULL);
	REL_CHECK(pthread_create(&b, NULL, thread_b, NULL) == 0, "pthread_create failed");
	REL_CHECK(pthread_create(&a, NULL, thread_a_exits, NULL) == 0, "pthread_create failed");
	pthread_join(a, NULL);
	set_stage(1);
	pthread_join(b, NULL);
}

/* The main thread allocates; thread A frees it (a remote free); the main thread frees it again. */
static void *free_it(void *p)
{
	free(p);
	return NULL;
}

static void double_free_remote(void)
{
	void *p = malloc(SMALL);
	REL_CHECK(p, "malloc failed");
	pthread_t a;
	REL_CHECK(pthread_create(&a, NULL, free_it, p) == 0, "pthread_create failed");
	pthread_join(a, NULL);
	announce(p);
	free(rel_opaque(p));
	survived("the second free", p, SMALL);
}

/* ---- pointers hakmem never handed out ---- */

static void free_stack(void)
{
	char local[64];
	memset(local, 1, sizeof local);
	void *p = local;
	malloc(SMALL); /* the allocator is up and running; leaked on purpose */
	announce(p);
	free(rel_opaque(p));
	survived("free of a stack address", NULL, 0);
}

static void free_global(void)
{
	void *p = global_block;
	malloc(SMALL);
	announce(p);
	free(rel_opaque(p));
	survived("free of a global", NULL, 0);
}

static void free_interior(void)
{
	char *b = malloc(256);
	REL_CHECK(b, "malloc failed");
	char *p = b + 64;
	announce(p);
	free(rel_opaque(p));
	survived("free of an interior pointer", NULL, 0);
}

static void free_misaligned(void)
{
	char *b = malloc(SMALL);
	REL_CHECK(b, "malloc failed");
	char *p = b + 1;
	announce(p);
	free(rel_opaque(p));
	survived("free of a misaligned pointer", NULL, 0);
}

static void large_double_free(void)
{
	char *p = malloc(LARGE);
	REL_CHECK(p, "malloc failed");
	memset(p, 7, LARGE);
	free(p);
	announce(p);
	free(rel_opaque(p));
	survived("the second free of a large block", p, LARGE);
}

static void large_interior(void)
{
	char *b = malloc(LARGE);
	REL_CHECK(b, "malloc failed");
	char *p = b + 4096;
	announce(p);
	free(rel_opaque(p));
	survived("free of an interior pointer of a large block", NULL, 0);
}

/* realloc of a freed block to a size that needs a new block. */
static void realloc_freed(void)
{
	char *p = malloc(SMALL);
	REL_CHECK(p, "malloc failed");
	free(p);
	announce(p);
	void *q = realloc(rel_opaque(p), 4 * SMALL);
	(void)q;
	survived("realloc of a freed pointer", p, SMALL);
}

/* realloc of a freed block to a size its block still holds (realloc may answer in place). */
static void realloc_freed_same(void)
{
	char *p = malloc(SMALL);
	REL_CHECK(p, "malloc failed");
	free(p);
	announce(p);
	void *q = realloc(rel_opaque(p), SMALL);
	(void)q;
	survived("realloc of a freed pointer to the same size", p, SMALL);
}

static void realloc_freed_large(void)
{
	char *p = malloc(LARGE);
	REL_CHECK(p, "malloc failed");
	free(p);
	announce(p);
	void *q = realloc(rel_opaque(p), 2 * LARGE);
	(void)q;
	survived("realloc of a freed large pointer", p, LARGE);
}

static const struct {
	const char *name;
	void (*run)(void);
} cases[] = {
	{"double_free", double_free},
	{"double_free_after_others", double_free_after_others},
	{"double_free_after_flush", double_free_after_flush},
	{"double_free_thread", double_free_thread},
	{"double_free_thread_exited", double_free_thread_exited},
	{"double_free_remote", double_free_remote},
	{"free_stack", free_stack},
	{"free_global", free_global},
	{"free_interior", free_interior},
	{"free_misaligned", free_misaligned},
	{"large_double_free", large_double_free},
	{"large_interior", large_interior},
	{"realloc_freed", realloc_freed},
	{"realloc_freed_same", realloc_freed_same},
	{"realloc_freed_large", realloc_freed_large},
};

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: invalid_free CASE|list\n");
		return 2;
	}
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		if (strcmp(argv[1], "list") == 0)
			printf("%s\n", cases[i].name);
		else if (strcmp(argv[1], cases[i].name) == 0) {
			/* stdout's buffer first: made later, by announce, it could take the very
			 * address a case freed, and the "invalid" free would free that buffer. */
			printf("case=%s\n", argv[1]);
			fflush(stdout);
			cases[i].run();
			return 3;
		}
	}
	if (strcmp(argv[1], "list") == 0)
		return 0;
	fprintf(stderr, "invalid_free: unknown case '%s'\n", argv[1]);
	return 2;
}
