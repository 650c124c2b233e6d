/* SPDX-License-Identifier: MIT
 *
 * report.c -- the one line a pattern program of bench-programs writes to
 * prove which malloc answered it (see report.h).
 *
 * It trusts the dynamic linker's answer (dlsym + dladdr on "malloc", which is
 * what every call in the program binds to) and the kernel's /proc/self/maps.
 * Called once, from the main thread, near the end of the program; it uses
 * stdio, so it allocates through the same malloc it reports on, which is
 * harmless this late.
 */
#include "report.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool pool_mapped(void)
{
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, "memfd:arenad-pool") != NULL;
    (void)fclose(f);
    return found;
}

void bench_report(uint64_t check)
{
    printf("check=%llu\n", (unsigned long long)check);
    (void)fflush(stdout);
    const char *fd_text = getenv("BENCH_PROGRAMS_REPORT_FD"); /* NOLINT(concurrency-mt-unsafe) */
    if (!fd_text || !*fd_text)
        return;
    int fd = atoi(fd_text);
    Dl_info info;
    void *m = dlsym(RTLD_DEFAULT, "malloc");
    const char *where = m && dladdr(m, &info) && info.dli_fname ? info.dli_fname : "unknown";
    char line[1200];
    int n = snprintf(line, sizeof(line), "malloc=%s pool=%d check=%llu\n", where,
                     pool_mapped() ? 1 : 0, (unsigned long long)check);
    if (n > 0 && (size_t)n < sizeof(line)) {
        ssize_t w = write(fd, line, (size_t)n);
        (void)w; /* a lost report leaves the run unproven; nothing else to do */
    }
}

void bench_fail(const char *program, const char *what)
{
    (void)(void)fprintf(stderr, "%s: cannot get %s\n", program, what);
    exit(1);
}
