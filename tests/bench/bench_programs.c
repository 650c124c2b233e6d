/* SPDX-License-Identifier: MIT
 *
 * bench_programs.c -- bench-programs: the allocator on real program patterns.
 *
 *     build/bin/bench-programs [--quick] [--rounds N] [--only P,Q,...]
 *                              [--allocators glibc,jemalloc,mimalloc,tcmalloc,arena]
 *
 * Each pattern is a whole program run as a child process: the small C
 * programs in bench-programs.d/ (sources in tests/bench/programs/, plain C
 * that only calls malloc and free), /usr/bin/python3 under PYTHONMALLOC=malloc
 * and GNU sort on a generated file. Each runs under glibc (nothing preloaded),
 * jemalloc, mimalloc, tcmalloc (Debian's libraries; a missing one is "not
 * installed" and left out) and arena (LD_PRELOAD of libarena-preload.so,
 * against a private arenad on a temporary socket, ARENA_REQUIRE_DAEMON=1).
 * Rounds are interleaved (round r runs every allocator on every pattern, the
 * allocators in an order rotated per round) and each figure is the median of
 * the rounds: wall time (clock_gettime around fork, exec and wait), peak RSS
 * (wait4's ru_maxrss, which also counts this harness's few MiB of RSS at the
 * fork) and minor page faults (ru_minflt).
 *
 * A run counts only when it is shown which allocator answered it:
 *   - the C programs write one line to fd 3 (BENCH_PROGRAMS_REPORT_FD): the
 *     file dladdr() finds malloc in, and whether arena's pool memfd is mapped;
 *     it must be libc for glibc, the preloaded library otherwise, and arena's
 *     pool must be mapped;
 *   - for every preloaded run, a thread here samples /proc/PID/maps every
 *     10 ms while the child runs, looking for the library; python3 and sort
 *     must show it (for them, under the peers, the only proof: a preloaded
 *     library comes first in symbol lookup, so its malloc is the one called),
 *     the C programs' own report suffices (a run shorter than the first
 *     sample shows nothing there), and "+maps" says when it was seen too;
 *   - for arena, the private daemon's leases_granted_total (arenactl status)
 *     must have grown during the run: the daemon served that process.
 * A run that fails or is not shown is reported and the allocator is left out
 * of that pattern's figures and of its geometric means (the table says so).
 *
 * Output: one table per pattern, the load average at the start and the end
 * (the machine is often shared), a summary line per pattern, the geometric
 * means with the patterns each leaves out, and last one line
 *   RESULT geomean_time_jemalloc=... geomean_rss_jemalloc=... geomean_rss_mimalloc=...
 *          geomean_rss_tcmalloc=... geomean_time_arena=... geomean_time_mimalloc=...
 *          geomean_time_tcmalloc=... geomean_rss_arena=... worst_vs_best_peer=...
 * (geometric means of the ratios to glibc over the patterns; worst_vs_best_peer:
 * the largest arena time / best peer time, glibc counted as a peer; "n/a" when
 * there is nothing to compute). Nothing is asserted about speed: the exit code
 * is 0 unless the harness itself fails or the daemon does not exit cleanly.
 * Main thread only, apart from the one sampler thread per run.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "run.h"
#include "tmpdir.h"

#define MAX_ROUNDS 15
#define REPORT_FD  3
#define MAX_ENV    512

extern char **environ;

/* ---- patterns and allocators ------------------------------------------------------- */

enum kind { PROGRAM, PYTHON, SORT };

typedef struct pattern {
    const char *name; /* for --only */
    const char *what;
    enum kind kind;
    const char *prog;           /* PROGRAM: its file in bench-programs.d */
    const char *const full[5];  /* arguments, NULL-terminated */
    const char *const quick[5]; /* the same for --quick */
} pattern_t;

static const char python_script[] =
    "import json; d={str(i):[i,str(i)*3] for i in range(%ld)}; s=json.dumps(d); "
    "d2=json.loads(s); l=sorted(d2.keys()); assert len(l)==%ld";

/* The scales: full runs take about 0.2-3 s each under glibc on a 2-core
 * machine (the whole bench about 5 minutes), --quick about a tenth. large runs 300 replacements,
 * not 2000: a single run under an allocator that refaults every block took over 10 s. */
