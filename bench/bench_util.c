/* bench_util: clocks, /proc probes, the RSS sampler thread, argument parsing and the RESULT
 * line shared by every workload program. Nothing here calls malloc while a workload runs:
 * the probes read /proc into stack buffers with open/read. */
#include "bench_util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

_Noreturn void bench_corrupt(const char *workload, const void *p, size_t n)
{
	fprintf(stderr, "%s: CORRUPTION: block %p of %zu bytes lost its pattern\n", workload, p, n);
	_exit(BENCH_EXIT_CORRUPT);
}

_Noreturn void bench_nomem(const char *workload, size_t n)
{
	fprintf(stderr, "%s: out of memory allocating %zu bytes\n", workload, n);
	_exit(BENCH_EXIT_NOMEM);
}

_Noreturn void bench_fail(const char *workload, const char *what, int err)
{
	fprintf(stderr, "%s: %s failed: %s\n", workload, what, strerror(err));
	_exit(BENCH_EXIT_SYSTEM);
}

double now_sec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void sleep_sec(double secs)
{
	if (secs <= 0)
		return;
	struct timespec ts = { .tv_sec = (time_t)secs,
			       .tv_nsec = (long)((secs - (double)(time_t)secs) * 1e9) };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Reads a small /proc file into buf (NUL-terminated); returns bytes read or -1. */
static ssize_t read_proc(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t got = 0;
	while (got + 1 < len) {
		ssize_t r = read(fd, buf + got, len - 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	buf[got] = '\0';
	return (ssize_t)got;
}

long rss_now_kb(void)
{
	char buf[128];
	long size_pages, rss_pages;
	if (read_proc("/proc/self/statm", buf, sizeof buf) <= 0 ||
	    sscanf(buf, "%ld %ld", &size_pages, &rss_pages) != 2)
		return -1;
	return rss_pages * (sysconf(_SC_PAGESIZE) / 1024);
}

long rss_peak_kb(void)
{
	char buf[4096];
	if (read_proc("/proc/self/status", buf, sizeof buf) <= 0)
		return -1;
	const char *line = strstr(buf, "VmHWM:");
	return line ? strtol(line + 6, NULL, 10) : -1;
}

long mappings_now(void)
{
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char buf[8192];
	long lines = 0;
	ssize_t r;
	while ((r = read(fd, buf, sizeof buf)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (ssize_t i = 0; i < r; i++)
			lines += buf[i] == '\n';
	}
	close(fd);
	return lines;
}

/* ---- RSS sampler ------------------------------------------------------------------------ */

enum { SAMPLER_CAP = 4096 };

static struct {
	pthread_t thread;
	atomic_int xstop;         /* set by sampler_stop */
	int running;              /* only touched by the main thread */
	double interval;          /* doubles each time the buffer is compacted */
	int count;                /* samples in kb[]; read after the thread is joined */
	long kb[SAMPLER_CAP];
} sampler;

static void *sampler_main(void *arg)
{
	(void)arg;
	while (!atomic_load_explicit(&sampler.xstop, memory_order_acquire)) {
		if (sampler.count == SAMPLER_CAP) {
			/* Keep every other sample and halve the rate: a long run keeps its shape. */
			for (int i = 0; i < SAMPLER_CAP / 2; i++)
				sampler.kb[i] = sampler.kb[2 * i];
			sampler.count = SAMPLER_CAP / 2;
			sampler.interval *= 2;
		}
		sampler.kb[sampler.count++] = rss_now_kb();
		sleep_sec(sampler.interval);
	}
	return NULL;
}

void sampler_start(double interval_secs)
{
	sampler.interval = interval_secs > 0.001 ? interval_secs : 0.001;
	sampler.count = 0;
	atomic_store_explicit(&sampler.xstop, 0, memory_order_relaxed);
	int err = pthread_create(&sampler.thread, NULL, sampler_main, NULL);
	if (err)
		bench_fail("sampler", "pthread_create", err);
	sampler.running = 1;
}

void sampler_stop(void)
{
	if (!sampler.running)
		return;
	atomic_store_explicit(&sampler.xstop, 1, memory_order_release);
	pthread_join(sampler.thread, NULL);
	sampler.running = 0;
	if (sampler.count < SAMPLER_CAP) /* one last sample at the end of the run */
		sampler.kb[sampler.count++] = rss_now_kb();
}

void sampler_series(char *buf, size_t len, int max_points)
{
	size_t used = 0;
	buf[0] = '\0';
	int n = sampler.count;
	int points = n < max_points ? n : max_points;
	for (int i = 0; i < points && used < len; i++) {
		/* evenly spaced, always including the first and the last sample */
		int idx = points == 1 ? n - 1 : (int)((long)i * (n - 1) / (points - 1));
		int w = snprintf(buf + used, len - used, "%s%ld", i ? "," : "", sampler.kb[idx]);
		if (w < 0)
			break;
		used += (size_t)w;
	}
}

/* ---- arguments and the RESULT line ------------------------------------------------------ */

double arg_double(int argc, char **argv, int i, double dflt, const char *usage)
{
	if (argc <= i)
		return dflt;
	char *end;
	errno = 0;
	double v = strtod(argv[i], &end);
	if (errno || end == argv[i] || *end || v < 0) {
		fprintf(stderr, "bad argument '%s'\nusage: %s %s\n", argv[i], argv[0], usage);
		exit(BENCH_EXIT_USAGE);
	}
	return v;
}

long arg_long(int argc, char **argv, int i, long dflt, const char *usage)
{
	if (argc <= i)
		return dflt;
	char *end;
	errno = 0;
	long v = strtol(argv[i], &end, 0);
	if (errno || end == argv[i] || *end || v < 0) {
		fprintf(stderr, "bad argument '%s'\nusage: %s %s\n", argv[i], argv[0], usage);
		exit(BENCH_EXIT_USAGE);
	}
	return v;
}

void result_print(const struct bench_result *r, const char *extra)
{
	sampler_stop();
	long final_kb = rss_now_kb();
	long peak_kb = rss_peak_kb();
	long maps = mappings_now();
	char series[512];
	sampler_series(series, sizeof series, 24);
	double rate = r->ops_per_sec > 0 ? r->ops_per_sec
		      : r->secs > 0      ? (double)r->ops / r->secs
					 : 0;
	printf("RESULT workload=%s threads=%d ops=%llu secs=%.3f ops_per_sec=%.0f peak_rss_kb=%ld "
	       "final_rss_kb=%ld mappings=%ld rss_kb_series=%s%s\n",
	       r->workload, r->threads, r->ops, r->secs, rate, peak_kb, final_kb, maps,
	       series[0] ? series : "-", extra ? extra : "");
	fflush(stdout);
}

unsigned long long bench_run_workers(const char *workload, struct bench_worker *ws, int n, void *(*fn)(void *))
{
	for (int i = 0; i < n; i++) {
		ws[i].id = i;
		int err = pthread_create(&ws[i].thread, NULL, fn, &ws[i]);
		if (err)
			bench_fail(workload, "pthread_create", err);
	}
	unsigned long long ops = 0;
	for (int i = 0; i < n; i++) {
		pthread_join(ws[i].thread, NULL);
		ops += ws[i].ops;
	}
	return ops;
}
