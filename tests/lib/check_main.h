/* SPDX-License-Identifier: MIT
 *
 * check_main.h -- the one Check runner every suite's main() uses.
 */
#ifndef ARENA_TESTLIB_CHECK_MAIN_H
#define ARENA_TESTLIB_CHECK_MAIN_H

#include <check.h>

/* The exit status of a suite some of whose tests skipped themselves: CTest's
 * SKIP_RETURN_CODE for every Check test (arena_add_check_test). */
#define ARENA_TEST_SKIPPED 77

/* Says that the running test cannot run here and why (printf-style), so the
 * suite ends ARENA_TEST_SKIPPED instead of passing: the test returns right
 * after. Works in Check's fork mode (the reasons go to a page shared with
 * the runner) and in CK_FORK=no. */
void arena_test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs suite (taking ownership) in a new SRunner and returns EXIT_SUCCESS
 * when no test failed and none skipped itself, ARENA_TEST_SKIPPED (after
 * printing each reason on stdout, "SKIPPED: ...") when none failed but some
 * skipped, else EXIT_FAILURE. tcase, when not NULL, names the
 * one TCase to run; NULL leaves the choice to Check's environment as
 * srunner_run_all() does: CK_RUN_SUITE, CK_RUN_CASE, CK_INCLUDE_TAGS,
 * CK_EXCLUDE_TAGS select, CK_FORK=no runs in one process (gdb, valgrind),
 * CK_VERBOSITY sets the output (default normal).
 * Example: return arena_test_run(pool_suite(), NULL); */
int arena_test_run(Suite *suite, const char *tcase);

/* The main() of a suite that needs no set-up of its own: an optional first
 * argument names the TCase to run (`test_lease restart`). */
#define ARENA_TEST_MAIN(make_suite)                                                                \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        return arena_test_run(make_suite(), argc > 1 ? argv[1] : NULL);                            \
    }

#endif
