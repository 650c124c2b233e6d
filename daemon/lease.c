/* SPDX-License-Identifier: MIT
 *
 * lease.c -- clients, their leases, per-uid pools, the budget and the wait
 * queue.
 *
 * Three indexes, all intrusive AVL trees: clients by id; every lease by id
 * daemon-wide, so a release of another client's lease is told apart from an
 * unknown id (NOT_OWNER versus NOT_FOUND); and each client's own leases by id,
 * so a disconnect returns everything the client held in O(k log n). Pools are
 * keyed by uid and live until the manager is freed: a uid that reconnects
 * finds its memfd again. Lease and client ids only grow, so an id is never
 * reused and a stale id can only ever be NOT_FOUND.
 *
 * The budget counts leased bytes, not resident pages: released-but-dirty
 * pages are free space that the heap punches before another owner gets them.
 * A request that does not fit may queue (FIFO) until memory comes back or its
 * deadline passes; the caller drives the queue after anything that frees
 * memory. Loop thread only. ad_leases_is_valid() cross-checks the counters.
 *
 * No starvation (DESIGN.md sections 4 and 5): every client has a control
 * region (control.c); each lease owns a slot and a generation there, recorded
 * here and never read back from the region. A client parks an idle lease by
 * storing PARKED in its word; the manager takes parked leases back by CAS
 * whenever a request does not fit -- from the clients furthest above their
 * max-min fair share (fairshare.c) first -- punches them and tells their
 * owners (the pages of a lease taken for a waiting request are punched by
 * the next purge, in slices, not before the reply: the heap grants clean space
 * meanwhile, see extent.c). Only when nothing parked is left does it send
 * pressure to clients above their share, queue the request, and at last
 * refuse it. The rule this
 * guarantees, and the event log (events.c) records for tests to check, is
 * written at grant_policy(): a client at or under its fair share is never
 * refused while parked memory exists.
 */
#include "lease.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "avl.h"
#include "control.h"
#include "fairshare.h"
#include "heap.h"
#include "ledger.h"
#include "size.h"

/* Pressure goes to one client at most this often: a request retried after
 * every event must not flood a busy client's socket. While a request waits,
 * the queue is retried (and pressure repeated) at this period even when
 * nothing else happens, so a client that missed or ignored one note gets
 * another. */
#define LEASES_PRESSURE_INTERVAL_MS 100

/* Bytes of reclaimed extents one purge punches per pool (about 0.13 ms of
 * fallocate on touched pages, at 0.25 ms per MiB), so a request that arrives
 * meanwhile waits at most that long. A reclaim hands the budget over at once
 * and the pages follow within milliseconds (bench-reclaim). */
#define LEASES_URGENT_SLICE ((uint64_t)512 * 1024)

/* An extent the previous daemon had leased, known from its ledger, waiting
 * for its client to claim it back (restart.c's fd-store path). */
typedef struct orphan {
    uint64_t offset;
    uint64_t size;
    pid_t pid; /* the process that held it (0: unknown); only it may claim */
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
    uint32_t ledger_slot; /* AD_LEDGER_NONE: not in the ledger */
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
    uint64_t orphan_bytes;         /* of every pool: reserved, counted against the budget */
    uint64_t grace_until_ms;       /* latest grace end of any pool; 0: none */
    ad_leases_adopt_stats_t adopt; /* claims and adoptions */
    ad_ledger_t *ledger;           /* NULL: no fd store to survive in */
    bool ledger_frozen;            /* the daemon stops: its records must outlive it */
    ad_leases_pool_fn pool_hook;   /* told about every new pool */
    void *pool_hook_ctx;
};

/* Records a lease in the ledger (when there is one). */
static void lease_ledger_add(ad_leases_t *m, lease_t *l)
{
    l->ledger_slot = AD_LEDGER_NONE;
    const pool_t *p = l->client->pool;
    if (m->ledger)
        (void)ad_ledger_add(m->ledger, (uint64_t)p->ino, p->uid, l->client->pid, l->offset, l->size,
                            &l->ledger_slot);
}

static int u64_cmp(uint64_t a, uint64_t b)
{
    return (a > b) - (a < b);
}

static int pool_cmp(const arena__avl_node_t *a, const arena__avl_node_t *b)
{
    const pool_t *pa = ARENA_AVL_ENTRY(a, pool_t, node), *pb = ARENA_AVL_ENTRY(b, pool_t, node);
    int c = u64_cmp(pa->uid, pb->uid);
    return c ? c : u64_cmp(pa->serial, pb->serial);
}

static int client_cmp(const arena__avl_node_t *a, const arena__avl_node_t *b)
{
    return u64_cmp(ARENA_AVL_ENTRY(a, client_t, node)->id, ARENA_AVL_ENTRY(b, client_t, node)->id);
}

static int client_key(const void *key, const arena__avl_node_t *n)
{
    return u64_cmp(*(const uint64_t *)key, ARENA_AVL_ENTRY(n, client_t, node)->id);
}

static int lease_cmp(const arena__avl_node_t *a, const arena__avl_node_t *b)
{
    return u64_cmp(ARENA_AVL_ENTRY(a, lease_t, by_id)->id, ARENA_AVL_ENTRY(b, lease_t, by_id)->id);
}

static int lease_key(const void *key, const arena__avl_node_t *n)
{
    return u64_cmp(*(const uint64_t *)key, ARENA_AVL_ENTRY(n, lease_t, by_id)->id);
}

static int lease_client_cmp(const arena__avl_node_t *a, const arena__avl_node_t *b)
{
    return u64_cmp(ARENA_AVL_ENTRY(a, lease_t, in_client)->id,
                   ARENA_AVL_ENTRY(b, lease_t, in_client)->id);
}

/* Exact lookups over lower_bound. */
static arena__avl_node_t *avl_find(const arena__avl_t *tree, arena__avl_key_fn key_fn,
                                   const void *key)
{
    arena__avl_node_t *n = arena__avl_lower_bound(tree, key_fn, key);
    return (n && key_fn(key, n) == 0) ? n : NULL;
}

static client_t *client_find(const ad_leases_t *m, uint64_t id)
{
    arena__avl_node_t *n = avl_find(&m->clients, client_key, &id);
    return n ? ARENA_AVL_ENTRY(n, client_t, node) : NULL;
}

static lease_t *lease_find(const ad_leases_t *m, uint64_t id)
{
    arena__avl_node_t *n = avl_find(&m->leases, lease_key, &id);
    return n ? ARENA_AVL_ENTRY(n, lease_t, by_id) : NULL;
}

int ad_leases_new(const ad_leases_config_t *config, ad_leases_t **ret_leases)
{
    if (!config || !ret_leases || config->budget == 0 || config->heap_size == 0)
        return -EINVAL;
    ad_leases_t *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->config = *config;
    m->config.fair_rules = NULL;
    m->config.fair_rule_count = 0;
    if (config->fair_rule_count > 0 && config->fair_rules) {
        m->rules = calloc(config->fair_rule_count, sizeof(*m->rules));
        if (!m->rules) {
            free(m);
            return -ENOMEM;
        }
        memcpy(m->rules, config->fair_rules, config->fair_rule_count * sizeof(*m->rules));
        m->rule_count = config->fair_rule_count;
    }
    if (ad_events_new(0, &m->events) < 0) {
        free(m->rules);
        free(m);
        return -ENOMEM;
    }
    arena__avl_init(&m->pools, pool_cmp);
    arena__avl_init(&m->clients, client_cmp);
    arena__avl_init(&m->leases, lease_cmp);
    m->next_client_id = 1;
    m->next_lease_id = 1;
    m->next_pool_serial = 1;
    m->wait_tail = &m->wait_head;
    *ret_leases = m;
    return 0;
}

void ad_leases_free(ad_leases_t *m)
{
    if (!m)
        return;
    arena__avl_node_t *n;
    while ((n = arena__avl_first(&m->clients)) != NULL) {
        client_t *c = ARENA_AVL_ENTRY(n, client_t, node);
        (void)ad_leases_client_free(m, c->id, 0, false);
    }
    while (m->wait_head) {
        waiter_t *w = m->wait_head;
        m->wait_head = w->next;
        free(w);
    }
    while ((n = arena__avl_first(&m->pools)) != NULL) {
        pool_t *p = ARENA_AVL_ENTRY(n, pool_t, node);
        arena__avl_remove(&m->pools, n);
        ad_heap_free(p->heap);
        free(p->orphans);
        free(p);
    }
    ad_events_free(m->events);
    free(m->rules);
    free(m);
}

