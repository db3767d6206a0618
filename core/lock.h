/* lock.h: layer 0, the locks a thread holds, as fork() must see them (lock.c).
 *
 * Every core lock is taken through hak__lock / hak__trylock and released through hak__unlock
 * (the metadata arena's spin flag through hak__held_push/pop around it), which note it in a
 * small per-thread list BEFORE waiting for it and drop it AFTER releasing it; a call into a
 * policy, which may hold the policy's own locks, counts in `opaque` while it runs
 * (policy_call.h). A signal handler that forks reads this list: the locks on it may be held by
 * the very code it interrupted, so the fork must neither wait for them (a self-deadlock) nor
 * release them. Cost: a few stores per lock, on slow paths only.
 *
 * The fork frame (fork.c drives it): the locks one fork() took, in order, so the parent side
 * releases exactly those, in reverse. hak__fork_take takes a lock the way this fork may: a
 * plain fork only tries it and reports a busy one (fork.c lets everything go and waits for that
 * one alone, holding nothing: it never waits while holding glibc's stdio list lock); a fork from
 * a handler that interrupted code holding a lock ("trying") tries a bounded number of times and
 * goes on without it, and never tries one on this thread's list. */
#ifndef HAK_LOCK_H
#define HAK_LOCK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#define HAK_HELD_MAX 10 /* deepest nesting seen is 5 (orphan, thread, policy, pool, arena) */

struct hak_held {
	void *lock[HAK_HELD_MAX]; /* the first n (at most HAK_HELD_MAX) locks held or awaited */
	unsigned n;               /* how many; above HAK_HELD_MAX the list is incomplete */
	unsigned opaque;          /* policy calls in progress: their locks are not listed */
};
__attribute__((visibility("hidden"))) extern __thread struct hak_held hak__held;

/* Compiler barriers only: the reader is a signal handler on the same thread. */
static inline __attribute__((always_inline)) void hak__held_push(void *lock)
{
	unsigned n = hak__held.n;
	if (n < HAK_HELD_MAX)
		hak__held.lock[n] = lock;
	atomic_signal_fence(memory_order_seq_cst);
	hak__held.n = n + 1;
	atomic_signal_fence(memory_order_seq_cst);
}

/* Usually the last entry; a lock released out of order moves the later ones down, copying
 * forward, so a handler that runs meanwhile sees every lock still held (one maybe twice). */
static inline __attribute__((always_inline)) void hak__held_pop(void *lock)
{
	atomic_signal_fence(memory_order_seq_cst);
	unsigned n = hak__held.n - 1;
	if (n < HAK_HELD_MAX && hak__held.lock[n] != lock) {
		unsigned i = 0;
		while (i < n && hak__held.lock[i] != lock)
			i++;
		for (; i < n; i++) {
			hak__held.lock[i] = hak__held.lock[i + 1];
			atomic_signal_fence(memory_order_seq_cst);
		}
	}
	hak__held.n = n;
	atomic_signal_fence(memory_order_seq_cst);
}

/* Is lock on this thread's list? An incomplete list counts every lock as held. */
static inline bool hak__held_has(const void *lock)
{
	unsigned n = hak__held.n;
	if (n > HAK_HELD_MAX)
		return true;
	for (unsigned i = 0; i < n; i++)
		if (hak__held.lock[i] == lock)
			return true;
	return false;
}

static inline __attribute__((always_inline)) void hak__lock(pthread_mutex_t *m)
{
	hak__held_push(m);
	pthread_mutex_lock(m);
}

static inline __attribute__((always_inline)) int hak__trylock(pthread_mutex_t *m)
{
	hak__held_push(m);
	int err = pthread_mutex_trylock(m);
	if (err)
		hak__held_pop(m);
	return err;
}

static inline __attribute__((always_inline)) void hak__unlock(pthread_mutex_t *m)
{
	pthread_mutex_unlock(m);
	hak__held_pop(m);
}

/* Around a call into a policy (it may take its own locks). */
static inline __attribute__((always_inline)) void hak__opaque_begin(void)
{
	hak__held.opaque++;
	atomic_signal_fence(memory_order_seq_cst);
}

static inline __attribute__((always_inline)) void hak__opaque_end(void)
{
	atomic_signal_fence(memory_order_seq_cst);
	hak__held.opaque--;
}

/* ---- The fork frame ------------------------------------------------------------------------- */

/* A kind of lock a fork takes: try (true: taken; NULL: there is no try), take (blocking),
 * release, and wait (holding nothing, until a busy one is likely free; NULL: take, release).
 * `policy`: locks this thread may hold whenever it is inside a policy call (opaque). */
struct hak_fork_lock_ops {
	bool (*try_take)(void *obj);
	void (*take)(void *obj);
	void (*release)(void *obj);
	void (*wait)(void *obj);
	bool policy;
};
__attribute__((visibility("hidden"))) extern const struct hak_fork_lock_ops hak__fork_mutex_ops,
	hak__fork_flag_ops;

/* Start this thread's frame: is the fork "trying" (this thread holds or awaits a lock, or is
 * inside a policy call)? hak__fork_trying: the frame's answer, for a lock made of many. */
__attribute__((visibility("hidden"))) bool hak__fork_frame_begin(void);
__attribute__((visibility("hidden"))) bool hak__fork_trying(void);
#define HAK_FORK_TRIES 1000 /* a trying fork's attempts per lock, a sched_yield between two */
/* Take one lock for the fork (see above); false: a plain fork found it busy (stop, back off). */
__attribute__((visibility("hidden"))) bool hak__fork_take(const struct hak_fork_lock_ops *ops, void *obj);
static inline bool hak__fork_take_mutex(pthread_mutex_t *m)
{
	return hak__fork_take(&hak__fork_mutex_ops, m);
}
/* Did this fork take obj (it is in the frame)? Asked by a prepare step right after its take: a
 * trying fork may go on without a lock, and the child must then not trust what it guards. */
__attribute__((visibility("hidden"))) bool hak__fork_took(const void *obj);
/* Release what the frame took, in reverse; wait (holding nothing) for the lock found busy. */
__attribute__((visibility("hidden"))) void hak__fork_release_all(void);
__attribute__((visibility("hidden"))) void hak__fork_wait_busy(void);
/* In the child: every lock is reset, the frame forgets what it took. */
__attribute__((visibility("hidden"))) void hak__fork_frame_forget(void);

#endif
