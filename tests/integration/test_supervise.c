/* SPDX-License-Identifier: MIT
 *
 * test_supervise.c -- arenad started as ./run.sh starts it (no service
 * manager: `arenad --foreground`, which supervises itself), its serving
 * process SIGKILLed under clients (DESIGN.md section 7).
 *
 * What is shown: a client holding data that sleeps through the restart and
 * well past the grace period, making no call and running no thread, finds
 * every byte intact and claims its lease when it calls again (ARENA_IDLE_MS
 * sets how long it sleeps); right after
 * the restart a new client and a returning one are served at once (the
 * latencies are printed; only "well under the grace period" is asserted);
 * `arenactl status` says a grace period runs and what it holds; the
 * supervisor forwards SIGHUP, stops with its server on SIGTERM (exit 0) and
 * hears no fd from a stranger. Without any store (--no-supervise), a new
 * client is still served at once, from a fresh pool, and a returning one
 * from memory of its own while its pool's grace period runs. Clients are forked children linking
 * libarena-client, driven over pipes; the test's own process only reads the
 * books.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check_main.h"
#include "admin.h"
#include "arena.h"
#include "conn.h"
#include "daemon.h"
#include "fdpass.h"
#include "proc.h"
#include "run.h"

#define MIB ((size_t)1024 * 1024)

static arena_test_daemon_t d;

static uint64_t now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Starts the daemon as ./run.sh does, with --budget 256M unless the config
 * text sets the budget (flags win over the file, and a reload reads the
 * file). */
static void up(const char *config)
{
    static const char *const budget[] = {"--budget", "256M", NULL};
    const char *const *args = config && strstr(config, "budget") ? NULL : budget;
    int r = arena_test_daemon_start_supervised(&d, config, args);
    ck_assert_msg(r == 0, "arenad: %s", strerror(-r));
    ck_assert_int_eq(setenv("ARENAD_SOCKET", d.socket, 1), 0);
    ck_assert_int_eq(setenv("ARENA_RECONNECT_MS", "15000", 1), 0);
}

static void teardown(void)
{
    /* A crash or a sanitizer's report at exit (23) fails the test; a daemon
     * the test stopped itself is not running. */
    int status = arena_test_daemon_stop(&d);
    ck_assert_msg(status == 0 || status == ARENA_TEST_DAEMON_NOT_RUNNING,
                  "arenad did not exit cleanly: %d", status);
}

/* The byte at offset i of a holder's lease. */
static unsigned char pattern(size_t i)
{
    return (unsigned char)((i >> 12) * 131u + 7u);
}

/* ---- a client in its own process ---------------------------------------------- */

typedef struct answer {
    int code;    /* 0 or -errno */
    int intact;  /* the old lease's bytes are all the pattern */
    uint64_t ms; /* how long the call took */
} answer_t;

typedef struct holder {
    pid_t pid;
    int cmd; /* write: 'C' check, 'S' a status call, 'L' check and lease anew, 'Q' quit */
    int ans; /* read: 'R' once holding, then an answer_t per command */
} holder_t;

static int holder_intact(const arena_lease_t *l)
{
    const unsigned char *p = l->addr;
    for (size_t i = 0; i < l->size; i++)
        if (p[i] != pattern(i))
            return 0;
    return 1;
}

/* The child: leases size bytes, writes the pattern, says 'R', then only
 * reads its pipe -- no call into the library, no thread -- until told. */
static void holder_main(int cmd, int ans, size_t size)
{
    arena_conn_t *c = NULL;
    arena_lease_t l;
    if (arena_connect(d.socket, &c) < 0 || arena_lease(c, size, 0, &l) < 0)
        _exit(2);
    unsigned char *p = l.addr;
    for (size_t i = 0; i < l.size; i++)
        p[i] = pattern(i);
    if (write(ans, "R", 1) != 1)
        _exit(3);
    char what;
    while (read(cmd, &what, 1) == 1) {
        answer_t a = {0, 0, 0};
        if (what == 'Q')
            break;
        a.intact = holder_intact(&l);
        if (what == 'S') { /* a call that reconnects and claims, nothing more */
            arena__admin_status_t st;
            uint64_t t0 = now_ms();
            a.code = arena__admin_status(c, &st);
            a.ms = now_ms() - t0;
        }
        if (what == 'L') {
            arena_lease_t more;
            uint64_t t0 = now_ms();
            a.code = arena_lease(c, MIB, 5000, &more);
            a.ms = now_ms() - t0;
            a.intact = a.intact && holder_intact(&l);
        }
        if (write(ans, &a, sizeof(a)) != (ssize_t)sizeof(a))
            _exit(4);
    }
    arena_disconnect(c);
    _exit(0);
}

