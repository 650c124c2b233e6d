/* SPDX-License-Identifier: MIT
 *
 * server.h -- the event loop: the listening socket, connections, signals and
 * timers, wired to the dispatcher and the lease manager.
 */
#ifndef AD_SERVER_H
#define AD_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "restart.h"

typedef struct ad_server ad_server_t;

/* What the server reports to its status hook: enough for a one-line
 * summary (systemd's STATUS=). */
typedef struct ad_server_figures {
    uint64_t budget;
    uint64_t leased_bytes;
    uint64_t leases;
    uint32_t clients;
} ad_server_figures_t;

typedef struct ad_server_hooks {
    /* SIGHUP: builds the new configuration (defaults, file, flags) into
     * *ret_config, or returns -errno with a reason in err. NULL: no reload. */
    int (*reload)(void *ctx, ad_config_t *ret_config, char *err, size_t err_len);
    /* Around a SIGHUP reload: reloading before the configuration is rebuilt,
     * reloaded after it is applied (result 0) or rejected (result < 0, the
     * old settings stay). Either may be NULL. */
    void (*reloading)(void *ctx);
    void (*reloaded)(void *ctx, int result, const ad_server_figures_t *figures);
    /* SIGTERM or SIGINT arrived; shutdown begins. May be NULL. */
    void (*stopping)(void *ctx);
    /* Called about once a second while serving, but only when the figures
     * differ from the last call (the first call always happens). May be NULL:
     * no timer then. */
    void (*status)(void *ctx, const ad_server_figures_t *figures);
    /* Called every watchdog_ms while the loop runs (a stuck loop stops the
     * calls). NULL or watchdog_ms 0: none. */
    void (*watchdog)(void *ctx);
    uint64_t watchdog_ms;
    /* When has_listen_fd: serve this already listening socket (socket
     * activation) instead of binding config->socket; the server then never
     * unlinks or chmods the path, and closes the fd when it stops. */
    bool has_listen_fd;
    int listen_fd;
    /* The fd store (restart.h): what the service manager handed back (the
     * fds are the server's: adopted or closed), and how to store more (NULL:
     * no fd store; with nothing stored either, no ledger is kept). */
    ad_stored_fd_t *stored;
    size_t stored_count;
    ad_fdstore_fn fdstore;
    void *ctx;
} ad_server_hooks_t;

/* Creates the loop, the lease manager and the listening socket at
 * config->socket (creating its parent directory, removing a stale socket) or
 * takes hooks->listen_fd (then owned by the server, also on failure), and
 * installs the signal handlers. On return the socket accepts connections.
 * Returns 0, or -EADDRINUSE (another daemon answers on the socket), -EEXIST
 * (the path exists and is not a socket), -errno; a reason is in err.
 * Nothing is left behind on failure. */
int ad_server_new(const ad_config_t *config, const ad_server_hooks_t *hooks, char *err,
                  size_t err_len, ad_server_t **ret_server);

/* Serves until SIGTERM or SIGINT, then stops accepting, closes every
 * connection (releasing its leases), unlinks the socket it bound (never an
 * inherited one) and returns 0, or
 * -errno if the loop failed. */
int ad_server_run(ad_server_t *server);

/* Frees everything, closing connections first if ad_server_run() did not
 * return; NULL-safe. */
void ad_server_free(ad_server_t *server);

#endif
