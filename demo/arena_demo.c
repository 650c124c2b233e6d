/* SPDX-License-Identifier: MIT
 *
 * arena_demo.c -- the story arenad exists for (shared/seeds/python-allocator-
 * talk.txt), made runnable.
 *
 * A generator builds a large scenario out of millions of small objects,
 * frees all of it, starts a simulator process and blocks in waitpid() until
 * the simulator is done. The simulator needs most of the machine's memory.
 * The story runs twice:
 *
 *   system   the generator uses malloc/free, with glibc told to keep what is
 *            freed (M_TRIM_THRESHOLD and M_MMAP_THRESHOLD at their maximum),
 *            which is what Python's small-object allocator does with its
 *            arenas. The machine is modelled as the budget: the simulator
 *            gets its memory only if the generator's resident set leaves
 *            room for it.
 *   arenad   the generator uses arena_malloc/arena_free, the simulator asks
 *            arenad for a lease of that size (waiting up to --wait-ms). The
 *            daemon's budget is the machine. The generator's pools park
 *            each segment as it empties (a bounded cache; reuse is a CAS and
 *            an mprotect) and give the rest back. The default need (90%) is
 *            more than the generator left free, so the daemon takes the
 *            parked leases back without the generator's help (DESIGN.md
 *            section 5) while it is blocked; what is neither parked nor
 *            live can come back through pressure, which the generator's
 *            library answers from a background thread (ARENA_BACKGROUND=1).
 *
 * Both runs are sampled every 100 ms (VmRSS of both processes) and printed
 * side by side, then a summary line per run. With no --socket the demo
 * starts a private arenad (the arenad next to this executable) on a
 * temporary socket and stops it at the end.
 *
 * Usage: arena-demo [--socket PATH] [--budget-mb N] [--objects N]
 *                   [--object-size B] [--need-pct P] [--wait-ms MS]
 *                   [--generator-trims]
 *
 * --generator-trims makes the generator also call arena_trim() after
 * freeing, before it blocks (returning the spare segment and purged pages).
 *
 * --share [--scenario-mb N] runs the hand-off story instead (share_demo.c):
 * the generator hands its scenario to the simulator by token and exits;
 * the simulator reads the same pages, with no copy.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
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

#include "arena.h"
#include "share_demo.h"

#define MiB        ((size_t)1024 * 1024)
#define MAX_SAMPLE 1200

typedef struct opts {
    const char *socket;
    size_t budget_mb;
    size_t objects;
    size_t object_size;
    unsigned need_pct;
    int wait_ms;
    bool generator_trims; /* the generator calls arena_trim() before blocking */
} opts_t;

typedef struct sample {
    uint64_t t_ms;
    size_t gen_kb;
    size_t sim_kb;
    char phase; /* 'b'uild, 'f'reed, 's'imulating, 'd'one */
} sample_t;

typedef struct run {
    const char *name;
    sample_t s[MAX_SAMPLE];
    size_t n;
    bool got;        /* the simulator got its memory */
    double wait_ms;  /* how long it waited for it */
    size_t peak_gen; /* kB */
    size_t gen_after_free;
    char why[200]; /* as long as the result line it comes from */
} run_t;

static uint64_t now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* VmRSS of pid in kB, 0 if gone. */
static size_t rss_kb(pid_t pid)
{
    if (pid <= 0)
        return 0;
    char path[64], line[256];
    (void)snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    size_t kb = 0;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = (size_t)strtoull(line + 6, NULL, 10);
            break;
        }
    }
    (void)fclose(f);
    return kb;
}

typedef struct node {
    struct node *next;
    uint64_t payload[];
} node_t;

/* The generator's scenario: a linked list of small objects, written. */
static node_t *build(bool arena, size_t count, size_t size)
{
    node_t *head = NULL;
    for (size_t i = 0; i < count; i++) {
        node_t *n = arena ? arena_malloc(size) : malloc(size);
        if (!n)
            return head;
        n->next = head;
        n->payload[0] = i;
        head = n;
    }
    return head;
}

static void destroy(bool arena, node_t *head)
{
    while (head) {
        node_t *next = head->next;
        if (arena)
            arena_free(head);
        else
            free(head);
        head = next;
    }
}

