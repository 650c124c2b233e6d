/* SPDX-License-Identifier: MIT
 *
 * heap.c -- thread heaps: the malloc and free paths, thread exit and segment
 * adoption, trim, stats and fork.
 *
 * Each thread gets a heap on its first allocation: an mmap'd struct (never
 * malloc, since the preload library routes malloc here), found through an
 * initial-exec TLS pointer. The fast paths touch only that heap:
 *
 *   malloc: page = heap->direct[(size + 7) / 8] -> pop page->free
 *           (sizes up to 1 KiB; above: class = f(size) -> heap->current[class])
 *   free:   pointer & ~(4 MiB - 1) == heap's cached segment base? that
 *           segment : map lookup (two loads; the cache is then set) ->
 *           page via span_start[] -> owner? push page->free :
 *           CAS push xthread_free (page.c)
 *
 * No locks there, no atomic read-modify-write, no counter: live bytes of
 * small blocks are counted per page when the page changes state (page.c),
 * and no NULL test either: a thread without a heap of its own runs on the
 * static empty heap, whose pages have no blocks and whose segment cache
 * matches no pointer, so its first call falls through to the slow path,
 * which binds a real heap.
 *
 * Who owns a segment (and so every page in it) is its atomic xowner field,
 * and a free is local exactly when xowner equals the caller's heap. The value
 * "my heap" is only ever stored by the thread itself (segment creation,
 * adoption), and is overwritten before its heap struct can be reused by
 * another thread, so a relaxed load decides correctly.
 *
 * Thread exit recycles the heap whole (as mimalloc does): a pthread key
 * destructor collects its remote frees, retires its empty pages, gives back
 * its empty segments, and puts the heap -- its segments, page lists and
 * current pages untouched, xowner still the heap -- on the reuse list,
 * unbound (xbound false). The next thread that needs a heap takes the most
 * recent one from that list under heaps_lock and goes on where the last
 * thread stopped: its first malloc is a fast-path pop, not a segment lease,
 * and no segment is walked. The mutex is what makes the relaxed xowner test
 * right across the hand-over: the exiting thread's last stores happen before
 * its unlock, the new thread's first load after its lock. Frees into an
 * unbound heap's segments go the remote way; every ABANDONED_FREES_ADOPT of
 * them by one thread, that thread takes the heap off the list for a moment
 * and services it (collects, retires, purges, gives back empty segments:
 * heap_service_idle()), so the objects of exited threads, freed by others,
 * do not pin memory while no new thread comes.
 *
 * At most IDLE_HEAPS_MAX unbound heaps keep segments. Past that (a burst of
 * threads that all exit), an exiting heap abandons its segments: it stores
 * &heap_abandoned into each one's xowner (release) and pushes them on a
 * global lock-free stack (CAS push; the stack is only ever emptied whole with
 * one exchange, so no ABA). A heap that needs fresh memory (span.c's refill
 * hook, registered here) or arena_trim() first adopts the whole stack
 * (exchange, acquire): it stores itself into xowner, rebuilds its lists from
 * the segments' page records and then collects their remote frees, so
 * nothing freed by another thread is lost or leaked. Each abandoned segment
 * is walked once, by the heap that adopts it and keeps it; frees into
 * abandoned segments adopt them every ABANDONED_FREES_ADOPT frees too. A heap
 * that grew past one segment and shrinks back gives everything it no longer
 * uses back at once (the idle action, heap_idle()).
 *
 * Pressure notifications from the daemon run the trim hook registered with
 * the connection library (conn.h): it bumps a global epoch, which every heap checks on its slow
 * paths (and then trims itself), and trims the calling thread's heap at once when that is safe (not
 * from inside the allocator's own daemon calls). Trims give empty segments back PARKED (region.c);
 * pressure also releases the parked cache. The slow paths publish the live bytes for arenactl
 * (arena__heap_publish_live(): purge tick, trim, segment in or out, large and
 * huge frees, the idle action), the fast paths never.
 *
 * Slow-path locks: heaps_lock guards the list of all heaps (for stats) and the
 * list of heap structs to reuse; segment.c and region.c have their own. The
 * fork handlers take all three so the child finds them consistent.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "alloc/internal.h"
#include "conn.h"

/* Frees into unbound heaps' segments after which a heap adopts or services
 * them (free_generic). */
#define ABANDONED_FREES_ADOPT 1024u

/* Unbound heaps on the reuse list that keep their segments, at most. A
 * thread churning program has about as many as it runs threads at once;
 * a burst of exits beyond this abandons the rest, whose segments then go to
 * whichever heap needs memory first. */
#define IDLE_HEAPS_MAX 64u

/* The owner of abandoned segments (xowner), the heap of no thread. */
static arena__heap_t heap_abandoned;

/* The heap of a thread that has none (yet, or any more): read-only. Every
 * page pointer is the empty page, so the malloc fast path finds no block,
 * and free_base matches no pointer, so the free fast path finds no segment.
 * Only heap_get() and the slow paths ever see it, and they test for it. */
#define EMPTY1  &arena__page_empty
#define EMPTY4  EMPTY1, EMPTY1, EMPTY1, EMPTY1
#define EMPTY16 EMPTY4, EMPTY4, EMPTY4, EMPTY4
#define EMPTY64 EMPTY16, EMPTY16, EMPTY16, EMPTY16
_Static_assert(ARENA__DIRECT_SLOTS == 129 && ARENA__NCLASSES == 89,
               "heap_empty's initialiser counts its page pointers");
static arena__heap_t heap_empty = {
    .free_base = ARENA__NO_BASE,
    .direct = {EMPTY64, EMPTY64, EMPTY1},
    .current = {EMPTY64, EMPTY16, EMPTY4, EMPTY4, EMPTY1},
    .xbound = true,
};
#undef EMPTY1
#undef EMPTY4
#undef EMPTY16
#undef EMPTY64

static __thread arena__heap_t *tls_heap __attribute__((tls_model("initial-exec"))) = &heap_empty;

/* Whether heap is a real heap, not the static empty one. */
static inline bool heap_is_real(const arena__heap_t *heap)
{
    return heap != &heap_empty;
}

static pthread_once_t heaps_once = PTHREAD_ONCE_INIT;
static pthread_key_t heap_key;
static pthread_mutex_t heaps_lock = PTHREAD_MUTEX_INITIALIZER;
static arena__heap_t *heaps_all;
static arena__heap_t *heaps_reuse; /* unbound heaps, most recently unbound first */
static uint32_t heaps_idle_count;  /* of them, those holding segments */
static _Atomic(arena__segment_t *) abandoned;
static _Atomic uint64_t pressure_epoch; /* bumped by each Pressure notification */

