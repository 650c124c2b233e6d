/* SPDX-License-Identifier: MIT
 *
 * test_heap.c -- the pool heap on a real memfd: sealing, sparse size, punched
 * pages really leave (st_blocks drops) and read back as zeros through a
 * mapping that already existed, decay, owner change, hugetlb where available.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_main.h"
#include "heap.h"

#define MIB (1024ull * 1024ull)

static ad_heap_t *make_heap(uint64_t size, uint64_t decay_ms)
{
    ad_heap_config_t c = {.size = size, .small_limit = 4 * MIB, .decay_ms = decay_ms};
    ad_heap_t *heap = NULL;
    ck_assert_int_eq(ad_heap_new(&c, &heap), 0);
    return heap;
}

static uint64_t blocks_bytes(int fd)
{
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    return (uint64_t)st.st_blocks * 512;
}

START_TEST(test_memfd_is_sealed_sparse_and_cloexec)
{
    ad_heap_t *heap = make_heap(1024 * MIB, 0);
    int fd = ad_heap_fd(heap);
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    ck_assert_int_eq(st.st_size, 1024 * MIB);
    ck_assert_uint_eq(blocks_bytes(fd), 0); /* address space, not memory */
    int seals = fcntl(fd, F_GET_SEALS);
    ck_assert_int_eq(seals, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    ck_assert_int_eq(ftruncate(fd, 0), -1);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_int_eq(ftruncate(fd, (off_t)(2048 * MIB)), -1);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -1);
    ck_assert_uint_eq(ad_heap_granule(heap), (uint64_t)sysconf(_SC_PAGESIZE));
    ck_assert_uint_eq(ad_heap_round(heap, 1), ad_heap_granule(heap));
    ck_assert_uint_eq(ad_heap_round(heap, UINT64_MAX), 0);
    ad_heap_free(heap);
    ad_heap_free(NULL);
}
END_TEST

START_TEST(test_bad_config)
{
    ad_heap_t *heap = (ad_heap_t *)0x1;
    ad_heap_config_t c = {.size = 0};
    ck_assert_int_eq(ad_heap_new(&c, &heap), -EINVAL);
    ck_assert_int_eq(ad_heap_new(NULL, &heap), -EINVAL);
    ck_assert_ptr_eq(heap, (ad_heap_t *)0x1);
}
END_TEST

START_TEST(test_punch_returns_memory_and_reads_zero)
{
    ad_heap_t *heap = make_heap(256 * MIB, 0);
    int fd = ad_heap_fd(heap);
    ad_extent_t e;
    ck_assert_int_eq(ad_heap_alloc(heap, 64 * MIB, 1, 0, &e), 0);
    ck_assert(e.zeroed);
    unsigned char *p =
        mmap(NULL, e.length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)e.offset);
    ck_assert_ptr_ne(p, MAP_FAILED);
    memset(p, 0xab, e.length);
    ck_assert_uint_ge(blocks_bytes(fd), 64 * MIB);
    ad_heap_stats_t s;
    ad_heap_stats(heap, &s);
    ck_assert_uint_ge(s.resident_bytes, 64 * MIB);

    ck_assert_int_eq(ad_heap_release(heap, e.offset, e.length, 0, false), 0); /* decay 0 */
    ck_assert_uint_lt(blocks_bytes(fd), 1 * MIB);
    /* The mapping that existed before the punch now reads zeros. */
    for (uint64_t i = 0; i < e.length; i += 4096)
        ck_assert_uint_eq(p[i], 0);
    ck_assert_uint_eq(p[e.length - 1], 0);
    ad_heap_stats(heap, &s);
    ck_assert_uint_eq(s.extents.leased_bytes, 0);
    ck_assert_uint_ge(s.extents.punched_bytes_total, 64 * MIB);
    (void)munmap(p, e.length);
    ad_heap_free(heap);
}
END_TEST

START_TEST(test_decay_keeps_pages_until_purge)
{
    ad_heap_t *heap = make_heap(64 * MIB, 1000);
    int fd = ad_heap_fd(heap);
    ad_extent_t e;
    ck_assert_int_eq(ad_heap_alloc(heap, 8 * MIB, 1, 0, &e), 0);
    unsigned char *p =
        mmap(NULL, e.length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)e.offset);
    ck_assert_ptr_ne(p, MAP_FAILED);
    memset(p, 0x5a, e.length);
    ck_assert_int_eq(ad_heap_release(heap, e.offset, e.length, 100, false), 0);
    ck_assert_uint_ge(blocks_bytes(fd), 8 * MIB);
    ck_assert_uint_eq(ad_heap_next_purge_ms(heap), 1100);
    ck_assert_uint_eq(ad_heap_purge(heap, 1099, false, 0), 0);
    ck_assert_uint_eq(ad_heap_purge(heap, 1100, false, 0), 8 * MIB);
    ck_assert_uint_lt(blocks_bytes(fd), 1 * MIB);
    ck_assert_uint_eq(p[0], 0);
    (void)munmap(p, e.length);
    ad_heap_free(heap);
}
END_TEST

