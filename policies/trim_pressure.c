/* trim_pressure.c: trim policy `pressure`: memory goes back when the container or the machine
 * needs it, read from what Linux already reports, and is kept for speed while it does not.
 *
 * Where the pressure is read (once, on the helper thread, the first that is there):
 *   1. cgroup v2: the process's cgroup (the "0::<path>" line of /proc/self/cgroup) under
 *      /sys/fs/cgroup or /sys/fs/cgroup/unified (hybrid hosts), or the mount itself (a container
 *      that sees its own cgroup there): memory.current against the limit, memory.high when set,
 *      else memory.max; memory.events' high + max + oom counts.
 *   2. cgroup v1 (hosts whose memory controller is still on v1): the "memory" line's group
 *      under /sys/fs/cgroup/memory, the root group excepted: memory.usage_in_bytes against
 *      memory.limit_in_bytes; memory.failcnt as the events.
 *   3. PSI, /proc/pressure/memory: "some" and "full" avg10.
 *   With none of them it says so in one line and trims exactly as `idle` does. A file that is
 *   there but cannot be parsed (or stops being readable) is one line too, and `idle` from then on.
 * "The share" is usage * 100 / limit; a cgroup without a limit (both "max") is measured against
 * what it could still get: usage * 100 / (MemAvailable of /proc/meminfo + usage).
 *
 * Bands (sampled every interval_ms; PSI: "some" avg10 >= psi_threshold is `between`, "full"
 * avg10 >= psi_threshold is `above`; a cgroup whose memory.events/failcnt rose since the last
 * read while at least `between` is `above`):
 *   below low_watermark   what `idle` does and nothing more: after activity, passes that give
 *                         back what stayed free a whole interval (empties beyond the reserve
 *                         at once), then sleep. Free memory is kept for speed.
 *   between the marks     also, at every sample: empties beyond empty_reserve are unmapped and
 *                         every dirty free unit is purged (whatever its age).
 *   above high_watermark  also: threads are asked to flush their caches (at their next slow
 *                         path; again at each sample where the allocator was used since), the
 *                         ownership policy's reclaim runs for idle threads, the large cache is
 *                         emptied, and a composite pass with keep 0 unmaps every empty.
 *
 * Cost: the files are read with open/read/close into stack buffers on the helper only (no
 * stdio, no malloc: the helper lives inside the allocator). Per interval: one file (the usage
 * file, or the PSI file: open, one read, close); the limit (and MemAvailable) and the events
 * also every 16th interval and at each sample at or above the low mark. Nothing is read on the
 * program's threads. The helper is started like idle's (first empty SuperSlab, first tick),
 * with spawn_helper, and its loop is idle's: sleep, read, act. */
#include <hakmem_policy.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PARK_STATES 8 /* as idle: exited threads' states kept for successors */
#define PARK_UNITS 64
#define PR_PATH 512     /* a cgroup path from /proc/self/cgroup, at most */
#define PR_ROOT 256     /* fs_root, at most */
#define PR_REFRESH 16   /* the limit and the events are read every PR_REFRESH samples */
#define PR_V1_UNLIMITED ((uint64_t)1 << 60) /* v1 reports "no limit" as ~2^63 */

/* ==== The parsers: text in a buffer -> values, or EINVAL with a reason (pure, no I/O) ======== */

/* The next line of [*p, end) in [*ls, *le) (without its newline); 0 at the end. */
static int pr_line(const char **p, const char *end, const char **ls, const char **le)
{
	if (*p >= end)
		return 0;
	const char *q = memchr(*p, '\n', (size_t)(end - *p));
	*ls = *p;
	*le = q ? q : end;
	*p = q ? q + 1 : end;
	return 1;
}

