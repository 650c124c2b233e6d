/* SPDX-License-Identifier: MIT
 *
 * fuzz_ops.h -- the script format of fuzz_dispatch.c, shared with the corpus
 * generator and the replay driver's random scripts.
 *
 * A script is a sequence of chunks [op][len lo][len hi][len bytes]; a chunk
 * whose length runs past the end takes what is left. op is taken modulo
 * FUZZ_OP_COUNT, so every byte string is a valid script.
 */
#ifndef ARENA_FUZZ_OPS_H
#define ARENA_FUZZ_OPS_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum {
    FUZZ_OP_RAW = 0,       /* write the bytes as they are */
    FUZZ_OP_FRAME = 1,     /* one frame: 4-byte length, then the bytes as its payload */
    FUZZ_OP_FRAME_FDS = 2, /* bytes[0] picks 1-3 fds (memfd, pipe, /dev/null); frame of the rest */
    FUZZ_OP_REQUEST = 3,   /* a well-formed request: bytes[0] kind, then u64 args, request id */
    FUZZ_OP_LENGTH = 4,    /* bytes[0..3] as a frame header (any length), then the rest */
    FUZZ_OP_PUMP = 5,      /* run the loop; the daemon's clock jumps bytes[0] * 10 ms ahead */
    FUZZ_OP_SWITCH = 6,    /* bytes[0] picks the peer the next ops use */
    FUZZ_OP_CLOSE = 7,     /* close the current peer (the next op opens a new one) */
    FUZZ_OP_COUNT = 8
};

/* Request kinds of FUZZ_OP_REQUEST (bytes[0] modulo FUZZ_REQ_COUNT). Their
 * arguments: u64 at bytes[1..8], u64 at bytes[9..16], request id at
 * bytes[17..24]; the hello's client name at bytes[25..40]. */
enum {
    FUZZ_REQ_HELLO = 0,   /* version arg % 4, notifications arg2 & 1, reattach arg2 & 2 */
    FUZZ_REQ_LEASE = 1,   /* size arg % 80 MiB (any when arg2 & 0x100), wait (arg2 & 0xff) - 8,
                           * own memory when arg2 & 0x200 */
    FUZZ_REQ_RELEASE = 2, /* lease id arg % 64 (any when arg2 & 1) */
    FUZZ_REQ_STATUS = 3,
    FUZZ_REQ_CLIENTS = 4,
    FUZZ_REQ_LEASES = 5,  /* client id arg % 8 */
    FUZZ_REQ_RECLAIM = 6, /* bytes arg, client id arg2 % 8 */
    FUZZ_REQ_METRICS = 7,
    FUZZ_REQ_EVENTS = 8, /* since arg, max arg2 */
    FUZZ_REQ_REPLY = 9,  /* a StatusReply sent to the daemon */
    FUZZ_REQ_CLAIM = 10, /* 1-4 claims from offset arg, shaped by arg2 */
    /* Sharing. share: lease id arg % 64, flags arg2 & 0xff, restricted to
     * uid arg2 >> 32 when arg2 & 0x100. attach, unshare: a token picked by
     * arg & 3 -- 0 the last one the daemon gave any peer, 1 it with byte
     * (arg >> 8) changed (to arg2 & 0xff when that differs), 2 it cut to
     * arg2 % its length, 3 the request's bytes[25..] as they are. */
    FUZZ_REQ_SHARE = 11,
    FUZZ_REQ_ATTACH = 12,
    FUZZ_REQ_UNSHARE = 13,
    FUZZ_REQ_COUNT = 14
};

#define FUZZ_MAX_OPS   256
#define FUZZ_MAX_INPUT ((size_t)64 * 1024)

/* Appends one chunk to buf (capacity cap, *pos bytes used). Returns 0, or
 * -1 when it does not fit (buf unchanged). */
