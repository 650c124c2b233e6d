/* SPDX-License-Identifier: MIT
 *
 * server.c -- the server's lifecycle: building the service, starting it,
 * the signals that stop and reload it, and shutdown.
 *
 * One libuv loop runs everything. ad_server_new() takes three steps, each
 * undone in reverse when a later one fails: the service object (loop, lease
 * manager resumed from the fd store, admin, dispatcher, a probe that a pool
 * heap can be made at all), then the handles -- signals and timers, so a
 * SIGTERM that follows the first accepted connection finds its handler --
 * then listening (listen.c). Signals arrive through uv_signal: SIGTERM/SIGINT stop,
 * SIGHUP reloads (reload.c). Stopping closes the socket and every
 * connection without punching, since clients keep their mappings across a
 * daemon restart, and closes every handle so uv_run() returns.
 *
 * The top of the server's files: it calls down into listen.c, timers.c and
 * reload.c (server_internal.h draws the direction), and nothing calls up
 * into it but through server.h. Loop thread only.
 */
#include "server.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "admin.h"
#include "conn.h"
#include "dispatch.h"
#include "heap.h"
#include "lease.h"
#include "log.h"
#include "restart.h"
#include "server_internal.h"
#include "size.h"

/* ---- step 1: the service ---------------------------------------------------- */

/* Makes the lease manager from config and, with an fd store, resumes the
 * pools and the ledger the previous daemon left there (logging what came
 * back). Returns 0, or -errno with a reason in err; s->leases and
 * s->restart may be set either way (server_service_free() frees them). */
static int server_leases_new(ad_server_t *s, const ad_config_t *config, char *err, size_t err_len)
{
    ad_leases_config_t lc;
    ad_config_leases(config, &lc);
    int r = ad_leases_new(&lc, &s->leases);
    if (r < 0) {
        ad_server__err(err, err_len, "cannot create the lease manager: %s", ad_errstr(r));
        return r;
    }
    const ad_server_hooks_t *hooks = &s->hooks;
    if (!hooks->fdstore && hooks->stored_count == 0)
        return 0;
    r = ad_restart_resume(s->leases, hooks->stored, hooks->stored_count, hooks->fdstore, hooks->ctx,
                          uv_now(&s->loop), &s->restart);
    if (r < 0) {
        ad_server__err(err, err_len, "cannot set up the lease ledger: %s", ad_errstr(r));
        return r;
    }
    ad_restart_stats_t rst;
    ad_restart_stats(s->restart, &rst);
    if (rst.pools_resumed > 0 || rst.fds_dropped > 0) {
        char size[32], gone[32];
        ad_log(AD_LOG_INFO,
               "resumed %" PRIu32 " pool(s) from the fd store%s: %" PRIu64
               " lease(s) (%s) wait for their clients for %" PRIu64
               " ms, or as long as their process lives (%s of processes already gone freed);"
               " %" PRIu32 " stored fd(s) dropped",
               rst.pools_resumed, rst.ledger_resumed ? " with the ledger" : " without a ledger",
               rst.orphans, arena__size_format(rst.orphan_bytes, size, sizeof(size)),
               config->restart_grace_ms, arena__size_format(rst.gone_bytes, gone, sizeof(gone)),
               rst.fds_dropped);
    }
    return 0;
}

/* A pool is created per uid at first hello; checks now that this system can
 * make one at all (memfd, sealing, huge pages), rather than failing every
 * client later. The heap is sparse: this costs no memory. Returns 0, or
 * -errno with a reason in err. */
static int server_probe_heap(const ad_config_t *config, char *err, size_t err_len)
{
    ad_heap_config_t probe_cfg = {.size = config->heap_size,
                                  .small_limit = config->small_lease_limit,
                                  .decay_ms = config->decay_ms,
                                  .hugetlb = config->hugetlb,
                                  .name = "arenad-probe"};
    ad_heap_t *probe = NULL;
    int r = ad_heap_new(&probe_cfg, &probe);
    if (r < 0) {
        ad_server__err(err, err_len, "cannot create a pool heap of %" PRIu64 " bytes%s: %s",
                       config->heap_size, config->hugetlb ? " (hugetlb)" : "", ad_errstr(r));
        return r;
    }
    ad_heap_free(probe);
    return 0;
}