static const char *pr_blanks(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

/* A decimal integer (at least one digit, no overflow) at *p; advances *p. */
static int pr_u64(const char **p, const char *end, uint64_t *out)
{
	const char *q = *p;
	uint64_t v = 0;
	if (q >= end || *q < '0' || *q > '9')
		return EINVAL;
	for (; q < end && *q >= '0' && *q <= '9'; q++) {
		unsigned d = (unsigned)(*q - '0');
		if (v > (UINT64_MAX - d) / 10)
			return ERANGE;
		v = v * 10 + d;
	}
	*p = q;
	*out = v;
	return 0;
}

/* A PSI average, "12.34", in hundredths of a percent (0..10000). */
static int pr_centi(const char **p, const char *end, uint32_t *out)
{
	uint64_t whole;
	const char *q = *p;
	if (pr_u64(&q, end, &whole) || whole > 100)
		return EINVAL;
	uint32_t frac = 0;
	if (q < end && *q == '.') {
		int digits = 0;
		for (q++; q < end && *q >= '0' && *q <= '9'; q++, digits++)
			if (digits < 2)
				frac = frac * 10 + (uint32_t)(*q - '0');
		if (!digits)
			return EINVAL;
		if (digits == 1)
			frac *= 10;
	}
	if (whole * 100 + frac > 10000)
		return EINVAL;
	*p = q;
	*out = (uint32_t)(whole * 100 + frac);
	return 0;
}

struct pr_psi_line {
	uint32_t avg10, avg60, avg300; /* hundredths of a percent */
	uint64_t total;                /* microseconds stalled */
};

struct pr_psi {
	struct pr_psi_line some, full;
	int has_full; /* the "full" line was there */
};

/* "avg10=0.00 avg60=0.00 avg300=0.00 total=0": all four, in any order, others ignored. */
static int pr_psi_fields(const char *p, const char *end, struct pr_psi_line *out, const char **why)
{
	unsigned seen = 0;
	for (p = pr_blanks(p, end); p < end; p = pr_blanks(p, end)) {
		const char *k = p;
		while (p < end && *p != '=' && *p != ' ' && *p != '\t')
			p++;
		if (p >= end || *p != '=') {
			*why = "a field is not key=value (cut short?)";
			return EINVAL;
		}
		size_t klen = (size_t)(p++ - k);
		int bad = 0;
		if (klen == 5 && !memcmp(k, "avg10", 5))
			bad = pr_centi(&p, end, &out->avg10), seen |= 1;
		else if (klen == 5 && !memcmp(k, "avg60", 5))
			bad = pr_centi(&p, end, &out->avg60), seen |= 2;
		else if (klen == 6 && !memcmp(k, "avg300", 6))
			bad = pr_centi(&p, end, &out->avg300), seen |= 4;
		else if (klen == 5 && !memcmp(k, "total", 5))
			bad = pr_u64(&p, end, &out->total), seen |= 8;
		else
			while (p < end && *p != ' ' && *p != '\t')
				p++;
		if (bad || (p < end && *p != ' ' && *p != '\t')) {
			*why = "an average is not a percentage 0.00..100.00, or total not an integer";
			return EINVAL;
		}
	}
	if (seen != 15) {
		*why = "a line lacks one of avg10, avg60, avg300, total (cut short?)";
		return EINVAL;
	}
	return 0;
}

/* /proc/pressure/memory: a "some" line, and a "full" line on every kernel since 4.20. */
static int pr_parse_psi(const char *buf, size_t len, struct pr_psi *out, const char **why)
{
	const char *p = buf, *end = buf + len, *ls, *le;
	int some = 0;
	memset(out, 0, sizeof *out);
	while (pr_line(&p, end, &ls, &le)) {
		if (ls == le)
			continue;
		struct pr_psi_line *dst;
		if (le - ls >= 5 && !memcmp(ls, "some ", 5)) {
			dst = &out->some;
			some = 1;
		} else if (le - ls >= 5 && !memcmp(ls, "full ", 5)) {
			dst = &out->full;
			out->has_full = 1;
		} else {
			*why = "a line starts with neither 'some ' nor 'full '";
			return EINVAL;
		}
		if (pr_psi_fields(ls + 5, le, dst, why))
			return EINVAL;
	}
	if (!some) {
		*why = len ? "no 'some' line" : "empty";
		return EINVAL;
	}
	return 0;
}

struct pr_cgroups {
	char v2[PR_PATH];        /* the "0::" line's path */
	char v1_memory[PR_PATH]; /* the path of the v1 hierarchy holding the memory controller */
	int has_v2, has_v1_memory;
};

/* /proc/self/cgroup: "hierarchy-id:controller,list:/path" lines. */
static int pr_parse_cgroups(const char *buf, size_t len, struct pr_cgroups *out, const char **why)
{
	const char *p = buf, *end = buf + len, *ls, *le;
	memset(out, 0, sizeof *out);
	if (!len) {
		*why = "empty";
		return EINVAL;
	}
	while (pr_line(&p, end, &ls, &le)) {
		if (ls == le)
			continue;
		const char *q = ls;
		uint64_t id;
		const char *c1 = memchr(ls, ':', (size_t)(le - ls));
		const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(le - c1 - 1)) : NULL;
		if (pr_u64(&q, le, &id) || q != c1 || !c2 || c2 + 1 >= le || c2[1] != '/') {
			*why = "a line is not 'id:controllers:/path' (cut short?)";
			return EINVAL;
		}
		size_t plen = (size_t)(le - c2 - 1);
		if (plen >= PR_PATH) {
			*why = "a cgroup path is longer than 511 bytes";
			return EINVAL;
		}
		char *dst = NULL;
		if (id == 0 && c2 == c1 + 1) {
			dst = out->v2;
			out->has_v2 = 1;
		} else {
			for (const char *c = c1 + 1; c < c2;) {
				const char *e = memchr(c, ',', (size_t)(c2 - c));
				e = e ? e : c2;
				if (e - c == 6 && !memcmp(c, "memory", 6)) {
					dst = out->v1_memory;
					out->has_v1_memory = 1;
				}
				c = e + 1;
			}
		}
		if (dst) {
			memcpy(dst, c2 + 1, plen);
			dst[plen] = '\0';
		}
	}
	return 0;
}

