/* test_remote.c: the per-slab remote queue. Pushes from many threads while the owner drains
 * lose nothing and duplicate nothing; a drain moves blocks into the private free list; the
 * owner's refill (Option G) takes what other threads freed before carving new blocks; a thread's
 * foreign frees of one slab are gathered and reach its queue together (free_foreign_chain): when
 * the thread frees into another slab, fills a class batch, or flushes its caches. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core_test.h"
#include "startup.h"

static int setup(void **state)
{
	(void)state;
	hak__init();
	return 0;
}

static void drain_moves_blocks_to_the_free_list(void **state)
{
	(void)state;
	struct hak_slab *s = test_slab_acquire(hak__size_to_class(64), 0x1000, 0);
	assert_non_null(s);
	struct hak_chain ch;
	assert_int_equal(hak__slab_take(s, 10, &ch), 10);
	assert_int_equal(hak__remote_drain(s), 0);
	void **b = ch.head;
	for (int i = 0; i < 10; i++) {
		void **next = b[0];
		hak__remote_push(s, b);
		b = next;
	}
	struct hak_slab_info info;
	hak__slab_info(s, &info);
	assert_true(info.remote_pending);
	assert_int_equal(info.used, 10); /* queued blocks are not in the free list yet */
	assert_int_equal(hak__remote_drain(s), 10);
	hak__slab_info(s, &info);
	assert_false(info.remote_pending);
	assert_int_equal(info.used, 0);
	hak__slab_release(s);
	test_release_empty(0);
}

enum { PUSHERS = 4, PER_PUSHER = 20000 };

struct pusher {
	void **blocks;
	pthread_barrier_t *go;
};

static void *push_all(void *arg)
{
	struct pusher *p = arg;
	pthread_barrier_wait(p->go);
	for (int i = 0; i < PER_PUSHER; i++) {
		void *b = p->blocks[i]; /* a block goes to its own slab's queue */
		hak__remote_push(hak__slab_of_ss(hak__ss_lookup(b), b), b);
	}
	return NULL;
}

static void concurrent_pushes_lose_nothing(void **state)
{
	(void)state;
	/* 80000 blocks of 16 B: more than one slab holds, so use a class with a big slab. */
	unsigned cls = hak__size_to_class(16);
	struct hak_slab *slabs[32];
	unsigned nslabs = 0;
	void **all = calloc(PUSHERS * PER_PUSHER, sizeof *all);
	unsigned got = 0;
	while (got < PUSHERS * PER_PUSHER) {
		struct hak_slab *s = test_slab_acquire(cls, 0x1000, 0);
		assert_non_null(s);
		slabs[nslabs++] = s;
		struct hak_chain ch;
		while (got < PUSHERS * PER_PUSHER && hak__slab_take(s, 64, &ch))
			for (void **b = ch.head; b && got < PUSHERS * PER_PUSHER; b = b[0])
				all[got++] = b;
	}
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, PUSHERS + 1);
	pthread_t tids[PUSHERS];
	struct pusher ps[PUSHERS];
	for (int i = 0; i < PUSHERS; i++) {
		ps[i] = (struct pusher){all + i * PER_PUSHER, &go};
		pthread_create(&tids[i], NULL, push_all, &ps[i]);
	}
	pthread_barrier_wait(&go);
	unsigned drained = 0;
	for (int rounds = 0; drained < PUSHERS * PER_PUSHER && rounds < 1000000; rounds++)
		for (unsigned k = 0; k < nslabs; k++)
			drained += hak__remote_drain(slabs[k]);
	for (int i = 0; i < PUSHERS; i++)
		pthread_join(tids[i], NULL);
	for (unsigned k = 0; k < nslabs; k++)
		drained += hak__remote_drain(slabs[k]);
	assert_int_equal(drained, PUSHERS * PER_PUSHER);
	for (unsigned k = 0; k < nslabs; k++) {
		struct hak_slab_info info;
		hak__slab_info(slabs[k], &info);
		assert_int_equal(info.used, 0); /* every block came back exactly once */
		hak__slab_release(slabs[k]);
	}
	test_release_empty(0);
	free(all);
}

static void *free_block(void *p)
{
	hak__free(p); /* not this thread's slab: a remote free */
	return NULL;
}

static void refill_takes_remote_frees_before_carving(void **state)
{
	(void)state;
	unsigned cls = hak__size_to_class(48);
	void *p = hak__malloc(48), *rest[256];
	unsigned n = 0;
	while (hak__tls->cache[cls].head && n < 256) /* empty the cache: the next malloc refills */
		rest[n++] = hak__malloc(48);
	assert_null(hak__tls->cache[cls].head);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, free_block, p), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	void *q = hak__malloc(48); /* the slab still has room to carve, but p waits in its queue */
	assert_ptr_equal(q, p);
	hak__free(q);
	while (n)
		hak__free(rest[--n]);
}

struct gather {
	void **a, **b; /* blocks of two slabs, owned by the main thread */
	unsigned n;    /* of each, fewer than the class batch */
	struct hak_slab *sa, *sb;
	int pending_after_a, pending_after_b, pending_b_after_flush;
	uint64_t remote_frees;
};

static int pending(struct hak_slab *s)
{
	struct hak_slab_info info;
	hak__slab_info(s, &info);
	return info.remote_pending;
}

