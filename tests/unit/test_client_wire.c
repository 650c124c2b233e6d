/* SPDX-License-Identifier: MIT
 *
 * test_client_wire.c -- the client's protocol adapter: every message kind
 * survives encode + decode, frames are length-prefixed little-endian, bad
 * bytes are refused, and the decode scratch grows and resets within its
 * limit. List replies are built with protobuf-c directly (the client never
 * encodes them).
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "arena.pb-c.h"
#include "paths.h"
#include "wire.h"

static uint8_t buf[1 << 16];
static arena__scratch_t scratch;

static void teardown(void)
{
    arena__scratch_destroy(&scratch);
}

/* Encodes m, checks the length prefix and decodes the body into *out. */
static void roundtrip(const arena__msg_t *m, arena__msg_t *out)
{
    long n = arena__wire_encode(m, buf, sizeof(buf));
    ck_assert_int_gt(n, 4);
    uint32_t len =
        (uint32_t)buf[0] | (uint32_t)buf[1] << 8 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 24;
    ck_assert_uint_eq(len + 4u, (unsigned long)n);
    arena__scratch_reset(&scratch);
    ck_assert_int_eq(arena__wire_decode(buf + 4, len, &scratch, out), 0);
    ck_assert_int_eq(out->kind, m->kind);
    ck_assert_uint_eq(out->request_id, m->request_id);
}

START_TEST(test_roundtrip_requests)
{
    arena__msg_t m = {.request_id = 7, .kind = ARENA__MSG_HELLO}, o;
    m.u.hello.protocol_version = 1;
    m.u.hello.client_name = "büro \"x\"";
    roundtrip(&m, &o);
    ck_assert_uint_eq(o.u.hello.protocol_version, 1);
    ck_assert_str_eq(o.u.hello.client_name, "büro \"x\"");

    m = (arena__msg_t){.request_id = UINT64_MAX, .kind = ARENA__MSG_LEASE};
    m.u.lease.size = (uint64_t)1 << 40;
    m.u.lease.wait_ms = -1;
    roundtrip(&m, &o);
    ck_assert_uint_eq(o.u.lease.size, (uint64_t)1 << 40);
    ck_assert_int_eq(o.u.lease.wait_ms, -1);

    m = (arena__msg_t){.request_id = 3, .kind = ARENA__MSG_RELEASE};
    m.u.release.lease_id = 99;
    roundtrip(&m, &o);
    ck_assert_uint_eq(o.u.release.lease_id, 99);

    m = (arena__msg_t){.request_id = 4, .kind = ARENA__MSG_LIST_LEASES};
    m.u.list_leases.client_id = 12;
    roundtrip(&m, &o);
    ck_assert_uint_eq(o.u.list_leases.client_id, 12);

    m = (arena__msg_t){.request_id = 5, .kind = ARENA__MSG_RECLAIM};
    m.u.reclaim.bytes = 1 << 20;
    m.u.reclaim.client_id = 2;
    roundtrip(&m, &o);
    ck_assert_uint_eq(o.u.reclaim.bytes, 1 << 20);
    ck_assert_uint_eq(o.u.reclaim.client_id, 2);

    static const arena__msg_kind_t empty[] = {ARENA__MSG_STATUS, ARENA__MSG_LIST_CLIENTS,
                                              ARENA__MSG_METRICS};
    for (size_t i = 0; i < 3; i++) {
        m = (arena__msg_t){.request_id = 10 + i, .kind = empty[i]};
        roundtrip(&m, &o);
    }
}
END_TEST

