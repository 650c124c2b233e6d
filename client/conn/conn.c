/* SPDX-License-Identifier: MIT
 *
 * conn.c -- one connection to arenad: the socket, framing, fd passing,
 * request ids and the exchange; connect and disconnect.
 *
 * A connection is a blocking AF_UNIX stream socket. Every exchange sends one
 * frame (4-byte little-endian length + Envelope) and reads frames until the
 * one echoing its request id; notifications (request id 0) go to notify.c
 * and stale replies are skipped. File descriptors arrive as SCM_RIGHTS with
 * the first byte of a frame (only HelloReply has them: the pool heap memfd
 * and the control region); any other fd is closed on sight. An I/O failure
 * or a frame we cannot resynchronise after marks the connection dead: the
 * next exchange reconnects (reconnect.c) or is ARENA_EDISCONNECTED, and the
 * mappings of held leases stay valid until the caller releases or
 * disconnects.
 *
 * Memory: the preload library replaces malloc with the allocator, which leases
 * through this library, so nothing here may allocate with libc. The connection struct,
 * its send and receive buffers, the decode scratch and the lease table are
 * all mmap'd; the receive buffer grows with mremap up to
 * ARENA_MAX_REPLY_FRAME.
 *
 * Threads: see conn_internal.h (`lock` for exchanges, `table_lock` for the
 * lease table, in that order).
 *
 * fork(): a child inherits the connection (the struct is private anonymous
 * memory, so the child's copy is its own) but must never speak on the
 * parent's socket: its frames would interleave with the parent's. Every
 * entry point compares the pid that connected with getpid() before taking a
 * lock (a lock may have been held by a thread that does not exist in the
 * child): in a child the connection is "orphaned" -- its copies of the socket
 * and pool fds are closed, so the daemon still sees the parent's EOF when the
 * parent dies -- and reports ARENA_EDISCONNECTED. The default connection is
 * replaced by a new one in the child. The child's mappings are left alone
 * (the allocator gives the child private copies of its own, see region.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "conn.h"
#include "conn_internal.h"
#include "fdpass.h"
#include "paths.h"
#include "wire.h"

void *arena__conn_map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static size_t conn_page_round(size_t n)
{
    size_t page = (size_t)getpagesize();
    return (n + page - 1) & ~(page - 1);
}

/* Copies s into dst (len bytes) with truncation; always NUL-terminates. */
static void conn_strlcpy(char *dst, const char *s, size_t len)
{
    size_t n = strnlen(s, len - 1);
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* The name the daemon shows for us: /proc/self/comm, else the short
 * program name glibc keeps. */
static void conn_client_name(char *buf, size_t len)
{
    int fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n;
        do {
            n = read(fd, buf, len - 1);
        } while (n < 0 && errno == EINTR);
        (void)close(fd);
        if (n > 0) {
            buf[n] = '\0';
            char *nl = memchr(buf, '\n', (size_t)n);
            if (nl)
                *nl = '\0';
            if (buf[0])
                return;
        }
    }
    conn_strlcpy(buf, program_invocation_short_name, len);
}

/* In a fork child: drops this process's copies of the fds, without taking
 * any lock and without touching the mappings. */
void arena__conn_orphan(arena_conn_t *conn)
{
    if (atomic_exchange_explicit(&conn->xorphaned, true, memory_order_acq_rel))
        return;
    if (conn->fd >= 0)
        (void)close(conn->fd);
    if (conn->pool_fd >= 0)
        (void)close(conn->pool_fd);
    conn->fd = -1;
    conn->pool_fd = -1;
    conn->dead = true;
}

