/* SPDX-License-Identifier: MIT
 *
 * test_bump.c -- bump arenas (client/bump.c).
 *
 * Most cases run on anonymous fallback regions (ARENAD_SOCKET points at a
 * socket nobody listens on and the fallback is switched on): the same code
 * path as leases minus the daemon; the "daemon" case runs a real arenad from
 * the tests' daemon fixture and checks the chunks are leased memory. Whether a region is given back
 * is checked with mincore(), which fails with ENOMEM on unmapped pages.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check_main.h"
#include "arena.h"
#include "fixture.h"
#include "proc.h"
#include "alloc/internal.h"

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

static void setup_fallback(void)
{
    ck_assert_int_eq(setenv("ARENAD_SOCKET", "/nonexistent/arenad-test.sock", 1), 0);
    arena__region_allow_fallback(true);
}

/* True when the page holding addr is mapped in this process. */
static bool is_mapped(const void *addr)
{
    long page = sysconf(_SC_PAGESIZE);
    unsigned char vec[1];
    void *base = (void *)((uintptr_t)addr & ~(uintptr_t)(page - 1));
    return mincore(base, (size_t)page, vec) == 0;
}

START_TEST(test_create_rejects_bad_arguments)
{
    arena_bump_t *bump = (arena_bump_t *)(uintptr_t)0x1234;

    ck_assert_int_eq(arena_bump_create(0, NULL), -EINVAL);
    ck_assert_int_eq(arena_bump_create(ARENA__BUMP_MAX_CHUNK + 1, &bump), -EINVAL);
    ck_assert_int_eq(arena_bump_create(SIZE_MAX, &bump), -EINVAL);
    ck_assert_ptr_eq(bump, (arena_bump_t *)(uintptr_t)0x1234);
}
END_TEST

START_TEST(test_no_daemon_no_fallback_fails)
{
    arena_bump_t *bump = (arena_bump_t *)(uintptr_t)0x1234;

    ck_assert_int_eq(setenv("ARENAD_SOCKET", "/nonexistent/arenad-test.sock", 1), 0);
    arena__region_allow_fallback(false);
    ck_assert_int_lt(arena_bump_create(0, &bump), 0);
    ck_assert_ptr_eq(bump, (arena_bump_t *)(uintptr_t)0x1234);
}
END_TEST

START_TEST(test_null_and_bad_alignment)
{
    arena_bump_t *bump;

    errno = 0;
    ck_assert_ptr_null(arena_bump_alloc(NULL, 16, 0));
    ck_assert_int_eq(errno, EINVAL);
    arena_bump_reset(NULL, true);
    arena_bump_reset(NULL, false);
    arena_bump_destroy(NULL);

    ck_assert_int_eq(arena_bump_create(0, &bump), 0);
    errno = 0;
    ck_assert_ptr_null(arena_bump_alloc(bump, 16, 3));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(arena_bump_alloc(bump, 16, 48));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(arena_bump_alloc(bump, 16, ARENA__BUMP_MAX_ALIGN * 2));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(arena_bump_alloc(bump, SIZE_MAX, 0));
    ck_assert_int_eq(errno, ENOMEM);
    errno = 0;
    ck_assert_ptr_null(arena_bump_alloc(bump, SIZE_MAX - 4096, 8192));
    ck_assert_int_eq(errno, ENOMEM);
    /* Failures leave the arena usable. */
    ck_assert(arena__bump_is_valid(bump));
    ck_assert_ptr_nonnull(arena_bump_alloc(bump, 16, 0));
    arena_bump_destroy(bump);
}
END_TEST

