/* test_hybrid.c: the hybrid ownership policy (policies/ownership_hybrid.c) through the real core:
 * its switching rule on its own (hy_decide), its settings, and real threads whose workloads
 * switch a class G -> F -> G -> F while blocks made under each model stay live and are freed
 * under the other, by other threads. At each quiescent point the SuperSlabs' active counts add
 * up to the blocks held, exactly (DESIGN contract 6); at the end a trim pass gives every
 * SuperSlab back. */
#define HAK_BUILTIN /* the plugin below compiles as a built-in (hidden descriptor) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core_test.h"
#include "stats.h"

#define HY_CHECKS /* the plugin's own invariant checks */
/* A slab released has every block it carved back and marked free. */
#define HY_CHECK_RELEASE(s)                                                                 \
	do {                                                                                       \
		struct hak_slab *s_ = (struct hak_slab *)(s);                                      \
		for (uint32_t i_ = 0; i_ < s_->carved; i_++) {                                     \
			void *b_ = s_->start + (size_t)i_ * s_->block_size;                        \
			if (!hak__block_is_free(b_)) {                                             \
				fprintf(stderr, "release: slab %p block %p (%u of %u) in use\n", (void *)s_, b_, \
					i_, s_->carved);                           \
				abort();                                                           \
			}                                                                          \
		}                                                                                  \
	} while (0)
/* Every block of a chain that moves is free (marked), and the chain ends where it says. */
#define HY_CHECK_CHAIN(ch)                                                                   \
	do {                                                                                       \
		uint32_t n_ = 0;                                                                   \
		for (void *b_ = (ch).head; b_; b_ = ((void **)b_)[0], n_++)                       \
			if (!hak__block_is_free(b_) || n_ > (ch).count) {                         \
				fprintf(stderr, "chain: block %p (%u) not free\n", b_, n_); \
				abort();                                                           \
			}                                                                          \
	} while (0)
#include "../../policies/ownership_hybrid.c"

/* ---- The rule alone ---------------------------------------------------------------------------- */

static const struct hy_settings rule = {50, 20, 0, 100, 2}; /* high, low, ms, window_frees, dwell */

/* A look whose share, in either model's measure, is cross / total. */
static struct hy_look look(uint64_t cross, uint64_t total)
{
	return (struct hy_look){cross, cross, cross, total};
}

static struct hy_eval fresh(void)
{
	return (struct hy_eval){.mult = 1, .share = -1};
}

static void g_switches_after_dwell_windows_at_or_above_high(void **state)
{
	(void)state;
	struct hy_eval e = fresh();
	assert_int_equal(hy_decide(&e, HY_G, look(50, 100), &rule), HY_G); /* 50%: at the threshold */
	assert_int_equal(e.share, 50);
	assert_int_equal(hy_decide(&e, HY_G, look(49, 100), &rule), HY_G); /* below: the streak ends */
	assert_int_equal(hy_decide(&e, HY_G, look(90, 100), &rule), HY_G);
	assert_int_equal(hy_decide(&e, HY_G, look(90, 100), &rule), HY_F); /* two in a row */
	assert_int_equal(e.streak, 0);
	assert_int_equal(e.windows, 0);
	assert_int_equal(e.mult, 1);
}

static void a_window_needs_window_frees(void **state)
{
	(void)state;
	struct hy_eval e = fresh();
	/* 3 looks of 40 frees, all remote: one window (120 >= 100), not three */
	assert_int_equal(hy_decide(&e, HY_G, look(40, 40), &rule), HY_G);
	assert_int_equal(hy_decide(&e, HY_G, look(40, 40), &rule), HY_G);
	assert_int_equal(e.share, -1);
	assert_int_equal(hy_decide(&e, HY_G, look(40, 40), &rule), HY_G);
	assert_int_equal(e.share, 100);
	assert_int_equal(e.windows, 1);
	/* a quiet class never completes one */
	for (int i = 0; i < 1000; i++)
		assert_int_equal(hy_decide(&e, HY_G, look(0, 0), &rule), HY_G);
	assert_int_equal(e.windows, 1);
	/* more cross-thread blocks than frees (the F flows are reported in chunks): 100% */
	assert_int_equal(hy_decide(&e, HY_G, look(500, 100), &rule), HY_F);
}

