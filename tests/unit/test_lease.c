/* SPDX-License-Identifier: MIT
 *
 * test_lease.c -- the lease manager on real pool heaps (sparse memfds), and
 * the admin view over it: budget, limits, ownership, double release,
 * disconnects, the wait queue, decay, reclaim, visibility and metrics.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_main.h"
#include "ctl_client.h"
#include "admin.h"
#include "ctlword.h"
#include "lease.h"

#define MiB (1ull << 20)

static ad_leases_t *mgr;

static void make(uint64_t budget, uint64_t heap, uint64_t decay_ms, uint32_t max_leases)
{
    ad_leases_config_t c = {.budget = budget,
                            .heap_size = heap,
                            .small_limit = 4 * MiB,
                            .decay_ms = decay_ms,
                            .hugetlb = false,
                            .max_leases_per_client = max_leases};
    ck_assert_int_eq(ad_leases_new(&c, &mgr), 0);
}

static void setup(void)
{
    make(64 * MiB, 128 * MiB, 1000, 100);
}

static void teardown(void)
{
    ad_leases_free(mgr);
    mgr = NULL;
}

static uint64_t client(pid_t pid, uid_t uid, const char *name)
{
    uint64_t id = 0;
    ck_assert_int_eq(ad_leases_client_new(mgr, pid, uid, uid, name, 0, &id), 0);
    ck_assert_uint_gt(id, 0);
    return id;
}

static ad_leases_stats_t stats(void)
{
    ad_leases_stats_t s;
    ad_leases_stats(mgr, &s);
    return s;
}

START_TEST(test_new_bad_config)
{
    ad_leases_t *m = (ad_leases_t *)&m;
    ad_leases_config_t c = {.budget = 0, .heap_size = MiB};
    ck_assert_int_eq(ad_leases_new(&c, &m), -EINVAL);
    c.budget = MiB;
    c.heap_size = 0;
    ck_assert_int_eq(ad_leases_new(&c, &m), -EINVAL);
    ck_assert_ptr_eq(m, (ad_leases_t *)&m);
    ad_leases_free(NULL);
}
END_TEST

START_TEST(test_grant_and_release)
{
    uint64_t a = client(10, 1000, "a");
    ad_lease_grant_t g1, g2;
    ck_assert_int_eq(ad_leases_grant(mgr, a, 1, 0, &g1), 0);
    ck_assert_uint_eq(g1.lease_id, 1);
    ck_assert_uint_eq(g1.size, (uint64_t)sysconf(_SC_PAGESIZE));
    ck_assert(g1.zeroed);
    ck_assert_int_eq(ad_leases_grant(mgr, a, 10 * MiB, 0, &g2), 0);
    ck_assert_uint_eq(g2.lease_id, 2);
    ck_assert_uint_eq(g2.size, 10 * MiB);
    ck_assert_uint_eq(stats().leased_bytes, g1.size + g2.size);
    ck_assert_uint_eq(stats().leases, 2);
    ck_assert_uint_eq(stats().pools, 1);
    ck_assert(ad_leases_is_valid(mgr));

    ad_pool_info_t pi;
    ck_assert_int_eq(ad_leases_pool_info(mgr, a, &pi), 0);
    ck_assert_int_ge(pi.fd, 0);
    ck_assert_uint_eq(pi.heap_size, 128 * MiB);
    ck_assert_int_eq(ad_leases_pool_info(mgr, 999, &pi), -ENOENT);

    ck_assert_int_eq(ad_leases_release(mgr, a, g1.lease_id, 0), 0);
    ck_assert_int_eq(ad_leases_release(mgr, a, g2.lease_id, 0), 0);
    ck_assert_uint_eq(stats().leased_bytes, 0);
    ck_assert_uint_eq(stats().granted_total, 2);
    ck_assert_uint_eq(stats().released_total, 2);
    ck_assert(ad_leases_is_valid(mgr));
}
END_TEST

START_TEST(test_ids_only_grow)
{
    uint64_t a = client(10, 1000, "a");
    uint64_t last = 0;
    for (int i = 0; i < 100; i++) {
        ad_lease_grant_t g;
        ck_assert_int_eq(ad_leases_grant(mgr, a, 4096, 0, &g), 0);
        ck_assert_uint_gt(g.lease_id, last);
        last = g.lease_id;
        ck_assert_int_eq(ad_leases_release(mgr, a, g.lease_id, 0), 0);
    }
    uint64_t b = client(11, 1000, "b");
    ck_assert_uint_gt(b, a);
}
END_TEST

START_TEST(test_bad_sizes)
{
    uint64_t a = client(10, 1000, "a");
    ad_lease_grant_t g;
    memset(&g, 0x5a, sizeof(g));
    ad_lease_grant_t before = g;
    ck_assert_int_eq(ad_leases_grant(mgr, a, 0, 0, &g), -EINVAL);
    ck_assert_int_eq(ad_leases_grant(mgr, a, 64 * MiB + 1, 0, &g), -E2BIG);
    ck_assert_int_eq(ad_leases_grant(mgr, a, UINT64_MAX, 0, &g), -E2BIG);
    ck_assert_int_eq(ad_leases_grant(mgr, 12345, 4096, 0, &g), -ENOENT);
    ck_assert(memcmp(&g, &before, sizeof(g)) == 0);
    ck_assert_uint_eq(stats().refused_total, 2);
    /* The whole budget is one lease. */
    ck_assert_int_eq(ad_leases_grant(mgr, a, 64 * MiB, 0, &g), 0);
}
END_TEST

