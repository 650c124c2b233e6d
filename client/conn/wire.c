/* SPDX-License-Identifier: MIT
 *
 * wire.c -- the client's protobuf-c adapter, and the scratch memory it decodes
 * into.
 *
 * The only client file that includes arena.pb-c.h. Requests are packed into
 * a caller's buffer (protobuf_c_message_pack never allocates); replies are
 * unpacked with a ProtobufCAllocator over an arena__scratch_t, then copied
 * into plain-C arena__msg_t whose arrays come from the same scratch. So the
 * whole path runs without malloc, which the preload library requires. The
 * admin records convert through records_pb.h, generated from their field
 * lists (records.h).
 *
 * Trust: the bytes come from the daemon, which we trust to be arenad but not
 * to be bug-free: the length is checked before unpack, an unknown body is
 * -EPROTO, and strings are never NULL after decoding. Pure functions over
 * caller-owned memory; any thread, one scratch per thread at a time.
 */
#include "wire.h"

#include <errno.h>
#include <stdalign.h>
#include <string.h>
#include <sys/mman.h>

#include "arena.pb-c.h"
#include "records_pb.h"
#include "paths.h"

/* ---- scratch ------------------------------------------------------------------- */

/* Every chunk starts with this header; data follows at SCRATCH_HDR. */
typedef struct scratch_chunk {
    struct scratch_chunk *next; /* in the `extra` list */
    size_t size;                /* bytes mapped, header included */
} scratch_chunk_t;

#define SCRATCH_HDR         32u
#define SCRATCH_FIRST_CHUNK ((size_t)256 * 1024)

static scratch_chunk_t *scratch_map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    scratch_chunk_t *c = p;
    c->next = NULL;
    c->size = size;
    return c;
}

static scratch_chunk_t *scratch_current(const arena__scratch_t *s)
{
    return s->extra ? (scratch_chunk_t *)s->extra : (scratch_chunk_t *)s->first;
}

void *arena__scratch_alloc(arena__scratch_t *scratch, size_t n)
{
    size_t limit = scratch->limit ? scratch->limit : ARENA__SCRATCH_DEFAULT_LIMIT;
    if (n > limit)
        return NULL;
    n = (n + 15u) & ~(size_t)15u;
    if (!scratch->first) {
        scratch_chunk_t *c = scratch_map(SCRATCH_FIRST_CHUNK);
        if (!c)
            return NULL;
        scratch->first = c;
        scratch->used = SCRATCH_HDR;
        scratch->total = c->size;
    }
    scratch_chunk_t *cur = scratch_current(scratch);
    if (n > cur->size - scratch->used) {
        /* A new chunk at least twice the request, and growing with the total,
         * so a big reply costs a handful of mmaps. */
        size_t want = n + SCRATCH_HDR;
        size_t size = scratch->total > want * 2 ? scratch->total : want * 2;
        size = (size + 4095u) & ~(size_t)4095u;
        if (scratch->total + size > limit) {
            if (scratch->total + want > limit)
                return NULL;
            size = (want + 4095u) & ~(size_t)4095u;
        }
        scratch_chunk_t *c = scratch_map(size);
        if (!c)
            return NULL;
        c->next = scratch->extra;
        scratch->extra = c;
        scratch->used = SCRATCH_HDR;
        scratch->total += size;
        cur = c;
    }
    void *p = (char *)cur + scratch->used;
    scratch->used += n;
    return p;
}

void arena__scratch_reset(arena__scratch_t *scratch)
{
    scratch_chunk_t *c = scratch->extra;
    while (c) {
        scratch_chunk_t *next = c->next;
        (void)munmap(c, c->size);
        c = next;
    }
    scratch->extra = NULL;
    scratch->used = SCRATCH_HDR;
    scratch->total = scratch->first ? ((scratch_chunk_t *)scratch->first)->size : 0;
}

void arena__scratch_destroy(arena__scratch_t *scratch)
{
    if (!scratch)
        return;
    arena__scratch_reset(scratch);
    if (scratch->first) {
        scratch_chunk_t *c = scratch->first;
        (void)munmap(c, c->size);
    }
    scratch->first = NULL;
    scratch->used = 0;
    scratch->total = 0;
}

static void *scratch_pb_alloc(void *data, size_t size)
{
    return arena__scratch_alloc(data, size);
}