static inline int fuzz_put_chunk(uint8_t *buf, size_t cap, size_t *pos, uint8_t op,
                                 const void *bytes, size_t len)
{
    if (len > 0xffff || cap - *pos < 3 + len)
        return -1;
    buf[*pos] = op;
    buf[*pos + 1] = (uint8_t)len;
    buf[*pos + 2] = (uint8_t)(len >> 8);
    if (len > 0)
        memcpy(buf + *pos + 3, bytes, len);
    *pos += 3 + len;
    return 0;
}

/* Appends a FUZZ_OP_REQUEST chunk of kind with arguments arg, arg2 and a
 * request id. Returns as fuzz_put_chunk(). */
static inline int fuzz_put_request(uint8_t *buf, size_t cap, size_t *pos, uint8_t kind,
                                   uint64_t arg, uint64_t arg2, uint64_t request_id)
{
    uint8_t b[25];
    b[0] = kind;
    for (int i = 0; i < 8; i++) {
        b[1 + i] = (uint8_t)(arg >> (8 * i));
        b[9 + i] = (uint8_t)(arg2 >> (8 * i));
        b[17 + i] = (uint8_t)(request_id >> (8 * i));
    }
    return fuzz_put_chunk(buf, cap, pos, FUZZ_OP_REQUEST, b, sizeof(b));
}

static inline uint64_t fuzz_rand64(unsigned *seed)
{
    return (uint64_t)rand_r(seed) << 33 ^ (uint64_t)rand_r(seed) << 11 ^ (uint64_t)rand_r(seed);
}

/* Writes a random script of up to cap bytes into buf: mostly hello and
 * well-formed requests, with raw garbage, random frames, fds, bogus lengths,
 * peer switches and closes mixed in. Returns its length. */
static inline size_t fuzz_random_script(uint8_t *buf, size_t cap, unsigned *seed)
{
    size_t pos = 0;
    int nops = 1 + rand_r(seed) % 40;
    uint8_t junk[512];
    (void)fuzz_put_request(buf, cap, &pos, FUZZ_REQ_HELLO, 1, 0, 1);
    for (int i = 0; i < nops; i++) {
        int r = rand_r(seed) % 100;
        size_t jl = (size_t)(rand_r(seed) % 64);
        for (size_t j = 0; j < jl; j++)
            junk[j] = (uint8_t)rand_r(seed);
        int rc;
        if (r < 45)
            rc = fuzz_put_request(buf, cap, &pos, (uint8_t)(rand_r(seed) % FUZZ_REQ_COUNT),
                                  fuzz_rand64(seed) % (r < 25 ? 8u << 20 : UINT64_MAX),
                                  fuzz_rand64(seed), (uint64_t)i + 2);
        else if (r < 55)
            rc = fuzz_put_chunk(buf, cap, &pos, FUZZ_OP_FRAME, junk, jl);
        else if (r < 62)
            rc = fuzz_put_chunk(buf, cap, &pos, FUZZ_OP_RAW, junk, jl);
        else if (r < 70)
            rc = fuzz_put_chunk(buf, cap, &pos, FUZZ_OP_FRAME_FDS, junk, jl);
        else if (r < 74)
            rc = fuzz_put_chunk(buf, cap, &pos, FUZZ_OP_LENGTH, junk, jl);
        else if (r < 85)
            rc = fuzz_put_chunk(buf, cap, &pos, FUZZ_OP_PUMP, junk, jl > 1 ? 1 : jl);
        else if (r < 93) {
            rc = fuzz_put_chunk(buf, cap, &pos, FUZZ_OP_SWITCH, junk, 1);
            if (rc == 0)
                rc = fuzz_put_request(buf, cap, &pos, FUZZ_REQ_HELLO, 1, 1, 1);
        } else
            rc = fuzz_put_chunk(buf, cap, &pos, FUZZ_OP_CLOSE, NULL, 0);
        if (rc < 0)
            break;
    }
    return pos;
}

#endif
