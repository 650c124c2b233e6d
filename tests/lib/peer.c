/* SPDX-License-Identifier: MIT
 *
 * peer.c -- the raw-protocol peer: frames and Envelopes on a Unix socket.
 *
 * Tests speak to arenad byte by byte to check what a well-behaved client
 * library never sends. With a time limit, writes go out with MSG_DONTWAIT
 * and poll for room, so a daemon that stops reading turns into -ETIMEDOUT
 * instead of a hung test; without one they block in sendmsg() as a plain
 * client does (the daemon then sees each small frame arrive whole). Reads
 * always poll. Trusts nothing it reads: lengths are capped
 * before allocating, and a frame that does not decode is an answer
 * (-EBADMSG), not a crash. One socket per thread; no state of its own.
 */
#include "peer.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fdpass.h"

/* Waits up to timeout_ms for events on fd. Returns 0, or -ETIMEDOUT. */
static int peer_wait(int fd, short events, int timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = events};
    for (;;) {
        int r = poll(&pfd, 1, timeout_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        return r == 1 ? 0 : -ETIMEDOUT;
    }
}

static void peer_put_le32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 24);
}

int arena_peer_send(int fd, const void *buf, size_t len, const int *fds, size_t nfds,
                    int timeout_ms)
{
    const uint8_t *p = buf;
    int flags = timeout_ms < 0 ? 0 : MSG_DONTWAIT;
    while (len > 0) {
        ssize_t n = arena__send_with_fds(fd, p, len, fds, nfds, NULL, 0, flags);
        if (n == -EAGAIN || n == -EWOULDBLOCK) {
            int r = peer_wait(fd, POLLOUT, timeout_ms);
            if (r < 0)
                return r;
            continue;
        }
        if (n < 0)
            return (int)n;
        p += n;
        len -= (size_t)n;
        nfds = 0; /* the fds went with the first bytes */
    }
    return 0;
}

uint8_t *arena_peer_pack(const Arena__V1__Envelope *env, size_t *ret_len)
{
    size_t len = arena__v1__envelope__get_packed_size(env);
    uint8_t *buf = malloc(4 + len);
    if (!buf)
        return NULL;
    peer_put_le32(buf, (uint32_t)len);
    (void)arena__v1__envelope__pack(env, buf + 4);
    *ret_len = 4 + len;
    return buf;
}

int arena_peer_send_frame(int fd, const void *payload, size_t len, const int *fds, size_t nfds,
                          int timeout_ms)
{
    uint8_t *buf = malloc(4 + len);
    if (!buf)
        return -ENOMEM;
    peer_put_le32(buf, (uint32_t)len);
    if (len)
        memcpy(buf + 4, payload, len);
    int r = arena_peer_send(fd, buf, 4 + len, fds, nfds, timeout_ms);
    free(buf);
    return r;
}

int arena_peer_send_env(int fd, const Arena__V1__Envelope *env, const int *fds, size_t nfds,
                        int timeout_ms)
{
    size_t len;
    uint8_t *buf = arena_peer_pack(env, &len);
    if (!buf)
        return -ENOMEM;
    int r = arena_peer_send(fd, buf, len, fds, nfds, timeout_ms);
    free(buf);
    return r;
}

int arena_peer_recv_exact(int fd, void *buf, size_t len, int *ret_fd, int timeout_ms)
{
    uint8_t *p = buf;
    size_t got = 0;
    while (got < len) {
        int w = peer_wait(fd, POLLIN, timeout_ms);
        if (w < 0)
            return w;
        ssize_t n = arena__recv_with_fds(fd, p + got, len - got, ret_fd, ret_fd ? 1 : 0, 0);
        if (n == -ECONNRESET)
            n = 0;
        if (n < 0)
            return (int)n;
        if (n == 0)
            return got == 0 ? 0 : -EPROTO;
        got += (size_t)n;
    }
    return 1;
}

int arena_peer_recv_frame(int fd, uint8_t **ret_payload, size_t *ret_len, int *ret_fd,
                          int timeout_ms)
{
    uint8_t hdr[4];
    int r = arena_peer_recv_exact(fd, hdr, 4, ret_fd, timeout_ms);
    if (r <= 0)
        return r;
    uint32_t len =
        (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
    if (len > ARENA_PEER_MAX_FRAME)
        return -EMSGSIZE;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return -ENOMEM;
    if (len) {
        r = arena_peer_recv_exact(fd, buf, len, ret_fd, timeout_ms);
        if (r <= 0) {
            free(buf);
            return r == 0 ? -EPROTO : r;
        }
    }
    *ret_payload = buf;
    *ret_len = len;
    return 1;
}

int arena_peer_recv_env(int fd, Arena__V1__Envelope **ret_env, int *ret_fd, int timeout_ms)
{
    uint8_t *payload;
    size_t len;
    int r = arena_peer_recv_frame(fd, &payload, &len, ret_fd, timeout_ms);
    if (r <= 0)
        return r;
    Arena__V1__Envelope *env = arena__v1__envelope__unpack(NULL, len, payload);
    free(payload);
    if (!env)
        return -EBADMSG;
    *ret_env = env;
    return 1;
}

void arena_peer_hello_env(Arena__V1__Envelope *env, Arena__V1__Hello *hello, uint64_t id,
                          uint32_t version, const char *name)
{
    hello->protocol_version = version;
    hello->client_name = (char *)name;
    env->request_id = id;
    env->body_case = ARENA__V1__ENVELOPE__BODY_HELLO;
    env->hello = hello;
}
