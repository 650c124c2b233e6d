/* SPDX-License-Identifier: MIT
 *
 * run.c -- run a program with a given argv and environment, collect its
 * stdout and stderr and its exit status, within a time limit.
 *
 * Output is read from both pipes at once with poll() while stdin is fed, so
 * a chatty program never blocks on a full pipe and large outputs (a sorted
 * 20 MiB file) come back whole. The program's exit ends the collection
 * (after draining what is buffered), not EOF: a daemon that forks into the
 * background keeps the pipes open. The child gets its own process group so a
 * time-out kills whatever it started too, and PR_SET_PDEATHSIG so it never
 * outlives the test. Trusts nothing the program writes: buffers grow on
 * demand. Call from one thread at a time (it forks).
 */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RUN_DEFAULT_TIMEOUT_MS 120000

typedef struct run_buf {
    char *data;
    size_t len, cap;
} run_buf_t;

static int64_t run_now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads what fd has into b. Returns 1 while open, 0 at EOF, -errno. */
static int run_buf_read(run_buf_t *b, int fd)
{
    if (b->cap - b->len < 4096) {
        size_t cap = b->cap ? b->cap * 2 : 65536;
        char *d = realloc(b->data, cap);
        if (!d)
            return -ENOMEM;
        b->data = d;
        b->cap = cap;
    }
    ssize_t n = read(fd, b->data + b->len, b->cap - 1 - b->len);
    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 1 : -errno;
    b->len += (size_t)n;
    return n > 0;
}

/* Hands b's bytes, NUL-terminated, to *ret_data / *ret_len. */
static void run_buf_take(run_buf_t *b, char **ret_data, size_t *ret_len)
{
    if (!b->data)
        b->data = malloc(1);
    if (b->data)
        b->data[b->len] = '\0';
    *ret_data = b->data;
    *ret_len = b->data ? b->len : 0;
}

/* In the child: never returns. */
static void run_child(const char *const *argv, const arena_run_opts_t *o, int in_fd, int out_fd,
                      int err_fd, pid_t parent)
{
    (void)setpgid(0, 0);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
        _exit(126);
    for (const char *const *e = o->env; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (eq) {
            char name[128];
            (void)snprintf(name, sizeof(name), "%.*s", (int)(eq - *e), *e);
            (void)setenv(name, eq + 1, 1);
        } else {
            (void)unsetenv(*e);
        }
    }
    if (in_fd < 0)
        in_fd = open(o->in_path ? o->in_path : "/dev/null", O_RDONLY | O_CLOEXEC);
    if (in_fd < 0 || dup2(in_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
        dup2(err_fd, STDERR_FILENO) < 0)
        _exit(126);
    execvp(argv[0], (char *const *)argv);
    _exit(127);
}

static void run_close(int *fd)
{
    if (*fd >= 0)
        (void)close(*fd);
    *fd = -1;
}

int arena_run(const char *const *argv, const arena_run_opts_t *opts, arena_run_t *ret)
{
    static const arena_run_opts_t none;
    const arena_run_opts_t *o = opts ? opts : &none;
    int out[2] = {-1, -1}, err[2] = {-1, -1}, in[2] = {-1, -1};
    int r = 0;

    if (!argv || !argv[0] || !ret)
        return -EINVAL;
    if (pipe2(out, O_CLOEXEC) < 0 || (!o->merge_err && pipe2(err, O_CLOEXEC) < 0) ||
        (o->input && pipe2(in, O_CLOEXEC) < 0)) {
        r = -errno;
        goto fail_pipes;
    }
    pid_t parent = getpid();
    (void)fflush(NULL); /* buffered output must not be written twice */
    pid_t pid = fork();
    if (pid < 0) {
        r = -errno;
        goto fail_pipes;
    }
    if (pid == 0)
        run_child(argv, o, in[0], out[1], o->merge_err ? out[1] : err[1], parent);
    (void)setpgid(pid, pid); /* also here: no race with a kill before the child ran */
    run_close(&out[1]);
    run_close(&err[1]);
    run_close(&in[0]);
    if (in[1] >= 0)
        (void)fcntl(in[1], F_SETFL, O_NONBLOCK);

    run_buf_t bout = {0}, berr = {0};
    size_t in_len = o->input ? strlen(o->input) : 0, in_done = 0;
    int64_t deadline = run_now_ms() + (o->timeout_ms > 0 ? o->timeout_ms : RUN_DEFAULT_TIMEOUT_MS);
    bool timed_out = false, exited = false;
    int status = 0;
    if (in[1] >= 0 && in_len == 0)
        run_close(&in[1]);
    /* Until the program exits and its pipes are drained: a program that
     * daemonises leaves a child holding them, so exit, not EOF, ends it. */
    while (!exited || out[0] >= 0 || err[0] >= 0) {
        if (!exited) {
            pid_t w = waitpid(pid, &status, WNOHANG);
            if (w == pid || (w < 0 && errno != EINTR)) {
                exited = true;
                run_close(&in[1]);
                if (out[0] >= 0)
                    (void)fcntl(out[0], F_SETFL, O_NONBLOCK);
                if (err[0] >= 0)
                    (void)fcntl(err[0], F_SETFL, O_NONBLOCK);
            }
        }
        int64_t left = deadline - run_now_ms();
        if (!exited && left <= 0) {
            timed_out = true;
            break;
        }
        struct pollfd p[3] = {{.fd = out[0], .events = POLLIN},
                              {.fd = err[0], .events = POLLIN},
                              {.fd = in[1], .events = POLLOUT}};
        /* Short naps while it runs, to notice its exit; none once it has. */
        int n = poll(p, 3, exited ? 0 : (int)(left < 20 ? left : 20));
        if (n < 0 && errno != EINTR) {
            r = -errno;
            break;
        }
        if (n == 0 && exited)
            break; /* drained: what is left belongs to a daemonised child */
        if (n <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (!p[i].revents)
                continue;
            int k = run_buf_read(i == 0 ? &bout : &berr, p[i].fd);
            if (k <= 0)
                run_close(i == 0 ? &out[0] : &err[0]);
            if (k < 0)
                r = k;
        }
        if (p[2].revents) {
            ssize_t w = write(in[1], o->input + in_done, in_len - in_done);
            if (w > 0)
                in_done += (size_t)w;
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || in_done == in_len)
                run_close(&in[1]); /* done, or the program closed its stdin */
        }
    }
    run_close(&out[0]);
    run_close(&err[0]);
    run_close(&in[1]);
    if (timed_out) {
        pid_t w;
        (void)kill(-pid, SIGKILL);
        (void)kill(pid, SIGKILL);
        do {
            w = waitpid(pid, &status, 0);
        } while (w < 0 && errno == EINTR);
        if (r == 0)
            r = -ETIMEDOUT;
    } else if (!exited) {
        pid_t w;
        do {
            w = waitpid(pid, &status, 0);
        } while (w < 0 && errno == EINTR);
    }
    memset(ret, 0, sizeof(*ret));
    ret->status = status;
    ret->code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    ret->timed_out = timed_out;
    run_buf_take(&bout, &ret->out, &ret->out_len);
    run_buf_take(&berr, &ret->err, &ret->err_len);
    return r;

fail_pipes:
    run_close(&out[0]);
    run_close(&out[1]);
    run_close(&err[0]);
    run_close(&err[1]);
    run_close(&in[0]);
    run_close(&in[1]);
    return r;
}

void arena_run_free(arena_run_t *r)
{
    if (!r)
        return;
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
    r->out_len = r->err_len = 0;
}
