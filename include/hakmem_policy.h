/* hakmem_policy.h: the plugin ABI. The only header a policy plugin includes.
 *
 * A plugin is a shared object exporting ONE descriptor, `hak_policy_descriptor`, of type
 * `struct hak_policy_desc`. The core checks the ELF file, then magic, ABI major, struct sizes,
 * signature, kind, name, the minimum core minor the plugin needs and the kind's mandatory ops at
 * load time, and refuses a plugin that fails any check with one stderr line naming the file, the
 * symbol, what was expected and what was found; the built-in default of that kind runs instead.
 * Nothing is checked per call.
 *
 * Glossary
 *   SuperSlab  a 1 or 2 MB mapping aligned to its size, carved into slabs. It records the
 *              SuperSlab policy and the ownership policy that made it, for its whole life.
 *   unit       a 64 KB piece of a SuperSlab: the grain of slabs, of purging and of trim facts.
 *   slab       a run of 1 to 8 units of one SuperSlab holding blocks of one size class.
 *   owner      the token of the thread allowed to take blocks from a slab without atomics
 *              (Option G), HAK_OWNER_ANY for slabs every thread may cache (Option F),
 *              HAK_OWNER_NONE for an abandoned slab.
 *   accept     per thread and size class, the owner whose blocks the thread caches when it
 *              frees them (its token, or HAK_OWNER_ANY); any other block is "foreign".
 *   chain      free blocks linked through word 0, with head, tail and count; tail's word 0 is NULL.
 *   active     blocks out of slab land (with the program or in a thread's cache): the core
 *              keeps the count exact (per thread state, summed on demand); a policy never
 *              touches it. A SuperSlab is empty by its units, not by a count.
 *   empty      a SuperSlab none of whose units holds a slab. The trim policy decides when it
 *              goes back to the OS; the core never unmaps one on its own.
 *   dirty      a free unit touched since it was last purged (its pages cost RSS).
 *
 * The block layout (what a policy may touch)
 *   A free block is at least 16 bytes. Word 0 is the link of whatever list holds it: a chain,
 *   a thread's cache, a remote queue, a policy's own list. Word 1 belongs to the core: it holds
 *   the free mark that catches double frees. A policy reads and writes word 0 of the free blocks
 *   it holds, and nothing else of any block: not word 1, not the bytes after it.
 *
 * Versioning (SQLite/nginx style)
 *   Every struct here starts with, or carries, its own size and only grows at its end; a field
 *   added in minor N is marked "since 2.N". The core reads a plugin's field only when the
 *   plugin's struct is big enough (so a plugin built against an older header keeps working).
 *   A plugin tests a service appended after the minor it requires with HAK_CORE_HAS(core, name)
 *   before calling it, and declares in `min_core_minor` the oldest core whose services it calls
 *   unconditionally: an older core refuses it at load time instead of letting it read past the
 *   table. An incompatible change bumps HAK_POLICY_ABI_MAJOR, which is part of the signature.
 *   (2.0 replaced 1.x: a policy handle for slab_acquire/adopt, a size on every ops table, trim
 *   primitives, named counters, lifecycle and fork ops for every kind. 2.1 appended the
 *   services helper_sleep, helper_wake and remote_push_chain, the descriptor's
 *   fork_try_prepare and the ownership op free_foreign_chain.)
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
#define HAK_POLICY_ABI_MAJOR  2u
#define HAK_POLICY_ABI_MINOR  1u
#define HAK_POLICY_SYMBOL     "hak_policy_descriptor"

/* Binary-compatibility signature: what must match between core and plugin beyond the version
 * numbers (ABI major, pointer size, byte order, the block layout). Compared as a string. */
#define HAK__STR2(x) #x
#define HAK__STR(x) HAK__STR2(x)
#define HAK_POLICY_SIGNATURE                                                                    \
	"hakmem-abi-" HAK__STR(HAK_POLICY_ABI_MAJOR_DIGITS) "/ptr" HAK__STR(__SIZEOF_POINTER__) "/" \
	HAK__STR(__BYTE_ORDER__) "/link-word0-mark-word1"
#define HAK_POLICY_ABI_MAJOR_DIGITS 2 /* == HAK_POLICY_ABI_MAJOR, spelled for the preprocessor */

/* Is the struct `obj` (whose first or `size` member says how big it is) big enough to hold
 * `member`? For the core reading a plugin's table and a plugin reading the core's. */
#define HAK_STRUCT_HAS(obj, member) \
	((obj)->size >= offsetof(__typeof__(*(obj)), member) + sizeof((obj)->member))
/* May the plugin call core service `name`? (Appended services are NULL-free once present.) */
#define HAK_CORE_HAS(core, name) (HAK_STRUCT_HAS(core, name) && (core)->name != NULL)

