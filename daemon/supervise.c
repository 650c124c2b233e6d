/* SPDX-License-Identifier: MIT
 *
 * supervise.c -- the fd store of an arenad started without a service
 * manager (see supervise.h for what and why).
 *
 * The supervisor is a service manager cut down to what arenad needs: it
 * keeps every fd the server puts into the store (FDSTORE=1 with FDNAME=,
 * one datagram each) and, when the server dies of a signal, forks a new
 * one with those fds at 3.. and their names in LISTEN_FDNAMES -- exactly
 * what systemd does with FileDescriptorStoreMax=, so restart.c resumes the
 * pools and the ledger the same way. The supervisor never maps a pool or
 * reads the ledger; it only holds references, so the pages outlive the
 * serving process and no client that sleeps through the crash loses any.
 *
 * Trust: the notify socket is an abstract socket of this network
 * namespace, so anybody local may send to it. Every datagram carries its
 * sender's credentials (SO_PASSCRED, filled in by the kernel), and only the
 * current server's pid is heard; fds from anybody else are closed unread.
 * Even the server's fds are only held and handed back: the new server
 * checks every pool memfd's owner and name before adopting it (adopt.c).
 *
 * Single-threaded; signals reach the loop through a self-pipe (a real
 * handler, so SIGTERM shows as caught in /proc/PID/status like the
 * server's). The server is forked, not exec'd: the supervisor has done
 * nothing yet but parse flags, so the child starts from a clean image.
 */
#include "supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"

#define SUPERVISE_FDS_PER_MSG 8

typedef struct supervisor {
    int notify_fd;
    char notify_name[64]; /* "@arenad-supervise-..." for NOTIFY_SOCKET */
    int ready_fd;
    pid_t child;
    bool child_ready; /* the current server said READY=1 */
    bool ever_ready;  /* some server did: the configuration can serve */
    bool stopping;    /* a stop was asked for: no restart */
    size_t n;
    int fds[AD_NOTIFY_MAX_STORED];
    char names[AD_NOTIFY_MAX_STORED][64];
    uint64_t restarts_ms[AD_SUPERVISE_BURST]; /* when the last restarts happened */
    size_t restarts;
} supervisor_t;

static int sup_pipe[2] = {-1, -1};

static void sup_on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t w = write(sup_pipe[1], &b, 1);
    (void)w; /* a full pipe already holds a wake-up */
    errno = saved;
}

static const int sup_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGCHLD};

static int sup_signals_set(bool install)
{
    for (size_t i = 0; i < sizeof(sup_signals) / sizeof(sup_signals[0]); i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = install ? sup_on_signal : SIG_DFL;
        sa.sa_flags = SA_RESTART;
        (void)sigemptyset(&sa.sa_mask);
        if (sigaction(sup_signals[i], &sa, NULL) < 0)
            return -errno;
    }
    return 0;
}

