/* SPDX-License-Identifier: MIT
 *
 * test_pool.c -- the allocator pools: size classes, alignment, realloc,
 * calloc, bad calls, the order frees are reused in, span coalescing, decay
 * purging, trim and stats, thread exit with live objects, remote frees,
 * fork. Each test runs in its own process (Check fork mode), so stats start
 * from zero.
 *
 * Built twice: test_pool runs on anonymous fallback memory (no daemon);
 * test_pool_shared (POOL_TEST_DAEMON) runs the same cases on leases from a
 * real arenad started per test by the tests' daemon fixture (stopped in the
 * teardown, and killed with the test process through PR_SET_PDEATHSIG), so
 * purging is MADV_REMOVE on shared memory and fork copies shared mappings.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "arena.h"
#ifdef POOL_TEST_DAEMON
#include "fixture.h"
#endif
#include "alloc/internal.h"

static void fill(void *p, size_t n, unsigned seed)
{
    unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        c[i] = (unsigned char)(seed + i * 31u);
    }
}

static int check_fill(const void *p, size_t n, unsigned seed)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        if (c[i] != (unsigned char)(seed + i * 31u)) {
            return 0;
        }
    }
    return 1;
}

static int all_zero(const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        if (c[i] != 0) {
            return 0;
        }
    }
    return 1;
}

START_TEST(test_class_table)
{
    size_t prev = 0;
    for (unsigned c = 0; c < ARENA__NCLASSES; c++) {
        size_t s = arena__class_size(c);
        ck_assert_uint_gt(s, prev);
        ck_assert_uint_eq(arena__size_class(s), c);
        ck_assert_uint_eq(arena__size_class(prev + 1), c);
        ck_assert_uint_eq(s % (s >= 16 ? 16 : 8), 0);
        prev = s;
    }
    ck_assert_uint_eq(prev, ARENA__SMALL_MAX);
    /* Every power of two is a class (the aligned allocator relies on it). */
    for (size_t p = 8; p <= ARENA__SMALL_MAX; p <<= 1) {
        ck_assert_uint_eq(arena__class_size(arena__size_class(p)), p);
    }
}
END_TEST

START_TEST(test_class_boundaries)
{
    for (unsigned c = 0; c < ARENA__NCLASSES; c++) {
        size_t s = arena__class_size(c);
        size_t sizes[3] = {s - 1, s, s + 1};
        for (int k = 0; k < 3; k++) {
            size_t n = sizes[k];
            void *p = arena_malloc(n);
            ck_assert_ptr_nonnull(p);
            size_t u = arena_usable_size(p);
            ck_assert_uint_ge(u, n);
            if (n > 128) {
                /* At most 12.5% of the request is waste. */
                ck_assert_msg((u - n) * 8 <= n, "size %zu usable %zu", n, u);
            } else {
                ck_assert_uint_lt(u - n, 16);
            }
            ck_assert_uint_eq((uintptr_t)p % (n > 8 ? 16 : 8), 0);
            fill(p, n, (unsigned)n);
            ck_assert(check_fill(p, n, (unsigned)n));
            arena_free(p);
        }
    }
    ck_assert(arena__heap_is_valid());
}
END_TEST

START_TEST(test_many_objects_distinct)
{
    enum { N = 20000 };
    static void *ptrs[N];
    for (unsigned i = 0; i < N; i++) {
        size_t n = 1 + (i * 7919u) % 3000u;
        ptrs[i] = arena_malloc(n);
        ck_assert_ptr_nonnull(ptrs[i]);
        fill(ptrs[i], n, i);
    }
    for (unsigned i = 0; i < N; i++) {
        size_t n = 1 + (i * 7919u) % 3000u;
        ck_assert_msg(check_fill(ptrs[i], n, i), "object %u corrupted", i);
        if (i % 2 == 0) {
            arena_free(ptrs[i]);
        }
    }
    for (unsigned i = 1; i < N; i += 2) {
        arena_free(ptrs[i]);
    }
    ck_assert(arena__heap_is_valid());
}
END_TEST

START_TEST(test_malloc_zero_and_null)
{
    void *a = arena_malloc(0);
    void *b = arena_malloc(0);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_ne(a, b);
    ck_assert_uint_ge(arena_usable_size(a), 1);
    arena_free(a);
    arena_free(b);
    arena_free(NULL);
    ck_assert_uint_eq(arena_usable_size(NULL), 0);
    int local = 0;
    ck_assert_uint_eq(arena_usable_size(&local), 0);
    ck_assert(!arena__heap_owns(&local));
    ck_assert(!arena__heap_owns(NULL));
    arena_free(&local); /* not ours: ignored, no crash */
    ck_assert(arena__heap_is_valid());
}
END_TEST

