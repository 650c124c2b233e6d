/* SPDX-License-Identifier: MIT
 *
 * sock.c -- one place that fills a sockaddr_un, so a path that does not fit
 * is an error everywhere instead of a silent truncation somewhere.
 *
 * Trusts its caller's path only as far as its length; every fd it returns
 * is CLOEXEC, so a program a test runs never inherits one. Any thread.
 */
#include "sock.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int arena_test_unix_socket(const char *path, int type, enum arena_test_sock_how how)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (!path || strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int r;
    if (how == ARENA_TEST_SOCK_CONNECT)
        r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    else
        r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    if (r == 0 && how == ARENA_TEST_SOCK_LISTEN)
        r = listen(fd, 64);
    if (r < 0) {
        r = -errno;
        (void)close(fd);
        return r;
    }
    return fd;
}
