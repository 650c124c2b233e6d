/* SPDX-License-Identifier: MIT
 *
 * test_config.c -- arenad's settings: every key, bad lines reported as
 * FILE:LINE, files applied atomically, flags over the file, finalize, and
 * a reload: the lease manager's settings built as at start-up, restart-only
 * changes reported.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "config.h"
#include "size.h"

static char conf_path[64];

/* Writes text to a fresh temporary file; its path is in conf_path. */
static const char *write_conf(const char *text)
{
    (void)snprintf(conf_path, sizeof(conf_path), "/tmp/arenad-conf-XXXXXX");
    int fd = mkstemp(conf_path);
    ck_assert_int_ge(fd, 0);
    size_t len = strlen(text);
    ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
    (void)close(fd);
    return conf_path;
}

static void drop_conf(void)
{
    if (conf_path[0])
        (void)unlink(conf_path);
    conf_path[0] = '\0';
}

START_TEST(test_defaults)
{
    ad_config_t c;
    ad_config_defaults(&c);
    ck_assert_uint_eq(c.budget, arena__physical_memory() / 2);
    ck_assert_uint_eq(c.heap_size, 0);
    ck_assert_uint_eq(c.small_lease_limit, 4u << 20);
    ck_assert_uint_eq(c.decay_ms, 2000);
    ck_assert_uint_eq(c.max_frame, 64u * 1024u);
    ck_assert_uint_eq(c.frame_timeout_ms, 30000);
    ck_assert_uint_eq(c.max_clients, 4096);
    ck_assert_uint_eq(c.max_connections_per_uid, 256);
    ck_assert_uint_eq(c.hello_timeout_ms, 10000);
    ck_assert_uint_eq(c.max_requests_in_flight, 64);
    ck_assert_uint_eq(c.max_reply_queue, 8u << 20);
    ck_assert_uint_eq(c.max_leases_per_client, 65536);
    ck_assert_int_eq(c.log_level, AD_LOG_INFO);
    ck_assert_uint_eq(c.socket_mode, 0666);
    ck_assert(!c.hugetlb);
    ck_assert(!c.has_admin_group);
    ck_assert_str_eq(c.socket, "");
}
END_TEST

START_TEST(test_every_key)
{
    const char *path = write_conf("# arenad test configuration\n"
                                  "\n"
                                  "socket = /tmp/x/arenad.sock\n"
                                  "budget = 512M\n"
                                  "  heap_size=2G  \n"
                                  "small_lease_limit = 1M\n"
                                  "decay_ms = 0\n"
                                  "max_frame = 128K\n"
                                  "frame_timeout_ms = 0\n"
                                  "max_clients = 7\n"
                                  "max_connections_per_uid = 0\n"
                                  "hello_timeout_ms = 250\n"
                                  "max_requests_in_flight = 5\n"
                                  "max_reply_queue = 1M\n"
                                  "max_leases_per_client = 9\n"
                                  "max_bytes_per_uid = 3G\n"
                                  "log_level = debug\n"
                                  "socket_mode = 0600\n"
                                  "hugetlb = yes\n"
                                  "admin_group = 0\n");
    ad_config_t c;
    ad_config_defaults(&c);
    char err[AD_CONFIG_ERR_MAX] = "";
    ck_assert_int_eq(ad_config_load(&c, path, err, sizeof(err)), 0);
    drop_conf();
    ck_assert_str_eq(c.socket, "/tmp/x/arenad.sock");
    ck_assert_uint_eq(c.budget, 512u << 20);
    ck_assert_uint_eq(c.heap_size, 2ull << 30);
    ck_assert_uint_eq(c.small_lease_limit, 1u << 20);
    ck_assert_uint_eq(c.decay_ms, 0);
    ck_assert_uint_eq(c.max_frame, 128u * 1024u);
    ck_assert_uint_eq(c.frame_timeout_ms, 0);
    ck_assert_uint_eq(c.max_clients, 7);
    ck_assert_uint_eq(c.max_connections_per_uid, 0);
    ck_assert_uint_eq(c.hello_timeout_ms, 250);
    ck_assert_uint_eq(c.max_requests_in_flight, 5);
    ck_assert_uint_eq(c.max_reply_queue, 1u << 20);
    ck_assert_uint_eq(c.max_leases_per_client, 9);
    ck_assert_uint_eq(c.max_bytes_per_uid, 3ull << 30);
    ck_assert_int_eq(c.log_level, AD_LOG_DEBUG);
    ck_assert_uint_eq(c.socket_mode, 0600);
    ck_assert(c.hugetlb);
    ck_assert(c.has_admin_group);
    ck_assert_uint_eq(c.admin_gid, 0);
    ck_assert(c.set & AD_CONFIG_SET_SOCKET);
    ck_assert(c.set & AD_CONFIG_SET_HEAP_SIZE);
}
END_TEST

