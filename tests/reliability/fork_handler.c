/* fork_handler: fork() from a signal handler, the way glibc's own tests do it (tst-mallocfork2,
 * tst-mallocfork3). The handler forks wherever the signal landed (inside malloc, realloc, free,
 * inside another fork); the child allocates, reallocates, frees and _exits; the handler waits
 * for it. A deadlock, in the parent or in a child, shows as the runner's timeout.
 *   fork_handler main [FORKS]     a timer signal (SIGALRM about every 1 ms) while the only thread loops
 *                                 over malloc/realloc/free
 *   fork_handler threads [FORKS]  4 threads loop over malloc/realloc/free; a fifth sends SIGUSR1
 *                                 to them in turn
 *   fork_handler nested [FORKS]   the only thread forks in its loop too, and the timer (about
 *                                 every 100 us) comes during those forks: a fork from a handler
 *                                 inside a fork() call of the same thread (glibc's tst-mallocfork2;
 *                                 glibc allows it when its process has one thread, and an allocator's
 *                                 helper thread must not take that away). "inside a fork" counts
 *                                 the handler's forks that ran while the loop's fork() had not
 *                                 returned.
 * Exit 0: FORKS children forked from the handler, each exited 0. */
#include "rel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

static atomic_int forks, stop;
static volatile sig_atomic_t in_fork, nested;
static _Thread_local atomic_int *handled; /* the worker's count of handler runs */
static long timer_usec;  /* 0: the signals come from a thread */
static unsigned timer_seed = 12345;

/* One shot, re-armed by the handler once it is done, 0.5 to 1.5 times timer_usec later: a handler
 * that takes longer than the period (a fork of a big process) would otherwise find the next
 * signal pending when it returns, and the interrupted code would never move on. */
static void timer_arm(void)
{
	timer_seed = timer_seed * 1103515245 + 12345;
	long us = timer_usec / 2 + (long)((timer_seed >> 8) % (unsigned long)timer_usec);
	struct itimerval it = {{0, 0}, {us / 1000000, us % 1000000}};
	setitimer(ITIMER_REAL, &it, NULL);
}

/* The child: whatever its parent was doing in the allocator, this must work. */
static void child_work(void)
{
	void *v[40];
	for (int i = 0; i < 40; i++) {
		size_t n = (size_t)i * 97 + 1;
		if (i % 13 == 12)
			n = (size_t)(i + 1) << 14; /* large blocks too */
		v[i] = malloc(n);
		if (!v[i])
			REL_FAIL("child: malloc(%zu) failed", n);
		memset(v[i], i, n);
	}
	for (int i = 0; i < 40; i += 2) {
		void *q = realloc(v[i], (size_t)i * 300 + 50);
		if (!q)
			REL_FAIL("child: realloc failed");
		v[i] = q;
	}
	for (int i = 0; i < 40; i++)
		free(v[i]);
	_exit(0);
}

static void handler(int sig)
{
	(void)sig;
	int saved = errno;
	if (in_fork)
		nested++;
	pid_t pid = fork();
	if (pid == 0)
		child_work();
	if (pid < 0)
		REL_FAIL("fork from the handler failed: %s", strerror(errno));
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			REL_FAIL("waitpid failed: %s", strerror(errno));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		REL_FAIL("a child forked from the handler ended with status 0x%x", (unsigned)st);
	atomic_fetch_add(&forks, 1);
	if (handled)
		atomic_fetch_add(handled, 1);
	if (timer_usec)
		timer_arm();
	errno = saved;
}

/* malloc/realloc/free over a table of blocks, sizes 1 B .. 3 KB with some large ones; now and
 * then a burst of 100 KB blocks freed at once, so SuperSlabs empty and the trim policy unmaps
 * and purges (system calls under the allocator's locks, outside its slow paths). */
static void churn(void **slot, unsigned n, unsigned *seed)
{
	if ((*seed >> 4) % 8 == 0) {
		void *burst[40];
		for (int i = 0; i < 40; i++)
			REL_CHECK((burst[i] = malloc(100000)) != NULL, "malloc(100000) failed");
		for (int i = 0; i < 40; i++)
			free(burst[i]);
	}
	for (unsigned i = 0; i < n; i++) {
		*seed = *seed * 1103515245 + 12345;
		size_t size = (*seed >> 8) % 3000 + 1;
		if ((*seed >> 22) % 128 == 0)
			size = 200000;
		switch ((*seed >> 12) % 3) {
		case 0:
			free(slot[i]);
			slot[i] = malloc(size);
			break;
		case 1:
			slot[i] = realloc(slot[i], size);
			break;
		default:
			free(slot[i]);
			slot[i] = calloc(1, size);
		}
		REL_CHECK(slot[i], "allocation of %zu bytes failed", size);
		((char *)slot[i])[size - 1] = 1;
	}
}

