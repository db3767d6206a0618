/* stats.c: the counters. Per-thread counts are summed on demand with the global ones;
 * printed as an aligned table or one JSON line, without stdio (safe at exit and in malloc). */
#include "hakmem_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct hak_global_counters hak__g;

void hak__stats_collect(struct hak_stats *s)
{
	memset(s, 0, sizeof *s);
	s->ss_mapped = hak_load_relaxed(&hak__g.ss_mapped);
	s->ss_released = hak_load_relaxed(&hak__g.ss_released);
	s->ss_live = hak__live_superslabs();
	s->ss_peak_live = hak_load_relaxed(&hak__g.ss_peak_live);
	/* The size the policy in force gives new SuperSlabs (the first ones of a process are made
	 * by the built-in default before the configuration is read). */
	unsigned lg = hak__size_policy.desc ? hak__size_policy.desc->superslab->lg_size_for(hak__size_policy.state, 0)
					    : hak_load_relaxed(&hak__g.ss_last_lg);
	s->ss_size_bytes = lg ? (uint64_t)1 << lg : 0;
	s->ss_empty = hak__empty_count();
	s->ss_live_1m = hak__live_superslabs_of(20);
	s->ss_live_2m = hak__live_superslabs_of(21);
	uint64_t counters[4] = {0};
	s->frees_local = hak_load_relaxed(&hak__g.retired_local);
	s->frees_remote = hak_load_relaxed(&hak__g.retired_remote);
	for (unsigned i = 0; i < 4; i++)
		counters[i] = hak_load_relaxed(&hak__g.retired_counters[i]);
	hak__threads_sum(&s->frees_local, &s->frees_remote, counters);
	s->adoptions = counters[HAK_COUNT_ADOPTIONS];
	s->remote_drained = counters[HAK_COUNT_REMOTE_DRAINED];
	s->central_pops = counters[HAK_COUNT_CENTRAL_POPS];
	s->central_pushes = counters[HAK_COUNT_CENTRAL_PUSHES];
	s->trim_passes = hak_load_relaxed(&hak__g.trim_passes);
	s->bytes_purged = hak_load_relaxed(&hak__g.bytes_purged);
	s->large_mapped = hak_load_relaxed(&hak__g.large_mapped);
	s->large_released = hak_load_relaxed(&hak__g.large_released);
	hak__large_stats(&s->large_live, &s->large_cached);
	s->mappings = hak_load_relaxed(&hak__mappings);
	s->mappings_peak = hak_load_relaxed(&hak__mappings_peak);
	s->map_budget = hak__os_map_budget();
	s->active_blocks = hak__superslab_active_total();
}

static const char *pname(const struct hak_active_policy *p)
{
	return p->desc ? p->desc->name : "?";
}

static const char *pver(const struct hak_active_policy *p)
{
	return p->desc ? p->desc->version : "?";
}

/* Human units: 1536 -> "1.5 KiB". */
static const char *human(uint64_t b, char *buf, size_t len)
{
	static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)b;
	unsigned u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
	return buf;
}

