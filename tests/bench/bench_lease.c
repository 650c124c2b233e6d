/* SPDX-License-Identifier: MIT
 *
 * bench_lease.c -- what a raw lease costs: lease + release round trips
 * against a real arenad from 1, 16 and 128 client processes, next to the raw
 * cost of a Unix-socket round trip shaped like a lease (a request without an
 * fd, an answer carrying one), measured in the same run on the same machine.
 *
 *   bench-lease [--seconds S] [--size BYTES] [--clients LIST]
 *
 * Starts its own arenad on a temporary socket (the tests' daemon fixture) and
 * always stops it. Each client process connects, warms up, waits at a
 * barrier, then leases and releases for S seconds (default 1), recording
 * every call's latency into shared memory; the parent merges them. Prints a
 * table and, last, one RESULT line: the raw fd round trip p50; lease p50/p99
 * of one client and their ratio to the raw p50 when the 1-client row ran;
 * total lease+release pairs per second with 128 clients when that row ran (a
 * row not run has no key). A program, not a test: it asserts no figure, but
 * exits 1 when a client, the raw peer or the daemon failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "fdpass.h"
#include "daemon.h"
#include "size.h"

#define MAX_SAMPLES_TOTAL (4u * 1024u * 1024u)
#define MAX_LEVELS        8

static arena_test_daemon_t bench_daemon;

static uint64_t now_ns(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Percentile of sorted samples (ns), in microseconds. */
static double pct_us(const uint32_t *v, size_t n, double p)
{
    if (n == 0)
        return 0.0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return (double)v[i] / 1000.0;
}

/* ---- raw fd round trip ---------------------------------------------------------------- */

static int send_fd(int sock, int fd)
{
    char byte = 'x';
    return arena__send_with_fd(sock, &byte, 1, fd, NULL, 0, 0) == 1 ? 0 : -1;
}

/* Receives one byte and one fd, which it closes. */
static int recv_fd(int sock)
{
    char byte;
    return arena__recv_with_fds(sock, &byte, 1, NULL, 0, 0) == 1 ? 0 : -1;
}

/* Sends one byte, no fd: the request half of a lease. */
static int send_byte(int sock)
{
    char byte = 'q';
    return write(sock, &byte, 1) == 1 ? 0 : -1;
}

/* Receives one byte, no fd. */
static int recv_byte(int sock)
{
    char byte;
    return read(sock, &byte, 1) == 1 ? 0 : -1;
}

/* Ping-pong between two processes shaped as a lease is: a request without
 * an fd one way, an answer carrying an fd back. Fills sorted samples (ns).
 * Returns the count, 0 when the peer failed (it must exit 0). */
static size_t raw_fd_rtt(uint32_t *samples, size_t max, double seconds)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return 0;
    int memfd = memfd_create("bench", MFD_CLOEXEC);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return 0;
    if (pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
            _exit(1);
        (void)close(sv[0]);
        while (recv_byte(sv[1]) == 0) {
            if (send_fd(sv[1], memfd) < 0)
                break;
        }
        _exit(0);
    }
    (void)close(sv[1]);
    for (int i = 0; i < 1000; i++) { /* warm-up */
        if (send_byte(sv[0]) < 0 || recv_fd(sv[0]) < 0)
            break;
    }
    size_t n = 0;
    uint64_t end = now_ns() + (uint64_t)(seconds * 1e9);
    while (n < max) {
        uint64_t t0 = now_ns();
        if (send_byte(sv[0]) < 0 || recv_fd(sv[0]) < 0)
            break;
        uint64_t t1 = now_ns();
        samples[n++] = (uint32_t)(t1 - t0 > UINT32_MAX ? UINT32_MAX : t1 - t0);
        if (t1 >= end)
            break;
    }
    (void)close(sv[0]);
    (void)close(memfd);
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        (void)fprintf(stderr, "bench-lease: the raw peer failed (status 0x%x)\n", status);
        return 0;
    }
    qsort(samples, n, sizeof(*samples), cmp_u32);
    return n;
}

