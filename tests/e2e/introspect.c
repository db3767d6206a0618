/* introspect: glibc's introspection calls report the allocator's real figures.
 *   mallinfo2: after allocating N bytes uordblks grows by at least N (every small size), and
 *     falls again once they are freed; a large block shows in hblks/hblkhd and goes away;
 *     uordblks + fordblks <= arena; fsmblks, keepcost <= fordblks; mallinfo() agrees with
 *     mallinfo2() and, under hakmem, saturates at INT_MAX instead of wrapping.
 *   malloc_info(0, fp) written to DIR/info-before.xml and DIR/info-after.xml (8 MB of small
 *     blocks and a 40 MB block later), each with the mallinfo2 figures of the same moment in
 *     DIR/<name>.mi; malloc_stats() to DIR/stats.txt with DIR/stats.mi. The runner (run.sh)
 *     parses the XML with xml.dom.minidom and checks the lines and figures.
 *   malloc_info(1, fp) returns EINVAL and writes nothing (glibc's behaviour; under hakmem errno
 *     is EINVAL too); mallopt returns what glibc returns (1, and 0 for M_MXFAST out of range).
 *   While 4 threads allocate, free and hand blocks to each other, 300 mallinfo2 and 30 malloc_info
 *     calls neither crash nor deadlock, and each snapshot adds up.
 * Usage: introspect DIR */
#include "e2e.h"

#include <limits.h>
#include <malloc.h>

static char dir[4096];

static int same(const struct mallinfo2 *a, const struct mallinfo2 *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

static void write_mi(const char *name, const struct mallinfo2 *m, size_t held)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CHECK(f, "cannot write %s", path);
    fprintf(f, "arena=%zu\nordblks=%zu\nsmblks=%zu\nhblks=%zu\nhblkhd=%zu\nusmblks=%zu\nfsmblks=%zu\n"
               "uordblks=%zu\nfordblks=%zu\nkeepcost=%zu\nheld=%zu\nhakmem=%d\n",
            m->arena, m->ordblks, m->smblks, m->hblks, m->hblkhd, m->usmblks, m->fsmblks, m->uordblks,
            m->fordblks, m->keepcost, held, e2e_is_hakmem());
    fclose(f);
}

/* A stream whose writes allocate nothing (a static buffer, opened and written once before), so
 * the figures of mallinfo2 around malloc_info describe the same heap. */
static char xml_buf[1 << 20];

static void info_to(const char *name, size_t held)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.xml", dir, name);
    FILE *f = fopen(path, "w");
    CHECK(f, "cannot write %s", path);
    setvbuf(f, xml_buf, _IOFBF, sizeof xml_buf);
    struct mallinfo2 a, b;
    for (int tries = 0;; tries++) { /* a trim helper thread may act between the calls */
        CHECK(ftruncate(fileno(f), 0) == 0 && fseek(f, 0, SEEK_SET) == 0, "cannot rewind %s", path);
        a = mallinfo2();
        int r = malloc_info(0, f);
        b = mallinfo2();
        CHECK(r == 0, "malloc_info(0, fp) returned %d", r);
        CHECK(fflush(f) == 0, "fflush after malloc_info failed");
        if (same(&a, &b) || tries == 50)
            break;
    }
    CHECK(fclose(f) == 0, "fclose after malloc_info failed");
    char mi[300];
    snprintf(mi, sizeof mi, "%s.mi", name);
    write_mi(mi, &a, held);
}

static void stats_to(const char *name, size_t held)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.txt", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0, "cannot write %s", path);
    fflush(stderr);
    int saved = dup(2);
    CHECK(saved >= 0 && dup2(fd, 2) == 2, "dup2 failed");
    struct mallinfo2 a, b;
    for (int tries = 0;; tries++) {
        CHECK(ftruncate(2, 0) == 0 && lseek(2, 0, SEEK_SET) == 0, "cannot rewind %s", path);
        a = mallinfo2();
        malloc_stats();
        fflush(stderr);
        b = mallinfo2();
        if (same(&a, &b) || tries == 50)
            break;
    }
    CHECK(dup2(saved, 2) == 2, "dup2 back failed");
    close(saved);
    close(fd);
    char mi[300];
    snprintf(mi, sizeof mi, "%s.mi", name);
    write_mi(mi, &a, held);
}

