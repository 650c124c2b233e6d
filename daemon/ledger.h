/* SPDX-License-Identifier: MIT
 *
 * ledger.h -- the compact lease ledger: which extents of which pool are
 * leased, in a memfd that outlives the daemon in the service manager's file
 * descriptor store (DESIGN.md section 7).
 *
 * A restarted arenad gets its pools back from the store, but not its books;
 * the ledger is the part of the books it needs to tell "leased to a client
 * that will claim it back" from "free". It is one sparse memfd: a header
 * and a fixed array of 40-byte records {pool inode, uid, pid, offset, size,
 * start}, the inode naming the pool memfd and the pid and start time
 * (procid.h) the client process that holds the lease -- a pid alone would
 * let a process that reuses it inherit the lease (either 0: unknown). A
 * ledger of the 32-byte format of older arenads is not read (version 1):
 * its pools come back as pools with no ledger. Records are written in
 * place, each by a few plain stores into the shared mapping, and a record counts only while its
 * inode word is non-zero; that word is written last when a record is made
 * and first when it is cleared, so a daemon killed at any instruction
 * leaves at most one record half-written -- which the reader checks against
 * the pool and drops. Loop thread only; no system call per update.
 */
#ifndef AD_LEDGER_H
#define AD_LEDGER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct ad_ledger ad_ledger_t;

#define AD_LEDGER_NONE UINT32_MAX /* no record */

typedef struct ad_ledger_record {
    uint64_t ino; /* the pool memfd's inode; 0: a free record */
    uint32_t uid;
    uint32_t pid; /* the holding client's process; 0: unknown */
    uint64_t offset;
    uint64_t size;
    uint64_t start; /* the holding process's start time (procid.h); 0: unknown */
} ad_ledger_record_t;

/* Makes an empty ledger of `records` records (a sealed-size sparse memfd
 * named "arenad-ledger"). Returns 0, or -EINVAL (0 records), -errno. */
int ad_ledger_new(uint32_t records, ad_ledger_t **ret_ledger);

/* Takes over the ledger memfd of a previous daemon (fd is the ledger's on
 * success only). Returns 0, or -EINVAL (no ledger: wrong size or header). */
int ad_ledger_adopt(int fd, ad_ledger_t **ret_ledger);

/* Unmaps and closes; NULL-safe. */
void ad_ledger_free(ad_ledger_t *ledger);

/* The memfd (owned by the ledger), for the fd store. */
int ad_ledger_fd(const ad_ledger_t *ledger);

/* Calls fn for every record in use, in slot order. */
void ad_ledger_foreach(const ad_ledger_t *ledger,
                       void (*fn)(void *ctx, const ad_ledger_record_t *record), void *ctx);

/* Clears every record (after a resume has read them). */
void ad_ledger_clear(ad_ledger_t *ledger);

/* Records a lease of the process named by pid and start (either 0: unknown). Returns 0 and
 * *ret_slot, or -ENOSPC (full: the lease is simply not recorded, and a restart treats it as
 * unknown), -ENOMEM. */
int ad_ledger_add(ad_ledger_t *ledger, uint64_t ino, uid_t uid, pid_t pid, uint64_t start,
                  uint64_t offset, uint64_t size, uint32_t *ret_slot);

/* Clears the record in slot (AD_LEDGER_NONE: nothing). */
void ad_ledger_remove(ad_ledger_t *ledger, uint32_t slot);

/* Records in use. */
size_t ad_ledger_count(const ad_ledger_t *ledger);

#endif