START_TEST(test_values)
{
    ad_config_t c;
    ad_config_defaults(&c);
    char err[AD_CONFIG_ERR_MAX];
    ck_assert_int_eq(ad_config_set(&c, "budget", "25%", err, sizeof(err)), 0);
    ck_assert_uint_eq(c.budget, arena__physical_memory() / 4);
    ck_assert_int_eq(ad_config_set(&c, "hugetlb", "off", err, sizeof(err)), 0);
    ck_assert(!c.hugetlb);
    ck_assert_int_eq(ad_config_set(&c, "hugetlb", "TRUE", err, sizeof(err)), 0);
    ck_assert(c.hugetlb);
    ck_assert_int_eq(ad_config_set(&c, "log_level", "warning", err, sizeof(err)), 0);
    ck_assert_int_eq(c.log_level, AD_LOG_WARN);
    ck_assert_int_eq(ad_config_set(&c, "admin_group", "root", err, sizeof(err)), 0);
    ck_assert(c.has_admin_group);
    ck_assert_uint_eq(c.admin_gid, 0);
    ck_assert_int_eq(ad_config_set(&c, "admin_group", "", err, sizeof(err)), 0);
    ck_assert(!c.has_admin_group);
    ck_assert(!c.has_socket_group);
    ck_assert_int_eq(ad_config_set(&c, "socket_group", "4242", err, sizeof(err)), 0);
    ck_assert(c.has_socket_group);
    ck_assert_uint_eq(c.socket_gid, 4242);
    ck_assert_int_eq(ad_config_set(&c, "socket_group", "root", err, sizeof(err)), 0);
    ck_assert_uint_eq(c.socket_gid, 0);
    ck_assert_int_eq(ad_config_set(&c, "socket_group", "", err, sizeof(err)), 0);
    ck_assert(!c.has_socket_group);
    ck_assert_int_eq(ad_config_set(&c, "small_lease_limit", "0", err, sizeof(err)), 0);
    ck_assert_uint_eq(c.small_lease_limit, 0);
    /* max_connections is max_clients by another name. */
    ck_assert_int_eq(ad_config_set(&c, "max_connections", "123", err, sizeof(err)), 0);
    ck_assert_uint_eq(c.max_clients, 123);
    ck_assert_int_eq(ad_config_set(&c, "hello_timeout_ms", "0", err, sizeof(err)), 0);
    ck_assert_uint_eq(c.hello_timeout_ms, 0);
    ck_assert_int_eq(ad_config_set(&c, "max_requests_in_flight", "0", err, sizeof(err)), 0);
    ck_assert_uint_eq(c.max_requests_in_flight, 0);
    ck_assert_uint_eq(c.max_bytes_per_uid, 0); /* the default: no cap */
    ck_assert_int_eq(ad_config_set(&c, "max_bytes_per_uid", "10%", err, sizeof(err)), 0);
    ck_assert_uint_eq(c.max_bytes_per_uid, arena__physical_memory() / 10);
    ck_assert_int_eq(ad_config_set(&c, "max_bytes_per_uid", "0", err, sizeof(err)), 0);
    ck_assert_uint_eq(c.max_bytes_per_uid, 0);
}
END_TEST

