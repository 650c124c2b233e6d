/* SPDX-License-Identifier: MIT
 *
 * ctl.h -- arenactl's internal interface, grouped by the file that defines
 * each part. arenactl is a program: it may allocate and print, and it is the
 * only client code that does. What it knows of the daemon comes through the
 * connection library's admin calls (admin.h). The unit tests link the same
 * files (all but main.c) to drive the CLI without a process per case.
 */
#ifndef ARENACTL_CTL_H
#define ARENACTL_CTL_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "admin.h"
#include "arena.h"

#define ARENA__CTL_EXIT_OK     0 /* success */
#define ARENA__CTL_EXIT_DAEMON 1 /* the daemon refused, or output failed */
#define ARENA__CTL_EXIT_USAGE  2 /* usage error, or no daemon to talk to */

/* ---- commands.c: the one table of commands and options ------------------------ */

typedef enum arena__ctl_cmd {
    ARENA__CTL_NONE = 0,
    ARENA__CTL_STATUS,
    ARENA__CTL_CLIENTS,
    ARENA__CTL_LEASES,
    ARENA__CTL_RECLAIM,
    ARENA__CTL_METRICS,
    ARENA__CTL_HELP,
    ARENA__CTL_VERSION,
    ARENA__CTL_TOP,
    ARENA__CTL_SHARES,
    ARENA__CTL_EVENTS,
    ARENA__CTL_COMPLETION,
    ARENA__CTL_MAP,
} arena__ctl_cmd_t;

/* One bit per option; every command takes the global ones. */
enum {
    ARENA__CTL_OPT_SOCKET = 1u << 0,
    ARENA__CTL_OPT_JSON = 1u << 1,
    ARENA__CTL_OPT_HELP = 1u << 2,
    ARENA__CTL_OPT_VERSION = 1u << 3,
    ARENA__CTL_OPT_CLIENT = 1u << 4,
    ARENA__CTL_OPT_BYTES = 1u << 5,
    ARENA__CTL_OPT_SINCE = 1u << 6,
    ARENA__CTL_OPT_INTERVAL = 1u << 7,
    ARENA__CTL_OPT_ONCE = 1u << 8,
    ARENA__CTL_OPT_COUNT = 1u << 9,
    ARENA__CTL_OPT_UID = 1u << 10,
    ARENA__CTL_OPT_WIDTH = 1u << 11,
};
#define ARENA__CTL_OPT_GLOBAL                                                                      \
    (ARENA__CTL_OPT_SOCKET | ARENA__CTL_OPT_JSON | ARENA__CTL_OPT_HELP | ARENA__CTL_OPT_VERSION)

/* A parsed command line. */
typedef struct arena__ctl_args {
    arena__ctl_cmd_t cmd;
    arena__ctl_cmd_t help_for; /* with ARENA__CTL_HELP: the command asked about, or NONE */
    const char *socket;        /* NULL: the default */
    bool json;
    uint64_t client_id; /* leases, reclaim: 0 = all */
    uint64_t bytes;     /* reclaim: 0 = all */
    uint64_t since;     /* events: after this sequence number */
    double interval;    /* top: seconds between frames */
    uint64_t count;     /* top: frames to print, 0 = until q */
    const char *word;   /* the command's argument (completion: the shell), or NULL */
    bool has_uid;       /* map: --uid given */
    uint32_t uid;       /* map: the pool of this uid */
    unsigned width;     /* map: cells per row, 0: fill the terminal */
} arena__ctl_args_t;

/* What a command does: 0, or a negative code (a daemon command's is reported
 * as "arenactl: NAME: the daemon's words", exit 1; a local command's as a
 * usage error, exit 2, after it printed its own message to err). conn is NULL
 * for local commands. */
typedef int (*arena__ctl_run_fn)(arena_conn_t *conn, const arena__ctl_args_t *a, FILE *out,
                                 FILE *err);

typedef struct arena__ctl_command {
    const char *name;
    arena__ctl_cmd_t cmd;
    unsigned options;      /* ARENA__CTL_OPT_* it takes besides the global ones */
    const char *arg;       /* its positional argument for the synopsis ("[COMMAND]"), or NULL */
    bool local;            /* runs without a daemon */
    arena__ctl_run_fn run; /* NULL for version, which the main flow answers */
    const char *summary;   /* one line for `arenactl --help` */
    const char *usage;     /* the paragraph for `arenactl help NAME` */
} arena__ctl_command_t;

typedef struct arena__ctl_option {
    const char *name; /* long name without the dashes */
    const char *arg;  /* the value's name ("PATH"), NULL for a flag */
    const char *help; /* one line */
    const char *bad;  /* what a missing or malformed value gets told */
    unsigned bit;     /* ARENA__CTL_OPT_* */
    char letter;      /* short form, or 0 */
} arena__ctl_option_t;

