/* SPDX-License-Identifier: MIT
 *
 * test_dispatch.c -- the connection, decoder and dispatcher over a socketpair,
 * in one process: a real libuv loop, a real lease manager on real heaps, and
 * a client end the test writes raw bytes into.
 *
 * Besides a few scripted exchanges, a seeded fuzz loop sends valid requests,
 * mutated requests, bogus lengths and garbage, reconnecting whenever the
 * daemon side closes. Whatever arrives, the manager stays consistent and,
 * once every connection is gone, holds no lease and no client. Under ASan and
 * UBSan this is the decoder's memory-safety test.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "check_main.h"
#include "peer.h"
#include "admin.h"
#include "arena.pb-c.h"
#include "conn.h"
#include "dispatch.h"
#include "fdpass.h"
#include "lease.h"
#include "log.h"

#define MiB (1ull << 20)

static uv_loop_t loop;
static ad_leases_t *mgr;
static ad_admin_t *adm;
static ad_dispatch_t *disp;
static int open_conns;

typedef struct peer {
    int fd;      /* the test's end */
    bool closed; /* the daemon side is gone */
} peer_t;

static void cb_frame(ad_conn_t *conn, const uint8_t *payload, size_t len, int fd, void *ctx)
{
    (void)ctx;
    ad_session_frame(ad_conn_get_data(conn), payload, len, fd, uv_now(&loop));
    (void)ad_dispatch_serve_waiters(disp, uv_now(&loop));
}

static void cb_oversize(ad_conn_t *conn, size_t len, void *ctx)
{
    (void)ctx;
    ad_session_oversize(ad_conn_get_data(conn), len);
}

static void cb_close(ad_conn_t *conn, int reason, void *ctx)
{
    peer_t *p = ctx;
    ad_session_free(ad_conn_get_data(conn), reason, uv_now(&loop));
    p->closed = true;
    open_conns--;
}

static void setup(void)
{
    ad_log_set_level(AD_LOG_ERROR);
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ad_leases_config_t lc = {.budget = 64 * MiB,
                             .heap_size = 128 * MiB,
                             .small_limit = 4 * MiB,
                             .decay_ms = 10,
                             .max_leases_per_client = 50};
    ck_assert_int_eq(ad_leases_new(&lc, &mgr), 0);
    ck_assert_int_eq(ad_admin_new(mgr, "/test", 0, &adm), 0);
    ad_dispatch_config_t dc = {.max_frame = 4096};
    ck_assert_int_eq(ad_dispatch_new(&dc, mgr, adm, &disp), 0);
    open_conns = 0;
}

static void teardown(void)
{
    ad_dispatch_free(disp);
    ad_admin_free(adm);
    ad_leases_free(mgr);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}

static void pump(void)
{
    for (int i = 0; i < 8; i++)
        (void)uv_run(&loop, UV_RUN_NOWAIT);
}

static void peer_open(peer_t *p)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
    static const ad_conn_callbacks_t cbs = {
        .on_frame = cb_frame, .on_oversize = cb_oversize, .on_close = cb_close};
    ad_conn_limits_t limits = {.max_frame = 4096, .max_queued = 1 * MiB};
    ad_conn_t *conn;
    p->fd = sv[1];
    p->closed = false;
    ck_assert_int_eq(ad_conn_new(&loop, sv[0], &limits, &cbs, p, &conn), 0);
    ad_session_t *session;
    ck_assert_int_eq(ad_session_new(disp, conn, &session), 0);
    ad_conn_set_data(conn, session);
    open_conns++;
}

static void peer_close(peer_t *p)
{
    if (p->fd >= 0)
        (void)close(p->fd);
    p->fd = -1;
    for (int i = 0; i < 100 && !p->closed; i++)
        pump();
    ck_assert(p->closed);
}

/* Writes everything, pumping the loop while the socket is full. */
static bool peer_write(peer_t *p, const void *buf, size_t len)
{
    const uint8_t *b = buf;
    while (len > 0) {
        ssize_t n = send(p->fd, b, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN) {
            pump();
            /* Drain replies so the daemon side can keep writing. */
            char sink[65536];
            while (recv(p->fd, sink, sizeof(sink), MSG_DONTWAIT) > 0) {
            }
            if (p->closed)
                return false;
            continue;
        }
        if (n < 0)
            return false; /* EPIPE: the daemon side closed */
        b += n;
        len -= (size_t)n;
    }
    return true;
}

