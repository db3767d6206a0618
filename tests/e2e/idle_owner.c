/* A thread allocates 16 MB of small blocks, hands them to another thread that frees them all
 * (remote frees into the first thread's slabs), then sleeps without allocating. hakmem's trim
 * passes must reclaim those slabs for the sleeping owner: RSS goes back down while it sleeps.
 * Usage: idle_owner [max_wait_seconds]. Prints "idle_owner: RSS a -> b MB after t s". */
#include "e2e.h"

#include <pthread.h>
#include <time.h>

enum { N = 262144, SIZE = 64 };
static void **blocks;

static void *free_all(void *arg)
{
    (void)arg;
    for (int i = 0; i < N; i++) {
        CHECK(pat_check(blocks[i], SIZE, i) == (size_t)-1, "block %d corrupted", i);
        free(blocks[i]);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    double max_wait = argc > 1 ? atof(argv[1]) : 5.0;
    blocks = malloc(N * sizeof *blocks);
    CHECK(blocks, "malloc failed");
    for (int i = 0; i < N; i++) {
        blocks[i] = malloc(SIZE);
        CHECK(blocks[i], "malloc(%d) failed", SIZE);
        pat_fill(blocks[i], SIZE, i);
    }
    long full = proc_status_kb("VmRSS");
    pthread_t t;
    CHECK(pthread_create(&t, NULL, free_all, NULL) == 0, "pthread_create failed");
    CHECK(pthread_join(t, NULL) == 0, "pthread_join failed");
    /* Sleep, without allocating, until at least half of the 16 MB went back (or time is up). */
    long want = full - (long)N * SIZE / 1024 / 2, now = full;
    double waited = 0;
    struct timespec step = {0, 50 * 1000 * 1000};
    while ((now = proc_status_kb("VmRSS")) > want && waited < max_wait) {
        nanosleep(&step, NULL);
        waited += 0.05;
    }
    CHECK(now <= want, "RSS %ld KB after the frees and %.1f s asleep, was %ld KB with the blocks live: "
          "blocks freed to a sleeping thread did not go back", now, waited, full);
    printf("idle_owner: RSS %.1f -> %.1f MB after %.2f s\n", full / 1024.0, now / 1024.0, waited);
    free(blocks);
    return 0;
}