static void scratch_pb_free(void *data, void *ptr)
{
    /* Scratch memory goes back all at once on reset. */
    (void)data;
    (void)ptr;
}

/* ---- encoding ----------------------------------------------------------------- */

/* protobuf-c wants char * for strings it only reads when packing. */
static char *wire_str(const char *s)
{
    return (char *)(s ? s : "");
}

/* Writes the frame of env into buf (cap bytes): the 4-byte little-endian
 * length, then the packed envelope. */
static long wire_pack(const Arena__V1__Envelope *env, uint8_t *buf, size_t cap)
{
    size_t body = protobuf_c_message_get_packed_size(&env->base);
    if (body > UINT32_MAX || cap < ARENA_FRAME_HEADER || body > cap - ARENA_FRAME_HEADER)
        return -EMSGSIZE;
    buf[0] = (uint8_t)(body & 0xffu);
    buf[1] = (uint8_t)((body >> 8) & 0xffu);
    buf[2] = (uint8_t)((body >> 16) & 0xffu);
    buf[3] = (uint8_t)((body >> 24) & 0xffu);
    size_t packed = protobuf_c_message_pack(&env->base, buf + ARENA_FRAME_HEADER);
    if (packed != body)
        return -EINVAL; /* cannot happen: the sizes come from the same message */
    return (long)(ARENA_FRAME_HEADER + body);
}

/* A Claim, in a frame of its own (noinline): its item arrays take 7 KiB of
 * stack, which every other request (the preload's hello, lease and release
 * among them) would otherwise push its callees below, making two more pages
 * of each calling thread's stack resident. */
static __attribute__((noinline)) long wire_encode_claim(const arena__msg_t *msg, uint8_t *buf,
                                                        size_t cap)
{
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__ClaimRequest claim = ARENA__V1__CLAIM_REQUEST__INIT;
    Arena__V1__LeaseClaim items[ARENA__CLAIM_BATCH];
    Arena__V1__LeaseClaim *ptrs[ARENA__CLAIM_BATCH];

    if (msg->u.claim.count > ARENA__CLAIM_BATCH || (msg->u.claim.count && !msg->u.claim.claims))
        return -EINVAL;
    for (size_t i = 0; i < msg->u.claim.count; i++) {
        arena__v1__lease_claim__init(&items[i]);
        items[i].lease_id = msg->u.claim.claims[i].lease_id;
        items[i].offset = msg->u.claim.claims[i].offset;
        items[i].size = msg->u.claim.claims[i].size;
        ptrs[i] = &items[i];
    }
    claim.n_claims = msg->u.claim.count;
    claim.claims = ptrs;
    env.request_id = msg->request_id;
    env.body_case = ARENA__V1__ENVELOPE__BODY_CLAIM;
    env.claim = &claim;
    return wire_pack(&env, buf, cap);
}