void ad_leases_reconfigure(ad_leases_t *m, const ad_leases_config_t *config)
{
    if (!m || !config)
        return;
    if (config->budget > 0)
        m->config.budget = config->budget;
    m->config.max_leases_per_client = config->max_leases_per_client;
    m->config.max_bytes_per_uid = config->max_bytes_per_uid;
    /* New rules for clients that connect from now on (none: no rules). */
    if (config->fair_rules && config->fair_rule_count > 0) {
        ad_fair_rule_t *rules = calloc(config->fair_rule_count, sizeof(*rules));
        if (rules) {
            memcpy(rules, config->fair_rules, config->fair_rule_count * sizeof(*rules));
            free(m->rules);
            m->rules = rules;
            m->rule_count = config->fair_rule_count;
        }
    } else {
        free(m->rules);
        m->rules = NULL;
        m->rule_count = 0;
    }
    if (m->config.decay_ms != config->decay_ms) {
        m->config.decay_ms = config->decay_ms;
        for (arena__avl_node_t *n = arena__avl_first(&m->pools); n;
             n = arena__avl_next(&m->pools, n))
            ad_heap_set_decay(ARENA_AVL_ENTRY(n, pool_t, node)->heap, config->decay_ms);
    }
}

/* Files a new pool (heap made or adopted) under the next serial. */
static void pool_insert(ad_leases_t *m, pool_t *p, uid_t uid)
{
    struct stat st;
    p->uid = uid;
    p->serial = m->next_pool_serial++;
    if (fstat(ad_heap_fd(p->heap), &st) == 0) {
        p->dev = st.st_dev;
        p->ino = st.st_ino;
    }
    arena__avl_insert(&m->pools, &p->node);
    if (m->pool_hook)
        m->pool_hook(m->pool_hook_ctx, ad_heap_fd(p->heap), uid, (uint64_t)p->ino);
}

/* The pool new clients of uid lease from: the first of the uid's pools that
 * grants (not one still waiting for claims), made on first use. */
static int pool_get(ad_leases_t *m, uid_t uid, pool_t **ret_pool)
{
    for (arena__avl_node_t *n = arena__avl_first(&m->pools); n; n = arena__avl_next(&m->pools, n)) {
        pool_t *p = ARENA_AVL_ENTRY(n, pool_t, node);
        if (p->uid == uid && !p->unknown) {
            *ret_pool = p;
            return 0;
        }
    }
    pool_t *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    char name[48];
    (void)snprintf(name, sizeof(name), "arenad-pool-uid%lu", (unsigned long)uid);
    ad_heap_config_t hc = {
        .size = m->config.heap_size,
        .small_limit = m->config.small_limit,
        .decay_ms = m->config.decay_ms,
        .hugetlb = m->config.hugetlb,
        .name = name,
    };
    int r = ad_heap_new(&hc, &p->heap);
    if (r < 0) {
        free(p);
        return r;
    }
    pool_insert(m, p, uid);
    *ret_pool = p;
    return 0;
}

/* Registers a client leasing from pool. */
static int client_create(ad_leases_t *m, pool_t *pool, pid_t pid, uid_t uid, gid_t gid,
                         const char *name, uint64_t now_ms, uint64_t *ret_client_id)
{
    client_t *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->pool = pool;
    int r;
    /* Sized for the larger of the limit now and the default, so a reload
     * that raises the limit applies to connected clients too. */
    uint32_t slots = m->config.max_leases_per_client > AD_LEASES_DEFAULT_SLOTS
                         ? m->config.max_leases_per_client
                         : AD_LEASES_DEFAULT_SLOTS;
    if (slots > AD_CONTROL_MAX_SLOTS)
        slots = AD_CONTROL_MAX_SLOTS;
    char cname[48];
    (void)snprintf(cname, sizeof(cname), "arenad-control-%" PRIu64, m->next_client_id);
    r = ad_control_new(slots, cname, &c->control);
    if (r < 0) {
        free(c);
        return r;
    }
    c->weight = 1;
    for (size_t i = 0; i < m->rule_count; i++) {
        if (m->rules[i].uid == uid) {
            c->weight = m->rules[i].weight ? m->rules[i].weight : 1;
            c->cap = m->rules[i].cap;
            c->guarantee = m->rules[i].guarantee;
        }
    }
    c->id = m->next_client_id++;
    c->pid = pid;
    c->uid = uid;
    c->gid = gid;
    (void)snprintf(c->name, sizeof(c->name), "%s", name ? name : "");
    c->connected_at_ms = now_ms;
    arena__avl_init(&c->leases, lease_client_cmp);
    arena__avl_insert(&m->clients, &c->node);
    *ret_client_id = c->id;
    return 0;
}

int ad_leases_client_new(ad_leases_t *m, pid_t pid, uid_t uid, gid_t gid, const char *name,
                         uint64_t now_ms, uint64_t *ret_client_id)
{
    if (!m || !ret_client_id)
        return -EINVAL;
    pool_t *pool;
    int r = pool_get(m, uid, &pool);
    if (r < 0)
        return r;
    return client_create(m, pool, pid, uid, gid, name, now_ms, ret_client_id);
}

/* What lease_drop() does with the pages of the extent. */
typedef enum drop_pages {
    DROP_DECAY,  /* dirty for the decay delay: the owner may take them back */
    DROP_PUNCH,  /* punched now */
    DROP_URGENT, /* the extent changes owner: punched by the next purge, in slices */
} drop_pages_t;

/* Takes a lease out of every index and returns its extent to the heap.
 * Returns 0, or -ENOMEM (the heap could not allocate its bookkeeping; the
 * lease stays as it was). */
static int lease_drop_pages(ad_leases_t *m, lease_t *l, uint64_t now_ms, drop_pages_t pages)
{
    client_t *c = l->client;
    int r = pages == DROP_URGENT
                ? ad_heap_release_urgent(c->pool->heap, l->offset, l->size, now_ms)
                : ad_heap_release(c->pool->heap, l->offset, l->size, now_ms, pages == DROP_PUNCH);
    if (r == -ENOMEM)
        return r;
    /* The heap and the table disagreeing is our bug, never peer input. */
    if (r < 0)
        abort();
    (void)ad_control_release(c->control, l->slot, l->generation);
    if (!m->ledger_frozen)
        ad_ledger_remove(m->ledger, l->ledger_slot);
    arena__avl_remove(&m->leases, &l->by_id);
    arena__avl_remove(&c->leases, &l->in_client);
    c->leased_bytes -= l->size;
    c->pool->leased_bytes -= l->size;
    m->leased_total -= l->size;
    m->released_total++;
    free(l);
    return 0;
}

static int lease_drop(ad_leases_t *m, lease_t *l, uint64_t now_ms, bool punch_now)
{
    return lease_drop_pages(m, l, now_ms, punch_now ? DROP_PUNCH : DROP_DECAY);
}

int ad_leases_client_free(ad_leases_t *m, uint64_t client_id, uint64_t now_ms, bool punch)
{
    if (!m)
        return -EINVAL;
    client_t *c = client_find(m, client_id);
    if (!c)
        return -ENOENT;
    /* Drop its queued requests. */
    waiter_t **pp = &m->wait_head;
    m->wait_tail = &m->wait_head;
    while (*pp) {
        waiter_t *w = *pp;
        if (w->client_id == client_id) {
            c->waiting_bytes -= w->size;
            *pp = w->next;
            free(w);
            m->waiters--;
            continue;
        }
        m->wait_tail = &w->next;
        pp = &w->next;
    }
    int released = 0;
    arena__avl_node_t *n;
    /* Without punch the daemon is stopping: the leases leave the books but
     * stay in the ledger, for the daemon that comes next. */
    m->ledger_frozen = !punch;
    while ((n = arena__avl_first(&c->leases)) != NULL) {
        /* The client is gone; its extents cannot stay. Out of memory for
         * a few bytes of bookkeeping here is fatal, like any OOM abort. */
        if (lease_drop(m, ARENA_AVL_ENTRY(n, lease_t, in_client), now_ms, punch) < 0)
            abort();
        released++;
    }
    m->ledger_frozen = false;
    arena__avl_remove(&m->clients, &c->node);
    ad_control_free(c->control);
    free(c);
    return released;
}

int ad_leases_pool_info(const ad_leases_t *m, uint64_t client_id, ad_pool_info_t *ret_info)
{
    if (!m || !ret_info)
        return -EINVAL;
    const client_t *c = client_find(m, client_id);
    if (!c)
        return -ENOENT;
    ret_info->fd = ad_heap_fd(c->pool->heap);
    ret_info->heap_size = ad_heap_size(c->pool->heap);
    ret_info->granule = ad_heap_granule(c->pool->heap);
    ret_info->hugetlb = ad_heap_is_hugetlb(c->pool->heap);
    return 0;
}

