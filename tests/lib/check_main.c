/* SPDX-License-Identifier: MIT
 *
 * check_main.c -- runs one Check suite and turns its result into an exit
 * status.
 *
 * Every suite used to carry the same five lines; one copy means every suite
 * honours the same environment (Check reads CK_RUN_CASE, CK_FORK and
 * CK_VERBOSITY itself when given NULL and CK_ENV) and the same optional
 * TCase argument. Trusts Check; main thread only, before any test runs.
 */
#include "check_main.h"

#include <stdlib.h>

int arena_test_run(Suite *suite, const char *tcase)
{
    SRunner *sr = srunner_create(suite);
    srunner_run_tagged(sr, NULL, tcase, NULL, NULL, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
