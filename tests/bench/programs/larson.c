/* SPDX-License-Identifier: MIT
 *
 * larson.c -- a larson-style server: threads replace random objects of
 * random sizes, and each thread's objects are freed by other threads.
 *
 *     larson [THREADS [GENERATIONS [OPS [SLOTS]]]]   (defaults 4, 40, 10000, 1000)
 *
 * THREADS lineages run at once. A thread owns an array of SLOTS objects and
 * OPS times frees a random one and puts a new object of 8..1024 bytes in its
 * place. Then it swaps its array with the one parked in a shared slot, starts
 * a successor thread with the array it got and exits; the successor frees
 * objects that threads now gone (of any lineage) allocated, as a server's
 * worker threads free requests another thread received. Each lineage runs
 * GENERATIONS threads; the seed of each thread is fixed by its lineage and
 * generation, so the work is the same in every run (which thread meets which
 * array is up to the scheduler).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

typedef struct task {
    unsigned char **slots;
    long lineage, generation;
} task_t;

static long n_slots, n_ops, n_generations;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t all_done = PTHREAD_COND_INITIALIZER;
static unsigned char **parked; /* under lock */
static long lineages_left;     /* under lock */
static uint64_t checksum;      /* under lock */
static int failed;             /* under lock */

static void *worker(void *arg)
{
    task_t *t = arg;
    uint64_t seed = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)t->lineage << 32) ^ (uint64_t)t->generation;
    uint64_t sum = 0;
    for (long i = 0; i < n_ops; i++) {
        size_t k = (size_t)(bench_rand(&seed) % (uint64_t)n_slots);
        size_t size = 8 + (size_t)(bench_rand(&seed) % 1017);
        if (t->slots[k])
            sum += t->slots[k][0];
        free(t->slots[k]);
        t->slots[k] = malloc(size);
        if (!t->slots[k])
            bench_fail("larson", "memory");
        t->slots[k][0] = (unsigned char)size;
        t->slots[k][size - 1] = (unsigned char)i;
    }
    pthread_mutex_lock(&lock);
    checksum += sum;
    unsigned char **mine = t->slots;
    t->slots = parked;
    parked = mine;
    t->generation++;
    bool last = t->generation >= n_generations;
    pthread_t next;
    pthread_attr_t attr;
    if (!last) {
        (void)pthread_attr_init(&attr);
        (void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&next, &attr, worker, t) != 0) {
            failed = 1;
            last = true;
        }
        (void)pthread_attr_destroy(&attr);
    }
    if (last) {
        /* The lineage ends: its array goes back to main through the table. */
        unsigned char **spare = t->slots;
        t->slots = NULL;
        for (long k = 0; k < n_slots; k++)
            free(spare[k]);
        free(spare);
        if (--lineages_left == 0)
            pthread_cond_signal(&all_done);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

static unsigned char **slots_new(void)
{
    return calloc((size_t)n_slots, sizeof(unsigned char *));
}

int main(int argc, char **argv)
{
    long threads = argc > 1 ? atol(argv[1]) : 4;
    n_generations = argc > 2 ? atol(argv[2]) : 40;
    n_ops = argc > 3 ? atol(argv[3]) : 10000;
    n_slots = argc > 4 ? atol(argv[4]) : 1000;
    if (threads <= 0 || threads > 256 || n_generations <= 0 || n_ops <= 0 || n_slots <= 0) {
        (void)fprintf(stderr, "usage: larson [THREADS (1..256) [GENERATIONS [OPS [SLOTS]]]]\n");
        return 2;
    }
    static task_t tasks[256];
    parked = slots_new();
    if (!parked)
        bench_fail("larson", "memory");
    lineages_left = threads;
    pthread_mutex_lock(&lock);
    for (long i = 0; i < threads; i++) {
        tasks[i] = (task_t){slots_new(), i, 0};
        pthread_t tid;
        pthread_attr_t attr;
        (void)pthread_attr_init(&attr);
        (void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (!tasks[i].slots || pthread_create(&tid, &attr, worker, &tasks[i]) != 0)
            bench_fail("larson", "a first thread");
        (void)pthread_attr_destroy(&attr);
    }
    while (lineages_left > 0)
        pthread_cond_wait(&all_done, &lock);
    uint64_t check = checksum;
    int bad = failed;
    pthread_mutex_unlock(&lock);
    if (bad)
        bench_fail("larson", "a successor thread");
    bench_report(check);
    for (long k = 0; k < n_slots; k++)
        free(parked[k]);
    free(parked);
    return 0;
}
