/* SPDX-License-Identifier: MIT
 *
 * conn_internal.h -- what the files of the connection library share and
 * nobody else sees: the connection struct, its lease table entries, and the
 * helpers that cross files inside conn/ (conn.c, table.c, park.c, notify.c,
 * reconnect.c, default.c, share.c). Other parts use conn/include/conn.h.
 *
 * Threads: `lock` serialises exchanges (one request in flight per
 * connection); `table_lock` guards the lease table, so looking a lease up
 * (or parking and unparking one) never waits behind a request queued in the
 * daemon. `table_lock` may be taken while `lock` is held (a LeaseReclaimed
 * notification read during an exchange updates the table), never the
 * reverse. Fields say which lock guards them; atomics are prefixed x.
 */
#ifndef ARENA_CLIENT_CONN_INTERNAL_H
#define ARENA_CLIENT_CONN_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

#include "arena.h"
#include "conn.h"
#include "ctlword.h"
#include "wire.h"

#define CONN_RECV_INITIAL ((size_t)64 * 1024)
#define CONN_NAME_MAX     64u

typedef struct lease_slot {
    uint64_t id;        /* what the caller knows it by (the first daemon id) */
    uint64_t daemon_id; /* what the daemon of `epoch` knows it by */
    uint64_t offset;    /* in the pool memfd */
    uint32_t epoch;
    void *addr;
    size_t size;
    bool used;
    bool detached;        /* a private copy now: no daemon knows it */
    bool has_ctl;         /* slot and generation below are valid */
    bool parked;          /* we stored PARKED and have not unparked */
    bool gone;            /* the daemon took it (or a trim released it): unmapped */
    bool own_memory;      /* a memfd of its own, not the pool: never claimed after a restart */
    uint32_t ctl_slot;    /* its word in the control region */
    uint64_t generation;  /* the generation the daemon gave it */
    uint32_t claim_epoch; /* the epoch a claim for it was sent in */
} lease_slot_t;

struct arena_conn {
    pthread_mutex_t lock;    /* one exchange at a time; guards everything below but the table */
    pid_t pid;               /* the process that connected; another pid is a fork child */
    atomic_bool xorphaned;   /* fork child only: fds closed (first caller wins) */
    int fd;                  /* the socket */
    int pool_fd;             /* the pool heap memfd from HelloReply */
    bool dead;               /* an I/O failure happened; cleared by a reconnect */
    uint32_t epoch;          /* bumped by every reconnect (table_lock and lock) */
    int send_fd;             /* sent with the next frame (a reattaching Hello), or -1 */
    bool reattach_refused;   /* the daemon would not take our pool: start afresh */
    uint64_t retry_after_ms; /* no reconnect attempt before this (monotonic) */
    uint64_t next_id;        /* last request id used */
    arena__conn_info_t info;
    uint8_t *sendbuf;
    size_t sendcap;
    uint8_t *recvbuf;
    size_t recvcap;
    arena__scratch_t scratch;
    char last_error[256];

    pthread_mutex_t table_lock; /* guards the lease table */
    lease_slot_t *slots;        /* open addressing, linear probing; mmap'd */
    size_t slot_cap;            /* a power of two, or 0 */
    size_t slot_count;
    uint64_t parked_bytes; /* table_lock */

    void *ctl_map; /* the control region (shared with the daemon), or NULL */
    /* ctl_map for arena__conn_publish_live(), which takes no lock: a
     * reconnect swaps it (release) and never unmaps the old region. */
    _Atomic(void *) xctl_publish;
    size_t ctl_len;
    uint32_t ctl_slots;

    /* Notifications (any thread may read them; written under `lock`). */
    _Atomic uint64_t xpressure;        /* bytes asked for since the last trim */
    _Atomic uint64_t xpressure_total;  /* Pressure notifications read */
    _Atomic uint64_t xreclaimed_total; /* LeaseReclaimed notifications read */
    _Atomic uint64_t xunpark_lost;     /* unparks that found the lease taken */
    atomic_bool xtrimming;             /* a thread runs the trim hook */
    _Atomic uint64_t xreconnects;      /* successful reconnects */
    _Atomic uint64_t xclaims_refused;  /* leases detached after a reconnect */
    uint64_t synthetic_ids;            /* table_lock: ids made for id clashes */
};

