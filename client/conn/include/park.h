/* SPDX-License-Identifier: MIT
 *
 * park.h -- internal contract for parking leases and for notifications,
 * between the connection layer (conn.c, notify.c) and the pools.
 *
 * Same rule as conn.h: nothing behind this header calls malloc.
 */
#ifndef ARENA_CLIENT_PARK_H
#define ARENA_CLIENT_PARK_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"

/* ACTIVE -> PARKED: mprotect(PROT_NONE), then the release store of PARKED
 * into the lease's state word. Call only when nothing in the lease is live.
 * conn NULL: the default connection. Returns as arena_lease_park(). */
int arena__lease_park(arena_conn_t *conn, const arena_lease_t *lease);

/* PARKED -> ACTIVE by CAS (acquire), then mprotect(READ|WRITE). Returns 0,
 * or ARENA_ERECLAIMED when the daemon took the lease: it is unmapped and no
 * longer in the connection's table (do not unmap or release it). Other
 * returns as arena_lease_unpark(). */
int arena__lease_unpark(arena_conn_t *conn, const arena_lease_t *lease);

/* Tells the daemon, through the default connection's control region, how
 * many bytes the process holds live (shown by arenactl). No call, no lock,
 * no system call: one relaxed store, or nothing when there is no default
 * connection or no control region yet. */
void arena__conn_publish_live(uint64_t live_bytes);

/* Records the control slot and generation of a tracked lease, after checking
 * that the word says ACTIVE at that generation. Returns 0, -ENOENT (not
 * tracked), -ENOTSUP (no control region, or slot out of range),
 * ARENA_EPROTOCOL (the word says something else). */
int arena__conn_set_control(arena_conn_t *conn, uint64_t id, uint32_t slot, uint64_t generation);

/* The trim hook: called (outside every connection lock, one thread at a
 * time per connection) when a Pressure notification arrived. It should
 * give memory back at once (purge, park, release) and return the bytes it
 * gave back or a negative code. NULL (the default): parked raw leases of the
 * connection are released. The pools register theirs once. */
typedef long long (*arena__trim_hook_fn)(void);
void arena__set_trim_hook(arena__trim_hook_fn hook);

/* Reads the notifications waiting on conn's socket without blocking and
 * acts on the LeaseReclaimed ones; Pressure ones add up for
 * arena__conn_take_pressure(). Returns how many were read, or a code. */
int arena__conn_poll_notes(arena_conn_t *conn);

/* Runs the trim hook when pressure is pending on conn (called by
 * arena__conn_call() after every exchange, outside the locks). */
void arena__conn_after_notes(arena_conn_t *conn);

/* The bytes of pressure pending, reset to 0. */
uint64_t arena__conn_take_pressure(arena_conn_t *conn);

/* One trimmer per connection at a time: begin returns false when another
 * thread trims already. */
bool arena__conn_trim_begin(arena_conn_t *conn);
void arena__conn_trim_end(arena_conn_t *conn);

/* Releases every parked (not yet taken) lease of conn: unmapped now, their
 * owners' unparks return ARENA_ERECLAIMED. Returns the bytes released. */
long long arena__conn_release_parked(arena_conn_t *conn);

/* The default connection was just made: starts the background notification
 * thread when ARENA_BACKGROUND=1. */
void arena__notify_default_started(arena_conn_t *conn);

typedef struct arena__conn_notes {
    uint64_t pressure_total;    /* Pressure notifications read */
    uint64_t reclaimed_total;   /* LeaseReclaimed notifications read */
    uint64_t unpark_lost_total; /* unparks that returned ARENA_ERECLAIMED */
    uint64_t parked_bytes;      /* parked, not taken */
    uint32_t control_slots;     /* 0: no control region */
    uint64_t trims_total;       /* times the trim hook (or the default) ran */
    uint64_t reconnects_total;  /* re-registrations with a restarted daemon */
    uint64_t detached_total;    /* leases it would not take back (now private copies) */
} arena__conn_notes_t;

/* Times any connection's trim ran (the hook or the default). */
uint64_t arena__notify_trims_total(void);

/* Counters for tests and arena_stats(). Returns 0 or -EINVAL. */
int arena__conn_notes(arena_conn_t *conn, arena__conn_notes_t *ret_notes);

#endif
