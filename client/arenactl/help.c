/* SPDX-License-Identifier: MIT
 *
 * help.c -- `arenactl --help`, `arenactl help CMD` (and `CMD --help`) and the
 * bash completion script, all written from the command and option tables
 * (commands.c), so a new command or option shows up in each without a second
 * list to keep in step. Prints only to the FILE it is given; any thread.
 */
#include <errno.h>
#include <string.h>

#include "ctl.h"

#define HELP_COLUMN 29 /* where the summaries start in the command list */

static const arena__ctl_option_t *help_option(unsigned bit)
{
    for (size_t i = 0; i < arena__ctl_noptions; i++) {
        if (arena__ctl_options[i].bit == bit)
            return &arena__ctl_options[i];
    }
    return NULL;
}

/* "leases [--client ID]": the command, its options and its argument. Returns
 * the number of characters written. */
static int help_synopsis(const arena__ctl_command_t *c, FILE *out)
{
    int n = fprintf(out, "%s", c->name);
    for (size_t i = 0; i < arena__ctl_noptions; i++) {
        const arena__ctl_option_t *o = &arena__ctl_options[i];
        if (!(c->options & o->bit))
            continue;
        n +=
            o->arg ? fprintf(out, " [--%s %s]", o->name, o->arg) : fprintf(out, " [--%s]", o->name);
    }
    if (c->arg)
        n += fprintf(out, " %s", c->arg);
    return n;
}

static void help_option_line(const arena__ctl_option_t *o, FILE *out)
{
    char left[64];
    if (o->letter)
        (void)snprintf(left, sizeof(left), "-%c, --%s%s%s", o->letter, o->name, o->arg ? " " : "",
                       o->arg ? o->arg : "");
    else
        (void)snprintf(left, sizeof(left), "--%s%s%s", o->name, o->arg ? " " : "",
                       o->arg ? o->arg : "");
    (void)fprintf(out, "  %-16s %s\n", left, o->help);
}

void arena__ctl_usage(arena__ctl_cmd_t cmd, FILE *out)
{
    const arena__ctl_command_t *c = cmd == ARENA__CTL_NONE ? NULL : arena__ctl_command(cmd);
    if (c) {
        (void)fputs("Usage: arenactl [--socket PATH] [--json] ", out);
        (void)help_synopsis(c, out);
        (void)fprintf(out, "\n\n%s", c->usage);
        if (c->options) {
            (void)fputs("\nOptions:\n", out);
            for (size_t i = 0; i < arena__ctl_noptions; i++) {
                if (c->options & arena__ctl_options[i].bit)
                    help_option_line(&arena__ctl_options[i], out);
            }
        }
        return;
    }
    (void)fputs("Usage: arenactl [--socket PATH] [--json] COMMAND [OPTIONS]\n"
                "\n"
                "Shows and steers a running arenad.\n"
                "\n"
                "Commands:\n",
                out);
    for (size_t i = 0; i < arena__ctl_ncommands; i++) {
        const arena__ctl_command_t *k = &arena__ctl_commands[i];
        (void)fputs("  ", out);
        int n = help_synopsis(k, out) + 2;
        if (n >= HELP_COLUMN - 1) {
            (void)fputc('\n', out);
            n = 0;
        }
        (void)fprintf(out, "%*s%s\n", HELP_COLUMN - n, "", k->summary);
    }
    (void)fputs("\nOptions:\n", out);
    for (unsigned bit = 1; bit & ARENA__CTL_OPT_GLOBAL; bit <<= 1) {
        const arena__ctl_option_t *o = help_option(bit);
        if (o)
            help_option_line(o, out);
    }
    (void)fputs("\nExit status: 0 success, 1 the daemon refused, 2 usage error or no daemon.\n",
                out);
}

int arena__ctl_run_help(arena_conn_t *conn, const arena__ctl_args_t *a, FILE *out, FILE *err)
{
    (void)conn;
    (void)err;
    arena__ctl_usage(a->help_for, out);
    return 0;
}

/* Words that complete an option's value: sizes for --bytes, nothing for the
 * numbers. --socket completes file names (in the script itself). */
static const char *help_value_words(unsigned bit)
{
    return bit == ARENA__CTL_OPT_BYTES ? "64M 256M 1G 4G" : "";
}

static void help_words(unsigned options, FILE *out)
{
    const char *sep = "";
    for (size_t i = 0; i < arena__ctl_noptions; i++) {
        if (options & arena__ctl_options[i].bit) {
            (void)fprintf(out, "%s--%s", sep, arena__ctl_options[i].name);
            sep = " ";
        }
    }
}

