/* SPDX-License-Identifier: MIT
 *
 * arenactl.c -- the command-line view of a running arenad.
 *
 *   arenactl [--socket PATH] [--json] COMMAND [OPTIONS]
 *
 * Commands: status, clients, leases [--client ID], reclaim [--bytes SIZE]
 * [--client ID], metrics, top [--interval S] [--once] [--count N], shares,
 * events [--since SEQ], map [--uid UID] [--width N] (map.c). Tables
 * with human sizes by default; --json prints one JSON document instead (written by the small
 * emitter below, which escapes strings and never emits invalid UTF-8). Exit codes: 0 success, 1 the
 * daemon refused (its message is printed), 2 usage error or no daemon (the message names the socket
 * tried).
 *
 * A program, not the library: it may allocate and print. Everything it knows
 * comes through the public API and the admin calls (admin.h). Built with
 * ARENACTL_NO_MAIN the file leaves out main(), so the unit tests can call
 * arena__ctl_main() and the JSON helpers directly.
 *
 * `top` is the operator's live view: one connection, one frame per interval
 * (status, pressure, clients sorted by what they hold), redrawn in place with
 * ANSI escapes on a terminal (alternate screen, cursor hidden, restored on q,
 * Ctrl-C or error), printed frame after frame otherwise, and once with
 * --once for scripts and tests. It has its own small parser because its
 * options belong to no other command.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "arena.h"
#include "map.h"
#include "paths.h"
#include "size.h"
#include "wire.h"

#define CTL_EXIT_OK     0
#define CTL_EXIT_DAEMON 1
#define CTL_EXIT_USAGE  2

/* ---- JSON ----------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if it is not one. */
static size_t json_utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    unsigned cp = c & (0x7fu >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0; /* also stops at the NUL */
        cp = (cp << 6) | (s[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

void arena__json_string(FILE *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    (void)fputc('"', out);
    while (*p) {
        unsigned c = *p;
        switch (c) {
        case '"':
            (void)fputs("\\\"", out);
            break;
        case '\\':
            (void)fputs("\\\\", out);
            break;
        case '\b':
            (void)fputs("\\b", out);
            break;
        case '\f':
            (void)fputs("\\f", out);
            break;
        case '\n':
            (void)fputs("\\n", out);
            break;
        case '\r':
            (void)fputs("\\r", out);
            break;
        case '\t':
            (void)fputs("\\t", out);
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                (void)fprintf(out, "\\u%04x", c);
            } else if (c >= 0x80) {
                size_t n = json_utf8_len(p);
                if (n == 0) {
                    (void)fputs("\\ufffd", out);
                } else {
                    (void)fwrite(p, 1, n, out);
                    p += n - 1;
                }
            } else {
                (void)fputc((int)c, out);
            }
        }
        p++;
    }
    (void)fputc('"', out);
}

void arena__json_double(FILE *out, double v)
{
    if (!isfinite(v))
        (void)fputs("null", out);
    else
        (void)fprintf(out, "%.17g", v);
}

static void json_key(FILE *out, bool *first, const char *key)
{
    (void)fputs(*first ? "" : ",", out);
    *first = false;
    arena__json_string(out, key);
    (void)fputc(':', out);
}

static void json_u64(FILE *out, bool *first, const char *key, uint64_t v)
{
    json_key(out, first, key);
    (void)fprintf(out, "%" PRIu64, v);
}

static void json_str(FILE *out, bool *first, const char *key, const char *v)
{
    json_key(out, first, key);
    arena__json_string(out, v);
}

static void json_bool(FILE *out, bool *first, const char *key, bool v)
{
    json_key(out, first, key);
    (void)fputs(v ? "true" : "false", out);
}

/* ---- usage ------------------------------------------------------------------------ */

static const char ctl_usage[] =
    "Usage: arenactl [--socket PATH] [--json] COMMAND [OPTIONS]\n"
    "\n"
    "Shows and steers a running arenad.\n"
    "\n"
    "Commands:\n"
    "  status                     budget, heap, leased and free memory, counters\n"
    "  clients                    connected clients and what they hold\n"
    "  leases [--client ID]       leases (of one client)\n"
    "  reclaim [--bytes SIZE] [--client ID]\n"
    "                             give released memory back to the kernel now\n"
    "  metrics                    the daemon's metrics (Prometheus text format)\n"
    "  top [--interval S] [--once] [--count N]\n"
    "                             live view of budget, pressure and clients (q quits)\n"
    "  shares                     leased, live, parked, fair share, weight, waiting\n"
    "  events [--since SEQ]       the daemon's recent lease and pressure events\n"
    "  map [--uid UID] [--width N]\n"
    "                             a picture of each pool heap: leased by whom, parked,\n"
    "                             dirty, free\n"
    "\n"
    "Options:\n"
    "  --socket PATH   the daemon's socket (default: $ARENAD_SOCKET, else\n"
    "                  /run/arenad/arenad.sock as root, else $XDG_RUNTIME_DIR/arenad.sock)\n"
    "  --json          print one JSON document instead of a table\n"
    "  -h, --help      this text; `arenactl COMMAND --help` for one command\n"
    "  --version       the version of arenactl\n"
    "\n"
    "Exit status: 0 success, 1 the daemon refused, 2 usage error or no daemon.\n";

static const char *ctl_command_usage(arena__ctl_cmd_t cmd)
{
    switch (cmd) {
    case ARENA__CTL_STATUS:
        return "Usage: arenactl [--socket PATH] [--json] status\n"
               "\n"
               "Prints the daemon's version and uptime, the budget, the pool heap size,\n"
               "leased, free and dirty bytes, the largest free extent, fragmentation,\n"
               "and the lifetime counters.\n";
    case ARENA__CTL_CLIENTS:
        return "Usage: arenactl [--socket PATH] [--json] clients\n"
               "\n"
               "Lists the connected clients you may see (all of them for root, the\n"
               "daemon's user and the admin group; your own otherwise): id, pid, uid,\n"
               "name, leases, leased bytes, live bytes (what the client's allocator\n"
               "says it holds in use, never more than it leases), parked bytes, time\n"
               "connected.\n";
    case ARENA__CTL_LEASES:
        return "Usage: arenactl [--socket PATH] [--json] leases [--client ID]\n"
               "\n"
               "Lists the leases you may see, or those of client ID: lease id, client,\n"
               "uid, offset in the pool heap, size, whether known zeroed, age.\n";
    case ARENA__CTL_RECLAIM:
        return "Usage: arenactl [--socket PATH] [--json] reclaim [--bytes SIZE] [--client ID]\n"
               "\n"
               "Asks the daemon to give memory back to the kernel now: released but\n"
               "not yet punched extents, up to SIZE bytes (e.g. 512M; default: all),\n"
               "of client ID (default: everyone you may act on).\n";
    case ARENA__CTL_METRICS:
        return "Usage: arenactl [--socket PATH] [--json] metrics\n"
               "\n"
               "Prints the daemon's metrics in Prometheus text format (0.0.4), as the\n"
               "daemon wrote them. With --json: {\"text\": ..., \"samples\": [...]}.\n";
    default:
        return ctl_usage;
    }
}

/* ---- argument parsing -------------------------------------------------------------- */

static int ctl_parse_u64(const char *s, uint64_t *ret)
{
    if (!s || *s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -EINVAL;
    *ret = v;
    return 0;
}

static arena__ctl_cmd_t ctl_command(const char *s)
{
    static const struct {
        const char *name;
        arena__ctl_cmd_t cmd;
    } cmds[] = {
        {"status", ARENA__CTL_STATUS},   {"clients", ARENA__CTL_CLIENTS},
        {"leases", ARENA__CTL_LEASES},   {"reclaim", ARENA__CTL_RECLAIM},
        {"metrics", ARENA__CTL_METRICS},
    };
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (strcmp(s, cmds[i].name) == 0)
            return cmds[i].cmd;
    }
    return ARENA__CTL_NONE;
}

/* Matches "--name VALUE" and "--name=VALUE"; advances *i past the value.
 * Returns 1 on a match, 0 if argv[*i] is another option, -EINVAL when the
 * value is missing. */
static int ctl_option_value(int argc, char **argv, int *i, const char *name, const char **ret)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *ret = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -EINVAL;
    *i += 1;
    *ret = argv[*i];
    return 1;
}

int arena__ctl_parse(int argc, char **argv, FILE *err, arena__ctl_args_t *ret_args)
{
    arena__ctl_args_t a;
    memset(&a, 0, sizeof(a));
    bool help = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = NULL;
        int m;
        if (strcmp(arg, "--json") == 0) {
            a.json = true;
        } else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            help = true;
        } else if (strcmp(arg, "--version") == 0) {
            if (a.cmd == ARENA__CTL_NONE)
                a.cmd = ARENA__CTL_VERSION;
        } else if ((m = ctl_option_value(argc, argv, &i, "--socket", &val)) != 0) {
            if (m < 0 || !*val) {
                (void)fprintf(err, "arenactl: --socket needs a path\n");
                return -EINVAL;
            }
            a.socket = val;
        } else if ((m = ctl_option_value(argc, argv, &i, "--client", &val)) != 0) {
            if (a.cmd != ARENA__CTL_LEASES && a.cmd != ARENA__CTL_RECLAIM) {
                (void)fprintf(err, "arenactl: --client applies to leases and reclaim\n");
                return -EINVAL;
            }
            if (m < 0 || ctl_parse_u64(val, &a.client_id) < 0) {
                (void)fprintf(err, "arenactl: --client needs a client id (a number)\n");
                return -EINVAL;
            }
        } else if ((m = ctl_option_value(argc, argv, &i, "--bytes", &val)) != 0) {
            if (a.cmd != ARENA__CTL_RECLAIM) {
                (void)fprintf(err, "arenactl: --bytes applies to reclaim\n");
                return -EINVAL;
            }
            if (m < 0 || arena__size_parse(val, 0, &a.bytes) < 0) {
                (void)fprintf(err, "arenactl: --bytes needs a size such as 512M or 2G\n");
                return -EINVAL;
            }
        } else if (arg[0] == '-') {
            (void)fprintf(err, "arenactl: unknown option '%s' (see arenactl --help)\n", arg);
            return -EINVAL;
        } else if (a.cmd == ARENA__CTL_NONE || a.cmd == ARENA__CTL_VERSION) {
            a.cmd = ctl_command(arg);
            if (a.cmd == ARENA__CTL_NONE) {
                (void)fprintf(err, "arenactl: unknown command '%s' (see arenactl --help)\n", arg);
                return -EINVAL;
            }
        } else {
            (void)fprintf(err, "arenactl: unexpected argument '%s'\n", arg);
            return -EINVAL;
        }
    }
    if (help) {
        a.help_for = a.cmd == ARENA__CTL_VERSION ? ARENA__CTL_NONE : a.cmd;
        a.cmd = ARENA__CTL_HELP;
    } else if (a.cmd == ARENA__CTL_NONE) {
        (void)fprintf(err, "arenactl: no command given (see arenactl --help)\n");
        return -EINVAL;
    }
    *ret_args = a;
    return 0;
}

