/* SPDX-License-Identifier: MIT
 *
 * lease.c -- the lease manager's books: clients, their leases, per-uid
 * pools, the budget, the per-client and per-uid limits, the wait queue's
 * entries, and the views and counters built from them.
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
 * Every client has a control region (control.c); each lease owns a slot and
 * a generation there, recorded here and never read back from the region.
 * A grant here is the plain one (ad_leases__grant_checked): limits, budget
 * and heap decide. What happens when it does not fit -- reclaim, pressure,
 * the queue, refusal -- is reclaim.c's; pools that come back after a daemon
 * restart are adopt.c's.
 *
 * This is the bottom of the three files (lease_internal.h draws the
 * direction): it calls neither reclaim.c nor adopt.c; they call down into it.
 * Loop thread only. ad_leases_is_valid() cross-checks the counters.
 */
#include "lease.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "avl.h"
#include "control.h"
#include "fairshare.h"
#include "heap.h"
#include "lease_internal.h"
#include "procid.h"
#include "ledger.h"
#include "size.h"

/* Records a lease in the ledger (when there is one). */
void ad_leases__ledger_add(ad_leases_t *m, lease_t *l)
{
    l->ledger_slot = AD_LEDGER_NONE;
    const pool_t *p = l->client->pool;
    if (m->ledger)
        (void)ad_ledger_add(m->ledger, (uint64_t)p->ino, p->uid, l->client->pid, l->client->start,
                            l->offset, l->size, &l->ledger_slot);
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

client_t *ad_leases__client_find(const ad_leases_t *m, uint64_t id)
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
    /* Read at each adoption: pools adopted from now on get the new grace;
     * one already running keeps the end it was given. */
    m->config.restart_grace_ms = config->restart_grace_ms;
    /* Leases parked from now on decay after the new time (0: never). */
    m->config.parked_decay_ms = config->parked_decay_ms;
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
void ad_leases__pool_insert(ad_leases_t *m, pool_t *p, uid_t uid)
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
    ad_leases__pool_insert(m, p, uid);
    *ret_pool = p;
    return 0;
}

/* Registers a client leasing from pool. */
int ad_leases__client_create(ad_leases_t *m, pool_t *pool, pid_t pid, uid_t uid, gid_t gid,
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
    if (pid <= 0 || ad_proc_start_time(pid, &c->start) < 0)
        c->start = 0; /* unknown: the ledger and claims fall back to the pid */
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
    return ad_leases__client_create(m, pool, pid, uid, gid, name, now_ms, ret_client_id);
}

/* Takes a lease out of every index and returns its extent to the heap.
 * Returns 0, or -ENOMEM (the heap could not allocate its bookkeeping; the
 * lease stays as it was). */
int ad_leases__lease_drop(ad_leases_t *m, lease_t *l, uint64_t now_ms, drop_pages_t pages)
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
    return ad_leases__lease_drop(m, l, now_ms, punch_now ? DROP_PUNCH : DROP_DECAY);
}

int ad_leases_client_free(ad_leases_t *m, uint64_t client_id, uint64_t now_ms, bool punch)
{
    if (!m)
        return -EINVAL;
    client_t *c = ad_leases__client_find(m, client_id);
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
    const client_t *c = ad_leases__client_find(m, client_id);
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
    const client_t *c = ad_leases__client_find(m, client_id);
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

int ad_leases__grant_checked(ad_leases_t *m, client_t *c, uint64_t size, uint64_t now_ms,
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
    ad_leases__ledger_add(m, l);
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

/* Every client's fair share, in client id order, with `extra` more bytes
 * asked for by client `who` (NULL: none). Returns a malloc'd array of
 * m->clients.count entries (NULL when there are no clients or no memory). */
uint64_t *ad_leases__shares(const ad_leases_t *m, const client_t *who, uint64_t extra)
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

/* The fair share of one client (see ad_leases__shares()). */
uint64_t ad_leases__share_of(const ad_leases_t *m, const client_t *c, uint64_t extra)
{
    uint64_t *shares = ad_leases__shares(m, c, extra);
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

uint64_t ad_leases__parked_total(const ad_leases_t *m)
{
    uint64_t bytes = 0;
    for (arena__avl_node_t *k = arena__avl_first(&m->clients); k;
         k = arena__avl_next(&m->clients, k))
        bytes += client_parked(ARENA_AVL_ENTRY(k, client_t, node));
    return bytes;
}

size_t ad_leases_fair_shares(const ad_leases_t *m, uint64_t *out, size_t n)
{
    uint64_t *shares = ad_leases__shares(m, NULL, 0);
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
    const client_t *c = ad_leases__client_find(m, client_id);
    if (!c)
        return -ENOENT;
    *ret_fd = ad_control_fd(c->control);
    *ret_slots = ad_control_slots(c->control);
    return 0;
}

void ad_leases_control_close_fd(ad_leases_t *m, uint64_t client_id)
{
    client_t *c = m ? ad_leases__client_find(m, client_id) : NULL;
    if (c)
        ad_control_close_fd(c->control);
}

int ad_leases_client_set_data(ad_leases_t *m, uint64_t client_id, void *data)
{
    client_t *c = m ? ad_leases__client_find(m, client_id) : NULL;
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
    if (!ad_leases__client_find(m, client_id))
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
    client_t *c = ad_leases__client_find(m, client_id);
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
    s.parked_bytes = ad_leases__parked_total(m);
    s.reclaimed_total = m->reclaimed_total;
    s.reclaimed_bytes_total = m->reclaimed_bytes_total;
    s.parked_decay_bytes_total = m->parked_decay_bytes_total;
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
    const client_t *c = ad_leases__client_find(m, client_id);
    if (!c)
        return -ENOENT;
    client_to_view(c, ret_view);
    ret_view->fair_share = ad_leases__share_of(m, c, 0);
    return 0;
}

int ad_leases_foreach_client(const ad_leases_t *m,
                             int (*fn)(void *ctx, const ad_client_view_t *view), void *ctx)
{
    uint64_t *shares = ad_leases__shares(m, NULL, 0);
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
        const client_t *c = ad_leases__client_find(m, client_id);
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
