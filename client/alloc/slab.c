/* SPDX-License-Identifier: MIT
 *
 * slab.c -- typed slabs: fixed-size objects with immediate slot reuse.
 *
 * A slab hands out slots of one stride (object size rounded up to the
 * alignment) carved from chunks, which are regions (daemon leases, or the
 * anonymous fallback) from region.c. A freed slot is reused by the next alloc
 * of the same thread at once, so a task runtime that spawns and drops objects
 * keeps touching the same few cache lines.
 *
 * Per-thread caches. Every thread that touches a slab gets a small integer, its
 * thread index (a bit in a process-wide bitmap, given back by a pthread key
 * destructor when the thread exits), and each slab holds one cache line per
 * index: a singly linked list of free slots threaded through the slots
 * themselves, used by that thread alone with plain loads and stores. The fast
 * paths are a TLS load, a pointer pop or push and a counter update. A thread
 * that exits leaves its cache in every slab as it is; the next thread given
 * the same index inherits it (the bitmap's release/acquire pair orders the
 * hand-over), so nothing leaks across thread churn and no slab ever needs to
 * know which threads exist. Threads beyond ARENA__SLAB_MAX_THREADS share one
 * overflow cache under a mutex: correct, just slower. In a fork child the
 * indexes of the threads that did not come along are free again.
 *
 * Shared stack. A cache that grows past its high watermark moves its colder
 * part to the slab's shared stack, a Treiber stack of slot chains: pushes CAS
 * a whole chain on (release), and a thread whose cache runs dry takes the
 * whole stack with one exchange (acquire). No thread ever pops a single node
 * from the shared stack, so there is no ABA: a pusher's CAS only compares the
 * head it linked its tail to, which is all it needs. Frees from other threads
 * thus flow to allocating threads in batches without any lock.
 *
 * Growth. When a thread's cache and the shared stack are both empty, the
 * thread carves a batch of fresh slots from the current chunk under the
 * slab's mutex, acquiring a new chunk (doubling in size up to 4 MiB) when the
 * current one is used up. That lock is only taken while the slab grows; a slab
 * at its steady-state size never takes it.
 *
 * Metadata is out of band: the slab header, the caches and the chunk records
 * live in anonymous mappings of their own, never in leased memory. The only
 * things kept inside chunks are the free-list links in free slots, which are
 * never purged while the chunk is held. arena_slab_destroy() gives every chunk
 * back. arena__slab_is_valid() checks the invariants for tests.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arena.h"
#include "alloc/internal.h"

#define SLAB_CACHE_LINE        64u
#define SLAB_MIN_CHUNK         ((size_t)64 * 1024)
#define SLAB_MAX_CHUNK         ((size_t)4 * 1024 * 1024)
#define SLAB_BATCH_BYTES       ((size_t)16 * 1024)
#define SLAB_BATCH_MIN         8
#define SLAB_BATCH_MAX         256
#define SLAB_RECORDS_PER_BLOCK 126

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* One thread's free slots in one slab. Touched only by the thread holding the
 * index (or, for the overflow cache, under overflow_lock); padded to a cache
 * line so threads never share one. count is the list length when every slot
 * on it was pushed by this cache; after a refill from the shared stack it is
 * a lower bound (it may go negative), which only delays the next spill. */
struct slab_cache {
    void *free;
    long count;
} __attribute__((aligned(SLAB_CACHE_LINE)));

/* Chunk records: blocks of region records in anonymous pages, chained. */
struct slab_records {
    struct slab_records *next;
    size_t used;
    arena__region_t region[SLAB_RECORDS_PER_BLOCK];
};

struct arena_slab {
    size_t object_size; /* as asked */
    size_t stride;      /* bytes per slot: object_size rounded up to align */
    size_t align;
    long batch;              /* slots moved per refill or spill */
    long spill_at;           /* a cache longer than this spills: 2 * batch */
    size_t map_size;         /* bytes of this header mapping */
    _Atomic(void *) xshared; /* shared stack of free slot chains (see head) */

    pthread_mutex_t grow_lock; /* guards everything below up to caches */
    char *carve;               /* next never-used slot of the current chunk */
    char *carve_end;
    size_t next_chunk; /* size of the next chunk to acquire */
    size_t chunk_count;
    size_t chunk_bytes;
    struct slab_records *records;

    pthread_mutex_t overflow_lock; /* guards caches[ARENA__SLAB_MAX_THREADS] */
    struct slab_cache caches[ARENA__SLAB_MAX_THREADS + 1];
};

