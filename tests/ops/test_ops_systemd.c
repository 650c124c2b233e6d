/* SPDX-License-Identifier: MIT
 *
 * test_ops_systemd.c -- arenad under the systemd service protocol, end to end
 * with the real binary: notifications on a NOTIFY_SOCKET the test binds itself
 * (READY, STATUS, WATCHDOG, RELOADING/READY around SIGHUP, STOPPING), socket
 * activation through systemd-socket-activate and through a hand-made
 * LISTEN_FDS, and a live reload of budget and limits that keeps a client's
 * connection and leases.
 *
 * Every test runs in its own process (Check's fork mode); the daemon and any
 * helper die with it (PR_SET_PDEATHSIG) and an atexit handler stops them and
 * removes the temporary directory, also after a failed assertion.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "check_main.h"
#include "admin.h"
#include "arena.h"
#include "child.h"
#include "ops_util.h"
#include "tmpdir.h"
#include "sock.h"

#ifndef ARENAD_PATH
#error "ARENAD_PATH must be defined by the build"
#endif

#define MiB (1024u * 1024u)

static char dir_[128];
static pid_t pid_;
static int nfd_ = -1;
static char log_[16384];

static void cleanup(void)
{
    if (pid_ > 0)
        (void)arena_test_child_stop(pid_, 5000);
    pid_ = 0;
    if (nfd_ >= 0)
        (void)close(nfd_);
    nfd_ = -1;
    (void)arena_test_rmtree(dir_);
    dir_[0] = '\0';
}

/* A temporary directory with a notify socket; NOTIFY_SOCKET points at it. */
static void setup_dir(void)
{
    ck_assert_int_eq(atexit(cleanup), 0);
    ck_assert_int_eq(ops_tmpdir(dir_, sizeof(dir_)), 0);
    char path[256];
    (void)snprintf(path, sizeof(path), "%s/notify", dir_);
    nfd_ = ops_notify_open(path);
    ck_assert_msg(nfd_ >= 0, "cannot bind %s: %s", path, strerror(-nfd_));
    ck_assert_int_eq(setenv("NOTIFY_SOCKET", path, 1), 0);
    log_[0] = '\0';
}

static void expect(const char *needle, int timeout_ms)
{
    int r = ops_notify_wait(nfd_, needle, timeout_ms, log_, sizeof(log_));
    ck_assert_msg(r == 0, "no '%s' from arenad; received: %s", needle, log_);
}

static void path_in(char *buf, size_t len, const char *name)
{
    (void)snprintf(buf, len, "%s/%s", dir_, name);
}

