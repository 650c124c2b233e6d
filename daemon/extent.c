/* SPDX-License-Identifier: MIT
 *
 * extent.c -- free space of one pool heap.
 *
 * Free extents live in two indexes: by address, so a release merges with both
 * neighbours in O(log n), and by (size, address), for best fit and the
 * largest free extent. The address index is augmented with the largest
 * length in each subtree, so "the lowest (or highest) extent that fits" is
 * also O(log n).
 *
 * Placement segregates by size (the fixed-heap story in shared/seeds): small
 * leases take the highest extent that fits and are carved from its top, large
 * ones the lowest extent that fits, carved from its bottom. Long-lived arenas
 * gather at the top, large arrays at the bottom, and the holes large arrays
 * leave merge back into large holes instead of being pinned apart by small
 * leases. Plain best fit (smallest extent, lowest address) is kept as an
 * option: on bench-extent's mixed workload it refuses about a hundred times
 * more requests that the free bytes could have held, because each large
 * array leaves a sliver that small leases then pin. Allocated extents have an index by address too,
 * so a release is checked against what was really handed out: double, partial and overlapping
 * releases are refused and change nothing.
 *
 * Dirty pages are an overlay on the free space, not a separate pool: every free
 * byte is in the free indexes (so placement and coalescing are exact whatever
 * is dirty), and an address-ordered set of dirty ranges records which free
 * bytes still hold a released lease's pages and whose they were. A range is
 * punched when it has been dirty for decay_ms (oldest first: ranges sit in a
 * FIFO in release order), when purge is forced, or at once when an allocation
 * for another owner lands on it -- data never moves between owners. An
 * allocation that lands on its own owner's dirty pages keeps them and reports
 * zeroed = false.
 *
 * Punching touched pages costs about 0.25 ms per MiB, so it is kept out of the
 * reply path where it can be. A range released "urgent" (a reclaimed lease,
 * which changes owner) sits in a second list, due at once but punched by
 * ad_extents_purge_urgent() in slices after the caller answered. And with
 * prefer_clean, an allocation whose chosen place holds another owner's dirty
 * pages looks (boundedly) for clean space first, so the budget of a reclaimed
 * lease moves at once while its pages follow. Either way an allocation for
 * another owner still punches whatever dirty pages it lands on.
 *
 * Every operation validates its arguments and allocates whatever nodes it
 * needs before it changes anything, so failures leave the structure as it
 * was. Loop thread only. ad_extents_is_valid() cross-checks all indexes.
 */
#include "extent.h"

#include <errno.h>
#include <stdlib.h>

#include "avl.h"

typedef struct free_extent {
    arena__avl_node_t by_addr;
    arena__avl_node_t by_size;
    uint64_t offset;
    uint64_t length;
    uint64_t max_length; /* largest length in this node's by_addr subtree */
} free_extent_t;

typedef struct used_extent {
    arena__avl_node_t by_addr;
    uint64_t offset;
    uint64_t length;
    uint64_t owner;
} used_extent_t;

typedef struct dirty_range {
    arena__avl_node_t by_addr;
    uint64_t offset;
    uint64_t length;
    uint64_t owner;
    uint64_t stamp_ms;                 /* when it became dirty (urgent: when it is due) */
    struct dirty_range *older, *newer; /* in its list, oldest first */
    bool urgent;                       /* in extents->urgent, not extents->decay */
} dirty_range_t;

/* A FIFO of dirty ranges, oldest first. */
typedef struct dirty_list {
    dirty_range_t *oldest, *newest;
} dirty_list_t;

struct ad_extents {
    uint64_t size;
    uint64_t granule;
    uint64_t small_limit;
    uint64_t decay_ms;
    ad_placement_t placement;
    bool prefer_clean;
    ad_punch_fn punch;
    void *punch_ctx;

    arena__avl_t free_by_addr;
    arena__avl_t free_by_size;
    arena__avl_t used_by_addr;
    arena__avl_t dirty_by_addr;
    dirty_list_t decay;         /* punched when decay_ms passed, in release order */
    dirty_list_t urgent;        /* punched at the next purge, in slices */
    uint64_t urgent_not_before; /* a sliced purge left some: next slice from then */

    uint64_t leased_bytes;
    uint64_t free_bytes;
    uint64_t dirty_bytes;
    uint64_t urgent_bytes; /* of dirty_bytes, in the urgent list */
    uint64_t punched_bytes_total;
};

typedef struct size_key {
    uint64_t length;
    uint64_t offset;
} size_key_t;

#define FREE_BY_ADDR(n)  ARENA_AVL_ENTRY(n, free_extent_t, by_addr)
#define FREE_BY_SIZE(n)  ARENA_AVL_ENTRY(n, free_extent_t, by_size)
#define USED_BY_ADDR(n)  ARENA_AVL_ENTRY(n, used_extent_t, by_addr)
#define DIRTY_BY_ADDR(n) ARENA_AVL_ENTRY(n, dirty_range_t, by_addr)

static int u64_cmp(uint64_t a, uint64_t b)
{
    return (a > b) - (a < b);
}

static int free_addr_cmp(const arena__avl_node_t *a, const arena__avl_node_t *b)
{
    return u64_cmp(FREE_BY_ADDR(a)->offset, FREE_BY_ADDR(b)->offset);
}

