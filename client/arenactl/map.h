/* SPDX-License-Identifier: MIT
 *
 * map.h -- `arenactl map`: each pool heap drawn in the terminal, one cell per
 * address range, or its extents as one JSON document.
 */
#ifndef ARENACTL_MAP_H
#define ARENACTL_MAP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "arena.h"

#define CTL_MAP_WIDTH_MIN 8u /* cells per row */
#define CTL_MAP_WIDTH_MAX 1024u
#define CTL_MAP_ROWS      16u /* rows at most; fewer when the heap has fewer granules */

typedef struct ctl_map_args {
    bool by_uid; /* false: every pool the daemon lets the caller see */
    uint32_t uid;
    unsigned width; /* cells per row; 0: fill the terminal's columns (else 80) */
} ctl_map_args_t;

/* Fetches the heap map and the clients' names through conn and prints the
 * picture (or, with json, one JSON document with every pool's extents and
 * figures) to out. Returns 0, or a negative code: -EPERM (another user's
 * uid), -ENOENT (no pool of that uid), -EINVAL (width out of range),
 * ARENA_EPROTOCOL (the daemon's extents do not tile a heap), -ENOMEM, the
 * connection's codes (its text in arena__conn_last_error()). */
int ctl_map(arena_conn_t *conn, const ctl_map_args_t *args, bool json, FILE *out);

/* The whole command for today's dispatcher: parses argv (`[--socket PATH]
 * [--json] map [--uid UID] [--width N]`), connects, runs ctl_map() and
 * prints errors to err. Returns the exit code: 0, 1 (the daemon refused,
 * e.g. another user's uid), 2 (usage, no such uid, no daemon). */
int ctl_map_main(int argc, char **argv, FILE *out, FILE *err);

#endif
