/* SPDX-License-Identifier: MIT
 *
 * bench_rss.c -- bench-rss: does memory go back? For each allocation pattern,
 * a child process allocates and touches its objects, frees every one of
 * them, and reports its resident memory (VmRSS, and RssShmem where the
 * memory is shared) at the start, at the peak, right after the last free and
 * 1 s later; the same child runs under glibc and, with LD_PRELOAD, under
 * jemalloc, mimalloc, tcmalloc and libarena-preload (against a private arenad
 * on a temporary socket, ARENA_REQUIRE_DAEMON=1), all in one run.
 *
 * A figure is printed only when the child proves which allocator answered:
 * a preloaded peer's library must be in the child's /proc/self/maps and the
 * child's malloc must resolve into it (dladdr), arena-preload's pool memfd
 * must be mapped; otherwise the row says "not loaded" and the allocator is
 * left out of the sums. Nothing here is timed or asserted: a program, not a
 * test. Table first, then one line:
 *
 *   RESULT rss_after_1s_arena_kib=... rss_after_1s_glibc_kib=...
 *          rss_after_1s_best_peer_kib=... peak_arena_kib=... peak_glibc_kib=...
 *
 * (sums over the patterns; best peer: the smallest sum among the peers that
 * ran, glibc included). Usage: build/bin/bench-rss [--quick]
 *
 * A second mode, --big-blocks, times the large-block replacement pattern
 * instead: 20 slots, 2,000 times (200 with --quick) a random slot gets a new
 * zero-filled block of 5-25 MiB (malloc, memset) and its previous block is
 * freed; the same seed for every allocator. Each allocator's child runs
 * three times, interleaved; the table gives the median wall time, minor
 * page faults and peak RSS (wait4's ru_maxrss, shared memory included),
 * then one line:
 *
 *   RESULT big_time_arena_s=... big_time_glibc_s=... big_time_tcmalloc_s=...
 *          big_minflt_arena=... big_minflt_tcmalloc=... big_peak_arena_kib=...
 *          big_peak_glibc_kib=... big_peak_tcmalloc_kib=...
 *
 * Usage: build/bin/bench-rss --big-blocks [--quick]
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- the child: one pattern under whatever malloc it was given ---------------- */

typedef struct rss {
    long rss_kib;   /* VmRSS */
    long shmem_kib; /* RssShmem */
} rss_t;

/* Reads /proc/self/status with read(2): no stdio buffer of its own. */
static rss_t rss_now(void)
{
    rss_t r = {-1, 0};
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return r;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    (void)close(fd);
    if (n <= 0)
        return r;
    buf[n] = '\0';
    const char *p = strstr(buf, "VmRSS:");
    if (p)
        r.rss_kib = strtol(p + 6, NULL, 10);
    p = strstr(buf, "RssShmem:");
    if (p)
        r.shmem_kib = strtol(p + 9, NULL, 10);
    return r;
}

typedef struct pattern {
    const char *name;
    size_t count;        /* objects */
    size_t size;         /* bytes each */
    unsigned threads;    /* 0: the main thread; n: n threads, each its own share */
    bool exit_with_live; /* one thread allocates and exits; main frees them */
} pattern_t;

static const pattern_t patterns[] = {
    {"small 2M x 64 B", 2000000, 64, 0, false},
    {"medium 200k x 1000 B", 200000, 1000, 0, false},
    {"large 2000 x 100 KB", 2000, 100000, 0, false},
    {"huge 60 x 3 MiB", 60, 3u << 20, 0, false},
    {"odd 150 x (1 MiB + 32)", 150, (1u << 20) + 32, 0, false},
    {"4 threads x 250k x 200 B", 1000000, 200, 4, false},
    {"thread exits with 500k x 100 B", 500000, 100, 0, true},
};
#define NPATTERNS (sizeof(patterns) / sizeof(patterns[0]))

typedef struct work {
    void **objs;
    size_t count;
    size_t size;
    pthread_barrier_t *allocated, *go_free, *freed; /* threads mode only */
} work_t;

static void objs_alloc(const work_t *w)
{
    for (size_t i = 0; i < w->count; i++) {
        w->objs[i] = malloc(w->size);
        if (w->objs[i])
            memset(w->objs[i], (int)(i & 0xff) | 1, w->size);
    }
}

