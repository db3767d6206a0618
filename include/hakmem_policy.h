/* hakmem_policy.h: the plugin ABI. The only header a policy plugin includes.
 *
 * A plugin is a shared object exporting ONE descriptor, `hak_policy_descriptor`, of type
 * `struct hak_policy_desc`. The core checks magic, ABI major, struct size, signature and kind at
 * load time and refuses a plugin that fails any check (one stderr line naming file, symbol,
 * expected and found); the built-in default of that kind is used instead.
 *
 * Glossary (see core/hakmem_internal.h for the full one):
 *   SuperSlab  a 1 or 2 MB mapping aligned to its size, carved into slabs.
 *   slab       a run of 64 KB units of one SuperSlab holding blocks of one size class.
 *   owner      the token of the thread allowed to take blocks from a slab without atomics
 *              (Option G), HAK_OWNER_ANY for slabs every thread may cache (Option F),
 *              HAK_OWNER_NONE for an abandoned slab.
 *   chain      blocks linked through their first word, with head, tail and count.
 *
 * Versioning (SQLite/nginx style): every struct here only grows at its end. A field added in
 * minor version N is marked "since 1.N"; read it only when the other side's minor >= N.
 * An incompatible change bumps HAK_POLICY_ABI_MAJOR and the signature.
 */
#ifndef HAKMEM_POLICY_H
#define HAKMEM_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HAK_POLICY_MAGIC      UINT64_C(0x314C4F50484B4148) /* "HAKHPOL1" little-endian */
#define HAK_POLICY_ABI_MAJOR  1u
#define HAK_POLICY_ABI_MINOR  1u
#define HAK_POLICY_SYMBOL     "hak_policy_descriptor"

/* Binary-compatibility signature: what must match between core and plugin beyond the version
 * numbers (pointer size, byte order, the chain layout). Compared as a string at load time. */
#define HAK__STR2(x) #x
#define HAK__STR(x) HAK__STR2(x)
#define HAK_POLICY_SIGNATURE                                                    \
	"hakmem-abi-1/ptr" HAK__STR(__SIZEOF_POINTER__) "/" HAK__STR(__BYTE_ORDER__) "/chain-next-at-0"

enum hak_policy_kind {
	HAK_POLICY_TRIM = 1,      /* when empty SuperSlabs and free pages go back to the OS */
	HAK_POLICY_SUPERSLAB = 2, /* size of each new SuperSlab */
	HAK_POLICY_OWNERSHIP = 3, /* where a block goes when it is not this thread's to cache */
};

#define HAK_OWNER_NONE ((uintptr_t)0) /* abandoned: nobody allocates from it */
#define HAK_OWNER_ANY  ((uintptr_t)1) /* every thread may cache its blocks (Option F) */

typedef struct hak_slab hak_slab;     /* opaque: slab metadata, reached through hak_core_api */
typedef struct hak_thread hak_thread; /* opaque: the calling thread's core state */

/* A run of free blocks linked through their first word; tail->next is NULL. */
struct hak_chain {
	void *head;     /* first block, NULL when empty */
	void *tail;     /* last block */
	uint32_t count; /* number of blocks */
};

/* One `key = value` from the policy's INI section, with where it was written. */
struct hak_setting {
	const char *key;
	const char *value;
	int line; /* line in `file`, for error messages */
};

/* Valid only during init: a plugin copies what it keeps (the core frees the configuration
 * once every policy has started). */
struct hak_settings {
	const char *file; /* the INI file, or "(defaults)" */
	const struct hak_setting *items;
	size_t count;
};

/* A read-only snapshot of the slab facts a policy may need. */
struct hak_slab_info {
	unsigned cls;       /* size class */
	uint32_t capacity;  /* blocks the slab can hold */
	uint32_t free;      /* blocks in the slab's private free list or never carved */
	uint32_t used;      /* capacity - free: in caches, with the program, or in the remote queue */
	uintptr_t owner;    /* HAK_OWNER_* or a thread token */
	int remote_pending; /* nonzero when the remote queue is not empty */
};

