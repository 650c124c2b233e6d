/* SPDX-License-Identifier: MIT
 *
 * test_client_conn.c -- the connection layer against a scripted peer.
 *
 * The real daemon is exercised by the integration tests; here a forked child
 * speaks the protocol by hand (with the client's own wire adapter) so that the
 * cases a correct daemon never produces can be tested: refused versions,
 * a HelloReply without the pool fd, notifications and stale replies between
 * a request and its reply, stray fds, an Error with request id 0, a reply of
 * the wrong kind, a lease outside the heap, and a peer that hangs up. The
 * pool is a real memfd, so mapping, alignment and sharing are real too.
 *
 * The peer child dies with its test process (PR_SET_PDEATHSIG), and every
 * test waits for it, so nothing is left behind on failure either.
 */
#include <check.h>
#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "peer.h"
#include "sock.h"
#include "admin.h"
#include "arena.h"
#include "conn.h"
#include "fdpass.h"
#include "wire.h"

#define HEAP_SIZE   (64u << 20)
#define GRANULE     65536u
#define BAD_SIZE    12289u /* the peer answers this lease with an offset outside the heap */
#define BAD_LEASE   900u
#define DUP_SIZE    20481u /* the peer answers this lease with an id already handed out */
#define PATTERN_OFF 4096u

typedef struct peer {
    pid_t pid;
    char dir[64];
    char path[128];
} peer_t;

typedef int (*peer_script_fn)(int fd);

/* ---- the peer's side ------------------------------------------------------------ */

static arena__scratch_t peer_scratch;

/* Reads one frame and decodes it into *m (which may point into the frame,
 * kept until the next call). Returns 0 or -1. */
static int peer_read(int fd, arena__msg_t *m)
{
    static uint8_t *body;
    size_t len;
    free(body);
    body = NULL;
    if (arena_peer_recv_frame(fd, &body, &len, NULL, -1) != 1)
        return -1;
    arena__scratch_reset(&peer_scratch);
    return arena__wire_decode(body, len, &peer_scratch, m) == 0 ? 0 : -1;
}

static int peer_send(int fd, const arena__msg_t *m, int pass_fd)
{
    static uint8_t frame[65536];
    long n = arena__wire_encode(m, frame, sizeof(frame));
    if (n < 0)
        return -1;
    return arena_peer_send(fd, frame, (size_t)n, &pass_fd, pass_fd >= 0 ? 1 : 0, -1) == 0 ? 0 : -1;
}

static int peer_send_error(int fd, uint64_t id, int code, const char *text)
{
    arena__msg_t e = {.request_id = id, .kind = ARENA__MSG_ERROR};
    e.u.error.code = code;
    e.u.error.message = text;
    return peer_send(fd, &e, -1);
}

/* Reads Hello and checks what the client says about itself. */
static int peer_hello(int fd, arena__msg_t *m)
{
    if (peer_read(fd, m) < 0 || m->kind != ARENA__MSG_HELLO)
        return -1;
    if (m->u.hello.protocol_version != 1 || m->u.hello.client_name[0] == '\0' || m->request_id == 0)
        return -1;
    return 0;
}

static int peer_send_hello_reply(int fd, uint64_t id, uint32_t version, int pool_fd)
{
    arena__msg_t r = {.request_id = id, .kind = ARENA__MSG_HELLO_REPLY};
    r.u.hello_reply.protocol_version = version;
    r.u.hello_reply.client_id = 77;
    r.u.hello_reply.heap_size = HEAP_SIZE;
    r.u.hello_reply.granule = GRANULE;
    r.u.hello_reply.budget = HEAP_SIZE;
    r.u.hello_reply.daemon_version = "peer-1";
    return peer_send(fd, &r, pool_fd);
}

static int script_version_error(int fd)
{
    arena__msg_t m;
    if (peer_hello(fd, &m) < 0)
        return 3;
    return peer_send_error(fd, m.request_id, ARENA__WIRE_ERROR_VERSION, "v9 only") < 0 ? 4 : 0;
}

static int script_reply_version_2(int fd)
{
    arena__msg_t m;
    int pool = memfd_create("peer", MFD_CLOEXEC);
    if (pool < 0 || ftruncate(pool, HEAP_SIZE) < 0 || peer_hello(fd, &m) < 0)
        return 3;
    return peer_send_hello_reply(fd, m.request_id, 2, pool) < 0 ? 4 : 0;
}

