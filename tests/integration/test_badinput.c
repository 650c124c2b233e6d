/* SPDX-License-Identifier: MIT
 *
 * test_badinput.c -- a real arenad against raw, hostile and careless frames.
 *
 * Every test starts its own daemon through tests/lib's daemon fixture (a private socket in a
 * temporary directory; the daemon dies with the test process), speaks the
 * wire protocol byte by byte, and checks three things: the specific answer
 * (an error code, a closed connection), that a second, well-behaved client is
 * still served afterwards, and that nothing leaked (leased bytes back to 0,
 * the daemon's fd count back to where it was). Waiting for the daemon to
 * notice a disconnect polls its status; nothing here asserts on timing.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/mman.h>
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
#include "run.h"

#define IO_TIMEOUT_MS 5000
#define BUDGET        (64u << 20)

static arena_test_daemon_t daemon_;

static void start_with(const char *const *args)
{
    arena_test_daemon_up(&daemon_, NULL, args, 0);
}

/* Restarts the daemon with the settings in text (its config file,
 * daemon_.config, which a test may rewrite before a SIGHUP). */
static void restart_with_config(const char *text)
{
    ck_assert_int_eq(arena_test_daemon_stop(&daemon_), 0);
    arena_test_daemon_up(&daemon_, text, NULL, 0);
}

static void setup(void)
{
    static const char *const args[] = {"--budget", "64M", "--heap-size", "128M", NULL};
    start_with(args);
}

/* A daemon started without --foreground is not our child: remember it so a
 * failing test still stops it. */
static pid_t detached_pid;

static void teardown(void)
{
    if (detached_pid > 0) {
        (void)kill(detached_pid, SIGKILL);
        detached_pid = 0;
    }
    int status = arena_test_daemon_stop(&daemon_);
    ck_assert_int_eq(status, 0);
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    (void)nanosleep(&ts, NULL);
}

/* ---- raw frames (tests/lib/peer.h) ------------------------------------------ */

/* Writes all of buf with blocking sends; pass_fd (>= 0) goes twice with the first byte: two
 * stray fds on a request that takes none. */
static void send_all(int fd, const void *buf, size_t len, int pass_fd)
{
    const int fds[2] = {pass_fd, pass_fd};
    int r = arena_peer_send(fd, buf, len, fds, pass_fd >= 0 ? 2 : 0, -1);
    ck_assert_msg(r == 0, "sendmsg: %s", strerror(-r));
}

static void send_raw_frame(int fd, const void *payload, uint32_t len)
{
    int r = arena_peer_send_frame(fd, payload, len, NULL, 0, -1);
    ck_assert_msg(r == 0, "sendmsg: %s", strerror(-r));
}

static void send_env_fd(int fd, const Arena__V1__Envelope *env, int pass_fd)
{
    const int fds[2] = {pass_fd, pass_fd};
    int r = arena_peer_send_env(fd, env, fds, pass_fd >= 0 ? 2 : 0, -1);
    ck_assert_msg(r == 0, "sendmsg: %s", strerror(-r));
}

static void send_env(int fd, const Arena__V1__Envelope *env)
{
    send_env_fd(fd, env, -1);
}

/* The next envelope, or NULL when the daemon closed the connection.
 * Collects a passed fd into *ret_fd when given. */
static Arena__V1__Envelope *recv_env_fd(int fd, int *ret_fd)
{
    Arena__V1__Envelope *env = NULL;
    int r = arena_peer_recv_env(fd, &env, ret_fd, IO_TIMEOUT_MS);
    ck_assert_msg(r != -ETIMEDOUT, "no answer from the daemon within %d ms", IO_TIMEOUT_MS);
    ck_assert_msg(r != -EPROTO, "connection closed in the middle of a reply");
    ck_assert_msg(r != -EMSGSIZE, "the daemon sent a frame above 16 MiB");
    ck_assert_msg(r != -EBADMSG, "the daemon sent a frame that does not decode");
    ck_assert_msg(r >= 0, "recvmsg: %s", strerror(-r));
    return r == 0 ? NULL : env;
}

static Arena__V1__Envelope *recv_env(int fd)
{
    return recv_env_fd(fd, NULL);
}

static void expect_closed(int fd)
{
    Arena__V1__Envelope *env = recv_env(fd);
    ck_assert_msg(env == NULL, "expected the daemon to close the connection, got body %d",
                  env ? (int)env->body_case : -1);
}

/* Receives one envelope and checks it is Error{code} echoing request_id. */
static void expect_error(int fd, uint64_t request_id, Arena__V1__ErrorCode code)
{
    Arena__V1__Envelope *env = recv_env(fd);
    ck_assert_msg(env != NULL, "connection closed; expected error %d", (int)code);
    ck_assert_msg(env->body_case == ARENA__V1__ENVELOPE__BODY_ERROR,
                  "expected error %d, got body %d", (int)code, (int)env->body_case);
    ck_assert_msg(env->error->code == code, "expected error %d, got %d (%s)", (int)code,
                  (int)env->error->code, env->error->message);
    ck_assert_uint_eq(env->request_id, request_id);
    ck_assert_msg(env->error->message && env->error->message[0], "error without a message");
    arena__v1__envelope__free_unpacked(env, NULL);
}

/* ---- requests ------------------------------------------------------------- */

static int connect_daemon(void)
{
    int fd = arena_test_daemon_connect(&daemon_);
    ck_assert_msg(fd >= 0, "connect: %s", strerror(-fd));
    return fd;
}

static void send_hello(int fd, uint64_t id, uint32_t version, const char *name)
{
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__Hello hello = ARENA__V1__HELLO__INIT;
    arena_peer_hello_env(&env, &hello, id, version, name);
    send_env(fd, &env);
}

/* Connects and says hello; returns the socket and the client id. */
/* Connects and says hello; returns the socket, the client id and, when
 * ret_pool_fd is given, the pool memfd (else it is closed). */
static int connect_hello_pool(const char *name, uint64_t *ret_client_id, int *ret_pool_fd)
{
    int fd = connect_daemon();
    send_hello(fd, 1, 1, name);
    int pool_fd = -1;
    Arena__V1__Envelope *env = recv_env_fd(fd, &pool_fd);
    ck_assert_ptr_nonnull(env);
    ck_assert_int_eq(env->body_case, ARENA__V1__ENVELOPE__BODY_HELLO_REPLY);
    ck_assert_uint_eq(env->request_id, 1);
    ck_assert_uint_ge(env->hello_reply->client_id, 1);
    ck_assert_uint_eq(env->hello_reply->budget, BUDGET);
    ck_assert_uint_gt(env->hello_reply->granule, 0);
    ck_assert_msg(pool_fd >= 0, "hello reply without the pool memfd");
    if (ret_pool_fd)
        *ret_pool_fd = pool_fd;
    else
        (void)close(pool_fd);
    if (ret_client_id)
        *ret_client_id = env->hello_reply->client_id;
    arena__v1__envelope__free_unpacked(env, NULL);
    return fd;
}

static int connect_hello(const char *name, uint64_t *ret_client_id)
{
    return connect_hello_pool(name, ret_client_id, NULL);
}

static void send_lease(int fd, uint64_t id, uint64_t size, int32_t wait_ms)
{
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__LeaseRequest req = ARENA__V1__LEASE_REQUEST__INIT;
    req.size = size;
    req.wait_ms = wait_ms;
    env.request_id = id;
    env.body_case = ARENA__V1__ENVELOPE__BODY_LEASE;
    env.lease = &req;
    send_env(fd, &env);
}