/* Counters a policy may bump (the core keeps the rest itself). */
enum hak_counter {
	HAK_COUNT_ADOPTIONS = 0, /* abandoned slabs taken over */
	HAK_COUNT_REMOTE_DRAINED = 1,
	HAK_COUNT_CENTRAL_POPS = 2,
	HAK_COUNT_CENTRAL_PUSHES = 3,
};

/* The result of a core trim pass. */
struct hak_trim_result {
	unsigned superslabs_released;
	uint64_t bytes_purged;
};

/* ---- Services the core offers every plugin. Append-only. ---------------------------------- */
struct hak_core_api {
	uint32_t abi_major; /* HAK_POLICY_ABI_MAJOR of the core */
	uint32_t abi_minor; /* HAK_POLICY_ABI_MINOR of the core */
	size_t size;        /* sizeof(struct hak_core_api) in the core */
	/* since 1.0 */
	void (*log)(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* one line, "hakmem: " prefixed */
	uint64_t (*now_ns)(void);                                                /* CLOCK_MONOTONIC */

	unsigned (*class_count)(void);
	size_t (*class_block_size)(unsigned cls);
	unsigned (*class_batch)(unsigned cls); /* most blocks a refill should bring */

	uintptr_t (*thread_token)(hak_thread *t); /* owner token of a thread */
	void *(*thread_policy_state)(hak_thread *t, enum hak_policy_kind kind);

	/* Slabs. Functions marked (x) need exclusive access: the owner, or the policy's own lock. */
	/* new slab; NULL: no memory. Before mapping a SuperSlab it may retire parked thread
	 * states (their policy's thread_exit runs). */
	hak_slab *(*slab_acquire)(unsigned cls, uintptr_t owner);
	void (*slab_release)(hak_slab *s);                                        /* (x) every block free */
	hak_slab *(*slab_of)(const void *block);                                  /* NULL: not a small block */
	unsigned (*slab_take)(hak_slab *s, unsigned max, struct hak_chain *out);  /* (x) free list, then carve */
	void (*chain_return)(struct hak_chain chain,
			     void (*on_slab_free)(void *ctx, hak_slab *s), void *ctx); /* (x) to each block's slab */
	void (*slab_get_info)(const hak_slab *s, struct hak_slab_info *out);
	int (*slab_claim)(hak_slab *s, uintptr_t expected, uintptr_t owner); /* CAS the owner; 1 on success */
	void **(*slab_policy_links)(hak_slab *s); /* two words (next, prev) the owning policy may use */

	/* Remote queues (per slab, lock-free MPSC). */
	void (*remote_push)(hak_slab *s, void *block);
	unsigned (*remote_drain)(hak_slab *s); /* (x) into the slab's free list; returns blocks moved */

	/* Abandoned slabs (a thread left them). */
	void (*slab_abandon)(hak_slab *s);                         /* (x) owner becomes NONE, adoptable */
	hak_slab *(*slab_adopt)(unsigned cls, uintptr_t owner); /* NULL when none is waiting */

	/* The calling thread's cache. */
	void (*cache_fill)(hak_thread *t, unsigned cls, struct hak_chain chain);

	void (*count)(hak_thread *t, enum hak_counter which, uint64_t n);

	/* Trim services. */
	unsigned (*release_empty)(unsigned keep); /* unmap empty SuperSlabs beyond `keep` */
	/* madvise free units (aged_only: only those already free at the previous call) */
	uint64_t (*purge_free)(int aged_only);
	/* consolidate, release empties beyond keep; when purge != 0 also release the empties
	 * that stayed empty since the previous purging pass and purge (aged) free units */
	struct hak_trim_result (*trim_pass)(unsigned keep, int purge);
	unsigned (*empty_count)(void);                                   /* empty SuperSlabs kept now */
	unsigned (*live_superslabs)(void);
	/* Start a helper thread with every signal blocked; 0 or an errno value. */
	int (*spawn_helper)(void *(*fn)(void *), void *arg);
	/* Blocks this refill of t's class should bring: small for a thread's first refills of a
	 * class, doubling up to class_batch (short-lived threads do not hoard). */
	unsigned (*refill_count)(hak_thread *t, unsigned cls);
	/* end of 1.0 */
};

/* ---- Kind-specific slow-path tables. Append-only. -------------------------------------------- */

struct hak_trim_ops {
	/* since 1.0 */
	void (*superslab_empty)(void *state);  /* a SuperSlab just became empty (no core lock held) */
	void (*tick)(void *state);             /* the core passes by a slow path (cheap: rate-limit inside) */
	void (*fork_child)(void *state);       /* in the child after fork(): threads are gone */
};

struct hak_superslab_ops {
	/* since 1.0: log2 of the size of the next SuperSlab (20 = 1 MB, 21 = 2 MB) for class `cls`. */
	unsigned (*lg_size_for)(void *state, unsigned cls);
};

struct hak_ownership_ops {
	/* since 1.0 */
	/* Bytes the core keeps per thread for this policy: zeroed for a new state, or exactly as
	 * an exited thread left them when a new thread takes over its parked state (same token,
	 * same slabs). */
	size_t thread_state_size;
	int caches_any;           /* 1: a thread caches blocks of HAK_OWNER_ANY slabs it frees */
	/* Bring blocks of `cls` into t's cache with core->cache_fill; 0 or ENOMEM. */
	int (*refill)(void *state, hak_thread *t, void *tstate, unsigned cls);
	/* t's cache of `cls` overflowed (or is being flushed): the chain leaves the cache. */
	void (*flush)(void *state, hak_thread *t, void *tstate, unsigned cls, struct hak_chain chain);
	/* A block of a slab made by this policy was freed by a thread that may not cache it.
	 * t is NULL when the freeing thread has no cache (it is exiting). */
	void (*free_foreign)(void *state, hak_thread *t, hak_slab *s, void *block);
	/* t's state is retired; its caches were already flushed through `flush`. Its thread exited
	 * just now, or earlier when the state was parked: then any thread may run this, even from
	 * inside slab_acquire (take no lock here that refill holds while it calls slab_acquire). */
	void (*thread_exit)(void *state, hak_thread *t, void *tstate);
	/* Periodic consolidation called by trim passes: drain, adopt, give empty slabs back. */
	void (*consolidate)(void *state);
	/* In the child after fork(): reset locks; only the calling thread survives. */
	void (*fork_child)(void *state);
	/* Before fork(): take the policy's locks; after: release them (parent). */
	void (*fork_prepare)(void *state);
	void (*fork_parent)(void *state);
	/* since 1.1, may be NULL: called by trim passes from another thread, for each live thread
	 * t of this policy, while t is outside every slow path and cannot enter one (the core
	 * holds t's policy lock; `refill`, `flush` and `thread_exit` run under the same lock).
	 * Give back what t owns but no longer uses: e.g. drain the remote queues of t's slabs and
	 * release the slabs that turned out entirely free, so blocks other threads freed to an
	 * idle thread do not stay stranded. t's cache itself is not to be touched. */
	void (*reclaim)(void *state, hak_thread *t, void *tstate);
};

/* ---- The descriptor. ------------------------------------------------------------------------- */
struct hak_policy_desc {
	uint64_t magic;        /* HAK_POLICY_MAGIC */
	uint32_t abi_major;    /* HAK_POLICY_ABI_MAJOR the plugin was built with */
	uint32_t abi_minor;
	size_t size;           /* sizeof(struct hak_policy_desc) as the plugin saw it */
	const char *signature; /* HAK_POLICY_SIGNATURE */
	uint32_t kind;         /* enum hak_policy_kind */
	const char *name;      /* bare name, as written after `policy =` */
	const char *version;   /* the plugin's own version, "1.0.0" */
	const char *summary;   /* one line for `hakmem policies` */
	/* Validate `settings`, build the state. 0 on success, else an errno value and a message in
	 * err (no newline, no prefix). May allocate with malloc. */
	int (*init)(const struct hak_core_api *core, const struct hak_settings *settings, void **state,
		    char *err, size_t errlen);
	void (*fini)(void *state);
	/* Exactly one of these matches `kind`. */
	const struct hak_trim_ops *trim;
	const struct hak_superslab_ops *superslab;
	const struct hak_ownership_ops *ownership;
	/* end of 1.0 */
};

/* A plugin defines its descriptor with this, so the built-in copy compiled into the core gets a
 * distinct, hidden name while the .so exports the one the loader looks for. */
#ifdef HAK_BUILTIN
#define HAK_POLICY_EXPORT(ident) __attribute__((visibility("hidden"))) const struct hak_policy_desc ident
#else
#define HAK_POLICY_EXPORT(ident) \
	__attribute__((visibility("default"))) const struct hak_policy_desc hak_policy_descriptor
#endif

#define HAK_POLICY_DESC_INIT(kind_, name_, version_, summary_)                               \
	.magic = HAK_POLICY_MAGIC, .abi_major = HAK_POLICY_ABI_MAJOR, .abi_minor = HAK_POLICY_ABI_MINOR, \
	.size = sizeof(struct hak_policy_desc), .signature = HAK_POLICY_SIGNATURE, .kind = (kind_),  \
	.name = (name_), .version = (version_), .summary = (summary_)

/* ---- Helpers for a plugin's init (header-only: plugins link nothing of the core) ------------ */

/* Parses `it` as a decimal integer in [lo, hi] into *out. 0, or EINVAL (22) with a message in
 * err naming the key, what was found and what was expected. */
static inline int hak_setting_uint(const struct hak_setting *it, unsigned long lo, unsigned long hi,
				   unsigned long *out, char *err, size_t errlen)
{
	const char *p = it->value;
	unsigned long v = 0;
	int digits = 0, overflow = 0;
	for (; *p >= '0' && *p <= '9'; p++, digits++) {
		if (v > (~0UL - (unsigned long)(*p - '0')) / 10)
			overflow = 1;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (!digits || *p || overflow || v < lo || v > hi) {
		snprintf(err, errlen, "line %d: %s = '%s': expected an integer in [%lu, %lu]", it->line,
			 it->key, it->value, lo, hi);
		return 22; /* EINVAL */
	}
	*out = v;
	return 0;
}

/* A circular doubly linked ring of slabs through the two policy link words of each slab
 * (links[0] = next, links[1] = prev). *ring is any member, NULL when empty. For a policy's
 * own lists; the caller owns the slabs (or holds its lock). */
static inline void hak_ring_add(const struct hak_core_api *core, hak_slab **ring, hak_slab *s)
{
	void **l = core->slab_policy_links(s);
	if (!*ring) {
		l[0] = l[1] = s;
		*ring = s;
		return;
	}
	void **h = core->slab_policy_links(*ring);
	hak_slab *prev = (hak_slab *)h[1];
	l[0] = *ring;
	l[1] = prev;
	core->slab_policy_links(prev)[0] = s;
	h[1] = s;
}

static inline void hak_ring_remove(const struct hak_core_api *core, hak_slab **ring, hak_slab *s)
{
	void **l = core->slab_policy_links(s);
	if (l[0] == s) {
		*ring = NULL;
	} else {
		core->slab_policy_links((hak_slab *)l[1])[0] = l[0];
		core->slab_policy_links((hak_slab *)l[0])[1] = l[1];
		if (*ring == s)
			*ring = (hak_slab *)l[0];
	}
	l[0] = l[1] = NULL;
}

/* The ring's next member after s. */
static inline hak_slab *hak_ring_next(const struct hak_core_api *core, hak_slab *s)
{
	return (hak_slab *)core->slab_policy_links(s)[0];
}

/* The message for a key the plugin does not know. Returns EINVAL (22). */
static inline int hak_setting_unknown(const struct hak_setting *it, const char *known, char *err,
				      size_t errlen)
{
	snprintf(err, errlen, "line %d: unknown key '%s' (this policy takes: %s)", it->line, it->key, known);
	return 22;
}

#ifdef __cplusplus
}
#endif
#endif /* HAKMEM_POLICY_H */
