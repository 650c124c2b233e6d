/* SPDX-License-Identifier: MIT
 *
 * conn.c -- one connection to arenad: socket, framing, fd passing, request
 * ids, the per-connection lease table, and the process-wide default
 * connection.
 *
 * A connection is a blocking AF_UNIX stream socket. Every exchange sends one
 * frame (4-byte little-endian length + Envelope) and reads frames until the
 * one echoing its request id; notifications (request id 0) and stale replies
 * are skipped. File descriptors arrive as SCM_RIGHTS with the first byte of a
 * frame (only HelloReply has one: the pool heap memfd); any other fd is closed
 * on sight. An I/O failure or a frame we cannot resynchronise after marks the
 * connection dead: every later exchange is ARENA_EDISCONNECTED, and the
 * mappings of held leases stay valid until the caller releases or
 * disconnects.
 *
 * Memory: the preload library replaces malloc with pools that lease through
 * this file, so nothing here may allocate with libc. The connection struct,
 * its send and receive buffers, the decode scratch and the lease table are
 * all mmap'd; the receive buffer grows with mremap up to
 * ARENA_MAX_REPLY_FRAME.
 *
 * Threads: `lock` serialises exchanges (one request in flight per
 * connection); `table_lock` guards the lease table, so looking a lease up
 * (or parking and unparking one) never waits behind a request queued in the
 * daemon. `table_lock` may be taken while `lock` is held (a LeaseReclaimed
 * notification read during an exchange updates the table), never the
 * reverse.
 *
 * Parking (DESIGN.md section 5): HelloReply brings a second fd, the
 * client's control region, mapped here once; each lease reply names the
 * lease's slot and generation, kept in the lease table. Parking makes the
 * mapping PROT_NONE and then stores PARKED; unparking CASes PARKED back to
 * ACTIVE and only then restores access. A failed CAS means the daemon took
 * the lease: the mapping goes and ARENA_ERECLAIMED is returned. The daemon
 * also says so in a LeaseReclaimed notification; reading one unmaps the
 * lease at once and leaves a "gone" entry, so the owner's next unpark still
 * learns what happened. Pressure notifications add up in `xpressure` and run
 * the trim hook after the exchange that read them, outside both locks
 * (notify.c).
 *
 * Daemon restarts (DESIGN.md section 7): when the socket fails, the next
 * exchange (or the notification poll) reconnects with backoff, for up to
 * ARENA_RECONNECT_MS (default 5000; 0: never reconnect), and re-registers:
 * a Hello with `reattach` carries the pool memfd back, then ClaimRequests
 * name every live lease by offset and size. The new daemon gives each claim
 * a new id; the table keeps the id the caller knows and records the
 * daemon's (`daemon_id`, per `epoch`: one epoch per connection to a daemon).
 * A refused claim -- or a pool the new daemon will not take -- is
 * "detached": its pages are copied into private memory at the same address
 * (mremap), so the data stays where the program expects it and nobody else
 * can see it; releasing it only unmaps it. Parked leases are not claimed:
 * they hold nothing, so they are unmapped and their owners' unparks say
 * ARENA_ERECLAIMED. A request that names a lease (release) and was made in an
 * older epoch is not sent: the lease was not claimed, so the new daemon
 * frees it when its grace period ends. The socket keeps its fd number
 * across a reconnect (dup3 over the old one), so arena_notify_fd() stays
 * valid in the caller's poll set. The old control region stays mapped: a
 * thread may be publishing into it without a lock.
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
 * (the pools give the child private copies of theirs, see region.c).
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
#include <sys/un.h>
#include <unistd.h>

#include <sys/stat.h>
#include <time.h>

#include "arena.h"
#include "conn.h"
#include "ctlword.h"
#include "fdpass.h"
#include "park.h"
#include "paths.h"
#include "wire.h"

#define CONN_RECV_INITIAL ((size_t)64 * 1024)
#define CONN_NAME_MAX     64u
#define TABLE_INITIAL     64u

typedef struct lease_slot {
    uint64_t id;        /* what the caller knows it by (the first daemon id) */
    uint64_t daemon_id; /* what the daemon of `epoch` knows it by */
    uint64_t offset;    /* in the pool memfd */
    uint32_t epoch;
    void *addr;
    size_t size;
    bool used;
    bool detached;        /* a private copy now: no daemon knows it */
    bool has_ctl;         /* slot and generation below are valid */
    bool parked;          /* we stored PARKED and have not unparked */
    bool gone;            /* the daemon took it (or a trim released it): unmapped */
    uint32_t ctl_slot;    /* its word in the control region */
    uint64_t generation;  /* the generation the daemon gave it */
    uint32_t claim_epoch; /* the epoch a claim for it was sent in */
} lease_slot_t;

struct arena_conn {
    pthread_mutex_t lock;    /* one exchange at a time; guards everything below but the table */
    pid_t pid;               /* the process that connected; another pid is a fork child */
    atomic_bool xorphaned;   /* fork child only: fds closed (first caller wins) */
    int fd;                  /* the socket */
    int pool_fd;             /* the pool heap memfd from HelloReply */
    bool dead;               /* an I/O failure happened; cleared by a reconnect */
    uint32_t epoch;          /* bumped by every reconnect (table_lock and lock) */
    int send_fd;             /* sent with the next frame (a reattaching Hello), or -1 */
    bool reattach_refused;   /* the daemon would not take our pool: start afresh */
    uint64_t retry_after_ms; /* no reconnect attempt before this (monotonic) */
    uint64_t next_id;        /* last request id used */
    arena__conn_info_t info;
    uint8_t *sendbuf;
    size_t sendcap;
    uint8_t *recvbuf;
    size_t recvcap;
    arena__scratch_t scratch;
    char last_error[256];

