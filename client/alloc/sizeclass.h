/* SPDX-License-Identifier: MIT
 *
 * sizeclass.h -- the small-object size classes.
 *
 * Class 0 holds 8-byte objects; classes 1..8 step by 16 bytes up to 128 (16 is
 * the alignment malloc owes larger objects, so nothing finer helps); above 128
 * every power of two is cut into 8 classes, so a request of n bytes gets at
 * most n/8 extra: internal waste stays at or below 12.5% of the request (4
 * classes per doubling, as in jemalloc, would allow 25%). Every power of two is
 * a class, which the aligned allocator relies on: a block of class 2^k inside a
 * 64 KiB-aligned page is 2^k-aligned.
 *
 * The last class is ARENA__SMALL_MAX = 128 KiB. Why stop there: blocks up to
 * 8 KiB live in 64 KiB pages (at least 8 blocks per page), bigger ones in
 * 512 KiB pages (at least 4 blocks); above 128 KiB a page would hold fewer than
 * 4 objects and a page-granular span (4 KiB steps, <= 3% waste) is as tight and
 * gives the memory back as soon as the object dies.
 */
#ifndef ARENA_CLIENT_SIZECLASS_H
#define ARENA_CLIENT_SIZECLASS_H

#include <stddef.h>
#include <stdint.h>

#include "pool.h"

#define ARENA__NCLASSES 89 /* 1 + 8 + 10 doublings (128 .. 128 KiB) * 8 */

/* Class index of a size in 0 .. ARENA__SMALL_MAX. */
static inline unsigned arena__size_class(size_t size)
{
    if (size <= 128) {
        return size <= 8 ? 0u : (unsigned)((size + 15) >> 4);
    }
    size_t s = size - 1;
    unsigned k = 63u - (unsigned)__builtin_clzll((unsigned long long)s); /* 2^k <= s */
    unsigned w = (unsigned)(s >> (k - 3));                               /* 8 .. 15 */
    return 9u + (k - 7u) * 8u + (w - 8u);
}

/* Block size of a class. */
static inline size_t arena__class_size(unsigned cls)
{
    if (cls <= 8) {
        return cls == 0 ? 8u : (size_t)cls << 4;
    }
    unsigned k = 7u + (cls - 9u) / 8u;
    unsigned w = 8u + (cls - 9u) % 8u;
    return (size_t)(w + 1u) << (k - 3u);
}

#endif
