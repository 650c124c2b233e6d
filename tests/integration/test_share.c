/* SPDX-License-Identifier: MIT
 *
 * test_share.c -- sharing leases by token end to end (DESIGN.md section 8):
 * a real arenad (tests/lib's daemon fixture) and owners and attachers in separate
 * processes, through libarena-client.
 *
 * Covers: an attacher sees the owner's bytes and the owner the attacher's
 * writes, the extent counted once and charged to the owner; a read-only
 * attacher faults on write; the owner exits or is SIGKILLed and the
 * attacher keeps the data and the charge, then the extent is punched when
 * the attacher exits (the daemon's counters and the pool's st_blocks);
 * ONCE, forged, truncated, revoked and malformed tokens, and the rate limit
 * on failed attaches; a second uid (nobody) cannot attach a same-uid share
 * and attaches a cross-uid own-memory share read-only, which it can make
 * writable neither by mprotect nor by reopening its fd; arenactl shows
 * holders and shares; a daemon restart leaves a shared extent with one
 * owner and both processes with their data.
 *
 * Each test starts its own daemon; children only _exit() and die with the
 * test (PR_SET_PDEATHSIG). Messages on stdout say what each test showed.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "arena.h"
#include "conn.h"
#include "check_main.h"
#include "cmdchild.h"
#include "fdpass.h"
#include "fixture.h"
#include "wire.h"

#define MiB (1024u * 1024u)

static arena_test_daemon_t daemon_;

static void daemon_start(void)
{
    static const char *const args[] = {"--budget", "256M", NULL};
    arena_test_daemon_up(&daemon_, NULL, args, 0);
}

static void daemon_stop(void)
{
    ck_assert_int_eq(arena_test_daemon_stop(&daemon_), 0);
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    (void)nanosleep(&ts, NULL);
}

static arena_conn_t *connect_ok(void)
{
    arena_conn_t *c = NULL;
    int r = arena_connect(daemon_.socket, &c);
    ck_assert_msg(r == 0, "connect: %s", arena_strerror(r));
    return c;
}

static bool filled_with(const void *p, uint8_t v, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i += 4096) {
        if (b[i] != v || b[i + 4095] != v)
            return false;
    }
    return true;
}

/* ---- children: a command pipe down, a reply pipe up -------------------------------- */

typedef struct reply {
    int status; /* 0: fine, else the step that failed */
    int err;    /* an arena code, when a step reports one */
    uint64_t client_id;
    uint64_t lease_id;
    char token[ARENA_TOKEN_SIZE];
} reply_t;

typedef arena_test_cmd_child_t child_t; /* commands down, reply_t up (tests/lib) */

typedef struct child_arg {
    char token[ARENA_TOKEN_SIZE];
    size_t size;
    uint8_t fill;
    unsigned flags;
} child_arg_t;

typedef void (*child_fn)(int cmd, int resp, const child_arg_t *arg);

/* What the child runs: fn with its argument (tests/lib passes a void *). */
typedef struct child_call {
    child_fn fn;
    const child_arg_t *arg;
} child_call_t;

static void child_trampoline(int cmd, int resp, void *call)
{
    const child_call_t *c = call;
    c->fn(cmd, resp, c->arg);
}

static void child_spawn(child_t *c, child_fn fn, const child_arg_t *arg)
{
    child_call_t call = {fn, arg}; /* the child has its own copy after fork */
    ck_assert_int_eq(arena_test_cmd_child_spawn(c, child_trampoline, &call), 0);
}

static void child_send(const child_t *c, char cmd)
{
    ck_assert_int_eq(arena_test_cmd_child_send(c, cmd), 0);
}

static void child_read(const child_t *c, reply_t *r)
{
    ck_assert_msg(arena_test_cmd_child_read(c, r, sizeof(*r)) == 0, "child %ld went away",
                  (long)c->pid);
}

static int child_wait(child_t *c)
{
    pid_t pid = c->pid;
    int r = arena_test_cmd_child_wait(c);
    ck_assert_msg(r != ARENA_TEST_CMD_CHILD_LOST, "child %ld could not be reaped", (long)pid);
    return r;
}

static char child_cmd(int cmd)
{
    return arena_test_cmd_child_next(cmd);
}

static void child_reply(int resp, const reply_t *r)
{
    if (write(resp, r, sizeof(*r)) != (ssize_t)sizeof(*r))
        _exit(101);
}

#define EXIT_WRITE_FAULTED 77

static void on_write_fault(int sig)
{
    (void)sig;
    _exit(EXIT_WRITE_FAULTED);
}

