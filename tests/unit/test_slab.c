/* SPDX-License-Identifier: MIT
 *
 * test_slab.c -- typed slabs (client/slab.c).
 *
 * Most cases run on anonymous fallback regions (ARENAD_SOCKET points at a
 * socket nobody listens on and the fallback is switched on), the same code
 * path as leases minus the daemon; the "daemon" case runs a real arenad from
 * the tests' daemon fixture and checks the slots are leased memory. Concurrency cases are seeded
 * and also run under TSan (label tsan) with smaller parameters when SLAB_TEST_SMALL is set.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "arena.h"
#include "fixture.h"
#include "proc.h"
#include "alloc/internal.h"

static void setup_fallback(void)
{
    ck_assert_int_eq(setenv("ARENAD_SOCKET", "/nonexistent/arenad-test.sock", 1), 0);
    arena__region_allow_fallback(true);
}

static bool small_run(void)
{
    return getenv("SLAB_TEST_SMALL") != NULL;
}

/* True when the page holding addr is mapped in this process. */
static bool is_mapped(const void *addr)
{
    long page = sysconf(_SC_PAGESIZE);
    unsigned char vec[1];
    void *base = (void *)((uintptr_t)addr & ~(uintptr_t)(page - 1));
    return mincore(base, (size_t)page, vec) == 0;
}

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64: fixed seeds give the same run every time. */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

START_TEST(test_create_rejects_bad_arguments)
{
    arena_slab_t *slab = (arena_slab_t *)(uintptr_t)0x1234;

    ck_assert_int_eq(arena_slab_create(0, 0, &slab), -EINVAL);
    ck_assert_int_eq(arena_slab_create(16, 3, &slab), -EINVAL);
    ck_assert_int_eq(arena_slab_create(16, 24, &slab), -EINVAL);
    ck_assert_int_eq(arena_slab_create(16, 8192, &slab), -EINVAL);
    ck_assert_int_eq(arena_slab_create(ARENA__SLAB_MAX_OBJECT + 1, 0, &slab), -EINVAL);
    ck_assert_int_eq(arena_slab_create(SIZE_MAX, 0, &slab), -EINVAL);
    ck_assert_int_eq(arena_slab_create(16, 0, NULL), -EINVAL);
    /* Outputs stay untouched on failure. */
    ck_assert_ptr_eq(slab, (arena_slab_t *)(uintptr_t)0x1234);
}
END_TEST

START_TEST(test_null_is_safe)
{
    errno = 0;
    ck_assert_ptr_null(arena_slab_alloc(NULL));
    ck_assert_int_eq(errno, EINVAL);
    arena_slab_free(NULL, (void *)&errno);
    arena_slab_destroy(NULL);

    arena_slab_t *slab;
    ck_assert_int_eq(arena_slab_create(32, 0, &slab), 0);
    arena_slab_free(slab, NULL);
    ck_assert(arena__slab_is_valid(slab));
    arena_slab_destroy(slab);
}
END_TEST

START_TEST(test_no_daemon_no_fallback_fails)
{
    arena_slab_t *slab = (arena_slab_t *)(uintptr_t)0x1234;

    ck_assert_int_eq(setenv("ARENAD_SOCKET", "/nonexistent/arenad-test.sock", 1), 0);
    arena__region_allow_fallback(false);
    int r = arena_slab_create(64, 0, &slab);
    ck_assert_int_lt(r, 0);
    ck_assert_ptr_eq(slab, (arena_slab_t *)(uintptr_t)0x1234);
}
END_TEST