static void holder_start(holder_t *h, size_t size)
{
    int cmd[2], ans[2];
    ck_assert_int_eq(pipe2(cmd, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(ans, O_CLOEXEC), 0);
    (void)fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        (void)close(cmd[1]);
        (void)close(ans[0]);
        holder_main(cmd[0], ans[1], size);
    }
    (void)close(cmd[0]);
    (void)close(ans[1]);
    h->pid = pid;
    h->cmd = cmd[1];
    h->ans = ans[0];
    char r = 0;
    ck_assert_int_eq(read(h->ans, &r, 1), 1);
    ck_assert_int_eq(r, 'R');
}

static answer_t holder_ask(holder_t *h, char what)
{
    answer_t a;
    ck_assert_int_eq(write(h->cmd, &what, 1), 1);
    ck_assert_int_eq(read(h->ans, &a, sizeof(a)), (ssize_t)sizeof(a));
    return a;
}

static void holder_stop(holder_t *h)
{
    ck_assert_int_eq(write(h->cmd, "Q", 1), 1);
    int status = 0;
    ck_assert_int_eq(waitpid(h->pid, &status, 0), h->pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    (void)close(h->cmd);
    (void)close(h->ans);
}

/* ---- the daemon's side ----------------------------------------------------------- */

static void books(arena__admin_status_t *st)
{
    arena_conn_t *c = NULL;
    ck_assert_int_eq(arena_connect(d.socket, &c), 0);
    ck_assert_int_eq(arena__admin_status(c, st), 0);
    arena_disconnect(c);
}

/* SIGKILLs the serving process; returns when its successor listens, with
 * the time of the kill in *ret_killed_ms. */
static pid_t crash_server(uint64_t *ret_killed_ms)
{
    pid_t old = arena_test_daemon_server_pid(&d, 0);
    ck_assert_int_gt(old, 0);
    ck_assert_int_ne(old, d.pid);
    *ret_killed_ms = now_ms();
    ck_assert_int_eq(kill(old, SIGKILL), 0);
    pid_t now = arena_test_daemon_server_pid(&d, old);
    ck_assert_msg(now > 0, "no new server after the crash: %s", strerror(-now));
    ck_assert_int_eq(kill(d.pid, 0), 0); /* the supervisor, as clients know it */
    return now;
}

/* ---- tests ----------------------------------------------------------------------- */

START_TEST(test_idle_client_keeps_every_byte)
{
    const uint64_t grace = 1500;
    up("restart_grace_ms = 1500\n");
    holder_t h;
    holder_start(&h, 32 * MIB);
    uint64_t killed;
    (void)crash_server(&killed);

    /* The new server got the pool and the ledger back from the supervisor. */
    arena__admin_status_t st;
    books(&st);
    ck_assert_uint_eq(st.restart_held_bytes, 32 * MIB);
    ck_assert_uint_eq(st.restart_held_leases, 1);
    ck_assert_uint_gt(st.restart_grace_left_ms, 0);
    ck_assert_uint_le(st.restart_grace_left_ms, grace);
    ck_assert_uint_eq(st.restart_unknown_pools, 0);
    ck_assert(st.restart_fd_store);
    char *argv[] = {(char *)ARENACTL_PATH, (char *)"--socket", d.socket, (char *)"status", NULL};
    arena_run_t r;
    ck_assert_int_eq(arena_run((const char *const *)argv, NULL, &r), 0);
    ck_assert_int_eq(r.code, 0);
    ck_assert_msg(strstr(r.out, "grace period running") && strstr(r.out, "1 lease (32.0 MiB)"),
                  "arenactl status: %s", r.out);
    arena_run_free(&r);

    /* The client sleeps through the grace period and well past it
     * (ARENA_IDLE_MS, default twice the grace period; 30000 as the
     * acceptance run has it). */
    const char *idle = getenv("ARENA_IDLE_MS");
    long idle_ms = idle && atol(idle) > 0 ? atol(idle) : (long)(2 * grace);
    nap_ms(idle_ms);
    books(&st);
    ck_assert_uint_eq(st.restart_grace_left_ms, 0);
    ck_assert_uint_eq(st.restart_held_bytes, 32 * MIB); /* held: its process lives */

    answer_t a = holder_ask(&h, 'C');
    ck_assert_msg(a.intact, "the idle client's bytes changed across the restart");
    a = holder_ask(&h, 'L');
    ck_assert_int_eq(a.code, 0);
    ck_assert(a.intact);
    books(&st);
    ck_assert_uint_eq(st.restart_held_bytes, 0); /* claimed back, not detached */
    ck_assert_uint_eq(st.leased_bytes, 33 * MIB);
    holder_stop(&h);
}
END_TEST

START_TEST(test_first_grant_right_after_restart)
{
    up(NULL); /* the default grace period, 10 s */
    const uint64_t grace = 10000;
    holder_t h;
    holder_start(&h, 8 * MIB);
    uint64_t killed;
    (void)crash_server(&killed);
    uint64_t listening = now_ms();

    /* A new client: connect and lease at once. */
    arena_conn_t *c = NULL;
    ck_assert_int_eq(arena_connect(d.socket, &c), 0);
    arena_lease_t l;
    ck_assert_int_eq(arena_lease(c, 8 * MIB, 5000, &l), 0);
    uint64_t fresh = now_ms() - listening;
    uint64_t fresh_from_kill = now_ms() - killed;
    /* A returning client: reconnects, claims its lease and asks anew. */
    answer_t a = holder_ask(&h, 'L');
    ck_assert_int_eq(a.code, 0);
    ck_assert(a.intact);
    (void)printf("first grant after restart: new client %" PRIu64 " ms after the new server "
                 "listened (%" PRIu64 " ms after the kill), returning client %" PRIu64
                 " ms; grace %" PRIu64 " ms\n",
                 fresh, fresh_from_kill, a.ms, grace);
    (void)fflush(stdout);
    ck_assert_uint_lt(fresh_from_kill, grace / 4);
    ck_assert_uint_lt(a.ms, grace / 4);
    arena__admin_status_t st;
    books(&st);
    ck_assert_uint_gt(st.restart_grace_left_ms, 0); /* all of it inside the grace period */
    arena_disconnect(c);
    holder_stop(&h);
}
END_TEST

START_TEST(test_no_store_new_clients_get_a_fresh_pool)
{
    /* --no-supervise by hand: no fd store, the pool comes back from its
     * client and grants nothing during the grace period. */
    const uint64_t grace = 10000;
    const char *const args[] = {"--budget", "256M", NULL};
    ck_assert_int_eq(arena_test_daemon_start(&d, NULL, args), 0);
    ck_assert_int_eq(setenv("ARENA_RECONNECT_MS", "15000", 1), 0);
    holder_t h;
    holder_start(&h, 8 * MIB);
    ck_assert_int_eq(arena_test_daemon_restart(&d, SIGKILL, args), 0);
    answer_t a = holder_ask(&h, 'S');
    ck_assert_int_eq(a.code, 0);
    ck_assert(a.intact);
    arena__admin_status_t st;
    books(&st);
    ck_assert(!st.restart_fd_store);
    ck_assert_uint_eq(st.restart_unknown_pools, 1);
    /* A new client of the same uid is served at once, from a fresh pool. */
    arena_conn_t *c = NULL;
    arena_lease_t l;
    uint64_t t0 = now_ms();
    ck_assert_int_eq(arena_connect(d.socket, &c), 0);
    ck_assert_int_eq(arena_lease(c, 8 * MIB, 5000, &l), 0);
    uint64_t took = now_ms() - t0;
    (void)printf("without a store: new client granted in %" PRIu64 " ms during the grace period\n",
                 took);
    ck_assert_uint_lt(took, grace / 4);
    books(&st);
    ck_assert_uint_eq(st.pools, 2);
    ck_assert_uint_gt(st.restart_grace_left_ms, 0);
    /* The returning client's pool grants nothing during its grace period
     * (any free byte may be a lease of a client not back yet): its new
     * lease is memory of its own, at once, and its old data stays. */
    a = holder_ask(&h, 'L');
    ck_assert_int_eq(a.code, 0);
    ck_assert(a.intact);
    (void)printf("without a store: returning client granted in %" PRIu64
                 " ms during the grace period\n",
                 a.ms);
    ck_assert_uint_lt(a.ms, grace / 4);
    books(&st);
    ck_assert_uint_gt(st.restart_grace_left_ms, 0); /* still inside it */
    arena_disconnect(c);
    holder_stop(&h);
}
END_TEST

/* Sends an FDSTORE=1 datagram with fd to the supervisor as a stranger
 * would: its abstract socket is listed in /proc/net/unix for anybody. */
static void forge_store(int fd, const char *name)
{
    char prefix[64], line[512], found[108] = "";
    int plen = snprintf(prefix, sizeof(prefix), "@arenad-supervise-%ld-", (long)d.pid);
    FILE *f = fopen("/proc/net/unix", "re");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f)) {
        char *at = strstr(line, prefix);
        if (at && (size_t)plen < sizeof(found)) {
            at[strcspn(at, " \n")] = '\0';
            (void)snprintf(found, sizeof(found), "%s", at);
        }
    }
    (void)fclose(f);
    ck_assert_msg(found[0], "no supervisor socket in /proc/net/unix");
    const char *sock = found;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    size_t len = strlen(sock);
    ck_assert_uint_lt(len, sizeof(sa.sun_path));
    memcpy(sa.sun_path, sock, len);
    sa.sun_path[0] = '\0';
    int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(s, 0);
    char msg[128];
    int m = snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", name);
    ck_assert_int_ge(arena__send_with_fd(s, msg, (size_t)m, fd, &sa,
                                         (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len),
                                         0),
                     0);
    (void)close(s);
}

