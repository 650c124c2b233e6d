/* SPDX-License-Identifier: MIT
 *
 * test_pool_huge.c -- freed huge blocks are kept mapped and resident for
 * reuse within the decay window (client/alloc/hugecache.c), and go when
 * the window passes, on a trim, under pressure, past the cache's bound, or
 * when a larger request misses (the largest of them is joined into the
 * larger block instead).
 *
 * Every test runs against a real arenad (the shared fixture: a daemon on a
 * temporary socket per test; its parked decay is off, so a block given
 * back stays listed PARKED and the tests see where it went). A huge block
 * is only kept while other huge blocks live (the bound is a quarter of the
 * live huge bytes), so most tests hold an ANCHOR block.
 *
 * What is checked, through the daemon's own view as well as the library's:
 *   - a reuse within the window gets the same block: no new lease is
 *     granted, the lease stays ACTIVE, and touching it takes no page fault
 *     (getrusage ru_minflt);
 *   - after the decay time, the purge tick purges it and parks it (mincore
 *     says no page is resident, the daemon lists it PARKED);
 *   - arena_trim() does the same at once; pressure from the daemon (a
 *     second process that needs the memory) releases it;
 *   - the last huge free keeps nothing; the bound holds; a miss for a
 *     larger request joins the largest smaller kept block with a new tail
 *     (its pages move along: no fault, no copy; only the tail is granted),
 *     gives back the other smaller ones first, and stops at
 *     ARENA__HUGE_PARTS regions; a fork copies a joined block whole;
 *   - a fork gives the cache back first; threads share it (also under TSan).
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "admin.h"
#include "arena.h"
#include "conn.h"
#include "fixture.h"
#include "alloc/internal.h"

#define MiB    ((size_t)1 << 20)
#define ANCHOR (64 * MiB) /* keeps a quarter = 16 MiB of kept blocks allowed */
#define BLOCK  (8 * MiB)

static arena_test_daemon_t daemon_;

static const char *const daemon_args[] = {"--budget", "256M", NULL};
static const char daemon_config[] = "parked_decay_ms = 0\n";

/* What the daemon says about our lease id: 0 unknown, 1 active, 2 parked;
 * *ret_granted: the daemon-wide leases_granted_total. */
static int lease_state(uint64_t lease_id, uint64_t *ret_granted)
{
    arena_conn_t *c = NULL;
    ck_assert_int_eq(arena_connect(daemon_.socket, &c), 0);
    arena__admin_status_t st;
    ck_assert_int_eq(arena__admin_status(c, &st), 0);
    if (ret_granted != NULL) {
        *ret_granted = st.leases_granted_total;
    }
    int state = 0;
    arena__admin_clients_t *cl = NULL;
    ck_assert_int_eq(arena__admin_clients(c, &cl), 0);
    for (size_t i = 0; i < cl->count && state == 0; i++) {
        if (cl->items[i].pid != (uint32_t)getpid() || cl->items[i].leases == 0) {
            continue;
        }
        arena__admin_leases_t *ls = NULL;
        ck_assert_int_eq(arena__admin_leases(c, cl->items[i].client_id, &ls), 0);
        for (size_t k = 0; k < ls->count; k++) {
            if (ls->items[k].lease_id == lease_id) {
                state = ls->items[k].parked ? 2 : 1;
            }
        }
        arena__admin_leases_free(ls);
    }
    arena__admin_clients_free(cl);
    arena_disconnect(c);
    return state;
}

/* The lease id of the huge block at p. */
static uint64_t lease_of(const void *p)
{
    arena__seghdr_t *hdr = arena__map_lookup(p);
    ck_assert_ptr_nonnull(hdr);
    ck_assert_int_eq(hdr->kind, ARENA__SEG_HUGE);
    ck_assert_uint_ne(hdr->region.lease_id, 0);
    return hdr->region.lease_id;
}

/* Resident pages of [p, p + n) (mincore; the mapping may be PROT_NONE). */
static size_t resident_pages(void *p, size_t n)
{
    static unsigned char vec[(64 * MiB) / 4096];
    size_t pages = n / 4096;
    ck_assert_uint_le(pages, sizeof(vec));
    ck_assert_int_eq(mincore(p, n, vec), 0);
    size_t count = 0;
    for (size_t i = 0; i < pages; i++) {
        count += vec[i] & 1u;
    }
    return count;
}