START_TEST(test_roundtrip_replies)
{
    arena__msg_t m = {.request_id = 1, .kind = ARENA__MSG_HELLO_REPLY}, o;
    m.u.hello_reply.protocol_version = 1;
    m.u.hello_reply.client_id = 42;
    m.u.hello_reply.heap_size = 1ull << 36;
    m.u.hello_reply.granule = 65536;
    m.u.hello_reply.budget = 1ull << 33;
    m.u.hello_reply.hugetlb = true;
    m.u.hello_reply.daemon_version = "0.1.0";
    roundtrip(&m, &o);
    ck_assert_uint_eq(o.u.hello_reply.client_id, 42);
    ck_assert_uint_eq(o.u.hello_reply.heap_size, 1ull << 36);
    ck_assert_uint_eq(o.u.hello_reply.granule, 65536);
    ck_assert_uint_eq(o.u.hello_reply.budget, 1ull << 33);
    ck_assert(o.u.hello_reply.hugetlb);
    ck_assert_str_eq(o.u.hello_reply.daemon_version, "0.1.0");

    m = (arena__msg_t){.request_id = 2, .kind = ARENA__MSG_LEASE_REPLY};
    m.u.lease_reply.lease_id = 5;
    m.u.lease_reply.offset = 1ull << 30;
    m.u.lease_reply.size = 4 << 20;
    m.u.lease_reply.zeroed = true;
    roundtrip(&m, &o);
    ck_assert_uint_eq(o.u.lease_reply.lease_id, 5);
    ck_assert_uint_eq(o.u.lease_reply.offset, 1ull << 30);
    ck_assert_uint_eq(o.u.lease_reply.size, 4 << 20);
    ck_assert(o.u.lease_reply.zeroed);

    m = (arena__msg_t){.request_id = 3, .kind = ARENA__MSG_STATUS_REPLY};
    (void)snprintf(m.u.status_reply.daemon_version, sizeof(m.u.status_reply.daemon_version), "9.9");
    m.u.status_reply.budget = 11;
    m.u.status_reply.leased_bytes = 12;
    m.u.status_reply.fragmentation = 0.25;
    m.u.status_reply.clients = 3;
    m.u.status_reply.connections_total = 77;
    m.u.status_reply.restart_held_bytes = 1ull << 33;
    (void)snprintf(m.u.status_reply.socket_path, sizeof(m.u.status_reply.socket_path),
                   "/tmp/x.sock");
    roundtrip(&m, &o);
    ck_assert_str_eq(o.u.status_reply.daemon_version, "9.9");
    ck_assert_uint_eq(o.u.status_reply.budget, 11);
    ck_assert_uint_eq(o.u.status_reply.leased_bytes, 12);
    ck_assert_double_eq(o.u.status_reply.fragmentation, 0.25);
    ck_assert_uint_eq(o.u.status_reply.clients, 3);
    ck_assert_uint_eq(o.u.status_reply.connections_total, 77);
    ck_assert_uint_eq(o.u.status_reply.restart_held_bytes, 1ull << 33);
    ck_assert_str_eq(o.u.status_reply.socket_path, "/tmp/x.sock");

    m = (arena__msg_t){.request_id = 4, .kind = ARENA__MSG_METRICS_REPLY};
    m.u.metrics_reply.text = "a 1\nb{x=\"y\"} 2\n";
    roundtrip(&m, &o);
    ck_assert_str_eq(o.u.metrics_reply.text, "a 1\nb{x=\"y\"} 2\n");

    m = (arena__msg_t){.request_id = 0, .kind = ARENA__MSG_ERROR};
    m.u.error.code = ARENA__WIRE_ERROR_NOT_OWNER;
    m.u.error.message = "lease 5 belongs to client 2";
    roundtrip(&m, &o);
    ck_assert_int_eq(o.u.error.code, ARENA__WIRE_ERROR_NOT_OWNER);
    ck_assert_str_eq(o.u.error.message, "lease 5 belongs to client 2");

    m = (arena__msg_t){.request_id = 6, .kind = ARENA__MSG_RECLAIM_REPLY};
    m.u.reclaim_reply.reclaimed_bytes = 123456789;
    roundtrip(&m, &o);
    ck_assert_uint_eq(o.u.reclaim_reply.reclaimed_bytes, 123456789);
}
END_TEST

