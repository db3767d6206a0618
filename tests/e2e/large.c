/* Large blocks and realloc chains: grow from 1 B to 64 MB by doubling and by small steps, shrink
 * back the same ways, many large blocks alive at once, two chains growing in turn; contents are
 * checked after every step, and a freed 64 MB block gives its memory back. */
#include "e2e.h"

#include <malloc.h>

#define MiB ((size_t)1 << 20)
#define TOP (64 * MiB)

static unsigned char *resize(unsigned char *p, size_t old, size_t n, uint64_t tag, const char *how)
{
    unsigned char *q = realloc(p, opaque(n));
    CHECK(q, "%s: realloc(%zu -> %zu) returned NULL", how, old, n);
    CHECK((uintptr_t)q % 16 == 0, "%s: realloc(%zu -> %zu) returned %p, not 16-byte aligned", how, old, n, (void *)q);
    CHECK(malloc_usable_size(q) >= n, "%s: realloc(%zu -> %zu): usable size %zu", how, old, n, malloc_usable_size(q));
    size_t keep = old < n ? old : n;
    size_t bad = pat_check(q, keep, tag);
    if (bad != (size_t)-1)
        FAIL("%s: realloc(%zu -> %zu) lost contents at offset %zu", how, old, n, bad);
    if (n > old)
        pat_fill(q, n, tag);   /* the pattern depends on position only: refilling keeps the prefix */
    return q;
}

static size_t chain(size_t from, size_t to, size_t (*step)(size_t), uint64_t tag, const char *how)
{
    unsigned char *p = malloc(from);
    CHECK(p, "malloc(%zu) returned NULL", from);
    pat_fill(p, from, tag);
    size_t n = from, steps = 0;
    while (n != to) {
        size_t m = step(n);
        if ((from < to && m > to) || (from > to && m < to))
            m = to;
        p = resize(p, n, m, tag, how);
        n = m;
        steps++;
    }
    CHECK(pat_check(p, n, tag) == (size_t)-1, "%s: final block corrupted", how);
    free(p);
    return steps;
}

static size_t twice(size_t n) { return n * 2; }
static size_t half(size_t n) { return n / 2; }
static size_t plus_one(size_t n) { return n + 1; }
static size_t plus_bit(size_t n) { return n + 1 + n / 64; }
static size_t plus_eighth(size_t n) { return n + 1 + n / 8; }
static size_t minus_eighth(size_t n) { return n - 1 - n / 8; }
static size_t minus_odd(size_t n) { return n > 4099 ? n - 4099 : 1; }

static void many_large(void)
{
    enum { N = 48 };
    unsigned char *p[N];
    size_t n[N];
    uint64_t rng = 12345;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            n[i] = 64 * 1024 + rng_next(&rng) % (6 * MiB);
            p[i] = malloc(opaque(n[i]));
            CHECK(p[i], "malloc(%zu) returned NULL", n[i]);
            pat_fill(p[i], n[i], round * 100 + i);
        }
        /* Resize a third of them in place or by moving. */
        for (int i = 0; i < N; i += 3) {
            size_t m = 1000 + rng_next(&rng) % (8 * MiB);
            p[i] = resize(p[i], n[i], m, round * 100 + i, "many large");
            n[i] = m;
        }
        for (int i = 0; i < N; i++) {
            size_t bad = pat_check(p[i], n[i], round * 100 + i);
            CHECK(bad == (size_t)-1, "large block %d of %zu bytes corrupted at offset %zu", i, n[i], bad);
        }
        for (int i = 0; i < N; i++) {
            int j = (int)(rng_next(&rng) % N);
            unsigned char *t = p[i]; p[i] = p[j]; p[j] = t;
            size_t u = n[i]; n[i] = n[j]; n[j] = u;
        }
        for (int i = 0; i < N; i++)
            free(p[i]);
    }
}

/* Two chains growing in turn, so neither can simply extend into free space behind it. */
static void interleaved(void)
{
    unsigned char *a = malloc(16), *b = malloc(16);
    CHECK(a && b, "malloc(16) failed");
    pat_fill(a, 16, 1);
    pat_fill(b, 16, 2);
    size_t n = 16;
    while (n < 16 * MiB) {
        size_t m = n + n / 3 + 7;
        a = resize(a, n, m, 1, "interleaved a");
        b = resize(b, n, m, 2, "interleaved b");
        n = m;
    }
    a = resize(a, n, 100, 1, "interleaved shrink");
    a = resize(a, 100, 3 * MiB, 1, "interleaved regrow");
    free(a);
    free(b);
}

static void memory_goes_back(void)
{
    unsigned char *p = malloc(opaque(TOP));
    CHECK(p, "malloc(64 MB) returned NULL");
    memset(p, 0x77, TOP);
    long before = proc_status_kb("VmRSS");
    free(p);
    long after = proc_status_kb("VmRSS");
    CHECK(before - after >= 32 * 1024, "freeing a touched 64 MB block lowered RSS only from %ld kB to %ld kB",
          before, after);
}

int main(void)
{
    chain(1, TOP, twice, 1, "grow by doubling");
    chain(TOP, 1, half, 2, "shrink by halving");
    chain(1, 8192, plus_one, 3, "grow by one byte");
    chain(1, 4 * MiB, plus_bit, 4, "grow by 1/64");
    chain(256 * 1024, TOP, plus_eighth, 5, "grow by 1/8");
    chain(TOP, 1, minus_eighth, 6, "shrink by 1/8");
    chain(2 * MiB + 77, 1, minus_odd, 7, "shrink by 4099 bytes");
    many_large();
    interleaved();
    memory_goes_back();
    return 0;
}
