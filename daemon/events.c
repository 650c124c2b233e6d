/* SPDX-License-Identifier: MIT
 *
 * events.c -- the bounded ring behind the daemon's event log.
 *
 * The lease manager appends one record per decision; the admin path reads
 * them by sequence number, so a reader that polls with the last number it saw
 * gets every event exactly once and learns how many it missed when the ring
 * wrapped in between. The ring is allocated once; appending never fails and
 * never allocates. Loop thread only.
 */
#include "events.h"

#include <errno.h>
#include <stdlib.h>

struct ad_events {
    ad_event_t *ring;
    size_t capacity;
    uint64_t next_seq; /* the sequence number of the next event, from 1 */
};

int ad_events_new(size_t capacity, ad_events_t **ret_events)
{
    if (!ret_events)
        return -EINVAL;
    if (capacity == 0)
        capacity = AD_EVENTS_DEFAULT_CAPACITY;
    ad_events_t *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->ring = calloc(capacity, sizeof(*e->ring));
    if (!e->ring) {
        free(e);
        return -ENOMEM;
    }
    e->capacity = capacity;
    e->next_seq = 1;
    *ret_events = e;
    return 0;
}

void ad_events_free(ad_events_t *e)
{
    if (!e)
        return;
    free(e->ring);
    free(e);
}

uint64_t ad_events_add(ad_events_t *e, const ad_event_t *event)
{
    uint64_t seq = e->next_seq++;
    ad_event_t *slot = &e->ring[(seq - 1) % e->capacity];
    *slot = *event;
    slot->seq = seq;
    return seq;
}

size_t ad_events_read(const ad_events_t *e, uint64_t since, ad_event_t *out, size_t max,
                      uint64_t *ret_dropped)
{
    uint64_t last = e->next_seq - 1;
    uint64_t oldest = last >= e->capacity ? last - e->capacity + 1 : 1;
    uint64_t first = since + 1;
    uint64_t dropped = 0;
    if (first < oldest) {
        dropped = oldest - first;
        first = oldest;
    }
    size_t n = 0;
    for (uint64_t s = first; s <= last && n < max; s++)
        out[n++] = e->ring[(s - 1) % e->capacity];
    if (ret_dropped)
        *ret_dropped = dropped;
    return n;
}

uint64_t ad_events_last_seq(const ad_events_t *e)
{
    return e->next_seq - 1;
}

const char *ad_event_kind_name(ad_event_kind_t kind)
{
    switch (kind) {
    case AD_EVENT_GRANT:
        return "grant";
    case AD_EVENT_REFUSE:
        return "refuse";
    case AD_EVENT_RECLAIM:
        return "reclaim";
    case AD_EVENT_PRESSURE:
        return "pressure";
    case AD_EVENT_QUEUE:
        return "queue";
    case AD_EVENT_SHARE:
        return "share";
    case AD_EVENT_ATTACH:
        return "attach";
    case AD_EVENT_DETACH:
        return "detach";
    case AD_EVENT_UNSHARE:
        return "unshare";
    }
    return "unknown";
}
