/* SPDX-License-Identifier: MIT
 *
 * test_client_ctl.c -- arenactl without a daemon: the JSON emitter's
 * escaping, command-line parsing, help and version, and the exit code and
 * message when no daemon answers. arenactl.c is compiled in with
 * ARENACTL_NO_MAIN so its helpers can be called directly.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "admin.h"
#include "arena.h"

/* Runs fn-style output through a memstream and returns the text (static). */
static char out_text[8192];

static FILE *mem_open(char **bufp, size_t *lenp)
{
    FILE *f = open_memstream(bufp, lenp);
    ck_assert_ptr_nonnull(f);
    return f;
}

static const char *json_of(const char *s)
{
    char *b = NULL;
    size_t n = 0;
    FILE *f = mem_open(&b, &n);
    arena__json_string(f, s);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_uint_lt(n, sizeof(out_text));
    memcpy(out_text, b, n + 1);
    free(b);
    return out_text;
}

START_TEST(test_json_plain_and_escapes)
{
    ck_assert_str_eq(json_of(""), "\"\"");
    ck_assert_str_eq(json_of(NULL), "\"\"");
    ck_assert_str_eq(json_of("python3"), "\"python3\"");
    ck_assert_str_eq(json_of("a\"b\\c"), "\"a\\\"b\\\\c\"");
    ck_assert_str_eq(json_of("l1\nl2\r\t\b\f"), "\"l1\\nl2\\r\\t\\b\\f\"");
    ck_assert_str_eq(json_of("\x01\x1f\x7f"), "\"\\u0001\\u001f\\u007f\"");
    ck_assert_str_eq(json_of("/path/with/slash"), "\"/path/with/slash\"");
}
END_TEST