/* Leases size bytes and maps them through the pool fd, as a client does. */
static unsigned char *lease_map(int fd, int pool_fd, uint64_t id, uint64_t size)
{
    send_lease(fd, id, size, 0);
    Arena__V1__Envelope *env = recv_env(fd);
    ck_assert_ptr_nonnull(env);
    ck_assert_int_eq(env->body_case, ARENA__V1__ENVELOPE__BODY_LEASE_REPLY);
    void *p = mmap(NULL, env->lease_reply->size, PROT_READ | PROT_WRITE, MAP_SHARED, pool_fd,
                   (off_t)env->lease_reply->offset);
    ck_assert_ptr_ne(p, MAP_FAILED);
    arena__v1__envelope__free_unpacked(env, NULL);
    return p;
}

static uint64_t lease_ok(int fd, uint64_t id, uint64_t size)
{
    send_lease(fd, id, size, 0);
    Arena__V1__Envelope *env = recv_env(fd);
    ck_assert_ptr_nonnull(env);
    ck_assert_msg(env->body_case == ARENA__V1__ENVELOPE__BODY_LEASE_REPLY,
                  "lease of %llu: body %d (%s)", (unsigned long long)size, (int)env->body_case,
                  env->body_case == ARENA__V1__ENVELOPE__BODY_ERROR ? env->error->message : "");
    ck_assert_uint_eq(env->request_id, id);
    ck_assert_uint_ge(env->lease_reply->size, size);
    uint64_t lease_id = env->lease_reply->lease_id;
    arena__v1__envelope__free_unpacked(env, NULL);
    return lease_id;
}

static void send_release(int fd, uint64_t id, uint64_t lease_id)
{
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__ReleaseRequest req = ARENA__V1__RELEASE_REQUEST__INIT;
    req.lease_id = lease_id;
    env.request_id = id;
    env.body_case = ARENA__V1__ENVELOPE__BODY_RELEASE;
    env.release = &req;
    send_env(fd, &env);
}

static void release_ok(int fd, uint64_t id, uint64_t lease_id)
{
    send_release(fd, id, lease_id);
    Arena__V1__Envelope *env = recv_env(fd);
    ck_assert_ptr_nonnull(env);
    ck_assert_int_eq(env->body_case, ARENA__V1__ENVELOPE__BODY_RELEASE_REPLY);
    ck_assert_uint_eq(env->request_id, id);
    ck_assert_uint_eq(env->release_reply->lease_id, lease_id);
    arena__v1__envelope__free_unpacked(env, NULL);
}

/* A status reply over an existing connection (caller frees). */
static Arena__V1__Envelope *status_on(int fd)
{
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__StatusRequest req = ARENA__V1__STATUS_REQUEST__INIT;
    env.request_id = 77;
    env.body_case = ARENA__V1__ENVELOPE__BODY_STATUS;
    env.status = &req;
    send_env(fd, &env);
    Arena__V1__Envelope *reply = recv_env(fd);
    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(reply->body_case, ARENA__V1__ENVELOPE__BODY_STATUS_REPLY);
    ck_assert_uint_eq(reply->request_id, 77);
    return reply;
}

/* A well-behaved second client: it is served, and once every other client is
 * gone (the count of clients, seen from here, is 1) the daemon holds no
 * leased bytes. Polls the status while the daemon processes disconnects. */
static void check_healthy(uint64_t min_protocol_errors)
{
    int fd = connect_hello("observer", NULL);
    Arena__V1__Envelope *st = NULL;
    for (int i = 0; i < 500; i++) {
        if (st)
            arena__v1__envelope__free_unpacked(st, NULL);
        st = status_on(fd);
        if (st->status_reply->clients == 1 && st->status_reply->leased_bytes == 0)
            break;
        nap_ms(10);
    }
    ck_assert_uint_eq(st->status_reply->clients, 1);
    ck_assert_uint_eq(st->status_reply->leased_bytes, 0);
    ck_assert_uint_eq(st->status_reply->leases, 0);
    ck_assert_uint_ge(st->status_reply->protocol_errors_total, min_protocol_errors);
    ck_assert_uint_eq(st->status_reply->budget, BUDGET);
    arena__v1__envelope__free_unpacked(st, NULL);
    /* And it can still lease. */
    uint64_t id = lease_ok(fd, 2, 1u << 20);
    release_ok(fd, 3, id);
    (void)close(fd);
}

/* The daemon's fd count once it stops changing: connections that closed
 * just before (the fixture's start-up probe) are fully gone. Each round trip
 * on fd lets the daemon's loop run its close callbacks. */
static void status_round_trip(void *fd)
{
    Arena__V1__Envelope *st = status_on(*(int *)fd);
    arena__v1__envelope__free_unpacked(st, NULL);
    nap_ms(10);
}

static int stable_fd_count(int fd)
{
    return arena_test_stable_fds(daemon_.pid, status_round_trip, &fd);
}

/* Waits (bounded) for the daemon's fd count to come back to want; returns
 * the last count seen. A leaked fd never comes back. */
static int settled_fd_count(int want)
{
    int now = -1;
    for (int i = 0; i < 500; i++) {
        now = arena_test_count_fds(daemon_.pid);
        if (now == want)
            break;
        nap_ms(10);
    }
    return now;
}

/* ---- framing -------------------------------------------------------------- */

START_TEST(test_frame_too_large)
{
    int fd = connect_hello("big", NULL);
    uint8_t hdr[4];
    uint32_t len = 64u * 1024u + 1u;
    hdr[0] = (uint8_t)len;
    hdr[1] = (uint8_t)(len >> 8);
    hdr[2] = (uint8_t)(len >> 16);
    hdr[3] = (uint8_t)(len >> 24);
    send_all(fd, hdr, sizeof(hdr), -1);
    expect_error(fd, 0, ARENA__V1__ERROR_CODE__ERROR_FRAME_TOO_LARGE);
    expect_closed(fd);
    (void)close(fd);
    check_healthy(1);
}
END_TEST

START_TEST(test_frame_too_large_before_hello)
{
    /* A huge announced length with a payload behind it: refused on the
     * header, before a byte of payload is buffered. */
    int fd = connect_daemon();
    uint32_t len = 0x7fffffffu;
    uint8_t hdr[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
                      (uint8_t)(len >> 24)};
    send_all(fd, hdr, sizeof(hdr), -1);
    expect_error(fd, 0, ARENA__V1__ERROR_CODE__ERROR_FRAME_TOO_LARGE);
    expect_closed(fd);
    (void)close(fd);
    check_healthy(1);
}
END_TEST

START_TEST(test_max_frame_from_config)
{
    /* max_frame from a config file: 1 KiB. A 2 KiB hello is refused. */
    restart_with_config("# test\nmax_frame = 1K\nbudget = 64M\n\nheap_size = 128M\n");

    int fd = connect_daemon();
    char name[2048];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    send_hello(fd, 1, 1, name);
    expect_error(fd, 0, ARENA__V1__ERROR_CODE__ERROR_FRAME_TOO_LARGE);
    expect_closed(fd);
    (void)close(fd);
    check_healthy(1);
}
END_TEST

START_TEST(test_truncated_frame_then_close)
{
    uint64_t cid;
    int fd = connect_hello("truncated", &cid);
    (void)lease_ok(fd, 2, 1u << 20);
    /* Announce 100 bytes, send 10, hang up. */
    uint8_t buf[14] = {100, 0, 0, 0};
    memset(buf + 4, 0x08, 10);
    send_all(fd, buf, sizeof(buf), -1);
    (void)close(fd);
    check_healthy(0);
}
END_TEST

