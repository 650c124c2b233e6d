/* SPDX-License-Identifier: MIT
 *
 * procid.h -- naming a process beyond its pid (DESIGN.md section 7).
 *
 * A pid is reused once its process is reaped; a pid together with the
 * process's start time (field 22 of /proc/PID/stat, clock ticks after boot)
 * names one process for the life of the system. The ledger records both, so
 * a new process that happens to get a dead client's pid inherits nothing.
 */
#ifndef AD_PROCID_H
#define AD_PROCID_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The start time of process pid. Returns 0 and *ret_start (never 0), or
 * -ESRCH (no such process visible), -EINVAL (pid <= 0, or a stat line that
 * does not parse), -errno from reading /proc (then nothing is known: /proc
 * may be hidden, ProtectProc=). */
int ad_proc_start_time(pid_t pid, uint64_t *ret_start);

/* Whether the process named by pid and start (0: start unknown) still
 * exists; a zombie counts until it is reaped. A pid whose process started at
 * another time is another process: false. When the start time cannot be
 * read (unknown, or /proc hidden), kill(pid, 0) decides, and EPERM says the
 * process exists: memory may then be held too long, never handed over. */
bool ad_proc_alive(pid_t pid, uint64_t start);

#endif
