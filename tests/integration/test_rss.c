/* SPDX-License-Identifier: MIT
 *
 * test_rss.c -- memory really goes back: real programs under
 * libarena-preload.so and a real arenad.
 *
 * - A program that frees everything is back near its starting RSS, its
 *   shared memory (RssShmem) near zero, within the daemon's parked decay,
 *   also while it is stopped (SIGSTOP: no instruction of it runs), and the
 *   daemon shows as live only what it still holds (its stdio buffer).
 * - malloc_trim(0) gives everything back at once and returns 1.
 * - The Python case of the seed story: a generator that freed what it made
 *   is stopped with its memory parked; a simulator that allocates 400
 *   bytearray(1 << 20) (1 MiB and a header each: not more than 12.5% waste
 *   per object) in a 512 MiB budget is served.
 *
 * The waits are bounded (10 s) but generous: they wait for behaviour, they do
 * not time it. Each test starts its own daemon (tests/lib fixture).
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "arena.h"
#include "check_main.h"
#include "child.h"
#include "conn.h"
#include "fixture.h"
#include "run.h"

static arena_test_daemon_t rss_daemon;

/* VmRSS and RssShmem of pid in KiB (-1 when unreadable). */
static void rss_of(pid_t pid, long *ret_rss, long *ret_shmem)
{
    char path[64], buf[4096];
    *ret_rss = *ret_shmem = -1;
    (void)snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    (void)close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    const char *p = strstr(buf, "VmRSS:");
    if (p)
        *ret_rss = strtol(p + 6, NULL, 10);
    p = strstr(buf, "RssShmem:");
    if (p)
        *ret_shmem = strtol(p + 9, NULL, 10);
}

static double now_s(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A child running rss_prog under the preload library, its stdin and stdout
 * piped to us. */
typedef struct prog {
    pid_t pid;
    int in;    /* its stdin: closing it lets it exit */
    FILE *out; /* its stdout */
} prog_t;

static void prog_start(prog_t *p, const char *mode, const char *count, const char *size)
{
    int in[2], out[2];
    ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
    p->pid = fork();
    ck_assert_int_ge(p->pid, 0);
    if (p->pid == 0) {
        (void)dup2(in[0], STDIN_FILENO);
        (void)dup2(out[1], STDOUT_FILENO);
        /* The child of a fork, one thread: setenv is safe here. */
        (void)setenv("LD_PRELOAD", PRELOAD_PATH, 1);         /* NOLINT(concurrency-mt-unsafe) */
        (void)setenv("ARENAD_SOCKET", rss_daemon.socket, 1); /* NOLINT(concurrency-mt-unsafe) */
        (void)setenv("ARENA_REQUIRE_DAEMON", "1", 1);        /* NOLINT(concurrency-mt-unsafe) */
        execl(RSS_PROG_PATH, RSS_PROG_PATH, mode, count, size, (char *)NULL);
        _exit(127);
    }
    (void)close(in[0]);
    (void)close(out[1]);
    p->in = in[1];
    p->out = fdopen(out[0], "r");
    ck_assert_ptr_nonnull(p->out);
}

/* Closes its stdin and expects a clean exit. */
static void prog_finish(prog_t *p)
{
    (void)close(p->in);
    ck_assert_int_eq(arena_test_child_wait(p->pid, 20000), 0);
    (void)fclose(p->out);
}

/* The daemon's view of the client with pid: its live bytes. */
static uint64_t daemon_live_of(pid_t pid)
{
    arena_conn_t *c;
    ck_assert_int_eq(arena_connect(rss_daemon.socket, &c), 0);
    arena__admin_clients_t *list = NULL;
    ck_assert_int_eq(arena__admin_clients(c, &list), 0);
    uint64_t live = UINT64_MAX;
    for (size_t i = 0; i < list->count; i++) {
        if (list->items[i].pid == (uint32_t)pid)
            live = list->items[i].live_bytes;
    }
    arena__admin_clients_free(list);
    arena_disconnect(c);
    ck_assert_msg(live != UINT64_MAX, "pid %d is not a client of the daemon", (int)pid);
    return live;
}

START_TEST(test_free_all_goes_back_while_stopped)
{
    arena_test_daemon_up(&rss_daemon, NULL, (const char *const[]){"--budget", "1G", NULL}, 0);
    prog_t p;
    prog_start(&p, "freeall", "200000", "1000"); /* 200 MB of 1000-byte objects */
    long start_rss, start_shmem;
    char line[128];
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), p.out));
    ck_assert_int_eq(sscanf(line, "start %ld %ld", &start_rss, &start_shmem), 2);
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), p.out));
    ck_assert_str_eq(line, "freed\n");
    long rss, shmem;
    rss_of(p.pid, &rss, &shmem);
    printf("free all: start %ld KiB, right after the last free %ld KiB (shmem %ld KiB)\n",
           start_rss, rss, shmem);
    /* Stopped: nothing of it runs from here on; the daemon alone gives its
     * parked memory back. */
    ck_assert_int_eq(kill(p.pid, SIGSTOP), 0);
    double t0 = now_s();
    do {
        usleep(50 * 1000);
        rss_of(p.pid, &rss, &shmem);
    } while ((shmem > 1024 || rss > start_rss + 4096) && now_s() - t0 < 10.0);
    printf("free all: stopped, after %.2f s: VmRSS %ld KiB, RssShmem %ld KiB\n", now_s() - t0, rss,
           shmem);
    ck_assert_msg(shmem <= 1024, "RssShmem stays at %ld KiB", shmem);
    ck_assert_msg(rss <= start_rss + 4096, "VmRSS %ld KiB, started at %ld KiB", rss, start_rss);
    /* It published what it holds live when it gave everything back: its
     * stdout buffer (4 KiB, malloc'd by stdio), nothing of the 200 MB. */
    uint64_t live = daemon_live_of(p.pid);
    printf("free all: the daemon shows %llu bytes live\n", (unsigned long long)live);
    ck_assert_uint_le(live, (uint64_t)16 * 1024);
    ck_assert_int_eq(kill(p.pid, SIGCONT), 0);
    prog_finish(&p);
    ck_assert_int_eq(arena_test_daemon_stop(&rss_daemon), 0);
}
END_TEST

