/* SPDX-License-Identifier: MIT
 *
 * fixture.h -- a real arenad as a Check fixture: started or the test fails,
 * and stopped even when the test fails half-way.
 */
#ifndef ARENA_TESTLIB_FIXTURE_H
#define ARENA_TESTLIB_FIXTURE_H

#include "daemon.h"

/* Flags of arena_test_daemon_up(). */
#define ARENA_TEST_EXPORT_SOCKET 1u /* point ARENAD_SOCKET at the new daemon */

/* Starts *d as arena_test_daemon_start(d, config, args) does, or fails the
 * running test with the reason. With ARENA_TEST_EXPORT_SOCKET, sets
 * ARENAD_SOCKET to its socket. The first call for d arms an atexit handler
 * that stops d if it still runs when the test process exits, so a daemon
 * started inside a test body is stopped when an assertion ends the test
 * (up to 8 daemons per process). */
void arena_test_daemon_up(arena_test_daemon_t *d, const char *config, const char *const *args,
                          unsigned flags);

#endif