START_TEST(test_owner_change_gets_zeroed_pages)
{
    ad_heap_t *heap = make_heap(64 * MIB, 60000);
    int fd = ad_heap_fd(heap);
    ad_extent_t e, e2;
    ck_assert_int_eq(ad_heap_alloc(heap, 64 * MIB, 1, 0, &e), 0);
    unsigned char *p =
        mmap(NULL, e.length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)e.offset);
    ck_assert_ptr_ne(p, MAP_FAILED);
    memset(p, 0x77, e.length);
    ck_assert_int_eq(ad_heap_release(heap, e.offset, e.length, 0, false), 0);
    /* Same owner: dirty reuse is allowed and reported. */
    ck_assert_int_eq(ad_heap_alloc(heap, 64 * MIB, 1, 1, &e2), 0);
    ck_assert(!e2.zeroed);
    ck_assert_uint_eq(p[123], 0x77);
    ck_assert_int_eq(ad_heap_release(heap, e2.offset, e2.length, 2, false), 0);
    /* Another owner: punched first, reads zero, no byte leaks. */
    ck_assert_int_eq(ad_heap_alloc(heap, 64 * MIB, 2, 3, &e2), 0);
    ck_assert(e2.zeroed);
    /* Check the blocks first: reading a hole through a shared mapping faults
     * a fresh zero page in. */
    ck_assert_uint_lt(blocks_bytes(fd), 1 * MIB);
    for (uint64_t i = 0; i < e2.length; i += 4096)
        ck_assert_uint_eq(p[i], 0);
    (void)munmap(p, e.length);
    ad_heap_free(heap);
}
END_TEST

/* A reclaimed extent: released urgent, the pages stay until purge_urgent
 * punches them in slices; meanwhile another owner gets clean space, and the
 * owner's dirty pages are never handed to it. */
START_TEST(test_urgent_release_punches_in_slices_after_clean_grant)
{
    ad_heap_t *heap = make_heap(64 * MIB, 60000);
    int fd = ad_heap_fd(heap);
    ad_extent_t e, e2;
    ck_assert_int_eq(ad_heap_alloc(heap, 4 * MIB, 1, 0, &e), 0);
    unsigned char *p =
        mmap(NULL, e.length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)e.offset);
    ck_assert_ptr_ne(p, MAP_FAILED);
    memset(p, 0x42, e.length);
    ck_assert_int_eq(ad_heap_release_urgent(heap, e.offset, e.length, 10), 0);
    ck_assert_uint_ge(blocks_bytes(fd), 4 * MIB); /* not punched in the release */
    ck_assert_uint_eq(ad_heap_next_purge_ms(heap), 10);
    ad_heap_stats_t s;
    ad_heap_stats(heap, &s);
    ck_assert_uint_eq(s.extents.urgent_bytes, 4 * MIB);

    /* Another owner asks: the policy's place (the top) holds owner 1's dirty
     * pages, so it gets clean space below instead, with nothing punched. */
    ck_assert_int_eq(ad_heap_alloc(heap, 4 * MIB, 2, 10, &e2), 0);
    ck_assert(e2.zeroed);
    ck_assert(e2.offset + e2.length <= e.offset || e2.offset >= e.offset + e.length);
    ck_assert_uint_ge(blocks_bytes(fd), 4 * MIB);
    ck_assert_uint_eq(p[0], 0x42);

    /* A decay purge leaves urgent pages to purge_urgent; slices of 1 MiB. */
    ck_assert_uint_eq(ad_heap_purge(heap, 10, false, 0), 0);
    ck_assert_uint_eq(ad_heap_purge_urgent(heap, 10, 1 * MIB), 1 * MIB);
    ck_assert_uint_eq(ad_heap_next_purge_ms(heap), 11);
    ck_assert_uint_eq(ad_heap_purge_urgent(heap, 11, 1 * MIB), 1 * MIB);
    ck_assert_uint_eq(ad_heap_purge_urgent(heap, 12, 0), 2 * MIB);
    ck_assert_uint_eq(ad_heap_next_purge_ms(heap), UINT64_MAX);
    ck_assert_uint_lt(blocks_bytes(fd), 1 * MIB);
    for (uint64_t i = 0; i < e.length; i += 4096)
        ck_assert_uint_eq(p[i], 0);
    ad_heap_stats(heap, &s);
    ck_assert_uint_eq(s.extents.urgent_bytes, 0);
    ck_assert_uint_eq(s.extents.dirty_bytes, 0);
    (void)munmap(p, e.length);
    ad_heap_free(heap);
}
END_TEST

/* With no clean space left, the allocation punches the urgent pages itself
 * before another owner sees them. */
