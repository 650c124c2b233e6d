/* SPDX-License-Identifier: MIT
 *
 * admin.c -- what arenactl sees: status, client and lease listings, forced
 * reclaim and Prometheus metrics.
 *
 * Admin requests only read the lease manager, except reclaim, which punches
 * dirty pages (memory nobody holds). Visibility follows DESIGN.md section 4:
 * root, the daemon's own uid and members of the optional admin group see every
 * client and may reclaim any pool; everyone else sees the clients and leases of
 * their own uid and reclaims only their own pool. Daemon-wide totals name
 * nobody and are shown to all. The caller's privilege is decided once, at
 * hello, from SO_PEERCRED and SO_PEERGROUPS; nothing a client sends can raise
 * it. Loop thread only.
 */
#include "admin.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef AD_VERSION
#define AD_VERSION "0.0.0"
#endif

struct ad_admin {
    ad_leases_t *leases;
    char *socket_path;
    uint64_t start_ms;
    uid_t daemon_uid;
    bool has_group;
    gid_t group;
    ad_admin_counters_t counters;
};

int ad_admin_new(ad_leases_t *leases, const char *socket_path, uint64_t start_ms,
                 ad_admin_t **ret_admin)
{
    if (!leases || !ret_admin)
        return -EINVAL;
    ad_admin_t *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->socket_path = strdup(socket_path ? socket_path : "");
    if (!a->socket_path) {
        free(a);
        return -ENOMEM;
    }
    a->leases = leases;
    a->start_ms = start_ms;
    a->daemon_uid = geteuid();
    *ret_admin = a;
    return 0;
}

void ad_admin_free(ad_admin_t *a)
{
    if (!a)
        return;
    free(a->socket_path);
    free(a);
}

ad_admin_counters_t *ad_admin_counters(ad_admin_t *a)
{
    return &a->counters;
}

void ad_admin_set_group(ad_admin_t *a, bool has_group, gid_t gid)
{
    a->has_group = has_group;
    a->group = gid;
}

bool ad_admin_is_privileged(const ad_admin_t *a, uid_t uid, gid_t gid, const gid_t *groups,
                            size_t ngroups)
{
    if (uid == 0 || uid == a->daemon_uid)
        return true;
    if (!a->has_group)
        return false;
    if (gid == a->group)
        return true;
    for (size_t i = 0; groups && i < ngroups; i++) {
        if (groups[i] == a->group)
            return true;
    }
    return false;
}

static bool may_see(const ad_admin_caller_t *caller, uid_t uid)
{
    return caller->privileged || caller->uid == uid;
}

void ad_admin_status(const ad_admin_t *a, uint64_t now_ms, ad_wire_status_t *ret_status)
{
    ad_leases_stats_t s;
    ad_leases_stats(a->leases, &s);
    ad_wire_status_t st;
    memset(&st, 0, sizeof(st));
    arena__rec_strcpy(st.daemon_version, sizeof(st.daemon_version), AD_VERSION);
    arena__rec_strcpy(st.socket_path, sizeof(st.socket_path), a->socket_path);
    st.uptime_ms = now_ms >= a->start_ms ? now_ms - a->start_ms : 0;
    st.budget = s.budget;
    st.heap_size = s.heap_size;
    st.leased_bytes = s.leased_bytes;
    st.free_bytes = s.free_bytes;
    st.dirty_bytes = s.dirty_bytes;
    st.largest_free = s.largest_free;
    st.free_extents = s.free_extents;
    st.fragmentation = s.fragmentation;
    st.clients = s.clients;
    st.pools = s.pools;
    st.leases = s.leases;
    st.leases_granted_total = s.granted_total;
    st.leases_released_total = s.released_total;
    st.bytes_punched_total = s.punched_total;
    st.requests_refused_total = s.refused_total;
    st.protocol_errors_total = a->counters.protocol_errors_total;
    st.connections_total = a->counters.connections_total;
    ad_leases_adopt_stats_t as;
    ad_leases_adopt_stats(a->leases, &as);
    st.restart_held_bytes = as.orphan_bytes;
    st.restart_held_leases = as.held_orphans;
    st.restart_grace_left_ms = as.grace_end_ms > now_ms ? as.grace_end_ms - now_ms : 0;
    st.restart_unknown_pools = as.unknown_pools;
    st.restart_fd_store = as.ledger;
    *ret_status = st;
}

