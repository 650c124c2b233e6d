/* SPDX-License-Identifier: MIT
 *
 * large.c -- large block replacement.
 *
 *     large [REPLACEMENTS [SLOTS]]      (defaults 2000 and 20)
 *
 * SLOTS slots; REPLACEMENTS times a random slot's block is freed and replaced
 * by a new block of a random size between 5 and 25 MiB, zero-filled with
 * memset, so every page is written, as by a program that fills its buffer.
 * The memset is called through a volatile pointer: the compiler would
 * otherwise turn malloc + memset(0) into calloc, which lets an allocator
 * hand out fresh mmapped pages without touching them.
 * Fixed seed. An allocator that keeps freed huge blocks mapped reuses their
 * pages; one that returns every block to the kernel faults each new one in
 * again. The peak live set is about SLOTS x 15 MiB.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

#define MIB ((size_t)1024 * 1024)

static void *(*volatile zero_fill)(void *, int, size_t) = memset;

int main(int argc, char **argv)
{
    long reps = argc > 1 ? atol(argv[1]) : 2000;
    long slots = argc > 2 ? atol(argv[2]) : 20;
    if (reps <= 0 || slots <= 0 || slots > 1000) {
        (void)fprintf(stderr, "usage: large [REPLACEMENTS [SLOTS (1..1000)]]\n");
        return 2;
    }
    unsigned char *slot[1000] = {0};
    uint64_t seed = 0x9E3779B97F4A7C15ULL, check = 0;
    for (long r = 0; r < reps; r++) {
        size_t i = (size_t)(bench_rand(&seed) % (uint64_t)slots);
        size_t size = 5 * MIB + (size_t)(bench_rand(&seed) % (20 * MIB + 1));
        free(slot[i]);
        slot[i] = malloc(size);
        if (!slot[i])
            bench_fail("large", "a block");
        zero_fill(slot[i], 0, size);
        slot[i][r % size] = (unsigned char)r;
        check += slot[i][(size_t)r % size] + slot[i][size - 1];
    }
    bench_report(check);
    for (long i = 0; i < slots; i++)
        free(slot[i]);
    return 0;
}
