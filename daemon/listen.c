/* SPDX-License-Identifier: MIT
 *
 * listen.c -- the listening socket and the connections it yields: binding,
 * accepting, refusing, each connection's slot, and the sweep of stalled ones.
 *
 * The listening socket is a raw non-blocking Unix socket under uv_poll (like
 * the connections, see conn.c). Each accepted connection gets a conn (bytes
 * and frames) and a session (protocol and leases); the server owns the pair
 * in a slot and the list of all of them, so shutdown can close every one.
 * Under systemd the socket may be inherited (socket activation): it is then
 * served as it is and the path left alone, since the socket unit owns it.
 *
 * Peers control how many connections they open, so max_clients caps them
 * in total (bounded again by RLIMIT_NOFILE, whose soft limit is raised to the
 * hard one at start) and max_connections_per_uid per uid (root exempt); over
 * either a peer gets ERROR_LIMIT naming the limit and a closed socket, and
 * refusals are logged at most once a second. A connection must send a whole
 * first frame (Hello) within hello_timeout_ms or it gets ERROR_TIMED_OUT and
 * is closed, so idle sockets cannot hold slots and fds. The sweep timer also
 * drops peers stalled for frame_timeout_ms: half a frame sent, or replies
 * unread while a shutdown or the in-flight throttle (conn.c) waits on them.
 * A spare fd is kept so that running out of descriptors (EMFILE) can still
 * accept and refuse the connection; without one, or out of memory, accepting
 * pauses for a moment instead of spinning on a readable listener.
 *
 * Trusts only the kernel's SO_PEERCRED for who a peer is. Calls down into
 * timers.c (re-arming after every frame and close); server.c and reload.c
 * call in. Nothing here blocks. Loop thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "admin.h"
#include "conn.h"
#include "dispatch.h"
#include "log.h"
#include "server_internal.h"
#include "size.h"
#include "wire.h"

#define SERVER_ACCEPTS_PER_EVENT 64
#define SERVER_ACCEPT_PAUSE_MS   100 /* after accept fails for want of fds or memory */
#define SERVER_FD_RESERVE        64  /* fds kept for pools, replies, logs, the spare */