long arena__wire_encode(const arena__msg_t *msg, uint8_t *buf, size_t cap)
{
    if (!msg || (!buf && cap))
        return -EINVAL;
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__Hello hello = ARENA__V1__HELLO__INIT;
    Arena__V1__HelloReply hello_reply = ARENA__V1__HELLO_REPLY__INIT;
    Arena__V1__LeaseRequest lease = ARENA__V1__LEASE_REQUEST__INIT;
    Arena__V1__LeaseReply lease_reply = ARENA__V1__LEASE_REPLY__INIT;
    Arena__V1__ReleaseRequest release = ARENA__V1__RELEASE_REQUEST__INIT;
    Arena__V1__ReleaseReply release_reply = ARENA__V1__RELEASE_REPLY__INIT;
    Arena__V1__StatusRequest status = ARENA__V1__STATUS_REQUEST__INIT;
    Arena__V1__StatusReply status_reply = ARENA__V1__STATUS_REPLY__INIT;
    Arena__V1__ListClientsRequest list_clients = ARENA__V1__LIST_CLIENTS_REQUEST__INIT;
    Arena__V1__ListLeasesRequest list_leases = ARENA__V1__LIST_LEASES_REQUEST__INIT;
    Arena__V1__ReclaimRequest reclaim = ARENA__V1__RECLAIM_REQUEST__INIT;
    Arena__V1__ReclaimReply reclaim_reply = ARENA__V1__RECLAIM_REPLY__INIT;
    Arena__V1__MetricsRequest metrics = ARENA__V1__METRICS_REQUEST__INIT;
    Arena__V1__MetricsReply metrics_reply = ARENA__V1__METRICS_REPLY__INIT;
    Arena__V1__Error error = ARENA__V1__ERROR__INIT;
    Arena__V1__EventsRequest events = ARENA__V1__EVENTS_REQUEST__INIT;
    Arena__V1__LeaseReclaimed lease_reclaimed = ARENA__V1__LEASE_RECLAIMED__INIT;
    Arena__V1__Pressure pressure = ARENA__V1__PRESSURE__INIT;
    Arena__V1__ShareRequest share = ARENA__V1__SHARE_REQUEST__INIT;
    Arena__V1__ShareReply share_reply = ARENA__V1__SHARE_REPLY__INIT;
    Arena__V1__AttachRequest attach = ARENA__V1__ATTACH_REQUEST__INIT;
    Arena__V1__AttachReply attach_reply = ARENA__V1__ATTACH_REPLY__INIT;
    Arena__V1__UnshareRequest unshare = ARENA__V1__UNSHARE_REQUEST__INIT;
    Arena__V1__UnshareReply unshare_reply = ARENA__V1__UNSHARE_REPLY__INIT;
    Arena__V1__MapRequest map = ARENA__V1__MAP_REQUEST__INIT;

    env.request_id = msg->request_id;
    switch (msg->kind) {
    case ARENA__MSG_HELLO:
        hello.protocol_version = msg->u.hello.protocol_version;
        hello.client_name = wire_str(msg->u.hello.client_name);
        hello.notifications = msg->u.hello.notifications;
        hello.reattach = msg->u.hello.reattach;
        env.body_case = ARENA__V1__ENVELOPE__BODY_HELLO;
        env.hello = &hello;
        break;
    case ARENA__MSG_HELLO_REPLY:
        hello_reply.protocol_version = msg->u.hello_reply.protocol_version;
        hello_reply.client_id = msg->u.hello_reply.client_id;
        hello_reply.heap_size = msg->u.hello_reply.heap_size;
        hello_reply.granule = msg->u.hello_reply.granule;
        hello_reply.budget = msg->u.hello_reply.budget;
        hello_reply.hugetlb = msg->u.hello_reply.hugetlb;
        hello_reply.daemon_version = wire_str(msg->u.hello_reply.daemon_version);
        hello_reply.control_slots = msg->u.hello_reply.control_slots;
        hello_reply.grace_ms = msg->u.hello_reply.grace_ms;
        env.body_case = ARENA__V1__ENVELOPE__BODY_HELLO_REPLY;
        env.hello_reply = &hello_reply;
        break;
    case ARENA__MSG_LEASE:
        lease.size = msg->u.lease.size;
        lease.wait_ms = msg->u.lease.wait_ms;
        lease.flags = msg->u.lease.flags;
        env.body_case = ARENA__V1__ENVELOPE__BODY_LEASE;
        env.lease = &lease;
        break;
    case ARENA__MSG_SHARE:
        share.lease_id = msg->u.share.lease_id;
        share.flags = msg->u.share.flags;
        share.restrict_uid = msg->u.share.restrict_uid;
        share.uid = msg->u.share.uid;
        env.body_case = ARENA__V1__ENVELOPE__BODY_SHARE;
        env.share = &share;
        break;
    case ARENA__MSG_SHARE_REPLY:
        share_reply.token = wire_str(msg->u.share_reply.token);
        share_reply.share_id = msg->u.share_reply.share_id;
        env.body_case = ARENA__V1__ENVELOPE__BODY_SHARE_REPLY;
        env.share_reply = &share_reply;
        break;
    case ARENA__MSG_ATTACH:
        attach.token = wire_str(msg->u.attach.token);
        env.body_case = ARENA__V1__ENVELOPE__BODY_ATTACH;
        env.attach = &attach;
        break;
    case ARENA__MSG_ATTACH_REPLY:
        attach_reply.lease_id = msg->u.attach_reply.lease_id;
        attach_reply.offset = msg->u.attach_reply.offset;
        attach_reply.size = msg->u.attach_reply.size;
        attach_reply.read_only = msg->u.attach_reply.read_only;
        attach_reply.own_memory = msg->u.attach_reply.own_memory;
        attach_reply.owner_lease_id = msg->u.attach_reply.owner_lease_id;
        env.body_case = ARENA__V1__ENVELOPE__BODY_ATTACH_REPLY;
        env.attach_reply = &attach_reply;
        break;
    case ARENA__MSG_UNSHARE:
        unshare.token = wire_str(msg->u.unshare.token);
        env.body_case = ARENA__V1__ENVELOPE__BODY_UNSHARE;
        env.unshare = &unshare;
        break;
    case ARENA__MSG_UNSHARE_REPLY:
        unshare_reply.share_id = msg->u.unshare_reply.share_id;
        env.body_case = ARENA__V1__ENVELOPE__BODY_UNSHARE_REPLY;
        env.unshare_reply = &unshare_reply;
        break;
    case ARENA__MSG_LEASE_REPLY:
        lease_reply.lease_id = msg->u.lease_reply.lease_id;
        lease_reply.offset = msg->u.lease_reply.offset;
        lease_reply.size = msg->u.lease_reply.size;
        lease_reply.zeroed = msg->u.lease_reply.zeroed;
        lease_reply.slot = msg->u.lease_reply.slot;
        lease_reply.generation = msg->u.lease_reply.generation;
        lease_reply.own_memory = msg->u.lease_reply.own_memory;
        env.body_case = ARENA__V1__ENVELOPE__BODY_LEASE_REPLY;
        env.lease_reply = &lease_reply;
        break;
    case ARENA__MSG_RELEASE:
        release.lease_id = msg->u.release.lease_id;
        env.body_case = ARENA__V1__ENVELOPE__BODY_RELEASE;
        env.release = &release;
        break;
    case ARENA__MSG_RELEASE_REPLY:
        release_reply.lease_id = msg->u.release_reply.lease_id;
        env.body_case = ARENA__V1__ENVELOPE__BODY_RELEASE_REPLY;
        env.release_reply = &release_reply;
        break;
    case ARENA__MSG_STATUS:
        env.body_case = ARENA__V1__ENVELOPE__BODY_STATUS;
        env.status = &status;
        break;
    case ARENA__MSG_STATUS_REPLY: {
        arena__rec_status_to_pb(&msg->u.status_reply, &status_reply);
        env.body_case = ARENA__V1__ENVELOPE__BODY_STATUS_REPLY;
        env.status_reply = &status_reply;
        break;
    }
    case ARENA__MSG_LIST_CLIENTS:
        env.body_case = ARENA__V1__ENVELOPE__BODY_LIST_CLIENTS;
        env.list_clients = &list_clients;
        break;
    case ARENA__MSG_LIST_LEASES:
        list_leases.client_id = msg->u.list_leases.client_id;
        env.body_case = ARENA__V1__ENVELOPE__BODY_LIST_LEASES;
        env.list_leases = &list_leases;
        break;
    case ARENA__MSG_RECLAIM:
        reclaim.bytes = msg->u.reclaim.bytes;
        reclaim.client_id = msg->u.reclaim.client_id;
        env.body_case = ARENA__V1__ENVELOPE__BODY_RECLAIM;
        env.reclaim = &reclaim;
        break;
    case ARENA__MSG_RECLAIM_REPLY:
        reclaim_reply.reclaimed_bytes = msg->u.reclaim_reply.reclaimed_bytes;
        env.body_case = ARENA__V1__ENVELOPE__BODY_RECLAIM_REPLY;
        env.reclaim_reply = &reclaim_reply;
        break;
    case ARENA__MSG_METRICS:
        env.body_case = ARENA__V1__ENVELOPE__BODY_METRICS;
        env.metrics = &metrics;
        break;
    case ARENA__MSG_METRICS_REPLY:
        metrics_reply.text = wire_str(msg->u.metrics_reply.text);
        env.body_case = ARENA__V1__ENVELOPE__BODY_METRICS_REPLY;
        env.metrics_reply = &metrics_reply;
        break;
    case ARENA__MSG_EVENTS:
        events.since = msg->u.events.since;
        events.max = msg->u.events.max;
        env.body_case = ARENA__V1__ENVELOPE__BODY_EVENTS;
        env.events = &events;
        break;
    case ARENA__MSG_LEASE_RECLAIMED:
        lease_reclaimed.lease_id = msg->u.lease_reclaimed.lease_id;
        lease_reclaimed.size = msg->u.lease_reclaimed.size;
        env.body_case = ARENA__V1__ENVELOPE__BODY_LEASE_RECLAIMED;
        env.lease_reclaimed = &lease_reclaimed;
        break;
    case ARENA__MSG_PRESSURE:
        pressure.bytes = msg->u.pressure.bytes;
        pressure.fair_share = msg->u.pressure.fair_share;
        pressure.leased = msg->u.pressure.leased;
        env.body_case = ARENA__V1__ENVELOPE__BODY_PRESSURE;
        env.pressure = &pressure;
        break;
    case ARENA__MSG_CLAIM:
        return wire_encode_claim(msg, buf, cap);
    case ARENA__MSG_MAP:
        map.uid = msg->u.map.uid;
        map.by_uid = msg->u.map.by_uid;
        env.body_case = ARENA__V1__ENVELOPE__BODY_MAP;
        env.map = &map;
        break;
    case ARENA__MSG_ERROR:
        error.code = (Arena__V1__ErrorCode)msg->u.error.code;
        error.message = wire_str(msg->u.error.message);
        env.body_case = ARENA__V1__ENVELOPE__BODY_ERROR;
        env.error = &error;
        break;
    default:
        return -EINVAL;
    }

    return wire_pack(&env, buf, cap);
}

