/* sizesweep: single-thread malloc/free per size class. For each size on a ladder of four steps
 * per power of two between MIN and MAX (16 B to 1 MB by default), keep a small window of live
 * blocks and replace random victims for an equal share of SECONDS.
 *
 * usage: sizesweep [SECONDS MIN MAX WINDOW]   (defaults 10 16 1048576 64; MIN == MAX runs one size)
 * ops_per_sec is the GEOMETRIC MEAN of the per-size rates, so no size band drowns the others;
 * mops_by_size lists every size's rate in millions of pairs per second. */
#include "bench_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define USAGE "[SECONDS MIN MAX WINDOW]"

enum { MAX_SIZES = 128, MAX_WINDOW = 1024 };
static const size_t WINDOW_BYTES = 32u << 20; /* large sizes get a smaller window */

struct block {
	void *p;
	uint64_t tag;
};

/* Sizes p, 1.25p, 1.5p, 1.75p for each power of two p, clipped to [lo, hi]; lo and hi included. */
static int size_ladder(size_t lo, size_t hi, size_t *out)
{
	int n = 0;
	out[n++] = lo;
	for (size_t p = 16; p <= hi && n < MAX_SIZES - 1; p *= 2)
		for (int q = 4; q < 8 && n < MAX_SIZES - 1; q++) {
			size_t s = p * (size_t)q / 4;
			if (s > lo && s < hi)
				out[n++] = s;
		}
	if (hi > lo)
		out[n++] = hi;
	return n;
}

/* Runs one size for about `slice` seconds; returns pairs done and adds the time taken. */
static unsigned long long run_size(size_t size, int window, double slice, uint64_t *rng, double *secs)
{
	struct block blocks[MAX_WINDOW];
	uint64_t tag = size << 32;
	for (int i = 0; i < window; i++) {
		blocks[i].p = malloc(size);
		if (!blocks[i].p)
			bench_nomem("sizesweep", size);
		blocks[i].tag = tag++;
		block_fill(blocks[i].p, size, blocks[i].tag);
	}
	unsigned long long ops = 0;
	double start = now_sec(), elapsed;
	do {
		for (int k = 0; k < 64; k++) {
			struct block *b = &blocks[rng_next(rng) % (uint64_t)window];
			block_check("sizesweep", b->p, size, b->tag);
			free(b->p);
			b->p = malloc(size);
			if (!b->p)
				bench_nomem("sizesweep", size);
			b->tag = tag++;
			block_fill(b->p, size, b->tag);
		}
		ops += 64;
		elapsed = now_sec() - start;
	} while (elapsed < slice);
	for (int i = 0; i < window; i++) {
		block_check("sizesweep", blocks[i].p, size, blocks[i].tag);
		free(blocks[i].p);
	}
	*secs += elapsed;
	return ops;
}

int main(int argc, char **argv)
{
	double seconds = arg_double(argc, argv, 1, 10, USAGE);
	size_t lo = (size_t)arg_long(argc, argv, 2, 16, USAGE);
	size_t hi = (size_t)arg_long(argc, argv, 3, 1 << 20, USAGE);
	long max_window = arg_long(argc, argv, 4, 64, USAGE);
	if (lo == 0 || hi < lo || max_window < 1 || max_window > MAX_WINDOW) {
		fprintf(stderr, "usage: %s %s (need 0 < MIN <= MAX, 1 <= WINDOW <= %d)\n", argv[0],
			USAGE, MAX_WINDOW);
		return BENCH_EXIT_USAGE;
	}
	size_t sizes[MAX_SIZES];
	int nsizes = size_ladder(lo, hi, sizes);
	double slice = seconds / nsizes;

	sampler_start(seconds / 100);
	uint64_t rng = rng_seed(42);
	unsigned long long ops = 0;
	double secs = 0, log_rate_sum = 0;
	char by_size[MAX_SIZES * 24];
	size_t used = 0;
	for (int i = 0; i < nsizes; i++) {
		size_t window = WINDOW_BYTES / sizes[i];
		window = window < 2 ? 2 : window > (size_t)max_window ? (size_t)max_window : window;
		double size_secs = 0;
		unsigned long long size_ops = run_size(sizes[i], (int)window, slice, &rng, &size_secs);
		double rate = (double)size_ops / size_secs;
		ops += size_ops;
		secs += size_secs;
		log_rate_sum += log(rate);
		used += (size_t)snprintf(by_size + used, sizeof by_size - used, "%s%zu:%.3f",
					 i ? "," : "", sizes[i], rate / 1e6);
	}

	char extra[sizeof by_size + 64];
	snprintf(extra, sizeof extra, " sizes=%d min=%zu max=%zu mops_by_size=%s", nsizes, lo, hi,
		 by_size);
	struct bench_result r = { .workload = "sizesweep", .threads = 1, .ops = ops, .secs = secs,
				  .ops_per_sec = exp(log_rate_sum / nsizes) };
	result_print(&r, extra);
	return 0;
}