/* ---- thread indexes ---------------------------------------------------------
 * A process-wide bitmap of indexes in use. A thread claims the lowest clear bit
 * with a CAS (acquire: it sees everything the index's previous holder wrote to
 * its caches) and clears it at exit with fetch_and (release). */

#define SLAB_INDEX_WORDS (ARENA__SLAB_MAX_THREADS / 64)

static _Atomic uint64_t slab_index_xbits[SLAB_INDEX_WORDS];
static pthread_key_t slab_index_key;
static pthread_once_t slab_index_once = PTHREAD_ONCE_INIT;
static bool slab_index_key_ok;
/* 0: no index yet; i + 1: holds index i; ARENA__SLAB_MAX_THREADS + 1: overflow. */
static __thread unsigned slab_tid __attribute__((tls_model("initial-exec")));

static void slab_index_release(void *value)
{
    unsigned idx = (unsigned)(uintptr_t)value - 1;

    if (idx < ARENA__SLAB_MAX_THREADS)
        atomic_fetch_and_explicit(&slab_index_xbits[idx / 64], ~((uint64_t)1 << (idx % 64)),
                                  memory_order_release);
    slab_tid = 0;
}

/* In a fork child only the forking thread exists: every other index is free
 * again (its cache, with its slots, goes to the next thread that claims it). */
static void slab_index_atfork_child(void)
{
    unsigned t = slab_tid - 1;

    for (unsigned w = 0; w < SLAB_INDEX_WORDS; w++)
        atomic_store_explicit(&slab_index_xbits[w], 0, memory_order_relaxed);
    if (t < ARENA__SLAB_MAX_THREADS)
        atomic_store_explicit(&slab_index_xbits[t / 64], (uint64_t)1 << (t % 64),
                              memory_order_relaxed);
}

static void slab_index_init(void)
{
    slab_index_key_ok = pthread_key_create(&slab_index_key, slab_index_release) == 0;
    (void)pthread_atfork(NULL, NULL, slab_index_atfork_child);
}

static __attribute__((noinline)) unsigned slab_index_claim(void)
{
    (void)pthread_once(&slab_index_once, slab_index_init);
    if (!slab_index_key_ok)
        return ARENA__SLAB_MAX_THREADS;
    for (unsigned w = 0; w < SLAB_INDEX_WORDS; w++) {
        uint64_t bits = atomic_load_explicit(&slab_index_xbits[w], memory_order_relaxed);
        while (bits != UINT64_MAX) {
            unsigned bit = (unsigned)__builtin_ctzll(~bits);
            if (atomic_compare_exchange_weak_explicit(&slab_index_xbits[w], &bits,
                                                      bits | ((uint64_t)1 << bit),
                                                      memory_order_acquire, memory_order_relaxed)) {
                unsigned idx = w * 64 + bit;
                if (pthread_setspecific(slab_index_key, (void *)(uintptr_t)(idx + 1)) != 0) {
                    atomic_fetch_and_explicit(&slab_index_xbits[w], ~((uint64_t)1 << bit),
                                              memory_order_release);
                    return ARENA__SLAB_MAX_THREADS;
                }
                return idx;
            }
        }
    }
    return ARENA__SLAB_MAX_THREADS;
}

/* The calling thread's index, claiming one on first use; ARENA__SLAB_MAX_THREADS
 * means the shared overflow cache. */
static inline unsigned slab_index(void)
{
    unsigned t = slab_tid - 1;
    if (likely(t < ARENA__SLAB_MAX_THREADS))
        return t;
    if (slab_tid == 0)
        slab_tid = slab_index_claim() + 1;
    return slab_tid - 1;
}

/* See alloc/internal.h. Claims an index on first use. */
unsigned arena__slab_thread_index(void)
{
    return slab_index();
}

/* ---- chunks ------------------------------------------------------------------ */

static size_t slab_page_size(void)
{
    long p = getpagesize();
    return p > 0 ? (size_t)p : 4096;
}

static void *slab_map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Records a region; grow_lock held. Returns 0 or -ENOMEM. */
static int slab_record(arena_slab_t *slab, const arena__region_t *region)
{
    struct slab_records *r = slab->records;

    if (!r || r->used == SLAB_RECORDS_PER_BLOCK) {
        r = slab_map(sizeof(*r));
        if (!r)
            return -ENOMEM;
        r->next = slab->records;
        slab->records = r;
    }
    r->region[r->used++] = *region;
    slab->chunk_count++;
    slab->chunk_bytes += region->size;
    /* Counted in arena_stats() with the allocator's own regions. */
    arena__atomic_add_relaxed(&arena__stat_leased, (int64_t)region->size);
    arena__atomic_add_relaxed(&arena__stat_leases, 1);
    return 0;
}

