/* SPDX-License-Identifier: MIT
 *
 * test_heapmap.c -- the daemon's heap map: merging extents under a cap
 * (neighbours of one state and client first, then equal cells that keep
 * their dominant state, always tiling the same range, on granule bounds), a
 * seeded random check of those rules, and maps built from a real lease
 * manager: small leases at the top, a large one at the bottom, a released
 * lease dirty, a parked one parked, exact figures when merged, and who may
 * see which uid's pool.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_main.h"
#include "ctl_client.h"
#include "admin.h"
#include "ctlword.h"
#include "heapmap.h"
#include "lease.h"

#define MiB (1ull << 20)

static ad_wire_map_extent_t X(uint64_t offset, uint64_t length, uint32_t state, uint64_t client)
{
    return (ad_wire_map_extent_t){offset, length, state, client};
}

/* The n extents tile [0, size) in order, none empty. */
static void assert_tiles(const ad_wire_map_extent_t *e, size_t n, uint64_t size)
{
    uint64_t at = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_eq(e[i].offset, at);
        ck_assert_uint_gt(e[i].length, 0);
        at += e[i].length;
    }
    ck_assert_uint_eq(at, size);
}

/* ---- coalescing ---------------------------------------------------------------- */

START_TEST(test_coalesce_leaves_a_map_under_the_cap)
{
    ad_wire_map_extent_t e[3] = {X(0, 4, AD_WIRE_MAP_LEASED, 1), X(4, 4, AD_WIRE_MAP_LEASED, 1),
                                 X(8, 8, AD_WIRE_MAP_FREE, 0)};
    ad_wire_map_extent_t spare[3];
    /* Two leases of one client side by side stay two while there is room. */
    ck_assert_uint_eq(ad_heapmap_coalesce(e, 3, 3, 1, spare), 3);
    ck_assert_uint_eq(e[1].offset, 4);
    ck_assert_uint_eq(e[1].length, 4);
}
END_TEST

START_TEST(test_coalesce_merges_equal_neighbours_first)
{
    ad_wire_map_extent_t e[5] = {X(0, 2, AD_WIRE_MAP_LEASED, 1), X(2, 2, AD_WIRE_MAP_LEASED, 1),
                                 X(4, 1, AD_WIRE_MAP_LEASED, 2), X(5, 1, AD_WIRE_MAP_DIRTY, 0),
                                 X(6, 10, AD_WIRE_MAP_DIRTY, 0)};
    ad_wire_map_extent_t spare[3];
    size_t n = ad_heapmap_coalesce(e, 5, 3, 1, spare);
    /* Exact: no cell was needed, so the one-unit lease of client 2 stays. */
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(e[0].length, 4);
    ck_assert_uint_eq(e[0].client_id, 1);
    ck_assert_uint_eq(e[1].offset, 4);
    ck_assert_uint_eq(e[1].client_id, 2);
    ck_assert_uint_eq(e[2].state, AD_WIRE_MAP_DIRTY);
    ck_assert_uint_eq(e[2].length, 11);
    assert_tiles(e, n, 16);
}
END_TEST

START_TEST(test_coalesce_cells_keep_their_dominant_state)
{
    ad_wire_map_extent_t e[6] = {X(0, 3, AD_WIRE_MAP_LEASED, 1), X(3, 1, AD_WIRE_MAP_FREE, 0),
                                 X(4, 1, AD_WIRE_MAP_PARKED, 2), X(5, 1, AD_WIRE_MAP_FREE, 0),
                                 X(6, 1, AD_WIRE_MAP_PARKED, 2), X(7, 9, AD_WIRE_MAP_FREE, 0)};
    ad_wire_map_extent_t spare[4];
    size_t n = ad_heapmap_coalesce(e, 6, 4, 1, spare);
    /* Cells of 4: [0,4) is mostly client 1's; [4,8) a tie of parked and
     * free goes to the lower address; the rest is free and merges. */
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(e[0].state, AD_WIRE_MAP_LEASED);
    ck_assert_uint_eq(e[0].length, 4);
    ck_assert_uint_eq(e[1].state, AD_WIRE_MAP_PARKED);
    ck_assert_uint_eq(e[1].client_id, 2);
    ck_assert_uint_eq(e[1].length, 4);
    ck_assert_uint_eq(e[2].state, AD_WIRE_MAP_FREE);
    ck_assert_uint_eq(e[2].length, 8);
    assert_tiles(e, n, 16);
}
END_TEST

START_TEST(test_coalesce_cells_are_whole_granules)
{
    /* 64 units of alternating leases and free space, granule 4, cap 5: a
     * cell of ceil(64 / 5) = 13 units is rounded up to 16. */
    ad_wire_map_extent_t e[16];
    for (unsigned i = 0; i < 16; i++)
        e[i] = X(i * 4, 4, i % 2 ? AD_WIRE_MAP_FREE : AD_WIRE_MAP_LEASED, i % 2 ? 0 : 7);
    ad_wire_map_extent_t spare[5];
    size_t n = ad_heapmap_coalesce(e, 16, 5, 4, spare);
    ck_assert_uint_le(n, 5);
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_eq(e[i].offset % 16, 0);
        ck_assert(i + 1 == n || e[i].length % 16 == 0);
    }
    assert_tiles(e, n, 64);
}
END_TEST

