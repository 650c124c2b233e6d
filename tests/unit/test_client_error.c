/* SPDX-License-Identifier: MIT
 *
 * test_client_error.c -- the daemon's error codes map onto the client's, and
 * arena_strerror() has text for every code the library returns.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "arena.h"
#include "conn.h"
#include "wire.h"

START_TEST(test_wire_codes_map)
{
    static const struct {
        int wire;
        int client;
    } map[] = {
        {ARENA__WIRE_ERROR_PROTOCOL, ARENA_EPROTOCOL},
        {ARENA__WIRE_ERROR_VERSION, ARENA_EVERSION},
        {ARENA__WIRE_ERROR_INVALID_ARGUMENT, -EINVAL},
        {ARENA__WIRE_ERROR_NO_MEMORY, -ENOMEM},
        {ARENA__WIRE_ERROR_TOO_LARGE, -E2BIG},
        {ARENA__WIRE_ERROR_NOT_FOUND, -ENOENT},
        {ARENA__WIRE_ERROR_NOT_OWNER, ARENA_ENOTOWNER},
        {ARENA__WIRE_ERROR_PERMISSION, -EPERM},
        {ARENA__WIRE_ERROR_LIMIT, ARENA_ELIMIT},
        {ARENA__WIRE_ERROR_FRAME_TOO_LARGE, -EMSGSIZE},
        {ARENA__WIRE_ERROR_INTERNAL, ARENA_EDAEMON},
        {ARENA__WIRE_ERROR_TIMED_OUT, -ETIMEDOUT},
        {ARENA__WIRE_ERROR_CONFLICT, -EBUSY},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        ck_assert_int_eq(arena__error_from_wire(map[i].wire), map[i].client);
}
END_TEST

START_TEST(test_unknown_wire_codes_are_protocol_errors)
{
    /* ERROR_NONE inside an Error, and codes from a future daemon. */
    ck_assert_int_eq(arena__error_from_wire(ARENA__WIRE_ERROR_NONE), ARENA_EPROTOCOL);
    ck_assert_int_eq(arena__error_from_wire(14), ARENA_EPROTOCOL);
    ck_assert_int_eq(arena__error_from_wire(-1), ARENA_EPROTOCOL);
    ck_assert_int_eq(arena__error_from_wire(1 << 30), ARENA_EPROTOCOL);
}
END_TEST

START_TEST(test_strerror_arena_codes_distinct)
{
    static const int codes[] = {ARENA_ENODAEMON, ARENA_EVERSION,      ARENA_ENOTOWNER,
                                ARENA_ELIMIT,    ARENA_EDISCONNECTED, ARENA_EPROTOCOL,
                                ARENA_EDAEMON,   ARENA_ERECLAIMED};
    const size_t n = sizeof(codes) / sizeof(codes[0]);
    const char *unknown = arena_strerror(-19999);
    for (size_t i = 0; i < n; i++) {
        const char *s = arena_strerror(codes[i]);
        ck_assert_ptr_nonnull(s);
        ck_assert_uint_gt(strlen(s), 5);
        ck_assert_str_ne(s, unknown);
        for (size_t j = 0; j < i; j++)
            ck_assert_str_ne(s, arena_strerror(codes[j]));
    }
}
END_TEST

START_TEST(test_strerror_errno_values)
{
    /* Every -errno the library documents gets the system's own text. */
    static const int errs[] = {EINVAL,    ENOMEM, E2BIG,        ENOENT, EPERM, EMSGSIZE,
                               ETIMEDOUT, EPROTO, ENAMETOOLONG, EEXIST, EACCES};
    for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
        const char *s = arena_strerror(-errs[i]);
        ck_assert_str_eq(s, strerrordesc_np(errs[i]));
        /* A positive value by mistake says the same. */
        ck_assert_str_eq(arena_strerror(errs[i]), s);
    }
    ck_assert_str_eq(arena_strerror(-ENOMEM), "Cannot allocate memory");
    ck_assert_str_eq(arena_strerror(0), "Success");
}
END_TEST

START_TEST(test_strerror_unknown_values)
{
    ck_assert_str_eq(arena_strerror(-4095), "Unknown error");
    ck_assert_str_eq(arena_strerror(-20000), "Unknown error");
    ck_assert_str_eq(arena_strerror(-20099), "Unknown error");
    ck_assert_str_eq(arena_strerror(-2147483647 - 1), "Unknown error");
    ck_assert_str_eq(arena_strerror(2147483647), "Unknown error");
}
END_TEST

static void *strerror_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20000; i++) {
        int code = (i % 3 == 0) ? -(i % 140) : ARENA_ENODAEMON - (i % 8);
        const char *s = arena_strerror(code);
        if (!s || !*s)
            return (void *)1;
    }
    return NULL;
}

START_TEST(test_strerror_threads)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, strerror_thread, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *ret;
        ck_assert_int_eq(pthread_join(t[i], &ret), 0);
        ck_assert_ptr_null(ret);
    }
}
END_TEST

static Suite *error_suite(void)
{
    Suite *s = suite_create("client_error");
    TCase *tc = tcase_create("error");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_wire_codes_map);
    tcase_add_test(tc, test_unknown_wire_codes_are_protocol_errors);
    tcase_add_test(tc, test_strerror_arena_codes_distinct);
    tcase_add_test(tc, test_strerror_errno_values);
    tcase_add_test(tc, test_strerror_unknown_values);
    tcase_add_test(tc, test_strerror_threads);
    suite_add_tcase(s, tc);
    return s;
}

ARENA_TEST_MAIN(error_suite)