    pthread_mutex_t table_lock; /* guards the lease table */
    lease_slot_t *slots;        /* open addressing, linear probing; mmap'd */
    size_t slot_cap;            /* a power of two, or 0 */
    size_t slot_count;
    uint64_t parked_bytes; /* table_lock */

    void *ctl_map; /* the control region (shared with the daemon), or NULL */
    /* ctl_map for arena__conn_publish_live(), which takes no lock: a
     * reconnect swaps it (release) and never unmaps the old region. */
    _Atomic(void *) xctl_publish;
    size_t ctl_len;
    uint32_t ctl_slots;

    /* Notifications (any thread may read them; written under `lock`). */
    _Atomic uint64_t xpressure;        /* bytes asked for since the last trim */
    _Atomic uint64_t xpressure_total;  /* Pressure notifications read */
    _Atomic uint64_t xreclaimed_total; /* LeaseReclaimed notifications read */
    _Atomic uint64_t xunpark_lost;     /* unparks that found the lease taken */
    atomic_bool xtrimming;             /* a thread runs the trim hook */
    _Atomic uint64_t xreconnects;      /* successful reconnects */
    _Atomic uint64_t xclaims_refused;  /* leases detached after a reconnect */
    uint64_t synthetic_ids;            /* table_lock: ids made for id clashes */
};

static _Atomic uint64_t *conn_word(arena_conn_t *conn, const struct lease_slot *e);

/* ---- small helpers ---------------------------------------------------------- */

static void *conn_map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static size_t conn_page_round(size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
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

/* True in a fork child of the process that connected. */
static bool conn_foreign(arena_conn_t *conn)
{
    return conn->pid != getpid();
}

/* In a fork child: drops this process's copies of the fds, without taking
 * any lock and without touching the mappings. */
static void conn_orphan(arena_conn_t *conn)
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

/* ---- socket I/O ---------------------------------------------------------------- */

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

#define CONN_FDS 2 /* HelloReply: pool, control */

static void conn_close_fds(int *fds)
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
static int conn_read_frame(arena_conn_t *conn, arena__msg_t *ret_msg, int *fd_slot)
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

static void conn_note(arena_conn_t *conn, const arena__msg_t *msg);

/* One exchange; conn->lock held. The fds that came with the reply go to
 * ret_fds[0..CONN_FDS) when ret_fds is not NULL (and are closed otherwise). */
static int conn_exchange(arena_conn_t *conn, const arena__msg_t *req, arena__msg_kind_t expect,
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
        r = conn_read_frame(conn, &reply, fds);
        if (r < 0) {
            conn_close_fds(fds);
            return r;
        }
        bool ours = reply.request_id == msg.request_id;
        if (reply.kind == ARENA__MSG_NONE) {
            /* A body newer than us: skip a notification, but a reply we
             * cannot read is an error, not something to wait past. */
            conn_close_fds(fds);
            if (ours)
                return ARENA_EPROTOCOL;
            continue;
        }
        /* An Error with id 0 answers whatever is pending (the daemon could
         * not tell which request it was, e.g. a frame it refused). */
        if (!ours && !(reply.request_id == 0 && reply.kind == ARENA__MSG_ERROR)) {
            conn_close_fds(fds);
            if (reply.request_id == 0)
                conn_note(conn, &reply);
            continue;
        }
        if (reply.kind == ARENA__MSG_ERROR) {
            conn_close_fds(fds);
            conn_strlcpy(conn->last_error, reply.u.error.message, sizeof(conn->last_error));
            return arena__error_from_wire(reply.u.error.code);
        }
        if (reply.kind != expect) {
            conn_close_fds(fds);
            return ARENA_EPROTOCOL;
        }
        if (ret_fds) {
            for (size_t k = 0; k < CONN_FDS; k++)
                ret_fds[k] = fds[k];
        } else {
            conn_close_fds(fds);
        }
        return fn ? fn(ctx, &reply) : 0;
    }
}

static int conn_reconnect(arena_conn_t *conn);

/* One exchange that survives a daemon restart; conn->lock held. A dead
 * connection is reconnected first; a request whose connection fails under
 * it is sent once more on a new one. With epoch_guard, the request names a
 * lease of that epoch: once the epoch has moved on it is not sent (0). */