static void objs_free(const work_t *w)
{
    for (size_t i = 0; i < w->count; i++)
        free(w->objs[i]);
}

/* A worker of the threads pattern: allocates its share, waits until the
 * peak is measured, frees its own share, waits until that is measured. A
 * worker without barriers (the exit pattern) only allocates and exits. */
static void *worker(void *arg)
{
    work_t *w = arg;
    objs_alloc(w);
    if (!w->allocated)
        return NULL;
    (void)pthread_barrier_wait(w->allocated);
    (void)pthread_barrier_wait(w->go_free);
    objs_free(w);
    (void)pthread_barrier_wait(w->freed);
    return NULL;
}

/* The proof of who answered malloc (see the head). */
static bool child_check(const char *expect)
{
    if (!expect || !*expect)
        return true; /* glibc: nothing preloaded */
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return false;
    char line[512];
    bool mapped = false;
    const char *want = strcmp(expect, "arena") == 0 ? "memfd:arenad-pool" : expect;
    while (fgets(line, sizeof(line), f)) {
        if (strstr(line, want))
            mapped = true;
    }
    (void)fclose(f);
    if (!mapped || strcmp(expect, "arena") == 0)
        return mapped;
    Dl_info info;
    void *m = dlsym(RTLD_DEFAULT, "malloc");
    return m && dladdr(m, &info) && info.dli_fname && strstr(info.dli_fname, expect);
}

static int child_main(size_t index, const char *expect, bool quick)
{
    pattern_t p = patterns[index];
    if (quick)
        p.count = p.count / 10 ? p.count / 10 : 1;
    rss_t start = rss_now();
    void **objs = malloc(p.count * sizeof(void *));
    if (!objs)
        return 3;
    enum { MAXT = 16 };
    unsigned threads = p.threads < MAXT ? p.threads : MAXT;
    pthread_t tid[MAXT];
    work_t w[MAXT];
    pthread_barrier_t allocated, go_free, freed;
    if (threads > 0) {
        (void)pthread_barrier_init(&allocated, NULL, threads + 1);
        (void)pthread_barrier_init(&go_free, NULL, threads + 1);
        (void)pthread_barrier_init(&freed, NULL, threads + 1);
        size_t share = p.count / threads;
        for (unsigned t = 0; t < threads; t++) {
            w[t] = (work_t){objs + t * share, t + 1 == threads ? p.count - t * share : share,
                            p.size,           &allocated,
                            &go_free,         &freed};
            if (pthread_create(&tid[t], NULL, worker, &w[t]) != 0)
                return 3;
        }
        (void)pthread_barrier_wait(&allocated);
    } else if (p.exit_with_live) {
        w[0] = (work_t){objs, p.count, p.size, NULL, NULL, NULL};
        if (pthread_create(&tid[0], NULL, worker, &w[0]) != 0)
            return 3;
        (void)pthread_join(tid[0], NULL); /* it exits; its objects live on */
    } else {
        w[0] = (work_t){objs, p.count, p.size, NULL, NULL, NULL};
        objs_alloc(&w[0]);
    }
    int bad = 0;
    for (size_t i = 0; i < p.count && !bad; i++) {
        if (!objs[i])
            bad = 4;
    }
    if (!bad && !child_check(expect))
        bad = 5;
    if (bad) {
        free(objs); /* the rest go with the process */
        return bad;
    }
    rss_t peak = rss_now();
    if (threads > 0) {
        (void)pthread_barrier_wait(&go_free);
        (void)pthread_barrier_wait(&freed);
    } else {
        w[0] = (work_t){objs, p.count, p.size, NULL, NULL, NULL};
        objs_free(&w[0]);
    }
    free(objs);
    rss_t freed_rss = rss_now();
    struct timespec ts = {1, 0};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    rss_t later = rss_now();
    for (unsigned t = 0; t < threads; t++)
        (void)pthread_join(tid[t], NULL);
    char out[256];
    int n = snprintf(out, sizeof(out), "%ld %ld %ld %ld %ld\n", start.rss_kib, peak.rss_kib,
                     freed_rss.rss_kib, later.rss_kib, later.shmem_kib);
    return write(STDOUT_FILENO, out, (size_t)n) == n ? 0 : 6;
}

