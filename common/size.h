/* SPDX-License-Identifier: MIT
 *
 * size.h -- parsing and printing byte sizes, shared by arenad and arenactl.
 */
#ifndef ARENA_COMMON_SIZE_H
#define ARENA_COMMON_SIZE_H

#include <stddef.h>
#include <stdint.h>

/* Parses a size: a decimal number with an optional binary suffix K, M, G, T
 * (also KiB/KB/k..., all powers of 1024) or B, or a percentage of `total`
 * ("75%"). Whitespace around the text is accepted.
 * Returns 0 and stores the bytes in *ret_bytes, or -EINVAL (malformed, empty,
 * a percentage above 100 or with total 0) or -ERANGE (overflows 64 bits),
 * leaving *ret_bytes untouched.
 * Example: arena__size_parse("512M", 0, &b) sets b = 536870912. */
int arena__size_parse(const char *text, uint64_t total, uint64_t *ret_bytes);

/* Writes a human size ("0 B", "4.0 KiB", "1.5 GiB") into buf (NUL-terminated,
 * truncated to len). Returns buf. */
char *arena__size_format(uint64_t bytes, char *buf, size_t len);

/* Physical RAM in bytes (sysconf), 0 if unknown. */
uint64_t arena__physical_memory(void);

#endif
