/* SPDX-License-Identifier: MIT
 *
 * proc.h -- what /proc tells a test about a process: its open fds, its
 * resident memory, what backs an address.
 */
#ifndef ARENA_TESTLIB_PROC_H
#define ARENA_TESTLIB_PROC_H

#include <stdbool.h>
#include <sys/types.h>

/* Counts the open fds of process pid (entries of /proc/PID/fd), or -errno. */
int arena_test_count_fds(pid_t pid);

/* The open-fd count of process pid once it stops changing: samples are
 * taken with poke(ctx) before each (poke may be NULL; a status round trip
 * with the daemon lets its loop run the close callbacks of connections that
 * just went), and the first count equal to the one before is returned, or
 * the last of 100. Returns -errno when the count cannot be read. */
int arena_test_stable_fds(pid_t pid, void (*poke)(void *ctx), void *ctx);

/* Whether process pid has a handler installed for signal sig (its bit in
 * SigCgt of /proc/PID/status). Returns 1 or 0, or -errno (-ENOENT: no such
 * process or no SigCgt line). */
int arena_test_catches_signal(pid_t pid, int sig);

/* The resident set of process pid in KiB (VmRSS of /proc/PID/status), or
 * -errno (-ENOENT: no such process or no VmRSS line). */
long arena_test_rss_kib(pid_t pid);

/* True when addr lies in a mapping of a memfd in this process (a lease of
 * the daemon's pool heap), false otherwise or when /proc cannot be read. */
bool arena_test_is_memfd_mapped(const void *addr);

#endif
