/* test_plugin_superslab.c: the SuperSlab size policies' own decisions (fixed, adaptive, the
 * example), on the fake core (fake_core.h): lg_size_for by their settings, by the real size
 * classes and by live_superslabs; what they ask the core to decide; their keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>

#include "fake_core.h"

FAKE_PLUGIN(superslab_fixed);
FAKE_PLUGIN(superslab_adaptive);
FAKE_PLUGIN(superslab_example);

#define FIXED (&hak__builtin_superslab_fixed)
#define ADAPTIVE (&hak__builtin_superslab_adaptive)
#define EXAMPLE (&hak__builtin_superslab_example)

static unsigned lg(const struct hak_policy_desc *d, void *st, unsigned cls)
{
	const struct hak_superslab_ops *o = d->ops;
	return o->lg_size_for(st, cls);
}

/* The real classes, read through the fake's table (then forgotten from the log). */
static unsigned nclasses(void)
{
	unsigned n = fake_core_api.class_count();
	fake_clear();
	return n;
}

static size_t block_size(unsigned cls)
{
	size_t b = fake_core_api.class_block_size(cls);
	fake_clear();
	return b;
}

/* The first class whose blocks are bigger than `bytes`. */
static unsigned first_class_above(size_t bytes)
{
	unsigned n = nclasses(), c = 0;
	while (c < n && block_size(c) <= bytes)
		c++;
	assert_true(c < n);
	return c;
}

/* ---- fixed ----------------------------------------------------------------------------------- */

static void fixed_gives_one_size_for_every_class(void **unused)
{
	(void)unused;
	static const struct {
		const char *kv;
		unsigned lg;
	} cases[] = {{NULL, 21}, {"size = 1M", 20}, {"size = 2M", 21}, {"size = 1048576", 20}, {"size = 2048K", 21}};
	for (unsigned k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		unsigned n = nclasses();
		void *st = cases[k].kv ? fake_load(FIXED, FAKE_KV(cases[k].kv)) : fake_load(FIXED, FAKE_NO_KV);
		for (unsigned c = 0; c < n; c++)
			assert_int_equal(lg(FIXED, st, c), cases[k].lg);
		assert_int_equal(fake_ncalls(), 0); /* it asks the core nothing */
		fake_unload(FIXED, st);
	}
}

static void fixed_rejects_other_sizes(void **unused)
{
	(void)unused;
	void *st;
	assert_int_equal(fake_init(FIXED, FAKE_KV("size = 1536K"), &st), EINVAL);
	assert_string_equal(fake_err(), "line 1: size = '1536K': expected 1M or 2M");
	assert_int_equal(fake_init(FIXED, FAKE_KV("size = 1M", "size = 4M"), &st), EINVAL);
	assert_string_equal(fake_err(), "line 2: size = '4M': expected 1M or 2M");
	assert_int_equal(fake_init(FIXED, FAKE_KV("size = big"), &st), EINVAL);
	assert_string_equal(fake_err(), "line 1: size = 'big': expected 1M or 2M");
	assert_int_equal(fake_init(FIXED, FAKE_KV("lg_size = 20"), &st), EINVAL);
	assert_string_equal(fake_err(), "line 1: unknown key 'lg_size' (this policy takes: size)");
}

/* ---- adaptive -------------------------------------------------------------------------------- */

/* 1 MB while fewer than grow_after are live, 2 MB from then on; asked of the core each time. */
static void adaptive_grows_with_live_superslabs(void **unused)
{
	(void)unused;
	void *st = fake_load(ADAPTIVE, FAKE_NO_KV); /* grow_after = 4 */
	unsigned small = 3;
	for (unsigned live = 0; live < 8; live++) {
		fake.live_superslabs = live;
		fake_clear();
		assert_int_equal(lg(ADAPTIVE, st, small), live < 4 ? 20 : 21);
		assert_int_equal(fake_count("live_superslabs"), 1);
	}
	fake_unload(ADAPTIVE, st);

	st = fake_load(ADAPTIVE, FAKE_KV("grow_after = 0"));
	fake.live_superslabs = 0;
	for (unsigned c = 0, n = nclasses(); c < n; c++)
		assert_int_equal(lg(ADAPTIVE, st, c), 21);
	fake_unload(ADAPTIVE, st);

	st = fake_load(ADAPTIVE, FAKE_KV("grow_after = 100"));
	fake.live_superslabs = 99;
	assert_int_equal(lg(ADAPTIVE, st, small), 20);
	fake.live_superslabs = 100;
	assert_int_equal(lg(ADAPTIVE, st, small), 21);
	fake_unload(ADAPTIVE, st);
}

