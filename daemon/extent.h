/* SPDX-License-Identifier: MIT
 *
 * extent.h -- free space of one pool heap: placement, split, merge, dirty pages.
 *
 * Pure bookkeeping over [0, size): no system calls of its own. Returning pages
 * to the kernel goes through the punch callback, so tests can observe it and
 * heap.c can hand it to fallocate(). Times are passed in (milliseconds on any
 * monotonic clock), so decay is deterministic under test. Loop thread only.
 */
#ifndef AD_EXTENT_H
#define AD_EXTENT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct ad_extents ad_extents_t;

/* Returns pages [offset, offset + length) to the kernel: 0 or -errno. */
typedef int (*ad_punch_fn)(void *ctx, uint64_t offset, uint64_t length);

/* Where a lease goes. Both carve small leases (length <= small_limit) from
 * the top end of the chosen extent and large ones from its bottom end. */
typedef enum ad_placement {
    /* Small leases take the highest-addressed extent that fits, large ones the
     * lowest: small leases pack at the top of the heap, large ones at the
     * bottom, and neither fills the other's holes. The default. */
    AD_PLACE_SEGREGATED = 0,
    /* The smallest extent that fits, lowest address on ties. */
    AD_PLACE_BEST_FIT = 1,
} ad_placement_t;

typedef struct ad_extents_config {
    uint64_t size;        /* bytes managed; a non-zero multiple of granule */
    uint64_t granule;     /* power of two; every length and offset is a multiple */
    uint64_t small_limit; /* lengths up to this are carved from the top */
    uint64_t decay_ms;    /* released pages stay dirty this long; 0: punch at release */
    ad_placement_t placement;
    /* When the place the policy picks holds another owner's dirty pages
     * (which would have to be punched first, in the caller's time), take
     * clean space instead if a short search finds some, in the policy's own
     * order of extents (see ad_extents_alloc()). Off: placement is exactly
     * the policy's. */
    bool prefer_clean;
    ad_punch_fn punch; /* NULL: pages are only accounted, never punched */
    void *punch_ctx;
} ad_extents_config_t;

typedef struct ad_extent {
    uint64_t offset;
    uint64_t length;
    bool zeroed; /* every page reads as zero (none is dirty from the same owner) */
} ad_extent_t;

typedef struct ad_extents_stats {
    uint64_t size;
    uint64_t leased_bytes;
    uint64_t leased_extents;
    uint64_t free_bytes;
    uint64_t free_extents;
    uint64_t largest_free;
    uint64_t dirty_bytes;  /* free but not yet punched */
    uint64_t urgent_bytes; /* of dirty_bytes, released urgent: punched at the next purge */
    uint64_t dirty_ranges;
    uint64_t punched_bytes_total;
    double fragmentation; /* 1 - largest_free / free_bytes; 0 when nothing is free */
} ad_extents_stats_t;

/* Creates the free space of an empty heap: one free extent [0, size).
 * Returns 0, or -EINVAL for a bad config, -ENOMEM. */
int ad_extents_new(const ad_extents_config_t *config, ad_extents_t **ret_extents);

/* Frees everything; NULL-safe. Punches nothing. */
void ad_extents_free(ad_extents_t *extents);

/* Carves `length` bytes for `owner` (any id; 0 is allowed), placed as the
 * config's placement says (see ad_placement_t). Dirty pages of other owners inside
 * the extent are punched first; dirty pages of the same owner are reused as
 * they are and make ret_extent->zeroed false. With prefer_clean, a place
 * holding other owners' dirty pages is traded for the first place without
 * any, trying free extents in the policy's order (highest or lowest address,
 * or smallest size) and, inside one, the top (small) or bottom (large) of its
 * gaps, for at most 64 extents and dirty ranges; only when that finds nothing
 * does the allocation punch.
 * Returns 0, or -EINVAL (0 or unaligned length), -E2BIG (larger than the heap),
 * -ENOMEM (no free extent is large enough, or out of memory), or the punch
 * callback's error. On failure nothing changes. */
int ad_extents_alloc(ad_extents_t *extents, uint64_t length, uint64_t owner, uint64_t now_ms,
                     ad_extent_t *ret_extent);

