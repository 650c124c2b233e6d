/* SPDX-License-Identifier: MIT
 *
 * admin.h -- status, listings, reclaim and metrics, with the visibility rule:
 * privileged callers (root, the daemon's uid, the admin group) see and act on
 * everything, everyone else on their own uid only.
 */
#ifndef AD_ADMIN_H
#define AD_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "heapmap.h"
#include "lease.h"
#include "wire.h"

typedef struct ad_admin ad_admin_t;

/* Counters that the server and the dispatcher bump; admin only reads them. */
typedef struct ad_admin_counters {
    uint64_t protocol_errors_total;
    uint64_t connections_total;
    uint64_t connections_refused_total;
} ad_admin_counters_t;

typedef struct ad_admin_caller {
    uid_t uid;
    bool privileged; /* see ad_admin_is_privileged() */
} ad_admin_caller_t;

/* Creates the admin view over leases (borrowed; must outlive it). socket_path
 * is copied; start_ms is the daemon's start on the clock `now_ms` uses below.
 * Returns 0, or -EINVAL, -ENOMEM. */
int ad_admin_new(ad_leases_t *leases, const char *socket_path, uint64_t start_ms,
                 ad_admin_t **ret_admin);

/* NULL-safe. */
void ad_admin_free(ad_admin_t *admin);

/* The counters, for the server and the dispatcher to bump. */
ad_admin_counters_t *ad_admin_counters(ad_admin_t *admin);

/* Sets (or, with has_group false, clears) the admin group (reload). */
void ad_admin_set_group(ad_admin_t *admin, bool has_group, gid_t gid);

/* Decides whether a peer is privileged: uid 0, the daemon's effective uid, or
 * (when an admin group is set) primary gid or one of groups[0..ngroups) equal
 * to it. */
bool ad_admin_is_privileged(const ad_admin_t *admin, uid_t uid, gid_t gid, const gid_t *groups,
                            size_t ngroups);

/* Fills *ret_status with daemon-wide figures (any caller may see them; they
 * name no client). Strings point into admin and stay valid until it is freed. */
void ad_admin_status(const ad_admin_t *admin, uint64_t now_ms, ad_wire_status_t *ret_status);

/* The clients the caller may see, as a malloc'd array the caller frees
 * (names point into the manager: use before changing it). Returns 0, or
 * -ENOMEM; *ret_items is NULL when *ret_count is 0. */
int ad_admin_list_clients(const ad_admin_t *admin, const ad_admin_caller_t *caller, uint64_t now_ms,
                          ad_wire_client_info_t **ret_items, size_t *ret_count);

/* The leases of client_id (0: all) the caller may see, as for
 * ad_admin_list_clients(). Returns 0, -ENOENT (client_id names no client the
 * caller may see), -ENOMEM. */
int ad_admin_list_leases(const ad_admin_t *admin, const ad_admin_caller_t *caller,
                         uint64_t client_id, uint64_t now_ms, ad_wire_lease_info_t **ret_items,
                         size_t *ret_count);

/* Takes parked leases back, then punches dirty pages, up to bytes (0: all):
 * of every client and in every pool for a
 * privileged caller with client_id 0, else in the pool of the uid of
 * client_id (or the caller's own uid when 0). Returns 0 and *ret_bytes, or
 * -ENOENT (no such client), -EPERM (another uid's client, unprivileged). */
int ad_admin_reclaim(ad_admin_t *admin, const ad_admin_caller_t *caller, uint64_t bytes,
                     uint64_t client_id, uint64_t now_ms, uint64_t *ret_bytes);

/* Up to max (0 or above AD_ADMIN_EVENTS_PAGE: that many) events of the
 * daemon's log with seq > since, as a malloc'd array the caller frees (NULL
 * when none), with *ret_dropped (events after `since` the ring lost) and
 * *ret_last_seq. Times are milliseconds of daemon uptime. The log names
 * every client, so only privileged callers may read it. Returns 0, or
 * -EPERM, -ENOMEM, -EINVAL. */
#define AD_ADMIN_EVENTS_PAGE 1024u
int ad_admin_events(const ad_admin_t *admin, const ad_admin_caller_t *caller, uint64_t since,
                    uint32_t max, ad_wire_event_t **ret_items, size_t *ret_count,
                    uint64_t *ret_dropped, uint64_t *ret_last_seq);

/* The Prometheus text exposition (format 0.0.4) of the daemon's figures and
 * of the clients the caller may see, as a malloc'd NUL-terminated string.
 * Returns 0 and *ret_text, or -ENOMEM. */
int ad_admin_metrics(const ad_admin_t *admin, const ad_admin_caller_t *caller, uint64_t now_ms,
                     char **ret_text);

/* The heap map (heapmap.h) of the pools of uid (by_uid), or of every pool
 * the caller may see: all for a privileged caller, else those of its own
 * uid. Returns 0 and *ret_map (free with ad_heapmap_clear()), or -EPERM
 * (another uid, unprivileged), -ENOENT (no pool of uid), -EINVAL, -ENOMEM. */
int ad_admin_map(const ad_admin_t *admin, const ad_admin_caller_t *caller, bool by_uid, uid_t uid,
                 size_t max_extents, ad_wire_map_t *ret_map);

#endif