/* ---- output helpers ----------------------------------------------------------------- */

static const char *ctl_size(uint64_t bytes, char *buf, size_t len)
{
    return arena__size_format(bytes, buf, len);
}

static const char *ctl_duration(uint64_t ms, char *buf, size_t len)
{
    uint64_t s = ms / 1000;
    if (s < 60)
        (void)snprintf(buf, len, "%" PRIu64 ".%01" PRIu64 "s", s, (ms % 1000) / 100);
    else if (s < 3600)
        (void)snprintf(buf, len, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
    else if (s < 86400)
        (void)snprintf(buf, len, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, (s / 60) % 60);
    else
        (void)snprintf(buf, len, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, (s / 3600) % 24);
    return buf;
}

/* ---- commands -------------------------------------------------------------------------- */

static int ctl_status(arena_conn_t *conn, bool json, FILE *out)
{
    arena__admin_status_t st;
    int r = arena__admin_status(conn, &st);
    if (r < 0)
        return r;
    if (json) {
        bool f = true;
        (void)fputc('{', out);
        json_str(out, &f, "daemon_version", st.daemon_version);
        json_u64(out, &f, "uptime_ms", st.uptime_ms);
        json_str(out, &f, "socket_path", st.socket_path);
        json_u64(out, &f, "budget", st.budget);
        json_u64(out, &f, "heap_size", st.heap_size);
        json_u64(out, &f, "leased_bytes", st.leased_bytes);
        json_u64(out, &f, "restart_held_bytes", st.restart_held_bytes);
        json_u64(out, &f, "free_bytes", st.free_bytes);
        json_u64(out, &f, "dirty_bytes", st.dirty_bytes);
        json_u64(out, &f, "largest_free", st.largest_free);
        json_u64(out, &f, "free_extents", st.free_extents);
        json_key(out, &f, "fragmentation");
        arena__json_double(out, st.fragmentation);
        json_u64(out, &f, "clients", st.clients);
        json_u64(out, &f, "pools", st.pools);
        json_u64(out, &f, "leases", st.leases);
        json_u64(out, &f, "leases_granted_total", st.leases_granted_total);
        json_u64(out, &f, "leases_released_total", st.leases_released_total);
        json_u64(out, &f, "bytes_punched_total", st.bytes_punched_total);
        json_u64(out, &f, "requests_refused_total", st.requests_refused_total);
        json_u64(out, &f, "protocol_errors_total", st.protocol_errors_total);
        json_u64(out, &f, "connections_total", st.connections_total);
        (void)fputs("}\n", out);
        return 0;
    }
    char a[32], b[32], c[32];
    (void)fprintf(out, "arenad %s, up %s, socket %s\n", st.daemon_version,
                  ctl_duration(st.uptime_ms, a, sizeof(a)), st.socket_path);
    (void)fprintf(out, "  budget        %s\n", ctl_size(st.budget, a, sizeof(a)));
    (void)fprintf(out, "  heap size     %s per pool, %" PRIu32 " pool%s\n",
                  ctl_size(st.heap_size, a, sizeof(a)), st.pools, st.pools == 1 ? "" : "s");
    (void)fprintf(out, "  leased        %s in %" PRIu64 " lease%s\n",
                  ctl_size(st.leased_bytes, a, sizeof(a)), st.leases, st.leases == 1 ? "" : "s");
    /* After a restart: in nobody's lease, yet not free (it counts against the budget). */
    if (st.restart_held_bytes > 0)
        (void)fprintf(out,
                      "  held          %s after restart (reserved for clients to claim back)\n",
                      ctl_size(st.restart_held_bytes, a, sizeof(a)));
    (void)fprintf(out, "  free          %s in %" PRIu64 " extent%s, largest %s\n",
                  ctl_size(st.free_bytes, a, sizeof(a)), st.free_extents,
                  st.free_extents == 1 ? "" : "s", ctl_size(st.largest_free, b, sizeof(b)));
    (void)fprintf(out, "  dirty         %s (released, not yet punched)\n",
                  ctl_size(st.dirty_bytes, a, sizeof(a)));
    (void)fprintf(out, "  fragmentation %.1f%%\n", st.fragmentation * 100.0);
    (void)fprintf(out, "  clients       %" PRIu32 "\n", st.clients);
    (void)fprintf(out,
                  "  totals        %" PRIu64 " granted, %" PRIu64 " released, %s punched, "
                  "%" PRIu64 " refused, %" PRIu64 " protocol errors, %" PRIu64 " connections\n",
                  st.leases_granted_total, st.leases_released_total,
                  ctl_size(st.bytes_punched_total, c, sizeof(c)), st.requests_refused_total,
                  st.protocol_errors_total, st.connections_total);
    return 0;
}

static int ctl_clients(arena_conn_t *conn, bool json, FILE *out)
{
    arena__admin_clients_t *list;
    int r = arena__admin_clients(conn, &list);
    if (r < 0)
        return r;
    if (json) {
        (void)fputs("{\"clients\":[", out);
        for (size_t i = 0; i < list->count; i++) {
            const arena__admin_client_t *c = &list->items[i];
            bool f = true;
            (void)fputs(i ? ",{" : "{", out);
            json_u64(out, &f, "client_id", c->client_id);
            json_u64(out, &f, "pid", c->pid);
            json_u64(out, &f, "uid", c->uid);
            json_u64(out, &f, "gid", c->gid);
            json_str(out, &f, "name", c->name);
            json_u64(out, &f, "leases", c->leases);
            json_u64(out, &f, "leased_bytes", c->leased_bytes);
            json_u64(out, &f, "live_bytes", c->live_bytes);
            json_u64(out, &f, "parked_bytes", c->parked_bytes);
            json_u64(out, &f, "connected_ms", c->connected_ms);
            (void)fputc('}', out);
        }
        (void)fputs("]}\n", out);
    } else {
        (void)fprintf(out, "%8s %8s %6s %-16s %8s %12s %10s %10s %10s\n", "ID", "PID", "UID",
                      "NAME", "LEASES", "LEASED", "LIVE", "PARKED", "CONNECTED");
        for (size_t i = 0; i < list->count; i++) {
            const arena__admin_client_t *c = &list->items[i];
            char a[32], b[32], l[32], p[32];
            (void)fprintf(out,
                          "%8" PRIu64 " %8" PRIu32 " %6" PRIu32 " %-16.16s %8" PRIu64
                          " %12s %10s %10s %10s\n",
                          c->client_id, c->pid, c->uid, c->name, c->leases,
                          ctl_size(c->leased_bytes, a, sizeof(a)),
                          ctl_size(c->live_bytes, l, sizeof(l)),
                          ctl_size(c->parked_bytes, p, sizeof(p)),
                          ctl_duration(c->connected_ms, b, sizeof(b)));
        }
        (void)fprintf(out, "%zu client%s\n", list->count, list->count == 1 ? "" : "s");
    }
    arena__admin_clients_free(list);
    return 0;
}

static int ctl_leases(arena_conn_t *conn, uint64_t client_id, bool json, FILE *out)
{
    arena__admin_leases_t *list;
    int r = arena__admin_leases(conn, client_id, &list);
    if (r < 0)
        return r;
    if (json) {
        (void)fputs("{\"leases\":[", out);
        for (size_t i = 0; i < list->count; i++) {
            const arena__admin_lease_t *l = &list->items[i];
            bool f = true;
            (void)fputs(i ? ",{" : "{", out);
            json_u64(out, &f, "lease_id", l->lease_id);
            json_u64(out, &f, "client_id", l->client_id);
            json_u64(out, &f, "uid", l->uid);
            json_u64(out, &f, "offset", l->offset);
            json_u64(out, &f, "size", l->size);
            json_bool(out, &f, "zeroed", l->zeroed);
            json_u64(out, &f, "age_ms", l->age_ms);
            (void)fputc('}', out);
        }
        (void)fputs("]}\n", out);
    } else {
        uint64_t total = 0;
        (void)fprintf(out, "%8s %8s %6s %14s %12s %6s %10s\n", "ID", "CLIENT", "UID", "OFFSET",
                      "SIZE", "ZEROED", "AGE");
        for (size_t i = 0; i < list->count; i++) {
            const arena__admin_lease_t *l = &list->items[i];
            char a[32], b[32];
            (void)fprintf(
                out, "%8" PRIu64 " %8" PRIu64 " %6" PRIu32 " %#14" PRIx64 " %12s %6s %10s\n",
                l->lease_id, l->client_id, l->uid, l->offset, ctl_size(l->size, a, sizeof(a)),
                l->zeroed ? "yes" : "no", ctl_duration(l->age_ms, b, sizeof(b)));
            total += l->size;
        }
        char t[32];
        (void)fprintf(out, "%zu lease%s, %s\n", list->count, list->count == 1 ? "" : "s",
                      ctl_size(total, t, sizeof(t)));
    }
    arena__admin_leases_free(list);
    return 0;
}

static int ctl_reclaim(arena_conn_t *conn, const arena__ctl_args_t *a, FILE *out)
{
    uint64_t got;
    int r = arena__admin_reclaim(conn, a->bytes, a->client_id, &got);
    if (r < 0)
        return r;
    if (a->json) {
        (void)fprintf(out, "{\"reclaimed_bytes\":%" PRIu64 "}\n", got);
    } else {
        char s[32];
        (void)fprintf(out, "reclaimed %s\n", ctl_size(got, s, sizeof(s)));
    }
    return 0;
}

/* Skips a Prometheus label value ("..." with \\, \" and \n escapes) at p,
 * writing it unescaped into buf. Returns the character after the closing
 * quote, or NULL when malformed. */
static const char *metrics_label_value(const char *p, char *buf, size_t len)
{
    size_t n = 0;
    if (*p++ != '"')
        return NULL;
    while (*p && *p != '"' && *p != '\n') {
        char c = *p++;
        if (c == '\\') {
            c = *p++;
            if (c == '\0')
                return NULL; /* a backslash at the very end */
            if (c == 'n')
                c = '\n';
            else if (c != '\\' && c != '"')
                return NULL;
        }
        if (n + 1 < len)
            buf[n++] = c;
    }
    buf[n] = '\0';
    return *p == '"' ? p + 1 : NULL;
}

static bool metrics_name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

/* Emits one sample line as a JSON object; returns false (and emits nothing)
 * when the line is not a well-formed sample. */
static bool metrics_sample_json(const char *line, size_t len, bool first, FILE *out)
{
    char buf[4096];
    if (len >= sizeof(buf))
        return false;
    memcpy(buf, line, len);
    buf[len] = '\0';
    const char *p = buf;
    if (!metrics_name_char(*p, true))
        return false;
    while (metrics_name_char(*p, false))
        p++;
    char name[256];
    size_t nlen = (size_t)(p - buf);
    if (nlen >= sizeof(name))
        return false;
    memcpy(name, buf, nlen);
    name[nlen] = '\0';

    /* Labels are checked before anything is written. */
    char labels[16][2][256];
    size_t nlabels = 0;
    if (*p == '{') {
        p++;
        while (*p && *p != '}') {
            const char *k = p;
            while (metrics_name_char(*p, p == k))
                p++;
            size_t klen = (size_t)(p - k);
            if (klen == 0 || klen >= 256 || *p != '=' || nlabels >= 16)
                return false;
            memcpy(labels[nlabels][0], k, klen);
            labels[nlabels][0][klen] = '\0';
            p = metrics_label_value(p + 1, labels[nlabels][1], sizeof(labels[0][1]));
            if (!p)
                return false;
            nlabels++;
            if (*p == ',')
                p++;
        }
        if (*p != '}')
            return false;
        p++;
    }
    if (*p != ' ' && *p != '\t')
        return false;
    while (*p == ' ' || *p == '\t')
        p++;
    char *end;
    double v = strtod(p, &end);
    if (end == p || (*end && *end != ' ' && *end != '\t'))
        return false;

    (void)fputs(first ? "{" : ",{", out);
    bool f = true;
    json_str(out, &f, "name", name);
    json_key(out, &f, "labels");
    (void)fputc('{', out);
    bool lf = true;
    for (size_t i = 0; i < nlabels; i++)
        json_str(out, &lf, labels[i][0], labels[i][1]);
    (void)fputc('}', out);
    json_key(out, &f, "value");
    arena__json_double(out, v);
    (void)fputc('}', out);
    return true;
}

void arena__metrics_json(FILE *out, const char *text)
{
    (void)fputs("{\"format\":\"prometheus-text-0.0.4\",\"text\":", out);
    arena__json_string(out, text);
    (void)fputs(",\"samples\":[", out);
    bool first = true;
    const char *p = text ? text : "";
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len && *p != '#' && metrics_sample_json(p, len, first, out))
            first = false;
        p += len + (nl ? 1 : 0);
    }
    (void)fputs("]}\n", out);
}