/* Starts arenad --foreground on DIR/arenad.sock plus extra args (up to 6). */
static void start_daemon(const char *watchdog_usec, pid_t watchdog_pid, const char *a1,
                         const char *a2, const char *a3, const char *a4)
{
    static char sock[256];
    path_in(sock, sizeof(sock), "arenad.sock");
    char *argv[16] = {(char *)ARENAD_PATH,   (char *)"--foreground", (char *)"--socket", sock,
                      (char *)"--log-level", (char *)"warn"};
    int n = 6;
    const char *extra[] = {a1, a2, a3, a4};
    for (int i = 0; i < 4 && extra[i]; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    pid_ = ops_spawn(argv, watchdog_usec, watchdog_pid);
    ck_assert_int_gt(pid_, 0);
}

static arena_conn_t *client_connect(const char *name)
{
    char sock[256];
    path_in(sock, sizeof(sock), name);
    arena_conn_t *c = NULL;
    /* A socket file exists from bind(), a moment before listen(): a refused
     * connection is retried for a while. */
    int r = arena_connect(sock, &c);
    for (int i = 0; i < 500 && r == ARENA_ENODAEMON; i++) {
        (void)usleep(20000);
        r = arena_connect(sock, &c);
    }
    ck_assert_msg(r == 0, "arena_connect(%s): %s", sock, arena_strerror(r));
    return c;
}

/* ---- sd_notify ------------------------------------------------------------------ */

START_TEST(test_notify_lifecycle)
{
    setup_dir();
    start_daemon("200000", 0, "--budget", "64M", NULL, NULL);
    /* READY comes first, once the socket accepts. */
    expect("READY=1", 10000);
    ck_assert_msg(strncmp(log_, "READY=1\nSTATUS=serving ", 23) == 0, "first message: %s", log_);
    expect("WATCHDOG=1", 5000); /* every 100 ms: half of WATCHDOG_USEC */
    expect("STATUS=0 clients", 5000);

    arena_conn_t *c = client_connect("arenad.sock");
    arena_lease_t l;
    ck_assert_int_eq(arena_lease(c, 2 * MiB, 0, &l), 0);
    /* The status line follows the change: one client, one lease of 64 MiB. */
    expect("STATUS=1 client, 1 lease, 2.0 MiB of 64.0 MiB leased (3%)", 5000);

    log_[0] = '\0';
    ck_assert_int_eq(kill(pid_, SIGHUP), 0);
    expect("RELOADING=1", 5000);
    ck_assert_msg(strstr(log_, "MONOTONIC_USEC=") != NULL, "%s", log_);
    expect("READY=1", 5000);
    /* The client survived the reload. */
    memset(l.addr, 0x5a, l.size);
    ck_assert_int_eq(arena_release(c, &l), 0);
    arena_disconnect(c);

    ck_assert_int_eq(kill(pid_, SIGTERM), 0);
    expect("STOPPING=1", 5000);
    int code = arena_test_child_wait(pid_, 5000);
    pid_ = 0;
    ck_assert_int_eq(code, 0);
}
END_TEST

START_TEST(test_notify_watchdog_other_pid)
{
    /* WATCHDOG_PID names another process: the watchdog is not ours. */
    setup_dir();
    start_daemon("100000", 1, NULL, NULL, NULL, NULL);
    expect("READY=1", 10000);
    expect("STATUS=0 clients", 5000); /* a second passed: no ping was due */
    ck_assert_msg(strstr(log_, "WATCHDOG=1") == NULL, "unexpected ping: %s", log_);
}
END_TEST

START_TEST(test_notify_unset_is_silent)
{
    /* Without NOTIFY_SOCKET the daemon says nothing and still serves. */
    setup_dir();
    ck_assert_int_eq(unsetenv("NOTIFY_SOCKET"), 0);
    start_daemon("100000", 0, NULL, NULL, NULL, NULL);
    char sock[256];
    path_in(sock, sizeof(sock), "arenad.sock");
    ck_assert(ops_wait_path(sock, 10000));
    arena_conn_t *c = NULL;
    int r = -1;
    for (int i = 0; i < 200 && r != 0; i++) {
        r = arena_connect(sock, &c);
        if (r != 0)
            (void)usleep(20000);
    }
    ck_assert_int_eq(r, 0);
    arena_disconnect(c);
    int got = ops_notify_wait(nfd_, "=", 300, log_, sizeof(log_));
    ck_assert_msg(got == -ETIMEDOUT, "unexpected: %s", log_);
}
END_TEST

/* ---- socket activation ------------------------------------------------------------ */

static const char *find_socket_activate(void)
{
    static const char *const cands[] = {"/usr/bin/systemd-socket-activate",
                                        "/bin/systemd-socket-activate",
                                        "/usr/lib/systemd/systemd-activate"};
    for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]); i++) {
        if (access(cands[i], X_OK) == 0)
            return cands[i];
    }
    return NULL;
}

START_TEST(test_socket_activate_tool)
{
    const char *tool = find_socket_activate();
    if (!tool) {
        arena_test_skip("test_socket_activate_tool: systemd-socket-activate is not installed");
        return;
    }
    setup_dir();
    char sock[256], other[256], env[300];
    path_in(sock, sizeof(sock), "activated.sock");
    path_in(other, sizeof(other), "arenad.sock");
    (void)snprintf(env, sizeof(env), "NOTIFY_SOCKET=%s", getenv("NOTIFY_SOCKET"));
    /* --socket names another path: the daemon must serve the inherited one
     * and bind nothing itself. */
    char *argv[] = {(char *)tool,
                    (char *)"-l",
                    sock,
                    (char *)"-E",
                    env,
                    (char *)ARENAD_PATH,
                    (char *)"--foreground",
                    (char *)"--socket",
                    other,
                    (char *)"--budget",
                    (char *)"64M",
                    (char *)"--log-level",
                    (char *)"warn",
                    NULL};
    pid_ = ops_spawn(argv, NULL, 0);
    ck_assert_int_gt(pid_, 0);
    ck_assert_msg(ops_wait_path(sock, 10000), "systemd-socket-activate did not listen");

    /* The first connection makes the tool exec arenad with the socket. */
    arena_conn_t *c = client_connect("activated.sock");
    expect("READY=1", 10000);
    ck_assert_msg(strstr(log_, "inherited socket") != NULL, "%s", log_);
    arena_lease_t l;
    ck_assert_int_eq(arena_lease(c, 4 * MiB, 0, &l), 0);
    memset(l.addr, 0xa5, l.size);
    ck_assert_int_eq(((unsigned char *)l.addr)[l.size - 1], 0xa5);
    arena__admin_status_t st;
    ck_assert_int_eq(arena__admin_status(c, &st), 0);
    ck_assert_str_eq(st.socket_path, sock);
    ck_assert_uint_eq(st.leased_bytes, 4 * MiB);
    struct stat sb;
    ck_assert_msg(stat(other, &sb) < 0 && errno == ENOENT, "arenad bound %s itself", other);
    ck_assert_int_eq(arena_release(c, &l), 0);
    arena_disconnect(c);

    int code = arena_test_child_stop(pid_, 5000);
    pid_ = 0;
    ck_assert_int_eq(code, 0);
    /* The socket belongs to the service manager: arenad leaves it. */
    ck_assert_msg(stat(sock, &sb) == 0 && S_ISSOCK(sb.st_mode), "inherited socket was removed");
}
END_TEST