/* A file of one number (memory.current) or "max" (memory.high), then at most a newline. */
static int pr_parse_value(const char *buf, size_t len, uint64_t *out, int *is_max, const char **why)
{
	const char *p = buf, *end = buf + len;
	if (len && buf[len - 1] == '\n')
		end--;
	if (is_max)
		*is_max = 0;
	if (end - p == 3 && !memcmp(p, "max", 3) && is_max) {
		*is_max = 1;
		*out = UINT64_MAX;
		return 0;
	}
	if (pr_u64(&p, end, out) || p != end) {
		*why = is_max ? "expected a byte count or 'max'" : "expected a byte count";
		return EINVAL;
	}
	return 0;
}

/* The value of `key` in "key value" lines (memory.events) or "Key:   value kB" lines
 * (/proc/meminfo; kB counts 1024 bytes). ENOENT when no line has that key. */
static int pr_parse_keyed(const char *buf, size_t len, const char *key, uint64_t *out, const char **why)
{
	const char *p = buf, *end = buf + len, *ls, *le;
	size_t klen = strlen(key);
	while (pr_line(&p, end, &ls, &le)) {
		if ((size_t)(le - ls) <= klen || memcmp(ls, key, klen) || (ls[klen] != ' ' && ls[klen] != ':'))
			continue;
		const char *q = ls + klen + (ls[klen] == ':');
		q = pr_blanks(q, le);
		if (pr_u64(&q, le, out)) {
			*why = "its value is not an integer";
			return EINVAL;
		}
		q = pr_blanks(q, le);
		if (le - q == 2 && q[0] == 'k' && q[1] == 'B') {
			if (*out > UINT64_MAX >> 10) {
				*why = "its value is out of range";
				return EINVAL;
			}
			*out <<= 10;
			q = le;
		}
		if (q != le) {
			*why = "something follows its value";
			return EINVAL;
		}
		return 0;
	}
	*why = "no such line";
	return ENOENT;
}

/* ==== Settings =============================================================================== */

struct pressure_settings {
	unsigned long interval_ms;    /* between samples */
	unsigned long empty_reserve;  /* empty SuperSlabs kept below the high mark */
	unsigned long low_watermark;  /* percent of the limit */
	unsigned long high_watermark; /* percent of the limit */
	unsigned long psi_threshold;  /* percent of time stalled (avg10) */
	struct hak_large_limits large;
	char fs_root[PR_ROOT];        /* read /proc and /sys under this folder ("/": the real ones) */
};

static const struct hak_setting_spec pressure_spec[] = {
	{"interval_ms", HAK_SETTING_UINT, 1, 60000, offsetof(struct pressure_settings, interval_ms), "100",
	 "milliseconds between two readings of the pressure (and the helper's trim passes)"},
	{"empty_reserve", HAK_SETTING_UINT, 0, 1024, offsetof(struct pressure_settings, empty_reserve), "2",
	 "empty SuperSlabs kept mapped below the high watermark while the allocator draws on them"},
	{"low_watermark", HAK_SETTING_PERCENT, 1, 99, offsetof(struct pressure_settings, low_watermark), "70",
	 "cgroup usage, in percent of its limit, from which free units are purged and empties released"},
	{"high_watermark", HAK_SETTING_PERCENT, 2, 100, offsetof(struct pressure_settings, high_watermark), "90",
	 "cgroup usage, in percent of its limit, from which everything cached goes back (above low_watermark)"},
	{"psi_threshold", HAK_SETTING_PERCENT, 1, 100, offsetof(struct pressure_settings, psi_threshold), "10",
	 "PSI avg10 percent: 'some' at or above it acts as between the marks, 'full' as above the high one"},
	HAK_LARGE_CACHE_SETTINGS(struct pressure_settings, large),
	{"fs_root", HAK_SETTING_TEXT, 1, PR_ROOT, offsetof(struct pressure_settings, fs_root), "/",
	 "absolute folder under which /proc and /sys are read (tests, containers)"},
};
#define PRESSURE_NSPEC (sizeof pressure_spec / sizeof pressure_spec[0])

/* ==== State ================================================================================== */

enum pr_source { PR_NONE = 0, PR_CGROUP2 = 1, PR_CGROUP1 = 2, PR_PSI = 3 };
enum pr_band { PR_LOW = 0, PR_MID = 1, PR_HIGH = 2 };
enum { CT_SOURCE, CT_BAND, CT_SHARE, CT_MID, CT_HIGH, CT_N };
static const char *const counter_names[CT_N] = {"source", "band", "share_percent", "mid_passes", "high_passes"};

