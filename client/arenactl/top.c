/* SPDX-License-Identifier: MIT
 *
 * top.c -- `arenactl top`, the operator's live view: one frame per interval
 * (status, pressure, clients sorted by what they hold) on the connection it
 * is given, redrawn in place with ANSI escapes on a terminal (alternate
 * screen, cursor hidden, restored on q, Ctrl-C or error), printed frame after
 * frame otherwise, and once with --once for scripts and tests. With --json
 * each frame is one JSON document on one line: the status record, the
 * pressure word and the client records.
 *
 * Installs SIGINT/SIGTERM handlers for the duration of the view and puts a
 * terminal's stdin in raw mode, restoring both; main thread only.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

static volatile sig_atomic_t top_quit;

static void top_on_signal(int sig)
{
    (void)sig;
    top_quit = 1;
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
        json_object *doc = arena__ctl_record_json(&arena__ctl_rec_status, st);
        if (doc) {
            (void)json_object_object_add(doc, "pressure", json_object_new_string(pressure));
            (void)json_object_object_add(doc, "clients_list",
                                         arena__ctl_records_json(&arena__ctl_rec_client,
                                                                 list->items, list->count,
                                                                 sizeof(list->items[0])));
        }
        (void)arena__ctl_json_print(out, doc);
        return;
    }
    char a[32], b[32], c[32], d[32], e[32];
    time_t now = time(NULL);
    struct tm tm;
    char clock[16] = "";
    if (localtime_r(&now, &tm))
        (void)strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
    (void)fprintf(out, "arenad %s  up %s  %s  %s\n", st->daemon_version,
                  arena__ctl_duration(st->uptime_ms, a, sizeof(a)), st->socket_path, clock);
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
                  arena__ctl_size(st->budget, a, sizeof(a)),
                  arena__ctl_size(st->leased_bytes, b, sizeof(b)), bar, pct, pressure);
    /* After a restart: leases held for clients to claim back count against the budget. */
    if (st->restart_held_bytes > 0)
        (void)fprintf(out, "  held %s", arena__ctl_size(st->restart_held_bytes, c, sizeof(c)));
    (void)fputc('\n', out);
    (void)fprintf(out, "Memory dirty %s  free %s  largest free %s  fragmentation %.1f%%\n",
                  arena__ctl_size(st->dirty_bytes, a, sizeof(a)),
                  arena__ctl_size(st->free_bytes, b, sizeof(b)),
                  arena__ctl_size(st->largest_free, c, sizeof(c)), st->fragmentation * 100.0);
    (void)fprintf(out,
                  "Clients %" PRIu32 "  leases %" PRIu64 "  pools %" PRIu32 "  refused %" PRIu64
                  "  protocol errors %" PRIu64 "  punched %s\n",
                  st->clients, st->leases, st->pools, st->requests_refused_total,
                  st->protocol_errors_total,
                  arena__ctl_size(st->bytes_punched_total, d, sizeof(d)));
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
        (void)fprintf(out,
                      "%7" PRIu64 " %7" PRIu32 " %6" PRIu32 " %-16.16s %6" PRIu64
                      " %10s %10s %10s %9s%c %4" PRIu32 " %5.1f%% %9s\n",
                      cl->client_id, cl->pid, cl->uid, cl->name, cl->leases,
                      arena__ctl_size(cl->leased_bytes, a, sizeof(a)),
                      arena__ctl_size(cl->live_bytes, e, sizeof(e)),
                      arena__ctl_size(cl->parked_bytes, c, sizeof(c)),
                      arena__ctl_size(cl->fair_share, d, sizeof(d)), above ? '*' : ' ', cl->waiting,
                      share, arena__ctl_duration(cl->connected_ms, b, sizeof(b)));
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

int arena__ctl_run_top(arena_conn_t *conn, const arena__ctl_args_t *a, FILE *out, FILE *err)
{
    (void)err;
    int r = 0;
    /* Redraw in place only on a terminal, and never for --once or --json. */
    bool screen = !a->json && a->count != 1 && out == stdout && isatty(STDOUT_FILENO);
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
            break; /* arena__ctl_main() says "arenactl: top: ..." */
        }
        uint64_t delta = frames > 0 && st.requests_refused_total > last_refused
                             ? st.requests_refused_total - last_refused
                             : 0;
        last_refused = st.requests_refused_total;
        if (screen)
            (void)fputs("\033[H\033[2J", out);
        else if (frames > 0 && !a->json)
            (void)fputc('\n', out);
        top_frame(out, &st, list, delta, a->json, screen ? top_table_rows() : 0);
        if (screen)
            (void)fputs("\npress q to quit", out);
        arena__admin_clients_free(list);
        (void)fflush(out);
        frames++;
        if (a->count > 0 && frames >= a->count)
            break;
        if (top_wait((int)(a->interval * 1000.0), tty_in))
            break;
    }
    if (screen)
        (void)fputs("\033[?25h\033[?1049l", out); /* cursor back, main screen */
    if (raw)
        (void)tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    (void)sigaction(SIGINT, &old_int, NULL);
    (void)sigaction(SIGTERM, &old_term, NULL);
    return r < 0 ? r : 0;
}