/* clang-format off */
static const pattern_t patterns[] = {
    {"churn", "thread churn: 10 threads at a time, each swaps one small object into a table",
     PROGRAM, "churn", {"50000", "10"}, {"5000", "10"}},
    {"large", "large blocks: 20 slots, random slot replaced by a zero-filled 5-25 MiB block",
     PROGRAM, "large", {"300", "20"}, {"30", "20"}},
    {"larson", "larson server: 4 threads, 1000 slots, 8-1024 B, arrays handed across threads",
     PROGRAM, "larson", {"4", "400", "10000", "1000"}, {"4", "40", "10000", "1000"}},
    {"xmalloc", "producer/consumer: 2 threads allocate 8-512 B, 2 others free them",
     PROGRAM, "xmalloc", {"4000000", "2", "2"}, {"400000", "2", "2"}},
    {"exprtree", "expression trees (binary-trees style): build, evaluate, free",
     PROGRAM, "exprtree", {"16"}, {"12"}},
    {"strsort", "qsort of 1M malloc'd strings of 8-80 letters, freed in sorted order",
     PROGRAM, "strsort", {"1000000"}, {"100000"}},
    {"strbuild", "64 strings grown by exact realloc of 1-64 B, freed at 1-256 KiB",
     PROGRAM, "strbuild", {"1000000", "64"}, {"100000", "64"}},
    {"hashchurn", "chained hash table: random insert/delete of string keys, ~300k live",
     PROGRAM, "hashchurn", {"1000000", "600000"}, {"100000", "60000"}},
    {"cachescratch", "passive false sharing (Hoard cache-scratch): 2 threads, 8 B objects",
     PROGRAM, "cachescratch", {"2", "50000", "2000"}, {"2", "5000", "2000"}},
    {"python", "python3, PYTHONMALLOC=malloc: 300k-entry dict, JSON round trip, sort",
     PYTHON, NULL, {"300000"}, {"30000"}},
    {"sort", "GNU sort (LC_ALL=C) of 1M random text lines to /dev/null",
     SORT, NULL, {"1000000"}, {"100000"}},
};
/* clang-format on */
#define NPATTERNS (sizeof(patterns) / sizeof(patterns[0]))

enum { GLIBC, JEMALLOC, MIMALLOC, TCMALLOC, ARENA, NALLOCS };

typedef struct allocator {
    const char *name;
    char lib[PATH_MAX]; /* the library's real path; "" for glibc or when missing */
    bool installed;
    bool selected;
} allocator_t;

static allocator_t allocs[NALLOCS] = {
    {.name = "glibc"},    {.name = "jemalloc"}, {.name = "mimalloc"},
    {.name = "tcmalloc"}, {.name = "arena"},
};

static const char *const peer_libs[NALLOCS] = {
    NULL,
    "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2",
    "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
    NULL, /* arena: found next to this program */
};

/* ---- one run ----------------------------------------------------------------------- */

typedef struct sample {
    bool ok;
    double secs;
    long maxrss_kib, minflt;
    char proof[48]; /* how the allocator was shown; or why the run does not count */
} sample_t;

/* What the sampler thread shares with the main thread during a run. */
typedef struct watch {
    pid_t pid;
    const char *lib;  /* the library to look for in the maps; NULL: none */
    atomic_bool done; /* set by main once the child has ended (not yet reaped) */
    bool lib_seen;    /* written by the sampler, read after the join */
    bool timed_out;   /* likewise */
    double timeout_s;
} watch_t;

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    char line[PATH_MAX + 256];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, needle) != NULL;
    (void)fclose(f);
    return found;
}

/* Samples the child's maps until the library shows, and kills the child when
 * it outlives its time limit or the bench is interrupted. The child is only
 * reaped after this thread is joined, so its pid cannot be reused under us. */
static void *sampler(void *arg)
{
    watch_t *w = arg;
    char maps[64];
    (void)snprintf(maps, sizeof(maps), "/proc/%d/maps", (int)w->pid);
    double start = now_s();
    while (!atomic_load(&w->done)) {
        struct timespec ts = {0, 10L * 1000 * 1000};
        (void)nanosleep(&ts, NULL);
        if (w->lib && !w->lib_seen && !atomic_load(&w->done))
            w->lib_seen = file_has(maps, w->lib);
        if (interrupted || now_s() - start > w->timeout_s) {
            w->timed_out = !interrupted;
            (void)kill(w->pid, SIGKILL);
            break;
        }
    }
    return NULL;
}

