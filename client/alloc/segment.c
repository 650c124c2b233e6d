/* SPDX-License-Identifier: MIT
 *
 * segment.c -- segments, huge regions and the address -> metadata map.
 *
 * The map answers "which segment holds this pointer" with two loads: a static
 * top level of 2^13 leaf pointers indexed by address bits 35..47, and leaves
 * of 2^13 metadata pointers indexed by bits 22..34, mapped lazily. Leaves are
 * published with a release CAS and read with acquire loads (a plain mov on
 * x86); entries are stored with release and read with acquire, so a thread
 * that finds a header also sees it initialised. Leaves are never unmapped, so
 * a lookup is safe on any pointer value, which is what arena__heap_owns()
 * needs.
 *
 * Metadata blocks (about 70 KiB per 4 MiB segment, one page per huge region)
 * are anonymous memory, never leased memory. They are recycled through two
 * free lists under a mutex rather than unmapped: only the slow paths (getting
 * or giving back a region) take it, and a late, buggy lookup through a stale
 * entry then reads stale metadata instead of faulting.
 *
 * A huge block (one region, or a few joined end to end) comes from, and
 * goes back to, the huge-block cache (hugecache.c), which keeps freed
 * blocks resident for a while.
 *
 * A segment given back is parked, not released (arena__region_give_back():
 * the daemon may take it at any moment, a later segment_new() gets it back
 * with a CAS and an mprotect). Getting and giving back a segment publish the
 * process's live bytes for arenactl (arena__heap_publish_live()).
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "alloc/internal.h"

#define MAP_BITS   ARENA__MAP_BITS
#define MAP_TOP    ARENA__MAP_ENTRIES
#define MAP_LEAF   ARENA__MAP_ENTRIES
#define ADDR_LIMIT ARENA__ADDR_LIMIT

typedef arena__map_leaf_t map_leaf_t;

_Atomic(arena__map_leaf_t *) arena__map_top[ARENA__MAP_ENTRIES];

_Atomic int64_t arena__stat_leased;
_Atomic int64_t arena__stat_leases;
_Atomic int64_t arena__stat_parked;
_Atomic int64_t arena__stat_purged;
_Atomic int64_t arena__stat_live_orphan;

static pthread_mutex_t meta_lock = PTHREAD_MUTEX_INITIALIZER;
static arena__segment_t *meta_free_segs; /* linked through abandoned_next */
static arena__huge_t *meta_free_huge;

/* The heap layer's "segments changed" hook (see alloc/internal.h). Written
 * once at initialisation, before any segment exists; read on slow paths. */
static _Atomic(arena__segment_count_hook_fn) count_hook;

void arena__segment_set_count_hook(arena__segment_count_hook_fn hook)
{
    atomic_store_explicit(&count_hook, hook, memory_order_release);
}

static void segment_counted(void)
{
    arena__segment_count_hook_fn hook = atomic_load_explicit(&count_hook, memory_order_acquire);
    if (hook != NULL) {
        hook();
    }
}

static map_leaf_t *map_leaf_get(size_t top)
{
    map_leaf_t *leaf = ARENA__ATOMIC_LOAD_ACQUIRE(&arena__map_top[top]);
    if (leaf != NULL) {
        return leaf;
    }
    void *mem =
        mmap(NULL, sizeof(map_leaf_t), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        return NULL;
    }
    map_leaf_t *expected = NULL;
    /* Release: the zeroed leaf is visible before its pointer. */
    if (!atomic_compare_exchange_strong_explicit(&arena__map_top[top], &expected, (map_leaf_t *)mem,
                                                 memory_order_release, memory_order_acquire)) {
        (void)munmap(mem, sizeof(map_leaf_t));
        return expected;
    }
    return (map_leaf_t *)mem;
}

int arena__map_set(uintptr_t base, size_t size, arena__seghdr_t *hdr)
{
    if (base + size > ADDR_LIMIT || base + size < base) {
        return -ENOMEM;
    }
    uintptr_t end = base + size;
    /* First make sure every leaf exists, so the update below cannot fail halfway. */
    for (uintptr_t a = base; a < end; a += ARENA__SEGMENT_SIZE) {
        if (map_leaf_get(a >> (ARENA__SEG_SHIFT + MAP_BITS)) == NULL) {
            return -ENOMEM;
        }
    }
    for (uintptr_t a = base; a < end; a += ARENA__SEGMENT_SIZE) {
        map_leaf_t *leaf =
            ARENA__ATOMIC_LOAD_ACQUIRE(&arena__map_top[a >> (ARENA__SEG_SHIFT + MAP_BITS)]);
        ARENA__ATOMIC_STORE_RELEASE(&(*leaf)[(a >> ARENA__SEG_SHIFT) & (MAP_LEAF - 1)], hdr);
    }
    return 0;
}

