/* SPDX-License-Identifier: MIT
 *
 * sock.h -- Unix sockets by path for tests: connect to a daemon, bind a
 * notify socket, listen as a service manager or a fake daemon would.
 */
#ifndef ARENA_TESTLIB_SOCK_H
#define ARENA_TESTLIB_SOCK_H

/* What arena_test_unix_socket() does with the path. */
enum arena_test_sock_how {
    ARENA_TEST_SOCK_CONNECT, /* connect() to it */
    ARENA_TEST_SOCK_BIND,    /* bind() to it (a datagram receiver, a stale socket file) */
    ARENA_TEST_SOCK_LISTEN,  /* bind() and listen() with a backlog of 64 */
};

/* Opens an AF_UNIX socket of type (SOCK_STREAM or SOCK_DGRAM; CLOEXEC is
 * added) and connects, binds or listens on path as how says. Returns the fd,
 * or -errno (-ENAMETOOLONG: path does not fit a sockaddr_un); on failure no
 * fd stays open. */
int arena_test_unix_socket(const char *path, int type, enum arena_test_sock_how how);

#endif
