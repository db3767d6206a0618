/* API semantics of the whole malloc surface as glibc documents it: every entry point, alignment,
 * malloc(0), overflowing sizes, realloc corner cases, the memalign family, errno rules, the
 * __libc_* aliases, libc-internal allocations, and (under hakmem only) interposition and no brk. */
#include "e2e.h"

#include <limits.h>
#include <malloc.h>
#include <stddef.h>
#include <sys/mman.h>

#define MiB ((size_t)1 << 20)

static int hakmem;
static size_t page;

/* ---- symbols glibc 2.36 may not declare or export: looked up at run time ---- */
typedef void (*free_sized_fn)(void *, size_t);
typedef void (*free_aligned_sized_fn)(void *, size_t, size_t);
typedef void (*free_fn)(void *);
typedef void *(*malloc_fn)(size_t);
typedef void *(*calloc_fn)(size_t, size_t);
typedef void *(*realloc_fn)(void *, size_t);
typedef void *(*memalign_fn)(size_t, size_t);
typedef int (*posix_memalign_fn)(void **, size_t, size_t);

/* ---- a live set of blocks: filled on allocation, checked for content and overlap ---- */
struct blk { unsigned char *p; size_t n; uint64_t tag; };

static int blk_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const struct blk *)a)->p, y = (uintptr_t)((const struct blk *)b)->p;
    return x < y ? -1 : x > y;
}

/* Every block keeps its pattern and no two blocks overlap. */
static void check_blocks(struct blk *v, size_t count, const char *what)
{
    for (size_t i = 0; i < count; i++) {
        size_t bad = pat_check(v[i].p, v[i].n, v[i].tag);
        if (bad != (size_t)-1)
            FAIL("%s: block %p of %zu bytes corrupted at offset %zu", what, (void *)v[i].p, v[i].n, bad);
    }
    qsort(v, count, sizeof *v, blk_cmp);
    for (size_t i = 1; i < count; i++)
        if (v[i - 1].p + (v[i - 1].n ? v[i - 1].n : 1) > v[i].p)
            FAIL("%s: blocks %p (+%zu) and %p overlap", what, (void *)v[i - 1].p, v[i - 1].n, (void *)v[i].p);
}

static void check_align(const void *p, size_t align, const char *what, size_t n)
{
    if (align < 16)
        align = 16;
    if ((uintptr_t)p % align)
        FAIL("%s(%zu) returned %p, not %zu-byte aligned", what, n, p, align);
}

/* ---- malloc, free, alignment, usable size ---- */
static void test_malloc_sizes(void)
{
    enum { N = 8193 + 64 };
    static struct blk v[N];
    size_t c = 0;
    for (size_t n = 0; n <= 8192; n++) {
        unsigned char *p = malloc(opaque(n));
        CHECK(p, "malloc(%zu) returned NULL", n);
        check_align(p, 16, "malloc", n);
        v[c++] = (struct blk){ p, n, n };
        pat_fill(p, n, n);
    }
    for (size_t n = 8193; c < N; n = n * 5 / 4 + 3) {
        unsigned char *p = malloc(opaque(n));
        CHECK(p, "malloc(%zu) returned NULL", n);
        check_align(p, 16, "malloc", n);
        /* Large blocks: pattern on the first 64 KB, and the last byte must be writable. */
        size_t fill = n > 65536 ? 65536 : n;
        pat_fill(p, fill, n);
        if (n > fill)
            p[n - 1] = 0x5a;
        v[c++] = (struct blk){ p, fill, n };
        if (n > 16 * MiB)
            break;
    }
    check_blocks(v, c, "malloc sizes");
    for (size_t i = 0; i < c; i++)
        free(v[i].p);
}

static void test_usable_size(void)
{
    enum { N = 2100 };
    static struct blk v[N];
    size_t c = 0;
    CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) = %zu, want 0", malloc_usable_size(NULL));
    for (size_t n = 0; c < N; n = n < 2048 ? n + 1 : n * 3 / 2) {
        unsigned char *p = malloc(opaque(n));
        CHECK(p, "malloc(%zu) returned NULL", n);
        size_t u = malloc_usable_size(p);
        CHECK(u >= n, "malloc_usable_size = %zu after malloc(%zu)", u, n);
        /* The whole usable size is the caller's to write: fill it all. */
        v[c++] = (struct blk){ p, u, n ^ 0x77 };
        pat_fill(p, u, n ^ 0x77);
        if (n > 8 * MiB)
            break;
    }
    check_blocks(v, c, "usable size");
    for (size_t i = 0; i < c; i++)
        free(v[i].p);
}

static int ptr_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
    return x < y ? -1 : x > y;
}

