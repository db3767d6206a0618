/* replayer.c: `hakmem-replay`, the program `hakmem replay` runs once per allocator and
 * configuration, with the allocator under test preloaded. It streams one process of a trace
 * (trace_format.h) and makes the same calls from the same number of threads: each recorded
 * thread gets a thread of its own, fed with that thread's events; a block made by one thread and
 * freed by another passes between them through per-thread tables, and an operation on a block
 * the other thread has not made yet waits for it (the only order kept: otherwise as fast as
 * possible, or at the recorded times with --timed). Every block is filled with a pattern when
 * made and checked when freed or reallocated, as in the bench programs, so a replay also finds
 * heap corruption. Memory: the live blocks and a bounded read-ahead, never the whole trace. Its
 * own memory comes from mmap, so the allocator under test serves only the recorded calls.
 *
 *   hakmem-replay [--process N] [--timed] TRACE   replay; prints one RESULT line (bench format)
 *   hakmem-replay --info TRACE                     one JSON line per process, then a summary
 * Exit: 0, 2 usage, 3 corruption, 4 the allocator returned NULL, 5 system, 6 damaged trace. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "trace_format.h"

enum { EXIT_TRACE = 6 };
#define READ_AHEAD ((size_t)4 << 20) /* queued event bytes before the reader waits: part of the RSS */
#define MAX_THREADS (HAK_TRACE_IDX_MAX + 1)

static const char *trace_file = "?";

/* ---- Memory that is not the allocator's --------------------------------------------------- */

static void *pmap(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		bench_fail("hakmem-replay", "mmap", errno);
	return p;
}

/* Messages without stdio's buffer (stdio would allocate from the allocator under test). */
__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	if (write(2, line, (size_t)n) < 0) {
	}
}

__attribute__((noreturn, format(printf, 2, 3))) static void die(int code, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	say("hakmem-replay: %s: %s", trace_file, line);
	_exit(code);
}

/* ---- The allocator's functions ------------------------------------------------------------- */

/* The optional entry points, taken only from the object that provides malloc (a glibc
 * memalign on another allocator's heap would corrupt it); missing ones are emulated. */
static void *(*fn_memalign)(size_t, size_t);
static void *(*fn_aligned_alloc)(size_t, size_t);
static int (*fn_posix_memalign)(void **, size_t, size_t);
static void *(*fn_valloc)(size_t);
static void *(*fn_pvalloc)(size_t);
static void (*fn_free_sized)(void *, size_t);
static void (*fn_free_aligned_sized)(void *, size_t, size_t);
static int (*fn_malloc_trim)(size_t);
static char emulated[256];

static void *same_object(const char *name)
{
	void *s = dlsym(RTLD_DEFAULT, name), *m = dlsym(RTLD_DEFAULT, "malloc");
	Dl_info a, b;
	if (s && m && dladdr(s, &a) && dladdr(m, &b) && a.dli_fbase == b.dli_fbase)
		return s;
	return NULL;
}

static void resolve(void)
{
	fn_memalign = (void *(*)(size_t, size_t))same_object("memalign");
	fn_aligned_alloc = (void *(*)(size_t, size_t))same_object("aligned_alloc");
	fn_posix_memalign = (int (*)(void **, size_t, size_t))same_object("posix_memalign");
	fn_valloc = (void *(*)(size_t))same_object("valloc");
	fn_pvalloc = (void *(*)(size_t))same_object("pvalloc");
	fn_free_sized = (void (*)(void *, size_t))same_object("free_sized");
	fn_free_aligned_sized = (void (*)(void *, size_t, size_t))same_object("free_aligned_sized");
	fn_malloc_trim = (int (*)(size_t))same_object("malloc_trim");
}

static void note_emulated(const char *name)
{
	if (strstr(emulated, name))
		return;
	size_t l = strlen(emulated);
	snprintf(emulated + l, sizeof emulated - l, "%s%s", l ? "," : "", name);
}

static void *aligned(unsigned kind, size_t align, size_t n)
{
	void *p = NULL;
	switch (kind) {
	case HAK_TALIGN_MEMALIGN:
		if (fn_memalign)
			return fn_memalign(align, n);
		break;
	case HAK_TALIGN_ALIGNED_ALLOC:
		if (fn_aligned_alloc)
			return fn_aligned_alloc(align, n);
		break;
	case HAK_TALIGN_POSIX_MEMALIGN:
		break;
	case HAK_TALIGN_VALLOC:
		if (fn_valloc)
			return fn_valloc(n);
		break;
	case HAK_TALIGN_PVALLOC:
		if (fn_pvalloc)
			return fn_pvalloc(n);
		break;
	}
	if (kind != HAK_TALIGN_POSIX_MEMALIGN)
		note_emulated(kind == HAK_TALIGN_MEMALIGN ? "memalign" : kind == HAK_TALIGN_ALIGNED_ALLOC ? "aligned_alloc"
			      : kind == HAK_TALIGN_VALLOC ? "valloc" : "pvalloc");
	if (fn_posix_memalign) {
		if (align < sizeof(void *))
			align = sizeof(void *);
		return fn_posix_memalign(&p, align, n) == 0 ? p : NULL;
	}
	note_emulated("posix_memalign");
	return fn_aligned_alloc ? fn_aligned_alloc(align, (n + align - 1) & ~(align - 1)) : NULL;
}

/* ---- Per-thread block tables --------------------------------------------------------------- */

struct slot {
	uint64_t seq; /* 0: empty */
	void *ptr;
	uint64_t size;
};

