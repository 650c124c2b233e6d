/* SPDX-License-Identifier: MIT
 *
 * dispatch.h -- the request dispatcher: one session per connection, turning
 * decoded requests into lease-manager and admin calls and queuing the replies.
 */
#ifndef AD_DISPATCH_H
#define AD_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "admin.h"
#include "conn.h"
#include "lease.h"

typedef struct ad_dispatch ad_dispatch_t;
typedef struct ad_session ad_session_t;

typedef struct ad_dispatch_config {
    size_t max_frame; /* requests above this are refused before decoding */
} ad_dispatch_config_t;

/* Creates the dispatcher over a lease manager and an admin view (borrowed;
 * both must outlive it). Returns 0, or -EINVAL, -ENOMEM. */
int ad_dispatch_new(const ad_dispatch_config_t *config, ad_leases_t *leases, ad_admin_t *admin,
                    ad_dispatch_t **ret_dispatch);

/* NULL-safe. Sessions must be freed first. */
void ad_dispatch_free(ad_dispatch_t *dispatch);

/* Starts a session on a new connection (borrowed until ad_session_free()):
 * reads the peer's groups for the admin check. Returns 0, -ENOMEM. */
int ad_session_new(ad_dispatch_t *dispatch, ad_conn_t *conn, ad_session_t **ret_session);

/* Ends a session: its client (if it said hello) is unregistered and every
 * lease it holds is released with its pages punched (not punched once the
 * daemon is stopping, see ad_dispatch_set_stopping()). Logs the disconnect
 * with reason (0 or -errno, as from ad_conn's on_close). NULL-safe. */
void ad_session_free(ad_session_t *session, int reason, uint64_t now_ms);

/* Handles one frame payload of the session's connection: decodes it, runs
 * the request and queues the reply (or an error, closing the connection
 * when the protocol requires). fd is -1 or a descriptor that came with the
 * frame (SCM_RIGHTS); the session takes it over: only a re-registering
 * Hello keeps it (the pool memfd), any other frame's fd is closed. */
void ad_session_frame(ad_session_t *session, const uint8_t *payload, size_t len, int fd,
                      uint64_t now_ms);

/* Answers a frame whose header announced more than max_frame bytes with
 * ERROR_FRAME_TOO_LARGE and shuts the connection down. */
void ad_session_oversize(ad_session_t *session, size_t len);

/* The daemon is stopping: sessions freed from now on leave their leases'
 * pages alone (clients that still map them keep their data) instead of
 * punching them. */
void ad_dispatch_set_stopping(ad_dispatch_t *dispatch);

/* Completes queued lease requests that now fit or have timed out, sending
 * their replies. Call after anything that may free memory, and at the wait
 * timer. Returns the number completed. */
size_t ad_dispatch_serve_waiters(ad_dispatch_t *dispatch, uint64_t now_ms);

#endif
