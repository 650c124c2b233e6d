/* SPDX-License-Identifier: MIT
 *
 * main.c -- arenad's entry point: flags, configuration, daemonising, systemd
 * notification. The only file of the daemon that exits.
 *
 * Settings come from the embedded defaults, then the --config file, then the
 * flags; a SIGHUP rebuilds them the same way (the flags are remembered as key
 * and value pairs) and the server applies what can change live. Exit codes:
 * 0 after a clean shutdown (and, in the parent of a daemonising start, once
 * the child listens), 1 when the daemon cannot start (socket taken, no
 * memfd), 2 for bad flags or configuration.
 *
 * Unless --foreground is given or systemd started us ($INVOCATION_ID), the
 * daemon forks; the parent waits on a pipe until the child's socket listens,
 * so `arenad && client` never races the socket into existence.
 *
 * Started without a service manager, the daemon supervises itself
 * (supervise.h): the process the user started keeps the fd store and
 * restarts the serving process it forks when that one crashes, so pools and
 * the ledger survive as under systemd. --no-supervise (and any service
 * manager: $NOTIFY_SOCKET, $INVOCATION_ID, an inherited socket) serves in
 * the process started.
 *
 * Under systemd (see notify.c, the only file that speaks its protocol): an
 * inherited listening socket (LISTEN_FDS) is served instead of binding the
 * configured path; READY=1 follows once the socket accepts; STATUS= lines
 * summarise clients and budget when they change (at most once a second);
 * WATCHDOG=1 pings at half of WatchdogSec; RELOADING=1 and READY=1 bracket a
 * SIGHUP reload; STOPPING=1 starts the shutdown.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <inttypes.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "notify.h"
#include "server.h"
#include "size.h"
#include "supervise.h"

#ifndef AD_VERSION
#define AD_VERSION "0.0.0"
#endif

#define MAIN_MAX_OVERRIDES 16

typedef struct main_ctx {
    const char *config_path;
    const char *keys[MAIN_MAX_OVERRIDES];
    const char *values[MAIN_MAX_OVERRIDES];
    size_t n;
} main_ctx_t;

static void usage(FILE *f)
{
    (void)fprintf(
        f, "Usage: arenad [OPTIONS]\n"
           "Shared-memory allocation daemon: leases memory to clients over a Unix socket.\n"
           "\n"
           "  -s, --socket PATH      listen on PATH (default: $ARENAD_SOCKET, else\n"
           "                         /run/arenad/arenad.sock as root, else\n"
           "                         $XDG_RUNTIME_DIR/arenad.sock)\n"
           "  -b, --budget SIZE      cap on bytes leased by all clients (512M, 8G, 75%%;\n"
           "                         default 50%% of RAM)\n"
           "      --heap-size SIZE   address space of each per-uid pool (default 2 x budget)\n"
           "  -c, --config FILE      read key = value settings from FILE (flags win)\n"
           "  -f, --foreground       do not daemonise\n"
           "      --no-supervise     serve in this process: no supervising process that\n"
           "                         keeps pools and ledger across a crash (for service\n"
           "                         managers with their own fd store; implied under one)\n"
           "  -l, --log-level LEVEL  error, warn, info (default) or debug\n"
           "  -h, --help             show this help\n"
           "  -V, --version          show the version\n"
           "\n"
           "Under systemd an inherited socket ($LISTEN_FDS) is served instead of binding\n"
           "one, and readiness, status, watchdog, reload and stop go to $NOTIFY_SOCKET.\n"
           "SIGHUP reloads the configuration; SIGTERM or SIGINT stops.\n");
}

/* restart.h's store hook: FDSTORE=1 through notify.c. */
static int fdstore_hook(void *ctx, int fd, const char *name)
{
    (void)ctx;
    int r = ad_notify_fdstore(fd, name);
    if (r < 0)
        ad_log(AD_LOG_WARN, "cannot put %s into the service manager's fd store: %s", name,
               ad_errstr(r));
    return r;
}

/* The fd store is used under a service manager that has one: systemd 254+
 * says so with $FDSTORE, and our unit sets ARENAD_FDSTORE=1 for older ones
 * (FileDescriptorStoreMax= is in the unit). */
static bool fdstore_wanted(void)
{
    /* NOLINTBEGIN(concurrency-mt-unsafe): single-threaded start-up */
    const char *a = getenv("FDSTORE");
    const char *b = getenv("ARENAD_FDSTORE");
    /* NOLINTEND(concurrency-mt-unsafe) */
    return ad_notify_enabled() &&
           ((a && a[0] && strcmp(a, "0") != 0) || (b && strcmp(b, "1") == 0));
}

