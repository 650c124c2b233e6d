/* SPDX-License-Identifier: MIT
 *
 * conn.c -- one client connection: bytes in, frames out.
 *
 * A connection is a raw non-blocking socket under uv_poll_t rather than a
 * libuv stream, because replies carry file descriptors (SCM_RIGHTS) and libuv
 * streams cannot send arbitrary ones. Input is read with recvmsg into a
 * per-connection buffer that never grows past one maximum frame; the length
 * prefix is checked before a payload is buffered, so a peer cannot make us
 * allocate more than max_frame. Any fd a peer sends is closed at once, so
 * stray descriptors never accumulate. Output is a queue of whole frames with
 * a byte cap, written when the socket is writable; a peer that never reads
 * hits the cap and is dropped.
 *
 * Closing is always deferred to the loop (uv_close), and on_close fires from
 * the close callback, so no ad_conn_* call ever re-enters its caller. After
 * ad_conn_close() the struct stays valid until that callback: code that calls
 * back into the owner checks `closing` afterwards. Loop thread only.
 */
#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "wire.h"

#define CONN_READS_PER_EVENT 16 /* fairness between busy peers */
#define CONN_MIN_BUFFER      4096u
#define CONN_MAX_STRAY_FDS   16 /* cmsg room; the kernel drops the rest */

typedef struct out_frame {
    struct out_frame *next;
    uint8_t *data;
    size_t len;
    size_t off;                    /* bytes already written */
    int fds[AD_CONN_MAX_SEND_FDS]; /* sent with the first byte */
    size_t nfds;
} out_frame_t;

struct ad_conn {
    uv_poll_t poll;
    int fd;
    int events; /* what poll watches now */
    ad_conn_peer_t peer;
    ad_conn_limits_t limits;
    ad_conn_callbacks_t cb;
    void *ctx;
    void *data;
    uint8_t *rbuf;
    size_t rlen;
    size_t rcap;
    out_frame_t *out_head;
    out_frame_t **out_tail;
    size_t queued;
    uint64_t partial_since; /* loop ms; 0: not waiting on the peer */
    bool reading;
    bool shutting;
    bool closing;
    int close_reason;
};

static void conn_on_poll(uv_poll_t *handle, int status, int events);

static void out_frame_close_fds(out_frame_t *f)
{
    for (size_t i = 0; i < f->nfds; i++)
        (void)close(f->fds[i]);
    f->nfds = 0;
}

static void out_frame_free(out_frame_t *f)
{
    out_frame_close_fds(f);
    free(f->data);
    free(f);
}

static void conn_on_closed(uv_handle_t *handle)
{
    ad_conn_t *c = handle->data;
    if (c->cb.on_close)
        c->cb.on_close(c, c->close_reason, c->ctx);
    while (c->out_head) {
        out_frame_t *f = c->out_head;
        c->out_head = f->next;
        out_frame_free(f);
    }
    if (c->fd >= 0)
        (void)close(c->fd);
    free(c->rbuf);
    free(c);
}

void ad_conn_close(ad_conn_t *c, int reason)
{
    if (!c || c->closing)
        return;
    c->closing = true;
    c->close_reason = reason;
    c->reading = false;
    (void)uv_poll_stop(&c->poll);
    uv_close((uv_handle_t *)&c->poll, conn_on_closed);
}

uint64_t ad_conn_stalled_since(const ad_conn_t *c)
{
    return c->partial_since;
}

bool ad_conn_is_closing(const ad_conn_t *c)
{
    return c->closing;
}

/* Watches what the state asks for; a finished shutdown closes. */
static void conn_update(ad_conn_t *c)
{
    if (c->closing)
        return;
    if (c->shutting && !c->out_head) {
        ad_conn_close(c, 0);
        return;
    }
    int events = 0;
    if (c->reading && !c->shutting)
        events |= UV_READABLE;
    if (c->out_head)
        events |= UV_WRITABLE;
    if (events == c->events)
        return;
    c->events = events;
    if (events == 0) {
        (void)uv_poll_stop(&c->poll);
        return;
    }
    int r = uv_poll_start(&c->poll, events, conn_on_poll);
    if (r < 0)
        ad_conn_close(c, r);
}