static void heap_thread_done(void *arg);
static void heaps_atfork_prepare(void);
static void heaps_atfork_parent(void);
static void heaps_atfork_child(void);

static long long heaps_trim_hook(void);

static size_t heap_adopt(arena__heap_t *heap);
static size_t heaps_refill_hook(arena__heap_t *heap, unsigned attempt);

static void heaps_init_once(void)
{
    (void)pthread_key_create(&heap_key, heap_thread_done);
    arena__set_trim_hook(heaps_trim_hook);
    arena__span_set_refill_hook(heaps_refill_hook);
    arena__segment_set_count_hook(arena__heap_publish_live);
    (void)pthread_atfork(heaps_atfork_prepare, heaps_atfork_parent, heaps_atfork_child);
}

void arena__heap_init(void)
{
    (void)pthread_once(&heaps_once, heaps_init_once);
}

static void heap_reset(arena__heap_t *heap)
{
    for (unsigned c = 0; c < ARENA__NCLASSES; c++) {
        arena__heap_set_current(heap, c, &arena__page_empty);
        heap->queues[c].first = heap->queues[c].last = NULL;
    }
    heap->full.first = heap->full.last = NULL;
    for (unsigned b = 0; b < ARENA__SPAN_BINS; b++) {
        heap->bins[b].first = heap->bins[b].last = NULL;
    }
    heap->segments = NULL;
    heap->free_base = ARENA__NO_BASE;
    heap->free_seg = NULL;
    heap->empty_segments = 0;
    heap->segment_count = 0;
    heap->idle_armed = false;
    heap->last_purge_ms = arena__now_ms();
    heap->pressure_seen = atomic_load_explicit(&pressure_epoch, memory_order_relaxed);
}

static void heap_abandon_segments(arena__heap_t *heap);

/* The reuse list, under heaps_lock. A heap on it is touched by nobody (its
 * segments only get remote frees), so whether it holds segments cannot
 * change while it is there and heaps_idle_count stays exact. A heap pushed
 * when IDLE_HEAPS_MAX heaps there hold segments already abandons its own. */
static void reuse_push_locked(arena__heap_t *heap)
{
    if (heap->segments != NULL && heaps_idle_count >= IDLE_HEAPS_MAX) {
        heap_abandon_segments(heap); /* enough unbound heaps keep segments */
    }
    ARENA__ATOMIC_STORE_RELAXED(&heap->xbound, false);
    heap->reuse_next = heaps_reuse;
    heaps_reuse = heap;
    heaps_idle_count += heap->segments != NULL ? 1u : 0u;
}

static void reuse_unlink_locked(arena__heap_t *heap, arena__heap_t **link)
{
    *link = heap->reuse_next;
    heap->reuse_next = NULL;
    heaps_idle_count -= heap->segments != NULL ? 1u : 0u;
}

/* A fresh heap struct, reset, on the list of all heaps, bound to nobody. */
static arena__heap_t *heap_struct_new(void)
{
    void *mem = mmap(NULL, sizeof(arena__heap_t), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        errno = ENOMEM;
        return NULL;
    }
    arena__heap_t *heap = mem;
    heap_reset(heap);
    (void)pthread_mutex_lock(&heaps_lock);
    heap->all_next = heaps_all;
    heaps_all = heap;
    (void)pthread_mutex_unlock(&heaps_lock);
    return heap;
}

/* A heap for a new thread: the most recently unbound one, with whatever
 * segments, pages and current pages it kept, or a fresh one. */
static arena__heap_t *heap_struct_get(void)
{
    (void)pthread_mutex_lock(&heaps_lock);
    arena__heap_t *heap = heaps_reuse;
    if (heap != NULL) {
        reuse_unlink_locked(heap, &heaps_reuse);
        ARENA__ATOMIC_STORE_RELAXED(&heap->xbound, true);
    }
    (void)pthread_mutex_unlock(&heaps_lock);
    if (heap == NULL) {
        heap = heap_struct_new();
        if (heap == NULL) {
            return NULL;
        }
        ARENA__ATOMIC_STORE_RELAXED(&heap->xbound, true);
    }
    heap->abandoned_frees = 0;
    heap->idle_armed = false;
    return heap;
}

/* Puts an unbound heap on the reuse list (reuse_push_locked()). */
static void heap_struct_put(arena__heap_t *heap)
{
    (void)pthread_mutex_lock(&heaps_lock);
    reuse_push_locked(heap);
    (void)pthread_mutex_unlock(&heaps_lock);
}

static arena__heap_t *heap_get(void)
{
    arena__heap_t *heap = tls_heap;
    if (ARENA__LIKELY(heap_is_real(heap))) {
        return heap;
    }
    arena__heap_init();
    heap = heap_struct_get();
    if (heap == NULL) {
        return NULL;
    }
    tls_heap = heap;
    (void)pthread_setspecific(heap_key, heap);
    return heap;
}

/* ---- adoption and abandonment ---------------------------------------------- */

/* Adopts every abandoned segment into heap. Returns how many. */
static size_t heap_adopt(arena__heap_t *heap)
{
    if (ARENA__ATOMIC_LOAD_RELAXED(&abandoned) == NULL) {
        return 0;
    }
    /* Acquire: pairs with the release CAS of the abandoning threads, so their
     * writes to the segments' metadata are visible. */
    arena__segment_t *seg = ARENA__ATOMIC_EXCHANGE_ACQUIRE(&abandoned, NULL);
    size_t count = 0;
    while (seg != NULL) {
        arena__segment_t *next = seg->abandoned_next;
        seg->abandoned_next = NULL;
        /* From here on, frees by this thread into seg are local. Frees by
         * others keep going to xthread_free; collected below. */
        ARENA__ATOMIC_STORE_RELAXED(&seg->xowner, heap);
        seg->prev = NULL;
        seg->next = heap->segments;
        if (heap->segments != NULL) {
            heap->segments->prev = seg;
        }
        heap->segments = seg;
        heap->segment_count++;
        for (uint32_t i = 0; i < ARENA__SEG_SLICES;) {
            arena__page_t *p = &seg->pages[i];
            if (p->kind == ARENA__PAGE_FREE) {
                arena__span_bin_insert(heap, p);
            } else if (p->kind == ARENA__PAGE_SMALL) {
                p->in_full = 0;
                arena__pqueue_push(&heap->queues[p->cls], p);
            }
            if (p->slice_count == 0) {
                break; /* cannot happen: spans tile the segment */
            }
            i += p->slice_count;
        }
        for (uint32_t w = 0; w < ARENA__SEG_WORDS; w++) {
            (void)ARENA__ATOMIC_EXCHANGE_ACQUIRE(&seg->xremote[w], 0);
        }
        for (uint32_t i = 0; i < ARENA__SEG_SLICES; i++) {
            arena__page_t *p = &seg->pages[i];
            if (p->kind != ARENA__PAGE_SMALL && p->kind != ARENA__PAGE_LARGE) {
                continue;
            }
            (void)arena__page_collect_remote(heap, p);
            if (p->kind == ARENA__PAGE_SMALL && p->used == 0) {
                arena__page_retire(heap, p);
            }
        }
        count++;
        seg = next;
    }
    if (count > 0) {
        /* Grown by adoption: when it holds nothing again, it gives all
         * of it back (heap_idle()). */
        heap->idle_armed = true;
    }
    return count;
}

