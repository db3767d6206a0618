/* lock.c: layer 0, the per-thread list of locks held and the fork frame (see lock.h). */
#include "lock.h"

#include <sched.h>

#include "base.h"

__thread struct hak_held hak__held __attribute__((tls_model("initial-exec")));

#define FORK_MAX_LOCKS 64 /* orphan, thread, the policies', abandoned, pool, 16 large shards, ... */

/* One per thread: several threads may fork at once. fork.c blocks signals while it is in use. */
struct fork_frame {
	unsigned n; /* locks taken, in order */
	const struct hak_fork_lock_ops *ops[FORK_MAX_LOCKS];
	void *obj[FORK_MAX_LOCKS];
	const struct hak_fork_lock_ops *busy_ops; /* the lock a plain fork found busy */
	void *busy_obj;
	bool trying;
};
static __thread struct fork_frame frame __attribute__((tls_model("initial-exec")));

static bool mutex_try(void *m)
{
	return pthread_mutex_trylock(m) == 0;
}

static void mutex_take(void *m)
{
	pthread_mutex_lock(m);
}

static void mutex_release(void *m)
{
	pthread_mutex_unlock(m);
}

static bool flag_try(void *f)
{
	return !atomic_flag_test_and_set_explicit((atomic_flag *)f, memory_order_acquire);
}

static void flag_take(void *f)
{
	while (!flag_try(f))
		sched_yield();
}

static void flag_release(void *f)
{
	atomic_flag_clear_explicit((atomic_flag *)f, memory_order_release);
}

const struct hak_fork_lock_ops hak__fork_mutex_ops = {mutex_try, mutex_take, mutex_release, NULL, false};
const struct hak_fork_lock_ops hak__fork_flag_ops = {flag_try, flag_take, flag_release, NULL, false};

bool hak__fork_trying(void)
{
	return frame.trying;
}

bool hak__fork_frame_begin(void)
{
	frame.n = 0;
	frame.busy_ops = NULL;
	frame.trying = hak__held.n || hak__held.opaque;
	return frame.trying;
}

/* May this thread hold obj (it is on its list of locks held or awaited), or, for a policy's
 * locks, is it inside a policy call? obj NULL: a lock that checks for itself (try_take). */
static bool self_may_hold(const struct hak_fork_lock_ops *ops, void *obj)
{
	if (ops->policy)
		return hak__held.opaque != 0;
	return obj && hak__held_has(obj);
}

static void push(const struct hak_fork_lock_ops *ops, void *obj)
{
	HAK_CHECK(frame.n < FORK_MAX_LOCKS, "fork(): more than %d locks to hold", FORK_MAX_LOCKS);
	frame.ops[frame.n] = ops;
	frame.obj[frame.n++] = obj;
}

bool hak__fork_take(const struct hak_fork_lock_ops *ops, void *obj)
{
	if (frame.trying) {
		if (ops->try_take && !self_may_hold(ops, obj))
			for (unsigned i = 0; i < HAK_FORK_TRIES; i++) {
				if (ops->try_take(obj)) {
					push(ops, obj);
					return true;
				}
				sched_yield();
			}
		return true; /* on without it: the child resets it, and may see what it guards half done */
	}
	if (!ops->try_take) {
		ops->take(obj); /* a lock with no try (an older policy's): the one wait left */
		push(ops, obj);
		return true;
	}
	if (ops->try_take(obj)) {
		push(ops, obj);
		return true;
	}
	frame.busy_ops = ops;
	frame.busy_obj = obj;
	return false;
}

bool hak__fork_took(const void *obj)
{
	for (unsigned i = frame.n; i-- > 0;)
		if (frame.obj[i] == obj)
			return true;
	return false;
}

void hak__fork_release_all(void)
{
	while (frame.n) {
		unsigned i = --frame.n;
		frame.ops[i]->release(frame.obj[i]);
	}
}

void hak__fork_wait_busy(void)
{
	const struct hak_fork_lock_ops *ops = frame.busy_ops;
	if (!ops)
		return;
	frame.busy_ops = NULL;
	if (ops->wait) {
		ops->wait(frame.busy_obj);
	} else {
		ops->take(frame.busy_obj);
		ops->release(frame.busy_obj);
	}
}

void hak__fork_frame_forget(void)
{
	frame.n = 0;
	frame.busy_ops = NULL;
}
