/* SPDX-License-Identifier: MIT
 *
 * bench_reclaim.c -- how long a starving request waits when the memory it
 * needs sits parked in another process that is stopped (SIGSTOP), next to
 * the plain lease latency when memory is free.
 *
 * A private arenad (tests/lib/daemon.h) with a budget of
 * LEASES x SIZE. A generator process leases the whole budget, writes every
 * page, parks every lease and is stopped. The benchmark then asks for one
 * lease at a time: each request fits only once the daemon takes one parked
 * lease back (CAS on its state word, punch, free), so its latency is the
 * reclaim path. After a round the benchmark gives its leases back, the
 * generator is continued, finds its leases reclaimed, leases anew, parks
 * and is stopped again. The plain figure is lease round trips with the
 * budget empty. Prints a table and, last, one RESULT line.
 *
 * The daemon answers a starving request from clean address space and punches
 * the reclaimed lease's touched pages after the reply, 512 KiB per loop turn
 * (daemon/extent.c, lease.c); punching 4 MiB of touched pages before the
 * reply cost about 1 ms per request. The machine's load shows in p99: plain
 * leases' p99 moves with it too, so compare the two lines of one run.
 *
 * Usage: bench-reclaim [rounds] (default 20; LEASES requests per round).
 * BENCH_RECLAIM_TRACE=1 prints every starving request's latency to stderr,
 * BENCH_RECLAIM_LOG=debug the daemon's log (each punch).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "bench_stats.h"
#include "daemon.h"

#define LEASES 16
#define SIZE   ((size_t)4 * 1024 * 1024)

static arena_test_daemon_t daemon_;
static pid_t generator;

static void cleanup(void)
{
    if (generator > 0) {
        (void)kill(generator, SIGKILL);
        (void)waitpid(generator, NULL, 0); /* only on the way out of a failure */
        generator = 0;
    }
    if (daemon_.pid > 0) {
        int status = arena_test_daemon_stop(&daemon_);
        if (status != 0) {
            fprintf(stderr, "bench-reclaim: arenad did not exit cleanly: %d\n", status);
            _exit(1);
        }
    }
}

static void die(const char *what, int r)
{
    fprintf(stderr, "bench-reclaim: %s: %s\n", what, arena_strerror(r));
    cleanup();
    exit(1);
}

/* The generator: per round, lease everything, write it, park it, say 'r',
 * wait for 'g' (stopped meanwhile), then find its leases reclaimed. The
 * budget is exactly its LEASES leases, so each of the benchmark's LEASES
 * grants came from a reclaim only if every one of them is reclaimed: fewer
 * is a failure (15), and the benchmark prints no figure. */
