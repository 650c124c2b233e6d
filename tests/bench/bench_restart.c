/* SPDX-License-Identifier: MIT
 *
 * bench_restart.c -- what a daemon restart costs a client that holds N
 * leases: arenad is SIGKILLed and started again on the same socket, and the
 * client's next call reconnects, hands its pool back and claims every lease
 * (ClaimRequests of 128). Measured per round: the first call after the new
 * daemon listens (reconnect + all claims + a status round trip), next to a
 * plain status round trip. The daemon runs with a short grace period so the
 * rounds do not wait on each other.
 *
 * Then the time to the first grant after a restart, with arenad as ./run.sh
 * starts it (supervised, the default grace period of 10 s): its serving
 * process is SIGKILLed, and once the new one listens a new client connects
 * and leases, and a returning client (holding leases) asks for a new one --
 * its call reconnects, claims and leases. Up to 4 rounds (the supervisor
 * gives up after 5 crashes in 10 s).
 *
 *   bench-restart [--leases N] [--rounds R]
 *
 * Last line: RESULT leases=N reattach_p50_ms=... reattach_max_ms=...
 *            claims_per_s=... status_rtt_us=... first_grant_after_restart_ms=...
 *            first_grant_new_ms=... first_grant_returning_ms=...
 * (first_grant_after_restart_ms: the slower p50 of the two clients).
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "arena.h"
#include "bench_stats.h"
#include "daemon.h"
#include "conn.h"

/* Time to the first grant after a crash of a supervised arenad, for a new
 * and a returning client: p50s in *ret_new_ms and *ret_back_ms. Returns 0,
 * or -1 after saying why. */
static int first_grants(int rounds, double *ret_new_ms, double *ret_back_ms)
{
    const char *const args[] = {"--budget", "2G", NULL};
    arena_test_daemon_t d;
    if (arena_test_daemon_start_supervised(&d, NULL, args) != 0) {
        fprintf(stderr, "bench-restart: cannot start a supervised arenad\n");
        return -1;
    }
    double fresh[4], back[4];
    arena_conn_t *conn = NULL;
    arena_lease_t l;
    int r = arena_connect(d.socket, &conn);
    for (int i = 0; r == 0 && i < 100; i++)
        r = arena_lease(conn, 64 * 1024, 0, &l);
    printf("%6s %14s %18s\n", "round", "new_client_ms", "returning_ms");
    for (int k = 0; r == 0 && k < rounds; k++) {
        pid_t server = arena_test_daemon_server_pid(&d, 0);
        if (server <= 0 || kill(server, SIGKILL) < 0 ||
            arena_test_daemon_server_pid(&d, server) <= 0) {
            r = -ESRCH;
            break;
        }
        arena_conn_t *other = NULL;
        double t0 = bench_now_us();
        r = arena_connect(d.socket, &other);
        if (r == 0)
            r = arena_lease(other, 64 * 1024, 5000, &l);
        fresh[k] = (bench_now_us() - t0) / 1e3;
        arena_disconnect(other);
        t0 = bench_now_us();
        if (r == 0)
            r = arena_lease(conn, 64 * 1024, 5000, &l);
        back[k] = (bench_now_us() - t0) / 1e3;
        printf("%6d %14.2f %18.2f\n", k, fresh[k], back[k]);
    }
    arena_disconnect(conn);
    int status = arena_test_daemon_stop(&d);
    if (r != 0) {
        fprintf(stderr, "bench-restart: first grant after a restart: %s\n", arena_strerror(r));
        return -1;
    }
    if (status != 0) {
        fprintf(stderr, "bench-restart: arenad did not exit cleanly: %d\n", status);
        return -1;
    }
    bench_sort(fresh, (size_t)rounds);
    bench_sort(back, (size_t)rounds);
    *ret_new_ms = bench_pct(fresh, (size_t)rounds, 0.5);
    *ret_back_ms = bench_pct(back, (size_t)rounds, 0.5);
    return 0;
}

