/* block.h: layer 0, the layout of a free block, stated once (include/hakmem_policy.h says the
 * same to plugins):
 *
 *     word 0   the link of whatever list holds the block (a chain, a cache, a remote queue, a
 *              policy's own list); NULL ends a chain
 *     word 1   the free mark, key ^ address, owned by the core: set on every block that is free,
 *              cleared when malloc hands the block out. A free that finds it is a double free.
 *
 * The key is random per process (block.c), so a program's data is not taken for it. Every site
 * that marks, tests or clears the mark goes through these functions. */
#ifndef HAK_BLOCK_H
#define HAK_BLOCK_H

#include "base.h"
#include "hakmem_policy.h"

HAK_HIDDEN extern uintptr_t hak__free_key;
HAK_HIDDEN void hak__block_key_init(void); /* once, before the first block is marked */

HAK_INLINE uintptr_t hak__block_mark(const void *b)
{
	return hak__free_key ^ (uintptr_t)b;
}

HAK_INLINE void hak__block_set_free(void *b)
{
	((uintptr_t *)b)[1] = hak__block_mark(b);
}

HAK_INLINE bool hak__block_is_free(const void *b)
{
	return ((const uintptr_t *)b)[1] == hak__block_mark(b);
}

/* The block leaves the allocator: a later free of it is not a double free. */
HAK_INLINE void hak__block_set_used(void *b)
{
	((uintptr_t *)b)[1] = 0;
}

HAK_INLINE void *hak__block_next(const void *b)
{
	return ((void *const *)b)[0];
}

HAK_INLINE void hak__block_set_next(void *b, void *next)
{
	((void **)b)[0] = next;
}

/* The chain that starts at head, its tail found and its blocks counted. */
HAK_INLINE struct hak_chain hak__chain_of(void *head)
{
	return hak_chain_of(head);
}

#endif
