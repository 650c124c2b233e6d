/* SPDX-License-Identifier: MIT
 *
 * fdpass.h -- sending and receiving bytes with file descriptors attached
 * (SCM_RIGHTS), the way every side of arenad does it: the daemon's replies,
 * the client reading them and handing its pool back, the daemon storing fds
 * with its service manager, tests.
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

/* recvmsg() of up to len bytes into buf on sock, retried on EINTR, with
 * MSG_CMSG_CLOEXEC | flags. Descriptors that arrive (SCM_RIGHTS, at most
 * ARENA_FDPASS_MAX are taken in by the kernel) go, in order, into the free
 * (-1) entries of fds[0..max_fds); the rest are closed (fds may be NULL when
 * max_fds is 0: every one is closed). Returns the bytes read (0: the peer
 * closed) or -errno. */
ssize_t arena__recv_with_fds(int sock, void *buf, size_t len, int *fds, size_t max_fds, int flags);

#endif