static int generator_main(int ready_fd, int go_fd, int rounds)
{
    arena_conn_t *conn;
    if (arena_connect(daemon_.socket, &conn) != 0)
        return 10;
    arena_lease_t l[LEASES];
    for (int round = 0; round < rounds; round++) {
        for (int i = 0; i < LEASES; i++) {
            if (arena_lease(conn, SIZE, 5000, &l[i]) != 0)
                return 11;
            if (!getenv("BENCH_RECLAIM_UNTOUCHED"))
                memset(l[i].addr, 0x33, l[i].size);
            if (arena_lease_park(conn, &l[i]) != 0)
                return 12;
        }
        char c = 'r';
        if (write(ready_fd, &c, 1) != 1 || read(go_fd, &c, 1) != 1)
            return 13;
        int reclaimed = 0;
        for (int i = 0; i < LEASES; i++) {
            int r = arena_lease_unpark(conn, &l[i]);
            if (r == 0)
                r = arena_release(conn, &l[i]);
            else if (r == ARENA_ERECLAIMED)
                reclaimed++;
            else
                return 14;
        }
        if (reclaimed != LEASES) {
            (void)fprintf(stderr, "bench-reclaim: round %d: %d of %d leases reclaimed\n", round,
                          reclaimed, LEASES);
            return 15;
        }
    }
    arena_disconnect(conn);
    return 0;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 20;
    if (rounds < 1)
        rounds = 1;
    char budget[32];
    (void)snprintf(budget, sizeof(budget), "%zuM", LEASES * SIZE / (1024 * 1024));
    /* BENCH_RECLAIM_LOG=debug shows the daemon's punches on stderr. */
    const char *log = getenv("BENCH_RECLAIM_LOG");
    const char *const args[] = {"--budget", budget, "--log-level", log ? log : "warn", NULL};
    /* parked_decay_ms = 0: parked leases stay parked until a request needs
     * them, so every starving request measures the reclaim path. */
    int r = arena_test_daemon_start(&daemon_, "parked_decay_ms = 0\n", args);
    if (r < 0)
        die("cannot start arenad", r);
    (void)atexit(cleanup);

    /* Plain lease latency, memory free. */
    arena_conn_t *conn;
    r = arena_connect(daemon_.socket, &conn);
    if (r < 0)
        die("connect", r);
    size_t nplain = (size_t)rounds * LEASES * 4;
    double *plain = calloc(nplain, sizeof(double));
    double *starve = calloc((size_t)rounds * LEASES, sizeof(double));
    if (!plain || !starve)
        die("calloc", -ENOMEM);
    for (size_t i = 0; i < nplain; i++) {
        arena_lease_t l;
        double t0 = bench_now_us();
        r = arena_lease(conn, SIZE, 0, &l);
        plain[i] = bench_now_us() - t0;
        if (r < 0)
            die("plain lease", r);
        (void)arena_release(conn, &l);
    }

    int ready[2], go[2];
    if (pipe(ready) < 0 || pipe(go) < 0)
        die("pipe", -errno);
    pid_t parent = getpid();
    generator = fork();
    if (generator < 0)
        die("fork", -errno);
    if (generator == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(99);
        (void)close(ready[0]);
        (void)close(go[1]);
        _exit(generator_main(ready[1], go[0], rounds));
    }
    /* Only the generator holds these ends: when it dies, the read below
     * sees end of file instead of waiting for ever. */
    (void)close(ready[1]);
    (void)close(go[0]);
    size_t n = 0;
    for (int round = 0; round < rounds; round++) {
        char c;
        if (read(ready[0], &c, 1) != 1) {
            int st = 0;
            if (waitpid(generator, &st, 0) == generator) {
                generator = 0;
                fprintf(stderr, "bench-reclaim: the generator ended (status 0x%x)\n", st);
            }
            die("generator", -EPIPE);
        }
        if (kill(generator, SIGSTOP) < 0)
            die("SIGSTOP", -errno);
        int st;
        if (waitpid(generator, &st, WUNTRACED) != generator || !WIFSTOPPED(st))
            die("generator did not stop", -ECHILD);
        arena_lease_t mine[LEASES];
        for (int i = 0; i < LEASES; i++) {
            double t0 = bench_now_us();
            r = arena_lease(conn, SIZE, 1000, &mine[i]);
            starve[n++] = bench_now_us() - t0;
            if (r < 0)
                die("starving lease", r);
            if (getenv("BENCH_RECLAIM_TRACE"))
                fprintf(stderr, "round %d request %d: %.1f us\n", round, i, starve[n - 1]);
        }
        for (int i = 0; i < LEASES; i++)
            (void)arena_release(conn, &mine[i]);
        (void)kill(generator, SIGCONT);
        c = 'g';
        if (write(go[1], &c, 1) != 1)
            die("generator", -EPIPE);
    }
    int st;
    if (waitpid(generator, &st, 0) != generator || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "bench-reclaim: the generator failed (status 0x%x)\n", st);
        generator = 0;
        die("generator failed", -ECHILD);
    }
    generator = 0;
    arena_disconnect(conn);
    cleanup(); /* the daemon's exit status before any figure */

    bench_sort(plain, nplain);
    bench_sort(starve, n);
    printf("%-44s %8s %10s %10s %10s\n", "case (4 MiB leases)", "samples", "p50 us", "p99 us",
           "max us");
    printf("%-44s %8zu %10.1f %10.1f %10.1f\n", "lease, memory free", nplain,
           bench_pct(plain, nplain, 0.5), bench_pct(plain, nplain, 0.99), plain[nplain - 1]);
    printf("%-44s %8zu %10.1f %10.1f %10.1f\n", "lease, memory parked in a stopped process", n,
           bench_pct(starve, n, 0.5), bench_pct(starve, n, 0.99), starve[n - 1]);
    printf("RESULT reclaim_grant_p50_us=%.1f reclaim_grant_p99_us=%.1f lease_p50_us=%.1f\n",
           bench_pct(starve, n, 0.5), bench_pct(starve, n, 0.99), bench_pct(plain, nplain, 0.5));
    free(plain);
    free(starve);
    return 0;
}
