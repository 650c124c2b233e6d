/* SPDX-License-Identifier: MIT
 *
 * test_lease.c -- raw leases end to end: a real arenad (tests/lib
 * daemon fixture) and clients in separate processes, through libarena-client.
 *
 * Covers: leases of several processes are distinct and writable, and one
 * process's data survives others writing and churning their own leases; a
 * client killed with SIGKILL gets every lease taken back and its pages
 * punched; the fixed-heap stories (free 100 units then take 101; free 100,
 * take 50 + 50 and then the rest in one piece) with --heap-size equal to
 * --budget; error paths (0 bytes, more than the budget, forged and foreign
 * releases, a daemon that goes away).
 *
 * Each test starts its own daemon and stops it at the end; an atexit hook
 * stops it when an assertion ends the test early, and the fixture's
 * PR_SET_PDEATHSIG covers a crash. Client children only ever _exit(), so
 * they never run that hook, and they die with the test (PDEATHSIG too).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check_main.h"
#include "cmdchild.h"
#include "admin.h"
#include "arena.h"
#include "conn.h"
#include "fixture.h"
#include "wire.h"

#define MiB  (1024u * 1024u)
#define UNIT (256u * 1024u)

static arena_test_daemon_t daemon_;
static void daemon_start(const char *const *args)
{
    arena_test_daemon_up(&daemon_, NULL, args, 0);
}

static void daemon_stop(void)
{
    ck_assert_int_eq(arena_test_daemon_stop(&daemon_), 0); /* a clean exit on SIGTERM */
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    (void)nanosleep(&ts, NULL);
}

/* ---- client children -------------------------------------------------------------- */

/* What a child reports about its leases. */
typedef struct report {
    uint64_t client_id;
    uint32_t count;
    uint64_t ids[8];
    uint64_t sizes[8];
    int status; /* 0: fine, else the step that failed */
} report_t;

typedef arena_test_cmd_child_t child_t; /* commands down, report_t up (tests/lib) */
typedef arena_test_cmd_child_fn child_fn;

static void child_spawn(child_t *c, child_fn fn, void *arg)
{
    ck_assert_int_eq(arena_test_cmd_child_spawn(c, fn, arg), 0);
}

static void child_send(const child_t *c, char cmd)
{
    ck_assert_int_eq(arena_test_cmd_child_send(c, cmd), 0);
}

static void child_read(const child_t *c, report_t *r)
{
    ck_assert_msg(arena_test_cmd_child_read(c, r, sizeof(*r)) == 0, "child %ld went away",
                  (long)c->pid);
}

/* Waits for the child; returns its exit code (-signal if killed). */
static int child_wait(child_t *c)
{
    pid_t pid = c->pid;
    int r = arena_test_cmd_child_wait(c);
    ck_assert_msg(r != ARENA_TEST_CMD_CHILD_LOST, "child %ld could not be reaped", (long)pid);
    return r;
}

static char child_recv_cmd(int cmd)
{
    return arena_test_cmd_child_next(cmd);
}

static void child_report(int resp, const report_t *r)
{
    ssize_t n = write(resp, r, sizeof(*r));
    if (n != (ssize_t)sizeof(*r))
        _exit(101);
}

static bool filled_with(const void *p, uint8_t v, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i += 512) {
        if (b[i] != v || b[i + 511] != v)
            return false;
    }
    return true;
}

/* ---- test: distinct, writable, intact ------------------------------------------------- */

typedef struct holder_arg {
    const char *socket;
    int index;
} holder_arg_t;

static const size_t holder_sizes[] = {64 * 1024, 1 * MiB, 3 * MiB, 8 * MiB};
#define HOLDER_LEASES 4

/* Holds four leases filled with its own pattern. Commands: 'v' verify,
 * 'c' churn (release the first lease, lease and fill a new one, twice),
 * 'r' release all and exit. Every command is answered with a report. */
