/* fork() while other threads allocate, free each other's blocks and use stdio: every child must
 * allocate, free pre-fork blocks (also ones made by threads that do not exist in the child), use
 * stdio, start a thread and exit 0 (some live longer and fork again); a child that hangs is
 * killed and reported. Then several threads fork at once.  Usage: fork [forks] */
#include "e2e.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>

enum { BUSY = 4, FORKERS = 4, PRE = 1500, POOL = 256 };

struct block { unsigned char *p; size_t n; uint64_t tag; };

static struct block pre[PRE];             /* allocated before the forks, by main and by workers */
static atomic_int stop;
static FILE *shared_out;                  /* used by all busy threads (never by a child) */
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct block pool[POOL];           /* blocks passed between busy threads */

static struct block make_block(uint64_t tag, size_t n)
{
    struct block b = { malloc(n), n, tag };
    CHECK(b.p, "malloc(%zu) returned NULL", n);
    pat_fill(b.p, n, tag);
    return b;
}

static void check_block(const struct block *b, const char *who)
{
    size_t bad = pat_check(b->p, b->n, b->tag);
    if (bad != (size_t)-1)
        FAIL("%s: block tag %llu (%zu bytes) corrupted at offset %zu", who, (unsigned long long)b->tag, b->n, bad);
}

static size_t pick_size(uint64_t *rng)
{
    uint64_t r = rng_next(rng);
    return r % 40 == 0 ? 1 + (r >> 8) % 300000 : 1 + (r >> 8) % 1024;
}

static void *busy(void *arg)
{
    int me = (int)(intptr_t)arg;
    uint64_t rng = 1000 + me;
    FILE *own = fopen("/dev/null", "w");
    CHECK(own, "fopen(/dev/null) failed");
    struct block local[64] = { { 0 } };
    for (unsigned long it = 0; !atomic_load(&stop); it++) {
        /* Local churn. */
        int k = (int)(rng_next(&rng) % 64);
        if (local[k].p) {
            check_block(&local[k], "busy thread");
            free(local[k].p);
        }
        local[k] = make_block(rng_next(&rng), pick_size(&rng));
        /* Swap with the shared pool, so frees cross threads. */
        int j = (int)(rng_next(&rng) % POOL);
        pthread_mutex_lock(&pool_lock);
        struct block t = pool[j];
        pool[j] = local[k];
        pthread_mutex_unlock(&pool_lock);
        local[k] = t;
        /* stdio, which allocates internally and takes libc's locks. */
        fprintf(shared_out, "thread %d iteration %lu %s\n", me, it, "busy");
        fprintf(own, "%*d\n", (int)(it % 200), me);
        if (it % 64 == 0) {
            FILE *f = fopen("/dev/null", "w");
            CHECK(f, "fopen(/dev/null) failed");
            setvbuf(f, NULL, _IOFBF, 1 + it % 10000);
            fprintf(f, "%lu\n", it);
            fclose(f);
        }
        if (it % 512 == 0)
            fflush(NULL);
    }
    for (int k = 0; k < 64; k++)
        if (local[k].p) {
            check_block(&local[k], "busy thread");
            free(local[k].p);
        }
    fclose(own);
    return NULL;
}

static void *child_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++) {
        struct block b = make_block(i, 1 + i * 7 % 5000);
        check_block(&b, "child thread");
        free(b.p);
    }
    return NULL;
}

/* Waits for a child; kills it if it is still running after `secs`. Returns 0 if it was killed. */
static int wait_or_kill(pid_t pid, int secs, int *status)
{
    struct timespec nap = { 0, 1000000 };
    for (int ms = 0;; ms++) {
        pid_t r = waitpid(pid, status, WNOHANG);
        CHECK(r >= 0, "waitpid failed: %s", strerror(errno));
        if (r == pid)
            return 1;
        if (ms > secs * 1000) {
            kill(pid, SIGKILL);
            waitpid(pid, status, 0);
            return 0;
        }
        nanosleep(&nap, NULL);
    }
}

