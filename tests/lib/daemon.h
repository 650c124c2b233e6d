/* SPDX-License-Identifier: MIT
 *
 * daemon.h -- start and stop a real arenad for tests and benchmarks.
 *
 * Each daemon gets its own temporary directory (mkdtemp under /tmp) holding
 * its socket and, when asked for, its config file, so tests never collide
 * with each other or with a system daemon. The daemon child asks the kernel
 * for SIGTERM when the test process dies (PR_SET_PDEATHSIG), so a crashed
 * test never leaves a daemon running. No Check here: benchmarks and the soak
 * program use it too. Not thread-safe: call from the test's main thread.
 */
#ifndef ARENA_TESTLIB_DAEMON_H
#define ARENA_TESTLIB_DAEMON_H

#include <sys/types.h>

#include "child.h"

typedef struct arena_test_daemon {
    pid_t pid;        /* the arenad child; 0 when not running */
    char dir[256];    /* the temporary directory; empty when removed */
    char socket[320]; /* dir + "/arenad.sock" */
    char config[320]; /* dir + "/arenad.conf" when started with config text, else empty */
    int supervised;   /* started as ./run.sh starts it: pid is the supervisor */
} arena_test_daemon_t;

/* arena_test_daemon_stop()'s answer when no daemon was running (or it could
 * not be reaped). A daemon a signal ended answers ARENA_TEST_KILLED(signal). */
#define ARENA_TEST_DAEMON_NOT_RUNNING (-1)

/* Creates a temporary directory (mkdtemp "/tmp/arenad-test-XXXXXX"); when
 * config is not NULL writes it to DIR/arenad.conf; spawns ARENAD_PATH (or
 * $ARENAD_HARNESS_BINARY) --foreground --socket DIR/arenad.sock --log-level
 * warn --no-supervise [--config DIR/arenad.conf] followed by extra_args (NULL-terminated,
 * may be NULL; a later --log-level wins). Waits until the daemon handles
 * SIGTERM and its socket accepts a connection (up to 10 s); fails early if
 * the child exits.
 * Returns 0 and fills *d, or -errno (-ETIMEDOUT: never listened; -ECHILD: the
 * daemon exited during start-up). On failure nothing is left behind (the child
 * is killed and reaped, the directory removed) and *d is zeroed.
 * Example:
 *     const char *const args[] = {"--budget", "64M", NULL};
 *     arena_test_daemon_t d;
 *     if (arena_test_daemon_start(&d, "decay_ms = 0\n", args) == 0) {
 *         ...; status = arena_test_daemon_stop(&d); } */
int arena_test_daemon_start(arena_test_daemon_t *d, const char *config,
                            const char *const *extra_args);

/* As arena_test_daemon_start(), without --no-supervise: the daemon runs as
 * ./run.sh runs it, a supervising process (d->pid) that keeps the fd store
 * and restarts the serving process when it crashes. */
int arena_test_daemon_start_supervised(arena_test_daemon_t *d, const char *config,
                                       const char *const *extra_args);

/* The serving process of a supervised daemon (the supervisor's child), or
 * d->pid for an unsupervised one; waits up to 10 s for a supervisor to have
 * one that listens, other than not_pid (0: any). Returns the pid or -errno
 * (-ETIMEDOUT). */
pid_t arena_test_daemon_server_pid(const arena_test_daemon_t *d, pid_t not_pid);

/* Sends SIGTERM, waits up to 5 s for the daemon to exit, then SIGKILLs it and
 * reaps it; removes the temporary directory and everything in it, also when
 * no daemon runs. Returns the daemon's exit status (0 for a clean exit, 23
 * for a sanitizer's report at exit), ARENA_TEST_KILLED(signal) =
 * -(128 + signal) when a signal ended it (ARENA_TEST_KILLED(SIGKILL) when it
 * had to be killed), or ARENA_TEST_DAEMON_NOT_RUNNING. Safe to
 * call twice (the second call returns ARENA_TEST_DAEMON_NOT_RUNNING). */
int arena_test_daemon_stop(arena_test_daemon_t *d);

/* Kills the running daemon with sig (SIGKILL: a crash; SIGTERM: a stop;
 * for a supervised one the supervisor, which takes its server along),
 * reaps it, and starts a new one on the same socket (and config file) with
 * extra_args, as arena_test_daemon_start() does. The directory stays.
 * Returns 0, or -errno (then no daemon runs, and arena_test_daemon_stop()
 * still cleans up). */
int arena_test_daemon_restart(arena_test_daemon_t *d, int sig, const char *const *extra_args);

/* Connects a blocking SOCK_CLOEXEC Unix stream socket to the daemon's socket.
 * Returns the fd or -errno. */
int arena_test_daemon_connect(const arena_test_daemon_t *d);

#endif
