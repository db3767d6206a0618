/* policy.c: layer 4, the records of the policies in force and the counters they declare (see
 * policy.h). Nothing here calls a policy: policy_call.h does. */
#include "policy.h"

#include <pthread.h>
#include <string.h>

struct hak_kind_slots hak__policies[HAK_KIND_COUNT];

/* A trim op runs on this thread (policy_call.h's re-entry rule). */
__thread int hak__in_trim_op __attribute__((tls_model("initial-exec")));

struct hak_policy *hak__policy_reserve(uint32_t kind)
{
	HAK_ASSERT(hak__kind(kind));
	struct hak_kind_slots *k = &hak__policies[kind - 1];
	unsigned n = atomic_load(&k->xcount);
	HAK_CHECK(k->reserved == n, "internal: a %s policy record reserved twice", hak__kind_name(kind));
	if (n == HAK_POLICY_SLOTS)
		return NULL;
	struct hak_policy *p = &k->slot[n];
	memset(p, 0, sizeof *p);
	p->kind = kind;
	p->index = (uint8_t)n;
	k->reserved = n + 1;
	return p;
}

static void counters_drop(const struct hak_policy *owner);

void hak__policy_unreserve(struct hak_policy *p)
{
	struct hak_kind_slots *k = &hak__policies[p->kind - 1];
	HAK_CHECK(!atomic_load(&p->xstarted) && k->reserved == p->index + 1u && atomic_load(&k->xcount) == p->index,
		  "internal: policy record %u of kind %u given back while in use", p->index, p->kind);
	counters_drop(p);
	p->desc = NULL;
	k->reserved = p->index;
}

void hak__policy_fill(struct hak_policy *p, const struct hak_policy_desc *d, void *state, void *handle)
{
	struct hak_kind_slots *k = &hak__policies[p->kind - 1];
	HAK_CHECK(k->reserved == p->index + 1u && atomic_load(&k->xcount) == p->index,
		  "internal: policy record %u of kind %u filled out of order", p->index, p->kind);
	p->desc = d;
	p->ops = d->ops;
	p->state = state;
	p->handle = handle;
	atomic_store_explicit(&k->xcount, p->index + 1u, memory_order_release); /* published */
}

struct hak_policy *hak__policy_make_current(struct hak_policy *p)
{
	HAK_ASSERT(p->desc);
	return atomic_exchange(&hak__policies[p->kind - 1].xcurrent, p);
}

/* ---- Named counters ------------------------------------------------------------------------------- */

static struct hak_counter_info counters[HAK_COUNTER_NAMES];
static unsigned counters_n, values_n, thread_slots_n;
HAK_BIG_BSS static _Atomic int64_t values[HAK_COUNTER_VALUES];
static int8_t thread_slot_of[HAK_COUNTER_VALUES]; /* value index -> slot, or -1 */
static pthread_mutex_t counters_lock = PTHREAD_MUTEX_INITIALIZER;

static bool name_ok(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= '0' && s[n] <= '9') ||
		      s[n] == '_'))
			return false;
	return n > 0 && n <= HAK_COUNTER_NAME_MAX;
}

int hak__counter_register(struct hak_policy *owner, const char *name, unsigned type, unsigned n)
{
	if (!owner || !name || !name_ok(name) || type > HAK_COUNTER_GAUGE || n == 0 || n > 256) {
		hak__log("counter_register: bad arguments (name '%.40s', type %u, n %u); not counted",
			 name && name_ok(name) ? name : "?", type, n);
		return -1;
	}
	pthread_mutex_lock(&counters_lock);
	int id = -1;
	if (counters_n < HAK_COUNTER_NAMES && values_n + n <= HAK_COUNTER_VALUES) {
		struct hak_counter_info *c = &counters[counters_n++];
		memset(c, 0, sizeof *c);
		c->owner = owner;
		strcpy(c->name, name);
		c->type = (uint8_t)type;
		c->first = (uint16_t)values_n;
		c->n = (uint16_t)n;
		c->thread_slot = -1;
		if (type == HAK_COUNTER_COUNT && n == 1 && thread_slots_n < 16)
			c->thread_slot = (int8_t)thread_slots_n++;
		for (unsigned i = 0; i < n; i++) {
			thread_slot_of[values_n + i] = c->thread_slot;
			atomic_store(&values[values_n + i], 0);
		}
		id = (int)values_n;
		values_n += n;
	}
	pthread_mutex_unlock(&counters_lock);
	if (id < 0)
		hak__log("counter_register: no room for '%s' (%u names, %u values at most); not counted", name,
			 HAK_COUNTER_NAMES, HAK_COUNTER_VALUES);
	return id;
}

/* Only the newest registrations can belong to a record being given back (start-up order). */
static void counters_drop(const struct hak_policy *owner)
{
	pthread_mutex_lock(&counters_lock);
	while (counters_n && counters[counters_n - 1].owner == owner) {
		struct hak_counter_info *c = &counters[--counters_n];
		values_n = c->first;
		if (c->thread_slot >= 0)
			thread_slots_n = (unsigned)c->thread_slot;
	}
	pthread_mutex_unlock(&counters_lock);
}

int hak__counter_thread_slot(int id)
{
	return id >= 0 && (unsigned)id < __atomic_load_n(&values_n, __ATOMIC_RELAXED) ? thread_slot_of[id] : -1;
}

void hak__counter_add_global(int id, uint64_t n)
{
	if (id >= 0 && id < HAK_COUNTER_VALUES)
		hak_add_relaxed(&values[id], (int64_t)n);
}

void hak__counter_set(int id, int64_t value)
{
	if (id >= 0 && id < HAK_COUNTER_VALUES)
		hak_store_relaxed(&values[id], value);
}

void hak__counters_each(const struct hak_policy *owner,
			void (*fn)(void *ctx, const struct hak_counter_info *c, const int64_t *values), void *ctx)
{
	int64_t v[256];
	pthread_mutex_lock(&counters_lock);
	unsigned n = counters_n;
	pthread_mutex_unlock(&counters_lock);
	for (unsigned i = 0; i < n; i++) {
		const struct hak_counter_info *c = &counters[i];
		if (c->owner != owner)
			continue;
		for (unsigned k = 0; k < c->n; k++)
			v[k] = hak_load_relaxed(&values[c->first + k]);
		fn(ctx, c, v);
	}
}
