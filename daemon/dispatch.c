/* SPDX-License-Identifier: MIT
 *
 * dispatch.c -- requests in, replies out: the protocol's state machine.
 *
 * Each connection has a session. Its first frame must be Hello with protocol
 * version 1; anything else gets an error and the connection is closed. After
 * Hello the session is a lease-manager client: lease and release requests go
 * to lease.c, share, attach and unshare requests to share.c (an attach reply,
 * or a lease with memory of its own, carries that memfd), admin requests to
 * admin.c, and every reply echoes the request id. A refused attach is logged
 * with its reason; share.c rate-limits them per client, so the log is too. The rules on bad input
 * (DESIGN.md section 7): a frame that does not decode, or is too long, is answered with an error
 * and the connection is closed, since the byte stream can no longer be trusted; a well-formed
 * envelope with no or an unknown body is answered with ERROR_PROTOCOL and the
 * connection stays open. Either way one line is logged and the protocol error
 * counter moves; other clients never notice.
 *
 * When the daemon stops, sessions end without punching their leases: a
 * client that still maps a lease keeps its data (DESIGN.md section 7).
 *
 * A lease request that does not fit and allows waiting is queued in the lease
 * manager with the session as its owner; the session's client is removed from
 * the manager before the session is freed, which drops its waiters, so the
 * owner pointer never dangles. Loop thread only.
 */
#include "dispatch.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "size.h"
#include "wire.h"

#ifndef AD_VERSION
#define AD_VERSION "0.0.0"
#endif

#define DISPATCH_MAX_GROUPS 4096

struct ad_dispatch {
    ad_dispatch_config_t config;
    bool stopping;
    ad_leases_t *leases;
    ad_admin_t *admin;
};

struct ad_session {
    ad_dispatch_t *d;
    ad_conn_t *conn;
    uint64_t client_id; /* 0 until Hello */
    pid_t pid;
    uid_t uid;
    gid_t gid;
    ad_admin_caller_t caller;
    char name[AD_WIRE_NAME_MAX + 1];
    bool notifications; /* the client said it takes notifications */
};

static void dispatch_on_note(void *ctx, void *client_data, const ad_leases_note_t *note);

int ad_dispatch_new(const ad_dispatch_config_t *config, ad_leases_t *leases, ad_admin_t *admin,
                    ad_dispatch_t **ret_dispatch)
{
    if (!config || !leases || !admin || !ret_dispatch)
        return -EINVAL;
    ad_dispatch_t *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->config = *config;
    d->leases = leases;
    d->admin = admin;
    ad_leases_set_notify(leases, dispatch_on_note, d);
    *ret_dispatch = d;
    return 0;
}

void ad_dispatch_free(ad_dispatch_t *d)
{
    if (d)
        ad_leases_set_notify(d->leases, NULL, NULL);
    free(d);
}

/* The peer's supplementary groups (SO_PEERGROUPS), for the admin-group rule.
 * Returns the malloc'd list and its length, or NULL and 0. */
static gid_t *session_peer_groups(int fd, size_t *ret_n)
{
    socklen_t len = 64 * sizeof(gid_t);
    gid_t *groups = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        gid_t *g = realloc(groups, len ? len : sizeof(gid_t));
        if (!g)
            break;
        groups = g;
        socklen_t got = len;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &got) == 0) {
            *ret_n = got / sizeof(gid_t);
            return groups;
        }
        if (errno != ERANGE || got <= len || got > DISPATCH_MAX_GROUPS * sizeof(gid_t))
            break;
        len = got;
    }
    free(groups);
    *ret_n = 0;
    return NULL;
}

int ad_session_new(ad_dispatch_t *d, ad_conn_t *conn, ad_session_t **ret_session)
{
    if (!d || !conn || !ret_session)
        return -EINVAL;
    ad_session_t *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    const ad_conn_peer_t *peer = ad_conn_peer(conn);
    s->d = d;
    s->conn = conn;
    s->pid = peer->pid;
    s->uid = peer->uid;
    s->gid = peer->gid;
    size_t ngroups = 0;
    gid_t *groups = session_peer_groups(ad_conn_fd(conn), &ngroups);
    s->caller.uid = peer->uid;
    s->caller.privileged = ad_admin_is_privileged(d->admin, peer->uid, peer->gid, groups, ngroups);
    free(groups);
    (void)snprintf(s->name, sizeof(s->name), "?");
    *ret_session = s;
    return 0;
}

static const char *reason_text(int reason)
{
    switch (reason) {
    case 0:
        return "disconnected";
    case -ENOBUFS:
        return "dropped: it does not read its replies";
    case -ECONNRESET:
        return "disconnected with notifications unread";
    default:
        return ad_errstr(reason);
    }
}

void ad_session_free(ad_session_t *s, int reason, uint64_t now_ms)
{
    if (!s)
        return;
    if (s->client_id != 0) {
        ad_client_view_t v;
        uint64_t bytes = 0;
        if (ad_leases_client_view(s->d->leases, s->client_id, &v) == 0)
            bytes = v.leased_bytes;
        int released = ad_leases_client_free(s->d->leases, s->client_id, now_ms, !s->d->stopping);
        char size[32];
        ad_log(reason == 0 || reason == -ECONNRESET ? AD_LOG_INFO : AD_LOG_WARN,
               "client %" PRIu64 " pid %ld (%s) %s; released %d lease(s), %s%s", s->client_id,
               (long)s->pid, s->name, s->d->stopping ? "closed by shutdown" : reason_text(reason),
               released < 0 ? 0 : released, arena__size_format(bytes, size, sizeof(size)),
               s->d->stopping ? " (pages left to the client)" : "");
    } else if (reason != 0) {
        ad_log(AD_LOG_INFO, "connection from pid %ld closed before hello: %s", (long)s->pid,
               reason_text(reason));
    }
    free(s);
}

