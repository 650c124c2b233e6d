/* SPDX-License-Identifier: MIT
 *
 * test_client_ctl.c -- arenactl without a daemon: its JSON (json-c, with
 * strings cleaned to valid UTF-8 first), command-line parsing, help,
 * completion and version, and the exit code and message when no daemon
 * answers. The test links arenactl_core (everything but main.c), so its
 * helpers can be called directly.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "arena.h"
#include "ctl.h"
#include "wire.h"

/* Runs fn-style output through a memstream and returns the text (static). */
static char out_text[8192];

static FILE *mem_open(char **bufp, size_t *lenp)
{
    FILE *f = open_memstream(bufp, lenp);
    ck_assert_ptr_nonnull(f);
    return f;
}

/* The JSON text of a value (json-c's "null" for NULL); drops the value. */
static const char *json_text_of(json_object *j)
{
    const char *t = j ? arena__ctl_json_text(j) : "null";
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_lt(strlen(t), sizeof(out_text));
    (void)snprintf(out_text, sizeof(out_text), "%s", t);
    json_object_put(j);
    return out_text;
}

static const char *json_of(const char *s)
{
    return json_text_of(arena__ctl_json_string(s));
}

START_TEST(test_json_plain_and_escapes)
{
    ck_assert_str_eq(json_of(""), "\"\"");
    ck_assert_str_eq(json_of(NULL), "\"\"");
    ck_assert_str_eq(json_of("python3"), "\"python3\"");
    ck_assert_str_eq(json_of("a\"b\\c"), "\"a\\\"b\\\\c\"");
    ck_assert_str_eq(json_of("l1\nl2\r\t\b\f"), "\"l1\\nl2\\r\\t\\b\\f\"");
    /* Control characters as \u00XX; DEL needs no escape in JSON and json-c
     * writes it as it is. */
    ck_assert_str_eq(json_of("\x01\x1f\x7f"), "\"\\u0001\\u001f\x7f\"");
    ck_assert_str_eq(json_of("/path/with/slash"), "\"/path/with/slash\"");
}
END_TEST

#define FFFD "\xef\xbf\xbd" /* U+FFFD in UTF-8 */

START_TEST(test_json_utf8)
{
    /* Valid UTF-8 passes through: 2, 3 and 4 byte sequences. */
    ck_assert_str_eq(json_of("büro €uro \xf0\x9f\x98\x80"), "\"büro €uro \xf0\x9f\x98\x80\"");
    /* Invalid bytes become U+FFFD, so the document stays valid JSON; json-c
     * writes it as UTF-8. */
    ck_assert_str_eq(json_of("a\xff"
                             "b"),
                     "\"a" FFFD "b\"");
    ck_assert_str_eq(json_of("\xc3"), "\"" FFFD "\"");             /* truncated at the end */
    ck_assert_str_eq(json_of("\xc0\xaf"), "\"" FFFD "" FFFD "\""); /* overlong */
    ck_assert_str_eq(json_of("\xed\xa0\x80"), "\"" FFFD "" FFFD "" FFFD "\""); /* surrogate */
    ck_assert_str_eq(json_of("\xf4\x90\x80\x80"),
                     "\"" FFFD "" FFFD "" FFFD "" FFFD "\"");        /* > U+10FFFF */
    ck_assert_str_eq(json_of("\xe2\x82x"), "\"" FFFD "" FFFD "x\""); /* cut short */
}
END_TEST

START_TEST(test_json_double)
{
    char b[128];
    (void)snprintf(b, sizeof(b), "%s", json_text_of(arena__ctl_json_double(0.25)));
    (void)snprintf(b + strlen(b), sizeof(b) - strlen(b), " %s",
                   json_text_of(arena__ctl_json_double(NAN)));
    (void)snprintf(b + strlen(b), sizeof(b) - strlen(b), " %s",
                   json_text_of(arena__ctl_json_double(INFINITY)));
    (void)snprintf(b + strlen(b), sizeof(b) - strlen(b), " %s",
                   json_text_of(arena__ctl_json_double(3.0)));
    ck_assert_str_eq(b, "0.25 null null 3");
}
END_TEST

