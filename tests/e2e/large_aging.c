/* hakmem only: cached large mappings age. Three 20 MB blocks are touched and freed; a block freed
 * and allocated again at once is served from the cache (no new mapping); then, with nothing else
 * going on, the trim policy's passes give the cached mappings back (RSS falls, "cached" reaches
 * 0) unless the trim policy is "none", under which they stay until malloc_trim().
 * usage: large_aging back|kept   (what the configuration must do with idle cached mappings) */
#include "e2e.h"

#include <malloc.h>
#include <time.h>

#define MiB ((size_t)1 << 20)
enum { N = 3, REUSES = 20 };
static const size_t SIZE = 20 * MiB;

typedef void (*stats_fn)(FILE *, int);

/* A number under "large" in the JSON stats, e.g. "mapped" or "cached". */
static long long large_stat(stats_fn print, const char *key)
{
    char buf[4096], pat[64];
    FILE *f = tmpfile(); /* a real file: hak_stats_print may write to the descriptor directly */
    CHECK(f, "tmpfile failed");
    print(f, 1);
    fflush(f);
    rewind(f);
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    char *s = strstr(buf, "\"large\":{");
    CHECK(s, "no \"large\" object in the stats: %.200s", buf);
    snprintf(pat, sizeof pat, "\"%s\":", key);
    char *k = strstr(s, pat);
    CHECK(k, "no \"large\".\"%s\" in the stats: %.200s", key, s);
    return strtoll(k + strlen(pat), NULL, 10);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int main(int argc, char **argv)
{
    CHECK(argc == 2 && (!strcmp(argv[1], "back") || !strcmp(argv[1], "kept")), "usage: large_aging back|kept");
    int want_back = !strcmp(argv[1], "back");
    if (!e2e_is_hakmem()) {
        e2e_note("large_aging: not hakmem, nothing to check");
        return 0;
    }
    stats_fn print = (stats_fn)dlsym(RTLD_DEFAULT, "hak_stats_print");
    CHECK(print, "hakmem does not export hak_stats_print");

    long base = rss_kb();
    unsigned char *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = malloc(opaque(SIZE));
        CHECK(p[i], "malloc(20 MB) returned NULL");
        pat_fill(p[i], SIZE, (uint64_t)i);
    }
    long full = rss_kb();
    CHECK(full - base >= (long)(N * SIZE / 1024) * 3 / 4, "RSS grew only from %ld to %ld kB after touching %d x 20 MB",
          base, full, N);

    /* The hot case: freed and allocated again at once, the block comes from the cache. Aging
     * needs two trim passes with the mapping unused in between, so a miss takes a stall of a
     * whole pass interval right between a free and the next malloc; allow two. */
    long long mapped = large_stat(print, "mapped");
    for (int r = 0; r < REUSES; r++) {
        int i = r % N;
        free(p[i]);
        p[i] = malloc(opaque(SIZE));
        CHECK(p[i], "malloc(20 MB) returned NULL");
        p[i][0] = (unsigned char)r;
        p[i][SIZE - 1] = (unsigned char)r;
    }
    long long remapped = large_stat(print, "mapped") - mapped;
    CHECK(remapped <= 2, "%lld of %d blocks freed and allocated again at once got a new mapping: "
          "the cache does not serve the hot case", remapped, REUSES);

    for (int i = 0; i < N; i++)
        free(p[i]);
    long freed = rss_kb();
    long low = full - (long)(N * SIZE / 1024) * 3 / 4; /* three quarters of the blocks gone */

    /* Wait: up to 5 s (many pass intervals) for "back", 1 s for "kept". */
    long waited = 0, now = freed;
    long limit = want_back ? 5000 : 1000;
    while (waited < limit && (!want_back || now > low)) {
        sleep_ms(20);
        waited += 20;
        now = rss_kb();
    }
    long long cached = large_stat(print, "cached");
    if (want_back) {
        CHECK(now <= low, "RSS still %ld kB %ld ms after freeing %d x 20 MB (%ld kB before, %ld kB at the free; "
              "%lld mappings cached): idle cached mappings are not given back", now, waited, N, full, freed, cached);
        CHECK(cached == 0, "%lld large mappings still cached after RSS fell", cached);
    } else {
        CHECK(now > low, "RSS fell to %ld kB %ld ms after freeing (%ld kB before): this trim policy must keep "
              "the cached mappings", now, waited, full);
        CHECK(cached >= 1, "no large mapping cached although the trim policy never trims");
        malloc_trim(0); /* an explicit trim still gives everything back */
        long trimmed = rss_kb();
        CHECK(trimmed <= low, "RSS still %ld kB after malloc_trim(0) (%ld kB before the frees)", trimmed, full);
        CHECK(large_stat(print, "cached") == 0, "large mappings still cached after malloc_trim(0)");
        e2e_note("large_aging: RSS %ld kB live, %ld kB at the free, %ld kB after %ld ms (kept), %ld kB after "
                 "malloc_trim; %lld of %d hot reuses remapped", full, freed, now, waited, trimmed, remapped, REUSES);
        return 0;
    }
    e2e_note("large_aging: RSS %ld kB live, %ld kB at the free, %ld kB after %ld ms (given back); %lld of %d hot "
             "reuses remapped", full, freed, now, waited, remapped, REUSES);
    return 0;
}
