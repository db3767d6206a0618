/* fake_core.c: the recording fake core of the plugin unit tests (see fake_core.h): the table
 * expanded from core_services.h over fake_<service>, the call log and its rendering, the empties
 * model, fake slabs, blocks and thread states, helper threads, and the rules checked on them.
 * Links only the size classes and the loader's descriptor check from the core archive. */
#include "fake_core.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "core_services.h"
#include "loader.h"
#include "size_class.h"

struct fake_script fake;

static char self_object;
hak_policy *const fake_self = (hak_policy *)(void *)&self_object;

/* One lock for everything: services may run on a helper thread. Recursive, because a service
 * calls back into the plugin (chain_return's on_slab_free), which calls services again. */
static pthread_mutex_t lock;
static pthread_once_t lock_once = PTHREAD_ONCE_INIT;

static void lock_init(void)
{
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&lock, &a);
	pthread_mutexattr_destroy(&a);
}

void fake_lock(void)
{
	pthread_once(&lock_once, lock_init);
	pthread_mutex_lock(&lock);
}

void fake_unlock(void)
{
	pthread_mutex_unlock(&lock);
}

/* ---- broken rules ---------------------------------------------------------------------------- */

static unsigned nviolations;
static char first_violation[256];

__attribute__((format(printf, 1, 2))) static void violation(const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (!nviolations++)
		snprintf(first_violation, sizeof first_violation, "%s", msg);
	if (nviolations <= 5)
		fprintf(stderr, "fake core: rule broken: %s\n", msg);
}

unsigned fake_broken(void)
{
	fake_lock();
	unsigned n = nviolations;
	fake_unlock();
	return n;
}

const char *fake_broken_first(void)
{
	return first_violation;
}

void fake_forgive(void)
{
	fake_lock();
	nviolations = 0;
	first_violation[0] = '\0';
	fake_unlock();
}

static bool class_ok(const char *service, unsigned cls)
{
	if (cls < HAK_NCLASSES)
		return true;
	violation("%s: class %u, the core has classes 0..%u", service, cls, (unsigned)HAK_NCLASSES - 1);
	return false;
}

/* ---- the log --------------------------------------------------------------------------------- */

static struct fake_call calls[FAKE_CALLS_MAX];
static size_t ncalls;
static unsigned long calls_in_test; /* logged or not, since fake_reset */
static bool log_overflowed;
static char last_log[256];
static void *loaded_state; /* rendered "state" */

enum { Q = 1, R = 2 }; /* query, returns a scalar */

/* Records a call; its arguments follow as (is_pointer, value) pairs. The entry, for ret. */
static struct fake_call *record(const char *name, unsigned flags, unsigned nargs, ...)
{
	static struct fake_call spill;
	struct fake_call *c = &spill;
	if (++calls_in_test > FAKE_RUNAWAY) { /* a plugin looping for ever: end the runner, do not hang */
		fprintf(stderr, "fake core: more than %d service calls in one test (the last: %s): a runaway loop\n",
			FAKE_RUNAWAY, name);
		abort();
	}
	if (fake.quiet) {
		/* not logged */
	} else if (ncalls < FAKE_CALLS_MAX) {
		c = &calls[ncalls++];
	} else if (!log_overflowed) {
		log_overflowed = true;
		violation("more than %d service calls in one test (a runaway loop?)", FAKE_CALLS_MAX);
	}
	memset(c, 0, sizeof *c);
	c->name = name;
	c->query = flags & Q;
	c->has_ret = flags & R;
	c->nargs = nargs;
	va_list ap;
	va_start(ap, nargs);
	for (unsigned i = 0; i < nargs && i < FAKE_ARGS; i++) {
		int ptr = va_arg(ap, int);
		c->arg[i] = va_arg(ap, uint64_t);
		if (ptr)
			c->ptr_mask |= 1u << i;
	}
	va_end(ap);
	return c;
}

#define I(v) 0, (uint64_t)(v)
#define P(v) 1, (uint64_t)(uintptr_t)(v)

void fake_clear(void)
{
	fake_lock();
	ncalls = 0;
	log_overflowed = false;
	fake_unlock();
}

size_t fake_ncalls(void)
{
	fake_lock();
	size_t n = ncalls;
	fake_unlock();
	return n;
}

const struct fake_call *fake_call_at(size_t i)
{
	fake_lock();
	const struct fake_call *c = i < ncalls ? &calls[i] : NULL;
	fake_unlock();
	return c;
}

unsigned fake_count(const char *name)
{
	unsigned n = 0;
	fake_lock();
	for (size_t i = 0; i < ncalls; i++)
		n += strcmp(calls[i].name, name) == 0;
	fake_unlock();
	return n;
}

const struct fake_call *fake_nth(const char *name, unsigned n)
{
	const struct fake_call *found = NULL;
	fake_lock();
	for (size_t i = 0; i < ncalls && !found; i++)
		if (strcmp(calls[i].name, name) == 0 && n-- == 0)
			found = &calls[i];
	fake_unlock();
	return found;
}

void fake_assert_call(const struct fake_call *c, const char *name, const uint64_t *args, unsigned n,
		      const char *file, int line)
{
	if (!c) {
		print_error("%s:%d: expected a call of %s, there is none\n", file, line, name);
		_fail(file, line);
	}
	if (strcmp(c->name, name) != 0) {
		print_error("%s:%d: expected a call of %s, found %s\n", file, line, name, c->name);
		_fail(file, line);
	}
	if (c->nargs != n) {
		print_error("%s:%d: %s takes %u recorded arguments, the test gave %u\n", file, line, name, c->nargs, n);
		_fail(file, line);
	}
	for (unsigned i = 0; i < n; i++)
		if (c->arg[i] != args[i]) {
			print_error("%s:%d: %s argument %u: found %" PRIu64 " (%#" PRIx64 "), expected %" PRIu64
				    " (%#" PRIx64 ")\n",
				    file, line, name, i + 1, c->arg[i], c->arg[i], args[i], args[i]);
			_fail(file, line);
		}
}

int fake_wait_count(const char *name, unsigned n)
{
	for (int i = 0; i < 30000; i++) { /* 30 s: only a hang gets there */
		if (fake_count(name) >= n)
			return 0;
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	}
	return -1;
}

/* ---- slabs, blocks and threads ----------------------------------------------------------------- */

