/* SPDX-License-Identifier: MIT
 *
 * region.c -- where the pools, slabs and bump arenas get their memory
 * (implements region.h).
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
 * Thread-safe; reg_lock and child_lock are taken on slow paths only. Never
 * calls malloc (see conn.h).
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
#include "pool.h"
#include "region.h"
#include "segment.h"

#define NODAEMON_RETRY_MS 3000u

typedef struct reg_entry {
    arena__region_t region;
    arena_conn_t *conn; /* NULL: the default connection */
} reg_entry_t;

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static reg_entry_t *reg;
static size_t reg_len, reg_cap;

static _Atomic int fallback_api; /* arena__region_allow_fallback() */
static _Atomic int env_mode;     /* 0 unread, 1 fallback, 2 require daemon, 3 neither */
static _Atomic uint64_t nodaemon_until;
static _Atomic bool detached; /* fork child: the default connection is the parent's */
static pthread_mutex_t child_lock = PTHREAD_MUTEX_INITIALIZER;
static arena_conn_t *child_conn;
static __thread int call_depth; /* inside a daemon call from here */

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

static int reg_add(const arena__region_t *region, arena_conn_t *conn)
{
    int r = 0;
    (void)pthread_mutex_lock(&reg_lock);
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
            r = -ENOMEM;
            goto out;
        }
        reg = mem;
        reg_cap = ncap;
    }
    reg[reg_len].region = *region;
    reg[reg_len].conn = conn;
    reg_len++;
out:
    (void)pthread_mutex_unlock(&reg_lock);
    return r;
}

static bool reg_take(const void *addr, reg_entry_t *ret_entry)
{
    bool found = false;
    (void)pthread_mutex_lock(&reg_lock);
    for (size_t i = reg_len; i-- > 0;) {
        if (reg[i].region.addr == addr) {
            *ret_entry = reg[i];
            reg[i] = reg[--reg_len];
            found = true;
            break;
        }
    }
    (void)pthread_mutex_unlock(&reg_lock);
    return found;
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

static int region_anonymous(size_t size, size_t align, arena__region_t *ret_region)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t span = size + align - page;
    if (span < size) {
        return -ENOMEM;
    }
    uint8_t *res = mmap(NULL, span, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (res == MAP_FAILED) {
        return -ENOMEM;
    }
    uint8_t *base = (uint8_t *)(((uintptr_t)res + align - 1) & ~(uintptr_t)(align - 1));
    if (base > res) {
        (void)munmap(res, (size_t)(base - res));
    }
    uint8_t *end = base + size;
    if (end < res + span) {
        (void)munmap(end, (size_t)(res + span - end));
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
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (ret_region == NULL || size == 0 || size % page != 0 || align < page ||
        (align & (align - 1)) != 0) {
        return -EINVAL;
    }
    /* The fork handlers (pool.c) must be in place before the first region
     * exists, also when only slabs or bump arenas use regions. */
    arena__pool_init();
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
    if (!reg_take(region->addr, &e)) {
        e.region = *region;
        e.conn = NULL;
    }
    if (e.region.anonymous) {
        return munmap(e.region.addr, e.region.size) == 0 ? 0 : -errno;
    }
    arena_lease_t lease = {.addr = e.region.addr,
                           .size = e.region.size,
                           .id = e.region.lease_id,
                           .zeroed = e.region.zeroed};
    call_depth++;
    int r = arena_release(e.conn, &lease);
    call_depth--;
    /* No munmap of our own on failure: a lease the connection does not
     * track (-ENOENT) was already unmapped by it (arena_disconnect() of the
     * default connection, a reclaim), and its address may be someone
     * else's mapping by now. */
    return r;
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
