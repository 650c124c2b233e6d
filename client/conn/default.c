/* SPDX-License-Identifier: MIT
 *
 * default.c -- the process-wide default connection, made lazily from the
 * environment on the first call that needs it, so plain arena_malloc() works
 * with no setup. The pointer is published with a release store under
 * default_lock and read with an acquire load without it. In a fork child the
 * parent's connection is orphaned (never freed: the allocator may have given
 * the child private copies of its mappings) and a new one is made. Also
 * here: publishing the live bytes into the default connection's control
 * region, which takes no lock at all (the allocator calls it on slow paths).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "conn.h"
#include "conn_internal.h"
#include "ctlword.h"

static pthread_mutex_t default_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(arena_conn_t *) xdefault_conn; /* set once under default_lock */

void arena__conn_publish_live(uint64_t live_bytes)
{
    arena_conn_t *conn = atomic_load_explicit(&xdefault_conn, memory_order_acquire);
    /* A fork child still sees the parent's connection, whose region is
     * shared: the child's figure is not the parent's to overwrite. The
     * caller knows it is one (region.c's detached flag, set by its fork
     * child handler); asking getpid() here cost a system call on every
     * large free. */
    if (!conn)
        return;
    void *region = atomic_load_explicit(&conn->xctl_publish, memory_order_acquire);
    if (region)
        arena__ctlword_publish_live(region, live_bytes);
}

int arena__conn_resolve(arena_conn_t **conn)
{
    return *conn ? 0 : arena__conn_default(conn);
}

int arena__conn_default(arena_conn_t **ret_conn)
{
    if (!ret_conn)
        return -EINVAL;
    arena_conn_t *conn = atomic_load_explicit(&xdefault_conn, memory_order_acquire);
    if (conn && !arena__conn_foreign(conn)) {
        *ret_conn = conn;
        return 0;
    }
    (void)pthread_mutex_lock(&default_lock);
    conn = atomic_load_explicit(&xdefault_conn, memory_order_relaxed);
    if (conn && arena__conn_foreign(conn)) {
        /* A fork child: the parent's connection is left as it is (its
         * mappings may be the allocator's private copies now), never freed. */
        arena__conn_orphan(conn);
        conn = NULL;
        atomic_store_explicit(&xdefault_conn, NULL, memory_order_release);
    }
    int r = 0;
    if (!conn) {
        /* A failure leaves the state empty, so a later call tries again. */
        r = arena_connect(NULL, &conn);
        if (r == 0) {
            atomic_store_explicit(&xdefault_conn, conn, memory_order_release);
            arena__notify_default_started(conn);
        }
    }
    (void)pthread_mutex_unlock(&default_lock);
    if (r < 0)
        return r;
    *ret_conn = conn;
    return 0;
}

void arena__conn_default_forget(arena_conn_t *conn)
{
    (void)pthread_mutex_lock(&default_lock);
    if (atomic_load_explicit(&xdefault_conn, memory_order_relaxed) == conn)
        atomic_store_explicit(&xdefault_conn, NULL, memory_order_release);
    (void)pthread_mutex_unlock(&default_lock);
}
