/* fork.c: layer 9 (edge), what fork() does to hakmem: the atfork handlers. Before the fork the
 * forking thread takes glibc's stdio list lock and then every hakmem lock, so the child gets a
 * heap no other thread was half-way through changing; the parent releases them; the child resets
 * them (each layer's fork_child) and retires the states of the threads that did not come along.
 * Also: fork() from a signal handler (the interrupted code may hold some of those locks: lock.h)
 * and fork() re-entered on one thread.
 *
 * Four rules, each against a deadlock that was seen:
 * 1. glibc's stdio list lock comes first. glibc's fork() takes it only after the prepare
 *    handlers ran (posix/fork.c, 2.36: __run_prefork_handlers, then `_IO_list_lock ()`, then its
 *    own malloc locks, "last because fork handlers may use malloc, and the libio list lock has an
 *    indirect malloc dependency as well (via the getdelim function)"). Holding hakmem's locks
 *    while fork waits for it closes a cycle: the forking thread waits for the list lock,
 *    fflush(NULL) holds it and waits for a FILE's lock, getdelim/rewind/setvbuf holds that FILE's
 *    lock and waits in malloc for a hakmem lock. So the prepare handler takes the list lock
 *    (exported, and recursive: a fork from a handler that interrupted stdio on this thread gets
 *    it again) before any hakmem lock: the order glibc's own malloc gets. The parent handler
 *    releases it once (fork released its own level just before). The child does not unlock it:
 *    fork reset it (`_IO_list_resetlock ()`); it resets it once more only for the case where
 *    fork saw one thread and this handler several (a thread being created at that moment: glibc
 *    then neither takes nor resets it). With a single thread nobody else can hold it, and it is
 *    not taken, as glibc does not. Alternatives weighed: dropping hakmem's locks before fork (no
 *    snapshot) gives the child a heap other threads were changing; a prepare handler that runs
 *    first changes nothing (the list lock is taken after all of them); making malloc never wait
 *    for a lock a forking thread holds cannot give a consistent child.
 * 2. While it holds the list lock the forking thread never waits for a hakmem lock: it only tries
 *    them, in lock order; when one is busy it lets everything go (list lock included), waits for
 *    that one alone, holding nothing, and starts again. A thread interrupted inside hakmem whose
 *    signal handler forks needs the list lock (glibc takes it after the handlers) while it holds
 *    its hakmem lock: a fork that held the list lock and waited for that hakmem lock would wait
 *    for ever. The policies' locks come between the core's thread locks and its slab locks,
 *    through their fork_try_prepare (ABI 2.1); a policy without one is waited for (the one wait
 *    left under the list lock).
 * 3. A fork from a signal handler that interrupted this thread while it held or awaited a hakmem
 *    lock, or inside a policy call, only tries each lock a bounded number of times and never one
 *    the interrupted code may hold (lock.h); a policy without a try is left alone. The child then
 *    leaves this thread's own state alone (it may be half-updated: leaked) and starts a fresh one,
 *    as after a fork that interrupted a slow path.
 * 4. No signal handler runs inside a fork. hakmem exports fork() (api.c): it blocks every signal,
 *    calls glibc's (__fork, the same function), and restores the mask in the parent and in the
 *    child. glibc's fork holds its own atfork lock (not recursive) from before the prepare
 *    handlers to after the parent or child handlers, except while each handler runs; a handler
 *    that forks inside that window deadlocks in glibc itself. glibc only takes that lock in a
 *    multi-threaded process, so its own async-signal-safe fork (tst-mallocfork2) works in a
 *    single-threaded one, but hakmem's trim helper makes every process multi-threaded: without
 *    this, hakmem would break the very case glibc supports. Signals that come meanwhile are
 *    delivered when fork() returns, in the parent (a child starts with none pending). The atfork
 *    handlers block signals too, from the prepare handler to the parent or child handler, for a
 *    fork that does not go through fork() (__fork, forkpty, daemon: glibc calls its own).
 *    A fork inside that window all the same (another library's atfork handler calling fork)
 *    takes and releases nothing; its child resets every lock. */
