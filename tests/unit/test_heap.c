/* test_heap.c: per-thread states across thread exit (thread.c). An exited thread's state is parked
 * with its slabs: the next new thread takes it over whole (the dead thread's blocks are its own
 * to free, nothing is adopted); a trim pass, a SuperSlab about to be mapped and the exit of a
 * thread that freed many of the parked state's blocks retire it instead, and a state holding
 * many slabs is not parked at all, so nothing stays stranded. States are parked only while the
 * trim policy allows it (idle: while its helper thread runs): here the idle policy's, with a pass interval far beyond the test's
 * run time so that no pass retires anything behind the test's back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core_test.h"

static void run(void *(*fn)(void *), void *arg)
{
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, fn, arg), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
}

/* Nothing held by the main thread and nothing parked: every test starts and ends here. */
static void quiesce(void)
{
	hak__thread_restart();
	test_trim(0);
	assert_int_equal(test_active_blocks(), 0);
}

static int setup(void **state)
{
	(void)state;
	static const struct hak_setting slow = {"idle_ms", "60000", 1};
	static const struct hak_settings one = {"(test)", &slow, 1};
	hak__init();
	test_install(hak__builtin_desc(HAK_POLICY_TRIM), &one);
	hak__trim_tick(); /* starts the helper thread, which turns parking on */
	assert_true(hak__threads_parking_enabled());
	return 0;
}

/* ---- a successor takes the state over ------------------------------------------------------- */

struct handover {
	void *block;            /* left live by the first thread */
	uintptr_t first_token;  /* the first thread's owner token */
	uintptr_t second_token; /* the second thread's */
	uint64_t local, remote, adoptions;
	void *again;            /* the second thread's next block of the same size */
	bool stateless;         /* the second thread had no state after its first call, a free */
};

static void *leave_one_block(void *arg)
{
	struct handover *h = arg;
	h->block = hak__malloc(48);
	memset(h->block, 0x5a, 48);
	h->first_token = hak__tls->token;
	return NULL; /* exits: caches flushed, state parked with its slabs */
}

static void *free_the_dead_threads_block(void *arg)
{
	struct handover *h = arg;
	hak__free(h->block); /* this thread's first call into hakmem: a free makes no state */
	h->stateless = hak__tls->state != HAK_THREAD_LIVE;
	h->again = hak__malloc(48); /* the first malloc takes the parked state over */
	struct hak_thread *t = hak__tls;
	h->second_token = t->token;
	h->adoptions = t->counters[HAK_TCOUNT_adoptions];
	hak__free(h->again);
	h->local = test_local_frees(t);
	h->remote = t->counters[HAK_TCOUNT_remote_frees];
	return NULL;
}

static void successor_takes_over_the_parked_state(void **state)
{
	(void)state;
	quiesce();
	struct handover h = {0};
	run(leave_one_block, &h);
	assert_int_equal(test_active_blocks(), 1); /* the block; the cache was flushed */
	run(free_the_dead_threads_block, &h);
	assert_true(h.stateless);                        /* the free went to the owner's queue */
	assert_int_equal(h.second_token, h.first_token); /* the malloc: same state, same slabs */
	assert_ptr_equal(h.again, h.block);              /* the block, drained back from that queue */
	assert_int_equal(h.local, 1);                    /* and freed into the taken-over cache */
	assert_int_equal(h.remote, 0);
	assert_int_equal(h.adoptions, 0);
	assert_int_equal(test_active_blocks(), 0);
	quiesce();
}

/* ---- a trim pass retires parked states ------------------------------------------------------- */

static void *churn_and_free_everything(void *arg)
{
	(void)arg;
	void *p[256];
	for (int i = 0; i < 256; i++)
		p[i] = hak__malloc(16 + (size_t)i * 61 % 4000);
	for (int i = 0; i < 256; i++)
		hak__free(p[i]);
	return NULL; /* parked: its current slabs are entirely free but still its own */
}