static int conn_send(arena_conn_t *conn, const uint8_t *buf, size_t len)
{
    if (conn->send_fd >= 0 && len > 0) {
        /* The fd goes with the frame's first byte (see proto/arena.proto). */
        ssize_t n = arena__send_with_fd(conn->fd, buf, 1, conn->send_fd, NULL, 0, 0);
        conn->send_fd = -1;
        if (n < 0) {
            conn->dead = true;
            return ARENA_EDISCONNECTED;
        }
        buf += n;
        len -= (size_t)n;
    }
    while (len > 0) {
        ssize_t n = send(conn->fd, buf, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            conn->dead = true;
            return ARENA_EDISCONNECTED;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

void arena__conn_close_fds(int *fds)
{
    for (size_t k = 0; k < CONN_FDS; k++) {
        if (fds[k] >= 0)
            (void)close(fds[k]);
        fds[k] = -1;
    }
}

/* Reads exactly len bytes, collecting passed fds, in order, into the free
 * (-1) entries of fd_slot[0..CONN_FDS) (NULL: they are closed). */
static int conn_recv(arena_conn_t *conn, void *buf, size_t len, int *fd_slot)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = arena__recv_with_fds(conn->fd, p, len, fd_slot, fd_slot ? CONN_FDS : 0, 0);
        if (n <= 0) {
            conn->dead = true;
            return ARENA_EDISCONNECTED;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int conn_recv_reserve(arena_conn_t *conn, size_t len)
{
    if (len <= conn->recvcap)
        return 0;
    size_t cap = conn->recvcap;
    while (cap < len)
        cap *= 2;
    if (cap > (size_t)ARENA_MAX_REPLY_FRAME)
        cap = conn_page_round((size_t)ARENA_MAX_REPLY_FRAME);
    void *p = mremap(conn->recvbuf, conn->recvcap, cap, MREMAP_MAYMOVE);
    if (p == MAP_FAILED)
        return -ENOMEM;
    conn->recvbuf = p;
    conn->recvcap = cap;
    return 0;
}

/* Reads one frame and decodes it into the scratch. */
int arena__conn_read_frame(arena_conn_t *conn, arena__msg_t *ret_msg, int *fd_slot)
{
    uint8_t hdr[ARENA_FRAME_HEADER];
    int r = conn_recv(conn, hdr, sizeof(hdr), fd_slot);
    if (r < 0)
        return r;
    uint32_t len =
        (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
    if (len > (size_t)ARENA_MAX_REPLY_FRAME) {
        /* Cannot skip that much safely: the stream is lost. */
        conn->dead = true;
        return ARENA_EPROTOCOL;
    }
    r = conn_recv_reserve(conn, len);
    if (r < 0) {
        conn->dead = true; /* the body stays unread: the stream is out of step */
        return r;
    }
    r = conn_recv(conn, conn->recvbuf, len, fd_slot);
    if (r < 0)
        return r;
    arena__scratch_reset(&conn->scratch);
    r = arena__wire_decode(conn->recvbuf, len, &conn->scratch, ret_msg);
    if (r == -ENOMSG)
        return 0; /* a body newer than us: kind NONE, the caller looks at its id */
    if (r == -ENOMEM)
        return r;
    if (r < 0) {
        /* Bytes that are no envelope: nothing after them can be trusted
         * (and the reply we wait for may be among them). */
        conn->dead = true;
        return ARENA_EPROTOCOL;
    }
    return 0;
}

/* One exchange; conn->lock held. The fds that came with the reply go to
 * ret_fds[0..CONN_FDS) when ret_fds is not NULL (and are closed otherwise). */
int arena__conn_exchange(arena_conn_t *conn, const arena__msg_t *req, arena__msg_kind_t expect,
                         arena__reply_fn fn, void *ctx, int *ret_fds)
{
    conn->last_error[0] = '\0';
    if (conn->dead)
        return ARENA_EDISCONNECTED;
    arena__msg_t msg = *req;
    msg.request_id = ++conn->next_id;
    long n = arena__wire_encode(&msg, conn->sendbuf, conn->sendcap);
    if (n < 0)
        return (int)n;
    int r = conn_send(conn, conn->sendbuf, (size_t)n);
    if (r < 0)
        return r;
    for (;;) {
        int fds[CONN_FDS] = {-1, -1};
        arena__msg_t reply;
        r = arena__conn_read_frame(conn, &reply, fds);
        if (r < 0) {
            arena__conn_close_fds(fds);
            return r;
        }
        bool ours = reply.request_id == msg.request_id;
        if (reply.kind == ARENA__MSG_NONE) {
            /* A body newer than us: skip a notification, but a reply we
             * cannot read is an error, not something to wait past. */
            arena__conn_close_fds(fds);
            if (ours)
                return ARENA_EPROTOCOL;
            continue;
        }
        /* An Error with id 0 answers whatever is pending (the daemon could
         * not tell which request it was, e.g. a frame it refused). */
        if (!ours && !(reply.request_id == 0 && reply.kind == ARENA__MSG_ERROR)) {
            arena__conn_close_fds(fds);
            if (reply.request_id == 0)
                arena__conn_note(conn, &reply);
            continue;
        }
        if (reply.kind == ARENA__MSG_ERROR) {
            arena__conn_close_fds(fds);
            conn_strlcpy(conn->last_error, reply.u.error.message, sizeof(conn->last_error));
            return arena__error_from_wire(reply.u.error.code);
        }
        if (reply.kind != expect) {
            arena__conn_close_fds(fds);
            return ARENA_EPROTOCOL;
        }
        if (ret_fds) {
            for (size_t k = 0; k < CONN_FDS; k++)
                ret_fds[k] = fds[k];
        } else {
            arena__conn_close_fds(fds);
        }
        return fn ? fn(ctx, &reply) : 0;
    }
}

/* One exchange that survives a daemon restart; conn->lock held. A dead
 * connection is reconnected first; a request whose connection fails under
 * it is sent once more on a new one. With epoch_guard, the request names a
 * lease of that epoch: once the epoch has moved on it is not sent (0). */
static int conn_call_locked(arena_conn_t *conn, const arena__msg_t *req, arena__msg_kind_t expect,
                            arena__reply_fn fn, void *ctx, const uint32_t *epoch_guard,
                            int *ret_fds)
{
    for (int attempt = 0;; attempt++) {
        if (conn->dead) {
            int r = arena__conn_reconnect(conn);
            if (r < 0)
                return r;
        }
        if (epoch_guard && *epoch_guard != conn->epoch)
            return 0;
        int r = arena__conn_exchange(conn, req, expect, fn, ctx, ret_fds);
        if (r == ARENA_EDISCONNECTED && conn->dead && attempt == 0)
            continue;
        return r;
    }
}

int arena__conn_call(arena_conn_t *conn, const arena__msg_t *req, arena__msg_kind_t expect,
                     arena__reply_fn fn, void *ctx)
{
    if (!conn || !req)
        return -EINVAL;
    if (arena__conn_foreign(conn)) {
        arena__conn_orphan(conn);
        return ARENA_EDISCONNECTED;
    }
    (void)pthread_mutex_lock(&conn->lock);
    int r = conn_call_locked(conn, req, expect, fn, ctx, NULL, NULL);
    (void)pthread_mutex_unlock(&conn->lock);
    arena__conn_after_notes(conn);
    return r;
}

int arena__conn_release_remote(arena_conn_t *conn, uint64_t daemon_id, uint32_t epoch)
{
    arena__msg_t req = {.kind = ARENA__MSG_RELEASE};
    req.u.release.lease_id = daemon_id;
    (void)pthread_mutex_lock(&conn->lock);
    int r = conn_call_locked(conn, &req, ARENA__MSG_RELEASE_REPLY, NULL, NULL, &epoch, NULL);
    (void)pthread_mutex_unlock(&conn->lock);
    arena__conn_after_notes(conn);
    return r;
}

char *arena__conn_last_error(arena_conn_t *conn, char *buf, size_t len)
{
    if (!buf || len == 0)
        return buf;
    buf[0] = '\0';
    if (!conn || arena__conn_foreign(conn))
        return buf;
    (void)pthread_mutex_lock(&conn->lock);
    conn_strlcpy(buf, conn->last_error, len);
    (void)pthread_mutex_unlock(&conn->lock);
    return buf;
}

int arena__conn_info(arena_conn_t *conn, arena__conn_info_t *ret_info)
{
    if (!conn || !ret_info)
        return -EINVAL;
    /* Written before the connection is handed out, and by a reconnect
     * under table_lock. */
    (void)pthread_mutex_lock(&conn->table_lock);
    *ret_info = conn->info;
    (void)pthread_mutex_unlock(&conn->table_lock);
    return 0;
}

int arena__conn_pool_fd(arena_conn_t *conn)
{
    if (!conn || arena__conn_foreign(conn))
        return -1;
    (void)pthread_mutex_lock(&conn->table_lock);
    int fd = conn->pool_fd;
    (void)pthread_mutex_unlock(&conn->table_lock);
    return fd;
}

/* arena__conn_call_lease()'s reply hook: the daemon's numbers, plus the
 * state of the connection at that moment (conn->lock held). */
typedef struct lease_call {
    arena__reply_fn fn;
    void *ctx;
    arena_conn_t *conn;
    arena__lease_call_t *out;
} lease_call_t;

static int conn_lease_reply(void *ctx, const arena__msg_t *reply)
{
    lease_call_t *lc = ctx;
    arena_conn_t *conn = lc->conn;
    int fd = fcntl(conn->pool_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    (void)pthread_mutex_lock(&conn->table_lock);
    lc->out->epoch = conn->epoch;
    lc->out->info = conn->info;
    (void)pthread_mutex_unlock(&conn->table_lock);
    lc->out->pool_fd = fd;
    int r = lc->fn(lc->ctx, reply);
    if (r < 0) {
        (void)close(fd);
        lc->out->pool_fd = -1;
    }
    return r;
}

int arena__conn_call_lease(arena_conn_t *conn, const arena__msg_t *req, arena__msg_kind_t expect,
                           arena__reply_fn fn, void *ctx, arena__lease_call_t *ret_call)
{
    if (!conn || !req || !fn || !ret_call)
        return -EINVAL;
    ret_call->pool_fd = -1;
    ret_call->own_fd = -1;
    if (arena__conn_foreign(conn)) {
        arena__conn_orphan(conn);
        return ARENA_EDISCONNECTED;
    }
    lease_call_t lc = {.fn = fn, .ctx = ctx, .conn = conn, .out = ret_call};
    int fds[CONN_FDS] = {-1, -1};
    (void)pthread_mutex_lock(&conn->lock);
    int r = conn_call_locked(conn, req, expect, conn_lease_reply, &lc, NULL, fds);
    (void)pthread_mutex_unlock(&conn->lock);
    /* A lease with memory of its own comes with its memfd; nothing else
     * should, and whatever else came is closed. */
    if (r == 0) {
        ret_call->own_fd = fds[0];
        fds[0] = -1;
    }
    arena__conn_close_fds(fds);
    arena__conn_after_notes(conn);
    return r;
}

int arena__conn_socket_fd(arena_conn_t *conn)
{
    return conn ? conn->fd : -1;
}

void arena__conn_destroy(arena_conn_t *conn)
{
    for (size_t i = 0; i < conn->slot_cap; i++) {
        if (conn->slots[i].used && !conn->slots[i].gone)
            (void)munmap(conn->slots[i].addr, conn->slots[i].size);
    }
    if (conn->ctl_map)
        (void)munmap(conn->ctl_map, conn->ctl_len);
    if (conn->slots)
        (void)munmap(conn->slots, conn->slot_cap * sizeof(lease_slot_t));
    if (conn->fd >= 0)
        (void)close(conn->fd);
    if (conn->pool_fd >= 0)
        (void)close(conn->pool_fd);
    arena__scratch_destroy(&conn->scratch);
    if (conn->recvbuf)
        (void)munmap(conn->recvbuf, conn->recvcap);
    if (conn->sendbuf)
        (void)munmap(conn->sendbuf, conn->sendcap);
    (void)pthread_mutex_destroy(&conn->table_lock);
    (void)pthread_mutex_destroy(&conn->lock);
    (void)munmap(conn, conn_page_round(sizeof(*conn)));
}

int arena__conn_open_socket(const char *path, int *ret_fd)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(path);
    if (n == 0)
        return -EINVAL;
    if (n >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, n + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int r;
    do {
        r = connect(fd, (const struct sockaddr *)&sa, sizeof(sa));
    } while (r < 0 && errno == EINTR);
    if (r < 0 && errno != EISCONN) {
        int e = errno;
        (void)close(fd);
        if (e == ENOENT || e == ECONNREFUSED || e == ENOTSOCK)
            return ARENA_ENODAEMON;
        return -e;
    }
    *ret_fd = fd;
    return 0;
}

typedef struct hello_ctx {
    arena_conn_t *conn;
} hello_ctx_t;

static int conn_hello_reply(void *ctx, const arena__msg_t *reply)
{
    arena_conn_t *conn = ((hello_ctx_t *)ctx)->conn;
    if (reply->u.hello_reply.protocol_version != ARENA__PROTOCOL_VERSION)
        return ARENA_EVERSION;
    size_t page = (size_t)getpagesize();
    uint64_t granule = reply->u.hello_reply.granule ? reply->u.hello_reply.granule : page;
    if ((granule & (granule - 1)) != 0 || granule % page != 0)
        return ARENA_EPROTOCOL;
    (void)pthread_mutex_lock(&conn->table_lock);
    conn->info.client_id = reply->u.hello_reply.client_id;
    conn->info.heap_size = reply->u.hello_reply.heap_size;
    conn->info.granule = granule;
    conn->info.budget = reply->u.hello_reply.budget;
    conn->info.hugetlb = reply->u.hello_reply.hugetlb;
    conn_strlcpy(conn->info.daemon_version, reply->u.hello_reply.daemon_version,
                 sizeof(conn->info.daemon_version));
    conn->ctl_slots = reply->u.hello_reply.control_slots;
    (void)pthread_mutex_unlock(&conn->table_lock);
    return 0;
}

/* Hello on conn->fd (conn->lock held, or not yet shared); with reattach the
 * pool memfd goes along. The reply's fds go to ret_fds. */
int arena__conn_hello(arena_conn_t *conn, bool reattach, int *ret_fds)
{
    char name[CONN_NAME_MAX];
    conn_client_name(name, sizeof(name));
    arena__msg_t hello = {.kind = ARENA__MSG_HELLO};
    hello.u.hello.protocol_version = ARENA__PROTOCOL_VERSION;
    hello.u.hello.client_name = name;
    hello.u.hello.notifications = true;
    hello.u.hello.reattach = reattach;
    conn->send_fd = reattach ? conn->pool_fd : -1;
    hello_ctx_t ctx = {.conn = conn};
    int r =
        arena__conn_exchange(conn, &hello, ARENA__MSG_HELLO_REPLY, conn_hello_reply, &ctx, ret_fds);
    conn->send_fd = -1;
    return r;
}

int arena_connect(const char *socket_path, arena_conn_t **ret_conn)
{
    if (!ret_conn)
        return -EINVAL;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int r;
    if (socket_path) {
        if (!*socket_path)
            return -EINVAL;
        if (strlen(socket_path) >= sizeof(path))
            return -ENAMETOOLONG;
        conn_strlcpy(path, socket_path, sizeof(path));
    } else {
        r = arena__client_socket_path(path, sizeof(path));
        if (r == -ENOENT)
            return ARENA_ENODAEMON; /* nowhere to look */
        if (r < 0)
            return r;
    }

    arena_conn_t *conn = arena__conn_map(conn_page_round(sizeof(*conn)));
    if (!conn)
        return -ENOMEM;
    conn->fd = -1;
    conn->pool_fd = -1;
    conn->send_fd = -1;
    conn->pid = getpid();
    conn_strlcpy(conn->info.socket_path, path, sizeof(conn->info.socket_path));
    (void)pthread_mutex_init(&conn->lock, NULL);
    (void)pthread_mutex_init(&conn->table_lock, NULL);
    conn->sendcap = conn_page_round((size_t)ARENA_DEFAULT_MAX_FRAME);
    conn->sendbuf = arena__conn_map(conn->sendcap);
    conn->recvcap = CONN_RECV_INITIAL;
    conn->recvbuf = arena__conn_map(conn->recvcap);
    if (!conn->sendbuf || !conn->recvbuf) {
        r = -ENOMEM;
        goto fail;
    }

    r = arena__conn_open_socket(path, &conn->fd);
    if (r < 0)
        goto fail;

    int fds[CONN_FDS] = {-1, -1};
    r = arena__conn_hello(conn, false, fds);
    int pool_fd = fds[0];
    if (r < 0) {
        arena__conn_close_fds(fds);
        /* A daemon that hangs up on Hello did not accept us. */
        if (r == ARENA_EDISCONNECTED)
            r = ARENA_ENODAEMON;
        goto fail;
    }
    if (pool_fd < 0) {
        arena__conn_close_fds(fds);
        r = ARENA_EPROTOCOL;
        goto fail;
    }
    conn->pool_fd = pool_fd;
    arena__conn_map_control(conn, fds[1]);
    *ret_conn = conn;
    return 0;

fail:
    arena__conn_destroy(conn);
    return r;
}

void arena_disconnect(arena_conn_t *conn)
{
    if (!conn)
        return;
    arena__conn_default_forget(conn);
    arena__conn_destroy(conn);
}