/* The per-client and per-uid limits, in the order grants check them. */
typedef enum limit_hit {
    LIMIT_NONE,
    LIMIT_LEASE_COUNT, /* max_leases_per_client */
    LIMIT_CAP_SIZE,    /* one lease larger than cap.UID */
    LIMIT_CAP,         /* the client's leases would pass cap.UID */
    LIMIT_UID_BYTES,   /* the uid's leases would pass max_bytes_per_uid */
} limit_hit_t;

/* Bytes leased by every client of uid, over all of its pools. */
static uint64_t uid_leased_bytes(const ad_leases_t *m, uid_t uid)
{
    uint64_t sum = 0;
    for (arena__avl_node_t *n = arena__avl_first(&m->pools); n; n = arena__avl_next(&m->pools, n)) {
        const pool_t *p = ARENA_AVL_ENTRY(n, pool_t, node);
        if (p->uid == uid)
            sum += p->leased_bytes;
    }
    return sum;
}

/* Which limit a grant of `length` more bytes to c would break. */
static limit_hit_t limit_check(const ad_leases_t *m, const client_t *c, uint64_t length)
{
    if (m->config.max_leases_per_client > 0 && c->leases.count >= m->config.max_leases_per_client)
        return LIMIT_LEASE_COUNT;
    if (c->cap > 0 && length > c->cap)
        return LIMIT_CAP_SIZE;
    if (c->cap > 0 && c->leased_bytes + length > c->cap)
        return LIMIT_CAP;
    if (m->config.max_bytes_per_uid > 0 &&
        uid_leased_bytes(m, c->uid) + length > m->config.max_bytes_per_uid)
        return LIMIT_UID_BYTES;
    return LIMIT_NONE;
}

int ad_leases_limit_reason(const ad_leases_t *m, uint64_t client_id, uint64_t size, char *buf,
                           size_t len)
{
    if (!m || !buf || len == 0)
        return -EINVAL;
    const client_t *c = client_find(m, client_id);
    if (!c)
        return -ENOENT;
    uint64_t length = size ? ad_heap_round(c->pool->heap, size) : 0;
    char a[32], b[32], d[32];
    int n;
    switch (limit_check(m, c, length)) {
    case LIMIT_LEASE_COUNT:
        n = snprintf(buf, len, "client holds %zu leases, the most one client may hold",
                     c->leases.count);
        break;
    case LIMIT_CAP_SIZE:
        n = snprintf(buf, len,
                     "%s is more than cap.%u (%s), the most one client of uid %u may lease",
                     arena__size_format(length, a, sizeof(a)), (unsigned)c->uid,
                     arena__size_format(c->cap, b, sizeof(b)), (unsigned)c->uid);
        break;
    case LIMIT_CAP:
        n = snprintf(buf, len, "client leases %s; %s more would pass cap.%u (%s)",
                     arena__size_format(c->leased_bytes, a, sizeof(a)),
                     arena__size_format(length, b, sizeof(b)), (unsigned)c->uid,
                     arena__size_format(c->cap, d, sizeof(d)));
        break;
    case LIMIT_UID_BYTES:
        n = snprintf(buf, len, "uid %u leases %s; %s more would pass max_bytes_per_uid (%s)",
                     (unsigned)c->uid,
                     arena__size_format(uid_leased_bytes(m, c->uid), a, sizeof(a)),
                     arena__size_format(length, b, sizeof(b)),
                     arena__size_format(m->config.max_bytes_per_uid, d, sizeof(d)));
        break;
    default:
        return -ENOENT;
    }
    return n < 0 ? -EINVAL : 0;
}

static int grant_checked(ad_leases_t *m, client_t *c, uint64_t size, uint64_t now_ms,
                         ad_lease_grant_t *ret_grant)
{
    ad_heap_t *heap = c->pool->heap;
    if (size == 0)
        return -EINVAL;
    uint64_t length = ad_heap_round(heap, size);
    if (length == 0 || length > m->config.budget || length > ad_heap_size(heap))
        return -E2BIG;
    switch (limit_check(m, c, length)) {
    case LIMIT_NONE:
        break;
    case LIMIT_CAP_SIZE:
        return -E2BIG;
    default:
        return -EDQUOT;
    }
    if (m->leased_total + m->orphan_bytes + length > m->config.budget)
        return -ENOMEM;
    if (c->pool->unknown)
        return -ENOMEM; /* adopted, waiting for claims: nothing is free yet */
    lease_t *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    int r = ad_control_acquire(c->control, &l->slot, &l->generation);
    if (r < 0) {
        free(l);
        return r == -ENOSPC ? -EDQUOT : -ENOMEM;
    }
    ad_extent_t ext;
    r = ad_heap_alloc(heap, length, c->id, now_ms, &ext);
    if (r < 0) {
        (void)ad_control_release(c->control, l->slot, l->generation);
        free(l);
        return r == -E2BIG ? -E2BIG : (r == -EINVAL ? -EINVAL : -ENOMEM);
    }
    l->id = m->next_lease_id++;
    l->offset = ext.offset;
    l->size = ext.length;
    l->zeroed = ext.zeroed;
    l->granted_at_ms = now_ms;
    l->client = c;
    arena__avl_insert(&m->leases, &l->by_id);
    arena__avl_insert(&c->leases, &l->in_client);
    lease_ledger_add(m, l);
    c->leased_bytes += l->size;
    c->pool->leased_bytes += l->size;
    m->leased_total += l->size;
    m->granted_total++;
    ret_grant->lease_id = l->id;
    ret_grant->offset = l->offset;
    ret_grant->size = l->size;
    ret_grant->zeroed = l->zeroed;
    ret_grant->slot = l->slot;
    ret_grant->generation = l->generation;
    return 0;
}

/* ---- fair shares, reclaim and pressure --------------------------------------- */

/* Every client's fair share, in client id order, with `extra` more bytes
 * asked for by client `who` (NULL: none). Returns a malloc'd array of
 * m->clients.count entries (NULL when there are no clients or no memory). */
static uint64_t *shares_compute(const ad_leases_t *m, const client_t *who, uint64_t extra)
{
    size_t n = m->clients.count;
    if (n == 0)
        return NULL;
    ad_fair_input_t *in = calloc(n, sizeof(*in));
    uint64_t *out = calloc(n, sizeof(*out));
    if (!in || !out) {
        free(in);
        free(out);
        return NULL;
    }
    size_t i = 0;
    for (arena__avl_node_t *k = arena__avl_first(&m->clients); k;
         k = arena__avl_next(&m->clients, k), i++) {
        const client_t *c = ARENA_AVL_ENTRY(k, client_t, node);
        in[i].demand = c->leased_bytes + c->waiting_bytes + (c == who ? extra : 0);
        in[i].weight = c->weight;
        in[i].cap = c->cap;
        in[i].guarantee = c->guarantee;
    }
    ad_fairshare_compute(m->config.budget, in, n, out);
    free(in);
    return out;
}

/* The fair share of one client (see shares_compute()). */
static uint64_t share_of(const ad_leases_t *m, const client_t *c, uint64_t extra)
{
    uint64_t *shares = shares_compute(m, c, extra);
    if (!shares)
        return 0;
    uint64_t share = 0;
    size_t i = 0;
    for (arena__avl_node_t *k = arena__avl_first(&m->clients); k;
         k = arena__avl_next(&m->clients, k), i++) {
        if (ARENA_AVL_ENTRY(k, client_t, node) == c) {
            share = shares[i];
            break;
        }
    }
    free(shares);
    return share;
}

static uint64_t client_parked(const client_t *c)
{
    uint64_t bytes = 0;
    for (arena__avl_node_t *k = arena__avl_first(&c->leases); k;
         k = arena__avl_next(&c->leases, k)) {
        const lease_t *l = ARENA_AVL_ENTRY(k, lease_t, in_client);
        if (ad_control_is_parked(c->control, l->slot, l->generation))
            bytes += l->size;
    }
    return bytes;
}

static uint64_t parked_total(const ad_leases_t *m)
{
    uint64_t bytes = 0;
    for (arena__avl_node_t *k = arena__avl_first(&m->clients); k;
         k = arena__avl_next(&m->clients, k))
        bytes += client_parked(ARENA_AVL_ENTRY(k, client_t, node));
    return bytes;
}

/* Appends an event about client c; the fair share is computed with `extra`
 * bytes more asked for by c, the reclaimable bytes only when asked (they
 * cost a scan of every state word). */
static void event_note(ad_leases_t *m, ad_event_kind_t kind, const client_t *c, uint64_t bytes,
                       uint64_t lease_id, uint64_t extra, bool with_reclaimable,
                       uint64_t reclaimable, uint64_t now_ms)
{
    ad_event_t e = {
        .time_ms = now_ms,
        .kind = kind,
        .client_id = c->id,
        .pid = c->pid,
        .bytes = bytes,
        .leased = c->leased_bytes,
        .fair_share = share_of(m, c, extra),
        .reclaimable = with_reclaimable ? reclaimable : 0,
        .budget_leased = m->leased_total,
        .lease_id = lease_id,
    };
    (void)ad_events_add(m->events, &e);
}

