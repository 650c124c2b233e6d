/* SPDX-License-Identifier: MIT
 *
 * notify.c -- the systemd service protocol, and the only daemon file that
 * includes <systemd/sd-daemon.h>.
 *
 * Two directions. Inbound, socket activation: systemd (or
 * systemd-socket-activate) opens /run/arenad/arenad.sock and passes it as
 * fd 3.. with LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES; the daemon then
 * serves that socket and neither binds nor unlinks the path, so the socket
 * outlives restarts and clients queue in its backlog meanwhile. With the fd
 * store enabled, stored fds arrive the same way, so the first listening
 * AF_UNIX stream socket is taken and other fds are left alone. Outbound,
 * notifications: one datagram per message to $NOTIFY_SOCKET (READY, STATUS,
 * WATCHDOG, RELOADING, STOPPING).
 *
 * With libsystemd (ARENA_HAVE_SYSTEMD) the sd_* calls do the work; without it
 * the same protocol is spoken by hand (it is a stable, documented interface,
 * see sd_notify(3) and sd_listen_fds(3)), so a build without libsystemd still
 * runs under systemd. Nothing here logs or exits; callers decide. Loop
 * thread, or start-up before the loop exists.
 */
#include "notify.h"

#include "fdpass.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifdef ARENA_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#define NOTIFY_LISTEN_FDS_START 3

static void notify_err(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void notify_err(char *err, size_t err_len, const char *fmt, ...)
{
    if (!err || err_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    /* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): false positive */
    (void)vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

/* ---- inherited sockets ------------------------------------------------------ */

/* 1 when fd is a listening AF_UNIX stream socket, else 0. */
static int notify_is_unix_listener(int fd)
{
#ifdef ARENA_HAVE_SYSTEMD
    return sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) > 0;
#else
    int v = 0;
    socklen_t len = sizeof(v);
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len) < 0 || v != AF_UNIX)
        return 0;
    len = sizeof(v);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) < 0 || v != SOCK_STREAM)
        return 0;
    len = sizeof(v);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) < 0 || v == 0)
        return 0;
    return 1;
#endif
}

/* Fds the service manager handed back from the fd store (names "ledger"
 * and "pool-..."), set aside by notify_listen_count(). */
static ad_stored_fd_t notify_stored[AD_NOTIFY_MAX_STORED];
static size_t notify_stored_n;

/* Sets fd i (3 + i) aside when its name is one of ours. */
static void notify_take_stored(int i, const char *name, size_t len)
{
    if (notify_stored_n >= AD_NOTIFY_MAX_STORED || len == 0 || len >= sizeof(notify_stored[0].name))
        return;
    if (!(len == 6 && memcmp(name, "ledger", 6) == 0) &&
        !(len > 5 && memcmp(name, "pool-", 5) == 0))
        return;
    ad_stored_fd_t *st = &notify_stored[notify_stored_n++];
    st->fd = NOTIFY_LISTEN_FDS_START + i;
    memcpy(st->name, name, len);
    st->name[len] = '\0';
    (void)fcntl(st->fd, F_SETFD, FD_CLOEXEC);
}

#ifndef ARENA_HAVE_SYSTEMD
/* Walks LISTEN_FDNAMES (colon-separated, one per fd) for n fds. */
static void notify_take_names(const char *names, int n)
{
    for (int i = 0; names && i < n; i++) {
        const char *end = strchr(names, ':');
        size_t len = end ? (size_t)(end - names) : strlen(names);
        notify_take_stored(i, names, len);
        if (!end)
            break;
        names = end + 1;
    }
}
#endif

/* True when fd was set aside as a stored fd. */
static bool notify_is_stored(int fd)
{
    for (size_t i = 0; i < notify_stored_n; i++)
        if (notify_stored[i].fd == fd)
            return true;
    return false;
}

/* The number of fds passed to this process, or 0, or -EINVAL when the
 * variables are malformed. Unsets them either way. */