/* ---- replies -------------------------------------------------------------- */

static void session_send_fds(ad_session_t *s, const ad_wire_reply_t *reply, const int *fds,
                             size_t nfds);

static void session_send(ad_session_t *s, const ad_wire_reply_t *reply, int fd)
{
    session_send_fds(s, reply, &fd, fd >= 0 ? 1 : 0);
}

static void session_send_fds(ad_session_t *s, const ad_wire_reply_t *reply, const int *fds,
                             size_t nfds)
{
    uint8_t *frame;
    size_t len;
    int r = ad_wire_encode(reply, &frame, &len);
    if (r < 0) {
        ad_log(AD_LOG_ERROR, "client pid %ld (%s): cannot encode a reply: %s; closing",
               (long)s->pid, s->name, ad_errstr(r));
        ad_conn_close(s->conn, r);
        return;
    }
    r = ad_conn_send_fds(s->conn, frame, len, fds, nfds);
    if (r == -ENOBUFS)
        ad_log(AD_LOG_WARN,
               "client pid %ld (%s) does not read its replies (queue full); disconnecting",
               (long)s->pid, s->name);
    else if (r < 0 && r != -EPIPE)
        ad_log(AD_LOG_WARN, "client pid %ld (%s): cannot queue a reply: %s", (long)s->pid, s->name,
               ad_errstr(r));
}

static void session_error(ad_session_t *s, uint64_t request_id, ad_wire_error_t code,
                          const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void session_error(ad_session_t *s, uint64_t request_id, ad_wire_error_t code,
                          const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    /* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): false positive */
    (void)vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    ad_wire_reply_t reply = {.request_id = request_id, .type = AD_WIRE_REPLY_ERROR};
    reply.u.error.code = code;
    reply.u.error.message = message;
    session_send(s, &reply, -1);
}

/* A protocol violation: count it, log it, answer it and, when the byte stream
 * cannot be trusted any more, close after the answer is written. */
static void session_protocol_error(ad_session_t *s, uint64_t request_id, ad_wire_error_t code,
                                   bool close, const char *what)
{
    ad_admin_counters(s->d->admin)->protocol_errors_total++;
    ad_log(AD_LOG_WARN, "client pid %ld (%s): %s%s", (long)s->pid, s->name, what,
           close ? "; closing the connection" : "");
    session_error(s, request_id, code, "%s", what);
    if (close)
        ad_conn_shutdown(s->conn);
}

/* ---- requests ------------------------------------------------------------- */

static void on_hello(ad_session_t *s, const ad_wire_request_t *req, int pool_fd, uint64_t now_ms)
{
    if (pool_fd >= 0 && (s->client_id != 0 || !req->u.hello.reattach ||
                         req->u.hello.protocol_version != AD_WIRE_PROTOCOL)) {
        (void)close(pool_fd); /* only a first, re-registering hello keeps it */
        pool_fd = -1;
        ad_log(AD_LOG_INFO, "client pid %ld (%s) sent an fd with a hello that takes none",
               (long)s->pid, s->name);
    }
    if (s->client_id != 0) {
        session_protocol_error(s, req->request_id, AD_WIRE_ERROR_PROTOCOL, false,
                               "second hello on one connection");
        return;
    }
    (void)snprintf(s->name, sizeof(s->name), "%s", req->u.hello.name[0] ? req->u.hello.name : "?");
    if (req->u.hello.protocol_version != AD_WIRE_PROTOCOL) {
        char what[128];
        (void)snprintf(what, sizeof(what), "protocol version %u not supported (daemon speaks %u)",
                       req->u.hello.protocol_version, AD_WIRE_PROTOCOL);
        session_protocol_error(s, req->request_id, AD_WIRE_ERROR_VERSION, true, what);
        return;
    }
    uint64_t client_id;
    int r;
    if (req->u.hello.reattach) {
        if (pool_fd < 0) {
            session_protocol_error(s, req->request_id, AD_WIRE_ERROR_PROTOCOL, true,
                                   "re-registering hello without the pool fd");
            return;
        }
        r = ad_leases_client_reattach(s->d->leases, s->pid, s->uid, s->gid, s->name, pool_fd,
                                      now_ms, &client_id);
        if (r == -EPERM || r == -EINVAL) {
            ad_admin_counters(s->d->admin)->protocol_errors_total++;
            ad_log(AD_LOG_WARN, "client pid %ld (%s) uid %lu handed back %s; closing", (long)s->pid,
                   s->name, (unsigned long)s->uid,
                   r == -EPERM ? "the pool of another uid" : "an fd that is no arenad pool");
            session_error(s, req->request_id,
                          r == -EPERM ? AD_WIRE_ERROR_PERMISSION : AD_WIRE_ERROR_INVALID_ARGUMENT,
                          "%s",
                          r == -EPERM ? "that pool belongs to another user"
                                      : "that fd is not a sealed arenad pool memfd");
            ad_conn_shutdown(s->conn);
            return;
        }
    } else {
        r = ad_leases_client_new(s->d->leases, s->pid, s->uid, s->gid, s->name, now_ms, &client_id);
    }
    if (r < 0) {
        ad_log(AD_LOG_ERROR, "client pid %ld (%s): cannot create the pool of uid %lu: %s",
               (long)s->pid, s->name, (unsigned long)s->uid, ad_errstr(r));
        session_error(s, req->request_id, AD_WIRE_ERROR_INTERNAL, "cannot create a pool: %s",
                      ad_errstr(r));
        ad_conn_shutdown(s->conn);
        return;
    }
    ad_pool_info_t pool;
    (void)ad_leases_pool_info(s->d->leases, client_id, &pool);
    int control_fd = -1;
    uint32_t control_slots = 0;
    (void)ad_leases_control_info(s->d->leases, client_id, &control_fd, &control_slots);
    (void)ad_leases_client_set_data(s->d->leases, client_id, s);
    s->notifications = req->u.hello.notifications;
    ad_leases_stats_t st;
    ad_leases_stats(s->d->leases, &st);
    s->client_id = client_id;
    ad_log(AD_LOG_INFO, "client %" PRIu64 " pid %ld (%s) uid %lu connected", client_id,
           (long)s->pid, s->name, (unsigned long)s->uid);
    ad_wire_reply_t reply = {.request_id = req->request_id, .type = AD_WIRE_REPLY_HELLO};
    reply.u.hello.client_id = client_id;
    reply.u.hello.heap_size = pool.heap_size;
    reply.u.hello.granule = pool.granule;
    reply.u.hello.budget = st.budget;
    reply.u.hello.hugetlb = pool.hugetlb;
    reply.u.hello.daemon_version = AD_VERSION;
    reply.u.hello.control_slots = control_slots;
    reply.u.hello.grace_ms = ad_leases_grace_left(s->d->leases, client_id, now_ms);
    if (req->u.hello.reattach)
        ad_log(AD_LOG_INFO,
               "client %" PRIu64 " pid %ld (%s) re-registers; its pool takes claims for %" PRIu64
               " ms",
               client_id, (long)s->pid, s->name, reply.u.hello.grace_ms);
    const int fds[2] = {pool.fd, control_fd};
    session_send_fds(s, &reply, fds, 2);
    /* The frame holds its own copy now; the daemon needs only the mapping. */
    ad_leases_control_close_fd(s->d->leases, client_id);
}

/* The wire code of a refused claim (ad_leases_claim()). */
static uint32_t claim_error(int r)
{
    switch (r) {
    case -EINVAL:
        return AD_WIRE_ERROR_INVALID_ARGUMENT;
    case -EDQUOT:
        return AD_WIRE_ERROR_LIMIT;
    case -ENOMEM:
        return AD_WIRE_ERROR_INTERNAL;
    default: /* -ESTALE, -EBUSY */
        return AD_WIRE_ERROR_CONFLICT;
    }
}

/* Claims of a re-registering client: one result per claim, in order. */
static void on_claim(ad_session_t *s, const ad_wire_request_t *req, uint64_t now_ms)
{
    size_t n = req->u.claim.count;
    ad_wire_claim_result_t *out = n ? calloc(n, sizeof(*out)) : NULL;
    if (n && !out) {
        session_error(s, req->request_id, AD_WIRE_ERROR_INTERNAL, "out of memory");
        return;
    }
    size_t refused = 0;
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const ad_wire_claim_t *c = &req->u.claim.items[i];
        ad_lease_grant_t g;
        int r = ad_leases_claim(s->d->leases, s->client_id, c->offset, c->size, now_ms, &g);
        out[i].claimed_id = c->lease_id;
        if (r < 0) {
            out[i].error = claim_error(r);
            refused++;
            continue;
        }
        out[i].lease_id = g.lease_id;
        out[i].slot = g.slot;
        out[i].generation = g.generation;
        bytes += g.size;
    }
    char size[32];
    ad_log(refused ? AD_LOG_WARN : AD_LOG_INFO,
           "client %" PRIu64 " pid %ld (%s) claimed %zu lease(s) back (%s), %zu refused",
           s->client_id, (long)s->pid, s->name, n - refused,
           arena__size_format(bytes, size, sizeof(size)), refused);
    ad_wire_reply_t reply = {.request_id = req->request_id, .type = AD_WIRE_REPLY_CLAIM};
    reply.u.claim.items = out;
    reply.u.claim.count = n;
    session_send(s, &reply, -1);
    free(out);
}

