/* churn: the tightest single-thread malloc(n)/free loop, a fixed number of iterations, for
 * instruction counting under valgrind --tool=callgrind. bench/run.py runs it twice with different
 * ITERS and divides the difference, so start-up cost cancels; MODE=baseline runs the same loop
 * against a do-nothing allocator so the loop's own instructions can be subtracted too.
 *
 * MODE live is the whole-program churn: 1000 blocks stay live, and each iteration frees a random
 * one and allocates a new one of a random size of 16..128 B in its place (SIZE is ignored); the
 * runner compares the whole run's instructions, start-up and exit included, between allocators.
 *
 * usage: churn [ITERS SIZE MODE]   (defaults 1000000 32 malloc; SIZE 0 cycles 16..128 B;
 *                                   MODE malloc|baseline|live) */
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USAGE "[ITERS SIZE malloc|baseline|live]"

static void *volatile sink; /* keeps the compiler from deleting a malloc/free pair */

/* The baseline "allocator": a call and a return each, like a real one reached through the PLT. */
static unsigned char baseline_block[256];
__attribute__((noinline)) static void *baseline_malloc(size_t n)
{
	__asm__ volatile("" : : "r"(n) : "memory");
	return baseline_block;
}
__attribute__((noinline)) static void baseline_free(void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

/* MODE live: LIVE blocks of 16..128 B, each iteration replaces a random one. */
__attribute__((noinline)) static int churn_live(unsigned long long iters)
{
	enum { LIVE = 1000 };
	static unsigned char *live[LIVE];
	uint64_t rng = rng_seed(12);
	for (int i = 0; i < LIVE; i++)
		if (!(live[i] = malloc(rng_range(&rng, 16, 128))))
			bench_nomem("churn", 128);
	double start = now_sec();
	for (unsigned long long i = 0; i < iters; i++) {
		uint64_t r = rng_next(&rng);
		unsigned k = (unsigned)(r % LIVE);
		size_t n = 16 + (size_t)((r >> 32) % 113);
		free(live[k]);
		if (!(live[k] = malloc(n)))
			bench_nomem("churn", n);
		live[k][0] = (unsigned char)i;
	}
	double secs = now_sec() - start;
	for (int i = 0; i < LIVE; i++)
		free(live[i]);
	struct bench_result r = { .workload = "churn", .threads = 1, .ops = iters, .secs = secs };
	result_print(&r, " size=16-128 mode=live live=1000");
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long long iters = (unsigned long long)arg_long(argc, argv, 1, 1000000, USAGE);
	size_t size = (size_t)arg_long(argc, argv, 2, 32, USAGE);
	const char *mode = argc > 3 ? argv[3] : "malloc";
	int baseline = strcmp(mode, "baseline") == 0;
	if (strcmp(mode, "live") == 0)
		return churn_live(iters);
	if (!baseline && strcmp(mode, "malloc") != 0) {
		fprintf(stderr, "usage: %s %s\n", argv[0], USAGE);
		return BENCH_EXIT_USAGE;
	}

	/* A few blocks of every size stay live for the whole run, so the churned block's page is
	 * never empty: otherwise page-retire logic (mimalloc's) would run on every free, which no
	 * real program sees. */
	enum { KEEP = 32 };
	void *keep[8 * KEEP];
	for (int i = 0; i < 8 * KEEP; i++) {
		size_t n = size ? size : 16 + (size_t)(i & 7) * 16;
		keep[i] = baseline ? NULL : malloc(n);
		if (!baseline && !keep[i])
			bench_nomem("churn", n);
	}

	double start = now_sec();
	for (unsigned long long i = 0; i < iters; i++) {
		size_t n = size ? size : 16 + (size_t)(i & 7) * 16;
		unsigned char *p = baseline ? baseline_malloc(n) : malloc(n);
		if (!p)
			bench_nomem("churn", n);
		p[0] = (unsigned char)i;
		sink = p;
		if (baseline)
			baseline_free(p);
		else
			free(p);
	}
	double secs = now_sec() - start;
	for (int i = 0; i < 8 * KEEP; i++)
		free(keep[i]);

	char extra[64];
	snprintf(extra, sizeof extra, " size=%zu mode=%s", size, mode);
	struct bench_result r = { .workload = "churn", .threads = 1, .ops = iters, .secs = secs };
	result_print(&r, extra);
	return 0;
}
