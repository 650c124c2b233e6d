/* SPDX-License-Identifier: MIT
 *
 * wire.h -- the daemon's protocol adapter: frames in, plain C structs out, and
 * replies back to frames. The rest of the daemon never sees protobuf-c.
 */
#ifndef AD_WIRE_H
#define AD_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "records.h"

#define AD_WIRE_HEADER   4u  /* little-endian payload length */
#define AD_WIRE_NAME_MAX 64u /* client names are cut to this many bytes */
#define AD_WIRE_PROTOCOL 1u  /* the protocol version this daemon speaks */

/* Mirrors arena.v1.ErrorCode (checked at compile time in wire.c). */
typedef enum ad_wire_error {
    AD_WIRE_ERROR_PROTOCOL = 1,
    AD_WIRE_ERROR_VERSION = 2,
    AD_WIRE_ERROR_INVALID_ARGUMENT = 3,
    AD_WIRE_ERROR_NO_MEMORY = 4,
    AD_WIRE_ERROR_TOO_LARGE = 5,
    AD_WIRE_ERROR_NOT_FOUND = 6,
    AD_WIRE_ERROR_NOT_OWNER = 7,
    AD_WIRE_ERROR_PERMISSION = 8,
    AD_WIRE_ERROR_LIMIT = 9,
    AD_WIRE_ERROR_FRAME_TOO_LARGE = 10,
    AD_WIRE_ERROR_INTERNAL = 11,
    AD_WIRE_ERROR_TIMED_OUT = 12,
    AD_WIRE_ERROR_CONFLICT = 13,
} ad_wire_error_t;

typedef enum ad_wire_req_type {
    AD_WIRE_REQ_UNKNOWN = 0, /* no body, or a body the daemon does not take */
    AD_WIRE_REQ_HELLO,
    AD_WIRE_REQ_LEASE,
    AD_WIRE_REQ_RELEASE,
    AD_WIRE_REQ_STATUS,
    AD_WIRE_REQ_LIST_CLIENTS,
    AD_WIRE_REQ_LIST_LEASES,
    AD_WIRE_REQ_RECLAIM,
    AD_WIRE_REQ_METRICS,
    AD_WIRE_REQ_EVENTS,
    AD_WIRE_REQ_CLAIM,
    AD_WIRE_REQ_MAP,
    AD_WIRE_REQ_SHARE,
    AD_WIRE_REQ_ATTACH,
    AD_WIRE_REQ_UNSHARE,
} ad_wire_req_type_t;

#define AD_WIRE_TOKEN_MAX                                                                          \
    64u /* token text with its NUL; longer ones are cut (and then refused)                         \
         */
#define AD_WIRE_LEASE_OWN_MEMORY 0x1u /* LeaseRequest.flags */

/* One lease a re-registering client claims (ClaimRequest). */
typedef struct ad_wire_claim {
    uint64_t lease_id; /* the id it had from the previous daemon */
    uint64_t offset;
    uint64_t size;
} ad_wire_claim_t;

/* One answer to a claim (ClaimReply); error 0: granted under lease_id. */
typedef struct ad_wire_claim_result {
    uint64_t claimed_id;
    uint32_t error; /* 0 or an ad_wire_error_t */
    uint64_t lease_id;
    uint32_t slot;
    uint64_t generation;
} ad_wire_claim_result_t;

/* One decoded request. Owns memory only for a claim (free it with
 * ad_wire_request_clear(); harmless for every other type). */