/* Frees what server_service_new() made: runs the loop once more so the close
 * callbacks of every handle already closed run (connections release their
 * leases there), closes the loop, then frees the dispatcher, admin, lease
 * manager and ledger, and s. */
static void server_service_free(ad_server_t *s)
{
    if (s->loop_ready) {
        (void)uv_run(&s->loop, UV_RUN_DEFAULT);
        (void)uv_loop_close(&s->loop);
    }
    ad_dispatch_free(s->dispatch);
    ad_admin_free(s->admin);
    ad_leases_free(s->leases);
    ad_restart_free(s->restart);
    free(s);
}

/* Step 1: the service object -- config and hooks copied, the loop, the lease
 * manager (resumed from the fd store), admin and the dispatcher, and the
 * pool heap probe. Nothing listens and no handle exists yet; listen_fd and
 * reserve_fd are -1. Returns 0 and *ret_server, or -ENOMEM, -errno with a
 * reason in err; nothing is left behind on failure. */
static int server_service_new(const ad_config_t *config, const ad_server_hooks_t *hooks, char *err,
                              size_t err_len, ad_server_t **ret_server)
{
    ad_server_t *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->config = *config;
    if (hooks)
        s->hooks = *hooks;
    s->listen_fd = -1;
    s->reserve_fd = -1;
    s->purge_due = UINT64_MAX;
    s->wait_due = UINT64_MAX;
    int r = uv_loop_init(&s->loop);
    if (r < 0) {
        ad_server__err(err, err_len, "uv_loop_init: %s", uv_strerror(r));
        free(s);
        return r;
    }
    s->loop_ready = true;
    r = server_leases_new(s, config, err, err_len);
    if (r < 0)
        goto fail;
    r = ad_admin_new(s->leases, config->socket, uv_now(&s->loop), &s->admin);
    if (r < 0) {
        ad_server__err(err, err_len, "out of memory");
        goto fail;
    }
    ad_admin_set_group(s->admin, config->has_admin_group, config->admin_gid);
    ad_dispatch_config_t dc = {.max_frame = config->max_frame};
    r = ad_dispatch_new(&dc, s->leases, s->admin, &s->dispatch);
    if (r < 0) {
        ad_server__err(err, err_len, "out of memory");
        goto fail;
    }
    r = server_probe_heap(config, err, err_len);
    if (r < 0)
        goto fail;
    *ret_server = s;
    return 0;

fail:
    server_service_free(s);
    return r;
}

/* ---- step 2: the handles ------------------------------------------------------ */

static void on_stop_signal(uv_signal_t *handle, int signum);
static void on_hup(uv_signal_t *handle, int signum);

/* Closes every signal and timer handle (their callbacks never run again);
 * the loop finishes closing them. Idempotent. */
static void server_handles_close(ad_server_t *s)
{
    if (!s->handles_ready)
        return;
    uv_close((uv_handle_t *)&s->sig_term, NULL);
    uv_close((uv_handle_t *)&s->sig_int, NULL);
    uv_close((uv_handle_t *)&s->sig_hup, NULL);
    uv_close((uv_handle_t *)&s->purge_timer, NULL);
    uv_close((uv_handle_t *)&s->wait_timer, NULL);
    uv_close((uv_handle_t *)&s->sweep_timer, NULL);
    uv_close((uv_handle_t *)&s->status_timer, NULL);
    uv_close((uv_handle_t *)&s->watchdog_timer, NULL);
    uv_close((uv_handle_t *)&s->accept_timer, NULL);
    s->handles_ready = false;
}

/* Step 2: the signal handlers (SIGTERM, SIGINT, SIGHUP) and every timer,
 * with the sweep, status and watchdog timers started (the purge and wait
 * timers start at the first re-arm). Returns 0, or a libuv error with a
 * reason in err; on failure the handles made are closed again. */
