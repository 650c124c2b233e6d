/* SPDX-License-Identifier: MIT
 *
 * segment.h -- the data structures of the allocator pools: segments, pages
 * (spans) and thread heaps, the address -> metadata map, and the atomic
 * helpers with their memory orders spelled out.
 *
 * A segment is a 4 MiB region (a lease, or anonymous memory in fallback mode)
 * mapped at a 4 MiB-aligned address and cut into 1024 slices of 4 KiB. Its
 * metadata (arena__segment_t) lives OUTSIDE the region, in anonymous memory,
 * because leased memory can be purged or returned: nothing the allocator
 * trusts is ever stored in memory a program can write. The only thing stored
 * in object memory is the free-list link of a free block.
 *
 * A span is a run of slices, described by the page record of its first slice:
 * FREE (in its heap's span bins), SMALL (a page of blocks of one size class)
 * or LARGE (one object). span_start[] maps every slice of a used span, and the
 * last slice of a free span, back to its first slice. Invariant: pages[i].kind
 * is not NONE exactly when slice i starts a span.
 *
 * Ownership: each segment has one owner heap (xowner), i.e. one thread. Only
 * the owner touches spans, page lists and the plain fields. Other threads only
 * push blocks onto a page's xthread_free (CAS, release) and set the page's bit
 * in xremote (fetch_or, release); the owner takes them with exchange
 * (acquire). A heap whose thread exits sets xowner of its segments to
 * &arena__heap_abandoned (release) and pushes them on the global abandoned
 * stack; a heap that adopts them stores itself into xowner and only then
 * collects. A free by thread T is a local free exactly when xowner == T's heap;
 * since only T ever stores that value, a relaxed load is enough to decide.
 */
#ifndef ARENA_CLIENT_SEGMENT_H
#define ARENA_CLIENT_SEGMENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pool.h"
#include "region.h"
#include "sizeclass.h"

#define ARENA__SLICE_SHIFT   12
#define ARENA__SLICE_SIZE    ((size_t)1 << ARENA__SLICE_SHIFT)
#define ARENA__SEG_SHIFT     22
#define ARENA__SEG_SLICES    (ARENA__SEGMENT_SIZE >> ARENA__SLICE_SHIFT) /* 1024 */
#define ARENA__SEG_WORDS     (ARENA__SEG_SLICES / 64)
#define ARENA__SPAN_BINS     11 /* by floor(log2(slices)): 1 .. 1024 */
#define ARENA__DECAY_MS      1000u
#define ARENA__PURGE_TICK_MS 100u

#if defined(__GNUC__)
#define ARENA__LIKELY(x)   __builtin_expect(!!(x), 1)
#define ARENA__UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define ARENA__LIKELY(x)   (x)
#define ARENA__UNLIKELY(x) (x)
#endif

typedef struct arena__block {
    struct arena__block *next;
} arena__block_t;

enum arena__page_kind {
    ARENA__PAGE_NONE = 0,
    ARENA__PAGE_FREE,
    ARENA__PAGE_SMALL,
    ARENA__PAGE_LARGE
};
enum arena__seg_kind { ARENA__SEG_SPANS = 1, ARENA__SEG_HUGE };

struct arena__segment;
struct arena__heap;

/* One span, described at its first slice. Owner-only except xthread_free. */
typedef struct arena__page {
    arena__block_t *free;                   /* blocks to allocate from (owner) */
    arena__block_t *local_free;             /* blocks freed by the owner (owner) */
    _Atomic(arena__block_t *) xthread_free; /* blocks freed by other threads (atomic) */
    struct arena__page *next, *prev;        /* class queue, full list or span bin */
    struct arena__segment *segment;
    uint8_t *start;       /* first byte of the span */
    uint32_t used;        /* blocks out (remote frees count until collected) */
    uint32_t capacity;    /* blocks carved so far */
    uint32_t reserved;    /* blocks that fit */
    uint32_t bsize;       /* SMALL: block size */
    uint32_t slice_count; /* span length */
    uint32_t free_ms;     /* FREE: when it became free (coarse clock) */
    uint8_t kind;         /* enum arena__page_kind */
    uint8_t cls;          /* SMALL: size class */
    uint8_t in_full;      /* SMALL: on the heap's full list */
    uint8_t dirty;        /* FREE: may hold pages not purged */
} arena__page_t;