/* Makes a new current chunk; grow_lock held. Returns 0 or a region error. */
static int slab_grow(arena_slab_t *slab)
{
    arena__region_t region;
    size_t page = slab_page_size();
    int r;

    r = arena__region_acquire(slab->next_chunk, page, &region);
    if (r < 0)
        return r;
    r = slab_record(slab, &region);
    if (r < 0) {
        (void)arena__region_release(&region);
        return r;
    }
    slab->carve = region.addr;
    slab->carve_end = (char *)region.addr + region.size / slab->stride * slab->stride;
    if (slab->next_chunk < SLAB_MAX_CHUNK)
        slab->next_chunk *= 2;
    return 0;
}

/* Carves up to slab->batch fresh slots into a chain; grow_lock held. Returns
 * the chain's head and stores its length, or NULL (errno set). */
static void *slab_carve(arena_slab_t *slab, long *ret_count)
{
    char *head = NULL;
    long n;

    if ((size_t)(slab->carve_end - slab->carve) < slab->stride) {
        int r = slab_grow(slab);
        if (r < 0) {
            errno = r == -EINVAL ? EINVAL : ENOMEM;
            return NULL;
        }
    }
    for (n = 0; n < slab->batch && (size_t)(slab->carve_end - slab->carve) >= slab->stride; n++) {
        /* Slots are carved top-down so the chain comes out in address order. */
        slab->carve_end -= slab->stride;
        *(void **)slab->carve_end = head;
        head = slab->carve_end;
    }
    *ret_count = n;
    return head;
}

/* ---- shared stack -------------------------------------------------------------- */

/* Pushes the chain first..last. The release CAS publishes the links written
 * into the chain (and, by the release sequence, those of earlier pushes). */
static void slab_shared_push(arena_slab_t *slab, void *first, void *last)
{
    void *head = atomic_load_explicit(&slab->xshared, memory_order_relaxed);
    do {
        *(void **)last = head;
    } while (!atomic_compare_exchange_weak_explicit(&slab->xshared, &head, first,
                                                    memory_order_release, memory_order_relaxed));
}

/* Takes the whole shared stack (acquire pairs with the pushes' release). */
static void *slab_shared_take(arena_slab_t *slab)
{
    if (atomic_load_explicit(&slab->xshared, memory_order_relaxed) == NULL)
        return NULL;
    return atomic_exchange_explicit(&slab->xshared, NULL, memory_order_acquire);
}

/* ---- caches -------------------------------------------------------------------- */

/* Refills an empty cache; returns one slot or NULL (errno set). */
static __attribute__((noinline)) void *slab_refill(arena_slab_t *slab, struct slab_cache *c)
{
    long n = 0;
    void *p = slab_shared_take(slab);

    if (p) {
        /* Length unknown: count becomes a lower bound (see struct slab_cache). */
        c->free = *(void **)p;
        c->count = 0;
        return p;
    }
    if (pthread_mutex_lock(&slab->grow_lock) != 0) {
        errno = ENOMEM;
        return NULL;
    }
    p = slab_carve(slab, &n);
    (void)pthread_mutex_unlock(&slab->grow_lock);
    if (!p)
        return NULL;
    c->free = *(void **)p;
    c->count = n - 1;
    return p;
}

/* Moves all but the hottest slab->batch slots of a full cache to the shared
 * stack. The walk is O(count) and happens once per batch of frees. */
static __attribute__((noinline)) void slab_spill(arena_slab_t *slab, struct slab_cache *c)
{
    void *keep_last = c->free;
    void *first, *last;
    long kept = 1;

    while (kept < slab->batch && *(void **)keep_last) {
        keep_last = *(void **)keep_last;
        kept++;
    }
    first = *(void **)keep_last;
    if (!first) {
        c->count = kept;
        return;
    }
    *(void **)keep_last = NULL;
    for (last = first; *(void **)last; last = *(void **)last)
        ;
    slab_shared_push(slab, first, last);
    c->count = kept;
}

static __attribute__((noinline)) void *slab_alloc_overflow(arena_slab_t *slab)
{
    struct slab_cache *c = &slab->caches[ARENA__SLAB_MAX_THREADS];
    void *p;

    if (pthread_mutex_lock(&slab->overflow_lock) != 0) {
        errno = ENOMEM;
        return NULL;
    }
    p = c->free;
    if (p) {
        c->free = *(void **)p;
        c->count--;
    } else {
        p = slab_refill(slab, c);
    }
    (void)pthread_mutex_unlock(&slab->overflow_lock);
    return p;
}