enum { SMALL = 80000, SMALL_SIZE = 100 };
static void *small[SMALL];

/* After allocating n bytes uordblks grows by at least n; for one block of each size class range
 * up to the largest glibc keeps in its heap (it maps blocks from 128 KB on). */
static void test_grows(void)
{
    static const size_t sizes[] = {1, 8, 16, 24, 48, 100, 250, 1000, 1024, 1025, 4000, 5000,
                                   16384, 20000, 65536, 100000, 120000};
    void *p[sizeof sizes / sizeof sizes[0]];
    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            struct mallinfo2 a = mallinfo2();
            p[i] = malloc(opaque(sizes[i]));
            struct mallinfo2 b = mallinfo2();
            CHECK(p[i], "malloc(%zu) failed", sizes[i]);
            CHECK(b.uordblks >= a.uordblks + sizes[i],
                  "round %d: malloc(%zu): uordblks went from %zu to %zu (want +%zu at least)", round,
                  sizes[i], a.uordblks, b.uordblks, sizes[i]);
            memset(p[i], 1, sizes[i]);
        }
    (void)p;
}

/* N bytes in many blocks: uordblks grows by N; freeing them gives back at least half (glibc's
 * tcache keeps a few blocks "in use"; hakmem counts its thread caches as free). */
static void test_many(void)
{
    struct mallinfo2 a = mallinfo2();
    for (int i = 0; i < SMALL / 4; i++)
        CHECK(small[i] = malloc(opaque(SMALL_SIZE)), "malloc(%d) failed", SMALL_SIZE);
    struct mallinfo2 b = mallinfo2();
    size_t n = (size_t)SMALL / 4 * SMALL_SIZE;
    CHECK(b.uordblks >= a.uordblks + n, "%d x malloc(%d): uordblks %zu -> %zu, want +%zu", SMALL / 4,
          SMALL_SIZE, a.uordblks, b.uordblks, n);
    for (int i = 0; i < SMALL / 4; i++) {
        free(small[i]);
        small[i] = NULL;
    }
    struct mallinfo2 c = mallinfo2();
    CHECK(c.uordblks + n / 2 <= b.uordblks, "freeing %zu bytes: uordblks %zu -> %zu, want -%zu at least",
          n, b.uordblks, c.uordblks, n / 2);
    /* hakmem gives back every byte; the trim policy's helper thread may start meanwhile (its
     * pthread_create allocates a little). */
    if (e2e_is_hakmem())
        CHECK(c.uordblks <= a.uordblks + 4096, "hakmem: uordblks %zu after freeing everything, %zu before",
              c.uordblks, a.uordblks);
}

/* A block glibc always maps (above its largest dynamic threshold, 32 MB). */
static void test_large(void)
{
    size_t big = (size_t)40 << 20;
    struct mallinfo2 a = mallinfo2();
    void *p = malloc(opaque(big));
    CHECK(p, "malloc(40 MB) failed");
    struct mallinfo2 b = mallinfo2();
    CHECK(b.hblks == a.hblks + 1, "malloc(40 MB): hblks %zu -> %zu, want +1", a.hblks, b.hblks);
    CHECK(b.hblkhd >= a.hblkhd + big, "malloc(40 MB): hblkhd %zu -> %zu", a.hblkhd, b.hblkhd);
    CHECK(b.uordblks + b.hblkhd >= a.uordblks + a.hblkhd + big, "malloc(40 MB): uordblks + hblkhd did not grow by 40 MB");
    free(p);
    struct mallinfo2 c = mallinfo2();
    CHECK(c.hblks == a.hblks && c.hblkhd == a.hblkhd, "free(40 MB): hblks %zu hblkhd %zu, want %zu %zu",
          c.hblks, c.hblkhd, a.hblks, a.hblkhd);
}

