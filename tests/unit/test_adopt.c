/* SPDX-License-Identifier: MIT
 *
 * test_adopt.c -- adoption after a restart, in the lease manager and the
 * ledger, on real memfds: a "previous daemon" (one manager) leases and
 * writes, a "new daemon" (a second manager) adopts its pool, from a client
 * (nothing known) or with the ledger (orphans), takes claims, refuses bad
 * ones, and frees what nobody claimed when the grace period ends -- with
 * the pages of claimed extents intact and those of unclaimed ones punched.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ledger.h"
#include "lease.h"
#include "restart.h"

#define MiB   ((uint64_t)1 << 20)
#define GRACE 1000u

static ad_leases_t *old_m, *new_m;

static ad_leases_t *manager(void)
{
    ad_leases_config_t c = {.budget = 64 * MiB,
                            .heap_size = 256 * MiB, /* room: only the budget binds */
                            .small_limit = 4 * MiB,
                            .decay_ms = 0,
                            .restart_grace_ms = GRACE};
    ad_leases_t *m = NULL;
    ck_assert_int_eq(ad_leases_new(&c, &m), 0);
    return m;
}

static void setup(void)
{
    old_m = manager();
    new_m = manager();
}

static void teardown(void)
{
    ad_leases_free(old_m);
    ad_leases_free(new_m);
}

/* The old daemon's pool fd (dup'ed) and two written leases of a client. */
static int old_pool(ad_lease_grant_t *a, ad_lease_grant_t *b)
{
    uint64_t id;
    ck_assert_int_eq(ad_leases_client_new(old_m, 1, getuid(), getgid(), "old", 0, &id), 0);
    ck_assert_int_eq(ad_leases_grant(old_m, id, MiB, 0, a), 0);
    ck_assert_int_eq(ad_leases_grant(old_m, id, 2 * MiB, 0, b), 0);
    ad_pool_info_t info;
    ck_assert_int_eq(ad_leases_pool_info(old_m, id, &info), 0);
    int fd = fcntl(info.fd, F_DUPFD_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    const ad_lease_grant_t *g[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        char *p =
            mmap(NULL, g[i]->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)g[i]->offset);
        ck_assert_ptr_ne(p, MAP_FAILED);
        memset(p, 0x11 * (i + 1), g[i]->size);
        (void)munmap(p, g[i]->size);
    }
    return fd;
}

static unsigned char byte_at(int fd, uint64_t off)
{
    unsigned char c = 0xee;
    ck_assert_int_eq(pread(fd, &c, 1, (off_t)off), 1);
    return c;
}

START_TEST(test_pool_from_a_client)
{
    ad_lease_grant_t a, b;
    int fd = old_pool(&a, &b);
    int keep = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    uint64_t c1;
    ck_assert_int_eq(ad_leases_client_reattach(new_m, 2, getuid(), getgid(), "c", fd, 100, &c1), 0);
    ck_assert_uint_eq(ad_leases_grace_left(new_m, c1, 100), GRACE);
    /* Nothing is known to be free: no grants during the grace period. */
    ad_lease_grant_t g;
    ck_assert_int_eq(ad_leases_grant(new_m, c1, MiB, 100, &g), -ENOMEM);
    /* Claims: good, overlapping, misaligned, outside. */
    ck_assert_int_eq(ad_leases_claim(new_m, c1, a.offset, a.size, 100, &g), 0);
    ck_assert_int_eq(g.size, a.size);
    ck_assert(!g.zeroed);
    ck_assert_int_eq(ad_leases_claim(new_m, c1, a.offset, 4096, 100, &g), -EBUSY);
    ck_assert_int_eq(ad_leases_claim(new_m, c1, b.offset + 1, 4096, 100, &g), -EINVAL);
    ck_assert_int_eq(ad_leases_claim(new_m, c1, 256 * MiB, 4096, 100, &g), -EINVAL);
    ck_assert_int_eq(ad_leases_claim(new_m, c1, 0, 0, 100, &g), -EINVAL);
    ck_assert(ad_leases_is_valid(new_m));
    /* The same file again from another client: found, not adopted twice. */
    uint64_t c2;
    int again = fcntl(keep, F_DUPFD_CLOEXEC, 0);
    ck_assert_int_eq(ad_leases_client_reattach(new_m, 3, getuid(), getgid(), "c2", again, 100, &c2),
                     0);
    ad_leases_stats_t st;
    ad_leases_stats(new_m, &st);
    ck_assert_uint_eq(st.pools, 1);
    /* Another uid may not have it. */
    uint64_t c3;
    again = fcntl(keep, F_DUPFD_CLOEXEC, 0);
    ck_assert_int_eq(
        ad_leases_client_reattach(new_m, 4, getuid() + 1, getgid(), "x", again, 100, &c3), -EPERM);

    /* The grace period ends: b (unclaimed) is punched, a is intact, and
     * the pool grants again, never over a. */
    ck_assert_uint_eq(ad_leases_next_purge_ms(new_m), 100 + GRACE);
    (void)ad_leases_purge(new_m, 100 + GRACE);
    ck_assert_uint_eq(ad_leases_grace_left(new_m, c1, 100 + GRACE), 0);
    ck_assert_uint_eq(byte_at(keep, a.offset), 0x11);
    ck_assert_uint_eq(byte_at(keep, b.offset), 0);
    ck_assert_int_eq(ad_leases_claim(new_m, c2, b.offset, b.size, 100 + GRACE, &g), -ESTALE);
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(ad_leases_grant(new_m, c2, 4 * MiB, 100 + GRACE, &g), 0);
        ck_assert(g.offset + g.size <= a.offset || g.offset >= a.offset + a.size);
        ck_assert(g.zeroed);
    }
    ck_assert(ad_leases_is_valid(new_m));
    ad_leases_adopt_stats_t as;
    ad_leases_adopt_stats(new_m, &as);
    ck_assert_uint_eq(as.pools_adopted, 1);
    ck_assert_uint_eq(as.claims_total, 1);
    ck_assert_uint_ge(as.claims_refused_total, 5);
    (void)close(keep);
}
END_TEST

