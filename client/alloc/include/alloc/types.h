/* SPDX-License-Identifier: MIT
 *
 * alloc/types.h -- the allocator's data structures: regions, segments, pages
 * (spans), thread heaps, the size classes, the address map's shape, and the
 * atomic helpers with their memory orders spelled out. Functions are in
 * alloc/internal.h, grouped by the file that defines them.
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
 * (acquire). A heap whose thread exits keeps its segments and waits, unbound
 * (xbound false), on the list of heaps to reuse; the next new thread binds it
 * and goes on with them (heap.c). Only when too many unbound heaps hold
 * segments does an exiting heap set xowner of its segments to the abandoned
 * heap (release) and push them on the global abandoned stack; a heap that
 * adopts them stores itself into xowner and only then collects. A free by
 * thread T is a local free exactly when xowner == T's heap; only the thread
 * bound to a heap (or the one holding it off the reuse list) ever stores that
 * heap there, and a heap changes hands only through the reuse list's mutex,
 * so a relaxed load is enough to decide.
 */
#ifndef ARENA_ALLOC_TYPES_H
#define ARENA_ALLOC_TYPES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"

/* Largest size served from small-object pages; sizes above are large spans. */
#define ARENA__SMALL_MAX ((size_t)128 * 1024)
/* Largest size served from spans inside a segment; above: a region of its own.
 * An eighth of a segment, so objects of one size waste at most 12.5% of the
 * segments they fill (four of 1 MiB + a header would not fit in 4 MiB; as
 * regions of their own, a page each at most). */
#define ARENA__LARGE_MAX ((size_t)512 * 1024)
/* Bytes of regions a process keeps parked for reuse at most (region.c). */
#define ARENA__PARK_CACHE_BYTES ((size_t)128 * 1024 * 1024)
/* Segment size and alignment (a pointer finds its segment by masking). */
#define ARENA__SEGMENT_SIZE ((size_t)4 * 1024 * 1024)

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

/* One region: a lease mapped here, or anonymous fallback memory (region.c). */
typedef struct arena__region {
    void *addr;
    size_t size;
    uint64_t lease_id; /* 0 for anonymous fallback memory */
    bool zeroed;       /* pages known to read as zero */
    bool anonymous;    /* fallback memory, not a lease */
} arena__region_t;

/* A huge block: one region, or up to ARENA__HUGE_PARTS regions mapped end to
 * end, when hugecache.c joined a kept block and a new tail into a larger
 * block (arena__region_move()). Each part stays a lease of its own:
 * registered, copied at fork and given back part by part. */
#define ARENA__HUGE_PARTS 8u
typedef struct arena__hblock {
    uint8_t *addr; /* the first part's start; the parts follow without gaps */
    size_t size;   /* the sum of the parts */
    bool zeroed;   /* every part reads as zero */
    uint32_t nparts;
    arena__region_t parts[ARENA__HUGE_PARTS];
} arena__hblock_t;

/* The parking cache's figures (region.c). */
typedef struct arena__region_park_info {
    uint64_t bytes; /* parked regions in the cache (some may be taken already) */
    uint32_t count;
    uint32_t dirty; /* entries that may still hold pages */
    uint64_t hits;  /* acquires served by an unpark */
    uint64_t lost;  /* cache entries found taken by the daemon (or released) */
} arena__region_park_info_t;

/* The huge-block cache's figures (hugecache.c). */
typedef struct arena__hugecache_info {
    uint64_t bytes;   /* freed huge blocks kept mapped and resident */
    uint32_t count;   /* how many */
    uint64_t live;    /* huge bytes handed out and not freed (the bound's base) */
    uint64_t hits;    /* huge requests served by a kept block */
    uint64_t misses;  /* huge requests that took a region (parked or leased) */
    uint64_t dropped; /* kept blocks purged and given back */
    uint64_t joined;  /* misses served by a kept block joined with a new tail */
} arena__hugecache_info_t;

/* ---- size classes -------------------------------------------------------- */

/*
 * Class 0 holds 8-byte objects; classes 1..8 step by 16 bytes up to 128 (16 is
 * the alignment malloc owes larger objects, so nothing finer helps); above 128
 * every power of two is cut into 8 classes, so a request of n bytes gets at
 * most n/8 extra: internal waste stays at or below 12.5% of the request (4
 * classes per doubling, as in jemalloc, would allow 25%). Every power of two is
 * a class, which the aligned allocator relies on: a block of class 2^k inside a
 * 64 KiB-aligned page is 2^k-aligned.
 *
 * The last class is ARENA__SMALL_MAX = 128 KiB. Why stop there: blocks up to
 * 8 KiB live in 64 KiB pages (at least 8 blocks per page), bigger ones in
 * 512 KiB pages (at least 4 blocks); above 128 KiB a page would hold fewer than
 * 4 objects and a page-granular span (4 KiB steps, <= 3% waste) is as tight and
 * gives the memory back as soon as the object dies.
 */
#define ARENA__NCLASSES 89 /* 1 + 8 + 10 doublings (128 .. 128 KiB) * 8 */

/* Class index of a size in 0 .. ARENA__SMALL_MAX. */
static inline unsigned arena__size_class(size_t size)
{
    if (size <= 128) {
        return size <= 8 ? 0u : (unsigned)((size + 15) >> 4);
    }
    size_t s = size - 1;
    unsigned k = 63u - (unsigned)__builtin_clzll((unsigned long long)s); /* 2^k <= s */
    unsigned w = (unsigned)(s >> (k - 3));                               /* 8 .. 15 */
    return 9u + (k - 7u) * 8u + (w - 8u);
}