static int script_no_fd(int fd)
{
    arena__msg_t m;
    if (peer_hello(fd, &m) < 0)
        return 3;
    return peer_send_hello_reply(fd, m.request_id, 1, -1) < 0 ? 4 : 0;
}

static int script_hangup(int fd)
{
    arena__msg_t m;
    return peer_hello(fd, &m) < 0 ? 3 : 0;
}

/* A small daemon: leases from a bump pointer (aligned to the size's power of
 * two, so offsets look like arenad's), with a few traps. */
static int script_full(int fd)
{
    arena__msg_t m;
    int pool = memfd_create("peer", MFD_CLOEXEC);
    if (pool < 0 || ftruncate(pool, HEAP_SIZE) < 0 || peer_hello(fd, &m) < 0)
        return 3;
    if (peer_send_hello_reply(fd, m.request_id, 1, pool) < 0)
        return 4;
    uint8_t *heap = mmap(NULL, HEAP_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, pool, 0);
    if (heap == MAP_FAILED)
        return 5;
    uint64_t next_off = 0, next_id = 1, first_off = UINT64_MAX;
    bool saw_bad_release = false, dup_sent = false;
    static uint8_t live[1024];
    while (peer_read(fd, &m) == 0) {
        arena__msg_t r = {.request_id = m.request_id};
        switch (m.kind) {
        case ARENA__MSG_LEASE: {
            if (m.u.lease.size == DUP_SIZE) {
                r.kind = ARENA__MSG_LEASE_REPLY;
                r.u.lease_reply.lease_id = 1;
                r.u.lease_reply.offset = HEAP_SIZE - GRANULE;
                r.u.lease_reply.size = GRANULE;
                dup_sent = true;
                if (peer_send(fd, &r, -1) < 0)
                    return 6;
                break;
            }
            if (m.u.lease.size == BAD_SIZE) {
                r.kind = ARENA__MSG_LEASE_REPLY;
                r.u.lease_reply.lease_id = BAD_LEASE;
                r.u.lease_reply.offset = HEAP_SIZE;
                r.u.lease_reply.size = GRANULE;
                if (peer_send(fd, &r, -1) < 0)
                    return 6;
                break;
            }
            uint64_t size = (m.u.lease.size + GRANULE - 1) / GRANULE * GRANULE;
            if (next_off + size > HEAP_SIZE) {
                if (peer_send_error(fd, m.request_id, ARENA__WIRE_ERROR_NO_MEMORY, "full") < 0)
                    return 6;
                break;
            }
            /* First a notification carrying a stray fd, then a stale reply,
             * then the real one: the client must skip the first two. */
            arena__msg_t note = {.request_id = 0, .kind = ARENA__MSG_RECLAIM_REPLY};
            arena__msg_t stale = {.request_id = m.request_id + 1000,
                                  .kind = ARENA__MSG_LEASE_REPLY};
            stale.u.lease_reply.lease_id = 999;
            stale.u.lease_reply.size = GRANULE;
            if (peer_send(fd, &note, pool) < 0 || peer_send(fd, &stale, -1) < 0)
                return 6;
            r.kind = ARENA__MSG_LEASE_REPLY;
            r.u.lease_reply.lease_id = next_id;
            r.u.lease_reply.offset = next_off;
            r.u.lease_reply.size = size;
            r.u.lease_reply.zeroed = true;
            if (first_off == UINT64_MAX)
                first_off = next_off;
            if (next_id < 1024)
                live[next_id] = 1;
            next_id++;
            next_off += size;
            if (peer_send(fd, &r, -1) < 0)
                return 6;
            break;
        }
        case ARENA__MSG_RELEASE: {
            uint64_t id = m.u.release.lease_id;
            if (dup_sent && id == 1)
                return 10; /* the client gave back a lease it still maps */
            if (id == BAD_LEASE) {
                saw_bad_release = true;
                r.kind = ARENA__MSG_RELEASE_REPLY;
                r.u.release_reply.lease_id = id;
            } else if (id < 1024 && live[id]) {
                live[id] = 0;
                r.kind = ARENA__MSG_RELEASE_REPLY;
                r.u.release_reply.lease_id = id;
            } else {
                r.kind = ARENA__MSG_ERROR;
                r.u.error.code = ARENA__WIRE_ERROR_NOT_FOUND;
                r.u.error.message = "no such lease";
            }
            if (peer_send(fd, &r, -1) < 0)
                return 6;
            break;
        }
        case ARENA__MSG_METRICS: {
            /* The client wrote 0xC1 over the first lease's first page; we
             * answer whether we see it, and write 0x5E after it. */
            bool ok = first_off != UINT64_MAX;
            for (size_t i = 0; ok && i < PATTERN_OFF; i++)
                ok = heap[first_off + i] == 0xC1;
            if (first_off != UINT64_MAX)
                memset(heap + first_off + PATTERN_OFF, 0x5E, PATTERN_OFF);
            r.kind = ARENA__MSG_METRICS_REPLY;
            r.u.metrics_reply.text = ok ? "seen 1\n" : "seen 0\n";
            if (peer_send(fd, &r, -1) < 0)
                return 6;
            break;
        }
        case ARENA__MSG_STATUS:
            if (peer_send_error(fd, 0, ARENA__WIRE_ERROR_PERMISSION, "not for you") < 0)
                return 6;
            break;
        case ARENA__MSG_LIST_CLIENTS:
            r.kind = ARENA__MSG_LEASE_REPLY; /* the wrong kind */
            if (peer_send(fd, &r, -1) < 0)
                return 6;
            break;
        case ARENA__MSG_LIST_LEASES:
            /* Hang up mid-exchange, as a crashing daemon would. */
            return saw_bad_release ? 0 : 7;
        default:
            return 8;
        }
    }
    return 9; /* the client should have asked for leases before leaving */
}