START_TEST(test_bad_sizes)
{
    errno = 0;
    ck_assert_ptr_null(arena_malloc(SIZE_MAX));
    ck_assert_int_eq(errno, ENOMEM);
    errno = 0;
    ck_assert_ptr_null(arena_malloc(SIZE_MAX / 2));
    ck_assert_int_eq(errno, ENOMEM);
    errno = 0;
    ck_assert_ptr_null(arena_calloc(SIZE_MAX / 2, 3));
    ck_assert_int_eq(errno, ENOMEM);
    errno = 0;
    ck_assert_ptr_null(arena_calloc((size_t)1 << 33, (size_t)1 << 33));
    ck_assert_int_eq(errno, ENOMEM);
    void *p = arena_malloc(100);
    fill(p, 100, 5);
    errno = 0;
    ck_assert_ptr_null(arena_realloc(p, SIZE_MAX - 4096));
    ck_assert_int_eq(errno, ENOMEM);
    ck_assert(check_fill(p, 100, 5)); /* untouched and still valid */
    arena_free(p);
    errno = 0;
    ck_assert_ptr_null(arena_aligned_alloc(24, 100));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(arena_aligned_alloc(0, 100));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(arena_aligned_alloc(((size_t)1 << 20) + 1, 100));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(arena_stats(NULL), -EINVAL);
    ck_assert(arena__heap_is_valid());
}
END_TEST

START_TEST(test_aligned)
{
    static const size_t sizes[] = {0, 1, 8, 100, 3000, 70000, 300000, 3000000};
    for (size_t align = 1; align <= ((size_t)8 << 20); align <<= 1) {
        for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
            size_t n = sizes[k];
            void *p = arena_aligned_alloc(align, n);
            ck_assert_msg(p != NULL, "align %zu size %zu", align, n);
            ck_assert_msg((uintptr_t)p % align == 0, "align %zu size %zu: %p", align, n, p);
            ck_assert_uint_ge(arena_usable_size(p), n);
            ck_assert(arena__heap_owns(p));
            fill(p, n, (unsigned)align);
            ck_assert(check_fill(p, n, (unsigned)align));
            arena_free(p);
        }
    }
    /* Several at once, kept alive together, do not overlap. */
    void *a = arena_aligned_alloc(4096, 5000);
    void *b = arena_aligned_alloc(65536, 5000);
    void *c = arena_aligned_alloc((size_t)2 << 20, 5000);
    fill(a, 5000, 1);
    fill(b, 5000, 2);
    fill(c, 5000, 3);
    ck_assert(check_fill(a, 5000, 1) && check_fill(b, 5000, 2) && check_fill(c, 5000, 3));
    arena_free(a);
    arena_free(b);
    arena_free(c);
    ck_assert(arena__heap_is_valid());
}
END_TEST

START_TEST(test_realloc_grow_shrink)
{
    size_t n = 1;
    unsigned char *p = arena_malloc(n);
    fill(p, n, 9);
    /* 1 byte .. 24 MiB: small classes, large spans, huge regions. */
    while (n < ((size_t)24 << 20)) {
        size_t m = n * 3 / 2 + 1;
        p = arena_realloc(p, m);
        ck_assert_ptr_nonnull(p);
        ck_assert_msg(check_fill(p, n, 9), "grow %zu -> %zu lost data", n, m);
        fill(p, m, 9);
        n = m;
    }
    while (n > 1) {
        size_t m = n / 3;
        if (m == 0) {
            m = 1;
        }
        p = arena_realloc(p, m);
        ck_assert_ptr_nonnull(p);
        ck_assert_msg(check_fill(p, m, 9), "shrink %zu -> %zu lost data", n, m);
        n = m;
    }
    ck_assert_ptr_null(arena_realloc(p, 0)); /* frees, glibc-style */
    p = arena_realloc(NULL, 50);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_ge(arena_usable_size(p), 50);
    /* Same class: in place. */
    ck_assert_ptr_eq(arena_realloc(p, 60), p);
    arena_free(p);
    ck_assert(arena__heap_is_valid());
}
END_TEST

START_TEST(test_realloc_keeps_room)
{
    /* A span grown by realloc gets a quarter more room; later growth inside
     * that room stays put and keeps the room, even once a neighbour sits
     * right after the span (strings built by appends, side by side). */
    unsigned char *p = arena_malloc(140 * 1024);
    fill(p, 140 * 1024, 7);
    unsigned char *q = arena_realloc(p, 160 * 1024);
    ck_assert_ptr_nonnull(q);
    size_t room = arena_usable_size(q);
    ck_assert_uint_ge(room, 200 * 1024);
    void *neighbour = arena_malloc(140 * 1024); /* takes the slices after q's span */
    ck_assert_ptr_nonnull(neighbour);
    unsigned char *before = q;
    for (size_t size = 161 * 1024; size <= room; size += 1024) {
        q = arena_realloc(q, size);
        ck_assert_ptr_eq(q, before);
        ck_assert_uint_eq(arena_usable_size(q), room);
    }
    ck_assert(check_fill(q, 140 * 1024, 7));
    /* Shrinking below half the span trims it. */
    q = arena_realloc(q, 60 * 1024);
    ck_assert_ptr_nonnull(q);
    ck_assert(check_fill(q, 60 * 1024, 7));
    arena_free(neighbour);
    arena_free(q);
    ck_assert(arena__heap_is_valid());
}
END_TEST