START_TEST(test_not_a_pool)
{
    uint64_t id;
    int fd = memfd_create("arenad-pool-uid0", MFD_CLOEXEC); /* unsealed */
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, (off_t)(256 * MiB)), 0);
    ck_assert_int_eq(ad_leases_client_reattach(new_m, 1, getuid(), getgid(), "x", fd, 0, &id),
                     -EINVAL);
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    ck_assert_int_eq(ad_leases_client_reattach(new_m, 1, getuid(), getgid(), "x", p[0], 0, &id),
                     -EINVAL);
    (void)close(p[1]);
}
END_TEST

/* The fd-store path: the old manager keeps a ledger; the new one resumes
 * from the stored pool and ledger. */
static int stored_calls;
static int count_store(void *ctx, int fd, const char *name)
{
    (void)ctx;
    (void)fd;
    (void)name;
    stored_calls++;
    return 0;
}

START_TEST(test_resume_from_the_ledger)
{
    ad_ledger_t *ledger;
    ck_assert_int_eq(ad_ledger_new(1024, &ledger), 0);
    ad_leases_set_ledger(old_m, ledger);
    ad_lease_grant_t a, b;
    int pool = old_pool(&a, &b);
    ck_assert_uint_eq(ad_ledger_count(ledger), 2);
    struct stat st;
    ck_assert_int_eq(fstat(pool, &st), 0);

    ad_stored_fd_t stored[3];
    stored[0].fd = fcntl(ad_ledger_fd(ledger), F_DUPFD_CLOEXEC, 0);
    (void)snprintf(stored[0].name, sizeof(stored[0].name), "ledger");
    stored[1].fd = pool;
    (void)snprintf(stored[1].name, sizeof(stored[1].name), "pool-uid%lu-%llu",
                   (unsigned long)getuid(), (unsigned long long)st.st_ino);
    stored[2].fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    (void)snprintf(stored[2].name, sizeof(stored[2].name), "pool-junk");
    int keep = fcntl(pool, F_DUPFD_CLOEXEC, 0);
    ad_restart_t *rs = NULL;
    stored_calls = 0;
    ck_assert_int_eq(ad_restart_resume(new_m, stored, 3, count_store, NULL, 100, &rs), 0);
    ad_restart_stats_t rst;
    ad_restart_stats(rs, &rst);
    ck_assert(rst.ledger_resumed);
    ck_assert_uint_eq(rst.pools_resumed, 1);
    ck_assert_uint_eq(rst.orphans, 2);
    ck_assert_uint_eq(rst.orphan_bytes, a.size + b.size);
    ck_assert_uint_eq(rst.fds_dropped, 1);
    ck_assert_int_eq(stored_calls, 0); /* nothing new to store */

    /* A client of the uid gets the resumed pool; it grants at once from
     * space the ledger did not name, and orphans count against the budget. */
    uint64_t c;
    ck_assert_int_eq(ad_leases_client_new(new_m, 5, getuid(), getgid(), "c", 100, &c), 0);
    ad_lease_grant_t g;
    ck_assert_int_eq(ad_leases_grant(new_m, c, MiB, 100, &g), 0);
    ck_assert(g.offset + g.size <= a.offset || g.offset >= a.offset + a.size);
    ck_assert(g.offset + g.size <= b.offset || g.offset >= b.offset + b.size);
    ck_assert_int_eq(ad_leases_grant(new_m, c, 62 * MiB, 100, &g), -ENOMEM);
    /* A claim must name an orphan exactly. */
    ck_assert_int_eq(ad_leases_claim(new_m, c, a.offset, 4096, 100, &g), -EBUSY);
    ck_assert_int_eq(ad_leases_claim(new_m, c, a.offset, a.size, 100, &g), 0);
    ck_assert_int_eq(ad_leases_claim(new_m, c, a.offset, a.size, 100, &g), -EBUSY);
    ck_assert(ad_leases_is_valid(new_m));

    /* Grace over: b goes (punched, out of the budget), a stays. */
    (void)ad_leases_purge(new_m, 100 + GRACE);
    ck_assert_uint_eq(byte_at(keep, a.offset), 0x11);
    ck_assert_uint_eq(byte_at(keep, b.offset), 0);
    ad_leases_adopt_stats_t as;
    ad_leases_adopt_stats(new_m, &as);
    ck_assert_uint_eq(as.orphan_bytes, 0);
    ck_assert_uint_eq(as.unclaimed_bytes_total, b.size);
    ck_assert_uint_eq(as.grace_until_ms, 0);
    ck_assert_int_eq(ad_leases_grant(new_m, c, 61 * MiB, 100 + GRACE, &g), 0);
    ck_assert(ad_leases_is_valid(new_m));
    /* A new pool is stored. */
    uint64_t other;
    ck_assert_int_eq(ad_leases_client_new(new_m, 6, getuid() + 1, getgid(), "o", 0, &other), 0);
    ck_assert_int_eq(stored_calls, 1);
    ad_leases_free(new_m);
    new_m = NULL;
    ad_restart_free(rs);
    ad_leases_set_ledger(old_m, NULL);
    ad_ledger_free(ledger);
    (void)close(keep);
}
END_TEST