void ad_server__err(char *err, size_t err_len, const char *fmt, ...)
{
    if (!err || err_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    /* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): false positive */
    (void)vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

/* Tells a connection that never said hello why it is closed, then closes
 * it once that is written (at once: nothing else is queued for it). */
static void server_drop_silent(ad_server_t *s, slot_t *slot, uint64_t waited)
{
    const ad_conn_peer_t *peer = ad_conn_peer(slot->conn);
    ad_log(AD_LOG_WARN,
           "client pid %ld uid %lu: no hello within %" PRIu64 " ms (hello_timeout_ms); closing",
           (long)peer->pid, (unsigned long)peer->uid, waited);
    ad_admin_counters(s->admin)->protocol_errors_total++;
    char why[96];
    (void)snprintf(why, sizeof(why), "no hello within %" PRIu64 " ms (hello_timeout_ms)",
                   s->config.hello_timeout_ms);
    ad_wire_reply_t reply = {.request_id = 0, .type = AD_WIRE_REPLY_ERROR};
    reply.u.error.code = AD_WIRE_ERROR_TIMED_OUT;
    reply.u.error.message = why;
    uint8_t *frame;
    size_t len;
    if (ad_wire_encode(&reply, &frame, &len) == 0)
        (void)ad_conn_send(slot->conn, frame, len, -1);
    ad_conn_shutdown(slot->conn);
}

/* Closes connections stalled longer than frame_timeout_ms: a peer that sends
 * half a frame, or stops reading while we shut its connection down or
 * throttle it, would otherwise pin a buffer and a slot forever. Connections
 * that sent no whole frame within hello_timeout_ms go too: idle sockets
 * would otherwise hold fds and max_clients slots forever. */
static void on_sweep_timer(uv_timer_t *t)
{
    ad_server_t *s = t->data;
    uint64_t now = ad_server__now(s);
    uint64_t limit = s->config.frame_timeout_ms;
    uint64_t hello = s->config.hello_timeout_ms;
    for (slot_t *slot = s->slots; slot; slot = slot->next) {
        if (ad_conn_is_closing(slot->conn))
            continue;
        uint64_t since = ad_conn_stalled_since(slot->conn);
        if (limit > 0 && since != 0 && now >= since && now - since >= limit) {
            ad_admin_counters(s->admin)->protocol_errors_total++;
            ad_log(AD_LOG_WARN,
                   "client pid %ld: stalled for %" PRIu64
                   " ms (half-sent frame or unread replies); closing",
                   (long)ad_conn_peer(slot->conn)->pid, now - since);
            ad_conn_close(slot->conn, -ETIMEDOUT);
            continue;
        }
        if (hello > 0 && !slot->greeted && (since == 0 || limit == 0) &&
            now - slot->accepted_ms >= hello) {
            /* A peer in the middle of its first frame is the stall rule's,
             * unless that rule is off. */
            slot->greeted = true; /* one notice */
            server_drop_silent(s, slot, now - slot->accepted_ms);
        }
    }
}

void ad_server__sweep_arm(ad_server_t *s)
{
    uint64_t limit = s->config.frame_timeout_ms;
    uint64_t hello = s->config.hello_timeout_ms;
    if (limit == 0 || (hello > 0 && hello < limit))
        limit = hello;
    if (limit == 0) {
        (void)uv_timer_stop(&s->sweep_timer);
        return;
    }
    /* Checking four times per period bounds the overshoot to a quarter. */
    uint64_t period = limit / 4 > 0 ? limit / 4 : 1;
    (void)uv_timer_start(&s->sweep_timer, on_sweep_timer, period, period);
}

/* The connection cap in force: max_clients, but never more than the fd limit
 * leaves room for (each connection is one fd; pools, replies in flight and
 * the spare need the reserve). Raises the soft RLIMIT_NOFILE to the hard one
 * first: the loop uses epoll, so high fd numbers cost nothing. */
void ad_server__fit_fd_limit(ad_server_t *s)
{
    uint32_t cap = s->config.max_clients;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur < rl.rlim_max) {
            struct rlimit up = {.rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max};
            if (setrlimit(RLIMIT_NOFILE, &up) == 0)
                rl = up;
        }
        rlim_t room =
            rl.rlim_cur > 2 * SERVER_FD_RESERVE ? rl.rlim_cur - SERVER_FD_RESERVE : rl.rlim_cur / 2;
        if (rl.rlim_cur != RLIM_INFINITY && room < cap) {
            ad_log(AD_LOG_WARN,
                   "max_clients %" PRIu32 " does not fit RLIMIT_NOFILE %llu; serving at most %llu "
                   "connections",
                   cap, (unsigned long long)rl.rlim_cur, (unsigned long long)room);
            cap = (uint32_t)room;
        }
    }
    s->max_conns = cap > 0 ? cap : 1;
}

static void on_frame(ad_conn_t *conn, const uint8_t *payload, size_t len, int fd, void *ctx)
{
    slot_t *slot = ctx;
    (void)conn;
    slot->greeted = true;
    ad_session_frame(slot->session, payload, len, fd, ad_server__now(slot->server));
    ad_server__rearm(slot->server);
}

static void on_oversize(ad_conn_t *conn, size_t len, void *ctx)
{
    slot_t *slot = ctx;
    (void)conn;
    ad_session_oversize(slot->session, len);
}

static void on_close(ad_conn_t *conn, int reason, void *ctx)
{
    slot_t *slot = ctx;
    ad_server_t *s = slot->server;
    (void)conn;
    ad_session_free(slot->session, reason, ad_server__now(s));
    if (slot->prev)
        slot->prev->next = slot->next;
    else
        s->slots = slot->next;
    if (slot->next)
        slot->next->prev = slot->prev;
    s->nslots--;
    free(slot);
    ad_server__rearm(s);
}

