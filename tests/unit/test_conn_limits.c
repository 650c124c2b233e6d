/* SPDX-License-Identifier: MIT
 *
 * test_conn_limits.c -- daemon/conn.c on its own, over a socketpair and a
 * real libuv loop: which descriptors a peer sends reach on_frame and which
 * are closed, and the max_in_flight throttle.
 *
 * Descriptors are checked by identity (the inode of a memfd the test made),
 * and "never accumulate" by counting this process's /proc/self/fd before
 * and after, since the conn lives in the test process. The frames are raw
 * bytes (4-byte little-endian length, then any payload): conn.c never looks
 * inside a payload. Check forks each test.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "check_main.h"
#include "conn.h"
#include "fdpass.h"
#include "log.h"

#define MAX_FRAME 4096u
#define MAX_SEEN  64

/* What the callbacks saw. */
typedef struct seen {
    size_t frames;
    size_t len[MAX_SEEN];
    uint8_t first[MAX_SEEN]; /* first payload byte, 0 for an empty one */
    ino_t ino[MAX_SEEN];     /* inode of the fd handed over; 0: fd was -1 */
    size_t oversize;
    bool closed;
    int reason;
    size_t reply_len; /* > 0: answer every frame with a reply this long */
} seen_t;

static uv_loop_t loop;
static seen_t seen;
static ad_conn_t *conn;
static int peer = -1;

static void cb_frame(ad_conn_t *c, const uint8_t *payload, size_t len, int fd, void *ctx)
{
    (void)ctx;
    size_t i = seen.frames++;
    ck_assert_uint_lt(i, MAX_SEEN);
    seen.len[i] = len;
    seen.first[i] = len > 0 ? payload[0] : 0;
    seen.ino[i] = 0;
    if (fd >= 0) {
        struct stat st;
        ck_assert_int_eq(fstat(fd, &st), 0);
        ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
        seen.ino[i] = st.st_ino;
        (void)close(fd); /* the callee owns it */
    }
    if (seen.reply_len > 0) {
        uint8_t *reply = calloc(1, seen.reply_len);
        ck_assert_ptr_nonnull(reply);
        (void)ad_conn_send(c, reply, seen.reply_len, -1);
    }
}

static void cb_oversize(ad_conn_t *c, size_t len, void *ctx)
{
    (void)ctx;
    (void)len;
    seen.oversize++;
    ad_conn_close(c, -EMSGSIZE);
}

static void cb_close(ad_conn_t *c, int reason, void *ctx)
{
    (void)c;
    (void)ctx;
    seen.closed = true;
    seen.reason = reason;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(d);
    int n = 0;
    while (readdir(d))
        n++;
    (void)closedir(d);
    return n;
}

static void pump(void)
{
    for (int i = 0; i < 20; i++)
        (void)uv_run(&loop, UV_RUN_NOWAIT);
}

static void open_conn(size_t max_in_flight, size_t max_queued)
{
    memset(&seen, 0, sizeof(seen));
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
    static const ad_conn_callbacks_t cbs = {
        .on_frame = cb_frame, .on_oversize = cb_oversize, .on_close = cb_close};
    ad_conn_limits_t limits = {
        .max_frame = MAX_FRAME, .max_queued = max_queued, .max_in_flight = max_in_flight};
    peer = sv[1];
    ck_assert_int_eq(ad_conn_new(&loop, sv[0], &limits, &cbs, NULL, &conn), 0);
}

static void setup(void)
{
    ad_log_set_level(AD_LOG_ERROR);
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    conn = NULL;
    peer = -1;
}

static void teardown(void)
{
    if (conn && !seen.closed) {
        ad_conn_close(conn, 0);
        pump();
    }
    if (peer >= 0)
        (void)close(peer);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}

/* One sendmsg of bytes, with nfds descriptors on its first byte. */
static void send_msg(const void *buf, size_t len, const int *fds, size_t nfds)
{
    ck_assert_int_eq(arena__send_with_fds(peer, buf, len, fds, nfds, NULL, 0, 0), (ssize_t)len);
}

/* A frame of len payload bytes, each tag, in buf (at least 4 + len). */
static size_t make_frame(uint8_t *buf, size_t len, uint8_t tag)
{
    buf[0] = (uint8_t)len;
    buf[1] = (uint8_t)(len >> 8);
    buf[2] = (uint8_t)(len >> 16);
    buf[3] = (uint8_t)(len >> 24);
    memset(buf + 4, tag, len);
    return 4 + len;
}

static void send_frame(size_t len, uint8_t tag, const int *fds, size_t nfds)
{
    uint8_t buf[4 + MAX_FRAME];
    send_msg(buf, make_frame(buf, len, tag), fds, nfds);
}

