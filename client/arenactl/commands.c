/* SPDX-License-Identifier: MIT
 *
 * commands.c -- the one table of arenactl's commands and the one table of
 * its options.
 *
 * Everything about a command's surface comes from here: the parser (args.c)
 * takes the options a command lists and names the commands an option applies
 * to, and `arenactl --help`, `arenactl help CMD`, `CMD --help` and the bash
 * completion script (help.c) are written from the same rows. Adding a command
 * is one row here and its handler. Constant data; any thread.
 */
#include <string.h>

#include "ctl.h"

/* {name, value, help line, what a bad value gets told, bit, short letter} */
const arena__ctl_option_t arena__ctl_options[] = {
    {"socket", "PATH",
     "the daemon's socket (default: $ARENAD_SOCKET, else\n"
     "                   /run/arenad/arenad.sock as root, else $XDG_RUNTIME_DIR/arenad.sock)",
     "--socket needs a path", ARENA__CTL_OPT_SOCKET, 0},
    {"json", NULL, "print one JSON document instead of a table", NULL, ARENA__CTL_OPT_JSON, 0},
    {"help", NULL, "this text; `arenactl COMMAND --help` for one command", NULL,
     ARENA__CTL_OPT_HELP, 'h'},
    {"version", NULL, "the version of arenactl", NULL, ARENA__CTL_OPT_VERSION, 0},
    {"bytes", "SIZE", "at most this much, e.g. 512M (default: all)",
     "--bytes needs a size such as 512M or 2G", ARENA__CTL_OPT_BYTES, 0},
    {"client", "ID", "only this client (default: all you may see)",
     "--client needs a client id (a number)", ARENA__CTL_OPT_CLIENT, 0},
    {"since", "SEQ", "only events after this sequence number",
     "--since needs an event sequence number", ARENA__CTL_OPT_SINCE, 0},
    {"interval", "S", "seconds between frames (default 1; fractions allowed, >= 0.1)",
     "--interval needs seconds from 0.1 to 3600", ARENA__CTL_OPT_INTERVAL, 0},
    {"once", NULL, "print one frame and exit (same as --count 1)", NULL, ARENA__CTL_OPT_ONCE, 0},
    {"count", "N", "print N frames and exit", "--count needs a number of frames (1 or more)",
     ARENA__CTL_OPT_COUNT, 0},
    {"uid", "UID", "only the pool of this uid (default: every pool you may see)",
     "--uid needs a numeric uid", ARENA__CTL_OPT_UID, 0},
    {"width", "N", "cells per row, 8 to 1024 (default: the terminal's width, else 80 columns)",
     "--width needs a number of cells from 8 to 1024", ARENA__CTL_OPT_WIDTH, 0},
};
const size_t arena__ctl_noptions = sizeof(arena__ctl_options) / sizeof(arena__ctl_options[0]);

