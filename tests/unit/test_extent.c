/* SPDX-License-Identifier: MIT
 *
 * test_extent.c -- the free-space manager: every split and merge case,
 * placement, the fixed-heap stories, dirty pages and punching, invalid calls,
 * and a seeded differential test against a bitmap model that predicts the
 * exact best-fit placement of every request.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "extent.h"

/* ---- a recording punch callback ---------------------------------------------- */

typedef struct punch_log {
    int fail_with; /* non-zero: every punch fails with this */
    unsigned calls;
    uint64_t bytes;
    uint64_t last_offset, last_length;
    unsigned char *punched; /* per unit, for the differential test */
    uint64_t granule;
} punch_log_t;

static int record_punch(void *ctx, uint64_t offset, uint64_t length)
{
    punch_log_t *log = ctx;
    if (log->fail_with)
        return log->fail_with;
    log->calls++;
    log->bytes += length;
    log->last_offset = offset;
    log->last_length = length;
    if (log->punched)
        memset(log->punched + offset / log->granule, 1, length / log->granule);
    return 0;
}

static punch_log_t plog;

static ad_extents_t *make_placed(uint64_t units, uint64_t small_limit_units, uint64_t decay_ms,
                                 ad_placement_t placement)
{
    memset(&plog, 0, sizeof(plog));
    ad_extents_config_t c = {
        .size = units,
        .granule = 1,
        .small_limit = small_limit_units,
        .decay_ms = decay_ms,
        .placement = placement,
        .punch = record_punch,
        .punch_ctx = &plog,
    };
    ad_extents_t *ex = NULL;
    ck_assert_int_eq(ad_extents_new(&c, &ex), 0);
    ck_assert(ad_extents_is_valid(ex));
    return ex;
}

static ad_extents_t *make(uint64_t units, uint64_t small_limit_units, uint64_t decay_ms)
{
    return make_placed(units, small_limit_units, decay_ms, AD_PLACE_SEGREGATED);
}

static uint64_t alloc_ok(ad_extents_t *ex, uint64_t len, uint64_t owner)
{
    ad_extent_t e;
    ck_assert_int_eq(ad_extents_alloc(ex, len, owner, 0, &e), 0);
    ck_assert_uint_eq(e.length, len);
    ck_assert(ad_extents_is_valid(ex));
    return e.offset;
}

static void release_ok(ad_extents_t *ex, uint64_t off, uint64_t len)
{
    ck_assert_int_eq(ad_extents_release(ex, off, len, 0, false), 0);
    ck_assert(ad_extents_is_valid(ex));
}

static ad_extents_stats_t stats(const ad_extents_t *ex)
{
    ad_extents_stats_t s;
    ad_extents_stats(ex, &s);
    return s;
}

/* ---- configuration and invalid calls --------------------------------------------- */

START_TEST(test_new_rejects_bad_config)
{
    ad_extents_t *ex = (ad_extents_t *)0x1;
    ad_extents_config_t c = {.size = 4096, .granule = 4096};
    c.granule = 3000;
    ck_assert_int_eq(ad_extents_new(&c, &ex), -EINVAL);
    c.granule = 0;
    ck_assert_int_eq(ad_extents_new(&c, &ex), -EINVAL);
    c.granule = 4096;
    c.size = 0;
    ck_assert_int_eq(ad_extents_new(&c, &ex), -EINVAL);
    c.size = 4096 + 1;
    ck_assert_int_eq(ad_extents_new(&c, &ex), -EINVAL);
    ck_assert_int_eq(ad_extents_new(NULL, &ex), -EINVAL);
    c.size = 4096;
    c.placement = (ad_placement_t)7;
    ck_assert_int_eq(ad_extents_new(&c, &ex), -EINVAL);
    ck_assert_ptr_eq(ex, (ad_extents_t *)0x1); /* output untouched */
    ad_extents_free(NULL);
}
END_TEST

START_TEST(test_alloc_rejects_invalid_lengths)
{
    ad_extents_config_t c = {.size = 16 * 4096, .granule = 4096};
    ad_extents_t *ex;
    ck_assert_int_eq(ad_extents_new(&c, &ex), 0);
    ad_extent_t e = {.offset = 77};
    ck_assert_int_eq(ad_extents_alloc(ex, 0, 1, 0, &e), -EINVAL);
    ck_assert_int_eq(ad_extents_alloc(ex, 100, 1, 0, &e), -EINVAL);
    ck_assert_int_eq(ad_extents_alloc(ex, 17 * 4096, 1, 0, &e), -E2BIG);
    ck_assert_int_eq(ad_extents_alloc(ex, UINT64_MAX - 4095, 1, 0, &e), -E2BIG);
    ck_assert_uint_eq(e.offset, 77);
    ck_assert_uint_eq(stats(ex).free_bytes, 16 * 4096);
    ck_assert_int_eq(ad_extents_alloc(ex, 16 * 4096, 1, 0, &e), 0);
    ck_assert_int_eq(ad_extents_alloc(ex, 4096, 1, 0, &e), -ENOMEM);
    ck_assert(ad_extents_is_valid(ex));
    ad_extents_free(ex);
}
END_TEST