typedef struct victim {
    client_t *client;
    uint64_t leased;
    uint64_t share;
} victim_t;

/* Furthest above its share first: by leased - share, as a signed quantity. */
static int victim_cmp(const void *a, const void *b)
{
    const victim_t *x = a, *y = b;
    /* x->leased - x->share > y->leased - y->share, without overflow. */
    uint64_t lx = x->leased + y->share, ly = y->leased + x->share;
    return (lx < ly) - (lx > ly);
}

/* Takes back one lease whose word the daemon just moved to RECLAIMED. With
 * defer, its pages are punched by the next purge instead of now (see
 * grant_policy()). */
static uint64_t reclaim_one(ad_leases_t *m, lease_t *l, uint64_t share, bool defer, uint64_t now_ms)
{
    client_t *c = l->client;
    uint64_t size = l->size, id = l->id;
    ad_event_t e = {
        .time_ms = now_ms,
        .kind = AD_EVENT_RECLAIM,
        .client_id = c->id,
        .pid = c->pid,
        .bytes = size,
        .leased = c->leased_bytes,
        .fair_share = share,
        .budget_leased = m->leased_total,
        .lease_id = id,
    };
    /* The extent changes owner: its pages are punched before anybody else
     * gets them (DESIGN.md section 4) -- now, or with defer by the next
     * purge, an allocation for another owner landing on them first punching
     * them itself. A heap out of bookkeeping memory keeps the lease on the
     * books; its word says RECLAIMED, so the client never uses it again, and
     * it goes when the client does. */
    if (lease_drop_pages(m, l, now_ms, defer ? DROP_URGENT : DROP_PUNCH) < 0)
        return 0;
    (void)ad_events_add(m->events, &e);
    m->reclaimed_total++;
    m->reclaimed_bytes_total += size;
    if (m->notify) {
        ad_leases_note_t note = {
            .kind = AD_LEASES_NOTE_RECLAIMED,
            .client_id = c->id,
            .lease_id = id,
            .bytes = size,
            .fair_share = share,
            .leased = c->leased_bytes,
        };
        m->notify(m->notify_ctx, c->data, &note);
    }
    return size;
}

/* Reclaims parked leases, clients furthest above their fair share first
 * (only of client `only` when not NULL), until `need` bytes (0: all) came
 * back. who/extra describe the request being served, for the shares. defer:
 * see reclaim_one(). */
static uint64_t reclaim_pass(ad_leases_t *m, const client_t *only, const client_t *who,
                             uint64_t extra, uint64_t need, bool defer, uint64_t now_ms)
{
    size_t n = m->clients.count;
    if (n == 0)
        return 0;
    uint64_t *shares = shares_compute(m, who, extra);
    victim_t *v = calloc(n, sizeof(*v));
    if (!shares || !v) {
        free(shares);
        free(v);
        return 0;
    }
    size_t i = 0;
    for (arena__avl_node_t *k = arena__avl_first(&m->clients); k;
         k = arena__avl_next(&m->clients, k), i++) {
        client_t *c = ARENA_AVL_ENTRY(k, client_t, node);
        v[i] = (victim_t){.client = c, .leased = c->leased_bytes, .share = shares[i]};
    }
    free(shares);
    qsort(v, n, sizeof(*v), victim_cmp);
    uint64_t freed = 0;
    for (i = 0; i < n && (need == 0 || freed < need); i++) {
        client_t *c = v[i].client;
        if (only && c != only)
            continue;
        arena__avl_node_t *k = arena__avl_first(&c->leases);
        while (k && (need == 0 || freed < need)) {
            arena__avl_node_t *next = arena__avl_next(&c->leases, k);
            lease_t *l = ARENA_AVL_ENTRY(k, lease_t, in_client);
            if (ad_control_reclaim(c->control, l->slot, l->generation))
                freed += reclaim_one(m, l, v[i].share, defer, now_ms);
            k = next;
        }
    }
    free(v);
    return freed;
}

/* Asks clients above their fair share (but the requester) to give back
 * memory, each at most once per LEASES_PRESSURE_INTERVAL_MS. */
static void pressure_send(ad_leases_t *m, const client_t *who, uint64_t extra, uint64_t need,
                          uint64_t now_ms)
{
    uint64_t *shares = shares_compute(m, who, extra);
    if (!shares)
        return;
    size_t i = 0;
    for (arena__avl_node_t *k = arena__avl_first(&m->clients); k;
         k = arena__avl_next(&m->clients, k), i++) {
        client_t *c = ARENA_AVL_ENTRY(k, client_t, node);
        if (c == who || c->leased_bytes <= shares[i])
            continue;
        if (c->pressured && now_ms < c->pressure_at_ms + LEASES_PRESSURE_INTERVAL_MS)
            continue;
        uint64_t over = c->leased_bytes - shares[i];
        uint64_t bytes = over < need ? over : need;
        c->pressured = true;
        c->pressure_at_ms = now_ms;
        m->pressure_total++;
        ad_event_t e = {
            .time_ms = now_ms,
            .kind = AD_EVENT_PRESSURE,
            .client_id = c->id,
            .pid = c->pid,
            .bytes = bytes,
            .leased = c->leased_bytes,
            .fair_share = shares[i],
            .budget_leased = m->leased_total,
        };
        (void)ad_events_add(m->events, &e);
        if (m->notify) {
            ad_leases_note_t note = {
                .kind = AD_LEASES_NOTE_PRESSURE,
                .client_id = c->id,
                .bytes = bytes,
                .fair_share = shares[i],
                .leased = c->leased_bytes,
            };
            m->notify(m->notify_ctx, c->data, &note);
        }
    }
    free(shares);
}

/* A grant with steps (1) and (2) of the policy: when the request does not
 * fit, parked leases come back (furthest above share first, first just
 * enough, then all) and the grant is retried; if it still does not fit,
 * clients above their share get pressure. extra: bytes of this request not
 * yet counted in the client's waiting_bytes. On -ENOMEM, *ret_reclaimable
 * gets the parked bytes of every client at the moment of failing.
 *
 * THE INVARIANT (DESIGN.md section 4): a request fails for want of memory
 * only after a reclaim pass found nothing parked, so a client at or under
 * its fair share is never refused while parked memory exists anywhere.
 * Parked memory is only half of "reclaimable": dirty (released, unpunched)
 * extents are free space already, never counted against the budget. Every
 * refusal records the parked bytes seen then (REFUSE events), which tests
 * check against the requester's fair share. */
static int grant_policy(ad_leases_t *m, client_t *c, uint64_t size, uint64_t extra, uint64_t now_ms,
                        ad_lease_grant_t *ret_grant, uint64_t *ret_reclaimable)
{
    int r = grant_checked(m, c, size, now_ms, ret_grant);
    if (r != -ENOMEM)
        return r;
    uint64_t length = ad_heap_round(c->pool->heap, size);
    uint64_t need = m->leased_total + length > m->config.budget
                        ? m->leased_total + length - m->config.budget
                        : length;
    if (reclaim_pass(m, NULL, c, extra, need, true, now_ms) > 0) {
        r = grant_checked(m, c, size, now_ms, ret_grant);
        if (r != -ENOMEM)
            return r;
    }
    /* Parked leases may appear while we work (clients run concurrently):
     * a few more rounds take them too before giving up. */
    uint64_t parked = 0;
    for (int round = 0; round < 4; round++) {
        parked = parked_total(m);
        if (parked == 0)
            break;
        if (reclaim_pass(m, NULL, c, extra, 0, true, now_ms) > 0) {
            r = grant_checked(m, c, size, now_ms, ret_grant);
            if (r != -ENOMEM)
                return r;
        }
    }
    if (m->leased_total + length > m->config.budget)
        need = m->leased_total + length - m->config.budget;
    pressure_send(m, c, extra, need, now_ms);
    *ret_reclaimable = parked;
    return -ENOMEM;
}

