/* SPDX-License-Identifier: MIT
 *
 * test_daemon_share.c -- the lease manager's shared extents on real pool
 * heaps (daemon/share.c over daemon/lease.c): tokens, the charge passing
 * from holder to holder, reclaim never taking an attached lease, the
 * last holder punching the extent, own-memory leases across uids, the
 * rate limit, the ledger keeping one record per extent, and a restart from
 * it handing the extent to one holder only.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_main.h"
#include "ctl_client.h"
#include "ctlword.h"
#include "lease.h"
#include "ledger.h"

#define MiB (1ull << 20)

static ad_leases_t *mgr;

static void setup(void)
{
    ad_leases_config_t c = {.budget = 64 * MiB,
                            .heap_size = 128 * MiB,
                            .small_limit = 4 * MiB,
                            .decay_ms = 1000,
                            .max_leases_per_client = 100};
    ck_assert_int_eq(ad_leases_new(&c, &mgr), 0);
}

static void teardown(void)
{
    ck_assert(ad_leases_is_valid(mgr));
    ad_leases_free(mgr);
    mgr = NULL;
}

static uint64_t client(pid_t pid, uid_t uid)
{
    uint64_t id = 0;
    ck_assert_int_eq(ad_leases_client_new(mgr, pid, uid, uid, "t", 0, &id), 0);
    return id;
}

static uint64_t leased(uint64_t client_id)
{
    ad_client_view_t v;
    ck_assert_int_eq(ad_leases_client_view(mgr, client_id, &v), 0);
    return v.leased_bytes;
}

/* a leases 4 MiB (*ret_grant) and hands it to b with a one-time token;
 * returns b's attach. */
static ad_lease_attach_t lease_handed_over(uint64_t a, uint64_t b, ad_lease_grant_t *ret_grant)
{
    ck_assert_int_eq(ad_leases_grant(mgr, a, 4 * MiB, 1, ret_grant), 0);
    char tok[AD_SHARE_TOKEN_MAX];
    ck_assert_int_eq(ad_leases_share(mgr, a, ret_grant->lease_id, AD_SHARE_ONCE, false, 0, 1, tok),
                     0);
    ad_lease_attach_t ab;
    ck_assert_int_eq(ad_leases_attach(mgr, b, tok, 2, &ab), 0);
    return ab;
}

static ad_leases_stats_t stats(void)
{
    ad_leases_stats_t s;
    ad_leases_stats(mgr, &s);
    return s;
}

static int find_view(void *ctx, const ad_lease_view_t *v)
{
    ad_lease_view_t *want = ctx;
    if (v->lease_id != want->lease_id)
        return 0;
    *want = *v;
    return 1;
}

static ad_lease_view_t lease_view(uint64_t lease_id)
{
    ad_lease_view_t v = {.lease_id = lease_id};
    ck_assert_int_eq(ad_leases_foreach_lease(mgr, 0, find_view, &v), 1);
    return v;
}

