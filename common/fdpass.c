/* SPDX-License-Identifier: MIT
 *
 * fdpass.c -- one place for the cmsg arithmetic of passing fds.
 */
#include "fdpass.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

ssize_t arena__send_with_fds(int sock, const void *buf, size_t len, const int *fds, size_t nfds,
                             const void *to, socklen_t to_len, int flags)
{
    if (nfds > ARENA_FDPASS_MAX || (nfds > 0 && !fds))
        return -EINVAL;
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(ARENA_FDPASS_MAX * sizeof(int))];
    } cbuf;
    struct iovec iov = {.iov_base = (void *)(uintptr_t)buf, .iov_len = len};
    struct msghdr mh = {
        .msg_name = (void *)(uintptr_t)to,
        .msg_namelen = to ? to_len : 0,
        .msg_iov = &iov,
        .msg_iovlen = 1,
    };
    if (nfds > 0) {
        memset(&cbuf, 0, sizeof(cbuf));
        mh.msg_control = cbuf.buf;
        mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
    }
    ssize_t n;
    do {
        n = sendmsg(sock, &mh, MSG_NOSIGNAL | flags);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

ssize_t arena__send_with_fd(int sock, const void *buf, size_t len, int fd, const void *to,
                            socklen_t to_len, int flags)
{
    return arena__send_with_fds(sock, buf, len, &fd, fd >= 0 ? 1 : 0, to, to_len, flags);
}

ssize_t arena__recv_with_fds(int sock, void *buf, size_t len, int *fds, size_t max_fds, int flags)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(ARENA_FDPASS_MAX * sizeof(int))];
    } cbuf;
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    struct msghdr mh = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = cbuf.buf,
        .msg_controllen = sizeof(cbuf.buf),
    };
    ssize_t n;
    do {
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | flags);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    size_t next = 0; /* fds[0..next) are all taken */
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            while (next < max_fds && fds[next] >= 0)
                next++;
            if (next < max_fds)
                fds[next++] = fd;
            else
                (void)close(fd);
        }
    }
    return n;
}
