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
 * never waits behind a request queued in the daemon. Neither lock is held
 * while the other is taken.
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
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "arena.h"
#include "conn.h"
#include "paths.h"
#include "wire.h"

#define CONN_RECV_INITIAL ((size_t)64 * 1024)
#define CONN_NAME_MAX     64u
#define TABLE_INITIAL     64u

typedef struct lease_slot {
    uint64_t id;
    void *addr;
    size_t size;
    bool used;
} lease_slot_t;

struct arena_conn {
    pthread_mutex_t lock;  /* one exchange at a time; guards everything below but the table */
    pid_t pid;             /* the process that connected; another pid is a fork child */
    atomic_bool xorphaned; /* fork child only: fds closed (first caller wins) */
    int fd;                /* the socket */
    int pool_fd;           /* the pool heap memfd from HelloReply */
    bool dead;             /* an I/O failure happened; never cleared */
    uint64_t next_id;      /* last request id used */
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
};

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

/* Closes every fd in an SCM_RIGHTS message except the first, which goes to
 * *fd_slot when it is free, and is closed otherwise. */
static void conn_take_fds(struct msghdr *mh, int *fd_slot)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char *data = CMSG_DATA(c);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, data + i * sizeof(int), sizeof(int));
            if (fd_slot && *fd_slot < 0)
                *fd_slot = fd;
            else
                (void)close(fd);
        }
    }
}

/* Reads exactly len bytes, collecting passed fds into *fd_slot. */
static int conn_recv(arena_conn_t *conn, void *buf, size_t len, int *fd_slot)
{
    uint8_t *p = buf;
    while (len > 0) {
        union {
            struct cmsghdr align;
            char buf[CMSG_SPACE(4 * sizeof(int))];
        } cbuf;
        struct iovec iov = {.iov_base = p, .iov_len = len};
        struct msghdr mh = {
            .msg_iov = &iov,
            .msg_iovlen = 1,
            .msg_control = cbuf.buf,
            .msg_controllen = sizeof(cbuf.buf),
        };
        ssize_t n = recvmsg(conn->fd, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n > 0 || mh.msg_controllen > 0)
            conn_take_fds(&mh, fd_slot);
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
    if (r == -ENOMEM)
        return r;
    return r < 0 ? ARENA_EPROTOCOL : 0;
}

/* One exchange; conn->lock held. The fd that came with the reply goes to
 * *ret_fd when ret_fd is not NULL (and is closed otherwise). */
static int conn_exchange(arena_conn_t *conn, const arena__msg_t *req, arena__msg_kind_t expect,
                         arena__reply_fn fn, void *ctx, int *ret_fd)
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
        int fd = -1;
        arena__msg_t reply;
        r = conn_read_frame(conn, &reply, &fd);
        if (r < 0) {
            if (fd >= 0)
                (void)close(fd);
            if (r == ARENA_EPROTOCOL && !conn->dead)
                continue; /* an undecodable frame, maybe a newer notification */
            return r;
        }
        bool ours = reply.request_id == msg.request_id;
        /* An Error with id 0 answers whatever is pending (the daemon could
         * not tell which request it was, e.g. a frame it refused). */
        if (!ours && !(reply.request_id == 0 && reply.kind == ARENA__MSG_ERROR)) {
            if (fd >= 0)
                (void)close(fd);
            continue;
        }
        if (reply.kind == ARENA__MSG_ERROR) {
            if (fd >= 0)
                (void)close(fd);
            conn_strlcpy(conn->last_error, reply.u.error.message, sizeof(conn->last_error));
            return arena__error_from_wire(reply.u.error.code);
        }
        if (reply.kind != expect) {
            if (fd >= 0)
                (void)close(fd);
            return ARENA_EPROTOCOL;
        }
        if (ret_fd)
            *ret_fd = fd;
        else if (fd >= 0)
            (void)close(fd);
        return fn ? fn(ctx, &reply) : 0;
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
    int r = conn_exchange(conn, req, expect, fn, ctx, NULL);
    (void)pthread_mutex_unlock(&conn->lock);
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
    *ret_info = conn->info; /* written once, before the connection is handed out */
    return 0;
}

