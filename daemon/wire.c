/* SPDX-License-Identifier: MIT
 *
 * wire.c -- the daemon's only contact with protobuf-c.
 *
 * Requests come in as frame payloads from a peer we do not trust: the length
 * is checked against max_frame before unpack ever runs, unpack failures
 * (protobuf-c gives no reason) become -EPROTO, and strings are copied out,
 * capped and filtered, so nothing the decoder allocated outlives this file.
 * Replies go out as whole frames built from plain C structs that borrow their
 * strings and arrays. Stateless and reentrant.
 */
#include "wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arena.pb-c.h"

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

int ad_wire_encode(const ad_wire_reply_t *reply, uint8_t **ret_frame, size_t *ret_len)
{
    if (!reply || !ret_frame || !ret_len)
        return -EINVAL;

    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__HelloReply hello = ARENA__V1__HELLO_REPLY__INIT;
    Arena__V1__LeaseReply lease = ARENA__V1__LEASE_REPLY__INIT;
    Arena__V1__ReleaseReply release = ARENA__V1__RELEASE_REPLY__INIT;
    Arena__V1__StatusReply status = ARENA__V1__STATUS_REPLY__INIT;
    Arena__V1__ListClientsReply clients = ARENA__V1__LIST_CLIENTS_REPLY__INIT;
    Arena__V1__ListLeasesReply leases = ARENA__V1__LIST_LEASES_REPLY__INIT;
    Arena__V1__ReclaimReply reclaim = ARENA__V1__RECLAIM_REPLY__INIT;
    Arena__V1__MetricsReply metrics = ARENA__V1__METRICS_REPLY__INIT;
    Arena__V1__Error error = ARENA__V1__ERROR__INIT;
    Arena__V1__EventsReply events = ARENA__V1__EVENTS_REPLY__INIT;
    Arena__V1__LeaseReclaimed reclaimed = ARENA__V1__LEASE_RECLAIMED__INIT;
    Arena__V1__Pressure pressure = ARENA__V1__PRESSURE__INIT;
    Arena__V1__ClaimReply claim = ARENA__V1__CLAIM_REPLY__INIT;
    Arena__V1__ClaimResult *claim_items = NULL, **claim_ptrs = NULL;
    Arena__V1__Event *event_items = NULL, **event_ptrs = NULL;
    Arena__V1__ClientInfo *client_items = NULL, **client_ptrs = NULL;
    Arena__V1__LeaseInfo *lease_items = NULL, **lease_ptrs = NULL;
    uint8_t *frame = NULL;
    int r = 0;

    env.request_id = reply->request_id;
    switch (reply->type) {
    case AD_WIRE_REPLY_HELLO:
        hello.protocol_version = AD_WIRE_PROTOCOL;
        hello.client_id = reply->u.hello.client_id;
        hello.heap_size = reply->u.hello.heap_size;
        hello.granule = reply->u.hello.granule;
        hello.budget = reply->u.hello.budget;
        hello.hugetlb = reply->u.hello.hugetlb;
        hello.daemon_version = wire_str(reply->u.hello.daemon_version);
        hello.control_slots = reply->u.hello.control_slots;
        hello.grace_ms = reply->u.hello.grace_ms;
        env.body_case = ARENA__V1__ENVELOPE__BODY_HELLO_REPLY;
        env.hello_reply = &hello;
        break;
    case AD_WIRE_REPLY_LEASE:
        lease.lease_id = reply->u.lease.lease_id;
        lease.offset = reply->u.lease.offset;
        lease.size = reply->u.lease.size;
        lease.zeroed = reply->u.lease.zeroed;
        lease.slot = reply->u.lease.slot;
        lease.generation = reply->u.lease.generation;
        env.body_case = ARENA__V1__ENVELOPE__BODY_LEASE_REPLY;
        env.lease_reply = &lease;
        break;
    case AD_WIRE_REPLY_RELEASE:
        release.lease_id = reply->u.release.lease_id;
        env.body_case = ARENA__V1__ENVELOPE__BODY_RELEASE_REPLY;
        env.release_reply = &release;
        break;
    case AD_WIRE_REPLY_STATUS: {
        const ad_wire_status_t *s = &reply->u.status;
        status.daemon_version = wire_str(s->daemon_version);
        status.socket_path = wire_str(s->socket_path);
        status.uptime_ms = s->uptime_ms;
        status.budget = s->budget;
        status.heap_size = s->heap_size;
        status.leased_bytes = s->leased_bytes;
        status.free_bytes = s->free_bytes;
        status.dirty_bytes = s->dirty_bytes;
        status.largest_free = s->largest_free;
        status.free_extents = s->free_extents;
        status.fragmentation = s->fragmentation;
        status.clients = s->clients;
        status.pools = s->pools;
        status.leases = s->leases;
        status.leases_granted_total = s->leases_granted_total;
        status.leases_released_total = s->leases_released_total;
        status.bytes_punched_total = s->bytes_punched_total;
        status.requests_refused_total = s->requests_refused_total;
        status.protocol_errors_total = s->protocol_errors_total;
        status.connections_total = s->connections_total;
        status.restart_held_bytes = s->restart_held_bytes;
        env.body_case = ARENA__V1__ENVELOPE__BODY_STATUS_REPLY;
        env.status_reply = &status;
        break;
    }
    case AD_WIRE_REPLY_LIST_CLIENTS: {
        size_t n = reply->u.clients.count;
        if (n > 0) {
            client_items = calloc(n, sizeof(*client_items));
            client_ptrs = calloc(n, sizeof(*client_ptrs)); /* NOLINT(bugprone-sizeof-expression) */
            if (!client_items || !client_ptrs) {
                r = -ENOMEM;
                goto out;
            }
        }
        for (size_t i = 0; i < n; i++) {
            const ad_wire_client_info_t *c = &reply->u.clients.items[i];
            arena__v1__client_info__init(&client_items[i]);
            client_items[i].client_id = c->client_id;
            client_items[i].pid = c->pid;
            client_items[i].uid = c->uid;
            client_items[i].gid = c->gid;
            client_items[i].name = wire_str(c->name);
            client_items[i].leased_bytes = c->leased_bytes;
            client_items[i].leases = c->leases;
            client_items[i].connected_ms = c->connected_ms;
            client_items[i].parked_bytes = c->parked_bytes;
            client_items[i].fair_share = c->fair_share;
            client_items[i].waiting = c->waiting;
            client_items[i].waiting_bytes = c->waiting_bytes;
            client_items[i].weight = c->weight;
            client_items[i].live_bytes = c->live_bytes;
            client_ptrs[i] = &client_items[i];
        }
        clients.n_clients = n;
        clients.clients = client_ptrs;
        env.body_case = ARENA__V1__ENVELOPE__BODY_LIST_CLIENTS_REPLY;
        env.list_clients_reply = &clients;
        break;
    }
    case AD_WIRE_REPLY_LIST_LEASES: {
        size_t n = reply->u.leases.count;
        if (n > 0) {
            lease_items = calloc(n, sizeof(*lease_items));
            lease_ptrs = calloc(n, sizeof(*lease_ptrs)); /* NOLINT(bugprone-sizeof-expression) */
            if (!lease_items || !lease_ptrs) {
                r = -ENOMEM;
                goto out;
            }
        }
        for (size_t i = 0; i < n; i++) {
            const ad_wire_lease_info_t *l = &reply->u.leases.items[i];
            arena__v1__lease_info__init(&lease_items[i]);
            lease_items[i].lease_id = l->lease_id;
            lease_items[i].client_id = l->client_id;
            lease_items[i].uid = l->uid;
            lease_items[i].offset = l->offset;
            lease_items[i].size = l->size;
            lease_items[i].zeroed = l->zeroed;
            lease_items[i].age_ms = l->age_ms;
            lease_items[i].parked = l->parked;
            lease_ptrs[i] = &lease_items[i];
        }
        leases.n_leases = n;
        leases.leases = lease_ptrs;
        env.body_case = ARENA__V1__ENVELOPE__BODY_LIST_LEASES_REPLY;
        env.list_leases_reply = &leases;
        break;
    }
    case AD_WIRE_REPLY_RECLAIM:
        reclaim.reclaimed_bytes = reply->u.reclaim.reclaimed_bytes;
        env.body_case = ARENA__V1__ENVELOPE__BODY_RECLAIM_REPLY;
        env.reclaim_reply = &reclaim;
        break;
    case AD_WIRE_REPLY_METRICS:
        metrics.text = wire_str(reply->u.metrics.text);
        env.body_case = ARENA__V1__ENVELOPE__BODY_METRICS_REPLY;
        env.metrics_reply = &metrics;
        break;
    case AD_WIRE_REPLY_EVENTS: {
        size_t n = reply->u.events.count;
        if (n > 0) {
            event_items = calloc(n, sizeof(*event_items));
            event_ptrs = calloc(n, sizeof(*event_ptrs)); /* NOLINT(bugprone-sizeof-expression) */
            if (!event_items || !event_ptrs) {
                r = -ENOMEM;
                goto out;
            }
        }
        for (size_t i = 0; i < n; i++) {
            const ad_wire_event_t *e = &reply->u.events.items[i];
            arena__v1__event__init(&event_items[i]);
            event_items[i].seq = e->seq;
            event_items[i].time_ms = e->time_ms;
            event_items[i].kind = (Arena__V1__EventKind)e->kind;
            event_items[i].client_id = e->client_id;
            event_items[i].pid = e->pid;
            event_items[i].bytes = e->bytes;
            event_items[i].leased = e->leased;
            event_items[i].fair_share = e->fair_share;
            event_items[i].reclaimable = e->reclaimable;
            event_items[i].budget_leased = e->budget_leased;
            event_items[i].lease_id = e->lease_id;
            event_ptrs[i] = &event_items[i];
        }
        events.n_events = n;
        events.events = event_ptrs;
        events.dropped = reply->u.events.dropped;
        events.last_seq = reply->u.events.last_seq;
        env.body_case = ARENA__V1__ENVELOPE__BODY_EVENTS_REPLY;
        env.events_reply = &events;
        break;
    }
    case AD_WIRE_NOTE_LEASE_RECLAIMED:
        reclaimed.lease_id = reply->u.reclaimed.lease_id;
        reclaimed.size = reply->u.reclaimed.size;
        env.body_case = ARENA__V1__ENVELOPE__BODY_LEASE_RECLAIMED;
        env.lease_reclaimed = &reclaimed;
        break;
    case AD_WIRE_NOTE_PRESSURE:
        pressure.bytes = reply->u.pressure.bytes;
        pressure.fair_share = reply->u.pressure.fair_share;
        pressure.leased = reply->u.pressure.leased;
        env.body_case = ARENA__V1__ENVELOPE__BODY_PRESSURE;
        env.pressure = &pressure;
        break;
    case AD_WIRE_REPLY_CLAIM: {
        size_t n = reply->u.claim.count;
        if (n > 0) {
            claim_items = calloc(n, sizeof(*claim_items));
            claim_ptrs = calloc(n, sizeof(*claim_ptrs));
            if (!claim_items || !claim_ptrs) {
                r = -ENOMEM;
                goto out;
            }
        }
        for (size_t i = 0; i < n; i++) {
            const ad_wire_claim_result_t *c = &reply->u.claim.items[i];
            Arena__V1__ClaimResult *item = &claim_items[i];
            arena__v1__claim_result__init(item);
            item->claimed_id = c->claimed_id;
            item->error = (Arena__V1__ErrorCode)c->error;
            item->lease_id = c->lease_id;
            item->slot = c->slot;
            item->generation = c->generation;
            claim_ptrs[i] = item;
        }
        claim.n_results = n;
        claim.results = claim_ptrs;
        env.body_case = ARENA__V1__ENVELOPE__BODY_CLAIM_REPLY;
        env.claim_reply = &claim;
        break;
    }
    case AD_WIRE_REPLY_ERROR:
        error.code = (Arena__V1__ErrorCode)reply->u.error.code;
        error.message = wire_str(reply->u.error.message);
        env.body_case = ARENA__V1__ENVELOPE__BODY_ERROR;
        env.error = &error;
        break;
    default:
        return -EINVAL;
    }

    size_t packed = arena__v1__envelope__get_packed_size(&env);
    if (packed > UINT32_MAX) {
        r = -EINVAL;
        goto out;
    }
    frame = malloc(AD_WIRE_HEADER + packed);
    if (!frame) {
        r = -ENOMEM;
        goto out;
    }
    frame[0] = (uint8_t)packed;
    frame[1] = (uint8_t)(packed >> 8);
    frame[2] = (uint8_t)(packed >> 16);
    frame[3] = (uint8_t)(packed >> 24);
    (void)arena__v1__envelope__pack(&env, frame + AD_WIRE_HEADER);
    *ret_frame = frame;
    *ret_len = AD_WIRE_HEADER + packed;
out:
    free(claim_items);
    free(claim_ptrs);
    free(client_items);
    free(client_ptrs);
    free(lease_items);
    free(lease_ptrs);
    free(event_items);
    free(event_ptrs);
    return r;
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
