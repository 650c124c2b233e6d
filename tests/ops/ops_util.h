/* SPDX-License-Identifier: MIT
 *
 * ops_util.h -- helpers of the ops tests: a temporary directory, a notify
 * socket that records what the daemon sends, and children that die with the
 * test (PR_SET_PDEATHSIG); they are waited for and stopped with
 * tests/lib/child.h.
 */
#ifndef ARENA_OPS_UTIL_H
#define ARENA_OPS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Check fixture pair, added unchecked (they run in the runner process, so
 * the teardown also runs after a test that failed, when the test process
 * _exit()s without its atexit handlers): creates / removes the base
 * directory /tmp/arenad-ops-XXXXXX that ops_tmpdir() makes its directories
 * in. */
void ops_base_setup(void);
void ops_base_teardown(void);

/* mkdtemp of BASE/t-XXXXXX (BASE from ops_base_setup(), else /tmp) into dir
 * (>= 128 bytes). Returns 0 or -errno. */
int ops_tmpdir(char *dir, size_t len);

/* Binds a SOCK_DGRAM Unix socket at path (CLOEXEC). Returns the fd or -errno. */
int ops_notify_open(const char *path);

/* Receives datagrams on fd until one contains needle, appending each one
 * (followed by "|") to log (NUL-terminated, at most log_len bytes). Returns 0,
 * or -ETIMEDOUT after timeout_ms without a match. */
int ops_notify_wait(int fd, const char *needle, int timeout_ms, char *log, size_t log_len);

/* fork + execv of argv[0] with SIGTERM as parent-death signal, stdin from
 * /dev/null. When watchdog_usec is non-NULL, the child sets WATCHDOG_USEC to
 * it and WATCHDOG_PID to its own pid (or to watchdog_pid when not 0).
 * Returns the pid or -errno. */
pid_t ops_spawn(char *const argv[], const char *watchdog_usec, pid_t watchdog_pid);

/* Waits up to timeout_ms for path to exist. Returns true when it does. */
bool ops_wait_path(const char *path, int timeout_ms);

/* Writes text to path (truncating). Returns 0 or -errno. */
int ops_write_file(const char *path, const char *text);

#endif
