/* SPDX-License-Identifier: MIT
 *
 * lease.h -- the lease manager: clients, their leases, one pool heap per uid,
 * the daemon-wide budget and the queue of requests waiting for memory.
 *
 * No sockets, no event loop and no protocol here: callers pass the time in
 * (milliseconds on a monotonic clock) and get plain results back, so the
 * whole policy runs under unit tests on a real heap.
 */
#ifndef AD_LEASE_H
#define AD_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "events.h"

typedef struct ad_leases ad_leases_t;

#define AD_LEASES_NAME_MAX    64
#define AD_LEASES_MAX_WAITING 64 /* queued requests per client */

typedef struct ad_leases_config {
    uint64_t budget;                /* cap on bytes leased by all clients */
    uint64_t heap_size;             /* address space of each pool */
    uint64_t small_limit;           /* leases up to this size come from the top */
    uint64_t decay_ms;              /* released pages stay dirty this long */
    bool hugetlb;                   /* MFD_HUGETLB pools */
    uint32_t max_leases_per_client; /* 0: no limit */
    uint64_t max_bytes_per_uid;     /* all clients of one uid together; 0: no limit */
    uint64_t restart_grace_ms;      /* how long an adopted pool waits for claims */
    uint64_t parked_decay_ms;       /* a lease parked this long is taken back (0: never) */
    /* Fair-share rules by uid (copied; NULL/0: every client weight 1, no
     * cap, no guarantee). Applied to clients that connect afterwards. */
    const struct ad_fair_rule *fair_rules;
    size_t fair_rule_count;
} ad_leases_config_t;

/* Weight, cap and guarantee of every client of one uid. */
typedef struct ad_fair_rule {
    uid_t uid;
    uint32_t weight;    /* 0: 1 */
    uint64_t cap;       /* bytes the uid's each client may lease at most; 0: none */
    uint64_t guarantee; /* fair share of at least this many bytes */
} ad_fair_rule_t;

/* Slots in a client's control region when max_leases_per_client is 0. */
#define AD_LEASES_DEFAULT_SLOTS 65536u

/* What the manager tells a client without being asked (see
 * ad_leases_set_notify()). */
typedef enum ad_leases_note_kind {
    AD_LEASES_NOTE_RECLAIMED = 1, /* lease_id was taken back; bytes = its size */
    AD_LEASES_NOTE_PRESSURE = 2,  /* give back about `bytes` */
} ad_leases_note_kind_t;

typedef struct ad_leases_note {
    ad_leases_note_kind_t kind;
    uint64_t client_id;
    uint64_t lease_id;
    uint64_t bytes;
    uint64_t fair_share;
    uint64_t leased;
} ad_leases_note_t;

typedef void (*ad_leases_notify_fn)(void *ctx, void *client_data, const ad_leases_note_t *note);

typedef struct ad_lease_grant {
    uint64_t lease_id;
    uint64_t offset;
    uint64_t size;
    bool zeroed;
    uint32_t slot;       /* the lease's word in the client's control region */
    uint64_t generation; /* the generation that word carries for it */
} ad_lease_grant_t;

typedef struct ad_pool_info {
    int fd; /* owned by the manager; dup it to keep it */
    uint64_t heap_size;
    uint64_t granule;
    bool hugetlb;
} ad_pool_info_t;

typedef struct ad_client_view {
    uint64_t client_id;
    pid_t pid;
    uid_t uid;
    gid_t gid;
    const char *name; /* valid until the client is freed */
    uint64_t leased_bytes;
    uint64_t leases;
    uint64_t connected_at_ms;
    uint64_t parked_bytes;  /* leased bytes whose state word says PARKED */
    uint64_t live_bytes;    /* what the client says it holds live, <= leased_bytes */
    uint64_t fair_share;    /* max-min fair share now */
    uint32_t waiting;       /* queued requests */
    uint64_t waiting_bytes; /* bytes they ask for */
    uint32_t weight;
    uint64_t shared_bytes; /* in its leases that another holder maps too */
} ad_client_view_t;