START_TEST(test_realloc_large_in_place)
{
    /* A fresh heap: the span is followed by free slices, so it grows in place. */
    unsigned char *p = arena_malloc(200 * 1024);
    fill(p, 200 * 1024, 4);
    unsigned char *q = arena_realloc(p, 450 * 1024);
    ck_assert_ptr_eq(q, p);
    ck_assert(check_fill(q, 200 * 1024, 4));
    ck_assert_uint_ge(arena_usable_size(q), 450 * 1024);
    q = arena_realloc(q, 150 * 1024);
    ck_assert_ptr_eq(q, p);
    ck_assert_uint_lt(arena_usable_size(q), 160 * 1024);
    /* The freed tail is reusable right away. */
    void *r = arena_malloc(300 * 1024);
    ck_assert_ptr_eq(r, (unsigned char *)p + 152 * 1024);
    arena_free(r);
    arena_free(q);
    ck_assert(arena__heap_is_valid());
}
END_TEST

START_TEST(test_calloc_zero)
{
    static const size_t sizes[] = {1, 24, 1000, 60000, 130000, 1000000, 5000000};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = sizes[k];
        /* Dirty the memory first so a missing memset would show. */
        void *d = arena_malloc(n);
        memset(d, 0xa5, n);
        arena_free(d);
        unsigned char *p = arena_calloc(1, n);
        ck_assert_ptr_nonnull(p);
        ck_assert_msg(all_zero(p, n), "calloc(%zu) not zero", n);
        memset(p, 0x5a, n);
        arena_free(p);
        p = arena_calloc(n, 1);
        ck_assert(all_zero(p, n));
        arena_free(p);
    }
    void *z = arena_calloc(0, 10);
    ck_assert_ptr_nonnull(z);
    arena_free(z);
    ck_assert(arena__heap_is_valid());
}
END_TEST

START_TEST(test_large_coalesce)
{
    /* Three adjacent 256 KiB objects in a fresh segment; freeing the first
     * two makes one 512 KiB free span, which a 512 KiB request (the largest
     * a span serves) must reuse. */
    const size_t half = ARENA__LARGE_MAX / 2;
    unsigned char *a = arena_malloc(half);
    unsigned char *b = arena_malloc(half);
    unsigned char *c = arena_malloc(half);
    ck_assert_ptr_eq(b, a + half);
    ck_assert_ptr_eq(c, b + half);
    arena_free(b);
    arena_free(a);
    unsigned char *d = arena_malloc(ARENA__LARGE_MAX);
    ck_assert_ptr_eq(d, a);
    arena_stats_t st;
    ck_assert_int_eq(arena_stats(&st), 0);
    ck_assert_uint_eq(st.lease_count, 1);
    arena_free(c);
    arena_free(d);
    ck_assert(arena__heap_is_valid());
}
END_TEST

/* The free path's per-heap segment cache and the direct size -> page table:
 * objects spread over three segments are freed in an order that switches
 * segment at every free (the cache misses and refills each time) and then
 * segment by segment (it hits); after a trim gives the segments back, new
 * ones (often at the same addresses, with recycled metadata) must not be
 * mistaken for the cached ones. Every size 0 .. 1024 goes through direct[]. */
START_TEST(test_free_cache_and_direct_table)
{
    enum { N = 3 * 4096 };
    static unsigned char *objs[N];
    arena_stats_t st;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            objs[i] = arena_malloc(1000);
            ck_assert_ptr_nonnull(objs[i]);
            memset(objs[i], (unsigned char)i, 1000);
        }
        uintptr_t seg0 = (uintptr_t)objs[0] & ~(uintptr_t)(ARENA__SEGMENT_SIZE - 1);
        uintptr_t segn = (uintptr_t)objs[N - 1] & ~(uintptr_t)(ARENA__SEGMENT_SIZE - 1);
        ck_assert_uint_ne(seg0, segn);
        /* Alternate ends: consecutive frees go to different segments. */
        for (int i = 0; i < N / 4; i++) {
            unsigned char *lo = objs[i], *hi = objs[N - 1 - i];
            ck_assert_uint_eq(lo[999], (unsigned char)i);
            ck_assert_uint_eq(hi[0], (unsigned char)(N - 1 - i));
            arena_free(lo);
            arena_free(hi);
        }
        ck_assert(arena__heap_is_valid());
        for (int i = N / 4; i < N - N / 4; i++) {
            ck_assert_uint_eq(objs[i][500], (unsigned char)i);
            arena_free(objs[i]);
        }
        ck_assert(arena__heap_is_valid());
        ck_assert_int_eq(arena_stats(&st), 0);
        ck_assert_uint_eq(st.live_bytes, 0);
        ck_assert_int_ge(arena_trim(), 0);
    }
    for (size_t size = 0; size <= 1024; size++) {
        unsigned char *p = arena_malloc(size);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq(arena_usable_size(p), arena__class_size(arena__size_class(size)));
        memset(p, 0xab, size);
        ck_assert(arena__heap_is_valid());
        arena_free(p);
    }
    ck_assert(arena__heap_is_valid());
    ck_assert_int_eq(arena_stats(&st), 0);
    ck_assert_uint_eq(st.live_bytes, 0);
}
END_TEST