START_TEST(test_urgent_pages_punched_when_no_clean_space)
{
    ad_heap_t *heap = make_heap(8 * MIB, 60000);
    int fd = ad_heap_fd(heap);
    ad_extent_t e, e2;
    ck_assert_int_eq(ad_heap_alloc(heap, 8 * MIB, 1, 0, &e), 0);
    unsigned char *p =
        mmap(NULL, e.length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)e.offset);
    ck_assert_ptr_ne(p, MAP_FAILED);
    memset(p, 0x99, e.length);
    ck_assert_int_eq(ad_heap_release_urgent(heap, e.offset, e.length, 0), 0);
    ck_assert_int_eq(ad_heap_alloc(heap, 4 * MIB, 2, 0, &e2), 0);
    ck_assert(e2.zeroed);
    ck_assert_uint_eq(p[e2.offset - e.offset], 0);
    ck_assert_uint_eq(p[e2.offset - e.offset + e2.length - 1], 0);
    ad_heap_stats_t s;
    ad_heap_stats(heap, &s);
    ck_assert_uint_eq(s.extents.urgent_bytes, 4 * MIB); /* the other half waits */
    ck_assert_uint_eq(ad_heap_purge(heap, 0, true, 0), 4 * MIB);
    ck_assert_uint_lt(blocks_bytes(fd), 1 * MIB);
    ck_assert_int_eq(ad_heap_release_urgent(NULL, 0, 4096, 0), -EINVAL);
    ck_assert_uint_eq(ad_heap_purge_urgent(NULL, 0, 0), 0);
    ck_assert_int_eq(ad_heap_release_urgent(heap, e2.offset + 4096, 4096, 0), -ENOENT);
    (void)munmap(p, e.length);
    ad_heap_free(heap);
}
END_TEST

/* A field of /proc/meminfo ("Hugepagesize:", "HugePages_Free:"), or -1. */
static long meminfo_field(const char *name)
{
    FILE *f = fopen("/proc/meminfo", "re");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    size_t n = strlen(name);
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, name, n) == 0) {
            v = strtol(line + n, NULL, 10);
            break;
        }
    (void)fclose(f);
    return v;
}

START_TEST(test_hugetlb_when_available)
{
    /* What the machine offers, found without the heap: a huge page size and
     * a hugetlb memfd. Without them the heap must fail with exactly that
     * reason (and the test says it skipped); with them it must work. */
    long huge_kib = meminfo_field("Hugepagesize:");
    int probe_err = 0;
    if (huge_kib <= 0) {
        probe_err = EOPNOTSUPP;
    } else {
        int fd = memfd_create("hugetlb-probe", MFD_CLOEXEC | MFD_HUGETLB);
        if (fd < 0)
            probe_err = errno;
        else
            (void)close(fd);
    }
    ad_heap_config_t c = {.size = 64 * MIB, .small_limit = 4 * MIB, .hugetlb = true};
    ad_heap_t *heap = NULL;
    int r = ad_heap_new(&c, &heap);
    if (probe_err) {
        ck_assert_msg(r == -probe_err, "hugetlb heap: %d, the probe said %d", r, -probe_err);
        arena_test_skip("test_hugetlb_when_available: no hugetlb memfd here (%s)",
                        strerror(probe_err));
        return;
    }
    ck_assert_msg(r == 0, "hugetlb heap failed (%d) where a hugetlb memfd works", r);
    uint64_t g = ad_heap_granule(heap);
    ck_assert_uint_eq(g, (uint64_t)huge_kib * 1024);
    ad_extent_t e;
    long free_pages = meminfo_field("HugePages_Free:");
    r = ad_heap_alloc(heap, g, 1, 0, &e);
    /* With no huge page free the grant fails up front instead of SIGBUS
     * later; with one it succeeds. */
    if (free_pages >= 1) {
        ck_assert_int_eq(r, 0);
        ck_assert_int_eq(ad_heap_release(heap, e.offset, e.length, 0, false), 0);
    } else {
        ck_assert_int_eq(r, -ENOMEM);
    }
    ad_heap_stats_t s;
    ad_heap_stats(heap, &s);
    ck_assert_uint_eq(s.extents.leased_bytes, 0);
    ad_heap_free(heap);
}
END_TEST

static Suite *heap_suite(void)
{
    Suite *s = suite_create("heap");
    TCase *tc = tcase_create("memfd");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_memfd_is_sealed_sparse_and_cloexec);
    tcase_add_test(tc, test_bad_config);
    tcase_add_test(tc, test_punch_returns_memory_and_reads_zero);
    tcase_add_test(tc, test_decay_keeps_pages_until_purge);
    tcase_add_test(tc, test_owner_change_gets_zeroed_pages);
    tcase_add_test(tc, test_urgent_release_punches_in_slices_after_clean_grant);
    tcase_add_test(tc, test_urgent_pages_punched_when_no_clean_space);
    tcase_add_test(tc, test_hugetlb_when_available);
    suite_add_tcase(s, tc);
    return s;
}

ARENA_TEST_MAIN(heap_suite)