static void test_malloc_zero(void)
{
    enum { N = 1000 };
    static void *v[N];
    for (int i = 0; i < N; i++) {
        v[i] = malloc(opaque(0));
        CHECK(v[i], "malloc(0) #%d returned NULL", i);
        check_align(v[i], 16, "malloc", 0);
    }
    qsort(v, N, sizeof *v, ptr_cmp);
    for (int i = 1; i < N; i++)
        CHECK(v[i] != v[i - 1], "malloc(0) returned %p twice", v[i]);
    for (int i = 0; i < N; i++)
        free(v[i]);
    void *a = calloc(opaque(0), 1), *b = calloc(1, opaque(0)), *r = realloc(NULL, opaque(0));
    CHECK(a && b && r, "calloc(0,1)=%p calloc(1,0)=%p realloc(NULL,0)=%p: want non-NULL", a, b, r);
    CHECK(a != b && b != r && a != r, "zero-size blocks are not distinct");
    free(a), free(b), free(r);
}

/* ---- sizes that cannot be served: NULL with errno == ENOMEM ---- */
static size_t huge[200];
static int nhuge;

static void make_huge_sizes(void)
{
    for (size_t k = 0; k <= 64; k++)
        huge[nhuge++] = SIZE_MAX - k;
    const size_t more[] = {
        SIZE_MAX - 4095, SIZE_MAX - 4096, SIZE_MAX - 4097, SIZE_MAX - (1 << 16),
        SIZE_MAX - MiB, SIZE_MAX - 2 * MiB, SIZE_MAX - 2 * MiB + 1, SIZE_MAX - 4 * MiB,
        SIZE_MAX / 2 + 1, SIZE_MAX / 2, SIZE_MAX / 2 - 15, SIZE_MAX / 2 - 2 * MiB,
        (size_t)PTRDIFF_MAX - 64, (size_t)1 << 62, (size_t)1 << 60, (size_t)1 << 50,
        ((size_t)1 << 48) + 1,
    };
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++)
        huge[nhuge++] = more[i];
}

#define EXPECT_ENOMEM(expr, fmt, ...) do {                                        \
        errno = 0;                                                                \
        void *r_ = (expr);                                                        \
        int e_ = errno;                                                           \
        if (r_ || e_ != ENOMEM)                                                   \
            FAIL(fmt ": got %p errno %d (%s), want NULL ENOMEM", __VA_ARGS__,     \
                 r_, e_, strerror(e_));                                           \
    } while (0)

static void test_huge_sizes(void)
{
    unsigned char *small = malloc(100), *big = malloc(opaque(3 * MiB));
    CHECK(small && big, "setup malloc failed");
    pat_fill(small, 100, 1);
    pat_fill(big, 3 * MiB, 2);
    for (int i = 0; i < nhuge; i++) {
        size_t s = opaque(huge[i]);
        EXPECT_ENOMEM(malloc(s), "malloc(%#zx)", s);
        EXPECT_ENOMEM(calloc(1, s), "calloc(1, %#zx)", s);
        EXPECT_ENOMEM(calloc(s, 1), "calloc(%#zx, 1)", s);
        EXPECT_ENOMEM(realloc(NULL, s), "realloc(NULL, %#zx)", s);
        EXPECT_ENOMEM(realloc(small, s), "realloc(small, %#zx)", s);
        EXPECT_ENOMEM(realloc(big, s), "realloc(3 MB block, %#zx)", s);
        EXPECT_ENOMEM(reallocarray(small, s, 1), "reallocarray(small, %#zx, 1)", s);
        EXPECT_ENOMEM(valloc(s), "valloc(%#zx)", s);
        EXPECT_ENOMEM(pvalloc(s), "pvalloc(%#zx)", s);
        for (size_t a = 8; a <= 4 * MiB; a <<= 3) {
            EXPECT_ENOMEM(memalign(a, s), "memalign(%zu, %#zx)", a, s);
            EXPECT_ENOMEM(aligned_alloc(a, s & ~(a - 1)), "aligned_alloc(%zu, %#zx)", a, s & ~(a - 1));
            void *mp = (void *)0x1234;
            int rc = posix_memalign(&mp, a, s);
            CHECK(rc == ENOMEM, "posix_memalign(%zu, %#zx) returned %d, want ENOMEM", a, s, rc);
            CHECK(mp == (void *)0x1234, "posix_memalign(%zu, %#zx) failed but changed *memptr", a, s);
        }
    }
    /* Products that overflow size_t. */
    const size_t ovf[][2] = {
        { SIZE_MAX / 2 + 1, 2 }, { (size_t)1 << 32, (size_t)1 << 32 }, { SIZE_MAX, SIZE_MAX },
        { 3, SIZE_MAX / 3 + 1 }, { SIZE_MAX / 16 + 1, 16 }, { 65537, SIZE_MAX / 65536 },
    };
    for (size_t i = 0; i < sizeof ovf / sizeof ovf[0]; i++) {
        size_t a = opaque(ovf[i][0]), b = opaque(ovf[i][1]);
        EXPECT_ENOMEM(calloc(a, b), "calloc(%#zx, %#zx)", a, b);
        EXPECT_ENOMEM(calloc(b, a), "calloc(%#zx, %#zx)", b, a);
        EXPECT_ENOMEM(reallocarray(NULL, a, b), "reallocarray(NULL, %#zx, %#zx)", a, b);
        EXPECT_ENOMEM(reallocarray(small, a, b), "reallocarray(small, %#zx, %#zx)", a, b);
        EXPECT_ENOMEM(reallocarray(big, b, a), "reallocarray(3 MB block, %#zx, %#zx)", b, a);
    }
    /* A failed realloc leaves the old block intact and still owned by the caller. */
    size_t bad = pat_check(small, 100, 1);
    CHECK(bad == (size_t)-1, "small block changed by failed realloc at offset %zu", bad);
    bad = pat_check(big, 3 * MiB, 2);
    CHECK(bad == (size_t)-1, "3 MB block changed by failed realloc at offset %zu", bad);
    CHECK(malloc_usable_size(small) >= 100, "small block shrank after failed realloc");
    small = realloc(small, 200);
    CHECK(small && pat_check(small, 100, 1) == (size_t)-1, "realloc after failed realloc lost contents");
    free(small);
    free(big);
}