static void peer_send_env(peer_t *p, const Arena__V1__Envelope *env)
{
    size_t len;
    uint8_t *buf = arena_peer_pack(env, &len);
    ck_assert_ptr_nonnull(buf);
    ck_assert(peer_write(p, buf, len));
    free(buf);
}

/* Pumps until one whole reply arrived; returns it (and a passed fd). */
static Arena__V1__Envelope *peer_recv(peer_t *p, int *ret_fd)
{
    uint8_t buf[1 << 16];
    size_t got = 0;
    for (int i = 0; i < 1000; i++) {
        pump();
        ssize_t n = arena__recv_with_fds(p->fd, buf + got, sizeof(buf) - got, ret_fd,
                                         ret_fd ? 1 : 0, MSG_DONTWAIT);
        if (n == -EAGAIN)
            continue;
        ck_assert_int_gt(n, 0);
        got += (size_t)n;
        if (got >= 4) {
            uint32_t len = (uint32_t)buf[0] | (uint32_t)buf[1] << 8 | (uint32_t)buf[2] << 16 |
                           (uint32_t)buf[3] << 24;
            if (got >= 4 + len) {
                ck_assert_uint_eq(got, 4 + len); /* one request, one reply */
                Arena__V1__Envelope *env = arena__v1__envelope__unpack(NULL, len, buf + 4);
                ck_assert_ptr_nonnull(env);
                return env;
            }
        }
    }
    ck_abort_msg("no reply");
    return NULL;
}

static void send_hello(peer_t *p)
{
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__Hello hello = ARENA__V1__HELLO__INIT;
    arena_peer_hello_env(&env, &hello, 1, 1, "unit");
    peer_send_env(p, &env);
}

START_TEST(test_hello_lease_release)
{
    peer_t p;
    peer_open(&p);
    send_hello(&p);
    int pool_fd = -1;
    Arena__V1__Envelope *r = peer_recv(&p, &pool_fd);
    ck_assert_int_eq(r->body_case, ARENA__V1__ENVELOPE__BODY_HELLO_REPLY);
    ck_assert_uint_eq(r->hello_reply->budget, 64 * MiB);
    ck_assert_uint_eq(r->hello_reply->heap_size, 128 * MiB);
    arena__v1__envelope__free_unpacked(r, NULL);
    /* The fd is the pool heap: a sealed memfd of heap_size bytes. */
    ck_assert_int_ge(pool_fd, 0);
    struct stat st;
    ck_assert_int_eq(fstat(pool_fd, &st), 0);
    ck_assert_int_eq(st.st_size, (off_t)(128 * MiB));
    ck_assert_int_eq(ftruncate(pool_fd, 0), -1);
    ck_assert_int_eq(fcntl(pool_fd, F_GET_SEALS) & (F_SEAL_SHRINK | F_SEAL_GROW),
                     F_SEAL_SHRINK | F_SEAL_GROW);
    (void)close(pool_fd);

    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__LeaseRequest lease = ARENA__V1__LEASE_REQUEST__INIT;
    lease.size = 3 * MiB + 1;
    env.request_id = 2;
    env.body_case = ARENA__V1__ENVELOPE__BODY_LEASE;
    env.lease = &lease;
    peer_send_env(&p, &env);
    r = peer_recv(&p, NULL);
    ck_assert_int_eq(r->body_case, ARENA__V1__ENVELOPE__BODY_LEASE_REPLY);
    ck_assert_uint_eq(r->request_id, 2);
    ck_assert_uint_eq(r->lease_reply->size, 3 * MiB + 4096);
    ck_assert(r->lease_reply->zeroed);
    uint64_t id = r->lease_reply->lease_id;
    arena__v1__envelope__free_unpacked(r, NULL);

    Arena__V1__ReleaseRequest rel = ARENA__V1__RELEASE_REQUEST__INIT;
    rel.lease_id = id;
    env.request_id = 3;
    env.body_case = ARENA__V1__ENVELOPE__BODY_RELEASE;
    env.release = &rel;
    peer_send_env(&p, &env);
    r = peer_recv(&p, NULL);
    ck_assert_int_eq(r->body_case, ARENA__V1__ENVELOPE__BODY_RELEASE_REPLY);
    ck_assert_uint_eq(r->release_reply->lease_id, id);
    arena__v1__envelope__free_unpacked(r, NULL);
    peer_close(&p);
    ck_assert_int_eq(open_conns, 0);
}
END_TEST

