/* SPDX-License-Identifier: MIT
 *
 * span.c -- page-granular spans inside segments.
 *
 * Every used thing in a segment is a span of 4 KiB slices: a small-object page
 * (16 or 128 slices) or one large object (129 KiB .. 2 MiB). Free spans sit in
 * the owner heap's bins by floor(log2(slices)); allocation takes the first fit
 * from the lowest bin that can hold the request and splits off the rest.
 * Freeing merges with both neighbours at once (the right one through its first
 * slice's record, the left one through span_start[] of the slice just before),
 * so a segment whose objects all died is one free span of 1024 slices again:
 * that is how "empty" is detected.
 *
 * Memory goes back in two steps. A freed span stays resident for the decay
 * time (ARENA__DECAY_MS), because faulting pages back costs ~3.4 us per 4 KiB
 * and a program that frees a big block often allocates one again at once; a
 * purge tick on the slow paths then gives older free spans back with
 * MADV_REMOVE (shared lease memory; MADV_DONTNEED for private memory, where
 * MADV_REMOVE fails). A heap keeps at most one empty segment as a spare; the
 * others are given back at once: parked (region.c), so the daemon can take
 * them at any moment and a later segment reuses them without a round trip.
 * Parked with their pages, for a hot reuse, while the parking cache holds
 * fewer than PARK_DIRTY_KEEP such segments; purged first beyond that, so
 * threads that exit one after another (each giving back what it emptied)
 * do not leave a cache full of resident segments behind.
 * The spare itself is given back by the purge tick once it has been empty
 * for the decay time (arena__heap_release_idle()), by any trim, and by the
 * heap's idle action when a heap that grew shrinks back
 * (arena__heap_release_all(), heap.c): a thread that frees everything and
 * then blocks keeps nothing active for long.
 *
 * The zero[] bitmap tracks slices known to read as zero (fresh zeroed memory
 * or purged), so calloc can skip the memset of large objects.
 *
 * Owner thread of the heap only; the other threads' part (remote frees) is in
 * page.c and heap.c.
 */
#include <errno.h>
#include <string.h>

#include "alloc/internal.h"

/* Parked segments that may keep their pages (see the head comment). */
#define PARK_DIRTY_KEEP 2u

static unsigned bin_of(uint32_t n)
{
    return 31u - (unsigned)__builtin_clz(n);
}

void arena__pqueue_push(arena__pqueue_t *q, arena__page_t *p)
{
    p->prev = NULL;
    p->next = q->first;
    if (q->first != NULL) {
        q->first->prev = p;
    } else {
        q->last = p;
    }
    q->first = p;
}

void arena__pqueue_remove(arena__pqueue_t *q, arena__page_t *p)
{
    if (p->prev != NULL) {
        p->prev->next = p->next;
    } else {
        q->first = p->next;
    }
    if (p->next != NULL) {
        p->next->prev = p->prev;
    } else {
        q->last = p->prev;
    }
    p->next = p->prev = NULL;
}

void arena__span_bin_insert(arena__heap_t *heap, arena__page_t *page)
{
    arena__pqueue_push(&heap->bins[bin_of(page->slice_count)], page);
}

static void bin_remove(arena__heap_t *heap, arena__page_t *page)
{
    arena__pqueue_remove(&heap->bins[bin_of(page->slice_count)], page);
}

static uint32_t page_index(const arena__page_t *page)
{
    return (uint32_t)(page - page->segment->pages);
}

/* Clears the zero bits of [idx, idx+n); returns how many were set. */
static uint32_t zero_take(arena__segment_t *seg, uint32_t idx, uint32_t n)
{
    uint32_t count = 0;
    uint32_t end = idx + n;
    while (idx < end) {
        uint32_t w = idx / 64, b = idx % 64;
        uint32_t len = 64 - b < end - idx ? 64 - b : end - idx;
        uint64_t mask = (len == 64 ? ~0ull : ((1ull << len) - 1)) << b;
        count += (uint32_t)__builtin_popcountll(seg->zero[w] & mask);
        seg->zero[w] &= ~mask;
        idx += len;
    }
    seg->zero_slices -= count;
    if (count != 0) {
        arena__atomic_add_relaxed(&arena__stat_purged,
                                  -(int64_t)((size_t)count * ARENA__SLICE_SIZE));
    }
    return count;
}