/* A block the owner frees is the next one its class hands out, while the
 * page still has fresh blocks (page.c: frees go back onto `free`): objects
 * made together stay together. Sizes through the direct table, through
 * malloc_generic (above 1 KiB) and in a 512 KiB page. */
START_TEST(test_free_reused_next)
{
    static const size_t sizes[] = {8, 56, 72, 1000, 1500, 5000, 20000};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t size = sizes[k];
        unsigned char *a = arena_malloc(size);
        unsigned char *t = arena_malloc(size);
        unsigned char *b = arena_malloc(size);
        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(t);
        ck_assert_ptr_nonnull(b);
        fill(a, size, 1);
        fill(b, size, 2);
        arena_free(t); /* a temporary between two objects built together */
        unsigned char *c = arena_malloc(size);
        ck_assert_ptr_eq(c, t);
        /* Several frees come back last in, first out. */
        unsigned char *x = arena_malloc(size), *y = arena_malloc(size), *z = arena_malloc(size);
        ck_assert_ptr_nonnull(x);
        ck_assert_ptr_nonnull(y);
        ck_assert_ptr_nonnull(z);
        arena_free(x);
        arena_free(y);
        arena_free(z);
        ck_assert_ptr_eq(arena_malloc(size), z);
        ck_assert_ptr_eq(arena_malloc(size), y);
        ck_assert_ptr_eq(arena_malloc(size), x);
        ck_assert(check_fill(a, size, 1));
        ck_assert(check_fill(b, size, 2));
        ck_assert(arena__heap_is_valid());
        arena_free(a);
        arena_free(b);
        arena_free(c);
        arena_free(x);
        arena_free(y);
        arena_free(z);
    }
    ck_assert(arena__heap_is_valid());
    arena_stats_t st;
    ck_assert_int_eq(arena_stats(&st), 0);
    ck_assert_uint_eq(st.live_bytes, 0);
}
END_TEST

/* arena_usable_size() through both of its ways to the segment: the free
 * cache (a block of the segment this thread last freed into) and the map
 * (any other segment, here a second one of this heap and another thread's);
 * NULL and pointers that are not ours give 0. */
static void *alloc_in_thread(void *arg)
{
    return arena_malloc((size_t)(uintptr_t)arg);
}

START_TEST(test_usable_size_paths)
{
    enum { N = 6000 };
    static unsigned char *objs[N];
    for (int i = 0; i < N; i++) {
        objs[i] = arena_malloc(1000); /* 5.9 MB: two segments */
        ck_assert_ptr_nonnull(objs[i]);
    }
    uintptr_t seg0 = (uintptr_t)objs[0] & ~(uintptr_t)(ARENA__SEGMENT_SIZE - 1);
    int far = N - 1;
    ck_assert_uint_ne((uintptr_t)objs[far] & ~(uintptr_t)(ARENA__SEGMENT_SIZE - 1), seg0);
    size_t want = arena__class_size(arena__size_class(1000));
    arena_free(objs[1]); /* the cache now names objs[0]'s segment */
    objs[1] = NULL;
    ck_assert_uint_eq(arena_usable_size(objs[0]), want);   /* the cache */
    ck_assert_uint_eq(arena_usable_size(objs[far]), want); /* the map */
    pthread_t t;
    void *theirs = NULL;
    ck_assert_int_eq(pthread_create(&t, NULL, alloc_in_thread, (void *)(uintptr_t)300), 0);
    ck_assert_int_eq(pthread_join(t, &theirs), 0);
    ck_assert_ptr_nonnull(theirs);
    ck_assert_uint_eq(arena_usable_size(theirs), arena__class_size(arena__size_class(300)));
    arena_free(theirs);
    int local = 0;
    ck_assert_uint_eq(arena_usable_size(NULL), 0);
    ck_assert_uint_eq(arena_usable_size(&local), 0);
    ck_assert_uint_eq(arena_usable_size((void *)(uintptr_t)1), 0);
    for (int i = 0; i < N; i++) {
        arena_free(objs[i]);
    }
    ck_assert(arena__heap_is_valid());
}
END_TEST

