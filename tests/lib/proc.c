/* SPDX-License-Identifier: MIT
 *
 * proc.c -- reads /proc for tests: fd counts (nothing leaked), resident
 * memory (memory given back), mappings (memory that came from a lease).
 *
 * Every answer is a snapshot of another process that keeps running; callers
 * poll until it settles. Trusts /proc's format; parses by line with fixed
 * buffers. Any thread.
 */
#include "proc.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

int arena_test_count_fds(pid_t pid)
{
    char path[64];
    (void)snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
    DIR *dp = opendir(path);
    if (!dp)
        return -errno;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        if (de->d_name[0] != '.')
            n++;
    }
    (void)closedir(dp);
    return n;
}

int arena_test_stable_fds(pid_t pid, void (*poke)(void *ctx), void *ctx)
{
    int last = -1;
    for (int i = 0; i < 100; i++) {
        if (poke)
            poke(ctx);
        int now = arena_test_count_fds(pid);
        if (now < 0 || now == last)
            return now;
        last = now;
    }
    return last;
}

/* Finds the line "name:" of /proc/PID/status and copies what follows the
 * colon into ret. Returns 0, -ENOENT when there is no such line, or -errno. */
static int proc_status_field(pid_t pid, const char *name, char *ret, size_t len)
{
    char path[64];
    (void)snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    char line[256];
    size_t n = strlen(name);
    int r = -ENOENT;
    while (r == -ENOENT && fgets(line, sizeof(line), f)) {
        if (strncmp(line, name, n) == 0 && line[n] == ':') {
            (void)snprintf(ret, len, "%s", line + n + 1);
            r = 0;
        }
    }
    (void)fclose(f);
    return r;
}

int arena_test_catches_signal(pid_t pid, int sig)
{
    char value[64];
    unsigned long long mask;
    int r = proc_status_field(pid, "SigCgt", value, sizeof(value));
    if (r < 0)
        return r;
    if (sscanf(value, "%llx", &mask) != 1)
        return -ENOENT;
    return sig >= 1 && sig <= 64 && (mask >> (sig - 1) & 1) ? 1 : 0;
}

long arena_test_rss_kib(pid_t pid)
{
    char value[64];
    long kib;
    int r = proc_status_field(pid, "VmRSS", value, sizeof(value));
    if (r < 0)
        return r;
    return sscanf(value, "%ld", &kib) == 1 ? kib : -ENOENT;
}

bool arena_test_is_memfd_mapped(const void *addr)
{
    FILE *f = fopen("/proc/self/maps", "re");
    char line[512];
    bool found = false;

    if (!f)
        return false;
    while (fgets(line, sizeof(line), f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && (uintptr_t)addr >= lo &&
            (uintptr_t)addr < hi) {
            found = strstr(line, "memfd:") != NULL;
            break;
        }
    }
    (void)fclose(f);
    return found;
}
