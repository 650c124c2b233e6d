/* SPDX-License-Identifier: MIT
 *
 * notify.c -- what the library does with the daemon's notifications: the
 * trim hook, the pollable fd, and the optional background thread.
 *
 * Notifications arrive on the connection's socket between replies; conn.c
 * reads them whenever it reads frames (during any exchange, or when asked
 * here) and keeps LeaseReclaimed in the lease table and Pressure as a
 * pending byte count. After an exchange (arena__conn_call) and after
 * arena_process_notifications(), pending pressure runs the trim hook,
 * outside every lock, one thread per connection at a time, so the hook may
 * itself release leases (which makes more exchanges, which may read more
 * pressure: that pressure waits for the next round instead of recursing).
 *
 * ARENA_BACKGROUND=1 starts one detached thread when the default connection
 * is made; it sleeps in poll() on the socket and processes what arrives.
 * The thread takes the connection lock only after poll says there is
 * something to read, so it never delays a request; a reply meant for
 * another thread is never read here, because exchanges hold the lock until
 * their reply is in. No malloc on any path here (see conn.h).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "conn.h"
#include "park.h"
#include "wire.h"

static _Atomic(arena__trim_hook_fn) xtrim_hook;
static _Atomic uint64_t xtrims_total;

void arena__set_trim_hook(arena__trim_hook_fn hook)
{
    atomic_store_explicit(&xtrim_hook, hook, memory_order_release);
}

void arena__conn_after_notes(arena_conn_t *conn)
{
    if (!conn || !arena__conn_trim_begin(conn))
        return;
    while (arena__conn_take_pressure(conn) > 0) {
        atomic_fetch_add_explicit(&xtrims_total, 1, memory_order_relaxed);
        arena__trim_hook_fn hook = atomic_load_explicit(&xtrim_hook, memory_order_acquire);
        if (hook)
            (void)hook();
        /* Parked raw leases go too: the allocator's hook handles its own leases,
         * and a raw lease parked by the application is just as idle. */
        (void)arena__conn_release_parked(conn);
    }
    arena__conn_trim_end(conn);
}

int arena_notify_fd(void)
{
    arena_conn_t *conn;
    int r = arena__conn_default(&conn);
    if (r < 0)
        return r;
    int fd = arena__conn_socket_fd(conn);
    return fd >= 0 ? fd : ARENA_EDISCONNECTED;
}

int arena_process_notifications(void)
{
    arena_conn_t *conn;
    int r = arena__conn_default(&conn);
    if (r < 0)
        return r;
    int n = arena__conn_poll_notes(conn);
    arena__conn_after_notes(conn);
    return n;
}

static void *notify_thread(void *arg)
{
    arena_conn_t *conn = arg;
    for (;;) {
        struct pollfd p = {.fd = arena__conn_socket_fd(conn), .events = POLLIN};
        if (p.fd < 0)
            return NULL;
        int r = poll(&p, 1, -1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || (p.revents & POLLNVAL))
            return NULL;
        /* A hang-up too goes to the poll: it reconnects to a restarted
         * daemon and claims the leases back (conn.c). */
        r = arena__conn_poll_notes(conn);
        if (r < 0) {
            /* No daemon yet: look again in a second, for as long as the
             * process runs (the socket keeps saying "hung up"). */
            struct timespec ts = {.tv_sec = 1, .tv_nsec = 0};
            (void)nanosleep(&ts, NULL);
            continue;
        }
        arena__conn_after_notes(conn);
        if (r == 0) {
            /* Readable but nothing for us: a reply another thread is about
             * to read. Let it, instead of spinning on poll. */
            struct timespec ts = {.tv_sec = 0, .tv_nsec = 1000000};
            (void)nanosleep(&ts, NULL);
        }
    }
}

void arena__notify_default_started(arena_conn_t *conn)
{
    const char *env = getenv("ARENA_BACKGROUND"); /* NOLINT(concurrency-mt-unsafe) */
    if (!env || strcmp(env, "1") != 0)
        return;
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) != 0)
        return;
    (void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    (void)pthread_create(&t, &attr, notify_thread, conn);
    (void)pthread_attr_destroy(&attr);
}

uint64_t arena__notify_trims_total(void)
{
    return atomic_load_explicit(&xtrims_total, memory_order_relaxed);
}