START_TEST(test_socket_mode_and_group)
{
    /* The socket file gets the configured mode and group (any gid as root;
     * otherwise one of ours), so access can be given to a group only. */
    gid_t gid = geteuid() == 0 ? 4242 : getegid();
    char text[128];
    (void)snprintf(text, sizeof(text),
                   "budget = 64M\nheap_size = 128M\nsocket_mode = 0660\nsocket_group = %lu\n",
                   (unsigned long)gid);
    restart_with_config(text);
    struct stat st;
    ck_assert_int_eq(stat(daemon_.socket, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0660);
    ck_assert_uint_eq(st.st_gid, gid);
    check_healthy(0);
}
END_TEST

START_TEST(test_half_frame_times_out)
{
    restart_with_config("budget = 64M\nheap_size = 128M\nframe_timeout_ms = 200\n");
    int fd = connect_hello("staller", NULL);
    (void)lease_ok(fd, 2, 1u << 20);
    /* Half a frame, then silence: the daemon hangs up on its own. */
    uint8_t buf[8] = {100, 0, 0, 0, 0x08, 0x01, 0x62, 0x02};
    send_all(fd, buf, sizeof(buf), -1);
    expect_closed(fd);
    (void)close(fd);
    check_healthy(1);
    /* A client that is merely idle between whole frames is not dropped. */
    fd = connect_hello("idle", NULL);
    nap_ms(500);
    Arena__V1__Envelope *st = status_on(fd);
    arena__v1__envelope__free_unpacked(st, NULL);
    (void)close(fd);
}
END_TEST

START_TEST(test_shutdown_stalls_on_unread_replies)
{
    restart_with_config("budget = 64M\nheap_size = 128M\nframe_timeout_ms = 200\n");
    int fd = connect_hello("deaf", NULL);
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__MetricsRequest req = ARENA__V1__METRICS_REQUEST__INIT;
    env.request_id = 1;
    env.body_case = ARENA__V1__ENVELOPE__BODY_METRICS;
    env.metrics = &req;
    /* About a megabyte of replies we never read: more than the socket
     * buffers hold, less than the daemon's queue cap. */
    for (int i = 0; i < 300; i++)
        send_env(fd, &env);
    /* Then garbage: the daemon answers with an error and shuts the
     * connection down, but the queue cannot drain while we do not read. */
    uint8_t junk[4] = {0xff, 0xff, 0xff, 0xff};
    send_raw_frame(fd, junk, sizeof(junk));
    /* The stalled connection is closed anyway: check_healthy waits until
     * the observer is the only client left, without reading from fd. */
    check_healthy(1);
    (void)close(fd);
}
END_TEST

START_TEST(test_truncated_header_then_close)
{
    int fd = connect_daemon();
    uint8_t buf[2] = {5, 0};
    send_all(fd, buf, sizeof(buf), -1);
    (void)close(fd);
    check_healthy(0);
}
END_TEST

START_TEST(test_random_bytes)
{
    int fd = connect_hello("random", NULL);
    uint8_t junk[256];
    unsigned seed = 12345u + (unsigned)_i;
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(rand_r(&seed) >> 7);
    /* Field 31, wire type 7: no protobuf parser accepts it, so the frame
     * cannot decode by chance. */
    junk[0] = 0xff;
    send_raw_frame(fd, junk, sizeof(junk));
    expect_error(fd, 0, ARENA__V1__ERROR_CODE__ERROR_PROTOCOL);
    expect_closed(fd);
    (void)close(fd);
    check_healthy(1);
}
END_TEST

START_TEST(test_random_bytes_before_hello)
{
    int fd = connect_daemon();
    uint8_t junk[64];
    unsigned seed = 777u;
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(rand_r(&seed) >> 5);
    junk[0] = 0xff;
    send_raw_frame(fd, junk, sizeof(junk));
    expect_error(fd, 0, ARENA__V1__ERROR_CODE__ERROR_PROTOCOL);
    expect_closed(fd);
    (void)close(fd);
    check_healthy(1);
}
END_TEST

START_TEST(test_empty_envelope_keeps_connection)
{
    int fd = connect_hello("empty", NULL);
    send_raw_frame(fd, NULL, 0);
    expect_error(fd, 0, ARENA__V1__ERROR_CODE__ERROR_PROTOCOL);
    /* request_id 9 and no body. */
    uint8_t id_only[] = {0x08, 9};
    send_raw_frame(fd, id_only, sizeof(id_only));
    expect_error(fd, 9, ARENA__V1__ERROR_CODE__ERROR_PROTOCOL);
    /* An unknown field (99, varint) is not a request either. */
    uint8_t unknown[] = {0x08, 10, 0x98, 0x06, 0x01};
    send_raw_frame(fd, unknown, sizeof(unknown));
    expect_error(fd, 10, ARENA__V1__ERROR_CODE__ERROR_PROTOCOL);
    /* A reply type sent to the daemon is not a request. */
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__ReleaseReply rr = ARENA__V1__RELEASE_REPLY__INIT;
    env.request_id = 11;
    env.body_case = ARENA__V1__ENVELOPE__BODY_RELEASE_REPLY;
    env.release_reply = &rr;
    send_env(fd, &env);
    expect_error(fd, 11, ARENA__V1__ERROR_CODE__ERROR_PROTOCOL);
    /* The connection still works. */
    Arena__V1__Envelope *st = status_on(fd);
    ck_assert_uint_ge(st->status_reply->protocol_errors_total, 4);
    arena__v1__envelope__free_unpacked(st, NULL);
    uint64_t id = lease_ok(fd, 12, 4096);
    release_ok(fd, 13, id);
    (void)close(fd);
    check_healthy(4);
}
END_TEST

START_TEST(test_request_before_hello)
{
    int fd = connect_daemon();
    send_lease(fd, 5, 4096, 0);
    expect_error(fd, 5, ARENA__V1__ERROR_CODE__ERROR_PROTOCOL);
    expect_closed(fd);
    (void)close(fd);
    check_healthy(1);
}
END_TEST

START_TEST(test_wrong_version)
{
    int fd = connect_daemon();
    send_hello(fd, 3, 2, "future");
    expect_error(fd, 3, ARENA__V1__ERROR_CODE__ERROR_VERSION);
    expect_closed(fd);
    (void)close(fd);
    fd = connect_daemon();
    send_hello(fd, 4, 0, "past");
    expect_error(fd, 4, ARENA__V1__ERROR_CODE__ERROR_VERSION);
    expect_closed(fd);
    (void)close(fd);
    check_healthy(2);
}
END_TEST

START_TEST(test_second_hello)
{
    int fd = connect_hello("twice", NULL);
    send_hello(fd, 2, 1, "again");
    expect_error(fd, 2, ARENA__V1__ERROR_CODE__ERROR_PROTOCOL);
    uint64_t id = lease_ok(fd, 3, 4096);
    release_ok(fd, 4, id);
    (void)close(fd);
    check_healthy(1);
}
END_TEST

/* ---- leases --------------------------------------------------------------- */

START_TEST(test_release_unknown)
{
    int fd = connect_hello("unknown", NULL);
    send_release(fd, 2, 123456);
    expect_error(fd, 2, ARENA__V1__ERROR_CODE__ERROR_NOT_FOUND);
    send_release(fd, 3, 0);
    expect_error(fd, 3, ARENA__V1__ERROR_CODE__ERROR_NOT_FOUND);
    send_release(fd, 4, UINT64_MAX);
    expect_error(fd, 4, ARENA__V1__ERROR_CODE__ERROR_NOT_FOUND);
    (void)close(fd);
    check_healthy(0);
}
END_TEST

START_TEST(test_release_other_clients_lease)
{
    int a = connect_hello("owner", NULL);
    int b = connect_hello("thief", NULL);
    uint64_t id = lease_ok(a, 2, 1u << 20);
    send_release(b, 2, id);
    expect_error(b, 2, ARENA__V1__ERROR_CODE__ERROR_NOT_OWNER);
    /* The lease is still the owner's. */
    release_ok(a, 3, id);
    (void)close(a);
    (void)close(b);
    check_healthy(0);
}
END_TEST

START_TEST(test_double_release)
{
    int fd = connect_hello("double", NULL);
    uint64_t id = lease_ok(fd, 2, 1u << 20);
    release_ok(fd, 3, id);
    send_release(fd, 4, id);
    Arena__V1__Envelope *env = recv_env(fd);
    ck_assert_ptr_nonnull(env);
    ck_assert_int_eq(env->body_case, ARENA__V1__ENVELOPE__BODY_ERROR);
    ck_assert_int_eq(env->error->code, ARENA__V1__ERROR_CODE__ERROR_NOT_FOUND);
    ck_assert_msg(strstr(env->error->message, "released") != NULL, "message: %s",
                  env->error->message);
    arena__v1__envelope__free_unpacked(env, NULL);
    (void)close(fd);
    check_healthy(0);
}
END_TEST

START_TEST(test_lease_zero_and_too_large)
{
    int fd = connect_hello("sizes", NULL);
    send_lease(fd, 2, 0, 0);
    expect_error(fd, 2, ARENA__V1__ERROR_CODE__ERROR_INVALID_ARGUMENT);
    send_lease(fd, 3, (uint64_t)BUDGET + 1, 0);
    expect_error(fd, 3, ARENA__V1__ERROR_CODE__ERROR_TOO_LARGE);
    send_lease(fd, 4, UINT64_MAX, 0);
    expect_error(fd, 4, ARENA__V1__ERROR_CODE__ERROR_TOO_LARGE);
    /* Exactly the budget fits. */
    uint64_t id = lease_ok(fd, 5, BUDGET);
    release_ok(fd, 6, id);
    (void)close(fd);
    check_healthy(0);
}
END_TEST

START_TEST(test_no_memory_names_holders)
{
    int a = connect_hello("hog", NULL);
    int b = connect_hello("starved", NULL);
    (void)lease_ok(a, 2, 48u << 20);
    send_lease(b, 2, 32u << 20, 0);
    Arena__V1__Envelope *env = recv_env(b);
    ck_assert_ptr_nonnull(env);
    ck_assert_int_eq(env->body_case, ARENA__V1__ENVELOPE__BODY_ERROR);
    ck_assert_int_eq(env->error->code, ARENA__V1__ERROR_CODE__ERROR_NO_MEMORY);
    char pid[32];
    (void)snprintf(pid, sizeof(pid), "pid %ld", (long)getpid());
    ck_assert_msg(strstr(env->error->message, "hog") && strstr(env->error->message, pid),
                  "message does not name the holder: %s", env->error->message);
    arena__v1__envelope__free_unpacked(env, NULL);
    Arena__V1__Envelope *st = status_on(b);
    ck_assert_uint_ge(st->status_reply->requests_refused_total, 1);
    ck_assert_uint_eq(st->status_reply->leased_bytes, 48u << 20);
    arena__v1__envelope__free_unpacked(st, NULL);
    /* The hog leaves without releasing: its lease comes back. */
    (void)close(a);
    (void)close(b);
    check_healthy(0);
}
END_TEST

START_TEST(test_wait_times_out)
{
    int a = connect_hello("hog", NULL);
    int b = connect_hello("patient", NULL);
    (void)lease_ok(a, 2, 60u << 20);
    send_lease(b, 5, 8u << 20, 50);
    expect_error(b, 5, ARENA__V1__ERROR_CODE__ERROR_TIMED_OUT);
    (void)close(a);
    (void)close(b);
    check_healthy(0);
}
END_TEST

START_TEST(test_wait_granted_on_release)
{
    int a = connect_hello("hog", NULL);
    int b = connect_hello("patient", NULL);
    uint64_t id = lease_ok(a, 2, 60u << 20);
    send_lease(b, 5, 8u << 20, 60000);
    /* The status round trip proves the request is queued, not answered. */
    Arena__V1__Envelope *st = status_on(b);
    arena__v1__envelope__free_unpacked(st, NULL);
    release_ok(a, 3, id);
    Arena__V1__Envelope *env = recv_env(b);
    ck_assert_ptr_nonnull(env);
    ck_assert_int_eq(env->body_case, ARENA__V1__ENVELOPE__BODY_LEASE_REPLY);
    ck_assert_uint_eq(env->request_id, 5);
    ck_assert_uint_eq(env->lease_reply->size, 8u << 20);
    arena__v1__envelope__free_unpacked(env, NULL);
    (void)close(a);
    (void)close(b);
    check_healthy(0);
}
END_TEST

START_TEST(test_waiter_disconnects)
{
    int a = connect_hello("hog", NULL);
    int b = connect_hello("gone", NULL);
    uint64_t id = lease_ok(a, 2, 60u << 20);
    send_lease(b, 5, 8u << 20, 60000);
    Arena__V1__Envelope *st = status_on(b);
    arena__v1__envelope__free_unpacked(st, NULL);
    (void)close(b);
    /* Once b is gone (clients back to 1), releasing must not hand memory to
     * the departed waiter. */
    for (int i = 0; i < 500; i++) {
        st = status_on(a);
        bool done = st->status_reply->clients == 1;
        arena__v1__envelope__free_unpacked(st, NULL);
        if (done)
            break;
        nap_ms(10);
    }
    release_ok(a, 3, id);
    (void)close(a);
    check_healthy(0);
}
END_TEST

START_TEST(test_disconnect_punches_pages)
{
    /* A client that dies has its pages returned to the kernel at once: a
     * second mapping of the same pool (which the test keeps) reads zeros. */
    int pool_fd;
    int fd = connect_hello_pool("dying", NULL, &pool_fd);
    unsigned char *p = lease_map(fd, pool_fd, 2, 1u << 20);
    memset(p, 0x17, 1u << 20);
    (void)close(fd);
    check_healthy(0);
    for (size_t i = 0; i < (1u << 20); i += 4096)
        ck_assert_uint_eq(p[i], 0);
    (void)munmap(p, 1u << 20);
    (void)close(pool_fd);
}
END_TEST

START_TEST(test_disconnect_releases_everything)
{
    int fd = connect_hello("leaver", NULL);
    for (uint64_t i = 0; i < 50; i++)
        (void)lease_ok(fd, 10 + i, (i % 5 + 1) * 65536);
    Arena__V1__Envelope *st = status_on(fd);
    ck_assert_uint_eq(st->status_reply->leases, 50);
    ck_assert_uint_gt(st->status_reply->leased_bytes, 0);
    arena__v1__envelope__free_unpacked(st, NULL);
    (void)close(fd);
    check_healthy(0);
}
END_TEST

START_TEST(test_stray_fd_is_closed)
{
    int fd = connect_hello("fdsender", NULL);
    int before = stable_fd_count(fd);
    ck_assert_int_gt(before, 0);

    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    for (int i = 0; i < 20; i++) {
        Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
        Arena__V1__StatusRequest req = ARENA__V1__STATUS_REQUEST__INIT;
        env.request_id = 100 + (uint64_t)i;
        env.body_case = ARENA__V1__ENVELOPE__BODY_STATUS;
        env.status = &req;
        send_env_fd(fd, &env, p[i % 2]);
        Arena__V1__Envelope *reply = recv_env(fd);
        ck_assert_ptr_nonnull(reply);
        ck_assert_int_eq(reply->body_case, ARENA__V1__ENVELOPE__BODY_STATUS_REPLY);
        arena__v1__envelope__free_unpacked(reply, NULL);
    }
    ck_assert_int_eq(settled_fd_count(before), before);
    /* The daemon holds no end of the pipe: closing ours gives EOF. */
    (void)close(p[1]);
    char c;
    ck_assert_int_eq(read(p[0], &c, 1), 0);
    (void)close(p[0]);
    (void)close(fd);
    check_healthy(0);
}
END_TEST

START_TEST(test_fd_count_after_many_clients)
{
    int first = connect_hello("warm", NULL);
    int before = stable_fd_count(first);
    (void)close(first);
    before--; /* first's own socket */
    check_healthy(0);
    for (int i = 0; i < 30; i++) {
        int fd = connect_hello("churn", NULL);
        (void)lease_ok(fd, 2, 4096);
        (void)close(fd);
    }
    check_healthy(0);
    ck_assert_int_eq(settled_fd_count(before), before);
}
END_TEST

START_TEST(test_max_clients)
{
    restart_with_config("max_clients = 2\nbudget = 64M\nheap_size = 128M\n");

    int a = connect_hello("one", NULL);
    /* The fixture's start-up probe is a connection too, until the daemon
     * has seen it close. */
    (void)stable_fd_count(a);
    int b = connect_hello("two", NULL);
    int c = connect_daemon();
    expect_error(c, 0, ARENA__V1__ERROR_CODE__ERROR_LIMIT);
    expect_closed(c);
    (void)close(c);
    (void)close(b);
    (void)close(a);
    /* Slots free up as the daemon sees the closes: a new client is served
     * again once it has (until then it is refused, never hung). */
    int later = -1;
    for (int i = 0; i < 500 && later < 0; i++) {
        int fd = connect_daemon();
        /* A refused connection may be closed before the hello is sent:
         * the refusal is in our receive buffer either way. */
        Arena__V1__Envelope hello_env = ARENA__V1__ENVELOPE__INIT;
        Arena__V1__Hello hello = ARENA__V1__HELLO__INIT;
        hello.protocol_version = 1;
        hello.client_name = "later";
        hello_env.request_id = 1;
        hello_env.body_case = ARENA__V1__ENVELOPE__BODY_HELLO;
        hello_env.hello = &hello;
        uint8_t frame[64];
        size_t len = arena__v1__envelope__get_packed_size(&hello_env);
        ck_assert_uint_le(len + 4, sizeof(frame));
        frame[0] = (uint8_t)len;
        frame[1] = frame[2] = frame[3] = 0;
        (void)arena__v1__envelope__pack(&hello_env, frame + 4);
        ssize_t n = send(fd, frame, len + 4, MSG_NOSIGNAL);
        ck_assert(n == (ssize_t)(len + 4) || errno == EPIPE || errno == ECONNRESET);
        int pool_fd = -1;
        Arena__V1__Envelope *env = recv_env_fd(fd, &pool_fd);
        ck_assert_ptr_nonnull(env);
        if (env->body_case == ARENA__V1__ENVELOPE__BODY_HELLO_REPLY) {
            later = fd;
        } else {
            ck_assert_int_eq(env->body_case, ARENA__V1__ENVELOPE__BODY_ERROR);
            ck_assert_int_eq(env->error->code, ARENA__V1__ERROR_CODE__ERROR_LIMIT);
            (void)close(fd);
            nap_ms(10);
        }
        if (pool_fd >= 0)
            (void)close(pool_fd);
        arena__v1__envelope__free_unpacked(env, NULL);
    }
    ck_assert_int_ge(later, 0);
    /* From that client: the others are gone and returned everything. */
    Arena__V1__Envelope *st = NULL;
    for (int i = 0; i < 500; i++) {
        if (st)
            arena__v1__envelope__free_unpacked(st, NULL);
        st = status_on(later);
        if (st->status_reply->clients == 1)
            break;
        nap_ms(10);
    }
    ck_assert_uint_eq(st->status_reply->clients, 1);
    ck_assert_uint_eq(st->status_reply->leased_bytes, 0);
    arena__v1__envelope__free_unpacked(st, NULL);
    (void)lease_ok(later, 2, 4096);
    (void)close(later);
}
END_TEST

START_TEST(test_unread_replies_disconnect)
{
    /* A client that sends requests and never reads its replies is dropped
     * once its queue passes the cap (max_reply_queue; the in-flight throttle
     * is off here, see test_unread_replies_throttled); the daemon keeps
     * serving others. */
    restart_with_config("budget = 64M\nheap_size = 128M\nmax_requests_in_flight = 0\n"
                        "max_reply_queue = 256K\n");
    int fd = connect_hello("deaf", NULL);
    int one = 1 << 20;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &one, sizeof(one));
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__MetricsRequest req = ARENA__V1__METRICS_REQUEST__INIT;
    env.request_id = 1;
    env.body_case = ARENA__V1__ENVELOPE__BODY_METRICS;
    env.metrics = &req;
    size_t len = arena__v1__envelope__get_packed_size(&env);
    uint8_t frame[64];
    ck_assert_uint_le(len + 4, sizeof(frame));
    frame[0] = (uint8_t)len;
    frame[1] = frame[2] = frame[3] = 0;
    (void)arena__v1__envelope__pack(&env, frame + 4);
    /* Each metrics reply is a few KiB: 20000 of them pass 8 MiB by far. The
     * daemon closes the connection at some point; sending then fails. */
    bool dropped = false;
    for (int i = 0; i < 20000 && !dropped; i++) {
        ssize_t n = send(fd, frame, len + 4, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
            dropped = true;
        else if (n < 0 && errno == EAGAIN)
            nap_ms(1);
    }
    if (!dropped) {
        /* Not noticed by send yet: the daemon must have closed its end,
         * so draining the socket reaches EOF. */
        char buf[65536];
        for (;;) {
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            ck_assert_int_eq(poll(&pfd, 1, IO_TIMEOUT_MS), 1);
            ssize_t n = recv(fd, buf, sizeof(buf), 0);
            if (n <= 0)
                break;
        }
    }
    (void)close(fd);
    check_healthy(0);
}
END_TEST

/* With the throttle on (the default), a client that never reads is not
 * read from either once max_requests_in_flight replies wait; it ends up
 * blocked in send() and, reading nothing for frame_timeout_ms, is dropped. */
START_TEST(test_unread_replies_throttled)
{
    restart_with_config("budget = 64M\nheap_size = 128M\nmax_requests_in_flight = 8\n"
                        "frame_timeout_ms = 300\n");
    int fd = connect_hello("deaf", NULL);
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__MetricsRequest req = ARENA__V1__METRICS_REQUEST__INIT;
    env.request_id = 1;
    env.body_case = ARENA__V1__ENVELOPE__BODY_METRICS;
    env.metrics = &req;
    size_t len = arena__v1__envelope__get_packed_size(&env);
    uint8_t frame[64];
    ck_assert_uint_le(len + 4, sizeof(frame));
    frame[0] = (uint8_t)len;
    frame[1] = frame[2] = frame[3] = 0;
    (void)arena__v1__envelope__pack(&env, frame + 4);
    unsigned sent = 0;
    bool gone = false;
    for (int i = 0; i < 100000 && !gone; i++) {
        ssize_t n = send(fd, frame, len + 4, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n == (ssize_t)(len + 4)) {
            sent++;
            continue;
        }
        ck_assert_msg(n < 0, "short send");
        if (errno == EPIPE || errno == ECONNRESET)
            break;
        ck_assert_int_eq(errno, EAGAIN);
        /* Blocked: wait for the daemon to hang up, reading nothing. */
        struct pollfd pfd = {.fd = fd, .events = POLLRDHUP};
        gone = poll(&pfd, 1, 20) == 1 && (pfd.revents & (POLLHUP | POLLRDHUP));
    }
    if (!gone) {
        struct pollfd pfd = {.fd = fd, .events = POLLRDHUP};
        gone = poll(&pfd, 1, IO_TIMEOUT_MS) == 1 && (pfd.revents & (POLLHUP | POLLRDHUP));
    }
    ck_assert_msg(gone, "a throttled client that reads nothing was never dropped");
    /* Bounded: far fewer requests than the socket buffers hold got in. */
    printf("throttled: %u requests sent before the daemon hung up\n", sent);
    (void)close(fd);
    check_healthy(0);
}
END_TEST

/* A connection that never says hello is told so (ERROR_TIMED_OUT) and
 * closed after hello_timeout_ms; one that did is kept however long it
 * idles. */
START_TEST(test_hello_timeout)
{
    restart_with_config("budget = 64M\nheap_size = 128M\nhello_timeout_ms = 200\n");
    int greeted = connect_hello("greeted", NULL);
    int silent = connect_daemon();
    expect_error(silent, 0, ARENA__V1__ERROR_CODE__ERROR_TIMED_OUT);
    expect_closed(silent);
    (void)close(silent);
    nap_ms(400);
    (void)lease_ok(greeted, 2, 4096);
    (void)close(greeted);
    check_healthy(1); /* the timeout counts as a protocol error */
}
END_TEST

/* The exit codes of the per-uid child. */
enum { PER_UID_OK = 0, PER_UID_SETUID = 10, PER_UID_NOT_REFUSED };

static int per_uid_child(int cap)
{
    if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
        return PER_UID_SETUID;
    for (int i = 0; i < cap; i++)
        (void)connect_hello("capped", NULL); /* kept open until exit */
    int over = connect_daemon();
    Arena__V1__Envelope *env = recv_env(over);
    bool ok = env && env->body_case == ARENA__V1__ENVELOPE__BODY_ERROR &&
              env->error->code == ARENA__V1__ERROR_CODE__ERROR_LIMIT &&
              strstr(env->error->message, "max_connections_per_uid") != NULL;
    return ok ? PER_UID_OK : PER_UID_NOT_REFUSED;
}

/* max_connections_per_uid caps the connections of one uid (ERROR_LIMIT
 * naming the key); root is exempt. As root the capped uid is 65534 in a
 * child; otherwise the test's own uid is. */
START_TEST(test_max_connections_per_uid)
{
    enum { CAP = 3 };
    restart_with_config("budget = 64M\nheap_size = 128M\nmax_connections_per_uid = 3\n");
    if (geteuid() == 0) {
        ck_assert_int_eq(chmod(daemon_.dir, 0711), 0); /* let uid 65534 reach the socket */
        (void)fflush(stdout);
        pid_t child = fork();
        ck_assert_int_ge(child, 0);
        if (child == 0)
            _exit(per_uid_child(CAP));
        int status;
        ck_assert_int_eq(waitpid(child, &status, 0), child);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == PER_UID_OK,
                      "per-uid child failed (status %d)", status);
        /* Root is exempt: more than CAP connections are served. */
        int fds[CAP + 2];
        for (int i = 0; i < CAP + 2; i++)
            fds[i] = connect_hello("root", NULL);
        for (int i = 0; i < CAP + 2; i++)
            (void)close(fds[i]);
    } else {
        int fds[CAP];
        /* The fixture's probe may still hold a slot: wait until it is gone. */
        nap_ms(100);
        for (int i = 0; i < CAP; i++)
            fds[i] = connect_hello("capped", NULL);
        int over = connect_daemon();
        expect_error(over, 0, ARENA__V1__ERROR_CODE__ERROR_LIMIT);
        expect_closed(over);
        (void)close(over);
        for (int i = 0; i < CAP; i++)
            (void)close(fds[i]);
    }
    check_healthy(0);
}
END_TEST

