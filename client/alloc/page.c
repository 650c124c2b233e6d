/* SPDX-License-Identifier: MIT
 *
 * page.c -- small-object pages: one size class per page, two free lists.
 *
 * A page is a span of 16 slices (64 KiB; blocks up to 8 KiB) or 128 slices
 * (512 KiB; blocks up to 128 KiB) holding blocks of one size class. It has
 * two lists of free blocks: `free`, which the owner pops on the malloc fast
 * path and pushes on the free fast path (no atomics), and `xthread_free`,
 * onto which other threads push with a CAS. The owner takes xthread_free
 * whole with one atomic exchange, so there is no ABA problem: nobody but the
 * owner ever pops.
 *
 * The owner's frees go straight back onto `free`, so the next allocation of
 * the class reuses the block just freed (LIFO, as glibc's tcache and
 * tcmalloc's thread caches do). mimalloc keeps them on a third list that
 * replaces `free` only when it runs dry; we did too, and it cost real
 * programs their locality: python3 frees a temporary between the allocations
 * of two objects it builds together, the second then lands one block past
 * the hole and the holes are refilled later in reverse order, so objects made
 * one after another end up scattered. Its cycle collector walks them in
 * creation order: 10 gc.collect() over a 300k-entry dict of lists took
 * 1.15-1.53 s against 0.79-0.92 s with the frees on `free` (tcmalloc
 * 0.65-0.95 s), and the whole python3 workload of bench-programs 2.59 s of
 * user time against 2.06 s. The slow path runs as often as before: a page
 * runs dry exactly when no block of it is free but remote ones, with one
 * list or two.
 *
 * The owner does not poll every page for remote frees. A remote free that
 * makes xthread_free non-empty also sets the page's bit in its segment's
 * xremote bitmap; the owner scans the bitmaps of its segments only on slow
 * paths, before it would take fresh memory. Blocks are carved lazily: one
 * slice (an OS page) worth at a page's first extension, four at later ones
 * (page_extend()), so a fresh page costs no page faults, and no resident
 * memory, for blocks nobody asked for.
 *
 * `used` counts blocks handed out minus blocks back on `free`; a
 * remote free counts as used until the owner collects it, which is why a page
 * (and its segment) can never be recycled while another thread still has an
 * uncollected block on it.
 *
 * Live bytes are counted per page, not per block, so the fast paths touch
 * nothing but the page (as in mimalloc). `counted` is the value of `used`
 * last added to the owner heap's xlive; arena__page_settle() adds the
 * difference. Over all heaps, with u the uncollected remote frees of a page:
 *
 *     sum(xlive) + sum over pages of (used - counted) * bsize == live bytes
 *
 * holds after every step: a pop or local free moves `used` only; a remote
 * free subtracts its block from the freeing thread's xlive at once (u grows
 * by one, live falls by one block); collecting n remote frees lowers `used`
 * and `counted` together (the freers counted them), so no block is counted
 * twice. A page is settled when it fills, empties or is retired, and every
 * page of a heap when it is read exactly (arena_stats for the calling
 * thread, trim, the idle action, the purge tick, thread exit), so xlive
 * alone is exact there and stale elsewhere by at most the blocks moved on
 * pages since their last state change. `counted` is signed: a collection
 * can take it below zero before the pops it pairs with are settled.
 *
 * Owner thread only, except arena__page_free_remote().
 */
#include <errno.h>

#include "alloc/internal.h"

arena__page_t arena__page_empty;

/* Carves fresh blocks onto the (empty) free list, at least one: on a page's
 * first extension those that start in its first slice (4 KiB, an OS page),
 * so a page used for a block or two costs one OS page of resident memory;
 * later, those that start in the next PAGE_EXTEND_SLICES slices, so a page
 * that keeps growing hands out long runs of neighbouring blocks. (Carving one
 * slice at every extension made python3 building a 300k-entry dict 5% slower
 * in user time, with the same instruction count: the fresh blocks came in
 * runs of 4 KiB between reused ones, so neighbours in the program were
 * scattered more.) */
#define PAGE_EXTEND_SLICES 4u

