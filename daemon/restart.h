/* SPDX-License-Identifier: MIT
 *
 * restart.h -- surviving restarts through the service manager's file
 * descriptor store (DESIGN.md section 7).
 *
 * Under systemd (FileDescriptorStoreMax= in the unit), or under arenad's own
 * supervisor when started by hand (supervise.h, the same protocol), the
 * daemon hands every
 * pool memfd and its lease ledger (ledger.h) to the manager with FDSTORE=1,
 * named "pool-uid<UID>-<INODE>" and "ledger". When the daemon is restarted
 * -- crashed, killed or upgraded -- the manager passes them back
 * (LISTEN_FDS/LISTEN_FDNAMES) and the new daemon resumes: each pool is
 * adopted with the ledger's extents as orphans, which their clients claim
 * back when they reconnect, and which are freed when the grace period ends
 * (at once when the ledger's process is gone; not before it is gone when it
 * still lives, see lease.h).
 * Space the ledger does not name is punched and granted at once. Without a
 * fd store, pools come back from the clients alone (lease.h). This module
 * only glues: the manager (lease.c) does the adopting, notify.c the
 * talking; nothing here touches the protocol.
 */
#ifndef AD_RESTART_H
#define AD_RESTART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lease.h"

typedef struct ad_restart ad_restart_t;

/* One fd handed back by the service manager, with its name. */
typedef struct ad_stored_fd {
    int fd;
    char name[64];
} ad_stored_fd_t;

/* Puts fd into the fd store under name (FDSTORE=1, FDNAME=name). */
typedef int (*ad_fdstore_fn)(void *ctx, int fd, const char *name);

typedef struct ad_restart_stats {
    uint32_t pools_resumed; /* pools adopted from the store */
    uint64_t orphans;       /* ledger extents of the resumed pools */
    uint64_t orphan_bytes;
    uint64_t gone_bytes;  /* of those, freed at once: their process is gone */
    uint32_t fds_dropped; /* stored fds that were no pool or ledger (closed) */
    bool ledger_resumed;  /* the previous ledger was read */
} ad_restart_stats_t;

/* Resumes from stored (each fd is consumed: adopted or closed) and, when
 * store is not NULL, keeps the store up to date from now on: a ledger (the
 * stored one, or a new one that is stored) is attached to leases and every
 * new pool is stored. With store NULL and nothing stored, does nothing.
 * Returns 0 and *ret_restart (free it after the manager), or -ENOMEM,
 * -errno from making the ledger. */
int ad_restart_resume(ad_leases_t *leases, ad_stored_fd_t *stored, size_t count,
                      ad_fdstore_fn store, void *ctx, uint64_t now_ms, ad_restart_t **ret_restart);

void ad_restart_stats(const ad_restart_t *restart, ad_restart_stats_t *ret_stats);

/* Detaches nothing (call after ad_leases_free()): closes the ledger. NULL-safe. */
void ad_restart_free(ad_restart_t *restart);

#endif
