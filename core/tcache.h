/* tcache.h: layer 0, a thread's cache of one size class: the stack both fast paths work on,
 * with its one room rule and its one pop and one push (alloc_fast.h and the slow paths use
 * these and nothing else).
 *
 * The room rule: `room` is how many more blocks the stack may take (max - count). The free fast
 * path decrements it before it knows there was any, so a full cache is left with room
 * UINT32_MAX on its way to the slow path; any room above max therefore reads as "full"
 * (hak__tc_full), and the slow path that sees it recounts. A pop gives one back, always. After
 * a fork from a signal handler that interrupted a fast path the room may be one off: the slow
 * paths count the stack rather than trust it wherever it matters. */
#ifndef HAK_TCACHE_H
#define HAK_TCACHE_H

#include "block.h"

/* While a trace is recorded (trace.c) every cache's `accept` carries HAK_ACCEPT_TRACED, a bit
 * no slab owner has, so every free fails the fast path's owner test; the slow path compares the
 * real owner (hak__accept_real). hak__accept_mark is that bit while recording, else 0: what a
 * new state's and a policy's accept get (thread.c, services.c). */
#define HAK_ACCEPT_TRACED ((uintptr_t)1 << 63)
HAK_HIDDEN extern uintptr_t hak__accept_mark;

HAK_INLINE uintptr_t hak__accept_real(uintptr_t accept)
{
	return accept & ~HAK_ACCEPT_TRACED;
}

struct hak_tcache {
	void *head;       /* top of the stack of free blocks, linked through word 0 */
	uintptr_t accept; /* the slab owner whose blocks a free may push here (token or ANY) */
	uint32_t room;    /* blocks the stack may still take: max - count (see above) */
	uint16_t max;     /* blocks it holds at most: a free that finds no room flushes half */
	uint16_t want;    /* blocks the next refill brings: slow start up to the class batch */
	uint64_t frees;   /* frees that pushed here: the fast path's only counter */
};
_Static_assert(sizeof(struct hak_tcache) == 32, "a cache is half a cache line");

HAK_INLINE bool hak__tc_full(const struct hak_tcache *tc)
{
	return tc->room == 0 || tc->room > tc->max;
}

/* room-- and the test that there was room, in one instruction and a branch. Compilers keep the
 * counter in a register for the test otherwise (5 steps). */
HAK_INLINE bool hak__room_take(uint32_t *room)
{
#if defined(__x86_64__) && defined(__GNUC__)
	__asm__ goto("subl $1, %0\n\tjc %l[full]" : "+m"(*room) : : "cc" : full);
	return true;
full:
	return false;
#else
	return !__builtin_sub_overflow(*room, 1, room);
#endif
}

/* Pop a block, NULL when the cache is empty. The block leaves the allocator: its free mark is
 * cleared. Budget: load head, load next, store head, add to room, store word 1. */
HAK_INLINE void *hak__tc_pop(struct hak_tcache *tc)
{
	void *b = tc->head;
	if (likely(b != NULL)) {
		tc->head = hak__block_next(b);
		tc->room++;
		hak__block_set_used(b);
	}
	return b;
}

/* Push a block the caller already took room for (hak__room_take, or a slow path that made
 * room), with its free mark already computed (the fast path tested it). Budget: link, mark,
 * head, counter. */
HAK_INLINE void hak__tc_push_marked(struct hak_tcache *tc, void *b, uintptr_t mark)
{
	hak__block_set_next(b, tc->head);
	((uintptr_t *)b)[1] = mark;
	tc->head = b;
	tc->frees++;
}

HAK_INLINE void hak__tc_push(struct hak_tcache *tc, void *b)
{
	hak__tc_push_marked(tc, b, hak__block_mark(b));
}

#endif