/* SIGHUP applies the connection limits: a connection that has been silent
 * since before the reload is closed once hello_timeout_ms (off at start)
 * is set, and a per-uid cap set by the reload refuses the next connection
 * of a capped uid (here: when the test does not run as root, which is
 * exempt). */
START_TEST(test_reload_connection_limits)
{
    restart_with_config("budget = 64M\nheap_size = 128M\nhello_timeout_ms = 0\n");
    const char *path = daemon_.config;
    int fd = connect_hello("reloader", NULL);
    int silent = connect_daemon();
    nap_ms(300);
    struct pollfd pfd = {.fd = silent, .events = POLLIN};
    ck_assert_int_eq(poll(&pfd, 1, 0), 0); /* no hello timeout yet */
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("budget = 64M\nheap_size = 128M\nhello_timeout_ms = 100\n"
          "max_connections_per_uid = 1\n",
          f);
    fclose(f);
    ck_assert_int_eq(kill(daemon_.pid, SIGHUP), 0);
    expect_error(silent, 0, ARENA__V1__ERROR_CODE__ERROR_TIMED_OUT);
    expect_closed(silent);
    (void)close(silent);
    if (geteuid() != 0) {
        int over = connect_daemon();
        expect_error(over, 0, ARENA__V1__ERROR_CODE__ERROR_LIMIT);
        (void)close(over);
    }
    (void)lease_ok(fd, 2, 4096); /* the greeted client is untouched */
    (void)close(fd);
}
END_TEST