START_TEST(test_stats_and_trim)
{
    arena_stats_t st;
    ck_assert_int_eq(arena_stats(&st), 0);
    ck_assert_uint_eq(st.live_bytes, 0);
    ck_assert_uint_eq(st.lease_count, 0);
    void *small[100];
    for (int i = 0; i < 100; i++) {
        small[i] = arena_malloc(1000);
    }
    void *large = arena_malloc(500 * 1024);
    void *huge = arena_malloc((size_t)10 << 20);
    ck_assert_int_eq(arena_stats(&st), 0);
    size_t expect = arena_usable_size(large) + arena_usable_size(huge);
    for (int i = 0; i < 100; i++) {
        expect += arena_usable_size(small[i]);
    }
    ck_assert_uint_eq(st.live_bytes, expect);
    ck_assert_uint_eq(st.lease_count, 2);
    ck_assert_uint_ge(st.leased_bytes, ((size_t)14 << 20));
    arena_free(huge);
    ck_assert_int_eq(arena_stats(&st), 0);
    ck_assert_uint_eq(st.lease_count, 1); /* huge regions go back at once */
    for (int i = 0; i < 100; i++) {
        arena_free(small[i]);
    }
    arena_free(large);
    ck_assert_int_eq(arena_stats(&st), 0);
    ck_assert_uint_eq(st.live_bytes, 0);
    ck_assert_uint_eq(st.lease_count, 1); /* a page per class is kept */
    long long got = arena_trim();
    ck_assert_int_ge(got, (long long)ARENA__SEGMENT_SIZE);
    ck_assert_int_eq(arena_stats(&st), 0);
    ck_assert_uint_eq(st.lease_count, 0);
    ck_assert_uint_eq(st.leased_bytes, 0);
#ifdef POOL_TEST_DAEMON
    /* Leases are parked, not released: held for reuse until the daemon
     * takes them (region.c), counted as parked only; the huge block's too. */
    ck_assert_uint_eq(st.parked_bytes, ARENA__SEGMENT_SIZE + ((size_t)10 << 20));
    ck_assert_uint_eq(arena__region_parked_bytes(), ARENA__SEGMENT_SIZE + ((size_t)10 << 20));
#else
    /* Anonymous fallback memory is never parked: unmapped at once. */
    ck_assert_uint_eq(st.parked_bytes, 0);
    ck_assert_uint_eq(arena__region_parked_bytes(), 0);
#endif
    ck_assert_int_eq(arena_trim(), 0);
    ck_assert(arena__heap_is_valid());
}
END_TEST

START_TEST(test_spare_segment_no_churn)
{
    /* Alloc/free of the largest span-served object at the boundary keeps
     * one spare instead of getting and releasing a segment every time. */
    arena_stats_t st;
    for (int i = 0; i < 50; i++) {
        void *p = arena_malloc(ARENA__LARGE_MAX);
        ck_assert_ptr_nonnull(p);
        arena_free(p);
        ck_assert_int_eq(arena_stats(&st), 0);
        ck_assert_uint_eq(st.lease_count, 1);
    }
    ck_assert(arena__heap_is_valid());
}
END_TEST

START_TEST(test_decay_purge)
{
    void *keep = arena_malloc(1000); /* keeps the segment non-empty */
    void *p = arena_malloc(ARENA__LARGE_MAX);
    memset(p, 1, ARENA__LARGE_MAX);
    arena_stats_t before, after;
    ck_assert_int_eq(arena_stats(&before), 0);
    arena_free(p);
    /* Within the decay window nothing is purged: the span is reused hot. */
    ck_assert_int_eq(arena_stats(&after), 0);
    ck_assert_uint_eq(after.purged_bytes, before.purged_bytes);
    usleep((ARENA__DECAY_MS + 300) * 1000);
    void *q = arena_malloc(200 * 1024); /* slow path: runs the purge tick */
    ck_assert_int_eq(arena_stats(&after), 0);
    ck_assert_uint_ge(after.purged_bytes, before.purged_bytes + ARENA__LARGE_MAX - (200 << 10));
    arena_free(q);
    arena_free(keep);
    ck_assert(arena__heap_is_valid());
}
END_TEST

static void *thread_alloc_and_exit(void *arg)
{
    void **out = arg;
    for (int i = 0; i < 1000; i++) {
        size_t n = (i % 10 == 9) ? 200000 : (size_t)(16 + i * 13 % 4000);
        out[i] = arena_malloc(n);
        if (out[i] != NULL) {
            fill(out[i], n < 64 ? n : 64, (unsigned)i);
        }
    }
    return NULL;
}