/* Each bad value is refused with a reason, and cfg is untouched. */
START_TEST(test_bad_values)
{
    static const struct {
        const char *key, *value;
        int error;
    } bad[] = {
        {"budget", "0", -ERANGE},
        {"budget", "lots", -EINVAL},
        {"budget", "150%", -EINVAL},
        {"budget", "", -EINVAL},
        {"heap_size", "-1G", -EINVAL},
        {"small_lease_limit", "1Q", -EINVAL},
        {"decay_ms", "-5", -EINVAL},
        {"decay_ms", "2s", -EINVAL},
        {"decay_ms", "99999999999", -ERANGE},
        {"max_frame", "100", -ERANGE},
        {"max_frame", "32M", -ERANGE},
        {"frame_timeout_ms", "soon", -EINVAL},
        {"max_clients", "0", -ERANGE},
        {"max_clients", "many", -EINVAL},
        {"max_connections", "0", -ERANGE},
        {"max_connections_per_uid", "-1", -EINVAL},
        {"max_connections_per_uid", "1000001", -ERANGE},
        {"hello_timeout_ms", "10s", -EINVAL},
        {"hello_timeout_ms", "99999999999", -ERANGE},
        {"max_requests_in_flight", "lots", -EINVAL},
        {"max_bytes_per_uid", "much", -EINVAL},
        {"max_bytes_per_uid", "-1G", -EINVAL},
        {"max_requests_in_flight", "1000001", -ERANGE},
        {"max_reply_queue", "4K", -ERANGE},
        {"max_reply_queue", "2G", -ERANGE},
        {"max_reply_queue", "big", -EINVAL},
        {"max_leases_per_client", "4294967296", -ERANGE},
        {"log_level", "loud", -EINVAL},
        {"socket_mode", "0999", -EINVAL},
        {"socket_mode", "rw", -EINVAL},
        {"socket_mode", "", -EINVAL},
        {"hugetlb", "maybe", -EINVAL},
        {"socket", "relative/path", -EINVAL},
        {"socket", "", -EINVAL},
        {"admin_group", "no-such-group-arenad-test", -EINVAL},
        {"socket_group", "no-such-group-arenad-test", -EINVAL},
        {"no_such_key", "1", -ENOENT},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ad_config_t c, before;
        ad_config_defaults(&c);
        before = c;
        char err[AD_CONFIG_ERR_MAX] = "";
        int r = ad_config_set(&c, bad[i].key, bad[i].value, err, sizeof(err));
        ck_assert_msg(r == bad[i].error, "%s = '%s': %d, expected %d", bad[i].key, bad[i].value, r,
                      bad[i].error);
        ck_assert_msg(err[0] != '\0', "%s: no reason given", bad[i].key);
        ck_assert_msg(memcmp(&c, &before, sizeof(c)) == 0, "%s: cfg changed on failure",
                      bad[i].key);
    }
    /* A socket path too long for sockaddr_un. */
    char path[200];
    memset(path, 'a', sizeof(path) - 1);
    path[0] = '/';
    path[sizeof(path) - 1] = '\0';
    ad_config_t c;
    ad_config_defaults(&c);
    ck_assert_int_eq(ad_config_set(&c, "socket", path, NULL, 0), -ERANGE);
}
END_TEST

static void expect_file_error(const char *text, const char *where, const char *why)
{
    const char *path = write_conf(text);
    ad_config_t c, before;
    ad_config_defaults(&c);
    before = c;
    char err[AD_CONFIG_ERR_MAX] = "";
    int r = ad_config_load(&c, path, err, sizeof(err));
    ck_assert_int_lt(r, 0);
    char expect[128];
    (void)snprintf(expect, sizeof(expect), "%s:%s", path, where);
    ck_assert_msg(strncmp(err, expect, strlen(expect)) == 0, "error '%s' does not start '%s'", err,
                  expect);
    ck_assert_msg(strstr(err, why) != NULL, "error '%s' does not mention '%s'", err, why);
    /* Nothing of the file was applied, not even the good lines before. */
    ck_assert(memcmp(&c, &before, sizeof(c)) == 0);
    drop_conf();
}

START_TEST(test_file_errors)
{
    expect_file_error("budget = 1G\nfrobnicate = 3\n", "2:", "unknown key 'frobnicate'");
    expect_file_error("# c\n\nbudget = 1G\nmax_clients = zero\n", "4:", "max_clients");
    expect_file_error("budget 1G\n", "1:", "key = value");
    expect_file_error("= 5\n", "1:", "key = value");
    expect_file_error("decay_ms = 10\nsocket = \"/tmp/a.sock\n", "2:", "key = value");
    expect_file_error("budget = 1G\n\n\nhugetlb = sometimes\n", "4:", "hugetlb");
    /* A line too long to be a setting. */
    char *big = malloc(6000);
    ck_assert_ptr_nonnull(big);
    memset(big, 'x', 5998);
    memcpy(big, "socket = /", 10);
    big[5998] = '\n';
    big[5999] = '\0';
    expect_file_error(big, "1:", "longer");
    free(big);
}
END_TEST

