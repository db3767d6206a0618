/* signal_reentry: a SIGALRM handler calls malloc and free while the same thread is inside
 * malloc or free. Two outcomes are correct: the program completes (the handler happened to land
 * outside a slow path every time), or hakmem prints its one re-entry line and aborts. A hang
 * (the runner's timeout) or any other crash is a failure.
 * The handler uses the large path and a size class the main loop never uses, so that an
 * interrupt inside the (unguarded, lock-free) fast path cannot corrupt the main loop's cache;
 * the main loop mixes small frees that overflow and refill the cache with large blocks, so the
 * handler often lands in a slow path.
 *   signal_reentry [SECONDS]    default 3 */
#include "rel.h"

#include <signal.h>
#include <sys/time.h>
#include <time.h>

static volatile sig_atomic_t handled;

static void on_alarm(int sig)
{
	(void)sig;
	int saved = errno;
	void *a = malloc(3000);      /* a class the main loop never uses */
	void *b = malloc(300 << 10); /* a large block */
	if (!a || !b)
		REL_FAIL("malloc in the signal handler failed");
	free(a);
	free(b);
	handled++;
	errno = saved;
}

int main(int argc, char **argv)
{
	int seconds = argc > 1 ? atoi(argv[1]) : 3;
	rel_alarm_every(on_alarm, 500);

	static void *slot[4096];
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	unsigned long loops = 0;
	do {
		for (int i = 0; i < 4096; i++) /* small: fills, overflows and refills the caches */
			slot[i] = malloc((size_t)(i % 8) * 64 + 16);
		for (int i = 0; i < 4096; i++)
			free(slot[i]);
		for (int i = 0; i < 8; i++) { /* large: a locked slow path every time */
			void *p = malloc((size_t)(i + 1) << 18);
			REL_CHECK(p, "large malloc failed");
			free(p);
		}
		loops++;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (t.tv_sec - t0.tv_sec < seconds);
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &off, NULL);
	printf("signal_reentry: completed: %lu loops, %d handler runs, no re-entry detected\n", loops, (int)handled);
	return 0;
}