/* The daemon's count of leases granted so far, or -1. */
static long leases_granted(const char *arenactl, const char *socket)
{
    const char *const argv[] = {arenactl, "--socket", socket, "--json", "status", NULL};
    arena_run_t r;
    if (arena_run(argv, NULL, &r) != 0)
        return -1;
    long n = -1;
    const char *at = r.code == 0 && r.out ? strstr(r.out, "\"leases_granted_total\":") : NULL;
    if (at)
        n = strtol(at + strlen("\"leases_granted_total\":"), NULL, 10);
    arena_run_free(&r);
    return n;
}

typedef struct context {
    char progdir[PATH_MAX];
    char arenactl[PATH_MAX];
    char sort_input[PATH_MAX];
    const char *socket; /* the private daemon's; NULL when it did not start */
    bool quick;
} context_t;

/* The child's environment: ours without the variables a run sets, then those. */
static void build_env(const pattern_t *p, int a, const context_t *cx, char **env, char *store,
                      size_t store_len)
{
    static const char *const drop[] = {"LD_PRELOAD=",
                                       "ARENAD_SOCKET=",
                                       "ARENA_REQUIRE_DAEMON=",
                                       "PYTHONMALLOC=",
                                       "BENCH_PROGRAMS_REPORT_FD=",
                                       "LC_ALL=",
                                       NULL};
    size_t n = 0;
    for (char **e = environ; *e && n < MAX_ENV - 8; e++) {
        bool keep = true;
        for (const char *const *d = drop; *d && keep; d++)
            keep = strncmp(*e, *d, strlen(*d)) != 0;
        if (keep)
            env[n++] = *e;
    }
    size_t used = 0;
#define ADD_ENV(...)                                                                               \
    do {                                                                                           \
        int k_ = snprintf(store + used, store_len - used, __VA_ARGS__);                            \
        if (k_ > 0 && (size_t)k_ < store_len - used) {                                             \
            env[n++] = store + used;                                                               \
            used += (size_t)k_ + 1;                                                                \
        }                                                                                          \
    } while (0)
    if (a != GLIBC)
        ADD_ENV("LD_PRELOAD=%s", allocs[a].lib);
    if (a == ARENA) {
        ADD_ENV("ARENAD_SOCKET=%s", cx->socket);
        ADD_ENV("ARENA_REQUIRE_DAEMON=1");
    }
    if (p->kind == PROGRAM)
        ADD_ENV("BENCH_PROGRAMS_REPORT_FD=%d", REPORT_FD);
    if (p->kind == PYTHON)
        ADD_ENV("PYTHONMALLOC=malloc");
    if (p->kind == SORT)
        ADD_ENV("LC_ALL=C");
#undef ADD_ENV
    env[n] = NULL;
}

/* Whether the C program's report line shows the allocator meant. */
static bool report_shows(const char *line, int a, bool *pool)
{
    const char *m = strstr(line, "malloc=");
    const char *q = strstr(line, " pool=");
    if (!m || !q)
        return false;
    char path[PATH_MAX], real[PATH_MAX];
    size_t len = (size_t)(q - (m + 7));
    if (len >= sizeof(path))
        return false;
    memcpy(path, m + 7, len);
    path[len] = '\0';
    *pool = q[6] == '1';
    if (a == GLIBC) {
        const char *slash = strrchr(path, '/');
        return strncmp(slash ? slash + 1 : path, "libc.so", 7) == 0;
    }
    return realpath(path, real) && strcmp(real, allocs[a].lib) == 0;
}