/* ---- decoding ----------------------------------------------------------------- */

static const char *wire_in(const char *s)
{
    return s ? s : "";
}

/* An array of n elements of size bytes in the message's scratch memory; NULL
 * when n is 0, and when it does not fit (the caller answers -ENOMEM then). */
static void *wire_array(arena__scratch_t *scratch, size_t n, size_t size)
{
    if (n == 0 || n > SIZE_MAX / size)
        return NULL;
    return arena__scratch_alloc(scratch, n * size);
}

static int wire_decode_clients(const Arena__V1__ListClientsReply *r, arena__scratch_t *scratch,
                               arena__msg_t *out)
{
    arena__rec_client_t *v = wire_array(scratch, r->n_clients, sizeof(*v));
    if (r->n_clients && !v)
        return -ENOMEM;
    for (size_t i = 0; i < r->n_clients; i++) {
        const Arena__V1__ClientInfo *c = r->clients[i];
        if (!c)
            return -EPROTO;
        arena__rec_client_from_pb(c, &v[i]);
    }
    out->u.list_clients_reply.count = r->n_clients;
    out->u.list_clients_reply.clients = v;
    return 0;
}

static int wire_decode_leases(const Arena__V1__ListLeasesReply *r, arena__scratch_t *scratch,
                              arena__msg_t *out)
{
    arena__rec_lease_t *v = wire_array(scratch, r->n_leases, sizeof(*v));
    if (r->n_leases && !v)
        return -ENOMEM;
    for (size_t i = 0; i < r->n_leases; i++) {
        const Arena__V1__LeaseInfo *l = r->leases[i];
        if (!l)
            return -EPROTO;
        arena__rec_lease_from_pb(l, &v[i]);
    }
    out->u.list_leases_reply.count = r->n_leases;
    out->u.list_leases_reply.leases = v;
    return 0;
}