START_TEST(test_heap_smaller_than_budget)
{
    teardown();
    make(64 * MiB, 16 * MiB, 0, 0);
    uint64_t a = client(10, 1000, "a");
    ad_lease_grant_t g;
    ck_assert_int_eq(ad_leases_grant(mgr, a, 17 * MiB, 0, &g), -E2BIG);
    ck_assert_int_eq(ad_leases_grant(mgr, a, 16 * MiB, 0, &g), 0);
    /* The heap is full but the budget is not: no memory now. */
    ad_lease_grant_t g2;
    ck_assert_int_eq(ad_leases_grant(mgr, a, 4096, 0, &g2), -ENOMEM);
    ck_assert_int_eq(ad_leases_release(mgr, a, g.lease_id, 0), 0);
    ck_assert_int_eq(ad_leases_grant(mgr, a, 8 * MiB, 0, &g2), 0);
}
END_TEST

START_TEST(test_budget_across_uids)
{
    uint64_t a = client(10, 1000, "alice");
    uint64_t b = client(20, 2000, "bob");
    ck_assert_uint_eq(stats().pools, 2);
    ad_lease_grant_t g;
    ck_assert_int_eq(ad_leases_grant(mgr, a, 40 * MiB, 0, &g), 0);
    ck_assert_int_eq(ad_leases_grant(mgr, b, 24 * MiB, 0, &g), 0);
    /* 64 MiB leased: even a page is over the budget, in either pool. */
    ck_assert_int_eq(ad_leases_grant(mgr, b, 4096, 0, &g), -ENOMEM);
    ck_assert_int_eq(ad_leases_grant(mgr, a, 4096, 0, &g), -ENOMEM);
    char buf[256];
    ad_leases_describe_holders(mgr, buf, sizeof(buf));
    ck_assert_msg(strstr(buf, "pid 10 (alice) 40.0 MiB") != NULL, "%s", buf);
    ck_assert_msg(strstr(buf, "pid 20 (bob) 24.0 MiB") != NULL, "%s", buf);
    ck_assert_msg(strstr(buf, "alice") < strstr(buf, "bob"), "largest first: %s", buf);
    /* Different uids never share a pool fd. */
    ad_pool_info_t pa, pb;
    ck_assert_int_eq(ad_leases_pool_info(mgr, a, &pa), 0);
    ck_assert_int_eq(ad_leases_pool_info(mgr, b, &pb), 0);
    ck_assert_int_ne(pa.fd, pb.fd);
    /* Same uid shares one. */
    uint64_t a2 = client(11, 1000, "alice2");
    ad_pool_info_t pa2;
    ck_assert_int_eq(ad_leases_pool_info(mgr, a2, &pa2), 0);
    ck_assert_int_eq(pa.fd, pa2.fd);
    ck_assert(ad_leases_is_valid(mgr));
}
END_TEST

START_TEST(test_holders_top_three)
{
    uint64_t ids[5];
    for (int i = 0; i < 5; i++) {
        char name[8] = {(char)('a' + i), 0};
        ids[i] = client(100 + i, 1000, name);
        ad_lease_grant_t g;
        ck_assert_int_eq(ad_leases_grant(mgr, ids[i], (uint64_t)(i + 1) * MiB, 0, &g), 0);
    }
    char buf[512];
    ad_leases_describe_holders(mgr, buf, sizeof(buf));
    ck_assert_msg(strstr(buf, "(e)") && strstr(buf, "(d)") && strstr(buf, "(c)"), "%s", buf);
    ck_assert_msg(!strstr(buf, "(b)") && !strstr(buf, "(a)"), "%s", buf);
    /* Truncation keeps it a string. */
    char small[16];
    ad_leases_describe_holders(mgr, small, sizeof(small));
    ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
}
END_TEST

START_TEST(test_not_owner_not_found_double)
{
    uint64_t a = client(10, 1000, "a");
    uint64_t b = client(11, 1000, "b");
    ad_lease_grant_t g;
    ck_assert_int_eq(ad_leases_grant(mgr, a, MiB, 0, &g), 0);
    ck_assert_int_eq(ad_leases_release(mgr, b, g.lease_id, 0), -EPERM);
    ck_assert_int_eq(ad_leases_release(mgr, a, 999, 0), -ENOENT);
    ck_assert_int_eq(ad_leases_release(mgr, a, 0, 0), -ENOENT);
    ck_assert_int_eq(ad_leases_release(mgr, 777, g.lease_id, 0), -ENOENT);
    ck_assert_uint_eq(stats().leased_bytes, MiB);
    ck_assert_int_eq(ad_leases_release(mgr, a, g.lease_id, 0), 0);
    ck_assert_int_eq(ad_leases_release(mgr, a, g.lease_id, 0), -ENOENT);
    ck_assert_int_eq(ad_leases_release(mgr, b, g.lease_id, 0), -ENOENT);
    ck_assert_uint_eq(stats().leased_bytes, 0);
    ck_assert(ad_leases_is_valid(mgr));
}
END_TEST