static int free_addr_key(const void *key, const arena__avl_node_t *n)
{
    return u64_cmp(*(const uint64_t *)key, FREE_BY_ADDR(n)->offset);
}

static uint64_t subtree_max(const arena__avl_node_t *n)
{
    return n ? FREE_BY_ADDR(n)->max_length : 0;
}

static bool free_addr_update(arena__avl_node_t *n)
{
    free_extent_t *f = FREE_BY_ADDR(n);
    uint64_t l = subtree_max(n->link[0]), r = subtree_max(n->link[1]);
    uint64_t m = l > r ? l : r;
    m = f->length > m ? f->length : m;
    bool changed = m != f->max_length;
    f->max_length = m;
    return changed;
}

static int free_size_cmp(const arena__avl_node_t *a, const arena__avl_node_t *b)
{
    const free_extent_t *x = FREE_BY_SIZE(a), *y = FREE_BY_SIZE(b);
    int c = u64_cmp(x->length, y->length);
    return c ? c : u64_cmp(x->offset, y->offset);
}

static int free_size_key(const void *key, const arena__avl_node_t *n)
{
    const size_key_t *k = key;
    const free_extent_t *x = FREE_BY_SIZE(n);
    int c = u64_cmp(k->length, x->length);
    return c ? c : u64_cmp(k->offset, x->offset);
}

static int used_addr_cmp(const arena__avl_node_t *a, const arena__avl_node_t *b)
{
    return u64_cmp(USED_BY_ADDR(a)->offset, USED_BY_ADDR(b)->offset);
}

static int used_addr_key(const void *key, const arena__avl_node_t *n)
{
    return u64_cmp(*(const uint64_t *)key, USED_BY_ADDR(n)->offset);
}

static int dirty_addr_cmp(const arena__avl_node_t *a, const arena__avl_node_t *b)
{
    return u64_cmp(DIRTY_BY_ADDR(a)->offset, DIRTY_BY_ADDR(b)->offset);
}

static int dirty_addr_key(const void *key, const arena__avl_node_t *n)
{
    return u64_cmp(*(const uint64_t *)key, DIRTY_BY_ADDR(n)->offset);
}

static bool is_aligned(const ad_extents_t *ex, uint64_t v)
{
    return (v & (ex->granule - 1)) == 0;
}

/* [offset, offset + length) is a non-empty, aligned range inside the heap. */
static bool range_is_valid(const ad_extents_t *ex, uint64_t offset, uint64_t length)
{
    return length > 0 && is_aligned(ex, offset) && is_aligned(ex, length) && offset < ex->size &&
           length <= ex->size - offset;
}

static int punch_range(ad_extents_t *ex, uint64_t offset, uint64_t length)
{
    if (ex->punch) {
        int r = ex->punch(ex->punch_ctx, offset, length);
        if (r < 0)
            return r;
    }
    ex->punched_bytes_total += length;
    return 0;
}

/* ---- free extents ---------------------------------------------------------- */

static void free_insert(ad_extents_t *ex, free_extent_t *f)
{
    arena__avl_insert(&ex->free_by_addr, &f->by_addr);
    arena__avl_insert(&ex->free_by_size, &f->by_size);
}

static void free_remove(ad_extents_t *ex, free_extent_t *f)
{
    arena__avl_remove(&ex->free_by_addr, &f->by_addr);
    arena__avl_remove(&ex->free_by_size, &f->by_size);
}

/* Moves f to [offset, offset + length). The new range never crosses a
 * neighbour, so the address index keeps its order (only its subtree maxima
 * change); the size index re-sorts. */
static void free_reshape(ad_extents_t *ex, free_extent_t *f, uint64_t offset, uint64_t length)
{
    arena__avl_remove(&ex->free_by_size, &f->by_size);
    f->offset = offset;
    f->length = length;
    arena__avl_insert(&ex->free_by_size, &f->by_size);
    arena__avl_refresh(&ex->free_by_addr, &f->by_addr);
}

/* The lowest (side 0) or highest (side 1) free extent of at least length
 * bytes, or NULL: descends toward `side` first wherever the subtree maxima
 * say a fit exists there. */
static free_extent_t *free_edge_fit(const ad_extents_t *ex, uint64_t length, int side)
{
    arena__avl_node_t *n = ex->free_by_addr.root;
    while (n) {
        if (subtree_max(n->link[side]) >= length)
            n = n->link[side];
        else if (FREE_BY_ADDR(n)->length >= length)
            return FREE_BY_ADDR(n);
        else if (subtree_max(n->link[!side]) >= length)
            n = n->link[!side];
        else
            return NULL;
    }
    return NULL;
}

/* The extent a new lease of `length` bytes goes into, or NULL. */
static free_extent_t *free_choose(const ad_extents_t *ex, uint64_t length)
{
    bool small = length <= ex->small_limit;
    if (ex->placement == AD_PLACE_SEGREGATED)
        return free_edge_fit(ex, length, small ? 1 : 0);
    size_key_t key = {.length = length, .offset = 0};
    arena__avl_node_t *n = arena__avl_lower_bound(&ex->free_by_size, free_size_key, &key);
    return n ? FREE_BY_SIZE(n) : NULL;
}

