/* SPDX-License-Identifier: MIT
 *
 * bench_share.c -- what handing memory to another process costs: sharing a
 * lease by token (arena_share + arena_attach) next to the two ways of doing
 * it by hand, in one run on one machine.
 *
 *   bench-share [--quick] [--rounds N]
 *
 * Starts its own arenad on a temporary socket (tests/lib's daemon.c) and
 * a consumer process that it drives over a socketpair. Measures:
 *   - latency: one lease round trip (arena_lease of 64 KiB) as the yardstick,
 *     and share + attach of a 64 MiB lease: arena_share in the owner, the
 *     token sent to the consumer, arena_attach there (its time reported
 *     back and added; the token's trip is not counted), N rounds;
 *   - hand-off of 64 MiB and 1 GiB whose bytes the producer has written,
 *     until the consumer has read every byte once (first touch): by token
 *     (share, token over the socket, attach, read), through a pipe (write,
 *     read into fresh memory, read), and by memfd + SCM_RIGHTS done by hand
 *     (send the fd, mmap, read). Clocks are CLOCK_MONOTONIC in both
 *     processes, so a row is start in the producer to end in the consumer.
 * --quick (for CI) runs fewer rounds and uses 256 MiB for the large row
 * (the RESULT line says large_mib). Prints a table and, last, one RESULT
 * line. A program, not a test: it asserts nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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
#include "bench_stats.h"
#include "daemon.h"
#include "fdpass.h"

#define MiB ((size_t)1 << 20)

static arena_test_daemon_t bench_daemon;

static void stop_daemon(void)
{
    if (bench_daemon.pid > 0)
        (void)arena_test_daemon_stop(&bench_daemon);
}

static void on_signal(int sig)
{
    (void)sig;
    _exit(1); /* the daemon dies with us (PR_SET_PDEATHSIG in tests/lib/daemon.c) */
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the consumer ------------------------------------------------------------------------ */

typedef struct cmd {
    char op; /* 'A' attach+release, 'R' attach+read, 'P' pipe, 'M' memfd, 'Q' quit */
    uint64_t size;
    char token[ARENA_TOKEN_SIZE];
} cmd_t;

typedef struct answer {
    int err;
    uint64_t attach_ns; /* 'A': the attach call alone */
    uint64_t end_ns;    /* when every byte was read */
    uint64_t sum;
} answer_t;

/* Reads every byte once (as 64-bit words). */
static uint64_t read_all(const void *p, size_t n)
{
    const volatile uint64_t *w = p;
    uint64_t s = 0;
    for (size_t i = 0; i < n / 8; i++)
        s += w[i];
    return s;
}