/* The simulator. Writes one line to out: "ok MS" or "starved REASON". */
static int simulator(bool arena, const opts_t *o, pid_t generator, int out)
{
    size_t need = o->budget_mb * MiB / 100 * o->need_pct;
    char line[200];
    uint64_t t0 = now_ms();
    if (!arena) {
        /* The machine has budget_mb; the generator's resident set stays. */
        size_t gen = rss_kb(generator) * 1024;
        size_t room = gen < o->budget_mb * MiB ? o->budget_mb * MiB - gen : 0;
        if (need > room) {
            (void)snprintf(line, sizeof(line),
                           "starved %zu MiB wanted, %zu MiB free: the generator keeps %zu MiB\n",
                           need / MiB, room / MiB, gen / MiB);
            if (write(out, line, strlen(line)) < 0)
                return 1;
            /* Stay a while, as a simulator waiting for memory would. */
            struct timespec ts = {.tv_sec = 0, .tv_nsec = 500000000};
            (void)nanosleep(&ts, NULL);
            return 0;
        }
        char *p = malloc(need);
        if (!p)
            return 1;
        memset(p, 1, need);
        (void)snprintf(line, sizeof(line), "ok %llu\n", (unsigned long long)(now_ms() - t0));
        if (write(out, line, strlen(line)) < 0)
            return 1;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 300000000};
        (void)nanosleep(&ts, NULL);
        free(p);
        return 0;
    }
    arena_conn_t *conn;
    int r = arena_connect(o->socket, &conn);
    if (r < 0)
        return 2;
    arena_lease_t l;
    r = arena_lease(conn, need, o->wait_ms, &l);
    uint64_t waited = now_ms() - t0;
    if (r < 0) {
        (void)snprintf(line, sizeof(line), "starved %s after %llu ms\n", arena_strerror(r),
                       (unsigned long long)waited);
    } else {
        memset(l.addr, 1, l.size);
        (void)snprintf(line, sizeof(line), "ok %llu\n", (unsigned long long)waited);
    }
    if (write(out, line, strlen(line)) < 0)
        return 1;
    if (r == 0) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 300000000};
        (void)nanosleep(&ts, NULL);
        (void)arena_release(conn, &l);
    }
    arena_disconnect(conn);
    return 0;
}

/* The generator: build, free, start the simulator, block in waitpid. Tells
 * the monitor its phases and the simulator's pid through ctl. */
