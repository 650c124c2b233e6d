/* SPDX-License-Identifier: MIT
 *
 * reclaim.c -- the no-starvation policy (DESIGN.md sections 4 and 5): what
 * a lease request that does not fit sets in motion, the queue it may wait
 * in, and the purge that gives pages back.
 *
 * A client parks an idle lease by storing PARKED in its control word; the
 * manager takes parked leases back by CAS whenever a request does not fit --
 * from the clients furthest above their max-min fair share (fairshare.c)
 * first -- punches them and tells their owners (the pages of a lease taken
 * for a waiting request are punched by the next purge, in slices, not before
 * the reply: the heap grants clean space meanwhile, see extent.c). Only when
 * nothing parked is left does it send pressure to clients above their share,
 * queue the request, and at last refuse it. The rule this guarantees, and
 * the event log (events.c) records for tests to check, is written at
 * grant_policy(): a client at or under its fair share is never refused while
 * parked memory exists. The queue is FIFO and the caller drives it after
 * anything that frees memory (ad_leases_serve_waiters()).
 *
 * The purge punches decayed and reclaimed pages and, when a grace period
 * after a restart is up, lets adopt.c end it. Calls go down only: into
 * lease.c's books and adopt.c's grace end, through lease_internal.h; nothing
 * in the other two files calls this one. Loop thread only.
 */
#include "lease.h"

#include <errno.h>
#include <stdlib.h>

