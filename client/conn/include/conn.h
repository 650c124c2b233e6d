/* SPDX-License-Identifier: MIT
 *
 * conn.h -- the connection library's internal interface: what the allocator,
 * the preload library, arenactl and the tests may call, grouped by the file
 * that defines it. The public API is arena.h; the wire messages are wire.h;
 * the admin calls admin.h.
 *
 * Rule for everything behind this header: no malloc/free/calloc/realloc, ever,
 * and no printing. The preload library replaces malloc with the allocator,
 * which calls in here for leases, so any libc allocation on this path would
 * recurse. Memory comes from mmap; protobuf-c gets an allocator over
 * connection-owned scratch space. tests/unit checks both rules with nm.
 */
#ifndef ARENA_CLIENT_CONN_H
#define ARENA_CLIENT_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "wire.h"

/* ---- conn.c: one connection, its exchanges ---------------------------------- */

/* Called with the reply while the connection is still locked; the reply's
 * memory is valid only during the call. Returns 0 or a negative code, which
 * the exchange returns. */
typedef int (*arena__reply_fn)(void *ctx, const arena__msg_t *reply);

/* Sends req (its request_id is assigned here) and waits for the reply with
 * the same id, skipping notifications. A reply of kind `expect` goes to fn
 * (may be NULL); an Error reply is mapped with arena__error_from_wire() and
 * its text kept for arena__conn_last_error(); anything else is
 * ARENA_EPROTOCOL. An I/O failure marks the connection dead:
 * ARENA_EDISCONNECTED from then on; so does calling it in a fork child of
 * the process that connected. Returns 0, fn's result, or a code. */
int arena__conn_call(arena_conn_t *conn, const arena__msg_t *req, arena__msg_kind_t expect,
                     arena__reply_fn fn, void *ctx);

/* Copies the text of the daemon's last Error reply on this connection into
 * buf (NUL-terminated, "" if none). Returns buf. */
char *arena__conn_last_error(arena_conn_t *conn, char *buf, size_t len);

/* What HelloReply said. */
typedef struct arena__conn_info {
    uint64_t client_id;
    uint64_t heap_size;
    uint64_t granule;
    uint64_t budget;
    bool hugetlb;
    char daemon_version[64];
    char socket_path[108];
} arena__conn_info_t;

/* Fills *ret_info. Returns 0 or -EINVAL (NULL). */
int arena__conn_info(arena_conn_t *conn, arena__conn_info_t *ret_info);

/* The pool heap memfd (owned by the connection), or -1 if none. */
int arena__conn_pool_fd(arena_conn_t *conn);

/* The socket fd (owned by the connection); for tests that break it. */
int arena__conn_socket_fd(arena_conn_t *conn);

/* What the connection was when a lease reply arrived (a reconnect may
 * change it the moment the exchange is over). */
typedef struct arena__lease_call {
    uint32_t epoch;          /* the daemon that granted it */
    int pool_fd;             /* a dup of that daemon's pool memfd; the caller closes it */
    int own_fd;              /* the fd that came with the reply (own memory), or -1; ditto */
    arena__conn_info_t info; /* that daemon's HelloReply */
} arena__lease_call_t;

/* arena__conn_call() of a request answered by a lease (LeaseRequest:
 * LeaseReply, AttachRequest: AttachReply; `expect`), which also fills
 * *ret_call as of the reply (pool_fd and own_fd -1 on failure). */
int arena__conn_call_lease(arena_conn_t *conn, const arena__msg_t *req, arena__msg_kind_t expect,
                           arena__reply_fn fn, void *ctx, arena__lease_call_t *ret_call);

/* Tells the daemon of `epoch` that lease daemon_id is released; nothing is
 * sent when that daemon is gone (the lease was not claimed from the next
 * one, which frees it when its grace period ends). Returns 0 or a code. */
int arena__conn_release_remote(arena_conn_t *conn, uint64_t daemon_id, uint32_t epoch);

/* ---- table.c: the leases a connection holds --------------------------------- */

/* Records a mapped lease. Returns 0, or -ENOMEM (the table cannot grow),
 * -EEXIST (id already tracked), ARENA_EDISCONNECTED (in a fork child). */
int arena__conn_track(arena_conn_t *conn, uint64_t id, void *addr, size_t size);

/* Forgets the lease `id` if it is tracked with exactly addr and size.
 * Returns 0, or ARENA_ERECLAIMED (forgotten, but the lease was already gone:
 * reclaimed by the daemon or released by a trim, and unmapped -- do not
 * unmap or release it again), -ENOENT (unknown id), -EINVAL (id known,
 * addr/size differ), ARENA_EDISCONNECTED (in a fork child: the table is the
 * parent's). */
int arena__conn_untrack(arena_conn_t *conn, uint64_t id, const void *addr, size_t size);

/* Records a lease granted as daemon_id at offset of the pool, by the daemon
 * of `epoch` (-ESTALE when the connection has reconnected since: the lease
 * was never claimed, do not use it). The caller
 * knows it by *ret_id: daemon_id, unless an earlier daemon's lease the
 * caller still holds has that id (then a private id with the top bit set).
 * Returns as arena__conn_track(). */
int arena__conn_track_lease(arena_conn_t *conn, uint64_t daemon_id, uint64_t offset, void *addr,
                            size_t size, uint32_t epoch, uint64_t *ret_id);

/* arena_release(): forgets the lease (as arena__conn_untrack()), unmaps it
 * and tells the daemon that granted it, if that daemon still runs (after a
 * restart, an unclaimed lease is freed by the new daemon's grace period).
 * Returns 0, or the untrack errors, or the daemon's answer. */