static void test_invariants(const char *when)
{
    struct mallinfo2 m = mallinfo2();
    CHECK(m.uordblks + m.fordblks <= m.arena + m.hblkhd, "%s: uordblks %zu + fordblks %zu > arena %zu + hblkhd %zu",
          when, m.uordblks, m.fordblks, m.arena, m.hblkhd);
    CHECK(m.fsmblks <= m.fordblks, "%s: fsmblks %zu > fordblks %zu", when, m.fsmblks, m.fordblks);
    CHECK(m.keepcost <= m.fordblks, "%s: keepcost %zu > fordblks %zu", when, m.keepcost, m.fordblks);
    CHECK(m.usmblks == 0, "%s: usmblks %zu (unused in glibc)", when, m.usmblks);
    if (e2e_is_hakmem()) {
        /* arena counts every mapping, uordblks every block the program holds (large ones too),
         * and what is neither is headers and slab tails: a few percent. */
        CHECK(m.uordblks + m.fordblks <= m.arena, "%s: uordblks %zu + fordblks %zu > arena %zu", when,
              m.uordblks, m.fordblks, m.arena);
        CHECK(m.arena - m.uordblks - m.fordblks <= m.arena / 8, "%s: %zu bytes neither used nor free of %zu",
              when, m.arena - m.uordblks - m.fordblks, m.arena);
        CHECK(m.uordblks >= m.hblkhd, "%s: uordblks %zu < hblkhd %zu", when, m.uordblks, m.hblkhd);
    }
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static void test_old_mallinfo(void)
{
    struct mallinfo2 a, b;
    struct mallinfo m;
    for (int tries = 0;; tries++) {
        a = mallinfo2();
        m = mallinfo();
        b = mallinfo2();
        if (same(&a, &b) || tries == 50)
            break;
    }
    CHECK(same(&a, &b), "the figures kept moving");
    CHECK((size_t)m.arena == a.arena && (size_t)m.uordblks == a.uordblks && (size_t)m.fordblks == a.fordblks &&
              (size_t)m.hblkhd == a.hblkhd && (size_t)m.hblks == a.hblks && (size_t)m.keepcost == a.keepcost,
          "mallinfo() %d/%d/%d/%d differs from mallinfo2() %zu/%zu/%zu/%zu (arena/uordblks/fordblks/hblkhd)",
          m.arena, m.uordblks, m.fordblks, m.hblkhd, a.arena, a.uordblks, a.fordblks, a.hblkhd);
    if (!e2e_is_hakmem()) {
        e2e_note("note: mallinfo() saturation checked under hakmem only (glibc's wraps)");
        return;
    }
    /* 3 GB of large blocks, never touched: hblkhd and uordblks pass INT_MAX. */
    void *g[3];
    for (int i = 0; i < 3; i++)
        if (!(g[i] = malloc(opaque((size_t)1 << 30)))) {
            while (i--)
                free(g[i]);
            e2e_note("note: no 3 GB of address space here (overcommit?): saturation not checked");
            return;
        }
    m = mallinfo();
    a = mallinfo2();
    CHECK(a.hblkhd >= (size_t)3 << 30, "mallinfo2: hblkhd %zu with 3 GB in large blocks", a.hblkhd);
    CHECK(m.hblkhd == INT_MAX && m.uordblks == INT_MAX && m.arena == INT_MAX,
          "mallinfo() with 3 GB in use: hblkhd %d uordblks %d arena %d, want INT_MAX", m.hblkhd, m.uordblks, m.arena);
    CHECK(m.hblks == (int)a.hblks, "mallinfo().hblks %d, mallinfo2 %zu", m.hblks, a.hblks);
    for (int i = 0; i < 3; i++)
        free(g[i]);
}
#pragma GCC diagnostic pop

static void test_info_einval(void)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/einval.xml", dir);
    FILE *f = fopen(path, "w+");
    CHECK(f, "cannot write %s", path);
    errno = 0;
    int r = malloc_info(1, f);
    int e = errno;
    CHECK(r == EINVAL, "malloc_info(1, fp) returned %d, want EINVAL (%d) as glibc", r, EINVAL);
    if (e2e_is_hakmem())
        CHECK(e == EINVAL, "malloc_info(1, fp): errno %d, want EINVAL", e);
    fflush(f);
    CHECK(ftell(f) == 0, "malloc_info(1, fp) wrote %ld bytes", ftell(f));
    fclose(f);
}

/* glibc: 1 for every parameter, value and unknown parameter, 0 for M_MXFAST outside
 * 0..80*sizeof(size_t)/4. Values that leave glibc's behaviour as it is by default. */