static void trim_pass_retires_parked_states(void **state)
{
	(void)state;
	quiesce();
	run(churn_and_free_everything, NULL);
	assert_int_equal(test_active_blocks(), 0);
	assert_true(hak__pool_live() > 0);
	test_trim(0);
	assert_int_equal(hak__pool_live(), 0); /* nothing stranded in the parked state */
}

/* ---- parked states settle before a new SuperSlab is mapped ------------------------------------ */

enum { SMALL_CLASSES = 30 }; /* one-unit slabs: a SuperSlab of 32 units holds them all */
static unsigned small_class[SMALL_CLASSES];

static void *one_block_of_small_classes_then_free(void *arg)
{
	(void)arg;
	void *p[SMALL_CLASSES];
	for (unsigned i = 0; i < SMALL_CLASSES; i++)
		p[i] = hak__malloc(hak__classes[small_class[i]].block_size);
	for (unsigned i = 0; i < SMALL_CLASSES; i++)
		hak__free(p[i]);
	return NULL; /* parked holding a current slab of each class, all of them free */
}

static void parked_states_settle_before_mapping(void **state)
{
	(void)state;
	unsigned n = 0;
	for (unsigned c = 1; c < HAK_NCLASSES && n < SMALL_CLASSES; c++)
		if (hak__classes[c].slab_units == 1)
			small_class[n++] = c;
	assert_int_equal(n, SMALL_CLASSES);
	quiesce();
	hak__free(hak__malloc(16)); /* the main thread has a state: it will not take the parked one */
	run(one_block_of_small_classes_then_free, NULL);
	uint64_t mapped = hak__pool_mapped_total();
	void *p[SMALL_CLASSES];
	for (unsigned i = 0; i < SMALL_CLASSES; i++)
		p[i] = hak__malloc(hak__classes[small_class[i]].block_size);
	/* The SuperSlab is full of the parked state's (free) slabs: before mapping another, the
	 * parked state was retired and its units served the main thread. */
	assert_int_equal(hak__pool_mapped_total(), mapped);
	for (unsigned i = 0; i < SMALL_CLASSES; i++)
		hak__free(p[i]);
	quiesce();
}

/* ---- a waiting thread's emptied slabs serve others before a SuperSlab is mapped ---------------- */

enum { HANDED = 3000 }; /* 1 KB blocks: 47 one-unit slabs, one and a half SuperSlabs of 2 MB */

static void *free_them_all_then_make_as_many(void *arg)
{
	void **p = arg;
	struct timespec ts = {0, 20000000}; /* past the 10 ms between two reclaims before mapping */
	nanosleep(&ts, NULL);
	for (int i = 0; i < HANDED; i++)
		hak__free(p[i]); /* into the main thread's slabs' remote queues */
	for (int i = 0; i < HANDED; i++)
		p[i] = hak__malloc(1000);
	for (int i = 0; i < HANDED; i++)
		hak__free(p[i]);
	return NULL;
}

static void waiting_threads_slabs_serve_before_mapping(void **state)
{
	(void)state;
	quiesce();
	void **p = malloc(HANDED * sizeof *p);
	assert_non_null(p);
	for (int i = 0; i < HANDED; i++)
		p[i] = hak__malloc(1000);
	uint64_t mapped = hak__pool_mapped_total();
	/* The main thread now waits in pthread_join, its slabs full of blocks another thread frees.
	 * That thread needs as many slabs: before it maps a SuperSlab the main thread's emptied
	 * ones go back and serve it (without: one more SuperSlab mapped). */
	run(free_them_all_then_make_as_many, p);
	assert_int_equal(hak__pool_mapped_total(), mapped);
	free(p);
	quiesce();
}

/* ---- an idle thread's slabs are handed over before new units are taken ----------------------- */

enum { KEPT = 600 }; /* 1 KB blocks: ten one-unit slabs, no SuperSlab to map */

static struct hak_slab *slab_of(void *b)
{
	return hak__slab_of_ss(hak__ss_lookup(b), b);
}

