/* SPDX-License-Identifier: MIT
 *
 * events.c -- `arenactl events`: the daemon's event log (grants, refusals,
 * reclaims, pressure), paged through from a sequence number until the daemon
 * has nothing newer. The table and the JSON come from the event record's
 * field list. The JSON document is built whole before anything is printed,
 * so a failure leaves no half document. Runs on the calling thread.
 */
#include <errno.h>
#include <inttypes.h>

#include "ctl.h"

int arena__ctl_print_events(arena_conn_t *conn, uint64_t since, bool json, FILE *out)
{
    uint64_t dropped = 0, last = 0;
    size_t total = 0;
    json_object *items = NULL;
    if (json) {
        items = json_object_new_array();
        if (!items)
            return -ENOMEM;
    }
    for (;;) {
        arena__admin_events_t *list = NULL;
        int r = arena__admin_events(conn, since, 0, &list);
        if (r < 0) {
            json_object_put(items);
            return r;
        }
        if (total == 0) {
            dropped = list->dropped;
            if (!json)
                arena__ctl_table_head(&arena__ctl_rec_event, out);
        }
        last = list->last_seq;
        for (size_t i = 0; i < list->count; i++) {
            const arena__admin_event_t *e = &list->items[i];
            since = e->seq;
            if (json)
                (void)json_object_array_add(items,
                                            arena__ctl_record_json(&arena__ctl_rec_event, e));
            else
                arena__ctl_table_row(&arena__ctl_rec_event, e, out);
        }
        size_t n = list->count;
        total += n;
        arena__admin_events_free(list);
        if (n == 0)
            break;
    }
    if (json) {
        json_object *doc = json_object_new_object();
        if (!doc) {
            json_object_put(items);
            return -ENOMEM;
        }
        (void)json_object_object_add(doc, "events", items);
        (void)json_object_object_add(doc, "dropped", arena__ctl_json_u64(dropped));
        (void)json_object_object_add(doc, "last_seq", arena__ctl_json_u64(last));
        return arena__ctl_json_print(out, doc);
    }
    (void)fprintf(out, "%zu event%s (%" PRIu64 " lost to the ring before these)\n", total,
                  total == 1 ? "" : "s", dropped);
    return 0;
}

int arena__ctl_run_events(arena_conn_t *conn, const arena__ctl_args_t *a, FILE *out, FILE *err)
{
    (void)err;
    return arena__ctl_print_events(conn, a->since, a->json, out);
}
