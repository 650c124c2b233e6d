/* SPDX-License-Identifier: MIT
 *
 * wire.c -- the daemon's only contact with protobuf-c.
 *
 * Requests come in as frame payloads from a peer we do not trust: the length
 * is checked against max_frame before unpack ever runs, unpack failures
 * (protobuf-c gives no reason) become -EPROTO, and strings are copied out,
 * capped and filtered, so nothing the decoder allocated outlives this file.
 * Replies go out as whole frames built from plain C structs that borrow their
 * strings and arrays, one encoder per reply type picked from a table; the
 * admin records convert through records_pb.h, generated from their field
 * lists. Stateless and reentrant.
 */
#include "wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arena.pb-c.h"
#include "records_pb.h"

_Static_assert((int)AD_WIRE_ERROR_PROTOCOL == (int)ARENA__V1__ERROR_CODE__ERROR_PROTOCOL,
               "error codes");
_Static_assert((int)AD_WIRE_ERROR_VERSION == (int)ARENA__V1__ERROR_CODE__ERROR_VERSION,
               "error codes");
_Static_assert((int)AD_WIRE_ERROR_INVALID_ARGUMENT ==
                   (int)ARENA__V1__ERROR_CODE__ERROR_INVALID_ARGUMENT,
               "error codes");
_Static_assert((int)AD_WIRE_ERROR_NO_MEMORY == (int)ARENA__V1__ERROR_CODE__ERROR_NO_MEMORY,
               "error codes");
_Static_assert((int)AD_WIRE_ERROR_TOO_LARGE == (int)ARENA__V1__ERROR_CODE__ERROR_TOO_LARGE,
               "error codes");
_Static_assert((int)AD_WIRE_ERROR_NOT_FOUND == (int)ARENA__V1__ERROR_CODE__ERROR_NOT_FOUND,
               "error codes");
_Static_assert((int)AD_WIRE_ERROR_NOT_OWNER == (int)ARENA__V1__ERROR_CODE__ERROR_NOT_OWNER,
               "error codes");
_Static_assert((int)AD_WIRE_ERROR_PERMISSION == (int)ARENA__V1__ERROR_CODE__ERROR_PERMISSION,
               "error codes");
_Static_assert((int)AD_WIRE_ERROR_LIMIT == (int)ARENA__V1__ERROR_CODE__ERROR_LIMIT, "error codes");
_Static_assert((int)AD_WIRE_ERROR_FRAME_TOO_LARGE ==
                   (int)ARENA__V1__ERROR_CODE__ERROR_FRAME_TOO_LARGE,
               "error codes");
_Static_assert((int)AD_WIRE_ERROR_INTERNAL == (int)ARENA__V1__ERROR_CODE__ERROR_INTERNAL,
               "error codes");
_Static_assert((int)AD_WIRE_ERROR_TIMED_OUT == (int)ARENA__V1__ERROR_CODE__ERROR_TIMED_OUT,
               "error codes");
_Static_assert((int)AD_WIRE_ERROR_CONFLICT == (int)ARENA__V1__ERROR_CODE__ERROR_CONFLICT,
               "error codes");

int ad_wire_frame_length(const uint8_t header[AD_WIRE_HEADER], size_t max_frame, size_t *ret_len)
{
    uint32_t len = (uint32_t)header[0] | (uint32_t)header[1] << 8 | (uint32_t)header[2] << 16 |
                   (uint32_t)header[3] << 24;
    *ret_len = len;
    return (size_t)len > max_frame ? -EMSGSIZE : 0;
}