static int wire_decode_events(const Arena__V1__EventsReply *r, arena__scratch_t *scratch,
                              arena__msg_t *out)
{
    arena__rec_event_t *v = wire_array(scratch, r->n_events, sizeof(*v));
    if (r->n_events && !v)
        return -ENOMEM;
    for (size_t i = 0; i < r->n_events; i++) {
        const Arena__V1__Event *e = r->events[i];
        if (!e)
            return -EPROTO;
        arena__rec_event_from_pb(e, &v[i]);
    }
    out->u.events_reply.count = r->n_events;
    out->u.events_reply.events = v;
    out->u.events_reply.dropped = r->dropped;
    out->u.events_reply.last_seq = r->last_seq;
    return 0;
}

static int wire_decode_claims(const Arena__V1__ClaimReply *r, arena__scratch_t *scratch,
                              arena__msg_t *out)
{
    arena__wire_claim_result_t *v = wire_array(scratch, r->n_results, sizeof(*v));
    if (r->n_results && !v)
        return -ENOMEM;
    for (size_t i = 0; i < r->n_results; i++) {
        const Arena__V1__ClaimResult *c = r->results[i];
        if (!c)
            return -EPROTO;
        v[i] = (arena__wire_claim_result_t){
            .claimed_id = c->claimed_id,
            .error = (int)c->error,
            .lease_id = c->lease_id,
            .slot = c->slot,
            .generation = c->generation,
        };
    }
    out->u.claim_reply.count = r->n_results;
    out->u.claim_reply.results = v;
    return 0;
}

