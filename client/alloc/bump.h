/* SPDX-License-Identifier: MIT
 *
 * bump.h -- internals of the bump arenas (bump.c) that tests and benchmarks
 * look at. The public API is arena_bump_* in arena.h.
 */
#ifndef ARENA_CLIENT_BUMP_H
#define ARENA_CLIENT_BUMP_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"

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

/* Fills *ret_info with a snapshot of bump's chunks. */
void arena__bump_info(const arena_bump_t *bump, arena__bump_info_t *ret_info);

/* Validator for tests: the cursor lies inside the current chunk, every chunk
 * is at least chunk_size bytes, the current index is in range. */
bool arena__bump_is_valid(const arena_bump_t *bump);

#endif