int hak__stats_format(char *buf, size_t len, int json)
{
	struct hak_stats s;
	hak__stats_collect(&s);
	struct hak_model *m = atomic_load(&hak__model_current);
	struct hak_active_policy own = {m ? m->desc : NULL, NULL};
	if (json)
		return snprintf(buf, len,
				"{\"policies\":{\"trim\":{\"name\":\"%s\",\"version\":\"%s\"},"
				"\"superslab\":{\"name\":\"%s\",\"version\":\"%s\"},"
				"\"ownership\":{\"name\":\"%s\",\"version\":\"%s\"}},"
				"\"superslabs\":{\"mapped\":%llu,\"released\":%llu,\"live\":%llu,\"peak_live\":%llu,"
				"\"size_bytes\":%llu,\"empty_kept\":%llu,"
				"\"live_by_size\":{\"1048576\":%llu,\"2097152\":%llu}},"
				"\"frees\":{\"local\":%llu,\"remote\":%llu},\"active_blocks\":%lld,"
				"\"adoptions\":%llu,\"remote_drained\":%llu,"
				"\"central\":{\"pops\":%llu,\"pushes\":%llu},"
				"\"trim_passes\":%llu,\"bytes_purged\":%llu,"
				"\"large\":{\"mapped\":%llu,\"released\":%llu,\"live\":%llu,\"cached\":%llu},"
				"\"mappings\":%ld,\"peak_mappings\":%ld,\"map_budget\":%lu}\n",
				pname(&hak__trim_policy), pver(&hak__trim_policy), pname(&hak__size_policy),
				pver(&hak__size_policy), pname(&own), pver(&own),
				(unsigned long long)s.ss_mapped, (unsigned long long)s.ss_released,
				(unsigned long long)s.ss_live, (unsigned long long)s.ss_peak_live,
				(unsigned long long)s.ss_size_bytes, (unsigned long long)s.ss_empty,
				(unsigned long long)s.ss_live_1m, (unsigned long long)s.ss_live_2m,
				(unsigned long long)s.frees_local, (unsigned long long)s.frees_remote,
				(long long)s.active_blocks, (unsigned long long)s.adoptions,
				(unsigned long long)s.remote_drained, (unsigned long long)s.central_pops,
				(unsigned long long)s.central_pushes, (unsigned long long)s.trim_passes,
				(unsigned long long)s.bytes_purged, (unsigned long long)s.large_mapped,
				(unsigned long long)s.large_released, (unsigned long long)s.large_live,
				(unsigned long long)s.large_cached, s.mappings, s.mappings_peak, s.map_budget);
	char h1[32], h2[32];
	uint64_t frees = s.frees_local + s.frees_remote;
	return snprintf(buf, len,
			"hakmem: policies     trim %s %s | superslab %s %s | ownership %s %s\n"
			"hakmem: SuperSlabs   %10llu mapped %10llu released %6llu live %6llu peak  (%s new, %llu empty kept)\n"
			"hakmem: live by size %10llu x 1 MiB %8llu x 2 MiB\n"
			"hakmem: frees        %10llu local  %10llu remote   (%.1f%% remote)\n"
			"hakmem: blocks       %10lld active %10llu adopted slabs %10llu drained remotely\n"
			"hakmem: central (F)  %10llu pops   %10llu pushes\n"
			"hakmem: trim         %10llu passes %10s purged\n"
			"hakmem: large        %10llu mapped %10llu released %6llu live %6llu cached\n"
			"hakmem: mappings     %10ld now    %10ld peak     (budget %lu)\n",
			pname(&hak__trim_policy), pver(&hak__trim_policy), pname(&hak__size_policy),
			pver(&hak__size_policy), pname(&own), pver(&own), (unsigned long long)s.ss_mapped,
			(unsigned long long)s.ss_released, (unsigned long long)s.ss_live,
			(unsigned long long)s.ss_peak_live, human(s.ss_size_bytes, h1, sizeof h1),
			(unsigned long long)s.ss_empty, (unsigned long long)s.ss_live_1m,
			(unsigned long long)s.ss_live_2m, (unsigned long long)s.frees_local,
			(unsigned long long)s.frees_remote, frees ? 100.0 * (double)s.frees_remote / (double)frees : 0.0,
			(long long)s.active_blocks, (unsigned long long)s.adoptions,
			(unsigned long long)s.remote_drained, (unsigned long long)s.central_pops,
			(unsigned long long)s.central_pushes, (unsigned long long)s.trim_passes,
			human(s.bytes_purged, h2, sizeof h2), (unsigned long long)s.large_mapped,
			(unsigned long long)s.large_released, (unsigned long long)s.large_live,
			(unsigned long long)s.large_cached, s.mappings, s.mappings_peak, s.map_budget);
}

void hak__stats_fd(int fd, int json)
{
	int saved = errno;
	char buf[2048];
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