START_TEST(test_release_rejects_invalid_calls)
{
    ad_extents_config_t c = {.size = 16 * 4096, .granule = 4096};
    ad_extents_t *ex;
    ck_assert_int_eq(ad_extents_new(&c, &ex), 0);
    ad_extent_t a, b;
    ck_assert_int_eq(ad_extents_alloc(ex, 4 * 4096, 1, 0, &a), 0);
    ck_assert_int_eq(ad_extents_alloc(ex, 4 * 4096, 1, 0, &b), 0);
    ad_extents_stats_t before = stats(ex);

    ck_assert_int_eq(ad_extents_release(ex, a.offset, 0, 0, false), -EINVAL);
    ck_assert_int_eq(ad_extents_release(ex, a.offset + 1, 4096, 0, false), -EINVAL);
    ck_assert_int_eq(ad_extents_release(ex, a.offset, 4097, 0, false), -EINVAL);
    ck_assert_int_eq(ad_extents_release(ex, 16 * 4096, 4096, 0, false), -EINVAL);
    ck_assert_int_eq(ad_extents_release(ex, 15 * 4096, 2 * 4096, 0, false), -EINVAL);
    ck_assert_int_eq(ad_extents_release(ex, UINT64_MAX - 4095, 4096, 0, false), -EINVAL);
    /* Right start, wrong length. */
    ck_assert_int_eq(ad_extents_release(ex, a.offset, 2 * 4096, 0, false), -ERANGE);
    /* Inside an allocated extent, and straddling two. */
    ck_assert_int_eq(ad_extents_release(ex, a.offset + 4096, 4096, 0, false), -ENOENT);
    ck_assert_int_eq(ad_extents_release(ex, a.offset + 2 * 4096, 4 * 4096, 0, false), -ENOENT);
    /* Straddling free and allocated space. */
    ck_assert_int_eq(ad_extents_release(ex, 6 * 4096, 4 * 4096, 0, false), -ENOENT);
    /* Entirely free: never allocated. */
    ck_assert_int_eq(ad_extents_release(ex, 10 * 4096, 4096, 0, false), -EALREADY);

    ad_extents_stats_t after = stats(ex);
    ck_assert_mem_eq(&before, &after, sizeof(before));
    ck_assert(ad_extents_is_valid(ex));

    /* Double release. */
    ck_assert_int_eq(ad_extents_release(ex, a.offset, a.length, 0, false), 0);
    ck_assert_int_eq(ad_extents_release(ex, a.offset, a.length, 0, false), -EALREADY);
    ck_assert(ad_extents_is_valid(ex));
    ad_extents_free(ex);
}
END_TEST

/* ---- split cases ------------------------------------------------------------------ */

START_TEST(test_split_exact_fit)
{
    ad_extents_t *ex = make(10, 0, 0);
    ck_assert_uint_eq(alloc_ok(ex, 10, 1), 0);
    ck_assert_uint_eq(stats(ex).free_extents, 0);
    ck_assert_uint_eq(stats(ex).largest_free, 0);
    release_ok(ex, 0, 10);
    ck_assert_uint_eq(stats(ex).free_extents, 1);
    ck_assert_uint_eq(stats(ex).largest_free, 10);
    ad_extents_free(ex);
}
END_TEST

START_TEST(test_split_bottom_and_top)
{
    ad_extents_t *ex = make(100, 4, 0);
    /* Large: bottom of the extent; small: top. */
    ck_assert_uint_eq(alloc_ok(ex, 10, 1), 0);
    ck_assert_uint_eq(alloc_ok(ex, 4, 1), 96);
    ck_assert_uint_eq(alloc_ok(ex, 5, 1), 10);
    ck_assert_uint_eq(alloc_ok(ex, 1, 1), 95);
    ad_extents_stats_t s = stats(ex);
    ck_assert_uint_eq(s.free_extents, 1);
    ck_assert_uint_eq(s.largest_free, 80);
    ck_assert_uint_eq(s.leased_bytes, 20);
    ad_extents_free(ex);
}
END_TEST

START_TEST(test_best_fit_prefers_smallest_then_lowest)
{
    ad_extents_t *ex = make_placed(100, 0, 0, AD_PLACE_BEST_FIT);
    for (uint64_t i = 0; i < 10; i++)
        ck_assert_uint_eq(alloc_ok(ex, 10, 1), i * 10);
    /* Holes: [10,20) size 10, [40,50)+[50,60) size 20, [80,90) size 10. */
    release_ok(ex, 10, 10);
    release_ok(ex, 40, 10);
    release_ok(ex, 50, 10);
    release_ok(ex, 80, 10);
    ck_assert_uint_eq(stats(ex).free_extents, 3);
    /* 10 fits exactly in two holes: lowest address wins. */
    ck_assert_uint_eq(alloc_ok(ex, 10, 1), 10);
    /* Next exact fit is [80, 90), even though [40, 60) comes first. */
    ck_assert_uint_eq(alloc_ok(ex, 10, 1), 80);
    /* 15 fits only in [40, 60). */
    ck_assert_uint_eq(alloc_ok(ex, 15, 1), 40);
    ad_extents_free(ex);
}
END_TEST

/* ---- merge cases ------------------------------------------------------------------ */

/* Ten one-unit leases at offsets 0..9, everything allocated. */
static ad_extents_t *make_ten(void)
{
    ad_extents_t *ex = make(10, 0, 0);
    for (uint64_t i = 0; i < 10; i++)
        ck_assert_uint_eq(alloc_ok(ex, 1, 1), i);
    ck_assert_uint_eq(stats(ex).free_extents, 0);
    return ex;
}

START_TEST(test_merge_none)
{
    ad_extents_t *ex = make_ten();
    release_ok(ex, 5, 1);
    release_ok(ex, 3, 1);
    ck_assert_uint_eq(stats(ex).free_extents, 2);
    ck_assert_uint_eq(stats(ex).largest_free, 1);
    ad_extents_free(ex);
}
END_TEST

START_TEST(test_merge_left)
{
    ad_extents_t *ex = make_ten();
    release_ok(ex, 4, 1);
    release_ok(ex, 5, 1);
    ck_assert_uint_eq(stats(ex).free_extents, 1);
    ck_assert_uint_eq(stats(ex).largest_free, 2);
    ck_assert_uint_eq(alloc_ok(ex, 2, 2), 4);
    ad_extents_free(ex);
}
END_TEST

START_TEST(test_merge_right)
{
    ad_extents_t *ex = make_ten();
    release_ok(ex, 5, 1);
    release_ok(ex, 4, 1);
    ck_assert_uint_eq(stats(ex).free_extents, 1);
    ck_assert_uint_eq(stats(ex).largest_free, 2);
    ck_assert_uint_eq(alloc_ok(ex, 2, 2), 4);
    ad_extents_free(ex);
}
END_TEST

START_TEST(test_merge_both)
{
    ad_extents_t *ex = make_ten();
    release_ok(ex, 3, 1);
    release_ok(ex, 5, 1);
    ck_assert_uint_eq(stats(ex).free_extents, 2);
    release_ok(ex, 4, 1);
    ck_assert_uint_eq(stats(ex).free_extents, 1);
    ck_assert_uint_eq(stats(ex).largest_free, 3);
    ck_assert_uint_eq(alloc_ok(ex, 3, 2), 3);
    ad_extents_free(ex);
}
END_TEST