static sample_t run_one(const pattern_t *p, int a, const context_t *cx)
{
    sample_t s = {0};
    const char *const *args = cx->quick ? p->quick : p->full;
    char prog[PATH_MAX + 64], script[512];
    const char *argv[10];
    size_t n = 0;
    if (p->kind == PROGRAM) {
        (void)snprintf(prog, sizeof(prog), "%s/%s", cx->progdir, p->prog);
        argv[n++] = prog;
        for (size_t i = 0; i < 5 && args[i]; i++)
            argv[n++] = args[i];
    } else if (p->kind == PYTHON) {
        long entries = strtol(args[0], NULL, 10);
        (void)snprintf(script, sizeof(script), python_script, entries, entries);
        argv[n++] = "/usr/bin/python3";
        argv[n++] = "-c";
        argv[n++] = script;
    } else {
        argv[n++] = "/usr/bin/sort";
        argv[n++] = "-o";
        argv[n++] = "/dev/null";
        argv[n++] = cx->sort_input;
    }
    argv[n] = NULL;
    static char *env[MAX_ENV];
    static char env_store[3 * PATH_MAX];
    build_env(p, a, cx, env, env_store, sizeof(env_store));

    long leases_before = a == ARENA ? leases_granted(cx->arenactl, cx->socket) : -1;
    if (a == ARENA && leases_before < 0) {
        leases_before = leases_granted(cx->arenactl, cx->socket); /* once more: a loaded machine */
    }
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
        (void)snprintf(s.proof, sizeof(s.proof), "pipe: %s", strerror(errno));
        return s;
    }
    double t0 = now_s();
    pid_t pid = fork();
    if (pid < 0) {
        (void)snprintf(s.proof, sizeof(s.proof), "fork: %s", strerror(errno));
        (void)close(report[0]);
        (void)close(report[1]);
        return s;
    }
    if (pid == 0) {
        /* Async-signal-safe calls only from here to exec. */
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null >= 0) {
            (void)dup2(null, STDIN_FILENO);
            (void)dup2(null, STDOUT_FILENO);
        }
        if (report[1] == REPORT_FD)
            (void)fcntl(REPORT_FD, F_SETFD, 0);
        else
            (void)dup2(report[1], REPORT_FD);
        execve(argv[0], (char *const *)argv, env);
        _exit(127);
    }
    (void)close(report[1]);
    watch_t w = {.pid = pid,
                 .lib = a == GLIBC ? NULL : allocs[a].lib,
                 .timeout_s = cx->quick ? 120.0 : 600.0};
    atomic_init(&w.done, false);
    pthread_t tid;
    bool sampling = pthread_create(&tid, NULL, sampler, &w) == 0;
    siginfo_t info;
    while (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT) < 0 && errno == EINTR)
        ;
    double t1 = now_s();
    atomic_store(&w.done, true);
    if (sampling)
        (void)pthread_join(tid, NULL);
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof(ru));
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR)
        ;
    char line[1400];
    ssize_t got = 0, r;
    while (got < (ssize_t)sizeof(line) - 1 &&
           (r = read(report[0], line + got, sizeof(line) - 1 - (size_t)got)) > 0)
        got += r;
    (void)close(report[0]);
    line[got > 0 ? got : 0] = '\0';

    s.secs = t1 - t0;
    s.maxrss_kib = ru.ru_maxrss;
    s.minflt = ru.ru_minflt;
    if (w.timed_out || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (w.timed_out)
            (void)snprintf(s.proof, sizeof(s.proof), "timed out");
        else if (WIFSIGNALED(status))
            (void)snprintf(s.proof, sizeof(s.proof), "killed by signal %d", WTERMSIG(status));
        else
            (void)snprintf(s.proof, sizeof(s.proof), "exit %d", WEXITSTATUS(status));
        return s;
    }
    bool pool = false;
    if (p->kind == PROGRAM && !report_shows(line, a, &pool)) {
        (void)snprintf(s.proof, sizeof(s.proof), "unproven: malloc not in %s",
                       a == GLIBC ? "libc" : allocs[a].name);
        return s;
    }
    if (a != GLIBC && p->kind != PROGRAM && !w.lib_seen) {
        (void)snprintf(s.proof, sizeof(s.proof), "unproven: library not mapped");
        return s;
    }
    if (a == ARENA && p->kind == PROGRAM && !pool) {
        (void)snprintf(s.proof, sizeof(s.proof), "unproven: no pool memfd");
        return s;
    }
    long after = a == ARENA ? leases_granted(cx->arenactl, cx->socket) : 0;
    if (a == ARENA && after < 0) {
        after = leases_granted(cx->arenactl, cx->socket); /* once more: a loaded machine */
    }
    if (a == ARENA && (leases_before < 0 || after < 0)) {
        (void)snprintf(s.proof, sizeof(s.proof), "unproven: arenactl status failed");
        return s;
    }
    long leases = after - leases_before;
    if (a == ARENA && leases <= 0) {
        (void)snprintf(s.proof, sizeof(s.proof), "unproven: daemon granted no lease");
        return s;
    }
    s.ok = true;
    if (a == GLIBC)
        (void)snprintf(s.proof, sizeof(s.proof), "%s",
                       p->kind == PROGRAM ? "dladdr: libc" : "nothing preloaded");
    else if (a == ARENA)
        (void)snprintf(s.proof, sizeof(s.proof), "%s, %ld leases",
                       p->kind != PROGRAM ? "maps"
                       : w.lib_seen       ? "dladdr+pool+maps"
                                          : "dladdr+pool",
                       leases);
    else
        (void)snprintf(s.proof, sizeof(s.proof), "%s%s", p->kind == PROGRAM ? "dladdr" : "",
                       p->kind != PROGRAM ? "maps"
                       : w.lib_seen       ? "+maps"
                                          : "");
    return s;
}

