/* SPDX-License-Identifier: MIT
 *
 * bump.c -- bump arenas: pointer-bump allocation, bulk reset.
 *
 * A bump arena allocates by checking the chunk's end and adding the size to
 * its cursor (rounding the cursor up first for alignments above 16 bytes; each
 * allocation takes a multiple of 16 bytes): no per-object header, no free. Memory
 * comes back all at once with arena_bump_reset() or arena_bump_destroy(). It
 * suits memory whose lifetime is a phase: a request, a frame, a task batch.
 *
 * Chunks are regions from region.c (daemon leases, or the anonymous fallback),
 * chunk_size bytes each (default 4 MiB), used in order. An object larger than
 * a quarter of a chunk, or aligned to more than a page when it does not fit the
 * current chunk, gets a region of its own, so one big object never wastes the
 * tail of a chunk. A reset that keeps the leases rewinds to the first chunk and
 * reuses the others in order; one that does not gives back every chunk but the
 * first. Objects with regions of their own are always given back by a reset.
 *
 * The fast path lives in arena.h as a static inline (arena_bump_alloc_inline,
 * which the arena_bump_alloc() macro names): the cursor pair is the first
 * member of struct arena_bump, an ABI of two pointers, so the caller's code
 * bumps it without a call (an out-of-line call costs more than the bump
 * itself). Everything else falls through to the exported arena_bump_alloc()
 * below, a real symbol for FFI and dlsym users, which repeats the fast path
 * and then does the slow one. The cursor stays valid across every operation
 * here: cur on the grain, end page-aligned.
 *
 * Metadata is out of band: the arena header and its region records live in
 * anonymous mappings of their own, never inside a chunk. Single-threaded by
 * contract: one thread uses a bump arena at a time, so nothing here is atomic.
 * arena__bump_is_valid() checks the invariants for tests.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arena.h"
#include "alloc/internal.h"

#define BUMP_DEFAULT_CHUNK ((size_t)4 * 1024 * 1024)
/* The cursor always sits on a multiple of BUMP_GRAIN (each allocation takes a
 * multiple of it), so allocations aligned to at most the grain, the default
 * included, need no rounding: the fast path is a load, a compare, an add and
 * a store. Chunk ends are page-aligned, so rounding up to the grain never
 * passes the end. */
#define BUMP_GRAIN ARENA_BUMP_GRAIN

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* A growable array of region records in an anonymous mapping. */
struct bump_regions {
    arena__region_t *v;
    size_t n;
    size_t cap;
};

/* The cursor comes first: arena.h's inline fast path (arena_bump_alloc_inline)
 * reads and bumps it in the caller's code, so its place and layout are ABI. */
struct arena_bump {
    arena_bump_cursor_t c; /* next free byte and end of the current chunk */
    size_t current;        /* index of the current chunk in chunks */
    size_t chunk_size;
    size_t page;
    struct bump_regions chunks; /* used in order; chunks.v[0] is never given back */
    struct bump_regions larges; /* regions of single large objects */
};

_Static_assert(offsetof(struct arena_bump, c) == 0, "the inline cursor sits at offset 0");
_Static_assert(sizeof(arena_bump_cursor_t) == 2 * sizeof(void *), "cursor ABI: two pointers");

static size_t bump_page_size(void)
{
    long p = getpagesize();
    return p > 0 ? (size_t)p : 4096;
}

/* Appends a record, growing the array (mmap, then mremap) when full.
 * Returns 0 or -ENOMEM. */
static int bump_regions_push(struct bump_regions *rs, const arena__region_t *region)
{
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 4096 / sizeof(arena__region_t);
        void *v;
        if (!rs->v)
            v = mmap(NULL, cap * sizeof(*rs->v), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        else
            v = mremap(rs->v, rs->cap * sizeof(*rs->v), cap * sizeof(*rs->v), MREMAP_MAYMOVE);
        if (v == MAP_FAILED)
            return -ENOMEM;
        rs->v = v;
        rs->cap = cap;
    }
    rs->v[rs->n++] = *region;
    return 0;
}

/* Releases records [keep, n) and truncates the array to keep. */
static void bump_regions_release_from(struct bump_regions *rs, size_t keep)
{
    while (rs->n > keep) {
        const arena__region_t *region = &rs->v[--rs->n];
        arena__atomic_add_relaxed(&arena__stat_leased, -(int64_t)region->size);
        arena__atomic_add_relaxed(&arena__stat_leases, -1);
        (void)arena__region_release(region);
    }
}

