/* SPDX-License-Identifier: MIT
 *
 * test_hostile.c -- a real arenad under hostile peers (DESIGN.md section 7):
 * random and mutated frames from many connections at once, frames claiming
 * huge lengths, stray descriptors attached to requests, a couple of thousand
 * idle connections (max_clients, hello_timeout_ms, frame_timeout_ms), a
 * client that never reads its replies, one that floods requests without
 * reading (max_requests_in_flight) and one that pipelines, the daemon out of
 * file descriptors (RLIMIT_NOFILE cut by prlimit) and out of address space
 * (RLIMIT_AS), and a second uid going after the first one's leases and pool.
 *
 * Each test starts its own daemon (tests/lib/daemon.h) with short
 * timeouts and, throughout, keeps one well-behaved client doing round trips
 * (status, lease, write, release): every one of them must succeed; their
 * latency is printed, never asserted. Afterwards the daemon must be back
 * where it was: the same fd count (arena_test_count_fds), no client but the
 * observer, nothing leased, and an RSS (/proc/PID/status VmRSS) within a
 * generous slack of the baseline; both figures are printed.
 *
 * Check forks each test; the daemon is the test process's child and dies
 * with it (PR_SET_PDEATHSIG), and the teardown stops it on every path.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check_main.h"
#include "arena.pb-c.h"
#include "fdpass.h"
#include "fixture.h"
#include "peer.h"
#include "proc.h"

#define IO_TIMEOUT_MS 5000
#define MiB           (1ull << 20)
#ifdef HOSTILE_DAEMON_ASAN
#define RSS_SLACK_KIB (160 * 1024) /* ASan's quarantine holds up to 256 MiB freed */
#else
#define RSS_SLACK_KIB (64 * 1024)
#endif

static arena_test_daemon_t daemon_;

/* ---- daemon lifecycle ------------------------------------------------------- */

static void start_with_config(const char *text)
{
    const char *const args[] = {"--log-level", "error", NULL};
    arena_test_daemon_up(&daemon_, text, args, 0);
}

static void setup(void)
{
    start_with_config("budget = 256M\nheap_size = 512M\nframe_timeout_ms = 500\n"
                      "max_clients = 256\ndecay_ms = 0\n");
}

static void teardown(void)
{
    int status = arena_test_daemon_stop(&daemon_);
    ck_assert_msg(status == 0, "the daemon did not exit cleanly (%d)", status);
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    (void)nanosleep(&ts, NULL);
}

static uint64_t now_us(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static long daemon_rss_kib(void)
{
    long kib = arena_test_rss_kib(daemon_.pid);
    ck_assert_int_gt(kib, 0);
    return kib;
}

/* ---- raw frames (tests/lib/peer.h) -------------------------------------------- */

/* Sends len bytes with fds (may be NULL) on the first byte. Returns false
 * when the daemon closed the connection (EPIPE, ECONNRESET) or the socket
 * stayed full for IO_TIMEOUT_MS. */
static bool send_bytes(int fd, const void *buf, size_t len, const int *fds, size_t nfds)
{
    return arena_peer_send(fd, buf, len, fds, nfds, IO_TIMEOUT_MS) == 0;
}

static void put_le32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 24);
}

/* Packs env into a frame (malloc'd, 4-byte header included). */
static uint8_t *pack_frame(const Arena__V1__Envelope *env, size_t *ret_len)
{
    uint8_t *buf = arena_peer_pack(env, ret_len);
    ck_assert_ptr_nonnull(buf);
    return buf;
}

static bool send_env_fds(int fd, const Arena__V1__Envelope *env, const int *fds, size_t nfds)
{
    return arena_peer_send_env(fd, env, fds, nfds, IO_TIMEOUT_MS) == 0;
}

static bool send_env(int fd, const Arena__V1__Envelope *env)
{
    return send_env_fds(fd, env, NULL, 0);
}

/* The next envelope (the first passed fd in *ret_fd when asked, every other
 * closed); NULL on EOF. Fails the test on a timeout or junk. */
static Arena__V1__Envelope *recv_env_fd(int fd, int *ret_fd)
{
    Arena__V1__Envelope *env = NULL;
    int r = arena_peer_recv_env(fd, &env, ret_fd, IO_TIMEOUT_MS);
    ck_assert_msg(r != -EMSGSIZE, "the daemon sent a frame above 16 MiB");
    ck_assert_msg(r != -EBADMSG, "the daemon sent a frame that does not decode");
    ck_assert_msg(r >= 0, "no reply from the daemon within %d ms (%s)", IO_TIMEOUT_MS,
                  strerror(-r));
    return r == 0 ? NULL : env;
}

static Arena__V1__Envelope *recv_env(int fd)
{
    return recv_env_fd(fd, NULL);
}

/* Reads whatever is waiting without blocking, closing passed fds. Returns
 * false once the daemon closed the connection. */
static bool drain(int fd)
{
    for (;;) {
        char buf[16384];
        ssize_t n = arena__recv_with_fds(fd, buf, sizeof(buf), NULL, 0, MSG_DONTWAIT);
        if (n > 0)
            continue;
        return n == -EAGAIN || n == -EWOULDBLOCK; /* 0 or an error: closed */
    }
}

/* ---- requests --------------------------------------------------------------- */

static int connect_raw(void)
{
    int fd = arena_test_daemon_connect(&daemon_);
    ck_assert_msg(fd >= 0, "connect: %s", strerror(-fd));
    return fd;
}

/* Connects and says hello. Returns the socket; *ret_client_id and the pool
 * fd in *ret_pool_fd when asked (else closed). */
static int connect_hello(const char *name, uint64_t *ret_client_id, int *ret_pool_fd)
{
    int fd = connect_raw();
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__Hello hello = ARENA__V1__HELLO__INIT;
    arena_peer_hello_env(&env, &hello, 1, 1, name);
    ck_assert(send_env(fd, &env));
    int pool_fd = -1;
    Arena__V1__Envelope *r = recv_env_fd(fd, &pool_fd);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->body_case, ARENA__V1__ENVELOPE__BODY_HELLO_REPLY);
    if (ret_client_id)
        *ret_client_id = r->hello_reply->client_id;
    arena__v1__envelope__free_unpacked(r, NULL);
    ck_assert_int_ge(pool_fd, 0);
    if (ret_pool_fd)
        *ret_pool_fd = pool_fd;
    else
        (void)close(pool_fd);
    return fd;
}

static Arena__V1__Envelope *roundtrip(int fd, Arena__V1__Envelope *env)
{
    ck_assert(send_env(fd, env));
    Arena__V1__Envelope *r = recv_env(fd);
    ck_assert_msg(r != NULL, "the daemon closed a well-behaved connection");
    ck_assert_uint_eq(r->request_id, env->request_id);
    return r;
}

