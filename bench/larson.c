/* larson: the Larson & Krishnan server workload as mimalloc-bench runs it. T lineages each keep
 * BLOCKS live blocks of random size in [MIN, MAX], free and reallocate random victims, and after
 * ROUNDS*BLOCKS replacements hand the whole array to a newly created thread and exit, so frees
 * are cross-thread and threads die with live blocks. This is the workload that killed hakmem's
 * predecessor (shared/seed/larson-oom-root-cause.md).
 *
 * usage: larson [SECONDS MIN MAX BLOCKS ROUNDS SEED THREADS]   (defaults 10 8 128 1024 100 4141 4)
 * ops counts free+malloc replacements; peak/final RSS and an RSS series go on the RESULT line. */
#include "bench_util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define USAGE "[SECONDS MIN MAX BLOCKS ROUNDS SEED THREADS]"

struct block {
	void *p;
	size_t size;
	uint64_t tag;
};

/* One lineage: a chain of threads, each handing its blocks to the next. Only the thread that
 * currently runs the lineage touches it; pthread_create orders the hand-over. */
struct lineage {
	int id;
	struct block *blocks;      /* BLOCKS live blocks */
	uint64_t rng;
	uint64_t next_tag;
	unsigned long long ops;    /* replacements done by every thread of this lineage */
	unsigned long threads;     /* threads this lineage has run on */
};

static struct {
	double seconds;
	size_t min_size, max_size, nblocks;
	unsigned long long rounds;
	atomic_int xstop;          /* set by main after SECONDS */
	atomic_int xlive;          /* lineages still running */
} cfg;

static void *lineage_run(void *arg);

static void lineage_spawn(struct lineage *l)
{
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_t t;
	int err;
	/* EAGAIN can happen while exited threads are still being reaped: wait and retry. */
	for (int tries = 0; (err = pthread_create(&t, &attr, lineage_run, l)) == EAGAIN && tries < 1000;
	     tries++)
		sleep_sec(0.001);
	if (err)
		bench_fail("larson", "pthread_create", err);
	pthread_attr_destroy(&attr);
}

static void *lineage_run(void *arg)
{
	struct lineage *l = arg;
	unsigned long long todo = cfg.rounds * cfg.nblocks;
	l->threads++;
	for (unsigned long long i = 0; i < todo; i++) {
		if (atomic_load_explicit(&cfg.xstop, memory_order_relaxed))
			break;
		struct block *b = &l->blocks[rng_next(&l->rng) % cfg.nblocks];
		block_check("larson", b->p, b->size, b->tag);
		free(b->p);
		b->size = rng_range(&l->rng, cfg.min_size, cfg.max_size);
		b->p = malloc(b->size);
		if (!b->p)
			bench_nomem("larson", b->size);
		b->tag = ((uint64_t)l->id << 48) ^ l->next_tag++;
		block_fill(b->p, b->size, b->tag);
		l->ops++;
	}
	if (atomic_load_explicit(&cfg.xstop, memory_order_relaxed))
		atomic_fetch_sub_explicit(&cfg.xlive, 1, memory_order_release);
	else
		lineage_spawn(l); /* the successor inherits every live block */
	return NULL;
}

int main(int argc, char **argv)
{
	cfg.seconds = arg_double(argc, argv, 1, 10, USAGE);
	cfg.min_size = (size_t)arg_long(argc, argv, 2, 8, USAGE);
	cfg.max_size = (size_t)arg_long(argc, argv, 3, 128, USAGE);
	cfg.nblocks = (size_t)arg_long(argc, argv, 4, 1024, USAGE);
	cfg.rounds = (unsigned long long)arg_long(argc, argv, 5, 100, USAGE);
	uint64_t seed = (uint64_t)arg_long(argc, argv, 6, 4141, USAGE);
	int nthreads = (int)arg_long(argc, argv, 7, 4, USAGE);
	if (cfg.min_size == 0 || cfg.max_size < cfg.min_size || cfg.nblocks == 0 || cfg.rounds == 0 ||
	    nthreads < 1) {
		fprintf(stderr, "usage: %s %s (need 0 < MIN <= MAX, BLOCKS, ROUNDS, THREADS > 0)\n",
			argv[0], USAGE);
		return BENCH_EXIT_USAGE;
	}

	/* As in the original, the main thread allocates every lineage's first blocks, so the
	 * workers' first frees are already cross-thread. */
	struct lineage *lines = calloc((size_t)nthreads, sizeof *lines);
	if (!lines)
		bench_nomem("larson", sizeof *lines);
	for (int t = 0; t < nthreads; t++) {
		struct lineage *l = &lines[t];
		l->id = t;
		l->rng = rng_seed(seed + (uint64_t)t);
		l->blocks = calloc(cfg.nblocks, sizeof *l->blocks);
		if (!l->blocks)
			bench_nomem("larson", cfg.nblocks * sizeof *l->blocks);
		for (size_t i = 0; i < cfg.nblocks; i++) {
			struct block *b = &l->blocks[i];
			b->size = rng_range(&l->rng, cfg.min_size, cfg.max_size);
			b->p = malloc(b->size);
			if (!b->p)
				bench_nomem("larson", b->size);
			b->tag = ((uint64_t)t << 48) ^ l->next_tag++;
			block_fill(b->p, b->size, b->tag);
		}
	}

	sampler_start(cfg.seconds / 100);
	atomic_store(&cfg.xlive, nthreads);
	double start = now_sec();
	for (int t = 0; t < nthreads; t++)
		lineage_spawn(&lines[t]);
	sleep_sec(cfg.seconds);
	atomic_store(&cfg.xstop, 1);
	while (atomic_load_explicit(&cfg.xlive, memory_order_acquire) > 0)
		sleep_sec(0.0005);
	double secs = now_sec() - start;

	/* Every lineage's last thread is gone; free what it left behind from here. */
	unsigned long long ops = 0;
	unsigned long threads_created = 0;
	for (int t = 0; t < nthreads; t++) {
		struct lineage *l = &lines[t];
		ops += l->ops;
		threads_created += l->threads;
		for (size_t i = 0; i < cfg.nblocks; i++) {
			block_check("larson", l->blocks[i].p, l->blocks[i].size, l->blocks[i].tag);
			free(l->blocks[i].p);
		}
		free(l->blocks);
	}
	free(lines);

	char extra[128];
	snprintf(extra, sizeof extra, " threads_created=%lu min=%zu max=%zu blocks=%zu", threads_created,
		 cfg.min_size, cfg.max_size, cfg.nblocks);
	struct bench_result r = { .workload = "larson", .threads = nthreads, .ops = ops, .secs = secs };
	result_print(&r, extra);
	return 0;
}