static uint64_t sup_now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Binds the abstract notify socket with SO_PASSCRED. Returns 0 or -errno. */
static int sup_notify_open(supervisor_t *s)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0) {
        int r = -errno;
        (void)close(fd);
        return r;
    }
    struct timespec ts;
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    (void)snprintf(s->notify_name, sizeof(s->notify_name), "@arenad-supervise-%ld-%lx",
                   (long)getpid(), (unsigned long)ts.tv_nsec);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    size_t len = strlen(s->notify_name);
    memcpy(sa.sun_path, s->notify_name, len);
    sa.sun_path[0] = '\0';
    if (bind(fd, (struct sockaddr *)&sa,
             (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0) {
        int r = -errno;
        (void)close(fd);
        return r;
    }
    s->notify_fd = fd;
    return 0;
}

/* Keeps fd under name; a fd stored again under the same name replaces it. */
static void sup_store(supervisor_t *s, const char *name, size_t len, int fd)
{
    if (len == 0 || len >= sizeof(s->names[0])) {
        (void)close(fd);
        return;
    }
    for (size_t i = 0; i < s->n; i++) {
        if (strlen(s->names[i]) == len && memcmp(s->names[i], name, len) == 0) {
            (void)close(s->fds[i]);
            s->fds[i] = fd;
            return;
        }
    }
    if (s->n >= AD_NOTIFY_MAX_STORED) {
        ad_log(AD_LOG_WARN, "supervisor: fd store full, %.*s not kept", (int)len, name);
        (void)close(fd);
        return;
    }
    memcpy(s->names[s->n], name, len);
    s->names[s->n][len] = '\0';
    s->fds[s->n++] = fd;
}

/* Reads one notification. Returns 1 when one was read, 0 when none is
 * pending, -errno on a socket error. */
static int sup_notify_read(supervisor_t *s)
{
    char buf[1024];
    union {
        struct cmsghdr align;
        char
            buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * SUPERVISE_FDS_PER_MSG)];
    } ctl;
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf) - 1};
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = ctl.buf,
                         .msg_controllen = sizeof(ctl.buf)};
    ssize_t n = recvmsg(s->notify_fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -errno;
    int fds[SUPERVISE_FDS_PER_MSG];
    size_t nfds = 0;
    bool have_cred = false;
    struct ucred cred;
    memset(&cred, 0, sizeof(cred));
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET)
            continue;
        if (c->cmsg_type == SCM_RIGHTS) {
            size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                if (nfds < SUPERVISE_FDS_PER_MSG)
                    fds[nfds++] = fd;
                else
                    (void)close(fd);
            }
        } else if (c->cmsg_type == SCM_CREDENTIALS &&
                   c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
            memcpy(&cred, CMSG_DATA(c), sizeof(cred));
            have_cred = true;
        }
    }
    buf[n] = '\0';
    /* Only the server we forked is heard; a truncated message is no message. */
    bool heard = have_cred && s->child > 0 && cred.pid == s->child &&
                 !(msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC));
    const char *name = heard ? strstr(buf, "FDNAME=") : NULL;
    if (heard && nfds == 1 && name && strstr(buf, "FDSTORE=1")) {
        name += 7;
        sup_store(s, name, strcspn(name, "\n"), fds[0]);
        nfds = 0;
    }
    for (size_t i = 0; i < nfds; i++)
        (void)close(fds[i]);
    if (!heard)
        return 1;
    if (strstr(buf, "STOPPING=1"))
        s->stopping = true;
    if (strstr(buf, "READY=1")) {
        s->child_ready = true;
        s->ever_ready = true;
        if (s->ready_fd >= 0) {
            ssize_t w = write(s->ready_fd, "R", 1);
            (void)w;
            (void)close(s->ready_fd);
            s->ready_fd = -1;
        }
    }
    return 1;
}

/* In the new server: the supervisor's fds closed, the stored ones moved to
 * 3.. and named in the environment. Returns 0 or -errno. */
static int sup_child_setup(supervisor_t *s)
{
    (void)sup_signals_set(false);
    (void)close(sup_pipe[0]);
    (void)close(sup_pipe[1]);
    (void)close(s->notify_fd);
    if (s->ready_fd >= 0)
        (void)close(s->ready_fd);
    if (setenv("NOTIFY_SOCKET", s->notify_name, 1) < 0 || setenv("ARENAD_FDSTORE", "1", 1) < 0)
        return -errno;
    (void)unsetenv("FDSTORE");
    if (s->n == 0)
        return 0;
    int high[AD_NOTIFY_MAX_STORED];
    int first = 3;
    for (size_t i = 0; i < s->n; i++) {
        high[i] = fcntl(s->fds[i], F_DUPFD_CLOEXEC, first + (int)s->n);
        if (high[i] < 0)
            return -errno;
    }
    char *names = malloc(s->n * sizeof(s->names[0]));
    if (!names)
        return -ENOMEM;
    names[0] = '\0';
    size_t at = 0;
    for (size_t i = 0; i < s->n; i++) {
        (void)close(s->fds[i]);
        size_t len = strlen(s->names[i]);
        if (i > 0)
            names[at++] = ':';
        memcpy(names + at, s->names[i], len + 1);
        at += len;
    }
    for (size_t i = 0; i < s->n; i++) {
        if (dup2(high[i], first + (int)i) < 0) {
            free(names);
            return -errno;
        }
        (void)close(high[i]);
    }
    char count[24], pid[24];
    (void)snprintf(count, sizeof(count), "%zu", s->n);
    (void)snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    int r = setenv("LISTEN_FDS", count, 1) < 0 || setenv("LISTEN_PID", pid, 1) < 0 ||
                    setenv("LISTEN_FDNAMES", names, 1) < 0
                ? -errno
                : 0;
    free(names);
    return r;
}

/* Forks a server. Returns 1 in the supervisor, 0 in the server (set up),
 * -errno when forking fails. */
static int sup_spawn(supervisor_t *s)
{
    pid_t parent = getpid();
    (void)fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        /* A supervisor killed outright takes its server along: nobody
         * would restart it, and a user who kills arenad wants it gone. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
            _exit(1);
        /* Terminal signals (Ctrl-C) reach the supervisor alone, which
         * forwards them once; a daemonised supervisor's server leads its
         * own session as an unsupervised daemon does. */
        if (getsid(0) == parent)
            (void)setsid();
        else
            (void)setpgid(0, 0);
        int r = sup_child_setup(s);
        if (r < 0) {
            ad_log(AD_LOG_ERROR, "supervisor: cannot set up the server: %s", ad_errstr(r));
            _exit(1);
        }
        return 0;
    }
    s->child = pid;
    s->child_ready = false;
    return 1;
}

