/* SPDX-License-Identifier: MIT
 *
 * test_adopt.c -- adoption after a restart, in the lease manager and the
 * ledger, on real memfds: a "previous daemon" (one manager) leases and
 * writes, a "new daemon" (a second manager) adopts its pool, from a client
 * (nothing known) or with the ledger (orphans), takes claims, refuses bad
 * ones, and frees what nobody claimed when the grace period ends -- with
 * the pages of claimed extents intact and those of unclaimed ones punched.
 * The ledger names each lease's process: real child processes, alive or
 * reaped, show that an orphan of a process that is gone is freed at once
 * and one of a living process is held past the grace period for it alone.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "admin.h"
#include "ledger.h"
#include "procid.h"
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

/* The old daemon's pool fd (dup'ed) and two written leases of a client in
 * process pid. */
static int old_pool(pid_t pid, ad_lease_grant_t *a, ad_lease_grant_t *b)
{
    uint64_t id;
    ck_assert_int_eq(ad_leases_client_new(old_m, pid, getuid(), getgid(), "old", 0, &id), 0);
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
    int fd = old_pool(1, &a, &b);
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

/* A reload's restart_grace_ms applies to pools adopted afterwards: a client
 * that re-registers after ad_leases_reconfigure() gets the new grace. */
START_TEST(test_reload_sets_the_grace)
{
    ad_leases_config_t c = {.budget = 64 * MiB,
                            .heap_size = 256 * MiB,
                            .small_limit = 4 * MiB,
                            .decay_ms = 0,
                            .restart_grace_ms = 3 * GRACE};
    ad_leases_reconfigure(new_m, &c);
    ad_lease_grant_t a, b;
    int fd = old_pool(1, &a, &b);
    uint64_t c1;
    ck_assert_int_eq(ad_leases_client_reattach(new_m, 2, getuid(), getgid(), "c", fd, 100, &c1), 0);
    ck_assert_uint_eq(ad_leases_grace_left(new_m, c1, 100), 3 * GRACE);
    ck_assert(ad_leases_is_valid(new_m));
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

/* Frees the new manager, then the restart state whose ledger it used, then
 * the old manager's ledger. */
static void resumed_free(ad_restart_t *rs, ad_ledger_t *ledger)
{
    ad_leases_free(new_m);
    new_m = NULL;
    ad_restart_free(rs);
    ad_leases_set_ledger(old_m, NULL);
    ad_ledger_free(ledger);
}

START_TEST(test_resume_from_the_ledger)
{
    ad_ledger_t *ledger;
    ck_assert_int_eq(ad_ledger_new(1024, &ledger), 0);
    ad_leases_set_ledger(old_m, ledger);
    ad_lease_grant_t a, b;
    int pool = old_pool(getpid(), &a, &b);
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
    uint64_t c, other_pid;
    ck_assert_int_eq(ad_leases_client_new(new_m, getpid(), getuid(), getgid(), "c", 100, &c), 0);
    ck_assert_int_eq(ad_leases_client_new(new_m, 5, getuid(), getgid(), "x", 100, &other_pid), 0);
    ad_lease_grant_t g;
    ck_assert_int_eq(ad_leases_grant(new_m, c, MiB, 100, &g), 0);
    ck_assert(g.offset + g.size <= a.offset || g.offset >= a.offset + a.size);
    ck_assert(g.offset + g.size <= b.offset || g.offset >= b.offset + b.size);
    ck_assert_int_eq(ad_leases_grant(new_m, c, 62 * MiB, 100, &g), -ENOMEM);
    /* A claim must name an orphan exactly, and come from its process. */
    ck_assert_int_eq(ad_leases_claim(new_m, c, a.offset, 4096, 100, &g), -EBUSY);
    ck_assert_int_eq(ad_leases_claim(new_m, other_pid, a.offset, a.size, 100, &g), -EBUSY);
    ck_assert_int_eq(ad_leases_claim(new_m, c, a.offset, a.size, 100, &g), 0);
    ck_assert_int_eq(ad_leases_claim(new_m, c, a.offset, a.size, 100, &g), -EBUSY);
    ck_assert(ad_leases_is_valid(new_m));

    /* Grace over: b's process (this one) lives, so b is held for it -- not
     * punched, still counted -- and looked at again a second later. */
    (void)ad_leases_purge(new_m, 100 + GRACE);
    ck_assert_uint_eq(byte_at(keep, a.offset), 0x11);
    ck_assert_uint_eq(byte_at(keep, b.offset), 0x22);
    ad_leases_adopt_stats_t as;
    ad_leases_adopt_stats(new_m, &as);
    ck_assert_uint_eq(as.orphan_bytes, b.size);
    ck_assert_uint_eq(as.held_orphan_bytes, b.size);
    ck_assert_uint_eq(as.unclaimed_bytes_total, 0);
    ck_assert_uint_eq(as.grace_until_ms, 100 + GRACE + 1000);
    ck_assert_uint_eq(ad_leases_grace_left(new_m, c, 100 + GRACE), 0);
    ck_assert_int_eq(ad_leases_grant(new_m, c, 61 * MiB, 100 + GRACE, &g), -ENOMEM);
    /* The refusal, status and metrics say what is held for whom. */
    char why[256];
    (void)ad_leases_describe_holders(new_m, why, sizeof(why));
    ck_assert_msg(strstr(why, "; 2.0 MiB held for clients of a previous arenad") != NULL, "%s",
                  why);
    ad_admin_t *adm;
    ck_assert_int_eq(ad_admin_new(new_m, "/tmp/s.sock", 0, &adm), 0);
    ad_wire_status_t ws;
    ad_admin_status(adm, 100 + GRACE, &ws);
    ck_assert_uint_eq(ws.restart_held_bytes, b.size);
    ad_admin_caller_t root = {.uid = 0, .privileged = true};
    char *text = NULL;
    ck_assert_int_eq(ad_admin_metrics(adm, &root, 100 + GRACE, &text), 0);
    char want[64];
    (void)snprintf(want, sizeof(want), "\narenad_restart_held_bytes %llu\n",
                   (unsigned long long)b.size);
    ck_assert_msg(strstr(text, want) != NULL, "want %s in\n%s", want, text);
    free(text);
    (void)ad_leases_purge(new_m, 100 + GRACE + 1000);
    ck_assert_uint_eq(byte_at(keep, b.offset), 0x22);
    /* Its process claims it late; nobody else can. */
    ck_assert_int_eq(ad_leases_claim(new_m, other_pid, b.offset, b.size, 100 + GRACE, &g), -ESTALE);
    ck_assert_int_eq(ad_leases_claim(new_m, c, b.offset, b.size, 100 + GRACE + 1500, &g), 0);
    ck_assert_uint_eq(byte_at(keep, b.offset), 0x22);
    ad_leases_adopt_stats(new_m, &as);
    ck_assert_uint_eq(as.orphan_bytes, 0);
    ck_assert_uint_eq(as.claims_total, 2);
    ad_admin_status(adm, 100 + GRACE + 1500, &ws);
    ck_assert_uint_eq(ws.restart_held_bytes, 0);
    (void)ad_leases_describe_holders(new_m, why, sizeof(why));
    ck_assert_msg(strstr(why, "previous arenad") == NULL, "%s", why);
    ad_admin_free(adm);
    (void)ad_leases_purge(new_m, 100 + GRACE + 2000);
    ad_leases_adopt_stats(new_m, &as);
    ck_assert_uint_eq(as.grace_until_ms, 0);
    ck_assert_int_eq(ad_leases_grant(new_m, c, 60 * MiB, 100 + GRACE + 2000, &g), 0);
    ck_assert(ad_leases_is_valid(new_m));
    /* A new pool is stored. */
    uint64_t other;
    ck_assert_int_eq(ad_leases_client_new(new_m, 6, getuid() + 1, getgid(), "o", 0, &other), 0);
    ck_assert_int_eq(stored_calls, 1);
    resumed_free(rs, ledger);
    (void)close(keep);
}
END_TEST

/* A child process that waits until killed (alive), or one that has exited
 * and been reaped (its pid names no process: gone). */
static pid_t child_alive(void)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* Gone with the test, whatever happens to it. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
            _exit(1);
        for (;;)
            (void)pause();
    }
    return pid;
}

