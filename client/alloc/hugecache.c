/* SPDX-License-Identifier: MIT
 *
 * hugecache.c -- freed huge blocks kept mapped and resident for reuse
 * (declared in alloc/internal.h).
 *
 * A huge object (above ARENA__LARGE_MAX) has a block of its own: a region,
 * or a few joined end to end (below). When it is freed, its block stays
 * mapped, ACTIVE and registered here, pages and all:
 * no system call on the free and none on a reuse, and a reused block takes
 * no page faults (faulting 4 KiB back in costs ~3.4 us; a program that
 * replaces 5-25 MiB blocks ran 3.5x glibc's time and took 7.8 M faults when
 * every freed block was purged). A kept block leaves the cache purged
 * (MADV_REMOVE; MADV_DONTNEED for private memory) and given back
 * (arena__region_give_back(): parked, the daemon may take it, or released)
 * when
 *   - it has been kept for the decay time (ARENA__DECAY_MS): the heaps'
 *     purge tick, through region.c's park purge, and every get or put here;
 *   - arena_trim() / malloc_trim() (the heaps' trim: a forced park purge)
 *     or pressure from the daemon (park release): all of them at once;
 *   - the bound below is passed; it is enforced at every put, oldest first;
 *   - a get misses for a request larger than the block (the growth rule),
 *     unless it is the one joined (below);
 *   - the process forks (see below).
 *
 * Joins. A miss for a request larger than every kept block would fault in
 * a whole new block while the kept ones wait to be purged: on the
 * replacement pattern that was 266 k faults for 300 replacements, more
 * than glibc's 222 k (its heap splits and merges freed chunks). So the
 * largest kept block smaller than the request becomes the head of the new
 * block: a region for the rest is acquired, a reservation of the whole
 * size is mapped (PROT_NONE), and the head's parts and the new region are
 * moved end to end into it (arena__region_move(): mremap, the pages come
 * along; nothing is copied or faulted again). Only the rest is leased and
 * faulted in: 138 k faults and 1.1-1.3 s instead of 1.85-2.15 s on that
 * pattern (tcmalloc 114 k). A block is then several leases, each still a
 * region of its own (registered, copied in place by the fork child
 * handler, purged and given back part by part), at most ARENA__HUGE_PARTS
 * of them; a block with no part to spare is not joined again, and a later
 * miss leases a whole new block while the growth rule gives the full one
 * back. With four parts that happened 27 times in the 300 replacements;
 * eight took 127.6 k faults instead of 137.9 k and 1.20 s instead of
 * 1.30 s (median of 5; sixteen changed nothing more). Joining the
 * two largest blocks instead of one saved 3% more faults in simulation,
 * at a higher peak, so it is not done. If a move fails, every part goes
 * back and the request takes a new block.
 *
 * The fit: a request takes the smallest kept block that is at least its
 * size and at most HUGE_FIT_FACTOR times it (aligned as asked), the oldest
 * among equals. A larger block keeps its pages, so up to three quarters of
 * it may be resident but unused while it lives; purging the unused tail at
 * reuse would bound that, but the next larger request faults it all back
 * in (simulated on the replacement pattern: 2.5x the faults), so it is not
 * done.
 *
 * The bound, and why Python's peak does not move. Resident kept bytes stay
 * under HUGE_CACHE_BYTES and under 1/HUGE_CACHE_LIVE_DIV of the live huge
 * bytes (blocks handed out and not freed), so a program that frees its last
 * huge block keeps nothing (what bench-rss measures), one with 300 MiB of
 * huge blocks keeps at most 75 MiB, and none keeps more than 128 MiB.
 * Growth is the other case: a list or dict that grows frees a block per
 * step, and every new block is larger than every freed one, so kept blocks
 * would only add to the peak (parking them resident raised python3's peak
 * RSS under the preload from 229 MB to 280-300 MB). Hence the growth rule:
 * a get that misses first purges every kept block smaller than the
 * request but the one it joins, before the new region is leased and
 * faulted in (the joined one adds nothing to the peak: its pages become
 * the new block's); a growing
 * program then keeps at most the one block it freed last, and only until
 * its next step. Measured: python3 building a 300k-entry dict, a JSON round
 * trip and a sort under the preload peaks at 207.5 MB against 203.8 MB
 * with nothing kept (glibc: 221 MB); with a half of the live bytes as the
 * bound, 208.6 MB.
 *
 * The figures were chosen by simulating the replacement pattern (20 slots,
 * 2,000 random 5-25 MiB blocks) and measured with bench-rss --big-blocks:
 * factor 4, a quarter of the live bytes and 128 MiB take 0.9 M faults
 * instead of 7.7 M, 1.35x glibc's time instead of 4.8x, at a peak of 1.11x
 * glibc's (0.80x with nothing kept). Factor 2 took twice the faults at a 5%
 * lower peak; applying the growth rule only when the live bytes reach a new
 * high took a third fewer faults at a 9% higher peak (simulated).
 *
 * Fork: region.c's child handler copies every registered shared region,
 * and kept blocks are registered, dead memory; so the prepare handler
 * (registered with the first put) gives the cache back first, and holds the
 * lock across the fork. posix_spawn and vfork run no handlers.
 *
 * Thread-safe: one mutex (hc_lock) around the array, taken on huge gets and
 * puts and ticks only, never held across a system call or a region call.
 * It is a leaf lock, except in the fork prepare handler, which takes it
 * before the heaps' handlers take theirs. Never calls malloc.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "conn.h"
#include "alloc/internal.h"

#define HUGE_CACHE_MAX      32u                 /* entries */
#define HUGE_CACHE_BYTES    ((size_t)128 << 20) /* resident bytes kept at most */
#define HUGE_CACHE_LIVE_DIV 4u                  /* ... and at most live huge bytes / this */
#define HUGE_FIT_FACTOR     4u                  /* a block serves requests down to 1/this */

