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
 */
#ifndef ARENA_CLIENT_WIRE_H
#define ARENA_CLIENT_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "records.h"

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
    ARENA__MSG_SHARE, /* sharing a lease by token */
    ARENA__MSG_SHARE_REPLY,
    ARENA__MSG_ATTACH,
    ARENA__MSG_ATTACH_REPLY,
    ARENA__MSG_UNSHARE,
    ARENA__MSG_UNSHARE_REPLY,
} arena__msg_kind_t;

#define ARENA__WIRE_LEASE_OWN_MEMORY 0x1u /* LeaseRequest.flags */

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

/* The admin records (status, client, lease, event) are defined once, from
 * their field lists in records.h, and shared with the daemon. */

/* Event kinds, numbered as EventKind in proto/arena.proto. */
enum {
    ARENA__EVENT_GRANT = 1,
    ARENA__EVENT_REFUSE = 2,
    ARENA__EVENT_RECLAIM = 3,
    ARENA__EVENT_PRESSURE = 4,
    ARENA__EVENT_QUEUE = 5,
    ARENA__EVENT_SHARE = 6,
    ARENA__EVENT_ATTACH = 7,
    ARENA__EVENT_DETACH = 8,
    ARENA__EVENT_UNSHARE = 9,
};

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
            uint32_t flags; /* ARENA__WIRE_LEASE_* */
        } lease;
        struct {
            uint64_t lease_id;
            uint64_t offset;
            uint64_t size;
            bool zeroed;
            uint32_t slot;
            uint64_t generation;
            bool own_memory; /* the frame carries the lease's memfd; offset 0 in it */
        } lease_reply;
        struct {
            uint64_t lease_id;
            uint32_t flags; /* ARENA_SHARE_* */
            bool restrict_uid;
            uint32_t uid;
        } share;
        struct {
            const char *token;
            uint64_t share_id;
        } share_reply;
        struct {
            const char *token;
        } attach, unshare;
        struct {
            uint64_t lease_id;
            uint64_t offset;
            uint64_t size;
            bool read_only;
            bool own_memory; /* the frame carries the memfd */
            uint64_t owner_lease_id;
        } attach_reply;
        struct {
            uint64_t share_id;
        } unshare_reply;
        struct {
            uint64_t lease_id;
        } release, release_reply;
        arena__rec_status_t status_reply;
        struct {
            size_t count;
            arena__rec_client_t *clients;
        } list_clients_reply;
        struct {
            uint64_t client_id;
        } list_leases;
        struct {
            size_t count;
            arena__rec_lease_t *leases;
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
            arena__rec_event_t *events;
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

#endif