static void holder_main(int cmd, int resp, void *p)
{
    const holder_arg_t *arg = p;
    report_t rep;
    memset(&rep, 0, sizeof(rep));
    arena_conn_t *conn;
    if (arena_connect(arg->socket, &conn) != 0)
        _exit(10);
    arena__conn_info_t info;
    (void)arena__conn_info(conn, &info);
    rep.client_id = info.client_id;
    arena_lease_t leases[HOLDER_LEASES];
    for (int i = 0; i < HOLDER_LEASES; i++) {
        if (arena_lease(conn, holder_sizes[i], 0, &leases[i]) != 0)
            _exit(11);
        if (leases[i].size < holder_sizes[i])
            _exit(12);
        memset(leases[i].addr, 16 * arg->index + i + 1, leases[i].size);
        rep.ids[i] = leases[i].id;
        rep.sizes[i] = leases[i].size;
    }
    rep.count = HOLDER_LEASES;
    child_report(resp, &rep);
    for (;;) {
        char c = child_recv_cmd(cmd);
        if (c == 'v') {
            for (int i = 0; i < HOLDER_LEASES; i++) {
                if (!filled_with(leases[i].addr, (uint8_t)(16 * arg->index + i + 1),
                                 leases[i].size))
                    rep.status = 20 + i;
            }
        } else if (c == 'c') {
            for (int k = 0; k < 2 && rep.status == 0; k++) {
                if (arena_release(conn, &leases[0]) != 0 ||
                    arena_lease(conn, holder_sizes[0], 0, &leases[0]) != 0)
                    rep.status = 30;
                else
                    memset(leases[0].addr, 16 * arg->index + 1, leases[0].size);
            }
            rep.ids[0] = leases[0].id;
        } else if (c == 'r') {
            for (int i = 0; i < HOLDER_LEASES; i++) {
                if (arena_release(conn, &leases[i]) != 0)
                    rep.status = 40 + i;
            }
            child_report(resp, &rep);
            arena_disconnect(conn);
            _exit(rep.status ? 1 : 0);
        } else {
            _exit(13);
        }
        child_report(resp, &rep);
    }
}

static int cmp_offset(const void *a, const void *b)
{
    const arena__admin_lease_t *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

START_TEST(test_leases_distinct_writable_intact)
{
    const char *const args[] = {"--budget", "64M", NULL};
    daemon_start(args);
    enum { N = 3 };
    child_t kids[N];
    holder_arg_t hargs[N];
    report_t reps[N];
    for (int i = 0; i < N; i++) {
        hargs[i] = (holder_arg_t){.socket = daemon_.socket, .index = i};
        child_spawn(&kids[i], holder_main, &hargs[i]);
    }
    for (int i = 0; i < N; i++)
        child_read(&kids[i], &reps[i]);

    /* The daemon's view: 12 leases, owned by the right clients, no overlap. */
    arena_conn_t *conn;
    ck_assert_int_eq(arena_connect(daemon_.socket, &conn), 0);
    arena__admin_leases_t *list;
    ck_assert_int_eq(arena__admin_leases(conn, 0, &list), 0);
    ck_assert_uint_eq(list->count, N * HOLDER_LEASES);
    qsort(list->items, list->count, sizeof(list->items[0]), cmp_offset);
    for (size_t i = 0; i + 1 < list->count; i++)
        ck_assert_uint_le(list->items[i].offset + list->items[i].size, list->items[i + 1].offset);
    for (int k = 0; k < N; k++) {
        for (int j = 0; j < HOLDER_LEASES; j++) {
            bool found = false;
            for (size_t i = 0; i < list->count; i++) {
                if (list->items[i].lease_id == reps[k].ids[j]) {
                    ck_assert_uint_eq(list->items[i].client_id, reps[k].client_id);
                    ck_assert_uint_eq(list->items[i].size, reps[k].sizes[j]);
                    found = true;
                }
            }
            ck_assert_msg(found, "lease %llu of child %d not listed",
                          (unsigned long long)reps[k].ids[j], k);
        }
    }
    arena__admin_leases_free(list);

    /* Others churn and rewrite their own leases; everyone's data is intact. */
    child_send(&kids[1], 'c');
    child_read(&kids[1], &reps[1]);
    ck_assert_int_eq(reps[1].status, 0);
    child_send(&kids[2], 'c');
    child_read(&kids[2], &reps[2]);
    ck_assert_int_eq(reps[2].status, 0);
    for (int i = 0; i < N; i++) {
        child_send(&kids[i], 'v');
        child_read(&kids[i], &reps[i]);
        ck_assert_msg(reps[i].status == 0, "child %d: step %d", i, reps[i].status);
    }

    arena__admin_status_t st;
    ck_assert_int_eq(arena__admin_status(conn, &st), 0);
    uint64_t expect = 0;
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < HOLDER_LEASES; j++)
            expect += reps[i].sizes[j];
    }
    ck_assert_uint_eq(st.leased_bytes, expect);
    ck_assert_uint_eq(st.leases, N * HOLDER_LEASES);

    for (int i = 0; i < N; i++) {
        child_send(&kids[i], 'r');
        child_read(&kids[i], &reps[i]);
        ck_assert_int_eq(reps[i].status, 0);
        ck_assert_int_eq(child_wait(&kids[i]), 0);
    }
    ck_assert_int_eq(arena__admin_status(conn, &st), 0);
    ck_assert_uint_eq(st.leased_bytes, 0);
    ck_assert_uint_eq(st.leases, 0);
    arena_disconnect(conn);
    daemon_stop();
}
END_TEST