/* Logs a refusal at WARN, at most once a second, counting the ones that
 * went unlogged in between, so a connection flood cannot flood the log. */
static void server_log_refusal(ad_server_t *s, const char *why)
{
    uint64_t now = ad_server__now(s);
    if (s->refusals_logged_ms != 0 && now - s->refusals_logged_ms < 1000) {
        s->refusals_unlogged++;
        return;
    }
    if (s->refusals_unlogged > 0)
        ad_log(AD_LOG_WARN, "refusing a connection: %s (and %" PRIu64 " more since the last line)",
               why, s->refusals_unlogged);
    else
        ad_log(AD_LOG_WARN, "refusing a connection: %s", why);
    s->refusals_logged_ms = now | 1u;
    s->refusals_unlogged = 0;
}

/* Tells a peer why it is dropped, without waiting, and closes fd. */
static void server_refuse(ad_server_t *s, int fd, ad_wire_error_t code, const char *why)
{
    server_log_refusal(s, why);
    ad_wire_reply_t reply = {.request_id = 0, .type = AD_WIRE_REPLY_ERROR};
    reply.u.error.code = code;
    reply.u.error.message = why;
    uint8_t *frame;
    size_t len;
    if (ad_wire_encode(&reply, &frame, &len) == 0) {
        ssize_t w = send(fd, frame, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)w;
        free(frame);
    }
    (void)close(fd);
    ad_admin_counters(s->admin)->connections_refused_total++;
}

/* Connections uid holds now. Linear, but only at accept time, and bounded by
 * the connection cap. */
static uint32_t server_uid_connections(const ad_server_t *s, uid_t uid)
{
    uint32_t n = 0;
    for (const slot_t *slot = s->slots; slot; slot = slot->next)
        if (slot->uid == uid && !ad_conn_is_closing(slot->conn))
            n++;
    return n;
}

static void server_add(ad_server_t *s, int fd)
{
    static const ad_conn_callbacks_t callbacks = {
        .on_frame = on_frame,
        .on_oversize = on_oversize,
        .on_close = on_close,
    };
    char why[160];
    if (s->nslots >= s->max_conns) {
        (void)snprintf(why, sizeof(why),
                       "too many connections: %" PRIu32 " open (max_clients %" PRIu32 ")",
                       s->nslots, s->max_conns);
        server_refuse(s, fd, AD_WIRE_ERROR_LIMIT, why);
        return;
    }
    struct ucred cred;
    socklen_t cl = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
        ad_log(AD_LOG_WARN, "cannot read the credentials of a new connection: %s",
               ad_errstr(-errno));
        (void)close(fd);
        return;
    }
    uint32_t per_uid = s->config.max_connections_per_uid;
    if (per_uid > 0 && cred.uid != 0) {
        uint32_t held = server_uid_connections(s, cred.uid);
        if (held >= per_uid) {
            (void)snprintf(why, sizeof(why),
                           "too many connections from uid %lu: %" PRIu32
                           " open (max_connections_per_uid %" PRIu32 ")",
                           (unsigned long)cred.uid, held, per_uid);
            server_refuse(s, fd, AD_WIRE_ERROR_LIMIT, why);
            return;
        }
    }
    slot_t *slot = calloc(1, sizeof(*slot));
    if (!slot) {
        server_refuse(s, fd, AD_WIRE_ERROR_INTERNAL, "the daemon is out of memory");
        return;
    }
    slot->server = s;
    slot->uid = cred.uid;
    slot->accepted_ms = ad_server__now(s);
    ad_conn_limits_t limits = {.max_frame = s->config.max_frame,
                               .max_queued = s->config.max_reply_queue,
                               .max_in_flight = s->config.max_requests_in_flight};
    int r = ad_conn_new(&s->loop, fd, &limits, &callbacks, slot, &slot->conn);
    if (r < 0) {
        ad_log(AD_LOG_WARN, "cannot watch a new connection: %s", ad_errstr(r));
        free(slot);
        return;
    }
    r = ad_session_new(s->dispatch, slot->conn, &slot->session);
    if (r < 0) {
        ad_log(AD_LOG_ERROR, "cannot start a session: %s", ad_errstr(r));
        /* on_close must not run with no session: close without it. */
        slot->session = NULL;
    }
    slot->next = s->slots;
    if (s->slots)
        s->slots->prev = slot;
    s->slots = slot;
    s->nslots++;
    ad_admin_counters(s->admin)->connections_total++;
    if (!slot->session)
        ad_conn_close(slot->conn, r);
    else
        ad_log(AD_LOG_DEBUG, "connection from pid %ld uid %lu", (long)ad_conn_peer(slot->conn)->pid,
               (unsigned long)ad_conn_peer(slot->conn)->uid);
}

