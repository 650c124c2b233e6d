/* SPDX-License-Identifier: MIT
 *
 * daemon.c -- a real arenad per test, on a private temporary socket.
 *
 * The daemon runs in the foreground as our child, so we can wait for it,
 * read its exit status and kill it. Four things keep tests honest and tidy:
 * start-up waits until the daemon handles SIGTERM and its socket accepts a
 * connection (not for a sleep), so a test may stop it at once; an
 * exec failure travels back over a CLOEXEC pipe so a missing binary is
 * reported as such instead of as a time-out; the child sets
 * PR_SET_PDEATHSIG before exec, so a test that crashes or is killed by its
 * time-out takes its daemon with it; and stopping returns how the daemon
 * ended, so a sanitizer's report at shutdown (exit 23) is not lost.
 * PDEATHSIG follows the thread that forked, so start daemons from a thread
 * that outlives them (normally the main one). Trusts nothing from the daemon
 * but its exit status. Main thread only.
 */
#include "daemon.h"
#include "child.h"
#include "proc.h"
#include "sock.h"
#include "tmpdir.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef ARENAD_PATH
#error "ARENAD_PATH must be defined by the build"
#endif

#define DAEMON_MAX_ARGS 64
#define DAEMON_START_MS 10000
#define DAEMON_STOP_MS  5000
#define DAEMON_POLL_NS  10000000L /* 10 ms */

static uint64_t daemon_now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void daemon_nap(void)
{
    struct timespec ts = {0, DAEMON_POLL_NS};
    (void)nanosleep(&ts, NULL);
}

int arena_test_daemon_connect(const arena_test_daemon_t *d)
{
    if (!d || d->socket[0] == '\0')
        return -EINVAL;
    return arena_test_unix_socket(d->socket, SOCK_STREAM, ARENA_TEST_SOCK_CONNECT);
}

/* In the child: never returns. Reports an exec failure's errno on errfd. */
static void daemon_child(const char *const *argv, int errfd, pid_t parent)
{
    sigset_t none;
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
    (void)signal(SIGPIPE, SIG_DFL);
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
        _exit(127); /* the test died before we could arm the death signal */
    execv(argv[0], (char *const *)argv);
    int e = errno;
    ssize_t w = write(errfd, &e, sizeof(e));
    (void)w;
    _exit(127);
}

/* Spawns the daemon on nd->socket (nd->dir exists) and waits until it
 * listens. Returns 0 with nd->pid set, or -errno with nothing running. */
static int daemon_spawn(arena_test_daemon_t *nd, const char *const *extra_args)
{
    const char *argv[DAEMON_MAX_ARGS + 1];
    const char *bin = getenv("ARENAD_DAEMON_BINARY");
    int pipefd[2];
    size_t n = 0;

    if (!bin || bin[0] == '\0')
        bin = ARENAD_PATH;
    argv[n++] = bin;
    argv[n++] = "--foreground";
    argv[n++] = "--socket";
    argv[n++] = nd->socket;
    argv[n++] = "--log-level";
    argv[n++] = "warn";
    if (!nd->supervised)
        argv[n++] = "--no-supervise";
    if (nd->config[0] != '\0') {
        argv[n++] = "--config";
        argv[n++] = nd->config;
    }
    for (size_t i = 0; extra_args && extra_args[i]; i++) {
        if (n >= DAEMON_MAX_ARGS)
            return -E2BIG;
        argv[n++] = extra_args[i];
    }
    argv[n] = NULL;

    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return -errno;
    pid_t parent = getpid();
    (void)fflush(NULL); /* buffered test output must not be written twice */
    pid_t pid = fork();
    if (pid < 0) {
        int r = -errno;
        (void)close(pipefd[0]);
        (void)close(pipefd[1]);
        return r;
    }
    if (pid == 0)
        daemon_child(argv, pipefd[1], parent);
    (void)close(pipefd[1]);

    /* exec succeeded when the pipe closes with nothing in it. */
    int child_errno = 0;
    ssize_t got;
    do {
        got = read(pipefd[0], &child_errno, sizeof(child_errno));
    } while (got < 0 && errno == EINTR);
    (void)close(pipefd[0]);
    if (got == (ssize_t)sizeof(child_errno)) {
        (void)waitpid(pid, NULL, 0);
        return child_errno > 0 ? -child_errno : -ENOEXEC;
    }

    uint64_t deadline = daemon_now_ms() + DAEMON_START_MS;
    for (;;) {
        int status;
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            return -ECHILD;
        /* Ready means stoppable too: a daemon that listens before it
         * handles SIGTERM (arenad did until its server installed the
         * handlers first) dies of a SIGTERM in between, not cleanly. */
        int fd = -1;
        if (arena_test_catches_signal(pid, SIGTERM) == 1)
            fd = arena_test_unix_socket(nd->socket, SOCK_STREAM, ARENA_TEST_SOCK_CONNECT);
        if (fd >= 0) {
            (void)close(fd);
            break;
        }
        if (daemon_now_ms() >= deadline) {
            (void)kill(pid, SIGKILL);
            (void)waitpid(pid, NULL, 0);
            return -ETIMEDOUT;
        }
        daemon_nap();
    }
    nd->pid = pid;
    return 0;
}