/* Retires every page with nothing used (kept empty pages, page.c), except
 * each class's current page when keep_current. Returns how many. */
static size_t heap_retire_unused_pages(arena__heap_t *heap, bool keep_current)
{
    size_t n = 0;
    for (unsigned c = 0; c < ARENA__NCLASSES; c++) {
        arena__page_t *p = heap->queues[c].first;
        while (p != NULL) {
            arena__page_t *next = p->next;
            if (p->used == 0 && !(keep_current && heap->current[c] == p)) {
                arena__page_retire(heap, p);
                n++;
            }
            p = next;
        }
    }
    return n;
}

static void heap_retire_unused(arena__heap_t *heap)
{
    (void)heap_retire_unused_pages(heap, false);
}

/* span.c's refill hook: before a heap leases a new segment, it takes the
 * frees other threads queued for it and gives back the empty pages it kept
 * (attempt 0), then adopts abandoned segments (attempt 1). */
static size_t heaps_refill_hook(arena__heap_t *heap, unsigned attempt)
{
    if (attempt == 0) {
        size_t got = arena__heap_collect_remote(heap);
        return got + heap_retire_unused_pages(heap, true);
    }
    return heap_adopt(heap);
}

/* What a heap does before it is unbound: takes the remote frees, retires
 * pages with nothing used and gives back empty segments (parked, so the
 * next heap's segment comes from the park cache without a round trip). */
static void heap_leave(arena__heap_t *heap)
{
    (void)arena__heap_collect_remote(heap);
    heap_retire_unused(heap);
    (void)arena__heap_release_empty(heap, 0);
    arena__heap_settle(heap);
}

/* Hands every segment of heap to the abandoned stack and resets it. Takes
 * no lock, makes no system call (heap_struct_put() calls it under
 * heaps_lock). */
static void heap_abandon_segments(arena__heap_t *heap)
{
    arena__segment_t *seg = heap->segments;
    while (seg != NULL) {
        arena__segment_t *next = seg->next;
        seg->next = seg->prev = NULL;
        ARENA__ATOMIC_STORE_RELEASE(&seg->xowner, &heap_abandoned);
        arena__segment_t *head = ARENA__ATOMIC_LOAD_RELAXED(&abandoned);
        do {
            seg->abandoned_next = head;
            /* Release: the segment's metadata is complete before it is seen. */
        } while (!ARENA__ATOMIC_CAS_WEAK_RELEASE(&abandoned, &head, seg));
        seg = next;
    }
    heap_reset(heap);
}

/* An unbound heap that others freed into (free_generic): if it is still on
 * the reuse list, take it off, give back what those frees emptied (its free
 * runs purged: no thread of its own will tick it) and put it back. */
static __attribute__((noinline)) void heap_service_idle(arena__heap_t *idle)
{
    (void)pthread_mutex_lock(&heaps_lock);
    arena__heap_t **link = &heaps_reuse;
    while (*link != NULL && *link != idle) {
        link = &(*link)->reuse_next;
    }
    bool found = *link == idle;
    if (found) {
        reuse_unlink_locked(idle, link);
    }
    (void)pthread_mutex_unlock(&heaps_lock);
    if (!found) {
        return; /* bound again, or being serviced by another thread */
    }
    heap_leave(idle);
    (void)arena__heap_purge(idle, true, arena__now_ms());
    arena__heap_publish_live();
    heap_struct_put(idle);
}

static void heap_thread_done(void *arg)
{
    arena__heap_t *heap = arg;
    if (heap == NULL) {
        return;
    }
    heap_leave(heap);
    /* Its live bytes (objects that outlive the thread, less the frees it
     * made of other heaps' objects) move to the process-wide counter, so
     * the next thread given this heap struct starts from zero. */
    arena__atomic_add_relaxed(&arena__stat_live_orphan, ARENA__ATOMIC_LOAD_RELAXED(&heap->xlive));
    ARENA__ATOMIC_STORE_RELAXED(&heap->xlive, 0);
    if (tls_heap == heap) {
        tls_heap = &heap_empty;
    }
    heap_struct_put(heap);
}

/* ---- allocation ------------------------------------------------------------ */

static long long heap_trim(arena__heap_t *heap, bool adopt);

static void heap_tick(arena__heap_t *heap)
{
    uint64_t epoch = atomic_load_explicit(&pressure_epoch, memory_order_relaxed);
    if (ARENA__UNLIKELY(epoch != heap->pressure_seen)) {
        heap->pressure_seen = epoch;
        (void)heap_trim(heap, true);
        (void)arena__region_park_release();
    }
    uint64_t now = arena__now_ms();
    if (now - heap->last_purge_ms >= ARENA__PURGE_TICK_MS) {
        heap->last_purge_ms = now;
        /* Empty pages kept for their class (page.c) go back now. */
        (void)heap_retire_unused_pages(heap, true);
        (void)arena__heap_purge(heap, false, now);
        /* The spare too, once idle for the decay time: a thread that
         * freed everything must not keep an active lease forever. */
        if (heap->empty_segments != 0) {
            (void)arena__heap_release_idle(heap, now);
        }
        /* Segments parked with their pages (at once, by a free) lose them
         * after the decay time as well. */
        (void)arena__region_park_purge(false, now);
        arena__heap_settle(heap);
        arena__heap_publish_live();
    }
    if (heap->empty_segments > 1) {
        (void)arena__heap_release_empty(heap, 1);
    }
}

static size_t round_up(size_t n, size_t align)
{
    return (n + align - 1) & ~(align - 1);
}

/* A large object (or a small one needing alignment > 4 KiB) from a span; a
 * huge region when it does not fit in a segment. */