START_TEST(test_thread_exit_live_objects)
{
    static void *objs[1000];
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, thread_alloc_and_exit, objs), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    arena_stats_t st;
    ck_assert_int_eq(arena_stats(&st), 0);
    ck_assert_uint_gt(st.live_bytes, 0);
    ck_assert_uint_gt(st.lease_count, 0);
    for (int i = 0; i < 1000; i++) {
        ck_assert_ptr_nonnull(objs[i]);
        size_t n = (i % 10 == 9) ? 200000 : (size_t)(16 + i * 13 % 4000);
        ck_assert(check_fill(objs[i], n < 64 ? n : 64, (unsigned)i));
        arena_free(objs[i]);
    }
    ck_assert_int_eq(arena_stats(&st), 0);
    ck_assert_uint_eq(st.live_bytes, 0);
    /* The abandoned segments are adopted and, now empty, returned. */
    ck_assert_int_gt(arena_trim(), 0);
    ck_assert_int_eq(arena_stats(&st), 0);
    ck_assert_uint_eq(st.lease_count, 0);
    ck_assert(arena__heap_is_valid());
}
END_TEST

static void *thread_adopt(void *arg)
{
    (void)arg;
    /* A new thread needing memory adopts the abandoned segments first. */
    void *p = arena_malloc(3 << 20);
    arena_free(p);
    return NULL;
}

START_TEST(test_adoption_reuses_segments)
{
    static void *objs[1000];
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, thread_alloc_and_exit, objs), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    for (int i = 0; i < 1000; i += 2) {
        arena_free(objs[i]); /* remote frees into abandoned segments */
    }
    arena_stats_t st0, st1;
    ck_assert_int_eq(arena_stats(&st0), 0);
    ck_assert_int_eq(pthread_create(&t, NULL, thread_adopt, NULL), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(arena_stats(&st1), 0);
    for (int i = 1; i < 1000; i += 2) {
        size_t n = (i % 10 == 9) ? 200000 : (size_t)(16 + i * 13 % 4000);
        ck_assert(check_fill(objs[i], n < 64 ? n : 64, (unsigned)i));
        arena_free(objs[i]);
    }
    (void)arena_trim();
    ck_assert_int_eq(arena_stats(&st1), 0);
    ck_assert_uint_eq(st1.lease_count, 0);
    ck_assert_uint_eq(st1.live_bytes, 0);
    ck_assert(arena__heap_is_valid());
}
END_TEST

START_TEST(test_region_bad_args)
{
    arena__region_t r = {.addr = (void *)1};
    ck_assert_int_eq(arena__region_acquire(0, 4096, &r), -EINVAL);
    ck_assert_int_eq(arena__region_acquire(100, 4096, &r), -EINVAL);
    ck_assert_int_eq(arena__region_acquire(8192, 3 * 4096, &r), -EINVAL);
    ck_assert_int_eq(arena__region_acquire(8192, 2048, &r), -EINVAL);
    ck_assert_int_eq(arena__region_acquire(8192, 4096, NULL), -EINVAL);
    ck_assert_ptr_eq(r.addr, (void *)1); /* untouched on failure */
    ck_assert_int_eq(arena__region_release(NULL), -EINVAL);
}
END_TEST

#ifndef POOL_TEST_DAEMON
START_TEST(test_region_fallback)
{
    arena__region_t r;
    ck_assert_int_eq(arena__region_acquire((size_t)3 << 20, (size_t)16 << 20, &r), 0);
    ck_assert_uint_eq((uintptr_t)r.addr % ((size_t)16 << 20), 0);
    ck_assert_uint_eq(r.size, (size_t)3 << 20);
    ck_assert(r.anonymous);
    ck_assert(r.zeroed);
    ck_assert_uint_eq(r.lease_id, 0);
    ck_assert(all_zero(r.addr, r.size));
    memset(r.addr, 1, r.size);
    ck_assert_int_eq(arena__region_release(&r), 0);
}
END_TEST

START_TEST(test_region_require_daemon)
{
    /* ARENA_REQUIRE_DAEMON=1 beats both ARENA_FALLBACK=1 and the API. */
    ck_assert_int_eq(setenv("ARENA_REQUIRE_DAEMON", "1", 1), 0);
    arena__region_allow_fallback(true);
    arena__region_t r = {0};
    ck_assert_int_eq(arena__region_acquire(4096, 4096, &r), ARENA_ENODAEMON);
    ck_assert_ptr_null(r.addr);
    errno = 0;
    ck_assert_ptr_null(arena_malloc(10));
    ck_assert_int_eq(errno, ENOMEM);
    ck_assert_ptr_null(arena_malloc((size_t)64 << 20));
    arena_stats_t st;
    ck_assert_int_eq(arena_stats(&st), 0);
    ck_assert_uint_eq(st.lease_count, 0);
}
END_TEST