/* ---- figures ----------------------------------------------------------------------- */

typedef struct cell {
    sample_t round[MAX_ROUNDS];
    int runs;
    bool ok;                      /* every round ran and was shown */
    double secs, rss_mib, minflt; /* medians */
    char why[48];
} cell_t;

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), by_value);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void cell_finish(cell_t *c)
{
    double t[MAX_ROUNDS], rss[MAX_ROUNDS], flt[MAX_ROUNDS];
    c->ok = c->runs > 0;
    for (int r = 0; r < c->runs; r++) {
        if (!c->round[r].ok) {
            c->ok = false;
            (void)snprintf(c->why, sizeof(c->why), "%s", c->round[r].proof);
        }
        t[r] = c->round[r].secs;
        rss[r] = (double)c->round[r].maxrss_kib / 1024.0;
        flt[r] = (double)c->round[r].minflt;
    }
    if (!c->ok)
        return;
    (void)snprintf(c->why, sizeof(c->why), "%s", c->round[c->runs - 1].proof);
    c->secs = median(t, c->runs);
    c->rss_mib = median(rss, c->runs);
    c->minflt = median(flt, c->runs);
}

static void print_ratio(double v, double base, bool ok)
{
    if (ok && base > 0)
        printf(" %8.2f", v / base);
    else
        printf(" %8s", "-");
}

/* Prints one pattern's table and arena's ratios to the best peer. */
static void print_pattern(const pattern_t *p, cell_t *c)
{
    printf("\n%s: %s\n", p->name, p->what);
    printf("  %-9s %9s %8s %9s %8s %10s  %s\n", "allocator", "time s", "t/glibc", "peak MiB",
           "rss/glib", "minflt", "shown by");
    bool base = c[GLIBC].ok;
    for (int a = 0; a < NALLOCS; a++) {
        if (!allocs[a].selected)
            continue;
        if (!allocs[a].installed) {
            printf("  %-9s %9s\n", allocs[a].name, "not installed");
            continue;
        }
        if (!c[a].ok) {
            printf("  %-9s %9s  (%s)\n", allocs[a].name, "failed", c[a].why);
            continue;
        }
        printf("  %-9s %9.3f", allocs[a].name, c[a].secs);
        print_ratio(c[a].secs, c[GLIBC].secs, base);
        printf(" %9.1f", c[a].rss_mib);
        print_ratio(c[a].rss_mib, c[GLIBC].rss_mib, base);
        printf(" %10.0f  %s\n", c[a].minflt, c[a].why);
    }
    int bt = -1, br = -1;
    for (int a = 0; a < ARENA; a++) {
        if (!c[a].ok)
            continue;
        if (bt < 0 || c[a].secs < c[bt].secs)
            bt = a;
        if (br < 0 || c[a].rss_mib < c[br].rss_mib)
            br = a;
    }
    if (c[ARENA].ok && bt >= 0)
        printf("  arena / best peer: time %.2f (%s %.3f s), peak RSS %.2f (%s %.1f MiB)\n",
               c[ARENA].secs / c[bt].secs, allocs[bt].name, c[bt].secs,
               c[ARENA].rss_mib / c[br].rss_mib, allocs[br].name, c[br].rss_mib);
}