int arena__conn_pool_fd(arena_conn_t *conn)
{
    return conn && !conn_foreign(conn) ? conn->pool_fd : -1;
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

int arena__conn_track(arena_conn_t *conn, uint64_t id, void *addr, size_t size)
{
    if (!conn || !addr)
        return -EINVAL;
    if (conn_foreign(conn))
        return ARENA_EDISCONNECTED;
    int r = 0;
    (void)pthread_mutex_lock(&conn->table_lock);
    if ((conn->slot_count + 1) * 2 > conn->slot_cap) {
        r = table_grow(conn, conn->slot_cap ? conn->slot_cap * 2 : TABLE_INITIAL);
        if (r < 0)
            goto out;
    }
    size_t i = table_hash(id, conn->slot_cap);
    while (conn->slots[i].used) {
        if (conn->slots[i].id == id) {
            r = -EEXIST; /* the daemon handed out one id twice */
            goto out;
        }
        i = (i + 1) & (conn->slot_cap - 1);
    }
    conn->slots[i] = (lease_slot_t){.id = id, .addr = addr, .size = size, .used = true};
    conn->slot_count++;
out:
    (void)pthread_mutex_unlock(&conn->table_lock);
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

int arena__conn_untrack(arena_conn_t *conn, uint64_t id, const void *addr, size_t size)
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
                    table_remove_at(conn, i);
                    conn->slot_count--;
                    r = 0;
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

/* ---- connect and disconnect ------------------------------------------------- */

static void conn_destroy(arena_conn_t *conn)
{
    for (size_t i = 0; i < conn->slot_cap; i++) {
        if (conn->slots[i].used)
            (void)munmap(conn->slots[i].addr, conn->slots[i].size);
    }
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
    conn->info.client_id = reply->u.hello_reply.client_id;
    conn->info.heap_size = reply->u.hello_reply.heap_size;
    conn->info.granule = granule;
    conn->info.budget = reply->u.hello_reply.budget;
    conn->info.hugetlb = reply->u.hello_reply.hugetlb;
    conn_strlcpy(conn->info.daemon_version, reply->u.hello_reply.daemon_version,
                 sizeof(conn->info.daemon_version));
    return 0;
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
        r = arena__default_socket_path(path, sizeof(path));
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

    char name[CONN_NAME_MAX];
    conn_client_name(name, sizeof(name));
    arena__msg_t hello = {.kind = ARENA__MSG_HELLO};
    hello.u.hello.protocol_version = ARENA__PROTOCOL_VERSION;
    hello.u.hello.client_name = name;
    hello_ctx_t ctx = {.conn = conn};
    int pool_fd = -1;
    r = conn_exchange(conn, &hello, ARENA__MSG_HELLO_REPLY, conn_hello_reply, &ctx, &pool_fd);
    if (r < 0) {
        if (pool_fd >= 0)
            (void)close(pool_fd);
        /* A daemon that hangs up on Hello did not accept us. */
        if (r == ARENA_EDISCONNECTED)
            r = ARENA_ENODAEMON;
        goto fail;
    }
    if (pool_fd < 0) {
        r = ARENA_EPROTOCOL;
        goto fail;
    }
    conn->pool_fd = pool_fd;
    *ret_conn = conn;
    return 0;

fail:
    conn_destroy(conn);
    return r;
}

/* ---- the default connection ------------------------------------------------- */

static pthread_mutex_t default_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(arena_conn_t *) xdefault_conn; /* set once under default_lock */

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
         * mappings may be the pools' private copies now), never freed. */
        conn_orphan(conn);
        conn = NULL;
        atomic_store_explicit(&xdefault_conn, NULL, memory_order_release);
    }
    int r = 0;
    if (!conn) {
        /* A failure leaves the state empty, so a later call tries again. */
        r = arena_connect(NULL, &conn);
        if (r == 0)
            atomic_store_explicit(&xdefault_conn, conn, memory_order_release);
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
