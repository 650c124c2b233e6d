/* SPDX-License-Identifier: MIT
 *
 * test_pool_daemon.c -- the pools against a real arenad (tests/lib
 * daemon fixture: a daemon on a temporary socket per test, always stopped, also on
 * failure: the fixture's teardown stops it and the daemon dies with the test
 * process through PR_SET_PDEATHSIG). ARENA_FALLBACK is unset, so nothing here
 * silently runs on fallback memory unless a test asks for it.
 *
 * Checks that segments are leases (the daemon's leased bytes follow
 * arena_stats), that arena_trim() gives them back (parked: the daemon's
 * books keep them until it takes them or we release the parking cache), that a fork child gets
 * private copies of shared memory, that no daemon means ENOMEM, and the
 * seeded stress on shared memory.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "admin.h"
#include "arena.h"
#include "conn.h"
#include "conn.h"
#include "fixture.h"
#include "alloc/internal.h"

typedef struct pool_stress_params {
    unsigned threads;
    unsigned ops;
    unsigned seed;
} pool_stress_params_t;

int pool_stress_run(const pool_stress_params_t *params, char *err, size_t errlen);

static arena_test_daemon_t daemon_;

/* Every test gets a daemon with a 256 MiB budget (the shared fixture). */
static const char *const daemon_args[] = {"--budget", "256M", NULL};

/* Bytes the daemon says are leased (all clients; tests run alone). */
static uint64_t daemon_leased(void)
{
    arena_conn_t *c = NULL;
    ck_assert_int_eq(arena_connect(daemon_.socket, &c), 0);
    arena__admin_status_t st;
    ck_assert_int_eq(arena__admin_status(c, &st), 0);
    arena_disconnect(c);
    return st.leased_bytes;
}

START_TEST(test_segments_are_leases)
{
    void *p = arena_malloc(1000);
    ck_assert_ptr_nonnull(p);
    void *big = arena_malloc((size_t)8 << 20);
    ck_assert_ptr_nonnull(big);
    memset(big, 7, (size_t)8 << 20);
    arena_stats_t st;
    ck_assert_int_eq(arena_stats(&st), 0);
    ck_assert_uint_eq(st.lease_count, 2);
    ck_assert_uint_eq(daemon_leased(), st.leased_bytes);
    ck_assert_uint_ge(st.leased_bytes, (size_t)12 << 20);
    arena_free(big);
    ck_assert_int_eq(arena_stats(&st), 0);
    ck_assert_uint_eq(st.lease_count, 1);
    /* The huge block is parked for reuse within the decay window: still
     * ours in the daemon's books, parked in ours. */
    ck_assert_uint_eq(arena__region_parked_bytes(), (size_t)8 << 20);
    ck_assert_uint_eq(daemon_leased(), st.leased_bytes + arena__region_parked_bytes());
    arena_free(p);
    ck_assert_int_gt(arena_trim(), 0);
    ck_assert_int_eq(arena_stats(&st), 0);
    ck_assert_uint_eq(st.lease_count, 0);
    /* The emptied segment is parked, not released: still ours in the
     * daemon's books until it takes it (test_pool_park has the details);
     * so is the huge block. */
    ck_assert_uint_eq(st.parked_bytes, ARENA__SEGMENT_SIZE + ((size_t)8 << 20));
    ck_assert_uint_eq(daemon_leased(), ARENA__SEGMENT_SIZE + ((size_t)8 << 20));
    /* Released outright (what pressure does): the daemon has it back. */
    ck_assert_int_eq(arena__region_park_release(),
                     (long long)(ARENA__SEGMENT_SIZE + ((size_t)8 << 20)));
    ck_assert_uint_eq(daemon_leased(), 0);
}
END_TEST

START_TEST(test_region_is_lease)
{
    arena__region_t r;
    ck_assert_int_eq(arena__region_acquire((size_t)4 << 20, (size_t)4 << 20, &r), 0);
    ck_assert(!r.anonymous);
    ck_assert_uint_ne(r.lease_id, 0);
    ck_assert_uint_eq((uintptr_t)r.addr % ((size_t)4 << 20), 0);
    ck_assert_uint_ge(daemon_leased(), (size_t)4 << 20);
    memset(r.addr, 9, r.size);
    ck_assert_int_eq(arena__region_release(&r), 0);
    ck_assert_uint_eq(daemon_leased(), 0);
}
END_TEST

