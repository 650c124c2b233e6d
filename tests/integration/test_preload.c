/* SPDX-License-Identifier: MIT
 *
 * test_preload.c -- real programs under libarena-preload.so.
 *
 * Each test runs a program twice, with LD_PRELOAD=libarena-preload.so and
 * without it, and compares what they print: python3 (PYTHONMALLOC=malloc)
 * building and dropping millions of small objects, sort(1) on a 20 MB file,
 * and mt_prog, our multi-threaded malloc/realloc/free workload with a
 * checksum. test_preload_api checks the C library contract from inside a
 * preloaded program. The "daemon" cases run a real arenad from tests/lib's fixture
 * (ARENAD_SOCKET set); the "no_daemon" cases point ARENAD_SOCKET at a socket
 * nobody listens on and check the one warning line and the fallback, or the
 * failure with ARENA_REQUIRE_DAEMON=1. Every program runs in its own process
 * group under a deadline and is killed when it passes it; the daemon is
 * stopped in the fixture's teardown (and by PR_SET_PDEATHSIG if the test
 * process dies).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "arena.h"
#include "check_main.h"
#include "fixture.h"
#include "wire.h"
#include "run.h"
#include "tmpdir.h"

#define RUN_TIMEOUT_S 120

static arena_test_daemon_t daemon_;
static char tmpdir[256];

/* ---- helpers -------------------------------------------------------------------- */

static void path_in_tmp(char *buf, size_t len, const char *name)
{
    int n = snprintf(buf, len, "%s/%s", tmpdir, name);
    ck_assert(n > 0 && (size_t)n < len);
}

/* Runs argv with the environment changes in env ("NAME=VALUE", or "NAME" to
 * unset; NULL-terminated), LD_PRELOAD set to the preload library when
 * preload is true (else unset), stdin from in_path (NULL: /dev/null); its
 * output and wait status go to *r (earlier output freed). Fails the test
 * when it runs past RUN_TIMEOUT_S (its process group is killed). */
static void run(const char *const *argv, const char *const *env, bool preload, const char *in_path,
                arena_run_t *r)
{
    const char *all[16];
    size_t n = 0;
    all[n++] = preload ? "LD_PRELOAD=" PRELOAD_PATH : "LD_PRELOAD";
    for (; env && *env; env++) {
        ck_assert_uint_lt(n, sizeof(all) / sizeof(all[0]) - 1);
        all[n++] = *env;
    }
    all[n] = NULL;
    arena_run_opts_t opts = {.env = all, .in_path = in_path, .timeout_ms = RUN_TIMEOUT_S * 1000};
    arena_run_free(r);
    int rc = arena_run(argv, &opts, r);
    ck_assert_msg(rc != -ETIMEDOUT, "%s did not finish within %d s", argv[0], RUN_TIMEOUT_S);
    ck_assert_msg(rc == 0, "%s: %s", argv[0], strerror(-rc));
}

static bool exited_ok(int status)
{
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* The daemon's newest event number (its log is this test's alone: the
 * fixture starts a daemon per test). */
static uint64_t events_last_seq(arena_conn_t *conn)
{
    arena__admin_events_t *ev = NULL;
    ck_assert_int_eq(arena__admin_events(conn, 0, 1, &ev), 0);
    uint64_t last = ev->last_seq;
    arena__admin_events_free(ev);
    return last;
}

/* Grants the daemon logged after event since to processes other than this
 * test's: the preloaded program and its children are the only others. */
static uint64_t grants_since(arena_conn_t *conn, uint64_t since)
{
    uint64_t grants = 0;
    for (;;) {
        arena__admin_events_t *ev = NULL;
        ck_assert_int_eq(arena__admin_events(conn, since, 0, &ev), 0);
        size_t count = ev->count;
        for (size_t i = 0; i < count; i++) {
            if (ev->items[i].kind == ARENA__EVENT_GRANT && ev->items[i].pid != (uint32_t)getpid())
                grants++;
            since = ev->items[i].seq;
        }
        arena__admin_events_free(ev);
        if (count == 0)
            return grants;
    }
}

/* Runs argv with and without the preload library and checks both succeed
 * with identical stdout and an empty stderr under the library; with a
 * daemon, also that the preloaded run really leased from it (a library
 * ld.so did not load, or a silent fallback to anonymous memory, leases
 * nothing). */