void arena__segment_lock(void)
{
    (void)pthread_mutex_lock(&meta_lock);
}

void arena__segment_unlock(void)
{
    (void)pthread_mutex_unlock(&meta_lock);
}

/* Where the discardable part of segment metadata starts: the first page
 * boundary after the xremote bitmap (metadata is mmap'd, so page-aligned). */
static size_t meta_tail_offset(void)
{
    size_t page = (size_t)getpagesize();
    size_t end = offsetof(arena__segment_t, xremote) + sizeof(((arena__segment_t *)0)->xremote);
    return (end + page - 1) & ~(page - 1);
}

static arena__segment_t *segment_meta_get(void)
{
    arena__segment_t *seg = NULL;
    (void)pthread_mutex_lock(&meta_lock);
    if (meta_free_segs != NULL) {
        seg = meta_free_segs;
        meta_free_segs = seg->abandoned_next;
    }
    (void)pthread_mutex_unlock(&meta_lock);
    if (seg == NULL) {
        void *mem =
            mmap(NULL, sizeof(*seg), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED) {
            return NULL;
        }
        seg = mem;
    } else {
        /* A thread that freed into the previous segment of this metadata
         * may still be setting its xremote bit (page.c pushes the block,
         * then sets the bit; the owner may have collected the block and
         * released the segment in between). So the bitmap is cleared with
         * atomic stores, never memset: a late bit is then only a stale bit,
         * which the owner's collection skips. */
        size_t off = offsetof(arena__segment_t, xremote);
        size_t end = off + sizeof(seg->xremote);
        size_t tail = seg->meta_tail_zero ? meta_tail_offset() : sizeof(*seg);
        memset(seg, 0, off);
        memset((char *)seg + end, 0, tail - end);
        for (size_t w = 0; w < ARENA__SEG_WORDS; w++) {
            ARENA__ATOMIC_STORE_RELAXED(&seg->xremote[w], 0);
        }
    }
    return seg;
}

static void segment_meta_put(arena__segment_t *seg)
{
    /* The page records and span map (90 KiB) go back to the kernel while the
     * metadata waits for reuse: a program that freed everything keeps no
     * allocator metadata resident either. The first page stays (the free
     * list link, and the xremote bits a late remote free may still set). */
    size_t tail = meta_tail_offset();
    seg->meta_tail_zero =
        tail < sizeof(*seg) && madvise((char *)seg + tail, sizeof(*seg) - tail, MADV_DONTNEED) == 0;
    (void)pthread_mutex_lock(&meta_lock);
    seg->abandoned_next = meta_free_segs;
    meta_free_segs = seg;
    (void)pthread_mutex_unlock(&meta_lock);
}

/* The malloc family reports every failure to get memory as ENOMEM (no
 * daemon, budget exhausted, -E2BIG, a lost connection alike). */
static int errno_of(int r)
{
    (void)r;
    return ENOMEM;
}

