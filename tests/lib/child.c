/* SPDX-License-Identifier: MIT
 *
 * child.c -- bounded waits for child processes.
 *
 * A test must never hang on a child that does not exit, and must know how
 * it ended: a daemon's exit 23 at shutdown is a sanitizer's report, a
 * signal is a crash. waitpid() with WNOHANG in 5 ms steps gives both
 * without signals or extra threads. Trusts nothing but the kernel's wait
 * status. Call from the thread that forked (or any: waitpid works for the
 * whole process).
 */
#include "child.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>

static int64_t child_now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int arena_test_child_wait(pid_t pid, int timeout_ms)
{
    int64_t deadline = child_now_ms() + timeout_ms;
    for (;;) {
        int status;
        pid_t w = waitpid(pid, &status, timeout_ms < 0 ? 0 : WNOHANG);
        if (w == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : ARENA_TEST_KILLED(WTERMSIG(status));
        if (w < 0 && errno != EINTR)
            return -errno;
        if (w == 0 && child_now_ms() >= deadline)
            return -ETIMEDOUT;
        if (w == 0) {
            struct timespec tick = {0, 5 * 1000 * 1000};
            (void)nanosleep(&tick, NULL);
        }
    }
}

int arena_test_child_stop(pid_t pid, int grace_ms)
{
    if (pid <= 0)
        return -ESRCH;
    if (kill(pid, SIGTERM) < 0)
        return -errno;
    int r = arena_test_child_wait(pid, grace_ms);
    if (r == -ETIMEDOUT) {
        (void)kill(pid, SIGKILL);
        r = arena_test_child_wait(pid, -1);
        if (r >= 0)
            r = ARENA_TEST_KILLED(SIGKILL); /* it had to be killed, whatever it said */
    }
    return r;
}