START_TEST(test_alignment_and_stride)
{
    static const struct {
        size_t size, align, want_align, want_stride;
    } cases[] = {
        {1, 0, 8, 8},           {8, 0, 8, 8},
        {12, 0, 8, 16},         {16, 0, 16, 16},
        {24, 0, 16, 32},        {24, 8, 8, 24},
        {1, 1, 8, 8},           {100, 64, 64, 128},
        {64, 4096, 4096, 4096}, {5000, 4096, 4096, 8192},
        {3, 2, 8, 8},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        arena_slab_t *slab;
        arena__slab_info_t info;
        void *p[300];

        ck_assert_int_eq(arena_slab_create(cases[i].size, cases[i].align, &slab), 0);
        arena__slab_info(slab, &info);
        ck_assert_uint_eq(info.align, cases[i].want_align);
        ck_assert_uint_eq(info.stride, cases[i].want_stride);
        for (size_t j = 0; j < 300; j++) {
            p[j] = arena_slab_alloc(slab);
            ck_assert_ptr_nonnull(p[j]);
            ck_assert_uint_eq((uintptr_t)p[j] % info.align, 0);
            memset(p[j], (int)j, cases[i].size);
        }
        for (size_t j = 0; j < 300; j++)
            ck_assert_uint_eq(((unsigned char *)p[j])[cases[i].size - 1], (unsigned char)j);
        for (size_t j = 0; j < 300; j++)
            arena_slab_free(slab, p[j]);
        ck_assert(arena__slab_is_valid(slab));
        arena_slab_destroy(slab);
    }
}
END_TEST

START_TEST(test_slot_reuse_is_immediate)
{
    arena_slab_t *slab;
    void *a, *b, *c;

    ck_assert_int_eq(arena_slab_create(48, 0, &slab), 0);
    a = arena_slab_alloc(slab);
    b = arena_slab_alloc(slab);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_ne(a, b);

    /* Free then alloc returns the same slot, LIFO. */
    arena_slab_free(slab, a);
    ck_assert_ptr_eq(arena_slab_alloc(slab), a);
    arena_slab_free(slab, a);
    arena_slab_free(slab, b);
    ck_assert_ptr_eq(arena_slab_alloc(slab), b);
    ck_assert_ptr_eq(arena_slab_alloc(slab), a);

    /* A million alloc/free pairs use one slot and no new chunk. */
    arena__slab_info_t before, after;
    arena__slab_info(slab, &before);
    for (int i = 0; i < 1000000; i++) {
        c = arena_slab_alloc(slab);
        ck_assert_ptr_nonnull(c);
        arena_slab_free(slab, c);
    }
    arena__slab_info(slab, &after);
    ck_assert_uint_eq(after.chunk_count, before.chunk_count);
    ck_assert_ptr_eq(arena_slab_alloc(slab), c);
    arena_slab_destroy(slab);
}
END_TEST

START_TEST(test_many_objects_distinct_and_reused)
{
    const size_t n = small_run() ? 20000 : 200000;
    uintptr_t *p = calloc(n, sizeof(*p));
    arena__slab_info_t info, info2;
    arena_slab_t *slab;

    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(arena_slab_create(40, 0, &slab), 0);
    arena__slab_info(slab, &info);
    for (size_t i = 0; i < n; i++) {
        p[i] = (uintptr_t)arena_slab_alloc(slab);
        ck_assert(p[i] != 0);
        memset((void *)p[i], (int)(i & 0xff), 40);
    }
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_eq(*(unsigned char *)(p[i] + 39), i & 0xff);
    arena__slab_info(slab, &info);
    ck_assert_uint_ge(info.chunk_count, 2);
    ck_assert_uint_ge(info.chunk_bytes, n * info.stride);

    /* No two objects overlap. */
    qsort(p, n, sizeof(*p), cmp_ptr);
    for (size_t i = 1; i < n; i++)
        ck_assert_uint_ge(p[i] - p[i - 1], info.stride);

    for (size_t i = 0; i < n; i++)
        arena_slab_free(slab, (void *)p[i]);
    ck_assert(arena__slab_is_valid(slab));

    /* The same number again fits in the slots already held. */
    for (size_t i = 0; i < n; i++) {
        p[i] = (uintptr_t)arena_slab_alloc(slab);
        ck_assert(p[i] != 0);
    }
    arena__slab_info(slab, &info2);
    ck_assert_uint_eq(info2.chunk_count, info.chunk_count);
    qsort(p, n, sizeof(*p), cmp_ptr);
    for (size_t i = 1; i < n; i++)
        ck_assert_uint_ge(p[i] - p[i - 1], info.stride);
    arena_slab_destroy(slab);
    free(p);
}
END_TEST

