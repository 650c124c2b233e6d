/* SPDX-License-Identifier: MIT
 *
 * test_wire.c -- the daemon's protocol adapter: requests decoded from frames
 * packed by protobuf-c, replies encoded and read back by protobuf-c, length
 * limits applied before unpacking, garbage refused.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "arena.pb-c.h"
#include "wire.h"

/* Packs env and decodes it with ad_wire_decode. */
static int decode_env(const Arena__V1__Envelope *env, ad_wire_request_t *ret)
{
    size_t len = arena__v1__envelope__get_packed_size(env);
    uint8_t *buf = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(buf);
    (void)arena__v1__envelope__pack(env, buf);
    int r = ad_wire_decode(buf, len, 64 * 1024, ret);
    free(buf);
    return r;
}

START_TEST(test_decode_requests)
{
    ad_wire_request_t req;
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;

    Arena__V1__Hello hello = ARENA__V1__HELLO__INIT;
    hello.protocol_version = 1;
    hello.client_name = "python3";
    env.request_id = 42;
    env.body_case = ARENA__V1__ENVELOPE__BODY_HELLO;
    env.hello = &hello;
    ck_assert_int_eq(decode_env(&env, &req), 0);
    ck_assert_int_eq(req.type, AD_WIRE_REQ_HELLO);
    ck_assert_uint_eq(req.request_id, 42);
    ck_assert_uint_eq(req.u.hello.protocol_version, 1);
    ck_assert_str_eq(req.u.hello.name, "python3");

    Arena__V1__LeaseRequest lease = ARENA__V1__LEASE_REQUEST__INIT;
    lease.size = 1ull << 40;
    lease.wait_ms = -1;
    env.request_id = UINT64_MAX;
    env.body_case = ARENA__V1__ENVELOPE__BODY_LEASE;
    env.lease = &lease;
    ck_assert_int_eq(decode_env(&env, &req), 0);
    ck_assert_int_eq(req.type, AD_WIRE_REQ_LEASE);
    ck_assert_uint_eq(req.request_id, UINT64_MAX);
    ck_assert_uint_eq(req.u.lease.size, 1ull << 40);
    ck_assert_int_eq(req.u.lease.wait_ms, -1);

    Arena__V1__ReleaseRequest rel = ARENA__V1__RELEASE_REQUEST__INIT;
    rel.lease_id = 7;
    env.body_case = ARENA__V1__ENVELOPE__BODY_RELEASE;
    env.release = &rel;
    ck_assert_int_eq(decode_env(&env, &req), 0);
    ck_assert_int_eq(req.type, AD_WIRE_REQ_RELEASE);
    ck_assert_uint_eq(req.u.release.lease_id, 7);

    Arena__V1__StatusRequest st = ARENA__V1__STATUS_REQUEST__INIT;
    env.body_case = ARENA__V1__ENVELOPE__BODY_STATUS;
    env.status = &st;
    ck_assert_int_eq(decode_env(&env, &req), 0);
    ck_assert_int_eq(req.type, AD_WIRE_REQ_STATUS);

    Arena__V1__ListClientsRequest lc = ARENA__V1__LIST_CLIENTS_REQUEST__INIT;
    env.body_case = ARENA__V1__ENVELOPE__BODY_LIST_CLIENTS;
    env.list_clients = &lc;
    ck_assert_int_eq(decode_env(&env, &req), 0);
    ck_assert_int_eq(req.type, AD_WIRE_REQ_LIST_CLIENTS);

    Arena__V1__ListLeasesRequest ll = ARENA__V1__LIST_LEASES_REQUEST__INIT;
    ll.client_id = 3;
    env.body_case = ARENA__V1__ENVELOPE__BODY_LIST_LEASES;
    env.list_leases = &ll;
    ck_assert_int_eq(decode_env(&env, &req), 0);
    ck_assert_int_eq(req.type, AD_WIRE_REQ_LIST_LEASES);
    ck_assert_uint_eq(req.u.list_leases.client_id, 3);

    Arena__V1__ReclaimRequest rc = ARENA__V1__RECLAIM_REQUEST__INIT;
    rc.bytes = 4096;
    rc.client_id = 9;
    env.body_case = ARENA__V1__ENVELOPE__BODY_RECLAIM;
    env.reclaim = &rc;
    ck_assert_int_eq(decode_env(&env, &req), 0);
    ck_assert_int_eq(req.type, AD_WIRE_REQ_RECLAIM);
    ck_assert_uint_eq(req.u.reclaim.bytes, 4096);
    ck_assert_uint_eq(req.u.reclaim.client_id, 9);

    Arena__V1__MetricsRequest mr = ARENA__V1__METRICS_REQUEST__INIT;
    env.body_case = ARENA__V1__ENVELOPE__BODY_METRICS;
    env.metrics = &mr;
    ck_assert_int_eq(decode_env(&env, &req), 0);
    ck_assert_int_eq(req.type, AD_WIRE_REQ_METRICS);
    ck_assert_str_eq(ad_wire_req_name(req.type), "metrics");
}
END_TEST

