/* SPDX-License-Identifier: MIT
 *
 * test_starve_pool.c -- the no-starvation story, with the allocator heaps: a
 * generator mallocs half the budget in small objects, frees them all and
 * stops (SIGSTOP: it runs no code at all). A simulator asks for a lease that
 * only fits if the generator's parked segments are taken back: the daemon
 * grants it within the simulator's deadline, without the generator's help.
 * Resumed, the generator mallocs again and works: its parked regions are
 * gone (the unpark says so) and it gets fresh ones.
 *
 * A real arenad on a temporary socket (tests/lib/daemon.h), always stopped by the
 * teardown; the generator is a child that dies with the test process
 * (PR_SET_PDEATHSIG, SIGKILL also ends a stopped process) and is killed and
 * reaped by the teardown if the test fails.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "admin.h"
#include "arena.h"
#include "fixture.h"
#include "alloc/internal.h"

#define MiB  ((size_t)1 << 20)
#define OBJ  4000
#define NOBJ 8000 /* 32 MB: half the budget */

static arena_test_daemon_t daemon_;
static pid_t gen_pid;
static void *objs[NOBJ];

static const char *const daemon_args[] = {"--budget", "64M", NULL};

static void setup(void)
{
    arena_test_fixture_setup();
    gen_pid = 0;
}

static void teardown(void)
{
    if (gen_pid > 0) {
        (void)kill(gen_pid, SIGKILL);
        (void)waitpid(gen_pid, NULL, 0);
        gen_pid = 0;
    }
    arena_test_fixture_teardown();
}

static bool alloc_fill(unsigned seed)
{
    for (size_t i = 0; i < NOBJ; i++) {
        unsigned char *p = arena_malloc(OBJ);
        if (p == NULL) {
            return false;
        }
        memset(p, (int)((seed + i) & 0xff), OBJ);
        objs[i] = p;
    }
    for (size_t i = 0; i < NOBJ; i++) {
        const unsigned char *p = objs[i];
        if (p[0] != ((seed + i) & 0xff) || p[OBJ - 1] != ((seed + i) & 0xff)) {
            return false;
        }
    }
    return true;
}

static void free_all(void)
{
    for (size_t i = 0; i < NOBJ; i++) {
        arena_free(objs[i]);
    }
}

/* The generator: exits 0 when every step worked. */
static void generator(pid_t parent, int ready_fd)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) {
        _exit(10);
    }
    if (!alloc_fill(1)) {
        _exit(11);
    }
    free_all();
    /* Everything free: all but the spare segment are parked now, with no
     * trim and no call to the daemon. */
    arena__region_park_info_t before;
    arena__region_park_info(&before);
    if (before.count == 0) {
        _exit(12);
    }
    if (write(ready_fd, "r", 1) != 1) {
        _exit(13);
    }
    (void)close(ready_fd);
    (void)raise(SIGSTOP);
    /* Resumed: malloc again. The parked regions the daemon took are found
     * gone and never reused; fresh leases serve the objects. */
    if (!alloc_fill(2)) {
        _exit(14);
    }
    arena__region_park_info_t after;
    arena__region_park_info(&after);
    if (after.lost == before.lost) {
        _exit(15);
    }
    free_all();
    _exit(0);
}

/* Bytes the daemon lists for process pid: leased, and parked. */
static void daemon_view(pid_t pid, uint64_t *ret_leased, uint64_t *ret_parked)
{
    arena_conn_t *c = NULL;
    ck_assert_int_eq(arena_connect(daemon_.socket, &c), 0);
    arena__admin_clients_t *cl = NULL;
    ck_assert_int_eq(arena__admin_clients(c, &cl), 0);
    uint64_t leased = 0, parked = 0;
    for (size_t i = 0; i < cl->count; i++) {
        if (cl->items[i].pid == (uint32_t)pid) {
            leased += cl->items[i].leased_bytes;
            parked += cl->items[i].parked_bytes;
        }
    }
    arena__admin_clients_free(cl);
    arena_disconnect(c);
    *ret_leased = leased;
    *ret_parked = parked;
}

START_TEST(test_stopped_generator_feeds_simulator)
{
    int pfd[2];
    ck_assert_int_eq(pipe2(pfd, O_CLOEXEC), 0);
    pid_t parent = getpid();
    gen_pid = fork();
    ck_assert_int_ge(gen_pid, 0);
    if (gen_pid == 0) {
        (void)close(pfd[0]);
        generator(parent, pfd[1]);
    }
    (void)close(pfd[1]);
    char c;
    ck_assert_int_eq(read(pfd[0], &c, 1), 1);
    (void)close(pfd[0]);
    int status = 0;
    ck_assert_int_eq(waitpid(gen_pid, &status, WUNTRACED), gen_pid);
    ck_assert(WIFSTOPPED(status));

    uint64_t leased = 0, parked = 0;
    daemon_view(gen_pid, &leased, &parked);
    ck_assert_uint_ge(leased, 32 * MiB);
    ck_assert_uint_ge(parked, leased - 8 * MiB); /* the spare, a kept page */

    /* The simulator: 48 MiB fit only if at least 16 MiB of the stopped
     * generator's parked memory is taken back. */
    arena_conn_t *sim = NULL;
    ck_assert_int_eq(arena_connect(daemon_.socket, &sim), 0);
    arena_lease_t lease;
    int r = arena_lease(sim, 48 * MiB, 5000, &lease);
    ck_assert_msg(r == 0, "simulator refused: %s", arena_strerror(r));
    memset(lease.addr, 0x5a, lease.size);
    uint64_t leased_after = 0, parked_after = 0;
    daemon_view(gen_pid, &leased_after, &parked_after);
    ck_assert_uint_le(leased_after, leased - 16 * MiB);
    ck_assert_uint_eq(arena_release(sim, &lease), 0);
    arena_disconnect(sim);

    /* The generator resumes and works on fresh leases. */
    ck_assert_int_eq(kill(gen_pid, SIGCONT), 0);
    ck_assert_int_eq(waitpid(gen_pid, &status, 0), gen_pid);
    gen_pid = 0;
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

static Suite *starve_pool_suite(void)
{
    Suite *s = suite_create("starve_pool");
    TCase *tc = tcase_create("story");
    tcase_set_timeout(tc, 60);
    arena_test_fixture_use(&daemon_, NULL, daemon_args, ARENA_TEST_EXPORT_SOCKET);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_stopped_generator_feeds_simulator);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    (void)unsetenv("ARENA_FALLBACK");
    return arena_test_run(starve_pool_suite(), NULL);
}
