/* hakmem only: exact accounting at quiescence (the seed's bug). Threads allocate and exit, their
 * blocks are freed by other threads (live and dead owners); afterwards hak_active_blocks() is back
 * near where it started and, unless the trim policy is "none", hak_trim() gives the SuperSlabs back. */
#include "e2e.h"

#include <pthread.h>

enum { T = 4, PER = 100000, SIZE = 64, SLACK = 1024 };

typedef long long (*active_fn)(void);
typedef size_t (*trim_fn)(void);
typedef void (*stats_fn)(FILE *, int);
typedef const char *(*name_fn)(const char *);

static void *blocks[T][PER];

static void *producer(void *arg)
{
    int me = (int)(intptr_t)arg;
    for (int i = 0; i < PER; i++) {
        blocks[me][i] = malloc(SIZE);
        CHECK(blocks[me][i], "malloc(%d) failed", SIZE);
        pat_fill(blocks[me][i], SIZE, (uint64_t)me * PER + i);
    }
    return NULL;
}

/* Frees the even blocks of thread `victim` while it may still be alive, or all of a dead one's. */
struct job { int victim, step, start; };

static void *consumer(void *arg)
{
    struct job *j = arg;
    for (int i = j->start; i < PER; i += j->step) {
        size_t bad = pat_check(blocks[j->victim][i], SIZE, (uint64_t)j->victim * PER + i);
        CHECK(bad == (size_t)-1, "block %d of thread %d corrupted at offset %zu", i, j->victim, bad);
        free(blocks[j->victim][i]);
        blocks[j->victim][i] = NULL;
    }
    return NULL;
}

/* Reads one number from the JSON stats, e.g. key "live" inside "superslabs". */
static long long stats_number(stats_fn print, const char *section, const char *key)
{
    /* A real file: hak_stats_print may write to the stream's descriptor directly. */
    FILE *f = tmpfile();
    CHECK(f, "tmpfile failed");
    print(f, 1);
    fflush(f);
    long len = ftell(f);
    CHECK(len > 0, "hak_stats_print wrote nothing");
    rewind(f);
    char *buf = calloc(1, (size_t)len + 1);
    CHECK(buf && fread(buf, 1, (size_t)len, f) == (size_t)len, "reading the stats back failed");
    fclose(f);
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", section);
    char *s = strstr(buf, pat);
    CHECK(s, "no \"%s\" in the stats: %.200s", section, buf);
    snprintf(pat, sizeof pat, "\"%s\":", key);
    char *k = strstr(s, pat);
    CHECK(k, "no \"%s\" under \"%s\" in the stats", key, section);
    long long v = strtoll(k + strlen(pat), NULL, 10);
    free(buf);
    return v;
}

int main(void)
{
    if (!e2e_is_hakmem()) {
        e2e_note("accounting: not hakmem, nothing to check");
        return 0;
    }
    active_fn active = (active_fn)dlsym(RTLD_DEFAULT, "hak_active_blocks");
    trim_fn trim = (trim_fn)dlsym(RTLD_DEFAULT, "hak_trim");
    stats_fn print = (stats_fn)dlsym(RTLD_DEFAULT, "hak_stats_print");
    name_fn policy = (name_fn)dlsym(RTLD_DEFAULT, "hak_policy_name");
    CHECK(active && trim && print && policy, "hakmem does not export hak_active_blocks, hak_trim, hak_policy_name");

    long long a0 = active();
    pthread_t th[T];
    for (int i = 0; i < T; i++)
        CHECK(pthread_create(&th[i], NULL, producer, (void *)(intptr_t)i) == 0, "pthread_create failed");
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    long long a1 = active();
    CHECK(a1 - a0 >= (long long)T * PER, "hak_active_blocks grew by %lld after %d mallocs by threads that exited",
          a1 - a0, T * PER);

    /* Odd blocks: freed by threads that are alive at the same time as each other. */
    struct job jobs[T];
    for (int i = 0; i < T; i++) {
        jobs[i] = (struct job){ (i + 1) % T, 2, 1 };
        CHECK(pthread_create(&th[i], NULL, consumer, &jobs[i]) == 0, "pthread_create failed");
    }
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    /* Even blocks: freed by the main thread; every owner is gone. */
    for (int i = 0; i < T; i++) {
        struct job j = { i, 2, 0 };
        consumer(&j);
    }
    trim();
    long long a2 = active();
    CHECK(a2 - a0 <= SLACK, "hak_active_blocks is %lld after all %d blocks were freed (%lld at the start): "
          "frees from other threads are not counted", a2, T * PER, a0);

    long long live = stats_number(print, "superslabs", "live");
    long long size = stats_number(print, "superslabs", "size_bytes");
    const char *trim_name = policy("trim");
    /* 400000 x 64 B = 25 MB were live; with all of it freed and a trim pass, most must be gone. */
    if (trim_name && strcmp(trim_name, "none") != 0)
        CHECK(live * size <= 12LL << 20, "after freeing everything and hak_trim(), %lld SuperSlabs (%lld MB) "
              "are still live under trim policy %s", live, live * size >> 20, trim_name);
    e2e_note("accounting: active blocks %lld -> %lld -> %lld; %lld SuperSlabs live after trim (%s)",
             a0, a1, a2, live, trim_name ? trim_name : "?");
    return 0;
}