extern const arena__ctl_command_t arena__ctl_commands[];
extern const size_t arena__ctl_ncommands;
extern const arena__ctl_option_t arena__ctl_options[];
extern const size_t arena__ctl_noptions;

/* The command of that number or name, or NULL. */
const arena__ctl_command_t *arena__ctl_command(arena__ctl_cmd_t cmd);
const arena__ctl_command_t *arena__ctl_command_named(const char *name);

/* ---- args.c: the command line -------------------------------------------------- */

/* Parses argv with getopt_long against the tables; options may come before
 * or after the command. Returns 0 and *ret_args, or -EINVAL with one line
 * explaining the problem written to err (*ret_args untouched). */
int arena__ctl_parse(int argc, char **argv, FILE *err, arena__ctl_args_t *ret_args);

/* ---- help.c: help texts and the completion script, from the tables ----------- */

/* `arenactl --help` (cmd NONE) or `arenactl help CMD`. */
void arena__ctl_usage(arena__ctl_cmd_t cmd, FILE *out);

/* `arenactl help [CMD]`, `arenactl completion SHELL` (commands.c's handlers). */
int arena__ctl_run_help(arena_conn_t *conn, const arena__ctl_args_t *a, FILE *out, FILE *err);
int arena__ctl_run_completion(arena_conn_t *conn, const arena__ctl_args_t *a, FILE *out, FILE *err);

/* ---- ctl.c: the flow ------------------------------------------------------------ */

/* Runs arenactl: output to out, diagnostics to err. Returns the exit code:
 * 0 success, 1 the daemon refused, 2 usage error or no daemon. */
int arena__ctl_main(int argc, char **argv, FILE *out, FILE *err);

/* ---- json.c: every JSON document goes through json-c ------------------------- */

/* A copy of s (NULL: "") that is valid UTF-8: each byte that does not start a
 * well-formed sequence (overlong, surrogate, above U+10FFFF, cut short)
 * becomes U+FFFD. json-c copies bytes >= 0x80 as they are, so every string
 * goes through this first. malloc'd; NULL when out of memory. */
char *arena__ctl_utf8_clean(const char *s);

/* JSON values: a string (cleaned as above), a number written as "%.17g"
 * (NULL, i.e. null, when not finite), an unsigned integer. */
json_object *arena__ctl_json_string(const char *s);
json_object *arena__ctl_json_double(double v);
json_object *arena__ctl_json_u64(uint64_t v);

/* Serialises doc as one compact document (no spaces, "/" unescaped) on its
 * own line, and drops the reference to doc. Returns 0 or -ENOMEM. */
int arena__ctl_json_print(FILE *out, json_object *doc);

/* The document as text (owned by doc), as arena__ctl_json_print() writes it. */
const char *arena__ctl_json_text(json_object *doc);

/* ---- fields.c: the records' fields, from records.h --------------------------- */

typedef struct arena__ctl_field {
    const char *key; /* JSON key, protobuf field, C member */
    size_t offset;
    enum {
        ARENA__CTL_WIRE_U32,
        ARENA__CTL_WIRE_U64,
        ARENA__CTL_WIRE_F64,
        ARENA__CTL_WIRE_BOOL,
        ARENA__CTL_WIRE_STR,
        ARENA__CTL_WIRE_ENUM
    } wire;
    enum {
        ARENA__CTL_SHOW_BYTES,
        ARENA__CTL_SHOW_COUNT,
        ARENA__CTL_SHOW_ID,
        ARENA__CTL_SHOW_MS,
        ARENA__CTL_SHOW_HEX,
        ARENA__CTL_SHOW_RATIO,
        ARENA__CTL_SHOW_TEXT,
        ARENA__CTL_SHOW_BOOL,
        ARENA__CTL_SHOW_EVKIND
    } show;
    const char *heading; /* table column (status: extra line label), or NULL */
    int width;           /* negative: left-aligned, cut to fit */
} arena__ctl_field_t;

typedef struct arena__ctl_record {
    const arena__ctl_field_t *fields;
    size_t count;
} arena__ctl_record_t;

extern const arena__ctl_record_t arena__ctl_rec_status;
extern const arena__ctl_record_t arena__ctl_rec_client;
extern const arena__ctl_record_t arena__ctl_rec_lease;
extern const arena__ctl_record_t arena__ctl_rec_event;

/* A JSON object with every field of the record at p, in list order. */
json_object *arena__ctl_record_json(const arena__ctl_record_t *rec, const void *p);

