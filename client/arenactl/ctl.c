/* SPDX-License-Identifier: MIT
 *
 * ctl.c -- arenactl's flow: parse the command line, answer help, version and
 * the other local commands, else connect to the daemon, run the command's
 * handler from the table and turn the result into the exit code.
 *
 *   0  success
 *   1  the daemon refused (its own words are printed), or output failed
 *   2  usage error, or no daemon (the message names the socket tried)
 *
 * One connection per run, made here and closed here; handlers only use it.
 * Runs on the calling thread.
 */
#include <errno.h>
#include <stdio.h>

#include "ctl.h"
#include "paths.h"
#include "conn.h"
#include "wire.h"

/* Connects to --socket or the default socket. Returns 0 and *ret_conn, or an
 * exit code after saying why on err. */
static int ctl_connect(const arena__ctl_args_t *a, FILE *err, arena_conn_t **ret_conn)
{
    char path[sizeof(((arena__conn_info_t *)0)->socket_path)];
    if (a->socket) {
        (void)snprintf(path, sizeof(path), "%s", a->socket);
    } else if (arena__client_socket_path(path, sizeof(path)) < 0) {
        (void)fprintf(err, "arenactl: no socket to try: set ARENAD_SOCKET or XDG_RUNTIME_DIR, "
                           "or pass --socket PATH\n");
        return ARENA__CTL_EXIT_USAGE;
    }
    const char *target = a->socket ? a->socket : path;
    int r = arena_connect(target, ret_conn);
    if (r < 0) {
        (void)fprintf(err, "arenactl: cannot reach arenad at %s: %s\n", target, arena_strerror(r));
        /* A daemon that answered but refused us (version) is a "no"; nothing
         * listening, a bad path or no permission is a setup problem. */
        return r == ARENA_EVERSION ? ARENA__CTL_EXIT_DAEMON : ARENA__CTL_EXIT_USAGE;
    }
    return 0;
}

int arena__ctl_main(int argc, char **argv, FILE *out, FILE *err)
{
    arena__ctl_args_t a;
    if (arena__ctl_parse(argc, argv, err, &a) < 0)
        return ARENA__CTL_EXIT_USAGE;
    if (a.cmd == ARENA__CTL_VERSION) {
        (void)fprintf(out, "arenactl %d.%d.%d\n", ARENA_VERSION_MAJOR, ARENA_VERSION_MINOR,
                      ARENA_VERSION_PATCH);
        return ARENA__CTL_EXIT_OK;
    }
    const arena__ctl_command_t *cmd = arena__ctl_command(a.cmd);
    if (!cmd || !cmd->run)
        return ARENA__CTL_EXIT_USAGE; /* cannot happen: the parser knows only table rows */
    if (cmd->local)
        return cmd->run(NULL, &a, out, err) < 0 ? ARENA__CTL_EXIT_USAGE : ARENA__CTL_EXIT_OK;

    arena_conn_t *conn;
    int code = ctl_connect(&a, err, &conn);
    if (code != 0)
        return code;
    int r = cmd->run(conn, &a, out, err);
    if (r < 0) {
        char msg[256];
        (void)arena__conn_last_error(conn, msg, sizeof(msg));
        /* The daemon's own words say more than the errno text. */
        (void)fprintf(err, "arenactl: %s: %s\n", cmd->name, msg[0] ? msg : arena_strerror(r));
        code = ARENA__CTL_EXIT_DAEMON;
    }
    arena_disconnect(conn);
    if (fflush(out) != 0 && code == ARENA__CTL_EXIT_OK) {
        (void)fprintf(err, "arenactl: cannot write output: %s\n", arena_strerror(-errno));
        code = ARENA__CTL_EXIT_DAEMON;
    }
    return code;
}
