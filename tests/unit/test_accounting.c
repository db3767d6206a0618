/* test_accounting.c: the active-block count at quiescence (DESIGN contract 6), under Option G
 * and Option F. Blocks allocated by threads that then exit, freed by other threads (the seed's
 * cross-thread pattern): once caches are flushed, the SuperSlabs' active counts add up to the
 * blocks still held, exactly; when nothing is held, a trim pass gives every SuperSlab back. */
#define HAK_BUILTIN /* the central policy below compiles as a built-in (hidden descriptor) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core_test.h"

/* Option F, compiled in here from the plugin's own source so the test needs no dlopen. */
#include "../../policies/ownership_central.c"

enum { THREADS = 4, PER_THREAD = 5000 };
static void *blocks[THREADS * PER_THREAD];

struct job {
	int first, count;
	int alloc; /* 1: allocate into blocks[], 0: free them */
};

static void fill(void *p, size_t n, uintptr_t seed)
{
	memset(p, (int)(seed & 0xff), n);
}

static void *work(void *arg)
{
	struct job *j = arg;
	for (int i = j->first; i < j->first + j->count; i++) {
		if (j->alloc) {
			size_t n = 16 + (size_t)(i * 37 % 2000);
			blocks[i] = hak__malloc(n);
			assert_non_null(blocks[i]);
			fill(blocks[i], n, (uintptr_t)i);
		} else {
			unsigned char *p = blocks[i];
			assert_int_equal(p[0], (unsigned char)(i & 0xff));
			hak__free(blocks[i]);
			blocks[i] = NULL;
		}
	}
	return NULL; /* the thread exits: its exit hook flushes and abandons */
}

/* Allocate on THREADS threads, then free on THREADS other threads, in a rotated order so every
 * free is cross-thread, leaving `keep` blocks live. */
static void run_round(int keep)
{
	pthread_t t[THREADS];
	struct job jobs[THREADS];
	for (int i = 0; i < THREADS; i++) {
		jobs[i] = (struct job){i * PER_THREAD, PER_THREAD, 1};
		pthread_create(&t[i], NULL, work, &jobs[i]);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < THREADS; i++) {
		int owner = (i + 1) % THREADS; /* free another thread's blocks */
		jobs[i] = (struct job){owner * PER_THREAD + keep / THREADS, PER_THREAD - keep / THREADS, 0};
		pthread_create(&t[i], NULL, work, &jobs[i]);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
}

static void quiescent_counts_are_exact(void)
{
	/* held: keep/THREADS blocks at the start of each thread's range */
	const int keep = 400;
	run_round(keep);
	hak__thread_restart(); /* the main thread holds no cache either */
	assert_int_equal(hak__pool_active_total(), keep);

	for (int i = 0; i < THREADS * PER_THREAD; i++)
		if (blocks[i]) {
			hak__free(blocks[i]);
			blocks[i] = NULL;
		}
	hak__thread_restart();
	assert_int_equal(hak__pool_active_total(), 0);
	assert_int_equal(hak__pool_check(), hak__pool_live()); /* lists, units and slabs agree */

	/* Nothing held: one trim pass returns every SuperSlab (the seed's freed=0 bug). */
	uint64_t released = hak__pool_released_total();
	test_trim(0);
	assert_int_equal(hak__pool_live(), 0);
	assert_true(hak__pool_released_total() > released);
}

static void option_g(void **state)
{
	(void)state;
	quiescent_counts_are_exact();
}

static void option_f(void **state)
{
	(void)state;
	test_install(&hak__builtin_ownership_central, NULL);
	assert_string_equal(hak__policy_current(HAK_POLICY_OWNERSHIP)->desc->name, "central");
	quiescent_counts_are_exact();
}

/* The seed's workload in miniature: threads keep blocks live, hand them to a successor and
 * die. SuperSlabs must be released along the way and the live count must stay small. */
static void handoff_does_not_accumulate(void **state)
{
	(void)state;
	uint64_t released = hak__pool_released_total();
	for (int round = 0; round < 20; round++) {
		run_round(0);
		test_trim(2);
	}
	assert_true(hak__pool_live() <= 8);
	assert_true(hak__pool_released_total() >= released);
	assert_int_equal(hak__pool_active_total(), 0);
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
		cmocka_unit_test(option_g),
		cmocka_unit_test(handoff_does_not_accumulate),
		cmocka_unit_test(option_f),
		cmocka_unit_test(handoff_does_not_accumulate),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