/* ---- calloc zeroes, also memory that was used before ---- */
static void test_calloc(void)
{
    const size_t sizes[] = { 1, 7, 16, 24, 48, 100, 128, 200, 256, 500, 1000, 1024, 2000, 4096,
                             8000, 16384, 40000, 65536, 131072, 200000, 1 * MiB, 2 * MiB + 3, 5 * MiB };
    enum { K = 32 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        int k = n > MiB ? 4 : K;
        unsigned char *v[K];
        for (int j = 0; j < k; j++) {
            v[j] = malloc(opaque(n));
            CHECK(v[j], "malloc(%zu) returned NULL", n);
            memset(v[j], 0xA5, malloc_usable_size(v[j]));
        }
        for (int j = 0; j < k; j++)
            free(v[j]);
        for (int j = 0; j < k; j++) {
            /* Split the size in two factors so the product path is used too. */
            v[j] = j & 1 ? calloc(opaque(n), 1) : calloc(1, opaque(n));
            CHECK(v[j], "calloc(%zu) returned NULL", n);
            check_align(v[j], 16, "calloc", n);
            size_t u = malloc_usable_size(v[j]);
            CHECK(u >= n, "calloc(%zu): usable size %zu", n, u);
            for (size_t b = 0; b < n; b++)
                if (v[j][b])
                    FAIL("calloc(%zu) block %d byte %zu is %#x, not zero (reused memory?)", n, j, b, v[j][b]);
            memset(v[j], 0xA5, n);
        }
        for (int j = 0; j < k; j++)
            free(v[j]);
    }
    /* From 128 KB, hakmem gives calloc a mapping of its own and leaves its fresh pages untouched
     * until the program uses them (glibc's threshold moves with what was freed: not checked). */
    if (hakmem) {
        malloc_trim(0); /* no cached mapping to reuse */
        unsigned char *z = calloc(1, opaque(131072)), vec[131072 / 4096];
        CHECK(z && mincore(z, 131072, vec) == 0, "calloc(131072)=%p: mincore failed", (void *)z);
        int resident = 0;
        for (size_t i = 0; i < sizeof vec; i++)
            resident += vec[i] & 1;
        CHECK(resident == 0, "calloc(131072): %d of its 32 pages resident before any use", resident);
        free(z);
    }
    /* Non-trivial factors. */
    unsigned *a = calloc(opaque(12345), sizeof(unsigned));
    CHECK(a, "calloc(12345, 4) returned NULL");
    for (int i = 0; i < 12345; i++)
        CHECK(a[i] == 0, "calloc(12345, 4) element %d not zero", i);
    free(a);
}

