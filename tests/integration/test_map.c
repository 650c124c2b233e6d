/* SPDX-License-Identifier: MIT
 *
 * test_map.c -- `arenactl map` against a real arenad: client processes make
 * a known layout (three small leases at the top of the heap, one of them
 * released and dirty for the daemon's long decay, one parked (the parked
 * decay is off, so it stays parked however slow the machine); one large
 * lease at the bottom), and the picture shows it row by row, names the
 * clients in its legend and sums the bytes; --json parses (python3's json
 * module) and its extents tile the heap. Bad input exits 2 with a clear
 * message; another user's pool is refused to an unprivileged caller (when
 * the test runs as root and can become nobody); a daemon with a small frame
 * maximum merges the map to fit and says so.
 *
 * Each test starts its own daemon from a config file and kills its client
 * children at the end (they also die with the test: PR_SET_PDEATHSIG).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "arena.h"
#include "conn.h"
#include "fixture.h"
#include "run.h"
#include "wire.h"

#ifndef ARENACTL_PATH
#error "ARENACTL_PATH must be defined by the build"
#endif

#define MiB (1024u * 1024u)
#define KiB 1024u

static arena_test_daemon_t daemon_;

/* A daemon with a 128 MiB heap, released pages dirty for ten minutes (so a
 * released lease stays visible) and `extra` config lines. */
static void daemon_start(const char *extra)
{
    char text[256];
    (void)snprintf(text, sizeof(text),
                   "budget = 64M\nheap_size = 128M\ndecay_ms = 600000\n"
                   "parked_decay_ms = 0\n%s",
                   extra ? extra : "");
    arena_test_daemon_up(&daemon_, text, NULL, 0);
}

static void daemon_done(void)
{
    /* A crash or a sanitizer's report at exit (23) fails the test; a daemon
     * the test stopped itself is not running. */
    int status = arena_test_daemon_stop(&daemon_);
    ck_assert_msg(status == 0 || status == ARENA_TEST_DAEMON_NOT_RUNNING,
                  "arenad did not exit cleanly: %d", status);
}

/* ---- clients that hold a layout --------------------------------------------------- */

typedef struct holder {
    pid_t pid;
    uint64_t client_id;
} holder_t;

/* A child named `name` that leases `count` leases of `size` bytes, then
 * releases every one whose index is odd when release_odd, parks the last
 * when park_last, reports its client id and sleeps until killed. */
static void holder_start(holder_t *h, const char *name, int count, size_t size, bool release_odd,
                         bool park_last)
{
    int ready[2];
    ck_assert_int_eq(pipe2(ready, O_CLOEXEC), 0);
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
        arena_lease_t l[64];
        for (int i = 0; i < count && i < 64; i++) {
            if (arena_lease(conn, size, 0, &l[i]) != 0)
                _exit(11);
            memset(l[i].addr, 1, l[i].size);
        }
        for (int i = 1; release_odd && i < count; i += 2) {
            if (arena_release(conn, &l[i]) != 0)
                _exit(12);
        }
        if (park_last && arena_lease_park(conn, &l[count - 1]) != 0)
            _exit(13);
        if (write(ready[1], &info.client_id, sizeof(info.client_id)) != sizeof(info.client_id))
            _exit(14);
        for (;;)
            pause();
    }
    (void)close(ready[1]);
    ssize_t n = read(ready[0], &h->client_id, sizeof(h->client_id));
    ck_assert_msg(n == sizeof(h->client_id), "holder %s failed", name);
    (void)close(ready[0]);
}

static void holder_stop(holder_t *h)
{
    (void)kill(h->pid, SIGKILL);
    int status;
    ck_assert_int_eq(waitpid(h->pid, &status, 0), h->pid);
}

/* ---- running arenactl and python3 --------------------------------------------------- */

/* What run_into() collected: fixed buffers, so a child can hand it back
 * through a pipe whole. */
typedef struct map_run {
    int code;        /* exit code, or -signal, or -errno when it could not run */
    char out[65536]; /* stdout, NUL-terminated, cut to fit */
    char err[8192];  /* stderr, likewise */
} map_run_t;

/* Runs argv (tests/lib/run.h) into *r; returns r->code. */
static int run_into(char *const argv[], map_run_t *r)
{
    arena_run_t got;
    int rc = arena_run((const char *const *)argv, NULL, &got);
    r->out[0] = r->err[0] = '\0';
    r->code = rc;
    if (rc < 0 && rc != -ETIMEDOUT)
        return rc;
    r->code = got.code;
    (void)snprintf(r->out, sizeof(r->out), "%s", got.out);
    (void)snprintf(r->err, sizeof(r->err), "%s", got.err);
    arena_run_free(&got);
    return r->code;
}

