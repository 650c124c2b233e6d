/* SPDX-License-Identifier: MIT
 *
 * heapmap.h -- the picture of pool heaps behind `arenactl map`: every pool's
 * extents in address order (leased by whom, parked, dirty, free), with exact
 * byte figures, merged down to a cap so the reply fits in one frame.
 */
#ifndef AD_HEAPMAP_H
#define AD_HEAPMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lease.h"
#include "wire.h"

/* Maps every pool (all) or the pools of uid, with at most max_extents
 * extents over all of them (at least one per pool: pools beyond max_extents
 * are left out and counted in pools_omitted). Returns 0 and *ret_map (free
 * with ad_heapmap_clear()), or -ENOENT (no pool of uid; with all, an empty
 * map is 0), -EINVAL (max_extents 0), -ENOMEM. */
int ad_heapmap_build(const ad_leases_t *leases, bool all, uid_t uid, size_t max_extents,
                     ad_wire_map_t *ret_map);

/* Frees what a map holds and empties it; NULL-safe. */
void ad_heapmap_clear(ad_wire_map_t *map);

/* Merges the count extents of items (tiling one range in address order) down
 * to at most cap (>= 1): first neighbours of the same state and client; if
 * that is not enough, the range is cut into equal cells (a multiple of
 * granule, a power of two; 0 counts as 1) that each keep the state and
 * client holding most of their bytes, and equal neighbours merge again.
 * spare has room for cap items. The result is in items; returns its count
 * (count itself when it was not above cap). */
size_t ad_heapmap_coalesce(ad_wire_map_extent_t *items, size_t count, size_t cap, uint64_t granule,
                           ad_wire_map_extent_t *spare);

#endif
