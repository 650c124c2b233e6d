/* SPDX-License-Identifier: MIT
 *
 * region.c -- where the heaps, slabs and bump arenas get their memory
 * (declared in alloc/internal.h).
 *
 * A region is a lease from arenad through the default connection, mapped at
 * the alignment asked for (arena__conn_lease_aligned()). When no daemon
 * answers (connect fails, or the connection died) and the process allows it,
 * the region is anonymous memory instead, mapped aligned by over-reserving
 * and trimming both ends. The decision is remembered: after a failed attempt
 * with fallback allowed, the daemon is not asked again for a few seconds, so a
 * program without a daemon does not pay a connect() per segment. Fallback is
 * allowed by arena__region_allow_fallback(true) or ARENA_FALLBACK=1, and
 * forbidden whatever else says by ARENA_REQUIRE_DAEMON=1. Other lease errors
 * (no memory in the budget, limits) are returned as they are: falling back
 * then would defeat the budget.
 *
 * Every live region is in a registry (mmap'd array under reg_lock), for two
 * reasons: release must know what a region really is now (a fork child's
 * copies are anonymous although the caller's struct still says "lease"), and
 * the fork child handler must find every shared mapping to replace it with a
 * private copy (mmap anonymous, memcpy, mremap MREMAP_FIXED over the old
 * address: atomic, no window where the address is unmapped). The child then
 * holds no lease and must not speak on the parent's connection; it asks the
 * daemon through a connection of its own, made on first need.
 *
 * Parking cache (DESIGN.md sections 5 and 6). A region the heaps give back
 * (arena__region_give_back(): an empty segment, or a freed huge object) is
 * not released: its lease is parked (mapping PROT_NONE, state word PARKED)
 * and the region waits in a process-wide cache. The daemon takes a parked
 * lease back after its parked decay (parked_decay_ms, 1 s by default), or at
 * once when a request does not fit, without our help (a stopped or blocked
 * process loses it all the same); until then, the next
 * arena__region_acquire() of that size gets it back with a CAS and an
 * mprotect instead of a round trip (a huge block comes here only once
 * hugecache.c has stopped keeping it resident, purged). A huge request
 * takes the smallest entry
 * that fits, at most an eighth larger; a segment only its exact size.
 * Unparked memory is not known to be zero. Entries can disappear behind the
 * cache's back (a LeaseReclaimed note, the default trim's
 * arena__conn_release_parked(), a disconnect): the unpark then says
 * ARENA_ERECLAIMED or -ENOENT and the entry is dropped, never unmapped here
 * (its address may be someone else's mapping by now).
 *
 * The bound, PARK_CACHE_MAX entries and PARK_CACHE_BYTES (128 MiB): a
 * parked lease keeps whatever pages it still has resident until the daemon
 * takes it, and it holds a lease slot. The bound covers the phase swings of a
 * busy program (a burst of frees followed by a burst of mallocs) within the
 * decay window; a full cache releases its oldest entry, since the region
 * given back now is the one most likely reused next. Heaps purge a free span
 * after the decay time, so a segment parked by the purge tick or a trim has
 * no pages left anyway; one parked at once by a free keeps its pages for a
 * hot reuse, and arena__region_park_purge() (the heaps' purge tick, and
 * arena_trim) purges it once it has been parked for the decay time if the
 * daemon has not taken it by then: a parked mapping cannot be purged, so it
 * is unparked, purged and parked again, three system calls once per region.
 *
 * Parked regions are not in the registry: the fork child handler copies
 * every registered shared region, and a PROT_NONE one cannot be read. The
 * cache is guarded by reg_lock, and a region moves between registry and
 * cache (park or unpark included) without dropping the lock, so a fork sees
 * every region in exactly one of them. The child unmaps the parent's parked
 * regions and empties the cache: they are the parent's leases, which the
 * child must never unpark or release.
 *
 * The layer above keeps freed huge blocks mapped and ACTIVE for the decay
 * window (hugecache.c). It registers two hooks here: the park purge (the
 * heaps' purge tick, the idle action, arena_trim) and the park release
 * (pressure) give its blocks back first, forced or by age as they are
 * asked, so the heaps need not know of it; and parked_bytes counts them.
 *
 * Thread-safe; reg_lock and child_lock are taken on slow paths only. Never
 * calls malloc (see conn.h). reg_lock may be held while the connection's
 * table lock is taken (parking), never the reverse; no daemon call is made
 * with reg_lock held.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arena.h"
#include "conn.h"
#include "alloc/internal.h"

#define NODAEMON_RETRY_MS 3000u
#define PARK_CACHE_MAX    64u                                /* entries (see the head) */
#define PARK_CACHE_BYTES  ((int64_t)ARENA__PARK_CACHE_BYTES) /* bytes (see the head) */