START_TEST(test_destroy_releases_chunks)
{
    arena_slab_t *slab;
    void *first, *last = NULL;

    ck_assert_int_eq(arena_slab_create(1024, 0, &slab), 0);
    first = arena_slab_alloc(slab);
    ck_assert_ptr_nonnull(first);
    for (int i = 0; i < 20000; i++) {
        last = arena_slab_alloc(slab);
        ck_assert_ptr_nonnull(last);
    }
    arena__slab_info_t info;
    arena__slab_info(slab, &info);
    ck_assert_uint_ge(info.chunk_count, 3);
    ck_assert(is_mapped(first));
    ck_assert(is_mapped(last));
    arena_stats_t before, after;
    ck_assert_int_eq(arena_stats(&before), 0);
    ck_assert_uint_ge(before.leased_bytes, info.chunk_bytes);
    arena_slab_destroy(slab);
    /* arena_stats() sees the chunks go. */
    ck_assert_int_eq(arena_stats(&after), 0);
    ck_assert_uint_eq(before.leased_bytes - after.leased_bytes, info.chunk_bytes);
    ck_assert_uint_eq(before.lease_count - after.lease_count, info.chunk_count);
    ck_assert(!is_mapped(first));
    ck_assert(!is_mapped(last));
}
END_TEST

/* ---- threads ------------------------------------------------------------------ */

#define MT_THREADS 4
#define MT_MAILBOX 4096

struct mailbox {
    pthread_mutex_t lock;
    void *slot[MT_MAILBOX];
    size_t n;
};

struct mt_shared {
    arena_slab_t *slab;
    size_t object_size;
    long ops;
    struct mailbox box[MT_THREADS];
    _Atomic long errors;
    _Atomic long live;
};

struct mt_arg {
    struct mt_shared *sh;
    unsigned id;
};

/* Objects carry their own pattern: a 64-bit tag then bytes derived from it. */
static void obj_fill(void *p, size_t size, uint64_t tag)
{
    unsigned char *b = p;
    memcpy(b, &tag, sizeof(tag));
    for (size_t i = sizeof(tag); i < size; i++)
        b[i] = (unsigned char)(tag * 31 + i);
}

static bool obj_check(const void *p, size_t size)
{
    const unsigned char *b = p;
    uint64_t tag;
    memcpy(&tag, b, sizeof(tag));
    for (size_t i = sizeof(tag); i < size; i++)
        if (b[i] != (unsigned char)(tag * 31 + i))
            return false;
    return true;
}

static void *mt_worker(void *varg)
{
    struct mt_arg *arg = varg;
    struct mt_shared *sh = arg->sh;
    uint64_t seed = 0x5eed0000u + arg->id;
    void *mine[256];
    size_t nmine = 0;

    for (long op = 0; op < sh->ops; op++) {
        uint64_t r = rng_next(&seed);
        unsigned action = (unsigned)(r % 8);
        if (action < 3 && nmine < 256) {
            void *p = arena_slab_alloc(sh->slab);
            if (!p) {
                sh->errors++;
                continue;
            }
            obj_fill(p, sh->object_size, r);
            mine[nmine++] = p;
            sh->live++;
        } else if (action < 5 && nmine > 0) {
            /* Free one of ours. */
            size_t k = (size_t)(r >> 8) % nmine;
            void *p = mine[k];
            mine[k] = mine[--nmine];
            if (!obj_check(p, sh->object_size))
                sh->errors++;
            arena_slab_free(sh->slab, p);
            sh->live--;
        } else if (action < 7 && nmine > 0) {
            /* Hand one to another thread, which frees it. */
            unsigned to = (unsigned)((r >> 16) % MT_THREADS);
            struct mailbox *mb = &sh->box[to];
            pthread_mutex_lock(&mb->lock);
            if (mb->n < MT_MAILBOX) {
                mb->slot[mb->n++] = mine[--nmine];
            }
            pthread_mutex_unlock(&mb->lock);
        } else {
            /* Free what others sent us. */
            struct mailbox *mb = &sh->box[arg->id];
            void *got[64];
            size_t n = 0;
            pthread_mutex_lock(&mb->lock);
            while (mb->n > 0 && n < 64)
                got[n++] = mb->slot[--mb->n];
            pthread_mutex_unlock(&mb->lock);
            for (size_t i = 0; i < n; i++) {
                if (!obj_check(got[i], sh->object_size))
                    sh->errors++;
                arena_slab_free(sh->slab, got[i]);
                sh->live--;
            }
        }
    }
    for (size_t i = 0; i < nmine; i++) {
        if (!obj_check(mine[i], sh->object_size))
            sh->errors++;
        arena_slab_free(sh->slab, mine[i]);
        sh->live--;
    }
    return NULL;
}