typedef struct kept {
    arena__hblock_t block;
    uint64_t kept_ms; /* when it was freed (arena__now_ms()) */
} kept_t;

static pthread_mutex_t hc_lock = PTHREAD_MUTEX_INITIALIZER;
static kept_t kept[HUGE_CACHE_MAX]; /* oldest first (hc_lock) */
static size_t kept_len;             /* hc_lock */
/* Relaxed atomics: statistics and cheap "anything to do" tests, written
 * under hc_lock (kept_*) or anywhere (live, the counters). */
static _Atomic int64_t kept_bytes;
static _Atomic uint32_t kept_count;
static _Atomic int64_t live_bytes;
static _Atomic uint64_t hc_hits, hc_misses, hc_dropped, hc_joined;

static pthread_once_t hc_once = PTHREAD_ONCE_INIT;

/* Purges a block that leaves the cache and gives it back (parked or
 * released by region.c), part by part. Returns its bytes. */
static size_t kept_drop(arena__hblock_t block)
{
    for (uint32_t i = 0; i < block.nparts; i++) {
        arena__region_t *part = &block.parts[i];
        /* zeroed tells the parking cache that nothing is left to purge. */
        part->zeroed = arena__region_purge(part->anonymous, part->addr, part->size);
        (void)arena__region_give_back(part);
    }
    atomic_fetch_add_explicit(&hc_dropped, 1, memory_order_relaxed);
    return block.size;
}

/* Removes entry i; hc_lock held. */
static void kept_forget(size_t i)
{
    arena__atomic_add_relaxed(&kept_bytes, -(int64_t)kept[i].block.size);
    memmove(&kept[i], &kept[i + 1], (kept_len - i - 1) * sizeof(kept[0]));
    kept_len--;
    atomic_store_explicit(&kept_count, (uint32_t)kept_len, memory_order_relaxed);
}

