/* block.c: layer 0, the free mark's key (see block.h). */
#include "block.h"

#include <string.h>
#include <sys/auxv.h>

uintptr_t hak__free_key;

/* The kernel's AT_RANDOM bytes (no system call), mixed with an ASLR'd address. Odd, so no
 * block's mark is ever 0, the "in use" value. */
void hak__block_key_init(void)
{
	int here;
	uintptr_t key = (uintptr_t)&here * UINT64_C(0x9E3779B97F4A7C15);
	const unsigned char *rnd = (const unsigned char *)getauxval(AT_RANDOM);
	if (rnd) {
		uint64_t r;
		memcpy(&r, rnd + 8, sizeof r);
		key ^= r;
	}
	hak__free_key = key | 1;
}