/* ---- test: SIGKILL ----------------------------------------------------------------- */

/* Leases three 4 MiB leases, dirties every page, reports, then waits to die. */
static void victim_main(int cmd, int resp, void *p)
{
    report_t rep;
    memset(&rep, 0, sizeof(rep));
    arena_conn_t *conn;
    if (arena_connect(p, &conn) != 0)
        _exit(10);
    arena__conn_info_t info;
    (void)arena__conn_info(conn, &info);
    rep.client_id = info.client_id;
    for (int i = 0; i < 3; i++) {
        arena_lease_t l;
        if (arena_lease(conn, 4 * MiB, 0, &l) != 0)
            _exit(11);
        memset(l.addr, 0xEE, l.size);
        rep.ids[i] = l.id;
        rep.sizes[i] = l.size;
    }
    rep.count = 3;
    child_report(resp, &rep);
    (void)child_recv_cmd(cmd); /* never answered: we get SIGKILL */
    _exit(14);
}

START_TEST(test_killed_client_leases_return)
{
    const char *const args[] = {"--budget", "64M", NULL};
    daemon_start(args);
    arena_conn_t *conn;
    ck_assert_int_eq(arena_connect(daemon_.socket, &conn), 0);
    arena__admin_status_t before;
    ck_assert_int_eq(arena__admin_status(conn, &before), 0);

    child_t kid;
    report_t rep;
    child_spawn(&kid, victim_main, daemon_.socket);
    child_read(&kid, &rep);
    arena__admin_status_t st;
    ck_assert_int_eq(arena__admin_status(conn, &st), 0);
    ck_assert_uint_eq(st.leased_bytes, 12 * MiB);
    ck_assert_uint_eq(st.leases, 3);
    ck_assert_uint_eq(st.clients, 2);

    ck_assert_int_eq(kill(kid.pid, SIGKILL), 0);
    ck_assert_int_eq(child_wait(&kid), -SIGKILL);

    /* The daemon notices the closed socket on its own; give it up to 10 s. */
    for (int i = 0; i < 1000; i++) {
        ck_assert_int_eq(arena__admin_status(conn, &st), 0);
        if (st.leased_bytes == 0 && st.dirty_bytes == 0 && st.clients == 1)
            break;
        nap_ms(10);
    }
    ck_assert_uint_eq(st.leased_bytes, 0);
    ck_assert_uint_eq(st.leases, 0);
    ck_assert_uint_eq(st.clients, 1);
    /* Its pages were punched, not kept dirty for a client that is gone. */
    ck_assert_uint_eq(st.dirty_bytes, 0);
    ck_assert_uint_ge(st.bytes_punched_total - before.bytes_punched_total, 12 * MiB);
    ck_assert_uint_eq(st.free_bytes, st.heap_size);
    ck_assert_uint_eq(st.leases_released_total - before.leases_released_total, 3);
    arena__admin_leases_t *list;
    ck_assert_int_eq(arena__admin_leases(conn, 0, &list), 0);
    ck_assert_uint_eq(list->count, 0);
    arena__admin_leases_free(list);
    /* The client id is gone too. */
    ck_assert_int_eq(arena__admin_leases(conn, rep.client_id, &list), -ENOENT);
    arena_disconnect(conn);
    daemon_stop();
}
END_TEST