START_TEST(test_strings_never_null)
{
    /* Absent strings decode as "", so callers can print them. */
    arena__msg_t m = {.request_id = 1, .kind = ARENA__MSG_ERROR}, o;
    m.u.error.code = 3;
    m.u.error.message = NULL;
    roundtrip(&m, &o);
    ck_assert_ptr_nonnull(o.u.error.message);
    ck_assert_str_eq(o.u.error.message, "");
}
END_TEST

START_TEST(test_encode_errors)
{
    arena__msg_t m = {.request_id = 1, .kind = ARENA__MSG_LEASE};
    m.u.lease.size = 4096;
    ck_assert_int_eq(arena__wire_encode(NULL, buf, sizeof(buf)), -EINVAL);
    ck_assert_int_eq(arena__wire_encode(&m, buf, 3), -EMSGSIZE);
    ck_assert_int_eq(arena__wire_encode(&m, buf, 6), -EMSGSIZE);
    m.kind = ARENA__MSG_NONE;
    ck_assert_int_eq(arena__wire_encode(&m, buf, sizeof(buf)), -EINVAL);
    m.kind = ARENA__MSG_LIST_LEASES_REPLY; /* the client never sends lists */
    ck_assert_int_eq(arena__wire_encode(&m, buf, sizeof(buf)), -EINVAL);
    /* Exactly enough room works. */
    m.kind = ARENA__MSG_LEASE;
    long n = arena__wire_encode(&m, buf, sizeof(buf));
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(arena__wire_encode(&m, buf, (size_t)n), n);
    ck_assert_int_eq(arena__wire_encode(&m, buf, (size_t)n - 1), -EMSGSIZE);
}
END_TEST

START_TEST(test_decode_names_unknown_bodies)
{
    /* Well-formed envelopes without a body this client knows: -ENOMSG with
     * the request id, so a caller can tell a newer notification (id 0) from
     * an unreadable reply to its own request. */
    arena__msg_t o;
    ck_assert_int_eq(arena__wire_decode(buf, 0, &scratch, &o), -ENOMSG); /* empty */
    ck_assert_uint_eq(o.request_id, 0);
    ck_assert_int_eq(o.kind, ARENA__MSG_NONE);
    /* request_id 7, then only an unknown field (number 99, varint). */
    static const uint8_t unknown[] = {0x08, 0x07, 0x98, 0x06, 0x01};
    ck_assert_int_eq(arena__wire_decode(unknown, sizeof(unknown), &scratch, &o), -ENOMSG);
    ck_assert_uint_eq(o.request_id, 7);
    ck_assert_int_eq(o.kind, ARENA__MSG_NONE);
}
END_TEST

START_TEST(test_decode_refuses_garbage)
{
    arena__msg_t o;
    memset(&o, 0xab, sizeof(o));
    arena__msg_t before = o;
    /* A field tag with a truncated varint. */
    static const uint8_t trunc[] = {0x08, 0xff, 0xff};
    ck_assert_int_eq(arena__wire_decode(trunc, sizeof(trunc), &scratch, &o), -EPROTO);
    /* A length-delimited field longer than the frame. */
    static const uint8_t overlong[] = {0x52, 0x7f, 0x08, 0x01};
    ck_assert_int_eq(arena__wire_decode(overlong, sizeof(overlong), &scratch, &o), -EPROTO);
    ck_assert_int_eq(arena__wire_decode(buf, (size_t)ARENA_MAX_REPLY_FRAME + 1, &scratch, &o),
                     -EMSGSIZE);
    ck_assert_int_eq(arena__wire_decode(NULL, 4, &scratch, &o), -EINVAL);
    ck_assert_int_eq(arena__wire_decode(buf, 4, NULL, &o), -EINVAL);
    ck_assert_int_eq(memcmp(&o, &before, sizeof(o)), 0); /* untouched on failure */

    /* Every truncation of a valid frame is either refused or a valid prefix
     * decode; none crashes. */
    arena__msg_t m = {.request_id = 300, .kind = ARENA__MSG_HELLO_REPLY};
    m.u.hello_reply.daemon_version = "0.1.0-long-enough";
    m.u.hello_reply.heap_size = 1ull << 40;
    long n = arena__wire_encode(&m, buf, sizeof(buf));
    ck_assert_int_gt(n, 4);
    for (long cut = 0; cut < n - 4; cut++) {
        arena__scratch_reset(&scratch);
        int r = arena__wire_decode(buf + 4, (size_t)cut, &scratch, &o);
        ck_assert(r == 0 || r == -EPROTO || r == -ENOMSG);
    }
}
END_TEST

