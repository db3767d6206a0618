/* fork_threads: several threads fork at the same moment, round after round, while other threads
 * allocate, free and write through stdio (the lock-order deadlock some allocators hit between
 * their own locks and glibc's stdio and fork locks). Each child frees blocks allocated before
 * the fork, allocates, starts and joins a thread, printf()s one line and exits 0.
 * A deadlock shows as the runner's timeout.
 *   fork_threads [ROUNDS]     default 20 rounds of FORKERS forks each */
#include "rel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

#define WORKERS 4 /* threads allocating and using stdio */
#define FORKERS 4 /* threads forking at once */
#define KEEP 256  /* blocks each forker holds across its fork */

static atomic_int stop;
static FILE *sink; /* /dev/null through stdio: every worker takes its lock */
static pthread_barrier_t round_start;

static void *worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	void *slot[64] = {0};
	char line[128];
	while (!atomic_load(&stop)) {
		for (int i = 0; i < 64; i++) {
			seed = seed * 1103515245 + 12345;
			size_t n = (seed >> 8) % 2000 + 1;
			if ((seed >> 20) % 64 == 0)
				n = (size_t)((seed >> 4) % 4 + 1) << 18; /* now and then a large block */
			free(slot[i]);
			slot[i] = malloc(n);
			REL_CHECK(slot[i], "worker: malloc(%zu) failed", n);
			memset(slot[i], (int)i, n < 64 ? n : 64);
		}
		snprintf(line, sizeof line, "worker %u %p\n", seed, slot[0]);
		fputs(line, sink);
		fflush(sink);
	}
	for (int i = 0; i < 64; i++)
		free(slot[i]);
	return NULL;
}

static void *child_thread(void *arg)
{
	void *p = malloc(1000);
	REL_CHECK(p, "child thread: malloc failed");
	free(p);
	return arg;
}

/* In the child: only this thread survived the fork. */
static void child(int id, void **keep, unsigned round)
{
	for (int i = 0; i < KEEP; i++) {
		if (!rel_intact(keep[i], 32, (unsigned)i))
			REL_FAIL("child: a pre-fork block changed");
		free(keep[i]);
	}
	void *v[100];
	for (int i = 0; i < 100; i++)
		REL_CHECK((v[i] = malloc((size_t)i * 40 + 1)) != NULL, "child: malloc failed");
	char *big = malloc(3 << 20);
	REL_CHECK(big, "child: large malloc failed");
	memset(big, 1, 3 << 20);
	pthread_t t;
	REL_CHECK(pthread_create(&t, NULL, child_thread, NULL) == 0, "child: pthread_create failed");
	pthread_join(t, NULL);
	for (int i = 0; i < 100; i++)
		free(v[i]);
	free(big);
	printf("child of forker %d, round %u: ok\n", id, round);
	fflush(stdout);
	_exit(0);
}

static unsigned rounds = 20;

static void *forker(void *arg)
{
	int id = (int)(intptr_t)arg;
	for (unsigned r = 0; r < rounds; r++) {
		void *keep[KEEP];
		for (int i = 0; i < KEEP; i++) {
			keep[i] = malloc((size_t)(i % 50) * 16 + 32);
			REL_CHECK(keep[i], "forker: malloc failed");
			rel_fill(keep[i], 32, (unsigned)i);
		}
		pthread_barrier_wait(&round_start);
		pid_t pid = fork();
		REL_CHECK(pid >= 0, "fork failed: %s", strerror(errno));
		if (pid == 0)
			child(id, keep, r);
		int st;
		REL_CHECK(waitpid(pid, &st, 0) == pid, "waitpid failed");
		REL_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child of forker %d, round %u: status 0x%x", id, r,
			  (unsigned)st);
		for (int i = 0; i < KEEP; i++)
			free(keep[i]);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc > 1)
		rounds = (unsigned)atoi(argv[1]);
	sink = fopen("/dev/null", "w");
	REL_CHECK(sink, "cannot open /dev/null");
	pthread_barrier_init(&round_start, NULL, FORKERS);
	pthread_t w[WORKERS], f[FORKERS];
	for (int i = 0; i < WORKERS; i++)
		REL_CHECK(pthread_create(&w[i], NULL, worker, (void *)(uintptr_t)(i + 1)) == 0, "pthread_create failed");
	for (int i = 0; i < FORKERS; i++)
		REL_CHECK(pthread_create(&f[i], NULL, forker, (void *)(intptr_t)i) == 0, "pthread_create failed");
	for (int i = 0; i < FORKERS; i++)
		pthread_join(f[i], NULL);
	atomic_store(&stop, 1);
	for (int i = 0; i < WORKERS; i++)
		pthread_join(w[i], NULL);
	fclose(sink);
	printf("fork_threads: %u rounds of %d simultaneous forks with %d threads allocating: ok\n", rounds,
	       FORKERS, WORKERS);
	return 0;
}
