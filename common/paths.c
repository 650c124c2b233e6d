/* SPDX-License-Identifier: MIT
 *
 * paths.c -- default socket resolution, shared by arenad, the client library
 * and arenactl so that all three agree without configuration. Reads the
 * environment; call it before starting threads that change it.
 */
#include "paths.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