/* What the map points to: the common head of segment and huge metadata. */
typedef struct arena__seghdr {
    uint8_t kind;   /* enum arena__seg_kind */
    uintptr_t base; /* region start */
    size_t size;    /* region bytes */
    arena__region_t region;
} arena__seghdr_t;

typedef struct arena__segment {
    arena__seghdr_t hdr;
    _Atomic(struct arena__heap *) xowner;       /* owner heap (atomic, see head) */
    struct arena__segment *next, *prev;         /* owner's segment list */
    struct arena__segment *abandoned_next;      /* abandoned stack link */
    uint32_t used_slices;                       /* slices in used spans (owner) */
    uint32_t zero_slices;                       /* slices known to read as zero (owner) */
    bool is_empty;                              /* counted as a kept empty segment */
    _Atomic uint64_t xremote[ARENA__SEG_WORDS]; /* pages with remote frees (atomic) */
    uint64_t zero[ARENA__SEG_WORDS];            /* slices known zero (owner) */
    uint16_t span_start[ARENA__SEG_SLICES];
    arena__page_t pages[ARENA__SEG_SLICES];
} arena__segment_t;

typedef struct arena__huge {
    arena__seghdr_t hdr;
    uintptr_t ptr; /* the object (hdr.base, or aligned inside) */
    struct arena__huge *next_free;
} arena__huge_t;

typedef struct arena__pqueue {
    arena__page_t *first, *last;
} arena__pqueue_t;

/* Sizes up to ARENA__DIRECT_MAX find their page in one load: heap->direct[
 * (size + 7) / 8] is the current page of the size's class (as in mimalloc's
 * pages_free_direct). Class boundaries are multiples of 8, so every size of a
 * slot has the same class. ARENA__DIRECT_MAX_CLASS is the class of
 * ARENA__DIRECT_MAX (1024 bytes: 1 + 8 + 3 doublings * 8 classes = 32). */
#define ARENA__DIRECT_MAX       ((size_t)1024)
#define ARENA__DIRECT_SLOTS     (ARENA__DIRECT_MAX / 8 + 1)
#define ARENA__DIRECT_MAX_CLASS 32u
#define ARENA__NO_BASE          UINTPTR_MAX

/* A thread heap. Owner thread only, except xlive (read by arena_stats). */
typedef struct arena__heap {
    /* The free fast path's cache: the last segment of this heap a free went
     * to, so a free into it skips the map (mask the pointer, compare). Set
     * only to a segment whose xowner is this heap; cleared by heap reset.
     * It may go stale (the segment released, its metadata recycled): the
     * free path checks xowner == this heap (arena__segment_release() stores
     * NULL) and only then, the metadata being ours, hdr.base == free_base,
     * so neither a segment that changed hands nor recycled metadata is ever
     * taken for the cached one. free_base is ARENA__NO_BASE (no 4 MiB-aligned
     * address, NULL's chunk neither) when empty. */
    uintptr_t free_base;
    struct arena__segment *free_seg;
    /* direct[] next: the malloc fast path reads one slot and nothing else
     * of the heap but xlive. Kept equal to current[] by arena__heap_set_current. */
    arena__page_t *direct[ARENA__DIRECT_SLOTS]; /* never NULL, like current[] */
    arena__page_t *current[ARENA__NCLASSES];    /* never NULL: &arena__page_empty when none */
    arena__pqueue_t queues[ARENA__NCLASSES];    /* pages of a class that may have room */
    arena__pqueue_t full;                       /* pages with no room */
    arena__pqueue_t bins[ARENA__SPAN_BINS];     /* free spans */
    arena__segment_t *segments;                 /* owned segments */
    uint32_t empty_segments;                    /* owned segments with nothing used */
    uint64_t last_purge_ms;
    uint64_t pressure_seen;         /* pressure epoch last acted on */
    _Atomic int64_t xlive;          /* live bytes (owner stores, relaxed; others load, relaxed) */
    struct arena__heap *all_next;   /* global list of heaps (never freed) */
    struct arena__heap *reuse_next; /* free heap structs */
} arena__heap_t;

extern arena__page_t arena__page_empty;
extern arena__heap_t arena__heap_abandoned; /* xowner of abandoned segments */

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

/* ---- atomic helpers: the order is in the name ------------------------------ */

