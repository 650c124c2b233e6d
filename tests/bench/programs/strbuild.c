/* SPDX-License-Identifier: MIT
 *
 * strbuild.c -- realloc-heavy string building, one thread.
 *
 *     strbuild [APPENDS [BUILDERS]]     (defaults 4000000 and 64)
 *
 * BUILDERS strings grow side by side: each step appends 1..64 bytes to a
 * random one with realloc to exactly the new length (no doubling by the
 * program: growing in place or copying is the allocator's business). A
 * string that reaches its target length (random, 1 KiB..256 KiB) is freed
 * and started again. Interleaved growth means a string's neighbour is often
 * in the way, as in a program assembling many output buffers at once.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

typedef struct builder {
    char *text;
    size_t len, target;
} builder_t;

int main(int argc, char **argv)
{
    long appends = argc > 1 ? atol(argv[1]) : 4000000;
    long n = argc > 2 ? atol(argv[2]) : 64;
    if (appends <= 0 || n <= 0 || n > 4096) {
        (void)fprintf(stderr, "usage: strbuild [APPENDS [BUILDERS (1..4096)]]\n");
        return 2;
    }
    builder_t *b = calloc((size_t)n, sizeof(*b));
    if (!b)
        bench_fail("strbuild", "memory");
    uint64_t seed = 0x9E3779B97F4A7C15ULL, check = 0;
    for (long i = 0; i < n; i++)
        b[i].target = 1024 + (size_t)(bench_rand(&seed) % ((size_t)255 * 1024));
    for (long step = 0; step < appends; step++) {
        builder_t *s = &b[bench_rand(&seed) % (uint64_t)n];
        size_t add = 1 + (size_t)(bench_rand(&seed) % 64);
        char *grown = realloc(s->text, s->len + add + 1);
        if (!grown)
            bench_fail("strbuild", "memory");
        s->text = grown;
        memset(s->text + s->len, 'a' + (int)(step % 26), add);
        s->len += add;
        s->text[s->len] = '\0';
        if (s->len >= s->target) {
            check += (uint64_t)(unsigned char)s->text[s->len / 2] + s->len;
            free(s->text);
            s->text = NULL;
            s->len = 0;
            s->target = 1024 + (size_t)(bench_rand(&seed) % ((size_t)255 * 1024));
        }
    }
    bench_report(check);
    for (long i = 0; i < n; i++)
        free(b[i].text);
    free(b);
    return 0;
}