/* Sets the zero bits of [idx, idx+n); returns how many were clear. */
static uint32_t zero_give(arena__segment_t *seg, uint32_t idx, uint32_t n)
{
    uint32_t count = 0;
    uint32_t end = idx + n;
    while (idx < end) {
        uint32_t w = idx / 64, b = idx % 64;
        uint32_t len = 64 - b < end - idx ? 64 - b : end - idx;
        uint64_t mask = (len == 64 ? ~0ull : ((1ull << len) - 1)) << b;
        count += (uint32_t)__builtin_popcountll(~seg->zero[w] & mask);
        seg->zero[w] |= mask;
        idx += len;
    }
    seg->zero_slices += count;
    if (count != 0) {
        arena__atomic_add_relaxed(&arena__stat_purged,
                                  (int64_t)((size_t)count * ARENA__SLICE_SIZE));
    }
    return count;
}

static void segment_unempty(arena__heap_t *heap, arena__segment_t *seg)
{
    if (seg->is_empty) {
        seg->is_empty = false;
        heap->empty_segments--;
        arena__atomic_add_relaxed(&arena__stat_parked, -(int64_t)ARENA__SEGMENT_SIZE);
    }
}

static arena__page_t *span_find(arena__heap_t *heap, uint32_t n)
{
    arena__page_t *spare = NULL;
    for (unsigned b = bin_of(n); b < ARENA__SPAN_BINS; b++) {
        for (arena__page_t *p = heap->bins[b].first; p != NULL; p = p->next) {
            if (p->slice_count < n) {
                continue;
            }
            if (!p->segment->is_empty) {
                return p;
            }
            /* Keep the spare empty if anything else fits. */
            if (spare == NULL) {
                spare = p;
            }
        }
    }
    return spare;
}

/* Makes a free span `rest` slices long at idx (not in a bin yet). */
static arena__page_t *span_make_free(arena__segment_t *seg, uint32_t idx, uint32_t rest,
                                     uint8_t dirty, uint32_t free_ms)
{
    arena__page_t *r = &seg->pages[idx];
    r->kind = ARENA__PAGE_FREE;
    r->segment = seg;
    r->start = (uint8_t *)seg->hdr.base + ((size_t)idx << ARENA__SLICE_SHIFT);
    r->slice_count = rest;
    r->dirty = dirty;
    r->free_ms = free_ms;
    r->free = NULL;
    r->in_full = 0;
    seg->span_start[idx] = (uint16_t)idx;
    seg->span_start[idx + rest - 1] = (uint16_t)idx;
    return r;
}

static arena__page_t *span_take(arena__heap_t *heap, arena__page_t *p, uint32_t n, uint8_t kind,
                                bool *ret_zero)
{
    arena__segment_t *seg = p->segment;
    uint32_t idx = page_index(p);
    bin_remove(heap, p);
    segment_unempty(heap, seg);
    if (p->slice_count > n) {
        arena__page_t *r = span_make_free(seg, idx + n, p->slice_count - n, p->dirty, p->free_ms);
        arena__span_bin_insert(heap, r);
    }
    p->slice_count = n;
    p->kind = kind;
    p->free = NULL;
    p->used = p->capacity = p->reserved = 0;
    p->in_full = 0;
    for (uint32_t i = idx; i < idx + n; i++) {
        seg->span_start[i] = (uint16_t)idx;
    }
    seg->used_slices += n;
    *ret_zero = zero_take(seg, idx, n) == n;
    return p;
}

/* The heap layer's refill hook (see alloc/internal.h). Written once at
 * initialisation, before any heap exists; read only when no span fits. */
