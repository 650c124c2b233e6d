/* SPDX-License-Identifier: MIT
 *
 * paths.c -- default socket resolution, shared by arenad, the client library
 * and arenactl so that all three agree without configuration. The daemon and
 * its clients resolve differently in one case: an unprivileged client also
 * finds the system daemon (arenad under systemd), while an unprivileged
 * daemon never takes the system path. Reads the environment; call it before
 * starting threads that change it.
 */
#include "paths.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Writes a then b into buf (cap bytes) when both fit with the NUL, and
 * returns their total length either way, as snprintf("%s%s") would: the
 * preload library resolves the socket here at start-up, and formatting
 * would bring the C library's printf code and tables into every program's
 * resident memory. */
static size_t join_path(char *buf, size_t cap, const char *a, const char *b)
{
    size_t na = strlen(a);
    size_t nb = strlen(b);
    if (na + nb < cap)
        (void)stpcpy(stpcpy(buf, a), b);
    return na + nb;
}

int arena__default_socket_path(char *buf, size_t len)
{
    const char *env = getenv("ARENAD_SOCKET"); /* NOLINT(concurrency-mt-unsafe) */
    char tmp[sizeof(((struct sockaddr_un *)0)->sun_path)];
    size_t n;
    if (env && *env) {
        n = join_path(tmp, sizeof(tmp), env, "");
    } else if (geteuid() == 0) {
        n = join_path(tmp, sizeof(tmp), ARENA_DEFAULT_SYSTEM_SOCKET, "");
    } else {
        const char *xdg = getenv("XDG_RUNTIME_DIR"); /* NOLINT(concurrency-mt-unsafe) */
        if (!xdg || !*xdg)
            return -ENOENT;
        n = join_path(tmp, sizeof(tmp), xdg, "/arenad.sock");
    }
    if (n >= sizeof(tmp) || n >= len)
        return -ENAMETOOLONG;
    memcpy(buf, tmp, n + 1);
    return 0;
}

static bool is_socket(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

static int copy_path(char *buf, size_t len, const char *path)
{
    size_t n = strlen(path);
    if (n >= len || n >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return -ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    return 0;
}

int arena__client_socket_path(char *buf, size_t len)
{
    const char *env = getenv("ARENAD_SOCKET"); /* NOLINT(concurrency-mt-unsafe) */
    if ((env && *env) || geteuid() == 0)
        return arena__default_socket_path(buf, len);
    char user[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int r = arena__default_socket_path(user, sizeof(user));
    if (r == 0 && is_socket(user))
        return copy_path(buf, len, user);
    if (r == -ENOENT || is_socket(ARENA_DEFAULT_SYSTEM_SOCKET))
        return copy_path(buf, len, ARENA_DEFAULT_SYSTEM_SOCKET);
    return r < 0 ? r : copy_path(buf, len, user);
}