int ad_conn_new(uv_loop_t *loop, int fd, const ad_conn_limits_t *limits,
                const ad_conn_callbacks_t *callbacks, void *ctx, ad_conn_t **ret_conn)
{
    int r;
    if (!loop || fd < 0 || !limits || !callbacks || !ret_conn) {
        if (fd >= 0)
            (void)close(fd);
        return -EINVAL;
    }
    struct ucred cred;
    socklen_t cl = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
        r = -errno;
        (void)close(fd);
        return r;
    }
    ad_conn_t *c = calloc(1, sizeof(*c));
    if (!c) {
        (void)close(fd);
        return -ENOMEM;
    }
    c->fd = fd;
    c->peer.pid = cred.pid;
    c->peer.uid = cred.uid;
    c->peer.gid = cred.gid;
    c->limits = *limits;
    c->cb = *callbacks;
    c->ctx = ctx;
    c->out_tail = &c->out_head;
    c->reading = true;
    r = uv_poll_init(loop, &c->poll, fd);
    if (r < 0) {
        (void)close(fd);
        free(c);
        return r;
    }
    c->poll.data = c;
    c->events = UV_READABLE;
    r = uv_poll_start(&c->poll, UV_READABLE, conn_on_poll);
    if (r < 0) {
        /* The handle is initialised: it must go through uv_close. */
        c->cb.on_close = NULL;
        ad_conn_close(c, r);
        return r;
    }
    *ret_conn = c;
    return 0;
}

const ad_conn_peer_t *ad_conn_peer(const ad_conn_t *c)
{
    return &c->peer;
}

int ad_conn_fd(const ad_conn_t *c)
{
    return c->fd;
}

void ad_conn_set_data(ad_conn_t *c, void *data)
{
    c->data = data;
}

void *ad_conn_get_data(const ad_conn_t *c)
{
    return c->data;
}

/* Writes queued frames until the socket would block. */
static void conn_flush(ad_conn_t *c)
{
    while (c->out_head && !c->closing) {
        out_frame_t *f = c->out_head;
        struct iovec iov = {.iov_base = f->data + f->off, .iov_len = f->len - f->off};
        union {
            char buf[CMSG_SPACE(sizeof(int) * AD_CONN_MAX_SEND_FDS)];
            struct cmsghdr align;
        } control;
        struct msghdr msg;
        memset(&msg, 0, sizeof(msg));
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        if (f->off == 0 && f->nfds > 0) {
            memset(&control, 0, sizeof(control));
            msg.msg_control = control.buf;
            msg.msg_controllen = CMSG_SPACE(sizeof(int) * f->nfds);
            struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(sizeof(int) * f->nfds);
            memcpy(CMSG_DATA(cm), f->fds, sizeof(int) * f->nfds);
        }
        ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            ad_conn_close(c, -errno);
            return;
        }
        f->off += (size_t)n;
        /* Sent with the first byte; the peer has its own copies now. */
        out_frame_close_fds(f);
        if (f->off < f->len)
            break; /* a short write: the socket buffer is full */
        c->out_head = f->next;
        if (!c->out_head)
            c->out_tail = &c->out_head;
        c->queued -= f->len;
        out_frame_free(f);
    }
    conn_update(c);
}

int ad_conn_send(ad_conn_t *c, uint8_t *frame, size_t len, int fd)
{
    return ad_conn_send_fds(c, frame, len, &fd, fd >= 0 ? 1 : 0);
}

int ad_conn_send_fds(ad_conn_t *c, uint8_t *frame, size_t len, const int *fds, size_t nfds)
{
    if (!c || !frame || len == 0 || nfds > AD_CONN_MAX_SEND_FDS || (nfds > 0 && !fds)) {
        free(frame);
        return -EINVAL;
    }
    if (c->closing) {
        free(frame);
        return -EPIPE;
    }
    if (c->queued + len > c->limits.max_queued) {
        free(frame);
        ad_conn_close(c, -ENOBUFS);
        return -ENOBUFS;
    }
    out_frame_t *f = calloc(1, sizeof(*f));
    if (!f) {
        free(frame);
        return -ENOMEM;
    }
    for (size_t i = 0; i < nfds; i++) {
        int d = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
        if (d < 0) {
            int r = -errno;
            out_frame_close_fds(f);
            free(f);
            free(frame);
            return r;
        }
        f->fds[f->nfds++] = d;
    }
    f->data = frame;
    f->len = len;
    *c->out_tail = f;
    c->out_tail = &f->next;
    c->queued += len;
    if (c->out_head == f)
        conn_flush(c);
    else
        conn_update(c);
    return 0;
}

void ad_conn_shutdown(ad_conn_t *c)
{
    if (!c || c->closing || c->shutting)
        return;
    c->shutting = true;
    c->reading = false;
    if (c->partial_since == 0)
        c->partial_since = uv_now(c->poll.loop) | 1u;
    conn_update(c);
}