/* Forks a child that listens on (or, with file, opens a regular file at) fd 3
 * and execs arenad with LISTEN_PID/LISTEN_FDS naming it. */
static pid_t spawn_listen_fds(const char *sock, bool file)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid > 0)
        return pid;
    (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(127);
    int fd;
    if (file) {
        fd = open(sock, O_RDWR | O_CREAT, 0600);
    } else {
        fd = arena_test_unix_socket(sock, SOCK_STREAM, ARENA_TEST_SOCK_LISTEN);
        if (fd < 0)
            _exit(126);
    }
    if (fd < 0 || dup2(fd, 3) < 0)
        _exit(126);
    (void)fcntl(3, F_SETFD, 0); /* dup2 onto itself keeps CLOEXEC */
    char p[32];
    (void)snprintf(p, sizeof(p), "%ld", (long)getpid());
    (void)setenv("LISTEN_PID", p, 1);
    (void)setenv("LISTEN_FDS", "1", 1);
    char *argv[] = {(char *)ARENAD_PATH,
                    (char *)"--foreground",
                    (char *)"--budget",
                    (char *)"64M",
                    (char *)"--log-level",
                    (char *)"warn",
                    NULL};
    execv(argv[0], argv);
    _exit(127);
}

START_TEST(test_listen_fds_by_hand)
{
    /* The protocol without any systemd tool: LISTEN_PID + LISTEN_FDS. */
    setup_dir();
    char sock[256];
    path_in(sock, sizeof(sock), "handmade.sock");
    pid_ = spawn_listen_fds(sock, false);
    expect("READY=1", 10000);
    ck_assert_msg(strstr(log_, "inherited socket") != NULL, "%s", log_);
    arena_conn_t *c = client_connect("handmade.sock");
    arena_lease_t l;
    ck_assert_int_eq(arena_lease(c, 1 * MiB, 0, &l), 0);
    memset(l.addr, 1, l.size);
    arena__admin_status_t st;
    ck_assert_int_eq(arena__admin_status(c, &st), 0);
    ck_assert_str_eq(st.socket_path, sock);
    arena_disconnect(c);
    int code = arena_test_child_stop(pid_, 5000);
    pid_ = 0;
    ck_assert_int_eq(code, 0);
    struct stat sb;
    ck_assert_int_eq(stat(sock, &sb), 0);
}
END_TEST

START_TEST(test_listen_fds_not_a_socket)
{
    /* fd 3 is a regular file: arenad refuses to start (exit 1), says why. */
    setup_dir();
    char path[256];
    path_in(path, sizeof(path), "plain-file");
    pid_ = spawn_listen_fds(path, true);
    int code = arena_test_child_wait(pid_, 10000);
    pid_ = 0;
    ck_assert_int_eq(code, 1);
}
END_TEST

/* ---- reload ------------------------------------------------------------------------ */

