/* large.h: the limits of the cache of freed large mappings (large.c), in one struct with its
 * defaults, so that a trim policy's settings can set them (issue 10) without knowing the cache. */
#ifndef HAKMEM_LARGE_H
#define HAKMEM_LARGE_H

#include "hakmem_internal.h"

#define HAK_LARGE_SLOTS_MAX 256 /* the cache's array; limits.slots may be anything up to it */

struct hak_large_limits {
	unsigned slots;   /* mappings cached at most, 0 .. HAK_LARGE_SLOTS_MAX (0: no cache) */
	size_t max_bytes; /* their total size at most */
	size_t max_one;   /* a mapping bigger than this goes straight back to the OS */
};

/* 64 slots, 96 MB, 32 MB (hak__large_limits_default). Why 64 (was 16): a program whose threads end by freeing tens of
 * large blocks at once (mimalloc-bench's mstress frees about 36 per round) overflowed 16 slots
 * and mapped and faulted 170-340 mappings again per run; the byte limit, not the slot count,
 * is what bounds the memory the cache holds. bench/RESULTS.md, "Large-block churn". */
#define HAK_LARGE_LIMITS_DEFAULT {.slots = 64, .max_bytes = (size_t)96 << 20, .max_one = (size_t)32 << 20}
HAK_HIDDEN extern const struct hak_large_limits hak__large_limits_default;

/* Sets the limits (0, or EINVAL for slots > HAK_LARGE_SLOTS_MAX or max_one > max_bytes, which
 * leaves them unchanged); what the cache holds beyond the new limits goes back at once. */
HAK_HIDDEN int hak__large_set_limits(const struct hak_large_limits *limits);
HAK_HIDDEN void hak__large_get_limits(struct hak_large_limits *out);

#endif /* HAKMEM_LARGE_H */