START_TEST(test_limit_per_client)
{
    teardown();
    make(64 * MiB, 128 * MiB, 1000, 3);
    uint64_t a = client(10, 1000, "a");
    uint64_t b = client(11, 1000, "b");
    ad_lease_grant_t g[3], x;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(ad_leases_grant(mgr, a, 4096, 0, &g[i]), 0);
    ck_assert_int_eq(ad_leases_grant(mgr, a, 4096, 0, &x), -EDQUOT);
    /* Another client is not affected. */
    ck_assert_int_eq(ad_leases_grant(mgr, b, 4096, 0, &x), 0);
    ck_assert_int_eq(ad_leases_release(mgr, a, g[0].lease_id, 0), 0);
    ck_assert_int_eq(ad_leases_grant(mgr, a, 4096, 0, &x), 0);
    /* Reconfigure raises the limit and the budget live. */
    ad_leases_config_t c = {
        .budget = 128 * MiB, .heap_size = 1, .decay_ms = 5, .max_leases_per_client = 10};
    ad_leases_reconfigure(mgr, &c);
    ck_assert_int_eq(ad_leases_grant(mgr, a, 4096, 0, &x), 0);
    ck_assert_uint_eq(stats().budget, 128 * MiB);
    ck_assert_uint_eq(stats().heap_size, 128 * MiB); /* needs a restart */
}
END_TEST

/* max_bytes_per_uid bounds all clients of a uid together, in every pool of
 * theirs; cap.UID bounds each client. Refusals say which limit it was. */
START_TEST(test_bytes_per_uid_and_cap)
{
    teardown();
    ad_fair_rule_t rule = {.uid = 1000, .cap = 6 * MiB};
    ad_leases_config_t c = {.budget = 64 * MiB,
                            .heap_size = 128 * MiB,
                            .small_limit = 4 * MiB,
                            .decay_ms = 1000,
                            .max_leases_per_client = 100,
                            .max_bytes_per_uid = 10 * MiB,
                            .fair_rules = &rule,
                            .fair_rule_count = 1};
    ck_assert_int_eq(ad_leases_new(&c, &mgr), 0);
    uint64_t a = client(10, 1000, "a");
    uint64_t b = client(11, 1000, "b");
    uint64_t other = client(12, 2000, "other");
    ad_lease_grant_t ga, gb, x;
    char why[256];
    ck_assert_int_eq(ad_leases_limit_reason(mgr, a, MiB, why, sizeof(why)), -ENOENT);
    /* cap.1000: one lease larger than the cap, then the client's sum. */
    ck_assert_int_eq(ad_leases_grant(mgr, a, 8 * MiB, 0, &x), -E2BIG);
    ck_assert_int_eq(ad_leases_limit_reason(mgr, a, 8 * MiB, why, sizeof(why)), 0);
    ck_assert_msg(strstr(why, "more than cap.1000 (6.0 MiB)") != NULL, "%s", why);
    ck_assert_int_eq(ad_leases_grant(mgr, a, 5 * MiB, 0, &ga), 0);
    ck_assert_int_eq(ad_leases_grant(mgr, a, 2 * MiB, 0, &x), -EDQUOT);
    ck_assert_int_eq(ad_leases_limit_reason(mgr, a, 2 * MiB, why, sizeof(why)), 0);
    ck_assert_msg(strstr(why, "would pass cap.1000") != NULL, "%s", why);
    /* max_bytes_per_uid: b is under its cap, but uid 1000 would hold 11 MiB. */
    ck_assert_int_eq(ad_leases_grant(mgr, b, 4 * MiB, 0, &gb), 0);
    ck_assert_int_eq(ad_leases_grant(mgr, b, 2 * MiB, 0, &x), -EDQUOT);
    ck_assert_int_eq(ad_leases_limit_reason(mgr, b, 2 * MiB, why, sizeof(why)), 0);
    ck_assert_msg(strstr(why, "uid 1000 leases 9.0 MiB; 2.0 MiB more would pass "
                              "max_bytes_per_uid (10.0 MiB)") != NULL,
                  "%s", why);
    ck_assert_int_eq(ad_leases_grant(mgr, b, MiB, 0, &x), 0); /* exactly 10 MiB */
    /* Another uid has a cap of its own, untouched by uid 1000's leases. */
    ck_assert_int_eq(ad_leases_grant(mgr, other, 10 * MiB, 0, &x), 0);
    ck_assert_int_eq(ad_leases_grant(mgr, other, 4096, 0, &x), -EDQUOT);
    /* A release makes room; a reload lifts the cap live. */
    ck_assert_int_eq(ad_leases_release(mgr, a, ga.lease_id, 0), 0);
    ck_assert_int_eq(ad_leases_grant(mgr, a, 4 * MiB, 0, &x), 0);
    ck_assert_int_eq(ad_leases_grant(mgr, a, 2 * MiB, 0, &x), -EDQUOT); /* 11 MiB for the uid */
    c.max_bytes_per_uid = 0;
    ad_leases_reconfigure(mgr, &c);
    ck_assert_int_eq(ad_leases_grant(mgr, a, 2 * MiB, 0, &x), 0); /* a at its cap */
    ck_assert_int_eq(ad_leases_limit_reason(mgr, 999, MiB, why, sizeof(why)), -ENOENT);
    ck_assert(ad_leases_is_valid(mgr));
}
END_TEST