enum { B_IN, B_OUT, B_PROGRAM, B_REMOTE }; /* where a block is */
static const char *const where[] = {"in its slab", "out (chain, cache or policy list)", "with the program",
				    "in its remote queue"};
#define BLOCK 16 /* bytes of a fake block: word 0 (the link) and word 1 (the free mark) */
#define MARK UINT64_C(0x5a17ab1e0ddba115)

struct fake_slab {
	unsigned id;
	unsigned cls;
	uint32_t cap, nin, nremote;
	uintptr_t owner;
	hak_policy *policy;
	void *links[2];
	bool released, abandoned;
	uint64_t abandon_seq;
	unsigned char *mem;
	uint8_t *st;
};

struct fake_thread {
	unsigned id;
	uintptr_t token;
	struct {
		void *head;
		unsigned n, fills;
		uintptr_t accept;
	} cache[FAKE_CLASSES_MAX];
	_Alignas(64) unsigned char tstate[FAKE_TSTATE_MAX];
};

static struct fake_slab *slabs[FAKE_SLABS_MAX];
static unsigned nslabs;
static uint64_t abandon_seq;
static struct fake_thread *threads[FAKE_THREADS_MAX];
static unsigned nthreads;

#define FS(s) ((struct fake_slab *)(void *)(s))
#define FT(t) ((struct fake_thread *)(void *)(t))

static uint64_t mark_of(const void *b)
{
	return MARK ^ (uint64_t)(uintptr_t)b;
}

static struct fake_slab *slab_known(const void *p)
{
	for (unsigned i = 0; i < nslabs; i++)
		if ((const void *)slabs[i] == p)
			return slabs[i];
	return NULL;
}

static struct fake_thread *thread_known(const void *p)
{
	for (unsigned i = 0; i < nthreads; i++)
		if ((const void *)threads[i] == p)
			return threads[i];
	return NULL;
}

/* The slab holding block b and its index, or NULL. */
static struct fake_slab *block_slab(const void *b, size_t *idx)
{
	uintptr_t a = (uintptr_t)b;
	for (unsigned i = 0; i < nslabs; i++) {
		struct fake_slab *s = slabs[i];
		uintptr_t lo = (uintptr_t)s->mem;
		if (a >= lo && a < lo + (uintptr_t)s->cap * BLOCK) {
			if ((a - lo) % BLOCK)
				return NULL;
			*idx = (a - lo) / BLOCK;
			return s;
		}
	}
	return NULL;
}

/* A slab argument: known and not released. */
static struct fake_slab *slab_arg(const char *service, const hak_slab *p)
{
	struct fake_slab *s = slab_known(p);
	if (!s) {
		violation("%s: %p is not a slab of the core", service, (const void *)p);
		return NULL;
	}
	if (s->released) {
		violation("%s: slab s%u was released", service, s->id);
		return NULL;
	}
	return s;
}

/* Block b must be a fake block in state `want` (or `also`); returns its slab and index. */
static struct fake_slab *block_arg(const char *service, const void *b, int want, int also, size_t *idx)
{
	struct fake_slab *s = block_slab(b, idx);
	if (!s) {
		violation("%s: %p is not a block of the core", service, b);
		return NULL;
	}
	if (((const uint64_t *)b)[1] != mark_of(b)) {
		violation("%s: word 1 of s%u#%zu changed (the core's free mark)", service, s->id, *idx);
		return NULL;
	}
	int st = s->st[*idx];
	if (st != want && st != also) {
		violation("%s: block s%u#%zu is %s, expected %s", service, s->id, *idx, where[st], where[want]);
		return NULL;
	}
	if (s->released) {
		violation("%s: block s%u#%zu belongs to a released slab", service, s->id, *idx);
		return NULL;
	}
	return s;
}

static unsigned class_capacity(unsigned cls)
{
	const struct hak_class_info *ci = &hak__classes[cls];
	return (unsigned)((ci->slab_units * HAK_UNIT_SIZE) / ci->block_size);
}

static struct fake_slab *slab_make(unsigned cls, uintptr_t owner, hak_policy *policy, unsigned cap)
{
	if (nslabs == FAKE_SLABS_MAX) {
		violation("more than %d slabs in one test", FAKE_SLABS_MAX);
		return NULL;
	}
	struct fake_slab *s = calloc(1, sizeof *s);
	assert_non_null(s);
	s->id = nslabs + 1;
	s->cls = cls;
	s->cap = cap ? cap : fake.slab_capacity ? fake.slab_capacity : class_capacity(cls);
	s->nin = s->cap;
	s->owner = owner;
	s->policy = policy;
	s->mem = aligned_alloc(BLOCK, (size_t)s->cap * BLOCK);
	s->st = calloc(s->cap, 1);
	assert_true(s->mem && s->st);
	for (size_t i = 0; i < s->cap; i++) {
		uint64_t *w = (uint64_t *)(void *)(s->mem + i * BLOCK);
		w[0] = 0;
		w[1] = mark_of(w);
	}
	if (owner == HAK_OWNER_NONE) {
		s->abandoned = true;
		s->abandon_seq = ++abandon_seq;
	}
	slabs[nslabs++] = s;
	return s;
}

static void *block_at(struct fake_slab *s, size_t i)
{
	return s->mem + i * BLOCK;
}

static void set_link(void *b, void *next)
{
	((void **)b)[0] = next;
}

static void *get_link(const void *b)
{
	return ((void *const *)b)[0];
}

hak_slab *fake_slab_new(unsigned cls, uintptr_t owner, unsigned capacity)
{
	assert_true(cls < HAK_NCLASSES);
	fake_lock();
	struct fake_slab *s = slab_make(cls, owner, fake_self, capacity);
	fake_unlock();
	return (hak_slab *)(void *)s;
}

void fake_slab_set(hak_slab *p, unsigned used, unsigned remote)
{
	fake_lock();
	struct fake_slab *s = slab_known(p);
	assert_non_null(s);
	assert_true(used <= s->cap && remote <= used);
	for (size_t i = 0; i < s->cap; i++)
		assert_true(s->st[i] != B_OUT); /* nothing in a chain or a cache may be moved under it */
	for (size_t i = 0; i < s->cap; i++)
		s->st[i] = i < remote ? B_REMOTE : i < used ? B_PROGRAM : B_IN;
	s->nin = s->cap - used;
	s->nremote = remote;
	fake_unlock();
}