/* The bound of the head for the current live bytes. */
static int64_t kept_limit(void)
{
    int64_t live = atomic_load_explicit(&live_bytes, memory_order_relaxed);
    int64_t cap = live > 0 ? live / (int64_t)HUGE_CACHE_LIVE_DIV : 0;
    return cap < (int64_t)HUGE_CACHE_BYTES ? cap : (int64_t)HUGE_CACHE_BYTES;
}

/* Which entries kept_shed() takes out: those kept for the decay time at
 * now_ms (all when force), those smaller than smaller_than (the growth
 * rule; 0: none), and then, with fit, the oldest until room more bytes fit
 * under the bound (and an entry is free, with make_slot). */
typedef struct shed {
    bool force;
    uint64_t now_ms;
    size_t smaller_than;
    bool fit;
    int64_t room;
    bool make_slot;
} shed_t;

/* Blocks taken out per pass: a frame holds at most this many, whatever the
 * cache holds (a block is ~300 bytes, and a huge malloc may run on a small
 * thread stack). */
#define SHED_BATCH 4u

/* Takes out the entries `how` names and drops them (purged, given back),
 * SHED_BATCH per pass under hc_lock, the drops outside it. Called without
 * hc_lock. Returns the bytes dropped. */
static size_t kept_shed(const shed_t *how)
{
    size_t total = 0;
    bool more = true;
    while (more) {
        arena__hblock_t out[SHED_BATCH];
        size_t n = 0;
        (void)pthread_mutex_lock(&hc_lock);
        for (size_t i = 0; i < kept_len && n < SHED_BATCH;) {
            const kept_t *k = &kept[i];
            if (how->force || how->now_ms - k->kept_ms >= ARENA__DECAY_MS ||
                k->block.size < how->smaller_than) {
                out[n++] = k->block;
                kept_forget(i);
            } else {
                i++;
            }
        }
        int64_t limit = kept_limit();
        while (how->fit && n < SHED_BATCH && kept_len > 0 &&
               ((how->make_slot && kept_len == HUGE_CACHE_MAX) ||
                atomic_load_explicit(&kept_bytes, memory_order_relaxed) + how->room > limit)) {
            out[n++] = kept[0].block; /* oldest first */
            kept_forget(0);
        }
        more = n == SHED_BATCH;
        (void)pthread_mutex_unlock(&hc_lock);
        for (size_t k = 0; k < n; k++) {
            total += kept_drop(out[k]);
        }
    }
    return total;
}

static size_t hc_purge_hook(bool force, uint64_t now_ms)
{
    if (atomic_load_explicit(&kept_count, memory_order_relaxed) == 0) {
        return 0;
    }
    shed_t how = {.force = force, .now_ms = now_ms};
    return kept_shed(&how);
}

static uint64_t hc_bytes_hook(void)
{
    int64_t b = atomic_load_explicit(&kept_bytes, memory_order_relaxed);
    return b > 0 ? (uint64_t)b : 0;
}

static void hc_atfork_prepare(void)
{
    (void)hc_purge_hook(true, arena__now_ms());
    (void)pthread_mutex_lock(&hc_lock);
}

static void hc_atfork_release(void)
{
    (void)pthread_mutex_unlock(&hc_lock);
}

static void hc_init_once(void)
{
    arena__region_set_kept_hooks(hc_purge_hook, hc_bytes_hook);
    (void)pthread_atfork(hc_atfork_prepare, hc_atfork_release, hc_atfork_release);
}

/* Which entry serves size bytes aligned to align (the fit of the head):
 * its index plus one, or 0. hc_lock held. */
static size_t kept_pick(size_t size, size_t align)
{
    size_t best = 0, best_size = SIZE_MAX;
    size_t most = size <= SIZE_MAX / HUGE_FIT_FACTOR ? size * HUGE_FIT_FACTOR : SIZE_MAX;
    for (size_t i = 0; i < kept_len; i++) {
        const arena__hblock_t *b = &kept[i].block;
        if (b->size >= size && b->size <= most && b->size < best_size &&
            (uintptr_t)b->addr % align == 0) {
            best = i + 1;
            best_size = b->size;
        }
    }
    return best;
}