typedef struct ad_lease_view {
    uint64_t lease_id;
    uint64_t client_id;
    uid_t uid;
    uint64_t offset;
    uint64_t size;
    bool zeroed;
    uint64_t granted_at_ms;
    bool parked;
    uint32_t holders;   /* of its extent (1: not shared) */
    uint32_t shares;    /* live tokens made from it */
    uint64_t extent_id; /* the shared extent; 0: not shared */
    bool charged;       /* counted in its client's leased bytes */
    bool read_only;     /* attached through a read-only share */
    bool own_memory;    /* a memfd of its own, not the pool */
} ad_lease_view_t;

typedef struct ad_leases_stats {
    uint64_t budget;
    uint64_t heap_size;
    uint64_t leased_bytes;   /* all pools */
    uint64_t free_bytes;     /* all pools */
    uint64_t dirty_bytes;    /* released, not yet punched, all pools */
    uint64_t resident_bytes; /* pages the pool memfds hold */
    uint64_t largest_free;   /* of any pool */
    uint64_t free_extents;   /* all pools */
    double fragmentation;    /* worst pool */
    uint32_t clients;
    uint32_t pools;
    uint64_t leases;
    uint64_t waiters;
    uint64_t granted_total;
    uint64_t released_total;
    uint64_t punched_total;            /* bytes, all pools */
    uint64_t refused_total;            /* no memory, too large, limit, timed out */
    uint64_t parked_bytes;             /* all clients */
    uint64_t reclaimed_total;          /* parked leases taken back */
    uint64_t reclaimed_bytes_total;    /* their bytes */
    uint64_t parked_decay_bytes_total; /* of those, taken because they stayed parked */
    uint64_t pressure_total;           /* pressure notifications sent */
} ad_leases_stats_t;

/* Called for each queued request that completes: result 0 with grant, or
 * -ETIMEDOUT / another ad_leases_grant() error with grant NULL. owner,
 * request_id and size are what ad_leases_wait() was given. */
typedef void (*ad_leases_waiter_fn)(void *ctx, void *owner, uint64_t request_id, uint64_t size,
                                    int result, const ad_lease_grant_t *grant);

/* Creates an empty manager (no pools until the first client of a uid).
 * Returns 0, or -EINVAL (budget or heap_size 0), -ENOMEM. */
int ad_leases_new(const ad_leases_config_t *config, ad_leases_t **ret_leases);

/* Frees every client, lease, waiter and pool (closing the memfds); NULL-safe. */
void ad_leases_free(ad_leases_t *leases);

/* Applies what can change live: budget (when not 0; one below what is
 * leased now only refuses new leases), decay_ms (every pool),
 * max_leases_per_client, max_bytes_per_uid, restart_grace_ms (pools adopted
 * from now on; a grace period already running keeps its end) and the
 * fair-share rules (clients that connect from now on). heap_size,
 * small_limit and hugetlb shaped the pools already made and are ignored
 * (config.h's ad_config_reload() reports them as restart-only). */
void ad_leases_reconfigure(ad_leases_t *leases, const ad_leases_config_t *config);

/* Registers a client and creates its uid's pool on first use. name is copied
 * (cut to AD_LEASES_NAME_MAX). Client ids increase from 1 daemon-wide.
 * Returns 0 and *ret_client_id, or -ENOMEM, -errno from ad_heap_new(). */
int ad_leases_client_new(ad_leases_t *leases, pid_t pid, uid_t uid, gid_t gid, const char *name,
                         uint64_t now_ms, uint64_t *ret_client_id);

/* Unregisters a client: its queued requests are dropped (no callback) and
 * every lease it holds is released. With punch, the pages are punched at
 * once (the client is gone); without, they are left as they are, which is
 * what a stopping daemon does, since a client that still maps them keeps its
 * data (DESIGN.md section 7). Returns the number of leases released, or
 * -ENOENT. */
int ad_leases_client_free(ad_leases_t *leases, uint64_t client_id, uint64_t now_ms, bool punch);