/* Attaches arg->token and answers: 'v' checks the fill, 'w' writes 0xb2
 * over the second half, 'W' writes one byte (a read-only share faults),
 * 's' asks the daemon (a call that reconnects after a restart), 'r'
 * releases, 'q' exits. */
static void attacher_main(int cmd, int resp, const child_arg_t *arg)
{
    reply_t r = {0};
    arena_conn_t *c = NULL;
    arena_lease_t l;
    if (arena_connect(daemon_.socket, &c) < 0)
        _exit(102);
    r.err = arena_attach(c, arg->token, &l);
    if (r.err == 0) {
        r.lease_id = l.id;
        if (l.zeroed || l.size < arg->size || !filled_with(l.addr, arg->fill, arg->size))
            r.status = 1;
    } else {
        r.status = 2;
    }
    arena__conn_info_t info;
    (void)arena__conn_info(c, &info);
    r.client_id = info.client_id;
    child_reply(resp, &r);
    if (r.status)
        _exit(0);
    for (;;) {
        char k = child_cmd(cmd);
        r = (reply_t){.lease_id = l.id, .client_id = info.client_id};
        switch (k) {
        case 'v':
            r.status = filled_with(l.addr, arg->fill, l.size / 2) ? 0 : 3;
            break;
        case 'w':
            memset((char *)l.addr + l.size / 2, 0xb2, l.size / 2);
            break;
        case 'W': {
            /* Faults when read-only: the handler exits with 77 (its own,
             * so a sanitizer's handler does not turn it into an abort). */
            struct sigaction sa = {.sa_handler = on_write_fault};
            (void)sigaction(SIGSEGV, &sa, NULL);
            ((volatile uint8_t *)l.addr)[0] = 0xee;
            r.status = 4;
            break;
        }
        case 's': {
            arena__admin_status_t st;
            r.err = arena__admin_status(c, &st);
            break;
        }
        case 'r':
            r.err = arena_release(c, &l);
            break;
        default:
            _exit(0);
        }
        child_reply(resp, &r);
    }
}

/* Leases arg->size (own memory with flags ARENA_LEASE_OWN_MEMORY), fills
 * it with arg->fill, shares it and reports the token; then 'v' checks the
 * fill, 'r' releases, 's' asks the daemon, 'q' exits. */
static void owner_main(int cmd, int resp, const child_arg_t *arg)
{
    reply_t r = {0};
    arena_conn_t *c = NULL;
    arena_lease_t l;
    if (arena_connect(daemon_.socket, &c) < 0)
        _exit(102);
    r.err = arena_lease(c, arg->size, 0, &l);
    if (r.err == 0) {
        memset(l.addr, arg->fill, l.size);
        r.err = arena_share(c, &l, arg->flags, r.token);
    }
    r.status = r.err ? 1 : 0;
    r.lease_id = l.id;
    arena__conn_info_t info;
    (void)arena__conn_info(c, &info);
    r.client_id = info.client_id;
    child_reply(resp, &r);
    for (;;) {
        char k = child_cmd(cmd);
        r = (reply_t){.lease_id = l.id, .client_id = info.client_id};
        switch (k) {
        case 'v':
            r.status = filled_with(l.addr, arg->fill, l.size) ? 0 : 3;
            break;
        case 'r':
            r.err = arena_release(c, &l);
            break;
        case 's': {
            arena__admin_status_t st;
            r.err = arena__admin_status(c, &st);
            break;
        }
        default:
            _exit(0);
        }
        child_reply(resp, &r);
    }
}

/* ---- the daemon's books --------------------------------------------------------------- */

static const arena__admin_lease_t *find_lease(const arena__admin_leases_t *list, uint64_t id)
{
    for (size_t i = 0; i < list->count; i++) {
        if (list->items[i].lease_id == id)
            return &list->items[i];
    }
    return NULL;
}

static uint64_t client_leased(arena_conn_t *c, uint64_t client_id, uint64_t *ret_shared)
{
    arena__admin_clients_t *list = NULL;
    ck_assert_int_eq(arena__admin_clients(c, &list), 0);
    uint64_t leased = UINT64_MAX;
    for (size_t i = 0; i < list->count; i++) {
        if (list->items[i].client_id == client_id) {
            leased = list->items[i].leased_bytes;
            if (ret_shared)
                *ret_shared = list->items[i].shared_bytes;
        }
    }
    arena__admin_clients_free(list);
    return leased;
}

static uint64_t status_leased(arena_conn_t *c)
{
    arena__admin_status_t st;
    ck_assert_int_eq(arena__admin_status(c, &st), 0);
    return st.leased_bytes;
}