START_TEST(test_merge_first_and_last_extent)
{
    ad_extents_t *ex = make_ten();
    release_ok(ex, 0, 1); /* no left neighbour at all */
    release_ok(ex, 9, 1); /* no right neighbour at all */
    ck_assert_uint_eq(stats(ex).free_extents, 2);
    release_ok(ex, 1, 1); /* first extent grows right */
    release_ok(ex, 8, 1); /* last extent grows left */
    ck_assert_uint_eq(stats(ex).free_extents, 2);
    ck_assert_uint_eq(stats(ex).largest_free, 2);
    for (uint64_t i = 2; i < 8; i++)
        release_ok(ex, i, 1);
    ck_assert_uint_eq(stats(ex).free_extents, 1);
    ck_assert_uint_eq(stats(ex).largest_free, 10);
    ck_assert_uint_eq(stats(ex).leased_bytes, 0);
    ad_extents_free(ex);
}
END_TEST

/* ---- placement and the fixed-heap stories ------------------------------------------- */

START_TEST(test_placement_segregates_small_and_large)
{
    /* 1000 units; small leases up to 8 units. */
    ad_extents_t *ex = make(1000, 8, 0);
    uint64_t large[5];
    for (int i = 0; i < 5; i++) {
        uint64_t s = alloc_ok(ex, 4, 1);
        ck_assert_uint_ge(s, 1000 - 4 * (uint64_t)(i + 1) * 2); /* from the top */
        large[i] = alloc_ok(ex, 100, 1);
        ck_assert_uint_eq(large[i], (uint64_t)i * 100); /* from the bottom */
        (void)alloc_ok(ex, 2, 1);
    }
    for (int i = 0; i < 5; i++)
        release_ok(ex, large[i], 100);
    ad_extents_stats_t s = stats(ex);
    /* The large leases' space plus the untouched middle is one extent. */
    ck_assert_uint_eq(s.free_extents, 1);
    ck_assert_uint_eq(s.largest_free, 1000 - 5 * 6);
    ck_assert_uint_eq(alloc_ok(ex, 500, 1), 0);
    ad_extents_free(ex);
}
END_TEST

START_TEST(test_story_free_100_then_101)
{
    /* heap_size equal to what is being allocated: 101 units. */
    ad_extents_t *ex = make(101, 0, 0);
    uint64_t a = alloc_ok(ex, 100, 1);
    release_ok(ex, a, 100);
    ck_assert_uint_eq(alloc_ok(ex, 101, 1), 0);
    ad_extent_t e;
    ck_assert_int_eq(ad_extents_alloc(ex, 1, 1, 0, &e), -ENOMEM);
    ad_extents_free(ex);

    /* And on a larger heap: exactly size - 101 stays allocatable, in one piece. */
    ex = make(256, 0, 0);
    a = alloc_ok(ex, 100, 1);
    release_ok(ex, a, 100);
    (void)alloc_ok(ex, 101, 1);
    ck_assert_uint_eq(stats(ex).free_bytes, 256 - 101);
    ck_assert_uint_eq(stats(ex).largest_free, 256 - 101);
    (void)alloc_ok(ex, 256 - 101, 1);
    ck_assert_int_eq(ad_extents_alloc(ex, 1, 1, 0, &e), -ENOMEM);
    ad_extents_free(ex);
}
END_TEST

START_TEST(test_story_free_100_then_50_50_and_rest)
{
    ad_extents_t *ex = make(160, 0, 0);
    uint64_t a = alloc_ok(ex, 100, 1);
    release_ok(ex, a, 100);
    ck_assert_uint_eq(alloc_ok(ex, 50, 1), 0);
    ck_assert_uint_eq(alloc_ok(ex, 50, 1), 50);
    ck_assert_uint_eq(alloc_ok(ex, 60, 1), 100);
    ck_assert_uint_eq(stats(ex).free_bytes, 0);
    ad_extents_free(ex);

    /* With heap_size exactly 100: 50 + 50 fill it with nothing wasted. */
    ex = make(100, 0, 0);
    a = alloc_ok(ex, 100, 1);
    release_ok(ex, a, 100);
    (void)alloc_ok(ex, 50, 1);
    (void)alloc_ok(ex, 50, 1);
    ck_assert_uint_eq(stats(ex).free_bytes, 0);
    ad_extents_free(ex);
}
END_TEST

/* ---- dirty pages, decay and punching -------------------------------------------------- */

START_TEST(test_decay_defers_punch)
{
    ad_extents_t *ex = make(100, 0, 1000);
    ad_extent_t e;
    ck_assert_int_eq(ad_extents_alloc(ex, 10, 1, 0, &e), 0);
    ck_assert(e.zeroed);
    ck_assert_int_eq(ad_extents_release(ex, e.offset, 10, 5000, false), 0);
    ck_assert_uint_eq(stats(ex).dirty_bytes, 10);
    ck_assert_uint_eq(plog.calls, 0);
    ck_assert_uint_eq(ad_extents_next_purge_ms(ex), 6000);
    ck_assert_uint_eq(ad_extents_purge(ex, 5999, false, 0), 0);
    ck_assert_uint_eq(ad_extents_purge(ex, 6000, false, 0), 10);
    ck_assert_uint_eq(plog.calls, 1);
    ck_assert_uint_eq(plog.last_offset, e.offset);
    ck_assert_uint_eq(plog.last_length, 10);
    ck_assert_uint_eq(stats(ex).dirty_bytes, 0);
    ck_assert_uint_eq(stats(ex).punched_bytes_total, 10);
    ck_assert_uint_eq(ad_extents_next_purge_ms(ex), UINT64_MAX);
    ck_assert(ad_extents_is_valid(ex));
    ad_extents_free(ex);
}
END_TEST