/* ---- realloc ---- */
static void test_realloc(void)
{
    const size_t sizes[] = { 1, 8, 15, 16, 17, 24, 31, 48, 64, 100, 128, 129, 256, 500, 1000, 1024, 1025,
                             2048, 4000, 4096, 4097, 8192, 10000, 32768, 65536, 100000, 262144,
                             MiB, MiB + 1, 3 * MiB };
    const size_t ns = sizeof sizes / sizeof sizes[0];
    uint64_t tag = 100;
    for (size_t i = 0; i < ns; i++)
        for (size_t j = 0; j < ns; j++) {
            size_t a = sizes[i], b = sizes[j], keep = a < b ? a : b;
            unsigned char *p = malloc(opaque(a));
            CHECK(p, "malloc(%zu) returned NULL", a);
            pat_fill(p, a, ++tag);
            unsigned char *q = realloc(p, opaque(b));
            CHECK(q, "realloc(%zu -> %zu) returned NULL", a, b);
            check_align(q, 16, "realloc", b);
            CHECK(malloc_usable_size(q) >= b, "realloc(%zu -> %zu): usable %zu", a, b, malloc_usable_size(q));
            size_t bad = pat_check(q, keep, tag);
            CHECK(bad == (size_t)-1, "realloc(%zu -> %zu) lost contents at offset %zu", a, b, bad);
            memset(q, 0x3c, b);
            free(q);
        }
    /* realloc(NULL, n) behaves as malloc(n). */
    for (size_t i = 0; i < ns; i++) {
        unsigned char *p = realloc(NULL, opaque(sizes[i]));
        CHECK(p, "realloc(NULL, %zu) returned NULL", sizes[i]);
        check_align(p, 16, "realloc(NULL)", sizes[i]);
        CHECK(malloc_usable_size(p) >= sizes[i], "realloc(NULL, %zu): usable too small", sizes[i]);
        memset(p, 1, sizes[i]);
        free(p);
    }
    /* realloc(p, 0) frees p and returns NULL (glibc). If it leaked, this loop would grow
     * the resident set by 50000 * 8 KB = 400 MB. */
    long rss0 = proc_status_kb("VmRSS");
    for (int i = 0; i < 50000; i++) {
        unsigned char *p = malloc(opaque(8192));
        CHECK(p, "malloc(8192) returned NULL");
        memset(p, i, 8192);
        void *r = realloc(p, opaque(0));
        CHECK(r == NULL, "realloc(p, 0) returned %p, want NULL (glibc frees p)", r);
    }
    long rss1 = proc_status_kb("VmRSS");
    CHECK(rss1 - rss0 < 100 * 1024, "realloc(p, 0) does not free p: RSS grew from %ld kB to %ld kB", rss0, rss1);
    /* A realloc chain in place and moving, with aligned starting blocks. */
    unsigned char *p = memalign(4096, 100);
    CHECK(p, "memalign(4096, 100) returned NULL");
    pat_fill(p, 100, 9);
    p = realloc(p, opaque(100000));
    CHECK(p && pat_check(p, 100, 9) == (size_t)-1, "realloc of memalign'd block lost contents");
    check_align(p, 16, "realloc", 100000);
    free(p);
}

/* ---- errno and alignment, glibc's semantics (2.36): for every power-of-two alignment up to
 * 2^63 a request that cannot be served is NULL with errno ENOMEM (posix_memalign: returns ENOMEM
 * and leaves errno == ENOMEM); EINVAL only for an alignment above SIZE_MAX / 2 + 1 (memalign,
 * aligned_alloc) or, for posix_memalign, one that is not a power-of-two multiple of
 * sizeof(void *), with errno untouched. ---- */
static void test_alignment_errno(void)
{
    /* Sizes no alignment can serve, and, for the alignments no address space holds (2^48 and
     * up, beyond any user address range), small sizes too. */
    const size_t sizes[] = { SIZE_MAX, SIZE_MAX - 1, SIZE_MAX / 2 + 1, SIZE_MAX / 2, (size_t)PTRDIFF_MAX - 4096,
                             (size_t)1 << 62, (size_t)1 << 56, ((size_t)1 << 48) + 1 };
    const size_t small[] = { 0, 1, 64, 4096 };
    for (int k = 0; k < 64; k++) {
        size_t a = opaque((size_t)1 << k);
        for (int pass = 0; pass < 2; pass++) {
            const size_t *v = pass ? small : sizes;
            size_t nv = pass ? sizeof small / sizeof small[0] : sizeof sizes / sizeof sizes[0];
            if (pass && k < 48)
                break;
            for (size_t i = 0; i < nv; i++) {
                size_t s = opaque(v[i]);
                EXPECT_ENOMEM(memalign(a, s), "memalign(2^%d, %#zx)", k, s);
                EXPECT_ENOMEM(aligned_alloc(a, s), "aligned_alloc(2^%d, %#zx)", k, s);
                if (a < sizeof(void *))
                    continue;
                void *mp = (void *)0x2468;
                errno = EDOM;
                int rc = posix_memalign(&mp, a, s);
                int e = errno;
                CHECK(rc == ENOMEM, "posix_memalign(2^%d, %#zx) returned %d (%s), want ENOMEM", k, s, rc,
                      strerror(rc));
                CHECK(e == ENOMEM, "posix_memalign(2^%d, %#zx) failed with ENOMEM but left errno %d (%s), "
                      "want ENOMEM (as glibc)", k, s, e, strerror(e));
                CHECK(mp == (void *)0x2468, "posix_memalign(2^%d, %#zx) failed but changed *memptr", k, s);
            }
        }
    }
    /* Not a power of two: memalign and aligned_alloc round up to the next one (so just above 2^62
     * means 2^63: ENOMEM); above SIZE_MAX / 2 + 1 nothing rounds: EINVAL. */
    const size_t odd_nomem[] = { 3, 24, 100, 3 * 4096, ((size_t)1 << 62) + 1, SIZE_MAX / 2 };
    for (size_t i = 0; i < sizeof odd_nomem / sizeof odd_nomem[0]; i++) {
        size_t a = opaque(odd_nomem[i]);
        EXPECT_ENOMEM(memalign(a, opaque(SIZE_MAX)), "memalign(%#zx, SIZE_MAX)", a);
        EXPECT_ENOMEM(aligned_alloc(a, opaque(SIZE_MAX / 2)), "aligned_alloc(%#zx, SIZE_MAX / 2)", a);
    }
    const size_t inval[] = { SIZE_MAX / 2 + 2, ((size_t)1 << 63) | 4096, SIZE_MAX };
    for (size_t i = 0; i < sizeof inval / sizeof inval[0]; i++) {
        size_t a = opaque(inval[i]);
        for (size_t s = 0; s < 3; s++) {
            size_t n = opaque(s == 0 ? 1 : s == 1 ? 4096 : SIZE_MAX);
            errno = 0;
            void *p = memalign(a, n);
            CHECK(!p && errno == EINVAL, "memalign(%#zx, %#zx): %p errno %d (%s), want NULL EINVAL", a, n, p, errno,
                  strerror(errno));
            errno = 0;
            p = aligned_alloc(a, n);
            CHECK(!p && errno == EINVAL, "aligned_alloc(%#zx, %#zx): %p errno %d (%s), want NULL EINVAL", a, n, p,
                  errno, strerror(errno));
            void *mp = (void *)0x2468;
            errno = EDOM;
            int rc = posix_memalign(&mp, a, n);
            CHECK(rc == EINVAL && errno == EDOM && mp == (void *)0x2468,
                  "posix_memalign(%#zx, %#zx) returned %d errno %d (%s), want EINVAL with errno and *memptr untouched",
                  a, n, rc, errno, strerror(errno));
        }
    }
    /* A success leaves errno alone. */
    void *mp = NULL;
    errno = EDOM;
    CHECK(posix_memalign(&mp, 64, 100) == 0 && mp && errno == EDOM, "posix_memalign(64, 100) succeeded but changed errno");
    free(mp);
}