void *fake_slab_give(hak_slab *p)
{
	void *b = NULL;
	fake_lock();
	struct fake_slab *s = slab_known(p);
	assert_non_null(s);
	for (size_t i = 0; i < s->cap && !b; i++)
		if (s->st[i] == B_IN) {
			s->st[i] = B_PROGRAM;
			s->nin--;
			b = block_at(s, i);
		}
	fake_unlock();
	return b;
}

static struct hak_slab_info info_of(const struct fake_slab *s)
{
	struct hak_slab_info in = {s->cls, s->cap, s->nin, s->cap - s->nin, s->owner, s->nremote != 0};
	return in;
}

struct hak_slab_info fake_slab_info(const hak_slab *p)
{
	fake_lock();
	struct fake_slab *s = slab_known(p);
	assert_non_null(s);
	struct hak_slab_info in = info_of(s);
	fake_unlock();
	return in;
}

#define SLAB_GETTER(type, name, expr)       \
	type name(const hak_slab *p)        \
	{                                   \
		fake_lock();                \
		struct fake_slab *s = slab_known(p); \
		assert_non_null(s);         \
		type v = (expr);            \
		fake_unlock();              \
		return v;                   \
	}
SLAB_GETTER(unsigned, fake_slab_remote, s->nremote)
SLAB_GETTER(unsigned, fake_slab_id, s->id)
SLAB_GETTER(bool, fake_slab_released, s->released)
SLAB_GETTER(bool, fake_slab_abandoned, s->abandoned)

hak_slab *fake_slab_by_id(unsigned id)
{
	fake_lock();
	hak_slab *s = id >= 1 && id <= nslabs ? (hak_slab *)(void *)slabs[id - 1] : NULL;
	fake_unlock();
	return s;
}

unsigned fake_slab_count(void)
{
	fake_lock();
	unsigned n = nslabs;
	fake_unlock();
	return n;
}

hak_slab *fake_block_slab(const void *b)
{
	size_t idx;
	fake_lock();
	hak_slab *s = (hak_slab *)(void *)block_slab(b, &idx);
	fake_unlock();
	return s;
}

unsigned fake_blocks_out(void)
{
	unsigned n = 0;
	fake_lock();
	for (unsigned i = 0; i < nslabs; i++)
		if (!slabs[i]->released)
			n += slabs[i]->cap - slabs[i]->nin;
	fake_unlock();
	return n;
}

hak_thread *fake_thread_new(void)
{
	fake_lock();
	assert_true(nthreads < FAKE_THREADS_MAX);
	struct fake_thread *t = aligned_alloc(64, sizeof *t);
	assert_non_null(t);
	memset(t, 0, sizeof *t);
	t->id = nthreads + 1;
	t->token = (uintptr_t)0x1000 * t->id;
	threads[nthreads++] = t;
	fake_unlock();
	return (hak_thread *)(void *)t;
}

static struct fake_thread *thread_get(const hak_thread *p)
{
	struct fake_thread *t = thread_known(p);
	assert_non_null(t);
	return t;
}

void *fake_tstate(hak_thread *p)
{
	return thread_get(p)->tstate;
}

uintptr_t fake_token(const hak_thread *p)
{
	return thread_get(p)->token;
}

unsigned fake_thread_id(const hak_thread *p)
{
	return thread_get(p)->id;
}

unsigned fake_cached(const hak_thread *p, unsigned cls)
{
	assert_true(cls < FAKE_CLASSES_MAX);
	fake_lock();
	unsigned n = thread_get(p)->cache[cls].n;
	fake_unlock();
	return n;
}

unsigned fake_fills(const hak_thread *p, unsigned cls)
{
	assert_true(cls < FAKE_CLASSES_MAX);
	fake_lock();
	unsigned n = thread_get(p)->cache[cls].fills;
	fake_unlock();
	return n;
}

uintptr_t fake_accept(const hak_thread *p, unsigned cls)
{
	assert_true(cls < FAKE_CLASSES_MAX);
	fake_lock();
	uintptr_t a = thread_get(p)->cache[cls].accept;
	fake_unlock();
	return a;
}

void *fake_cache_pop(hak_thread *p, unsigned cls)
{
	assert_true(cls < FAKE_CLASSES_MAX);
	fake_lock();
	struct fake_thread *t = thread_get(p);
	void *b = t->cache[cls].head;
	if (b) {
		size_t idx;
		struct fake_slab *s = block_arg("fake_cache_pop", b, B_OUT, B_OUT, &idx);
		assert_non_null(s);
		t->cache[cls].head = get_link(b);
		t->cache[cls].n--;
		s->st[idx] = B_PROGRAM;
		set_link(b, NULL);
	}
	fake_unlock();
	return b;
}

void fake_cache_push(hak_thread *p, unsigned cls, void *b)
{
	assert_true(cls < FAKE_CLASSES_MAX);
	fake_lock();
	struct fake_thread *t = thread_get(p);
	size_t idx;
	struct fake_slab *s = block_arg("fake_cache_push", b, B_PROGRAM, B_PROGRAM, &idx);
	assert_non_null(s);
	s->st[idx] = B_OUT;
	set_link(b, t->cache[cls].head);
	t->cache[cls].head = b;
	t->cache[cls].n++;
	fake_unlock();
}

struct hak_chain fake_cache_take(hak_thread *p, unsigned cls)
{
	assert_true(cls < FAKE_CLASSES_MAX);
	fake_lock();
	struct fake_thread *t = thread_get(p);
	struct hak_chain ch = {t->cache[cls].head, t->cache[cls].head, t->cache[cls].n};
	while (ch.tail && get_link(ch.tail))
		ch.tail = get_link(ch.tail);
	if (!ch.head)
		ch.tail = NULL;
	t->cache[cls].head = NULL;
	t->cache[cls].n = 0;
	fake_unlock();
	return ch;
}

void fake_program_free(void *b)
{
	fake_lock();
	size_t idx;
	struct fake_slab *s = block_arg("fake_program_free", b, B_PROGRAM, B_PROGRAM, &idx);
	assert_non_null(s);
	s->st[idx] = B_OUT;
	set_link(b, NULL);
	fake_unlock();
}

void fake_free_foreign(const struct hak_policy_desc *d, void *state, hak_thread *t, void *b)
{
	const struct hak_ownership_ops *o = d->ops;
	hak_slab *s = fake_block_slab(b);
	assert_non_null(s);
	fake_program_free(b);
	o->free_foreign(state, t, s, b);
}

