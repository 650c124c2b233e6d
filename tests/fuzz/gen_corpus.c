/* SPDX-License-Identifier: MIT
 *
 * gen_corpus.c -- writes the seed corpus of fuzz_dispatch (tests/fuzz/corpus)
 * in the script format of fuzz_ops.h.
 *
 * Usage: gen_corpus DIR. One file per scenario: a hello, a lease and its
 * release, each listing and admin request, fds attached to requests, garbage,
 * a header claiming a huge length, a frame cut short, a lease queued behind a
 * full budget. Requests come both as FUZZ_OP_REQUEST chunks and as frames
 * holding Envelopes packed by protobuf-c, so mutations start from real wire
 * bytes. Output is deterministic; rerun it after changing the format.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.pb-c.h"
#include "fuzz_ops.h"

#define MiB (1ull << 20)

typedef struct script {
    uint8_t buf[FUZZ_MAX_INPUT];
    size_t len;
} script_t;

static script_t S;

static void req(uint8_t kind, uint64_t arg, uint64_t arg2, uint64_t id)
{
    (void)fuzz_put_request(S.buf, sizeof(S.buf), &S.len, kind, arg, arg2, id);
}

static void chunk(uint8_t op, const void *b, size_t len)
{
    (void)fuzz_put_chunk(S.buf, sizeof(S.buf), &S.len, op, b, len);
}

/* A FUZZ_OP_FRAME chunk holding env packed. */
static void env_frame(const Arena__V1__Envelope *env)
{
    uint8_t b[1024];
    size_t n = arena__v1__envelope__get_packed_size(env);
    if (n > sizeof(b))
        return;
    (void)arena__v1__envelope__pack(env, b);
    chunk(FUZZ_OP_FRAME, b, n);
}

static void env_hello(void)
{
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__Hello hello = ARENA__V1__HELLO__INIT;
    hello.protocol_version = 1;
    hello.client_name = "seed";
    hello.notifications = 1;
    env.request_id = 1;
    env.body_case = ARENA__V1__ENVELOPE__BODY_HELLO;
    env.hello = &hello;
    env_frame(&env);
}

static void env_lease(uint64_t size, int32_t wait_ms, uint64_t id)
{
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__LeaseRequest lease = ARENA__V1__LEASE_REQUEST__INIT;
    lease.size = size;
    lease.wait_ms = wait_ms;
    env.request_id = id;
    env.body_case = ARENA__V1__ENVELOPE__BODY_LEASE;
    env.lease = &lease;
    env_frame(&env);
}

static void env_release(uint64_t lease_id, uint64_t id)
{
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__ReleaseRequest release = ARENA__V1__RELEASE_REQUEST__INIT;
    release.lease_id = lease_id;
    env.request_id = id;
    env.body_case = ARENA__V1__ENVELOPE__BODY_RELEASE;
    env.release = &release;
    env_frame(&env);
}

/* `arenactl map`: every pool the caller may see, or one uid's. */
static void env_map(bool by_uid, uint32_t uid, uint64_t id)
{
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__MapRequest map = ARENA__V1__MAP_REQUEST__INIT;
    map.by_uid = by_uid;
    map.uid = uid;
    env.request_id = id;
    env.body_case = ARENA__V1__ENVELOPE__BODY_MAP;
    env.map = &map;
    env_frame(&env);
}

/* A re-registering hello with one fd: sel 12 a memfd that passes for a pool
 * (fuzz_dispatch.c make_fds), sel 36 the pool the daemon handed out. */
static void env_hello_reattach(uint8_t sel)
{
    uint8_t b[256];
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__Hello hello = ARENA__V1__HELLO__INIT;
    hello.protocol_version = 1;
    hello.client_name = "back";
    hello.notifications = 1;
    hello.reattach = 1;
    env.request_id = 1;
    env.body_case = ARENA__V1__ENVELOPE__BODY_HELLO;
    env.hello = &hello;
    b[0] = sel;
    size_t n = arena__v1__envelope__get_packed_size(&env);
    (void)arena__v1__envelope__pack(&env, b + 1);
    chunk(FUZZ_OP_FRAME_FDS, b, 1 + n);
}

static void pump(uint8_t ahead)
{
    chunk(FUZZ_OP_PUMP, &ahead, 1);
}

static void sw(uint8_t peer)
{
    chunk(FUZZ_OP_SWITCH, &peer, 1);
}

