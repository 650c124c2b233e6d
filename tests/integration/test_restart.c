/* SPDX-License-Identifier: MIT
 *
 * test_restart.c -- the daemon dies and comes back; the clients' data does
 * not notice (DESIGN.md section 7).
 *
 * Real processes throughout: a real arenad started by tests/lib's fixture, killed
 * with SIGKILL and started again on the same socket; clients are forked
 * children linking libarena-client, each holding leases full of a pattern
 * only it writes. After the restart every child checks its pattern, makes a
 * call (which reconnects, hands the pool back and claims its leases), checks
 * again and takes a new lease; the test then reads the new daemon's books:
 * every live lease is listed once, none overlaps another, the leased bytes
 * add up, and the space of a client that died while the daemon was down is
 * free after the grace period. The hostile half speaks raw frames: forged,
 * overlapping, misaligned and late claims, fds that are no pool, and (as
 * root) another uid handing back this uid's pool. The last part plays the
 * service manager: it hands arenad a listening socket, collects the fds it
 * stores with FDSTORE=1, and hands them back with LISTEN_FDS/LISTEN_FDNAMES
 * to the daemon it starts after killing the first. There the ledger names
 * each lease's process: a client that died while the daemon was down is
 * free at once, and living clients that do not call during the grace
 * period keep their leases and claim them late.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check_main.h"
#include "admin.h"
#include "arena.h"
#include "conn.h"
#include "fdpass.h"
#include "fixture.h"
#include "peer.h"
#include "proc.h"
#include "sock.h"
#include "conn.h"
#include "wire.h"

#define GRACE_MS   2500
#define CHILDREN   3
#define KIB        ((size_t)1024)
#define MIB        ((size_t)1024 * 1024)
#define WAIT_MS    20000
#define SLEEP_STEP 20

static const size_t lease_sizes[] = {64 * KIB, 1 * MIB, 4 * MIB + 8 * KIB};
#define NLEASES (sizeof(lease_sizes) / sizeof(lease_sizes[0]))

static arena_test_daemon_t daemon_;
static char config_path[64];

/* ---- helpers ---------------------------------------------------------------- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The daemon goes when the test goes, whatever happens to the test. */
static int prctl_pdeathsig(void)
{
    return prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static void nap_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* The daemon's arguments: a small budget. */
static const char *const *daemon_args(void)
{
    static const char *const args[] = {"--budget", "96M", NULL};
    return args;
}

/* The config every daemon here reads: the grace period under test, and
 * pages punched at once so resident bytes tell what is held. */
static const char *restart_config(void)
{
    static char text[128];
    (void)snprintf(text, sizeof(text), "restart_grace_ms = %d\ndecay_ms = 0\n", GRACE_MS);
    return text;
}

/* The same config as a file, for the daemon the service manager below
 * starts itself. */
static void write_config(void)
{
    (void)snprintf(config_path, sizeof(config_path), "/tmp/arenad-restart-XXXXXX");
    int fd = mkstemp(config_path);
    ck_assert_int_ge(fd, 0);
    const char *text = restart_config();
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    (void)close(fd);
}

static void setup(void)
{
    arena_test_fixture_setup();
    ck_assert_int_eq(setenv("ARENA_RECONNECT_MS", "15000", 1), 0);
}

/* The pattern word of child `who`, lease k, at word i. */
static uint64_t pattern(int who, size_t k, size_t i)
{
    return ((uint64_t)(who + 1) << 56) ^ ((uint64_t)(k + 1) << 48) ^ (i * 0x9E3779B97F4A7C15ull);
}

static void fill(void *addr, size_t size, int who, size_t k)
{
    uint64_t *w = addr;
    for (size_t i = 0; i < size / 8; i++)
        w[i] = pattern(who, k, i);
}

static bool intact(const void *addr, size_t size, int who, size_t k)
{
    const uint64_t *w = addr;
    for (size_t i = 0; i < size / 8; i++)
        if (w[i] != pattern(who, k, i))
            return false;
    return true;
}

static char read_byte(int fd)
{
    char c = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, WAIT_MS) != 1 || read(fd, &c, 1) != 1)
        return 0;
    return c;
}

static void write_byte(int fd, char c)
{
    ck_assert_int_eq(write(fd, &c, 1), 1);
}

/* Set while another thread of this process (the manager's reader) handles
 * datagrams, each under this lock. A fork with the lock held happens while
 * that thread waits in poll() or on the lock, never inside an intercepted
 * call: under TSan a child forked mid-call can inherit a sanitizer lock that
 * nobody releases, and one CI run saw a client child never report ready. */
static pthread_mutex_t *fork_gate;

static pid_t fork_gated(void)
{
    if (fork_gate)
        (void)pthread_mutex_lock(fork_gate);
    (void)fflush(NULL);
    pid_t pid = fork();
    if (fork_gate && pid != 0)
        (void)pthread_mutex_unlock(fork_gate);
    return pid;
}

/* Runs `arenactl --socket S --json top --once`; its output (truncated to
 * len - 1) in out. Returns its exit status. */
