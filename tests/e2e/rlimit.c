/* Under a low RLIMIT_AS every entry point asked for more than the limit returns NULL with ENOMEM
 * (posix_memalign returns ENOMEM) instead of crashing; small requests still work; exhausting the
 * space with 1 MB and then small blocks fails cleanly, and freed memory can be had again. */
#include "e2e.h"

#include <malloc.h>
#include <sys/resource.h>

#define MiB ((size_t)1 << 20)
#define HEADROOM (128 * MiB)

typedef void *(*malloc_fn)(size_t);
typedef void *(*calloc_fn)(size_t, size_t);
typedef void *(*realloc_fn)(void *, size_t);
typedef void *(*memalign_fn)(size_t, size_t);
typedef int (*posix_memalign_fn)(void **, size_t, size_t);

#define EXPECT_ENOMEM(expr, what, n) do {                                                      \
        errno = 0;                                                                             \
        void *r_ = (expr);                                                                     \
        int e_ = errno;                                                                        \
        if (r_ || e_ != ENOMEM)                                                                \
            FAIL("%s(%zu MB) under RLIMIT_AS: got %p errno %d (%s), want NULL ENOMEM", what,   \
                 (size_t)(n) >> 20, r_, e_, strerror(e_));                                     \
    } while (0)

static malloc_fn lm, lv, lpv;
static calloc_fn lc;
static realloc_fn lr;
static memalign_fn lma;
static posix_memalign_fn lpm;

static void lookup_aliases(void)
{
    lm = (malloc_fn)e2e_alloc_sym("__libc_malloc");
    lc = (calloc_fn)e2e_alloc_sym("__libc_calloc");
    lr = (realloc_fn)e2e_alloc_sym("__libc_realloc");
    lma = (memalign_fn)e2e_alloc_sym("__libc_memalign");
    lv = (malloc_fn)e2e_alloc_sym("__libc_valloc");
    lpv = (malloc_fn)e2e_alloc_sym("__libc_pvalloc");
    lpm = (posix_memalign_fn)e2e_alloc_sym("__posix_memalign");
}

static void every_entry_point_fails(size_t n, unsigned char *small)
{
    EXPECT_ENOMEM(malloc(n), "malloc", n);
    EXPECT_ENOMEM(calloc(1, n), "calloc", n);
    EXPECT_ENOMEM(calloc(n / 16, 16), "calloc(n/16, 16)", n);
    EXPECT_ENOMEM(realloc(NULL, n), "realloc(NULL)", n);
    EXPECT_ENOMEM(realloc(small, n), "realloc(small block)", n);
    EXPECT_ENOMEM(reallocarray(small, n / 8, 8), "reallocarray", n);
    EXPECT_ENOMEM(memalign(4096, n), "memalign(4096)", n);
    EXPECT_ENOMEM(memalign(2 * MiB, n), "memalign(2 MB)", n);
    EXPECT_ENOMEM(aligned_alloc(64, n), "aligned_alloc(64)", n);
    EXPECT_ENOMEM(valloc(n), "valloc", n);
    EXPECT_ENOMEM(pvalloc(n), "pvalloc", n);
    void *mp = (void *)0x4321;
    errno = 0;
    int rc = posix_memalign(&mp, 64, n);
    int e = errno;
    CHECK(rc == ENOMEM, "posix_memalign(64, %zu MB) under RLIMIT_AS returned %d, want ENOMEM", n >> 20, rc);
    CHECK(mp == (void *)0x4321, "posix_memalign failed but changed *memptr");
    /* glibc's leaves errno == ENOMEM too; programs print errno after a failed call. */
    CHECK(e == ENOMEM, "posix_memalign(64, %zu MB) under RLIMIT_AS left errno %d (%s), want ENOMEM", n >> 20,
          e, strerror(e));

    if (lm)
        EXPECT_ENOMEM(lm(n), "__libc_malloc", n);
    if (lc)
        EXPECT_ENOMEM(lc(n, 1), "__libc_calloc", n);
    if (lr)
        EXPECT_ENOMEM(lr(small, n), "__libc_realloc", n);
    if (lma)
        EXPECT_ENOMEM(lma(256, n), "__libc_memalign", n);
    if (lv)
        EXPECT_ENOMEM(lv(n), "__libc_valloc", n);
    if (lpv)
        EXPECT_ENOMEM(lpv(n), "__libc_pvalloc", n);
    if (lpm) {
        rc = lpm(&mp, 128, n);
        CHECK(rc == ENOMEM && mp == (void *)0x4321, "__posix_memalign under RLIMIT_AS returned %d", rc);
    }
    size_t bad = pat_check(small, 200, 42);
    CHECK(bad == (size_t)-1, "failed reallocs damaged the old block at offset %zu", bad);
}

