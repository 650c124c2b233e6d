/* SPDX-License-Identifier: MIT
 *
 * park.c -- parking leases through the control region (DESIGN.md section 5).
 *
 * HelloReply brings a second fd, the
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
 * The state word and its orderings are defined in common/ctlword.h.
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
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "conn.h"
#include "conn_internal.h"
#include "ctlword.h"
#include "wire.h"

int arena__conn_set_control(arena_conn_t *conn, uint64_t id, uint32_t slot, uint64_t generation)
{
    if (!conn)
        return -EINVAL;
    int r = -ENOENT;
    (void)pthread_mutex_lock(&conn->table_lock);
    lease_slot_t *e = arena__conn_table_find(conn, id);
    if (!conn->ctl_map || slot >= conn->ctl_slots || generation == 0) {
        r = -ENOTSUP;
    } else if (e) {
        /* Only what the daemon published for this lease may be used. */
        if (arena__ctlword_load_acquire(arena__ctlword_slot(conn->ctl_map, slot)) ==
            arena__ctlword_make(generation, ARENA__CTLWORD_ACTIVE)) {
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
    lease_slot_t *e = arena__conn_table_find(conn, lease->id);
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
    int r = arena__conn_resolve(&conn);
    if (r < 0)
        return r;
    if (arena__conn_foreign(conn))
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
    if (!arena__ctlword_park_release(arena__conn_word(conn, e), e->generation)) {
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
    int r = arena__conn_resolve(&conn);
    if (r < 0)
        return r;
    if (arena__conn_foreign(conn))
        return ARENA_EDISCONNECTED;
    (void)pthread_mutex_lock(&conn->table_lock);
    lease_slot_t *e;
    r = park_lookup(conn, lease, &e);
    if (r < 0)
        goto out;
    if (e->gone) {
        arena__conn_table_remove(conn, e);
        atomic_fetch_add_explicit(&conn->xunpark_lost, 1, memory_order_relaxed);
        r = ARENA_ERECLAIMED;
        goto out;
    }
    if (!e->parked) {
        r = 0; /* active already */
        goto out;
    }
    if (!arena__ctlword_unpark_acquire(arena__conn_word(conn, e), e->generation)) {
        /* The daemon won: the extent is punched and may be someone else's. */
        (void)munmap(e->addr, e->size);
        arena__conn_table_remove(conn, e);
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

long long arena__conn_release_parked(arena_conn_t *conn)
{
    if (!conn || arena__conn_foreign(conn))
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

/* Maps the control region the daemon sent (fd is consumed). A region that
 * does not look like one (size, magic, version, slot count) is not used:
 * the connection works, parking reports -ENOTSUP. */
void arena__conn_map_control(arena_conn_t *conn, int fd)
{
    uint32_t slots = conn->ctl_slots;
    conn->ctl_slots = 0;
    if (fd < 0)
        return;
    uint64_t need = arena__ctlword_region_size(slots);
    /* The memfd's size from lseek(): fstat() would do, but glibc's reads a
     * path ("") from its read-only data, which faults a window of it into
     * every program at start-up. The fd is ours and closed below. */
    off_t size = slots == 0 ? -1 : lseek(fd, 0, SEEK_END);
    if (size < 0 || (uint64_t)size < need || (uint64_t)size > SIZE_MAX) {
        (void)close(fd);
        return;
    }
    size_t len = (size_t)size;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    (void)close(fd);
    if (p == MAP_FAILED)
        return;
    const arena__ctlword_header_t *h = p;
    if (h->magic != ARENA__CTLWORD_MAGIC || h->version != ARENA__CTLWORD_VERSION ||
        h->slots != slots) {
        (void)munmap(p, len);
        return;
    }
    conn->ctl_map = p;
    conn->ctl_len = len;
    conn->ctl_slots = slots;
    atomic_store_explicit(&conn->xctl_publish, p, memory_order_release);
}
