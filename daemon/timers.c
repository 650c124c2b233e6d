/* SPDX-License-Identifier: MIT
 *
 * timers.c -- the server's clocks: the purge timer fires when the oldest
 * dirty extent (or a grace period after a restart) is due, the wait timer at
 * the earliest deadline of a queued lease request; both are re-armed after
 * every event that can change them (ad_server__rearm()). For the service
 * manager, a status tick once a second reports the figures only when they
 * changed, and the watchdog ping runs while the loop does; main.c turns both
 * into sd_notify messages.
 *
 * The bottom of the server's files: it calls into the lease manager and the
 * dispatcher, never into listen.c, reload.c or server.c. Trusts nothing a
 * peer sends (it reads no socket). Loop thread only.
 */
#include <inttypes.h>
#include <string.h>
#include <uv.h>

#include "admin.h"
#include "dispatch.h"
#include "lease.h"
#include "log.h"
#include "server_internal.h"
#include "size.h"
#include "wire.h"

static void on_purge_timer(uv_timer_t *t)
{
    ad_server_t *s = t->data;
    uint64_t now = ad_server__now(s);
    s->purge_due = UINT64_MAX;
    uint64_t punched = ad_leases_purge(s->leases, now);
    if (punched > 0) {
        char size[32];
        ad_log(AD_LOG_DEBUG, "decay: punched %s", arena__size_format(punched, size, sizeof(size)));
    }
    uint64_t next = ad_leases_next_purge_ms(s->leases);
    if (next <= now) {
        /* Still due: punching failed (the range stays dirty). Retry in a
         * second rather than spin on a timer that is always due. */
        ad_log(AD_LOG_WARN, "decay: cannot punch released pages; retrying in 1 s");
        s->purge_due = next;
        (void)uv_timer_start(&s->purge_timer, on_purge_timer, 1000, 0);
    }
    ad_server__rearm(s);
}

void ad_server__rearm_forced(ad_server_t *s)
{
    s->purge_due = 0;
    ad_server__rearm(s);
}

static void on_wait_timer(uv_timer_t *t)
{
    ad_server_t *s = t->data;
    s->wait_due = UINT64_MAX;
    ad_server__rearm(s);
}

static void timer_arm(ad_server_t *s, uv_timer_t *t, uint64_t *armed, uint64_t due, uv_timer_cb cb)
{
    if (due == *armed)
        return;
    *armed = due;
    if (due == UINT64_MAX) {
        (void)uv_timer_stop(t);
        return;
    }
    uint64_t now = ad_server__now(s);
    (void)uv_timer_start(t, cb, due > now ? due - now : 0, 0);
}

void ad_server__rearm(ad_server_t *s)
{
    if (s->stopping)
        return;
    (void)ad_dispatch_serve_waiters(s->dispatch, ad_server__now(s));
    timer_arm(s, &s->purge_timer, &s->purge_due, ad_leases_next_purge_ms(s->leases),
              on_purge_timer);
    timer_arm(s, &s->wait_timer, &s->wait_due, ad_leases_next_deadline(s->leases), on_wait_timer);
}

void ad_server__figures(ad_server_t *s, ad_server_figures_t *ret)
{
    ad_wire_status_t st;
    ad_admin_status(s->admin, ad_server__now(s), &st);
    memset(ret, 0, sizeof(*ret));
    ret->budget = st.budget;
    ret->leased_bytes = st.leased_bytes;
    ret->leases = st.leases;
    ret->clients = st.clients;
}

static void on_status_timer(uv_timer_t *t)
{
    ad_server_t *s = t->data;
    ad_server_figures_t f;
    ad_server__figures(s, &f);
    const ad_server_figures_t *l = &s->last_figures;
    if (s->figures_sent && f.budget == l->budget && f.leased_bytes == l->leased_bytes &&
        f.leases == l->leases && f.clients == l->clients)
        return;
    s->last_figures = f;
    s->figures_sent = true;
    s->hooks.status(s->hooks.ctx, &f);
}

static void on_watchdog_timer(uv_timer_t *t)
{
    ad_server_t *s = t->data;
    s->hooks.watchdog(s->hooks.ctx);
}

void ad_server__hooks_timers_start(ad_server_t *s)
{
    if (s->hooks.status)
        (void)uv_timer_start(&s->status_timer, on_status_timer, 1000, 1000);
    if (s->hooks.watchdog && s->hooks.watchdog_ms > 0)
        (void)uv_timer_start(&s->watchdog_timer, on_watchdog_timer, s->hooks.watchdog_ms,
                             s->hooks.watchdog_ms);
}
