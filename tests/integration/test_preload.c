/* SPDX-License-Identifier: MIT
 *
 * test_preload.c -- real programs under libarena-preload.so.
 *
 * Each test runs a program twice, with LD_PRELOAD=libarena-preload.so and
 * without it, and compares what they print: python3 (PYTHONMALLOC=malloc)
 * building and dropping millions of small objects, sort(1) on a 20 MB file,
 * and mt_prog, our multi-threaded malloc/realloc/free workload with a
 * checksum. test_preload_api checks the C library contract from inside a
 * preloaded program. The "daemon" cases run a real arenad from the harness
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
#include <ftw.h>
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

#include "check_main.h"
#include "fixture.h"

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
 * preload is true (else unset), stdin from in_path (NULL: /dev/null), stdout
 * and stderr into files. Returns the wait status; kills the program's process
 * group and fails the test when it runs past RUN_TIMEOUT_S. */
static int run(const char *const *argv, const char *const *env, bool preload, const char *in_path,
               const char *out_path, const char *err_path)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        (void)setpgid(0, 0);
        if (preload)
            (void)setenv("LD_PRELOAD", PRELOAD_PATH, 1);
        else
            (void)unsetenv("LD_PRELOAD");
        for (; env && *env; env++) {
            const char *eq = strchr(*env, '=');
            if (eq) {
                char name[128];
                snprintf(name, sizeof(name), "%.*s", (int)(eq - *env), *env);
                (void)setenv(name, eq + 1, 1);
            } else {
                (void)unsetenv(*env);
            }
        }
        int in = open(in_path ? in_path : "/dev/null", O_RDONLY | O_CLOEXEC);
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
            _exit(126);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    (void)setpgid(pid, pid);

    struct timespec start, now, tick = {0, 10 * 1000 * 1000};
    int status = 0;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            return status;
        ck_assert_int_eq(w, 0);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > RUN_TIMEOUT_S) {
            (void)kill(-pid, SIGKILL);
            (void)kill(pid, SIGKILL);
            (void)waitpid(pid, &status, 0);
            ck_abort_msg("%s did not finish within %d s", argv[0], RUN_TIMEOUT_S);
        }
        nanosleep(&tick, NULL);
    }
}

/* Reads a whole (small) file into a NUL-terminated heap buffer. */
static char *slurp(const char *path, size_t *ret_len)
{
    FILE *f = fopen(path, "re");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    ck_assert_int_ge(len, 0);
    rewind(f);
    char *buf = malloc((size_t)len + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
    buf[len] = '\0';
    fclose(f);
    if (ret_len)
        *ret_len = (size_t)len;
    return buf;
}

/* True when two files have the same bytes (compared in blocks). */
static bool same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "re"), *fb = fopen(b, "re");
    static char ba[65536], bb[65536];
    bool same = fa && fb;

    while (same) {
        size_t na = fread(ba, 1, sizeof(ba), fa);
        size_t nb = fread(bb, 1, sizeof(bb), fb);
        if (na != nb || memcmp(ba, bb, na) != 0)
            same = false;
        if (na == 0)
            break;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return same;
}

static bool exited_ok(int status)
{
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Runs argv with and without the preload library and checks both succeed
 * with identical stdout and an empty stderr under the library. */
static void compare_runs(const char *name, const char *const *argv, const char *const *env,
                         const char *in_path)
{
    char out_plain[320], err_plain[320], out_pre[320], err_pre[320], tag[64];

    snprintf(tag, sizeof(tag), "%s.plain.out", name);
    path_in_tmp(out_plain, sizeof(out_plain), tag);
    snprintf(tag, sizeof(tag), "%s.plain.err", name);
    path_in_tmp(err_plain, sizeof(err_plain), tag);
    snprintf(tag, sizeof(tag), "%s.preload.out", name);
    path_in_tmp(out_pre, sizeof(out_pre), tag);
    snprintf(tag, sizeof(tag), "%s.preload.err", name);
    path_in_tmp(err_pre, sizeof(err_pre), tag);

    int st = run(argv, env, false, in_path, out_plain, err_plain);
    ck_assert_msg(exited_ok(st), "%s without preload: status %#x", name, st);
    st = run(argv, env, true, in_path, out_pre, err_pre);
    char *err = slurp(err_pre, NULL);
    ck_assert_msg(exited_ok(st), "%s under preload: status %#x, stderr: %s", name, st, err);
    ck_assert_msg(err[0] == '\0', "%s under preload printed: %s", name, err);
    free(err);
    ck_assert_msg(same_file(out_plain, out_pre), "%s: output differs under preload", name);
    struct stat sb;
    ck_assert_int_eq(stat(out_pre, &sb), 0);
    ck_assert_int_gt(sb.st_size, 0);
}

/* ---- fixtures -------------------------------------------------------------------- */

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/arena-preload-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path) == 0 ? 0 : -1;
}

