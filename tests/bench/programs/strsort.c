/* SPDX-License-Identifier: MIT
 *
 * strsort.c -- a sort of strings, one thread.
 *
 *     strsort [STRINGS]        (default 1000000)
 *
 * STRINGS malloc'd random strings of 8..80 letters are sorted with qsort and
 * strcmp, then freed in sorted order (a random order with respect to their
 * allocation). Mixed sizes, a large live set, and a free order that defeats
 * LIFO reuse.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

static int by_text(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    if (n <= 0) {
        (void)fprintf(stderr, "usage: strsort [STRINGS]\n");
        return 2;
    }
    char **s = malloc((size_t)n * sizeof(*s));
    if (!s)
        bench_fail("strsort", "memory");
    uint64_t seed = 0x9E3779B97F4A7C15ULL, check = 0;
    for (long i = 0; i < n; i++) {
        size_t len = 8 + (size_t)(bench_rand(&seed) % 73);
        s[i] = malloc(len + 1);
        if (!s[i])
            bench_fail("strsort", "memory");
        for (size_t k = 0; k < len; k++)
            s[i][k] = (char)('a' + bench_rand(&seed) % 26);
        s[i][len] = '\0';
    }
    qsort(s, (size_t)n, sizeof(*s), by_text);
    for (long i = 0; i < n; i += n / 100 + 1)
        check = check * 31 + (uint64_t)s[i][0] + strlen(s[i]);
    bench_report(check);
    for (long i = 0; i < n; i++)
        free(s[i]);
    free(s);
    return 0;
}