START_TEST(test_fallback_decision_remembered)
{
    /* No daemon at first: with the fallback allowed, regions are anonymous,
     * and the daemon is not asked again for a few seconds even once it is
     * back; after that window, regions are leases again. */
    ck_assert_int_eq(arena_test_daemon_stop(&daemon_), 0);
    arena__region_allow_fallback(true);
    arena__region_t r1, r2, r3;
    ck_assert_int_eq(arena__region_acquire(65536, 65536, &r1), 0);
    ck_assert(r1.anonymous);
    arena_test_fixture_setup();
    ck_assert_int_eq(arena__region_acquire(65536, 65536, &r2), 0);
    ck_assert(r2.anonymous);
    (void)usleep(3300 * 1000);
    ck_assert_int_eq(arena__region_acquire(65536, 65536, &r3), 0);
    ck_assert(!r3.anonymous);
    ck_assert_uint_ne(r3.lease_id, 0);
    ck_assert_int_eq(arena__region_release(&r1), 0);
    ck_assert_int_eq(arena__region_release(&r2), 0);
    ck_assert_int_eq(arena__region_release(&r3), 0);
    ck_assert_uint_eq(daemon_leased(), 0);
}
END_TEST

static void *alloc_40m_and_exit(void *arg)
{
    void **objs = arg;
    for (int i = 0; i < 10000; i++) {
        objs[i] = arena_malloc(4000);
    }
    return NULL;
}

START_TEST(test_pressure_trims)
{
    /* Budget 64M. A thread leaves ~40 MiB of segments behind, all freed:
     * idle memory only a trim gives back. Another process asks for 48 MiB
     * and waits; the daemon sends us Pressure, our trim hook returns the
     * idle segments, and the other process gets its lease. */
    static const char *const small_budget[] = {"--budget", "64M", NULL};
    ck_assert_int_eq(arena_test_daemon_stop(&daemon_), 0);
    arena_test_daemon_up(&daemon_, NULL, small_budget, ARENA_TEST_EXPORT_SOCKET);
    static void *objs[10000];
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, alloc_40m_and_exit, objs), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    for (int i = 0; i < 10000; i++) {
        ck_assert_ptr_nonnull(objs[i]);
        arena_free(objs[i]);
    }
    ck_assert_uint_ge(daemon_leased(), (size_t)36 << 20);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        arena_conn_t *c = NULL;
        arena_lease_t l;
        if (arena_connect(daemon_.socket, &c) != 0) {
            _exit(2);
        }
        int r = arena_lease(c, (size_t)48 << 20, 20000, &l);
        if (r != 0) {
            fprintf(stderr, "lease: %s\n", arena_strerror(r));
        }
        _exit(r == 0 ? 0 : 3);
    }
    int status = 0;
    pid_t done = 0;
    for (int i = 0; i < 400 && done == 0; i++) {
        (void)arena_process_notifications();
        done = waitpid(pid, &status, WNOHANG);
        if (done == 0) {
            (void)usleep(50 * 1000);
        }
    }
    if (done == 0) {
        (void)kill(pid, SIGKILL);
        (void)waitpid(pid, &status, 0);
        arena_stats_t st;
        (void)arena_stats(&st);
        ck_abort_msg("the other process never got its lease (trims %llu, leases %llu)",
                     (unsigned long long)arena__notify_trims_total(),
                     (unsigned long long)st.lease_count);
    }
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    arena_stats_t st;
    ck_assert_int_eq(arena_stats(&st), 0);
    ck_assert_uint_le(st.lease_count, 1);
}
END_TEST

