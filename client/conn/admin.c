/* SPDX-License-Identifier: MIT
 *
 * admin.c -- admin and introspection requests (status, clients, leases,
 * reclaim, metrics) turned into plain C results for arenactl.
 *
 * Each call is one exchange on the connection; the reply is copied out of the
 * connection's scratch while the connection is still locked (the scratch is
 * reused by the next exchange). Variable-sized results are mmap'd so this
 * file, like the rest of the connection layer, never calls malloc. The
 * records are the wire adapter's own (records.h), so a reply is copied whole,
 * never field by field. The daemon decides what a caller may see; nothing
 * here filters, and nothing here prints (arenactl does). Any thread.
 */
#include "admin.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conn.h"
#include "wire.h"

/* Maps header + count * item bytes; NULL on overflow or mmap failure. */
static void *admin_map(size_t header, size_t count, size_t item, size_t *ret_size)
{
    if (count > (SIZE_MAX - header) / (item ? item : 1))
        return NULL;
    size_t page = (size_t)getpagesize();
    size_t size = (header + count * item + page - 1) & ~(page - 1);
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    *ret_size = size;
    return p;
}

static int admin_conn(arena_conn_t **conn)
{
    return *conn ? 0 : arena__conn_default(conn);
}

/* ---- status ----------------------------------------------------------------- */

static int admin_on_status(void *ctx, const arena__msg_t *reply)
{
    *(arena__admin_status_t *)ctx = reply->u.status_reply;
    return 0;
}

int arena__admin_status(arena_conn_t *conn, arena__admin_status_t *ret_status)
{
    if (!ret_status)
        return -EINVAL;
    int r = admin_conn(&conn);
    if (r < 0)
        return r;
    arena__admin_status_t st;
    memset(&st, 0, sizeof(st));
    arena__msg_t req = {.kind = ARENA__MSG_STATUS};
    r = arena__conn_call(conn, &req, ARENA__MSG_STATUS_REPLY, admin_on_status, &st);
    if (r < 0)
        return r;
    *ret_status = st;
    return 0;
}

/* ---- clients ------------------------------------------------------------------ */

static int admin_on_clients(void *ctx, const arena__msg_t *reply)
{
    arena__admin_clients_t **out = ctx;
    size_t n = reply->u.list_clients_reply.count;
    size_t size;
    arena__admin_clients_t *list =
        admin_map(sizeof(*list), n, sizeof(arena__admin_client_t), &size);
    if (!list)
        return -ENOMEM;
    list->map_size = size;
    list->count = n;
    if (n)
        memcpy(list->items, reply->u.list_clients_reply.clients, n * sizeof(list->items[0]));
    *out = list;
    return 0;
}

int arena__admin_clients(arena_conn_t *conn, arena__admin_clients_t **ret_list)
{
    if (!ret_list)
        return -EINVAL;
    int r = admin_conn(&conn);
    if (r < 0)
        return r;
    arena__admin_clients_t *list = NULL;
    arena__msg_t req = {.kind = ARENA__MSG_LIST_CLIENTS};
    r = arena__conn_call(conn, &req, ARENA__MSG_LIST_CLIENTS_REPLY, admin_on_clients, &list);
    if (r < 0)
        return r;
    *ret_list = list;
    return 0;
}

void arena__admin_clients_free(arena__admin_clients_t *list)
{
    if (list)
        (void)munmap(list, list->map_size);
}

/* ---- leases ------------------------------------------------------------------- */

static int admin_on_leases(void *ctx, const arena__msg_t *reply)
{
    arena__admin_leases_t **out = ctx;
    size_t n = reply->u.list_leases_reply.count;
    size_t size;
    arena__admin_leases_t *list = admin_map(sizeof(*list), n, sizeof(arena__admin_lease_t), &size);
    if (!list)
        return -ENOMEM;
    list->map_size = size;
    list->count = n;
    if (n)
        memcpy(list->items, reply->u.list_leases_reply.leases, n * sizeof(list->items[0]));
    *out = list;
    return 0;
}

int arena__admin_leases(arena_conn_t *conn, uint64_t client_id, arena__admin_leases_t **ret_list)
{
    if (!ret_list)
        return -EINVAL;
    int r = admin_conn(&conn);
    if (r < 0)
        return r;
    arena__admin_leases_t *list = NULL;
    arena__msg_t req = {.kind = ARENA__MSG_LIST_LEASES};
    req.u.list_leases.client_id = client_id;
    r = arena__conn_call(conn, &req, ARENA__MSG_LIST_LEASES_REPLY, admin_on_leases, &list);
    if (r < 0)
        return r;
    *ret_list = list;
    return 0;
}

void arena__admin_leases_free(arena__admin_leases_t *list)
{
    if (list)
        (void)munmap(list, list->map_size);
}

/* ---- events ------------------------------------------------------------------- */

static int admin_on_events(void *ctx, const arena__msg_t *reply)
{
    arena__admin_events_t **out = ctx;
    size_t n = reply->u.events_reply.count;
    size_t size;
    arena__admin_events_t *list = admin_map(sizeof(*list), n, sizeof(arena__admin_event_t), &size);
    if (!list)
        return -ENOMEM;
    list->map_size = size;
    list->count = n;
    list->dropped = reply->u.events_reply.dropped;
    list->last_seq = reply->u.events_reply.last_seq;
    if (n)
        memcpy(list->items, reply->u.events_reply.events, n * sizeof(list->items[0]));
    *out = list;
    return 0;
}