static int notify_listen_count(void)
{
#ifdef ARENA_HAVE_SYSTEMD
    char **names = NULL;
    int n = sd_listen_fds_with_names(1, &names);
    if (names) {
        for (int i = 0; i < n && names[i]; i++)
            notify_take_stored(i, names[i], strlen(names[i]));
        for (char **p = names; *p; p++)
            free(*p);
        free((void *)names);
    }
    return n < 0 ? -EINVAL : n;
#else
    /* NOLINTBEGIN(concurrency-mt-unsafe): start-up, single-threaded */
    const char *pid_s = getenv("LISTEN_PID");
    const char *fds_s = getenv("LISTEN_FDS");
    int r = 0;
    if (pid_s && fds_s) {
        char *end;
        errno = 0;
        unsigned long long pid = strtoull(pid_s, &end, 10);
        if (errno || *end || end == pid_s) {
            r = -EINVAL;
        } else if (pid == (unsigned long long)getpid()) {
            errno = 0;
            unsigned long n = strtoul(fds_s, &end, 10);
            /* As libsystemd: a count of 0 is malformed, not "none". */
            if (errno || *end || end == fds_s || n == 0 || n > 1024)
                r = -EINVAL;
            else
                r = (int)n;
        }
    }
    if (r > 0)
        notify_take_names(getenv("LISTEN_FDNAMES"), r);
    (void)unsetenv("LISTEN_PID");
    (void)unsetenv("LISTEN_FDS");
    (void)unsetenv("LISTEN_FDNAMES");
    /* NOLINTEND(concurrency-mt-unsafe) */
    return r;
#endif
}

int ad_notify_listen_fd(char *ret_path, size_t path_len, char *err, size_t err_len, int *ret_fd)
{
    int n = notify_listen_count();
    if (n < 0) {
        notify_err(err, err_len, "malformed LISTEN_PID/LISTEN_FDS in the environment");
        return -EINVAL;
    }
    if (n == 0)
        return 0;
    int fd = -1;
    for (int i = 0; i < n; i++) {
        if (!notify_is_stored(NOTIFY_LISTEN_FDS_START + i) &&
            notify_is_unix_listener(NOTIFY_LISTEN_FDS_START + i)) {
            fd = NOTIFY_LISTEN_FDS_START + i;
            break;
        }
    }
    if (fd < 0 && notify_stored_n > 0)
        return 0; /* only the fd store came back: bind the socket ourselves */
    if (fd < 0) {
        notify_err(err, err_len,
                   "%d fd(s) passed by the service manager, none a listening AF_UNIX stream "
                   "socket",
                   n);
        return -ENOTSOCK;
    }
    struct sockaddr_un sa;
    socklen_t len = sizeof(sa);
    memset(&sa, 0, sizeof(sa));
    if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
        int r = -errno;
        char buf[128];
        notify_err(err, err_len, "getsockname on the inherited socket: %s",
                   strerror_r(-r, buf, sizeof(buf)));
        return r;
    }
    size_t plen = 0;
    if (len > offsetof(struct sockaddr_un, sun_path) && sa.sun_path[0] != '\0')
        plen = strnlen(sa.sun_path, sizeof(sa.sun_path));
    if (plen >= path_len) {
        notify_err(err, err_len, "the inherited socket's path is too long");
        return -E2BIG;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
        int r = -errno;
        char buf[128];
        notify_err(err, err_len, "fcntl on the inherited socket: %s",
                   strerror_r(-r, buf, sizeof(buf)));
        return r;
    }
    memcpy(ret_path, sa.sun_path, plen);
    ret_path[plen] = '\0';
    *ret_fd = fd;
    return 1;
}

size_t ad_notify_stored_fds(ad_stored_fd_t **ret_fds)
{
    *ret_fds = notify_stored;
    return notify_stored_n;
}

/* ---- notifications ------------------------------------------------------------ */