static __attribute__((noinline)) void slab_free_overflow(arena_slab_t *slab, void *ptr)
{
    struct slab_cache *c = &slab->caches[ARENA__SLAB_MAX_THREADS];

    if (pthread_mutex_lock(&slab->overflow_lock) != 0) {
        /* Cannot happen with a default mutex; keep the slot anyway. */
        slab_shared_push(slab, ptr, ptr);
        return;
    }
    *(void **)ptr = c->free;
    c->free = ptr;
    if (++c->count > slab->spill_at)
        slab_spill(slab, c);
    (void)pthread_mutex_unlock(&slab->overflow_lock);
}

/* ---- public API ------------------------------------------------------------------ */

/* See arena.h. Returns 0 and *ret_slab, -EINVAL (object_size 0 or above
 * ARENA__SLAB_MAX_OBJECT, align not a power of two or above 4096, ret_slab
 * NULL), -ENOMEM, or the region error for the first chunk (ARENA_ENODAEMON:
 * no daemon and no fallback); *ret_slab untouched on failure.
 * Example:
 *     arena_slab_t *tasks;
 *     if (arena_slab_create(sizeof(struct task), 0, &tasks) == 0) {
 *         struct task *t = arena_slab_alloc(tasks);
 *         ...
 *         arena_slab_free(tasks, t);
 *         arena_slab_destroy(tasks);
 *     } */
int arena_slab_create(size_t object_size, size_t align, arena_slab_t **ret_slab)
{
    arena_slab_t *slab;
    size_t stride, map_size, page = slab_page_size();
    long batch;
    int r;

    if (!ret_slab || object_size == 0 || object_size > ARENA__SLAB_MAX_OBJECT)
        return -EINVAL;
    if (align == 0)
        align = object_size >= 16 ? 16 : 8;
    if ((align & (align - 1)) != 0 || align > 4096)
        return -EINVAL;
    if (align < 8)
        align = 8; /* a free slot holds a pointer */
    stride = (object_size + align - 1) & ~(align - 1);
    /* The fork handlers must be in place before the slab's first region. */
    arena__heap_init();

    batch = (long)(SLAB_BATCH_BYTES / stride);
    if (batch < SLAB_BATCH_MIN)
        batch = SLAB_BATCH_MIN;
    if (batch > SLAB_BATCH_MAX)
        batch = SLAB_BATCH_MAX;

    map_size = (sizeof(*slab) + page - 1) & ~(page - 1);
    slab = slab_map(map_size);
    if (!slab)
        return -ENOMEM;
    slab->object_size = object_size;
    slab->stride = stride;
    slab->align = align;
    slab->batch = batch;
    slab->spill_at = 2 * batch;
    slab->map_size = map_size;
    atomic_init(&slab->xshared, NULL);
    slab->next_chunk = SLAB_MIN_CHUNK;
    while (slab->next_chunk < SLAB_MAX_CHUNK && slab->next_chunk < 16 * stride)
        slab->next_chunk *= 2;
    if (slab->next_chunk < 16 * stride)
        slab->next_chunk = (16 * stride + page - 1) & ~(page - 1);
    if (pthread_mutex_init(&slab->grow_lock, NULL) != 0) {
        r = -ENOMEM;
        goto fail_map;
    }
    if (pthread_mutex_init(&slab->overflow_lock, NULL) != 0) {
        r = -ENOMEM;
        goto fail_grow_lock;
    }
    /* The first chunk now, so a missing daemon shows here and not at the
     * first alloc. */
    r = slab_grow(slab);
    if (r < 0)
        goto fail_overflow_lock;
    *ret_slab = slab;
    return 0;

fail_overflow_lock:
    (void)pthread_mutex_destroy(&slab->overflow_lock);
fail_grow_lock:
    (void)pthread_mutex_destroy(&slab->grow_lock);
fail_map:
    (void)munmap(slab, map_size);
    return r;
}

/* Everything arena_slab_alloc()'s fast path does not handle: a NULL slab, a
 * thread without an index yet, the overflow cache, an empty cache. */
static __attribute__((noinline)) void *slab_alloc_slow(arena_slab_t *slab)
{
    unsigned t;

    if (!slab) {
        errno = EINVAL;
        return NULL;
    }
    t = slab_index();
    if (t >= ARENA__SLAB_MAX_THREADS)
        return slab_alloc_overflow(slab);
    return arena_slab_alloc(slab);
}

/* See arena.h. One slot, the one this thread freed last when there is one;
 * NULL with errno EINVAL (slab NULL) or ENOMEM (no chunk could be had). The
 * memory is not zeroed. Lock-free unless the slab must grow. */