static const char *metrics_json_of(const char *text)
{
    char *b = NULL;
    size_t n = 0;
    FILE *f = mem_open(&b, &n);
    ck_assert_int_eq(arena__ctl_json_print(f, arena__ctl_metrics_json(text)), 0);
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

/* True when text is exactly one JSON document for json-c's strict tokener
 * with UTF-8 checking, and for python3's json module (UTF-8 only, no NaN,
 * no raw control characters) when python3 is there; run as a child. */
static bool strict_json(const char *text)
{
    json_tokener *tok = json_tokener_new();
    ck_assert_ptr_nonnull(tok);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    size_t len = strlen(text);
    json_object *j = json_tokener_parse_ex(tok, text, (int)len);
    bool ok = j && json_tokener_get_error(tok) == json_tokener_success &&
              json_tokener_get_parse_end(tok) == len;
    json_object_put(j);
    json_tokener_free(tok);
    if (system("command -v python3 >/dev/null 2>&1") != 0)
        return ok;
    FILE *py = popen("python3 -c 'import json,sys\n"
                     "def no(c): raise ValueError(c)\n"
                     "json.loads(sys.stdin.buffer.read().decode(\"utf-8\"), parse_constant=no)' "
                     "2>/dev/null",
                     "w");
    ck_assert_ptr_nonnull(py);
    (void)fputs(text, py);
    int status = pclose(py);
    return ok && status == 0;
}

/* What json-c 0.16 does with bytes that are not UTF-8: it copies them, so the
 * document is not JSON. This is why every string is cleaned first. */
START_TEST(test_json_c_copies_invalid_utf8)
{
    json_object *raw = json_object_new_string("a\xff\xc3(");
    const char *t = arena__ctl_json_text(raw);
    ck_assert_str_eq(t, "\"a\xff\xc3(\"");
    ck_assert(!strict_json(t));
    json_object_put(raw);
}
END_TEST

/* Records with hostile strings still make strict JSON: quotes, backslashes,
 * every control character, DEL, invalid and cut UTF-8, a name filling the
 * whole array. */
START_TEST(test_json_records_strict)
{
    static arena__admin_client_t c[3];
    memset(c, 0, sizeof(c));
    (void)snprintf(c[0].name, sizeof(c[0].name), "q\"b\\s/\x01\x1f\x7f\n\t\xff\xfe\xc0\xaf");
    for (size_t i = 0; i + 1 < sizeof(c[1].name); i++)
        c[1].name[i] = (char)(i % 2 ? 0xa9 : 0xc2); /* "\u00a9" repeated */
    c[1].name[sizeof(c[1].name) - 2] = (char)0xe2;  /* cut at the end of the array */
    for (size_t i = 0; i + 1 < 64; i++)
        c[2].name[i] = (char)(1 + i * 4); /* 0x01 .. 0xfd */
    c[2].client_id = UINT64_MAX;
    json_object *doc = json_object_new_object();
    ck_assert_ptr_nonnull(doc);
    (void)json_object_object_add(
        doc, "clients", arena__ctl_records_json(&arena__ctl_rec_client, c, 3, sizeof(c[0])));
    const char *t = arena__ctl_json_text(doc);
    ck_assert_msg(strict_json(t), "%s", t);
    ck_assert_ptr_nonnull(strstr(t, "\"client_id\":18446744073709551615,"));
    ck_assert_ptr_nonnull(strstr(t, "\"name\":\"q\\\"b\\\\s/\\u0001\\u001f\x7f\\n\\t" FFFD));
    json_object_put(doc);

    static arena__admin_status_t st;
    memset(&st, 0, sizeof(st));
    (void)snprintf(st.daemon_version, sizeof(st.daemon_version), "v\xff");
    st.fragmentation = NAN;
    t = json_text_of(arena__ctl_record_json(&arena__ctl_rec_status, &st));
    ck_assert_msg(strict_json(t), "%s", t);
    ck_assert_ptr_nonnull(strstr(t, "\"fragmentation\":null,"));

    static arena__admin_event_t ev;
    ev.kind = ARENA__EVENT_RECLAIM;
    t = json_text_of(arena__ctl_record_json(&arena__ctl_rec_event, &ev));
    ck_assert_ptr_nonnull(strstr(t, "\"kind\":\"reclaim\""));
    ck_assert(strict_json(t));
    ck_assert(strict_json(metrics_json_of("m{l=\"\xff\\\"\"} NaN\n")));
}
END_TEST

START_TEST(test_parse_table_commands)
{
    arena__ctl_args_t a;
    /* Options before the command they belong to. */
    ck_assert_int_eq(parse("--client 5 leases", &a, NULL, 0), 0);
    ck_assert_int_eq(a.cmd, ARENA__CTL_LEASES);
    ck_assert_uint_eq(a.client_id, 5);
    ck_assert_int_eq(parse("--json --since 7 events", &a, NULL, 0), 0);
    ck_assert_int_eq(a.cmd, ARENA__CTL_EVENTS);
    ck_assert_uint_eq(a.since, 7);
    ck_assert_int_eq(parse("top --interval 0.5 --count 3", &a, NULL, 0), 0);
    ck_assert_int_eq(a.cmd, ARENA__CTL_TOP);
    ck_assert_uint_eq(a.count, 3);
    ck_assert_double_eq(a.interval, 0.5);
    ck_assert_int_eq(parse("help leases", &a, NULL, 0), 0);
    ck_assert_int_eq(a.cmd, ARENA__CTL_HELP);
    ck_assert_int_eq(a.help_for, ARENA__CTL_LEASES);
    ck_assert_int_eq(parse("completion bash", &a, NULL, 0), 0);
    ck_assert_int_eq(a.cmd, ARENA__CTL_COMPLETION);
    ck_assert_str_eq(a.word, "bash");
    char err[512];
    ck_assert_int_eq(parse("help frob", &a, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "unknown command 'frob'"));
    ck_assert_int_eq(parse("shares --since 1", &a, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "--since applies to events"));
    ck_assert_int_eq(parse("top --interval 0", &a, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "--interval needs seconds"));
    ck_assert_int_eq(parse("status -x", &a, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "unknown option '-x'"));
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

/* --help, help CMD, CMD --help and the completion script all list what the
 * command table has. */
START_TEST(test_help_and_completion_from_table)
{
    static char out[16384], err[1024], other[16384];
    ck_assert_int_eq(run_ctl("--help", out, sizeof(out), err, sizeof(err)), 0);
    for (size_t i = 0; i < arena__ctl_ncommands; i++) {
        const arena__ctl_command_t *c = &arena__ctl_commands[i];
        ck_assert_msg(strstr(out, c->summary) != NULL, "--help lacks %s", c->name);
        char line[64];
        (void)snprintf(line, sizeof(line), "help %s", c->name);
        ck_assert_int_eq(run_ctl(line, other, sizeof(other), err, sizeof(err)), 0);
        ck_assert_ptr_nonnull(strstr(other, c->usage));
        static char same[16384];
        (void)snprintf(line, sizeof(line), "%s --help", c->name);
        ck_assert_int_eq(run_ctl(line, same, sizeof(same), err, sizeof(err)), 0);
        ck_assert_str_eq(same, other);
    }
    ck_assert_int_eq(run_ctl("completion bash", out, sizeof(out), err, sizeof(err)), 0);
    ck_assert_ptr_nonnull(strstr(out, "complete -F _arenactl arenactl"));
    for (size_t i = 0; i < arena__ctl_ncommands; i++) {
        char want[64];
        (void)snprintf(want, sizeof(want), "        %s) opts=", arena__ctl_commands[i].name);
        ck_assert_msg(strstr(out, want) != NULL, "completion lacks %s", want);
    }
    for (size_t i = 0; i < arena__ctl_noptions; i++) {
        char want[64];
        (void)snprintf(want, sizeof(want), "--%s", arena__ctl_options[i].name);
        ck_assert_msg(strstr(out, want) != NULL, "completion lacks %s", want);
    }
    ck_assert_int_eq(run_ctl("completion zsh", out, sizeof(out), err, sizeof(err)), 2);
    ck_assert_ptr_nonnull(strstr(err, "zsh"));
    ck_assert_int_eq(run_ctl("completion", out, sizeof(out), err, sizeof(err)), 2);
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
    tcase_add_test(tc, test_json_c_copies_invalid_utf8);
    tcase_add_test(tc, test_json_records_strict);
    tcase_add_test(tc, test_parse_table_commands);
    tcase_add_test(tc, test_help_and_completion_from_table);
    suite_add_tcase(s, tc);
    return s;
}

ARENA_TEST_MAIN(ctl_suite)