/* ---- lease round trips ---------------------------------------------------------------- */

typedef struct slot {
    uint32_t count;  /* samples written */
    uint32_t failed; /* calls that failed */
} slot_t;

typedef struct level_result {
    unsigned clients;
    uint64_t pairs;
    uint64_t failures;
    double seconds;
    double lease_p50, lease_p99, lease_p999;
    double pair_p50, pair_p99, pair_p999;
} level_result_t;

/* One client process: per_child samples of lease latency and of
 * lease+release latency. */
static void lease_child(const char *socket, size_t size, double seconds, int barrier, slot_t *slot,
                        uint32_t *lease_ns, uint32_t *pair_ns, size_t per_child)
{
    arena_conn_t *conn;
    if (arena_connect(socket, &conn) != 0) {
        slot->failed = 1;
        _exit(2);
    }
    for (int i = 0; i < 20; i++) { /* warm-up: first faults, daemon tables */
        arena_lease_t l;
        if (arena_lease(conn, size, 0, &l) == 0)
            (void)arena_release(conn, &l);
    }
    char c;
    while (read(barrier, &c, 1) < 0 && errno == EINTR)
        ;
    uint64_t end = now_ns() + (uint64_t)(seconds * 1e9);
    uint32_t n = 0, failed = 0;
    for (;;) {
        arena_lease_t l;
        uint64_t t0 = now_ns();
        int r = arena_lease(conn, size, -1, &l);
        uint64_t t1 = now_ns();
        if (r == 0)
            r = arena_release(conn, &l);
        uint64_t t2 = now_ns();
        if (r != 0) {
            failed++;
        } else if (n < per_child) {
            lease_ns[n] = (uint32_t)(t1 - t0 > UINT32_MAX ? UINT32_MAX : t1 - t0);
            pair_ns[n] = (uint32_t)(t2 - t0 > UINT32_MAX ? UINT32_MAX : t2 - t0);
            n++;
        }
        if (t2 >= end || n >= per_child)
            break;
    }
    slot->count = n;
    slot->failed = failed;
    arena_disconnect(conn);
    _exit(0);
}

static int run_level(unsigned clients, size_t size, double seconds, level_result_t *res)
{
    size_t per_child = MAX_SAMPLES_TOTAL / clients;
    size_t bytes = clients * sizeof(slot_t) + 2 * (size_t)clients * per_child * sizeof(uint32_t);
    void *shm = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shm == MAP_FAILED)
        return -errno;
    slot_t *slots = shm;
    uint32_t *lease_ns = (uint32_t *)(slots + clients);
    uint32_t *pair_ns = lease_ns + (size_t)clients * per_child;
    int bar[2];
    if (pipe2(bar, O_CLOEXEC) < 0)
        return -errno;
    pid_t *pids = calloc(clients, sizeof(*pids));
    if (!pids)
        return -ENOMEM;
    pid_t parent = getpid();
    (void)fflush(NULL);
    for (unsigned i = 0; i < clients; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                _exit(1);
            (void)close(bar[1]);
            lease_child(bench_daemon.socket, size, seconds, bar[0], &slots[i],
                        lease_ns + (size_t)i * per_child, pair_ns + (size_t)i * per_child,
                        per_child);
        }
    }
    (void)close(bar[0]);
    /* Let every child connect and warm up, then open the barrier at once. */
    struct timespec settle = {0, 200000000L + 2000000L * (long)clients};
    (void)nanosleep(&settle, NULL);
    uint64_t t0 = now_ns();
    (void)close(bar[1]);
    bool crashed = false;
    for (unsigned i = 0; i < clients; i++) {
        int status = 0;
        if (pids[i] > 0 && (waitpid(pids[i], &status, 0) != pids[i] || !WIFEXITED(status) ||
                            WEXITSTATUS(status) != 0)) {
            (void)fprintf(stderr, "bench-lease: client %u failed (status 0x%x)\n", i, status);
            crashed = true;
        }
    }
    uint64_t t1 = now_ns();
    free(pids);
    if (crashed)
        return -ECHILD;

    /* Merge the samples. */
    uint64_t total = 0, failures = 0;
    for (unsigned i = 0; i < clients; i++) {
        total += slots[i].count;
        failures += slots[i].failed;
    }
    uint32_t *all_lease = malloc((total ? total : 1) * sizeof(uint32_t));
    uint32_t *all_pair = malloc((total ? total : 1) * sizeof(uint32_t));
    if (!all_lease || !all_pair)
        return -ENOMEM;
    size_t k = 0;
    for (unsigned i = 0; i < clients; i++) {
        memcpy(all_lease + k, lease_ns + (size_t)i * per_child, slots[i].count * sizeof(uint32_t));
        memcpy(all_pair + k, pair_ns + (size_t)i * per_child, slots[i].count * sizeof(uint32_t));
        k += slots[i].count;
    }
    qsort(all_lease, total, sizeof(uint32_t), cmp_u32);
    qsort(all_pair, total, sizeof(uint32_t), cmp_u32);
    *res = (level_result_t){
        .clients = clients,
        .pairs = total,
        .failures = failures,
        .seconds = (double)(t1 - t0) / 1e9,
        .lease_p50 = pct_us(all_lease, total, 0.50),
        .lease_p99 = pct_us(all_lease, total, 0.99),
        .lease_p999 = pct_us(all_lease, total, 0.999),
        .pair_p50 = pct_us(all_pair, total, 0.50),
        .pair_p99 = pct_us(all_pair, total, 0.99),
        .pair_p999 = pct_us(all_pair, total, 0.999),
    };
    free(all_lease);
    free(all_pair);
    (void)munmap(shm, bytes);
    return 0;
}