START_TEST(test_alignment)
{
    static const size_t aligns[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096, 8192, 65536};
    arena_bump_t *bump;
    uintptr_t prev_end = 0;

    ck_assert_int_eq(arena_bump_create(256 * KiB, &bump), 0);
    for (int round = 0; round < 50; round++)
        for (size_t i = 0; i < sizeof(aligns) / sizeof(aligns[0]); i++) {
            size_t size = 1 + (size_t)round * 7 + i;
            unsigned char *p = arena_bump_alloc(bump, size, aligns[i]);
            ck_assert_ptr_nonnull(p);
            ck_assert_uint_eq((uintptr_t)p % aligns[i], 0);
            memset(p, 0xa5, size);
            /* Objects bumped from the same chunk come in address order and
             * never overlap the previous one. */
            if (aligns[i] <= 4096 && prev_end && (uintptr_t)p < prev_end + 256 * KiB &&
                (uintptr_t)p + 256 * KiB > prev_end)
                ck_assert_uint_ge((uintptr_t)p, prev_end);
            if (aligns[i] <= 4096)
                prev_end = (uintptr_t)p + size;
            ck_assert(arena__bump_is_valid(bump));
        }
    /* Default alignment is 16. */
    ck_assert_ptr_nonnull(arena_bump_alloc(bump, 1, 1));
    void *q = arena_bump_alloc(bump, 5, 0);
    ck_assert_uint_eq((uintptr_t)q % 16, 0);
    arena_bump_destroy(bump);
}
END_TEST

START_TEST(test_consecutive_and_chunk_rollover)
{
    arena_bump_t *bump;
    arena__bump_info_t info;
    unsigned char *p[1000];

    ck_assert_int_eq(arena_bump_create(64 * KiB, &bump), 0);
    arena__bump_info(bump, &info);
    ck_assert_uint_eq(info.chunk_size, 64 * KiB);
    ck_assert_uint_eq(info.chunk_count, 1);

    /* Each allocation takes a multiple of 16 bytes. */
    unsigned char *a = arena_bump_alloc(bump, 24, 8);
    unsigned char *b = arena_bump_alloc(bump, 24, 8);
    unsigned char *c = arena_bump_alloc(bump, 32, 1);
    ck_assert_ptr_eq(b, a + 32);
    ck_assert_ptr_eq(c, b + 32);

    for (int i = 0; i < 1000; i++) {
        p[i] = arena_bump_alloc(bump, 1000, 16);
        ck_assert_ptr_nonnull(p[i]);
        memset(p[i], i & 0xff, 1000);
    }
    for (int i = 0; i < 1000; i++) {
        ck_assert_uint_eq(p[i][0], i & 0xff);
        ck_assert_uint_eq(p[i][999], i & 0xff);
    }
    arena__bump_info(bump, &info);
    /* 1 MB in 64 KiB chunks, each holding 65 objects of 1008 bytes. */
    ck_assert_uint_ge(info.chunk_count, 1000 / 65);
    ck_assert_uint_le(info.chunk_count, 1000 / 65 + 2);
    ck_assert_uint_eq(info.large_count, 0);
    ck_assert(arena__bump_is_valid(bump));
    arena_bump_destroy(bump);
}
END_TEST

START_TEST(test_reset_keep_reuses_chunks)
{
    arena_bump_t *bump;
    arena__bump_info_t info, again;
    void *chunk_starts[64];
    int n = 0;

    ck_assert_int_eq(arena_bump_create(64 * KiB, &bump), 0);
    void *first = arena_bump_alloc(bump, 100, 0);
    for (int i = 0; i < 500; i++)
        ck_assert_ptr_nonnull(arena_bump_alloc(bump, 1000, 0));
    arena__bump_info(bump, &info);
    ck_assert_uint_ge(info.chunk_count, 5);

    arena_bump_reset(bump, true);
    arena__bump_info(bump, &again);
    ck_assert_uint_eq(again.chunk_count, info.chunk_count);
    ck_assert_uint_eq(again.current, 0);
    ck_assert_uint_eq(again.used_in_current, 0);
    /* The first allocation after a reset is where the first one was. */
    ck_assert_ptr_eq(arena_bump_alloc(bump, 100, 0), first);

    /* The same volume again takes no new chunk; the kept chunks are used in
     * order and are still mapped. */
    for (int i = 0; i < 500; i++) {
        unsigned char *p = arena_bump_alloc(bump, 1000, 0);
        ck_assert_ptr_nonnull(p);
        memset(p, 1, 1000);
        arena__bump_info(bump, &again);
        if (n < 64 && again.used_in_current == 1008)
            chunk_starts[n++] = p;
    }
    arena__bump_info(bump, &again);
    ck_assert_uint_eq(again.chunk_count, info.chunk_count);
    ck_assert_uint_eq(again.current, info.current);
    ck_assert_int_ge(n, 4);
    for (int i = 0; i < n; i++)
        ck_assert(is_mapped(chunk_starts[i]));
    arena_bump_destroy(bump);
}
END_TEST