/* Frames a correct daemon never sends: an undecodable body (skipped), then
 * a length above ARENA_MAX_REPLY_FRAME (the stream is lost). */
static int script_bad_frames(int fd)
{
    arena__msg_t m;
    int pool = memfd_create("peer", MFD_CLOEXEC);
    if (pool < 0 || ftruncate(pool, HEAP_SIZE) < 0 || peer_hello(fd, &m) < 0)
        return 3;
    if (peer_send_hello_reply(fd, m.request_id, 1, pool) < 0)
        return 4;
    while (peer_read(fd, &m) == 0) {
        if (m.kind == ARENA__MSG_LEASE) {
            /* An Envelope with a body from a newer daemon (field 99 = 1,
             * request id 0): a notification this client does not know. */
            static const uint8_t newer[] = {3, 0, 0, 0, 0x98, 0x06, 0x01};
            if (write(fd, newer, sizeof(newer)) != (ssize_t)sizeof(newer))
                return 5;
            arena__msg_t r = {.request_id = m.request_id, .kind = ARENA__MSG_LEASE_REPLY};
            r.u.lease_reply.lease_id = 1;
            r.u.lease_reply.size = GRANULE;
            if (peer_send(fd, &r, -1) < 0)
                return 6;
        } else if (m.kind == ARENA__MSG_RELEASE) {
            /* Bytes that are no Envelope at all. */
            static const uint8_t garbage[] = {5, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff};
            if (write(fd, garbage, sizeof(garbage)) != (ssize_t)sizeof(garbage))
                return 7;
        } else {
            return 8;
        }
    }
    return 0;
}

/* ---- the test's side ------------------------------------------------------------ */

