/* exit_free: memory freed after exit() started. An atexit handler and a destructor free blocks
 * allocated earlier (and allocate and free new ones), while a detached thread keeps allocating
 * and freeing as main returns. Run in CHILDREN forked children, each returning from its own
 * scenario through exit(); each must exit 0 with nothing on stderr.
 *   exit_free [CHILDREN]     default 20; `exit_free once` runs the scenario in this process */
#include "rel.h"

#include <pthread.h>
#include <sys/wait.h>

#define KEPT 1000

static void *for_atexit[KEPT], *for_destructor[KEPT];

static void churn(void **v, int n, unsigned seed)
{
	for (int i = 0; i < n; i++) {
		seed = seed * 1103515245 + 12345;
		size_t size = seed % 4 == 0 ? 150000 : (seed >> 8) % 3000 + 1;
		void *p = malloc(size);
		if (!p)
			REL_FAIL("malloc(%zu) failed during exit", size);
		memset(p, 1, size < 64 ? size : 64);
		free(v[i % 16]);
		v[i % 16] = p;
	}
}

static void at_exit(void)
{
	for (int i = 0; i < KEPT; i++) {
		if (!rel_intact(for_atexit[i], 16, (unsigned)i))
			REL_FAIL("atexit: a block changed");
		free(for_atexit[i]);
	}
	void *v[16] = {0};
	churn(v, 2000, 3);
	for (int i = 0; i < 16; i++)
		free(v[i]);
}

__attribute__((destructor)) static void at_destruct(void)
{
	if (!for_destructor[0])
		return; /* not the scenario's process */
	for (int i = 0; i < KEPT; i++) {
		if (!rel_intact(for_destructor[i], 16, (unsigned)i + 1))
			REL_FAIL("destructor: a block changed");
		free(for_destructor[i]);
	}
	void *v[16] = {0};
	churn(v, 2000, 5);
	for (int i = 0; i < 16; i++)
		free(v[i]);
}

/* Never stops: the process exits under it. */
static void *churner(void *arg)
{
	void *v[16] = {0};
	unsigned seed = (unsigned)(uintptr_t)arg;
	for (;;) {
		churn(v, 1000, seed);
		seed += 17;
	}
	return NULL;
}

static int scenario(void)
{
	for (int i = 0; i < KEPT; i++) {
		for_atexit[i] = malloc((size_t)i % 700 + 16);
		for_destructor[i] = malloc((size_t)i % 500 + 16);
		REL_CHECK(for_atexit[i] && for_destructor[i], "malloc failed");
		rel_fill(for_atexit[i], 16, (unsigned)i);
		rel_fill(for_destructor[i], 16, (unsigned)i + 1);
	}
	REL_CHECK(atexit(at_exit) == 0, "atexit failed");
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	for (int i = 0; i < 2; i++) {
		pthread_t t;
		REL_CHECK(pthread_create(&t, &a, churner, (void *)(uintptr_t)(i + 1)) == 0, "pthread_create failed");
	}
	void *v[16] = {0};
	churn(v, 5000, 9); /* the churners are well under way */
	return 0;          /* blocks in v stay allocated: exit does not care */
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "once") == 0)
		return scenario(); /* returning from main is exit(): the handlers run with the threads */
	int children = argc > 1 ? atoi(argv[1]) : 20;
	fflush(stdout);
	for (int i = 0; i < children; i++) {
		pid_t pid = fork();
		REL_CHECK(pid >= 0, "fork failed");
		if (pid == 0)
			exit(scenario());
		int st;
		REL_CHECK(waitpid(pid, &st, 0) == pid, "waitpid failed");
		REL_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d: status 0x%x (%s %d)", i, (unsigned)st,
			  WIFSIGNALED(st) ? "signal" : "exit", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	}
	printf("exit_free: %d processes exited (atexit and destructor freeing, 2 threads still churning): ok\n",
	       children);
	return 0;
}