START_TEST(test_reset_release_keeps_first_only)
{
    arena_bump_t *bump;
    arena__bump_info_t info;
    void *later[500];

    ck_assert_int_eq(arena_bump_create(64 * KiB, &bump), 0);
    void *first = arena_bump_alloc(bump, 64, 0);
    for (int i = 0; i < 500; i++)
        later[i] = arena_bump_alloc(bump, 1000, 0);
    arena__bump_info(bump, &info);
    ck_assert_uint_ge(info.chunk_count, 5);
    size_t held = info.held_bytes, chunks = info.chunk_count;
    ck_assert(is_mapped(later[499]));
    arena_stats_t before, after;
    ck_assert_int_eq(arena_stats(&before), 0);
    ck_assert_uint_ge(before.leased_bytes, held);
    ck_assert_uint_ge(before.lease_count, chunks);

    arena_bump_reset(bump, false);
    arena__bump_info(bump, &info);
    ck_assert_uint_eq(info.chunk_count, 1);
    ck_assert_uint_lt(info.held_bytes, held);
    ck_assert_uint_eq(info.held_bytes, 64 * KiB);
    /* arena_stats() sees the chunks go. */
    ck_assert_int_eq(arena_stats(&after), 0);
    ck_assert_uint_eq(before.leased_bytes - after.leased_bytes, held - 64 * KiB);
    ck_assert_uint_eq(before.lease_count - after.lease_count, chunks - 1);
    /* Chunks other than the first are unmapped; the first stays. */
    ck_assert(!is_mapped(later[499]));
    ck_assert(is_mapped(first));
    ck_assert_ptr_eq(arena_bump_alloc(bump, 64, 0), first);
    ck_assert(arena__bump_is_valid(bump));

    /* It grows again after the reset. */
    for (int i = 0; i < 500; i++)
        ck_assert_ptr_nonnull(arena_bump_alloc(bump, 1000, 0));
    arena__bump_info(bump, &info);
    ck_assert_uint_ge(info.chunk_count, 5);
    arena_bump_destroy(bump);
}
END_TEST

START_TEST(test_large_objects_own_region)
{
    arena_bump_t *bump;
    arena__bump_info_t info;

    ck_assert_int_eq(arena_bump_create(64 * KiB, &bump), 0);
    unsigned char *small = arena_bump_alloc(bump, 100, 0);
    unsigned char *big = arena_bump_alloc(bump, 1 * MiB, 0);
    /* Larger than a chunk, so it cannot come from one even where a chunk
     * happens to straddle a 2 MiB boundary. */
    unsigned char *aligned = arena_bump_alloc(bump, 64 * KiB + 1, 2 * MiB);
    unsigned char *after = arena_bump_alloc(bump, 100, 0);

    ck_assert_ptr_nonnull(small);
    ck_assert_ptr_nonnull(big);
    ck_assert_ptr_nonnull(aligned);
    ck_assert_uint_eq((uintptr_t)aligned % (2 * MiB), 0);
    memset(big, 0x5a, 1 * MiB);
    memset(aligned, 0x3c, 64 * KiB + 1);
    /* Large objects do not disturb the current chunk. */
    ck_assert_ptr_eq(after, small + 112);
    arena__bump_info(bump, &info);
    ck_assert_uint_eq(info.chunk_count, 1);
    ck_assert_uint_eq(info.large_count, 2);
    ck_assert_uint_ge(info.held_bytes, 64 * KiB + 1 * MiB + 64 * KiB + 1);
    ck_assert_uint_eq(big[MiB - 1], 0x5a);

    /* A reset gives them back, even when keeping the chunks. */
    arena_bump_reset(bump, true);
    arena__bump_info(bump, &info);
    ck_assert_uint_eq(info.large_count, 0);
    ck_assert(!is_mapped(big));
    ck_assert(!is_mapped(big + MiB - 1));
    ck_assert(!is_mapped(aligned));
    ck_assert(is_mapped(small));
    arena_bump_destroy(bump);
}
END_TEST