static void test_mallopt(void)
{
    struct { int param, value, want; const char *what; } c[] = {
        {M_MXFAST, 64 * (int)sizeof(size_t) / 4, 1, "M_MXFAST default"},
        {M_MXFAST, 80 * (int)sizeof(size_t) / 4, 1, "M_MXFAST at its maximum"},
        {M_MXFAST, 80 * (int)sizeof(size_t) / 4 + 1, 0, "M_MXFAST above its maximum"},
        {M_MXFAST, -1, 0, "M_MXFAST negative"},
        {M_TRIM_THRESHOLD, 128 * 1024, 1, "M_TRIM_THRESHOLD"},
        {M_TOP_PAD, 128 * 1024, 1, "M_TOP_PAD"},
        {M_MMAP_MAX, 65536, 1, "M_MMAP_MAX"},
        {M_CHECK_ACTION, 3, 1, "M_CHECK_ACTION"},
        {M_PERTURB, 0, 1, "M_PERTURB"},
        {M_ARENA_TEST, 0, 1, "M_ARENA_TEST 0 (ignored)"},
        {M_ARENA_MAX, 0, 1, "M_ARENA_MAX 0 (ignored)"},
        {2, 0, 1, "M_NLBLKS (unused)"},
        {4, 0, 1, "M_KEEP (unused)"},
        {1000, 5, 1, "an unknown parameter"},
        {-1000, 5, 1, "an unknown negative parameter"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        int r = mallopt(c[i].param, c[i].value);
        CHECK(r == c[i].want, "mallopt(%s: %d, %d) returned %d, want %d", c[i].what, c[i].param, c[i].value, r,
              c[i].want);
    }
}

/* The figures while other threads allocate and free (and hand blocks to each other): the calls
 * neither crash nor deadlock, and every snapshot adds up. */
#include <pthread.h>
#include <stdatomic.h>

static atomic_int stop;
static void *volatile handoff[64];

static void *churn(void *arg)
{
    uint64_t seed = (uintptr_t)arg * 7919 + 1;
    void *mine[256] = {0};
    while (!atomic_load(&stop)) {
        unsigned i = rng_next(&seed) % 256;
        free(mine[i]);
        mine[i] = malloc(16 + rng_next(&seed) % 3000);
        CHECK(mine[i], "malloc failed in a churn thread");
        unsigned h = rng_next(&seed) % 64; /* swap one with whoever comes by: foreign frees */
        void *p = __atomic_exchange_n(&handoff[h], mine[i], __ATOMIC_ACQ_REL);
        mine[i] = p;
    }
    for (unsigned i = 0; i < 256; i++)
        free(mine[i]);
    return NULL;
}

static void test_concurrent(void)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        CHECK(pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1)) == 0, "pthread_create failed");
    FILE *null = fopen("/dev/null", "w");
    CHECK(null, "cannot open /dev/null");
    for (int k = 0; k < 300; k++) {
        struct mallinfo2 m = mallinfo2();
        CHECK(m.uordblks + m.fordblks <= m.arena + m.hblkhd,
              "while threads run: uordblks %zu + fordblks %zu > arena %zu + hblkhd %zu", m.uordblks,
              m.fordblks, m.arena, m.hblkhd);
        if (k % 10 == 0)
            CHECK(malloc_info(0, null) == 0, "malloc_info(0, /dev/null) failed while threads run");
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    for (int h = 0; h < 64; h++)
        free(handoff[h]);
    fclose(null);
}

int main(int argc, char **argv)
{
    CHECK(argc == 2, "usage: introspect DIR");
    snprintf(dir, sizeof dir, "%s", argv[1]);
    test_invariants("start");
    test_grows();
    test_invariants("after growing");
    test_many();
    test_large();
    test_old_mallinfo();
    test_invariants("after the large blocks");

    info_to("info-before", 0);
    for (int i = 0; i < SMALL; i++)
        CHECK(small[i] = malloc(opaque(SMALL_SIZE)), "malloc failed");
    void *big = malloc(opaque((size_t)40 << 20));
    CHECK(big, "malloc(40 MB) failed");
    size_t held = (size_t)SMALL * SMALL_SIZE + ((size_t)40 << 20);
    test_invariants("holding 48 MB");
    info_to("info-after", held);
    stats_to("stats", held);
    for (int i = 0; i < SMALL; i++)
        free(small[i]);
    free(big);
    test_invariants("at the end");
    test_concurrent();
    test_invariants("after the threads");
    test_info_einval();
    test_mallopt();
    printf("introspect: mallinfo2, mallinfo, malloc_info, malloc_stats and mallopt as glibc's\n");
    return 0;
}