/* A client's control region: its memfd (owned by the manager; dup it to
 * keep it) and its number of slots. Returns 0, or -ENOENT. */
int ad_leases_control_info(const ad_leases_t *leases, uint64_t client_id, int *ret_fd,
                           uint32_t *ret_slots);

/* Closes the client's control memfd (it was sent; the mapping stays). */
void ad_leases_control_close_fd(ad_leases_t *leases, uint64_t client_id);

/* Attaches opaque data to a client (the dispatcher's session), passed back
 * to the notify callback. Returns 0 or -ENOENT. */
int ad_leases_client_set_data(ad_leases_t *leases, uint64_t client_id, void *data);

/* Sets the callback that delivers notes to clients (NULL: none). It runs
 * inside grant, request, serve and reclaim calls and must not call back into
 * the manager. */
void ad_leases_set_notify(ad_leases_t *leases, ad_leases_notify_fn fn, void *ctx);

/* The event log (owned by the manager). */
const ad_events_t *ad_leases_events(const ad_leases_t *leases);

/* A lease request with the whole no-starvation policy (DESIGN.md section 4):
 * grant at once if it fits; else (1) take parked leases back, first from
 * the clients furthest above their fair share; (2) send pressure notes to
 * clients above their share; (3) with deadline_ms > now_ms, queue it FIFO
 * (owner and request_id as for ad_leases_wait()); (4) else refuse it. Every
 * decision goes to the event log.
 * Returns 0 and *ret_grant, 1 (queued: ad_leases_serve_waiters() completes
 * it), or the ad_leases_grant() errors (-ENOMEM: refused for want of memory
 * after all of the above), -EDQUOT also when too many requests wait. */
int ad_leases_request(ad_leases_t *leases, uint64_t client_id, uint64_t size, uint64_t deadline_ms,
                      void *owner, uint64_t request_id, uint64_t now_ms,
                      ad_lease_grant_t *ret_grant);

/* Takes back parked leases (state word PARKED -> RECLAIMED) of one client
 * (client_id 0: of every client, furthest above fair share first) up to
 * max_bytes (0: all), punching them at once and notifying their owners.
 * Returns the bytes taken back (-ENOENT for an unknown client). */
int64_t ad_leases_reclaim_parked(ad_leases_t *leases, uint64_t client_id, uint64_t max_bytes,
                                 uint64_t now_ms);

/* Every client's fair share now. Fills out[i] for the i-th client in id
 * order, up to n. Returns the number of clients. */
size_t ad_leases_fair_shares(const ad_leases_t *leases, uint64_t *out, size_t n);

/* The pool a client leases from. Returns 0 and *ret_info, or -ENOENT. */
int ad_leases_pool_info(const ad_leases_t *leases, uint64_t client_id, ad_pool_info_t *ret_info);

/* Leases size bytes (rounded up to the granule) to a client.
 * Returns 0 and *ret_grant, or -EINVAL (size 0), -E2BIG (more than the budget,
 * the heap or the client's cap.UID could ever hold), -ENOMEM (the budget or
 * the heap is short now), -EDQUOT (max_leases_per_client, cap.UID or
 * max_bytes_per_uid would be passed; ad_leases_limit_reason() says which),
 * -ENOENT (no such client). Lease ids increase from 1 daemon-wide. */
int ad_leases_grant(ad_leases_t *leases, uint64_t client_id, uint64_t size, uint64_t now_ms,
                    ad_lease_grant_t *ret_grant);

/* Releases a lease of a client; its pages decay (see ad_heap_release).
 * Returns 0, or -ENOENT (no such lease: never granted or already released),
 * -EPERM (another client's lease), -ENOENT for an unknown client, -ENOMEM
 * (no memory for the heap's bookkeeping; the lease is kept). */
int ad_leases_release(ad_leases_t *leases, uint64_t client_id, uint64_t lease_id, uint64_t now_ms);