static Arena__V1__Envelope *status_on(int fd)
{
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__StatusRequest req = ARENA__V1__STATUS_REQUEST__INIT;
    env.request_id = 77;
    env.body_case = ARENA__V1__ENVELOPE__BODY_STATUS;
    env.status = &req;
    Arena__V1__Envelope *r = roundtrip(fd, &env);
    ck_assert_int_eq(r->body_case, ARENA__V1__ENVELOPE__BODY_STATUS_REPLY);
    return r;
}

/* Leases size bytes; returns the lease id (and offset). */
static uint64_t lease_ok(int fd, uint64_t size, uint64_t *ret_offset)
{
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__LeaseRequest req = ARENA__V1__LEASE_REQUEST__INIT;
    req.size = size;
    env.request_id = 2;
    env.body_case = ARENA__V1__ENVELOPE__BODY_LEASE;
    env.lease = &req;
    Arena__V1__Envelope *r = roundtrip(fd, &env);
    ck_assert_msg(r->body_case == ARENA__V1__ENVELOPE__BODY_LEASE_REPLY,
                  "lease refused: body %d (%s)", (int)r->body_case,
                  r->body_case == ARENA__V1__ENVELOPE__BODY_ERROR ? r->error->message : "");
    uint64_t id = r->lease_reply->lease_id;
    if (ret_offset)
        *ret_offset = r->lease_reply->offset;
    arena__v1__envelope__free_unpacked(r, NULL);
    return id;
}

/* Sends a release; returns the reply (caller frees). */
static Arena__V1__Envelope *release_on(int fd, uint64_t lease_id)
{
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__ReleaseRequest req = ARENA__V1__RELEASE_REQUEST__INIT;
    req.lease_id = lease_id;
    env.request_id = 3;
    env.body_case = ARENA__V1__ENVELOPE__BODY_RELEASE;
    env.release = &req;
    return roundtrip(fd, &env);
}

static void release_ok(int fd, uint64_t lease_id)
{
    Arena__V1__Envelope *r = release_on(fd, lease_id);
    ck_assert_int_eq(r->body_case, ARENA__V1__ENVELOPE__BODY_RELEASE_REPLY);
    arena__v1__envelope__free_unpacked(r, NULL);
}

/* ---- the well-behaved observer ------------------------------------------------ */

typedef struct observer {
    int fd;
    int pool_fd;
    uint64_t client_id;
    uint64_t trips;
    uint64_t max_us;
    uint64_t sum_us;
} observer_t;

static void observer_open(observer_t *o)
{
    memset(o, 0, sizeof(*o));
    o->fd = connect_hello("observer", &o->client_id, &o->pool_fd);
}

/* One status, lease, write/read through the pool, release: all must work. */
static void observer_trip(observer_t *o)
{
    uint64_t t0 = now_us();
    Arena__V1__Envelope *st = status_on(o->fd);
    arena__v1__envelope__free_unpacked(st, NULL);
    uint64_t off;
    uint64_t id = lease_ok(o->fd, MiB, &off);
    uint8_t *p = mmap(NULL, MiB, PROT_READ | PROT_WRITE, MAP_SHARED, o->pool_fd, (off_t)off);
    ck_assert_ptr_ne(p, MAP_FAILED);
    memset(p, 0xa5, 4096);
    ck_assert_int_eq(p[4095], 0xa5);
    ck_assert_int_eq(munmap(p, MiB), 0);
    release_ok(o->fd, id);
    uint64_t us = now_us() - t0;
    o->trips++;
    o->sum_us += us;
    if (us > o->max_us)
        o->max_us = us;
}

static void observer_report(const observer_t *o, const char *test)
{
    printf("%s: observer made %" PRIu64 " round trips (status+lease+release), mean %" PRIu64
           " us, max %" PRIu64 " us\n",
           test, o->trips, o->trips ? o->sum_us / o->trips : 0, o->max_us);
}

static void observer_close(observer_t *o)
{
    (void)close(o->pool_fd);
    (void)close(o->fd);
}

/* ---- the daemon's state ------------------------------------------------------- */

typedef struct baseline {
    int fds;
    long rss_kib;
} baseline_t;

/* The daemon's fd count once it stops changing (round trips on the
 * observer's connection let its loop run pending close callbacks). */
static void status_round_trip(void *fd)
{
    Arena__V1__Envelope *st = status_on(*(int *)fd);
    arena__v1__envelope__free_unpacked(st, NULL);
    nap_ms(10);
}

static int stable_fds(observer_t *o)
{
    return arena_test_stable_fds(daemon_.pid, status_round_trip, &o->fd);
}

static void baseline_take(observer_t *o, baseline_t *b)
{
    b->fds = stable_fds(o);
    b->rss_kib = daemon_rss_kib();
}

/* Waits (bounded) until only the observer is connected, nothing but its
 * leases is leased, and the fd count is back; then compares with b. */
static void baseline_check(observer_t *o, const baseline_t *b, const char *test)
{
    Arena__V1__Envelope *st = NULL;
    for (int i = 0; i < 500; i++) {
        st = status_on(o->fd);
        if (st->status_reply->clients == 1 && st->status_reply->leased_bytes == 0)
            break;
        arena__v1__envelope__free_unpacked(st, NULL);
        st = NULL;
        nap_ms(10);
    }
    ck_assert_msg(st != NULL, "other clients or leased bytes never went away");
    arena__v1__envelope__free_unpacked(st, NULL);
    int fds = -1;
    for (int i = 0; i < 500; i++) {
        fds = arena_test_count_fds(daemon_.pid);
        if (fds == b->fds)
            break;
        nap_ms(10);
        st = status_on(o->fd);
        arena__v1__envelope__free_unpacked(st, NULL);
    }
    long rss = daemon_rss_kib();
    printf("%s: daemon fds %d -> %d, VmRSS %ld -> %ld KiB\n", test, b->fds, fds, b->rss_kib, rss);
    ck_assert_msg(fds == b->fds, "daemon fd count %d, baseline %d", fds, b->fds);
    ck_assert_msg(rss <= b->rss_kib + RSS_SLACK_KIB, "daemon VmRSS %ld KiB, baseline %ld KiB", rss,
                  b->rss_kib);
}

/* ---- random and mutated frames ----------------------------------------------- */