static void *free_gathered(void *arg)
{
	struct gather *g = arg;
	/* a state first: a thread without one frees through the shared sentinel, which gathers
	 * nothing (free.c, free_thread) */
	if (!hak__thread_get())
		return NULL;
	for (unsigned i = 0; i < g->n; i++)
		hak__free(g->a[i]);
	g->pending_after_a = pending(g->sa); /* still gathered by this thread */
	for (unsigned i = 0; i < g->n; i++)
		hak__free(g->b[i]);
	g->pending_after_b = pending(g->sa); /* a's chain went over when b's began */
	g->remote_frees = hak__tls->counters[HAK_TCOUNT_remote_frees];
	hak__thread_flush(hak__tls);
	g->pending_b_after_flush = pending(g->sb);
	return NULL;
}

static void foreign_frees_are_gathered_per_slab(void **state)
{
	(void)state;
	unsigned cls = hak__size_to_class(64), n = hak__classes[cls].batch / 2;
	void *a[64], *b[64];
	struct hak_slab *sa = test_slab_acquire(cls, hak__tls->token ^ 0x10, 0);
	struct hak_slab *sb = test_slab_acquire(cls, hak__tls->token ^ 0x10, 0);
	struct hak_chain ca, cb;
	assert_int_equal(hak__slab_take(sa, n, &ca), n);
	assert_int_equal(hak__slab_take(sb, n, &cb), n);
	unsigned i = 0;
	for (void **x = ca.head; x; x = x[0])
		a[i++] = x;
	i = 0;
	for (void **x = cb.head; x; x = x[0])
		b[i++] = x;
	struct hak_thread *me = hak__tls; /* they leave slab land as a refill's would */
	hak__account_chain(ca, +1, cls, me->out_bytes, me->out_blocks);
	hak__account_chain(cb, +1, cls, me->out_bytes, me->out_blocks);
	for (i = 0; i < n; i++) { /* handed out: no free mark */
		hak__block_set_used(a[i]);
		hak__block_set_used(b[i]);
	}
	struct gather g = {a, b, n, sa, sb, -1, -1, -1, 0};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, free_gathered, &g), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_false(g.pending_after_a);
	assert_true(g.pending_after_b);
	assert_true(g.pending_b_after_flush);
	assert_int_equal(g.remote_frees, 2 * n); /* counted when freed, not when handed over */
	assert_int_equal(hak__remote_drain(sa), n);
	assert_int_equal(hak__remote_drain(sb), n);
	hak__slab_release(sa);
	hak__slab_release(sb);
	test_release_empty(0);
}

/* A fork copies another thread's gathered frees as they stand (free.c gathers them without the
 * policy lock, so a copy may fall between two of its stores): the child hands them over to the
 * slab's queue, recounted, when it retires that thread's state. Here the copy is taken as if
 * between the head's store and the count's (the count one short). */
struct held_gather {
	void **a;
	unsigned n;
	struct hak_thread *t; /* the gathering thread's state */
	pthread_barrier_t freed, forked;
};

static void *gather_and_wait(void *arg)
{
	struct held_gather *h = arg;
	if ((h->t = hak__thread_get())) /* a state: see free_gathered */
		for (unsigned i = 0; i < h->n; i++)
			hak__free(h->a[i]);
	pthread_barrier_wait(&h->freed);
	pthread_barrier_wait(&h->forked);
	if (hak__current())
		hak__thread_flush(hak__tls); /* the parent's copy goes over now */
	return NULL;
}

static void fork_child_hands_over_other_threads_gathered_frees(void **state)
{
	(void)state;
	unsigned cls = hak__size_to_class(64), n = hak__classes[cls].batch / 2;
	void *a[64];
	struct hak_slab *sa = test_slab_acquire(cls, hak__tls->token ^ 0x10, 0);
	struct hak_chain ca;
	assert_int_equal(hak__slab_take(sa, n, &ca), n);
	unsigned i = 0;
	for (void **x = ca.head; x; x = x[0])
		a[i++] = x;
	struct hak_thread *me = hak__tls;
	hak__account_chain(ca, +1, cls, me->out_bytes, me->out_blocks);
	for (i = 0; i < n; i++)
		hak__block_set_used(a[i]);
	struct held_gather h = {a, n, NULL, {{0}}, {{0}}};
	pthread_barrier_init(&h.freed, NULL, 2);
	pthread_barrier_init(&h.forked, NULL, 2);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, gather_and_wait, &h), 0);
	pthread_barrier_wait(&h.freed);
	assert_false(pending(sa)); /* gathered by the other thread */
	assert_non_null(h.t);
	assert_int_equal(h.t->foreign_count, n);
	h.t->foreign_count--; /* the copy a fork may take */
	hak__fork_install();
	pid_t pid = fork();
	h.t->foreign_count++;
	if (pid == 0) { /* the child: the other thread's state was retired, its chain handed over */
		unsigned got = hak__remote_drain(sa);
		_exit(got == n ? 0 : 10 + (int)got);
	}
	assert_true(pid > 0);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	pthread_barrier_wait(&h.forked);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(hak__remote_drain(sa), n);
	hak__slab_release(sa);
	test_release_empty(0);
	pthread_barrier_destroy(&h.freed);
	pthread_barrier_destroy(&h.forked);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(drain_moves_blocks_to_the_free_list),
		cmocka_unit_test(concurrent_pushes_lose_nothing),
		cmocka_unit_test(refill_takes_remote_frees_before_carving),
		cmocka_unit_test(foreign_frees_are_gathered_per_slab),
		cmocka_unit_test(fork_child_hands_over_other_threads_gathered_frees), /* last: installs the atfork handlers */
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