static map_run_t run;

/* arenactl --socket <daemon> followed by the words of `line`. */
static int ctl(const char *line)
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
    return run_into(argv, &run);
}

static bool have_python3(void)
{
    return system("command -v python3 >/dev/null 2>&1") == 0;
}

/* Loads `json` with python3's json module as d and prints expr; returns
 * what it printed, stripped. */
static void python_eval(const char *json, const char *expr, char *ret, size_t len)
{
    char path[320];
    (void)snprintf(path, sizeof(path), "%s/map.json", daemon_.dir);
    FILE *f = fopen(path, "we");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_ge(fputs(json, f), 0);
    ck_assert_int_eq(fclose(f), 0);
    char prog[2048];
    (void)snprintf(prog, sizeof(prog), "import json; d = json.load(open('%s')); print(%s)", path,
                   expr);
    char *argv[] = {"python3", "-c", prog, NULL};
    static map_run_t py;
    ck_assert_msg(run_into(argv, &py) == 0, "python3: %s\n%s", py.err, json);
    size_t n = strlen(py.out);
    while (n && (py.out[n - 1] == '\n' || py.out[n - 1] == ' '))
        py.out[--n] = '\0';
    (void)snprintf(ret, len, "%s", py.out);
}

/* Line i (from 0) of text, without its newline. */
static void line_of(const char *text, int i, char *ret, size_t len)
{
    for (; i > 0 && text; i--) {
        text = strchr(text, '\n');
        text = text ? text + 1 : NULL;
    }
    ck_assert_ptr_nonnull(text);
    size_t n = strcspn(text, "\n");
    ck_assert_uint_lt(n, len);
    memcpy(ret, text, n);
    ret[n] = '\0';
}

/* A row of the picture: label, '|', the cells, '|'. */
static void expect_row(const char *label, const char *cells, int line)
{
    char want[256], got[256];
    (void)snprintf(want, sizeof(want), "%10s |%s|", label, cells);
    line_of(run.out, line, got, sizeof(got));
    ck_assert_msg(strcmp(got, want) == 0, "line %d:\n got  '%s'\n want '%s'\n%s", line, got, want,
                  run.out);
}

static void repeat(char *buf, char c, int n)
{
    memset(buf, c, (size_t)n);
    buf[n] = '\0';
}

/* The extents tile each pool's heap exactly. */
#define PY_TILES                                                                                   \
    "all(x['offset'] == sum(y['length'] for y in p['extents'][:i]) "                               \
    "for p in d['pools'] for i, x in enumerate(p['extents'])) and "                                \
    "all(sum(x['length'] for x in p['extents']) == p['heap_size'] for p in d['pools'])"

/* ---- tests ---------------------------------------------------------------------------- */