static int new_memfd(ino_t *ret_ino)
{
    int fd = memfd_create("conn-test", MFD_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    *ret_ino = st.st_ino;
    return fd;
}

/* ---- descriptors ----------------------------------------------------------- */

START_TEST(test_fd_reaches_its_frame)
{
    open_conn(0, 1 << 20);
    int before = count_fds();
    ino_t ino;
    int fd = new_memfd(&ino);
    send_frame(10, 'a', &fd, 1);
    (void)close(fd);
    send_frame(10, 'b', NULL, 0);
    pump();
    ck_assert_uint_eq(seen.frames, 2);
    ck_assert_uint_eq(seen.ino[0], ino);
    ck_assert_uint_eq(seen.ino[1], 0);
    ck_assert_int_eq(count_fds(), before);
}
END_TEST

/* The kernel returns the bytes of earlier messages together with a later
 * message's descriptor; the conn must still give it to the later frame. */
START_TEST(test_fd_after_queued_frames)
{
    open_conn(0, 1 << 20);
    int before = count_fds();
    ino_t ino1, ino2;
    int fd1 = new_memfd(&ino1);
    int fd2 = new_memfd(&ino2);
    send_frame(7, 'a', NULL, 0);
    send_frame(0, 0, NULL, 0);
    send_frame(300, 'c', &fd1, 1);
    send_frame(5, 'd', NULL, 0);
    send_frame(5, 'e', &fd2, 1);
    (void)close(fd1);
    (void)close(fd2);
    pump();
    ck_assert_uint_eq(seen.frames, 5);
    ck_assert_uint_eq(seen.ino[0], 0);
    ck_assert_uint_eq(seen.ino[1], 0);
    ck_assert_uint_eq(seen.len[1], 0);
    ck_assert_uint_eq(seen.ino[2], ino1);
    ck_assert_uint_eq(seen.first[2], 'c');
    ck_assert_uint_eq(seen.ino[3], 0);
    ck_assert_uint_eq(seen.ino[4], ino2);
    ck_assert_uint_eq(seen.first[4], 'e');
    ck_assert_int_eq(count_fds(), before);
}
END_TEST

START_TEST(test_two_fds_are_closed)
{
    open_conn(0, 1 << 20);
    int before = count_fds();
    ino_t ino;
    int fds[2] = {new_memfd(&ino), new_memfd(&ino)};
    send_frame(10, 'a', fds, 2);
    (void)close(fds[0]);
    (void)close(fds[1]);
    pump();
    ck_assert_uint_eq(seen.frames, 1);
    ck_assert_uint_eq(seen.ino[0], 0);
    ck_assert(!seen.closed); /* a stray descriptor is no reason to close */
    ck_assert_int_eq(count_fds(), before);
}
END_TEST

START_TEST(test_fd_mid_frame_is_closed)
{
    open_conn(0, 1 << 20);
    int before = count_fds();
    ino_t ino;
    int fd = new_memfd(&ino);
    uint8_t buf[4 + 32];
    size_t len = make_frame(buf, 32, 'm');
    send_msg(buf, 6, NULL, 0);          /* header and two payload bytes */
    send_msg(buf + 6, len - 6, &fd, 1); /* the rest, with a descriptor */
    (void)close(fd);
    pump();
    ck_assert_uint_eq(seen.frames, 1);
    ck_assert_uint_eq(seen.len[0], 32);
    ck_assert_uint_eq(seen.ino[0], 0);
    ck_assert_int_eq(count_fds(), before);
}
END_TEST

START_TEST(test_fd_of_unfinished_frame_is_closed)
{
    open_conn(0, 1 << 20);
    int before = count_fds();
    ino_t ino;
    int fd = new_memfd(&ino);
    uint8_t buf[4 + 64];
    (void)make_frame(buf, 64, 'u');
    send_msg(buf, 20, &fd, 1); /* never finished */
    (void)close(fd);
    pump();
    ck_assert_uint_eq(seen.frames, 0);
    /* The conn holds it for the frame... */
    ck_assert_int_eq(count_fds(), before + 1);
    (void)close(peer);
    peer = -1;
    pump();
    /* ...until the peer goes away. */
    ck_assert(seen.closed);
    /* Gone too: the test's end and the conn's own socket. */
    ck_assert_int_eq(count_fds(), before - 2);
}
END_TEST

START_TEST(test_fd_of_oversized_frame_is_closed)
{
    open_conn(0, 1 << 20);
    int before = count_fds();
    ino_t ino;
    int fd = new_memfd(&ino);
    uint8_t hdr[4] = {0xff, 0xff, 0xff, 0x00};
    send_msg(hdr, 4, &fd, 1);
    (void)close(fd);
    pump();
    ck_assert_uint_eq(seen.oversize, 1);
    ck_assert_uint_eq(seen.frames, 0);
    ck_assert(seen.closed);
    ck_assert_int_eq(count_fds(), before - 1);
}
END_TEST

/* Many frames with descriptors of every kind: nothing accumulates. */
START_TEST(test_fds_never_accumulate)
{
    open_conn(0, 1 << 20);
    int before = count_fds();
    unsigned seed = 0x5eed0c0du;
    size_t attached = 0;
    for (int round = 0; round < 40; round++) {
        memset(&seen, 0, sizeof(seen));
        for (int i = 0; i < 16; i++) {
            int fds[3];
            ino_t ino;
            size_t nfds = (size_t)(rand_r(&seed) % 4);
            for (size_t k = 0; k < nfds; k++)
                fds[k] = new_memfd(&ino);
            size_t len = (size_t)(rand_r(&seed) % 600);
            uint8_t buf[4 + 600];
            size_t total = make_frame(buf, len, 'x');
            size_t cut = rand_r(&seed) % 3 == 0 ? (size_t)rand_r(&seed) % total : total;
            send_msg(buf, cut, fds, nfds);
            if (cut < total)
                send_msg(buf + cut, total - cut, NULL, 0);
            for (size_t k = 0; k < nfds; k++)
                (void)close(fds[k]);
            attached += nfds == 1 && cut > 0;
        }
        pump();
        ck_assert_uint_eq(seen.frames, 16);
        ck_assert_int_eq(count_fds(), before);
    }
    ck_assert_uint_gt(attached, 0);
}
END_TEST

/* ---- in-flight throttle --------------------------------------------------- */

static bool peer_readable_hup(void)
{
    struct pollfd pfd = {.fd = peer, .events = POLLRDHUP};
    return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLRDHUP));
}