struct rthread;
struct table {
	pthread_mutex_t lock;
	pthread_cond_t made;       /* done grew, or the thread finished */
	struct slot *s;
	size_t cap, used;          /* power of two; used * 2 <= cap */
	uint64_t done;             /* blocks this thread has made so far */
	int waiters;
};

static size_t slot_of(uint64_t seq, size_t cap)
{
	return (size_t)((seq * UINT64_C(0x9E3779B97F4A7C15)) >> 20) & (cap - 1);
}

static void table_grow(struct table *t)
{
	size_t cap = t->cap ? t->cap * 2 : 1024;
	struct slot *s = pmap(cap * sizeof *s);
	for (size_t i = 0; i < t->cap; i++)
		if (t->s[i].seq) {
			size_t j = slot_of(t->s[i].seq, cap);
			while (s[j].seq)
				j = (j + 1) & (cap - 1);
			s[j] = t->s[i];
		}
	if (t->s)
		munmap(t->s, t->cap * sizeof *s);
	t->s = s;
	t->cap = cap;
}

/* lock held */
static void table_put(struct table *t, uint64_t seq, void *ptr, uint64_t size)
{
	if ((t->used + 1) * 2 > t->cap)
		table_grow(t);
	size_t i = slot_of(seq, t->cap);
	while (t->s[i].seq)
		i = (i + 1) & (t->cap - 1);
	t->s[i] = (struct slot){seq, ptr, size};
	t->used++;
}

/* lock held; false when absent. Backward-shift deletion keeps the probes short without
 * tombstones. */
static bool table_take(struct table *t, uint64_t seq, struct slot *out)
{
	if (!t->cap)
		return false;
	size_t mask = t->cap - 1, i = slot_of(seq, t->cap);
	while (t->s[i].seq != seq) {
		if (!t->s[i].seq)
			return false;
		i = (i + 1) & mask;
	}
	*out = t->s[i];
	t->used--;
	for (size_t j = (i + 1) & mask; t->s[j].seq; j = (j + 1) & mask) {
		size_t home = slot_of(t->s[j].seq, t->cap);
		/* move j into the hole at i unless its home lies cyclically in (i, j] */
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			t->s[i] = t->s[j];
			i = j;
		}
	}
	t->s[i].seq = 0;
	return true;
}

/* lock held: the table of a thread that finished goes once its last block is gone. */
static void table_release_if_done(struct table *t, bool finished)
{
	if (finished && t->used == 0 && t->s) {
		munmap(t->s, t->cap * sizeof *t->s);
		t->s = NULL;
		t->cap = 0;
	}
}

/* ---- Threads and their queues ---------------------------------------------------------------- */

struct chunk {
	struct chunk *next;
	size_t len, mapped;
	unsigned char data[];
};

struct rthread {
	uint32_t idx;
	uint64_t live;                 /* threads live when it started, in the recording */
	uint64_t start_after;          /* EXITED records read before its THREAD record (gate) */
	uint64_t end_seq;              /* the number of its EXITED record, 0 before it is read (gate) */
	uint64_t base_tick;
	struct table tab;
	pthread_mutex_t qlock;         /* the queue */
	pthread_cond_t qcond;
	struct chunk *qhead, *qtail;
	bool closed;                   /* no more chunks come */
	int state;                     /* 0 made, 1 started, 2 finished (gate) */
	pthread_t thread;
	_Atomic uint64_t xops;         /* operations replayed (the sampler reads them) */
	uint64_t counts[HAK_TOP_COUNT];
	uint64_t moved;                /* reallocs that moved here */
	struct rthread *next_pending;  /* made, not started yet (gate) */
	struct rthread *next_all;
};

static struct rthread **threads;  /* by index; MAX_THREADS pointers, NORESERVE */
static struct rthread *all_threads, *pending_head, *pending_tail;
static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int running, blocked, dep_blocked, max_running;
static unsigned char *exited_done; /* by end_seq: that thread finished here (gate) */
static uint64_t exited_read, exited_prefix; /* EXITED records read; all up to prefix are done */
static unsigned started_total;
static bool reader_done;
static _Atomic size_t xqueued;
static bool timed;
static uint64_t origin_tick; /* first CLOCK record of the process */
static double start_time;

static void gate_signal(void)
{
	pthread_cond_broadcast(&gate_cond);
}

/* A thread starts or stops waiting: for input (the reader), or for a block (dep). */
static void set_blocked(int delta, bool dep)
{
	pthread_mutex_lock(&gate);
	blocked += delta;
	if (dep)
		dep_blocked += delta;
	pthread_mutex_unlock(&gate);
	if (delta > 0)
		gate_signal();
}

/* gate held */
static void exited_mark(uint64_t end_seq)
{
	exited_done[end_seq] = 1;
	while (exited_prefix < exited_read && exited_done[exited_prefix + 1])
		exited_prefix++;
}

static struct rthread *thread_make(uint32_t idx, uint64_t live, uint64_t base_tick)
{
	static struct rthread *block;
	static size_t left;
	if (!left) { /* the reader's only: 64 at a time, a page each would add up */
		block = pmap(64 * sizeof *block);
		left = 64;
	}
	struct rthread *t = block++;
	left--;
	t->idx = idx;
	t->live = live;
	t->base_tick = base_tick;
	t->start_after = exited_read;
	pthread_mutex_init(&t->tab.lock, NULL);
	pthread_cond_init(&t->tab.made, NULL);
	pthread_mutex_init(&t->qlock, NULL);
	pthread_cond_init(&t->qcond, NULL);
	pthread_mutex_lock(&gate);
	t->next_all = all_threads;
	all_threads = t;
	if (pending_tail)
		pending_tail->next_pending = t;
	else
		pending_head = t;
	pending_tail = t;
	__atomic_store_n(&threads[idx], t, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&gate);
	gate_signal();
	return t;
}

