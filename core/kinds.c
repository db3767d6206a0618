/* kinds.c: the table of policy kinds (see kinds.h) and the checks of each kind's ops. */
#include "kinds.h"

#include <stdio.h>
#include <strings.h>

_Static_assert(HAK_KIND_COUNT == HAK_KIND_COUNT_DIGITS, "HAK_KIND_RANGE spells the count");

/* The built-in defaults, compiled from policies/ with -DHAK_BUILTIN. */
HAK_HIDDEN extern const struct hak_policy_desc hak__builtin_trim_idle, hak__builtin_superslab_fixed,
	hak__builtin_ownership_tls;

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt, ...);

static int validate_trim(const void *ops, char *err, size_t errlen)
{
	(void)ops, (void)err, (void)errlen;
	return 0; /* every trim op is optional */
}

static int validate_superslab(const void *ops, char *err, size_t errlen)
{
	const struct hak_superslab_ops *o = ops;
	if (!o->lg_size_for)
		return fail(err, errlen, "superslab ops: lg_size_for is NULL, expected a function");
	return 0;
}

#define HAK_TSTATE_MAX 4096 /* most per-thread bytes an ownership policy may ask for */

static int validate_ownership(const void *ops, char *err, size_t errlen)
{
	const struct hak_ownership_ops *o = ops;
	const char *missing = !o->refill ? "refill" : !o->flush ? "flush" : !o->free_foreign ? "free_foreign"
			    : !o->thread_exit ? "thread_exit" : NULL;
	if (missing)
		return fail(err, errlen, "ownership ops: %s is NULL, expected a function", missing);
	if (o->thread_state_size > HAK_TSTATE_MAX)
		return fail(err, errlen, "ownership ops: thread_state_size %zu, expected at most %d", o->thread_state_size,
			    HAK_TSTATE_MAX);
	if (o->caches_any != 0 && o->caches_any != 1)
		return fail(err, errlen, "ownership ops: caches_any %d, expected 0 or 1", o->caches_any);
	return 0;
}

const struct hak_kind hak__kinds[HAK_KIND_COUNT] = {
	[HAK_KIND_INDEX_TRIM] = {HAK_POLICY_TRIM, "trim",
				 "when empty SuperSlabs, free pages and cached large mappings go back to the OS",
				 &hak__builtin_trim_idle, sizeof(struct hak_trim_ops), validate_trim},
	[HAK_KIND_INDEX_SUPERSLAB] = {HAK_POLICY_SUPERSLAB, "superslab", "the size of each new SuperSlab",
				      &hak__builtin_superslab_fixed, sizeof(struct hak_superslab_ops),
				      validate_superslab},
	[HAK_KIND_INDEX_OWNERSHIP] = {HAK_POLICY_OWNERSHIP, "ownership",
				      "where a freed block goes when it is not this thread's to cache",
				      &hak__builtin_ownership_tls, sizeof(struct hak_ownership_ops),
				      validate_ownership},
};

#include <stdarg.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return 22; /* EINVAL */
}

const struct hak_kind *hak__kind(uint32_t id)
{
	return id >= 1 && id <= HAK_KIND_COUNT ? &hak__kinds[id - 1] : NULL;
}

int hak__kind_index(const char *name)
{
	for (int i = 0; i < HAK_KIND_COUNT; i++)
		if (strcasecmp(name, hak__kinds[i].name) == 0)
			return i;
	return -1;
}

const char *hak__kind_name(uint32_t id)
{
	const struct hak_kind *k = hak__kind(id);
	return k ? k->name : "?";
}

const char *hak__builtin_name(uint32_t id)
{
	const struct hak_kind *k = hak__kind(id);
	return k ? k->builtin->name : NULL;
}

const struct hak_policy_desc *hak__builtin_desc(uint32_t id)
{
	const struct hak_kind *k = hak__kind(id);
	return k ? k->builtin : NULL;
}