START_TEST(test_picture_and_json)
{
    daemon_start(NULL);
    holder_t small, large;
    /* 1 MiB leases come from the top: [127M, 128M) stays leased, [126M,
     * 127M) is released (dirty), [125M, 126M) parked. */
    holder_start(&small, "map-small", 3, MiB, true, true);
    holder_start(&large, "map-large", 1, 32 * MiB, false, false);

    ck_assert_msg(ctl("map --width 64") == 0, "%s", run.err);
    /* 128 MiB in 16 rows of 64 cells: 128 KiB a cell, 8 MiB a row. */
    char head[256];
    line_of(run.out, 0, head, sizeof(head));
    ck_assert_msg(strstr(head, "128.0 MiB heap, one cell = 128.0 KiB, 64 x 16"), "%s", run.out);
    char cells[128], free_cells[128];
    repeat(free_cells, '.', 64);
    /* The top row: free, then the parked, dirty and leased small leases. */
    char top[128];
    memset(top, '.', 40);
    memset(top + 40, '=', 8);
    memset(top + 48, '~', 8);
    memset(top + 56, 'A', 8);
    top[64] = '\0';
    expect_row("120.0 MiB", top, 1);
    for (int row = 14; row >= 4; row--) {
        char label[32];
        (void)snprintf(label, sizeof(label), "%d.0 MiB", row * 8);
        expect_row(label, free_cells, 16 - row);
    }
    repeat(cells, 'B', 64);
    expect_row("24.0 MiB", cells, 13);
    expect_row("16.0 MiB", cells, 14);
    expect_row("8.0 MiB", cells, 15);
    expect_row("0 B", cells, 16);

    char want[256];
    (void)snprintf(want, sizeof(want), "  A  client %llu, pid %ld, map-small\n",
                   (unsigned long long)small.client_id, (long)small.pid);
    ck_assert_msg(strstr(run.out, want), "no '%s' in\n%s", want, run.out);
    (void)snprintf(want, sizeof(want), "  B  client %llu, pid %ld, map-large\n",
                   (unsigned long long)large.client_id, (long)large.pid);
    ck_assert_msg(strstr(run.out, want), "no '%s' in\n%s", want, run.out);
    ck_assert_msg(strstr(run.out, "size 128.0 MiB   leased 33.0 MiB   parked 1.0 MiB   dirty "
                                  "1.0 MiB   free 93.0 MiB\n"),
                  "%s", run.out);
    /* 1 - 93 / (93 + 1): the dirty MiB sits apart from the big free extent. */
    ck_assert_msg(strstr(run.out, "largest free extent 93.0 MiB   fragmentation 1.1%\n"), "%s",
                  run.out);
    ck_assert_msg(!strstr(run.out, "merged"), "%s", run.out);

    ck_assert_msg(ctl("--json map") == 0, "%s", run.err);
    static char json[65536];
    (void)snprintf(json, sizeof(json), "%s", run.out);
    if (have_python3()) {
        char got[1024];
        python_eval(json, PY_TILES, got, sizeof(got));
        ck_assert_str_eq(got, "True");
        python_eval(json,
                    "[(x['offset'] >> 20, x['length'] >> 20, x['state'], x['client_id']) "
                    "for x in d['pools'][0]['extents']]",
                    got, sizeof(got));
        char expect[512];
        (void)snprintf(expect, sizeof(expect),
                       "[(0, 32, 'leased', %llu), (32, 93, 'free', 0), (125, 1, 'parked', %llu), "
                       "(126, 1, 'dirty', 0), (127, 1, 'leased', %llu)]",
                       (unsigned long long)large.client_id, (unsigned long long)small.client_id,
                       (unsigned long long)small.client_id);
        ck_assert_str_eq(got, expect);
        python_eval(json,
                    "[d['pools'][0][k] >> 20 for k in ('heap_size', 'leased_bytes', "
                    "'parked_bytes', 'dirty_bytes', 'free_bytes', 'held_bytes', 'largest_free')]"
                    " + [round(d['pools'][0]['fragmentation'], 4), d['pools'][0]['coalesced'], "
                    "d['pools_omitted']]",
                    got, sizeof(got));
        ck_assert_str_eq(got, "[128, 33, 1, 1, 93, 0, 93, 0.0106, False, 0]");
        python_eval(json, "sorted(c['name'] for c in d['clients'] if c['name'].startswith('map-'))",
                    got, sizeof(got));
        ck_assert_str_eq(got, "['map-large', 'map-small']");
    } else {
        ck_assert(strstr(json, "\"state\":\"parked\""));
    }

    /* --uid with the caller's own uid shows the same pool. */
    char line[64];
    (void)snprintf(line, sizeof(line), "map --width 64 --uid %u", (unsigned)getuid());
    ck_assert_msg(ctl(line) == 0, "%s", run.err);
    expect_row("120.0 MiB", top, 1);

    holder_stop(&small);
    holder_stop(&large);
    daemon_done();
}
END_TEST