/* ---- posix_memalign, aligned_alloc, memalign, valloc, pvalloc ---- */
static void test_posix_memalign(void)
{
    const size_t bad[] = { 0, 1, 2, 3, 4, 5, 6, 7, 12, 24, 40, 48, 96, 100, 1000, 3 * 4096,
                           sizeof(void *) / 2, sizeof(void *) + 1, SIZE_MAX, SIZE_MAX / 2 + 2,
                           (SIZE_MAX / 2 + 1) | 8 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *mp = (void *)0x5678;
        int rc = posix_memalign(&mp, opaque(bad[i]), 64);
        CHECK(rc == EINVAL, "posix_memalign(align %zu) returned %d, want EINVAL", bad[i], rc);
        CHECK(mp == (void *)0x5678, "posix_memalign(align %zu) failed but changed *memptr to %p", bad[i], mp);
    }
    /* The largest power of two is a valid alignment that cannot be served. */
    void *mp = (void *)0x5678;
    int rc = posix_memalign(&mp, opaque(SIZE_MAX / 2 + 1), 1);
    CHECK(rc == ENOMEM, "posix_memalign(align 2^63, 1) returned %d, want ENOMEM", rc);
    CHECK(mp == (void *)0x5678, "posix_memalign(2^63, 1) failed but changed *memptr");

    enum { N = 200 };
    static struct blk v[N];
    size_t c = 0;
    for (size_t a = sizeof(void *); a <= 8 * MiB; a <<= 1) {
        const size_t ns[] = { 1, a / 2 + 1, a, a + 1, 3 * a + 7 };
        for (size_t k = 0; k < 5; k++) {
            size_t n = ns[k];
            void *p = NULL;
            rc = posix_memalign(&p, a, opaque(n));
            CHECK(rc == 0 && p, "posix_memalign(%zu, %zu) returned %d", a, n, rc);
            check_align(p, a, "posix_memalign", n);
            CHECK(malloc_usable_size(p) >= n, "posix_memalign(%zu, %zu): usable %zu", a, n, malloc_usable_size(p));
            size_t fill = n > 65536 ? 65536 : n;
            pat_fill(p, fill, a * 7 + k);
            if (n > fill)
                ((unsigned char *)p)[n - 1] = 0xee;
            v[c++] = (struct blk){ p, fill, a * 7 + k };
        }
    }
    check_blocks(v, c, "posix_memalign");
    for (size_t i = 0; i < c; i++)
        free(v[i].p);
}