/* Whether another restart fits in the burst limit (and records it). */
static bool sup_may_restart(supervisor_t *s, uint64_t now)
{
    if (s->restarts == AD_SUPERVISE_BURST) {
        if (now - s->restarts_ms[0] < AD_SUPERVISE_BURST_MS)
            return false;
        memmove(s->restarts_ms, s->restarts_ms + 1, sizeof(s->restarts_ms[0]) * (s->restarts - 1));
        s->restarts--;
    }
    s->restarts_ms[s->restarts++] = now;
    return true;
}

static void sup_free(supervisor_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        (void)close(s->fds[i]);
    s->n = 0;
    (void)close(s->notify_fd);
    (void)sup_signals_set(false);
    (void)close(sup_pipe[0]);
    (void)close(sup_pipe[1]);
    if (s->ready_fd >= 0)
        (void)close(s->ready_fd);
}

/* Handles the server's end. Returns -1 to go on (restarted: *ret_in_child
 * tells which side we are), or the exit code. */
static int sup_child_ended(supervisor_t *s, int status, bool *ret_in_child)
{
    /* What it sent before it died is still queued and still its own (a pool
     * stored just before the crash): read it all before forgetting it. */
    while (sup_notify_read(s) > 0)
        ;
    pid_t dead = s->child;
    s->child = 0;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : SIGKILL;
    /* The first server dying before it is ready is a start-up failure, not
     * a crash to ride out; later ones are restarted within the burst limit. */
    if (s->stopping || !s->ever_ready) {
        ad_log(AD_LOG_ERROR, "supervisor: server %ld ended by signal %d%s", (long)dead, sig,
               s->stopping ? "" : " before it was ever ready");
        return 128 + sig;
    }
    if (!sup_may_restart(s, sup_now_ms())) {
        ad_log(AD_LOG_ERROR,
               "supervisor: server %ld ended by signal %d, %d restarts in %u ms already: giving up",
               (long)dead, sig, AD_SUPERVISE_BURST, AD_SUPERVISE_BURST_MS);
        return 128 + sig;
    }
    ad_log(AD_LOG_WARN,
           "supervisor: server %ld ended by signal %d; restarting it with %zu stored fd(s)",
           (long)dead, sig, s->n);
    int r = sup_spawn(s);
    if (r < 0) {
        ad_log(AD_LOG_ERROR, "supervisor: fork: %s", ad_errstr(r));
        return 1;
    }
    *ret_in_child = r == 0;
    return -1;
}

int ad_supervise(int ready_fd)
{
    static supervisor_t sup; /* large (the store's names); one per process */
    supervisor_t *s = &sup;
    memset(s, 0, sizeof(*s));
    s->notify_fd = -1;
    s->ready_fd = ready_fd;
    if (pipe2(sup_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        ad_log(AD_LOG_ERROR, "supervisor: pipe: %s", ad_errstr(-errno));
        return 1;
    }
    int r = sup_notify_open(s);
    if (r == 0)
        r = sup_signals_set(true);
    if (r == 0)
        r = sup_spawn(s);
    if (r < 0) {
        ad_log(AD_LOG_ERROR, "supervisor: cannot start: %s", ad_errstr(r));
        sup_free(s);
        return 1;
    }
    if (r == 0)
        return -1; /* the server */
    for (;;) {
        struct pollfd p[2] = {{.fd = sup_pipe[0], .events = POLLIN},
                              {.fd = s->notify_fd, .events = POLLIN}};
        if (poll(p, 2, -1) < 0 && errno != EINTR) {
            ad_log(AD_LOG_ERROR, "supervisor: poll: %s", ad_errstr(-errno));
            (void)kill(s->child, SIGTERM);
        }
        while (sup_notify_read(s) > 0)
            ;
        unsigned char sigs[64];
        ssize_t got;
        while ((got = read(sup_pipe[0], sigs, sizeof(sigs))) > 0) {
            for (ssize_t i = 0; i < got; i++) {
                if (sigs[i] == SIGCHLD)
                    continue;
                if (sigs[i] == SIGTERM || sigs[i] == SIGINT)
                    s->stopping = true;
                if (s->child > 0)
                    (void)kill(s->child, sigs[i]);
            }
        }
        int status;
        pid_t w;
        while (s->child > 0 && (w = waitpid(s->child, &status, WNOHANG)) == s->child) {
            bool in_child = false;
            int code = sup_child_ended(s, status, &in_child);
            if (in_child)
                return -1;
            if (code >= 0) {
                sup_free(s);
                return code;
            }
        }
    }
}
