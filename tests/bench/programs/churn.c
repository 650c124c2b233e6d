/* SPDX-License-Identifier: MIT
 *
 * churn.c -- thread churn: short threads, one small object each.
 *
 *     churn [THREADS_TOTAL [AT_A_TIME]]     (defaults 50000 and 10)
 *
 * Threads run AT_A_TIME at a time (a wave is started, then joined) until
 * THREADS_TOTAL have run. Each allocates one small object, swaps it into a
 * shared table with an atomic exchange, frees what it found there (an object
 * some other, usually exited, thread allocated) and exits. What an allocator
 * pays here is a thread's first allocation and its exit: a per-thread heap
 * set up and torn down 50,000 times, and frees of memory whose owner is gone.
 * The table is freed by main at the end.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

#define TABLE 64

static _Atomic(uint64_t *) table[TABLE];
static atomic_uint_fast64_t checksum;

static void *worker(void *arg)
{
    uint64_t id = (uint64_t)(uintptr_t)arg;
    size_t size = 16 + (size_t)(id % 7) * 16;
    uint64_t *obj = malloc(size);
    if (!obj)
        return NULL;
    memset(obj, 0, size);
    obj[0] = id;
    uint64_t *old = atomic_exchange(&table[id % TABLE], obj);
    if (old) {
        atomic_fetch_add(&checksum, old[0]);
        free(old);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    long total = argc > 1 ? atol(argv[1]) : 50000;
    long wave = argc > 2 ? atol(argv[2]) : 10;
    if (total <= 0 || wave <= 0 || wave > 1000) {
        (void)fprintf(stderr, "usage: churn [THREADS_TOTAL [AT_A_TIME (1..1000)]]\n");
        return 2;
    }
    pthread_t tid[1000];
    for (long started = 0; started < total;) {
        long n = total - started < wave ? total - started : wave;
        for (long i = 0; i < n; i++) {
            if (pthread_create(&tid[i], NULL, worker, (void *)(uintptr_t)(started + i)) != 0)
                bench_fail("churn", "a thread");
        }
        for (long i = 0; i < n; i++)
            (void)pthread_join(tid[i], NULL);
        started += n;
    }
    bench_report(atomic_load(&checksum));
    for (int i = 0; i < TABLE; i++)
        free(atomic_exchange(&table[i], NULL));
    return 0;
}