static struct chunk *chunk_pop(struct rthread *t)
{
	pthread_mutex_lock(&t->qlock);
	bool waiting = false;
	while (!t->qhead && !t->closed) {
		if (!waiting) {
			waiting = true;
			pthread_mutex_unlock(&t->qlock);
			set_blocked(+1, false);
			pthread_mutex_lock(&t->qlock);
			continue;
		}
		pthread_cond_wait(&t->qcond, &t->qlock);
	}
	struct chunk *c = t->qhead;
	if (c) {
		t->qhead = c->next;
		if (!t->qhead)
			t->qtail = NULL;
	}
	pthread_mutex_unlock(&t->qlock);
	if (waiting)
		set_blocked(-1, false);
	return c;
}

static void chunk_push(struct rthread *t, const unsigned char *ev, size_t len)
{
	size_t mapped = (sizeof(struct chunk) + len + 4095) & ~(size_t)4095;
	struct chunk *c = pmap(mapped);
	c->len = len;
	c->mapped = mapped;
	c->next = NULL;
	memcpy(c->data, ev, len);
	atomic_fetch_add(&xqueued, mapped);
	pthread_mutex_lock(&t->qlock);
	if (t->qtail)
		t->qtail->next = c;
	else
		t->qhead = c;
	t->qtail = c;
	pthread_cond_signal(&t->qcond);
	pthread_mutex_unlock(&t->qlock);
}

static void queue_close(struct rthread *t)
{
	pthread_mutex_lock(&t->qlock);
	t->closed = true;
	pthread_cond_signal(&t->qcond);
	pthread_mutex_unlock(&t->qlock);
}

/* ---- Replaying one thread --------------------------------------------------------------------- */

static uint64_t tag_of(uint64_t id)
{
	uint64_t x = id * UINT64_C(0x9E3779B97F4A7C15);
	return x ^ (x >> 29);
}

static struct rthread *thread_of(uint32_t idx)
{
	struct rthread *t = __atomic_load_n(&threads[idx], __ATOMIC_ACQUIRE);
	if (t)
		return t;
	/* Its THREAD record has not been read yet: wait for the reader. */
	set_blocked(+1, true);
	pthread_mutex_lock(&gate);
	while (!(t = threads[idx]) && !reader_done) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&gate_cond, &gate, &ts);
	}
	pthread_mutex_unlock(&gate);
	set_blocked(-1, true);
	if (!t)
		die(EXIT_TRACE, "a block of thread %u is used, but the trace has no thread %u", idx, idx);
	return t;
}

/* The block `id` (made by its thread, maybe not yet), out of its table. */
static struct slot take(struct rthread *me, uint64_t id)
{
	uint32_t idx = HAK_TRACE_ID_IDX(id);
	uint64_t seq = HAK_TRACE_ID_SEQ(id);
	struct rthread *o = idx == me->idx ? me : thread_of(idx);
	struct table *t = &o->tab;
	struct slot s;
	bool waited = false;
	pthread_mutex_lock(&t->lock);
	while (seq > t->done) {
		pthread_mutex_lock(&gate);
		bool gone = o->state == 2;
		pthread_mutex_unlock(&gate);
		if (gone)
			die(EXIT_TRACE, "thread %u uses block %llu of thread %u, which that thread never made (a "
			    "recording cut short?)", me->idx, (unsigned long long)seq, idx);
		if (!waited) {
			waited = true;
			pthread_mutex_unlock(&t->lock);
			set_blocked(+1, true);
			pthread_mutex_lock(&t->lock);
			continue;
		}
		t->waiters++;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&t->made, &t->lock, &ts);
		t->waiters--;
	}
	bool found = table_take(t, seq, &s);
	table_release_if_done(t, __atomic_load_n(&o->state, __ATOMIC_ACQUIRE) == 2);
	pthread_mutex_unlock(&t->lock);
	if (waited)
		set_blocked(-1, true);
	if (!found)
		die(EXIT_TRACE, "thread %u uses block %llu of thread %u, which is not live (used twice): "
		    "damaged trace", me->idx, (unsigned long long)seq, idx);
	return s;
}

static void made(struct rthread *me, uint64_t id, void *p, uint64_t size)
{
	struct table *t = &me->tab;
	pthread_mutex_lock(&t->lock);
	table_put(t, HAK_TRACE_ID_SEQ(id), p, size);
	t->done = HAK_TRACE_ID_SEQ(id);
	if (t->waiters)
		pthread_cond_broadcast(&t->made);
	pthread_mutex_unlock(&t->lock);
}

static void check(const struct slot *s, uint64_t id)
{
	if (s->ptr && !block_ok(s->ptr, (size_t)s->size, tag_of(id)))
		bench_corrupt("hakmem-replay", s->ptr, (size_t)s->size);
}

static _Noreturn void nomem(const char *what, uint64_t n)
{
	die(BENCH_EXIT_NOMEM, "%s of %llu bytes returned NULL", what, (unsigned long long)n);
}