/* Which entry a miss for size bytes joins with a new tail: the largest block
 * smaller than size with a part to spare; its index plus one, or 0. hc_lock
 * held. */
static size_t kept_pick_join(size_t size)
{
    size_t best = 0, best_size = 0;
    for (size_t i = 0; i < kept_len; i++) {
        const arena__hblock_t *b = &kept[i].block;
        if (b->size < size && b->size > best_size && b->nparts < ARENA__HUGE_PARTS) {
            best = i + 1;
            best_size = b->size;
        }
    }
    return best;
}

/* Makes *block (a kept block, now the caller's) a block of size bytes at an
 * address aligned to align: a new region for the rest is leased, and the
 * block's parts and the new one are moved end to end into a reservation
 * (mremap: the kept pages come along, none is copied or faulted again).
 * Returns 0; or a negative code, and then *block and anything leased here
 * have been given back. */
static int kept_join(arena__hblock_t *block, size_t size, size_t align)
{
    arena__region_t tail;
    int r = arena__region_acquire(size - block->size, ARENA__SLICE_SIZE, &tail);
    if (r < 0) {
        (void)kept_drop(*block);
        return r;
    }
    /* The tail may be a parked region somewhat larger than asked for:
     * the reservation is sized on what came back. */
    size_t total = block->size + tail.size;
    uint8_t *at = arena__conn_map_aligned(total, align, PROT_NONE); /* a reservation */
    size_t off = 0;
    uint32_t moved = 0;
    if (at != NULL) {
        for (; moved < block->nparts; moved++) {
            if (arena__region_move(&block->parts[moved], at + off) < 0) {
                break;
            }
            off += block->parts[moved].size;
        }
        if (moved == block->nparts && arena__region_move(&tail, at + off) == 0) {
            block->parts[block->nparts++] = tail;
            block->addr = at;
            block->size = total;
            block->zeroed = false;
            return 0;
        }
        /* What was not moved into the reservation is still PROT_NONE and ours. */
        (void)munmap(at + off, total - off);
    }
    /* Every part is a whole region wherever it now is: each goes back. */
    block->parts[block->nparts++] = tail;
    (void)kept_drop(*block);
    return -ENOMEM;
}

/* A block of one new region. */
static int block_acquire(size_t size, size_t align, arena__hblock_t *ret_block)
{
    arena__region_t region;
    int r = arena__region_acquire(size, align, &region);
    if (r < 0) {
        return r;
    }
    ret_block->addr = region.addr;
    ret_block->size = region.size;
    ret_block->zeroed = region.zeroed;
    ret_block->nparts = 1;
    ret_block->parts[0] = region;
    return 0;
}

