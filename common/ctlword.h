/* SPDX-License-Identifier: MIT
 *
 * ctlword.h -- the lease state word shared by arenad and a client (DESIGN §5).
 *
 * Each client has a small control region, a memfd mapped by the daemon and by
 * the client, holding one 64-bit atomic word per lease slot:
 *
 *     bits 63..2  generation   changes every time the daemon reuses the slot
 *     bits  1..0  state        FREE, ACTIVE, PARKED, RECLAIMED
 *
 * The state machine, and who may make each move:
 *
 *     FREE --(daemon grants a lease: store, new generation)--> ACTIVE
 *     ACTIVE --(client, nothing live, mapping already PROT_NONE)--> PARKED
 *     PARKED --(client CAS, acquire; then restores access)--> ACTIVE
 *     PARKED --(daemon CAS; then punches and frees the extent)--> RECLAIMED
 *     RECLAIMED / ACTIVE --(daemon, lease released or client gone)--> FREE
 *
 * Every move is one atomic operation on one word that names the generation it
 * expects, so a client unparking and the daemon reclaiming can never both win,
 * and a late CAS never hits a newer lease in the same slot. There are no locks
 * in shared memory: a process that dies at any instruction leaves a word in
 * one of the states above, which the other side can always move on from.
 *
 * Orderings: the daemon publishes ACTIVE with release so a client that reads
 * it (acquire) also sees the rest of the grant. The client stores PARKED with
 * release after its mprotect(PROT_NONE), so its last writes to the lease
 * happen before the daemon's acquire CAS that takes it. The client's unpark CAS
 * is acquire (it must not touch the lease before it knows the daemon did not
 * take it); the daemon's reclaim CAS is acq_rel. Failed CASes are relaxed-
 * acquire: the caller only looks at the word it got back.
 *
 * The daemon never trusts the region beyond these words: it validates every
 * word it reads against its own lease table (slot and generation come from
 * the daemon's records, never from the region), so a client that scribbles on
 * its control region only hurts itself.
 */
#ifndef ARENA_COMMON_CTLWORD_H
#define ARENA_COMMON_CTLWORD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum arena__ctlword_state {
    ARENA__CTLWORD_FREE = 0,
    ARENA__CTLWORD_ACTIVE = 1,
    ARENA__CTLWORD_PARKED = 2,
    ARENA__CTLWORD_RECLAIMED = 3,
};

#define ARENA__CTLWORD_MAGIC   0x6172656e61637431ULL /* "arenact1" */
#define ARENA__CTLWORD_VERSION 2u

/* The head of a control region; the words follow it. */
typedef struct arena__ctlword_header {
    uint64_t magic;   /* ARENA__CTLWORD_MAGIC, written once by the daemon */
    uint32_t version; /* ARENA__CTLWORD_VERSION */
    uint32_t slots;   /* number of words that follow */
    /* Written by the client only (relaxed atomic store): the bytes its
     * allocator holds live, for arenactl. The daemon reads it for display
     * and nothing else, clamped to what the client leases; 0 until the
     * client says otherwise. */
    _Atomic uint64_t live_bytes;
} arena__ctlword_header_t;

/* Bytes of a control region with `slots` words. */
static inline uint64_t arena__ctlword_region_size(uint32_t slots)
{
    return sizeof(arena__ctlword_header_t) + (uint64_t)slots * sizeof(uint64_t);
}

/* The word of slot i in a mapped region. */
static inline _Atomic uint64_t *arena__ctlword_slot(void *region, uint32_t i)
{
    return (_Atomic uint64_t *)(void *)((char *)region + sizeof(arena__ctlword_header_t)) + i;
}

static inline uint64_t arena__ctlword_make(uint64_t generation, enum arena__ctlword_state state)
{
    return (generation << 2) | (uint64_t)state;
}

static inline enum arena__ctlword_state arena__ctlword_state_of(uint64_t word)
{
    return (enum arena__ctlword_state)(word & 3u);
}

static inline uint64_t arena__ctlword_generation_of(uint64_t word)
{
    return word >> 2;
}

/* Client: says how many bytes it holds live (relaxed: a display figure). */
static inline void arena__ctlword_publish_live(void *region, uint64_t bytes)
{
    atomic_store_explicit(&((arena__ctlword_header_t *)region)->live_bytes, bytes,
                          memory_order_relaxed);
}

/* Daemon: what the client last said it holds live (untrusted). */
static inline uint64_t arena__ctlword_read_live(const void *region)
{
    return atomic_load_explicit(&((arena__ctlword_header_t *)(uintptr_t)region)->live_bytes,
                                memory_order_relaxed);
}

/* Daemon: publishes a fresh grant in a slot (release). */
static inline void arena__ctlword_store_active_release(_Atomic uint64_t *xword, uint64_t generation)
{
    atomic_store_explicit(xword, arena__ctlword_make(generation, ARENA__CTLWORD_ACTIVE),
                          memory_order_release);
}

/* Daemon: frees a slot (the lease was released or its client is gone). */
static inline void arena__ctlword_store_free_release(_Atomic uint64_t *xword, uint64_t generation)
{
    atomic_store_explicit(xword, arena__ctlword_make(generation, ARENA__CTLWORD_FREE),
                          memory_order_release);
}

/* Client: ACTIVE -> PARKED, after the lease's mapping is PROT_NONE. Returns
 * false when the word was not ACTIVE at this generation (a bug or a scribble). */
static inline bool arena__ctlword_park_release(_Atomic uint64_t *xword, uint64_t generation)
{
    uint64_t expected = arena__ctlword_make(generation, ARENA__CTLWORD_ACTIVE);
    return atomic_compare_exchange_strong_explicit(
        xword, &expected, arena__ctlword_make(generation, ARENA__CTLWORD_PARKED),
        memory_order_release, memory_order_relaxed);
}

/* Client: PARKED -> ACTIVE. Returns true when the lease is ours again (restore
 * access, then use it); false when the daemon took it (RECLAIMED) or the slot
 * moved on: unmap the lease and forget it. */
static inline bool arena__ctlword_unpark_acquire(_Atomic uint64_t *xword, uint64_t generation)
{
    uint64_t expected = arena__ctlword_make(generation, ARENA__CTLWORD_PARKED);
    return atomic_compare_exchange_strong_explicit(
        xword, &expected, arena__ctlword_make(generation, ARENA__CTLWORD_ACTIVE),
        memory_order_acquire, memory_order_acquire);
}

/* Daemon: PARKED -> RECLAIMED. Returns true when the lease is the daemon's to
 * punch and hand on; false when the client is using it (or the word is not
 * what the daemon's records say: then it is left alone). */
static inline bool arena__ctlword_reclaim_acq_rel(_Atomic uint64_t *xword, uint64_t generation)
{
    uint64_t expected = arena__ctlword_make(generation, ARENA__CTLWORD_PARKED);
    return atomic_compare_exchange_strong_explicit(
        xword, &expected, arena__ctlword_make(generation, ARENA__CTLWORD_RECLAIMED),
        memory_order_acq_rel, memory_order_acquire);
}

/* Either side: the current word (acquire). */
static inline uint64_t arena__ctlword_load_acquire(_Atomic uint64_t *xword)
{
    return atomic_load_explicit(xword, memory_order_acquire);
}

#endif