static long minor_faults(void)
{
    struct rusage ru;
    ck_assert_int_eq(getrusage(RUSAGE_SELF, &ru), 0);
    return ru.ru_minflt;
}

static arena__hugecache_info_t info(void)
{
    arena__hugecache_info_t hi;
    arena__hugecache_info(&hi);
    return hi;
}

/* An ANCHOR block, touched, and a BLOCK freed into the cache; returns the
 * freed block's address (kept, resident) and its lease id. */
static void *anchor_and_kept(void **ret_anchor, uint64_t *ret_lease)
{
    *ret_anchor = arena_malloc(ANCHOR);
    ck_assert_ptr_nonnull(*ret_anchor);
    memset(*ret_anchor, 1, ANCHOR);
    unsigned char *a = arena_malloc(BLOCK);
    ck_assert_ptr_nonnull(a);
    memset(a, 2, BLOCK);
    *ret_lease = lease_of(a);
    arena__hugecache_info_t before = info();
    arena_free(a);
    arena__hugecache_info_t after = info();
    ck_assert_uint_eq(after.count, before.count + 1);
    ck_assert_uint_eq(after.bytes, before.bytes + BLOCK);
    ck_assert_uint_eq(after.dropped, before.dropped);
    return a;
}

START_TEST(test_reuse_no_lease_no_faults)
{
    void *anchor;
    uint64_t lease;
    unsigned char *a = anchor_and_kept(&anchor, &lease);
    /* Kept: still ours, ACTIVE, every page resident. */
    uint64_t granted0;
    ck_assert_int_eq(lease_state(lease, &granted0), 1);
    ck_assert_uint_eq(resident_pages(a, BLOCK), BLOCK / 4096);
    arena__hugecache_info_t before = info();

    /* A smaller request that fits takes it back: same address, same lease,
     * nothing granted, and touching all of it takes (nearly) no fault. */
    long flt0 = minor_faults();
    unsigned char *b = arena_malloc(BLOCK - 3 * 4096);
    ck_assert_ptr_eq(b, a);
    memset(b, 3, BLOCK - 3 * 4096);
    long flt = minor_faults() - flt0;
    ck_assert_msg(flt < 32, "%ld page faults on reuse of a kept block", flt);
    arena__hugecache_info_t after = info();
    ck_assert_uint_eq(after.hits, before.hits + 1);
    ck_assert_uint_eq(after.misses, before.misses);
    ck_assert_uint_eq(after.count, 0);
    uint64_t granted1;
    ck_assert_int_eq(lease_state(lease, &granted1), 1);
    ck_assert_uint_eq(granted1, granted0);
    ck_assert(b[0] == 3 && b[BLOCK - 3 * 4096 - 1] == 3);
    ck_assert_uint_eq(arena_usable_size(b), BLOCK);
    arena_free(b);
    arena_free(anchor);
}
END_TEST

START_TEST(test_calloc_of_kept_block_is_zero)
{
    void *anchor;
    uint64_t lease;
    unsigned char *a = anchor_and_kept(&anchor, &lease);
    unsigned char *b = arena_calloc(1, BLOCK);
    ck_assert_ptr_eq(b, a);
    for (size_t i = 0; i < BLOCK; i += 4093) {
        ck_assert_uint_eq(b[i], 0);
    }
    arena_free(b);
    arena_free(anchor);
}
END_TEST

START_TEST(test_decay_purges_kept)
{
    void *anchor;
    uint64_t lease;
    unsigned char *a = anchor_and_kept(&anchor, &lease);
    arena__hugecache_info_t before = info();
    (void)usleep((ARENA__DECAY_MS + 200) * 1000);
    /* Any slow path runs the purge tick: a large (span) allocation here. */
    void *p = arena_malloc(ARENA__LARGE_MAX);
    ck_assert_ptr_nonnull(p);
    arena_free(p);
    arena__hugecache_info_t after = info();
    ck_assert_uint_eq(after.count, 0);
    ck_assert_uint_eq(after.bytes, 0);
    ck_assert_uint_eq(after.dropped, before.dropped + 1);
    ck_assert_int_eq(lease_state(lease, NULL), 2);
    ck_assert_uint_eq(resident_pages(a, BLOCK), 0);
    arena_free(anchor);
}
END_TEST