static void bump_regions_free(struct bump_regions *rs)
{
    bump_regions_release_from(rs, 0);
    if (rs->v)
        (void)munmap(rs->v, rs->cap * sizeof(*rs->v));
    rs->v = NULL;
    rs->cap = 0;
}

/* Acquires a region of at least size bytes aligned to align and records it.
 * Returns 0 or a negative code. */
static int bump_acquire(struct bump_regions *rs, size_t size, size_t align,
                        arena__region_t *ret_region)
{
    arena__region_t region;
    int r = arena__region_acquire(size, align, &region);

    if (r < 0)
        return r;
    r = bump_regions_push(rs, &region);
    if (r < 0) {
        (void)arena__region_release(&region);
        return r;
    }
    /* Counted in arena_stats() with the allocator's own regions. */
    arena__atomic_add_relaxed(&arena__stat_leased, (int64_t)region.size);
    arena__atomic_add_relaxed(&arena__stat_leases, 1);
    *ret_region = region;
    return 0;
}

static void bump_use_chunk(arena_bump_t *bump, size_t index)
{
    bump->current = index;
    bump->c.cur = (uintptr_t)bump->chunks.v[index].addr;
    bump->c.end = bump->c.cur + bump->chunks.v[index].size;
}

/* See arena.h. chunk_size is rounded up to whole pages. Returns 0 and
 * *ret_bump, -EINVAL (ret_bump NULL, chunk_size above ARENA__BUMP_MAX_CHUNK),
 * -ENOMEM, or the region error for the first chunk (ARENA_ENODAEMON: no daemon
 * and no fallback); *ret_bump untouched on failure.
 * Example:
 *     arena_bump_t *frame;
 *     if (arena_bump_create(0, &frame) == 0) {
 *         for (;;) {
 *             struct msg *m = arena_bump_alloc(frame, sizeof(*m), 0);
 *             ...
 *             arena_bump_reset(frame, true);
 *         }
 *     } */
