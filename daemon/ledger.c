/* SPDX-License-Identifier: MIT
 *
 * ledger.c -- the compact lease ledger (see ledger.h for why and what).
 *
 * Layout: a 64-byte header {magic, version, records}, then `records`
 * records of 40 bytes (version 2; version 1 had 32, without the start time). Free slots are kept in
 * process memory (a stack of slot numbers below the high-water mark), never in the memfd: only the
 * records themselves need to survive the daemon.
 */
#include "ledger.h"

#include "memfd.h"
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define LEDGER_MAGIC   0x3147444c616e6572ULL /* "renaLDG1" */
#define LEDGER_VERSION 2u
#define LEDGER_HEADER  64u

typedef struct ledger_header {
    uint64_t magic;
    uint32_t version;
    uint32_t records;
} ledger_header_t;

struct ad_ledger {
    int fd;
    void *map;
    size_t map_len;
    uint32_t records;
    uint32_t hwm;   /* slots [0, hwm) have been used at least once */
    uint32_t *free; /* slots below hwm that are free */
    uint32_t free_n, free_cap;
    size_t count;
};

static ad_ledger_record_t *ledger_slot(const ad_ledger_t *l, uint32_t i)
{
    return (ad_ledger_record_t *)(void *)((char *)l->map + LEDGER_HEADER) + i;
}

static size_t ledger_bytes(uint32_t records)
{
    return LEDGER_HEADER + (size_t)records * sizeof(ad_ledger_record_t);
}

int ad_ledger_new(uint32_t records, ad_ledger_t **ret_ledger)
{
    if (records == 0 || !ret_ledger)
        return -EINVAL;
    ad_ledger_t *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->map_len = ledger_bytes(records);
    int r = ad_memfd_sealed("arenad-ledger", l->map_len, &l->fd, &l->map);
    if (r < 0) {
        free(l);
        return r;
    }
    ledger_header_t *h = l->map;
    h->magic = LEDGER_MAGIC;
    h->version = LEDGER_VERSION;
    h->records = records;
    l->records = records;
    *ret_ledger = l;
    return 0;
}

int ad_ledger_adopt(int fd, ad_ledger_t **ret_ledger)
{
    struct stat st;
    ledger_header_t h;
    if (fd < 0 || !ret_ledger || fstat(fd, &st) < 0 || st.st_size < (off_t)LEDGER_HEADER ||
        pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
        return -EINVAL;
    if (h.magic != LEDGER_MAGIC || h.version != LEDGER_VERSION || h.records == 0 ||
        (uint64_t)st.st_size != ledger_bytes(h.records))
        return -EINVAL;
    ad_ledger_t *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->map_len = (size_t)st.st_size;
    l->map = mmap(NULL, l->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (l->map == MAP_FAILED) {
        free(l);
        return -ENOMEM;
    }
    l->fd = fd;
    l->records = h.records;
    /* The records in use are the previous daemon's; the caller reads them
     * and then clears the ledger, so the free stack starts empty. */
    for (uint32_t i = 0; i < l->records; i++)
        if (atomic_load_explicit((_Atomic uint64_t *)&ledger_slot(l, i)->ino,
                                 memory_order_relaxed) != 0) {
            l->hwm = i + 1;
            l->count++;
        }
    *ret_ledger = l;
    return 0;
}

void ad_ledger_free(ad_ledger_t *l)
{
    if (!l)
        return;
    (void)munmap(l->map, l->map_len);
    (void)close(l->fd);
    free(l->free);
    free(l);
}

int ad_ledger_fd(const ad_ledger_t *l)
{
    return l ? l->fd : -1;
}

void ad_ledger_foreach(const ad_ledger_t *l,
                       void (*fn)(void *ctx, const ad_ledger_record_t *record), void *ctx)
{
    for (uint32_t i = 0; l && i < l->hwm; i++) {
        ad_ledger_record_t rec = *ledger_slot(l, i);
        if (rec.ino != 0)
            fn(ctx, &rec);
    }
}

void ad_ledger_clear(ad_ledger_t *l)
{
    if (!l)
        return;
    for (uint32_t i = 0; i < l->hwm; i++)
        atomic_store_explicit((_Atomic uint64_t *)&ledger_slot(l, i)->ino, 0, memory_order_relaxed);
    l->hwm = 0;
    l->free_n = 0;
    l->count = 0;
}

int ad_ledger_add(ad_ledger_t *l, uint64_t ino, uid_t uid, pid_t pid, uint64_t start,
                  uint64_t offset, uint64_t size, uint32_t *ret_slot)
{
    if (!l || ino == 0 || pid < 0 || !ret_slot)
        return -EINVAL;
    uint32_t slot;
    if (l->free_n > 0) {
        slot = l->free[--l->free_n];
    } else if (l->hwm < l->records) {
        slot = l->hwm++;
    } else {
        return -ENOSPC;
    }
    ad_ledger_record_t *rec = ledger_slot(l, slot);
    rec->uid = (uint32_t)uid;
    rec->pid = (uint32_t)pid;
    rec->offset = offset;
    rec->size = size;
    rec->start = pid > 0 ? start : 0;
    /* The inode last: only a whole record is ever in use. */
    atomic_store_explicit((_Atomic uint64_t *)&rec->ino, ino, memory_order_release);
    l->count++;
    *ret_slot = slot;
    return 0;
}

void ad_ledger_remove(ad_ledger_t *l, uint32_t slot)
{
    if (!l || slot == AD_LEDGER_NONE || slot >= l->hwm)
        return;
    ad_ledger_record_t *rec = ledger_slot(l, slot);
    if (atomic_load_explicit((_Atomic uint64_t *)&rec->ino, memory_order_relaxed) == 0)
        return;
    atomic_store_explicit((_Atomic uint64_t *)&rec->ino, 0, memory_order_release);
    l->count--;
    if (l->free_n == l->free_cap) {
        uint32_t cap = l->free_cap ? l->free_cap * 2 : 64;
        uint32_t *f = realloc(l->free, cap * sizeof(*f));
        if (!f)
            return; /* the slot is lost until the next restart; harmless */
        l->free = f;
        l->free_cap = cap;
    }
    l->free[l->free_n++] = slot;
}

size_t ad_ledger_count(const ad_ledger_t *l)
{
    return l ? l->count : 0;
}