/* Copies a client-supplied string, cut to cap bytes, printable ASCII only. */
static void wire_copy_name(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    for (; src && src[i] != '\0' && i < cap; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    dst[i] = '\0';
}

/* A token as sent, cut to fit (the cut is remembered: a cut token is no
 * token). Bytes are copied as they are; share.c parses them strictly. */
static void wire_copy_token(ad_wire_request_t *req, const char *src)
{
    size_t n = src ? strnlen(src, AD_WIRE_TOKEN_MAX) : 0;
    req->u.token.too_long = n == AD_WIRE_TOKEN_MAX;
    if (n == AD_WIRE_TOKEN_MAX)
        n--;
    if (n)
        memcpy(req->u.token.token, src, n);
    req->u.token.token[n] = '\0';
}

int ad_wire_decode(const uint8_t *payload, size_t len, size_t max_frame, ad_wire_request_t *ret_req)
{
    if ((!payload && len > 0) || !ret_req)
        return -EINVAL;
    if (len > max_frame)
        return -EMSGSIZE;
    Arena__V1__Envelope *env = arena__v1__envelope__unpack(NULL, len, payload);
    if (!env)
        return -EPROTO;

    ad_wire_request_t req;
    memset(&req, 0, sizeof(req));
    req.request_id = env->request_id;
    req.type = AD_WIRE_REQ_UNKNOWN;
    switch (env->body_case) {
    case ARENA__V1__ENVELOPE__BODY_HELLO:
        req.type = AD_WIRE_REQ_HELLO;
        req.u.hello.protocol_version = env->hello->protocol_version;
        wire_copy_name(req.u.hello.name, AD_WIRE_NAME_MAX, env->hello->client_name);
        req.u.hello.notifications = env->hello->notifications;
        req.u.hello.reattach = env->hello->reattach;
        break;
    case ARENA__V1__ENVELOPE__BODY_LEASE:
        req.type = AD_WIRE_REQ_LEASE;
        req.u.lease.size = env->lease->size;
        req.u.lease.wait_ms = env->lease->wait_ms;
        req.u.lease.flags = env->lease->flags;
        break;
    case ARENA__V1__ENVELOPE__BODY_SHARE:
        req.type = AD_WIRE_REQ_SHARE;
        req.u.share.lease_id = env->share->lease_id;
        req.u.share.flags = env->share->flags;
        req.u.share.restrict_uid = env->share->restrict_uid;
        req.u.share.uid = env->share->uid;
        break;
    case ARENA__V1__ENVELOPE__BODY_ATTACH:
        req.type = AD_WIRE_REQ_ATTACH;
        wire_copy_token(&req, env->attach->token);
        break;
    case ARENA__V1__ENVELOPE__BODY_UNSHARE:
        req.type = AD_WIRE_REQ_UNSHARE;
        wire_copy_token(&req, env->unshare->token);
        break;
    case ARENA__V1__ENVELOPE__BODY_RELEASE:
        req.type = AD_WIRE_REQ_RELEASE;
        req.u.release.lease_id = env->release->lease_id;
        break;
    case ARENA__V1__ENVELOPE__BODY_STATUS:
        req.type = AD_WIRE_REQ_STATUS;
        break;
    case ARENA__V1__ENVELOPE__BODY_LIST_CLIENTS:
        req.type = AD_WIRE_REQ_LIST_CLIENTS;
        break;
    case ARENA__V1__ENVELOPE__BODY_LIST_LEASES:
        req.type = AD_WIRE_REQ_LIST_LEASES;
        req.u.list_leases.client_id = env->list_leases->client_id;
        break;
    case ARENA__V1__ENVELOPE__BODY_RECLAIM:
        req.type = AD_WIRE_REQ_RECLAIM;
        req.u.reclaim.bytes = env->reclaim->bytes;
        req.u.reclaim.client_id = env->reclaim->client_id;
        break;
    case ARENA__V1__ENVELOPE__BODY_METRICS:
        req.type = AD_WIRE_REQ_METRICS;
        break;
    case ARENA__V1__ENVELOPE__BODY_EVENTS:
        req.type = AD_WIRE_REQ_EVENTS;
        req.u.events.since = env->events->since;
        req.u.events.max = env->events->max;
        break;
    case ARENA__V1__ENVELOPE__BODY_CLAIM: {
        size_t n = env->claim->n_claims;
        req.type = AD_WIRE_REQ_CLAIM;
        if (n > 0) {
            req.u.claim.items = calloc(n, sizeof(*req.u.claim.items));
            if (!req.u.claim.items) {
                arena__v1__envelope__free_unpacked(env, NULL);
                return -ENOMEM;
            }
        }
        for (size_t i = 0; i < n; i++) {
            const Arena__V1__LeaseClaim *c = env->claim->claims[i];
            req.u.claim.items[i] = (ad_wire_claim_t){c->lease_id, c->offset, c->size};
        }
        req.u.claim.count = n;
        break;
    }
    case ARENA__V1__ENVELOPE__BODY_MAP:
        req.type = AD_WIRE_REQ_MAP;
        req.u.map.uid = env->map->uid;
        req.u.map.by_uid = env->map->by_uid;
        break;
    default:
        /* No body, a reply, an error or a field we do not know: the caller
         * answers ERROR_PROTOCOL with this request id. */
        break;
    }
    arena__v1__envelope__free_unpacked(env, NULL);
    *ret_req = req;
    return 0;
}

void ad_wire_request_clear(ad_wire_request_t *req)
{
    if (!req)
        return;
    if (req->type == AD_WIRE_REQ_CLAIM)
        free(req->u.claim.items);
    memset(req, 0, sizeof(*req));
}

static char *wire_str(const char *s)
{
    return (char *)(s ? s : "");
}

/* ---- encoding: one encoder per reply type --------------------------------------- */

/* Packs env as a whole frame into a malloc'd buffer. 0, or -EINVAL (more
 * than 4 GiB), -ENOMEM; outputs untouched on failure. */
static int wire_pack(const Arena__V1__Envelope *env, uint8_t **ret_frame, size_t *ret_len)
{
    size_t packed = arena__v1__envelope__get_packed_size(env);
    if (packed > UINT32_MAX)
        return -EINVAL;
    uint8_t *frame = malloc(AD_WIRE_HEADER + packed);
    if (!frame)
        return -ENOMEM;
    frame[0] = (uint8_t)packed;
    frame[1] = (uint8_t)(packed >> 8);
    frame[2] = (uint8_t)(packed >> 16);
    frame[3] = (uint8_t)(packed >> 24);
    (void)arena__v1__envelope__pack(env, frame + AD_WIRE_HEADER);
    *ret_frame = frame;
    *ret_len = AD_WIRE_HEADER + packed;
    return 0;
}

/* The repeated sub-messages of a list reply: n items of item_size bytes and
 * the array of pointers to them that protobuf-c packs, in one allocation
 * (free(*ret_ptrs)). 0, or -ENOMEM; with n 0, *ret_ptrs is NULL. */
static int wire_items(size_t n, size_t item_size, void ***ret_ptrs)
{
    *ret_ptrs = NULL;
    if (n == 0)
        return 0;
    if (n > SIZE_MAX / sizeof(void *))
        return -ENOMEM;
    size_t ptrs = n * sizeof(void *);
    if (n > (SIZE_MAX - ptrs) / item_size)
        return -ENOMEM;
    void **p = calloc(1, ptrs + n * item_size);
    if (!p)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        p[i] = (char *)p + ptrs + i * item_size;
    *ret_ptrs = p;
    return 0;
}

/* Every encoder fills its body into env (whose request id is set), packs the
 * frame with wire_pack() while the body is still in scope, and returns as
 * ad_wire_encode(). */
typedef int (*wire_encoder_fn)(const ad_wire_reply_t *reply, Arena__V1__Envelope *env,
                               uint8_t **ret_frame, size_t *ret_len);

static int wire_enc_hello(const ad_wire_reply_t *reply, Arena__V1__Envelope *env,
                          uint8_t **ret_frame, size_t *ret_len)
{
    Arena__V1__HelloReply m = ARENA__V1__HELLO_REPLY__INIT;
    m.protocol_version = AD_WIRE_PROTOCOL;
    m.client_id = reply->u.hello.client_id;
    m.heap_size = reply->u.hello.heap_size;
    m.granule = reply->u.hello.granule;
    m.budget = reply->u.hello.budget;
    m.hugetlb = reply->u.hello.hugetlb;
    m.daemon_version = wire_str(reply->u.hello.daemon_version);
    m.control_slots = reply->u.hello.control_slots;
    m.grace_ms = reply->u.hello.grace_ms;
    env->body_case = ARENA__V1__ENVELOPE__BODY_HELLO_REPLY;
    env->hello_reply = &m;
    return wire_pack(env, ret_frame, ret_len);
}

static int wire_enc_lease(const ad_wire_reply_t *reply, Arena__V1__Envelope *env,
                          uint8_t **ret_frame, size_t *ret_len)
{
    Arena__V1__LeaseReply m = ARENA__V1__LEASE_REPLY__INIT;
    m.lease_id = reply->u.lease.lease_id;
    m.offset = reply->u.lease.offset;
    m.size = reply->u.lease.size;
    m.zeroed = reply->u.lease.zeroed;
    m.slot = reply->u.lease.slot;
    m.generation = reply->u.lease.generation;
    m.own_memory = reply->u.lease.own_memory;
    env->body_case = ARENA__V1__ENVELOPE__BODY_LEASE_REPLY;
    env->lease_reply = &m;
    return wire_pack(env, ret_frame, ret_len);
}

static int wire_enc_release(const ad_wire_reply_t *reply, Arena__V1__Envelope *env,
                            uint8_t **ret_frame, size_t *ret_len)
{
    Arena__V1__ReleaseReply m = ARENA__V1__RELEASE_REPLY__INIT;
    m.lease_id = reply->u.release.lease_id;
    env->body_case = ARENA__V1__ENVELOPE__BODY_RELEASE_REPLY;
    env->release_reply = &m;
    return wire_pack(env, ret_frame, ret_len);
}

static int wire_enc_status(const ad_wire_reply_t *reply, Arena__V1__Envelope *env,
                           uint8_t **ret_frame, size_t *ret_len)
{
    Arena__V1__StatusReply m = ARENA__V1__STATUS_REPLY__INIT;
    arena__rec_status_to_pb(&reply->u.status, &m);
    env->body_case = ARENA__V1__ENVELOPE__BODY_STATUS_REPLY;
    env->status_reply = &m;
    return wire_pack(env, ret_frame, ret_len);
}

static int wire_enc_clients(const ad_wire_reply_t *reply, Arena__V1__Envelope *env,
                            uint8_t **ret_frame, size_t *ret_len)
{
    Arena__V1__ListClientsReply m = ARENA__V1__LIST_CLIENTS_REPLY__INIT;
    size_t n = reply->u.clients.count;
    void **ptrs;
    int r = wire_items(n, sizeof(Arena__V1__ClientInfo), &ptrs);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n; i++) {
        arena__v1__client_info__init(ptrs[i]);
        arena__rec_client_to_pb(&reply->u.clients.items[i], ptrs[i]);
    }
    m.n_clients = n;
    m.clients = (Arena__V1__ClientInfo **)ptrs;
    env->body_case = ARENA__V1__ENVELOPE__BODY_LIST_CLIENTS_REPLY;
    env->list_clients_reply = &m;
    r = wire_pack(env, ret_frame, ret_len);
    free(ptrs);
    return r;
}

