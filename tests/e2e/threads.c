/* Thousands of short-lived threads, up to WAVE at a time plus detached ones, each leaving live
 * blocks behind for the main thread (or a later thread) to check and free; thread-exit hooks
 * (pthread key destructors over several rounds, __cxa_thread_atexit_impl as C++ thread_local
 * destructors use) that call malloc/free after the allocator's own thread cleanup may have run.
 * Usage: threads [nthreads] */
#include "e2e.h"

#include <pthread.h>
#include <stdatomic.h>

enum { WAVE = 32, KEEP = 8, MADE = 24 };

struct block { uint64_t tag; size_t n; unsigned char *p; };

struct slot {
    struct block left[KEEP];   /* blocks the thread leaves alive */
    atomic_int state;          /* 0 running, 1 published, 2 claimed by a later thread */
    struct block dtor[3];      /* blocks allocated by its exit hooks */
    atomic_int dtor_done;      /* exit hooks that ran */
};

static struct slot *slots;
static int nthreads;
static pthread_key_t key_early, key_late;
static atomic_int detached_running;
static _Thread_local struct { unsigned char *buf; int id; } tls;

extern int __cxa_thread_atexit_impl(void (*dtor)(void *), void *obj, void *dso);
extern void *__dso_handle;

static size_t pick_size(uint64_t *rng)
{
    uint64_t r = rng_next(rng);
    if (r % 50 == 0)
        return 1 + (r >> 8) % (200 * 1024);
    return 1 + (r >> 8) % 3000;
}

static struct block make_block(uint64_t tag, uint64_t *rng)
{
    struct block b = { tag, pick_size(rng), NULL };
    b.p = malloc(b.n);
    CHECK(b.p, "malloc(%zu) returned NULL", b.n);
    pat_fill(b.p, b.n, tag);
    return b;
}

static void check_free(struct block *b, const char *who)
{
    size_t bad = pat_check(b->p, b->n, b->tag);
    if (bad != (size_t)-1)
        FAIL("%s: block tag %#llx (%zu bytes) corrupted at offset %zu", who, (unsigned long long)b->tag, b->n, bad);
    free(b->p);
    b->p = NULL;
}

/* pthread key destructors: allocate in every round; ask for a second round once. */
static void key_dtor(void *v)
{
    intptr_t id = (intptr_t)v - 1, round = id >> 32;
    id &= 0xffffffff;
    uint64_t rng = 77 + id;
    struct block scratch = make_block(0xd0000000 + id, &rng);
    check_free(&scratch, "key destructor");
    if (round == 0) {
        /* Setting a value again makes glibc run the destructors another round. */
        pthread_setspecific(key_late, (void *)(((intptr_t)1 << 32 | id) + 1));
        return;
    }
    /* Second round: leave a block for main, and free the thread-local buffer. */
    struct slot *s = &slots[id];
    s->dtor[0] = make_block(0xe0000000 + id, &rng);
    if (tls.buf) {
        size_t bad = pat_check(tls.buf, 100, tls.id);
        CHECK(bad == (size_t)-1, "thread-local buffer corrupted at exit");
        free(tls.buf);
        tls.buf = NULL;
    }
    atomic_fetch_add(&s->dtor_done, 1);
}

static void key_early_dtor(void *v)
{
    intptr_t id = (intptr_t)v - 1;
    uint64_t rng = 55 + id;
    slots[id].dtor[1] = make_block(0xf0000000 + id, &rng);
    atomic_fetch_add(&slots[id].dtor_done, 1);
}

