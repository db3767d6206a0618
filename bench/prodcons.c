/* prodcons: producer threads only allocate, consumer threads only free. Blocks travel in batches
 * through one bounded queue, so every free is cross-thread: the pattern behind the best-known
 * memory-retention complaints against thread-caching allocators. The RSS series shows whether
 * memory freed by consumers gets back to the producers or piles up.
 *
 * usage: prodcons [SECONDS PAIRS MIN MAX INFLIGHT]   (defaults 10 2 16 2048 65536)
 * PAIRS producers and PAIRS consumers; at most INFLIGHT blocks queued; ops counts blocks passed. */
#include "bench_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define USAGE "[SECONDS PAIRS MIN MAX INFLIGHT]"

enum { BATCH = 64 }; /* blocks per queue entry: keeps the queue lock out of the measurement */

struct block {
	void *p;
	size_t size;
	uint64_t tag;
};

struct batch {
	int n;
	struct block b[BATCH];
};

static struct {
	size_t min_size, max_size;
	atomic_int xstop;            /* producers stop producing */
	pthread_mutex_t lock;        /* guards everything below */
	pthread_cond_t not_empty, not_full;
	struct batch **ring;         /* bounded queue of batches */
	size_t cap, head, len;
	int producers_left;
	unsigned long long passed;   /* blocks freed by consumers */
} q = { .lock = PTHREAD_MUTEX_INITIALIZER,
	.not_empty = PTHREAD_COND_INITIALIZER,
	.not_full = PTHREAD_COND_INITIALIZER };

static void *producer(void *arg)
{
	uint64_t rng = rng_seed((uint64_t)(uintptr_t)arg);
	uint64_t tag = (uint64_t)(uintptr_t)arg << 48;
	while (!atomic_load_explicit(&q.xstop, memory_order_relaxed)) {
		struct batch *bt = malloc(sizeof *bt);
		if (!bt)
			bench_nomem("prodcons", sizeof *bt);
		bt->n = BATCH;
		for (int i = 0; i < BATCH; i++) {
			struct block *b = &bt->b[i];
			b->size = rng_range(&rng, q.min_size, q.max_size);
			b->p = malloc(b->size);
			if (!b->p)
				bench_nomem("prodcons", b->size);
			b->tag = tag++;
			block_fill(b->p, b->size, b->tag);
		}
		pthread_mutex_lock(&q.lock);
		while (q.len == q.cap)
			pthread_cond_wait(&q.not_full, &q.lock);
		q.ring[(q.head + q.len++) % q.cap] = bt;
		pthread_cond_signal(&q.not_empty);
		pthread_mutex_unlock(&q.lock);
	}
	pthread_mutex_lock(&q.lock);
	q.producers_left--;
	pthread_cond_broadcast(&q.not_empty);
	pthread_mutex_unlock(&q.lock);
	return NULL;
}

static void *consumer(void *arg)
{
	(void)arg;
	unsigned long long passed = 0;
	for (;;) {
		pthread_mutex_lock(&q.lock);
		while (q.len == 0 && q.producers_left > 0)
			pthread_cond_wait(&q.not_empty, &q.lock);
		if (q.len == 0) { /* drained and nobody left to produce */
			q.passed += passed;
			pthread_mutex_unlock(&q.lock);
			return NULL;
		}
		struct batch *bt = q.ring[q.head];
		q.head = (q.head + 1) % q.cap;
		q.len--;
		pthread_cond_signal(&q.not_full);
		pthread_mutex_unlock(&q.lock);
		for (int i = 0; i < bt->n; i++) {
			block_check("prodcons", bt->b[i].p, bt->b[i].size, bt->b[i].tag);
			free(bt->b[i].p);
		}
		passed += (unsigned long long)bt->n;
		free(bt);
	}
}

int main(int argc, char **argv)
{
	double seconds = arg_double(argc, argv, 1, 10, USAGE);
	int pairs = (int)arg_long(argc, argv, 2, 2, USAGE);
	q.min_size = (size_t)arg_long(argc, argv, 3, 16, USAGE);
	q.max_size = (size_t)arg_long(argc, argv, 4, 2048, USAGE);
	long inflight = arg_long(argc, argv, 5, 65536, USAGE);
	if (pairs < 1 || q.min_size == 0 || q.max_size < q.min_size || inflight < BATCH) {
		fprintf(stderr, "usage: %s %s (need PAIRS > 0, 0 < MIN <= MAX, INFLIGHT >= %d)\n",
			argv[0], USAGE, BATCH);
		return BENCH_EXIT_USAGE;
	}
	q.cap = (size_t)inflight / BATCH;
	q.ring = calloc(q.cap, sizeof *q.ring);
	if (!q.ring)
		bench_nomem("prodcons", q.cap * sizeof *q.ring);
	q.producers_left = pairs;

	pthread_t *threads = calloc(2 * (size_t)pairs, sizeof *threads);
	if (!threads)
		bench_nomem("prodcons", 2 * (size_t)pairs * sizeof *threads);
	sampler_start(seconds / 100);
	double start = now_sec();
	for (int i = 0; i < pairs; i++) {
		int err = pthread_create(&threads[2 * i], NULL, producer, (void *)(uintptr_t)(i + 1));
		if (!err)
			err = pthread_create(&threads[2 * i + 1], NULL, consumer, NULL);
		if (err)
			bench_fail("prodcons", "pthread_create", err);
	}
	sleep_sec(seconds);
	atomic_store(&q.xstop, 1);
	for (int i = 0; i < 2 * pairs; i++)
		pthread_join(threads[i], NULL);
	double secs = now_sec() - start;
	free(threads);
	free(q.ring);

	char extra[96];
	snprintf(extra, sizeof extra, " producers=%d consumers=%d min=%zu max=%zu inflight=%ld", pairs,
		 pairs, q.min_size, q.max_size, inflight);
	struct bench_result r = { .workload = "prodcons", .threads = pairs, .ops = q.passed,
				  .secs = secs };
	result_print(&r, extra);
	return 0;
}