arena__segment_t *arena__segment_new(arena__heap_t *heap)
{
    arena__segment_t *seg = segment_meta_get();
    if (seg == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    arena__region_t region;
    int r = arena__region_acquire(ARENA__SEGMENT_SIZE, ARENA__SEGMENT_SIZE, &region);
    if (r < 0) {
        segment_meta_put(seg);
        errno = errno_of(r);
        return NULL;
    }
    seg->hdr.kind = ARENA__SEG_SPANS;
    seg->hdr.base = (uintptr_t)region.addr;
    seg->hdr.size = region.size;
    seg->hdr.region = region;
    ARENA__ATOMIC_STORE_RELAXED(&seg->xowner, heap);
    if (region.zeroed) {
        memset(seg->zero, 0xff, sizeof(seg->zero));
        seg->zero_slices = ARENA__SEG_SLICES;
        arena__atomic_add_relaxed(&arena__stat_purged, (int64_t)ARENA__SEGMENT_SIZE);
    }
    arena__page_t *pg = &seg->pages[0];
    pg->kind = ARENA__PAGE_FREE;
    pg->segment = seg;
    pg->start = region.addr;
    pg->slice_count = ARENA__SEG_SLICES;
    pg->dirty = !region.zeroed;
    pg->free_ms = (uint32_t)arena__now_ms();
    seg->span_start[0] = 0;
    seg->span_start[ARENA__SEG_SLICES - 1] = 0;
    if (arena__map_set(seg->hdr.base, ARENA__SEGMENT_SIZE, &seg->hdr) < 0) {
        if (region.zeroed) {
            arena__atomic_add_relaxed(&arena__stat_purged, -(int64_t)ARENA__SEGMENT_SIZE);
        }
        (void)arena__region_release(&region);
        segment_meta_put(seg);
        errno = ENOMEM;
        return NULL;
    }
    arena__atomic_add_relaxed(&arena__stat_leased, (int64_t)region.size);
    arena__atomic_add_relaxed(&arena__stat_leases, 1);
    segment_counted();
    return seg;
}

void arena__segment_release(arena__segment_t *seg)
{
    if (seg == NULL) {
        return;
    }
    (void)arena__map_set(seg->hdr.base, ARENA__SEGMENT_SIZE, NULL);
    /* Nobody's now: a heap whose free cache still names this metadata (it
     * is recycled, maybe for another base) sees xowner != itself and takes
     * the map. The caller is the owner, so its own later loads see this. */
    ARENA__ATOMIC_STORE_RELAXED(&seg->xowner, NULL);
    arena__atomic_add_relaxed(&arena__stat_purged,
                              -(int64_t)((size_t)seg->zero_slices * ARENA__SLICE_SIZE));
    arena__atomic_add_relaxed(&arena__stat_leased, -(int64_t)seg->hdr.size);
    arena__atomic_add_relaxed(&arena__stat_leases, -1);
    /* Parked (a CAS and an mprotect to reuse), or released when the
     * parking cache is full (region.c). zeroed tells the cache whether the
     * segment is all purged already (nothing for it to purge later). */
    arena__region_t region = seg->hdr.region;
    region.zeroed = seg->zero_slices == ARENA__SEG_SLICES;
    (void)arena__region_give_back(&region);
    segment_meta_put(seg);
    segment_counted();
}

static arena__huge_t *huge_meta_get(void)
{
    arena__huge_t *h = NULL;
    (void)pthread_mutex_lock(&meta_lock);
    if (meta_free_huge != NULL) {
        h = meta_free_huge;
        meta_free_huge = h->next_free;
    }
    (void)pthread_mutex_unlock(&meta_lock);
    if (h == NULL) {
        /* One page holds many; carve a page and keep the rest on the list. */
        size_t page = ARENA__SLICE_SIZE;
        void *mem = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED) {
            return NULL;
        }
        arena__huge_t *arr = mem;
        size_t n = page / sizeof(*arr);
        (void)pthread_mutex_lock(&meta_lock);
        for (size_t i = 1; i < n; i++) {
            arr[i].next_free = meta_free_huge;
            meta_free_huge = &arr[i];
        }
        (void)pthread_mutex_unlock(&meta_lock);
        h = &arr[0];
    }
    memset(h, 0, sizeof(*h));
    return h;
}

static void huge_meta_put(arena__huge_t *h)
{
    (void)pthread_mutex_lock(&meta_lock);
    h->next_free = meta_free_huge;
    meta_free_huge = h;
    (void)pthread_mutex_unlock(&meta_lock);
}

arena__huge_t *arena__huge_new(size_t size, size_t align)
{
    if (align < ARENA__SEGMENT_SIZE) {
        align = ARENA__SEGMENT_SIZE;
    }
    size_t rsize = (size + ARENA__SLICE_SIZE - 1) & ~(ARENA__SLICE_SIZE - 1);
    if (rsize < size || rsize > (SIZE_MAX >> 2)) {
        errno = ENOMEM;
        return NULL;
    }
    arena__huge_t *h = huge_meta_get();
    if (h == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    int r = arena__hugecache_get(rsize, align, &h->block);
    if (r < 0) {
        huge_meta_put(h);
        errno = errno_of(r);
        return NULL;
    }
    h->hdr.kind = ARENA__SEG_HUGE;
    h->hdr.base = (uintptr_t)h->block.addr;
    h->hdr.size = h->block.size;
    h->hdr.region = h->block.parts[0];
    h->ptr = (uintptr_t)h->block.addr;
    if (arena__map_set(h->hdr.base, h->hdr.size, &h->hdr) < 0) {
        arena__hugecache_put(&h->block);
        huge_meta_put(h);
        errno = ENOMEM;
        return NULL;
    }
    arena__atomic_add_relaxed(&arena__stat_leased, (int64_t)h->hdr.size);
    arena__atomic_add_relaxed(&arena__stat_leases, (int64_t)h->block.nparts);
    return h;
}

void arena__huge_release(arena__huge_t *h)
{
    if (h == NULL) {
        return;
    }
    (void)arena__map_set(h->hdr.base, h->hdr.size, NULL);
    arena__atomic_add_relaxed(&arena__stat_leased, -(int64_t)h->hdr.size);
    arena__atomic_add_relaxed(&arena__stat_leases, -(int64_t)h->block.nparts);
    /* Kept mapped with its pages for a reuse within the decay window,
     * within the cache's bound; purged and parked when it leaves the
     * cache (hugecache.c says when, and why a growing program's peak does
     * not rise). */
    arena__hugecache_put(&h->block);
    huge_meta_put(h);
}
