/* SPDX-License-Identifier: MIT
 *
 * bench_extent.c -- cost and fragmentation of the extent allocator.
 *
 * Part 1: release+allocate pairs with 1e3 .. 1e6 live extents (and about as
 * many free ones), accounting only (no memfd), so the figure is the indexes'
 * cost alone. Logarithmic growth shows as a small constant step per decade.
 *
 * Part 2: one long seeded workload -- long-lived arena-sized leases mixed with
 * short-lived large arrays, holding the heap around 75% full -- replayed on
 * four allocators: ours (segregated: small leases from the top, large from
 * the bottom, coalescing), ours with plain best fit, first fit with
 * coalescing but no segregation, and a bump pointer that never
 * reuses (the fixed-heap behaviour in shared/seeds). Printed: external
 * fragmentation (1 - largest free / total free) at the end and how many
 * requests failed although the heap had enough free bytes.
 *
 * Usage: bench-extent [--quick]. Last line: RESULT ...
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "extent.h"

#define PAGE 4096ull

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

typedef struct live {
    uint64_t offset, length;
} live_t;

/* ---- part 1: cost per operation -------------------------------------------------- */

static double cost_per_op(size_t nlive, size_t pairs)
{
    ad_extents_config_t c = {
        .size = 1ull << 46, .granule = PAGE, .small_limit = 4 * PAGE, .decay_ms = 0};
    ad_extents_t *ex;
    if (ad_extents_new(&c, &ex) < 0)
        abort();
    size_t cap = 2 * nlive;
    live_t *lv = malloc(cap * sizeof(*lv));
    if (!lv)
        abort();
    size_t n = 0;
    /* 2N extents, then free every other one at random: N live, ~N holes. */
    for (size_t i = 0; i < cap; i++) {
        ad_extent_t e;
        uint64_t len = (1 + rng() % 16) * PAGE;
        if (ad_extents_alloc(ex, len, 1, 0, &e) < 0)
            abort();
        lv[n++] = (live_t){e.offset, e.length};
    }
    for (size_t i = 0; i < nlive; i++) {
        size_t k = rng() % n;
        if (ad_extents_release(ex, lv[k].offset, lv[k].length, 0, false) < 0)
            abort();
        lv[k] = lv[--n];
    }
    double t0 = now_ns();
    for (size_t i = 0; i < pairs; i++) {
        size_t k = rng() % n;
        if (ad_extents_release(ex, lv[k].offset, lv[k].length, 0, false) < 0)
            abort();
        ad_extent_t e;
        uint64_t len = (1 + rng() % 16) * PAGE;
        if (ad_extents_alloc(ex, len, 1, 0, &e) < 0)
            abort();
        lv[k] = (live_t){e.offset, e.length};
    }
    double per_op = (now_ns() - t0) / (double)(2 * pairs);
    ad_extents_stats_t s;
    ad_extents_stats(ex, &s);
    printf("  %8zu live  %8llu free extents   %7.1f ns/op\n", nlive,
           (unsigned long long)s.free_extents, per_op);
    free(lv);
    ad_extents_free(ex);
    return per_op;
}

/* ---- part 2: fragmentation ------------------------------------------------------- */

/* First fit with coalescing, no segregation: a sorted array of free extents. */
typedef struct firstfit {
    live_t *free;
    size_t n, cap;
} firstfit_t;

static int ff_alloc(firstfit_t *ff, uint64_t len, uint64_t *ret)
{
    for (size_t i = 0; i < ff->n; i++) {
        if (ff->free[i].length >= len) {
            *ret = ff->free[i].offset;
            ff->free[i].offset += len;
            ff->free[i].length -= len;
            if (ff->free[i].length == 0) {
                memmove(&ff->free[i], &ff->free[i + 1], (ff->n - i - 1) * sizeof(live_t));
                ff->n--;
            }
            return 0;
        }
    }
    return -ENOMEM;
}

static void ff_release(firstfit_t *ff, uint64_t off, uint64_t len)
{
    size_t lo = 0, hi = ff->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ff->free[mid].offset < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    bool left = lo > 0 && ff->free[lo - 1].offset + ff->free[lo - 1].length == off;
    bool right = lo < ff->n && ff->free[lo].offset == off + len;
    if (left && right) {
        ff->free[lo - 1].length += len + ff->free[lo].length;
        memmove(&ff->free[lo], &ff->free[lo + 1], (ff->n - lo - 1) * sizeof(live_t));
        ff->n--;
    } else if (left) {
        ff->free[lo - 1].length += len;
    } else if (right) {
        ff->free[lo].offset = off;
        ff->free[lo].length += len;
    } else {
        if (ff->n == ff->cap) {
            ff->cap = ff->cap ? 2 * ff->cap : 64;
            ff->free = realloc(ff->free, ff->cap * sizeof(live_t));
            if (!ff->free)
                abort();
        }
        memmove(&ff->free[lo + 1], &ff->free[lo], (ff->n - lo) * sizeof(live_t));
        ff->free[lo] = (live_t){off, len};
        ff->n++;
    }
}

typedef enum { KIND_ARENAD, KIND_BESTFIT, KIND_FIRSTFIT, KIND_BUMP } kind_t;

typedef struct frag_result {
    double fragmentation;
    unsigned long failed; /* requests refused although enough bytes were free */
    unsigned long served;
} frag_result_t;

#define HEAP_BYTES (64ull << 30)

