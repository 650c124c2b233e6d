/* SPDX-License-Identifier: MIT
 *
 * args.c -- arenactl's command line, through one getopt_long loop over the
 * option table (commands.c).
 *
 * Options may come before or after the command word (getopt runs in the
 * in-order mode, so POSIXLY_CORRECT changes nothing); a value is checked as it
 * is read, and whether the command takes the option once the command is
 * known, so the message can name the commands it applies to. getopt's own
 * messages are off: every error is one line of ours on `err`. Uses getopt's
 * globals, so one thread at a time.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "size.h"

#define ARGS_OPT_BASE 256 /* getopt_long's val for option i is ARGS_OPT_BASE + i */
#define ARGS_MAX_OPTS 32

static int args_u64(const char *s, uint64_t *ret)
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

/* Stores the value of option o in *a; -EINVAL when it is malformed. */
static int args_value(const arena__ctl_option_t *o, const char *v, arena__ctl_args_t *a)
{
    const unsigned valued = ARENA__CTL_OPT_SOCKET | ARENA__CTL_OPT_CLIENT | ARENA__CTL_OPT_BYTES |
                            ARENA__CTL_OPT_SINCE | ARENA__CTL_OPT_INTERVAL | ARENA__CTL_OPT_COUNT |
                            ARENA__CTL_OPT_UID | ARENA__CTL_OPT_WIDTH;
    if ((o->bit & valued) && !v)
        return -EINVAL; /* getopt gives each option that takes a value one */
    switch (o->bit) {
    case ARENA__CTL_OPT_SOCKET:
        if (!*v)
            return -EINVAL;
        a->socket = v;
        return 0;
    case ARENA__CTL_OPT_JSON:
        a->json = true;
        return 0;
    case ARENA__CTL_OPT_CLIENT:
        return args_u64(v, &a->client_id);
    case ARENA__CTL_OPT_BYTES:
        return arena__size_parse(v, 0, &a->bytes) < 0 ? -EINVAL : 0;
    case ARENA__CTL_OPT_SINCE:
        return args_u64(v, &a->since);
    case ARENA__CTL_OPT_INTERVAL: {
        char *end = NULL;
        double s = strtod(v, &end);
        if (end == v || *end || !(s >= 0.1 && s <= 3600.0))
            return -EINVAL;
        a->interval = s;
        return 0;
    }
    case ARENA__CTL_OPT_ONCE:
        a->count = 1;
        return 0;
    case ARENA__CTL_OPT_COUNT:
        return args_u64(v, &a->count) < 0 || a->count == 0 ? -EINVAL : 0;
    case ARENA__CTL_OPT_UID: {
        uint64_t uid;
        if (args_u64(v, &uid) < 0 || uid >= UINT32_MAX)
            return -EINVAL; /* (uid_t)-1 is no uid */
        a->has_uid = true;
        a->uid = (uint32_t)uid;
        return 0;
    }
    case ARENA__CTL_OPT_WIDTH: {
        uint64_t w;
        if (args_u64(v, &w) < 0 || w < ARENA__CTL_MAP_WIDTH_MIN || w > ARENA__CTL_MAP_WIDTH_MAX)
            return -EINVAL;
        a->width = (unsigned)w;
        return 0;
    }
    default:
        return 0; /* --help, --version: flags the caller handles */
    }
}

/* "leases and reclaim": the commands that take option bit, from the table. */
static void args_takers(unsigned bit, FILE *err)
{
    size_t n = 0, seen = 0;
    for (size_t i = 0; i < arena__ctl_ncommands; i++)
        n += (arena__ctl_commands[i].options & bit) != 0;
    for (size_t i = 0; i < arena__ctl_ncommands; i++) {
        if (!(arena__ctl_commands[i].options & bit))
            continue;
        seen++;
        (void)fprintf(err, "%s%s",
                      seen == 1   ? ""
                      : seen == n ? " and "
                                  : ", ",
                      arena__ctl_commands[i].name);
    }
}

