/* realloc: growth chains. Each thread runs BUILDERS interleaved string builders that grow by
 * small appends (1-64 bytes, realloc to the exact new length each time) up to TARGET bytes,
 * check every byte, free and start again: the naive string builder found in real programs.
 *
 * usage: realloc [SECONDS THREADS TARGET BUILDERS]   (defaults 10 1 4194304 4)
 * ops counts realloc calls. */
#include "bench_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define USAGE "[SECONDS THREADS TARGET BUILDERS]"

enum { MAX_BUILDERS = 64 };

struct builder {
	unsigned char *s;
	size_t len;
	unsigned char salt; /* makes every chain's bytes different */
};

static struct {
	double seconds;
	size_t target;
	int builders;
	double start;
} cfg;

static unsigned char byte_at(const struct builder *b, size_t i)
{
	return (unsigned char)(i * 131 + (i >> 12) + b->salt);
}

static void builder_finish(struct builder *b)
{
	for (size_t i = 0; i < b->len; i++)
		if (b->s[i] != byte_at(b, i))
			bench_corrupt("realloc", b->s, b->len);
	free(b->s);
	b->s = NULL;
	b->len = 0;
	b->salt = (unsigned char)(b->salt + 77);
}

static void *worker_run(void *arg)
{
	struct bench_worker *w = arg;
	uint64_t rng = rng_seed((uint64_t)w->id + 1);
	struct builder bs[MAX_BUILDERS] = { 0 };
	for (int i = 0; i < cfg.builders; i++)
		bs[i].salt = (unsigned char)(w->id * 16 + i);
	unsigned long long ops = 0;
	while (now_sec() - cfg.start < cfg.seconds) {
		for (int k = 0; k < 256; k++) {
			struct builder *b = &bs[k % cfg.builders];
			size_t add = rng_range(&rng, 1, 64);
			unsigned char *s = realloc(b->s, b->len + add);
			if (!s)
				bench_nomem("realloc", b->len + add);
			b->s = s;
			for (size_t i = b->len; i < b->len + add; i++)
				s[i] = byte_at(b, i);
			b->len += add;
			if (b->len >= cfg.target)
				builder_finish(b);
		}
		ops += 256;
	}
	for (int i = 0; i < cfg.builders; i++)
		builder_finish(&bs[i]);
	w->ops = ops;
	return NULL;
}

int main(int argc, char **argv)
{
	cfg.seconds = arg_double(argc, argv, 1, 10, USAGE);
	int nthreads = (int)arg_long(argc, argv, 2, 1, USAGE);
	cfg.target = (size_t)arg_long(argc, argv, 3, 4 << 20, USAGE);
	cfg.builders = (int)arg_long(argc, argv, 4, 4, USAGE);
	if (nthreads < 1 || cfg.target < 1 || cfg.builders < 1 || cfg.builders > MAX_BUILDERS) {
		fprintf(stderr, "usage: %s %s (need THREADS, TARGET > 0, 1 <= BUILDERS <= %d)\n",
			argv[0], USAGE, MAX_BUILDERS);
		return BENCH_EXIT_USAGE;
	}
	struct bench_worker *ws = calloc((size_t)nthreads, sizeof *ws);
	if (!ws)
		bench_nomem("realloc", (size_t)nthreads * sizeof *ws);
	sampler_start(cfg.seconds / 100);
	cfg.start = now_sec();
	unsigned long long ops = bench_run_workers("realloc", ws, nthreads, worker_run);
	double secs = now_sec() - cfg.start;
	free(ws);

	char extra[64];
	snprintf(extra, sizeof extra, " target=%zu builders=%d", cfg.target, cfg.builders);
	struct bench_result r = { .workload = "realloc", .threads = nthreads, .ops = ops, .secs = secs };
	result_print(&r, extra);
	return 0;
}