START_TEST(test_ledger_records)
{
    ad_ledger_t *l;
    ck_assert_int_eq(ad_ledger_new(2, &l), 0);
    uint32_t s1, s2, s3;
    ck_assert_int_eq(ad_ledger_add(l, 7, 1, 0, 4096, &s1), 0);
    ck_assert_int_eq(ad_ledger_add(l, 7, 1, 4096, 4096, &s2), 0);
    ck_assert_int_eq(ad_ledger_add(l, 7, 1, 8192, 4096, &s3), -ENOSPC);
    ad_ledger_remove(l, s1);
    ad_ledger_remove(l, s1); /* twice: harmless */
    ck_assert_uint_eq(ad_ledger_count(l), 1);
    ck_assert_int_eq(ad_ledger_add(l, 7, 1, 8192, 4096, &s3), 0);
    ck_assert_uint_eq(s3, s1);
    /* Another process's view: adopt a dup of the memfd. */
    ad_ledger_t *again;
    ck_assert_int_eq(ad_ledger_adopt(fcntl(ad_ledger_fd(l), F_DUPFD_CLOEXEC, 0), &again), 0);
    ck_assert_uint_eq(ad_ledger_count(again), 2);
    ad_ledger_free(again);
    ck_assert_int_eq(ad_ledger_adopt(-1, &again), -EINVAL);
    int junk = memfd_create("junk", MFD_CLOEXEC);
    ck_assert_int_eq(ftruncate(junk, 4096), 0);
    ck_assert_int_eq(ad_ledger_adopt(junk, &again), -EINVAL);
    (void)close(junk);
    ad_ledger_free(l);
}
END_TEST

static Suite *adopt_suite(void)
{
    Suite *s = suite_create("adopt");
    TCase *tc = tcase_create("adopt");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_pool_from_a_client);
    tcase_add_test(tc, test_not_a_pool);
    tcase_add_test(tc, test_resume_from_the_ledger);
    tcase_add_test(tc, test_ledger_records);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(adopt_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