/* What the helper knows about the source (touched by the helper thread only). */
struct pr_monitor {
	int discovered;        /* discovery ran (also kept across fork) */
	int source;            /* enum pr_source */
	char dir[PR_ROOT + 32 + PR_PATH]; /* the cgroup folder, fs_root included */
	uint64_t limit;        /* bytes; 0: none (the share is of MemAvailable + usage) */
	uint64_t avail;        /* MemAvailable when limit is 0 */
	uint64_t events;       /* high + max + oom events (v2) or failcnt (v1) at the last read */
	int events_known;
	unsigned samples;
	unsigned band, share;  /* the last sample's */
	unsigned long seen_work, flush_work; /* `work` at the last pass / the last flush request */
	unsigned quiet;        /* samples without activity (idle's rule: two more passes, then none) */
	unsigned prev_band;
	uint64_t mid_passes, high_passes;
};

struct pressure_state {
	const struct hak_core_api *core;
	hak_policy *self;
	struct pressure_settings set;
	char root[PR_ROOT];          /* fs_root, "" for "/" */
	_Atomic int started;         /* helper thread running */
	_Atomic int stopping;        /* stop ran: the helper ends at its next wake */
	_Atomic int in_step;         /* the helper is reading or trimming (stop waits for it) */
	_Atomic unsigned long work;  /* bumped by the allocator when a pass may help */
	int counters[CT_N];          /* ids, -1 when not counted */
	struct pr_monitor m;
};

/* ==== Reading files (helper thread only: syscalls into the caller's buffer) ================== */

static const char *pr_errname(int e)
{
	switch (e) {
	case ENOENT: return "no such file";
	case EACCES: return "permission denied";
	case EOPNOTSUPP: return "not supported (PSI off: boot with psi=1)";
	case E2BIG: return "longer than the buffer";
	case ENOTDIR: return "not a folder";
	case ENAMETOOLONG: return "path too long";
	case ENODEV: return "no device (cgroup removed?)";
	default: return "read error";
	}
}

/* a + b + c into dst (cap bytes); ENAMETOOLONG when it does not fit. */
static int pr_join(char *dst, size_t cap, const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
	if (la + lb + lc >= cap)
		return ENAMETOOLONG;
	memcpy(dst, a, la);
	memcpy(dst + la, b, lb);
	memcpy(dst + la + lb, c, lc + 1);
	return 0;
}

/* The whole file `path` into buf (at most size - 1 bytes, NUL-terminated); 0 or an errno. */
static int pr_read(const char *path, char *buf, size_t size, size_t *len)
{
	int saved = errno, fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int e = errno;
		errno = saved;
		return e;
	}
	size_t n = 0;
	int e = 0;
	while (n < size - 1) {
		ssize_t r = read(fd, buf + n, size - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			e = errno;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if ((size_t)r < size - 1 - (n - (size_t)r))
			break; /* a short read is the end: proc and cgroup files give one read all they have */
	}
	if (!e && n == size - 1) {
		char extra;
		if (read(fd, &extra, 1) > 0)
			e = E2BIG;
	}
	close(fd);
	errno = saved;
	buf[n] = '\0';
	*len = n;
	return e;
}

/* ==== Discovery and samples (helper thread only) ============================================= */

/* The files of a cgroup source. */
struct pr_files {
	const char *usage, *high, *max, *events; /* high NULL for v1 */
};
static const struct pr_files files_v2 = {"/memory.current", "/memory.high", "/memory.max", "/memory.events"};
static const struct pr_files files_v1 = {"/memory.usage_in_bytes", NULL, "/memory.limit_in_bytes", "/memory.failcnt"};

static const struct pr_files *pr_files_of(int source)
{
	return source == PR_CGROUP2 ? &files_v2 : &files_v1;
}

/* Stop reading: one line, then idle's behaviour for good. */
static void pr_give_up(struct pressure_state *s, const char *file, const char *what, const char *why)
{
	s->core->log("trim pressure: %s%s%s: %s; trimming as idle from now on", s->root, file, what, why);
	s->m.source = PR_NONE;
}

/* Reads dir+name as one value: 0; an errno when it cannot be read (nothing said); EINVAL when
 * it is there but not a value (said, and the source given up). */
static int pr_value(struct pressure_state *s, const char *name, uint64_t *out, int *is_max)
{
	char path[sizeof s->m.dir + 32], buf[64];
	size_t len;
	const char *why;
	int e = pr_join(path, sizeof path, s->m.dir, name, "");
	if (!e)
		e = pr_read(path, buf, sizeof buf, &len);
	if (e)
		return e == EINVAL ? EIO : e;
	if (pr_parse_value(buf, len, out, is_max, &why)) {
		char *nl = memchr(buf, '\n', len);
		if (nl)
			*nl = '\0';
		s->core->log("trim pressure: %s: %s, found '%.24s'; trimming as idle from now on", path, why, buf);
		s->m.source = PR_NONE;
		return EINVAL;
	}
	return 0;
}

