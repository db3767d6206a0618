/* policy.h: layer 4, the policies in force (policy.c). One generic record per policy that was
 * ever started or is being started (struct hak_policy, the ABI's opaque hak_policy handle),
 * HAK_POLICY_SLOTS per kind; the current one of each kind; the counters plugins declare by
 * name. Every ownership policy that ever made a SuperSlab stays callable for that memory
 * (SuperSlabs record its index). Calls INTO policies are in policy_call.h only. */
#ifndef HAK_POLICY_INTERNAL_H
#define HAK_POLICY_INTERNAL_H

#include "base.h"
#include "hakmem_policy.h"
#include "kinds.h"

struct hak_policy {
	const struct hak_policy_desc *desc; /* NULL: reserved, not filled yet */
	const void *ops;                    /* desc->ops */
	void *state;                        /* what init returned */
	void *handle;                       /* dlopen handle, never closed; NULL for a built-in */
	uint32_t kind;                      /* enum hak_policy_kind */
	uint8_t index;                      /* in its kind's slots: what SuperSlabs record */
	_Atomic uint8_t xstarted;           /* start ran: its state is never freed */
	uint8_t stopped;                    /* stop ran */
};

struct hak_kind_slots {
	struct hak_policy slot[HAK_POLICY_SLOTS];
	_Atomic unsigned xcount;             /* records filled so far: readers see only these */
	unsigned reserved;                   /* records handed out (start-up's thread only) */
	struct hak_policy *_Atomic xcurrent; /* the active one */
};
HAK_HIDDEN extern struct hak_kind_slots hak__policies[HAK_KIND_COUNT];

HAK_INLINE struct hak_policy *hak__policy_current(uint32_t kind)
{
	return atomic_load_explicit(&hak__policies[kind - 1].xcurrent, memory_order_acquire);
}

HAK_INLINE unsigned hak__policy_count(uint32_t kind)
{
	return atomic_load_explicit(&hak__policies[kind - 1].xcount, memory_order_acquire);
}

HAK_INLINE struct hak_policy *hak__policy_at(uint32_t kind, unsigned index)
{
	return &hak__policies[kind - 1].slot[index];
}

/* A new record of `kind` for a policy about to be initialised (the handle its init gets);
 * NULL when the kind's slots are used up. Start-up only (one thread, one at a time). Other
 * threads see it once hak__policy_fill published it. */
HAK_HIDDEN struct hak_policy *hak__policy_reserve(uint32_t kind);
/* Gives back a record whose policy never started (init failed, or it was not installed); its
 * counters go with it. */
HAK_HIDDEN void hak__policy_unreserve(struct hak_policy *p);
HAK_HIDDEN void hak__policy_fill(struct hak_policy *p, const struct hak_policy_desc *d, void *state, void *handle);
/* Makes p the current policy of its kind (the caller starts it and stops the previous one). */
HAK_HIDDEN struct hak_policy *hak__policy_make_current(struct hak_policy *p);

/* ---- Named counters -------------------------------------------------------------------------- */
#define HAK_COUNTER_VALUES 1024 /* values of every policy's counters together */
#define HAK_COUNTER_NAMES 64    /* counter_register calls */
#define HAK_COUNTER_NAME_MAX 31

struct hak_counter_info {
	const struct hak_policy *owner;
	char name[HAK_COUNTER_NAME_MAX + 1];
	uint8_t type;         /* enum hak_counter_type */
	int8_t thread_slot;   /* a scalar COUNT kept per thread: its index there; -1 otherwise */
	uint16_t first, n;    /* values first..first+n-1 */
};
HAK_HIDDEN int hak__counter_register(struct hak_policy *owner, const char *name, unsigned type, unsigned n);
/* The value index `id` adds to in a thread state (0..15), or -1 for the global value. */
HAK_HIDDEN int hak__counter_thread_slot(int id);
HAK_HIDDEN void hak__counter_add_global(int id, uint64_t n);
HAK_HIDDEN void hak__counter_set(int id, int64_t value);
/* Walks the registered counters of `owner`: fn(ctx, info, values) with the global values of
 * that counter (thread slots are the caller's to add: hak__threads_sum). */
HAK_HIDDEN void hak__counters_each(const struct hak_policy *owner,
				   void (*fn)(void *ctx, const struct hak_counter_info *c, const int64_t *values),
				   void *ctx);

#endif
