/* SPDX-License-Identifier: MIT
 *
 * soak.c -- a long run of many real client processes against one arenad,
 * to show that nothing leaks and nothing is lost over time.
 *
 * Usage: soak [--minutes M | --seconds S] [--clients N] [--socket PATH]
 *             [--budget SIZE] [--seed N]
 *
 * Starts its own daemon (tests/lib/daemon.h) unless --socket names
 * a running one. N client processes (default 8) each churn, until the time
 * is up: raw leases of random sizes (arena_lease / arena_release, checking
 * that a lease said to be zeroed reads as zero and that the pattern written
 * into it is intact at release), pool allocations of random sizes
 * (arena_malloc / arena_free with the same pattern check, arena_trim now and
 * then), disconnects and reconnects (sometimes with leases still held) and
 * `reclaim` admin calls. The parent SIGKILLs a random client every second or
 * three and starts a replacement, and calls reclaim too.
 *
 * The parent prints the daemon's RSS, fd count and leased bytes at start and
 * end (after every client is gone the daemon must hold no leased bytes), the
 * operation and error counts (an error is any unexpected return code, a
 * data mismatch, a client that crashed -- a signal other than the parent's
 * SIGKILL, a sanitizer's exit code -- or a daemon that did not exit cleanly;
 * a lease or malloc refused for want of memory is counted apart as
 * "refused"), and last one line:
 *   RESULT minutes=... clients=... ops=... daemon_rss_growth_kib=... fd_growth=... errors=...
 * Exit status 0 when errors=0, fd_growth=0 and leased bytes are back to 0,
 * else 1 (2: usage or setup failure).
 *
 * Counters live in a shared anonymous mapping, one slot per client process,
 * written only by that process with relaxed atomics, so a SIGKILLed
 * client's counts survive it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "arena.h"
#include "daemon.h"
#include "proc.h"
#include "sock.h"

#define MAX_CLIENTS 1024
#define MAX_LEASES  6
#define MAX_ALLOCS  64

typedef struct slot_counters {
    _Atomic uint64_t ops;     /* successful operations */
    _Atomic uint64_t errors;  /* unexpected codes and data mismatches */
    _Atomic uint64_t refused; /* ENOMEM / ETIMEDOUT: the budget was full */
    _Atomic uint64_t spawned; /* processes that ran in this slot */
} slot_counters_t;

typedef struct shared {
    _Atomic int stop;
    slot_counters_t slots[MAX_CLIENTS];
} shared_t;

static shared_t *SH;

