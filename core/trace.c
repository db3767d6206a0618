/* trace.c: the recorder behind HAKMEM_TRACE / [core] trace (interface in trace.h, file layout
 * in trace_format.h). Owns the switch that sends every call through the slow paths, the block
 * ids (a shadow map: one word per 16 bytes of address space that holds blocks), the per-thread
 * event buffers, the background writer thread, and what fork, thread exit and process exit do.
 *
 * Threads never do I/O: each appends its events to its own 64 KB buffer and publishes how far
 * it got with one release store; the writer thread copies what is published to the file every
 * 10 ms (sooner when buffers pile up), as whole records in single O_APPEND writes, so the
 * processes of one recording (fork children, executed programs) share the file safely. Only
 * when the writer cannot keep up (a slow disk, or no CPU left for it) and 64 MB of buffers are
 * waiting does a thread wait.
 * A write that fails (disk full, file size limit, ...) stops the recording with one line; the
 * program goes on. Nothing here calls malloc: memory comes from mmap. */
#include "trace.h"

#include "alloc_fast.h"
#include "config.h"
#include "trace_format.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef HAK_VERSION
#define HAK_VERSION "0.1.0"
#endif

#define SESSION_VAR "HAKMEM_TRACE_SESSION" /* "<pkey hex>:<file>": set for the processes it starts */
#define BUF_BYTES (64u << 10)              /* one thread buffer */
#define BUF_CAP 1024u                      /* buffers in use at most (64 MB), then threads wait */
#define KICK_AFTER 16u                     /* sealed buffers that wake the writer early */
#define OUT_CAP (1u << 20)                 /* the writer's output buffer: one write() */
#define WRITER_MS 10
#define PATH_MAXLEN 4096

_Atomic int hak__xtrace_on;

enum { T_OFF, T_RECORDING, T_STOPPING, T_STOPPED, T_FINISHED };
/* Read at every event: on a line of its own, which only a change of state writes. */
static _Alignas(64) _Atomic int xstate;

/* ---- Ticks ------------------------------------------------------------------------------- */

/* Events are stamped with CLOCK_MONOTONIC_COARSE read by the writer thread, every millisecond
 * while the program makes calls and every 10 ms when it is quiet: a load instead of a clock
 * call on every event (a call is 3 ns here, rdtsc 9 ns: a quarter of what recording costs).
 * A thread reads the clock itself every CLOCK_BYTES of events too (21 to 300 events), so
 * time goes on while the writer is busy writing or waits for a CPU; the same compare tells
 * it when its buffer is full. What replaying the program's pauses (--timed) needs; the
 * header gives the resolution. */
#define CLOCK_BYTES 1024
static _Alignas(64) _Atomic uint64_t xnow; /* its own line: written every tick */