/* A valid request of a random kind, packed (frame header included). */
static uint8_t *random_request(unsigned *seed, size_t *ret_len)
{
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__Hello hello = ARENA__V1__HELLO__INIT;
    Arena__V1__LeaseRequest lease = ARENA__V1__LEASE_REQUEST__INIT;
    Arena__V1__ReleaseRequest release = ARENA__V1__RELEASE_REQUEST__INIT;
    Arena__V1__StatusRequest status = ARENA__V1__STATUS_REQUEST__INIT;
    Arena__V1__ListClientsRequest clients = ARENA__V1__LIST_CLIENTS_REQUEST__INIT;
    Arena__V1__ListLeasesRequest leases = ARENA__V1__LIST_LEASES_REQUEST__INIT;
    Arena__V1__ReclaimRequest reclaim = ARENA__V1__RECLAIM_REQUEST__INIT;
    Arena__V1__MetricsRequest metrics = ARENA__V1__METRICS_REQUEST__INIT;
    env.request_id = (uint64_t)rand_r(seed);
    switch (rand_r(seed) % 8) {
    case 0:
        arena_peer_hello_env(&env, &hello, env.request_id, 1, "hostile");
        break;
    case 1:
    case 2:
        lease.size = (uint64_t)(rand_r(seed) % (8 << 20));
        lease.wait_ms = rand_r(seed) % 3 == 0 ? rand_r(seed) % 100 : 0;
        env.body_case = ARENA__V1__ENVELOPE__BODY_LEASE;
        env.lease = &lease;
        break;
    case 3:
        release.lease_id = (uint64_t)(rand_r(seed) % 200);
        env.body_case = ARENA__V1__ENVELOPE__BODY_RELEASE;
        env.release = &release;
        break;
    case 4:
        env.body_case = ARENA__V1__ENVELOPE__BODY_STATUS;
        env.status = &status;
        break;
    case 5:
        env.body_case = ARENA__V1__ENVELOPE__BODY_LIST_CLIENTS;
        env.list_clients = &clients;
        break;
    case 6:
        leases.client_id = (uint64_t)(rand_r(seed) % 4);
        env.body_case = ARENA__V1__ENVELOPE__BODY_LIST_LEASES;
        env.list_leases = &leases;
        break;
    default:
        if (rand_r(seed) % 2) {
            reclaim.bytes = (uint64_t)rand_r(seed);
            env.body_case = ARENA__V1__ENVELOPE__BODY_RECLAIM;
            env.reclaim = &reclaim;
        } else {
            env.body_case = ARENA__V1__ENVELOPE__BODY_METRICS;
            env.metrics = &metrics;
        }
        break;
    }
    return pack_frame(&env, ret_len);
}

/* Flips, overwrites, cuts or extends a frame; sometimes its header too. */
static uint8_t *mutate(uint8_t *buf, size_t *len, unsigned *seed)
{
    int flips = 1 + rand_r(seed) % 4;
    for (int i = 0; i < flips; i++) {
        size_t at = 4 + (*len > 4 ? (size_t)rand_r(seed) % (*len - 4) : 0);
        if (at < *len)
            buf[at] ^= (uint8_t)(1u << (rand_r(seed) % 8));
    }
    switch (rand_r(seed) % 6) {
    case 0: /* cut, header kept: a half frame the timeout must clear */
        *len = 4 + (*len > 4 ? (size_t)rand_r(seed) % (*len - 4) : 0);
        break;
    case 1: { /* extend with junk, header adjusted */
        size_t extra = 1 + (size_t)rand_r(seed) % 64;
        uint8_t *n = realloc(buf, *len + extra);
        ck_assert_ptr_nonnull(n);
        buf = n;
        for (size_t i = 0; i < extra; i++)
            buf[*len + i] = (uint8_t)rand_r(seed);
        *len += extra;
        put_le32(buf, (uint32_t)(*len - 4));
        break;
    }
    case 2: /* the header lies */
        put_le32(buf, (uint32_t)rand_r(seed) % 256);
        break;
    default:
        break;
    }
    return buf;
}

START_TEST(test_mutated_frames_many_connections)
{
    enum { NCONN = 24, ROUNDS = 4000 };
    observer_t o;
    observer_open(&o);
    baseline_t b;
    baseline_take(&o, &b);
    unsigned seed = 0x5eed0001u;
    int conns[NCONN];
    for (int i = 0; i < NCONN; i++)
        conns[i] = rand_r(&seed) % 4 ? connect_hello("hostile", NULL, NULL) : connect_raw();
    unsigned reconnects = 0;
    for (int round = 0; round < ROUNDS; round++) {
        int k = rand_r(&seed) % NCONN;
        size_t len;
        uint8_t *buf;
        int kind = rand_r(&seed) % 10;
        if (kind < 5) {
            buf = random_request(&seed, &len);
            buf = mutate(buf, &len, &seed);
        } else if (kind < 8) {
            buf = random_request(&seed, &len); /* valid */
        } else {
            len = 1 + (size_t)rand_r(&seed) % 256;
            buf = malloc(len);
            ck_assert_ptr_nonnull(buf);
            for (size_t i = 0; i < len; i++)
                buf[i] = (uint8_t)rand_r(&seed);
        }
        bool alive = send_bytes(conns[k], buf, len, NULL, 0);
        free(buf);
        alive = drain(conns[k]) && alive;
        if (!alive || rand_r(&seed) % 200 == 0) {
            (void)close(conns[k]);
            conns[k] = connect_hello("hostile", NULL, NULL);
            reconnects++;
        }
        if (round % 100 == 0)
            observer_trip(&o);
    }
    for (int i = 0; i < NCONN; i++)
        (void)close(conns[i]);
    printf("mutated: %d frames over %d connections, %u reconnects\n", ROUNDS, NCONN, reconnects);
    ck_assert_uint_gt(reconnects, 0); /* the daemon did close some connections */
    observer_trip(&o);
    observer_report(&o, "mutated");
    baseline_check(&o, &b, "mutated");
    Arena__V1__Envelope *st = status_on(o.fd);
    ck_assert_uint_gt(st->status_reply->protocol_errors_total, 0);
    ck_assert_uint_gt(st->status_reply->leases_granted_total, o.trips);
    arena__v1__envelope__free_unpacked(st, NULL);
    observer_close(&o);
}
END_TEST

/* ---- huge lengths --------------------------------------------------------------- */

START_TEST(test_huge_lengths)
{
    static const uint32_t lengths[] = {65537, 1u << 20, 16u << 20, 0x7fffffffu, 0xffffffffu};
    enum { PER_LENGTH = 20 };
    observer_t o;
    observer_open(&o);
    baseline_t b;
    baseline_take(&o, &b);
    int conns[5 * PER_LENGTH];
    size_t n = 0;
    for (size_t l = 0; l < 5; l++)
        for (int i = 0; i < PER_LENGTH; i++) {
            int fd = i % 2 ? connect_hello("huge", NULL, NULL) : connect_raw();
            uint8_t buf[4 + 64];
            put_le32(buf, lengths[l]);
            memset(buf + 4, 0x08, 64);
            /* The header alone, or with the start of a payload. */
            ck_assert(send_bytes(fd, buf, i % 3 ? 4 : sizeof(buf), NULL, 0));
            conns[n++] = fd;
        }
    observer_trip(&o);
    /* Each gets ERROR_FRAME_TOO_LARGE, then the connection closes. */
    for (size_t i = 0; i < n; i++) {
        Arena__V1__Envelope *r = recv_env(conns[i]);
        ck_assert_msg(r != NULL, "connection %zu closed without an error", i);
        ck_assert_int_eq(r->body_case, ARENA__V1__ENVELOPE__BODY_ERROR);
        ck_assert_int_eq(r->error->code, ARENA__V1__ERROR_CODE__ERROR_FRAME_TOO_LARGE);
        arena__v1__envelope__free_unpacked(r, NULL);
        ck_assert_ptr_null(recv_env(conns[i]));
        (void)close(conns[i]);
    }
    /* Exactly the maximum is a frame: its payload may then never come. */
    int fd = connect_hello("max", NULL, NULL);
    uint8_t hdr[4];
    put_le32(hdr, 65536);
    ck_assert(send_bytes(fd, hdr, 4, NULL, 0));
    ck_assert_ptr_null(recv_env(fd)); /* frame_timeout_ms closes it */
    (void)close(fd);
    observer_trip(&o);
    observer_report(&o, "huge");
    baseline_check(&o, &b, "huge");
    observer_close(&o);
}
END_TEST

