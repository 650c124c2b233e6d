/* SPDX-License-Identifier: MIT
 *
 * bench_pool.c -- bench-pool: arena's pools, slabs and bump arenas against
 * glibc, jemalloc, mimalloc and tcmalloc.
 *
 *     build/bin/bench-pool [--quick]
 *
 * The malloc-family workloads run in child processes, one per allocator: the
 * bench re-executes itself with --child MODE, under LD_PRELOAD of the
 * allocator's library (glibc: none), so every allocator is measured in the
 * same run on the same machine state. "arena" calls arena_malloc/arena_free
 * directly (and arena_trim before the final RSS); "arena-preload" runs the
 * same code as glibc under libarena-preload.so. An allocator whose library
 * is missing is reported as n/a. Workloads:
 *
 *   small    one thread, a ring of 1000 live objects of 16-1024 bytes: free
 *            one, allocate one; ns per (free + malloc) pair, and the
 *            p50/p99/p999 of single pairs measured with rdtsc;
 *   pc       producer/consumer: one thread allocates, another frees; ns per
 *            object;
 *   larson   larson-style server: 2 threads replace random objects of their
 *            own set and, every round, hand the set to a new thread that
 *            frees what the old one allocated; ns per replacement (wall);
 *   rss      400k objects of 16-1024 bytes (~200 MB) allocated, then freed;
 *            VmRSS at the peak and at the end (after the allocator's trim
 *            call, when it has one: arena_trim, malloc_trim, mi_collect,
 *            jemalloc's arena purge, tcmalloc's ReleaseFreeMemory).
 *
 * arena_slab alloc/free pairs and arena_bump allocations run in the "arena"
 * child. The arena children need a daemon: the bench starts a private arenad
 * on a temporary socket (or uses $ARENAD_SOCKET when set) and always stops it.
 * Throughput figures of one thread (small, slab, bump) are the best of three
 * runs, so that other work on the machine disturbs them less; latency
 * percentiles come from one run and do include such disturbances.
 * Output: a table, then one RESULT line.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "arena.h"
#include "daemon.h"

#define RING        1000
#define HIST_NS_MAX 100000 /* latency histogram: 1 ns buckets up to 100 us */
#define RSS_OBJECTS 400000
#define REPEAT      3 /* throughput figures: best of REPEAT runs */

static bool quick;

