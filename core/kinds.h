/* kinds.h: the table of policy kinds (kinds.c), the one place a kind is described: its name (the
 * INI section and the plugin file prefix), its built-in default, the size of its ops table and
 * the load-time checks of its ops. The configuration, the loader, start-up, the stats and the
 * tools iterate over it. A new kind is a row here, its ops struct in hakmem_policy.h, its
 * built-in, and its calls in policy_call.h. Usable by the tools (no allocator inside). */
#ifndef HAK_KINDS_H
#define HAK_KINDS_H

#include <stdbool.h>
#include <stddef.h>

#include "hakmem_policy.h"
#include "log.h"

/* Kinds are numbered 1..HAK_KIND_COUNT (enum hak_policy_kind); index = kind - 1. */
enum {
	HAK_KIND_INDEX_TRIM = HAK_POLICY_TRIM - 1,
	HAK_KIND_INDEX_SUPERSLAB = HAK_POLICY_SUPERSLAB - 1,
	HAK_KIND_INDEX_OWNERSHIP = HAK_POLICY_OWNERSHIP - 1,
	HAK_KIND_COUNT = 3,
};

struct hak_kind {
	uint32_t id;                          /* enum hak_policy_kind */
	const char *name;                     /* "trim": section [trim], files trim_<name>.so */
	const char *purpose;                  /* one line, for the documentation */
	const struct hak_policy_desc *builtin; /* the compiled-in default */
	size_t ops_size;                      /* sizeof its ops table in ABI 2.0: the least accepted */
	/* The kind's mandatory ops and data fields; 0, or EINVAL with "<found>, expected <...>". */
	int (*validate_ops)(const void *ops, char *err, size_t errlen);
};

HAK_HIDDEN extern const struct hak_kind hak__kinds[HAK_KIND_COUNT];

HAK_HIDDEN const struct hak_kind *hak__kind(uint32_t id);        /* NULL unless 1..HAK_KIND_COUNT */
HAK_HIDDEN int hak__kind_index(const char *name);                /* case-insensitive; -1 unknown */
HAK_HIDDEN const char *hak__kind_name(uint32_t id);              /* "?" for an unknown kind */
HAK_HIDDEN const char *hak__builtin_name(uint32_t id);           /* NULL for an unknown kind */
HAK_HIDDEN const struct hak_policy_desc *hak__builtin_desc(uint32_t id); /* NULL for an unknown kind */
/* "1..3", for messages. */
#define HAK_KIND_RANGE "1.." HAK__STR(HAK_KIND_COUNT_DIGITS)
#define HAK_KIND_COUNT_DIGITS 3

#endif