static int conn_call_locked(arena_conn_t *conn, const arena__msg_t *req, arena__msg_kind_t expect,
                            arena__reply_fn fn, void *ctx, const uint32_t *epoch_guard)
{
    for (int attempt = 0;; attempt++) {
        if (conn->dead) {
            int r = conn_reconnect(conn);
            if (r < 0)
                return r;
        }
        if (epoch_guard && *epoch_guard != conn->epoch)
            return 0;
        int r = conn_exchange(conn, req, expect, fn, ctx, NULL);
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
    if (conn_foreign(conn)) {
        conn_orphan(conn);
        return ARENA_EDISCONNECTED;
    }
    (void)pthread_mutex_lock(&conn->lock);
    int r = conn_call_locked(conn, req, expect, fn, ctx, NULL);
    (void)pthread_mutex_unlock(&conn->lock);
    arena__conn_after_notes(conn);
    return r;
}

int arena__conn_release_remote(arena_conn_t *conn, uint64_t daemon_id, uint32_t epoch)
{
    arena__msg_t req = {.kind = ARENA__MSG_RELEASE};
    req.u.release.lease_id = daemon_id;
    (void)pthread_mutex_lock(&conn->lock);
    int r = conn_call_locked(conn, &req, ARENA__MSG_RELEASE_REPLY, NULL, NULL, &epoch);
    (void)pthread_mutex_unlock(&conn->lock);
    arena__conn_after_notes(conn);
    return r;
}

char *arena__conn_last_error(arena_conn_t *conn, char *buf, size_t len)
{
    if (!buf || len == 0)
        return buf;
    buf[0] = '\0';
    if (!conn || conn_foreign(conn))
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
    if (!conn || conn_foreign(conn))
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

int arena__conn_call_lease(arena_conn_t *conn, const arena__msg_t *req, arena__reply_fn fn,
                           void *ctx, arena__lease_call_t *ret_call)
{
    if (!fn || !ret_call)
        return -EINVAL;
    ret_call->pool_fd = -1;
    lease_call_t lc = {.fn = fn, .ctx = ctx, .conn = conn, .out = ret_call};
    return arena__conn_call(conn, req, ARENA__MSG_LEASE_REPLY, conn_lease_reply, &lc);
}

int arena__conn_socket_fd(arena_conn_t *conn)
{
    return conn ? conn->fd : -1;
}

/* ---- the lease table -------------------------------------------------------- */

static size_t table_hash(uint64_t id, size_t cap)
{
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

/* Rehashes into a table of cap slots; table_lock held. */
static int table_grow(arena_conn_t *conn, size_t cap)
{
    lease_slot_t *slots = conn_map(cap * sizeof(lease_slot_t));
    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; i < conn->slot_cap; i++) {
        if (!conn->slots[i].used)
            continue;
        size_t j = table_hash(conn->slots[i].id, cap);
        while (slots[j].used)
            j = (j + 1) & (cap - 1);
        slots[j] = conn->slots[i];
    }
    if (conn->slots)
        (void)munmap(conn->slots, conn->slot_cap * sizeof(lease_slot_t));
    conn->slots = slots;
    conn->slot_cap = cap;
    return 0;
}

static lease_slot_t *table_find(arena_conn_t *conn, uint64_t id);

int arena__conn_track_lease(arena_conn_t *conn, uint64_t daemon_id, uint64_t offset, void *addr,
                            size_t size, uint32_t epoch, uint64_t *ret_id)
{
    if (!conn || !addr || !ret_id)
        return -EINVAL;
    if (conn_foreign(conn))
        return ARENA_EDISCONNECTED;
    int r = 0;
    (void)pthread_mutex_lock(&conn->table_lock);
    if (epoch != conn->epoch) {
        r = -ESTALE; /* granted by a daemon that is gone: nobody claimed it */
        goto out;
    }
    if ((conn->slot_count + 1) * 2 > conn->slot_cap) {
        r = table_grow(conn, conn->slot_cap ? conn->slot_cap * 2 : TABLE_INITIAL);
        if (r < 0)
            goto out;
    }
    uint64_t id = daemon_id;
    lease_slot_t *clash = table_find(conn, id);
    if (clash) {
        if (clash->epoch == conn->epoch && !clash->detached && clash->daemon_id == daemon_id) {
            r = -EEXIST; /* the daemon handed out one id twice */
            goto out;
        }
        /* An id the caller knows from an earlier daemon: this lease gets one
         * of ours, with the top bit set (daemon ids never get there). */
        do
            id = (UINT64_C(1) << 63) | ++conn->synthetic_ids;
        while (table_find(conn, id));
    }
    size_t i = table_hash(id, conn->slot_cap);
    while (conn->slots[i].used)
        i = (i + 1) & (conn->slot_cap - 1);
    conn->slots[i] = (lease_slot_t){.id = id,
                                    .daemon_id = daemon_id,
                                    .offset = offset,
                                    .epoch = conn->epoch,
                                    .addr = addr,
                                    .size = size,
                                    .used = true};
    conn->slot_count++;
    *ret_id = id;
out:
    (void)pthread_mutex_unlock(&conn->table_lock);
    return r;
}

int arena__conn_track(arena_conn_t *conn, uint64_t id, void *addr, size_t size)
{
    uint64_t got;
    (void)pthread_mutex_lock(&conn->table_lock);
    uint32_t epoch = conn->epoch;
    (void)pthread_mutex_unlock(&conn->table_lock);
    int r = arena__conn_track_lease(conn, id, 0, addr, size, epoch, &got);
    if (r == 0 && got != id) {
        (void)arena__conn_untrack(conn, got, addr, size);
        r = -EEXIST;
    }
    return r;
}

/* Removes slot i, shifting later members of its probe run back so lookups
 * never need tombstones; table_lock held. */
static void table_remove_at(arena_conn_t *conn, size_t i)
{
    size_t mask = conn->slot_cap - 1;
    size_t j = i;
    for (;;) {
        conn->slots[i].used = false;
        for (;;) {
            j = (j + 1) & mask;
            if (!conn->slots[j].used)
                return;
            size_t home = table_hash(conn->slots[j].id, conn->slot_cap);
            /* Move j into the hole at i unless its home lies in (i, j]. */
            bool stays = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
            if (!stays)
                break;
        }
        conn->slots[i] = conn->slots[j];
        i = j;
    }
}

/* What arena__conn_untrack() forgot: enough to tell the daemon. */
typedef struct untracked {
    uint64_t daemon_id;
    uint32_t epoch;
    bool detached;
} untracked_t;

static int conn_untrack(arena_conn_t *conn, uint64_t id, const void *addr, size_t size,
                        untracked_t *ret_what);

int arena__conn_untrack(arena_conn_t *conn, uint64_t id, const void *addr, size_t size)
{
    untracked_t what;
    return conn_untrack(conn, id, addr, size, &what);
}

int arena__conn_release(arena_conn_t *conn, uint64_t id, void *addr, size_t size)
{
    untracked_t what;
    int r = conn_untrack(conn, id, addr, size, &what);
    if (r == ARENA_ERECLAIMED)
        return 0; /* already unmapped and no longer ours: nothing left to give back */
    if (r < 0)
        return r;
    (void)munmap(addr, size);
    if (what.detached)
        return 0; /* a private copy: no daemon knows it */
    return arena__conn_release_remote(conn, what.daemon_id, what.epoch);
}

static int conn_untrack(arena_conn_t *conn, uint64_t id, const void *addr, size_t size,
                        untracked_t *ret_what)
{
    if (!conn)
        return -EINVAL;
    if (conn_foreign(conn))
        return ARENA_EDISCONNECTED;
    int r = -ENOENT;
    (void)pthread_mutex_lock(&conn->table_lock);
    if (conn->slot_cap) {
        size_t i = table_hash(id, conn->slot_cap);
        while (conn->slots[i].used) {
            if (conn->slots[i].id == id) {
                if (conn->slots[i].addr != addr || conn->slots[i].size != size) {
                    r = -EINVAL;
                } else {
                    lease_slot_t *e = &conn->slots[i];
                    r = e->gone ? ARENA_ERECLAIMED : 0;
                    *ret_what = (untracked_t){e->daemon_id, e->epoch, e->detached};
                    if (e->parked && !e->gone) {
                        conn->parked_bytes -= e->size;
                        /* Take it back from the daemon's reach first: if it
                         * is already taken, there is nothing to release. */
                        if (e->has_ctl &&
                            !arena_ctl_unpark_acquire(conn_word(conn, e), e->generation)) {
                            (void)munmap(e->addr, e->size);
                            r = ARENA_ERECLAIMED;
                        }
                    }
                    table_remove_at(conn, i);
                    conn->slot_count--;
                }
                break;
            }
            i = (i + 1) & (conn->slot_cap - 1);
        }
    }
    (void)pthread_mutex_unlock(&conn->table_lock);
    return r;
}

size_t arena__conn_tracked(arena_conn_t *conn)
{
    if (!conn || conn_foreign(conn))
        return 0;
    (void)pthread_mutex_lock(&conn->table_lock);
    size_t n = conn->slot_count;
    (void)pthread_mutex_unlock(&conn->table_lock);
    return n;
}

/* ---- control region: parking ---------------------------------------------- */

/* The table entry of lease id, or NULL; table_lock held. */
static lease_slot_t *table_find(arena_conn_t *conn, uint64_t id)
{
    if (!conn->slot_cap)
        return NULL;
    size_t i = table_hash(id, conn->slot_cap);
    while (conn->slots[i].used) {
        if (conn->slots[i].id == id)
            return &conn->slots[i];
        i = (i + 1) & (conn->slot_cap - 1);
    }
    return NULL;
}

/* Removes entry e (found by table_find); table_lock held. */
static void table_remove(arena_conn_t *conn, lease_slot_t *e)
{
    if (e->parked && !e->gone)
        conn->parked_bytes -= e->size;
    table_remove_at(conn, (size_t)(e - conn->slots));
    conn->slot_count--;
}

static _Atomic uint64_t *conn_word(arena_conn_t *conn, const lease_slot_t *e)
{
    return arena_ctl_slot(conn->ctl_map, e->ctl_slot);
}

int arena__conn_set_control(arena_conn_t *conn, uint64_t id, uint32_t slot, uint64_t generation)
{
    if (!conn)
        return -EINVAL;
    int r = -ENOENT;
    (void)pthread_mutex_lock(&conn->table_lock);
    lease_slot_t *e = table_find(conn, id);
    if (!conn->ctl_map || slot >= conn->ctl_slots || generation == 0) {
        r = -ENOTSUP;
    } else if (e) {
        /* Only what the daemon published for this lease may be used. */
        if (arena_ctl_load_acquire(arena_ctl_slot(conn->ctl_map, slot)) ==
            arena_ctl_make(generation, ARENA_CTL_ACTIVE)) {
            e->has_ctl = true;
            e->ctl_slot = slot;
            e->generation = generation;
            r = 0;
        } else {
            r = ARENA_EPROTOCOL;
        }
    }
    (void)pthread_mutex_unlock(&conn->table_lock);
    return r;
}

/* Finds the entry of a caller's lease and checks it; table_lock held. */
static int park_lookup(arena_conn_t *conn, const arena_lease_t *lease, lease_slot_t **ret)
{
    lease_slot_t *e = table_find(conn, lease->id);
    if (!e)
        return -ENOENT;
    if (e->addr != lease->addr || e->size != lease->size)
        return -EINVAL;
    *ret = e;
    return 0;
}

int arena__lease_park(arena_conn_t *conn, const arena_lease_t *lease)
{
    if (!lease || !lease->addr || lease->size == 0)
        return -EINVAL;
    int r;
    if (!conn) {
        r = arena__conn_default(&conn);
        if (r < 0)
            return r;
    }
    if (conn_foreign(conn))
        return ARENA_EDISCONNECTED;
    (void)pthread_mutex_lock(&conn->table_lock);
    lease_slot_t *e;
    r = park_lookup(conn, lease, &e);
    if (r < 0)
        goto out;
    if (e->gone) {
        r = ARENA_ERECLAIMED;
        goto out;
    }
    if (!e->has_ctl) {
        r = -ENOTSUP;
        goto out;
    }
    if (e->parked) {
        r = -EALREADY;
        goto out;
    }
    /* Inaccessible first, so a stale pointer faults here, in our own
     * process, and never writes into memory the daemon hands on. */
    if (mprotect(e->addr, e->size, PROT_NONE) < 0) {
        r = -errno;
        goto out;
    }
    if (!arena_ctl_park_release(conn_word(conn, e), e->generation)) {
        /* Not ACTIVE at our generation: someone scribbled on the region. */
        (void)mprotect(e->addr, e->size, PROT_READ | PROT_WRITE);
        r = ARENA_EPROTOCOL;
        goto out;
    }
    e->parked = true;
    conn->parked_bytes += e->size;
    r = 0;
out:
    (void)pthread_mutex_unlock(&conn->table_lock);
    return r;
}

int arena__lease_unpark(arena_conn_t *conn, const arena_lease_t *lease)
{
    if (!lease || !lease->addr || lease->size == 0)
        return -EINVAL;
    int r;
    if (!conn) {
        r = arena__conn_default(&conn);
        if (r < 0)
            return r;
    }
    if (conn_foreign(conn))
        return ARENA_EDISCONNECTED;
    (void)pthread_mutex_lock(&conn->table_lock);
    lease_slot_t *e;
    r = park_lookup(conn, lease, &e);
    if (r < 0)
        goto out;
    if (e->gone) {
        table_remove(conn, e);
        atomic_fetch_add_explicit(&conn->xunpark_lost, 1, memory_order_relaxed);
        r = ARENA_ERECLAIMED;
        goto out;
    }
    if (!e->parked) {
        r = 0; /* active already */
        goto out;
    }
    if (!arena_ctl_unpark_acquire(conn_word(conn, e), e->generation)) {
        /* The daemon won: the extent is punched and may be someone else's. */
        (void)munmap(e->addr, e->size);
        table_remove(conn, e);
        atomic_fetch_add_explicit(&conn->xunpark_lost, 1, memory_order_relaxed);
        r = ARENA_ERECLAIMED;
        goto out;
    }
    e->parked = false;
    conn->parked_bytes -= e->size;
    if (mprotect(e->addr, e->size, PROT_READ | PROT_WRITE) < 0)
        r = -errno; /* ours, but not accessible: the caller may retry or release */
    else
        r = 0;
out:
    (void)pthread_mutex_unlock(&conn->table_lock);
    return r;
}

/* The entry the current daemon calls daemon_id, or NULL; table_lock held.
 * Ids differ from the caller's only after a reconnect, so the scan runs
 * only then. */
static lease_slot_t *table_find_daemon(arena_conn_t *conn, uint64_t daemon_id)
{
    lease_slot_t *e = table_find(conn, daemon_id);
    if (e && e->daemon_id == daemon_id && e->epoch == conn->epoch && !e->detached)
        return e;
    if (conn->epoch == 0)
        return NULL;
    for (size_t i = 0; i < conn->slot_cap; i++) {
        e = &conn->slots[i];
        if (e->used && e->daemon_id == daemon_id && e->epoch == conn->epoch && !e->detached)
            return e;
    }
    return NULL;
}

/* A notification read during an exchange; conn->lock held. */
static void conn_note(arena_conn_t *conn, const arena__msg_t *msg)
{
    switch (msg->kind) {
    case ARENA__MSG_LEASE_RECLAIMED: {
        atomic_fetch_add_explicit(&conn->xreclaimed_total, 1, memory_order_relaxed);
        (void)pthread_mutex_lock(&conn->table_lock);
        lease_slot_t *e = table_find_daemon(conn, msg->u.lease_reclaimed.lease_id);
        /* Believe the word, not the message: only a lease we parked whose
         * word says RECLAIMED at its generation is unmapped. */
        if (e && e->parked && !e->gone && e->has_ctl &&
            arena_ctl_load_acquire(conn_word(conn, e)) ==
                arena_ctl_make(e->generation, ARENA_CTL_RECLAIMED)) {
            (void)munmap(e->addr, e->size);
            e->gone = true;
            conn->parked_bytes -= e->size;
        }
        (void)pthread_mutex_unlock(&conn->table_lock);
        break;
    }
    case ARENA__MSG_PRESSURE: {
        uint64_t bytes = msg->u.pressure.bytes ? msg->u.pressure.bytes : 1;
        atomic_fetch_add_explicit(&conn->xpressure_total, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&conn->xpressure, bytes, memory_order_release);
        break;
    }
    default:
        break; /* stale replies and kinds we do not know */
    }
}

int arena__conn_poll_notes(arena_conn_t *conn)
{
    if (!conn)
        return -EINVAL;
    if (conn_foreign(conn)) {
        conn_orphan(conn);
        return ARENA_EDISCONNECTED;
    }
    int n = 0;
    (void)pthread_mutex_lock(&conn->lock);
    while (!conn->dead) {
        struct pollfd p = {.fd = conn->fd, .events = POLLIN};
        int r = poll(&p, 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || !(p.revents & (POLLIN | POLLHUP | POLLERR)))
            break;
        int fds[CONN_FDS] = {-1, -1};
        arena__msg_t msg;
        r = conn_read_frame(conn, &msg, fds);
        conn_close_fds(fds);
        if (r < 0) {
            n = r;
            break;
        }
        if (msg.request_id == 0) {
            conn_note(conn, &msg);
            n++;
        }
    }
    /* The daemon went away: come back to its successor now, so the leases
     * are claimed within its grace period even if we never call it. */
    if (conn->dead) {
        int r = conn_reconnect(conn);
        n = r < 0 ? r : n + 1;
    }
    (void)pthread_mutex_unlock(&conn->lock);
    return n;
}

uint64_t arena__conn_take_pressure(arena_conn_t *conn)
{
    if (!conn || atomic_load_explicit(&conn->xpressure, memory_order_relaxed) == 0)
        return 0;
    return atomic_exchange_explicit(&conn->xpressure, 0, memory_order_acquire);
}

bool arena__conn_trim_begin(arena_conn_t *conn)
{
    return !atomic_exchange_explicit(&conn->xtrimming, true, memory_order_acquire);
}

void arena__conn_trim_end(arena_conn_t *conn)
{
    atomic_store_explicit(&conn->xtrimming, false, memory_order_release);
}

long long arena__conn_release_parked(arena_conn_t *conn)
{
    if (!conn || conn_foreign(conn))
        return ARENA_EDISCONNECTED;
    long long total = 0;
    for (;;) {
        uint64_t ids[64];
        uint32_t epochs[64];
        size_t n = 0;
        (void)pthread_mutex_lock(&conn->table_lock);
        for (size_t i = 0; i < conn->slot_cap && n < 64; i++) {
            lease_slot_t *e = &conn->slots[i];
            if (!e->used || !e->parked || e->gone)
                continue;
            /* Gone for the owner from here on: its unpark, serialised by
             * table_lock, returns ARENA_ERECLAIMED. */
            (void)munmap(e->addr, e->size);
            e->gone = true;
            conn->parked_bytes -= e->size;
            total += (long long)e->size;
            epochs[n] = e->epoch;
            ids[n++] = e->daemon_id;
        }
        (void)pthread_mutex_unlock(&conn->table_lock);
        /* NOT_FOUND: the daemon reclaimed it first; either way it is gone. */
        for (size_t i = 0; i < n; i++)
            (void)arena__conn_release_remote(conn, ids[i], epochs[i]);
        if (n < 64)
            break;
    }
    return total;
}

int arena__conn_notes(arena_conn_t *conn, arena__conn_notes_t *ret_notes)
{
    if (!conn || !ret_notes)
        return -EINVAL;
    arena__conn_notes_t n = {
        .pressure_total = atomic_load_explicit(&conn->xpressure_total, memory_order_relaxed),
        .reclaimed_total = atomic_load_explicit(&conn->xreclaimed_total, memory_order_relaxed),
        .unpark_lost_total = atomic_load_explicit(&conn->xunpark_lost, memory_order_relaxed),
        .control_slots = conn->ctl_slots,
        .trims_total = arena__notify_trims_total(),
        .reconnects_total = atomic_load_explicit(&conn->xreconnects, memory_order_relaxed),
        .detached_total = atomic_load_explicit(&conn->xclaims_refused, memory_order_relaxed),
    };
    if (!conn_foreign(conn)) {
        (void)pthread_mutex_lock(&conn->table_lock);
        n.parked_bytes = conn->parked_bytes;
        (void)pthread_mutex_unlock(&conn->table_lock);
    }
    *ret_notes = n;
    return 0;
}

/* ---- connect and disconnect ------------------------------------------------- */

static void conn_destroy(arena_conn_t *conn)
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

static int conn_open_socket(const char *path, int *ret_fd)
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
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
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

/* Maps the control region the daemon sent (fd is consumed). A region that
 * does not look like one (size, magic, version, slot count) is not used:
 * the connection works, parking reports -ENOTSUP. */
static void conn_map_control(arena_conn_t *conn, int fd)
{
    struct stat st;
    uint32_t slots = conn->ctl_slots;
    conn->ctl_slots = 0;
    if (fd < 0)
        return;
    uint64_t need = arena_ctl_region_size(slots);
    if (slots == 0 || fstat(fd, &st) < 0 || st.st_size < 0 || (uint64_t)st.st_size < need ||
        (uint64_t)st.st_size > SIZE_MAX) {
        (void)close(fd);
        return;
    }
    size_t len = (size_t)st.st_size;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    (void)close(fd);
    if (p == MAP_FAILED)
        return;
    const arena_ctl_header_t *h = p;
    if (h->magic != ARENA_CTL_MAGIC || h->version != ARENA_CTL_VERSION || h->slots != slots) {
        (void)munmap(p, len);
        return;
    }
    conn->ctl_map = p;
    conn->ctl_len = len;
    conn->ctl_slots = slots;
    atomic_store_explicit(&conn->xctl_publish, p, memory_order_release);
}

/* Hello on conn->fd (conn->lock held, or not yet shared); with reattach the
 * pool memfd goes along. The reply's fds go to ret_fds. */
static int conn_hello(arena_conn_t *conn, bool reattach, int *ret_fds)
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
    int r = conn_exchange(conn, &hello, ARENA__MSG_HELLO_REPLY, conn_hello_reply, &ctx, ret_fds);
    conn->send_fd = -1;
    return r;
}

/* ---- reconnecting after a daemon restart ------------------------------------ */

#define CONN_RECONNECT_DEFAULT_MS 5000u
#define CONN_RECONNECT_PAUSE_MS   1000u /* after a failed round, fail fast this long */

static uint64_t conn_now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void conn_sleep_ms(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000u), .tv_nsec = (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* How long one reconnect may keep trying: $ARENA_RECONNECT_MS, 0: never. */
static uint64_t conn_reconnect_budget_ms(void)
{
    const char *env = getenv("ARENA_RECONNECT_MS"); /* NOLINT(concurrency-mt-unsafe) */
    if (!env || !*env)
        return CONN_RECONNECT_DEFAULT_MS;
    uint64_t v = 0;
    for (const char *p = env; *p; p++) {
        if (*p < '0' || *p > '9' || v > UINT64_MAX / 10 - 9)
            return CONN_RECONNECT_DEFAULT_MS;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    return v;
}

static bool conn_same_file(int a, int b)
{
    struct stat sa, sb;
    return a >= 0 && b >= 0 && fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* True when some lease would be claimed; table_lock held. */
static bool conn_has_live(const arena_conn_t *conn)
{
    for (size_t i = 0; i < conn->slot_cap; i++) {
        const lease_slot_t *e = &conn->slots[i];
        if (e->used && !e->gone && !e->detached && !e->parked)
            return true;
    }
    return false;
}

/* Stops sharing a lease no daemon will take back: its pages are copied into
 * private memory moved over the same addresses, so the program keeps its
 * data and nobody else sees it. Writes that other threads make between the
 * copy and the move are lost; the lease was in danger anyway. table_lock
 * held. */
static void conn_detach(arena_conn_t *conn, lease_slot_t *e)
{
    void *copy = mmap(NULL, e->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (copy != MAP_FAILED) {
        memcpy(copy, e->addr, e->size);
        if (mremap(copy, e->size, e->size, MREMAP_MAYMOVE | MREMAP_FIXED, e->addr) == MAP_FAILED)
            (void)munmap(copy, e->size);
    }
    e->detached = true;
    e->has_ctl = false;
    atomic_fetch_add_explicit(&conn->xclaims_refused, 1, memory_order_relaxed);
}

typedef struct claim_ctx {
    arena__wire_claim_result_t results[ARENA__CLAIM_BATCH];
    size_t count;
} claim_ctx_t;

static int conn_claim_reply(void *ctx, const arena__msg_t *reply)
{
    claim_ctx_t *c = ctx;
    c->count = reply->u.claim_reply.count;
    if (c->count > ARENA__CLAIM_BATCH)
        return ARENA_EPROTOCOL;
    memcpy(c->results, reply->u.claim_reply.results, c->count * sizeof(c->results[0]));
    return 0;
}

/* Claims every live lease from the new daemon, a batch at a time; conn->lock
 * held. A lease released by another thread while its claim was on the way
 * is released again at once under its new id. */
static int conn_claim_all(arena_conn_t *conn)
{
    for (;;) {
        arena__wire_claim_t batch[ARENA__CLAIM_BATCH];
        uint64_t ids[ARENA__CLAIM_BATCH];
        size_t n = 0;
        (void)pthread_mutex_lock(&conn->table_lock);
        for (size_t i = 0; i < conn->slot_cap && n < ARENA__CLAIM_BATCH; i++) {
            lease_slot_t *e = &conn->slots[i];
            if (!e->used || e->gone || e->detached || e->parked || e->epoch == conn->epoch ||
                e->claim_epoch == conn->epoch)
                continue;
            e->claim_epoch = conn->epoch;
            batch[n] = (arena__wire_claim_t){e->daemon_id, e->offset, e->size};
            ids[n++] = e->id;
        }
        (void)pthread_mutex_unlock(&conn->table_lock);
        if (n == 0)
            return 0;
        arena__msg_t req = {.kind = ARENA__MSG_CLAIM};
        req.u.claim.count = n;
        req.u.claim.claims = batch;
        claim_ctx_t got = {.count = 0};
        int r = conn_exchange(conn, &req, ARENA__MSG_CLAIM_REPLY, conn_claim_reply, &got, NULL);
        if (r == 0 && got.count != n)
            r = ARENA_EPROTOCOL;
        if (r < 0 && conn->dead)
            return r; /* the next reconnect claims them */
        uint64_t stray[ARENA__CLAIM_BATCH];
        size_t strays = 0;
        (void)pthread_mutex_lock(&conn->table_lock);
        for (size_t k = 0; k < n; k++) {
            const arena__wire_claim_result_t *res = r == 0 ? &got.results[k] : NULL;
            bool granted = res && res->error == ARENA__WIRE_ERROR_NONE && res->lease_id != 0;
            lease_slot_t *e = table_find(conn, ids[k]);
            if (!e) {
                if (granted)
                    stray[strays++] = res->lease_id;
                continue;
            }
            if (!granted) {
                conn_detach(conn, e);
                continue;
            }
            e->daemon_id = res->lease_id;
            e->epoch = conn->epoch;
            if (conn->ctl_map && res->slot < conn->ctl_slots &&
                arena_ctl_load_acquire(arena_ctl_slot(conn->ctl_map, res->slot)) ==
                    arena_ctl_make(res->generation, ARENA_CTL_ACTIVE)) {
                e->has_ctl = true;
                e->ctl_slot = res->slot;
                e->generation = res->generation;
            }
        }
        (void)pthread_mutex_unlock(&conn->table_lock);
        for (size_t k = 0; k < strays; k++) {
            arena__msg_t rel = {.kind = ARENA__MSG_RELEASE};
            rel.u.release.lease_id = stray[k];
            (void)conn_exchange(conn, &rel, ARENA__MSG_RELEASE_REPLY, NULL, NULL, NULL);
        }
    }
}

/* Says Hello on the fresh socket s and takes the new daemon's pool and
 * control region; conn->lock held. s is the connection's on success and
 * closed on failure. */
static int conn_rehello(arena_conn_t *conn, int s)
{
    int old = conn->fd;
    conn->fd = s;
    conn->dead = false;
    (void)pthread_mutex_lock(&conn->table_lock);
    bool reattach = conn->pool_fd >= 0 && !conn->reattach_refused && conn_has_live(conn);
    (void)pthread_mutex_unlock(&conn->table_lock);
    int fds[CONN_FDS] = {-1, -1};
    int r = conn_hello(conn, reattach, fds);
    if (r == 0 && fds[0] < 0)
        r = ARENA_EPROTOCOL;
    if (r < 0) {
        conn_close_fds(fds);
        (void)close(s);
        conn->fd = old;
        conn->dead = true;
        if (reattach && (r == -EPERM || r == -EINVAL))
            conn->reattach_refused = true; /* next round: a fresh pool */
        return r;
    }
    /* Keep the socket's number: it may sit in the caller's poll set. */
    if (old >= 0 && dup3(s, old, O_CLOEXEC) == old) {
        (void)close(s);
        conn->fd = old;
    } else if (old >= 0) {
        (void)close(old);
    }
    bool same_pool = conn_same_file(conn->pool_fd, fds[0]);
    (void)pthread_mutex_lock(&conn->table_lock);
    conn->epoch++;
    for (size_t i = 0; i < conn->slot_cap; i++) {
        lease_slot_t *e = &conn->slots[i];
        if (!e->used || e->gone || e->detached)
            continue;
        if (e->parked) {
            /* Nothing live in it: not worth a claim. Its owner's unpark
             * says ARENA_ERECLAIMED. */
            (void)munmap(e->addr, e->size);
            e->gone = true;
            conn->parked_bytes -= e->size;
            continue;
        }
        e->has_ctl = false; /* its slot was in the old daemon's region */
        if (!same_pool)
            conn_detach(conn, e);
    }
    if (!same_pool) {
        if (conn->pool_fd >= 0)
            (void)close(conn->pool_fd);
        conn->pool_fd = fds[0];
    } else {
        (void)close(fds[0]);
    }
    /* The old region stays mapped (a publisher may hold its address). */
    conn->ctl_map = NULL;
    conn->ctl_len = 0;
    conn_map_control(conn, fds[1]);
    (void)pthread_mutex_unlock(&conn->table_lock);
    conn->reattach_refused = false;
    atomic_fetch_add_explicit(&conn->xreconnects, 1, memory_order_relaxed);
    if (same_pool)
        (void)conn_claim_all(conn); /* a failure leaves conn dead: claimed next round */
    return 0;
}

/* Reconnects a dead connection with backoff, for up to the budget; conn->lock
 * held. Returns 0, or ARENA_EDISCONNECTED (no daemon came back in time, or
 * reconnecting is off, or this is a fork child). */
static int conn_reconnect(arena_conn_t *conn)
{
    if (!conn->dead)
        return 0;
    if (conn_foreign(conn) || conn->fd < 0)
        return ARENA_EDISCONNECTED;
    uint64_t budget = conn_reconnect_budget_ms();
    uint64_t now = conn_now_ms();
    if (budget == 0 || now < conn->retry_after_ms)
        return ARENA_EDISCONNECTED;
    uint64_t deadline = now + budget, pause = 10;
    for (;;) {
        int s = -1;
        int r = conn_open_socket(conn->info.socket_path, &s);
        if (r == 0) {
            r = conn_rehello(conn, s);
            if (r == 0 && !conn->dead)
                return 0;
        }
        now = conn_now_ms();
        if (now >= deadline)
            break;
        conn_sleep_ms(pause < deadline - now ? pause : deadline - now);
        pause = pause * 2 < 500 ? pause * 2 : 500;
    }
    conn->retry_after_ms = conn_now_ms() + CONN_RECONNECT_PAUSE_MS;
    return ARENA_EDISCONNECTED;
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

    arena_conn_t *conn = conn_map(conn_page_round(sizeof(*conn)));
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
    conn->sendbuf = conn_map(conn->sendcap);
    conn->recvcap = CONN_RECV_INITIAL;
    conn->recvbuf = conn_map(conn->recvcap);
    if (!conn->sendbuf || !conn->recvbuf) {
        r = -ENOMEM;
        goto fail;
    }

    r = conn_open_socket(path, &conn->fd);
    if (r < 0)
        goto fail;

    int fds[CONN_FDS] = {-1, -1};
    r = conn_hello(conn, false, fds);
    int pool_fd = fds[0];
    if (r < 0) {
        conn_close_fds(fds);
        /* A daemon that hangs up on Hello did not accept us. */
        if (r == ARENA_EDISCONNECTED)
            r = ARENA_ENODAEMON;
        goto fail;
    }
    if (pool_fd < 0) {
        conn_close_fds(fds);
        r = ARENA_EPROTOCOL;
        goto fail;
    }
    conn->pool_fd = pool_fd;
    conn_map_control(conn, fds[1]);
    *ret_conn = conn;
    return 0;

fail:
    conn_destroy(conn);
    return r;
}

/* ---- the default connection ------------------------------------------------- */

static pthread_mutex_t default_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(arena_conn_t *) xdefault_conn; /* set once under default_lock */

void arena__conn_publish_live(uint64_t live_bytes)
{
    arena_conn_t *conn = atomic_load_explicit(&xdefault_conn, memory_order_acquire);
    /* A fork child still sees the parent's connection, whose region is
     * shared: the child's figure is not the parent's to overwrite. */
    if (!conn || conn_foreign(conn))
        return;
    void *region = atomic_load_explicit(&conn->xctl_publish, memory_order_acquire);
    if (region)
        arena_ctl_publish_live(region, live_bytes);
}

int arena__conn_default(arena_conn_t **ret_conn)
{
    if (!ret_conn)
        return -EINVAL;
    arena_conn_t *conn = atomic_load_explicit(&xdefault_conn, memory_order_acquire);
    if (conn && !conn_foreign(conn)) {
        *ret_conn = conn;
        return 0;
    }
    (void)pthread_mutex_lock(&default_lock);
    conn = atomic_load_explicit(&xdefault_conn, memory_order_relaxed);
    if (conn && conn_foreign(conn)) {
        /* A fork child: the parent's connection is left as it is (its
         * mappings may be the allocator's private copies now), never freed. */
        conn_orphan(conn);
        conn = NULL;
        atomic_store_explicit(&xdefault_conn, NULL, memory_order_release);
    }
    int r = 0;
    if (!conn) {
        /* A failure leaves the state empty, so a later call tries again. */
        r = arena_connect(NULL, &conn);
        if (r == 0) {
            atomic_store_explicit(&xdefault_conn, conn, memory_order_release);
            arena__notify_default_started(conn);
        }
    }
    (void)pthread_mutex_unlock(&default_lock);
    if (r < 0)
        return r;
    *ret_conn = conn;
    return 0;
}

void arena_disconnect(arena_conn_t *conn)
{
    if (!conn)
        return;
    (void)pthread_mutex_lock(&default_lock);
    if (atomic_load_explicit(&xdefault_conn, memory_order_relaxed) == conn)
        atomic_store_explicit(&xdefault_conn, NULL, memory_order_release);
    (void)pthread_mutex_unlock(&default_lock);
    conn_destroy(conn);
}