START_TEST(test_disconnect_returns_everything)
{
    uint64_t a = client(10, 1000, "a");
    uint64_t b = client(11, 1000, "b");
    ad_lease_grant_t g;
    for (int i = 0; i < 40; i++)
        ck_assert_int_eq(ad_leases_grant(mgr, a, (uint64_t)(i % 4 + 1) * 65536, 0, &g), 0);
    ck_assert_int_eq(ad_leases_grant(mgr, b, MiB, 0, &g), 0);
    ck_assert_int_eq(ad_leases_client_free(mgr, a, 5, true), 40);
    ck_assert_uint_eq(stats().leased_bytes, MiB);
    ck_assert_uint_eq(stats().clients, 1);
    /* Punched at once: no dirty bytes from a departed client. */
    ck_assert_uint_eq(stats().dirty_bytes, 0);
    ck_assert_uint_ge(stats().punched_total, 40 * 65536);
    ck_assert_int_eq(ad_leases_client_free(mgr, a, 5, true), -ENOENT);
    ck_assert_int_eq(ad_leases_client_free(mgr, b, 5, true), 1);
    ck_assert_uint_eq(stats().leased_bytes, 0);
    ck_assert_uint_eq(stats().leases, 0);
    ck_assert(ad_leases_is_valid(mgr));
    /* The pool stays for the uid's next client. */
    ck_assert_uint_eq(stats().pools, 1);
}
END_TEST

/* Maps a lease of the pool through its memfd, as a client does. */
static unsigned char *map_lease(uint64_t client_id, const ad_lease_grant_t *g)
{
    ad_pool_info_t pi;
    ck_assert_int_eq(ad_leases_pool_info(mgr, client_id, &pi), 0);
    void *p = mmap(NULL, g->size, PROT_READ | PROT_WRITE, MAP_SHARED, pi.fd, (off_t)g->offset);
    ck_assert_ptr_ne(p, MAP_FAILED);
    return p;
}

START_TEST(test_disconnect_punches_pages)
{
    uint64_t a = client(10, 1000, "a");
    ad_lease_grant_t g;
    ck_assert_int_eq(ad_leases_grant(mgr, a, MiB, 0, &g), 0);
    unsigned char *p = map_lease(a, &g);
    memset(p, 0x5a, g.size);
    ck_assert_int_eq(ad_leases_client_free(mgr, a, 0, true), 1);
    /* The mapping outlives the lease; its pages are gone. */
    for (size_t i = 0; i < g.size; i += 4096)
        ck_assert_uint_eq(p[i], 0);
    (void)munmap(p, g.size);
}
END_TEST

START_TEST(test_stopping_keeps_pages)
{
    uint64_t a = client(10, 1000, "a");
    ad_lease_grant_t g;
    ck_assert_int_eq(ad_leases_grant(mgr, a, MiB, 0, &g), 0);
    unsigned char *p = map_lease(a, &g);
    memset(p, 0x5a, g.size);
    uint64_t punched = stats().punched_total;
    ck_assert_int_eq(ad_leases_client_free(mgr, a, 0, false), 1);
    ck_assert_uint_eq(stats().leased_bytes, 0);
    ck_assert_uint_eq(stats().punched_total, punched);
    /* Freeing the manager (daemon exit) punches nothing either. */
    ad_leases_free(mgr);
    mgr = NULL;
    for (size_t i = 0; i < g.size; i += 4096)
        ck_assert_uint_eq(p[i], 0x5a);
    (void)munmap(p, g.size);
}
END_TEST

START_TEST(test_decay_and_purge)
{
    uint64_t a = client(10, 1000, "a");
    ad_lease_grant_t g;
    ck_assert_int_eq(ad_leases_grant(mgr, a, MiB, 100, &g), 0);
    ck_assert_uint_eq(ad_leases_next_purge_ms(mgr), UINT64_MAX);
    ck_assert_int_eq(ad_leases_release(mgr, a, g.lease_id, 100), 0);
    ck_assert_uint_eq(stats().dirty_bytes, MiB);
    ck_assert_uint_eq(ad_leases_next_purge_ms(mgr), 1100);
    ck_assert_uint_eq(ad_leases_purge(mgr, 1099), 0);
    ck_assert_uint_eq(ad_leases_purge(mgr, 1100), MiB);
    ck_assert_uint_eq(stats().dirty_bytes, 0);
    ck_assert_uint_eq(ad_leases_next_purge_ms(mgr), UINT64_MAX);
}
END_TEST

START_TEST(test_reclaim_by_uid)
{
    uint64_t a = client(10, 1000, "a");
    uint64_t b = client(11, 2000, "b");
    ad_lease_grant_t ga, gb;
    ck_assert_int_eq(ad_leases_grant(mgr, a, MiB, 0, &ga), 0);
    ck_assert_int_eq(ad_leases_grant(mgr, b, 2 * MiB, 0, &gb), 0);
    ck_assert_int_eq(ad_leases_release(mgr, a, ga.lease_id, 0), 0);
    ck_assert_int_eq(ad_leases_release(mgr, b, gb.lease_id, 0), 0);
    ck_assert_uint_eq(stats().dirty_bytes, 3 * MiB);
    ck_assert_uint_eq(ad_leases_reclaim(mgr, true, 2000, 0, 0), 2 * MiB);
    ck_assert_uint_eq(stats().dirty_bytes, MiB);
    ck_assert_uint_eq(ad_leases_reclaim(mgr, true, 3000, 0, 0), 0);
    ck_assert_uint_eq(ad_leases_reclaim(mgr, false, 0, 0, 0), MiB);
    ck_assert_uint_eq(stats().dirty_bytes, 0);
}
END_TEST