START_TEST(test_destroy_releases_everything)
{
    arena_bump_t *bump;
    void *first, *last = NULL, *big;

    ck_assert_int_eq(arena_bump_create(64 * KiB, &bump), 0);
    first = arena_bump_alloc(bump, 10, 0);
    for (int i = 0; i < 300; i++)
        last = arena_bump_alloc(bump, 1000, 0);
    big = arena_bump_alloc(bump, 4 * MiB, 0);
    ck_assert(is_mapped(first) && is_mapped(last) && is_mapped(big));
    arena_stats_t before, after;
    arena__bump_info_t info;
    arena__bump_info(bump, &info);
    ck_assert_int_eq(arena_stats(&before), 0);
    arena_bump_destroy(bump);
    ck_assert_int_eq(arena_stats(&after), 0);
    ck_assert_uint_eq(before.leased_bytes - after.leased_bytes, info.held_bytes);
    ck_assert_uint_eq(before.lease_count - after.lease_count, info.chunk_count + info.large_count);
    ck_assert(!is_mapped(first));
    ck_assert(!is_mapped(last));
    ck_assert(!is_mapped(big));
}
END_TEST

START_TEST(test_zero_size)
{
    arena_bump_t *bump;

    ck_assert_int_eq(arena_bump_create(0, &bump), 0);
    void *a = arena_bump_alloc(bump, 0, 0);
    void *b = arena_bump_alloc(bump, 16, 0);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_ge((uintptr_t)b, (uintptr_t)a);
    arena_bump_destroy(bump);
}
END_TEST

/* The inline fast path of arena.h and the exported function share one
 * cursor: allocations made alternately through both (and through a function
 * pointer, which takes the real symbol) are contiguous, and the inline path
 * falls back to the function for a full chunk, a large alignment and NULL. */
START_TEST(test_inline_and_call_share_cursor)
{
    arena_bump_t *bump;
    void *(*fn)(arena_bump_t *, size_t, size_t) = arena_bump_alloc;
    arena__bump_info_t info;

    ck_assert_int_eq(arena_bump_create(64 * KiB, &bump), 0);
    ck_assert(fn != NULL);
    unsigned char *a = arena_bump_alloc(bump, 24, 0);   /* inline */
    unsigned char *b = (arena_bump_alloc)(bump, 24, 8); /* the exported function */
    unsigned char *c = fn(bump, 1, 16);
    unsigned char *d = arena_bump_alloc_inline(bump, 40, 1);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_eq(b, a + 32);
    ck_assert_ptr_eq(c, b + 32);
    ck_assert_ptr_eq(d, c + 16);
    /* The cursor is the documented first member. */
    const arena_bump_cursor_t *cur = (const arena_bump_cursor_t *)(const void *)bump;
    ck_assert_uint_eq(cur->cur, (uintptr_t)(d + 48));
    ck_assert_uint_eq(cur->end % 4096, 0);
    ck_assert(arena__bump_is_valid(bump));

    /* Past the chunk's end the inline path calls the function: a new chunk. */
    size_t n = 0;
    do {
        ck_assert_ptr_nonnull(arena_bump_alloc(bump, 1000, 0));
        arena__bump_info(bump, &info);
        n++;
    } while (info.current == 0 && n < 1000);
    ck_assert_uint_eq(info.current, 1);
    ck_assert(arena__bump_is_valid(bump));

    /* Alignments above the grain and bad ones go to the function too. */
    unsigned char *big = arena_bump_alloc(bump, 8, 4096);
    ck_assert_ptr_nonnull(big);
    ck_assert_uint_eq((uintptr_t)big % 4096, 0);
    errno = 0;
    ck_assert_ptr_null(arena_bump_alloc(bump, 8, 24));
    ck_assert_int_eq(errno, EINVAL);
    arena_bump_t *none = NULL;
    errno = 0;
    ck_assert_ptr_null(arena_bump_alloc(none, 8, 0));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert(arena__bump_is_valid(bump));
    arena_bump_destroy(bump);
}
END_TEST

START_TEST(test_many_region_records)
{
    /* More chunks than one page of records holds: the record array grows. */
    arena_bump_t *bump;
    arena__bump_info_t info;

    ck_assert_int_eq(arena_bump_create(4 * KiB, &bump), 0);
    for (int i = 0; i < 1000; i++) {
        unsigned char *p = arena_bump_alloc(bump, 1000, 0);
        ck_assert_ptr_nonnull(p);
        p[999] = 1;
    }
    for (int i = 0; i < 200; i++)
        ck_assert_ptr_nonnull(arena_bump_alloc(bump, 2000, 0)); /* large: > chunk / 4 */
    arena__bump_info(bump, &info);
    ck_assert_uint_ge(info.chunk_count, 250);
    ck_assert_uint_eq(info.large_count, 200);
    arena_bump_reset(bump, false);
    arena__bump_info(bump, &info);
    ck_assert_uint_eq(info.chunk_count, 1);
    ck_assert_uint_eq(info.large_count, 0);
    arena_bump_destroy(bump);
}
END_TEST

