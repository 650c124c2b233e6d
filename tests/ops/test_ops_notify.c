/* SPDX-License-Identifier: MIT
 *
 * test_ops_notify.c -- daemon/notify.c on its own, built twice: with
 * libsystemd (ARENA_HAVE_SYSTEMD) and with the hand-written protocol, so both
 * paths are checked the same way. Inherited sockets are set up at fd 3 in a
 * grandchild process (Check's own fds must not be clobbered), which reports
 * what ad_notify_listen_fd() said through its exit code and a pipe.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "notify.h"
#include "ops_util.h"
#include "tmpdir.h"

static char dir_[128];

static void cleanup(void)
{
    (void)arena_test_rmtree(dir_);
    dir_[0] = '\0';
}

static void setup(void)
{
    ck_assert_int_eq(atexit(cleanup), 0);
    ck_assert_int_eq(ops_tmpdir(dir_, sizeof(dir_)), 0);
}

enum { FD3_NONE, FD3_LISTENER, FD3_PIPE, FD3_UNBOUND };

typedef struct listen_result {
    int r;
    int fd;
    int nonblock;
    int cloexec;
    int env_left;
    char path[108];
    char err[256];
} listen_result_t;

/* In a child: puts the given kind of fd at 3, sets LISTEN_PID (to the
 * child's pid + pid_delta) and LISTEN_FDS, calls ad_notify_listen_fd(). */
static listen_result_t run_listen(int kind, int pid_delta, const char *fds)
{
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        listen_result_t res;
        memset(&res, 0, sizeof(res));
        int fd = -1;
        char sock[256];
        (void)snprintf(sock, sizeof(sock), "%s/l.sock", dir_);
        if (kind == FD3_LISTENER || kind == FD3_UNBOUND) {
            (void)unlink(sock);
            fd = socket(AF_UNIX, SOCK_STREAM, 0);
            struct sockaddr_un sa = {.sun_family = AF_UNIX};
            if (strlen(sock) >= sizeof(sa.sun_path))
                _exit(3);
            memcpy(sa.sun_path, sock, strlen(sock) + 1);
            if (kind == FD3_LISTENER &&
                (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0))
                _exit(3);
        } else if (kind == FD3_PIPE) {
            int q[2];
            if (pipe(q) < 0)
                _exit(3);
            fd = q[0];
        }
        if (fd >= 0 && fd != 3 && dup2(fd, 3) < 0)
            _exit(3);
        char pidbuf[32];
        (void)snprintf(pidbuf, sizeof(pidbuf), "%ld", (long)getpid() + pid_delta);
        if (fds) {
            (void)setenv("LISTEN_PID", pidbuf, 1);
            (void)setenv("LISTEN_FDS", fds, 1);
        } else {
            (void)unsetenv("LISTEN_PID");
            (void)unsetenv("LISTEN_FDS");
        }
        res.fd = -1;
        res.r = ad_notify_listen_fd(res.path, sizeof(res.path), res.err, sizeof(res.err), &res.fd);
        if (res.fd >= 0) {
            res.nonblock = (fcntl(res.fd, F_GETFL) & O_NONBLOCK) != 0;
            res.cloexec = (fcntl(res.fd, F_GETFD) & FD_CLOEXEC) != 0;
        }
        res.env_left = getenv("LISTEN_FDS") != NULL || getenv("LISTEN_PID") != NULL;
        ssize_t w = write(p[1], &res, sizeof(res));
        _exit(w == (ssize_t)sizeof(res) ? 0 : 4);
    }
    (void)close(p[1]);
    listen_result_t res;
    ssize_t got = read(p[0], &res, sizeof(res));
    (void)close(p[0]);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed: %d", st);
    ck_assert_int_eq(got, (ssize_t)sizeof(res));
    return res;
}

START_TEST(test_listen_inherited)
{
    setup();
    listen_result_t res = run_listen(FD3_LISTENER, 0, "1");
    ck_assert_msg(res.r == 1, "r=%d %s", res.r, res.err);
    ck_assert_int_eq(res.fd, 3);
    ck_assert_int_eq(res.nonblock, 1);
    ck_assert_int_eq(res.cloexec, 1);
    char sock[256];
    (void)snprintf(sock, sizeof(sock), "%s/l.sock", dir_);
    ck_assert_str_eq(res.path, sock);
    ck_assert_int_eq(res.env_left, 0);
}
END_TEST

START_TEST(test_listen_other_pid)
{
    setup();
    listen_result_t res = run_listen(FD3_LISTENER, 1, "1");
    ck_assert_int_eq(res.r, 0);
    ck_assert_int_eq(res.fd, -1); /* untouched */
    ck_assert_int_eq(res.env_left, 0);
}
END_TEST

START_TEST(test_listen_none)
{
    setup();
    listen_result_t res = run_listen(FD3_NONE, 0, NULL);
    ck_assert_int_eq(res.r, 0);
    ck_assert_int_eq(res.fd, -1);
}
END_TEST

START_TEST(test_listen_pipe_refused)
{
    setup();
    listen_result_t res = run_listen(FD3_PIPE, 0, "1");
    ck_assert_int_eq(res.r, -ENOTSOCK);
    ck_assert_int_eq(res.fd, -1);
    ck_assert_msg(strstr(res.err, "none a listening") != NULL, "%s", res.err);
}
END_TEST

