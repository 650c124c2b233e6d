/* SPDX-License-Identifier: MIT
 *
 * heap.c -- one pool heap: a sealed, sparse memfd and the free space in it.
 *
 * The memfd is sized once to heap_size (address space, not memory: pages
 * exist only where a client touched them) and sealed against SHRINK and GROW,
 * so a client holding the fd cannot truncate it under the others, and with
 * SEAL_SEAL so nobody adds a write seal, which would make hole punching fail.
 * Pages go back to the kernel with fallocate(PUNCH_HOLE | KEEP_SIZE):
 * MADV_DONTNEED would only drop this process's mapping of shared pages, never
 * the pages. On a hugetlb heap a lease's pages are reserved with fallocate
 * when it is granted, so a client never takes SIGBUS later for want of huge
 * pages. The bookkeeping is extent.c's; this file owns the fd and the system
 * calls. Loop thread only.
 */
#include "heap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct ad_heap {
    int fd;
    bool hugetlb;
    uint64_t size;
    uint64_t granule;
    ad_extents_t *extents;
};

static int heap_punch(void *ctx, uint64_t offset, uint64_t length)
{
    ad_heap_t *heap = ctx;
    if (fallocate(heap->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset,
                  (off_t)length) < 0)
        return -errno;
    return 0;
}

/* The default huge page size from /proc/meminfo, or 0. */
static uint64_t huge_page_size(void)
{
    FILE *f = fopen("/proc/meminfo", "re");
    if (!f)
        return 0;
    char line[128];
    unsigned long long kib = 0;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "Hugepagesize: %llu kB", &kib) == 1)
            break;
    }
    (void)fclose(f);
    return (uint64_t)kib * 1024;
}

/* Fills in a heap whose fd is set: its geometry and its bookkeeping.
 * Returns 0 or -ENOMEM. */
static int heap_set_up(ad_heap_t *heap, const ad_heap_config_t *config, uint64_t size,
                       uint64_t granule)
{
    heap->hugetlb = config->hugetlb;
    heap->size = size;
    heap->granule = granule;
    ad_extents_config_t ec = {
        .size = size,
        .granule = granule,
        .small_limit = config->small_limit,
        .decay_ms = config->decay_ms,
        .prefer_clean = true,
        .punch = heap_punch,
        .punch_ctx = heap,
    };
    return ad_extents_new(&ec, &heap->extents);
}

