/* fork_signal: a single-threaded program whose SIGALRM handler forks while the main loop is
 * allocating and freeing (so the fork often lands inside the allocator). The child allocates,
 * frees and _exits; the parent reaps it from the main loop. 50 forks by default. A deadlock, in
 * the parent or in a child, shows as the runner's timeout.
 * Exit 0: every child exited 0. Exit 4: no deadlock, but some children died (the program says
 * how on stderr): hakmem does not guard its fast paths, so a fork that interrupts one leaves the
 * child a half-updated thread cache; the runner reports that as a known gap.
 *   fork_signal [FORKS] */
#include "rel.h"

#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>

static volatile sig_atomic_t forks, fork_failures;

static void on_alarm(int sig)
{
	(void)sig;
	int saved = errno;
	pid_t pid = fork();
	if (pid == 0) {
		/* The child: whatever the parent was doing in malloc, this must work. */
		void *v[32];
		for (int i = 0; i < 32; i++) {
			v[i] = malloc((size_t)i * 100 + 1);
			if (!v[i])
				REL_FAIL("child: malloc failed");
			memset(v[i], 3, (size_t)i * 100 + 1);
		}
		void *big = malloc(1 << 20);
		if (!big)
			REL_FAIL("child: large malloc failed");
		for (int i = 0; i < 32; i++)
			free(v[i]);
		free(big);
		_exit(0);
	}
	if (pid > 0)
		forks++;
	else
		fork_failures++;
	errno = saved;
}

int main(int argc, char **argv)
{
	int want = argc > 1 ? atoi(argv[1]) : 50;
	rel_alarm_every(on_alarm, 2000); /* every 2 ms */

	void *slot[512] = {0};
	unsigned seed = 1, reaped = 0, died = 0, last_status = 0;
	unsigned long iterations = 0;
	while ((int)reaped < want) {
		for (int i = 0; i < 512; i++) {
			seed = seed * 1103515245 + 12345;
			size_t n = (seed >> 8) % 3000 + 1;
			if ((seed >> 22) % 128 == 0)
				n = 200000; /* a large block: the slow path holds a lock */
			free(slot[i]);
			slot[i] = malloc(n);
			REL_CHECK(slot[i], "malloc(%zu) failed", n);
			((char *)slot[i])[n - 1] = 1;
		}
		iterations++;
		int st;
		pid_t pid;
		while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				died++;
				last_status = (unsigned)st;
			}
			reaped++;
		}
	}
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &off, NULL);
	int st;
	pid_t pid;
	while ((pid = waitpid(-1, &st, 0)) > 0) {
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			died++;
			last_status = (unsigned)st;
		}
	}
	for (int i = 0; i < 512; i++)
		free(slot[i]);
	if (died) {
		fprintf(stderr, "fork_signal: %u of %d children died (last: %s %d); no deadlock\n", died, (int)forks,
			WIFSIGNALED(last_status) ? "killed by signal" : "exit status",
			WIFSIGNALED(last_status) ? WTERMSIG(last_status) : WEXITSTATUS(last_status));
		return 4;
	}
	printf("fork_signal: %d forks from a SIGALRM handler during malloc/free (%d fork failures), %lu loops: ok\n",
	       (int)forks, (int)fork_failures, iterations);
	return 0;
}
