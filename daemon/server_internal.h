/* SPDX-License-Identifier: MIT
 *
 * server_internal.h -- what the files of the server share: the service
 * object behind ad_server_t, one connection's slot, and the helpers one
 * file calls in another.
 *
 * Only server.c, listen.c, timers.c and reload.c include this header; the
 * daemon sees the server through server.h alone. Calls go one way, down:
 *
 *     server.c (lifecycle: build, listen, handles; signals; stop)
 *       |        \
 *       |      reload.c (SIGHUP: rebuild, report, apply)
 *       |        /    |
 *     listen.c (socket, accept, refusals, slots, sweep)
 *       |             |
 *     timers.c (the lease manager's timers, status and watchdog)
 *
 * Declarations are grouped by the file that defines them. Loop thread only.
 */
#ifndef AD_SERVER_INTERNAL_H
#define AD_SERVER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "admin.h"
#include "config.h"
#include "conn.h"
#include "dispatch.h"
#include "lease.h"
#include "restart.h"
#include "server.h"

typedef struct slot {
    struct slot *prev;
    struct slot *next;
    ad_server_t *server;
    ad_conn_t *conn;
    ad_session_t *session;
    uint64_t accepted_ms; /* loop time of accept */
    uid_t uid;
    bool greeted; /* a whole frame (the first must be Hello) arrived */
} slot_t;

/* The service object. Each group of fields is written by the file named
 * (server.c also sets them up when it makes the object); the others only
 * read it. */
struct ad_server {
    /* server.c: the service and its lifecycle. */
    uv_loop_t loop;
    bool loop_ready;
    ad_config_t config; /* reload.c changes what applies live */
    ad_server_hooks_t hooks;
    ad_restart_t *restart; /* the fd store's ledger; NULL without one */
    ad_leases_t *leases;
    ad_admin_t *admin;
    ad_dispatch_t *dispatch;
    uv_signal_t sig_term;
    uv_signal_t sig_int;
    uv_signal_t sig_hup;
    bool handles_ready; /* every signal and timer handle is initialised */
    bool stopping;

    /* listen.c: the socket, accepting, connections, the sweep. */
    int listen_fd;
    bool inherited; /* listen_fd came from the service manager */
    bool listening;
    uv_poll_t listen_poll;
    dev_t sock_dev;
    ino_t sock_ino;
    int reserve_fd;          /* the spare fd for refusing at EMFILE */
    uv_timer_t accept_timer; /* resumes accepting after EMFILE or ENOMEM */
    uint64_t accept_paused_logged_ms;
    uv_timer_t sweep_timer; /* drops peers stalled in the middle of a frame */
    slot_t *slots;
    uint32_t nslots;
    uint32_t max_conns;          /* max_clients, bounded by RLIMIT_NOFILE */
    uint64_t refusals_logged_ms; /* last refusal log line; 0: none yet */
    uint64_t refusals_unlogged;  /* refusals since that line */

    /* timers.c: the lease manager's timers and the service manager's. */
    uv_timer_t purge_timer;
    uv_timer_t wait_timer;
    uint64_t purge_due; /* what purge_timer is armed for; UINT64_MAX: idle */
    uint64_t wait_due;
    uv_timer_t status_timer;
    uv_timer_t watchdog_timer;
    ad_server_figures_t last_figures;
    bool figures_sent;
};

/* Loop time in milliseconds, the clock every deadline here is kept in. */
static inline uint64_t ad_server__now(ad_server_t *s)
{
    return uv_now(&s->loop);
}

/* ---- listen.c: the socket and its connections ------------------------------ */

/* Writes a printf-style reason into err (NUL-terminated; err may be NULL). */
void ad_server__err(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Starts listening: binds config->socket (creating its parent directory,
 * removing a stale socket) unless an inherited socket is already in
 * s->listen_fd, keeps the spare fd, fits the connection cap to
 * RLIMIT_NOFILE and watches the socket. Returns 0, or -EADDRINUSE, -EEXIST,
 * -ENAMETOOLONG, -errno with a reason in err. Success or not, what it made
 * (and an inherited socket) is undone by ad_server__listen_stop(). */
int ad_server__listen_start(ad_server_t *s, char *err, size_t err_len);

/* Stops accepting: closes the poll handle, unlinks the socket file if it is
 * still the one we bound (never an inherited one), closes the socket and the
 * spare fd. Idempotent. */
void ad_server__listen_stop(ad_server_t *s);

/* Sets s->max_conns: max_clients, bounded by what RLIMIT_NOFILE (its soft
 * limit raised to the hard one first) leaves after a reserve. */
void ad_server__fit_fd_limit(ad_server_t *s);

/* (Re)starts the sweep timer for frame_timeout_ms and hello_timeout_ms, or
 * stops it when both are 0. s->sweep_timer must be initialised. */
void ad_server__sweep_arm(ad_server_t *s);

/* ---- timers.c: the lease manager's timers and the service manager's ------ */

/* Completes queued lease requests that fit now or timed out, then points the
 * purge and wait timers at the next purge and the next deadline. Called
 * after every event that can change them; does nothing while stopping. */
void ad_server__rearm(ad_server_t *s);

/* ad_server__rearm(), with the purge timer re-pointed even when its due time
 * looks unchanged: after a reload changed the decay under it. */
void ad_server__rearm_forced(ad_server_t *s);

/* The figures of the status hook, as they are now. */
void ad_server__figures(ad_server_t *s, ad_server_figures_t *ret);

/* Starts the status tick (once a second) and the watchdog ping when their
 * hooks are set. s->status_timer and s->watchdog_timer must be initialised. */
void ad_server__hooks_timers_start(ad_server_t *s);

/* ---- reload.c: SIGHUP ----------------------------------------------------- */

/* Rebuilds the configuration through the reload hook and applies what can
 * change live; names each restart-only change in the log; on a bad file
 * keeps the old settings. Tells the reloading/reloaded hooks. */
void ad_server__reload(ad_server_t *s);

#endif