START_TEST(test_bad_input)
{
    daemon_start(NULL);
    static const struct {
        const char *line;
        const char *message;
    } cases[] = {
        {"map --width 0", "--width needs a number of cells from 8 to 1024"},
        {"map --width 100000", "--width needs a number of cells from 8 to 1024"},
        {"map --width 12x", "--width needs a number of cells"},
        {"map --width -64", "--width needs a number of cells"},
        {"map --width", "--width needs a number of cells"},
        {"map --uid abc", "--uid needs a numeric uid"},
        {"map --uid -1", "--uid needs a numeric uid"},
        {"map --uid 4294967295", "--uid needs a numeric uid"},
        {"map --frobnicate", "unknown option '--frobnicate'"},
        {"map extra", "unexpected argument 'extra'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int code = ctl(cases[i].line);
        ck_assert_msg(code == 2, "'%s' exited %d\n%s%s", cases[i].line, code, run.out, run.err);
        ck_assert_msg(strstr(run.err, cases[i].message), "'%s' said:\n%s", cases[i].line, run.err);
        ck_assert_msg(run.out[0] == '\0', "'%s' printed:\n%s", cases[i].line, run.out);
    }
    /* A well-formed uid without a pool is the daemon's answer: exit 1. */
    ck_assert_int_eq(ctl("map --uid 4000000000"), 1);
    ck_assert_msg(strstr(run.err, "no pool for uid 4000000000"), "%s", run.err);
    ck_assert(run.out[0] == '\0');
    ck_assert_int_eq(ctl("map --help"), 0);
    ck_assert(strstr(run.out, "Usage: arenactl [--socket PATH] [--json] map [--uid UID]"));
    ck_assert_int_eq(ctl("--help"), 0);
    ck_assert(strstr(run.out, "map [--uid UID] [--width N]"));
    daemon_done();
}
END_TEST

START_TEST(test_other_users_pool)
{
    if (geteuid() != 0) {
        /* The daemon runs as our uid, so we are privileged to it; there is
         * no other user to become. */
        (void)fputs("test_other_users_pool: not root, skipped\n", stderr);
        return;
    }
    daemon_start(NULL);
    ck_assert_int_eq(chmod(daemon_.dir, 0755), 0);
    holder_t small;
    holder_start(&small, "map-small", 1, MiB, false, false);
    const uid_t nobody = 65534;
    static const char *const lines[] = {"map --uid 0", "map --width 64"};
    for (int i = 0; i < 2; i++) {
        int out[2];
        ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
        (void)fflush(NULL);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            if (setgroups(0, NULL) != 0 || setgid(nobody) != 0 || setuid(nobody) != 0)
                _exit(120);
            if (access(ARENACTL_PATH, X_OK) != 0)
                _exit(121); /* the build tree is closed to other users */
            int code = ctl(lines[i]);
            if (write(out[1], &run, sizeof(run)) != (ssize_t)sizeof(run))
                _exit(122);
            _exit(code);
        }
        (void)close(out[1]);
        static map_run_t got;
        size_t n = 0;
        for (;;) {
            ssize_t k = read(out[0], (char *)&got + n, sizeof(got) - n);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                break;
            n += (size_t)k;
        }
        (void)close(out[0]);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        if (WEXITSTATUS(status) == 121) {
            (void)fputs("test_other_users_pool: arenactl not executable by nobody, skipped\n",
                        stderr);
            break;
        }
        ck_assert_uint_eq(n, sizeof(got));
        if (i == 0) {
            /* Another user's pool: the daemon refuses (1), naming the rule. */
            ck_assert_msg(WEXITSTATUS(status) == 1, "%d %s", WEXITSTATUS(status), got.err);
            ck_assert_msg(strstr(got.err, "another user's pool"), "%s", got.err);
        } else {
            /* Without --uid nobody sees its own pool and not ours. */
            ck_assert_msg(WEXITSTATUS(status) == 0, "%d %s", WEXITSTATUS(status), got.err);
            ck_assert_msg(strstr(got.out, "of uid 65534:"), "%s", got.out);
            ck_assert_msg(!strstr(got.out, "of uid 0:"), "%s", got.out);
            ck_assert_msg(!strstr(got.out, "map-small"), "%s", got.out);
        }
    }
    /* We (root) may see both. */
    ck_assert_int_eq(ctl("map --width 64"), 0);
    ck_assert(strstr(run.out, "of uid 0:"));
    holder_stop(&small);
    daemon_done();
}
END_TEST

START_TEST(test_merged_to_fit_a_small_frame)
{
    /* A 1 KiB frame holds about twenty extents; forty small leases with
     * every other one released make more than forty. */
    daemon_start("max_frame = 1K\n");
    holder_t many;
    holder_start(&many, "map-many", 40, 64 * KiB, true, false);
    ck_assert_msg(ctl("--json map") == 0, "%s", run.err);
    static char json[65536];
    (void)snprintf(json, sizeof(json), "%s", run.out);
    ck_assert_uint_lt(strlen(json), 4096);
    if (have_python3()) {
        char got[256];
        python_eval(json, PY_TILES, got, sizeof(got));
        ck_assert_str_eq(got, "True");
        python_eval(json,
                    "[d['pools'][0]['coalesced'], d['pools'][0]['extents_total'] > 40, "
                    "len(d['pools'][0]['extents']) <= 20, d['pools'][0]['leased_bytes'] >> 10, "
                    "d['pools'][0]['dirty_bytes'] >> 10]",
                    got, sizeof(got));
        ck_assert_str_eq(got, "[True, True, True, 1280, 1280]");
    }
    ck_assert_msg(ctl("map --width 64") == 0, "%s", run.err);
    ck_assert_msg(strstr(run.out, "(the daemon merged "), "%s", run.out);
    ck_assert_msg(strstr(run.out, "leased 1.2 MiB"), "%s", run.out);
    holder_stop(&many);
    daemon_done();
}
END_TEST

static Suite *map_suite(void)
{
    Suite *s = suite_create("map");
    TCase *tc = tcase_create("arenactl map");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_picture_and_json);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_other_users_pool);
    tcase_add_test(tc, test_merged_to_fit_a_small_frame);
    suite_add_tcase(s, tc);
    return s;
}

ARENA_TEST_MAIN(map_suite)
