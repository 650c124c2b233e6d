/* SPDX-License-Identifier: MIT
 *
 * supervise.h -- a small service manager of our own for an arenad started
 * without one (DESIGN.md section 7): the fd store that outlives the serving
 * process, and the restart after a crash.
 *
 * The supervising process is the one the user started (same pid, same
 * socket path for clients); it forks the server and speaks to it the
 * systemd protocol the daemon already speaks (NOTIFY_SOCKET, FDSTORE=1,
 * LISTEN_FDS/LISTEN_FDNAMES), so a crash of the server is resumed by the
 * same code as under systemd. Under systemd none of this runs: the unit has
 * its own fd store.
 */
#ifndef AD_SUPERVISE_H
#define AD_SUPERVISE_H

#include <stdint.h>

/* Restarts allowed within AD_SUPERVISE_BURST_MS before the supervisor gives
 * up (a server that crashes at once on every start is not retried forever). */
#define AD_SUPERVISE_BURST    5
#define AD_SUPERVISE_BURST_MS 10000u

/* Forks the server and supervises it. In the server process, returns -1
 * with the environment set for the fd-store path (NOTIFY_SOCKET naming the
 * supervisor, ARENAD_FDSTORE=1 and, after a restart, the stored fds as
 * 3.. with LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES): the caller then starts
 * the server as under a service manager. In the supervisor, returns the
 * exit code for main once the server stops for good: the server's own exit
 * status when it exits (0 after SIGTERM/SIGINT, which are forwarded, as is
 * SIGHUP), 128 + signal when a signal ended it and it is not restarted (a
 * stop was asked for, no server was ever ready, or the burst limit is
 * reached), 1 when supervising cannot start. ready_fd (-1: none) is the daemonising
 * parent's pipe: 'R' is written to it once the first server says READY=1;
 * the server never sees it. */
int ad_supervise(int ready_fd);

#endif
