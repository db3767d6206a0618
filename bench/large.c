/* large: big blocks. Each thread keeps LIVE blocks of MIN-MAX bytes (5-25 MB by default),
 * replaces a random one at a time, and touches every page of each new block, so the cost of
 * mapping, faulting and returning large memory is what gets measured.
 *
 * usage: large [SECONDS THREADS MIN MAX LIVE LINGER]   (defaults 10 1 5242880 26214400 4 0)
 * ops counts malloc+free replacements; the clock starts once every thread holds its first blocks.
 * LINGER seconds pass idle after the last free before the final RSS is read (what an allocator
 * gives back once the program goes quiet, not only at the free). */
#include "bench_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define USAGE "[SECONDS THREADS MIN MAX LIVE LINGER]"

enum { MAX_LIVE = 64, PAGE = 4096 };

struct block {
	unsigned char *p;
	size_t size;
	uint64_t tag;
};

static struct {
	double seconds;
	size_t min_size, max_size;
	int live;
	pthread_barrier_t ready;  /* every thread has its first LIVE blocks; the clock starts */
} cfg;

struct worker {
	pthread_t thread;
	int id;
	unsigned long long ops;
};

/* Writes the tag on every page: that is both the touch and the pattern. */
static void large_fill(struct block *b)
{
	for (size_t off = 0; off + 8 < b->size; off += PAGE)
		block_fill(b->p + off, 8, b->tag ^ off);
	block_fill(b->p + b->size - 1, 1, b->tag);
}

static void large_check(const struct block *b)
{
	for (size_t off = 0; off + 8 < b->size; off += PAGE)
		if (!block_ok(b->p + off, 8, b->tag ^ off))
			bench_corrupt("large", b->p, b->size);
	block_check("large", b->p + b->size - 1, 1, b->tag);
}

static void block_new(struct block *b, uint64_t *rng, uint64_t tag)
{
	b->size = rng_range(rng, cfg.min_size, cfg.max_size);
	b->p = malloc(b->size);
	if (!b->p)
		bench_nomem("large", b->size);
	b->tag = tag;
	large_fill(b);
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	uint64_t rng = rng_seed((uint64_t)w->id + 7);
	uint64_t tag = (uint64_t)w->id << 40;
	struct block blocks[MAX_LIVE];
	for (int i = 0; i < cfg.live; i++)
		block_new(&blocks[i], &rng, tag++);
	pthread_barrier_wait(&cfg.ready);
	double start = now_sec();
	unsigned long long ops = 0;
	while (now_sec() - start < cfg.seconds) {
		struct block *b = &blocks[rng_next(&rng) % (uint64_t)cfg.live];
		large_check(b);
		free(b->p);
		block_new(b, &rng, tag++);
		ops++;
	}
	for (int i = 0; i < cfg.live; i++) {
		large_check(&blocks[i]);
		free(blocks[i].p);
	}
	w->ops = ops;
	return NULL;
}

int main(int argc, char **argv)
{
	cfg.seconds = arg_double(argc, argv, 1, 10, USAGE);
	int nthreads = (int)arg_long(argc, argv, 2, 1, USAGE);
	cfg.min_size = (size_t)arg_long(argc, argv, 3, 5 << 20, USAGE);
	cfg.max_size = (size_t)arg_long(argc, argv, 4, 25 << 20, USAGE);
	cfg.live = (int)arg_long(argc, argv, 5, 4, USAGE);
	double linger = arg_double(argc, argv, 6, 0, USAGE);
	if (nthreads < 1 || cfg.min_size < 8 || cfg.max_size < cfg.min_size || cfg.live < 1 ||
	    cfg.live > MAX_LIVE || linger < 0) {
		fprintf(stderr, "usage: %s %s (need THREADS > 0, 8 <= MIN <= MAX, 1 <= LIVE <= %d, LINGER >= 0)\n",
			argv[0], USAGE, MAX_LIVE);
		return BENCH_EXIT_USAGE;
	}
	struct worker *ws = calloc((size_t)nthreads, sizeof *ws);
	if (!ws)
		bench_nomem("large", (size_t)nthreads * sizeof *ws);
	pthread_barrier_init(&cfg.ready, NULL, (unsigned)nthreads + 1);
	sampler_start(cfg.seconds / 100);
	for (int i = 0; i < nthreads; i++) {
		ws[i].id = i;
		int err = pthread_create(&ws[i].thread, NULL, worker_run, &ws[i]);
		if (err)
			bench_fail("large", "pthread_create", err);
	}
	pthread_barrier_wait(&cfg.ready);
	double start = now_sec();
	unsigned long long ops = 0;
	for (int i = 0; i < nthreads; i++) {
		pthread_join(ws[i].thread, NULL);
		ops += ws[i].ops;
	}
	double secs = now_sec() - start;
	pthread_barrier_destroy(&cfg.ready);
	free(ws);
	if (linger > 0)
		sleep_sec(linger);

	char extra[96];
	snprintf(extra, sizeof extra, " min=%zu max=%zu live=%d linger=%g", cfg.min_size, cfg.max_size, cfg.live,
		 linger);
	struct bench_result r = { .workload = "large", .threads = nthreads, .ops = ops, .secs = secs };
	result_print(&r, extra);
	return 0;
}