enum hak_policy_kind {
	HAK_POLICY_TRIM = 1,      /* when empty SuperSlabs, free pages and cached large mappings go back */
	HAK_POLICY_SUPERSLAB = 2, /* size of each new SuperSlab */
	HAK_POLICY_OWNERSHIP = 3, /* where a block goes when it is not this thread's to cache */
};

#define HAK_OWNER_NONE ((uintptr_t)0) /* abandoned: nobody allocates from it */
#define HAK_OWNER_ANY  ((uintptr_t)1) /* every thread may cache its blocks (Option F) */

typedef struct hak_slab hak_slab;     /* opaque: slab metadata, reached through hak_core_api */
typedef struct hak_thread hak_thread; /* opaque: a thread's core state */
typedef struct hak_policy hak_policy; /* opaque: the core's record of one policy in force */

/* A run of free blocks linked through word 0; tail's word 0 is NULL. */
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

/* Valid only during init: a plugin copies what it keeps. */
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

/* ---- Facts for trim decisions (read-only snapshots; each starts with its size) -------------- */

struct hak_heap_facts {
	size_t size;                /* sizeof, filled by the caller (the core fills what fits) */
	uint64_t now_ns;            /* the clock the ages below are measured on (now_ns) */
	uint64_t superslabs_live;   /* mapped SuperSlabs */
	uint64_t superslabs_empty;  /* of which empty */
	uint64_t oldest_empty_ns;   /* when the longest-empty one emptied; 0 when none */
	uint64_t mapped_bytes;      /* bytes of all mapped SuperSlabs */
	uint64_t free_unit_bytes;   /* bytes of free units (empty SuperSlabs included) */
	uint64_t dirty_bytes;       /* of which dirty: resident until purged */
	uint64_t large_live;        /* large blocks with the program */
	uint64_t large_cached;      /* cached large mappings */
	uint64_t large_cached_bytes;
	uint64_t oldest_large_ns;   /* when the oldest cached mapping was cached; 0 when none */
	uint64_t parked_states;     /* exited threads' states waiting for a successor */
	uint64_t mappings;          /* mappings hakmem holds now */
	uint64_t map_budget;        /* most it may hold */
};

/* One free run of units, for dirty_each: `bytes` of pages free since `free_since_ns`. */
struct hak_free_run {
	const void *base;       /* start of the run */
	uint64_t bytes;
	uint64_t free_since_ns; /* when its last unit became free */
	int dirty;              /* touched since its last purge */
	int superslab_empty;    /* the run belongs to an empty SuperSlab */
	const void *superslab;  /* the SuperSlab it belongs to (its base): runs come SuperSlab by
				 * SuperSlab, in address order */
};

/* Limits of the core's cache of freed large mappings (set by the trim policy in start; the
 * defaults below until then). HAK_LARGE_CACHE_SETTINGS declares the keys for them. */
struct hak_large_limits {
	size_t size;            /* sizeof */
	uint64_t max_bytes;     /* bytes cached at most (0: no cache); default 96 MB */
	uint64_t max_one;       /* a freed mapping above this is unmapped at once; default 32 MB */
	unsigned long slots;    /* mappings cached at most (the core caps it at 256); default 64 */
};
/* 64 slots: a program whose threads end by freeing tens of large blocks at once (mstress frees
 * about 36 per round) overflowed 16 and mapped and faulted them all again; the byte limit, not
 * the slot count, bounds the memory the cache holds (bench/RESULTS.md, "Large-block churn"). */
#define HAK_LARGE_LIMITS_DEFAULT {sizeof(struct hak_large_limits), (uint64_t)96 << 20, (uint64_t)32 << 20, 64}

/* The result of a composite trim pass. */
struct hak_trim_result {
	unsigned superslabs_released;
	uint64_t bytes_purged;
	unsigned large_released; /* cached large mappings unmapped */
};

/* What the composite trim_pass does beyond releasing empties down to `keep` (flags, or-ed). */
enum {
	HAK_TRIM_PURGE = 1,      /* purge dirty units free since the previous purging pass, and unmap
				  * the empties (reserve included) empty since then */
	HAK_TRIM_LARGE_AGE = 2,  /* cached large mappings idle since the previous pass go back */
	HAK_TRIM_LARGE_ALL = 4,  /* every cached large mapping goes back */
};

/* Counters a plugin declares by name (counter_register). Shown in the stats table and in the
 * JSON under policies.<kind>.counters.<name> (an array when n > 1, e.g. one per size class). */
enum hak_counter_type {
	HAK_COUNTER_COUNT = 0, /* events: counter_add adds, per thread, summed on demand */
	HAK_COUNTER_GAUGE = 1, /* a level the policy sets with counter_set */
};

