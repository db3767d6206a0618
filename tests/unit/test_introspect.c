/* test_introspect.c: the figures behind mallinfo2, malloc_stats and malloc_info (introspect.c).
 * The calling thread's own allocations move "in use" by exactly their block sizes, whatever
 * its cache holds; blocks of threads that exited, and blocks freed by other threads, are
 * counted exactly at quiescence; every byte of a heap is in exactly one figure (in use, thread
 * caches, free in slabs, free units, overhead); under Option G and Option F. */
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
#include "introspect.h"

#include "../../policies/ownership_central.c"

static uint64_t in_use(void)
{
	struct hak_figures f;
	hak__figures(&f);
	return f.heap[0].in_use + f.heap[1].in_use;
}

static void check_identity(void)
{
	struct hak_figures f;
	hak__figures(&f);
	for (unsigned h = 0; h < 2; h++) {
		const struct hak_heap_figures *x = &f.heap[h];
		assert_int_equal(x->system, x->in_use + x->cached + x->free_in_slabs + x->free_units + x->overhead);
		assert_int_equal(x->system, x->superslabs << (HAK_SS_LG_MIN + h));
		assert_true(x->overhead <= x->system / 8 + HAK_SS_HEADER * x->superslabs);
		assert_true(x->empty <= x->free_units);
		assert_true(x->peak_system >= x->system);
	}
}

static size_t sizes[] = {1, 16, 17, 100, 512, 1000, 1024, 1025, 3000, 8192, 20000, 65536, 131072};
enum { NSIZES = sizeof sizes / sizeof sizes[0] };

/* One block at a time on this thread: exact, refills and all. */
static void own_thread_exact(void)
{
	void *p[NSIZES * 50];
	uint64_t base = in_use(), sum = 0;
	for (int i = 0; i < NSIZES * 50; i++) {
		uint64_t before = in_use();
		p[i] = hak__malloc(sizes[i % NSIZES]);
		assert_non_null(p[i]);
		size_t bs = hak__usable_size(p[i]);
		sum += bs;
		assert_int_equal(in_use(), before + bs);
	}
	assert_int_equal(in_use(), base + sum);
	check_identity();
	for (int i = 0; i < NSIZES * 50; i++) {
		uint64_t before = in_use();
		size_t bs = hak__usable_size(p[i]);
		hak__free(p[i]);
		assert_int_equal(in_use(), before - bs);
	}
	assert_int_equal(in_use(), base);
	check_identity();
}

enum { THREADS = 4, PER_THREAD = 3000 };
static void *blocks[THREADS][PER_THREAD];
static uint64_t bytes_of[THREADS];

static void *alloc_and_exit(void *arg)
{
	int k = (int)(intptr_t)arg;
	bytes_of[k] = 0;
	for (int i = 0; i < PER_THREAD; i++) {
		blocks[k][i] = hak__malloc(16 + (size_t)(i * 97 + k) % 3000);
		assert_non_null(blocks[k][i]);
		bytes_of[k] += hak__usable_size(blocks[k][i]);
	}
	for (int i = 0; i < PER_THREAD; i += 2) { /* half freed by their own thread */
		bytes_of[k] -= hak__usable_size(blocks[k][i]);
		hak__free(blocks[k][i]);
		blocks[k][i] = NULL;
	}
	return NULL; /* exits: its caches are flushed, its state parked or retired */
}

/* Threads allocate and exit; then this thread frees their blocks (foreign frees). */
static void other_threads_at_quiescence(void)
{
	uint64_t base = in_use(), held = 0;
	pthread_t t[THREADS];
	for (int k = 0; k < THREADS; k++)
		assert_int_equal(pthread_create(&t[k], NULL, alloc_and_exit, (void *)(intptr_t)k), 0);
	for (int k = 0; k < THREADS; k++) {
		pthread_join(t[k], NULL);
		held += bytes_of[k];
	}
	assert_int_equal(in_use(), base + held);
	check_identity();
	for (int k = 0; k < THREADS; k++)
		for (int i = 0; i < PER_THREAD; i++)
			if (blocks[k][i]) {
				hak__free(blocks[k][i]);
				blocks[k][i] = NULL;
			}
	assert_int_equal(in_use(), base);
	check_identity();
	/* After a trim pass the empty SuperSlabs are gone and the figures still add up. */
	hak__thread_restart();
	test_trim(0);
	assert_int_equal(in_use(), base);
	check_identity();
}

/* Large blocks: counted by mapping, at their lengths; freed ones wait in the cache. */
static void large_blocks(void)
{
	struct hak_figures a, b, c;
	hak__figures(&a);
	void *p = hak__malloc((size_t)1 << 20), *q = hak__malloc((size_t)3 << 20);
	assert_non_null(p);
	assert_non_null(q);
	hak__figures(&b);
	assert_int_equal(b.large.live, a.large.live + 2);
	assert_int_equal(b.large.live_bytes, a.large.live_bytes + ((size_t)4 << 20));
	assert_true(b.large.peak >= b.large.live && b.large.peak_bytes >= b.large.live_bytes);
	hak__free(p);
	hak__free(q);
	hak__figures(&c);
	assert_int_equal(c.large.live_bytes, a.large.live_bytes);
	assert_int_equal(c.large.cached_bytes, a.large.cached_bytes + ((size_t)4 << 20));
	test_trim(0);
	hak__figures(&c);
	assert_int_equal(c.large.cached, 0);
}

static void option_g(void **state)
{
	(void)state;
	own_thread_exact();
	other_threads_at_quiescence();
	large_blocks();
}

static void option_f(void **state)
{
	(void)state;
	test_install(&hak__builtin_ownership_central, NULL);
	hak__thread_restart(); /* this thread's next state follows Option F */
	own_thread_exact();
	other_threads_at_quiescence();
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
		cmocka_unit_test(option_f),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
