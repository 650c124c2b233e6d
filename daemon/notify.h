/* SPDX-License-Identifier: MIT
 *
 * notify.h -- arenad's side of the systemd service protocol: inherited
 * listening sockets (LISTEN_FDS) and readiness, status, watchdog, reload and
 * stop notifications (NOTIFY_SOCKET). Every call is a no-op that succeeds when
 * systemd did not ask for it, so the daemon runs the same without systemd.
 */
#ifndef AD_NOTIFY_H
#define AD_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "restart.h"

/* Takes the listening socket systemd (or systemd-socket-activate) passed in
 * LISTEN_FDS for this process (LISTEN_PID), and unsets those variables so
 * children do not inherit them. Exactly one inherited fd is expected, and it
 * must be a listening AF_UNIX stream socket. Returns 1 and the fd in *ret_fd
 * (made CLOEXEC and non-blocking, with its path, or "" for an abstract or
 * unnamed socket, in ret_path[0..path_len)), 0 when no socket was passed
 * (outputs untouched), or -EINVAL / -ENOTSOCK / -E2BIG with a reason in err
 * when what was passed cannot be served. Call before forking. */
int ad_notify_listen_fd(char *ret_path, size_t path_len, char *err, size_t err_len, int *ret_fd);

/* The fds of the fd store that came back with LISTEN_FDS (named "ledger" or
 * "pool-..." in LISTEN_FDNAMES; CLOEXEC), set aside by ad_notify_listen_fd(),
 * which then does not require a listening socket among them. The array is
 * static; the caller takes over the fds. Returns how many. */
#define AD_NOTIFY_MAX_STORED 256
size_t ad_notify_stored_fds(ad_stored_fd_t **ret_fds);

/* FDSTORE=1 with FDNAME=name and fd attached: the service manager keeps a
 * copy of fd across restarts of the daemon (FileDescriptorStoreMax= in the
 * unit). Returns 0 (also when not under systemd) or -errno. */
int ad_notify_fdstore(int fd, const char *name);

/* True when $NOTIFY_SOCKET is set: the status and watchdog calls below talk
 * to a service manager. */
bool ad_notify_enabled(void);

/* The watchdog interval systemd asked for ($WATCHDOG_USEC, for this process
 * per $WATCHDOG_PID) in microseconds, or 0 when there is none. The daemon
 * pings at half of it. */
uint64_t ad_notify_watchdog_usec(void);

/* READY=1 with a STATUS line. Returns 0 (also when not under systemd) or
 * -errno from sending. */
int ad_notify_ready(const char *status);

/* STATUS=text. Returns 0 or -errno. */
int ad_notify_status(const char *status);

/* WATCHDOG=1. Returns 0 or -errno. */
int ad_notify_watchdog(void);

/* RELOADING=1 (with MONOTONIC_USEC) before a reload; READY=1 after it with
 * ad_notify_ready(). Returns 0 or -errno. */
int ad_notify_reloading(void);

/* STOPPING=1 with a STATUS line. Returns 0 or -errno. */
int ad_notify_stopping(const char *status);

#endif