/* ---- test: the fixed-heap stories --------------------------------------------------- */

static void lease_units(arena_conn_t *conn, unsigned units, arena_lease_t *ret)
{
    int r = arena_lease(conn, (size_t)units * UNIT, 0, ret);
    ck_assert_msg(r == 0, "lease of %u units: %s", units, arena_strerror(r));
    ck_assert_uint_eq(ret->size, (size_t)units * UNIT);
    /* Touch the first and last page: the mapping is real. */
    ((volatile char *)ret->addr)[0] = 1;
    ((volatile char *)ret->addr)[ret->size - 1] = 1;
}

START_TEST(test_fixed_heap_stories)
{
    const char *const args[] = {"--budget", "64M", "--heap-size", "64M", NULL};
    daemon_start(args);
    arena_conn_t *conn;
    ck_assert_int_eq(arena_connect(daemon_.socket, &conn), 0);
    arena__conn_info_t info;
    ck_assert_int_eq(arena__conn_info(conn, &info), 0);
    ck_assert_uint_eq(info.heap_size, 64 * MiB); /* 256 units */
    ck_assert_uint_eq(info.budget, 64 * MiB);

    /* Free 100 units, then take 101: the hole and the space next to it merge. */
    arena_lease_t a, b, c, d, rest;
    lease_units(conn, 100, &a);
    ck_assert_int_eq(arena_release(conn, &a), 0);
    lease_units(conn, 101, &b);
    ck_assert_int_eq(arena_release(conn, &b), 0);
    /* Harder for a bump pointer: 200 of 256 units, free them, take 201. */
    lease_units(conn, 200, &a);
    ck_assert_int_eq(arena_release(conn, &a), 0);
    lease_units(conn, 201, &b);
    ck_assert_int_eq(arena_release(conn, &b), 0);

    /* Free 100, take 50 and 50 (they must go into the hole), then the rest,
     * 156 units, in one piece: nothing was split badly. */
    lease_units(conn, 100, &a);
    ck_assert_int_eq(arena_release(conn, &a), 0);
    lease_units(conn, 50, &c);
    lease_units(conn, 50, &d);
    lease_units(conn, 156, &rest);
    arena__admin_status_t st;
    ck_assert_int_eq(arena__admin_status(conn, &st), 0);
    ck_assert_uint_eq(st.leased_bytes, 64 * MiB);
    ck_assert_uint_eq(st.free_bytes, 0);
    /* Full: one more unit is "no memory now", not "too large". */
    arena_lease_t x = {0};
    ck_assert_int_eq(arena_lease(conn, UNIT, 0, &x), -ENOMEM);
    ck_assert_ptr_null(x.addr);

    /* Full heap, one 100-unit hole in it: 101 cannot fit, 100 can. */
    ck_assert_int_eq(arena_release(conn, &c), 0);
    ck_assert_int_eq(arena_release(conn, &d), 0);
    ck_assert_int_eq(arena_lease(conn, 101 * (size_t)UNIT, 0, &x), -ENOMEM);
    lease_units(conn, 100, &a);
    ck_assert_int_eq(arena_release(conn, &a), 0);
    ck_assert_int_eq(arena_release(conn, &rest), 0);

    /* Everything back in one piece. */
    ck_assert_int_eq(arena__admin_status(conn, &st), 0);
    ck_assert_uint_eq(st.leased_bytes, 0);
    ck_assert_uint_eq(st.free_bytes, 64 * MiB);
    ck_assert_uint_eq(st.largest_free, 64 * MiB);
    lease_units(conn, 256, &a);
    ck_assert_int_eq(arena_release(conn, &a), 0);
    arena_disconnect(conn);
    daemon_stop();
}
END_TEST

