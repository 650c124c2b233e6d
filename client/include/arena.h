/* SPDX-License-Identifier: MIT
 *
 * arena.h -- libarena-client, the one public header of arenad's client side.
 *
 * A process leases shared memory from arenad ("leases": extents of the daemon's
 * pool memfd, mapped here) and allocates inside them with lock-free per-thread
 * heaps. Plain arena_malloc() works with no setup: a process-wide connection is
 * made lazily from $ARENAD_SOCKET (then the default socket paths).
 *
 * Errors: functions returning int give 0 (or a count) on success and a negative
 * code on failure: -errno values (-EINVAL, -ENOMEM, -ETIMEDOUT, ...) or one of
 * the ARENA_E* codes below. arena_strerror() turns either into text. On failure
 * outputs are left untouched. The library never aborts on bad input and never
 * prints. Functions returning pointers return NULL and set errno.
 *
 * Thread safety: every function may be called from any thread; an
 * arena_conn_t serialises its requests internally.
 */
#ifndef ARENA_H
#define ARENA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define ARENA_API __attribute__((visibility("default")))
#else
#define ARENA_API
#endif

#define ARENA_VERSION_MAJOR 0
#define ARENA_VERSION_MINOR 1
#define ARENA_VERSION_PATCH 0

/* Error codes beyond errno (all negative, far from any errno value). */
#define ARENA_ENODAEMON     (-20001) /* no daemon answers at the socket */
#define ARENA_EVERSION      (-20002) /* the daemon speaks another protocol version */
#define ARENA_ENOTOWNER     (-20003) /* the lease belongs to another client */
#define ARENA_ELIMIT        (-20004) /* a daemon limit (leases, bytes, requests) was hit */
#define ARENA_EDISCONNECTED (-20005) /* the connection to the daemon was lost */
#define ARENA_EPROTOCOL     (-20006) /* the daemon sent something we cannot parse */
#define ARENA_EDAEMON       (-20007) /* the daemon failed on its own side */
#define ARENA_ERECLAIMED    (-20008) /* the daemon took the parked lease back */

/* ---- connections ----------------------------------------------------------- */

typedef struct arena_conn arena_conn_t;

/* Connects to arenad at socket_path (NULL: $ARENAD_SOCKET, else
 * /run/arenad/arenad.sock as root, else $XDG_RUNTIME_DIR/arenad.sock), says
 * hello and receives the pool. Returns 0 and *ret_conn, or ARENA_ENODAEMON,
 * ARENA_EVERSION, -errno. */
ARENA_API int arena_connect(const char *socket_path, arena_conn_t **ret_conn);

/* Closes the connection; the daemon takes back every lease still held through
 * it (their mappings in this process are removed). NULL-safe. */
ARENA_API void arena_disconnect(arena_conn_t *conn);

/* ---- raw leases ------------------------------------------------------------ */

typedef struct arena_lease {
    void *addr;  /* mapped read/write in this process */
    size_t size; /* bytes */
    uint64_t id; /* daemon-wide lease id */
    bool zeroed; /* pages known to read as zero */
} arena_lease_t;

/* Leases `size` bytes (rounded up to the daemon's granule) through conn (NULL:
 * the default connection). Leases up to 4 MiB are mapped at an address aligned
 * to their size rounded up to a power of two. wait_ms: how long the daemon may
 * queue the request when memory is short (0: answer at once, <0: forever).
 * Right after a restart of a daemon without an fd store, while the pool this
 * process handed back takes claims, the lease is memory of its own (as with
 * ARENA_LEASE_OWN_MEMORY: it cannot be parked) rather than a wait.
 * Returns 0 and *ret_lease, or -EINVAL (size 0), -ENOMEM (no memory now),
 * -E2BIG (more than the daemon could ever grant), -ETIMEDOUT, ARENA_ELIMIT,
 * ARENA_ENODAEMON, ARENA_EDISCONNECTED, -errno. */
ARENA_API int arena_lease(arena_conn_t *conn, size_t size, int wait_ms, arena_lease_t *ret_lease);

/* Unmaps the lease and gives it back. Returns 0, or -ENOENT (no such lease on
 * this connection), ARENA_ENOTOWNER, -EINVAL (NULL), ARENA_EDISCONNECTED. */
ARENA_API int arena_release(arena_conn_t *conn, const arena_lease_t *lease);