/* Gives back the allocated extent that starts at offset with exactly this
 * length, merging it with free neighbours on both sides. Its pages become
 * dirty for decay_ms (or are punched now when punch_now or decay_ms is 0).
 * Returns 0, or -EINVAL (unaligned, zero or out of the heap), -ERANGE (an
 * allocated extent starts at offset but has another length), -EALREADY (the
 * range is already entirely free: a double release), -ENOENT (not an allocated
 * extent, e.g. overlapping one), -ENOMEM. On failure nothing changes. */
int ad_extents_release(ad_extents_t *extents, uint64_t offset, uint64_t length, uint64_t now_ms,
                       bool punch_now);

/* Like ad_extents_release(), but the pages are neither punched now nor left
 * to decay: they are due at once, for ad_extents_purge_urgent() (or a forced
 * ad_extents_purge()) to punch soon after. For an extent that changes owner
 * when the caller must answer first and punch later (a reclaimed lease): until
 * punched, an allocation for another owner still punches whatever it lands
 * on, so no owner ever sees another's pages. Same returns as
 * ad_extents_release(). */
int ad_extents_release_urgent(ad_extents_t *extents, uint64_t offset, uint64_t length,
                              uint64_t now_ms);

/* Marks [offset, offset + length) allocated to owner, e.g. when a restarted
 * daemon adopts a lease a client re-registers. The range must be entirely free.
 * Returns 0, or -EINVAL (unaligned/out of range), -EBUSY (not entirely free),
 * -ENOMEM. Adopted pages are not known to be zero. */
int ad_extents_claim(ad_extents_t *extents, uint64_t offset, uint64_t length, uint64_t owner);

/* Punches dirty ranges released at or before now_ms - decay_ms, or all of them
 * (urgent ones first) when force, up to max_bytes (0: no limit; whole decayed
 * ranges, so it may go over). Without force, urgent ranges are left to
 * ad_extents_purge_urgent(). Returns the bytes punched. A failing punch
 * leaves its range dirty. */
uint64_t ad_extents_purge(ad_extents_t *extents, uint64_t now_ms, bool force, uint64_t max_bytes);

/* Punches ranges released urgent, oldest first, up to max_bytes (0: all;
 * rounded up to the granule), cutting a range when it is larger than what is
 * left: a caller bounds the time one call takes. When it stops at max_bytes
 * with some left, the next slice is due at now_ms + 1. A failing punch leaves
 * its range urgent, due again at now_ms. Returns the bytes punched. */
uint64_t ad_extents_purge_urgent(ad_extents_t *extents, uint64_t now_ms, uint64_t max_bytes);

/* When the next punch is due: the oldest decaying range's stamp + decay_ms,
 * or an urgent range's (see ad_extents_purge_urgent()), whichever is first;
 * UINT64_MAX when nothing is dirty. */
uint64_t ad_extents_next_purge_ms(const ad_extents_t *extents);

/* Changes the decay delay (reload); already dirty ranges keep their stamps. */
void ad_extents_set_decay(ad_extents_t *extents, uint64_t decay_ms);

/* The owner of the allocated extent starting at offset: 0 and *ret_owner, or -ENOENT. */
int ad_extents_owner(const ad_extents_t *extents, uint64_t offset, uint64_t *ret_owner);

void ad_extents_stats(const ad_extents_t *extents, ad_extents_stats_t *ret_stats);

/* Expensive validator for tests: both free indexes, the allocated index and the
 * dirty overlay agree, extents tile [0, size) without overlap, no two free
 * extents touch, counters match. Returns true when valid. O(n). */
bool ad_extents_is_valid(const ad_extents_t *extents);

/* What one piece of the heap is, for ad_extents_walk(). */
typedef enum ad_extent_kind {
    AD_EXTENT_USED = 1,  /* an allocated extent; owner is its owner */
    AD_EXTENT_FREE = 2,  /* free, nothing to punch */
    AD_EXTENT_DIRTY = 3, /* free, holding owner's released pages until their punch */
} ad_extent_kind_t;

typedef int (*ad_extents_walk_fn)(void *ctx, uint64_t offset, uint64_t length,
                                  ad_extent_kind_t kind, uint64_t owner);

/* Calls fn for the pieces that tile [0, size) in address order: every
 * allocated extent, and every free extent cut where the dirty overlay starts
 * and ends (a dirty range per release, so two touching dirty pieces may have
 * different owners). Stops when fn returns non-zero and returns that; 0 after
 * the last piece. The callback must not change the extents. */
int ad_extents_walk(const ad_extents_t *extents, ad_extents_walk_fn fn, void *ctx);

#endif