static void compare_runs(const char *name, const char *const *argv, const char *const *env,
                         const char *in_path)
{
    arena_run_t plain = {0}, pre = {0};

    run(argv, env, false, in_path, &plain);
    ck_assert_msg(exited_ok(plain.status), "%s without preload: status %#x", name, plain.status);
    arena_conn_t *admin = NULL;
    uint64_t since = 0;
    if (daemon_.pid > 0) {
        ck_assert_int_eq(arena_connect(daemon_.socket, &admin), 0);
        since = events_last_seq(admin);
    }
    run(argv, env, true, in_path, &pre);
    if (admin) {
        ck_assert_msg(grants_since(admin, since) > 0, "%s under preload leased nothing", name);
        arena_disconnect(admin);
    }
    ck_assert_msg(exited_ok(pre.status), "%s under preload: status %#x, stderr: %s", name,
                  pre.status, pre.err);
    ck_assert_msg(pre.err[0] == '\0', "%s under preload printed: %s", name, pre.err);
    ck_assert_msg(plain.out_len == pre.out_len && memcmp(plain.out, pre.out, pre.out_len) == 0,
                  "%s: output differs under preload", name);
    ck_assert_uint_gt(pre.out_len, 0);
    arena_run_free(&plain);
    arena_run_free(&pre);
}

/* ---- fixtures -------------------------------------------------------------------- */

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/arena-preload-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    if (!tmpdir[0])
        return;
    (void)arena_test_rmtree(tmpdir);
    tmpdir[0] = '\0';
}

static void setup_daemon(void)
{
    make_tmpdir();
    arena_test_fixture_setup();
}

static void teardown_daemon(void)
{
    remove_tmpdir();
    arena_test_fixture_teardown();
}

static char absent_socket[320];

static void setup_no_daemon(void)
{
    make_tmpdir();
    path_in_tmp(absent_socket, sizeof(absent_socket), "nobody.sock");
    ck_assert_int_eq(setenv("ARENAD_SOCKET", absent_socket, 1), 0);
}

/* ---- with a daemon ----------------------------------------------------------------- */

START_TEST(test_api_contract_leased)
{
    const char *argv[] = {PRELOAD_API_PATH, "leased", NULL};
    arena_run_t r = {0};

    run(argv, NULL, true, NULL, &r);
    ck_assert_msg(exited_ok(r.status), "status %#x, stdout: %s, stderr: %s", r.status, r.out,
                  r.err);
    ck_assert_ptr_nonnull(strstr(r.out, " 0 failed"));
    ck_assert_str_eq(r.err, "");

    /* Without the library the first check (malloc is ours) fails. */
    run(argv, NULL, false, NULL, &r);
    ck_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 1);
    arena_run_free(&r);
}
END_TEST

START_TEST(test_mt_prog_same_output)
{
    const char *argv[] = {MT_PROG_PATH, "4", "100000", NULL};
    compare_runs("mt_prog", argv, NULL, NULL);
}
END_TEST

/* A shell forks for every command substitution and frees and reuses its
 * memory right after each fork, while the child copies its leases. */
START_TEST(test_shell_forks)
{
    const char *argv[] = {"bash", "-c",
                          "f() { local x; x=$(echo \"$1\"); echo \"$x\"; }; "
                          "for i in $(seq 1 300); do y=$(f $i); s=$((s + y)); done; echo $s",
                          NULL};
    compare_runs("bash", argv, NULL, NULL);
}
END_TEST

#ifdef PYTHON3_PATH
START_TEST(test_python_small_objects)
{
    /* About four million small objects built and dropped in three rounds. */
    static const char script[] = "import sys\n"
                                 "total = 0\n"
                                 "for r in range(3):\n"
                                 "    objs = [(i, str(i), [i, r]) for i in range(300000)]\n"
                                 "    d = {str(i): i for i in range(0, 300000, 3)}\n"
                                 "    total += sum(len(o[1]) + o[2][0] for o in objs) + len(d)\n"
                                 "    del objs, d\n"
                                 "print('python', total)\n";
    const char *argv[] = {PYTHON3_PATH, "-c", script, NULL};
    const char *env[] = {"PYTHONMALLOC=malloc", "PYTHONDONTWRITEBYTECODE=1", NULL};
    compare_runs("python", argv, env, NULL);
}
END_TEST
#else
START_TEST(test_python_small_objects)
{
    arena_test_skip(
        "test_python_small_objects: no python3 was found when the build was configured");
}
END_TEST
#endif

/* Writes about size bytes of deterministic, unsorted text lines. */
static void make_sort_input(const char *path, size_t size)
{
    FILE *f = fopen(path, "we");
    uint64_t s = 42;
    size_t written = 0;

    ck_assert_ptr_nonnull(f);
    while (written < size) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        int n = fprintf(f, "%016llx %u line-%llu %.*s\n", (unsigned long long)(s >> 7),
                        (unsigned)(s >> 40) % 1000, (unsigned long long)written,
                        (int)((s >> 33) % 40), "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopq");
        ck_assert_int_gt(n, 0);
        written += (size_t)n;
    }
    ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_sort_large_file)
{
    char input[320];
    path_in_tmp(input, sizeof(input), "sort-input.txt");
    make_sort_input(input, (size_t)20 * 1024 * 1024);

    const char *argv[] = {"sort", NULL};
    const char *env[] = {"LC_ALL=C", NULL};
    compare_runs("sort", argv, env, input);

    const char *argv_k[] = {"sort", "-k2,2n", "-k3", NULL};
    compare_runs("sort-keys", argv_k, env, input);
}
END_TEST