int arena__ctl_parse(int argc, char **argv, FILE *err, arena__ctl_args_t *ret_args)
{
    arena__ctl_args_t a;
    memset(&a, 0, sizeof(a));
    a.interval = 1.0;

    struct option longs[ARGS_MAX_OPTS + 1];
    char shorts[8 + 2 * ARGS_MAX_OPTS] = "-:"; /* in order; ':' for a missing value */
    size_t ns = 2;
    for (size_t i = 0; i < arena__ctl_noptions && i < ARGS_MAX_OPTS; i++) {
        const arena__ctl_option_t *o = &arena__ctl_options[i];
        longs[i] = (struct option){o->name, o->arg ? required_argument : no_argument, NULL,
                                   ARGS_OPT_BASE + (int)i};
        if (o->letter) {
            shorts[ns++] = o->letter;
            if (o->arg)
                shorts[ns++] = ':';
        }
    }
    longs[arena__ctl_noptions < ARGS_MAX_OPTS ? arena__ctl_noptions : ARGS_MAX_OPTS] =
        (struct option){NULL, 0, NULL, 0};
    shorts[ns] = '\0';

    unsigned seen = 0;
    const char *words[3] = {NULL, NULL, NULL};
    size_t nwords = 0;
    optind = 0; /* glibc: start afresh, also after an earlier parse */
    opterr = 0;
    int c;
    /* getopt keeps its state in globals: arenactl parses once, on one thread. */
    /* NOLINTNEXTLINE(concurrency-mt-unsafe) */
    while ((c = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
        if (c == 1) { /* a word: the command, then its argument */
            if (nwords == 3) {
                (void)fprintf(err, "arenactl: unexpected argument '%s'\n", optarg);
                return -EINVAL;
            }
            words[nwords++] = optarg;
            continue;
        }
        if (c == '?') {
            if (optopt)
                (void)fprintf(err, "arenactl: unknown option '-%c' (see arenactl --help)\n",
                              optopt);
            else
                (void)fprintf(err, "arenactl: unknown option '%s' (see arenactl --help)\n",
                              argv[optind - 1]);
            return -EINVAL;
        }
        int idx = -1;
        int which = c == ':' ? optopt : c;
        if (which >= ARGS_OPT_BASE) {
            idx = which - ARGS_OPT_BASE;
        } else {
            for (size_t i = 0; i < arena__ctl_noptions; i++)
                if (arena__ctl_options[i].letter == which)
                    idx = (int)i;
        }
        if (idx < 0 || (size_t)idx >= arena__ctl_noptions)
            return -EINVAL; /* cannot happen: getopt only returns what we gave it */
        const arena__ctl_option_t *o = &arena__ctl_options[idx];
        if (c == ':' || args_value(o, o->arg ? optarg : NULL, &a) < 0) {
            (void)fprintf(err, "arenactl: %s\n", o->bad ? o->bad : "bad option value");
            return -EINVAL;
        }
        seen |= o->bit;
    }

    const arena__ctl_command_t *cmd = NULL;
    if (nwords > 0) {
        cmd = arena__ctl_command_named(words[0]);
        if (!cmd) {
            (void)fprintf(err, "arenactl: unknown command '%s' (see arenactl --help)\n", words[0]);
            return -EINVAL;
        }
        size_t allowed = cmd->arg ? 2 : 1;
        if (nwords > allowed) {
            (void)fprintf(err, "arenactl: unexpected argument '%s'\n", words[allowed]);
            return -EINVAL;
        }
        a.cmd = cmd->cmd;
        a.word = nwords > 1 ? words[1] : NULL;
    }
    if (seen & ARENA__CTL_OPT_HELP) {
        a.help_for = a.cmd;
        a.cmd = ARENA__CTL_HELP;
        *ret_args = a;
        return 0;
    }
    if (!cmd) {
        if (seen & ARENA__CTL_OPT_VERSION) {
            a.cmd = ARENA__CTL_VERSION;
            *ret_args = a;
            return 0;
        }
        (void)fprintf(err, "arenactl: no command given (see arenactl --help)\n");
        return -EINVAL;
    }
    unsigned stray = seen & ~(ARENA__CTL_OPT_GLOBAL | cmd->options);
    for (size_t i = 0; stray && i < arena__ctl_noptions; i++) {
        if (!(stray & arena__ctl_options[i].bit))
            continue;
        (void)fprintf(err, "arenactl: --%s applies to ", arena__ctl_options[i].name);
        args_takers(arena__ctl_options[i].bit, err);
        (void)fputc('\n', err);
        return -EINVAL;
    }
    if (a.cmd == ARENA__CTL_HELP && a.word) {
        const arena__ctl_command_t *about = arena__ctl_command_named(a.word);
        if (!about) {
            (void)fprintf(err, "arenactl: unknown command '%s' (see arenactl --help)\n", a.word);
            return -EINVAL;
        }
        a.help_for = about->cmd;
    }
    *ret_args = a;
    return 0;
}