START_TEST(test_supervisor_lifecycle)
{
    up("budget = 256M\n");
    pid_t server = arena_test_daemon_server_pid(&d, 0);
    ck_assert_int_gt(server, 0);

    /* A stranger's fd is never stored: a memfd that looks like a pool. */
    char name[64];
    (void)snprintf(name, sizeof(name), "arenad-pool-uid%lu", (unsigned long)getuid());
    int fake = memfd_create(name, MFD_CLOEXEC);
    ck_assert_int_ge(fake, 0);
    ck_assert_int_eq(ftruncate(fake, 1 << 20), 0);
    (void)snprintf(name, sizeof(name), "pool-uid%lu-4242", (unsigned long)getuid());
    forge_store(fake, name);
    (void)close(fake);
    arena_conn_t *c = NULL;
    arena_lease_t l;
    ck_assert_int_eq(arena_connect(d.socket, &c), 0);
    ck_assert_int_eq(arena_lease(c, MIB, 0, &l), 0);
    arena_disconnect(c);
    uint64_t killed;
    server = crash_server(&killed);
    arena__admin_status_t st;
    books(&st);
    ck_assert_uint_eq(st.pools, 1); /* the real pool came back, the forged one did not */

    /* SIGHUP reaches the server: a new budget from the config file. */
    FILE *f = fopen(d.config, "we");
    ck_assert_ptr_nonnull(f);
    (void)fputs("budget = 128M\n", f);
    (void)fclose(f);
    ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
    for (int i = 0; i < 500; i++) {
        books(&st);
        if (st.budget != 256 * MIB)
            break;
        nap_ms(10);
    }
    ck_assert_uint_eq(st.budget, 128 * MIB);
    ck_assert_int_eq(arena_test_daemon_server_pid(&d, 0), server); /* reloaded, not restarted */

    /* SIGTERM stops both, cleanly. */
    ck_assert_int_eq(arena_test_daemon_stop(&d), 0);
    ck_assert(kill(server, 0) < 0 && errno == ESRCH);
}
END_TEST

