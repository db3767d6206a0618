/* mstress: the multi-threaded stress test of mimalloc-bench (`mstress`, after mimalloc's
 * test-stress.c by Daan Leijen, MIT), rewritten for the lab with the same size distribution,
 * lifetimes and transfers, so its figures compare with the published ones.
 * Each of ITER rounds starts THREADS threads and joins them. Thread i makes
 * 100 * SCALE * (i % 8 + 1) short-lived allocations and half as many retained ones (each
 * calloc of 2^k words: k < 5 short-lived, k < 7 retained; 2% of them are 100x bigger, of those
 * 11% 1000x and 2% 10000x, so blocks range from 8 B to about 5 MB); at each step it frees a
 * random earlier block with 66% chance and swaps one with a 1000-slot transfer array shared by
 * every thread with 25% chance (cross-thread frees, blocks outliving their thread). After a
 * round, main frees half of the transfer slots (all of them after the last round). Every word
 * of a block is filled after calloc and checked before free; its first and last words are
 * checked for zero.
 *
 * usage: mstress [THREADS SCALE ITER]   (defaults 4 50 100: mimalloc-bench's `mstress 4 50 100`)
 * ops counts allocations; secs is the wall time of all rounds. large_allocs counts blocks above
 * 128 KB, big_allocs blocks of 64 KB and more. The work is fixed: the run takes as long as the
 * allocator needs. */
#include "bench_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define USAGE "[THREADS SCALE ITER]"

enum { TRANSFERS = 1000 };

static const uintptr_t COOKIE = 0xbf58476d1ce4e5b9u;

static struct {
	long scale;
	_Atomic(uintptr_t *) transfer[TRANSFERS];
	atomic_ullong xallocs, xlarge, xbig;
} g;

/* mimalloc's generator: its mixer applied to its own output (same sequence as the original). */
static uintptr_t pick(uintptr_t *r)
{
	uintptr_t x = *r;
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9u;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebu;
	x ^= x >> 31;
	*r = x;
	return x;
}

static int chance(unsigned perc, uintptr_t *r)
{
	return pick(r) % 100 <= perc; /* as the original: perc + 1 percent */
}

struct counts {
	unsigned long long allocs, large, big;
};

static uintptr_t *alloc_items(size_t items, uintptr_t *r, struct counts *c)
{
	if (chance(1, r)) {
		if (chance(1, r))
			items *= 10000;
		else if (chance(10, r))
			items *= 1000;
		else
			items *= 100;
	}
	if (items == 40)
		items++; /* the original avoids the size glibc's pthread uses for stacks */
	uintptr_t *p = calloc(items, sizeof *p);
	if (!p)
		bench_nomem("mstress", items * sizeof *p);
	c->allocs++;
	c->large += items * sizeof *p > ((size_t)128 << 10);
	c->big += items * sizeof *p >= ((size_t)64 << 10);
	/* The first and last words are checked for zero once the words between are written, so
	 * the check reads pages already faulted in (a read first would fault twice: zero page,
	 * then copy on write) and the fault count stays the original's. */
	for (size_t i = 1; i + 1 < items; i++)
		p[i] = (items - i) ^ COOKIE;
	if (p[0] != 0 || p[items - 1] != 0)
		bench_corrupt("mstress (calloc did not zero)", p, items * sizeof *p);
	p[0] = items ^ COOKIE;
	p[items - 1] = 1 ^ COOKIE;
	return p;
}

static void free_items(uintptr_t *p)
{
	if (!p)
		return;
	uintptr_t items = p[0] ^ COOKIE;
	for (uintptr_t i = 0; i < items; i++)
		if ((p[i] ^ COOKIE) != items - i)
			bench_corrupt("mstress", p, items * sizeof *p);
	free(p);
}

static void *stress(void *arg)
{
	struct bench_worker *w = arg;
	struct counts c = {0, 0, 0};
	uintptr_t r = (uintptr_t)(w->id + 1) * 43;
	size_t allocs = 100 * (size_t)g.scale * (size_t)(w->id % 8 + 1);
	size_t retain = allocs / 2;
	uintptr_t **data = NULL;
	size_t data_size = 0, data_top = 0;
	uintptr_t **retained = calloc(retain, sizeof *retained);
	if (!retained)
		bench_nomem("mstress", retain * sizeof *retained);
	size_t retain_top = 0;
	while (allocs > 0 || retain > 0) {
		if (retain == 0 || (chance(50, &r) && allocs > 0)) {
			allocs--;
			if (data_top >= data_size) {
				data_size += 100000;
				uintptr_t **d = realloc(data, data_size * sizeof *data);
				if (!d)
					bench_nomem("mstress", data_size * sizeof *data);
				data = d;
			}
			data[data_top++] = alloc_items((size_t)1 << (pick(&r) % 5), &r, &c);
		} else {
			retained[retain_top++] = alloc_items((size_t)1 << (pick(&r) % 7), &r, &c);
			retain--;
		}
		if (chance(66, &r) && data_top > 0) {
			size_t idx = pick(&r) % data_top;
			free_items(data[idx]);
			data[idx] = NULL;
		}
		if (chance(25, &r) && data_top > 0) {
			size_t idx = pick(&r) % data_top, t = pick(&r) % TRANSFERS;
			data[idx] = atomic_exchange(&g.transfer[t], data[idx]);
		}
	}
	for (size_t i = 0; i < retain_top; i++)
		free_items(retained[i]);
	for (size_t i = 0; i < data_top; i++)
		free_items(data[i]);
	free(retained);
	free(data);
	atomic_fetch_add(&g.xallocs, c.allocs);
	atomic_fetch_add(&g.xlarge, c.large);
	atomic_fetch_add(&g.xbig, c.big);
	w->ops = c.allocs;
	return NULL;
}

int main(int argc, char **argv)
{
	int nthreads = (int)arg_long(argc, argv, 1, 4, USAGE);
	g.scale = arg_long(argc, argv, 2, 50, USAGE);
	long iters = arg_long(argc, argv, 3, 100, USAGE);
	if (nthreads < 1 || nthreads > 1024 || g.scale < 1 || g.scale > 100000 || iters < 1) {
		fprintf(stderr, "usage: %s %s (need 1 <= THREADS <= 1024, 1 <= SCALE <= 100000, ITER >= 1)\n",
			argv[0], USAGE);
		return BENCH_EXIT_USAGE;
	}
	struct bench_worker *ws = calloc((size_t)nthreads, sizeof *ws);
	if (!ws)
		bench_nomem("mstress", (size_t)nthreads * sizeof *ws);
	uintptr_t r = 1804289383u; /* glibc's first rand(), which the original uses */
	sampler_start(0.01);
	double start = now_sec();
	for (long n = 0; n < iters; n++) {
		bench_run_workers("mstress", ws, nthreads, stress);
		for (int i = 0; i < TRANSFERS; i++)
			if (chance(50, &r) || n + 1 == iters)
				free_items(atomic_exchange(&g.transfer[i], NULL));
	}
	double secs = now_sec() - start;
	free(ws);
	char extra[128];
	snprintf(extra, sizeof extra, " scale=%ld iters=%ld large_allocs=%llu big_allocs=%llu", g.scale, iters,
		 (unsigned long long)atomic_load(&g.xlarge), (unsigned long long)atomic_load(&g.xbig));
	struct bench_result res = { .workload = "mstress", .threads = nthreads,
				    .ops = atomic_load(&g.xallocs), .secs = secs };
	result_print(&res, extra);
	return 0;
}
