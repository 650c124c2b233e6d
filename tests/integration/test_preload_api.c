/* SPDX-License-Identifier: MIT
 *
 * test_preload_api.c -- the C library's allocation contract, checked from
 * inside a program running under libarena-preload.so.
 *
 *     LD_PRELOAD=build/lib/libarena-preload.so test_preload_api [leased|anonymous]
 *
 * Run by test_preload (which also runs it without the library, where the
 * first check fails). Checks that malloc really is ours (dladdr), the
 * edge cases C programmers rely on (free(NULL), calloc overflow, alignment
 * errors, valloc/pvalloc, realloc), fork() (the child gets a private copy),
 * and, given "leased" or "anonymous", where the memory comes from: a mapping
 * of the daemon's pool memfd, or anonymous memory. Prints one line per
 * failure and "preload-api: N checks ok" at the end; exit status 0 or 1.
 */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int checks, failures;
/* Sizes hidden from the compiler, which would reject the calls otherwise. */
static volatile size_t size_max = SIZE_MAX, two_pow_33 = (size_t)1 << 33;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        checks++;                                                                                  \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                                 \
        }                                                                                          \
    } while (0)

/* The path of the mapping that holds addr in /proc/self/maps ("" when it is
 * anonymous), or NULL when no mapping holds it. */
static const char *mapping_of(const void *addr, char *buf, size_t len)
{
    FILE *f = fopen("/proc/self/maps", "re");
    char line[512];
    const char *found = NULL;

    if (!f)
        return NULL;
    while (fgets(line, sizeof(line), f)) {
        uintptr_t lo, hi;
        int off = 0;
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %*s %*s %*s %*s %n", &lo, &hi, &off) < 2)
            continue;
        if ((uintptr_t)addr >= lo && (uintptr_t)addr < hi) {
            snprintf(buf, len, "%s", off > 0 ? line + off : "");
            buf[strcspn(buf, "\n")] = '\0';
            found = buf;
            break;
        }
    }
    fclose(f);
    return found;
}

static void check_ours(void)
{
    Dl_info info;
    void *m = dlsym(RTLD_DEFAULT, "malloc"); /* what every caller binds to */

    CHECK(m != NULL && dladdr(m, &info) != 0 && info.dli_fname &&
          strstr(info.dli_fname, "libarena-preload") != NULL);
}