static void mt_run(size_t object_size, long ops)
{
    struct mt_shared *sh = calloc(1, sizeof(*sh));
    pthread_t th[MT_THREADS];
    struct mt_arg args[MT_THREADS];

    ck_assert_ptr_nonnull(sh);
    ck_assert_int_eq(arena_slab_create(object_size, 0, &sh->slab), 0);
    sh->object_size = object_size;
    sh->ops = ops;
    for (unsigned i = 0; i < MT_THREADS; i++)
        pthread_mutex_init(&sh->box[i].lock, NULL);
    for (unsigned i = 0; i < MT_THREADS; i++) {
        args[i].sh = sh;
        args[i].id = i;
        ck_assert_int_eq(pthread_create(&th[i], NULL, mt_worker, &args[i]), 0);
    }
    for (unsigned i = 0; i < MT_THREADS; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    /* Leftovers in the mailboxes. */
    for (unsigned i = 0; i < MT_THREADS; i++)
        for (size_t j = 0; j < sh->box[i].n; j++) {
            ck_assert(obj_check(sh->box[i].slot[j], object_size));
            arena_slab_free(sh->slab, sh->box[i].slot[j]);
            sh->live--;
        }
    ck_assert_int_eq(sh->errors, 0);
    ck_assert_int_eq(sh->live, 0);
    ck_assert(arena__slab_is_valid(sh->slab));

    /* Every slot is free again: a fresh round of allocations gets distinct,
     * writable slots and never hands one out twice. */
    arena__slab_info_t info;
    arena__slab_info(sh->slab, &info);
    size_t n = 4096;
    uintptr_t *p = calloc(n, sizeof(*p));
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++) {
        p[i] = (uintptr_t)arena_slab_alloc(sh->slab);
        ck_assert(p[i] != 0);
        obj_fill((void *)p[i], object_size, i);
    }
    for (size_t i = 0; i < n; i++)
        ck_assert(obj_check((void *)p[i], object_size));
    qsort(p, n, sizeof(*p), cmp_ptr);
    for (size_t i = 1; i < n; i++)
        ck_assert_uint_ge(p[i] - p[i - 1], info.stride);
    free(p);
    arena_slab_destroy(sh->slab);
    for (unsigned i = 0; i < MT_THREADS; i++)
        pthread_mutex_destroy(&sh->box[i].lock);
    free(sh);
}

START_TEST(test_threads_cross_free_small)
{
    mt_run(16, small_run() ? 20000 : 400000);
}
END_TEST

START_TEST(test_threads_cross_free_large)
{
    mt_run(200, small_run() ? 10000 : 200000);
}
END_TEST

/* Producer/consumer: every object crosses threads, so slots flow through the
 * shared stack only. */
struct pc_arg {
    arena_slab_t *slab;
    void *ring[1024];
    _Atomic size_t head, tail; /* single producer, single consumer */
    long count;
    long errors;
};

static void *pc_producer(void *varg)
{
    struct pc_arg *a = varg;
    for (long i = 0; i < a->count; i++) {
        void *p;
        while (!(p = arena_slab_alloc(a->slab)))
            a->errors++;
        obj_fill(p, 64, (uint64_t)i);
        size_t h = atomic_load_explicit(&a->head, memory_order_relaxed);
        while (h - atomic_load_explicit(&a->tail, memory_order_acquire) >= 1024)
            sched_yield();
        a->ring[h % 1024] = p;
        atomic_store_explicit(&a->head, h + 1, memory_order_release);
    }
    return NULL;
}