/* ---- stray fds ------------------------------------------------------------------- */

START_TEST(test_stray_fds)
{
    enum { NCONN = 16, MSGS = 40 };
    observer_t o;
    observer_open(&o);
    baseline_t b;
    baseline_take(&o, &b);
    unsigned seed = 0x5eed0003u;
    unsigned sent_fds = 0;
    for (int c = 0; c < NCONN; c++) {
        int fd = connect_raw();
        int said_hello = 0;
        for (int m = 0; m < MSGS; m++) {
            int fds[6];
            size_t nfds = 1 + (size_t)rand_r(&seed) % 6;
            for (size_t i = 0; i < nfds; i++) {
                switch (rand_r(&seed) % 5) {
                case 0:
                    fds[i] = memfd_create("stray", MFD_CLOEXEC);
                    break;
                case 1: {
                    int p[2];
                    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
                    (void)close(p[1]);
                    fds[i] = p[0];
                    break;
                }
                case 2:
                    fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
                    break;
                case 3: /* the connection itself: a cycle through the socket */
                    fds[i] = dup(fd);
                    break;
                default: /* another connection to the daemon */
                    fds[i] = connect_raw();
                    break;
                }
                ck_assert_int_ge(fds[i], 0);
            }
            Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
            Arena__V1__Hello hello = ARENA__V1__HELLO__INIT;
            Arena__V1__LeaseRequest lease = ARENA__V1__LEASE_REQUEST__INIT;
            Arena__V1__StatusRequest status = ARENA__V1__STATUS_REQUEST__INIT;
            if (!said_hello) {
                arena_peer_hello_env(&env, &hello, 1, 1, "stray");
                said_hello = 1;
            } else if (m % 2) {
                lease.size = 64 * 1024;
                env.request_id = (uint64_t)m;
                env.body_case = ARENA__V1__ENVELOPE__BODY_LEASE;
                env.lease = &lease;
            } else {
                env.request_id = (uint64_t)m;
                env.body_case = ARENA__V1__ENVELOPE__BODY_STATUS;
                env.status = &status;
            }
            ck_assert(send_env_fds(fd, &env, fds, nfds));
            sent_fds += (unsigned)nfds;
            for (size_t i = 0; i < nfds; i++)
                (void)close(fds[i]);
            /* Requests carrying fds are still answered. */
            Arena__V1__Envelope *r = recv_env(fd);
            ck_assert_msg(r != NULL, "the daemon closed a connection for a stray fd");
            ck_assert_int_ne(r->body_case, ARENA__V1__ENVELOPE__BODY_ERROR);
            arena__v1__envelope__free_unpacked(r, NULL);
        }
        (void)close(fd);
        if (c % 4 == 0)
            observer_trip(&o);
    }
    printf("stray: %u fds attached to %d requests\n", sent_fds, NCONN * MSGS);
    observer_report(&o, "stray");
    baseline_check(&o, &b, "stray");
    observer_close(&o);
}
END_TEST

/* ---- many idle connections ---------------------------------------------------------- */

static void restart_with_config(const char *text)
{
    int status = arena_test_daemon_stop(&daemon_);
    ck_assert_msg(status == 0, "the daemon did not exit cleanly (%d)", status);
    start_with_config(text);
}

/* How a connection the test left idle ended. */
enum { IDLE_OPEN, IDLE_REFUSED, IDLE_TIMED_OUT, IDLE_SHED };

/* Reads what the daemon said before closing conn: ERROR_LIMIT (refused at
 * accept), ERROR_TIMED_OUT (no hello in time), or nothing (a stalled half
 * frame is closed without a word). Fails the test on anything else. */
static int idle_outcome(int fd, bool half)
{
    Arena__V1__Envelope *r = recv_env(fd);
    if (!r) {
        ck_assert_msg(half, "an idle connection was closed without a word");
        return IDLE_SHED;
    }
    ck_assert_int_eq(r->body_case, ARENA__V1__ENVELOPE__BODY_ERROR);
    int code = r->error->code;
    arena__v1__envelope__free_unpacked(r, NULL);
    ck_assert_ptr_null(recv_env(fd));
    if (code == ARENA__V1__ERROR_CODE__ERROR_LIMIT)
        return IDLE_REFUSED;
    /* A half-sender may have timed out before its two bytes were sent. */
    ck_assert_msg(code == ARENA__V1__ERROR_CODE__ERROR_TIMED_OUT, "unexpected error code %d", code);
    return IDLE_TIMED_OUT;
}

/* Thousands of connections opened and left idle: the daemon serves at most
 * max_clients at once and refuses the rest with ERROR_LIMIT; the ones it
 * serves are closed after hello_timeout_ms (ERROR_TIMED_OUT), or, if they
 * started a frame, after frame_timeout_ms. A client that said hello stays
 * however long it idles. Meanwhile the observer is served, and afterwards
 * the daemon's fds are back where they were. */