START_TEST(test_byte_at_a_time)
{
    /* Frames split at every byte boundary are reassembled. */
    peer_t p;
    peer_open(&p);
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__Hello hello = ARENA__V1__HELLO__INIT;
    hello.protocol_version = 1;
    hello.client_name = "slow";
    env.request_id = 9;
    env.body_case = ARENA__V1__ENVELOPE__BODY_HELLO;
    env.hello = &hello;
    size_t len = arena__v1__envelope__get_packed_size(&env);
    uint8_t buf[64];
    ck_assert_uint_le(len + 4, sizeof(buf));
    buf[0] = (uint8_t)len;
    buf[1] = buf[2] = buf[3] = 0;
    (void)arena__v1__envelope__pack(&env, buf + 4);
    for (size_t i = 0; i < len + 4; i++) {
        ck_assert(peer_write(&p, buf + i, 1));
        pump();
    }
    Arena__V1__Envelope *r = peer_recv(&p, NULL);
    ck_assert_int_eq(r->body_case, ARENA__V1__ENVELOPE__BODY_HELLO_REPLY);
    ck_assert_uint_eq(r->request_id, 9);
    arena__v1__envelope__free_unpacked(r, NULL);
    peer_close(&p);
}
END_TEST

/* One random request, valid or not. */
static void fuzz_one(peer_t *p, unsigned *seed)
{
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__Hello hello = ARENA__V1__HELLO__INIT;
    Arena__V1__LeaseRequest lease = ARENA__V1__LEASE_REQUEST__INIT;
    Arena__V1__ReleaseRequest rel = ARENA__V1__RELEASE_REQUEST__INIT;
    Arena__V1__StatusRequest st = ARENA__V1__STATUS_REQUEST__INIT;
    Arena__V1__ListClientsRequest lc = ARENA__V1__LIST_CLIENTS_REQUEST__INIT;
    Arena__V1__ListLeasesRequest ll = ARENA__V1__LIST_LEASES_REQUEST__INIT;
    Arena__V1__ReclaimRequest rc = ARENA__V1__RECLAIM_REQUEST__INIT;
    Arena__V1__MetricsRequest mr = ARENA__V1__METRICS_REQUEST__INIT;
    Arena__V1__Error er = ARENA__V1__ERROR__INIT;
    char name[80];
    env.request_id = (uint64_t)rand_r(seed);
    switch (rand_r(seed) % 10) {
    case 0:
        hello.protocol_version = rand_r(seed) % 4 ? 1 : (uint32_t)rand_r(seed);
        for (size_t i = 0; i < sizeof(name) - 1; i++)
            name[i] = (char)(rand_r(seed) % 255 + 1);
        name[rand_r(seed) % sizeof(name)] = '\0';
        name[sizeof(name) - 1] = '\0';
        hello.client_name = name;
        env.body_case = ARENA__V1__ENVELOPE__BODY_HELLO;
        env.hello = &hello;
        break;
    case 1:
    case 2:
    case 3:
        lease.size = rand_r(seed) % 8 ? (uint64_t)(rand_r(seed) % (int)(8 * MiB))
                                      : (uint64_t)rand_r(seed) << 32;
        lease.wait_ms = rand_r(seed) % 4 == 0 ? rand_r(seed) % 50 : 0;
        env.body_case = ARENA__V1__ENVELOPE__BODY_LEASE;
        env.lease = &lease;
        break;
    case 4:
    case 5:
        rel.lease_id = (uint64_t)(rand_r(seed) % 200);
        env.body_case = ARENA__V1__ENVELOPE__BODY_RELEASE;
        env.release = &rel;
        break;
    case 6:
        env.body_case = ARENA__V1__ENVELOPE__BODY_STATUS;
        env.status = &st;
        break;
    case 7:
        if (rand_r(seed) % 2) {
            env.body_case = ARENA__V1__ENVELOPE__BODY_LIST_CLIENTS;
            env.list_clients = &lc;
        } else {
            ll.client_id = (uint64_t)(rand_r(seed) % 5);
            env.body_case = ARENA__V1__ENVELOPE__BODY_LIST_LEASES;
            env.list_leases = &ll;
        }
        break;
    case 8:
        if (rand_r(seed) % 2) {
            rc.bytes = (uint64_t)rand_r(seed);
            rc.client_id = (uint64_t)(rand_r(seed) % 5);
            env.body_case = ARENA__V1__ENVELOPE__BODY_RECLAIM;
            env.reclaim = &rc;
        } else {
            env.body_case = ARENA__V1__ENVELOPE__BODY_METRICS;
            env.metrics = &mr;
        }
        break;
    default:
        er.message = "x";
        env.body_case = ARENA__V1__ENVELOPE__BODY_ERROR;
        env.error = &er;
        break;
    }
    size_t len = arena__v1__envelope__get_packed_size(&env);
    uint8_t buf[4 + 256];
    ck_assert_uint_le(len, 256);
    (void)arena__v1__envelope__pack(&env, buf + 4);
    /* Mutate: flip bytes, cut, or lie about the length. */
    int how = rand_r(seed) % 8;
    uint32_t wire_len = (uint32_t)len;
    if (how == 0 && len > 0) {
        for (int k = 0; k < 3; k++)
            buf[4 + (size_t)rand_r(seed) % len] ^= (uint8_t)(1u << (rand_r(seed) % 8));
    } else if (how == 1) {
        wire_len = (uint32_t)rand_r(seed) % 8192; /* over max_frame half the time */
        if (wire_len > len)
            wire_len = (uint32_t)len; /* keep the stream consistent */
        if (rand_r(seed) % 2)
            wire_len = 4097 + (uint32_t)rand_r(seed) % 100000;
    } else if (how == 2) {
        len = (size_t)rand_r(seed) % (len + 1); /* a frame cut short, then more */
        wire_len = (uint32_t)len;
    }
    buf[0] = (uint8_t)wire_len;
    buf[1] = (uint8_t)(wire_len >> 8);
    buf[2] = (uint8_t)(wire_len >> 16);
    buf[3] = (uint8_t)(wire_len >> 24);
    size_t send_len = 4 + (wire_len <= len ? wire_len : len);
    (void)peer_write(p, buf, send_len);
}

