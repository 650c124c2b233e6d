/* SPDX-License-Identifier: MIT
 *
 * ctl_client.c -- a client's control region seen from daemon unit tests
 * (ctl_client.h).
 */
#include "ctl_client.h"

#include <check.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "ctlword.h"

void *ctl_client_map(ad_leases_t *mgr, uint64_t client_id, size_t *ret_len)
{
    int fd;
    uint32_t slots;
    ck_assert_int_eq(ad_leases_control_info(mgr, client_id, &fd, &slots), 0);
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ck_assert_ptr_ne(map, MAP_FAILED);
    *ret_len = (size_t)st.st_size;
    return map;
}

void ctl_client_park(ad_leases_t *mgr, uint64_t client_id, const ad_lease_grant_t *g)
{
    size_t len;
    void *map = ctl_client_map(mgr, client_id, &len);
    ck_assert(arena__ctlword_park_release(arena__ctlword_slot(map, g->slot), g->generation));
    ck_assert_int_eq(munmap(map, len), 0);
}