static void on_signal(int signo, long usec)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	REL_CHECK(sigaction(signo, &sa, NULL) == 0, "sigaction failed");
	timer_usec = usec;
	if (usec)
		timer_arm();
}

static void timer_off(void)
{
	timer_usec = 0;
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &off, NULL);
}

static int run_main(int want)
{
	void *slot[256] = {0};
	unsigned seed = 1;
	on_signal(SIGALRM, 1000);
	while (atomic_load(&forks) < want)
		churn(slot, 256, &seed);
	timer_off();
	for (int i = 0; i < 256; i++)
		free(slot[i]);
	printf("fork_handler: %d forks from a SIGALRM handler during malloc/realloc/free: ok\n", atomic_load(&forks));
	return 0;
}

enum { WORKERS = 4 };
static atomic_int done[WORKERS], ready;

static void *worker(void *arg)
{
	void *slot[128] = {0};
	unsigned seed = (unsigned)(uintptr_t)arg;
	handled = &done[seed - 1];
	atomic_fetch_add(&ready, 1); /* signals only from now on: the handler counts through `handled` */
	while (!atomic_load(&stop))
		churn(slot, 128, &seed);
	for (int i = 0; i < 128; i++)
		free(slot[i]);
	return NULL;
}

static int run_threads(int want)
{
	on_signal(SIGUSR1, 0);
	pthread_t w[WORKERS];
	for (int i = 0; i < WORKERS; i++)
		REL_CHECK(pthread_create(&w[i], NULL, worker, (void *)(uintptr_t)(i + 1)) == 0, "pthread_create failed");
	/* The sender (this thread): every 250 us a signal to the next worker whose handler is done
	 * with the previous one (so every worker moves on between two forks). */
	struct timespec ts = {0, 250000};
	int sent[WORKERS] = {0};
	while (atomic_load(&ready) < WORKERS)
		nanosleep(&ts, NULL);
	for (unsigned k = 0; atomic_load(&forks) < want; k++) {
		unsigned i = k % WORKERS;
		if (atomic_load(&done[i]) == sent[i]) {
			sent[i]++;
			pthread_kill(w[i], SIGUSR1);
		}
		nanosleep(&ts, NULL);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < WORKERS; i++)
		pthread_join(w[i], NULL);
	printf("fork_handler: %d forks from a SIGUSR1 handler in %d threads allocating: ok\n", atomic_load(&forks),
	       WORKERS);
	return 0;
}

static int run_nested(int want)
{
	void *slot[64] = {0};
	unsigned seed = 7, outer = 0;
	on_signal(SIGALRM, 100);
	while (atomic_load(&forks) < want) {
		churn(slot, 64, &seed);
		in_fork = 1;
		pid_t pid = fork();
		in_fork = 0;
		if (pid == 0)
			child_work();
		REL_CHECK(pid > 0, "fork failed: %s", strerror(errno));
		int st;
		while (waitpid(pid, &st, 0) < 0)
			REL_CHECK(errno == EINTR, "waitpid failed: %s", strerror(errno));
		REL_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "a child of the main loop ended with status 0x%x",
			  (unsigned)st);
		outer++;
	}
	timer_off();
	for (int i = 0; i < 64; i++)
		free(slot[i]);
	printf("fork_handler: %d forks from a SIGALRM handler, %u forks from the loop, %d handler forks inside "
	       "a fork: ok\n",
	       atomic_load(&forks), outer, (int)nested);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "main";
	int want = argc > 2 ? atoi(argv[2]) : 100;
	if (!strcmp(mode, "main"))
		return run_main(want);
	if (!strcmp(mode, "threads"))
		return run_threads(want);
	if (!strcmp(mode, "nested"))
		return run_nested(want);
	fprintf(stderr, "usage: fork_handler main|threads|nested [FORKS]\n");
	return 2;
}
