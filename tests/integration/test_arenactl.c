/* SPDX-License-Identifier: MIT
 *
 * test_arenactl.c -- the arenactl binary against a real arenad while client
 * processes hold leases: its JSON parses (python3's json module when present,
 * strictly for every --json output, also with a hostile client name, and
 * always our own checks of the values) and says what the clients hold;
 * tables are printed; exit codes are 0 on success, 1 when the daemon refuses,
 * 2 on usage errors and when no daemon answers (naming the socket).
 *
 * Each test starts its own daemon and stops it (atexit too, for early
 * failures); the holder children _exit() and die with the test.
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
#include "conn.h"
#include "fixture.h"
#include "run.h"
#include "wire.h"

#ifndef ARENACTL_PATH
#error "ARENACTL_PATH must be defined by the build"
#endif

#define MiB (1024u * 1024u)

static arena_test_daemon_t daemon_;
static void daemon_start(void)
{
    const char *const args[] = {"--budget", "64M", NULL};
    arena_test_daemon_up(&daemon_, NULL, args, 0);
}

/* ---- running programs --------------------------------------------------------------- */

typedef arena_run_t run_t;

/* Runs argv (argv[0] a path or a name in PATH) with stdin from `input`
 * (NULL: /dev/null); stdout and stderr are collected into *r, whose earlier
 * output is freed. */
static void run_prog(char *const argv[], const char *input, run_t *r)
{
    arena_run_opts_t opts = {.input = input};
    arena_run_free(r);
    int rc = arena_run((const char *const *)argv, &opts, r);
    ck_assert_msg(rc == 0, "%s: %s", argv[0], strerror(-rc));
}

/* arenactl --socket <daemon> followed by the words of `line`. */
static void ctl(const char *line, run_t *r)
{
    char copy[512];
    char *argv[32];
    int argc = 0;
    (void)snprintf(copy, sizeof(copy), "%s", line);
    argv[argc++] = ARENACTL_PATH;
    argv[argc++] = "--socket";
    argv[argc++] = daemon_.socket;
    for (char *save = NULL, *w = strtok_r(copy, " ", &save); w && argc < 31;
         w = strtok_r(NULL, " ", &save))
        argv[argc++] = w;
    argv[argc] = NULL;
    run_prog(argv, NULL, r);
}

static bool have_python3(void)
{
    return system("command -v python3 >/dev/null 2>&1") == 0;
}

/* Feeds `json` to python3, which loads it and evaluates `expr` on the
 * document d; returns what it printed (stripped). */
static void python_eval(const char *json, const char *expr, char *ret, size_t len)
{
    char prog[1024];
    (void)snprintf(prog, sizeof(prog), "import json,sys; d=json.load(sys.stdin); print(%s)", expr);
    char *argv[] = {"python3", "-c", prog, NULL};
    static run_t r;
    run_prog(argv, json, &r);
    ck_assert_msg(r.code == 0, "python3 could not load the JSON: %s\n%s", r.err, json);
    size_t n = strlen(r.out);
    while (n && (r.out[n - 1] == '\n' || r.out[n - 1] == ' '))
        r.out[--n] = '\0';
    (void)snprintf(ret, len, "%s", r.out);
}

/* True when python3 takes `json` as exactly one strict JSON document: UTF-8
 * only, no NaN or Infinity, no raw control characters, nothing after it. */
static bool python_strict(const char *json, char *why, size_t len)
{
    char *argv[] = {"python3", "-c",
                    "import json,sys\n"
                    "def no(c): raise ValueError('not JSON: ' + c)\n"
                    "json.loads(sys.stdin.buffer.read().decode('utf-8'), parse_constant=no)",
                    NULL};
    static run_t r;
    run_prog(argv, json, &r);
    (void)snprintf(why, len, "%.*s", (int)(len > 0 ? len - 1 : 0), r.err);
    return r.code == 0;
}

/* ---- holders ---------------------------------------------------------------------------- */

typedef struct holder {
    pid_t pid;
    int go; /* write end: a byte on it lets the holder release and exit */
    uint64_t client_id;
} holder_t;

/* A child named `name` that holds `count` leases of `size` bytes until told
 * to stop. (A byte, not EOF: later children inherit the pipe's write end.) */