static void on_listen(uv_poll_t *handle, int status, int events);

/* Accepting was paused (EMFILE without a spare fd, ENOMEM): try again. */
static void on_accept_timer(uv_timer_t *t)
{
    ad_server_t *s = t->data;
    if (s->stopping || !s->listening)
        return;
    if (s->reserve_fd < 0)
        s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    (void)uv_poll_start(&s->listen_poll, UV_READABLE, on_listen);
}

static void on_listen(uv_poll_t *handle, int status, int events)
{
    ad_server_t *s = handle->data;
    (void)events;
    if (status < 0) {
        ad_log(AD_LOG_ERROR, "listening socket: %s", uv_strerror(status));
        return;
    }
    for (int i = 0; i < SERVER_ACCEPTS_PER_EVENT && !s->stopping; i++) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0) {
            server_add(s, fd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        if ((errno == EMFILE || errno == ENFILE) && s->reserve_fd >= 0) {
            /* Free the spare fd to take the connection off the backlog and
             * close it; otherwise the listener stays readable forever. */
            int err = errno;
            (void)close(s->reserve_fd);
            s->reserve_fd = -1;
            fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (fd >= 0)
                server_refuse(s, fd, AD_WIRE_ERROR_LIMIT,
                              err == EMFILE ? "the daemon is out of file descriptors (EMFILE)"
                                            : "the system is out of file descriptors (ENFILE)");
            s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (s->reserve_fd >= 0)
                continue;
        }
        /* No spare fd, or out of kernel memory: a level-triggered listener
         * would spin. Stop accepting for a moment; clients wait in the
         * backlog meanwhile, and connected ones are served as usual. */
        int err = -errno;
        uint64_t now = ad_server__now(s);
        if (s->accept_paused_logged_ms == 0 || now - s->accept_paused_logged_ms >= 1000) {
            ad_log(AD_LOG_WARN, "accept: %s; pausing accepts for %d ms", ad_errstr(err),
                   SERVER_ACCEPT_PAUSE_MS);
            s->accept_paused_logged_ms = now | 1u;
        }
        (void)uv_poll_stop(&s->listen_poll);
        (void)uv_timer_start(&s->accept_timer, on_accept_timer, SERVER_ACCEPT_PAUSE_MS, 0);
        return;
    }
}

