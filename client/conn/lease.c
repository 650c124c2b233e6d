/* SPDX-License-Identifier: MIT
 *
 * lease.c -- raw leases: ask the daemon for an extent of the pool heap, map it
 * at an aligned address, and give it back.
 *
 * Alignment is what lets the pools find a lease header from any pointer with
 * a mask, so a lease of up to 4 MiB is mapped at an address aligned to its size
 * rounded up to a power of two; arena__conn_lease_aligned() takes any power of
 * two. An aligned mapping reserves size + align bytes of PROT_NONE address
 * space, maps the lease with MAP_FIXED at the aligned point inside it and
 * unmaps the slack on both sides.
 *
 * Every mapped lease is in its connection's table (id -> addr, size), so
 * arena_release() refuses a lease this connection does not hold (a forged or
 * stale arena_lease_t) before touching any mapping, and arena_disconnect()
 * can unmap everything. A lease that cannot be mapped or tracked goes straight
 * back to the daemon. No malloc (see conn.h); any thread.
 *
 * Parking lives in conn.c (it works on the lease table); arena_lease_park()
 * and arena_lease_unpark() below are its public face.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arena.h"
#include "conn.h"
#include "wire.h"

#define LEASE_ALIGNED_MAX ((size_t)4 * 1024 * 1024)

typedef struct lease_reply_ctx {
    uint64_t id;
    uint64_t offset;
    uint64_t size;
    bool zeroed;
    uint32_t slot;
    uint64_t generation;
    bool own_memory;
} lease_reply_ctx_t;

static int lease_on_reply(void *ctx, const arena__msg_t *reply)
{
    lease_reply_ctx_t *out = ctx;
    out->id = reply->u.lease_reply.lease_id;
    out->offset = reply->u.lease_reply.offset;
    out->size = reply->u.lease_reply.size;
    out->zeroed = reply->u.lease_reply.zeroed;
    out->slot = reply->u.lease_reply.slot;
    out->generation = reply->u.lease_reply.generation;
    out->own_memory = reply->u.lease_reply.own_memory;
    return 0;
}

static size_t lease_pow2_ceil(size_t n)
{
    size_t p = 1;
    while (p < n && p <= SIZE_MAX / 2)
        p <<= 1;
    return p;
}

void *arena__conn_map_aligned(size_t size, size_t align, int prot)
{
    if (size > SIZE_MAX - align) {
        errno = ENOMEM;
        return NULL;
    }
    size_t span = size + align;
    char *res = mmap(NULL, span, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (res == MAP_FAILED)
        return NULL;
    char *base = (char *)(((uintptr_t)res + align - 1) & ~(uintptr_t)(align - 1));
    if (base > res)
        (void)munmap(res, (size_t)(base - res));
    char *end = base + size;
    if (res + span > end)
        (void)munmap(end, (size_t)(res + span - end));
    return base;
}

/* Maps [offset, offset + size) of fd at an address aligned to align.
 * Returns 0 and *ret_addr, or -errno. */
static int lease_map(int fd, uint64_t offset, size_t size, size_t align, size_t page, int prot,
                     void **ret_addr)
{
    if (align <= page) {
        void *p = mmap(NULL, size, prot, MAP_SHARED, fd, (off_t)offset);
        if (p == MAP_FAILED)
            return -errno;
        *ret_addr = p;
        return 0;
    }
    char *base = arena__conn_map_aligned(size, align, PROT_NONE);
    if (!base)
        return -errno;
    if (mmap(base, size, prot, MAP_SHARED | MAP_FIXED, fd, (off_t)offset) == MAP_FAILED) {
        int e = errno;
        (void)munmap(base, size);
        return -e;
    }
    *ret_addr = base;
    return 0;
}

/* The alignment arena_lease() gives a lease of size bytes. */
static size_t lease_auto_align(size_t size, size_t page, const arena__conn_info_t *info)
{
    size_t align = size <= LEASE_ALIGNED_MAX ? lease_pow2_ceil(size) : page;
    if (info->hugetlb && align < info->granule)
        align = (size_t)info->granule;
    return align;
}

int arena__conn_map_lease(int fd, uint64_t offset, size_t size, size_t align, int prot,
                          const arena__conn_info_t *info, void **ret_addr)
{
    size_t page = (size_t)getpagesize();
    if (fd < 0 || size == 0 || !info || !ret_addr)
        return -EINVAL;
    if (!align)
        align = lease_auto_align(size, page, info);
    return lease_map(fd, offset, size, align, page, prot, ret_addr);
}

