/* SPDX-License-Identifier: MIT
 *
 * wire.h -- the client's internal view of the arenad protocol, in plain C.
 *
 * wire.c is the only client file that sees the generated protobuf-c code; the
 * connection (conn.c), the raw leases (lease.c) and the admin calls (admin.c)
 * speak arena__msg_t. Decoding allocates from an arena__scratch_t: mmap'd
 * chunks owned by the connection and reset per message, so a decoded message
 * (its strings and arrays) stays valid only until the next decode into the
 * same scratch. Nothing here calls malloc (see conn.h).
 *
 * This header also carries the connection internals that lease.c and admin.c
 * share with conn.c: the request/reply exchange and the per-connection lease
 * table.
 */
#ifndef ARENA_CLIENT_WIRE_H
#define ARENA_CLIENT_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"

#define ARENA__PROTOCOL_VERSION 1u

/* Message kinds: one per Envelope body. */
typedef enum arena__msg_kind {
    ARENA__MSG_NONE = 0,
    ARENA__MSG_HELLO,
    ARENA__MSG_HELLO_REPLY,
    ARENA__MSG_LEASE,
    ARENA__MSG_LEASE_REPLY,
    ARENA__MSG_RELEASE,
    ARENA__MSG_RELEASE_REPLY,
    ARENA__MSG_STATUS,
    ARENA__MSG_STATUS_REPLY,
    ARENA__MSG_LIST_CLIENTS,
    ARENA__MSG_LIST_CLIENTS_REPLY,
    ARENA__MSG_LIST_LEASES,
    ARENA__MSG_LIST_LEASES_REPLY,
    ARENA__MSG_RECLAIM,
    ARENA__MSG_RECLAIM_REPLY,
    ARENA__MSG_METRICS,
    ARENA__MSG_METRICS_REPLY,
    ARENA__MSG_ERROR,
    ARENA__MSG_EVENTS,
    ARENA__MSG_EVENTS_REPLY,
    ARENA__MSG_LEASE_RECLAIMED, /* notification (request id 0) */
    ARENA__MSG_PRESSURE,        /* notification (request id 0) */
    ARENA__MSG_CLAIM,           /* re-registration after a daemon restart */
    ARENA__MSG_CLAIM_REPLY,
    ARENA__MSG_MAP, /* arenactl map */
    ARENA__MSG_MAP_REPLY,
} arena__msg_kind_t;

/* Claims per ClaimRequest: the encoder builds them on the stack. */
#define ARENA__CLAIM_BATCH 128u

/* A lease claimed back from a restarted daemon, and the answer. */
typedef struct arena__wire_claim {
    uint64_t lease_id; /* the id the previous daemon gave it */
    uint64_t offset;
    uint64_t size;
} arena__wire_claim_t;

typedef struct arena__wire_claim_result {
    uint64_t claimed_id;
    int error; /* ARENA__WIRE_ERROR_* */
    uint64_t lease_id;
    uint32_t slot;
    uint64_t generation;
} arena__wire_claim_result_t;

/* Daemon error codes, numbered as ErrorCode in proto/arena.proto. */
enum {
    ARENA__WIRE_ERROR_NONE = 0,
    ARENA__WIRE_ERROR_PROTOCOL = 1,
    ARENA__WIRE_ERROR_VERSION = 2,
    ARENA__WIRE_ERROR_INVALID_ARGUMENT = 3,
    ARENA__WIRE_ERROR_NO_MEMORY = 4,
    ARENA__WIRE_ERROR_TOO_LARGE = 5,
    ARENA__WIRE_ERROR_NOT_FOUND = 6,
    ARENA__WIRE_ERROR_NOT_OWNER = 7,
    ARENA__WIRE_ERROR_PERMISSION = 8,
    ARENA__WIRE_ERROR_LIMIT = 9,
    ARENA__WIRE_ERROR_FRAME_TOO_LARGE = 10,
    ARENA__WIRE_ERROR_INTERNAL = 11,
    ARENA__WIRE_ERROR_TIMED_OUT = 12,
    ARENA__WIRE_ERROR_CONFLICT = 13,
};

typedef struct arena__wire_status {
    const char *daemon_version;
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
    const char *socket_path;
    uint64_t restart_held_bytes; /* a previous daemon's leases not claimed back yet */
} arena__wire_status_t;