/* Block size of a class. */
static inline size_t arena__class_size(unsigned cls)
{
    if (cls <= 8) {
        return cls == 0 ? 8u : (size_t)cls << 4;
    }
    unsigned k = 7u + (cls - 9u) / 8u;
    unsigned w = 8u + (cls - 9u) % 8u;
    return (size_t)(w + 1u) << (k - 3u);
}

/* ---- segments, pages, heaps ---------------------------------------------- */

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
    arena__block_t *free;                   /* free blocks, popped and pushed by the owner */
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
    int32_t counted;      /* SMALL: `used` as last added to a heap's xlive (page.c) */
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
    _Atomic(struct arena__heap *) xowner;  /* owner heap (atomic, see head) */
    struct arena__segment *next, *prev;    /* owner's segment list */
    struct arena__segment *abandoned_next; /* abandoned stack link */
    uint32_t used_slices;                  /* slices in used spans (owner) */
    uint32_t zero_slices;                  /* slices known to read as zero (owner) */
    bool is_empty;                         /* counted as a kept empty segment */
    bool meta_tail_zero; /* recycled metadata: the pages after the first read zero */
    _Atomic uint64_t xremote[ARENA__SEG_WORDS]; /* pages with remote frees (atomic) */
    uint64_t zero[ARENA__SEG_WORDS];            /* slices known zero (owner) */
    uint16_t span_start[ARENA__SEG_SLICES];
    arena__page_t pages[ARENA__SEG_SLICES];
} arena__segment_t;

typedef struct arena__huge {
    arena__seghdr_t hdr; /* hdr.region: block.parts[0], as for a segment its region */
    arena__hblock_t block;
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
     * to, so a free into it skips the map (mask the pointer, compare).
     * Invariant: when free_base is not ARENA__NO_BASE, free_seg is a segment
     * this heap owns and free_base its base. It is set only to a segment
     * whose xowner is this heap, and a segment leaves a heap only by the
     * heap's own hand, which clears the cache first (span.c's give back,
     * heap.c's abandon); so the fast path needs no further check. free_base
     * is ARENA__NO_BASE (no 4 MiB-aligned address, NULL's chunk neither)
     * when empty, and always in the static empty heap. */
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
    uint32_t segment_count;                     /* owned segments */
    bool idle_armed;          /* grew past one segment since its last idle action (heap.c) */
    uint64_t last_idle_ms;    /* when it last took its idle action (heap.c) */
    uint32_t abandoned_frees; /* its frees into abandoned segments (heap.c) */
    uint64_t last_purge_ms;
    uint64_t pressure_seen; /* pressure epoch last acted on */
    /* Live bytes, as the owner last counted them (owner stores, relaxed;
     * others load, relaxed). Small blocks are not counted one by one: a
     * page's allocations and local frees move its `used` only, and the
     * difference to its `counted` is added here when the page changes state
     * or the heap settles (page.c). Large and huge blocks, and frees of other
     * heaps' blocks, are counted as they happen. */
    _Atomic int64_t xlive;
    _Atomic bool xbound;            /* a thread's heap now (stored under heaps_lock; a hint) */
    struct arena__heap *all_next;   /* global list of heaps (never freed) */
    struct arena__heap *reuse_next; /* free heap structs */
} arena__heap_t;

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

/* ---- the address map's shape (segment.c keeps it) ------------------------- */

#define ARENA__MAP_BITS    13
#define ARENA__MAP_ENTRIES ((size_t)1 << ARENA__MAP_BITS)
#define ARENA__ADDR_LIMIT  ((uintptr_t)1 << (ARENA__SEG_SHIFT + 2 * ARENA__MAP_BITS)) /* 2^48 */

typedef _Atomic(arena__seghdr_t *) arena__map_leaf_t[ARENA__MAP_ENTRIES];

/* ---- slabs and bump arenas (slab.c, bump.c) ------------------------------ */

/* Threads with a private cache in every slab; further threads share one
 * overflow cache under a mutex. A multiple of 64. */
#define ARENA__SLAB_MAX_THREADS 512
/* Largest object arena_slab_create() accepts (larger ones: -EINVAL). */
#define ARENA__SLAB_MAX_OBJECT ((size_t)16 * 1024 * 1024)

typedef struct arena__slab_info {
    size_t stride;      /* bytes between slots */
    size_t align;       /* alignment of every slot */
    size_t chunk_count; /* regions held */
    size_t chunk_bytes; /* bytes of those regions */
} arena__slab_info_t;

/* Largest chunk_size arena_bump_create() accepts (larger: -EINVAL). */
#define ARENA__BUMP_MAX_CHUNK ((size_t)1 << 40)
/* Largest alignment arena_bump_alloc() accepts (larger: NULL, EINVAL). */
#define ARENA__BUMP_MAX_ALIGN ((size_t)1 << 30)
/* Largest object arena_bump_alloc() tries (larger: NULL, ENOMEM). */
#define ARENA__BUMP_MAX_OBJECT ((size_t)1 << 46)

typedef struct arena__bump_info {
    size_t chunk_size;      /* bytes per chunk (rounded up to pages) */
    size_t chunk_count;     /* chunks held, used or kept for reuse */
    size_t large_count;     /* regions held by single large objects */
    size_t current;         /* index of the chunk being bumped */
    size_t held_bytes;      /* bytes of all regions held */
    size_t used_in_current; /* bytes from the current chunk's start to the cursor */
} arena__bump_info_t;

#endif
