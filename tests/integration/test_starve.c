/* SPDX-License-Identifier: MIT
 *
 * test_starve.c -- no starvation, end to end: a real arenad (tests/lib
 * daemon fixture), generators and simulators in separate processes, through
 * libarena-client (DESIGN.md sections 4 and 5).
 *
 * Covers: a generator stopped with SIGSTOP while holding only parked leases
 * loses them to a simulator within the simulator's deadline, without running,
 * and, continued, sees ARENA_ERECLAIMED on unpark, finds the leases it kept
 * intact and leases anew; a busy generator above its fair share trims on
 * pressure so a simulator within its share is served from the queue, and one
 * that ignores pressure makes the simulator time out at its deadline instead
 * of hanging; the state-word race through the daemon (a client parking and
 * unparking in a tight loop while the daemon is driven to reclaim thousands
 * of times: exactly one side wins every time, and the data says so); and a
 * randomized run of 8 clients over a budget smaller than their sum, after
 * which the daemon's event log shows no refusal of a client at or under its
 * fair share while parked memory existed, and every byte is accounted for.
 *
 * ARENA_STARVE_SECONDS lengthens the randomized run (CI default: 3 s).
 * Every child dies with its test process (PR_SET_PDEATHSIG) and only ever
 * _exit()s; the daemon is stopped by an atexit hook when an assertion ends a
 * test early.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check_main.h"
#include "admin.h"
#include "ctl.h"
#include "arena.h"
#include "conn.h"
#include "fixture.h"
#include "conn.h"
#include "wire.h"

#define MiB ((size_t)1024 * 1024)

static arena_test_daemon_t daemon_;

/* The parked decay is off: these cases test what a request that does not
 * fit sets in motion (reclaim, pressure, queue, refusal), and a slow machine
 * would let the decay take parked leases before the request comes
 * (test_rss tests the decay). */
static void daemon_start(const char *budget)
{
    const char *const args[] = {"--budget", budget, NULL};
    arena_test_daemon_up(&daemon_, "parked_decay_ms = 0\n", args, 0);
}

static void daemon_stop(void)
{
    ck_assert_int_eq(arena_test_daemon_stop(&daemon_), 0);
}

/* Forks a client child that dies with the test. */
static pid_t spawn(void)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(99);
        (void)setenv("ARENAD_SOCKET", daemon_.socket, 1);
    }
    return pid;
}

