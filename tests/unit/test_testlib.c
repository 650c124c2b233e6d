/* SPDX-License-Identifier: MIT
 *
 * test_testlib.c -- the tests' own library (tests/lib) on its own, without a
 * daemon: run.c collects output, feeds stdin, reports exit codes and
 * signals, kills on time-out and is not held by a child that daemonises;
 * child.c encodes how a child ended; proc.c reads signal handlers, fds and
 * RSS from /proc; peer.c frames and Envelopes with a
 * passed fd over a socketpair, and refuses junk; sock.c refuses a path that
 * does not fit; tmpdir.c removes a tree without following links.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_main.h"
#include "child.h"
#include "peer.h"
#include "proc.h"
#include "run.h"
#include "sock.h"
#include "tmpdir.h"

START_TEST(test_run_collects_and_feeds)
{
    const char *argv[] = {"sh", "-c", "cat; echo err >&2; exit 3", NULL};
    const char *env[] = {"ARENA_TESTLIB_X=1", NULL};
    arena_run_opts_t opts = {.input = "hello\n", .env = env};
    arena_run_t r;
    ck_assert_int_eq(arena_run(argv, &opts, &r), 0);
    ck_assert_int_eq(r.code, 3);
    ck_assert_str_eq(r.out, "hello\n");
    ck_assert_str_eq(r.err, "err\n");
    arena_run_free(&r);
    arena_run_free(&r); /* twice is fine */

    const char *envp[] = {"sh", "-c", "echo $ARENA_TESTLIB_X; echo two >&2", NULL};
    opts = (arena_run_opts_t){.env = env, .merge_err = true};
    ck_assert_int_eq(arena_run(envp, &opts, &r), 0);
    ck_assert_int_eq(r.code, 0);
    ck_assert_str_eq(r.out, "1\ntwo\n");
    ck_assert_str_eq(r.err, "");
    arena_run_free(&r);

    /* More than a pipe holds, on both pipes at once. */
    const char *big[] = {"sh", "-c", "head -c 300000 /dev/zero; head -c 200000 /dev/zero >&2",
                         NULL};
    ck_assert_int_eq(arena_run(big, NULL, &r), 0);
    ck_assert_uint_eq(r.out_len, 300000);
    ck_assert_uint_eq(r.err_len, 200000);
    arena_run_free(&r);

    const char *none[] = {"/nonexistent/arena-testlib", NULL};
    ck_assert_int_eq(arena_run(none, NULL, &r), 0);
    ck_assert_int_eq(r.code, 127);
    arena_run_free(&r);
}
END_TEST

START_TEST(test_run_signal_timeout_daemonised)
{
    arena_run_t r;
    const char *killed[] = {"sh", "-c", "kill -TERM $$", NULL};
    ck_assert_int_eq(arena_run(killed, NULL, &r), 0);
    ck_assert_int_eq(r.code, -SIGTERM);
    arena_run_free(&r);

    const char *slow[] = {"sleep", "30", NULL};
    arena_run_opts_t opts = {.timeout_ms = 200};
    ck_assert_int_eq(arena_run(slow, &opts, &r), -ETIMEDOUT);
    ck_assert(r.timed_out);
    ck_assert_int_eq(r.code, -SIGKILL);
    arena_run_free(&r);

    /* The program exits at once; the child it leaves holds the pipes. */
    const char *bg[] = {"sh", "-c", "echo up; sleep 3 & exit 0", NULL};
    opts.timeout_ms = 10000;
    ck_assert_int_eq(arena_run(bg, &opts, &r), 0);
    ck_assert(!r.timed_out);
    ck_assert_int_eq(r.code, 0);
    ck_assert_str_eq(r.out, "up\n");
    arena_run_free(&r);
}
END_TEST

START_TEST(test_child_wait_and_stop)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(23);
    ck_assert_int_eq(arena_test_child_wait(pid, 5000), 23);
    ck_assert_int_eq(arena_test_child_wait(pid, 0), -ECHILD);

    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        (void)signal(SIGTERM, SIG_IGN);
        for (;;)
            (void)pause();
    }
    ck_assert_int_eq(arena_test_child_wait(pid, 50), -ETIMEDOUT);
    ck_assert_int_eq(arena_test_child_stop(pid, 100), ARENA_TEST_KILLED(SIGKILL));
    ck_assert_int_eq(arena_test_child_stop(pid, 100), -ESRCH);
}
END_TEST

static void on_usr2(int sig)
{
    (void)sig;
}

START_TEST(test_proc_signal_handlers)
{
    ck_assert_int_eq(arena_test_catches_signal(getpid(), SIGTTIN), 0);
    ck_assert(signal(SIGUSR2, on_usr2) != SIG_ERR);
    ck_assert_int_eq(arena_test_catches_signal(getpid(), SIGUSR2), 1);
    ck_assert(signal(SIGUSR2, SIG_IGN) != SIG_ERR);
    ck_assert_int_eq(arena_test_catches_signal(getpid(), SIGUSR2), 0);
    ck_assert_int_gt(arena_test_count_fds(getpid()), 2);
    ck_assert_int_gt(arena_test_rss_kib(getpid()), 0);
}
END_TEST