#define ARENA__ATOMIC_LOAD_RELAXED(p)     atomic_load_explicit((p), memory_order_relaxed)
#define ARENA__ATOMIC_LOAD_ACQUIRE(p)     atomic_load_explicit((p), memory_order_acquire)
#define ARENA__ATOMIC_STORE_RELAXED(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define ARENA__ATOMIC_STORE_RELEASE(p, v) atomic_store_explicit((p), (v), memory_order_release)
#define ARENA__ATOMIC_EXCHANGE_ACQUIRE(p, v)                                                       \
    atomic_exchange_explicit((p), (v), memory_order_acquire)
#define ARENA__ATOMIC_CAS_WEAK_RELEASE(p, exp, des)                                                \
    atomic_compare_exchange_weak_explicit((p), (exp), (des), memory_order_release,                 \
                                          memory_order_relaxed)
#define ARENA__ATOMIC_OR_RELEASE(p, v) atomic_fetch_or_explicit((p), (v), memory_order_release)

/* Shared counter update (any thread; fetch_add relaxed: a statistic, no
 * ordering with anything else). */
static inline void arena__atomic_add_relaxed(_Atomic int64_t *c, int64_t v)
{
    (void)atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

/* Single-writer counter update: plain load and store, no lock prefix. */
static inline void arena__counter_add(_Atomic int64_t *c, int64_t v)
{
    ARENA__ATOMIC_STORE_RELAXED(c, ARENA__ATOMIC_LOAD_RELAXED(c) + v);
}

/* ---- the address map (segment.c) ------------------------------------------ */

#define ARENA__MAP_BITS    13
#define ARENA__MAP_ENTRIES ((size_t)1 << ARENA__MAP_BITS)
#define ARENA__ADDR_LIMIT  ((uintptr_t)1 << (ARENA__SEG_SHIFT + 2 * ARENA__MAP_BITS)) /* 2^48 */

typedef _Atomic(arena__seghdr_t *) arena__map_leaf_t[ARENA__MAP_ENTRIES];

/* Top level of the map: leaves published with a release CAS (segment.c). */
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

/* ---- segments and huge regions (segment.c) -------------------------------- */

/* A new empty segment owned by heap, all slices one free span (not yet in any
 * bin). Returns NULL with errno set (ENOMEM, or ENOMEM for "no daemon"). */
arena__segment_t *arena__segment_new(arena__heap_t *heap);

/* Gives the segment's region back (parked for reuse, or released when the
 * parking cache is full: arena__region_give_back()) and recycles its
 * metadata. Call only on an empty segment no heap lists any more. */
void arena__segment_release(arena__segment_t *seg);

/* A huge region of at least size bytes whose object is aligned to align.
 * Returns NULL with errno set. */
arena__huge_t *arena__huge_new(size_t size, size_t align);
void arena__huge_release(arena__huge_t *huge);

/* Gives back (parks, see region.h) every empty segment of heap, the spare
 * included, that has been empty for ARENA__DECAY_MS at now_ms: the purge
 * tick's part (large.c; arena__heap_release_empty() in large.h gives back
 * the ones beyond a count). Owner only. Returns the bytes given back. */
size_t arena__heap_release_idle(arena__heap_t *heap, uint64_t now_ms);

/* Coarse monotonic clock in ms (vDSO, cheap). */
uint64_t arena__now_ms(void);

/* Pool-global counters (relaxed atomics), summed by arena_stats. */
extern _Atomic int64_t arena__stat_leased;
extern _Atomic int64_t arena__stat_leases;
extern _Atomic int64_t arena__stat_parked;
extern _Atomic int64_t arena__stat_purged;
extern _Atomic int64_t arena__stat_live_orphan; /* frees by threads with no heap */

/* Lock/unlock the metadata recycling lists (fork prepare/parent/child). */
void arena__segment_lock(void);
void arena__segment_unlock(void);

/* ---- region registry, fork support (region.c) ------------------------------ */

/* Replaces every shared region with a private copy at the same address; the
 * child's regions become anonymous. Called in the fork child only. */
void arena__region_atfork_child(void);
void arena__region_atfork_prepare(void);
void arena__region_atfork_parent(void);

/* True while the calling thread is inside arena__region_acquire() or
 * arena__region_release() (talking to the daemon): the trim hook must not
 * re-enter the pools then. */
bool arena__region_in_call(void);

#endif