/* ---- test: error paths -------------------------------------------------------------- */

START_TEST(test_lease_errors)
{
    const char *const args[] = {"--budget", "64M", NULL};
    daemon_start(args);
    arena_conn_t *conn, *other;
    ck_assert_int_eq(arena_connect(daemon_.socket, &conn), 0);
    ck_assert_int_eq(arena_connect(daemon_.socket, &other), 0);
    arena_lease_t l = {0};

    ck_assert_int_eq(arena_lease(conn, 0, 0, &l), -EINVAL);
    ck_assert_int_eq(arena_lease(conn, 4096, 0, NULL), -EINVAL);
    ck_assert_int_eq(arena_lease(conn, 65 * (size_t)MiB, 0, &l), -E2BIG);
    ck_assert_int_eq(arena_lease(conn, SIZE_MAX / 2, 0, &l), -E2BIG);
    ck_assert_ptr_null(l.addr);
    ck_assert_int_eq(arena_release(conn, NULL), -EINVAL);

    /* The daemon's own size check, without the client library's. */
    arena__msg_t req = {.kind = ARENA__MSG_LEASE};
    req.u.lease.size = 0;
    ck_assert_int_eq(arena__conn_call(conn, &req, ARENA__MSG_LEASE_REPLY, NULL, NULL), -EINVAL);
    char msg[256];
    ck_assert_str_ne(arena__conn_last_error(conn, msg, sizeof(msg)), "");

    ck_assert_int_eq(arena_lease(conn, 1 * MiB, 0, &l), 0);
    ck_assert_uint_eq((uintptr_t)l.addr % MiB, 0); /* aligned to its size */
    memset(l.addr, 0x42, l.size);

    /* Forged leases: unknown id, or a known id with the wrong mapping. */
    arena_lease_t forged = l;
    forged.id = l.id + 1000;
    ck_assert_int_eq(arena_release(conn, &forged), -ENOENT);
    forged = l;
    forged.addr = (char *)l.addr + 4096;
    ck_assert_int_eq(arena_release(conn, &forged), -EINVAL);
    /* The lease is not this connection's. */
    ck_assert_int_eq(arena_release(other, &l), -ENOENT);
    /* The daemon's checks: another client's lease, and an unknown one. */
    arena__msg_t rel = {.kind = ARENA__MSG_RELEASE};
    rel.u.release.lease_id = l.id;
    ck_assert_int_eq(arena__conn_call(other, &rel, ARENA__MSG_RELEASE_REPLY, NULL, NULL),
                     ARENA_ENOTOWNER);
    rel.u.release.lease_id = l.id + 1000000;
    ck_assert_int_eq(arena__conn_call(other, &rel, ARENA__MSG_RELEASE_REPLY, NULL, NULL), -ENOENT);
    /* Still ours and intact after all that. */
    ck_assert(filled_with(l.addr, 0x42, l.size));
    ck_assert_int_eq(arena_release(conn, &l), 0);
    ck_assert_int_eq(arena_release(conn, &l), -ENOENT);

    arena_disconnect(conn);
    arena_disconnect(other);
    daemon_stop();
}
END_TEST

/* cap.UID bounds each client of a uid, max_bytes_per_uid all of them
 * together; a refusal says which limit it was, and frees make room again. */
