/* slab.h: layer 3, slabs (slab.c): carving a slab out of a run of units, taking blocks from it
 * and giving them back, the remote queues (lock-free MPSC, per slab), the abandoned lists of
 * slabs whose owner left, and the active-count bookkeeping of chains. The rules of who may
 * touch what are in include/hakmem_policy.h ("(x)": the owner, or the owning policy's lock). */
#ifndef HAK_SLAB_H
#define HAK_SLAB_H

#include "pool.h"

/* A new slab of `cls` for `owner`, in a SuperSlab of `model` (of 2^lg bytes when a new one is
 * needed; made by SuperSlab size policy `size_by`). NULL + ENOMEM. */
HAK_HIDDEN struct hak_slab *hak__slab_acquire(unsigned cls, uintptr_t owner, unsigned model, unsigned lg,
					      unsigned size_by);
HAK_HIDDEN void hak__slab_release(struct hak_slab *s); /* (x) every block free */
HAK_HIDDEN unsigned hak__slab_take(struct hak_slab *s, unsigned max, struct hak_chain *out);
HAK_HIDDEN void hak__chain_return(struct hak_chain chain, void (*on_slab_free)(void *, hak_slab *), void *ctx);
HAK_HIDDEN void hak__slab_info(const struct hak_slab *s, struct hak_slab_info *out);
/* The slab of a block hakmem handed out (its unit holds a slab), else NULL. */
HAK_HIDDEN struct hak_slab *hak__slab_of_block(const void *block);

HAK_HIDDEN void hak__remote_push(struct hak_slab *s, void *block);
HAK_HIDDEN unsigned hak__remote_drain(struct hak_slab *s);

HAK_HIDDEN void hak__slab_abandon(struct hak_slab *s);
HAK_HIDDEN struct hak_slab *hak__slab_adopt(unsigned cls, uintptr_t owner, unsigned model);
/* Drain every abandoned slab's remote queue; release those entirely free. Returns how many. */
HAK_HIDDEN unsigned hak__abandoned_collect(void);
/* A block was freed into an abandoned slab since the last collect (a hint, read unlocked). */
HAK_HIDDEN bool hak__abandoned_dirty(void);
HAK_HIDDEN void hak__abandoned_note_free(void);

/* Add sign to the active count of each block's SuperSlab, one atomic per run of blocks that
 * share a SuperSlab, and sign * block_size per block to bytes_by_size[lg - HAK_SS_LG_MIN]
 * (the caller's thread's count of bytes out of slab land, for mallinfo2). */
HAK_HIDDEN void hak__account_chain(struct hak_chain chain, int sign, uint32_t block_size, int64_t *bytes_by_size);

HAK_HIDDEN bool hak__slab_fork_prepare(void); /* fork.c: through hak__fork_take (lock.h) */
HAK_HIDDEN void hak__slab_fork_child(void);

#endif
