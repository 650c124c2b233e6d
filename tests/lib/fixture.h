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

/* The shared checked fixture: arena_test_fixture_use() names the daemon
 * variable and what to start (config, args, flags as for
 * arena_test_daemon_up(); the strings must outlive the run), once, before
 * the runner forks the tests (in the suite builder); then
 *     tcase_add_checked_fixture(tc, arena_test_fixture_setup,
 *                               arena_test_fixture_teardown);
 * starts it before and stops it after each test of the TCase. */
void arena_test_fixture_use(arena_test_daemon_t *d, const char *config, const char *const *args,
                            unsigned flags);

/* Starts the daemon arena_test_fixture_use() named, or fails the test. */
void arena_test_fixture_setup(void);

/* Stops it. Its exit status is not checked (a test that passed stays
 * passed), unless ARENA_TEST_STRICT_STOP=1 is in the environment: then
 * anything but a clean exit 0 (a sanitizer's report is 23) fails the test,
 * except a daemon the test already stopped itself. */
void arena_test_fixture_teardown(void);

#endif