static int generator(bool arena, const opts_t *o, int ctl, int result)
{
    if (arena) {
        (void)setenv("ARENAD_SOCKET", o->socket, 1);
        (void)setenv("ARENA_BACKGROUND", "1", 1);
    } else {
        (void)mallopt(M_TRIM_THRESHOLD, INT_MAX);
        (void)mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
    }
    node_t *scenario = build(arena, o->objects, o->object_size);
    if (!scenario)
        return 3;
    char c = 'f';
    destroy(arena, scenario);
    if (arena && o->generator_trims)
        (void)arena_trim();
    if (write(ctl, &c, 1) != 1)
        return 4;
    struct timespec settle = {.tv_sec = 0, .tv_nsec = 300000000};
    (void)nanosleep(&settle, NULL);
    /* A fresh process, as a generator would start a simulator written in
     * another language: fork + exec, so it shares nothing of ours. */
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (len <= 0)
        return 5;
    exe[len] = '\0';
    char me[32], fd[32], budget[32], pct[32], wait[32];
    (void)snprintf(me, sizeof(me), "%ld", (long)getpid());
    (void)snprintf(fd, sizeof(fd), "%d", result);
    (void)snprintf(budget, sizeof(budget), "%zu", o->budget_mb);
    (void)snprintf(pct, sizeof(pct), "%u", o->need_pct);
    (void)snprintf(wait, sizeof(wait), "%d", o->wait_ms);
    pid_t sim = fork();
    if (sim < 0)
        return 5;
    if (sim == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        int flags = fcntl(result, F_GETFD);
        (void)fcntl(result, F_SETFD, flags & ~FD_CLOEXEC);
        execl(exe, exe, "--simulate", arena ? "arenad" : "system", "--generator", me, "--result-fd",
              fd, "--budget-mb", budget, "--need-pct", pct, "--wait-ms", wait, "--socket",
              o->socket ? o->socket : "", (char *)NULL);
        _exit(127);
    }
    c = 's';
    if (write(ctl, &c, 1) != 1 || write(ctl, &sim, sizeof(sim)) != sizeof(sim))
        return 6;
    int st;
    while (waitpid(sim, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 7;
}

static void run_story(bool arena, const opts_t *o, run_t *run)
{
    run->name = arena ? "arenad" : "system";
    int ctl[2], result[2];
    if (pipe2(ctl, O_CLOEXEC | O_NONBLOCK) < 0 || pipe2(result, O_CLOEXEC | O_NONBLOCK) < 0) {
        perror("arena-demo: pipe");
        exit(1);
    }
    uint64_t t0 = now_ms();
    pid_t gen = fork();
    if (gen < 0) {
        perror("arena-demo: fork");
        exit(1);
    }
    if (gen == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fl = fcntl(ctl[1], F_GETFL);
        (void)fcntl(ctl[1], F_SETFL, fl & ~O_NONBLOCK);
        _exit(generator(arena, o, ctl[1], result[1]));
    }
    (void)close(ctl[1]);
    (void)close(result[1]);
    pid_t sim = 0;
    char phase = 'b';
    char line[200] = "";
    size_t got = 0;
    bool gen_done = false;
    int gen_status = 0;
    while (run->n < MAX_SAMPLE) {
        char c;
        while (read(ctl[0], &c, 1) == 1) {
            phase = c;
            if (c == 'f')
                run->gen_after_free = 0;
            if (c == 's') {
                /* The pid follows the byte; the writer sent both at once. */
                for (int tries = 0; tries < 100 && read(ctl[0], &sim, sizeof(sim)) != sizeof(sim);
                     tries++) {
                    struct timespec ts = {.tv_sec = 0, .tv_nsec = 1000000};
                    (void)nanosleep(&ts, NULL);
                }
            }
        }
        ssize_t k = read(result[0], line + got, sizeof(line) - 1 - got);
        if (k > 0)
            got += (size_t)k;
        line[got] = '\0';
        sample_t *s = &run->s[run->n++];
        s->t_ms = now_ms() - t0;
        s->gen_kb = rss_kb(gen);
        s->sim_kb = rss_kb(sim);
        s->phase = gen_done ? 'd' : phase;
        if (s->gen_kb > run->peak_gen)
            run->peak_gen = s->gen_kb;
        if (phase == 'f' && run->gen_after_free == 0)
            run->gen_after_free = s->gen_kb;
        if (gen_done)
            break;
        if (waitpid(gen, &gen_status, WNOHANG) == gen)
            gen_done = true;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 100000000};
        (void)nanosleep(&ts, NULL);
    }
    if (!gen_done) {
        (void)kill(gen, SIGKILL);
        (void)waitpid(gen, &gen_status, 0);
    }
    ssize_t k;
    while ((k = read(result[0], line + got, sizeof(line) - 1 - got)) > 0)
        got += (size_t)k;
    line[got] = '\0';
    char *nl = strchr(line, '\n');
    if (nl)
        *nl = '\0';
    run->got = strncmp(line, "ok ", 3) == 0;
    run->wait_ms = run->got ? atof(line + 3) : 0;
    (void)snprintf(run->why, sizeof(run->why), "%s",
                   line[0] ? line
                           : (WIFEXITED(gen_status) ? "generator failed" : "generator killed"));
    (void)close(ctl[0]);
    (void)close(result[0]);
}

/* Starts a private arenad next to this executable; returns its pid. */
static pid_t start_daemon(const opts_t *o, char *sock, size_t len, char *dir, size_t dlen)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return -1;
    (void)snprintf(slash + 1, sizeof(exe) - (size_t)(slash + 1 - exe), "arenad");
    (void)snprintf(dir, dlen, "/tmp/arena-demo-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    (void)snprintf(sock, len, "%s/arenad.sock", dir);
    char budget[32];
    (void)snprintf(budget, sizeof(budget), "%zuM", o->budget_mb);
    pid_t pid = fork();
    if (pid == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
        execl(exe, "arenad", "--foreground", "--socket", sock, "--budget", budget, "--log-level",
              "warn", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500 && pid > 0; i++) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        (void)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
        int r = connect(fd, (const struct sockaddr *)&sa, sizeof(sa));
        (void)close(fd);
        if (r == 0)
            return pid;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 10000000};
        (void)nanosleep(&ts, NULL);
    }
    return -1;
}

static void usage(FILE *f)
{
    (void)fputs("usage: arena-demo [--socket PATH] [--budget-mb N] [--objects N] "
                "[--object-size B] [--need-pct P] [--wait-ms MS] [--generator-trims]\n"
                "       arena-demo --share [--socket PATH] [--scenario-mb N]\n",
                f);
}

