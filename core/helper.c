/* helper.c: layer 7 (services), the core's side of a policy's helper thread: core_api
 * spawn_helper, helper_sleep and helper_wake. The helper starts with every signal blocked (a
 * program's handler must not run inside a trim pass), sleeps on a futex the allocator wakes when
 * there is work, and ends itself when it is the last thread of the process: POSIX ends a process
 * when its last thread ends, and glibc does it from whichever thread ends last (start_thread
 * calls exit(0) when its count of threads reaches 0), so a process whose main thread called
 * pthread_exit() would otherwise live on with only the helper, SIGTERM pending for ever (the
 * helper blocks it).
 *
 * Knowing "last": once the main thread has called pthread_exit() (its exit hook says so:
 * hak__threads_leader_gone), the process can only end that way, and the helper reads
 * /proc/self/stat at each wake-up, at least every LAST_POLL_MS: an exited main thread stays a
 * zombie in the thread group until the process ends and is still counted in num_threads, so the
 * helper is alone at num_threads == 2 (the polling is needed: threads that never allocated end
 * unseen by hakmem). Without /proc nothing is known and the helper stays, as before. */
#include "services.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "os.h"
#include "thread.h"

#define LAST_POLL_MS 200         /* main thread gone: the process ends this soon after its last thread */
#define HELPER_STACK (256 << 10) /* exit() may run on it: atexit handlers, stdio flushing */

static _Atomic uint32_t wake_seq; /* futex word: bumped by each helper_wake */
static _Atomic int waiting;       /* the helper waits with no time limit */
static __thread uint32_t seen_seq __attribute__((tls_model("initial-exec"))); /* the helper's */

struct helper_start {
	void *(*fn)(void *);
	void *arg;
	sigset_t mask; /* the spawning thread's: restored when the helper ends */
};

static void *helper_main(void *p)
{
	struct helper_start *h = p;
	prctl(PR_SET_NAME, "hakmem-helper", 0, 0, 0); /* trace.c's writer counts on the name */
	seen_seq = atomic_load(&wake_seq);
	void *r = h->fn(h->arg);
	/* If this is the last thread, glibc's start_thread calls exit(0) on it: with the program's
	 * signal mask, not the helper's. */
	pthread_sigmask(SIG_SETMASK, &h->mask, NULL);
	return r;
}

int hak__helper_spawn(void *(*fn)(void *), void *arg)
{
	struct helper_start *h = hak__meta_alloc(sizeof *h); /* kept: a few per process at most */
	if (!h)
		return ENOMEM;
	h->fn = fn;
	h->arg = arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &h->mask);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, HELPER_STACK);
	pthread_t tid;
	int err = pthread_create(&tid, &attr, helper_main, h);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &h->mask, NULL);
	return err;
}

/* num_threads (field 20) of /proc/self/stat, or -1. The command name (field 2) may hold spaces
 * and parentheses: count from the last ')'. No stdio, no allocation. */
static long count_threads(void)
{
	char buf[1024];
	int saved = errno;
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
	if (fd >= 0)
		close(fd);
	errno = saved;
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	for (int field = 2; p && field < 20; field++) /* p at the space before field `field + 1` */
		p = strchr(p + 1, ' ');
	return p ? strtol(p + 1, NULL, 10) : -1;
}

static bool last_thread(void)
{
	if (!hak__threads_leader_gone())
		return false;
	long n = count_threads();
	return n > 0 && n <= 2; /* the main thread's zombie and this one */
}

int hak__helper_sleep(uint64_t ns)
{
	if (last_thread())
		return 1;
	if (hak__threads_leader_gone() && ns > (uint64_t)LAST_POLL_MS * 1000000u)
		ns = (uint64_t)LAST_POLL_MS * 1000000u;
	int saved = errno;
	if (ns != UINT64_MAX) {
		/* A period runs its length: the allocator wakes the helper at every tick while it is
		 * busy, and a policy that paces its passes by the period (idle, decay) would otherwise
		 * pass back to back, purging what the program is about to use again. What arrived
		 * meanwhile the policy reads in its own work count when this returns. */
		struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
		while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
			;
	} else {
		uint32_t seq = atomic_load(&wake_seq);
		if (seq == seen_seq) { /* else a wake came since the previous return: it counts */
			atomic_exchange(&waiting, 1); /* a full barrier before the kernel reads wake_seq */
			syscall(SYS_futex, &wake_seq, FUTEX_WAIT_PRIVATE, seq, NULL, NULL, 0);
			atomic_store(&waiting, 0);
		}
	}
	errno = saved;
	seen_seq = atomic_load(&wake_seq);
	return last_thread();
}

void hak__helper_wake(void)
{
	atomic_fetch_add(&wake_seq, 1);
	if (atomic_load(&waiting)) {
		int saved = errno;
		syscall(SYS_futex, &wake_seq, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
		errno = saved;
	}
}

/* In the child after fork(): the helper did not come along. */
void hak__helper_fork_child(void)
{
	atomic_store(&waiting, 0);
}