/* Writes text to path (created 0600). Returns 0 or -errno. */
static int daemon_write_config(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    size_t len = strlen(text), done = 0;
    int r = 0;
    while (done < len && r == 0) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            r = w < 0 ? -errno : -EIO;
        else
            done += (size_t)w;
    }
    if (close(fd) < 0 && r == 0)
        r = -errno;
    return r;
}

/* Starts a daemon, supervised or not (see the two callers). */
static int daemon_start(arena_test_daemon_t *d, const char *config, const char *const *extra_args,
                        int supervised)
{
    arena_test_daemon_t nd;
    if (!d)
        return -EINVAL;
    memset(&nd, 0, sizeof(nd));
    nd.supervised = supervised;
    (void)snprintf(nd.dir, sizeof(nd.dir), "/tmp/arenad-test-XXXXXX");
    if (!mkdtemp(nd.dir))
        return -errno;
    (void)snprintf(nd.socket, sizeof(nd.socket), "%s/arenad.sock", nd.dir);
    int r = 0;
    if (config) {
        (void)snprintf(nd.config, sizeof(nd.config), "%s/arenad.conf", nd.dir);
        r = daemon_write_config(nd.config, config);
    }
    if (r == 0)
        r = daemon_spawn(&nd, extra_args);
    if (r < 0) {
        arena_test_rmtree(nd.dir);
        memset(d, 0, sizeof(*d));
        return r;
    }
    *d = nd;
    return 0;
}

int arena_test_daemon_start(arena_test_daemon_t *d, const char *config,
                            const char *const *extra_args)
{
    return daemon_start(d, config, extra_args, 0);
}

int arena_test_daemon_start_supervised(arena_test_daemon_t *d, const char *config,
                                       const char *const *extra_args)
{
    return daemon_start(d, config, extra_args, 1);
}

pid_t arena_test_daemon_server_pid(const arena_test_daemon_t *d, pid_t not_pid)
{
    if (!d || d->pid <= 0)
        return -EINVAL;
    if (!d->supervised)
        return d->pid;
    char path[64];
    (void)snprintf(path, sizeof(path), "/proc/%ld/task/%ld/children", (long)d->pid, (long)d->pid);
    uint64_t deadline = daemon_now_ms() + DAEMON_START_MS;
    for (;;) {
        long child = 0;
        FILE *f = fopen(path, "re");
        if (f) {
            if (fscanf(f, "%ld", &child) != 1)
                child = 0;
            (void)fclose(f);
        }
        if (child > 0 && (pid_t)child != not_pid &&
            arena_test_catches_signal((pid_t)child, SIGTERM) == 1) {
            int fd = arena_test_unix_socket(d->socket, SOCK_STREAM, ARENA_TEST_SOCK_CONNECT);
            if (fd >= 0) {
                (void)close(fd);
                return (pid_t)child;
            }
        }
        if (daemon_now_ms() >= deadline)
            return -ETIMEDOUT;
        daemon_nap();
    }
}

int arena_test_daemon_restart(arena_test_daemon_t *d, int sig, const char *const *extra_args)
{
    if (!d || d->dir[0] == '\0')
        return -EINVAL;
    if (d->pid > 0) {
        /* A supervisor's server goes with it (its death signal), but not in
         * the same instant: wait until it is gone, or it may still hold the
         * socket when the next daemon binds. */
        pid_t server = d->supervised ? arena_test_daemon_server_pid(d, 0) : 0;
        (void)kill(d->pid, sig);
        (void)waitpid(d->pid, NULL, 0);
        d->pid = 0;
        for (int i = 0; server > 0 && i < 500 && arena_test_catches_signal(server, SIGTERM) == 1;
             i++)
            daemon_nap();
    }
    return daemon_spawn(d, extra_args);
}

int arena_test_daemon_stop(arena_test_daemon_t *d)
{
    int result = ARENA_TEST_DAEMON_NOT_RUNNING;

    if (!d)
        return ARENA_TEST_DAEMON_NOT_RUNNING;
    if (d->pid > 0) {
        int r = arena_test_child_stop(d->pid, DAEMON_STOP_MS);
        if (r >= 0 || r <= ARENA_TEST_KILLED(1))
            result = r;
        d->pid = 0;
    }
    if (d->dir[0] != '\0') {
        arena_test_rmtree(d->dir);
        d->dir[0] = '\0';
    }
    d->socket[0] = '\0';
    d->config[0] = '\0';
    return result;
}