static int build_config(const main_ctx_t *m, ad_config_t *ret_cfg, char *err, size_t err_len)
{
    ad_config_t cfg;
    ad_config_defaults(&cfg);
    int r;
    if (m->config_path) {
        r = ad_config_load(&cfg, m->config_path, err, err_len);
        if (r < 0)
            return r;
    }
    for (size_t i = 0; i < m->n; i++) {
        char why[AD_CONFIG_ERR_MAX];
        r = ad_config_set(&cfg, m->keys[i], m->values[i], why, sizeof(why));
        if (r < 0) {
            (void)snprintf(err, err_len, "--%s: %s", m->keys[i], why);
            return r;
        }
    }
    r = ad_config_finalize(&cfg, err, err_len);
    if (r < 0)
        return r;
    *ret_cfg = cfg;
    return 0;
}

static int reload_hook(void *ctx, ad_config_t *ret_config, char *err, size_t err_len)
{
    return build_config(ctx, ret_config, err, err_len);
}

/* The one-line STATUS= summary, e.g. "3 clients, 12 leases, 1.5G of 8G
 * leased (18%)". */
static void format_status(const ad_server_figures_t *f, char *buf, size_t len)
{
    char leased[32], budget[32];
    double pct = f->budget ? 100.0 * (double)f->leased_bytes / (double)f->budget : 0.0;
    (void)snprintf(buf, len, "%" PRIu32 " client%s, %" PRIu64 " lease%s, %s of %s leased (%.0f%%)",
                   f->clients, f->clients == 1 ? "" : "s", f->leases, f->leases == 1 ? "" : "s",
                   arena__size_format(f->leased_bytes, leased, sizeof(leased)),
                   arena__size_format(f->budget, budget, sizeof(budget)), pct);
}

static void status_hook(void *ctx, const ad_server_figures_t *f)
{
    (void)ctx;
    char status[256];
    format_status(f, status, sizeof(status));
    (void)ad_notify_status(status);
}

static void watchdog_hook(void *ctx)
{
    (void)ctx;
    (void)ad_notify_watchdog();
}

static void reloading_hook(void *ctx)
{
    (void)ctx;
    (void)ad_notify_reloading();
}

static void reloaded_hook(void *ctx, int result, const ad_server_figures_t *f)
{
    (void)ctx;
    char status[320];
    char summary[256];
    format_status(f, summary, sizeof(summary));
    (void)snprintf(status, sizeof(status), "%s%s", result < 0 ? "reload failed; " : "", summary);
    (void)ad_notify_ready(status);
}

static void stopping_hook(void *ctx)
{
    (void)ctx;
    (void)ad_notify_stopping("shutting down");
}

static int add_override(main_ctx_t *m, const char *key, const char *value)
{
    if (m->n >= MAIN_MAX_OVERRIDES)
        return -E2BIG;
    m->keys[m->n] = key;
    m->values[m->n] = value;
    m->n++;
    return 0;
}

/* Forks. The parent waits for the child to report that it listens and
 * returns the exit code for main: 0 then, or the child's exit status if it
 * dies first (1 if it gives none, or if forking fails). The child returns -1
 * with the write end of the pipe in *ret_ready_fd. */
