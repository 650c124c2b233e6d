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
 * The second half declares arenactl's own helpers (client/arenactl.c), so the
 * unit tests can drive the CLI without a process per case.
 */
#ifndef ARENA_CLIENT_ADMIN_H
#define ARENA_CLIENT_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "arena.h"

typedef struct arena__admin_status {
    char daemon_version[64];
    uint64_t uptime_ms;
    uint64_t budget;
    uint64_t heap_size;
    uint64_t leased_bytes;
    uint64_t free_bytes;
    uint64_t dirty_bytes;
    uint64_t largest_free;
    uint64_t free_extents;
    double fragmentation;
    uint32_t clients;
    uint32_t pools;
    uint64_t leases;
    uint64_t leases_granted_total;
    uint64_t leases_released_total;
    uint64_t bytes_punched_total;
    uint64_t requests_refused_total;
    uint64_t protocol_errors_total;
    uint64_t connections_total;
    char socket_path[108];
    /* Bytes of a previous daemon's leases kept after a restart for their
     * clients to claim back; they count against the budget. */
    uint64_t restart_held_bytes;
} arena__admin_status_t;

typedef struct arena__admin_client {
    uint64_t client_id;
    uint32_t pid;
    uint32_t uid;
    uint32_t gid;
    char name[256]; /* truncated if longer */
    uint64_t leased_bytes;
    uint64_t leases;
    uint64_t connected_ms;
    uint64_t parked_bytes;  /* in leases whose state word says PARKED */
    uint64_t fair_share;    /* the client's max-min fair share now */
    uint32_t waiting;       /* queued lease requests */
    uint64_t waiting_bytes; /* bytes they ask for */
    uint32_t weight;
    uint64_t live_bytes; /* what the client's allocator says it holds live; <= leased */
} arena__admin_client_t;

typedef struct arena__admin_lease {
    uint64_t lease_id;
    uint64_t client_id;
    uint32_t uid;
    uint64_t offset;
    uint64_t size;
    bool zeroed;
    uint64_t age_ms;
    bool parked;
} arena__admin_lease_t;

/* One event of the daemon's log (see proto/arena.proto, Event). */
typedef struct arena__admin_event {
    uint64_t seq;
    uint64_t time_ms; /* daemon uptime */
    uint32_t kind;    /* ARENA__EVENT_* (wire.h) */
    uint64_t client_id;
    uint32_t pid;
    uint64_t bytes;
    uint64_t leased;
    uint64_t fair_share;
    uint64_t reclaimable;
    uint64_t budget_leased;
    uint64_t lease_id;
} arena__admin_event_t;

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

/* `arenactl events [--since N]`: prints every event after `since` (paging
 * through the daemon's log) as a table, or as one JSON document
 * {"events":[...],"dropped":N,"last_seq":N}. Returns 0 or a code. */
int arena__ctl_print_events(arena_conn_t *conn, uint64_t since, bool json, FILE *out);

/* `arenactl shares`: per client leased, parked, fair share and waiting
 * requests, as a table or one JSON document {"clients":[...]}. Returns 0 or
 * a code. */
int arena__ctl_print_shares(arena_conn_t *conn, bool json, FILE *out);

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

/* ---- arenactl helpers (client/arenactl.c; not part of the library) ---------- */

/* Writes s as a JSON string literal (quotes included) to out: ", \ and
 * control characters escaped, bytes >= 0x80 copied as they are when they
 * form valid UTF-8 and replaced by U+FFFD otherwise, so the output is always
 * valid JSON. */
void arena__json_string(FILE *out, const char *s);

/* Writes a JSON number for v (null when v is not finite). */
void arena__json_double(FILE *out, double v);

/* Writes Prometheus text as one JSON document:
 * {"format": ..., "text": the text as is, "samples": [{"name", "labels":
 * {...}, "value"}]}. Comment lines and lines that are not well-formed
 * samples are left out of "samples" (they stay in "text"); values that are
 * not finite (NaN, +Inf) become null. */
void arena__metrics_json(FILE *out, const char *text);

/* Parsed arenactl command line. */
typedef enum arena__ctl_cmd {
    ARENA__CTL_NONE = 0,
    ARENA__CTL_STATUS,
    ARENA__CTL_CLIENTS,
    ARENA__CTL_LEASES,
    ARENA__CTL_RECLAIM,
    ARENA__CTL_METRICS,
    ARENA__CTL_HELP,
    ARENA__CTL_VERSION,
} arena__ctl_cmd_t;

typedef struct arena__ctl_args {
    arena__ctl_cmd_t cmd;
    arena__ctl_cmd_t help_for; /* with ARENA__CTL_HELP: the command asked about, or NONE */
    const char *socket;        /* NULL: the default */
    bool json;
    uint64_t client_id; /* leases, reclaim: 0 = all */
    uint64_t bytes;     /* reclaim: 0 = all */
} arena__ctl_args_t;

/* Parses argv. Returns 0 and *ret_args, or -EINVAL with one line explaining
 * the problem written to err. */
int arena__ctl_parse(int argc, char **argv, FILE *err, arena__ctl_args_t *ret_args);

/* Runs arenactl: output to out, diagnostics to err. Returns the exit code:
 * 0 success, 1 the daemon refused, 2 usage error or no daemon. */
int arena__ctl_main(int argc, char **argv, FILE *out, FILE *err);

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