START_TEST(test_trim_purges_kept)
{
    void *anchor;
    uint64_t lease;
    unsigned char *a = anchor_and_kept(&anchor, &lease);
    ck_assert_int_ge(arena_trim(), (long long)BLOCK);
    ck_assert_uint_eq(info().count, 0);
    ck_assert_int_eq(lease_state(lease, NULL), 2);
    ck_assert_uint_eq(resident_pages(a, BLOCK), 0);
    /* The anchor is live: untouched. */
    ck_assert_uint_eq(resident_pages(anchor, ANCHOR), ANCHOR / 4096);
    arena_free(anchor);
}
END_TEST

START_TEST(test_pressure_releases_kept)
{
    /* Budget 96 MiB: the anchor (64), the kept block (8) and a segment
     * (4) leave less than the 24 MiB another process asks for; the daemon
     * sends us Pressure, our trim hook gives the kept block back, and the
     * other process gets its lease. */
    static const char *const small_budget[] = {"--budget", "96M", NULL};
    ck_assert_int_eq(arena_test_daemon_stop(&daemon_), 0);
    arena_test_daemon_up(&daemon_, daemon_config, small_budget, ARENA_TEST_EXPORT_SOCKET);
    void *small = arena_malloc(100);
    ck_assert_ptr_nonnull(small);
    void *anchor;
    uint64_t lease;
    (void)anchor_and_kept(&anchor, &lease);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        arena_conn_t *c = NULL;
        arena_lease_t l;
        if (arena_connect(daemon_.socket, &c) != 0) {
            _exit(2);
        }
        _exit(arena_lease(c, 24 * MiB, 20000, &l) == 0 ? 0 : 3);
    }
    int status = 0;
    pid_t done = 0;
    for (int i = 0; i < 400 && done == 0; i++) {
        (void)arena_process_notifications();
        done = waitpid(pid, &status, WNOHANG);
        if (done == 0) {
            (void)usleep(50 * 1000);
        }
    }
    if (done == 0) {
        (void)kill(pid, SIGKILL);
        (void)waitpid(pid, &status, 0);
        ck_abort_msg("the other process never got its lease (kept %llu bytes)",
                     (unsigned long long)info().bytes);
    }
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    ck_assert_uint_eq(info().count, 0);
    ck_assert_int_eq(lease_state(lease, NULL), 0); /* released */
    arena_free(anchor);
    arena_free(small);
}
END_TEST

START_TEST(test_park_release_gives_kept)
{
    /* What pressure does, called directly: kept blocks leave the process. */
    void *anchor;
    uint64_t lease;
    (void)anchor_and_kept(&anchor, &lease);
    ck_assert_int_ge(arena__region_park_release(), (long long)BLOCK);
    ck_assert_uint_eq(info().count, 0);
    ck_assert_int_eq(lease_state(lease, NULL), 0);
    arena_free(anchor);
}
END_TEST

START_TEST(test_last_free_keeps_nothing)
{
    /* Nothing else huge lives: the bound is 0, the block is purged and
     * parked at once (RSS after the last free does not change). */
    unsigned char *a = arena_malloc(BLOCK);
    ck_assert_ptr_nonnull(a);
    memset(a, 5, BLOCK);
    uint64_t lease = lease_of(a);
    arena_free(a);
    arena__hugecache_info_t hi = info();
    ck_assert_uint_eq(hi.count, 0);
    ck_assert_uint_eq(hi.live, 0);
    ck_assert_int_eq(lease_state(lease, NULL), 2);
    ck_assert_uint_eq(resident_pages(a, BLOCK), 0);

    /* Freeing the anchor last gives back what was kept while it lived. */
    void *anchor;
    unsigned char *b = anchor_and_kept(&anchor, &lease);
    arena_free(anchor);
    hi = info();
    ck_assert_uint_eq(hi.count, 0);
    ck_assert_uint_eq(hi.bytes, 0);
    ck_assert_uint_eq(resident_pages(b, BLOCK), 0);
}
END_TEST