/* Allocates blocks of size n until malloc fails; returns how many, chained through the blocks. */
static size_t exhaust(size_t n, void **chain)
{
    size_t count = 0;
    for (;;) {
        errno = 0;
        void **p = malloc(n);
        if (!p) {
            CHECK(errno == ENOMEM, "malloc(%zu) failed after %zu blocks with errno %d (%s), want ENOMEM",
                  n, count, errno, strerror(errno));
            return count;
        }
        memset(p, 0x6b, n < 4096 ? n : 4096);
        *p = *chain;
        *chain = p;
        count++;
        CHECK(count * n < 64 * HEADROOM, "malloc(%zu) never fails under RLIMIT_AS (%zu blocks)", n, count);
    }
}

static void release(void *chain)
{
    while (chain) {
        void *next = *(void **)chain;
        free(chain);
        chain = next;
    }
}

int main(void)
{
    long vm_kb = proc_status_kb("VmSize");
    CHECK(vm_kb > 0, "cannot read VmSize");
    struct rlimit rl = { (rlim_t)vm_kb * 1024 + HEADROOM, (rlim_t)vm_kb * 1024 + HEADROOM };
    CHECK(setrlimit(RLIMIT_AS, &rl) == 0, "setrlimit(RLIMIT_AS) failed: %s", strerror(errno));

    lookup_aliases();
    unsigned char *small = malloc(200);
    CHECK(small, "malloc(200) failed under RLIMIT_AS");
    pat_fill(small, 200, 42);
    const size_t big[] = { HEADROOM + MiB, 256 * MiB, 1024 * MiB, (size_t)64 << 30 };
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++)
        every_entry_point_fails(opaque(big[i]), small);

    /* Requests that fit still work. */
    void *a = malloc(16), *b = malloc(100000), *c = malloc(4 * MiB), *d = memalign(4096, 8192), *e = calloc(1000, 10);
    CHECK(a && b && c && d && e, "small allocations fail under RLIMIT_AS: %p %p %p %p %p", a, b, c, d, e);
    free(a), free(b), free(c), free(d), free(e);

    /* Exhaust with 1 MB blocks, then with small ones; every failure is a clean ENOMEM. */
    void *big_chain = NULL, *small_chain = NULL;
    size_t nbig = exhaust(MiB, &big_chain);
    CHECK(nbig > 0, "not even one 1 MB block fits under a %zu MB headroom", HEADROOM >> 20);
    size_t nsmall = exhaust(48, &small_chain);
    EXPECT_ENOMEM(malloc(opaque(8 * MiB)), "malloc when exhausted", 8 * MiB);
    EXPECT_ENOMEM(realloc(small, opaque(64 * MiB)), "realloc when exhausted", 64 * MiB);
    void *mp = (void *)0x4321;
    errno = 0;
    CHECK(posix_memalign(&mp, 4096, 32 * MiB) == ENOMEM && mp == (void *)0x4321,
          "posix_memalign when exhausted must return ENOMEM and leave *memptr alone");
    CHECK(errno == ENOMEM, "posix_memalign when exhausted left errno %d (%s), want ENOMEM", errno, strerror(errno));
    /* The thread-failure test written for glibc: a small aligned block once memory is gone. */
    errno = 0;
    int rc2 = posix_memalign(&mp, 128, 512);
    CHECK(rc2 == 0 || (rc2 == ENOMEM && errno == ENOMEM),
          "posix_memalign(128, 512) when exhausted returned %d with errno %d (%s), want 0 or ENOMEM and errno ENOMEM",
          rc2, errno, strerror(errno));
    if (rc2 == 0)
        free(mp);
    release(small_chain);
    release(big_chain);
    /* Freed memory can be had again (after a trim, if the allocator keeps a reserve). */
    void *again = malloc(MiB);
    if (!again) {
        malloc_trim(0);
        again = malloc(MiB);
    }
    CHECK(again, "malloc(1 MB) fails after everything was freed (and malloc_trim)");
    free(again);
    big_chain = NULL;
    malloc_trim(0);
    size_t nbig2 = exhaust(MiB, &big_chain);
    CHECK(nbig2 >= nbig / 2, "only %zu 1 MB blocks fit the second time, %zu the first: freed memory is lost",
          nbig2, nbig);
    release(big_chain);
    CHECK(pat_check(small, 200, 42) == (size_t)-1, "small block damaged");
    free(small);
    e2e_note("rlimit: %zu x 1 MB then %zu x 48 B blocks fit, %zu x 1 MB the second time", nbig, nsmall, nbig2);
    return 0;
}