static void *pc_consumer(void *varg)
{
    struct pc_arg *a = varg;
    for (long i = 0; i < a->count; i++) {
        size_t t = atomic_load_explicit(&a->tail, memory_order_relaxed);
        while (atomic_load_explicit(&a->head, memory_order_acquire) == t)
            sched_yield();
        void *p = a->ring[t % 1024];
        atomic_store_explicit(&a->tail, t + 1, memory_order_release);
        uint64_t tag;
        memcpy(&tag, p, sizeof(tag));
        if (tag != (uint64_t)i || !obj_check(p, 64))
            a->errors++;
        arena_slab_free(a->slab, p);
    }
    return NULL;
}

START_TEST(test_producer_consumer_bounded)
{
    struct pc_arg *a = calloc(1, sizeof(*a));
    pthread_t prod, cons;
    arena__slab_info_t info;

    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(arena_slab_create(64, 0, &a->slab), 0);
    a->count = small_run() ? 50000 : 1000000;
    ck_assert_int_eq(pthread_create(&prod, NULL, pc_producer, a), 0);
    ck_assert_int_eq(pthread_create(&cons, NULL, pc_consumer, a), 0);
    pthread_join(prod, NULL);
    pthread_join(cons, NULL);
    ck_assert_int_eq(a->errors, 0);
    /* At most 1024 objects are live at once, plus what the two caches and the
     * shared stack hold: the slab must not grow with the object count. */
    arena__slab_info(a->slab, &info);
    ck_assert_uint_le(info.chunk_bytes / info.stride, (size_t)a->count / 8);
    arena_slab_destroy(a->slab);
    free(a);
}
END_TEST

/* A thread that exits hands its index (and its cache of free slots) to the
 * next thread: slots do not leak with thread churn. */
struct churn_arg {
    arena_slab_t *slab;
    unsigned index;
    void *got;
    void *freed[8];
};

static void *churn_free_and_exit(void *varg)
{
    struct churn_arg *a = varg;
    a->index = arena__slab_thread_index();
    for (int i = 0; i < 8; i++) {
        a->freed[i] = arena_slab_alloc(a->slab);
    }
    for (int i = 0; i < 8; i++)
        arena_slab_free(a->slab, a->freed[i]);
    return NULL;
}

static void *churn_alloc(void *varg)
{
    struct churn_arg *a = varg;
    a->index = arena__slab_thread_index();
    a->got = arena_slab_alloc(a->slab);
    return NULL;
}