START_TEST(test_byte_limits_say_which)
{
    char text[96];
    (void)snprintf(text, sizeof(text), "max_bytes_per_uid = 8M\ncap.%u = 6M\n",
                   (unsigned)geteuid());
    const char *const args[] = {"--budget", "64M", NULL};
    arena_test_daemon_up(&daemon_, text, args, 0);
    arena_conn_t *a, *b;
    ck_assert_int_eq(arena_connect(daemon_.socket, &a), 0);
    ck_assert_int_eq(arena_connect(daemon_.socket, &b), 0);
    arena_lease_t la, lb, x;
    char msg[256];
    ck_assert_int_eq(arena_lease(a, 7 * MiB, 0, &x), -E2BIG);
    ck_assert_msg(strstr(arena__conn_last_error(a, msg, sizeof(msg)), "more than cap.") != NULL,
                  "%s", msg);
    ck_assert_int_eq(arena_lease(a, 5 * MiB, 0, &la), 0);
    ck_assert_int_eq(arena_lease(a, 2 * MiB, 0, &x), ARENA_ELIMIT);
    ck_assert_msg(strstr(arena__conn_last_error(a, msg, sizeof(msg)), "would pass cap.") != NULL,
                  "%s", msg);
    /* b is under its cap, but the uid would pass 8 MiB. */
    ck_assert_int_eq(arena_lease(b, 4 * MiB, 0, &x), ARENA_ELIMIT);
    ck_assert_msg(strstr(arena__conn_last_error(b, msg, sizeof(msg)),
                         "would pass max_bytes_per_uid (8.0 MiB)") != NULL,
                  "%s", msg);
    ck_assert_int_eq(arena_lease(b, 3 * MiB, 0, &lb), 0);
    ck_assert_int_eq(arena_release(a, &la), 0);
    ck_assert_int_eq(arena_lease(b, 2 * MiB, 0, &x), 0);
    ck_assert_int_eq(arena_release(b, &x), 0);
    ck_assert_int_eq(arena_release(b, &lb), 0);
    arena_disconnect(a);
    arena_disconnect(b);
    daemon_stop();
}
END_TEST

/* ---- test: waiting for memory ---------------------------------------------------- */

typedef struct waiter {
    arena_conn_t *conn;
    size_t size;
    int wait_ms;
    int result;
    arena_lease_t lease;
} waiter_t;

static void *waiter_main(void *p)
{
    waiter_t *w = p;
    w->result = arena_lease(w->conn, w->size, w->wait_ms, &w->lease);
    return NULL;
}

START_TEST(test_lease_waits_for_memory)
{
    const char *const args[] = {"--budget", "64M", "--heap-size", "64M", NULL};
    daemon_start(args);
    arena_conn_t *a, *b;
    ck_assert_int_eq(arena_connect(daemon_.socket, &a), 0);
    ck_assert_int_eq(arena_connect(daemon_.socket, &b), 0);
    arena_lease_t rest, hole, x;
    lease_units(a, 156, &rest);
    lease_units(a, 100, &hole);
    memset(hole.addr, 0xA5, hole.size); /* a's data, which b must never see */

    /* Full: at once "no memory", with the daemon's account of who holds it;
     * with a short deadline, "timed out". */
    ck_assert_int_eq(arena_lease(b, UNIT, 0, &x), -ENOMEM);
    char msg[256];
    ck_assert_str_ne(arena__conn_last_error(b, msg, sizeof(msg)), "");
    ck_assert_int_eq(arena_lease(b, UNIT, 200, &x), -ETIMEDOUT);

    /* A queued request is granted when memory comes back. */
    waiter_t w = {.conn = b, .size = 100 * (size_t)UNIT, .wait_ms = 20000};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, waiter_main, &w), 0);
    nap_ms(300); /* let it queue; the result does not depend on it */
    ck_assert_int_eq(arena_release(a, &hole), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_msg(w.result == 0, "queued lease: %s", arena_strerror(w.result));
    ck_assert_uint_eq(w.lease.size, 100 * (size_t)UNIT);
    /* It changed owner, so it was punched first: zeroes, not a's bytes. */
    ck_assert(w.lease.zeroed);
    ck_assert(filled_with(w.lease.addr, 0, w.lease.size));

    ck_assert_int_eq(arena_release(b, &w.lease), 0);
    ck_assert_int_eq(arena_release(a, &rest), 0);
    arena_disconnect(a);
    arena_disconnect(b);
    daemon_stop();
}
END_TEST

