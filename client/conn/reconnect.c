/* SPDX-License-Identifier: MIT
 *
 * reconnect.c -- coming back to a restarted daemon (DESIGN.md section 7).
 *
 * When the socket fails, the next
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
#include "wire.h"

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
        int r =
            arena__conn_exchange(conn, &req, ARENA__MSG_CLAIM_REPLY, conn_claim_reply, &got, NULL);
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
            lease_slot_t *e = arena__conn_table_find(conn, ids[k]);
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
                arena__ctlword_load_acquire(arena__ctlword_slot(conn->ctl_map, res->slot)) ==
                    arena__ctlword_make(res->generation, ARENA__CTLWORD_ACTIVE)) {
                e->has_ctl = true;
                e->ctl_slot = res->slot;
                e->generation = res->generation;
            }
        }
        (void)pthread_mutex_unlock(&conn->table_lock);
        for (size_t k = 0; k < strays; k++) {
            arena__msg_t rel = {.kind = ARENA__MSG_RELEASE};
            rel.u.release.lease_id = stray[k];
            (void)arena__conn_exchange(conn, &rel, ARENA__MSG_RELEASE_REPLY, NULL, NULL, NULL);
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
    int r = arena__conn_hello(conn, reattach, fds);
    if (r == 0 && fds[0] < 0)
        r = ARENA_EPROTOCOL;
    if (r < 0) {
        arena__conn_close_fds(fds);
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
        if (e->own_memory) {
            /* Its memfd is in no pool and no ledger: the mapping stays
             * what it is (shared with its other holders), and no daemon
             * knows it any more. */
            e->detached = true;
            e->has_ctl = false;
            continue;
        }
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
    arena__conn_map_control(conn, fds[1]);
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
int arena__conn_reconnect(arena_conn_t *conn)
{
    if (!conn->dead)
        return 0;
    if (arena__conn_foreign(conn) || conn->fd < 0)
        return ARENA_EDISCONNECTED;
    uint64_t budget = conn_reconnect_budget_ms();
    uint64_t now = conn_now_ms();
    if (budget == 0 || now < conn->retry_after_ms)
        return ARENA_EDISCONNECTED;
    uint64_t deadline = now + budget, pause = 10;
    for (;;) {
        int s = -1;
        int r = arena__conn_open_socket(conn->info.socket_path, &s);
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
