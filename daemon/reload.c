/* SPDX-License-Identifier: MIT
 *
 * reload.c -- SIGHUP: the configuration is built again (defaults, file,
 * flags, through the reload hook), and what can change live applies at
 * once: budget, decay, grace period, limits, timeouts, log level, admin
 * group, fair-share rules, and the socket file's mode and group. What the
 * running daemon built at start from a setting (the socket, the pools'
 * heaps, the frame decoder) cannot follow it; config.c's ad_config_reload()
 * says which changed, and each gets one log line naming it, instead of
 * being dropped in silence. A file with an error changes nothing.
 *
 * The lease manager's settings come from ad_config_leases(), the same
 * mapping start-up uses, so the two cannot drift apart. Calls go down, into
 * listen.c (connection cap, sweep) and timers.c (re-arming, figures);
 * server.c calls in from its SIGHUP handler. Loop thread only.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin.h"
#include "config.h"
#include "lease.h"
#include "log.h"
#include "server_internal.h"
#include "size.h"

/* Names every setting of the reload that the running daemon cannot apply,
 * one line each, instead of dropping it silently: they take effect when the
 * daemon next starts. */
static void reload_report_restart_only(const ad_server_t *s, const ad_config_t *next,
                                       unsigned restart)
{
    for (unsigned bit = 1; restart != 0; bit <<= 1) {
        if (!(restart & bit))
            continue;
        restart &= ~bit;
        const char *key = ad_config_restart_key(bit);
        if (bit == AD_CONFIG_RESTART_SOCKET && s->inherited)
            ad_log(AD_LOG_WARN,
                   "reload: socket changed to %s; the inherited socket stays (its socket unit "
                   "owns the path)",
                   next->socket);
        else if (bit == AD_CONFIG_RESTART_SOCKET)
            ad_log(AD_LOG_WARN, "reload: socket changed to %s; takes effect at the next restart",
                   next->socket);
        else if (bit == AD_CONFIG_RESTART_HEAP_SIZE && !(next->set & AD_CONFIG_SET_HEAP_SIZE))
            ad_log(AD_LOG_WARN,
                   "reload: heap_size (2 x budget) changed; takes effect at the next restart");
        else
            ad_log(AD_LOG_WARN, "reload: %s changed; takes effect at the next restart",
                   key ? key : "?");
    }
}

/* Applies socket_mode and socket_group to the socket file the daemon bound;
 * each holds only once chmod or chown succeeded. An inherited socket is its
 * socket unit's (SocketMode=, SocketGroup=), so it is left alone and said so. */
static void reload_socket_file(ad_server_t *s, const ad_config_t *next)
{
    ad_config_t *cur = &s->config;
    bool mode = next->socket_mode != cur->socket_mode;
    bool group = next->has_socket_group != cur->has_socket_group ||
                 (next->has_socket_group && next->socket_gid != cur->socket_gid);
    if (!mode && !group)
        return;
    if (s->listen_fd < 0)
        return; /* stopping: there is no socket file to change */
    if (s->inherited) {
        ad_log(AD_LOG_WARN,
               "reload: socket_mode or socket_group changed; the inherited socket keeps its own "
               "(its socket unit sets them)");
        return;
    }
    if (mode) {
        if (chmod(cur->socket, (mode_t)next->socket_mode) == 0)
            cur->socket_mode = next->socket_mode;
        else
            ad_log(AD_LOG_WARN, "reload: cannot set the mode of %s to %04o: %s", cur->socket,
                   (unsigned)next->socket_mode, ad_errstr(-errno));
    }
    if (group && !next->has_socket_group) {
        ad_log(AD_LOG_WARN,
               "reload: socket_group removed; %s keeps group %lu until the next restart",
               cur->socket, (unsigned long)cur->socket_gid);
    } else if (group) {
        if (chown(cur->socket, (uid_t)-1, next->socket_gid) == 0) {
            cur->has_socket_group = true;
            cur->socket_gid = next->socket_gid;
        } else {
            ad_log(AD_LOG_WARN, "reload: cannot give %s to group %lu: %s", cur->socket,
                   (unsigned long)next->socket_gid, ad_errstr(-errno));
        }
    }
}

void ad_server__reload(ad_server_t *s)
{
    if (!s->hooks.reload) {
        ad_log(AD_LOG_INFO, "SIGHUP: no configuration to reload");
        return;
    }
    ad_config_t next;
    char err[AD_CONFIG_ERR_MAX] = "";
    ad_server_figures_t f;
    if (s->hooks.reloading)
        s->hooks.reloading(s->hooks.ctx);
    int r = s->hooks.reload(s->hooks.ctx, &next, err, sizeof(err));
    if (r < 0) {
        ad_log(AD_LOG_ERROR, "reload failed, keeping the old configuration: %s", err);
        if (s->hooks.reloaded) {
            ad_server__figures(s, &f);
            s->hooks.reloaded(s->hooks.ctx, r, &f);
        }
        return;
    }
    ad_config_t *cur = &s->config;
    reload_socket_file(s, &next);
    uint32_t max_clients = cur->max_clients;
    uint64_t frame_timeout_ms = cur->frame_timeout_ms, hello_timeout_ms = cur->hello_timeout_ms;
    reload_report_restart_only(s, &next, ad_config_reload(cur, &next));
    if (cur->max_clients != max_clients)
        ad_server__fit_fd_limit(s);
    if (cur->frame_timeout_ms != frame_timeout_ms || cur->hello_timeout_ms != hello_timeout_ms)
        ad_server__sweep_arm(s);
    ad_log_set_level(cur->log_level);
    ad_admin_set_group(s->admin, cur->has_admin_group, cur->admin_gid);
    ad_leases_config_t lc;
    ad_config_leases(cur, &lc);
    ad_leases_reconfigure(s->leases, &lc);
    char size[32];
    ad_log(AD_LOG_INFO,
           "configuration reloaded: budget %s, decay %" PRIu64 " ms, max_clients %" PRIu32
           ", max_leases_per_client %" PRIu32 ", %zu fair-share rule(s), restart_grace %" PRIu64
           " ms, parked_decay %" PRIu64 " ms, log_level %s",
           arena__size_format(cur->budget, size, sizeof(size)), cur->decay_ms, s->max_conns,
           cur->max_leases_per_client, cur->fair_count, cur->restart_grace_ms, cur->parked_decay_ms,
           ad_log_level_name(cur->log_level));
    /* Decay and budget changes move the timers and may admit waiters. */
    ad_server__rearm_forced(s);
    if (s->hooks.reloaded) {
        ad_server__figures(s, &f);
        s->hooks.reloaded(s->hooks.ctx, 0, &f);
    }
}
