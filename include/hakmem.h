/* hakmem.h: the public API for programs that link hakmem directly (`pkg-config --libs hakmem`).
 * Under LD_PRELOAD the same functions can be found with dlsym(RTLD_DEFAULT, "hak_trim"). */
#ifndef HAKMEM_H
#define HAKMEM_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Print the counters: a readable table (json = 0) or one JSON object on one line (json = 1). */
void hak_stats_print(FILE *out, int json);

/* Drain what threads left behind, return empty SuperSlabs beyond the reserve and purge free
 * pages, as the trim policy would. Returns the number of SuperSlabs released. */
size_t hak_trim(void);

/* Name and version of the policy in force for a kind: "trim", "superslab" or "ownership".
 * NULL for an unknown kind. */
const char *hak_policy_name(const char *kind);
const char *hak_policy_version(const char *kind);

/* Blocks handed out and not yet freed, summed over SuperSlabs (blocks sitting in thread
 * caches count as handed out until the caches are flushed). For tests and tools. */
long long hak_active_blocks(void);

#ifdef __cplusplus
}
#endif
#endif