/* ---- start-up ------------------------------------------------------------- */

/* Runs arenad with args (its output collected and dropped) and returns its
 * exit status, or 128 + the signal that ended it. */
static int run_arenad(const char *const *args)
{
    const char *argv[16];
    size_t n = 0;
    argv[n++] = ARENAD_PATH;
    for (size_t i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    arena_run_opts_t opts = {.timeout_ms = 10000};
    arena_run_t r;
    int rc = arena_run(argv, &opts, &r);
    ck_assert_msg(rc != -ETIMEDOUT, "arenad did not exit");
    ck_assert_msg(rc == 0, "arenad: %s", strerror(-rc));
    int code = r.code >= 0 ? r.code : 128 - r.code;
    arena_run_free(&r);
    return code;
}

START_TEST(test_second_daemon_refused)
{
    const char *const args[] = {"--foreground", "--socket", daemon_.socket, NULL};
    ck_assert_int_eq(run_arenad(args), 1);
    /* The first one is untouched. */
    check_healthy(0);
}
END_TEST

START_TEST(test_bad_flags_and_config)
{
    const char *const a1[] = {"--foreground", "--no-such-flag", NULL};
    ck_assert_int_eq(run_arenad(a1), 2);
    const char *const a2[] = {"--foreground", "--budget", "lots", NULL};
    ck_assert_int_eq(run_arenad(a2), 2);
    const char *const a3[] = {"--foreground", "--config", "/nonexistent/arenad.conf", NULL};
    ck_assert_int_eq(run_arenad(a3), 2);
    const char *const a4[] = {"--foreground", "--log-level", "loud", NULL};
    ck_assert_int_eq(run_arenad(a4), 2);
    const char *const a5[] = {"--version", NULL};
    ck_assert_int_eq(run_arenad(a5), 0);
    const char *const a6[] = {"--foreground", "--socket", daemon_.socket, "extra", NULL};
    ck_assert_int_eq(run_arenad(a6), 2);
}
END_TEST

START_TEST(test_stale_socket_replaced)
{
    /* Stop the daemon the hard way: its socket file stays behind. */
    char sock[sizeof(daemon_.socket)];
    memcpy(sock, daemon_.socket, sizeof(sock));
    (void)kill(daemon_.pid, SIGKILL);
    ck_assert_int_eq(arena_test_child_wait(daemon_.pid, 5000), ARENA_TEST_KILLED(SIGKILL));
    daemon_.pid = 0;
    ck_assert_int_eq(access(sock, F_OK), 0);
    /* A new daemon on the same path takes it over. */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        execl(ARENAD_PATH, ARENAD_PATH, "--foreground", "--socket", sock, "--budget", "64M",
              "--heap-size", "128M", "--log-level", "warn", (char *)NULL);
        _exit(127);
    }
    daemon_.pid = pid;
    int fd = -1;
    for (int i = 0; i < 1000 && fd < 0; i++) {
        fd = arena_test_daemon_connect(&daemon_);
        if (fd < 0)
            nap_ms(10);
    }
    ck_assert_int_ge(fd, 0);
    (void)close(fd);
    check_healthy(0);
    /* teardown stops it and removes the directory. */
}
END_TEST

