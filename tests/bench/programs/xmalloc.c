/* SPDX-License-Identifier: MIT
 *
 * xmalloc.c -- cross-thread producer/consumer, after xmalloc-test.
 *
 *     xmalloc [OBJECTS [PRODUCERS [CONSUMERS]]]   (defaults 4000000, 2, 2)
 *
 * Producers allocate objects of 8..512 bytes, write them, and hand them over
 * in batches of 256 through a bounded mutex/condvar queue; consumers read and
 * free them. Every object is freed by a thread other than the one that
 * allocated it, so the allocator's remote-free path and its return of memory
 * to the producing thread are what is measured; the queue's lock is taken
 * once per batch, not per object.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

#define BATCH 256
#define QUEUE 64 /* batches in flight at most */

typedef struct batch {
    void *obj[BATCH];
    int n;
} batch_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;
static batch_t *queue[QUEUE]; /* a ring, under lock */
static int head, count;       /* under lock */
static int producers_left;    /* under lock */
static uint64_t checksum;     /* under lock */
static long per_producer;

static void put(batch_t *b)
{
    pthread_mutex_lock(&lock);
    while (count == QUEUE)
        pthread_cond_wait(&not_full, &lock);
    queue[(head + count) % QUEUE] = b;
    count++;
    pthread_cond_signal(&not_empty);
    pthread_mutex_unlock(&lock);
}

/* Returns the next batch, or NULL when every producer is done and the queue
 * is empty. */
static batch_t *take(void)
{
    pthread_mutex_lock(&lock);
    while (count == 0 && producers_left > 0)
        pthread_cond_wait(&not_empty, &lock);
    batch_t *b = NULL;
    if (count > 0) {
        b = queue[head];
        head = (head + 1) % QUEUE;
        count--;
        pthread_cond_signal(&not_full);
    }
    pthread_mutex_unlock(&lock);
    return b;
}

static void *producer(void *arg)
{
    uint64_t seed = 0x9E3779B97F4A7C15ULL ^ (uint64_t)(uintptr_t)arg;
    for (long done = 0; done < per_producer;) {
        batch_t *b = malloc(sizeof(*b));
        if (!b)
            bench_fail("xmalloc", "memory");
        b->n = 0;
        while (b->n < BATCH && done < per_producer) {
            size_t size = 8 + (size_t)(bench_rand(&seed) % 505);
            unsigned char *p = malloc(size);
            if (!p)
                bench_fail("xmalloc", "memory");
            p[0] = (unsigned char)size;
            p[size - 1] = 1;
            b->obj[b->n++] = p;
            done++;
        }
        put(b);
    }
    pthread_mutex_lock(&lock);
    if (--producers_left == 0)
        pthread_cond_broadcast(&not_empty);
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    uint64_t sum = 0;
    batch_t *b;
    while ((b = take()) != NULL) {
        for (int i = 0; i < b->n; i++) {
            unsigned char *p = b->obj[i];
            sum += p[0];
            free(p);
        }
        free(b);
    }
    pthread_mutex_lock(&lock);
    checksum += sum;
    pthread_mutex_unlock(&lock);
    return NULL;
}

int main(int argc, char **argv)
{
    long objects = argc > 1 ? atol(argv[1]) : 4000000;
    long np = argc > 2 ? atol(argv[2]) : 2;
    long nc = argc > 3 ? atol(argv[3]) : 2;
    if (objects <= 0 || np <= 0 || np > 64 || nc <= 0 || nc > 64) {
        (void)fprintf(stderr, "usage: xmalloc [OBJECTS [PRODUCERS (1..64) [CONSUMERS (1..64)]]]\n");
        return 2;
    }
    per_producer = objects / np;
    producers_left = (int)np;
    pthread_t tid[128];
    long n = 0;
    for (long i = 0; i < nc; i++, n++)
        if (pthread_create(&tid[n], NULL, consumer, NULL) != 0)
            bench_fail("xmalloc", "a thread");
    for (long i = 0; i < np; i++, n++)
        if (pthread_create(&tid[n], NULL, producer, (void *)(uintptr_t)(i + 1)) != 0)
            bench_fail("xmalloc", "a thread");
    for (long i = 0; i < n; i++)
        (void)pthread_join(tid[i], NULL);
    bench_report(checksum);
    return 0;
}