static void each_model_has_its_measure_over_the_whole_window(void **state)
{
	(void)state;
	struct hy_eval e = fresh();
	/* F: the surpluses arrive in chunks, in one look and out in another */
	assert_int_equal(hy_decide(&e, HY_F, (struct hy_look){0, 250, 0, 40}, &rule), HY_F);
	assert_int_equal(hy_decide(&e, HY_F, (struct hy_look){0, 0, 0, 20}, &rule), HY_F);
	assert_int_equal(hy_decide(&e, HY_F, (struct hy_look){1000, 0, 80, 40}, &rule), HY_F);
	assert_int_equal(e.share, 80); /* min(250, 80) of 100; the G count does not enter */
	assert_int_equal(e.streak, 0);
	/* G: the remote frees; flows do not enter */
	e = fresh();
	assert_int_equal(hy_decide(&e, HY_G, (struct hy_look){10, 1000, 1000, 100}, &rule), HY_G);
	assert_int_equal(e.share, 10);
}

static void f_goes_back_at_or_below_low(void **state)
{
	(void)state;
	struct hy_eval e = fresh();
	assert_int_equal(hy_decide(&e, HY_F, look(21, 100), &rule), HY_F); /* above low: stays */
	assert_int_equal(hy_decide(&e, HY_F, look(20, 100), &rule), HY_F);
	assert_int_equal(hy_decide(&e, HY_F, look(35, 100), &rule), HY_F); /* hysteresis: 35 is neither */
	assert_int_equal(hy_decide(&e, HY_F, look(0, 100), &rule), HY_F);
	assert_int_equal(hy_decide(&e, HY_F, look(20, 100), &rule), HY_G);
	assert_int_equal(e.left_f, 1);
	/* the G side does not switch back on the hysteresis band either */
	for (int i = 0; i < 10; i++)
		assert_int_equal(hy_decide(&e, HY_G, look(35, 100), &rule), HY_G);
}

static void flapping_stretches_the_f_dwell(void **state)
{
	(void)state;
	struct hy_eval e = fresh();
	int model = HY_G;
	for (int i = 0; i < 2; i++)
		model = hy_decide(&e, model, look(100, 100), &rule);
	assert_int_equal(model, HY_F);
	/* F sees no flow (symmetric exchange), G sees 100% at once: each round trip doubles */
	unsigned expect_f_windows = 2;
	for (unsigned round = 0; round < 8; round++) {
		unsigned n = 0;
		while (model == HY_F) {
			model = hy_decide(&e, model, look(0, 100), &rule);
			n++;
		}
		assert_int_equal(n, expect_f_windows);
		model = hy_decide(&e, model, look(100, 100), &rule);
		assert_int_equal(model, HY_G);
		model = hy_decide(&e, model, look(100, 100), &rule);
		assert_int_equal(model, HY_F);
		expect_f_windows = expect_f_windows * 2 > 2 * HY_MULT_MAX ? 2 * HY_MULT_MAX : expect_f_windows * 2;
	}
	assert_int_equal(e.mult, HY_MULT_MAX);
	/* a long G stay (a real change of workload) resets the back-off */
	while (model == HY_F)
		model = hy_decide(&e, model, look(0, 100), &rule);
	for (int i = 0; i < 10; i++)
		assert_int_equal(hy_decide(&e, model, look(0, 100), &rule), HY_G);
	assert_int_equal(hy_decide(&e, HY_G, look(100, 100), &rule), HY_G);
	assert_int_equal(hy_decide(&e, HY_G, look(100, 100), &rule), HY_F);
	assert_int_equal(e.mult, 1);
}

/* ---- Settings ---------------------------------------------------------------------------------- */

