/* SPDX-License-Identifier: MIT
 *
 * test_pool_mt.c -- the pools under threads, on anonymous fallback memory:
 * producer/consumer (every object freed by another thread), threads exiting
 * with live objects that others free, and the seeded random stress. Also run
 * under ThreadSanitizer with smaller parameters (POOL_TEST_SMALL=1).
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "arena.h"

typedef struct pool_stress_params {
    unsigned threads;
    unsigned ops;
    unsigned seed;
} pool_stress_params_t;

int pool_stress_run(const pool_stress_params_t *params, char *err, size_t errlen);

static bool small_run(void)
{
    const char *v = getenv("POOL_TEST_SMALL");
    return v != NULL && v[0] == '1';
}

/* Nothing is live once every object is freed, and after a trim (which
 * takes what exited threads left behind) no lease is held. */
static void assert_all_back(void)
{
    arena_stats_t st;
    ck_assert_int_eq(arena_stats(&st), 0);
    ck_assert_uint_eq(st.live_bytes, 0);
    (void)arena_trim();
    ck_assert_int_eq(arena_stats(&st), 0);
    ck_assert_uint_eq(st.lease_count, 0);
}

/* ---- producer / consumer ----------------------------------------------------- */

#define RING 1024

typedef struct pc_shared {
    pthread_mutex_t lock;
    pthread_cond_t nonempty, nonfull;
    void *ring[RING];
    unsigned head, tail, count;
    unsigned per_producer;
    unsigned producers_left;
    _Atomic uint8_t *seen;
    _Atomic unsigned consumed;
    _Atomic int bad;
} pc_shared_t;

typedef struct pc_arg {
    pc_shared_t *sh;
    unsigned index;
} pc_arg_t;

static size_t pc_size(unsigned id)
{
    unsigned r = (id * 2654435761u) >> 7;
    return r % 50 == 0 ? 150000 + r % 400000 : 8 + r % 2000;
}

static void *producer(void *arg)
{
    pc_arg_t *a = arg;
    pc_shared_t *sh = a->sh;
    for (unsigned k = 0; k < sh->per_producer; k++) {
        unsigned id = a->index * sh->per_producer + k;
        size_t n = pc_size(id);
        unsigned char *p = arena_malloc(n);
        if (p == NULL) {
            atomic_store(&sh->bad, 1);
            break;
        }
        memcpy(p, &id, sizeof(id));
        memset(p + sizeof(id), (int)(id & 0xff), n - sizeof(id));
        (void)pthread_mutex_lock(&sh->lock);
        while (sh->count == RING) {
            (void)pthread_cond_wait(&sh->nonfull, &sh->lock);
        }
        sh->ring[sh->tail] = p;
        sh->tail = (sh->tail + 1) % RING;
        sh->count++;
        (void)pthread_cond_signal(&sh->nonempty);
        (void)pthread_mutex_unlock(&sh->lock);
    }
    (void)pthread_mutex_lock(&sh->lock);
    sh->producers_left--;
    (void)pthread_cond_broadcast(&sh->nonempty);
    (void)pthread_mutex_unlock(&sh->lock);
    return NULL;
}

static void *consumer(void *arg)
{
    pc_shared_t *sh = ((pc_arg_t *)arg)->sh;
    for (;;) {
        (void)pthread_mutex_lock(&sh->lock);
        while (sh->count == 0 && sh->producers_left > 0) {
            (void)pthread_cond_wait(&sh->nonempty, &sh->lock);
        }
        if (sh->count == 0) {
            (void)pthread_mutex_unlock(&sh->lock);
            return NULL;
        }
        unsigned char *p = sh->ring[sh->head];
        sh->head = (sh->head + 1) % RING;
        sh->count--;
        (void)pthread_cond_signal(&sh->nonfull);
        (void)pthread_mutex_unlock(&sh->lock);

        unsigned id;
        memcpy(&id, p, sizeof(id));
        size_t n = pc_size(id);
        if (arena_usable_size(p) < n) {
            atomic_store(&sh->bad, 1);
        }
        for (size_t i = sizeof(id); i < n; i++) {
            if (p[i] != (unsigned char)(id & 0xff)) {
                atomic_store(&sh->bad, 1);
                break;
            }
        }
        if (atomic_fetch_add(&sh->seen[id], 1) != 0) {
            atomic_store(&sh->bad, 2); /* delivered twice */
        }
        arena_free(p);
        atomic_fetch_add(&sh->consumed, 1);
    }
}

