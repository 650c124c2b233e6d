/* SPDX-License-Identifier: MIT
 *
 * alloc/internal.h -- every internal function of the allocator, grouped by the
 * file that defines it, bottom layer first.
 *
 * Calls run one way, downwards:
 *
 *     malloc.c, slab.c, bump.c     the public API (arena_malloc & co., slabs,
 *                                  bump arenas); preload.c sits beside them
 *     heap.c                       thread heaps: fast paths, abandonment and
 *                                  adoption, trim, stats, fork
 *     page.c                       small-object pages, remote frees
 *     span.c                       page-granular spans, decay purging
 *     segment.c                    segments, huge regions, the address map
 *     hugecache.c                  freed huge blocks kept resident for reuse
 *     region.c                     leases (or anonymous fallback), parking
 *     conn/include (conn.h, park.h) the connection library
 *
 * A file calls only into the files below it. The two places where a lower
 * layer needs the layer above are hooks, registered by heap.c when the
 * allocator initialises (arena__heap_init), declared with the lower file:
 * span.c asks the heap layer to refill before it leases a new segment
 * (arena__span_set_refill_hook), and segment.c reports every segment it adds
 * or gives back (arena__segment_set_count_hook) so that the heap layer
 * publishes the live bytes. A third one is registered by hugecache.c with
 * its first block: region.c's park purge and release (the heaps' purge
 * tick, trim and pressure) purge the kept huge blocks first
 * (arena__region_set_kept_hooks). The preload library gates the first
 * allocation of each thread (arena__preload_gate, heap.c). Types are in
 * alloc/types.h.
 *
 * Rule for everything here: no libc malloc (the preload library routes
 * malloc to these functions); pointer-returning functions return NULL and set
 * errno on failure; nothing aborts on bad input.
 */
#ifndef ARENA_ALLOC_INTERNAL_H
#define ARENA_ALLOC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "alloc/types.h"
#include "arena.h"

/* ---- primitives ------------------------------------------------------------ */

/* Coarse monotonic clock in ms (vDSO, cheap); decay and purge ticks. */
static inline uint64_t arena__now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- region.c: where segments, huge objects, slabs and bump arenas get their
 * memory. Thread-safe; leases through the default connection. ------------- */

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

/* Gives a region back for reuse: a lease (a segment, or a huge object's) is
 * parked (PROT_NONE, the daemon may take it) and cached, so a later
 * arena__region_acquire() of that size (a segment: exactly; anything else:
 * up to an eighth less) unparks it (a CAS and an mprotect, no round trip;
 * the region then says zeroed = false). A full cache first releases its
 * oldest entry. region->zeroed says here that the caller purged all of it
 * (no pages to give back later); otherwise arena__region_park_purge() purges
 * it once parked for the decay time, or on a trim, unless the daemon's
 * parked decay takes it first. Anything else (anonymous memory, no control
 * region, a region over half the cache) is released as by
 * arena__region_release(). Call only when nothing in the region is live.
 * Returns 0 or a negative code; either way the caller no longer owns it.
 * Example (segment.c): arena__region_give_back(&seg->hdr.region); */
int arena__region_give_back(const arena__region_t *region);

/* Moves a live region's mapping to new_addr, pages and all: no copy, no
 * page fault (mremap(MREMAP_FIXED), through the connection for a lease so
 * its table follows). [new_addr, new_addr + size) must be the caller's own
 * (a PROT_NONE reservation): whatever is there is replaced. On success
 * region->addr is new_addr. Returns 0, or a negative code with nothing
 * moved. Used to join huge blocks (hugecache.c). */
int arena__region_move(arena__region_t *region, void *new_addr);

/* Gives the pages of [addr, addr + len), inside a region of the given kind,
 * back to the kernel: MADV_REMOVE for lease memory (the memfd's pages are
 * freed), MADV_DONTNEED for private memory (anonymous fallback, or a lease
 * copied in a fork child, where MADV_REMOVE fails). The range then reads as
 * zero. Returns true when it was purged. Any thread; one or two calls. */
bool arena__region_purge(bool anonymous, void *addr, size_t len);

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

/* Replaces every shared region with a private copy at the same address; the
 * child's regions become anonymous. Called in the fork child only. */
void arena__region_atfork_child(void);