static int wire_enc_leases(const ad_wire_reply_t *reply, Arena__V1__Envelope *env,
                           uint8_t **ret_frame, size_t *ret_len)
{
    Arena__V1__ListLeasesReply m = ARENA__V1__LIST_LEASES_REPLY__INIT;
    size_t n = reply->u.leases.count;
    void **ptrs;
    int r = wire_items(n, sizeof(Arena__V1__LeaseInfo), &ptrs);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n; i++) {
        arena__v1__lease_info__init(ptrs[i]);
        arena__rec_lease_to_pb(&reply->u.leases.items[i], ptrs[i]);
    }
    m.n_leases = n;
    m.leases = (Arena__V1__LeaseInfo **)ptrs;
    env->body_case = ARENA__V1__ENVELOPE__BODY_LIST_LEASES_REPLY;
    env->list_leases_reply = &m;
    r = wire_pack(env, ret_frame, ret_len);
    free(ptrs);
    return r;
}

static int wire_enc_reclaim(const ad_wire_reply_t *reply, Arena__V1__Envelope *env,
                            uint8_t **ret_frame, size_t *ret_len)
{
    Arena__V1__ReclaimReply m = ARENA__V1__RECLAIM_REPLY__INIT;
    m.reclaimed_bytes = reply->u.reclaim.reclaimed_bytes;
    env->body_case = ARENA__V1__ENVELOPE__BODY_RECLAIM_REPLY;
    env->reclaim_reply = &m;
    return wire_pack(env, ret_frame, ret_len);
}