static pid_t child_gone(void)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(0);
    ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
    return pid;
}

/* Leases one extent of size for client id and fills it with byte. */
static ad_lease_grant_t old_lease(uint64_t id, int pool, uint64_t size, int byte)
{
    ad_lease_grant_t g;
    ck_assert_int_eq(ad_leases_grant(old_m, id, size, 0, &g), 0);
    char *p = mmap(NULL, g.size, PROT_READ | PROT_WRITE, MAP_SHARED, pool, (off_t)g.offset);
    ck_assert_ptr_ne(p, MAP_FAILED);
    memset(p, byte, g.size);
    (void)munmap(p, g.size);
    return g;
}

START_TEST(test_orphans_follow_their_process)
{
    ad_ledger_t *ledger;
    ck_assert_int_eq(ad_ledger_new(1024, &ledger), 0);
    ad_leases_set_ledger(old_m, ledger);
    pid_t living = child_alive(), gone = child_gone();
    uint64_t cl, cg, cu;
    ck_assert_int_eq(ad_leases_client_new(old_m, living, getuid(), getgid(), "l", 0, &cl), 0);
    ck_assert_int_eq(ad_leases_client_new(old_m, gone, getuid(), getgid(), "g", 0, &cg), 0);
    /* pid 0: a record as an older arenad wrote it, process unknown. */
    ck_assert_int_eq(ad_leases_client_new(old_m, 0, getuid(), getgid(), "u", 0, &cu), 0);
    ad_pool_info_t info;
    ck_assert_int_eq(ad_leases_pool_info(old_m, cl, &info), 0);
    int pool = fcntl(info.fd, F_DUPFD_CLOEXEC, 0);
    ck_assert_int_ge(pool, 0);
    ad_lease_grant_t l1 = old_lease(cl, pool, MiB, 0x31), l2 = old_lease(cl, pool, 2 * MiB, 0x32),
                     l3 = old_lease(cl, pool, MiB, 0x33), d = old_lease(cg, pool, 4 * MiB, 0x44),
                     u = old_lease(cu, pool, MiB, 0x55);
    struct stat st;
    ck_assert_int_eq(fstat(pool, &st), 0);
    ad_stored_fd_t stored[2];
    stored[0].fd = fcntl(ad_ledger_fd(ledger), F_DUPFD_CLOEXEC, 0);
    (void)snprintf(stored[0].name, sizeof(stored[0].name), "ledger");
    stored[1].fd = fcntl(pool, F_DUPFD_CLOEXEC, 0);
    (void)snprintf(stored[1].name, sizeof(stored[1].name), "pool-uid%lu-%llu",
                   (unsigned long)getuid(), (unsigned long long)st.st_ino);
    ad_restart_t *rs = NULL;
    ck_assert_int_eq(ad_restart_resume(new_m, stored, 2, NULL, NULL, 100, &rs), 0);

    /* The gone process's extent is freed at once: punched, out of the budget. */
    ad_restart_stats_t rst;
    ad_restart_stats(rs, &rst);
    ck_assert_uint_eq(rst.orphans, 5);
    ck_assert_uint_eq(rst.gone_bytes, d.size);
    ck_assert_uint_eq(byte_at(pool, d.offset), 0);
    ad_leases_adopt_stats_t as;
    ad_leases_adopt_stats(new_m, &as);
    ck_assert_uint_eq(as.orphan_bytes, l1.size + l2.size + l3.size + u.size);
    ck_assert_uint_eq(as.unclaimed_bytes_total, d.size);

    /* During the grace period: an unknown process's orphan goes to any
     * client of the uid, a known one's only to its process. */
    uint64_t x, o;
    ck_assert_int_eq(ad_leases_client_new(new_m, 5, getuid(), getgid(), "x", 100, &x), 0);
    ck_assert_int_eq(ad_leases_client_new(new_m, living, getuid(), getgid(), "o", 100, &o), 0);
    ad_lease_grant_t g;
    ck_assert_int_eq(ad_leases_claim(new_m, x, l1.offset, l1.size, 100, &g), -EBUSY);
    ck_assert_int_eq(ad_leases_claim(new_m, x, u.offset, u.size, 100, &g), 0);
    ck_assert_int_eq(ad_leases_claim(new_m, o, l1.offset, l1.size, 100, &g), 0);

    /* Grace over: the living process keeps l2 and l3, claimable by it alone. */
    (void)ad_leases_purge(new_m, 100 + GRACE);
    ad_leases_adopt_stats(new_m, &as);
    ck_assert_uint_eq(as.held_orphan_bytes, l2.size + l3.size);
    ck_assert_uint_eq(byte_at(pool, l2.offset), 0x32);
    ck_assert_int_eq(ad_leases_claim(new_m, x, l3.offset, l3.size, 100 + GRACE, &g), -ESTALE);
    ck_assert_int_eq(ad_leases_claim(new_m, o, l3.offset, l3.size, 100 + GRACE, &g), 0);
    ck_assert_uint_eq(byte_at(pool, l3.offset), 0x33);

    /* The process dies: at the next look its last orphan is punched and free. */
    ck_assert_int_eq(kill(living, SIGKILL), 0);
    ck_assert_int_eq(waitpid(living, NULL, 0), living);
    (void)ad_leases_purge(new_m, 100 + GRACE + 999);
    ck_assert_uint_eq(byte_at(pool, l2.offset), 0x32);
    (void)ad_leases_purge(new_m, 100 + GRACE + 1000);
    ck_assert_uint_eq(byte_at(pool, l2.offset), 0);
    ad_leases_adopt_stats(new_m, &as);
    ck_assert_uint_eq(as.orphan_bytes, 0);
    ck_assert_uint_eq(as.unclaimed_bytes_total, d.size + l2.size);
    ck_assert_uint_eq(as.claims_total, 3);
    ck_assert_uint_eq(as.grace_until_ms, 0);
    ck_assert_int_eq(ad_leases_claim(new_m, o, l2.offset, l2.size, 100 + GRACE + 1000, &g),
                     -ESTALE);
    ck_assert_uint_eq(byte_at(pool, l1.offset), 0x31);
    ck_assert_uint_eq(byte_at(pool, u.offset), 0x55);
    ck_assert(ad_leases_is_valid(new_m));

    resumed_free(rs, ledger);
    (void)close(pool);
}
END_TEST

