/* SPDX-License-Identifier: MIT
 *
 * large.h -- page-granular spans inside segments (large.c): allocation with
 * splitting, freeing with coalescing, decay purging, empty segments. Owner
 * thread of the heap only.
 */
#ifndef ARENA_CLIENT_LARGE_H
#define ARENA_CLIENT_LARGE_H

#include "segment.h"

/* Takes a span of n slices (1 .. ARENA__SEG_SLICES) from heap's free spans,
 * adopting abandoned segments or getting a new segment when none fits. The
 * span's page record has kind `kind` and every slice maps back to it;
 * *ret_zero says whether all of it is known to read as zero. Returns NULL
 * with errno set when no memory can be had. */
arena__page_t *arena__span_alloc(arena__heap_t *heap, uint32_t n, uint8_t kind, bool *ret_zero);

/* Gives a used span back: it merges with free neighbours and goes into the
 * bins (dirty, stamped now). An emptied segment is counted in
 * heap->empty_segments; arena__heap_release_empty() gives them back. */
void arena__span_free(arena__heap_t *heap, arena__page_t *page);

/* Grows a used span in place into its free right neighbour to n slices, or
 * shrinks it to n slices (the tail becomes free). Returns true on success
 * (*ret_zero_tail: the added slices are known zero), false when it cannot. */
bool arena__span_resize(arena__heap_t *heap, arena__page_t *page, uint32_t n, bool *ret_zero_tail);

/* Purges free spans that have been free for the decay time (all when force).
 * Returns the bytes purged. */
size_t arena__heap_purge(arena__heap_t *heap, bool force, uint64_t now_ms);

/* Releases empty segments beyond `keep`. Returns the bytes released. */
size_t arena__heap_release_empty(arena__heap_t *heap, uint32_t keep);

/* Puts a segment's free spans into heap's bins (used when adopting). */
void arena__span_bin_insert(arena__heap_t *heap, arena__page_t *page);

/* Queue helpers shared with page.c and pool.c. */
void arena__pqueue_push(arena__pqueue_t *q, arena__page_t *p);
void arena__pqueue_remove(arena__pqueue_t *q, arena__page_t *p);

/* Adopts every abandoned segment into heap. Returns how many (pool.c). */
size_t arena__heap_adopt(arena__heap_t *heap);

/* Collects remote frees in every segment of heap (pool.c / page.c). Returns
 * the number of pages that had some. */
size_t arena__heap_collect_remote(arena__heap_t *heap);

#endif