START_TEST(test_idle_connections)
{
    enum { NCONN = 2000 };
    restart_with_config("budget = 256M\nheap_size = 512M\nframe_timeout_ms = 500\n"
                        "hello_timeout_ms = 3000\nmax_clients = 256\ndecay_ms = 0\n");
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < NCONN + 256) {
        rl.rlim_cur = rl.rlim_max < NCONN + 256 ? rl.rlim_max : NCONN + 256;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    ck_assert_msg(rl.rlim_cur >= NCONN + 64, "RLIMIT_NOFILE hard limit %lu is too low",
                  (unsigned long)rl.rlim_max);
    observer_t o;
    observer_open(&o);
    baseline_t b;
    baseline_take(&o, &b);
    int quiet = connect_hello("quiet", NULL, NULL); /* said hello, then idles */
    int *conns = calloc(NCONN, sizeof(int));
    int *outcome = calloc(NCONN, sizeof(int));
    ck_assert_ptr_nonnull(conns);
    ck_assert_ptr_nonnull(outcome);
    for (int i = 0; i < NCONN; i++) {
        conns[i] = connect_raw();
        if (i % 200 == 0)
            observer_trip(&o);
    }
    /* Every fourth starts a frame header and stops (a refused one may
     * already be closed: the send result does not matter). */
    for (int i = 0; i < NCONN; i += 4) {
        uint8_t two[2] = {16, 0};
        (void)send_bytes(conns[i], two, sizeof(two), NULL, 0);
    }
    /* Every connection must end, one way or another, with the observer
     * served all along. Bounded: hello_timeout_ms is 3 s. */
    int open = NCONN;
    struct pollfd *pfds = calloc(NCONN, sizeof(*pfds));
    ck_assert_ptr_nonnull(pfds);
    for (int round = 0; round < 600 && open > 0; round++) {
        for (int i = 0; i < NCONN; i++)
            pfds[i] =
                (struct pollfd){.fd = outcome[i] == IDLE_OPEN ? conns[i] : -1, .events = POLLIN};
        (void)poll(pfds, NCONN, 100);
        for (int i = 0; i < NCONN; i++) {
            if (outcome[i] != IDLE_OPEN || !(pfds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            outcome[i] = idle_outcome(conns[i], i % 4 == 0);
            (void)close(conns[i]);
            open--;
        }
        observer_trip(&o);
    }
    free(pfds);
    int refused = 0, timed_out = 0, shed = 0;
    for (int i = 0; i < NCONN; i++) {
        refused += outcome[i] == IDLE_REFUSED;
        timed_out += outcome[i] == IDLE_TIMED_OUT;
        shed += outcome[i] == IDLE_SHED;
    }
    printf("idle: %d connections: %d refused (max_clients), %d closed by hello_timeout_ms, "
           "%d by frame_timeout_ms, %d still open\n",
           NCONN, refused, timed_out, shed, open);
    ck_assert_msg(open == 0, "%d idle connections were never closed", open);
    ck_assert_int_gt(refused, 0);
    ck_assert_int_gt(timed_out, 0);
    ck_assert_int_gt(shed, 0);
    free(conns);
    free(outcome);
    /* The client that said hello outlived every timeout and is served. */
    Arena__V1__Envelope *st = status_on(quiet);
    arena__v1__envelope__free_unpacked(st, NULL);
    (void)close(quiet);
    /* Once they are gone, new connections are served again. */
    int fd = connect_hello("after", NULL, NULL);
    (void)close(fd);
    observer_trip(&o);
    observer_report(&o, "idle");
    baseline_check(&o, &b, "idle");
    observer_close(&o);
}
END_TEST

/* ---- a client that never reads -------------------------------------------------------- */

/* One client that floods metrics requests and never reads the replies: the
 * daemon's queue for it grows until the per-connection cap, then the daemon
 * drops it. Returns the number of requests sent. */
static unsigned deaf_round(observer_t *o)
{
    int deaf = connect_hello("deaf", NULL, NULL);
    (void)lease_ok(deaf, 4 * MiB, NULL);
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__MetricsRequest req = ARENA__V1__METRICS_REQUEST__INIT;
    env.request_id = 9;
    env.body_case = ARENA__V1__ENVELOPE__BODY_METRICS;
    env.metrics = &req;
    size_t len;
    uint8_t *frame = pack_frame(&env, &len);
    uint8_t *batch = malloc(len * 64);
    ck_assert_ptr_nonnull(batch);
    for (int i = 0; i < 64; i++)
        memcpy(batch + (size_t)i * len, frame, len);
    free(frame);
    bool dropped = false;
    unsigned sent = 0;
    for (int i = 0; i < 20000 && !dropped; i++) {
        if (!send_bytes(deaf, batch, len * 64, NULL, 0)) {
            dropped = true;
            break;
        }
        sent += 64;
        if (i % 50 == 0)
            observer_trip(o);
    }
    free(batch);
    ck_assert_msg(dropped, "the daemon never stopped taking requests from a deaf client");
    /* A full socket alone proves nothing: reading what was queued must end
     * in EOF, which only comes if the daemon closed its end. */
    bool eof = false;
    for (int i = 0; i < 100 && !eof; i++) {
        struct pollfd pfd = {.fd = deaf, .events = POLLIN};
        (void)poll(&pfd, 1, 100);
        eof = !drain(deaf);
    }
    ck_assert_msg(eof, "the daemon never dropped a client that does not read");
    (void)close(deaf);
    observer_trip(o);
    return sent;
}

START_TEST(test_deaf_client)
{
    observer_t o;
    observer_open(&o);
    baseline_t b;
    baseline_take(&o, &b);
    unsigned sent = deaf_round(&o);
    printf("deaf: %u requests sent before the daemon dropped the connection\n", sent);
    /* The deaf client's lease went back with it. */
    baseline_check(&o, &b, "deaf");
    /* The queue's memory may stay in the daemon's malloc, but a second deaf
     * client must reuse it rather than add as much again. */
    long rss1 = daemon_rss_kib();
    sent = deaf_round(&o);
    baseline_check(&o, &b, "deaf again");
    long rss2 = daemon_rss_kib();
    printf("deaf: VmRSS after the first deaf client %ld KiB, after the second %ld KiB\n", rss1,
           rss2);
#ifndef HOSTILE_DAEMON_ASAN /* ASan's quarantine keeps freed memory from reuse */
    ck_assert_msg(rss2 <= rss1 + 4096, "a second deaf client grew the daemon's RSS by %ld KiB",
                  rss2 - rss1);
#endif
    observer_report(&o, "deaf");
    observer_close(&o);
}
END_TEST

/* ---- requests in flight ----------------------------------------------------------------- */

/* A client that pipelines status requests as fast as it can and never reads
 * a reply. max_requests_in_flight makes the daemon stop reading it once 16
 * replies wait unwritten, so the flooder ends up blocked in send() with the
 * daemon holding a bounded amount for it (not max_reply_queue's 8 MiB);
 * when it still reads nothing for frame_timeout_ms, the daemon drops it.
 * The observer is served throughout. */
START_TEST(test_flood_never_reads)
{
    restart_with_config("budget = 256M\nheap_size = 512M\nframe_timeout_ms = 2000\n"
                        "max_requests_in_flight = 16\nmax_reply_queue = 8M\ndecay_ms = 0\n");
    observer_t o;
    observer_open(&o);
    baseline_t b;
    baseline_take(&o, &b);
    int flood = connect_hello("flood", NULL, NULL);
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__MetricsRequest req = ARENA__V1__METRICS_REQUEST__INIT;
    env.request_id = 9;
    env.body_case = ARENA__V1__ENVELOPE__BODY_METRICS;
    env.metrics = &req;
    size_t len;
    uint8_t *frame = pack_frame(&env, &len);
    /* Send until the socket stays full: the daemon stopped reading. */
    unsigned sent = 0;
    for (int blocked_ms = 0; blocked_ms < 300;) {
        ssize_t n = send(flood, frame, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n == (ssize_t)len) {
            sent++;
            blocked_ms = 0;
            if (sent % 500 == 0)
                observer_trip(&o);
            continue;
        }
        ck_assert_msg(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK),
                      "the daemon dropped the flooder before throttling it (%s)",
                      n < 0 ? strerror(errno) : "short send");
        observer_trip(&o);
        nap_ms(10);
        blocked_ms += 10;
    }
    free(frame);
    long rss = daemon_rss_kib();
    /* Still connected, just not read from: the observer is served. */
    for (int i = 0; i < 20; i++)
        observer_trip(&o);
    printf("flood: %u requests sent before the daemon stopped reading; daemon VmRSS %ld -> %ld "
           "KiB while throttled\n",
           sent, b.rss_kib, rss);
#ifndef HOSTILE_DAEMON_ASAN
    /* max_reply_queue (8 MiB) would allow far more. */
    ck_assert_msg(rss <= b.rss_kib + 4096, "daemon VmRSS grew by %ld KiB for one flooder",
                  rss - b.rss_kib);
#endif
    /* It reads nothing: frame_timeout_ms later it is gone. */
    bool gone = false;
    for (int i = 0; i < 200 && !gone; i++) {
        struct pollfd pfd = {.fd = flood, .events = POLLRDHUP};
        gone = poll(&pfd, 1, 50) == 1 && (pfd.revents & (POLLHUP | POLLRDHUP));
        observer_trip(&o);
    }
    ck_assert_msg(gone, "the daemon never dropped a throttled client that reads nothing");
    (void)close(flood);
    observer_report(&o, "flood");
    baseline_check(&o, &b, "flood");
    observer_close(&o);
}
END_TEST

/* A client that pipelines many requests and reads slowly is throttled, not
 * dropped, and gets every reply in order. */
START_TEST(test_pipeline_throttled_not_dropped)
{
    enum { NREQ = 3000 };
    restart_with_config("budget = 256M\nheap_size = 512M\nmax_requests_in_flight = 8\n"
                        "decay_ms = 0\n");
    int fd = connect_hello("pipeline", NULL, NULL);
    size_t len;
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__StatusRequest req = ARENA__V1__STATUS_REQUEST__INIT;
    env.body_case = ARENA__V1__ENVELOPE__BODY_STATUS;
    env.status = &req;
    uint64_t next_reply = 1;
    unsigned sent = 0;
    while (next_reply <= NREQ) {
        if (sent < NREQ) {
            env.request_id = sent + 1;
            uint8_t *frame = pack_frame(&env, &len);
            ssize_t n = send(fd, frame, len, MSG_NOSIGNAL | MSG_DONTWAIT);
            free(frame);
            if (n == (ssize_t)len) {
                sent++;
                continue;
            }
            ck_assert_msg(n < 0 && errno == EAGAIN, "send: %s", strerror(errno));
        }
        /* Blocked (or done sending): read one reply. */
        Arena__V1__Envelope *r = recv_env(fd);
        ck_assert_msg(r != NULL, "a pipelining client was dropped after %" PRIu64 " replies",
                      next_reply - 1);
        ck_assert_int_eq(r->body_case, ARENA__V1__ENVELOPE__BODY_STATUS_REPLY);
        ck_assert_uint_eq(r->request_id, next_reply);
        arena__v1__envelope__free_unpacked(r, NULL);
        next_reply++;
    }
    printf("pipeline: %d requests, every reply in order\n", NREQ);
    (void)close(fd);
}
END_TEST

/* ---- out of file descriptors ------------------------------------------------------------- */

/* The daemon's RLIMIT_NOFILE is cut (prlimit) to a few more than it uses,
 * and many connections are opened and left idle: the ones beyond the limit
 * are refused with ERROR_LIMIT naming the descriptors (the spare-fd path,
 * not a listener that spins); a hello that cannot get its reply's
 * descriptors closes rather than hangs. The observer is served throughout;
 * once the connections go, the daemon is back to its fd count and takes
 * new clients. */
START_TEST(test_out_of_fds)
{
    enum { NCONN = 40, HEADROOM = 12 };
    observer_t o;
    observer_open(&o);
    baseline_t b;
    baseline_take(&o, &b);
    struct rlimit old, low;
    ck_assert_int_eq(prlimit(daemon_.pid, RLIMIT_NOFILE, NULL, &old), 0);
    /* The soft limit only: raising a hard one back needs CAP_SYS_RESOURCE. */
    low.rlim_cur = (rlim_t)(b.fds + HEADROOM);
    low.rlim_max = old.rlim_max;
    ck_assert_int_eq(prlimit(daemon_.pid, RLIMIT_NOFILE, &low, NULL), 0);
    int conns[NCONN];
    bool done[NCONN];
    int refused = 0;
    for (int i = 0; i < NCONN; i++) {
        conns[i] = connect_raw();
        done[i] = false;
        observer_trip(&o);
    }
    for (int quiet = 0; quiet < 4;) {
        int found = 0;
        for (int i = 0; i < NCONN; i++) {
            struct pollfd pfd = {.fd = conns[i], .events = POLLIN};
            if (done[i] || poll(&pfd, 1, 0) == 0)
                continue;
            Arena__V1__Envelope *r = recv_env(conns[i]);
            ck_assert_msg(r != NULL, "connection %d closed without a word", i);
            ck_assert_int_eq(r->body_case, ARENA__V1__ENVELOPE__BODY_ERROR);
            ck_assert_int_eq(r->error->code, ARENA__V1__ERROR_CODE__ERROR_LIMIT);
            ck_assert_msg(strstr(r->error->message, "file descriptors") != NULL, "%s",
                          r->error->message);
            arena__v1__envelope__free_unpacked(r, NULL);
            done[i] = true;
            refused++;
            found++;
        }
        quiet = found ? 0 : quiet + 1;
        observer_trip(&o);
        nap_ms(20);
    }
    int accepted = NCONN - refused;
    /* A hello now: refused, served, or closed (no fds for the reply's pool
     * and control descriptors), but answered one way or another. */
    int late = connect_raw();
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__Hello hello = ARENA__V1__HELLO__INIT;
    arena_peer_hello_env(&env, &hello, 1, 1, "late");
    (void)send_env(late, &env);
    int pool_fd = -1;
    Arena__V1__Envelope *r = recv_env_fd(late, &pool_fd); /* fails on a hang */
    const char *late_got = !r                                                      ? "closed"
                           : r->body_case == ARENA__V1__ENVELOPE__BODY_HELLO_REPLY ? "served"
                                                                                   : "refused";
    if (r)
        arena__v1__envelope__free_unpacked(r, NULL);
    if (pool_fd >= 0)
        (void)close(pool_fd);
    (void)close(late);
    printf("nofd: RLIMIT_NOFILE %d: %d idle connections accepted, %d refused (EMFILE); "
           "a hello then: %s\n",
           b.fds + HEADROOM, accepted, refused, late_got);
    (void)fflush(stdout);
    ck_assert_int_gt(accepted, 0);
    ck_assert_int_gt(refused, 0);
    for (int i = 0; i < NCONN; i++)
        (void)close(conns[i]);
    observer_trip(&o);
    ck_assert_int_eq(prlimit(daemon_.pid, RLIMIT_NOFILE, &old, NULL), 0);
    int fd = connect_hello("after", NULL, NULL);
    (void)close(fd);
    observer_report(&o, "nofd");
    baseline_check(&o, &b, "nofd");
    observer_close(&o);
}
END_TEST

/* ---- out of memory ------------------------------------------------------------------------ */

#ifndef HOSTILE_DAEMON_ASAN
static long daemon_vmsize_kib(void)
{
    char path[64];
    (void)snprintf(path, sizeof(path), "/proc/%ld/status", (long)daemon_.pid);
    FILE *f = fopen(path, "re");
    ck_assert_ptr_nonnull(f);
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmSize: %ld kB", &kib) == 1)
            break;
    (void)fclose(f);
    ck_assert_int_gt(kib, 0);
    return kib;
}
#endif

/* The daemon's address space is capped (RLIMIT_AS, by prlimit) at what it
 * maps now plus a little, then new clients say hello and old ones send
 * frames of 60 KiB: whatever cannot be allocated is answered with an error
 * or a closed connection, never a hang or a crash, and once the cap is lifted
 * the daemon serves as before with its fds back where they were. */
START_TEST(test_out_of_memory)
{
#ifdef HOSTILE_DAEMON_ASAN
    arena_test_skip("test_out_of_memory: ASan's shadow memory does not fit an address-space cap");
    return;
#else
    enum { NOLD = 24, NNEW = 8, BIG = 60 * 1024 };
    observer_t o;
    observer_open(&o);
    baseline_t b;
    baseline_take(&o, &b);
    int old_conns[NOLD];
    for (int i = 0; i < NOLD; i++)
        old_conns[i] = connect_hello("nomem-old", NULL, NULL);
    /* Big frames: a status request padded with an unknown length-delimited
     * field (number 1000), which the daemon must buffer and decode. */
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__StatusRequest st_req = ARENA__V1__STATUS_REQUEST__INIT;
    env.request_id = 5;
    env.body_case = ARENA__V1__ENVELOPE__BODY_STATUS;
    env.status = &st_req;
    size_t packed = arena__v1__envelope__get_packed_size(&env);
    uint8_t *big = malloc(4 + BIG);
    ck_assert_ptr_nonnull(big);
    put_le32(big, BIG);
    (void)arena__v1__envelope__pack(&env, big + 4);
    size_t pad = BIG - packed - 5; /* tag (2 bytes) and length (3 bytes) */
    uint8_t *p = big + 4 + packed;
    *p++ = 0xc2; /* (1000 << 3) | 2 as a varint */
    *p++ = 0x3e;
    *p++ = (uint8_t)(0x80 | (pad & 0x7f));
    *p++ = (uint8_t)(0x80 | ((pad >> 7) & 0x7f));
    *p++ = (uint8_t)(pad >> 14);
    memset(p, 0x5a, pad);
    /* Before the squeeze, such a frame is an ordinary status request. */
    ck_assert(send_bytes(old_conns[0], big, 4 + BIG, NULL, 0));
    Arena__V1__Envelope *first = recv_env(old_conns[0]);
    ck_assert_ptr_nonnull(first);
    ck_assert_int_eq(first->body_case, ARENA__V1__ENVELOPE__BODY_STATUS_REPLY);
    arena__v1__envelope__free_unpacked(first, NULL);
    struct rlimit old, low;
    ck_assert_int_eq(prlimit(daemon_.pid, RLIMIT_AS, NULL, &old), 0);
    low.rlim_cur = (rlim_t)(daemon_vmsize_kib() + 1024) * 1024;
    low.rlim_max = old.rlim_max;
    ck_assert_int_eq(prlimit(daemon_.pid, RLIMIT_AS, &low, NULL), 0);
    int answered = 0, errors = 0, closed = 0;
    /* Half of each frame first, so that every connection holds a buffer at
     * once (more than the cap leaves), then the rest. */
    bool alive[NOLD];
    for (int i = 0; i < NOLD; i++)
        alive[i] = send_bytes(old_conns[i], big, 4 + BIG / 2, NULL, 0);
    observer_trip(&o);
    for (int i = 0; i < NOLD; i++) {
        if (!alive[i] || !send_bytes(old_conns[i], big + 4 + BIG / 2, BIG - BIG / 2, NULL, 0)) {
            closed++;
            continue;
        }
        Arena__V1__Envelope *r = recv_env(old_conns[i]); /* fails on a hang */
        if (!r) {
            closed++;
            continue;
        }
        if (r->body_case == ARENA__V1__ENVELOPE__BODY_ERROR)
            errors++;
        else
            answered++;
        arena__v1__envelope__free_unpacked(r, NULL);
    }
    int helloed = 0;
    int new_conns[NNEW];
    for (int i = 0; i < NNEW; i++) {
        new_conns[i] = connect_raw();
        Arena__V1__Envelope henv = ARENA__V1__ENVELOPE__INIT;
        Arena__V1__Hello hello = ARENA__V1__HELLO__INIT;
        arena_peer_hello_env(&henv, &hello, 1, 1, "nomem-new");
        (void)send_env(new_conns[i], &henv);
        int pool_fd = -1;
        Arena__V1__Envelope *r = recv_env_fd(new_conns[i], &pool_fd); /* fails on a hang */
        if (pool_fd >= 0)
            (void)close(pool_fd);
        if (!r)
            closed++;
        else if (r->body_case == ARENA__V1__ENVELOPE__BODY_HELLO_REPLY)
            helloed++;
        else
            errors++;
        if (r)
            arena__v1__envelope__free_unpacked(r, NULL);
    }
    free(big);
    ck_assert_int_eq(prlimit(daemon_.pid, RLIMIT_AS, &old, NULL), 0);
    printf("nomem: RLIMIT_AS VmSize+1 MiB: %d big frames answered, %d hellos served, %d error "
           "replies, %d connections closed\n",
           answered, helloed, errors, closed);
    for (int i = 0; i < NOLD; i++)
        (void)close(old_conns[i]);
    for (int i = 0; i < NNEW; i++)
        (void)close(new_conns[i]);
    observer_trip(&o);
    int fd = connect_hello("after", NULL, NULL);
    (void)close(fd);
    observer_report(&o, "nomem");
    baseline_check(&o, &b, "nomem");
    observer_close(&o);
#endif
}
END_TEST

/* ---- a second uid ------------------------------------------------------------------------ */

/* The child's checks, as exit codes (the test's process owns Check). */
enum {
    UID_OK = 0,
    UID_SETUID = 10,
    UID_CONNECT,
    UID_SAME_POOL,
    UID_SEES_LEASES,
    UID_RELEASED,
    UID_RECLAIMED,
    UID_EVENTS,
    UID_LEASES_OF_OTHER,
};

static int second_uid_child(uint64_t victim_client, const uint64_t *victim_leases, size_t nleases,
                            ino_t victim_pool_ino)
{
    if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0 || getuid() != 65534)
        return UID_SETUID;
    uint64_t me;
    int pool_fd;
    int fd = connect_hello("nobody", &me, &pool_fd);
    if (fd < 0)
        return UID_CONNECT;
    char link[64];
    struct stat st;
    (void)snprintf(link, sizeof(link), "/proc/self/fd/%d", pool_fd);
    if (stat(link, &st) < 0 || st.st_ino == victim_pool_ino)
        return UID_SAME_POOL;
    /* ListLeases (all the caller may see) shows none of the victim's. */
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__ListLeasesRequest ll = ARENA__V1__LIST_LEASES_REQUEST__INIT;
    env.request_id = 5;
    env.body_case = ARENA__V1__ENVELOPE__BODY_LIST_LEASES;
    env.list_leases = &ll;
    Arena__V1__Envelope *r = roundtrip(fd, &env);
    if (r->body_case != ARENA__V1__ENVELOPE__BODY_LIST_LEASES_REPLY)
        return UID_SEES_LEASES;
    for (size_t i = 0; i < r->list_leases_reply->n_leases; i++)
        if (r->list_leases_reply->leases[i]->client_id != me)
            return UID_SEES_LEASES;
    arena__v1__envelope__free_unpacked(r, NULL);
    /* Naming the victim: an error, or a list without its leases. */
    ll.client_id = victim_client;
    r = roundtrip(fd, &env);
    if (r->body_case == ARENA__V1__ENVELOPE__BODY_LIST_LEASES_REPLY) {
        if (r->list_leases_reply->n_leases != 0)
            return UID_LEASES_OF_OTHER;
    } else if (r->body_case != ARENA__V1__ENVELOPE__BODY_ERROR ||
               (r->error->code != ARENA__V1__ERROR_CODE__ERROR_PERMISSION &&
                r->error->code != ARENA__V1__ERROR_CODE__ERROR_NOT_FOUND))
        return UID_LEASES_OF_OTHER;
    arena__v1__envelope__free_unpacked(r, NULL);
    /* Release of the victim's leases: not found or not owner. */
    for (size_t i = 0; i < nleases; i++) {
        r = release_on(fd, victim_leases[i]);
        if (r->body_case != ARENA__V1__ENVELOPE__BODY_ERROR ||
            (r->error->code != ARENA__V1__ERROR_CODE__ERROR_NOT_FOUND &&
             r->error->code != ARENA__V1__ERROR_CODE__ERROR_NOT_OWNER))
            return UID_RELEASED;
        arena__v1__envelope__free_unpacked(r, NULL);
    }
    /* Admin: reclaim from the victim is refused. */
    Arena__V1__Envelope env2 = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__ReclaimRequest rc = ARENA__V1__RECLAIM_REQUEST__INIT;
    rc.client_id = victim_client;
    env2.request_id = 6;
    env2.body_case = ARENA__V1__ENVELOPE__BODY_RECLAIM;
    env2.reclaim = &rc;
    r = roundtrip(fd, &env2);
    if (r->body_case != ARENA__V1__ENVELOPE__BODY_ERROR ||
        r->error->code != ARENA__V1__ERROR_CODE__ERROR_PERMISSION)
        return UID_RECLAIMED;
    arena__v1__envelope__free_unpacked(r, NULL);
    /* The event log names every client: privileged callers only. */
    Arena__V1__Envelope env3 = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__EventsRequest ev = ARENA__V1__EVENTS_REQUEST__INIT;
    env3.request_id = 7;
    env3.body_case = ARENA__V1__ENVELOPE__BODY_EVENTS;
    env3.events = &ev;
    r = roundtrip(fd, &env3);
    if (r->body_case != ARENA__V1__ENVELOPE__BODY_ERROR ||
        r->error->code != ARENA__V1__ERROR_CODE__ERROR_PERMISSION)
        return UID_EVENTS;
    arena__v1__envelope__free_unpacked(r, NULL);
    /* Its own lease works, from its own pool. */
    (void)lease_ok(fd, MiB, NULL);
    (void)close(pool_fd);
    (void)close(fd);
    return UID_OK;
}

