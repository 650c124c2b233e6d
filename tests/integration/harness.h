/* SPDX-License-Identifier: MIT
 *
 * harness.h -- start and stop a real arenad for integration tests.
 *
 * Each daemon gets its own temporary directory (mkdtemp under /tmp) holding
 * its socket, so tests never collide with each other or with a system daemon.
 * The daemon child asks the kernel for SIGTERM when the test process dies
 * (PR_SET_PDEATHSIG), so a crashed test never leaves a daemon running.
 * Not thread-safe: call from the test's main thread.
 */
#ifndef ARENA_TEST_HARNESS_H
#define ARENA_TEST_HARNESS_H

#include <sys/types.h>

typedef struct harness_daemon {
    pid_t pid;        /* the arenad child; 0 when not running */
    char dir[256];    /* the temporary directory; empty when removed */
    char socket[320]; /* dir + "/arenad.sock" */
} harness_daemon_t;

/* Creates a temporary directory (mkdtemp "/tmp/arenad-test-XXXXXX") and spawns
 * ARENAD_PATH --foreground --socket DIR/arenad.sock --log-level warn followed by
 * extra_args (a NULL-terminated array, may be NULL). Waits until the socket
 * accepts a connection (up to 10 s); fails early if the child exits.
 * Returns 0 and fills *d, or -errno (-ETIMEDOUT: never listened; -ECHILD: the
 * daemon exited during start-up). On failure nothing is left behind (the child
 * is killed and reaped, the directory removed) and *d is zeroed.
 * Example:
 *     const char *const args[] = {"--budget", "64M", NULL};
 *     harness_daemon_t d;
 *     if (harness_daemon_start(&d, args) == 0) { ...; harness_daemon_stop(&d); } */
int harness_daemon_start(harness_daemon_t *d, const char *const *extra_args);

/* Sends SIGTERM, waits up to 5 s for the daemon to exit, then SIGKILLs it and
 * reaps it; removes the temporary directory and everything in it.
 * Returns the daemon's exit status (0 for a clean exit), or -1 when it was
 * killed by a signal, could not be reaped, or was not running. Safe to call
 * twice (the second call returns -1 and does nothing). */
int harness_daemon_stop(harness_daemon_t *d);

/* Kills the running daemon with sig (SIGKILL: a crash; SIGTERM: a stop),
 * reaps it, and starts a new one on the same socket with extra_args, as
 * harness_daemon_start() does. The directory stays. Returns 0, or -errno
 * (then no daemon runs, and harness_daemon_stop() still cleans up). */
int harness_daemon_restart(harness_daemon_t *d, int sig, const char *const *extra_args);

/* Connects a blocking SOCK_CLOEXEC Unix stream socket to the daemon's socket.
 * Returns the fd or -errno. A convenience for tests that speak raw frames. */
int harness_connect(const harness_daemon_t *d);

/* Counts the open fds of process pid (entries of /proc/PID/fd), or -errno. */
int harness_count_fds(pid_t pid);

/* What harness_run() collected. */
typedef struct harness_run {
    int code;        /* exit code, or -signal, or -errno when it could not run */
    char out[65536]; /* stdout, NUL-terminated, cut to fit */
    char err[8192];  /* stderr, likewise */
} harness_run_t;

/* Runs argv (argv[0] found on PATH or a path) with stdin from /dev/null,
 * collecting stdout and stderr (both read as they come, so neither can
 * block the child) and the exit status into *r. The child dies with the
 * test (PR_SET_PDEATHSIG). Returns r->code. */
int harness_run(char *const argv[], harness_run_t *r);

#endif