static int server_handles_new(ad_server_t *s, char *err, size_t err_len)
{
    (void)uv_signal_init(&s->loop, &s->sig_term);
    (void)uv_signal_init(&s->loop, &s->sig_int);
    (void)uv_signal_init(&s->loop, &s->sig_hup);
    (void)uv_timer_init(&s->loop, &s->purge_timer);
    (void)uv_timer_init(&s->loop, &s->wait_timer);
    (void)uv_timer_init(&s->loop, &s->sweep_timer);
    (void)uv_timer_init(&s->loop, &s->status_timer);
    (void)uv_timer_init(&s->loop, &s->watchdog_timer);
    (void)uv_timer_init(&s->loop, &s->accept_timer);
    s->sig_term.data = s->sig_int.data = s->sig_hup.data = s;
    s->purge_timer.data = s->wait_timer.data = s->sweep_timer.data = s;
    s->status_timer.data = s->watchdog_timer.data = s->accept_timer.data = s;
    s->handles_ready = true;
    int r;
    if ((r = uv_signal_start(&s->sig_term, on_stop_signal, SIGTERM)) < 0 ||
        (r = uv_signal_start(&s->sig_int, on_stop_signal, SIGINT)) < 0 ||
        (r = uv_signal_start(&s->sig_hup, on_hup, SIGHUP)) < 0) {
        ad_server__err(err, err_len, "uv_signal_start: %s", uv_strerror(r));
        server_handles_close(s);
        return r;
    }
    ad_server__sweep_arm(s);
    ad_server__hooks_timers_start(s);
    return 0;
}

/* ---- signals and shutdown ------------------------------------------------------ */

static void server_stop(ad_server_t *s)
{
    if (s->stopping)
        return;
    s->stopping = true;
    ad_server__listen_stop(s);
    /* Clients keep their mappings across a daemon restart: their leases'
     * pages must survive this shutdown, so sessions end without punching. */
    if (s->dispatch)
        ad_dispatch_set_stopping(s->dispatch);
    for (slot_t *slot = s->slots; slot; slot = slot->next)
        ad_conn_close(slot->conn, 0);
    server_handles_close(s);
}

static void on_stop_signal(uv_signal_t *handle, int signum)
{
    ad_server_t *s = handle->data;
    ad_log(AD_LOG_INFO, "%s: shutting down (%" PRIu32 " client(s) connected)", ad_sigstr(signum),
           s->nslots);
    if (s->hooks.stopping)
        s->hooks.stopping(s->hooks.ctx);
    server_stop(s);
}

static void on_hup(uv_signal_t *handle, int signum)
{
    (void)signum;
    ad_server__reload(handle->data);
}

/* ---- lifecycle ------------------------------------------------------------ */

int ad_server_new(const ad_config_t *config, const ad_server_hooks_t *hooks, char *err,
                  size_t err_len, ad_server_t **ret_server)
{
    int inherited_fd = hooks && hooks->has_listen_fd ? hooks->listen_fd : -1;
    ad_server_t *s = NULL;
    int r = -EINVAL;
    if (!config || !ret_server)
        goto fail_inherited;
    r = server_service_new(config, hooks, err, err_len, &s);
    if (r < 0)
        goto fail_inherited;
    /* Owned by the server from here: ad_server__listen_stop() closes it. */
    s->listen_fd = inherited_fd;
    s->inherited = inherited_fd >= 0;
    /* The handles before the socket: a peer that finds the socket accepting
     * may send SIGTERM at once, and it must find the handler in place. */
    r = server_handles_new(s, err, err_len);
    if (r < 0)
        goto fail_service;
    r = ad_server__listen_start(s, err, err_len);
    if (r < 0)
        goto fail_handles;
    *ret_server = s;
    return 0;

fail_handles:
    server_handles_close(s);
fail_service:
    ad_server__listen_stop(s);
    server_service_free(s);
    return r;
fail_inherited:
    if (inherited_fd >= 0)
        (void)close(inherited_fd);
    return r;
}

int ad_server_run(ad_server_t *s)
{
    char size[32];
    ad_log(AD_LOG_INFO, "%s %s (budget %s, max_clients %" PRIu32 ")",
           s->inherited ? "serving the inherited socket" : "listening on",
           s->config.socket[0] ? s->config.socket : "(unnamed)",
           arena__size_format(s->config.budget, size, sizeof(size)), s->max_conns);
    int r = uv_run(&s->loop, UV_RUN_DEFAULT);
    /* uv_run returns once stop closed every handle. */
    if (!s->stopping) {
        ad_log(AD_LOG_ERROR, "event loop ended unexpectedly (%d)", r);
        return -EIO;
    }
    ad_log(AD_LOG_INFO, "stopped");
    return 0;
}

void ad_server_free(ad_server_t *s)
{
    if (!s)
        return;
    server_stop(s);
    server_service_free(s);
}
