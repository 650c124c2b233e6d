/* SPDX-License-Identifier: MIT
 *
 * size.c -- parsing and printing byte sizes.
 *
 * Sizes come from people (flags, the config file, arenactl arguments), so the
 * parser is strict: one number, one optional suffix, nothing else, and no
 * silent wrap-around. Pure functions, any thread.
 */
#include "size.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static int size_suffix_shift(const char *s, size_t n, unsigned *ret_shift)
{
    static const struct {
        const char *name;
        unsigned shift;
    } suffixes[] = {
        {"", 0},     {"B", 0},  {"K", 10},  {"KB", 10},  {"KIB", 10}, {"M", 20},  {"MB", 20},
        {"MIB", 20}, {"G", 30}, {"GB", 30}, {"GIB", 30}, {"T", 40},   {"TB", 40}, {"TIB", 40},
    };
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        if (strlen(suffixes[i].name) == n && strncasecmp(s, suffixes[i].name, n) == 0) {
            *ret_shift = suffixes[i].shift;
            return 0;
        }
    }
    return -EINVAL;
}

int arena__size_parse(const char *text, uint64_t total, uint64_t *ret_bytes)
{
    if (!text || !ret_bytes)
        return -EINVAL;
    const char *p = text;
    while (isspace((unsigned char)*p))
        p++;
    if (!isdigit((unsigned char)*p))
        return -EINVAL;

    uint64_t whole = 0;
    while (isdigit((unsigned char)*p)) {
        unsigned d = (unsigned)(*p - '0');
        if (whole > (UINT64_MAX - d) / 10)
            return -ERANGE;
        whole = whole * 10 + d;
        p++;
    }
    /* An optional fraction ("1.5G"), kept as numerator/denominator. */
    uint64_t frac = 0, frac_den = 1;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return -EINVAL;
        while (isdigit((unsigned char)*p)) {
            if (frac_den < 1000000000ULL) {
                frac = frac * 10 + (uint64_t)(*p - '0');
                frac_den *= 10;
            }
            p++;
        }
    }
    const char *suffix = p;
    while (*p && !isspace((unsigned char)*p))
        p++;
    size_t suffix_len = (size_t)(p - suffix);
    while (isspace((unsigned char)*p))
        p++;
    if (*p)
        return -EINVAL;

    if (suffix_len == 1 && *suffix == '%') {
        if (total == 0 || whole > 100 || (whole == 100 && frac))
            return -EINVAL;
        /* total * pct / 100 without overflow for any 64-bit total. */
        uint64_t bytes = total / 100 * whole + total % 100 * whole / 100;
        bytes += (uint64_t)((long double)total * frac / frac_den / 100);
        *ret_bytes = bytes;
        return 0;
    }
    unsigned shift;
    if (size_suffix_shift(suffix, suffix_len, &shift) < 0)
        return -EINVAL;
    if (shift && whole > (UINT64_MAX >> shift))
        return -ERANGE;
    uint64_t bytes = whole << shift;
    uint64_t extra = (uint64_t)((long double)frac / frac_den * (long double)(1ULL << shift));
    if (bytes > UINT64_MAX - extra)
        return -ERANGE;
    *ret_bytes = bytes + extra;
    return 0;
}

char *arena__size_format(uint64_t bytes, char *buf, size_t len)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (!buf || len == 0)
        return buf;
    if (bytes < 1024) {
        (void)snprintf(buf, len, "%llu B", (unsigned long long)bytes);
        return buf;
    }
    double v = (double)bytes;
    unsigned u = 0;
    while (v >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1024.0;
        u++;
    }
    (void)snprintf(buf, len, "%.1f %s", v, units[u]);
    return buf;
}

uint64_t arena__physical_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES);
    long page_size = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page_size <= 0)
        return 0;
    return (uint64_t)pages * (uint64_t)page_size;
}
