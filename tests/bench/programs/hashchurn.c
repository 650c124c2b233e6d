/* SPDX-License-Identifier: MIT
 *
 * hashchurn.c -- a chained hash table with churn, one thread.
 *
 *     hashchurn [OPS [KEYS]]       (defaults 4000000 and 600000)
 *
 * Each operation picks a random key out of KEYS: if the table holds it, the
 * entry (a node and its separately malloc'd key string) is removed and
 * freed, otherwise it is inserted. About half of KEYS stays live, spread over
 * two size classes, with frees in random order: the churn of a cache or a
 * symbol table. The bucket array is allocated once.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

#define BUCKETS (1u << 19)

typedef struct entry {
    struct entry *next;
    uint64_t hash;
    char *key;
    uint64_t value;
} entry_t;

static uint64_t hash_text(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

int main(int argc, char **argv)
{
    long ops = argc > 1 ? atol(argv[1]) : 4000000;
    long keys = argc > 2 ? atol(argv[2]) : 600000;
    if (ops <= 0 || keys <= 0) {
        (void)fprintf(stderr, "usage: hashchurn [OPS [KEYS]]\n");
        return 2;
    }
    entry_t **table = calloc(BUCKETS, sizeof(entry_t *));
    if (!table)
        bench_fail("hashchurn", "memory");
    uint64_t seed = 0x9E3779B97F4A7C15ULL, check = 0;
    char text[64];
    for (long i = 0; i < ops; i++) {
        uint64_t k = bench_rand(&seed) % (uint64_t)keys;
        /* Keys of 10..40 characters: the key decides its own length. */
        int len = snprintf(text, sizeof(text), "key:%llu:%.*s", (unsigned long long)k,
                           (int)(k % 31), "................................");
        uint64_t h = hash_text(text);
        entry_t **at = &table[h & (BUCKETS - 1)];
        while (*at && ((*at)->hash != h || strcmp((*at)->key, text) != 0))
            at = &(*at)->next;
        if (*at) {
            entry_t *gone = *at;
            *at = gone->next;
            check += gone->value;
            free(gone->key);
            free(gone);
            continue;
        }
        entry_t *e = malloc(sizeof(*e));
        char *key = malloc((size_t)len + 1);
        if (!e || !key)
            bench_fail("hashchurn", "memory");
        memcpy(key, text, (size_t)len + 1);
        *e = (entry_t){table[h & (BUCKETS - 1)], h, key, k};
        table[h & (BUCKETS - 1)] = e;
    }
    bench_report(check);
    for (uint32_t b = 0; b < BUCKETS; b++) {
        for (entry_t *e = table[b], *next; e; e = next) {
            next = e->next;
            free(e->key);
            free(e);
        }
    }
    free(table);
    return 0;
}