static void send_grant(ad_session_t *s, uint64_t request_id, const ad_lease_grant_t *g)
{
    ad_wire_reply_t reply = {.request_id = request_id, .type = AD_WIRE_REPLY_LEASE};
    reply.u.lease.lease_id = g->lease_id;
    reply.u.lease.offset = g->offset;
    reply.u.lease.size = g->size;
    reply.u.lease.zeroed = g->zeroed;
    reply.u.lease.slot = g->slot;
    reply.u.lease.generation = g->generation;
    session_send(s, &reply, -1);
    ad_log(AD_LOG_DEBUG,
           "client %" PRIu64 " pid %ld (%s): lease %" PRIu64 " of %" PRIu64 " bytes at %" PRIu64,
           s->client_id, (long)s->pid, s->name, g->lease_id, g->size, g->offset);
}

/* Answers a failed grant (r < 0 from ad_leases_grant or a waiter). */
static void send_refusal(ad_session_t *s, uint64_t request_id, uint64_t size, int r)
{
    char a[32], b[32], why[256];
    ad_leases_stats_t st;
    ad_leases_stats(s->d->leases, &st);
    switch (r) {
    case -EINVAL:
        session_error(s, request_id, AD_WIRE_ERROR_INVALID_ARGUMENT, "a lease of 0 bytes");
        return;
    case -E2BIG:
        if (ad_leases_limit_reason(s->d->leases, s->client_id, size, why, sizeof(why)) == 0) {
            session_error(s, request_id, AD_WIRE_ERROR_TOO_LARGE, "%s", why);
            return;
        }
        session_error(s, request_id, AD_WIRE_ERROR_TOO_LARGE,
                      "%" PRIu64 " bytes is more than the budget (%s) or the heap (%s) can hold",
                      size, arena__size_format(st.budget, a, sizeof(a)),
                      arena__size_format(st.heap_size, b, sizeof(b)));
        return;
    case -EDQUOT:
        if (ad_leases_limit_reason(s->d->leases, s->client_id, size, why, sizeof(why)) != 0)
            (void)snprintf(why, sizeof(why), "a limit of this client or its uid");
        ad_log(AD_LOG_INFO, "client %" PRIu64 " pid %ld (%s): refused %s: %s", s->client_id,
               (long)s->pid, s->name, arena__size_format(size, a, sizeof(a)), why);
        session_error(s, request_id, AD_WIRE_ERROR_LIMIT, "%s", why);
        return;
    case -ENOMEM:
    case -ETIMEDOUT: {
        char holders[384];
        (void)ad_leases_describe_holders(s->d->leases, holders, sizeof(holders));
        ad_log(AD_LOG_INFO, "client %" PRIu64 " pid %ld (%s): no memory for %s: %s", s->client_id,
               (long)s->pid, s->name, arena__size_format(size, a, sizeof(a)), holders);
        session_error(s, request_id,
                      r == -ENOMEM ? AD_WIRE_ERROR_NO_MEMORY : AD_WIRE_ERROR_TIMED_OUT,
                      "no memory for %s%s: %s", arena__size_format(size, a, sizeof(a)),
                      r == -ETIMEDOUT ? " before the deadline" : "", holders);
        return;
    }
    default:
        session_error(s, request_id, AD_WIRE_ERROR_INTERNAL, "lease failed: %s", ad_errstr(r));
        return;
    }
}