static long long pool_blocks(arena_conn_t *c)
{
    struct stat st;
    ck_assert_int_eq(fstat(arena__conn_pool_fd(c), &st), 0);
    return (long long)st.st_blocks;
}

/* Runs arenactl with args and returns its stdout (static buffer). */
static const char *arenactl(const char *args)
{
    static char out[65536];
    char cmd[1024];
    (void)snprintf(cmd, sizeof(cmd), "%s --socket %s %s", ARENACTL_PATH, daemon_.socket, args);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    ck_assert_int_eq(pclose(p), 0);
    return out;
}

/* ---- tests ------------------------------------------------------------------------------ */

START_TEST(test_attach_sees_and_writes)
{
    daemon_start();
    arena_conn_t *owner = connect_ok();
    arena_lease_t l;
    ck_assert_int_eq(arena_lease(owner, 4 * MiB, 0, &l), 0);
    memset(l.addr, 0xa1, l.size);
    child_arg_t a = {.size = l.size, .fill = 0xa1};
    ck_assert_int_eq(arena_share(owner, &l, 0, a.token), 0);
    ck_assert_uint_lt(strlen(a.token), ARENA_TOKEN_SIZE);
    ck_assert_uint_ge(strlen(a.token), 32 + 2); /* >= 128 bits of hex, and more */
    for (const char *p = a.token; *p; p++)
        ck_assert_msg(*p > 0x20 && *p < 0x7f, "token not printable");

    child_t kid;
    child_spawn(&kid, attacher_main, &a);
    reply_t r;
    child_read(&kid, &r);
    ck_assert_msg(r.status == 0, "attach: step %d, %s", r.status, arena_strerror(r.err));
    ck_assert_uint_ne(r.lease_id, l.id);
    child_send(&kid, 'w');
    child_read(&kid, &r);
    ck_assert(filled_with(l.addr, 0xa1, l.size / 2));
    ck_assert(filled_with((char *)l.addr + l.size / 2, 0xb2, l.size / 2));

    /* Counted once, charged to the owner; both holders listed. */
    arena__conn_info_t info;
    ck_assert_int_eq(arena__conn_info(owner, &info), 0);
    ck_assert_uint_eq(status_leased(owner), l.size);
    uint64_t shared = 0;
    ck_assert_uint_eq(client_leased(owner, info.client_id, &shared), l.size);
    ck_assert_uint_eq(shared, l.size);
    ck_assert_uint_eq(client_leased(owner, r.client_id, &shared), 0);
    ck_assert_uint_eq(shared, l.size);
    arena__admin_leases_t *list = NULL;
    ck_assert_int_eq(arena__admin_leases(owner, 0, &list), 0);
    const arena__admin_lease_t *mine = find_lease(list, l.id),
                               *theirs = find_lease(list, r.lease_id);
    ck_assert_ptr_nonnull(mine);
    ck_assert_ptr_nonnull(theirs);
    ck_assert_uint_eq(mine->holders, 2);
    ck_assert_uint_eq(mine->shares, 1);
    ck_assert(mine->charged && !theirs->charged);
    ck_assert_uint_eq(mine->extent_id, theirs->extent_id);
    ck_assert_uint_eq(mine->offset, theirs->offset);
    arena__admin_leases_free(list);
    const char *json = arenactl("--json leases");
    ck_assert_msg(strstr(json, "\"holders\": 2") || strstr(json, "\"holders\":2"),
                  "arenactl --json leases shows no holders: %s", json);
    const char *table = arenactl("leases");
    ck_assert_msg(strstr(table, "HOLDERS") && strstr(table, "SHARES"), "%s", table);
    const char *clients = arenactl("clients");
    ck_assert_msg(strstr(clients, "SHARED"), "%s", clients);
    const char *metrics = arenactl("metrics");
    ck_assert_msg(strstr(metrics, "arenad_attaches_total 1"), "%s", metrics);
    const char *events = arenactl("events");
    ck_assert_msg(strstr(events, "share") && strstr(events, "attach"), "%s", events);

    /* The attacher lets go: the owner holds it alone again. */
    child_send(&kid, 'r');
    child_read(&kid, &r);
    ck_assert_int_eq(r.err, 0);
    child_send(&kid, 'q');
    ck_assert_int_eq(child_wait(&kid), 0);
    ck_assert_int_eq(arena__admin_leases(owner, 0, &list), 0);
    ck_assert_uint_eq(list->count, 1);
    ck_assert_uint_eq(list->items[0].holders, 1);
    arena__admin_leases_free(list);
    ck_assert(filled_with((char *)l.addr + l.size / 2, 0xb2, l.size / 2));
    ck_assert_int_eq(arena_release(owner, &l), 0);
    arena_disconnect(owner);
    daemon_stop();
    printf("attach: the attacher read the owner's bytes, the owner read its writes; counted once, "
           "charged to the owner; arenactl shows holders, shares, events, metrics\n");
}
END_TEST