static void *free_every_other_then_make_as_many(void *arg)
{
	void **p = arg;
	struct timespec past_reclaim = {0, 20000000}, past_next = {0, 2000000}; /* > 0.5 ms apart */
	nanosleep(&past_reclaim, NULL);
	for (int i = 0; i < KEPT; i += 2)
		hak__free(p[i]); /* half of each of the main thread's slabs, into their remote queues */
	p[0] = hak__malloc(1000); /* its first slab: a reclaim round, the main thread seen busy */
	nanosleep(&past_next, NULL);
	for (int i = 2; i < KEPT; i += 2)
		p[i] = hak__malloc(1000); /* the next slab: a round that finds the main thread idle */
	return NULL;
}

static void idle_threads_slabs_are_handed_over(void **state)
{
	(void)state;
	quiesce();
	void **p = malloc(KEPT * sizeof *p);
	struct hak_slab **old = malloc(KEPT * sizeof *old);
	assert_true(p && old);
	for (int i = 0; i < KEPT; i++)
		old[i] = slab_of(p[i] = hak__malloc(1000));
	/* The main thread now waits in pthread_join, its slabs half emptied by another thread that
	 * makes as many blocks again. Once a round finds the main thread idle, its slabs are
	 * abandoned and adopted and the new blocks fill their holes, all but those of the two
	 * slabs the thread took before (without the handover: none, they all go to new units). */
	run(free_every_other_then_make_as_many, p);
	int in_old = 0;
	for (int i = 0; i < KEPT; i += 2) {
		struct hak_slab *s = slab_of(p[i]);
		for (int j = 1; j < KEPT; j += 2)
			if (old[j] == s) {
				in_old++;
				break;
			}
	}
	assert_true(in_old >= KEPT / 4);
	for (int i = 0; i < KEPT; i++)
		hak__free(p[i]);
	free(old);
	free(p);
	quiesce();
}

/* ---- big blocks of new sizes, one after another, reuse each other's pages ------------------------ */

struct sizes {
	void *p[HAK_NCLASSES];
	unsigned cls[HAK_NCLASSES], n;
	unsigned held; /* of those blocks' slabs, those the thread still held before it exited */
};

static void *one_big_block_of_each_size_in_turn(void *arg)
{
	struct sizes *z = arg;
	for (unsigned c = hak__first_big_class; c < HAK_NCLASSES; c++, z->n++) {
		size_t n = hak__classes[c].block_size;
		z->cls[z->n] = c;
		z->p[z->n] = hak__malloc(n);
		assert_non_null(z->p[z->n]);
		memset(z->p[z->n], 0x33, n); /* read a file into it, say */
		hak__free(z->p[z->n]);
	}
	uintptr_t me = hak__tls->token;
	for (unsigned i = 0; i < z->n; i++) {
		struct hak_slab *s = slab_of(z->p[i]);
		if (s->nunits && s->cls == z->cls[i] && hak_load_relaxed(&s->xowner) == me)
			z->held++;
	}
	return NULL;
}

/* An interpreter loading its modules reads each file into a buffer of a new size, and frees it.
 * Each buffer sits in its class's cache, its slab holding its pages; when a slab of another big
 * class takes pages not resident yet, the thread's other big caches go back and their emptied
 * slabs with them (tls releases an empty current slab of few blocks), so the next big slabs
 * start on those resident units. Without that: every class's slab held, none reused. */
static void big_blocks_of_new_sizes_reuse_pages(void **state)
{
	(void)state;
	quiesce(); /* the trim pass purged every free unit: nothing dirty to start with */
	struct sizes z = {.n = 0};
	run(one_big_block_of_each_size_in_turn, &z);
	assert_true(z.n >= 16);
	assert_true(z.held <= 3);
	unsigned reused = 0; /* blocks that start inside an earlier block's pages */
	for (unsigned i = 1; i < z.n; i++)
		for (unsigned j = 0; j < i; j++)
			if ((char *)z.p[i] >= (char *)z.p[j] &&
			    (char *)z.p[i] < (char *)z.p[j] + hak__classes[z.cls[j]].block_size) {
				reused++;
				break;
			}
	assert_true(reused >= z.n / 3);
	quiesce();
}

