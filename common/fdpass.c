/* SPDX-License-Identifier: MIT
 *
 * fdpass.c -- one place for the cmsg arithmetic of passing an fd.
 */
#include "fdpass.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

ssize_t arena__send_with_fd(int sock, const void *buf, size_t len, int fd, const void *to,
                            socklen_t to_len, int flags)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } cbuf;
    memset(&cbuf, 0, sizeof(cbuf));
    struct iovec iov = {.iov_base = (void *)(uintptr_t)buf, .iov_len = len};
    struct msghdr mh = {
        .msg_name = (void *)(uintptr_t)to,
        .msg_namelen = to ? to_len : 0,
        .msg_iov = &iov,
        .msg_iovlen = 1,
    };
    if (fd >= 0) {
        mh.msg_control = cbuf.buf;
        mh.msg_controllen = sizeof(cbuf.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    ssize_t n;
    do {
        n = sendmsg(sock, &mh, MSG_NOSIGNAL | flags);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}