/* Upward hooks of the layer above that keeps freed regions mapped
 * (hugecache.c). purge(force, now_ms) gives back what has been kept for
 * ARENA__DECAY_MS at now_ms, or everything when force, and returns the
 * bytes; arena__region_park_purge() calls it with its own arguments (the
 * purge tick, the idle action: false; arena_trim: true), and
 * arena__region_park_release() (pressure) with force, before it releases
 * the parking cache. bytes() is what is kept; arena__region_parked_bytes()
 * adds it. Either may be NULL. Registered once, from any thread. */
typedef size_t (*arena__region_kept_purge_fn)(bool force, uint64_t now_ms);
typedef uint64_t (*arena__region_kept_bytes_fn)(void);
void arena__region_set_kept_hooks(arena__region_kept_purge_fn purge,
                                  arena__region_kept_bytes_fn bytes);

/* ---- hugecache.c: freed huge blocks kept mapped for reuse. Thread-safe. ---- */

/* A block of size bytes (a multiple of the page size) at an address aligned
 * to align, for a huge object: a kept block when one fits (the smallest of
 * size .. 4 * size; zeroed is then false, and it takes no system call and no
 * page fault); else the largest kept block smaller than size, joined with a
 * new region for the rest (only the rest is leased and faulted in); else
 * arena__region_acquire(). The kept blocks smaller than size not used are
 * given back first. Returns 0 and *ret_block, or what
 * arena__region_acquire() returns. */
int arena__hugecache_get(size_t size, size_t align, arena__hblock_t *ret_block);

/* Takes back a block from arena__hugecache_get() whose object was freed:
 * kept mapped and resident for reuse while it fits the cache's bound (see
 * hugecache.c), otherwise purged and given back (arena__region_give_back()).
 * The caller no longer owns it either way. NULL is ignored. */
void arena__hugecache_put(const arena__hblock_t *block);

/* The cache's figures (for tests). NULL is ignored. */
void arena__hugecache_info(arena__hugecache_info_t *ret_info);
void arena__region_atfork_prepare(void);
void arena__region_atfork_parent(void);

/* True while the calling thread is inside arena__region_acquire() or
 * arena__region_release() (talking to the daemon): the trim hook must not
 * re-enter the allocator then. */
bool arena__region_in_call(void);

/* ---- segment.c: segments, huge regions, the address map, the counters ---- */

/* Top level of the map: leaves published with a release CAS. */
extern _Atomic(arena__map_leaf_t *) arena__map_top[ARENA__MAP_ENTRIES];

/* Metadata of the 4 MiB chunk holding p, or NULL. Two dependent loads, both
 * acquire (a plain mov on x86): whoever finds a header sees it initialised. */
static inline arena__seghdr_t *arena__map_lookup(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    if (ARENA__UNLIKELY(a >= ARENA__ADDR_LIMIT)) {
        return NULL;
    }
    arena__map_leaf_t *leaf =
        ARENA__ATOMIC_LOAD_ACQUIRE(&arena__map_top[a >> (ARENA__SEG_SHIFT + ARENA__MAP_BITS)]);
    if (leaf == NULL) {
        return NULL;
    }
    return ARENA__ATOMIC_LOAD_ACQUIRE(&(*leaf)[(a >> ARENA__SEG_SHIFT) & (ARENA__MAP_ENTRIES - 1)]);
}

/* Points every 4 MiB chunk of [base, base+size) at hdr (NULL to clear).
 * Returns 0 or -ENOMEM (a leaf could not be mapped; nothing changed). */
int arena__map_set(uintptr_t base, size_t size, arena__seghdr_t *hdr);

/* A new empty segment owned by heap, all slices one free span (not yet in any
 * bin). Returns NULL with errno set (ENOMEM, or ENOMEM for "no daemon"). */
arena__segment_t *arena__segment_new(arena__heap_t *heap);

/* Gives the segment's region back (parked for reuse, or released when the
 * parking cache is full: arena__region_give_back()) and recycles its
 * metadata. Call only on an empty segment no heap lists any more. */
void arena__segment_release(arena__segment_t *seg);

/* A huge region of at least size bytes whose object is aligned to align:
 * a freed one kept resident when one fits (hugecache.c; hdr.region.zeroed
 * is then false), else a parked or new lease. Returns NULL with errno set. */
arena__huge_t *arena__huge_new(size_t size, size_t align);

/* Frees a huge region's object: the region goes to the huge-block cache
 * (kept resident for reuse, or purged and parked) and the metadata is
 * recycled. NULL is ignored. */
void arena__huge_release(arena__huge_t *huge);