/* Packs a ListLeasesReply of n leases into a frame body in scratch memory. */
static size_t pack_lease_list(size_t n, uint8_t *out, size_t cap)
{
    Arena__V1__LeaseInfo *infos = calloc(n, sizeof(*infos));
    Arena__V1__LeaseInfo **ptrs = calloc(n, sizeof(*ptrs));
    ck_assert_ptr_nonnull(infos);
    ck_assert_ptr_nonnull(ptrs);
    for (size_t i = 0; i < n; i++) {
        Arena__V1__LeaseInfo init = ARENA__V1__LEASE_INFO__INIT;
        infos[i] = init;
        infos[i].lease_id = i + 1;
        infos[i].client_id = 1000 + i % 7;
        infos[i].offset = i * 65536;
        infos[i].size = 65536;
        infos[i].zeroed = i % 2;
        infos[i].age_ms = i;
        ptrs[i] = &infos[i];
    }
    Arena__V1__ListLeasesReply reply = ARENA__V1__LIST_LEASES_REPLY__INIT;
    reply.n_leases = n;
    reply.leases = ptrs;
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    env.request_id = 9;
    env.body_case = ARENA__V1__ENVELOPE__BODY_LIST_LEASES_REPLY;
    env.list_leases_reply = &reply;
    size_t len = arena__v1__envelope__get_packed_size(&env);
    ck_assert_uint_le(len, cap);
    ck_assert_uint_eq(arena__v1__envelope__pack(&env, out), len);
    free(ptrs);
    free(infos);
    return len;
}

START_TEST(test_decode_big_list_grows_scratch)
{
    /* 50000 leases: ~1 MiB on the wire, several MiB unpacked, far beyond the
     * first scratch chunk. */
    size_t cap = 4u << 20;
    uint8_t *frame = malloc(cap);
    ck_assert_ptr_nonnull(frame);
    size_t len = pack_lease_list(50000, frame, cap);
    arena__msg_t o;
    ck_assert_int_eq(arena__wire_decode(frame, len, &scratch, &o), 0);
    ck_assert_int_eq(o.kind, ARENA__MSG_LIST_LEASES_REPLY);
    ck_assert_uint_eq(o.u.list_leases_reply.count, 50000);
    for (size_t i = 0; i < 50000; i += 997) {
        const arena__rec_lease_t *l = &o.u.list_leases_reply.leases[i];
        ck_assert_uint_eq(l->lease_id, i + 1);
        ck_assert_uint_eq(l->client_id, 1000 + i % 7);
        ck_assert_uint_eq(l->offset, i * 65536);
        ck_assert_int_eq(l->zeroed, (int)(i % 2));
    }
    ck_assert_uint_gt(scratch.total, 256u * 1024u);
    /* Reset gives the extra chunks back. */
    arena__scratch_reset(&scratch);
    ck_assert_uint_eq(scratch.total, 256u * 1024u);

    /* With a small limit the same list is refused, not truncated. */
    arena__scratch_t small = {.limit = 512u * 1024u};
    ck_assert_int_eq(arena__wire_decode(frame, len, &small, &o), -EPROTO);
    ck_assert_uint_le(small.total, 512u * 1024u);
    arena__scratch_destroy(&small);

    /* An empty list is fine too. */
    len = pack_lease_list(0, frame, cap);
    ck_assert_int_eq(arena__wire_decode(frame, len, &scratch, &o), 0);
    ck_assert_uint_eq(o.u.list_leases_reply.count, 0);
    free(frame);
}
END_TEST

