/* SPDX-License-Identifier: MIT
 *
 * shares.c -- `arenactl shares`: the no-starvation policy per client, i.e.
 * what each holds (leased, live, parked) against the max-min fair share it
 * is entitled to now, its weight and the requests it has waiting. The table
 * is laid out for that question; --json prints the whole client records.
 * Runs on the calling thread; prints only to the FILE it is given.
 */
#include <inttypes.h>

#include "ctl.h"

int arena__ctl_print_shares(arena_conn_t *conn, bool json, FILE *out)
{
    arena__admin_clients_t *list = NULL;
    int r = arena__admin_clients(conn, &list);
    if (r < 0)
        return r;
    if (json) {
        json_object *doc = json_object_new_object();
        if (doc)
            (void)json_object_object_add(doc, "clients",
                                         arena__ctl_records_json(&arena__ctl_rec_client,
                                                                 list->items, list->count,
                                                                 sizeof(list->items[0])));
        r = arena__ctl_json_print(out, doc);
    } else {
        (void)fprintf(out, "%8s %8s %-16s %10s %10s %10s %10s %6s %8s %10s\n", "ID", "PID", "NAME",
                      "LEASED", "LIVE", "PARKED", "SHARE", "WEIGHT", "WAITING", "WANTED");
        for (size_t i = 0; i < list->count; i++) {
            const arena__admin_client_t *c = &list->items[i];
            char a[32], b[32], d[32], e[32], l[32];
            (void)fprintf(out,
                          "%8" PRIu64 " %8" PRIu32 " %-16.16s %10s %10s %10s %10s %6" PRIu32
                          " %8" PRIu32 " %10s\n",
                          c->client_id, c->pid, c->name,
                          arena__ctl_size(c->leased_bytes, a, sizeof(a)),
                          arena__ctl_size(c->live_bytes, l, sizeof(l)),
                          arena__ctl_size(c->parked_bytes, b, sizeof(b)),
                          arena__ctl_size(c->fair_share, d, sizeof(d)), c->weight, c->waiting,
                          arena__ctl_size(c->waiting_bytes, e, sizeof(e)));
        }
    }
    arena__admin_clients_free(list);
    return r;
}

int arena__ctl_run_shares(arena_conn_t *conn, const arena__ctl_args_t *a, FILE *out, FILE *err)
{
    (void)err;
    return arena__ctl_print_shares(conn, a->json, out);
}