int main(int argc, char **argv)
{
    const char *simulate = NULL;
    bool share = false;
    size_t scenario_mb = 64;
    pid_t gen_pid = 0;
    int result_fd = -1;
    opts_t o = {
        .budget_mb = 256, .objects = 2000000, .object_size = 64, .need_pct = 90, .wait_ms = 10000};
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--generator-trims") == 0) {
            o.generator_trims = true;
            continue;
        }
        if (strcmp(argv[i], "--share") == 0) {
            share = true;
            continue;
        }
        if (!v) {
            usage(stderr);
            return 2;
        }
        if (strcmp(argv[i], "--socket") == 0)
            o.socket = v[0] ? v : NULL;
        else if (strcmp(argv[i], "--simulate") == 0)
            simulate = v;
        else if (strcmp(argv[i], "--generator") == 0)
            gen_pid = (pid_t)atol(v);
        else if (strcmp(argv[i], "--result-fd") == 0)
            result_fd = atoi(v);
        else if (strcmp(argv[i], "--budget-mb") == 0)
            o.budget_mb = (size_t)strtoull(v, NULL, 10);
        else if (strcmp(argv[i], "--objects") == 0)
            o.objects = (size_t)strtoull(v, NULL, 10);
        else if (strcmp(argv[i], "--object-size") == 0)
            o.object_size = (size_t)strtoull(v, NULL, 10);
        else if (strcmp(argv[i], "--need-pct") == 0)
            o.need_pct = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(argv[i], "--wait-ms") == 0)
            o.wait_ms = atoi(v);
        else if (strcmp(argv[i], "--scenario-mb") == 0)
            scenario_mb = (size_t)strtoull(v, NULL, 10);
        else {
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (o.budget_mb == 0 || o.objects == 0 || o.object_size < sizeof(node_t) + 8 ||
        o.need_pct == 0 || o.need_pct > 100) {
        usage(stderr);
        return 2;
    }
    if (simulate) /* internal: the simulator process the generator starts */
        return simulator(strcmp(simulate, "arenad") == 0, &o, gen_pid, result_fd);
    char sock[256] = "", dir[64] = "";
    pid_t daemon = 0;
    if (!o.socket) {
        daemon = start_daemon(&o, sock, sizeof(sock), dir, sizeof(dir));
        if (daemon <= 0) {
            (void)fprintf(stderr, "arena-demo: cannot start a private arenad\n");
            return 1;
        }
        o.socket = sock;
    }
    if (share) {
        int rc = scenario_mb > 0 && scenario_mb < o.budget_mb
                     ? arena_demo_share(o.socket, scenario_mb)
                     : (fprintf(stderr, "arena-demo: --scenario-mb must be 1..budget-mb - 1\n"), 2);
        if (daemon > 0) {
            (void)kill(daemon, SIGTERM);
            (void)waitpid(daemon, NULL, 0);
            (void)unlink(sock);
            (void)rmdir(dir);
        }
        return rc;
    }
    static run_t runs[2];
    printf("arena-demo: generator builds %zu objects of %zu bytes, frees them, starts a "
           "simulator that needs %u%% of %zu MiB, and blocks in waitpid\n",
           o.objects, o.object_size, o.need_pct, o.budget_mb);
    fflush(stdout);
    run_story(false, &o, &runs[0]);
    run_story(true, &o, &runs[1]);
    if (daemon > 0) {
        (void)kill(daemon, SIGTERM);
        (void)waitpid(daemon, NULL, 0);
        (void)unlink(sock);
        (void)rmdir(dir);
    }
    printf("\n%8s | %-34s | %-34s\n", "", "system allocator", "through arenad");
    printf("%8s | %10s %10s %-12s | %10s %10s %-12s\n", "t (ms)", "gen RSS", "sim RSS", "phase",
           "gen RSS", "sim RSS", "phase");
    static const char *const names[] = {"build", "freed", "simulating", "done"};
    size_t n = runs[0].n > runs[1].n ? runs[0].n : runs[1].n;
    for (size_t i = 0; i < n; i++) {
        char cols[2][64];
        for (int r = 0; r < 2; r++) {
            if (i >= runs[r].n) {
                (void)snprintf(cols[r], sizeof(cols[r]), "%34s", "");
                continue;
            }
            const sample_t *s = &runs[r].s[i];
            const char *ph = s->phase == 'b'   ? names[0]
                             : s->phase == 'f' ? names[1]
                             : s->phase == 's' ? names[2]
                                               : names[3];
            (void)snprintf(cols[r], sizeof(cols[r]), "%7zu MiB %6zu MiB %-12s", s->gen_kb / 1024,
                           s->sim_kb / 1024, ph);
        }
        printf("%8llu | %s | %s\n", (unsigned long long)(i * 100), cols[0], cols[1]);
    }
    printf("\n");
    for (int r = 0; r < 2; r++) {
        printf("%-7s generator peak %zu MiB, after free %zu MiB; simulator %s%s\n", runs[r].name,
               runs[r].peak_gen / 1024, runs[r].gen_after_free / 1024,
               runs[r].got ? "GOT its memory" : "STARVED: ", runs[r].got ? "" : runs[r].why);
        if (runs[r].got)
            printf("%-7s   (after waiting %.0f ms)\n", "", runs[r].wait_ms);
    }
    printf("RESULT system_sim_got=%d arenad_sim_got=%d arenad_wait_ms=%.0f\n", runs[0].got ? 1 : 0,
           runs[1].got ? 1 : 0, runs[1].wait_ms);
    return 0;
}
