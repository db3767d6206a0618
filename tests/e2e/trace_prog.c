/* trace_prog: the program tests/e2e/trace.sh records and replays. It makes every kind of call a
 * trace holds: malloc, free, calloc, realloc that stays and realloc that moves, the memalign
 * family, sized frees when the allocator has them, malloc_trim; from threads that start and exit
 * in waves, with blocks handed from producer threads to consumer threads (freed by another
 * thread than the one that made them), and a fork whose child frees some inherited blocks and
 * makes its own. Every block is checked before it is freed. With an argument "pexit" the main
 * thread ends with pthread_exit while a worker still runs (the process must still end); with
 * "running" main returns while a thread still allocates (what it recorded must be written).
 * Prints its own counts on stdout: "trace_prog: malloc=N free=N ..." (the trace holds at least
 * these; libc's own calls come on top). */
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e.h"

void free_sized(void *p, size_t size) __attribute__((weak));

static _Atomic unsigned long n_malloc, n_free, n_calloc, n_realloc, n_memalign, n_free_sized;

static void fill(unsigned char *p, size_t n, unsigned char v)
{
	if (n)
		memset(p, v, n < 64 ? n : 64);
}

static void verify(const unsigned char *p, size_t n, unsigned char v)
{
	for (size_t i = 0; i < (n < 64 ? n : 64); i++)
		CHECK(p[i] == v, "block %p lost its contents at byte %zu", (const void *)p, i);
}

/* ---- producer / consumer: cross-thread frees ---------------------------------------------- */

#define QCAP 256
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	void *item[QCAP];
	size_t size[QCAP];
	int n, done_producers;
} q = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, {0}, 0, 0};

static void *producer(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	for (int i = 0; i < 3000; i++) {
		size_t n = 16 + (size_t)(rand_r(&seed) % 2000);
		unsigned char *p = malloc(n);
		CHECK(p, "malloc(%zu) failed", n);
		n_malloc++;
		fill(p, n, (unsigned char)n);
		pthread_mutex_lock(&q.lock);
		while (q.n == QCAP)
			pthread_cond_wait(&q.cond, &q.lock);
		q.item[q.n] = p;
		q.size[q.n++] = n;
		pthread_cond_broadcast(&q.cond);
		pthread_mutex_unlock(&q.lock);
	}
	pthread_mutex_lock(&q.lock);
	q.done_producers++;
	pthread_cond_broadcast(&q.cond);
	pthread_mutex_unlock(&q.lock);
	return NULL;
}

static void *consumer(void *arg)
{
	int producers = (int)(intptr_t)arg;
	for (;;) {
		pthread_mutex_lock(&q.lock);
		while (q.n == 0 && q.done_producers < producers)
			pthread_cond_wait(&q.cond, &q.lock);
		if (q.n == 0) {
			pthread_mutex_unlock(&q.lock);
			return NULL;
		}
		unsigned char *p = q.item[--q.n];
		size_t n = q.size[q.n];
		pthread_cond_broadcast(&q.cond);
		pthread_mutex_unlock(&q.lock);
		verify(p, n, (unsigned char)n);
		if (free_sized && (n & 1)) {
			free_sized(p, n);
			n_free_sized++;
		} else {
			free(p);
			n_free++;
		}
	}
}

/* ---- a worker: every kind of call ---------------------------------------------------------- */