/* The free extent containing offset, or NULL. */
static free_extent_t *free_containing(const ad_extents_t *ex, uint64_t offset)
{
    arena__avl_node_t *n = arena__avl_floor(&ex->free_by_addr, free_addr_key, &offset);
    if (!n)
        return NULL;
    free_extent_t *f = FREE_BY_ADDR(n);
    return offset - f->offset < f->length ? f : NULL;
}

/* ---- the dirty overlay ----------------------------------------------------- */

static dirty_list_t *list_of(ad_extents_t *ex, const dirty_range_t *d)
{
    return d->urgent ? &ex->urgent : &ex->decay;
}

/* Links d into its list (d->urgent says which) right after `after` (NULL: as
 * the oldest). */
static void fifo_link_after(ad_extents_t *ex, dirty_range_t *after, dirty_range_t *d)
{
    dirty_list_t *l = list_of(ex, d);
    d->older = after;
    d->newer = after ? after->newer : l->oldest;
    if (d->newer)
        d->newer->older = d;
    else
        l->newest = d;
    if (after)
        after->newer = d;
    else
        l->oldest = d;
}

static void fifo_unlink(ad_extents_t *ex, dirty_range_t *d)
{
    dirty_list_t *l = list_of(ex, d);
    if (d->older)
        d->older->newer = d->newer;
    else
        l->oldest = d->newer;
    if (d->newer)
        d->newer->older = d->older;
    else
        l->newest = d->older;
    d->older = d->newer = NULL;
}

/* d shrinks by `bytes` (the caller moves its ends). */
static void dirty_shrunk(ad_extents_t *ex, const dirty_range_t *d, uint64_t bytes)
{
    ex->dirty_bytes -= bytes;
    if (d->urgent)
        ex->urgent_bytes -= bytes;
}

static void dirty_delete(ad_extents_t *ex, dirty_range_t *d)
{
    arena__avl_remove(&ex->dirty_by_addr, &d->by_addr);
    fifo_unlink(ex, d);
    dirty_shrunk(ex, d, d->length);
    free(d);
}

/* The first dirty range that ends after offset, or NULL. */
static dirty_range_t *dirty_first_overlap(const ad_extents_t *ex, uint64_t offset)
{
    arena__avl_node_t *n = arena__avl_floor(&ex->dirty_by_addr, dirty_addr_key, &offset);
    if (n && DIRTY_BY_ADDR(n)->offset + DIRTY_BY_ADDR(n)->length > offset)
        return DIRTY_BY_ADDR(n);
    n = arena__avl_lower_bound(&ex->dirty_by_addr, dirty_addr_key, &offset);
    return n ? DIRTY_BY_ADDR(n) : NULL;
}

static dirty_range_t *dirty_next(const ad_extents_t *ex, const dirty_range_t *d)
{
    arena__avl_node_t *n = arena__avl_next(&ex->dirty_by_addr, &d->by_addr);
    return n ? DIRTY_BY_ADDR(n) : NULL;
}

/* Does [a, end) need a spare node to carve out of the dirty overlay? Only when
 * one dirty range sticks out on both sides. */
static bool dirty_carve_needs_node(const ad_extents_t *ex, uint64_t a, uint64_t end)
{
    dirty_range_t *d = dirty_first_overlap(ex, a);
    return d && d->offset < a && d->offset + d->length > end;
}

/* Does [a, end) hold dirty pages of another owner than `owner`? */
static bool dirty_has_foreign(const ad_extents_t *ex, uint64_t a, uint64_t end, uint64_t owner)
{
    for (dirty_range_t *d = dirty_first_overlap(ex, a); d && d->offset < end;
         d = dirty_next(ex, d)) {
        if (d->owner != owner)
            return true;
    }
    return false;
}

/* Punches the pages of [a, end) that are dirty from another owner than
 * `owner`. Changes no bookkeeping, so a failure can be returned as is (pages
 * punched before it read as zero, which is harmless). */
static int dirty_punch_foreign(ad_extents_t *ex, uint64_t a, uint64_t end, uint64_t owner)
{
    for (dirty_range_t *d = dirty_first_overlap(ex, a); d && d->offset < end;
         d = dirty_next(ex, d)) {
        if (d->owner == owner)
            continue;
        uint64_t lo = d->offset > a ? d->offset : a;
        uint64_t hi = d->offset + d->length < end ? d->offset + d->length : end;
        int r = ex->punch ? ex->punch(ex->punch_ctx, lo, hi - lo) : 0;
        if (r < 0)
            return r;
    }
    return 0;
}

/* Removes [a, end) from the dirty overlay (the range is leaving the free
 * space). Bytes of other owners were punched by dirty_punch_foreign() and are
 * counted here. Sets *ret_zeroed false when `owner` had dirty pages there.
 * spare: a node for the case dirty_carve_needs_node() foresaw; consumed or
 * freed. */
