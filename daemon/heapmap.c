/* SPDX-License-Identifier: MIT
 *
 * heapmap.c -- what `arenactl map` draws: each pool heap as extents.
 *
 * The heap's own walk (ad_heap_walk) gives the pieces that tile it: leases,
 * free space and the dirty overlay. A lease's piece only says which client
 * owns it; whether it is parked is in the client's state word, which the
 * lease manager reads for its lease views, so the leases of the uids mapped
 * are read once, sorted by (client, offset) -- client ids are daemon-wide --
 * and looked up per piece. An allocated piece owned by no lease is a
 * previous daemon's lease kept after a restart (held). The byte figures are
 * summed before anything is merged, so they stay exact when the picture has to
 * be coarsened to fit in a frame (ad_heapmap_coalesce). The manager is only
 * read. Loop thread only.
 */
#include "heapmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "heap.h"

/* A lease of the uid being mapped, for the parked lookup. */
typedef struct map_lease {
    uint64_t client_id;
    uint64_t offset;
    bool parked;
} map_lease_t;

typedef struct map_leases {
    bool all; /* every uid's leases, else uid's only */
    uid_t uid;
    map_lease_t *items;
    size_t count;
    size_t cap;
} map_leases_t;

static int map_lease_cmp(const void *pa, const void *pb)
{
    const map_lease_t *a = pa, *b = pb;
    if (a->client_id != b->client_id)
        return a->client_id < b->client_id ? -1 : 1;
    return (a->offset > b->offset) - (a->offset < b->offset);
}

static int collect_lease(void *ctx, const ad_lease_view_t *v)
{
    map_leases_t *ml = ctx;
    if (!ml->all && v->uid != ml->uid)
        return 0;
    if (ml->count == ml->cap) {
        size_t cap = ml->cap ? ml->cap * 2 : 64;
        map_lease_t *items = realloc(ml->items, cap * sizeof(*items));
        if (!items)
            return -ENOMEM;
        ml->items = items;
        ml->cap = cap;
    }
    ml->items[ml->count++] = (map_lease_t){v->client_id, v->offset, v->parked};
    return 0;
}

/* One pool's walk in progress. */
typedef struct map_walk {
    const map_leases_t *leases;
    ad_wire_map_pool_t *pool;
    size_t cap; /* room in pool->extents */
} map_walk_t;

static uint32_t map_used_state(const map_leases_t *ml, uint64_t owner, uint64_t offset)
{
    map_lease_t key = {.client_id = owner, .offset = offset};
    const map_lease_t *l =
        owner ? bsearch(&key, ml->items, ml->count, sizeof(key), map_lease_cmp) : NULL;
    if (!l)
        return AD_WIRE_MAP_HELD;
    return l->parked ? AD_WIRE_MAP_PARKED : AD_WIRE_MAP_LEASED;
}

static int map_on_piece(void *ctx, uint64_t offset, uint64_t length, ad_extent_kind_t kind,
                        uint64_t owner)
{
    map_walk_t *w = ctx;
    ad_wire_map_pool_t *p = w->pool;
    ad_wire_map_extent_t e = {.offset = offset, .length = length};
    switch (kind) {
    case AD_EXTENT_USED:
        e.state = map_used_state(w->leases, owner, offset);
        e.client_id = e.state == AD_WIRE_MAP_HELD ? 0 : owner;
        break;
    case AD_EXTENT_DIRTY:
        e.state = AD_WIRE_MAP_DIRTY;
        break;
    case AD_EXTENT_FREE:
    default:
        e.state = AD_WIRE_MAP_FREE;
        break;
    }
    switch (e.state) {
    case AD_WIRE_MAP_LEASED:
        p->leased_bytes += length;
        break;
    case AD_WIRE_MAP_PARKED:
        p->parked_bytes += length;
        break;
    case AD_WIRE_MAP_HELD:
        p->held_bytes += length;
        break;
    case AD_WIRE_MAP_DIRTY:
        p->dirty_bytes += length;
        break;
    default:
        p->free_bytes += length;
        break;
    }
    /* Touching pieces of one state and client are one extent to the reader
     * only when space is short; until then every lease stays visible. */
    if (p->count == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        ad_wire_map_extent_t *items = realloc(p->extents, cap * sizeof(*items));
        if (!items)
            return -ENOMEM;
        p->extents = items;
        w->cap = cap;
    }
    p->extents[p->count++] = e;
    return 0;
}