#endif

START_TEST(test_owns_and_usable)
{
    unsigned char *huge = arena_malloc((size_t)5 << 20);
    ck_assert(arena__heap_owns(huge));
    ck_assert(arena__heap_owns(huge + ((size_t)5 << 20) - 1));
    ck_assert_uint_ge(arena_usable_size(huge), (size_t)5 << 20);
    /* The map's 4 MiB chunk past the region's end is not ours. */
    ck_assert(!arena__heap_owns(huge + ((size_t)7 << 20)));
    arena_free(huge);
    ck_assert(!arena__heap_owns(huge));
    ck_assert_uint_eq(arena_usable_size(huge), 0);
    /* An aligned large object starts inside its span. */
    unsigned char *a = arena_aligned_alloc(65536, 200000);
    ck_assert_uint_eq((uintptr_t)a % 65536, 0);
    size_t u = arena_usable_size(a);
    ck_assert_uint_ge(u, 200000);
    ck_assert_uint_lt(u, 200000 + 65536 + 4096);
    memset(a, 3, u);
    arena_free(a);
    /* A small object with a big alignment costs about align, not more. */
    void *b = arena_aligned_alloc(8192, 100);
    ck_assert_uint_eq((uintptr_t)b % 8192, 0);
    ck_assert_uint_ge(arena_usable_size(b), 100);
    ck_assert_uint_le(arena_usable_size(b), 8192);
    arena_free(b);
    ck_assert(arena__heap_is_valid());
}
END_TEST

static void *free_all(void *arg)
{
    void **objs = arg;
    for (int i = 0; objs[i] != NULL; i++) {
        arena_free(objs[i]);
    }
    return NULL;
}

START_TEST(test_remote_free_reused_by_live_owner)
{
    /* The owner stays alive; another thread frees everything it allocated.
     * The owner must find those blocks and spans again (through the remote
     * lists and the segment bitmaps) instead of taking more memory. */
    enum { N = 1200 };
    static void *objs[N + 1];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            /* ~3 MiB: small blocks of several classes and some large spans. */
            objs[i] = arena_malloc(i % 200 == 0 ? 150000 : 1000 + (size_t)(i % 7) * 300);
            ck_assert_ptr_nonnull(objs[i]);
        }
        objs[N] = NULL;
        arena_stats_t st;
        ck_assert_int_eq(arena_stats(&st), 0);
        ck_assert_uint_eq(st.lease_count, 1);
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, free_all, objs), 0);
        ck_assert_int_eq(pthread_join(t, NULL), 0);
        ck_assert_int_eq(arena_stats(&st), 0);
        ck_assert_uint_eq(st.live_bytes, 0);
    }
    ck_assert(arena__heap_is_valid());
}
END_TEST

START_TEST(test_fork_private_copy)
{
    char *obj = arena_malloc(64);
    strcpy(obj, "before");
    int to_child[2], to_parent[2];
    ck_assert_int_eq(pipe(to_child), 0);
    ck_assert_int_eq(pipe(to_parent), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char c;
        strcpy(obj, "child");
        if (write(to_parent[1], "x", 1) != 1 || read(to_child[0], &c, 1) != 1) {
            _exit(3);
        }
        /* The child can still allocate and free. */
        void *p = arena_malloc(5000);
        arena_free(p);
        arena_free(obj);
        obj = arena_malloc(64);
        _exit(obj != NULL && strcmp(obj, "child") != 0 ? 0 : 1);
    }
    char c;
    ck_assert_int_eq(read(to_parent[0], &c, 1), 1);
    ck_assert_str_eq(obj, "before");
    strcpy(obj, "parent");
    ck_assert_int_eq(write(to_child[1], "x", 1), 1);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    ck_assert_str_eq(obj, "parent");
    arena_free(obj);
}
END_TEST

/* Whether every byte of the n bytes at p is c. */
static bool all_bytes(const unsigned char *p, size_t n, unsigned char c)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != c)
            return false;
    return true;
}

