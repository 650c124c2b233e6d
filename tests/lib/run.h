/* SPDX-License-Identifier: MIT
 *
 * run.h -- run a program and collect its output and exit status.
 */
#ifndef ARENA_TESTLIB_RUN_H
#define ARENA_TESTLIB_RUN_H

#include <stdbool.h>
#include <stddef.h>

typedef struct arena_run_opts {
    const char *const *env; /* changes: "NAME=VALUE" sets, "NAME" unsets; NULL-terminated */
    const char *input;      /* bytes for stdin (NUL-terminated); NULL: in_path */
    const char *in_path;    /* a file for stdin; NULL with input NULL: /dev/null */
    bool merge_err;         /* stderr into the same pipe as stdout, in order */
    int timeout_ms;         /* then the process group is killed; 0: 120 s */
} arena_run_opts_t;

typedef struct arena_run {
    int status;     /* the raw wait status */
    int code;       /* the exit code, or -signal */
    bool timed_out; /* killed after opts->timeout_ms */
    char *out;      /* stdout (and stderr with merge_err), NUL-terminated */
    size_t out_len;
    char *err; /* stderr, NUL-terminated ("" with merge_err) */
    size_t err_len;
} arena_run_t;

/* Runs argv (argv[0] found through PATH when it has no slash) in a new
 * process group, with opts (NULL: no changes, stdin from /dev/null, 120 s),
 * and collects all it writes until it exits (what a child it left behind
 * writes later is not waited for). The child dies with the caller
 * (PR_SET_PDEATHSIG). Returns 0 with *ret filled (free with
 * arena_run_free()), -ETIMEDOUT with *ret filled with what came before the
 * program was killed, -ENOMEM with *ret filled when output was lost, or
 * another -errno when it could not be started (then *ret holds nothing to
 * free). An exec failure is exit code 127. */
int arena_run(const char *const *argv, const arena_run_opts_t *opts, arena_run_t *ret);

/* Frees what arena_run() collected; NULL-safe, and safe to call twice. */
void arena_run_free(arena_run_t *r);

#endif