/* ---- Services the core offers every plugin. Append-only. ------------------------------------
 *
 * Context rules, unless a service says otherwise: callable from any op of any kind and from a
 * policy's helper thread; never from a signal handler; none allocates with the program's
 * malloc; none calls back into the calling policy except where stated.
 * (x) marks a service that needs exclusive access to the slab: its owner thread, or, for slabs
 * of HAK_OWNER_ANY or NONE, the owning policy's own lock.
 */
struct hak_core_api {
	uint32_t abi_major; /* HAK_POLICY_ABI_MAJOR of the core */
	uint32_t abi_minor; /* HAK_POLICY_ABI_MINOR of the core */
	size_t size;        /* sizeof(struct hak_core_api) in the core */
	/* ---- since 2.0: general -------------------------------------------------------------- */
	void (*log)(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* one "hakmem: " line */
	uint64_t (*now_ns)(void);                                                /* CLOCK_MONOTONIC */
	unsigned (*class_count)(void);
	size_t (*class_block_size)(unsigned cls); /* 0 for a class that does not exist */
	unsigned (*class_batch)(unsigned cls);    /* most blocks a refill should bring */
	/* Declare `n` counters named `name` (letters, digits, '_'; n = 1 for a scalar, or one per
	 * size class, ...). From init or start only. Returns the id of the first (ids i..i+n-1), or
	 * -1 when the core's table is full (the policy runs on, uncounted: counter_add and
	 * counter_set ignore -1). */
	int (*counter_register)(hak_policy *self, const char *name, enum hak_counter_type type, unsigned n);
	void (*counter_add)(hak_thread *t, int id, uint64_t n); /* COUNT; t may be NULL */
	void (*counter_set)(int id, int64_t value);             /* GAUGE */
	/* Start a helper thread running fn(arg) with every signal blocked; 0 or an errno value.
	 * A helper sleeps only in helper_sleep (since 2.1), which tells it when it is the last
	 * thread left: it returns from fn then, and the process ends normally (see the trim kind's
	 * notes); after fork() the helper is gone in the child (fork_child op). */
	int (*spawn_helper)(void *(*fn)(void *), void *arg);

	/* ---- since 2.0: threads and caches (ownership policies) -------------------------------- */
	uintptr_t (*thread_token)(hak_thread *t); /* owner token of a thread */
	/* Blocks this refill of t's class should bring: a few for a thread's first refills of a
	 * class, doubling up to class_batch (short-lived threads do not hoard). */
	unsigned (*refill_count)(hak_thread *t, unsigned cls);
	/* The chain enters t's cache of `cls` (refill only, t the calling thread). */
	void (*cache_fill)(hak_thread *t, unsigned cls, struct hak_chain chain);
	/* Which slab owner t caches freed blocks of, for class cls (default: HAK_OWNER_ANY when the
	 * policy's caches_any is 1, else t's token). Refill, flush or thread_exit of t, or
	 * free_foreign when t is the calling thread's own state (its live state, not the shared
	 * one: the core ignores it there). */
	void (*cache_accept)(hak_thread *t, unsigned cls, uintptr_t owner);
	/* Blocks freed into live threads' caches per class since the start (the fast path's
	 * counts, summed over threads, each read while its thread may be counting: a snapshot):
	 * out[cls] for cls < n. Slow (takes the thread registry lock): for a periodic evaluation,
	 * not per call. It may be called from refill and flush (under t's policy lock): the
	 * registry lock's holders only try policy locks, never wait for one. */
	void (*class_local_frees)(uint64_t *out, unsigned n);

	/* ---- since 2.0: slabs --------------------------------------------------------------------
	 * A new slab of `cls` for `owner`, in a SuperSlab made by the policy `self` (the handle its
	 * init received): foreign frees of its blocks reach that policy's free_foreign, whichever
	 * thread calls. NULL: no memory (or the mapping budget is spent). May retire parked thread
	 * states first (their policy's thread_exit runs, on this thread) and may run the
	 * SuperSlab size policy's lg_size_for. */
	hak_slab *(*slab_acquire)(hak_policy *self, unsigned cls, uintptr_t owner);
	/* An abandoned slab of `cls`, made by `self`, now owned by `owner`; NULL when none waits. */
	hak_slab *(*slab_adopt)(hak_policy *self, unsigned cls, uintptr_t owner);
	void (*slab_release)(hak_slab *s); /* (x) every block free and back in the slab: units free */
	void (*slab_abandon)(hak_slab *s); /* (x) owner becomes NONE; adoptable, drained by trim passes */
	unsigned (*slab_take)(hak_slab *s, unsigned max, struct hak_chain *out); /* (x) free list, then carve */
	/* (x) each block back to its own slab; on_slab_free(ctx, s) for each slab that became
	 * entirely free (the policy decides whether to release it). */
	void (*chain_return)(struct hak_chain chain, void (*on_slab_free)(void *ctx, hak_slab *s), void *ctx);
	/* cls, capacity and owner are exact from any thread; free, used and remote_pending are exact
	 * only with exclusive access (x), a snapshot otherwise. */
	void (*slab_get_info)(const hak_slab *s, struct hak_slab_info *out);
	void **(*slab_policy_links)(hak_slab *s); /* two words (next, prev) the owning policy may use */
	hak_slab *(*slab_of)(const void *block);  /* the slab of a block hakmem handed out, else NULL */
	/* Remote queues: per slab, lock-free MPSC. push: any thread; drain: (x), into the free list. */
	void (*remote_push)(hak_slab *s, void *block);
	unsigned (*remote_drain)(hak_slab *s); /* returns blocks moved */

	/* ---- since 2.0: trim primitives ----------------------------------------------------------
	 * Each does one thing and returns how much it did. Ages are measured with now_ns. `floor`
	 * is a floor: the primitive never leaves fewer than that many empty SuperSlabs mapped. */
	unsigned (*reap_parked)(void);       /* retire exited threads' parked states (slabs settle) */
	void (*consolidate)(void);           /* every ownership policy's consolidate op */
	unsigned (*collect_abandoned)(void); /* drain abandoned slabs, release those entirely free */
	unsigned (*reclaim_threads)(void);   /* the ownership op reclaim, for each idle live thread */
	/* Ask every live thread to flush its caches at its next slow path (pressure). */
	void (*request_cache_flush)(void);
	/* Unmap empty SuperSlabs, longest-empty first, that have been empty for at least
	 * min_empty_ns, at most `max` of them, never leaving fewer than `floor` empty. */
	unsigned (*release_empty)(unsigned floor, uint64_t min_empty_ns, unsigned max);
	/* madvise(MADV_DONTNEED) dirty free units free for at least min_free_ns, longest-free first,
	 * until max_bytes are purged. Returns bytes purged. */
	uint64_t (*purge)(uint64_t min_free_ns, uint64_t max_bytes);
	/* Unmap cached large mappings idle for at least min_idle_ns, oldest first, until at most
	 * keep_bytes stay cached. Returns mappings unmapped. */
	unsigned (*large_release)(uint64_t min_idle_ns, uint64_t keep_bytes);
	void (*large_limits)(const struct hak_large_limits *limits); /* the large cache's limits */
	/* Exited threads' states may wait, slabs and all, for a successor thread: at most
	 * max_states of them, each holding at most max_units units. 0, 0 (the default): never. A
	 * policy that enables parking must run reap_parked now and then (its passes). */
	void (*set_parking)(unsigned max_states, unsigned max_units);
	unsigned (*empty_count)(void);      /* empty SuperSlabs mapped now (a cheap hint) */
	unsigned (*live_superslabs)(void);  /* SuperSlabs mapped now (a cheap hint) */
	/* Facts. heap_facts fills what fits in out->size. free_runs_each calls fn for every free
	 * run of units (fn runs under the pool lock: it must not call the core; keep it short). */
	void (*heap_facts)(struct hak_heap_facts *out);
	void (*free_runs_each)(void (*fn)(void *ctx, const struct hak_free_run *run), void *ctx);
	uint64_t (*process_rss)(void); /* resident bytes of the process (reads /proc; not hot) */
	/* The composite pass today's policies are built on: reap_parked, consolidate,
	 * collect_abandoned, reclaim_threads, release_empty(keep, 0, all), then the `flags` steps.
	 * A policy may use it or compose the primitives itself. */
	struct hak_trim_result (*trim_pass)(unsigned keep, unsigned flags);
	/* end of 2.0 */
	/* ---- since 2.1 ---------------------------------------------------------------------------
	 * The helper's sleep (spawn_helper's thread only): timeout_ns, whatever helper_wake does
	 * meanwhile (a period runs its length: the allocator wakes the helper at every tick while
	 * it is busy); or, with UINT64_MAX, until helper_wake is called (a call since the previous
	 * return counts, so no wake-up is lost between a policy's last look and the wait). Returns 0, or 1 when the helper
	 * must return from its function now: it is the process's last thread (the main thread
	 * called pthread_exit() and every other thread ended; POSIX ends the process then, with
	 * status 0, and it does when the helper returns). */
	int (*helper_sleep)(uint64_t timeout_ns);
	/* The allocator has work for the helper: wake it from helper_sleep. One atomic add, plus a
	 * system call only when the helper waits with no time limit. Any thread, any op. */
	void (*helper_wake)(void);
	/* A chain of free blocks of s (as free_foreign_chain receives it) onto s's remote queue with
	 * one atomic operation: remote_push for each block, at the cost of one. Any thread. */
	void (*remote_push_chain)(hak_slab *s, struct hak_chain chain);
	/* end of 2.1 */
};

/* ---- Kind-specific slow-path tables. Each starts with its size; append-only. ---------------- */

/* Trim: decides when empty SuperSlabs, free pages and cached large mappings go back to the OS,
 * whether exited threads' states wait for successors, and what to do when memory runs out.
 * The core never trims on its own: without calls from the trim policy nothing is released
 * (malloc_trim() and hak_trim() run the composite trim_pass with every flag).
 * A policy that runs passes on a thread of its own starts it with spawn_helper (from start or
 * from an op, never from init) and makes it sleep in helper_sleep until tick or superslab_empty
 * says there is work (helper_wake); when helper_sleep says the helper is the process's last
 * thread, the helper returns and the process ends normally. (A helper that sleeps otherwise,
 * with nanosleep, keeps a process whose main thread called pthread_exit() alive for ever.)
 */
struct hak_trim_ops {
	size_t size; /* sizeof(struct hak_trim_ops) */
	/* since 2.0, every op optional (NULL: nothing to do) */
	/* One or more SuperSlabs became empty since the last call (coalesced: one call for many).
	 * Runs on the thread whose free or exit emptied them, right after its slow path, outside
	 * every core lock; may call any trim primitive. */
	void (*superslab_empty)(void *state);
	/* The allocator is busy or something waits for a pass: every 256th slow path of each
	 * thread, at each thread exit, after large frees that cached a mapping (at most one per
	 * pass), and after passes that left young cached mappings. Cheap: rate-limit inside.
	 * Same context as superslab_empty. */
	void (*tick)(void *state);
	/* An allocation of `bytes` found no memory (mmap failed or the mapping budget is spent).
	 * Give back what may help (the cached large mappings, empty SuperSlabs...) and return
	 * nonzero to make the core retry once; 0: the allocation fails with ENOMEM. Runs on the
	 * allocating thread, inside its slow path (no trim op may re-enter). */
	int (*out_of_memory)(void *state, size_t bytes);
};

/* SuperSlab size: called (under no core lock) each time a SuperSlab must be mapped, and for the
 * stats (cls 0). Must return 20 (1 MB) or 21 (2 MB); anything else is logged once and 21 used. */
struct hak_superslab_ops {
	size_t size; /* sizeof(struct hak_superslab_ops) */
	/* since 2.0 */
	unsigned (*lg_size_for)(void *state, unsigned cls);
};

/* Ownership: where freed blocks go and where refills come from. Every op below runs on a slow
 * path of the core with the thread's policy lock held where said; none may call malloc, free or
 * anything that may (stdio, pthread_create...). An op's `t` is never NULL: it is the calling
 * thread's state, or the core's shared state for threads past their exit (it has caches and a
 * token like any other; its policy state is never retired).
 *
 * Pairing rule: the owner a policy passes to slab_acquire/slab_adopt must be what its threads
 * accept for that class (caches_any / cache_accept), or every free of those blocks is foreign. */
struct hak_ownership_ops {
	size_t size; /* sizeof(struct hak_ownership_ops) */
	/* since 2.0 */
	/* Bytes the core keeps per thread for this policy (tstate), at most 4096: zeroed for a new
	 * state, or exactly as an exited thread left them when a new thread takes over its parked
	 * state (same token, same slabs). */
	size_t thread_state_size;
	int caches_any; /* 1: threads accept HAK_OWNER_ANY by default, 0: their own token */
	/* t's cache of `cls` is empty: bring blocks with cache_fill; 0 or ENOMEM (12). Calling
	 * thread, t's policy lock held. Mandatory. */
	int (*refill)(void *state, hak_thread *t, void *tstate, unsigned cls);
	/* The chain left t's cache of `cls` (overflow, or the thread's caches being flushed: exit,
	 * fork, malloc_trim, request_cache_flush; or, for classes above 16 KB, the caches of the
	 * other such classes after a slab of one of them took pages not resident yet, so that
	 * slabs those cached blocks alone kept can be released and their pages serve the next
	 * slab). It may hold blocks of any slab whose owner t accepted at the time. Calling
	 * thread, outside refill, t's policy lock held. Mandatory. */
	void (*flush)(void *state, hak_thread *t, void *tstate, unsigned cls, struct hak_chain chain);
	/* A block of a slab made by this policy was freed by a thread that does not accept its
	 * owner (another thread's slab, an abandoned slab, or any block freed through the shared
	 * state). The core already took it off the active count: it is free from now on. Any
	 * thread, no core lock held, t's policy lock NOT held. t may also be a state with no cache
	 * and no policy state (tstate NULL, a token that owns nothing): a free from a thread that
	 * has no state of its own (before its first allocation, or after its exit hook ran) makes
	 * none. Mandatory. */
	void (*free_foreign)(void *state, hak_thread *t, hak_slab *s, void *block);
	/* t's state is retired; its caches were already flushed through `flush`. Its thread exited
	 * just now, or earlier when the state was parked: then any thread may run this, even from
	 * inside slab_acquire (take no lock here that refill holds while it calls slab_acquire).
	 * t's policy lock held. Mandatory. */
	void (*thread_exit)(void *state, hak_thread *t, void *tstate);
	/* Optional. A trim pass asks every ownership policy to give back what it holds centrally
	 * (queues, partial slabs): any thread, no core lock held. */
	void (*consolidate)(void *state);
	/* Optional. Called by trim passes from another thread, for each live thread t of this
	 * policy, before a SuperSlab is mapped (at most every 10 ms) and before a slab is acquired
	 * (slab_acquire: at most every 0.5 ms), both from the refill of the thread that maps or
	 * acquires, for each other live thread, while t is outside every slow path and cannot
	 * enter one (the core holds t's policy lock). Give back what t owns but no longer uses
	 * (e.g. drain the remote queues of t's slabs and release those entirely free; abandon the
	 * slabs of a thread that stopped allocating, so the threads that allocate adopt them). t's
	 * cache itself is not to be touched; it may still hold blocks of slabs abandoned here, so
	 * t's flush must then hand those to their slabs' remote queues (t no longer owns them). */
	void (*reclaim)(void *state, hak_thread *t, void *tstate);
	/* since 2.1 */
	/* Optional. free_foreign for every block of `chain`, all of one slab s, in one call (the
	 * blocks are marked free and already off the active count). With it the core gathers each
	 * thread's foreign frees of one slab, up to class_batch of them, and hands them over when
	 * that thread frees into another slab or its caches are flushed (overflow excepted: exit,
	 * fork, malloc_trim, request_cache_flush); until then the blocks wait, like those in a
	 * thread's cache. Without it free_foreign runs at every foreign free. A free from a
	 * thread with no state of its own (before its first allocation, or after its exit hook
	 * ran: see free_foreign) is not gathered: free_foreign runs for it. Any thread, no core
	 * lock held, t's policy lock NOT held. A core that calls it has remote_push_chain. */
	void (*free_foreign_chain)(void *state, hak_thread *t, hak_slab *s, struct hak_chain chain);
};

/* ---- Settings declared once ------------------------------------------------------------------
 * A plugin may describe its keys in a table: hak_settings_parse validates a section against it
 * (one message naming the line, the key, what was expected and what was found), and the
 * descriptor carries it so `hakmem check` and `hakmem policies --keys` document the keys. */
enum hak_setting_type {
	HAK_SETTING_UINT = 0,  /* decimal integer in [lo, hi] (unsigned long) */
	HAK_SETTING_INT = 1,   /* decimal integer, optional '-', in [lo, hi] (long) */
	HAK_SETTING_BYTES = 2, /* integer with an optional K, M or G suffix (powers of 1024), [lo, hi] */
	HAK_SETTING_BOOL = 3,  /* on|off, yes|no, true|false, 1|0 (int) */
	HAK_SETTING_PERCENT = 4, /* integer 0..100 with an optional '%' (unsigned long), [lo, hi] */
	HAK_SETTING_TEXT = 5,    /* copied into a char array of hi bytes (NUL included), at least lo */
};

struct hak_setting_spec {
	const char *key;
	enum hak_setting_type type;
	long long lo, hi;    /* bounds for the integer types */
	size_t offset;       /* where the value goes in the plugin's settings struct */
	const char *def;     /* the default, as written in an INI file (documentation only) */
	const char *help;    /* one sentence */
};

/* ---- The descriptor --------------------------------------------------------------------------
 * Lifecycle of a policy: init -> (start -> stop) -> (fini). init builds the state and validates
 * the settings, with no other effect: `hakmem check` calls it with an inert core and then fini.
 * start: it became the active policy of its kind (may call any service, start a helper). stop:
 * it is no longer the active one (replaced by the configuration at start-up) or the process is
 * exiting; end background work. A stopped ownership policy still serves the memory it made (its
 * ops are still called); a started policy's state is never freed (another thread may still be
 * inside one of its ops), so fini runs only for a policy that never started.
 * A built-in policy's init runs inside the process's first malloc: it must not call malloc when
 * it gets no settings. A plugin's init runs in the library constructor and may use malloc.
 * Fork: fork_prepare runs in the forking thread before fork() (take the policy's locks),
 * fork_parent after it in the parent (release them), fork_child in the child, where only the
 * forking thread exists (re-initialise the locks, forget helper threads). A policy with locks
 * should also have fork_try_prepare (since 2.1): the core takes the policy's locks through it
 * and never waits in fork_prepare while it holds glibc's stdio list lock, or in a fork from a
 * signal handler, where waiting can deadlock; without it the core waits in fork_prepare (a
 * plain fork) or leaves the policy's locks alone (a fork from a handler that interrupted a
 * slow path: the child resets them anyway). */
struct hak_policy_desc {
	uint64_t magic;        /* HAK_POLICY_MAGIC */
	uint32_t abi_major;    /* HAK_POLICY_ABI_MAJOR the plugin was built with */
	uint32_t abi_minor;    /* HAK_POLICY_ABI_MINOR the plugin was built with */
	size_t size;           /* sizeof(struct hak_policy_desc) as the plugin saw it */
	const char *signature; /* HAK_POLICY_SIGNATURE */
	uint32_t kind;         /* enum hak_policy_kind */
	uint32_t min_core_minor; /* oldest core minor whose services it calls without HAK_CORE_HAS */
	const char *name;      /* bare name, as written after `policy =` */
	const char *version;   /* the plugin's own version, "1.0.0" */
	const char *summary;   /* one line for `hakmem policies` */
	/* since 2.0 */
	/* Validate `settings`, build the state. 0, else an errno value and a message in err (no
	 * newline, no prefix). `self` is the handle for services acting on behalf of this policy. */
	int (*init)(const struct hak_core_api *core, hak_policy *self, const struct hak_settings *settings,
		    void **state, char *err, size_t errlen);
	void (*start)(void *state); /* optional */
	void (*stop)(void *state);  /* optional */
	void (*fini)(void *state);  /* optional */
	void (*fork_prepare)(void *state); /* optional; fork_prepare and fork_parent: both or neither */
	void (*fork_parent)(void *state);
	void (*fork_child)(void *state);   /* optional */
	const void *ops; /* the kind's table: struct hak_trim_ops, hak_superslab_ops, hak_ownership_ops */
	const struct hak_setting_spec *settings_spec; /* optional: the keys init takes */
	size_t settings_count;
	/* end of 2.0 */
	/* since 2.1, optional (needs fork_prepare and fork_parent): take every lock fork_prepare
	 * takes, but only if each is free at once: 0 with all of them taken (fork_parent or
	 * fork_child follows), nonzero (EBUSY) with none taken. */
	int (*fork_try_prepare)(void *state);
	/* end of 2.1 */
};

/* A plugin defines its descriptor with this, so the built-in copy compiled into the core gets a
 * distinct, hidden name while the .so exports the one the loader looks for. */
#ifdef HAK_BUILTIN
#define HAK_POLICY_EXPORT(ident) __attribute__((visibility("hidden"))) const struct hak_policy_desc ident
#else
#define HAK_POLICY_EXPORT(ident) \
	__attribute__((visibility("default"))) const struct hak_policy_desc hak_policy_descriptor
#endif

#define HAK_POLICY_DESC_INIT(kind_, name_, version_, summary_)                                    \
	.magic = HAK_POLICY_MAGIC, .abi_major = HAK_POLICY_ABI_MAJOR, .abi_minor = HAK_POLICY_ABI_MINOR, \
	.size = sizeof(struct hak_policy_desc), .signature = HAK_POLICY_SIGNATURE, .kind = (kind_),       \
	.min_core_minor = 0, .name = (name_), .version = (version_), .summary = (summary_)

#define HAK_SETTINGS_SPEC(spec) .settings_spec = (spec), .settings_count = sizeof(spec) / sizeof((spec)[0])

/* The spec rows of the large-cache keys, for a trim policy whose settings struct `type` holds a
 * struct hak_large_limits named `field` (which it hands to large_limits in start). */
#define HAK_LARGE_CACHE_SETTINGS(type, field)                                                        \
	{"large_cache_bytes", HAK_SETTING_BYTES, 0, (long long)1 << 40, offsetof(type, field.max_bytes), \
	 "96M", "bytes of freed large mappings kept for reuse (0: none)"},                             \
	{"large_cache_max_one", HAK_SETTING_BYTES, 0, (long long)1 << 40,                              \
	 offsetof(type, field.max_one), "32M", "a freed large mapping bigger than this is unmapped at once"}, \
	{"large_cache_slots", HAK_SETTING_UINT, 0, 256, offsetof(type, field.slots), "64",            \
	 "freed large mappings kept at most"}

/* ---- Helpers for a plugin (header-only: plugins link nothing of the core) -------------------- */

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

/* The message for a key the plugin does not know. Returns EINVAL (22). */
static inline int hak_setting_unknown(const struct hak_setting *it, const char *known, char *err,
				      size_t errlen)
{
	snprintf(err, errlen, "line %d: unknown key '%s' (this policy takes: %s)", it->line, it->key, known);
	return 22;
}

/* One value against its spec row; 0 or EINVAL with the message. */
static inline int hak__setting_one(const struct hak_setting *it, const struct hak_setting_spec *sp, void *out,
				   char *err, size_t errlen)
{
	const char *p = it->value;
	char *dst = (char *)out + sp->offset;
	if (sp->type == HAK_SETTING_TEXT) {
		size_t n = 0;
		while (p[n])
			n++;
		if ((long long)n < sp->lo || (long long)n >= sp->hi) {
			snprintf(err, errlen, "line %d: %s = '%s': expected text of %lld to %lld bytes", it->line, it->key,
				 it->value, sp->lo, sp->hi - 1);
			return 22;
		}
		for (size_t k = 0; k <= n; k++)
			dst[k] = p[k];
		return 0;
	}
	if (sp->type == HAK_SETTING_BOOL) {
		static const char *const yes[] = {"on", "yes", "true", "1"}, *const no[] = {"off", "no", "false", "0"};
		for (int i = 0; i < 4; i++) {
			int y = 1, n = 1;
			for (size_t k = 0;; k++) {
				char c = p[k];
				c = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
				if (y && c != yes[i][k])
					y = 0;
				if (n && c != no[i][k])
					n = 0;
				if (!c || (!y && !n))
					break;
			}
			if (y || n) {
				*(int *)(void *)dst = y;
				return 0;
			}
		}
		snprintf(err, errlen, "line %d: %s = '%s': expected on or off", it->line, it->key, it->value);
		return 22;
	}
	int neg = 0;
	if (sp->type == HAK_SETTING_INT && *p == '-') {
		neg = 1;
		p++;
	}
	unsigned long long v = 0;
	int digits = 0, bad = 0;
	for (; *p >= '0' && *p <= '9'; p++, digits++) {
		if (v > (~0ULL - (unsigned long long)(*p - '0')) / 10)
			bad = 1;
		v = v * 10 + (unsigned long long)(*p - '0');
	}
	if (sp->type == HAK_SETTING_BYTES && *p) {
		unsigned shift = *p == 'K' || *p == 'k' ? 10 : *p == 'M' || *p == 'm' ? 20 : *p == 'G' || *p == 'g' ? 30 : 0;
		if (!shift || (p[1] && !((p[1] == 'B' || p[1] == 'b') && !p[2])) || v > (~0ULL >> shift))
			bad = 1;
		else
			v <<= shift;
		p = "";
	} else if (sp->type == HAK_SETTING_PERCENT && *p == '%') {
		p++;
	}
	long long sv = neg ? -(long long)v : (long long)v;
	if (!digits || *p || bad || v > (unsigned long long)INT64_MAX || sv < sp->lo || sv > sp->hi) {
		const char *what = sp->type == HAK_SETTING_BYTES ? "a size (K, M or G suffix allowed)"
				 : sp->type == HAK_SETTING_PERCENT ? "a percentage"
								   : "an integer";
		snprintf(err, errlen, "line %d: %s = '%s': expected %s in [%lld, %lld]", it->line, it->key, it->value,
			 what, sp->lo, sp->hi);
		return 22;
	}
	if (sp->type == HAK_SETTING_INT)
		*(long *)(void *)dst = (long)sv;
	else if (sp->type == HAK_SETTING_BYTES)
		*(uint64_t *)(void *)dst = (uint64_t)v;
	else
		*(unsigned long *)(void *)dst = (unsigned long)v;
	return 0;
}

/* Validates every item of `settings` against spec[0..n-1] and stores the values into `out`
 * (which the caller filled with the defaults). 0, or EINVAL with one message in err for the
 * first bad line (an unknown key names the keys this policy takes). */
static inline int hak_settings_parse(const struct hak_settings *settings, const struct hak_setting_spec *spec,
				     size_t n, void *out, char *err, size_t errlen)
{
	for (size_t i = 0; i < settings->count; i++) {
		const struct hak_setting *it = &settings->items[i];
		size_t k = 0;
		for (; k < n; k++) {
			const char *a = it->key, *b = spec[k].key;
			while (*a && *a == *b)
				a++, b++;
			if (!*a && !*b)
				break;
		}
		if (k == n) {
			char known[160];
			size_t used = 0;
			known[0] = '\0';
			for (size_t j = 0; j < n && used + 1 < sizeof known; j++) {
				int w = snprintf(known + used, sizeof known - used, "%s%s", j ? ", " : "", spec[j].key);
				used += w > 0 ? (size_t)w : 0;
			}
			return hak_setting_unknown(it, n ? known : "nothing", err, errlen);
		}
		int e = hak__setting_one(it, &spec[k], out, err, errlen);
		if (e)
			return e;
	}
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

/* b, unlinked from wherever it was, at the end of chain c. */
static inline void hak_chain_append(struct hak_chain *c, void *b)
{
	((void **)b)[0] = NULL;
	if (c->tail)
		((void **)c->tail)[0] = b;
	else
		c->head = b;
	c->tail = b;
	c->count++;
}

/* The chain starting at head, walked to its tail and counted. */
static inline struct hak_chain hak_chain_of(void *head)
{
	struct hak_chain ch = {head, head, head ? 1u : 0u};
	while (head && ((void **)ch.tail)[0]) {
		ch.tail = ((void **)ch.tail)[0];
		ch.count++;
	}
	return ch;
}

#ifdef __cplusplus
}
#endif
#endif /* HAKMEM_POLICY_H */
