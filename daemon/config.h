/* SPDX-License-Identifier: MIT
 *
 * config.h -- arenad's settings: embedded defaults, a key = value file, and
 * command-line overrides, in that order. The keys and their meaning are listed
 * at the top of config.c.
 */
#ifndef AD_CONFIG_H
#define AD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lease.h"
#include "log.h"

#define AD_CONFIG_SOCKET_MAX 108 /* sizeof(sockaddr_un.sun_path) */
#define AD_CONFIG_ERR_MAX    512 /* room for any error message below */
#define AD_CONFIG_MAX_FAIR   64  /* uids with a weight, cap or guarantee */

/* Bits of ad_config_t.set: which keys were given explicitly. */
enum {
    AD_CONFIG_SET_SOCKET = 1u << 0,
    AD_CONFIG_SET_HEAP_SIZE = 1u << 1,
    AD_CONFIG_SET_BUDGET = 1u << 2,
};

typedef struct ad_config {
    char socket[AD_CONFIG_SOCKET_MAX]; /* empty until resolved by ad_config_finalize() */
    uint64_t budget;                   /* cap on bytes leased by all clients */
    uint64_t heap_size;                /* address space per pool; 0: 2 x budget */
    uint64_t small_lease_limit;        /* leases up to this are placed from the top */
    uint64_t decay_ms;                 /* released pages stay dirty this long */
    uint64_t restart_grace_ms;         /* adopted pools take claims this long */
    uint64_t parked_decay_ms;          /* parked leases are taken back after this long */
    uint64_t max_frame;                /* largest request frame accepted */
    uint64_t frame_timeout_ms;         /* a half-sent frame may wait this long; 0: forever */
    uint32_t max_clients;              /* connections at once (also max_connections) */
    uint32_t max_connections_per_uid;  /* 0: no per-uid cap; root is exempt */
    uint64_t hello_timeout_ms;         /* a connection must say hello this soon; 0: never */
    uint32_t max_requests_in_flight;   /* per connection, before reading stops; 0: no cap */
    uint64_t max_reply_queue;          /* unread reply bytes before a client is dropped */
    uint32_t max_leases_per_client;
    uint64_t max_bytes_per_uid; /* bytes all clients of one uid may lease; 0: no cap */
    ad_log_level_t log_level;
    uint32_t socket_mode; /* permission bits of the socket file */
    bool hugetlb;
    bool has_admin_group;
    gid_t admin_gid;
    bool has_socket_group; /* chown the socket file to socket_gid */
    gid_t socket_gid;
    unsigned set;                            /* AD_CONFIG_SET_* */
    ad_fair_rule_t fair[AD_CONFIG_MAX_FAIR]; /* weight.UID, cap.UID, guarantee.UID */
    size_t fair_count;
} ad_config_t;

/* Fills cfg with the embedded defaults (budget: 50% of physical RAM). */
void ad_config_defaults(ad_config_t *cfg);

/* Sets one key from its text value, as in the file. Returns 0, or -ENOENT
 * (unknown key) / -EINVAL / -ERANGE (bad value) with a one-line reason in err
 * (NUL-terminated, at most err_len bytes; err may be NULL). On failure cfg is
 * untouched. Example: ad_config_set(&cfg, "budget", "8G", err, sizeof(err)). */
int ad_config_set(ad_config_t *cfg, const char *key, const char *value, char *err, size_t err_len);

/* Applies the key = value lines of the file at path on top of cfg. Blank lines
 * and lines starting with '#' are skipped; values may be wrapped in double
 * quotes. Returns 0, or -errno from opening/reading the file, or the first
 * ad_config_set() error, with "PATH:LINE: reason" in err. On failure cfg is
 * untouched (nothing of the file is applied). */
int ad_config_load(ad_config_t *cfg, const char *path, char *err, size_t err_len);

/* Fills in derived values (heap_size 0 → 2 x budget; an empty socket → the
 * default path, see arena__default_socket_path()) and checks the whole.
 * Returns 0, or -EINVAL / -ENOENT with a reason in err, cfg untouched. */
int ad_config_finalize(ad_config_t *cfg, char *err, size_t err_len);

/* The lease manager's configuration from a finalized cfg: budget, heap size,
 * placement, decay, limits, grace period and fair-share rules. fair_rules
 * points into cfg->fair, so cfg must outlive *ret_config's use (the manager
 * copies the rules). The one place this mapping is written: start-up and
 * every reload build the manager's settings through it. */
void ad_config_leases(const ad_config_t *cfg, ad_leases_config_t *ret_config);

/* Bits of what ad_config_reload() returns: settings that name or size what
 * the running daemon built at start, so a reload cannot apply them. */
enum {
    AD_CONFIG_RESTART_SOCKET = 1u << 0,            /* the bound listening socket */
    AD_CONFIG_RESTART_HEAP_SIZE = 1u << 1,         /* the pools' memfds (also 2 x budget) */
    AD_CONFIG_RESTART_SMALL_LEASE_LIMIT = 1u << 2, /* placement in pools made at start */
    AD_CONFIG_RESTART_HUGETLB = 1u << 3,           /* how the pools' memfds were made */
    AD_CONFIG_RESTART_MAX_FRAME = 1u << 4,         /* the decoder's frame limit */
};

/* A reload: copies into cur every setting of next that applies live --
 * budget, decay_ms, restart_grace_ms, the connection caps and timeouts, the
 * lease limits, log_level, admin_group and the fair-share rules -- and keeps
 * cur's value of every restart-only one. socket_mode and socket_group are
 * left to the caller, since they hold only once the socket file is changed.
 * Returns the AD_CONFIG_RESTART_* bits of the restart-only settings that
 * next changes (0: everything applies). Example: after
 * ad_config_reload(&cur, &next), ad_config_leases(&cur, &lc) gives what
 * ad_leases_reconfigure() needs. */
unsigned ad_config_reload(ad_config_t *cur, const ad_config_t *next);

/* The configuration key of one AD_CONFIG_RESTART_* bit ("heap_size"), or
 * NULL for anything else. */
const char *ad_config_restart_key(unsigned bit);

#endif