static void test_aligned_family(void)
{
    enum { N = 400 };
    static struct blk v[N];
    size_t c = 0;
    uint64_t tag = 5000;
    for (size_t a = 1; a <= 4 * MiB; a <<= 1) {
        /* aligned_alloc: the manual asks for a size that is a multiple of the alignment. */
        const size_t an[] = { a, 2 * a, 5 * a };
        for (int k = 0; k < 3; k++) {
            unsigned char *p = aligned_alloc(a, opaque(an[k]));
            CHECK(p, "aligned_alloc(%zu, %zu) returned NULL", a, an[k]);
            check_align(p, a, "aligned_alloc", an[k]);
            CHECK(malloc_usable_size(p) >= an[k], "aligned_alloc(%zu, %zu): usable too small", a, an[k]);
            size_t fill = an[k] > 65536 ? 65536 : an[k];
            pat_fill(p, fill, ++tag);
            if (an[k] > fill)
                p[an[k] - 1] = 1;
            v[c++] = (struct blk){ p, fill, tag };
        }
        /* memalign takes any size. */
        const size_t mn[] = { 1, 17, a + 1, 3 * a + 5 };
        for (int k = 0; k < 4; k++) {
            unsigned char *p = memalign(a, opaque(mn[k]));
            CHECK(p, "memalign(%zu, %zu) returned NULL", a, mn[k]);
            check_align(p, a, "memalign", mn[k]);
            CHECK(malloc_usable_size(p) >= mn[k], "memalign(%zu, %zu): usable too small", a, mn[k]);
            size_t fill = mn[k] > 65536 ? 65536 : mn[k];
            pat_fill(p, fill, ++tag);
            if (mn[k] > fill)
                p[mn[k] - 1] = 1;
            v[c++] = (struct blk){ p, fill, tag };
        }
    }
    /* valloc and pvalloc: page aligned; pvalloc rounds the size up to whole pages. */
    const size_t vn[] = { 1, 100, 4095, 4096, 4097, 10000, 65536, MiB + 1 };
    for (int k = 0; k < 8; k++) {
        unsigned char *p = valloc(opaque(vn[k]));
        CHECK(p, "valloc(%zu) returned NULL", vn[k]);
        check_align(p, page, "valloc", vn[k]);
        CHECK(malloc_usable_size(p) >= vn[k], "valloc(%zu): usable too small", vn[k]);
        pat_fill(p, vn[k], ++tag);
        v[c++] = (struct blk){ p, vn[k], tag };
        size_t rounded = (vn[k] + page - 1) / page * page;
        p = pvalloc(opaque(vn[k]));
        CHECK(p, "pvalloc(%zu) returned NULL", vn[k]);
        check_align(p, page, "pvalloc", vn[k]);
        CHECK(malloc_usable_size(p) >= rounded, "pvalloc(%zu): usable %zu < %zu", vn[k], malloc_usable_size(p), rounded);
        pat_fill(p, rounded, ++tag);
        v[c++] = (struct blk){ p, rounded, tag };
    }
    CHECK(c <= N, "test table too small");
    check_blocks(v, c, "aligned family");
    for (size_t i = 0; i < c; i++)
        free(v[i].p);
}

/* ---- free: NULL, errno ---- */
static void test_free_errno(void)
{
    free(NULL);
    void *v[] = { malloc(opaque(16)), malloc(opaque(3000)), malloc(opaque(200000)), malloc(opaque(8 * MiB)),
                  memalign(4096, 100), memalign(2 * MiB, 10), calloc(1000, 1000), valloc(5000) };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        CHECK(v[i], "setup allocation %zu failed", i);
        errno = EILSEQ;
        free(v[i]);
        CHECK(errno == EILSEQ, "free of block %zu changed errno to %d (%s)", i, errno, strerror(errno));
    }
    errno = EDOM;
    free(NULL);
    CHECK(errno == EDOM, "free(NULL) changed errno");
    /* Many frees in a row, some releasing memory to the system. */
    static void *w[4000];
    for (int i = 0; i < 4000; i++)
        CHECK(w[i] = malloc(opaque(i % 7 == 0 ? 300000 : 64 + i % 512)), "malloc failed");
    errno = ERANGE;
    for (int i = 0; i < 4000; i++)
        free(w[i]);
    CHECK(errno == ERANGE, "a run of 4000 frees changed errno to %d (%s)", errno, strerror(errno));
}