static uint64_t now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t rnd(uint64_t *s)
{
    /* xorshift64*: fast, seeded per process. */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* ---- the client process ---------------------------------------------------- */

typedef struct held_lease {
    arena_lease_t lease;
    uint8_t tag;
    bool used;
} held_lease_t;

typedef struct held_alloc {
    uint8_t *ptr;
    size_t size;
    uint8_t tag;
} held_alloc_t;

typedef struct client {
    unsigned index;
    slot_counters_t *c;
    uint64_t seed;
    arena_conn_t *conn;
    held_lease_t leases[MAX_LEASES];
    held_alloc_t allocs[MAX_ALLOCS];
} client_t;

static void client_error(client_t *cl, const char *what, int code)
{
    atomic_fetch_add_explicit(&cl->c->errors, 1, memory_order_relaxed);
    (void)fprintf(stderr, "soak: client %u (pid %ld): %s: %d (%s)\n", cl->index, (long)getpid(),
                  what, code, arena_strerror(code));
}

static void client_ok(client_t *cl)
{
    atomic_fetch_add_explicit(&cl->c->ops, 1, memory_order_relaxed);
}

/* Writes the pattern of tag at the start, the end and one middle page. */
static void pattern_write(uint8_t *p, size_t size, uint8_t tag)
{
    size_t n = size < 64 ? size : 64;
    memset(p, tag, n);
    memset(p + size - n, tag ^ 0x5a, n);
    if (size > 8192)
        memset(p + (size / 2 & ~(size_t)4095), (uint8_t)(tag + 1), 64);
}

static bool pattern_ok(const uint8_t *p, size_t size, uint8_t tag)
{
    size_t n = size < 64 ? size : 64;
    for (size_t i = 0; i < n; i++)
        if (p[size - n + i] != (uint8_t)(tag ^ 0x5a))
            return false;
    /* The head may overlap the tail for tiny blocks; check what survives. */
    for (size_t i = 0; i + n < size && i < n; i++)
        if (p[i] != tag)
            return false;
    if (size > 8192) {
        const uint8_t *m = p + (size / 2 & ~(size_t)4095);
        for (size_t i = 0; i < 64; i++)
            if (m[i] != (uint8_t)(tag + 1))
                return false;
    }
    return true;
}

static bool lease_code_expected(int r)
{
    return r == -ENOMEM || r == -ETIMEDOUT;
}

static void client_lease(client_t *cl)
{
    held_lease_t *h = &cl->leases[rnd(&cl->seed) % MAX_LEASES];
    if (h->used) {
        if (!pattern_ok(h->lease.addr, h->lease.size, h->tag))
            client_error(cl, "lease data mismatch", 0);
        int r = arena_release(cl->conn, &h->lease);
        if (r < 0)
            client_error(cl, "arena_release", r);
        else
            client_ok(cl);
        h->used = false;
        return;
    }
    uint64_t k = rnd(&cl->seed) % 100;
    size_t size;
    if (k < 70)
        size = 4096 + rnd(&cl->seed) % (1u << 20);
    else if (k < 95)
        size = 4096 + rnd(&cl->seed) % (4u << 20);
    else
        size = 4096 + rnd(&cl->seed) % (16u << 20);
    int r = arena_lease(cl->conn, size, (int)(rnd(&cl->seed) % 50), &h->lease);
    if (r < 0) {
        if (lease_code_expected(r))
            atomic_fetch_add_explicit(&cl->c->refused, 1, memory_order_relaxed);
        else
            client_error(cl, "arena_lease", r);
        return;
    }
    if (h->lease.size < size) {
        client_error(cl, "lease smaller than asked", 0);
        (void)arena_release(cl->conn, &h->lease);
        return;
    }
    /* Memory said to be zero must be zero (a lease that changed owner is
     * always punched first). */
    if (h->lease.zeroed) {
        const uint8_t *p = h->lease.addr;
        size_t n = h->lease.size < 4096 ? h->lease.size : 4096;
        for (size_t i = 0; i < n; i++)
            if (p[i] != 0) {
                client_error(cl, "zeroed lease not zero", 0);
                break;
            }
    }
    h->tag = (uint8_t)rnd(&cl->seed);
    pattern_write(h->lease.addr, h->lease.size, h->tag);
    h->used = true;
    client_ok(cl);
}

static void client_pool(client_t *cl)
{
    held_alloc_t *a = &cl->allocs[rnd(&cl->seed) % MAX_ALLOCS];
    if (a->ptr) {
        if (!pattern_ok(a->ptr, a->size, a->tag))
            client_error(cl, "malloc data mismatch", 0);
        arena_free(a->ptr);
        a->ptr = NULL;
        client_ok(cl);
        return;
    }
    uint64_t k = rnd(&cl->seed) % 100;
    size_t size = k < 80   ? 1 + rnd(&cl->seed) % 1024
                  : k < 98 ? 1 + rnd(&cl->seed) % 65536
                           : 1 + rnd(&cl->seed) % (1u << 20);
    a->ptr = arena_malloc(size);
    if (!a->ptr) {
        if (errno == ENOMEM)
            atomic_fetch_add_explicit(&cl->c->refused, 1, memory_order_relaxed);
        else
            client_error(cl, "arena_malloc", -errno);
        return;
    }
    if (arena_usable_size(a->ptr) < size)
        client_error(cl, "arena_usable_size below the size asked", 0);
    a->size = size;
    a->tag = (uint8_t)rnd(&cl->seed);
    pattern_write(a->ptr, size, a->tag);
    client_ok(cl);
}

static void client_reconnect(client_t *cl)
{
    bool keep = rnd(&cl->seed) % 2 == 0;
    for (int i = 0; i < MAX_LEASES; i++) {
        held_lease_t *h = &cl->leases[i];
        if (!h->used)
            continue;
        if (!pattern_ok(h->lease.addr, h->lease.size, h->tag))
            client_error(cl, "lease data mismatch", 0);
        /* Half the time the leases stay held: disconnect gives them back. */
        if (!keep) {
            int r = arena_release(cl->conn, &h->lease);
            if (r < 0)
                client_error(cl, "arena_release", r);
        }
        h->used = false;
    }
    arena_disconnect(cl->conn);
    cl->conn = NULL;
    int r = arena_connect(NULL, &cl->conn);
    if (r < 0) {
        client_error(cl, "arena_connect", r);
        cl->conn = NULL;
        return;
    }
    client_ok(cl);
}

static void client_reclaim(client_t *cl)
{
    uint64_t got = 0;
    uint64_t bytes = rnd(&cl->seed) % 2 ? 0 : rnd(&cl->seed) % (64u << 20);
    int r = arena__admin_reclaim(cl->conn, bytes, 0, &got);
    if (r < 0)
        client_error(cl, "reclaim", r);
    else
        client_ok(cl);
}

static void client_trim(client_t *cl)
{
    long long r = arena_trim();
    if (r < 0)
        client_error(cl, "arena_trim", (int)r);
    else
        client_ok(cl);
}

static int client_main(unsigned index, uint64_t seed, uint64_t deadline)
{
    client_t cl;
    memset(&cl, 0, sizeof(cl));
    cl.index = index;
    cl.c = &SH->slots[index];
    cl.seed = seed | 1;
    /* The soak's parent may die without killing us. */
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    int r = arena_connect(NULL, &cl.conn);
    if (r < 0) {
        client_error(&cl, "arena_connect", r);
        return 1;
    }
    while (now_ms() < deadline && !atomic_load_explicit(&SH->stop, memory_order_relaxed)) {
        if (!cl.conn) {
            client_reconnect(&cl);
            continue;
        }
        uint64_t k = rnd(&cl.seed) % 1000;
        if (k < 450)
            client_lease(&cl);
        else if (k < 940)
            client_pool(&cl);
        else if (k < 960)
            client_trim(&cl);
        else if (k < 990)
            client_reconnect(&cl);
        else
            client_reclaim(&cl);
    }
    /* An orderly end: check and give everything back. */
    for (int i = 0; i < MAX_ALLOCS; i++)
        if (cl.allocs[i].ptr) {
            if (!pattern_ok(cl.allocs[i].ptr, cl.allocs[i].size, cl.allocs[i].tag))
                client_error(&cl, "malloc data mismatch", 0);
            arena_free(cl.allocs[i].ptr);
        }
    for (int i = 0; i < MAX_LEASES; i++)
        if (cl.leases[i].used && cl.conn) {
            if (!pattern_ok(cl.leases[i].lease.addr, cl.leases[i].lease.size, cl.leases[i].tag))
                client_error(&cl, "lease data mismatch", 0);
            r = arena_release(cl.conn, &cl.leases[i].lease);
            if (r < 0)
                client_error(&cl, "arena_release", r);
        }
    arena_disconnect(cl.conn);
    return 0;
}

/* ---- the parent -------------------------------------------------------------- */

typedef struct daemon_sample {
    long rss_kib;
    int fds;
    uint64_t leased;
    uint32_t clients;
} daemon_sample_t;

static int sample(arena_conn_t *mon, pid_t dpid, daemon_sample_t *ret)
{
    arena__admin_status_t st;
    int r = arena__admin_status(mon, &st);
    if (r < 0)
        return r;
    ret->rss_kib = arena_test_rss_kib(dpid);
    ret->fds = arena_test_count_fds(dpid);
    ret->leased = st.leased_bytes;
    ret->clients = st.clients;
    return 0;
}

/* A sample once the daemon's fd count stops changing: connections that
 * closed just before (the fixture's start-up probe) must be fully gone. */
static int sample_stable(arena_conn_t *mon, pid_t dpid, daemon_sample_t *ret)
{
    daemon_sample_t s;
    int last = -1, same = 0;
    for (int i = 0; i < 200 && same < 3; i++) {
        int r = sample(mon, dpid, &s);
        if (r < 0)
            return r;
        same = s.fds == last ? same + 1 : 0;
        last = s.fds;
        (void)usleep(20000);
    }
    *ret = s;
    return 0;
}

/* The pid of the daemon behind path (SO_PEERCRED), or -errno. */
static pid_t daemon_pid_of(const char *path)
{
    int fd = arena_test_unix_socket(path, SOCK_STREAM, ARENA_TEST_SOCK_CONNECT);
    if (fd < 0)
        return fd;
    struct ucred cred;
    socklen_t len = sizeof(cred);
    int r = 0;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        r = -errno;
    (void)close(fd);
    return r < 0 ? r : cred.pid;
}

/* Whether a reaped client crashed: a client ends with 0, or 1 when it could
 * not connect (already counted as its own error); anything else -- a signal
 * other than the parent's own SIGKILL, a sanitizer's exit code -- is a crash
 * the client could not count itself. Says which on stderr. */
static bool client_crashed(unsigned index, int status, bool killed_by_parent)
{
    if (WIFEXITED(status) && (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 1))
        return false;
    if (killed_by_parent && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        return false;
    if (WIFSIGNALED(status))
        (void)fprintf(stderr, "soak: client %u crashed: signal %d\n", index, WTERMSIG(status));
    else
        (void)fprintf(stderr, "soak: client %u crashed: exit %d\n", index, WEXITSTATUS(status));
    return true;
}

static pid_t spawn_client(unsigned index, uint64_t seed, uint64_t deadline)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(client_main(index, seed, deadline));
    if (pid > 0)
        atomic_fetch_add_explicit(&SH->slots[index].spawned, 1, memory_order_relaxed);
    return pid;
}

static void usage(void)
{
    (void)fprintf(stderr, "usage: soak [--minutes M | --seconds S] [--clients N] [--socket PATH]\n"
                          "            [--budget SIZE] [--seed N]\n");
}

int main(int argc, char **argv)
{
    double seconds = 60;
    unsigned nclients = 8;
    const char *socket_path = NULL;
    const char *budget = "4G";
    uint64_t seed = (uint64_t)time(NULL);
    /* Every option takes a value: flags and values come in pairs. */
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            usage();
            return 2;
        }
        if (strcmp(a, "--minutes") == 0)
            seconds = strtod(v, NULL) * 60;
        else if (strcmp(a, "--seconds") == 0)
            seconds = strtod(v, NULL);
        else if (strcmp(a, "--clients") == 0)
            nclients = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--socket") == 0)
            socket_path = v;
        else if (strcmp(a, "--budget") == 0)
            budget = v;
        else if (strcmp(a, "--seed") == 0)
            seed = strtoull(v, NULL, 0);
        else {
            usage();
            return 2;
        }
    }
    if (nclients == 0 || nclients > MAX_CLIENTS || seconds <= 0) {
        usage();
        return 2;
    }
    (void)setvbuf(stdout, NULL, _IOLBF, 0);
    SH = mmap(NULL, sizeof(*SH), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (SH == MAP_FAILED) {
        perror("soak: mmap");
        return 2;
    }
    arena_test_daemon_t d;
    memset(&d, 0, sizeof(d));
    if (!socket_path) {
        const char *const args[] = {"--budget", budget, NULL};
        int r = arena_test_daemon_start(&d, NULL, args);
        if (r < 0) {
            (void)fprintf(stderr, "soak: cannot start arenad: %s\n", strerror(-r));
            return 2;
        }
        socket_path = d.socket;
    }
    int rc = 2;
    pid_t dpid = daemon_pid_of(socket_path);
    arena_conn_t *mon = NULL;
    pid_t *pids = calloc(nclients, sizeof(*pids));
    if (dpid < 0 || !pids) {
        (void)fprintf(stderr, "soak: no daemon at %s\n", socket_path);
        goto out;
    }
    if (setenv("ARENAD_SOCKET", socket_path, 1) < 0)
        goto out;
    int r = arena_connect(socket_path, &mon);
    if (r < 0) {
        (void)fprintf(stderr, "soak: arena_connect: %s\n", arena_strerror(r));
        goto out;
    }
    /* Baseline with the monitor connected (its pool exists from here on). */
    daemon_sample_t s0;
    if (sample_stable(mon, dpid, &s0) < 0)
        goto out;
    printf("soak: daemon pid %ld at %s; %u clients for %.0f s, seed %" PRIu64 "\n", (long)dpid,
           socket_path, nclients, seconds, seed);
    printf("start: daemon rss_kib=%ld fds=%d leased_bytes=%" PRIu64 " clients=%" PRIu32 "\n",
           s0.rss_kib, s0.fds, s0.leased, s0.clients);

    uint64_t t0 = now_ms();
    uint64_t deadline = t0 + (uint64_t)(seconds * 1000);
    uint64_t pseed = seed * 0x9E3779B97F4A7C15ull + 1;
    for (unsigned i = 0; i < nclients; i++)
        pids[i] = spawn_client(i, rnd(&pseed), deadline);
    uint64_t kills = 0, reclaims = 0, parent_errors = 0, peak_leased = 0, crashes = 0;
    uint64_t next_report = t0 + 60000;
    while (now_ms() + 1000 < deadline) {
        /* Every 1-3 s: one client SIGKILLed at whatever it was doing. */
        (void)usleep((useconds_t)(1000000 + rnd(&pseed) % 2000000));
        if (now_ms() + 500 >= deadline)
            break;
        unsigned victim = (unsigned)(rnd(&pseed) % nclients);
        if (pids[victim] > 0) {
            (void)kill(pids[victim], SIGKILL);
            int status = 0;
            if (waitpid(pids[victim], &status, 0) == pids[victim] &&
                client_crashed(victim, status, true))
                crashes++;
            kills++;
        }
        pids[victim] = spawn_client(victim, rnd(&pseed), deadline);
        /* Reap clients that ended on their own (e.g. failed to connect). */
        for (unsigned i = 0; i < nclients; i++) {
            int status;
            if (pids[i] > 0 && waitpid(pids[i], &status, WNOHANG) == pids[i]) {
                if (client_crashed(i, status, false))
                    crashes++;
                pids[i] = spawn_client(i, rnd(&pseed), deadline);
            }
        }
        uint64_t got;
        r = arena__admin_reclaim(mon, 0, 0, &got);
        if (r < 0) {
            (void)fprintf(stderr, "soak: parent reclaim: %s\n", arena_strerror(r));
            parent_errors++;
        } else
            reclaims++;
        daemon_sample_t s;
        if (sample(mon, dpid, &s) == 0 && s.leased > peak_leased)
            peak_leased = s.leased;
        if (now_ms() >= next_report) {
            next_report += 60000;
            uint64_t ops = 0;
            for (unsigned i = 0; i < nclients; i++)
                ops += atomic_load(&SH->slots[i].ops);
            printf("t=%" PRIu64 "s: ops=%" PRIu64 " kills=%" PRIu64 " daemon rss_kib=%ld fds=%d "
                   "leased_bytes=%" PRIu64 "\n",
                   (now_ms() - t0) / 1000, ops, kills, s.rss_kib, s.fds, s.leased);
        }
    }
    /* Let the clients finish and give back what they hold; kill stragglers. */
    atomic_store(&SH->stop, 1);
    uint64_t wait_until = now_ms() + 30000;
    for (unsigned i = 0; i < nclients; i++) {
        bool killed = false;
        while (pids[i] > 0) {
            int status;
            pid_t w = waitpid(pids[i], &status, WNOHANG);
            if (w == pids[i] && client_crashed(i, status, killed))
                crashes++;
            if (w == pids[i] || (w < 0 && errno == ECHILD)) {
                pids[i] = 0;
                break;
            }
            if (now_ms() > wait_until) {
                (void)fprintf(stderr, "soak: client %u did not finish; killing it\n", i);
                (void)kill(pids[i], SIGKILL);
                killed = true;
            }
            (void)usleep(10000);
        }
    }
    /* The daemon notices the last disconnects asynchronously. */
    daemon_sample_t s1;
    memset(&s1, 0, sizeof(s1));
    for (int i = 0; i < 500; i++) {
        if (sample(mon, dpid, &s1) < 0) {
            parent_errors++;
            break;
        }
        if (s1.leased == 0 && s1.clients == s0.clients && s1.fds <= s0.fds)
            break;
        (void)usleep(20000);
    }
    double minutes = (double)(now_ms() - t0) / 60000.0;
    uint64_t ops = 0, errors = parent_errors + crashes, refused = 0, spawned = 0;
    for (unsigned i = 0; i < nclients; i++) {
        ops += atomic_load(&SH->slots[i].ops);
        errors += atomic_load(&SH->slots[i].errors);
        refused += atomic_load(&SH->slots[i].refused);
        spawned += atomic_load(&SH->slots[i].spawned);
    }
    ops += reclaims;
    printf("end:   daemon rss_kib=%ld fds=%d leased_bytes=%" PRIu64 " clients=%" PRIu32 "\n",
           s1.rss_kib, s1.fds, s1.leased, s1.clients);
    printf("client processes %" PRIu64 ", SIGKILLed %" PRIu64 ", parent reclaims %" PRIu64
           ", refused (no memory) %" PRIu64 ", peak leased %" PRIu64 " MiB, crashed %" PRIu64 "\n",
           spawned, kills, reclaims, refused, peak_leased >> 20, crashes);
    if (s1.leased != 0) {
        (void)fprintf(stderr, "soak: the daemon still holds %" PRIu64 " leased bytes\n", s1.leased);
        errors++;
    }
    long rss_growth = s1.rss_kib - s0.rss_kib;
    int fd_growth = s1.fds - s0.fds;
    printf("RESULT minutes=%.2f clients=%u ops=%" PRIu64 " daemon_rss_growth_kib=%ld fd_growth=%d "
           "errors=%" PRIu64 "\n",
           minutes, nclients, ops, rss_growth, fd_growth, errors);
    rc = errors == 0 && fd_growth == 0 ? 0 : 1;
out:
    arena_disconnect(mon);
    for (unsigned i = 0; pids && i < nclients; i++)
        if (pids[i] > 0) {
            (void)kill(pids[i], SIGKILL);
            (void)waitpid(pids[i], NULL, 0);
        }
    free(pids);
    if (d.pid > 0) {
        /* A daemon that crashed or reported to a sanitizer at exit (23)
         * fails the soak too. */
        int status = arena_test_daemon_stop(&d);
        if (status != 0) {
            (void)fprintf(stderr, "soak: arenad did not exit cleanly: %d\n", status);
            if (rc == 0)
                rc = 1;
        }
    }
    return rc;
}