static void dirty_carve(ad_extents_t *ex, uint64_t a, uint64_t end, uint64_t owner,
                        bool count_foreign, bool *ret_zeroed, dirty_range_t *spare)
{
    dirty_range_t *d = dirty_first_overlap(ex, a);
    while (d && d->offset < end) {
        dirty_range_t *next = dirty_next(ex, d);
        uint64_t d_end = d->offset + d->length;
        uint64_t lo = d->offset > a ? d->offset : a;
        uint64_t hi = d_end < end ? d_end : end;
        if (d->owner == owner)
            *ret_zeroed = false;
        else if (count_foreign)
            ex->punched_bytes_total += hi - lo;

        if (d->offset >= a && d_end <= end) {
            dirty_delete(ex, d);
        } else if (d->offset < a && d_end > end) {
            /* Sticks out on both sides: keep the left part, the spare becomes
             * the right part, same owner and age, right after it in the FIFO. */
            d->length = a - d->offset;
            spare->offset = end;
            spare->length = d_end - end;
            spare->owner = d->owner;
            spare->stamp_ms = d->stamp_ms;
            spare->urgent = d->urgent;
            arena__avl_insert(&ex->dirty_by_addr, &spare->by_addr);
            fifo_link_after(ex, d, spare);
            spare = NULL;
            dirty_shrunk(ex, d, end - a);
        } else if (d->offset < a) {
            d->length = a - d->offset;
            dirty_shrunk(ex, d, d_end - a);
        } else {
            d->offset = end;
            d->length = d_end - end;
            dirty_shrunk(ex, d, end - lo);
        }
        d = next;
    }
    free(spare);
}

/* ---- lifecycle ------------------------------------------------------------- */

int ad_extents_new(const ad_extents_config_t *config, ad_extents_t **ret_extents)
{
    if (!config || !ret_extents || config->granule == 0 ||
        (config->granule & (config->granule - 1)) || config->size == 0 ||
        (config->size & (config->granule - 1)) ||
        (config->placement != AD_PLACE_SEGREGATED && config->placement != AD_PLACE_BEST_FIT))
        return -EINVAL;
    ad_extents_t *ex = calloc(1, sizeof(*ex));
    free_extent_t *all = calloc(1, sizeof(*all));
    if (!ex || !all) {
        free(ex);
        free(all);
        return -ENOMEM;
    }
    ex->size = config->size;
    ex->granule = config->granule;
    ex->small_limit = config->small_limit;
    ex->decay_ms = config->decay_ms;
    ex->placement = config->placement;
    ex->prefer_clean = config->prefer_clean;
    ex->punch = config->punch;
    ex->punch_ctx = config->punch_ctx;
    arena__avl_init_augmented(&ex->free_by_addr, free_addr_cmp, free_addr_update);
    arena__avl_init(&ex->free_by_size, free_size_cmp);
    arena__avl_init(&ex->used_by_addr, used_addr_cmp);
    arena__avl_init(&ex->dirty_by_addr, dirty_addr_cmp);
    all->offset = 0;
    all->length = config->size;
    free_insert(ex, all);
    ex->free_bytes = config->size;
    *ret_extents = ex;
    return 0;
}

/* Frees every node of a tree; the tree is unusable afterwards. */
static void tree_free_all(arena__avl_node_t *n, size_t node_offset)
{
    while (n) {
        tree_free_all(n->link[0], node_offset);
        arena__avl_node_t *right = n->link[1];
        free((char *)n - node_offset);
        n = right;
    }
}

void ad_extents_free(ad_extents_t *extents)
{
    if (!extents)
        return;
    /* Each free extent is in two trees; free it through the address tree only. */
    tree_free_all(extents->free_by_addr.root, offsetof(free_extent_t, by_addr));
    tree_free_all(extents->used_by_addr.root, offsetof(used_extent_t, by_addr));
    tree_free_all(extents->dirty_by_addr.root, offsetof(dirty_range_t, by_addr));
    free(extents);
}

/* ---- allocation ------------------------------------------------------------ */

/* How many free extents and dirty ranges a search for clean space looks at
 * before it settles for punching: a bound on the work one request can cause. */
#define CLEAN_SEARCH_STEPS 64

/* A place for `length` bytes inside free extent f that holds no dirty page of
 * another owner than `owner`: the highest such place when top, else the
 * lowest. Returns true and *ret_at. Each dirty range looked at costs a step. */
static bool clean_gap(const ad_extents_t *ex, const free_extent_t *f, uint64_t length,
                      uint64_t owner, bool top, unsigned *steps, uint64_t *ret_at)
{
    uint64_t lo = f->offset, f_end = f->offset + f->length;
    bool found = false;
    for (dirty_range_t *d = dirty_first_overlap(ex, lo); d && d->offset < f_end;
         d = dirty_next(ex, d)) {
        if (*steps == 0)
            return found; /* the rest of f is unknown; what we found is clean */
        (*steps)--;
        if (d->owner == owner)
            continue;
        if (d->offset - lo >= length) {
            *ret_at = top ? d->offset - length : lo;
            found = true;
            if (!top)
                return true;
        }
        lo = d->offset + d->length;
    }
    if (f_end - lo >= length) {
        *ret_at = top ? f_end - length : lo;
        found = true;
    }
    return found;
}

/* Clean space for a lease, in the order the placement policy would try the
 * free extents, small leases at the top of their gap and large ones at the
 * bottom. Returns true, *ret_extent and *ret_at, or false when none turned
 * up within CLEAN_SEARCH_STEPS. */