/* The same, for a file the source cannot do without: any failure gives the source up. */
static int pr_value_needed(struct pressure_state *s, const char *name, uint64_t *out, int *is_max)
{
	int e = pr_value(s, name, out, is_max);
	if (e && e != EINVAL)
		pr_give_up(s, s->m.dir + strlen(s->root), name, pr_errname(e));
	return e;
}

/* The limit of the cgroup (memory.high, else memory.max; v1: limit_in_bytes), and MemAvailable
 * when there is none. 0 or an errno (the source is given up, with its line). */
static int pr_refresh_limit(struct pressure_state *s)
{
	const struct pr_files *f = pr_files_of(s->m.source);
	uint64_t high = UINT64_MAX, max;
	int high_max = 1, max_max = 0, e;
	if (f->high && (e = pr_value_needed(s, f->high, &high, &high_max)) != 0)
		return e;
	if ((e = pr_value_needed(s, f->max, &max, s->m.source == PR_CGROUP2 ? &max_max : NULL)) != 0)
		return e;
	if (s->m.source == PR_CGROUP1 && max >= PR_V1_UNLIMITED)
		max_max = 1;
	s->m.limit = !high_max ? high : !max_max ? max : 0;
	if (s->m.limit)
		return 0;
	char path[PR_ROOT + 16], buf[4096];
	size_t len;
	const char *why;
	pr_join(path, sizeof path, s->root, "/proc/meminfo", "");
	e = pr_read(path, buf, sizeof buf, &len);
	if (e) {
		pr_give_up(s, "/proc/meminfo", "", pr_errname(e));
		return e;
	}
	if (pr_parse_keyed(buf, len, "MemAvailable", &s->m.avail, &why)) {
		s->core->log("trim pressure: %s: MemAvailable: %s (the cgroup has no limit to measure against); "
			     "trimming as idle from now on", path, why);
		s->m.source = PR_NONE;
		return EINVAL;
	}
	return 0;
}

/* The events since the start: v2 memory.events high + max + oom, v1 memory.failcnt. */
static int pr_read_events(struct pressure_state *s, uint64_t *out)
{
	if (s->m.source == PR_CGROUP1)
		return pr_value_needed(s, files_v1.events, out, NULL);
	char path[sizeof s->m.dir + 32], buf[512];
	size_t len;
	const char *why = NULL;
	uint64_t high, max, oom = 0;
	int e = pr_join(path, sizeof path, s->m.dir, files_v2.events, "");
	if (!e)
		e = pr_read(path, buf, sizeof buf, &len);
	if (e) {
		pr_give_up(s, s->m.dir + strlen(s->root), files_v2.events, pr_errname(e));
		return e;
	}
	const char *key = "high";
	if (!(e = pr_parse_keyed(buf, len, key, &high, &why)) && !(e = pr_parse_keyed(buf, len, key = "max", &max, &why))) {
		e = pr_parse_keyed(buf, len, key = "oom", &oom, &why);
		if (e == ENOENT)
			e = 0, oom = 0;
	}
	if (e) {
		s->core->log("trim pressure: %s: '%s': %s; trimming as idle from now on", path, key, why);
		s->m.source = PR_NONE;
		return EINVAL;
	}
	*out = high + max + oom;
	return 0;
}

/* Is dir (fs_root included) a cgroup of this source? 1 yes, 0 absent, -1 given up. */
static int pr_try_dir(struct pressure_state *s, int source, const char *mount, const char *path)
{
	if (pr_join(s->m.dir, sizeof s->m.dir, s->root, mount, strcmp(path, "/") ? path : ""))
		return 0;
	uint64_t usage;
	s->m.source = source;
	int e = pr_value(s, pr_files_of(source)->usage, &usage, NULL);
	if (e == EINVAL)
		return -1;
	if (e) {
		s->m.source = PR_NONE;
		return 0;
	}
	if (pr_refresh_limit(s))
		return -1;
	return 1;
}

