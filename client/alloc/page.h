/* SPDX-License-Identifier: MIT
 *
 * page.h -- small-object pages (page.c): allocation slow path per size class,
 * local and remote free lists. Owner thread of the heap, except
 * arena__page_free_remote() which any thread may call.
 */
#ifndef ARENA_CLIENT_PAGE_H
#define ARENA_CLIENT_PAGE_H

#include "segment.h"

/* The slow path of a small allocation of class cls: finds or makes a page
 * with room, makes it current and pops a block. Returns NULL with errno set. */
void *arena__page_malloc_generic(arena__heap_t *heap, unsigned cls);

/* The owner's free after its block went onto local_free made the page empty
 * or it was on the full list. */
void arena__page_free_slow(arena__heap_t *heap, arena__page_t *page);

/* A free from a thread that does not own the page's segment: lock-free push
 * onto xthread_free, then marks the page in its segment's xremote bitmap. */
void arena__page_free_remote(arena__segment_t *seg, arena__page_t *page, arena__block_t *block);

/* The owner takes the page's remote frees; frees the span of a page that ends
 * up with nothing used (unless it is its class's current page). Returns the
 * number of blocks collected. */
uint32_t arena__page_collect_remote(arena__heap_t *heap, arena__page_t *page);

/* Removes a small page from its heap's lists and frees its span. */
void arena__page_retire(arena__heap_t *heap, arena__page_t *page);

#endif