/* Sets the start time of the ledger record of the extent at offset, as a
 * record of a dead process whose pid a new process got would read. */
static void ledger_forge_start(ad_ledger_t *ledger, uint64_t offset, uint64_t start)
{
    int fd = ad_ledger_fd(ledger);
    for (uint32_t i = 0; i < 16; i++) {
        ad_ledger_record_t rec;
        off_t at = 64 + (off_t)i * (off_t)sizeof(rec);
        ck_assert_int_eq(pread(fd, &rec, sizeof(rec), at), (ssize_t)sizeof(rec));
        if (rec.ino != 0 && rec.offset == offset) {
            ck_assert_uint_ne(rec.start, 0);
            rec.start = start;
            ck_assert_int_eq(pwrite(fd, &rec, sizeof(rec), at), (ssize_t)sizeof(rec));
            return;
        }
    }
    ck_abort_msg("no ledger record at offset %llu", (unsigned long long)offset);
}

START_TEST(test_reused_pid_inherits_nothing)
{
    ad_ledger_t *ledger;
    ck_assert_int_eq(ad_ledger_new(1024, &ledger), 0);
    ad_leases_set_ledger(old_m, ledger);
    pid_t living = child_alive();
    uint64_t cl;
    ck_assert_int_eq(ad_leases_client_new(old_m, living, getuid(), getgid(), "l", 0, &cl), 0);
    ad_pool_info_t info;
    ck_assert_int_eq(ad_leases_pool_info(old_m, cl, &info), 0);
    int pool = fcntl(info.fd, F_DUPFD_CLOEXEC, 0);
    ck_assert_int_ge(pool, 0);
    ad_lease_grant_t mine = old_lease(cl, pool, MiB, 0x61),
                     dead = old_lease(cl, pool, 2 * MiB, 0x62);
    /* The record of `dead` names a process that started at another time
     * under the same pid: the process that held it is gone, and the living
     * one only reuses its pid. */
    uint64_t start = 0;
    ck_assert_int_eq(ad_proc_start_time(living, &start), 0);
    ledger_forge_start(ledger, dead.offset, start + 1);
    struct stat st;
    ck_assert_int_eq(fstat(pool, &st), 0);
    ad_stored_fd_t stored[2];
    stored[0].fd = fcntl(ad_ledger_fd(ledger), F_DUPFD_CLOEXEC, 0);
    (void)snprintf(stored[0].name, sizeof(stored[0].name), "ledger");
    stored[1].fd = fcntl(pool, F_DUPFD_CLOEXEC, 0);
    (void)snprintf(stored[1].name, sizeof(stored[1].name), "pool-uid%lu-%llu",
                   (unsigned long)getuid(), (unsigned long long)st.st_ino);
    ad_restart_t *rs = NULL;
    ck_assert_int_eq(ad_restart_resume(new_m, stored, 2, NULL, NULL, 100, &rs), 0);

    /* Freed at once, punched; the extent of the living process is kept. */
    ad_restart_stats_t rst;
    ad_restart_stats(rs, &rst);
    ck_assert_uint_eq(rst.orphans, 2);
    ck_assert_uint_eq(rst.gone_bytes, dead.size);
    ck_assert_uint_eq(byte_at(pool, dead.offset), 0);
    ck_assert_uint_eq(byte_at(pool, mine.offset), 0x61);
    uint64_t o;
    ck_assert_int_eq(ad_leases_client_new(new_m, living, getuid(), getgid(), "o", 100, &o), 0);
    ad_lease_grant_t g;
    ck_assert_int_eq(ad_leases_claim(new_m, o, dead.offset, dead.size, 100, &g), -EBUSY);
    ck_assert_int_eq(ad_leases_claim(new_m, o, mine.offset, mine.size, 100, &g), 0);
    ck_assert(ad_leases_is_valid(new_m));

    (void)kill(living, SIGKILL);
    (void)waitpid(living, NULL, 0);
    resumed_free(rs, ledger);
    (void)close(pool);
}
END_TEST