static bool clean_choose(const ad_extents_t *ex, uint64_t length, uint64_t owner,
                         free_extent_t **ret_extent, uint64_t *ret_at)
{
    bool small = length <= ex->small_limit;
    bool by_addr = ex->placement == AD_PLACE_SEGREGATED;
    unsigned steps = CLEAN_SEARCH_STEPS;
    arena__avl_node_t *n;
    if (by_addr) {
        n = small ? arena__avl_last(&ex->free_by_addr) : arena__avl_first(&ex->free_by_addr);
    } else {
        size_key_t key = {.length = length, .offset = 0};
        n = arena__avl_lower_bound(&ex->free_by_size, free_size_key, &key);
    }
    while (n && steps > 0) {
        steps--;
        free_extent_t *f = by_addr ? FREE_BY_ADDR(n) : FREE_BY_SIZE(n);
        if (f->length >= length && clean_gap(ex, f, length, owner, small, &steps, ret_at)) {
            *ret_extent = f;
            return true;
        }
        if (!by_addr)
            n = arena__avl_next(&ex->free_by_size, n);
        else if (small)
            n = arena__avl_prev(&ex->free_by_addr, n);
        else
            n = arena__avl_next(&ex->free_by_addr, n);
    }
    return false;
}

/* Takes [a, a + length) out of free extent f (which contains it). spare_free
 * is a node for the case where the range sits strictly inside f; consumed or
 * freed. */
static void free_take(ad_extents_t *ex, free_extent_t *f, uint64_t a, uint64_t length,
                      free_extent_t *spare_free)
{
    uint64_t f_end = f->offset + f->length, end = a + length;
    if (a == f->offset && end == f_end) {
        free_remove(ex, f);
        free(f);
    } else if (a == f->offset) {
        free_reshape(ex, f, end, f_end - end);
    } else if (end == f_end) {
        free_reshape(ex, f, f->offset, a - f->offset);
    } else {
        free_reshape(ex, f, f->offset, a - f->offset);
        spare_free->offset = end;
        spare_free->length = f_end - end;
        free_insert(ex, spare_free);
        spare_free = NULL;
    }
    free(spare_free);
    ex->free_bytes -= length;
}

/* Allocates [a, a + length) from free extent f for owner; the common tail of
 * alloc and claim. count_foreign: other owners' dirty pages were punched. */
static int extents_take(ad_extents_t *ex, free_extent_t *f, uint64_t a, uint64_t length,
                        uint64_t owner, bool count_foreign, bool *ret_zeroed)
{
    uint64_t end = a + length;
    bool inside = a > f->offset && end < f->offset + f->length;
    used_extent_t *u = malloc(sizeof(*u));
    bool split_dirty = dirty_carve_needs_node(ex, a, end);
    free_extent_t *spare_free = inside ? malloc(sizeof(*spare_free)) : NULL;
    dirty_range_t *spare_dirty = split_dirty ? malloc(sizeof(*spare_dirty)) : NULL;
    if (!u || (inside && !spare_free) || (split_dirty && !spare_dirty)) {
        free(u);
        free(spare_free);
        free(spare_dirty);
        return -ENOMEM;
    }
    if (count_foreign) {
        int r = dirty_punch_foreign(ex, a, end, owner);
        if (r < 0) {
            free(u);
            free(spare_free);
            free(spare_dirty);
            return r;
        }
    }
    bool zeroed = true;
    dirty_carve(ex, a, end, owner, count_foreign, &zeroed, spare_dirty);
    free_take(ex, f, a, length, spare_free);
    u->offset = a;
    u->length = length;
    u->owner = owner;
    arena__avl_insert(&ex->used_by_addr, &u->by_addr);
    ex->leased_bytes += length;
    *ret_zeroed = zeroed;
    return 0;
}

int ad_extents_alloc(ad_extents_t *extents, uint64_t length, uint64_t owner, uint64_t now_ms,
                     ad_extent_t *ret_extent)
{
    (void)now_ms;
    if (!extents || !ret_extent || length == 0 || !is_aligned(extents, length))
        return -EINVAL;
    if (length > extents->size)
        return -E2BIG;
    free_extent_t *f = free_choose(extents, length);
    if (!f)
        return -ENOMEM;
    uint64_t a = length <= extents->small_limit ? f->offset + f->length - length : f->offset;
    /* Pages another owner left dirty must be punched before this owner gets
     * them, which costs about 0.25 ms per MiB of touched pages, in the reply
     * path. Clean space elsewhere costs nothing: take it when there is some,
     * and let the purge punch the dirty pages after the reply. */
    if (extents->prefer_clean && dirty_has_foreign(extents, a, a + length, owner)) {
        free_extent_t *clean;
        uint64_t at;
        if (clean_choose(extents, length, owner, &clean, &at)) {
            f = clean;
            a = at;
        }
    }
    bool zeroed;
    int r = extents_take(extents, f, a, length, owner, true, &zeroed);
    if (r < 0)
        return r;
    ret_extent->offset = a;
    ret_extent->length = length;
    ret_extent->zeroed = zeroed;
    return 0;
}

int ad_extents_claim(ad_extents_t *extents, uint64_t offset, uint64_t length, uint64_t owner)
{
    if (!extents || !range_is_valid(extents, offset, length))
        return -EINVAL;
    free_extent_t *f = free_containing(extents, offset);
    if (!f || offset + length > f->offset + f->length)
        return -EBUSY;
    /* A claimed range keeps its contents: nothing is punched, and dirty pages
     * there (there should be none after a restart) simply stop being dirty. */
    bool zeroed;
    return extents_take(extents, f, offset, length, owner, false, &zeroed);
}