int arena__admin_events(arena_conn_t *conn, uint64_t since, uint32_t max,
                        arena__admin_events_t **ret_list)
{
    if (!ret_list)
        return -EINVAL;
    int r = admin_conn(&conn);
    if (r < 0)
        return r;
    arena__admin_events_t *list = NULL;
    arena__msg_t req = {.kind = ARENA__MSG_EVENTS};
    req.u.events.since = since;
    req.u.events.max = max;
    r = arena__conn_call(conn, &req, ARENA__MSG_EVENTS_REPLY, admin_on_events, &list);
    if (r < 0)
        return r;
    *ret_list = list;
    return 0;
}

void arena__admin_events_free(arena__admin_events_t *list)
{
    if (list)
        (void)munmap(list, list->map_size);
}

const char *arena__admin_event_kind(uint32_t kind)
{
    switch (kind) {
    case ARENA__EVENT_GRANT:
        return "grant";
    case ARENA__EVENT_REFUSE:
        return "refuse";
    case ARENA__EVENT_RECLAIM:
        return "reclaim";
    case ARENA__EVENT_PRESSURE:
        return "pressure";
    case ARENA__EVENT_QUEUE:
        return "queue";
    case ARENA__EVENT_SHARE:
        return "share";
    case ARENA__EVENT_ATTACH:
        return "attach";
    case ARENA__EVENT_DETACH:
        return "detach";
    case ARENA__EVENT_UNSHARE:
        return "unshare";
    default:
        return "unknown";
    }
}

/* ---- reclaim ------------------------------------------------------------------ */

static int admin_on_reclaim(void *ctx, const arena__msg_t *reply)
{
    *(uint64_t *)ctx = reply->u.reclaim_reply.reclaimed_bytes;
    return 0;
}

int arena__admin_reclaim(arena_conn_t *conn, uint64_t bytes, uint64_t client_id,
                         uint64_t *ret_bytes)
{
    if (!ret_bytes)
        return -EINVAL;
    int r = admin_conn(&conn);
    if (r < 0)
        return r;
    uint64_t got = 0;
    arena__msg_t req = {.kind = ARENA__MSG_RECLAIM};
    req.u.reclaim.bytes = bytes;
    req.u.reclaim.client_id = client_id;
    r = arena__conn_call(conn, &req, ARENA__MSG_RECLAIM_REPLY, admin_on_reclaim, &got);
    if (r < 0)
        return r;
    *ret_bytes = got;
    return 0;
}

/* ---- metrics ------------------------------------------------------------------ */

static int admin_on_metrics(void *ctx, const arena__msg_t *reply)
{
    arena__admin_text_t **out = ctx;
    size_t n = strlen(reply->u.metrics_reply.text);
    size_t size;
    arena__admin_text_t *t = admin_map(sizeof(*t) + 1, n, 1, &size);
    if (!t)
        return -ENOMEM;
    t->map_size = size;
    t->len = n;
    memcpy(t->text, reply->u.metrics_reply.text, n + 1);
    *out = t;
    return 0;
}

int arena__admin_metrics(arena_conn_t *conn, arena__admin_text_t **ret_text)
{
    if (!ret_text)
        return -EINVAL;
    int r = admin_conn(&conn);
    if (r < 0)
        return r;
    arena__admin_text_t *t = NULL;
    arena__msg_t req = {.kind = ARENA__MSG_METRICS};
    r = arena__conn_call(conn, &req, ARENA__MSG_METRICS_REPLY, admin_on_metrics, &t);
    if (r < 0)
        return r;
    *ret_text = t;
    return 0;
}

void arena__admin_text_free(arena__admin_text_t *text)
{
    if (text)
        (void)munmap(text, text->map_size);
}
/* ---- heap map ------------------------------------------------------------------ */

static int admin_on_map(void *ctx, const arena__msg_t *reply)
{
    arena__admin_map_t **out = ctx;
    size_t np = reply->u.map_reply.count, ne = 0;
    for (size_t i = 0; i < np; i++) {
        if (reply->u.map_reply.pools[i].count > SIZE_MAX / 2 - ne)
            return -ENOMEM;
        ne += reply->u.map_reply.pools[i].count;
    }
    if (np > (SIZE_MAX / 2) / sizeof(arena__admin_map_pool_t))
        return -ENOMEM;
    size_t size;
    arena__admin_map_t *m = admin_map(sizeof(*m) + np * sizeof(arena__admin_map_pool_t), ne,
                                      sizeof(arena__admin_map_extent_t), &size);
    if (!m)
        return -ENOMEM;
    m->map_size = size;
    m->count = np;
    m->pools_omitted = reply->u.map_reply.pools_omitted;
    arena__admin_map_extent_t *e = (arena__admin_map_extent_t *)(void *)&m->pools[np];
    for (size_t i = 0; i < np; i++) {
        const arena__wire_map_pool_t *p = &reply->u.map_reply.pools[i];
        m->pools[i] = (arena__admin_map_pool_t){
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
            .count = p->count,
            .extents = e,
        };
        for (size_t j = 0; j < p->count; j++, e++)
            *e = (arena__admin_map_extent_t){p->extents[j].offset, p->extents[j].length,
                                             p->extents[j].state, p->extents[j].client_id};
    }
    *out = m;
    return 0;
}

int arena__admin_map(arena_conn_t *conn, bool by_uid, uint32_t uid, arena__admin_map_t **ret_map)
{
    if (!ret_map)
        return -EINVAL;
    int r = admin_conn(&conn);
    if (r < 0)
        return r;
    arena__admin_map_t *m = NULL;
    arena__msg_t req = {.kind = ARENA__MSG_MAP};
    req.u.map.uid = uid;
    req.u.map.by_uid = by_uid;
    r = arena__conn_call(conn, &req, ARENA__MSG_MAP_REPLY, admin_on_map, &m);
    if (r < 0)
        return r;
    *ret_map = m;
    return 0;
}

void arena__admin_map_free(arena__admin_map_t *map)
{
    if (map)
        (void)munmap(map, map->map_size);
}