/* Parks a lease whose contents the caller no longer needs but may want to
 * reuse soon: its mapping becomes inaccessible (PROT_NONE) and the daemon
 * may take it back at any moment without asking -- even while this process
 * is stopped -- when another client needs the memory. Reuse costs a CAS and
 * an mprotect, not a round trip. Returns 0, or -ENOENT (not a lease of this
 * connection), -EINVAL, -EALREADY (parked already), -ENOTSUP (the daemon
 * gave no control region), ARENA_ERECLAIMED (already taken back),
 * ARENA_EPROTOCOL (the lease's state word was overwritten). */
ARENA_API int arena_lease_park(arena_conn_t *conn, const arena_lease_t *lease);

/* Takes a parked lease back into use. Returns 0 (the lease is accessible
 * again; its contents are what they were when it was parked; 0 as well when
 * it was not parked), or ARENA_ERECLAIMED: the daemon took it, the mapping is
 * gone and the lease is forgotten (do not release it; lease anew). Other
 * codes as for arena_lease_park(). */
ARENA_API int arena_lease_unpark(arena_conn_t *conn, const arena_lease_t *lease);

/* ---- sharing leases by token (zero copy) ------------------------------------ */

#define ARENA_TOKEN_SIZE     64   /* a token is a NUL-terminated printable string */
#define ARENA_SHARE_READONLY 0x1u /* attachers get a read-only mapping */
#define ARENA_SHARE_ONCE     0x2u /* the token is spent by its first attach (a hand-off) */
/* arena_lease_flags(): a memfd of its own, shareable across uids. */
#define ARENA_LEASE_OWN_MEMORY 0x1u

/* Like arena_lease(), with flags. ARENA_LEASE_OWN_MEMORY: the lease is a
 * memfd of its own (sealed against growing and shrinking) instead of an
 * extent of the uid's pool -- the only kind that can be shared with
 * processes of another uid (arena_share_uid()), since pool memfds never
 * cross a uid. It counts against the budget like any lease, but is never
 * queued (wait_ms is ignored: when memory is short the daemon takes parked
 * leases back, and otherwise answers -ENOMEM at once), cannot be
 * parked (-ENOTSUP), and costs a memfd and its own mapping. Returns as
 * arena_lease(), -EINVAL for unknown flags. */
ARENA_API int arena_lease_flags(arena_conn_t *conn, size_t size, int wait_ms, unsigned flags,
                                arena_lease_t *ret_lease);

/* Registers a share of a lease the caller holds (as its owner, or as an
 * attacher) and writes a token into ret_token: a capability with 160 bits
 * from the kernel's random source that can travel by any channel (argv, a
 * pipe, a file, the environment). flags: ARENA_SHARE_READONLY,
 * ARENA_SHARE_ONCE. Only processes of the caller's uid may attach (see
 * arena_share_uid()). The extent lives while any holder holds it: the
 * owner may release its lease once others attached, and when the last
 * holder releases, exits or crashes, it is punched and freed. It is charged
 * to the owner while the owner holds it, then to the earliest remaining
 * holder; a lease someone attached is never reclaimed. A token is void once
 * unshared, spent (ONCE) or when the lease it was made from is released.
 * Returns 0, or -EINVAL (NULL, unknown flags), -ENOENT (not a lease of this
 * connection), -EPERM (a read-only attacher asked for a writable share),
 * ARENA_ELIMIT (4096 live tokens on this connection), ARENA_EDISCONNECTED,
 * -errno. */
ARENA_API int arena_share(arena_conn_t *conn, const arena_lease_t *lease, unsigned flags,
                          char ret_token[ARENA_TOKEN_SIZE]);

/* arena_share() for processes of uid only (which may be another uid than
 * the caller's: then the lease must have been made with
 * ARENA_LEASE_OWN_MEMORY, else -EPERM). A read-only share of such a lease
 * hands the attacher a read-only descriptor: it can neither mprotect its
 * mapping writable nor reopen the memfd for writing. */
ARENA_API int arena_share_uid(arena_conn_t *conn, const arena_lease_t *lease, unsigned flags,
                              unsigned int uid, char ret_token[ARENA_TOKEN_SIZE]);