typedef struct arena__wire_client {
    uint64_t client_id;
    uint32_t pid;
    uint32_t uid;
    uint32_t gid;
    const char *name;
    uint64_t leased_bytes;
    uint64_t leases;
    uint64_t connected_ms;
    uint64_t parked_bytes;
    uint64_t fair_share;
    uint32_t waiting;
    uint64_t waiting_bytes;
    uint32_t weight;
    uint64_t live_bytes; /* what the client says it holds live (untrusted) */
} arena__wire_client_t;

typedef struct arena__wire_lease {
    uint64_t lease_id;
    uint64_t client_id;
    uint32_t uid;
    uint64_t offset;
    uint64_t size;
    bool zeroed;
    uint64_t age_ms;
    bool parked;
} arena__wire_lease_t;

/* Event kinds, numbered as EventKind in proto/arena.proto. */
enum {
    ARENA__EVENT_GRANT = 1,
    ARENA__EVENT_REFUSE = 2,
    ARENA__EVENT_RECLAIM = 3,
    ARENA__EVENT_PRESSURE = 4,
    ARENA__EVENT_QUEUE = 5,
};

typedef struct arena__wire_event {
    uint64_t seq;
    uint64_t time_ms;
    uint32_t kind;
    uint64_t client_id;
    uint32_t pid;
    uint64_t bytes;
    uint64_t leased;
    uint64_t fair_share;
    uint64_t reclaimable;
    uint64_t budget_leased;
    uint64_t lease_id;
} arena__wire_event_t;

/* Heap map states, numbered as MapState in proto/arena.proto. */
enum {
    ARENA__MAP_FREE = 1,
    ARENA__MAP_DIRTY = 2,
    ARENA__MAP_LEASED = 3,
    ARENA__MAP_PARKED = 4,
    ARENA__MAP_HELD = 5,
};

typedef struct arena__wire_map_extent {
    uint64_t offset;
    uint64_t length;
    uint32_t state; /* ARENA__MAP_* (or an unknown value) */
    uint64_t client_id;
} arena__wire_map_extent_t;

typedef struct arena__wire_map_pool {
    uint32_t uid;
    uint64_t pool;
    uint64_t heap_size;
    uint64_t granule;
    uint64_t leased_bytes;
    uint64_t parked_bytes;
    uint64_t dirty_bytes;
    uint64_t free_bytes;
    uint64_t held_bytes;
    uint64_t largest_free;
    uint64_t extents_total;
    bool coalesced;
    size_t count;
    arena__wire_map_extent_t *extents;
} arena__wire_map_pool_t;

/* One decoded or to-be-encoded message. Strings and arrays of a decoded
 * message live in the scratch it was decoded into; strings are never NULL. */
typedef struct arena__msg {
    uint64_t request_id;
    arena__msg_kind_t kind;
    union {
        struct {
            uint32_t protocol_version;
            const char *client_name;
            bool notifications;
            bool reattach; /* the frame carries the pool fd */
        } hello;
        struct {
            uint32_t protocol_version;
            uint64_t client_id;
            uint64_t heap_size;
            uint64_t granule;
            uint64_t budget;
            bool hugetlb;
            const char *daemon_version;
            uint32_t control_slots;
            uint64_t grace_ms;
        } hello_reply;
        struct {
            uint64_t size;
            int32_t wait_ms;
        } lease;
        struct {
            uint64_t lease_id;
            uint64_t offset;
            uint64_t size;
            bool zeroed;
            uint32_t slot;
            uint64_t generation;
        } lease_reply;
        struct {
            uint64_t lease_id;
        } release, release_reply;
        arena__wire_status_t status_reply;
        struct {
            size_t count;
            arena__wire_client_t *clients;
        } list_clients_reply;
        struct {
            uint64_t client_id;
        } list_leases;
        struct {
            size_t count;
            arena__wire_lease_t *leases;
        } list_leases_reply;
        struct {
            uint64_t bytes;
            uint64_t client_id;
        } reclaim;
        struct {
            uint64_t reclaimed_bytes;
        } reclaim_reply;
        struct {
            const char *text;
        } metrics_reply;
        struct {
            uint64_t since;
            uint32_t max;
        } events;
        struct {
            size_t count;
            arena__wire_event_t *events;
            uint64_t dropped;
            uint64_t last_seq;
        } events_reply;
        struct {
            uint64_t lease_id;
            uint64_t size;
        } lease_reclaimed;
        struct {
            uint64_t bytes;
            uint64_t fair_share;
            uint64_t leased;
        } pressure;
        struct {
            size_t count; /* at most ARENA__CLAIM_BATCH to encode */
            const arena__wire_claim_t *claims;
        } claim;
        struct {
            size_t count;
            arena__wire_claim_result_t *results;
        } claim_reply;
        struct {
            uint32_t uid;
            bool by_uid;
        } map;
        struct {
            size_t count;
            arena__wire_map_pool_t *pools;
            uint32_t pools_omitted;
        } map_reply;
        struct {
            int code; /* ARENA__WIRE_ERROR_* (or an unknown value) */
            const char *message;
        } error;
    } u;
} arena__msg_t;