/* ---- release --------------------------------------------------------------- */

/* What a release does with the pages. */
typedef enum release_mode {
    RELEASE_DECAY,  /* dirty for decay_ms (punched at once when decay_ms is 0) */
    RELEASE_PUNCH,  /* punched now */
    RELEASE_URGENT, /* punched by the next ad_extents_purge_urgent() */
} release_mode_t;

static int extents_release(ad_extents_t *ex, uint64_t offset, uint64_t length, uint64_t now_ms,
                           release_mode_t mode)
{
    if (!ex || !range_is_valid(ex, offset, length))
        return -EINVAL;
    arena__avl_node_t *un = arena__avl_lower_bound(&ex->used_by_addr, used_addr_key, &offset);
    used_extent_t *u = un ? USED_BY_ADDR(un) : NULL;
    if (!u || u->offset != offset) {
        free_extent_t *f = free_containing(ex, offset);
        if (f && offset + length <= f->offset + f->length)
            return -EALREADY;
        return -ENOENT;
    }
    if (u->length != length)
        return -ERANGE;

    uint64_t end = offset + length;
    arena__avl_node_t *ln = arena__avl_floor(&ex->free_by_addr, free_addr_key, &offset);
    arena__avl_node_t *rn = arena__avl_lower_bound(&ex->free_by_addr, free_addr_key, &end);
    free_extent_t *left = ln ? FREE_BY_ADDR(ln) : NULL;
    free_extent_t *right = rn ? FREE_BY_ADDR(rn) : NULL;
    if (left && left->offset + left->length != offset)
        left = NULL;
    if (right && right->offset != end)
        right = NULL;

    free_extent_t *fresh = (!left && !right) ? malloc(sizeof(*fresh)) : NULL;
    dirty_range_t *d = malloc(sizeof(*d));
    if ((!left && !right && !fresh) || !d) {
        free(fresh);
        free(d);
        return -ENOMEM;
    }

    /* Pages: punched now, or dirty until the decay delay passes. A failed
     * punch leaves them dirty, to be retried by the next purge. */
    bool punched = false;
    if (mode == RELEASE_PUNCH || (mode == RELEASE_DECAY && ex->decay_ms == 0))
        punched = punch_range(ex, offset, length) == 0;
    if (punched) {
        free(d);
    } else {
        d->offset = offset;
        d->length = length;
        d->owner = u->owner;
        d->stamp_ms = now_ms;
        d->urgent = mode == RELEASE_URGENT;
        arena__avl_insert(&ex->dirty_by_addr, &d->by_addr);
        fifo_link_after(ex, list_of(ex, d)->newest, d);
        ex->dirty_bytes += length;
        if (d->urgent)
            ex->urgent_bytes += length;
    }

    /* Merge with both neighbours. */
    if (left && right) {
        uint64_t merged = left->length + length + right->length;
        free_remove(ex, right);
        free(right);
        free_reshape(ex, left, left->offset, merged);
    } else if (left) {
        free_reshape(ex, left, left->offset, left->length + length);
    } else if (right) {
        free_reshape(ex, right, offset, right->length + length);
    } else {
        fresh->offset = offset;
        fresh->length = length;
        free_insert(ex, fresh);
    }
    arena__avl_remove(&ex->used_by_addr, &u->by_addr);
    free(u);
    ex->leased_bytes -= length;
    ex->free_bytes += length;
    return 0;
}

int ad_extents_release(ad_extents_t *extents, uint64_t offset, uint64_t length, uint64_t now_ms,
                       bool punch_now)
{
    return extents_release(extents, offset, length, now_ms,
                           punch_now ? RELEASE_PUNCH : RELEASE_DECAY);
}

int ad_extents_release_urgent(ad_extents_t *extents, uint64_t offset, uint64_t length,
                              uint64_t now_ms)
{
    return extents_release(extents, offset, length, now_ms, RELEASE_URGENT);
}

/* ---- purge ----------------------------------------------------------------- */

/* Punches urgent ranges, oldest first, up to max_bytes (0: all), cutting the
 * last one at a granule boundary so one call never punches much more than
 * asked. Returns the bytes punched. */
static uint64_t purge_urgent(ad_extents_t *ex, uint64_t now_ms, uint64_t max_bytes)
{
    uint64_t punched = 0;
    dirty_range_t *first_failed = NULL;
    while (ex->urgent.oldest && ex->urgent.oldest != first_failed) {
        dirty_range_t *d = ex->urgent.oldest;
        if (max_bytes && punched >= max_bytes)
            break;
        uint64_t part = d->length;
        if (max_bytes && part > max_bytes - punched) {
            uint64_t want = max_bytes - punched;
            part = (want + ex->granule - 1) & ~(ex->granule - 1);
            if (part > d->length)
                part = d->length;
        }
        if (punch_range(ex, d->offset, part) < 0) {
            fifo_unlink(ex, d);
            d->stamp_ms = now_ms;
            fifo_link_after(ex, ex->urgent.newest, d);
            if (!first_failed)
                first_failed = d;
            continue;
        }
        punched += part;
        if (part == d->length) {
            dirty_delete(ex, d);
        } else {
            /* The front is clean now; moving the start keeps the address
             * order, since no other range lies in between. */
            d->offset += part;
            d->length -= part;
            dirty_shrunk(ex, d, part);
        }
    }
    return punched;
}

