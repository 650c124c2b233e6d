/* SPDX-License-Identifier: MIT
 *
 * region.h -- where the pools, slabs and bump arenas get their memory.
 *
 * A region is one lease from the daemon (through the default connection),
 * mapped at an address aligned as asked; when no daemon answers and the
 * process allows it (ARENA_FALLBACK=1, or the preload library, unless
 * ARENA_REQUIRE_DAEMON=1), it is anonymous memory instead. Thread-safe. Never
 * calls malloc (see conn.h).
 *
 * Regions of one segment (ARENA__SEGMENT_SIZE) that the pools give back are
 * parked rather than released (arena__region_give_back()) and kept in a
 * bounded process-wide cache that arena__region_acquire() serves first; the
 * daemon may take a parked region back at any moment (region.c explains).
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
 * address aligned to align (a power of two >= the page size). A request of
 * ARENA__SEGMENT_SIZE bytes is served first from the parking cache (an
 * unpark: no daemon call; zeroed is then false). Returns 0 and *ret_region,
 * or -ENOMEM, ARENA_ENODAEMON (no daemon and no fallback), or another
 * arena_lease() error. */
int arena__region_acquire(size_t size, size_t align, arena__region_t *ret_region);

/* Gives a region back (lease released, or anonymous memory unmapped).
 * Returns 0 or a negative code; the mapping is gone either way. */
int arena__region_release(const arena__region_t *region);

/* Gives a region back for reuse: a lease of exactly ARENA__SEGMENT_SIZE
 * bytes is parked (PROT_NONE, the daemon may take it) and cached, so a later
 * arena__region_acquire() of that size unparks it (a CAS and an mprotect, no
 * round trip; the region then says zeroed = false). region->zeroed says here
 * that the caller purged all of it (no pages to give back later); otherwise
 * arena__region_park_purge() purges it once parked for the decay time, or on
 * a trim. Anything else (other
 * sizes, anonymous memory, no control region, the cache full) is released as
 * by arena__region_release(). Call only when nothing in the region is live.
 * Returns 0 or a negative code; either way the caller no longer owns it.
 * Example (segment.c): arena__region_give_back(&seg->hdr.region); */
int arena__region_give_back(const arena__region_t *region);

/* Releases every parked region of the cache (the pressure hook: the daemon
 * wants memory now, not when it next looks for parked leases). Returns the
 * bytes released (entries the daemon had taken already count as given). */
long long arena__region_park_release(void);

/* Purges the pages of parked regions that may still hold some: those
 * parked for ARENA__DECAY_MS at now_ms, or all when force (arena_trim). Each
 * is unparked, purged (MADV_REMOVE) and parked again: a parked mapping
 * cannot be purged. Entries found taken are dropped. Returns the bytes
 * purged. Cheap (one relaxed load) when no entry is dirty. */
size_t arena__region_park_purge(bool force, uint64_t now_ms);

typedef struct arena__region_park_info {
    uint64_t bytes; /* parked regions in the cache (some may be taken already) */
    uint32_t count;
    uint32_t dirty; /* entries that may still hold pages */
    uint64_t hits;  /* acquires served by an unpark */
    uint64_t lost;  /* cache entries found taken by the daemon (or released) */
} arena__region_park_info_t;

/* The cache's figures (for arena_stats and tests). NULL is ignored. */
void arena__region_park_info(arena__region_park_info_t *ret_info);

/* Bytes in the parking cache (relaxed read, no lock). */
uint64_t arena__region_parked_bytes(void);

/* Publishes the process's live bytes in the default connection's control
 * region (arena__conn_publish_live: one relaxed store, never connects);
 * nothing in a fork child, whose default connection is still the parent's. */
void arena__region_publish_live(uint64_t live_bytes);

/* Lets anonymous fallback memory be used when no daemon answers (the
 * preload library calls this at start; ARENA_REQUIRE_DAEMON=1 overrides). */
void arena__region_allow_fallback(bool allow);

#endif