static void peer_start(peer_t *p, peer_script_fn script)
{
    memset(p, 0, sizeof(*p));
    (void)snprintf(p->dir, sizeof(p->dir), "/tmp/arena-conn-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(p->dir));
    (void)snprintf(p->path, sizeof(p->path), "%s/peer.sock", p->dir);
    int lfd = arena_test_unix_socket(p->path, SOCK_STREAM, ARENA_TEST_SOCK_LISTEN);
    ck_assert_int_ge(lfd, 0);
    pid_t parent = getpid();
    p->pid = fork();
    ck_assert_int_ge(p->pid, 0);
    if (p->pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
            _exit(100);
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            _exit(101);
        _exit(script(fd));
    }
    (void)close(lfd);
}

/* Waits for the peer; returns its exit code (-1 if it did not exit). */
static int peer_finish(peer_t *p)
{
    int status = 0;
    pid_t w;
    do {
        w = waitpid(p->pid, &status, 0);
    } while (w < 0 && errno == EINTR);
    (void)unlink(p->path);
    (void)rmdir(p->dir);
    return (w == p->pid && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    (void)closedir(d);
    return n;
}

START_TEST(test_connect_no_daemon)
{
    arena_conn_t *conn = (arena_conn_t *)0x1;
    char dir[] = "/tmp/arena-conn-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[256];
    (void)snprintf(path, sizeof(path), "%s/missing.sock", dir);
    ck_assert_int_eq(arena_connect(path, &conn), ARENA_ENODAEMON);
    (void)snprintf(path, sizeof(path), "%s/no/such/dir.sock", dir);
    ck_assert_int_eq(arena_connect(path, &conn), ARENA_ENODAEMON);
    /* A socket file nobody listens on any more. */
    (void)snprintf(path, sizeof(path), "%s/stale.sock", dir);
    int fd = arena_test_unix_socket(path, SOCK_STREAM, ARENA_TEST_SOCK_BIND);
    ck_assert_int_ge(fd, 0);
    (void)close(fd);
    ck_assert_int_eq(arena_connect(path, &conn), ARENA_ENODAEMON);
    ck_assert_int_eq(unlink(path), 0);
    /* The environment is used when the path is NULL. */
    (void)snprintf(path, sizeof(path), "%s/env.sock", dir);
    ck_assert_int_eq(setenv("ARENAD_SOCKET", path, 1), 0);
    ck_assert_int_eq(arena_connect(NULL, &conn), ARENA_ENODAEMON);
    ck_assert_ptr_eq(conn, (arena_conn_t *)0x1); /* untouched */
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(test_connect_bad_arguments)
{
    arena_conn_t *conn = NULL;
    char longpath[300];
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    ck_assert_int_eq(arena_connect("/tmp/x.sock", NULL), -EINVAL);
    ck_assert_int_eq(arena_connect("", &conn), -EINVAL);
    ck_assert_int_eq(arena_connect(longpath, &conn), -ENAMETOOLONG);
    ck_assert_ptr_null(conn);
    arena_disconnect(NULL); /* NULL-safe */

    /* Leases and releases with bad arguments fail before any I/O. */
    arena_lease_t l = {0};
    ck_assert_int_eq(arena_lease(NULL, 0, 0, &l), -EINVAL);
    ck_assert_int_eq(arena_lease(NULL, 4096, 0, NULL), -EINVAL);
    ck_assert_int_eq(arena__conn_lease_aligned(NULL, 4096, 0, 0, &l), -EINVAL);
    ck_assert_int_eq(arena__conn_lease_aligned(NULL, 4096, 3 << 20, 0, &l), -EINVAL);
    ck_assert_int_eq(arena__conn_lease_aligned(NULL, 4096, 1024, 0, &l), -EINVAL);
    ck_assert_int_eq(arena_release(NULL, NULL), -EINVAL);
    ck_assert_int_eq(arena_release(NULL, &l), -EINVAL); /* addr NULL, size 0 */
}
END_TEST

START_TEST(test_default_connection_retries)
{
    char dir[] = "/tmp/arena-conn-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[256];
    (void)snprintf(path, sizeof(path), "%s/none.sock", dir);
    ck_assert_int_eq(setenv("ARENAD_SOCKET", path, 1), 0);
    arena_lease_t l;
    arena_conn_t *c1 = NULL, *c2 = NULL;
    ck_assert_int_eq(arena_lease(NULL, 4096, 0, &l), ARENA_ENODAEMON);
    ck_assert_int_eq(arena__conn_default(&c1), ARENA_ENODAEMON);
    ck_assert_int_eq(rmdir(dir), 0);

    /* A daemon appears: the next call connects. */
    peer_t p;
    peer_start(&p, script_full);
    ck_assert_int_eq(setenv("ARENAD_SOCKET", p.path, 1), 0);
    ck_assert_int_eq(arena__conn_default(&c1), 0);
    ck_assert_int_eq(arena__conn_default(&c2), 0);
    ck_assert_ptr_eq(c1, c2);
    ck_assert_int_eq(arena_lease(NULL, 100, 0, &l), 0);
    ck_assert_int_eq(arena_release(NULL, &l), 0);
    ck_assert_int_eq(arena_lease(NULL, 100, 0, &l), 0);
    arena__admin_leases_t *list;
    ck_assert_int_eq(arena__admin_leases(NULL, 0, &list), ARENA_EDISCONNECTED);
    arena_disconnect(c1);
    ck_assert_int_eq(peer_finish(&p), 7); /* no bad lease was tried here */
}
END_TEST

START_TEST(test_hello_refused_version)
{
    peer_t p;
    peer_start(&p, script_version_error);
    arena_conn_t *conn = NULL;
    int fds = count_fds();
    ck_assert_int_eq(arena_connect(p.path, &conn), ARENA_EVERSION);
    ck_assert_ptr_null(conn);
    ck_assert_int_eq(count_fds(), fds);
    ck_assert_int_eq(peer_finish(&p), 0);
}
END_TEST

START_TEST(test_hello_reply_other_version)
{
    peer_t p;
    peer_start(&p, script_reply_version_2);
    arena_conn_t *conn = NULL;
    int fds = count_fds();
    ck_assert_int_eq(arena_connect(p.path, &conn), ARENA_EVERSION);
    ck_assert_int_eq(count_fds(), fds); /* the pool fd that came along is closed */
    ck_assert_int_eq(peer_finish(&p), 0);
}
END_TEST

START_TEST(test_hello_reply_without_pool)
{
    peer_t p;
    peer_start(&p, script_no_fd);
    arena_conn_t *conn = NULL;
    ck_assert_int_eq(arena_connect(p.path, &conn), ARENA_EPROTOCOL);
    ck_assert_int_eq(peer_finish(&p), 0);
}
END_TEST

START_TEST(test_hello_hangup)
{
    peer_t p;
    peer_start(&p, script_hangup);
    arena_conn_t *conn = NULL;
    ck_assert_int_eq(arena_connect(p.path, &conn), ARENA_ENODAEMON);
    ck_assert_int_eq(peer_finish(&p), 0);
}
END_TEST

static bool all_bytes(const void *p, int v, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        if (b[i] != (uint8_t)v)
            return false;
    }
    return true;
}

START_TEST(test_full_exchange)
{
    peer_t p;
    peer_start(&p, script_full);
    arena_conn_t *conn = NULL;
    ck_assert_int_eq(arena_connect(p.path, &conn), 0);
    arena__conn_info_t info;
    ck_assert_int_eq(arena__conn_info(conn, &info), 0);
    ck_assert_uint_eq(info.client_id, 77);
    ck_assert_uint_eq(info.granule, GRANULE);
    ck_assert_uint_eq(info.heap_size, HEAP_SIZE);
    ck_assert_str_eq(info.daemon_version, "peer-1");
    ck_assert_str_eq(info.socket_path, p.path);
    int fds = count_fds();

    /* Small lease: rounded to the granule, aligned to its size. */
    arena_lease_t a;
    ck_assert_int_eq(arena_lease(conn, 1, 0, &a), 0);
    ck_assert_uint_eq(a.size, GRANULE);
    ck_assert_uint_eq((uintptr_t)a.addr % GRANULE, 0);
    ck_assert(a.zeroed);
    memset(a.addr, 0xC1, PATTERN_OFF);
    /* 3 MiB: aligned to 4 MiB. */
    arena_lease_t b;
    ck_assert_int_eq(arena_lease(conn, 3u << 20, 0, &b), 0);
    ck_assert_uint_eq(b.size, 3u << 20);
    ck_assert_uint_eq((uintptr_t)b.addr % (4u << 20), 0);
    memset(b.addr, 0x22, b.size);
    /* Above 4 MiB: page-aligned only, still fully usable. */
    arena_lease_t c;
    ck_assert_int_eq(arena_lease(conn, (5u << 20) + 1, 0, &c), 0);
    ck_assert_uint_eq(c.size, (5u << 20) + GRANULE);
    memset(c.addr, 0x33, c.size);
    /* Explicit alignment. */
    arena_lease_t d;
    ck_assert_int_eq(arena__conn_lease_aligned(conn, GRANULE, 2u << 20, 0, &d), 0);
    ck_assert_uint_eq((uintptr_t)d.addr % (2u << 20), 0);
    ck_assert_uint_eq(arena__conn_tracked(conn), 4);
    /* The notifications' stray fds were closed. */
    ck_assert_int_eq(count_fds(), fds);

    /* Both sides see each other's writes through the shared pool. */
    arena__admin_text_t *t;
    ck_assert_int_eq(arena__admin_metrics(conn, &t), 0);
    ck_assert_str_eq(t->text, "seen 1\n");
    ck_assert_uint_eq(t->len, 7);
    arena__admin_text_free(t);
    ck_assert(all_bytes((char *)a.addr + PATTERN_OFF, 0x5E, PATTERN_OFF));
    ck_assert(all_bytes(b.addr, 0x22, b.size));

    /* A lease outside the heap is refused and handed back at once. */
    arena_lease_t bad = {0};
    ck_assert_int_eq(arena_lease(conn, BAD_SIZE, 0, &bad), ARENA_EPROTOCOL);
    ck_assert_ptr_null(bad.addr);
    ck_assert_uint_eq(arena__conn_tracked(conn), 4);
    /* A reply reusing a held lease's id is refused, and not "released". */
    ck_assert_int_eq(arena_lease(conn, DUP_SIZE, 0, &bad), ARENA_EPROTOCOL);
    ck_assert_uint_eq(arena__conn_tracked(conn), 4);
    ck_assert(all_bytes(a.addr, 0xC1, PATTERN_OFF));

    /* Forged leases are refused without touching any mapping. */
    arena_lease_t forged = a;
    forged.addr = (char *)a.addr + 4096;
    ck_assert_int_eq(arena_release(conn, &forged), -EINVAL);
    forged = a;
    forged.size = a.size * 2;
    ck_assert_int_eq(arena_release(conn, &forged), -EINVAL);
    forged = a;
    forged.id = 12345;
    ck_assert_int_eq(arena_release(conn, &forged), -ENOENT);
    ck_assert(all_bytes(a.addr, 0xC1, PATTERN_OFF));

    ck_assert_int_eq(arena_release(conn, &c), 0);
    ck_assert_int_eq(arena_release(conn, &c), -ENOENT); /* double release */
    ck_assert_uint_eq(arena__conn_tracked(conn), 3);

    /* An Error with request id 0 answers the pending request; its text stays. */
    arena__admin_status_t st;
    ck_assert_int_eq(arena__admin_status(conn, &st), -EPERM);
    char msg[64];
    ck_assert_str_eq(arena__conn_last_error(conn, msg, sizeof(msg)), "not for you");
    /* A reply of the wrong kind. */
    arena__admin_clients_t *clients = NULL;
    ck_assert_int_eq(arena__admin_clients(conn, &clients), ARENA_EPROTOCOL);
    ck_assert_ptr_null(clients);
    ck_assert_str_eq(arena__conn_last_error(conn, msg, sizeof(msg)), "");

    /* The peer hangs up: this and every later exchange is disconnected, and
     * held mappings stay usable until released. */
    arena__admin_leases_t *leases = NULL;
    ck_assert_int_eq(arena__admin_leases(conn, 0, &leases), ARENA_EDISCONNECTED);
    ck_assert_ptr_null(leases);
    ck_assert_int_eq(arena_lease(conn, 1, 0, &bad), ARENA_EDISCONNECTED);
    ck_assert(all_bytes(b.addr, 0x22, b.size));
    ck_assert_int_eq(arena_release(conn, &b), ARENA_EDISCONNECTED);
    ck_assert_uint_eq(arena__conn_tracked(conn), 2);
    arena_disconnect(conn); /* unmaps a and d */
    ck_assert_int_eq(peer_finish(&p), 0);
}
END_TEST

typedef struct thread_job {
    arena_conn_t *conn;
    int tag;
    int failures;
} thread_job_t;

static void *lease_thread(void *arg)
{
    thread_job_t *job = arg;
    for (int i = 0; i < 25; i++) {
        arena_lease_t l;
        if (arena_lease(job->conn, GRANULE, 0, &l) != 0) {
            job->failures++;
            continue;
        }
        memset(l.addr, job->tag, l.size);
        if (!all_bytes(l.addr, job->tag, l.size))
            job->failures++;
        if (arena_release(job->conn, &l) != 0)
            job->failures++;
    }
    return NULL;
}

START_TEST(test_threads_share_a_connection)
{
    peer_t p;
    peer_start(&p, script_full);
    arena_conn_t *conn = NULL;
    ck_assert_int_eq(arena_connect(p.path, &conn), 0);
    /* Exchanges are serialised, so replies never cross between threads. */
    enum { THREADS = 4 };
    pthread_t th[THREADS];
    thread_job_t jobs[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (thread_job_t){.conn = conn, .tag = 0x10 + i};
        ck_assert_int_eq(pthread_create(&th[i], NULL, lease_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        ck_assert_int_eq(jobs[i].failures, 0);
    }
    ck_assert_uint_eq(arena__conn_tracked(conn), 0);
    arena_lease_t bad;
    ck_assert_int_eq(arena_lease(conn, BAD_SIZE, 0, &bad), ARENA_EPROTOCOL);
    arena__admin_leases_t *leases = NULL;
    ck_assert_int_eq(arena__admin_leases(conn, 0, &leases), ARENA_EDISCONNECTED);
    arena_disconnect(conn);
    ck_assert_int_eq(peer_finish(&p), 0);
}
END_TEST

START_TEST(test_bad_frames)
{
    peer_t p;
    peer_start(&p, script_bad_frames);
    arena_conn_t *conn = NULL;
    ck_assert_int_eq(arena_connect(p.path, &conn), 0);
    arena_lease_t l;
    /* No reconnecting to this peer: it serves one connection. */
    ck_assert_int_eq(setenv("ARENA_RECONNECT_MS", "0", 1), 0);
    ck_assert_int_eq(arena_lease(conn, 1, 0, &l), 0); /* the newer body was skipped */
    /* The release reply does not decode: a protocol error at once (never a
     * wait for a reply that may be lost in it), the connection is dead from
     * then on, and the lease is unmapped anyway. */
    ck_assert_int_eq(arena_release(conn, &l), ARENA_EPROTOCOL);
    ck_assert_uint_eq(arena__conn_tracked(conn), 0);
    arena__admin_status_t st;
    ck_assert_int_eq(arena__admin_status(conn, &st), ARENA_EDISCONNECTED);
    arena_disconnect(conn);
    ck_assert_int_eq(peer_finish(&p), 0);
}
END_TEST

/* The lease table: growth, lookups, and deletion that keeps every probe run
 * reachable, against a plain array as the reference. Fake addresses: every
 * entry is removed again before disconnect (which would unmap them). */
START_TEST(test_lease_table)
{
    peer_t p;
    peer_start(&p, script_full);
    arena_conn_t *conn = NULL;
    ck_assert_int_eq(arena_connect(p.path, &conn), 0);
    enum { N = 5000 };
    static uint64_t ids[N];
    static bool present[N];
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < N; i++) {
        /* Distinct ids, clustered so that probe runs collide. */
        ids[i] = (i % 3 == 0) ? (uint64_t)i : ((uint64_t)i << 20) + 7;
        char *addr = (char *)0x100000 + (size_t)i * 4096;
        ck_assert_int_eq(arena__conn_track(conn, ids[i], addr, 4096), 0);
        present[i] = true;
    }
    ck_assert_uint_eq(arena__conn_tracked(conn), N);
    ck_assert_int_eq(arena__conn_track(conn, ids[17], (void *)0x5000, 4096), -EEXIST);
    size_t live = N;
    for (int round = 0; round < 3 * N; round++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int i = (int)(x % N);
        char *addr = (char *)0x100000 + (size_t)i * 4096;
        if (present[i]) {
            ck_assert_int_eq(arena__conn_untrack(conn, ids[i], addr + 4096, 4096), -EINVAL);
            ck_assert_int_eq(arena__conn_untrack(conn, ids[i], addr, 8192), -EINVAL);
            ck_assert_int_eq(arena__conn_untrack(conn, ids[i], addr, 4096), 0);
            present[i] = false;
            live--;
        } else {
            ck_assert_int_eq(arena__conn_untrack(conn, ids[i], addr, 4096), -ENOENT);
            if (round % 2) {
                ck_assert_int_eq(arena__conn_track(conn, ids[i], addr, 4096), 0);
                present[i] = true;
                live++;
            }
        }
        ck_assert_uint_eq(arena__conn_tracked(conn), live);
    }
    /* Every survivor is still found; then the table empties. */
    for (int i = 0; i < N; i++) {
        char *addr = (char *)0x100000 + (size_t)i * 4096;
        ck_assert_int_eq(arena__conn_untrack(conn, ids[i], addr, 4096), present[i] ? 0 : -ENOENT);
    }
    ck_assert_uint_eq(arena__conn_tracked(conn), 0);
    arena_disconnect(conn);
    ck_assert_int_eq(peer_finish(&p), 9); /* left without asking for leases */
}
END_TEST

/* arena__conn_move(): the mapping moves with its pages and the table
 * follows; a wrong id, address or size moves nothing. */
START_TEST(test_lease_move)
{
    peer_t p;
    peer_start(&p, script_full);
    arena_conn_t *conn = NULL;
    ck_assert_int_eq(arena_connect(p.path, &conn), 0);
    const size_t size = 3 * 4096;
    unsigned char *src =
        mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(src, MAP_FAILED);
    memset(src, 0x5A, size);
    unsigned char *dst = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(dst, MAP_FAILED);
    ck_assert_int_eq(arena__conn_track(conn, 42, src, size), 0);

    ck_assert_int_eq(arena__conn_move(conn, 43, src, size, dst), -ENOENT);
    ck_assert_int_eq(arena__conn_move(conn, 42, src + 4096, size, dst), -EINVAL);
    ck_assert_int_eq(arena__conn_move(conn, 42, src, size - 4096, dst), -EINVAL);
    ck_assert_int_eq(arena__conn_move(conn, 42, src, size, NULL), -EINVAL);
    ck_assert_int_eq(arena__conn_move(NULL, 42, src, size, dst), -EINVAL);
    ck_assert_uint_eq(src[0], 0x5A); /* nothing moved */

    ck_assert_int_eq(arena__conn_move(conn, 42, src, size, dst), 0);
    ck_assert_uint_eq(dst[0], 0x5A);
    ck_assert_uint_eq(dst[size - 1], 0x5A);
    ck_assert_int_eq(arena__conn_untrack(conn, 42, src, size), -EINVAL);
    ck_assert_int_eq(arena__conn_untrack(conn, 42, dst, size), 0);
    ck_assert_int_eq(munmap(dst, size), 0);
    arena_disconnect(conn);
    ck_assert_int_eq(peer_finish(&p), 9); /* left without asking for leases */
}
END_TEST

/* A fork child must not speak on the parent's socket: every call there is
 * ARENA_EDISCONNECTED, its mappings stay, and the parent's stream is intact. */
START_TEST(test_fork_child_is_detached)
{
    peer_t p;
    peer_start(&p, script_full);
    arena_conn_t *conn = NULL;
    ck_assert_int_eq(arena_connect(p.path, &conn), 0);
    arena_lease_t a, b;
    ck_assert_int_eq(arena_lease(conn, 1, 0, &a), 0);
    memset(a.addr, 0xC1, PATTERN_OFF);
    (void)fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        arena_lease_t x;
        arena__admin_status_t st;
        if (arena_lease(conn, 1, 0, &x) != ARENA_EDISCONNECTED)
            _exit(1);
        if (arena__admin_status(conn, &st) != ARENA_EDISCONNECTED)
            _exit(2);
        if (arena_release(conn, &a) != ARENA_EDISCONNECTED)
            _exit(3);
        if (!all_bytes(a.addr, 0xC1, PATTERN_OFF))
            _exit(4); /* still mapped in the child */
        if (arena__conn_socket_fd(conn) != -1 || arena__conn_pool_fd(conn) != -1)
            _exit(5); /* the child's copies of the fds are closed */
        _exit(0);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    /* The parent goes on as if nothing happened. */
    ck_assert_int_ge(arena__conn_socket_fd(conn), 0);
    ck_assert_int_eq(arena_lease(conn, 1, 0, &b), 0);
    arena__admin_text_t *t;
    ck_assert_int_eq(arena__admin_metrics(conn, &t), 0);
    ck_assert_str_eq(t->text, "seen 1\n");
    arena__admin_text_free(t);
    ck_assert_int_eq(arena_release(conn, &a), 0);
    ck_assert_int_eq(arena_release(conn, &b), 0);
    arena_disconnect(conn);
    ck_assert_int_eq(peer_finish(&p), 9);
}
END_TEST

static Suite *conn_suite(void)
{
    Suite *s = suite_create("client_conn");
    TCase *tc = tcase_create("conn");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_connect_no_daemon);
    tcase_add_test(tc, test_connect_bad_arguments);
    tcase_add_test(tc, test_default_connection_retries);
    tcase_add_test(tc, test_hello_refused_version);
    tcase_add_test(tc, test_hello_reply_other_version);
    tcase_add_test(tc, test_hello_reply_without_pool);
    tcase_add_test(tc, test_hello_hangup);
    tcase_add_test(tc, test_full_exchange);
    tcase_add_test(tc, test_threads_share_a_connection);
    tcase_add_test(tc, test_bad_frames);
    tcase_add_test(tc, test_lease_table);
    tcase_add_test(tc, test_lease_move);
    tcase_add_test(tc, test_fork_child_is_detached);
    suite_add_tcase(s, tc);
    return s;
}

ARENA_TEST_MAIN(conn_suite)