/* ---- listings ------------------------------------------------------------- */

typedef struct collect {
    const ad_admin_caller_t *caller;
    uint64_t now_ms;
    void *items;
    size_t count;
    size_t cap;
    size_t item_size;
    int error;
} collect_t;

static void *collect_slot(collect_t *c)
{
    if (c->count == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        void *items = realloc(c->items, cap * c->item_size);
        if (!items) {
            c->error = -ENOMEM;
            return NULL;
        }
        c->items = items;
        c->cap = cap;
    }
    return (char *)c->items + c->count++ * c->item_size;
}

static int collect_client(void *ctx, const ad_client_view_t *v)
{
    collect_t *c = ctx;
    if (!may_see(c->caller, v->uid))
        return 0;
    ad_wire_client_info_t *ci = collect_slot(c);
    if (!ci)
        return 1;
    ci->client_id = v->client_id;
    ci->pid = (uint32_t)v->pid;
    ci->uid = (uint32_t)v->uid;
    ci->gid = (uint32_t)v->gid;
    arena__rec_strcpy(ci->name, sizeof(ci->name), v->name);
    ci->leased_bytes = v->leased_bytes;
    ci->leases = v->leases;
    ci->connected_ms = c->now_ms >= v->connected_at_ms ? c->now_ms - v->connected_at_ms : 0;
    ci->parked_bytes = v->parked_bytes;
    ci->live_bytes = v->live_bytes;
    ci->fair_share = v->fair_share;
    ci->waiting = v->waiting;
    ci->waiting_bytes = v->waiting_bytes;
    ci->weight = v->weight;
    return 0;
}

int ad_admin_list_clients(const ad_admin_t *a, const ad_admin_caller_t *caller, uint64_t now_ms,
                          ad_wire_client_info_t **ret_items, size_t *ret_count)
{
    collect_t c = {.caller = caller, .now_ms = now_ms, .item_size = sizeof(ad_wire_client_info_t)};
    (void)ad_leases_foreach_client(a->leases, collect_client, &c);
    if (c.error < 0) {
        free(c.items);
        return c.error;
    }
    *ret_items = c.items;
    *ret_count = c.count;
    return 0;
}

static int collect_lease(void *ctx, const ad_lease_view_t *v)
{
    collect_t *c = ctx;
    if (!may_see(c->caller, v->uid))
        return 0;
    ad_wire_lease_info_t *li = collect_slot(c);
    if (!li)
        return 1;
    li->lease_id = v->lease_id;
    li->client_id = v->client_id;
    li->uid = (uint32_t)v->uid;
    li->offset = v->offset;
    li->size = v->size;
    li->zeroed = v->zeroed;
    li->age_ms = c->now_ms >= v->granted_at_ms ? c->now_ms - v->granted_at_ms : 0;
    li->parked = v->parked;
    return 0;
}

int ad_admin_list_leases(const ad_admin_t *a, const ad_admin_caller_t *caller, uint64_t client_id,
                         uint64_t now_ms, ad_wire_lease_info_t **ret_items, size_t *ret_count)
{
    if (client_id != 0) {
        ad_client_view_t v;
        if (ad_leases_client_view(a->leases, client_id, &v) < 0 || !may_see(caller, v.uid))
            return -ENOENT;
    }
    collect_t c = {.caller = caller, .now_ms = now_ms, .item_size = sizeof(ad_wire_lease_info_t)};
    (void)ad_leases_foreach_lease(a->leases, client_id, collect_lease, &c);
    if (c.error < 0) {
        free(c.items);
        return c.error;
    }
    *ret_items = c.items;
    *ret_count = c.count;
    return 0;
}

typedef struct uid_ids {
    uid_t uid;
    uint64_t *ids;
    size_t count;
    size_t cap;
} uid_ids_t;