START_TEST(test_bound_holds)
{
    void *anchor = arena_malloc(ANCHOR);
    ck_assert_ptr_nonnull(anchor);
    enum { N = 6 };
    void *blocks[N];
    for (int i = 0; i < N; i++) {
        blocks[i] = arena_malloc(BLOCK);
        ck_assert_ptr_nonnull(blocks[i]);
        memset(blocks[i], i + 1, BLOCK);
    }
    for (int i = 0; i < N; i++) {
        arena_free(blocks[i]);
        arena__hugecache_info_t hi = info();
        ck_assert_uint_le(hi.bytes, hi.live / 4);
    }
    /* 64 MiB live: two blocks kept, the newest; the rest parked, purged. */
    arena__hugecache_info_t hi = info();
    ck_assert_uint_eq(hi.count, 2);
    ck_assert_uint_eq(resident_pages(blocks[N - 1], BLOCK), BLOCK / 4096);
    ck_assert_uint_eq(resident_pages(blocks[0], BLOCK), 0);
    arena_free(anchor);
    ck_assert_uint_eq(info().count, 0);
}
END_TEST

/* Whether every byte of [p, p + n) is c. */
static bool all_bytes(const unsigned char *p, size_t n, unsigned char c)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != c) {
            return false;
        }
    }
    return true;
}

START_TEST(test_growth_miss_joins_largest)
{
    /* A miss for a larger request: the largest smaller kept block becomes
     * the head of the new block, pages and all (moved, not copied: its old
     * contents are still there and resident before anything touches them), and only
     * the rest is leased; the other smaller blocks are given back first, so
     * the freed ones do not add to the peak. */
    void *anchor = arena_malloc(ANCHOR);
    ck_assert_ptr_nonnull(anchor);
    memset(anchor, 1, ANCHOR);
    unsigned char *c = arena_malloc(BLOCK / 2);
    ck_assert_ptr_nonnull(c);
    memset(c, 6, BLOCK / 2);
    unsigned char *a = arena_malloc(BLOCK);
    ck_assert_ptr_nonnull(a);
    memset(a, 2, BLOCK);
    uint64_t lease_a = lease_of(a);
    uint64_t lease_c = lease_of(c);
    arena_free(c);
    arena_free(a);
    arena__hugecache_info_t before = info();
    ck_assert_uint_eq(before.count, 2);
    uint64_t granted0;
    ck_assert_int_eq(lease_state(lease_a, &granted0), 1);

    unsigned char *bigger = arena_malloc(3 * BLOCK);
    ck_assert_ptr_nonnull(bigger);
    arena__hugecache_info_t after = info();
    ck_assert_uint_eq(after.misses, before.misses + 1);
    ck_assert_uint_eq(after.joined, before.joined + 1);
    ck_assert_uint_eq(after.dropped, before.dropped + 1); /* c */
    ck_assert_uint_eq(after.count, 0);
    /* Resident before anything touched it, and still holding a's bytes:
     * the pages moved. (Not counted in faults: under a sanitizer, the new
     * addresses' shadow memory faults in on the first read.) */
    ck_assert_uint_eq(resident_pages(bigger, BLOCK), BLOCK / 4096);
    ck_assert(all_bytes(bigger, BLOCK, 2));
    ck_assert_uint_eq(lease_of(bigger), lease_a);
    uint64_t granted1;
    ck_assert_int_eq(lease_state(lease_a, &granted1), 1);
    ck_assert_uint_eq(granted1, granted0 + 1); /* the tail only */
    ck_assert_int_eq(lease_state(lease_c, NULL), 2);
    ck_assert_uint_ge(arena_usable_size(bigger), 3 * BLOCK);
    memset(bigger, 7, 3 * BLOCK);
    ck_assert(all_bytes(bigger, 3 * BLOCK, 7));

    /* Freed with only the anchor left (a quarter of it is 16 MiB < 24): not
     * kept; both parts go back. */
    arena_free(bigger);
    ck_assert_uint_eq(info().count, 0);
    ck_assert_int_eq(lease_state(lease_a, NULL), 2);
    arena_free(anchor);
}
END_TEST

/* More kept blocks than the cache takes out per pass (SHED_BATCH, 4): a
 * trim drops all ten, and a miss's growth rule the nine it does not join. */