static int save(const char *dir, const char *name)
{
    char path[4096];
    (void)snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wbe");
    if (!f) {
        (void)fprintf(stderr, "gen_corpus: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t n = fwrite(S.buf, 1, S.len, f);
    if (fclose(f) != 0 || n != S.len) {
        (void)fprintf(stderr, "gen_corpus: %s: short write\n", path);
        return -1;
    }
    S.len = 0;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        (void)fprintf(stderr, "usage: gen_corpus DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    int rc = 0;

    req(FUZZ_REQ_HELLO, 1, 1, 1);
    rc |= save(dir, "hello");

    env_hello();
    rc |= save(dir, "hello_packed");

    req(FUZZ_REQ_HELLO, 1, 0, 1);
    req(FUZZ_REQ_LEASE, 3 * MiB + 1, 8, 2);
    req(FUZZ_REQ_LEASE, 4 * MiB, 8, 3);
    req(FUZZ_REQ_RELEASE, 1, 0, 4);
    req(FUZZ_REQ_RELEASE, 1, 0, 5); /* double release */
    req(FUZZ_REQ_RELEASE, 2, 0, 6);
    rc |= save(dir, "lease_release");

    env_hello();
    env_lease(MiB, 0, 2);
    env_lease(20 * MiB, 0, 3);
    env_release(1, 4);
    env_release(99, 5);
    rc |= save(dir, "lease_release_packed");

    req(FUZZ_REQ_HELLO, 1, 0, 1);
    req(FUZZ_REQ_STATUS, 0, 0, 2);
    rc |= save(dir, "status");

    req(FUZZ_REQ_HELLO, 1, 0, 1);
    req(FUZZ_REQ_LEASE, MiB, 8, 2);
    req(FUZZ_REQ_CLIENTS, 0, 0, 3);
    req(FUZZ_REQ_LEASES, 0, 0, 4);
    req(FUZZ_REQ_LEASES, 1, 0, 5);
    req(FUZZ_REQ_EVENTS, 0, 16, 6);
    rc |= save(dir, "lists");

    req(FUZZ_REQ_STATUS, 0, 0, 1); /* admin requests work without hello */
    req(FUZZ_REQ_CLIENTS, 0, 0, 2);
    rc |= save(dir, "no_hello");

    req(FUZZ_REQ_HELLO, 1, 0, 1);
    req(FUZZ_REQ_LEASE, 2 * MiB, 8, 2);
    req(FUZZ_REQ_RELEASE, 1, 0, 3);
    req(FUZZ_REQ_RECLAIM, 0, 0, 4);
    req(FUZZ_REQ_RECLAIM, MiB, 1, 5);
    rc |= save(dir, "reclaim");

    req(FUZZ_REQ_HELLO, 1, 0, 1);
    req(FUZZ_REQ_METRICS, 0, 0, 2);
    rc |= save(dir, "metrics");

    env_hello();
    env_lease(MiB, 0, 2);
    env_lease(20 * MiB, 0, 3);
    env_release(1, 4);
    env_map(false, 0, 5);
    env_map(true, 0, 6);
    env_map(true, 4000000000u, 7); /* no such pool */
    rc |= save(dir, "map_packed");

    /* Two peers: the second fills the budget, the first queues and is
     * served once the second goes away. */
    req(FUZZ_REQ_HELLO, 1, 1, 1);
    sw(1);
    req(FUZZ_REQ_HELLO, 1, 1, 1);
    req(FUZZ_REQ_LEASE, 60 * MiB, 8, 2);
    sw(0);
    req(FUZZ_REQ_LEASE, 16 * MiB, 200, 2);
    sw(1);
    chunk(FUZZ_OP_CLOSE, NULL, 0);
    pump(1);
    sw(0);
    req(FUZZ_REQ_LEASES, 0, 0, 3);
    rc |= save(dir, "queue_two_peers");

    req(FUZZ_REQ_HELLO, 1, 0, 1);
    req(FUZZ_REQ_LEASE, 100 * MiB, 0x100, 2); /* larger than the budget */
    req(FUZZ_REQ_LEASE, 0, 8, 3);             /* zero bytes */
    for (int i = 0; i < 20; i++)              /* past max_leases_per_client */
        req(FUZZ_REQ_LEASE, 64 * 1024, 8, 4 + (uint64_t)i);
    rc |= save(dir, "limits");

    req(FUZZ_REQ_HELLO, 1, 0, 1);
    req(FUZZ_REQ_HELLO, 1, 0, 2); /* a second hello */
    rc |= save(dir, "hello_twice");

    req(FUZZ_REQ_HELLO, 3, 0, 1); /* an unknown version */
    rc |= save(dir, "hello_bad_version");

    req(FUZZ_REQ_HELLO, 1, 0, 1);
    req(FUZZ_REQ_REPLY, 0, 0, 2);
    rc |= save(dir, "reply_to_daemon");

    {
        uint8_t g[200];
        unsigned seed = 7;
        for (size_t i = 0; i < sizeof(g); i++)
            g[i] = (uint8_t)rand_r(&seed);
        chunk(FUZZ_OP_RAW, g, sizeof(g));
        rc |= save(dir, "garbage");
        req(FUZZ_REQ_HELLO, 1, 0, 1);
        chunk(FUZZ_OP_FRAME, g, 64);
        rc |= save(dir, "garbage_frame");
    }

    {
        const uint8_t huge[8] = {0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4};
        req(FUZZ_REQ_HELLO, 1, 0, 1);
        chunk(FUZZ_OP_LENGTH, huge, sizeof(huge));
        rc |= save(dir, "oversized_length");
        const uint8_t over[4] = {0x01, 0x10, 0, 0}; /* max_frame + 1 */
        chunk(FUZZ_OP_LENGTH, over, sizeof(over));
        rc |= save(dir, "length_max_plus_one");
        const uint8_t zero[4] = {0, 0, 0, 0};
        req(FUZZ_REQ_HELLO, 1, 0, 1);
        chunk(FUZZ_OP_LENGTH, zero, sizeof(zero));
        rc |= save(dir, "empty_frame");
    }

    {
        /* A frame cut short, then the peer closes. */
        const uint8_t cut[6] = {100, 0, 0, 0, 0x08, 0x01};
        req(FUZZ_REQ_HELLO, 1, 0, 1);
        chunk(FUZZ_OP_LENGTH, cut, sizeof(cut));
        pump(0);
        chunk(FUZZ_OP_CLOSE, NULL, 0);
        rc |= save(dir, "half_frame");
    }

    {
        /* fds with a hello, with a lease request, alone (1-3 of each kind). */
        uint8_t b[64];
        Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
        Arena__V1__Hello hello = ARENA__V1__HELLO__INIT;
        hello.protocol_version = 1;
        hello.client_name = "fds";
        env.request_id = 1;
        env.body_case = ARENA__V1__ENVELOPE__BODY_HELLO;
        env.hello = &hello;
        b[0] = 0x02 | (0 << 2) | (1 << 4) | (2 << 6); /* memfd, pipe, /dev/null */
        size_t n = arena__v1__envelope__get_packed_size(&env);
        (void)arena__v1__envelope__pack(&env, b + 1);
        chunk(FUZZ_OP_FRAME_FDS, b, 1 + n);
        req(FUZZ_REQ_LEASE, MiB, 8, 2);
        b[0] = 0x00 | (1 << 2);
        chunk(FUZZ_OP_FRAME_FDS, b, 1);
        rc |= save(dir, "fds");
    }

    /* Several peers interleaving, one closing mid-way. */
    for (uint8_t p = 0; p < 4; p++) {
        sw(p);
        req(FUZZ_REQ_HELLO, 1, 0, 1);
        req(FUZZ_REQ_LEASE, (p + 1) * MiB, 8, 2);
    }
    sw(2);
    chunk(FUZZ_OP_CLOSE, NULL, 0);
    sw(0);
    req(FUZZ_REQ_CLIENTS, 0, 0, 3);
    rc |= save(dir, "many_peers");

    /* After a restart: a pool handed back (adopted, nothing known), claims
     * that fit, overlap, are misaligned or huge, a lease that waits for the
     * grace period, a claim after it. arg2 bits: 1 raw, 4..6 size shift,
     * 8..9 count, 16.. stride. */
    env_hello_reattach(12);
    req(FUZZ_REQ_CLAIM, 0, (uint64_t)4 << 4 | (uint64_t)2 << 8 | (uint64_t)(1 << 20) << 16, 2);
    req(FUZZ_REQ_CLAIM, 8192, 1 << 4, 3);             /* overlaps the first */
    req(FUZZ_REQ_CLAIM, 4097, 1 | (uint64_t)4096, 4); /* raw: misaligned */
    req(FUZZ_REQ_LEASE, MiB, 200, 5);
    pump(60); /* the grace period (500 ms in the fuzzer) ends */
    req(FUZZ_REQ_CLAIM, 32 * MiB, 0, 6);
    req(FUZZ_REQ_LEASES, 1, 0, 7);
    rc |= save(dir, "reattach_claims");

    /* The daemon's own pool handed back on a second connection. */
    req(FUZZ_REQ_HELLO, 1, 1, 1);
    req(FUZZ_REQ_LEASE, MiB, 8, 2);
    pump(0);
    sw(1);
    env_hello_reattach(36);
    req(FUZZ_REQ_CLAIM, 0, 0, 2);
    sw(0);
    chunk(FUZZ_OP_CLOSE, NULL, 0);
    rc |= save(dir, "reattach_own_pool");

    /* Claims from a client that did not re-register. */
    req(FUZZ_REQ_HELLO, 1, 0, 1);
    req(FUZZ_REQ_CLAIM, 0, 0, 2);
    rc |= save(dir, "claim_without_reattach");

    return rc == 0 ? 0 : 1;
}
