/* SPDX-License-Identifier: MIT
 *
 * fixture.c -- the Check side of the daemon fixture.
 *
 * Check forks each test, and a failed assertion ends the test process with
 * exit(): an atexit handler is the one place that sees every way out, so the
 * daemons started here are remembered (by address, in the test process's
 * statics) and stopped there. PR_SET_PDEATHSIG in daemon.c covers a test
 * killed by a signal. The shared checked fixture is configured in the
 * runner process and inherited by every forked test. Main thread only.
 */
#include "fixture.h"

#include <check.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURE_MAX 8

static arena_test_daemon_t *fixture_daemons[FIXTURE_MAX];
static bool fixture_armed;

static void fixture_stop_all(void)
{
    for (size_t i = 0; i < FIXTURE_MAX; i++)
        if (fixture_daemons[i] && fixture_daemons[i]->pid > 0)
            (void)arena_test_daemon_stop(fixture_daemons[i]);
}

static void fixture_remember(arena_test_daemon_t *d)
{
    if (!fixture_armed) {
        ck_assert_int_eq(atexit(fixture_stop_all), 0);
        fixture_armed = true;
    }
    for (size_t i = 0; i < FIXTURE_MAX; i++)
        if (fixture_daemons[i] == d)
            return;
    for (size_t i = 0; i < FIXTURE_MAX; i++) {
        if (!fixture_daemons[i]) {
            fixture_daemons[i] = d;
            return;
        }
    }
    ck_abort_msg("more than %d fixture daemons", FIXTURE_MAX);
}

void arena_test_daemon_up(arena_test_daemon_t *d, const char *config, const char *const *args,
                          unsigned flags)
{
    fixture_remember(d);
    int r = arena_test_daemon_start(d, config, args);
    ck_assert_msg(r == 0, "arenad did not start: %s", strerror(-r));
    if (flags & ARENA_TEST_EXPORT_SOCKET)
        ck_assert_int_eq(setenv("ARENAD_SOCKET", d->socket, 1), 0);
}

static struct {
    arena_test_daemon_t *d;
    const char *config;
    const char *const *args;
    unsigned flags;
} fixture_shared;

void arena_test_fixture_use(arena_test_daemon_t *d, const char *config, const char *const *args,
                            unsigned flags)
{
    fixture_shared.d = d;
    fixture_shared.config = config;
    fixture_shared.args = args;
    fixture_shared.flags = flags;
}

void arena_test_fixture_setup(void)
{
    ck_assert_msg(fixture_shared.d != NULL, "arena_test_fixture_use() was not called");
    arena_test_daemon_up(fixture_shared.d, fixture_shared.config, fixture_shared.args,
                         fixture_shared.flags);
}

void arena_test_fixture_teardown(void)
{
    if (!fixture_shared.d)
        return;
    int status = arena_test_daemon_stop(fixture_shared.d);
    const char *strict = getenv("ARENA_TEST_STRICT_STOP");
    /* Not running: the test stopped it itself and had its own say. */
    if (strict && strcmp(strict, "1") == 0 && status != ARENA_TEST_DAEMON_NOT_RUNNING)
        ck_assert_msg(status == 0, "arenad did not exit cleanly: %d", status);
}