START_TEST(test_coalesce_random_tilings)
{
    srand(4242);
    enum { MAX = 3000 };
    static ad_wire_map_extent_t e[MAX], spare[MAX];
    for (int round = 0; round < 300; round++) {
        uint64_t granule = 1ull << (rand() % 4);
        size_t count = 1 + (size_t)(rand() % MAX);
        uint64_t at = 0;
        for (size_t i = 0; i < count; i++) {
            uint64_t len = granule * (1 + (uint64_t)(rand() % 50));
            uint32_t state = 1 + (uint32_t)(rand() % 5);
            uint64_t client = state == AD_WIRE_MAP_LEASED || state == AD_WIRE_MAP_PARKED
                                  ? 1 + (uint64_t)(rand() % 4)
                                  : 0;
            e[i] = X(at, len, state, client);
            at += len;
        }
        size_t cap = 1 + (size_t)(rand() % 200);
        size_t n = ad_heapmap_coalesce(e, count, cap, granule, spare);
        ck_assert_uint_le(n, count > cap ? cap : count);
        assert_tiles(e, n, at);
        for (size_t i = 0; i < n; i++) {
            ck_assert_uint_eq(e[i].offset % granule, 0);
            ck_assert(e[i].state >= AD_WIRE_MAP_FREE && e[i].state <= AD_WIRE_MAP_HELD);
            if (count > cap && i > 0)
                ck_assert(e[i - 1].state != e[i].state || e[i - 1].client_id != e[i].client_id);
        }
    }
}
END_TEST

/* ---- maps of a lease manager ------------------------------------------------------ */

static ad_leases_t *mgr;

static void setup(void)
{
    ad_leases_config_t c = {.budget = 64 * MiB,
                            .heap_size = 128 * MiB,
                            .small_limit = 4 * MiB,
                            .decay_ms = 60000,
                            .max_leases_per_client = 100};
    ck_assert_int_eq(ad_leases_new(&c, &mgr), 0);
}

static void teardown(void)
{
    ad_leases_free(mgr);
    mgr = NULL;
}

static uint64_t client(uid_t uid)
{
    uint64_t id = 0;
    ck_assert_int_eq(ad_leases_client_new(mgr, getpid(), uid, uid, "t", 0, &id), 0);
    return id;
}

static ad_lease_grant_t grant(uint64_t id, uint64_t size)
{
    ad_lease_grant_t g;
    ck_assert_int_eq(ad_leases_grant(mgr, id, size, 1, &g), 0);
    return g;
}

/* Client a: three 1 MiB leases (the second released, the third parked);
 * client b: one 32 MiB lease. */
static void layout(uint64_t *ret_a, uint64_t *ret_b)
{
    uint64_t a = client(1000), b = client(1000);
    ad_lease_grant_t s1 = grant(a, MiB), s2 = grant(a, MiB), s3 = grant(a, MiB);
    ad_lease_grant_t big = grant(b, 32 * MiB);
    ck_assert_uint_eq(s1.offset, 127 * MiB); /* small leases from the top */
    ck_assert_uint_eq(s2.offset, 126 * MiB);
    ck_assert_uint_eq(s3.offset, 125 * MiB);
    ck_assert_uint_eq(big.offset, 0); /* large ones from the bottom */
    ck_assert_int_eq(ad_leases_release(mgr, a, s2.lease_id, 2), 0);
    ctl_client_park(mgr, a, &s3); /* as the client would */
    *ret_a = a;
    *ret_b = b;
}

START_TEST(test_build_shows_the_layout)
{
    uint64_t a, b;
    layout(&a, &b);
    (void)client(2000); /* another uid's pool, not asked for */
    ad_wire_map_t m;
    ck_assert_int_eq(ad_heapmap_build(mgr, false, 1000, 100, &m), 0);
    ck_assert_uint_eq(m.count, 1);
    ck_assert_uint_eq(m.pools_omitted, 0);
    const ad_wire_map_pool_t *p = &m.pools[0];
    ck_assert_uint_eq(p->uid, 1000);
    ck_assert_uint_eq(p->heap_size, 128 * MiB);
    ck_assert(!p->coalesced);
    ck_assert_uint_eq(p->count, 5);
    ck_assert_uint_eq(p->extents_total, 5);
    const ad_wire_map_extent_t want[5] = {
        X(0, 32 * MiB, AD_WIRE_MAP_LEASED, b),    X(32 * MiB, 93 * MiB, AD_WIRE_MAP_FREE, 0),
        X(125 * MiB, MiB, AD_WIRE_MAP_PARKED, a), X(126 * MiB, MiB, AD_WIRE_MAP_DIRTY, 0),
        X(127 * MiB, MiB, AD_WIRE_MAP_LEASED, a),
    };
    for (size_t i = 0; i < 5; i++) {
        ck_assert_uint_eq(p->extents[i].offset, want[i].offset);
        ck_assert_uint_eq(p->extents[i].length, want[i].length);
        ck_assert_uint_eq(p->extents[i].state, want[i].state);
        ck_assert_uint_eq(p->extents[i].client_id, want[i].client_id);
    }
    ck_assert_uint_eq(p->leased_bytes, 33 * MiB);
    ck_assert_uint_eq(p->parked_bytes, MiB);
    ck_assert_uint_eq(p->dirty_bytes, MiB);
    ck_assert_uint_eq(p->free_bytes, 93 * MiB);
    ck_assert_uint_eq(p->held_bytes, 0);
    ck_assert_uint_eq(p->largest_free, 93 * MiB);
    ad_heapmap_clear(&m);
    ad_heapmap_clear(&m); /* harmless twice */

    /* Every pool: both uids, in uid order. */
    ck_assert_int_eq(ad_heapmap_build(mgr, true, 0, 100, &m), 0);
    ck_assert_uint_eq(m.count, 2);
    ck_assert_uint_eq(m.pools[1].uid, 2000);
    ck_assert_uint_eq(m.pools[1].count, 1);
    ck_assert_uint_eq(m.pools[1].extents[0].state, AD_WIRE_MAP_FREE);
    ad_heapmap_clear(&m);

    ck_assert_int_eq(ad_heapmap_build(mgr, false, 3000, 100, &m), -ENOENT);
    ck_assert_int_eq(ad_heapmap_build(mgr, false, 1000, 0, &m), -EINVAL);
}
END_TEST

