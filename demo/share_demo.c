/* SPDX-License-Identifier: MIT
 *
 * share_demo.c -- `arena-demo --share`: the seed story's hand-off without a
 * copy (DESIGN.md section 8).
 *
 * The generator writes its scenario (a header and an array of records)
 * into a lease, shares it read-only and once (a hand-off), hands the token
 * to the simulator through a pipe, waits until the simulator says it has
 * attached, and exits. Only then does the simulator read the scenario:
 * the pages the generator wrote, mapped read-only in the simulator, never
 * copied, still there although their writer is gone, and charged to the
 * simulator now. When the simulator exits they are punched. Both are
 * children of the demo, each with its own connection to the daemon.
 * Prints what happened and, last, a RESULT line.
 */
#include "share_demo.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"

#define SCENARIO_MAGIC 0x5343454e41524931ull /* "SCENARI1" */

typedef struct scenario_header {
    uint64_t magic;
    uint64_t records;
    uint64_t checksum; /* of the records */
    uint64_t generator_pid;
} scenario_header_t;

typedef struct record {
    uint64_t id;
    double x, y, speed;
} record_t;

typedef struct sim_result {
    int err;
    int generator_gone; /* the generator had exited before the first read */
    uint64_t records;
    int checksum_ok;
    double read_ms;
    char token[ARENA_TOKEN_SIZE];
} sim_result_t;

static double demo_now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static uint64_t records_sum(const record_t *r, uint64_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t v;
        memcpy(&v, &r[i].x, sizeof(v));
        h = (h ^ r[i].id ^ v) * 1099511628211ull;
    }
    return h;
}

static bool io_all(int fd, void *buf, size_t n, bool out)
{
    size_t done = 0;
    while (done < n) {
        ssize_t k = out ? write(fd, (const char *)buf + done, n - done)
                        : read(fd, (char *)buf + done, n - done);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        done += (size_t)k;
    }
    return true;
}

/* Writes the scenario, shares it, hands the token on and exits once the
 * simulator has attached. Exit code 0, or the step that failed. */
static int generator(const char *socket, size_t mb, int to_sim, int from_sim)
{
    arena_conn_t *c = NULL;
    arena_lease_t l;
    if (arena_connect(socket, &c) < 0)
        return 10;
    if (arena_lease(c, mb * 1024 * 1024, 0, &l) < 0)
        return 11;
    scenario_header_t *h = l.addr;
    record_t *rec = (record_t *)(h + 1);
    uint64_t n = (l.size - sizeof(*h)) / sizeof(record_t);
    for (uint64_t i = 0; i < n; i++)
        rec[i] = (record_t){.id = i, .x = (double)i * 0.5, .y = (double)(n - i), .speed = 1.0};
    *h = (scenario_header_t){SCENARIO_MAGIC, n, records_sum(rec, n), (uint64_t)getpid()};
    char token[ARENA_TOKEN_SIZE];
    if (arena_share(c, &l, ARENA_SHARE_READONLY | ARENA_SHARE_ONCE, token) < 0)
        return 12;
    if (!io_all(to_sim, token, sizeof(token), true))
        return 13;
    char ack;
    if (!io_all(from_sim, &ack, 1, false) || ack != 'A')
        return 14;
    /* Exits holding the lease: its holder's exit is the hand-off. */
    return 0;
}

/* Attaches, says so, waits until the generator is gone, then reads. */
static void simulator(const char *socket, int from_gen, int to_gen, int go, int result)
{
    sim_result_t r = {0};
    arena_conn_t *c = NULL;
    arena_lease_t l;
    if (!io_all(from_gen, r.token, sizeof(r.token), false))
        r.err = -EIO;
    else if ((r.err = arena_connect(socket, &c)) == 0)
        r.err = arena_attach(c, r.token, &l);
    char ack = r.err ? 'F' : 'A';
    (void)io_all(to_gen, &ack, 1, true);
    char g;
    if (r.err == 0 && io_all(go, &g, 1, false)) {
        const scenario_header_t *h = l.addr;
        r.generator_gone = kill((pid_t)h->generator_pid, 0) < 0 && errno == ESRCH;
        double t0 = demo_now_ms();
        r.checksum_ok = h->magic == SCENARIO_MAGIC &&
                        records_sum((const record_t *)(h + 1), h->records) == h->checksum;
        r.read_ms = demo_now_ms() - t0;
        r.records = h->records;
        (void)arena_release(c, &l);
    }
    (void)io_all(result, &r, sizeof(r), true);
    arena_disconnect(c);
}

int arena_demo_share(const char *socket, size_t scenario_mb)
{
    int g2s[2], s2g[2], go[2], res[2];
    if (pipe(g2s) < 0 || pipe(s2g) < 0 || pipe(go) < 0 || pipe(res) < 0)
        return 1;
    (void)fflush(NULL);
    pid_t sim = fork();
    if (sim == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        simulator(socket, g2s[0], s2g[1], go[0], res[1]);
        _exit(0);
    }
    pid_t gen = fork();
    if (gen == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        _exit(generator(socket, scenario_mb, g2s[1], s2g[0]));
    }
    if (sim < 0 || gen < 0)
        return 1;
    printf("arena-demo --share: the generator writes a %zu MiB scenario into a lease, shares it "
           "(read-only, once), hands the token to the simulator and exits\n",
           scenario_mb);
    int status = 0;
    (void)waitpid(gen, &status, 0);
    bool gen_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    printf("generator pid %ld exited (%s)\n", (long)gen,
           gen_ok ? "status 0, holding its lease to the end" : "FAILED");
    /* The simulator waits for this byte; without it, it sees EOF and fails,
     * which the result below reports. */
    if (write(go[1], "g", 1) != 1)
        printf("could not wake the simulator\n");
    sim_result_t r = {0};
    bool got = io_all(res[0], &r, sizeof(r), false);
    (void)waitpid(sim, &status, 0);
    if (!got || r.err) {
        printf("simulator FAILED: %s\n", got ? arena_strerror(r.err) : "no result");
        printf("RESULT share_ok=0\n");
        return 1;
    }
    printf("simulator pid %ld attached by a %zu-character token, then read %llu records in %.1f "
           "ms after the generator was %s: checksum %s, bytes copied 0\n",
           (long)sim, strlen(r.token), (unsigned long long)r.records, r.read_ms,
           r.generator_gone ? "gone" : "STILL THERE", r.checksum_ok ? "ok" : "WRONG");
    printf("the extent was charged to the simulator once the generator exited, and punched when "
           "the simulator released it\n");
    bool ok = gen_ok && r.generator_gone && r.checksum_ok;
    printf("RESULT share_ok=%d scenario_mb=%zu records=%llu generator_gone=%d checksum_ok=%d "
           "read_ms=%.1f copied_bytes=0\n",
           ok ? 1 : 0, scenario_mb, (unsigned long long)r.records, r.generator_gone, r.checksum_ok,
           r.read_ms);
    return ok ? 0 : 1;
}
