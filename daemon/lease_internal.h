/* SPDX-License-Identifier: MIT
 *
 * lease_internal.h -- what the three files of the lease manager share: the
 * records behind ad_leases_t and the helpers one file calls in another.
 *
 * Only lease.c, reclaim.c and adopt.c include this header; the rest of the
 * daemon sees the manager through lease.h alone. Calls go one way, down:
 *
 *     reclaim.c (the no-starvation policy, the purge)
 *         |            \
 *         |          adopt.c (pools adopted after a restart, claims, grace)
 *         |            /
 *     lease.c (the books: clients, pools, leases, limits, views)
 *
 * Declarations are grouped by the file that defines them. Loop thread only,
 * like the manager itself.
 */
#ifndef AD_LEASE_INTERNAL_H
#define AD_LEASE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "avl.h"
#include "control.h"
#include "events.h"
#include "heap.h"
#include "lease.h"
#include "ledger.h"

/* An extent the previous daemon had leased, known from its ledger, waiting
 * for its client to claim it back (restart.c's fd-store path). */
typedef struct orphan {
    uint64_t offset;
    uint64_t size;
    pid_t pid;      /* the process that held it (0: unknown); only it may claim */
    uint64_t start; /* and its start time (procid.h; 0: unknown) */
    bool taken;
    uint32_t ledger_slot;
} orphan_t;

typedef struct pool {
    arena__avl_node_t node; /* in ad_leases.pools, by (uid, serial) */
    uid_t uid;
    uint64_t serial; /* daemon-wide pool number, from 1 */
    dev_t dev;       /* the memfd's identity, to recognise it when handed back */
    ino_t ino;
    ad_heap_t *heap;
    uint64_t leased_bytes;
    /* Adoption after a daemon restart (DESIGN.md section 7). A pool handed
     * back by a client is `unknown` until grace_until_ms: any byte of it may
     * hold a live lease of a client that has not re-registered yet, so it
     * grants nothing and takes claims of non-overlapping extents. A pool
     * from the fd store comes with the ledger's extents as orphans: the rest
     * was punched at adoption and is granted at once, and a claim must name
     * an orphan exactly. When the grace ends, unclaimed space is punched and
     * free, except orphans whose process still lives: they stay reserved for
     * it, looked at again at recheck_ms, until it claims them or is gone. */
    bool unknown;
    uint64_t grace_until_ms; /* 0: no grace period (over, or never) */
    uint64_t recheck_ms;     /* after the grace: next look at held orphans; 0: none */
    orphan_t *orphans;
    size_t orphan_count;
    uint64_t orphan_bytes; /* of orphans not taken: in the heap, in nobody's lease */
} pool_t;

typedef struct client {
    arena__avl_node_t node; /* in ad_leases.clients, by id */
    uint64_t id;
    pid_t pid;
    uint64_t start; /* the process's start time (procid.h); 0: unknown */
    uid_t uid;
    gid_t gid;
    char name[AD_LEASES_NAME_MAX + 1];
    uint64_t connected_at_ms;
    pool_t *pool;
    arena__avl_t leases; /* lease_t.in_client, by id */
    uint64_t leased_bytes;
    uint32_t waiting;       /* requests of this client in the wait queue */
    uint64_t waiting_bytes; /* bytes they ask for */
    ad_control_t *control;  /* the client's control region */
    void *data;             /* the dispatcher's session */
    uint32_t weight;
    uint64_t cap;
    uint64_t guarantee;
    uint64_t pressure_at_ms; /* last pressure note; 0: never */
    bool pressured;
} client_t;

typedef struct lease {
    arena__avl_node_t by_id;     /* in ad_leases.leases */
    arena__avl_node_t in_client; /* in client_t.leases */
    uint64_t id;
    uint64_t offset;
    uint64_t size;
    uint64_t granted_at_ms;
    bool zeroed;
    uint32_t slot;       /* in client->control */
    uint64_t generation; /* the daemon's record; never read back from the region */
    client_t *client;
    uint32_t ledger_slot;    /* AD_LEDGER_NONE: not in the ledger */
    uint64_t parked_seen_ms; /* first scan that found it PARKED, of an unbroken run (0: none) */
} lease_t;

typedef struct waiter {
    struct waiter *next;
    uint64_t client_id;
    uint64_t size;
    uint64_t deadline_ms;
    void *owner;
    uint64_t request_id;
} waiter_t;

