/* hang: a deliberate deadlock, for the test of the runners' stack saver (tests/save-stacks.sh).
 * Two threads each take one mutex, meet at a barrier, then wait for the other's: neither can go
 * on. Prints "hang: ready" once both hold their first lock; never exits by itself (the runner
 * kills it). The two functions the stacks must show: hang_take_a_then_b, hang_take_b_then_a. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static pthread_mutex_t a = PTHREAD_MUTEX_INITIALIZER, b = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t met;

__attribute__((noinline)) static void *hang_take_a_then_b(void *arg)
{
    pthread_mutex_lock(&a);
    pthread_barrier_wait(&met);
    pthread_mutex_lock(&b);
    return arg;
}

__attribute__((noinline)) static void *hang_take_b_then_a(void *arg)
{
    pthread_mutex_lock(&b);
    pthread_barrier_wait(&met);
    pthread_mutex_lock(&a);
    return arg;
}

int main(void)
{
    pthread_t t1, t2;
    void *block = malloc(100); /* the allocator under test is in the process */
    pthread_barrier_init(&met, NULL, 3);
    if (pthread_create(&t1, NULL, hang_take_a_then_b, block) || pthread_create(&t2, NULL, hang_take_b_then_a, block))
        return 2;
    pthread_barrier_wait(&met);
    printf("hang: ready\n");
    fflush(stdout);
    pthread_join(t1, NULL);
    return 1; /* never reached */
}