static int wire_enc_metrics(const ad_wire_reply_t *reply, Arena__V1__Envelope *env,
                            uint8_t **ret_frame, size_t *ret_len)
{
    Arena__V1__MetricsReply m = ARENA__V1__METRICS_REPLY__INIT;
    m.text = wire_str(reply->u.metrics.text);
    env->body_case = ARENA__V1__ENVELOPE__BODY_METRICS_REPLY;
    env->metrics_reply = &m;
    return wire_pack(env, ret_frame, ret_len);
}

static int wire_enc_error(const ad_wire_reply_t *reply, Arena__V1__Envelope *env,
                          uint8_t **ret_frame, size_t *ret_len)
{
    Arena__V1__Error m = ARENA__V1__ERROR__INIT;
    m.code = (Arena__V1__ErrorCode)reply->u.error.code;
    m.message = wire_str(reply->u.error.message);
    env->body_case = ARENA__V1__ENVELOPE__BODY_ERROR;
    env->error = &m;
    return wire_pack(env, ret_frame, ret_len);
}

static int wire_enc_events(const ad_wire_reply_t *reply, Arena__V1__Envelope *env,
                           uint8_t **ret_frame, size_t *ret_len)
{
    Arena__V1__EventsReply m = ARENA__V1__EVENTS_REPLY__INIT;
    size_t n = reply->u.events.count;
    void **ptrs;
    int r = wire_items(n, sizeof(Arena__V1__Event), &ptrs);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n; i++) {
        arena__v1__event__init(ptrs[i]);
        arena__rec_event_to_pb(&reply->u.events.items[i], ptrs[i]);
    }
    m.n_events = n;
    m.events = (Arena__V1__Event **)ptrs;
    m.dropped = reply->u.events.dropped;
    m.last_seq = reply->u.events.last_seq;
    env->body_case = ARENA__V1__ENVELOPE__BODY_EVENTS_REPLY;
    env->events_reply = &m;
    r = wire_pack(env, ret_frame, ret_len);
    free(ptrs);
    return r;
}

