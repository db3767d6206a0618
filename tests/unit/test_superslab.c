/* test_superslab.c: SuperSlab mapping, carving and release. A SuperSlab is one mapping aligned
 * to its size and registered in the address map for all of its granules; slabs carve lazily up
 * to capacity; blocks returned make a slab entirely free exactly once; an empty SuperSlab beyond
 * the reserve is unmapped and forgotten by the address map; unknown pointers are never found. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core_test.h"

static int setup(void **state)
{
	(void)state;
	hak__init();
	return 0;
}

static int global_object;

static void unknown_pointers_are_not_found(void **state)
{
	(void)state;
	int on_stack = 0;
	void *from_libc = malloc(64); /* glibc's: this runner is not under hakmem */
	assert_null(hak__ss_lookup(&on_stack));
	assert_null(hak__ss_lookup(&global_object));
	assert_null(hak__ss_lookup(from_libc));
	assert_null(hak__ss_lookup((void *)(uintptr_t)0xffff800000000000ull));
	assert_null(hak__ss_lookup(NULL));
	/* the flat map of the free fast path answers its sentinel: nothing owned, nothing carved */
	void *unknown[] = {&on_stack, &global_object, from_libc, NULL};
	for (unsigned i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
		struct hak_slab *f = hak__slab_lookup_fast(unknown[i]);
		assert_ptr_equal(f, (struct hak_slab *)hak__flat);
		assert_int_equal(hak_load_relaxed(&f->xowner), HAK_OWNER_NONE);
		assert_int_equal(hak_load_relaxed(&f->xcarved), 0);
		assert_false(hak__block_is_aligned(f, unknown[i]));
	}
	free(from_libc);
}

/* Two units 256 GB apart share one flat entry: the first registered keeps it, the exact map
 * knows both, and clearing one never clears the other's entry. */
static void aliasing_units_share_a_flat_entry(void **state)
{
	(void)state;
	assert_int_equal(hak__map_flat_window(), (size_t)1 << HAK_FLAT_WINDOW_LG);
	static _Alignas(4096) char headers[2][4096]; /* two "SuperSlab headers" */
	struct hak_slab *r1 = (struct hak_slab *)headers[0] + 1, *r2 = (struct hak_slab *)headers[1] + 2;
	uintptr_t a1 = (uintptr_t)0x123450000, a2 = a1 + ((uintptr_t)1 << HAK_FLAT_WINDOW_LG);
	struct hak_slab *sentinel = (struct hak_slab *)hak__flat;
	assert_ptr_equal(hak__slab_lookup_fast((void *)a1), sentinel);
	assert_int_equal(hak__map_set(a1, 1, &r1), 0);
	assert_int_equal(hak__map_set(a2, 1, &r2), 0);
	assert_ptr_equal(hak__slab_lookup((void *)(a1 + 100)), r1);
	assert_ptr_equal(hak__slab_lookup((void *)(a2 + 100)), r2);
	assert_ptr_equal(hak__slab_lookup_fast((void *)a1), r1);
	assert_ptr_equal(hak__slab_lookup_fast((void *)a2), r1); /* aliased: the checks turn it away */
	hak__map_clear(a2, 1);
	assert_null(hak__slab_lookup((void *)a2));
	assert_ptr_equal(hak__slab_lookup_fast((void *)a1), r1);
	hak__map_clear(a1, 1);
	assert_null(hak__slab_lookup((void *)a1));
	assert_ptr_equal(hak__slab_lookup_fast((void *)a1), sentinel);
	assert_int_equal(hak__map_set(a2, 1, &r2), 0); /* free again: the next one takes it */
	assert_ptr_equal(hak__slab_lookup_fast((void *)a1), r2);
	hak__map_clear(a2, 1);
	assert_ptr_equal(hak__slab_lookup_fast((void *)a2), sentinel);
}

static unsigned count_free;
static void note_free(void *ctx, hak_slab *s)
{
	(void)ctx;
	(void)s;
	count_free++;
}