static int child_wait(pid_t pid)
{
    int st;
    pid_t r;
    do {
        r = waitpid(pid, &st, 0);
    } while (r < 0 && errno == EINTR);
    if (r != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void write_byte(int fd, char c)
{
    ssize_t n;
    do {
        n = write(fd, &c, 1);
    } while (n < 0 && errno == EINTR);
}

static char read_byte(int fd)
{
    char c = 0;
    ssize_t n;
    do {
        n = read(fd, &c, 1);
    } while (n < 0 && errno == EINTR);
    return n == 1 ? c : 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Fills a lease with a pattern derived from tag; checks it. */
static void fill(const arena_lease_t *l, uint64_t tag)
{
    uint64_t *w = l->addr;
    for (size_t i = 0; i < l->size / sizeof(uint64_t); i += 512)
        w[i] = tag ^ (i * 0x9E3779B97F4A7C15ull);
}

static bool check_fill(const arena_lease_t *l, uint64_t tag)
{
    const uint64_t *w = l->addr;
    for (size_t i = 0; i < l->size / sizeof(uint64_t); i += 512) {
        if (w[i] != (tag ^ (i * 0x9E3779B97F4A7C15ull)))
            return false;
    }
    return true;
}

/* Whether every byte of the lease reads zero: the whole lease, since a
 * reclaim that left one page unpunched shows only there. */
static bool lease_is_zero(const arena_lease_t *l)
{
    const uint64_t *w = l->addr;
    for (size_t i = 0; i < l->size / sizeof(uint64_t); i++)
        if (w[i] != 0)
            return false;
    return true;
}

/* The client of pid in the daemon's list, or 0. */
static uint64_t client_of(arena_conn_t *conn, pid_t pid, arena__admin_client_t *ret)
{
    arena__admin_clients_t *list = NULL;
    ck_assert_int_eq(arena__admin_clients(conn, &list), 0);
    uint64_t id = 0;
    for (size_t i = 0; i < list->count; i++) {
        if (list->items[i].pid == (uint32_t)pid) {
            id = list->items[i].client_id;
            if (ret)
                *ret = list->items[i];
        }
    }
    arena__admin_clients_free(list);
    return id;
}

/* ---- the stopped generator ------------------------------------------------- */

#define GEN_LEASES 12
#define GEN_SIZE   (4 * MiB)

/* Leases GEN_LEASES x 4 MiB, fills and parks them, says 'r', waits for 'g'
 * (it is stopped meanwhile), then unparks: every lease is either intact or
 * reclaimed; at least `min_lost` must be reclaimed; then it leases anew. */
static int generator_parked(int ready_fd, int go_fd, int min_lost)
{
    arena_lease_t l[GEN_LEASES];
    for (int i = 0; i < GEN_LEASES; i++) {
        if (arena_lease(NULL, GEN_SIZE, 0, &l[i]) != 0)
            return 10;
        fill(&l[i], 1000u + (uint64_t)i);
        if (arena_lease_park(NULL, &l[i]) != 0)
            return 11;
    }
    write_byte(ready_fd, 'r');
    if (read_byte(go_fd) != 'g')
        return 12;
    int lost = 0;
    for (int i = 0; i < GEN_LEASES; i++) {
        int r = arena_lease_unpark(NULL, &l[i]);
        if (r == ARENA_ERECLAIMED) {
            lost++;
            continue;
        }
        if (r != 0)
            return 13;
        if (!check_fill(&l[i], 1000u + (uint64_t)i))
            return 14; /* "won" a lease the daemon punched: both sides won */
        if (arena_release(NULL, &l[i]) != 0)
            return 15;
    }
    if (lost < min_lost)
        return 16;
    /* It keeps working: new leases, written and read back. */
    arena_lease_t n;
    if (arena_lease(NULL, GEN_SIZE, 2000, &n) != 0)
        return 17;
    fill(&n, 7);
    if (!check_fill(&n, 7) || arena_release(NULL, &n) != 0)
        return 18;
    return 0;
}

START_TEST(test_stopped_generator_loses_parked_leases)
{
    daemon_start("64M");
    int ready[2], go[2];
    ck_assert_int_eq(pipe(ready), 0);
    ck_assert_int_eq(pipe(go), 0);
    /* 48 MiB parked; the simulator wants 40 MiB of a 64 MiB budget, so at
     * least 24 MiB (6 leases) must come from the stopped generator. */
    pid_t gen = spawn();
    if (gen == 0)
        _exit(generator_parked(ready[1], go[0], 6));
    ck_assert_int_eq(read_byte(ready[0]), 'r');
    ck_assert_int_eq(kill(gen, SIGSTOP), 0);
    int st;
    ck_assert_int_eq(waitpid(gen, &st, WUNTRACED), gen);
    ck_assert(WIFSTOPPED(st));

    arena_conn_t *sim;
    ck_assert_int_eq(arena_connect(daemon_.socket, &sim), 0);
    arena__admin_client_t before;
    uint64_t gen_id = client_of(sim, gen, &before);
    ck_assert_uint_ne(gen_id, 0);
    ck_assert_uint_eq(before.leased_bytes, GEN_LEASES * GEN_SIZE);
    ck_assert_uint_eq(before.parked_bytes, GEN_LEASES * GEN_SIZE);

    arena_lease_t big;
    int r = arena_lease(sim, 40 * MiB, 5000, &big);
    ck_assert_msg(r == 0, "simulator: %s", arena_strerror(r));
    /* The pages are the simulator's now: punched (zero) and writable. */
    ck_assert(lease_is_zero(&big));
    memset(big.addr, 0x5a, big.size);

    arena__admin_client_t after;
    ck_assert_uint_eq(client_of(sim, gen, &after), gen_id);
    ck_assert_uint_le(after.leased_bytes, 24 * MiB);
    ck_assert_uint_eq(after.parked_bytes, after.leased_bytes);

    /* The event log names the reclaims and no refusal. */
    arena__admin_events_t *ev = NULL;
    ck_assert_int_eq(arena__admin_events(sim, 0, 0, &ev), 0);
    uint64_t reclaimed = 0;
    for (size_t i = 0; i < ev->count; i++) {
        ck_assert_uint_ne(ev->items[i].kind, ARENA__EVENT_REFUSE);
        if (ev->items[i].kind == ARENA__EVENT_RECLAIM) {
            ck_assert_uint_eq(ev->items[i].client_id, gen_id);
            reclaimed += ev->items[i].bytes;
        }
    }
    arena__admin_events_free(ev);
    ck_assert_uint_eq(reclaimed, before.leased_bytes - after.leased_bytes);
    ck_assert_uint_ge(reclaimed, 24 * MiB);

    /* What arenactl shows: shares and the event log, text and JSON. */
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(arena__ctl_print_shares(sim, false, out), 0);
    ck_assert_int_eq(arena__ctl_print_events(sim, 0, true, out), 0);
    ck_assert_int_eq(fclose(out), 0);
    char pidtext[32];
    (void)snprintf(pidtext, sizeof(pidtext), " %ld ", (long)gen);
    ck_assert_msg(strstr(text, "PARKED") && strstr(text, "SHARE") && strstr(text, pidtext), "%s",
                  text);
    ck_assert_msg(strstr(text, "\"kind\":\"reclaim\"") && strstr(text, "\"dropped\":0"), "%s",
                  text);
    free(text);

    ck_assert_int_eq(arena_release(sim, &big), 0);
    ck_assert_int_eq(kill(gen, SIGCONT), 0);
    write_byte(go[1], 'g');
    ck_assert_int_eq(child_wait(gen), 0);
    arena_disconnect(sim);
    daemon_stop();
}
END_TEST

/* ---- the busy generator ------------------------------------------------------ */

static arena_lease_t busy_leases[16];
static int busy_count;

/* The trim hook of the busy generator: gives back half of what it holds. */
static long long busy_trim(void)
{
    long long freed = 0;
    int keep = busy_count / 2;
    while (busy_count > keep) {
        busy_count--;
        if (arena_release(NULL, &busy_leases[busy_count]) == 0)
            freed += (long long)busy_leases[busy_count].size;
    }
    return freed;
}

/* Holds 14 x 4 MiB live and stays busy (touching its memory) until 'q',
 * handling notifications from its own loop when `trims`. */
static int generator_busy(int ready_fd, int quit_fd, bool trims)
{
    if (trims)
        arena__set_trim_hook(busy_trim);
    for (int i = 0; i < 14; i++) {
        if (arena_lease(NULL, 4 * MiB, 0, &busy_leases[i]) != 0)
            return 10;
        busy_count++;
    }
    write_byte(ready_fd, 'r');
    int nfd = arena_notify_fd();
    if (nfd < 0)
        return 11;
    for (;;) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 2000000};
        (void)nanosleep(&ts, NULL);
        for (int i = 0; i < busy_count; i++)
            ((volatile char *)busy_leases[i].addr)[0]++;
        if (trims && arena_process_notifications() < 0)
            return 12;
        char c;
        ssize_t n = read(quit_fd, &c, 1);
        if (n == 1)
            break;
    }
    arena__conn_notes_t notes;
    arena_conn_t *conn;
    if (arena__conn_default(&conn) != 0 || arena__conn_notes(conn, &notes) != 0)
        return 13;
    if (trims && notes.pressure_total == 0)
        return 14;
    return 0;
}

static void busy_case(bool trims)
{
    daemon_start("64M");
    int ready[2], quit[2];
    ck_assert_int_eq(pipe(ready), 0);
    ck_assert_int_eq(pipe2(quit, O_NONBLOCK), 0);
    pid_t gen = spawn();
    if (gen == 0)
        _exit(generator_busy(ready[1], quit[0], trims));
    ck_assert_int_eq(read_byte(ready[0]), 'r');

    arena_conn_t *sim;
    ck_assert_int_eq(arena_connect(daemon_.socket, &sim), 0);
    /* 24 MiB: within the simulator's fair share (two clients, 64 MiB), but
     * only 8 MiB are free and nothing is parked. */
    arena_lease_t l;
    uint64_t t0 = now_ms();
    int r = arena_lease(sim, 24 * MiB, trims ? 10000 : 400, &l);
    uint64_t took = now_ms() - t0;
    if (trims) {
        ck_assert_msg(r == 0, "simulator: %s", arena_strerror(r));
        ck_assert_int_eq(arena_release(sim, &l), 0);
    } else {
        ck_assert_int_eq(r, -ETIMEDOUT);
        char why[256];
        (void)arena__conn_last_error(sim, why, sizeof(why));
        ck_assert_msg(strstr(why, "top:") != NULL, "no holders in '%s'", why);
        /* It waited for its deadline, no more than a little longer. */
        ck_assert_uint_ge(took, 390);
    }
    arena__admin_events_t *ev = NULL;
    ck_assert_int_eq(arena__admin_events(sim, 0, 0, &ev), 0);
    uint64_t gen_id = client_of(sim, gen, NULL);
    int pressure = 0, queued = 0;
    for (size_t i = 0; i < ev->count; i++) {
        if (ev->items[i].kind == ARENA__EVENT_PRESSURE) {
            ck_assert_uint_eq(ev->items[i].client_id, gen_id);
            ck_assert_uint_gt(ev->items[i].leased, ev->items[i].fair_share);
            pressure++;
        }
        if (ev->items[i].kind == ARENA__EVENT_QUEUE)
            queued++;
        if (ev->items[i].kind == ARENA__EVENT_REFUSE)
            ck_assert_uint_eq(ev->items[i].reclaimable, 0);
    }
    arena__admin_events_free(ev);
    ck_assert_int_ge(pressure, 1);
    ck_assert_int_eq(queued, 1);
    write_byte(quit[1], 'q');
    ck_assert_int_eq(child_wait(gen), 0);
    arena_disconnect(sim);
    daemon_stop();
}

START_TEST(test_busy_generator_trims_on_pressure)
{
    busy_case(true);
}
END_TEST

START_TEST(test_busy_generator_ignoring_pressure_times_out)
{
    busy_case(false);
}
END_TEST

/* ---- a blocked generator with the background thread ------------------------ */

static arena_lease_t bg_leases[14];
static _Atomic int bg_count;

static long long bg_trim(void)
{
    long long freed = 0;
    int n;
    while ((n = atomic_load(&bg_count)) > 0) {
        atomic_store(&bg_count, n - 1);
        if (arena_release(NULL, &bg_leases[n - 1]) == 0)
            freed += (long long)bg_leases[n - 1].size;
    }
    return freed;
}

/* Holds 56 MiB live, then blocks in read(); only the library's background
 * thread (ARENA_BACKGROUND=1) can answer pressure. */
static int generator_blocked(int ready_fd, int quit_fd)
{
    (void)setenv("ARENA_BACKGROUND", "1", 1);
    arena__set_trim_hook(bg_trim);
    for (int i = 0; i < 14; i++) {
        if (arena_lease(NULL, 4 * MiB, 0, &bg_leases[i]) != 0)
            return 10;
        atomic_fetch_add(&bg_count, 1);
    }
    write_byte(ready_fd, 'r');
    return read_byte(quit_fd) == 'q' ? 0 : 11;
}

START_TEST(test_blocked_generator_background_thread_trims)
{
    daemon_start("64M");
    int ready[2], quit[2];
    ck_assert_int_eq(pipe(ready), 0);
    ck_assert_int_eq(pipe(quit), 0);
    pid_t gen = spawn();
    if (gen == 0)
        _exit(generator_blocked(ready[1], quit[0]));
    ck_assert_int_eq(read_byte(ready[0]), 'r');
    arena_conn_t *sim;
    ck_assert_int_eq(arena_connect(daemon_.socket, &sim), 0);
    arena_lease_t l;
    int r = arena_lease(sim, 24 * MiB, 10000, &l);
    ck_assert_msg(r == 0, "simulator: %s", arena_strerror(r));
    arena__admin_client_t g;
    ck_assert_uint_ne(client_of(sim, gen, &g), 0);
    ck_assert_uint_le(g.leased_bytes, 40 * MiB);
    ck_assert_int_eq(arena_release(sim, &l), 0);
    write_byte(quit[1], 'q');
    ck_assert_int_eq(child_wait(gen), 0);
    arena_disconnect(sim);
    daemon_stop();
}
END_TEST

/* ---- parking: error paths ------------------------------------------------- */

START_TEST(test_park_error_paths)
{
    daemon_start("64M");
    arena_conn_t *c;
    ck_assert_int_eq(arena_connect(daemon_.socket, &c), 0);
    arena__conn_notes_t notes;
    ck_assert_int_eq(arena__conn_notes(c, &notes), 0);
    ck_assert_uint_ge(notes.control_slots, 1);
    arena_lease_t l;
    ck_assert_int_eq(arena_lease(c, 1 * MiB, 0, &l), 0);
    fill(&l, 42);
    /* Bad arguments and leases this connection does not hold. */
    ck_assert_int_eq(arena_lease_park(c, NULL), -EINVAL);
    ck_assert_int_eq(arena_lease_unpark(c, NULL), -EINVAL);
    arena_lease_t forged = l;
    forged.id += 1000;
    ck_assert_int_eq(arena_lease_park(c, &forged), -ENOENT);
    ck_assert_int_eq(arena_lease_unpark(c, &forged), -ENOENT);
    forged = l;
    forged.size /= 2;
    ck_assert_int_eq(arena_lease_park(c, &forged), -EINVAL);
    /* Unparking an active lease is a no-op; parking twice is refused. */
    ck_assert_int_eq(arena_lease_unpark(c, &l), 0);
    ck_assert_int_eq(arena_lease_park(c, &l), 0);
    ck_assert_int_eq(arena_lease_park(c, &l), -EALREADY);
    ck_assert_int_eq(arena__conn_notes(c, &notes), 0);
    ck_assert_uint_eq(notes.parked_bytes, l.size);
    /* The daemon sees it parked. */
    arena__admin_leases_t *ls = NULL;
    ck_assert_int_eq(arena__admin_leases(c, 0, &ls), 0);
    ck_assert_uint_eq(ls->count, 1);
    ck_assert(ls->items[0].parked);
    arena__admin_leases_free(ls);
    ck_assert_int_eq(arena_lease_unpark(c, &l), 0);
    ck_assert(check_fill(&l, 42));
    /* Releasing a parked lease gives it back normally. */
    ck_assert_int_eq(arena_lease_park(c, &l), 0);
    ck_assert_int_eq(arena_release(c, &l), 0);
    ck_assert_int_eq(arena_lease_unpark(c, &l), -ENOENT);
    /* Releasing a lease the daemon took back is not an error; unpark of it
     * says what happened once, then it is forgotten. */
    arena_lease_t a, b;
    ck_assert_int_eq(arena_lease(c, 1 * MiB, 0, &a), 0);
    ck_assert_int_eq(arena_lease(c, 1 * MiB, 0, &b), 0);
    ck_assert_int_eq(arena_lease_park(c, &a), 0);
    ck_assert_int_eq(arena_lease_park(c, &b), 0);
    uint64_t got = 0;
    ck_assert_int_eq(arena__admin_reclaim(c, 0, 0, &got), 0);
    ck_assert_uint_ge(got, 2 * MiB);
    ck_assert_int_eq(arena_release(c, &a), 0);
    ck_assert_int_eq(arena_lease_unpark(c, &b), ARENA_ERECLAIMED);
    ck_assert_int_eq(arena_lease_unpark(c, &b), -ENOENT);
    ck_assert_int_eq(arena_lease_park(c, &b), -ENOENT);
    ck_assert_str_eq(arena_strerror(ARENA_ERECLAIMED), "arenad took the parked lease back");
    /* A scribbled state word is refused, and the lease stays usable. */
    arena_lease_t s;
    ck_assert_int_eq(arena_lease(c, 1 * MiB, 0, &s), 0);
    arena__admin_leases_t *one = NULL;
    ck_assert_int_eq(arena__admin_leases(c, 0, &one), 0);
    ck_assert_uint_eq(one->count, 1);
    ck_assert(!one->items[0].parked);
    arena__admin_leases_free(one);
    ck_assert_int_eq(arena__conn_set_control(c, s.id, 0, 12345), ARENA_EPROTOCOL);
    ck_assert_int_eq(arena__conn_set_control(c, s.id + 99, 0, 1), -ENOENT);
    ck_assert_int_eq(arena__conn_set_control(c, s.id, UINT32_MAX, 1), -ENOTSUP);
    fill(&s, 9);
    ck_assert(check_fill(&s, 9));
    ck_assert_int_eq(arena_release(c, &s), 0);
    arena_disconnect(c);
    daemon_stop();
    /* No daemon: the notification calls report it. */
    char sock[] = "/tmp/arena-no-daemon-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(sock));
    char path[128];
    (void)snprintf(path, sizeof(path), "%s/none.sock", sock);
    ck_assert_int_eq(setenv("ARENAD_SOCKET", path, 1), 0);
    ck_assert_int_eq(arena_notify_fd(), ARENA_ENODAEMON);
    ck_assert_int_eq(arena_process_notifications(), ARENA_ENODAEMON);
    ck_assert_int_eq(rmdir(sock), 0);
}
END_TEST

/* ---- the state-word race --------------------------------------------------- */

#define RACE_SIZE ((size_t)64 * 1024)

/* Parks and unparks one lease in a tight loop for `iters` rounds; every
 * unpark either finds its data intact or ARENA_ERECLAIMED (then a new lease).
 * Reports the number of lost leases through fd as a uint64_t. */
static int racer(int ready_fd, int out_fd, long iters)
{
    arena_conn_t *conn;
    if (arena_connect(NULL, &conn) != 0)
        return 10;
    arena_lease_t l;
    if (arena_lease(conn, RACE_SIZE, 0, &l) != 0)
        return 11;
    uint64_t tag = 1;
    fill(&l, tag);
    write_byte(ready_fd, 'r');
    uint64_t lost = 0;
    for (long i = 0; i < iters; i++) {
        if (arena_lease_park(conn, &l) != 0)
            return 12;
        int r = arena_lease_unpark(conn, &l);
        if (r == ARENA_ERECLAIMED) {
            lost++;
            if (arena_lease(conn, RACE_SIZE, 1000, &l) != 0)
                return 13;
            if (!lease_is_zero(&l))
                return 14; /* a reclaimed extent comes back punched */
            fill(&l, ++tag);
            continue;
        }
        if (r != 0)
            return 15;
        if (!check_fill(&l, tag))
            return 16; /* both won: the daemon punched what we kept */
        fill(&l, ++tag);
    }
    /* The lease is active after the last round, so the daemon can take
     * nothing more: every reclaim it made is one this loop saw. */
    ssize_t n;
    do {
        n = write(out_fd, &lost, sizeof(lost));
    } while (n < 0 && errno == EINTR);
    arena_disconnect(conn);
    return n == sizeof(lost) ? 0 : 17;
}

START_TEST(test_park_unpark_race_with_reclaim)
{
    daemon_start("64M");
    const char *e = getenv("ARENA_STARVE_RACE_ITERS");
    long iters = e ? atol(e) : 300000;
    int ready[2], out[2];
    ck_assert_int_eq(pipe(ready), 0);
    ck_assert_int_eq(pipe2(out, O_NONBLOCK), 0);
    pid_t child = spawn();
    if (child == 0)
        _exit(racer(ready[1], out[1], iters));
    ck_assert_int_eq(read_byte(ready[0]), 'r');
    arena_conn_t *adm;
    ck_assert_int_eq(arena_connect(daemon_.socket, &adm), 0);
    uint64_t id = client_of(adm, child, NULL);
    ck_assert_uint_ne(id, 0);
    uint64_t bytes = 0, requests = 0, lost = 0;
    bool reported = false;
    for (;;) {
        uint64_t got = 0;
        int r = arena__admin_reclaim(adm, 0, id, &got);
        if (r == -ENOENT)
            break; /* the child is gone, maybe since its report */
        ck_assert_int_eq(r, 0);
        requests++;
        bytes += got;
        if (read(out[0], &lost, sizeof(lost)) == sizeof(lost)) {
            reported = true;
            break;
        }
    }
    ck_assert_int_eq(child_wait(child), 0);
    if (!reported) /* it exited between our last look and the next request */
        ck_assert_int_eq(read(out[0], &lost, sizeof(lost)), sizeof(lost));
    /* Any reply to a reclaim sent before the child's final report is in
     * `bytes`; the child saw every reclaim made while it looped. */
    ck_assert_uint_eq(bytes % RACE_SIZE, 0);
    ck_assert_uint_eq(bytes / RACE_SIZE, lost);
    ck_assert_uint_gt(requests, 1000);
    ck_assert_uint_gt(lost, 0);
    fprintf(stderr,
            "race: %ld park/unpark rounds, %" PRIu64 " reclaim requests, %" PRIu64
            " leases taken by the daemon\n",
            iters, requests, lost);
    arena_disconnect(adm);
    daemon_stop();
}
END_TEST

/* ---- the randomized run ------------------------------------------------------ */

#define RND_CLIENTS 8
#define RND_MAX     16

typedef struct rnd_lease {
    arena_lease_t l;
    bool parked;
    uint64_t tag;
    uint64_t parked_at; /* now_ms() right after the park returned */
} rnd_lease_t;

/* The clients' own observations, in a MAP_SHARED page the parent reads:
 * spans of time a lease was parked throughout (from just after its park
 * returned to just before an unpark that found it intact), the requests
 * refused, and the parked leases found reclaimed. The parent judges each
 * within-share refusal in the event log against the spans: a lease parked
 * throughout a refusal is parked memory the daemon should have taken. Only
 * spans longer than twice the clock margin are kept: shorter ones cannot
 * cover a refusal with margin on both sides. */
#define RND_SPANS     32768
#define RND_MARGIN_MS 30

typedef struct rnd_span {
    uint64_t from_ms, to_ms;
} rnd_span_t;

typedef struct rnd_seen {
    uint64_t refused;   /* requests refused (-ENOMEM, -ETIMEDOUT) */
    uint64_t reclaimed; /* parked leases found reclaimed */
    uint32_t spans;
    rnd_span_t span[RND_SPANS];
} rnd_seen_t;

static rnd_seen_t *rnd_seen; /* RND_CLIENTS slots, one per client, MAP_SHARED */

/* Notes that a lease parked at parked_at was still parked just now. */
static void rnd_parked_span(rnd_seen_t *me, uint64_t parked_at, uint64_t now)
{
    if (now >= parked_at + 2 * RND_MARGIN_MS && me->spans < RND_SPANS)
        me->span[me->spans++] = (rnd_span_t){parked_at, now};
}

static unsigned rnd_next(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fffu;
}

/* Random leases (1-8 MiB), releases, parks, unparks and waits until 'q';
 * checks its data on every unpark. Reports 'd' when its time is up and
 * then holds what it has until 'q' (so the parent can count). */
static int randomized_client(unsigned seed, uint64_t until_ms, int done_fd, int quit_fd,
                             rnd_seen_t *me)
{
    arena_conn_t *conn;
    if (arena__conn_default(&conn) != 0)
        return 10;
    rnd_lease_t h[RND_MAX];
    int n = 0;
    unsigned s = seed;
    uint64_t tag = (uint64_t)seed << 32;
    while (now_ms() < until_ms) {
        unsigned op = rnd_next(&s) % 10;
        if (op < 4 && n < RND_MAX) {
            size_t size = (size_t)(1 + rnd_next(&s) % 8) * MiB;
            int wait = (int)(rnd_next(&s) % 3) * 100;
            int r = arena_lease(NULL, size, wait, &h[n].l);
            if (r == 0) {
                h[n].parked = false;
                h[n].tag = ++tag;
                fill(&h[n].l, h[n].tag);
                n++;
            } else if (r == -ENOMEM || r == -ETIMEDOUT) {
                me->refused++;
            } else {
                return 11;
            }
        } else if (op < 6 && n > 0) {
            int i = (int)(rnd_next(&s) % (unsigned)n);
            if (!h[i].parked) {
                if (arena_lease_park(NULL, &h[i].l) != 0)
                    return 12;
                h[i].parked_at = now_ms();
            }
            h[i].parked = true;
        } else if (op < 8 && n > 0) {
            int i = (int)(rnd_next(&s) % (unsigned)n);
            if (h[i].parked) {
                uint64_t before = now_ms();
                int r = arena_lease_unpark(NULL, &h[i].l);
                if (r == ARENA_ERECLAIMED) {
                    me->reclaimed++;
                    h[i] = h[--n];
                    continue;
                }
                if (r != 0)
                    return 13;
                rnd_parked_span(me, h[i].parked_at, before);
                h[i].parked = false;
            }
            if (!check_fill(&h[i].l, h[i].tag))
                return 14;
        } else if (n > 0) {
            int i = (int)(rnd_next(&s) % (unsigned)n);
            int r = arena_release(NULL, &h[i].l);
            if (r != 0)
                return 15;
            h[i] = h[--n];
        }
        if (arena_process_notifications() < 0)
            return 16;
        /* The default trim may have released parked leases: learn it. */
        for (int i = 0; i < n; i++) {
            if (!h[i].parked)
                continue;
            uint64_t before = now_ms();
            int r = arena_lease_unpark(NULL, &h[i].l);
            if (r == ARENA_ERECLAIMED) {
                me->reclaimed++;
                h[i] = h[--n];
                i--;
                continue;
            }
            if (r != 0)
                return 17;
            rnd_parked_span(me, h[i].parked_at, before);
            if (!check_fill(&h[i].l, h[i].tag))
                return 18;
            h[i].parked = false;
            if (arena_lease_park(NULL, &h[i].l) != 0)
                return 19;
            h[i].parked_at = now_ms();
            h[i].parked = true;
        }
    }
    write_byte(done_fd, 'd');
    return read_byte(quit_fd) == 'q' ? 0 : 20;
}

typedef struct rnd_check {
    uint64_t next;     /* the next event seq to read */
    uint64_t refusals; /* refusals seen */
    uint64_t within;   /* of those, of a client at or under its share */
    uint64_t grants;
    uint64_t reclaims;
    uint64_t *within_ms; /* the daemon's uptime at each within-share refusal */
} rnd_check_t;

/* Reads every new event and checks the rule on each refusal. */
static void rnd_drain(arena_conn_t *adm, rnd_check_t *c)
{
    for (;;) {
        arena__admin_events_t *ev = NULL;
        ck_assert_int_eq(arena__admin_events(adm, c->next, 0, &ev), 0);
        ck_assert_msg(ev->dropped == 0, "the event ring lost %" PRIu64 " events", ev->dropped);
        size_t n = ev->count;
        for (size_t i = 0; i < n; i++) {
            const arena__admin_event_t *e = &ev->items[i];
            c->next = e->seq;
            if (e->kind == ARENA__EVENT_GRANT)
                c->grants++;
            if (e->kind == ARENA__EVENT_RECLAIM)
                c->reclaims++;
            if (e->kind != ARENA__EVENT_REFUSE)
                continue;
            c->refusals++;
            if (e->leased + e->bytes <= e->fair_share) {
                c->within_ms = realloc(c->within_ms, (c->within + 1) * sizeof(uint64_t));
                ck_assert_ptr_nonnull(c->within_ms);
                c->within_ms[c->within] = e->time_ms;
                c->within++;
                ck_assert_msg(e->reclaimable == 0,
                              "client %" PRIu64 " (holds %" PRIu64 ", asks %" PRIu64
                              ", share %" PRIu64 ") refused while %" PRIu64 " bytes were parked",
                              e->client_id, e->leased, e->bytes, e->fair_share, e->reclaimable);
            }
        }
        arena__admin_events_free(ev);
        if (n == 0)
            return;
    }
}

START_TEST(test_randomized_clients_event_log)
{
    daemon_start("64M");
    const char *e = getenv("ARENA_STARVE_SECONDS");
    long seconds = e ? atol(e) : 3;
    if (seconds < 1)
        seconds = 1;
    rnd_seen = mmap(NULL, RND_CLIENTS * sizeof(rnd_seen_t), PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(rnd_seen, MAP_FAILED);
    int done[2], quit[2];
    ck_assert_int_eq(pipe(done), 0);
    ck_assert_int_eq(pipe(quit), 0);
    arena_conn_t *adm;
    ck_assert_int_eq(arena_connect(daemon_.socket, &adm), 0);
    /* The daemon's uptime (its events' clock) on this process's clock, read
     * before the clients load the machine; the quickest of a few answers. */
    uint64_t daemon_start_ms = 0, best_rtt = UINT64_MAX;
    for (int i = 0; i < 20 && best_rtt > 2; i++) {
        arena__admin_status_t st0;
        uint64_t asked = now_ms();
        ck_assert_int_eq(arena__admin_status(adm, &st0), 0);
        uint64_t answered = now_ms();
        if (answered - asked < best_rtt) {
            best_rtt = answered - asked;
            daemon_start_ms = answered - st0.uptime_ms;
        }
    }
    ck_assert_uint_le(best_rtt, RND_MARGIN_MS / 3);
    uint64_t until = now_ms() + (uint64_t)seconds * 1000u;
    pid_t kids[RND_CLIENTS];
    for (int i = 0; i < RND_CLIENTS; i++) {
        kids[i] = spawn();
        if (kids[i] == 0) {
            (void)close(quit[1]);
            _exit(randomized_client(0x5eed0u + (unsigned)i * 7919u, until, done[1], quit[0],
                                    &rnd_seen[i]));
        }
    }
    (void)close(quit[0]);
    rnd_check_t c = {0};
    int finished = 0;
    ck_assert_int_eq(fcntl(done[0], F_SETFL, O_NONBLOCK), 0);
    while (finished < RND_CLIENTS) {
        rnd_drain(adm, &c);
        char b;
        while (read(done[0], &b, 1) == 1)
            finished++;
        for (int i = 0; i < RND_CLIENTS; i++) {
            int st;
            /* A child exits only after 'q': before that, it failed. */
            pid_t r = waitpid(kids[i], &st, WNOHANG);
            ck_assert_msg(r == 0, "client %d ended early (status %d)", i,
                          WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 20000000};
        (void)nanosleep(&ts, NULL);
    }
    rnd_drain(adm, &c);
    /* Every byte accounted for, with all eight still connected. */
    arena__admin_status_t st;
    ck_assert_int_eq(arena__admin_status(adm, &st), 0);
    arena__admin_clients_t *cl = NULL;
    ck_assert_int_eq(arena__admin_clients(adm, &cl), 0);
    uint64_t sum = 0, leases = 0;
    for (size_t i = 0; i < cl->count; i++) {
        sum += cl->items[i].leased_bytes;
        leases += cl->items[i].leases;
        ck_assert_uint_le(cl->items[i].parked_bytes, cl->items[i].leased_bytes);
        ck_assert_uint_eq(cl->items[i].waiting, 0);
    }
    arena__admin_clients_free(cl);
    arena__admin_leases_t *ls = NULL;
    ck_assert_int_eq(arena__admin_leases(adm, 0, &ls), 0);
    uint64_t lsum = 0;
    for (size_t i = 0; i < ls->count; i++)
        lsum += ls->items[i].size;
    ck_assert_uint_eq(ls->count, leases);
    arena__admin_leases_free(ls);
    ck_assert_uint_eq(sum, st.leased_bytes);
    ck_assert_uint_eq(lsum, st.leased_bytes);
    ck_assert_uint_le(st.leased_bytes, st.budget);
    ck_assert_uint_eq(st.leases, leases);
    ck_assert_uint_eq(st.leases_granted_total - st.leases_released_total, st.leases);

    for (int i = 0; i < RND_CLIENTS; i++)
        write_byte(quit[1], 'q');
    for (int i = 0; i < RND_CLIENTS; i++)
        ck_assert_int_eq(child_wait(kids[i]), 0);
    /* Everything came back when they left. */
    for (int tries = 0; tries < 200; tries++) {
        ck_assert_int_eq(arena__admin_status(adm, &st), 0);
        if (st.leased_bytes == 0 && st.clients == 1)
            break;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 10000000};
        (void)nanosleep(&ts, NULL);
    }
    ck_assert_uint_eq(st.leased_bytes, 0);
    ck_assert_uint_eq(st.leases, 0);
    fprintf(stderr,
            "randomized: %ld s, %" PRIu64 " grants, %" PRIu64 " reclaims, %" PRIu64
            " refusals (%" PRIu64 " within fair share, none with parked memory)\n",
            seconds, c.grants, c.reclaims, c.refusals, c.within);
    ck_assert_uint_gt(c.grants, 0);

    /* Fairness from the clients' side: no within-share refusal while some
     * client's lease sat parked throughout it (margins for the two clocks
     * and the daemon's cached loop time). */
    uint64_t client_refused = 0, client_reclaimed = 0, spans = 0;
    for (int i = 0; i < RND_CLIENTS; i++) {
        const rnd_seen_t *me = &rnd_seen[i];
        client_refused += me->refused;
        client_reclaimed += me->reclaimed;
        spans += me->spans;
        for (uint32_t k = 0; k < me->spans; k++)
            for (uint64_t j = 0; j < c.within; j++) {
                uint64_t t = daemon_start_ms + c.within_ms[j];
                ck_assert_msg(!(me->span[k].from_ms + RND_MARGIN_MS <= t &&
                                t + RND_MARGIN_MS <= me->span[k].to_ms),
                              "a within-share refusal at %" PRIu64 " ms while client %d held a "
                              "lease parked from %" PRIu64 " to %" PRIu64 " ms",
                              c.within_ms[j], i, me->span[k].from_ms - daemon_start_ms,
                              me->span[k].to_ms - daemon_start_ms);
            }
    }
    fprintf(stderr,
            "randomized: clients saw %" PRIu64 " refusals, %" PRIu64 " leases reclaimed, %" PRIu64
            " long parked spans\n",
            client_refused, client_reclaimed, spans);
    /* The run must have exercised what it judges: refusals within a share
     * (each one also seen by the client refused) and reclaims (each one
     * found by its client). */
    ck_assert_msg(c.within > 0, "the run exercised no within-share refusal");
    ck_assert_uint_eq(client_refused, c.refusals);
    ck_assert_msg(c.reclaims > 0 && client_reclaimed > 0, "the run exercised no reclaim");
    free(c.within_ms);
    (void)munmap(rnd_seen, RND_CLIENTS * sizeof(rnd_seen_t));
    arena_disconnect(adm);
    daemon_stop();
}
END_TEST

static Suite *starve_suite(void)
{
    Suite *s = suite_create("starve");
    const struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        {"stopped", test_stopped_generator_loses_parked_leases},
        {"pressure", test_busy_generator_trims_on_pressure},
        {"deadline", test_busy_generator_ignoring_pressure_times_out},
        {"background", test_blocked_generator_background_thread_trims},
        {"errors", test_park_error_paths},
        {"race", test_park_unpark_race_with_reclaim},
        {"randomized", test_randomized_clients_event_log},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, cases[i].test);
        suite_add_tcase(s, tc);
    }
    return s;
}

ARENA_TEST_MAIN(starve_suite)