/* Process-wide counters (relaxed atomics), summed by arena_stats. */
extern _Atomic int64_t arena__stat_leased;
extern _Atomic int64_t arena__stat_leases;
extern _Atomic int64_t arena__stat_parked;
extern _Atomic int64_t arena__stat_purged;
extern _Atomic int64_t arena__stat_live_orphan; /* frees by threads with no heap */

/* Lock/unlock the metadata recycling lists (fork prepare/parent/child). */
void arena__segment_lock(void);
void arena__segment_unlock(void);

/* Upward hook: called after a segment is added or given back (off the fast
 * paths), so the heap layer can publish the process's live bytes (heap.c
 * registers arena__heap_publish_live). NULL: nothing is called. */
typedef void (*arena__segment_count_hook_fn)(void);
void arena__segment_set_count_hook(arena__segment_count_hook_fn hook);

/* ---- span.c: page-granular spans inside segments. Owner thread only. ------ */

/* Takes a span of n slices (1 .. ARENA__SEG_SLICES) from heap's free spans,
 * asking the heap layer to refill (the refill hook below) or getting a new
 * segment when none fits. The
 * span's page record has kind `kind` and every slice maps back to it;
 * *ret_zero says whether all of it is known to read as zero. Returns NULL
 * with errno set when no memory can be had. */
arena__page_t *arena__span_alloc(arena__heap_t *heap, uint32_t n, uint8_t kind, bool *ret_zero);

/* Gives a used span back: it merges with free neighbours and goes into the
 * bins (dirty, stamped now). An emptied segment is counted in
 * heap->empty_segments; arena__heap_release_empty() gives them back. */
void arena__span_free(arena__heap_t *heap, arena__page_t *page);

/* Grows a used span in place into its free right neighbour to n slices, or
 * shrinks it to n slices (the tail becomes free). Returns true on success
 * (*ret_zero_tail: the added slices are known zero), false when it cannot. */
bool arena__span_resize(arena__heap_t *heap, arena__page_t *page, uint32_t n, bool *ret_zero_tail);

/* Purges free spans that have been free for the decay time (all when force).
 * Returns the bytes purged. */
size_t arena__heap_purge(arena__heap_t *heap, bool force, uint64_t now_ms);

/* Releases empty segments beyond `keep`. Returns the bytes released. */
size_t arena__heap_release_empty(arena__heap_t *heap, uint32_t keep);

/* Gives back every empty segment, the spare too. The one given back last,
 * which the next acquire unparks first (the cache is LIFO), is purged
 * first: a program that frees everything and then makes a few small
 * allocations (stdio, a log line) does not bring back a whole dirty
 * segment, and every other one keeps its pages for a hot reuse until the
 * daemon's parked decay takes it. Returns the bytes given back. */
size_t arena__heap_release_all(arena__heap_t *heap);

/* Gives back (parks, see region.c) every empty segment of heap, the spare
 * included, that has been empty for ARENA__DECAY_MS at now_ms: the purge
 * tick's part (arena__heap_release_empty() gives back
 * the ones beyond a count). Owner only. Returns the bytes given back. */
size_t arena__heap_release_idle(arena__heap_t *heap, uint64_t now_ms);

/* Puts a segment's free spans into heap's bins (used when adopting). */
void arena__span_bin_insert(arena__heap_t *heap, arena__page_t *page);

/* Queue helpers shared with page.c and heap.c. */
void arena__pqueue_push(arena__pqueue_t *q, arena__page_t *p);
void arena__pqueue_remove(arena__pqueue_t *q, arena__page_t *p);

/* Upward hook: called by arena__span_alloc() when no free span fits, before
 * it leases a new segment; attempt 0 asks the heap layer to collect remote
 * frees, attempt 1 to adopt abandoned segments. Returns how much it found
 * (pages with remote frees, segments adopted); after a non-zero answer the
 * bins are searched again. heap.c registers it in arena__heap_init(). */
typedef size_t (*arena__span_refill_fn)(arena__heap_t *heap, unsigned attempt);
void arena__span_set_refill_hook(arena__span_refill_fn hook);

/* ---- page.c: small-object pages. Owner thread of the heap, except
 * arena__page_free_remote(). ---------------------------------------------- */

/* The empty page: every current[] and direct[] slot of a heap that has no
 * page for a class points here (never NULL), so the fast path needs no test. */
extern arena__page_t arena__page_empty;

/* Makes page the current page of class cls (owner only; slow paths): the
 * only way current[] and direct[] are written, so the two always agree. */