START_TEST(test_trim_after_threads)
{
    pool_stress_params_t p = {.threads = 3, .ops = 20000, .seed = 77};
    const char *small = getenv("POOL_TEST_SMALL");
    if (small != NULL && small[0] == '1') {
        p.ops = 5000;
    }
    char err[300] = "";
    ck_assert_msg(pool_stress_run(&p, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_gt(daemon_leased(), 0); /* abandoned segments still held */
    (void)arena_trim();
    arena_stats_t st;
    ck_assert_int_eq(arena_stats(&st), 0);
    ck_assert_uint_eq(st.live_bytes, 0);
    ck_assert_uint_eq(st.lease_count, 0);
    /* Every segment given back: parked up to the cache's bound, the rest
     * released. */
    ck_assert_uint_eq(daemon_leased(), arena__region_parked_bytes());
    ck_assert_uint_le(arena__region_parked_bytes(), ARENA__PARK_CACHE_BYTES);
    (void)arena__region_park_release();
    ck_assert_uint_eq(daemon_leased(), 0);
}
END_TEST

static void *spin_thread(void *arg)
{
    /* A second thread with live objects in the parent while it forks. */
    void **out = arg;
    *out = arena_malloc(5000);
    return NULL;
}

START_TEST(test_fork_shared_memory_private)
{
    pthread_t t;
    void *other = NULL;
    ck_assert_int_eq(pthread_create(&t, NULL, spin_thread, &other), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    char *obj = arena_malloc(64);
    char *large = arena_malloc(300000);
    strcpy(obj, "before");
    memset(large, 'b', 300000);
    int to_child[2], to_parent[2];
    ck_assert_int_eq(pipe(to_child), 0);
    ck_assert_int_eq(pipe(to_parent), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char c;
        strcpy(obj, "child");
        memset(large, 'c', 300000);
        if (write(to_parent[1], "x", 1) != 1 || read(to_child[0], &c, 1) != 1) {
            _exit(3);
        }
        if (strcmp(obj, "child") != 0 || large[299999] != 'c') {
            _exit(4); /* the parent's write leaked into the child */
        }
        /* The child allocates through a connection of its own. */
        void *p = arena_malloc((size_t)6 << 20);
        if (p == NULL) {
            _exit(5);
        }
        memset(p, 1, (size_t)6 << 20);
        arena_free(p);
        arena_free(obj);
        arena_free(large);
        arena_free(other);
        _exit(0);
    }
    char c;
    ck_assert_int_eq(read(to_parent[0], &c, 1), 1);
    ck_assert_str_eq(obj, "before");
    ck_assert_int_eq(large[0], 'b');
    strcpy(obj, "parent");
    memset(large, 'p', 300000);
    ck_assert_int_eq(write(to_child[1], "x", 1), 1);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    ck_assert_str_eq(obj, "parent");
    ck_assert_int_eq(large[12345], 'p');
    arena_free(obj);
    arena_free(large);
    arena_free(other);
}
END_TEST

START_TEST(test_stress_shared)
{
    const char *small = getenv("POOL_TEST_SMALL");
    pool_stress_params_t p = {.threads = 4, .ops = 50000, .seed = 4242};
    if (small != NULL && small[0] == '1') {
        p.threads = 3;
        p.ops = 10000;
    }
    char err[300] = "";
    ck_assert_msg(pool_stress_run(&p, err, sizeof(err)) == 0, "%s", err);
}
END_TEST

START_TEST(test_no_daemon_enomem)
{
    /* The daemon goes away before the first allocation: without the
     * fallback, allocation fails cleanly. */
    ck_assert_int_eq(arena_test_daemon_stop(&daemon_), 0);
    errno = 0;
    ck_assert_ptr_null(arena_malloc(100));
    ck_assert_int_eq(errno, ENOMEM);
    errno = 0;
    ck_assert_ptr_null(arena_malloc((size_t)10 << 20));
    ck_assert_int_eq(errno, ENOMEM);
    /* Asked for explicitly, the fallback works. */
    arena__region_allow_fallback(true);
    void *p = arena_malloc(100);
    ck_assert_ptr_nonnull(p);
    arena_free(p);
}
END_TEST

START_TEST(test_budget_exhausted)
{
    /* More than the 256 MiB budget: NULL and ENOMEM, no fallback. */
    errno = 0;
    void *p = arena_malloc((size_t)300 << 20);
    ck_assert_ptr_null(p);
    ck_assert_int_eq(errno, ENOMEM);
    void *q = arena_malloc((size_t)100 << 20);
    ck_assert_ptr_nonnull(q);
    arena_free(q);
}
END_TEST

static Suite *daemon_suite(void)
{
    Suite *s = suite_create("pool_daemon");
    TCase *tc = tcase_create("daemon");
    tcase_set_timeout(tc, 120);
    /* The cases compare the client's parked books with the daemon's: the
     * daemon's parked decay (a slow run takes more than its second) would
     * take parked leases between the two looks. test_rss tests it. */
    arena_test_fixture_use(&daemon_, "parked_decay_ms = 0\n", daemon_args,
                           ARENA_TEST_EXPORT_SOCKET);
    tcase_add_checked_fixture(tc, arena_test_fixture_setup, arena_test_fixture_teardown);
    tcase_add_test(tc, test_segments_are_leases);
    tcase_add_test(tc, test_region_is_lease);
    tcase_add_test(tc, test_fallback_decision_remembered);
    tcase_add_test(tc, test_pressure_trims);
    tcase_add_test(tc, test_trim_after_threads);
    tcase_add_test(tc, test_fork_shared_memory_private);
    tcase_add_test(tc, test_stress_shared);
    tcase_add_test(tc, test_no_daemon_enomem);
    tcase_add_test(tc, test_budget_exhausted);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    (void)setenv("ARENA_REQUIRE_DAEMON", "0", 1);
    (void)unsetenv("ARENA_FALLBACK");
    return arena_test_run(daemon_suite(), NULL);
}