static void slab_carves_and_comes_back(void **state)
{
	(void)state;
	unsigned cls = hak__size_to_class(48);
	long maps_before = hak__os_mappings();
	struct hak_slab *s = test_slab_acquire(cls, HAK_OWNER_ANY, 0);
	assert_non_null(s);
	struct hak_superslab *ss = s->ss;
	size_t size = (size_t)1 << ss->lg_size;
	assert_int_equal((uintptr_t)ss & (size - 1), 0);          /* aligned to its size */
	assert_int_equal(ss->magic, HAK_SS_MAGIC);
	for (size_t off = 0; off < size; off += HAK_UNIT_SIZE) {  /* every unit maps to it */
		assert_ptr_equal(hak__ss_lookup((char *)ss + off + 123), ss);
		struct hak_slab *u = hak__slab_lookup((char *)ss + off + 123);
		assert_ptr_equal(u, hak__slab_of_ss(ss, (char *)ss + off));
		assert_ptr_equal(hak__slab_lookup_fast((char *)ss + off), u);
		/* the same address beyond 47 bits: the exact lookup refuses it, the fast one aliases
		 * and leaves it to the block-start test */
		char *alias = (char *)ss + off + ((uintptr_t)1 << 47);
		assert_null(hak__slab_lookup(alias));
		assert_false(hak__block_is_aligned(hak__slab_lookup_fast(alias), alias));
	}
	assert_ptr_equal(hak__slab_lookup(s->start), s);
	/* the SuperSlab is one mapping; the first one may also bring a metadata chunk (map leaf) */
	assert_true(hak__os_mappings() <= maps_before + 2);

	/* Take everything: capacity blocks, all distinct, all inside the slab and aligned. */
	struct hak_chain all = {0}, part;
	unsigned total = 0;
	while (hak__slab_take(s, 7, &part)) {
		for (void **b = part.head; b; b = b[0]) {
			assert_true(hak__block_is_aligned(s, b));
			assert_ptr_equal(hak__slab_of_ss(ss, b), s);
			assert_int_equal((uintptr_t)b % HAK_ALIGN, 0);
		}
		((void **)part.tail)[0] = all.head;
		all.head = part.head;
		if (!all.tail)
			all.tail = part.tail;
		all.count += part.count;
		total += part.count;
	}
	assert_int_equal(total, s->capacity);
	assert_int_equal(s->carved, s->capacity);
	assert_false(hak__block_is_aligned(s, (char *)all.head + 16)); /* interior pointer */

	/* Return them: the slab becomes entirely free exactly once, at the last block. */
	count_free = 0;
	hak__chain_return(all, note_free, NULL);
	assert_int_equal(count_free, 1);
	assert_int_equal(s->nfree, s->capacity);
	struct hak_slab_info info;
	hak__slab_info(s, &info);
	assert_int_equal(info.used, 0);

	/* Release: the SuperSlab empties; releasing beyond a reserve of 0 unmaps it. */
	uint64_t released = hak__pool_released_total();
	hak__slab_release(s);
	assert_true(hak__pool_empty_count() >= 1);
	assert_true(test_release_empty(0) >= 1);
	assert_true(hak__pool_released_total() > released);
	assert_null(hak__ss_lookup(ss));
	assert_null(hak__slab_lookup(ss));
	assert_ptr_equal(hak__slab_lookup_fast((char *)ss + size - 16), (struct hak_slab *)hak__flat);
}

static void many_slabs_share_superslabs(void **state)
{
	(void)state;
	enum { N = 40 };
	struct hak_slab *slabs[N];
	uint64_t mapped = hak__pool_mapped_total();
	for (int i = 0; i < N; i++) {
		slabs[i] = test_slab_acquire(hak__size_to_class(16 + 16 * (i % 8)), HAK_OWNER_ANY, 0);
		assert_non_null(slabs[i]);
		for (int j = 0; j < i; j++) /* no two slabs overlap */
			if (slabs[j]->ss == slabs[i]->ss) {
				unsigned a0 = slabs[i]->first_unit, a1 = a0 + slabs[i]->nunits;
				unsigned b0 = slabs[j]->first_unit, b1 = b0 + slabs[j]->nunits;
				assert_true(a1 <= b0 || b1 <= a0);
			}
	}
	/* 40 one-unit slabs need at least two SuperSlabs of 32 units, and not many more. */
	uint64_t used = hak__pool_mapped_total() - mapped + hak__pool_empty_count();
	assert_true(used >= 1 && used <= 4);
	for (int i = 0; i < N; i++)
		hak__slab_release(slabs[i]);
	test_release_empty(0);
	assert_int_equal(hak__pool_empty_count(), 0);
}

static void purge_counts_free_units(void **state)
{
	(void)state;
	struct hak_slab *a = test_slab_acquire(hak__size_to_class(1024), HAK_OWNER_ANY, 0);
	struct hak_slab *b = test_slab_acquire(hak__size_to_class(1024), HAK_OWNER_ANY, 0);
	assert_non_null(a);
	assert_non_null(b);
	struct hak_chain ch;
	hak__slab_take(a, 4, &ch);
	memset((char *)ch.head + 16, 0xab, 1024 - 16); /* touch it, keeping the chain links */
	hak__chain_return(ch, NULL, NULL);
	hak__slab_release(a); /* its units are dirty now; b keeps the SuperSlab alive */
	/* A unit freed just now is too young for a purge that wants a second of age. */
	assert_int_equal(hak__trim_purge(1000000000u, UINT64_MAX), 0);
	struct timespec ms20 = {0, 20000000};
	nanosleep(&ms20, NULL);
	/* 20 ms old: purged by a purge that wants 10 ms, one unit within a budget of one byte. */
	uint64_t purged = hak__trim_purge(10000000u, 1);
	assert_true(purged >= HAK_UNIT_SIZE - HAK_SS_HEADER && purged <= HAK_UNIT_SIZE); /* one unit */
	purged += hak__trim_purge(10000000u, UINT64_MAX);
	assert_true(purged >= HAK_UNIT_SIZE * hak__classes[hak__size_to_class(1024)].slab_units - HAK_SS_HEADER);
	assert_int_equal(hak__trim_purge(0, UINT64_MAX), 0); /* nothing dirty any more */
	/* purge everything at once (the eager policy) */
	struct hak_chain ch2;
	struct hak_slab *c = test_slab_acquire(hak__size_to_class(1024), HAK_OWNER_ANY, 0);
	hak__slab_take(c, 4, &ch2);
	memset((char *)ch2.head + 16, 0xcd, 1024 - 16);
	hak__chain_return(ch2, NULL, NULL);
	hak__slab_release(c);
	assert_true(hak__trim_purge(0, UINT64_MAX) >= HAK_UNIT_SIZE - HAK_SS_HEADER);
	hak__slab_release(b);
	test_release_empty(0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(unknown_pointers_are_not_found),
		cmocka_unit_test(slab_carves_and_comes_back),
		cmocka_unit_test(aliasing_units_share_a_flat_entry),
		cmocka_unit_test(many_slabs_share_superslabs),
		cmocka_unit_test(purge_counts_free_units),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