static bool full_read(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

static bool full_write(int fd, const void *buf, size_t n)
{
    size_t put = 0;
    while (put < n) {
        ssize_t r = write(fd, (const char *)buf + put, n - put);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        put += (size_t)r;
    }
    return true;
}

static void consumer_main(int sock, int pipe_rd)
{
    arena_conn_t *conn = NULL;
    if (arena_connect(bench_daemon.socket, &conn) < 0)
        _exit(2);
    for (;;) {
        cmd_t c;
        int fds[1] = {-1};
        ssize_t n = arena__recv_with_fds(sock, &c, sizeof(c), fds, 1, MSG_WAITALL);
        if (n != (ssize_t)sizeof(c) || c.op == 'Q')
            _exit(0);
        answer_t a = {0};
        arena_lease_t l;
        switch (c.op) {
        case 'A': {
            uint64_t t0 = now_ns();
            a.err = arena_attach(conn, c.token, &l);
            a.attach_ns = now_ns() - t0;
            if (a.err == 0)
                (void)arena_release(conn, &l);
            break;
        }
        case 'R':
            a.err = arena_attach(conn, c.token, &l);
            if (a.err == 0) {
                a.sum = read_all(l.addr, c.size);
                a.end_ns = now_ns();
                (void)arena_release(conn, &l);
            }
            break;
        case 'P': {
            void *buf =
                mmap(NULL, c.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (buf == MAP_FAILED || !full_read(pipe_rd, buf, c.size)) {
                a.err = -EIO;
                break;
            }
            a.sum = read_all(buf, c.size);
            a.end_ns = now_ns();
            (void)munmap(buf, c.size);
            break;
        }
        case 'M': {
            void *p =
                fds[0] >= 0 ? mmap(NULL, c.size, PROT_READ, MAP_SHARED, fds[0], 0) : MAP_FAILED;
            if (p == MAP_FAILED) {
                a.err = -EIO;
                break;
            }
            a.sum = read_all(p, c.size);
            a.end_ns = now_ns();
            (void)munmap(p, c.size);
            break;
        }
        default:
            a.err = -EINVAL;
        }
        if (fds[0] >= 0)
            (void)close(fds[0]);
        if (write(sock, &a, sizeof(a)) != (ssize_t)sizeof(a))
            _exit(3);
    }
}

typedef struct consumer {
    pid_t pid;
    int sock;
    int pipe_wr;
} consumer_t;

static int consumer_start(consumer_t *c)
{
    int sv[2], pp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 || pipe2(pp, O_CLOEXEC) < 0)
        return -errno;
    (void)fcntl(pp[1], F_SETPIPE_SZ, (int)MiB); /* the best case for the pipe */
    pid_t parent = getpid();
    (void)fflush(NULL);
    c->pid = fork();
    if (c->pid < 0)
        return -errno;
    if (c->pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
            _exit(1);
        (void)close(sv[0]);
        (void)close(pp[1]);
        consumer_main(sv[1], pp[0]);
        _exit(0);
    }
    (void)close(sv[1]);
    (void)close(pp[0]);
    c->sock = sv[0];
    c->pipe_wr = pp[1];
    return 0;
}

static int consumer_ask(const consumer_t *c, const cmd_t *cmd, int fd, answer_t *ret)
{
    if (arena__send_with_fd(c->sock, cmd, sizeof(*cmd), fd, NULL, 0, 0) != (ssize_t)sizeof(*cmd))
        return -EIO;
    return full_read(c->sock, ret, sizeof(*ret)) ? 0 : -EIO;
}

/* Sends a command without waiting (the pipe row writes while it reads). */
static int consumer_tell(const consumer_t *c, const cmd_t *cmd)
{
    return arena__send_with_fd(c->sock, cmd, sizeof(*cmd), -1, NULL, 0, 0) == (ssize_t)sizeof(*cmd)
               ? 0
               : -EIO;
}

/* ---- the rows ------------------------------------------------------------------------------ */

static void fill(void *p, size_t n)
{
    uint64_t *w = p;
    for (size_t i = 0; i < n / 8; i++)
        w[i] = i * 0x9e3779b97f4a7c15ull;
}

/* Times rounds shares of big, each attached by the consumer and then
 * unshared (after rounds / 10 untimed ones): arena_share(), or with
 * read_only_uid a read-only arena_share_uid() for our own uid. Fills us[]
 * with the share time plus the consumer's attach time, sorted. Returns 0,
 * or -1 when a call fails. */
static int time_share_attach(arena_conn_t *conn, const consumer_t *cons, const arena_lease_t *big,
                             bool read_only_uid, long rounds, double *us)
{
    for (long i = -rounds / 10; i < rounds; i++) {
        cmd_t c = {.op = 'A', .size = big->size};
        answer_t a;
        double t0 = bench_now_us();
        int r = read_only_uid
                    ? arena_share_uid(conn, big, ARENA_SHARE_READONLY, (unsigned)getuid(), c.token)
                    : arena_share(conn, big, 0, c.token);
        if (r < 0)
            return -1;
        double t1 = bench_now_us();
        if (consumer_ask(cons, &c, -1, &a) < 0 || a.err) {
            (void)fprintf(stderr, "bench-share: attach failed: %s\n", arena_strerror(a.err));
            return -1;
        }
        (void)arena_unshare(conn, c.token);
        if (i >= 0)
            us[i] = (t1 - t0) + (double)a.attach_ns / 1e3;
    }
    bench_sort(us, (size_t)rounds);
    return 0;
}

typedef struct handoff {
    double token_ms, pipe_ms, memfd_ms;
    bool ok;
} handoff_t;

static handoff_t handoff(arena_conn_t *conn, const consumer_t *cons, size_t size)
{
    handoff_t h = {.ok = false};
    arena_lease_t l;
    if (arena_lease(conn, size, 0, &l) < 0)
        return h;
    fill(l.addr, size);
    uint64_t want = read_all(l.addr, size);
    cmd_t c = {.op = 'R', .size = size};
    answer_t a;

    uint64_t t0 = now_ns();
    if (arena_share(conn, &l, ARENA_SHARE_READONLY | ARENA_SHARE_ONCE, c.token) < 0 ||
        consumer_ask(cons, &c, -1, &a) < 0 || a.err || a.sum != want)
        goto out;
    h.token_ms = (double)(a.end_ns - t0) / 1e6;

    c.op = 'P';
    t0 = now_ns();
    if (consumer_tell(cons, &c) < 0 || !full_write(cons->pipe_wr, l.addr, size) ||
        !full_read(cons->sock, &a, sizeof(a)) || a.err || a.sum != want)
        goto out;
    h.pipe_ms = (double)(a.end_ns - t0) / 1e6;

    int fd = memfd_create("bench-share", MFD_CLOEXEC);
    void *p = MAP_FAILED;
    if (fd >= 0 && ftruncate(fd, (off_t)size) == 0)
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p != MAP_FAILED) {
        memcpy(p, l.addr, size); /* written before the clock starts, like the lease */
        c.op = 'M';
        t0 = now_ns();
        if (consumer_ask(cons, &c, fd, &a) == 0 && !a.err && a.sum == want) {
            h.memfd_ms = (double)(a.end_ns - t0) / 1e6;
            h.ok = true;
        }
        (void)munmap(p, size);
    }
    if (fd >= 0)
        (void)close(fd);
out:
    (void)arena_release(conn, &l);
    return h;
}

