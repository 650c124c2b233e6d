/* SPDX-License-Identifier: MIT
 *
 * events.h -- the daemon's own event log of lease decisions: a bounded ring
 * of grants, refusals, queued requests, reclaims and pressure notifications,
 * each with the fair share and the reclaimable memory of that moment, so
 * tests and operators can check the no-starvation rule after the fact.
 */
#ifndef AD_EVENTS_H
#define AD_EVENTS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Numbered as arena.v1.EventKind. */
typedef enum ad_event_kind {
    AD_EVENT_GRANT = 1,
    AD_EVENT_REFUSE = 2,
    AD_EVENT_RECLAIM = 3,
    AD_EVENT_PRESSURE = 4,
    AD_EVENT_QUEUE = 5,
    AD_EVENT_SHARE = 6,   /* a token was made from lease_id */
    AD_EVENT_ATTACH = 7,  /* client attached a share as lease_id */
    AD_EVENT_DETACH = 8,  /* a holder of a shared extent let go of lease_id */
    AD_EVENT_UNSHARE = 9, /* a token of lease_id was revoked or spent */
} ad_event_kind_t;

typedef struct ad_event {
    uint64_t seq; /* set by ad_events_add(), from 1 */
    uint64_t time_ms;
    ad_event_kind_t kind;
    uint64_t client_id;
    pid_t pid;
    uint64_t bytes;
    uint64_t leased;        /* the client's leased bytes before the event */
    uint64_t fair_share;    /* the client's fair share at that moment */
    uint64_t reclaimable;   /* parked bytes of every client at that moment */
    uint64_t budget_leased; /* leased bytes daemon-wide at that moment */
    uint64_t lease_id;
} ad_event_t;

typedef struct ad_events ad_events_t;

#define AD_EVENTS_DEFAULT_CAPACITY 16384u

/* A ring of capacity events (0: the default). Returns 0, -ENOMEM. */
int ad_events_new(size_t capacity, ad_events_t **ret_events);

/* NULL-safe. */
void ad_events_free(ad_events_t *events);

/* Appends a copy of *event with the next sequence number, dropping the
 * oldest event when the ring is full. Returns the sequence number. */
uint64_t ad_events_add(ad_events_t *events, const ad_event_t *event);

/* Copies up to max events with seq > since, oldest first, into out.
 * *ret_dropped: how many events after `since` the ring no longer holds.
 * Returns the number copied. */
size_t ad_events_read(const ad_events_t *events, uint64_t since, ad_event_t *out, size_t max,
                      uint64_t *ret_dropped);

/* The newest sequence number (0: none yet). */
uint64_t ad_events_last_seq(const ad_events_t *events);

const char *ad_event_kind_name(ad_event_kind_t kind);

#endif
