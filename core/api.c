/* api.c: the ONLY file that exports the libc allocation names (and their __libc_ aliases),
 * hakmem's public hak_ API, fork() (fork.c does the work), and the process hooks: the
 * constructor that reads the configuration, loads the plugins and installs the fork handlers
 * (fork.c), and the exit-time stats.
 * Never link this file into a test runner: everything else is testable without it.
 * While a trace is recorded (trace.h) the entry points other than malloc and free go through
 * trace.c's wrappers: the lines marked "recording". */
#include "alloc_fast.h"
#if HAK_FAST_ASM
#include "alloc_fast_x86_64.h"
#endif
#include "hakmem.h"
#include "introspect.h"
#include "large.h"
#include "os.h"
#include "policy_call.h"
#include "pool.h"
#include "services.h"
#include "slab.h"
#include "startup.h"
#include "stats.h"
#include "trace.h"
#include "trace_format.h"
#include "trim.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define HAK_EXPORT __attribute__((visibility("default")))

/* ---- The glibc malloc surface ---------------------------------------------------------------- */

#if !HAK_FAST_ASM /* else alloc_fast_x86_64.h defines malloc, free and their __libc_ aliases */
HAK_EXPORT void *malloc(size_t n)
{
	return hak__malloc_fast(n);
}

HAK_EXPORT void free(void *p)
{
	hak__free_fast(p);
}
#endif

HAK_EXPORT void *calloc(size_t n, size_t size)
{
	if (hak__tracing()) /* recording */
		return hak__trace_calloc(n, size);
	return hak__calloc(n, size);
}

HAK_EXPORT void *realloc(void *p, size_t n)
{
	if (hak__tracing()) /* recording */
		return hak__trace_realloc(p, n);
	return hak__realloc(p, n);
}

HAK_EXPORT void *reallocarray(void *p, size_t n, size_t size)
{
	size_t bytes;
	if (__builtin_mul_overflow(n, size, &bytes)) {
		errno = ENOMEM;
		return NULL;
	}
	if (hak__tracing()) /* recording */
		return hak__trace_realloc(p, bytes);
	return hak__realloc(p, bytes);
}

/* glibc's memalign (and aligned_alloc, the same function in glibc 2.36): EINVAL only for an
 * alignment above SIZE_MAX / 2 + 1; any other is rounded up to the next power of two, and one
 * that cannot be served (up to 2^63) fails with ENOMEM like any size that cannot. */
static void *memalign_glibc(size_t align, size_t n, unsigned kind)
{
	if (align > SIZE_MAX / 2 + 1) {
		errno = EINVAL;
		return NULL;
	}
	if (align & (align - 1))
		align = (size_t)1 << (64 - __builtin_clzll(align));
	if (hak__tracing()) /* recording */
		return hak__trace_memalign(kind, align, n);
	return hak__memalign(align, n);
}

HAK_EXPORT void *memalign(size_t align, size_t n)
{
	return memalign_glibc(align, n, HAK_TALIGN_MEMALIGN);
}

HAK_EXPORT void *aligned_alloc(size_t align, size_t n)
{
	return memalign_glibc(align, n, HAK_TALIGN_ALIGNED_ALLOC);
}

HAK_EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
	if (align < sizeof(void *) || (align & (align - 1)))
		return EINVAL;
	void *p = hak__tracing() ? hak__trace_memalign(HAK_TALIGN_POSIX_MEMALIGN, align, n) /* recording */
				 : hak__memalign(align, n);
	if (!p) {
		errno = ENOMEM; /* as glibc's: programs look at errno after a failed call */
		return ENOMEM;
	}
	*out = p;
	return 0;
}

HAK_EXPORT void *valloc(size_t n)
{
	if (hak__tracing()) /* recording */
		return hak__trace_memalign(HAK_TALIGN_VALLOC, (size_t)sysconf(_SC_PAGESIZE), n);
	return hak__memalign((size_t)sysconf(_SC_PAGESIZE), n);
}

HAK_EXPORT void *pvalloc(size_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	if (n > SIZE_MAX - page) {
		errno = ENOMEM;
		return NULL;
	}
	if (hak__tracing()) /* recording */
		return hak__trace_memalign(HAK_TALIGN_PVALLOC, page, n ? (n + page - 1) & ~(page - 1) : page);
	return hak__memalign(page, n ? (n + page - 1) & ~(page - 1) : page);
}

HAK_EXPORT size_t malloc_usable_size(void *p)
{
	return hak__usable_size(p);
}

HAK_EXPORT void cfree(void *p)
{
	hak__free_fast(p);
}

HAK_EXPORT void free_sized(void *p, size_t size)
{
	if (hak__tracing()) /* recording */
		return hak__trace_free_sized(p, size, 0);
	hak__free_fast(p);
}

HAK_EXPORT void free_aligned_sized(void *p, size_t align, size_t size)
{
	if (hak__tracing()) /* recording */
		return hak__trace_free_sized(p, size, align);
	hak__free_fast(p);
}

/* malloc_trim and hak_trim: the program asks, so everything that can go back goes back, whatever
 * the trim policy (the composite pass with every flag, after the caller's own caches). */
static struct hak_trim_result trim_everything(void)
{
	hak__init_once();
	struct hak_thread *t = hak__tls;
	if (t->state == HAK_THREAD_LIVE)
		hak__thread_flush(t);
	return hak__trim_pass(0, HAK_TRIM_PURGE | HAK_TRIM_LARGE_ALL);
}

/* fork() itself, with every signal blocked from before glibc's fork takes its atfork lock to
 * after it released it (fork.c): a signal handler that forks cannot run inside a fork. */
