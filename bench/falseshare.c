/* falseshare: passive false sharing, as Hoard's cache-scratch. The main thread allocates one
 * small block per thread (so they sit side by side); each thread frees the block it was given,
 * then repeatedly mallocs its own block of the same size, writes it REPS times and frees it.
 * An allocator that hands a thread a block freed by another (on a shared cache line) is slow here.
 *
 * usage: falseshare [SECONDS THREADS SIZE REPS]   (defaults 10 4 8 10000)
 * ops counts byte writes; each thread checks its bytes before every free. */
#include "bench_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define USAGE "[SECONDS THREADS SIZE REPS]"

static struct {
	double seconds, start;
	size_t size;
	long reps;
} cfg;

static void *worker_run(void *arg)
{
	struct bench_worker *w = arg;
	free(w->data);
	unsigned long long ops = 0;
	while (now_sec() - cfg.start < cfg.seconds) {
		volatile unsigned char *a = malloc(cfg.size);
		if (!a)
			bench_nomem("falseshare", cfg.size);
		for (long j = 0; j < cfg.reps; j++)
			for (size_t k = 0; k < cfg.size; k++)
				a[k] = (unsigned char)(w->id * 7 + k + (size_t)j);
		for (size_t k = 0; k < cfg.size; k++)
			if (a[k] != (unsigned char)(w->id * 7 + k + (size_t)cfg.reps - 1))
				bench_corrupt("falseshare", (const void *)a, cfg.size);
		free((void *)a);
		ops += (unsigned long long)cfg.reps * cfg.size;
	}
	w->ops = ops;
	return NULL;
}

int main(int argc, char **argv)
{
	cfg.seconds = arg_double(argc, argv, 1, 10, USAGE);
	int nthreads = (int)arg_long(argc, argv, 2, 4, USAGE);
	cfg.size = (size_t)arg_long(argc, argv, 3, 8, USAGE);
	cfg.reps = arg_long(argc, argv, 4, 10000, USAGE);
	if (nthreads < 1 || cfg.size < 1 || cfg.reps < 1) {
		fprintf(stderr, "usage: %s %s (need THREADS, SIZE, REPS > 0)\n", argv[0], USAGE);
		return BENCH_EXIT_USAGE;
	}
	struct bench_worker *ws = calloc((size_t)nthreads, sizeof *ws);
	if (!ws)
		bench_nomem("falseshare", (size_t)nthreads * sizeof *ws);
	for (int i = 0; i < nthreads; i++) {
		ws[i].data = malloc(cfg.size);
		if (!ws[i].data)
			bench_nomem("falseshare", cfg.size);
	}
	sampler_start(cfg.seconds / 100);
	cfg.start = now_sec();
	unsigned long long ops = bench_run_workers("falseshare", ws, nthreads, worker_run);
	double secs = now_sec() - cfg.start;
	free(ws);

	char extra[64];
	snprintf(extra, sizeof extra, " size=%zu reps=%ld", cfg.size, cfg.reps);
	struct bench_result r = { .workload = "falseshare", .threads = nthreads, .ops = ops,
				  .secs = secs };
	result_print(&r, extra);
	return 0;
}