/* ---- a state that took many slabs is not parked ------------------------------------------------ */

struct big {
	void *block;
	uintptr_t token;
};

static void *one_block_of_every_class_then_free(void *arg)
{
	struct big *b = arg;
	void *p[HAK_NCLASSES];
	for (unsigned c = 0; c < HAK_NCLASSES; c++)
		p[c] = hak__malloc(hak__classes[c].block_size);
	for (unsigned c = 0; c < HAK_NCLASSES; c++)
		hak__free(p[c]);
	b->block = p[HAK_NCLASSES - 1];
	b->token = hak__tls->token;
	return NULL; /* more than 4 MB of slabs: settled at exit, not parked */
}

static void big_states_are_not_parked(void **state)
{
	(void)state;
	quiesce();
	struct big b;
	run(one_block_of_every_class_then_free, &b);
	struct hak_slab *s = hak__slab_of_ss(hak__ss_lookup(b.block), b.block);
	assert_int_not_equal(hak_load_relaxed(&s->xowner), b.token); /* given back at exit */
	quiesce();
}

/* ---- without a trim helper nothing is parked ----------------------------------------------- */

static void no_helper_no_parking(void **state)
{
	(void)state;
	quiesce();
	hak__threads_set_parking(0, 0); /* as in a fork child, or under trim eager/none */
	struct handover h = {0};
	run(leave_one_block, &h);
	hak__threads_set_parking(8, 64); /* what the idle policy's helper set */
	struct hak_slab *s = hak__slab_of_ss(hak__ss_lookup(h.block), h.block);
	assert_int_equal(hak_load_relaxed(&s->xowner), HAK_OWNER_NONE); /* abandoned at exit */
	hak__free(h.block);
	quiesce();
}

/* ---- a consumer's exit retires the parked states it freed into ------------------------------- */

enum { PRODUCED = 4096 };
static void *produced[PRODUCED];
static uintptr_t producer_token;
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int producer_gone;

static void *producer(void *arg)
{
	(void)arg;
	for (int i = 0; i < PRODUCED; i++)
		produced[i] = hak__malloc(64);
	producer_token = hak__tls->token;
	return NULL;
}

static void *consumer(void *arg)
{
	(void)arg;
	hak__free(hak__malloc(32)); /* a state of its own before the producer parks */
	pthread_mutex_lock(&gate_lock);
	while (!producer_gone)
		pthread_cond_wait(&gate_cv, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
	for (int i = 0; i < PRODUCED; i++)
		hak__free(produced[i]); /* remote frees into the parked producer's slabs */
	return NULL;
}

static void consumer_exit_retires_parked_states(void **state)
{
	(void)state;
	quiesce();
	pthread_t c;
	producer_gone = 0;
	assert_int_equal(pthread_create(&c, NULL, consumer, NULL), 0);
	run(producer, NULL);
	void *first = produced[0];
	struct hak_slab *s = hak__slab_of_ss(hak__ss_lookup(first), first);
	assert_int_equal(hak_load_relaxed(&s->xowner), producer_token); /* parked, still its own */
	pthread_mutex_lock(&gate_lock);
	producer_gone = 1;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_lock);
	assert_int_equal(pthread_join(c, NULL), 0);
	/* The consumer's exit settled the producer's state: its drained slabs went back. */
	assert_int_not_equal(hak_load_relaxed(&s->xowner), producer_token);
	assert_int_equal(test_active_blocks(), 0);
	quiesce();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(successor_takes_over_the_parked_state),
		cmocka_unit_test(trim_pass_retires_parked_states),
		cmocka_unit_test(parked_states_settle_before_mapping),
		cmocka_unit_test(waiting_threads_slabs_serve_before_mapping),
		cmocka_unit_test(idle_threads_slabs_are_handed_over),
		cmocka_unit_test(big_blocks_of_new_sizes_reuse_pages),
		cmocka_unit_test(big_states_are_not_parked),
		cmocka_unit_test(no_helper_no_parking),
		cmocka_unit_test(consumer_exit_retires_parked_states),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
