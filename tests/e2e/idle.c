/* Workload for the idle-trim check (the runner parses what hakmem prints at exit): some 16 MB
 * of small blocks allocated and freed, so several SuperSlabs empty, then the program stays
 * quiet for a while without allocating.  Usage: idle [seconds]; prints
 * "idle: RSS <live> -> <end> kB" (with the blocks live, and after the quiet time). */
#include "e2e.h"

#include <time.h>

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    enum { N = 262144 };
    void **v = malloc(N * sizeof *v);
    CHECK(v, "malloc failed");
    for (int i = 0; i < N; i++) {
        v[i] = malloc(64);
        CHECK(v[i], "malloc(64) failed");
        pat_fill(v[i], 64, i);
    }
    long live = proc_status_kb("VmRSS");
    for (int i = 0; i < N; i++) {
        CHECK(pat_check(v[i], 64, i) == (size_t)-1, "block %d corrupted", i);
        free(v[i]);
    }
    free(v);
    struct timespec ts = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
    nanosleep(&ts, NULL);
    printf("idle: RSS %ld -> %ld kB\n", live, proc_status_kb("VmRSS"));
    return 0;
}
