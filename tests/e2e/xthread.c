/* Threads freeing each other's blocks: a ring of threads passes filled blocks through locked
 * queues; the receiver checks the contents, then frees, reallocs or forwards each block. A second
 * phase frees blocks whose allocating threads have already exited; a third frees a producer's
 * blocks while it exits.  Usage: xthread [messages] */
#include "e2e.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>

enum { T = 8, BATCH = 32, MAX_HOPS = 3 };

struct msg {
    struct msg *next;
    uint64_t tag;     /* pattern of data[] */
    size_t size;      /* bytes of data[] */
    int hops;         /* times forwarded */
    int aligned;      /* allocated with posix_memalign */
    unsigned char data[];
};

struct queue {
    pthread_mutex_t lock;
    struct msg *head;
};

static struct queue queues[T];
static long per_thread;
static atomic_long freed;

static void push_list(int to, struct msg *first, struct msg *last)
{
    pthread_mutex_lock(&queues[to].lock);
    last->next = queues[to].head;
    queues[to].head = first;
    pthread_mutex_unlock(&queues[to].lock);
}

static struct msg *take_all(int me)
{
    pthread_mutex_lock(&queues[me].lock);
    struct msg *m = queues[me].head;
    queues[me].head = NULL;
    pthread_mutex_unlock(&queues[me].lock);
    return m;
}

static size_t pick_size(uint64_t *rng)
{
    uint64_t r = rng_next(rng);
    if (r % 64 == 0)
        return 1 + (r >> 8) % (256 * 1024);      /* now and then up to 256 KB */
    if (r % 8 == 1)
        return 1 + (r >> 8) % 8192;
    return (r >> 8) % 512;
}

static struct msg *make_msg(uint64_t tag, uint64_t *rng)
{
    size_t n = pick_size(rng);
    struct msg *m;
    int aligned = rng_next(rng) % 8 == 0;
    if (aligned) {
        size_t align = (size_t)64 << (rng_next(rng) % 7);
        CHECK(posix_memalign((void **)&m, align, sizeof *m + n) == 0, "posix_memalign(%zu) failed", align);
        CHECK((uintptr_t)m % align == 0, "posix_memalign(%zu) gave %p", align, (void *)m);
    } else {
        m = malloc(sizeof *m + n);
        CHECK(m, "malloc(%zu) returned NULL", sizeof *m + n);
    }
    m->tag = tag;
    m->size = n;
    m->hops = 0;
    m->aligned = aligned;
    pat_fill(m->data, n, tag);
    return m;
}

static void verify(const struct msg *m, int me)
{
    size_t bad = pat_check(m->data, m->size, m->tag);
    if (bad != (size_t)-1)
        FAIL("thread %d: block %p (tag %llu, %zu bytes, %d hops) corrupted at offset %zu",
             me, (const void *)m, (unsigned long long)m->tag, m->size, m->hops, bad);
    CHECK(malloc_usable_size((void *)m) >= sizeof *m + m->size, "thread %d: foreign block's usable size shrank", me);
}

static void *ring_thread(void *arg)
{
    int me = (int)(intptr_t)arg, next = (me + 1) % T;
    uint64_t rng = 0x1234567ull * (me + 1);
    long made = 0;
    struct msg *out_first = NULL, *out_last = NULL;
    int out_n = 0;
    while (atomic_load(&freed) < per_thread * T) {
        /* Produce a batch for the next thread. */
        for (int i = 0; i < BATCH && made < per_thread; i++, made++) {
            struct msg *m = make_msg(((uint64_t)me << 40) | (uint64_t)made, &rng);
            m->next = out_first;
            out_first = m;
            if (!out_last)
                out_last = m;
            out_n++;
        }
        /* Consume what others sent: check, then free, realloc+free, or forward. */
        for (struct msg *m = take_all(me), *nx; m; m = nx) {
            nx = m->next;
            verify(m, me);
            uint64_t r = rng_next(&rng) % 10;
            if (r < 2 && m->hops < MAX_HOPS) {
                m->hops++;
                m->next = out_first;
                out_first = m;
                if (!out_last)
                    out_last = m;
                out_n++;
                continue;
            }
            if (r < 4 && !m->aligned) {
                /* realloc of a block allocated by another thread. */
                size_t n2 = pick_size(&rng), keep = n2 < m->size ? n2 : m->size;
                struct msg *m2 = realloc(m, sizeof *m2 + n2);
                CHECK(m2, "realloc of foreign block to %zu failed", n2);
                size_t bad = pat_check(m2->data, keep, m2->tag);
                CHECK(bad == (size_t)-1, "realloc of foreign block lost contents at offset %zu", bad);
                m = m2;
            }
            free(m);
            atomic_fetch_add(&freed, 1);
        }
        if (out_n) {
            push_list(next, out_first, out_last);
            out_first = out_last = NULL;
            out_n = 0;
        } else if (made == per_thread) {
            sched_yield();
        }
    }
    return NULL;
}

/* Phase 2: blocks outlive the threads that allocated them and are freed by other threads. */
enum { ORPHANS = 20000 };
static struct msg *orphans[T][ORPHANS];

