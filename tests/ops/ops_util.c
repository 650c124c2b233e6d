/* SPDX-License-Identifier: MIT
 *
 * ops_util.c -- see ops_util.h. Test support code: it may print and abort.
 */
#include "ops_util.h"
#include "sock.h"
#include "tmpdir.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long ops_now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char ops_base[64];

void ops_base_setup(void)
{
    (void)snprintf(ops_base, sizeof(ops_base), "/tmp/arenad-ops-XXXXXX");
    if (!mkdtemp(ops_base))
        ops_base[0] = '\0';
}

void ops_base_teardown(void)
{
    (void)arena_test_rmtree(ops_base);
    ops_base[0] = '\0';
}

int ops_tmpdir(char *dir, size_t len)
{
    if (len < 96)
        return -EINVAL;
    if (ops_base[0])
        (void)snprintf(dir, len, "%s/t-XXXXXX", ops_base);
    else
        (void)snprintf(dir, len, "/tmp/arenad-ops-XXXXXX");
    return mkdtemp(dir) ? 0 : -errno;
}

int ops_notify_open(const char *path)
{
    return arena_test_unix_socket(path, SOCK_DGRAM, ARENA_TEST_SOCK_BIND);
}

int ops_notify_wait(int fd, const char *needle, int timeout_ms, char *log, size_t log_len)
{
    long long end = ops_now_ms() + timeout_ms;
    for (;;) {
        long long left = end - ops_now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -ETIMEDOUT;
        char buf[4096];
        ssize_t got = recv(fd, buf, sizeof(buf) - 1, 0);
        if (got < 0)
            continue;
        buf[got] = '\0';
        size_t used = strlen(log);
        if (used + 1 < log_len)
            (void)snprintf(log + used, log_len - used, "%s|", buf);
        if (strstr(buf, needle))
            return 0;
    }
}

pid_t ops_spawn(char *const argv[], const char *watchdog_usec, pid_t watchdog_pid)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null >= 0)
            (void)dup2(null, STDIN_FILENO);
        if (watchdog_usec) {
            char p[32];
            (void)snprintf(p, sizeof(p), "%ld", (long)(watchdog_pid ? watchdog_pid : getpid()));
            (void)setenv("WATCHDOG_USEC", watchdog_usec, 1);
            (void)setenv("WATCHDOG_PID", p, 1);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

bool ops_wait_path(const char *path, int timeout_ms)
{
    long long end = ops_now_ms() + timeout_ms;
    struct stat st;
    while (stat(path, &st) < 0) {
        if (ops_now_ms() >= end)
            return false;
        (void)usleep(10000);
    }
    return true;
}

int ops_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");
    if (!f)
        return -errno;
    size_t n = strlen(text);
    int r = fwrite(text, 1, n, f) == n ? 0 : -EIO;
    if (fclose(f) != 0 && r == 0)
        r = -errno;
    return r;
}