/* ---- hakmem extensions and dropped glibc names ---- */
static void test_extensions(void)
{
    free_sized_fn fs = (free_sized_fn)e2e_alloc_sym("free_sized");
    free_aligned_sized_fn fas = (free_aligned_sized_fn)e2e_alloc_sym("free_aligned_sized");
    free_fn cf = (free_fn)e2e_alloc_sym("cfree");
    static void *keep[1000];
    for (int i = 0; i < 1000; i++)
        CHECK(keep[i] = malloc(opaque(24 + i)), "malloc failed");
    if (fs) {
        fs(NULL, 0);
        for (size_t n = 0; n < 70000; n = n * 2 + 1) {
            for (int r = 0; r < 50; r++) {
                unsigned char *p = malloc(opaque(n));
                CHECK(p, "malloc(%zu) returned NULL", n);
                memset(p, 0x11, n);
                errno = EILSEQ;
                fs(p, n);
                CHECK(errno == EILSEQ, "free_sized changed errno");
            }
        }
        void *p = calloc(10, 30);
        fs(p, 300);
        p = malloc(opaque(5 * MiB));
        fs(p, 5 * MiB);
    }
    if (fas) {
        fas(NULL, 64, 0);
        for (size_t a = 16; a <= 2 * MiB; a <<= 1)
            for (int k = 1; k <= 3; k++) {
                unsigned char *p = aligned_alloc(a, a * k);
                CHECK(p, "aligned_alloc(%zu, %zu) returned NULL", a, a * k);
                memset(p, 0x22, a * k);
                fas(p, a, a * k);
            }
    }
    if (cf) {
        cf(NULL);
        for (int i = 0; i < 1000; i++) {
            void *p = malloc(opaque(i * 13));
            CHECK(p, "malloc failed");
            cf(p);
        }
    }
    /* The allocator is still sane afterwards. */
    for (int i = 0; i < 1000; i++) {
        CHECK(malloc_usable_size(keep[i]) >= (size_t)(24 + i), "block damaged by sized frees");
        free(keep[i]);
    }
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static size_t mallinfo_old_inuse(void)
{
    struct mallinfo m = mallinfo();
    return (size_t)(unsigned)m.uordblks + (size_t)(unsigned)m.hblkhd;
}
#pragma GCC diagnostic pop

/* ---- malloc_trim, mallinfo2, mallinfo ---- */
static void test_trim_info(void)
{
    enum { N = 65536 };
    static void *v[N];
    for (int i = 0; i < N; i++)
        CHECK(v[i] = malloc(opaque(64)), "malloc(64) failed");
    /* 4 MB are in use: the "in use" fields must account for at least that much. */
    struct mallinfo2 m = mallinfo2();
    size_t inuse = m.uordblks + m.hblkhd;
    CHECK(inuse >= (size_t)N * 64, "mallinfo2: uordblks %zu + hblkhd %zu < %zu bytes in use",
          m.uordblks, m.hblkhd, (size_t)N * 64);
    size_t old = mallinfo_old_inuse();
    CHECK(old >= (size_t)N * 64, "mallinfo: uordblks + hblkhd = %zu < %zu bytes in use", old, (size_t)N * 64);
    for (int i = 0; i < N; i++)
        free(v[i]);
    int r = malloc_trim(0);
    CHECK(r == 0 || r == 1, "malloc_trim(0) returned %d", r);
    r = malloc_trim(1 << 20);
    CHECK(r == 0 || r == 1, "malloc_trim(1 MB) returned %d", r);
    void *p = malloc(100);
    CHECK(p, "malloc after malloc_trim failed");
    free(p);
}

/* ---- __libc_* aliases: the same allocator as malloc/free ---- */
static void test_libc_aliases(void)
{
    malloc_fn lm = (malloc_fn)e2e_alloc_sym("__libc_malloc");
    free_fn lf = (free_fn)e2e_alloc_sym("__libc_free");
    calloc_fn lc = (calloc_fn)e2e_alloc_sym("__libc_calloc");
    realloc_fn lr = (realloc_fn)e2e_alloc_sym("__libc_realloc");
    memalign_fn lma = (memalign_fn)e2e_alloc_sym("__libc_memalign");
    malloc_fn lv = (malloc_fn)e2e_alloc_sym("__libc_valloc");
    malloc_fn lpv = (malloc_fn)e2e_alloc_sym("__libc_pvalloc");
    posix_memalign_fn lpm = (posix_memalign_fn)e2e_alloc_sym("__posix_memalign");
    for (int round = 0; round < 100; round++) {
        size_t n = opaque(16 + round * 997);
        if (lm) {
            unsigned char *p = lm(n);
            CHECK(p, "__libc_malloc(%zu) returned NULL", n);
            check_align(p, 16, "__libc_malloc", n);
            memset(p, 1, n);
            free(p);
        }
        if (lf) {
            void *p = malloc(n);
            CHECK(p, "malloc failed");
            lf(p);
            lf(NULL);
        }
        if (lc) {
            unsigned char *p = lc(n, 1);
            CHECK(p, "__libc_calloc(%zu, 1) returned NULL", n);
            for (size_t i = 0; i < n; i++)
                CHECK(p[i] == 0, "__libc_calloc block not zeroed");
            memset(p, 0xff, n);
            free(p);
            EXPECT_ENOMEM(lc(SIZE_MAX / 2 + 1, 2), "__libc_calloc(%s)", "overflow");
        }
        if (lr) {
            unsigned char *p = malloc(n);
            CHECK(p, "malloc failed");
            pat_fill(p, n, round);
            p = lr(p, n * 3);
            CHECK(p && pat_check(p, n, round) == (size_t)-1, "__libc_realloc lost contents");
            free(p);
        }
        if (lma) {
            void *p = lma(256, n);
            CHECK(p, "__libc_memalign(256, %zu) returned NULL", n);
            check_align(p, 256, "__libc_memalign", n);
            free(p);
        }
        if (lv) {
            void *p = lv(n);
            CHECK(p, "__libc_valloc(%zu) returned NULL", n);
            check_align(p, page, "__libc_valloc", n);
            free(p);
        }
        if (lpv) {
            void *p = lpv(n);
            CHECK(p, "__libc_pvalloc(%zu) returned NULL", n);
            check_align(p, page, "__libc_pvalloc", n);
            free(p);
        }
        if (lpm) {
            void *p = (void *)0x99;
            CHECK(lpm(&p, 3, n) == EINVAL && p == (void *)0x99, "__posix_memalign(3) must be EINVAL, *memptr unchanged");
            CHECK(lpm(&p, 64, n) == 0 && p, "__posix_memalign(64, %zu) failed", n);
            check_align(p, 64, "__posix_memalign", n);
            free(p);
        }
    }
}

/* ---- allocations libc makes internally are freed by our free ---- */
static void test_libc_internal(void)
{
    for (int i = 0; i < 200; i++) {
        char *s = strdup("hakmem end-to-end");
        CHECK(s && strcmp(s, "hakmem end-to-end") == 0, "strdup failed");
        free(s);
        s = strndup("abcdefgh", 3);
        CHECK(s && strcmp(s, "abc") == 0, "strndup failed");
        free(s);
        CHECK(asprintf(&s, "%d-%s-%0500d", i, "x", i) > 0, "asprintf failed");
        free(s);
        char *buf = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&buf, &len);
        CHECK(m, "open_memstream failed");
        for (int k = 0; k < 1000; k++)
            fprintf(m, "line %d\n", k);
        fclose(m);
        CHECK(len > 6000 && buf, "open_memstream wrote %zu bytes", len);
        FILE *in = fmemopen(buf, len, "r");
        CHECK(in, "fmemopen failed");
        char *line = NULL;
        size_t cap = 0;
        int lines = 0;
        while (getline(&line, &cap, in) > 0)
            lines++;
        CHECK(lines == 1000, "getline read %d lines, want 1000", lines);
        fclose(in);
        free(line);
        free(buf);
        char *cwd = getcwd(NULL, 0);
        CHECK(cwd, "getcwd(NULL, 0) failed");
        char *rp = realpath(".", NULL);
        CHECK(rp && strcmp(rp, cwd) == 0, "realpath(\".\") = %s, getcwd = %s", rp ? rp : "(null)", cwd);
        free(rp);
        free(cwd);
    }
}

