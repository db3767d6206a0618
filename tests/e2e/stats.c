/* Workload for the stats check (the runner parses what hakmem prints at exit): N small blocks
 * allocated on the main thread, half freed there, half freed by a second thread, and a few
 * SuperSlabs' worth allocated and freed.  Usage: stats [n]; prints nothing itself on success. */
#include "e2e.h"

#include <pthread.h>

static void **blocks;
static int n;

static void *free_second_half(void *arg)
{
    (void)arg;
    for (int i = n / 2; i < n; i++) {
        CHECK(pat_check(blocks[i], 64, i) == (size_t)-1, "block %d corrupted", i);
        free(blocks[i]);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    n = argc > 1 ? atoi(argv[1]) : 10000;
    blocks = calloc(n, sizeof *blocks);
    CHECK(blocks, "calloc failed");
    for (int i = 0; i < n; i++) {
        blocks[i] = malloc(64);
        CHECK(blocks[i], "malloc(64) failed");
        pat_fill(blocks[i], 64, i);
    }
    for (int i = 0; i < n / 2; i++) {
        CHECK(pat_check(blocks[i], 64, i) == (size_t)-1, "block %d corrupted", i);
        free(blocks[i]);
    }
    pthread_t t;
    CHECK(pthread_create(&t, NULL, free_second_half, NULL) == 0, "pthread_create failed");
    pthread_join(t, NULL);
    /* Some 16 MB of small blocks, so several SuperSlabs exist and become empty. */
    for (int round = 0; round < 4; round++) {
        void **v = malloc(65536 * sizeof *v);
        CHECK(v, "malloc failed");
        for (int i = 0; i < 65536; i++)
            CHECK(v[i] = malloc(64), "malloc(64) failed");
        for (int i = 0; i < 65536; i++)
            free(v[i]);
        free(v);
    }
    free(blocks);
    return 0;
}