/* Lease requests queued for memory count as in flight on the connection
 * (max_requests_in_flight), like replies it has not read yet. */
static void session_sync_pending(ad_session_t *s)
{
    ad_client_view_t v;
    if (ad_leases_client_view(s->d->leases, s->client_id, &v) == 0)
        ad_conn_set_pending(s->conn, v.waiting);
}

/* Sends a lease with memory of its own (the memfd fd, consumed). */
static void send_grant_own(ad_session_t *s, uint64_t request_id, const ad_lease_grant_t *g, int fd)
{
    ad_wire_reply_t reply = {.request_id = request_id, .type = AD_WIRE_REPLY_LEASE};
    reply.u.lease.lease_id = g->lease_id;
    reply.u.lease.size = g->size;
    reply.u.lease.zeroed = g->zeroed;
    reply.u.lease.slot = g->slot;
    reply.u.lease.generation = g->generation;
    reply.u.lease.own_memory = true;
    session_send(s, &reply, fd);
    (void)close(fd);
    ad_log(AD_LOG_DEBUG,
           "client %" PRIu64 " pid %ld (%s): lease %" PRIu64 " of %" PRIu64 " bytes, own memfd",
           s->client_id, (long)s->pid, s->name, g->lease_id, g->size);
}

/* A lease with memory of its own: no queue, refused at once when short. */
static void on_lease_own(ad_session_t *s, const ad_wire_request_t *req, uint64_t now_ms)
{
    ad_lease_grant_t g;
    int fd = -1;
    int r = ad_leases_grant_own(s->d->leases, s->client_id, req->u.lease.size, now_ms, &g, &fd);
    if (r < 0 && r != -EINVAL && r != -E2BIG && r != -EDQUOT && r != -ENOMEM) {
        ad_log(AD_LOG_ERROR, "client %" PRIu64 " pid %ld (%s): cannot make a lease memfd: %s",
               s->client_id, (long)s->pid, s->name, ad_errstr(r));
        session_error(s, req->request_id, AD_WIRE_ERROR_INTERNAL,
                      "cannot make a memfd for the lease: %s", ad_errstr(r));
        return;
    }
    if (r < 0) {
        send_refusal(s, req->request_id, req->u.lease.size, r);
        return;
    }
    send_grant_own(s, req->request_id, &g, fd);
}

static void on_lease(ad_session_t *s, const ad_wire_request_t *req, uint64_t now_ms)
{
    ad_lease_grant_t grant;
    uint64_t size = req->u.lease.size;
    if (req->u.lease.flags & ~AD_WIRE_LEASE_OWN_MEMORY) {
        session_error(s, req->request_id, AD_WIRE_ERROR_INVALID_ARGUMENT,
                      "unknown lease flags 0x%x", (unsigned)req->u.lease.flags);
        return;
    }
    if (req->u.lease.flags & AD_WIRE_LEASE_OWN_MEMORY) {
        on_lease_own(s, req, now_ms);
        return;
    }
    if (ad_leases_pool_paused(s->d->leases, s->client_id, now_ms)) {
        /* Its pool came back from a client with no ledger and grants
         * nothing until its grace period ends: memory of its own instead,
         * which cannot be anybody's lease, so nobody waits for the grace
         * period. Short of budget, the request queues as usual. */
        ad_lease_grant_t g;
        int fd = -1;
        if (ad_leases_grant_own(s->d->leases, s->client_id, size, now_ms, &g, &fd) == 0) {
            send_grant_own(s, req->request_id, &g, fd);
            return;
        }
    }
    uint64_t deadline = 0;
    if (req->u.lease.wait_ms < 0)
        deadline = UINT64_MAX;
    else if (req->u.lease.wait_ms > 0)
        deadline = now_ms + (uint64_t)req->u.lease.wait_ms;
    int r = ad_leases_request(s->d->leases, s->client_id, size, deadline, s, req->request_id,
                              now_ms, &grant);
    if (r == 0) {
        send_grant(s, req->request_id, &grant);
        return;
    }
    if (r == 1) {
        session_sync_pending(s);
        ad_log(AD_LOG_DEBUG, "client %" PRIu64 " pid %ld (%s): %" PRIu64 " bytes queued for %d ms",
               s->client_id, (long)s->pid, s->name, size, req->u.lease.wait_ms);
        return;
    }
    if (r == -EDQUOT && deadline > now_ms) {
        ad_client_view_t v;
        if (ad_leases_client_view(s->d->leases, s->client_id, &v) == 0 &&
            v.waiting >= AD_LEASES_MAX_WAITING) {
            session_error(s, req->request_id, AD_WIRE_ERROR_LIMIT,
                          "client has %d lease requests waiting, the most one client may have",
                          AD_LEASES_MAX_WAITING);
            return;
        }
    }
    send_refusal(s, req->request_id, size, r);
}

