/* SPDX-License-Identifier: MIT
 *
 * heap.h -- one pool heap: a sealed, sparse memfd and its free space.
 *
 * A pool's memory is one memfd of heap_size bytes of address space, sealed
 * against shrinking and growing so no client holding the fd can truncate it
 * under the others. Leases are extents of it (see extent.h); released pages go
 * back to the kernel with fallocate(PUNCH_HOLE | KEEP_SIZE). Loop thread only.
 */
#ifndef AD_HEAP_H
#define AD_HEAP_H

#include <stdbool.h>
#include <stdint.h>

#include "extent.h"

typedef struct ad_heap ad_heap_t;

typedef struct ad_heap_config {
    uint64_t size;        /* bytes of address space; rounded up to the granule */
    uint64_t small_limit; /* leases up to this size are placed from the top */
    uint64_t decay_ms;    /* delay before released pages are punched; 0: at once */
    bool hugetlb;         /* MFD_HUGETLB; granule becomes the default huge page size */
    const char *name;     /* memfd name, shown in /proc/PID/maps; NULL: "arenad-pool" */
} ad_heap_config_t;

typedef struct ad_heap_stats {
    ad_extents_stats_t extents;
    uint64_t resident_bytes; /* pages the memfd really holds (st_blocks * 512) */
} ad_heap_stats_t;

/* Creates the memfd (MFD_CLOEXEC | MFD_ALLOW_SEALING [| MFD_HUGETLB]), sizes
 * it and seals it F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL.
 * Returns 0, or -EINVAL (size 0), -errno from memfd_create/ftruncate/fcntl. */
int ad_heap_new(const ad_heap_config_t *config, ad_heap_t **ret_heap);

/* Takes over the memfd of a pool another arenad made (a client hands it back
 * after a restart, or the service manager's fd store does; the caller checks
 * whose it is): fd must be a regular file sealed as ad_heap_new() seals (on hugetlbfs when
 * config->hugetlb), its size a multiple of the granule; config->size is not used (the file's size
 * is the heap's). Every byte starts FREE in the bookkeeping while the pages keep their contents:
 * the caller claims what is in use and punches the rest before granting it. fd is the heap's on
 * success only. Returns 0, or -EINVAL (not such a memfd), -EOPNOTSUPP, -ENOMEM, -errno. */
int ad_heap_adopt(const ad_heap_config_t *config, int fd, ad_heap_t **ret_heap);

/* Punches [offset, offset + length) now, whatever the bookkeeping says (for
 * adopted space nobody claimed). Returns 0, -EINVAL (out of range), -errno. */
int ad_heap_punch_range(ad_heap_t *heap, uint64_t offset, uint64_t length);

/* Closes the memfd and frees the bookkeeping; NULL-safe. Mappings that
 * clients hold stay valid (they keep the file alive). */
void ad_heap_free(ad_heap_t *heap);

/* The memfd (owned by the heap; dup it to keep it). */
int ad_heap_fd(const ad_heap_t *heap);
uint64_t ad_heap_size(const ad_heap_t *heap);
uint64_t ad_heap_granule(const ad_heap_t *heap);
bool ad_heap_is_hugetlb(const ad_heap_t *heap);

/* Rounds length up to the granule; 0 on overflow. */
uint64_t ad_heap_round(const ad_heap_t *heap, uint64_t length);

/* Places a lease of `length` bytes (a multiple of the granule) for owner; see
 * ad_extents_alloc() for placement, errors and ret_extent->zeroed. The heap
 * prefers clean space to another owner's dirty pages (prefer_clean), so a
 * grant rarely waits for a punch. On a
 * hugetlb heap the pages are reserved now (fallocate), so the lease never
 * raises SIGBUS for want of huge pages; -ENOMEM when they cannot be. */
int ad_heap_alloc(ad_heap_t *heap, uint64_t length, uint64_t owner, uint64_t now_ms,
                  ad_extent_t *ret_extent);

/* Releases an allocated extent; see ad_extents_release(). punch_now punches
 * at once (e.g. the owner is gone, or under pressure). */
int ad_heap_release(ad_heap_t *heap, uint64_t offset, uint64_t length, uint64_t now_ms,
                    bool punch_now);

/* Releases an extent that changes owner and must be punched, but after the
 * caller answered: see ad_extents_release_urgent(). On a hugetlb heap it
 * punches at once (reserved huge pages never stay dirty). */
int ad_heap_release_urgent(ad_heap_t *heap, uint64_t offset, uint64_t length, uint64_t now_ms);

/* See ad_extents_purge_urgent(). Returns bytes punched. */
uint64_t ad_heap_purge_urgent(ad_heap_t *heap, uint64_t now_ms, uint64_t max_bytes);

/* See ad_extents_claim(). */
int ad_heap_claim(ad_heap_t *heap, uint64_t offset, uint64_t length, uint64_t owner);

/* Punches due dirty ranges (all when force, up to max_bytes, 0: no limit).
 * Returns bytes punched. */
uint64_t ad_heap_purge(ad_heap_t *heap, uint64_t now_ms, bool force, uint64_t max_bytes);

/* When the next purge is due (UINT64_MAX: nothing dirty). */
uint64_t ad_heap_next_purge_ms(const ad_heap_t *heap);

void ad_heap_set_decay(ad_heap_t *heap, uint64_t decay_ms);

void ad_heap_stats(const ad_heap_t *heap, ad_heap_stats_t *ret_stats);

/* See ad_extents_walk(). */
int ad_heap_walk(const ad_heap_t *heap, ad_extents_walk_fn fn, void *ctx);

#endif