static uint64_t coarse_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t ticks(void)
{
	return hak_load_relaxed(&xnow);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- Block ids: the shadow map ----------------------------------------------------------- */

/* One 64-bit id per block, 0 meaning "no traced block here", in 8 GB reservations
 * (MAP_NORESERVE: only the pages of slots that held ids are ever touched), each covering
 * 16 GB of keys at one word per 16 bytes. A block of a slab is keyed by its slab and its
 * index q in the slab: key start + 16 q with bit 47 set, so one slab's ids are packed in
 * its first words instead of one word per 16 bytes of its blocks. For Larson's 8-1000 B
 * blocks that is one cache line per 8 blocks instead of one per block, and one page per
 * 64 KB slab instead of half the heap's size in pages. Any other block (a large one) is
 * keyed by its address, which bit 47 keeps apart from the slabs' keys. */
#define SHADOW_SHIFT 34
#define SHADOW_KEY_BITS 48
#define SHADOW_SLAB_KEY ((uintptr_t)1 << 47)
#define SHADOW_REGIONS (1u << (SHADOW_KEY_BITS - SHADOW_SHIFT))
#define SHADOW_BYTES (((size_t)1 << SHADOW_SHIFT) / 16 * sizeof(uint64_t))
HAK_BIG_BSS static uint64_t *_Atomic xshadow[SHADOW_REGIONS];

static void stop(const char *why, int err, bool can_write);

static uint64_t *shadow_make(unsigned region)
{
	int saved = errno;
	void *m = mmap(NULL, SHADOW_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED) {
		stop("cannot reserve 8 GB of address space for the block ids", errno, true);
		errno = saved;
		return NULL;
	}
	uint64_t *expect = NULL;
	if (!atomic_compare_exchange_strong(&xshadow[region], &expect, (uint64_t *)m)) {
		munmap(m, SHADOW_BYTES);
		errno = saved;
		return expect;
	}
	errno = saved;
	return m;
}

/* p is a carved block start of s, the flat map's answer for it, and q = hak__block_index(s,
 * p) its index: the free fast path's test (the sentinel, for a block of no slab, fails it). */
static inline bool block_start(const struct hak_slab *s, uint64_t q)
{
	return q < hak_load_relaxed(&s->xcarved);
}

/* The key of the block at p: a block start (block_start(s, q)) is keyed by its slab and index
 * q, anything else by its address; 0 past the address space. */
static inline uintptr_t shadow_key(const struct hak_slab *s, uint64_t q, bool start, const void *p)
{
	if (likely(start))
		return ((uintptr_t)s->start + (q << 4)) | SHADOW_SLAB_KEY;
	return likely(!((uintptr_t)p >> 47)) ? (uintptr_t)p : 0;
}

/* The slot of a key; NULL when it has none and make is false, or none can be made. */
static inline uint64_t *shadow_at(uintptr_t key, bool make)
{
	uint64_t *base = hak_load_acquire(&xshadow[key >> SHADOW_SHIFT]);
	if (unlikely(!base)) {
		if (!make || !key)
			return NULL;
		base = shadow_make((unsigned)(key >> SHADOW_SHIFT));
		if (!base)
			return NULL;
	}
	return base + ((key & (((uintptr_t)1 << SHADOW_SHIFT) - 1)) >> 4);
}

static inline uint64_t *shadow_slot(const void *p, bool make)
{
	const struct hak_slab *s = hak__slab_lookup_fast(p);
	uint64_t q = hak__block_index(s, p);
	return shadow_at(shadow_key(s, q, block_start(s, q), p), make);
}

/* The id of the traced block in slot (NULL: none), cleared: the block is about to be freed. */
static inline uint64_t shadow_take(uint64_t *slot)
{
	if (!slot)
		return 0;
	uint64_t id = *slot;
	*slot = 0;
	return id;
}

/* ---- Buffers ------------------------------------------------------------------------------ */

struct tbuf {
	struct tbuf *_Atomic xnext;   /* the thread's next buffer: set before xsealed */
	_Atomic uint32_t xpublished;  /* bytes of whole events */
	_Atomic uint32_t xsealed;     /* the thread moved on: xpublished is final */
	uint32_t consumed;            /* bytes the writer has written (writer only) */
	struct tbuf *free_next;       /* pool */
	unsigned char data[BUF_BYTES];
};

static atomic_flag pool_busy = ATOMIC_FLAG_INIT;
static struct tbuf *pool;                 /* free buffers (pool_busy) */
static _Atomic uint32_t xbufs_in_use;     /* handed out and not yet back */
static _Atomic uint32_t xsealed_pending;  /* sealed since the writer last looked */
static _Atomic uint32_t xkick;            /* futex word the writer sleeps on */
static _Atomic int xwriter_asleep;

static void pool_lock(void)
{
	while (atomic_flag_test_and_set_explicit(&pool_busy, memory_order_acquire))
		sched_yield();
}

static void pool_unlock(void)
{
	atomic_flag_clear_explicit(&pool_busy, memory_order_release);
}

static void kick_writer(void)
{
	hak_add_relaxed(&xkick, 1);
	if (hak_load_relaxed(&xwriter_asleep))
		syscall(SYS_futex, &xkick, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static struct tbuf *buf_get(void)
{
	while (hak_load_relaxed(&xbufs_in_use) >= BUF_CAP) {
		/* The disk does not keep up: wait for the writer (the only time a thread waits). */
		if (hak_load_relaxed(&xstate) != T_RECORDING)
			return NULL;
		kick_writer();
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	pool_lock();
	struct tbuf *b = pool;
	if (b)
		pool = b->free_next;
	pool_unlock();
	if (!b) {
		int saved = errno;
		enum { PER_MAP = 32 };
		char *m = mmap(NULL, PER_MAP * sizeof(struct tbuf), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		errno = saved;
		if (m == MAP_FAILED)
			return NULL;
		b = (struct tbuf *)m;
		pool_lock();
		for (unsigned i = 1; i < PER_MAP; i++) {
			struct tbuf *x = (struct tbuf *)(m + i * sizeof(struct tbuf));
			x->free_next = pool;
			pool = x;
		}
		pool_unlock();
	}
	hak_add_relaxed(&xbufs_in_use, 1);
	hak_store_relaxed(&b->xnext, NULL);
	hak_store_relaxed(&b->xpublished, 0);
	hak_store_relaxed(&b->xsealed, 0);
	b->consumed = 0;
	return b;
}

static void buf_put(struct tbuf *b)
{
	pool_lock();
	b->free_next = pool;
	pool = b;
	pool_unlock();
	hak_add_relaxed(&xbufs_in_use, -1);
}

/* ---- Thread records ------------------------------------------------------------------------ */

struct trec {
	/* the producer's (the thread, or whoever holds orphan_lock) */
	unsigned char *pos, *end;     /* where the next event goes in cur */
	unsigned char *limit;         /* past it, an event first reads the clock or switches buffer */
	struct tbuf *cur;
	uint64_t seq;                 /* blocks made */
	uint64_t last_tick;
	uint32_t idx;                 /* thread index in this process */
	_Atomic uint64_t xcounts[HAK_TRACE_COUNT_N];
	/* the registry's and the writer's */
	struct trec *_Atomic xnext;   /* registry, in order of creation (reg_lock to link) */
	struct tbuf *head;            /* oldest buffer with bytes to write (writer) */
	_Atomic int xended;           /* the thread exited: nothing more comes */
	int announced;                /* its THREAD record is written (writer) */
	uint64_t tid, live, base_tick;
	struct trec *free_next;
};

#define TREC_ORPHAN ((struct trec *)1)
/* The thread's part, in one block: one thread-pointer offset for all of it. Calls made inside
 * a hook, or inside the real call a wrapper makes, are not recorded (a nested malloc of
 * calloc, a signal handler's malloc in the middle of an event): for a thread with a record of
 * its own, `ready` is NULL then; for the others, `busy` is set. */
struct tls_part {
	struct trec *ready; /* rec when a hook may write into it now (hook_enter's one test) */
	struct trec *rec;   /* NULL before the thread's first call, TREC_ORPHAN after its exit hook */
	int busy;
	int orphan_held;
};
static __thread struct tls_part tls __attribute__((tls_model("initial-exec")));

static pthread_mutex_t orphan_lock = PTHREAD_MUTEX_INITIALIZER; /* order: orphan, writer, reg */
static pthread_mutex_t writer_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct trec *_Atomic xreg_head;
static struct trec *reg_tail;        /* reg_lock */
static struct trec *rec_pool;        /* recycled records (reg_lock) */
static struct trec *orphan_rec;      /* threads past their exit hook share it (orphan_lock) */
static _Atomic uint32_t xnext_idx;
static _Atomic uint64_t xlive;       /* records not ended */
static _Atomic uint64_t xforks;
static uint64_t totals[HAK_TRACE_COUNT_N]; /* of recycled records (reg_lock) */

static inline void count(struct trec *r, unsigned which)
{
	hak_store_relaxed(&r->xcounts[which], hak_load_relaxed(&r->xcounts[which]) + 1);
}

static struct trec *rec_alloc(void)
{
	pthread_mutex_lock(&reg_lock);
	struct trec *r = rec_pool;
	if (r)
		rec_pool = r->free_next;
	pthread_mutex_unlock(&reg_lock);
	if (!r) {
		int saved = errno;
		enum { PER_MAP = 64 };
		char *m = mmap(NULL, PER_MAP * sizeof(struct trec), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		errno = saved;
		if (m == MAP_FAILED)
			return NULL;
		r = (struct trec *)m;
		pthread_mutex_lock(&reg_lock);
		for (unsigned i = 1; i < PER_MAP; i++) {
			struct trec *x = (struct trec *)(m + i * sizeof(struct trec));
			x->free_next = rec_pool;
			rec_pool = x;
		}
		pthread_mutex_unlock(&reg_lock);
	}
	memset(r, 0, sizeof *r);
	return r;
}

/* A new thread (or the orphan stream): an index, a buffer, a place in the registry. */
static struct trec *rec_new(void)
{
	uint32_t idx = hak_add_relaxed(&xnext_idx, 1) + 1;
	if (idx > HAK_TRACE_IDX_MAX) {
		stop("more threads than a trace can name (16 million)", 0, true);
		return NULL;
	}
	struct trec *r = rec_alloc();
	struct tbuf *b = r ? buf_get() : NULL;
	if (!b) {
		if (r) {
			pthread_mutex_lock(&reg_lock);
			r->free_next = rec_pool;
			rec_pool = r;
			pthread_mutex_unlock(&reg_lock);
		}
		if (hak_load_relaxed(&xstate) == T_RECORDING)
			stop("out of memory for event buffers", ENOMEM, true);
		return NULL;
	}
	r->idx = idx;
	r->cur = r->head = b;
	r->pos = b->data;
	r->end = b->data + BUF_BYTES;
	r->limit = b->data + CLOCK_BYTES;
	r->last_tick = r->base_tick = ticks();
	r->tid = (uint64_t)syscall(SYS_gettid);
	r->live = hak_add_relaxed(&xlive, 1) + 1;
	pthread_mutex_lock(&reg_lock);
	if (reg_tail)
		hak_store_release(&reg_tail->xnext, r);
	else
		hak_store_release(&xreg_head, r);
	reg_tail = r;
	pthread_mutex_unlock(&reg_lock);
	return r;
}

/* ---- Events ------------------------------------------------------------------------------- */

/* The thread's buffer is nearly full: hand it to the writer, continue in a fresh one. */
static HAK_NOINLINE bool buf_switch(struct trec *r)
{
	struct tbuf *nb = buf_get();
	if (!nb) {
		if (hak_load_relaxed(&xstate) == T_RECORDING)
			stop("out of memory for event buffers", ENOMEM, true);
		r->pos = r->cur->data; /* recording has stopped: nobody reads it any more */
		return false;
	}
	hak_store_release(&r->cur->xnext, nb);
	hak_store_release(&r->cur->xsealed, 1);
	r->cur = nb;
	r->pos = nb->data;
	r->end = nb->data + BUF_BYTES;
	if (hak_add_relaxed(&xsealed_pending, 1) + 1 >= KICK_AFTER)
		kick_writer();
	return true;
}

/* Past r->limit: a fresh buffer when this one has less than HAK_TRACE_EVENT_MAX bytes left,
 * and the clock, read; false when recording has stopped. */
static HAK_NOINLINE bool ev_refresh(struct trec *r)
{
	if (r->pos + HAK_TRACE_EVENT_MAX > r->end && !buf_switch(r))
		return false;
	/* Checked here rather than at every block: a malloc event takes 2 bytes at least, so
	 * fewer than CLOCK_BYTES blocks are made between two calls. */
	if (r->seq >= HAK_TRACE_SEQ_MAX - CLOCK_BYTES) {
		stop("a thread made more blocks than a trace can name (2^40)", 0, true);
		return false;
	}
	uint64_t now = coarse_ns();
	if (now > ticks())
		hak_store_relaxed(&xnow, now); /* a race between threads only loses a little time */
	size_t room = (size_t)(r->end - r->pos) - HAK_TRACE_EVENT_MAX;
	r->limit = r->pos + (room < CLOCK_BYTES ? room : CLOCK_BYTES);
	return true;
}

/* The op byte and tick delta of an event in a tick later than the thread's last one. */
static HAK_NOINLINE unsigned char *ev_tick(struct trec *r, unsigned op, uint64_t t)
{
	uint64_t dt = 0;
	if (t > r->last_tick) { /* never backwards (the clock is monotonic; be safe) */
		dt = t - r->last_tick;
		r->last_tick = t;
	}
	return hak__trace_put_op(r->pos, op, dt);
}

/* Starts an event: room for HAK_TRACE_EVENT_MAX bytes, the op byte and the tick delta.
 * Budget: the limit compare, the tick compare (most events come in the tick of the one
 * before: delta 0, the op byte alone), the count, the op byte. */
static inline unsigned char *ev_begin(struct trec *r, unsigned op)
{
	if (unlikely(r->pos > r->limit) && !ev_refresh(r))
		return NULL;
	count(r, op - 1);
	uint64_t t = ticks();
	if (unlikely(t != r->last_tick))
		return ev_tick(r, op, t);
	*r->pos = (unsigned char)op;
	return r->pos + 1;
}

/* Publishes it: the writer may copy everything up to w. */
static inline void ev_end(struct trec *r, unsigned char *w)
{
	r->pos = w;
	hak_store_release(&r->cur->xpublished, (uint32_t)(w - r->cur->data));
}

static void writer_start(void);
static _Atomic int xwriter_up;

/* Inside a hook or a wrapper's real call: a call now is not to be recorded. */
static inline bool nested(void)
{
	return tls.busy || (tls.rec > TREC_ORPHAN && !tls.ready);
}

/* A wrapper's real call (calloc's malloc, realloc's free, ...) is not recorded on its own. */
static inline struct trec *hold(void)
{
	struct trec *saved = tls.ready;
	tls.busy++;
	tls.ready = NULL;
	return saved;
}

static inline void unhold(struct trec *saved)
{
	tls.busy--;
	tls.ready = saved;
}

/* hook_enter's other cases: a thread's first call (which starts the writer in a fork child),
 * a call inside a hook, recording stopped, the orphan stream. */
static HAK_NOINLINE struct trec *hook_enter_slow(void)
{
	if (nested() || hak_load_relaxed(&xstate) != T_RECORDING || tls.rec > TREC_ORPHAN)
		return NULL;
	tls.busy = 1;
	if (unlikely(!hak_load_relaxed(&xwriter_up)))
		writer_start(); /* a fork child's first call */
	if (tls.rec == NULL) {
		struct trec *r = rec_new();
		tls.busy = 0;
		if (r)
			tls.rec = r; /* ready stays NULL until hook_leave */
		return r;
	}
	pthread_mutex_lock(&orphan_lock);
	tls.orphan_held = 1;
	if (!orphan_rec)
		orphan_rec = rec_new();
	if (!orphan_rec) {
		tls.orphan_held = 0;
		pthread_mutex_unlock(&orphan_lock);
		tls.busy = 0;
		return NULL;
	}
	return orphan_rec;
}

/* The record a hook writes into, taken (calls inside the hook are not recorded); NULL when
 * nothing is to be recorded. A thread has a record of its own only after its first call in
 * this process took the slow way (a fork child's thread starts with none), so the writer is
 * running. Budget: two loads, two tests, a store. */
static inline struct trec *hook_enter(void)
{
	struct trec *r = tls.ready;
	if (likely(r != NULL && hak_load_relaxed(&xstate) == T_RECORDING)) {
		tls.ready = NULL;
		return r;
	}
	return hook_enter_slow();
}

static HAK_NOINLINE void hook_leave_orphan(void)
{
	tls.orphan_held = 0;
	pthread_mutex_unlock(&orphan_lock);
	tls.busy = 0;
}

/* The end of a hook that hook_enter gave r. */
static inline void hook_leave(struct trec *r)
{
	if (likely(r == tls.rec))
		tls.ready = r;
	else
		hook_leave_orphan();
}

/* A new block at p: its id, recorded in the shadow map; 0 when recording had to stop. */
static inline uint64_t make_id(struct trec *r, const void *p)
{
	uint64_t *slot = shadow_slot(p, true);
	if (unlikely(!slot))
		return 0;
	uint64_t id = HAK_TRACE_ID(r->idx, ++r->seq);
	*slot = id;
	return id;
}

/* The malloc fast path (alloc_fast.h) for any small size, with the class computed: the real
 * cache, which the fast path cannot see while recording. */
static inline void *malloc_cached(size_t n)
{
	if (n > HAK_SMALL_MAX)
		return NULL;
	return hak__tc_pop(&hak__tcs.cache[hak__size_to_class(n)]);
}

/* The free fast path (alloc_fast.h), with the thread's real accept, for p in slab s (the flat
 * map's answer), start = block_start(): true when p went into the thread's cache. Keep the two
 * in step. */
static inline bool free_cached(struct hak_slab *s, bool start, void *p)
{
	struct hak_tcache *tc = hak__slab_cache(s);
	uintptr_t mark = hak__block_mark(p);
	if (hak_load_relaxed(&s->xowner) != hak__accept_real(tc->accept) || !start ||
	    ((uintptr_t *)p)[1] == mark || !hak__room_take(&tc->room))
		return false;
	hak__tc_push_marked(tc, p, mark);
	return true;
}

void *hak__trace_malloc(size_t n)
{
	void *p = malloc_cached(n);
	if (!p)
		p = hak__malloc_untraced(n);
	struct trec *r = hook_enter();
	if (!r)
		return p;
	if (!p) {
		count(r, HAK_TRACE_COUNT_FAILED);
	} else if (make_id(r, p)) {
		unsigned char *w = ev_begin(r, HAK_TOP_MALLOC);
		if (w)
			ev_end(r, hak__trace_put_varint(w, n));
	}
	hook_leave(r);
	return p;
}

void hak__trace_free(void *p)
{
	if (!p)
		return;
	struct hak_slab *s = hak__slab_lookup_fast(p);
	uint64_t q = hak__block_index(s, p);
	bool start = block_start(s, q); /* for the id's key and for the cache alike */
	uint64_t *slot = shadow_at(shadow_key(s, q, start, p), false);
	__builtin_prefetch(slot, 1); /* a miss, most often: start it now (a NULL is harmless) */
	struct trec *r = hook_enter();
	if (r) {
		uint64_t id = shadow_take(slot);
		if (!id) {
			count(r, HAK_TRACE_COUNT_UNTRACED_FREES); /* made before recording started, or not ours */
		} else {
			unsigned char *w = ev_begin(r, HAK_TOP_FREE);
			if (w)
				ev_end(r, hak__trace_put_ref(w, r->idx, r->seq, id));
		}
		hook_leave(r);
	}
	if (!free_cached(s, start, p))
		hak__free_untraced(p);
}

void *hak__trace_calloc(size_t n, size_t size)
{
	struct trec *held = hold();
	void *p = hak__calloc(n, size);
	unhold(held);
	struct trec *r = hook_enter();
	if (r) {
		if (!p) {
			count(r, HAK_TRACE_COUNT_FAILED);
		} else if (make_id(r, p)) {
			unsigned char *w = ev_begin(r, HAK_TOP_CALLOC);
			if (w)
				ev_end(r, hak__trace_put_varint(hak__trace_put_varint(w, n), size));
		}
		hook_leave(r);
	}
	return p;
}

void *hak__trace_realloc(void *p, size_t n)
{
	/* The old id is taken before the call: once the block moves, its address is free and
	 * another thread may make a block there. */
	uint64_t old = 0, *slot = NULL;
	if (p && !nested() && (slot = shadow_slot(p, false)) != NULL) {
		old = *slot;
		*slot = 0;
	}
	struct trec *held = hold();
	void *q = hak__realloc(p, n);
	unhold(held);
	struct trec *r = hook_enter();
	if (!r) {
		if (slot && (!q && n)) /* failed: the block is still there */
			*slot = old;
		return q;
	}
	if (p && n == 0) { /* glibc's realloc(p, 0): a free */
		if (!old) {
			count(r, HAK_TRACE_COUNT_UNTRACED_FREES);
		} else {
			unsigned char *w = ev_begin(r, HAK_TOP_FREE);
			if (w)
				ev_end(r, hak__trace_put_ref(w, r->idx, r->seq, old));
		}
	} else if (!q) {
		count(r, HAK_TRACE_COUNT_FAILED);
		if (slot)
			*slot = old;
	} else {
		/* An untraced block resized is recorded as realloc(NULL, n): the replay never had it. */
		unsigned op = old && q == p ? HAK_TOP_REALLOC : HAK_TOP_REALLOC_MOVED;
		uint64_t seq = r->seq; /* the reference is relative to the blocks made before this one */
		if (make_id(r, q)) {
			unsigned char *w = ev_begin(r, op);
			if (w)
				ev_end(r, hak__trace_put_varint(hak__trace_put_ref(w, r->idx, seq, old), n));
		}
	}
	hook_leave(r);
	return q;
}

void *hak__trace_memalign(unsigned kind, size_t align, size_t n)
{
	struct trec *held = hold();
	void *p = hak__memalign(align, n);
	unhold(held);
	struct trec *r = hook_enter();
	if (r) {
		if (!p) {
			count(r, HAK_TRACE_COUNT_FAILED);
		} else if (make_id(r, p)) {
			unsigned char *w = ev_begin(r, HAK_TOP_MEMALIGN);
			unsigned lg = align ? (unsigned)__builtin_ctzll(align) : 0;
			if (w)
				ev_end(r, hak__trace_put_varint(hak__trace_put_varint(w, kind | lg << 3), n));
		}
		hook_leave(r);
	}
	return p;
}

void hak__trace_free_sized(void *p, size_t size, size_t align)
{
	struct trec *r = p ? hook_enter() : NULL;
	if (r) {
		uint64_t id = shadow_take(shadow_slot(p, false));
		if (!id) {
			count(r, HAK_TRACE_COUNT_UNTRACED_FREES);
		} else {
			unsigned char *w = ev_begin(r, HAK_TOP_FREE_SIZED);
			unsigned lg = align ? (unsigned)__builtin_ctzll(align) : 0;
			if (w) {
				w = hak__trace_put_varint(hak__trace_put_ref(w, r->idx, r->seq, id), size);
				ev_end(r, hak__trace_put_varint(w, lg));
			}
		}
		hook_leave(r);
	}
	struct trec *held = hold();
	hak__free(p);
	unhold(held);
}

void hak__trace_trim(size_t pad)
{
	struct trec *r = hook_enter();
	if (!r)
		return;
	unsigned char *w = ev_begin(r, HAK_TOP_TRIM);
	if (w)
		ev_end(r, hak__trace_put_varint(w, pad));
	hook_leave(r);
}

void hak__trace_thread_exit(void)
{
	struct trec *r = tls.rec;
	if (r > TREC_ORPHAN && !nested() && hak_load_relaxed(&xstate) == T_RECORDING) {
		tls.ready = NULL;
		unsigned char *w = ev_begin(r, HAK_TOP_THREAD_END);
		if (w)
			ev_end(r, w);
	}
	if (r > TREC_ORPHAN) {
		hak_add_relaxed(&xlive, -1);
		hak_store_release(&r->xended, 1);
	}
	tls.ready = NULL;
	tls.rec = TREC_ORPHAN; /* later calls (other destructors) go to the shared orphan stream */
}

/* ---- The switch ---------------------------------------------------------------------------- */

HAK_BIG_BSS static uint16_t saved_tc_off[HAK_FAST_MAX + 1];

static void disguise(struct hak_thread *t, void *ctx)
{
	(void)ctx;
	for (unsigned c = 0; c < HAK_NCLASSES; c++)
		t->cache[c].accept |= HAK_ACCEPT_TRACED;
}

/* Every small malloc finds an empty cache: the table's offsets name hak__tcs.trace_null. */
static void fast_paths_off(void)
{
	memcpy(saved_tc_off, hak__tc_off_of_small, sizeof saved_tc_off);
	for (unsigned i = 0; i < sizeof saved_tc_off / sizeof saved_tc_off[0]; i++)
		__atomic_store_n(&hak__tc_off_of_small[i], (uint16_t)offsetof(struct hak_tls_caches, trace_null),
				 __ATOMIC_RELAXED);
}

/* Recording stopped: malloc's fast path again. (States keep their mark: their frees take the
 * slow path, which unmasks it; undoing it would take the heap lock from the writer.) */
static void undisguise(struct hak_thread *t, void *ctx)
{
	(void)ctx;
	for (unsigned c = 0; c < HAK_NCLASSES; c++)
		t->cache[c].accept = hak__accept_real(t->cache[c].accept);
}

/* Recording stopped: the fast paths serve again, for the states made from now on and, when
 * all_threads, for the live ones (else only the caller's: a fork child, where the thread lock
 * may still be held until the core's own child handler runs and the other states go anyway). */
static void fast_paths_on(bool all_threads)
{
	for (unsigned i = 0; i < sizeof saved_tc_off / sizeof saved_tc_off[0]; i++)
		__atomic_store_n(&hak__tc_off_of_small[i], saved_tc_off[i], __ATOMIC_RELAXED);
	hak__accept_mark = 0;
	if (all_threads)
		hak__threads_each(undisguise, NULL);
	else if (hak__tls->state == HAK_THREAD_LIVE)
		undisguise(hak__tls, NULL);
}

/* ---- The file and the writer --------------------------------------------------------------- */

static int trace_fd = -1;
HAK_BIG_BSS static char trace_path[PATH_MAXLEN];
static uint64_t pkey, parent_pkey, proc_flags, fork_thread, fork_number;
static unsigned char *out; /* OUT_CAP bytes (writer_lock) */
static size_t out_len;
static bool out_events;   /* an EVENTS record went into out since the last pass began */
static pthread_t writer_thread;

static const char *errno_text(int e)
{
	const char *s = strerrordesc_np(e);
	return s ? s : "unknown error";
}

static void stop(const char *why, int err, bool can_write)
{
	int expect = T_RECORDING;
	if (!atomic_compare_exchange_strong(&xstate, &expect, can_write ? T_STOPPING : T_STOPPED))
		return;
	hak_store_relaxed(&hak__xtrace_on, 0);
	fast_paths_on(true);
	hak__log("trace %s: %s%s%s; recording stopped, the program goes on (the trace holds what was "
		 "written before)", trace_path, why, err ? ": " : "", err ? errno_text(err) : "");
	kick_writer();
}

/* Writes out[0..out_len); a failure stops the recording. writer_lock held. */
static void out_flush(void)
{
	size_t off = 0;
	while (off < out_len && hak_load_relaxed(&xstate) != T_STOPPED) {
		ssize_t n = write(trace_fd, out + off, out_len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : ENOSPC;
			if (hak_load_relaxed(&xstate) == T_RECORDING)
				stop("write failed", e, false);
			else
				hak_store_relaxed(&xstate, T_STOPPED);
			break;
		}
		off += (size_t)n;
	}
	out_len = 0;
}

/* Appends one record: head (its fixed fields, pkey first) and body. writer_lock held. */
static void out_record(unsigned type, const unsigned char *head, size_t hlen, const void *body, size_t blen)
{
	size_t len = hlen + blen, need = 1 + hak__trace_varint_len(len) + len;
	if (out_len + need > OUT_CAP)
		out_flush();
	if (need > OUT_CAP)
		return; /* cannot happen: events come in 64 KB pieces */
	unsigned char *w = out + out_len;
	*w++ = (unsigned char)type;
	w = hak__trace_put_varint(w, len);
	memcpy(w, head, hlen);
	if (blen)
		memcpy(w + hlen, body, blen);
	out_len += need;
}

static void out_clock(void)
{
	unsigned char h[32], *w = hak__trace_put_varint(h, pkey);
	w = hak__trace_put_varint(w, ticks());
	w = hak__trace_put_varint(w, mono_ns());
	out_record(HAK_TREC_CLOCK, h, (size_t)(w - h), NULL, 0);
}

/* Reads a small /proc file into buf; its length (0 when unreadable). */
static size_t read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	if (fd < 0)
		return 0;
	while (len < size) {
		ssize_t n = read(fd, buf + len, size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	return len;
}

static size_t program_name(char *buf, size_t size)
{
	char exe[PATH_MAXLEN];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return (size_t)snprintf(buf, size, "?");
	exe[n] = '\0';
	const char *base = strrchr(exe, '/');
	return (size_t)snprintf(buf, size, "%s", base ? base + 1 : exe);
}

static void out_process(void)
{
	HAK_BIG_BSS static unsigned char h[PATH_MAXLEN + 4096 + 128];
	char prog[256], cmd[4096];
	size_t plen = program_name(prog, sizeof prog), clen = read_small("/proc/self/cmdline", cmd, sizeof cmd);
	if (plen >= sizeof prog)
		plen = sizeof prog - 1;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	unsigned char *w = hak__trace_put_varint(h, pkey);
	w = hak__trace_put_varint(w, (uint64_t)getpid());
	w = hak__trace_put_varint(w, parent_pkey);
	w = hak__trace_put_varint(w, proc_flags);
	w = hak__trace_put_varint(w, (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec);
	w = hak__trace_put_varint(w, fork_thread);
	w = hak__trace_put_varint(w, fork_number);
	w = hak__trace_put_string(w, prog, plen);
	w = hak__trace_put_string(w, cmd, clen);
	out_record(HAK_TREC_PROCESS, h, (size_t)(w - h), NULL, 0);
	out_clock();
}

/* Writes what r published since the last pass. writer_lock held. */
static void drain(struct trec *r)
{
	struct tbuf *b = r->head;
	for (;;) {
		uint32_t sealed = hak_load_acquire(&b->xsealed);
		uint32_t pub = hak_load_acquire(&b->xpublished);
		if (pub > b->consumed) {
			unsigned char h[24], *w = hak__trace_put_varint(h, pkey);
			w = hak__trace_put_varint(w, r->idx);
			out_record(HAK_TREC_EVENTS, h, (size_t)(w - h), b->data + b->consumed, pub - b->consumed);
			out_events = true;
			b->consumed = pub;
		}
		if (!sealed)
			break;
		struct tbuf *next = hak_load_acquire(&b->xnext);
		buf_put(b);
		r->head = b = next;
	}
}

/* One pass over every thread: announce the new ones, write what they published, retire the
 * ones that ended. writer_lock held. True when there were events to write. */
static bool pass(void)
{
	struct trec *prev = NULL;
	out_events = false;
	hak_store_relaxed(&xsealed_pending, 0);
	for (struct trec *r = hak_load_acquire(&xreg_head); r;) {
		struct trec *next = hak_load_acquire(&r->xnext);
		if (!r->announced) {
			unsigned char h[64], *w = hak__trace_put_varint(h, pkey);
			w = hak__trace_put_varint(w, r->idx);
			w = hak__trace_put_varint(w, r->tid);
			w = hak__trace_put_varint(w, r->live);
			w = hak__trace_put_varint(w, r->base_tick);
			out_record(HAK_TREC_THREAD, h, (size_t)(w - h), NULL, 0);
			r->announced = 1;
		}
		int ended = hak_load_acquire(&r->xended); /* before the drain: nothing comes after it */
		drain(r);
		if (!ended) {
			prev = r;
			r = next;
			continue;
		}
		unsigned char h[24], *w = hak__trace_put_varint(h, pkey);
		w = hak__trace_put_varint(w, r->idx);
		out_record(HAK_TREC_EXITED, h, (size_t)(w - h), NULL, 0);
		pthread_mutex_lock(&reg_lock);
		next = hak_load_relaxed(&r->xnext);
		if (prev)
			hak_store_release(&prev->xnext, next);
		else
			hak_store_release(&xreg_head, next);
		if (reg_tail == r)
			reg_tail = prev;
		for (unsigned i = 0; i < HAK_TRACE_COUNT_N; i++)
			totals[i] += hak_load_relaxed(&r->xcounts[i]);
		totals[HAK_TRACE_COUNT_THREADS]++;
		pthread_mutex_unlock(&reg_lock);
		buf_put(r->head);
		pthread_mutex_lock(&reg_lock);
		r->free_next = rec_pool;
		rec_pool = r;
		pthread_mutex_unlock(&reg_lock);
		r = next;
	}
	out_clock();
	return out_events;
}

static void out_end(void)
{
	uint64_t c[HAK_TRACE_COUNT_N];
	pthread_mutex_lock(&reg_lock);
	memcpy(c, totals, sizeof c);
	for (struct trec *r = hak_load_acquire(&xreg_head); r; r = hak_load_relaxed(&r->xnext)) {
		for (unsigned i = 0; i < HAK_TRACE_COUNT_N; i++)
			c[i] += hak_load_relaxed(&r->xcounts[i]);
		c[HAK_TRACE_COUNT_THREADS]++;
	}
	pthread_mutex_unlock(&reg_lock);
	unsigned char h[16 + 11 * HAK_TRACE_COUNT_N], *w = hak__trace_put_varint(h, pkey);
	w = hak__trace_put_varint(w, HAK_TRACE_COUNT_N);
	for (unsigned i = 0; i < HAK_TRACE_COUNT_N; i++)
		w = hak__trace_put_varint(w, c[i]);
	out_record(HAK_TREC_END, h, (size_t)(w - h), NULL, 0);
}

/* After a stop that can still write: what was published, a STOPPED record, the END. */
static void out_stopped(void)
{
	pass();
	unsigned char h[24], *w = hak__trace_put_varint(h, pkey);
	static const char why[] = "recording stopped early; see the hakmem: line on the program's stderr";
	w = hak__trace_put_varint(w, sizeof why - 1);
	out_record(HAK_TREC_STOPPED, h, (size_t)(w - h), why, sizeof why - 1);
	out_end();
	out_flush();
	hak_store_relaxed(&xstate, T_STOPPED);
}

/* The main thread called pthread_exit and every other program thread has ended: only hakmem's
 * own threads (this writer, the policies' helpers, all named "hakmem-...") keep the process
 * alive. glibc ends a process whose last thread exits with exit(0); the writer does that for it.
 * No malloc here (no opendir): getdents64 into a stack buffer. */
static bool only_hakmem_left(void)
{
	struct stat st;
	if (stat("/proc/self/task", &st) != 0 || st.st_nlink > 2 + 8)
		return false; /* the main thread counts while it is a zombie; many threads: not yet */
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)getpid());
	size_t n = read_small(path, buf, sizeof buf - 1);
	buf[n] = '\0';
	const char *paren = strrchr(buf, ')');
	if (!paren || paren[1] != ' ' || paren[2] != 'Z')
		return false;
	int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool only_ours = true;
	char dents[2048];
	long got;
	while (only_ours && (got = syscall(SYS_getdents64, fd, dents, sizeof dents)) > 0) {
		for (long off = 0; off < got;) {
			struct {
				uint64_t ino;
				int64_t off;
				unsigned short reclen;
				unsigned char type;
				char name[];
			} *d = (void *)(dents + off);
			off += d->reclen;
			if (d->name[0] == '.' || atoi(d->name) == getpid())
				continue;
			char comm[32];
			snprintf(path, sizeof path, "/proc/self/task/%s/comm", d->name);
			size_t len = read_small(path, comm, sizeof comm - 1);
			comm[len] = '\0';
			if (len && strncmp(comm, "hakmem-", 7) != 0) {
				only_ours = false;
				break;
			}
		}
	}
	close(fd);
	return only_ours;
}

static void *writer_main(void *arg)
{
	(void)arg;
	prctl(PR_SET_NAME, "hakmem-trace", 0, 0, 0);
	bool busy = true;
	for (unsigned wake = 1;; wake++) {
		uint32_t seen = hak_load_relaxed(&xkick);
		int state = hak_load_relaxed(&xstate);
		if (state == T_RECORDING && hak_load_relaxed(&xsealed_pending) < KICK_AFTER) {
			/* busy: wake every ms for the clock, write every WRITER_MS; quiet: both every
			 * WRITER_MS */
			struct timespec ts = {0, busy ? 1000000L : WRITER_MS * 1000000L};
			hak_store_relaxed(&xwriter_asleep, 1);
			syscall(SYS_futex, &xkick, FUTEX_WAIT_PRIVATE, seen, &ts, NULL, 0);
			hak_store_relaxed(&xwriter_asleep, 0);
		}
		hak_store_relaxed(&xnow, coarse_ns());
		state = hak_load_relaxed(&xstate);
		if (state == T_RECORDING && busy && wake % WRITER_MS != 0 &&
		    hak_load_relaxed(&xsealed_pending) < KICK_AFTER)
			continue;
		pthread_mutex_lock(&writer_lock);
		state = hak_load_relaxed(&xstate);
		if (state == T_RECORDING) {
			busy = pass();
			out_flush();
		} else if (state == T_STOPPING) {
			out_stopped();
		}
		state = hak_load_relaxed(&xstate);
		pthread_mutex_unlock(&writer_lock);
		if (state != T_RECORDING)
			return NULL;
		if (only_hakmem_left())
			exit(0); /* the destructor writes the rest */
	}
}

/* Starts the writer thread, signals blocked (a SIGXFSZ from a file size limit turns into an
 * EFBIG write; a SIGPIPE into EPIPE). */
static void writer_start(void)
{
	int expect = 0;
	if (!atomic_compare_exchange_strong(&xwriter_up, &expect, 1))
		return;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 << 10);
	int err = pthread_create(&writer_thread, &attr, writer_main, NULL);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		stop("cannot start the writer thread", err, false);
}

/* ---- fork ------------------------------------------------------------------------------------ */

/* The child records on, as a process of its own in the same file (a PROCESS record naming the
 * parent and which thread forked): only the forking thread lives on in it, and the blocks it
 * inherited are not traced in it (their frees are counted, not recorded), so the child's
 * section replays on its own. What the parent's threads had not written yet is the parent's. */
static int fork_locked;
static uint64_t fork_pending_n;
static uint32_t fork_pending_idx;

static void fork_prepare(void)
{
	fork_locked = 0;
	if (hak_load_relaxed(&xstate) != T_RECORDING || nested() || tls.orphan_held)
		return; /* a fork from a signal handler inside a hook: the child does not record */
	pthread_mutex_lock(&orphan_lock);
	pthread_mutex_lock(&writer_lock);
	pthread_mutex_lock(&reg_lock);
	pool_lock();
	fork_locked = 1;
	fork_pending_n = hak_add_relaxed(&xforks, 1) + 1;
	fork_pending_idx = tls.rec > TREC_ORPHAN ? tls.rec->idx : 0;
}

static void fork_parent(void)
{
	if (!fork_locked)
		return;
	pool_unlock();
	pthread_mutex_unlock(&reg_lock);
	pthread_mutex_unlock(&writer_lock);
	pthread_mutex_unlock(&orphan_lock);
	fork_locked = 0;
	struct trec *r = hook_enter();
	if (r) {
		unsigned char *w = ev_begin(r, HAK_TOP_FORK);
		if (w)
			ev_end(r, hak__trace_put_varint(w, fork_pending_n));
		hook_leave(r);
	}
}

static uint64_t make_pkey(uint64_t salt)
{
	uint64_t k = salt ^ mono_ns() ^ ((uint64_t)getpid() << 32);
	const unsigned char *rnd = (const unsigned char *)getauxval(AT_RANDOM);
	if (rnd) {
		uint64_t x;
		memcpy(&x, rnd, sizeof x);
		k ^= x;
	}
	k ^= k >> 33;
	k *= UINT64_C(0xff51afd7ed558ccd);
	k ^= k >> 33;
	k *= UINT64_C(0xc4ceb9fe1a85ec53);
	k ^= k >> 33;
	return k ? k : 1;
}

static void fork_child(void)
{
	if (!fork_locked) {
		if (hak_load_relaxed(&xstate) != T_OFF && hak_load_relaxed(&xstate) != T_FINISHED) {
			hak_store_relaxed(&xstate, T_STOPPED);
			hak_store_relaxed(&hak__xtrace_on, 0);
			fast_paths_on(false);
		}
		return;
	}
	fork_locked = 0;
	pthread_mutex_init(&orphan_lock, NULL);
	pthread_mutex_init(&writer_lock, NULL);
	pthread_mutex_init(&reg_lock, NULL);
	pool_unlock();
	/* The parent's threads are gone here, and what they recorded is the parent's to write. */
	for (struct trec *r = hak_load_relaxed(&xreg_head), *next; r; r = next) {
		next = hak_load_relaxed(&r->xnext);
		for (struct tbuf *b = r->head, *bn; b; b = bn) {
			bn = hak_load_relaxed(&b->xnext);
			buf_put(b);
			if (b == r->cur)
				break;
		}
		r->free_next = rec_pool;
		rec_pool = r;
	}
	hak_store_relaxed(&xreg_head, NULL);
	reg_tail = NULL;
	orphan_rec = NULL;
	tls.rec = tls.ready = NULL;
	hak_store_relaxed(&xnext_idx, 0);
	hak_store_relaxed(&xlive, 0);
	hak_store_relaxed(&xforks, 0);
	memset(totals, 0, sizeof totals);
	out_len = 0;
	/* The inherited blocks' ids are the parent's: the child sees none of them. */
	for (unsigned i = 0; i < SHADOW_REGIONS; i++) {
		uint64_t *base = hak_load_relaxed(&xshadow[i]);
		if (base)
			madvise(base, SHADOW_BYTES, MADV_DONTNEED);
	}
	hak_store_relaxed(&xnow, coarse_ns());
	parent_pkey = pkey;
	pkey = make_pkey(pkey);
	proc_flags = HAK_TPROC_FORKED;
	fork_thread = fork_pending_idx;
	fork_number = fork_pending_n;
	out_process();
	hak_store_relaxed(&xwriter_up, 0); /* started by the child's first call */
}

/* ---- Start and finish ---------------------------------------------------------------------- */

static bool absolute(const char *path, char *out, size_t size)
{
	if (path[0] == '/')
		return (size_t)snprintf(out, size, "%s", path) < size;
	char cwd[PATH_MAXLEN];
	if (!getcwd(cwd, sizeof cwd))
		return false;
	return (size_t)snprintf(out, size, "%s/%s", cwd, path) < size;
}

/* The parent's session, when this process was started by a process recording into `path`. */
static bool session_of(const char *path, uint64_t *parent)
{
	const char *s = hak__getenv(SESSION_VAR);
	if (!s)
		return false;
	char *colon;
	unsigned long long k = strtoull(s, &colon, 16);
	if (*colon != ':' || strcmp(colon + 1, path) != 0)
		return false;
	*parent = k;
	return true;
}

static bool write_header(int fd)
{
	HAK_BIG_BSS static char text[PATH_MAXLEN + 4096 + 512];
	HAK_BIG_BSS static unsigned char hdr[sizeof text + 16];
	char prog[256], cmd[4096], when[64];
	program_name(prog, sizeof prog);
	size_t clen = read_small("/proc/self/cmdline", cmd, sizeof cmd - 1);
	for (size_t i = 0; i < clen; i++)
		if ((unsigned char)cmd[i] < 0x20)
			cmd[i] = ' ';
	while (clen && cmd[clen - 1] == ' ')
		clen--;
	cmd[clen] = '\0';
	struct timespec now = {0, 0};
	clock_gettime(CLOCK_REALTIME, &now); /* not time(): its ifunc would run in every program's start-up */
	struct tm tm;
	gmtime_r(&now.tv_sec, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	struct timespec res = {0, 0};
	clock_getres(CLOCK_MONOTONIC_COARSE, &res);
	int n = snprintf(text, sizeof text,
			 "format=%u\nprogram=%s\ncmdline=%s\ntime=%s\nhakmem=%s\npid=%d\n"
			 "tick=CLOCK_MONOTONIC_COARSE ns, read every 1 ms (10 ms when quiet)\n"
			 "tick_resolution_ns=%lld\n",
			 HAK_TRACE_VERSION, prog, cmd, when, HAK_VERSION, (int)getpid(),
			 (long long)res.tv_sec * 1000000000LL + res.tv_nsec > 1000000 ?
				 (long long)res.tv_sec * 1000000000LL + res.tv_nsec : 1000000LL);
	if (n < 0 || (size_t)n >= sizeof text)
		n = (int)strlen(text);
	size_t len = hak__trace_header(hdr, text, (size_t)n);
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, hdr + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			hak__log("trace %s: cannot write: %s; not recording", trace_path, errno_text(w < 0 ? errno : ENOSPC));
			return false;
		}
		off += (size_t)w;
	}
	return true;
}

HAK_STARTUP void hak__trace_start(const char *path)
{
	static int atfork_done;
	if (!path || !*path || hak_load_relaxed(&xstate) != T_OFF)
		return;
	if (!absolute(path, trace_path, sizeof trace_path)) {
		hak__log("trace %s: path too long; not recording", path);
		return;
	}
	int saved = errno;
	bool descendant = session_of(trace_path, &parent_pkey);
	int fd = -1;
	/* O_NONBLOCK: a FIFO nobody reads is refused (ENXIO) instead of hanging the program here;
	 * the writes themselves block (only the writer thread makes them). */
	if (descendant) {
		fd = open(trace_path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
		descendant = fd >= 0;
	}
	if (!descendant) {
		parent_pkey = 0;
		fd = open(trace_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY |
					      O_NONBLOCK, 0666);
	}
	if (fd >= 0)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	if (fd < 0) {
		int e = errno;
		hak__log("trace %s: cannot open: %s; not recording", trace_path,
			 e == ELOOP ? "is a symbolic link (refused)" : errno_text(e));
		errno = saved;
		return;
	}
	trace_fd = fd;
	if (!descendant && !write_header(fd)) {
		close(fd);
		trace_fd = -1;
		errno = saved;
		return;
	}
	out = mmap(NULL, OUT_CAP, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (out == MAP_FAILED) {
		hak__log("trace %s: out of memory; not recording", trace_path);
		close(fd);
		trace_fd = -1;
		errno = saved;
		return;
	}
	hak_store_relaxed(&xnow, coarse_ns());
	pkey = make_pkey((uint64_t)(uintptr_t)&pkey);
	proc_flags = descendant ? HAK_TPROC_EXECED : 0;
	/* The programs this one starts append to the same file, naming this process as parent. */
	char sess[PATH_MAXLEN + 32];
	snprintf(sess, sizeof sess, "%llx:%s", (unsigned long long)pkey, trace_path);
	setenv(SESSION_VAR, sess, 1);
	if (hak__getenv("HAKMEM_TRACE"))
		setenv("HAKMEM_TRACE", trace_path, 1); /* absolute: they may run elsewhere */
	out_process();
	if (!atfork_done) {
		pthread_atfork(fork_prepare, fork_parent, fork_child);
		atfork_done = 1;
	}
	hak_store_relaxed(&xstate, T_RECORDING);
	writer_start();
	if (hak_load_relaxed(&xstate) == T_RECORDING) {
		fast_paths_off();
		hak_store_relaxed(&hak__xtrace_on, 1);
		hak__accept_mark = HAK_ACCEPT_TRACED; /* states made from now on (thread.c) */
		hak__threads_set_exit_hook(hak__trace_thread_exit);
		hak__threads_each(disguise, NULL);
	}
	errno = saved;
}

HAK_STARTUP void hak__trace_finish(void)
{
	int state = hak_load_relaxed(&xstate);
	if (state != T_RECORDING && state != T_STOPPING)
		return;
	int saved = errno;
	struct trec *held = hold();
	pthread_mutex_lock(&writer_lock);
	state = hak_load_relaxed(&xstate);
	if (state == T_RECORDING) {
		hak_store_relaxed(&xstate, T_FINISHED); /* no event starts after this */
		pass();
		out_end();
		out_flush();
	} else if (state == T_STOPPING) {
		out_stopped();
	}
	pthread_mutex_unlock(&writer_lock);
	unhold(held);
	errno = saved;
}