/* What a C++ thread_local destructor does, registered the same way. */
static void tls_dtor(void *obj)
{
    int id = *(int *)obj;
    uint64_t rng = 33 + id;
    unsigned char *tmp = realloc(NULL, 500);
    CHECK(tmp, "malloc in thread_local destructor failed");
    tmp = realloc(tmp, 5000);
    CHECK(tmp, "realloc in thread_local destructor failed");
    free(tmp);
    slots[id].dtor[2] = make_block(0xc0000000 + id, &rng);
    atomic_fetch_add(&slots[id].dtor_done, 1);
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    struct slot *s = &slots[id];
    uint64_t rng = 0x9999ull + id;
    tls.id = id;
    CHECK(__cxa_thread_atexit_impl(tls_dtor, &tls.id, &__dso_handle) == 0, "__cxa_thread_atexit_impl failed");
    pthread_setspecific(key_early, (void *)((intptr_t)id + 1));
    pthread_setspecific(key_late, (void *)((intptr_t)id + 1));
    tls.buf = malloc(100);
    CHECK(tls.buf, "malloc(100) failed");
    pat_fill(tls.buf, 100, id);

    struct block mine[MADE];
    for (int k = 0; k < MADE; k++)
        mine[k] = make_block((uint64_t)id << 8 | (uint64_t)k, &rng);
    for (int k = KEEP; k < MADE; k++)
        check_free(&mine[k], "own block");
    memcpy(s->left, mine, sizeof s->left);

    /* Free what an earlier, finished thread left behind (if nobody took it yet). */
    if (id % 3 == 0 && id >= 2 * WAVE) {
        struct slot *old = &slots[id - 2 * WAVE];
        int expect = 1;
        if (atomic_compare_exchange_strong(&old->state, &expect, 2))
            for (int k = 0; k < KEEP; k++)
                check_free(&old->left[k], "earlier thread's block");
    }
    atomic_store(&s->state, 1);
    return NULL;
}

static void *detached_worker(void *arg)
{
    void *r = worker(arg);
    atomic_fetch_sub(&detached_running, 1);
    return r;
}

__attribute__((constructor))
static void make_early_key(void)
{
    /* Created before main: its destructor may run before or after the allocator's. */
    CHECK(pthread_key_create(&key_early, key_early_dtor) == 0, "pthread_key_create failed");
}

int main(int argc, char **argv)
{
    nthreads = argc > 1 ? atoi(argv[1]) : 5000;
    slots = calloc(nthreads, sizeof *slots);
    CHECK(slots, "calloc of slots failed");
    CHECK(pthread_key_create(&key_late, key_dtor) == 0, "pthread_key_create failed");
    pthread_attr_t det;
    pthread_attr_init(&det);
    pthread_attr_setdetachstate(&det, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&det, 256 * 1024);

    for (int base = 0; base < nthreads; base += WAVE) {
        pthread_t th[WAVE];
        int joinable[WAVE] = { 0 };
        for (int j = 0; j < WAVE && base + j < nthreads; j++) {
            int id = base + j;
            if (id % 8 == 7) {
                atomic_fetch_add(&detached_running, 1);
                pthread_t t;
                int rc = pthread_create(&t, &det, detached_worker, (void *)(intptr_t)id);
                CHECK(rc == 0, "pthread_create (detached) #%d failed: %s", id, strerror(rc));
            } else {
                int rc = pthread_create(&th[j], NULL, worker, (void *)(intptr_t)id);
                CHECK(rc == 0, "pthread_create #%d failed: %s", id, strerror(rc));
                joinable[j] = 1;
            }
        }
        for (int j = 0; j < WAVE; j++)
            if (joinable[j])
                pthread_join(th[j], NULL);
    }
    /* Detached threads finish their exit hooks after they decrement the counter: wait for both. */
    while (atomic_load(&detached_running) > 0)
        usleep(1000);
    for (int id = 0, waited = 0; id < nthreads; id++)
        while (atomic_load(&slots[id].dtor_done) < 3 || atomic_load(&slots[id].state) == 0) {
            CHECK(++waited < 30000, "thread %d: exit hooks ran %d of 3 times after 30 s", id,
                  atomic_load(&slots[id].dtor_done));
            usleep(1000);
        }

    int claimed = 0;
    for (int id = 0; id < nthreads; id++) {
        struct slot *s = &slots[id];
        if (atomic_load(&s->state) == 1)
            for (int k = 0; k < KEEP; k++)
                check_free(&s->left[k], "main thread");
        else
            claimed++;
        for (int k = 0; k < 3; k++)
            check_free(&s->dtor[k], "exit-hook block");
    }
    CHECK(nthreads < 3 * 2 * WAVE || claimed > 0, "no thread freed an earlier thread's blocks");
    free(slots);
    pthread_attr_destroy(&det);
    return 0;
}
