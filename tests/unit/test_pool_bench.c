/* SPDX-License-Identifier: MIT
 *
 * test_pool_bench.c -- bench-pool-fastpath: ns per malloc+free pair of the
 * pools' fast path next to the C library's, on fallback memory (no daemon
 * needed; the fast path never talks to one). A program, not a test: it prints
 * a table and a RESULT line, and asserts nothing about time.
 *
 *   build/bin/bench-pool-fastpath [iterations]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "arena.h"

static double now_ns(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

typedef void *(*malloc_fn)(size_t);
typedef void (*free_fn)(void *);

static void *volatile sink;

/* Pairs: malloc then free at once, sizes cycling 16 .. 1024. */
static double bench_pairs(malloc_fn m, free_fn f, unsigned long iters)
{
    double t0 = now_ns();
    for (unsigned long i = 0; i < iters; i++) {
        void *p = m(16 + (i & 63) * 16);
        sink = p;
        f(p);
    }
    return (now_ns() - t0) / (double)iters;
}

/* Batches: 256 live objects of mixed sizes, then free them all. */
static double bench_batch(malloc_fn m, free_fn f, unsigned long iters)
{
    void *ptrs[256];
    unsigned long rounds = iters / 256;
    double t0 = now_ns();
    for (unsigned long r = 0; r < rounds; r++) {
        for (unsigned i = 0; i < 256; i++) {
            ptrs[i] = m(16 + ((i * 37u + r) & 63) * 16);
        }
        sink = ptrs[r & 255];
        for (unsigned i = 0; i < 256; i++) {
            f(ptrs[i]);
        }
    }
    return (now_ns() - t0) / (double)(rounds * 256);
}

int main(int argc, char **argv)
{
    unsigned long iters = argc > 1 ? strtoul(argv[1], NULL, 10) : 20000000ul;
    (void)setenv("ARENA_FALLBACK", "1", 0);
    /* Warm both up. */
    (void)bench_pairs(arena_malloc, arena_free, 100000);
    (void)bench_pairs(malloc, free, 100000);
    double ap = bench_pairs(arena_malloc, arena_free, iters);
    double gp = bench_pairs(malloc, free, iters);
    double ab = bench_batch(arena_malloc, arena_free, iters);
    double gb = bench_batch(malloc, free, iters);
    printf("%-28s %12s %12s\n", "ns per malloc+free", "arena", "glibc");
    printf("%-28s %12.2f %12.2f\n", "pair, 16..1024 B", ap, gp);
    printf("%-28s %12.2f %12.2f\n", "batch of 256, 16..1024 B", ab, gb);
    printf("RESULT arena_pair_ns=%.2f glibc_pair_ns=%.2f arena_batch_ns=%.2f glibc_batch_ns=%.2f\n",
           ap, gp, ab, gb);
    return 0;
}