START_TEST(test_sigterm_releases_and_unlinks)
{
    int pool_fd;
    int fd = connect_hello_pool("holder", NULL, &pool_fd);
    unsigned char *p = lease_map(fd, pool_fd, 2, 1u << 20);
    memset(p, 0x17, 1u << 20);
    char sock[sizeof(daemon_.socket)];
    memcpy(sock, daemon_.socket, sizeof(sock));
    pid_t pid = daemon_.pid;
    ck_assert_int_eq(kill(pid, SIGTERM), 0);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    daemon_.pid = 0;
    ck_assert_int_ne(access(sock, F_OK), 0);
    expect_closed(fd);
    (void)close(fd);
    /* DESIGN.md section 7: a daemon that stops loses no client data. */
    for (size_t i = 0; i < (1u << 20); i += 4096)
        ck_assert_uint_eq(p[i], 0x17);
    (void)munmap(p, 1u << 20);
    (void)close(pool_fd);
    /* Remove its directory, and restart so teardown has something to stop. */
    ck_assert_int_eq(arena_test_daemon_stop(&daemon_), -1);
    setup();
}
END_TEST

START_TEST(test_sighup_reload)
{
    restart_with_config("budget = 64M\nheap_size = 128M\n");
    const char *path = daemon_.config;

    int fd = connect_hello("reloader", NULL);
    /* A bad file keeps the old settings. */
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("budget = 32M\nbogus_key = 1\n", f);
    fclose(f);
    ck_assert_int_eq(kill(daemon_.pid, SIGHUP), 0);
    /* A status after the signal is processed: poll a few times. */
    Arena__V1__Envelope *st = NULL;
    for (int i = 0; i < 20; i++) {
        if (st)
            arena__v1__envelope__free_unpacked(st, NULL);
        st = status_on(fd);
        nap_ms(10);
    }
    ck_assert_uint_eq(st->status_reply->budget, 64u << 20);
    arena__v1__envelope__free_unpacked(st, NULL);
    /* A good file changes the budget live. */
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("budget = 32M\nheap_size = 128M\n", f);
    fclose(f);
    ck_assert_int_eq(kill(daemon_.pid, SIGHUP), 0);
    st = NULL;
    for (int i = 0; i < 500; i++) {
        if (st)
            arena__v1__envelope__free_unpacked(st, NULL);
        st = status_on(fd);
        if (st->status_reply->budget == (32u << 20))
            break;
        nap_ms(10);
    }
    ck_assert_uint_eq(st->status_reply->budget, 32u << 20);
    arena__v1__envelope__free_unpacked(st, NULL);
    send_lease(fd, 9, 48u << 20, 0);
    expect_error(fd, 9, ARENA__V1__ERROR_CODE__ERROR_TOO_LARGE);
    (void)close(fd);
    /* Put the standard daemon back for check_healthy's budget and teardown. */
    ck_assert_int_eq(arena_test_daemon_stop(&daemon_), 0);
    setup();
    check_healthy(0);
}
END_TEST