START_TEST(test_many_kept_leave)
{
    void *anchor = arena_malloc(ANCHOR);
    ck_assert_ptr_nonnull(anchor);
    enum { N = 10 };
    unsigned char *blocks[N];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            blocks[i] = arena_malloc(MiB + (size_t)i * 4096);
            ck_assert_ptr_nonnull(blocks[i]);
            memset(blocks[i], i + 1, MiB);
        }
        for (int i = 0; i < N; i++) {
            arena_free(blocks[i]);
        }
        arena__hugecache_info_t before = info();
        ck_assert_uint_eq(before.count, N);
        if (round == 0) {
            ck_assert_int_ge(arena_trim(), (long long)(N * MiB));
            ck_assert_uint_eq(info().dropped, before.dropped + N);
            for (int i = 0; i < N; i++) {
                ck_assert_uint_eq(resident_pages(blocks[i], MiB), 0);
            }
        } else {
            unsigned char *big = arena_malloc(12 * MiB);
            ck_assert_ptr_nonnull(big);
            arena__hugecache_info_t after = info();
            ck_assert_uint_eq(after.joined, before.joined + 1);
            ck_assert_uint_eq(after.dropped, before.dropped + N - 1);
            /* The head is the largest, the last one allocated. */
            ck_assert(all_bytes(big, MiB, (unsigned char)N));
            arena_free(big);
        }
        ck_assert_uint_eq(info().count, round == 0 ? 0u : 1u);
    }
    arena_free(anchor);
    ck_assert_uint_eq(info().count, 0);
}
END_TEST

START_TEST(test_join_part_limit)
{
    /* A block grown by joins takes at most ARENA__HUGE_PARTS regions; the
     * next miss leases a fresh block and gives the full one back. Each
     * step keeps what the earlier steps wrote. */
    void *anchor = arena_malloc(ANCHOR);
    ck_assert_ptr_nonnull(anchor);
    size_t size = MiB;
    unsigned char *p = arena_malloc(size);
    ck_assert_ptr_nonnull(p);
    memset(p, 1, size);
    for (unsigned step = 2; step <= ARENA__HUGE_PARTS + 1; step++) {
        arena_free(p);
        arena__hugecache_info_t before = info();
        size_t next = size + MiB;
        p = arena_malloc(next);
        ck_assert_ptr_nonnull(p);
        arena__hugecache_info_t after = info();
        if (step <= ARENA__HUGE_PARTS) {
            ck_assert_uint_eq(after.joined, before.joined + 1);
            ck_assert(all_bytes(p, size, (unsigned char)(step - 1)));
            arena__huge_t *h = (arena__huge_t *)arena__map_lookup(p);
            ck_assert_uint_eq(h->block.nparts, step);
        } else {
            ck_assert_uint_eq(after.joined, before.joined);
            ck_assert_uint_eq(after.dropped, before.dropped + 1);
        }
        memset(p, (int)step, next);
        size = next;
    }
    arena_free(p);
    arena_free(anchor);
    ck_assert_uint_eq(info().live, 0);
}
END_TEST

START_TEST(test_fork_copies_joined_block)
{
    /* A live joined block is several leases end to end: a fork child gets
     * private copies of all of them, in place. */
    void *anchor = arena_malloc(ANCHOR);
    ck_assert_ptr_nonnull(anchor);
    unsigned char *a = arena_malloc(BLOCK);
    ck_assert_ptr_nonnull(a);
    memset(a, 3, BLOCK);
    arena_free(a);
    unsigned char *b = arena_malloc(2 * BLOCK);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(((arena__huge_t *)arena__map_lookup(b))->block.nparts, 2);
    memset(b + BLOCK, 4, BLOCK);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        bool seen = all_bytes(b, BLOCK, 3) && all_bytes(b + BLOCK, BLOCK, 4);
        memset(b, 9, 2 * BLOCK); /* its own copy: the parent must not see it */
        arena_free(b);
        _exit(seen ? 0 : 1);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    ck_assert(all_bytes(b, BLOCK, 3) && all_bytes(b + BLOCK, BLOCK, 4));
    arena_free(b);
    arena_free(anchor);
}
END_TEST

START_TEST(test_fit_factor)
{
    /* A kept block serves requests down to a quarter of its size, no less. */
    void *anchor;
    uint64_t lease;
    unsigned char *a = anchor_and_kept(&anchor, &lease);
    void *tiny = arena_malloc(BLOCK / 4 - 4096); /* a quarter less a page: too small */
    ck_assert_ptr_nonnull(tiny);
    ck_assert_ptr_ne(tiny, a);
    ck_assert_uint_eq(info().count, 1);
    void *quarter = arena_malloc(BLOCK / 4);
    ck_assert_ptr_eq(quarter, a);
    arena_free(quarter);
    arena_free(tiny);
    arena_free(anchor);
}
END_TEST