/* align 0: automatic (see arena_lease()). */
static int lease_acquire(arena_conn_t *conn, size_t size, size_t align, int wait_ms, unsigned flags,
                         arena_lease_t *ret_lease)
{
    size_t page = (size_t)getpagesize();
    if (size == 0 || !ret_lease || (flags & ~ARENA_LEASE_OWN_MEMORY))
        return -EINVAL;
    if (align && ((align & (align - 1)) != 0 || align < page))
        return -EINVAL;
    int r = arena__conn_resolve(&conn);
    if (r < 0)
        return r;
    arena__msg_t req = {.kind = ARENA__MSG_LEASE};
    req.u.lease.size = size;
    req.u.lease.wait_ms = wait_ms < 0 ? -1 : wait_ms;
    req.u.lease.flags = flags & ARENA_LEASE_OWN_MEMORY ? ARENA__WIRE_LEASE_OWN_MEMORY : 0;
    lease_reply_ctx_t got = {0};
    arena__lease_call_t call;
    r = arena__conn_call_lease(conn, &req, ARENA__MSG_LEASE_REPLY, lease_on_reply, &got, &call);
    if (r < 0)
        return r;
    const arena__conn_info_t info = call.info;
    /* Memory of its own when asked for, and also when the daemon chose it:
     * while a pool it took back after a restart grants nothing, it serves
     * new leases from memfds of their own instead of making us wait. */
    bool own = got.own_memory;

    /* The daemon's numbers decide what we map: check them first. */
    if (got.size < size || got.offset % page != 0 || got.size % page != 0 ||
        (!own && (flags & ARENA_LEASE_OWN_MEMORY)) || own != (call.own_fd >= 0) ||
        (own && got.offset != 0) ||
        (!own && info.heap_size &&
         (got.offset > info.heap_size || got.size > info.heap_size - got.offset))) {
        r = ARENA_EPROTOCOL;
        goto fail_release;
    }
    if (!align)
        align = lease_auto_align((size_t)got.size, page, &info);

    void *addr = NULL;
    r = lease_map(own ? call.own_fd : call.pool_fd, got.offset, (size_t)got.size, align, page,
                  PROT_READ | PROT_WRITE, &addr);
    (void)close(call.pool_fd);
    call.pool_fd = -1;
    if (call.own_fd >= 0)
        (void)close(call.own_fd);
    call.own_fd = -1;
    if (r < 0)
        goto fail_release;
    uint64_t id;
    r = arena__conn_track_lease(conn, got.id, got.offset, addr, (size_t)got.size, call.epoch, &id);
    if (r == -ESTALE) {
        /* The daemon that granted it went away before we could record it:
         * it was not claimed, so it is not ours any more. */
        (void)munmap(addr, (size_t)got.size);
        return ARENA_EDISCONNECTED;
    }
    if (r == -EEXIST) {
        /* The daemon handed out an id we already hold: releasing it would
         * give back the other lease, so only drop the new mapping. */
        (void)munmap(addr, (size_t)got.size);
        return ARENA_EPROTOCOL;
    }
    if (r < 0)
        goto fail_unmap;
    /* Parking needs the lease's state word; without one (an older daemon,
     * or a word that does not say what the reply says) the lease works and
     * arena_lease_park() reports -ENOTSUP. Memory of its own is never
     * parked: the daemon could not give its pages back without us. */
    if (own)
        (void)arena__conn_set_own_memory(conn, id);
    else
        (void)arena__conn_set_control(conn, id, got.slot, got.generation);

    *ret_lease = (arena_lease_t){
        .addr = addr,
        .size = (size_t)got.size,
        .id = id,
        .zeroed = got.zeroed,
    };
    return 0;

fail_unmap:
    (void)munmap(addr, (size_t)got.size);
fail_release:
    if (call.pool_fd >= 0)
        (void)close(call.pool_fd);
    if (call.own_fd >= 0)
        (void)close(call.own_fd);
    (void)arena__conn_release_remote(conn, got.id, call.epoch);
    return r;
}

int arena_lease(arena_conn_t *conn, size_t size, int wait_ms, arena_lease_t *ret_lease)
{
    return lease_acquire(conn, size, 0, wait_ms, 0, ret_lease);
}

int arena_lease_flags(arena_conn_t *conn, size_t size, int wait_ms, unsigned flags,
                      arena_lease_t *ret_lease)
{
    return lease_acquire(conn, size, 0, wait_ms, flags, ret_lease);
}

int arena__conn_lease_aligned(arena_conn_t *conn, size_t size, size_t align, int wait_ms,
                              arena_lease_t *ret_lease)
{
    if (align == 0)
        return -EINVAL;
    return lease_acquire(conn, size, align, wait_ms, 0, ret_lease);
}

int arena_release(arena_conn_t *conn, const arena_lease_t *lease)
{
    if (!lease || !lease->addr || lease->size == 0)
        return -EINVAL;
    int r = arena__conn_resolve(&conn);
    if (r < 0)
        return r;
    return arena__conn_release(conn, lease->id, lease->addr, lease->size);
}

int arena_lease_park(arena_conn_t *conn, const arena_lease_t *lease)
{
    return arena__lease_park(conn, lease);
}

int arena_lease_unpark(arena_conn_t *conn, const arena_lease_t *lease)
{
    return arena__lease_unpark(conn, lease);
}