/* Opens a connection that usually starts with a valid hello. */
static void fuzz_open(peer_t *p, unsigned *seed)
{
    peer_open(p);
    if (rand_r(seed) % 10 != 0)
        send_hello(p);
}

START_TEST(test_fuzz)
{
    unsigned seed = 20261122u;
    peer_t peers[3];
    for (int i = 0; i < 3; i++)
        fuzz_open(&peers[i], &seed);
    for (int round = 0; round < 10000; round++) {
        peer_t *p = &peers[rand_r(&seed) % 3];
        if (p->closed) {
            (void)close(p->fd);
            fuzz_open(p, &seed);
        }
        /* Now and then a second hello, a protocol error of its own. */
        if (rand_r(&seed) % 64 == 0)
            send_hello(p);
        fuzz_one(p, &seed);
        pump();
        char sink[65536];
        while (recv(p->fd, sink, sizeof(sink), MSG_DONTWAIT) > 0) {
        }
        if (round % 100 == 0)
            ck_assert(ad_leases_is_valid(mgr));
        if (rand_r(&seed) % 50 == 0) {
            peer_close(p);
            fuzz_open(p, &seed);
        }
    }
    ck_assert(ad_leases_is_valid(mgr));
    for (int i = 0; i < 3; i++)
        peer_close(&peers[i]);
    ck_assert_int_eq(open_conns, 0);
    ad_leases_stats_t s;
    ad_leases_stats(mgr, &s);
    ck_assert_uint_eq(s.clients, 0);
    ck_assert_uint_eq(s.leases, 0);
    ck_assert_uint_eq(s.leased_bytes, 0);
    ck_assert_uint_eq(s.waiters, 0);
    ck_assert_uint_gt(s.granted_total, 0); /* the fuzzer did get leases */
    ck_assert_uint_gt(ad_admin_counters(adm)->protocol_errors_total, 0);
    ck_assert(ad_leases_is_valid(mgr));
}
END_TEST

static Suite *dispatch_suite(void)
{
    Suite *s = suite_create("dispatch");
    TCase *tc = tcase_create("dispatch");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_hello_lease_release);
    tcase_add_test(tc, test_byte_at_a_time);
    tcase_add_test(tc, test_fuzz);
    suite_add_tcase(s, tc);
    return s;
}

ARENA_TEST_MAIN(dispatch_suite)