int ad_leases_request(ad_leases_t *m, uint64_t client_id, uint64_t size, uint64_t deadline_ms,
                      void *owner, uint64_t request_id, uint64_t now_ms,
                      ad_lease_grant_t *ret_grant)
{
    if (!m || !ret_grant)
        return -EINVAL;
    client_t *c = client_find(m, client_id);
    if (!c)
        return -ENOENT;
    uint64_t length = size ? ad_heap_round(c->pool->heap, size) : 0;
    uint64_t reclaimable = 0;
    uint64_t before = c->leased_bytes;
    ad_lease_grant_t grant;
    int r = grant_policy(m, c, size, length, now_ms, &grant, &reclaimable);
    if (r == 0) {
        ad_event_t e = {
            .time_ms = now_ms,
            .kind = AD_EVENT_GRANT,
            .client_id = c->id,
            .pid = c->pid,
            .bytes = grant.size,
            .leased = before,
            .budget_leased = m->leased_total,
            .lease_id = grant.lease_id,
        };
        (void)ad_events_add(m->events, &e);
        *ret_grant = grant;
        return 0;
    }
    if (r == -ENOMEM && deadline_ms > now_ms && owner) {
        int w = ad_leases_wait(m, client_id, size, deadline_ms, owner, request_id);
        if (w == 0) {
            event_note(m, AD_EVENT_QUEUE, c, length, 0, 0, true, reclaimable, now_ms);
            return 1;
        }
        if (w == -EDQUOT)
            return w;
    }
    if (r == -ENOMEM)
        event_note(m, AD_EVENT_REFUSE, c, length, 0, length, true, reclaimable, now_ms);
    if (r == -ENOMEM || r == -E2BIG || r == -EDQUOT)
        m->refused_total++;
    return r;
}

int ad_leases_grant(ad_leases_t *m, uint64_t client_id, uint64_t size, uint64_t now_ms,
                    ad_lease_grant_t *ret_grant)
{
    return ad_leases_request(m, client_id, size, 0, NULL, 0, now_ms, ret_grant);
}

int64_t ad_leases_reclaim_parked(ad_leases_t *m, uint64_t client_id, uint64_t max_bytes,
                                 uint64_t now_ms)
{
    if (!m)
        return -EINVAL;
    const client_t *only = NULL;
    if (client_id != 0) {
        only = client_find(m, client_id);
        if (!only)
            return -ENOENT;
    }
    return (int64_t)reclaim_pass(m, only, NULL, 0, max_bytes, false, now_ms);
}

size_t ad_leases_fair_shares(const ad_leases_t *m, uint64_t *out, size_t n)
{
    uint64_t *shares = shares_compute(m, NULL, 0);
    size_t count = m->clients.count;
    if (shares) {
        for (size_t i = 0; i < count && i < n; i++)
            out[i] = shares[i];
    }
    free(shares);
    return count;
}

int ad_leases_control_info(const ad_leases_t *m, uint64_t client_id, int *ret_fd,
                           uint32_t *ret_slots)
{
    if (!m || !ret_fd || !ret_slots)
        return -EINVAL;
    const client_t *c = client_find(m, client_id);
    if (!c)
        return -ENOENT;
    *ret_fd = ad_control_fd(c->control);
    *ret_slots = ad_control_slots(c->control);
    return 0;
}

void ad_leases_control_close_fd(ad_leases_t *m, uint64_t client_id)
{
    client_t *c = m ? client_find(m, client_id) : NULL;
    if (c)
        ad_control_close_fd(c->control);
}

int ad_leases_client_set_data(ad_leases_t *m, uint64_t client_id, void *data)
{
    client_t *c = m ? client_find(m, client_id) : NULL;
    if (!c)
        return -ENOENT;
    c->data = data;
    return 0;
}

void ad_leases_set_notify(ad_leases_t *m, ad_leases_notify_fn fn, void *ctx)
{
    m->notify = fn;
    m->notify_ctx = ctx;
}

const ad_events_t *ad_leases_events(const ad_leases_t *m)
{
    return m->events;
}

int ad_leases_release(ad_leases_t *m, uint64_t client_id, uint64_t lease_id, uint64_t now_ms)
{
    if (!m)
        return -EINVAL;
    if (!client_find(m, client_id))
        return -ENOENT;
    lease_t *l = lease_find(m, lease_id);
    if (!l)
        return -ENOENT;
    if (l->client->id != client_id)
        return -EPERM;
    return lease_drop(m, l, now_ms, false);
}

int ad_leases_wait(ad_leases_t *m, uint64_t client_id, uint64_t size, uint64_t deadline_ms,
                   void *owner, uint64_t request_id)
{
    if (!m)
        return -EINVAL;
    client_t *c = client_find(m, client_id);
    if (!c)
        return -ENOENT;
    if (c->waiting >= AD_LEASES_MAX_WAITING)
        return -EDQUOT;
    waiter_t *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    c->waiting++;
    c->waiting_bytes += size;
    w->client_id = client_id;
    w->size = size;
    w->deadline_ms = deadline_ms;
    w->owner = owner;
    w->request_id = request_id;
    *m->wait_tail = w;
    m->wait_tail = &w->next;
    m->waiters++;
    return 0;
}

size_t ad_leases_serve_waiters(ad_leases_t *m, uint64_t now_ms, ad_leases_waiter_fn fn, void *ctx)
{
    size_t done = 0;
    bool blocked = false;
    waiter_t **pp = &m->wait_head;
    while (*pp) {
        waiter_t *w = *pp;
        ad_lease_grant_t grant;
        uint64_t reclaimable = 0;
        int r = -ENOMEM;
        client_t *c = client_find(m, w->client_id);
        bool expired = w->deadline_ms <= now_ms;
        /* FIFO: once one request does not fit, later ones wait behind it;
         * one whose deadline passed still gets a last try of its own. */
        if (!blocked || expired) {
            uint64_t before = c ? c->leased_bytes : 0;
            r = c ? grant_policy(m, c, w->size, 0, now_ms, &grant, &reclaimable) : -ENOENT;
            if (r == 0) {
                ad_event_t e = {
                    .time_ms = now_ms,
                    .kind = AD_EVENT_GRANT,
                    .client_id = c->id,
                    .pid = c->pid,
                    .bytes = grant.size,
                    .leased = before,
                    .budget_leased = m->leased_total,
                    .lease_id = grant.lease_id,
                };
                (void)ad_events_add(m->events, &e);
            }
        }
        if (r == -ENOMEM && !expired) {
            blocked = true;
            pp = &w->next;
            continue;
        }
        if (r == -ENOMEM) {
            r = -ETIMEDOUT;
            event_note(m, AD_EVENT_REFUSE, c, ad_heap_round(c->pool->heap, w->size), 0, 0, true,
                       reclaimable, now_ms);
        }
        if (r < 0 && r != -ENOENT)
            m->refused_total++;
        if (c) {
            c->waiting--;
            c->waiting_bytes -= w->size;
        }
        *pp = w->next;
        m->waiters--;
        void *owner = w->owner;
        uint64_t request_id = w->request_id;
        uint64_t size = w->size;
        free(w);
        done++;
        if (fn)
            fn(ctx, owner, request_id, size, r, r == 0 ? &grant : NULL);
    }
    /* Re-derive the tail: the loop may have unlinked the last node. */
    m->wait_tail = &m->wait_head;
    while (*m->wait_tail)
        m->wait_tail = &(*m->wait_tail)->next;
    m->retry_at_ms = blocked ? now_ms + LEASES_PRESSURE_INTERVAL_MS : 0;
    return done;
}

uint64_t ad_leases_next_deadline(const ad_leases_t *m)
{
    uint64_t next = UINT64_MAX;
    for (const waiter_t *w = m->wait_head; w; w = w->next) {
        if (w->deadline_ms < next)
            next = w->deadline_ms;
    }
    if (m->wait_head && m->retry_at_ms != 0 && m->retry_at_ms < next)
        next = m->retry_at_ms;
    return next;
}

char *ad_leases_describe_holders(const ad_leases_t *m, char *buf, size_t len)
{
    const client_t *top[3] = {NULL, NULL, NULL};
    for (arena__avl_node_t *n = arena__avl_first(&m->clients); n;
         n = arena__avl_next(&m->clients, n)) {
        const client_t *c = ARENA_AVL_ENTRY(n, client_t, node);
        if (c->leased_bytes == 0)
            continue;
        for (int i = 0; i < 3; i++) {
            if (!top[i] || c->leased_bytes > top[i]->leased_bytes) {
                for (int j = 2; j > i; j--)
                    top[j] = top[j - 1];
                top[i] = c;
                break;
            }
        }
    }
    char total[32], one[32];
    int off = snprintf(buf, len, "%s of %s budget leased",
                       arena__size_format(m->leased_total, total, sizeof(total)),
                       arena__size_format(m->config.budget, one, sizeof(one)));
    /* Orphans are in nobody's lease yet still count against the budget: say
     * so, or a refusal reads as if budget were left. */
    if (m->orphan_bytes > 0 && off >= 0 && (size_t)off < len)
        off += snprintf(buf + off, len - (size_t)off, "; %s held for clients of a previous arenad",
                        arena__size_format(m->orphan_bytes, one, sizeof(one)));
    for (int i = 0; i < 3 && top[i] && off >= 0 && (size_t)off < len; i++) {
        off += snprintf(buf + off, len - (size_t)off, "%s pid %ld (%s) %s", i == 0 ? "; top:" : ",",
                        (long)top[i]->pid, top[i]->name[0] ? top[i]->name : "?",
                        arena__size_format(top[i]->leased_bytes, one, sizeof(one)));
    }
    return buf;
}