static void holder_start(holder_t *h, const char *name, int count, size_t size)
{
    int ready[2], go[2];
    ck_assert_int_eq(pipe2(ready, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(go, O_CLOEXEC), 0);
    pid_t parent = getpid();
    (void)fflush(NULL);
    h->pid = fork();
    ck_assert_int_ge(h->pid, 0);
    if (h->pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
            _exit(100);
        (void)prctl(PR_SET_NAME, name);
        arena_conn_t *conn;
        if (arena_connect(daemon_.socket, &conn) != 0)
            _exit(10);
        arena__conn_info_t info;
        (void)arena__conn_info(conn, &info);
        arena_lease_t l[8];
        for (int i = 0; i < count; i++) {
            if (arena_lease(conn, size, 0, &l[i]) != 0)
                _exit(11);
            memset(l[i].addr, 1, l[i].size);
        }
        if (write(ready[1], &info.client_id, sizeof(info.client_id)) != sizeof(info.client_id))
            _exit(12);
        char c;
        while (read(go[0], &c, 1) < 0 && errno == EINTR)
            ;
        for (int i = 0; i < count; i++) {
            if (arena_release(conn, &l[i]) != 0)
                _exit(13);
        }
        arena_disconnect(conn);
        _exit(0);
    }
    (void)close(ready[1]);
    (void)close(go[0]);
    h->go = go[1];
    ck_assert_int_eq(read(ready[0], &h->client_id, sizeof(h->client_id)), sizeof(h->client_id));
    (void)close(ready[0]);
}

static void holder_stop(holder_t *h)
{
    ck_assert_int_eq(write(h->go, "x", 1), 1);
    (void)close(h->go);
    int status;
    ck_assert_int_eq(waitpid(h->pid, &status, 0), h->pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
}

/* A child that leases 2 MiB through the default connection (the path the
 * pools use) and says, through arena__conn_publish_live(), that it holds
 * `live` bytes live; on 'p' it publishes `then` instead, on 'x' it exits.
 * Every step is acknowledged with a byte. */
typedef struct talker {
    pid_t pid;
    int cmd, ack;
    uint64_t client_id;
} talker_t;

static void talker_start(talker_t *t, uint64_t live, uint64_t then)
{
    int cmd[2], ack[2];
    ck_assert_int_eq(pipe2(cmd, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(ack, O_CLOEXEC), 0);
    pid_t parent = getpid();
    (void)fflush(NULL);
    t->pid = fork();
    ck_assert_int_ge(t->pid, 0);
    if (t->pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
            _exit(100);
        (void)prctl(PR_SET_NAME, "live-talker");
        if (setenv("ARENAD_SOCKET", daemon_.socket, 1) != 0)
            _exit(10);
        arena_lease_t l;
        if (arena_lease(NULL, 2 * MiB, 0, &l) != 0)
            _exit(11);
        memset(l.addr, 7, l.size);
        arena_conn_t *conn;
        arena__conn_info_t info;
        if (arena__conn_default(&conn) != 0 || arena__conn_info(conn, &info) != 0)
            _exit(12);
        arena__conn_publish_live(live);
        if (write(ack[1], &info.client_id, sizeof(info.client_id)) != sizeof(info.client_id))
            _exit(13);
        for (;;) {
            char c;
            ssize_t n = read(cmd[0], &c, 1);
            if (n < 0 && errno == EINTR)
                continue;
            if (n != 1 || c == 'x')
                break;
            arena__conn_publish_live(then);
            if (write(ack[1], "k", 1) != 1)
                _exit(14);
        }
        if (arena_release(NULL, &l) != 0)
            _exit(15);
        _exit(0);
    }
    (void)close(cmd[0]);
    (void)close(ack[1]);
    t->cmd = cmd[1];
    t->ack = ack[0];
    ck_assert_int_eq(read(t->ack, &t->client_id, sizeof(t->client_id)), sizeof(t->client_id));
}

static void talker_say(talker_t *t, char c)
{
    char k;
    ck_assert_int_eq(write(t->cmd, &c, 1), 1);
    if (c != 'x')
        ck_assert_int_eq(read(t->ack, &k, 1), 1);
}

static void talker_stop(talker_t *t)
{
    talker_say(t, 'x');
    (void)close(t->cmd);
    (void)close(t->ack);
    int status;
    ck_assert_int_eq(waitpid(t->pid, &status, 0), t->pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
}

/* ---- tests -------------------------------------------------------------------------------- */

/* The LIVE column: what a client's allocator says it holds, read by the
 * daemon from the client's control region; a figure above what the client
 * leases (a scribble) is shown as the leased bytes. */
START_TEST(test_live_column)
{
    daemon_start();
    talker_t t;
    talker_start(&t, 1536 * 1024, UINT64_MAX - 5);
    holder_t quiet;
    holder_start(&quiet, "quiet-holder", 1, 1 * MiB);
    static run_t r;
    char want[256], got[256];

    ctl("--json clients", &r);
    ck_assert_msg(r.code == 0, "clients: %d %s", r.code, r.err);
    (void)snprintf(
        want, sizeof(want),
        "\"client_id\":%llu,\"pid\":%ld,\"uid\":%lu,\"gid\":%lu,\"name\":\"live-talker\","
        "\"leases\":1,\"leased_bytes\":2097152,\"live_bytes\":1572864,\"parked_bytes\":0,",
        (unsigned long long)t.client_id, (long)t.pid, (unsigned long)getuid(),
        (unsigned long)getgid());
    ck_assert_msg(strstr(r.out, want) != NULL, "want %s in\n%s", want, r.out);
    /* A client that never says shows 0. */
    ck_assert_ptr_nonnull(strstr(
        r.out,
        "\"name\":\"quiet-holder\",\"leases\":1,\"leased_bytes\":1048576,\"live_bytes\":0,"));
    if (have_python3()) {
        python_eval(r.out,
                    "sorted((c['name'], c['live_bytes']) for c in d['clients'] if c['leases'])",
                    got, sizeof(got));
        ck_assert_str_eq(got, "[('live-talker', 1572864), ('quiet-holder', 0)]");
    }

    ctl("clients", &r);
    ck_assert_int_eq(r.code, 0);
    ck_assert_msg(strstr(r.out, "LEASED       LIVE     PARKED") != NULL, "%s", r.out);
    ck_assert_msg(strstr(r.out, "live-talker             1      2.0 MiB    1.5 MiB        0 B") !=
                      NULL,
                  "%s", r.out);

    ctl("top --once", &r);
    ck_assert_int_eq(r.code, 0);
    ck_assert_msg(strstr(r.out, "LEASED       LIVE     PARKED") != NULL, "%s", r.out);
    ck_assert_msg(strstr(r.out, "2.0 MiB    1.5 MiB") != NULL, "%s", r.out);
    ctl("--json top --once", &r);
    ck_assert_int_eq(r.code, 0);
    ck_assert_msg(strstr(r.out, "\"leased_bytes\":2097152,\"live_bytes\":1572864,") != NULL, "%s",
                  r.out);

    /* A scribble far above what it leases: clamped to the leased bytes. */
    talker_say(&t, 'p');
    ctl("--json clients", &r);
    ck_assert_int_eq(r.code, 0);
    ck_assert_msg(strstr(r.out, "\"leased_bytes\":2097152,\"live_bytes\":2097152,") != NULL, "%s",
                  r.out);
    ck_assert_ptr_null(strstr(r.out, "18446744073709551610"));

    talker_stop(&t);
    holder_stop(&quiet);
    ck_assert_int_eq(arena_test_daemon_stop(&daemon_), 0);
}
END_TEST

START_TEST(test_json_matches_what_clients_hold)
{
    daemon_start();
    holder_t a, b;
    holder_start(&a, "holder-a", 2, 1 * MiB);
    holder_start(&b, "holder-\"b\"", 1, 3 * MiB);
    static run_t r;
    char want[512], got[512];
    bool py = have_python3();

    ctl("--json status", &r);
    ck_assert_msg(r.code == 0, "status: %d %s", r.code, r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "\"leased_bytes\":5242880,"));
    ck_assert_ptr_nonnull(strstr(r.out, "\"leases\":3,"));
    ck_assert_ptr_nonnull(strstr(r.out, "\"budget\":67108864,"));
    /* No restart: nothing held for a previous daemon's clients, yet the key is there. */
    ck_assert_ptr_nonnull(strstr(r.out, "\"restart_held_bytes\":0,"));
    /* arenactl is a client too while it asks. */
    ck_assert_ptr_nonnull(strstr(r.out, "\"clients\":3,"));
    ck_assert_str_eq(r.err, "");
    if (py) {
        python_eval(r.out, "d['leased_bytes'], d['leases'], d['budget'], d['socket_path']", got,
                    sizeof(got));
        (void)snprintf(want, sizeof(want), "5242880 3 67108864 %s", daemon_.socket);
        ck_assert_str_eq(got, want);
    }

    ctl("clients --json", &r);
    ck_assert_msg(r.code == 0, "clients: %d %s", r.code, r.err);
    (void)snprintf(want, sizeof(want), "\"client_id\":%llu,\"pid\":%ld,",
                   (unsigned long long)a.client_id, (long)a.pid);
    ck_assert_ptr_nonnull(strstr(r.out, want));
    ck_assert_ptr_nonnull(
        strstr(r.out, "\"name\":\"holder-a\",\"leases\":2,\"leased_bytes\":2097152"));
    ck_assert_ptr_nonnull(
        strstr(r.out, "\"name\":\"holder-\\\"b\\\"\",\"leases\":1,\"leased_bytes\":3145728"));
    if (py) {
        python_eval(r.out,
                    "sorted((c['name'], c['leases'], c['leased_bytes']) for c in d['clients'] "
                    "if c['leases'])",
                    got, sizeof(got));
        ck_assert_str_eq(got, "[('holder-\"b\"', 1, 3145728), ('holder-a', 2, 2097152)]");
    }

    char line[128];
    (void)snprintf(line, sizeof(line), "--json leases --client %llu",
                   (unsigned long long)a.client_id);
    ctl(line, &r);
    ck_assert_msg(r.code == 0, "leases: %d %s", r.code, r.err);
    if (py) {
        (void)snprintf(want, sizeof(want), "2 [%llu] [1048576]", (unsigned long long)a.client_id);
        python_eval(r.out,
                    "len(d['leases']), sorted(set(l['client_id'] for l in d['leases'])), "
                    "sorted(set(l['size'] for l in d['leases']))",
                    got, sizeof(got));
        ck_assert_str_eq(got, want);
    } else {
        ck_assert_ptr_nonnull(strstr(r.out, "\"size\":1048576"));
    }

    ctl("--json leases", &r);
    ck_assert_int_eq(r.code, 0);
    if (py) {
        python_eval(r.out, "len(d['leases']), sum(l['size'] for l in d['leases'])", got,
                    sizeof(got));
        ck_assert_str_eq(got, "3 5242880");
    }

    ctl("--json metrics", &r);
    ck_assert_msg(r.code == 0, "metrics: %d %s", r.code, r.err);
    if (py) {
        python_eval(r.out, "len(d['samples']) > 0, d['text'].count('\\n') > 0", got, sizeof(got));
        ck_assert_str_eq(got, "True True");
    }
    ctl("--json reclaim --bytes 1M", &r);
    ck_assert_msg(r.code == 0, "reclaim: %d %s", r.code, r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "{\"reclaimed_bytes\":"));
    if (py)
        python_eval(r.out, "type(d['reclaimed_bytes']).__name__", got, sizeof(got));

    holder_stop(&a);
    holder_stop(&b);
    ctl("--json status", &r);
    ck_assert_int_eq(r.code, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "\"leased_bytes\":0,"));
    ck_assert_int_eq(arena_test_daemon_stop(&daemon_), 0);
}
END_TEST

START_TEST(test_tables)
{
    daemon_start();
    holder_t a;
    holder_start(&a, "table-holder", 3, 1 * MiB);
    static run_t r;
    ctl("status", &r);
    ck_assert_int_eq(r.code, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "leased        3.0 MiB in 3 leases"));
    ck_assert_ptr_nonnull(strstr(r.out, "budget        64.0 MiB"));
    ck_assert_ptr_null(strstr(r.out, "  held ")); /* only after a restart */
    ck_assert_ptr_nonnull(strstr(r.out, daemon_.socket));
    ctl("clients", &r);
    ck_assert_int_eq(r.code, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "table-holder"));
    ck_assert_ptr_nonnull(strstr(r.out, "3.0 MiB"));
    ck_assert_ptr_nonnull(strstr(r.out, "2 clients"));
    ctl("leases", &r);
    ck_assert_int_eq(r.code, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "3 leases, 3.0 MiB"));
    ctl("metrics", &r);
    ck_assert_int_eq(r.code, 0);
    ck_assert_uint_gt(strlen(r.out), 0);
    ctl("reclaim", &r);
    ck_assert_int_eq(r.code, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "reclaimed "));
    holder_stop(&a);
    ck_assert_int_eq(arena_test_daemon_stop(&daemon_), 0);
}
END_TEST