bool ad_notify_enabled(void)
{
    /* NOLINTNEXTLINE(concurrency-mt-unsafe): the environment is not changed later */
    const char *e = getenv("NOTIFY_SOCKET");
    return e && e[0];
}

uint64_t ad_notify_watchdog_usec(void)
{
#ifdef ARENA_HAVE_SYSTEMD
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0)
        return 0;
    return usec;
#else
    /* NOLINTBEGIN(concurrency-mt-unsafe): the environment is not changed later */
    const char *u = getenv("WATCHDOG_USEC");
    const char *p = getenv("WATCHDOG_PID");
    /* NOLINTEND(concurrency-mt-unsafe) */
    if (!u || !u[0])
        return 0;
    char *end;
    if (p && p[0]) {
        errno = 0;
        unsigned long long pid = strtoull(p, &end, 10);
        if (errno || *end || pid != (unsigned long long)getpid())
            return 0;
    }
    errno = 0;
    unsigned long long usec = strtoull(u, &end, 10);
    if (errno || *end || usec == 0)
        return 0;
    return usec;
#endif
}

/* Sends one notification datagram; 0 when NOTIFY_SOCKET is unset. */
static int notify_send(const char *msg)
{
    if (!ad_notify_enabled())
        return 0;
#ifdef ARENA_HAVE_SYSTEMD
    int r = sd_notify(0, msg);
    return r < 0 ? r : 0;
#else
    /* NOLINTNEXTLINE(concurrency-mt-unsafe): the environment is not changed later */
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path)
        return 0;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    size_t plen = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || plen >= sizeof(sa.sun_path))
        return -EINVAL;
    memcpy(sa.sun_path, path, plen);
    if (path[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract namespace */
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    ssize_t w = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
    int r = w < 0 ? -errno : 0;
    (void)close(fd);
    return r;
#endif
}

/* Formats "PREFIX" + "STATUS=status" (status may be NULL) and sends it. */
static int notify_with_status(const char *prefix, const char *status)
{
    char msg[1024];
    int n =
        snprintf(msg, sizeof(msg), "%s%s%s", prefix, status ? "STATUS=" : "", status ? status : "");
    if (n < 0)
        return -EINVAL;
    /* A status too long for the buffer is cut: better than none. */
    return notify_send(msg);
}

int ad_notify_fdstore(int fd, const char *name)
{
    if (!ad_notify_enabled())
        return 0;
    char msg[128];
    int n = snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", name);
    if (n < 0 || (size_t)n >= sizeof(msg))
        return -EINVAL;
#ifdef ARENA_HAVE_SYSTEMD
    int r = sd_pid_notify_with_fds(0, 0, msg, &fd, 1);
    return r < 0 ? r : 0;
#else
    /* NOLINTNEXTLINE(concurrency-mt-unsafe): the environment is not changed later */
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    size_t plen = path ? strlen(path) : 0;
    if (!path || (path[0] != '/' && path[0] != '@') || plen >= sizeof(sa.sun_path))
        return -EINVAL;
    memcpy(sa.sun_path, path, plen);
    if (path[0] == '@')
        sa.sun_path[0] = '\0';
    int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    ssize_t w = arena__send_with_fd(s, msg, (size_t)n, fd, &sa,
                                    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen), 0);
    (void)close(s);
    return w < 0 ? (int)w : 0;
#endif
}

int ad_notify_ready(const char *status)
{
    return notify_with_status("READY=1\n", status);
}

int ad_notify_status(const char *status)
{
    return notify_with_status("", status ? status : "");
}

int ad_notify_watchdog(void)
{
    return notify_send("WATCHDOG=1");
}

int ad_notify_reloading(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    char msg[96];
    (void)snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64,
                   (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
    return notify_send(msg);
}

int ad_notify_stopping(const char *status)
{
    return notify_with_status("STOPPING=1\n", status);
}