static void *alloc_big(arena__heap_t *heap, size_t size, size_t align, bool *ret_zero)
{
    if (align < ARENA__SLICE_SIZE) {
        align = ARENA__SLICE_SIZE;
    }
    size_t extra = align > ARENA__SLICE_SIZE ? align - ARENA__SLICE_SIZE : 0;
    if (size <= ARENA__LARGE_MAX && extra <= ARENA__SEGMENT_SIZE - ARENA__LARGE_MAX) {
        size_t need = round_up(size + extra, ARENA__SLICE_SIZE);
        bool zero;
        arena__page_t *page = arena__span_alloc(heap, (uint32_t)(need >> ARENA__SLICE_SHIFT),
                                                ARENA__PAGE_LARGE, &zero);
        if (page == NULL) {
            return NULL;
        }
        page->used = 1;
        uint8_t *p = (uint8_t *)round_up((uintptr_t)page->start, align);
        uint8_t *end = page->start + ((size_t)page->slice_count << ARENA__SLICE_SHIFT);
        arena__counter_add(&heap->xlive, (int64_t)(end - p));
        *ret_zero = zero;
        return p;
    }
    if (size > PTRDIFF_MAX || align > ((size_t)1 << 46)) {
        errno = ENOMEM;
        return NULL;
    }
    arena__huge_t *h = arena__huge_new(size, align);
    if (h == NULL) {
        return NULL;
    }
    arena__counter_add(&heap->xlive, (int64_t)h->hdr.size);
    *ret_zero = h->block.zeroed;
    return (void *)h->ptr;
}

static void *malloc_slow(size_t size, size_t align, bool *ret_zero)
{
    *ret_zero = false;
    if (ARENA__UNLIKELY(!heap_is_real(tls_heap)) && arena__preload_gate != NULL) {
        /* No heap yet: the preload may still be starting the process up
         * (internal.h), and serves this thread's request itself then. */
        void *boot = NULL;
        if (!arena__preload_gate(size, align, &boot)) {
            return boot;
        }
    }
    arena__heap_t *heap = heap_get();
    if (heap == NULL) {
        return NULL;
    }
    heap_tick(heap);
    if (size <= ARENA__SMALL_MAX && align <= 16) {
        unsigned cls = arena__size_class(size);
        arena__page_t *page = heap->current[cls];
        void *b;
        if (page->free != NULL) {
            arena__block_t *blk = page->free;
            page->free = blk->next;
            page->used++;
            b = blk;
        } else {
            b = arena__page_malloc_generic(heap, cls);
        }
        return b;
    }
    return alloc_big(heap, size, align, ret_zero);
}

/* Everything arena__heap_malloc's first test does not serve: small sizes
 * above ARENA__DIRECT_MAX (class computed, then current[]), an empty current
 * page, the first call of a thread, large and huge sizes. Kept out of line so
 * the fast path stays a leaf function with no stack frame. */
static __attribute__((noinline)) void *malloc_generic(size_t size)
{
    arena__heap_t *heap = tls_heap;
    if (size <= ARENA__SMALL_MAX) {
        /* The empty heap's current page has no lists: it falls through. */
        unsigned cls = arena__size_class(size);
        arena__page_t *page = heap->current[cls];
        arena__block_t *b = page->free;
        if (ARENA__LIKELY(b != NULL)) {
            page->free = b->next;
            page->used++;
            return b;
        }
    }
    bool zero;
    return malloc_slow(size, 0, &zero);
}

void *arena__heap_malloc(size_t size)
{
    arena__heap_t *heap = tls_heap;
    if (ARENA__LIKELY(size <= ARENA__DIRECT_MAX)) {
        /* One load from size to page: no class computation. */
        arena__page_t *page = heap->direct[(size + 7) >> 3];
        arena__block_t *b = page->free;
        if (ARENA__LIKELY(b != NULL)) {
            page->free = b->next;
            page->used++;
            return b;
        }
    }
    return malloc_generic(size);
}

void *arena__heap_aligned(size_t align, size_t size)
{
    if (align == 0 || (align & (align - 1)) != 0) {
        errno = EINVAL;
        return NULL;
    }
    if (align <= 8 || (align == 16 && size > 8)) {
        return arena__heap_malloc(size);
    }
    if (align <= ARENA__SLICE_SIZE && size <= ARENA__SMALL_MAX) {
        /* Pages start on 4 KiB boundaries, so a class whose block size is a
         * multiple of align has every block aligned. Powers of two are
         * classes, so the search ends. */
        size_t s = round_up(size < align ? align : size, align);
        if (s <= ARENA__SMALL_MAX) {
            unsigned cls = arena__size_class(s);
            while (arena__class_size(cls) % align != 0) {
                cls++;
            }
            return arena__heap_malloc(arena__class_size(cls));
        }
    }
    if (size == 0) {
        size = 1;
    }
    /* A span (or a huge region) with room to slide the object to align. */
    bool zero;
    return malloc_slow(size, align, &zero);
}

void *arena__heap_calloc(size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    size_t total = count * size;
    if (total <= ARENA__SMALL_MAX) {
        void *p = arena__heap_malloc(total);
        if (p != NULL) {
            memset(p, 0, total);
        }
        return p;
    }
    bool zero = false;
    void *p = malloc_slow(total, 0, &zero);
    if (p != NULL && !zero) {
        memset(p, 0, total);
    }
    return p;
}

/* ---- free ------------------------------------------------------------------ */

/* The idle action: a heap that grew past one segment and has shrunk back
 * gives what it no longer uses back at once -- every page with nothing used,
 * the current ones too, every empty segment, the spare too (parked), and the
 * free page runs of the segment it still uses (purged). Parked, the daemon
 * takes them back after its parked decay without our help, so a program that
 * frees (nearly) everything and then blocks or sleeps is back near its
 * starting RSS within about a second, with no later call into the library
 * (DESIGN.md sections 5 and 6) -- as glibc trims its heap top on free. Only
 * a heap that grew past one segment (span.c) or adopted segments arms it,
 * and the action disarms it: a heap that allocates and frees a few objects
 * over and over never parks, unparks or purges for it.
 *
 * "Shrunk back" is read off the segments, not the live counter (frees of its
 * objects by other threads count on theirs): at most one segment is not
 * empty. While the heap is armed, a page whose last block goes is retired
 * even when it is its class's only page (page.c), so segments do empty;
 * programs keep a few objects of their own and of the C library for good,
 * hence the one segment. The test is two loads, no walk: a heap that grew
 * and keeps working (a server's threads) pays nothing for it.
 * Blocks other threads freed and this heap has not collected keep their
 * pages used; the heap looks again at its next page-empty event. Owner only;
 * from the slow paths of free. */
