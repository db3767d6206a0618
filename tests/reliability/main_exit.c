/* main_exit: the main thread calls pthread_exit() while another thread still runs; when that one
 * returns, the process must end with status 0 (POSIX: the process ends with its last thread). An
 * allocator's helper thread must not keep it alive (nor keep SIGTERM pending for ever). First the
 * heap gets busy and a thread exits, which starts an idle-trim helper; the program says whether it
 * saw one ("helper: yes", a thread it did not start), so the runner can tell that the case was
 * really exercised. A process that never ends shows as the runner's timeout.
 *   main_exit plain    in this process
 *   main_exit fork     the same in the child of a fork() made by a non-main thread: the child's
 *                      only thread (its main thread now) does it; the parent waits for the child */
#include "rel.h"

#include <dirent.h>
#include <pthread.h>
#include <sys/wait.h>

static int count_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return -1;
	int n = 0;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void *allocating(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	for (int i = 0; i < 20000; i++) {
		seed = seed * 1103515245 + 12345;
		void *p = malloc((seed >> 8) % 4000 + 1);
		REL_CHECK(p, "malloc failed");
		free(p);
	}
	return NULL;
}

static void *sleeper(void *arg)
{
	(void)arg;
	struct timespec ts = {0, 200000000}; /* 0.2 s */
	nanosleep(&ts, NULL);
	return NULL;
}

/* Busy heap, a thread that allocates and exits (its exit ticks the trim policy), then the
 * sleeper, then pthread_exit() of the calling thread, the process's main thread. */
static _Noreturn void run(const char *who)
{
	void *keep[2000];
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 2000; i++)
			REL_CHECK((keep[i] = malloc((size_t)(i % 50) * 64 + 16)) != NULL, "malloc failed");
		for (int i = 0; i < 2000; i++)
			free(keep[i]);
	}
	pthread_t t;
	REL_CHECK(pthread_create(&t, NULL, allocating, (void *)7) == 0, "pthread_create failed");
	pthread_join(t, NULL);
	allocating((void *)9);
	int threads = count_threads(); /* this one, and a helper if the allocator runs one */
	REL_CHECK(pthread_create(&t, NULL, sleeper, NULL) == 0, "pthread_create failed");
	printf("main_exit: %s: helper: %s; main thread calls pthread_exit\n", who, threads > 1 ? "yes" : "no");
	fflush(stdout);
	pthread_exit(NULL);
}

static void *forker(void *arg)
{
	(void)arg;
	pid_t pid = fork();
	REL_CHECK(pid >= 0, "fork failed: %s", strerror(errno));
	if (pid == 0)
		run("fork child");
	/* A child that never ends is killed here (20 s: a hang, not a slow child), so none is left. */
	int st;
	pid_t got = 0;
	for (int i = 0; i < 2000 && (got = waitpid(pid, &st, WNOHANG)) == 0; i++) {
		struct timespec ts = {0, 10000000};
		nanosleep(&ts, NULL);
	}
	if (got == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		REL_FAIL("the child did not end in 20 s after its last thread ended (killed)");
	}
	REL_CHECK(got == pid, "waitpid failed");
	REL_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child ended with status 0x%x", (unsigned)st);
	printf("main_exit: the child exited 0: ok\n");
	return NULL;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "plain";
	if (!strcmp(mode, "plain"))
		run("plain");
	if (!strcmp(mode, "fork")) {
		allocating((void *)3);
		pthread_t t;
		REL_CHECK(pthread_create(&t, NULL, forker, NULL) == 0, "pthread_create failed");
		pthread_join(t, NULL);
		return 0;
	}
	fprintf(stderr, "usage: main_exit plain|fork\n");
	return 2;
}