START_TEST(test_zero_decay_and_punch_now_punch_at_release)
{
    ad_extents_t *ex = make(100, 0, 0);
    uint64_t a = alloc_ok(ex, 10, 1);
    release_ok(ex, a, 10);
    ck_assert_uint_eq(plog.calls, 1);
    ck_assert_uint_eq(stats(ex).dirty_bytes, 0);
    ad_extents_free(ex);

    ex = make(100, 0, 1000);
    a = alloc_ok(ex, 10, 1);
    ck_assert_int_eq(ad_extents_release(ex, a, 10, 0, true), 0);
    ck_assert_uint_eq(plog.calls, 1);
    ck_assert_uint_eq(stats(ex).dirty_bytes, 0);
    ad_extents_free(ex);
}
END_TEST

START_TEST(test_same_owner_reuses_dirty_pages)
{
    ad_extents_t *ex = make(100, 0, 1000);
    ad_extent_t e;
    ck_assert_int_eq(ad_extents_alloc(ex, 10, 7, 0, &e), 0);
    ck_assert_int_eq(ad_extents_release(ex, e.offset, 10, 0, false), 0);
    ck_assert_int_eq(ad_extents_alloc(ex, 10, 7, 1, &e), 0);
    ck_assert(!e.zeroed);
    ck_assert_uint_eq(plog.calls, 0);
    ck_assert_uint_eq(stats(ex).dirty_bytes, 0);
    ck_assert(ad_extents_is_valid(ex));
    ad_extents_free(ex);
}
END_TEST

START_TEST(test_owner_change_always_punches)
{
    ad_extents_t *ex = make(100, 0, 1000);
    ad_extent_t e;
    ck_assert_int_eq(ad_extents_alloc(ex, 10, 7, 0, &e), 0);
    ck_assert_int_eq(ad_extents_release(ex, e.offset, 10, 0, false), 0);
    ck_assert_int_eq(ad_extents_alloc(ex, 10, 8, 1, &e), 0);
    ck_assert(e.zeroed);
    ck_assert_uint_eq(plog.calls, 1);
    ck_assert_uint_eq(plog.bytes, 10);
    ck_assert_uint_eq(stats(ex).dirty_bytes, 0);
    ck_assert_uint_eq(stats(ex).punched_bytes_total, 10);
    ck_assert(ad_extents_is_valid(ex));
    ad_extents_free(ex);
}
END_TEST

START_TEST(test_alloc_inside_dirty_range_splits_it)
{
    /* small_limit 3: a 2-unit lease is carved from the top of the extent. */
    ad_extents_t *ex = make(10, 3, 1000);
    ck_assert_uint_eq(alloc_ok(ex, 4, 1), 0);
    ck_assert_uint_eq(alloc_ok(ex, 6, 1), 4);
    ck_assert_int_eq(ad_extents_release(ex, 4, 6, 0, false), 0); /* dirty [4,10) */
    ck_assert_uint_eq(alloc_ok(ex, 2, 1), 8);                    /* same owner: [8,10) */
    ck_assert_uint_eq(stats(ex).dirty_bytes, 4);
    release_ok(ex, 0, 4); /* dirty [0,4) too, merged free [0,8) */
    ck_assert_uint_eq(stats(ex).dirty_bytes, 8);
    /* Another owner takes [0,5) (large, bottom): straddles both dirty ranges. */
    ck_assert_uint_eq(alloc_ok(ex, 5, 2), 0);
    ck_assert_uint_eq(plog.bytes, 5);
    ck_assert_uint_eq(stats(ex).dirty_bytes, 3);
    ad_extents_free(ex);

    /* A lease strictly inside one dirty range splits it in two. */
    ex = make(10, 0, 1000);
    ck_assert_uint_eq(alloc_ok(ex, 10, 1), 0);
    ck_assert_int_eq(ad_extents_release(ex, 0, 10, 0, false), 0);
    ck_assert_int_eq(ad_extents_claim(ex, 3, 4, 2), 0);
    ck_assert_uint_eq(stats(ex).dirty_bytes, 6);
    ck_assert_uint_eq(stats(ex).dirty_ranges, 2);
    ck_assert(ad_extents_is_valid(ex));
    ck_assert_uint_eq(ad_extents_purge(ex, 0, true, 0), 6);
    ck_assert_uint_eq(stats(ex).dirty_ranges, 0);
    ad_extents_free(ex);
}
END_TEST

START_TEST(test_failing_punch_changes_nothing)
{
    ad_extents_t *ex = make(100, 0, 1000);
    ad_extent_t e;
    ck_assert_int_eq(ad_extents_alloc(ex, 100, 1, 0, &e), 0);
    ck_assert_int_eq(ad_extents_release(ex, 0, 100, 0, false), 0);
    ad_extents_stats_t before = stats(ex);
    plog.fail_with = -EIO;
    /* Another owner cannot get the dirty pages unpunched. */
    ck_assert_int_eq(ad_extents_alloc(ex, 10, 2, 0, &e), -EIO);
    ad_extents_stats_t after = stats(ex);
    ck_assert_mem_eq(&before, &after, sizeof(before));
    /* Purge neither loops nor loses the range; it becomes due again later. */
    ck_assert_uint_eq(ad_extents_purge(ex, 5000, false, 0), 0);
    ck_assert_uint_eq(stats(ex).dirty_bytes, 100);
    ck_assert_uint_eq(ad_extents_next_purge_ms(ex), 6000);
    /* A release whose punch fails keeps its pages dirty. */
    plog.fail_with = 0;
    ck_assert_int_eq(ad_extents_alloc(ex, 10, 2, 0, &e), 0);
    plog.fail_with = -EIO;
    ck_assert_int_eq(ad_extents_release(ex, e.offset, 10, 0, true), 0);
    ck_assert_uint_eq(stats(ex).dirty_bytes, 100);
    plog.fail_with = 0;
    ck_assert_uint_eq(ad_extents_purge(ex, 0, true, 0), 100);
    ck_assert(ad_extents_is_valid(ex));
    ad_extents_free(ex);
}
END_TEST