const arena__ctl_command_t arena__ctl_commands[] = {
    {"status", ARENA__CTL_STATUS, 0, NULL, false, arena__ctl_run_status,
     "budget, heap, leased and free memory, counters",
     "Prints the daemon's version and uptime, the budget, the pool heap size,\n"
     "leased, free and dirty bytes, the largest free extent, fragmentation,\n"
     "and the lifetime counters.\n"},
    {"clients", ARENA__CTL_CLIENTS, 0, NULL, false, arena__ctl_run_clients,
     "connected clients and what they hold",
     "Lists the connected clients you may see (all of them for root, the\n"
     "daemon's user and the admin group; your own otherwise): id, pid, uid,\n"
     "name, leases, leased bytes, live bytes (what the client's allocator\n"
     "says it holds in use, never more than it leases), parked bytes, time\n"
     "connected.\n"},
    {"leases", ARENA__CTL_LEASES, ARENA__CTL_OPT_CLIENT, NULL, false, arena__ctl_run_leases,
     "leases (of one client)",
     "Lists the leases you may see, or those of client ID: lease id, client,\n"
     "uid, offset in the pool heap, size, whether known zeroed, age.\n"},
    {"reclaim", ARENA__CTL_RECLAIM, ARENA__CTL_OPT_BYTES | ARENA__CTL_OPT_CLIENT, NULL, false,
     arena__ctl_run_reclaim, "give released memory back to the kernel now",
     "Asks the daemon to give memory back to the kernel now: released but\n"
     "not yet punched extents, up to SIZE bytes (e.g. 512M; default: all),\n"
     "of client ID (default: everyone you may act on).\n"},
    {"metrics", ARENA__CTL_METRICS, 0, NULL, false, arena__ctl_run_metrics,
     "the daemon's metrics (Prometheus text format)",
     "Prints the daemon's metrics in Prometheus text format (0.0.4), as the\n"
     "daemon wrote them. With --json: {\"text\": ..., \"samples\": [...]}.\n"},
    {"top", ARENA__CTL_TOP, ARENA__CTL_OPT_INTERVAL | ARENA__CTL_OPT_ONCE | ARENA__CTL_OPT_COUNT,
     NULL, false, arena__ctl_run_top, "live view of budget, pressure and clients (q quits)",
     "A live view of the daemon: budget and how much of it is leased, pressure,\n"
     "dirty and free memory, and the clients you may see, biggest first (pid,\n"
     "uid, name, leases, leased, live and parked bytes, fair share, waiting\n"
     "requests, share of the budget, time connected).\n"
     "On a terminal the screen is redrawn in place every interval; press q or\n"
     "Ctrl-C to quit. Elsewhere one frame is printed per interval; with --json,\n"
     "one JSON document per frame, one per line.\n"},
    {"shares", ARENA__CTL_SHARES, 0, NULL, false, arena__ctl_run_shares,
     "leased, live, parked, fair share, weight, waiting",
     "Per client you may see: leased, live and parked bytes, the max-min fair share\n"
     "of the budget it is entitled to now, its weight, and the lease requests\n"
     "it has waiting (count and bytes).\n"},
    {"events", ARENA__CTL_EVENTS, ARENA__CTL_OPT_SINCE, NULL, false, arena__ctl_run_events,
     "the daemon's recent lease and pressure events",
     "The daemon's recent events (grants, releases, refusals, reclaims,\n"
     "pressure notifications) after sequence number SEQ (default 0: all the\n"
     "daemon still has), with the client's holding and fair share at the time.\n"
     "Privileged callers only.\n"},
    {"map", ARENA__CTL_MAP, ARENA__CTL_OPT_UID | ARENA__CTL_OPT_WIDTH, NULL, false,
     arena__ctl_run_map, "a picture of each pool heap: leased by whom, parked, dirty, free",
     "Draws each pool heap (one per uid) as rows of cells, high addresses at the\n"
     "top, each cell showing what holds most of its bytes: a letter per client for\n"
     "its leases (named under the picture), '=' parked, '~' dirty (released, waiting\n"
     "for its punch), '.' free, '!' held for a client of a previous arenad. Small\n"
     "leases are carved from the top of the heap, large ones from the bottom.\n"
     "Under each picture: size, leased, parked, dirty and free bytes, the largest\n"
     "free extent and the fragmentation (1 - largest free / free).\n"
     "Another user's pool: root, the daemon's user or the admin group only.\n"
     "With --json: the pools, their extents (offset, length, state, client_id),\n"
     "the figures and the clients, as one JSON document.\n"},
    {"help", ARENA__CTL_HELP, 0, "[COMMAND]", true, arena__ctl_run_help,
     "this text, or one command's",
     "Prints the list of commands, or what COMMAND does and takes.\n"},
    {"completion", ARENA__CTL_COMPLETION, 0, "bash", true, arena__ctl_run_completion,
     "print the bash completion script",
     "Prints a bash completion script for arenactl, written from the same\n"
     "table as this help. Load it with: source <(arenactl completion bash)\n"},
};
const size_t arena__ctl_ncommands = sizeof(arena__ctl_commands) / sizeof(arena__ctl_commands[0]);

const arena__ctl_command_t *arena__ctl_command(arena__ctl_cmd_t cmd)
{
    for (size_t i = 0; i < arena__ctl_ncommands; i++) {
        if (arena__ctl_commands[i].cmd == cmd)
            return &arena__ctl_commands[i];
    }
    return NULL;
}

const arena__ctl_command_t *arena__ctl_command_named(const char *name)
{
    for (size_t i = 0; name && i < arena__ctl_ncommands; i++) {
        if (strcmp(arena__ctl_commands[i].name, name) == 0)
            return &arena__ctl_commands[i];
    }
    return NULL;
}