static uint64_t leases_grace_end(ad_leases_t *m, uint64_t now_ms);

uint64_t ad_leases_purge(ad_leases_t *m, uint64_t now_ms)
{
    uint64_t punched = 0;
    if (m->grace_until_ms != 0 && m->grace_until_ms <= now_ms)
        punched += leases_grace_end(m, now_ms);
    /* Reclaimed extents first, a slice per pool and call: the loop stays
     * responsive while megabytes of touched pages go back (the rest is due
     * 1 ms later). */
    for (arena__avl_node_t *n = arena__avl_first(&m->pools); n; n = arena__avl_next(&m->pools, n))
        punched += ad_heap_purge_urgent(ARENA_AVL_ENTRY(n, pool_t, node)->heap, now_ms,
                                        LEASES_URGENT_SLICE);
    for (arena__avl_node_t *n = arena__avl_first(&m->pools); n; n = arena__avl_next(&m->pools, n))
        punched += ad_heap_purge(ARENA_AVL_ENTRY(n, pool_t, node)->heap, now_ms, false, 0);
    return punched;
}

uint64_t ad_leases_next_purge_ms(const ad_leases_t *m)
{
    uint64_t next = UINT64_MAX;
    for (arena__avl_node_t *n = arena__avl_first(&m->pools); n; n = arena__avl_next(&m->pools, n)) {
        uint64_t t = ad_heap_next_purge_ms(ARENA_AVL_ENTRY(n, pool_t, node)->heap);
        if (t < next)
            next = t;
    }
    if (m->grace_until_ms != 0 && m->grace_until_ms < next)
        next = m->grace_until_ms;
    return next;
}

uint64_t ad_leases_reclaim(ad_leases_t *m, bool only_uid, uid_t uid, uint64_t max_bytes,
                           uint64_t now_ms)
{
    uint64_t punched = 0;
    for (arena__avl_node_t *n = arena__avl_first(&m->pools); n; n = arena__avl_next(&m->pools, n)) {
        pool_t *p = ARENA_AVL_ENTRY(n, pool_t, node);
        if (only_uid && p->uid != uid)
            continue;
        uint64_t left = 0;
        if (max_bytes > 0) {
            if (punched >= max_bytes)
                break;
            left = max_bytes - punched;
        }
        punched += ad_heap_purge(p->heap, now_ms, true, left);
    }
    return punched;
}

void ad_leases_stats(const ad_leases_t *m, ad_leases_stats_t *ret_stats)
{
    ad_leases_stats_t s;
    memset(&s, 0, sizeof(s));
    s.budget = m->config.budget;
    s.heap_size = m->config.heap_size;
    for (arena__avl_node_t *n = arena__avl_first(&m->pools); n; n = arena__avl_next(&m->pools, n)) {
        const pool_t *p = ARENA_AVL_ENTRY(n, pool_t, node);
        ad_heap_stats_t hs;
        ad_heap_stats(p->heap, &hs);
        s.heap_size = ad_heap_size(p->heap);
        s.free_bytes += hs.extents.free_bytes;
        s.dirty_bytes += hs.extents.dirty_bytes;
        s.resident_bytes += hs.resident_bytes;
        s.free_extents += hs.extents.free_extents;
        s.punched_total += hs.extents.punched_bytes_total;
        if (hs.extents.largest_free > s.largest_free)
            s.largest_free = hs.extents.largest_free;
        if (hs.extents.fragmentation > s.fragmentation)
            s.fragmentation = hs.extents.fragmentation;
        s.pools++;
    }
    s.punched_total += m->punched_gone;
    s.leased_bytes = m->leased_total;
    s.clients = (uint32_t)m->clients.count;
    s.leases = m->leases.count;
    s.waiters = m->waiters;
    s.granted_total = m->granted_total;
    s.released_total = m->released_total;
    s.refused_total = m->refused_total;
    s.parked_bytes = parked_total(m);
    s.reclaimed_total = m->reclaimed_total;
    s.reclaimed_bytes_total = m->reclaimed_bytes_total;
    s.pressure_total = m->pressure_total;
    *ret_stats = s;
}

static void client_to_view(const client_t *c, ad_client_view_t *v)
{
    v->client_id = c->id;
    v->pid = c->pid;
    v->uid = c->uid;
    v->gid = c->gid;
    v->name = c->name;
    v->leased_bytes = c->leased_bytes;
    v->leases = c->leases.count;
    v->connected_at_ms = c->connected_at_ms;
    v->parked_bytes = client_parked(c);
    v->live_bytes = ad_control_live_bytes(c->control, c->leased_bytes);
    v->waiting = c->waiting;
    v->waiting_bytes = c->waiting_bytes;
    v->weight = c->weight;
    v->fair_share = 0;
}

int ad_leases_client_view(const ad_leases_t *m, uint64_t client_id, ad_client_view_t *ret_view)
{
    if (!m || !ret_view)
        return -EINVAL;
    const client_t *c = client_find(m, client_id);
    if (!c)
        return -ENOENT;
    client_to_view(c, ret_view);
    ret_view->fair_share = share_of(m, c, 0);
    return 0;
}

int ad_leases_foreach_client(const ad_leases_t *m,
                             int (*fn)(void *ctx, const ad_client_view_t *view), void *ctx)
{
    uint64_t *shares = shares_compute(m, NULL, 0);
    size_t i = 0;
    for (arena__avl_node_t *n = arena__avl_first(&m->clients); n;
         n = arena__avl_next(&m->clients, n), i++) {
        ad_client_view_t v;
        client_to_view(ARENA_AVL_ENTRY(n, client_t, node), &v);
        v.fair_share = shares ? shares[i] : 0;
        int r = fn(ctx, &v);
        if (r != 0) {
            free(shares);
            return r;
        }
    }
    free(shares);
    return 0;
}

static void lease_to_view(const lease_t *l, ad_lease_view_t *v)
{
    v->lease_id = l->id;
    v->client_id = l->client->id;
    v->uid = l->client->uid;
    v->offset = l->offset;
    v->size = l->size;
    v->zeroed = l->zeroed;
    v->granted_at_ms = l->granted_at_ms;
    v->parked = ad_control_is_parked(l->client->control, l->slot, l->generation);
}

int ad_leases_foreach_lease(const ad_leases_t *m, uint64_t client_id,
                            int (*fn)(void *ctx, const ad_lease_view_t *view), void *ctx)
{
    const arena__avl_t *tree = &m->leases;
    size_t member = offsetof(lease_t, by_id);
    if (client_id != 0) {
        const client_t *c = client_find(m, client_id);
        if (!c)
            return 0;
        tree = &c->leases;
        member = offsetof(lease_t, in_client);
    }
    for (arena__avl_node_t *n = arena__avl_first(tree); n; n = arena__avl_next(tree, n)) {
        ad_lease_view_t v;
        lease_to_view((const lease_t *)(const void *)((const char *)n - member), &v);
        int r = fn(ctx, &v);
        if (r != 0)
            return r;
    }
    return 0;
}

bool ad_leases_is_valid(const ad_leases_t *m)
{
    uint64_t total = 0, count = 0;
    if (arena__avl_check(&m->clients) != 0 || arena__avl_check(&m->leases) != 0 ||
        arena__avl_check(&m->pools) != 0)
        return false;
    for (arena__avl_node_t *n = arena__avl_first(&m->clients); n;
         n = arena__avl_next(&m->clients, n)) {
        const client_t *c = ARENA_AVL_ENTRY(n, client_t, node);
        uint64_t bytes = 0;
        if (arena__avl_check(&c->leases) != 0)
            return false;
        for (arena__avl_node_t *k = arena__avl_first(&c->leases); k;
             k = arena__avl_next(&c->leases, k)) {
            const lease_t *l = ARENA_AVL_ENTRY(k, lease_t, in_client);
            if (l->client != c || lease_find(m, l->id) != l)
                return false;
            bytes += l->size;
        }
        if (bytes != c->leased_bytes)
            return false;
        total += bytes;
        count += c->leases.count;
    }
    if (total != m->leased_total || count != m->leases.count)
        return false;
    uint64_t heap_leased = 0;
    for (arena__avl_node_t *n = arena__avl_first(&m->pools); n; n = arena__avl_next(&m->pools, n)) {
        const pool_t *p = ARENA_AVL_ENTRY(n, pool_t, node);
        ad_heap_stats_t hs;
        ad_heap_stats(p->heap, &hs);
        if (hs.extents.leased_bytes != p->leased_bytes + p->orphan_bytes)
            return false;
        heap_leased += p->leased_bytes;
    }
    size_t waiters = 0;
    for (const waiter_t *w = m->wait_head; w; w = w->next)
        waiters++;
    uint64_t waiting = 0, waiting_bytes = 0, queued_bytes = 0;
    for (arena__avl_node_t *n = arena__avl_first(&m->clients); n;
         n = arena__avl_next(&m->clients, n)) {
        waiting += ARENA_AVL_ENTRY(n, client_t, node)->waiting;
        waiting_bytes += ARENA_AVL_ENTRY(n, client_t, node)->waiting_bytes;
    }
    for (const waiter_t *w = m->wait_head; w; w = w->next)
        queued_bytes += w->size;
    return heap_leased == total && waiters == m->waiters && waiting == waiters &&
           waiting_bytes == queued_bytes;
}