START_TEST(test_purge_limit_and_order)
{
    ad_extents_t *ex = make(100, 0, 10);
    for (int i = 0; i < 10; i++)
        (void)alloc_ok(ex, 10, 1);
    for (uint64_t i = 0; i < 10; i++)
        ck_assert_int_eq(ad_extents_release(ex, i * 10, 10, i, false), 0);
    /* Oldest first, and only what is due. */
    ck_assert_uint_eq(ad_extents_purge(ex, 12, false, 0), 30);
    ck_assert_uint_eq(plog.last_offset, 20);
    /* A byte limit stops after the range that reaches it. */
    ck_assert_uint_eq(ad_extents_purge(ex, 0, true, 15), 20);
    ck_assert_uint_eq(stats(ex).dirty_bytes, 50);
    ck_assert(ad_extents_is_valid(ex));
    ad_extents_free(ex);
}
END_TEST

/* ---- clean placement and urgent (reclaimed) releases ----------------------------------- */

static ad_extents_t *make_clean(uint64_t units, uint64_t small_limit_units, uint64_t decay_ms,
                                ad_placement_t placement)
{
    memset(&plog, 0, sizeof(plog));
    ad_extents_config_t c = {
        .size = units,
        .granule = 1,
        .small_limit = small_limit_units,
        .decay_ms = decay_ms,
        .placement = placement,
        .prefer_clean = true,
        .punch = record_punch,
        .punch_ctx = &plog,
    };
    ad_extents_t *ex = NULL;
    ck_assert_int_eq(ad_extents_new(&c, &ex), 0);
    return ex;
}

START_TEST(test_prefer_clean_skips_foreign_dirty_pages)
{
    /* Small leases go to the top: owner 1's released lease is at [90,100). */
    ad_extents_t *ex = make_clean(100, 20, 1000, AD_PLACE_SEGREGATED);
    uint64_t a = alloc_ok(ex, 10, 1);
    ck_assert_uint_eq(a, 90);
    release_ok(ex, a, 10);
    /* Owner 2 gets the highest clean place instead, nothing punched. */
    ad_extent_t e;
    ck_assert_int_eq(ad_extents_alloc(ex, 10, 2, 0, &e), 0);
    ck_assert_uint_eq(e.offset, 80);
    ck_assert(e.zeroed);
    ck_assert_uint_eq(plog.calls, 0);
    ck_assert_uint_eq(stats(ex).dirty_bytes, 10);
    /* Owner 1 takes its own dirty pages back as they are. */
    ck_assert_int_eq(ad_extents_alloc(ex, 10, 1, 0, &e), 0);
    ck_assert_uint_eq(e.offset, 90);
    ck_assert(!e.zeroed);
    ck_assert_uint_eq(plog.calls, 0);
    ck_assert(ad_extents_is_valid(ex));
    ad_extents_free(ex);

    /* Large leases: the lowest clean place, a gap between dirty ranges. */
    ex = make_clean(100, 0, 1000, AD_PLACE_SEGREGATED);
    ck_assert_uint_eq(alloc_ok(ex, 10, 1), 0);
    ck_assert_uint_eq(alloc_ok(ex, 10, 2), 10);
    ck_assert_uint_eq(alloc_ok(ex, 10, 1), 20);
    release_ok(ex, 0, 10);
    release_ok(ex, 20, 10);
    release_ok(ex, 10, 10); /* owner 2: its own dirty range in the middle */
    ck_assert_int_eq(ad_extents_alloc(ex, 10, 2, 0, &e), 0);
    ck_assert_uint_eq(e.offset, 10);
    ck_assert(!e.zeroed);
    ck_assert_int_eq(ad_extents_alloc(ex, 15, 3, 0, &e), 0);
    ck_assert_uint_eq(e.offset, 30);
    ck_assert_uint_eq(plog.calls, 0);
    ck_assert(ad_extents_is_valid(ex));
    ad_extents_free(ex);

    /* Best fit: the smallest clean extent that fits. */
    ex = make_clean(100, 0, 1000, AD_PLACE_BEST_FIT);
    ck_assert_uint_eq(alloc_ok(ex, 10, 1), 0);
    ck_assert_uint_eq(alloc_ok(ex, 5, 2), 10);
    ck_assert_uint_eq(alloc_ok(ex, 12, 2), 15);
    ck_assert_uint_eq(alloc_ok(ex, 5, 2), 27);
    release_ok(ex, 0, 10);  /* free [0,10), dirty owner 1 */
    release_ok(ex, 15, 12); /* free [15,27), owner 2 */
    /* The best fit [0,10) and the next [15,27) hold others' pages: the
     * smallest clean extent is [32,100). */
    ck_assert_int_eq(ad_extents_alloc(ex, 10, 3, 0, &e), 0);
    ck_assert_uint_eq(e.offset, 32);
    ck_assert_uint_eq(plog.calls, 0);
    ck_assert(ad_extents_is_valid(ex));
    ad_extents_free(ex);
}
END_TEST

START_TEST(test_prefer_clean_punches_when_nothing_is_clean)
{
    ad_extents_t *ex = make_clean(20, 20, 1000, AD_PLACE_SEGREGATED);
    ck_assert_uint_eq(alloc_ok(ex, 20, 1), 0);
    release_ok(ex, 0, 20);
    ad_extent_t e;
    ck_assert_int_eq(ad_extents_alloc(ex, 5, 2, 0, &e), 0);
    ck_assert_uint_eq(e.offset, 15);
    ck_assert(e.zeroed);
    ck_assert_uint_eq(plog.bytes, 5);
    ck_assert_uint_eq(stats(ex).dirty_bytes, 15);
    ck_assert(ad_extents_is_valid(ex));
    ad_extents_free(ex);
}
END_TEST