START_TEST(test_producer_consumer)
{
    enum { P = 2, C = 2 };
    pc_shared_t *sh = calloc(1, sizeof(*sh));
    ck_assert_ptr_nonnull(sh);
    (void)pthread_mutex_init(&sh->lock, NULL);
    (void)pthread_cond_init(&sh->nonempty, NULL);
    (void)pthread_cond_init(&sh->nonfull, NULL);
    sh->per_producer = small_run() ? 5000 : 50000;
    sh->producers_left = P;
    sh->seen = calloc((size_t)P * sh->per_producer, 1);
    ck_assert_ptr_nonnull((void *)sh->seen);
    pthread_t t[P + C];
    pc_arg_t args[P + C];
    for (unsigned i = 0; i < P + C; i++) {
        args[i].sh = sh;
        args[i].index = i;
        ck_assert_int_eq(pthread_create(&t[i], NULL, i < P ? producer : consumer, &args[i]), 0);
    }
    for (unsigned i = 0; i < P + C; i++) {
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    }
    ck_assert_int_eq(atomic_load(&sh->bad), 0);
    ck_assert_uint_eq(atomic_load(&sh->consumed), P * sh->per_producer);
    for (unsigned i = 0; i < P * sh->per_producer; i++) {
        ck_assert_uint_eq(atomic_load(&sh->seen[i]), 1);
    }
    /* Every thread has exited: trim takes what they left and returns all. */
    assert_all_back();
    free((void *)sh->seen);
    free(sh);
}
END_TEST

/* ---- threads exit, others free ----------------------------------------------- */

#define EXIT_OBJS 2000

static void *alloc_then_exit(void *arg)
{
    void **objs = arg;
    for (unsigned i = 0; i < EXIT_OBJS; i++) {
        size_t n = i % 50 == 0 ? 300000 : 16 + (i * 37u) % 3000;
        objs[i] = arena_malloc(n);
        if (objs[i] != NULL) {
            memset(objs[i], (int)(i & 0xff), 16);
        }
    }
    return NULL;
}

typedef struct freer_arg {
    void **objs;
    unsigned from, step;
    _Atomic int *bad;
} freer_arg_t;

static void *free_some(void *arg)
{
    freer_arg_t *a = arg;
    /* Allocate too, so this thread's heap may adopt the abandoned segments
     * while others still free into them. */
    void *mine[64];
    for (unsigned i = 0; i < 64; i++) {
        mine[i] = arena_malloc(4096 + i * 1000);
    }
    for (unsigned i = a->from; i < EXIT_OBJS; i += a->step) {
        unsigned char *p = a->objs[i];
        if (p == NULL || p[0] != (unsigned char)(i & 0xff) || p[15] != (unsigned char)(i & 0xff)) {
            atomic_store(a->bad, 1);
        }
        arena_free(p);
    }
    for (unsigned i = 0; i < 64; i++) {
        arena_free(mine[i]);
    }
    return NULL;
}