/* The large-block pattern (see the head): malloc, memset, free the slot's
 * previous block. A fixed xorshift seed, so every allocator sees the same
 * sizes. */
static void *(*volatile big_memset)(void *, int, size_t) = memset;

static int big_child_main(const char *expect, bool quick)
{
    enum { SLOTS = 20 };
    void *slot[SLOTS] = {0};
    unsigned rounds = quick ? 200 : 2000;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (unsigned i = 0; i < rounds; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t size = ((size_t)5 << 20) + (size_t)(x % ((size_t)20 << 20));
        unsigned s = (unsigned)((x >> 40) % SLOTS);
        void *p = malloc(size);
        if (!p)
            return 4;
        /* Through a volatile pointer: the compiler would turn malloc +
         * memset 0 into calloc, which skips the touch on fresh memory. */
        big_memset(p, 0, size);
        free(slot[s]);
        slot[s] = p;
    }
    if (!child_check(expect))
        return 5;
    for (unsigned s = 0; s < SLOTS; s++)
        free(slot[s]);
    return 0;
}

/* ---- the parent ------------------------------------------------------------------ */

typedef struct alloc {
    const char *name;
    const char *preload; /* NULL: glibc */
    const char *expect;  /* what the child checks (see child_check) */
} alloc_t;

static const char *find_lib(const char *path)
{
    return access(path, R_OK) == 0 ? path : NULL;
}

typedef struct figures {
    bool ok;
    long start, peak, freed, later, shmem;
} figures_t;

static figures_t run_child(const char *self, size_t index, const alloc_t *a, const char *socket,
                           bool quick)
{
    figures_t f = {0};
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0)
        return f;
    pid_t pid = fork();
    if (pid < 0) {
        (void)close(pipefd[0]);
        (void)close(pipefd[1]);
        return f;
    }
    if (pid == 0) {
        (void)dup2(pipefd[1], STDOUT_FILENO);
        char idx[16];
        (void)snprintf(idx, sizeof(idx), "%zu", index);
        /* The child of a fork, one thread: setenv is safe here. */
        if (a->preload)
            (void)setenv("LD_PRELOAD", a->preload, 1); /* NOLINT(concurrency-mt-unsafe) */
        if (socket) {
            (void)setenv("ARENAD_SOCKET", socket, 1);     /* NOLINT(concurrency-mt-unsafe) */
            (void)setenv("ARENA_REQUIRE_DAEMON", "1", 1); /* NOLINT(concurrency-mt-unsafe) */
        }
        execl(self, self, "--child", idx, a->expect ? a->expect : "", quick ? "quick" : "full",
              (char *)NULL);
        _exit(127);
    }
    (void)close(pipefd[1]);
    char buf[256];
    ssize_t n = 0, r;
    while ((r = read(pipefd[0], buf + n, sizeof(buf) - 1 - (size_t)n)) > 0)
        n += r;
    (void)close(pipefd[0]);
    buf[n > 0 ? n : 0] = '\0';
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
        sscanf(buf, "%ld %ld %ld %ld %ld", &f.start, &f.peak, &f.freed, &f.later, &f.shmem) == 5)
        f.ok = true;
    return f;
}

typedef struct big_figures {
    bool ok;
    double secs;
    long minflt, maxrss_kib;
} big_figures_t;

/* One run of the large-block pattern under allocator a: wall time from fork
 * to reap, and the child's rusage. */
static big_figures_t run_big_child(const char *self, const alloc_t *a, const char *socket,
                                   bool quick)
{
    big_figures_t f = {0};
    struct timespec t0, t1;
    (void)clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0)
        return f;
    if (pid == 0) {
        /* The child of a fork, one thread: setenv is safe here. */
        if (a->preload)
            (void)setenv("LD_PRELOAD", a->preload, 1); /* NOLINT(concurrency-mt-unsafe) */
        if (socket) {
            (void)setenv("ARENAD_SOCKET", socket, 1);     /* NOLINT(concurrency-mt-unsafe) */
            (void)setenv("ARENA_REQUIRE_DAEMON", "1", 1); /* NOLINT(concurrency-mt-unsafe) */
        }
        execl(self, self, "--big-child", a->expect ? a->expect : "", quick ? "quick" : "full",
              (char *)NULL);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR)
        ;
    (void)clock_gettime(CLOCK_MONOTONIC, &t1);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        f.ok = true;
        f.secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        f.minflt = ru.ru_minflt;
        f.maxrss_kib = ru.ru_maxrss;
    }
    return f;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