uint64_t ad_extents_purge_urgent(ad_extents_t *extents, uint64_t now_ms, uint64_t max_bytes)
{
    if (!extents)
        return 0;
    uint64_t punched = purge_urgent(extents, now_ms, max_bytes);
    /* Stopped at the limit: the next slice in a millisecond. (A range whose
     * punch failed is due again now instead; the caller decides how soon to
     * retry, rather than spinning here.) */
    if (extents->urgent.oldest && max_bytes && punched >= max_bytes && now_ms < UINT64_MAX)
        extents->urgent_not_before = now_ms + 1;
    return punched;
}

uint64_t ad_extents_purge(ad_extents_t *extents, uint64_t now_ms, bool force, uint64_t max_bytes)
{
    ad_extents_t *ex = extents;
    if (!ex)
        return 0;
    uint64_t punched = force ? purge_urgent(ex, now_ms, max_bytes) : 0;
    /* Ranges that fail to punch go to the back of the FIFO; stop when we meet
     * the first of them again so one call never loops. */
    dirty_range_t *first_failed = NULL;
    while (ex->decay.oldest && ex->decay.oldest != first_failed) {
        dirty_range_t *d = ex->decay.oldest;
        if (!force && (now_ms < d->stamp_ms || now_ms - d->stamp_ms < ex->decay_ms))
            break;
        if (max_bytes && punched >= max_bytes)
            break;
        if (punch_range(ex, d->offset, d->length) < 0) {
            fifo_unlink(ex, d);
            d->stamp_ms = now_ms;
            fifo_link_after(ex, ex->decay.newest, d);
            if (!first_failed)
                first_failed = d;
            continue;
        }
        punched += d->length;
        dirty_delete(ex, d);
    }
    return punched;
}

uint64_t ad_extents_next_purge_ms(const ad_extents_t *extents)
{
    if (!extents)
        return UINT64_MAX;
    uint64_t next = UINT64_MAX;
    if (extents->decay.oldest) {
        uint64_t stamp = extents->decay.oldest->stamp_ms;
        next = stamp > UINT64_MAX - extents->decay_ms ? UINT64_MAX : stamp + extents->decay_ms;
    }
    if (extents->urgent.oldest) {
        uint64_t due = extents->urgent.oldest->stamp_ms;
        if (extents->urgent_not_before > due)
            due = extents->urgent_not_before;
        if (due < next)
            next = due;
    }
    return next;
}

void ad_extents_set_decay(ad_extents_t *extents, uint64_t decay_ms)
{
    if (extents)
        extents->decay_ms = decay_ms;
}

int ad_extents_owner(const ad_extents_t *extents, uint64_t offset, uint64_t *ret_owner)
{
    if (!extents || !ret_owner)
        return -EINVAL;
    arena__avl_node_t *n = arena__avl_lower_bound(&extents->used_by_addr, used_addr_key, &offset);
    if (!n || USED_BY_ADDR(n)->offset != offset)
        return -ENOENT;
    *ret_owner = USED_BY_ADDR(n)->owner;
    return 0;
}

void ad_extents_stats(const ad_extents_t *extents, ad_extents_stats_t *ret_stats)
{
    const ad_extents_t *ex = extents;
    arena__avl_node_t *largest = arena__avl_last(&ex->free_by_size);
    ad_extents_stats_t s = {
        .size = ex->size,
        .leased_bytes = ex->leased_bytes,
        .leased_extents = ex->used_by_addr.count,
        .free_bytes = ex->free_bytes,
        .free_extents = ex->free_by_addr.count,
        .largest_free = largest ? FREE_BY_SIZE(largest)->length : 0,
        .dirty_bytes = ex->dirty_bytes,
        .urgent_bytes = ex->urgent_bytes,
        .dirty_ranges = ex->dirty_by_addr.count,
        .punched_bytes_total = ex->punched_bytes_total,
    };
    s.fragmentation = s.free_bytes ? 1.0 - (double)s.largest_free / (double)s.free_bytes : 0.0;
    *ret_stats = s;
}

/* ---- validation ------------------------------------------------------------ */

/* Recomputes subtree maxima and compares; returns the true maximum or
 * UINT64_MAX when a stored one is wrong. */
static uint64_t max_check(const arena__avl_node_t *n)
{
    if (!n)
        return 0;
    uint64_t l = max_check(n->link[0]), r = max_check(n->link[1]);
    if (l == UINT64_MAX || r == UINT64_MAX)
        return UINT64_MAX;
    uint64_t m = FREE_BY_ADDR(n)->length;
    m = l > m ? l : m;
    m = r > m ? r : m;
    return m == FREE_BY_ADDR(n)->max_length ? m : UINT64_MAX;
}

