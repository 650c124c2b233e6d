/* SPDX-License-Identifier: MIT
 *
 * rss_prog.c -- a program that frees everything, for test_rss; it runs
 * unmodified under libarena-preload.so (it links nothing of ours).
 *
 *   rss_prog freeall COUNT SIZE   allocate COUNT objects of SIZE bytes (touched),
 *                                 free them all, print "freed", then wait until
 *                                 stdin closes (the test watches its RSS from
 *                                 outside, also while it is stopped)
 *   rss_prog trim COUNT SIZE      the same, then malloc_trim(0) and print
 *                                 "trim RET VmRSS-KiB RssShmem-KiB"
 *
 * Before allocating it prints "start VmRSS-KiB RssShmem-KiB". Exit codes:
 * 0 done, 2 usage, 3 out of memory.
 */
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* VmRSS and RssShmem of this process, in KiB, read with read(2). */
static void rss_read(long *ret_rss, long *ret_shmem)
{
    char buf[4096];
    *ret_rss = *ret_shmem = -1;
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    (void)close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    const char *p = strstr(buf, "VmRSS:");
    if (p)
        *ret_rss = strtol(p + 6, NULL, 10);
    p = strstr(buf, "RssShmem:");
    if (p)
        *ret_shmem = strtol(p + 9, NULL, 10);
}

int main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[1], "freeall") != 0 && strcmp(argv[1], "trim") != 0))
        return 2;
    size_t count = strtoul(argv[2], NULL, 10), size = strtoul(argv[3], NULL, 10);
    if (count == 0 || size == 0)
        return 2;
    long rss, shmem;
    rss_read(&rss, &shmem);
    printf("start %ld %ld\n", rss, shmem);
    (void)fflush(stdout);
    void **objs = malloc(count * sizeof(void *));
    if (!objs)
        return 3;
    for (size_t i = 0; i < count; i++) {
        objs[i] = malloc(size);
        if (!objs[i]) {
            for (size_t k = 0; k < i; k++)
                free(objs[k]);
            free(objs);
            return 3;
        }
        memset(objs[i], (int)(i & 0x7f) + 1, size);
    }
    for (size_t i = 0; i < count; i++)
        free(objs[i]);
    free(objs);
    if (strcmp(argv[1], "trim") == 0) {
        int r = malloc_trim(0);
        rss_read(&rss, &shmem);
        printf("trim %d %ld %ld\n", r, rss, shmem);
        return 0;
    }
    printf("freed\n");
    (void)fflush(stdout);
    char c;
    while (read(STDIN_FILENO, &c, 1) > 0)
        ;
    return 0;
}