static int collect_uid(void *ctx, const ad_client_view_t *v)
{
    uid_ids_t *u = ctx;
    if (v->uid != u->uid)
        return 0;
    if (u->count == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 16;
        uint64_t *ids = realloc(u->ids, cap * sizeof(*ids));
        if (!ids)
            return -ENOMEM;
        u->ids = ids;
        u->cap = cap;
    }
    u->ids[u->count++] = v->client_id;
    return 0;
}

int ad_admin_reclaim(ad_admin_t *a, const ad_admin_caller_t *caller, uint64_t bytes,
                     uint64_t client_id, uint64_t now_ms, uint64_t *ret_bytes)
{
    bool only_uid = true;
    uid_t uid = caller->uid;
    if (client_id != 0) {
        ad_client_view_t v;
        if (ad_leases_client_view(a->leases, client_id, &v) < 0)
            return -ENOENT;
        if (!may_see(caller, v.uid))
            return -EPERM;
        uid = v.uid;
    } else if (caller->privileged) {
        only_uid = false;
    }
    /* Parked leases first (they are whole leases the owners do not use),
     * then dirty pages. */
    uint64_t parked = 0;
    if (client_id != 0 || !only_uid) {
        int64_t r = ad_leases_reclaim_parked(a->leases, client_id, bytes, now_ms);
        parked = r > 0 ? (uint64_t)r : 0;
    } else {
        uid_ids_t ids = {.uid = uid};
        (void)ad_leases_foreach_client(a->leases, collect_uid, &ids);
        for (size_t i = 0; i < ids.count && (bytes == 0 || parked < bytes); i++) {
            int64_t r =
                ad_leases_reclaim_parked(a->leases, ids.ids[i], bytes ? bytes - parked : 0, now_ms);
            parked += r > 0 ? (uint64_t)r : 0;
        }
        free(ids.ids);
    }
    uint64_t punched = 0;
    if (bytes == 0 || parked < bytes)
        punched = ad_leases_reclaim(a->leases, only_uid, uid, bytes ? bytes - parked : 0, now_ms);
    *ret_bytes = parked + punched;
    return 0;
}

int ad_admin_events(const ad_admin_t *a, const ad_admin_caller_t *caller, uint64_t since,
                    uint32_t max, ad_wire_event_t **ret_items, size_t *ret_count,
                    uint64_t *ret_dropped, uint64_t *ret_last_seq)
{
    if (!a || !caller || !ret_items || !ret_count || !ret_dropped || !ret_last_seq)
        return -EINVAL;
    if (!caller->privileged)
        return -EPERM;
    if (max == 0 || max > AD_ADMIN_EVENTS_PAGE)
        max = AD_ADMIN_EVENTS_PAGE;
    const ad_events_t *log = ad_leases_events(a->leases);
    ad_event_t *raw = calloc(max, sizeof(*raw));
    ad_wire_event_t *items = calloc(max, sizeof(*items));
    if (!raw || !items) {
        free(raw);
        free(items);
        return -ENOMEM;
    }
    uint64_t dropped = 0;
    size_t n = ad_events_read(log, since, raw, max, &dropped);
    for (size_t i = 0; i < n; i++) {
        items[i] = (ad_wire_event_t){
            .seq = raw[i].seq,
            .time_ms = raw[i].time_ms >= a->start_ms ? raw[i].time_ms - a->start_ms : 0,
            .kind = (uint32_t)raw[i].kind,
            .client_id = raw[i].client_id,
            .pid = (uint32_t)raw[i].pid,
            .bytes = raw[i].bytes,
            .leased = raw[i].leased,
            .fair_share = raw[i].fair_share,
            .reclaimable = raw[i].reclaimable,
            .budget_leased = raw[i].budget_leased,
            .lease_id = raw[i].lease_id,
        };
    }
    free(raw);
    if (n == 0) {
        free(items);
        items = NULL;
    }
    *ret_items = items;
    *ret_count = n;
    *ret_dropped = dropped;
    *ret_last_seq = ad_events_last_seq(log);
    return 0;
}

/* ---- metrics -------------------------------------------------------------- */

typedef struct text {
    char *buf;
    size_t len;
    size_t cap;
    int error;
} text_t;