bool ad_extents_is_valid(const ad_extents_t *extents)
{
    const ad_extents_t *ex = extents;
    if (!ex || arena__avl_check(&ex->free_by_addr) || arena__avl_check(&ex->free_by_size) ||
        arena__avl_check(&ex->used_by_addr) || arena__avl_check(&ex->dirty_by_addr))
        return false;
    if (ex->free_by_addr.count != ex->free_by_size.count)
        return false;
    if (max_check(ex->free_by_addr.root) == UINT64_MAX)
        return false;

    /* Free and used extents tile [0, size) in address order, no two free ones touch. */
    arena__avl_node_t *fn = arena__avl_first(&ex->free_by_addr);
    arena__avl_node_t *un = arena__avl_first(&ex->used_by_addr);
    uint64_t at = 0, free_sum = 0, used_sum = 0;
    bool last_was_free = false;
    while (fn || un) {
        if (fn && FREE_BY_ADDR(fn)->offset == at) {
            const free_extent_t *f = FREE_BY_ADDR(fn);
            if (last_was_free || f->length == 0 || !is_aligned(ex, f->length))
                return false;
            /* The same node must be findable in the size index. */
            size_key_t key = {f->length, f->offset};
            arena__avl_node_t *s = arena__avl_lower_bound(&ex->free_by_size, free_size_key, &key);
            if (!s || FREE_BY_SIZE(s) != f)
                return false;
            at += f->length;
            free_sum += f->length;
            last_was_free = true;
            fn = arena__avl_next(&ex->free_by_addr, fn);
        } else if (un && USED_BY_ADDR(un)->offset == at) {
            const used_extent_t *u = USED_BY_ADDR(un);
            if (u->length == 0 || !is_aligned(ex, u->length))
                return false;
            at += u->length;
            used_sum += u->length;
            last_was_free = false;
            un = arena__avl_next(&ex->used_by_addr, un);
        } else {
            return false; /* a gap or an overlap */
        }
    }
    if (at != ex->size || free_sum != ex->free_bytes || used_sum != ex->leased_bytes)
        return false;

    /* Dirty ranges: disjoint, inside free space, summing to dirty_bytes, and
     * the FIFO holds exactly them in non-decreasing stamp order. */
    uint64_t dirty_sum = 0, urgent_sum = 0, prev_end = 0;
    for (arena__avl_node_t *dn = arena__avl_first(&ex->dirty_by_addr); dn;
         dn = arena__avl_next(&ex->dirty_by_addr, dn)) {
        const dirty_range_t *d = DIRTY_BY_ADDR(dn);
        if (d->length == 0 || d->offset < prev_end)
            return false;
        const free_extent_t *f = free_containing(ex, d->offset);
        if (!f || d->offset + d->length > f->offset + f->length)
            return false;
        prev_end = d->offset + d->length;
        dirty_sum += d->length;
        if (d->urgent)
            urgent_sum += d->length;
    }
    if (dirty_sum != ex->dirty_bytes || urgent_sum != ex->urgent_bytes)
        return false;
    /* The decay FIFO in non-decreasing stamp order; the urgent list in
     * release order (failed punches go to its back with a fresh stamp). */
    size_t fifo_count = 0;
    for (int urgent = 0; urgent < 2; urgent++) {
        const dirty_list_t *l = urgent ? &ex->urgent : &ex->decay;
        if (l->oldest && l->oldest->older)
            return false;
        for (const dirty_range_t *d = l->oldest; d; d = d->newer) {
            if (d->urgent != (urgent == 1))
                return false;
            if (!urgent && d->newer && d->newer->stamp_ms < d->stamp_ms)
                return false;
            if (d->newer ? d->newer->older != d : l->newest != d)
                return false;
            if (++fifo_count > ex->dirty_by_addr.count)
                return false;
        }
    }
    return fifo_count == ex->dirty_by_addr.count;
}

/* ---- walking ----------------------------------------------------------------- */

/* Reports free extent f, cut by the dirty ranges inside it. */
static int walk_free(const ad_extents_t *ex, const free_extent_t *f, ad_extents_walk_fn fn,
                     void *ctx)
{
    uint64_t at = f->offset, end = f->offset + f->length;
    for (dirty_range_t *d = dirty_first_overlap(ex, at); d && d->offset < end;
         d = dirty_next(ex, d)) {
        /* The overlay lies inside the free space, so d is inside f. */
        if (d->offset > at) {
            int r = fn(ctx, at, d->offset - at, AD_EXTENT_FREE, 0);
            if (r)
                return r;
        }
        int r = fn(ctx, d->offset, d->length, AD_EXTENT_DIRTY, d->owner);
        if (r)
            return r;
        at = d->offset + d->length;
    }
    return at < end ? fn(ctx, at, end - at, AD_EXTENT_FREE, 0) : 0;
}

int ad_extents_walk(const ad_extents_t *extents, ad_extents_walk_fn fn, void *ctx)
{
    const ad_extents_t *ex = extents;
    arena__avl_node_t *u = arena__avl_first(&ex->used_by_addr);
    arena__avl_node_t *f = arena__avl_first(&ex->free_by_addr);
    /* Used and free extents tile the heap: merge the two address orders. */
    while (u || f) {
        int r;
        if (u && (!f || USED_BY_ADDR(u)->offset < FREE_BY_ADDR(f)->offset)) {
            const used_extent_t *x = USED_BY_ADDR(u);
            r = fn(ctx, x->offset, x->length, AD_EXTENT_USED, x->owner);
            u = arena__avl_next(&ex->used_by_addr, u);
        } else {
            r = walk_free(ex, FREE_BY_ADDR(f), fn, ctx);
            f = arena__avl_next(&ex->free_by_addr, f);
        }
        if (r)
            return r;
    }
    return 0;
}