typedef struct reg_entry {
    arena__region_t region;
    arena_conn_t *conn; /* NULL: the default connection */
} reg_entry_t;

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static reg_entry_t *reg;
static size_t reg_len, reg_cap;

/* A parked region. dirty: it may still hold pages (it was parked without
 * being purged); parked_ms: when (arena__now_ms()). */
typedef struct park_entry {
    reg_entry_t e;
    uint64_t parked_ms;
    bool dirty;
} park_entry_t;

/* Parked regions, most recently parked last (reg_lock). */
static park_entry_t park_cache[PARK_CACHE_MAX];
static size_t park_len;
static _Atomic int64_t park_bytes;  /* relaxed: a statistic (written under reg_lock) */
static _Atomic uint32_t park_dirty; /* entries with dirty set (written under reg_lock) */
static _Atomic uint64_t park_hits, park_lost;

static _Atomic(arena__region_kept_purge_fn) kept_purge_hook;
static _Atomic(arena__region_kept_bytes_fn) kept_bytes_hook;

static _Atomic int fallback_api; /* arena__region_allow_fallback() */
static _Atomic int env_mode;     /* 0 unread, 1 fallback, 2 require daemon, 3 neither */
static _Atomic uint64_t nodaemon_until;
static _Atomic bool detached; /* fork child: the default connection is the parent's */
static pthread_mutex_t child_lock = PTHREAD_MUTEX_INITIALIZER;
static arena_conn_t *child_conn;
static __thread int call_depth; /* inside a daemon call from here */

void arena__region_set_kept_hooks(arena__region_kept_purge_fn purge,
                                  arena__region_kept_bytes_fn bytes)
{
    atomic_store_explicit(&kept_purge_hook, purge, memory_order_release);
    atomic_store_explicit(&kept_bytes_hook, bytes, memory_order_release);
}

/* The kept blocks of the layer above (see the head). */
static size_t kept_purge(bool force, uint64_t now_ms)
{
    arena__region_kept_purge_fn hook = atomic_load_explicit(&kept_purge_hook, memory_order_acquire);
    return hook != NULL ? hook(force, now_ms) : 0;
}

bool arena__region_in_call(void)
{
    return call_depth > 0;
}

void arena__region_allow_fallback(bool allow)
{
    atomic_store_explicit(&fallback_api, allow ? 1 : 0, memory_order_relaxed);
}

static bool env_is_one(const char *name)
{
    /* Read once, on the first region; programs set these before starting
     * threads, if at all. */
    const char *v = getenv(name); /* NOLINT(concurrency-mt-unsafe) */
    return v != NULL && v[0] == '1' && v[1] == '\0';
}

static bool fallback_allowed(void)
{
    int mode = atomic_load_explicit(&env_mode, memory_order_relaxed);
    if (mode == 0) {
        mode = env_is_one("ARENA_REQUIRE_DAEMON") ? 2 : env_is_one("ARENA_FALLBACK") ? 1 : 3;
        atomic_store_explicit(&env_mode, mode, memory_order_relaxed);
    }
    if (mode == 2) {
        return false;
    }
    return mode == 1 || atomic_load_explicit(&fallback_api, memory_order_relaxed) != 0;
}