static void remove_tmpdir(void)
{
    if (!tmpdir[0])
        return;
    (void)nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    tmpdir[0] = '\0';
}

static void setup_daemon(void)
{
    make_tmpdir();
    arena_test_daemon_up(&daemon_, NULL, NULL, ARENA_TEST_EXPORT_SOCKET);
}

static void teardown_daemon(void)
{
    (void)arena_test_daemon_stop(&daemon_);
    remove_tmpdir();
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
    char out[320], err[320];

    path_in_tmp(out, sizeof(out), "api.out");
    path_in_tmp(err, sizeof(err), "api.err");
    int st = run(argv, NULL, true, NULL, out, err);
    char *o = slurp(out, NULL), *e = slurp(err, NULL);
    ck_assert_msg(exited_ok(st), "status %#x, stdout: %s, stderr: %s", st, o, e);
    ck_assert_ptr_nonnull(strstr(o, " 0 failed"));
    ck_assert_str_eq(e, "");
    free(o);
    free(e);

    /* Without the library the first check (malloc is ours) fails. */
    st = run(argv, NULL, false, NULL, out, err);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1);
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
    char out_plain[320], out[320], err[320], expect[512];

    path_in_tmp(out_plain, sizeof(out_plain), "plain.out");
    path_in_tmp(out, sizeof(out), "fallback.out");
    path_in_tmp(err, sizeof(err), "fallback.err");
    int st = run(argv, NULL, false, NULL, out_plain, err);
    ck_assert(exited_ok(st));
    st = run(argv, NULL, true, NULL, out, err);
    char *e = slurp(err, NULL);
    ck_assert_msg(exited_ok(st), "status %#x, stderr: %s", st, e);
    snprintf(expect, sizeof(expect), "arena-preload: no arenad at %s, using anonymous memory\n",
             absent_socket);
    ck_assert_str_eq(e, expect);
    free(e);
    ck_assert(same_file(out_plain, out));

    /* The API contract holds on anonymous memory too. */
    const char *api[] = {PRELOAD_API_PATH, "anonymous", NULL};
    st = run(api, NULL, true, NULL, out, err);
    char *o = slurp(out, NULL);
    ck_assert_msg(exited_ok(st), "status %#x, stdout: %s", st, o);
    ck_assert_ptr_nonnull(strstr(o, " 0 failed"));
    free(o);
    e = slurp(err, NULL);
    ck_assert_str_eq(e, expect);
    free(e);
}
END_TEST

START_TEST(test_require_daemon_fails_allocations)
{
    const char *argv[] = {MT_PROG_PATH, "2", "1000", NULL};
    const char *env[] = {"ARENA_REQUIRE_DAEMON=1", NULL};
    char out[320], err[320];

    path_in_tmp(out, sizeof(out), "require.out");
    path_in_tmp(err, sizeof(err), "require.err");
    int st = run(argv, env, true, NULL, out, err);
    char *e = slurp(err, NULL);
    /* mt_prog reports the failure (of malloc, or of pthread_create, which
     * allocates) and exits 1. */
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %#x, stderr: %s", st, e);
    ck_assert_ptr_nonnull(strstr(e, "arena-preload: no arenad at "));
    ck_assert_ptr_nonnull(strstr(e, "ARENA_REQUIRE_DAEMON=1"));
    ck_assert_ptr_nonnull(strstr(e, "mt_prog: "));
    free(e);
}
END_TEST

/* The library exports the malloc family and nothing else. */
START_TEST(test_exports_only_malloc_family)
{
    static const char *const want[] = {
        "aligned_alloc", "calloc",         "free",    "malloc",  "malloc_usable_size",
        "memalign",      "posix_memalign", "pvalloc", "realloc", "valloc"};
    const char *argv[] = {"nm", "-D", "--defined-only", PRELOAD_PATH, NULL};
    char out[320], err[320], name[256], type[8];
    bool seen[sizeof(want) / sizeof(want[0])] = {false};

    path_in_tmp(out, sizeof(out), "nm.out");
    path_in_tmp(err, sizeof(err), "nm.err");
    ck_assert(exited_ok(run(argv, NULL, false, NULL, out, err)));
    FILE *f = fopen(out, "re");
    ck_assert_ptr_nonnull(f);
    char line[512];
    while (fgets(line, sizeof(line), f)) {
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
    fclose(f);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ck_assert_msg(seen[i], "libarena-preload.so does not export %s", want[i]);
}
END_TEST

static Suite *preload_suite(void)
{
    Suite *s = suite_create("preload");
    TCase *tc = tcase_create("daemon");
    tcase_add_checked_fixture(tc, setup_daemon, teardown_daemon);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_api_contract_leased);
    tcase_add_test(tc, test_mt_prog_same_output);
    tcase_add_test(tc, test_shell_forks);
#ifdef PYTHON3_PATH
    tcase_add_test(tc, test_python_small_objects);
#endif
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
