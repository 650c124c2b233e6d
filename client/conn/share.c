/* SPDX-License-Identifier: MIT
 *
 * share.c -- sharing leases by token: arena_share(), arena_share_uid(),
 * arena_attach() and arena_unshare() (DESIGN.md section 8).
 *
 * The daemon owns every decision (who may attach, how long the extent
 * lives, who pays for it); this file turns a lease the caller holds into
 * the id the current daemon knows it by, and an attach reply into a
 * mapping: of the pool the connection already has (same uid), or of the
 * memfd that came with the reply (a lease with memory of its own), read
 * only when the share is. Tokens are peer input to the daemon and opaque
 * here: only their length is checked before they are sent. An attached
 * lease is tracked like any other, so arena_release() detaches it and
 * arena_disconnect() unmaps it; it gets no control word, so it is never
 * parked. No malloc (see conn.h); any thread.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arena.h"
#include "conn.h"
#include "conn_internal.h"
#include "wire.h"

typedef struct share_reply {
    char *token; /* ARENA_TOKEN_SIZE bytes */
} share_reply_t;

/* Copies the token out of the reply; a token that does not fit or is not
 * printable is the daemon's error, not something to hand on. */
static int share_on_reply(void *ctx, const arena__msg_t *reply)
{
    share_reply_t *out = ctx;
    const char *t = reply->u.share_reply.token;
    size_t n = strnlen(t, ARENA_TOKEN_SIZE);
    if (n == 0 || n >= ARENA_TOKEN_SIZE)
        return ARENA_EPROTOCOL;
    for (size_t i = 0; i < n; i++) {
        if (t[i] <= 0x20 || t[i] >= 0x7f)
            return ARENA_EPROTOCOL;
    }
    memcpy(out->token, t, n + 1);
    return 0;
}

/* The id and epoch the daemon knows a tracked lease by. Returns 0, -ENOENT
 * (not tracked, or addr/size differ), or ARENA_EDISCONNECTED (a daemon
 * that has gone granted it and the new one did not take it back). */
static int share_lookup(arena_conn_t *conn, const arena_lease_t *lease, uint64_t *ret_daemon_id)
{
    int r = 0;
    (void)pthread_mutex_lock(&conn->table_lock);
    const lease_slot_t *e = arena__conn_table_find(conn, lease->id);
    if (!e || e->addr != lease->addr || e->size != lease->size || e->gone)
        r = -ENOENT;
    else if (e->detached || e->epoch != conn->epoch)
        r = ARENA_EDISCONNECTED;
    else
        *ret_daemon_id = e->daemon_id;
    (void)pthread_mutex_unlock(&conn->table_lock);
    return r;
}

int arena__conn_share(arena_conn_t *conn, const arena_lease_t *lease, unsigned flags,
                      bool restrict_uid, uint32_t uid, char *ret_token)
{
    if (!lease || !ret_token || (flags & ~(ARENA_SHARE_READONLY | ARENA_SHARE_ONCE)))
        return -EINVAL;
    int r = arena__conn_resolve(&conn);
    if (r < 0)
        return r;
    if (arena__conn_foreign(conn))
        return ARENA_EDISCONNECTED;
    uint64_t daemon_id = 0;
    r = share_lookup(conn, lease, &daemon_id);
    if (r < 0)
        return r;
    arena__msg_t req = {.kind = ARENA__MSG_SHARE};
    req.u.share.lease_id = daemon_id;
    req.u.share.flags = flags;
    req.u.share.restrict_uid = restrict_uid;
    req.u.share.uid = uid;
    char token[ARENA_TOKEN_SIZE];
    share_reply_t got = {.token = token};
    r = arena__conn_call(conn, &req, ARENA__MSG_SHARE_REPLY, share_on_reply, &got);
    if (r == ARENA_ENOTOWNER)
        r = -ENOENT; /* the daemon has it as another client's: not ours to share */
    if (r < 0)
        return r;
    memcpy(ret_token, token, strlen(token) + 1);
    return 0;
}

int arena_share(arena_conn_t *conn, const arena_lease_t *lease, unsigned flags,
                char ret_token[ARENA_TOKEN_SIZE])
{
    return arena__conn_share(conn, lease, flags, false, 0, ret_token);
}