START_TEST(test_thread_exit_hands_cache_on)
{
    struct churn_arg a1 = {0}, a2 = {0};
    pthread_t t;
    arena__slab_info_t before, after;

    ck_assert_int_eq(arena_slab_create(32, 0, &a1.slab), 0);
    a2.slab = a1.slab;
    ck_assert_int_eq(pthread_create(&t, NULL, churn_free_and_exit, &a1), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_uint_lt(a1.index, ARENA__SLAB_MAX_THREADS);
    arena__slab_info(a1.slab, &before);

    /* The next thread gets the same index (the lowest free one; joining waits
     * for the key destructor) and starts with the cache the first one left:
     * its first alloc is the slot the first thread freed last. */
    ck_assert_int_eq(pthread_create(&t, NULL, churn_alloc, &a2), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_uint_eq(a2.index, a1.index);
    ck_assert_ptr_eq(a2.got, a1.freed[7]);
    arena_slab_free(a1.slab, a2.got);

    /* Many short threads in turn (the main thread, which frees their slots,
     * now holds an index too): no growth. */
    for (int i = 0; i < 200; i++) {
        ck_assert_int_eq(pthread_create(&t, NULL, churn_alloc, &a2), 0);
        ck_assert_int_eq(pthread_join(t, NULL), 0);
        ck_assert_ptr_nonnull(a2.got);
        ck_assert_uint_lt(a2.index, ARENA__SLAB_MAX_THREADS);
        arena_slab_free(a1.slab, a2.got);
    }
    arena__slab_info(a1.slab, &after);
    ck_assert_uint_eq(after.chunk_count, before.chunk_count);
    arena_slab_destroy(a1.slab);
}
END_TEST

#ifndef __SANITIZE_THREAD__ /* TSan does not support threads after a multi-threaded fork */
/* fork(): a thread alive in the parent does not exist in the child, so its
 * index is free there. */
struct forked_arg {
    arena_slab_t *slab;
    unsigned index;
    int release[2]; /* a pipe: the thread waits for a byte */
};

static void *fork_holder(void *varg)
{
    struct forked_arg *a = varg;
    char c;
    unsigned index = arena__slab_thread_index();
    arena_slab_free(a->slab, arena_slab_alloc(a->slab));
    __atomic_store_n(&a->index, index, __ATOMIC_RELEASE);
    if (read(a->release[0], &c, 1) < 0)
        return NULL;
    return NULL;
}

static void *fork_claimer(void *varg)
{
    struct forked_arg *a = varg;
    void *p = arena_slab_alloc(a->slab);
    a->index = p ? arena__slab_thread_index() : ARENA__SLAB_MAX_THREADS + 1;
    arena_slab_free(a->slab, p);
    return NULL;
}

START_TEST(test_fork_frees_indexes_of_other_threads)
{
    struct forked_arg a = {0}, b = {0};
    pthread_t t;
    int status;

    ck_assert_int_eq(arena_slab_create(32, 0, &a.slab), 0);
    ck_assert_int_eq(pipe(a.release), 0);
    arena_slab_free(a.slab, arena_slab_alloc(a.slab)); /* main: index 0 */
    ck_assert_uint_eq(arena__slab_thread_index(), 0);
    ck_assert_int_eq(pthread_create(&t, NULL, fork_holder, &a), 0);
    while (__atomic_load_n(&a.index, __ATOMIC_ACQUIRE) == 0)
        sched_yield();
    ck_assert_uint_eq(a.index, 1);

    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        pthread_t c;
        b.slab = a.slab;
        if (pthread_create(&c, NULL, fork_claimer, &b) != 0 || pthread_join(c, NULL) != 0)
            _exit(2);
        _exit(b.index == 1 ? 0 : 1);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    ck_assert_int_eq(write(a.release[1], "x", 1), 1);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    close(a.release[0]);
    close(a.release[1]);
    arena_slab_destroy(a.slab);
}
END_TEST
#endif

/* More threads alive at once than there are cache indexes: the extra ones use
 * the shared overflow cache and everything still works. */
#define OVERFLOW_THREADS (ARENA__SLAB_MAX_THREADS + 8)

struct overflow_shared {
    arena_slab_t *slab;
    pthread_barrier_t barrier;
    _Atomic long errors;
    _Atomic unsigned overflowed;
};

static void *overflow_worker(void *varg)
{
    struct overflow_shared *sh = varg;
    void *p[4];

    if (arena__slab_thread_index() == ARENA__SLAB_MAX_THREADS)
        sh->overflowed++;
    pthread_barrier_wait(&sh->barrier);
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 4; i++) {
            p[i] = arena_slab_alloc(sh->slab);
            if (!p[i]) {
                sh->errors++;
                return NULL;
            }
            obj_fill(p[i], 24, (uint64_t)(uintptr_t)p[i]);
        }
        for (int i = 0; i < 4; i++) {
            if (!obj_check(p[i], 24))
                sh->errors++;
            arena_slab_free(sh->slab, p[i]);
        }
    }
    return NULL;
}

