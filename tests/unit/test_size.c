/* SPDX-License-Identifier: MIT
 *
 * test_size.c -- parsing and printing sizes: every suffix, percentages,
 * fractions, and the malformed inputs that must be refused.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "check_main.h"
#include "paths.h"
#include "size.h"

static uint64_t parse(const char *s, uint64_t total)
{
    uint64_t b = 0;
    ck_assert_msg(arena__size_parse(s, total, &b) == 0, "'%s' should parse", s);
    return b;
}

START_TEST(test_parse_good)
{
    ck_assert_uint_eq(parse("0", 0), 0);
    ck_assert_uint_eq(parse("4096", 0), 4096);
    ck_assert_uint_eq(parse("4096B", 0), 4096);
    ck_assert_uint_eq(parse("4k", 0), 4096);
    ck_assert_uint_eq(parse("4KiB", 0), 4096);
    ck_assert_uint_eq(parse("512M", 0), 512ull << 20);
    ck_assert_uint_eq(parse(" 8G ", 0), 8ull << 30);
    ck_assert_uint_eq(parse("2TiB", 0), 2ull << 40);
    ck_assert_uint_eq(parse("1.5G", 0), 3ull << 29);
    ck_assert_uint_eq(parse("75%", 1000), 750);
    ck_assert_uint_eq(parse("100%", 1000), 1000);
    ck_assert_uint_eq(parse("50%", UINT64_MAX), UINT64_MAX / 2);
    ck_assert_uint_eq(parse("16777215T", 0), 16777215ull << 40);
}
END_TEST

START_TEST(test_parse_bad)
{
    const char *bad[] = {"",   " ",    "M",   "-1",    "1 2", "12Q",   "1.G", "0x10",
                         "5%", "101%", "1e9", "1,000", "G8",  "1..5M", "%"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t b = 42;
        uint64_t total = i == 8 ? 0 : 1000; /* "5%" with no total to take it of */
        ck_assert_msg(arena__size_parse(bad[i], total, &b) == -EINVAL, "'%s' should fail", bad[i]);
        ck_assert_uint_eq(b, 42);
    }
    uint64_t b = 42;
    ck_assert_int_eq(arena__size_parse("18446744073709551616", 0, &b), -ERANGE);
    ck_assert_int_eq(arena__size_parse("16777216T", 0, &b), -ERANGE);
    ck_assert_int_eq(arena__size_parse(NULL, 0, &b), -EINVAL);
    ck_assert_uint_eq(b, 42);
}
END_TEST

START_TEST(test_format)
{
    char buf[32];
    ck_assert_str_eq(arena__size_format(0, buf, sizeof(buf)), "0 B");
    ck_assert_str_eq(arena__size_format(1023, buf, sizeof(buf)), "1023 B");
    ck_assert_str_eq(arena__size_format(4096, buf, sizeof(buf)), "4.0 KiB");
    ck_assert_str_eq(arena__size_format(3ull << 29, buf, sizeof(buf)), "1.5 GiB");
    ck_assert_str_eq(arena__size_format(UINT64_MAX, buf, sizeof(buf)), "16.0 EiB");
    ck_assert_str_eq(arena__size_format(4096, buf, 4), "4.0");
    ck_assert_uint_gt(arena__physical_memory(), 0);
}
END_TEST

START_TEST(test_default_socket_path)
{
    char buf[128];
    setenv("ARENAD_SOCKET", "/tmp/x.sock", 1);
    ck_assert_int_eq(arena__default_socket_path(buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "/tmp/x.sock");
    ck_assert_int_eq(arena__default_socket_path(buf, 5), -ENAMETOOLONG);
    unsetenv("ARENAD_SOCKET");
    ck_assert_int_eq(arena__default_socket_path(buf, sizeof(buf)), 0);
    if (geteuid() == 0)
        ck_assert_str_eq(buf, "/run/arenad/arenad.sock");
}
END_TEST

START_TEST(test_client_socket_path)
{
    char buf[128];
    setenv("ARENAD_SOCKET", "/tmp/y.sock", 1);
    ck_assert_int_eq(arena__client_socket_path(buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "/tmp/y.sock");
    unsetenv("ARENAD_SOCKET");
    /* The unprivileged rules; Check runs this test in a process of its own. */
    if (geteuid() == 0 && setuid(65534) < 0)
        ck_abort_msg("setuid: %s", strerror(errno));
    char dir[] = "/tmp/arena-paths-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    setenv("XDG_RUNTIME_DIR", dir, 1);
    char user[sizeof(((struct sockaddr_un *)0)->sun_path)];
    (void)snprintf(user, sizeof(user), "%s/arenad.sock", dir);
    bool system_daemon = access(ARENA_DEFAULT_SYSTEM_SOCKET, F_OK) == 0;
    ck_assert_int_eq(arena__client_socket_path(buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, system_daemon ? ARENA_DEFAULT_SYSTEM_SOCKET : user);
    /* A per-user daemon's socket wins. */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, user, sizeof(user));
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(arena__client_socket_path(buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, user);
    (void)close(fd);
    (void)unlink(user);
    (void)rmdir(dir);
    /* No XDG_RUNTIME_DIR: the system socket, never an error. */
    unsetenv("XDG_RUNTIME_DIR");
    ck_assert_int_eq(arena__client_socket_path(buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, ARENA_DEFAULT_SYSTEM_SOCKET);
    ck_assert_int_eq(arena__client_socket_path(buf, 4), -ENAMETOOLONG);
}
END_TEST

static Suite *size_suite(void)
{
    Suite *s = suite_create("size");
    TCase *tc = tcase_create("size");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_parse_good);
    tcase_add_test(tc, test_parse_bad);
    tcase_add_test(tc, test_format);
    tcase_add_test(tc, test_default_socket_path);
    tcase_add_test(tc, test_client_socket_path);
    suite_add_tcase(s, tc);
    return s;
}

ARENA_TEST_MAIN(size_suite)
