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
 */
#include "lease.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avl.h"
#include "heap.h"
#include "size.h"

typedef struct pool {
    arena__avl_node_t node; /* in ad_leases.pools, by uid */
    uid_t uid;
    ad_heap_t *heap;
    uint64_t leased_bytes;
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
    uint32_t waiting; /* requests of this client in the wait queue */
} client_t;

typedef struct lease {
    arena__avl_node_t by_id;     /* in ad_leases.leases */
    arena__avl_node_t in_client; /* in client_t.leases */
    uint64_t id;
    uint64_t offset;
    uint64_t size;
    uint64_t granted_at_ms;
    bool zeroed;
    client_t *client;
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
};

static int u64_cmp(uint64_t a, uint64_t b)
{
    return (a > b) - (a < b);
}

static int pool_cmp(const arena__avl_node_t *a, const arena__avl_node_t *b)
{
    return u64_cmp(ARENA_AVL_ENTRY(a, pool_t, node)->uid, ARENA_AVL_ENTRY(b, pool_t, node)->uid);
}

static int pool_key(const void *key, const arena__avl_node_t *n)
{
    return u64_cmp(*(const uid_t *)key, ARENA_AVL_ENTRY(n, pool_t, node)->uid);
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
    arena__avl_init(&m->pools, pool_cmp);
    arena__avl_init(&m->clients, client_cmp);
    arena__avl_init(&m->leases, lease_cmp);
    m->next_client_id = 1;
    m->next_lease_id = 1;
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
        free(p);
    }
    free(m);
}

void ad_leases_reconfigure(ad_leases_t *m, const ad_leases_config_t *config)
{
    if (!m || !config)
        return;
    if (config->budget > 0)
        m->config.budget = config->budget;
    m->config.max_leases_per_client = config->max_leases_per_client;
    if (m->config.decay_ms != config->decay_ms) {
        m->config.decay_ms = config->decay_ms;
        for (arena__avl_node_t *n = arena__avl_first(&m->pools); n;
             n = arena__avl_next(&m->pools, n))
            ad_heap_set_decay(ARENA_AVL_ENTRY(n, pool_t, node)->heap, config->decay_ms);
    }
}

