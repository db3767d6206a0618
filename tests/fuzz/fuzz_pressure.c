/* fuzz_pressure: libFuzzer harness for the parsers of the trim policy `pressure`
 * (policies/trim_pressure.c, included whole with HAK_BUILTIN): the text of /proc/pressure/memory,
 * /proc/self/cgroup, a one-value cgroup file (memory.current, memory.high) and a keyed file
 * (memory.events, /proc/meminfo). Byte 0 of the input picks the parser (mod 4), the rest is the
 * file; it is copied into a heap buffer of exactly its size, so AddressSanitizer sees any read
 * past the end (the parsers take a length and must never read at or past it).
 * Contract checks on top of the sanitizers: the result is 0 or EINVAL (ENOENT too for a keyed
 * file); a refusal names a reason; what a success returns is in range (PSI averages at most
 * 100.00 %, cgroup paths NUL-terminated, starting with '/', shorter than PR_PATH). */
#define HAK_BUILTIN 1
#include "../../policies/trim_pressure.c"

#include <stdio.h>

static void contract_broken(const char *what, const char *why)
{
	fprintf(stderr, "fuzz_pressure: contract broken: %s [%s]\n", what, why ? why : "");
	abort();
}

static void check_path(const char *p, int has)
{
	if (!has)
		return;
	size_t n = strnlen(p, PR_PATH);
	if (n == PR_PATH || p[0] != '/')
		contract_broken("a cgroup path is not NUL-terminated or does not start with '/'", p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	unsigned which = data[0] % 4;
	size_t len = size - 1;
	char *text = malloc(len ? len : 1);
	if (!text)
		abort();
	memcpy(text, data + 1, len);
	const char *why = NULL;
	int e;
	if (which == 0) {
		struct pr_psi psi;
		e = pr_parse_psi(text, len, &psi, &why);
		if (!e && (psi.some.avg10 > 10000 || psi.some.avg60 > 10000 || psi.some.avg300 > 10000 ||
			   psi.full.avg10 > 10000 || psi.full.avg60 > 10000 || psi.full.avg300 > 10000))
			contract_broken("a PSI average above 100.00 %", NULL);
	} else if (which == 1) {
		struct pr_cgroups cg;
		e = pr_parse_cgroups(text, len, &cg, &why);
		if (!e) {
			check_path(cg.v2, cg.has_v2);
			check_path(cg.v1_memory, cg.has_v1_memory);
		}
	} else if (which == 2) {
		uint64_t v;
		int is_max;
		e = pr_parse_value(text, len, &v, &is_max, &why);
		if (!e && is_max && v != UINT64_MAX)
			contract_broken("'max' not returned as UINT64_MAX", NULL);
	} else {
		uint64_t v;
		e = pr_parse_keyed(text, len, "MemAvailable", &v, &why);
		if (e == ENOENT)
			e = pr_parse_keyed(text, len, "high", &v, &why);
		if (e == ENOENT)
			e = 0; /* absent is an answer */
	}
	if (e != 0 && e != EINVAL)
		contract_broken("the result is neither 0 nor EINVAL", why);
	if (e && (!why || !*why))
		contract_broken("a refusal without a reason", NULL);
	free(text);
	return 0;
}