/* Maps the pages a token names into this process, at an address of the
 * library's choosing (aligned as arena_lease() aligns), as a lease with its
 * own id on this connection: zeroed is false, arena_release() detaches it,
 * parking is not supported (-ENOTSUP). A read-only share is mapped
 * PROT_READ: a write faults in this process only. (Within one uid the
 * pool's descriptor is writable, so read-only protects against mistakes;
 * across uids it is enforced by the kernel.) Returns 0 and *ret_lease, or
 * -EINVAL (NULL, or not a token: malformed or truncated), -ENOENT (no such
 * share: forged, revoked, spent, or its sharer let go), -EPERM (the share
 * is for another uid), -EBUSY (made before a daemon restart, in a pool this
 * connection does not map), ARENA_ELIMIT (too many failed attaches from
 * this connection: wait a second; or no lease slot left),
 * ARENA_EDISCONNECTED, -errno. */
ARENA_API int arena_attach(arena_conn_t *conn, const char *token, arena_lease_t *ret_lease);

/* Revokes a token this connection made: no new attaches; holders keep
 * theirs. Returns 0, or -EINVAL (not a token), -ENOENT (no such share),
 * ARENA_ENOTOWNER (made by another connection), ARENA_EDISCONNECTED. */
ARENA_API int arena_unshare(arena_conn_t *conn, const char *token); /* no new attaches */

/* ---- notifications --------------------------------------------------------- */

/* The daemon tells a client things it did not ask for: that memory is short
 * and this process holds more than its fair share (Pressure: the library
 * then trims: the allocator's trim hook, else parked raw leases are
 * released), or that it took a parked lease back. The library handles them
 * during its next call to the daemon; from a background thread when the
 * environment has ARENA_BACKGROUND=1 when the default connection is made;
 * or when the application asks, from its own event loop:
 *
 *     struct pollfd p = {.fd = arena_notify_fd(), .events = POLLIN};
 *     ... poll(&p, 1, timeout) ...; if (p.revents) arena_process_notifications();
 */

/* A pollable fd (POLLIN) of the default connection that becomes readable
 * when notifications may be waiting; owned by the library (never close it).
 * Connects when needed. Returns the fd, or a negative code. */
ARENA_API int arena_notify_fd(void);

/* Reads every notification waiting on the default connection and acts on
 * them, without blocking. Returns how many were read (>= 0), or a negative
 * code. */
ARENA_API int arena_process_notifications(void);

/* Text for any code these functions return (never NULL). */
ARENA_API const char *arena_strerror(int err);

/* ---- general allocation (malloc family) ------------------------------------ */

/* Like malloc(3) and friends, on leased memory. arena_free(NULL) is a no-op;
 * arena_calloc() overflow gives NULL with errno ENOMEM; arena_aligned_alloc()
 * with an alignment that is not a power of two gives NULL with errno EINVAL.
 * With no daemon these return NULL with errno ENOMEM unless the process opted
 * into the anonymous-memory fallback (ARENA_FALLBACK=1 or the preload library). */
ARENA_API void *arena_malloc(size_t size);
ARENA_API void *arena_calloc(size_t count, size_t size);
ARENA_API void *arena_realloc(void *ptr, size_t size);
ARENA_API void arena_free(void *ptr);
ARENA_API void *arena_aligned_alloc(size_t alignment, size_t size);
ARENA_API size_t arena_usable_size(const void *ptr);

/* Gives back what this process does not use, now: free pages inside held
 * leases are purged, and every empty lease is parked (inaccessible, its
 * pages purged, still this process's: reusing it costs a CAS and an
 * mprotect, and the daemon may take it back at any moment without our
 * help). Returns the bytes given back (>= 0) or a negative code. */
ARENA_API long long arena_trim(void);

typedef struct arena_stats {
    uint64_t leased_bytes; /* bytes of leases in use (parked ones not counted) */
    uint64_t live_bytes;   /* bytes in live allocations (usable sizes) */
    uint64_t parked_bytes; /* bytes of empty leases kept for reuse: parked, and
                              the per-thread spare */
    uint64_t purged_bytes; /* bytes given back to the kernel inside held leases */
    uint64_t lease_count;  /* leases in use (parked ones not counted) */
} arena_stats_t;

/* Fills *ret_stats for this process. Returns 0 or -EINVAL (NULL).
 * live_bytes is exact for the calling thread's allocations and frees; other
 * running threads' small allocations are counted per page of 64 or 512 KiB
 * when the page fills or empties, at their heap's purge tick (a slow path,
 * at most every 100 ms) and when they exit, so while they run the figure
 * may lag by those pages' worth. */
ARENA_API int arena_stats(arena_stats_t *ret_stats);

/* ---- typed slabs: fixed-size objects, immediate slot reuse ------------------ */