START_TEST(test_decode_client_list)
{
    Arena__V1__ClientInfo a = ARENA__V1__CLIENT_INFO__INIT, b = ARENA__V1__CLIENT_INFO__INIT;
    a.client_id = 1;
    a.pid = 100;
    a.name = "python3";
    a.leased_bytes = 1 << 20;
    b.client_id = 2;
    b.pid = 200;
    b.uid = 1000;
    b.name = NULL; /* the daemon may leave it out */
    Arena__V1__ClientInfo *ptrs[] = {&a, &b};
    Arena__V1__ListClientsReply reply = ARENA__V1__LIST_CLIENTS_REPLY__INIT;
    reply.n_clients = 2;
    reply.clients = ptrs;
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    env.request_id = 5;
    env.body_case = ARENA__V1__ENVELOPE__BODY_LIST_CLIENTS_REPLY;
    env.list_clients_reply = &reply;
    size_t len = arena__v1__envelope__pack(&env, buf);
    arena__msg_t o;
    ck_assert_int_eq(arena__wire_decode(buf, len, &scratch, &o), 0);
    ck_assert_int_eq(o.kind, ARENA__MSG_LIST_CLIENTS_REPLY);
    ck_assert_uint_eq(o.u.list_clients_reply.count, 2);
    ck_assert_str_eq(o.u.list_clients_reply.clients[0].name, "python3");
    ck_assert_uint_eq(o.u.list_clients_reply.clients[0].leased_bytes, 1 << 20);
    ck_assert_str_eq(o.u.list_clients_reply.clients[1].name, "");
    ck_assert_uint_eq(o.u.list_clients_reply.clients[1].uid, 1000);
}
END_TEST

START_TEST(test_scratch_alloc)
{
    arena__scratch_t s = {.limit = 1u << 20};
    char *a = arena__scratch_alloc(&s, 1);
    char *b = arena__scratch_alloc(&s, 1);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq((uintptr_t)a % 16, 0);
    ck_assert_uint_eq((uintptr_t)b % 16, 0);
    ck_assert_ptr_ne(a, b);
    /* A request bigger than the first chunk gets its own. */
    char *big = arena__scratch_alloc(&s, 300000);
    ck_assert_ptr_nonnull(big);
    memset(big, 0x5a, 300000);
    /* Past the limit: NULL, state unchanged. */
    size_t total = s.total;
    ck_assert_ptr_null(arena__scratch_alloc(&s, 2u << 20));
    ck_assert_uint_eq(s.total, total);
    arena__scratch_reset(&s);
    char *c = arena__scratch_alloc(&s, 1);
    ck_assert_ptr_eq(c, a); /* the first chunk is reused from its start */
    arena__scratch_destroy(&s);
    arena__scratch_destroy(&s); /* twice is fine */
    arena__scratch_destroy(NULL);
    ck_assert_ptr_null(s.first);
}
END_TEST

static Suite *wire_suite(void)
{
    Suite *s = suite_create("client_wire");
    TCase *tc = tcase_create("wire");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_roundtrip_requests);
    tcase_add_test(tc, test_roundtrip_replies);
    tcase_add_test(tc, test_strings_never_null);
    tcase_add_test(tc, test_encode_errors);
    tcase_add_test(tc, test_decode_refuses_garbage);
    tcase_add_test(tc, test_decode_names_unknown_bodies);
    tcase_add_test(tc, test_decode_big_list_grows_scratch);
    tcase_add_test(tc, test_decode_client_list);
    tcase_add_test(tc, test_scratch_alloc);
    suite_add_tcase(s, tc);
    return s;
}

ARENA_TEST_MAIN(wire_suite)
