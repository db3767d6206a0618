/* map_budget: run with a configuration whose [core] map_budget is tiny (the runner writes one
 * with map_budget = 16). Allocation must fail with ENOMEM at the budget, the program goes on,
 * frees work; hakmem prints exactly ONE diagnostic line for the whole run (the runner checks
 * stderr), however often the budget is hit.
 * Exit 0: and after freeing everything, memory could be had again every round. Exit 4: all of
 * the above held, but some allocation after freeing everything still failed (one line on
 * stderr says which); the runner reports that as a known gap.
 *   map_budget BUDGET */
#include "rel.h"

#include <malloc.h>

#define MiB ((size_t)1 << 20)
#define MAX_SMALL (4u << 20)

static void *small_blocks[MAX_SMALL];

/* 1 MB blocks (one mapping each) until NULL; returns how many. */
static size_t fill_large(void **v, size_t max)
{
	size_t n = 0;
	for (;;) {
		errno = 0;
		void *p = malloc(MiB);
		if (!p) {
			REL_CHECK(errno == ENOMEM, "malloc(1 MB) past the budget: errno %d, want ENOMEM", errno);
			return n;
		}
		REL_CHECK(n < max, "%zu blocks of 1 MB and no failure: the budget is not in force", n);
		memset(p, 1, 4096);
		v[n++] = p;
	}
}

static size_t fill_small(void)
{
	size_t n = 0;
	for (;;) {
		errno = 0;
		void *p = malloc(64);
		if (!p) {
			REL_CHECK(errno == ENOMEM, "malloc(64) past the budget: errno %d, want ENOMEM", errno);
			return n;
		}
		REL_CHECK(n < MAX_SMALL, "%zu blocks of 64 B and no failure: the budget is not in force", n);
		memset(p, 2, 64);
		small_blocks[n++] = p;
	}
}

static void every_entry_point_fails(void)
{
	void *r;
	errno = 0;
	REL_CHECK(!(r = calloc(1, MiB)) && errno == ENOMEM, "calloc past the budget: %p errno %d", r, errno);
	errno = 0;
	REL_CHECK(!(r = realloc(NULL, MiB)) && errno == ENOMEM, "realloc past the budget: %p errno %d", r, errno);
	errno = 0;
	REL_CHECK(!(r = memalign(4096, MiB)) && errno == ENOMEM, "memalign past the budget: %p errno %d", r, errno);
	errno = 0;
	REL_CHECK(!(r = aligned_alloc(64, MiB)) && errno == ENOMEM, "aligned_alloc past the budget: %p errno %d", r,
		  errno);
	void *mp = NULL;
	int rc = posix_memalign(&mp, 64, MiB);
	REL_CHECK(rc == ENOMEM, "posix_memalign past the budget: %d", rc);
}

int main(int argc, char **argv)
{
	REL_CHECK(argc == 2, "usage: map_budget BUDGET");
	size_t budget = (size_t)atoi(argv[1]);
	REL_CHECK(rel_is_hakmem(), "hakmem is not this process's allocator");
	printf("map_budget: starting\n");
	fflush(stdout);
	void *large[64];
	size_t rounds = 3, first_large = 0, first_small = 0;
	char gap[200] = "";
	for (size_t round = 0; round < rounds; round++) {
		size_t nl = fill_large(large, budget + 1);
		size_t ns = fill_small();
		every_entry_point_fails();
		/* The program goes on: frees work, then allocation works again. */
		for (size_t i = 0; i < nl; i++)
			free(large[i]);
		for (size_t i = 0; i < ns; i++)
			free(small_blocks[i]);
		void *q = malloc(100), *p = malloc(MiB);
		if ((!p || !q) && !gap[0])
			snprintf(gap, sizeof gap, "round %zu: after freeing everything, malloc(%s) still fails (errno %d)",
				 round, !q ? "100" : "1 MB", errno);
		free(p);
		free(q);
		if (round == 0) {
			first_large = nl;
			first_small = ns;
		}
	}
	if (gap[0]) {
		fprintf(stderr, "map_budget: %s\n", gap);
		return 4;
	}
	printf("map_budget: budget %zu: %zu x 1 MB then %zu x 64 B until ENOMEM, freed, again, %zu rounds: ok\n",
	       budget, first_large, first_small, rounds);
	return 0;
}