static int wire_decode_map(const Arena__V1__MapReply *r, arena__scratch_t *scratch, arena__msg_t *m)
{
    arena__wire_map_pool_t *pools = wire_array(scratch, r->n_pools, sizeof(*pools));
    if (r->n_pools > 0 && !pools)
        return -ENOMEM;
    for (size_t i = 0; i < r->n_pools; i++) {
        const Arena__V1__PoolMap *p = r->pools[i];
        arena__wire_map_extent_t *v = wire_array(scratch, p->n_extents, sizeof(*v));
        if (p->n_extents > 0 && !v)
            return -ENOMEM;
        for (size_t j = 0; j < p->n_extents; j++) {
            const Arena__V1__MapExtent *e = p->extents[j];
            v[j] =
                (arena__wire_map_extent_t){e->offset, e->length, (uint32_t)e->state, e->client_id};
        }
        pools[i] = (arena__wire_map_pool_t){
            .uid = p->uid,
            .pool = p->pool,
            .heap_size = p->heap_size,
            .granule = p->granule,
            .leased_bytes = p->leased_bytes,
            .parked_bytes = p->parked_bytes,
            .dirty_bytes = p->dirty_bytes,
            .free_bytes = p->free_bytes,
            .held_bytes = p->held_bytes,
            .largest_free = p->largest_free,
            .extents_total = p->extents_total,
            .coalesced = p->coalesced,
            .count = p->n_extents,
            .extents = v,
        };
    }
    m->u.map_reply.count = r->n_pools;
    m->u.map_reply.pools = pools;
    m->u.map_reply.pools_omitted = r->pools_omitted;
    return 0;
}

/* True for the bodies wire_convert() knows; the generated enum lists them. */
static bool wire_is_known_body(Arena__V1__Envelope__BodyCase body)
{
    return (body >= ARENA__V1__ENVELOPE__BODY_HELLO &&
            body <= ARENA__V1__ENVELOPE__BODY_UNSHARE_REPLY) ||
           (body >= ARENA__V1__ENVELOPE__BODY_ERROR && body <= ARENA__V1__ENVELOPE__BODY_PRESSURE);
}