/* The bash script: commands, global options, each command's options, and
 * the option values, from the tables. */
static void help_bash(FILE *out)
{
    (void)fputs("# bash completion for arenactl(8)                         -*- shell-script -*-\n"
                "# SPDX-License-Identifier: MIT\n"
                "# Written by `arenactl completion bash` from arenactl's command table.\n"
                "# Installed to share/bash-completion/completions/arenactl.\n"
                "\n"
                "_arenactl()\n"
                "{\n"
                "    local cur prev words cword\n"
                "    if declare -F _init_completion >/dev/null 2>&1; then\n"
                "        _init_completion || return\n"
                "    else\n"
                "        COMPREPLY=()\n"
                "        cur=\"${COMP_WORDS[COMP_CWORD]}\"\n"
                "        prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n"
                "        words=(\"${COMP_WORDS[@]}\")\n"
                "        cword=$COMP_CWORD\n"
                "    fi\n"
                "\n"
                "    local commands=\"",
                out);
    for (size_t i = 0; i < arena__ctl_ncommands; i++)
        (void)fprintf(out, "%s%s", i ? " " : "", arena__ctl_commands[i].name);
    (void)fputs("\"\n    local global=\"", out);
    help_words(ARENA__CTL_OPT_GLOBAL & ~ARENA__CTL_OPT_HELP, out);
    (void)fputs(" --help\"\n"
                "\n"
                "    case \"$prev\" in\n"
                "        --socket)\n"
                "            # Unix sockets and directories.\n"
                "            local IFS=$'\\n'\n"
                "            COMPREPLY=($(compgen -d -- \"$cur\") $(compgen -f -- \"$cur\" | "
                "while read -r f; do [ -S \"$f\" ] && printf '%s\\n' \"$f\"; done))\n"
                "            compopt -o filenames 2>/dev/null\n"
                "            return\n"
                "            ;;\n",
                out);
    for (size_t i = 0; i < arena__ctl_noptions; i++) {
        const arena__ctl_option_t *o = &arena__ctl_options[i];
        if (!o->arg || o->bit == ARENA__CTL_OPT_SOCKET)
            continue;
        (void)fprintf(out,
                      "        --%s)\n"
                      "            COMPREPLY=($(compgen -W \"%s\" -- \"$cur\"))\n"
                      "            return\n"
                      "            ;;\n",
                      o->name, help_value_words(o->bit));
    }
    (void)fputs("    esac\n"
                "\n"
                "    # The command given so far, if any.\n"
                "    local i cmd=\"\"\n"
                "    for ((i = 1; i < cword; i++)); do\n"
                "        case \"${words[i]}\" in\n"
                "            --socket) ((i++)) ;;\n"
                "            -*) ;;\n"
                "            *) cmd=\"${words[i]}\"; break ;;\n"
                "        esac\n"
                "    done\n"
                "\n"
                "    local opts\n"
                "    case \"$cmd\" in\n"
                "        \"\") opts=\"$commands $global\" ;;\n",
                out);
    for (size_t i = 0; i < arena__ctl_ncommands; i++) {
        const arena__ctl_command_t *c = &arena__ctl_commands[i];
        (void)fprintf(out, "        %s) opts=\"", c->name);
        help_words(c->options, out);
        if (c->cmd == ARENA__CTL_HELP)
            (void)fputs("$commands", out);
        else if (c->cmd == ARENA__CTL_COMPLETION)
            (void)fputs("bash", out);
        else
            (void)fputs(c->options ? " --json" : "--json", out);
        (void)fputs(" --help\" ;;\n", out);
    }
    (void)fputs("        *) opts=\"--help\" ;;\n"
                "    esac\n"
                "    COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n"
                "}\n"
                "complete -F _arenactl arenactl\n",
                out);
}

int arena__ctl_run_completion(arena_conn_t *conn, const arena__ctl_args_t *a, FILE *out, FILE *err)
{
    (void)conn;
    if (!a->word) {
        (void)fprintf(err, "arenactl: completion needs a shell: arenactl completion bash\n");
        return -EINVAL;
    }
    if (strcmp(a->word, "bash") != 0) {
        (void)fprintf(err, "arenactl: completion: no script for shell '%s' (only bash)\n", a->word);
        return -EINVAL;
    }
    help_bash(out);
    return 0;
}