/* mkdir -p of the socket's parent directory (0755). */
static int server_mkdirs(const char *path)
{
    char dir[AD_CONFIG_SOCKET_MAX];
    (void)snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static int server_listen(ad_server_t *s, char *err, size_t err_len)
{
    const char *path = s->config.socket;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        ad_server__err(err, err_len, "socket path too long: %s", path);
        return -ENAMETOOLONG;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);

    int r = server_mkdirs(path);
    if (r < 0) {
        ad_server__err(err, err_len, "cannot create the directory of %s: %s", path, ad_errstr(r));
        return r;
    }

    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            ad_server__err(err, err_len, "%s exists and is not a socket", path);
            return -EEXIST;
        }
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe < 0) {
            r = -errno;
            ad_server__err(err, err_len, "socket: %s", ad_errstr(r));
            return r;
        }
        r = connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : -errno;
        (void)close(probe);
        if (r == 0 || r == -EAGAIN) {
            ad_server__err(err, err_len, "another arenad is listening on %s", path);
            return -EADDRINUSE;
        }
        if (r != -ECONNREFUSED) {
            ad_server__err(err, err_len, "cannot probe %s: %s", path, ad_errstr(r));
            return r;
        }
        ad_log(AD_LOG_INFO, "removing stale socket %s", path);
        if (unlink(path) < 0 && errno != ENOENT) {
            r = -errno;
            ad_server__err(err, err_len, "cannot remove stale socket %s: %s", path, ad_errstr(r));
            return r;
        }
    } else if (errno != ENOENT) {
        r = -errno;
        ad_server__err(err, err_len, "%s: %s", path, ad_errstr(r));
        return r;
    }

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        r = -errno;
        ad_server__err(err, err_len, "socket: %s", ad_errstr(r));
        return r;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        r = -errno;
        ad_server__err(err, err_len, "cannot bind %s: %s", path, ad_errstr(r));
        if (r == -EADDRINUSE)
            ad_server__err(err, err_len, "another arenad is listening on %s", path);
        goto fail_fd;
    }
    if (chmod(path, (mode_t)s->config.socket_mode) < 0 ||
        (s->config.has_socket_group && chown(path, (uid_t)-1, s->config.socket_gid) < 0) ||
        lstat(path, &st) < 0) {
        r = -errno;
        ad_server__err(err, err_len, "cannot set the mode or group of %s: %s", path, ad_errstr(r));
        goto fail_unlink;
    }
    if (listen(fd, SOMAXCONN) < 0) {
        r = -errno;
        ad_server__err(err, err_len, "listen on %s: %s", path, ad_errstr(r));
        goto fail_unlink;
    }
    s->sock_dev = st.st_dev;
    s->sock_ino = st.st_ino;
    s->listen_fd = fd;
    return 0;

fail_unlink:
    (void)unlink(path);
fail_fd:
    (void)close(fd);
    return r;
}

/* Removes the socket file if it is still the one we bound. */
static void server_unlink_socket(ad_server_t *s)
{
    struct stat st;
    if (lstat(s->config.socket, &st) == 0 && st.st_dev == s->sock_dev && st.st_ino == s->sock_ino)
        (void)unlink(s->config.socket);
}

int ad_server__listen_start(ad_server_t *s, char *err, size_t err_len)
{
    int r;
    if (!s->inherited) {
        r = server_listen(s, err, err_len);
        if (r < 0)
            return r;
    }
    s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ad_server__fit_fd_limit(s);
    if ((r = uv_poll_init(&s->loop, &s->listen_poll, s->listen_fd)) < 0) {
        ad_server__err(err, err_len, "uv_poll_init: %s", uv_strerror(r));
        return r;
    }
    s->listen_poll.data = s;
    s->listening = true;
    if ((r = uv_poll_start(&s->listen_poll, UV_READABLE, on_listen)) < 0) {
        ad_server__err(err, err_len, "uv_poll_start: %s", uv_strerror(r));
        return r;
    }
    return 0;
}

void ad_server__listen_stop(ad_server_t *s)
{
    if (s->listening) {
        uv_close((uv_handle_t *)&s->listen_poll, NULL);
        s->listening = false;
    }
    if (s->listen_fd >= 0) {
        if (!s->inherited)
            server_unlink_socket(s);
        (void)close(s->listen_fd);
        s->listen_fd = -1;
    }
    if (s->reserve_fd >= 0) {
        (void)close(s->reserve_fd);
        s->reserve_fd = -1;
    }
}