static void text_printf(text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_printf(text_t *t, const char *fmt, ...)
{
    if (t->error < 0)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        /* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): false positive */
        int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->error = -EINVAL;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap * 2;
        while (cap - t->len <= (size_t)n)
            cap *= 2;
        char *buf = realloc(t->buf, cap);
        if (!buf) {
            t->error = -ENOMEM;
            return;
        }
        t->buf = buf;
        t->cap = cap;
    }
}

static void metric_head(text_t *t, const char *name, const char *type, const char *help)
{
    text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metric_u64(text_t *t, const char *name, const char *type, const char *help,
                       uint64_t value)
{
    metric_head(t, name, type, help);
    text_printf(t, "%s %llu\n", name, (unsigned long long)value);
}

/* Appends a label value escaped per the text format: \\, \" and \n. */
static void text_label_value(text_t *t, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            text_printf(t, "\\\\");
        else if (*v == '"')
            text_printf(t, "\\\"");
        else if (*v == '\n')
            text_printf(t, "\\n");
        else
            text_printf(t, "%c", *v);
    }
}

/* The per-client metric families, one sample per visible client each. */
typedef enum client_family {
    FAMILY_LEASED_BYTES,
    FAMILY_LEASES,
    FAMILY_LIVE_BYTES,
} client_family_t;

typedef struct client_metrics {
    text_t *t;
    const ad_admin_caller_t *caller;
    client_family_t family;
} client_metrics_t;

static int metric_client(void *ctx, const ad_client_view_t *v)
{
    client_metrics_t *cm = ctx;
    if (!may_see(cm->caller, v->uid))
        return 0;
    static const char *const names[] = {
        [FAMILY_LEASED_BYTES] = "arenad_client_leased_bytes",
        [FAMILY_LEASES] = "arenad_client_leases",
        [FAMILY_LIVE_BYTES] = "arenad_client_live_bytes",
    };
    uint64_t value = cm->family == FAMILY_LEASES       ? v->leases
                     : cm->family == FAMILY_LIVE_BYTES ? v->live_bytes
                                                       : v->leased_bytes;
    text_t *t = cm->t;
    text_printf(t, "%s{client_id=\"%llu\",pid=\"%ld\",uid=\"%lu\",name=\"", names[cm->family],
                (unsigned long long)v->client_id, (long)v->pid, (unsigned long)v->uid);
    text_label_value(t, v->name);
    text_printf(t, "\"} %llu\n", (unsigned long long)value);
    return 0;
}