START_TEST(test_decode_unknown_bodies)
{
    ad_wire_request_t req;
    /* Empty payload: an envelope with nothing set. */
    ck_assert_int_eq(ad_wire_decode((const uint8_t *)"", 0, 1024, &req), 0);
    ck_assert_int_eq(req.type, AD_WIRE_REQ_UNKNOWN);
    ck_assert_uint_eq(req.request_id, 0);
    /* A reply sent to the daemon is not a request. */
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__LeaseReply lr = ARENA__V1__LEASE_REPLY__INIT;
    env.request_id = 5;
    env.body_case = ARENA__V1__ENVELOPE__BODY_LEASE_REPLY;
    env.lease_reply = &lr;
    ck_assert_int_eq(decode_env(&env, &req), 0);
    ck_assert_int_eq(req.type, AD_WIRE_REQ_UNKNOWN);
    ck_assert_uint_eq(req.request_id, 5);
    ck_assert_str_eq(ad_wire_req_name(req.type), "unknown");
    /* An unknown field number (99, varint 1). */
    const uint8_t unknown[] = {0x08, 6, 0x98, 0x06, 0x01};
    ck_assert_int_eq(ad_wire_decode(unknown, sizeof(unknown), 1024, &req), 0);
    ck_assert_int_eq(req.type, AD_WIRE_REQ_UNKNOWN);
    ck_assert_uint_eq(req.request_id, 6);
}
END_TEST

START_TEST(test_decode_garbage)
{
    ad_wire_request_t req, before;
    memset(&req, 0xab, sizeof(req));
    before = req;
    /* Invalid wire type 7. */
    const uint8_t bad_type[] = {0xff, 0x01, 0x02};
    ck_assert_int_eq(ad_wire_decode(bad_type, sizeof(bad_type), 1024, &req), -EPROTO);
    /* A length-delimited field that runs past the end. */
    const uint8_t overrun[] = {0x52, 0x7f, 0x08};
    ck_assert_int_eq(ad_wire_decode(overrun, sizeof(overrun), 1024, &req), -EPROTO);
    /* A varint that never ends. */
    uint8_t endless[16];
    memset(endless, 0xff, sizeof(endless));
    endless[0] = 0x08;
    ck_assert_int_eq(ad_wire_decode(endless, sizeof(endless), 1024, &req), -EPROTO);
    /* Seeded random bytes starting with an invalid tag. */
    unsigned seed = 99;
    uint8_t junk[512];
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i < sizeof(junk); i++)
            junk[i] = (uint8_t)(rand_r(&seed) >> 3);
        junk[0] = 0x07; /* field 0 is never valid */
        ck_assert_int_eq(ad_wire_decode(junk, sizeof(junk), 1024, &req), -EPROTO);
    }
    ck_assert(memcmp(&req, &before, sizeof(req)) == 0);
    /* Pure random bytes must never crash; any result is one of the three. */
    for (int round = 0; round < 2000; round++) {
        size_t len = (size_t)(rand_r(&seed) % 64);
        for (size_t i = 0; i < len; i++)
            junk[i] = (uint8_t)(rand_r(&seed) >> 3);
        int r = ad_wire_decode(junk, len, 1024, &req);
        ck_assert(r == 0 || r == -EPROTO);
    }
}
END_TEST

