/* test_size_class.c: the size classes. Every request maps to the smallest class that holds it,
 * classes are 16-byte multiples at most 12.5% apart above 128 B, and each slab shape keeps its
 * tail waste under 1/8 while holding enough blocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core_test.h"

static int setup(void **state)
{
	(void)state;
	hak__size_classes_init();
	return 0;
}

static void every_size_gets_the_smallest_fitting_class(void **state)
{
	(void)state;
	for (size_t n = 0; n <= HAK_SMALL_MAX; n++) {
		unsigned c = hak__size_to_class(n);
		assert_true(c < HAK_NCLASSES);
		assert_true(hak__classes[c].block_size >= n);
		if (c > 0)
			assert_true(hak__classes[c - 1].block_size < (n ? n : 1));
		assert_int_equal(c, hak__size_to_class_slow(n));
	}
	assert_int_equal(hak__classes[HAK_NCLASSES - 1].block_size, HAK_SMALL_MAX);
}

static void classes_are_aligned_and_close(void **state)
{
	(void)state;
	for (unsigned c = 0; c < HAK_NCLASSES; c++) {
		uint32_t size = hak__classes[c].block_size;
		assert_int_equal(size % HAK_ALIGN, 0);
		if (c > 0 && size > 128) {
			uint32_t prev = hak__classes[c - 1].block_size;
			assert_true(size > prev);
			/* spacing at most 12.5% of the smaller neighbour */
			assert_true((uint64_t)(size - prev) * 8 <= prev);
		}
	}
}

static void slab_shapes_waste_little(void **state)
{
	(void)state;
	for (unsigned c = 0; c < HAK_NCLASSES; c++) {
		const struct hak_class_info *ci = &hak__classes[c];
		size_t bytes = (size_t)ci->slab_units << HAK_UNIT_SHIFT;
		size_t cap = bytes / ci->block_size;
		assert_true(ci->slab_units >= 1 && ci->slab_units <= 8);
		assert_true(cap >= 4);
		assert_true((bytes - cap * ci->block_size) * 8 <= bytes);
		/* a slab starting at unit 0 loses the header but must still hold a block */
		assert_true((bytes - HAK_SS_HEADER) / ci->block_size >= 1);
		assert_true(ci->batch >= 1 && ci->cache_max >= ci->batch);
	}
}

/* base + off as an address, wrapping like the hardware (pointer arithmetic must not). */
static const void *at(const char *base, uint64_t off)
{
	return (const void *)(uintptr_t)((uint64_t)(uintptr_t)base + off);
}

/* The block-start test (hak__block_is_aligned) against plain division: every offset a
 * stale, interior, misaligned, negative or beyond-47-bit pointer may produce. */
static void block_start_test_is_exact(void **state)
{
	(void)state;
	static char base[64];
	for (unsigned c = 0; c < HAK_NCLASSES; c++) {
		const struct hak_class_info *ci = &hak__classes[c];
		struct hak_slab s = {.start = base, .div_inv = ci->div_inv, .div_shift = ci->div_shift};
		uint64_t carved = 6;
		atomic_store(&s.xcarved, carved);
		assert_int_equal(ci->block_size >> ci->div_shift << ci->div_shift, ci->block_size);
		assert_true((ci->block_size >> ci->div_shift) & 1);
		for (uint64_t off = 0; off < 8u * ci->block_size + 64; off += 8) {
			bool want = off % ci->block_size == 0 && off / ci->block_size < carved;
			assert_int_equal(hak__block_is_aligned(&s, at(base, off)), want);
		}
		/* before the first block (the SuperSlab header), and aliases of a block start */
		for (uint64_t back = 16; back <= 8192; back += 16)
			assert_false(hak__block_is_aligned(&s, at(base, -back)));
		for (unsigned bit = 47; bit < 64; bit++)
			assert_false(hak__block_is_aligned(&s, at(base, (uint64_t)1 << bit)));
		assert_false(hak__block_is_aligned(&s, at(base, (uint64_t)ci->block_size << 40)));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_size_gets_the_smallest_fitting_class),
		cmocka_unit_test(classes_are_aligned_and_close),
		cmocka_unit_test(slab_shapes_waste_little),
		cmocka_unit_test(block_start_test_is_exact),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
