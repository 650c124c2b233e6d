/* SPDX-License-Identifier: MIT
 *
 * server.c -- the loop: listening socket, accept, signals, timers.
 *
 * One libuv loop runs everything. The listening socket is a raw non-blocking
 * Unix socket under uv_poll (like the connections, see conn.c). Each accepted
 * connection gets a conn (bytes and frames) and a session (protocol and
 * leases); the server owns the pair and the list of all of them, so shutdown
 * can close every one. Two timers follow the lease manager: the decay timer
 * fires when the oldest dirty extent is due for punching, the wait timer at
 * the earliest deadline of a queued lease request; both are re-armed after
 * every event that can change them. Signals arrive through uv_signal:
 * SIGTERM/SIGINT stop, SIGHUP reloads.
 *
 * Under systemd the listening socket may be inherited (socket activation):
 * the server then serves it as it is and leaves the path alone, since the
 * socket unit owns it. Two more timers serve the service manager through the
 * hooks: a status tick (once a second, reporting only changed figures) and
 * the watchdog ping; main.c turns both into sd_notify messages.
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
 * pauses for a moment instead of spinning on a readable listener. Nothing
 * here blocks. Loop thread only.
 */
#include "server.h"

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
#include "heap.h"
#include "lease.h"
#include "log.h"
#include "restart.h"
#include "size.h"
#include "wire.h"

#define SERVER_ACCEPTS_PER_EVENT 64
#define SERVER_ACCEPT_PAUSE_MS   100 /* after accept fails for want of fds or memory */
#define SERVER_FD_RESERVE        64  /* fds kept for pools, replies, logs, the spare */

typedef struct slot {
    struct slot *prev;
    struct slot *next;
    ad_server_t *server;
    ad_conn_t *conn;
    ad_session_t *session;
    uint64_t accepted_ms; /* loop time of accept */
    uid_t uid;
    bool greeted; /* a whole frame (the first must be Hello) arrived */
} slot_t;

struct ad_server {
    uv_loop_t loop;
    bool loop_ready;
    ad_config_t config;
    ad_server_hooks_t hooks;
    ad_restart_t *restart; /* the fd store's ledger; NULL without one */
    int listen_fd;
    bool listening;
    uv_poll_t listen_poll;
    dev_t sock_dev;
    ino_t sock_ino;
    int reserve_fd;
    uv_signal_t sig_term;
    uv_signal_t sig_int;
    uv_signal_t sig_hup;
    uv_timer_t purge_timer;
    uv_timer_t wait_timer;
    uv_timer_t sweep_timer; /* drops peers stalled in the middle of a frame */
    uv_timer_t status_timer;
    uv_timer_t watchdog_timer;
    uv_timer_t accept_timer; /* resumes accepting after EMFILE or ENOMEM */
    uint64_t accept_paused_logged_ms;
    ad_server_figures_t last_figures;
    bool figures_sent;
    bool inherited;     /* listen_fd came from the service manager */
    uint64_t purge_due; /* what purge_timer is armed for; UINT64_MAX: idle */
    uint64_t wait_due;
    bool handles_ready;
    bool stopping;
    ad_leases_t *leases;
    ad_admin_t *admin;
    ad_dispatch_t *dispatch;
    slot_t *slots;
    uint32_t nslots;
    uint32_t max_conns;          /* max_clients, bounded by RLIMIT_NOFILE */
    uint64_t refusals_logged_ms; /* last refusal log line; 0: none yet */
    uint64_t refusals_unlogged;  /* refusals since that line */
};

