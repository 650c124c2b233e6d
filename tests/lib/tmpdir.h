/* SPDX-License-Identifier: MIT
 *
 * tmpdir.h -- removing a test's temporary directory tree.
 */
#ifndef ARENA_TESTLIB_TMPDIR_H
#define ARENA_TESTLIB_TMPDIR_H

/* Removes dir and everything below it (files, sockets, subdirectories;
 * symbolic links are removed, never followed). NULL or "" is a no-op.
 * Returns 0, or -errno of the first entry that could not be removed (the
 * rest is still tried). */
int arena_test_rmtree(const char *dir);

#endif