/* One line per pattern: every allocator's time as a ratio to glibc's, arena's
 * time to the best peer's and arena's peak RSS to glibc's. */
static void print_summary(const bool *selected, cell_t (*cells)[NALLOCS])
{
    printf("\nsummary: time / glibc's; arena / best peer (time); arena's peak RSS / glibc's\n");
    printf("  %-12s %8s", "pattern", "glibc s");
    for (int a = 1; a < NALLOCS; a++)
        if (allocs[a].selected)
            printf(" %8s", allocs[a].name);
    printf(" %10s %9s\n", "arena/best", "arena rss");
    for (size_t p = 0; p < NPATTERNS; p++) {
        if (!selected[p])
            continue;
        const cell_t *c = cells[p];
        printf("  %-12s", patterns[p].name);
        if (c[GLIBC].ok)
            printf(" %8.3f", c[GLIBC].secs);
        else
            printf(" %8s", "-");
        for (int a = 1; a < NALLOCS; a++)
            if (allocs[a].selected)
                print_ratio(c[a].secs, c[GLIBC].secs, c[a].ok && c[GLIBC].ok);
        double best = -1;
        for (int a = 0; a < ARENA; a++)
            if (c[a].ok && (best < 0 || c[a].secs < best))
                best = c[a].secs;
        if (c[ARENA].ok && best > 0)
            printf(" %10.2f", c[ARENA].secs / best);
        else
            printf(" %10s", "-");
        print_ratio(c[ARENA].rss_mib, c[GLIBC].rss_mib, c[ARENA].ok && c[GLIBC].ok);
        printf("\n");
    }
}

/* The 1-minute load average, so a reader can tell a busy machine's figures
 * from a quiet one's; -1 when /proc cannot say. */
static double load_average(void)
{
    double load = -1;
    FILE *f = fopen("/proc/loadavg", "re");
    if (f) {
        if (fscanf(f, "%lf", &load) != 1)
            load = -1;
        (void)fclose(f);
    }
    return load;
}

/* ---- setup ------------------------------------------------------------------------- */

/* Random text lines for sort: words of letters and digits, fixed seed. */
static int write_sort_input(const char *path, long lines)
{
    FILE *f = fopen(path, "we");
    if (!f)
        return -errno;
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ";
    for (long i = 0; i < lines; i++) {
        char line[96];
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        uint64_t r = x * 0x2545F4914F6CDD1DULL;
        int len = 8 + (int)(r % 72);
        for (int k = 0; k < len; k++) {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            line[k] = chars[(x * 0x2545F4914F6CDD1DULL >> 40) % (sizeof(chars) - 1)];
        }
        line[len] = '\n';
        if (fwrite(line, 1, (size_t)len + 1, f) != (size_t)len + 1) {
            (void)fclose(f);
            return -EIO;
        }
    }
    return fclose(f) == 0 ? 0 : -errno;
}

static bool in_list(const char *list, const char *name)
{
    size_t len = strlen(name);
    for (const char *at = list; at && *at;) {
        const char *comma = strchr(at, ',');
        size_t n = comma ? (size_t)(comma - at) : strlen(at);
        if (n == len && strncmp(at, name, len) == 0)
            return true;
        at = comma ? comma + 1 : NULL;
    }
    return false;
}

static int usage(void)
{
    (void)fprintf(stderr,
                  "usage: bench-programs [--quick] [--rounds N (1..%d)] [--only P,...] "
                  "[--allocators glibc,jemalloc,mimalloc,tcmalloc,arena]\npatterns:",
                  MAX_ROUNDS);
    for (size_t p = 0; p < NPATTERNS; p++)
        (void)fprintf(stderr, " %s", patterns[p].name);
    (void)fprintf(stderr, "\n");
    return 2;
}

static const char *fmt_geo(char *buf, size_t len, double sum_log, int n)
{
    if (n == 0)
        (void)snprintf(buf, len, "n/a");
    else
        (void)snprintf(buf, len, "%.3f", exp(sum_log / n));
    return buf;
}

