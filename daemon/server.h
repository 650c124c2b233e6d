/* SPDX-License-Identifier: MIT
 *
 * server.h -- the event loop: the listening socket, connections, signals and
 * timers, wired to the dispatcher and the lease manager.
 */
#ifndef AD_SERVER_H
#define AD_SERVER_H

#include <stddef.h>

#include "config.h"

typedef struct ad_server ad_server_t;

typedef struct ad_server_hooks {
    /* SIGHUP: builds the new configuration (defaults, file, flags) into
     * *ret_config, or returns -errno with a reason in err. NULL: no reload. */
    int (*reload)(void *ctx, ad_config_t *ret_config, char *err, size_t err_len);
    /* SIGTERM or SIGINT arrived; shutdown begins. May be NULL. */
    void (*stopping)(void *ctx);
    void *ctx;
} ad_server_hooks_t;

/* Creates the loop, the lease manager and the listening socket at
 * config->socket (creating its parent directory, removing a stale socket),
 * and installs the signal handlers. On return the socket accepts connections.
 * Returns 0, or -EADDRINUSE (another daemon answers on the socket), -EEXIST
 * (the path exists and is not a socket), -errno; a reason is in err.
 * Nothing is left behind on failure. */
int ad_server_new(const ad_config_t *config, const ad_server_hooks_t *hooks, char *err,
                  size_t err_len, ad_server_t **ret_server);

/* Serves until SIGTERM or SIGINT, then stops accepting, closes every
 * connection (releasing its leases), unlinks the socket and returns 0, or
 * -errno if the loop failed. */
int ad_server_run(ad_server_t *server);

/* Frees everything, closing connections first if ad_server_run() did not
 * return; NULL-safe. */
void ad_server_free(ad_server_t *server);

#endif
