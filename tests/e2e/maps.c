/* Mapping count: hundreds of rounds that allocate and free SuperSlab-sized working sets (on this
 * thread, on short-lived threads whose blocks main frees, and as 3 MB blocks) must leave the
 * number of lines in /proc/self/maps bounded, at the peak and after everything is freed. */
#include "e2e.h"

#include <pthread.h>

#define MiB ((size_t)1 << 20)
enum { SET = 8 * 1024 * 1024, MAXBLK = 40000, ROUNDS = 150, PEAK_SLACK = 512, REST_SLACK = 96 };

static void *blocks[MAXBLK];
static int nblocks;
static long baseline, peak, rest_max;

static void fill_set(uint64_t seed)
{
    uint64_t rng = seed;
    size_t total = 0;
    nblocks = 0;
    while (total < SET && nblocks < MAXBLK) {
        size_t n = 16 + rng_next(&rng) % 1000;
        unsigned char *p = malloc(n);
        CHECK(p, "malloc(%zu) returned NULL", n);
        p[0] = (unsigned char)n;
        p[n - 1] = (unsigned char)n;
        blocks[nblocks++] = p;
        total += n;
    }
}

static void free_set(void)
{
    for (int i = 0; i < nblocks; i++)
        free(blocks[i]);
    nblocks = 0;
}

static void *thread_fill(void *arg)
{
    fill_set((uint64_t)(uintptr_t)arg);
    return NULL;
}

static void measure(int after_free, int round, const char *phase)
{
    long n = proc_maps_count();
    CHECK(n > 0, "cannot read /proc/self/maps");
    if (!after_free && n > peak)
        peak = n;
    if (after_free && n > rest_max)
        rest_max = n;
    if (n - baseline > PEAK_SLACK)
        FAIL("%s round %d: /proc/self/maps has %ld lines, %ld at the start: mappings pile up", phase, round, n, baseline);
}

int main(void)
{
    /* Warm up (stdio, a first thread) so the baseline holds what any program has. */
    pthread_t t;
    CHECK(pthread_create(&t, NULL, thread_fill, (void *)1) == 0, "pthread_create failed");
    pthread_join(t, NULL);
    free_set();
    baseline = proc_maps_count();

    for (int r = 0; r < ROUNDS; r++) {
        fill_set(r + 10);
        measure(0, r, "same thread");
        free_set();
        measure(1, r, "same thread");
    }
    for (int r = 0; r < ROUNDS; r++) {
        CHECK(pthread_create(&t, NULL, thread_fill, (void *)(uintptr_t)(r + 1000)) == 0, "pthread_create failed");
        pthread_join(t, NULL);
        measure(0, r, "dead thread's blocks");
        free_set();
        measure(1, r, "dead thread's blocks");
    }
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < 20; i++) {
            blocks[i] = malloc(3 * MiB + i * 4096);
            CHECK(blocks[i], "malloc(3 MB) returned NULL");
            memset(blocks[i], i, 4096);
        }
        nblocks = 20;
        measure(0, r, "3 MB blocks");
        free_set();
        measure(1, r, "3 MB blocks");
    }
    long end = proc_maps_count();
    CHECK(end - baseline <= REST_SLACK, "after freeing everything /proc/self/maps has %ld lines, %ld at the start",
          end, baseline);
    e2e_note("maps: %ld lines at the start, peak %ld, at most %ld after frees, %ld at the end",
             baseline, peak, rest_max, end);
    return 0;
}