int ad_heap_new(const ad_heap_config_t *config, ad_heap_t **ret_heap)
{
    if (!config || !ret_heap || config->size == 0)
        return -EINVAL;
    uint64_t granule = (uint64_t)sysconf(_SC_PAGESIZE);
    unsigned flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
    if (config->hugetlb) {
        granule = huge_page_size();
        if (granule == 0)
            return -EOPNOTSUPP;
        flags |= MFD_HUGETLB;
    }
    if (config->size > UINT64_MAX - granule)
        return -EINVAL;
    uint64_t size = (config->size + granule - 1) & ~(granule - 1);

    int r;
    ad_heap_t *heap = calloc(1, sizeof(*heap));
    if (!heap)
        return -ENOMEM;
    heap->fd = memfd_create(config->name ? config->name : "arenad-pool", flags);
    if (heap->fd < 0) {
        r = -errno;
        goto fail_heap;
    }
    if (ftruncate(heap->fd, (off_t)size) < 0) {
        r = -errno;
        goto fail_fd;
    }
    /* hugetlbfs does not support sealing; its size is fixed by ftruncate once. */
    if (!config->hugetlb &&
        fcntl(heap->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
        r = -errno;
        goto fail_fd;
    }
    r = heap_set_up(heap, config, size, granule);
    if (r < 0)
        goto fail_fd;
    *ret_heap = heap;
    return 0;

fail_fd:
    (void)close(heap->fd);
fail_heap:
    free(heap);
    return r;
}

void ad_heap_free(ad_heap_t *heap)
{
    if (!heap)
        return;
    ad_extents_free(heap->extents);
    (void)close(heap->fd);
    free(heap);
}

int ad_heap_fd(const ad_heap_t *heap)
{
    return heap->fd;
}

uint64_t ad_heap_size(const ad_heap_t *heap)
{
    return heap->size;
}

uint64_t ad_heap_granule(const ad_heap_t *heap)
{
    return heap->granule;
}

bool ad_heap_is_hugetlb(const ad_heap_t *heap)
{
    return heap->hugetlb;
}

uint64_t ad_heap_round(const ad_heap_t *heap, uint64_t length)
{
    if (length > UINT64_MAX - (heap->granule - 1))
        return 0;
    return (length + heap->granule - 1) & ~(heap->granule - 1);
}

int ad_heap_alloc(ad_heap_t *heap, uint64_t length, uint64_t owner, uint64_t now_ms,
                  ad_extent_t *ret_extent)
{
    if (!heap || !ret_extent)
        return -EINVAL;
    ad_extent_t e;
    int r = ad_extents_alloc(heap->extents, length, owner, now_ms, &e);
    if (r < 0)
        return r;
    if (heap->hugetlb && fallocate(heap->fd, 0, (off_t)e.offset, (off_t)e.length) < 0) {
        (void)ad_extents_release(heap->extents, e.offset, e.length, now_ms, true);
        return -ENOMEM;
    }
    *ret_extent = e;
    return 0;
}

int ad_heap_release(ad_heap_t *heap, uint64_t offset, uint64_t length, uint64_t now_ms,
                    bool punch_now)
{
    if (!heap)
        return -EINVAL;
    /* Reserved huge pages are only given back by punching; never leave them dirty. */
    return ad_extents_release(heap->extents, offset, length, now_ms, punch_now || heap->hugetlb);
}

int ad_heap_release_urgent(ad_heap_t *heap, uint64_t offset, uint64_t length, uint64_t now_ms)
{
    if (!heap)
        return -EINVAL;
    if (heap->hugetlb)
        return ad_extents_release(heap->extents, offset, length, now_ms, true);
    return ad_extents_release_urgent(heap->extents, offset, length, now_ms);
}

uint64_t ad_heap_purge_urgent(ad_heap_t *heap, uint64_t now_ms, uint64_t max_bytes)
{
    return heap ? ad_extents_purge_urgent(heap->extents, now_ms, max_bytes) : 0;
}

int ad_heap_claim(ad_heap_t *heap, uint64_t offset, uint64_t length, uint64_t owner)
{
    if (!heap)
        return -EINVAL;
    return ad_extents_claim(heap->extents, offset, length, owner);
}

uint64_t ad_heap_purge(ad_heap_t *heap, uint64_t now_ms, bool force, uint64_t max_bytes)
{
    return heap ? ad_extents_purge(heap->extents, now_ms, force, max_bytes) : 0;
}

uint64_t ad_heap_next_purge_ms(const ad_heap_t *heap)
{
    return heap ? ad_extents_next_purge_ms(heap->extents) : UINT64_MAX;
}

void ad_heap_set_decay(ad_heap_t *heap, uint64_t decay_ms)
{
    if (heap)
        ad_extents_set_decay(heap->extents, decay_ms);
}

void ad_heap_stats(const ad_heap_t *heap, ad_heap_stats_t *ret_stats)
{
    ad_heap_stats_t s = {0};
    ad_extents_stats(heap->extents, &s.extents);
    struct stat st;
    if (fstat(heap->fd, &st) == 0)
        s.resident_bytes = (uint64_t)st.st_blocks * 512;
    *ret_stats = s;
}

/* ---- adoption (daemon restart) ------------------------------------------------ */

int ad_heap_adopt(const ad_heap_config_t *config, int fd, ad_heap_t **ret_heap)
{
    if (!config || fd < 0 || !ret_heap)
        return -EINVAL;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode) || st.st_size <= 0)
        return -EINVAL;
    uint64_t granule = (uint64_t)sysconf(_SC_PAGESIZE);
    if (config->hugetlb) {
        granule = huge_page_size();
        if (granule == 0)
            return -EOPNOTSUPP;
    } else {
        /* The seals a pool is made with: nobody can change its size, and
         * nobody can add a write seal (which would stop hole punching). */
        int seals = fcntl(fd, F_GET_SEALS);
        int need = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
        if (seals < 0 || (seals & need) != need || (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)))
            return -EINVAL;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size % granule != 0)
        return -EINVAL;
    ad_heap_t *heap = calloc(1, sizeof(*heap));
    if (!heap)
        return -ENOMEM;
    heap->fd = fd;
    int r = heap_set_up(heap, config, size, granule);
    if (r < 0) {
        free(heap);
        return r;
    }
    *ret_heap = heap;
    return 0;
}

int ad_heap_punch_range(ad_heap_t *heap, uint64_t offset, uint64_t length)
{
    if (!heap || offset > heap->size || length > heap->size - offset)
        return -EINVAL;
    return length ? heap_punch(heap, offset, length) : 0;
}

int ad_heap_walk(const ad_heap_t *heap, ad_extents_walk_fn fn, void *ctx)
{
    return heap ? ad_extents_walk(heap->extents, fn, ctx) : -EINVAL;
}