/* Queues a request that could not be granted (-ENOMEM) until memory is
 * released or deadline_ms passes; ad_leases_serve_waiters() completes it.
 * Returns 0, or -ENOENT (no client), -EDQUOT (the client already has
 * AD_LEASES_MAX_WAITING requests queued), -ENOMEM. */
int ad_leases_wait(ad_leases_t *leases, uint64_t client_id, uint64_t size, uint64_t deadline_ms,
                   void *owner, uint64_t request_id);

/* Completes queued requests in FIFO order: grants those that now fit, fails
 * those past their deadline with -ETIMEDOUT, and stops at the first one that
 * still does not fit. Returns the number completed. */
size_t ad_leases_serve_waiters(ad_leases_t *leases, uint64_t now_ms, ad_leases_waiter_fn fn,
                               void *ctx);

/* When ad_leases_serve_waiters() should run next: the earliest deadline of
 * a queued request or, while the queue is blocked, the next retry (which
 * repeats pressure); UINT64_MAX when nothing waits. */
uint64_t ad_leases_next_deadline(const ad_leases_t *leases);

/* Writes "L of B budget leased[; H held for clients of a previous arenad]
 * [; top: pid P (NAME) SIZE, ...]" -- the bytes held after a restart when
 * there are any, and the three clients holding the most -- into buf
 * (NUL-terminated, truncated to len). Returns buf. */
char *ad_leases_describe_holders(const ad_leases_t *leases, char *buf, size_t len);

/* Writes which per-client or per-uid limit (max_leases_per_client, cap.UID,
 * max_bytes_per_uid) a lease of size more bytes would break for the client
 * into buf, as one line for a refusal (NUL-terminated, truncated to len).
 * Returns 0, -ENOENT (no such client, or no limit in the way) or -EINVAL. */
int ad_leases_limit_reason(const ad_leases_t *leases, uint64_t client_id, uint64_t size, char *buf,
                           size_t len);

/* Punches due dirty pages of every pool. Returns bytes punched. */
uint64_t ad_leases_purge(ad_leases_t *leases, uint64_t now_ms);

/* When the next purge is due over all pools, or UINT64_MAX. */
uint64_t ad_leases_next_purge_ms(const ad_leases_t *leases);

/* Force-punches dirty pages now, up to max_bytes (0: all), in the pool of
 * uid only when only_uid, else in every pool. Returns bytes punched. */
uint64_t ad_leases_reclaim(ad_leases_t *leases, bool only_uid, uid_t uid, uint64_t max_bytes,
                           uint64_t now_ms);

void ad_leases_stats(const ad_leases_t *leases, ad_leases_stats_t *ret_stats);

/* One client. Returns 0 and *ret_view, or -ENOENT. */
int ad_leases_client_view(const ad_leases_t *leases, uint64_t client_id,
                          ad_client_view_t *ret_view);

/* Calls fn for every client in id order, and for every lease (of one client,
 * or of all when client_id is 0) in id order, until fn returns non-zero,
 * which is then returned. The callback must not change the manager. */
int ad_leases_foreach_client(const ad_leases_t *leases,
                             int (*fn)(void *ctx, const ad_client_view_t *view), void *ctx);
int ad_leases_foreach_lease(const ad_leases_t *leases, uint64_t client_id,
                            int (*fn)(void *ctx, const ad_lease_view_t *view), void *ctx);

/* ---- adoption after a daemon restart (DESIGN.md section 7) ----------------
 *
 * A daemon that restarts loses its books, not the memory: clients keep their
 * mappings, and the pool memfds live on in them (and in the service
 * manager's fd store, see restart.h). A pool comes back either from the fd
 * store with the previous daemon's ledger of extents (orphans, waiting for
 * their clients) or from a re-registering client, in which case any byte of
 * it may hold a lease of a client that has not come back yet. Either way
 * the pool accepts claims for restart_grace_ms; during that time it grants
 * only space known to be nobody's (none, for a pool a client handed back),
 * and afterwards everything unclaimed is punched and free -- except an
 * orphan whose process the ledger names and which is still alive: a client
 * that sleeps through the grace period has not let go of its memory, so
 * the orphan stays reserved for that process, which may claim it whenever
 * it calls next, and is freed when the process is gone (looked at once a
 * second). An orphan whose process is already gone at adoption is freed at
 * once. Claims never overlap: a claim must match an orphan exactly (and
 * come from its process, when the ledger names one), or (for a handed-back
 * pool) lie in space nobody claimed yet. Pools are never shared across
 * uids. */

