/* SPDX-License-Identifier: MIT
 *
 * check_main.c -- runs one Check suite and turns its result into an exit
 * status.
 *
 * Every suite used to carry the same five lines; one copy means every suite
 * honours the same environment (Check reads CK_RUN_CASE, CK_FORK and
 * CK_VERBOSITY itself when given NULL and CK_ENV) and the same optional
 * TCase argument. Trusts Check; main thread only, before any test runs.
 *
 * A test that cannot run here says so with arena_test_skip(): its reason
 * lands in a page mapped MAP_SHARED before the runner forks the tests, so
 * the runner sees it after the forked test ended, and the suite's exit
 * status tells CTest "skipped" (77) rather than "passed". One test at a time
 * writes the page (Check runs the forked tests one after another).
 */
#include "check_main.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define SKIP_PAGE 4096

static char *skip_text; /* NUL-terminated reasons, one a line; NULL: no runner */

void arena_test_skip(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* Also in the test's own output, where its log shows it. */
    printf("SKIP %s\n", line);
    (void)fflush(stdout);
    if (!skip_text)
        return;
    size_t used = strlen(skip_text);
    (void)snprintf(skip_text + used, SKIP_PAGE - used, "%s\n", line);
}

int arena_test_run(Suite *suite, const char *tcase)
{
    void *page = mmap(NULL, SKIP_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    skip_text = page == MAP_FAILED ? NULL : page;
    SRunner *sr = srunner_create(suite);
    srunner_run_tagged(sr, NULL, tcase, NULL, NULL, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    int rc = failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
    if (skip_text && skip_text[0]) {
        /* One line per reason, each "SKIPPED: why", for test.sh to collect. */
        for (char *line = skip_text, *nl; *line; line = nl + 1) {
            nl = strchr(line, '\n');
            if (!nl)
                break;
            printf("SKIPPED: %.*s\n", (int)(nl - line), line);
        }
        if (rc == EXIT_SUCCESS)
            rc = ARENA_TEST_SKIPPED;
    }
    if (skip_text)
        (void)munmap(skip_text, SKIP_PAGE);
    skip_text = NULL;
    return rc;
}