static int daemonise(int *ret_ready_fd)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        (void)fprintf(stderr, "arenad: pipe: %s\n", ad_errstr(errno));
        return 1;
    }
    (void)fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        (void)fprintf(stderr, "arenad: fork: %s\n", ad_errstr(errno));
        (void)close(p[0]);
        (void)close(p[1]);
        return 1;
    }
    if (pid > 0) {
        (void)close(p[1]);
        char c = 0;
        ssize_t n;
        do {
            n = read(p[0], &c, 1);
        } while (n < 0 && errno == EINTR);
        (void)close(p[0]);
        if (n == 1 && c == 'R')
            return 0;
        int status = 0;
        if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) != 0)
            return WEXITSTATUS(status);
        return 1;
    }
    (void)close(p[0]);
    if (setsid() < 0 || chdir("/") < 0)
        _exit(1);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        (void)dup2(null, STDIN_FILENO);
        (void)dup2(null, STDOUT_FILENO);
        if (null > STDERR_FILENO)
            (void)close(null);
    }
    *ret_ready_fd = p[1];
    return -1;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"socket", required_argument, NULL, 's'},    {"budget", required_argument, NULL, 'b'},
        {"heap-size", required_argument, NULL, 'H'}, {"config", required_argument, NULL, 'c'},
        {"foreground", no_argument, NULL, 'f'},      {"no-supervise", no_argument, NULL, 'S'},
        {"log-level", required_argument, NULL, 'l'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},         {NULL, 0, NULL, 0},
    };
    main_ctx_t m;
    memset(&m, 0, sizeof(m));
    bool foreground = false;
    bool no_supervise = false;
    int opt;

    (void)signal(SIGPIPE, SIG_IGN);
    opterr = 0;
    /* NOLINTNEXTLINE(concurrency-mt-unsafe): single-threaded start-up */
    while ((opt = getopt_long(argc, argv, ":s:b:c:fl:hV", options, NULL)) != -1) {
        int r = 0;
        switch (opt) {
        case 's':
            r = add_override(&m, "socket", optarg);
            break;
        case 'b':
            r = add_override(&m, "budget", optarg);
            break;
        case 'H':
            r = add_override(&m, "heap_size", optarg);
            break;
        case 'c':
            m.config_path = optarg;
            break;
        case 'f':
            foreground = true;
            break;
        case 'S':
            no_supervise = true;
            break;
        case 'l':
            r = add_override(&m, "log_level", optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            (void)printf("arenad %s\n", AD_VERSION);
            return 0;
        case ':':
            (void)fprintf(stderr, "arenad: option %s needs a value\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        default:
            (void)fprintf(stderr, "arenad: unknown option %s\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        }
        if (r < 0) {
            (void)fprintf(stderr, "arenad: too many options\n");
            return 2;
        }
    }
    if (optind < argc) {
        (void)fprintf(stderr, "arenad: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    /* An inherited socket is taken first (and before forking: LISTEN_PID
     * names us). Its path is the socket setting from then on, also across
     * reloads, so an unprivileged daemon needs no default path of its own. */
    ad_server_hooks_t hooks = {.reload = reload_hook,
                               .reloading = reloading_hook,
                               .reloaded = reloaded_hook,
                               .stopping = stopping_hook,
                               .ctx = &m};
    static char inherited_path[AD_CONFIG_SOCKET_MAX];
    char err[AD_CONFIG_ERR_MAX] = "";
    int lfd = -1;
    int r = ad_notify_listen_fd(inherited_path, sizeof(inherited_path), err, sizeof(err), &lfd);
    if (r < 0) {
        (void)fprintf(stderr, "arenad: %s\n", err);
        return 1;
    }
    /* NOLINTNEXTLINE(concurrency-mt-unsafe): single-threaded start-up */
    const char *invocation = getenv("INVOCATION_ID");
    bool managed = ad_notify_enabled() || (invocation && invocation[0]);
    hooks.stored_count = ad_notify_stored_fds(&hooks.stored);
    bool supervise = !no_supervise && !managed && r == 0 && hooks.stored_count == 0;
    if (r > 0) {
        hooks.has_listen_fd = true;
        hooks.listen_fd = lfd;
        if (inherited_path[0] && add_override(&m, "socket", inherited_path) < 0) {
            (void)fprintf(stderr, "arenad: too many options\n");
            return 2;
        }
    }

    ad_config_t cfg;
    if (build_config(&m, &cfg, err, sizeof(err)) < 0) {
        (void)fprintf(stderr, "arenad: %s\n", err);
        return 2;
    }
    ad_log_set_level(cfg.log_level);

    int ready_fd = -1;
    if (!foreground && (!invocation || invocation[0] == '\0')) {
        int code = daemonise(&ready_fd);
        if (code >= 0)
            return code;
    }
    if (supervise) {
        int code = ad_supervise(ready_fd);
        if (code >= 0)
            return code;
        /* The server, under its supervisor: the fd store comes back the
         * way a service manager hands it over. */
        ready_fd = -1;
        r = ad_notify_listen_fd(inherited_path, sizeof(inherited_path), err, sizeof(err), &lfd);
        if (r != 0) {
            ad_log(AD_LOG_ERROR, "%s", r < 0 ? err : "unexpected listening socket");
            return 1;
        }
        hooks.stored_count = ad_notify_stored_fds(&hooks.stored);
    }
    if (fdstore_wanted())
        hooks.fdstore = fdstore_hook;
    if (ad_notify_enabled()) {
        hooks.status = status_hook;
        uint64_t usec = ad_notify_watchdog_usec();
        if (usec > 0) {
            hooks.watchdog = watchdog_hook;
            hooks.watchdog_ms = usec / 2000 > 0 ? usec / 2000 : 1;
        }
    }

    ad_server_t *server = NULL;
    r = ad_server_new(&cfg, &hooks, err, sizeof(err), &server);
    if (r < 0) {
        ad_log(AD_LOG_ERROR, "%s", err);
        return 1;
    }
    char status[AD_CONFIG_SOCKET_MAX + 64];
    char budget[32];
    (void)snprintf(status, sizeof(status), "serving %s%s, budget %s",
                   hooks.has_listen_fd ? "inherited socket " : "", cfg.socket,
                   arena__size_format(cfg.budget, budget, sizeof(budget)));
    (void)ad_notify_ready(status);
    if (ready_fd >= 0) {
        ssize_t w = write(ready_fd, "R", 1);
        (void)w;
        (void)close(ready_fd);
    }
    r = ad_server_run(server);
    ad_server_free(server);
    return r < 0 ? 1 : 0;
}