static void on_share(ad_session_t *s, const ad_wire_request_t *req, uint64_t now_ms)
{
    uint64_t id = req->u.share.lease_id;
    char token[AD_SHARE_TOKEN_MAX];
    int r = ad_leases_share(s->d->leases, s->client_id, id, req->u.share.flags,
                            req->u.share.restrict_uid, (uid_t)req->u.share.uid, now_ms, token);
    switch (r) {
    case 0: {
        ad_wire_reply_t reply = {.request_id = req->request_id, .type = AD_WIRE_REPLY_SHARE};
        reply.u.share.token = token;
        reply.u.share.share_id = strtoull(token + 1, NULL, 16);
        session_send(s, &reply, -1);
        ad_log(AD_LOG_INFO,
               "client %" PRIu64 " pid %ld (%s) shared lease %" PRIu64 " (flags 0x%x, uid %lu)",
               s->client_id, (long)s->pid, s->name, id, (unsigned)req->u.share.flags,
               (unsigned long)(req->u.share.restrict_uid ? req->u.share.uid : s->uid));
        return;
    }
    case -ENOENT:
        session_error(s, req->request_id, AD_WIRE_ERROR_NOT_FOUND,
                      "no lease %" PRIu64 " to share (never granted, or already released)", id);
        return;
    case -EPERM:
        session_error(s, req->request_id, AD_WIRE_ERROR_NOT_OWNER,
                      "lease %" PRIu64 " belongs to another client", id);
        return;
    case -EINVAL:
        session_error(s, req->request_id, AD_WIRE_ERROR_INVALID_ARGUMENT,
                      "unknown share flags 0x%x", (unsigned)req->u.share.flags);
        return;
    case -EXDEV:
        session_error(s, req->request_id, AD_WIRE_ERROR_PERMISSION,
                      "lease %" PRIu64 " lies in the pool of uid %lu, which never crosses to uid "
                      "%lu: lease with own memory (ARENA_LEASE_OWN_MEMORY) to share across uids",
                      id, (unsigned long)s->uid, (unsigned long)req->u.share.uid);
        return;
    case -EACCES:
        session_error(s, req->request_id, AD_WIRE_ERROR_PERMISSION,
                      "lease %" PRIu64 " is attached read-only: only read-only shares of it", id);
        return;
    case -EDQUOT:
        session_error(s, req->request_id, AD_WIRE_ERROR_LIMIT,
                      "client has %u live tokens, the most one client may have",
                      AD_SHARE_MAX_TOKENS);
        return;
    default:
        session_error(s, req->request_id, AD_WIRE_ERROR_INTERNAL, "share failed: %s", ad_errstr(r));
        return;
    }
}

static void on_attach(ad_session_t *s, const ad_wire_request_t *req, uint64_t now_ms)
{
    ad_lease_attach_t a;
    int r = req->u.token.too_long
                ? -EINVAL
                : ad_leases_attach(s->d->leases, s->client_id, req->u.token.token, now_ms, &a);
    if (r == 0) {
        ad_wire_reply_t reply = {.request_id = req->request_id, .type = AD_WIRE_REPLY_ATTACH};
        reply.u.attach.lease_id = a.grant.lease_id;
        reply.u.attach.offset = a.grant.offset;
        reply.u.attach.size = a.grant.size;
        reply.u.attach.read_only = a.read_only;
        reply.u.attach.own_memory = a.fd >= 0;
        reply.u.attach.owner_lease_id = a.owner_lease_id;
        session_send(s, &reply, a.fd);
        if (a.fd >= 0)
            (void)close(a.fd);
        ad_log(AD_LOG_INFO,
               "client %" PRIu64 " pid %ld (%s) attached lease %" PRIu64 " as lease %" PRIu64 "%s",
               s->client_id, (long)s->pid, s->name, a.owner_lease_id, a.grant.lease_id,
               a.read_only ? " (read-only)" : "");
        return;
    }
    const char *why;
    ad_wire_error_t code = AD_WIRE_ERROR_PERMISSION;
    switch (r) {
    case -EINVAL:
        why = "not a token (malformed or truncated)";
        code = AD_WIRE_ERROR_INVALID_ARGUMENT;
        break;
    case -ENOENT:
        why = "no such share (a wrong token, or revoked, spent, or its sharer let go)";
        code = AD_WIRE_ERROR_NOT_FOUND;
        break;
    case -EACCES:
        why = "the share is for another uid";
        break;
    case -EXDEV:
        why = "the share lies in another pool of this uid (made before a daemon restart)";
        code = AD_WIRE_ERROR_CONFLICT;
        break;
    case -EBUSY:
    case -EAGAIN:
        why = "too many failed attaches; try again in a second";
        code = AD_WIRE_ERROR_LIMIT;
        break;
    case -EDQUOT:
        why = "the client holds the most leases it may (max_leases_per_client)";
        code = AD_WIRE_ERROR_LIMIT;
        break;
    default:
        why = ad_errstr(r);
        code = AD_WIRE_ERROR_INTERNAL;
        break;
    }
    /* Failures are rate limited (share.c), so this line is too: of the
     * refusals of the limit itself only the first of a window is logged. */
    ad_log(r == -EAGAIN ? AD_LOG_DEBUG : AD_LOG_WARN,
           "client %" PRIu64 " pid %ld (%s) uid %lu: attach refused: %s", s->client_id,
           (long)s->pid, s->name, (unsigned long)s->uid, why);
    session_error(s, req->request_id, code, "attach refused: %s", why);
}