START_TEST(test_listen_not_listening_refused)
{
    setup();
    listen_result_t res = run_listen(FD3_UNBOUND, 0, "1");
    ck_assert_int_eq(res.r, -ENOTSOCK);
}
END_TEST

START_TEST(test_listen_malformed)
{
    setup();
    listen_result_t res = run_listen(FD3_LISTENER, 0, "one");
    ck_assert_int_eq(res.r, -EINVAL);
    ck_assert_int_eq(res.fd, -1);
    ck_assert_int_eq(res.env_left, 0);
    /* libsystemd calls a count of 0 malformed too; both builds agree. */
    res = run_listen(FD3_LISTENER, 0, "0");
    ck_assert_int_eq(res.r, -EINVAL);
}
END_TEST

static int bind_notify(char *path, size_t len)
{
    (void)snprintf(path, len, "%s/notify", dir_);
    int fd = ops_notify_open(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(setenv("NOTIFY_SOCKET", path, 1), 0);
    return fd;
}

static void recv_eq(int fd, const char *want)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    ck_assert_int_eq(poll(&p, 1, 5000), 1);
    char buf[1024];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_str_eq(buf, want);
}

START_TEST(test_notify_messages)
{
    setup();
    char path[256];
    int fd = bind_notify(path, sizeof(path));
    ck_assert(ad_notify_enabled());
    ck_assert_int_eq(ad_notify_ready("serving"), 0);
    recv_eq(fd, "READY=1\nSTATUS=serving");
    ck_assert_int_eq(ad_notify_status("2 clients"), 0);
    recv_eq(fd, "STATUS=2 clients");
    ck_assert_int_eq(ad_notify_watchdog(), 0);
    recv_eq(fd, "WATCHDOG=1");
    ck_assert_int_eq(ad_notify_stopping("bye"), 0);
    recv_eq(fd, "STOPPING=1\nSTATUS=bye");
    ck_assert_int_eq(ad_notify_reloading(), 0);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    ck_assert_int_eq(poll(&p, 1, 5000), 1);
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_msg(strncmp(buf, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0, "%s", buf);
    (void)close(fd);
}
END_TEST

START_TEST(test_notify_disabled_and_broken)
{
    setup();
    ck_assert_int_eq(unsetenv("NOTIFY_SOCKET"), 0);
    ck_assert(!ad_notify_enabled());
    ck_assert_int_eq(ad_notify_ready("x"), 0); /* nothing to tell: success */
    /* A socket path where nobody listens: the error comes back. */
    char path[256];
    (void)snprintf(path, sizeof(path), "%s/nobody", dir_);
    ck_assert_int_eq(setenv("NOTIFY_SOCKET", path, 1), 0);
    ck_assert_int_lt(ad_notify_ready("x"), 0);
}
END_TEST

START_TEST(test_watchdog_usec)
{
    char pid[32];
    (void)snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    ck_assert_int_eq(unsetenv("WATCHDOG_USEC"), 0);
    ck_assert_uint_eq(ad_notify_watchdog_usec(), 0);
    ck_assert_int_eq(setenv("WATCHDOG_USEC", "500000", 1), 0);
    ck_assert_int_eq(setenv("WATCHDOG_PID", pid, 1), 0);
    ck_assert_uint_eq(ad_notify_watchdog_usec(), 500000);
    (void)snprintf(pid, sizeof(pid), "%ld", (long)getpid() + 1);
    ck_assert_int_eq(setenv("WATCHDOG_PID", pid, 1), 0);
    ck_assert_uint_eq(ad_notify_watchdog_usec(), 0);
    ck_assert_int_eq(setenv("WATCHDOG_PID", "", 1), 0);
    ck_assert_int_eq(setenv("WATCHDOG_USEC", "soon", 1), 0);
    ck_assert_uint_eq(ad_notify_watchdog_usec(), 0);
}
END_TEST

static Suite *ops_notify_suite(void)
{
    Suite *s = suite_create(NOTIFY_VARIANT);
    TCase *tc = tcase_create("listen");
    tcase_set_timeout(tc, 30);
    tcase_add_unchecked_fixture(tc, ops_base_setup, ops_base_teardown);
    tcase_add_test(tc, test_listen_inherited);
    tcase_add_test(tc, test_listen_other_pid);
    tcase_add_test(tc, test_listen_none);
    tcase_add_test(tc, test_listen_pipe_refused);
    tcase_add_test(tc, test_listen_not_listening_refused);
    tcase_add_test(tc, test_listen_malformed);
    suite_add_tcase(s, tc);
    tc = tcase_create("notify");
    tcase_set_timeout(tc, 30);
    tcase_add_unchecked_fixture(tc, ops_base_setup, ops_base_teardown);
    tcase_add_test(tc, test_notify_messages);
    tcase_add_test(tc, test_notify_disabled_and_broken);
    tcase_add_test(tc, test_watchdog_usec);
    suite_add_tcase(s, tc);
    return s;
}

ARENA_TEST_MAIN(ops_notify_suite)