/* ---- adoption after a daemon restart ------------------------------------------ */

/* The pool whose memfd is the same file as fd, or NULL. */
static pool_t *pool_find_file(ad_leases_t *m, int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return NULL;
    for (arena__avl_node_t *n = arena__avl_first(&m->pools); n; n = arena__avl_next(&m->pools, n)) {
        pool_t *p = ARENA_AVL_ENTRY(n, pool_t, node);
        if (p->dev == st.st_dev && p->ino == st.st_ino)
            return p;
    }
    return NULL;
}

/* The earlier of two times, 0 meaning "none". */
static uint64_t earliest(uint64_t a, uint64_t b)
{
    return a == 0 || (b != 0 && b < a) ? b : a;
}

/* Wakes the purge timer at until_ms (or earlier) for leases_grace_end(). */
static void grace_note(ad_leases_t *m, uint64_t until_ms)
{
    m->grace_until_ms = earliest(m->grace_until_ms, until_ms);
}

/* Whether process pid still exists (a zombie counts until it is reaped).
 * kill(pid, 0) needs neither /proc (the unit hides it: ProtectProc=) nor
 * the right to signal (EPERM says it exists). The pid may since have gone
 * to another process; then its orphan is held until that one is gone too:
 * memory kept too long, never data lost, and claims still need the pool's
 * uid, the pid and the exact extent. */
