/* SPDX-License-Identifier: MIT
 *
 * region.h -- where the pools, slabs and bump arenas get their memory.
 *
 * A region is one lease from the daemon (through the default connection),
 * mapped at an address aligned as asked; when no daemon answers and the
 * process allows it (ARENA_FALLBACK=1, or the preload library, unless
 * ARENA_REQUIRE_DAEMON=1), it is anonymous memory instead. Thread-safe. Never
 * calls malloc (see conn.h).
 */
#ifndef ARENA_CLIENT_REGION_H
#define ARENA_CLIENT_REGION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct arena__region {
    void *addr;
    size_t size;
    uint64_t lease_id; /* 0 for anonymous fallback memory */
    bool zeroed;       /* pages known to read as zero */
    bool anonymous;    /* fallback memory, not a lease */
} arena__region_t;

/* Gets size bytes (a multiple of the page size) mapped read/write at an
 * address aligned to align (a power of two >= the page size). Returns 0 and
 * *ret_region, or -ENOMEM, ARENA_ENODAEMON (no daemon and no fallback), or
 * another arena_lease() error. */
int arena__region_acquire(size_t size, size_t align, arena__region_t *ret_region);

/* Gives a region back (lease released, or anonymous memory unmapped).
 * Returns 0 or a negative code; the mapping is gone either way. */
int arena__region_release(const arena__region_t *region);

/* Lets anonymous fallback memory be used when no daemon answers (the
 * preload library calls this at start; ARENA_REQUIRE_DAEMON=1 overrides). */
void arena__region_allow_fallback(bool allow);

#endif
