/* SPDX-License-Identifier: MIT
 *
 * peer.h -- a raw-protocol peer of arenad for tests: frames (4-byte
 * little-endian length + payload) and protobuf Envelopes over a Unix stream
 * socket, with descriptors attached (SCM_RIGHTS).
 *
 * Nothing here asserts: every call returns what happened, so a test decides
 * what is a failure (a hostile test expects closed connections). Payloads
 * received are malloc'd; envelopes are freed with
 * arena__v1__envelope__free_unpacked(env, NULL).
 */
#ifndef ARENA_TESTLIB_PEER_H
#define ARENA_TESTLIB_PEER_H

#include <stddef.h>
#include <stdint.h>

#include "arena.pb-c.h"

/* The largest frame arena_peer_recv_frame() accepts (a daemon never sends
 * one this big; a bigger length is junk). */
#define ARENA_PEER_MAX_FRAME (16u << 20)

/* Sends all len bytes of buf on fd, with nfds descriptors (fds may be NULL
 * when 0) attached to the first byte, waiting up to timeout_ms whenever the
 * socket is full (< 0: a blocking sendmsg(), as a plain client does).
 * Returns 0, -EPIPE or -ECONNRESET when the peer closed, -ETIMEDOUT, or
 * another -errno. */
int arena_peer_send(int fd, const void *buf, size_t len, const int *fds, size_t nfds,
                    int timeout_ms);

/* Packs env into a new frame (header included) of *ret_len bytes. Returns
 * the malloc'd frame, or NULL when out of memory. */
uint8_t *arena_peer_pack(const Arena__V1__Envelope *env, size_t *ret_len);

/* Sends payload as one frame (header + payload), fds on its first byte, as
 * arena_peer_send() does. */
int arena_peer_send_frame(int fd, const void *payload, size_t len, const int *fds, size_t nfds,
                          int timeout_ms);

/* Packs and sends env as one frame, fds on its first byte, as
 * arena_peer_send() does (-ENOMEM: out of memory). */
int arena_peer_send_env(int fd, const Arena__V1__Envelope *env, const int *fds, size_t nfds,
                        int timeout_ms);

/* Reads exactly len bytes, waiting up to timeout_ms (< 0: for ever) for each
 * piece. Descriptors that arrive go to *ret_fd when it is -1 (ret_fd may be
 * NULL); all others are closed. Returns 1, 0 when the peer closed (or reset)
 * before the first byte, -EPROTO when it closed in the middle, -ETIMEDOUT,
 * or another -errno. */
int arena_peer_recv_exact(int fd, void *buf, size_t len, int *ret_fd, int timeout_ms);

/* Reads one frame: its payload (malloc'd, at least one byte allocated) goes
 * to *ret_payload and its length to *ret_len, a descriptor to *ret_fd as
 * arena_peer_recv_exact() does. Returns 1, 0 when the peer closed before
 * the frame, -EMSGSIZE for a length above ARENA_PEER_MAX_FRAME, or what
 * arena_peer_recv_exact() returns; on failure nothing is allocated. */
int arena_peer_recv_frame(int fd, uint8_t **ret_payload, size_t *ret_len, int *ret_fd,
                          int timeout_ms);

/* Reads one frame and decodes it into *ret_env. Returns 1, 0 when the peer
 * closed before the frame, -EBADMSG when the payload is no Envelope, or what
 * arena_peer_recv_frame() returns. */
int arena_peer_recv_env(int fd, Arena__V1__Envelope **ret_env, int *ret_fd, int timeout_ms);

/* Fills env and hello as a Hello request: request id id, protocol version
 * version, client name name (not copied). */
void arena_peer_hello_env(Arena__V1__Envelope *env, Arena__V1__Hello *hello, uint64_t id,
                          uint32_t version, const char *name);

#endif