START_TEST(test_pending_throttles_reading)
{
    open_conn(4, 1 << 20);
    ad_conn_set_pending(conn, 4);
    ck_assert(ad_conn_is_throttled(conn));
    /* Waiting on the daemon itself is no stall of the peer's. */
    ck_assert_uint_eq(ad_conn_stalled_since(conn), 0);
    for (int i = 0; i < 6; i++)
        send_frame(3, (uint8_t)('0' + i), NULL, 0);
    pump();
    ck_assert_uint_eq(seen.frames, 0);
    ad_conn_set_pending(conn, 3); /* above half: still throttled */
    pump();
    ck_assert_uint_eq(seen.frames, 0);
    ad_conn_set_pending(conn, 2);
    ck_assert(!ad_conn_is_throttled(conn));
    pump();
    ck_assert_uint_eq(seen.frames, 6);
    for (int i = 0; i < 6; i++)
        ck_assert_uint_eq(seen.first[i], '0' + i);
}
END_TEST

/* A peer that sends requests and never reads: once max_in_flight replies
 * sit unwritten, the conn stops reading; the stall clock runs, and it
 * resumes, in order, when the peer reads. */
START_TEST(test_unread_replies_throttle)
{
    enum { IN_FLIGHT = 8 };
    open_conn(IN_FLIGHT, 64u << 20);
    seen.reply_len = 64 * 1024; /* fills the socket buffer after a few */
    int sent = 0;
    for (; sent < 60; sent++)
        send_frame(2, (uint8_t)sent, NULL, 0);
    pump();
    ck_assert(ad_conn_is_throttled(conn));
    size_t got = seen.frames;
    ck_assert_uint_lt(got, (size_t)sent);
    ck_assert_uint_ne(ad_conn_stalled_since(conn), 0);
    pump();
    ck_assert_uint_eq(seen.frames, got); /* nothing more is read */
    ck_assert(!seen.closed);
    ck_assert(!peer_readable_hup());
    /* The peer reads everything: every request is answered, in order. */
    size_t replies = 0;
    uint8_t buf[65536];
    for (int spins = 0; replies < (size_t)sent * seen.reply_len && spins < 100000; spins++) {
        ssize_t n = recv(peer, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0)
            replies += (size_t)n;
        pump();
    }
    ck_assert_uint_eq(seen.frames, (size_t)sent);
    ck_assert_uint_eq(replies, (size_t)sent * seen.reply_len);
    for (int i = 0; i < sent; i++)
        ck_assert_uint_eq(seen.first[i], (uint8_t)i);
    ck_assert(!ad_conn_is_throttled(conn));
    ck_assert_uint_eq(ad_conn_stalled_since(conn), 0);
}
END_TEST

/* Without the throttle the byte cap still drops a peer that never reads. */
START_TEST(test_unread_replies_queue_cap)
{
    open_conn(0, 256 * 1024);
    seen.reply_len = 64 * 1024;
    for (int i = 0; i < 40; i++)
        send_frame(2, (uint8_t)i, NULL, 0);
    pump();
    ck_assert(seen.closed);
    ck_assert_int_eq(seen.reason, -ENOBUFS);
}
END_TEST

static Suite *conn_suite(void)
{
    Suite *s = suite_create("conn_limits");
    TCase *tc = tcase_create("fds");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_fd_reaches_its_frame);
    tcase_add_test(tc, test_fd_after_queued_frames);
    tcase_add_test(tc, test_two_fds_are_closed);
    tcase_add_test(tc, test_fd_mid_frame_is_closed);
    tcase_add_test(tc, test_fd_of_unfinished_frame_is_closed);
    tcase_add_test(tc, test_fd_of_oversized_frame_is_closed);
    tcase_add_test(tc, test_fds_never_accumulate);
    suite_add_tcase(s, tc);
    tc = tcase_create("in_flight");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_pending_throttles_reading);
    tcase_add_test(tc, test_unread_replies_throttle);
    tcase_add_test(tc, test_unread_replies_queue_cap);
    suite_add_tcase(s, tc);
    return s;
}

ARENA_TEST_MAIN(conn_suite)