/* An extent the previous daemon had leased (from its ledger). */
typedef struct ad_leases_orphan {
    uint64_t offset;
    uint64_t size;
    pid_t pid;      /* the process that held it; 0: unknown */
    uint64_t start; /* its start time (procid.h), so a reused pid is not it; 0: unknown */
} ad_leases_orphan_t;

typedef struct ad_leases_adopt_stats {
    uint64_t pools_adopted;
    uint64_t claims_total;          /* leases claimed back */
    uint64_t claimed_bytes_total;   /* their bytes */
    uint64_t claims_refused_total;  /* conflicting, forged or late claims */
    uint64_t unclaimed_bytes_total; /* orphans freed unclaimed: grace over, or process gone */
    uint64_t graces_ended;
    uint64_t orphan_bytes;      /* reserved now, waiting for claims */
    uint64_t held_orphan_bytes; /* of those, past the grace period: their process lives */
    uint64_t grace_until_ms;    /* the next grace end or look at held orphans; 0: none */
    uint64_t grace_end_ms;      /* the latest grace end of any pool; 0: no grace period runs */
    uint64_t held_orphans;      /* orphans not claimed yet (orphan_bytes of them) */
    uint32_t unknown_pools;     /* pools handed back by clients still in their grace period */
    bool ledger;                /* a ledger is kept (an fd store to survive in) */
} ad_leases_adopt_stats_t;

/* Takes over a pool memfd of uid (pool_fd is the manager's on success only).
 * A memfd the manager already has (the same file) is not adopted twice: it
 * is accepted when it is uid's (pool_fd is closed), else -EPERM. orphans
 * (NULL: the pool came from a client, nothing is known) are the extents the
 * ledger says were leased; the rest of the pool is punched at once. Sets
 * *ret_serial (may be NULL) to the pool's number. Returns 0, or -EPERM,
 * -EINVAL (not a pool memfd), -ENOMEM, -errno. */
int ad_leases_adopt_pool(ad_leases_t *leases, uid_t uid, int pool_fd,
                         const ad_leases_orphan_t *orphans, size_t orphan_count, uint64_t now_ms,
                         uint64_t *ret_serial);

/* Registers a client that re-registers after a restart, leasing from the
 * pool it hands back (adopted as by ad_leases_adopt_pool(), or found).
 * pool_fd is consumed in every case. Returns as ad_leases_client_new(), or
 * -EPERM (another uid's pool), -EINVAL (not a pool memfd). */
int ad_leases_client_reattach(ad_leases_t *leases, pid_t pid, uid_t uid, gid_t gid,
                              const char *name, int pool_fd, uint64_t now_ms,
                              uint64_t *ret_client_id);

/* Milliseconds the client's pool still takes claims (0: none). */
uint64_t ad_leases_grace_left(const ad_leases_t *leases, uint64_t client_id, uint64_t now_ms);

/* Whether the client's pool grants nothing now: a pool a client handed back
 * without a ledger (no fd store), in its grace period, where any free byte
 * may hold the lease of a client that has not come back yet. */
bool ad_leases_pool_paused(const ad_leases_t *leases, uint64_t client_id, uint64_t now_ms);

/* Makes [offset, offset + size) of the client's pool a lease of the client
 * again, under a new id, ACTIVE in its control region, not zeroed. Claims
 * count against the budget but are never refused for it (the data exists).
 * Returns 0 and *ret_grant, or -ESTALE (the pool takes no claims: grace over
 * and no orphan held, or never adopted), -EINVAL (unaligned, empty, outside
 * the pool), -EBUSY (overlaps another claim, or names no orphan of this
 * process; after the grace period only orphans held for their living
 * process are left), -EDQUOT (lease limit),
 * -ENOMEM, -ENOENT (no such client). */