START_TEST(test_fork_gives_cache_back)
{
    void *anchor;
    uint64_t lease;
    unsigned char *a = anchor_and_kept(&anchor, &lease);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* The child's copy of the anchor is its own; nothing kept. */
        unsigned char *an = anchor;
        _exit(info().count == 0 && an[0] == 1 && an[ANCHOR - 1] == 1 ? 0 : 1);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    ck_assert_uint_eq(info().count, 0);
    ck_assert_int_eq(lease_state(lease, NULL), 2);
    ck_assert_uint_eq(resident_pages(a, BLOCK), 0);
    arena_free(anchor);
}
END_TEST

/* Threads replacing huge blocks of their own while the main thread runs
 * the pressure path: every block keeps its contents while it lives. */
typedef struct churn {
    unsigned seed;
    int bad;
} churn_t;

static void *churn_thread(void *arg)
{
    churn_t *c = arg;
    unsigned char *slot[3] = {NULL, NULL, NULL};
    size_t len[3] = {0, 0, 0};
    unsigned x = c->seed;
    for (int i = 0; i < 60; i++) {
        x = x * 1103515245u + 12345u;
        int s = (int)((x >> 16) % 3);
        size_t n = MiB + (size_t)((x >> 8) % (3 * MiB));
        if (slot[s] != NULL) {
            for (size_t k = 0; k < len[s]; k += 4096) {
                if (slot[s][k] != (unsigned char)(c->seed + (unsigned)s)) {
                    c->bad = 1;
                }
            }
            arena_free(slot[s]);
        }
        slot[s] = arena_malloc(n);
        if (slot[s] == NULL) {
            c->bad = 2;
            break;
        }
        memset(slot[s], (int)(unsigned char)(c->seed + (unsigned)s), n);
        len[s] = n;
    }
    for (int s = 0; s < 3; s++) {
        arena_free(slot[s]);
    }
    return NULL;
}

START_TEST(test_threads_share_cache)
{
    enum { T = 3 };
    pthread_t t[T];
    churn_t c[T];
    for (int i = 0; i < T; i++) {
        c[i] = (churn_t){.seed = 17u * (unsigned)i + 3u, .bad = 0};
        ck_assert_int_eq(pthread_create(&t[i], NULL, churn_thread, &c[i]), 0);
    }
    for (int i = 0; i < 20; i++) {
        (void)arena__region_park_release();
        (void)usleep(2000);
    }
    for (int i = 0; i < T; i++) {
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
        ck_assert_int_eq(c[i].bad, 0);
    }
    arena__hugecache_info_t hi = info();
    ck_assert_uint_eq(hi.live, 0);
    ck_assert_uint_eq(hi.count, 0);
}
END_TEST

static Suite *huge_suite(void)
{
    Suite *s = suite_create("pool_huge");
    TCase *tc = tcase_create("huge");
    tcase_set_timeout(tc, 120);
    arena_test_fixture_use(&daemon_, daemon_config, daemon_args, ARENA_TEST_EXPORT_SOCKET);
    tcase_add_checked_fixture(tc, arena_test_fixture_setup, arena_test_fixture_teardown);
    tcase_add_test(tc, test_reuse_no_lease_no_faults);
    tcase_add_test(tc, test_calloc_of_kept_block_is_zero);
    tcase_add_test(tc, test_decay_purges_kept);
    tcase_add_test(tc, test_trim_purges_kept);
    tcase_add_test(tc, test_pressure_releases_kept);
    tcase_add_test(tc, test_park_release_gives_kept);
    tcase_add_test(tc, test_last_free_keeps_nothing);
    tcase_add_test(tc, test_bound_holds);
    tcase_add_test(tc, test_many_kept_leave);
    tcase_add_test(tc, test_growth_miss_joins_largest);
    tcase_add_test(tc, test_join_part_limit);
    tcase_add_test(tc, test_fork_copies_joined_block);
    tcase_add_test(tc, test_fit_factor);
    tcase_add_test(tc, test_fork_gives_cache_back);
    tcase_add_test(tc, test_threads_share_cache);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    (void)unsetenv("ARENA_FALLBACK");
    return arena_test_run(huge_suite(), NULL);
}
