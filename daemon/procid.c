/* SPDX-License-Identifier: MIT
 *
 * procid.c -- a process's start time from /proc/PID/stat (see procid.h).
 *
 * Trusts the kernel's stat line only after the last ')': the command name
 * before it is the process's own choice and may hold spaces and ')'. No
 * state; any thread.
 */
#include "procid.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Field 22 is the 20th field after the ')' that ends field 2. */
#define PROCID_FIELDS_AFTER_COMM 20

int ad_proc_start_time(pid_t pid, uint64_t *ret_start)
{
    if (pid <= 0 || !ret_start)
        return -EINVAL;
    char path[64], buf[1024];
    (void)snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? -ESRCH : -errno;
    ssize_t n;
    do {
        n = read(fd, buf, sizeof(buf) - 1);
    } while (n < 0 && errno == EINTR);
    int saved = errno;
    (void)close(fd);
    if (n < 0)
        return saved == ESRCH ? -ESRCH : -saved;
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    if (!p)
        return -EINVAL;
    p++;
    for (int field = 0; field < PROCID_FIELDS_AFTER_COMM; field++) {
        while (*p == ' ')
            p++;
        if (*p == '\0')
            return -EINVAL;
        if (field + 1 < PROCID_FIELDS_AFTER_COMM)
            p += strcspn(p, " ");
    }
    char *end;
    errno = 0;
    unsigned long long start = strtoull(p, &end, 10);
    if (errno || end == p || (*end != ' ' && *end != '\n' && *end != '\0'))
        return -EINVAL;
    /* A process started in the boot's first tick reads 0: named 1 here, so
     * 0 keeps meaning "unknown" in the ledger. */
    *ret_start = start ? (uint64_t)start : 1;
    return 0;
}

bool ad_proc_alive(pid_t pid, uint64_t start)
{
    if (pid <= 0)
        return false;
    if (start != 0) {
        uint64_t now;
        int r = ad_proc_start_time(pid, &now);
        if (r == 0)
            return now == start;
        /* -ESRCH may be a process /proc hides from us: kill() decides. */
    }
    return kill(pid, 0) == 0 || errno == EPERM;
}