typedef struct done {
    int calls;
    void *owner[8];
    uint64_t request_id[8];
    int result[8];
    uint64_t size[8];
} done_t;

static void on_done(void *ctx, void *owner, uint64_t request_id, uint64_t size, int result,
                    const ad_lease_grant_t *grant)
{
    done_t *d = ctx;
    ck_assert_int_lt(d->calls, 8);
    d->owner[d->calls] = owner;
    d->request_id[d->calls] = request_id;
    d->result[d->calls] = result;
    d->size[d->calls] = size;
    ck_assert((result == 0) == (grant != NULL));
    if (grant)
        ck_assert_uint_ge(grant->size, size);
    d->calls++;
}

START_TEST(test_wait_queue_fifo)
{
    uint64_t a = client(10, 1000, "a");
    uint64_t b = client(11, 1000, "b");
    uint64_t c = client(12, 1000, "c");
    ad_lease_grant_t big;
    ck_assert_int_eq(ad_leases_grant(mgr, a, 60 * MiB, 0, &big), 0);
    int tb = 0, tc = 0;
    ck_assert_int_eq(ad_leases_wait(mgr, b, 8 * MiB, 1000, &tb, 1), 0);
    ck_assert_int_eq(ad_leases_wait(mgr, c, 2 * MiB, 5000, &tc, 2), 0);
    ck_assert_int_eq(ad_leases_wait(mgr, 999, MiB, 5000, &tc, 3), -ENOENT);
    ck_assert_uint_eq(ad_leases_next_deadline(mgr), 1000);
    ck_assert_uint_eq(stats().waiters, 2);
    done_t d = {0};
    /* Nothing fits yet; nothing is due. c's 2 MiB would fit in the 4 MiB
     * left, but it waits behind b (FIFO). */
    ck_assert_uint_eq(ad_leases_serve_waiters(mgr, 10, on_done, &d), 0);
    ck_assert_int_eq(d.calls, 0);
    /* b times out; c then fits. */
    ck_assert_uint_eq(ad_leases_serve_waiters(mgr, 1000, on_done, &d), 2);
    ck_assert_int_eq(d.calls, 2);
    ck_assert_ptr_eq(d.owner[0], &tb);
    ck_assert_int_eq(d.result[0], -ETIMEDOUT);
    ck_assert_uint_eq(d.size[0], 8 * MiB);
    ck_assert_ptr_eq(d.owner[1], &tc);
    ck_assert_int_eq(d.result[1], 0);
    ck_assert_uint_eq(d.request_id[1], 2);
    ck_assert_uint_eq(ad_leases_next_deadline(mgr), UINT64_MAX);
    ck_assert_uint_eq(stats().leased_bytes, 62 * MiB);
    ck_assert_uint_eq(stats().waiters, 0);
    ck_assert(ad_leases_is_valid(mgr));
}
END_TEST

START_TEST(test_wait_granted_after_release)
{
    uint64_t a = client(10, 1000, "a");
    uint64_t b = client(11, 1000, "b");
    ad_lease_grant_t big;
    ck_assert_int_eq(ad_leases_grant(mgr, a, 60 * MiB, 0, &big), 0);
    int tb = 0;
    ck_assert_int_eq(ad_leases_wait(mgr, b, 8 * MiB, UINT64_MAX, &tb, 7), 0);
    done_t d = {0};
    ck_assert_uint_eq(ad_leases_serve_waiters(mgr, 50, on_done, &d), 0);
    ck_assert_int_eq(ad_leases_release(mgr, a, big.lease_id, 60), 0);
    ck_assert_uint_eq(ad_leases_serve_waiters(mgr, 60, on_done, &d), 1);
    ck_assert_int_eq(d.result[0], 0);
    ck_assert_uint_eq(d.request_id[0], 7);
    ad_client_view_t v;
    ck_assert_int_eq(ad_leases_client_view(mgr, b, &v), 0);
    ck_assert_uint_eq(v.leased_bytes, 8 * MiB);
    ck_assert_uint_eq(v.leases, 1);
}
END_TEST