/* Runs in the child: must not touch anything a busy thread might have held at fork time. */
static void child_work(int round)
{
    for (int i = 0; i < PRE; i++) {
        check_block(&pre[i], "child (pre-fork block)");
        if (i % 2 == round % 2)
            free(pre[i].p);
    }
    uint64_t rng = 555 + round;
    struct block mine[200];
    for (int i = 0; i < 200; i++)
        mine[i] = make_block(i, pick_size(&rng));
    for (int i = 0; i < 200; i++) {
        check_block(&mine[i], "child");
        unsigned char *q = realloc(mine[i].p, mine[i].n * 2 + 1);
        CHECK(q, "realloc in child failed");
        free(q);
    }
    pthread_t t;
    CHECK(pthread_create(&t, NULL, child_thread, NULL) == 0, "pthread_create in child failed");
    pthread_join(t, NULL);
    FILE *f = fopen("/dev/null", "w");
    CHECK(f, "fopen in child failed");
    fprintf(f, "child of round %d says %s\n", round, "hello");
    fclose(f);
    char *s = NULL;
    CHECK(asprintf(&s, "%d %s", round, "child") > 0, "asprintf in child failed");
    free(s);
    if (round % 25 == 0) {
        /* Now and then the child lives a while (long enough for a periodic trim to run in it)
         * and forks a grandchild of its own. */
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        do {
            static struct block churn[2000];
            for (int i = 0; i < 2000; i++)
                churn[i] = make_block(i, 1 + rng_next(&rng) % 4096);
            for (int i = 0; i < 2000; i++) {
                check_block(&churn[i], "long-lived child");
                free(churn[i].p);
            }
            clock_gettime(CLOCK_MONOTONIC, &t1);
        } while ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 300);
        pid_t g = fork();
        CHECK(g >= 0, "fork in child failed: %s", strerror(errno));
        if (g == 0) {
            struct block b = make_block(1, 5000);
            check_block(&b, "grandchild");
            free(b.p);
            exit(0);
        }
        int st;
        CHECK(wait_or_kill(g, 20, &st), "grandchild still running after 20 s: deadlock after a second fork");
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "grandchild failed (status %#x)", st);
    }
    exit(0);   /* exit, not _exit: atexit handlers and stdio teardown run too */
}

/* Forks one child and waits for it, killing it if it hangs. */
static void fork_and_wait(int round, const char *who)
{
    pid_t pid = fork();
    CHECK(pid >= 0, "%s: fork failed: %s", who, strerror(errno));
    if (pid == 0)
        child_work(round);
    int status;
    if (!wait_or_kill(pid, 30, &status))
        FAIL("%s: child of fork #%d still running after 30 s: deadlock in the child", who, round);
    if (WIFSIGNALED(status))
        FAIL("%s: child of fork #%d killed by signal %d (%s)", who, round, WTERMSIG(status), strsignal(WTERMSIG(status)));
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: child of fork #%d exited with %d", who, round,
          WEXITSTATUS(status));
}

static int forks_per_forker;

static void *forker(void *arg)
{
    int me = (int)(intptr_t)arg;
    for (int i = 0; i < forks_per_forker; i++)
        fork_and_wait(me * 1000 + i, "forking thread");
    return NULL;
}

static void *pre_maker(void *arg)
{
    int me = (int)(intptr_t)arg;
    uint64_t rng = 31 + me;
    for (int i = me; i < PRE; i += 2)
        pre[i] = make_block(i, pick_size(&rng));
    return NULL;
}

int main(int argc, char **argv)
{
    int forks = argc > 1 ? atoi(argv[1]) : 100;
    forks_per_forker = forks / 4 > 0 ? forks / 4 : 1;
    shared_out = fopen("/dev/null", "w");
    CHECK(shared_out, "fopen(/dev/null) failed");
    /* Half the pre-fork blocks come from a thread that is gone before the first fork. */
    pthread_t t;
    CHECK(pthread_create(&t, NULL, pre_maker, (void *)(intptr_t)1) == 0, "pthread_create failed");
    pre_maker((void *)(intptr_t)0);
    pthread_join(t, NULL);
    uint64_t rng = 5;
    for (int j = 0; j < POOL; j++)
        pool[j] = make_block(j + 100000, pick_size(&rng));

    pthread_t th[BUSY];
    for (int i = 0; i < BUSY; i++)
        CHECK(pthread_create(&th[i], NULL, busy, (void *)(intptr_t)i) == 0, "pthread_create failed");
    for (int i = 0; i < forks; i++)
        fork_and_wait(i, "main thread");

    /* Several threads fork at the same time while the busy threads go on. */
    pthread_t fk[FORKERS];
    for (int i = 0; i < FORKERS; i++)
        CHECK(pthread_create(&fk[i], NULL, forker, (void *)(intptr_t)(i + 1)) == 0, "pthread_create failed");
    for (int i = 0; i < FORKERS; i++)
        pthread_join(fk[i], NULL);

    atomic_store(&stop, 1);
    for (int i = 0; i < BUSY; i++)
        pthread_join(th[i], NULL);
    for (int j = 0; j < POOL; j++) {
        check_block(&pool[j], "main thread (pool)");
        free(pool[j].p);
    }
    for (int i = 0; i < PRE; i++) {
        check_block(&pre[i], "main thread (pre-fork block)");
        free(pre[i].p);
    }
    fclose(shared_out);
    return 0;
}