START_TEST(test_charge_passes_and_last_punches)
{
    uint64_t a = client(100, 1000), b = client(101, 1000), c = client(102, 1000);
    ad_lease_grant_t g;
    ck_assert_int_eq(ad_leases_grant(mgr, a, 8 * MiB, 1, &g), 0);
    char tok[AD_SHARE_TOKEN_MAX];
    ck_assert_int_eq(ad_leases_share(mgr, a, g.lease_id, 0, false, 0, 1, tok), 0);
    ck_assert_uint_eq(strlen(tok), 58);
    ad_lease_attach_t ab, ac;
    ck_assert_int_eq(ad_leases_attach(mgr, b, tok, 2, &ab), 0);
    ck_assert_int_eq(ad_leases_attach(mgr, c, tok, 3, &ac), 0);
    ck_assert_int_eq(ab.fd, -1);
    ck_assert_uint_eq(ab.grant.offset, g.offset);
    ck_assert(!ab.grant.zeroed);
    ck_assert_uint_eq(ab.owner_lease_id, g.lease_id);
    ck_assert(ad_leases_is_valid(mgr));
    /* Counted once, charged to the owner. */
    ck_assert_uint_eq(stats().leased_bytes, 8 * MiB);
    ck_assert_uint_eq(leased(a), 8 * MiB);
    ck_assert_uint_eq(leased(b), 0);
    ck_assert_uint_eq(lease_view(g.lease_id).holders, 3);
    ck_assert(!lease_view(ab.grant.lease_id).charged);
    /* Another client cannot release it; the owner goes: b pays now. */
    ck_assert_int_eq(ad_leases_release(mgr, b, g.lease_id, 4), -EPERM);
    ck_assert_int_eq(ad_leases_release(mgr, a, g.lease_id, 4), 0);
    ck_assert(ad_leases_is_valid(mgr));
    ck_assert_uint_eq(leased(a), 0);
    ck_assert_uint_eq(leased(b), 8 * MiB);
    ck_assert_uint_eq(stats().leased_bytes, 8 * MiB);
    /* Its token died with its lease. */
    ad_lease_attach_t again;
    ck_assert_int_eq(ad_leases_attach(mgr, a, tok, 5, &again), -ENOENT);
    /* b disconnects: c pays; c disconnects: the extent is free and punched. */
    ck_assert_int_eq(ad_leases_client_free(mgr, b, 6, true), 1);
    ck_assert_uint_eq(leased(c), 8 * MiB);
    uint64_t punched = stats().punched_total;
    ck_assert_int_eq(ad_leases_client_free(mgr, c, 7, true), 1);
    ck_assert_uint_eq(stats().leased_bytes, 0);
    ck_assert_uint_ge(stats().punched_total - punched, 8 * MiB);
    ad_leases_share_stats_t ss;
    ad_leases_share_stats(mgr, &ss);
    ck_assert_uint_eq(ss.attaches_total, 2);
    ck_assert_uint_eq(ss.detaches_total, 3);
    ck_assert_uint_eq(ss.extents_freed_total, 1);
    ck_assert_uint_eq(ss.tokens, 0);
}
END_TEST

START_TEST(test_attached_never_reclaimed)
{
    uint64_t a = client(100, 1000), b = client(101, 1000);
    ad_lease_grant_t g;
    ad_lease_attach_t ab = lease_handed_over(a, b, &g);
    /* The owner parks its lease: the daemon still does not take it. */
    ctl_client_park(mgr, a, &g);
    ck_assert_int_eq(ad_leases_reclaim_parked(mgr, 0, 0, 3), 0);
    ck_assert_uint_eq(stats().parked_bytes, 0);
    /* Once b let go, it is an ordinary parked lease again. */
    ck_assert_int_eq(ad_leases_release(mgr, b, ab.grant.lease_id, 4), 0);
    ck_assert_int_eq(ad_leases_reclaim_parked(mgr, 0, 0, 5), (int64_t)(4 * MiB));
}
END_TEST

/* The parked decay takes a lease parked for parked_decay_ms, but never one
 * another holder maps, however long it stays parked. */
START_TEST(test_attached_never_decayed)
{
    ad_leases_free(mgr);
    ad_leases_config_t c = {.budget = 64 * MiB,
                            .heap_size = 128 * MiB,
                            .small_limit = 4 * MiB,
                            .decay_ms = 1000,
                            .max_leases_per_client = 100,
                            .parked_decay_ms = 100};
    ck_assert_int_eq(ad_leases_new(&c, &mgr), 0);
    uint64_t a = client(100, 1000), b = client(101, 1000);
    ad_lease_grant_t g;
    ad_lease_attach_t ab = lease_handed_over(a, b, &g);
    ctl_client_park(mgr, a, &g);
    /* Ten decays of scans: the attached extent stays. */
    uint64_t t = 10;
    for (; t < 1000; t += 10)
        (void)ad_leases_purge(mgr, t);
    ck_assert_uint_eq(stats().parked_decay_bytes_total, 0);
    ck_assert_uint_eq(leased(a), 4 * MiB);
    /* Once b let go, it is an ordinary parked lease, and the decay takes it. */
    ck_assert_int_eq(ad_leases_release(mgr, b, ab.grant.lease_id, t), 0);
    for (uint64_t end = t + 200; t < end; t += 10)
        (void)ad_leases_purge(mgr, t);
    ck_assert_uint_eq(stats().parked_decay_bytes_total, 4 * MiB);
    ck_assert_uint_eq(leased(a), 0);
}
END_TEST

