/* SPDX-License-Identifier: MIT
 *
 * fdpass.h -- sending bytes with one file descriptor attached (SCM_RIGHTS),
 * the way every side of arenad does it: the client handing its pool back,
 * the daemon storing fds with its service manager, tests.
 */
#ifndef ARENA_COMMON_FDPASS_H
#define ARENA_COMMON_FDPASS_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

/* sendmsg() of len bytes of buf on sock with fd (>= 0; -1: none) attached to
 * the first byte, to `to` (NULL on a connected socket), retried on EINTR,
 * with MSG_NOSIGNAL | flags. Returns the bytes sent (possibly fewer than len
 * on a stream socket; the fd went with them) or -errno. */
ssize_t arena__send_with_fd(int sock, const void *buf, size_t len, int fd, const void *to,
                            socklen_t to_len, int flags);

#endif
