/* bursts: memory freed in bursts and allocated again soon after, the case trim by decay is for.
 * A base of long-lived blocks (BASE_PCT of MB) stays live; each round allocates MB of small
 * blocks (16-512 B, every page touched), frees them all, and sleeps PAUSE_MS (the program is
 * quiet, as between requests); after the last round the base is freed too and the program
 * sleeps LINGER_MS, so the RSS curve shows what an allocator gives back once it goes idle.
 * A trim policy that returns freed pages at once pays page faults every round; one that never
 * returns them holds the peak for ever.
 *
 * usage: bursts [ROUNDS MB BASE_PCT PAUSE_MS LINGER_MS]   (defaults 20 64 10 200 0)
 * ops counts blocks allocated. Beyond the common RESULT fields: rounds, burst_mb,
 * curve_secs (the time the curve spans) and rss_curve_kb (up to 200 VmRSS samples evenly
 * spaced over it, from the start of the first round to the end of the linger). */
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>

#define USAGE "[ROUNDS MB BASE_PCT PAUSE_MS LINGER_MS]"

enum { MIN_SIZE = 16, MAX_SIZE = 512, CURVE_POINTS = 200 };

struct block {
	void *p;
	uint32_t size;
};

/* Allocates blocks until `bytes` are live; returns how many. */
static size_t fill(struct block *b, size_t cap, size_t bytes, uint64_t *rng, uint64_t tag)
{
	size_t n = 0, got = 0;
	while (got < bytes && n < cap) {
		size_t size = rng_range(rng, MIN_SIZE, MAX_SIZE);
		void *p = malloc(size);
		if (!p)
			bench_nomem("bursts", size);
		block_fill(p, size, tag + n);
		b[n].p = p;
		b[n].size = (uint32_t)size;
		got += size;
		n++;
	}
	return n;
}

static void drain(struct block *b, size_t n, uint64_t tag)
{
	for (size_t i = 0; i < n; i++) {
		block_check("bursts", b[i].p, b[i].size, tag + i);
		free(b[i].p);
	}
}

int main(int argc, char **argv)
{
	long rounds = arg_long(argc, argv, 1, 20, USAGE);
	long mb = arg_long(argc, argv, 2, 64, USAGE);
	long base_pct = arg_long(argc, argv, 3, 10, USAGE);
	double pause = arg_double(argc, argv, 4, 200, USAGE) / 1000.0;
	double linger = arg_double(argc, argv, 5, 0, USAGE) / 1000.0;
	if (rounds < 1 || mb < 1 || mb > 4096 || base_pct > 100) {
		fprintf(stderr, "usage: %s %s (ROUNDS >= 1, MB 1..4096, BASE_PCT 0..100)\n", argv[0], USAGE);
		return BENCH_EXIT_USAGE;
	}
	size_t burst = (size_t)mb << 20, base_bytes = burst / 100 * (size_t)base_pct;
	size_t cap = burst / MIN_SIZE + 1, base_cap = base_bytes / MIN_SIZE + 1;
	struct block *b = malloc(cap * sizeof *b), *base = malloc(base_cap * sizeof *base);
	if (!b || !base)
		bench_nomem("bursts", cap * sizeof *b);
	uint64_t rng = rng_seed(42);
	double start = now_sec();
	sampler_start(0.01);
	size_t nbase = fill(base, base_cap, base_bytes, &rng, (uint64_t)1 << 40);
	unsigned long long ops = nbase;
	for (long r = 0; r < rounds; r++) {
		uint64_t tag = (uint64_t)(r + 1) << 44;
		size_t n = fill(b, cap, burst, &rng, tag);
		ops += n;
		drain(b, n, tag);
		sleep_sec(pause);
	}
	drain(base, nbase, (uint64_t)1 << 40);
	double secs = now_sec() - start;
	sleep_sec(linger);
	double curve_secs = now_sec() - start;
	sampler_stop();
	char curve[CURVE_POINTS * 12], extra[sizeof curve + 128];
	sampler_series(curve, sizeof curve, CURVE_POINTS);
	snprintf(extra, sizeof extra, " rounds=%ld burst_mb=%ld curve_secs=%.3f rss_curve_kb=%s", rounds, mb,
		 curve_secs, curve[0] ? curve : "-");
	free(b);
	free(base);
	struct bench_result res = {"bursts", 1, ops, secs, 0};
	result_print(&res, extra);
	return BENCH_EXIT_OK;
}
