/* thread_exit: producer threads allocate blocks, hand them to consumer threads and exit at once,
 * while the consumers are still freeing them (half the blocks are freed while their producer is
 * running or exiting, the other half only after it has been joined). Contents are checked before
 * every free. Afterwards the program allocates again, reusing what the dead threads left.
 *   thread_exit [ROUNDS]     default 40 */
#include "rel.h"

#include <pthread.h>
#include <stdatomic.h>

#define PRODUCERS 4
#define CONSUMERS 3
#define PER_PRODUCER 3000

struct item {
	void *p;
	size_t n;
	unsigned seed;
};

/* A bounded queue under one lock: simple, and the allocator is what is tested. */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct item *v;
	size_t head, tail, cap;
	int closed;
} q = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, 0, 0, 0};

static void put(struct item it)
{
	pthread_mutex_lock(&q.mu);
	REL_CHECK(q.tail - q.head < q.cap, "queue overflow");
	q.v[q.tail++ % q.cap] = it;
	pthread_cond_signal(&q.cv);
	pthread_mutex_unlock(&q.mu);
}

static int get(struct item *it)
{
	pthread_mutex_lock(&q.mu);
	while (q.head == q.tail && !q.closed)
		pthread_cond_wait(&q.cv, &q.mu);
	int ok = q.head != q.tail;
	if (ok)
		*it = q.v[q.head++ % q.cap];
	pthread_mutex_unlock(&q.mu);
	return ok;
}

static struct item *later[PRODUCERS]; /* blocks freed only after their producer was joined */
static atomic_ulong freed;

static size_t size_of(unsigned seed)
{
	if (seed % 97 == 0)
		return 200000 + seed % 5000; /* large */
	return seed % 1500 + 1;
}

static void *producer(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg, seed = id * 7919u + 1;
	for (int i = 0; i < PER_PRODUCER; i++) {
		seed = seed * 1103515245 + 12345;
		struct item it = {NULL, size_of(seed >> 8), seed};
		it.p = malloc(it.n);
		REL_CHECK(it.p, "producer: malloc(%zu) failed", it.n);
		rel_fill(it.p, it.n < 256 ? it.n : 256, it.seed);
		if (i % 2)
			put(it);
		else
			later[id][i / 2] = it;
	}
	return NULL; /* exits with its cache full and its slabs partly used */
}

static void *consumer(void *arg)
{
	(void)arg;
	struct item it;
	while (get(&it)) {
		REL_CHECK(rel_intact(it.p, it.n < 256 ? it.n : 256, it.seed), "a block changed before its free");
		free(it.p);
		atomic_fetch_add(&freed, 1);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 40;
	q.cap = PRODUCERS * PER_PRODUCER;
	q.v = malloc(q.cap * sizeof *q.v);
	REL_CHECK(q.v, "malloc failed");
	for (int i = 0; i < PRODUCERS; i++)
		REL_CHECK((later[i] = malloc(PER_PRODUCER / 2 * sizeof **later)) != NULL, "malloc failed");
	for (int r = 0; r < rounds; r++) {
		pthread_t p[PRODUCERS], c[CONSUMERS];
		q.closed = 0;
		for (int i = 0; i < CONSUMERS; i++)
			REL_CHECK(pthread_create(&c[i], NULL, consumer, NULL) == 0, "pthread_create failed");
		for (int i = 0; i < PRODUCERS; i++)
			REL_CHECK(pthread_create(&p[i], NULL, producer, (void *)(uintptr_t)i) == 0, "pthread_create failed");
		for (int i = 0; i < PRODUCERS; i++)
			pthread_join(p[i], NULL);
		/* Every producer is gone: free what they left, here and on the consumers. */
		for (int i = 0; i < PRODUCERS; i++)
			for (int k = 0; k < PER_PRODUCER / 2; k++) {
				struct item it = later[i][k];
				if (k % 2) {
					put(it);
				} else {
					REL_CHECK(rel_intact(it.p, it.n < 256 ? it.n : 256, it.seed),
						  "a block of a dead thread changed");
					free(it.p);
					atomic_fetch_add(&freed, 1);
				}
			}
		pthread_mutex_lock(&q.mu);
		q.closed = 1;
		pthread_cond_broadcast(&q.cv);
		pthread_mutex_unlock(&q.mu);
		for (int i = 0; i < CONSUMERS; i++)
			pthread_join(c[i], NULL);
	}
	unsigned long want = (unsigned long)rounds * PRODUCERS * PER_PRODUCER;
	REL_CHECK(atomic_load(&freed) == want, "freed %lu blocks, want %lu", atomic_load(&freed), want);
	/* What the dead threads left is usable again. */
	static void *v[200000];
	for (int i = 0; i < 200000; i++) {
		v[i] = malloc((size_t)(i % 1500) + 1);
		REL_CHECK(v[i], "malloc after the rounds failed");
		rel_fill(v[i], 1, 0);
	}
	for (int i = 0; i < 200000; i++)
		free(v[i]);
	for (int i = 0; i < PRODUCERS; i++)
		free(later[i]);
	free(q.v);
	printf("thread_exit: %d rounds, %lu blocks freed by other threads while or after their producer exited: ok\n",
	       rounds, want);
	return 0;
}