START_TEST(test_build_under_a_cap_keeps_exact_figures)
{
    uint64_t a, b;
    layout(&a, &b);
    ad_wire_map_t m;
    ck_assert_int_eq(ad_heapmap_build(mgr, false, 1000, 3, &m), 0);
    const ad_wire_map_pool_t *p = &m.pools[0];
    ck_assert(p->coalesced);
    ck_assert_uint_le(p->count, 3);
    ck_assert_uint_eq(p->extents_total, 5);
    assert_tiles(p->extents, p->count, 128 * MiB);
    ck_assert_uint_eq(p->leased_bytes, 33 * MiB);
    ck_assert_uint_eq(p->parked_bytes, MiB);
    ck_assert_uint_eq(p->dirty_bytes, MiB);
    ck_assert_uint_eq(p->free_bytes, 93 * MiB);
    ad_heapmap_clear(&m);

    /* More pools than the cap: the first ones, the rest counted. */
    (void)client(2000);
    (void)client(3000);
    ck_assert_int_eq(ad_heapmap_build(mgr, true, 0, 2, &m), 0);
    ck_assert_uint_eq(m.count, 2);
    ck_assert_uint_eq(m.pools_omitted, 1);
    ck_assert_uint_eq(m.pools[0].count, 1);
    ad_heapmap_clear(&m);
}
END_TEST

START_TEST(test_admin_map_visibility)
{
    uint64_t a, b;
    layout(&a, &b);
    (void)client(2000);
    ad_admin_t *adm = NULL;
    ck_assert_int_eq(ad_admin_new(mgr, "/tmp/s.sock", 0, &adm), 0);
    ad_wire_map_t m;
    ad_admin_caller_t user = {.uid = 2000, .privileged = false};
    ck_assert_int_eq(ad_admin_map(adm, &user, true, 1000, 100, &m), -EPERM);
    /* Without a uid, a user sees the pool of its own uid only. */
    ck_assert_int_eq(ad_admin_map(adm, &user, false, 0, 100, &m), 0);
    ck_assert_uint_eq(m.count, 1);
    ck_assert_uint_eq(m.pools[0].uid, 2000);
    ad_heapmap_clear(&m);
    ad_admin_caller_t admin = {.uid = 2000, .privileged = true};
    ck_assert_int_eq(ad_admin_map(adm, &admin, true, 1000, 100, &m), 0);
    ck_assert_uint_eq(m.pools[0].leased_bytes, 33 * MiB);
    ad_heapmap_clear(&m);
    ck_assert_int_eq(ad_admin_map(adm, &admin, false, 0, 100, &m), 0);
    ck_assert_uint_eq(m.count, 2);
    ad_heapmap_clear(&m);
    ck_assert_int_eq(ad_admin_map(adm, &admin, true, 4242, 100, &m), -ENOENT);
    ad_admin_free(adm);
}
END_TEST

static Suite *heapmap_suite(void)
{
    Suite *s = suite_create("heapmap");
    TCase *tc = tcase_create("coalesce");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_coalesce_leaves_a_map_under_the_cap);
    tcase_add_test(tc, test_coalesce_merges_equal_neighbours_first);
    tcase_add_test(tc, test_coalesce_cells_keep_their_dominant_state);
    tcase_add_test(tc, test_coalesce_cells_are_whole_granules);
    tcase_add_test(tc, test_coalesce_random_tilings);
    suite_add_tcase(s, tc);

    tc = tcase_create("build");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_build_shows_the_layout);
    tcase_add_test(tc, test_build_under_a_cap_keeps_exact_figures);
    tcase_add_test(tc, test_admin_map_visibility);
    suite_add_tcase(s, tc);
    return s;
}

ARENA_TEST_MAIN(heapmap_suite)
