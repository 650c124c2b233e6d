/* SPDX-License-Identifier: MIT
 *
 * records.h -- the admin records (status, client, lease, event), each field
 * listed once.
 *
 * Every record is an X-macro list whose lines read
 *
 *     X(name, wire, extra, show, heading, width)
 *
 *   name     the C member, the protobuf field of the message (proto/arena.proto)
 *            and the JSON key arenactl prints;
 *   wire     U32, U64, F64, BOOL, STR (a NUL-terminated char array) or ENUM
 *            (a protobuf enum carried as uint32_t);
 *   extra    STR: the array's capacity with its NUL; ENUM: the protobuf-c
 *            enum type; 0 otherwise;
 *   show     how arenactl shows the value: BYTES (human size), COUNT, ID,
 *            MS (a duration), HEX, RATIO (a fraction, shown as a percentage),
 *            TEXT, BOOL (yes/no), EVKIND (an event kind's name); JSON gets
 *            the number, string or boolean whatever the kind (EVKIND: the
 *            name);
 *   heading  the column heading in arenactl's table of that record (status:
 *            the label of a line after the summary), NULL for none;
 *   width    the column width; negative: left-aligned and cut to fit.
 *
 * From these lists come the C structs the daemon fills and the client reads
 * (below), the protobuf conversions on both sides (records_pb.h, included only
 * by the two protobuf adapters), and arenactl's tables and JSON
 * (client/arenactl/fields.c). Adding a field means one line here, the field
 * in the .proto (same name) and the daemon code that fills it. The JSON keys
 * come out in list order.
 *
 * Header only; no state.
 */
#ifndef ARENA_COMMON_RECORDS_H
#define ARENA_COMMON_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* StatusReply: the daemon's state and lifetime counters. arenactl status
 * lays the existing fields out in its own summary; a field with a heading is
 * shown on a line of its own after it. */
#define ARENA_REC_STATUS(X)                                                                        \
    X(daemon_version, STR, 64, TEXT, NULL, 0)                                                      \
    X(uptime_ms, U64, 0, MS, NULL, 0)                                                              \
    X(socket_path, STR, 108, TEXT, NULL, 0)                                                        \
    X(budget, U64, 0, BYTES, NULL, 0)                                                              \
    X(heap_size, U64, 0, BYTES, NULL, 0)                                                           \
    X(leased_bytes, U64, 0, BYTES, NULL, 0)                                                        \
    /* a previous daemon's leases not claimed back yet; they count against the budget */           \
    X(restart_held_bytes, U64, 0, BYTES, NULL, 0)                                                  \
    /* of those, how many leases */                                                                \
    X(restart_held_leases, U64, 0, COUNT, NULL, 0)                                                 \
    /* time left of the grace period running after a restart; 0: none runs */                      \
    X(restart_grace_left_ms, U64, 0, MS, NULL, 0)                                                  \
    /* pools handed back by clients with no ledger: they grant nothing until their grace ends */   \
    X(restart_unknown_pools, U32, 0, COUNT, NULL, 0)                                               \
    /* pools and the lease ledger are kept in an fd store (systemd's, or the supervisor's) */      \
    X(restart_fd_store, BOOL, 0, BOOL, NULL, 0)                                                    \
    X(free_bytes, U64, 0, BYTES, NULL, 0)                                                          \
    X(dirty_bytes, U64, 0, BYTES, NULL, 0)                                                         \
    X(largest_free, U64, 0, BYTES, NULL, 0)                                                        \
    X(free_extents, U64, 0, COUNT, NULL, 0)                                                        \
    X(fragmentation, F64, 0, RATIO, NULL, 0)                                                       \
    X(clients, U32, 0, COUNT, NULL, 0)                                                             \
    X(pools, U32, 0, COUNT, NULL, 0)                                                               \
    X(leases, U64, 0, COUNT, NULL, 0)                                                              \
    X(leases_granted_total, U64, 0, COUNT, NULL, 0)                                                \
    X(leases_released_total, U64, 0, COUNT, NULL, 0)                                               \
    X(bytes_punched_total, U64, 0, BYTES, NULL, 0)                                                 \
    X(requests_refused_total, U64, 0, COUNT, NULL, 0)                                              \
    X(protocol_errors_total, U64, 0, COUNT, NULL, 0)                                               \
    X(connections_total, U64, 0, COUNT, NULL, 0)

