/* SPDX-License-Identifier: MIT
 *
 * admin.c -- admin and introspection requests (status, clients, leases,
 * reclaim, metrics) turned into plain C results for arenactl.
 *
 * Each call is one exchange on the connection; the reply is copied out of the
 * connection's scratch while the connection is still locked (the scratch is
 * reused by the next exchange). Variable-sized results are mmap'd so this
 * file, like the rest of the connection layer, never calls malloc. The daemon
 * decides what a caller may see; nothing here filters. Any thread.
 */
#include "admin.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conn.h"
#include "size.h"
#include "wire.h"

static void admin_strcpy(char *dst, const char *s, size_t len)
{
    size_t n = strnlen(s, len - 1);
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* Maps header + count * item bytes; NULL on overflow or mmap failure. */
static void *admin_map(size_t header, size_t count, size_t item, size_t *ret_size)
{
    if (count > (SIZE_MAX - header) / (item ? item : 1))
        return NULL;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
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
    arena__admin_status_t *out = ctx;
    const arena__wire_status_t *s = &reply->u.status_reply;
    admin_strcpy(out->daemon_version, s->daemon_version, sizeof(out->daemon_version));
    out->uptime_ms = s->uptime_ms;
    out->budget = s->budget;
    out->heap_size = s->heap_size;
    out->leased_bytes = s->leased_bytes;
    out->free_bytes = s->free_bytes;
    out->dirty_bytes = s->dirty_bytes;
    out->largest_free = s->largest_free;
    out->free_extents = s->free_extents;
    out->fragmentation = s->fragmentation;
    out->clients = s->clients;
    out->pools = s->pools;
    out->leases = s->leases;
    out->leases_granted_total = s->leases_granted_total;
    out->leases_released_total = s->leases_released_total;
    out->bytes_punched_total = s->bytes_punched_total;
    out->requests_refused_total = s->requests_refused_total;
    out->protocol_errors_total = s->protocol_errors_total;
    out->connections_total = s->connections_total;
    admin_strcpy(out->socket_path, s->socket_path, sizeof(out->socket_path));
    out->restart_held_bytes = s->restart_held_bytes;
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
    for (size_t i = 0; i < n; i++) {
        const arena__wire_client_t *c = &reply->u.list_clients_reply.clients[i];
        arena__admin_client_t *d = &list->items[i];
        d->client_id = c->client_id;
        d->pid = c->pid;
        d->uid = c->uid;
        d->gid = c->gid;
        admin_strcpy(d->name, c->name, sizeof(d->name));
        d->leased_bytes = c->leased_bytes;
        d->leases = c->leases;
        d->connected_ms = c->connected_ms;
        d->parked_bytes = c->parked_bytes;
        d->fair_share = c->fair_share;
        d->waiting = c->waiting;
        d->waiting_bytes = c->waiting_bytes;
        d->weight = c->weight;
        d->live_bytes = c->live_bytes;
    }
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
    for (size_t i = 0; i < n; i++) {
        const arena__wire_lease_t *l = &reply->u.list_leases_reply.leases[i];
        list->items[i] = (arena__admin_lease_t){
            .lease_id = l->lease_id,
            .client_id = l->client_id,
            .uid = l->uid,
            .offset = l->offset,
            .size = l->size,
            .zeroed = l->zeroed,
            .age_ms = l->age_ms,
            .parked = l->parked,
        };
    }
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
    for (size_t i = 0; i < n; i++) {
        const arena__wire_event_t *e = &reply->u.events_reply.events[i];
        list->items[i] = (arena__admin_event_t){
            .seq = e->seq,
            .time_ms = e->time_ms,
            .kind = e->kind,
            .client_id = e->client_id,
            .pid = e->pid,
            .bytes = e->bytes,
            .leased = e->leased,
            .fair_share = e->fair_share,
            .reclaimable = e->reclaimable,
            .budget_leased = e->budget_leased,
            .lease_id = e->lease_id,
        };
    }
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

/* ---- arenactl views of the no-starvation policy ---------------------------- */

/* A JSON string (quotes, escapes; control bytes as \\u00XX). */
static void admin_json_string(FILE *out, const char *s)
{
    (void)fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            (void)fprintf(out, "\\%c", *p);
        else if (*p < 0x20)
            (void)fprintf(out, "\\u%04x", *p);
        else
            (void)fputc(*p, out);
    }
    (void)fputc('"', out);
}

static const char *admin_size(uint64_t bytes, char *buf, size_t len)
{
    return arena__size_format(bytes, buf, len);
}

int arena__ctl_print_events(arena_conn_t *conn, uint64_t since, bool json, FILE *out)
{
    bool first = true;
    uint64_t dropped = 0, last = 0;
    size_t total = 0;
    if (json)
        (void)fputs("{\"events\":[", out);
    else
        (void)fprintf(out, "%8s %10s %-8s %6s %8s %10s %10s %10s %10s\n", "SEQ", "TIME_MS", "EVENT",
                      "CLIENT", "PID", "BYTES", "LEASED", "SHARE", "PARKED");
    for (;;) {
        arena__admin_events_t *list = NULL;
        int r = arena__admin_events(conn, since, 0, &list);
        if (r < 0) {
            if (json && total == 0)
                (void)fputs("]}\n", out);
            return r;
        }
        if (total == 0)
            dropped = list->dropped;
        last = list->last_seq;
        for (size_t i = 0; i < list->count; i++) {
            const arena__admin_event_t *e = &list->items[i];
            since = e->seq;
            if (json) {
                (void)fprintf(
                    out,
                    "%s{\"seq\":%" PRIu64 ",\"time_ms\":%" PRIu64 ",\"kind\":\"%s\","
                    "\"client_id\":%" PRIu64 ",\"pid\":%" PRIu32 ",\"bytes\":%" PRIu64
                    ",\"leased\":%" PRIu64 ",\"fair_share\":%" PRIu64 ",\"reclaimable\":%" PRIu64
                    ",\"budget_leased\":%" PRIu64 ",\"lease_id\":%" PRIu64 "}",
                    first ? "" : ",", e->seq, e->time_ms, arena__admin_event_kind(e->kind),
                    e->client_id, e->pid, e->bytes, e->leased, e->fair_share, e->reclaimable,
                    e->budget_leased, e->lease_id);
                first = false;
            } else {
                char a[32], b[32], c[32], d[32];
                (void)fprintf(out,
                              "%8" PRIu64 " %10" PRIu64 " %-8s %6" PRIu64 " %8" PRIu32
                              " %10s %10s %10s %10s\n",
                              e->seq, e->time_ms, arena__admin_event_kind(e->kind), e->client_id,
                              e->pid, admin_size(e->bytes, a, sizeof(a)),
                              admin_size(e->leased, b, sizeof(b)),
                              admin_size(e->fair_share, c, sizeof(c)),
                              admin_size(e->reclaimable, d, sizeof(d)));
            }
        }
        size_t n = list->count;
        total += n;
        arena__admin_events_free(list);
        if (n == 0)
            break;
    }
    if (json)
        (void)fprintf(out, "],\"dropped\":%" PRIu64 ",\"last_seq\":%" PRIu64 "}\n", dropped, last);
    else
        (void)fprintf(out, "%zu event%s (%" PRIu64 " lost to the ring before these)\n", total,
                      total == 1 ? "" : "s", dropped);
    return 0;
}

int arena__ctl_print_shares(arena_conn_t *conn, bool json, FILE *out)
{
    arena__admin_clients_t *list = NULL;
    int r = arena__admin_clients(conn, &list);
    if (r < 0)
        return r;
    if (json) {
        (void)fputs("{\"clients\":[", out);
        for (size_t i = 0; i < list->count; i++) {
            const arena__admin_client_t *c = &list->items[i];
            (void)fprintf(out, "%s{\"client_id\":%" PRIu64 ",\"pid\":%" PRIu32 ",\"name\":",
                          i ? "," : "", c->client_id, c->pid);
            admin_json_string(out, c->name);
            (void)fprintf(out,
                          ",\"leased_bytes\":%" PRIu64 ",\"live_bytes\":%" PRIu64
                          ",\"parked_bytes\":%" PRIu64 ",\"fair_share\":%" PRIu64
                          ",\"weight\":%" PRIu32 ",\"waiting\":%" PRIu32
                          ",\"waiting_bytes\":%" PRIu64 "}",
                          c->leased_bytes, c->live_bytes, c->parked_bytes, c->fair_share, c->weight,
                          c->waiting, c->waiting_bytes);
        }
        (void)fputs("]}\n", out);
    } else {
        (void)fprintf(out, "%8s %8s %-16s %10s %10s %10s %10s %6s %8s %10s\n", "ID", "PID", "NAME",
                      "LEASED", "LIVE", "PARKED", "SHARE", "WEIGHT", "WAITING", "WANTED");
        for (size_t i = 0; i < list->count; i++) {
            const arena__admin_client_t *c = &list->items[i];
            char a[32], b[32], d[32], e[32], l[32];
            (void)fprintf(out,
                          "%8" PRIu64 " %8" PRIu32 " %-16.16s %10s %10s %10s %10s %6" PRIu32
                          " %8" PRIu32 " %10s\n",
                          c->client_id, c->pid, c->name, admin_size(c->leased_bytes, a, sizeof(a)),
                          admin_size(c->live_bytes, l, sizeof(l)),
                          admin_size(c->parked_bytes, b, sizeof(b)),
                          admin_size(c->fair_share, d, sizeof(d)), c->weight, c->waiting,
                          admin_size(c->waiting_bytes, e, sizeof(e)));
        }
    }
    arena__admin_clients_free(list);
    return 0;
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