static int wire_enc_reclaimed(const ad_wire_reply_t *reply, Arena__V1__Envelope *env,
                              uint8_t **ret_frame, size_t *ret_len)
{
    Arena__V1__LeaseReclaimed m = ARENA__V1__LEASE_RECLAIMED__INIT;
    m.lease_id = reply->u.reclaimed.lease_id;
    m.size = reply->u.reclaimed.size;
    env->body_case = ARENA__V1__ENVELOPE__BODY_LEASE_RECLAIMED;
    env->lease_reclaimed = &m;
    return wire_pack(env, ret_frame, ret_len);
}

static int wire_enc_pressure(const ad_wire_reply_t *reply, Arena__V1__Envelope *env,
                             uint8_t **ret_frame, size_t *ret_len)
{
    Arena__V1__Pressure m = ARENA__V1__PRESSURE__INIT;
    m.bytes = reply->u.pressure.bytes;
    m.fair_share = reply->u.pressure.fair_share;
    m.leased = reply->u.pressure.leased;
    env->body_case = ARENA__V1__ENVELOPE__BODY_PRESSURE;
    env->pressure = &m;
    return wire_pack(env, ret_frame, ret_len);
}

static int wire_enc_claim(const ad_wire_reply_t *reply, Arena__V1__Envelope *env,
                          uint8_t **ret_frame, size_t *ret_len)
{
    Arena__V1__ClaimReply m = ARENA__V1__CLAIM_REPLY__INIT;
    size_t n = reply->u.claim.count;
    void **ptrs;
    int r = wire_items(n, sizeof(Arena__V1__ClaimResult), &ptrs);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n; i++) {
        const ad_wire_claim_result_t *c = &reply->u.claim.items[i];
        Arena__V1__ClaimResult *item = ptrs[i];
        arena__v1__claim_result__init(item);
        item->claimed_id = c->claimed_id;
        item->error = (Arena__V1__ErrorCode)c->error;
        item->lease_id = c->lease_id;
        item->slot = c->slot;
        item->generation = c->generation;
    }
    m.n_results = n;
    m.results = (Arena__V1__ClaimResult **)ptrs;
    env->body_case = ARENA__V1__ENVELOPE__BODY_CLAIM_REPLY;
    env->claim_reply = &m;
    r = wire_pack(env, ret_frame, ret_len);
    free(ptrs);
    return r;
}

static int wire_enc_share(const ad_wire_reply_t *reply, Arena__V1__Envelope *env,
                          uint8_t **ret_frame, size_t *ret_len)
{
    Arena__V1__ShareReply m = ARENA__V1__SHARE_REPLY__INIT;
    m.token = wire_str(reply->u.share.token);
    m.share_id = reply->u.share.share_id;
    env->body_case = ARENA__V1__ENVELOPE__BODY_SHARE_REPLY;
    env->share_reply = &m;
    return wire_pack(env, ret_frame, ret_len);
}