/* A private arenad on a temporary socket; returns its pid, or -1. */
static pid_t daemon_start(const char *arenad, const char *dir, char *sock_path, size_t len)
{
    (void)snprintf(sock_path, len, "%s/arenad.sock", dir);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (null >= 0) {
            (void)dup2(null, STDOUT_FILENO);
            (void)dup2(null, STDERR_FILENO);
        }
        execl(arenad, arenad, "--socket", sock_path, "--budget", "4G", "--foreground",
              (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        size_t plen = strnlen(sock_path, sizeof(sa.sun_path) - 1);
        memcpy(sa.sun_path, sock_path, plen);
        bool up = s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        if (s >= 0)
            (void)close(s);
        if (up)
            return pid;
        struct timespec ts = {0, 50L * 1000 * 1000};
        (void)nanosleep(&ts, NULL);
    }
    (void)kill(pid, SIGKILL);
    (void)waitpid(pid, NULL, 0);
    return -1;
}

/* The directory of this program, for its siblings (arenad, the library). */
static void self_dir(char *buf, size_t len)
{
    ssize_t n = readlink("/proc/self/exe", buf, len - 1);
    buf[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(buf, '/');
    if (slash)
        *slash = '\0';
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--child") == 0) {
        size_t index = strtoul(argv[2], NULL, 10);
        if (index >= NPATTERNS)
            return 2;
        return child_main(index, argv[3], strcmp(argv[4], "quick") == 0);
    }
    if (argc == 4 && strcmp(argv[1], "--big-child") == 0)
        return big_child_main(argv[2], strcmp(argv[3], "quick") == 0);
    bool quick = false, big = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = true;
        } else if (strcmp(argv[i], "--big-blocks") == 0) {
            big = true;
        } else {
            (void)fprintf(stderr, "usage: bench-rss [--big-blocks] [--quick]\n");
            return 2;
        }
    }
    char self[4096], bindir[4096], arenad[4200], preload[4200];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return 1;
    self[n] = '\0';
    self_dir(bindir, sizeof(bindir));
    (void)snprintf(arenad, sizeof(arenad), "%s/arenad", bindir);
    (void)snprintf(preload, sizeof(preload), "%s/../lib/libarena-preload.so", bindir);

    char dir[] = "/tmp/bench-rss.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("bench-rss: mkdtemp");
        return 1;
    }
    char socket[256];
    pid_t daemon = daemon_start(arenad, dir, socket, sizeof(socket));
    if (daemon < 0)
        (void)fprintf(stderr, "bench-rss: no arenad at %s: arena-preload is left out\n", arenad);

    const alloc_t allocs[] = {
        {"glibc", NULL, NULL},
        {"jemalloc", find_lib("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"), "libjemalloc"},
        {"mimalloc", find_lib("/usr/lib/x86_64-linux-gnu/libmimalloc.so.2"), "libmimalloc"},
        {"tcmalloc", find_lib("/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"), "libtcmalloc"},
        {"arena-preload", daemon > 0 && access(preload, R_OK) == 0 ? preload : NULL, "arena"},
    };
    const size_t nalloc = sizeof(allocs) / sizeof(allocs[0]);
    long sum_later[8] = {0}, sum_peak[8] = {0};
    bool ran[8] = {false};
    for (size_t a = 0; a < nalloc; a++)
        ran[a] = a == 0 || allocs[a].preload != NULL;
    if (big) {
        enum { ROUNDS = 3 };
        double secs[8][ROUNDS];
        long flt[8][ROUNDS], peak[8][ROUNDS];
        for (int r = 0; r < ROUNDS; r++) {
            for (size_t a = 0; a < nalloc; a++) {
                if (!ran[a])
                    continue;
                big_figures_t f =
                    run_big_child(self, &allocs[a], a == nalloc - 1 ? socket : NULL, quick);
                ran[a] = f.ok;
                secs[a][r] = f.secs;
                flt[a][r] = f.minflt;
                peak[a][r] = f.maxrss_kib;
            }
        }
        double med_secs[8] = {0};
        long med_flt[8] = {0}, med_peak[8] = {0};
        printf("%-14s %10s %12s %12s\n", "allocator", "time s", "minor flt", "peak KiB");
        for (size_t a = 0; a < nalloc; a++) {
            if (!ran[a]) {
                printf("%-14s %10s\n", allocs[a].name, "not run");
                med_secs[a] = -1;
                med_flt[a] = med_peak[a] = -1;
                continue;
            }
            qsort(secs[a], ROUNDS, sizeof(double), cmp_double);
            qsort(flt[a], ROUNDS, sizeof(long), cmp_long);
            qsort(peak[a], ROUNDS, sizeof(long), cmp_long);
            med_secs[a] = secs[a][ROUNDS / 2];
            med_flt[a] = flt[a][ROUNDS / 2];
            med_peak[a] = peak[a][ROUNDS / 2];
            printf("%-14s %10.3f %12ld %12ld\n", allocs[a].name, med_secs[a], med_flt[a],
                   med_peak[a]);
        }
        int st = 0;
        if (daemon > 0) {
            (void)kill(daemon, SIGTERM);
            while (waitpid(daemon, &st, 0) < 0 && errno == EINTR)
                ;
        }
        (void)unlink(socket);
        (void)rmdir(dir);
        size_t ar = nalloc - 1, tc = 3;
        printf("RESULT big_time_arena_s=%.3f big_time_glibc_s=%.3f big_time_tcmalloc_s=%.3f "
               "big_minflt_arena=%ld big_minflt_tcmalloc=%ld big_peak_arena_kib=%ld "
               "big_peak_glibc_kib=%ld big_peak_tcmalloc_kib=%ld\n",
               med_secs[ar], med_secs[0], med_secs[tc], med_flt[ar], med_flt[tc], med_peak[ar],
               med_peak[0], med_peak[tc]);
        return 0;
    }

    printf("%-32s %-14s %9s %9s %9s %9s %9s\n", "pattern (KiB of RSS)", "allocator", "start",
           "peak", "freed", "after 1s", "shmem 1s");
    for (size_t p = 0; p < NPATTERNS; p++) {
        for (size_t a = 0; a < nalloc; a++) {
            if (a > 0 && !allocs[a].preload) {
                printf("%-32s %-14s %9s\n", patterns[p].name, allocs[a].name, "not installed");
                continue;
            }
            figures_t f = run_child(self, p, &allocs[a], a == nalloc - 1 ? socket : NULL, quick);
            if (!f.ok) {
                printf("%-32s %-14s %9s\n", patterns[p].name, allocs[a].name, "not loaded");
                ran[a] = false;
                continue;
            }
            printf("%-32s %-14s %9ld %9ld %9ld %9ld %9ld\n", patterns[p].name, allocs[a].name,
                   f.start, f.peak, f.freed, f.later, f.shmem);
            sum_later[a] += f.later;
            sum_peak[a] += f.peak;
        }
        (void)fflush(stdout);
    }
    /* A daemon that crashed, or reported to a sanitizer at exit, fails the
     * benchmark before any figure. */
    int daemon_status = 0;
    if (daemon > 0) {
        (void)kill(daemon, SIGTERM);
        while (waitpid(daemon, &daemon_status, 0) < 0 && errno == EINTR)
            ;
    }
    (void)unlink(socket);
    (void)rmdir(dir);
    if (!WIFEXITED(daemon_status) || WEXITSTATUS(daemon_status) != 0) {
        fprintf(stderr, "bench-rss: arenad did not exit cleanly (status 0x%x)\n", daemon_status);
        return 1;
    }

    long best = -1;
    for (size_t a = 0; a + 1 < nalloc; a++) {
        if (ran[a] && (best < 0 || sum_later[a] < best))
            best = sum_later[a];
    }
    size_t arena = nalloc - 1;
    printf("RESULT rss_after_1s_arena_kib=%ld rss_after_1s_glibc_kib=%ld "
           "rss_after_1s_best_peer_kib=%ld peak_arena_kib=%ld peak_glibc_kib=%ld\n",
           ran[arena] ? sum_later[arena] : -1, sum_later[0], best,
           ran[arena] ? sum_peak[arena] : -1, sum_peak[0]);
    return 0;
}