/* ---- on daemon leases ----------------------------------------------------------- */

static arena_test_daemon_t daemon_;

static void setup_daemon(void)
{
    arena_test_fixture_setup();
    arena__region_allow_fallback(false);
}

START_TEST(test_bump_on_leases)
{
    arena_bump_t *bump;
    arena_stats_t before, during, after;
    arena__bump_info_t info;

    ck_assert_int_eq(arena_stats(&before), 0);
    ck_assert_int_eq(arena_bump_create(256 * KiB, &bump), 0);
    unsigned char *first = arena_bump_alloc(bump, 100, 0);
    unsigned char *last = NULL;
    for (int i = 0; i < 2000; i++) {
        last = arena_bump_alloc(bump, 1000, 0);
        ck_assert_ptr_nonnull(last);
        memset(last, 0x77, 1000);
    }
    unsigned char *big = arena_bump_alloc(bump, 3 * MiB, 0);
    ck_assert_ptr_nonnull(big);
    memset(big, 0x11, 3 * MiB);
    ck_assert(arena_test_is_memfd_mapped(first));
    ck_assert(arena_test_is_memfd_mapped(last));
    ck_assert(arena_test_is_memfd_mapped(big));
    arena__bump_info(bump, &info);
    ck_assert_uint_ge(info.chunk_count, 7);
    ck_assert_uint_eq(info.large_count, 1);
    ck_assert_int_eq(arena_stats(&during), 0);
    ck_assert_uint_eq(during.leased_bytes - before.leased_bytes, info.held_bytes);

    arena_bump_reset(bump, false);
    ck_assert_int_eq(arena_stats(&after), 0);
    arena__bump_info(bump, &info);
    ck_assert_uint_eq(info.chunk_count, 1);
    ck_assert_uint_eq(after.leased_bytes - before.leased_bytes, info.held_bytes);
    ck_assert(!is_mapped(last));
    ck_assert(!is_mapped(big));
    ck_assert(arena_test_is_memfd_mapped(first));
    arena_bump_destroy(bump);
    ck_assert_int_eq(arena_stats(&after), 0);
    ck_assert_uint_eq(after.leased_bytes, before.leased_bytes);
}
END_TEST

static Suite *bump_suite(void)
{
    Suite *s = suite_create("bump");
    TCase *tc = tcase_create("api");
    tcase_add_checked_fixture(tc, setup_fallback, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_create_rejects_bad_arguments);
    tcase_add_test(tc, test_null_and_bad_alignment);
    tcase_add_test(tc, test_alignment);
    tcase_add_test(tc, test_consecutive_and_chunk_rollover);
    tcase_add_test(tc, test_reset_keep_reuses_chunks);
    tcase_add_test(tc, test_reset_release_keeps_first_only);
    tcase_add_test(tc, test_large_objects_own_region);
    tcase_add_test(tc, test_destroy_releases_everything);
    tcase_add_test(tc, test_zero_size);
    tcase_add_test(tc, test_many_region_records);
    tcase_add_test(tc, test_inline_and_call_share_cursor);
    suite_add_tcase(s, tc);

    TCase *td = tcase_create("daemon");
    arena_test_fixture_use(&daemon_, NULL, NULL, ARENA_TEST_EXPORT_SOCKET);
    tcase_add_checked_fixture(td, setup_daemon, arena_test_fixture_teardown);
    tcase_set_timeout(td, 60);
    tcase_add_test(td, test_bump_on_leases);
    suite_add_tcase(s, td);

    TCase *tn = tcase_create("no_daemon");
    tcase_set_timeout(tn, 30);
    tcase_add_test(tn, test_no_daemon_no_fallback_fails);
    suite_add_tcase(s, tn);
    return s;
}

ARENA_TEST_MAIN(bump_suite)
