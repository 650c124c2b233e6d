/* SPDX-License-Identifier: MIT
 *
 * table.c -- the leases a connection holds: an open-addressing hash table
 * (linear probing, mmap'd, grown by doubling) from the id the caller knows
 * to where the lease is mapped, which daemon granted it (epoch, daemon id),
 * and its control slot. The id the caller holds never changes, also across
 * daemon restarts (reconnect.c renames daemon ids underneath); where it is
 * mapped may change (arena__conn_move(): the allocator joins huge blocks
 * from leases moved end to end). Everything here runs under `table_lock`;
 * no malloc (see conn.h).
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

#define TABLE_INITIAL 64u

static size_t table_hash(uint64_t id, size_t cap)
{
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

/* Rehashes into a table of cap slots; table_lock held. */
static int table_grow(arena_conn_t *conn, size_t cap)
{
    lease_slot_t *slots = arena__conn_map(cap * sizeof(lease_slot_t));
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

int arena__conn_track_lease(arena_conn_t *conn, uint64_t daemon_id, uint64_t offset, void *addr,
                            size_t size, uint32_t epoch, uint64_t *ret_id)
{
    if (!conn || !addr || !ret_id)
        return -EINVAL;
    if (arena__conn_foreign(conn))
        return ARENA_EDISCONNECTED;
    int r = 0;
    (void)pthread_mutex_lock(&conn->table_lock);
    if (epoch != conn->epoch) {
        r = -ESTALE; /* granted by a daemon that is gone: nobody claimed it */
        goto out;
    }
    if ((conn->slot_count + 1) * 2 > conn->slot_cap) {
        r = table_grow(conn, conn->slot_cap ? conn->slot_cap * 2 : TABLE_INITIAL);
        if (r < 0)
            goto out;
    }
    uint64_t id = daemon_id;
    lease_slot_t *clash = arena__conn_table_find(conn, id);
    if (clash) {
        if (clash->epoch == conn->epoch && !clash->detached && clash->daemon_id == daemon_id) {
            r = -EEXIST; /* the daemon handed out one id twice */
            goto out;
        }
        /* An id the caller knows from an earlier daemon: this lease gets one
         * of ours, with the top bit set (daemon ids never get there). */
        do
            id = (UINT64_C(1) << 63) | ++conn->synthetic_ids;
        while (arena__conn_table_find(conn, id));
    }
    size_t i = table_hash(id, conn->slot_cap);
    while (conn->slots[i].used)
        i = (i + 1) & (conn->slot_cap - 1);
    conn->slots[i] = (lease_slot_t){.id = id,
                                    .daemon_id = daemon_id,
                                    .offset = offset,
                                    .epoch = conn->epoch,
                                    .addr = addr,
                                    .size = size,
                                    .used = true};
    conn->slot_count++;
    *ret_id = id;
out:
    (void)pthread_mutex_unlock(&conn->table_lock);
    return r;
}

int arena__conn_set_own_memory(arena_conn_t *conn, uint64_t id)
{
    if (!conn)
        return -EINVAL;
    (void)pthread_mutex_lock(&conn->table_lock);
    lease_slot_t *e = arena__conn_table_find(conn, id);
    if (e)
        e->own_memory = true;
    (void)pthread_mutex_unlock(&conn->table_lock);
    return e ? 0 : -ENOENT;
}

int arena__conn_track(arena_conn_t *conn, uint64_t id, void *addr, size_t size)
{
    uint64_t got;
    (void)pthread_mutex_lock(&conn->table_lock);
    uint32_t epoch = conn->epoch;
    (void)pthread_mutex_unlock(&conn->table_lock);
    int r = arena__conn_track_lease(conn, id, 0, addr, size, epoch, &got);
    if (r == 0 && got != id) {
        (void)arena__conn_untrack(conn, got, addr, size);
        r = -EEXIST;
    }
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

/* What arena__conn_untrack() forgot: enough to tell the daemon. */
typedef struct untracked {
    uint64_t daemon_id;
    uint32_t epoch;
    bool detached;
} untracked_t;

static int conn_untrack(arena_conn_t *conn, uint64_t id, const void *addr, size_t size,
                        untracked_t *ret_what);

int arena__conn_untrack(arena_conn_t *conn, uint64_t id, const void *addr, size_t size)
{
    untracked_t what;
    return conn_untrack(conn, id, addr, size, &what);
}

int arena__conn_release(arena_conn_t *conn, uint64_t id, void *addr, size_t size)
{
    untracked_t what;
    int r = conn_untrack(conn, id, addr, size, &what);
    if (r == ARENA_ERECLAIMED)
        return 0; /* already unmapped and no longer ours: nothing left to give back */
    if (r < 0)
        return r;
    (void)munmap(addr, size);
    if (what.detached)
        return 0; /* a private copy: no daemon knows it */
    return arena__conn_release_remote(conn, what.daemon_id, what.epoch);
}

static int conn_untrack(arena_conn_t *conn, uint64_t id, const void *addr, size_t size,
                        untracked_t *ret_what)
{
    if (!conn)
        return -EINVAL;
    if (arena__conn_foreign(conn))
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
                    lease_slot_t *e = &conn->slots[i];
                    r = e->gone ? ARENA_ERECLAIMED : 0;
                    *ret_what = (untracked_t){e->daemon_id, e->epoch, e->detached};
                    if (e->parked && !e->gone) {
                        conn->parked_bytes -= e->size;
                        /* Take it back from the daemon's reach first: if it
                         * is already taken, there is nothing to release. */
                        if (e->has_ctl && !arena__ctlword_unpark_acquire(arena__conn_word(conn, e),
                                                                         e->generation)) {
                            (void)munmap(e->addr, e->size);
                            r = ARENA_ERECLAIMED;
                        }
                    }
                    table_remove_at(conn, i);
                    conn->slot_count--;
                }
                break;
            }
            i = (i + 1) & (conn->slot_cap - 1);
        }
    }
    (void)pthread_mutex_unlock(&conn->table_lock);
    return r;
}

