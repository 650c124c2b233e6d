/* SPDX-License-Identifier: MIT
 *
 * pool.h -- internal API of the client allocator pools (the malloc family).
 *
 * The pools carve small objects (size classes up to ARENA__SMALL_MAX) out of
 * pages inside 4 MiB segments, large objects out of page-granular spans in the
 * same segments, and give huge objects a region (lease) of their own. Every
 * function here is thread-safe and lock-free on its fast path; none of them
 * calls libc malloc (the preload library routes malloc here). Pointer-returning
 * functions return NULL and set errno (ENOMEM, EINVAL) on failure; they never
 * abort on bad sizes. Freeing a pointer the pools do not own is a caller bug
 * (arena__pool_owns() tells, cheaply, which pointers are ours).
 *
 * Users: client/malloc.c (public arena_malloc & co.), client/preload.c (the
 * malloc replacement), client/slab.c and client/bump.c (which take regions
 * through region.h and register nothing here).
 */
#ifndef ARENA_CLIENT_POOL_H
#define ARENA_CLIENT_POOL_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"

/* Largest size served from small-object pages; sizes above are large spans. */
#define ARENA__SMALL_MAX ((size_t)128 * 1024)
/* Largest size served from spans inside a segment; above: a region of its own. */
#define ARENA__LARGE_MAX ((size_t)2 * 1024 * 1024)
/* Segment size and alignment (a pointer finds its segment by masking). */
#define ARENA__SEGMENT_SIZE ((size_t)4 * 1024 * 1024)

/* What arena_malloc() does: size bytes aligned to 16 (8 for sizes <= 8);
 * size 0 gives a unique minimal allocation. NULL and errno ENOMEM when no
 * memory can be had (no daemon and no fallback, budget exhausted). */
void *arena__pool_malloc(size_t size);

/* What arena_calloc() does: count*size zeroed bytes; overflow gives NULL and
 * errno ENOMEM. Skips the memset when the memory is known to read as zero. */
void *arena__pool_calloc(size_t count, size_t size);

/* What arena_realloc() does: NULL ptr is arena__pool_malloc(size); size 0
 * frees ptr and returns NULL (glibc behaviour); otherwise resizes in place when
 * possible, else moves the first min(old, size) bytes. On failure returns NULL
 * with errno ENOMEM and ptr is untouched and still valid. */
void *arena__pool_realloc(void *ptr, size_t size);

/* Frees ptr (from any thread; NULL is a no-op). ptr must come from these pools. */
void arena__pool_free(void *ptr);

/* size bytes aligned to align. align must be a power of two (else NULL and
 * errno EINVAL); any power of two works, including ones above the segment size.
 * size 0 gives a unique minimal allocation. */
void *arena__pool_aligned(size_t align, size_t size);

/* Bytes usable at ptr (>= the size asked for); 0 for NULL or a pointer the
 * pools do not own. */
size_t arena__pool_usable_size(const void *ptr);

/* True when ptr points into memory of these pools (a segment or a huge
 * region). Lock-free, two loads; safe on any pointer value, including NULL. */
bool arena__pool_owns(const void *ptr);

/* What arena_trim() does: purges every free page run the calling thread can
 * reach (its own heap and abandoned heaps) and gives back every empty segment,
 * the spare too, purged; segments parked earlier with their pages are purged
 * as well. Given back means PARKED (region.h): the lease stays the
 * process's until the daemon takes it, which it may do at any moment without
 * our help, and a later malloc reuses it with a CAS and an mprotect. The
 * parking cache itself is kept (a trim is a hint from the program, not a
 * shortage). Returns the bytes given back (purged or parked), >= 0.
 *
 * Pressure from the daemon (the trim hook, or the next slow path of a heap
 * after one) does the same and then also RELEASES the parking cache: the
 * daemon asked for memory now, and a release hands it over at once instead
 * of waiting for the daemon's next look at parked leases. */
long long arena__pool_trim(void);

/* Publishes the process's live bytes (as arena_stats() reports them) in the
 * control region for arenactl (region.h). Slow paths only: it sums every
 * heap under the heap-list lock. Called by the purge tick, trim, and when a
 * segment is acquired or given back; never by malloc/free fast paths. */
void arena__pool_publish_live(void);

/* What arena_stats() does: sums the per-heap counters (relaxed reads; a
 * snapshot, not a consistent cut). Returns 0 or -EINVAL (NULL).
 * leased_bytes, lease_count: regions in use (segments, huge objects, and the
 * slab and bump arenas' regions; anonymous fallback regions count too).
 * Parked regions are not in use: the daemon still lists them as our leases
 * (PARKED) until it takes them, but they count only in parked_bytes.
 * live_bytes: usable bytes of live allocations of the malloc family.
 * parked_bytes: empty memory kept for reuse: the heaps' spare empty segments
 * (in use, at most one per heap) plus the parked regions of the cache.
 * purged_bytes: bytes inside held segments known to hold no pages (purged
 * after the decay time, or never touched since the lease was granted). */
int arena__pool_stats(arena_stats_t *ret_stats);

/* fork(2) support. The pools register these with pthread_atfork() on first
 * use (arena__pool_init()), so callers need not call them; calling them from
 * another atfork handler as well is harmless (a per-thread depth makes the
 * inner calls no-ops), and arena__pool_atfork_child() alone, without prepare,
 * only does the copying.
 * prepare/parent take and drop the pools' slow-path locks (heap list,
 * metadata lists, region registry) so the child finds them consistent.
 * child: every region acquired through region.h (segments, huge objects, and
 * the slab and bump arenas' regions too) that is shared memory is replaced by
 * a private anonymous copy at the same address (mmap + memcpy + mremap
 * MREMAP_FIXED), so parent and child no longer see each other's writes; the
 * copies are anonymous memory (the leases stay the parent's). Later regions
 * in the child come through a connection of its own, never the parent's.
 * Heaps of threads that did not survive the fork are left as they are:
 * objects they own can still be freed from the child (the frees are queued
 * and never collected), so they leak in the child but corrupt nothing. */
void arena__pool_atfork_prepare(void);
void arena__pool_atfork_parent(void);
void arena__pool_atfork_child(void);

/* Expensive validator for tests: walks the calling thread's heap (every
 * segment's spans, page free lists, bins and queues) and checks the
 * invariants of segment.h. True when all hold (or the thread has no heap). */
bool arena__pool_is_valid(void);

/* Makes sure the pools are initialised (atfork handlers registered, TLS key
 * made). Idempotent and thread-safe; every entry point above calls it lazily,
 * the preload library may call it early from a constructor. */
void arena__pool_init(void);

#endif
