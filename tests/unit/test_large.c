/* test_large.c: the cache of freed large mappings (core/large.c). A freed mapping is reused by
 * the next large allocation that fits, without a new mapping and zeroed for calloc; the limits
 * (slots, bytes, biggest mapping) hold, the oldest mapping goes back first, and lowering them
 * gives back at once what no longer fits; a slot count beyond the cache is capped; a release by
 * idle time sends back only what waited that long; realloc keeps a cached mapping's pages for a
 * block that grows, and shrinks only what the program shrank. The large layer's counters tell
 * what was mapped and released. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include "large.h"
#include "os.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static struct hak_large_limits defaults;

static uint64_t large_stat(int which)
{
	uint64_t v[4];
	hak__large_stats(&v[0], &v[1], &v[2], &v[3]);
	return v[which];
}
#define cached_now() large_stat(1)
#define mapped() large_stat(2)
#define released() large_stat(3)

/* hak__large_free, for blocks the test knows are large. */
static bool lfree(void *p)
{
	bool wants_pass;
	return hak__large_free(p, &wants_pass);
}

/* Every test starts with an empty cache and the default limits. */
static int reset(void **state)
{
	(void)state;
	hak__large_default_limits(&defaults);
	hak__large_set_limits(&defaults);
	hak__large_release(0, 0, hak__now_ns());
	assert_int_equal(cached_now(), 0);
	return 0;
}

static void *big(size_t n, unsigned char fill)
{
	unsigned char *p = hak__large_alloc(n, 0, false);
	assert_non_null(p);
	memset(p, fill, n);
	return p;
}

static void freed_mapping_is_reused_and_zeroed_for_calloc(void **state)
{
	(void)state;
	void *p = big(MiB, 0xAB);
	uint64_t m = mapped();
	assert_true(lfree(p));
	assert_int_equal(cached_now(), 1);
	unsigned char *q = hak__large_alloc(MiB, 0, true);
	assert_ptr_equal(q, p);
	assert_int_equal(mapped(), m); /* no new mapping */
	for (size_t i = 0; i < MiB; i++)
		if (q[i]) {
			fail_msg("byte %zu of a reused calloc block is %#x", i, q[i]);
		}
	assert_true(lfree(q));
}

static void best_fit_then_growth(void **state)
{
	(void)state;
	void *a = big(256 * KiB, 1), *b = big(4 * MiB, 2), *c = big(MiB, 3);
	assert_true(lfree(a));
	assert_true(lfree(b));
	assert_true(lfree(c));
	uint64_t m = mapped();
	void *p = hak__large_alloc(900 * KiB, 0, false); /* smallest that fits: the 1 MB one */
	assert_ptr_equal(p, c);
	void *q = hak__large_alloc(8 * MiB, 0, false); /* none fits: the 4 MB one, grown */
	assert_non_null(q);
	assert_int_equal(hak__large_usable(q), 8 * MiB);
	assert_int_equal(((unsigned char *)q)[4 * MiB - 1], 2); /* its pages came along */
	assert_int_equal(mapped(), m);
	assert_int_equal(cached_now(), 1); /* the 256 KB one */
	assert_true(lfree(p));
	assert_true(lfree(q));
}

/* More frees than slots: the cache keeps the newest, the oldest went back (and first). */
static void slot_limit_sends_the_oldest_back(void **state)
{
	(void)state;
	struct hak_large_limits l = defaults;
	l.slots = 4;
	hak__large_set_limits(&l);
	enum { N = 7 };
	void *v[N];
	for (int i = 0; i < N; i++)
		v[i] = big(256 * KiB + (size_t)i * 4096, (unsigned char)i); /* distinct sizes */
	uint64_t r = released();
	for (int i = 0; i < N; i++)
		assert_true(lfree(v[i]));
	assert_int_equal(cached_now(), 4);
	assert_int_equal(released() - r, N - 4);
	/* each exact size comes back from the cache for the 4 newest only */
	for (int i = N - 4; i < N; i++) {
		void *p = hak__large_alloc(256 * KiB + (size_t)i * 4096, 0, false);
		assert_ptr_equal(p, v[i]);
		assert_true(lfree(p));
	}
}

/* The slot count the default allows covers a burst of a few tens of frees (mstress's). */
static void default_keeps_a_burst_of_frees(void **state)
{
	(void)state;
	enum { N = 48 };
	void *v[N];
	for (int i = 0; i < N; i++)
		v[i] = big(160 * KiB, 1);
	uint64_t r = released(), m = mapped();
	for (int i = 0; i < N; i++)
		assert_true(lfree(v[i]));
	assert_int_equal(released(), r);
	assert_int_equal(cached_now(), N);
	for (int i = 0; i < N; i++)
		v[i] = big(160 * KiB, 2);
	assert_int_equal(mapped(), m);
	for (int i = 0; i < N; i++)
		assert_true(lfree(v[i]));
}

static void byte_and_size_limits(void **state)
{
	(void)state;
	struct hak_large_limits l = {.size = sizeof l, .slots = 64, .max_bytes = 3 * MiB, .max_one = 2 * MiB};
	hak__large_set_limits(&l);
	void *v[5];
	for (int i = 0; i < 5; i++)
		v[i] = big(MiB, 1);
	void *huge = big(2 * MiB + 4096, 2);
	uint64_t r = released();
	for (int i = 0; i < 5; i++)
		assert_true(lfree(v[i]));
	assert_int_equal(cached_now(), 3);
	assert_true(lfree(huge)); /* above max_one: straight back */
	assert_int_equal(cached_now(), 3);
	assert_int_equal(released() - r, 3);
}