static _Atomic(arena__span_refill_fn) refill_hook;

void arena__span_set_refill_hook(arena__span_refill_fn hook)
{
    atomic_store_explicit(&refill_hook, hook, memory_order_release);
}

arena__page_t *arena__span_alloc(arena__heap_t *heap, uint32_t n, uint8_t kind, bool *ret_zero)
{
    arena__page_t *p = span_find(heap, n);
    arena__span_refill_fn refill = atomic_load_explicit(&refill_hook, memory_order_acquire);
    for (unsigned attempt = 0; p == NULL && refill != NULL && attempt < 2; attempt++) {
        if (refill(heap, attempt) > 0) {
            p = span_find(heap, n);
        }
    }
    if (p == NULL) {
        arena__segment_t *seg = arena__segment_new(heap);
        if (seg == NULL) {
            return NULL;
        }
        seg->next = heap->segments;
        seg->prev = NULL;
        if (heap->segments != NULL) {
            heap->segments->prev = seg;
            /* A second segment: when this heap holds nothing again, it
             * gives everything back at once (heap.c, heap_idle()). */
            heap->idle_armed = true;
        }
        heap->segments = seg;
        heap->segment_count++;
        p = &seg->pages[0];
        arena__span_bin_insert(heap, p);
    }
    return span_take(heap, p, n, kind, ret_zero);
}

void arena__span_free(arena__heap_t *heap, arena__page_t *page)
{
    arena__segment_t *seg = page->segment;
    uint32_t idx = page_index(page);
    uint32_t n = page->slice_count;
    seg->used_slices -= n;
    uint32_t now = (uint32_t)arena__now_ms();

    uint32_t ridx = idx + n;
    if (ridx < ARENA__SEG_SLICES && seg->pages[ridx].kind == ARENA__PAGE_FREE) {
        arena__page_t *r = &seg->pages[ridx];
        bin_remove(heap, r);
        n += r->slice_count;
        r->kind = ARENA__PAGE_NONE;
    }
    if (idx > 0) {
        uint32_t lidx = seg->span_start[idx - 1];
        arena__page_t *l = &seg->pages[lidx];
        if (l->kind == ARENA__PAGE_FREE && lidx + l->slice_count == idx) {
            bin_remove(heap, l);
            n += l->slice_count;
            page->kind = ARENA__PAGE_NONE;
            idx = lidx;
        }
    }
    arena__page_t *p = span_make_free(seg, idx, n, 1, now);
    arena__span_bin_insert(heap, p);
    if (seg->used_slices == 0 && !seg->is_empty) {
        seg->is_empty = true;
        heap->empty_segments++;
        arena__atomic_add_relaxed(&arena__stat_parked, (int64_t)ARENA__SEGMENT_SIZE);
    }
}

bool arena__span_resize(arena__heap_t *heap, arena__page_t *page, uint32_t n, bool *ret_zero_tail)
{
    arena__segment_t *seg = page->segment;
    uint32_t idx = page_index(page);
    uint32_t cur = page->slice_count;
    if (n == cur) {
        *ret_zero_tail = false;
        return true;
    }
    if (n < cur) {
        arena__page_t *tail = &seg->pages[idx + n];
        tail->kind = ARENA__PAGE_LARGE;
        tail->segment = seg;
        tail->start = page->start + ((size_t)n << ARENA__SLICE_SHIFT);
        tail->slice_count = cur - n;
        page->slice_count = n;
        arena__span_free(heap, tail);
        *ret_zero_tail = false;
        return true;
    }
    uint32_t ridx = idx + cur;
    uint32_t extra = n - cur;
    if (ridx >= ARENA__SEG_SLICES || seg->pages[ridx].kind != ARENA__PAGE_FREE ||
        seg->pages[ridx].slice_count < extra) {
        return false;
    }
    arena__page_t *r = &seg->pages[ridx];
    bin_remove(heap, r);
    if (r->slice_count > extra) {
        arena__page_t *rest =
            span_make_free(seg, ridx + extra, r->slice_count - extra, r->dirty, r->free_ms);
        arena__span_bin_insert(heap, rest);
    }
    r->kind = ARENA__PAGE_NONE;
    for (uint32_t i = ridx; i < ridx + extra; i++) {
        seg->span_start[i] = (uint16_t)idx;
    }
    seg->used_slices += extra;
    page->slice_count = n;
    *ret_zero_tail = zero_take(seg, ridx, extra) == extra;
    return true;
}