int main(int argc, char **argv)
{
    int leases = 1000, rounds = 7;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--leases") == 0)
            leases = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--rounds") == 0)
            rounds = atoi(argv[i + 1]);
    }
    if (leases < 1 || rounds < 1) {
        fprintf(stderr, "usage: %s [--leases N] [--rounds R]\n", argv[0]);
        return 2;
    }
    const char *const args[] = {"--budget", "2G", NULL};
    arena_test_daemon_t d;
    if (arena_test_daemon_start(&d, "restart_grace_ms = 200\n", args) != 0) {
        fprintf(stderr, "bench-restart: cannot start arenad\n");
        return 1;
    }
    (void)setenv("ARENA_RECONNECT_MS", "10000", 1);
    arena_conn_t *conn = NULL;
    arena_lease_t *held = calloc((size_t)leases, sizeof(*held));
    int r = held ? arena_connect(d.socket, &conn) : -ENOMEM;
    for (int i = 0; r == 0 && i < leases; i++) {
        r = arena_lease(conn, 64 * 1024, 0, &held[i]);
        if (r == 0)
            memset(held[i].addr, i & 0xff, 4096);
    }
    if (r != 0) {
        fprintf(stderr, "bench-restart: lease: %s\n", arena_strerror(r));
        (void)arena_test_daemon_stop(&d); /* failing already */
        return 1;
    }
    double *took = calloc((size_t)rounds, sizeof(double));
    arena__admin_status_t st;
    double rtt = 0;
    printf("%6s %12s %14s\n", "round", "reattach_ms", "claims");
    for (int k = 0; k < rounds; k++) {
        if (arena_test_daemon_restart(&d, SIGKILL, args) != 0) {
            fprintf(stderr, "bench-restart: restart failed\n");
            return 1;
        }
        double t0 = bench_now_us();
        r = arena__admin_status(conn, &st);
        took[k] = (bench_now_us() - t0) / 1e3;
        if (r != 0 || st.leases != (uint64_t)leases) {
            fprintf(stderr, "bench-restart: after the restart: %s, %llu leases in the books\n",
                    arena_strerror(r), (unsigned long long)st.leases);
            return 1;
        }
        t0 = bench_now_us();
        for (int i = 0; i < 100; i++)
            (void)arena__admin_status(conn, &st);
        rtt += (bench_now_us() - t0) / 100;
        printf("%6d %12.2f %14d\n", k, took[k], leases);
        usleep(300 * 1000); /* the grace period ends before the next kill */
    }
    for (int i = 0; i < leases; i++) {
        const unsigned char *p = held[i].addr;
        if (p[0] != (i & 0xff) || p[4095] != (i & 0xff)) {
            fprintf(stderr, "bench-restart: lease %d lost its data\n", i);
            return 1;
        }
    }
    arena__conn_notes_t notes;
    (void)arena__conn_notes(conn, &notes);
    bench_sort(took, (size_t)rounds);
    double p50 = bench_pct(took, (size_t)rounds, 0.5), max = took[rounds - 1];
    printf("reconnects %llu, detached %llu\n", (unsigned long long)notes.reconnects_total,
           (unsigned long long)notes.detached_total);
    arena_disconnect(conn);
    /* A crash or a sanitizer's report at exit (23) fails the benchmark. */
    int status = arena_test_daemon_stop(&d);
    if (status != 0) {
        fprintf(stderr, "bench-restart: arenad did not exit cleanly: %d\n", status);
        free(took);
        free(held);
        return 1;
    }
    double fresh_ms, back_ms;
    if (first_grants(rounds < 4 ? rounds : 4, &fresh_ms, &back_ms) < 0)
        return 1;
    printf("RESULT leases=%d reattach_p50_ms=%.2f reattach_max_ms=%.2f claims_per_s=%.0f "
           "status_rtt_us=%.1f first_grant_after_restart_ms=%.2f first_grant_new_ms=%.2f "
           "first_grant_returning_ms=%.2f\n",
           leases, p50, max, (double)leases / (p50 / 1e3), rtt / rounds,
           fresh_ms > back_ms ? fresh_ms : back_ms, fresh_ms, back_ms);
    free(took);
    free(held);
    return 0;
}
