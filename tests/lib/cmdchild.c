/* SPDX-License-Identifier: MIT
 *
 * cmdchild.c -- a forked child driven by one-byte commands over two pipes
 * (see cmdchild.h). Both pipes are CLOEXEC; each side closes the ends it
 * does not use, so a dead peer shows as EOF or EPIPE, never as a hang.
 */
#include "cmdchild.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int arena_test_cmd_child_spawn(arena_test_cmd_child_t *c, arena_test_cmd_child_fn fn, void *arg)
{
    int down[2], up[2];
    if (pipe2(down, O_CLOEXEC) != 0)
        return -errno;
    if (pipe2(up, O_CLOEXEC) != 0) {
        int e = errno;
        (void)close(down[0]);
        (void)close(down[1]);
        return -e;
    }
    pid_t parent = getpid();
    (void)fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        (void)close(down[0]);
        (void)close(down[1]);
        (void)close(up[0]);
        (void)close(up[1]);
        return -e;
    }
    if (pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
            _exit(100);
        (void)close(down[1]);
        (void)close(up[0]);
        fn(down[0], up[1], arg);
        _exit(0);
    }
    (void)close(down[0]);
    (void)close(up[1]);
    c->pid = pid;
    c->cmd = down[1];
    c->resp = up[0];
    return 0;
}

int arena_test_cmd_child_send(const arena_test_cmd_child_t *c, char cmd)
{
    ssize_t n;
    do {
        n = write(c->cmd, &cmd, 1);
    } while (n < 0 && errno == EINTR);
    return n == 1 ? 0 : n < 0 ? -errno : -EPIPE;
}

int arena_test_cmd_child_read(const arena_test_cmd_child_t *c, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(c->resp, (char *)buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EPIPE;
        got += (size_t)n;
    }
    return 0;
}

char arena_test_cmd_child_next(int cmd)
{
    char c = 0;
    ssize_t n;
    do {
        n = read(cmd, &c, 1);
    } while (n < 0 && errno == EINTR);
    return n == 1 ? c : 0;
}

int arena_test_cmd_child_wait(arena_test_cmd_child_t *c)
{
    int status;
    pid_t w;
    (void)close(c->cmd);
    (void)close(c->resp);
    do {
        w = waitpid(c->pid, &status, 0);
    } while (w < 0 && errno == EINTR);
    pid_t pid = c->pid;
    c->pid = 0;
    if (w != pid)
        return ARENA_TEST_CMD_CHILD_LOST;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}