static void count_pid_42(void *ctx, const ad_ledger_record_t *rec)
{
    if (rec->pid == 42)
        ++*(int *)ctx;
}

START_TEST(test_ledger_records)
{
    ad_ledger_t *l;
    ck_assert_int_eq(ad_ledger_new(2, &l), 0);
    uint32_t s1, s2, s3;
    ck_assert_int_eq(ad_ledger_add(l, 7, 1, 42, 0, 0, 4096, &s1), 0);
    ck_assert_int_eq(ad_ledger_add(l, 7, 1, 42, 0, 4096, 4096, &s2), 0);
    ck_assert_int_eq(ad_ledger_add(l, 7, 1, 42, 0, 8192, 4096, &s3), -ENOSPC);
    ad_ledger_remove(l, s1);
    ad_ledger_remove(l, s1); /* twice: harmless */
    ck_assert_uint_eq(ad_ledger_count(l), 1);
    ck_assert_int_eq(ad_ledger_add(l, 7, 1, 42, 0, 8192, 4096, &s3), 0);
    ck_assert_uint_eq(s3, s1);
    int with_pid = 0;
    ad_ledger_foreach(l, count_pid_42, &with_pid);
    ck_assert_int_eq(with_pid, 2);
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
    tcase_add_test(tc, test_reload_sets_the_grace);
    tcase_add_test(tc, test_resume_from_the_ledger);
    tcase_add_test(tc, test_orphans_follow_their_process);
    tcase_add_test(tc, test_reused_pid_inherits_nothing);
    tcase_add_test(tc, test_ledger_records);
    suite_add_tcase(s, tc);
    return s;
}

ARENA_TEST_MAIN(adopt_suite)