START_TEST(test_urgent_release_and_sliced_purge)
{
    ad_extents_t *ex = make(100, 0, 1000);
    uint64_t a = alloc_ok(ex, 10, 1), b = alloc_ok(ex, 10, 1);
    ck_assert_int_eq(ad_extents_release_urgent(ex, a, 10, 50), 0);
    ck_assert_int_eq(ad_extents_release(ex, b, 10, 40, false), 0);
    ck_assert_uint_eq(plog.calls, 0);
    ck_assert_uint_eq(stats(ex).urgent_bytes, 10);
    ck_assert_uint_eq(stats(ex).dirty_bytes, 20);
    ck_assert(ad_extents_is_valid(ex));
    /* Urgent is due at once; the decay purge leaves it alone. */
    ck_assert_uint_eq(ad_extents_next_purge_ms(ex), 50);
    ck_assert_uint_eq(ad_extents_purge(ex, 50, false, 0), 0);
    /* Slices cut the range from its start; the rest is due 1 ms later. */
    ck_assert_uint_eq(ad_extents_purge_urgent(ex, 50, 4), 4);
    ck_assert_uint_eq(plog.last_offset, a);
    ck_assert_uint_eq(plog.last_length, 4);
    ck_assert_uint_eq(stats(ex).urgent_bytes, 6);
    ck_assert_uint_eq(ad_extents_next_purge_ms(ex), 51);
    ck_assert(ad_extents_is_valid(ex));
    ck_assert_uint_eq(ad_extents_purge_urgent(ex, 51, 0), 6);
    ck_assert_uint_eq(plog.last_offset, a + 4);
    ck_assert_uint_eq(stats(ex).urgent_bytes, 0);
    ck_assert_uint_eq(ad_extents_next_purge_ms(ex), 1040);
    ck_assert_uint_eq(ad_extents_purge_urgent(ex, 52, 0), 0);
    /* A forced purge takes urgent ranges too; errors as for release. */
    uint64_t c = alloc_ok(ex, 10, 2);
    ck_assert_int_eq(ad_extents_release_urgent(ex, c, 10, 60), 0);
    ck_assert_uint_eq(ad_extents_purge(ex, 60, true, 0), 20);
    ck_assert_uint_eq(stats(ex).dirty_bytes, 0);
    ck_assert_int_eq(ad_extents_release_urgent(ex, c, 10, 60), -EALREADY);
    ck_assert_int_eq(ad_extents_release_urgent(ex, 1, 10, 60), -EALREADY);
    ck_assert_int_eq(ad_extents_release_urgent(ex, 0, 0, 60), -EINVAL);
    ck_assert_int_eq(ad_extents_release_urgent(NULL, 0, 1, 60), -EINVAL);
    ck_assert_uint_eq(ad_extents_purge_urgent(NULL, 0, 0), 0);
    ck_assert(ad_extents_is_valid(ex));
    ad_extents_free(ex);
}
END_TEST

START_TEST(test_urgent_range_split_and_failing_punch)
{
    /* Another owner's lease inside an urgent range: its part is punched now,
     * the two sides stay urgent. */
    ad_extents_t *ex = make(10, 0, 1000);
    ck_assert_uint_eq(alloc_ok(ex, 10, 1), 0);
    ck_assert_int_eq(ad_extents_release_urgent(ex, 0, 10, 0), 0);
    ck_assert_int_eq(ad_extents_claim(ex, 3, 4, 2), 0);
    ck_assert_uint_eq(stats(ex).urgent_bytes, 6);
    ck_assert_uint_eq(stats(ex).dirty_ranges, 2);
    ck_assert(ad_extents_is_valid(ex));
    /* A failing punch keeps the range urgent and due again now. */
    plog.fail_with = -EIO;
    ck_assert_uint_eq(ad_extents_purge_urgent(ex, 7, 0), 0);
    ck_assert_uint_eq(stats(ex).urgent_bytes, 6);
    ck_assert(ad_extents_is_valid(ex));
    plog.fail_with = 0;
    ck_assert_uint_eq(ad_extents_purge_urgent(ex, 8, 2), 2);
    ck_assert_uint_eq(ad_extents_next_purge_ms(ex), 9);
    ck_assert_uint_eq(ad_extents_purge_urgent(ex, 9, 0), 4);
    ck_assert_uint_eq(stats(ex).dirty_bytes, 0);
    ck_assert(ad_extents_is_valid(ex));
    ad_extents_free(ex);
}
END_TEST

/* What each unit holds: the owner whose data is there, 0 once punched. */
static uint64_t content[256];

static int content_punch(void *ctx, uint64_t offset, uint64_t length)
{
    (void)ctx;
    for (uint64_t i = offset; i < offset + length; i++)
        content[i] = 0;
    return 0;
}

/* DESIGN.md section 7 with clean placement, urgent releases and sliced
 * purges mixed at random: a lease only ever holds zeros or its own owner's
 * data, and every structure stays valid. */
START_TEST(test_random_never_leaks_between_owners)
{
    memset(content, 0, sizeof(content));
    ad_extents_config_t c = {
        .size = 256,
        .granule = 1,
        .small_limit = 8,
        .decay_ms = 5,
        .placement = (ad_placement_t)(_i % 2),
        .prefer_clean = true,
        .punch = content_punch,
    };
    ad_extents_t *ex = NULL;
    ck_assert_int_eq(ad_extents_new(&c, &ex), 0);
    struct {
        uint64_t off, len, owner;
    } live[64];
    size_t n = 0;
    unsigned seed = 12345u + (unsigned)_i;
    for (uint64_t now = 0; now < 20000; now++) {
        int op = rand_r(&seed) % 10;
        if (op < 5 && n < 64) {
            uint64_t len = 1 + (uint64_t)(rand_r(&seed) % 24), owner = 1 + rand_r(&seed) % 4;
            ad_extent_t e;
            int r = ad_extents_alloc(ex, len, owner, now, &e);
            if (r == -ENOMEM)
                continue;
            ck_assert_int_eq(r, 0);
            for (uint64_t i = e.offset; i < e.offset + len; i++) {
                ck_assert(content[i] == 0 || content[i] == owner);
                if (e.zeroed)
                    ck_assert_uint_eq(content[i], 0);
                content[i] = owner; /* the client writes it all */
            }
            live[n].off = e.offset;
            live[n].len = len;
            live[n].owner = owner;
            n++;
        } else if (op < 8 && n > 0) {
            size_t k = (size_t)rand_r(&seed) % n;
            int r = op == 5 ? ad_extents_release_urgent(ex, live[k].off, live[k].len, now)
                            : ad_extents_release(ex, live[k].off, live[k].len, now, false);
            ck_assert_int_eq(r, 0);
            live[k] = live[--n];
        } else if (op == 8) {
            (void)ad_extents_purge_urgent(ex, now, 1 + (uint64_t)(rand_r(&seed) % 16));
        } else {
            (void)ad_extents_purge(ex, now, false, 0);
        }
        if (now % 64 == 0)
            ck_assert(ad_extents_is_valid(ex));
    }
    ck_assert(ad_extents_is_valid(ex));
    ad_extents_free(ex);
}
END_TEST

