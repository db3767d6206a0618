/* Larson-style churn, the workload that killed hakmem's predecessor: T chains of threads each keep
 * N live blocks of 8-128 B, free and replace random victims (checking contents), and after R
 * rounds hand their array to a new thread and exit. Fails on corruption, or if peak RSS or the
 * mapping count run away.  Usage: larson [seconds [threads [blocks [rounds [max_rss_mb]]]]] */
#include "e2e.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

struct chain {
    int id;
    int nblocks;
    unsigned char **blk;
    uint32_t *size;
    uint64_t *tag;
    uint64_t rng;
    uint64_t next_tag;
    long generations;    /* threads this chain has gone through */
    long ops;
};

static int nthreads = 4, nblocks = 1024, rounds = 10000;
static long max_rss_mb = 200;
static atomic_int stop;
static atomic_int chains_running;
static pthread_attr_t detached;

static void new_block(struct chain *c, int i)
{
    uint32_t n = 8 + (uint32_t)(rng_next(&c->rng) % 121);
    unsigned char *p = malloc(n);
    CHECK(p, "chain %d: malloc(%u) returned NULL after %ld operations", c->id, n, c->ops);
    c->tag[i] = ((uint64_t)c->id << 48) | c->next_tag++;
    c->size[i] = n;
    c->blk[i] = p;
    pat_fill(p, n, c->tag[i]);
}

static void check_block(struct chain *c, int i, const char *who)
{
    size_t bad = pat_check(c->blk[i], c->size[i], c->tag[i]);
    if (bad != (size_t)-1)
        FAIL("%s: chain %d generation %ld block %d (%u bytes) corrupted at offset %zu", who, c->id,
             c->generations, i, c->size[i], bad);
}

static void *larson_thread(void *arg)
{
    struct chain *c = arg;
    for (int r = 0; r < rounds && !atomic_load_explicit(&stop, memory_order_relaxed); r++) {
        int v = (int)(rng_next(&c->rng) % (uint64_t)c->nblocks);
        check_block(c, v, "worker");
        free(c->blk[v]);
        new_block(c, v);
        c->ops++;
    }
    if (atomic_load(&stop)) {
        atomic_fetch_sub(&chains_running, 1);
        return NULL;
    }
    /* Hand the whole array to a new thread and exit with its blocks alive. */
    c->generations++;
    pthread_t t;
    int rc = pthread_create(&t, &detached, larson_thread, c);
    CHECK(rc == 0, "chain %d: pthread_create failed: %s", c->id, strerror(rc));
    return NULL;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 3.0;
    if (argc > 2) nthreads = atoi(argv[2]);
    if (argc > 3) nblocks = atoi(argv[3]);
    if (argc > 4) rounds = atoi(argv[4]);
    if (argc > 5) max_rss_mb = atol(argv[5]);
    pthread_attr_init(&detached);
    pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);

    struct chain *chains = calloc(nthreads, sizeof *chains);
    CHECK(chains, "calloc failed");
    for (int i = 0; i < nthreads; i++) {
        struct chain *c = &chains[i];
        c->id = i;
        c->nblocks = nblocks;
        c->rng = 0xC0FFEEull + i;
        c->blk = calloc(nblocks, sizeof *c->blk);
        c->size = calloc(nblocks, sizeof *c->size);
        c->tag = calloc(nblocks, sizeof *c->tag);
        CHECK(c->blk && c->size && c->tag, "calloc failed");
        for (int k = 0; k < nblocks; k++)
            new_block(c, k);   /* the first blocks come from the main thread */
    }
    atomic_store(&chains_running, nthreads);
    for (int i = 0; i < nthreads; i++) {
        pthread_t t;
        int rc = pthread_create(&t, &detached, larson_thread, &chains[i]);
        CHECK(rc == 0, "pthread_create failed: %s", strerror(rc));
    }
    struct timespec d = { (time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9) };
    while (nanosleep(&d, &d) != 0)
        ;
    atomic_store(&stop, 1);
    while (atomic_load(&chains_running) > 0)
        usleep(1000);

    long ops = 0, gens = 0;
    for (int i = 0; i < nthreads; i++) {
        struct chain *c = &chains[i];
        for (int k = 0; k < nblocks; k++) {
            check_block(c, k, "main");
            free(c->blk[k]);
        }
        ops += c->ops;
        gens += c->generations;
        free(c->blk), free(c->size), free(c->tag);
    }
    free(chains);
    long hwm = proc_status_kb("VmHWM"), vpeak = proc_status_kb("VmPeak"), maps = proc_maps_count();
    CHECK(hwm > 0 && vpeak > 0 && maps > 0, "cannot read /proc/self/status or maps");
    CHECK(hwm < max_rss_mb * 1024, "peak RSS %ld MB exceeds %ld MB for a working set under 1 MB", hwm / 1024, max_rss_mb);
    /* The seed reached 167 GB of address space; a few GB covers thread stacks and arenas. */
    CHECK(vpeak < 4L << 20, "peak address space %ld MB: SuperSlabs pile up", vpeak / 1024);
    CHECK(maps < 2000, "%ld mappings at the end: SuperSlabs are not given back", maps);
    e2e_note("larson: %ld operations, %ld thread generations, peak RSS %ld MB, peak VM %ld MB, %ld mappings",
             ops, gens, hwm / 1024, vpeak / 1024, maps);
    return 0;
}