static int wire_enc_attach(const ad_wire_reply_t *reply, Arena__V1__Envelope *env,
                           uint8_t **ret_frame, size_t *ret_len)
{
    Arena__V1__AttachReply m = ARENA__V1__ATTACH_REPLY__INIT;
    m.lease_id = reply->u.attach.lease_id;
    m.offset = reply->u.attach.offset;
    m.size = reply->u.attach.size;
    m.read_only = reply->u.attach.read_only;
    m.own_memory = reply->u.attach.own_memory;
    m.owner_lease_id = reply->u.attach.owner_lease_id;
    env->body_case = ARENA__V1__ENVELOPE__BODY_ATTACH_REPLY;
    env->attach_reply = &m;
    return wire_pack(env, ret_frame, ret_len);
}

static int wire_enc_unshare(const ad_wire_reply_t *reply, Arena__V1__Envelope *env,
                            uint8_t **ret_frame, size_t *ret_len)
{
    Arena__V1__UnshareReply m = ARENA__V1__UNSHARE_REPLY__INIT;
    m.share_id = reply->u.unshare.share_id;
    env->body_case = ARENA__V1__ENVELOPE__BODY_UNSHARE_REPLY;
    env->unshare_reply = &m;
    return wire_pack(env, ret_frame, ret_len);
}

/* Indexed by ad_wire_reply_type_t; a gap is a type that cannot be encoded. */
static const wire_encoder_fn wire_encoders[] = {
    [AD_WIRE_REPLY_HELLO] = wire_enc_hello,
    [AD_WIRE_REPLY_LEASE] = wire_enc_lease,
    [AD_WIRE_REPLY_RELEASE] = wire_enc_release,
    [AD_WIRE_REPLY_STATUS] = wire_enc_status,
    [AD_WIRE_REPLY_LIST_CLIENTS] = wire_enc_clients,
    [AD_WIRE_REPLY_LIST_LEASES] = wire_enc_leases,
    [AD_WIRE_REPLY_RECLAIM] = wire_enc_reclaim,
    [AD_WIRE_REPLY_METRICS] = wire_enc_metrics,
    [AD_WIRE_REPLY_ERROR] = wire_enc_error,
    [AD_WIRE_REPLY_EVENTS] = wire_enc_events,
    [AD_WIRE_NOTE_LEASE_RECLAIMED] = wire_enc_reclaimed,
    [AD_WIRE_NOTE_PRESSURE] = wire_enc_pressure,
    [AD_WIRE_REPLY_CLAIM] = wire_enc_claim,
    [AD_WIRE_REPLY_SHARE] = wire_enc_share,
    [AD_WIRE_REPLY_ATTACH] = wire_enc_attach,
    [AD_WIRE_REPLY_UNSHARE] = wire_enc_unshare,
};

int ad_wire_encode(const ad_wire_reply_t *reply, uint8_t **ret_frame, size_t *ret_len)
{
    if (!reply || !ret_frame || !ret_len)
        return -EINVAL;
    size_t type = (size_t)reply->type;
    if (type >= sizeof(wire_encoders) / sizeof(wire_encoders[0]) || !wire_encoders[type])
        return -EINVAL;
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    env.request_id = reply->request_id;
    return wire_encoders[type](reply, &env, ret_frame, ret_len);
}

const char *ad_wire_req_name(ad_wire_req_type_t type)
{
    switch (type) {
    case AD_WIRE_REQ_HELLO:
        return "hello";
    case AD_WIRE_REQ_LEASE:
        return "lease";
    case AD_WIRE_REQ_RELEASE:
        return "release";
    case AD_WIRE_REQ_STATUS:
        return "status";
    case AD_WIRE_REQ_LIST_CLIENTS:
        return "list-clients";
    case AD_WIRE_REQ_LIST_LEASES:
        return "list-leases";
    case AD_WIRE_REQ_RECLAIM:
        return "reclaim";
    case AD_WIRE_REQ_METRICS:
        return "metrics";
    case AD_WIRE_REQ_EVENTS:
        return "events";
    case AD_WIRE_REQ_CLAIM:
        return "claim";
    case AD_WIRE_REQ_MAP:
        return "map";
    case AD_WIRE_REQ_SHARE:
        return "share";
    case AD_WIRE_REQ_ATTACH:
        return "attach";
    case AD_WIRE_REQ_UNSHARE:
        return "unshare";
    case AD_WIRE_REQ_UNKNOWN:
        break;
    }
    return "unknown";
}

/* ---- heap map ----------------------------------------------------------------- */