START_TEST(test_exit_codes)
{
    daemon_start();
    static run_t r;
    ctl("status", &r);
    ck_assert_int_eq(r.code, 0);
    /* The daemon says no: exit 1 with its message. */
    ctl("leases --client 999999", &r);
    ck_assert_int_eq(r.code, 1);
    ck_assert_ptr_nonnull(strstr(r.err, "999999"));
    ck_assert_str_eq(r.out, "");
    ctl("--json reclaim --client 999999", &r);
    ck_assert_int_eq(r.code, 1);
    ck_assert_str_eq(r.out, "");
    /* Usage errors: exit 2, nothing on stdout. */
    ctl("frobnicate", &r);
    ck_assert_int_eq(r.code, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "frobnicate"));
    ctl("leases --client x", &r);
    ck_assert_int_eq(r.code, 2);
    ctl("", &r);
    ck_assert_int_eq(r.code, 2);
    ctl("status --help", &r);
    ck_assert_int_eq(r.code, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "Usage: arenactl"));

    /* No daemon: exit 2 and the socket it tried is named. */
    char sock[sizeof(daemon_.socket)];
    (void)snprintf(sock, sizeof(sock), "%s", daemon_.socket);
    ck_assert_int_eq(arena_test_daemon_stop(&daemon_), 0);
    char *argv[] = {ARENACTL_PATH, "--socket", sock, "status", NULL};
    run_prog(argv, NULL, &r);
    ck_assert_int_eq(r.code, 2);
    ck_assert_ptr_nonnull(strstr(r.err, sock));
    char *argv2[] = {ARENACTL_PATH, "--json", "clients", NULL};
    ck_assert_int_eq(setenv("ARENAD_SOCKET", sock, 1), 0);
    run_prog(argv2, NULL, &r);
    ck_assert_int_eq(r.code, 2);
    ck_assert_ptr_nonnull(strstr(r.err, sock));
    ck_assert_str_eq(r.out, "");
}
END_TEST