static void on_unshare(ad_session_t *s, const ad_wire_request_t *req, uint64_t now_ms)
{
    uint64_t id = 0;
    int r = req->u.token.too_long
                ? -EINVAL
                : ad_leases_unshare(s->d->leases, s->client_id, req->u.token.token, now_ms, &id);
    switch (r) {
    case 0: {
        ad_wire_reply_t reply = {.request_id = req->request_id, .type = AD_WIRE_REPLY_UNSHARE};
        reply.u.unshare.share_id = id;
        session_send(s, &reply, -1);
        ad_log(AD_LOG_INFO, "client %" PRIu64 " pid %ld (%s) revoked share %" PRIu64, s->client_id,
               (long)s->pid, s->name, id);
        return;
    }
    case -EINVAL:
        session_error(s, req->request_id, AD_WIRE_ERROR_INVALID_ARGUMENT,
                      "not a token (malformed or truncated)");
        return;
    case -EPERM:
        session_error(s, req->request_id, AD_WIRE_ERROR_NOT_OWNER,
                      "that share was made by another client");
        return;
    default:
        session_error(s, req->request_id, AD_WIRE_ERROR_NOT_FOUND,
                      "no such share (revoked, spent, or its sharer let go)");
        return;
    }
}

static void on_release(ad_session_t *s, const ad_wire_request_t *req, uint64_t now_ms)
{
    uint64_t id = req->u.release.lease_id;
    int r = ad_leases_release(s->d->leases, s->client_id, id, now_ms);
    switch (r) {
    case 0: {
        ad_wire_reply_t reply = {.request_id = req->request_id, .type = AD_WIRE_REPLY_RELEASE};
        reply.u.release.lease_id = id;
        session_send(s, &reply, -1);
        return;
    }
    case -ENOENT:
        session_error(s, req->request_id, AD_WIRE_ERROR_NOT_FOUND,
                      "no lease %" PRIu64 " (never granted, or already released)", id);
        return;
    case -EPERM:
        ad_log(AD_LOG_INFO,
               "client %" PRIu64 " pid %ld (%s) tried to release lease %" PRIu64
               " of another client",
               s->client_id, (long)s->pid, s->name, id);
        session_error(s, req->request_id, AD_WIRE_ERROR_NOT_OWNER,
                      "lease %" PRIu64 " belongs to another client", id);
        return;
    default:
        session_error(s, req->request_id, AD_WIRE_ERROR_INTERNAL, "release failed: %s",
                      ad_errstr(r));
        return;
    }
}

static void on_status(ad_session_t *s, const ad_wire_request_t *req, uint64_t now_ms)
{
    ad_wire_reply_t reply = {.request_id = req->request_id, .type = AD_WIRE_REPLY_STATUS};
    ad_admin_status(s->d->admin, now_ms, &reply.u.status);
    session_send(s, &reply, -1);
}

static void on_list_clients(ad_session_t *s, const ad_wire_request_t *req, uint64_t now_ms)
{
    ad_wire_reply_t reply = {.request_id = req->request_id, .type = AD_WIRE_REPLY_LIST_CLIENTS};
    ad_wire_client_info_t *items = NULL;
    size_t n = 0;
    int r = ad_admin_list_clients(s->d->admin, &s->caller, now_ms, &items, &n);
    if (r < 0) {
        session_error(s, req->request_id, AD_WIRE_ERROR_INTERNAL, "%s", ad_errstr(r));
        return;
    }
    reply.u.clients.items = items;
    reply.u.clients.count = n;
    session_send(s, &reply, -1);
    free(items);
}

static void on_list_leases(ad_session_t *s, const ad_wire_request_t *req, uint64_t now_ms)
{
    ad_wire_reply_t reply = {.request_id = req->request_id, .type = AD_WIRE_REPLY_LIST_LEASES};
    ad_wire_lease_info_t *items = NULL;
    size_t n = 0;
    uint64_t id = req->u.list_leases.client_id;
    int r = ad_admin_list_leases(s->d->admin, &s->caller, id, now_ms, &items, &n);
    if (r == -ENOENT) {
        session_error(s, req->request_id, AD_WIRE_ERROR_NOT_FOUND, "no client %" PRIu64, id);
        return;
    }
    if (r < 0) {
        session_error(s, req->request_id, AD_WIRE_ERROR_INTERNAL, "%s", ad_errstr(r));
        return;
    }
    reply.u.leases.items = items;
    reply.u.leases.count = n;
    session_send(s, &reply, -1);
    free(items);
}