typedef struct ad_wire_request {
    uint64_t request_id;
    ad_wire_req_type_t type;
    union {
        struct {
            uint32_t protocol_version;
            char name[AD_WIRE_NAME_MAX + 1]; /* printable ASCII, others as '?' */
            bool notifications;              /* the client takes notifications */
            bool reattach;                   /* re-registration: the frame carries the pool fd */
        } hello;
        struct {
            uint64_t size;
            int32_t wait_ms;
            uint32_t flags; /* AD_WIRE_LEASE_* */
        } lease;
        struct {
            uint64_t lease_id;
        } release;
        struct {
            uint64_t lease_id;
            uint32_t flags;
            bool restrict_uid;
            uint32_t uid;
        } share;
        struct {
            /* attach and unshare: the token, cut to AD_WIRE_TOKEN_MAX - 1 bytes;
             * too_long says it was longer */
            char token[AD_WIRE_TOKEN_MAX];
            bool too_long;
        } token;
        struct {
            uint64_t client_id;
        } list_leases;
        struct {
            uint64_t bytes;
            uint64_t client_id;
        } reclaim;
        struct {
            uint64_t since;
            uint32_t max;
        } events;
        struct {
            ad_wire_claim_t *items; /* malloc'd */
            size_t count;
        } claim;
        struct {
            uint32_t uid;
            bool by_uid; /* false: every pool the caller may see */
        } map;
    } u;
} ad_wire_request_t;

/* The admin records, each defined once from its field list (records.h) and
 * shared with the client; the daemon fills them (admin.c) and wire.c encodes
 * them. Their strings are arrays, copied in. */
typedef arena__rec_status_t ad_wire_status_t;
typedef arena__rec_client_t ad_wire_client_info_t;
typedef arena__rec_lease_t ad_wire_lease_info_t;
typedef arena__rec_event_t ad_wire_event_t; /* kind: arena.v1.EventKind */

typedef enum ad_wire_reply_type {
    AD_WIRE_REPLY_HELLO = 1,
    AD_WIRE_REPLY_LEASE,
    AD_WIRE_REPLY_RELEASE,
    AD_WIRE_REPLY_STATUS,
    AD_WIRE_REPLY_LIST_CLIENTS,
    AD_WIRE_REPLY_LIST_LEASES,
    AD_WIRE_REPLY_RECLAIM,
    AD_WIRE_REPLY_METRICS,
    AD_WIRE_REPLY_ERROR,
    AD_WIRE_REPLY_EVENTS,
    AD_WIRE_NOTE_LEASE_RECLAIMED, /* notifications: request_id 0 */
    AD_WIRE_NOTE_PRESSURE,
    AD_WIRE_REPLY_CLAIM,
    AD_WIRE_REPLY_SHARE,
    AD_WIRE_REPLY_ATTACH,
    AD_WIRE_REPLY_UNSHARE,
} ad_wire_reply_type_t;

/* One reply to encode; borrows every pointer for the duration of the call. */
typedef struct ad_wire_reply {
    uint64_t request_id;
    ad_wire_reply_type_t type;
    union {
        struct {
            uint64_t client_id;
            uint64_t heap_size;
            uint64_t granule;
            uint64_t budget;
            bool hugetlb;
            const char *daemon_version;
            uint32_t control_slots;
            uint64_t grace_ms;
        } hello;
        struct {
            uint64_t lease_id;
            uint64_t offset;
            uint64_t size;
            bool zeroed;
            uint32_t slot;
            uint64_t generation;
            bool own_memory; /* the frame carries the lease's memfd */
        } lease;
        struct {
            uint64_t lease_id;
        } release;
        struct {
            const char *token;
            uint64_t share_id;
        } share;
        struct {
            uint64_t lease_id;
            uint64_t offset;
            uint64_t size;
            bool read_only;
            bool own_memory;
            uint64_t owner_lease_id;
        } attach;
        struct {
            uint64_t share_id;
        } unshare;
        ad_wire_status_t status;
        struct {
            const ad_wire_event_t *items;
            size_t count;
            uint64_t dropped;
            uint64_t last_seq;
        } events;
        struct {
            uint64_t lease_id;
            uint64_t size;
        } reclaimed;
        struct {
            uint64_t bytes;
            uint64_t fair_share;
            uint64_t leased;
        } pressure;
        struct {
            const ad_wire_client_info_t *items;
            size_t count;
        } clients;
        struct {
            const ad_wire_lease_info_t *items;
            size_t count;
        } leases;
        struct {
            uint64_t reclaimed_bytes;
        } reclaim;
        struct {
            const char *text;
        } metrics;
        struct {
            const ad_wire_claim_result_t *items;
            size_t count;
        } claim;
        struct {
            ad_wire_error_t code;
            const char *message;
        } error;
    } u;
} ad_wire_reply_t;