#define CONN_FDS 2 /* HelloReply: pool, control */

/* ---- conn.c -------------------------------------------------------------------- */

/* True in a fork child of the process that connected. */
static inline bool arena__conn_foreign(arena_conn_t *conn)
{
    return conn->pid != getpid();
}

/* An anonymous private mapping of size bytes, or NULL. */
void *arena__conn_map(size_t size);

/* In a fork child: drops this process's copies of the fds, without taking
 * any lock and without touching the mappings. */
void arena__conn_orphan(arena_conn_t *conn);

/* Closes the fds a frame brought (entries >= 0 of fds[0..CONN_FDS)). */
void arena__conn_close_fds(int *fds);

/* Reads one frame into *ret_msg (decoded into the connection's scratch);
 * fds that came with it go to fd_slot (NULL: closed). conn->lock held.
 * Returns 0 or a code; an I/O failure marks the connection dead. */
int arena__conn_read_frame(arena_conn_t *conn, arena__msg_t *ret_msg, int *fd_slot);

/* One request and its reply (conn->lock held): sends req, reads frames until
 * the reply with its id, handing notifications to arena__conn_note(). The
 * reply's fds go to ret_fds (NULL: closed). Returns 0, fn's result, or a
 * code. */
int arena__conn_exchange(arena_conn_t *conn, const arena__msg_t *req, arena__msg_kind_t expect,
                         arena__reply_fn fn, void *ctx, int *ret_fds);

/* Connects a new socket to path. Returns 0 and *ret_fd, ARENA_ENODAEMON
 * (nothing listens there), or -errno. */
int arena__conn_open_socket(const char *path, int *ret_fd);

/* Hello on conn->fd (conn->lock held, or not yet shared); with reattach the
 * pool memfd goes along. The reply's fds go to ret_fds. */
int arena__conn_hello(arena_conn_t *conn, bool reattach, int *ret_fds);

/* Unmaps and closes everything the connection holds, then the struct. */
void arena__conn_destroy(arena_conn_t *conn);

/* ---- table.c ------------------------------------------------------------------- */

/* The entry of the lease the caller knows as id, or NULL; table_lock held. */
lease_slot_t *arena__conn_table_find(arena_conn_t *conn, uint64_t id);

/* The entry the current daemon knows as daemon_id, or NULL; table_lock held. */
lease_slot_t *arena__conn_table_find_daemon(arena_conn_t *conn, uint64_t daemon_id);

/* Removes an entry found by arena__conn_table_find(); table_lock held. */
void arena__conn_table_remove(arena_conn_t *conn, lease_slot_t *e);

/* ---- park.c -------------------------------------------------------------------- */

/* The state word of a lease with has_ctl set. */
static inline _Atomic uint64_t *arena__conn_word(arena_conn_t *conn, const lease_slot_t *e)
{
    return arena__ctlword_slot(conn->ctl_map, e->ctl_slot);
}

/* Maps the control region the daemon sent (fd is consumed). A region that
 * does not look like one (size, magic, version, slot count) is not used:
 * the connection works, parking reports -ENOTSUP. */
void arena__conn_map_control(arena_conn_t *conn, int fd);

/* ---- notify.c ------------------------------------------------------------------ */

/* Acts on one notification read during an exchange or a poll (conn->lock
 * held): LeaseReclaimed unmaps a parked lease the daemon took, Pressure adds
 * up for the trim hook. */
void arena__conn_note(arena_conn_t *conn, const arena__msg_t *msg);

/* ---- reconnect.c --------------------------------------------------------------- */

/* Reconnects a dead connection with backoff, for up to $ARENA_RECONNECT_MS;
 * conn->lock held. Returns 0, or ARENA_EDISCONNECTED (no daemon came back in
 * time, or reconnecting is off, or this is a fork child). */
int arena__conn_reconnect(arena_conn_t *conn);

/* ---- default.c ----------------------------------------------------------------- */

/* Forgets conn as the default connection if it is (arena_disconnect). */
void arena__conn_default_forget(arena_conn_t *conn);

#endif