static void *orphan_maker(void *arg)
{
    int me = (int)(intptr_t)arg;
    uint64_t rng = 99 + me;
    for (int i = 0; i < ORPHANS; i++)
        orphans[me][i] = make_msg(((uint64_t)me << 32) | (uint64_t)i, &rng);
    /* Free some of our own on the way out, so slabs are partly used. */
    for (int i = 0; i < ORPHANS; i += 3) {
        free(orphans[me][i]);
        orphans[me][i] = NULL;
    }
    return NULL;
}

static void *orphan_freer(void *arg)
{
    int me = (int)(intptr_t)arg, victim = (me + 3) % T;
    for (int i = 0; i < ORPHANS; i++)
        if (orphans[victim][i]) {
            verify(orphans[victim][i], me);
            free(orphans[victim][i]);
        }
    /* Reuse the space that was just freed and check it is really ours. */
    uint64_t rng = 7 + me;
    for (int i = 0; i < ORPHANS; i++)
        orphans[victim][i] = make_msg(i, &rng);
    for (int i = 0; i < ORPHANS; i++) {
        verify(orphans[victim][i], me);
        free(orphans[victim][i]);
    }
    return NULL;
}

/* Phase 3: a producer hands blocks over in batches and exits right after the last one, while
 * two consumers are still freeing its blocks: thread exit races with remote frees. Some blocks
 * have large alignments. */
enum { RACE_ROUNDS = 20, RACE_BLOCKS = 20000 };
static struct queue race_q;
static atomic_int race_done;

static void *race_producer(void *arg)
{
    uint64_t rng = 4242 + (uintptr_t)arg;
    struct msg *first = NULL, *last = NULL;
    for (int i = 0; i < RACE_BLOCKS; i++) {
        struct msg *m;
        if (i % 1000 == 999) {
            /* Now and then a big alignment, which large-block paths must handle across threads. */
            size_t align = (size_t)1 << (16 + i / 1000 % 6);
            m = aligned_alloc(align, align);
            CHECK(m && (uintptr_t)m % align == 0, "aligned_alloc(%zu) failed or misaligned", align);
            m->tag = i;
            m->size = 64;
            m->hops = 0;
            m->aligned = 1;
            pat_fill(m->data, 64, i);
        } else {
            m = make_msg(i, &rng);
        }
        m->next = first;
        first = m;
        if (!last)
            last = m;
        if (i % 64 == 63 || i == RACE_BLOCKS - 1) {
            pthread_mutex_lock(&race_q.lock);
            last->next = race_q.head;
            race_q.head = first;
            pthread_mutex_unlock(&race_q.lock);
            first = last = NULL;
        }
    }
    atomic_store(&race_done, 1);
    return NULL;   /* exits with most of its blocks still queued or being freed */
}

static void *race_consumer(void *arg)
{
    int me = (int)(intptr_t)arg;
    for (;;) {
        int done = atomic_load(&race_done);
        pthread_mutex_lock(&race_q.lock);
        struct msg *m = race_q.head;
        /* Take a few at a time so both consumers free while the producer exits. */
        struct msg *tail = m;
        for (int k = 0; tail && k < 31; k++)
            tail = tail->next;
        race_q.head = tail ? tail->next : NULL;
        if (tail)
            tail->next = NULL;
        pthread_mutex_unlock(&race_q.lock);
        if (!m) {
            if (done)
                return NULL;
            sched_yield();
            continue;
        }
        for (struct msg *nx; m; m = nx) {
            nx = m->next;
            verify(m, me);
            free(m);
            atomic_fetch_add(&freed, 1);
        }
    }
}

int main(int argc, char **argv)
{
    per_thread = argc > 1 ? atol(argv[1]) : 50000;
    pthread_t th[T];
    for (int i = 0; i < T; i++)
        pthread_mutex_init(&queues[i].lock, NULL);
    for (int i = 0; i < T; i++)
        CHECK(pthread_create(&th[i], NULL, ring_thread, (void *)(intptr_t)i) == 0, "pthread_create failed");
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    CHECK(atomic_load(&freed) == per_thread * T, "freed %ld of %ld blocks", atomic_load(&freed), per_thread * T);
    for (int i = 0; i < T; i++)
        CHECK(queues[i].head == NULL, "queue %d not empty at the end", i);

    for (int i = 0; i < T; i++)
        CHECK(pthread_create(&th[i], NULL, orphan_maker, (void *)(intptr_t)i) == 0, "pthread_create failed");
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < T; i++)
        CHECK(pthread_create(&th[i], NULL, orphan_freer, (void *)(intptr_t)i) == 0, "pthread_create failed");
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);

    pthread_mutex_init(&race_q.lock, NULL);
    for (int r = 0; r < RACE_ROUNDS; r++) {
        atomic_store(&freed, 0);
        atomic_store(&race_done, 0);
        pthread_t p, c[2];
        CHECK(pthread_create(&c[0], NULL, race_consumer, (void *)(intptr_t)100) == 0, "pthread_create failed");
        CHECK(pthread_create(&c[1], NULL, race_consumer, (void *)(intptr_t)101) == 0, "pthread_create failed");
        CHECK(pthread_create(&p, NULL, race_producer, (void *)(intptr_t)r) == 0, "pthread_create failed");
        pthread_join(p, NULL);
        pthread_join(c[0], NULL);
        pthread_join(c[1], NULL);
        CHECK(atomic_load(&freed) == RACE_BLOCKS, "round %d: %ld of %d blocks freed", r, atomic_load(&freed), RACE_BLOCKS);
    }
    return 0;
}