START_TEST(test_waiters_dropped_with_client)
{
    uint64_t a = client(10, 1000, "a");
    uint64_t b = client(11, 1000, "b");
    uint64_t c = client(12, 1000, "c");
    ad_lease_grant_t big;
    ck_assert_int_eq(ad_leases_grant(mgr, a, 60 * MiB, 0, &big), 0);
    int tb = 0, tc = 0;
    ck_assert_int_eq(ad_leases_wait(mgr, b, 8 * MiB, UINT64_MAX, &tb, 1), 0);
    ck_assert_int_eq(ad_leases_wait(mgr, c, 8 * MiB, UINT64_MAX, &tc, 2), 0);
    ck_assert_int_eq(ad_leases_wait(mgr, b, 8 * MiB, UINT64_MAX, &tb, 3), 0);
    ck_assert_int_eq(ad_leases_client_free(mgr, b, 0, true), 0);
    ck_assert_uint_eq(stats().waiters, 1);
    ck_assert(ad_leases_is_valid(mgr));
    ck_assert_int_eq(ad_leases_client_free(mgr, a, 0, true), 1);
    done_t d = {0};
    ck_assert_uint_eq(ad_leases_serve_waiters(mgr, 0, on_done, &d), 1);
    ck_assert_ptr_eq(d.owner[0], &tc);
    ck_assert_int_eq(d.result[0], 0);
    /* The queue keeps working after its tail was removed. */
    int tx = 0;
    ck_assert_int_eq(ad_leases_wait(mgr, c, 60 * MiB, 10, &tx, 9), 0);
    ck_assert_uint_eq(ad_leases_serve_waiters(mgr, 10, on_done, &d), 1);
    ck_assert_int_eq(d.result[1], -ETIMEDOUT);
    ck_assert(ad_leases_is_valid(mgr));
}
END_TEST

START_TEST(test_wait_queue_capped)
{
    uint64_t a = client(10, 1000, "a");
    uint64_t b = client(11, 1000, "b");
    ad_lease_grant_t big;
    ck_assert_int_eq(ad_leases_grant(mgr, a, 64 * MiB, 0, &big), 0);
    int t = 0;
    for (int i = 0; i < AD_LEASES_MAX_WAITING; i++)
        ck_assert_int_eq(ad_leases_wait(mgr, b, MiB, 100 + (uint64_t)i, &t, (uint64_t)i), 0);
    ck_assert_int_eq(ad_leases_wait(mgr, b, MiB, 5000, &t, 999), -EDQUOT);
    /* Another client still queues. */
    ck_assert_int_eq(ad_leases_wait(mgr, a, MiB, 5000, &t, 1000), 0);
    ck_assert(ad_leases_is_valid(mgr));
    /* The first one times out, which makes room for one more. */
    ck_assert_uint_eq(ad_leases_serve_waiters(mgr, 100, NULL, NULL), 1);
    ck_assert_int_eq(ad_leases_wait(mgr, b, MiB, 5000, &t, 1001), 0);
    ck_assert_int_eq(ad_leases_wait(mgr, b, MiB, 5000, &t, 1002), -EDQUOT);
    ck_assert(ad_leases_is_valid(mgr));
}
END_TEST

static int count_leases(void *ctx, const ad_lease_view_t *v)
{
    (void)v;
    (*(int *)ctx)++;
    return 0;
}

START_TEST(test_foreach)
{
    uint64_t a = client(10, 1000, "a");
    uint64_t b = client(11, 1000, "b");
    ad_lease_grant_t g;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(ad_leases_grant(mgr, a, 4096, 0, &g), 0);
    ck_assert_int_eq(ad_leases_grant(mgr, b, 4096, 0, &g), 0);
    int n = 0;
    ck_assert_int_eq(ad_leases_foreach_lease(mgr, 0, count_leases, &n), 0);
    ck_assert_int_eq(n, 4);
    n = 0;
    ck_assert_int_eq(ad_leases_foreach_lease(mgr, a, count_leases, &n), 0);
    ck_assert_int_eq(n, 3);
    n = 0;
    ck_assert_int_eq(ad_leases_foreach_lease(mgr, 999, count_leases, &n), 0);
    ck_assert_int_eq(n, 0);
}
END_TEST

/* ---- admin ---------------------------------------------------------------- */

