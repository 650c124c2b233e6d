/* SPDX-License-Identifier: MIT
 *
 * views.c -- the one-shot views: `status`, `clients`, `leases` and `reclaim`.
 *
 * Each asks the daemon once and prints either a table (human sizes and
 * durations) or one JSON document built from the records' field lists, so a
 * field the daemon starts sending appears in --json without a change here.
 * `status` keeps its hand-laid summary for the fields it knows and prints
 * any field with a heading on a line of its own after it. Runs on the calling
 * thread; prints only to the FILE it is given.
 */
#include <inttypes.h>

#include "ctl.h"

/* A JSON document {key: [records]}. */
static json_object *views_list_json(const char *key, const arena__ctl_record_t *rec,
                                    const void *items, size_t n, size_t size)
{
    json_object *doc = json_object_new_object();
    if (doc)
        (void)json_object_object_add(doc, key, arena__ctl_records_json(rec, items, n, size));
    return doc;
}

static void status_summary(const arena__admin_status_t *st, FILE *out)
{
    char a[32], b[32];
    (void)fprintf(out, "arenad %s, up %s, socket %s\n", st->daemon_version,
                  arena__ctl_duration(st->uptime_ms, a, sizeof(a)), st->socket_path);
    (void)fprintf(out, "  budget        %s\n", arena__ctl_size(st->budget, a, sizeof(a)));
    (void)fprintf(out, "  heap size     %s per pool, %" PRIu32 " pool%s\n",
                  arena__ctl_size(st->heap_size, a, sizeof(a)), st->pools,
                  st->pools == 1 ? "" : "s");
    (void)fprintf(out, "  leased        %s in %" PRIu64 " lease%s\n",
                  arena__ctl_size(st->leased_bytes, a, sizeof(a)), st->leases,
                  st->leases == 1 ? "" : "s");
    /* After a restart: in nobody's lease, yet not free (it counts against the budget). */
    if (st->restart_held_bytes > 0)
        (void)fprintf(out,
                      "  held          %s after restart (reserved for clients to claim back)\n",
                      arena__ctl_size(st->restart_held_bytes, a, sizeof(a)));
    if (st->restart_grace_left_ms > 0 || st->restart_held_leases > 0) {
        (void)fprintf(out, "  restart       ");
        if (st->restart_grace_left_ms > 0)
            (void)fprintf(out, "grace period running, %s left; ",
                          arena__ctl_duration(st->restart_grace_left_ms, a, sizeof(a)));
        else
            (void)fprintf(out, "grace period over; ");
        (void)fprintf(out, "%" PRIu64 " lease%s (%s) held for %s clients", st->restart_held_leases,
                      st->restart_held_leases == 1 ? "" : "s",
                      arena__ctl_size(st->restart_held_bytes, b, sizeof(b)),
                      st->restart_grace_left_ms > 0 ? "returning" : "living");
        if (st->restart_unknown_pools > 0)
            (void)fprintf(out, "; %" PRIu32 " pool%s handed back by clients grant%s nothing yet",
                          st->restart_unknown_pools, st->restart_unknown_pools == 1 ? "" : "s",
                          st->restart_unknown_pools == 1 ? "s" : "");
        (void)fprintf(out, "\n");
    }
    (void)fprintf(out, "  free          %s in %" PRIu64 " extent%s, largest %s\n",
                  arena__ctl_size(st->free_bytes, a, sizeof(a)), st->free_extents,
                  st->free_extents == 1 ? "" : "s",
                  arena__ctl_size(st->largest_free, b, sizeof(b)));
    (void)fprintf(out, "  dirty         %s (released, not yet punched)\n",
                  arena__ctl_size(st->dirty_bytes, a, sizeof(a)));
    (void)fprintf(out, "  fragmentation %.1f%%\n", st->fragmentation * 100.0);
    (void)fprintf(out, "  clients       %" PRIu32 "\n", st->clients);
    (void)fprintf(out,
                  "  totals        %" PRIu64 " granted, %" PRIu64 " released, %s punched, "
                  "%" PRIu64 " refused, %" PRIu64 " protocol errors, %" PRIu64 " connections\n",
                  st->leases_granted_total, st->leases_released_total,
                  arena__ctl_size(st->bytes_punched_total, a, sizeof(a)),
                  st->requests_refused_total, st->protocol_errors_total, st->connections_total);
    /* Fields the summary does not lay out: one line each, from the field list. */
    const arena__ctl_record_t *rec = &arena__ctl_rec_status;
    for (size_t i = 0; i < rec->count; i++) {
        const arena__ctl_field_t *f = &rec->fields[i];
        char buf[256];
        if (f->heading)
            (void)fprintf(out, "  %-13s %s\n", f->heading,
                          arena__ctl_cell(f, st, buf, sizeof(buf)));
    }
}