static int init_with(const struct hak_setting *items, size_t n, char *err, size_t errlen)
{
	struct hak_settings s = {"test.ini", items, n};
	void *st = NULL;
	int rc = hy_init(&hak__core_api, NULL, &s, &st, err, errlen);
	if (st)
		hy_fini(st);
	return rc;
}

static void bad_settings_are_named(void **state)
{
	(void)state;
	char err[200];
	static const struct hak_setting pct[] = {{"remote_high", "150%", 7}};
	assert_int_equal(init_with(pct, 1, err, sizeof err), 22);
	assert_string_equal(err, "line 7: remote_high = '150%': expected a percentage in [1, 100]");
	static const struct hak_setting order[] = {{"remote_high", "30", 3}, {"remote_low", "30%", 4}};
	assert_int_equal(init_with(order, 2, err, sizeof err), 22);
	assert_string_equal(err, "line 4: remote_low = 30%, remote_high = 30%: expected remote_low below remote_high");
	static const struct hak_setting dwell[] = {{"dwell", "0", 9}};
	assert_int_equal(init_with(dwell, 1, err, sizeof err), 22);
	assert_string_equal(err, "line 9: dwell = '0': expected an integer in [1, 1000]");
	static const struct hak_setting unknown[] = {{"window", "5", 2}};
	assert_int_equal(init_with(unknown, 1, err, sizeof err), 22);
	assert_non_null(strstr(err, "line 2: unknown key 'window' (this policy takes: remote_high, remote_low, window_ms"));
}

/* ---- Real threads through the real core -------------------------------------------------------- */

/* cmocka's asserts may only fail on the test's own thread: the workers abort with the line. */
#define T_CHECK(cond)                                                                              \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: worker check failed: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

enum { SIZE = 48, OTHER_SIZE = 200, PAIRS = 2, BATCH = 32, QCAP = 64, CAP = 1 << 24 };

static unsigned cls_of(size_t n)
{
	return hak__size_to_class(n);
}

static struct hy_state *hy(void)
{
	return hak__policy_current(HAK_POLICY_OWNERSHIP)->state;
}

static int model_of(size_t n)
{
	return atomic_load(&hy()->cls[cls_of(n)].xmodel);
}

/* Hang detection only: a switch that never comes fails after a minute, whatever the load. */
static void wait_model(int want)
{
	for (long i = 0; model_of(SIZE) != want && i < 600000; i++)
		usleep(100);
	assert_int_equal(model_of(SIZE), want);
}

static void fill(void *p, size_t n, uintptr_t tag)
{
	memset(p, (int)(tag & 0xff), n);
}

static int phase; /* of the test below, for the message */
static void check(const void *p, size_t n, uintptr_t tag)
{
	const unsigned char *b = p;
	if (b[0] != (unsigned char)(tag & 0xff) || b[n - 1] != (unsigned char)(tag & 0xff)) {
		struct hak_slab_info info;
		hak_slab *s = hak__core_api.slab_of(p);
		hak__core_api.slab_get_info(s, &info);
		fprintf(stderr, "phase %d, model %d: block %p changed (words %#lx %#lx; slab owner %#lx, used %u)\n",
			phase, model_of(SIZE), p, ((const unsigned long *)p)[0], ((const unsigned long *)p)[1],
			(unsigned long)info.owner, info.used);
	}
	T_CHECK(b[0] == (unsigned char)(tag & 0xff));
	T_CHECK(b[n - 1] == (unsigned char)(tag & 0xff));
}

/* A background workload runs until the class of SIZE is in model `want` and the test lets it
 * stop (`hold` cleared): the test does its steps while the model stands. */
static struct {
	pthread_t t[2 * PAIRS];
	int n;
	_Atomic int hold, want;
	_Atomic long blocks;
} wl;

static bool wl_done(void)
{
	return (!atomic_load(&wl.hold) && model_of(SIZE) == atomic_load(&wl.want)) || atomic_load(&wl.blocks) > CAP;
}

