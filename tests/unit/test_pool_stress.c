/* SPDX-License-Identifier: MIT
 *
 * test_pool_stress.c -- seeded multi-threaded stress of the pools, shared by
 * test_pool_mt (fallback memory) and test_pool_daemon (a real arenad).
 *
 * Threads allocate (mostly small, some large, a few huge sizes), free,
 * realloc, and swap objects through a shared exchange array, so objects are
 * often freed by a thread that did not allocate them. Every object carries
 * its id, size and a pattern derived from both; it is checked before every
 * realloc and free. Every id is freed exactly once (a bitmap catches double
 * frees, a counter catches leaks), and every thread runs the heap validator
 * on its own heap now and then. Returns 0 or a message in err.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "alloc/internal.h"

typedef struct pool_stress_params {
    unsigned threads;
    unsigned ops; /* per thread */
    unsigned seed;
} pool_stress_params_t;

int pool_stress_run(const pool_stress_params_t *params, char *err, size_t errlen);

#define SLOTS 256
#define XCHG  64

typedef struct obj_hdr {
    uint64_t id;
    uint64_t size;
} obj_hdr_t;

typedef struct stress_shared {
    _Atomic(void *) xchg[XCHG];
    _Atomic uint64_t next_id;
    _Atomic uint64_t freed;
    _Atomic uint8_t *freed_map; /* one byte per id */
    uint64_t max_ids;
    _Atomic int failed;
    char msg[256];
    pthread_mutex_t msg_lock;
    const pool_stress_params_t *params;
} stress_shared_t;

typedef struct stress_thread {
    stress_shared_t *sh;
    unsigned index;
    uint64_t rng;
} stress_thread_t;

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64* */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 2685821657736338717ull;
}

static unsigned char pat(uint64_t id, size_t i)
{
    return (unsigned char)(id * 131u + i * 7u + (i >> 8));
}

static size_t stress_size(uint64_t *rng)
{
    unsigned r = (unsigned)(rng_next(rng) % 1000);
    if (r < 700) {
        return 16 + rng_next(rng) % 241;
    }
    if (r < 900) {
        return 257 + rng_next(rng) % 16000;
    }
    if (r < 990) {
        return 16384 + rng_next(rng) % 300000;
    }
    return 300000 + rng_next(rng) % 2800000;
}

static void fail(stress_shared_t *sh, const char *what, uint64_t id)
{
    (void)pthread_mutex_lock(&sh->msg_lock);
    if (!atomic_load(&sh->failed)) {
        (void)snprintf(sh->msg, sizeof(sh->msg), "%s (object %llu)", what, (unsigned long long)id);
        atomic_store(&sh->failed, 1);
    }
    (void)pthread_mutex_unlock(&sh->msg_lock);
}

/* The bytes an object of `size` carries a pattern in: the first and last
 * 512 and one per 4 KiB between (big objects stay cheap to fill and check). */
static size_t pos_next(size_t i, size_t size)
{
    i++;
    if (i < 512 || size < 1024 || i >= size - 512) {
        return i;
    }
    size_t next = (i + 4095) & ~(size_t)4095;
    return next < size - 512 ? next : size - 512;
}

/* Checks the pattern of an object filled at `size`, in [0, limit). */
static int obj_ok(const unsigned char *p, uint64_t id, size_t size, size_t limit)
{
    for (size_t i = sizeof(obj_hdr_t); i < size && i < limit; i = pos_next(i, size)) {
        if (p[i] != pat(id, i)) {
            return 0;
        }
    }
    return 1;
}

static void obj_fill(unsigned char *p, uint64_t id, size_t size)
{
    obj_hdr_t h = {id, size};
    memcpy(p, &h, sizeof(h));
    for (size_t i = sizeof(h); i < size; i = pos_next(i, size)) {
        p[i] = pat(id, i);
    }
}

/* kind: 0..7 malloc, 8 calloc (checked zero), 9 aligned (16 .. 64 KiB). */
static void *obj_new(stress_shared_t *sh, size_t size, unsigned kind)
{
    uint64_t id = atomic_fetch_add(&sh->next_id, 1);
    if (id >= sh->max_ids) {
        fail(sh, "id space exhausted", id);
        return NULL;
    }
    unsigned char *p;
    if (kind == 8) {
        p = arena_calloc(1, size);
        if (p != NULL) {
            for (size_t i = 0; i < size; i = pos_next(i, size)) {
                if (p[i] != 0) {
                    fail(sh, "calloc memory not zero", id);
                    break;
                }
            }
        }
    } else if (kind == 9) {
        size_t align = (size_t)16 << (id % 13);
        p = arena_aligned_alloc(align, size);
        if (p != NULL && (uintptr_t)p % align != 0) {
            fail(sh, "aligned_alloc misaligned", id);
        }
    } else {
        p = arena_malloc(size);
    }
    if (p == NULL) {
        fail(sh, "allocation failed", id);
        return NULL;
    }
    if (arena_usable_size(p) < size) {
        fail(sh, "usable size too small", id);
    }
    obj_fill(p, id, size);
    return p;
}