/* Classes above 16 KB blocks get 2 MB whatever the heap: several of their slabs fit in one. */
static void adaptive_big_classes_always_get_2mb(void **unused)
{
	(void)unused;
	void *st = fake_load(ADAPTIVE, FAKE_KV("grow_after = 1000"));
	unsigned big = first_class_above(16384);
	fake.live_superslabs = 0;
	for (unsigned c = 0, n = nclasses(); c < n; c++)
		assert_int_equal(lg(ADAPTIVE, st, c), c >= big ? 21 : 20);
	assert_int_equal(block_size(big - 1), 16384); /* the boundary class is by demand */
	fake_clear();
	lg(ADAPTIVE, st, big);
	assert_int_equal(fake_count("live_superslabs"), 0); /* decided by the class alone */
	fake_unload(ADAPTIVE, st);
}

static void adaptive_rejects_bad_settings(void **unused)
{
	(void)unused;
	void *st;
	assert_int_equal(fake_init(ADAPTIVE, FAKE_KV("grow_after = -1"), &st), EINVAL);
	assert_string_equal(fake_err(), "line 1: grow_after = '-1': expected an integer in [0, 1048576]");
	assert_int_equal(fake_init(ADAPTIVE, FAKE_KV("size = 1M"), &st), EINVAL);
	assert_string_equal(fake_err(), "line 1: unknown key 'size' (this policy takes: grow_after)");
}

/* ---- example --------------------------------------------------------------------------------- */

/* 2 MB from large_from bytes up, 1 MB below; the live count plays no part. */
static void example_splits_classes_at_large_from(void **unused)
{
	(void)unused;
	static const unsigned long froms[] = {16384, 4096, 16, 131072};
	for (unsigned k = 0; k < sizeof froms / sizeof froms[0]; k++) {
		char kv[64];
		snprintf(kv, sizeof kv, "large_from = %lu", froms[k]);
		void *st = k == 0 ? fake_load(EXAMPLE, FAKE_NO_KV) : fake_load(EXAMPLE, FAKE_KV(kv));
		fake.live_superslabs = 1000;
		for (unsigned c = 0, n = nclasses(); c < n; c++) {
			size_t b = block_size(c);
			assert_int_equal(lg(EXAMPLE, st, c), b >= froms[k] ? 21 : 20);
		}
		fake_clear();
		lg(EXAMPLE, st, 0);
		assert_string_equal(fake_trace(), "class_block_size(0)=16");
		fake_unload(EXAMPLE, st);
	}
}

static void example_rejects_bad_settings(void **unused)
{
	(void)unused;
	void *st;
	assert_int_equal(fake_init(EXAMPLE, FAKE_KV("large_from = 8"), &st), EINVAL);
	assert_string_equal(fake_err(), "line 1: large_from = '8': expected an integer in [16, 131072]");
	assert_int_equal(fake_init(EXAMPLE, FAKE_KV("large_from = 4K"), &st), EINVAL);
	assert_string_equal(fake_err(), "line 1: large_from = '4K': expected an integer in [16, 131072]");
	assert_int_equal(fake_init(EXAMPLE, FAKE_KV("grow_after = 2"), &st), EINVAL);
	assert_string_equal(fake_err(), "line 1: unknown key 'grow_after' (this policy takes: large_from)");
}

#define T(f) cmocka_unit_test_setup_teardown(f, fake_setup, fake_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(fixed_gives_one_size_for_every_class),
		T(fixed_rejects_other_sizes),
		T(adaptive_grows_with_live_superslabs),
		T(adaptive_big_classes_always_get_2mb),
		T(adaptive_rejects_bad_settings),
		T(example_splits_classes_at_large_from),
		T(example_rejects_bad_settings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
