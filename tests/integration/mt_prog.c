/* SPDX-License-Identifier: MIT
 *
 * mt_prog.c -- a multi-threaded malloc workload whose output does not depend
 * on the allocator, for running under libarena-preload.so and without it.
 *
 *     mt_prog [THREADS [OPS]]
 *
 * Each thread runs a seeded sequence of malloc, calloc, realloc (growing and
 * shrinking), posix_memalign and free, and hands some blocks to other threads,
 * which check and free them. Every block carries a header (its size and a tag)
 * and a byte pattern derived from the tag; a block is checked whenever it is
 * resized or freed, and its checksum is added to a process-wide sum then. The
 * sum is order-independent, so the printed line is the same on every run and
 * with every correct allocator. Exit status: 0, or 1 when a block was
 * corrupted or an allocation failed, or 2 on bad usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_THREADS 64
#define MAX_OWNED   512

struct block {
    struct block *next; /* in a mailbox */
    size_t size;        /* bytes after the header */
    uint64_t tag;
};

struct mailbox {
    pthread_mutex_t lock;
    struct block *head;
};

static struct mailbox boxes[MAX_THREADS];
static unsigned nthreads = 4;
static long nops = 200000;
static _Atomic uint64_t checksum;
static _Atomic uint64_t blocks_checked;
static _Atomic int failed;

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static unsigned char pattern(uint64_t tag, size_t i)
{
    return (unsigned char)((tag >> (i % 7)) + i * 131);
}

static void fill(struct block *b, size_t from)
{
    unsigned char *d = (unsigned char *)(b + 1);
    for (size_t i = from; i < b->size; i++)
        d[i] = pattern(b->tag, i);
}

/* Checks the pattern; adds the block's checksum to the sum. */
static void check(const struct block *b, const char *where)
{
    const unsigned char *d = (const unsigned char *)(b + 1);
    uint64_t h = b->tag ^ b->size;
    for (size_t i = 0; i < b->size; i++) {
        if (d[i] != pattern(b->tag, i)) {
            fprintf(stderr, "mt_prog: corrupt block (%s) tag %" PRIx64 " size %zu at %zu\n", where,
                    b->tag, b->size, i);
            failed = 1;
            return;
        }
        h = h * 1099511628211ull + d[i];
    }
    checksum += h;
    blocks_checked++;
}

static size_t pick_size(uint64_t r)
{
    switch (r % 16) {
    case 0:
        return (size_t)(r >> 8) % (64 * 1024); /* large */
    case 1:
    case 2:
        return (size_t)(r >> 8) % 8192;
    default:
        return (size_t)(r >> 8) % 256;
    }
}

static struct block *make(uint64_t r)
{
    size_t size = pick_size(r);
    struct block *b;

    switch ((r >> 40) % 4) {
    case 0:
        b = calloc(1, sizeof(*b) + size);
        if (b) {
            const unsigned char *d = (const unsigned char *)(b + 1);
            for (size_t i = 0; i < size; i++)
                if (d[i] != 0) {
                    fprintf(stderr, "mt_prog: calloc memory not zero\n");
                    failed = 1;
                    break;
                }
        }
        break;
    case 1: {
        void *p = NULL;
        size_t align = (size_t)64 << ((r >> 44) % 6);
        if (posix_memalign(&p, align, sizeof(*b) + size) != 0)
            p = NULL;
        if (p && (uintptr_t)p % align != 0) {
            fprintf(stderr, "mt_prog: posix_memalign misaligned\n");
            failed = 1;
        }
        b = p;
        break;
    }
    default:
        b = malloc(sizeof(*b) + size);
        break;
    }
    if (!b) {
        fprintf(stderr, "mt_prog: allocation of %zu bytes failed: %s\n", size, strerror(errno));
        failed = 1;
        return NULL;
    }
    b->next = NULL;
    b->size = size;
    b->tag = r;
    fill(b, 0);
    return b;
}

static struct block *resize(struct block *b, uint64_t r)
{
    size_t size = pick_size(r);
    size_t keep = size < b->size ? size : b->size;
    struct block *nb;

    check(b, "before realloc");
    nb = realloc(b, sizeof(*b) + size);
    if (!nb) {
        fprintf(stderr, "mt_prog: realloc to %zu bytes failed\n", size);
        failed = 1;
        return b;
    }
    /* The first keep bytes survive; the rest gets the pattern. */
    nb->size = keep;
    check(nb, "after realloc");
    nb->size = size;
    fill(nb, keep);
    return nb;
}

static void drop(struct block *b, const char *where)
{
    check(b, where);
    free(b);
}

static void *worker(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    uint64_t seed = 0x1234567ull * (id + 1);
    struct block *owned[MAX_OWNED];
    size_t n = 0;

    for (long op = 0; op < nops && !failed; op++) {
        uint64_t r = rng_next(&seed);
        unsigned action = (unsigned)(r % 10);
        if (action < 4 && n < MAX_OWNED) {
            struct block *b = make(rng_next(&seed));
            if (b)
                owned[n++] = b;
        } else if (action < 6 && n > 0) {
            size_t k = (size_t)(r >> 8) % n;
            drop(owned[k], "free");
            owned[k] = owned[--n];
        } else if (action < 7 && n > 0) {
            size_t k = (size_t)(r >> 8) % n;
            owned[k] = resize(owned[k], rng_next(&seed));
        } else if (action < 9 && n > 0) {
            /* Hand a block to another thread. */
            struct mailbox *mb = &boxes[(r >> 16) % nthreads];
            struct block *b = owned[--n];
            pthread_mutex_lock(&mb->lock);
            b->next = mb->head;
            mb->head = b;
            pthread_mutex_unlock(&mb->lock);
        } else {
            /* Check and free what others handed to us. */
            struct mailbox *mb = &boxes[id];
            pthread_mutex_lock(&mb->lock);
            struct block *list = mb->head;
            mb->head = NULL;
            pthread_mutex_unlock(&mb->lock);
            while (list) {
                struct block *next = list->next;
                drop(list, "cross-thread free");
                list = next;
            }
        }
    }
    while (n > 0)
        drop(owned[--n], "final free");
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t th[MAX_THREADS];

    if (argc > 1)
        nthreads = (unsigned)strtoul(argv[1], NULL, 10);
    if (argc > 2)
        nops = strtol(argv[2], NULL, 10);
    if (argc > 3 || nthreads < 1 || nthreads > MAX_THREADS || nops < 0) {
        fprintf(stderr, "usage: mt_prog [THREADS(1-%d) [OPS]]\n", MAX_THREADS);
        return 2;
    }
    for (unsigned i = 0; i < nthreads; i++)
        pthread_mutex_init(&boxes[i].lock, NULL);
    for (unsigned i = 0; i < nthreads; i++)
        if (pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)i) != 0) {
            fprintf(stderr, "mt_prog: pthread_create failed\n");
            return 1;
        }
    for (unsigned i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    for (unsigned i = 0; i < nthreads; i++) {
        struct block *list = boxes[i].head;
        while (list) {
            struct block *next = list->next;
            drop(list, "leftover free");
            list = next;
        }
    }
    if (failed)
        return 1;
    printf("mt_prog: threads=%u ops=%ld blocks=%" PRIu64 " checksum=%016" PRIx64 "\n", nthreads,
           nops, (uint64_t)blocks_checked, (uint64_t)checksum);
    return 0;
}
