/* threadchurn: thousands of short-lived threads. Each frees the blocks an earlier (now dead)
 * thread left behind, allocates its own, frees half and leaves the other half live when it exits.
 * Tests that a dying thread strands nothing and that its blocks can be freed by others later.
 *
 * usage: threadchurn [SECONDS CONCURRENT BLOCKS MIN MAX]   (defaults 10 4 64 16 1024)
 * Threads run in waves of CONCURRENT; ops counts threads (so ops_per_sec is threads per second). */
#include "bench_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define USAGE "[SECONDS CONCURRENT BLOCKS MIN MAX]"

struct block {
	void *p;
	size_t size;
	uint64_t tag;
};

/* The blocks one thread left live when it exited; the next thread to start frees them. */
struct leftovers {
	struct leftovers *next;
	size_t n;
	struct block b[];
};

static struct {
	size_t nblocks, min_size, max_size;
	pthread_mutex_t lock;          /* guards stack */
	struct leftovers *stack;
} shared = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void leftovers_free(struct leftovers *lo)
{
	for (size_t i = 0; i < lo->n; i++) {
		block_check("threadchurn", lo->b[i].p, lo->b[i].size, lo->b[i].tag);
		free(lo->b[i].p);
	}
	free(lo);
}

static void *churner(void *arg)
{
	uint64_t id = (uint64_t)(uintptr_t)arg;
	uint64_t rng = rng_seed(id);

	pthread_mutex_lock(&shared.lock);
	struct leftovers *old = shared.stack;
	if (old)
		shared.stack = old->next;
	pthread_mutex_unlock(&shared.lock);
	if (old)
		leftovers_free(old); /* blocks of a thread that no longer exists */

	size_t n = shared.nblocks;
	struct leftovers *mine = malloc(sizeof *mine + n * sizeof mine->b[0]);
	if (!mine)
		bench_nomem("threadchurn", sizeof *mine + n * sizeof mine->b[0]);
	for (size_t i = 0; i < n; i++) {
		struct block *b = &mine->b[i];
		b->size = rng_range(&rng, shared.min_size, shared.max_size);
		b->p = malloc(b->size);
		if (!b->p)
			bench_nomem("threadchurn", b->size);
		b->tag = (id << 24) ^ i;
		block_fill(b->p, b->size, b->tag);
	}
	/* Free the odd half ourselves and keep the even half live past our death. */
	size_t kept = 0;
	for (size_t i = 0; i < n; i++) {
		if (i & 1) {
			block_check("threadchurn", mine->b[i].p, mine->b[i].size, mine->b[i].tag);
			free(mine->b[i].p);
		} else {
			mine->b[kept++] = mine->b[i];
		}
	}
	mine->n = kept;
	pthread_mutex_lock(&shared.lock);
	mine->next = shared.stack;
	shared.stack = mine;
	pthread_mutex_unlock(&shared.lock);
	return NULL;
}

int main(int argc, char **argv)
{
	double seconds = arg_double(argc, argv, 1, 10, USAGE);
	int concurrent = (int)arg_long(argc, argv, 2, 4, USAGE);
	shared.nblocks = (size_t)arg_long(argc, argv, 3, 64, USAGE);
	shared.min_size = (size_t)arg_long(argc, argv, 4, 16, USAGE);
	shared.max_size = (size_t)arg_long(argc, argv, 5, 1024, USAGE);
	if (concurrent < 1 || shared.min_size == 0 || shared.max_size < shared.min_size) {
		fprintf(stderr, "usage: %s %s (need CONCURRENT > 0, 0 < MIN <= MAX)\n", argv[0], USAGE);
		return BENCH_EXIT_USAGE;
	}
	pthread_t *wave = calloc((size_t)concurrent, sizeof *wave);
	if (!wave)
		bench_nomem("threadchurn", (size_t)concurrent * sizeof *wave);

	sampler_start(seconds / 100);
	double start = now_sec(), secs;
	unsigned long long threads = 0;
	do {
		for (int i = 0; i < concurrent; i++) {
			int err = pthread_create(&wave[i], NULL, churner, (void *)(uintptr_t)++threads);
			if (err)
				bench_fail("threadchurn", "pthread_create", err);
		}
		for (int i = 0; i < concurrent; i++)
			pthread_join(wave[i], NULL);
		secs = now_sec() - start;
	} while (secs < seconds);

	/* The main thread frees what the last wave left behind. */
	while (shared.stack) {
		struct leftovers *lo = shared.stack;
		shared.stack = lo->next;
		leftovers_free(lo);
	}
	free(wave);

	char extra[96];
	snprintf(extra, sizeof extra, " pairs=%llu blocks=%zu min=%zu max=%zu",
		 threads * shared.nblocks, shared.nblocks, shared.min_size, shared.max_size);
	struct bench_result r = { .workload = "threadchurn", .threads = concurrent, .ops = threads,
				  .secs = secs };
	result_print(&r, extra);
	return 0;
}