static void on_reclaim(ad_session_t *s, const ad_wire_request_t *req, uint64_t now_ms)
{
    uint64_t bytes = 0;
    uint64_t id = req->u.reclaim.client_id;
    int r = ad_admin_reclaim(s->d->admin, &s->caller, req->u.reclaim.bytes, id, now_ms, &bytes);
    if (r == -ENOENT) {
        session_error(s, req->request_id, AD_WIRE_ERROR_NOT_FOUND, "no client %" PRIu64, id);
        return;
    }
    if (r == -EPERM) {
        session_error(s, req->request_id, AD_WIRE_ERROR_PERMISSION,
                      "client %" PRIu64 " belongs to another user", id);
        return;
    }
    char size[32];
    ad_log(AD_LOG_INFO, "client %" PRIu64 " pid %ld (%s) reclaimed %s", s->client_id, (long)s->pid,
           s->name, arena__size_format(bytes, size, sizeof(size)));
    ad_wire_reply_t reply = {.request_id = req->request_id, .type = AD_WIRE_REPLY_RECLAIM};
    reply.u.reclaim.reclaimed_bytes = bytes;
    session_send(s, &reply, -1);
}

static void on_metrics(ad_session_t *s, const ad_wire_request_t *req, uint64_t now_ms)
{
    char *text = NULL;
    int r = ad_admin_metrics(s->d->admin, &s->caller, now_ms, &text);
    if (r < 0) {
        session_error(s, req->request_id, AD_WIRE_ERROR_INTERNAL, "%s", ad_errstr(r));
        return;
    }
    ad_wire_reply_t reply = {.request_id = req->request_id, .type = AD_WIRE_REPLY_METRICS};
    reply.u.metrics.text = text;
    session_send(s, &reply, -1);
    free(text);
}

static void on_events(ad_session_t *s, const ad_wire_request_t *req)
{
    ad_wire_event_t *items = NULL;
    size_t n = 0;
    uint64_t dropped = 0, last = 0;
    int r = ad_admin_events(s->d->admin, &s->caller, req->u.events.since, req->u.events.max, &items,
                            &n, &dropped, &last);
    if (r == -EPERM) {
        session_error(s, req->request_id, AD_WIRE_ERROR_PERMISSION,
                      "the event log names every client: root, the daemon's user or the admin "
                      "group only");
        return;
    }
    if (r < 0) {
        session_error(s, req->request_id, AD_WIRE_ERROR_INTERNAL, "%s", ad_errstr(r));
        return;
    }
    ad_wire_reply_t reply = {.request_id = req->request_id, .type = AD_WIRE_REPLY_EVENTS};
    reply.u.events.items = items;
    reply.u.events.count = n;
    reply.u.events.dropped = dropped;
    reply.u.events.last_seq = last;
    session_send(s, &reply, -1);
    free(items);
}

/* Bytes a MapExtent and a PoolMap take at most on the wire (varints of
 * 64-bit fields, tags, lengths), and the envelope around them. */
#define MAP_EXTENT_WIRE 40u
#define MAP_POOL_WIRE   160u
#define MAP_ENVELOPE    64u

/* A heap map that fits in the frame maximum: the extent cap follows from
 * it, and is halved (merging more) in the rare case the estimate was off. */
static void on_map(ad_session_t *s, const ad_wire_request_t *req)
{
    size_t max = s->d->config.max_frame;
    size_t fixed = MAP_ENVELOPE + MAP_POOL_WIRE;
    size_t cap = max > fixed + MAP_EXTENT_WIRE ? (max - fixed) / MAP_EXTENT_WIRE : 1;
    for (;;) {
        ad_wire_map_t map;
        int r = ad_admin_map(s->d->admin, &s->caller, req->u.map.by_uid, (uid_t)req->u.map.uid, cap,
                             &map);
        if (r == -EPERM) {
            session_error(s, req->request_id, AD_WIRE_ERROR_PERMISSION,
                          "uid %" PRIu32 " is another user's pool: root, the daemon's user or the "
                          "admin group only",
                          req->u.map.uid);
            return;
        }
        if (r == -ENOENT) {
            session_error(s, req->request_id, AD_WIRE_ERROR_NOT_FOUND,
                          "no pool for uid %" PRIu32 " (no client of that uid has connected)",
                          req->u.map.uid);
            return;
        }
        if (r < 0) {
            session_error(s, req->request_id, AD_WIRE_ERROR_INTERNAL, "%s", ad_errstr(r));
            return;
        }
        uint8_t *frame = NULL;
        size_t len = 0;
        r = ad_wire_encode_map(req->request_id, &map, &frame, &len);
        ad_heapmap_clear(&map);
        if (r == 0 && len - AD_WIRE_HEADER > max && cap > 1) {
            free(frame);
            cap /= 2;
            continue;
        }
        if (r == 0 && len - AD_WIRE_HEADER > max) {
            free(frame);
            session_error(s, req->request_id, AD_WIRE_ERROR_INTERNAL,
                          "the heap map does not fit in a %zu-byte frame", max);
            return;
        }
        if (r < 0) {
            session_error(s, req->request_id, AD_WIRE_ERROR_INTERNAL, "%s", ad_errstr(r));
            return;
        }
        r = ad_conn_send(s->conn, frame, len, -1); /* takes the frame */
        if (r < 0 && r != -EPIPE)
            ad_log(AD_LOG_WARN, "client pid %ld (%s): cannot queue a reply: %s", (long)s->pid,
                   s->name, ad_errstr(r));
        return;
    }
}