START_TEST(test_reload_keeps_clients)
{
    setup_dir();
    char conf[256];
    path_in(conf, sizeof(conf), "arenad.conf");
    ck_assert_int_eq(ops_write_file(conf, "# test\nbudget = 32M\nmax_leases_per_client = 2\n"), 0);
    start_daemon(NULL, 0, "--config", conf, NULL, NULL);
    expect("READY=1", 10000);

    arena_conn_t *c = client_connect("arenad.sock");
    arena_lease_t l[6];
    ck_assert_int_eq(arena_lease(c, 1 * MiB, 0, &l[0]), 0);
    ck_assert_int_eq(arena_lease(c, 1 * MiB, 0, &l[1]), 0);
    ck_assert_int_eq(arena_lease(c, 1 * MiB, 0, &l[2]), ARENA_ELIMIT);
    memset(l[0].addr, 0x11, l[0].size);
    arena__admin_status_t st;
    ck_assert_int_eq(arena__admin_status(c, &st), 0);
    ck_assert_uint_eq(st.budget, 32 * MiB);

    /* A bigger budget and limit, applied live. */
    ck_assert_int_eq(ops_write_file(conf, "budget = 96M\nmax_leases_per_client = 6\n"), 0);
    log_[0] = '\0';
    ck_assert_int_eq(kill(pid_, SIGHUP), 0);
    expect("RELOADING=1", 5000);
    expect("READY=1", 5000);
    ck_assert_msg(strstr(log_, "reload failed") == NULL, "%s", log_);
    ck_assert_int_eq(arena__admin_status(c, &st), 0);
    ck_assert_uint_eq(st.budget, 96 * MiB);
    ck_assert_uint_eq(st.clients, 1); /* the same connection */
    for (int i = 2; i < 6; i++)
        ck_assert_int_eq(arena_lease(c, 1 * MiB, 0, &l[i]), 0);
    ck_assert_int_eq(((unsigned char *)l[0].addr)[12345], 0x11);

    /* Fair-share rules reload too: a client that connects now gets the new
     * weight of its uid and is held to the new cap. */
    char rules[256];
    (void)snprintf(rules, sizeof(rules),
                   "budget = 96M\nmax_leases_per_client = 6\nweight.%u = 7\ncap.%u = 2M\n",
                   (unsigned)getuid(), (unsigned)getuid());
    ck_assert_int_eq(ops_write_file(conf, rules), 0);
    log_[0] = '\0';
    ck_assert_int_eq(kill(pid_, SIGHUP), 0);
    expect("READY=1", 5000);
    ck_assert_msg(strstr(log_, "reload failed") == NULL, "%s", log_);
    arena_conn_t *c2 = client_connect("arenad.sock");
    arena__admin_clients_t *list = NULL;
    ck_assert_int_eq(arena__admin_clients(c2, &list), 0);
    bool seen = false;
    for (size_t i = 0; i < list->count; i++) {
        if (list->items[i].pid == (uint32_t)getpid() && list->items[i].leases == 0) {
            ck_assert_uint_eq(list->items[i].weight, 7);
            seen = true;
        }
    }
    arena__admin_clients_free(list);
    ck_assert(seen);
    arena_lease_t small, big;
    ck_assert_int_eq(arena_lease(c2, 1 * MiB, 0, &small), 0);
    int r = arena_lease(c2, 2 * MiB, 0, &big);
    ck_assert_msg(r < 0, "a lease past the new 2M cap was granted");
    arena_disconnect(c2);

    /* A broken file is refused; the running settings stay. */
    ck_assert_int_eq(ops_write_file(conf, "budget = plenty\n"), 0);
    log_[0] = '\0';
    ck_assert_int_eq(kill(pid_, SIGHUP), 0);
    expect("READY=1", 5000);
    ck_assert_msg(strstr(log_, "STATUS=reload failed") != NULL, "%s", log_);
    ck_assert_int_eq(arena__admin_status(c, &st), 0);
    ck_assert_uint_eq(st.budget, 96 * MiB);
    ck_assert_uint_eq(st.leases, 6);
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(arena_release(c, &l[i]), 0);
    arena_disconnect(c);
}
END_TEST

static Suite *ops_suite(void)
{
    Suite *s = suite_create("ops_systemd");
    TCase *tc = tcase_create("notify");
    tcase_set_timeout(tc, 60);
    tcase_add_unchecked_fixture(tc, ops_base_setup, ops_base_teardown);
    tcase_add_test(tc, test_notify_lifecycle);
    tcase_add_test(tc, test_notify_watchdog_other_pid);
    tcase_add_test(tc, test_notify_unset_is_silent);
    suite_add_tcase(s, tc);
    tc = tcase_create("activation");
    tcase_set_timeout(tc, 60);
    tcase_add_unchecked_fixture(tc, ops_base_setup, ops_base_teardown);
    tcase_add_test(tc, test_socket_activate_tool);
    tcase_add_test(tc, test_listen_fds_by_hand);
    tcase_add_test(tc, test_listen_fds_not_a_socket);
    suite_add_tcase(s, tc);
    tc = tcase_create("reload");
    tcase_set_timeout(tc, 60);
    tcase_add_unchecked_fixture(tc, ops_base_setup, ops_base_teardown);
    tcase_add_test(tc, test_reload_keeps_clients);
    suite_add_tcase(s, tc);
    return s;
}

ARENA_TEST_MAIN(ops_suite)