START_TEST(test_readonly_attacher_faults)
{
    daemon_start();
    arena_conn_t *owner = connect_ok();
    arena_lease_t l;
    ck_assert_int_eq(arena_lease(owner, 1 * MiB, 0, &l), 0);
    memset(l.addr, 0x3c, l.size);
    child_arg_t a = {.size = l.size, .fill = 0x3c};
    ck_assert_int_eq(arena_share(owner, &l, ARENA_SHARE_READONLY, a.token), 0);
    child_t kid;
    child_spawn(&kid, attacher_main, &a);
    reply_t r;
    child_read(&kid, &r);
    ck_assert_msg(r.status == 0, "attach: step %d, %s", r.status, arena_strerror(r.err));
    child_send(&kid, 'W');
    ck_assert_int_eq(child_wait(&kid), EXIT_WRITE_FAULTED);
    ck_assert(filled_with(l.addr, 0x3c, l.size));
    /* Its death detached it. */
    arena__admin_leases_t *list = NULL;
    for (int i = 0; i < 100; i++) {
        ck_assert_int_eq(arena__admin_leases(owner, 0, &list), 0);
        size_t n = list->count;
        arena__admin_leases_free(list);
        if (n == 1)
            break;
        nap_ms(20);
    }
    ck_assert_int_eq(arena__admin_leases(owner, 0, &list), 0);
    ck_assert_uint_eq(list->count, 1);
    ck_assert_uint_eq(list->items[0].holders, 1);
    arena__admin_leases_free(list);
    ck_assert_int_eq(arena_release(owner, &l), 0);
    arena_disconnect(owner);
    daemon_stop();
    printf("read-only: the attacher read, then got SIGSEGV on its first write; the owner's "
           "bytes are intact\n");
}
END_TEST

/* The owner (a child) shares, an attacher attaches, the owner goes (exit or
 * SIGKILL): the attacher keeps the data and the charge; when it exits the
 * extent is punched. */
/* An owner child leases size bytes, fills them with fill and shares them;
 * an attacher child attaches them by the owner's token and checks the fill.
 * Both must succeed. Returns the attacher's reply. */
static reply_t owner_and_attacher(size_t size, uint8_t fill, child_t *owner, child_t *att)
{
    child_arg_t oa = {.size = size, .fill = fill};
    child_spawn(owner, owner_main, &oa);
    reply_t ro;
    child_read(owner, &ro);
    ck_assert_msg(ro.status == 0, "owner: %s", arena_strerror(ro.err));
    child_arg_t aa = {.size = size, .fill = fill};
    memcpy(aa.token, ro.token, sizeof(aa.token));
    child_spawn(att, attacher_main, &aa);
    reply_t ra;
    child_read(att, &ra);
    ck_assert_msg(ra.status == 0, "attach: step %d, %s", ra.status, arena_strerror(ra.err));
    return ra;
}

static void owner_goes(bool kill_it)
{
    daemon_start();
    arena_conn_t *watch = connect_ok();
    const size_t size = 16 * MiB;
    child_t owner, att;
    reply_t ra = owner_and_attacher(size, 0x5a, &owner, &att);
    long long blocks_held = pool_blocks(watch);
    ck_assert_int_ge(blocks_held, (long long)(size / 512));
    ck_assert_uint_eq(status_leased(watch), size);

    if (kill_it) {
        ck_assert_int_eq(kill(owner.pid, SIGKILL), 0);
        ck_assert_int_eq(child_wait(&owner), -SIGKILL);
    } else {
        child_send(&owner, 'q');
        ck_assert_int_eq(child_wait(&owner), 0);
    }
    /* The charge passes to the attacher, once the daemon saw the EOF. */
    uint64_t leased = 0;
    for (int i = 0; i < 200 && (leased = client_leased(watch, ra.client_id, NULL)) == 0; i++)
        nap_ms(10);
    ck_assert_uint_eq(leased, size);
    ck_assert_uint_eq(status_leased(watch), size);
    child_send(&att, 'v');
    child_read(&att, &ra);
    ck_assert_msg(ra.status == 0, "the attacher lost the data");
    ck_assert_int_ge(pool_blocks(watch), (long long)(size / 512));

    child_send(&att, 'q');
    ck_assert_int_eq(child_wait(&att), 0);
    uint64_t total = 1;
    for (int i = 0; i < 200 && (total = status_leased(watch)) != 0; i++)
        nap_ms(10);
    ck_assert_uint_eq(total, 0);
    long long blocks_after = pool_blocks(watch);
    ck_assert_msg(blocks_held - blocks_after >= (long long)(size / 512),
                  "st_blocks %lld -> %lld: the extent was not punched", blocks_held, blocks_after);
    arena__admin_status_t st;
    ck_assert_int_eq(arena__admin_status(watch, &st), 0);
    ck_assert_uint_eq(st.leases, 0);
    arena_disconnect(watch);
    daemon_stop();
    printf("owner %s: the attacher kept 16 MiB and the charge; at its exit leased 16 MiB -> 0, "
           "pool st_blocks %lld -> %lld\n",
           kill_it ? "SIGKILLed" : "exited", blocks_held, blocks_after);
}

