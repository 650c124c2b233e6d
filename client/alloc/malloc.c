/* SPDX-License-Identifier: MIT
 *
 * malloc.c -- the public malloc family of libarena-client (arena.h), a thin
 * layer over the thread heaps (heap.c, alloc/internal.h).
 *
 * Choices where the C library leaves room: arena_malloc(0) returns a unique
 * minimal allocation (8 bytes); arena_realloc(p, 0) frees p and returns NULL,
 * as glibc does, and arena_realloc(NULL, 0) is arena_malloc(0);
 * arena_aligned_alloc() takes any power-of-two alignment (also above 4 MiB)
 * and any size, not only multiples of the alignment; arena_usable_size() of a
 * pointer that is not ours is 0, and arena_free() of one is ignored instead of
 * corrupting memory. Every function is thread-safe and never prints.
 */
#include <errno.h>

#include "arena.h"
#include "alloc/internal.h"

ARENA_API void *arena_malloc(size_t size)
{
    return arena__heap_malloc(size);
}

ARENA_API void *arena_calloc(size_t count, size_t size)
{
    return arena__heap_calloc(count, size);
}

ARENA_API void *arena_realloc(void *ptr, size_t size)
{
    return arena__heap_realloc(ptr, size);
}

ARENA_API void arena_free(void *ptr)
{
    arena__heap_free(ptr);
}

ARENA_API void *arena_aligned_alloc(size_t alignment, size_t size)
{
    return arena__heap_aligned(alignment, size);
}

ARENA_API size_t arena_usable_size(const void *ptr)
{
    return arena__heap_usable_size(ptr);
}

ARENA_API long long arena_trim(void)
{
    return arena__heap_trim();
}

ARENA_API int arena_stats(arena_stats_t *ret_stats)
{
    return arena__heap_stats(ret_stats);
}