/* Adds a region to the registry; reg_lock held. Returns 0 or -ENOMEM. */
static int reg_add_locked(const arena__region_t *region, arena_conn_t *conn)
{
    if (reg_len == reg_cap) {
        size_t ncap = reg_cap == 0 ? 256 : reg_cap * 2;
        void *mem;
        if (reg == NULL) {
            mem = mmap(NULL, ncap * sizeof(*reg), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        } else {
            mem = mremap(reg, reg_cap * sizeof(*reg), ncap * sizeof(*reg), MREMAP_MAYMOVE);
        }
        if (mem == MAP_FAILED) {
            return -ENOMEM;
        }
        reg = mem;
        reg_cap = ncap;
    }
    reg[reg_len].region = *region;
    reg[reg_len].conn = conn;
    reg_len++;
    return 0;
}

static int reg_add(const arena__region_t *region, arena_conn_t *conn)
{
    (void)pthread_mutex_lock(&reg_lock);
    int r = reg_add_locked(region, conn);
    (void)pthread_mutex_unlock(&reg_lock);
    return r;
}

/* Takes the entry of the region at addr out of the registry; reg_lock held. */
static bool reg_take_locked(const void *addr, reg_entry_t *ret_entry)
{
    for (size_t i = reg_len; i-- > 0;) {
        if (reg[i].region.addr == addr) {
            *ret_entry = reg[i];
            reg[i] = reg[--reg_len];
            return true;
        }
    }
    return false;
}

/* The connection to lease through: the default one, or in a fork child one
 * of its own. */
static int region_conn(arena_conn_t **ret_conn, bool *ret_default)
{
    if (!atomic_load_explicit(&detached, memory_order_acquire)) {
        *ret_default = true;
        return arena__conn_default(ret_conn);
    }
    *ret_default = false;
    int r = 0;
    (void)pthread_mutex_lock(&child_lock);
    if (child_conn == NULL) {
        r = arena_connect(NULL, &child_conn);
    }
    if (r == 0) {
        *ret_conn = child_conn;
    }
    (void)pthread_mutex_unlock(&child_lock);
    return r;
}

static arena_lease_t lease_of(const arena__region_t *region)
{
    arena_lease_t lease = {.addr = region->addr,
                           .size = region->size,
                           .id = region->lease_id,
                           .zeroed = region->zeroed};
    return lease;
}

bool arena__region_purge(bool anonymous, void *addr, size_t len)
{
    if (!anonymous && madvise(addr, len, MADV_REMOVE) == 0) {
        return true;
    }
    return madvise(addr, len, MADV_DONTNEED) == 0;
}

/* Removes cache entry i (its counters too); reg_lock held. */
static void park_entry_forget(size_t i)
{
    arena__atomic_add_relaxed(&park_bytes, -(int64_t)park_cache[i].e.region.size);
    if (park_cache[i].dirty) {
        atomic_fetch_sub_explicit(&park_dirty, 1, memory_order_relaxed);
    }
    memmove(&park_cache[i], &park_cache[i + 1], (park_len - i - 1) * sizeof(park_cache[0]));
    park_len--;
}

/* The connection to park or unpark through, resolved BEFORE reg_lock is
 * taken: entries say NULL for the default connection, and making that one
 * again (after arena_disconnect()) would be a daemon exchange. NULL when
 * there is none now: a NULL entry is then gone (a disconnect unmapped it). */
static arena_conn_t *park_default_conn(void)
{
    arena_conn_t *conn = NULL;
    if (atomic_load_explicit(&detached, memory_order_acquire) || arena__conn_default(&conn) < 0) {
        return NULL;
    }
    return conn;
}

int arena__region_move(arena__region_t *region, void *new_addr)
{
    if (region == NULL || region->addr == NULL || new_addr == NULL) {
        return -EINVAL;
    }
    if (new_addr == region->addr) {
        return 0;
    }
    arena_conn_t *def = park_default_conn();
    int r = -ENOENT;
    (void)pthread_mutex_lock(&reg_lock);
    for (size_t i = reg_len; i-- > 0;) {
        reg_entry_t *e = &reg[i];
        if (e->region.addr != region->addr) {
            continue;
        }
        if (e->region.anonymous) {
            r = mremap(e->region.addr, e->region.size, e->region.size,
                       MREMAP_MAYMOVE | MREMAP_FIXED, new_addr) == MAP_FAILED
                    ? -errno
                    : 0;
        } else {
            arena_conn_t *conn = e->conn != NULL ? e->conn : def;
            r = conn == NULL ? -ENOENT
                             : arena__conn_move(conn, e->region.lease_id, e->region.addr,
                                                e->region.size, new_addr);
        }
        if (r == 0) {
            /* Under reg_lock, so a fork copies it where it now is. */
            e->region.addr = new_addr;
            region->addr = new_addr;
        }
        break;
    }
    (void)pthread_mutex_unlock(&reg_lock);
    return r;
}

/* Gets a parked region of `size` bytes whose address is aligned to align
 * back from the cache: unparked (CAS, mprotect) and registered again.
 * Entries the daemon took meanwhile (ARENA_ERECLAIMED), or that the
 * connection no longer knows (-ENOENT: released by the default trim, or the
 * connection was dropped), are forgotten; any other failure releases the
 * lease. Returns true and *ret_region (zeroed false: the pages are whatever
 * was left in them), false when nothing fits. */
/* Which cache entry serves a region of size bytes aligned to align: the
 * smallest one that fits, at most an eighth larger (a huge object never
 * wastes more), the most recently parked among equals; a segment
 * (ARENA__SEGMENT_SIZE) takes exactly its size. Returns the entry's index
 * plus one, or 0 for none. reg_lock held. */
static size_t park_pick(size_t size, size_t align)
{
    size_t slack = size == ARENA__SEGMENT_SIZE ? 0 : size / 8;
    size_t best = 0, best_size = SIZE_MAX;
    for (size_t i = park_len; i > 0; i--) {
        const arena__region_t *r = &park_cache[i - 1].e.region;
        if (r->size >= size && r->size - size <= slack && r->size < best_size &&
            (uintptr_t)r->addr % align == 0) {
            best = i;
            best_size = r->size;
            if (r->size == size) {
                break;
            }
        }
    }
    return best;
}

static bool park_take(size_t size, size_t align, arena__region_t *ret_region)
{
    if (atomic_load_explicit(&park_bytes, memory_order_relaxed) == 0) {
        return false;
    }
    bool got = false;
    arena_conn_t *def = park_default_conn();
    (void)pthread_mutex_lock(&reg_lock);
    for (;;) {
        size_t i = park_pick(size, align);
        if (i == 0) {
            break;
        }
        reg_entry_t e = park_cache[i - 1].e;
        park_entry_forget(i - 1);
        arena_lease_t lease = lease_of(&e.region);
        arena_conn_t *conn = e.conn != NULL ? e.conn : def;
        int r = -ENOENT;
        if (conn != NULL) {
            call_depth++;
            r = arena__lease_unpark(conn, &lease);
            call_depth--;
        }
        if (r == 0) {
            e.region.zeroed = false;
            if (reg_add_locked(&e.region, e.conn) == 0) {
                atomic_fetch_add_explicit(&park_hits, 1, memory_order_relaxed);
                *ret_region = e.region;
                got = true;
                break;
            }
        } else if (r == ARENA_ERECLAIMED || r == -ENOENT) {
            /* Gone: the connection has unmapped it already. */
            atomic_fetch_add_explicit(&park_lost, 1, memory_order_relaxed);
            continue;
        }
        /* Ours but unusable (mprotect failed, no room in the registry):
         * give it back, outside the lock (a daemon call). */
        (void)pthread_mutex_unlock(&reg_lock);
        call_depth++;
        (void)arena_release(e.conn, &lease);
        call_depth--;
        (void)pthread_mutex_lock(&reg_lock);
    }
    (void)pthread_mutex_unlock(&reg_lock);
    return got;
}

static int region_anonymous(size_t size, size_t align, arena__region_t *ret_region)
{
    uint8_t *base = arena__conn_map_aligned(size, align, PROT_READ | PROT_WRITE);
    if (base == NULL) {
        return -ENOMEM;
    }
    arena__region_t region = {
        .addr = base, .size = size, .lease_id = 0, .zeroed = true, .anonymous = true};
    int r = reg_add(&region, NULL);
    if (r < 0) {
        (void)munmap(base, size);
        return r;
    }
    *ret_region = region;
    return 0;
}

static bool is_connection_error(int r)
{
    return r == ARENA_ENODAEMON || r == ARENA_EDISCONNECTED;
}

int arena__region_acquire(size_t size, size_t align, arena__region_t *ret_region)
{
    size_t page = (size_t)getpagesize();
    if (ret_region == NULL || size == 0 || size % page != 0 || align < page ||
        (align & (align - 1)) != 0) {
        return -EINVAL;
    }
    if (park_take(size, align, ret_region)) {
        return 0;
    }
    bool fallback = fallback_allowed();
    uint64_t now = arena__now_ms();
    if (fallback && now < atomic_load_explicit(&nodaemon_until, memory_order_relaxed)) {
        return region_anonymous(size, align, ret_region);
    }
    arena_conn_t *conn = NULL;
    bool is_default = true;
    call_depth++;
    int r = region_conn(&conn, &is_default);
    if (r == 0) {
        arena_lease_t lease;
        r = arena__conn_lease_aligned(conn, size, align, 0, &lease);
        call_depth--;
        if (r == 0) {
            arena__region_t region = {.addr = lease.addr,
                                      .size = lease.size,
                                      .lease_id = lease.id,
                                      .zeroed = lease.zeroed,
                                      .anonymous = false};
            r = reg_add(&region, is_default ? NULL : conn);
            if (r < 0) {
                call_depth++;
                (void)arena_release(conn, &lease);
                call_depth--;
                return r;
            }
            *ret_region = region;
            return 0;
        }
        if (!is_connection_error(r)) {
            return r;
        }
    } else {
        call_depth--;
    }
    if (!fallback) {
        return is_connection_error(r) ? ARENA_ENODAEMON : r;
    }
    atomic_store_explicit(&nodaemon_until, now + NODAEMON_RETRY_MS, memory_order_relaxed);
    return region_anonymous(size, align, ret_region);
}

int arena__region_release(const arena__region_t *region)
{
    if (region == NULL || region->addr == NULL) {
        return -EINVAL;
    }
    reg_entry_t e;
    (void)pthread_mutex_lock(&reg_lock);
    bool found = reg_take_locked(region->addr, &e);
    (void)pthread_mutex_unlock(&reg_lock);
    if (!found) {
        e.region = *region;
        e.conn = NULL;
    }
    if (e.region.anonymous) {
        return munmap(e.region.addr, e.region.size) == 0 ? 0 : -errno;
    }
    arena_lease_t lease = lease_of(&e.region);
    call_depth++;
    int r = arena_release(e.conn, &lease);
    call_depth--;
    /* No munmap of our own on failure: a lease the connection does not
     * track (-ENOENT) was already unmapped by it (arena_disconnect() of the
     * default connection, a reclaim), and its address may be someone
     * else's mapping by now. */
    return r;
}

/* Releases a parked lease taken out of the cache (reg_lock not held: a
 * daemon call). The connection unparks it first, or learns that the daemon
 * took it: then there is nothing to give back. True when it was released. */
static bool park_release_entry(const reg_entry_t *e)
{
    arena_lease_t lease = lease_of(&e->region);
    call_depth++;
    int r = arena_release(e->conn, &lease);
    call_depth--;
    return r == 0;
}

int arena__region_give_back(const arena__region_t *region)
{
    if (region == NULL || region->addr == NULL) {
        return -EINVAL;
    }
    if (!region->anonymous && (int64_t)region->size <= PARK_CACHE_BYTES / 2) {
        arena_conn_t *def = park_default_conn();
        (void)pthread_mutex_lock(&reg_lock);
        reg_entry_t e, oldest[PARK_CACHE_MAX];
        size_t evicted = 0;
        if (reg_take_locked(region->addr, &e)) {
            /* A full cache makes room by its oldest entries: the region given
             * back now is the one most likely reused next. They are released
             * below, outside the lock (daemon calls). */
            while (park_len > 0 && (park_len == PARK_CACHE_MAX ||
                                    atomic_load_explicit(&park_bytes, memory_order_relaxed) +
                                            (int64_t)e.region.size >
                                        PARK_CACHE_BYTES)) {
                oldest[evicted++] = park_cache[0].e;
                park_entry_forget(0);
            }
            int r = -ENOTSUP;
            arena_conn_t *conn = e.conn != NULL ? e.conn : def;
            if (!e.region.anonymous && conn != NULL) {
                arena_lease_t lease = lease_of(&e.region);
                /* No daemon exchange in here (the connection is resolved
                 * above); call_depth keeps any trim hook out all the same. */
                call_depth++;
                r = arena__lease_park(conn, &lease);
                call_depth--;
            }
            if (r == 0) {
                park_entry_t *pe = &park_cache[park_len++];
                pe->e = e;
                pe->parked_ms = arena__now_ms();
                /* The caller's copy says whether the segment is all purged. */
                pe->dirty = !region->zeroed;
                if (pe->dirty) {
                    atomic_fetch_add_explicit(&park_dirty, 1, memory_order_relaxed);
                }
                arena__atomic_add_relaxed(&park_bytes, (int64_t)e.region.size);
                (void)pthread_mutex_unlock(&reg_lock);
                for (size_t k = 0; k < evicted; k++) {
                    (void)park_release_entry(&oldest[k]);
                }
                return 0;
            }
            /* Not parked (no control region, a copy in a fork child, ...):
             * back into the registry (the slot just freed takes it), and
             * released below like any region. */
            (void)reg_add_locked(&e.region, e.conn);
        }
        (void)pthread_mutex_unlock(&reg_lock);
        for (size_t k = 0; k < evicted; k++) {
            (void)park_release_entry(&oldest[k]);
        }
    }
    return arena__region_release(region);
}

long long arena__region_park_release(void)
{
    /* Kept blocks are parked first, and so released below. */
    (void)kept_purge(true, arena__now_ms());
    long long total = 0;
    for (;;) {
        (void)pthread_mutex_lock(&reg_lock);
        if (park_len == 0) {
            (void)pthread_mutex_unlock(&reg_lock);
            break;
        }
        reg_entry_t e = park_cache[park_len - 1].e;
        park_entry_forget(park_len - 1);
        (void)pthread_mutex_unlock(&reg_lock);
        if (park_release_entry(&e)) {
            total += (long long)e.region.size;
        }
    }
    return total;
}

size_t arena__region_park_purge(bool force, uint64_t now_ms)
{
    /* Kept blocks leave purged: they add no dirty entry. */
    size_t total = kept_purge(force, now_ms);
    if (atomic_load_explicit(&park_dirty, memory_order_relaxed) == 0) {
        return total;
    }
    arena_conn_t *def = park_default_conn();
    (void)pthread_mutex_lock(&reg_lock);
    for (size_t i = park_len; i-- > 0;) {
        park_entry_t *pe = &park_cache[i];
        if (!pe->dirty || (!force && now_ms - pe->parked_ms < ARENA__DECAY_MS)) {
            continue;
        }
        arena_conn_t *conn = pe->e.conn != NULL ? pe->e.conn : def;
        arena_lease_t lease = lease_of(&pe->e.region);
        int r = -ENOENT;
        call_depth++;
        if (conn != NULL) {
            /* A parked mapping cannot be purged (MADV_REMOVE wants write
             * access): take it back for the moment. While it is ACTIVE
             * the daemon cannot take it; that lasts three system calls. */
            r = arena__lease_unpark(conn, &lease);
        }
        if (r == 0) {
            if (madvise(lease.addr, lease.size, MADV_REMOVE) == 0) {
                total += lease.size;
            }
            r = arena__lease_park(conn, &lease);
        }
        call_depth--;
        if (r == 0) {
            pe->dirty = false;
            atomic_fetch_sub_explicit(&park_dirty, 1, memory_order_relaxed);
            continue;
        }
        if (r != ARENA_ERECLAIMED && r != -ENOENT) {
            /* Ours but not parked again (or in an unknown state): out of
             * the cache and released, outside the lock. Rare enough to
             * stop the walk here. */
            reg_entry_t e = pe->e;
            park_entry_forget(i);
            (void)pthread_mutex_unlock(&reg_lock);
            call_depth++;
            (void)arena_release(e.conn, &lease);
            call_depth--;
            return total;
        }
        atomic_fetch_add_explicit(&park_lost, 1, memory_order_relaxed);
        park_entry_forget(i);
    }
    (void)pthread_mutex_unlock(&reg_lock);
    return total;
}

void arena__region_park_info(arena__region_park_info_t *ret_info)
{
    if (ret_info == NULL) {
        return;
    }
    (void)pthread_mutex_lock(&reg_lock);
    arena__region_park_info_t info = {
        .bytes = (uint64_t)atomic_load_explicit(&park_bytes, memory_order_relaxed),
        .count = (uint32_t)park_len,
        .dirty = atomic_load_explicit(&park_dirty, memory_order_relaxed),
        .hits = atomic_load_explicit(&park_hits, memory_order_relaxed),
        .lost = atomic_load_explicit(&park_lost, memory_order_relaxed),
    };
    (void)pthread_mutex_unlock(&reg_lock);
    *ret_info = info;
}

uint64_t arena__region_parked_bytes(void)
{
    int64_t b = atomic_load_explicit(&park_bytes, memory_order_relaxed);
    arena__region_kept_bytes_fn hook = atomic_load_explicit(&kept_bytes_hook, memory_order_acquire);
    return (b > 0 ? (uint64_t)b : 0) + (hook != NULL ? hook() : 0);
}

void arena__region_publish_live(uint64_t live_bytes)
{
    /* A fork child's default connection is still the parent's, and so is
     * its control region: the figure would be the parent's to overwrite. */
    if (!atomic_load_explicit(&detached, memory_order_acquire)) {
        arena__conn_publish_live(live_bytes);
    }
}

/* Fork (DESIGN §6). The child must get private copies of the shared regions
 * as they were when fork() was called. The copy can only be made in the child,
 * after fork() has returned there, while the memory is still shared with the
 * parent; so when there is anything shared, prepare makes a pipe, the child
 * writes one byte once it has copied, and the parent's fork() does not return
 * before it has read that byte (or EOF, if the child died first). Otherwise a
 * parent that writes right after forking (bash frees and poisons records right
 * after forking a command substitution) would have its writes copied into the
 * child. reg_lock and child_lock are held from prepare to the end of both
 * handlers, which also serialises concurrent forks. Other threads of the parent
 * keep running during the copy; what they write then may reach the child
 * half-updated, which is no worse than what a child of a multi-threaded parent
 * may touch anyway. */
static int fork_pipe[2] = {-1, -1}; /* guarded by reg_lock across a fork */
static bool fork_prepared;          /* guarded by reg_lock across a fork */

static bool region_any_shared_locked(void)
{
    for (size_t i = 0; i < reg_len; i++)
        if (!reg[i].region.anonymous)
            return true;
    return false;
}

void arena__region_atfork_prepare(void)
{
    (void)pthread_mutex_lock(&child_lock);
    (void)pthread_mutex_lock(&reg_lock);
    fork_prepared = true;
    if (!region_any_shared_locked() || pipe2(fork_pipe, O_CLOEXEC) < 0)
        fork_pipe[0] = fork_pipe[1] = -1;
}

void arena__region_atfork_parent(void)
{
    if (fork_pipe[0] >= 0) {
        int saved = errno;
        char byte;
        (void)close(fork_pipe[1]);
        while (read(fork_pipe[0], &byte, 1) < 0 && errno == EINTR)
            ;
        (void)close(fork_pipe[0]);
        fork_pipe[0] = fork_pipe[1] = -1;
        errno = saved;
    }
    fork_prepared = false;
    (void)pthread_mutex_unlock(&reg_lock);
    (void)pthread_mutex_unlock(&child_lock);
}

void arena__region_atfork_child(void)
{
    /* Single-threaded now; reg_lock and child_lock are held if prepare ran. */
    bool prepared = fork_prepared;
    fork_prepared = false;
    for (size_t i = 0; i < reg_len; i++) {
        arena__region_t *rg = &reg[i].region;
        if (rg->anonymous) {
            continue;
        }
        void *copy =
            mmap(NULL, rg->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (copy == MAP_FAILED) {
            continue; /* stays shared: nothing better to do without memory */
        }
        memcpy(copy, rg->addr, rg->size);
        if (mremap(copy, rg->size, rg->size, MREMAP_MAYMOVE | MREMAP_FIXED, rg->addr) ==
            MAP_FAILED) {
            (void)munmap(copy, rg->size);
            continue;
        }
        rg->anonymous = true;
        rg->lease_id = 0;
        reg[i].conn = NULL;
    }
    /* Parked regions are the parent's leases, PROT_NONE here too: never
     * ours to unpark or release. The addresses are freed for the child's
     * own use; the parent's mappings are untouched. */
    for (size_t i = 0; i < park_len; i++) {
        (void)munmap(park_cache[i].e.region.addr, park_cache[i].e.region.size);
    }
    park_len = 0;
    atomic_store_explicit(&park_bytes, 0, memory_order_relaxed);
    atomic_store_explicit(&park_dirty, 0, memory_order_relaxed);
    /* The parent's connection (and a child connection of an earlier fork) is
     * not ours to use; make a new one on first need. */
    child_conn = NULL;
    atomic_store_explicit(&detached, true, memory_order_release);
    if (fork_pipe[1] >= 0) {
        int saved = errno;
        while (write(fork_pipe[1], "c", 1) < 0 && errno == EINTR)
            ;
        (void)close(fork_pipe[0]);
        (void)close(fork_pipe[1]);
        fork_pipe[0] = fork_pipe[1] = -1;
        errno = saved;
    }
    if (prepared) {
        (void)pthread_mutex_unlock(&reg_lock);
        (void)pthread_mutex_unlock(&child_lock);
    }
}