START_TEST(test_claim)
{
    ad_extents_t *ex = make(100, 0, 0);
    ck_assert_int_eq(ad_extents_claim(ex, 40, 10, 3), 0);
    ck_assert_int_eq(ad_extents_claim(ex, 45, 10, 3), -EBUSY);
    ck_assert_int_eq(ad_extents_claim(ex, 95, 10, 3), -EINVAL);
    ck_assert_int_eq(ad_extents_claim(ex, 0, 40, 4), 0);
    uint64_t owner = 0;
    ck_assert_int_eq(ad_extents_owner(ex, 40, &owner), 0);
    ck_assert_uint_eq(owner, 3);
    ck_assert_int_eq(ad_extents_owner(ex, 41, &owner), -ENOENT);
    ck_assert_uint_eq(stats(ex).leased_bytes, 50);
    ck_assert_uint_eq(stats(ex).free_extents, 1);
    ck_assert(ad_extents_is_valid(ex));
    release_ok(ex, 40, 10);
    release_ok(ex, 0, 40);
    ck_assert_uint_eq(stats(ex).largest_free, 100);
    ad_extents_free(ex);
}
END_TEST

START_TEST(test_fragmentation_figure)
{
    ad_extents_t *ex = make(100, 0, 0);
    for (int i = 0; i < 10; i++)
        (void)alloc_ok(ex, 10, 1);
    ck_assert(stats(ex).fragmentation == 0.0);
    release_ok(ex, 0, 10);
    release_ok(ex, 20, 10);
    release_ok(ex, 30, 10);
    /* free 30, largest 20 */
    ck_assert(stats(ex).fragmentation > 0.33 && stats(ex).fragmentation < 0.34);
    ad_extents_free(ex);
}
END_TEST

/* ---- differential test against a bitmap ------------------------------------------------- */

#define MODEL_UNITS  2048u
#define MODEL_SMALL  8u
#define MODEL_DECAY  50u
#define MODEL_OWNERS 4u
#define MODEL_OPS    100000u

typedef struct model_lease {
    uint64_t offset, length, owner;
} model_lease_t;

typedef struct model {
    unsigned char used[MODEL_UNITS];
    int dirty_owner[MODEL_UNITS]; /* -1: clean */
    uint64_t dirty_stamp[MODEL_UNITS];
    model_lease_t leases[MODEL_UNITS];
    unsigned nleases;
} model_t;

static uint64_t rng_state;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* The maximal free run the allocator must choose: best fit (smallest, lowest
 * first), or segregated (highest run for small lengths, lowest for large). */
static bool model_fit(const model_t *m, uint64_t len, ad_placement_t placement, uint64_t *ret_start,
                      uint64_t *ret_len)
{
    bool found = false;
    bool small = len <= MODEL_SMALL;
    uint64_t i = 0;
    while (i < MODEL_UNITS) {
        if (m->used[i]) {
            i++;
            continue;
        }
        uint64_t s = i;
        while (i < MODEL_UNITS && !m->used[i])
            i++;
        uint64_t run = i - s;
        bool better;
        if (placement == AD_PLACE_BEST_FIT)
            better = !found || run < *ret_len;
        else
            better = small || !found;
        if (run >= len && better) {
            found = true;
            *ret_start = s;
            *ret_len = run;
        }
    }
    return found;
}

START_TEST(test_differential_against_bitmap)
{
    static model_t m;
    memset(&m, 0, sizeof(m));
    for (unsigned i = 0; i < MODEL_UNITS; i++)
        m.dirty_owner[i] = -1;
    static unsigned char punched[MODEL_UNITS];
    ad_placement_t placement = _i % 2 ? AD_PLACE_BEST_FIT : AD_PLACE_SEGREGATED;
    ad_extents_t *ex = make_placed(MODEL_UNITS, MODEL_SMALL, MODEL_DECAY, placement);
    plog.punched = punched;
    plog.granule = 1;
    rng_state = 0x9e3779b97f4a7c15ULL ^ (uint64_t)_i;
    uint64_t now = 0;

    for (unsigned op = 0; op < MODEL_OPS; op++) {
        now += rng() % 3;
        unsigned kind = (unsigned)(rng() % 100);
        memset(punched, 0, sizeof(punched));
        if (kind < 50 || m.nleases == 0) {
            uint64_t len = (rng() % 4 == 0) ? 1 + rng() % 200 : 1 + rng() % MODEL_SMALL;
            uint64_t owner = rng() % MODEL_OWNERS;
            uint64_t fit_start = 0, fit_len = 0;
            bool fits = model_fit(&m, len, placement, &fit_start, &fit_len);
            ad_extent_t e;
            int r = ad_extents_alloc(ex, len, owner, now, &e);
            if (!fits) {
                ck_assert_int_eq(r, -ENOMEM);
            } else {
                ck_assert_int_eq(r, 0);
                uint64_t want = len <= MODEL_SMALL ? fit_start + fit_len - len : fit_start;
                ck_assert_uint_eq(e.offset, want);
                bool want_zeroed = true;
                for (uint64_t u = e.offset; u < e.offset + len; u++) {
                    ck_assert(!m.used[u]);
                    if (m.dirty_owner[u] == (int)owner)
                        want_zeroed = false;
                    else if (m.dirty_owner[u] >= 0)
                        ck_assert_msg(punched[u], "foreign dirty unit %llu not punched",
                                      (unsigned long long)u);
                    m.used[u] = 1;
                    m.dirty_owner[u] = -1;
                }
                ck_assert(e.zeroed == want_zeroed);
                m.leases[m.nleases++] = (model_lease_t){e.offset, len, owner};
            }
        } else if (kind < 90) {
            unsigned k = (unsigned)(rng() % m.nleases);
            model_lease_t l = m.leases[k];
            bool now_punch = rng() % 8 == 0;
            ck_assert_int_eq(ad_extents_release(ex, l.offset, l.length, now, now_punch), 0);
            for (uint64_t u = l.offset; u < l.offset + l.length; u++) {
                m.used[u] = 0;
                m.dirty_owner[u] = now_punch ? -1 : (int)l.owner;
                m.dirty_stamp[u] = now;
                if (now_punch)
                    ck_assert(punched[u]);
            }
            m.leases[k] = m.leases[--m.nleases];
        } else if (kind < 95) {
            /* Invalid releases change nothing, and say why. */
            uint64_t off = rng() % MODEL_UNITS, len = 1 + rng() % 16;
            if (off + len > MODEL_UNITS)
                continue;
            int want = -ENOENT;
            bool valid = false;
            for (unsigned k = 0; k < m.nleases; k++) {
                if (m.leases[k].offset == off) {
                    valid = m.leases[k].length == len;
                    want = -ERANGE;
                }
            }
            if (valid)
                continue;
            if (want == -ENOENT) {
                bool all_free = true;
                for (uint64_t u = off; u < off + len; u++)
                    all_free = all_free && !m.used[u];
                if (all_free)
                    want = -EALREADY;
            }
            ad_extents_stats_t before = stats(ex);
            ck_assert_int_eq(ad_extents_release(ex, off, len, now, false), want);
            ad_extents_stats_t after = stats(ex);
            ck_assert_mem_eq(&before, &after, sizeof(before));
        } else {
            bool force = rng() % 4 == 0;
            uint64_t expect = 0;
            for (unsigned u = 0; u < MODEL_UNITS; u++) {
                if (m.dirty_owner[u] >= 0 && (force || now - m.dirty_stamp[u] >= MODEL_DECAY)) {
                    expect++;
                    m.dirty_owner[u] = -1;
                }
            }
            ck_assert_uint_eq(ad_extents_purge(ex, now, force, 0), expect);
        }
        ck_assert_msg(ad_extents_is_valid(ex), "invalid after op %u", op);
        uint64_t dirty = 0, used = 0;
        for (unsigned u = 0; u < MODEL_UNITS; u++) {
            dirty += m.dirty_owner[u] >= 0;
            used += m.used[u];
        }
        ad_extents_stats_t s = stats(ex);
        ck_assert_uint_eq(s.dirty_bytes, dirty);
        ck_assert_uint_eq(s.leased_bytes, used);
    }
    ad_extents_free(ex);
}
END_TEST