_Static_assert((int)AD_WIRE_MAP_FREE == (int)ARENA__V1__MAP_STATE__MAP_STATE_FREE, "map states");
_Static_assert((int)AD_WIRE_MAP_DIRTY == (int)ARENA__V1__MAP_STATE__MAP_STATE_DIRTY, "map states");
_Static_assert((int)AD_WIRE_MAP_LEASED == (int)ARENA__V1__MAP_STATE__MAP_STATE_LEASED,
               "map states");
_Static_assert((int)AD_WIRE_MAP_PARKED == (int)ARENA__V1__MAP_STATE__MAP_STATE_PARKED,
               "map states");
_Static_assert((int)AD_WIRE_MAP_HELD == (int)ARENA__V1__MAP_STATE__MAP_STATE_HELD, "map states");

/* Packs env behind its 4-byte length into a malloc'd frame. */
static int wire_frame(const Arena__V1__Envelope *env, uint8_t **ret_frame, size_t *ret_len)
{
    size_t packed = arena__v1__envelope__get_packed_size(env);
    if (packed > UINT32_MAX)
        return -EINVAL;
    uint8_t *frame = malloc(AD_WIRE_HEADER + packed);
    if (!frame)
        return -ENOMEM;
    frame[0] = (uint8_t)packed;
    frame[1] = (uint8_t)(packed >> 8);
    frame[2] = (uint8_t)(packed >> 16);
    frame[3] = (uint8_t)(packed >> 24);
    (void)arena__v1__envelope__pack(env, frame + AD_WIRE_HEADER);
    *ret_frame = frame;
    *ret_len = AD_WIRE_HEADER + packed;
    return 0;
}

int ad_wire_encode_map(uint64_t request_id, const ad_wire_map_t *map, uint8_t **ret_frame,
                       size_t *ret_len)
{
    if (!map || !ret_frame || !ret_len)
        return -EINVAL;
    size_t extents = 0;
    for (size_t i = 0; i < map->count; i++)
        extents += map->pools[i].count;
    size_t np = map->count ? map->count : 1, ne = extents ? extents : 1;
    Arena__V1__PoolMap *pools = calloc(np, sizeof(*pools));
    Arena__V1__PoolMap **pool_ptrs =
        calloc(np, sizeof(*pool_ptrs)); /* NOLINT(bugprone-sizeof-expression) */
    Arena__V1__MapExtent *items = calloc(ne, sizeof(*items));
    Arena__V1__MapExtent **item_ptrs =
        calloc(ne, sizeof(*item_ptrs)); /* NOLINT(bugprone-sizeof-expression) */
    int r = -ENOMEM;
    if (!pools || !pool_ptrs || !items || !item_ptrs)
        goto out;
    size_t k = 0;
    for (size_t i = 0; i < map->count; i++) {
        const ad_wire_map_pool_t *p = &map->pools[i];
        Arena__V1__PoolMap *pm = &pools[i];
        arena__v1__pool_map__init(pm);
        pm->uid = p->uid;
        pm->pool = p->serial;
        pm->heap_size = p->heap_size;
        pm->granule = p->granule;
        pm->leased_bytes = p->leased_bytes;
        pm->parked_bytes = p->parked_bytes;
        pm->dirty_bytes = p->dirty_bytes;
        pm->free_bytes = p->free_bytes;
        pm->held_bytes = p->held_bytes;
        pm->largest_free = p->largest_free;
        pm->extents_total = p->extents_total;
        pm->coalesced = p->coalesced;
        pm->n_extents = p->count;
        pm->extents = &item_ptrs[k];
        for (size_t j = 0; j < p->count; j++, k++) {
            const ad_wire_map_extent_t *e = &p->extents[j];
            arena__v1__map_extent__init(&items[k]);
            items[k].offset = e->offset;
            items[k].length = e->length;
            items[k].state = (Arena__V1__MapState)e->state;
            items[k].client_id = e->client_id;
            item_ptrs[k] = &items[k];
        }
        pool_ptrs[i] = pm;
    }
    Arena__V1__MapReply reply = ARENA__V1__MAP_REPLY__INIT;
    reply.n_pools = map->count;
    reply.pools = pool_ptrs;
    reply.pools_omitted = map->pools_omitted;
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    env.request_id = request_id;
    env.body_case = ARENA__V1__ENVELOPE__BODY_MAP_REPLY;
    env.map_reply = &reply;
    r = wire_frame(&env, ret_frame, ret_len);
out:
    free(pools);
    free(pool_ptrs);
    free(items);
    free(item_ptrs);
    return r;
}