static int ctl_metrics(arena_conn_t *conn, bool json, FILE *out)
{
    arena__admin_text_t *t;
    int r = arena__admin_metrics(conn, &t);
    if (r < 0)
        return r;
    if (!json) {
        (void)fwrite(t->text, 1, t->len, out);
        if (t->len && t->text[t->len - 1] != '\n')
            (void)fputc('\n', out);
    } else {
        arena__metrics_json(out, t->text);
    }
    arena__admin_text_free(t);
    return 0;
}

/* ---- top --------------------------------------------------------------------------- */

static const char top_usage[] =
    "Usage: arenactl [--socket PATH] [--json] top [--interval SECONDS] [--once] [--count N]\n"
    "\n"
    "A live view of the daemon: budget and how much of it is leased, pressure,\n"
    "dirty and free memory, and the clients you may see, biggest first (pid,\n"
    "uid, name, leases, leased, live and parked bytes, fair share, waiting\n"
    "requests, share of the budget, time connected).\n"
    "On a terminal the screen is redrawn in place every interval; press q or\n"
    "Ctrl-C to quit. Elsewhere one frame is printed per interval.\n"
    "\n"
    "  --interval S   seconds between frames (default 1; fractions allowed, >= 0.1)\n"
    "  --once         print one frame and exit (same as --count 1)\n"
    "  --count N      print N frames and exit\n"
    "  --json         one JSON document per frame, one per line\n";