START_TEST(test_fork_private_all_sizes)
{
    /* A small object (a slab page), a large one (a span in a segment) and a
     * huge one (a lease of its own, larger than a segment) are each private
     * to parent and child after fork: each side writes all of every block
     * and sees only its own bytes, whole blocks compared. */
    static const size_t sizes[] = {64, 256 * 1024, 8 * 1024 * 1024};
    enum { NBLOCKS = sizeof(sizes) / sizeof(sizes[0]) };
    unsigned char *blk[NBLOCKS];
    for (int i = 0; i < NBLOCKS; i++) {
        blk[i] = arena_malloc(sizes[i]);
        ck_assert_ptr_nonnull(blk[i]);
        memset(blk[i], 'B', sizes[i]);
    }
    int to_child[2], to_parent[2];
    ck_assert_int_eq(pipe(to_child), 0);
    ck_assert_int_eq(pipe(to_parent), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char c;
        for (int i = 0; i < NBLOCKS; i++)
            memset(blk[i], 'C', sizes[i]);
        if (write(to_parent[1], "x", 1) != 1 || read(to_child[0], &c, 1) != 1)
            _exit(3);
        /* The parent has written all of its copies by now. */
        for (int i = 0; i < NBLOCKS; i++)
            if (!all_bytes(blk[i], sizes[i], 'C'))
                _exit(10 + i);
        for (int i = 0; i < NBLOCKS; i++)
            arena_free(blk[i]);
        _exit(0);
    }
    char c;
    ck_assert_int_eq(read(to_parent[0], &c, 1), 1);
    for (int i = 0; i < NBLOCKS; i++) {
        ck_assert_msg(all_bytes(blk[i], sizes[i], 'B'), "the child's write of %zu B shows",
                      sizes[i]);
        memset(blk[i], 'P', sizes[i]);
    }
    ck_assert_int_eq(write(to_child[1], "x", 1), 1);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "the child saw the parent's writes (status 0x%x)", status);
    for (int i = 0; i < NBLOCKS; i++) {
        ck_assert(all_bytes(blk[i], sizes[i], 'P'));
        arena_free(blk[i]);
    }
    for (int i = 0; i < 2; i++) {
        (void)close(to_child[i]);
        (void)close(to_parent[i]);
    }
}
END_TEST

#ifdef POOL_TEST_DAEMON
static arena_test_daemon_t daemon_;

/* Every test gets a daemon with a 256 MiB budget (the shared fixture). */
static const char *const daemon_args[] = {"--budget", "256M", NULL};
#endif

static Suite *pool_suite(void)
{
    Suite *s = suite_create("pool");
#ifdef POOL_TEST_DAEMON
    TCase *tc = tcase_create("daemon");
    /* The cases compare the client's parked books with the daemon's: the
     * daemon's parked decay (a slow run takes more than its second) would
     * take parked leases between the two looks. test_rss tests it. */
    arena_test_fixture_use(&daemon_, "parked_decay_ms = 0\n", daemon_args,
                           ARENA_TEST_EXPORT_SOCKET);
    tcase_add_checked_fixture(tc, arena_test_fixture_setup, arena_test_fixture_teardown);
#else
    TCase *tc = tcase_create("fallback");
#endif
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_class_table);
    tcase_add_test(tc, test_class_boundaries);
    tcase_add_test(tc, test_many_objects_distinct);
    tcase_add_test(tc, test_malloc_zero_and_null);
    tcase_add_test(tc, test_bad_sizes);
    tcase_add_test(tc, test_aligned);
    tcase_add_test(tc, test_realloc_grow_shrink);
    tcase_add_test(tc, test_realloc_large_in_place);
    tcase_add_test(tc, test_realloc_keeps_room);
    tcase_add_test(tc, test_calloc_zero);
    tcase_add_test(tc, test_large_coalesce);
    tcase_add_test(tc, test_stats_and_trim);
    tcase_add_test(tc, test_free_cache_and_direct_table);
    tcase_add_test(tc, test_free_reused_next);
    tcase_add_test(tc, test_usable_size_paths);
    tcase_add_test(tc, test_spare_segment_no_churn);
    tcase_add_test(tc, test_decay_purge);
    tcase_add_test(tc, test_thread_exit_live_objects);
    tcase_add_test(tc, test_adoption_reuses_segments);
    tcase_add_test(tc, test_region_bad_args);
#ifndef POOL_TEST_DAEMON
    tcase_add_test(tc, test_region_fallback);
    tcase_add_test(tc, test_region_require_daemon);
#endif
    tcase_add_test(tc, test_owns_and_usable);
    tcase_add_test(tc, test_remote_free_reused_by_live_owner);
    tcase_add_test(tc, test_fork_private_copy);
    tcase_add_test(tc, test_fork_private_all_sizes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
#ifdef POOL_TEST_DAEMON
    /* A daemon per test (fixture); no fallback, so every region is a lease. */
    (void)unsetenv("ARENA_FALLBACK");
    (void)setenv("ARENA_REQUIRE_DAEMON", "1", 1);
#else
    /* No daemon: point at a socket that cannot exist and allow the fallback. */
    (void)setenv("ARENAD_SOCKET", "/nonexistent-arenad-test-dir/arenad.sock", 1);
    (void)setenv("ARENA_FALLBACK", "1", 1);
    (void)unsetenv("ARENA_REQUIRE_DAEMON");
#endif
    return arena_test_run(pool_suite(), NULL);
}