/* Every --json output is one strict JSON document, also with a client whose
 * name (from its Hello: the process name here) holds quotes, a backslash, a
 * control character and bytes that are not UTF-8. The daemon keeps printable
 * ASCII of a name; arenactl cleans whatever reaches it to UTF-8 and json-c
 * escapes the rest. */
START_TEST(test_json_strict)
{
    if (!have_python3())
        return;
    daemon_start();
    holder_t h;
    holder_start(&h, "q\"\\\x01\xff\xc3\x28t", 1, 1 * MiB);
    static const char *const lines[] = {
        "--json status",  "--json clients",
        "--json leases",  "--json reclaim --bytes 1M",
        "--json metrics", "--json shares",
        "--json events",  "top --once --json",
        "clients --json", "--json leases --client 1",
    };
    static run_t r;
    char why[1024];
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        ctl(lines[i], &r);
        if (r.code == 1 && strstr(lines[i], "events"))
            continue; /* the event log is for privileged callers only */
        if (r.code == 1 && strstr(lines[i], "--client 1"))
            continue; /* no client 1 */
        ck_assert_msg(r.code == 0, "%s: exit %d: %s", lines[i], r.code, r.err);
        ck_assert_msg(python_strict(r.out, why, sizeof(why)), "%s: %s\n%s", lines[i], why, r.out);
    }
    ctl("--json clients", &r);
    ck_assert_msg(strstr(r.out, "\"name\":\"q\\\"\\\\?") != NULL, "%s", r.out);
    holder_stop(&h);
    ck_assert_int_eq(arena_test_daemon_stop(&daemon_), 0);
}
END_TEST

static Suite *arenactl_suite(void)
{
    Suite *s = suite_create("arenactl");
    TCase *tc = tcase_create("arenactl");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_json_matches_what_clients_hold);
    tcase_add_test(tc, test_tables);
    tcase_add_test(tc, test_live_column);
    tcase_add_test(tc, test_exit_codes);
    tcase_add_test(tc, test_json_strict);
    suite_add_tcase(s, tc);
    return s;
}

ARENA_TEST_MAIN(arenactl_suite)
