/* fuzz_policy: libFuzzer harness for the plugin descriptor checks, hak__policy_validate
 * (core/loader.c). The fuzz bytes build a struct hak_policy_desc the way a broken or hostile
 * plugin could export it:
 *   a 56-byte head (little-endian, see struct head), then NUL-separated strings:
 *   signature, name, version, summary, want_name.
 * Every string lives in its own heap buffer of exactly its length + 1, the descriptor in one of
 * exactly min(avail, sizeof) bytes, the ops table in one of exactly the size its first field
 * claims (at least that field's 8 bytes, at most the real struct), so AddressSanitizer
 * sees any read past what the plugin really exported (the validator promises to read only inside
 * `avail`, and only bounded reads of strings it does not trust yet).
 * Contract checks on top of the sanitizers (core/loader.h): the result is 0 or EINVAL; a refusal
 * leaves a NUL-terminated message inside errlen; an acceptance means magic, ABI major, size,
 * avail, signature, kind, name and init really were right. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"

struct head {
	uint64_t magic;
	uint32_t abi_major;
	uint32_t abi_minor;
	uint64_t size;      /* the descriptor's size field */
	uint32_t kind;
	uint32_t want_kind; /* 0: any */
	uint64_t avail;     /* readable bytes; reduced modulo sizeof + 64 unless F_AVAIL_UNKNOWN */
	uint32_t flags;     /* F_* below: which pointers are set */
	uint32_t tstate;    /* ownership thread_state_size */
	uint32_t errlen;    /* reduced modulo 257 */
	uint32_t extra;     /* bits 0-1: min_core_minor; bit 2: the ops table claims a short size;
			     * bits 3-4: settings_count; bit 5: a settings spec */
};

enum {
	F_SIGNATURE = 1u << 0,
	F_NAME = 1u << 1,
	F_VERSION = 1u << 2,
	F_SUMMARY = 1u << 3,
	F_INIT = 1u << 4,
	F_FINI = 1u << 5,
	F_TRIM = 1u << 6,
	F_SUPERSLAB = 1u << 7,
	F_OWNERSHIP = 1u << 8,
	F_LG_SIZE_FOR = 1u << 9,
	F_REFILL = 1u << 10,
	F_FLUSH = 1u << 11,
	F_FREE_FOREIGN = 1u << 12,
	F_THREAD_EXIT = 1u << 13,
	F_FORK_PREPARE = 1u << 14,
	F_FORK_PARENT = 1u << 15,
	F_FORK_CHILD = 1u << 16,
	F_CONSOLIDATE = 1u << 17,
	F_WANT_NAME = 1u << 18,
	F_DESC_NULL = 1u << 19,
	F_AVAIL_UNKNOWN = 1u << 20,
	F_TRIM_OPS = 1u << 21, /* the trim table's functions */
};
/* The ops table: ownership, else superslab, else trim (the descriptor carries one). */

static void contract_broken(const char *what, const char *err)
{
	fprintf(stderr, "fuzz_policy: contract broken: %s [%s]\n", what, err ? err : "");
	abort();
}

/* Never called: the validator only looks at whether pointers are set. */
static void dummy(void)
{
}
#define FN(type) ((type)(void (*)(void))dummy)

