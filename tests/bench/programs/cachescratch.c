/* SPDX-License-Identifier: MIT
 *
 * cachescratch.c -- passive false sharing, after Hoard's cache-scratch.
 *
 *     cachescratch [THREADS [ITERATIONS [WRITES]]]   (defaults 2, 4000, 2000)
 *
 * Main allocates one 8-byte object per thread, one after the other (so they
 * likely share a cache line), and hands one to each thread. A thread frees
 * its object, then ITERATIONS times allocates an 8-byte object, writes it
 * WRITES times and frees it. An allocator that gives a thread back the
 * object it freed, or any slot on a line another thread writes, makes the
 * threads fight over the line; one that serves each thread from its own
 * memory does not.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "report.h"

static long iterations, writes;

typedef struct task {
    char *given;
    uint64_t sum;
} task_t;

static void *worker(void *arg)
{
    task_t *t = arg;
    free(t->given);
    uint64_t sum = 0;
    for (long i = 0; i < iterations; i++) {
        volatile char *p = malloc(8);
        if (!p)
            bench_fail("cachescratch", "memory");
        for (int k = 0; k < 8; k++)
            p[k] = 0;
        for (long w = 0; w < writes; w++)
            p[w & 7] = (char)(p[w & 7] + 1);
        sum += (unsigned char)p[0];
        free((void *)p);
    }
    t->sum = sum;
    return NULL;
}

int main(int argc, char **argv)
{
    long threads = argc > 1 ? atol(argv[1]) : 2;
    iterations = argc > 2 ? atol(argv[2]) : 4000;
    writes = argc > 3 ? atol(argv[3]) : 2000;
    if (threads <= 0 || threads > 64 || iterations <= 0 || writes <= 0) {
        (void)fprintf(stderr, "usage: cachescratch [THREADS (1..64) [ITERATIONS [WRITES]]]\n");
        return 2;
    }
    pthread_t tid[64];
    task_t task[64];
    for (long i = 0; i < threads; i++) {
        task[i].given = malloc(8);
        if (!task[i].given)
            bench_fail("cachescratch", "memory");
        task[i].given[0] = 0;
    }
    for (long i = 0; i < threads; i++)
        if (pthread_create(&tid[i], NULL, worker, &task[i]) != 0)
            bench_fail("cachescratch", "a thread");
    uint64_t check = 0;
    for (long i = 0; i < threads; i++) {
        (void)pthread_join(tid[i], NULL);
        check += task[i].sum;
    }
    bench_report(check);
    return 0;
}
