/* SPDX-License-Identifier: MIT
 *
 * tmpdir.c -- removes a temporary directory tree: the daemon fixture's
 * socket directory, the ops tests' base directory, the preload test's
 * outputs.
 *
 * nftw() depth-first without following links (FTW_PHYS), so a link a test
 * left behind never takes anything outside the tree with it. Trusts that
 * the caller owns the tree. Not thread-safe (nftw's callback has no
 * context, so the first error goes through a static).
 */
#include "tmpdir.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

static int tmpdir_error;

static int tmpdir_remove(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    if (remove(path) < 0 && tmpdir_error == 0)
        tmpdir_error = -errno;
    return 0; /* go on: remove what can be removed */
}

int arena_test_rmtree(const char *dir)
{
    if (!dir || !dir[0])
        return 0;
    tmpdir_error = 0;
    if (nftw(dir, tmpdir_remove, 16, FTW_DEPTH | FTW_PHYS) < 0 && tmpdir_error == 0)
        tmpdir_error = -errno;
    return tmpdir_error;
}
