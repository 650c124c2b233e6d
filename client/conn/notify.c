/* SPDX-License-Identifier: MIT
 *
 * notify.c -- what the library does with the daemon's notifications: the
 * trim hook, the pollable fd, and the optional background thread.
 *
 * Notifications arrive on the connection's socket between replies; conn.c
 * reads them whenever it reads frames (during any exchange) and hands them
 * to arena__conn_note() here, as arena__conn_poll_notes() does when asked:
 * LeaseReclaimed unmaps the parked lease in the lease table (only when its
 * state word agrees), Pressure adds up as a pending byte count. After an exchange
 * (arena__conn_call) and after arena_process_notifications(), pending pressure runs the trim hook,
 * outside every lock, one thread per connection at a time, so the hook may
 * itself release leases (which makes more exchanges, which may read more
 * pressure: that pressure waits for the next round instead of recursing).
 *
 * ARENA_BACKGROUND=1 starts one detached thread when the default connection
 * is made; it sleeps in poll() on the socket and processes what arrives.
 * The thread takes the connection lock only after poll says there is
 * something to read, so it never delays a request; a reply meant for
 * another thread is never read here, because exchanges hold the lock until
 * their reply is in. No malloc on any path here (see conn.h). The counters read by
 * arena__conn_notes() are relaxed atomics: statistics, ordered with nothing.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "arena.h"
#include "conn.h"
#include "conn_internal.h"
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

/* ---- reading notifications ------------------------------------------------ */

/* A notification read during an exchange; conn->lock held. */
void arena__conn_note(arena_conn_t *conn, const arena__msg_t *msg)
{
    switch (msg->kind) {
    case ARENA__MSG_LEASE_RECLAIMED: {
        atomic_fetch_add_explicit(&conn->xreclaimed_total, 1, memory_order_relaxed);
        (void)pthread_mutex_lock(&conn->table_lock);
        lease_slot_t *e = arena__conn_table_find_daemon(conn, msg->u.lease_reclaimed.lease_id);
        /* Believe the word, not the message: only a lease we parked whose
         * word says RECLAIMED at its generation is unmapped. */
        if (e && e->parked && !e->gone && e->has_ctl &&
            arena__ctlword_load_acquire(arena__conn_word(conn, e)) ==
                arena__ctlword_make(e->generation, ARENA__CTLWORD_RECLAIMED)) {
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
    if (arena__conn_foreign(conn)) {
        arena__conn_orphan(conn);
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
        r = arena__conn_read_frame(conn, &msg, fds);
        arena__conn_close_fds(fds);
        if (r < 0) {
            n = r;
            break;
        }
        if (msg.request_id == 0) {
            arena__conn_note(conn, &msg);
            n++;
        }
    }
    /* The daemon went away: come back to its successor now, so the leases
     * are claimed within its grace period even if we never call it. */
    if (conn->dead) {
        int r = arena__conn_reconnect(conn);
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
    if (!arena__conn_foreign(conn)) {
        (void)pthread_mutex_lock(&conn->table_lock);
        n.parked_bytes = conn->parked_bytes;
        (void)pthread_mutex_unlock(&conn->table_lock);
    }
    *ret_notes = n;
    return 0;
}
