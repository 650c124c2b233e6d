/* SPDX-License-Identifier: MIT
 *
 * slab.h -- internals of the typed slabs (slab.c) that tests and benchmarks
 * look at. The public API is arena_slab_* in arena.h.
 */
#ifndef ARENA_CLIENT_SLAB_H
#define ARENA_CLIENT_SLAB_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"

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

/* Fills *ret_info with a snapshot of slab's geometry and chunks. */
void arena__slab_info(arena_slab_t *slab, arena__slab_info_t *ret_info);

/* Expensive validator for tests: every slot on the calling thread's cache and
 * on the shared stack lies on a slot boundary inside one of slab's chunks, and
 * no list is longer than the slab's capacity (no cycles). Call only while no
 * other thread uses slab. */
bool arena__slab_is_valid(arena_slab_t *slab);

/* The calling thread's slab cache index (claimed on first use), or
 * ARENA__SLAB_MAX_THREADS when the thread uses the shared overflow cache. */
unsigned arena__slab_thread_index(void);

#endif