START_TEST(test_length_checked_before_unpack)
{
    size_t len = 0;
    uint8_t hdr[4] = {0x01, 0x00, 0x01, 0x00}; /* 65537 */
    ck_assert_int_eq(ad_wire_frame_length(hdr, 65536, &len), -EMSGSIZE);
    ck_assert_uint_eq(len, 65537);
    ck_assert_int_eq(ad_wire_frame_length(hdr, 65537, &len), 0);
    uint8_t max[4] = {0xff, 0xff, 0xff, 0xff};
    ck_assert_int_eq(ad_wire_frame_length(max, 65536, &len), -EMSGSIZE);
    ck_assert_uint_eq(len, 0xffffffffu);
    uint8_t zero[4] = {0, 0, 0, 0};
    ck_assert_int_eq(ad_wire_frame_length(zero, 65536, &len), 0);
    ck_assert_uint_eq(len, 0);

    /* A valid envelope longer than max_frame is refused without decoding. */
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__Hello hello = ARENA__V1__HELLO__INIT;
    char name[300];
    memset(name, 'a', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    hello.client_name = name;
    env.body_case = ARENA__V1__ENVELOPE__BODY_HELLO;
    env.hello = &hello;
    size_t n = arena__v1__envelope__get_packed_size(&env);
    uint8_t *buf = malloc(n);
    ck_assert_ptr_nonnull(buf);
    (void)arena__v1__envelope__pack(&env, buf);
    ad_wire_request_t req;
    ck_assert_int_eq(ad_wire_decode(buf, n, n - 1, &req), -EMSGSIZE);
    ck_assert_int_eq(ad_wire_decode(buf, n, n, &req), 0);
    /* The name is cut to AD_WIRE_NAME_MAX. */
    ck_assert_uint_eq(strlen(req.u.hello.name), AD_WIRE_NAME_MAX);
    free(buf);
}
END_TEST

START_TEST(test_name_filtered)
{
    Arena__V1__Envelope env = ARENA__V1__ENVELOPE__INIT;
    Arena__V1__Hello hello = ARENA__V1__HELLO__INIT;
    hello.client_name = "evil\nline\x1b[0m";
    env.body_case = ARENA__V1__ENVELOPE__BODY_HELLO;
    env.hello = &hello;
    ad_wire_request_t req;
    ck_assert_int_eq(decode_env(&env, &req), 0);
    ck_assert_str_eq(req.u.hello.name, "evil?line?[0m");
}
END_TEST

/* Encodes reply and unpacks it again with protobuf-c. */
static Arena__V1__Envelope *round_trip(const ad_wire_reply_t *reply)
{
    uint8_t *frame = NULL;
    size_t len = 0;
    ck_assert_int_eq(ad_wire_encode(reply, &frame, &len), 0);
    ck_assert_uint_ge(len, 4);
    uint32_t plen = (uint32_t)frame[0] | (uint32_t)frame[1] << 8 | (uint32_t)frame[2] << 16 |
                    (uint32_t)frame[3] << 24;
    ck_assert_uint_eq(plen, len - 4);
    Arena__V1__Envelope *env = arena__v1__envelope__unpack(NULL, plen, frame + 4);
    ck_assert_ptr_nonnull(env);
    ck_assert_uint_eq(env->request_id, reply->request_id);
    free(frame);
    return env;
}

START_TEST(test_encode_replies)
{
    ad_wire_reply_t r;
    Arena__V1__Envelope *env;

    memset(&r, 0, sizeof(r));
    r.request_id = 1;
    r.type = AD_WIRE_REPLY_HELLO;
    r.u.hello.client_id = 17;
    r.u.hello.heap_size = 1ull << 34;
    r.u.hello.granule = 4096;
    r.u.hello.budget = 1ull << 33;
    r.u.hello.hugetlb = true;
    r.u.hello.daemon_version = "0.1.0";
    env = round_trip(&r);
    ck_assert_int_eq(env->body_case, ARENA__V1__ENVELOPE__BODY_HELLO_REPLY);
    ck_assert_uint_eq(env->hello_reply->protocol_version, 1);
    ck_assert_uint_eq(env->hello_reply->client_id, 17);
    ck_assert_uint_eq(env->hello_reply->heap_size, 1ull << 34);
    ck_assert_uint_eq(env->hello_reply->granule, 4096);
    ck_assert_uint_eq(env->hello_reply->budget, 1ull << 33);
    ck_assert(env->hello_reply->hugetlb);
    ck_assert_str_eq(env->hello_reply->daemon_version, "0.1.0");
    arena__v1__envelope__free_unpacked(env, NULL);

    memset(&r, 0, sizeof(r));
    r.request_id = 2;
    r.type = AD_WIRE_REPLY_LEASE;
    r.u.lease.lease_id = 5;
    r.u.lease.offset = 8192;
    r.u.lease.size = 4096;
    r.u.lease.zeroed = true;
    env = round_trip(&r);
    ck_assert_int_eq(env->body_case, ARENA__V1__ENVELOPE__BODY_LEASE_REPLY);
    ck_assert_uint_eq(env->lease_reply->lease_id, 5);
    ck_assert_uint_eq(env->lease_reply->offset, 8192);
    ck_assert_uint_eq(env->lease_reply->size, 4096);
    ck_assert(env->lease_reply->zeroed);
    arena__v1__envelope__free_unpacked(env, NULL);

    memset(&r, 0, sizeof(r));
    r.request_id = 3;
    r.type = AD_WIRE_REPLY_RELEASE;
    r.u.release.lease_id = 5;
    env = round_trip(&r);
    ck_assert_int_eq(env->body_case, ARENA__V1__ENVELOPE__BODY_RELEASE_REPLY);
    ck_assert_uint_eq(env->release_reply->lease_id, 5);
    arena__v1__envelope__free_unpacked(env, NULL);

    memset(&r, 0, sizeof(r));
    r.request_id = 4;
    r.type = AD_WIRE_REPLY_STATUS;
    (void)snprintf(r.u.status.daemon_version, sizeof(r.u.status.daemon_version), "v");
    (void)snprintf(r.u.status.socket_path, sizeof(r.u.status.socket_path),
                   "/run/arenad/arenad.sock");
    r.u.status.uptime_ms = 1;
    r.u.status.budget = 2;
    r.u.status.heap_size = 3;
    r.u.status.leased_bytes = 4;
    r.u.status.free_bytes = 5;
    r.u.status.dirty_bytes = 6;
    r.u.status.largest_free = 7;
    r.u.status.free_extents = 8;
    r.u.status.fragmentation = 0.25;
    r.u.status.clients = 9;
    r.u.status.pools = 10;
    r.u.status.leases = 11;
    r.u.status.leases_granted_total = 12;
    r.u.status.leases_released_total = 13;
    r.u.status.bytes_punched_total = 14;
    r.u.status.requests_refused_total = 15;
    r.u.status.protocol_errors_total = 16;
    r.u.status.connections_total = 17;
    r.u.status.restart_held_bytes = 18;
    env = round_trip(&r);
    ck_assert_int_eq(env->body_case, ARENA__V1__ENVELOPE__BODY_STATUS_REPLY);
    Arena__V1__StatusReply *s = env->status_reply;
    ck_assert_str_eq(s->daemon_version, "v");
    ck_assert_str_eq(s->socket_path, "/run/arenad/arenad.sock");
    ck_assert_uint_eq(s->uptime_ms, 1);
    ck_assert_uint_eq(s->budget, 2);
    ck_assert_uint_eq(s->heap_size, 3);
    ck_assert_uint_eq(s->leased_bytes, 4);
    ck_assert_uint_eq(s->free_bytes, 5);
    ck_assert_uint_eq(s->dirty_bytes, 6);
    ck_assert_uint_eq(s->largest_free, 7);
    ck_assert_uint_eq(s->free_extents, 8);
    ck_assert_double_eq(s->fragmentation, 0.25);
    ck_assert_uint_eq(s->clients, 9);
    ck_assert_uint_eq(s->pools, 10);
    ck_assert_uint_eq(s->leases, 11);
    ck_assert_uint_eq(s->leases_granted_total, 12);
    ck_assert_uint_eq(s->leases_released_total, 13);
    ck_assert_uint_eq(s->bytes_punched_total, 14);
    ck_assert_uint_eq(s->requests_refused_total, 15);
    ck_assert_uint_eq(s->protocol_errors_total, 16);
    ck_assert_uint_eq(s->connections_total, 17);
    ck_assert_uint_eq(s->restart_held_bytes, 18);
    arena__v1__envelope__free_unpacked(env, NULL);

    ad_wire_client_info_t clients[2] = {
        {.client_id = 1,
         .pid = 100,
         .uid = 1000,
         .gid = 1000,
         .name = "a",
         .leased_bytes = 10,
         .leases = 1,
         .connected_ms = 5},
        {.client_id = 2, .pid = 200, .uid = 0, .gid = 0, .name = ""},
    };
    memset(&r, 0, sizeof(r));
    r.request_id = 5;
    r.type = AD_WIRE_REPLY_LIST_CLIENTS;
    r.u.clients.items = clients;
    r.u.clients.count = 2;
    env = round_trip(&r);
    ck_assert_int_eq(env->body_case, ARENA__V1__ENVELOPE__BODY_LIST_CLIENTS_REPLY);
    ck_assert_uint_eq(env->list_clients_reply->n_clients, 2);
    ck_assert_uint_eq(env->list_clients_reply->clients[0]->pid, 100);
    ck_assert_str_eq(env->list_clients_reply->clients[0]->name, "a");
    ck_assert_uint_eq(env->list_clients_reply->clients[0]->leased_bytes, 10);
    ck_assert_uint_eq(env->list_clients_reply->clients[0]->connected_ms, 5);
    ck_assert_uint_eq(env->list_clients_reply->clients[1]->client_id, 2);
    ck_assert_str_eq(env->list_clients_reply->clients[1]->name, "");
    arena__v1__envelope__free_unpacked(env, NULL);

    /* An empty list. */
    r.u.clients.items = NULL;
    r.u.clients.count = 0;
    env = round_trip(&r);
    ck_assert_uint_eq(env->list_clients_reply->n_clients, 0);
    arena__v1__envelope__free_unpacked(env, NULL);

    ad_wire_lease_info_t leases[1] = {{.lease_id = 3,
                                       .client_id = 1,
                                       .uid = 1000,
                                       .offset = 4096,
                                       .size = 8192,
                                       .zeroed = true,
                                       .age_ms = 9}};
    memset(&r, 0, sizeof(r));
    r.request_id = 6;
    r.type = AD_WIRE_REPLY_LIST_LEASES;
    r.u.leases.items = leases;
    r.u.leases.count = 1;
    env = round_trip(&r);
    ck_assert_int_eq(env->body_case, ARENA__V1__ENVELOPE__BODY_LIST_LEASES_REPLY);
    ck_assert_uint_eq(env->list_leases_reply->n_leases, 1);
    ck_assert_uint_eq(env->list_leases_reply->leases[0]->lease_id, 3);
    ck_assert_uint_eq(env->list_leases_reply->leases[0]->offset, 4096);
    ck_assert_uint_eq(env->list_leases_reply->leases[0]->size, 8192);
    ck_assert(env->list_leases_reply->leases[0]->zeroed);
    ck_assert_uint_eq(env->list_leases_reply->leases[0]->age_ms, 9);
    arena__v1__envelope__free_unpacked(env, NULL);

    memset(&r, 0, sizeof(r));
    r.request_id = 7;
    r.type = AD_WIRE_REPLY_RECLAIM;
    r.u.reclaim.reclaimed_bytes = 1u << 20;
    env = round_trip(&r);
    ck_assert_uint_eq(env->reclaim_reply->reclaimed_bytes, 1u << 20);
    arena__v1__envelope__free_unpacked(env, NULL);

    memset(&r, 0, sizeof(r));
    r.request_id = 8;
    r.type = AD_WIRE_REPLY_METRICS;
    r.u.metrics.text = "# HELP x y\n";
    env = round_trip(&r);
    ck_assert_str_eq(env->metrics_reply->text, "# HELP x y\n");
    arena__v1__envelope__free_unpacked(env, NULL);

    memset(&r, 0, sizeof(r));
    r.request_id = 9;
    r.type = AD_WIRE_REPLY_ERROR;
    r.u.error.code = AD_WIRE_ERROR_NOT_OWNER;
    r.u.error.message = "not yours";
    env = round_trip(&r);
    ck_assert_int_eq(env->body_case, ARENA__V1__ENVELOPE__BODY_ERROR);
    ck_assert_int_eq(env->error->code, ARENA__V1__ERROR_CODE__ERROR_NOT_OWNER);
    ck_assert_str_eq(env->error->message, "not yours");
    arena__v1__envelope__free_unpacked(env, NULL);
}
END_TEST

START_TEST(test_encode_bad_type)
{
    ad_wire_reply_t r;
    memset(&r, 0, sizeof(r));
    r.type = (ad_wire_reply_type_t)999;
    uint8_t *frame = (uint8_t *)&r;
    size_t len = 12345;
    ck_assert_int_eq(ad_wire_encode(&r, &frame, &len), -EINVAL);
    ck_assert_ptr_eq(frame, (uint8_t *)&r);
    ck_assert_uint_eq(len, 12345);
    ck_assert_int_eq(ad_wire_encode(NULL, &frame, &len), -EINVAL);
}
END_TEST

static Suite *wire_suite(void)
{
    Suite *s = suite_create("wire");
    TCase *tc = tcase_create("wire");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_decode_requests);
    tcase_add_test(tc, test_decode_unknown_bodies);
    tcase_add_test(tc, test_decode_garbage);
    tcase_add_test(tc, test_length_checked_before_unpack);
    tcase_add_test(tc, test_name_filtered);
    tcase_add_test(tc, test_encode_replies);
    tcase_add_test(tc, test_encode_bad_type);
    suite_add_tcase(s, tc);
    return s;
}

ARENA_TEST_MAIN(wire_suite)