static int pool_get(ad_leases_t *m, uid_t uid, pool_t **ret_pool)
{
    arena__avl_node_t *n = avl_find(&m->pools, pool_key, &uid);
    if (n) {
        *ret_pool = ARENA_AVL_ENTRY(n, pool_t, node);
        return 0;
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
    p->uid = uid;
    arena__avl_insert(&m->pools, &p->node);
    *ret_pool = p;
    return 0;
}

int ad_leases_client_new(ad_leases_t *m, pid_t pid, uid_t uid, gid_t gid, const char *name,
                         uint64_t now_ms, uint64_t *ret_client_id)
{
    if (!m || !ret_client_id)
        return -EINVAL;
    client_t *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    int r = pool_get(m, uid, &c->pool);
    if (r < 0) {
        free(c);
        return r;
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

/* Takes a lease out of every index and returns its extent to the heap.
 * Returns 0, or -ENOMEM (the heap could not allocate its bookkeeping; the
 * lease stays as it was). */
static int lease_drop(ad_leases_t *m, lease_t *l, uint64_t now_ms, bool punch_now)
{
    client_t *c = l->client;
    int r = ad_heap_release(c->pool->heap, l->offset, l->size, now_ms, punch_now);
    if (r == -ENOMEM)
        return r;
    /* The heap and the table disagreeing is our bug, never peer input. */
    if (r < 0)
        abort();
    arena__avl_remove(&m->leases, &l->by_id);
    arena__avl_remove(&c->leases, &l->in_client);
    c->leased_bytes -= l->size;
    c->pool->leased_bytes -= l->size;
    m->leased_total -= l->size;
    m->released_total++;
    free(l);
    return 0;
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
    while ((n = arena__avl_first(&c->leases)) != NULL) {
        /* The client is gone; its extents cannot stay. Out of memory for
         * a few bytes of bookkeeping here is fatal, like any OOM abort. */
        if (lease_drop(m, ARENA_AVL_ENTRY(n, lease_t, in_client), now_ms, punch) < 0)
            abort();
        released++;
    }
    arena__avl_remove(&m->clients, &c->node);
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

static int grant_checked(ad_leases_t *m, client_t *c, uint64_t size, uint64_t now_ms,
                         ad_lease_grant_t *ret_grant)
{
    ad_heap_t *heap = c->pool->heap;
    if (size == 0)
        return -EINVAL;
    uint64_t length = ad_heap_round(heap, size);
    if (length == 0 || length > m->config.budget || length > ad_heap_size(heap))
        return -E2BIG;
    if (m->config.max_leases_per_client > 0 && c->leases.count >= m->config.max_leases_per_client)
        return -EDQUOT;
    if (m->leased_total + length > m->config.budget)
        return -ENOMEM;
    lease_t *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    ad_extent_t ext;
    int r = ad_heap_alloc(heap, length, c->id, now_ms, &ext);
    if (r < 0) {
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
    c->leased_bytes += l->size;
    c->pool->leased_bytes += l->size;
    m->leased_total += l->size;
    m->granted_total++;
    ret_grant->lease_id = l->id;
    ret_grant->offset = l->offset;
    ret_grant->size = l->size;
    ret_grant->zeroed = l->zeroed;
    return 0;
}

int ad_leases_grant(ad_leases_t *m, uint64_t client_id, uint64_t size, uint64_t now_ms,
                    ad_lease_grant_t *ret_grant)
{
    if (!m || !ret_grant)
        return -EINVAL;
    client_t *c = client_find(m, client_id);
    if (!c)
        return -ENOENT;
    int r = grant_checked(m, c, size, now_ms, ret_grant);
    if (r == -ENOMEM || r == -E2BIG || r == -EDQUOT)
        m->refused_total++;
    return r;
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
        int r = -ENOMEM;
        if (!blocked) {
            client_t *c = client_find(m, w->client_id);
            r = c ? grant_checked(m, c, w->size, now_ms, &grant) : -ENOENT;
        }
        if (r == -ENOMEM && w->deadline_ms > now_ms) {
            /* FIFO: later requests wait behind this one, but their
             * deadlines still expire. */
            blocked = true;
            pp = &w->next;
            continue;
        }
        if (r == -ENOMEM)
            r = -ETIMEDOUT;
        if (r < 0 && r != -ENOENT)
            m->refused_total++;
        client_t *wc = client_find(m, w->client_id);
        if (wc)
            wc->waiting--;
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
    return done;
}

uint64_t ad_leases_next_deadline(const ad_leases_t *m)
{
    uint64_t next = UINT64_MAX;
    for (const waiter_t *w = m->wait_head; w; w = w->next) {
        if (w->deadline_ms < next)
            next = w->deadline_ms;
    }
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
    for (int i = 0; i < 3 && top[i] && off >= 0 && (size_t)off < len; i++) {
        off += snprintf(buf + off, len - (size_t)off, "%s pid %ld (%s) %s", i == 0 ? "; top:" : ",",
                        (long)top[i]->pid, top[i]->name[0] ? top[i]->name : "?",
                        arena__size_format(top[i]->leased_bytes, one, sizeof(one)));
    }
    return buf;
}

uint64_t ad_leases_purge(ad_leases_t *m, uint64_t now_ms)
{
    uint64_t punched = 0;
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
}

int ad_leases_client_view(const ad_leases_t *m, uint64_t client_id, ad_client_view_t *ret_view)
{
    if (!m || !ret_view)
        return -EINVAL;
    const client_t *c = client_find(m, client_id);
    if (!c)
        return -ENOENT;
    client_to_view(c, ret_view);
    return 0;
}

int ad_leases_foreach_client(const ad_leases_t *m,
                             int (*fn)(void *ctx, const ad_client_view_t *view), void *ctx)
{
    for (arena__avl_node_t *n = arena__avl_first(&m->clients); n;
         n = arena__avl_next(&m->clients, n)) {
        ad_client_view_t v;
        client_to_view(ARENA_AVL_ENTRY(n, client_t, node), &v);
        int r = fn(ctx, &v);
        if (r != 0)
            return r;
    }
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
        if (hs.extents.leased_bytes != p->leased_bytes)
            return false;
        heap_leased += hs.extents.leased_bytes;
    }
    size_t waiters = 0;
    for (const waiter_t *w = m->wait_head; w; w = w->next)
        waiters++;
    uint64_t waiting = 0;
    for (arena__avl_node_t *n = arena__avl_first(&m->clients); n;
         n = arena__avl_next(&m->clients, n))
        waiting += ARENA_AVL_ENTRY(n, client_t, node)->waiting;
    return heap_leased == total && waiters == m->waiters && waiting == waiters;
}
