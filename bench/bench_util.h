/* bench_util: what every benchmark workload shares. A fast PRNG, the block pattern that turns
 * heap corruption into exit code 3, clocks, RSS and mapping probes that never call malloc, an RSS
 * sampler thread, argument parsing, and the one RESULT line each program prints on stdout. */
#ifndef HAKMEM_BENCH_UTIL_H
#define HAKMEM_BENCH_UTIL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* Exit codes the runner understands (bench/run.py maps them to FAIL reasons). */
enum {
	BENCH_EXIT_OK = 0,
	BENCH_EXIT_USAGE = 2,
	BENCH_EXIT_CORRUPT = 3, /* a block's pattern changed while it was live */
	BENCH_EXIT_NOMEM = 4,   /* malloc/realloc returned NULL */
	BENCH_EXIT_SYSTEM = 5,  /* pthread_create or similar failed */
};

/* xorshift64*: cheap enough that the workload measures the allocator, not the PRNG. */
static inline uint64_t rng_next(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static inline uint64_t rng_seed(uint64_t seed)
{
	return seed * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL; /* never zero in practice */
}

/* A value uniformly-ish in [lo, hi]. */
static inline size_t rng_range(uint64_t *state, size_t lo, size_t hi)
{
	return lo + (size_t)(rng_next(state) % (uint64_t)(hi - lo + 1));
}

/* The pattern: the tag in the first (up to) 8 bytes and a tag-derived byte at the end, so two
 * live blocks that overlap, or a block the allocator scribbles on, fail the check. */
static inline void block_fill(void *p, size_t n, uint64_t tag)
{
	unsigned char *b = p;
	size_t head = n < 8 ? n : 8;
	for (size_t i = 0; i < head; i++)
		b[i] = (unsigned char)(tag >> (8 * i));
	if (n > 8)
		b[n - 1] = (unsigned char)(tag ^ 0xA5);
}

static inline int block_ok(const void *p, size_t n, uint64_t tag)
{
	const unsigned char *b = p;
	size_t head = n < 8 ? n : 8;
	for (size_t i = 0; i < head; i++)
		if (b[i] != (unsigned char)(tag >> (8 * i)))
			return 0;
	return n <= 8 || b[n - 1] == (unsigned char)(tag ^ 0xA5);
}

/* Fatal exits: one line on stderr naming the workload, then _exit with the code above. */
_Noreturn void bench_corrupt(const char *workload, const void *p, size_t n);
_Noreturn void bench_nomem(const char *workload, size_t n);
_Noreturn void bench_fail(const char *workload, const char *what, int err);

/* Checks a block's pattern and aborts the run if it changed. */
static inline void block_check(const char *workload, const void *p, size_t n, uint64_t tag)
{
	if (!block_ok(p, n, tag))
		bench_corrupt(workload, p, n);
}

double now_sec(void);               /* CLOCK_MONOTONIC in seconds */
void sleep_sec(double secs);        /* nanosleep, resumed after EINTR */

/* Probes read /proc with open/read into stack buffers, so they never allocate. */
long rss_now_kb(void);              /* VmRSS */
long rss_peak_kb(void);             /* VmHWM: the process's peak resident set */
long mappings_now(void);            /* lines in /proc/self/maps */

/* The RSS sampler: a thread that records VmRSS every interval until stopped. */
void sampler_start(double interval_secs);
void sampler_stop(void);
/* "a,b,c" with at most max_points samples picked evenly over the run. */
void sampler_series(char *buf, size_t len, int max_points);

/* Argument parsing: argv[i] as a number, or the default when argc <= i. Exits 2 on garbage. */
double arg_double(int argc, char **argv, int i, double dflt, const char *usage);
long arg_long(int argc, char **argv, int i, long dflt, const char *usage);

/* What a run prints; extra is appended verbatim (already formatted " key=value" pairs). */
struct bench_result {
	const char *workload;
	int threads;
	unsigned long long ops;
	double secs;
	double ops_per_sec; /* 0 means ops / secs */
};

/* One benchmark thread of a workload that runs N identical workers. */
struct bench_worker {
	pthread_t thread;
	int id;                 /* 0 .. n-1 */
	void *data;             /* the workload's own (falseshare: the block main gave it) */
	unsigned long long ops; /* set by the worker before it returns */
};

/* Starts ws[0..n-1] running fn(&ws[i]) (ids set here), joins them all, returns their ops
 * summed. A failed pthread_create ends the program through bench_fail. */
unsigned long long bench_run_workers(const char *workload, struct bench_worker *ws, int n, void *(*fn)(void *));

/* Probes final RSS and mappings, appends the RSS series, prints one RESULT line and flushes. */
void result_print(const struct bench_result *r, const char *extra);

#endif