static int obj_check(stress_shared_t *sh, const unsigned char *p, obj_hdr_t *ret_h)
{
    obj_hdr_t h;
    memcpy(&h, p, sizeof(h));
    if (h.id >= sh->max_ids || h.size < sizeof(h) || h.size > (64u << 20)) {
        fail(sh, "header corrupted", h.id);
        return 0;
    }
    if (!obj_ok(p, h.id, (size_t)h.size, (size_t)h.size)) {
        fail(sh, "pattern corrupted", h.id);
        return 0;
    }
    *ret_h = h;
    return 1;
}

static void obj_free(stress_shared_t *sh, void *p)
{
    obj_hdr_t h;
    if (!obj_check(sh, p, &h)) {
        return;
    }
    if (atomic_fetch_add(&sh->freed_map[h.id], 1) != 0) {
        fail(sh, "freed twice", h.id);
    }
    atomic_fetch_add(&sh->freed, 1);
    arena_free(p);
}

static void *obj_realloc(stress_shared_t *sh, void *p, size_t size)
{
    obj_hdr_t h;
    if (!obj_check(sh, p, &h)) {
        return p;
    }
    unsigned char *q = arena_realloc(p, size);
    if (q == NULL) {
        fail(sh, "arena_realloc failed", h.id);
        return p;
    }
    size_t keep = size < h.size ? size : (size_t)h.size;
    if (!obj_ok(q, h.id, (size_t)h.size, keep)) {
        fail(sh, "realloc lost data", h.id);
    }
    obj_fill(q, h.id, size);
    return q;
}

static void *stress_thread(void *arg)
{
    stress_thread_t *t = arg;
    stress_shared_t *sh = t->sh;
    void *slots[SLOTS] = {0};
    for (unsigned op = 0; op < sh->params->ops && !atomic_load(&sh->failed); op++) {
        unsigned s = (unsigned)(rng_next(&t->rng) % SLOTS);
        unsigned r = (unsigned)(rng_next(&t->rng) % 10);
        if (slots[s] == NULL) {
            if (r < 8) {
                slots[s] = obj_new(sh, stress_size(&t->rng), (unsigned)(rng_next(&t->rng) % 10));
            } else {
                /* Take whatever another thread left in the exchange. */
                slots[s] = atomic_exchange(&sh->xchg[rng_next(&t->rng) % XCHG], NULL);
            }
        } else if (r < 4) {
            obj_free(sh, slots[s]);
            slots[s] = NULL;
        } else if (r < 6) {
            slots[s] = obj_realloc(sh, slots[s], stress_size(&t->rng));
        } else {
            slots[s] = atomic_exchange(&sh->xchg[rng_next(&t->rng) % XCHG], slots[s]);
        }
        if (op % 997 == 0 && !arena__heap_is_valid()) {
            fail(sh, "heap invariants broken (arena__heap_is_valid)", op);
        }
    }
    for (unsigned s = 0; s < SLOTS; s++) {
        if (slots[s] != NULL) {
            obj_free(sh, slots[s]);
        }
    }
    return NULL;
}

int pool_stress_run(const pool_stress_params_t *params, char *err, size_t errlen)
{
    stress_shared_t *sh = calloc(1, sizeof(*sh));
    stress_thread_t *ts = calloc(params->threads, sizeof(*ts));
    pthread_t *tids = calloc(params->threads, sizeof(*tids));
    if (sh == NULL || ts == NULL || tids == NULL) {
        free(sh);
        free(ts);
        free(tids);
        (void)snprintf(err, errlen, "out of test memory");
        return -1;
    }
    sh->params = params;
    sh->max_ids = (uint64_t)params->threads * params->ops + 16;
    sh->freed_map = calloc((size_t)sh->max_ids, 1);
    (void)pthread_mutex_init(&sh->msg_lock, NULL);
    int rc = 0;
    unsigned started = 0;
    for (unsigned i = 0; i < params->threads; i++) {
        ts[i].sh = sh;
        ts[i].index = i;
        ts[i].rng = (uint64_t)params->seed * 0x9E3779B97F4A7C15ull + i + 1;
        if (pthread_create(&tids[i], NULL, stress_thread, &ts[i]) != 0) {
            fail(sh, "pthread_create failed", 0);
            break;
        }
        started++;
    }
    for (unsigned i = 0; i < started; i++) {
        (void)pthread_join(tids[i], NULL);
    }
    for (unsigned i = 0; i < XCHG; i++) {
        void *p = atomic_exchange(&sh->xchg[i], NULL);
        if (p != NULL) {
            obj_free(sh, p);
        }
    }
    uint64_t made = atomic_load(&sh->next_id);
    uint64_t freed = atomic_load(&sh->freed);
    if (!atomic_load(&sh->failed) && made != freed) {
        (void)snprintf(sh->msg, sizeof(sh->msg), "made %llu objects, freed %llu",
                       (unsigned long long)made, (unsigned long long)freed);
        atomic_store(&sh->failed, 1);
    }
    if (atomic_load(&sh->failed)) {
        (void)snprintf(err, errlen, "seed %u: %s", params->seed, sh->msg);
        rc = -1;
    }
    (void)pthread_mutex_destroy(&sh->msg_lock);
    free((void *)sh->freed_map);
    free(tids);
    free(ts);
    free(sh);
    return rc;
}