/* Producers allocate batches, consumers free them: every free is cross-thread. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	void *q[QCAP][BATCH];
	unsigned head, len;
	int stop, producers;
} pc = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void *producer(void *arg)
{
	(void)arg;
	for (;;) {
		void *b[BATCH];
		for (int i = 0; i < BATCH; i++) {
			b[i] = hak__malloc(SIZE);
			T_CHECK(b[i] != NULL);
			fill(b[i], SIZE, (uintptr_t)b[i] >> 4);
		}
		atomic_fetch_add(&wl.blocks, BATCH);
		pthread_mutex_lock(&pc.lock);
		while (pc.len == QCAP && !pc.stop)
			pthread_cond_wait(&pc.cond, &pc.lock);
		bool queued = pc.len < QCAP; /* stopping with the queue full: free them here */
		if (queued)
			memcpy(pc.q[(pc.head + pc.len++) % QCAP], b, sizeof b);
		if (wl_done())
			pc.stop = 1;
		int stop = pc.stop;
		pthread_cond_broadcast(&pc.cond);
		pthread_mutex_unlock(&pc.lock);
		for (int i = 0; !queued && i < BATCH; i++) {
			check(b[i], SIZE, (uintptr_t)b[i] >> 4);
			hak__free(b[i]);
		}
		if (stop)
			break;
	}
	pthread_mutex_lock(&pc.lock);
	pc.producers--;
	pthread_cond_broadcast(&pc.cond);
	pthread_mutex_unlock(&pc.lock);
	return NULL;
}

static void *consumer(void *arg)
{
	(void)arg;
	for (;;) {
		void *b[BATCH];
		pthread_mutex_lock(&pc.lock);
		while (pc.len == 0 && pc.producers > 0)
			pthread_cond_wait(&pc.cond, &pc.lock);
		if (pc.len == 0) {
			pthread_mutex_unlock(&pc.lock);
			return NULL;
		}
		memcpy(b, pc.q[pc.head], sizeof b);
		pc.head = (pc.head + 1) % QCAP;
		pc.len--;
		pthread_cond_broadcast(&pc.cond);
		pthread_mutex_unlock(&pc.lock);
		for (int i = 0; i < BATCH; i++) {
			check(b[i], SIZE, (uintptr_t)b[i] >> 4);
			hak__free(b[i]);
		}
	}
}

/* Thread-local churn: each thread frees what it allocated. */
static void *churner(void *arg)
{
	(void)arg;
	void *b[256];
	while (!wl_done()) {
		for (int i = 0; i < 256; i++) {
			b[i] = hak__malloc(SIZE);
			T_CHECK(b[i] != NULL);
			fill(b[i], SIZE, (uintptr_t)i);
		}
		for (int i = 0; i < 256; i++) {
			check(b[i], SIZE, (uintptr_t)i);
			hak__free(b[i]);
		}
		atomic_fetch_add(&wl.blocks, 256);
	}
	return NULL;
}

enum { PRODCONS, CHURN };

/* Starts the workload, held, and returns once the class is in `want`. */
static void wl_start(int kind, int want)
{
	atomic_store(&wl.hold, 1);
	atomic_store(&wl.want, want);
	atomic_store(&wl.blocks, 0);
	pc.head = pc.len = 0;
	pc.stop = 0;
	pc.producers = PAIRS;
	wl.n = 0;
	for (int i = 0; i < PAIRS; i++) {
		pthread_create(&wl.t[wl.n++], NULL, kind == PRODCONS ? producer : churner, NULL);
		pthread_create(&wl.t[wl.n++], NULL, kind == PRODCONS ? consumer : churner, NULL);
	}
	wait_model(want);
}

static void wl_stop(void)
{
	atomic_store(&wl.hold, 0);
	for (int i = 0; i < wl.n; i++)
		pthread_join(wl.t[i], NULL);
	assert_true(atomic_load(&wl.blocks) <= CAP); /* not a timeout: CAP blocks is a hang */
}

/* Blocks kept live across switches, freed later by other threads. */
enum { KEEP = 600 };
static void *kept[3][KEEP];