void *arena_slab_alloc(arena_slab_t *slab)
{
    unsigned t = slab_tid - 1;

    if (likely(slab != NULL && t < ARENA__SLAB_MAX_THREADS)) {
        struct slab_cache *c = &slab->caches[t];
        void *p = c->free;
        if (likely(p != NULL)) {
            c->free = *(void **)p;
            c->count--;
            return p;
        }
        return slab_refill(slab, c);
    }
    return slab_alloc_slow(slab);
}

static __attribute__((noinline)) void slab_free_slow(arena_slab_t *slab, void *ptr)
{
    if (!slab || !ptr)
        return;
    if (slab_index() >= ARENA__SLAB_MAX_THREADS)
        slab_free_overflow(slab, ptr);
    else
        arena_slab_free(slab, ptr);
}

/* See arena.h. ptr must come from arena_slab_alloc() on the same slab (any
 * thread); NULL slab or ptr is a no-op. The slot goes to this thread's cache. */
void arena_slab_free(arena_slab_t *slab, void *ptr)
{
    unsigned t = slab_tid - 1;

    if (likely(slab != NULL && ptr != NULL && t < ARENA__SLAB_MAX_THREADS)) {
        struct slab_cache *c = &slab->caches[t];
        *(void **)ptr = c->free;
        c->free = ptr;
        if (unlikely(++c->count > slab->spill_at))
            slab_spill(slab, c);
        return;
    }
    slab_free_slow(slab, ptr);
}

/* See arena.h. Gives every chunk back; no thread may use the slab or its
 * objects afterwards. NULL-safe. */
void arena_slab_destroy(arena_slab_t *slab)
{
    struct slab_records *r, *next;

    if (!slab)
        return;
    for (r = slab->records; r; r = next) {
        next = r->next;
        for (size_t i = 0; i < r->used; i++) {
            arena__atomic_add_relaxed(&arena__stat_leased, -(int64_t)r->region[i].size);
            arena__atomic_add_relaxed(&arena__stat_leases, -1);
            (void)arena__region_release(&r->region[i]);
        }
        (void)munmap(r, sizeof(*r));
    }
    (void)pthread_mutex_destroy(&slab->overflow_lock);
    (void)pthread_mutex_destroy(&slab->grow_lock);
    (void)munmap(slab, slab->map_size);
}

/* ---- introspection for tests -------------------------------------------------------- */

/* See alloc/internal.h. */
void arena__slab_info(arena_slab_t *slab, arena__slab_info_t *ret_info)
{
    arena__slab_info_t info = {0};

    (void)pthread_mutex_lock(&slab->grow_lock);
    info.stride = slab->stride;
    info.align = slab->align;
    info.chunk_count = slab->chunk_count;
    info.chunk_bytes = slab->chunk_bytes;
    (void)pthread_mutex_unlock(&slab->grow_lock);
    *ret_info = info;
}

/* True when ptr is the start of a slot of one of the slab's chunks. */
static bool slab_is_slot(arena_slab_t *slab, const void *ptr)
{
    for (struct slab_records *r = slab->records; r; r = r->next)
        for (size_t i = 0; i < r->used; i++) {
            uintptr_t base = (uintptr_t)r->region[i].addr;
            uintptr_t p = (uintptr_t)ptr;
            if (p >= base && p < base + r->region[i].size / slab->stride * slab->stride)
                return (p - base) % slab->stride == 0;
        }
    return false;
}

static bool slab_list_is_valid(arena_slab_t *slab, const void *head, long limit)
{
    for (long n = 0; head; n++) {
        if (n > limit || !slab_is_slot(slab, head))
            return false;
        head = *(void *const *)head;
    }
    return true;
}

/* See alloc/internal.h. */
bool arena__slab_is_valid(arena_slab_t *slab)
{
    long limit;
    bool ok = true;

    if (!slab)
        return false;
    (void)pthread_mutex_lock(&slab->grow_lock);
    limit = (long)(slab->chunk_bytes / slab->stride);
    if (slab->stride % slab->align != 0 || slab->stride < slab->object_size)
        ok = false;
    if (ok && slab->carve != slab->carve_end && !slab_is_slot(slab, slab->carve))
        ok = false;
    if (ok)
        ok = slab_list_is_valid(slab, atomic_load_explicit(&slab->xshared, memory_order_acquire),
                                limit);
    if (ok) {
        unsigned t = slab_index();
        ok = slab_list_is_valid(slab, slab->caches[t].free, limit);
    }
    (void)pthread_mutex_unlock(&slab->grow_lock);
    return ok;
}
