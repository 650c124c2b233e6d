/* SPDX-License-Identifier: MIT
 *
 * ctl_client.h -- what daemon unit tests do to a client's control region in
 * the client's place: map it, and park a lease's word in it as
 * arena_lease_park() would. Failures are Check assertions.
 */
#ifndef ARENA_TESTS_CTL_CLIENT_H
#define ARENA_TESTS_CTL_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "lease.h"

/* client_id's control region, mapped read/write through its memfd;
 * *ret_len is its size, for munmap(). */
void *ctl_client_map(ad_leases_t *mgr, uint64_t client_id, size_t *ret_len);

/* Marks g PARKED in client_id's control region (mapped for the call). */
void ctl_client_park(ad_leases_t *mgr, uint64_t client_id, const ad_lease_grant_t *g);

#endif
