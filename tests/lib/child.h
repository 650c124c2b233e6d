/* SPDX-License-Identifier: MIT
 *
 * child.h -- wait for and stop a child process within a time limit, and
 * say how it ended in one int.
 */
#ifndef ARENA_TESTLIB_CHILD_H
#define ARENA_TESTLIB_CHILD_H

#include <sys/types.h>

/* How a child ended, as one int: its exit status (0 to 255), or
 * ARENA_TEST_KILLED(signal) = -(128 + signal) -- below every -errno the
 * calls here return. */
#define ARENA_TEST_KILLED(sig) (-(128 + (sig)))

/* Waits up to timeout_ms (< 0: for ever) for child pid to end and reaps it.
 * Returns how it ended (see ARENA_TEST_KILLED), -ETIMEDOUT when it still
 * runs (it is left running), or -errno from waitpid (-ECHILD: not our
 * child). */
int arena_test_child_wait(pid_t pid, int timeout_ms);

/* Sends SIGTERM, waits up to grace_ms, then SIGKILLs and reaps. Returns how
 * it ended (ARENA_TEST_KILLED(SIGKILL) when it had to be killed), or -errno
 * (-ESRCH, -ECHILD: no such child). */
int arena_test_child_stop(pid_t pid, int grace_ms);

#endif