int main(int argc, char **argv)
{
    context_t cx = {0};
    int rounds = 3;
    const char *only = NULL, *alloc_list = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            cx.quick = true;
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else if (strcmp(argv[i], "--allocators") == 0 && i + 1 < argc)
            alloc_list = argv[++i];
        else
            return usage();
    }
    if (rounds < 1 || rounds > MAX_ROUNDS)
        return usage();
    bool selected[NPATTERNS];
    bool any = false, need_sort = false;
    for (size_t p = 0; p < NPATTERNS; p++) {
        selected[p] = !only || in_list(only, patterns[p].name);
        any |= selected[p];
        need_sort |= selected[p] && patterns[p].kind == SORT;
    }
    if (!any)
        return usage();

    char self[PATH_MAX], bindir[PATH_MAX], preload[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) {
        perror("bench-programs: readlink /proc/self/exe");
        return 1;
    }
    self[n] = '\0';
    (void)snprintf(bindir, sizeof(bindir), "%s", self);
    *strrchr(bindir, '/') = '\0';
    (void)snprintf(cx.progdir, sizeof(cx.progdir), "%.*s/bench-programs.d", PATH_MAX - 32, bindir);
    (void)snprintf(cx.arenactl, sizeof(cx.arenactl), "%.*s/arenactl", PATH_MAX - 32, bindir);
    (void)snprintf(preload, sizeof(preload), "%s/../lib/libarena-preload.so", bindir);
    bool any_alloc = false;
    for (int a = 0; a < NALLOCS; a++) {
        allocator_t *al = &allocs[a];
        al->selected = !alloc_list || in_list(alloc_list, al->name);
        any_alloc |= al->selected;
        const char *lib = a == ARENA ? preload : peer_libs[a];
        al->installed = a == GLIBC || (lib && realpath(lib, al->lib) != NULL);
    }
    if (!any_alloc)
        return usage();
    if (!allocs[GLIBC].selected)
        (void)fprintf(stderr, "bench-programs: glibc not selected: no ratios to glibc\n");

    struct sigaction sa = {.sa_handler = on_signal};
    (void)sigaction(SIGINT, &sa, NULL);
    (void)sigaction(SIGTERM, &sa, NULL);

    int rc = 0;
    arena_test_daemon_t d = {0};
    char tmp[] = "/tmp/bench-programs.XXXXXX";
    if (!mkdtemp(tmp)) {
        perror("bench-programs: mkdtemp");
        return 1;
    }
    if (need_sort) {
        (void)snprintf(cx.sort_input, sizeof(cx.sort_input), "%s/lines.txt", tmp);
        long lines = 0;
        for (size_t p = 0; p < NPATTERNS; p++)
            if (patterns[p].kind == SORT)
                lines = strtol(cx.quick ? patterns[p].quick[0] : patterns[p].full[0], NULL, 10);
        int r = write_sort_input(cx.sort_input, lines);
        if (r < 0) {
            (void)fprintf(stderr, "bench-programs: cannot write %s: %s\n", cx.sort_input,
                          strerror(-r));
            rc = 1;
            goto out;
        }
    }
    if (allocs[ARENA].selected && allocs[ARENA].installed) {
        const char *const args[] = {"--budget", "4G", NULL};
        int r = arena_test_daemon_start(&d, NULL, args);
        if (r < 0) {
            (void)fprintf(stderr, "bench-programs: cannot start arenad: %s; arena left out\n",
                          strerror(-r));
            allocs[ARENA].installed = false;
        } else {
            cx.socket = d.socket;
        }
    }

    static cell_t cells[NPATTERNS][NALLOCS];
    printf("bench-programs: %s scale, %d round(s), median; every allocator on every pattern "
           "each round; load average %.2f on %ld CPUs\n",
           cx.quick ? "--quick" : "full", rounds, load_average(), sysconf(_SC_NPROCESSORS_ONLN));
    (void)fflush(stdout);
    for (int r = 0; r < rounds && !interrupted; r++) {
        for (size_t p = 0; p < NPATTERNS && !interrupted; p++) {
            if (!selected[p])
                continue;
            for (int k = 0; k < NALLOCS && !interrupted; k++) {
                int a = (k + r) % NALLOCS;
                if (!allocs[a].selected || !allocs[a].installed)
                    continue;
                cell_t *c = &cells[p][a];
                c->round[c->runs++] = run_one(&patterns[p], a, &cx);
                if (!c->round[c->runs - 1].ok)
                    (void)fprintf(stderr, "bench-programs: %s under %s, round %d: %s\n",
                                  patterns[p].name, allocs[a].name, r + 1,
                                  c->round[c->runs - 1].proof);
            }
        }
    }
    if (interrupted) {
        (void)fprintf(stderr, "bench-programs: interrupted\n");
        rc = 1;
        goto out;
    }

    double log_t[NALLOCS] = {0}, log_rss[NALLOCS] = {0};
    int n_geo[NALLOCS] = {0};
    double worst = -1;
    const char *worst_at = NULL;
    for (size_t p = 0; p < NPATTERNS; p++) {
        if (!selected[p])
            continue;
        cell_t *c = cells[p];
        for (int a = 0; a < NALLOCS; a++)
            cell_finish(&c[a]);
        print_pattern(&patterns[p], c);
        for (int a = 0; a < NALLOCS; a++) {
            if (c[a].ok && c[GLIBC].ok) {
                log_t[a] += log(c[a].secs / c[GLIBC].secs);
                log_rss[a] += log(c[a].rss_mib / c[GLIBC].rss_mib);
                n_geo[a]++;
            }
        }
        double best = -1;
        for (int a = 0; a < ARENA; a++)
            if (c[a].ok && (best < 0 || c[a].secs < best))
                best = c[a].secs;
        if (c[ARENA].ok && best > 0 && c[ARENA].secs / best > worst) {
            worst = c[ARENA].secs / best;
            worst_at = patterns[p].name;
        }
    }

    printf("\nload average at the end: %.2f\n", load_average());
    print_summary(selected, cells);
    printf("\ngeometric means of the ratios to glibc (patterns counted):\n");
    for (int a = 1; a < NALLOCS; a++) {
        if (!allocs[a].selected)
            continue;
        char t[32], m[32];
        printf("  %-9s time %s  peak RSS %s  (%d patterns", allocs[a].name,
               fmt_geo(t, sizeof(t), log_t[a], n_geo[a]),
               fmt_geo(m, sizeof(m), log_rss[a], n_geo[a]), n_geo[a]);
        bool first = true;
        for (size_t p = 0; p < NPATTERNS; p++) {
            if (selected[p] && !(cells[p][a].ok && cells[p][GLIBC].ok)) {
                printf("%s%s", first ? "; left out: " : ",", patterns[p].name);
                first = false;
            }
        }
        printf(")\n");
    }
    if (worst_at)
        printf("  arena's worst pattern against the best peer (glibc included): %s, %.2fx\n",
               worst_at, worst);

    char b[9][32], w[32];
    if (worst > 0)
        (void)snprintf(w, sizeof(w), "%.3f", worst);
    else
        (void)snprintf(w, sizeof(w), "n/a");
    printf("RESULT geomean_time_jemalloc=%s geomean_rss_jemalloc=%s geomean_rss_mimalloc=%s "
           "geomean_rss_tcmalloc=%s geomean_time_arena=%s geomean_time_mimalloc=%s "
           "geomean_time_tcmalloc=%s geomean_rss_arena=%s worst_vs_best_peer=%s\n",
           fmt_geo(b[0], 32, log_t[JEMALLOC], n_geo[JEMALLOC]),
           fmt_geo(b[1], 32, log_rss[JEMALLOC], n_geo[JEMALLOC]),
           fmt_geo(b[2], 32, log_rss[MIMALLOC], n_geo[MIMALLOC]),
           fmt_geo(b[3], 32, log_rss[TCMALLOC], n_geo[TCMALLOC]),
           fmt_geo(b[4], 32, log_t[ARENA], n_geo[ARENA]),
           fmt_geo(b[5], 32, log_t[MIMALLOC], n_geo[MIMALLOC]),
           fmt_geo(b[6], 32, log_t[TCMALLOC], n_geo[TCMALLOC]),
           fmt_geo(b[7], 32, log_rss[ARENA], n_geo[ARENA]), w);

out:
    (void)fflush(stdout);
    if (d.pid > 0) {
        /* A daemon that crashed, or reported to a sanitizer at exit, fails the
         * benchmark. */
        int status = arena_test_daemon_stop(&d);
        if (status != 0) {
            (void)fprintf(stderr, "bench-programs: arenad did not exit cleanly: %d\n", status);
            rc = 1;
        }
    }
    (void)arena_test_rmtree(tmp);
    return rc;
}