void ad_session_frame(ad_session_t *s, const uint8_t *payload, size_t len, int fd, uint64_t now_ms)
{
    ad_wire_request_t req;
    int r = ad_wire_decode(payload, len, s->d->config.max_frame, &req);
    if (fd >= 0 && (r < 0 || req.type != AD_WIRE_REQ_HELLO)) {
        /* Only a re-registering hello carries a descriptor. */
        (void)close(fd);
        fd = -1;
        ad_log(AD_LOG_INFO, "client pid %ld (%s) attached an fd to a request; closed it",
               (long)s->pid, s->name);
    }
    if (r == -ENOMEM) {
        ad_log(AD_LOG_ERROR, "client pid %ld (%s): out of memory decoding a frame", (long)s->pid,
               s->name);
        session_error(s, 0, AD_WIRE_ERROR_INTERNAL, "out of memory");
        return;
    }
    if (r < 0) {
        char what[96];
        (void)snprintf(what, sizeof(what), "a frame of %zu bytes does not decode", len);
        session_protocol_error(s, 0, AD_WIRE_ERROR_PROTOCOL, true, what);
        return;
    }
    if (s->client_id == 0 && req.type != AD_WIRE_REQ_HELLO) {
        char what[96];
        (void)snprintf(what, sizeof(what), "first request is %s, not hello",
                       ad_wire_req_name(req.type));
        session_protocol_error(s, req.request_id, AD_WIRE_ERROR_PROTOCOL, true, what);
        ad_wire_request_clear(&req);
        return;
    }
    switch (req.type) {
    case AD_WIRE_REQ_HELLO:
        on_hello(s, &req, fd, now_ms);
        break;
    case AD_WIRE_REQ_CLAIM:
        on_claim(s, &req, now_ms);
        break;
    case AD_WIRE_REQ_LEASE:
        on_lease(s, &req, now_ms);
        break;
    case AD_WIRE_REQ_RELEASE:
        on_release(s, &req, now_ms);
        break;
    case AD_WIRE_REQ_SHARE:
        on_share(s, &req, now_ms);
        break;
    case AD_WIRE_REQ_ATTACH:
        on_attach(s, &req, now_ms);
        break;
    case AD_WIRE_REQ_UNSHARE:
        on_unshare(s, &req, now_ms);
        break;
    case AD_WIRE_REQ_STATUS:
        on_status(s, &req, now_ms);
        break;
    case AD_WIRE_REQ_LIST_CLIENTS:
        on_list_clients(s, &req, now_ms);
        break;
    case AD_WIRE_REQ_LIST_LEASES:
        on_list_leases(s, &req, now_ms);
        break;
    case AD_WIRE_REQ_RECLAIM:
        on_reclaim(s, &req, now_ms);
        break;
    case AD_WIRE_REQ_METRICS:
        on_metrics(s, &req, now_ms);
        break;
    case AD_WIRE_REQ_EVENTS:
        on_events(s, &req);
        break;
    case AD_WIRE_REQ_MAP:
        on_map(s, &req);
        break;
    case AD_WIRE_REQ_UNKNOWN:
        session_protocol_error(s, req.request_id, AD_WIRE_ERROR_PROTOCOL, false,
                               "envelope without a request the daemon knows");
        break;
    }
    ad_wire_request_clear(&req);
}

void ad_session_oversize(ad_session_t *s, size_t len)
{
    char what[128];
    (void)snprintf(what, sizeof(what), "frame of %zu bytes is over the %zu-byte maximum", len,
                   s->d->config.max_frame);
    ad_admin_counters(s->d->admin)->protocol_errors_total++;
    ad_log(AD_LOG_WARN, "client pid %ld (%s): %s; closing the connection", (long)s->pid, s->name,
           what);
    session_error(s, 0, AD_WIRE_ERROR_FRAME_TOO_LARGE, "%s", what);
    ad_conn_shutdown(s->conn);
}

void ad_dispatch_set_stopping(ad_dispatch_t *d)
{
    d->stopping = true;
}

static void waiter_done(void *ctx, void *owner, uint64_t request_id, uint64_t size, int result,
                        const ad_lease_grant_t *grant)
{
    (void)ctx;
    ad_session_t *s = owner;
    if (result == 0)
        send_grant(s, request_id, grant);
    else
        send_refusal(s, request_id, size, result);
    session_sync_pending(s);
}

size_t ad_dispatch_serve_waiters(ad_dispatch_t *d, uint64_t now_ms)
{
    return ad_leases_serve_waiters(d->leases, now_ms, waiter_done, d);
}

/* Notes from the lease manager go out as notifications (request id 0) on the
 * client's own connection. client_data is the session, set at hello and
 * valid while the client is registered. */
static void dispatch_on_note(void *ctx, void *client_data, const ad_leases_note_t *note)
{
    (void)ctx;
    ad_session_t *s = client_data;
    if (!s || !s->notifications)
        return;
    ad_wire_reply_t reply = {.request_id = 0};
    char a[32], b[32], c[32];
    switch (note->kind) {
    case AD_LEASES_NOTE_RECLAIMED:
        reply.type = AD_WIRE_NOTE_LEASE_RECLAIMED;
        reply.u.reclaimed.lease_id = note->lease_id;
        reply.u.reclaimed.size = note->bytes;
        ad_log(AD_LOG_DEBUG,
               "client %" PRIu64 " pid %ld (%s): parked lease %" PRIu64 " (%s) reclaimed",
               s->client_id, (long)s->pid, s->name, note->lease_id,
               arena__size_format(note->bytes, a, sizeof(a)));
        break;
    case AD_LEASES_NOTE_PRESSURE:
        reply.type = AD_WIRE_NOTE_PRESSURE;
        reply.u.pressure.bytes = note->bytes;
        reply.u.pressure.fair_share = note->fair_share;
        reply.u.pressure.leased = note->leased;
        ad_log(AD_LOG_DEBUG,
               "client %" PRIu64 " pid %ld (%s): pressure for %s (holds %s, share %s)",
               s->client_id, (long)s->pid, s->name, arena__size_format(note->bytes, a, sizeof(a)),
               arena__size_format(note->leased, b, sizeof(b)),
               arena__size_format(note->fair_share, c, sizeof(c)));
        break;
    default:
        return;
    }
    session_send(s, &reply, -1);
}