static void check_edge_cases(void)
{
    void *p = (void *)&checks, *q;
    long page = sysconf(_SC_PAGESIZE);

    free(NULL);

    q = malloc(0);
    CHECK(q != NULL);
    free(q);

    errno = 0;
    CHECK(malloc(size_max) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(calloc(size_max / 2, 3) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(calloc(two_pow_33, two_pow_33) == NULL && errno == ENOMEM);

    unsigned char *z = calloc(1000, 8);
    CHECK(z != NULL);
    if (z) {
        size_t nonzero = 0;
        for (size_t i = 0; i < 8000; i++)
            nonzero += z[i] != 0;
        CHECK(nonzero == 0);
        free(z);
    }

    /* posix_memalign returns the error and leaves *ret and errno alone. */
    errno = 1234;
    CHECK(posix_memalign(&p, 3, 8) == EINVAL && p == (void *)&checks);
    CHECK(posix_memalign(&p, 24, 8) == EINVAL && p == (void *)&checks);
    CHECK(posix_memalign(&p, sizeof(void *) / 2, 8) == EINVAL && p == (void *)&checks);
    CHECK(posix_memalign(&p, 0, 8) == EINVAL && p == (void *)&checks);
    CHECK(posix_memalign(&p, 64, size_max - 100) == ENOMEM && p == (void *)&checks);
    CHECK(errno == 1234);
    for (size_t align = sizeof(void *); align <= ((size_t)8 << 20); align *= 4) {
        CHECK(posix_memalign(&p, align, 100) == 0 && (uintptr_t)p % align == 0);
        memset(p, 1, 100);
        free(p);
    }

    errno = 0;
    CHECK(aligned_alloc(3, 8) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(aligned_alloc(0, 8) == NULL && errno == EINVAL);
    q = aligned_alloc(4096, 100);
    CHECK(q != NULL && (uintptr_t)q % 4096 == 0);
    free(q);

    errno = 0;
    CHECK(memalign(6, 8) == NULL && errno == EINVAL);
    q = memalign(256, 10);
    CHECK(q != NULL && (uintptr_t)q % 256 == 0);
    free(q);

    q = valloc(100);
    CHECK(q != NULL && (uintptr_t)q % (uintptr_t)page == 0);
    CHECK(malloc_usable_size(q) >= 100);
    free(q);

    q = pvalloc(100);
    CHECK(q != NULL && (uintptr_t)q % (uintptr_t)page == 0);
    CHECK(malloc_usable_size(q) >= (size_t)page);
    if (q)
        memset(q, 7, (size_t)page);
    free(q);
    errno = 0;
    CHECK(pvalloc(size_max - 10) == NULL && errno == ENOMEM);

    CHECK(malloc_usable_size(NULL) == 0);
    q = malloc(100);
    CHECK(q != NULL && malloc_usable_size(q) >= 100);

    /* realloc keeps the contents, moves when it must, frees on size 0. */
    memset(q, 0x42, 100);
    unsigned char *r = realloc(q, 100000);
    CHECK(r != NULL);
    if (r) {
        size_t bad = 0;
        for (size_t i = 0; i < 100; i++)
            bad += r[i] != 0x42;
        CHECK(bad == 0);
        memset(r, 0x43, 100000);
        unsigned char *s = realloc(r, 10);
        CHECK(s != NULL && s[0] == 0x43 && s[9] == 0x43);
        errno = 0;
        CHECK(realloc(s, size_max - 100) == NULL && errno == ENOMEM);
        CHECK(s[9] == 0x43); /* untouched on failure */
        CHECK(realloc(s, 0) == NULL);
    }
    q = realloc(NULL, 10);
    CHECK(q != NULL);
    free(q);

    /* A large block, touched end to end. */
    size_t big = (size_t)64 << 20;
    unsigned char *b = malloc(big);
    CHECK(b != NULL);
    if (b) {
        for (size_t i = 0; i < big; i += 4096)
            b[i] = (unsigned char)i;
        CHECK(b[big - 4096] == (unsigned char)(big - 4096));
        free(b);
    }
}

static void check_fork(void)
{
    char *shared = malloc(64);
    int status = -1;
    pid_t pid;

    CHECK(shared != NULL);
    if (!shared)
        return;
    strcpy(shared, "parent");
    pid = fork();
    if (pid > 0) {
        /* At once: the child's private copy must hold what was there at the
         * fork, not what the parent writes right after it. */
        strcpy(shared, "parent after fork");
    }
    if (pid == 0) {
        int bad = strcmp(shared, "parent") != 0;
        if (bad)
            printf("child sees '%s'\n", shared);
        strcpy(shared, "child");
        for (int i = 0; i < 10000; i++) {
            char *p = malloc((size_t)(i % 500) + 1);
            if (!p) {
                bad = 1;
                break;
            }
            p[0] = 1;
            free(p);
        }
        free(shared);
        _exit(bad ? 3 : 0);
    }
    CHECK(pid > 0);
    if (pid > 0) {
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    /* The child's write and free did not reach the parent's memory. */
    CHECK(strcmp(shared, "parent after fork") == 0);
    free(shared);
    char *after = malloc(1000);
    CHECK(after != NULL);
    free(after);
}

static void *thread_churn(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20000; i++) {
        void *p = malloc((size_t)(i % 700) + 1);
        if (!p)
            return (void *)1;
        free(p);
    }
    return NULL;
}

static void check_threads(void)
{
    pthread_t t[8];
    void *ret;

    for (int i = 0; i < 8; i++)
        CHECK(pthread_create(&t[i], NULL, thread_churn, NULL) == 0);
    for (int i = 0; i < 8; i++) {
        CHECK(pthread_join(t[i], &ret) == 0);
        CHECK(ret == NULL);
    }
}

static void check_source(const char *expect)
{
    char buf[512];
    void *p = malloc(1000);
    const char *where = mapping_of(p, buf, sizeof(buf));

    CHECK(where != NULL);
    if (!where)
        return;
    if (strcmp(expect, "leased") == 0)
        CHECK(strstr(where, "memfd:") != NULL);
    else
        CHECK(strstr(where, "memfd:") == NULL);
    if (failures)
        printf("malloc'd %p lies in mapping '%s'\n", p, where);
    free(p);
}

int main(int argc, char **argv)
{
    check_ours();
    check_edge_cases();
    check_threads();
    check_fork();
    if (argc > 1)
        check_source(argv[1]);
    printf("preload-api: %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
