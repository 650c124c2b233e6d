/* SPDX-License-Identifier: MIT
 *
 * harness.c -- a real arenad per test, on a private temporary socket.
 *
 * The daemon runs in the foreground as our child, so we can wait for it,
 * read its exit status and kill it. Three things keep tests honest and tidy:
 * start-up waits for the socket to accept a connection (not for a sleep); an
 * exec failure travels back over a CLOEXEC pipe so a missing binary is
 * reported as such instead of as a time-out; and the child sets
 * PR_SET_PDEATHSIG before exec, so a test that crashes or is killed by its
 * time-out takes its daemon with it. PDEATHSIG follows the thread that forked,
 * so start daemons from a thread that outlives them (normally the main one).
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef ARENAD_PATH
#error "ARENAD_PATH must be defined by the build"
#endif

#define HARNESS_MAX_ARGS 64
#define HARNESS_START_MS 10000
#define HARNESS_STOP_MS  5000
#define HARNESS_POLL_NS  10000000L /* 10 ms */

static uint64_t harness_now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void harness_nap(void)
{
    struct timespec ts = {0, HARNESS_POLL_NS};
    (void)nanosleep(&ts, NULL);
}

/* Removes dir and the plain files or sockets in it (not recursive: the daemon
 * only ever puts its socket there). */
static void harness_remove_dir(const char *dir)
{
    DIR *dp = opendir(dir);
    if (dp) {
        struct dirent *de;
        while ((de = readdir(dp)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            (void)unlinkat(dirfd(dp), de->d_name, 0);
        }
        (void)closedir(dp);
    }
    (void)rmdir(dir);
}

static int harness_connect_path(const char *path)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int r = -errno;
        (void)close(fd);
        return r;
    }
    return fd;
}

int harness_connect(const harness_daemon_t *d)
{
    if (!d || d->socket[0] == '\0')
        return -EINVAL;
    return harness_connect_path(d->socket);
}

int harness_count_fds(pid_t pid)
{
    char path[64];
    (void)snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
    DIR *dp = opendir(path);
    if (!dp)
        return -errno;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        if (de->d_name[0] != '.')
            n++;
    }
    (void)closedir(dp);
    return n;
}

/* In the child: never returns. Reports an exec failure's errno on errfd. */
static void harness_child(const char *const *argv, int errfd, pid_t parent)
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
static int harness_spawn(harness_daemon_t *nd, const char *const *extra_args)
{
    const char *argv[HARNESS_MAX_ARGS + 1];
    const char *bin = getenv("ARENAD_HARNESS_BINARY");
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
    for (size_t i = 0; extra_args && extra_args[i]; i++) {
        if (n >= HARNESS_MAX_ARGS)
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
        harness_child(argv, pipefd[1], parent);
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

    uint64_t deadline = harness_now_ms() + HARNESS_START_MS;
    for (;;) {
        int status;
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            return -ECHILD;
        int fd = harness_connect_path(nd->socket);
        if (fd >= 0) {
            (void)close(fd);
            break;
        }
        if (harness_now_ms() >= deadline) {
            (void)kill(pid, SIGKILL);
            (void)waitpid(pid, NULL, 0);
            return -ETIMEDOUT;
        }
        harness_nap();
    }
    nd->pid = pid;
    return 0;
}

int harness_daemon_start(harness_daemon_t *d, const char *const *extra_args)
{
    harness_daemon_t nd;
    if (!d)
        return -EINVAL;
    memset(&nd, 0, sizeof(nd));
    (void)snprintf(nd.dir, sizeof(nd.dir), "/tmp/arenad-test-XXXXXX");
    if (!mkdtemp(nd.dir))
        return -errno;
    (void)snprintf(nd.socket, sizeof(nd.socket), "%s/arenad.sock", nd.dir);
    int r = harness_spawn(&nd, extra_args);
    if (r < 0) {
        harness_remove_dir(nd.dir);
        memset(d, 0, sizeof(*d));
        return r;
    }
    *d = nd;
    return 0;
}

int harness_daemon_restart(harness_daemon_t *d, int sig, const char *const *extra_args)
{
    if (!d || d->dir[0] == '\0')
        return -EINVAL;
    if (d->pid > 0) {
        (void)kill(d->pid, sig);
        (void)waitpid(d->pid, NULL, 0);
        d->pid = 0;
    }
    return harness_spawn(d, extra_args);
}

int harness_daemon_stop(harness_daemon_t *d)
{
    int result = -1;

    if (!d)
        return -1;
    if (d->pid > 0) {
        int status = 0;
        pid_t w = 0;
        (void)kill(d->pid, SIGTERM);
        uint64_t deadline = harness_now_ms() + HARNESS_STOP_MS;
        for (;;) {
            w = waitpid(d->pid, &status, WNOHANG);
            if (w != 0 || harness_now_ms() >= deadline)
                break;
            harness_nap();
        }
        if (w == 0) {
            (void)kill(d->pid, SIGKILL);
            do {
                w = waitpid(d->pid, &status, 0);
            } while (w < 0 && errno == EINTR);
            w = -2; /* killed: not a clean exit whatever the status says */
        }
        if (w == d->pid && WIFEXITED(status))
            result = WEXITSTATUS(status);
        d->pid = 0;
    }
    if (d->dir[0] != '\0') {
        harness_remove_dir(d->dir);
        d->dir[0] = '\0';
    }
    d->socket[0] = '\0';
    return result;
}

/* ---- running programs ------------------------------------------------------- */

/* Appends what fd has to buf (NUL-terminated, at most cap - 1 bytes kept);
 * returns false at EOF or on an error. */
static bool harness_drain(int fd, char *buf, size_t cap, size_t *len)
{
    char chunk[4096];
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR)
        return true;
    if (n <= 0)
        return false;
    size_t keep = (size_t)n < cap - 1 - *len ? (size_t)n : cap - 1 - *len;
    memcpy(buf + *len, chunk, keep);
    *len += keep;
    buf[*len] = '\0';
    return true;
}

int harness_run(char *const argv[], harness_run_t *r)
{
    int out[2], err[2];
    r->out[0] = r->err[0] = '\0';
    if (pipe2(out, O_CLOEXEC) < 0)
        return r->code = -errno;
    if (pipe2(err, O_CLOEXEC) < 0) {
        r->code = -errno;
        (void)close(out[0]);
        (void)close(out[1]);
        return r->code;
    }
    (void)fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null < 0 || dup2(null, 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0)
            _exit(126);
        execvp(argv[0], argv);
        _exit(127);
    }
    (void)close(out[1]);
    (void)close(err[1]);
    if (pid < 0) {
        r->code = -errno;
        (void)close(out[0]);
        (void)close(err[0]);
        return r->code;
    }
    size_t olen = 0, elen = 0;
    struct pollfd pf[2] = {{.fd = out[0], .events = POLLIN}, {.fd = err[0], .events = POLLIN}};
    while (pf[0].fd >= 0 || pf[1].fd >= 0) {
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pf[0].revents && !harness_drain(out[0], r->out, sizeof(r->out), &olen))
            pf[0].fd = -1;
        if (pf[1].revents && !harness_drain(err[0], r->err, sizeof(r->err), &elen))
            pf[1].fd = -1;
    }
    (void)close(out[0]);
    (void)close(err[0]);
    int status;
    pid_t w;
    do {
        w = waitpid(pid, &status, 0);
    } while (w < 0 && errno == EINTR);
    if (w != pid)
        return r->code = -ECHILD;
    r->code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    return r->code;
}