/* ---- without a daemon ------------------------------------------------------------------ */

START_TEST(test_no_daemon_falls_back_with_one_warning)
{
    const char *argv[] = {MT_PROG_PATH, "4", "30000", NULL};
    char expect[512];
    arena_run_t plain = {0}, r = {0};

    run(argv, NULL, false, NULL, &plain);
    ck_assert(exited_ok(plain.status));
    run(argv, NULL, true, NULL, &r);
    ck_assert_msg(exited_ok(r.status), "status %#x, stderr: %s", r.status, r.err);
    snprintf(expect, sizeof(expect), "arena-preload: no arenad at %s, using anonymous memory\n",
             absent_socket);
    ck_assert_str_eq(r.err, expect);
    ck_assert(plain.out_len == r.out_len && memcmp(plain.out, r.out, r.out_len) == 0);
    arena_run_free(&plain);

    /* The API contract holds on anonymous memory too. */
    const char *api[] = {PRELOAD_API_PATH, "anonymous", NULL};
    run(api, NULL, true, NULL, &r);
    ck_assert_msg(exited_ok(r.status), "status %#x, stdout: %s", r.status, r.out);
    ck_assert_ptr_nonnull(strstr(r.out, " 0 failed"));
    ck_assert_str_eq(r.err, expect);
    arena_run_free(&r);
}
END_TEST

START_TEST(test_require_daemon_fails_allocations)
{
    const char *argv[] = {MT_PROG_PATH, "2", "1000", NULL};
    const char *env[] = {"ARENA_REQUIRE_DAEMON=1", NULL};
    arena_run_t r = {0};

    run(argv, env, true, NULL, &r);
    /* mt_prog reports the failure (of malloc, or of pthread_create, which
     * allocates) and exits 1. */
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 1, "status %#x, stderr: %s",
                  r.status, r.err);
    ck_assert_ptr_nonnull(strstr(r.err, "arena-preload: no arenad at "));
    ck_assert_ptr_nonnull(strstr(r.err, "ARENA_REQUIRE_DAEMON=1"));
    ck_assert_ptr_nonnull(strstr(r.err, "mt_prog: "));
    arena_run_free(&r);
}
END_TEST

/* The library exports the malloc family (and glibc's malloc introspection)
 * and nothing else. */
START_TEST(test_exports_only_malloc_family)
{
    static const char *const want[] = {
        "aligned_alloc", "calloc",         "free",      "malloc",  "malloc_usable_size",
        "memalign",      "posix_memalign", "pvalloc",   "realloc", "valloc",
        "malloc_trim",   "malloc_stats",   "mallinfo2", "mallinfo"};
    const char *argv[] = {"nm", "-D", "--defined-only", PRELOAD_PATH, NULL};
    char name[256], type[8];
    bool seen[sizeof(want) / sizeof(want[0])] = {false};
    arena_run_t r = {0};

    run(argv, NULL, false, NULL, &r);
    ck_assert(exited_ok(r.status));
    char *save = NULL;
    for (char *line = strtok_r(r.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (sscanf(line, "%*s %7s %255s", type, name) != 2)
            continue;
        if (strcmp(type, "A") == 0)
            continue; /* version nodes */
        bool known = false;
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
            if (strcmp(name, want[i]) == 0)
                known = seen[i] = true;
        ck_assert_msg(known, "libarena-preload.so exports %s", name);
    }
    arena_run_free(&r);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ck_assert_msg(seen[i], "libarena-preload.so does not export %s", want[i]);
}
END_TEST

static Suite *preload_suite(void)
{
    Suite *s = suite_create("preload");
    TCase *tc = tcase_create("daemon");
    arena_test_fixture_use(&daemon_, NULL, NULL, ARENA_TEST_EXPORT_SOCKET);
    tcase_add_checked_fixture(tc, setup_daemon, teardown_daemon);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_api_contract_leased);
    tcase_add_test(tc, test_mt_prog_same_output);
    tcase_add_test(tc, test_shell_forks);
    tcase_add_test(tc, test_python_small_objects);
    tcase_add_test(tc, test_sort_large_file);
    suite_add_tcase(s, tc);

    TCase *tn = tcase_create("no_daemon");
    tcase_add_checked_fixture(tn, setup_no_daemon, remove_tmpdir);
    tcase_set_timeout(tn, 120);
    tcase_add_test(tn, test_no_daemon_falls_back_with_one_warning);
    tcase_add_test(tn, test_require_daemon_fails_allocations);
    tcase_add_test(tn, test_exports_only_malloc_family);
    suite_add_tcase(s, tn);
    return s;
}

ARENA_TEST_MAIN(preload_suite)