static bool process_alive(pid_t pid)
{
    return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

/* Whose pool the memfd is: an arenad of our own user made it (its owner is
 * the file's, not the client's), and its name says for which uid. Returns
 * 0 and *ret_uid, or -EINVAL (not an arenad pool). */
static int pool_file_uid(int fd, uid_t *ret_uid)
{
    struct stat st;
    char link[64], target[128];
    if (fstat(fd, &st) < 0 || st.st_uid != geteuid())
        return -EINVAL;
    (void)snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    if (n < 0)
        return -EINVAL;
    target[n] = '\0';
    unsigned long u;
    char tail[16];
    if (sscanf(target, "/memfd:arenad-pool-uid%lu%15s", &u, tail) < 1 || u > UINT32_MAX)
        return -EINVAL;
    *ret_uid = (uid_t)u;
    return 0;
}

int ad_leases_adopt_pool(ad_leases_t *m, uid_t uid, int pool_fd, const ad_leases_orphan_t *orphans,
                         size_t orphan_count, uint64_t now_ms, uint64_t *ret_serial)
{
    if (!m || pool_fd < 0)
        return -EINVAL;
    uid_t file_uid;
    if (pool_file_uid(pool_fd, &file_uid) < 0)
        return -EINVAL;
    if (file_uid != uid)
        return -EPERM; /* pools are never shared across uids */
    pool_t *known = pool_find_file(m, pool_fd);
    if (known) {
        if (known->uid != uid)
            return -EPERM;
        if (ret_serial)
            *ret_serial = known->serial;
        (void)close(pool_fd);
        return 0;
    }
    pool_t *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    if (orphan_count > 0) {
        p->orphans = calloc(orphan_count, sizeof(*p->orphans));
        if (!p->orphans) {
            free(p);
            return -ENOMEM;
        }
    }
    ad_heap_config_t hc = {
        .size = m->config.heap_size,
        .small_limit = m->config.small_limit,
        .decay_ms = m->config.decay_ms,
        .hugetlb = m->config.hugetlb,
    };
    int r = ad_heap_adopt(&hc, pool_fd, &p->heap);
    if (r < 0) {
        free(p->orphans);
        free(p);
        return r;
    }
    p->grace_until_ms = now_ms + m->config.restart_grace_ms;
    if (orphans) {
        /* The ledger's extents stay reserved for their owners; everything
         * else held nobody's lease when the previous daemon stopped, so it is
         * punched now and granted at once. Extents that overlap or fall
         * outside the file are dropped (the ledger is ours, but a torn
         * write must not take the pool down). */
        uint64_t granule = ad_heap_granule(p->heap);
        for (size_t i = 0; i < orphan_count; i++) {
            const ad_leases_orphan_t *o = &orphans[i];
            if (o->size == 0 || o->offset % granule || o->size % granule)
                continue;
            if (o->pid > 0 && !process_alive(o->pid)) {
                /* Its process is gone: nobody can claim it. Punched below. */
                m->adopt.unclaimed_bytes_total += o->size;
                continue;
            }
            if (ad_heap_claim(p->heap, o->offset, o->size, 0) < 0)
                continue;
            p->orphans[p->orphan_count++] =
                (orphan_t){o->offset, o->size, o->pid > 0 ? o->pid : 0, false, AD_LEDGER_NONE};
            p->orphan_bytes += o->size;
        }
        /* Punch the gaps between the orphans (sorted by offset first). */
        for (size_t i = 1; i < p->orphan_count; i++) {
            orphan_t key = p->orphans[i];
            size_t j = i;
            for (; j > 0 && p->orphans[j - 1].offset > key.offset; j--)
                p->orphans[j] = p->orphans[j - 1];
            p->orphans[j] = key;
        }
        uint64_t at = 0;
        for (size_t i = 0; i < p->orphan_count; i++) {
            (void)ad_heap_punch_range(p->heap, at, p->orphans[i].offset - at);
            at = p->orphans[i].offset + p->orphans[i].size;
        }
        (void)ad_heap_punch_range(p->heap, at, ad_heap_size(p->heap) - at);
        if (p->orphan_count == 0)
            p->grace_until_ms = 0;
    } else {
        p->unknown = true;
    }
    m->orphan_bytes += p->orphan_bytes;
    pool_insert(m, p, uid);
    for (size_t i = 0; m->ledger && i < p->orphan_count; i++)
        (void)ad_ledger_add(m->ledger, (uint64_t)p->ino, uid, p->orphans[i].pid,
                            p->orphans[i].offset, p->orphans[i].size, &p->orphans[i].ledger_slot);
    if (p->grace_until_ms)
        grace_note(m, p->grace_until_ms);
    m->adopt.pools_adopted++;
    if (ret_serial)
        *ret_serial = p->serial;
    return 0;
}

int ad_leases_client_reattach(ad_leases_t *m, pid_t pid, uid_t uid, gid_t gid, const char *name,
                              int pool_fd, uint64_t now_ms, uint64_t *ret_client_id)
{
    if (!m || !ret_client_id || pool_fd < 0) {
        if (pool_fd >= 0)
            (void)close(pool_fd);
        return -EINVAL;
    }
    uint64_t serial;
    int r = ad_leases_adopt_pool(m, uid, pool_fd, NULL, 0, now_ms, &serial);
    if (r < 0) {
        (void)close(pool_fd);
        return r;
    }
    pool_t *pool = NULL;
    for (arena__avl_node_t *n = arena__avl_first(&m->pools); n && !pool;
         n = arena__avl_next(&m->pools, n)) {
        pool_t *p = ARENA_AVL_ENTRY(n, pool_t, node);
        if (p->serial == serial)
            pool = p;
    }
    return client_create(m, pool, pid, uid, gid, name, now_ms, ret_client_id);
}

uint64_t ad_leases_grace_left(const ad_leases_t *m, uint64_t client_id, uint64_t now_ms)
{
    const client_t *c = m ? client_find(m, client_id) : NULL;
    if (!c || c->pool->grace_until_ms <= now_ms)
        return 0;
    return c->pool->grace_until_ms - now_ms;
}

int ad_leases_claim(ad_leases_t *m, uint64_t client_id, uint64_t offset, uint64_t size,
                    uint64_t now_ms, ad_lease_grant_t *ret_grant)
{
    if (!m || !ret_grant)
        return -EINVAL;
    client_t *c = client_find(m, client_id);
    if (!c)
        return -ENOENT;
    pool_t *p = c->pool;
    int r;
    /* After the grace period only orphans held for their living process
     * are left to claim (leases_grace_end() frees the rest). */
    bool in_grace = p->grace_until_ms > now_ms;
    if (!in_grace && (p->unknown || p->orphan_bytes == 0)) {
        r = -ESTALE;
        goto refused;
    }
    uint64_t granule = ad_heap_granule(p->heap), hs = ad_heap_size(p->heap);
    if (size == 0 || offset % granule || size % granule || offset > hs || size > hs - offset) {
        r = -EINVAL;
        goto refused;
    }
    if (m->config.max_leases_per_client > 0 && c->leases.count >= m->config.max_leases_per_client) {
        r = -EDQUOT;
        goto refused;
    }
    orphan_t *orphan = NULL;
    if (p->unknown) {
        r = ad_heap_claim(p->heap, offset, size, c->id);
        if (r < 0) {
            r = r == -EBUSY ? -EBUSY : (r == -ENOMEM ? -ENOMEM : -EINVAL);
            goto refused;
        }
    } else {
        for (size_t i = 0; i < p->orphan_count && !orphan; i++) {
            const orphan_t *o = &p->orphans[i];
            if (!o->taken && o->offset == offset && o->size == size &&
                (o->pid > 0 ? o->pid == c->pid : in_grace))
                orphan = &p->orphans[i];
        }
        if (!orphan) {
            r = in_grace ? -EBUSY : -ESTALE;
            goto refused;
        }
    }
    lease_t *l = calloc(1, sizeof(*l));
    if (l)
        r = ad_control_acquire(c->control, &l->slot, &l->generation);
    if (!l || r < 0) {
        r = !l ? -ENOMEM : (r == -ENOSPC ? -EDQUOT : -ENOMEM);
        free(l);
        if (p->unknown)
            (void)ad_heap_release(p->heap, offset, size, now_ms, false);
        goto refused;
    }
    if (orphan) {
        orphan->taken = true;
        p->orphan_bytes -= size;
        m->orphan_bytes -= size;
    }
    l->id = m->next_lease_id++;
    l->offset = offset;
    l->size = size;
    l->zeroed = false;
    l->granted_at_ms = now_ms;
    l->client = c;
    arena__avl_insert(&m->leases, &l->by_id);
    arena__avl_insert(&c->leases, &l->in_client);
    if (orphan) {
        l->ledger_slot = orphan->ledger_slot; /* the same extent, now owned */
        orphan->ledger_slot = AD_LEDGER_NONE;
    } else {
        lease_ledger_add(m, l);
    }
    c->leased_bytes += size;
    p->leased_bytes += size;
    m->leased_total += size;
    m->adopt.claims_total++;
    m->adopt.claimed_bytes_total += size;
    ret_grant->lease_id = l->id;
    ret_grant->offset = offset;
    ret_grant->size = size;
    ret_grant->zeroed = false;
    ret_grant->slot = l->slot;
    ret_grant->generation = l->generation;
    return 0;

refused:
    m->adopt.claims_refused_total++;
    return r;
}

/* Punches the space of an unknown pool that nobody claimed during its grace
 * period (between the claimed extents). Returns the bytes, or -ENOMEM (then
 * nothing was punched and the pool stays unknown: never grant unpunched
 * space). */
static int64_t pool_punch_unclaimed(ad_leases_t *m, pool_t *p)
{
    size_t k = 0, cap = (size_t)m->leases.count + 1;
    uint64_t(*ext)[2] = calloc(cap, sizeof(*ext));
    if (!ext)
        return -ENOMEM;
    for (arena__avl_node_t *x = arena__avl_first(&m->leases); x;
         x = arena__avl_next(&m->leases, x)) {
        const lease_t *l = ARENA_AVL_ENTRY(x, lease_t, by_id);
        if (l->client->pool != p)
            continue;
        size_t j = k++;
        for (; j > 0 && ext[j - 1][0] > l->offset; j--) {
            ext[j][0] = ext[j - 1][0];
            ext[j][1] = ext[j - 1][1];
        }
        ext[j][0] = l->offset;
        ext[j][1] = l->size;
    }
    uint64_t at = 0, hs = ad_heap_size(p->heap), freed = 0;
    for (size_t i = 0; i <= k; i++) {
        uint64_t end = i < k ? ext[i][0] : hs;
        if (end > at && ad_heap_punch_range(p->heap, at, end - at) == 0)
            freed += end - at;
        if (i < k)
            at = ext[i][0] + ext[i][1];
    }
    free(ext);
    return (int64_t)freed;
}

/* Frees the pool's unclaimed orphans that nobody can claim any more: all of
 * them whose process is unknown or gone; those of a living process stay
 * reserved for it. Returns the bytes freed. */
static uint64_t pool_free_orphans(ad_leases_t *m, pool_t *p, uint64_t now_ms)
{
    uint64_t freed = 0;
    pid_t alive = 0; /* the last pid found alive: orphans come in runs of one owner */
    for (size_t i = 0; i < p->orphan_count; i++) {
        orphan_t *o = &p->orphans[i];
        if (o->taken)
            continue;
        if (o->pid > 0 && (o->pid == alive || process_alive(o->pid))) {
            alive = o->pid;
            continue;
        }
        if (ad_heap_release(p->heap, o->offset, o->size, now_ms, true) < 0)
            continue; /* -ENOMEM: stays reserved; counted until it goes */
        o->taken = true;
        ad_ledger_remove(m->ledger, o->ledger_slot);
        o->ledger_slot = AD_LEDGER_NONE;
        p->orphan_bytes -= o->size;
        m->orphan_bytes -= o->size;
        m->adopt.unclaimed_bytes_total += o->size;
        freed += o->size;
    }
    return freed;
}

/* Ends the grace period of every pool whose time is up: space nobody claimed
 * is punched and becomes free, orphans of living processes stay reserved
 * and are looked at again every second (recheck_ms) until they are claimed
 * or their process is gone. Returns the bytes punched (or released to be
 * punched). */
static uint64_t leases_grace_end(ad_leases_t *m, uint64_t now_ms)
{
    uint64_t freed = 0, next = 0;
    for (arena__avl_node_t *n = arena__avl_first(&m->pools); n; n = arena__avl_next(&m->pools, n)) {
        pool_t *p = ARENA_AVL_ENTRY(n, pool_t, node);
        uint64_t due = p->grace_until_ms ? p->grace_until_ms : p->recheck_ms;
        if (due == 0)
            continue;
        if (due > now_ms) {
            next = earliest(next, due);
            continue;
        }
        if (p->unknown) {
            int64_t punched = pool_punch_unclaimed(m, p);
            if (punched < 0) {
                p->grace_until_ms = now_ms + 1000; /* retry; claims meanwhile are fine */
                next = earliest(next, p->grace_until_ms);
                continue;
            }
            freed += (uint64_t)punched;
            p->unknown = false;
        }
        if (p->grace_until_ms) {
            p->grace_until_ms = 0;
            m->adopt.graces_ended++;
        }
        freed += pool_free_orphans(m, p, now_ms);
        if (p->orphan_bytes == 0) {
            free(p->orphans);
            p->orphans = NULL;
            p->orphan_count = 0;
            p->recheck_ms = 0;
        } else {
            p->recheck_ms = now_ms + 1000;
            next = earliest(next, p->recheck_ms);
        }
    }
    m->grace_until_ms = next;
    return freed;
}

void ad_leases_adopt_stats(const ad_leases_t *m, ad_leases_adopt_stats_t *ret_stats)
{
    *ret_stats = m->adopt;
    ret_stats->orphan_bytes = m->orphan_bytes;
    ret_stats->held_orphan_bytes = 0;
    for (arena__avl_node_t *n = arena__avl_first(&m->pools); n; n = arena__avl_next(&m->pools, n)) {
        const pool_t *p = ARENA_AVL_ENTRY(n, pool_t, node);
        if (p->grace_until_ms == 0)
            ret_stats->held_orphan_bytes += p->orphan_bytes;
    }
    ret_stats->grace_until_ms = m->grace_until_ms;
}

void ad_leases_set_ledger(ad_leases_t *m, ad_ledger_t *ledger)
{
    m->ledger = ledger;
}

void ad_leases_set_pool_hook(ad_leases_t *m, ad_leases_pool_fn fn, void *ctx)
{
    m->pool_hook = fn;
    m->pool_hook_ctx = ctx;
}

int ad_leases_foreach_pool(const ad_leases_t *m, int (*fn)(void *ctx, const ad_pool_view_t *view),
                           void *ctx)
{
    for (arena__avl_node_t *n = arena__avl_first(&m->pools); n; n = arena__avl_next(&m->pools, n)) {
        const pool_t *p = ARENA_AVL_ENTRY(n, pool_t, node);
        ad_pool_view_t v = {.uid = p->uid, .serial = p->serial, .heap = p->heap};
        int r = fn(ctx, &v);
        if (r != 0)
            return r;
    }
    return 0;
}
