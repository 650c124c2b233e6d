/* SPDX-License-Identifier: MIT
 *
 * report.h -- how a pattern program of bench-programs says which malloc
 * answered it.
 */
#ifndef BENCH_PROGRAMS_REPORT_H
#define BENCH_PROGRAMS_REPORT_H

#include <stdint.h>

/* When $BENCH_PROGRAMS_REPORT_FD names an open fd, writes one line to it:
 *     malloc=PATH pool=0|1 check=N
 * PATH is the file dladdr() finds malloc in (the preloaded library, or libc),
 * pool=1 when a mapping named "memfd:arenad-pool" is in /proc/self/maps, N
 * the program's checksum (so its work cannot be optimised away). Call it
 * while the program's memory is still allocated (pool mappings may go away
 * once it is freed). Without the variable it only prints N on stdout. Never
 * fails the program: a report that cannot be written is simply missing,
 * which the harness counts as unproven. */
void bench_report(uint64_t check);

/* Says on stderr that PROGRAM could not get memory (or a thread) for WHAT
 * and exits with status 1: a pattern program has no way around it. */
_Noreturn void bench_fail(const char *program, const char *what);

/* A small fast PRNG (xorshift64*), seeded by the caller: every pattern is
 * deterministic for a given seed. Not thread-safe: one state per thread. */
static inline uint64_t bench_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

#endif