/* Closes every descriptor a peer attached to a message. */
static void conn_drop_fds(ad_conn_t *c, struct msghdr *msg)
{
    unsigned dropped = 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm; cm = CMSG_NXTHDR(msg, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int stray;
            memcpy(&stray, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            (void)close(stray);
            dropped++;
        }
    }
    if (dropped > 0 || (msg->msg_flags & MSG_CTRUNC))
        ad_log(AD_LOG_INFO, "client pid %ld sent %u file descriptor(s); closed them",
               (long)c->peer.pid, dropped);
}

/* Hands every complete frame in the buffer to on_frame. Returns false when
 * reading must stop (closing, shutting down, or an oversized frame). */
static bool conn_parse(ad_conn_t *c)
{
    size_t pos = 0;
    bool more = true;
    while (c->rlen - pos >= AD_WIRE_HEADER) {
        size_t len;
        if (ad_wire_frame_length(c->rbuf + pos, c->limits.max_frame, &len) < 0) {
            c->reading = false;
            more = false;
            if (c->cb.on_oversize)
                c->cb.on_oversize(c, len, c->ctx);
            else
                ad_conn_close(c, -EMSGSIZE);
            break;
        }
        if (c->rlen - pos - AD_WIRE_HEADER < len)
            break;
        c->cb.on_frame(c, c->rbuf + pos + AD_WIRE_HEADER, len, c->ctx);
        pos += AD_WIRE_HEADER + len;
        if (c->closing || c->shutting || !c->reading) {
            more = false;
            break;
        }
    }
    if (pos > 0 && !c->closing) {
        memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
        c->rlen -= pos;
    }
    return more;
}

/* Makes room for at least one more byte, never past one whole frame. */
static int conn_reserve(ad_conn_t *c)
{
    if (c->rlen < c->rcap)
        return 0;
    size_t limit = c->limits.max_frame + AD_WIRE_HEADER;
    if (c->rcap >= limit)
        return -EMSGSIZE; /* cannot happen: parse consumed or refused it */
    size_t cap = c->rcap ? c->rcap * 2 : CONN_MIN_BUFFER;
    if (cap > limit)
        cap = limit;
    uint8_t *buf = realloc(c->rbuf, cap);
    if (!buf)
        return -ENOMEM;
    c->rbuf = buf;
    c->rcap = cap;
    return 0;
}

static void conn_read(ad_conn_t *c)
{
    for (int i = 0; i < CONN_READS_PER_EVENT && c->reading && !c->closing; i++) {
        int r = conn_reserve(c);
        if (r < 0) {
            ad_conn_close(c, r);
            return;
        }
        struct iovec iov = {.iov_base = c->rbuf + c->rlen, .iov_len = c->rcap - c->rlen};
        union {
            char buf[CMSG_SPACE(CONN_MAX_STRAY_FDS * sizeof(int))];
            struct cmsghdr align;
        } control;
        struct msghdr msg;
        memset(&msg, 0, sizeof(msg));
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.buf;
        msg.msg_controllen = sizeof(control.buf);
        ssize_t n = recvmsg(c->fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                ad_conn_close(c, -errno);
            return;
        }
        if (msg.msg_controllen > 0 || (msg.msg_flags & MSG_CTRUNC))
            conn_drop_fds(c, &msg);
        if (n == 0) {
            if (c->rlen > 0)
                ad_log(AD_LOG_DEBUG, "client pid %ld closed in the middle of a frame (%zu bytes)",
                       (long)c->peer.pid, c->rlen);
            /* The peer may have only shut its writing side: replies
             * already queued still go out before we close. */
            ad_conn_shutdown(c);
            return;
        }
        c->rlen += (size_t)n;
        bool more = conn_parse(c);
        if (c->closing)
            return;
        if (c->shutting)
            return; /* shutdown started the stall clock */
        if (c->rlen == 0)
            c->partial_since = 0;
        else if (c->partial_since == 0)
            c->partial_since = uv_now(c->poll.loop) | 1u; /* never 0 */
        if (!more)
            return;
    }
}

static void conn_on_poll(uv_poll_t *handle, int status, int events)
{
    ad_conn_t *c = handle->data;
    if (c->closing)
        return;
    if (status < 0) {
        /* libuv says EBADF for POLLERR: on a Unix socket that is a peer
         * that closed with frames (e.g. notifications) still unread. */
        ad_conn_close(c, status == UV_EBADF ? -ECONNRESET : status);
        return;
    }
    if (events & UV_WRITABLE)
        conn_flush(c);
    if ((events & UV_READABLE) && c->reading && !c->closing)
        conn_read(c);
    if (!c->closing)
        conn_update(c);
}
