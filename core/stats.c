/* stats.c: layer 9, the counters (see stats.h): collected on demand from every layer and from the
 * policies' named counters, printed as a table or one JSON line, without stdio (safe at exit and
 * inside the allocator). */
#include "stats.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "large.h"
#include "os.h"
#include "policy_call.h"
#include "pool.h"
#include "thread.h"
#include "trim.h"

struct ctx {
	struct hak_thread_sums t;
	int64_t size_bytes;
	uint64_t large_live, large_cached, large_mapped, large_released;
	uint64_t ss_mapped, ss_released, ss_live; /* one snapshot: live == mapped - released */
};

enum {
#define HAK__X(group, key, src, help) STAT_##group##_##key,
	HAK_STATS_FIELDS(HAK__X)
#undef HAK__X
	STAT_N
};

static const struct {
	const char *group, *key;
} names[STAT_N] = {
#define HAK__X(group, key, src, help) {#group, #key},
	HAK_STATS_FIELDS(HAK__X)
#undef HAK__X
};

static void collect(int64_t *v)
{
	struct ctx cx, *c = &cx;
	hak__threads_sum(&c->t);
	hak__pool_counts(&c->ss_mapped, &c->ss_released, &c->ss_live);
	hak__large_stats(&c->large_live, &c->large_cached, &c->large_mapped, &c->large_released);
	/* The size the policy in force gives new SuperSlabs (cls 0). */
	unsigned by;
	c->size_bytes = hak__policy_current(HAK_POLICY_SUPERSLAB) ? (int64_t)1 << hak__size_lg_for(0, &by) : 0;
#define HAK__X(group, key, src, help) v[STAT_##group##_##key] = (int64_t)(src);
	HAK_STATS_FIELDS(HAK__X)
#undef HAK__X
}

/* ---- An appending formatter over a fixed buffer ------------------------------------------------ */

struct out {
	char *buf;
	size_t len, used; /* used may pass len: the total the full text would need */
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t room = o->used < o->len ? o->len - o->used : 0;
	int n = vsnprintf(room ? o->buf + o->used : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->used += (size_t)n;
}

/* ---- Plugin counters ------------------------------------------------------------------------------ */

struct counters_ctx {
	struct out *o;
	const struct hak_thread_sums *t;
	int json, first;
};

static void one_counter(void *arg, const struct hak_counter_info *c, const int64_t *values)
{
	struct counters_ctx *x = arg;
	int64_t v0 = values[0] + (c->thread_slot >= 0 ? (int64_t)x->t->plugin_counters[c->thread_slot] : 0);
	if (x->json) {
		put(x->o, "%s\"%s\":", x->first ? "" : ",", c->name);
		if (c->n == 1) {
			put(x->o, "%lld", (long long)v0);
		} else {
			put(x->o, "[");
			for (unsigned i = 0; i < c->n; i++)
				put(x->o, "%s%lld", i ? "," : "", (long long)values[i]);
			put(x->o, "]");
		}
	} else if (c->n == 1) {
		put(x->o, " %s %lld", c->name, (long long)v0);
	} else { /* arrays: the nonzero entries only */
		put(x->o, " %s", c->name);
		unsigned shown = 0;
		for (unsigned i = 0; i < c->n; i++)
			if (values[i])
				put(x->o, "%s%u=%lld", shown++ ? "," : " [", i, (long long)values[i]);
		put(x->o, shown ? "]" : " []");
	}
	x->first = 0;
}

/* The policy shown for a kind: the current one. */
static void policy_json(struct out *o, const struct hak_thread_sums *t)
{
	put(o, "\"policies\":{");
	for (uint32_t k = 1; k <= HAK_KIND_COUNT; k++) {
		const struct hak_policy *p = hak__policy_current(k);
		put(o, "%s\"%s\":{\"name\":\"%s\",\"version\":\"%s\"", k > 1 ? "," : "", hak__kind_name(k),
		    p ? p->desc->name : "?", p && p->desc->version ? p->desc->version : "?");
		if (p) {
			struct counters_ctx x = {o, t, 1, 1};
			put(o, ",\"counters\":{");
			hak__counters_each(p, one_counter, &x);
			put(o, "}");
		}
		put(o, "}");
	}
	put(o, "}");
}

static void policy_table(struct out *o, const struct hak_thread_sums *t)
{
	put(o, "hakmem: %-12s", "policies");
	for (uint32_t k = 1; k <= HAK_KIND_COUNT; k++) {
		const struct hak_policy *p = hak__policy_current(k);
		put(o, "%s%s %s %s", k > 1 ? " | " : "", hak__kind_name(k), p ? p->desc->name : "?",
		    p && p->desc->version ? p->desc->version : "?");
	}
	put(o, "\n");
	for (uint32_t k = 1; k <= HAK_KIND_COUNT; k++) {
		const struct hak_policy *p = hak__policy_current(k);
		if (!p)
			continue;
		struct out line = {o->used < o->len ? o->buf + o->used : NULL, o->used < o->len ? o->len - o->used : 0, 0};
		put(&line, "hakmem: %-12s", hak__kind_name(k));
		size_t head = line.used;
		struct counters_ctx x = {&line, t, 0, 1};
		hak__counters_each(p, one_counter, &x);
		if (line.used == head)
			continue; /* no counters: no line (nothing was written past the buffer) */
		put(&line, "\n");
		o->used += line.used;
	}
}

int hak__stats_format(char *buf, size_t len, int json)
{
	int64_t v[STAT_N];
	collect(v);
	struct hak_thread_sums t;
	hak__threads_sum(&t);
	struct out o = {buf, len, 0};
	if (len)
		buf[0] = '\0';
	const char *group = "top";
	if (json) {
		put(&o, "{");
		policy_json(&o, &t);
		bool first = false;
		for (unsigned i = 0; i < STAT_N; i++) {
			const char *g = names[i].group;
			bool top = !strcmp(g, "top");
			if (strcmp(g, group)) {
				if (strcmp(group, "top"))
					put(&o, "}");
				if (!top)
					put(&o, ",\"%s\":{", g);
				group = g;
				first = true;
			}
			put(&o, "%s\"%s\":%lld", top || !first ? "," : "", names[i].key, (long long)v[i]);
			first = false;
		}
		if (strcmp(group, "top"))
			put(&o, "}");
		put(&o, "}\n");
	} else {
		policy_table(&o, &t);
		group = NULL;
		for (unsigned i = 0; i < STAT_N; i++) {
			if (!group || strcmp(group, names[i].group)) {
				if (group)
					put(&o, "\n");
				put(&o, "hakmem: %-12s", strcmp(names[i].group, "top") ? names[i].group : "totals");
				group = names[i].group;
			}
			put(&o, " %s %lld", names[i].key, (long long)v[i]);
		}
		put(&o, "\n");
	}
	return (int)o.used;
}

void hak__stats_fd(int fd, int json)
{
	int saved = errno;
	char buf[8192];
	int n = hak__stats_format(buf, sizeof buf, json);
	if (n > (int)sizeof buf - 1)
		n = (int)sizeof buf - 1;
	for (int off = 0; n > 0 && off < n;) {
		ssize_t w = write(fd, buf + off, (size_t)(n - off));
		if (w <= 0 && errno != EINTR)
			break;
		if (w > 0)
			off += (int)w;
	}
	errno = saved;
}