START_TEST(test_admin_visibility)
{
    uint64_t a = client(10, 1000, "alice");
    uint64_t b = client(20, 2000, "bob");
    ad_lease_grant_t g;
    ck_assert_int_eq(ad_leases_grant(mgr, a, MiB, 0, &g), 0);
    ck_assert_int_eq(ad_leases_grant(mgr, b, 2 * MiB, 0, &g), 0);
    ck_assert_int_eq(ad_leases_release(mgr, b, g.lease_id, 0), 0);
    ck_assert_int_eq(ad_leases_grant(mgr, b, MiB, 0, &g), 0);
    ad_admin_t *adm;
    ck_assert_int_eq(ad_admin_new(mgr, "/tmp/s.sock", 0, &adm), 0);

    ad_admin_caller_t root = {.uid = 0, .privileged = true};
    ad_admin_caller_t alice = {.uid = 1000, .privileged = false};
    ad_wire_client_info_t *ci;
    size_t n;
    ck_assert_int_eq(ad_admin_list_clients(adm, &root, 50, &ci, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(ci[0].connected_ms, 50);
    free(ci);
    ck_assert_int_eq(ad_admin_list_clients(adm, &alice, 0, &ci, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(ci[0].name, "alice");
    ck_assert_uint_eq(ci[0].leased_bytes, MiB);
    free(ci);

    ad_wire_lease_info_t *li;
    ck_assert_int_eq(ad_admin_list_leases(adm, &root, 0, 0, &li, &n), 0);
    ck_assert_uint_eq(n, 2);
    free(li);
    ck_assert_int_eq(ad_admin_list_leases(adm, &alice, 0, 0, &li, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(li[0].client_id, a);
    free(li);
    ck_assert_int_eq(ad_admin_list_leases(adm, &alice, b, 0, &li, &n), -ENOENT);
    ck_assert_int_eq(ad_admin_list_leases(adm, &root, b, 0, &li, &n), 0);
    ck_assert_uint_eq(n, 1);
    free(li);

    /* Reclaim: alice may not touch bob's pool; root may. */
    uint64_t bytes = 123;
    ck_assert_int_eq(ad_admin_reclaim(adm, &alice, 0, b, 0, &bytes), -EPERM);
    ck_assert_uint_eq(bytes, 123);
    ck_assert_int_eq(ad_admin_reclaim(adm, &alice, 0, 0, 0, &bytes), 0);
    ck_assert_uint_eq(bytes, 0); /* alice's pool has nothing dirty */
    ck_assert_int_eq(ad_admin_reclaim(adm, &root, 0, 0, 0, &bytes), 0);
    ck_assert_uint_ge(bytes, MiB);
    ck_assert_int_eq(ad_admin_reclaim(adm, &root, 0, 9999, 0, &bytes), -ENOENT);

    /* Privilege: root, the daemon's uid, the admin group. */
    ck_assert(ad_admin_is_privileged(adm, 0, 5, NULL, 0));
    ck_assert(ad_admin_is_privileged(adm, geteuid(), 5, NULL, 0));
    uid_t other = geteuid() == 4242 ? 4243 : 4242;
    ck_assert(!ad_admin_is_privileged(adm, other, 777, NULL, 0));
    ad_admin_set_group(adm, true, 777);
    ck_assert(ad_admin_is_privileged(adm, other, 777, NULL, 0));
    gid_t groups[] = {1, 2, 777};
    ck_assert(ad_admin_is_privileged(adm, other, 5, groups, 3));
    ck_assert(!ad_admin_is_privileged(adm, other, 5, groups, 2));
    ad_admin_set_group(adm, false, 0);
    ck_assert(!ad_admin_is_privileged(adm, other, 777, NULL, 0));

    ad_wire_status_t st;
    ad_admin_counters(adm)->protocol_errors_total = 3;
    ad_admin_status(adm, 1234, &st);
    ck_assert_uint_eq(st.uptime_ms, 1234);
    ck_assert_uint_eq(st.leased_bytes, 2 * MiB);
    ck_assert_uint_eq(st.clients, 2);
    ck_assert_uint_eq(st.pools, 2);
    ck_assert_uint_eq(st.protocol_errors_total, 3);
    ck_assert_str_eq(st.socket_path, "/tmp/s.sock");
    ad_admin_free(adm);
}
END_TEST

/* Every sample line's family has # HELP and # TYPE before it. */
static void check_exposition(const char *text)
{
    const char *line = text;
    while (*line) {
        const char *end = strchr(line, '\n');
        ck_assert_msg(end != NULL, "last line not terminated");
        if (line[0] != '#') {
            char name[128];
            size_t k = 0;
            while (line + k < end && line[k] != '{' && line[k] != ' ' && k < sizeof(name) - 1) {
                name[k] = line[k];
                k++;
            }
            name[k] = '\0';
            char help[160], type[160];
            (void)snprintf(help, sizeof(help), "# HELP %s ", name);
            (void)snprintf(type, sizeof(type), "# TYPE %s ", name);
            const char *h = strstr(text, help), *t = strstr(text, type);
            ck_assert_msg(h && h < line, "no HELP before %s", name);
            ck_assert_msg(t && t < line, "no TYPE before %s", name);
        }
        line = end + 1;
    }
}

/* The live figure a client writes in its control region header reaches the
 * view and the admin listing, cut to what the client leases: a client that
 * scribbles a larger number only misleads its own line. */
START_TEST(test_live_bytes_clamped_to_leased)
{
    uint64_t a = client(10, 1000, "alice");
    size_t region_len;
    void *region = ctl_client_map(mgr, a, &region_len);
    ad_client_view_t v;
    ck_assert_int_eq(ad_leases_client_view(mgr, a, &v), 0);
    ck_assert_uint_eq(v.live_bytes, 0); /* never said */
    arena__ctlword_publish_live(region, 3 * MiB);
    ck_assert_int_eq(ad_leases_client_view(mgr, a, &v), 0);
    ck_assert_uint_eq(v.live_bytes, 0); /* leases nothing: shows nothing */
    ad_lease_grant_t g;
    ck_assert_int_eq(ad_leases_grant(mgr, a, 4 * MiB, 0, &g), 0);
    ck_assert_int_eq(ad_leases_client_view(mgr, a, &v), 0);
    ck_assert_uint_eq(v.live_bytes, 3 * MiB);
    arena__ctlword_publish_live(region, UINT64_MAX);
    ck_assert_int_eq(ad_leases_client_view(mgr, a, &v), 0);
    ck_assert_uint_eq(v.live_bytes, 4 * MiB);

    ad_admin_t *adm;
    ck_assert_int_eq(ad_admin_new(mgr, "/tmp/s.sock", 0, &adm), 0);
    ad_admin_caller_t root = {.uid = 0, .privileged = true};
    ad_wire_client_info_t *ci;
    size_t n;
    arena__ctlword_publish_live(region, MiB + 1);
    ck_assert_int_eq(ad_admin_list_clients(adm, &root, 0, &ci, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(ci[0].live_bytes, MiB + 1);
    ck_assert_uint_eq(ci[0].leased_bytes, 4 * MiB);
    free(ci);
    char *text = NULL;
    ck_assert_int_eq(ad_admin_metrics(adm, &root, 0, &text), 0);
    ck_assert_ptr_nonnull(strstr(text, "# TYPE arenad_client_live_bytes gauge\n"));
    char want[160];
    (void)snprintf(want, sizeof(want),
                   "arenad_client_live_bytes{client_id=\"%llu\",pid=\"10\",uid=\"1000\","
                   "name=\"alice\"} %llu\n",
                   (unsigned long long)a, (unsigned long long)(MiB + 1));
    ck_assert_msg(strstr(text, want) != NULL, "want %s in\n%s", want, text);
    free(text);
    ad_admin_free(adm);
    ck_assert_int_eq(munmap(region, region_len), 0);
}
END_TEST

START_TEST(test_admin_metrics)
{
    uint64_t a = client(10, 1000, "we\"ird\\na\nme");
    (void)client(20, 2000, "bob");
    ad_lease_grant_t g;
    ck_assert_int_eq(ad_leases_grant(mgr, a, MiB, 0, &g), 0);
    ad_admin_t *adm;
    ck_assert_int_eq(ad_admin_new(mgr, "/tmp/s.sock", 0, &adm), 0);
    ad_admin_caller_t root = {.uid = 0, .privileged = true};
    char *text = NULL;
    ck_assert_int_eq(ad_admin_metrics(adm, &root, 10, &text), 0);
    check_exposition(text);
    ck_assert_ptr_nonnull(strstr(text, "# TYPE arenad_budget_bytes gauge\n"));
    ck_assert_ptr_nonnull(strstr(text, "arenad_budget_bytes 67108864\n"));
    ck_assert_ptr_nonnull(strstr(text, "arenad_leased_bytes 1048576\n"));
    ck_assert_ptr_nonnull(strstr(text, "# TYPE arenad_leases_granted_total counter\n"));
    ck_assert_ptr_nonnull(strstr(text, "arenad_leases_granted_total 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "arenad_clients 2\n"));
    /* Nothing adopted: nothing held for a previous daemon's clients. */
    ck_assert_ptr_nonnull(
        strstr(text, "# TYPE arenad_restart_held_bytes gauge\narenad_restart_held_bytes 0\n"));
    ck_assert_ptr_nonnull(strstr(text, "arenad_fragmentation_ratio "));
    ck_assert_ptr_nonnull(strstr(text, "arenad_largest_free_bytes "));
    ck_assert_ptr_nonnull(strstr(text, "arenad_dirty_bytes "));
    ck_assert_ptr_nonnull(strstr(text, "arenad_resident_bytes "));
    ck_assert_msg(strstr(text, "arenad_client_leased_bytes{client_id=\"1\",pid=\"10\","
                               "uid=\"1000\",name=\"we\\\"ird\\\\na\\nme\"} 1048576\n"),
                  "escaped label missing:\n%s", text);
    ck_assert_ptr_nonnull(strstr(text, "name=\"bob\"} 0\n"));
    free(text);

    /* An unprivileged caller sees only its own uid's clients. */
    ad_admin_caller_t bob = {.uid = 2000, .privileged = false};
    ck_assert_int_eq(ad_admin_metrics(adm, &bob, 10, &text), 0);
    check_exposition(text);
    ck_assert_ptr_null(strstr(text, "pid=\"10\""));
    ck_assert_ptr_nonnull(strstr(text, "name=\"bob\""));
    free(text);
    ad_admin_free(adm);
}
END_TEST

static Suite *lease_suite(void)
{
    Suite *s = suite_create("lease");
    TCase *tc = tcase_create("leases");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_new_bad_config);
    tcase_add_test(tc, test_grant_and_release);
    tcase_add_test(tc, test_ids_only_grow);
    tcase_add_test(tc, test_bad_sizes);
    tcase_add_test(tc, test_heap_smaller_than_budget);
    tcase_add_test(tc, test_budget_across_uids);
    tcase_add_test(tc, test_holders_top_three);
    tcase_add_test(tc, test_not_owner_not_found_double);
    tcase_add_test(tc, test_limit_per_client);
    tcase_add_test(tc, test_bytes_per_uid_and_cap);
    tcase_add_test(tc, test_disconnect_returns_everything);
    tcase_add_test(tc, test_disconnect_punches_pages);
    tcase_add_test(tc, test_stopping_keeps_pages);
    tcase_add_test(tc, test_decay_and_purge);
    tcase_add_test(tc, test_reclaim_by_uid);
    tcase_add_test(tc, test_wait_queue_fifo);
    tcase_add_test(tc, test_wait_granted_after_release);
    tcase_add_test(tc, test_waiters_dropped_with_client);
    tcase_add_test(tc, test_wait_queue_capped);
    tcase_add_test(tc, test_foreach);
    suite_add_tcase(s, tc);

    tc = tcase_create("admin");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_admin_visibility);
    tcase_add_test(tc, test_live_bytes_clamped_to_leased);
    tcase_add_test(tc, test_admin_metrics);
    suite_add_tcase(s, tc);
    return s;
}

ARENA_TEST_MAIN(lease_suite)