struct keep_job {
	void **slots;
	int alloc; /* 1: allocate KEEP blocks into slots, 0: free them */
	int warm;  /* first refill the class, so that the cache accepts what G would */
};

static void *keeper(void *arg)
{
	struct keep_job *j = arg;
	if (j->warm)
		hak__free(hak__malloc(SIZE));
	for (int i = 0; i < KEEP; i++) {
		if (j->alloc) {
			j->slots[i] = hak__malloc(SIZE);
			T_CHECK(j->slots[i] != NULL);
			fill(j->slots[i], SIZE, (uintptr_t)i + 1);
		} else if (j->slots[i]) {
			check(j->slots[i], SIZE, (uintptr_t)i + 1);
			hak__free(j->slots[i]);
			j->slots[i] = NULL;
		}
	}
	return NULL;
}

static void on_thread(void **slots, int alloc, int warm)
{
	pthread_t t;
	struct keep_job j = {slots, alloc, warm};
	pthread_create(&t, NULL, keeper, &j);
	pthread_join(t, NULL);
}

static int64_t held(void)
{
	int64_t n = 0;
	for (int k = 0; k < 3; k++)
		for (int i = 0; i < KEEP; i++)
			n += kept[k][i] != NULL;
	return n;
}

/* Quiescent: every thread that ran has exited, the main thread's caches are flushed. */
static void assert_exact(void)
{
	hak__thread_restart();
	assert_int_equal(hak__pool_active_total(), held());
	assert_int_equal(hak__pool_check(), hak__pool_live());
}

static struct hak_policy *install_hybrid(void)
{
	static const struct hak_setting items[] = {
		{"window_ms", "0", 1}, {"window_frees", "4096", 2}, {"dwell", "2", 3},
	};
	static const struct hak_settings s = {"(test)", items, 3};
	return test_install(&hak__builtin_ownership_hybrid, &s);
}

/* A thread that caches blocks of its own G slabs when its class switches to F, and follows the
 * switch at a refill of another class: its cache holds both kinds, and flush sorts them. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int phase;
} mix = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void mix_wait(int phase)
{
	pthread_mutex_lock(&mix.lock);
	while (mix.phase < phase)
		pthread_cond_wait(&mix.cond, &mix.lock);
	pthread_mutex_unlock(&mix.lock);
}

static void mix_go(int phase)
{
	pthread_mutex_lock(&mix.lock);
	mix.phase = phase;
	pthread_cond_broadcast(&mix.cond);
	pthread_mutex_unlock(&mix.lock);
}

static void *mixed_thread(void *arg)
{
	(void)arg;
	unsigned c = cls_of(SIZE);
	void *own[40];
	for (int i = 0; i < 40; i++)
		own[i] = hak__malloc(SIZE);
	for (int i = 0; i < 40; i++)
		hak__free(own[i]); /* cached: this thread's own G blocks */
	struct hy_tstate *ts = hak__tls->own_tstate;
	T_CHECK(ts->cls[c].tok == 1);
	mix_go(1);
	mix_wait(2); /* the class is F now, and stays F until the test lets it go */
	void *o[300]; /* refills of another class: the thread follows the switch */
	for (int i = 0; i < 300; i++)
		o[i] = hak__malloc(OTHER_SIZE);
	for (int i = 0; i < 300; i++)
		hak__free(o[i]);
	T_CHECK(ts->cls[c].tok == 0);
	T_CHECK(ts->cls[c].mixed == 1);
	mix_go(3);
	mix_wait(4);
	/* ANY blocks freed here are cached above the 40 old ones until the cache overflows: its
	 * colder half, flushed, holds both kinds */
	for (int i = 0; i < KEEP; i++) {
		check(kept[2][i], SIZE, (uintptr_t)i + 1);
		hak__free(kept[2][i]);
		kept[2][i] = NULL;
	}
	return NULL; /* the exit flushes the rest */
}

