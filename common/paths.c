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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int arena__default_socket_path(char *buf, size_t len)
{
    const char *env = getenv("ARENAD_SOCKET"); /* NOLINT(concurrency-mt-unsafe) */
    char tmp[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int n;
    if (env && *env) {
        n = snprintf(tmp, sizeof(tmp), "%s", env);
    } else if (geteuid() == 0) {
        n = snprintf(tmp, sizeof(tmp), "%s", ARENA_DEFAULT_SYSTEM_SOCKET);
    } else {
        const char *xdg = getenv("XDG_RUNTIME_DIR"); /* NOLINT(concurrency-mt-unsafe) */
        if (!xdg || !*xdg)
            return -ENOENT;
        n = snprintf(tmp, sizeof(tmp), "%s/arenad.sock", xdg);
    }
    if (n < 0 || (size_t)n >= sizeof(tmp) || (size_t)n >= len)
        return -ENAMETOOLONG;
    memcpy(buf, tmp, (size_t)n + 1);
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
