/* size_class.c: layer 0, the size classes (16 B .. 128 KB, 8 per doubling above 128 B), the
 * units per slab of each class, refill batches and TLS cache limits. Filled once, before any
 * allocation. */
#include "size_class.h"

struct hak_class_info hak__classes[HAK_NCLASSES];
uint8_t hak__class_of_small[1024 / 16 + 1];
uint16_t hak__tc_off_of_small[HAK_FAST_MAX + 1];
unsigned hak__first_big_class = HAK_NCLASSES;
uintptr_t hak__accept_mark; /* tcache.h: HAK_ACCEPT_TRACED while recording */
/* Every thread starts detached (size_class.h): .tdata, 2.8 kB copied at thread creation. */
__thread struct hak_tls_caches hak__tcs __attribute__((tls_model("initial-exec"))) = {
	.cache = {[0 ... HAK_NCLASSES - 1] = {.accept = HAK_TLS_NOBODY}},
};

/* m^-1 mod 2^64 for odd m: Newton's iteration doubles the correct low bits (3 to start). */
static uint64_t inverse_odd(uint64_t m)
{
	uint64_t x = m;
	for (int i = 0; i < 5; i++)
		x *= 2 - m * x;
	return x;
}

/* Above 128 B: n in (2^b, 2^(b+1)] falls in one of 8 classes spaced 2^(b-3) apart. */
unsigned hak__size_to_class_slow(size_t n)
{
	if (n <= 128)
		return n ? (unsigned)((n - 1) >> 4) : 0;
	size_t s = n - 1;
	unsigned b = 63u - (unsigned)__builtin_clzll(s); /* 2^b <= n-1 < 2^(b+1) */
	unsigned idx = (unsigned)(s >> (b - 3)) & 7u;
	return 8u + (b - 7u) * 8u + idx;
}

static size_t class_size_of(unsigned cls)
{
	if (cls < 8)
		return 16u * (cls + 1);
	unsigned b = 7 + (cls - 8) / 8, idx = (cls - 8) % 8;
	return ((size_t)1 << b) + (size_t)(idx + 1) * ((size_t)1 << (b - 3));
}

/* Units per slab (1..8): the fewest that hold at least 8 blocks (4 for the largest classes) with at
 * most 1/8 of the slab left over at its end. */
static unsigned slab_units_for(size_t size)
{
	for (unsigned u = 1; u <= 8; u++) {
		size_t bytes = u * HAK_UNIT_SIZE, cap = bytes / size, waste = bytes - cap * size;
		if (cap >= (size <= 16384 ? 8u : 4u) && waste * 8 <= bytes)
			return u;
	}
	return 8;
}

void hak__size_classes_init(void)
{
	for (unsigned c = 0; c < HAK_NCLASSES; c++) {
		struct hak_class_info *ci = &hak__classes[c];
		size_t size = class_size_of(c);
		ci->block_size = (uint32_t)size;
		ci->slab_units = (uint8_t)slab_units_for(size);
		/* Refill about 8 KB at a time, between 2 and 64 blocks; keep up to twice that. */
		size_t batch = 8192 / size;
		batch = batch < 2 ? 2 : batch > 64 ? 64 : batch;
		if (size > 32768)
			batch = 1;
		ci->batch = (uint16_t)batch;
		ci->cache_max = (uint16_t)(batch * 2 < 4 ? 4 : batch * 2);
		ci->div_shift = (uint8_t)__builtin_ctzll(size);
		ci->div_inv = inverse_odd(size >> ci->div_shift);
		ci->tc_off = (uint16_t)offsetof(struct hak_tls_caches, cache[c]);
#if HAK_TLS_FROM_TP
		ptrdiff_t tp = (char *)&hak__tcs.cache[c] - (char *)__builtin_thread_pointer();
		HAK_CHECK(tp == (int32_t)tp, "internal: static TLS %td bytes from the thread pointer", tp);
		ci->tls_off = (int32_t)tp;
#else
		ci->tls_off = ci->tc_off;
#endif
	}
	hak__first_big_class = hak__size_to_class_slow(HAK_BIG_BLOCK + 1);
	for (unsigned i = 0; i <= 1024 / 16; i++)
		hak__class_of_small[i] = (uint8_t)hak__size_to_class_slow(i * 16);
	for (unsigned n = 0; n <= HAK_FAST_MAX; n++)
		hak__tc_off_of_small[n] = hak__classes[hak__size_to_class(n)].tc_off;
}