/* Walks a chain a plugin handed in: every block in state `want` (or `also`), the count and
 * the tail right. The number of blocks walked, or -1 (a rule broken). */
static long chain_check(const char *service, struct hak_chain ch, int want, int also)
{
	long n = 0;
	const void *last = NULL;
	for (const void *b = ch.head; b; b = get_link(b)) {
		size_t idx;
		if (!block_arg(service, b, want, also, &idx))
			return -1;
		last = b;
		if (++n > (long)ch.count) {
			violation("%s: the chain holds more than its count (%u)", service, ch.count);
			return -1;
		}
	}
	if (n != (long)ch.count || last != ch.tail) {
		violation("%s: chain of count %u and tail %p holds %ld blocks ending at %p", service, ch.count, ch.tail, n,
			  last);
		return -1;
	}
	return n;
}

/* ---- rendering --------------------------------------------------------------------------------- */

static char *rendered;
static size_t rendered_cap;

static void put(size_t *len, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(size_t *len, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int w = vsnprintf(rendered ? rendered + *len : NULL, rendered ? rendered_cap - *len : 0, fmt, ap);
		va_end(ap);
		if (w >= 0 && rendered && *len + (size_t)w < rendered_cap) {
			*len += (size_t)w;
			return;
		}
		rendered_cap = rendered_cap ? rendered_cap * 2 : 4096;
		rendered = realloc(rendered, rendered_cap);
		assert_non_null(rendered);
	}
}

static void put_value(size_t *len, const struct fake_call *c, unsigned i, uint64_t v, bool ptr)
{
	if (!ptr) {
		if (v == UINT32_MAX)
			put(len, "~0u");
		else if (v == UINT64_MAX)
			put(len, "~0");
		else
			put(len, "%" PRIu64, v);
		return;
	}
	const void *p = (const void *)(uintptr_t)v;
	size_t idx;
	struct fake_slab *s;
	struct fake_thread *t;
	(void)c, (void)i;
	if (!p)
		put(len, "0");
	else if (p == (const void *)fake_self)
		put(len, "self");
	else if (loaded_state && p == loaded_state)
		put(len, "state");
	else if ((s = slab_known(p)))
		put(len, "s%u", s->id);
	else if ((t = thread_known(p)))
		put(len, "t%u", t->id);
	else if ((s = block_slab(p, &idx)))
		put(len, "s%u#%zu", s->id, idx);
	else
		put(len, "p");
}

static const char *render(bool all)
{
	size_t len = 0;
	fake_lock();
	put(&len, "%s", "");
	for (size_t k = 0; k < ncalls; k++) {
		const struct fake_call *c = &calls[k];
		if (c->query && !all)
			continue;
		put(&len, "%s%s(", len ? " " : "", c->name);
		for (unsigned i = 0; i < c->nargs && i < FAKE_ARGS; i++) {
			if (i)
				put(&len, ",");
			put_value(&len, c, i, c->arg[i], (c->ptr_mask >> i) & 1);
		}
		put(&len, ")");
		if (c->has_ret) {
			put(&len, "=");
			bool ptr = strcmp(c->name, "slab_acquire") == 0 || strcmp(c->name, "slab_adopt") == 0 ||
				   strcmp(c->name, "slab_of") == 0;
			put_value(&len, c, FAKE_ARGS, c->ret, ptr);
		}
	}
	fake_unlock();
	return rendered;
}

const char *fake_actions(void)
{
	return render(false);
}

const char *fake_trace(void)
{
	return render(true);
}

/* ---- the empties model --------------------------------------------------------------------------- */

static struct {
	uint64_t serial, since_ns;
} empties[FAKE_EMPTIES_MAX];
static unsigned nempty, released_total;
static uint64_t next_serial, purge_mark; /* serials below purge_mark were empty at the last purging pass */

void fake_add_empty(unsigned n)
{
	fake_lock();
	assert_true(nempty + n <= FAKE_EMPTIES_MAX);
	for (unsigned i = 0; i < n; i++) {
		empties[nempty].serial = next_serial++;
		empties[nempty++].since_ns = fake.now_ns;
	}
	if (fake.live_superslabs < nempty)
		fake.live_superslabs = nempty;
	fake_unlock();
}

unsigned fake_empties(void)
{
	fake_lock();
	unsigned n = nempty;
	fake_unlock();
	return n;
}

unsigned fake_released_total(void)
{
	fake_lock();
	unsigned n = released_total;
	fake_unlock();
	return n;
}

static void unmap_front(void)
{
	memmove(&empties[0], &empties[1], (nempty - 1) * sizeof empties[0]);
	nempty--;
	released_total++;
	if (fake.live_superslabs)
		fake.live_superslabs--;
}

static unsigned model_release(unsigned floor, uint64_t min_empty_ns, unsigned max)
{
	unsigned n = 0;
	while (nempty > floor && n < max && fake.now_ns - empties[0].since_ns >= min_empty_ns) {
		unmap_front();
		n++;
	}
	return n;
}

void fake_advance(uint64_t ns)
{
	fake_lock();
	fake.now_ns += ns;
	fake_unlock();
}

/* ---- counters, helpers ----------------------------------------------------------------------- */

static struct {
	char name[64];
	unsigned type, n;
} counter_names[FAKE_COUNTERS_MAX];
static int64_t counter_values[FAKE_COUNTERS_MAX];
static unsigned ncounter_ids;

int fake_counter_id(const char *name)
{
	int id = -1;
	fake_lock();
	for (unsigned i = 0; i < ncounter_ids && id < 0; i++)
		if (counter_names[i].n && strcmp(counter_names[i].name, name) == 0)
			id = (int)i;
	fake_unlock();
	return id;
}

int64_t fake_counter(const char *name)
{
	int id = fake_counter_id(name);
	assert_true(id >= 0);
	fake_lock();
	int64_t v = counter_values[id];
	fake_unlock();
	return v;
}

const char *fake_last_log(void)
{
	return last_log;
}

static struct hak_large_limits large_limits;
static unsigned parking_states, parking_units;

struct hak_large_limits fake_limits(void)
{
	fake_lock();
	struct hak_large_limits l = large_limits;
	fake_unlock();
	return l;
}

void fake_parking(unsigned *max_states, unsigned *max_units)
{
	fake_lock();
	*max_states = parking_states;
	*max_units = parking_units;
	fake_unlock();
}