START_TEST(test_more_threads_than_indexes)
{
    struct overflow_shared sh = {0};
    pthread_t *th = calloc(OVERFLOW_THREADS, sizeof(*th));
    pthread_attr_t attr;
    unsigned started = 0;

    ck_assert_ptr_nonnull(th);
    ck_assert_int_eq(arena_slab_create(24, 0, &sh.slab), 0);
    ck_assert_int_eq(pthread_attr_init(&attr), 0);
    ck_assert_int_eq(pthread_attr_setstacksize(&attr, 128 * 1024), 0);
    ck_assert_int_eq(pthread_barrier_init(&sh.barrier, NULL, OVERFLOW_THREADS), 0);
    for (unsigned i = 0; i < OVERFLOW_THREADS; i++) {
        ck_assert_int_eq(pthread_create(&th[i], &attr, overflow_worker, &sh), 0);
        started++;
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(sh.errors, 0);
    /* The main thread holds an index of its own only if it used a slab; it
     * did not, so at least the last 8 threads overflowed. */
    ck_assert_uint_ge(sh.overflowed, 8);
    ck_assert(arena__slab_is_valid(sh.slab));
    pthread_barrier_destroy(&sh.barrier);
    pthread_attr_destroy(&attr);
    arena_slab_destroy(sh.slab);
    free(th);
}
END_TEST

/* ---- on daemon leases ----------------------------------------------------------- */

static arena_test_daemon_t daemon_;

static void setup_daemon(void)
{
    arena_test_fixture_setup();
    arena__region_allow_fallback(false);
}

START_TEST(test_slab_on_leases)
{
    arena_slab_t *slab;
    arena_stats_t before, during, after;
    arena__slab_info_t info;
    void *p[20000];

    ck_assert_int_eq(arena_stats(&before), 0);
    ck_assert_int_eq(arena_slab_create(100, 0, &slab), 0);
    for (int i = 0; i < 20000; i++) {
        p[i] = arena_slab_alloc(slab);
        ck_assert_ptr_nonnull(p[i]);
        memset(p[i], i & 0xff, 100);
    }
    ck_assert(arena_test_is_memfd_mapped(p[0]));
    ck_assert(arena_test_is_memfd_mapped(p[19999]));
    for (int i = 0; i < 20000; i++)
        ck_assert_uint_eq(((unsigned char *)p[i])[99], i & 0xff);
    arena__slab_info(slab, &info);
    ck_assert_int_eq(arena_stats(&during), 0);
    ck_assert_uint_eq(during.leased_bytes - before.leased_bytes, info.chunk_bytes);
    ck_assert_uint_eq(during.lease_count - before.lease_count, info.chunk_count);
    for (int i = 0; i < 20000; i++)
        arena_slab_free(slab, p[i]);
    arena_slab_destroy(slab);
    ck_assert_int_eq(arena_stats(&after), 0);
    ck_assert_uint_eq(after.leased_bytes, before.leased_bytes);
    ck_assert(!is_mapped(p[0]));
}
END_TEST

static Suite *slab_suite(void)
{
    Suite *s = suite_create("slab");
    TCase *tc = tcase_create("api");
    tcase_add_checked_fixture(tc, setup_fallback, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_create_rejects_bad_arguments);
    tcase_add_test(tc, test_null_is_safe);
    tcase_add_test(tc, test_alignment_and_stride);
    tcase_add_test(tc, test_slot_reuse_is_immediate);
    tcase_add_test(tc, test_many_objects_distinct_and_reused);
    tcase_add_test(tc, test_destroy_releases_chunks);
    suite_add_tcase(s, tc);

    TCase *tn = tcase_create("no_daemon");
    tcase_set_timeout(tn, 30);
    tcase_add_test(tn, test_no_daemon_no_fallback_fails);
    suite_add_tcase(s, tn);

    TCase *td = tcase_create("daemon");
    arena_test_fixture_use(&daemon_, NULL, NULL, ARENA_TEST_EXPORT_SOCKET);
    tcase_add_checked_fixture(td, setup_daemon, arena_test_fixture_teardown);
    tcase_set_timeout(td, 60);
    tcase_add_test(td, test_slab_on_leases);
    suite_add_tcase(s, td);

    TCase *tt = tcase_create("threads");
    tcase_add_checked_fixture(tt, setup_fallback, NULL);
    tcase_set_timeout(tt, 120);
    tcase_add_test(tt, test_threads_cross_free_small);
    tcase_add_test(tt, test_threads_cross_free_large);
    tcase_add_test(tt, test_producer_consumer_bounded);
    tcase_add_test(tt, test_thread_exit_hands_cache_on);
#ifndef __SANITIZE_THREAD__ /* TSan does not support threads after a multi-threaded fork */
    tcase_add_test(tt, test_fork_frees_indexes_of_other_threads);
#endif
    tcase_add_test(tt, test_more_threads_than_indexes);
    suite_add_tcase(s, tt);
    return s;
}

ARENA_TEST_MAIN(slab_suite)