struct ad_leases {
    ad_leases_config_t config;
    arena__avl_t pools;
    arena__avl_t clients;
    arena__avl_t leases;
    uint64_t leased_total;
    uint64_t next_client_id;
    uint64_t next_lease_id;
    uint64_t granted_total;
    uint64_t released_total;
    uint64_t refused_total;
    uint64_t punched_gone; /* punched bytes of pools freed (none today) */
    waiter_t *wait_head;
    waiter_t **wait_tail;
    uint64_t waiters;
    ad_fair_rule_t *rules;
    size_t rule_count;
    ad_events_t *events;
    ad_leases_notify_fn notify;
    void *notify_ctx;
    uint64_t reclaimed_total;
    uint64_t reclaimed_bytes_total;
    uint64_t pressure_total;
    uint64_t retry_at_ms; /* when a blocked queue is retried next; 0: not blocked */
    uint64_t next_pool_serial;
    uint64_t orphan_bytes;             /* of every pool: reserved, counted against the budget */
    uint64_t grace_until_ms;           /* latest grace end of any pool; 0: none */
    uint64_t parked_scan_at_ms;        /* next scan for decayed parked leases; 0: none due */
    uint64_t parked_decay_bytes_total; /* bytes taken back by the parked decay */
    ad_leases_adopt_stats_t adopt;     /* claims and adoptions */
    ad_ledger_t *ledger;               /* NULL: no fd store to survive in */
    bool ledger_frozen;                /* the daemon stops: its records must outlive it */
    ad_leases_pool_fn pool_hook;       /* told about every new pool */
    void *pool_hook_ctx;
};

/* What ad_leases__lease_drop() does with the pages of the extent. */
typedef enum drop_pages {
    DROP_DECAY,  /* dirty for the decay delay: the owner may take them back */
    DROP_PUNCH,  /* punched now */
    DROP_URGENT, /* the extent changes owner: punched by the next purge, in slices */
} drop_pages_t;

/* ---- lease.c: the books -------------------------------------------------- */

/* The client with id, or NULL. */
client_t *ad_leases__client_find(const ad_leases_t *m, uint64_t id);

/* Files a new pool (heap made or adopted) under the next serial, records
 * its memfd's identity and tells the pool hook. */
void ad_leases__pool_insert(ad_leases_t *m, pool_t *p, uid_t uid);

/* Registers a client leasing from pool (its control region, weight, cap and
 * guarantee from the rules). Returns 0 and *ret_client_id, or -ENOMEM,
 * -errno from ad_control_new(). */
int ad_leases__client_create(ad_leases_t *m, pool_t *pool, pid_t pid, uid_t uid, gid_t gid,
                             const char *name, uint64_t now_ms, uint64_t *ret_client_id);

/* Records a lease in the ledger (when there is one); sets l->ledger_slot. */
void ad_leases__ledger_add(ad_leases_t *m, lease_t *l);

/* Takes a lease out of every index and returns its extent to the heap,
 * its pages as `pages` says; frees l. Returns 0, or -ENOMEM (the heap could
 * not allocate its bookkeeping; the lease stays as it was). */
int ad_leases__lease_drop(ad_leases_t *m, lease_t *l, uint64_t now_ms, drop_pages_t pages);

/* A grant with no policy: the limits, the budget (orphans included) and
 * the heap decide. Returns 0 and *ret_grant, or -EINVAL, -E2BIG, -EDQUOT,
 * -ENOMEM (does not fit now; nothing was taken back). */
int ad_leases__grant_checked(ad_leases_t *m, client_t *c, uint64_t size, uint64_t now_ms,
                             ad_lease_grant_t *ret_grant);

/* Every client's fair share, in client id order, with `extra` more bytes
 * asked for by client `who` (NULL: none). Returns a malloc'd array of
 * m->clients.count entries (NULL when there are no clients or no memory). */
uint64_t *ad_leases__shares(const ad_leases_t *m, const client_t *who, uint64_t extra);

/* The fair share of one client (see ad_leases__shares()); 0 without memory. */
uint64_t ad_leases__share_of(const ad_leases_t *m, const client_t *c, uint64_t extra);

/* Bytes of every client's leases whose state word says PARKED now. */
uint64_t ad_leases__parked_total(const ad_leases_t *m);

/* ---- adopt.c: adoption after a restart ------------------------------------ */

/* Ends the grace period of every pool whose time is up (space nobody
 * claimed is punched and free; orphans of living processes stay reserved
 * and are looked at again a second later) and sets m->grace_until_ms to the
 * next such time. Returns the bytes punched or released to be punched. */
uint64_t ad_leases__grace_end(ad_leases_t *m, uint64_t now_ms);

#endif