static __attribute__((noinline)) void heap_idle(arena__heap_t *heap)
{
    heap->idle_armed = false;
    arena__heap_settle(heap);
    heap_retire_unused(heap);
    uint64_t now = arena__now_ms();
    if (now - heap->last_idle_ms < ARENA__DECAY_MS) {
        /* The second time within the decay time: a program that builds
         * and drops a structure over and over, not one going idle. Its
         * empty segments are parked as they are (the daemon still takes
         * them after its parked decay) and free runs wait for their decay,
         * so the next round does not fault every page in again. */
        heap->last_idle_ms = now;
        (void)arena__heap_release_empty(heap, 0);
        (void)arena__heap_purge(heap, false, now);
        arena__heap_publish_live();
        return;
    }
    heap->last_idle_ms = now;
    (void)arena__heap_release_all(heap);
    /* The segment still in use keeps its objects' pages only. */
    (void)arena__heap_purge(heap, true, now);
    /* What the purge tick would have done besides: entries of the parking
     * cache parked for the decay time lose their pages. */
    (void)arena__region_park_purge(false, now);
    arena__heap_publish_live();
}

/* Whether heap should take its idle action now (see above). */
static inline bool heap_is_idle(const arena__heap_t *heap)
{
    return ARENA__UNLIKELY(heap->idle_armed) && heap->segment_count - heap->empty_segments <= 1;
}

/* A free of another heap's block counts on the freeing thread's heap. A
 * thread that only frees (the consumer of a producer/consumer pair) gets a
 * heap for it: one shared word that every such thread updated with an
 * atomic add was the hottest line of such programs. */
static void live_sub_remote(int64_t bytes)
{
    arena__heap_t *heap = tls_heap;
    if (ARENA__UNLIKELY(!heap_is_real(heap))) {
        heap = heap_get();
        if (heap == NULL) {
            arena__atomic_add_relaxed(&arena__stat_live_orphan, -bytes);
            return;
        }
    }
    arena__counter_add(&heap->xlive, -bytes);
}

/* The record of the span that holds ptr in seg: segments are 4 MiB-aligned,
 * so the slice index is in the pointer's low bits. */
static inline arena__page_t *segment_page_of(arena__segment_t *seg, const void *ptr)
{
    uintptr_t idx = ((uintptr_t)ptr & (ARENA__SEGMENT_SIZE - 1)) >> ARENA__SLICE_SHIFT;
    return &seg->pages[seg->span_start[idx]];
}

static size_t span_usable(const arena__page_t *page, const void *ptr)
{
    const uint8_t *end = page->start + ((size_t)page->slice_count << ARENA__SLICE_SHIFT);
    return (size_t)(end - (const uint8_t *)ptr);
}

static void free_huge(arena__huge_t *h)
{
    live_sub_remote((int64_t)h->hdr.size);
    arena__huge_release(h);
    arena__heap_t *heap = tls_heap;
    if (heap_is_real(heap) && heap_is_idle(heap)) {
        heap_idle(heap);
        return;
    }
    /* Large and huge frees move the live figure by 128 KiB or more: the
     * control region (arenactl, the daemon's view) hears of it at once, so
     * a program whose last free is a large one shows 0 live. */
    arena__heap_publish_live();
}

static void free_large_local(arena__heap_t *heap, arena__page_t *page, void *ptr)
{
    arena__counter_add(&heap->xlive, -(int64_t)span_usable(page, ptr));
    page->used = 0;
    arena__span_free(heap, page);
    if (heap_is_idle(heap)) {
        heap_idle(heap);
        return;
    }
    heap_tick(heap);
    arena__heap_publish_live(); /* as free_huge() says */
}

/* A page that emptied or was full: page lists, then maybe segments. */
static __attribute__((noinline)) void free_small_slow(arena__heap_t *heap, arena__page_t *page)
{
    arena__page_free_slow(heap, page);
    if (heap_is_idle(heap)) {
        heap_idle(heap);
        return;
    }
    /* A segment that just emptied is given back now (parked, so
     * the daemon can take it), beyond the one spare: a thread
     * that frees everything and then blocks (the generator of
     * DESIGN.md section 1) must not keep active leases until its
     * next malloc. Here, at the top of free, nothing refers to
     * the segment any more. */
    if (ARENA__UNLIKELY(heap->empty_segments > 1)) {
        (void)arena__heap_release_empty(heap, 1);
    }
}

/* The owner's free of a small block: the push back onto `free` (the next
 * malloc of the class gets it, page.c), then the page lists when the page
 * emptied or was full. */
static inline void free_small_local(arena__heap_t *heap, arena__page_t *page, void *ptr)
{
    arena__block_t *b = ptr;
    b->next = page->free;
    page->free = b;
    uint32_t used = page->used - 1;
    page->used = used;
    if (ARENA__UNLIKELY(used == 0 || page->in_full)) {
        /* The only page of its class stays (no churn): skip the call,
         * unless the heap may be idle (heap_idle()). */
        if (used != 0 || page->in_full || page->next != NULL ||
            heap->queues[page->cls].first != page || heap->idle_armed) {
            free_small_slow(heap, page);
        }
    }
}

/* Every free the fast path below does not finish: NULL, a pointer not ours,
 * a segment other than the cached one (the map lookup, then the cache is
 * set), a large object, another thread's segment, a huge region. */