START_TEST(test_malloc_trim_gives_back_at_once)
{
    /* No parked decay: only malloc_trim() can give the memory back here. */
    arena_test_daemon_up(&rss_daemon, "parked_decay_ms = 0\n",
                         (const char *const[]){"--budget", "1G", NULL}, 0);
    prog_t p;
    prog_start(&p, "trim", "200000", "1000");
    long start_rss, start_shmem, rss, shmem;
    int ret = -1;
    char line[128];
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), p.out));
    ck_assert_int_eq(sscanf(line, "start %ld %ld", &start_rss, &start_shmem), 2);
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), p.out));
    ck_assert_int_eq(sscanf(line, "trim %d %ld %ld", &ret, &rss, &shmem), 3);
    printf("malloc_trim: returned %d, then VmRSS %ld KiB (started at %ld), RssShmem %ld KiB\n", ret,
           rss, start_rss, shmem);
    ck_assert_int_eq(ret, 1);
    ck_assert_msg(shmem <= 1024, "RssShmem %ld KiB after malloc_trim", shmem);
    ck_assert_msg(rss <= start_rss + 4096, "VmRSS %ld KiB, started at %ld KiB", rss, start_rss);
    prog_finish(&p);
    ck_assert_int_eq(arena_test_daemon_stop(&rss_daemon), 0);
}
END_TEST

#ifdef PYTHON3_PATH
static const char generator_py[] =
    "import os, signal, sys\n"
    "xs = [bytes(100) + str(i).encode() for i in range(1500000)]\n" /* ~200 MB */
    "del xs\n"
    "sys.stdout.write('freed\\n'); sys.stdout.flush()\n"
    "os.kill(os.getpid(), signal.SIGSTOP)\n";

static const char simulator_py[] = "blocks = [bytearray(1 << 20) for _ in range(400)]\n"
                                   "for b in blocks: b[0] = 1; b[-1] = 2\n"
                                   "print('served', len(blocks), sum(len(b) for b in blocks))\n";

START_TEST(test_python_simulator_served_next_to_stopped_generator)
{
    arena_test_daemon_up(&rss_daemon, NULL, (const char *const[]){"--budget", "512M", NULL}, 0);
    int out[2];
    ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
    pid_t gen = fork();
    ck_assert_int_ge(gen, 0);
    if (gen == 0) {
        (void)dup2(out[1], STDOUT_FILENO);
        /* The child of a fork, one thread: setenv is safe here. */
        (void)setenv("LD_PRELOAD", PRELOAD_PATH, 1);         /* NOLINT(concurrency-mt-unsafe) */
        (void)setenv("PYTHONMALLOC", "malloc", 1);           /* NOLINT(concurrency-mt-unsafe) */
        (void)setenv("ARENAD_SOCKET", rss_daemon.socket, 1); /* NOLINT(concurrency-mt-unsafe) */
        (void)setenv("ARENA_REQUIRE_DAEMON", "1", 1);        /* NOLINT(concurrency-mt-unsafe) */
        execl(PYTHON3_PATH, PYTHON3_PATH, "-c", generator_py, (char *)NULL);
        _exit(127);
    }
    (void)close(out[1]);
    char line[64] = "";
    FILE *f = fdopen(out[0], "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
    ck_assert_str_eq(line, "freed\n");
    int status;
    ck_assert_int_eq(waitpid(gen, &status, WUNTRACED), gen);
    ck_assert(WIFSTOPPED(status));

    const char *argv[] = {PYTHON3_PATH, "-c", simulator_py, NULL};
    const char *env[] = {"LD_PRELOAD=" PRELOAD_PATH, "PYTHONMALLOC=malloc",
                         "ARENA_REQUIRE_DAEMON=1", NULL};
    char sock_env[400];
    (void)snprintf(sock_env, sizeof(sock_env), "ARENAD_SOCKET=%s", rss_daemon.socket);
    const char *env_all[] = {env[0], env[1], env[2], sock_env, NULL};
    arena_run_opts_t opts = {.env = env_all, .timeout_ms = 60000};
    arena_run_t r;
    ck_assert_int_eq(arena_run(argv, &opts, &r), 0);
    printf("simulator: exit %d, %s%s", r.code, r.out, r.err);
    ck_assert_msg(r.code == 0, "simulator exited %d: %s", r.code, r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "served 400 419430400"));
    arena_run_free(&r);

    /* Alive until this SIGKILL: a generator that crashed before fails. */
    (void)kill(gen, SIGKILL);
    ck_assert_int_eq(arena_test_child_wait(gen, 5000), ARENA_TEST_KILLED(SIGKILL));
    (void)fclose(f);
    ck_assert_int_eq(arena_test_daemon_stop(&rss_daemon), 0);
}
END_TEST
#endif

static Suite *rss_suite(void)
{
    Suite *s = suite_create("rss");
    TCase *tc = tcase_create("rss");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_free_all_goes_back_while_stopped);
    tcase_add_test(tc, test_malloc_trim_gives_back_at_once);
#ifdef PYTHON3_PATH
    tcase_add_test(tc, test_python_simulator_served_next_to_stopped_generator);
#endif
    suite_add_tcase(s, tc);
    return s;
}

ARENA_TEST_MAIN(rss_suite)