int ad_admin_metrics(const ad_admin_t *a, const ad_admin_caller_t *caller, uint64_t now_ms,
                     char **ret_text)
{
    ad_leases_stats_t s;
    ad_leases_stats(a->leases, &s);
    text_t t = {.cap = 4096};
    t.buf = malloc(t.cap);
    if (!t.buf)
        return -ENOMEM;
    t.buf[0] = '\0';

    metric_u64(&t, "arenad_budget_bytes", "gauge", "Cap on bytes leased by all clients.", s.budget);
    metric_u64(&t, "arenad_heap_size_bytes", "gauge", "Address space of each pool heap.",
               s.heap_size);
    metric_u64(&t, "arenad_leased_bytes", "gauge", "Bytes leased to clients, all pools.",
               s.leased_bytes);
    metric_u64(&t, "arenad_free_bytes", "gauge", "Free bytes of the pool heaps.", s.free_bytes);
    metric_u64(&t, "arenad_dirty_bytes", "gauge",
               "Released bytes whose pages are not yet returned to the kernel.", s.dirty_bytes);
    metric_u64(&t, "arenad_resident_bytes", "gauge", "Pages the pool memfds hold, in bytes.",
               s.resident_bytes);
    metric_u64(&t, "arenad_largest_free_bytes", "gauge", "Largest free extent of any pool.",
               s.largest_free);
    metric_u64(&t, "arenad_free_extents", "gauge", "Free extents, all pools.", s.free_extents);
    metric_head(&t, "arenad_fragmentation_ratio", "gauge",
                "1 - largest free extent / free bytes, worst pool.");
    text_printf(&t, "arenad_fragmentation_ratio %.6f\n", s.fragmentation);
    metric_u64(&t, "arenad_clients", "gauge", "Connected clients.", s.clients);
    metric_u64(&t, "arenad_pools", "gauge", "Pool heaps (one per uid).", s.pools);
    metric_u64(&t, "arenad_leases", "gauge", "Leases held.", s.leases);
    metric_u64(&t, "arenad_waiting_requests", "gauge", "Lease requests queued for memory.",
               s.waiters);
    metric_u64(&t, "arenad_parked_bytes", "gauge",
               "Leased bytes in parked leases (the daemon may take them back).", s.parked_bytes);
    ad_leases_adopt_stats_t as;
    ad_leases_adopt_stats(a->leases, &as);
    metric_u64(&t, "arenad_restart_held_bytes", "gauge",
               "Bytes of a previous daemon's leases kept for their clients to claim back "
               "(they count against the budget).",
               as.orphan_bytes);
    metric_u64(&t, "arenad_reclaimed_leases_total", "counter",
               "Parked leases taken back without the client's help.", s.reclaimed_total);
    metric_u64(&t, "arenad_reclaimed_bytes_total", "counter", "Bytes of those leases.",
               s.reclaimed_bytes_total);
    metric_u64(&t, "arenad_parked_decay_bytes_total", "counter",
               "Of those, bytes taken back because they stayed parked for parked_decay_ms.",
               s.parked_decay_bytes_total);
    metric_u64(&t, "arenad_pressure_notifications_total", "counter",
               "Pressure notifications sent to clients above their fair share.", s.pressure_total);
    metric_head(&t, "arenad_uptime_seconds", "gauge", "Seconds since the daemon started.");
    text_printf(&t, "arenad_uptime_seconds %.3f\n",
                (double)(now_ms >= a->start_ms ? now_ms - a->start_ms : 0) / 1000.0);
    metric_u64(&t, "arenad_leases_granted_total", "counter", "Leases granted.", s.granted_total);
    metric_u64(&t, "arenad_leases_released_total", "counter", "Leases released.", s.released_total);
    metric_u64(&t, "arenad_punched_bytes_total", "counter",
               "Bytes of pages returned to the kernel.", s.punched_total);
    metric_u64(&t, "arenad_requests_refused_total", "counter",
               "Lease requests refused (no memory, too large, limit, timed out).", s.refused_total);
    metric_u64(&t, "arenad_protocol_errors_total", "counter",
               "Malformed, oversized or out-of-sequence frames.",
               a->counters.protocol_errors_total);
    metric_u64(&t, "arenad_connections_total", "counter", "Connections accepted.",
               a->counters.connections_total);
    metric_u64(&t, "arenad_connections_refused_total", "counter",
               "Connections refused (max_clients reached).", a->counters.connections_refused_total);

    client_metrics_t cm = {.t = &t, .caller = caller, .family = FAMILY_LEASED_BYTES};
    metric_head(&t, "arenad_client_leased_bytes", "gauge", "Bytes leased by one client.");
    (void)ad_leases_foreach_client(a->leases, metric_client, &cm);
    cm.family = FAMILY_LEASES;
    metric_head(&t, "arenad_client_leases", "gauge", "Leases held by one client.");
    (void)ad_leases_foreach_client(a->leases, metric_client, &cm);
    cm.family = FAMILY_LIVE_BYTES;
    metric_head(&t, "arenad_client_live_bytes", "gauge",
                "Bytes one client's allocator says it holds live (its own figure, at most what "
                "it leases).");
    (void)ad_leases_foreach_client(a->leases, metric_client, &cm);

    if (t.error < 0) {
        free(t.buf);
        return t.error;
    }
    *ret_text = t.buf;
    return 0;
}

/* ---- heap map ------------------------------------------------------------------ */

int ad_admin_map(const ad_admin_t *a, const ad_admin_caller_t *caller, bool by_uid, uid_t uid,
                 size_t max_extents, ad_wire_map_t *ret_map)
{
    if (!a || !caller || !ret_map)
        return -EINVAL;
    if (by_uid && !may_see(caller, uid))
        return -EPERM;
    /* Without a uid: every pool for a privileged caller, else the caller's
     * own (which exists: the caller is a client of it). */
    bool all = !by_uid && caller->privileged;
    return ad_heapmap_build(a->leases, all, by_uid ? uid : caller->uid, max_extents, ret_map);
}