static __attribute__((noinline)) void free_generic(arena__heap_t *heap, void *ptr)
{
    if (ptr == NULL) {
        return;
    }
    arena__seghdr_t *hdr = arena__map_lookup(ptr);
    if (ARENA__UNLIKELY(hdr == NULL)) {
        return; /* not ours: a caller bug; never crash on it */
    }
    if (ARENA__LIKELY(hdr->kind == ARENA__SEG_SPANS)) {
        arena__segment_t *seg = (arena__segment_t *)hdr;
        arena__page_t *page = segment_page_of(seg, ptr);
        /* Relaxed: only this thread ever stores its own heap here (never
         * the empty heap). Read once, before the block goes back: after a
         * remote free the owner may collect it, empty the segment and give
         * it back, and its metadata may be recycled (zeroed) for another
         * segment, so seg is not read again below. */
        arena__heap_t *owner = ARENA__ATOMIC_LOAD_RELAXED(&seg->xowner);
        if (owner == heap) {
            heap->free_base = seg->hdr.base;
            heap->free_seg = seg;
            if (ARENA__LIKELY(page->kind == ARENA__PAGE_SMALL)) {
                free_small_local(heap, page, ptr);
                return;
            }
            free_large_local(heap, page, ptr);
            return;
        }
        live_sub_remote(page->kind == ARENA__PAGE_SMALL ? (int64_t)page->bsize
                                                        : (int64_t)span_usable(page, ptr));
        arena__page_free_remote(seg, page, ptr);
        /* Objects of a thread that exited, freed here: nobody collects
         * them while their heap is unbound, and a program that frees them
         * and then waits would keep them resident. Every
         * ABANDONED_FREES_ADOPT such frees, this heap adopts the abandoned
         * segments (the rest of the frees are then local, and emptied
         * segments go back) or services the unbound heap. Reading xbound of
         * whatever owner this names is safe: heap structs are never
         * unmapped. */
        if (ARENA__UNLIKELY(heap_is_real(heap) && owner != NULL &&
                            !ARENA__ATOMIC_LOAD_RELAXED(&owner->xbound)) &&
            ++heap->abandoned_frees % ABANDONED_FREES_ADOPT == 0) {
            if (owner == &heap_abandoned) {
                (void)heap_adopt(heap);
            } else {
                heap_service_idle(owner);
            }
        }
        return;
    }
    arena__huge_t *h = (arena__huge_t *)hdr;
    if ((uintptr_t)ptr == h->ptr) {
        free_huge(h);
    }
}

/* The fast path: a small block of the segment this thread freed into last
 * (mask, compare: no map lookup, no ownership test, since the cached
 * segment is this heap's by the cache's invariant, alloc/types.h) goes onto
 * its page's free list. NULL never matches (free_base is never 0), nor
 * anything in the empty heap. */
void arena__heap_free(void *ptr)
{
    arena__heap_t *heap = tls_heap;
    uintptr_t base = (uintptr_t)ptr & ~(uintptr_t)(ARENA__SEGMENT_SIZE - 1);
    if (ARENA__LIKELY(base == heap->free_base)) {
        arena__page_t *page = segment_page_of(heap->free_seg, ptr);
#if defined(__GNUC__)
        /* One register for the page: gcc otherwise computes the record's
         * address twice (once for its fields, once for the slow call). */
        __asm__("" : "+r"(page));
#endif
        if (ARENA__LIKELY(page->kind == ARENA__PAGE_SMALL)) {
            free_small_local(heap, page, ptr);
            return;
        }
    }
    free_generic(heap, ptr);
}

/* Programs that count their memory call this on every allocation and free
 * (redis-server does, through malloc_usable_size()): a pointer in the
 * segment this thread last freed into needs no map lookup (the free fast
 * path's cache), and a small block's usable size is its page's block size
 * with no division, since small pages hand out block starts only (aligned
 * requests too: alloc/types.h). */
size_t arena__heap_usable_size(const void *ptr)
{
    const arena__heap_t *heap = tls_heap;
    arena__seghdr_t *hdr;
    if (((uintptr_t)ptr & ~(uintptr_t)(ARENA__SEGMENT_SIZE - 1)) == heap->free_base) {
        hdr = &heap->free_seg->hdr;
    } else {
        hdr = ptr != NULL ? arena__map_lookup(ptr) : NULL;
        if (hdr == NULL) {
            return 0;
        }
    }
    if (hdr->kind == ARENA__SEG_SPANS) {
        const arena__page_t *page = segment_page_of((arena__segment_t *)hdr, ptr);
        if (page->kind == ARENA__PAGE_SMALL) {
            return page->bsize;
        }
        if (page->kind == ARENA__PAGE_LARGE) {
            return span_usable(page, ptr);
        }
        return 0;
    }
    uintptr_t off = (uintptr_t)ptr - hdr->base;
    return off < hdr->size ? hdr->size - off : 0;
}

bool arena__heap_owns(const void *ptr)
{
    arena__seghdr_t *hdr = arena__map_lookup(ptr);
    if (hdr == NULL) {
        return false;
    }
    return hdr->kind == ARENA__SEG_SPANS || (uintptr_t)ptr - hdr->base < hdr->size;
}

/* ---- realloc ----------------------------------------------------------------- */

/* Room to leave when a block of more than REALLOC_ROOM_MIN bytes grows past
 * its block, span or region: a quarter more (as glibc's and mimalloc's
 * quarter-step bins leave). A block grown a little at a time (a string built
 * by appends, a growing array) then moves about once per third of growth
 * rather than at every size class (an eighth) or, for spans and regions, at
 * every 4 KiB page; the cost is some unused room in blocks that grew, whose
 * pages, when never written, are never faulted in. (An eighth gave
 * bench-programs' strbuild 1.59x mimalloc's time, a quarter 1.33x; python3's
 * peak was the same with both.) */
#define REALLOC_ROOM_MIN ((size_t)512)

static size_t grown_size(size_t size)
{
    size_t more = size + size / 4;
    return more > size ? more : size;
}

void *arena__heap_realloc(void *ptr, size_t size)
{
    if (ptr == NULL) {
        return arena__heap_malloc(size);
    }
    if (size == 0) {
        arena__heap_free(ptr);
        return NULL;
    }
    arena__seghdr_t *hdr = arena__map_lookup(ptr);
    if (hdr == NULL) {
        errno = EINVAL;
        return NULL;
    }
    /* One lookup: the usable size comes from the record found here. */
    size_t old = 0;
    uintptr_t off = (uintptr_t)ptr - hdr->base;
    if (hdr->kind == ARENA__SEG_SPANS) {
        arena__segment_t *seg = (arena__segment_t *)hdr;
        arena__page_t *page = segment_page_of(seg, ptr);
        if (page->kind == ARENA__PAGE_SMALL) {
            /* Small pages hand out block starts only (an aligned request
             * takes a class whose size is a multiple of the alignment), so
             * the usable size is the block size: no division here. */
            old = page->bsize;
            if (size <= old && size >= old / 2) {
                return ptr;
            }
        } else if (page->kind == ARENA__PAGE_LARGE) {
            arena__heap_t *heap = tls_heap;
            old = span_usable(page, ptr);
            /* Within the span and using more than half of it: stay. (Trimming
             * the span to the new size here gave back the room a grown span
             * was given, so a string built by appends had to move again.) */
            if (size <= old && size > old / 2) {
                return ptr;
            }
            if (ARENA__ATOMIC_LOAD_RELAXED(&seg->xowner) == heap && size > ARENA__SMALL_MAX &&
                size <= ARENA__LARGE_MAX) {
                size_t front = (size_t)((uint8_t *)ptr - page->start);
                size_t need = round_up(front + size, ARENA__SLICE_SIZE) >> ARENA__SLICE_SHIFT;
                size_t roomy = size > old ? round_up(front + grown_size(size), ARENA__SLICE_SIZE) >>
                                                ARENA__SLICE_SHIFT
                                          : need;
                bool zero;
                if ((roomy <= ARENA__SEG_SLICES &&
                     arena__span_resize(heap, page, (uint32_t)roomy, &zero)) ||
                    (roomy != need && need <= ARENA__SEG_SLICES &&
                     arena__span_resize(heap, page, (uint32_t)need, &zero))) {
                    arena__counter_add(&heap->xlive,
                                       (int64_t)span_usable(page, ptr) - (int64_t)old);
                    return ptr;
                }
            }
        }
    } else {
        if (off >= hdr->size) {
            errno = EINVAL; /* not in the huge object's region */
            return NULL;
        }
        old = hdr->size - off;
        if (size <= old && size > old / 2) {
            return ptr;
        }
    }
    void *p = NULL;
    if (size > old && size > REALLOC_ROOM_MIN) {
        p = arena__heap_malloc(grown_size(size));
    }
    if (p == NULL) {
        p = arena__heap_malloc(size);
        if (p == NULL) {
            return NULL;
        }
    }
    memcpy(p, ptr, old < size ? old : size);
    arena__heap_free(ptr);
    return p;
}

