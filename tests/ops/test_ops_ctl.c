/* SPDX-License-Identifier: MIT
 *
 * test_ops_ctl.c -- arenactl as an operator's tool, against a real arenad
 * (tests/lib/daemon.h) while this process holds leases: `top
 * --once` prints a frame with the expected columns and figures, `--json top`
 * prints one JSON document per frame, the live view on a pseudo-terminal
 * redraws with ANSI escapes and quits on q (restoring the screen), bad top
 * options exit 2, and every command answers --help.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check_main.h"
#include "arena.h"
#include "fixture.h"
#include "run.h"

#ifndef ARENACTL_PATH
#error "ARENACTL_PATH must be defined by the build"
#endif

#define MiB (1024u * 1024u)

static arena_test_daemon_t daemon_;

static void start(void)
{
    const char *const args[] = {"--budget", "64M", NULL};
    arena_test_daemon_up(&daemon_, NULL, args, 0);
}

typedef arena_run_t run_t;

/* Runs arenactl with args (NULL-terminated, after argv[0]); stdout and stderr
 * go to r->out, in order; r's earlier output is freed. */
static void ctl(run_t *r, const char *const *args)
{
    const char *argv[32] = {ARENACTL_PATH};
    int n = 1;
    for (; args[n - 1] && n < 31; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    arena_run_opts_t opts = {.merge_err = true};
    arena_run_free(r);
    int rc = arena_run(argv, &opts, r);
    ck_assert_msg(rc == 0, "arenactl: %s", strerror(-rc));
}

START_TEST(test_top_once)
{
    start();
    arena_conn_t *c;
    ck_assert_int_eq(arena_connect(daemon_.socket, &c), 0);
    arena_lease_t a, b;
    ck_assert_int_eq(arena_lease(c, 2 * MiB, 0, &a), 0);
    ck_assert_int_eq(arena_lease(c, 1 * MiB, 0, &b), 0);

    static run_t r;
    const char *const args[] = {"--socket", daemon_.socket, "top", "--once", NULL};
    ctl(&r, args);
    ck_assert_msg(r.code == 0, "exit %d: %s", r.code, r.out);
    ck_assert_msg(strstr(r.out, "\033[") == NULL, "ANSI escapes in --once output");
    ck_assert_msg(strstr(r.out, "Budget 64.0 MiB  leased 3.0 MiB") != NULL, "%s", r.out);
    ck_assert_msg(strstr(r.out, "pressure low") != NULL, "%s", r.out);
    ck_assert_msg(
        strstr(r.out,
               " CLIENT     PID    UID NAME             LEASES     LEASED       LIVE     PARKED"
               "       FAIR WAIT  SHARE CONNECTED\n") != NULL,
        "%s", r.out);
    /* This process's row: 2 leases, 3 MiB, none parked, nothing waiting,
     * 4.7% of the budget. */
    char row[128];
    (void)snprintf(row, sizeof(row), " %7ld ", (long)getpid());
    const char *mine = strstr(r.out, row);
    ck_assert_msg(mine != NULL, "no row for pid %ld: %s", (long)getpid(), r.out);
    const char *eol = strchr(mine, '\n');
    ck_assert_ptr_nonnull(eol);
    char line[256];
    (void)snprintf(line, sizeof(line), "%.*s", (int)(eol - mine), mine);
    ck_assert_msg(strstr(line, "      2    3.0 MiB        0 B ") != NULL, "row: %s", line);
    ck_assert_msg(strstr(line, "    0   4.7% ") != NULL, "row: %s", line);
    ck_assert_msg(strstr(r.out, "Clients 2  leases 2") != NULL, "%s", r.out);

    const char *const jargs[] = {"--socket", daemon_.socket, "--json", "top", "--count",
                                 "2",        "--interval",   "0.1",    NULL};
    ctl(&r, jargs);
    ck_assert_int_eq(r.code, 0);
    /* Two lines, each a document with the figures. */
    char *nl = strchr(r.out, '\n');
    ck_assert_ptr_nonnull(nl);
    ck_assert_ptr_nonnull(strchr(nl + 1, '\n'));
    ck_assert_str_eq(strchr(nl + 1, '\n') + 1, "");
    ck_assert_msg(strncmp(r.out, "{\"daemon_version\":", 18) == 0, "%s", r.out);
    ck_assert_msg(strstr(r.out, "\"leased_bytes\":3145728,") != NULL, "%s", r.out);
    ck_assert_msg(strstr(r.out, "\"pressure\":\"low\"") != NULL, "%s", r.out);
    ck_assert_msg(strstr(r.out, "\"fair_share\":") != NULL, "%s", r.out);
    if (access("/usr/bin/python3", X_OK) == 0) {
        char cmd[512];
        (void)snprintf(cmd, sizeof(cmd),
                       "%s --socket '%s' --json top --once | /usr/bin/python3 -c 'import json,sys; "
                       "d=json.load(sys.stdin); assert d[\"budget\"]==64<<20, d'",
                       ARENACTL_PATH, daemon_.socket);
        ck_assert_int_eq(system(cmd), 0);
    }
    ck_assert_int_eq(arena_release(c, &a), 0);
    ck_assert_int_eq(arena_release(c, &b), 0);
    arena_disconnect(c);
}
END_TEST

START_TEST(test_top_pressure_full)
{
    start();
    arena_conn_t *c;
    ck_assert_int_eq(arena_connect(daemon_.socket, &c), 0);
    arena_lease_t a;
    ck_assert_int_eq(arena_lease(c, 62 * MiB, 0, &a), 0);
    static run_t r;
    const char *const args[] = {"--socket", daemon_.socket, "top", "--once", NULL};
    ctl(&r, args);
    ck_assert_int_eq(r.code, 0);
    ck_assert_msg(strstr(r.out, "pressure full") != NULL, "%s", r.out);
    arena_disconnect(c);
}
END_TEST

/* Runs top on a pseudo-terminal, waits for two redraws, sends key (q or
 * Ctrl-C) and checks that top exits 0 with the screen restored. */
static void top_on_pty(char key)
{
    int master;
    pid_t pid = forkpty(&master, NULL, NULL, NULL);
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        execl(ARENACTL_PATH, ARENACTL_PATH, "--socket", daemon_.socket, "top", "--interval", "0.1",
              (char *)NULL);
        _exit(127);
    }
    static char buf[1 << 16];
    size_t used = 0;
    int frames = 0;
    bool sent_q = false;
    struct timespec t0, now;
    (void)clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct pollfd p = {.fd = master, .events = POLLIN};
        int n = poll(&p, 1, 200);
        if (n > 0) {
            ssize_t got = read(master, buf + used, sizeof(buf) - 1 - used);
            if (got <= 0)
                break; /* the child closed the terminal */
            used += (size_t)got;
            buf[used] = '\0';
        }
        frames = 0;
        for (const char *s = buf; (s = strstr(s, "\033[H\033[2J")) != NULL; s++)
            frames++;
        /* Two redraws seen: ask it to quit. */
        if (frames >= 2 && !sent_q) {
            ck_assert_int_eq(write(master, &key, 1), 1);
            sent_q = true;
        }
        /* Read until the child closes the terminal (EIO), so the bytes it
         * writes on its way out are seen too. */
        (void)clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 20)
            break;
    }
    /* The terminal may close a moment before the child can be reaped. */
    int st = 0;
    pid_t w = 0;
    for (int i = 0; i < 500 && (w = waitpid(pid, &st, WNOHANG)) == 0; i++)
        (void)usleep(10000);
    if (w == 0) {
        (void)kill(pid, SIGKILL);
        (void)waitpid(pid, &st, 0);
        ck_abort_msg("top did not quit on key %d; output: %.400s", key, buf);
    }
    (void)close(master);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
    ck_assert_int_ge(frames, 2);
    ck_assert_msg(strstr(buf, "\033[?1049h") != NULL, "no alternate screen");
    ck_assert_msg(strstr(buf, "press q to quit") != NULL, "no hint");
    ck_assert_msg(strstr(buf, "CLIENT") != NULL, "no table");
    /* The screen and cursor are restored on the way out. */
    const char *restore = strstr(buf, "\033[?25h\033[?1049l");
    ck_assert_msg(restore != NULL, "screen not restored");
}

