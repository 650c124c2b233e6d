/* SPDX-License-Identifier: MIT
 *
 * restart.c -- resuming from the service manager's fd store (see restart.h).
 *
 * Order matters: the stored ledger is read and cleared before any pool is
 * adopted, the ledger is attached to the manager before the adoptions (so
 * the orphans are recorded again at once: a second crash during the grace
 * period loses nothing either), and the store hook is set after them (the
 * stored pools are in the store already).
 */
#include "restart.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ledger.h"

#define RESTART_LEDGER_RECORDS (1u << 20) /* 32 MiB of address space, sparse */

struct ad_restart {
    ad_ledger_t *ledger;
    ad_fdstore_fn store;
    void *ctx;
    ad_restart_stats_t stats;
};

typedef struct records {
    ad_ledger_record_t *items;
    size_t count, cap;
    bool failed;
} records_t;

static void collect(void *ctx, const ad_ledger_record_t *rec)
{
    records_t *r = ctx;
    if (r->count == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 256;
        ad_ledger_record_t *items = realloc(r->items, cap * sizeof(*items));
        if (!items) {
            r->failed = true;
            return;
        }
        r->items = items;
        r->cap = cap;
    }
    r->items[r->count++] = *rec;
}

/* "pool-uid<UID>-<INODE>": 0 and the uid, or -EINVAL. */
static int parse_pool_name(const char *name, uid_t *ret_uid)
{
    unsigned long uid;
    unsigned long long ino;
    char tail;
    if (sscanf(name, "pool-uid%lu-%llu%c", &uid, &ino, &tail) != 2 || uid > UINT32_MAX)
        return -EINVAL;
    *ret_uid = (uid_t)uid;
    return 0;
}

static void store_pool(void *ctx, int fd, uid_t uid, uint64_t ino)
{
    ad_restart_t *rs = ctx;
    char name[64];
    (void)snprintf(name, sizeof(name), "pool-uid%lu-%" PRIu64, (unsigned long)uid, ino);
    (void)rs->store(rs->ctx, fd, name);
}

int ad_restart_resume(ad_leases_t *leases, ad_stored_fd_t *stored, size_t count,
                      ad_fdstore_fn store, void *ctx, uint64_t now_ms, ad_restart_t **ret_restart)
{
    ad_restart_t *rs = calloc(1, sizeof(*rs));
    if (!rs)
        return -ENOMEM;
    rs->store = store;
    rs->ctx = ctx;
    records_t recs = {0};
    for (size_t i = 0; i < count; i++) {
        if (strcmp(stored[i].name, "ledger") != 0 || stored[i].fd < 0)
            continue;
        if (!rs->ledger && ad_ledger_adopt(stored[i].fd, &rs->ledger) == 0) {
            rs->stats.ledger_resumed = true;
        } else {
            (void)close(stored[i].fd);
            rs->stats.fds_dropped++;
        }
        stored[i].fd = -1;
    }
    if (rs->ledger) {
        ad_ledger_foreach(rs->ledger, collect, &recs);
        ad_ledger_clear(rs->ledger);
        if (recs.failed)
            recs.count = 0; /* no memory for the books: the pools come back unknown */
    } else if (store) {
        int r = ad_ledger_new(RESTART_LEDGER_RECORDS, &rs->ledger);
        if (r < 0) {
            free(rs);
            return r;
        }
        (void)store(ctx, ad_ledger_fd(rs->ledger), "ledger");
    }
    if (rs->ledger)
        ad_leases_set_ledger(leases, rs->ledger);

    ad_leases_adopt_stats_t before, after;
    ad_leases_adopt_stats(leases, &before);
    ad_leases_orphan_t *orphans = recs.count ? calloc(recs.count, sizeof(*orphans)) : NULL;
    for (size_t i = 0; i < count; i++) {
        int fd = stored[i].fd;
        uid_t uid;
        struct stat st;
        if (fd < 0)
            continue;
        stored[i].fd = -1;
        if (parse_pool_name(stored[i].name, &uid) < 0 || fstat(fd, &st) < 0) {
            (void)close(fd);
            rs->stats.fds_dropped++;
            continue;
        }
        size_t n = 0;
        uint64_t bytes = 0;
        for (size_t k = 0; orphans && k < recs.count; k++) {
            const ad_ledger_record_t *rec = &recs.items[k];
            if (rec->ino == (uint64_t)st.st_ino && rec->uid == (uint32_t)uid) {
                orphans[n++] =
                    (ad_leases_orphan_t){rec->offset, rec->size, (pid_t)rec->pid, rec->start};
                bytes += rec->size;
            }
        }
        /* With a ledger, a pool it names nothing in was simply idle: all
         * of it is free. Without one, nothing is known. */
        static const ad_leases_orphan_t none;
        bool known = rs->stats.ledger_resumed && (orphans || recs.count == 0);
        const ad_leases_orphan_t *list = !known ? NULL : (n ? orphans : &none);
        int r = ad_leases_adopt_pool(leases, uid, fd, list, n, now_ms, NULL);
        if (r < 0) {
            (void)close(fd);
            rs->stats.fds_dropped++;
            continue;
        }
        rs->stats.pools_resumed++;
        rs->stats.orphans += n;
        rs->stats.orphan_bytes += bytes;
    }
    free(orphans);
    free(recs.items);
    ad_leases_adopt_stats(leases, &after);
    rs->stats.gone_bytes = after.unclaimed_bytes_total - before.unclaimed_bytes_total;
    if (store)
        ad_leases_set_pool_hook(leases, store_pool, rs);
    *ret_restart = rs;
    return 0;
}

void ad_restart_stats(const ad_restart_t *rs, ad_restart_stats_t *ret_stats)
{
    *ret_stats = rs->stats;
}

void ad_restart_free(ad_restart_t *rs)
{
    if (!rs)
        return;
    ad_ledger_free(rs->ledger);
    free(rs);
}