/* ---- trim and stats -------------------------------------------------------- */

/* Gives back everything free the heap holds: collects remote frees, adopts
 * the abandoned segments (when asked), retires unused pages, purges every
 * free span and parks every empty segment. Returns the bytes given back. */
static long long heap_trim(arena__heap_t *heap, bool adopt)
{
    (void)arena__heap_collect_remote(heap);
    if (adopt) {
        (void)heap_adopt(heap);
    }
    heap_retire_unused(heap);
    /* Purge first: an empty segment is parked next, and a parked mapping
     * cannot be purged (MADV_REMOVE needs write access), so its pages would
     * stay resident until the daemon takes it. */
    size_t total = arena__heap_purge(heap, true, arena__now_ms());
    total += arena__heap_release_empty(heap, 0);
    arena__heap_settle(heap);
    arena__heap_publish_live();
    return (long long)total;
}

/* Gives back what exited threads left: every unbound heap that holds
 * segments is trimmed (the list is taken whole, so no new thread binds one
 * meanwhile; one arriving then gets a fresh heap), and the abandoned
 * segments are adopted by one of them, or by a fresh unbound heap, and
 * trimmed too. They all stay unbound. Safe from any thread, also one that
 * never allocates (the notification thread). */
static long long trim_idle_heaps(void)
{
    (void)pthread_mutex_lock(&heaps_lock);
    arena__heap_t *list = heaps_reuse;
    heaps_reuse = NULL;
    heaps_idle_count = 0;
    (void)pthread_mutex_unlock(&heaps_lock);
    bool adopt = ARENA__ATOMIC_LOAD_RELAXED(&abandoned) != NULL;
    long long got = 0;
    for (arena__heap_t *h = list; h != NULL; h = h->reuse_next) {
        if (h->segments != NULL || adopt) {
            got += heap_trim(h, adopt);
            adopt = false;
        }
    }
    if (adopt) {
        arena__heap_t *h = heap_struct_new();
        if (h != NULL) {
            got += heap_trim(h, true);
            h->reuse_next = list;
            list = h;
        }
    }
    (void)pthread_mutex_lock(&heaps_lock);
    while (list != NULL) {
        arena__heap_t *next = list->reuse_next;
        reuse_push_locked(list);
        list = next;
    }
    (void)pthread_mutex_unlock(&heaps_lock);
    return got;
}

long long arena__heap_trim(void)
{
    arena__heap_t *heap = heap_get();
    if (heap == NULL) {
        return 0;
    }
    long long got = heap_trim(heap, true) + trim_idle_heaps();
    /* Parked segments that still hold pages lose them too. */
    return got + (long long)arena__region_park_purge(true, arena__now_ms());
}

/* Pressure from the daemon (park.h trim hook, run after a connection
 * exchange). Every heap trims itself at its next slow path (the epoch), and
 * the calling thread's heap at once (adopting and returning what exited
 * threads left; a thread with no heap, such as the notification thread,
 * only trims the abandoned segments and leaves them abandoned), unless this
 * thread is inside a region call of the allocator, i.e. in the middle of
 * changing its own heap: trimming there would re-enter it. Then the parking
 * cache is released outright (alloc/internal.h says why). */
static long long heaps_trim_hook(void)
{
    (void)atomic_fetch_add_explicit(&pressure_epoch, 1, memory_order_relaxed);
    if (arena__region_in_call()) {
        return 0;
    }
    arena__heap_t *heap = tls_heap;
    long long got;
    if (!heap_is_real(heap)) {
        got = trim_idle_heaps();
    } else {
        heap->pressure_seen = atomic_load_explicit(&pressure_epoch, memory_order_relaxed);
        got = heap_trim(heap, true) + trim_idle_heaps();
    }
    return got + arena__region_park_release();
}

static int64_t live_sum(void)
{
    int64_t live = ARENA__ATOMIC_LOAD_RELAXED(&arena__stat_live_orphan);
    (void)pthread_mutex_lock(&heaps_lock);
    for (arena__heap_t *h = heaps_all; h != NULL; h = h->all_next) {
        live += ARENA__ATOMIC_LOAD_RELAXED(&h->xlive);
    }
    (void)pthread_mutex_unlock(&heaps_lock);
    return live;
}

void arena__heap_publish_live(void)
{
    int64_t live = live_sum();
    arena__region_publish_live(live > 0 ? (uint64_t)live : 0);
}

int arena__heap_stats(arena_stats_t *ret_stats)
{
    if (ret_stats == NULL) {
        return -EINVAL;
    }
    if (heap_is_real(tls_heap)) {
        arena__heap_settle(tls_heap); /* exact for the calling thread */
    }
    int64_t live = live_sum();
    int64_t leased = ARENA__ATOMIC_LOAD_RELAXED(&arena__stat_leased);
    int64_t leases = ARENA__ATOMIC_LOAD_RELAXED(&arena__stat_leases);
    int64_t parked = ARENA__ATOMIC_LOAD_RELAXED(&arena__stat_parked);
    int64_t purged = ARENA__ATOMIC_LOAD_RELAXED(&arena__stat_purged);
    ret_stats->leased_bytes = leased > 0 ? (uint64_t)leased : 0;
    ret_stats->live_bytes = live > 0 ? (uint64_t)live : 0;
    ret_stats->parked_bytes = (parked > 0 ? (uint64_t)parked : 0) + arena__region_parked_bytes();
    ret_stats->purged_bytes = purged > 0 ? (uint64_t)purged : 0;
    ret_stats->lease_count = leases > 0 ? (uint64_t)leases : 0;
    return 0;
}

