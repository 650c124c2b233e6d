/* SPDX-License-Identifier: MIT
 *
 * conn.h -- internal contract between the connection layer (conn.c) and the
 * rest of libarena-client (pools, slabs, bump arenas, preload).
 *
 * Rule for everything behind this header: no malloc/free/calloc/realloc, ever.
 * The preload library replaces malloc with our own pools, which call in here
 * for leases, so any libc allocation on this path would recurse. Memory comes
 * from mmap; protobuf-c gets an allocator over connection-owned scratch space.
 */
#ifndef ARENA_CLIENT_CONN_H
#define ARENA_CLIENT_CONN_H

#include <stddef.h>

#include "arena.h"

/* The process-wide default connection, made on first call from the
 * environment (thread-safe; concurrent first callers wait for one attempt; a
 * failed attempt is retried on a later call). Returns 0 and *ret_conn, or the
 * arena_connect() error. */
int arena__conn_default(arena_conn_t **ret_conn);

/* Like arena_lease(), but maps the lease at an address aligned to `align` (a
 * power of two >= the page size), whatever its size. conn NULL: default. */
int arena__conn_lease_aligned(arena_conn_t *conn, size_t size, size_t align, int wait_ms,
                              arena_lease_t *ret_lease);

#endif
