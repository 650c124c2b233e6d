/* SPDX-License-Identifier: MIT
 *
 * records_pb.h -- the protobuf <-> C conversions of the admin records,
 * generated from the field lists in records.h.
 *
 * Included only by the two protobuf adapters (daemon/wire.c and
 * client/conn/wire.c), which already see the generated protobuf-c code. The
 * _to_pb functions borrow the record's strings for as long as the message
 * lives; the _from_pb functions copy them, cut to the record's capacity, and
 * take a missing string as "". Header only, static inline, no state.
 */
#ifndef ARENA_COMMON_RECORDS_PB_H
#define ARENA_COMMON_RECORDS_PB_H

#include "arena.pb-c.h"
#include "records.h"

#define ARENA_REC_TO_PB_U32(pb, rec, name, extra)  (pb)->name = (rec)->name;
#define ARENA_REC_TO_PB_U64(pb, rec, name, extra)  (pb)->name = (rec)->name;
#define ARENA_REC_TO_PB_F64(pb, rec, name, extra)  (pb)->name = (rec)->name;
#define ARENA_REC_TO_PB_BOOL(pb, rec, name, extra) (pb)->name = (rec)->name;
#define ARENA_REC_TO_PB_ENUM(pb, rec, name, extra) (pb)->name = (extra)(rec)->name;
#define ARENA_REC_TO_PB_STR(pb, rec, name, extra)  (pb)->name = (char *)(rec)->name;

#define ARENA_REC_FROM_PB_U32(rec, pb, name, extra)  (rec)->name = (pb)->name;
#define ARENA_REC_FROM_PB_U64(rec, pb, name, extra)  (rec)->name = (pb)->name;
#define ARENA_REC_FROM_PB_F64(rec, pb, name, extra)  (rec)->name = (pb)->name;
#define ARENA_REC_FROM_PB_BOOL(rec, pb, name, extra) (rec)->name = (pb)->name;
#define ARENA_REC_FROM_PB_ENUM(rec, pb, name, extra) (rec)->name = (uint32_t)(pb)->name;
#define ARENA_REC_FROM_PB_STR(rec, pb, name, extra)                                                \
    arena__rec_strcpy((rec)->name, sizeof((rec)->name), (pb)->name);

#define ARENA_REC_TO_PB(name, wire, extra, show, heading, width)                                   \
    ARENA_REC_TO_PB_##wire(pb, rec, name, extra)
#define ARENA_REC_FROM_PB(name, wire, extra, show, heading, width)                                 \
    ARENA_REC_FROM_PB_##wire(rec, pb, name, extra)

/* Defines arena__rec_NAME_to_pb() and arena__rec_NAME_from_pb() for one
 * record: the first fills an initialised message that borrows the record's
 * strings, the second fills the whole record. */
/* pbtype is a type name, which parentheses would break. */
/* NOLINTBEGIN(bugprone-macro-parentheses) */
#define ARENA_REC_PB_FUNCS(rname, list, pbtype)                                                    \
    static inline void arena__rec_##rname##_to_pb(const arena__rec_##rname##_t *rec, pbtype *pb)   \
    {                                                                                              \
        list(ARENA_REC_TO_PB)                                                                      \
    }                                                                                              \
    static inline void arena__rec_##rname##_from_pb(const pbtype *pb, arena__rec_##rname##_t *rec) \
    {                                                                                              \
        memset(rec, 0, sizeof(*rec));                                                              \
        list(ARENA_REC_FROM_PB)                                                                    \
    }
/* NOLINTEND(bugprone-macro-parentheses) */

ARENA_REC_PB_FUNCS(status, ARENA_REC_STATUS, Arena__V1__StatusReply)
ARENA_REC_PB_FUNCS(client, ARENA_REC_CLIENT, Arena__V1__ClientInfo)
ARENA_REC_PB_FUNCS(lease, ARENA_REC_LEASE, Arena__V1__LeaseInfo)
ARENA_REC_PB_FUNCS(event, ARENA_REC_EVENT, Arena__V1__Event)

#endif