typedef struct top_args {
    const char *socket;
    bool json;
    bool help;
    double interval;
    uint64_t count; /* 0: until q or Ctrl-C */
} top_args_t;

static volatile sig_atomic_t top_quit;

static void top_on_signal(int sig)
{
    (void)sig;
    top_quit = 1;
}

/* Finds the command word: the first argument that is not an option or the
 * value of --socket. */
static const char *ctl_first_word(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--socket") == 0) {
            i++;
            continue;
        }
        if (argv[i][0] != '-')
            return argv[i];
    }
    return NULL;
}

static int top_parse(int argc, char **argv, FILE *err, top_args_t *ret)
{
    top_args_t a = {.interval = 1.0};
    bool seen_cmd = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = NULL;
        int m;
        if (strcmp(arg, "--json") == 0) {
            a.json = true;
        } else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            a.help = true;
        } else if (strcmp(arg, "--once") == 0) {
            a.count = 1;
        } else if ((m = ctl_option_value(argc, argv, &i, "--socket", &val)) != 0) {
            if (m < 0 || !*val) {
                (void)fprintf(err, "arenactl: --socket needs a path\n");
                return -EINVAL;
            }
            a.socket = val;
        } else if ((m = ctl_option_value(argc, argv, &i, "--interval", &val)) != 0) {
            char *end = NULL;
            double v = m > 0 ? strtod(val, &end) : 0.0;
            if (m < 0 || end == val || *end || !(v >= 0.1 && v <= 3600.0)) {
                (void)fprintf(err, "arenactl: --interval needs seconds from 0.1 to 3600\n");
                return -EINVAL;
            }
            a.interval = v;
        } else if ((m = ctl_option_value(argc, argv, &i, "--count", &val)) != 0) {
            if (m < 0 || ctl_parse_u64(val, &a.count) < 0 || a.count == 0) {
                (void)fprintf(err, "arenactl: --count needs a number of frames (1 or more)\n");
                return -EINVAL;
            }
        } else if (arg[0] == '-') {
            (void)fprintf(err, "arenactl: unknown option '%s' (see arenactl top --help)\n", arg);
            return -EINVAL;
        } else if (!seen_cmd && strcmp(arg, "top") == 0) {
            seen_cmd = true;
        } else {
            (void)fprintf(err, "arenactl: unexpected argument '%s'\n", arg);
            return -EINVAL;
        }
    }
    *ret = a;
    return 0;
}