START_TEST(test_supervisor_killed_takes_its_server)
{
    up(NULL);
    pid_t server = arena_test_daemon_server_pid(&d, 0);
    ck_assert_int_gt(server, 0);
    /* The fixture kills the supervisor and waits for its server to go. */
    const char *const args[] = {"--budget", "256M", NULL};
    ck_assert_int_eq(arena_test_daemon_restart(&d, SIGKILL, args), 0);
    ck_assert_int_ne(arena_test_catches_signal(server, SIGTERM), 1);
    arena__admin_status_t st;
    books(&st);
    ck_assert_uint_eq(st.restart_held_bytes, 0);
    ck_assert_int_eq(arena_test_daemon_stop(&d), 0);
}
END_TEST

static Suite *supervise_suite(void)
{
    Suite *s = suite_create("supervise");
    TCase *tc = tcase_create("supervise");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_idle_client_keeps_every_byte);
    tcase_add_test(tc, test_first_grant_right_after_restart);
    tcase_add_test(tc, test_supervisor_lifecycle);
    tcase_add_test(tc, test_supervisor_killed_takes_its_server);
    tcase_add_test(tc, test_no_store_new_clients_get_a_fresh_pool);
    suite_add_tcase(s, tc);
    return s;
}

ARENA_TEST_MAIN(supervise_suite)