static inline void arena__heap_set_current(arena__heap_t *heap, unsigned cls, arena__page_t *page)
{
    heap->current[cls] = page;
    if (cls <= ARENA__DIRECT_MAX_CLASS) {
        /* The slots of sizes in (class_size(cls - 1), class_size(cls)];
         * slot 0 (size 0) belongs to class 0 with slot 1. */
        size_t lo = cls == 0 ? 0 : (arena__class_size(cls - 1) >> 3) + 1;
        size_t hi = arena__class_size(cls) >> 3;
        for (size_t i = lo; i <= hi; i++) {
            heap->direct[i] = page;
        }
    }
}

/* Adds what page's allocations and local frees since it was last counted
 * changed to heap's live bytes (a SMALL page heap owns). */
static inline void arena__page_settle(arena__heap_t *heap, arena__page_t *page)
{
    int32_t delta = (int32_t)page->used - page->counted;
    if (delta != 0) {
        page->counted = (int32_t)page->used;
        arena__counter_add(&heap->xlive, (int64_t)delta * (int64_t)page->bsize);
    }
}

/* Settles every small page of heap (its class queues and full list), so
 * its xlive is exact. Owner only; a slow path (a walk of its pages). */
void arena__heap_settle(arena__heap_t *heap);

/* The slow path of a small allocation of class cls: finds or makes a page
 * with room, makes it current and pops a block. Returns NULL with errno set. */
void *arena__page_malloc_generic(arena__heap_t *heap, unsigned cls);

/* The owner's free after its block went back onto `free` made the page empty
 * or it was on the full list. */
void arena__page_free_slow(arena__heap_t *heap, arena__page_t *page);

/* A free from a thread that does not own the page's segment: lock-free push
 * onto xthread_free, then marks the page in its segment's xremote bitmap. */
void arena__page_free_remote(arena__segment_t *seg, arena__page_t *page, arena__block_t *block);

/* The owner takes the page's remote frees; frees the span of a page that ends
 * up with nothing used (unless it is its class's current page). Returns the
 * number of blocks collected. */
uint32_t arena__page_collect_remote(arena__heap_t *heap, arena__page_t *page);

/* Removes a small page from its heap's lists and frees its span. */
void arena__page_retire(arena__heap_t *heap, arena__page_t *page);

/* Collects remote frees in every segment of heap. Returns
 * the number of pages that had some. */
size_t arena__heap_collect_remote(arena__heap_t *heap);

/* ---- heap.c: thread heaps and the malloc family behind the public API ---- */

/* xowner of abandoned segments */

/* The preload library's start-up gate: a hook of the layer above, declared
 * here weak and defined only by libarena-preload (client/preload), so it is
 * NULL in every other build. A thread that has no heap yet calls it on the
 * allocation slow path, before it takes one (the fast path never: the empty
 * heap it starts on has no blocks, so its first call always comes here). It
 * returns true once the process may use the allocator (the first call starts
 * the process up; others wait for that); false on the thread doing the
 * start-up, whose request it serves itself: *ret_ptr, bootstrap memory, or
 * NULL with errno ENOMEM. The preload's malloc is then arena__heap_malloc()
 * with no test of its own. */
bool arena__preload_gate(size_t size, size_t align, void **ret_ptr) __attribute__((weak));

/* What arena_malloc() does: size bytes aligned to 16 (8 for sizes <= 8);
 * size 0 gives a unique minimal allocation. NULL and errno ENOMEM when no
 * memory can be had (no daemon and no fallback, budget exhausted). */
void *arena__heap_malloc(size_t size);

/* What arena_calloc() does: count*size zeroed bytes; overflow gives NULL and
 * errno ENOMEM. Skips the memset when the memory is known to read as zero. */
void *arena__heap_calloc(size_t count, size_t size);

/* What arena_realloc() does: NULL ptr is arena__heap_malloc(size); size 0
 * frees ptr and returns NULL (glibc behaviour); otherwise resizes in place when
 * possible, else moves the first min(old, size) bytes. On failure returns NULL
 * with errno ENOMEM and ptr is untouched and still valid. */
void *arena__heap_realloc(void *ptr, size_t size);

/* Frees ptr (from any thread; NULL is a no-op). ptr must come from this allocator. */
void arena__heap_free(void *ptr);

/* size bytes aligned to align. align must be a power of two (else NULL and
 * errno EINVAL); any power of two works, including ones above the segment size.
 * size 0 gives a unique minimal allocation. */
