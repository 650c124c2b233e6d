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

#endif