int arena_share_uid(arena_conn_t *conn, const arena_lease_t *lease, unsigned flags,
                    unsigned int uid, char ret_token[ARENA_TOKEN_SIZE])
{
    return arena__conn_share(conn, lease, flags, true, uid, ret_token);
}

/* Checks the token's length before anything is sent. */
static int share_token_ok(const char *token)
{
    if (!token)
        return -EINVAL;
    size_t n = strnlen(token, ARENA_TOKEN_SIZE);
    return (n == 0 || n >= ARENA_TOKEN_SIZE) ? -EINVAL : 0;
}

typedef struct attach_reply {
    uint64_t id;
    uint64_t offset;
    uint64_t size;
    bool read_only;
    bool own_memory;
} attach_reply_t;

static int attach_on_reply(void *ctx, const arena__msg_t *reply)
{
    attach_reply_t *out = ctx;
    out->id = reply->u.attach_reply.lease_id;
    out->offset = reply->u.attach_reply.offset;
    out->size = reply->u.attach_reply.size;
    out->read_only = reply->u.attach_reply.read_only;
    out->own_memory = reply->u.attach_reply.own_memory;
    return 0;
}

int arena_attach(arena_conn_t *conn, const char *token, arena_lease_t *ret_lease)
{
    int r = share_token_ok(token);
    if (r < 0 || !ret_lease)
        return -EINVAL;
    r = arena__conn_resolve(&conn);
    if (r < 0)
        return r;
    arena__msg_t req = {.kind = ARENA__MSG_ATTACH};
    req.u.attach.token = token;
    attach_reply_t got = {0};
    arena__lease_call_t call;
    r = arena__conn_call_lease(conn, &req, ARENA__MSG_ATTACH_REPLY, attach_on_reply, &got, &call);
    if (r < 0)
        return r;
    const arena__conn_info_t info = call.info;
    size_t page = (size_t)getpagesize();
    void *addr = NULL;
    uint64_t id = 0;
    /* The daemon's numbers decide what we map: check them first. */
    if (got.size == 0 || got.size > SIZE_MAX || got.offset % page != 0 || got.size % page != 0 ||
        got.own_memory != (call.own_fd >= 0) || (got.own_memory && got.offset != 0) ||
        (!got.own_memory && info.heap_size &&
         (got.offset > info.heap_size || got.size > info.heap_size - got.offset))) {
        r = ARENA_EPROTOCOL;
        goto fail_release;
    }
    int prot = got.read_only ? PROT_READ : PROT_READ | PROT_WRITE;
    r = arena__conn_map_lease(got.own_memory ? call.own_fd : call.pool_fd, got.offset,
                              (size_t)got.size, 0, prot, &info, &addr);
    if (r < 0)
        goto fail_release;
    r = arena__conn_track_lease(conn, got.id, got.offset, addr, (size_t)got.size, call.epoch, &id);
    if (r == -ESTALE || r == -EEXIST) {
        /* Granted by a daemon that went away, or an id we hold already:
         * giving it back would hit the wrong lease. */
        (void)munmap(addr, (size_t)got.size);
        r = r == -ESTALE ? ARENA_EDISCONNECTED : ARENA_EPROTOCOL;
        goto fail_close;
    }
    if (r < 0) {
        (void)munmap(addr, (size_t)got.size);
        goto fail_release;
    }
    if (got.own_memory)
        (void)arena__conn_set_own_memory(conn, id);
    if (call.pool_fd >= 0)
        (void)close(call.pool_fd);
    if (call.own_fd >= 0)
        (void)close(call.own_fd);
    *ret_lease = (arena_lease_t){.addr = addr, .size = (size_t)got.size, .id = id, .zeroed = false};
    return 0;

fail_release:
    (void)arena__conn_release_remote(conn, got.id, call.epoch);
fail_close:
    if (call.pool_fd >= 0)
        (void)close(call.pool_fd);
    if (call.own_fd >= 0)
        (void)close(call.own_fd);
    return r;
}

int arena_unshare(arena_conn_t *conn, const char *token)
{
    int r = share_token_ok(token);
    if (r < 0)
        return r;
    r = arena__conn_resolve(&conn);
    if (r < 0)
        return r;
    arena__msg_t req = {.kind = ARENA__MSG_UNSHARE};
    req.u.unshare.token = token;
    return arena__conn_call(conn, &req, ARENA__MSG_UNSHARE_REPLY, NULL, NULL);
}