/* ---- hakmem only: the libc names resolve to hakmem, and brk is never used ---- */
static void test_interposition(void)
{
    const char *names[] = { "malloc", "free", "calloc", "realloc", "reallocarray", "posix_memalign",
                            "aligned_alloc", "memalign", "valloc", "pvalloc", "malloc_usable_size",
                            "malloc_trim", "mallinfo2", "mallinfo", "malloc_stats", "malloc_info",
                            "mallopt", "cfree", "free_sized",
                            "free_aligned_sized", "__libc_malloc", "__libc_free", "__libc_calloc",
                            "__libc_realloc", "__libc_memalign", "__libc_valloc", "__libc_pvalloc",
                            "__posix_memalign" };
    Dl_info hak;
    CHECK(dladdr(dlsym(RTLD_DEFAULT, "hak_stats_print"), &hak) && hak.dli_fname, "dladdr(hak_stats_print) failed");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        void *s = dlsym(RTLD_DEFAULT, names[i]);
        Dl_info di;
        CHECK(s, "%s not found", names[i]);
        CHECK(dladdr(s, &di) && di.dli_fname, "dladdr(%s) failed", names[i]);
        CHECK(di.dli_fbase == hak.dli_fbase, "%s resolves to %s, not to hakmem (%s)", names[i], di.dli_fname, hak.dli_fname);
    }
    CHECK((void *)&malloc == dlsym(RTLD_DEFAULT, "malloc"), "the program's malloc is not hakmem's");

    void *brk0 = sbrk(0);
    static void *v[20000];
    for (int i = 0; i < 20000; i++)
        CHECK(v[i] = malloc(opaque(i % 100 == 0 ? 200000 + i : 8 + (i * 37) % 5000)), "malloc failed");
    for (int i = 0; i < 20000; i += 2)
        free(v[i]);
    for (int i = 0; i < 20000; i += 2)
        CHECK(v[i] = calloc(1, opaque(1 + i % 3000)), "calloc failed");
    void *brk1 = sbrk(0);
    for (int i = 0; i < 20000; i++)
        free(v[i]);
    CHECK(brk0 == brk1, "the program break moved from %p to %p: hakmem used brk", brk0, brk1);
}

int main(void)
{
    hakmem = e2e_is_hakmem();
    page = (size_t)sysconf(_SC_PAGESIZE);
    make_huge_sizes();
    e2e_note("api: allocator is %s", hakmem ? "hakmem" : "not hakmem");
    if (hakmem)
        test_interposition();
    test_malloc_sizes();
    test_usable_size();
    test_malloc_zero();
    test_huge_sizes();
    test_calloc();
    test_realloc();
    test_posix_memalign();
    test_alignment_errno();
    test_aligned_family();
    test_free_errno();
    test_extensions();
    test_trim_info();
    test_libc_aliases();
    test_libc_internal();
    return 0;
}
