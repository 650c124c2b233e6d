/* SPDX-License-Identifier: MIT
 *
 * conn.c -- one client connection: bytes in, frames out.
 *
 * A connection is a raw non-blocking socket under uv_poll_t rather than a
 * libuv stream, because replies carry file descriptors (SCM_RIGHTS) and libuv
 * streams cannot send arbitrary ones. Input is read with recvmsg into a
 * per-connection buffer that never grows past one maximum frame; the length
 * prefix is checked before a payload is buffered, so a peer cannot make us
 * allocate more than max_frame.
 *
 * Descriptors a peer sends (SCM_RIGHTS) travel with the first byte of the
 * sendmsg() that carried them, but a stream socket's recvmsg() happily
 * returns bytes of earlier messages together with them (it stops only after
 * the message holding the descriptors). So the conn never reads past the end
 * of the frame it is assembling: first the 4-byte header, then exactly the
 * payload. A read that starts at a frame's first byte and brings exactly one
 * descriptor attaches it to that frame, and on_frame() gets it; any other
 * descriptor is closed at once with a log line, as is one whose frame never
 * completes, so stray descriptors never accumulate. The price is a second
 * recvmsg() per frame.
 *
 * Output is a queue of whole frames with a byte cap, written when the socket
 * is writable; a peer that never reads hits the cap and is dropped. Before
 * that, max_in_flight throttles a peer that pipelines requests faster than
 * it reads replies: its socket is no longer polled for reading until the
 * replies drain to half the limit, so the daemon holds at most
 * max_in_flight replies for it instead of max_queued bytes. A throttled
 * peer that also stops reading shows up in ad_conn_stalled_since() and the
 * server drops it after its stall timeout.
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

#include "fdpass.h"
#include "log.h"
#include "wire.h"

_Static_assert(AD_CONN_MAX_SEND_FDS <= ARENA_FDPASS_MAX, "a frame's fds go in one message");

#define CONN_READS_PER_EVENT 32 /* fairness between busy peers (two per frame) */
#define CONN_MIN_BUFFER      4096u
#define CONN_KEEP_BUFFER     16384u /* larger input buffers are freed after a frame */
#define CONN_MAX_STRAY_FDS   16     /* cmsg room; the kernel drops the rest */

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
    size_t flen;  /* payload length of the frame being read, once rlen >= header */
    int frame_fd; /* the descriptor that came with this frame's first byte; -1 */
    out_frame_t *out_head;
    out_frame_t **out_tail;
    size_t queued;
    size_t nout;            /* frames in the output queue */
    size_t pending;         /* requests the owner holds unanswered */
    uint64_t partial_since; /* loop ms; 0: not waiting on the peer */
    uint64_t written_since; /* throttled: loop ms of the last write progress */
    bool throttled;         /* reading stopped by max_in_flight */
    bool throttle_logged;
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
    if (c->frame_fd >= 0) {
        ad_log(AD_LOG_INFO, "client pid %ld: closed the file descriptor of an unfinished frame",
               (long)c->peer.pid);
        (void)close(c->frame_fd);
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
    uint64_t since = c->partial_since;
    if (c->throttled && c->out_head && (since == 0 || c->written_since < since))
        since = c->written_since;
    return since;
}

bool ad_conn_is_throttled(const ad_conn_t *c)
{
    return c->throttled;
}

/* Stops or resumes reading by the max_in_flight rule (hysteresis: resume
 * below half the limit, so a pipelining peer is not toggled per reply). */
static void conn_throttle_check(ad_conn_t *c)
{
    size_t max = c->limits.max_in_flight;
    size_t in_flight = c->nout + c->pending;
    if (max == 0 || c->closing)
        return;
    if (!c->throttled && in_flight >= max) {
        c->throttled = true;
        c->written_since = uv_now(c->poll.loop) | 1u;
        ad_log(c->throttle_logged ? AD_LOG_DEBUG : AD_LOG_WARN,
               "client pid %ld has %zu requests in flight (max_requests_in_flight %zu); "
               "not reading from it until they drain",
               (long)c->peer.pid, in_flight, max);
        c->throttle_logged = true;
    } else if (c->throttled && in_flight <= max / 2) {
        c->throttled = false;
        c->written_since = 0;
    }
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
    if (c->reading && !c->shutting && !c->throttled)
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
    c->frame_fd = -1;
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

void ad_conn_set_pending(ad_conn_t *c, size_t pending)
{
    if (!c || c->closing)
        return;
    c->pending = pending;
    conn_throttle_check(c);
    conn_update(c);
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
        /* The fds go with the frame's first byte only. */
        ssize_t n = arena__send_with_fds(c->fd, f->data + f->off, f->len - f->off, f->fds,
                                         f->off == 0 ? f->nfds : 0, NULL, 0, MSG_DONTWAIT);
        if (n < 0) {
            if (n == -EAGAIN || n == -EWOULDBLOCK)
                break;
            ad_conn_close(c, (int)n);
            return;
        }
        f->off += (size_t)n;
        if (c->throttled && n > 0)
            c->written_since = uv_now(c->poll.loop) | 1u;
        /* Sent with the first byte; the peer has its own copies now. */
        out_frame_close_fds(f);
        if (f->off < f->len)
            break; /* a short write: the socket buffer is full */
        c->out_head = f->next;
        if (!c->out_head)
            c->out_tail = &c->out_head;
        c->queued -= f->len;
        c->nout--;
        out_frame_free(f);
    }
    conn_throttle_check(c);
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
            /* Out of descriptors (EMFILE): a reply that must carry them
             * cannot go out, and a peer waiting for it would hang; close
             * the connection instead, so the peer sees EOF. */
            int r = -errno;
            out_frame_close_fds(f);
            free(f);
            free(frame);
            ad_conn_close(c, r);
            return r;
        }
        f->fds[f->nfds++] = d;
    }
    f->data = frame;
    f->len = len;
    *c->out_tail = f;
    c->out_tail = &f->next;
    c->queued += len;
    c->nout++;
    if (c->out_head == f) {
        conn_flush(c);
    } else {
        conn_throttle_check(c);
        conn_update(c);
    }
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