START_TEST(test_top_live_pty)
{
    start();
    top_on_pty('q');
}
END_TEST

START_TEST(test_top_live_pty_ctrl_c)
{
    start();
    top_on_pty(3); /* the terminal turns it into SIGINT */
}
END_TEST

START_TEST(test_top_daemon_gone)
{
    /* The daemon stops under a running top: it says so and exits 1. */
    start();
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        (void)dup2(p[1], STDOUT_FILENO);
        (void)dup2(p[1], STDERR_FILENO);
        execl(ARENACTL_PATH, ARENACTL_PATH, "--socket", daemon_.socket, "top", "--interval", "0.1",
              (char *)NULL);
        _exit(127);
    }
    (void)close(p[1]);
    /* Wait for the first frame, then stop the daemon. */
    static char buf[1 << 16];
    size_t used = 0;
    while (!strstr(buf, "CONNECTED")) {
        ssize_t got = read(p[0], buf + used, sizeof(buf) - 1 - used);
        ck_assert_int_gt(got, 0);
        used += (size_t)got;
        buf[used] = '\0';
    }
    ck_assert_int_eq(arena_test_daemon_stop(&daemon_), 0);
    ssize_t got;
    while ((got = read(p[0], buf + used, sizeof(buf) - 1 - used)) > 0)
        used += (size_t)got;
    buf[used] = '\0';
    (void)close(p[0]);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %d: %s", st, buf);
    ck_assert_msg(strstr(buf, "arenactl: top: ") != NULL, "%s", buf);
}
END_TEST