START_TEST(test_tokens_checked)
{
    uint64_t a = client(100, 1000), b = client(101, 1000), x = client(102, 2000);
    ad_lease_grant_t g;
    ck_assert_int_eq(ad_leases_grant(mgr, a, 1 * MiB, 1, &g), 0);
    char tok[AD_SHARE_TOKEN_MAX];
    ck_assert_int_eq(ad_leases_share(mgr, a, g.lease_id, 0x4, false, 0, 1, tok), -EINVAL);
    ck_assert_int_eq(ad_leases_share(mgr, b, g.lease_id, 0, false, 0, 1, tok), -EPERM);
    ck_assert_int_eq(ad_leases_share(mgr, a, 999, 0, false, 0, 1, tok), -ENOENT);
    ck_assert_int_eq(ad_leases_share(mgr, a, g.lease_id, 0, true, 2000, 1, tok), -EXDEV);
    ck_assert_int_eq(ad_leases_share(mgr, a, g.lease_id, AD_SHARE_ONCE, false, 0, 1, tok), 0);
    ad_lease_attach_t r;
    /* Another uid: refused, and the token stays unspent. */
    ck_assert_int_eq(ad_leases_attach(mgr, x, tok, 2, &r), -EACCES);
    char bad[AD_SHARE_TOKEN_MAX];
    memcpy(bad, tok, sizeof(bad));
    size_t n = strlen(bad);
    bad[n - 1] = bad[n - 1] == '0' ? '1' : '0'; /* still hex: a forgery, not garbage */
    ck_assert_int_eq(ad_leases_attach(mgr, b, bad, 2, &r), -ENOENT);
    memcpy(bad, tok, sizeof(bad));
    bad[10] = 'X';
    ck_assert_int_eq(ad_leases_attach(mgr, b, bad, 2, &r), -EINVAL);
    bad[10] = '\0';
    ck_assert_int_eq(ad_leases_attach(mgr, b, bad, 2, &r), -EINVAL);
    ck_assert_int_eq(ad_leases_unshare(mgr, b, tok, 2, &(uint64_t){0}), -EPERM);
    ck_assert_int_eq(ad_leases_attach(mgr, b, tok, 2, &r), 0);
    ck_assert_int_eq(ad_leases_attach(mgr, b, tok, 2, &r), -ENOENT); /* spent */
    /* The limit: more failures than allowed within a second. */
    int limited = 0;
    for (int i = 0; i < 12; i++) {
        int e = ad_leases_attach(mgr, b, bad, 10, &r);
        limited += e == -EBUSY || e == -EAGAIN;
    }
    ck_assert_int_ge(limited, 12 - (int)AD_SHARE_MAX_FAILURES);
    ck_assert_int_eq(ad_leases_attach(mgr, b, bad, 2000, &r), -EINVAL); /* a new window */
    ad_leases_share_stats_t ss;
    ad_leases_share_stats(mgr, &ss);
    ck_assert_uint_ge(ss.attach_limited_total, 3);
    /* Tokens per client are capped; revoking makes room again. */
    for (unsigned i = 0; i < AD_SHARE_MAX_TOKENS; i++)
        ck_assert_int_eq(ad_leases_share(mgr, a, g.lease_id, 0, false, 0, 3, tok), 0);
    ck_assert_int_eq(ad_leases_share(mgr, a, g.lease_id, 0, false, 0, 3, bad), -EDQUOT);
    ck_assert_int_eq(ad_leases_unshare(mgr, a, tok, 3, &(uint64_t){0}), 0);
    ck_assert_int_eq(ad_leases_share(mgr, a, g.lease_id, 0, false, 0, 3, tok), 0);
    /* Attaches count against max_leases_per_client (100 here). */
    ad_lease_grant_t more;
    for (int i = 1; i < 100; i++)
        ck_assert_int_eq(ad_leases_grant(mgr, b, 4096, 4, &more), 0);
    ck_assert_int_eq(ad_leases_attach(mgr, b, tok, 3000, &r), -EDQUOT);
}
END_TEST