static frag_result_t fragmentation_run(kind_t kind, unsigned long steps)
{
    rng_state = 0x853c49e6748fea9bULL; /* the same workload for every allocator */
    ad_extents_t *ex = NULL;
    firstfit_t ff = {0};
    uint64_t bump_top = 0, bump_freed = 0;
    if (kind == KIND_ARENAD || kind == KIND_BESTFIT) {
        ad_extents_config_t c = {.size = HEAP_BYTES,
                                 .granule = PAGE,
                                 .small_limit = 4ull << 20,
                                 .decay_ms = 0,
                                 .placement =
                                     kind == KIND_ARENAD ? AD_PLACE_SEGREGATED : AD_PLACE_BEST_FIT};
        if (ad_extents_new(&c, &ex) < 0)
            abort();
    } else if (kind == KIND_FIRSTFIT) {
        ff_release(&ff, 0, HEAP_BYTES);
    }
    size_t cap = 1 << 16, n = 0;
    live_t *lv = malloc(cap * sizeof(*lv));
    bool *large = malloc(cap * sizeof(*large));
    if (!lv || !large)
        abort();
    uint64_t leased = 0;
    frag_result_t res = {0};
    for (unsigned long step = 0; step < steps; step++) {
        bool want_free = n > 0 && (leased > HEAP_BYTES / 4 * 3 || rng() % 3 == 0);
        if (want_free) {
            /* Large arrays are short-lived: pick them four times as often. */
            size_t k = rng() % n;
            for (int tries = 0; tries < 4 && !large[k]; tries++)
                k = rng() % n;
            if (ex) {
                if (ad_extents_release(ex, lv[k].offset, lv[k].length, 0, false) < 0)
                    abort();
            } else if (kind == KIND_FIRSTFIT) {
                ff_release(&ff, lv[k].offset, lv[k].length);
            } else {
                bump_freed += lv[k].length;
            }
            leased -= lv[k].length;
            lv[k] = lv[n - 1];
            large[k] = large[n - 1];
            n--;
            continue;
        }
        bool is_large = rng() % 4 == 0;
        uint64_t len = is_large ? (16ull << 20) + (rng() % 2048) * (1ull << 20)
                                : (1 + rng() % 4) * (1ull << 20);
        uint64_t off = 0;
        int r;
        if (ex) {
            ad_extent_t e;
            r = ad_extents_alloc(ex, len, 1, 0, &e);
            off = e.offset;
        } else if (kind == KIND_FIRSTFIT) {
            r = ff_alloc(&ff, len, &off);
        } else {
            r = HEAP_BYTES - bump_top >= len ? 0 : -ENOMEM;
            off = bump_top;
            if (r == 0)
                bump_top += len;
        }
        if (r < 0) {
            if (HEAP_BYTES - leased >= len)
                res.failed++;
            continue;
        }
        res.served++;
        if (n == cap) {
            cap *= 2;
            lv = realloc(lv, cap * sizeof(*lv));
            large = realloc(large, cap * sizeof(*large));
            if (!lv || !large)
                abort();
        }
        lv[n] = (live_t){off, len};
        large[n] = is_large;
        n++;
        leased += len;
    }
    uint64_t total_free = HEAP_BYTES - leased, largest = 0;
    if (ex) {
        ad_extents_stats_t s;
        ad_extents_stats(ex, &s);
        largest = s.largest_free;
    } else if (kind == KIND_FIRSTFIT) {
        for (size_t i = 0; i < ff.n; i++)
            largest = ff.free[i].length > largest ? ff.free[i].length : largest;
    } else {
        largest = HEAP_BYTES - bump_top; /* freed holes are never usable again */
        (void)bump_freed;
    }
    res.fragmentation = total_free ? 1.0 - (double)largest / (double)total_free : 0.0;
    ad_extents_free(ex);
    free(ff.free);
    free(lv);
    free(large);
    return res;
}

int main(int argc, char **argv)
{
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    size_t pairs = quick ? 20000 : 200000;
    printf("extent allocator: release+alloc pairs, random sizes 4-64 KiB\n");
    double ns[4];
    size_t sizes[4] = {1000, 10000, 100000, 1000000};
    for (int i = 0; i < 4; i++)
        ns[i] = cost_per_op(sizes[i], pairs);
    printf("  growth per decade: %.1f, %.1f, %.1f ns (wall time: past ~1e5 extents the trees\n"
           "  outgrow the caches; the work itself is logarithmic, see instruction counts with\n"
           "  valgrind --tool=callgrind)\n",
           ns[1] - ns[0], ns[2] - ns[1], ns[3] - ns[2]);

    unsigned long steps = quick ? 50000 : 400000;
    printf("\nfragmentation after %lu steps on a %llu GiB heap (~75%% full)\n", steps,
           (unsigned long long)(HEAP_BYTES >> 30));
    printf("  %-30s %14s %12s %12s\n", "allocator", "fragmentation", "served", "failed*");
    const char *names[4] = {"arenad (segregated)", "arenad --placement best-fit",
                            "first fit, no segregation", "bump pointer (fixed heap)"};
    frag_result_t fr[4];
    for (int k = 0; k < 4; k++) {
        fr[k] = fragmentation_run((kind_t)k, steps);
        printf("  %-30s %14.3f %12lu %12lu\n", names[k], fr[k].fragmentation, fr[k].served,
               fr[k].failed);
    }
    printf("  * refused although the heap had at least that many free bytes\n");
    printf("RESULT ns_per_op_1e3=%.1f ns_per_op_1e6=%.1f frag_arenad=%.3f frag_firstfit=%.3f "
           "frag_bump=%.3f frag_bestfit=%.3f failed_arenad=%lu failed_firstfit=%lu\n",
           ns[0], ns[3], fr[0].fragmentation, fr[2].fragmentation, fr[3].fragmentation,
           fr[1].fragmentation, fr[0].failed, fr[2].failed);
    return 0;
}