static size_t span_purge(arena__page_t *p)
{
    arena__segment_t *seg = p->segment;
    size_t len = (size_t)p->slice_count << ARENA__SLICE_SHIFT;
    if (!arena__region_purge(seg->hdr.region.anonymous, p->start, len)) {
        return 0;
    }
    p->dirty = 0;
    return (size_t)zero_give(seg, page_index(p), p->slice_count) << ARENA__SLICE_SHIFT;
}

size_t arena__heap_purge(arena__heap_t *heap, bool force, uint64_t now_ms)
{
    size_t total = 0;
    for (unsigned b = 0; b < ARENA__SPAN_BINS; b++) {
        for (arena__page_t *p = heap->bins[b].first; p != NULL; p = p->next) {
            if (p->dirty && (force || (uint32_t)now_ms - p->free_ms >= ARENA__DECAY_MS)) {
                total += span_purge(p);
            }
        }
    }
    return total;
}

/* Unlinks an empty segment from heap and gives it back (parked). Returns
 * its bytes. */
static size_t segment_give_back(arena__heap_t *heap, arena__segment_t *seg)
{
    if (seg->pages[0].dirty) {
        arena__region_park_info_t pi;
        arena__region_park_info(&pi);
        if (pi.dirty >= PARK_DIRTY_KEEP) {
            (void)span_purge(&seg->pages[0]);
        }
    }
    bin_remove(heap, &seg->pages[0]);
    segment_unempty(heap, seg);
    if (seg->prev != NULL) {
        seg->prev->next = seg->next;
    } else {
        heap->segments = seg->next;
    }
    if (seg->next != NULL) {
        seg->next->prev = seg->prev;
    }
    heap->segment_count--;
    size_t size = seg->hdr.size;
    if (heap->free_seg == seg) {
        /* Not needed for safety (the free path checks xowner, which the
         * release clears), but keeps the cache from naming a parked base. */
        heap->free_seg = NULL;
        heap->free_base = ARENA__NO_BASE;
    }
    arena__segment_release(seg);
    return size;
}

size_t arena__heap_release_empty(arena__heap_t *heap, uint32_t keep)
{
    size_t total = 0;
    arena__segment_t *seg = heap->segments;
    while (seg != NULL && heap->empty_segments > keep) {
        arena__segment_t *next = seg->next;
        if (seg->is_empty) {
            total += segment_give_back(heap, seg);
        }
        seg = next;
    }
    return total;
}

size_t arena__heap_release_all(arena__heap_t *heap)
{
    arena__segment_t *last = NULL;
    for (arena__segment_t *seg = heap->segments; seg != NULL; seg = seg->next) {
        if (seg->is_empty) {
            last = seg;
        }
    }
    if (last != NULL && last->pages[0].dirty) {
        (void)span_purge(&last->pages[0]);
    }
    return arena__heap_release_empty(heap, 0);
}

size_t arena__heap_release_idle(arena__heap_t *heap, uint64_t now_ms)
{
    size_t total = 0;
    arena__segment_t *seg = heap->segments;
    while (seg != NULL && heap->empty_segments > 0) {
        arena__segment_t *next = seg->next;
        /* An empty segment is one free span whose stamp is the time the
         * last used span of it was freed (merging stamps the whole span). */
        if (seg->is_empty && (uint32_t)now_ms - seg->pages[0].free_ms >= ARENA__DECAY_MS) {
            total += segment_give_back(heap, seg);
        }
        seg = next;
    }
    return total;
}
