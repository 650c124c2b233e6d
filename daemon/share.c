/* SPDX-License-Identifier: MIT
 *
 * share.c -- handing leases to other processes by token (DESIGN.md section
 * 8): tokens made, checked and revoked, attaches, and leases with memory of
 * their own, the kind that may cross a uid.
 *
 * The books of a shared extent (its holders in arrival order, who is
 * charged, when it goes back to the heap) are lease.c's; this file decides
 * who may hold it. A token is "s" + 16 hex digits of its id (public: the
 * lookup key) + "." + 40 hex digits of a 160-bit secret from getrandom(2).
 * Everything in a token is peer input: it is parsed strictly (length,
 * alphabet), looked up by id, and its secret compared in constant time, so
 * the time an attach takes says nothing about how much of a guess was
 * right. A client's failed attaches are counted in one-second windows;
 * beyond AD_SHARE_MAX_FAILURES the rest of the window is refused without
 * looking, which keeps guessing at secrets pointless even locally.
 *
 * Own-memory leases are memfds of their own (sealed against growing and
 * shrinking, mode 0600 so that only the daemon's uid can reopen one
 * through /proc), counted in the budget like any lease but in no pool. A
 * read-only share of one hands out a read-only open of the memfd: mprotect
 * cannot add PROT_WRITE to a shared mapping of a read-only file, and the
 * attacher cannot reopen it for writing. Loop thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "avl.h"
#include "lease.h"
#include "lease_internal.h"

#define TOKEN_ID_HEX      16u
#define TOKEN_LEN         (1u + TOKEN_ID_HEX + 1u + 2u * AD_SHARE_SECRET_BYTES)
#define FAILURE_WINDOW_MS 1000u

_Static_assert(TOKEN_LEN < AD_SHARE_TOKEN_MAX, "a token and its NUL fit AD_SHARE_TOKEN_MAX");

static int token_key(const void *key, const arena__avl_node_t *n)
{
    uint64_t a = *(const uint64_t *)key, b = ARENA_AVL_ENTRY(n, token_t, node)->id;
    return (a > b) - (a < b);
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Parses a token's text. Returns 0, *ret_id and ret_secret, or -EINVAL
 * (NULL, too short or long, or a character out of place). */