/* ---- timing ---------------------------------------------------------------------- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t ticks(void)
{
#if defined(__x86_64__)
    return __rdtsc();
#else
    return now_ns();
#endif
}

/* Nanoseconds per tick, measured against the monotonic clock over 50 ms. */
static double ns_per_tick(void)
{
#if defined(__x86_64__)
    uint64_t t0 = now_ns(), c0 = ticks();
    while (now_ns() - t0 < 50000000u)
        ;
    uint64_t t1 = now_ns(), c1 = ticks();
    return (double)(t1 - t0) / (double)(c1 - c0);
#else
    return 1.0;
#endif
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Sizes 16..1024, a precomputed table so the rng is not measured. */
static size_t sizes[4096];

static void init_sizes(void)
{
    uint64_t s = 7;
    for (size_t i = 0; i < 4096; i++)
        sizes[i] = 16 + (size_t)(rng_next(&s) % 1009);
}

/* ---- the allocator under test ------------------------------------------------------ */

struct alloc_ops {
    void *(*alloc)(size_t);
    void (*release)(void *);
    void (*trim)(void);
};

static struct alloc_ops ops;

static void *libc_alloc(size_t n)
{
    return malloc(n);
}

static void libc_release(void *p)
{
    free(p);
}

static void trim_arena(void)
{
    (void)arena_trim();
}

/* The preloaded allocator's own "give memory back" call, when it has one. */
static void trim_libc(void)
{
    void *f;
    if ((f = dlsym(RTLD_DEFAULT, "mi_collect")) != NULL) {
        void (*mi_collect)(bool);
        memcpy(&mi_collect, &f, sizeof(f));
        mi_collect(true);
    } else if ((f = dlsym(RTLD_DEFAULT, "mallctl")) != NULL) {
        int (*mallctl)(const char *, void *, size_t *, void *, size_t);
        memcpy(&mallctl, &f, sizeof(f));
        (void)mallctl("arena.4096.purge", NULL, NULL, NULL, 0);
    } else if ((f = dlsym(RTLD_DEFAULT, "MallocExtension_ReleaseFreeMemory")) != NULL) {
        void (*release)(void);
        memcpy(&release, &f, sizeof(f));
        release();
    } else if ((f = dlsym(RTLD_DEFAULT, "malloc_trim")) != NULL) {
        int (*malloc_trim)(size_t);
        memcpy(&malloc_trim, &f, sizeof(f));
        (void)malloc_trim(0);
    }
}

/* ---- workloads -------------------------------------------------------------------- */

struct hist {
    uint32_t *count; /* HIST_NS_MAX + 1 buckets, the last one for overflow */
    uint64_t n;
};

static void hist_init(struct hist *h)
{
    h->count = mmap(NULL, (HIST_NS_MAX + 1) * sizeof(uint32_t), PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (h->count == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    h->n = 0;
}

static double hist_pct(const struct hist *h, double pct)
{
    uint64_t want = (uint64_t)(pct / 100.0 * (double)h->n), seen = 0;
    for (size_t i = 0; i <= HIST_NS_MAX; i++) {
        seen += h->count[i];
        if (seen > want)
            return (double)i;
    }
    return (double)HIST_NS_MAX;
}

static void touch(void *p, size_t n)
{
    unsigned char *b = p;
    b[0] = (unsigned char)n;
    b[n - 1] = (unsigned char)n;
}

/* Ring of live objects; free one, allocate one. Returns ns per pair.
 * noinline: a symbol for valgrind --tool=callgrind --toggle-collect=work_small. */
static __attribute__((noinline)) double work_small(long steps, struct hist *h, double tick_ns)
{
    void *ring[RING];
    uint64_t t0, t1, overhead = UINT64_MAX;

    for (size_t i = 0; i < RING; i++) {
        ring[i] = ops.alloc(sizes[i % 4096]);
        touch(ring[i], sizes[i % 4096]);
    }
    /* The plain run, best of REPEAT (the machine may be shared). */
    double ns = 1e30;
    for (int rep = 0; rep < REPEAT; rep++) {
        t0 = now_ns();
        for (long s = 0; s < steps; s++) {
            size_t k = (size_t)s % RING, sz = sizes[(size_t)s % 4096];
            ops.release(ring[k]);
            ring[k] = ops.alloc(sz);
            touch(ring[k], sz);
        }
        t1 = now_ns();
        if ((double)(t1 - t0) / (double)steps < ns)
            ns = (double)(t1 - t0) / (double)steps;
    }

    /* Latency of single pairs, the timer's own cost subtracted. */
    for (int i = 0; i < 1000; i++) {
        uint64_t a = ticks(), b = ticks();
        if (b - a < overhead)
            overhead = b - a;
    }
    for (long s = 0; s < steps; s++) {
        size_t k = (size_t)s % RING, sz = sizes[(size_t)(s + 17) % 4096];
        uint64_t a = ticks();
        ops.release(ring[k]);
        ring[k] = ops.alloc(sz);
        uint64_t b = ticks();
        touch(ring[k], sz);
        uint64_t d = b - a > overhead ? b - a - overhead : 0;
        size_t bucket = (size_t)((double)d * tick_ns);
        h->count[bucket < HIST_NS_MAX ? bucket : HIST_NS_MAX]++;
        h->n++;
    }
    for (size_t i = 0; i < RING; i++)
        ops.release(ring[i]);
    return ns;
}

/* Producer/consumer over a single-producer single-consumer ring. */
#define PC_RING 4096
struct pc {
    void *slot[PC_RING];
    _Atomic uint64_t head, tail;
    long count;
};

static void *pc_consumer(void *arg)
{
    struct pc *pc = arg;
    for (long i = 0; i < pc->count; i++) {
        uint64_t t = atomic_load_explicit(&pc->tail, memory_order_relaxed);
        while (atomic_load_explicit(&pc->head, memory_order_acquire) == t)
            sched_yield(); /* 2 cores shared with other work: do not spin */
        void *p = pc->slot[t % PC_RING];
        atomic_store_explicit(&pc->tail, t + 1, memory_order_release);
        ops.release(p);
    }
    return NULL;
}

static double work_pc(long count)
{
    struct pc *pc =
        mmap(NULL, sizeof(*pc), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pthread_t cons;
    if (pc == MAP_FAILED)
        return -1;
    pc->count = count;
    uint64_t t0 = now_ns();
    if (pthread_create(&cons, NULL, pc_consumer, pc) != 0)
        return -1;
    for (long i = 0; i < count; i++) {
        size_t sz = sizes[(size_t)i % 4096];
        void *p = ops.alloc(sz);
        touch(p, sz);
        uint64_t h = atomic_load_explicit(&pc->head, memory_order_relaxed);
        while (h - atomic_load_explicit(&pc->tail, memory_order_acquire) >= PC_RING)
            sched_yield();
        pc->slot[h % PC_RING] = p;
        atomic_store_explicit(&pc->head, h + 1, memory_order_release);
    }
    pthread_join(cons, NULL);
    double ns = (double)(now_ns() - t0) / (double)count;
    munmap(pc, sizeof(*pc));
    return ns;
}

/* Larson-style: each "server thread" replaces random objects of its set;
 * after a round its set passes to a fresh thread. */
#define LARSON_SET 1000
struct larson {
    void *set[LARSON_SET];
    uint64_t seed;
    long ops;
};

static void *larson_round(void *arg)
{
    struct larson *l = arg;
    for (long i = 0; i < l->ops; i++) {
        uint64_t r = rng_next(&l->seed);
        size_t k = (size_t)(r % LARSON_SET), sz = sizes[(r >> 20) % 4096];
        ops.release(l->set[k]);
        l->set[k] = ops.alloc(sz);
        touch(l->set[k], sz);
    }
    return NULL;
}

static double work_larson(int threads, int rounds, long ops_per_round)
{
    struct larson l[2];
    pthread_t th[2];

    for (int t = 0; t < threads; t++) {
        l[t].seed = (uint64_t)t + 1;
        l[t].ops = ops_per_round;
        for (size_t i = 0; i < LARSON_SET; i++)
            l[t].set[i] = ops.alloc(sizes[i % 4096]);
    }
    uint64_t t0 = now_ns();
    for (int r = 0; r < rounds; r++) {
        for (int t = 0; t < threads; t++)
            if (pthread_create(&th[t], NULL, larson_round, &l[t]) != 0)
                return -1;
        for (int t = 0; t < threads; t++)
            pthread_join(th[t], NULL);
    }
    double ns = (double)(now_ns() - t0) / ((double)rounds * (double)ops_per_round * threads);
    for (int t = 0; t < threads; t++)
        for (size_t i = 0; i < LARSON_SET; i++)
            ops.release(l[t].set[i]);
    return ns;
}

static long rss_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            v = strtol(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* Peak RSS with all objects live, and RSS after freeing them all and the
 * allocator's trim call; absolute VmRSS values (the program's own few MiB
 * included, the same for every allocator). */
static void work_rss(long *ret_peak, long *ret_final)
{
    size_t n = quick ? RSS_OBJECTS / 4 : RSS_OBJECTS;
    void **objs =
        mmap(NULL, n * sizeof(void *), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (objs == MAP_FAILED) {
        *ret_peak = *ret_final = -1;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        size_t sz = sizes[i % 4096];
        objs[i] = ops.alloc(sz);
        memset(objs[i], 1, sz);
    }
    *ret_peak = rss_kib("VmRSS");
    for (size_t i = 0; i < n; i++)
        ops.release(objs[i]);
    ops.trim();
    *ret_final = rss_kib("VmRSS");
    munmap(objs, n * sizeof(void *));
}

/* ---- slab and bump ------------------------------------------------------------------ */

static double work_slab(long pairs, struct hist *h, double tick_ns)
{
    arena_slab_t *slab;
    void *keep[64];
    if (arena_slab_create(64, 0, &slab) < 0)
        return -1;
    for (int i = 0; i < 64; i++)
        keep[i] = arena_slab_alloc(slab);
    double ns = 1e30;
    for (int rep = 0; rep < REPEAT; rep++) {
        uint64_t t0 = now_ns();
        for (long i = 0; i < pairs; i++) {
            void *p = arena_slab_alloc(slab);
            *(volatile char *)p = 1;
            arena_slab_free(slab, p);
        }
        double t = (double)(now_ns() - t0) / (double)pairs;
        ns = t < ns ? t : ns;
    }
    /* Latency: 64 pairs per sample (one pair is below the timer's resolution). */
    for (long i = 0; i < pairs / 64; i++) {
        uint64_t a = ticks();
        for (int j = 0; j < 64; j++) {
            void *p = arena_slab_alloc(slab);
            arena_slab_free(slab, p);
        }
        size_t bucket = (size_t)((double)(ticks() - a) * tick_ns / 64);
        h->count[bucket < HIST_NS_MAX ? bucket : HIST_NS_MAX]++;
        h->n++;
    }
    for (int i = 0; i < 64; i++)
        arena_slab_free(slab, keep[i]);
    arena_slab_destroy(slab);
    return ns;
}

/* Allocation cost alone: the pointers are summed, not written to, and the
 * arena is reset every 4096 allocations (keeping its chunk). call: through
 * the exported function, (arena_bump_alloc)(...), as FFI and dlsym users do;
 * otherwise through arena.h's inline fast path, as C callers do. */
static double work_bump(long allocs, bool call)
{
    arena_bump_t *bump;
    uintptr_t sum = 0;
    if (arena_bump_create(0, &bump) < 0)
        return -1;
    double ns = 1e30;
    for (int rep = 0; rep < REPEAT; rep++) {
        uint64_t t0 = now_ns();
        for (long i = 0; i < allocs; i++) {
            if ((i & 4095) == 4095)
                arena_bump_reset(bump, true);
            if (call)
                sum += (uintptr_t)(arena_bump_alloc)(bump, 16 + (size_t)(i & 48), 16);
            else
                sum += (uintptr_t)arena_bump_alloc(bump, 16 + (size_t)(i & 48), 16);
        }
        double t = (double)(now_ns() - t0) / (double)allocs;
        ns = t < ns ? t : ns;
    }
    arena_bump_destroy(bump);
    return sum != 0 ? ns : -1;
}

/* ---- child ------------------------------------------------------------------------- */

/* Whether malloc in this process resolves into the allocator the parent
 * meant (BENCH_POOL_EXPECT: a preloaded library's path, or "libc"): ld.so
 * only warns when it cannot preload a library and runs glibc's malloc, so a
 * row could otherwise carry glibc's figures under another name. */
static bool child_allocator_is_expected(void)
{
    const char *want = getenv("BENCH_POOL_EXPECT");
    if (!want)
        return true; /* run by hand */
    void *m = dlsym(RTLD_DEFAULT, "malloc");
    Dl_info di;
    if (!m || !dladdr(m, &di) || !di.dli_fname) {
        fprintf(stderr, "bench-pool: cannot tell where malloc comes from\n");
        return false;
    }
    char got[PATH_MAX], exp[PATH_MAX];
    bool ok;
    if (strcmp(want, "libc") == 0) {
        const char *slash = strrchr(di.dli_fname, '/');
        ok = strncmp(slash ? slash + 1 : di.dli_fname, "libc.so", 7) == 0;
    } else {
        ok = realpath(di.dli_fname, got) && realpath(want, exp) && strcmp(got, exp) == 0;
    }
    if (!ok)
        fprintf(stderr, "bench-pool: malloc resolves into %s, not %s\n", di.dli_fname, want);
    return ok;
}

static int child_main(const char *mode)
{
    struct hist h;
    double tick_ns = ns_per_tick();
    long peak, final;
    long steps = quick ? 500000 : 3000000;
    if (!child_allocator_is_expected())
        return 3; /* no figure for the wrong allocator */

    init_sizes();
    hist_init(&h);
    if (strcmp(mode, "arena") == 0) {
        ops.alloc = arena_malloc;
        ops.release = arena_free;
        ops.trim = trim_arena;
        /* Fail early and clearly without a daemon. */
        void *probe = arena_malloc(16);
        if (!probe) {
            fprintf(stderr, "bench-pool: arena_malloc failed: %s\n", strerror(errno));
            return 1;
        }
        arena_free(probe);
    } else {
        ops.alloc = libc_alloc;
        ops.release = libc_release;
        ops.trim = trim_libc;
    }
    double small = work_small(steps, &h, tick_ns);
    double pc = work_pc(quick ? 200000 : 1000000);
    double larson = work_larson(2, quick ? 4 : 10, quick ? 50000 : 100000);
    work_rss(&peak, &final);
    printf("small_ns=%.2f p50=%.0f p99=%.0f p999=%.0f pc_ns=%.2f larson_ns=%.2f "
           "peak_kib=%ld final_kib=%ld",
           small, hist_pct(&h, 50), hist_pct(&h, 99), hist_pct(&h, 99.9), pc, larson, peak, final);
    if (strcmp(mode, "arena") == 0) {
        struct hist hs;
        hist_init(&hs);
        double slab = work_slab(quick ? 2000000 : 20000000, &hs, tick_ns);
        double bump = work_bump(quick ? 5000000 : 50000000, false);
        double bump_call = work_bump(quick ? 5000000 : 50000000, true);
        printf(" slab_ns=%.2f slab_p50=%.1f slab_p999=%.1f bump_ns=%.2f bump_call_ns=%.2f", slab,
               hist_pct(&hs, 50), hist_pct(&hs, 99.9), bump, bump_call);
    }
    printf("\n");
    return 0;
}

/* ---- parent ------------------------------------------------------------------------ */

struct result {
    const char *name;
    const char *preload; /* library path, NULL for none, "" for n/a */
    bool ok;
    double small, p50, p99, p999, pc, larson, slab, slab_p50, slab_p999, bump, bump_call;
    long peak, final;
};

static const char *find_lib(const char *const *candidates)
{
    for (; *candidates; candidates++)
        if (access(*candidates, R_OK) == 0)
            return *candidates;
    return "";
}

/* Runs self --child mode under preload (NULL: none) and parses its line. */
static bool run_child(const char *self, const char *mode, const char *preload, struct result *r)
{
    int pfd[2];
    char buf[1024];
    size_t n = 0;
    int status;

    if (pipe2(pfd, O_CLOEXEC) < 0)
        return false;
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        dup2(pfd[1], 1);
        if (preload)
            setenv("LD_PRELOAD", preload, 1);
        else
            unsetenv("LD_PRELOAD");
        /* A child measuring malloc proves which allocator answers it; the
         * arena preload must lease from the daemon, never fall back to
         * anonymous memory. */
        if (strcmp(mode, "arena") == 0)
            unsetenv("BENCH_POOL_EXPECT"); /* calls arena_malloc, not malloc */
        else
            setenv("BENCH_POOL_EXPECT", preload ? preload : "libc", 1);
        if (preload)
            setenv("ARENA_REQUIRE_DAEMON", "1", 1);
        execl(self, self, "--child", mode, quick ? "--quick" : NULL, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    for (;;) {
        ssize_t k = read(pfd[0], buf + n, sizeof(buf) - 1 - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    buf[n] = '\0';
    close(pfd[0]);
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return false;
    int got = sscanf(buf,
                     "small_ns=%lf p50=%lf p99=%lf p999=%lf pc_ns=%lf larson_ns=%lf "
                     "peak_kib=%ld final_kib=%ld slab_ns=%lf slab_p50=%lf slab_p999=%lf "
                     "bump_ns=%lf bump_call_ns=%lf",
                     &r->small, &r->p50, &r->p99, &r->p999, &r->pc, &r->larson, &r->peak, &r->final,
                     &r->slab, &r->slab_p50, &r->slab_p999, &r->bump, &r->bump_call);
    return got >= 8;
}

static void fmt(char *buf, size_t len, bool ok, double v)
{
    if (ok && v >= 0)
        snprintf(buf, len, "%.1f", v);
    else
        snprintf(buf, len, "n/a");
}

int main(int argc, char **argv)
{
    char self[PATH_MAX], dir[PATH_MAX];
    arena_test_daemon_t d = {0};
    bool own_daemon = false;

    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--quick") == 0)
            quick = true;
    if (argc >= 3 && strcmp(argv[1], "--child") == 0)
        return child_main(argv[2]);

    ssize_t k = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (k <= 0) {
        perror("bench-pool: readlink /proc/self/exe");
        return 1;
    }
    self[k] = '\0';
    snprintf(dir, sizeof(dir), "%s", self);
    *strrchr(dir, '/') = '\0';

    if (!getenv("ARENAD_SOCKET")) {
        const char *const args[] = {"--budget", "4G", NULL};
        int r = arena_test_daemon_start(&d, NULL, args);
        if (r < 0) {
            fprintf(stderr, "bench-pool: cannot start arenad: %s\n", strerror(-r));
            return 1;
        }
        own_daemon = true;
        setenv("ARENAD_SOCKET", d.socket, 1);
    }

    char arena_preload[PATH_MAX + 64];
    snprintf(arena_preload, sizeof(arena_preload), "%s/../lib/libarena-preload.so", dir);
    const char *const jemalloc[] = {"/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
                                    "/usr/lib/libjemalloc.so.2", NULL};
    const char *const mimalloc[] = {"/usr/lib/x86_64-linux-gnu/libmimalloc.so.2",
                                    "/usr/lib/libmimalloc.so.2", NULL};
    const char *const tcmalloc[] = {"/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
                                    "/usr/lib/libtcmalloc_minimal.so.4", NULL};
    const char *const arena_pre[] = {arena_preload, NULL};
    struct result res[] = {
        {.name = "arena", .preload = NULL},
        {.name = "arena-preload", .preload = find_lib(arena_pre)},
        {.name = "glibc", .preload = NULL},
        {.name = "jemalloc", .preload = find_lib(jemalloc)},
        {.name = "mimalloc", .preload = find_lib(mimalloc)},
        {.name = "tcmalloc", .preload = find_lib(tcmalloc)},
    };
    size_t nres = sizeof(res) / sizeof(res[0]);

    for (size_t i = 0; i < nres; i++) {
        if (res[i].preload && res[i].preload[0] == '\0')
            continue; /* library missing: n/a */
        res[i].ok = run_child(self, strcmp(res[i].name, "arena") == 0 ? "arena" : "libc",
                              res[i].preload, &res[i]);
        if (!res[i].ok)
            fprintf(stderr, "bench-pool: %s run failed\n", res[i].name);
    }
    if (own_daemon) {
        /* A crash or a sanitizer's report at exit (23): no figures. */
        int status = arena_test_daemon_stop(&d);
        if (status != 0) {
            fprintf(stderr, "bench-pool: arenad did not exit cleanly: %d\n", status);
            return 1;
        }
    }

    printf("bench-pool%s: ns per operation; p50/p99/p99.9: single free+malloc pairs timed\n"
           "with rdtsc (its own cost subtracted; the TSC steps about 10 ns on a VM)\n",
           quick ? " (quick)" : "");
    printf("%-14s %9s %7s %7s %7s %9s %10s %10s %10s\n", "allocator", "small", "p50", "p99",
           "p99.9", "prod/cons", "larson", "peak KiB", "final KiB");
    for (size_t i = 0; i < nres; i++) {
        char c[9][32];
        struct result *r = &res[i];
        fmt(c[0], 32, r->ok, r->small);
        fmt(c[1], 32, r->ok, r->p50);
        fmt(c[2], 32, r->ok, r->p99);
        fmt(c[3], 32, r->ok, r->p999);
        fmt(c[4], 32, r->ok, r->pc);
        fmt(c[5], 32, r->ok, r->larson);
        snprintf(c[6], 32, r->ok && r->peak >= 0 ? "%ld" : "n/a", r->peak);
        snprintf(c[7], 32, r->ok && r->final >= 0 ? "%ld" : "n/a", r->final);
        printf("%-14s %9s %7s %7s %7s %9s %10s %10s %10s\n", r->name, c[0], c[1], c[2], c[3], c[4],
               c[5], c[6], c[7]);
    }
    char slab[32], slab50[32], slab999[32], bump[32], bump_call[32];
    fmt(slab, 32, res[0].ok, res[0].slab);
    fmt(slab50, 32, res[0].ok, res[0].slab_p50);
    fmt(slab999, 32, res[0].ok, res[0].slab_p999);
    fmt(bump, 32, res[0].ok, res[0].bump);
    fmt(bump_call, 32, res[0].ok, res[0].bump_call);
    printf("arena_slab alloc+free pair: %s ns (p50 %s, p99.9 %s per pair, 64-pair samples)\n", slab,
           slab50, slab999);
    printf("arena_bump alloc: %s ns inline (arena.h fast path), %s ns through the call\n", bump,
           bump_call);

    char s_arena[32], s_mi[32], s_je[32], s_gl[32], p999[32], rss[32];
    fmt(s_arena, 32, res[0].ok, res[0].small);
    fmt(s_gl, 32, res[2].ok, res[2].small);
    fmt(s_je, 32, res[3].ok, res[3].small);
    fmt(s_mi, 32, res[4].ok, res[4].small);
    fmt(p999, 32, res[0].ok, res[0].p999);
    if (res[0].ok && res[0].final >= 0)
        snprintf(rss, sizeof(rss), "%ld", res[0].final);
    else
        snprintf(rss, sizeof(rss), "n/a");
    printf("RESULT ns_small_arena=%s ns_small_mimalloc=%s ns_small_jemalloc=%s ns_small_glibc=%s "
           "ns_slab_pair=%s ns_bump=%s p999_ns_arena=%s rss_after_free_kib=%s ns_bump_call=%s\n",
           s_arena, s_mi, s_je, s_gl, slab, bump, p999, rss, bump_call);
    return res[0].ok ? 0 : 1;
}