/* Adds every field of the record at p to obj (which may hold others). */
void arena__ctl_record_json_into(const arena__ctl_record_t *rec, const void *p, json_object *obj);

/* A JSON array of n records of size bytes each at items. */
json_object *arena__ctl_records_json(const arena__ctl_record_t *rec, const void *items, size_t n,
                                     size_t size);

/* One field of the record at p as a table shows it ("2.0 MiB", "1m05s"). */
const char *arena__ctl_cell(const arena__ctl_field_t *f, const void *p, char *buf, size_t len);

/* The heading line, and one row, of the record's table (its fields with a
 * heading, in list order). */
void arena__ctl_table_head(const arena__ctl_record_t *rec, FILE *out);
void arena__ctl_table_row(const arena__ctl_record_t *rec, const void *p, FILE *out);

/* A human size and a short duration ("1.5s", "3m07s", "2h05m", "1d03h"). */
const char *arena__ctl_size(uint64_t bytes, char *buf, size_t len);
const char *arena__ctl_duration(uint64_t ms, char *buf, size_t len);

/* ---- views.c, shares.c, events.c, metrics.c, top.c: the commands -------------- */

int arena__ctl_run_status(arena_conn_t *conn, const arena__ctl_args_t *a, FILE *out, FILE *err);
int arena__ctl_run_clients(arena_conn_t *conn, const arena__ctl_args_t *a, FILE *out, FILE *err);
int arena__ctl_run_leases(arena_conn_t *conn, const arena__ctl_args_t *a, FILE *out, FILE *err);
int arena__ctl_run_reclaim(arena_conn_t *conn, const arena__ctl_args_t *a, FILE *out, FILE *err);
int arena__ctl_run_metrics(arena_conn_t *conn, const arena__ctl_args_t *a, FILE *out, FILE *err);
int arena__ctl_run_top(arena_conn_t *conn, const arena__ctl_args_t *a, FILE *out, FILE *err);
int arena__ctl_run_shares(arena_conn_t *conn, const arena__ctl_args_t *a, FILE *out, FILE *err);
int arena__ctl_run_events(arena_conn_t *conn, const arena__ctl_args_t *a, FILE *out, FILE *err);

/* ---- map.c: `arenactl map`, each pool heap drawn in the terminal -------------- */

#define ARENA__CTL_MAP_WIDTH_MIN 8u /* cells per row */
#define ARENA__CTL_MAP_WIDTH_MAX 1024u
#define ARENA__CTL_MAP_ROWS      16u /* rows at most; fewer when the heap has fewer granules */

typedef struct arena__ctl_map_args {
    bool by_uid; /* false: every pool the daemon lets the caller see */
    uint32_t uid;
    unsigned width; /* cells per row; 0: fill the terminal's columns (else 80) */
} arena__ctl_map_args_t;

/* Fetches the heap map and the clients' names through conn and prints the
 * picture (or, with json, one JSON document with every pool's extents and
 * figures) to out. Returns 0, or a negative code: -EPERM (another user's
 * uid), -ENOENT (no pool of that uid), -EINVAL (width out of range),
 * ARENA_EPROTOCOL (the daemon's extents do not tile a heap), -ENOMEM, the
 * connection's codes (its text in arena__conn_last_error()). */
int arena__ctl_map(arena_conn_t *conn, const arena__ctl_map_args_t *args, bool json, FILE *out);

/* `arenactl map` (commands.c's handler): arena__ctl_map() with the parsed
 * --uid, --width and --json. */
int arena__ctl_run_map(arena_conn_t *conn, const arena__ctl_args_t *a, FILE *out, FILE *err);

/* `arenactl shares`: per client leased, live, parked, fair share, weight and
 * waiting requests, as a table or one JSON document {"clients":[...]}.
 * Returns 0 or a code. */
int arena__ctl_print_shares(arena_conn_t *conn, bool json, FILE *out);

/* `arenactl events [--since N]`: every event after `since` (paging through
 * the daemon's log) as a table, or as one JSON document
 * {"events":[...],"dropped":N,"last_seq":N}. Returns 0 or a code; nothing is
 * written when the first page fails. */
int arena__ctl_print_events(arena_conn_t *conn, uint64_t since, bool json, FILE *out);

/* Prometheus text as one JSON document: {"format": ..., "text": the text as
 * is, "samples": [{"name", "labels": {...}, "value"}]}. Comment lines and
 * lines that are not well-formed samples are left out of "samples" (they stay
 * in "text"); values that are not finite (NaN, +Inf) become null. NULL when
 * out of memory. */
json_object *arena__ctl_metrics_json(const char *text);

#endif