START_TEST(test_decay_punches)
{
    restart_with_config("budget = 64M\nheap_size = 128M\ndecay_ms = 100\n");

    int fd = connect_hello("decayer", NULL);
    uint64_t id = lease_ok(fd, 2, 1u << 20);
    release_ok(fd, 3, id);
    Arena__V1__Envelope *st = NULL;
    for (int i = 0; i < 500; i++) {
        if (st)
            arena__v1__envelope__free_unpacked(st, NULL);
        st = status_on(fd);
        if (st->status_reply->dirty_bytes == 0)
            break;
        nap_ms(10);
    }
    ck_assert_uint_eq(st->status_reply->dirty_bytes, 0);
    ck_assert_uint_ge(st->status_reply->bytes_punched_total, 1u << 20);
    arena__v1__envelope__free_unpacked(st, NULL);
    (void)close(fd);
    check_healthy(0);
}
END_TEST

START_TEST(test_daemonise_waits_for_socket)
{
    char sock[sizeof(daemon_.socket)];
    (void)snprintf(sock, sizeof(sock), "%s/detached.sock", daemon_.dir);
    ck_assert_int_eq(unsetenv("INVOCATION_ID"), 0);
    const char *const args[] = {"--socket", sock, "--budget", "64M", "--log-level", "error", NULL};
    ck_assert_int_eq(run_arenad(args), 0);
    /* The parent exited 0 only once the child listened: no retry needed. */
    arena_test_daemon_t other = {.pid = 0};
    memcpy(other.socket, sock, sizeof(sock));
    int fd = arena_test_daemon_connect(&other);
    ck_assert_msg(fd >= 0, "connect right after start: %s", strerror(-fd));
    struct ucred cred;
    socklen_t cl = sizeof(cred);
    ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl), 0);
    detached_pid = cred.pid;
    ck_assert_int_ne(detached_pid, getpid());
    (void)close(fd);
    /* It runs in its own session, detached from us. */
    ck_assert_int_eq(getsid(detached_pid), detached_pid);
    ck_assert_int_eq(kill(detached_pid, SIGTERM), 0);
    for (int i = 0; i < 500 && access(sock, F_OK) == 0; i++)
        nap_ms(10);
    ck_assert_msg(access(sock, F_OK) != 0, "socket still there after SIGTERM");
    for (int i = 0; i < 500 && kill(detached_pid, 0) == 0; i++)
        nap_ms(10);
    ck_assert_int_ne(kill(detached_pid, 0), 0);
    detached_pid = 0;
    check_healthy(0);
}
END_TEST