#include "control.h"
#include "events.h"
#include "heap.h"
#include "lease_internal.h"

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
        .fair_share = ad_leases__share_of(m, c, extra),
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
/* Appends the grant event of a request of c that held `before` bytes. */
static void event_granted(ad_leases_t *m, const client_t *c, uint64_t before,
                          const ad_lease_grant_t *grant, uint64_t now_ms)
{
    ad_event_t e = {
        .time_ms = now_ms,
        .kind = AD_EVENT_GRANT,
        .client_id = c->id,
        .pid = c->pid,
        .bytes = grant->size,
        .leased = before,
        .budget_leased = m->leased_total,
        .lease_id = grant->lease_id,
    };
    (void)ad_events_add(m->events, &e);
}

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
    if (ad_leases__lease_drop(m, l, now_ms, defer ? DROP_URGENT : DROP_PUNCH) < 0)
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
    uint64_t *shares = ad_leases__shares(m, who, extra);
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
    uint64_t *shares = ad_leases__shares(m, who, extra);
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
    int r = ad_leases__grant_checked(m, c, size, now_ms, ret_grant);
    if (r != -ENOMEM)
        return r;
    uint64_t length = ad_heap_round(c->pool->heap, size);
    uint64_t need = m->leased_total + length > m->config.budget
                        ? m->leased_total + length - m->config.budget
                        : length;
    if (reclaim_pass(m, NULL, c, extra, need, true, now_ms) > 0) {
        r = ad_leases__grant_checked(m, c, size, now_ms, ret_grant);
        if (r != -ENOMEM)
            return r;
    }
    /* Parked leases may appear while we work (clients run concurrently):
     * a few more rounds take them too before giving up. */
    uint64_t parked = 0;
    for (int round = 0; round < 4; round++) {
        parked = ad_leases__parked_total(m);
        if (parked == 0)
            break;
        if (reclaim_pass(m, NULL, c, extra, 0, true, now_ms) > 0) {
            r = ad_leases__grant_checked(m, c, size, now_ms, ret_grant);
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
    client_t *c = ad_leases__client_find(m, client_id);
    if (!c)
        return -ENOENT;
    uint64_t length = size ? ad_heap_round(c->pool->heap, size) : 0;
    uint64_t reclaimable = 0;
    uint64_t before = c->leased_bytes;
    ad_lease_grant_t grant;
    int r = grant_policy(m, c, size, length, now_ms, &grant, &reclaimable);
    if (r == 0) {
        event_granted(m, c, before, &grant, now_ms);
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
        only = ad_leases__client_find(m, client_id);
        if (!only)
            return -ENOENT;
    }
    return (int64_t)reclaim_pass(m, only, NULL, 0, max_bytes, false, now_ms);
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
        client_t *c = ad_leases__client_find(m, w->client_id);
        bool expired = w->deadline_ms <= now_ms;
        /* FIFO: once one request does not fit, later ones wait behind it;
         * one whose deadline passed still gets a last try of its own. */
        if (!blocked || expired) {
            uint64_t before = c ? c->leased_bytes : 0;
            r = c ? grant_policy(m, c, w->size, 0, now_ms, &grant, &reclaimable) : -ENOENT;
            if (r == 0)
                event_granted(m, c, before, &grant, now_ms);
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

/* ---- parked decay ------------------------------------------------------------ */

/* Parked memory must not stay resident for long (DESIGN.md section 5): a
 * lease whose word reads PARKED for about parked_decay_ms is taken
 * back by CAS exactly as a reclaim for a starving request would take it,
 * its pages punched by the next purges in slices and its bytes returned to
 * the budget; the owner learns it at its next unpark (ARENA_ERECLAIMED) or
 * from the LeaseReclaimed note, and leases anew. No help from the client is
 * needed, so a blocked or stopped process loses its parked pages too.
 *
 * A scan runs every quarter of the decay while any lease exists, and a lease
 * two scans a quarter of the decay apart found parked is taken: it goes
 * between a quarter and half of the decay after it was parked, which leaves
 * the purges the rest of the decay to punch its pages. "Parked since" is the first
 * scan that saw the word PARKED with no scan seeing it ACTIVE since: a lease
 * unparked and parked again between two scans counts as parked all along,
 * which costs its owner at worst one more lease request. */
static uint64_t parked_decay(ad_leases_t *m, uint64_t now_ms)
{
    uint64_t decay = m->config.parked_decay_ms;
    if (decay == 0 || m->leases.count == 0) {
        m->parked_scan_at_ms = 0;
        return 0;
    }
    if (m->parked_scan_at_ms > now_ms)
        return 0;
    uint64_t *shares = NULL, taken = 0;
    size_t i = 0;
    for (arena__avl_node_t *k = arena__avl_first(&m->clients); k;
         k = arena__avl_next(&m->clients, k), i++) {
        client_t *c = ARENA_AVL_ENTRY(k, client_t, node);
        if (!c->control)
            continue;
        arena__avl_node_t *n = arena__avl_first(&c->leases);
        while (n) {
            arena__avl_node_t *next = arena__avl_next(&c->leases, n);
            lease_t *l = ARENA_AVL_ENTRY(n, lease_t, in_client);
            n = next;
            if (!ad_control_is_parked(c->control, l->slot, l->generation)) {
                l->parked_seen_ms = 0;
                continue;
            }
            if (l->parked_seen_ms == 0) {
                l->parked_seen_ms = now_ms;
                continue;
            }
            /* Seen parked at two scans a quarter of the decay apart: it was
             * parked for at most half the decay, so it goes, and its pages
             * with the purges that follow (a slice a millisecond), within
             * the decay. */
            if (now_ms - l->parked_seen_ms < decay / 4)
                continue;
            if (!shares)
                shares = ad_leases__shares(m, NULL, 0); /* for the event; NULL: 0 */
            if (ad_control_reclaim(c->control, l->slot, l->generation))
                taken += reclaim_one(m, l, shares ? shares[i] : 0, true, now_ms);
        }
    }
    free(shares);
    m->parked_decay_bytes_total += taken;
    uint64_t period = decay / 4 > 0 ? decay / 4 : 1;
    m->parked_scan_at_ms = m->leases.count > 0 ? now_ms + period : 0;
    return taken;
}

uint64_t ad_leases_purge(ad_leases_t *m, uint64_t now_ms)
{
    uint64_t punched = 0;
    (void)parked_decay(m, now_ms);
    if (m->grace_until_ms != 0 && m->grace_until_ms <= now_ms)
        punched += ad_leases__grace_end(m, now_ms);
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
    /* The parked decay scan, while leases exist; a lease granted since the
     * last scan starts the scans again at once. */
    if (m->config.parked_decay_ms > 0 && m->leases.count > 0) {
        uint64_t scan = m->parked_scan_at_ms;
        if (scan < next)
            next = scan;
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