/* Reads the payload length from a frame header and checks it against
 * max_frame. Returns 0 and *ret_len, or -EMSGSIZE (longer than max_frame) with
 * *ret_len still set to the announced length, so the caller can log it.
 * A zero length is valid (an empty Envelope). */
int ad_wire_frame_length(const uint8_t header[AD_WIRE_HEADER], size_t max_frame, size_t *ret_len);

/* Decodes one frame payload (the bytes after the header). The length is
 * checked against max_frame before protobuf-c sees a byte.
 * Returns 0 and *ret_req (type AD_WIRE_REQ_UNKNOWN for an envelope without a
 * body the daemon takes; request_id is still set), -EMSGSIZE (len >
 * max_frame), -EPROTO (does not unpack), -ENOMEM. *ret_req is untouched on
 * failure. */
int ad_wire_decode(const uint8_t *payload, size_t len, size_t max_frame,
                   ad_wire_request_t *ret_req);

/* Frees what a decoded request owns (a claim's items) and empties it. */
void ad_wire_request_clear(ad_wire_request_t *req);

/* Encodes reply as a whole frame (header + Envelope) in a malloc'd buffer the
 * caller frees. Returns 0, *ret_frame and *ret_len, or -EINVAL (bad type,
 * more than 4 GiB), -ENOMEM. Outputs untouched on failure. */
int ad_wire_encode(const ad_wire_reply_t *reply, uint8_t **ret_frame, size_t *ret_len);

/* A short name for a request type, for logs ("hello", "lease", ...). */
const char *ad_wire_req_name(ad_wire_req_type_t type);

/* ---- heap map (MapRequest / MapReply) ---------------------------------------- */

/* Mirrors arena.v1.MapState (checked at compile time in wire.c); the
 * heap map of `arenactl map`, built by heapmap.c. */
typedef enum ad_wire_map_state {
    AD_WIRE_MAP_FREE = 1,   /* free and clean */
    AD_WIRE_MAP_DIRTY = 2,  /* free, a released lease's pages not yet punched */
    AD_WIRE_MAP_LEASED = 3, /* a lease whose state word is ACTIVE */
    AD_WIRE_MAP_PARKED = 4, /* a lease whose state word is PARKED */
    AD_WIRE_MAP_HELD = 5,   /* a previous daemon's lease kept for its client */
} ad_wire_map_state_t;

typedef struct ad_wire_map_extent {
    uint64_t offset;
    uint64_t length;
    uint32_t state;     /* ad_wire_map_state_t */
    uint64_t client_id; /* LEASED, PARKED: the holder; else 0 */
} ad_wire_map_extent_t;

typedef struct ad_wire_map_pool {
    uint32_t uid;
    uint64_t serial;
    uint64_t heap_size;
    uint64_t granule;
    uint64_t leased_bytes; /* the byte figures are exact, whatever was merged */
    uint64_t parked_bytes;
    uint64_t dirty_bytes;
    uint64_t free_bytes; /* clean only */
    uint64_t held_bytes;
    uint64_t largest_free;         /* dirty pages included, as placement sees it */
    uint64_t extents_total;        /* pieces before merging */
    bool coalesced;                /* extents were merged to stay under the cap */
    ad_wire_map_extent_t *extents; /* malloc'd; tile [0, heap_size) */
    size_t count;
} ad_wire_map_pool_t;

typedef struct ad_wire_map {
    ad_wire_map_pool_t *pools; /* malloc'd */
    size_t count;
    uint32_t pools_omitted; /* matching pools left out for the cap */
} ad_wire_map_t;

/* Encodes a MapReply to request_id as a whole frame, as ad_wire_encode()
 * does (same returns). */
int ad_wire_encode_map(uint64_t request_id, const ad_wire_map_t *map, uint8_t **ret_frame,
                       size_t *ret_len);

#endif
