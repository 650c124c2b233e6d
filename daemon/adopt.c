/* SPDX-License-Identifier: MIT
 *
 * adopt.c -- pools that outlive a daemon (DESIGN.md section 7): adopting a
 * pool memfd from the fd store or from a re-registering client, claims of
 * the leases clients still map, the ledger's orphans and the grace period.
 *
 * A pool from the fd store comes with the previous daemon's ledger: its
 * extents become orphans reserved for their processes, the rest is punched
 * and granted at once. A pool a client hands back is `unknown`: any byte of
 * it may hold a lease of a client that has not come back yet, so it grants
 * nothing and takes non-overlapping claims until its grace period ends
 * (ad_leases_pool_paused(): dispatch.c serves its clients' new leases as
 * memory of their own meanwhile).
 * Then unclaimed space is punched and free, except orphans whose process
 * still lives (its pid with its start time, procid.h), which stay reserved and are looked at once a
 * second. Claims never overlap and pools never cross uids; the invariants
 * are checked where each claim is accepted (ad_leases_claim()).
 *
 * Calls go down only, into lease.c's books through lease_internal.h;
 * reclaim.c's purge calls ad_leases__grace_end() here when a grace period is
 * due. Trusts the ledger's extents only as far as they fit the pool (a torn
 * write must not take it down) and a handed-back memfd only when its name and
 * owner say it is an arenad pool of that uid. Loop thread only.
 */
#include "lease.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "avl.h"
#include "control.h"
#include "heap.h"
#include "lease_internal.h"
#include "ledger.h"
#include "procid.h"

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

/* Wakes the purge timer at until_ms (or earlier) for ad_leases__grace_end(). */
static void grace_note(ad_leases_t *m, uint64_t until_ms)
{
    m->grace_until_ms = earliest(m->grace_until_ms, until_ms);
}

/* Whether the orphan's process still exists (a zombie counts until it is
 * reaped): the pid with the start time the ledger recorded, so a process
 * that got a dead client's pid is not it (procid.h). Where the start time
 * is unknown or /proc is hidden (the unit's ProtectProc=), kill(pid, 0)
 * decides: memory kept too long then, never data lost, and claims still
 * need the pool's uid, the pid and the exact extent. */
static bool process_alive(const orphan_t *o)
{
    return ad_proc_alive(o->pid, o->start);
}

/* Whether client c is the orphan's process: the same pid and, when both
 * start times are known, the same start. */
static bool orphan_owner(const orphan_t *o, const client_t *c)
{
    return o->pid == c->pid && (o->start == 0 || c->start == 0 || o->start == c->start);
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
            orphan_t cand = {
                o->offset, o->size,       o->pid > 0 ? o->pid : 0, o->pid > 0 ? o->start : 0,
                false,     AD_LEDGER_NONE};
            if (cand.pid > 0 && !process_alive(&cand)) {
                /* Its process is gone: nobody can claim it. Punched below. */
                m->adopt.unclaimed_bytes_total += o->size;
                continue;
            }
            if (ad_heap_claim(p->heap, o->offset, o->size, 0) < 0)
                continue;
            p->orphans[p->orphan_count++] = cand;
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
    ad_leases__pool_insert(m, p, uid);
    for (size_t i = 0; m->ledger && i < p->orphan_count; i++)
        (void)ad_ledger_add(m->ledger, (uint64_t)p->ino, uid, p->orphans[i].pid,
                            p->orphans[i].start, p->orphans[i].offset, p->orphans[i].size,
                            &p->orphans[i].ledger_slot);
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
    return ad_leases__client_create(m, pool, pid, uid, gid, name, now_ms, ret_client_id);
}

uint64_t ad_leases_grace_left(const ad_leases_t *m, uint64_t client_id, uint64_t now_ms)
{
    const client_t *c = m ? ad_leases__client_find(m, client_id) : NULL;
    if (!c || c->pool->grace_until_ms <= now_ms)
        return 0;
    return c->pool->grace_until_ms - now_ms;
}

bool ad_leases_pool_paused(const ad_leases_t *m, uint64_t client_id, uint64_t now_ms)
{
    const client_t *c = m ? ad_leases__client_find(m, client_id) : NULL;
    return c && c->pool->unknown && c->pool->grace_until_ms > now_ms;
}

int ad_leases_claim(ad_leases_t *m, uint64_t client_id, uint64_t offset, uint64_t size,
                    uint64_t now_ms, ad_lease_grant_t *ret_grant)
{
    if (!m || !ret_grant)
        return -EINVAL;
    client_t *c = ad_leases__client_find(m, client_id);
    if (!c)
        return -ENOENT;
    pool_t *p = c->pool;
    int r;
    /* After the grace period only orphans held for their living process
     * are left to claim (ad_leases__grace_end() frees the rest). */
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
                (o->pid > 0 ? orphan_owner(o, c) : in_grace))
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
        ad_leases__ledger_add(m, l);
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
        /* One entry per extent: a shared one by its charged holder only;
         * own-memory leases are in no pool. */
        if (l->client->pool != p || l->uncharged || (l->ext && l->ext->pool != p))
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
    const orphan_t *alive = NULL; /* the last found alive: orphans come in runs of one owner */
    for (size_t i = 0; i < p->orphan_count; i++) {
        orphan_t *o = &p->orphans[i];
        if (o->taken)
            continue;
        if (o->pid > 0 &&
            ((alive && alive->pid == o->pid && alive->start == o->start) || process_alive(o))) {
            alive = o;
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
uint64_t ad_leases__grace_end(ad_leases_t *m, uint64_t now_ms)
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
    ret_stats->grace_end_ms = 0;
    ret_stats->held_orphans = 0;
    ret_stats->unknown_pools = 0;
    ret_stats->ledger = m->ledger != NULL;
    for (arena__avl_node_t *n = arena__avl_first(&m->pools); n; n = arena__avl_next(&m->pools, n)) {
        const pool_t *p = ARENA_AVL_ENTRY(n, pool_t, node);
        if (p->grace_until_ms == 0)
            ret_stats->held_orphan_bytes += p->orphan_bytes;
        if (p->grace_until_ms > ret_stats->grace_end_ms)
            ret_stats->grace_end_ms = p->grace_until_ms;
        if (p->unknown)
            ret_stats->unknown_pools++;
        for (size_t i = 0; i < p->orphan_count; i++)
            ret_stats->held_orphans += !p->orphans[i].taken;
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