int arena__conn_move(arena_conn_t *conn, uint64_t id, void *addr, size_t size, void *new_addr)
{
    if (!conn || !addr || !new_addr || size == 0)
        return -EINVAL;
    if (arena__conn_foreign(conn))
        return ARENA_EDISCONNECTED;
    int r = -ENOENT;
    (void)pthread_mutex_lock(&conn->table_lock);
    lease_slot_t *e = arena__conn_table_find(conn, id);
    if (e) {
        if (e->addr != addr || e->size != size || e->parked || e->gone) {
            r = -EINVAL;
        } else if (mremap(addr, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, new_addr) ==
                   MAP_FAILED) {
            r = -errno;
        } else {
            /* Under table_lock: a reclaim or disconnect that unmaps by the
             * recorded address never sees the old one again. */
            e->addr = new_addr;
            r = 0;
        }
    }
    (void)pthread_mutex_unlock(&conn->table_lock);
    return r;
}

size_t arena__conn_tracked(arena_conn_t *conn)
{
    if (!conn || arena__conn_foreign(conn))
        return 0;
    (void)pthread_mutex_lock(&conn->table_lock);
    size_t n = conn->slot_count;
    (void)pthread_mutex_unlock(&conn->table_lock);
    return n;
}

/* The table entry of lease id, or NULL; table_lock held. */
lease_slot_t *arena__conn_table_find(arena_conn_t *conn, uint64_t id)
{
    if (!conn->slot_cap)
        return NULL;
    size_t i = table_hash(id, conn->slot_cap);
    while (conn->slots[i].used) {
        if (conn->slots[i].id == id)
            return &conn->slots[i];
        i = (i + 1) & (conn->slot_cap - 1);
    }
    return NULL;
}

/* Removes entry e (found by arena__conn_table_find); table_lock held. */
void arena__conn_table_remove(arena_conn_t *conn, lease_slot_t *e)
{
    if (e->parked && !e->gone)
        conn->parked_bytes -= e->size;
    table_remove_at(conn, (size_t)(e - conn->slots));
    conn->slot_count--;
}

/* The entry the current daemon calls daemon_id, or NULL; table_lock held.
 * Ids differ from the caller's only after a reconnect, so the scan runs
 * only then. */
lease_slot_t *arena__conn_table_find_daemon(arena_conn_t *conn, uint64_t daemon_id)
{
    lease_slot_t *e = arena__conn_table_find(conn, daemon_id);
    if (e && e->daemon_id == daemon_id && e->epoch == conn->epoch && !e->detached)
        return e;
    if (conn->epoch == 0)
        return NULL;
    for (size_t i = 0; i < conn->slot_cap; i++) {
        e = &conn->slots[i];
        if (e->used && e->daemon_id == daemon_id && e->epoch == conn->epoch && !e->detached)
            return e;
    }
    return NULL;
}