START_TEST(test_second_uid)
{
    if (geteuid() != 0) {
        arena_test_skip("test_second_uid: needs root to drop to uid 65534");
        return;
    }
    /* the fixture's directory is 0700: let nobody reach the socket. */
    ck_assert_int_eq(chmod(daemon_.dir, 0711), 0);
    uint64_t victim;
    int pool_fd;
    int fd = connect_hello("victim", &victim, &pool_fd);
    uint64_t leases[3];
    uint64_t off0;
    for (int i = 0; i < 3; i++)
        leases[i] = lease_ok(fd, 2 * MiB, i == 0 ? &off0 : NULL);
    uint8_t *p = mmap(NULL, 2 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED, pool_fd, (off_t)off0);
    ck_assert_ptr_ne(p, MAP_FAILED);
    memset(p, 0x3c, 2 * MiB);
    struct stat st;
    ck_assert_int_eq(fstat(pool_fd, &st), 0);
    (void)fflush(stdout);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0)
        _exit(second_uid_child(victim, leases, 3, st.st_ino));
    int status;
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert_msg(WIFEXITED(status), "the nobody child died");
    ck_assert_msg(WEXITSTATUS(status) == UID_OK, "second uid check %d failed", WEXITSTATUS(status));
    /* The victim's leases and data are untouched. */
    for (size_t i = 0; i < 2 * MiB; i += 4096)
        ck_assert_int_eq(p[i], 0x3c);
    ck_assert_int_eq(munmap(p, 2 * MiB), 0);
    for (int i = 0; i < 3; i++)
        release_ok(fd, leases[i]);
    (void)close(pool_fd);
    (void)close(fd);
    printf("second uid: uid 65534 got its own pool, saw and released none of uid 0's 3 leases, "
           "reclaim and events refused\n");
}
END_TEST

static Suite *hostile_suite(void)
{
    Suite *s = suite_create("hostile");
    TCase *tc = tcase_create("hostile");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_mutated_frames_many_connections);
    tcase_add_test(tc, test_huge_lengths);
    tcase_add_test(tc, test_stray_fds);
    tcase_add_test(tc, test_idle_connections);
    tcase_add_test(tc, test_deaf_client);
    tcase_add_test(tc, test_flood_never_reads);
    tcase_add_test(tc, test_pipeline_throttled_not_dropped);
    tcase_add_test(tc, test_out_of_fds);
    tcase_add_test(tc, test_out_of_memory);
    tcase_add_test(tc, test_second_uid);
    suite_add_tcase(s, tc);
    return s;
}

ARENA_TEST_MAIN(hostile_suite)