HAK_EXPORT pid_t fork(void)
{
	return hak__fork();
}

HAK_EXPORT int malloc_trim(size_t pad)
{
	if (hak__tracing()) /* recording */
		hak__trace_trim(pad);
	struct hak_trim_result r = trim_everything();
	return r.superslabs_released > 0 || r.bytes_purged > 0 || r.large_released > 0;
}

/* glibc's answers: 1 for every parameter and value (an unknown parameter included: mallopt(3),
 * BUGS), except M_MXFAST outside 0 .. 80 * sizeof(size_t) / 4, which glibc refuses with 0.
 * hakmem applies none of them: its knobs live in its INI file (hakmem.ini(5)). */
HAK_EXPORT int mallopt(int param, int value)
{
	if (param == M_MXFAST && (value < 0 || (size_t)value > 80 * sizeof(size_t) / 4))
		return 0;
	return 1;
}

HAK_EXPORT struct mallinfo2 mallinfo2(void)
{
	struct mallinfo2 mi;
	hak__mallinfo2(&mi);
	return mi;
}

static int saturate(size_t v)
{
	return v > INT_MAX ? INT_MAX : (int)v;
}

/* The same figures in ints: a figure past INT_MAX reads INT_MAX (glibc's wraps). */
HAK_EXPORT struct mallinfo mallinfo(void)
{
	struct mallinfo2 m2;
	hak__mallinfo2(&m2);
	struct mallinfo mi;
	mi.arena = saturate(m2.arena);
	mi.ordblks = saturate(m2.ordblks);
	mi.smblks = saturate(m2.smblks);
	mi.hblks = saturate(m2.hblks);
	mi.hblkhd = saturate(m2.hblkhd);
	mi.usmblks = saturate(m2.usmblks);
	mi.fsmblks = saturate(m2.fsmblks);
	mi.uordblks = saturate(m2.uordblks);
	mi.fordblks = saturate(m2.fordblks);
	mi.keepcost = saturate(m2.keepcost);
	return mi;
}

/* glibc's layout on stderr, through stdio like glibc's (no hakmem lock is held by then). */
HAK_EXPORT void malloc_stats(void)
{
	char buf[1024];
	int saved = errno;
	hak__malloc_stats_format(buf, sizeof buf);
	fputs(buf, stderr);
	errno = saved;
}

/* glibc returns EINVAL (the value, errno untouched) for options != 0; the man page says -1 and
 * errno. hakmem returns what glibc returns and sets errno too, so either reading sees EINVAL. */
HAK_EXPORT int malloc_info(int options, FILE *fp)
{
	if (options != 0 || !fp) {
		errno = EINVAL;
		return EINVAL;
	}
	return hak__malloc_info_write(fp);
}

#if !HAK_FAST_ASM
HAK_EXPORT void *__libc_malloc(size_t n) __attribute__((alias("malloc"), copy(malloc)));
HAK_EXPORT void __libc_free(void *p) __attribute__((alias("free"), copy(free)));
#endif
HAK_EXPORT void *__libc_calloc(size_t n, size_t size) __attribute__((alias("calloc"), copy(calloc)));
HAK_EXPORT void *__libc_realloc(void *p, size_t n) __attribute__((alias("realloc"), copy(realloc)));
HAK_EXPORT void *__libc_memalign(size_t align, size_t n) __attribute__((alias("memalign"), copy(memalign)));
HAK_EXPORT void *__libc_valloc(size_t n) __attribute__((alias("valloc"), copy(valloc)));
HAK_EXPORT void *__libc_pvalloc(size_t n) __attribute__((alias("pvalloc"), copy(pvalloc)));
HAK_EXPORT int __posix_memalign(void **out, size_t align, size_t n) __attribute__((alias("posix_memalign"), copy(posix_memalign)));

/* ---- hakmem's own API -------------------------------------------------------------------------- */

HAK_EXPORT void hak_stats_print(FILE *out, int json)
{
	if (!out)
		return;
	char buf[8192]; /* called by the program, not inside malloc: stdio is fine here */
	hak__stats_format(buf, sizeof buf, json);
	fputs(buf, out);
}

HAK_EXPORT size_t hak_trim(void)
{
	return trim_everything().superslabs_released;
}

static const struct hak_policy_desc *desc_of(const char *kind)
{
	if (!kind)
		return NULL;
	hak__init_once();
	int k = hak__kind_index(kind);
	const struct hak_policy *p = k >= 0 ? hak__policy_current((uint32_t)k + 1) : NULL;
	return p ? p->desc : NULL;
}

HAK_EXPORT const char *hak_policy_name(const char *kind)
{
	const struct hak_policy_desc *d = desc_of(kind);
	return d ? d->name : NULL;
}

HAK_EXPORT const char *hak_policy_version(const char *kind)
{
	const struct hak_policy_desc *d = desc_of(kind);
	return d ? d->version : NULL;
}

HAK_EXPORT long long hak_active_blocks(void)
{
	return (long long)hak__threads_active_total();
}

/* ---- Process hooks ----------------------------------------------------------------------------- */

__attribute__((constructor)) static void hakmem_start(void)
{
	hak__init();
	hak__startup();
	hak__fork_install();
}

__attribute__((destructor)) static void hakmem_stop(void)
{
	hak__trace_finish(); /* recording: what the threads recorded, and the END record */
	hak__policies_stop_all();
	if (hak__stats_mode)
		hak__stats_fd(hak__stats_exit_fd(), hak__stats_mode == HAK_STATS_JSON);
}
