/* SPDX-License-Identifier: MIT
 *
 * conn.h -- one client connection: a non-blocking Unix socket under uv_poll,
 * cut into frames on the way in and queued (with optional fds) on the way out.
 */
#ifndef AD_CONN_H
#define AD_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

typedef struct ad_conn ad_conn_t;

typedef struct ad_conn_limits {
    size_t max_frame;  /* largest request payload accepted */
    size_t max_queued; /* bytes of replies queued before the peer is dropped */
    /* Requests in flight (replies queued and not yet written, plus what the
     * owner reports with ad_conn_set_pending()) at which reading stops until
     * they drain below half; 0: never stop. While reading is stopped for this
     * reason, ad_conn_stalled_since() runs from the last write that made
     * progress, so a peer that never reads still gets dropped. */
    size_t max_in_flight;
} ad_conn_limits_t;

typedef struct ad_conn_callbacks {
    /* A complete frame payload (header stripped), valid during the call.
     * fd is -1, or the one descriptor (SCM_RIGHTS, CLOEXEC) that arrived with
     * the frame's first bytes: the callee owns it and must close or keep it.
     * A descriptor is attached to a frame only when it came alone, in the
     * read that starts the frame's header; the conn reads a header and then
     * its payload separately, never past a frame's end, so a descriptor sent
     * with a later frame cannot be mistaken for this one's. Every other
     * descriptor (several at once, one arriving mid-frame, one of a frame
     * that never completes or is oversized, or pending when the conn
     * closes) is closed by the conn with a log line. */
    void (*on_frame)(ad_conn_t *conn, const uint8_t *payload, size_t len, int fd, void *ctx);
    /* A frame header announced len > max_frame. Reading has stopped; the
     * callback typically queues an error and calls ad_conn_shutdown(). */
    void (*on_oversize)(ad_conn_t *conn, size_t len, void *ctx);
    /* The connection is gone (EOF, error, ad_conn_close(), or a shutdown
     * that completed). Called exactly once, always from the loop (never from
     * inside another ad_conn_* call), after which the conn is freed. reason
     * is 0 for an orderly EOF or close, -errno otherwise (-ENOBUFS: the peer
     * did not read its replies). */
    void (*on_close)(ad_conn_t *conn, int reason, void *ctx);
} ad_conn_callbacks_t;

typedef struct ad_conn_peer {
    pid_t pid;
    uid_t uid;
    gid_t gid;
} ad_conn_peer_t;

/* Takes ownership of fd (an accepted, non-blocking, CLOEXEC socket), reads its
 * SO_PEERCRED and starts watching it on loop. Returns 0 and *ret_conn, or
 * -errno (fd is closed on failure too). */
int ad_conn_new(uv_loop_t *loop, int fd, const ad_conn_limits_t *limits,
                const ad_conn_callbacks_t *callbacks, void *ctx, ad_conn_t **ret_conn);

/* The credentials read at accept time. */
const ad_conn_peer_t *ad_conn_peer(const ad_conn_t *conn);

/* The socket fd (for SO_PEERGROUPS and the like; still owned by the conn). */
int ad_conn_fd(const ad_conn_t *conn);

/* Queues a whole frame for sending; takes ownership of frame (malloc'd) in
 * every case. fd >= 0 is dup'ed and sent as SCM_RIGHTS with the frame's first
 * byte. Tries to write at once. Returns 0, or -ENOBUFS (the queue would pass
 * max_queued: the connection is being closed), -EPIPE (already closing),
 * -EMFILE (fd could not be dup'ed: the connection is being closed, since
 * the peer would wait for this reply forever), -ENOMEM, -errno. Never calls
 * back synchronously. */
int ad_conn_send(ad_conn_t *conn, uint8_t *frame, size_t len, int fd);

#define AD_CONN_MAX_SEND_FDS 2

/* Like ad_conn_send() with nfds (at most AD_CONN_MAX_SEND_FDS) fds, sent in
 * this order in one SCM_RIGHTS message with the frame's first byte (e.g. the
 * pool and control memfds of HelloReply). Returns as ad_conn_send(), or
 * -EINVAL for too many fds. */
int ad_conn_send_fds(ad_conn_t *conn, uint8_t *frame, size_t len, const int *fds, size_t nfds);

/* Stops reading and closes once the queued frames are written (at once when
 * nothing is queued). Idempotent. */
void ad_conn_shutdown(ad_conn_t *conn);

/* Closes now, dropping anything queued; reason (0 or -errno) is passed to
 * on_close, which runs later from the loop;
 * until then every ad_conn_* call is a harmless no-op. Idempotent. */
void ad_conn_close(ad_conn_t *conn, int reason);

/* Since when (loop time, ms) the connection has been waiting on its peer:
 * an incomplete frame sits in the input buffer, a shutdown waits for the
 * peer to read the last replies, or reading is throttled (max_in_flight) and
 * no reply byte has been written since. 0 when it waits on nothing. Lets the server
 * drop peers that send half a frame, or stop reading, and stall. */
uint64_t ad_conn_stalled_since(const ad_conn_t *conn);

/* The owner's count of requests it accepted and has not answered yet (e.g.
 * lease requests queued for memory); counts towards max_in_flight. Setting
 * it lower may resume reading. No-op once closing. */
void ad_conn_set_pending(ad_conn_t *conn, size_t pending);

/* True while reading is stopped because max_in_flight was reached. */
bool ad_conn_is_throttled(const ad_conn_t *conn);

/* True once the connection is closing (no more callbacks but on_close). */
bool ad_conn_is_closing(const ad_conn_t *conn);

/* Opaque per-connection data for the owner. */
void ad_conn_set_data(ad_conn_t *conn, void *data);
void *ad_conn_get_data(const ad_conn_t *conn);

#endif