int ad_leases_claim(ad_leases_t *leases, uint64_t client_id, uint64_t offset, uint64_t size,
                    uint64_t now_ms, ad_lease_grant_t *ret_grant);

void ad_leases_adopt_stats(const ad_leases_t *leases, ad_leases_adopt_stats_t *ret_stats);

/* Keeps the ledger (ledger.h) in step with every lease from now on: a
 * record per lease and per orphan, removed when it goes -- except when a
 * stopping daemon frees its clients without punching (their leases must
 * outlive it). The manager does not own the ledger. NULL: none. */
struct ad_ledger;
void ad_leases_set_ledger(ad_leases_t *leases, struct ad_ledger *ledger);

/* Called for every pool made or adopted from now on (fd owned by the
 * manager; ino names it), e.g. to put it into the fd store. */
typedef void (*ad_leases_pool_fn)(void *ctx, int fd, uid_t uid, uint64_t ino);
void ad_leases_set_pool_hook(ad_leases_t *leases, ad_leases_pool_fn fn, void *ctx);

/* ---- sharing (share.c; DESIGN.md section 8) ---------------------------------
 *
 * A holder of a lease registers a share and gets a token: "s" + 16 hex
 * digits of the token's id + "." + 40 hex digits of a 160-bit secret from
 * getrandom(2). Anyone presenting it may attach: the same pages become a
 * lease of the attacher (its own id, a control slot, never zeroed). The
 * extent lives while any holder does; the first holder is charged for it,
 * and when it goes the charge passes to the earliest remaining holder. An
 * extent an attacher holds is never reclaimed (the parked-lease reclaim
 * skips it). When the last holder goes, an extent that was ever attached
 * is punched at once. A token is void once unshared, spent (ONCE) or when
 * its sharer's lease goes (release, exit, crash).
 *
 * Who may attach: the token's uid (the sharer's own uid unless the share
 * names another). A pool extent is attached only by a client of the same
 * pool (pool memfds never cross a uid); another uid needs an own-memory
 * lease, whose memfd (sealed against growing and shrinking, mode 0600 so
 * nobody but the daemon's uid can reopen it through /proc) is sent to the
 * attacher -- a read-only open of it for a read-only share, so mprotect
 * cannot make the mapping writable. Failed attaches are counted per client:
 * more than AD_SHARE_MAX_FAILURES within a second are refused unchecked.
 *
 * Restarts: sharing does not survive a daemon restart. The ledger has one
 * record per extent (its charged holder's), so after a restart the charged
 * holder claims it back and the other holders' claims are refused (they
 * keep private copies); own-memory extents are in no pool and no ledger:
 * their holders keep their mappings, which no daemon counts any more. */

#define AD_SHARE_READONLY     0x1u  /* attachers map it read-only */
#define AD_SHARE_ONCE         0x2u  /* the first attach spends the token */
#define AD_SHARE_TOKEN_MAX    64u   /* with the NUL */
#define AD_SHARE_MAX_TOKENS   4096u /* live tokens per client */
#define AD_SHARE_MAX_FAILURES 8u    /* failed attaches per client per second */

typedef struct ad_leases_share_stats {
    uint64_t shares_total;          /* tokens made */
    uint64_t attaches_total;        /* successful attaches */
    uint64_t detaches_total;        /* holders of an attached extent that let go */
    uint64_t attach_failures_total; /* refused attaches (bad, spent, revoked, wrong uid) */
    uint64_t attach_limited_total;  /* of those, refused for the rate limit */
    uint64_t unshares_total;        /* tokens revoked by their sharer */
    uint64_t extents_freed_total;   /* shared extents whose last holder went */
    uint64_t shared_extents;        /* now */
    uint64_t shared_bytes;          /* their bytes now */
    uint64_t tokens;                /* live now */
    uint64_t own_memory_bytes;      /* in own-memory leases now */
} ad_leases_share_stats_t;