/* Finds the source, once. Logs one line when there is none usable. */
static void pr_discover(struct pressure_state *s)
{
	struct pr_monitor *m = &s->m;
	char path[PR_ROOT + 32], buf[4096];
	size_t len;
	const char *why;
	struct pr_cgroups cg;
	int e, found = 0;
	m->discovered = 1;
	m->source = PR_NONE;
	pr_join(path, sizeof path, s->root, "/proc/self/cgroup", "");
	int ecg = pr_read(path, buf, sizeof buf, &len);
	if (!ecg && pr_parse_cgroups(buf, len, &cg, &why)) {
		s->core->log("trim pressure: %s: %s; trimming as idle", path, why);
		return;
	}
	if (!ecg && cg.has_v2) {
		static const char *const mounts[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"};
		for (unsigned i = 0; !found && i < 4; i++) /* the path under each mount, then the mounts */
			found = pr_try_dir(s, PR_CGROUP2, mounts[i % 2], i < 2 ? cg.v2 : "/");
	}
	if (!ecg && !found && cg.has_v1_memory && strcmp(cg.v1_memory, "/")) { /* not the root group */
		found = pr_try_dir(s, PR_CGROUP1, "/sys/fs/cgroup/memory", cg.v1_memory);
		if (!found) /* a container that sees its own group at the mount */
			found = pr_try_dir(s, PR_CGROUP1, "/sys/fs/cgroup/memory", "/");
	}
	if (found < 0)
		return; /* given up, with its line */
	if (found)
		return; /* m->source and m->dir set by pr_try_dir */
	pr_join(path, sizeof path, s->root, "/proc/pressure/memory", "");
	e = pr_read(path, buf, sizeof buf, &len);
	if (!e) {
		struct pr_psi psi;
		if (pr_parse_psi(buf, len, &psi, &why)) {
			s->core->log("trim pressure: %s: %s; trimming as idle", path, why);
			return;
		}
		m->source = PR_PSI;
		return;
	}
	if (ecg)
		s->core->log("trim pressure: no memory pressure to read (%s/proc/self/cgroup: %s; %s/proc/pressure/memory: "
			     "%s); trimming as idle", s->root, pr_errname(ecg), s->root, pr_errname(e));
	else
		s->core->log("trim pressure: no memory pressure to read (no cgroup v2 or v1 memory files for this "
			     "process's cgroup; %s/proc/pressure/memory: %s); trimming as idle", s->root, pr_errname(e));
}

/* usage * 100 / base, saturated at 1000. */
static unsigned pr_share(uint64_t usage, uint64_t base)
{
	if (!base)
		return 0;
	uint64_t pct = usage > UINT64_MAX / 100 ? usage / (base / 100 ? base / 100 : 1) : usage * 100 / base;
	return pct > 1000 ? 1000 : (unsigned)pct;
}

static unsigned pr_band_of_share(const struct pressure_settings *set, unsigned share)
{
	return share >= set->high_watermark ? PR_HIGH : share >= set->low_watermark ? PR_MID : PR_LOW;
}

static unsigned pr_band_of_psi(const struct pressure_settings *set, const struct pr_psi *psi)
{
	uint32_t thr = (uint32_t)set->psi_threshold * 100;
	if (psi->has_full && psi->full.avg10 >= thr)
		return PR_HIGH;
	return psi->some.avg10 >= thr ? PR_MID : PR_LOW;
}

/* One reading of the source: the band, or PR_LOW once the source is given up. */
static unsigned pr_sample(struct pressure_state *s)
{
	struct pr_monitor *m = &s->m;
	const char *why;
	if (m->source == PR_PSI) {
		char path[PR_ROOT + 32], buf[512];
		size_t len;
		struct pr_psi psi;
		pr_join(path, sizeof path, s->root, "/proc/pressure/memory", "");
		int e = pr_read(path, buf, sizeof buf, &len);
		if (e) {
			pr_give_up(s, "/proc/pressure/memory", "", pr_errname(e));
			return PR_LOW;
		}
		if (pr_parse_psi(buf, len, &psi, &why)) {
			s->core->log("trim pressure: %s: %s; trimming as idle from now on", path, why);
			m->source = PR_NONE;
			return PR_LOW;
		}
		m->share = psi.some.avg10 / 100;
		return pr_band_of_psi(&s->set, &psi);
	}
	uint64_t usage;
	int refresh = m->samples % PR_REFRESH == 0;
	if (pr_value_needed(s, pr_files_of(m->source)->usage, &usage, NULL))
		return PR_LOW;
	if (refresh && pr_refresh_limit(s))
		return PR_LOW;
	m->share = pr_share(usage, m->limit ? m->limit : m->avail + usage);
	unsigned band = pr_band_of_share(&s->set, m->share);
	if (band >= PR_MID && !refresh) { /* confirm against the current limit */
		if (pr_refresh_limit(s))
			return PR_LOW;
		m->share = pr_share(usage, m->limit ? m->limit : m->avail + usage);
		band = pr_band_of_share(&s->set, m->share);
	}
	if (band >= PR_MID || refresh) {
		uint64_t ev;
		if (pr_read_events(s, &ev))
			return PR_LOW;
		if (band >= PR_MID && m->events_known && ev > m->events)
			band = PR_HIGH; /* the cgroup hit its limit since the last look */
		m->events = ev;
		m->events_known = 1;
	}
	return band;
}

/* ==== Decisions ============================================================================== */

/* What the helper does after a reading in `band` (see the file's head). */
static void pr_act(struct pressure_state *s, unsigned band)
{
	const struct hak_core_api *core = s->core;
	struct pr_monitor *m = &s->m;
	unsigned long w = atomic_load_explicit(&s->work, memory_order_relaxed);
	unsigned reserve = (unsigned)s->set.empty_reserve;
	int active = w != m->seen_work;
	if (active)
		m->quiet = 0;
	if (band == PR_HIGH) {
		if (m->prev_band != PR_HIGH || w != m->flush_work) {
			core->request_cache_flush(); /* threads flush at their next slow path */
			m->flush_work = w;
		}
		core->large_release(0, 0);
		core->reclaim_threads();
		core->trim_pass(0, HAK_TRIM_PURGE | HAK_TRIM_LARGE_ALL);
		core->purge(0, UINT64_MAX); /* the pass purges only what aged a whole interval */
		m->high_passes++;
	} else {
		/* idle's rule: a pass after each interval with activity, and two more after it. */
		if (active || ++m->quiet <= 2)
			core->trim_pass(reserve, HAK_TRIM_PURGE | HAK_TRIM_LARGE_AGE);
		if (band == PR_MID) {
			core->release_empty(reserve, 0, ~0u);
			core->purge(0, UINT64_MAX);
			m->mid_passes++;
		}
	}
	m->seen_work = w;
	m->prev_band = band;
	m->band = band;
}

static void pr_publish(struct pressure_state *s)
{
	const int64_t v[CT_N] = {s->m.source, s->m.band, s->m.share, (int64_t)s->m.mid_passes,
				 (int64_t)s->m.high_passes};
	for (int i = 0; i < CT_N; i++)
		s->core->counter_set(s->counters[i], v[i]);
}

/* One interval of the helper: read (when there is a source), act, publish. */
static void pr_step(struct pressure_state *s)
{
	unsigned band = PR_LOW;
	if (s->m.source != PR_NONE) {
		band = pr_sample(s);
		s->m.samples++;
	}
	pr_act(s, band);
	pr_publish(s);
}

/* ==== The helper and the ops ================================================================= */

static void *pressure_loop(void *arg)
{
	struct pressure_state *s = arg;
	struct timespec ts = {(time_t)(s->set.interval_ms / 1000), (long)(s->set.interval_ms % 1000) * 1000000L};
	if (!s->m.discovered) {
		pr_discover(s);
		pr_publish(s);
	}
	for (;;) {
		/* The core's sleep (2.1) says when the helper is the process's last thread: it ends
		 * then, so the process does (an older core: nanosleep). */
		if (HAK_CORE_HAS(s->core, helper_sleep)) {
			if (s->core->helper_sleep((uint64_t)s->set.interval_ms * 1000000u))
				break;
		} else {
			nanosleep(&ts, NULL);
		}
		/* Announce the step, then look at stopping (both seq_cst, stop does the reverse): either
		 * stop sees the step and waits for it, or the step sees stop and never starts. */
		atomic_store(&s->in_step, 1);
		if (atomic_load(&s->stopping))
			break;
		pr_step(s);
		atomic_store(&s->in_step, 0);
	}
	atomic_store(&s->in_step, 0);
	atomic_store(&s->started, 0);
	return NULL;
}

static void pressure_start_helper(struct pressure_state *s)
{
	int expect = 0;
	if (atomic_load_explicit(&s->started, memory_order_relaxed) || atomic_load(&s->stopping) ||
	    !atomic_compare_exchange_strong(&s->started, &expect, 1))
		return;
	int err = s->core->spawn_helper(pressure_loop, s);
	if (err) {
		/* No thread (limits): idle's inline pass; no file is read on the program's threads. */
		atomic_store(&s->started, 0);
		s->core->trim_pass((unsigned)s->set.empty_reserve, HAK_TRIM_PURGE | HAK_TRIM_LARGE_AGE);
		return;
	}
	s->core->set_parking(PARK_STATES, PARK_UNITS); /* its passes retire what waits too long */
}

/* As idle: empties beyond the reserve go at the helper's next pass, at once without a helper. */
static void pressure_superslab_empty(void *state)
{
	struct pressure_state *s = state;
	atomic_fetch_add_explicit(&s->work, 1, memory_order_relaxed);
	if (!atomic_load(&s->started)) {
		if (s->core->empty_count() > s->set.empty_reserve)
			s->core->release_empty((unsigned)s->set.empty_reserve, 0, ~0u);
		pressure_start_helper(s);
	}
}

static void pressure_tick(void *state)
{
	struct pressure_state *s = state;
	atomic_fetch_add_explicit(&s->work, 1, memory_order_relaxed);
	if (!atomic_load_explicit(&s->started, memory_order_relaxed))
		pressure_start_helper(s);
}

static int pressure_out_of_memory(void *state, size_t bytes)
{
	struct pressure_state *s = state;
	(void)bytes;
	struct hak_trim_result r = s->core->trim_pass(0, HAK_TRIM_PURGE | HAK_TRIM_LARGE_ALL);
	return r.superslabs_released || r.large_released || r.bytes_purged;
}

static void pressure_start(void *state)
{
	struct pressure_state *s = state;
	s->core->large_limits(&s->set.large);
	for (int i = 0; i < CT_N; i++)
		s->counters[i] = s->core->counter_register(s->self, counter_names[i], HAK_COUNTER_GAUGE, 1);
}

/* Ends the helper's work: no step starts after this, and one under way is waited for (the stats
 * printed at exit then see no SuperSlab half released). The wait is bounded, 1 s, for a step
 * stuck behind a lock the stopping thread holds (exit() called from a signal handler inside
 * the allocator): it is not a timing of the step. */
static void pressure_stop(void *state)
{
	struct pressure_state *s = state;
	atomic_store(&s->stopping, 1);
	struct timespec ms = {0, 1000000L};
	for (int i = 0; i < 1000 && atomic_load(&s->in_step); i++)
		nanosleep(&ms, NULL);
	s->core->set_parking(0, 0); /* nothing would retire them now */
}

static void pressure_fork_child(void *state)
{
	struct pressure_state *s = state;
	atomic_store(&s->started, 0); /* the thread did not survive fork; the source stays known */
	atomic_store(&s->in_step, 0);
	s->core->set_parking(0, 0);
}

/* The line of key `key` in settings, or 0. */
static int pr_line_of(const struct hak_settings *settings, const char *key)
{
	for (size_t i = 0; i < settings->count; i++)
		if (!strcmp(settings->items[i].key, key))
			return settings->items[i].line;
	return 0;
}

static int pressure_init(const struct hak_core_api *core, hak_policy *self, const struct hak_settings *settings,
			 void **state, char *err, size_t errlen)
{
	struct pressure_state st = {.core = core, .self = self,
				    .set = {.interval_ms = 100, .empty_reserve = 2, .low_watermark = 70,
					    .high_watermark = 90, .psi_threshold = 10, .large = HAK_LARGE_LIMITS_DEFAULT}};
	strcpy(st.set.fs_root, "/");
	int e = hak_settings_parse(settings, pressure_spec, PRESSURE_NSPEC, &st.set, err, errlen);
	if (e)
		return e;
	size_t n = strlen(st.set.fs_root);
	while (n > 1 && st.set.fs_root[n - 1] == '/')
		n--;
	if (st.set.fs_root[0] != '/') {
		int line = pr_line_of(settings, "fs_root");
		snprintf(err, errlen, "line %d: fs_root = '%s': expected an absolute folder path", line, st.set.fs_root);
		return EINVAL;
	}
	memcpy(st.root, st.set.fs_root, n);
	st.root[n == 1 ? 0 : n] = '\0'; /* "/" is the default: no prefix */
	if (st.set.low_watermark >= st.set.high_watermark) {
		int hl = pr_line_of(settings, "high_watermark"), ll = pr_line_of(settings, "low_watermark");
		if (hl)
			snprintf(err, errlen, "line %d: high_watermark = '%lu': expected a percentage above low_watermark (%lu)",
				 hl, st.set.high_watermark, st.set.low_watermark);
		else
			snprintf(err, errlen, "line %d: low_watermark = '%lu': expected a percentage below high_watermark (%lu)",
				 ll, st.set.low_watermark, st.set.high_watermark);
		return EINVAL;
	}
	for (int i = 0; i < CT_N; i++)
		st.counters[i] = -1;
	struct pressure_state *s = malloc(sizeof *s);
	if (!s)
		return ENOMEM;
	memcpy(s, &st, sizeof st);
	*state = s;
	return 0;
}

static void pressure_fini(void *state)
{
	free(state);
}

static const struct hak_trim_ops pressure_ops = {
	.size = sizeof(struct hak_trim_ops),
	.superslab_empty = pressure_superslab_empty,
	.tick = pressure_tick,
	.out_of_memory = pressure_out_of_memory,
};

HAK_POLICY_EXPORT(hak__builtin_trim_pressure) = {
	HAK_POLICY_DESC_INIT(HAK_POLICY_TRIM, "pressure", "1.0.0",
			     "trims as idle while memory is plentiful; purges, then gives back everything, as the "
			     "cgroup (or PSI) says memory runs short"),
	.init = pressure_init,
	.start = pressure_start,
	.stop = pressure_stop,
	.fini = pressure_fini,
	.fork_child = pressure_fork_child,
	.ops = &pressure_ops,
	HAK_SETTINGS_SPEC(pressure_spec),
};