static struct {
	void *(*fn)(void *);
	void *arg;
	pthread_t tid;
	bool started, joined;
} helpers[FAKE_HELPERS_MAX];
static unsigned nhelpers;

unsigned fake_helpers(void)
{
	fake_lock();
	unsigned n = nhelpers;
	fake_unlock();
	return n;
}

void fake_helper_start(unsigned i)
{
	fake_lock();
	assert_true(i < nhelpers && !helpers[i].started);
	helpers[i].started = true;
	void *(*fn)(void *) = helpers[i].fn;
	void *arg = helpers[i].arg;
	fake_unlock();
	pthread_t tid;
	assert_int_equal(pthread_create(&tid, NULL, fn, arg), 0);
	fake_lock();
	helpers[i].tid = tid;
	fake_unlock();
}

void fake_helper_join(unsigned i)
{
	fake_lock();
	assert_true(i < nhelpers && helpers[i].started && !helpers[i].joined);
	pthread_t tid = helpers[i].tid;
	fake_unlock();
	pthread_join(tid, NULL);
	fake_lock();
	helpers[i].joined = true;
	fake_unlock();
}

/* ---- the services --------------------------------------------------------------------------------- */

__attribute__((format(printf, 1, 2))) static void fake_log(const char *fmt, ...)
{
	fake_lock();
	struct fake_call *c = record("log", 0, 0);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_log, sizeof last_log, fmt, ap);
	va_end(ap);
	memcpy(c->text, last_log, sizeof c->text - 1); /* the first bytes; text ends zeroed */
	fake_unlock();
}

static uint64_t fake_now_ns(void)
{
	fake_lock();
	uint64_t now = fake.now_ns;
	record("now_ns", Q | R, 0)->ret = now;
	fake_unlock();
	return now;
}

static unsigned fake_class_count(void)
{
	fake_lock();
	record("class_count", Q | R, 0)->ret = HAK_NCLASSES;
	fake_unlock();
	return HAK_NCLASSES;
}

static size_t fake_class_block_size(unsigned cls)
{
	fake_lock();
	size_t v = cls < HAK_NCLASSES ? hak__classes[cls].block_size : 0; /* 0: the header's answer */
	record("class_block_size", Q | R, 1, I(cls))->ret = v;
	fake_unlock();
	return v;
}

static unsigned fake_class_batch(unsigned cls)
{
	fake_lock();
	unsigned v = cls < HAK_NCLASSES ? hak__classes[cls].batch : 0;
	record("class_batch", Q | R, 1, I(cls))->ret = v;
	fake_unlock();
	return v;
}

static int fake_counter_register(hak_policy *self, const char *name, enum hak_counter_type type, unsigned n)
{
	fake_lock();
	struct fake_call *c = record("counter_register", R, 3, P(self), I(type), I(n));
	snprintf(c->text, sizeof c->text, "%s", name);
	int id = -1;
	if (self != fake_self)
		violation("counter_register(%s): a handle other than the one init got", name);
	else if (!fake.counters_full && n && ncounter_ids + n <= FAKE_COUNTERS_MAX) {
		id = (int)ncounter_ids;
		snprintf(counter_names[id].name, sizeof counter_names[id].name, "%s", name);
		counter_names[id].type = (unsigned)type;
		counter_names[id].n = n;
		ncounter_ids += n;
	}
	c->ret = (uint64_t)(int64_t)id;
	fake_unlock();
	return id;
}

static bool counter_ok(const char *service, int id, unsigned type)
{
	if (id == -1)
		return false; /* a counter the core had no room for: ignored */
	if (id < 0 || (unsigned)id >= ncounter_ids) {
		violation("%s: id %d was never registered", service, id);
		return false;
	}
	unsigned first = (unsigned)id;
	while (!counter_names[first].n)
		first--;
	if (counter_names[first].type != type)
		violation("%s: counter '%s' is a %s", service, counter_names[first].name,
			  counter_names[first].type == HAK_COUNTER_COUNT ? "COUNT" : "GAUGE");
	return true;
}

static void fake_counter_add(hak_thread *t, int id, uint64_t n)
{
	fake_lock();
	record("counter_add", 0, 3, P(t), I(id), I(n));
	if (counter_ok("counter_add", id, HAK_COUNTER_COUNT))
		counter_values[id] += (int64_t)n;
	fake_unlock();
}

static void fake_counter_set(int id, int64_t value)
{
	fake_lock();
	record("counter_set", 0, 2, I(id), I(value));
	if (counter_ok("counter_set", id, HAK_COUNTER_GAUGE))
		counter_values[id] = value;
	fake_unlock();
}

static int fake_spawn_helper(void *(*fn)(void *), void *arg)
{
	fake_lock();
	struct fake_call *c = record("spawn_helper", R, 2, P((void *)(uintptr_t)fn), P(arg));
	int err = 0;
	if (fake.spawn == FAKE_SPAWN_REFUSE)
		err = fake.spawn_err;
	else if (nhelpers == FAKE_HELPERS_MAX)
		err = EAGAIN;
	else
		helpers[nhelpers++] = (__typeof__(helpers[0])){fn, arg, 0, false, false};
	c->ret = (uint64_t)err;
	fake_unlock();
	return err;
}

/* The helper's sleep (2.1), as the core's: until ns passed or helper_wake was called (a call
 * since the helper's previous return counts). Not recorded: a helper loop calls it on every
 * round. It never says "last thread" here (returns 0): the tests stop helpers with their
 * policy's stop. */
static pthread_mutex_t helper_sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t helper_sleep_cond = PTHREAD_COND_INITIALIZER;
static uint64_t helper_wake_seq;
static __thread uint64_t helper_seen_seq;

static int fake_helper_sleep(uint64_t ns)
{
	pthread_mutex_lock(&helper_sleep_lock);
	if (helper_wake_seq == helper_seen_seq) {
		if (ns == UINT64_MAX) {
			while (helper_wake_seq == helper_seen_seq)
				pthread_cond_wait(&helper_sleep_cond, &helper_sleep_lock);
		} else {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			uint64_t t = (uint64_t)until.tv_nsec + ns % 1000000000u;
			until.tv_sec += (time_t)(ns / 1000000000u + t / 1000000000u);
			until.tv_nsec = (long)(t % 1000000000u);
			while (helper_wake_seq == helper_seen_seq &&
			       pthread_cond_timedwait(&helper_sleep_cond, &helper_sleep_lock, &until) == 0)
				;
		}
	}
	helper_seen_seq = helper_wake_seq;
	pthread_mutex_unlock(&helper_sleep_lock);
	return 0;
}

