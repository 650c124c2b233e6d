/* SPDX-License-Identifier: MIT
 *
 * memfd.c -- sealed, mapped memfds (see memfd.h).
 */
#include "memfd.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

int ad_memfd_sealed(const char *name, size_t len, int *ret_fd, void **ret_map)
{
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -errno;
    void *map = MAP_FAILED;
    if (ftruncate(fd, (off_t)len) == 0 &&
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0)
        map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        int r = -errno;
        (void)close(fd);
        return r;
    }
    *ret_fd = fd;
    *ret_map = map;
    return 0;
}