static void page_extend(arena__page_t *page)
{
    uint32_t left = page->reserved - page->capacity;
    if (left == 0) {
        return;
    }
    uint8_t *first = page->start + (size_t)page->capacity * page->bsize;
    size_t span = page->capacity == 0 ? ARENA__SLICE_SIZE : PAGE_EXTEND_SLICES * ARENA__SLICE_SIZE;
    size_t room = span - ((uintptr_t)first & (ARENA__SLICE_SIZE - 1));
    size_t fit = (room + page->bsize - 1) / page->bsize;
    uint32_t k = fit < left ? (uint32_t)fit : left;
    uint8_t *b = first;
    for (uint32_t i = 0; i + 1 < k; i++) {
        ((arena__block_t *)b)->next = (arena__block_t *)(b + page->bsize);
        b += page->bsize;
    }
    ((arena__block_t *)b)->next = page->free;
    page->free = (arena__block_t *)first;
    page->capacity += k;
}

/* Takes the remote frees onto `free`. Returns how many. */
static uint32_t page_take_xthread(arena__page_t *page)
{
    if (ARENA__ATOMIC_LOAD_RELAXED(&page->xthread_free) == NULL) {
        return 0;
    }
    /* Acquire: pairs with the release CAS of every pusher, so the blocks'
     * next links written before the push are visible. */
    arena__block_t *list = ARENA__ATOMIC_EXCHANGE_ACQUIRE(&page->xthread_free, NULL);
    if (list == NULL) {
        return 0;
    }
    uint32_t n = 1;
    arena__block_t *tail = list;
    while (tail->next != NULL) {
        tail = tail->next;
        n++;
    }
    if (page->kind == ARENA__PAGE_SMALL) {
        tail->next = page->free;
        page->free = list;
        page->counted -= (int32_t)n; /* the freers counted them (see head) */
    }
    page->used -= n;
    return n;
}

/* Makes page->free non-empty if the page has any room. */
static void page_refill(arena__page_t *page)
{
    (void)page_take_xthread(page);
    if (page->free == NULL && page->capacity < page->reserved) {
        page_extend(page);
    }
}

static void *page_pop(arena__page_t *page)
{
    arena__block_t *b = page->free;
    page->free = b->next;
    page->used++;
    return b;
}

void arena__page_retire(arena__heap_t *heap, arena__page_t *page)
{
    if (page->in_full) {
        arena__pqueue_remove(&heap->full, page);
        page->in_full = 0;
    } else {
        arena__pqueue_remove(&heap->queues[page->cls], page);
    }
    if (heap->current[page->cls] == page) {
        arena__heap_set_current(heap, page->cls, &arena__page_empty);
    }
    page->free = NULL;
    arena__page_settle(heap, page);
    arena__span_free(heap, page);
}

/* A page with nothing used stays in its class queue, its free lists intact,
 * for the next allocations of its class: a program that builds and frees a
 * structure over and over (a parse tree, a request) would otherwise give
 * its pages back and carve them again, relinking every block, each time.
 * Kept empty pages go back at the heap's purge tick (heap.c), before the
 * heap takes a new segment (its refill hook), at trims and when the heap
 * is armed for its idle action (heap.c): then its segments must be able to
 * empty, so the page goes back at once. */
static void page_maybe_retire(arena__heap_t *heap, arena__page_t *page)
{
    if (!heap->idle_armed) {
        return;
    }
    arena__page_retire(heap, page);
}

static void page_unfull(arena__heap_t *heap, arena__page_t *page)
{
    arena__pqueue_remove(&heap->full, page);
    page->in_full = 0;
    arena__pqueue_push(&heap->queues[page->cls], page);
}

void arena__page_free_slow(arena__heap_t *heap, arena__page_t *page)
{
    arena__page_settle(heap, page);
    if (page->in_full) {
        page_unfull(heap, page);
    }
    if (page->used == 0) {
        page_maybe_retire(heap, page);
    }
}