static int token_parse(const char *text, uint64_t *ret_id,
                       uint8_t ret_secret[AD_SHARE_SECRET_BYTES])
{
    if (!text || strnlen(text, AD_SHARE_TOKEN_MAX) != TOKEN_LEN || text[0] != 's' ||
        text[1 + TOKEN_ID_HEX] != '.')
        return -EINVAL;
    uint64_t id = 0;
    for (unsigned i = 0; i < TOKEN_ID_HEX; i++) {
        int v = hex_value(text[1 + i]);
        if (v < 0)
            return -EINVAL;
        id = id << 4 | (uint64_t)v;
    }
    const char *s = text + 2 + TOKEN_ID_HEX;
    for (size_t i = 0; i < AD_SHARE_SECRET_BYTES; i++) {
        int hi = hex_value(s[2 * i]), lo = hex_value(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        ret_secret[i] = (uint8_t)(hi << 4 | lo);
    }
    *ret_id = id;
    return 0;
}

/* Equal secrets, in time that does not depend on where they differ. */
static bool secret_equal(const uint8_t *a, const uint8_t *b)
{
    volatile uint8_t diff = 0;
    for (unsigned i = 0; i < AD_SHARE_SECRET_BYTES; i++)
        diff |= (uint8_t)(a[i] ^ b[i]);
    return diff == 0;
}

/* The live token a text names, or NULL (-EINVAL in *ret_err for a text that
 * is no token, -ENOENT for one that names nothing). */
static token_t *token_lookup(const ad_leases_t *m, const char *text, int *ret_err)
{
    uint64_t id;
    uint8_t secret[AD_SHARE_SECRET_BYTES];
    if (token_parse(text, &id, secret) < 0) {
        *ret_err = -EINVAL;
        return NULL;
    }
    arena__avl_node_t *n = arena__avl_lower_bound(&m->tokens, token_key, &id);
    token_t *t = n && token_key(&id, n) == 0 ? ARENA_AVL_ENTRY(n, token_t, node) : NULL;
    if (!t || !secret_equal(t->secret, secret)) {
        *ret_err = -ENOENT;
        return NULL;
    }
    return t;
}

/* Unlinks a token from its sharer and the index and frees it. */
static void token_drop(ad_leases_t *m, token_t *t)
{
    lease_t *l = t->sharer;
    token_t **pp = &l->tokens;
    while (*pp != t)
        pp = &(*pp)->next;
    *pp = t->next;
    l->token_count--;
    l->client->token_count--;
    arena__avl_remove(&m->tokens, &t->node);
    m->share.tokens--;
    free(t);
}

/* Counts a failed attach; true when the client is over its limit. */
static bool attach_failed(ad_leases_t *m, client_t *c, uint64_t now_ms)
{
    m->share.attach_failures_total++;
    if (now_ms - c->attach_window_ms >= FAILURE_WINDOW_MS || now_ms < c->attach_window_ms) {
        c->attach_window_ms = now_ms;
        c->attach_failures = 0;
    }
    return ++c->attach_failures > AD_SHARE_MAX_FAILURES;
}

static bool attach_limited(const client_t *c, uint64_t now_ms)
{
    return c->attach_failures >= AD_SHARE_MAX_FAILURES && now_ms >= c->attach_window_ms &&
           now_ms - c->attach_window_ms < FAILURE_WINDOW_MS;
}

/* A memfd of `length` bytes sealed against growing and shrinking, which
 * only the daemon's uid may reopen. Returns the fd or -errno. */
static int own_memfd(uint64_t length)
{
    int fd = memfd_create("arenad-lease", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -errno;
    if (ftruncate(fd, (off_t)length) != 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0 ||
        fchmod(fd, S_IRUSR | S_IWUSR) != 0) {
        int r = -errno;
        (void)close(fd);
        return r;
    }
    return fd;
}

int ad_leases_grant_own(ad_leases_t *m, uint64_t client_id, uint64_t size, uint64_t now_ms,
                        ad_lease_grant_t *ret_grant, int *ret_fd)
{
    if (!m || !ret_grant || !ret_fd)
        return -EINVAL;
    client_t *c = ad_leases__client_find(m, client_id);
    if (!c)
        return -ENOENT;
    if (size == 0)
        return -EINVAL;
    uint64_t length = ad_heap_round(c->pool->heap, size);
    int r = ad_leases__admit(m, c, length);
    if (r == -ENOMEM) {
        /* Short: parked leases come back first, furthest above their fair
         * share first, as for any lease (reclaim.c); there is no queue. */
        uint64_t used = m->leased_total + m->orphan_bytes;
        uint64_t need = used + length > m->config.budget ? used + length - m->config.budget : 0;
        if (need > 0 && ad_leases_reclaim_parked(m, 0, need, now_ms) > 0)
            r = ad_leases__admit(m, c, length);
    }
    if (r < 0) {
        m->refused_total++;
        return r;
    }
    lease_t *l = calloc(1, sizeof(*l));
    shext_t *x = calloc(1, sizeof(*x));
    int fd = -1, dup = -1;
    r = -ENOMEM;
    if (!l || !x)
        goto fail;
    fd = own_memfd(length);
    if (fd < 0) {
        r = fd;
        goto fail;
    }
    dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) {
        r = -errno;
        goto fail;
    }
    *x = (shext_t){.memfd = fd, .ro_fd = -1, .size = length, .first = l, .holders = 1};
    l->ext = x;
    l->size = length;
    l->zeroed = true;
    r = ad_leases__lease_file(m, c, l, now_ms);
    if (r < 0)
        goto fail;
    x->id = m->next_ext_id++;
    m->own_bytes += length;
    m->leased_total += length;
    m->granted_total++;
    ad_leases__event(m, AD_EVENT_GRANT, c, length, l->id, now_ms);
    *ret_grant = (ad_lease_grant_t){.lease_id = l->id,
                                    .offset = 0,
                                    .size = length,
                                    .zeroed = true,
                                    .slot = l->slot,
                                    .generation = l->generation};
    *ret_fd = dup;
    return 0;

fail:
    if (dup >= 0)
        (void)close(dup);
    if (fd >= 0)
        (void)close(fd);
    free(x);
    free(l);
    return r;
}

int ad_leases_share(ad_leases_t *m, uint64_t client_id, uint64_t lease_id, uint32_t flags,
                    bool restrict_uid, uid_t uid, uint64_t now_ms,
                    char ret_token[AD_SHARE_TOKEN_MAX])
{
    if (!m || !ret_token)
        return -EINVAL;
    client_t *c = ad_leases__client_find(m, client_id);
    if (!c)
        return -ENOENT;
    lease_t *l = ad_leases__lease_find(m, lease_id);
    if (!l)
        return -ENOENT;
    if (l->client != c)
        return -EPERM;
    if (flags & ~(AD_SHARE_READONLY | AD_SHARE_ONCE))
        return -EINVAL;
    if (l->read_only && !(flags & AD_SHARE_READONLY))
        return -EACCES;
    uid_t to = restrict_uid ? uid : c->uid;
    /* Pool memfds never cross a uid: another uid needs own memory. */
    if (to != c->uid && (!l->ext || l->ext->pool))
        return -EXDEV;
    if (c->token_count >= AD_SHARE_MAX_TOKENS)
        return -EDQUOT;
    token_t *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    if (getrandom(t->secret, sizeof(t->secret), 0) != (ssize_t)sizeof(t->secret)) {
        int r = errno ? -errno : -EIO;
        free(t);
        return r;
    }
    if (!l->ext) {
        shext_t *x = calloc(1, sizeof(*x));
        if (!x) {
            free(t);
            return -ENOMEM;
        }
        *x = (shext_t){.id = m->next_ext_id++,
                       .pool = c->pool,
                       .memfd = -1,
                       .ro_fd = -1,
                       .offset = l->offset,
                       .size = l->size,
                       .first = l,
                       .holders = 1};
        l->ext = x;
    }
    t->id = ++m->share.shares_total;
    t->sharer = l;
    t->flags = flags | (l->read_only ? AD_SHARE_READONLY : 0);
    t->uid = to;
    t->next = l->tokens;
    l->tokens = t;
    l->token_count++;
    c->token_count++;
    arena__avl_insert(&m->tokens, &t->node);
    m->share.tokens++;
    ad_leases__event(m, AD_EVENT_SHARE, c, l->size, l->id, now_ms);
    int n = snprintf(ret_token, AD_SHARE_TOKEN_MAX, "s%016" PRIx64 ".", t->id);
    for (unsigned i = 0; i < AD_SHARE_SECRET_BYTES; i++)
        n += snprintf(ret_token + n, AD_SHARE_TOKEN_MAX - (size_t)n, "%02x", t->secret[i]);
    return 0;
}

/* The read-only fd handed to attachers of a read-only own-memory share: a
 * second open of the memfd, made once. Returns it or -errno. */
static int ext_ro_fd(shext_t *x)
{
    if (x->ro_fd < 0) {
        char path[64];
        (void)snprintf(path, sizeof(path), "/proc/self/fd/%d", x->memfd);
        x->ro_fd = open(path, O_RDONLY | O_CLOEXEC);
        if (x->ro_fd < 0)
            return -errno;
    }
    return x->ro_fd;
}

int ad_leases_attach(ad_leases_t *m, uint64_t client_id, const char *token, uint64_t now_ms,
                     ad_lease_attach_t *ret_attach)
{
    if (!m || !ret_attach)
        return -EINVAL;
    client_t *c = ad_leases__client_find(m, client_id);
    if (!c)
        return -ENOENT;
    if (attach_limited(c, now_ms)) {
        m->share.attach_failures_total++;
        m->share.attach_limited_total++;
        /* The first refusal of a window says so (the caller logs it). */
        return c->attach_failures++ == AD_SHARE_MAX_FAILURES ? -EBUSY : -EAGAIN;
    }
    int r = 0;
    token_t *t = token_lookup(m, token, &r);
    if (t && t->uid != c->uid)
        r = -EACCES;
    shext_t *x = t ? t->sharer->ext : NULL;
    if (r == 0 && x->pool && x->pool != c->pool)
        r = -EXDEV; /* the client's uid, another pool (after a restart) */
    if (r < 0) {
        (void)attach_failed(m, c, now_ms);
        return r;
    }
    bool ro = (t->flags & AD_SHARE_READONLY) != 0;
    int fd = -1;
    if (!x->pool) {
        int src = ro ? ext_ro_fd(x) : x->memfd;
        fd = src < 0 ? src : fcntl(src, F_DUPFD_CLOEXEC, 0);
        if (fd < 0)
            return src < 0 ? src : -errno;
    }
    /* An attached lease is a lease of the client like any other. */
    lease_t *l = NULL;
    if (m->config.max_leases_per_client == 0 || c->leases.count < m->config.max_leases_per_client)
        l = calloc(1, sizeof(*l));
    if (!l) {
        if (fd >= 0)
            (void)close(fd);
        return m->config.max_leases_per_client && c->leases.count >= m->config.max_leases_per_client
                   ? -EDQUOT
                   : -ENOMEM;
    }
    l->ext = x;
    l->offset = x->offset;
    l->size = x->size;
    l->uncharged = true;
    l->read_only = ro;
    r = ad_leases__lease_file(m, c, l, now_ms);
    if (r < 0) {
        free(l);
        if (fd >= 0)
            (void)close(fd);
        return r;
    }
    lease_t **tail = &x->first;
    while (*tail)
        tail = &(*tail)->next_holder;
    *tail = l;
    x->holders++;
    x->attached = true;
    t->attaches++;
    m->share.attaches_total++;
    ad_leases__event(m, AD_EVENT_ATTACH, c, l->size, l->id, now_ms);
    *ret_attach = (ad_lease_attach_t){
        .grant = {.lease_id = l->id,
                  .offset = l->offset,
                  .size = l->size,
                  .zeroed = false,
                  .slot = l->slot,
                  .generation = l->generation},
        .read_only = ro,
        .fd = fd,
        .owner_lease_id = t->sharer->id,
    };
    if (t->flags & AD_SHARE_ONCE) {
        ad_leases__event(m, AD_EVENT_UNSHARE, t->sharer->client, x->size, t->sharer->id, now_ms);
        token_drop(m, t);
    }
    return 0;
}

int ad_leases_unshare(ad_leases_t *m, uint64_t client_id, const char *token, uint64_t now_ms,
                      uint64_t *ret_share_id)
{
    if (!m || !ret_share_id)
        return -EINVAL;
    client_t *c = ad_leases__client_find(m, client_id);
    if (!c)
        return -ENOENT;
    int r = 0;
    token_t *t = token_lookup(m, token, &r);
    if (!t)
        return r;
    if (t->sharer->client != c)
        return -EPERM;
    *ret_share_id = t->id;
    m->share.unshares_total++;
    ad_leases__event(m, AD_EVENT_UNSHARE, c, t->sharer->size, t->sharer->id, now_ms);
    token_drop(m, t);
    return 0;
}

void ad_leases_share_stats(const ad_leases_t *m, ad_leases_share_stats_t *ret_stats)
{
    ad_leases_share_stats_t s = m->share;
    s.shared_extents = 0;
    s.shared_bytes = 0;
    for (arena__avl_node_t *n = arena__avl_first(&m->leases); n;
         n = arena__avl_next(&m->leases, n)) {
        const lease_t *l = ARENA_AVL_ENTRY(n, lease_t, by_id);
        if (l->ext && l->ext->first == l && l->ext->holders > 1) {
            s.shared_extents++;
            s.shared_bytes += l->size;
        }
    }
    s.own_memory_bytes = m->own_bytes;
    *ret_stats = s;
}