typedef struct arena_slab arena_slab_t;

/* Creates a slab of objects of object_size bytes aligned to align (0: natural
 * alignment, at least 8; else a power of two up to 4096). Returns 0, or
 * -EINVAL, -ENOMEM. */
ARENA_API int arena_slab_create(size_t object_size, size_t align, arena_slab_t **ret_slab);
/* One object, or NULL with errno ENOMEM. Lock-free; any thread. */
ARENA_API void *arena_slab_alloc(arena_slab_t *slab);
/* Gives an object back (from any thread); NULL is a no-op. */
ARENA_API void arena_slab_free(arena_slab_t *slab, void *ptr);
/* Frees the slab and every object in it; NULL-safe. */
ARENA_API void arena_slab_destroy(arena_slab_t *slab);

/* ---- bump arenas: pointer-bump allocation, bulk reset ---------------------- */

typedef struct arena_bump arena_bump_t;

/* Creates a bump arena that grows by chunks of chunk_size bytes (0: 4 MiB).
 * Single-threaded: one thread uses a bump arena at a time. Returns 0, or
 * -EINVAL, -ENOMEM. */
ARENA_API int arena_bump_create(size_t chunk_size, arena_bump_t **ret_bump);
/* size bytes aligned to align (0: 16; a power of two), or NULL with errno. */
ARENA_API void *arena_bump_alloc(arena_bump_t *bump, size_t size, size_t align);

/* The inline fast path. A bump arena starts with this cursor (ABI: two
 * pointer-sized words at offset 0, the next free byte and the end of the
 * current chunk; the rest of the arena stays opaque). cur is always a multiple
 * of ARENA_BUMP_GRAIN and end is page-aligned, so an allocation aligned to at
 * most the grain is one compare and one add. Only the arena's one user thread
 * reads or writes it; nothing else is part of the ABI.
 *
 * C callers get arena_bump_alloc_inline() through the arena_bump_alloc() macro
 * below: it bumps the cursor when the object fits the current chunk and the
 * alignment is at most the grain, and calls the exported arena_bump_alloc()
 * function for everything else (a new chunk, a large object or alignment, bad
 * arguments; that function also does the fast path itself). Taking the
 * address, writing (arena_bump_alloc)(...), dlsym("arena_bump_alloc") or an
 * FFI binding all reach the real function, which behaves the same. Define
 * ARENA_NO_INLINE before including this header to get the plain call only. */
#define ARENA_BUMP_GRAIN ((size_t)16)

typedef struct arena_bump_cursor {
    uintptr_t cur; /* next free byte of the current chunk */
    uintptr_t end; /* end of the current chunk */
} arena_bump_cursor_t;

static inline void *arena_bump_alloc_inline(arena_bump_t *bump, size_t size, size_t align)
{
#if defined(__GNUC__)
#define ARENA_BUMP_EXPECT_(x) __builtin_expect(!!(x), 1)
#else
#define ARENA_BUMP_EXPECT_(x) (x)
#endif
    /* align 0, 1, 2, 4, 8 or 16; constant at most call sites, so this folds. */
    if (ARENA_BUMP_EXPECT_(bump != NULL && align <= ARENA_BUMP_GRAIN &&
                           (align & (align - 1)) == 0)) {
        arena_bump_cursor_t *c = (arena_bump_cursor_t *)(void *)bump;
        uintptr_t p = c->cur;
        /* size <= end - p and end - p is a multiple of the grain: rounding
         * size up to the grain neither overflows nor passes the end. */
        if (ARENA_BUMP_EXPECT_(size <= c->end - p)) {
            c->cur = p + ((size + ARENA_BUMP_GRAIN - 1) & ~(ARENA_BUMP_GRAIN - 1));
            return (void *)p;
        }
    }
#undef ARENA_BUMP_EXPECT_
    return (arena_bump_alloc)(bump, size, align);
}

#if !defined(ARENA_NO_INLINE)
#define arena_bump_alloc(bump, size, align) arena_bump_alloc_inline((bump), (size), (align))
#endif
/* Frees everything allocated at once; keep_leases keeps the chunks for reuse,
 * otherwise all but the first go back. */
ARENA_API void arena_bump_reset(arena_bump_t *bump, bool keep_leases);
/* Frees the arena and its chunks; NULL-safe. */
ARENA_API void arena_bump_destroy(arena_bump_t *bump);

#ifdef __cplusplus
}
#endif

#endif