/* ---- test: fork ------------------------------------------------------------------ */

/* A fork child gets a default connection of its own, and never uses the
 * parent's. */
START_TEST(test_fork_child_default_connection)
{
    const char *const args[] = {"--budget", "64M", NULL};
    daemon_start(args);
    ck_assert_int_eq(setenv("ARENAD_SOCKET", daemon_.socket, 1), 0);
    arena_lease_t l;
    ck_assert_int_eq(arena_lease(NULL, 1 * MiB, 0, &l), 0);
    arena_conn_t *mine;
    ck_assert_int_eq(arena__conn_default(&mine), 0);
    arena__conn_info_t info;
    ck_assert_int_eq(arena__conn_info(mine, &info), 0);
    (void)fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        arena_lease_t x;
        arena_conn_t *c;
        arena__conn_info_t ci;
        if (arena_lease(NULL, 64 * 1024, 0, &x) != 0)
            _exit(1);
        if (arena__conn_default(&c) != 0 || arena__conn_info(c, &ci) != 0)
            _exit(2);
        if (ci.client_id == info.client_id)
            _exit(3);
        if (arena_release(NULL, &x) != 0)
            _exit(4);
        if (arena_release(mine, &l) != ARENA_EDISCONNECTED)
            _exit(5);
        arena_disconnect(c);
        _exit(0);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    arena__admin_status_t st;
    ck_assert_int_eq(arena__admin_status(NULL, &st), 0);
    ck_assert_uint_eq(st.leases, 1);
    ck_assert_uint_eq(st.leased_bytes, 1 * MiB);
    ck_assert_int_eq(arena_release(NULL, &l), 0);
    arena_disconnect(mine);
    daemon_stop();
}
END_TEST

/* A process that dies while its fork child lives on still gets its leases
 * taken back: the child dropped its copy of the socket on first use. */
static void forker_main(int cmd, int resp, void *p)
{
    report_t rep;
    memset(&rep, 0, sizeof(rep));
    arena_conn_t *conn;
    arena_lease_t l;
    if (arena_connect(p, &conn) != 0 || arena_lease(conn, 2 * MiB, 0, &l) != 0)
        _exit(10);
    pid_t g = fork();
    if (g < 0)
        _exit(11);
    if (g == 0) {
        /* The grandchild: touch the connection once, then outlive the parent. */
        arena_lease_t x;
        rep.status = arena_lease(conn, 4096, 0, &x) == ARENA_EDISCONNECTED ? 0 : 12;
        rep.count = 1;
        child_report(resp, &rep);
        (void)child_recv_cmd(cmd);
        _exit(0);
    }
    /* Hold the lease until SIGKILL; never disconnect. The grandchild exits
     * when the test closes the command pipe. */
    (void)child_recv_cmd(cmd);
    _exit(0);
}

START_TEST(test_parent_death_seen_despite_fork_child)
{
    const char *const args[] = {"--budget", "64M", NULL};
    daemon_start(args);
    arena_conn_t *conn;
    ck_assert_int_eq(arena_connect(daemon_.socket, &conn), 0);
    child_t kid;
    report_t rep;
    child_spawn(&kid, forker_main, daemon_.socket);
    child_read(&kid, &rep); /* from the grandchild */
    ck_assert_int_eq(rep.status, 0);
    arena__admin_status_t st;
    ck_assert_int_eq(arena__admin_status(conn, &st), 0);
    ck_assert_uint_eq(st.leases, 1);
    /* The middle process dies; the grandchild still waits on the pipe. */
    ck_assert_int_eq(kill(kid.pid, SIGKILL), 0);
    for (int i = 0; i < 1000; i++) {
        ck_assert_int_eq(arena__admin_status(conn, &st), 0);
        if (st.leases == 0)
            break;
        nap_ms(10);
    }
    ck_assert_uint_eq(st.leases, 0);
    ck_assert_uint_eq(st.leased_bytes, 0);
    /* Closing our end of the command pipe lets the grandchild exit. */
    ck_assert_int_eq(child_wait(&kid), -SIGKILL);
    arena_disconnect(conn);
    daemon_stop();
}
END_TEST