int arena__conn_release(arena_conn_t *conn, uint64_t id, void *addr, size_t size);

/* Moves the mapping of a tracked, active (not parked) lease from addr to
 * new_addr, pages and all (mremap(MREMAP_FIXED): no page is copied or
 * faulted again), and records the new address. Whatever was mapped at
 * [new_addr, new_addr + size) is replaced: the caller owns that range (a
 * reservation of its own). Returns 0, or -ENOENT (unknown id), -EINVAL (id
 * known, addr/size differ, or parked or gone), ARENA_EDISCONNECTED (in a fork
 * child), or the mremap error (nothing moved). */
int arena__conn_move(arena_conn_t *conn, uint64_t id, void *addr, size_t size, void *new_addr);

/* Marks a tracked lease as one with memory of its own (a memfd, no pool
 * offset): a restarted daemon is never asked to take it back; it stays
 * mapped as it is, shared with whoever else maps it. Returns 0 or -ENOENT. */
int arena__conn_set_own_memory(arena_conn_t *conn, uint64_t id);

/* Number of leases tracked on the connection. */
size_t arena__conn_tracked(arena_conn_t *conn);

/* ---- park.c: parking leases through the control region ---------------------- */

/* ACTIVE -> PARKED: mprotect(PROT_NONE), then the release store of PARKED
 * into the lease's state word. Call only when nothing in the lease is live.
 * conn NULL: the default connection. Returns as arena_lease_park(). */
int arena__lease_park(arena_conn_t *conn, const arena_lease_t *lease);

/* PARKED -> ACTIVE by CAS (acquire), then mprotect(READ|WRITE). Returns 0,
 * or ARENA_ERECLAIMED when the daemon took the lease: it is unmapped and no
 * longer in the connection's table (do not unmap or release it). Other
 * returns as arena_lease_unpark(). */
int arena__lease_unpark(arena_conn_t *conn, const arena_lease_t *lease);

/* Records the control slot and generation of a tracked lease, after checking
 * that the word says ACTIVE at that generation. Returns 0, -ENOENT (not
 * tracked), -ENOTSUP (no control region, or slot out of range),
 * ARENA_EPROTOCOL (the word says something else). */
int arena__conn_set_control(arena_conn_t *conn, uint64_t id, uint32_t slot, uint64_t generation);

/* Releases every parked (not yet taken) lease of conn: unmapped now, their
 * owners' unparks return ARENA_ERECLAIMED. Returns the bytes released. */
long long arena__conn_release_parked(arena_conn_t *conn);

/* ---- notify.c: notifications and the trim hook ------------------------------ */

/* The trim hook: called (outside every connection lock, one thread at a
 * time per connection) when a Pressure notification arrived. It should
 * give memory back at once (purge, park, release) and return the bytes it
 * gave back or a negative code. NULL (the default): parked raw leases of the
 * connection are released. The allocator registers its own once. */
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

/* ---- lease.c: raw leases ------------------------------------------------------ */

/* Like arena_lease(), but maps the lease at an address aligned to `align` (a
 * power of two >= the page size), whatever its size. conn NULL: default. */
int arena__conn_lease_aligned(arena_conn_t *conn, size_t size, size_t align, int wait_ms,
                              arena_lease_t *ret_lease);

/* Maps size bytes of private anonymous memory with prot at an address
 * aligned to align (a power of two, at least the page size): reserves size +
 * align bytes and unmaps the slack on both sides. PROT_NONE gives a
 * reservation to map over with MAP_FIXED. Returns the address, or NULL with
 * errno set. */
void *arena__conn_map_aligned(size_t size, size_t align, int prot);

/* Maps [offset, offset + size) of fd with prot, at an address aligned to
 * align (0: as arena_lease() aligns, from size and the connection's
 * granule). Returns 0 and *ret_addr, or -errno. */
int arena__conn_map_lease(int fd, uint64_t offset, size_t size, size_t align, int prot,
                          const arena__conn_info_t *info, void **ret_addr);

/* ---- share.c: sharing leases by token ------------------------------------------ */

/* arena_share() with the share restricted to uid (restrict_uid) or to the
 * caller's own uid. Returns as arena_share_uid(). */
int arena__conn_share(arena_conn_t *conn, const arena_lease_t *lease, unsigned flags,
                      bool restrict_uid, uint32_t uid, char *ret_token);

/* ---- error.c: error codes ----------------------------------------------------- */

/* The client code for a daemon error code: -EINVAL, -ENOMEM, ... (see
 * arena.h); ARENA_EPROTOCOL for codes we do not know. */
int arena__error_from_wire(int wire_code);

/* ---- default.c: the process-wide default connection ---------------------------- */

/* The process-wide default connection, made on first call from the
 * environment (thread-safe; concurrent first callers wait for one attempt; a
 * failed attempt is retried on a later call). Returns 0 and *ret_conn, or the
 * arena_connect() error. */
int arena__conn_default(arena_conn_t **ret_conn);

/* The connection a public call with `conn` means: *conn itself, or the
 * default connection when it is NULL (then stored into *conn). Returns 0, or
 * the arena__conn_default() error. */
int arena__conn_resolve(arena_conn_t **conn);

/* Tells the daemon, through the default connection's control region, how
 * many bytes the process holds live (shown by arenactl). No call, no lock,
 * no system call: one relaxed store, or nothing when there is no default
 * connection or no control region yet. Never from a fork child, whose
 * default connection and control region are still the parent's: the caller
 * tells (region.c stops publishing in its fork child handler). */
void arena__conn_publish_live(uint64_t live_bytes);

#endif