static void sleep_until(uint64_t tick)
{
	if (tick <= origin_tick)
		return;
	double due = (double)(tick - origin_tick) * 1e-9, now = now_sec() - start_time;
	if (due > now + 0.001)
		sleep_sec(due - now);
}

static void run_event(struct rthread *me, const struct hak_trace_event *ev)
{
	void *p;
	struct slot s = {0, NULL, 0};
	if (timed)
		sleep_until(ev->tick);
	me->counts[ev->op]++;
	switch (ev->op) {
	case HAK_TOP_MALLOC:
		p = malloc((size_t)ev->size);
		if (!p && ev->size)
			nomem("malloc", ev->size);
		block_fill(p, (size_t)ev->size, tag_of(ev->id));
		made(me, ev->id, p, ev->size);
		break;
	case HAK_TOP_CALLOC: {
		size_t n = (size_t)(ev->count * ev->size);
		p = calloc((size_t)ev->count, (size_t)ev->size);
		if (!p && n)
			nomem("calloc", n);
		if (p && n) {
			const unsigned char *b = p;
			if (b[0] || b[n - 1] || b[n / 2])
				bench_corrupt("hakmem-replay (calloc not zeroed)", p, n);
		}
		block_fill(p, n, tag_of(ev->id));
		made(me, ev->id, p, n);
		break;
	}
	case HAK_TOP_MEMALIGN: {
		size_t align = (size_t)1 << ev->lg_align;
		p = aligned(ev->kind, align, (size_t)ev->size);
		if (!p)
			nomem("aligned allocation", ev->size);
		if ((uintptr_t)p & (align - 1))
			die(BENCH_EXIT_CORRUPT, "the allocator returned %p for an alignment of %zu", p, align);
		block_fill(p, (size_t)ev->size, tag_of(ev->id));
		made(me, ev->id, p, ev->size);
		break;
	}
	case HAK_TOP_REALLOC:
	case HAK_TOP_REALLOC_MOVED: {
		if (ev->ref) {
			s = take(me, ev->ref);
			check(&s, ev->ref);
		}
		p = realloc(s.ptr, (size_t)ev->size);
		if (!p && ev->size)
			nomem("realloc", ev->size);
		if (p && s.ptr) {
			/* What the old block held must have come along. */
			size_t keep = (size_t)(s.size < ev->size ? s.size : ev->size);
			uint64_t old = tag_of(ev->ref);
			const unsigned char *b = p;
			for (size_t i = 0; i < keep && i < 8; i++)
				if (b[i] != (unsigned char)(old >> (8 * i)))
					bench_corrupt("hakmem-replay (realloc lost the contents)", p, keep);
			if (s.size > 8 && ev->size >= s.size && b[s.size - 1] != (unsigned char)(old ^ 0xA5))
				bench_corrupt("hakmem-replay (realloc lost the contents)", p, (size_t)s.size);
		}
		if (p != s.ptr && s.ptr)
			me->moved++;
		block_fill(p, (size_t)ev->size, tag_of(ev->id));
		made(me, ev->id, p, ev->size);
		break;
	}
	case HAK_TOP_FREE:
		s = take(me, ev->ref);
		check(&s, ev->ref);
		free(s.ptr);
		break;
	case HAK_TOP_FREE_SIZED:
		s = take(me, ev->ref);
		check(&s, ev->ref);
		if (ev->lg_align && fn_free_aligned_sized) {
			fn_free_aligned_sized(s.ptr, (size_t)1 << ev->lg_align, (size_t)s.size);
		} else if (!ev->lg_align && fn_free_sized) {
			fn_free_sized(s.ptr, (size_t)s.size);
		} else {
			note_emulated(ev->lg_align ? "free_aligned_sized" : "free_sized");
			free(s.ptr);
		}
		break;
	case HAK_TOP_TRIM:
		if (fn_malloc_trim)
			fn_malloc_trim((size_t)ev->size);
		else
			note_emulated("malloc_trim");
		break;
	default: /* thread_end, fork: nothing to call */
		break;
	}
	atomic_store_explicit(&me->xops, atomic_load_explicit(&me->xops, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

static void *thread_main(void *arg)
{
	struct rthread *me = arg;
	struct hak_trace_decoder d = {.idx = me->idx, .tick = me->base_tick};
	char err[320];
	bool ended = false;
	struct chunk *c;
	while (!ended && (c = chunk_pop(me)) != NULL) {
		const unsigned char *p = c->data, *end = c->data + c->len;
		while (p < end) {
			struct hak_trace_event ev;
			if (hak__trace_decode(&d, &p, end, &ev, err, sizeof err) != 0)
				die(EXIT_TRACE, "%s", err);
			run_event(me, &ev);
			if (ev.op == HAK_TOP_THREAD_END) {
				ended = true;
				break;
			}
		}
		atomic_fetch_sub(&xqueued, c->mapped);
		munmap(c, c->mapped);
		gate_signal();
	}
	pthread_mutex_lock(&me->tab.lock);
	pthread_mutex_lock(&gate);
	__atomic_store_n(&me->state, 2, __ATOMIC_RELEASE);
	running--;
	if (me->end_seq)
		exited_mark(me->end_seq);
	pthread_mutex_unlock(&gate);
	table_release_if_done(&me->tab, true);
	pthread_cond_broadcast(&me->tab.made);
	pthread_mutex_unlock(&me->tab.lock);
	gate_signal();
	return NULL;
}

/* gate held. Starts the pending threads, in the order of the recording, each once the threads
 * that had exited when it was announced are done here (so as many run at once as in the
 * recording), or at once when every running thread waits for a block. */
static void start_pending(bool all)
{
	while (pending_head) {
		struct rthread *t = pending_head;
		if (!all && running > 0 && running > dep_blocked && exited_prefix < t->start_after)
			return;
		pending_head = t->next_pending;
		if (!pending_head)
			pending_tail = NULL;
		t->state = 1;
		running++;
		started_total++;
		if (running > max_running)
			max_running = running;
		int err = pthread_create(&t->thread, NULL, thread_main, t);
		if (err)
			bench_fail("hakmem-replay", "pthread_create", err);
	}
}

static void gate_wait_ms(int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long)ms * 1000000L;
	while (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&gate_cond, &gate, &ts);
}

/* ---- RSS over the trace ------------------------------------------------------------------------ */

enum { SAMPLES = 4096 };
static struct {
	pthread_t thread;
	atomic_int xstop;
	int n;
	unsigned every; /* keep one sample in `every` (doubles when full) */
	uint64_t ops[SAMPLES];
	long kb[SAMPLES];
} rss;

static uint64_t ops_now(void)
{
	uint64_t n = 0;
	pthread_mutex_lock(&gate);
	for (struct rthread *t = all_threads; t; t = t->next_all)
		n += atomic_load_explicit(&t->xops, memory_order_relaxed);
	pthread_mutex_unlock(&gate);
	return n;
}

static void rss_sample(void)
{
	if (rss.n == SAMPLES) {
		for (int i = 0; i < SAMPLES / 2; i++) {
			rss.ops[i] = rss.ops[2 * i];
			rss.kb[i] = rss.kb[2 * i];
		}
		rss.n = SAMPLES / 2;
		rss.every *= 2;
	}
	rss.ops[rss.n] = ops_now();
	rss.kb[rss.n++] = rss_now_kb();
}

static void *rss_main(void *arg)
{
	(void)arg;
	unsigned tick = 0;
	while (!atomic_load(&rss.xstop)) {
		if (++tick % rss.every == 0)
			rss_sample();
		sleep_sec(0.002);
	}
	return NULL;
}

/* `points` RSS values at evenly spaced fractions of the operations (interpolated). */
static void rss_series(char *buf, size_t len, int points, uint64_t total)
{
	size_t used = 0;
	buf[0] = '\0';
	if (!rss.n)
		return;
	int j = 0;
	for (int i = 0; i < points; i++) {
		uint64_t at = points == 1 ? total : total * (uint64_t)i / (uint64_t)(points - 1);
		while (j + 1 < rss.n && rss.ops[j + 1] < at)
			j++;
		long kb = rss.kb[j];
		if (j + 1 < rss.n && rss.ops[j + 1] > rss.ops[j] && at > rss.ops[j]) {
			double f = (double)(at - rss.ops[j]) / (double)(rss.ops[j + 1] - rss.ops[j]);
			kb = rss.kb[j] + (long)(f * (double)(rss.kb[j + 1] - rss.kb[j]));
		}
		int w = snprintf(buf + used, len - used, "%s%ld", i ? "," : "", kb);
		if (w < 0 || (size_t)w >= len - used)
			break;
		used += (size_t)w;
	}
}

/* ---- Reading the trace ------------------------------------------------------------------------- */

static struct hak_trace_reader *reader;
static int trace_fd = -1;

static void open_trace(const char *path)
{
	trace_file = path;
	trace_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (trace_fd < 0)
		die(BENCH_EXIT_USAGE, "cannot open: %s", strerror(errno));
	reader = pmap(sizeof *reader);
	void *buf = pmap(HAK_TRACE_READ_BUF);
	if (hak__trace_open(reader, hak__trace_read_fd, &trace_fd, buf) != 0)
		die(EXIT_TRACE, "%s", reader->err);
}

static int replay(uint64_t want_index, const char *path)
{
	open_trace(path);
	resolve();
	threads = pmap(MAX_THREADS * sizeof *threads);
	exited_done = pmap(MAX_THREADS + 1);
	char err[320];
	uint64_t pkey = 0, index = 0;
	struct hak_trace_record rec;
	int rc;
	bool truncated = false, stopped = false, ended = false;
	rss.every = 1;
	start_time = now_sec();
	int perr = pthread_create(&rss.thread, NULL, rss_main, NULL);
	if (perr)
		bench_fail("hakmem-replay", "pthread_create", perr);
	while ((rc = hak__trace_next(reader, &rec)) == 1) {
		if (rec.type == HAK_TREC_PROCESS) {
			if (pkey)
				continue;
			if (++index == want_index)
				pkey = rec.pkey;
			continue;
		}
		if (!pkey || rec.pkey != pkey)
			continue;
		if (rec.type == HAK_TREC_THREAD) {
			struct hak_trace_thread th;
			if (hak__trace_parse_thread(&rec, &th, err, sizeof err))
				die(EXIT_TRACE, "%s", err);
			if (threads[th.idx])
				die(EXIT_TRACE, "offset %llu: thread %u announced twice", (unsigned long long)rec.offset, th.idx);
			thread_make(th.idx, th.live, th.tick);
			if (!origin_tick)
				origin_tick = th.tick;
		} else if (rec.type == HAK_TREC_EVENTS) {
			uint32_t idx;
			const unsigned char *ev;
			size_t len;
			if (hak__trace_parse_events(&rec, &idx, &ev, &len, err, sizeof err))
				die(EXIT_TRACE, "%s", err);
			struct rthread *t = threads[idx];
			if (!t)
				die(EXIT_TRACE, "offset %llu: events of thread %u before its THREAD record",
				    (unsigned long long)rec.offset, idx);
			chunk_push(t, ev, len);
		} else if (rec.type == HAK_TREC_CLOCK) {
			uint64_t tick, ns;
			if (hak__trace_parse_clock(&rec, &tick, &ns, err, sizeof err))
				die(EXIT_TRACE, "%s", err);
			if (!origin_tick)
				origin_tick = tick;
		} else if (rec.type == HAK_TREC_EXITED) {
			uint32_t idx;
			if (hak__trace_parse_exited(&rec, &idx, err, sizeof err))
				die(EXIT_TRACE, "%s", err);
			struct rthread *t = threads[idx];
			if (!t || t->end_seq)
				die(EXIT_TRACE, "offset %llu: thread %u exits without being announced, or twice",
				    (unsigned long long)rec.offset, idx);
			pthread_mutex_lock(&gate);
			t->end_seq = ++exited_read;
			if (t->state == 2)
				exited_mark(t->end_seq);
			pthread_mutex_unlock(&gate);
		} else if (rec.type == HAK_TREC_STOPPED) {
			stopped = true;
		} else if (rec.type == HAK_TREC_END) {
			ended = true;
			break;
		}
		/* Start what may start; read on while the read-ahead is small or nobody can move. */
		pthread_mutex_lock(&gate);
		start_pending(false);
		while (atomic_load(&xqueued) > READ_AHEAD && running > blocked) {
			gate_wait_ms(10);
			start_pending(false);
		}
		pthread_mutex_unlock(&gate);
	}
	if (rc < 0) {
		if (!strstr(reader->err, "truncated"))
			die(EXIT_TRACE, "%s", reader->err);
		truncated = true; /* replay what is there */
		say("hakmem-replay: %s: %s; replaying what was recorded", path, reader->err);
	}
	if (!pkey)
		die(want_index > 1 ? BENCH_EXIT_USAGE : EXIT_TRACE, "no process %llu in the trace (%llu found)",
		    (unsigned long long)want_index, (unsigned long long)index);
	pthread_mutex_lock(&gate);
	reader_done = true;
	pthread_mutex_unlock(&gate);
	gate_signal();
	for (struct rthread *t = all_threads; t; t = t->next_all)
		queue_close(t);
	/* Every thread runs to its end, still started in turn; a replay where all wait for ever is
	 * a damaged trace. */
	double stuck_since = 0;
	pthread_mutex_lock(&gate);
	while (running > 0 || pending_head) {
		start_pending(false);
		if (running > 0 && running == dep_blocked && !pending_head) {
			if (!stuck_since)
				stuck_since = now_sec();
			else if (now_sec() - stuck_since > 5)
				die(EXIT_TRACE, "replay stuck: every thread waits for a block no thread makes");
		} else {
			stuck_since = 0;
		}
		if (running > 0)
			gate_wait_ms(50);
	}
	pthread_mutex_unlock(&gate);
	for (struct rthread *t = all_threads; t; t = t->next_all)
		pthread_join(t->thread, NULL);
	double secs = now_sec() - start_time;
	atomic_store(&rss.xstop, 1);
	pthread_join(rss.thread, NULL);
	uint64_t total = ops_now(), c[HAK_TOP_COUNT] = {0}, moved = 0;
	for (struct rthread *t = all_threads; t; t = t->next_all) {
		for (unsigned i = 0; i < HAK_TOP_COUNT; i++)
			c[i] += t->counts[i];
		moved += t->moved;
	}
	rss_sample();
	static char series[1024], line[4096];
	rss_series(series, sizeof series, 24, total);
	snprintf(line, sizeof line,
		 "RESULT workload=replay threads=%d ops=%llu secs=%.6f ops_per_sec=%.0f peak_rss_kb=%ld "
		 "final_rss_kb=%ld mappings=%ld rss_kb_series=%s malloc=%llu free=%llu calloc=%llu realloc=%llu "
		 "realloc_moved=%llu memalign=%llu free_sized=%llu trim=%llu thread_end=%llu fork=%llu "
		 "moved_here=%llu threads_created=%u process=%llu truncated=%d stopped=%d ended=%d emulated=%s\n",
		 max_running, (unsigned long long)total, secs, secs > 0 ? (double)total / secs : 0,
		 rss_peak_kb(), rss_now_kb(), mappings_now(), series[0] ? series : "-",
		 (unsigned long long)c[HAK_TOP_MALLOC], (unsigned long long)c[HAK_TOP_FREE],
		 (unsigned long long)c[HAK_TOP_CALLOC], (unsigned long long)c[HAK_TOP_REALLOC],
		 (unsigned long long)c[HAK_TOP_REALLOC_MOVED], (unsigned long long)c[HAK_TOP_MEMALIGN],
		 (unsigned long long)c[HAK_TOP_FREE_SIZED], (unsigned long long)c[HAK_TOP_TRIM],
		 (unsigned long long)c[HAK_TOP_THREAD_END], (unsigned long long)c[HAK_TOP_FORK],
		 (unsigned long long)moved, started_total, (unsigned long long)want_index, truncated, stopped,
		 ended, emulated[0] ? emulated : "-");
	if (write(1, line, strlen(line)) < 0)
		return BENCH_EXIT_SYSTEM;
	return 0;
}

/* ---- --info: what a trace holds ---------------------------------------------------------------- */

struct pinfo {
	uint64_t pkey, pid, parent, flags, fork_number;
	uint32_t fork_thread;
	char program[128], cmdline[512];
	uint64_t threads, max_live, events, counts[HAK_TOP_COUNT];
	uint64_t first_tick, last_tick;
	uint64_t end_counts[HAK_TRACE_COUNT_N];
	bool has_end, stopped;
};

struct dec {
	uint64_t pkey; /* 0: empty */
	uint32_t idx;
	struct hak_trace_decoder d;
};

static void json_string(char *out, size_t size, const char *s, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o + 8 < size; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\') {
			out[o++] = '\\';
			out[o++] = (char)ch;
		} else if (ch < 0x20 || ch == 0x7f) {
			o += (size_t)snprintf(out + o, size - o, ch ? "\\u%04x" : " ", ch);
		} else {
			out[o++] = (char)ch;
		}
	}
	while (o && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

static int info(const char *path)
{
	open_trace(path);
	enum { MAXP = 4096 };
	struct pinfo *ps = pmap(MAXP * sizeof *ps);
	size_t np = 0, dcap = 1 << 16, dn = 0;
	struct dec *ds = pmap(dcap * sizeof *ds);
	struct hak_trace_record rec;
	char err[320], bad[400] = "";
	int rc;
	uint64_t records = 0;
	while ((rc = hak__trace_next(reader, &rec)) == 1) {
		records++;
		struct pinfo *pi = NULL;
		for (size_t i = np; i-- > 0;)
			if (ps[i].pkey == rec.pkey) {
				pi = &ps[i];
				break;
			}
		if (rec.type == HAK_TREC_PROCESS) {
			struct hak_trace_process pr;
			if (hak__trace_parse_process(&rec, &pr, err, sizeof err)) {
				snprintf(bad, sizeof bad, "%s", err);
				break;
			}
			if (pi || np == MAXP)
				continue;
			pi = &ps[np++];
			pi->pkey = pr.pkey;
			pi->pid = pr.pid;
			pi->parent = pr.parent;
			pi->flags = pr.flags;
			pi->fork_thread = pr.fork_thread;
			pi->fork_number = pr.fork_number;
			json_string(pi->program, sizeof pi->program, pr.program, pr.program_len);
			json_string(pi->cmdline, sizeof pi->cmdline, pr.cmdline, pr.cmdline_len);
			continue;
		}
		if (!pi) {
			snprintf(bad, sizeof bad, "offset %llu: record of a process without a PROCESS record",
				 (unsigned long long)rec.offset);
			break;
		}
		if (rec.type == HAK_TREC_THREAD || rec.type == HAK_TREC_EVENTS) {
			uint32_t idx;
			struct hak_trace_thread th = {0};
			const unsigned char *ev = NULL;
			size_t len = 0;
			if (rec.type == HAK_TREC_THREAD ? hak__trace_parse_thread(&rec, &th, err, sizeof err)
							: hak__trace_parse_events(&rec, &idx, &ev, &len, err, sizeof err)) {
				snprintf(bad, sizeof bad, "%s", err);
				break;
			}
			if (rec.type == HAK_TREC_THREAD)
				idx = th.idx;
			if ((dn + 1) * 2 > dcap) {
				size_t ncap = dcap * 2;
				struct dec *nd = pmap(ncap * sizeof *nd);
				for (size_t i = 0; i < dcap; i++)
					if (ds[i].pkey) {
						size_t j = (size_t)((ds[i].pkey ^ ds[i].idx * UINT64_C(0x9E3779B97F4A7C15)) >> 7) & (ncap - 1);
						while (nd[j].pkey)
							j = (j + 1) & (ncap - 1);
						nd[j] = ds[i];
					}
				munmap(ds, dcap * sizeof *ds);
				ds = nd;
				dcap = ncap;
			}
			size_t j = (size_t)((rec.pkey ^ idx * UINT64_C(0x9E3779B97F4A7C15)) >> 7) & (dcap - 1);
			while (ds[j].pkey && !(ds[j].pkey == rec.pkey && ds[j].idx == idx))
				j = (j + 1) & (dcap - 1);
			struct dec *d = &ds[j];
			if (rec.type == HAK_TREC_THREAD) {
				if (d->pkey) {
					snprintf(bad, sizeof bad, "offset %llu: thread %u announced twice",
						 (unsigned long long)rec.offset, idx);
					break;
				}
				d->pkey = rec.pkey;
				d->idx = idx;
				d->d = (struct hak_trace_decoder){.idx = idx, .tick = th.tick};
				dn++;
				pi->threads++;
				if (th.live > pi->max_live)
					pi->max_live = th.live;
				if (!pi->first_tick || th.tick < pi->first_tick)
					pi->first_tick = th.tick;
				continue;
			}
			if (!d->pkey) {
				snprintf(bad, sizeof bad, "offset %llu: events of thread %u before its THREAD record",
					 (unsigned long long)rec.offset, idx);
				break;
			}
			const unsigned char *p = ev, *end = ev + len;
			struct hak_trace_event e;
			while (p < end) {
				if (hak__trace_decode(&d->d, &p, end, &e, err, sizeof err)) {
					snprintf(bad, sizeof bad, "%s", err);
					break;
				}
				pi->events++;
				pi->counts[e.op]++;
				if (e.tick > pi->last_tick)
					pi->last_tick = e.tick;
			}
			if (bad[0])
				break;
		} else if (rec.type == HAK_TREC_END) {
			unsigned present;
			if (hak__trace_parse_end(&rec, pi->end_counts, &present, err, sizeof err)) {
				snprintf(bad, sizeof bad, "%s", err);
				break;
			}
			pi->has_end = true;
		} else if (rec.type == HAK_TREC_STOPPED) {
			pi->stopped = true;
		} else if (rec.type == HAK_TREC_CLOCK) {
			uint64_t tick, ns;
			if (hak__trace_parse_clock(&rec, &tick, &ns, err, sizeof err)) {
				snprintf(bad, sizeof bad, "%s", err);
				break;
			}
		}
	}
	if (rc < 0)
		snprintf(bad, sizeof bad, "%s", reader->err);
	static char line[8192];
	for (size_t i = 0; i < np; i++) {
		struct pinfo *pi = &ps[i];
		size_t o = (size_t)snprintf(line, sizeof line,
			"{\"index\":%zu,\"pkey\":\"%llx\",\"pid\":%llu,\"parent\":\"%llx\",\"forked\":%s,\"execed\":%s,"
			"\"fork_thread\":%u,\"fork_number\":%llu,\"program\":\"%s\",\"cmdline\":\"%s\",\"threads\":%llu,"
			"\"max_live_threads\":%llu,\"events\":%llu,\"seconds\":%.3f,\"ops\":{",
			i + 1, (unsigned long long)pi->pkey, (unsigned long long)pi->pid,
			(unsigned long long)pi->parent, pi->flags & HAK_TPROC_FORKED ? "true" : "false",
			pi->flags & HAK_TPROC_EXECED ? "true" : "false", pi->fork_thread,
			(unsigned long long)pi->fork_number, pi->program, pi->cmdline, (unsigned long long)pi->threads,
			(unsigned long long)pi->max_live, (unsigned long long)pi->events,
			pi->last_tick > pi->first_tick ? (double)(pi->last_tick - pi->first_tick) * 1e-9 : 0.0);
		for (unsigned op = 1; op < HAK_TOP_COUNT; op++)
			o += (size_t)snprintf(line + o, sizeof line - o, "%s\"%s\":%llu", op > 1 ? "," : "",
					      hak__trace_op_name(op), (unsigned long long)pi->counts[op]);
		o += (size_t)snprintf(line + o, sizeof line - o, "},\"ended\":%s,\"stopped\":%s",
				      pi->has_end ? "true" : "false", pi->stopped ? "true" : "false");
		if (pi->has_end) {
			static const char *const names[HAK_TRACE_COUNT_N] = {
				"malloc", "free", "calloc", "realloc", "realloc_moved", "memalign", "free_sized", "trim",
				"thread_end", "fork", "threads", "untraced_frees", "failed"};
			o += (size_t)snprintf(line + o, sizeof line - o, ",\"recorder\":{");
			for (unsigned k = 0; k < HAK_TRACE_COUNT_N; k++)
				o += (size_t)snprintf(line + o, sizeof line - o, "%s\"%s\":%llu", k ? "," : "", names[k],
						      (unsigned long long)pi->end_counts[k]);
			o += (size_t)snprintf(line + o, sizeof line - o, "}");
		}
		snprintf(line + o, sizeof line - o, "}\n");
		if (write(1, line, strlen(line)) < 0)
			return BENCH_EXIT_SYSTEM;
	}
	char qerr[800], hdr[HAK_TRACE_HEADER_MAX + 1], qhdr[2048];
	json_string(qerr, sizeof qerr, bad, strlen(bad));
	snprintf(hdr, sizeof hdr, "%s", reader->header);
	json_string(qhdr, sizeof qhdr, hdr, strlen(hdr));
	snprintf(line, sizeof line, "{\"file\":true,\"format\":%u,\"records\":%llu,\"processes\":%zu,\"header\":\"%s\","
		 "\"error\":%s%s%s}\n", reader->version, (unsigned long long)records, np, qhdr,
		 bad[0] ? "\"" : "", bad[0] ? qerr : "null", bad[0] ? "\"" : "");
	if (write(1, line, strlen(line)) < 0)
		return BENCH_EXIT_SYSTEM;
	if (bad[0]) {
		say("hakmem-replay: %s: %s", path, bad);
		return strstr(bad, "truncated") ? 0 : EXIT_TRACE;
	}
	return 0;
}

static const char usage[] = "usage: hakmem-replay [--process N] [--timed] TRACE\n"
			    "       hakmem-replay --info TRACE\n";

int main(int argc, char **argv)
{
	uint64_t index = 1;
	bool want_info = false;
	int i;
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--timed")) {
			timed = true;
		} else if (!strcmp(argv[i], "--info")) {
			want_info = true;
		} else if (!strcmp(argv[i], "--process") && i + 1 < argc) {
			char *end;
			index = strtoull(argv[++i], &end, 10);
			if (*end || !index) {
				say("hakmem-replay: --process %s: expected a number from 1", argv[i]);
				return BENCH_EXIT_USAGE;
			}
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			if (write(1, usage, sizeof usage - 1) < 0)
				return BENCH_EXIT_SYSTEM;
			return 0;
		} else {
			say("hakmem-replay: unknown option '%s'\n%s", argv[i], usage);
			return BENCH_EXIT_USAGE;
		}
	}
	if (i + 1 != argc) {
		say("%s", usage);
		return BENCH_EXIT_USAGE;
	}
	return want_info ? info(argv[i]) : replay(index, argv[i]);
}