START_TEST(test_thread_exit_freed_by_others)
{
    static void *objs[4][EXIT_OBJS];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(pthread_create(&t[i], NULL, alloc_then_exit, objs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    }
    _Atomic int bad = 0;
    /* Two freers per exited thread, each taking every other object. */
    freer_arg_t args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (freer_arg_t){objs[i], 0, 2, &bad};
    }
    pthread_t f[8];
    freer_arg_t args2[4];
    for (int i = 0; i < 4; i++) {
        args2[i] = (freer_arg_t){objs[i], 1, 2, &bad};
        ck_assert_int_eq(pthread_create(&f[i], NULL, free_some, &args[i]), 0);
        ck_assert_int_eq(pthread_create(&f[4 + i], NULL, free_some, &args2[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(pthread_join(f[i], NULL), 0);
    }
    ck_assert_int_eq(atomic_load(&bad), 0);
    assert_all_back();
}
END_TEST

/* ---- thread churn -------------------------------------------------------------- */

#define CHURN_SLOTS   4096
#define CHURN_THREADS 10 /* at a time */

static _Atomic(void *) churn_table[CHURN_SLOTS];
static _Atomic unsigned churn_seq;
static _Atomic int churn_bad;

/* A short thread: allocates a few objects, swaps each into the shared table
 * and frees what it found there (mostly objects of threads that exited). */
static void *churn_thread(void *arg)
{
    (void)arg;
    for (int k = 0; k < 4; k++) {
        unsigned s = atomic_fetch_add(&churn_seq, 7919u);
        size_t n = 16 + s % 240;
        unsigned char *p = arena_malloc(n);
        if (p == NULL) {
            atomic_store(&churn_bad, 1);
            return NULL;
        }
        p[0] = (unsigned char)n;
        p[n - 1] = (unsigned char)n;
        unsigned char *old = atomic_exchange(&churn_table[s % CHURN_SLOTS], p);
        if (old != NULL) {
            size_t m = arena_usable_size(old);
            if (m < 16 || old[0] < 16 || old[old[0] - 1] != old[0] || m < old[0]) {
                atomic_store(&churn_bad, 1);
            }
            arena_free(old);
        }
    }
    return NULL;
}

/* Thousands of threads, ten at a time, hand objects across through a table:
 * exited threads' heaps are recycled with their segments, so the leased
 * bytes stay near what ten threads need instead of growing with the number
 * of threads that ever ran; at the end everything goes back. */
START_TEST(test_thread_churn_bounded)
{
    unsigned total = small_run() ? 1000u : 4000u;
    uint64_t peak_leased = 0, peak_leases = 0;
    for (unsigned i = 0; i < total; i += CHURN_THREADS) {
        pthread_t t[CHURN_THREADS];
        for (int k = 0; k < CHURN_THREADS; k++) {
            ck_assert_int_eq(pthread_create(&t[k], NULL, churn_thread, NULL), 0);
        }
        for (int k = 0; k < CHURN_THREADS; k++) {
            ck_assert_int_eq(pthread_join(t[k], NULL), 0);
        }
        arena_stats_t st;
        ck_assert_int_eq(arena_stats(&st), 0);
        peak_leased = st.leased_bytes > peak_leased ? st.leased_bytes : peak_leased;
        peak_leases = st.lease_count > peak_leases ? st.lease_count : peak_leases;
    }
    ck_assert_int_eq(atomic_load(&churn_bad), 0);
    /* At most a segment per thread running at once, and two more (here: 2
     * leases; before heaps were recycled, 131 leases, 524 MiB). */
    ck_assert_msg(peak_leased <= (uint64_t)(CHURN_THREADS + 2) * (4u << 20),
                  "peak leased %llu bytes in %llu leases", (unsigned long long)peak_leased,
                  (unsigned long long)peak_leases);
    for (unsigned i = 0; i < CHURN_SLOTS; i++) {
        arena_free(atomic_exchange(&churn_table[i], NULL));
    }
    assert_all_back();
}
END_TEST

/* More threads exit at once than unbound heaps may keep segments: the rest
 * are abandoned, and a thread that frees into them or trims gets every one
 * back; nothing is lost either way. */
#define BURST_THREADS 80
#define BURST_OBJS    200

static pthread_barrier_t burst_barrier;

static void *burst_thread(void *arg)
{
    void **objs = arg;
    for (unsigned i = 0; i < BURST_OBJS; i++) {
        objs[i] = arena_malloc(32 + (i * 53u) % 2000);
        if (objs[i] != NULL) {
            memset(objs[i], 0x5a, 32);
        }
    }
    (void)pthread_barrier_wait(&burst_barrier);
    return NULL;
}

START_TEST(test_thread_burst_exit)
{
    static void *objs[BURST_THREADS][BURST_OBJS];
    pthread_t t[BURST_THREADS];
    ck_assert_int_eq(pthread_barrier_init(&burst_barrier, NULL, BURST_THREADS), 0);
    for (int i = 0; i < BURST_THREADS; i++) {
        ck_assert_int_eq(pthread_create(&t[i], NULL, burst_thread, objs[i]), 0);
    }
    for (int i = 0; i < BURST_THREADS; i++) {
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    }
    (void)pthread_barrier_destroy(&burst_barrier);
    arena_stats_t st;
    ck_assert_int_eq(arena_stats(&st), 0);
    ck_assert_uint_ge(st.lease_count, BURST_THREADS);
    /* The main thread frees them all: remote frees into unbound and
     * abandoned heaps, serviced and adopted as they come. */
    for (int i = 0; i < BURST_THREADS; i++) {
        for (unsigned j = 0; j < BURST_OBJS; j++) {
            unsigned char *p = objs[i][j];
            ck_assert(p != NULL && p[0] == 0x5a && p[31] == 0x5a);
            arena_free(p);
        }
    }
    assert_all_back();
}
END_TEST

/* ---- seeded stress ------------------------------------------------------------ */

START_TEST(test_stress)
{
    pool_stress_params_t p = {
        .threads = small_run() ? 3 : 4,
        .ops = small_run() ? 20000 : 200000,
        .seed = 1234u + (unsigned)_i,
    };
    char err[300] = "";
    int rc = pool_stress_run(&p, err, sizeof(err));
    ck_assert_msg(rc == 0, "%s", err);
    assert_all_back();
}
END_TEST

static Suite *mt_suite(void)
{
    Suite *s = suite_create("pool_mt");
    TCase *tc = tcase_create("threads");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_producer_consumer);
    tcase_add_test(tc, test_thread_exit_freed_by_others);
    tcase_add_test(tc, test_thread_churn_bounded);
    tcase_add_test(tc, test_thread_burst_exit);
    tcase_add_loop_test(tc, test_stress, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    (void)setenv("ARENAD_SOCKET", "/nonexistent-arenad-test-dir/arenad.sock", 1);
    (void)setenv("ARENA_FALLBACK", "1", 1);
    (void)unsetenv("ARENA_REQUIRE_DAEMON");
    return arena_test_run(mt_suite(), NULL);
}