/* ---- test: the daemon goes away ---------------------------------------------------- */

START_TEST(test_daemon_gone)
{
    const char *const args[] = {"--budget", "64M", NULL};
    daemon_start(args);
    arena_conn_t *conn;
    ck_assert_int_eq(arena_connect(daemon_.socket, &conn), 0);
    arena_lease_t l, y;
    ck_assert_int_eq(arena_lease(conn, 2 * MiB, 0, &l), 0);
    memset(l.addr, 0x17, l.size);
    char sock[sizeof(daemon_.socket)];
    memcpy(sock, daemon_.socket, sizeof(sock));
    daemon_stop();
    /* Calls fail with EDISCONNECTED, again and again; releasing still unmaps. */
    ck_assert_int_eq(arena_lease(conn, 4096, 0, &y), ARENA_EDISCONNECTED);
    ck_assert_int_eq(arena_lease(conn, 4096, 0, &y), ARENA_EDISCONNECTED);
    arena__admin_status_t st;
    ck_assert_int_eq(arena__admin_status(conn, &st), ARENA_EDISCONNECTED);
    ck_assert_int_eq(arena_release(conn, &l), ARENA_EDISCONNECTED);
    ck_assert_uint_eq(arena__conn_tracked(conn), 0);
    arena_disconnect(conn);
    /* And with no daemon at all, connecting says so. */
    arena_conn_t *none;
    ck_assert_int_eq(arena_connect(sock, &none), ARENA_ENODAEMON);
}
END_TEST

/* DESIGN.md section 7: "A daemon that crashes or restarts loses no client
 * data: clients keep their mappings." So a daemon stopped with SIGTERM must
 * not punch the extents that clients still map. */
START_TEST(test_daemon_stop_keeps_client_data)
{
    const char *const args[] = {"--budget", "64M", NULL};
    daemon_start(args);
    arena_conn_t *conn;
    ck_assert_int_eq(arena_connect(daemon_.socket, &conn), 0);
    arena_lease_t l;
    ck_assert_int_eq(arena_lease(conn, 2 * MiB, 0, &l), 0);
    memset(l.addr, 0x17, l.size);
    daemon_stop();
    ck_assert_msg(filled_with(l.addr, 0x17, l.size),
                  "the daemon punched a lease a live client still maps when it stopped");
    arena_disconnect(conn);
}
END_TEST

static Suite *lease_suite(void)
{
    Suite *s = suite_create("lease");
    TCase *tc = tcase_create("lease");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_leases_distinct_writable_intact);
    tcase_add_test(tc, test_killed_client_leases_return);
    tcase_add_test(tc, test_fixed_heap_stories);
    tcase_add_test(tc, test_lease_errors);
    tcase_add_test(tc, test_byte_limits_say_which);
    tcase_add_test(tc, test_daemon_gone);
    tcase_add_test(tc, test_lease_waits_for_memory);
    tcase_add_test(tc, test_fork_child_default_connection);
    tcase_add_test(tc, test_parent_death_seen_despite_fork_child);
    suite_add_tcase(s, tc);
    /* Kept apart so a failure here names the daemon invariant at once. */
    TCase *restart = tcase_create("restart");
    tcase_set_timeout(restart, 60);
    tcase_add_test(restart, test_daemon_stop_keeps_client_data);
    suite_add_tcase(s, restart);
    return s;
}

/* argv[1], if given, names the one TCase to run ("lease" or "restart"). */
ARENA_TEST_MAIN(lease_suite)