/* Converts an unpacked envelope; 0 or -EPROTO/-ENOMEM. */
static int wire_convert(const Arena__V1__Envelope *env, arena__scratch_t *scratch, arena__msg_t *m)
{
    m->request_id = env->request_id;
    switch (env->body_case) {
    case ARENA__V1__ENVELOPE__BODY_HELLO:
        m->kind = ARENA__MSG_HELLO;
        m->u.hello.protocol_version = env->hello->protocol_version;
        m->u.hello.client_name = wire_in(env->hello->client_name);
        m->u.hello.notifications = env->hello->notifications;
        m->u.hello.reattach = env->hello->reattach;
        return 0;
    case ARENA__V1__ENVELOPE__BODY_HELLO_REPLY:
        m->kind = ARENA__MSG_HELLO_REPLY;
        m->u.hello_reply.protocol_version = env->hello_reply->protocol_version;
        m->u.hello_reply.client_id = env->hello_reply->client_id;
        m->u.hello_reply.heap_size = env->hello_reply->heap_size;
        m->u.hello_reply.granule = env->hello_reply->granule;
        m->u.hello_reply.budget = env->hello_reply->budget;
        m->u.hello_reply.hugetlb = env->hello_reply->hugetlb;
        m->u.hello_reply.daemon_version = wire_in(env->hello_reply->daemon_version);
        m->u.hello_reply.control_slots = env->hello_reply->control_slots;
        m->u.hello_reply.grace_ms = env->hello_reply->grace_ms;
        return 0;
    case ARENA__V1__ENVELOPE__BODY_LEASE:
        m->kind = ARENA__MSG_LEASE;
        m->u.lease.size = env->lease->size;
        m->u.lease.wait_ms = env->lease->wait_ms;
        m->u.lease.flags = env->lease->flags;
        return 0;
    case ARENA__V1__ENVELOPE__BODY_SHARE:
        m->kind = ARENA__MSG_SHARE;
        m->u.share.lease_id = env->share->lease_id;
        m->u.share.flags = env->share->flags;
        m->u.share.restrict_uid = env->share->restrict_uid;
        m->u.share.uid = env->share->uid;
        return 0;
    case ARENA__V1__ENVELOPE__BODY_SHARE_REPLY:
        m->kind = ARENA__MSG_SHARE_REPLY;
        m->u.share_reply.token = wire_in(env->share_reply->token);
        m->u.share_reply.share_id = env->share_reply->share_id;
        return 0;
    case ARENA__V1__ENVELOPE__BODY_ATTACH:
        m->kind = ARENA__MSG_ATTACH;
        m->u.attach.token = wire_in(env->attach->token);
        return 0;
    case ARENA__V1__ENVELOPE__BODY_ATTACH_REPLY:
        m->kind = ARENA__MSG_ATTACH_REPLY;
        m->u.attach_reply.lease_id = env->attach_reply->lease_id;
        m->u.attach_reply.offset = env->attach_reply->offset;
        m->u.attach_reply.size = env->attach_reply->size;
        m->u.attach_reply.read_only = env->attach_reply->read_only;
        m->u.attach_reply.own_memory = env->attach_reply->own_memory;
        m->u.attach_reply.owner_lease_id = env->attach_reply->owner_lease_id;
        return 0;
    case ARENA__V1__ENVELOPE__BODY_UNSHARE:
        m->kind = ARENA__MSG_UNSHARE;
        m->u.unshare.token = wire_in(env->unshare->token);
        return 0;
    case ARENA__V1__ENVELOPE__BODY_UNSHARE_REPLY:
        m->kind = ARENA__MSG_UNSHARE_REPLY;
        m->u.unshare_reply.share_id = env->unshare_reply->share_id;
        return 0;
    case ARENA__V1__ENVELOPE__BODY_LEASE_REPLY:
        m->kind = ARENA__MSG_LEASE_REPLY;
        m->u.lease_reply.lease_id = env->lease_reply->lease_id;
        m->u.lease_reply.offset = env->lease_reply->offset;
        m->u.lease_reply.size = env->lease_reply->size;
        m->u.lease_reply.zeroed = env->lease_reply->zeroed;
        m->u.lease_reply.slot = env->lease_reply->slot;
        m->u.lease_reply.generation = env->lease_reply->generation;
        m->u.lease_reply.own_memory = env->lease_reply->own_memory;
        return 0;
    case ARENA__V1__ENVELOPE__BODY_RELEASE:
        m->kind = ARENA__MSG_RELEASE;
        m->u.release.lease_id = env->release->lease_id;
        return 0;
    case ARENA__V1__ENVELOPE__BODY_RELEASE_REPLY:
        m->kind = ARENA__MSG_RELEASE_REPLY;
        m->u.release_reply.lease_id = env->release_reply->lease_id;
        return 0;
    case ARENA__V1__ENVELOPE__BODY_STATUS:
        m->kind = ARENA__MSG_STATUS;
        return 0;
    case ARENA__V1__ENVELOPE__BODY_STATUS_REPLY:
        m->kind = ARENA__MSG_STATUS_REPLY;
        arena__rec_status_from_pb(env->status_reply, &m->u.status_reply);
        return 0;
    case ARENA__V1__ENVELOPE__BODY_LIST_CLIENTS:
        m->kind = ARENA__MSG_LIST_CLIENTS;
        return 0;
    case ARENA__V1__ENVELOPE__BODY_LIST_CLIENTS_REPLY:
        m->kind = ARENA__MSG_LIST_CLIENTS_REPLY;
        return wire_decode_clients(env->list_clients_reply, scratch, m);
    case ARENA__V1__ENVELOPE__BODY_LIST_LEASES:
        m->kind = ARENA__MSG_LIST_LEASES;
        m->u.list_leases.client_id = env->list_leases->client_id;
        return 0;
    case ARENA__V1__ENVELOPE__BODY_LIST_LEASES_REPLY:
        m->kind = ARENA__MSG_LIST_LEASES_REPLY;
        return wire_decode_leases(env->list_leases_reply, scratch, m);
    case ARENA__V1__ENVELOPE__BODY_RECLAIM:
        m->kind = ARENA__MSG_RECLAIM;
        m->u.reclaim.bytes = env->reclaim->bytes;
        m->u.reclaim.client_id = env->reclaim->client_id;
        return 0;
    case ARENA__V1__ENVELOPE__BODY_RECLAIM_REPLY:
        m->kind = ARENA__MSG_RECLAIM_REPLY;
        m->u.reclaim_reply.reclaimed_bytes = env->reclaim_reply->reclaimed_bytes;
        return 0;
    case ARENA__V1__ENVELOPE__BODY_METRICS:
        m->kind = ARENA__MSG_METRICS;
        return 0;
    case ARENA__V1__ENVELOPE__BODY_METRICS_REPLY:
        m->kind = ARENA__MSG_METRICS_REPLY;
        m->u.metrics_reply.text = wire_in(env->metrics_reply->text);
        return 0;
    case ARENA__V1__ENVELOPE__BODY_EVENTS:
        m->kind = ARENA__MSG_EVENTS;
        m->u.events.since = env->events->since;
        m->u.events.max = env->events->max;
        return 0;
    case ARENA__V1__ENVELOPE__BODY_EVENTS_REPLY:
        m->kind = ARENA__MSG_EVENTS_REPLY;
        return wire_decode_events(env->events_reply, scratch, m);
    case ARENA__V1__ENVELOPE__BODY_LEASE_RECLAIMED:
        m->kind = ARENA__MSG_LEASE_RECLAIMED;
        m->u.lease_reclaimed.lease_id = env->lease_reclaimed->lease_id;
        m->u.lease_reclaimed.size = env->lease_reclaimed->size;
        return 0;
    case ARENA__V1__ENVELOPE__BODY_PRESSURE:
        m->kind = ARENA__MSG_PRESSURE;
        m->u.pressure.bytes = env->pressure->bytes;
        m->u.pressure.fair_share = env->pressure->fair_share;
        m->u.pressure.leased = env->pressure->leased;
        return 0;
    case ARENA__V1__ENVELOPE__BODY_CLAIM_REPLY:
        m->kind = ARENA__MSG_CLAIM_REPLY;
        return wire_decode_claims(env->claim_reply, scratch, m);
    case ARENA__V1__ENVELOPE__BODY_MAP:
        m->kind = ARENA__MSG_MAP;
        m->u.map.uid = env->map->uid;
        m->u.map.by_uid = env->map->by_uid;
        return 0;
    case ARENA__V1__ENVELOPE__BODY_MAP_REPLY:
        m->kind = ARENA__MSG_MAP_REPLY;
        return wire_decode_map(env->map_reply, scratch, m);
    case ARENA__V1__ENVELOPE__BODY_ERROR:
        m->kind = ARENA__MSG_ERROR;
        m->u.error.code = (int)env->error->code;
        m->u.error.message = wire_in(env->error->message);
        return 0;
    default:
        return -EPROTO;
    }
}