static void switches_both_ways_and_counts_stay_exact(void **state)
{
	(void)state;
	install_hybrid();
	assert_int_equal(model_of(SIZE), HY_G);

	on_thread(kept[0], 1, 0); /* G blocks of a thread that exited */
	assert_exact();

	/* G -> F */
	phase = 1;
	pthread_t mt;
	pthread_create(&mt, NULL, mixed_thread, NULL);
	mix_wait(1);
	wl_start(PRODCONS, HY_F);
	assert_int_equal(model_of(OTHER_SIZE), HY_G);
	mix_go(2);
	mix_wait(3);
	on_thread(kept[1], 1, 0); /* ANY blocks */
	on_thread(kept[2], 1, 0);
	on_thread(kept[0], 0, 0); /* G blocks freed under F */
	mix_go(4);
	pthread_join(mt, NULL);
	assert_int_equal(model_of(SIZE), HY_F);
	wl_stop();
	assert_exact();

	/* F -> G */
	phase = 2;
	wl_start(CHURN, HY_G);
	on_thread(kept[1], 0, 1); /* ANY blocks freed under G, by a thread that caches its token */
	on_thread(kept[0], 1, 0); /* new G blocks */
	assert_int_equal(model_of(SIZE), HY_G);
	wl_stop();
	assert_exact();

	/* G -> F, with the slabs the G phases left */
	phase = 3;
	wl_start(PRODCONS, HY_F);
	on_thread(kept[0], 0, 0);
	on_thread(kept[1], 1, 0);
	wl_stop();
	assert_exact();

	/* F -> G, the ANY blocks freed under G */
	phase = 4;
	wl_start(CHURN, HY_G);
	on_thread(kept[1], 0, 0);
	wl_stop();
	assert_exact();
	assert_int_equal(held(), 0);

	assert_true(hy()->cls[cls_of(SIZE)].ev.share >= 0); /* windows were completed */
	char json[16384];
	hak__stats_format(json, sizeof json, 1);
	assert_non_null(strstr(json, "\"class_model\":["));
	assert_non_null(strstr(json, "\"switches\":["));

	/* Nothing held: one trim pass gives every SuperSlab back (queues, ANY slabs, abandoned) */
	test_trim(0);
	assert_int_equal(hak__pool_active_total(), 0);
	assert_int_equal(hak__pool_live(), 0);
}

struct counter_read {
	unsigned cls;
	int64_t switches, model;
};

static void read_counter(void *ctx, const struct hak_counter_info *ci, const int64_t *v)
{
	struct counter_read *x = ctx;
	if (!strcmp(ci->name, "switches"))
		x->switches = v[x->cls];
	if (!strcmp(ci->name, "class_model"))
		x->model = v[x->cls];
}

static void switch_counter_counts_each_switch(void **state)
{
	(void)state;
	/* The previous test switched SIZE's class G->F, F->G, G->F, F->G (at least: a drain at the
	 * end of a phase may flip it once more and back). */
	struct hak_policy *p = hak__policy_current(HAK_POLICY_OWNERSHIP);
	assert_string_equal(p->desc->name, "hybrid");
	struct counter_read x = {cls_of(SIZE), -1, -1};
	hak__counters_each(p, read_counter, &x);
	assert_true(x.switches >= 4);
	assert_int_equal(x.switches % 2, 0); /* it started and ended as G */
	assert_int_equal(x.model, HY_G);
	struct counter_read y = {cls_of(OTHER_SIZE), -1, -1};
	hak__counters_each(p, read_counter, &y);
	assert_int_equal(y.switches, 0); /* thread-local only: never left G */
}

static int setup(void **state)
{
	(void)state;
	hak__init();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(g_switches_after_dwell_windows_at_or_above_high),
		cmocka_unit_test(a_window_needs_window_frees),
		cmocka_unit_test(each_model_has_its_measure_over_the_whole_window),
		cmocka_unit_test(f_goes_back_at_or_below_low),
		cmocka_unit_test(flapping_stretches_the_f_dwell),
		cmocka_unit_test(bad_settings_are_named),
		cmocka_unit_test(switches_both_ways_and_counts_stay_exact),
		cmocka_unit_test(switch_counter_counts_each_switch),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