START_TEST(test_segregated_keeps_small_out_of_low_holes)
{
    /* small_limit 4. Large leases at the bottom, a hole between them. */
    ad_extents_t *ex = make(100, 4, 0);
    ck_assert_uint_eq(alloc_ok(ex, 20, 1), 0);
    ck_assert_uint_eq(alloc_ok(ex, 20, 1), 20);
    ck_assert_uint_eq(alloc_ok(ex, 20, 1), 40);
    release_ok(ex, 20, 20); /* hole [20, 40); top [60, 100) */
    /* A small lease goes to the top even though the hole below fits better. */
    ck_assert_uint_eq(alloc_ok(ex, 4, 1), 96);
    /* A large lease takes the lowest hole that fits. */
    ck_assert_uint_eq(alloc_ok(ex, 15, 1), 20);
    /* One that does not fit there goes to the next one up, from its bottom. */
    ck_assert_uint_eq(alloc_ok(ex, 10, 1), 60);
    /* Small leases fill holes only when nothing higher fits. */
    ck_assert_uint_eq(alloc_ok(ex, 26, 1), 70);
    ck_assert_uint_eq(alloc_ok(ex, 4, 1), 36); /* the top of hole [35, 40) */
    ck_assert(ad_extents_is_valid(ex));
    ad_extents_free(ex);
}
END_TEST

static Suite *extent_suite(void)
{
    Suite *s = suite_create("extent");
    TCase *tc = tcase_create("basics");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_new_rejects_bad_config);
    tcase_add_test(tc, test_alloc_rejects_invalid_lengths);
    tcase_add_test(tc, test_release_rejects_invalid_calls);
    tcase_add_test(tc, test_split_exact_fit);
    tcase_add_test(tc, test_split_bottom_and_top);
    tcase_add_test(tc, test_best_fit_prefers_smallest_then_lowest);
    tcase_add_test(tc, test_merge_none);
    tcase_add_test(tc, test_merge_left);
    tcase_add_test(tc, test_merge_right);
    tcase_add_test(tc, test_merge_both);
    tcase_add_test(tc, test_merge_first_and_last_extent);
    tcase_add_test(tc, test_placement_segregates_small_and_large);
    tcase_add_test(tc, test_segregated_keeps_small_out_of_low_holes);
    tcase_add_test(tc, test_story_free_100_then_101);
    tcase_add_test(tc, test_story_free_100_then_50_50_and_rest);
    tcase_add_test(tc, test_decay_defers_punch);
    tcase_add_test(tc, test_zero_decay_and_punch_now_punch_at_release);
    tcase_add_test(tc, test_same_owner_reuses_dirty_pages);
    tcase_add_test(tc, test_owner_change_always_punches);
    tcase_add_test(tc, test_alloc_inside_dirty_range_splits_it);
    tcase_add_test(tc, test_failing_punch_changes_nothing);
    tcase_add_test(tc, test_purge_limit_and_order);
    tcase_add_test(tc, test_prefer_clean_skips_foreign_dirty_pages);
    tcase_add_test(tc, test_prefer_clean_punches_when_nothing_is_clean);
    tcase_add_test(tc, test_urgent_release_and_sliced_purge);
    tcase_add_test(tc, test_urgent_range_split_and_failing_punch);
    tcase_add_loop_test(tc, test_random_never_leaks_between_owners, 0, 2);
    tcase_add_test(tc, test_claim);
    tcase_add_test(tc, test_fragmentation_figure);
    suite_add_tcase(s, tc);

    TCase *diff = tcase_create("differential");
    tcase_set_timeout(diff, 240);
    /* One seed per placement (run 0 segregated, run 1 best fit), 100k ops each. */
    tcase_add_loop_test(diff, test_differential_against_bitmap, 0, 2);
    suite_add_tcase(s, diff);
    return s;
}

ARENA_TEST_MAIN(extent_suite)