START_TEST(test_json_utf8)
{
    /* Valid UTF-8 passes through: 2, 3 and 4 byte sequences. */
    ck_assert_str_eq(json_of("büro €uro \xf0\x9f\x98\x80"), "\"büro €uro \xf0\x9f\x98\x80\"");
    /* Invalid bytes become U+FFFD, so the document stays valid JSON. */
    ck_assert_str_eq(json_of("a\xff"
                             "b"),
                     "\"a\\ufffdb\"");
    ck_assert_str_eq(json_of("\xc3"), "\"\\ufffd\"");            /* truncated at the end */
    ck_assert_str_eq(json_of("\xc0\xaf"), "\"\\ufffd\\ufffd\""); /* overlong */
    ck_assert_str_eq(json_of("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\""); /* surrogate */
    ck_assert_str_eq(json_of("\xf4\x90\x80\x80"),
                     "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");          /* > U+10FFFF */
    ck_assert_str_eq(json_of("\xe2\x82x"), "\"\\ufffd\\ufffdx\""); /* cut short */
}
END_TEST

START_TEST(test_json_double)
{
    char *b = NULL;
    size_t n = 0;
    FILE *f = mem_open(&b, &n);
    arena__json_double(f, 0.25);
    (void)fputc(' ', f);
    arena__json_double(f, NAN);
    (void)fputc(' ', f);
    arena__json_double(f, INFINITY);
    (void)fputc(' ', f);
    arena__json_double(f, 3.0);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_str_eq(b, "0.25 null null 3");
    free(b);
}
END_TEST

static const char *metrics_json_of(const char *text)
{
    char *b = NULL;
    size_t n = 0;
    FILE *f = mem_open(&b, &n);
    arena__metrics_json(f, text);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_uint_lt(n, sizeof(out_text));
    memcpy(out_text, b, n + 1);
    free(b);
    return out_text;
}

START_TEST(test_metrics_json)
{
    const char *j = metrics_json_of("# HELP a_total A counter.\n"
                                    "# TYPE a_total counter\n"
                                    "a_total 42\n"
                                    "b{x=\"1\",y=\"q\\\"uote\\\\ \\nl\"} 0.5 1700000000\n"
                                    "c NaN\n"
                                    "d +Inf\n"
                                    "\n"
                                    "not a sample\n"
                                    "e{x=\"unterminated} 1\n"
                                    "f{x=\"v\\\n"
                                    "g{=\"v\"} 1\n"
                                    "h 12x\n"
                                    "i_last 7");
    const char *samples = strstr(j, "\"samples\":[");
    ck_assert_ptr_nonnull(samples);
    ck_assert_str_eq(samples,
                     "\"samples\":["
                     "{\"name\":\"a_total\",\"labels\":{},\"value\":42},"
                     "{\"name\":\"b\",\"labels\":{\"x\":\"1\",\"y\":\"q\\\"uote\\\\ \\nl\"},"
                     "\"value\":0.5},"
                     "{\"name\":\"c\",\"labels\":{},\"value\":null},"
                     "{\"name\":\"d\",\"labels\":{},\"value\":null},"
                     "{\"name\":\"i_last\",\"labels\":{},\"value\":7}"
                     "]}\n");
    /* The text itself is kept whole. */
    ck_assert_ptr_nonnull(strstr(j, "\"text\":\"# HELP a_total A counter.\\n"));
    ck_assert_str_eq(metrics_json_of(""),
                     "{\"format\":\"prometheus-text-0.0.4\",\"text\":\"\",\"samples\":[]}\n");
}
END_TEST

/* Parses a command line given as a string of words. */
static int parse(const char *line, arena__ctl_args_t *a, char *err_text, size_t err_len)
{
    char copy[512];
    char *argv[32];
    int argc = 0;
    (void)snprintf(copy, sizeof(copy), "arenactl %s", line);
    for (char *save = NULL, *w = strtok_r(copy, " ", &save); w && argc < 31;
         w = strtok_r(NULL, " ", &save))
        argv[argc++] = w;
    argv[argc] = NULL;
    char *b = NULL;
    size_t n = 0;
    FILE *err = mem_open(&b, &n);
    int r = arena__ctl_parse(argc, argv, err, a);
    ck_assert_int_eq(fclose(err), 0);
    if (err_text)
        (void)snprintf(err_text, err_len, "%s", b);
    free(b);
    return r;
}

START_TEST(test_parse_commands)
{
    arena__ctl_args_t a;
    ck_assert_int_eq(parse("status", &a, NULL, 0), 0);
    ck_assert_int_eq(a.cmd, ARENA__CTL_STATUS);
    ck_assert(!a.json);
    ck_assert_ptr_null(a.socket);

    ck_assert_int_eq(parse("--socket /tmp/s.sock --json clients", &a, NULL, 0), 0);
    ck_assert_int_eq(a.cmd, ARENA__CTL_CLIENTS);
    ck_assert(a.json);
    ck_assert_str_eq(a.socket, "/tmp/s.sock");

    ck_assert_int_eq(parse("--socket=/x leases --client 17", &a, NULL, 0), 0);
    ck_assert_int_eq(a.cmd, ARENA__CTL_LEASES);
    ck_assert_uint_eq(a.client_id, 17);
    ck_assert_str_eq(a.socket, "/x");

    ck_assert_int_eq(parse("reclaim --bytes 512M --client=3 --json", &a, NULL, 0), 0);
    ck_assert_int_eq(a.cmd, ARENA__CTL_RECLAIM);
    ck_assert_uint_eq(a.bytes, 512u << 20);
    ck_assert_uint_eq(a.client_id, 3);
    ck_assert(a.json);

    ck_assert_int_eq(parse("metrics", &a, NULL, 0), 0);
    ck_assert_int_eq(a.cmd, ARENA__CTL_METRICS);

    ck_assert_int_eq(parse("--version", &a, NULL, 0), 0);
    ck_assert_int_eq(a.cmd, ARENA__CTL_VERSION);

    ck_assert_int_eq(parse("--help", &a, NULL, 0), 0);
    ck_assert_int_eq(a.cmd, ARENA__CTL_HELP);
    ck_assert_int_eq(a.help_for, ARENA__CTL_NONE);

    ck_assert_int_eq(parse("leases --help", &a, NULL, 0), 0);
    ck_assert_int_eq(a.cmd, ARENA__CTL_HELP);
    ck_assert_int_eq(a.help_for, ARENA__CTL_LEASES);

    ck_assert_int_eq(parse("-h reclaim", &a, NULL, 0), 0);
    ck_assert_int_eq(a.help_for, ARENA__CTL_RECLAIM);
}
END_TEST

START_TEST(test_parse_errors)
{
    static const struct {
        const char *line;
        const char *says;
    } bad[] = {
        {"", "no command"},
        {"--json", "no command"},
        {"frobnicate", "unknown command 'frobnicate'"},
        {"status --frob", "unknown option '--frob'"},
        {"status extra", "unexpected argument 'extra'"},
        {"status --client 3", "--client applies to leases and reclaim"},
        {"leases --bytes 1M", "--bytes applies to reclaim"},
        {"leases --client", "--client needs a client id"},
        {"leases --client -3", "--client needs a client id"},
        {"leases --client 3x", "--client needs a client id"},
        {"leases --client 99999999999999999999999", "--client needs a client id"},
        {"reclaim --bytes lots", "--bytes needs a size"},
        {"reclaim --bytes", "--bytes needs a size"},
        {"--socket", "--socket needs a path"},
        {"--socket= status", "--socket needs a path"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        arena__ctl_args_t a;
        memset(&a, 0x5a, sizeof(a));
        arena__ctl_args_t before = a;
        char err[512];
        ck_assert_msg(parse(bad[i].line, &a, err, sizeof(err)) == -EINVAL, "accepted '%s'",
                      bad[i].line);
        ck_assert_msg(strstr(err, bad[i].says) != NULL, "'%s' said '%s'", bad[i].line, err);
        ck_assert_int_eq(memcmp(&a, &before, sizeof(a)), 0);
    }
}
END_TEST

/* Runs arena__ctl_main on words; returns the exit code, fills out/err. */
static int run_ctl(const char *line, char *out_buf, size_t out_len, char *err_buf, size_t err_len)
{
    char copy[512];
    char *argv[32];
    int argc = 0;
    (void)snprintf(copy, sizeof(copy), "arenactl %s", line);
    for (char *save = NULL, *w = strtok_r(copy, " ", &save); w && argc < 31;
         w = strtok_r(NULL, " ", &save))
        argv[argc++] = w;
    argv[argc] = NULL;
    char *ob = NULL, *eb = NULL;
    size_t on = 0, en = 0;
    FILE *out = mem_open(&ob, &on);
    FILE *err = mem_open(&eb, &en);
    int code = arena__ctl_main(argc, argv, out, err);
    ck_assert_int_eq(fclose(out), 0);
    ck_assert_int_eq(fclose(err), 0);
    (void)snprintf(out_buf, out_len, "%s", ob);
    (void)snprintf(err_buf, err_len, "%s", eb);
    free(ob);
    free(eb);
    return code;
}

START_TEST(test_main_exit_codes_without_daemon)
{
    char out[4096], err[1024];
    ck_assert_int_eq(run_ctl("--version", out, sizeof(out), err, sizeof(err)), 0);
    ck_assert_str_eq(out, "arenactl 0.1.0\n");
    ck_assert_int_eq(run_ctl("--help", out, sizeof(out), err, sizeof(err)), 0);
    ck_assert_ptr_nonnull(strstr(out, "Usage: arenactl"));
    ck_assert_ptr_nonnull(strstr(out, "reclaim"));
    ck_assert_int_eq(run_ctl("metrics --help", out, sizeof(out), err, sizeof(err)), 0);
    ck_assert_ptr_nonnull(strstr(out, "Prometheus"));
    ck_assert_int_eq(run_ctl("bogus", out, sizeof(out), err, sizeof(err)), 2);
    ck_assert_str_eq(out, "");

    /* No daemon: exit 2, and the message names the socket that was tried. */
    char dir[] = "/tmp/arenactl-unit-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char line[256];
    (void)snprintf(line, sizeof(line), "--socket %s/none.sock status", dir);
    ck_assert_int_eq(run_ctl(line, out, sizeof(out), err, sizeof(err)), 2);
    ck_assert_ptr_nonnull(strstr(err, dir));
    ck_assert_ptr_nonnull(strstr(err, "No arenad"));
    /* From the environment too. */
    char sock[256];
    (void)snprintf(sock, sizeof(sock), "%s/env.sock", dir);
    ck_assert_int_eq(setenv("ARENAD_SOCKET", sock, 1), 0);
    ck_assert_int_eq(run_ctl("--json leases", out, sizeof(out), err, sizeof(err)), 2);
    ck_assert_ptr_nonnull(strstr(err, sock));
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

static Suite *ctl_suite(void)
{
    Suite *s = suite_create("client_ctl");
    TCase *tc = tcase_create("ctl");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_json_plain_and_escapes);
    tcase_add_test(tc, test_json_utf8);
    tcase_add_test(tc, test_json_double);
    tcase_add_test(tc, test_metrics_json);
    tcase_add_test(tc, test_parse_commands);
    tcase_add_test(tc, test_parse_errors);
    tcase_add_test(tc, test_main_exit_codes_without_daemon);
    suite_add_tcase(s, tc);
    return s;
}

ARENA_TEST_MAIN(ctl_suite)