static const char *top_pressure(const arena__admin_status_t *st, uint64_t refused_delta,
                                uint64_t waiting)
{
    if (refused_delta > 0)
        return "refusing";
    if (waiting > 0)
        return "waiting";
    if (st->budget == 0)
        return "none";
    double used = (double)(st->leased_bytes + st->restart_held_bytes) / (double)st->budget;
    if (used >= 0.95)
        return "full";
    if (used >= 0.80)
        return "high";
    if (used >= 0.50)
        return "moderate";
    return "low";
}

static int top_cmp_clients(const void *pa, const void *pb)
{
    const arena__admin_client_t *a = pa, *b = pb;
    if (a->leased_bytes != b->leased_bytes)
        return a->leased_bytes > b->leased_bytes ? -1 : 1;
    return a->client_id < b->client_id ? -1 : a->client_id > b->client_id;
}

/* Writes one frame. rows: terminal rows for the client table (0: all). */
static void top_frame(FILE *out, const arena__admin_status_t *st, arena__admin_clients_t *list,
                      uint64_t refused_delta, bool json, size_t rows)
{
    static arena__admin_clients_t none;
    if (!list)
        list = &none; /* no list: no clients to show */
    qsort(list->items, list->count, sizeof(list->items[0]), top_cmp_clients);
    uint64_t waiting = 0;
    for (size_t i = 0; i < list->count; i++)
        waiting += list->items[i].waiting;
    const char *pressure = top_pressure(st, refused_delta, waiting);
    double pct = st->budget ? 100.0 * (double)st->leased_bytes / (double)st->budget : 0.0;
    if (json) {
        bool f = true;
        (void)fputc('{', out);
        json_str(out, &f, "daemon_version", st->daemon_version);
        json_u64(out, &f, "uptime_ms", st->uptime_ms);
        json_u64(out, &f, "budget", st->budget);
        json_u64(out, &f, "leased_bytes", st->leased_bytes);
        json_u64(out, &f, "restart_held_bytes", st->restart_held_bytes);
        json_u64(out, &f, "dirty_bytes", st->dirty_bytes);
        json_u64(out, &f, "free_bytes", st->free_bytes);
        json_u64(out, &f, "leases", st->leases);
        json_u64(out, &f, "clients", st->clients);
        json_u64(out, &f, "requests_refused_total", st->requests_refused_total);
        json_str(out, &f, "pressure", pressure);
        json_key(out, &f, "clients_list");
        (void)fputc('[', out);
        for (size_t i = 0; i < list->count; i++) {
            const arena__admin_client_t *c = &list->items[i];
            bool g = true;
            (void)fputs(i ? ",{" : "{", out);
            json_u64(out, &g, "client_id", c->client_id);
            json_u64(out, &g, "pid", c->pid);
            json_u64(out, &g, "uid", c->uid);
            json_str(out, &g, "name", c->name);
            json_u64(out, &g, "leases", c->leases);
            json_u64(out, &g, "leased_bytes", c->leased_bytes);
            json_u64(out, &g, "live_bytes", c->live_bytes);
            json_u64(out, &g, "parked_bytes", c->parked_bytes);
            json_u64(out, &g, "fair_share", c->fair_share);
            json_u64(out, &g, "weight", c->weight);
            json_u64(out, &g, "waiting", c->waiting);
            json_u64(out, &g, "waiting_bytes", c->waiting_bytes);
            json_u64(out, &g, "connected_ms", c->connected_ms);
            (void)fputc('}', out);
        }
        (void)fputs("]}\n", out);
        return;
    }
    char a[32], b[32], c[32], d[32], e[32];
    time_t now = time(NULL);
    struct tm tm;
    char clock[16] = "";
    if (localtime_r(&now, &tm))
        (void)strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
    (void)fprintf(out, "arenad %s  up %s  %s  %s\n", st->daemon_version,
                  ctl_duration(st->uptime_ms, a, sizeof(a)), st->socket_path, clock);
    char bar[33];
    size_t filled = (size_t)(pct / 100.0 * 30.0 + 0.5);
    if (filled > 30)
        filled = 30;
    bar[0] = '[';
    for (size_t i = 0; i < 30; i++)
        bar[1 + i] = i < filled ? '#' : '.';
    bar[31] = ']';
    bar[32] = '\0';
    (void)fprintf(out, "Budget %s  leased %s %s %.1f%%  pressure %s",
                  ctl_size(st->budget, a, sizeof(a)), ctl_size(st->leased_bytes, b, sizeof(b)), bar,
                  pct, pressure);
    /* After a restart: leases held for clients to claim back count against the budget. */
    if (st->restart_held_bytes > 0)
        (void)fprintf(out, "  held %s", ctl_size(st->restart_held_bytes, c, sizeof(c)));
    (void)fputc('\n', out);
    (void)fprintf(out, "Memory dirty %s  free %s  largest free %s  fragmentation %.1f%%\n",
                  ctl_size(st->dirty_bytes, a, sizeof(a)), ctl_size(st->free_bytes, b, sizeof(b)),
                  ctl_size(st->largest_free, c, sizeof(c)), st->fragmentation * 100.0);
    (void)fprintf(out,
                  "Clients %" PRIu32 "  leases %" PRIu64 "  pools %" PRIu32 "  refused %" PRIu64
                  "  protocol errors %" PRIu64 "  punched %s\n",
                  st->clients, st->leases, st->pools, st->requests_refused_total,
                  st->protocol_errors_total, ctl_size(st->bytes_punched_total, d, sizeof(d)));
    (void)fputc('\n', out);
    (void)fprintf(out, "%7s %7s %6s %-16s %6s %10s %10s %10s %10s %4s %6s %9s\n", "CLIENT", "PID",
                  "UID", "NAME", "LEASES", "LEASED", "LIVE", "PARKED", "FAIR", "WAIT", "SHARE",
                  "CONNECTED");
    size_t shown = list->count;
    if (rows > 0 && shown > rows)
        shown = rows - 1;
    for (size_t i = 0; i < shown; i++) {
        const arena__admin_client_t *cl = &list->items[i];
        double share = st->budget ? 100.0 * (double)cl->leased_bytes / (double)st->budget : 0.0;
        /* '*' marks a client above its fair share: the first to give back. */
        bool above = cl->fair_share > 0 && cl->leased_bytes > cl->fair_share;
        (void)fprintf(
            out,
            "%7" PRIu64 " %7" PRIu32 " %6" PRIu32 " %-16.16s %6" PRIu64
            " %10s %10s %10s %9s%c %4" PRIu32 " %5.1f%% %9s\n",
            cl->client_id, cl->pid, cl->uid, cl->name, cl->leases,
            ctl_size(cl->leased_bytes, a, sizeof(a)), ctl_size(cl->live_bytes, e, sizeof(e)),
            ctl_size(cl->parked_bytes, c, sizeof(c)), ctl_size(cl->fair_share, d, sizeof(d)),
            above ? '*' : ' ', cl->waiting, share, ctl_duration(cl->connected_ms, b, sizeof(b)));
    }
    if (shown < list->count)
        (void)fprintf(out, "... %zu more\n", list->count - shown);
}