START_TEST(test_owner_exits_attacher_keeps)
{
    owner_goes(false);
}
END_TEST

START_TEST(test_owner_killed_attacher_keeps)
{
    owner_goes(true);
}
END_TEST

START_TEST(test_bad_tokens)
{
    daemon_start();
    arena_conn_t *owner = connect_ok();
    arena_conn_t *other = connect_ok();
    arena_lease_t l, a1, a2;
    ck_assert_int_eq(arena_lease(owner, 1 * MiB, 0, &l), 0);

    /* ONCE: spent by the first attach. */
    char once[ARENA_TOKEN_SIZE];
    ck_assert_int_eq(arena_share(owner, &l, ARENA_SHARE_ONCE, once), 0);
    ck_assert_int_eq(arena_attach(other, once, &a1), 0);
    ck_assert_int_eq(arena_attach(other, once, &a2), -ENOENT);
    ck_assert_int_eq(arena_lease_park(other, &a1), -ENOTSUP); /* attached: never parked */

    /* Forged: one hex digit of the secret changed. */
    char tok[ARENA_TOKEN_SIZE], forged[ARENA_TOKEN_SIZE];
    ck_assert_int_eq(arena_share(owner, &l, 0, tok), 0);
    memcpy(forged, tok, sizeof(tok));
    size_t n = strlen(forged);
    forged[n - 1] = forged[n - 1] == '0' ? '1' : '0';
    ck_assert_int_eq(arena_attach(other, forged, &a2), -ENOENT);
    char msg[256];
    ck_assert_msg(strstr(arena__conn_last_error(other, msg, sizeof(msg)), "no such share"), "%s",
                  msg);
    /* Truncated, malformed, empty, too long, NULL. */
    memcpy(forged, tok, sizeof(tok));
    forged[n / 2] = '\0';
    ck_assert_int_eq(arena_attach(other, forged, &a2), -EINVAL);
    ck_assert_msg(strstr(arena__conn_last_error(other, msg, sizeof(msg)), "malformed or truncated"),
                  "%s", msg);
    ck_assert_int_eq(arena_attach(other, "hello", &a2), -EINVAL);
    ck_assert_int_eq(arena_attach(other, "", &a2), -EINVAL);
    char longer[200];
    memset(longer, 'a', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    ck_assert_int_eq(arena_attach(other, longer, &a2), -EINVAL);
    ck_assert_int_eq(arena_attach(other, NULL, &a2), -EINVAL);
    ck_assert_int_eq(arena_attach(other, tok, NULL), -EINVAL);

    /* Revoked: only by its maker; then refused. */
    ck_assert_int_eq(arena_unshare(other, tok), ARENA_ENOTOWNER);
    ck_assert_int_eq(arena_unshare(owner, tok), 0);
    ck_assert_int_eq(arena_unshare(owner, tok), -ENOENT);
    ck_assert_int_eq(arena_attach(other, tok, &a2), -ENOENT);

    /* Bad share requests. */
    ck_assert_int_eq(arena_share(owner, &l, 0x80, tok), -EINVAL);
    ck_assert_int_eq(arena_share(owner, NULL, 0, tok), -EINVAL);
    ck_assert_int_eq(arena_share(other, &l, 0, tok), -ENOENT);           /* not its lease */
    ck_assert_int_eq(arena_share_uid(owner, &l, 0, 65534, tok), -EPERM); /* pool: same uid only */
    ck_assert_msg(strstr(arena__conn_last_error(owner, msg, sizeof(msg)), "ARENA_LEASE_OWN_MEMORY"),
                  "%s", msg);
    /* A read-only attacher re-shares read-only only. */
    char ro[ARENA_TOKEN_SIZE], re[ARENA_TOKEN_SIZE];
    ck_assert_int_eq(arena_share(owner, &l, ARENA_SHARE_READONLY, ro), 0);
    ck_assert_int_eq(arena_attach(other, ro, &a2), 0);
    ck_assert_int_eq(arena_share(other, &a2, 0, re), -EPERM);
    ck_assert_int_eq(arena_share(other, &a2, ARENA_SHARE_READONLY, re), 0);
    ck_assert_int_eq(arena_release(other, &a2), 0);
    /* Its token died with its lease. */
    ck_assert_int_eq(arena_attach(owner, re, &a2), -ENOENT);

    /* A sharer that releases voids its tokens; the attached extent stays. */
    ck_assert_int_eq(arena_share(owner, &l, 0, tok), 0);
    memset(l.addr, 0x11, l.size);
    ck_assert_int_eq(arena_release(owner, &l), 0);
    ck_assert_int_eq(arena_attach(other, tok, &a2), -ENOENT);
    ck_assert(filled_with(a1.addr, 0x11, a1.size));

    /* Too many failures in a row: limited. */
    arena_conn_t *guesser = connect_ok();
    int limited = 0;
    struct timespec t0, t1;
    ck_assert_int_eq(clock_gettime(CLOCK_MONOTONIC, &t0), 0);
    for (int i = 0; i < 20; i++) {
        int r = arena_attach(guesser, forged, &a2);
        ck_assert(r == -EINVAL || r == ARENA_ELIMIT);
        limited += r == ARENA_ELIMIT;
    }
    ck_assert_int_eq(clock_gettime(CLOCK_MONOTONIC, &t1), 0);
    /* 8 failures a second are let through; on a machine so slow that the
     * 20 calls took most of a second, a new window may have begun. */
    bool quick = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 900;
    ck_assert_int_ge(limited, quick ? 12 : 1);
    ck_assert_int_eq(arena_release(other, &a1), 0);
    arena_disconnect(guesser);
    arena_disconnect(other);
    arena_disconnect(owner);
    daemon_stop();
    printf("tokens: ONCE spent, forged/revoked -> ENOENT, truncated/malformed -> EINVAL, foreign "
           "unshare refused, %d of 20 guesses rate limited\n",
           limited);
}
END_TEST

/* ---- a second uid ---------------------------------------------------------------------- */

enum {
    UID_OK = 0,
    UID_DROP = 10,
    UID_CONNECT,
    UID_SAME_UID_ATTACHED,
    UID_POOL_ATTACHED,
    UID_CROSS_ATTACH,
    UID_CROSS_DATA,
    UID_MPROTECT,
    UID_RAW,
    UID_RAW_FD,
    UID_FD_WRITABLE,
    UID_REOPEN,
    UID_MAP_WRITE,
    UID_SEALS,
    UID_WRITE_FAULT,
};

/* Sends one frame on s (with the library's encoder). */
static bool raw_send(int s, arena__msg_t *m)
{
    uint8_t buf[4096];
    long n = arena__wire_encode(m, buf, sizeof(buf));
    return n > 0 && write(s, buf, (size_t)n) == n;
}

/* Reads one frame of s; fds that came go to fds[0..2). */
static bool raw_recv(int s, arena__scratch_t *scratch, arena__msg_t *m, int *fds)
{
    uint8_t hdr[4];
    size_t got = 0;
    while (got < 4) {
        ssize_t n = arena__recv_with_fds(s, hdr + got, 4 - got, fds, 2, 0);
        if (n <= 0)
            return false;
        got += (size_t)n;
    }
    size_t len = hdr[0] | (size_t)hdr[1] << 8 | (size_t)hdr[2] << 16 | (size_t)hdr[3] << 24;
    static uint8_t body[65536];
    if (len > sizeof(body))
        return false;
    for (got = 0; got < len;) {
        ssize_t n = read(s, body + got, len - got);
        if (n <= 0)
            return false;
        got += (size_t)n;
    }
    return arena__wire_decode(body, len, scratch, m) == 0;
}

/* Attaches token over a raw socket and returns the fd the reply carried,
 * as an attacker that keeps it would. */
static int raw_attach_fd(const char *token)
{
    int s = arena_test_daemon_connect(&daemon_);
    if (s < 0)
        return -1;
    arena__scratch_t scratch = {0};
    arena__msg_t m = {.kind = ARENA__MSG_HELLO, .request_id = 1};
    m.u.hello.protocol_version = ARENA__PROTOCOL_VERSION;
    m.u.hello.client_name = "raw";
    int fds[2] = {-1, -1};
    if (!raw_send(s, &m) || !raw_recv(s, &scratch, &m, fds) || m.kind != ARENA__MSG_HELLO_REPLY)
        return -1;
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            (void)close(fds[i]);
    fds[0] = fds[1] = -1;
    m = (arena__msg_t){.kind = ARENA__MSG_ATTACH, .request_id = 2};
    m.u.attach.token = token;
    if (!raw_send(s, &m) || !raw_recv(s, &scratch, &m, fds) || m.kind != ARENA__MSG_ATTACH_REPLY ||
        !m.u.attach_reply.read_only || !m.u.attach_reply.own_memory)
        return -1;
    /* The socket stays open: the lease lives while we hold it. */
    return fds[0];
}

static sigjmp_buf fault_jmp;

static void on_fault(int sig)
{
    (void)sig;
    siglongjmp(fault_jmp, 1);
}

static int nobody_child(const char tokens[3][ARENA_TOKEN_SIZE], size_t size)
{
    if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0 || getuid() != 65534)
        return UID_DROP;
    arena_conn_t *c = NULL;
    if (arena_connect(daemon_.socket, &c) < 0)
        return UID_CONNECT;
    arena_lease_t l;
    /* tokens[0]: a same-uid share of an own-memory lease; [1]: a pool lease. */
    if (arena_attach(c, tokens[0], &l) != -EPERM)
        return UID_SAME_UID_ATTACHED;
    if (arena_attach(c, tokens[1], &l) != -EPERM)
        return UID_POOL_ATTACHED;
    if (arena_attach(c, tokens[2], &l) != 0)
        return UID_CROSS_ATTACH;
    if (l.size < size || !filled_with(l.addr, 0x77, size))
        return UID_CROSS_DATA;
    if (mprotect(l.addr, l.size, PROT_READ | PROT_WRITE) == 0 || errno != EACCES)
        return UID_MPROTECT;
    struct sigaction sa = {.sa_handler = on_fault};
    (void)sigaction(SIGSEGV, &sa, NULL);
    if (sigsetjmp(fault_jmp, 1) == 0) {
        ((volatile uint8_t *)l.addr)[0] = 0xee;
        return UID_WRITE_FAULT;
    }
    /* An attacker holding the descriptor itself. */
    int fd = raw_attach_fd(tokens[2]);
    if (fd < 0)
        return UID_RAW;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return UID_RAW_FD;
    if ((fl & O_ACCMODE) != O_RDONLY || write(fd, "x", 1) >= 0)
        return UID_FD_WRITABLE;
    char path[64];
    (void)snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    int again = open(path, O_RDWR);
    if (again >= 0 || errno != EACCES)
        return UID_REOPEN;
    if (mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) != MAP_FAILED)
        return UID_MAP_WRITE;
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0 || !(seals & F_SEAL_GROW) || !(seals & F_SEAL_SHRINK) || ftruncate(fd, 0) == 0)
        return UID_SEALS;
    if (arena_release(c, &l) != 0)
        return UID_CROSS_ATTACH;
    arena_disconnect(c);
    return UID_OK;
}

