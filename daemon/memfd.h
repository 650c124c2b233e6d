/* SPDX-License-Identifier: MIT
 *
 * memfd.h -- a small shared region the daemon makes and maps: a memfd of a
 * fixed size, sealed so nobody holding it can shrink it (which would raise
 * SIGBUS in the loop), grow it, or change its seals. The control regions
 * and the lease ledger are made this way.
 */
#ifndef AD_MEMFD_H
#define AD_MEMFD_H

#include <stddef.h>

/* Creates the memfd (CLOEXEC), sizes it to len, seals it and maps it
 * read/write shared. Returns 0, *ret_fd and *ret_map, or -errno (nothing
 * left behind). */
int ad_memfd_sealed(const char *name, size_t len, int *ret_fd, void **ret_map);

#endif