int arena__ctl_run_status(arena_conn_t *conn, const arena__ctl_args_t *a, FILE *out, FILE *err)
{
    (void)err;
    arena__admin_status_t st;
    int r = arena__admin_status(conn, &st);
    if (r < 0)
        return r;
    if (a->json)
        return arena__ctl_json_print(out, arena__ctl_record_json(&arena__ctl_rec_status, &st));
    status_summary(&st, out);
    return 0;
}

int arena__ctl_run_clients(arena_conn_t *conn, const arena__ctl_args_t *a, FILE *out, FILE *err)
{
    (void)err;
    arena__admin_clients_t *list;
    int r = arena__admin_clients(conn, &list);
    if (r < 0)
        return r;
    if (a->json) {
        r = arena__ctl_json_print(out,
                                  views_list_json("clients", &arena__ctl_rec_client, list->items,
                                                  list->count, sizeof(list->items[0])));
    } else {
        arena__ctl_table_head(&arena__ctl_rec_client, out);
        for (size_t i = 0; i < list->count; i++)
            arena__ctl_table_row(&arena__ctl_rec_client, &list->items[i], out);
        (void)fprintf(out, "%zu client%s\n", list->count, list->count == 1 ? "" : "s");
    }
    arena__admin_clients_free(list);
    return r;
}

int arena__ctl_run_leases(arena_conn_t *conn, const arena__ctl_args_t *a, FILE *out, FILE *err)
{
    (void)err;
    arena__admin_leases_t *list;
    int r = arena__admin_leases(conn, a->client_id, &list);
    if (r < 0)
        return r;
    if (a->json) {
        r = arena__ctl_json_print(out, views_list_json("leases", &arena__ctl_rec_lease, list->items,
                                                       list->count, sizeof(list->items[0])));
    } else {
        uint64_t total = 0;
        arena__ctl_table_head(&arena__ctl_rec_lease, out);
        for (size_t i = 0; i < list->count; i++) {
            arena__ctl_table_row(&arena__ctl_rec_lease, &list->items[i], out);
            total += list->items[i].size;
        }
        char t[32];
        (void)fprintf(out, "%zu lease%s, %s\n", list->count, list->count == 1 ? "" : "s",
                      arena__ctl_size(total, t, sizeof(t)));
    }
    arena__admin_leases_free(list);
    return r;
}

int arena__ctl_run_reclaim(arena_conn_t *conn, const arena__ctl_args_t *a, FILE *out, FILE *err)
{
    (void)err;
    uint64_t got;
    int r = arena__admin_reclaim(conn, a->bytes, a->client_id, &got);
    if (r < 0)
        return r;
    if (a->json) {
        json_object *doc = json_object_new_object();
        if (doc)
            (void)json_object_object_add(doc, "reclaimed_bytes", arena__ctl_json_u64(got));
        return arena__ctl_json_print(out, doc);
    }
    char s[32];
    (void)fprintf(out, "reclaimed %s\n", arena__ctl_size(got, s, sizeof(s)));
    return 0;
}
