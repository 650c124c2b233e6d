/* SPDX-License-Identifier: MIT
 *
 * fdpass.h -- sending bytes with file descriptors attached (SCM_RIGHTS),
 * the way every side of arenad does it: the daemon's replies, the client
 * handing its pool back, the daemon storing fds with its service manager,
 * tests.
 */
#ifndef ARENA_COMMON_FDPASS_H
#define ARENA_COMMON_FDPASS_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

/* The most descriptors one call attaches. */
#define ARENA_FDPASS_MAX 8

/* sendmsg() of len bytes of buf on sock with nfds descriptors (0 to
 * ARENA_FDPASS_MAX; fds may be NULL when 0) attached to the first byte, in
 * one SCM_RIGHTS message, to `to` (NULL on a connected socket), retried on
 * EINTR, with MSG_NOSIGNAL | flags. Returns the bytes sent (possibly fewer
 * than len on a stream socket; the fds went with them) or -errno (-EINVAL:
 * more than ARENA_FDPASS_MAX fds). */
ssize_t arena__send_with_fds(int sock, const void *buf, size_t len, const int *fds, size_t nfds,
                             const void *to, socklen_t to_len, int flags);

/* The same with one fd (>= 0; -1: none). */
ssize_t arena__send_with_fd(int sock, const void *buf, size_t len, int fd, const void *to,
                            socklen_t to_len, int flags);

#endif