int arena_bump_create(size_t chunk_size, arena_bump_t **ret_bump)
{
    size_t page = bump_page_size();
    arena__region_t region;
    arena_bump_t *bump;
    int r;

    if (!ret_bump || chunk_size > ARENA__BUMP_MAX_CHUNK)
        return -EINVAL;
    if (chunk_size == 0)
        chunk_size = BUMP_DEFAULT_CHUNK;
    chunk_size = (chunk_size + page - 1) & ~(page - 1);
    /* The fork handlers must be in place before the first chunk. */
    arena__heap_init();

    bump = mmap(NULL, sizeof(*bump), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (bump == MAP_FAILED)
        return -ENOMEM;
    bump->chunk_size = chunk_size;
    bump->page = page;
    /* The first chunk now: a missing daemon shows here, not at the first alloc. */
    r = bump_acquire(&bump->chunks, chunk_size, page, &region);
    if (r < 0)
        goto fail_map;
    bump_use_chunk(bump, 0);
    *ret_bump = bump;
    return 0;

fail_map:
    bump_regions_free(&bump->chunks);
    (void)munmap(bump, sizeof(*bump));
    return r;
}

/* Everything the fast path does not handle: a full chunk, a large object, a
 * large alignment, bad arguments. */
static uintptr_t bump_grain_up(uintptr_t x)
{
    return (x + BUMP_GRAIN - 1) & ~(uintptr_t)(BUMP_GRAIN - 1);
}

static __attribute__((noinline)) void *bump_alloc_slow(arena_bump_t *bump, size_t size,
                                                       size_t align)
{
    arena__region_t region;
    uintptr_t p;
    int r;

    if (!bump || (align & (align - 1)) != 0 || align > ARENA__BUMP_MAX_ALIGN) {
        errno = EINVAL;
        return NULL;
    }
    if (align < BUMP_GRAIN)
        align = BUMP_GRAIN; /* 0 (the default), 1, 2, 4, 8: the grain does */
    if (size > ARENA__BUMP_MAX_OBJECT) {
        errno = ENOMEM;
        return NULL;
    }
    /* A large alignment may still fit the current chunk. */
    p = (bump->c.cur + align - 1) & ~(uintptr_t)(align - 1);
    if (p <= bump->c.end && size <= bump->c.end - p) {
        bump->c.cur = bump_grain_up(p + size);
        return (void *)p;
    }
    if (size > bump->chunk_size / 4 || align > bump->page) {
        size_t rsize = (size + bump->page - 1) & ~(bump->page - 1);
        r = bump_acquire(&bump->larges, rsize ? rsize : bump->page,
                         align > bump->page ? align : bump->page, &region);
        if (r < 0) {
            errno = r == -EINVAL ? EINVAL : ENOMEM;
            return NULL;
        }
        return region.addr;
    }
    if (bump->current + 1 < bump->chunks.n) {
        bump_use_chunk(bump, bump->current + 1);
    } else {
        r = bump_acquire(&bump->chunks, bump->chunk_size, bump->page, &region);
        if (r < 0) {
            errno = ENOMEM;
            return NULL;
        }
        bump_use_chunk(bump, bump->chunks.n - 1);
    }
    /* A fresh chunk is page-aligned and holds at least a quarter chunk. */
    p = (bump->c.cur + align - 1) & ~(uintptr_t)(align - 1);
    bump->c.cur = bump_grain_up(p + size);
    return (void *)p;
}

/* See arena.h. size bytes aligned to align (0: 16); every allocation takes a
 * multiple of 16 bytes; size 0 gives a valid pointer that the next allocation
 * may share. NULL with errno EINVAL (bump NULL, align not a power of two or
 * above ARENA__BUMP_MAX_ALIGN) or ENOMEM (no region could be had). */
void *(arena_bump_alloc)(arena_bump_t *bump, size_t size, size_t align)
{
    /* align 0, 1, 2, 4, 8 or 16 (0 - 1 & 0 is 0 too). */
    if (likely(bump != NULL && align <= BUMP_GRAIN && (align & (align - 1)) == 0)) {
        uintptr_t p = bump->c.cur;
        if (likely(size <= bump->c.end - p)) {
            /* size <= end - p, a multiple of the grain: no overflow, no
             * passing the end. */
            bump->c.cur = p + ((size + BUMP_GRAIN - 1) & ~(BUMP_GRAIN - 1));
            return (void *)p;
        }
    }
    return bump_alloc_slow(bump, size, align);
}

/* See arena.h. Every pointer from the arena becomes invalid. keep_leases:
 * the chunks stay for reuse in order; otherwise all but the first go back.
 * Regions of single large objects always go back. NULL-safe. */
void arena_bump_reset(arena_bump_t *bump, bool keep_leases)
{
    if (!bump)
        return;
    bump_regions_release_from(&bump->larges, 0);
    if (!keep_leases)
        bump_regions_release_from(&bump->chunks, 1);
    bump_use_chunk(bump, 0);
}

/* See arena.h. Gives every region back. NULL-safe. */
void arena_bump_destroy(arena_bump_t *bump)
{
    if (!bump)
        return;
    bump_regions_free(&bump->larges);
    bump_regions_free(&bump->chunks);
    (void)munmap(bump, sizeof(*bump));
}

/* ---- introspection for tests ------------------------------------------------------ */

/* See alloc/internal.h. */
void arena__bump_info(const arena_bump_t *bump, arena__bump_info_t *ret_info)
{
    arena__bump_info_t info = {0};

    info.chunk_size = bump->chunk_size;
    info.chunk_count = bump->chunks.n;
    info.large_count = bump->larges.n;
    info.current = bump->current;
    for (size_t i = 0; i < bump->chunks.n; i++)
        info.held_bytes += bump->chunks.v[i].size;
    for (size_t i = 0; i < bump->larges.n; i++)
        info.held_bytes += bump->larges.v[i].size;
    info.used_in_current = bump->c.cur - (uintptr_t)bump->chunks.v[bump->current].addr;
    *ret_info = info;
}

/* See alloc/internal.h. */
bool arena__bump_is_valid(const arena_bump_t *bump)
{
    const arena__region_t *c;

    if (!bump || bump->chunks.n == 0 || bump->current >= bump->chunks.n)
        return false;
    c = &bump->chunks.v[bump->current];
    if (bump->c.end != (uintptr_t)c->addr + c->size)
        return false;
    if (bump->c.cur < (uintptr_t)c->addr || bump->c.cur > bump->c.end)
        return false;
    if (bump->c.end % bump->page != 0 || bump->c.cur % BUMP_GRAIN != 0)
        return false;
    for (size_t i = 0; i < bump->chunks.n; i++)
        if (bump->chunks.v[i].size < bump->chunk_size)
            return false;
    return true;
}