static void lowering_limits_gives_back_at_once(void **state)
{
	(void)state;
	void *v[6];
	for (int i = 0; i < 6; i++)
		v[i] = big(MiB * (size_t)(i + 1), 1);
	for (int i = 0; i < 6; i++)
		assert_true(lfree(v[i]));
	assert_int_equal(cached_now(), 6);
	struct hak_large_limits l = {.size = sizeof l, .slots = 3, .max_bytes = 96 * MiB, .max_one = 4 * MiB};
	hak__large_set_limits(&l);
	/* three slots keep 4, 5 and 6 MB (the newest); 5 and 6 MB are now too big */
	assert_int_equal(cached_now(), 1);
	struct hak_large_limits got;
	hak__large_get_limits(&got);
	assert_int_equal(got.slots, 3);
	assert_int_equal(got.max_one, 4 * MiB);
	void *p = hak__large_alloc(4 * MiB, 0, false);
	assert_ptr_equal(p, v[3]);
	assert_true(lfree(p));
}

static void oversized_slots_are_capped(void **state)
{
	(void)state;
	struct hak_large_limits many = {.size = sizeof many, .slots = 100000, .max_bytes = 96 * MiB, .max_one = MiB};
	hak__large_set_limits(&many);
	struct hak_large_limits got;
	hak__large_get_limits(&got);
	assert_int_equal(got.slots, 256); /* the cache's array */
	/* A table from an older plugin, holding only max_bytes: the rest stays at its default. */
	struct hak_large_limits old = {.size = offsetof(struct hak_large_limits, max_one), .max_bytes = 8 * MiB};
	hak__large_set_limits(&old);
	hak__large_get_limits(&got);
	assert_int_equal(got.max_bytes, 8 * MiB);
	assert_int_equal(got.max_one, defaults.max_one);
	assert_int_equal(got.slots, defaults.slots);
	struct hak_large_limits none = {.size = sizeof none, .slots = 0, .max_bytes = 0, .max_one = 0};
	hak__large_set_limits(&none);
	void *p = big(MiB, 1);
	assert_true(lfree(p));
	assert_int_equal(cached_now(), 0);
}

static void release_by_idle_time(void **state)
{
	(void)state;
	const uint64_t ms = 1000000;
	void *a = big(MiB, 1), *b = big(2 * MiB, 2);
	assert_true(lfree(a));
	assert_int_equal(hak__large_release(1000 * ms, 0, hak__now_ns()), 0); /* too young */
	struct timespec t20 = {0, 20000000};
	nanosleep(&t20, NULL);
	assert_true(lfree(b));
	assert_int_equal(hak__large_release(10 * ms, 0, hak__now_ns()), 1); /* a: idle 20 ms */
	assert_int_equal(cached_now(), 1);
	void *p = hak__large_alloc(2 * MiB, 0, false);
	assert_ptr_equal(p, b);
	nanosleep(&t20, NULL);
	assert_true(lfree(p)); /* reused: its idle time starts over */
	assert_int_equal(hak__large_release(10 * ms, 0, hak__now_ns()), 0);
	assert_int_equal(hak__large_release(0, 2 * MiB, hak__now_ns()), 0); /* within keep_bytes */
	assert_int_equal(hak__large_release(0, 0, hak__now_ns()), 1);
	assert_int_equal(cached_now(), 0);
}

/* A block that got a bigger cached mapping than it asked for grows into it in place (a string
 * builder: no system call, no fault); a block the program really shrinks still shrinks. */
static void realloc_grows_into_a_cached_mapping(void **state)
{
	(void)state;
	void *big4 = big(4 * MiB, 7);
	assert_true(lfree(big4));
	bool handled;
	void *p = hak__large_alloc(200 * KiB, 0, false);
	assert_ptr_equal(p, big4);
	for (size_t n = 200 * KiB; n <= 4 * MiB; n += n / 4) {
		void *q = hak__large_realloc(p, n, &handled);
		assert_true(handled);
		assert_ptr_equal(q, p);
	}
	assert_int_equal(hak__large_usable(p), 4 * MiB);
	void *q = hak__large_realloc(p, MiB, &handled); /* asked 4 MB before: a real shrink */
	assert_true(handled);
	assert_non_null(q);
	assert_int_equal(hak__large_usable(q), MiB);
	assert_int_equal(((unsigned char *)q)[MiB - 1], 7);
	q = hak__large_realloc(q, 600 * KiB, &handled); /* above half: in place */
	assert_int_equal(hak__large_usable(q), MiB);
	assert_true(lfree(q));
}

static void unknown_pointers_are_not_large(void **state)
{
	(void)state;
	int local;
	assert_false(lfree(&local));
	assert_int_equal(hak__large_usable(&local), 0);
	void *p = big(MiB, 1);
	assert_false(lfree((char *)p + 4096)); /* an interior pointer */
	assert_true(lfree(p));
	assert_false(lfree(p)); /* a second free */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(freed_mapping_is_reused_and_zeroed_for_calloc, reset),
		cmocka_unit_test_setup(best_fit_then_growth, reset),
		cmocka_unit_test_setup(slot_limit_sends_the_oldest_back, reset),
		cmocka_unit_test_setup(default_keeps_a_burst_of_frees, reset),
		cmocka_unit_test_setup(byte_and_size_limits, reset),
		cmocka_unit_test_setup(lowering_limits_gives_back_at_once, reset),
		cmocka_unit_test_setup(oversized_slots_are_capped, reset),
		cmocka_unit_test_setup(release_by_idle_time, reset),
		cmocka_unit_test_setup(realloc_grows_into_a_cached_mapping, reset),
		cmocka_unit_test_setup(unknown_pointers_are_not_large, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