/* Next NUL-terminated piece of the tail, copied to an exact-size buffer; NULL when absent. */
static char *next_string(const uint8_t **p, const uint8_t *end, int present)
{
	const uint8_t *s = *p;
	const uint8_t *nul = s < end ? memchr(s, 0, (size_t)(end - s)) : NULL;
	size_t n = nul ? (size_t)(nul - s) : (size_t)(end - s);
	*p = nul ? nul + 1 : end;
	if (!present)
		return NULL;
	char *out = malloc(n + 1);
	if (!out)
		abort();
	memcpy(out, s, n);
	out[n] = '\0';
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct head h;
	if (size < sizeof h)
		return -1; /* not an input of this format: keep it out of the corpus */
	memcpy(&h, data, sizeof h);
	const uint8_t *p = data + sizeof h, *end = data + size;
	uint32_t f = h.flags;

	char *sig = next_string(&p, end, f & F_SIGNATURE);
	char *name = next_string(&p, end, f & F_NAME);
	char *version = next_string(&p, end, f & F_VERSION);
	char *summary = next_string(&p, end, f & F_SUMMARY);
	char *want_name = next_string(&p, end, f & F_WANT_NAME);

	struct hak_trim_ops trim = {.size = sizeof trim};
	struct hak_superslab_ops ss = {.size = sizeof ss};
	struct hak_ownership_ops own = {.size = sizeof own};
	if (f & F_TRIM_OPS) {
		trim.superslab_empty = FN(void (*)(void *));
		trim.tick = FN(void (*)(void *));
		trim.out_of_memory = FN(int (*)(void *, size_t));
	}
	if (f & F_LG_SIZE_FOR)
		ss.lg_size_for = FN(unsigned (*)(void *, unsigned));
	own.thread_state_size = h.tstate;
	own.caches_any = (int)(h.tstate & 1);
	if (f & F_REFILL)
		own.refill = FN(int (*)(void *, hak_thread *, void *, unsigned));
	if (f & F_FLUSH)
		own.flush = FN(void (*)(void *, hak_thread *, void *, unsigned, struct hak_chain));
	if (f & F_FREE_FOREIGN)
		own.free_foreign = FN(void (*)(void *, hak_thread *, hak_slab *, void *));
	if (f & F_THREAD_EXIT)
		own.thread_exit = FN(void (*)(void *, hak_thread *, void *));
	if (f & F_CONSOLIDATE)
		own.consolidate = FN(void (*)(void *));
	const void *table = (f & F_OWNERSHIP) ? (const void *)&own : (f & F_SUPERSLAB) ? (const void *)&ss
			  : (f & F_TRIM) ? (const void *)&trim : NULL;
	size_t table_size = (f & F_OWNERSHIP) ? sizeof own : (f & F_SUPERSLAB) ? sizeof ss : sizeof trim;
	void *ops = NULL;
	if (table) {
		size_t claim = (h.extra & 4) ? sizeof(size_t) : table_size;
		ops = malloc(claim);
		if (!ops)
			abort();
		memcpy(ops, table, claim);
		*(size_t *)ops = claim;
	}
	static const struct hak_setting_spec spec[1] = {{"k", HAK_SETTING_UINT, 0, 1, 0, "0", "a key"}};

	struct hak_policy_desc full = {
		.magic = h.magic,
		.abi_major = h.abi_major,
		.abi_minor = h.abi_minor,
		.size = (size_t)h.size,
		.signature = sig,
		.kind = h.kind,
		.min_core_minor = h.extra & 3,
		.name = name,
		.version = version,
		.summary = summary,
		.init = (f & F_INIT) ? FN(int (*)(const struct hak_core_api *, hak_policy *, const struct hak_settings *,
					    void **, char *, size_t))
				     : NULL,
		.fini = (f & F_FINI) ? FN(void (*)(void *)) : NULL,
		.fork_prepare = (f & F_FORK_PREPARE) ? FN(void (*)(void *)) : NULL,
		.fork_parent = (f & F_FORK_PARENT) ? FN(void (*)(void *)) : NULL,
		.fork_child = (f & F_FORK_CHILD) ? FN(void (*)(void *)) : NULL,
		.ops = ops,
		.settings_spec = (h.extra & 32) ? spec : NULL,
		.settings_count = (h.extra >> 3) & 3,
	};
	size_t avail = (f & F_AVAIL_UNKNOWN) ? SIZE_MAX : (size_t)(h.avail % (sizeof full + 64));
	size_t have = avail < sizeof full ? avail : sizeof full;
	/* Exactly the bytes the plugin exported; malloc(0) still gives a distinct pointer. */
	struct hak_policy_desc *d = malloc(have);
	if (!d && have)
		abort();
	memcpy(d, &full, have);

	size_t errlen = h.errlen % 257;
	char *err = malloc(errlen ? errlen : 1);
	if (!err)
		abort();
	if (errlen)
		memset(err, 'x', errlen);

	int rc = hak__policy_validate((f & F_DESC_NULL) ? NULL : d, avail, h.want_kind, want_name, err, errlen);
	if (rc != 0 && rc != EINVAL)
		contract_broken("result neither 0 nor EINVAL", NULL);
	if (rc != 0 && errlen && !memchr(err, '\0', errlen))
		contract_broken("a refusal without a NUL-terminated message inside errlen", NULL);
	if (rc == 0) {
		char why[128];
		if (f & F_DESC_NULL)
			contract_broken("accepted a NULL descriptor", NULL);
		if (avail < HAK_POLICY_DESC_SIZE_2_0)
			contract_broken("accepted a descriptor shorter than ABI 2.0", NULL);
		if (full.magic != HAK_POLICY_MAGIC || full.abi_major != HAK_POLICY_ABI_MAJOR ||
		    full.size < HAK_POLICY_DESC_SIZE_2_0 || full.min_core_minor > HAK_POLICY_ABI_MINOR)
			contract_broken("accepted a wrong magic, ABI major, size or core minor", NULL);
		if (!ops || *(size_t *)ops < table_size)
			contract_broken("accepted a missing or short ops table", NULL);
		if (!full.fork_prepare != !full.fork_parent)
			contract_broken("accepted fork_prepare without fork_parent", NULL);
		if (full.settings_count && !full.settings_spec)
			contract_broken("accepted a settings count without a spec", NULL);
		if (!sig || strcmp(sig, HAK_POLICY_SIGNATURE) != 0)
			contract_broken("accepted a wrong signature", sig);
		if (full.kind < 1 || full.kind > HAK_KIND_COUNT || (h.want_kind && full.kind != h.want_kind))
			contract_broken("accepted a wrong kind", NULL);
		if (!name || hak__policy_name_check(name, why, sizeof why) != 0)
			contract_broken("accepted a name that is not bare", name);
		if (want_name && strcmp(name, want_name) != 0)
			contract_broken("accepted a name other than the one wanted", name);
		if (!full.init)
			contract_broken("accepted a descriptor without init", NULL);
	}

	free(err);
	free(d);
	free(ops);
	free(sig);
	free(name);
	free(version);
	free(summary);
	free(want_name);
	return 0;
}