#include <errno.h>
#include <signal.h>
#include <sys/single_threaded.h>
#include <unistd.h>

#include "alloc.h"
#include "large.h"
#include "lock.h"
#include "os.h"
#include "policy_call.h"
#include "services.h"
#include "slab.h"
#include "startup.h"
#include "trim.h"

/* glibc's stdio list lock (libio/genops.c), exported since 2.2.5; no header declares them since
 * <libio.h> went away. Weak: absent from other C libraries. */
extern void _IO_list_lock(void) __attribute__((weak));
extern void _IO_list_unlock(void) __attribute__((weak));
extern void _IO_list_resetlock(void) __attribute__((weak));

/* Per thread: signals are blocked while a frame is in use, and several threads may fork at once. */
static __thread unsigned depth __attribute__((tls_model("initial-exec")));
static __thread sigset_t saved_mask __attribute__((tls_model("initial-exec")));
static __thread bool io_locked, dirty __attribute__((tls_model("initial-exec")));

/* ---- The policies' locks, as lock.h sees them ---------------------------------------------------- */

static bool policy_try(void *p)
{
	return hak__pcall_fork_try_prepare(p);
}

static void policy_take(void *p)
{
	hak__pcall_fork_prepare(p);
}

static void policy_release(void *p)
{
	hak__pcall_fork_parent(p);
}

static const struct hak_fork_lock_ops policy_try_ops = {policy_try, policy_take, policy_release, NULL, true};
static const struct hak_fork_lock_ops policy_wait_ops = {NULL, policy_take, policy_release, NULL, true};

static bool take_policies(void)
{
	for (uint32_t k = 1; k <= HAK_KIND_COUNT; k++)
		for (unsigned i = 0, n = hak__policy_count(k); i < n; i++) {
			struct hak_policy *p = hak__policy_at(k, i);
			if (hak__pcall_has_fork_locks(p) &&
			    !hak__fork_take(hak__pcall_has_fork_try(p) ? &policy_try_ops : &policy_wait_ops, p))
				return false;
		}
	return true;
}

/* In lock order: thread (orphan, registry), the policies', slab (abandoned, pool), large, arena. */
static bool take_all(void)
{
	return hak__thread_fork_prepare() && take_policies() && hak__slab_fork_prepare() && hak__large_fork_prepare() &&
	       hak__os_fork_prepare();
}

/* ---- The handlers ------------------------------------------------------------------------------------ */

static void fork_prepare(void)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	if (depth++)
		return;
	saved_mask = old;
	bool trying = hak__fork_frame_begin();
	dirty = trying || hak__busy;
	io_locked = !__libc_single_threaded && _IO_list_lock && _IO_list_unlock;
	for (;;) {
		if (io_locked)
			_IO_list_lock();
		if (take_all())
			return;
		hak__fork_release_all();
		if (io_locked)
			_IO_list_unlock();
		hak__fork_wait_busy();
	}
}

static void fork_parent(void)
{
	if (--depth)
		return;
	hak__fork_release_all();
	if (io_locked)
		_IO_list_unlock();
	pthread_sigmask(SIG_SETMASK, &saved_mask, NULL);
}

static void fork_child(void)
{
	bool outer = --depth == 0;
	bool self_dirty = dirty || !outer;
	if (outer && io_locked && _IO_list_resetlock)
		_IO_list_resetlock();
	io_locked = false;
	hak__fork_frame_forget(); /* every lock is reset below: an outer fork releases nothing */
	hak__busy = 0;            /* the child starts outside any slow path it may have been forked from */
	hak__os_fork_child();
	hak__trim_fork_child();
	hak__large_fork_child();
	hak__slab_fork_child();
	hak__helper_fork_child();
	hak__pcall_fork_child_all();
	hak__thread_fork_child(!self_dirty);
	if (outer)
		pthread_sigmask(SIG_SETMASK, &saved_mask, NULL);
}

void hak__fork_install(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

extern pid_t __fork(void); /* glibc's fork, exported since 2.2.5 (fork is its weak alias) */

int hak__fork(void)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	pid_t pid = __fork();
	int saved = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = saved;
	return pid;
}