/* Terminal rows for the client table, 0 when unknown. */
static size_t top_table_rows(void)
{
    const char *lines = getenv("LINES"); /* NOLINT(concurrency-mt-unsafe) */
    long n = lines ? strtol(lines, NULL, 10) : 24;
    return n > 8 ? (size_t)(n - 7) : 1;
}

/* Waits up to ms for q on a terminal's stdin (raw mode) or a signal; returns
 * true when the user asked to quit. */
static bool top_wait(int ms, bool tty_in)
{
    struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
    struct timespec start;
    (void)clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (top_quit)
            return true;
        struct timespec now;
        (void)clock_gettime(CLOCK_MONOTONIC, &now);
        long long spent =
            (long long)(now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (spent >= ms)
            return false;
        int n = poll(tty_in ? &p : NULL, tty_in ? 1 : 0, (int)(ms - spent));
        if (n > 0) {
            char c = 0;
            if (read(STDIN_FILENO, &c, 1) == 1 && (c == 'q' || c == 'Q' || c == 3))
                return true;
            if (n > 0 && (p.revents & (POLLHUP | POLLERR)))
                tty_in = false;
        }
    }
}

static int ctl_top(int argc, char **argv, FILE *out, FILE *err)
{
    top_args_t a;
    if (top_parse(argc, argv, err, &a) < 0)
        return CTL_EXIT_USAGE;
    if (a.help) {
        (void)fputs(top_usage, out);
        return CTL_EXIT_OK;
    }
    char path[sizeof(((arena__conn_info_t *)0)->socket_path)];
    if (a.socket) {
        (void)snprintf(path, sizeof(path), "%s", a.socket);
    } else if (arena__client_socket_path(path, sizeof(path)) < 0) {
        (void)fprintf(err, "arenactl: no socket to try: set ARENAD_SOCKET or XDG_RUNTIME_DIR, "
                           "or pass --socket PATH\n");
        return CTL_EXIT_USAGE;
    }
    arena_conn_t *conn;
    int r = arena_connect(path, &conn);
    if (r < 0) {
        (void)fprintf(err, "arenactl: cannot reach arenad at %s: %s\n", path, arena_strerror(r));
        return r == ARENA_EVERSION ? CTL_EXIT_DAEMON : CTL_EXIT_USAGE;
    }

    /* Redraw in place only on a terminal, and never for --once or --json. */
    bool screen = !a.json && a.count != 1 && out == stdout && isatty(STDOUT_FILENO);
    bool tty_in = screen && isatty(STDIN_FILENO);
    struct termios saved;
    bool raw = false;
    if (tty_in && tcgetattr(STDIN_FILENO, &saved) == 0) {
        struct termios t = saved;
        t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        t.c_cc[VMIN] = 0;
        t.c_cc[VTIME] = 0;
        raw = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
    }
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = top_on_signal;
    (void)sigemptyset(&sa.sa_mask);
    top_quit = 0;
    (void)sigaction(SIGINT, &sa, &old_int);
    (void)sigaction(SIGTERM, &sa, &old_term);
    if (screen)
        (void)fputs("\033[?1049h\033[?25l", out); /* alternate screen, hide cursor */

    uint64_t frames = 0, last_refused = 0;
    int code = CTL_EXIT_OK;
    for (;;) {
        arena__admin_status_t st;
        arena__admin_clients_t *list = NULL;
        r = arena__admin_status(conn, &st);
        if (r == 0)
            r = arena__admin_clients(conn, &list);
        if (r < 0) {
            if (screen)
                (void)fputs("\033[?25h\033[?1049l", out);
            screen = false;
            (void)fprintf(err, "arenactl: top: %s\n", arena_strerror(r));
            code = CTL_EXIT_DAEMON;
            break;
        }
        uint64_t delta = frames > 0 && st.requests_refused_total > last_refused
                             ? st.requests_refused_total - last_refused
                             : 0;
        last_refused = st.requests_refused_total;
        if (screen)
            (void)fputs("\033[H\033[2J", out);
        else if (frames > 0 && !a.json)
            (void)fputc('\n', out);
        top_frame(out, &st, list, delta, a.json, screen ? top_table_rows() : 0);
        if (screen)
            (void)fputs("\npress q to quit", out);
        arena__admin_clients_free(list);
        (void)fflush(out);
        frames++;
        if (a.count > 0 && frames >= a.count)
            break;
        if (top_wait((int)(a.interval * 1000.0), tty_in))
            break;
    }
    if (screen)
        (void)fputs("\033[?25h\033[?1049l", out); /* cursor back, main screen */
    if (raw)
        (void)tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    (void)sigaction(SIGINT, &old_int, NULL);
    (void)sigaction(SIGTERM, &old_term, NULL);
    arena_disconnect(conn);
    if (fflush(out) != 0 && code == CTL_EXIT_OK)
        code = CTL_EXIT_DAEMON;
    return code;
}