/* Stops the daemon; returns its exit status (0: clean; see
 * arena_test_daemon_stop), 0 when none runs. */
static int stop_daemon_status(void)
{
    if (bench_daemon.pid <= 0)
        return 0;
    return arena_test_daemon_stop(&bench_daemon);
}

static void stop_daemon(void)
{
    (void)stop_daemon_status();
}

static void on_signal(int sig)
{
    (void)sig;
    stop_daemon(); /* not async-signal-safe in general; this is a benchmark's last act */
    _exit(130);
}

static void usage(FILE *f)
{
    (void)fputs("Usage: bench-lease [--seconds S] [--size BYTES] [--clients N,N,...]\n"
                "Lease + release round trips against a private arenad, next to a raw\n"
                "Unix-socket round trip passing an fd back. Defaults: 1 s per row, 64K leases,\n"
                "clients 1,16,128.\n",
                f);
}

int main(int argc, char **argv)
{
    double seconds = 1.0;
    uint64_t size = 64 * 1024;
    unsigned levels[MAX_LEVELS] = {1, 16, 128};
    size_t nlevels = 3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = atof(argv[++i]);
            if (!(seconds > 0.0 && seconds <= 600.0)) {
                (void)fprintf(stderr, "bench-lease: --seconds must be in (0, 600]\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
            if (arena__size_parse(argv[++i], 0, &size) < 0 || size == 0) {
                (void)fprintf(stderr, "bench-lease: bad --size\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--clients") == 0 && i + 1 < argc) {
            nlevels = 0;
            char *save = NULL;
            for (char *t = strtok_r(argv[++i], ",", &save); t && nlevels < MAX_LEVELS;
                 t = strtok_r(NULL, ",", &save)) {
                long v = atol(t);
                if (v < 1 || v > 1024) {
                    (void)fprintf(stderr, "bench-lease: clients must be 1..1024\n");
                    return 2;
                }
                levels[nlevels++] = (unsigned)v;
            }
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }

    (void)signal(SIGPIPE, SIG_IGN);
    const char *const args[] = {"--budget", "1G", NULL};
    int r = arena_test_daemon_start(&bench_daemon, NULL, args);
    if (r < 0) {
        (void)fprintf(stderr, "bench-lease: cannot start arenad: %s\n", arena_strerror(r));
        return 1;
    }
    (void)atexit(stop_daemon);
    (void)signal(SIGINT, on_signal);
    (void)signal(SIGTERM, on_signal);

    uint32_t *raw = malloc(MAX_SAMPLES_TOTAL * sizeof(uint32_t));
    if (!raw)
        return 1;
    size_t nraw = raw_fd_rtt(raw, MAX_SAMPLES_TOTAL, seconds < 1.0 ? seconds : 1.0);
    double raw_p50 = pct_us(raw, nraw, 0.50), raw_p99 = pct_us(raw, nraw, 0.99),
           raw_p999 = pct_us(raw, nraw, 0.999);

    char sz[32];
    (void)printf("bench-lease: %s leases, %.1f s per row, %ld CPUs\n",
                 arena__size_format(size, sz, sizeof(sz)), seconds, sysconf(_SC_NPROCESSORS_ONLN));
    (void)printf("%-34s %10s %12s %9s %9s %9s\n", "", "ops", "ops/s", "p50 us", "p99 us",
                 "p999 us");
    (void)printf("%-34s %10zu %12.0f %9.2f %9.2f %9.2f\n", "raw socket round trip, fd back", nraw,
                 nraw ? (double)nraw / (seconds < 1.0 ? seconds : 1.0) : 0.0, raw_p50, raw_p99,
                 raw_p999);

    level_result_t res[MAX_LEVELS];
    double lease1_p50 = 0, lease1_p99 = 0, ops128 = 0;
    bool ran1 = false, ran128 = false;
    for (size_t i = 0; i < nlevels; i++) {
        r = run_level(levels[i], (size_t)size, seconds, &res[i]);
        if (r < 0) {
            (void)fprintf(stderr, "bench-lease: %u clients: %s\n", levels[i], arena_strerror(r));
            return 1;
        }
        double ops = res[i].seconds > 0 ? (double)res[i].pairs / res[i].seconds : 0;
        char label[64];
        (void)snprintf(label, sizeof(label), "lease, %u client%s", levels[i],
                       levels[i] == 1 ? "" : "s");
        (void)printf("%-34s %10llu %12.0f %9.2f %9.2f %9.2f\n", label,
                     (unsigned long long)res[i].pairs, ops, res[i].lease_p50, res[i].lease_p99,
                     res[i].lease_p999);
        (void)snprintf(label, sizeof(label), "lease+release, %u client%s", levels[i],
                       levels[i] == 1 ? "" : "s");
        (void)printf("%-34s %10s %12s %9.2f %9.2f %9.2f\n", label, "", "", res[i].pair_p50,
                     res[i].pair_p99, res[i].pair_p999);
        if (res[i].failures)
            (void)printf("  (%llu failed calls)\n", (unsigned long long)res[i].failures);
        if (levels[i] == 1) {
            lease1_p50 = res[i].lease_p50;
            lease1_p99 = res[i].lease_p99;
            ran1 = true;
        }
        if (levels[i] == 128) {
            ops128 = ops;
            ran128 = true;
        }
    }
    free(raw);
    int status = stop_daemon_status();
    if (status != 0) {
        (void)fprintf(stderr, "bench-lease: arenad did not exit cleanly: %d\n", status);
        return 1;
    }
    if (nraw == 0) {
        (void)fprintf(stderr, "bench-lease: the raw round trip measured nothing\n");
        return 1;
    }
    /* A figure only for a row that ran: no 0 standing in for "not run". */
    (void)printf("RESULT raw_fd_rtt_us=%.2f", raw_p50);
    if (ran1)
        (void)printf(" lease_p50_us=%.2f lease_p99_us=%.2f ratio_p50=%.2f", lease1_p50, lease1_p99,
                     lease1_p50 / raw_p50);
    if (ran128)
        (void)printf(" ops_per_s_128=%.0f", ops128);
    (void)printf("\n");
    return 0;
}