START_TEST(test_file_missing)
{
    ad_config_t c;
    ad_config_defaults(&c);
    char err[AD_CONFIG_ERR_MAX] = "";
    ck_assert_int_eq(ad_config_load(&c, "/nonexistent/arenad.conf", err, sizeof(err)), -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/arenad.conf"));
}
END_TEST

START_TEST(test_quotes_comments_blank)
{
    const char *path = write_conf("   # indented comment\n"
                                  "\t\n"
                                  "socket = \"/tmp/with space/a.sock\"\n"
                                  "log_level = \"error\"\n"
                                  "budget = 1G # not a comment\n");
    ad_config_t c;
    ad_config_defaults(&c);
    char err[AD_CONFIG_ERR_MAX] = "";
    /* '#' after a value is part of the value: "1G # not a comment" is no
     * size, so the whole file is refused at line 5. */
    ck_assert_int_lt(ad_config_load(&c, path, err, sizeof(err)), 0);
    ck_assert_ptr_nonnull(strstr(err, ":5:"));
    drop_conf();
    path = write_conf("   # indented comment\n"
                      "\t\n"
                      "socket = \"/tmp/with space/a.sock\"\n"
                      "log_level = \"error\"\n");
    ck_assert_int_eq(ad_config_load(&c, path, err, sizeof(err)), 0);
    ck_assert_str_eq(c.socket, "/tmp/with space/a.sock");
    ck_assert_int_eq(c.log_level, AD_LOG_ERROR);
    drop_conf();
}
END_TEST

START_TEST(test_flags_override_file)
{
    /* main.c applies the file, then the flags through ad_config_set. */
    const char *path = write_conf("budget = 1G\nlog_level = debug\ndecay_ms = 5\n");
    ad_config_t c;
    ad_config_defaults(&c);
    char err[AD_CONFIG_ERR_MAX];
    ck_assert_int_eq(ad_config_load(&c, path, err, sizeof(err)), 0);
    ck_assert_int_eq(ad_config_set(&c, "budget", "256M", err, sizeof(err)), 0);
    ck_assert_int_eq(ad_config_set(&c, "log_level", "warn", err, sizeof(err)), 0);
    ck_assert_uint_eq(c.budget, 256u << 20);
    ck_assert_int_eq(c.log_level, AD_LOG_WARN);
    ck_assert_uint_eq(c.decay_ms, 5);
    drop_conf();
}
END_TEST

START_TEST(test_finalize)
{
    ad_config_t c;
    ad_config_defaults(&c);
    char err[AD_CONFIG_ERR_MAX];
    ck_assert_int_eq(ad_config_set(&c, "budget", "1G", err, sizeof(err)), 0);
    ck_assert_int_eq(ad_config_set(&c, "socket", "/tmp/a.sock", err, sizeof(err)), 0);
    ck_assert_int_eq(ad_config_finalize(&c, err, sizeof(err)), 0);
    ck_assert_uint_eq(c.heap_size, 2ull << 30);
    ck_assert_str_eq(c.socket, "/tmp/a.sock");

    /* An explicit heap_size stays. */
    ad_config_defaults(&c);
    ck_assert_int_eq(ad_config_set(&c, "heap_size", "3G", err, sizeof(err)), 0);
    ck_assert_int_eq(ad_config_set(&c, "socket", "/tmp/a.sock", err, sizeof(err)), 0);
    ck_assert_int_eq(ad_config_finalize(&c, err, sizeof(err)), 0);
    ck_assert_uint_eq(c.heap_size, 3ull << 30);

    /* The socket comes from $ARENAD_SOCKET when not set. */
    ad_config_defaults(&c);
    ck_assert_int_eq(setenv("ARENAD_SOCKET", "/tmp/env/arenad.sock", 1), 0);
    ck_assert_int_eq(ad_config_finalize(&c, err, sizeof(err)), 0);
    ck_assert_str_eq(c.socket, "/tmp/env/arenad.sock");

    /* No rule gives a socket: not root, no XDG_RUNTIME_DIR. Only testable
     * when not root; as root the system path applies. */
    ck_assert_int_eq(unsetenv("ARENAD_SOCKET"), 0);
    ck_assert_int_eq(unsetenv("XDG_RUNTIME_DIR"), 0);
    ad_config_defaults(&c);
    int r = ad_config_finalize(&c, err, sizeof(err));
    if (geteuid() == 0) {
        ck_assert_int_eq(r, 0);
        ck_assert_str_eq(c.socket, "/run/arenad/arenad.sock");
    } else {
        ck_assert_int_eq(r, -ENOENT);
        ck_assert_ptr_nonnull(strstr(err, "socket"));
    }
}
END_TEST

/* The lease manager's settings as start-up builds them: defaults, then the
 * file, then finalize, then ad_config_leases(). */
static void start_from(const char *text, ad_config_t *ret_cfg, ad_leases_config_t *ret_lc)
{
    char err[AD_CONFIG_ERR_MAX];
    ad_config_defaults(ret_cfg);
    /* A socket path of its own: the default one depends on the environment. */
    ck_assert_int_eq(ad_config_set(ret_cfg, "socket", "/tmp/arenad-reload.sock", NULL, 0), 0);
    ck_assert_int_eq(ad_config_load(ret_cfg, write_conf(text), err, sizeof(err)), 0);
    drop_conf();
    ck_assert_int_eq(ad_config_finalize(ret_cfg, err, sizeof(err)), 0);
    ad_config_leases(ret_cfg, ret_lc);
}

static void assert_same_leases(const ad_leases_config_t *a, const ad_leases_config_t *b)
{
    ck_assert_uint_eq(a->budget, b->budget);
    ck_assert_uint_eq(a->heap_size, b->heap_size);
    ck_assert_uint_eq(a->small_limit, b->small_limit);
    ck_assert_uint_eq(a->decay_ms, b->decay_ms);
    ck_assert_int_eq(a->hugetlb, b->hugetlb);
    ck_assert_uint_eq(a->max_leases_per_client, b->max_leases_per_client);
    ck_assert_uint_eq(a->max_bytes_per_uid, b->max_bytes_per_uid);
    ck_assert_uint_eq(a->restart_grace_ms, b->restart_grace_ms);
    ck_assert_uint_eq(a->fair_rule_count, b->fair_rule_count);
    for (size_t i = 0; i < a->fair_rule_count; i++) {
        ck_assert_uint_eq(a->fair_rules[i].uid, b->fair_rules[i].uid);
        ck_assert_uint_eq(a->fair_rules[i].weight, b->fair_rules[i].weight);
        ck_assert_uint_eq(a->fair_rules[i].cap, b->fair_rules[i].cap);
        ck_assert_uint_eq(a->fair_rules[i].guarantee, b->fair_rules[i].guarantee);
    }
}

static const char reload_file[] = "budget = 1G\n"
                                  "heap_size = 4G\n"
                                  "small_lease_limit = 2M\n"
                                  "decay_ms = 250\n"
                                  "restart_grace_ms = 1234\n"
                                  "max_leases_per_client = 100\n"
                                  "max_bytes_per_uid = 512M\n"
                                  "weight.1000 = 3\n"
                                  "cap.1000 = 256M\n"
                                  "guarantee.1001 = 64M\n";

/* Start-up and a reload build the lease manager's settings through the one
 * mapping, so the same file gives the same settings either way -- the grace
 * period included -- and nothing is reported as needing a restart. */
START_TEST(test_reload_builds_what_start_builds)
{
    ad_config_t started, cur, next;
    ad_leases_config_t at_start, at_reload;
    start_from(reload_file, &started, &at_start);
    ck_assert_uint_eq(at_start.budget, 1u << 30);
    ck_assert_uint_eq(at_start.heap_size, 4ull << 30);
    ck_assert_uint_eq(at_start.small_limit, 2u << 20);
    ck_assert_uint_eq(at_start.decay_ms, 250);
    ck_assert_uint_eq(at_start.restart_grace_ms, 1234);
    ck_assert_uint_eq(at_start.max_leases_per_client, 100);
    ck_assert_uint_eq(at_start.max_bytes_per_uid, 512u << 20);
    ck_assert_uint_eq(at_start.fair_rule_count, 2);

    /* The same file again. */
    cur = started;
    start_from(reload_file, &next, &at_reload);
    ck_assert_uint_eq(ad_config_reload(&cur, &next), 0);
    ad_config_leases(&cur, &at_reload);
    assert_same_leases(&at_reload, &at_start);

    /* A daemon started from other live settings, reloaded with the file,
     * ends up with what starting from the file gives. */
    ad_leases_config_t other;
    start_from("budget = 2G\nheap_size = 4G\nsmall_lease_limit = 2M\ndecay_ms = 9\n"
               "restart_grace_ms = 5\nmax_leases_per_client = 7\nweight.5 = 2\n",
               &cur, &other);
    ck_assert_uint_eq(ad_config_reload(&cur, &next), 0);
    ad_config_leases(&cur, &at_reload);
    assert_same_leases(&at_reload, &at_start);
}
END_TEST

/* Settings that shape what the daemon built at start are reported, not
 * applied, while the live ones in the same file still apply. */
START_TEST(test_reload_reports_restart_only)
{
    ad_config_t cur, next;
    ad_leases_config_t lc;
    start_from(reload_file, &cur, &lc);
    ck_assert_int_eq(ad_config_set(&cur, "socket", "/tmp/a.sock", NULL, 0), 0);
    start_from("budget = 1G\nheap_size = 8G\nsmall_lease_limit = 1M\nhugetlb = true\n"
               "max_frame = 128K\ndecay_ms = 10\nrestart_grace_ms = 20\n",
               &next, &lc);
    ck_assert_int_eq(ad_config_set(&next, "socket", "/tmp/b.sock", NULL, 0), 0);
    unsigned restart = ad_config_reload(&cur, &next);
    ck_assert_uint_eq(restart, AD_CONFIG_RESTART_SOCKET | AD_CONFIG_RESTART_HEAP_SIZE |
                                   AD_CONFIG_RESTART_SMALL_LEASE_LIMIT | AD_CONFIG_RESTART_HUGETLB |
                                   AD_CONFIG_RESTART_MAX_FRAME);
    ck_assert_str_eq(ad_config_restart_key(AD_CONFIG_RESTART_SOCKET), "socket");
    ck_assert_str_eq(ad_config_restart_key(AD_CONFIG_RESTART_HEAP_SIZE), "heap_size");
    ck_assert_str_eq(ad_config_restart_key(AD_CONFIG_RESTART_SMALL_LEASE_LIMIT),
                     "small_lease_limit");
    ck_assert_str_eq(ad_config_restart_key(AD_CONFIG_RESTART_HUGETLB), "hugetlb");
    ck_assert_str_eq(ad_config_restart_key(AD_CONFIG_RESTART_MAX_FRAME), "max_frame");
    ck_assert_ptr_null(ad_config_restart_key(1u << 20));
    /* The restart-only ones kept their values... */
    ck_assert_str_eq(cur.socket, "/tmp/a.sock");
    ck_assert_uint_eq(cur.heap_size, 4ull << 30);
    ck_assert_uint_eq(cur.small_lease_limit, 2u << 20);
    ck_assert(!cur.hugetlb);
    ck_assert_uint_eq(cur.max_frame, 64u * 1024u);
    /* ...the live ones apply, the grace period among them. */
    ad_config_leases(&cur, &lc);
    ck_assert_uint_eq(lc.decay_ms, 10);
    ck_assert_uint_eq(lc.restart_grace_ms, 20);
    ck_assert_uint_eq(lc.heap_size, 4ull << 30);
    ck_assert_uint_eq(lc.fair_rule_count, 0);
    ck_assert_ptr_null(lc.fair_rules);

    /* A derived heap_size (2 x budget) follows a new budget only at start:
     * reported too. */
    start_from("budget = 1G\n", &cur, &lc);
    start_from("budget = 2G\n", &next, &lc);
    ck_assert_uint_eq(ad_config_reload(&cur, &next), AD_CONFIG_RESTART_HEAP_SIZE);
    ck_assert_uint_eq(cur.budget, 2u << 30);
    ck_assert_uint_eq(cur.heap_size, 2u << 30);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_every_key);
    tcase_add_test(tc, test_values);
    tcase_add_test(tc, test_bad_values);
    tcase_add_test(tc, test_file_errors);
    tcase_add_test(tc, test_file_missing);
    tcase_add_test(tc, test_quotes_comments_blank);
    tcase_add_test(tc, test_flags_override_file);
    tcase_add_test(tc, test_finalize);
    tcase_add_test(tc, test_reload_builds_what_start_builds);
    tcase_add_test(tc, test_reload_reports_restart_only);
    suite_add_tcase(s, tc);
    return s;
}

ARENA_TEST_MAIN(config_suite)