int arena__hugecache_get(size_t size, size_t align, arena__hblock_t *ret_block)
{
    if (ret_block == NULL) {
        return -EINVAL;
    }
    if (atomic_load_explicit(&kept_count, memory_order_relaxed) != 0) {
        uint64_t now = arena__now_ms();
        (void)hc_purge_hook(false, now);
        (void)pthread_mutex_lock(&hc_lock);
        size_t i = kept_pick(size, align);
        if (i != 0) {
            arena__hblock_t block = kept[i - 1].block;
            kept_forget(i - 1);
            (void)pthread_mutex_unlock(&hc_lock);
            block.zeroed = false;
            arena__atomic_add_relaxed(&live_bytes, (int64_t)block.size);
            atomic_fetch_add_explicit(&hc_hits, 1, memory_order_relaxed);
            *ret_block = block;
            return 0;
        }
        /* A miss. The largest smaller block becomes the head of the new
         * one: its pages serve the request's first bytes, and only the rest
         * is leased and faulted in. */
        size_t j = kept_pick_join(size);
        arena__hblock_t head = {0};
        if (j != 0) {
            head = kept[j - 1].block;
            kept_forget(j - 1);
        }
        (void)pthread_mutex_unlock(&hc_lock);
        /* The growth rule: the other blocks smaller than this request go
         * before the new region is faulted in. */
        shed_t how = {.now_ms = now, .smaller_than = size};
        (void)kept_shed(&how);
        atomic_fetch_add_explicit(&hc_misses, 1, memory_order_relaxed);
        if (j != 0 && kept_join(&head, size, align) == 0) {
            atomic_fetch_add_explicit(&hc_joined, 1, memory_order_relaxed);
            arena__atomic_add_relaxed(&live_bytes, (int64_t)head.size);
            *ret_block = head;
            return 0;
        }
    } else {
        atomic_fetch_add_explicit(&hc_misses, 1, memory_order_relaxed);
    }
    int r = block_acquire(size, align, ret_block);
    if (r < 0) {
        return r;
    }
    arena__atomic_add_relaxed(&live_bytes, (int64_t)ret_block->size);
    return 0;
}

/* Attempts at making room for a freed block before it is dropped instead
 * (other threads may fill the room between a shed and the insert). */
#define PUT_TRIES 4

void arena__hugecache_put(const arena__hblock_t *block)
{
    if (block == NULL || block->addr == NULL || block->nparts == 0) {
        return;
    }
    (void)pthread_once(&hc_once, hc_init_once);
    arena__atomic_add_relaxed(&live_bytes, -(int64_t)block->size);
    uint64_t now = arena__now_ms();
    for (int attempt = 0; attempt < PUT_TRIES; attempt++) {
        /* Old entries go; then, oldest first, what keeps this block (or, if
         * it will not be kept, the fallen live bytes) over the bound. */
        bool keep = (int64_t)block->size <= kept_limit();
        shed_t how = {
            .now_ms = now, .fit = true, .room = keep ? (int64_t)block->size : 0, .make_slot = keep};
        (void)kept_shed(&how);
        (void)pthread_mutex_lock(&hc_lock);
        int64_t limit = kept_limit();
        int64_t bytes = atomic_load_explicit(&kept_bytes, memory_order_relaxed);
        if ((int64_t)block->size <= limit && kept_len < HUGE_CACHE_MAX &&
            bytes + (int64_t)block->size <= limit) {
            /* Oldest first: the block freed now is the likeliest to be reused. */
            kept[kept_len].block = *block;
            kept[kept_len].kept_ms = now;
            kept_len++;
            atomic_store_explicit(&kept_count, (uint32_t)kept_len, memory_order_relaxed);
            arena__atomic_add_relaxed(&kept_bytes, (int64_t)block->size);
            (void)pthread_mutex_unlock(&hc_lock);
            return;
        }
        (void)pthread_mutex_unlock(&hc_lock);
        if ((int64_t)block->size > limit) {
            break; /* not kept: the shed above brought the rest under the bound */
        }
    }
    (void)kept_drop(*block);
}

void arena__hugecache_info(arena__hugecache_info_t *ret_info)
{
    if (ret_info == NULL) {
        return;
    }
    int64_t live = atomic_load_explicit(&live_bytes, memory_order_relaxed);
    arena__hugecache_info_t info = {
        .bytes = hc_bytes_hook(),
        .count = atomic_load_explicit(&kept_count, memory_order_relaxed),
        .live = live > 0 ? (uint64_t)live : 0,
        .hits = atomic_load_explicit(&hc_hits, memory_order_relaxed),
        .misses = atomic_load_explicit(&hc_misses, memory_order_relaxed),
        .dropped = atomic_load_explicit(&hc_dropped, memory_order_relaxed),
        .joined = atomic_load_explicit(&hc_joined, memory_order_relaxed),
    };
    *ret_info = info;
}