static void send_simple(int fd, uint64_t id, Arena__V1__Envelope__BodyCase body, uint64_t arg1,
                        uint64_t arg2)
{
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__ListClientsRequest lc = ARENA__V1__LIST_CLIENTS_REQUEST__INIT;
    Arena__V1__ListLeasesRequest ll = ARENA__V1__LIST_LEASES_REQUEST__INIT;
    Arena__V1__ReclaimRequest rc = ARENA__V1__RECLAIM_REQUEST__INIT;
    Arena__V1__MetricsRequest mr = ARENA__V1__METRICS_REQUEST__INIT;
    env.request_id = id;
    env.body_case = body;
    switch (body) {
    case ARENA__V1__ENVELOPE__BODY_LIST_CLIENTS:
        env.list_clients = &lc;
        break;
    case ARENA__V1__ENVELOPE__BODY_LIST_LEASES:
        ll.client_id = arg1;
        env.list_leases = &ll;
        break;
    case ARENA__V1__ENVELOPE__BODY_RECLAIM:
        rc.client_id = arg1;
        rc.bytes = arg2;
        env.reclaim = &rc;
        break;
    default:
        env.body_case = ARENA__V1__ENVELOPE__BODY_METRICS;
        env.metrics = &mr;
        break;
    }
    send_env(fd, &env);
}

/* In a child running as nobody: what an unprivileged client may see and do.
 * Returns 0, or the number of the first check that failed. */
static int nobody_checks(uint64_t root_client)
{
    int fd = connect_hello("nobody", NULL);
    (void)lease_ok(fd, 2, 4096);
    send_simple(fd, 3, ARENA__V1__ENVELOPE__BODY_LIST_CLIENTS, 0, 0);
    Arena__V1__Envelope *env = recv_env(fd);
    if (!env || env->body_case != ARENA__V1__ENVELOPE__BODY_LIST_CLIENTS_REPLY ||
        env->list_clients_reply->n_clients != 1 ||
        env->list_clients_reply->clients[0]->uid != 65534)
        return 1;
    arena__v1__envelope__free_unpacked(env, NULL);
    send_simple(fd, 4, ARENA__V1__ENVELOPE__BODY_LIST_LEASES, 0, 0);
    env = recv_env(fd);
    if (!env || env->body_case != ARENA__V1__ENVELOPE__BODY_LIST_LEASES_REPLY ||
        env->list_leases_reply->n_leases != 1)
        return 2;
    arena__v1__envelope__free_unpacked(env, NULL);
    send_simple(fd, 5, ARENA__V1__ENVELOPE__BODY_LIST_LEASES, root_client, 0);
    env = recv_env(fd);
    if (!env || env->body_case != ARENA__V1__ENVELOPE__BODY_ERROR ||
        env->error->code != ARENA__V1__ERROR_CODE__ERROR_NOT_FOUND)
        return 3;
    arena__v1__envelope__free_unpacked(env, NULL);
    send_simple(fd, 6, ARENA__V1__ENVELOPE__BODY_RECLAIM, root_client, 0);
    env = recv_env(fd);
    if (!env || env->body_case != ARENA__V1__ENVELOPE__BODY_ERROR ||
        env->error->code != ARENA__V1__ERROR_CODE__ERROR_PERMISSION)
        return 4;
    arena__v1__envelope__free_unpacked(env, NULL);
    send_simple(fd, 7, ARENA__V1__ENVELOPE__BODY_METRICS, 0, 0);
    env = recv_env(fd);
    if (!env || env->body_case != ARENA__V1__ENVELOPE__BODY_METRICS_REPLY ||
        strstr(env->metrics_reply->text, "rootclient") ||
        !strstr(env->metrics_reply->text, "name=\"nobody\""))
        return 5;
    arena__v1__envelope__free_unpacked(env, NULL);
    (void)close(fd);
    return 0;
}

START_TEST(test_admin_visibility)
{
    if (geteuid() != 0) {
        /* Needs a second uid; covered by the unit suite otherwise. */
        arena_test_skip("test_admin_visibility: needs root for a second uid");
        return;
    }
    uint64_t root_client;
    int fd = connect_hello("rootclient", &root_client);
    (void)lease_ok(fd, 2, 1u << 20);
    ck_assert_int_eq(chmod(daemon_.dir, 0755), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
            _exit(100);
        _exit(nobody_checks(root_client));
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_msg(WEXITSTATUS(status) == 0, "unprivileged check %d failed", WEXITSTATUS(status));
    /* Root sees every client and may reclaim anything. */
    send_simple(fd, 3, ARENA__V1__ENVELOPE__BODY_LIST_LEASES, 0, 0);
    Arena__V1__Envelope *env = recv_env(fd);
    ck_assert_ptr_nonnull(env);
    ck_assert_int_eq(env->body_case, ARENA__V1__ENVELOPE__BODY_LIST_LEASES_REPLY);
    ck_assert_uint_ge(env->list_leases_reply->n_leases, 1);
    arena__v1__envelope__free_unpacked(env, NULL);
    send_simple(fd, 4, ARENA__V1__ENVELOPE__BODY_RECLAIM, 0, 0);
    env = recv_env(fd);
    ck_assert_ptr_nonnull(env);
    ck_assert_int_eq(env->body_case, ARENA__V1__ENVELOPE__BODY_RECLAIM_REPLY);
    arena__v1__envelope__free_unpacked(env, NULL);
    (void)close(fd);
    check_healthy(0);
}
END_TEST

static Suite *badinput_suite(void)
{
    Suite *s = suite_create("badinput");
    TCase *tc = tcase_create("framing");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_frame_too_large);
    tcase_add_test(tc, test_frame_too_large_before_hello);
    tcase_add_test(tc, test_max_frame_from_config);
    tcase_add_test(tc, test_truncated_frame_then_close);
    tcase_add_test(tc, test_truncated_header_then_close);
    tcase_add_test(tc, test_half_frame_times_out);
    tcase_add_test(tc, test_shutdown_stalls_on_unread_replies);
    tcase_add_loop_test(tc, test_random_bytes, 0, 3);
    tcase_add_test(tc, test_random_bytes_before_hello);
    tcase_add_test(tc, test_empty_envelope_keeps_connection);
    tcase_add_test(tc, test_request_before_hello);
    tcase_add_test(tc, test_wrong_version);
    tcase_add_test(tc, test_second_hello);
    tcase_add_test(tc, test_stray_fd_is_closed);
    tcase_add_test(tc, test_fd_count_after_many_clients);
    tcase_add_test(tc, test_max_clients);
    tcase_add_test(tc, test_unread_replies_disconnect);
    tcase_add_test(tc, test_unread_replies_throttled);
    tcase_add_test(tc, test_hello_timeout);
    tcase_add_test(tc, test_max_connections_per_uid);
    tcase_add_test(tc, test_reload_connection_limits);
    suite_add_tcase(s, tc);

    tc = tcase_create("leases");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_release_unknown);
    tcase_add_test(tc, test_release_other_clients_lease);
    tcase_add_test(tc, test_double_release);
    tcase_add_test(tc, test_lease_zero_and_too_large);
    tcase_add_test(tc, test_no_memory_names_holders);
    tcase_add_test(tc, test_wait_times_out);
    tcase_add_test(tc, test_wait_granted_on_release);
    tcase_add_test(tc, test_waiter_disconnects);
    tcase_add_test(tc, test_disconnect_releases_everything);
    tcase_add_test(tc, test_disconnect_punches_pages);
    tcase_add_test(tc, test_decay_punches);
    suite_add_tcase(s, tc);

    tc = tcase_create("lifecycle");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_second_daemon_refused);
    tcase_add_test(tc, test_bad_flags_and_config);
    tcase_add_test(tc, test_stale_socket_replaced);
    tcase_add_test(tc, test_socket_mode_and_group);
    tcase_add_test(tc, test_sigterm_releases_and_unlinks);
    tcase_add_test(tc, test_sighup_reload);
    tcase_add_test(tc, test_daemonise_waits_for_socket);
    tcase_add_test(tc, test_admin_visibility);
    suite_add_tcase(s, tc);
    return s;
}

ARENA_TEST_MAIN(badinput_suite)