void arena__page_free_remote(arena__segment_t *seg, arena__page_t *page, arena__block_t *block)
{
    arena__block_t *head = ARENA__ATOMIC_LOAD_RELAXED(&page->xthread_free);
    do {
        block->next = head;
        /* Release: the link above is visible to the owner's acquire exchange. */
    } while (!ARENA__ATOMIC_CAS_WEAK_RELEASE(&page->xthread_free, &head, block));
    if (head == NULL) {
        /* First remote block since the last collection: tell the owner.
         * Release pairs with the owner's acquire exchange of the word. */
        uint32_t idx = (uint32_t)(page - seg->pages);
        (void)ARENA__ATOMIC_OR_RELEASE(&seg->xremote[idx / 64], 1ull << (idx % 64));
    }
}

uint32_t arena__page_collect_remote(arena__heap_t *heap, arena__page_t *page)
{
    uint32_t n = page_take_xthread(page);
    if (n == 0) {
        return 0;
    }
    if (page->kind == ARENA__PAGE_LARGE) {
        arena__span_free(heap, page);
        return n;
    }
    if (page->in_full) {
        page_unfull(heap, page);
    }
    if (page->used == 0) {
        page_maybe_retire(heap, page);
    }
    return n;
}

size_t arena__heap_collect_remote(arena__heap_t *heap)
{
    size_t pages = 0;
    for (arena__segment_t *seg = heap->segments; seg != NULL; seg = seg->next) {
        for (uint32_t w = 0; w < ARENA__SEG_WORDS; w++) {
            if (ARENA__ATOMIC_LOAD_RELAXED(&seg->xremote[w]) == 0) {
                continue;
            }
            uint64_t bits = ARENA__ATOMIC_EXCHANGE_ACQUIRE(&seg->xremote[w], 0);
            while (bits != 0) {
                uint32_t idx = w * 64 + (uint32_t)__builtin_ctzll(bits);
                bits &= bits - 1;
                arena__page_t *p = &seg->pages[idx];
                /* A stale bit may name a span start that has gone away. */
                if ((p->kind == ARENA__PAGE_SMALL || p->kind == ARENA__PAGE_LARGE) &&
                    arena__page_collect_remote(heap, p) > 0) {
                    pages++;
                }
            }
        }
    }
    return pages;
}

void *arena__page_malloc_generic(arena__heap_t *heap, unsigned cls)
{
    arena__pqueue_t *q = &heap->queues[cls];
    for (int attempt = 0; attempt < 2; attempt++) {
        arena__page_t *p = q->first;
        while (p != NULL) {
            arena__page_t *next = p->next;
            page_refill(p);
            if (p->free != NULL) {
                arena__heap_set_current(heap, cls, p);
                return page_pop(p);
            }
            arena__pqueue_remove(q, p);
            p->in_full = 1;
            arena__pqueue_push(&heap->full, p);
            arena__page_settle(heap, p);
            p = next;
        }
        if (heap->current[cls] != &arena__page_empty) {
            arena__heap_set_current(heap, cls, &arena__page_empty);
        }
        /* Before taking fresh memory, see whether other threads gave some back. */
        if (attempt > 0 || arena__heap_collect_remote(heap) == 0 || q->first == NULL) {
            break;
        }
    }
    size_t bsize = arena__class_size(cls);
    uint32_t slices = bsize <= 8192 ? 16u : 128u;
    bool zero;
    arena__page_t *p = arena__span_alloc(heap, slices, ARENA__PAGE_SMALL, &zero);
    if (p == NULL) {
        return NULL;
    }
    p->bsize = (uint32_t)bsize;
    p->cls = (uint8_t)cls;
    p->reserved = (uint32_t)(((size_t)slices << ARENA__SLICE_SHIFT) / bsize);
    p->capacity = 0;
    p->used = 0;
    p->counted = 0;
    arena__pqueue_push(q, p);
    page_extend(p);
    arena__heap_set_current(heap, cls, p);
    return page_pop(p);
}

void arena__heap_settle(arena__heap_t *heap)
{
    for (unsigned c = 0; c < ARENA__NCLASSES; c++) {
        for (arena__page_t *p = heap->queues[c].first; p != NULL; p = p->next) {
            arena__page_settle(heap, p);
        }
    }
    for (arena__page_t *p = heap->full.first; p != NULL; p = p->next) {
        arena__page_settle(heap, p);
    }
}