static int arenactl_top_json(char *out, size_t len)
{
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork_gated();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (dup2(p[1], STDOUT_FILENO) < 0)
            _exit(126);
        execl(ARENACTL_PATH, ARENACTL_PATH, "--socket", daemon_.socket, "--json", "top", "--once",
              (char *)NULL);
        _exit(127);
    }
    (void)close(p[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < len && (r = read(p[0], out + n, len - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    (void)close(p[0]);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A status and lease listing from a fresh admin connection. */
static void books(arena__admin_status_t *st, arena__admin_leases_t **leases)
{
    arena_conn_t *c = NULL;
    ck_assert_int_eq(arena_connect(daemon_.socket, &c), 0);
    ck_assert_int_eq(arena__admin_status(c, st), 0);
    if (leases)
        ck_assert_int_eq(arena__admin_leases(c, 0, leases), 0);
    arena_disconnect(c);
}

static int by_offset(const void *a, const void *b)
{
    const arena__admin_lease_t *x = a, *y = b;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

/* No two listed pool leases overlap (one pool per uid here; leases of
 * memory of their own, which a paused pool's clients get, are in none);
 * returns the sum of all. */
static uint64_t check_no_overlap(arena__admin_leases_t *l)
{
    qsort(l->items, l->count, sizeof(l->items[0]), by_offset);
    uint64_t sum = 0;
    const arena__admin_lease_t *prev = NULL;
    for (size_t i = 0; i < l->count; i++) {
        sum += l->items[i].size;
        if (l->items[i].own_memory)
            continue;
        if (prev)
            ck_assert_uint_le(prev->offset + prev->size, l->items[i].offset);
        prev = &l->items[i];
    }
    return sum;
}

/* ---- the clients ---------------------------------------------------------------- */

typedef struct child {
    pid_t pid;
    int to_child;   /* the test writes commands here */
    int from_child; /* the child answers here */
} child_t;

/* A client: leases, fills, says 'R'; on 'G' checks its data, makes a call
 * (the reconnect), checks again, takes one more lease and says 'D' (or 'F'
 * with what failed on stderr); on 'X' releases everything and exits 0. With
 * background, it never calls the daemon after the restart until told: the
 * notification thread must re-register it alone. */
static int client_main(int who, int in, int out, bool background)
{
    arena_lease_t l[NLEASES + 1];
    for (size_t k = 0; k < NLEASES; k++) {
        int r = arena_lease(NULL, lease_sizes[k], 0, &l[k]);
        if (r != 0) {
            (void)fprintf(stderr, "child %d: lease %zu: %s\n", who, k, arena_strerror(r));
            return 10;
        }
        fill(l[k].addr, l[k].size, who, k);
    }
    (void)background;
    write_byte(out, 'R');
    if (read_byte(in) != 'G')
        return 11;
    for (size_t k = 0; k < NLEASES; k++)
        if (!intact(l[k].addr, l[k].size, who, k)) {
            (void)fprintf(stderr, "child %d: lease %zu changed while the daemon was away\n", who,
                          k);
            write_byte(out, 'F');
            return 12;
        }
    /* The first call after the restart: reconnect, claim, then (the pool
     * grants nothing during its grace period) wait for the new lease. */
    int r = arena_lease(NULL, MIB, 15000, &l[NLEASES]);
    if (r != 0) {
        (void)fprintf(stderr, "child %d: lease after restart: %s\n", who, arena_strerror(r));
        write_byte(out, 'F');
        return 13;
    }
    fill(l[NLEASES].addr, l[NLEASES].size, who, NLEASES);
    for (size_t k = 0; k <= NLEASES; k++)
        if (!intact(l[k].addr, l[k].size, who, k)) {
            (void)fprintf(stderr, "child %d: lease %zu changed after the reconnect\n", who, k);
            write_byte(out, 'F');
            return 14;
        }
    arena_conn_t *conn = NULL;
    arena__conn_notes_t notes;
    if (arena__conn_default(&conn) != 0 || arena__conn_notes(conn, &notes) != 0 ||
        notes.reconnects_total != 1 || notes.detached_total != 0) {
        (void)fprintf(stderr, "child %d: reconnects %llu detached %llu\n", who,
                      (unsigned long long)notes.reconnects_total,
                      (unsigned long long)notes.detached_total);
        write_byte(out, 'F');
        return 15;
    }
    write_byte(out, 'D');
    if (read_byte(in) != 'X')
        return 16;
    for (size_t k = 0; k <= NLEASES; k++) {
        if (!intact(l[k].addr, l[k].size, who, k))
            return 17;
        r = arena_release(NULL, &l[k]);
        if (r != 0) {
            (void)fprintf(stderr, "child %d: release %zu: %s\n", who, k, arena_strerror(r));
            return 18;
        }
    }
    return 0;
}

static void child_start(child_t *c, int who, bool background)
{
    int down[2], up[2];
    ck_assert_int_eq(pipe2(down, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(up, O_CLOEXEC), 0);
    pid_t pid = fork_gated();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (background)
            (void)setenv("ARENA_BACKGROUND", "1", 1);
        (void)close(down[1]);
        (void)close(up[0]);
        _exit(client_main(who, down[0], up[1], background));
    }
    (void)close(down[0]);
    (void)close(up[1]);
    *c = (child_t){.pid = pid, .to_child = down[1], .from_child = up[0]};
}

static int child_finish(child_t *c)
{
    int status = 0;
    (void)close(c->to_child);
    (void)close(c->from_child);
    if (waitpid(c->pid, &status, 0) != c->pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

static void children_kill(child_t *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (c[i].pid > 0)
            (void)kill(c[i].pid, SIGKILL);
}

/* Reads child i's next answer. Any other answer fails the test, saying what
 * became of the child (its exit code, or 109: it hung and was killed here),
 * after killing all n children so that none outlives the test. */
static void expect_answer(child_t *kids, size_t n, size_t i, char want)
{
    char got = read_byte(kids[i].from_child);
    if (got == want)
        return;
    children_kill(kids, n);
    int status = child_finish(&kids[i]);
    ck_abort_msg("child %zu answered %d, not '%c'; its exit status: %d (%d: it hung)", i, got, want,
                 status, 100 + SIGKILL);
}

/* ---- the story ------------------------------------------------------------------ */

START_TEST(test_sigkill_restart_keeps_every_byte)
{
    child_t kids[CHILDREN + 1];
    memset(kids, 0, sizeof(kids));
    for (int i = 0; i < CHILDREN; i++)
        child_start(&kids[i], i, i == CHILDREN - 1 /* the last one only listens */);
    /* A client that will die while the daemon is down: nobody claims its
     * leases, so the new daemon frees them when the grace period ends. */
    child_start(&kids[CHILDREN], CHILDREN, false);
    for (size_t i = 0; i <= CHILDREN; i++)
        expect_answer(kids, CHILDREN + 1, i, 'R');
    arena__admin_status_t before;
    books(&before, NULL);
    uint64_t per_child = 0;
    for (size_t k = 0; k < NLEASES; k++)
        per_child += lease_sizes[k];
    ck_assert_uint_eq(before.leased_bytes, (CHILDREN + 1) * per_child);

    ck_assert_int_eq(arena_test_daemon_restart(&daemon_, SIGKILL, daemon_args()), 0);
    (void)kill(kids[CHILDREN].pid, SIGKILL);
    ck_assert_int_eq(child_finish(&kids[CHILDREN]), 100 + SIGKILL);
    kids[CHILDREN].pid = 0;

    /* The listening child re-registers on its own (ARENA_BACKGROUND=1):
     * its leases appear in the new daemon's books without a call of its. */
    uint64_t deadline = now_ms() + GRACE_MS;
    size_t seen = 0;
    while (now_ms() < deadline && seen < NLEASES) {
        arena__admin_status_t st;
        arena__admin_leases_t *l = NULL;
        books(&st, &l);
        seen = l->count;
        arena__admin_leases_free(l);
        if (seen < NLEASES)
            nap_ms(SLEEP_STEP);
    }
    ck_assert_uint_eq(seen, NLEASES);

    for (int i = 0; i < CHILDREN; i++)
        write_byte(kids[i].to_child, 'G');
    for (size_t i = 0; i < CHILDREN; i++)
        expect_answer(kids, CHILDREN, i, 'D');

    /* The new books: each child's three old leases and one new one, no
     * overlap, the sums agree, and the dead client's space is not held. */
    arena__admin_status_t st;
    arena__admin_leases_t *l = NULL;
    books(&st, &l);
    ck_assert_uint_eq(l->count, CHILDREN * (NLEASES + 1));
    uint64_t sum = check_no_overlap(l);
    ck_assert_uint_eq(sum, CHILDREN * (per_child + MIB));
    ck_assert_uint_eq(st.leased_bytes, sum);
    arena__admin_leases_free(l);

    /* A newcomer after the grace period gets fresh, zeroed memory that
     * overlaps nobody: what the dead client held is free again. */
    nap_ms(GRACE_MS / 2);
    arena_conn_t *c = NULL;
    ck_assert_int_eq(arena_connect(daemon_.socket, &c), 0);
    arena_lease_t big;
    ck_assert_int_eq(arena_lease(c, 8 * MIB, 5000, &big), 0);
    const unsigned char *b = big.addr;
    for (size_t i = 0; i < big.size; i += 4096)
        ck_assert_uint_eq(b[i], 0);
    books(&st, NULL);
    ck_assert_uint_eq(st.leased_bytes, sum + big.size);
    ck_assert_int_eq(arena_release(c, &big), 0);
    arena_disconnect(c);

    for (int i = 0; i < CHILDREN; i++)
        write_byte(kids[i].to_child, 'X');
    for (int i = 0; i < CHILDREN; i++)
        ck_assert_int_eq(child_finish(&kids[i]), 0);
    books(&st, NULL);
    ck_assert_uint_eq(st.leased_bytes, 0);
}
END_TEST

/* ---- raw frames ------------------------------------------------------------------ */

static int raw_send(int fd, const arena__msg_t *m, int pass_fd)
{
    uint8_t buf[65536];
    long n = arena__wire_encode(m, buf, sizeof(buf));
    if (n < 0)
        return (int)n;
    return arena_peer_send(fd, buf, (size_t)n, &pass_fd, pass_fd >= 0 ? 1 : 0, -1);
}

static arena__scratch_t scratch;

/* Reads one frame (skipping notifications); its first passed fd, if any,
 * goes to *ret_fd. Returns 0 or -EIO. The decoded message may point into
 * the frame, which stays until the next call. */
static int raw_read(int fd, arena__msg_t *m, int *ret_fd)
{
    static uint8_t *body;
    for (;;) {
        size_t len;
        free(body);
        body = NULL;
        if (arena_peer_recv_frame(fd, &body, &len, ret_fd, WAIT_MS) != 1)
            return -EIO;
        arena__scratch_reset(&scratch);
        if (arena__wire_decode(body, len, &scratch, m) != 0)
            return -EIO;
        if (m->request_id != 0)
            return 0;
    }
}

/* Hello (reattach with pool_fd when >= 0); the reply's pool fd goes to
 * *ret_pool when not NULL. Returns the reply kind, or the error code
 * negated. */
static int raw_hello(int sock, bool reattach, int pool_fd, int *ret_pool)
{
    arena__msg_t m = {.request_id = 1, .kind = ARENA__MSG_HELLO};
    m.u.hello.protocol_version = ARENA__PROTOCOL_VERSION;
    m.u.hello.client_name = "forger";
    m.u.hello.reattach = reattach;
    ck_assert_int_eq(raw_send(sock, &m, pool_fd), 0);
    int fd = -1;
    arena__msg_t r;
    ck_assert_int_eq(raw_read(sock, &r, &fd), 0);
    if (ret_pool)
        *ret_pool = fd;
    else if (fd >= 0)
        (void)close(fd);
    if (r.kind == ARENA__MSG_ERROR)
        return -r.u.error.code;
    return (int)r.kind;
}

/* One claim; returns its result's error code (0: granted). */
static int raw_claim(int sock, uint64_t offset, uint64_t size)
{
    arena__wire_claim_t c = {.lease_id = 77, .offset = offset, .size = size};
    arena__msg_t m = {.request_id = 2, .kind = ARENA__MSG_CLAIM};
    m.u.claim.count = 1;
    m.u.claim.claims = &c;
    ck_assert_int_eq(raw_send(sock, &m, -1), 0);
    arena__msg_t r;
    ck_assert_int_eq(raw_read(sock, &r, NULL), 0);
    if (r.kind == ARENA__MSG_ERROR)
        return 1000 + r.u.error.code;
    ck_assert_int_eq(r.kind, ARENA__MSG_CLAIM_REPLY);
    ck_assert_uint_eq(r.u.claim_reply.count, 1);
    ck_assert_uint_eq(r.u.claim_reply.results[0].claimed_id, 77);
    return r.u.claim_reply.results[0].error;
}

START_TEST(test_forged_claims_and_pools)
{
    /* This uid's pool, as any process of the uid could get it. */
    int s = arena_test_daemon_connect(&daemon_);
    ck_assert_int_ge(s, 0);
    int pool = -1;
    ck_assert_int_eq(raw_hello(s, false, -1, &pool), ARENA__MSG_HELLO_REPLY);
    ck_assert_int_ge(pool, 0);
    /* A plain client may not claim anything: its pool is in no grace. */
    ck_assert_int_eq(raw_claim(s, 0, 4096), ARENA__WIRE_ERROR_CONFLICT);
    (void)close(s);

    /* A client with a lease full of data, then the daemon dies. */
    arena_conn_t *owner = NULL;
    ck_assert_int_eq(arena_connect(daemon_.socket, &owner), 0);
    arena_lease_t l;
    ck_assert_int_eq(arena_lease(owner, 2 * MIB, 0, &l), 0);
    fill(l.addr, l.size, 9, 0);
    arena__admin_status_t st;
    arena__admin_leases_t *list = NULL;
    books(&st, &list);
    ck_assert_uint_eq(list->count, 1);
    uint64_t off = list->items[0].offset, size = list->items[0].size;
    arena__admin_leases_free(list);
    ck_assert_int_eq(arena_test_daemon_restart(&daemon_, SIGKILL, daemon_args()), 0);

    /* Not a pool: a pipe, an unsealed memfd, no fd at all. */
    int pp[2];
    ck_assert_int_eq(pipe2(pp, O_CLOEXEC), 0);
    s = arena_test_daemon_connect(&daemon_);
    ck_assert_int_eq(raw_hello(s, true, pp[0], NULL), -ARENA__WIRE_ERROR_INVALID_ARGUMENT);
    (void)close(s);
    (void)close(pp[0]);
    (void)close(pp[1]);
    int loose = memfd_create("not-a-pool", MFD_CLOEXEC);
    ck_assert_int_ge(loose, 0);
    ck_assert_int_eq(ftruncate(loose, 64 * MIB), 0);
    s = arena_test_daemon_connect(&daemon_);
    ck_assert_int_eq(raw_hello(s, true, loose, NULL), -ARENA__WIRE_ERROR_INVALID_ARGUMENT);
    (void)close(s);
    (void)close(loose);
    s = arena_test_daemon_connect(&daemon_);
    ck_assert_int_eq(raw_hello(s, true, -1, NULL), -ARENA__WIRE_ERROR_PROTOCOL);
    (void)close(s);

    /* Another uid handing back this uid's pool is refused (root only). */
    if (geteuid() == 0) {
        ck_assert_int_eq(chmod(daemon_.dir, 0711), 0); /* let nobody reach the socket */
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            if (setgid(65534) != 0 || setuid(65534) != 0)
                _exit(2);
            int x = arena_test_daemon_connect(&daemon_);
            if (x < 0)
                _exit(3);
            _exit(raw_hello(x, true, pool, NULL) == -ARENA__WIRE_ERROR_PERMISSION ? 0 : 4);
        }
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 0);
    }

    /* The forger hands the pool back first and claims bad extents. */
    s = arena_test_daemon_connect(&daemon_);
    ck_assert_int_eq(raw_hello(s, true, pool, NULL), ARENA__MSG_HELLO_REPLY);
    ck_assert_int_eq(raw_claim(s, 4096 + 1, 4096), ARENA__WIRE_ERROR_INVALID_ARGUMENT);
    ck_assert_int_eq(raw_claim(s, 0, 0), ARENA__WIRE_ERROR_INVALID_ARGUMENT);
    ck_assert_int_eq(raw_claim(s, UINT64_MAX - 4095, 4096), ARENA__WIRE_ERROR_INVALID_ARGUMENT);
    /* A claim of half the owner's lease is granted (the daemon cannot tell
     * one process of a uid from another)... */
    ck_assert_int_eq(raw_claim(s, off, size / 2), 0);
    /* ...but never twice. */
    ck_assert_int_eq(raw_claim(s, off, 4096), ARENA__WIRE_ERROR_CONFLICT);

    /* The owner comes back: its claim conflicts, so its lease becomes a
     * private copy -- the data stays, the forger no longer sees it. */
    arena_lease_t extra;
    ck_assert_int_eq(arena_lease(owner, MIB, 10000, &extra), 0);
    ck_assert(intact(l.addr, l.size, 9, 0));
    arena__conn_notes_t notes;
    ck_assert_int_eq(arena__conn_notes(owner, &notes), 0);
    ck_assert_uint_eq(notes.reconnects_total, 1);
    ck_assert_uint_eq(notes.detached_total, 1);
    void *forged = mmap(NULL, size / 2, PROT_READ | PROT_WRITE, MAP_SHARED, pool, (off_t)off);
    ck_assert_ptr_ne(forged, MAP_FAILED);
    memset(forged, 0x5a, size / 2);
    ck_assert(intact(l.addr, l.size, 9, 0));
    (void)munmap(forged, size / 2);
    ck_assert_int_eq(arena_release(owner, &l), 0); /* private: only unmapped */
    ck_assert_int_eq(arena_release(owner, &extra), 0);

    /* After the grace period nothing more is claimed. */
    nap_ms(GRACE_MS + 300);
    ck_assert_int_eq(raw_claim(s, off + size / 2, 4096), ARENA__WIRE_ERROR_CONFLICT);
    (void)close(s); /* the forger's half lease goes with its connection */
    arena_disconnect(owner);
    (void)close(pool);
    books(&st, NULL);
    ck_assert_uint_eq(st.leased_bytes, 0);
}
END_TEST

START_TEST(test_release_across_restart_is_not_sent_stale)
{
    /* A lease released after the daemon died, before any other call: the
     * release must not reach the new daemon under the old id (which may
     * name someone else's lease there); the lease was not claimed, so it
     * simply is not in the new books. */
    arena_conn_t *a = NULL;
    ck_assert_int_eq(arena_connect(daemon_.socket, &a), 0);
    arena_lease_t la, lb;
    ck_assert_int_eq(arena_lease(a, MIB, 0, &la), 0);
    ck_assert_int_eq(arena_lease(a, MIB, 0, &lb), 0);
    fill(lb.addr, lb.size, 3, 1);
    ck_assert_int_eq(arena_test_daemon_restart(&daemon_, SIGKILL, daemon_args()), 0);
    /* A newcomer takes lease id 1 of the new daemon before `a` comes back. */
    arena_conn_t *b = NULL;
    ck_assert_int_eq(arena_connect(daemon_.socket, &b), 0);
    arena_lease_t nb;
    ck_assert_int_eq(arena_lease(b, MIB, 0, &nb), 0);
    ck_assert_int_eq(arena_release(a, &la), 0); /* reconnects, claims lb only */
    arena__admin_status_t st;
    arena__admin_leases_t *list = NULL;
    books(&st, &list);
    ck_assert_uint_eq(list->count, 2); /* nb and the claimed lb (in two pools) */
    arena__admin_leases_free(list);
    ck_assert(intact(lb.addr, lb.size, 3, 1));
    /* Ids the caller knows still work: lb is released under its new id. */
    ck_assert_int_eq(arena_release(a, &lb), 0);
    ck_assert_int_eq(arena_release(b, &nb), 0);
    books(&st, NULL);
    ck_assert_uint_eq(st.leased_bytes, 0);
    arena_disconnect(a);
    arena_disconnect(b);
}
END_TEST

/* Without a fd store the grace period is all a client has: one that comes
 * back after it, when another client of its uid handed the pool back first,
 * has its claim refused and its lease detached, and the pages the new daemon
 * punched are gone (README, "Running under systemd"). This pins that limit:
 * the fd-store case below keeps such a client's leases. */
START_TEST(test_late_client_without_fd_store_loses_its_pages)
{
    arena_conn_t *prompt = NULL, *late = NULL;
    ck_assert_int_eq(arena_connect(daemon_.socket, &prompt), 0);
    ck_assert_int_eq(arena_connect(daemon_.socket, &late), 0);
    arena_lease_t lp, ll, x;
    ck_assert_int_eq(arena_lease(prompt, MIB, 0, &lp), 0);
    ck_assert_int_eq(arena_lease(late, MIB, 0, &ll), 0);
    fill(lp.addr, lp.size, 1, 0);
    fill(ll.addr, ll.size, 2, 0);
    ck_assert_int_eq(arena_test_daemon_restart(&daemon_, SIGKILL, daemon_args()), 0);
    /* prompt hands the pool back and claims; its new lease is memory of
     * its own at once (the pool grants nothing in its grace period). Once
     * the grace period is over, the unclaimed rest has been punched. */
    ck_assert_int_eq(arena_lease(prompt, MIB, 0, &x), 0);
    arena__admin_status_t st;
    uint64_t deadline = now_ms() + 3 * GRACE_MS;
    do {
        nap_ms(50);
        books(&st, NULL);
    } while (st.restart_grace_left_ms > 0 && now_ms() < deadline);
    ck_assert_uint_eq(st.restart_grace_left_ms, 0);
    /* The purge that ends it runs on the daemon's timer, at once or soon. */
    deadline = now_ms() + 3000;
    while (intact(ll.addr, ll.size, 2, 0) && now_ms() < deadline)
        nap_ms(20);
    ck_assert(intact(lp.addr, lp.size, 1, 0));
    ck_assert(!intact(ll.addr, ll.size, 2, 0));
    ck_assert_uint_eq(((const uint64_t *)ll.addr)[0], 0);
    /* late's next call finds out: its claim is refused, its lease detached. */
    arena_lease_t y;
    ck_assert_int_eq(arena_lease(late, MIB, 0, &y), 0);
    arena__conn_notes_t notes;
    ck_assert_int_eq(arena__conn_notes(late, &notes), 0);
    ck_assert_uint_eq(notes.reconnects_total, 1);
    ck_assert_uint_eq(notes.detached_total, 1);
    ck_assert_int_eq(arena_release(late, &ll), 0); /* private: only unmapped */
    ck_assert_int_eq(arena_release(late, &y), 0);
    ck_assert_int_eq(arena_release(prompt, &x), 0);
    ck_assert_int_eq(arena_release(prompt, &lp), 0);
    books(&st, NULL);
    ck_assert_uint_eq(st.leased_bytes, 0);
    arena_disconnect(prompt);
    arena_disconnect(late);
}
END_TEST

/* ---- an emulated service manager ----------------------------------------------- */

#define MANAGER_MAX_FDS 16

typedef struct manager {
    char dir[32];
    char sock_path[64];
    char notify_path[64];
    int listen_fd;
    int notify_fd;
    pid_t pid;
    size_t n;
    int fds[MANAGER_MAX_FDS];
    char names[MANAGER_MAX_FDS][64];
    bool ready;
    /* Like systemd, the manager reads every notification as it comes: a
     * daemon must never find the notify socket full. */
    pthread_t reader;
    pthread_mutex_t lock; /* guards n, fds, names, ready */
    atomic_bool stop;
} manager_t;

static manager_t mgr;

/* Reads every pending notification; FDSTORE=1 fds are kept by name. */
static void manager_drain(manager_t *m, int timeout_ms)
{
    for (;;) {
        if (atomic_load(&m->stop))
            return;
        struct pollfd p = {.fd = m->notify_fd, .events = POLLIN};
        if (poll(&p, 1, timeout_ms) != 1)
            return;
        timeout_ms = 0;
        char buf[512];
        int fd = -1;                        /* the first fd of the datagram: FDSTORE=1's */
        (void)pthread_mutex_lock(&m->lock); /* also fork_gate: no fork mid-receive */
        ssize_t n = arena__recv_with_fds(m->notify_fd, buf, sizeof(buf) - 1, &fd, 1, 0);
        if (n < 0) {
            (void)pthread_mutex_unlock(&m->lock);
            return;
        }
        buf[n] = '\0';
        if (strstr(buf, "READY=1"))
            m->ready = true;
        const char *name = strstr(buf, "FDNAME=");
        if (strstr(buf, "FDSTORE=1") && name && fd >= 0 && m->n < MANAGER_MAX_FDS) {
            name += 7;
            size_t len = strcspn(name, "\n");
            ck_assert_uint_lt(len, sizeof(m->names[0]));
            memcpy(m->names[m->n], name, len);
            m->names[m->n][len] = '\0';
            m->fds[m->n++] = fd;
        } else if (fd >= 0) {
            (void)close(fd);
        }
        (void)pthread_mutex_unlock(&m->lock);
    }
}

static void *manager_reader(void *arg)
{
    manager_t *m = arg;
    while (!atomic_load(&m->stop))
        manager_drain(m, 50);
    return NULL;
}

static bool manager_ready(manager_t *m)
{
    (void)pthread_mutex_lock(&m->lock);
    bool ready = m->ready;
    (void)pthread_mutex_unlock(&m->lock);
    return ready;
}

static size_t manager_count(manager_t *m)
{
    (void)pthread_mutex_lock(&m->lock);
    size_t n = m->n;
    (void)pthread_mutex_unlock(&m->lock);
    return n;
}

/* Starts arenad as systemd would: the listening socket as fd 3, the stored
 * fds after it, names in LISTEN_FDNAMES; waits for READY=1. */
static void manager_spawn(manager_t *m)
{
    (void)pthread_mutex_lock(&m->lock); /* held over fork: a stable list, and fork_gate */
    m->ready = false;
    (void)fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int all[MANAGER_MAX_FDS + 1];
        all[0] = m->listen_fd;
        for (size_t i = 0; i < m->n; i++)
            all[i + 1] = m->fds[i];
        /* Move everything out of the way, then into 3.. in order. */
        for (size_t i = 0; i <= m->n; i++)
            all[i] = fcntl(all[i], F_DUPFD, 100);
        char names[MANAGER_MAX_FDS * 66] = "arenad.socket";
        for (size_t i = 0; i <= m->n; i++) {
            if (dup2(all[i], 3 + (int)i) < 0)
                _exit(120);
            if (i > 0) {
                (void)strcat(names, ":");
                (void)strcat(names, m->names[i - 1]);
            }
        }
        char count[24], pidbuf[24];
        (void)snprintf(count, sizeof(count), "%zu", m->n + 1);
        (void)snprintf(pidbuf, sizeof(pidbuf), "%ld", (long)getpid());
        (void)setenv("LISTEN_FDS", count, 1);
        (void)setenv("LISTEN_PID", pidbuf, 1);
        (void)setenv("LISTEN_FDNAMES", names, 1);
        (void)setenv("NOTIFY_SOCKET", m->notify_path, 1);
        (void)setenv("ARENAD_FDSTORE", "1", 1);
        (void)unsetenv("FDSTORE");
        (void)prctl_pdeathsig();
        execl(ARENAD_PATH, ARENAD_PATH, "--foreground", "--budget", "96M", "--config", config_path,
              "--log-level", "warn", (char *)NULL);
        _exit(127);
    }
    m->pid = pid;
    (void)pthread_mutex_unlock(&m->lock);
    uint64_t deadline = now_ms() + WAIT_MS;
    while (!manager_ready(m) && now_ms() < deadline)
        nap_ms(SLEEP_STEP);
    ck_assert_msg(manager_ready(m), "arenad never said READY=1");
}

static bool manager_has(manager_t *m, const char *prefix)
{
    bool found = false;
    (void)pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n && !found; i++)
        found = strncmp(m->names[i], prefix, strlen(prefix)) == 0;
    (void)pthread_mutex_unlock(&m->lock);
    return found;
}

static void manager_setup(void)
{
    manager_t *m = &mgr;
    memset(m, 0, sizeof(*m));
    (void)snprintf(m->dir, sizeof(m->dir), "/tmp/arenad-mgr-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(m->dir));
    (void)snprintf(m->sock_path, sizeof(m->sock_path), "%.31s/arenad.sock", m->dir);
    (void)snprintf(m->notify_path, sizeof(m->notify_path), "%.31s/notify", m->dir);
    m->listen_fd = arena_test_unix_socket(m->sock_path, SOCK_STREAM, ARENA_TEST_SOCK_LISTEN);
    ck_assert_int_ge(m->listen_fd, 0);
    m->notify_fd = arena_test_unix_socket(m->notify_path, SOCK_DGRAM, ARENA_TEST_SOCK_BIND);
    ck_assert_int_ge(m->notify_fd, 0);
    write_config();
    ck_assert_int_eq(setenv("ARENAD_SOCKET", m->sock_path, 1), 0);
    ck_assert_int_eq(setenv("ARENA_RECONNECT_MS", "15000", 1), 0);
    /* books() and the children find the daemon through this. */
    ck_assert_uint_lt(strlen(m->sock_path), sizeof(daemon_.socket));
    memcpy(daemon_.socket, m->sock_path, strlen(m->sock_path) + 1);
    ck_assert_int_eq(pthread_mutex_init(&m->lock, NULL), 0);
    ck_assert_int_eq(pthread_create(&m->reader, NULL, manager_reader, m), 0);
    fork_gate = &m->lock;
    manager_spawn(m);
}

static void manager_teardown(void)
{
    manager_t *m = &mgr;
    if (m->pid > 0) {
        /* Still running until this SIGKILL: a daemon that crashed or exited
         * on its own before it fails the test. */
        (void)kill(m->pid, SIGKILL);
        ck_assert_int_eq(arena_test_child_wait(m->pid, 5000), ARENA_TEST_KILLED(SIGKILL));
    }
    atomic_store(&m->stop, true);
    (void)pthread_join(m->reader, NULL);
    fork_gate = NULL;
    for (size_t i = 0; i < m->n; i++)
        (void)close(m->fds[i]);
    (void)close(m->listen_fd);
    (void)close(m->notify_fd);
    (void)unlink(m->sock_path);
    (void)unlink(m->notify_path);
    (void)rmdir(m->dir);
    (void)unlink(config_path);
    memset(&daemon_, 0, sizeof(daemon_));
}

START_TEST(test_fd_store_resumes_the_books)
{
    manager_t *m = &mgr;
    child_t kids[3];
    memset(kids, 0, sizeof(kids));
    child_start(&kids[0], 0, false);
    child_start(&kids[1], 1, false);
    child_start(&kids[2], 2, false); /* dies while the daemon is down */
    for (size_t i = 0; i < 3; i++)
        expect_answer(kids, 3, i, 'R');
    nap_ms(200);
    ck_assert(manager_has(m, "ledger"));
    ck_assert(manager_has(m, "pool-uid"));

    /* The crash: the manager keeps the socket and the stored fds. */
    (void)kill(m->pid, SIGKILL);
    ck_assert_int_eq(arena_test_child_wait(m->pid, 5000), ARENA_TEST_KILLED(SIGKILL));
    m->pid = 0;
    (void)kill(kids[2].pid, SIGKILL);
    ck_assert_int_eq(child_finish(&kids[2]), 100 + SIGKILL);
    size_t stored = manager_count(m);
    manager_spawn(m);
    nap_ms(100);
    ck_assert_uint_eq(manager_count(m), stored); /* resumed pools are not stored twice */
    uint64_t per_child = 0;
    for (size_t k = 0; k < NLEASES; k++)
        per_child += lease_sizes[k];
    /* The living clients have not claimed yet: status shows their leases
     * as held for them (in nobody's lease, yet counted against the budget). */
    arena__admin_status_t st;
    books(&st, NULL);
    ck_assert_uint_eq(st.restart_held_bytes, 2 * per_child);
    ck_assert_uint_eq(st.leased_bytes, 0);
    char top[4096], want[64];
    ck_assert_int_eq(arenactl_top_json(top, sizeof(top)), 0);
    (void)snprintf(want, sizeof(want), "\"restart_held_bytes\":%" PRIu64 ",", 2 * per_child);
    ck_assert_msg(strstr(top, want) != NULL, "%s", top);

    /* The ledger names each lease's process: the dead client's leases are
     * free at once, a newcomer can have their budget... */
    size_t room = 96 * MIB - 2 * per_child; /* what the two living clients leave */
    arena_conn_t *c = NULL;
    ck_assert_int_eq(arena_connect(m->sock_path, &c), 0);
    arena_lease_t small, big;
    ck_assert_int_eq(arena_lease(c, MIB, 0, &small), 0);
    ck_assert_int_eq(arena_lease(c, room - 4 * MIB, 0, &big), 0);
    ck_assert_int_eq(arena_release(c, &big), 0);

    /* ...while the living clients' leases stay theirs, also after the grace
     * period, though neither calls the daemon meanwhile. */
    nap_ms(GRACE_MS + 300);
    ck_assert_int_eq(arena_lease(c, room + 4 * MIB, 0, &big), -ENOMEM);
    char why[384];
    (void)arena__conn_last_error(c, why, sizeof(why));
    ck_assert_msg(strstr(why, " held for clients of a previous arenad") != NULL, "%s", why);
    books(&st, NULL);
    ck_assert_uint_eq(st.restart_held_bytes, 2 * per_child); /* held past the grace period */
    for (int i = 0; i < 2; i++)
        write_byte(kids[i].to_child, 'G'); /* late claims; no lease detached */
    for (size_t i = 0; i < 2; i++)
        expect_answer(kids, 2, i, 'D');
    arena__admin_leases_t *l = NULL;
    books(&st, &l);
    ck_assert_uint_eq(st.restart_held_bytes, 0); /* all claimed back */
    ck_assert_uint_eq(l->count, 2 * (NLEASES + 1) + 1);
    uint64_t sum = check_no_overlap(l); /* one pool: the resumed one */
    arena__admin_leases_free(l);
    ck_assert_uint_eq(sum, 2 * (per_child + MIB) + MIB);
    ck_assert_uint_eq(st.leased_bytes, sum);
    ck_assert_int_eq(arena_release(c, &small), 0);
    arena_disconnect(c);

    for (int i = 0; i < 2; i++)
        write_byte(kids[i].to_child, 'X');
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(child_finish(&kids[i]), 0);
    books(&st, NULL);
    ck_assert_uint_eq(st.leased_bytes, 0);
}
END_TEST

/* ---- threads sharing a connection through a restart ------------------------------ */

typedef struct churner {
    arena_conn_t *conn;
    int tag;
    atomic_bool *stop;
    int bad;     /* results that are neither success nor "daemon away" */
    int damaged; /* held leases whose bytes changed */
    long ops;
} churner_t;

static void *churn_thread(void *arg)
{
    churner_t *c = arg;
    arena_lease_t held;
    bool holding = arena_lease(c->conn, MIB, 0, &held) == 0;
    if (holding)
        fill(held.addr, held.size, c->tag, 0);
    while (!atomic_load(c->stop)) {
        arena_lease_t l;
        int r = arena_lease(c->conn, 64 * KIB, 5000, &l);
        if (r == 0) {
            fill(l.addr, l.size, c->tag, 1);
            if (!intact(l.addr, l.size, c->tag, 1))
                c->damaged++;
            r = arena_release(c->conn, &l);
        }
        if (r != 0 && r != ARENA_EDISCONNECTED && r != -ETIMEDOUT)
            c->bad++;
        if (holding && !intact(held.addr, held.size, c->tag, 0))
            c->damaged++;
        c->ops++;
    }
    if (holding && arena_release(c->conn, &held) != 0)
        c->bad++;
    return NULL;
}

START_TEST(test_threads_share_a_connection_through_a_restart)
{
    arena_conn_t *conn = NULL;
    ck_assert_int_eq(arena_connect(daemon_.socket, &conn), 0);
    enum { THREADS = 4 };
    atomic_bool stop = false;
    churner_t ch[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        ch[i] = (churner_t){.conn = conn, .tag = 20 + i, .stop = &stop};
        ck_assert_int_eq(pthread_create(&th[i], NULL, churn_thread, &ch[i]), 0);
    }
    nap_ms(300);
    ck_assert_int_eq(arena_test_daemon_restart(&daemon_, SIGKILL, daemon_args()), 0);
    nap_ms(GRACE_MS + 700); /* claims, then grants again after the grace period */
    atomic_store(&stop, true);
    long ops = 0;
    for (int i = 0; i < THREADS; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        ck_assert_int_eq(ch[i].bad, 0);
        ck_assert_int_eq(ch[i].damaged, 0);
        ops += ch[i].ops;
    }
    ck_assert_int_gt(ops, THREADS);
    arena__conn_notes_t notes;
    ck_assert_int_eq(arena__conn_notes(conn, &notes), 0);
    ck_assert_uint_eq(notes.reconnects_total, 1);
    ck_assert_uint_eq(notes.detached_total, 0);
    ck_assert_uint_eq(arena__conn_tracked(conn), 0);
    arena_disconnect(conn);
    /* Whatever was released across the restart without being claimed is
     * free once the grace period is over: nothing is left. */
    arena__admin_status_t st;
    books(&st, NULL);
    ck_assert_uint_eq(st.leased_bytes, 0);
}
END_TEST

/* ---- clients killed at any point -------------------------------------------------- */

/* A client that never stops: leases, writes, parks, unparks, releases, and
 * now and then leaves half a frame on a second connection -- until the test
 * kills it wherever it is. */
static int churn_main(unsigned seed)
{
    arena_conn_t *c = NULL;
    if (arena_connect(daemon_.socket, &c) != 0)
        return 2;
    arena_lease_t l[8];
    bool parked[8] = {false};
    size_t n = 0;
    for (;;) {
        unsigned op = (unsigned)rand_r(&seed) % 7;
        size_t i = n ? (size_t)rand_r(&seed) % n : 0;
        if (op <= 1 && n < 8) {
            size_t size = 4096u << (rand_r(&seed) % 10);
            if (arena_lease(c, size, 0, &l[n]) == 0) {
                memset(l[n].addr, 0x5a, 4096);
                parked[n++] = false;
            }
        } else if (op == 2 && n > 0) {
            if (parked[i])
                (void)arena_lease_unpark(c, &l[i]);
            (void)arena_release(c, &l[i]);
            l[i] = l[n - 1];
            parked[i] = parked[n - 1];
            n--;
        } else if (op == 3 && n > 0 && !parked[i]) {
            parked[i] = arena_lease_park(c, &l[i]) == 0;
        } else if (op == 4 && n > 0 && parked[i]) {
            parked[i] = arena_lease_unpark(c, &l[i]) != 0;
        } else if (op == 5) {
            /* Half a frame on a raw connection, left hanging. */
            int s = arena_test_daemon_connect(&daemon_);
            static const uint8_t half[] = {40, 0, 0, 0, 0x08, 0x01};
            if (s >= 0 && write(s, half, sizeof(half)) < 0)
                return 3;
        }
    }
}

/* The daemon's resident pool pages, from its metrics. */
static uint64_t resident_bytes(void)
{
    arena_conn_t *c = NULL;
    ck_assert_int_eq(arena_connect(daemon_.socket, &c), 0);
    arena__admin_text_t *t = NULL;
    ck_assert_int_eq(arena__admin_metrics(c, &t), 0);
    const char *line = strstr(t->text, "\narenad_resident_bytes ");
    ck_assert_ptr_nonnull(line);
    uint64_t v = strtoull(line + strlen("\narenad_resident_bytes "), NULL, 10);
    arena__admin_text_free(t);
    arena_disconnect(c);
    return v;
}

START_TEST(test_clients_killed_anywhere_leave_nothing)
{
    arena__admin_status_t st;
    books(&st, NULL); /* the uid's pool memfd exists from the first hello on */
    /* The daemon closes books()'s connection when it sees the EOF: the
     * baseline is the count once that has happened. */
    int fds_before = arena_test_count_fds(daemon_.pid);
    for (int i = 0; i < 20; i++) {
        nap_ms(SLEEP_STEP);
        int n = arena_test_count_fds(daemon_.pid);
        fds_before = n < fds_before ? n : fds_before;
    }
    ck_assert_int_gt(fds_before, 0);
    unsigned seed = 12345;
    for (int round = 0; round < 30; round++) {
        (void)fflush(NULL);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
            _exit(churn_main(seed + (unsigned)round));
        nap_ms((unsigned)rand_r(&seed) % 40);
        (void)kill(pid, SIGKILL);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFSIGNALED(status)); /* it was still churning */
    }
    /* The daemon notices every death at once (socket EOF): no client, no
     * lease, no fd of theirs, no page of theirs stays. */
    uint64_t deadline = now_ms() + WAIT_MS;
    do {
        nap_ms(SLEEP_STEP);
        books(&st, NULL);
    } while ((st.clients > 1 || st.leased_bytes > 0) && now_ms() < deadline);
    ck_assert_uint_eq(st.clients, 1); /* books() itself */
    ck_assert_uint_eq(st.leased_bytes, 0);
    ck_assert_uint_eq(st.leases, 0);
    ck_assert_uint_eq(resident_bytes(), 0);
    deadline = now_ms() + WAIT_MS;
    while (arena_test_count_fds(daemon_.pid) != fds_before && now_ms() < deadline)
        nap_ms(SLEEP_STEP);
    ck_assert_int_eq(arena_test_count_fds(daemon_.pid), fds_before);
}
END_TEST

static Suite *restart_suite(void)
{
    Suite *s = suite_create("restart");
    TCase *tc = tcase_create("restart");
    arena_test_fixture_use(&daemon_, restart_config(), daemon_args(), ARENA_TEST_EXPORT_SOCKET);
    tcase_add_checked_fixture(tc, setup, arena_test_fixture_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_sigkill_restart_keeps_every_byte);
    tcase_add_test(tc, test_forged_claims_and_pools);
    tcase_add_test(tc, test_release_across_restart_is_not_sent_stale);
    tcase_add_test(tc, test_late_client_without_fd_store_loses_its_pages);
    tcase_add_test(tc, test_clients_killed_anywhere_leave_nothing);
    tcase_add_test(tc, test_threads_share_a_connection_through_a_restart);
    suite_add_tcase(s, tc);
    tc = tcase_create("fdstore");
    tcase_add_checked_fixture(tc, manager_setup, manager_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_fd_store_resumes_the_books);
    suite_add_tcase(s, tc);
    return s;
}

ARENA_TEST_MAIN(restart_suite)