START_TEST(test_peer_frames)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__Hello hello = ARENA__V1__HELLO__INIT;
    arena_peer_hello_env(&env, &hello, 7, 1, "testlib");
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    ck_assert_int_eq(arena_peer_send_env(sv[0], &env, &p[0], 1, 1000), 0);
    Arena__V1__Envelope *got = NULL;
    int fd = -1;
    ck_assert_int_eq(arena_peer_recv_env(sv[1], &got, &fd, 1000), 1);
    ck_assert_int_eq(got->body_case, ARENA__V1__ENVELOPE__BODY_HELLO);
    ck_assert_uint_eq(got->request_id, 7);
    ck_assert_str_eq(got->hello->client_name, "testlib");
    arena__v1__envelope__free_unpacked(got, NULL);
    ck_assert_int_ge(fd, 0);
    (void)close(fd);

    /* Junk, a length above the cap, nothing within the time limit, and a
     * close in the middle of a frame. */
    const uint8_t junk[] = {0xff, 0xff};
    ck_assert_int_eq(arena_peer_send_frame(sv[0], junk, sizeof(junk), NULL, 0, -1), 0);
    ck_assert_int_eq(arena_peer_recv_env(sv[1], &got, NULL, 1000), -EBADMSG);
    const uint8_t huge[4] = {0xff, 0xff, 0xff, 0x7f};
    ck_assert_int_eq(arena_peer_send(sv[0], huge, sizeof(huge), NULL, 0, -1), 0);
    uint8_t *payload;
    size_t len;
    ck_assert_int_eq(arena_peer_recv_frame(sv[1], &payload, &len, NULL, 1000), -EMSGSIZE);
    ck_assert_int_eq(arena_peer_recv_frame(sv[1], &payload, &len, NULL, 50), -ETIMEDOUT);
    const uint8_t half[6] = {10, 0, 0, 0, 1, 2};
    ck_assert_int_eq(arena_peer_send(sv[0], half, sizeof(half), NULL, 0, -1), 0);
    (void)close(sv[0]);
    ck_assert_int_eq(arena_peer_recv_frame(sv[1], &payload, &len, NULL, 1000), -EPROTO);
    ck_assert_int_eq(arena_peer_recv_frame(sv[1], &payload, &len, NULL, 1000), 0);
    (void)close(sv[1]);
    (void)close(p[0]);
    (void)close(p[1]);
}
END_TEST

START_TEST(test_sock_and_rmtree)
{
    char dir[] = "/tmp/arena-testlib-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[512];
    (void)snprintf(path, sizeof(path), "%s/s.sock", dir);
    int l = arena_test_unix_socket(path, SOCK_STREAM, ARENA_TEST_SOCK_LISTEN);
    ck_assert_int_ge(l, 0);
    ck_assert_int_ne(fcntl(l, F_GETFD) & FD_CLOEXEC, 0);
    int c = arena_test_unix_socket(path, SOCK_STREAM, ARENA_TEST_SOCK_CONNECT);
    ck_assert_int_ge(c, 0);
    (void)close(c);
    (void)close(l);
    char longpath[200];
    memset(longpath, 'x', sizeof(longpath) - 1);
    longpath[sizeof(longpath) - 1] = '\0';
    ck_assert_int_eq(arena_test_unix_socket(longpath, SOCK_DGRAM, ARENA_TEST_SOCK_BIND),
                     -ENAMETOOLONG);

    /* A tree with a link out of it: the link goes, its target stays. */
    char outside[] = "/tmp/arena-testlib-out-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(outside));
    (void)snprintf(path, sizeof(path), "%s/sub", dir);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    (void)snprintf(path, sizeof(path), "%s/sub/link", dir);
    ck_assert_int_eq(symlink(outside, path), 0);
    ck_assert_int_eq(arena_test_rmtree(dir), 0);
    ck_assert_int_ne(access(dir, F_OK), 0);
    ck_assert_int_eq(access(outside, F_OK), 0);
    ck_assert_int_eq(arena_test_rmtree(outside), 0);
    ck_assert_int_eq(arena_test_rmtree(""), 0);
}
END_TEST

static Suite *testlib_suite(void)
{
    Suite *s = suite_create("testlib");
    TCase *tc = tcase_create("testlib");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_run_collects_and_feeds);
    tcase_add_test(tc, test_run_signal_timeout_daemonised);
    tcase_add_test(tc, test_child_wait_and_stop);
    tcase_add_test(tc, test_proc_signal_handlers);
    tcase_add_test(tc, test_peer_frames);
    tcase_add_test(tc, test_sock_and_rmtree);
    suite_add_tcase(s, tc);
    return s;
}

ARENA_TEST_MAIN(testlib_suite)