/* Pools of the map being built. */
typedef struct map_pools {
    bool all;
    uid_t uid;
    ad_pool_view_t *items;
    size_t count;
    size_t cap;
} map_pools_t;

static int collect_pool(void *ctx, const ad_pool_view_t *v)
{
    map_pools_t *mp = ctx;
    if (!mp->all && v->uid != mp->uid)
        return 0;
    if (mp->count == mp->cap) {
        size_t cap = mp->cap ? mp->cap * 2 : 8;
        ad_pool_view_t *items = realloc(mp->items, cap * sizeof(*items));
        if (!items)
            return -ENOMEM;
        mp->items = items;
        mp->cap = cap;
    }
    mp->items[mp->count++] = *v;
    return 0;
}

/* Maps one pool; ml holds the leases sorted by (client, offset) (client
 * ids are daemon-wide, so one table serves every pool). */
static int map_pool(const map_leases_t *ml, const ad_pool_view_t *v, size_t cap,
                    ad_wire_map_pool_t *ret_pool)
{
    ad_wire_map_pool_t p = {
        .uid = v->uid,
        .serial = v->serial,
        .heap_size = ad_heap_size(v->heap),
        .granule = ad_heap_granule(v->heap),
    };
    ad_heap_stats_t hs;
    ad_heap_stats(v->heap, &hs);
    p.largest_free = hs.extents.largest_free;
    map_walk_t w = {.leases = ml, .pool = &p};
    int r = ad_heap_walk(v->heap, map_on_piece, &w);
    if (r < 0) {
        free(p.extents);
        return r;
    }
    p.extents_total = p.count;
    if (p.count > cap) {
        ad_wire_map_extent_t *spare = malloc(cap * sizeof(*spare));
        if (!spare) {
            free(p.extents);
            return -ENOMEM;
        }
        p.count = ad_heapmap_coalesce(p.extents, p.count, cap, p.granule, spare);
        p.coalesced = true;
        free(spare);
    }
    *ret_pool = p;
    return 0;
}

int ad_heapmap_build(const ad_leases_t *leases, bool all, uid_t uid, size_t max_extents,
                     ad_wire_map_t *ret_map)
{
    if (!leases || !ret_map || max_extents == 0)
        return -EINVAL;
    map_pools_t mp = {.all = all, .uid = uid};
    int r = ad_leases_foreach_pool(leases, collect_pool, &mp);
    if (r < 0) {
        free(mp.items);
        return r;
    }
    if (mp.count == 0 && !all) {
        free(mp.items);
        return -ENOENT;
    }
    map_leases_t ml = {.all = all, .uid = uid};
    r = ad_leases_foreach_lease(leases, 0, collect_lease, &ml);
    if (r < 0)
        goto out;
    if (ml.count > 1)
        qsort(ml.items, ml.count, sizeof(*ml.items), map_lease_cmp);

    ad_wire_map_t map = {0};
    size_t n = mp.count < max_extents ? mp.count : max_extents;
    map.pools_omitted = (uint32_t)(mp.count - n);
    if (n > 0) {
        map.pools = calloc(n, sizeof(*map.pools));
        if (!map.pools) {
            r = -ENOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        r = map_pool(&ml, &mp.items[i], max_extents / n, &map.pools[i]);
        if (r < 0) {
            ad_heapmap_clear(&map);
            goto out;
        }
        map.count++;
    }
    *ret_map = map;
    r = 0;
out:
    free(ml.items);
    free(mp.items);
    return r;
}

void ad_heapmap_clear(ad_wire_map_t *map)
{
    if (!map)
        return;
    for (size_t i = 0; i < map->count; i++)
        free(map->pools[i].extents);
    free(map->pools);
    memset(map, 0, sizeof(*map));
}

/* ---- coalescing ---------------------------------------------------------------- */

static bool same_kind(const ad_wire_map_extent_t *a, const ad_wire_map_extent_t *b)
{
    return a->state == b->state && a->client_id == b->client_id;
}

/* Merges touching neighbours of the same state and client, in place. */
static size_t merge_equal(ad_wire_map_extent_t *items, size_t count)
{
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        if (n > 0 && same_kind(&items[n - 1], &items[i]) &&
            items[n - 1].offset + items[n - 1].length == items[i].offset)
            items[n - 1].length += items[i].length;
        else
            items[n++] = items[i];
    }
    return n;
}

