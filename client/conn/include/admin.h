/* SPDX-License-Identifier: MIT
 *
 * admin.h -- internal admin and introspection calls for arenactl: status,
 * clients, leases, reclaim, metrics, as plain C structs.
 *
 * Results that have no fixed size (lists, metrics text) are mmap'd by the
 * library and freed with their _free function (NULL-safe), so the calls keep
 * the connection layer's no-malloc rule. What the daemon lets the caller see
 * is the daemon's business (DESIGN.md §4, Admin); a refusal is -EPERM with the
 * daemon's text in arena__conn_last_error().
 *
 * Nothing here prints: arenactl (client/arenactl/) does.
 */
#ifndef ARENA_CLIENT_ADMIN_H
#define ARENA_CLIENT_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "records.h"

/* The admin records, defined once from their field lists (records.h) and
 * shared with the daemon and the wire adapter. Strings are NUL-terminated
 * arrays, cut to fit. */
typedef arena__rec_status_t arena__admin_status_t;
typedef arena__rec_client_t arena__admin_client_t;
typedef arena__rec_lease_t arena__admin_lease_t;
typedef arena__rec_event_t arena__admin_event_t; /* kind: ARENA__EVENT_* (wire.h) */

typedef struct arena__admin_events {
    size_t map_size;
    uint64_t dropped;  /* events after `since` the daemon's ring lost */
    uint64_t last_seq; /* the newest event the daemon has */
    size_t count;
    arena__admin_event_t items[];
} arena__admin_events_t;

/* Up to max (0: the daemon's page) events with seq > since, oldest first,
 * in a list mmap'd for the caller (free with arena__admin_events_free()).
 * Privileged callers only. Returns 0 and *ret_list, or -EPERM, -ENOMEM, the
 * connection's codes. Page through with since = the last seq seen. */
int arena__admin_events(arena_conn_t *conn, uint64_t since, uint32_t max,
                        arena__admin_events_t **ret_list);
void arena__admin_events_free(arena__admin_events_t *list);

/* A short name for an event kind ("grant", "refuse", ...). */
const char *arena__admin_event_kind(uint32_t kind);

typedef struct arena__admin_clients {
    size_t map_size; /* bytes mapped for this struct */
    size_t count;
    arena__admin_client_t items[];
} arena__admin_clients_t;

typedef struct arena__admin_leases {
    size_t map_size;
    size_t count;
    arena__admin_lease_t items[];
} arena__admin_leases_t;

typedef struct arena__admin_text {
    size_t map_size;
    size_t len;  /* bytes of text, without the NUL */
    char text[]; /* NUL-terminated */
} arena__admin_text_t;

/* Daemon status. Returns 0 and fills *ret_status, or -EINVAL (NULL) or an
 * exchange error (see arena__conn_call). conn NULL: the default connection. */
int arena__admin_status(arena_conn_t *conn, arena__admin_status_t *ret_status);

/* The clients the caller may see. Returns 0 and *ret_list (free with
 * arena__admin_clients_free), or a negative code. */
int arena__admin_clients(arena_conn_t *conn, arena__admin_clients_t **ret_list);
void arena__admin_clients_free(arena__admin_clients_t *list);

/* The leases the caller may see, of one client (client_id 0: all). Returns 0
 * and *ret_list (free with arena__admin_leases_free), or a negative code. */
int arena__admin_leases(arena_conn_t *conn, uint64_t client_id, arena__admin_leases_t **ret_list);
void arena__admin_leases_free(arena__admin_leases_t *list);

/* Asks the daemon to give up to `bytes` (0: all it can) back to the kernel,
 * from one client (client_id 0: everyone the caller may act on). Returns 0 and
 * the bytes reclaimed in *ret_bytes, or a negative code. */
int arena__admin_reclaim(arena_conn_t *conn, uint64_t bytes, uint64_t client_id,
                         uint64_t *ret_bytes);

/* The daemon's metrics in Prometheus text format. Returns 0 and *ret_text
 * (free with arena__admin_text_free), or a negative code. */
int arena__admin_metrics(arena_conn_t *conn, arena__admin_text_t **ret_text);
void arena__admin_text_free(arena__admin_text_t *text);

/* ---- heap map (`arenactl map`) ---------------------------------------------- */

/* One extent of a pool heap. state is ARENA__MAP_* (wire.h): free, dirty
 * (released, waiting for its punch), leased, parked, held (a previous
 * daemon's lease kept for its client); client_id names the holder of a
 * leased or parked extent, else 0. */
typedef struct arena__admin_map_extent {
    uint64_t offset;
    uint64_t length;
    uint32_t state;
    uint64_t client_id;
} arena__admin_map_extent_t;

/* One pool heap: its extents tile [0, heap_size) in address order (the
 * daemon's word; arenactl checks it before drawing). The byte figures are
 * exact even when the daemon merged extents to fit its frame (coalesced). */
typedef struct arena__admin_map_pool {
    uint32_t uid;
    uint64_t pool; /* the daemon's pool number */
    uint64_t heap_size;
    uint64_t granule;
    uint64_t leased_bytes; /* ACTIVE leases */
    uint64_t parked_bytes;
    uint64_t dirty_bytes;
    uint64_t free_bytes; /* clean free bytes */
    uint64_t held_bytes;
    uint64_t largest_free;  /* largest free extent, dirty pages included */
    uint64_t extents_total; /* extents before merging */
    bool coalesced;
    size_t count;
    const arena__admin_map_extent_t *extents; /* inside the same mapping */
} arena__admin_map_pool_t;

typedef struct arena__admin_map {
    size_t map_size;
    uint32_t pools_omitted; /* pools the daemon left out to fit its frame */
    size_t count;
    arena__admin_map_pool_t pools[]; /* then every pool's extents */
} arena__admin_map_t;

/* The heap map of the pools of uid (by_uid), or of every pool the caller
 * may see (all for a privileged caller, else those of its own uid), mmap'd
 * for the caller (free with arena__admin_map_free()). Returns 0 and
 * *ret_map, or -EPERM (another user's uid, unprivileged), -ENOENT (no pool
 * of that uid), -ENOMEM, the connection's codes. */
int arena__admin_map(arena_conn_t *conn, bool by_uid, uint32_t uid, arena__admin_map_t **ret_map);
void arena__admin_map_free(arena__admin_map_t *map);

#endif