/* ---- scratch memory ---------------------------------------------------------- */

/* A bump allocator over mmap'd chunks. Zero-initialise it before first use. */
typedef struct arena__scratch {
    void *first;  /* the chunk kept across resets (NULL until first use) */
    void *extra;  /* list of chunks beyond the first, unmapped on reset */
    size_t used;  /* bytes used in the current chunk */
    size_t total; /* bytes mapped in all chunks, capped by `limit` */
    size_t limit; /* 0: ARENA__SCRATCH_DEFAULT_LIMIT */
} arena__scratch_t;

#define ARENA__SCRATCH_DEFAULT_LIMIT ((size_t)128 * 1024 * 1024)

/* n bytes aligned to 16 from the scratch, or NULL when mmap fails or the
 * limit would be passed. */
void *arena__scratch_alloc(arena__scratch_t *scratch, size_t n);

/* Forgets every allocation; keeps the first chunk mapped. */
void arena__scratch_reset(arena__scratch_t *scratch);

/* Unmaps everything; the scratch may be used again afterwards. NULL-safe. */
void arena__scratch_destroy(arena__scratch_t *scratch);

/* ---- encoding and decoding --------------------------------------------------- */

/* Encodes msg as one frame (4-byte little-endian length, then the Envelope)
 * into buf. Every kind except the list replies can be encoded (the client only
 * sends requests; the others serve tests). Returns the frame length, or
 * -EINVAL (unknown kind or NULL), -EMSGSIZE (does not fit in cap). */
long arena__wire_encode(const arena__msg_t *msg, uint8_t *buf, size_t cap);

/* Decodes one Envelope (the frame body without its length) into *ret_msg,
 * allocating from scratch. Returns 0, or -EPROTO (malformed, or a body this
 * client does not know), -EMSGSIZE (len above ARENA_MAX_REPLY_FRAME), -ENOMEM
 * (scratch exhausted); *ret_msg is untouched on failure, except for -ENOMSG:
 * a well-formed envelope whose body is newer than this client, with
 * ret_msg->request_id set and kind ARENA__MSG_NONE. */
int arena__wire_decode(const uint8_t *body, size_t len, arena__scratch_t *scratch,
                       arena__msg_t *ret_msg);

/* The client code for a daemon error code: -EINVAL, -ENOMEM, ... (see
 * arena.h); ARENA_EPROTOCOL for codes we do not know. */
int arena__error_from_wire(int wire_code);

/* ---- connection internals (conn.c) ------------------------------------------ */

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

/* What the connection was when a lease reply arrived (a reconnect may
 * change it the moment the exchange is over). */
typedef struct arena__lease_call {
    uint32_t epoch;          /* the daemon that granted it */
    int pool_fd;             /* a dup of that daemon's pool memfd; the caller closes it */
    arena__conn_info_t info; /* that daemon's HelloReply */
} arena__lease_call_t;

/* arena__conn_call() of a LeaseRequest (expecting LeaseReply), which also
 * fills *ret_call as of the reply (pool_fd -1 on failure). */
int arena__conn_call_lease(arena_conn_t *conn, const arena__msg_t *req, arena__reply_fn fn,
                           void *ctx, arena__lease_call_t *ret_call);

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

/* Tells the daemon of `epoch` that lease daemon_id is released; nothing is
 * sent when that daemon is gone (the lease was not claimed from the next
 * one, which frees it when its grace period ends). Returns 0 or a code. */
int arena__conn_release_remote(arena_conn_t *conn, uint64_t daemon_id, uint32_t epoch);

/* Number of leases tracked on the connection. */
size_t arena__conn_tracked(arena_conn_t *conn);

#endif