/* ---- validator (tests) ----------------------------------------------------- */

static bool segment_is_valid(const arena__heap_t *heap, const arena__segment_t *seg,
                             size_t *ret_free_spans)
{
    if (ARENA__ATOMIC_LOAD_RELAXED(&seg->xowner) != heap || seg->hdr.kind != ARENA__SEG_SPANS) {
        return false;
    }
    uint32_t used = 0, zeros = 0;
    size_t free_spans = 0;
    bool prev_free = false;
    for (uint32_t w = 0; w < ARENA__SEG_WORDS; w++) {
        zeros += (uint32_t)__builtin_popcountll(seg->zero[w]);
    }
    for (uint32_t i = 0; i < ARENA__SEG_SLICES;) {
        const arena__page_t *p = &seg->pages[i];
        uint32_t n = p->slice_count;
        if (n == 0 || i + n > ARENA__SEG_SLICES || p->segment != seg ||
            p->start != (uint8_t *)seg->hdr.base + ((size_t)i << ARENA__SLICE_SHIFT) ||
            seg->span_start[i] != i || seg->span_start[i + n - 1] != i) {
            return false;
        }
        for (uint32_t j = i + 1; j < i + n; j++) {
            if (seg->pages[j].kind != ARENA__PAGE_NONE ||
                (p->kind != ARENA__PAGE_FREE && seg->span_start[j] != i)) {
                return false;
            }
        }
        if (p->kind == ARENA__PAGE_FREE) {
            if (prev_free) {
                return false; /* two free neighbours: a missed merge */
            }
            free_spans++;
        } else if (p->kind == ARENA__PAGE_SMALL) {
            size_t bytes = (size_t)n << ARENA__SLICE_SHIFT;
            if (p->bsize != arena__class_size(p->cls) || p->reserved != bytes / p->bsize ||
                p->capacity > p->reserved || p->used > p->capacity) {
                return false;
            }
            uint32_t nfree = 0;
            for (const arena__block_t *b = p->free; b != NULL; b = b->next) {
                size_t off = (size_t)((const uint8_t *)b - p->start);
                if ((const uint8_t *)b < p->start || off % p->bsize != 0 ||
                    off / p->bsize >= p->capacity || ++nfree > p->capacity) {
                    return false;
                }
            }
            if (nfree + p->used != p->capacity) {
                return false;
            }
            used += n;
        } else if (p->kind == ARENA__PAGE_LARGE) {
            used += n;
        } else {
            return false;
        }
        prev_free = p->kind == ARENA__PAGE_FREE;
        i += n;
    }
    if (used != seg->used_slices || zeros != seg->zero_slices || seg->is_empty != (used == 0)) {
        return false;
    }
    *ret_free_spans += free_spans;
    return true;
}

bool arena__heap_is_valid(void)
{
    const arena__heap_t *heap = tls_heap;
    if (!heap_is_real(heap)) {
        return true;
    }
    size_t free_spans = 0;
    uint32_t empties = 0;
    for (const arena__segment_t *seg = heap->segments; seg != NULL; seg = seg->next) {
        if (!segment_is_valid(heap, seg, &free_spans)) {
            return false;
        }
        empties += seg->is_empty ? 1u : 0u;
    }
    if (empties != heap->empty_segments) {
        return false;
    }
    size_t binned = 0;
    for (unsigned b = 0; b < ARENA__SPAN_BINS; b++) {
        for (const arena__page_t *p = heap->bins[b].first; p != NULL; p = p->next) {
            if (p->kind != ARENA__PAGE_FREE || 31u - (unsigned)__builtin_clz(p->slice_count) != b ||
                ARENA__ATOMIC_LOAD_RELAXED(&p->segment->xowner) != heap) {
                return false;
            }
            binned++;
        }
    }
    if (binned != free_spans) {
        return false;
    }
    for (unsigned c = 0; c < ARENA__NCLASSES; c++) {
        for (const arena__page_t *p = heap->queues[c].first; p != NULL; p = p->next) {
            if (p->kind != ARENA__PAGE_SMALL || p->cls != c || p->in_full) {
                return false;
            }
        }
        const arena__page_t *cur = heap->current[c];
        if (cur != &arena__page_empty && (cur->kind != ARENA__PAGE_SMALL || cur->cls != c)) {
            return false;
        }
    }
    for (size_t i = 0; i < ARENA__DIRECT_SLOTS; i++) {
        if (heap->direct[i] != heap->current[arena__size_class(i << 3)]) {
            return false;
        }
    }
    for (const arena__page_t *p = heap->full.first; p != NULL; p = p->next) {
        if (p->kind != ARENA__PAGE_SMALL || !p->in_full) {
            return false;
        }
    }
    return true;
}

/* ---- fork ------------------------------------------------------------------ */

/* The handlers may run twice per fork (our pthread_atfork registration, and
 * a caller such as the preload library that calls the arena__heap_atfork_*
 * functions from its own handlers): a per-thread depth makes the inner calls
 * no-ops. The forking thread's TLS is copied into the child, depth included. */
static __thread int fork_depth;

static void heaps_atfork_prepare(void)
{
    if (fork_depth++ > 0) {
        return;
    }
    (void)pthread_mutex_lock(&heaps_lock);
    arena__segment_lock();
    arena__region_atfork_prepare();
}

static void heaps_atfork_parent(void)
{
    if (fork_depth <= 0 || --fork_depth > 0) {
        return;
    }
    arena__region_atfork_parent();
    arena__segment_unlock();
    (void)pthread_mutex_unlock(&heaps_lock);
}

static void heaps_atfork_child(void)
{
    if (fork_depth > 0) {
        if (--fork_depth > 0) {
            return;
        }
        /* The child is single-threaded: release what prepare took (the
         * region handler releases its own locks once it has copied). */
        arena__segment_unlock();
        (void)pthread_mutex_unlock(&heaps_lock);
    }
    arena__region_atfork_child();
}

void arena__heap_atfork_prepare(void)
{
    heaps_atfork_prepare();
}

void arena__heap_atfork_parent(void)
{
    heaps_atfork_parent();
}

void arena__heap_atfork_child(void)
{
    heaps_atfork_child();
}