void *arena__heap_aligned(size_t align, size_t size);

/* Bytes usable at ptr (>= the size asked for); 0 for NULL or a pointer the
 * allocator does not own. */
size_t arena__heap_usable_size(const void *ptr);

/* True when ptr points into memory of this allocator (a segment or a huge
 * region). Lock-free, two loads; safe on any pointer value, including NULL. */
bool arena__heap_owns(const void *ptr);

/* What arena_trim() does: purges every free page run the calling thread can
 * reach (its own heap and abandoned heaps) and gives back every empty segment,
 * the spare too, purged; segments parked earlier with their pages are purged
 * as well. Given back means PARKED (region.c): the lease stays the
 * process's until the daemon takes it, which it may do at any moment without
 * our help, and a later malloc reuses it with a CAS and an mprotect. The
 * parking cache itself is kept (a trim is a hint from the program, not a
 * shortage). Returns the bytes given back (purged or parked), >= 0.
 *
 * Pressure from the daemon (the trim hook, or the next slow path of a heap
 * after one) does the same and then also RELEASES the parking cache: the
 * daemon asked for memory now, and a release hands it over at once instead
 * of waiting for the daemon's next look at parked leases. */
long long arena__heap_trim(void);

/* Publishes the process's live bytes (as arena_stats() reports them) in the
 * control region for arenactl (arena__region_publish_live). Slow paths only: it sums every
 * heap under the heap-list lock. Called by the purge tick, trim, and when a
 * segment is acquired or given back; never by malloc/free fast paths. */
void arena__heap_publish_live(void);

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
int arena__heap_stats(arena_stats_t *ret_stats);

/* fork(2) support. The heap layer registers these with pthread_atfork() on first
 * use (arena__heap_init()), so callers need not call them; calling them from
 * another atfork handler as well is harmless (a per-thread depth makes the
 * inner calls no-ops), and arena__heap_atfork_child() alone, without prepare,
 * only does the copying.
 * prepare/parent take and drop the allocator's slow-path locks (heap list,
 * metadata lists, region registry) so the child finds them consistent.
 * child: every region acquired through region.c (segments, huge objects, and
 * the slab and bump arenas' regions too) that is shared memory is replaced by
 * a private anonymous copy at the same address (mmap + memcpy + mremap
 * MREMAP_FIXED), so parent and child no longer see each other's writes; the
 * copies are anonymous memory (the leases stay the parent's). Later regions
 * in the child come through a connection of its own, never the parent's.
 * Heaps of threads that did not survive the fork are left as they are:
 * objects they own can still be freed from the child (the frees are queued
 * and never collected), so they leak in the child but corrupt nothing. */
void arena__heap_atfork_prepare(void);
void arena__heap_atfork_parent(void);
void arena__heap_atfork_child(void);

/* Expensive validator for tests: walks the calling thread's heap (every
 * segment's spans, page free lists, bins and queues) and checks the
 * invariants of alloc/types.h. True when all hold (or the thread has no heap). */
bool arena__heap_is_valid(void);

/* Makes sure the allocator is initialised (atfork handlers and the upward
 * hooks registered, TLS key made). Idempotent and thread-safe; every entry point above calls it
 * lazily, the preload library may call it early from a constructor. */
void arena__heap_init(void);

/* ---- slab.c: typed slabs -------------------------------------------------- */

/* Fills *ret_info with a snapshot of slab's geometry and chunks. */
void arena__slab_info(arena_slab_t *slab, arena__slab_info_t *ret_info);

/* Expensive validator for tests: every slot on the calling thread's cache and
 * on the shared stack lies on a slot boundary inside one of slab's chunks, and
 * no list is longer than the slab's capacity (no cycles). Call only while no
 * other thread uses slab. */
bool arena__slab_is_valid(arena_slab_t *slab);

/* The calling thread's slab cache index (claimed on first use), or
 * ARENA__SLAB_MAX_THREADS when the thread uses the shared overflow cache. */
unsigned arena__slab_thread_index(void);

/* ---- bump.c: bump arenas -------------------------------------------------- */

/* Fills *ret_info with a snapshot of bump's chunks. */
void arena__bump_info(const arena_bump_t *bump, arena__bump_info_t *ret_info);

/* Validator for tests: the cursor lies inside the current chunk, every chunk
 * is at least chunk_size bytes, the current index is in range. */
bool arena__bump_is_valid(const arena_bump_t *bump);

#endif