static void fake_helper_wake(void)
{
	pthread_mutex_lock(&helper_sleep_lock);
	helper_wake_seq++;
	pthread_cond_broadcast(&helper_sleep_cond);
	pthread_mutex_unlock(&helper_sleep_lock);
}

static uintptr_t fake_thread_token(hak_thread *p)
{
	fake_lock();
	struct fake_call *c = record("thread_token", Q | R, 1, P(p));
	struct fake_thread *t = thread_known(p);
	if (!t)
		violation("thread_token: %p is not a thread state", (void *)p);
	uintptr_t token = t ? t->token : HAK_OWNER_NONE;
	c->ret = token;
	fake_unlock();
	return token;
}

static unsigned fake_refill_count(hak_thread *t, unsigned cls)
{
	fake_lock();
	struct fake_call *c = record("refill_count", Q | R, 2, P(t), I(cls));
	unsigned n = 0;
	if (class_ok("refill_count", cls))
		n = fake.refill_count ? fake.refill_count : hak__classes[cls].batch;
	c->ret = n;
	fake_unlock();
	return n;
}

static void fake_cache_fill(hak_thread *p, unsigned cls, struct hak_chain chain)
{
	fake_lock();
	record("cache_fill", 0, 3, P(p), I(cls), I(chain.count));
	struct fake_thread *t = thread_known(p);
	if (!t)
		violation("cache_fill: %p is not a thread state", (void *)p);
	else if (class_ok("cache_fill", cls) && chain.head && chain_check("cache_fill", chain, B_OUT, B_OUT) >= 0) {
		for (void *b = chain.head; b; b = get_link(b)) {
			size_t idx;
			struct fake_slab *s = block_slab(b, &idx);
			if (s->cls != cls)
				violation("cache_fill: block s%u#%zu is of class %u, the cache of class %u", s->id, idx,
					  s->cls, cls);
		}
		set_link(chain.tail, t->cache[cls].head);
		t->cache[cls].head = chain.head;
		t->cache[cls].n += chain.count;
		t->cache[cls].fills++;
	}
	fake_unlock();
}

static void fake_cache_accept(hak_thread *p, unsigned cls, uintptr_t owner)
{
	fake_lock();
	record("cache_accept", 0, 3, P(p), I(cls), I(owner));
	struct fake_thread *t = thread_known(p);
	if (!t)
		violation("cache_accept: %p is not a thread state", (void *)p);
	else if (class_ok("cache_accept", cls))
		t->cache[cls].accept = owner;
	fake_unlock();
}

static void fake_class_local_frees(uint64_t *out, unsigned n)
{
	fake_lock();
	record("class_local_frees", Q, 1, I(n));
	for (unsigned i = 0; i < n; i++)
		out[i] = i < FAKE_CLASSES_MAX ? fake.local_frees[i] : 0;
	fake_unlock();
}

static hak_slab *fake_slab_acquire(hak_policy *self, unsigned cls, uintptr_t owner)
{
	fake_lock();
	struct fake_call *c = record("slab_acquire", R, 3, P(self), I(cls), I(owner));
	struct fake_slab *s = NULL;
	if (self != fake_self)
		violation("slab_acquire: a handle other than the one init got");
	else if (!class_ok("slab_acquire", cls))
		;
	else if (fake.acquire_fail) {
		if (fake.acquire_fail != ~0u)
			fake.acquire_fail--;
	} else {
		s = slab_make(cls, owner, self, 0);
		if (s)
			s->abandoned = false, s->abandon_seq = 0; /* a new slab is never adoptable */
	}
	c->ret = (uint64_t)(uintptr_t)s;
	fake_unlock();
	return (hak_slab *)(void *)s;
}

static hak_slab *fake_slab_adopt(hak_policy *self, unsigned cls, uintptr_t owner)
{
	fake_lock();
	struct fake_call *c = record("slab_adopt", R, 3, P(self), I(cls), I(owner));
	struct fake_slab *best = NULL;
	if (self != fake_self)
		violation("slab_adopt: a handle other than the one init got");
	else if (class_ok("slab_adopt", cls))
		for (unsigned i = 0; i < nslabs; i++) {
			struct fake_slab *s = slabs[i];
			if (s->abandoned && !s->released && s->cls == cls && s->policy == self &&
			    (!best || s->abandon_seq > best->abandon_seq))
				best = s;
		}
	if (best) {
		best->abandoned = false;
		best->owner = owner;
	}
	c->ret = (uint64_t)(uintptr_t)best;
	fake_unlock();
	return (hak_slab *)(void *)best;
}

static void fake_slab_release(hak_slab *p)
{
	fake_lock();
	record("slab_release", 0, 1, P(p));
	struct fake_slab *s = slab_arg("slab_release", p);
	if (s && (s->nin != s->cap || s->nremote))
		violation("slab_release: s%u has %u of %u blocks out (%u in its remote queue)", s->id, s->cap - s->nin,
			  s->cap, s->nremote);
	else if (s && s->abandoned)
		violation("slab_release: s%u is abandoned (the core's list holds it)", s->id);
	else if (s) {
		s->released = true;
		s->owner = HAK_OWNER_NONE;
	}
	fake_unlock();
}

static void fake_slab_abandon(hak_slab *p)
{
	fake_lock();
	record("slab_abandon", 0, 1, P(p));
	struct fake_slab *s = slab_arg("slab_abandon", p);
	if (s && s->abandoned)
		violation("slab_abandon: s%u is already abandoned", s->id);
	else if (s) {
		s->abandoned = true;
		s->abandon_seq = ++abandon_seq;
		s->owner = HAK_OWNER_NONE;
	}
	fake_unlock();
}

static unsigned fake_slab_take(hak_slab *p, unsigned max, struct hak_chain *out)
{
	fake_lock();
	struct fake_call *c = record("slab_take", R, 2, P(p), I(max));
	*out = (struct hak_chain){NULL, NULL, 0};
	struct fake_slab *s = slab_arg("slab_take", p);
	for (size_t i = 0; s && i < s->cap && out->count < max; i++) {
		if (s->st[i] != B_IN)
			continue;
		void *b = block_at(s, i);
		s->st[i] = B_OUT;
		s->nin--;
		set_link(b, NULL);
		if (out->tail)
			set_link(out->tail, b);
		else
			out->head = b;
		out->tail = b;
		out->count++;
	}
	c->ret = out->count;
	fake_unlock();
	return out->count;
}

