/* SPDX-License-Identifier: MIT
 *
 * bench_stats.h -- the clock and the percentiles the latency benchmarks
 * share: a monotonic microsecond clock, sorting samples, and the sample at
 * a fraction of a sorted run (nearest rank). Header-only: each benchmark is
 * one program.
 */
#ifndef ARENA_BENCH_STATS_H
#define ARENA_BENCH_STATS_H

#include <stddef.h>
#include <stdlib.h>
#include <time.h>

static inline double bench_now_us(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts n samples in place, ascending. */
static inline void bench_sort(double *samples, size_t n)
{
    qsort(samples, n, sizeof(double), bench_cmp_double);
}

/* The sample at fraction p (0..1) of n > 0 sorted samples. */
static inline double bench_pct(const double *sorted, size_t n, double p)
{
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return sorted[i < n ? i : n - 1];
}

#endif