int arena__wire_decode(const uint8_t *body, size_t len, arena__scratch_t *scratch,
                       arena__msg_t *ret_msg)
{
    if ((!body && len) || !scratch || !ret_msg)
        return -EINVAL;
    if (len > (size_t)ARENA_MAX_REPLY_FRAME)
        return -EMSGSIZE;
    ProtobufCAllocator alloc = {
        .alloc = scratch_pb_alloc,
        .free = scratch_pb_free,
        .allocator_data = scratch,
    };
    Arena__V1__Envelope *env = arena__v1__envelope__unpack(&alloc, len, body);
    if (!env)
        return -EPROTO; /* protobuf-c gives no reason; scratch exhaustion looks the same */
    arena__msg_t m;
    memset(&m, 0, sizeof(m));
    int r = wire_convert(env, scratch, &m);
    if (r == -EPROTO && !wire_is_known_body(env->body_case)) {
        /* A well-formed envelope with no body we know (a newer daemon's
         * body is unset here, its field kept as unknown): the caller learns
         * its id. */
        memset(&m, 0, sizeof(m));
        m.request_id = env->request_id;
        m.kind = ARENA__MSG_NONE;
        *ret_msg = m;
        return -ENOMSG;
    }
    if (r < 0)
        return r;
    *ret_msg = m;
    return 0;
}