static void fake_chain_return(struct hak_chain chain, void (*on_slab_free)(void *ctx, hak_slab *s), void *ctx)
{
	fake_lock();
	record("chain_return", 0, 1, I(chain.count));
	if (chain_check("chain_return", chain, B_OUT, B_OUT) >= 0) {
		void *b = chain.head;
		while (b) {
			void *next = get_link(b);
			size_t idx;
			struct fake_slab *s = block_slab(b, &idx);
			s->st[idx] = B_IN;
			s->nin++;
			set_link(b, NULL);
			if (s->nin == s->cap && on_slab_free)
				on_slab_free(ctx, (hak_slab *)(void *)s); /* the lock is recursive */
			b = next;
		}
	}
	fake_unlock();
}

static void fake_slab_get_info(const hak_slab *p, struct hak_slab_info *out)
{
	fake_lock();
	record("slab_get_info", Q, 1, P(p));
	struct fake_slab *s = slab_arg("slab_get_info", p);
	*out = s ? info_of(s) : (struct hak_slab_info){0};
	fake_unlock();
}

static void **fake_slab_policy_links(hak_slab *p)
{
	static void *junk[2];
	fake_lock();
	record("slab_policy_links", Q, 1, P(p));
	struct fake_slab *s = slab_arg("slab_policy_links", p);
	void **l = s ? s->links : junk;
	fake_unlock();
	return l;
}

static hak_slab *fake_slab_of(const void *block)
{
	size_t idx;
	fake_lock();
	struct fake_call *c = record("slab_of", Q | R, 1, P(block));
	struct fake_slab *s = block_slab(block, &idx);
	if (s && s->released)
		s = NULL;
	c->ret = (uint64_t)(uintptr_t)s;
	fake_unlock();
	return (hak_slab *)(void *)s;
}

static void fake_remote_push(hak_slab *p, void *block)
{
	fake_lock();
	record("remote_push", 0, 2, P(p), P(block));
	size_t idx;
	struct fake_slab *s = slab_arg("remote_push", p);
	struct fake_slab *bs = s ? block_arg("remote_push", block, B_OUT, B_OUT, &idx) : NULL;
	if (bs && bs != s)
		violation("remote_push: block s%u#%zu pushed to the queue of s%u", bs->id, idx, s->id);
	else if (bs) {
		s->st[idx] = B_REMOTE;
		s->nremote++;
		set_link(block, NULL);
	}
	fake_unlock();
}

static unsigned fake_remote_drain(hak_slab *p)
{
	fake_lock();
	struct fake_call *c = record("remote_drain", R, 1, P(p));
	struct fake_slab *s = slab_arg("remote_drain", p);
	unsigned n = 0;
	for (size_t i = 0; s && i < s->cap; i++)
		if (s->st[i] == B_REMOTE) {
			s->st[i] = B_IN;
			s->nin++;
			n++;
		}
	if (s)
		s->nremote = 0;
	c->ret = n;
	fake_unlock();
	return n;
}

