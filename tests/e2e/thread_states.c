/* Thread states at quiescence: after many threads came and went, hakmem must hold a state for
 * each live thread that allocated (here: only the main thread), parked ones only up to its limit
 * and none once a trim pass ran; a state made for a thread that was already exiting would be
 * live for ever. Three kinds of threads: Larson-style chains (each thread frees and replaces its
 * predecessor's blocks, starts a detached successor and exits), detached threads that never
 * allocate (glibc frees their TLS vector after their TSD destructors ran, the late free that used
 * to take over a parked state), and joined threads that free blocks the main thread made. Every
 * thread is waited for until the kernel has reaped it (tgkill says so), then hakmem's JSON stats
 * are read.  Usage: thread_states [chains]; under plain glibc only the workload runs. */
#include "e2e.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>

enum { BLOCKS = 256, GENERATIONS = 40, QUIET = 64, JOINED = 16, MAX_TIDS = 4096 };

static atomic_int ntids;
static pid_t tids[MAX_TIDS];
static pthread_attr_t detached;

static void note_tid(void)
{
    int i = atomic_fetch_add(&ntids, 1);
    CHECK(i < MAX_TIDS, "too many threads");
    tids[i] = (pid_t)syscall(SYS_gettid);
}

struct chain {
    void *blk[BLOCKS];
    uint64_t rng;
    int generation;
};

static void *chain_thread(void *arg)
{
    struct chain *c = arg;
    note_tid();
    for (int round = 0; round < 2000; round++) {
        int i = (int)(rng_next(&c->rng) % BLOCKS);
        free(c->blk[i]);
        CHECK((c->blk[i] = malloc(8 + rng_next(&c->rng) % 120)) != NULL, "malloc failed");
    }
    if (++c->generation < GENERATIONS) {
        pthread_t t;
        CHECK(pthread_create(&t, &detached, chain_thread, c) == 0, "pthread_create failed");
    } else {
        for (int i = 0; i < BLOCKS; i++)
            free(c->blk[i]);
        c->generation = -1; /* done */
    }
    return NULL;
}

static void *quiet_thread(void *arg)
{
    (void)arg;
    note_tid(); /* no allocation: only glibc's own free of the TLS vector at the very end */
    return NULL;
}

static void *freeing_thread(void *arg)
{
    void **v = arg;
    for (int i = 0; i < 200; i++)
        free(v[i]);
    return NULL;
}

static int gone(pid_t tid)
{
    return syscall(SYS_tgkill, getpid(), tid, 0) != 0 && errno == ESRCH;
}

int main(int argc, char **argv)
{
    int nchains = argc > 1 ? atoi(argv[1]) : 4;
    pthread_attr_init(&detached);
    pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
    struct chain *chains = calloc((size_t)nchains, sizeof *chains);
    CHECK(chains, "calloc failed");
    for (int c = 0; c < nchains; c++) {
        chains[c].rng = (uint64_t)c + 1;
        for (int i = 0; i < BLOCKS; i++)
            CHECK((chains[c].blk[i] = malloc(32)) != NULL, "malloc failed");
        pthread_t t;
        CHECK(pthread_create(&t, &detached, chain_thread, &chains[c]) == 0, "pthread_create failed");
    }
    for (int i = 0; i < QUIET; i++) {
        pthread_t t;
        CHECK(pthread_create(&t, &detached, quiet_thread, NULL) == 0, "pthread_create failed");
    }
    for (int i = 0; i < JOINED; i++) {
        void *v[200];
        for (int k = 0; k < 200; k++)
            CHECK((v[k] = malloc(48)) != NULL, "malloc failed");
        pthread_t t;
        CHECK(pthread_create(&t, NULL, freeing_thread, v) == 0, "pthread_create failed");
        pthread_join(t, NULL);
    }
    /* Quiescence: every chain finished, every thread that ever ran reaped by the kernel. */
    struct timespec ms = {0, 1000000};
    for (int c = 0; c < nchains; c++)
        while (__atomic_load_n(&chains[c].generation, __ATOMIC_ACQUIRE) != -1)
            nanosleep(&ms, NULL);
    int want = nchains * GENERATIONS + QUIET;
    while (atomic_load(&ntids) < want)
        nanosleep(&ms, NULL);
    for (int i = 0; i < want; i++)
        while (!gone(tids[i]))
            nanosleep(&ms, NULL);
    free(chains);

    if (!e2e_is_hakmem()) {
        printf("thread_states: %d threads came and went (not hakmem: no states to count): ok\n", want + JOINED);
        return 0;
    }
    void (*stats_print)(FILE *, int) = (void (*)(FILE *, int))dlsym(RTLD_DEFAULT, "hak_stats_print");
    size_t (*trim)(void) = (size_t(*)(void))dlsym(RTLD_DEFAULT, "hak_trim");
    CHECK(stats_print && trim, "hak_stats_print or hak_trim missing");
    unsigned long live[2], parked[2];
    for (int pass = 0; pass < 2; pass++) {
        if (pass)
            trim(); /* retires every parked state */
        char buf[4096] = "";
        FILE *m = fmemopen(buf, sizeof buf - 1, "w");
        CHECK(m, "fmemopen failed");
        stats_print(m, 1);
        fclose(m);
        const char *p = strstr(buf, "\"threads\":{");
        CHECK(p && sscanf(p, "\"threads\":{\"live\":%lu,\"parked\":%lu}", &live[pass], &parked[pass]) == 2,
              "no \"threads\":{\"live\":N,\"parked\":M} in the stats: %.300s", buf);
    }
    /* Only the main thread is alive: its state is the one live state. Parked states (at most 8)
     * wait for the trim helper, which may not have passed yet; a trim pass retires them all. */
    CHECK(live[0] == 1, "%lu live thread states at quiescence, want 1 (the main thread's)", live[0]);
    CHECK(parked[0] <= 8, "%lu parked thread states, want at most 8", parked[0]);
    CHECK(live[1] == 1 && parked[1] == 0, "after hak_trim(): %lu live, %lu parked, want 1 and 0", live[1], parked[1]);
    printf("thread_states: %d threads came and went: 1 live state, %lu parked, none after a trim pass: ok\n",
           want + JOINED, parked[0]);
    return 0;
}
