/* Memory under pressure (for the trim policy `pressure`; tests/e2e/run.sh checks the counters it
 * prints at exit). Allocates 1 KB blocks, each touched, until the cgroup's usage reaches PERCENT
 * of its limit (or MB megabytes without a cgroup), holds them HOLD ms so that the trim policy
 * reads the pressure at its peak, frees them all, then waits for RSS to fall by three quarters of
 * what was allocated ("back", up to 5 s) or checks that it stays ("kept", 1.5 s).
 * usage: pressure -c CGDIR -p PERCENT [-h HOLD] back|kept
 *        pressure -m MB [-h HOLD] back|kept
 * -c moves this process into the cgroup CGDIR (its pid into CGDIR/cgroup.procs) and starts the
 * program again there (exec), so the allocator and its helper start inside the cgroup. The limit
 * is memory.high, else memory.max (v2), or memory.limit_in_bytes (v1); the usage memory.current
 * or memory.usage_in_bytes. */
#include "e2e.h"

#include <time.h>

#define MiB ((size_t)1 << 20)
enum { BLOCK = 1024 };

/* A cgroup file holding one number or "max" (-1); -2 when absent. */
static long long cg_value(const char *dir, const char *name)
{
    char path[1024], buf[64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return -2;
    long long v = -1;
    if (!fgets(buf, sizeof buf, f))
        FAIL("cannot read %s", path);
    fclose(f);
    if (strncmp(buf, "max", 3) != 0) {
        char *end;
        v = strtoll(buf, &end, 10);
        CHECK(end != buf, "%s holds '%s', not a number", path, buf);
    }
    return v;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int main(int argc, char **argv)
{
    const char *cg = NULL, *mode = NULL;
    int enter = 0;
    long percent = 0, mb = 0, hold = 600;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "-C")) && i + 1 < argc)
            enter = argv[i][1] == 'c', cg = argv[++i];
        else if (!strcmp(argv[i], "-p") && i + 1 < argc)
            percent = atol(argv[++i]);
        else if (!strcmp(argv[i], "-m") && i + 1 < argc)
            mb = atol(argv[++i]);
        else if (!strcmp(argv[i], "-h") && i + 1 < argc)
            hold = atol(argv[++i]);
        else if (!strcmp(argv[i], "back") || !strcmp(argv[i], "kept"))
            mode = argv[i];
        else
            FAIL("usage: pressure -c CGDIR -p PERCENT | -m MB [-h HOLD_MS] back|kept");
    }
    CHECK(mode && ((cg && percent > 0 && percent < 100) || (!cg && mb > 0)),
          "usage: pressure -c CGDIR -p PERCENT | -m MB [-h HOLD_MS] back|kept");
    if (enter) {
        char path[1024];
        snprintf(path, sizeof path, "%s/cgroup.procs", cg);
        FILE *f = fopen(path, "w");
        CHECK(f, "cannot open %s: %s", path, strerror(errno));
        CHECK(fprintf(f, "%d\n", (int)getpid()) > 0 && fclose(f) == 0, "cannot move into %s: %s", cg,
              strerror(errno));
        for (int i = 1; i < argc; i++)
            if (!strcmp(argv[i], "-c"))
                argv[i] = "-C"; /* inside now */
        execv("/proc/self/exe", argv);
        FAIL("execv(/proc/self/exe): %s", strerror(errno));
    }
    int want_back = !strcmp(mode, "back");

    /* What to reach: the cgroup's usage at `percent` of its limit, or `mb`. */
    const char *usage_file = NULL;
    long long limit = 0;
    if (cg) {
        long long high = cg_value(cg, "memory.high");
        if (high != -2) { /* v2 */
            usage_file = "memory.current";
            limit = high >= 0 ? high : cg_value(cg, "memory.max");
        } else {
            usage_file = "memory.usage_in_bytes";
            limit = cg_value(cg, "memory.limit_in_bytes");
        }
        CHECK(limit > 0 && limit < (1ll << 50), "the cgroup %s has no limit (%lld)", cg, limit);
    }
    size_t cap = cg ? (size_t)limit / BLOCK : (size_t)mb * MiB / BLOCK;
    void **v = malloc(cap * sizeof *v);
    CHECK(v, "malloc of the pointer array failed");
    long base = rss_kb();
    size_t n = 0;
    long long usage = 0;
    for (;;) {
        if (n % 1024 == 0) { /* every MB */
            if (cg) {
                usage = cg_value(cg, usage_file);
                CHECK(usage >= 0, "cannot read %s/%s", cg, usage_file);
                if (usage * 100 >= limit * percent)
                    break;
            } else if (n >= cap) {
                break;
            }
        }
        CHECK(n < cap, "allocated the whole limit (%zu blocks) and the cgroup's usage is still %lld of %lld",
              n, usage, limit);
        v[n] = malloc(BLOCK);
        CHECK(v[n], "malloc(%d) failed after %zu blocks", BLOCK, n);
        pat_fill(v[n], BLOCK, n);
        n++;
    }
    long peak = rss_kb();
    long alloc_kb = (long)(n * BLOCK / 1024);
    CHECK(peak - base >= alloc_kb * 3 / 4, "RSS grew only from %ld to %ld kB for %ld kB of blocks", base, peak,
          alloc_kb);
    sleep_ms(hold); /* the policy reads the pressure at the peak */
    for (size_t i = 0; i < n; i++) {
        CHECK(pat_check(v[i], BLOCK, i) == (size_t)-1, "block %zu corrupted", i);
        free(v[i]);
    }
    long freed = rss_kb();
    long low = peak - alloc_kb * 3 / 4, high = peak - alloc_kb / 4;
    long waited = 0, now = freed, limit_ms = want_back ? 5000 : 1500;
    while (waited < limit_ms && (!want_back || now > low)) {
        sleep_ms(20);
        waited += 20;
        now = rss_kb();
    }
    char where[160] = "";
    if (cg)
        snprintf(where, sizeof where, " to %lld%% of the cgroup's limit (%lld of %lld MB)", usage * 100 / limit,
                 usage >> 20, limit >> 20);
    if (want_back)
        CHECK(now <= low, "RSS still %ld kB %ld ms after freeing %ld kB of blocks (%ld kB at the peak, %ld kB "
              "at the free): not given back", now, waited, alloc_kb, peak, freed);
    else
        CHECK(now > high, "RSS fell to %ld kB %ld ms after freeing %ld kB (%ld kB at the peak): this trim "
              "policy must keep it", now, waited, alloc_kb, peak);
    e2e_note("pressure: %ld MB allocated%s; RSS %ld MB at the peak, %ld MB at the free, %ld MB after %ld ms (%s)",
             alloc_kb >> 10, where, peak >> 10, freed >> 10, now >> 10, waited, want_back ? "given back" : "kept");
    free(v);
    return 0;
}