#define SCRIPTED_COUNT(svc, field)                              \
	static unsigned fake_##svc(void)                        \
	{                                                       \
		fake_lock();                                    \
		unsigned v = fake.field;                        \
		record(#svc, R, 0)->ret = v;                    \
		fake_unlock();                                  \
		return v;                                       \
	}
SCRIPTED_COUNT(reap_parked, reap_ret)
SCRIPTED_COUNT(collect_abandoned, collect_ret)
SCRIPTED_COUNT(reclaim_threads, reclaim_ret)

static void fake_consolidate(void)
{
	fake_lock();
	record("consolidate", 0, 0);
	fake_unlock();
}

static void fake_request_cache_flush(void)
{
	fake_lock();
	record("request_cache_flush", 0, 0);
	fake_unlock();
}

static unsigned fake_release_empty(unsigned floor, uint64_t min_empty_ns, unsigned max)
{
	fake_lock();
	struct fake_call *c = record("release_empty", R, 3, I(floor), I(min_empty_ns), I(max));
	unsigned n = model_release(floor, min_empty_ns, max);
	c->ret = n;
	fake_unlock();
	return n;
}

static uint64_t fake_purge(uint64_t min_free_ns, uint64_t max_bytes)
{
	fake_lock();
	uint64_t v = fake.purge_ret;
	record("purge", R, 2, I(min_free_ns), I(max_bytes))->ret = v;
	fake_unlock();
	return v;
}

static unsigned fake_large_release(uint64_t min_idle_ns, uint64_t keep_bytes)
{
	fake_lock();
	unsigned v = fake.large_release_ret;
	record("large_release", R, 2, I(min_idle_ns), I(keep_bytes))->ret = v;
	fake_unlock();
	return v;
}

static void fake_large_limits(const struct hak_large_limits *l)
{
	fake_lock();
	record("large_limits", 0, 3, I(l->max_bytes), I(l->max_one), I(l->slots));
	if (l->size < sizeof(struct hak_large_limits))
		violation("large_limits: size %zu, expected %zu", l->size, sizeof(struct hak_large_limits));
	large_limits = *l;
	fake_unlock();
}

static void fake_set_parking(unsigned max_states, unsigned max_units)
{
	fake_lock();
	record("set_parking", 0, 2, I(max_states), I(max_units));
	parking_states = max_states;
	parking_units = max_units;
	fake_unlock();
}

static unsigned fake_empty_count(void)
{
	fake_lock();
	unsigned n = nempty;
	record("empty_count", Q | R, 0)->ret = n;
	fake_unlock();
	return n;
}

static unsigned fake_live_superslabs(void)
{
	fake_lock();
	unsigned n = fake.live_superslabs;
	record("live_superslabs", Q | R, 0)->ret = n;
	fake_unlock();
	return n;
}

static void fake_heap_facts(struct hak_heap_facts *out)
{
	fake_lock();
	record("heap_facts", Q, 1, I(out->size));
	struct hak_heap_facts f = fake.facts;
	size_t size = out->size < sizeof f ? out->size : sizeof f;
	f.size = out->size;
	f.now_ns = fake.now_ns;
	f.superslabs_live = fake.live_superslabs;
	f.superslabs_empty = nempty;
	f.oldest_empty_ns = nempty ? empties[0].since_ns : 0;
	memcpy(out, &f, size);
	fake_unlock();
}

static void fake_free_runs_each(void (*fn)(void *ctx, const struct hak_free_run *run), void *ctx)
{
	fake_lock();
	record("free_runs_each", Q, 0);
	for (unsigned i = 0; i < fake.nruns && i < FAKE_RUNS_MAX; i++) {
		size_t before = ncalls;
		fn(ctx, &fake.runs[i]);
		if (ncalls != before)
			violation("free_runs_each: fn called the core (it runs under the pool lock)");
	}
	fake_unlock();
}

static uint64_t fake_process_rss(void)
{
	fake_lock();
	uint64_t v = fake.process_rss;
	record("process_rss", Q | R, 0)->ret = v;
	fake_unlock();
	return v;
}

static struct hak_trim_result fake_trim_pass(unsigned keep, unsigned flags)
{
	fake_lock();
	struct fake_call *c = record("trim_pass", 0, 2, I(keep), I(flags));
	struct hak_trim_result r = {model_release(keep, 0, ~0u), fake.trim_purged, fake.trim_large};
	if (flags & HAK_TRIM_PURGE) {
		while (nempty && empties[0].serial < purge_mark) {
			unmap_front();
			r.superslabs_released++;
		}
		purge_mark = next_serial;
	}
	c->ret = r.superslabs_released;
	fake_unlock();
	return r;
}

#define FAKE(name) .name = fake_##name,
const struct hak_core_api fake_core_api = {HAK_CORE_API_HEADER, HAK_CORE_SERVICES(FAKE)};
#undef FAKE

/* The list names every member of the table: no function pointer is left NULL. */
#define ONE(name) +1
_Static_assert(sizeof(struct hak_core_api) ==
		       offsetof(struct hak_core_api, log) + (0 HAK_CORE_SERVICES(ONE)) * sizeof(void (*)(void)),
	       "core_services.h and struct hak_core_api disagree");
#undef ONE

/* ---- set-up, loading, teardown --------------------------------------------------------------------- */

static char init_err[256];

static void free_all(void)
{
	for (unsigned i = 0; i < nslabs; i++) {
		free(slabs[i]->mem);
		free(slabs[i]->st);
		free(slabs[i]);
	}
	nslabs = 0;
	for (unsigned i = 0; i < nthreads; i++)
		free(threads[i]);
	nthreads = 0;
}

void fake_reset(void)
{
	hak__size_classes_init();
	fake_lock();
	free_all();
	memset(&fake, 0, sizeof fake);
	fake.now_ns = UINT64_C(1000000000);
	fake.spawn_err = EAGAIN;
	ncalls = 0;
	calls_in_test = 0;
	log_overflowed = false;
	last_log[0] = '\0';
	loaded_state = NULL;
	nviolations = 0;
	first_violation[0] = '\0';
	abandon_seq = 0;
	nempty = released_total = 0;
	next_serial = purge_mark = 0;
	memset(counter_names, 0, sizeof counter_names);
	memset(counter_values, 0, sizeof counter_values);
	ncounter_ids = 0;
	memset(&large_limits, 0, sizeof large_limits);
	parking_states = parking_units = 0;
	memset(helpers, 0, sizeof helpers);
	nhelpers = 0;
	init_err[0] = '\0';
	fake_unlock();
}

int fake_setup(void **unused)
{
	(void)unused;
	fake_reset();
	return 0;
}

int fake_teardown(void **unused)
{
	(void)unused;
	fake_lock();
	unsigned running = 0;
	for (unsigned i = 0; i < nhelpers; i++)
		running += helpers[i].started && !helpers[i].joined;
	for (unsigned i = 0; i < nslabs; i++) /* word 1 of every block, released slabs included */
		for (size_t k = 0; k < slabs[i]->cap; k++) {
			const uint64_t *w = block_at(slabs[i], k);
			if (w[1] != mark_of(w)) {
				violation("word 1 of s%u#%zu changed (the core's free mark)", slabs[i]->id, k);
				break;
			}
		}
	unsigned broken = nviolations;
	char msg[256];
	snprintf(msg, sizeof msg, "%s", first_violation);
	if (!running)
		free_all();
	fake_unlock();
	if (running) {
		print_error("fake core: %u helper thread(s) still running at teardown\n", running);
		return -1;
	}
	if (broken) {
		print_error("fake core: %u rule(s) broken, the first: %s\n", broken, msg);
		return -1;
	}
	return 0;
}

int fake_init(const struct hak_policy_desc *d, const char *const *kv, void **state)
{
	char why[256];
	if (hak__policy_validate(d, SIZE_MAX, 0, NULL, why, sizeof why) != 0)
		fail_msg("descriptor '%s' would be refused by the loader: %s", d->name ? d->name : "?", why);
	enum { MAX = 16 };
	struct hak_setting items[MAX];
	char buf[MAX][128];
	size_t n = 0;
	for (; kv[n]; n++) {
		assert_true(n < MAX);
		snprintf(buf[n], sizeof buf[n], "%s", kv[n]);
		char *eq = strchr(buf[n], '=');
		assert_non_null(eq);
		char *k = buf[n], *v = eq + 1, *e = eq;
		*eq = '\0';
		while (e > k && e[-1] == ' ')
			*--e = '\0';
		while (*v == ' ')
			v++;
		items[n] = (struct hak_setting){k, v, (int)n + 1};
	}
	const struct hak_settings settings = {"(test)", items, n};
	*state = NULL;
	init_err[0] = '\0';
	int e = d->init(&fake_core_api, fake_self, &settings, state, init_err, sizeof init_err);
	if (e == 0) {
		fake_lock();
		loaded_state = *state;
		fake_unlock();
	}
	return e;
}

const char *fake_err(void)
{
	return init_err;
}

void *fake_load(const struct hak_policy_desc *d, const char *const *kv)
{
	void *state;
	int e = fake_init(d, kv, &state);
	if (e)
		fail_msg("%s: init returned %d: %s", d->name, e, init_err);
	return state;
}

void fake_unload(const struct hak_policy_desc *d, void *state)
{
	if (d->fini)
		d->fini(state);
	fake_lock();
	if (loaded_state == state)
		loaded_state = NULL;
	fake_unlock();
}