START_TEST(test_top_errors)
{
    static run_t r;
    const char *const bad_interval[] = {"top", "--interval", "0", NULL};
    ctl(&r, bad_interval);
    ck_assert_int_eq(r.code, 2);
    ck_assert_msg(strstr(r.out, "--interval") != NULL, "%s", r.out);
    const char *const bad_count[] = {"top", "--count", "x", NULL};
    ctl(&r, bad_count);
    ck_assert_int_eq(r.code, 2);
    const char *const bad_opt[] = {"top", "--bytes", "1M", NULL};
    ctl(&r, bad_opt);
    ck_assert_int_eq(r.code, 2);
    const char *const extra[] = {"top", "status", NULL};
    ctl(&r, extra);
    ck_assert_int_eq(r.code, 2);
    const char *const nodaemon[] = {"--socket", "/nonexistent/arenad.sock", "top", "--once", NULL};
    ctl(&r, nodaemon);
    ck_assert_int_eq(r.code, 2);
    ck_assert_msg(strstr(r.out, "/nonexistent/arenad.sock") != NULL, "%s", r.out);
}
END_TEST

START_TEST(test_shares_events)
{
    start();
    arena_conn_t *c;
    ck_assert_int_eq(arena_connect(daemon_.socket, &c), 0);
    arena_lease_t a;
    ck_assert_int_eq(arena_lease(c, 2 * MiB, 0, &a), 0);
    static run_t r;
    const char *const shares[] = {"--socket", daemon_.socket, "shares", NULL};
    ctl(&r, shares);
    ck_assert_msg(r.code == 0, "exit %d: %s", r.code, r.out);
    ck_assert_msg(strstr(r.out, "WEIGHT") != NULL && strstr(r.out, "2.0 MiB") != NULL, "%s", r.out);
    const char *const jshares[] = {"--socket", daemon_.socket, "--json", "shares", NULL};
    ctl(&r, jshares);
    ck_assert_int_eq(r.code, 0);
    ck_assert_msg(strncmp(r.out, "{\"clients\":[", 12) == 0, "%s", r.out);
    ck_assert_msg(strstr(r.out, "\"leased_bytes\":2097152") != NULL, "%s", r.out);
    const char *const events[] = {"--socket", daemon_.socket, "--json", "events", NULL};
    ctl(&r, events);
    ck_assert_msg(r.code == 0, "exit %d: %s", r.code, r.out);
    ck_assert_msg(strncmp(r.out, "{\"events\":[", 11) == 0, "%s", r.out);
    const char *const bad[] = {"--socket", daemon_.socket, "events", "--since", "x", NULL};
    ctl(&r, bad);
    ck_assert_int_eq(r.code, 2);
    const char *const bad2[] = {"--socket", daemon_.socket, "shares", "--since", "1", NULL};
    ctl(&r, bad2);
    ck_assert_int_eq(r.code, 2);
    arena_disconnect(c);
}
END_TEST

START_TEST(test_help_everywhere)
{
    static run_t r;
    const char *const top[] = {"--help", NULL};
    ctl(&r, top);
    ck_assert_int_eq(r.code, 0);
    static const char *const cmds[] = {"status",  "clients", "leases", "reclaim",
                                       "metrics", "top",     "shares", "events"};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        ck_assert_msg(strstr(r.out, cmds[i]) != NULL, "--help does not list %s", cmds[i]);
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        static run_t h;
        const char *const args[] = {cmds[i], "--help", NULL};
        ctl(&h, args);
        ck_assert_msg(h.code == 0, "%s --help: exit %d", cmds[i], h.code);
        char want[64];
        (void)snprintf(want, sizeof(want), "] %s", cmds[i]);
        ck_assert_msg(strncmp(h.out, "Usage: arenactl", 15) == 0 && strstr(h.out, want),
                      "%s --help: %s", cmds[i], h.out);
    }
}
END_TEST

static Suite *ops_ctl_suite(void)
{
    Suite *s = suite_create("ops_ctl");
    TCase *tc = tcase_create("top");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_top_once);
    tcase_add_test(tc, test_top_pressure_full);
    tcase_add_test(tc, test_top_live_pty);
    tcase_add_test(tc, test_top_live_pty_ctrl_c);
    tcase_add_test(tc, test_top_daemon_gone);
    tcase_add_test(tc, test_top_errors);
    tcase_add_test(tc, test_shares_events);
    tcase_add_test(tc, test_help_everywhere);
    suite_add_tcase(s, tc);
    return s;
}

ARENA_TEST_MAIN(ops_ctl_suite)