static void usage(FILE *f)
{
    (void)fprintf(f, "usage: bench-share [--quick] [--rounds N]\n");
}

int main(int argc, char **argv)
{
    bool quick = false;
    long rounds = 2000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = true;
            rounds = 200;
        } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            rounds = atol(argv[++i]);
            if (rounds < 10 || rounds > 1000000) {
                (void)fprintf(stderr, "bench-share: --rounds must be 10..1000000\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    size_t large = quick ? 256 * MiB : 1024 * MiB;

    (void)signal(SIGPIPE, SIG_IGN);
    const char *const args[] = {"--budget", "3G", NULL};
    int r = arena_test_daemon_start(&bench_daemon, NULL, args);
    if (r < 0) {
        (void)fprintf(stderr, "bench-share: cannot start arenad: %s\n", arena_strerror(r));
        return 1;
    }
    (void)atexit(stop_daemon);
    (void)signal(SIGINT, on_signal);
    (void)signal(SIGTERM, on_signal);
    arena_conn_t *conn = NULL;
    consumer_t cons;
    if ((r = arena_connect(bench_daemon.socket, &conn)) < 0 || (r = consumer_start(&cons)) < 0) {
        (void)fprintf(stderr, "bench-share: %s\n", arena_strerror(r));
        return 1;
    }

    /* The yardstick: one lease round trip (64 KiB). */
    double *lease_us = calloc((size_t)rounds, sizeof(double));
    double *share_us = calloc((size_t)rounds, sizeof(double));
    if (!lease_us || !share_us)
        return 1;
    for (long i = -rounds / 10; i < rounds; i++) {
        arena_lease_t l;
        double t0 = bench_now_us();
        if (arena_lease(conn, 64 * 1024, 0, &l) < 0)
            return 1;
        double t1 = bench_now_us();
        (void)arena_release(conn, &l);
        if (i >= 0)
            lease_us[i] = t1 - t0;
    }
    bench_sort(lease_us, (size_t)rounds);

    /* share + attach of a 64 MiB lease the owner holds. */
    arena_lease_t big;
    if (arena_lease(conn, 64 * MiB, 0, &big) < 0)
        return 1;
    fill(big.addr, big.size);
    if (time_share_attach(conn, &cons, &big, false, rounds, share_us) < 0)
        return 1;
    (void)arena_release(conn, &big);

    /* What a lease that may cross uids costs: memory of its own (a memfd
     * made, sized, sealed and sent per lease), and share + a read-only
     * attach of it (a read-only descriptor sent, mapped by the attacher). */
    double *own_us = calloc((size_t)rounds, sizeof(double));
    double *own_share_us = calloc((size_t)rounds, sizeof(double));
    if (!own_us || !own_share_us)
        return 1;
    for (long i = -rounds / 10; i < rounds; i++) {
        arena_lease_t l;
        double t0 = bench_now_us();
        if (arena_lease_flags(conn, 64 * 1024, 0, ARENA_LEASE_OWN_MEMORY, &l) < 0)
            return 1;
        double t1 = bench_now_us();
        (void)arena_release(conn, &l);
        if (i >= 0)
            own_us[i] = t1 - t0;
    }
    bench_sort(own_us, (size_t)rounds);
    if (arena_lease_flags(conn, 64 * MiB, 0, ARENA_LEASE_OWN_MEMORY, &big) < 0)
        return 1;
    fill(big.addr, big.size);
    if (time_share_attach(conn, &cons, &big, true, rounds, own_share_us) < 0)
        return 1;
    (void)arena_release(conn, &big);

    handoff_t small = handoff(conn, &cons, 64 * MiB);
    handoff_t big_h = handoff(conn, &cons, large);
    cmd_t q = {.op = 'Q'};
    (void)consumer_tell(&cons, &q);
    (void)waitpid(cons.pid, NULL, 0);
    arena_disconnect(conn);
    if (!small.ok || !big_h.ok) {
        (void)fprintf(stderr, "bench-share: a hand-off failed\n");
        return 1;
    }

    double lp50 = bench_pct(lease_us, (size_t)rounds, 0.50);
    double lp99 = bench_pct(lease_us, (size_t)rounds, 0.99);
    double sp50 = bench_pct(share_us, (size_t)rounds, 0.50);
    double sp99 = bench_pct(share_us, (size_t)rounds, 0.99);
    (void)printf("bench-share: %ld rounds%s, %ld CPUs\n", rounds, quick ? " (quick)" : "",
                 sysconf(_SC_NPROCESSORS_ONLN));
    (void)printf("%-44s %10s %10s\n", "latency", "p50 us", "p99 us");
    (void)printf("%-44s %10.1f %10.1f\n", "lease round trip (64 KiB)", lp50, lp99);
    (void)printf("%-44s %10.1f %10.1f\n", "share + attach (64 MiB, other process)", sp50, sp99);
    (void)printf("%-44s %10.2f\n", "share+attach p50 / lease p50", sp50 / lp50);
    double op50 = bench_pct(own_us, (size_t)rounds, 0.50);
    double osp50 = bench_pct(own_share_us, (size_t)rounds, 0.50);
    (void)printf("%-44s %10.1f %10.1f\n", "lease, own memory (64 KiB)", op50,
                 bench_pct(own_us, (size_t)rounds, 0.99));
    (void)printf("%-44s %10.1f %10.1f\n", "share + attach, own memory, read-only fd", osp50,
                 bench_pct(own_share_us, (size_t)rounds, 0.99));
    (void)printf("\n%-44s %10s %10s %10s\n", "hand-off, first-touch read (ms)", "token", "pipe",
                 "memfd+fd");
    (void)printf("%-44s %10.1f %10.1f %10.1f\n", "64 MiB", small.token_ms, small.pipe_ms,
                 small.memfd_ms);
    char label[64];
    (void)snprintf(label, sizeof(label), "%zu MiB", large / MiB);
    (void)printf("%-44s %10.1f %10.1f %10.1f\n", label, big_h.token_ms, big_h.pipe_ms,
                 big_h.memfd_ms);
    (void)printf("%-44s %10.0f %10.0f %10.0f\n", "  MB/s", (double)large / 1e3 / big_h.token_ms,
                 (double)large / 1e3 / big_h.pipe_ms, (double)large / 1e3 / big_h.memfd_ms);
    (void)printf("RESULT share_attach_p50_us=%.1f share_attach_p99_us=%.1f pipe_copy_1g_ms=%.1f "
                 "attach_read_1g_ms=%.1f memfd_read_1g_ms=%.1f large_mib=%zu lease_p50_us=%.1f "
                 "pipe_copy_64m_ms=%.1f attach_read_64m_ms=%.1f memfd_read_64m_ms=%.1f "
                 "own_lease_p50_us=%.1f own_share_attach_p50_us=%.1f\n",
                 sp50, sp99, big_h.pipe_ms, big_h.token_ms, big_h.memfd_ms, large / MiB, lp50,
                 small.pipe_ms, small.token_ms, small.memfd_ms, op50, osp50);
    free(lease_us);
    free(share_us);
    free(own_us);
    free(own_share_us);
    return 0;
}