/* ClientInfo: one client as the caller may see it (arenactl clients). */
#define ARENA_REC_CLIENT(X)                                                                        \
    X(client_id, U64, 0, ID, "ID", 8)                                                              \
    X(pid, U32, 0, ID, "PID", 8)                                                                   \
    X(uid, U32, 0, ID, "UID", 6)                                                                   \
    X(gid, U32, 0, ID, NULL, 0)                                                                    \
    /* from the client's Hello; the daemon keeps printable ASCII only */                           \
    X(name, STR, 256, TEXT, "NAME", -16)                                                           \
    X(leases, U64, 0, COUNT, "LEASES", 8)                                                          \
    X(leased_bytes, U64, 0, BYTES, "LEASED", 12)                                                   \
    /* what the client's allocator says it holds live, clamped to leased_bytes */                  \
    X(live_bytes, U64, 0, BYTES, "LIVE", 10)                                                       \
    /* in leases whose state word says PARKED */                                                   \
    X(parked_bytes, U64, 0, BYTES, "PARKED", 10)                                                   \
    X(connected_ms, U64, 0, MS, "CONNECTED", 10)                                                   \
    /* the client's max-min fair share of the budget now */                                        \
    X(fair_share, U64, 0, BYTES, NULL, 0)                                                          \
    X(weight, U32, 0, COUNT, NULL, 0)                                                              \
    /* queued lease requests, and the bytes they ask for */                                        \
    X(waiting, U32, 0, COUNT, NULL, 0)                                                             \
    X(waiting_bytes, U64, 0, BYTES, NULL, 0)

/* LeaseInfo: one lease (arenactl leases). */
#define ARENA_REC_LEASE(X)                                                                         \
    X(lease_id, U64, 0, ID, "ID", 8)                                                               \
    X(client_id, U64, 0, ID, "CLIENT", 8)                                                          \
    X(uid, U32, 0, ID, "UID", 6)                                                                   \
    X(offset, U64, 0, HEX, "OFFSET", 14)                                                           \
    X(size, U64, 0, BYTES, "SIZE", 12)                                                             \
    X(zeroed, BOOL, 0, BOOL, "ZEROED", 6)                                                          \
    X(age_ms, U64, 0, MS, "AGE", 10)                                                               \
    /* the lease's state word says PARKED */                                                       \
    X(parked, BOOL, 0, BOOL, NULL, 0)

/* Event: one entry of the daemon's event log (arenactl events). */
#define ARENA_REC_EVENT(X)                                                                         \
    X(seq, U64, 0, COUNT, "SEQ", 8)                                                                \
    /* daemon uptime at the event, shown as the raw number */                                      \
    X(time_ms, U64, 0, COUNT, "TIME_MS", 10)                                                       \
    X(kind, ENUM, Arena__V1__EventKind, EVKIND, "EVENT", -8)                                       \
    X(client_id, U64, 0, ID, "CLIENT", 6)                                                          \
    X(pid, U32, 0, ID, "PID", 8)                                                                   \
    /* requested / granted / reclaimed / asked for */                                              \
    X(bytes, U64, 0, BYTES, "BYTES", 10)                                                           \
    /* what the client held before the event, and its fair share then */                           \
    X(leased, U64, 0, BYTES, "LEASED", 10)                                                         \
    X(fair_share, U64, 0, BYTES, "SHARE", 10)                                                      \
    /* parked bytes of any client at that moment */                                                \
    X(reclaimable, U64, 0, BYTES, "PARKED", 10)                                                    \
    X(budget_leased, U64, 0, BYTES, NULL, 0)                                                       \
    X(lease_id, U64, 0, ID, NULL, 0)

/* ---- the C structs ------------------------------------------------------------ */

#define ARENA_REC_MEMBER_U32(name, extra)  uint32_t name;
#define ARENA_REC_MEMBER_U64(name, extra)  uint64_t name;
#define ARENA_REC_MEMBER_F64(name, extra)  double name;
#define ARENA_REC_MEMBER_BOOL(name, extra) bool name;
#define ARENA_REC_MEMBER_ENUM(name, extra) uint32_t name;
#define ARENA_REC_MEMBER_STR(name, extra)  char name[extra];
#define ARENA_REC_MEMBER(name, wire, extra, show, heading, width)                                  \
    ARENA_REC_MEMBER_##wire(name, extra)

typedef struct arena__rec_status {
    ARENA_REC_STATUS(ARENA_REC_MEMBER)
} arena__rec_status_t;

typedef struct arena__rec_client {
    ARENA_REC_CLIENT(ARENA_REC_MEMBER)
} arena__rec_client_t;

typedef struct arena__rec_lease {
    ARENA_REC_LEASE(ARENA_REC_MEMBER)
} arena__rec_lease_t;

typedef struct arena__rec_event {
    ARENA_REC_EVENT(ARENA_REC_MEMBER)
} arena__rec_event_t;

/* Copies src (NULL: "") into a record's string of cap bytes, cut to fit and
 * always NUL-terminated. Cutting may split a UTF-8 sequence; arenactl
 * repairs that before it prints JSON. */
static inline void arena__rec_strcpy(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strnlen(src, cap - 1) : 0;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

#endif