static void server_err(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void server_err(char *err, size_t err_len, const char *fmt, ...)
{
    if (!err || err_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    /* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): false positive */
    (void)vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

static uint64_t server_now(ad_server_t *s)
{
    return uv_now(&s->loop);
}

/* ---- timers --------------------------------------------------------------- */

static void server_rearm(ad_server_t *s);

static void on_purge_timer(uv_timer_t *t)
{
    ad_server_t *s = t->data;
    uint64_t now = server_now(s);
    s->purge_due = UINT64_MAX;
    uint64_t punched = ad_leases_purge(s->leases, now);
    if (punched > 0) {
        char size[32];
        ad_log(AD_LOG_DEBUG, "decay: punched %s", arena__size_format(punched, size, sizeof(size)));
    }
    uint64_t next = ad_leases_next_purge_ms(s->leases);
    if (next <= now) {
        /* Still due: punching failed (the range stays dirty). Retry in a
         * second rather than spin on a timer that is always due. */
        ad_log(AD_LOG_WARN, "decay: cannot punch released pages; retrying in 1 s");
        s->purge_due = next;
        (void)uv_timer_start(&s->purge_timer, on_purge_timer, 1000, 0);
    }
    server_rearm(s);
}

static void on_wait_timer(uv_timer_t *t)
{
    ad_server_t *s = t->data;
    s->wait_due = UINT64_MAX;
    server_rearm(s);
}

static void timer_arm(ad_server_t *s, uv_timer_t *t, uint64_t *armed, uint64_t due, uv_timer_cb cb)
{
    if (due == *armed)
        return;
    *armed = due;
    if (due == UINT64_MAX) {
        (void)uv_timer_stop(t);
        return;
    }
    uint64_t now = server_now(s);
    (void)uv_timer_start(t, cb, due > now ? due - now : 0, 0);
}

/* Completes queued lease requests that fit now or timed out, then points the
 * timers at the next purge and the next deadline. Called after every event. */
static void server_rearm(ad_server_t *s)
{
    if (s->stopping)
        return;
    (void)ad_dispatch_serve_waiters(s->dispatch, server_now(s));
    timer_arm(s, &s->purge_timer, &s->purge_due, ad_leases_next_purge_ms(s->leases),
              on_purge_timer);
    timer_arm(s, &s->wait_timer, &s->wait_due, ad_leases_next_deadline(s->leases), on_wait_timer);
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
    uint64_t now = server_now(s);
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

static void sweep_arm(ad_server_t *s)
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
static void server_fit_fd_limit(ad_server_t *s)
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

/* ---- service manager ------------------------------------------------------- */

static void server_figures(ad_server_t *s, ad_server_figures_t *ret)
{
    ad_wire_status_t st;
    ad_admin_status(s->admin, server_now(s), &st);
    memset(ret, 0, sizeof(*ret));
    ret->budget = st.budget;
    ret->leased_bytes = st.leased_bytes;
    ret->leases = st.leases;
    ret->clients = st.clients;
}

static void on_status_timer(uv_timer_t *t)
{
    ad_server_t *s = t->data;
    ad_server_figures_t f;
    server_figures(s, &f);
    const ad_server_figures_t *l = &s->last_figures;
    if (s->figures_sent && f.budget == l->budget && f.leased_bytes == l->leased_bytes &&
        f.leases == l->leases && f.clients == l->clients)
        return;
    s->last_figures = f;
    s->figures_sent = true;
    s->hooks.status(s->hooks.ctx, &f);
}

static void on_watchdog_timer(uv_timer_t *t)
{
    ad_server_t *s = t->data;
    s->hooks.watchdog(s->hooks.ctx);
}

/* ---- connections ---------------------------------------------------------- */

static void on_frame(ad_conn_t *conn, const uint8_t *payload, size_t len, int fd, void *ctx)
{
    slot_t *slot = ctx;
    (void)conn;
    slot->greeted = true;
    ad_session_frame(slot->session, payload, len, fd, server_now(slot->server));
    server_rearm(slot->server);
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
    ad_session_free(slot->session, reason, server_now(s));
    if (slot->prev)
        slot->prev->next = slot->next;
    else
        s->slots = slot->next;
    if (slot->next)
        slot->next->prev = slot->prev;
    s->nslots--;
    free(slot);
    server_rearm(s);
}

/* Logs a refusal at WARN, at most once a second, counting the ones that
 * went unlogged in between, so a connection flood cannot flood the log. */
static void server_log_refusal(ad_server_t *s, const char *why)
{
    uint64_t now = server_now(s);
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
    slot->accepted_ms = server_now(s);
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
        uint64_t now = server_now(s);
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

/* ---- the socket ----------------------------------------------------------- */

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
        server_err(err, err_len, "socket path too long: %s", path);
        return -ENAMETOOLONG;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);

    int r = server_mkdirs(path);
    if (r < 0) {
        server_err(err, err_len, "cannot create the directory of %s: %s", path, ad_errstr(r));
        return r;
    }

    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            server_err(err, err_len, "%s exists and is not a socket", path);
            return -EEXIST;
        }
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe < 0) {
            r = -errno;
            server_err(err, err_len, "socket: %s", ad_errstr(r));
            return r;
        }
        r = connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : -errno;
        (void)close(probe);
        if (r == 0 || r == -EAGAIN) {
            server_err(err, err_len, "another arenad is listening on %s", path);
            return -EADDRINUSE;
        }
        if (r != -ECONNREFUSED) {
            server_err(err, err_len, "cannot probe %s: %s", path, ad_errstr(r));
            return r;
        }
        ad_log(AD_LOG_INFO, "removing stale socket %s", path);
        if (unlink(path) < 0 && errno != ENOENT) {
            r = -errno;
            server_err(err, err_len, "cannot remove stale socket %s: %s", path, ad_errstr(r));
            return r;
        }
    } else if (errno != ENOENT) {
        r = -errno;
        server_err(err, err_len, "%s: %s", path, ad_errstr(r));
        return r;
    }

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        r = -errno;
        server_err(err, err_len, "socket: %s", ad_errstr(r));
        return r;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        r = -errno;
        server_err(err, err_len, "cannot bind %s: %s", path, ad_errstr(r));
        if (r == -EADDRINUSE)
            server_err(err, err_len, "another arenad is listening on %s", path);
        goto fail_fd;
    }
    if (chmod(path, (mode_t)s->config.socket_mode) < 0 ||
        (s->config.has_socket_group && chown(path, (uid_t)-1, s->config.socket_gid) < 0) ||
        lstat(path, &st) < 0) {
        r = -errno;
        server_err(err, err_len, "cannot set the mode or group of %s: %s", path, ad_errstr(r));
        goto fail_unlink;
    }
    if (listen(fd, SOMAXCONN) < 0) {
        r = -errno;
        server_err(err, err_len, "listen on %s: %s", path, ad_errstr(r));
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

/* ---- signals -------------------------------------------------------------- */

static void server_stop(ad_server_t *s)
{
    if (s->stopping)
        return;
    s->stopping = true;
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
    /* Clients keep their mappings across a daemon restart: their leases'
     * pages must survive this shutdown, so sessions end without punching. */
    if (s->dispatch)
        ad_dispatch_set_stopping(s->dispatch);
    for (slot_t *slot = s->slots; slot; slot = slot->next)
        ad_conn_close(slot->conn, 0);
    if (s->handles_ready) {
        uv_close((uv_handle_t *)&s->sig_term, NULL);
        uv_close((uv_handle_t *)&s->sig_int, NULL);
        uv_close((uv_handle_t *)&s->sig_hup, NULL);
        uv_close((uv_handle_t *)&s->purge_timer, NULL);
        uv_close((uv_handle_t *)&s->wait_timer, NULL);
        uv_close((uv_handle_t *)&s->sweep_timer, NULL);
        uv_close((uv_handle_t *)&s->status_timer, NULL);
        uv_close((uv_handle_t *)&s->watchdog_timer, NULL);
        uv_close((uv_handle_t *)&s->accept_timer, NULL);
        s->handles_ready = false;
    }
}

static void on_stop_signal(uv_signal_t *handle, int signum)
{
    ad_server_t *s = handle->data;
    ad_log(AD_LOG_INFO, "%s: shutting down (%" PRIu32 " client(s) connected)", ad_sigstr(signum),
           s->nslots);
    if (s->hooks.stopping)
        s->hooks.stopping(s->hooks.ctx);
    server_stop(s);
}

/* Names every setting of the reload that the running daemon cannot apply,
 * one line each, instead of dropping it silently: they take effect when the
 * daemon next starts. */
static void reload_report_restart_only(const ad_server_t *s, const ad_config_t *next,
                                       unsigned restart)
{
    for (unsigned bit = 1; restart != 0; bit <<= 1) {
        if (!(restart & bit))
            continue;
        restart &= ~bit;
        const char *key = ad_config_restart_key(bit);
        if (bit == AD_CONFIG_RESTART_SOCKET && s->inherited)
            ad_log(AD_LOG_WARN,
                   "reload: socket changed to %s; the inherited socket stays (its socket unit "
                   "owns the path)",
                   next->socket);
        else if (bit == AD_CONFIG_RESTART_SOCKET)
            ad_log(AD_LOG_WARN, "reload: socket changed to %s; takes effect at the next restart",
                   next->socket);
        else if (bit == AD_CONFIG_RESTART_HEAP_SIZE && !(next->set & AD_CONFIG_SET_HEAP_SIZE))
            ad_log(AD_LOG_WARN,
                   "reload: heap_size (2 x budget) changed; takes effect at the next restart");
        else
            ad_log(AD_LOG_WARN, "reload: %s changed; takes effect at the next restart",
                   key ? key : "?");
    }
}

/* Applies socket_mode and socket_group to the socket file the daemon bound;
 * each holds only once chmod or chown succeeded. An inherited socket is its
 * socket unit's (SocketMode=, SocketGroup=), so it is left alone and said so. */
static void reload_socket_file(ad_server_t *s, const ad_config_t *next)
{
    ad_config_t *cur = &s->config;
    bool mode = next->socket_mode != cur->socket_mode;
    bool group = next->has_socket_group != cur->has_socket_group ||
                 (next->has_socket_group && next->socket_gid != cur->socket_gid);
    if (!mode && !group)
        return;
    if (s->listen_fd < 0)
        return; /* stopping: there is no socket file to change */
    if (s->inherited) {
        ad_log(AD_LOG_WARN,
               "reload: socket_mode or socket_group changed; the inherited socket keeps its own "
               "(its socket unit sets them)");
        return;
    }
    if (mode) {
        if (chmod(cur->socket, (mode_t)next->socket_mode) == 0)
            cur->socket_mode = next->socket_mode;
        else
            ad_log(AD_LOG_WARN, "reload: cannot set the mode of %s to %04o: %s", cur->socket,
                   (unsigned)next->socket_mode, ad_errstr(-errno));
    }
    if (group && !next->has_socket_group) {
        ad_log(AD_LOG_WARN,
               "reload: socket_group removed; %s keeps group %lu until the next restart",
               cur->socket, (unsigned long)cur->socket_gid);
    } else if (group) {
        if (chown(cur->socket, (uid_t)-1, next->socket_gid) == 0) {
            cur->has_socket_group = true;
            cur->socket_gid = next->socket_gid;
        } else {
            ad_log(AD_LOG_WARN, "reload: cannot give %s to group %lu: %s", cur->socket,
                   (unsigned long)next->socket_gid, ad_errstr(-errno));
        }
    }
}

static void server_reload(ad_server_t *s)
{
    if (!s->hooks.reload) {
        ad_log(AD_LOG_INFO, "SIGHUP: no configuration to reload");
        return;
    }
    ad_config_t next;
    char err[AD_CONFIG_ERR_MAX] = "";
    ad_server_figures_t f;
    if (s->hooks.reloading)
        s->hooks.reloading(s->hooks.ctx);
    int r = s->hooks.reload(s->hooks.ctx, &next, err, sizeof(err));
    if (r < 0) {
        ad_log(AD_LOG_ERROR, "reload failed, keeping the old configuration: %s", err);
        if (s->hooks.reloaded) {
            server_figures(s, &f);
            s->hooks.reloaded(s->hooks.ctx, r, &f);
        }
        return;
    }
    ad_config_t *cur = &s->config;
    reload_socket_file(s, &next);
    uint32_t max_clients = cur->max_clients;
    uint64_t frame_timeout_ms = cur->frame_timeout_ms, hello_timeout_ms = cur->hello_timeout_ms;
    reload_report_restart_only(s, &next, ad_config_reload(cur, &next));
    if (cur->max_clients != max_clients)
        server_fit_fd_limit(s);
    if (cur->frame_timeout_ms != frame_timeout_ms || cur->hello_timeout_ms != hello_timeout_ms)
        sweep_arm(s);
    ad_log_set_level(cur->log_level);
    ad_admin_set_group(s->admin, cur->has_admin_group, cur->admin_gid);
    ad_leases_config_t lc;
    ad_config_leases(cur, &lc);
    ad_leases_reconfigure(s->leases, &lc);
    char size[32];
    ad_log(AD_LOG_INFO,
           "configuration reloaded: budget %s, decay %" PRIu64 " ms, max_clients %" PRIu32
           ", max_leases_per_client %" PRIu32 ", %zu fair-share rule(s), restart_grace %" PRIu64
           " ms, log_level %s",
           arena__size_format(cur->budget, size, sizeof(size)), cur->decay_ms, s->max_conns,
           cur->max_leases_per_client, cur->fair_count, cur->restart_grace_ms,
           ad_log_level_name(cur->log_level));
    /* Decay and budget changes move the timers and may admit waiters. */
    s->purge_due = 0;
    server_rearm(s);
    if (s->hooks.reloaded) {
        server_figures(s, &f);
        s->hooks.reloaded(s->hooks.ctx, 0, &f);
    }
}

static void on_hup(uv_signal_t *handle, int signum)
{
    (void)signum;
    server_reload(handle->data);
}

/* ---- lifecycle ------------------------------------------------------------ */

int ad_server_new(const ad_config_t *config, const ad_server_hooks_t *hooks, char *err,
                  size_t err_len, ad_server_t **ret_server)
{
    int r;
    int inherited_fd = hooks && hooks->has_listen_fd ? hooks->listen_fd : -1;
    if (!config || !ret_server) {
        if (inherited_fd >= 0)
            (void)close(inherited_fd);
        return -EINVAL;
    }
    ad_server_t *s = calloc(1, sizeof(*s));
    if (!s) {
        if (inherited_fd >= 0)
            (void)close(inherited_fd);
        return -ENOMEM;
    }
    s->config = *config;
    if (hooks)
        s->hooks = *hooks;
    /* Owned from here: server_stop() closes it, also on failure below. */
    s->listen_fd = inherited_fd;
    s->inherited = inherited_fd >= 0;
    s->reserve_fd = -1;
    s->purge_due = UINT64_MAX;
    s->wait_due = UINT64_MAX;

    r = uv_loop_init(&s->loop);
    if (r < 0) {
        server_err(err, err_len, "uv_loop_init: %s", uv_strerror(r));
        if (s->listen_fd >= 0)
            (void)close(s->listen_fd);
        free(s);
        return r;
    }
    s->loop_ready = true;

    ad_leases_config_t lc;
    ad_config_leases(config, &lc);
    r = ad_leases_new(&lc, &s->leases);
    if (r < 0) {
        server_err(err, err_len, "cannot create the lease manager: %s", ad_errstr(r));
        goto fail;
    }
    if (hooks && (hooks->fdstore || hooks->stored_count > 0)) {
        r = ad_restart_resume(s->leases, hooks->stored, hooks->stored_count, hooks->fdstore,
                              hooks->ctx, uv_now(&s->loop), &s->restart);
        if (r < 0) {
            server_err(err, err_len, "cannot set up the lease ledger: %s", ad_errstr(r));
            goto fail;
        }
        ad_restart_stats_t rst;
        ad_restart_stats(s->restart, &rst);
        if (rst.pools_resumed > 0 || rst.fds_dropped > 0) {
            char size[32], gone[32];
            ad_log(AD_LOG_INFO,
                   "resumed %" PRIu32 " pool(s) from the fd store%s: %" PRIu64
                   " lease(s) (%s) wait for their clients for %" PRIu64
                   " ms, or as long as their process lives (%s of processes already gone freed);"
                   " %" PRIu32 " stored fd(s) dropped",
                   rst.pools_resumed, rst.ledger_resumed ? " with the ledger" : " without a ledger",
                   rst.orphans, arena__size_format(rst.orphan_bytes, size, sizeof(size)),
                   config->restart_grace_ms, arena__size_format(rst.gone_bytes, gone, sizeof(gone)),
                   rst.fds_dropped);
        }
    }
    r = ad_admin_new(s->leases, config->socket, uv_now(&s->loop), &s->admin);
    if (r < 0) {
        server_err(err, err_len, "out of memory");
        goto fail;
    }
    ad_admin_set_group(s->admin, config->has_admin_group, config->admin_gid);
    ad_dispatch_config_t dc = {.max_frame = config->max_frame};
    r = ad_dispatch_new(&dc, s->leases, s->admin, &s->dispatch);
    if (r < 0) {
        server_err(err, err_len, "out of memory");
        goto fail;
    }

    /* A pool is created per uid at first hello; check now that this system
     * can make one at all (memfd, sealing, huge pages), rather than failing
     * every client later. The heap is sparse: this costs no memory. */
    ad_heap_config_t probe_cfg = {.size = config->heap_size,
                                  .small_limit = config->small_lease_limit,
                                  .decay_ms = config->decay_ms,
                                  .hugetlb = config->hugetlb,
                                  .name = "arenad-probe"};
    ad_heap_t *probe = NULL;
    r = ad_heap_new(&probe_cfg, &probe);
    if (r < 0) {
        server_err(err, err_len, "cannot create a pool heap of %" PRIu64 " bytes%s: %s",
                   config->heap_size, config->hugetlb ? " (hugetlb)" : "", ad_errstr(r));
        goto fail;
    }
    ad_heap_free(probe);

    if (!s->inherited) {
        r = server_listen(s, err, err_len);
        if (r < 0)
            goto fail;
    }
    s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    server_fit_fd_limit(s);

    if ((r = uv_poll_init(&s->loop, &s->listen_poll, s->listen_fd)) < 0) {
        server_err(err, err_len, "uv_poll_init: %s", uv_strerror(r));
        goto fail;
    }
    s->listen_poll.data = s;
    s->listening = true;
    if ((r = uv_poll_start(&s->listen_poll, UV_READABLE, on_listen)) < 0) {
        server_err(err, err_len, "uv_poll_start: %s", uv_strerror(r));
        goto fail;
    }

    (void)uv_signal_init(&s->loop, &s->sig_term);
    (void)uv_signal_init(&s->loop, &s->sig_int);
    (void)uv_signal_init(&s->loop, &s->sig_hup);
    (void)uv_timer_init(&s->loop, &s->purge_timer);
    (void)uv_timer_init(&s->loop, &s->wait_timer);
    (void)uv_timer_init(&s->loop, &s->sweep_timer);
    (void)uv_timer_init(&s->loop, &s->status_timer);
    (void)uv_timer_init(&s->loop, &s->watchdog_timer);
    (void)uv_timer_init(&s->loop, &s->accept_timer);
    s->sig_term.data = s->sig_int.data = s->sig_hup.data = s;
    s->purge_timer.data = s->wait_timer.data = s->sweep_timer.data = s;
    s->status_timer.data = s->watchdog_timer.data = s->accept_timer.data = s;
    s->handles_ready = true;
    if ((r = uv_signal_start(&s->sig_term, on_stop_signal, SIGTERM)) < 0 ||
        (r = uv_signal_start(&s->sig_int, on_stop_signal, SIGINT)) < 0 ||
        (r = uv_signal_start(&s->sig_hup, on_hup, SIGHUP)) < 0) {
        server_err(err, err_len, "uv_signal_start: %s", uv_strerror(r));
        goto fail;
    }
    sweep_arm(s);
    if (s->hooks.status)
        (void)uv_timer_start(&s->status_timer, on_status_timer, 1000, 1000);
    if (s->hooks.watchdog && s->hooks.watchdog_ms > 0)
        (void)uv_timer_start(&s->watchdog_timer, on_watchdog_timer, s->hooks.watchdog_ms,
                             s->hooks.watchdog_ms);
    *ret_server = s;
    return 0;

fail:
    ad_server_free(s);
    return r;
}

int ad_server_run(ad_server_t *s)
{
    char size[32];
    ad_log(AD_LOG_INFO, "%s %s (budget %s, max_clients %" PRIu32 ")",
           s->inherited ? "serving the inherited socket" : "listening on",
           s->config.socket[0] ? s->config.socket : "(unnamed)",
           arena__size_format(s->config.budget, size, sizeof(size)), s->max_conns);
    int r = uv_run(&s->loop, UV_RUN_DEFAULT);
    /* uv_run returns once stop closed every handle. */
    if (!s->stopping) {
        ad_log(AD_LOG_ERROR, "event loop ended unexpectedly (%d)", r);
        return -EIO;
    }
    ad_log(AD_LOG_INFO, "stopped");
    return 0;
}

void ad_server_free(ad_server_t *s)
{
    if (!s)
        return;
    if (s->loop_ready) {
        server_stop(s);
        /* Run the close callbacks (connections release their leases here). */
        (void)uv_run(&s->loop, UV_RUN_DEFAULT);
        (void)uv_loop_close(&s->loop);
    }
    if (s->reserve_fd >= 0)
        (void)close(s->reserve_fd);
    ad_dispatch_free(s->dispatch);
    ad_admin_free(s->admin);
    ad_leases_free(s->leases);
    ad_restart_free(s->restart);
    free(s);
}