/* The (state, client) pairs met in one cell and their bytes. A cell of a
 * merged map rarely meets more than a few; past CELL_KINDS the rest are not
 * counted, which can only hand the cell to a runner-up. */
#define CELL_KINDS 8

typedef struct cell_kind {
    uint32_t state;
    uint64_t client_id;
    uint64_t bytes;
} cell_kind_t;

static void cell_add(cell_kind_t *kinds, size_t *nkinds, const ad_wire_map_extent_t *e,
                     uint64_t bytes)
{
    for (size_t k = 0; k < *nkinds; k++) {
        if (kinds[k].state == e->state && kinds[k].client_id == e->client_id) {
            kinds[k].bytes += bytes;
            return;
        }
    }
    if (*nkinds < CELL_KINDS)
        kinds[(*nkinds)++] = (cell_kind_t){e->state, e->client_id, bytes};
}

size_t ad_heapmap_coalesce(ad_wire_map_extent_t *items, size_t count, size_t cap, uint64_t granule,
                           ad_wire_map_extent_t *spare)
{
    if (count <= cap || cap == 0)
        return count;
    count = merge_equal(items, count);
    if (count <= cap)
        return count;

    uint64_t start = items[0].offset;
    uint64_t end = items[count - 1].offset + items[count - 1].length;
    uint64_t total = end - start;
    uint64_t g = granule ? granule : 1;
    uint64_t cell = total / cap + (total % cap != 0);
    cell = (cell + g - 1) / g * g; /* ceil(total / cell) <= cap still holds */

    size_t out = 0, i = 0;
    for (uint64_t at = start; at < end; at += cell) {
        uint64_t cend = end - at > cell ? at + cell : end;
        /* A cell always meets an extent (they tile the range); should it
         * not, it reads as free rather than as stack garbage. */
        cell_kind_t kinds[CELL_KINDS] = {{.state = AD_WIRE_MAP_FREE}};
        size_t nkinds = 0;
        /* items[i] is the first extent that ends after `at`. */
        for (size_t j = i; j < count && items[j].offset < cend; j++) {
            uint64_t a = items[j].offset > at ? items[j].offset : at;
            uint64_t b = items[j].offset + items[j].length;
            b = b < cend ? b : cend;
            cell_add(kinds, &nkinds, &items[j], b - a);
        }
        while (i < count && items[i].offset + items[i].length <= cend)
            i++;
        size_t best = 0;
        for (size_t k = 1; k < nkinds; k++) {
            if (kinds[k].bytes > kinds[best].bytes)
                best = k;
        }
        ad_wire_map_extent_t e = {at, cend - at, kinds[best].state, kinds[best].client_id};
        if (out > 0 && same_kind(&spare[out - 1], &e))
            spare[out - 1].length += e.length;
        else
            spare[out++] = e;
    }
    memcpy(items, spare, out * sizeof(*items));
    return out;
}