/* ---- shares, events ----------------------------------------------------------------- */

static const char shares_usage[] =
    "Usage: arenactl [--socket PATH] [--json] shares\n"
    "\n"
    "Per client you may see: leased, live and parked bytes, the max-min fair share\n"
    "of the budget it is entitled to now, its weight, and the lease requests\n"
    "it has waiting (count and bytes).\n";

static const char events_usage[] =
    "Usage: arenactl [--socket PATH] [--json] events [--since SEQ]\n"
    "\n"
    "The daemon's recent events (grants, releases, refusals, reclaims,\n"
    "pressure notifications) after sequence number SEQ (default 0: all the\n"
    "daemon still has), with the client's holding and fair share at the time.\n"
    "Privileged callers only.\n";

/* `shares` and `events`: printed by the admin layer (client/admin.c). */
static int ctl_admin_view(int argc, char **argv, bool events, FILE *out, FILE *err)
{
    const char *socket = NULL;
    bool json = false, help = false, seen = false;
    uint64_t since = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = NULL;
        int m;
        if (strcmp(arg, "--json") == 0) {
            json = true;
        } else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            help = true;
        } else if ((m = ctl_option_value(argc, argv, &i, "--socket", &val)) != 0) {
            if (m < 0 || !*val) {
                (void)fprintf(err, "arenactl: --socket needs a path\n");
                return CTL_EXIT_USAGE;
            }
            socket = val;
        } else if (events && (m = ctl_option_value(argc, argv, &i, "--since", &val)) != 0) {
            if (m < 0 || ctl_parse_u64(val, &since) < 0) {
                (void)fprintf(err, "arenactl: --since needs an event sequence number\n");
                return CTL_EXIT_USAGE;
            }
        } else if (arg[0] == '-') {
            (void)fprintf(err, "arenactl: unknown option '%s' (see arenactl %s --help)\n", arg,
                          events ? "events" : "shares");
            return CTL_EXIT_USAGE;
        } else if (!seen) {
            seen = true;
        } else {
            (void)fprintf(err, "arenactl: unexpected argument '%s'\n", arg);
            return CTL_EXIT_USAGE;
        }
    }
    if (help) {
        (void)fputs(events ? events_usage : shares_usage, out);
        return CTL_EXIT_OK;
    }
    char path[sizeof(((arena__conn_info_t *)0)->socket_path)];
    if (socket) {
        (void)snprintf(path, sizeof(path), "%s", socket);
    } else if (arena__client_socket_path(path, sizeof(path)) < 0) {
        (void)fprintf(err, "arenactl: no socket to try: set ARENAD_SOCKET or XDG_RUNTIME_DIR, "
                           "or pass --socket PATH\n");
        return CTL_EXIT_USAGE;
    }
    arena_conn_t *conn;
    int r = arena_connect(path, &conn);
    if (r < 0) {
        (void)fprintf(err, "arenactl: cannot reach arenad at %s: %s\n", path, arena_strerror(r));
        return r == ARENA_EVERSION ? CTL_EXIT_DAEMON : CTL_EXIT_USAGE;
    }
    r = events ? arena__ctl_print_events(conn, since, json, out)
               : arena__ctl_print_shares(conn, json, out);
    int code = CTL_EXIT_OK;
    if (r < 0) {
        char msg[256];
        (void)arena__conn_last_error(conn, msg, sizeof(msg));
        (void)fprintf(err, "arenactl: %s: %s\n", events ? "events" : "shares",
                      msg[0] ? msg : arena_strerror(r));
        code = CTL_EXIT_DAEMON;
    }
    arena_disconnect(conn);
    if (fflush(out) != 0 && code == CTL_EXIT_OK)
        code = CTL_EXIT_DAEMON;
    return code;
}