START_TEST(test_second_uid)
{
    if (geteuid() != 0) {
        printf("test_second_uid: skipped: needs root to drop to uid 65534\n");
        return;
    }
    daemon_start();
    /* The fixture's directory (mkdtemp) is 0700: let nobody reach the socket. */
    ck_assert_int_eq(chmod(daemon_.dir, 0711), 0);
    arena_conn_t *owner = connect_ok();
    arena_lease_t own, pool;
    ck_assert_int_eq(arena_lease_flags(owner, 2 * MiB, 0, ARENA_LEASE_OWN_MEMORY, &own), 0);
    ck_assert_int_eq(arena_lease(owner, 2 * MiB, 0, &pool), 0);
    ck_assert_int_eq(arena_lease_flags(owner, MiB, 0, 0x40, &pool), -EINVAL);
    ck_assert(own.zeroed && filled_with(own.addr, 0, own.size));
    ck_assert_int_eq(arena_lease_park(owner, &own), -ENOTSUP); /* never parked */
    memset(own.addr, 0x77, own.size);
    memset(pool.addr, 0x77, pool.size);
    char tokens[3][ARENA_TOKEN_SIZE];
    ck_assert_int_eq(arena_share(owner, &own, 0, tokens[0]), 0);
    ck_assert_int_eq(arena_share(owner, &pool, 0, tokens[1]), 0);
    ck_assert_int_eq(arena_share_uid(owner, &own, ARENA_SHARE_READONLY, 65534, tokens[2]), 0);
    /* Own memory is in no pool and counts in the budget all the same. */
    ck_assert_uint_eq(status_leased(owner), 4 * MiB);
    (void)fflush(NULL);
    pid_t kid = fork();
    ck_assert_int_ge(kid, 0);
    if (kid == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        _exit(nobody_child((const char(*)[ARENA_TOKEN_SIZE])tokens, own.size));
    }
    int status;
    ck_assert_int_eq(waitpid(kid, &status, 0), kid);
    ck_assert_msg(WIFEXITED(status), "the nobody child died of signal %d", WTERMSIG(status));
    ck_assert_msg(WEXITSTATUS(status) == UID_OK, "second uid check %d failed", WEXITSTATUS(status));
    ck_assert(filled_with(own.addr, 0x77, own.size));
    ck_assert_int_eq(arena_release(owner, &own), 0);
    ck_assert_int_eq(arena_release(owner, &pool), 0);
    uint64_t total = 1;
    for (int i = 0; i < 200 && (total = status_leased(owner)) != 0; i++)
        nap_ms(10);
    ck_assert_uint_eq(total, 0);
    arena_disconnect(owner);
    daemon_stop();
    printf("second uid: nobody could not attach same-uid shares (own memory or pool), attached "
           "the cross-uid one read-only; mprotect, write, reopen via /proc, a writable mmap and "
           "ftruncate of its fd all refused\n");
}
END_TEST