static void *worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg * 7919u;
	void *live[64] = {0};
	size_t sz[64] = {0};
	for (int i = 0; i < 4000; i++) {
		int k = (int)(rand_r(&seed) % 64);
		if (live[k]) {
			verify(live[k], sz[k], (unsigned char)k);
			int how = (int)(rand_r(&seed) % 4);
			if (how == 0) { /* shrink: stays where it is */
				size_t n = sz[k] / 2 + 1;
				unsigned char *p = realloc(live[k], n);
				CHECK(p, "realloc shrink failed");
				n_realloc++;
				verify(p, n, (unsigned char)k);
				live[k] = p;
				sz[k] = n;
				continue;
			}
			if (how == 1) { /* grow a lot: moves */
				size_t n = sz[k] < 65536 ? sz[k] * 8 + 4096 : sz[k] + 4096;
				unsigned char *p = realloc(live[k], n);
				CHECK(p, "realloc grow failed");
				n_realloc++;
				verify(p, sz[k], (unsigned char)k);
				fill(p, n, (unsigned char)k);
				live[k] = p;
				sz[k] = n;
				continue;
			}
			free(live[k]);
			n_free++;
			live[k] = NULL;
			continue;
		}
		size_t n = 1 + (size_t)(rand_r(&seed) % 3000);
		if (rand_r(&seed) % 64 == 0)
			n = 140000 + (size_t)(rand_r(&seed) % 900000); /* a large block: its own mapping */
		void *p;
		switch (rand_r(&seed) % 8) {
		case 0:
			p = calloc(n, 3);
			n *= 3;
			CHECK(p, "calloc failed");
			n_calloc++;
			for (size_t j = 0; j < n; j += 97)
				CHECK(((unsigned char *)p)[j] == 0, "calloc'd memory not zero");
			break;
		case 1:
			p = memalign(64, n);
			n_memalign++;
			CHECK(p && !((uintptr_t)p & 63), "memalign");
			break;
		case 2:
			CHECK(posix_memalign(&p, 256, n) == 0 && !((uintptr_t)p & 255), "posix_memalign");
			n_memalign++;
			break;
		case 3:
			n = n > 4096 ? n : 4096; /* above 4 KB alignment: a large block, aligned */
			p = aligned_alloc(n > 4096 ? 65536 : 4096, n);
			n_memalign++;
			CHECK(p && !((uintptr_t)p & (n > 4096 ? 65535 : 4095)), "aligned_alloc");
			break;
		case 4:
			p = realloc(NULL, n); /* a malloc by another name */
			n_realloc++;
			CHECK(p, "realloc(NULL) failed");
			break;
		default:
			p = malloc(n);
			n_malloc++;
			CHECK(p, "malloc failed");
		}
		fill(p, n, (unsigned char)k);
		live[k] = p;
		sz[k] = n;
	}
	for (int k = 0; k < 64; k++)
		if (live[k]) {
			verify(live[k], sz[k], (unsigned char)k);
			free(live[k]);
			n_free++;
		}
	return NULL;
}

static void run_threads(void *(*fn)(void *), int n, uintptr_t base)
{
	pthread_t t[16];
	for (int i = 0; i < n; i++)
		CHECK(pthread_create(&t[i], NULL, fn, (void *)(base + (uintptr_t)i)) == 0, "pthread_create");
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
}

static _Atomic int spinner_started;

static void *spinner(void *arg)
{
	(void)arg;
	for (unsigned long i = 0;; i++) {
		void *p = malloc(32 + i % 200);
		CHECK(p, "malloc failed");
		if (i == 1000)
			spinner_started = 1;
		free(p);
	}
	return NULL;
}

static void *late_worker(void *arg)
{
	(void)arg;
	usleep(200000);
	worker((void *)99);
	return NULL;
}

int main(int argc, char **argv)
{
	/* Blocks that live across the fork: the child frees some of them. */
	enum { KEEP = 100 };
	char *kept[KEEP];
	for (int i = 0; i < KEEP; i++) {
		kept[i] = malloc(100 + (size_t)i);
		CHECK(kept[i], "malloc failed");
		n_malloc++;
		memset(kept[i], i, 100);
	}
	/* Threads that start and exit, in three waves. */
	for (int wave = 0; wave < 3; wave++)
		run_threads(worker, 4, (uintptr_t)wave * 10 + 1);
	/* Producers and consumers. */
	pthread_t c[2];
	for (int i = 0; i < 2; i++)
		CHECK(pthread_create(&c[i], NULL, consumer, (void *)(intptr_t)3) == 0, "pthread_create");
	run_threads(producer, 3, 7);
	for (int i = 0; i < 2; i++)
		pthread_join(c[i], NULL);
	malloc_trim(0);

	pid_t pid = fork();
	CHECK(pid >= 0, "fork failed");
	if (pid == 0) {
		for (int i = 0; i < KEEP; i += 2)
			free(kept[i]); /* inherited: not traced in the child */
		worker((void *)77);
		run_threads(worker, 2, 80);
		exit(0);
	}
	int status;
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "the fork child failed (status %d)", status);
	for (int i = 0; i < KEEP; i++) {
		for (int j = 0; j < 100; j++)
			CHECK(kept[i][j] == (char)i, "kept block %d changed", i);
		free(kept[i]);
		n_free++;
	}
	printf("trace_prog: malloc=%lu free=%lu calloc=%lu realloc=%lu memalign=%lu free_sized=%lu\n",
	       n_malloc, n_free, n_calloc, n_realloc, n_memalign, n_free_sized);
	fflush(stdout);
	if (argc > 1 && !strcmp(argv[1], "running")) {
		pthread_t t;
		CHECK(pthread_create(&t, NULL, spinner, NULL) == 0, "pthread_create");
		while (!spinner_started)
			usleep(1000);
		return 0; /* exit() while the spinner allocates */
	}
	if (argc > 1 && !strcmp(argv[1], "pexit")) {
		pthread_t t;
		CHECK(pthread_create(&t, NULL, late_worker, NULL) == 0, "pthread_create");
		pthread_exit(NULL); /* the process ends when the late worker does */
	}
	return 0;
}