/* ---- main ---------------------------------------------------------------------------- */

static const char *ctl_command_name(arena__ctl_cmd_t cmd)
{
    switch (cmd) {
    case ARENA__CTL_STATUS:
        return "status";
    case ARENA__CTL_CLIENTS:
        return "clients";
    case ARENA__CTL_LEASES:
        return "leases";
    case ARENA__CTL_RECLAIM:
        return "reclaim";
    case ARENA__CTL_METRICS:
        return "metrics";
    default:
        return "arenactl";
    }
}

int arena__ctl_main(int argc, char **argv, FILE *out, FILE *err)
{
    const char *word = ctl_first_word(argc, argv);
    if (word && strcmp(word, "top") == 0)
        return ctl_top(argc, argv, out, err);
    if (word && strcmp(word, "map") == 0)
        return ctl_map_main(argc, argv, out, err);
    if (word && (strcmp(word, "shares") == 0 || strcmp(word, "events") == 0))
        return ctl_admin_view(argc, argv, word[0] == 'e', out, err);
    arena__ctl_args_t a;
    if (arena__ctl_parse(argc, argv, err, &a) < 0)
        return CTL_EXIT_USAGE;
    if (a.cmd == ARENA__CTL_HELP) {
        (void)fputs(ctl_command_usage(a.help_for), out);
        return CTL_EXIT_OK;
    }
    if (a.cmd == ARENA__CTL_VERSION) {
        (void)fprintf(out, "arenactl %d.%d.%d\n", ARENA_VERSION_MAJOR, ARENA_VERSION_MINOR,
                      ARENA_VERSION_PATCH);
        return CTL_EXIT_OK;
    }

    char path[sizeof(((arena__conn_info_t *)0)->socket_path)];
    if (a.socket) {
        (void)snprintf(path, sizeof(path), "%s", a.socket);
    } else if (arena__client_socket_path(path, sizeof(path)) < 0) {
        (void)fprintf(err, "arenactl: no socket to try: set ARENAD_SOCKET or XDG_RUNTIME_DIR, "
                           "or pass --socket PATH\n");
        return CTL_EXIT_USAGE;
    }
    arena_conn_t *conn;
    int r = arena_connect(a.socket ? a.socket : path, &conn);
    if (r < 0) {
        (void)fprintf(err, "arenactl: cannot reach arenad at %s: %s\n", a.socket ? a.socket : path,
                      arena_strerror(r));
        /* A daemon that answered but refused us (version) is a "no"; nothing
         * listening, a bad path or no permission is a setup problem. */
        return r == ARENA_EVERSION ? CTL_EXIT_DAEMON : CTL_EXIT_USAGE;
    }

    switch (a.cmd) {
    case ARENA__CTL_STATUS:
        r = ctl_status(conn, a.json, out);
        break;
    case ARENA__CTL_CLIENTS:
        r = ctl_clients(conn, a.json, out);
        break;
    case ARENA__CTL_LEASES:
        r = ctl_leases(conn, a.client_id, a.json, out);
        break;
    case ARENA__CTL_RECLAIM:
        r = ctl_reclaim(conn, &a, out);
        break;
    case ARENA__CTL_METRICS:
        r = ctl_metrics(conn, a.json, out);
        break;
    default:
        r = -EINVAL;
        break;
    }
    int code = CTL_EXIT_OK;
    if (r < 0) {
        char msg[256];
        (void)arena__conn_last_error(conn, msg, sizeof(msg));
        if (msg[0]) /* the daemon's own words say more than the errno text */
            (void)fprintf(err, "arenactl: %s: %s\n", ctl_command_name(a.cmd), msg);
        else
            (void)fprintf(err, "arenactl: %s: %s\n", ctl_command_name(a.cmd), arena_strerror(r));
        code = CTL_EXIT_DAEMON;
    }
    arena_disconnect(conn);
    if (fflush(out) != 0 && code == CTL_EXIT_OK) {
        (void)fprintf(err, "arenactl: cannot write output: %s\n", arena_strerror(-errno));
        code = CTL_EXIT_DAEMON;
    }
    return code;
}

#ifndef ARENACTL_NO_MAIN
int main(int argc, char **argv)
{
    return arena__ctl_main(argc, argv, stdout, stderr);
}
#endif