START_TEST(test_own_memory_across_uids)
{
    uint64_t a = client(100, 1000), x = client(102, 2000);
    ad_lease_grant_t g;
    int fd = -1;
    ck_assert_int_eq(ad_leases_grant_own(mgr, a, 3 * MiB, 1, &g, &fd), 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_uint_eq(g.offset, 0);
    ck_assert(g.zeroed);
    int seals = fcntl(fd, F_GET_SEALS);
    ck_assert_int_eq(seals & (F_SEAL_GROW | F_SEAL_SHRINK), F_SEAL_GROW | F_SEAL_SHRINK);
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    ck_assert_uint_eq(stats().leased_bytes, g.size);
    char tok[AD_SHARE_TOKEN_MAX];
    ck_assert_int_eq(ad_leases_share(mgr, a, g.lease_id, AD_SHARE_READONLY, true, 2000, 1, tok), 0);
    ad_lease_attach_t r;
    ck_assert_int_eq(ad_leases_attach(mgr, x, tok, 2, &r), 0);
    ck_assert(r.read_only);
    ck_assert_int_ge(r.fd, 0);
    ck_assert_int_eq(fcntl(r.fd, F_GETFL) & O_ACCMODE, O_RDONLY);
    ck_assert_ptr_eq(mmap(NULL, g.size, PROT_READ | PROT_WRITE, MAP_SHARED, r.fd, 0), MAP_FAILED);
    (void)close(r.fd);
    (void)close(fd);
    /* Never reclaimed, even when its word says PARKED. */
    ctl_client_park(mgr, a, &g);
    ck_assert_int_eq(ad_leases_reclaim_parked(mgr, 0, 0, 3), 0);
    /* The attacher of another uid pays once the owner goes. */
    ck_assert_int_eq(ad_leases_client_free(mgr, a, 3, true), 1);
    ck_assert_uint_eq(leased(x), g.size);
    ck_assert_int_eq(ad_leases_client_free(mgr, x, 4, true), 1);
    ck_assert_uint_eq(stats().leased_bytes, 0);
}
END_TEST

/* Memory of its own counts against max_bytes_per_uid, in whichever
 * holder's uid pays for it. */
START_TEST(test_own_memory_uid_limit)
{
    ad_leases_t *m = NULL;
    ad_leases_config_t c = {.budget = 64 * MiB,
                            .heap_size = 128 * MiB,
                            .small_limit = 4 * MiB,
                            .max_bytes_per_uid = 10 * MiB};
    ck_assert_int_eq(ad_leases_new(&c, &m), 0);
    uint64_t a = 0, x = 0;
    ck_assert_int_eq(ad_leases_client_new(m, 100, 1000, 1000, "a", 0, &a), 0);
    ck_assert_int_eq(ad_leases_client_new(m, 101, 2000, 2000, "x", 0, &x), 0);
    ad_lease_grant_t g, h;
    int fd = -1;
    ck_assert_int_eq(ad_leases_grant_own(m, a, 8 * MiB, 1, &g, &fd), 0);
    (void)close(fd);
    ck_assert_int_eq(ad_leases_grant(m, a, 4 * MiB, 1, &h), -EDQUOT);
    ck_assert_int_eq(ad_leases_grant_own(m, a, 4 * MiB, 1, &h, &fd), -EDQUOT);
    char tok[AD_SHARE_TOKEN_MAX];
    ck_assert_int_eq(ad_leases_share(m, a, g.lease_id, 0, true, 2000, 1, tok), 0);
    ad_lease_attach_t r;
    ck_assert_int_eq(ad_leases_attach(m, x, tok, 2, &r), 0);
    (void)close(r.fd);
    /* The owner lets go: uid 2000 pays now, uid 1000 has room again. */
    ck_assert_int_eq(ad_leases_release(m, a, g.lease_id, 3), 0);
    ck_assert(ad_leases_is_valid(m));
    ck_assert_int_eq(ad_leases_grant(m, a, 4 * MiB, 3, &h), 0);
    ck_assert_int_eq(ad_leases_grant(m, x, 4 * MiB, 3, &h), -EDQUOT);
    ck_assert(ad_leases_is_valid(m));
    ad_leases_free(m);
}
END_TEST

/* Memory of its own takes parked leases back when short, like any lease. */
START_TEST(test_own_memory_reclaims_parked)
{
    uint64_t a = client(100, 1000), b = client(101, 1000);
    ad_lease_grant_t g;
    ck_assert_int_eq(ad_leases_grant(mgr, a, 60 * MiB, 1, &g), 0);
    ad_lease_grant_t own;
    int ofd = -1;
    ck_assert_int_eq(ad_leases_grant_own(mgr, b, 8 * MiB, 2, &own, &ofd), -ENOMEM);
    ctl_client_park(mgr, a, &g);
    ck_assert_int_eq(ad_leases_grant_own(mgr, b, 8 * MiB, 3, &own, &ofd), 0);
    ck_assert_uint_eq(leased(a), 0);
    ck_assert_uint_eq(leased(b), 8 * MiB);
    (void)close(ofd);
}
END_TEST

START_TEST(test_ledger_one_record_per_extent)
{
    ad_ledger_t *ledger = NULL;
    ck_assert_int_eq(ad_ledger_new(64, &ledger), 0);
    ad_leases_set_ledger(mgr, ledger);
    uint64_t a = client(100, 1000), b = client(101, 1000);
    ad_lease_grant_t g;
    ck_assert_int_eq(ad_leases_grant(mgr, a, 2 * MiB, 1, &g), 0);
    char tok[AD_SHARE_TOKEN_MAX];
    ck_assert_int_eq(ad_leases_share(mgr, a, g.lease_id, 0, false, 0, 1, tok), 0);
    ad_lease_attach_t r;
    ck_assert_int_eq(ad_leases_attach(mgr, b, tok, 2, &r), 0);
    ck_assert_uint_eq(ad_ledger_count(ledger), 1);
    ck_assert_int_eq(ad_leases_release(mgr, a, g.lease_id, 3), 0);
    ck_assert_uint_eq(ad_ledger_count(ledger), 1); /* moved to b, not copied */
    ck_assert_int_eq(ad_leases_release(mgr, b, r.grant.lease_id, 4), 0);
    ck_assert_uint_eq(ad_ledger_count(ledger), 0);
    ad_leases_set_ledger(mgr, NULL);
    ad_ledger_free(ledger);
}
END_TEST

/* The fd-store restart path: a daemon that stops with a shared extent
 * leaves one ledger record for it; the next one adopts the pool with that
 * orphan, and of the two holders only the one the record names gets it. */
typedef struct orphans {
    ad_leases_orphan_t items[8];
    size_t count;
} orphans_t;

static void collect_orphan(void *ctx, const ad_ledger_record_t *rec)
{
    orphans_t *o = ctx;
    if (o->count < 8)
        o->items[o->count++] =
            (ad_leases_orphan_t){rec->offset, rec->size, (pid_t)rec->pid, rec->start};
}

START_TEST(test_restart_one_owner_from_the_ledger)
{
    ad_ledger_t *ledger = NULL;
    ck_assert_int_eq(ad_ledger_new(64, &ledger), 0);
    ad_leases_set_ledger(mgr, ledger);
    /* Two living processes: this one owns, its parent attaches. */
    pid_t owner_pid = getpid(), other_pid = getppid();
    uint64_t a = client(owner_pid, getuid()), b = client(other_pid, getuid());
    ad_lease_grant_t g;
    ck_assert_int_eq(ad_leases_grant(mgr, a, 2 * MiB, 1, &g), 0);
    char tok[AD_SHARE_TOKEN_MAX];
    ck_assert_int_eq(ad_leases_share(mgr, a, g.lease_id, 0, false, 0, 1, tok), 0);
    ad_lease_attach_t r;
    ck_assert_int_eq(ad_leases_attach(mgr, b, tok, 2, &r), 0);
    ad_pool_info_t pi;
    ck_assert_int_eq(ad_leases_pool_info(mgr, a, &pi), 0);
    int pool = fcntl(pi.fd, F_DUPFD_CLOEXEC, 0);
    ck_assert_int_ge(pool, 0);
    /* The daemon stops: nothing punched, one record for the extent. */
    ck_assert_int_eq(ad_leases_client_free(mgr, a, 3, false), 1);
    ck_assert_int_eq(ad_leases_client_free(mgr, b, 3, false), 1);
    orphans_t o = {.count = 0};
    ad_ledger_foreach(ledger, collect_orphan, &o);
    ck_assert_uint_eq(o.count, 1);
    ck_assert_int_eq(o.items[0].pid, owner_pid);
    ck_assert_uint_eq(o.items[0].offset, g.offset);
    ad_leases_set_ledger(mgr, NULL);
    ad_ledger_free(ledger);

    ad_leases_t *next = NULL;
    ad_leases_config_t c = {.budget = 64 * MiB,
                            .heap_size = 128 * MiB,
                            .small_limit = 4 * MiB,
                            .decay_ms = 1000,
                            .restart_grace_ms = 1000};
    ck_assert_int_eq(ad_leases_new(&c, &next), 0);
    ck_assert_int_eq(ad_leases_adopt_pool(next, getuid(), pool, o.items, o.count, 10, NULL), 0);
    uint64_t a2 = 0, b2 = 0;
    ck_assert_int_eq(ad_leases_client_new(next, other_pid, getuid(), getgid(), "b", 10, &b2), 0);
    ck_assert_int_eq(ad_leases_client_new(next, owner_pid, getuid(), getgid(), "a", 10, &a2), 0);
    ad_lease_grant_t back;
    /* The attacher asks first and is refused; the owner gets it. */
    ck_assert_int_eq(ad_leases_claim(next, b2, g.offset, g.size, 11, &back), -EBUSY);
    ck_assert_int_eq(ad_leases_claim(next, a2, g.offset, g.size, 11, &back), 0);
    ck_assert_int_eq(ad_leases_claim(next, b2, g.offset, g.size, 11, &back), -EBUSY);
    ad_leases_stats_t st;
    ad_leases_stats(next, &st);
    ck_assert_uint_eq(st.leased_bytes, g.size);
    ck_assert_uint_eq(st.leases, 1);
    ck_assert(ad_leases_is_valid(next));
    ad_leases_free(next);
}
END_TEST

static Suite *share_suite(void)
{
    Suite *s = suite_create("daemon_share");
    TCase *tc = tcase_create("share");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_charge_passes_and_last_punches);
    tcase_add_test(tc, test_attached_never_reclaimed);
    tcase_add_test(tc, test_attached_never_decayed);
    tcase_add_test(tc, test_tokens_checked);
    tcase_add_test(tc, test_own_memory_across_uids);
    tcase_add_test(tc, test_own_memory_uid_limit);
    tcase_add_test(tc, test_own_memory_reclaims_parked);
    tcase_add_test(tc, test_ledger_one_record_per_extent);
    tcase_add_test(tc, test_restart_one_owner_from_the_ledger);
    suite_add_tcase(s, tc);
    return s;
}

ARENA_TEST_MAIN(share_suite)