/* Takes the descriptors a peer attached to a message: the one that came
 * alone with a frame's first byte is kept for that frame; every other one is
 * closed, with a log line. */
static void conn_take_fds(ad_conn_t *c, struct msghdr *msg, bool at_frame_start)
{
    int fds[CONN_MAX_STRAY_FDS];
    size_t nfds = 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm; cm = CMSG_NXTHDR(msg, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            if (nfds < CONN_MAX_STRAY_FDS)
                fds[nfds++] = fd;
            else
                (void)close(fd); /* cannot happen: the control buffer holds no more */
        }
    }
    bool truncated = (msg->msg_flags & MSG_CTRUNC) != 0;
    if (nfds == 1 && !truncated && at_frame_start && c->frame_fd < 0) {
        c->frame_fd = fds[0];
        return;
    }
    for (size_t i = 0; i < nfds; i++)
        (void)close(fds[i]);
    if (nfds > 0 || truncated)
        ad_log(AD_LOG_INFO, "client pid %ld sent %zu file descriptor(s)%s%s; closed them",
               (long)c->peer.pid, nfds, truncated ? " and more" : "",
               at_frame_start ? " with one frame" : " in the middle of a frame");
}

/* Makes room for need bytes of input (need <= max_frame + header). */
static int conn_reserve(ad_conn_t *c, size_t need)
{
    if (need <= c->rcap)
        return 0;
    size_t cap = c->rcap ? c->rcap * 2 : CONN_MIN_BUFFER;
    if (cap < need)
        cap = need;
    if (cap > c->limits.max_frame + AD_WIRE_HEADER)
        cap = c->limits.max_frame + AD_WIRE_HEADER;
    if (cap < need)
        return -EMSGSIZE; /* cannot happen: the header was checked */
    uint8_t *buf = realloc(c->rbuf, cap);
    if (!buf)
        return -ENOMEM;
    c->rbuf = buf;
    c->rcap = cap;
    return 0;
}

/* The header is complete: checks the announced length. Returns false when the
 * frame is refused (reading has stopped). */
static bool conn_header(ad_conn_t *c)
{
    size_t len = 0;
    if (ad_wire_frame_length(c->rbuf, c->limits.max_frame, &len) == 0) {
        c->flen = len;
        return true;
    }
    c->reading = false;
    if (c->frame_fd >= 0) {
        (void)close(c->frame_fd);
        c->frame_fd = -1;
    }
    if (c->cb.on_oversize)
        c->cb.on_oversize(c, len, c->ctx);
    else
        ad_conn_close(c, -EMSGSIZE);
    return false;
}

/* The frame in the buffer is complete: hands it (and its descriptor) over. */
static void conn_deliver(ad_conn_t *c)
{
    int fd = c->frame_fd;
    size_t len = c->flen;
    c->frame_fd = -1;
    c->rlen = 0;
    c->flen = 0;
    c->partial_since = 0;
    c->cb.on_frame(c, c->rbuf + AD_WIRE_HEADER, len, fd, c->ctx);
    if (!c->closing && c->rcap > CONN_KEEP_BUFFER) {
        /* An idle peer should not pin a large buffer from one big request. */
        free(c->rbuf);
        c->rbuf = NULL;
        c->rcap = 0;
    }
    conn_throttle_check(c);
}

static void conn_read(ad_conn_t *c)
{
    for (int i = 0; i < CONN_READS_PER_EVENT && c->reading && !c->throttled && !c->closing; i++) {
        /* Never past the frame being read: the header, then its payload. */
        size_t want = c->rlen < AD_WIRE_HEADER ? AD_WIRE_HEADER - c->rlen
                                               : AD_WIRE_HEADER + c->flen - c->rlen;
        int r = conn_reserve(c, c->rlen + want);
        if (r < 0) {
            ad_conn_close(c, r);
            return;
        }
        struct iovec iov = {.iov_base = c->rbuf + c->rlen, .iov_len = want};
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
            conn_take_fds(c, &msg, c->rlen == 0);
        if (n == 0) {
            if (c->rlen > 0)
                ad_log(AD_LOG_DEBUG, "client pid %ld closed in the middle of a frame (%zu bytes)",
                       (long)c->peer.pid, c->rlen);
            /* The peer may have only shut its writing side: replies
             * already queued still go out before we close. */
            ad_conn_shutdown(c);
            return;
        }
        bool had_header = c->rlen >= AD_WIRE_HEADER;
        c->rlen += (size_t)n;
        if (!had_header && c->rlen >= AD_WIRE_HEADER && !conn_header(c))
            return;
        if (c->rlen >= AD_WIRE_HEADER && c->rlen == AD_WIRE_HEADER + c->flen) {
            conn_deliver(c);
            if (c->closing || c->shutting)
                return; /* shutdown started the stall clock */
            continue;
        }
        if (c->partial_since == 0)
            c->partial_since = uv_now(c->poll.loop) | 1u; /* never 0 */
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