/* ---- a daemon restart ------------------------------------------------------------------- */

START_TEST(test_restart_one_owner)
{
    daemon_start();
    ck_assert_int_eq(setenv("ARENA_RECONNECT_MS", "10000", 1), 0);
    const size_t size = 4 * MiB;
    child_t owner, att;
    reply_t ro, ra = owner_and_attacher(size, 0x42, &owner, &att);

    static const char *const args[] = {"--budget", "256M", NULL};
    ck_assert_int_eq(arena_test_daemon_restart(&daemon_, SIGKILL, args), 0);
    /* Both come back and claim the one extent: one gets it. */
    child_send(&owner, 's');
    child_read(&owner, &ro);
    ck_assert_int_eq(ro.err, 0);
    child_send(&att, 's');
    child_read(&att, &ra);
    ck_assert_int_eq(ra.err, 0);
    arena_conn_t *watch = connect_ok();
    arena__admin_leases_t *list = NULL;
    ck_assert_int_eq(arena__admin_leases(watch, 0, &list), 0);
    ck_assert_uint_eq(list->count, 1);
    ck_assert_uint_eq(list->items[0].holders, 1);
    ck_assert_uint_eq(list->items[0].size, size);
    arena__admin_leases_free(list);
    ck_assert_uint_eq(status_leased(watch), size);
    /* Both still read their data (one shared, one a private copy). */
    child_send(&owner, 'v');
    child_read(&owner, &ro);
    ck_assert_int_eq(ro.status, 0);
    child_send(&att, 'v');
    child_read(&att, &ra);
    ck_assert_int_eq(ra.status, 0);
    child_send(&owner, 'q');
    child_send(&att, 'q');
    ck_assert_int_eq(child_wait(&owner), 0);
    ck_assert_int_eq(child_wait(&att), 0);
    uint64_t total = 1;
    for (int i = 0; i < 200 && (total = status_leased(watch)) != 0; i++)
        nap_ms(10);
    ck_assert_uint_eq(total, 0);
    arena_disconnect(watch);
    daemon_stop();
    printf("restart: the shared extent came back with one owner and one lease; both processes "
           "kept their data; nothing left after they exited\n");
}
END_TEST

static Suite *share_suite(void)
{
    Suite *s = suite_create("share");
    TCase *tc = tcase_create("share");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_attach_sees_and_writes);
    tcase_add_test(tc, test_readonly_attacher_faults);
    tcase_add_test(tc, test_owner_exits_attacher_keeps);
    tcase_add_test(tc, test_owner_killed_attacher_keeps);
    tcase_add_test(tc, test_bad_tokens);
    tcase_add_test(tc, test_second_uid);
    tcase_add_test(tc, test_restart_one_owner);
    suite_add_tcase(s, tc);
    return s;
}

ARENA_TEST_MAIN(share_suite)
