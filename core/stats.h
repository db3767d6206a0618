/* stats.h: layer 9, the counters hakmem prints (stats.c), declared once: each row names its
 * JSON group, its key and where its value comes from. The struct, the collection, the table,
 * the JSON and the key list the e2e test checks (`hakmem stats-keys`) are expanded from it.
 * Plugins' own counters (counter_register) follow, under policies.<kind>.counters. */
#ifndef HAK_STATS_H
#define HAK_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"

/* X(group, key, source, help); every value is an int64_t; group `top` is the JSON's top level. `c` is the collection context
 * (stats.c): thread sums, large-block counts, the size policy's answer. */
#define HAK_STATS_FIELDS(X)                                                                            \
	X(superslabs, mapped, c->ss_mapped, "SuperSlabs mapped since start")                        \
	X(superslabs, released, c->ss_released, "SuperSlabs unmapped since start")                  \
	X(superslabs, live, c->ss_live, "SuperSlabs mapped now")                                          \
	X(superslabs, peak_live, hak__pool_peak_live(), "most SuperSlabs mapped at once")                       \
	X(superslabs, size_bytes, c->size_bytes, "size of the next SuperSlab (the size policy)")                \
	X(superslabs, empty_kept, hak__pool_empty_count(), "empty SuperSlabs mapped now")                       \
	X(superslabs, live_1mb, hak__pool_live_of(20), "live 1 MB SuperSlabs")                                  \
	X(superslabs, live_2mb, hak__pool_live_of(21), "live 2 MB SuperSlabs")                                  \
	X(frees, local, c->t.local_frees, "frees into the freeing thread's cache")                              \
	X(frees, remote, c->t.counters[HAK_TCOUNT_remote_frees], "frees handed to the owning policy")           \
	X(large, mapped, c->large_mapped, "large mappings made since start")                                    \
	X(large, released, c->large_released, "large mappings unmapped since start")                            \
	X(large, live, c->large_live, "large blocks with the program")                                          \
	X(large, cached, c->large_cached, "freed large mappings cached for reuse")                              \
	X(threads, live, c->t.live, "live threads' own states (the shared one of exited threads not counted)") \
	X(threads, parked, c->t.parked, "exited threads' states waiting for a successor")                       \
	X(top, active_blocks, hak__pool_active_total(), "blocks out of slab land (with the program or cached)") \
	X(top, adoptions, c->t.counters[HAK_TCOUNT_adoptions], "abandoned slabs taken over")                    \
	X(top, remote_drained, c->t.counters[HAK_TCOUNT_remote_drained], "blocks drained from remote queues")   \
	X(top, trim_passes, hak__trim_passes(), "composite trim passes")                                        \
	X(top, bytes_purged, hak__pool_purged_total(), "bytes of free units purged (madvise)")                  \
	X(top, mappings, hak__os_mappings(), "memory mappings hakmem holds")                                    \
	X(top, peak_mappings, hak__os_mappings_peak(), "most mappings held at once")                            \
	X(top, map_budget, hak__os_map_budget(), "most mappings hakmem may hold")

HAK_HIDDEN int hak__stats_format(char *buf, size_t len, int json); /* snprintf-like */
HAK_HIDDEN void hak__stats_fd(int fd, int json);                  /* no stdio, errno kept */

#endif