/* What an attach gives the attacher. */
typedef struct ad_lease_attach {
    ad_lease_grant_t grant; /* its own lease id; offset in its pool (0: own memory) */
    bool read_only;
    int fd; /* own memory: a dup the caller sends and closes; else -1 */
    uint64_t owner_lease_id;
} ad_lease_attach_t;

/* Leases size bytes of memory of its own to a client: a memfd sealed
 * against growing and shrinking, counted in the budget like any lease but
 * in no pool (so it may be shared across uids). When it does not fit,
 * parked leases are taken back (as ad_leases_request() does); then it is
 * refused at once: no queue. It is never parked or reclaimed itself. *ret_fd is a dup of the memfd
 * for the client (the caller sends and closes it). Returns 0, or the ad_leases_grant() errors,
 * -errno from memfd_create(). */
int ad_leases_grant_own(ad_leases_t *leases, uint64_t client_id, uint64_t size, uint64_t now_ms,
                        ad_lease_grant_t *ret_grant, int *ret_fd);

/* Registers a share of the client's lease lease_id (flags AD_SHARE_*; with
 * restrict_uid only `uid` may attach, else the client's uid) and writes its
 * token into ret_token (AD_SHARE_TOKEN_MAX bytes). Returns 0, or -ENOENT
 * (no such lease), -EPERM (another client's lease), -EINVAL (unknown
 * flags), -EXDEV (another uid for a pool lease: it needs own memory),
 * -EACCES (a read-only holder asks for a writable share), -EDQUOT (the
 * client has AD_SHARE_MAX_TOKENS live tokens), -ENOMEM, -errno from
 * getrandom(2). */
int ad_leases_share(ad_leases_t *leases, uint64_t client_id, uint64_t lease_id, uint32_t flags,
                    bool restrict_uid, uid_t uid, uint64_t now_ms,
                    char ret_token[AD_SHARE_TOKEN_MAX]);

/* Attaches the extent a token names to the client. Returns 0 and
 * *ret_attach, or -EINVAL (not a token: malformed or truncated), -ENOENT
 * (no such share: forged, revoked, spent, or its sharer let go), -EACCES
 * (the share is for another uid), -EXDEV (a pool extent of another pool),
 * -EBUSY (rate limited: too many failed attaches; the first refusal of a
 * window) or -EAGAIN (the next ones), -EDQUOT (max_leases_per_client, or
 * no control slot), -ENOMEM.
 * A client may attach an extent it holds already (another mapping). */
int ad_leases_attach(ad_leases_t *leases, uint64_t client_id, const char *token, uint64_t now_ms,
                     ad_lease_attach_t *ret_attach);

/* Revokes a token the client made. Returns 0 and *ret_share_id, or
 * -EINVAL, -ENOENT, -EPERM (another client's token). */
int ad_leases_unshare(ad_leases_t *leases, uint64_t client_id, const char *token, uint64_t now_ms,
                      uint64_t *ret_share_id);

void ad_leases_share_stats(const ad_leases_t *leases, ad_leases_share_stats_t *ret_stats);

/* Expensive validator for tests: per-client sums, the global lease index and
 * the heaps' leased bytes agree. Returns true when consistent. */
bool ad_leases_is_valid(const ad_leases_t *leases);

/* One pool heap, for ad_leases_foreach_pool(). */
struct ad_heap;
typedef struct ad_pool_view {
    uid_t uid;
    uint64_t serial;            /* daemon-wide pool number, from 1 */
    const struct ad_heap *heap; /* owned by the manager; read it during the call only */
} ad_pool_view_t;

/* Calls fn for every pool in (uid, serial) order until fn returns non-zero,
 * which is then returned. The callback must not change the manager. */
int ad_leases_foreach_pool(const ad_leases_t *leases,
                           int (*fn)(void *ctx, const ad_pool_view_t *view), void *ctx);

#endif
