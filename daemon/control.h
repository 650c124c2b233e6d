/* SPDX-License-Identifier: MIT
 *
 * control.h -- one client's control region, daemon side: a sealed memfd of
 * lease state words (common/ctlword.h) that the daemon maps and hands to the
 * client, plus the daemon's own record of which slot carries which
 * generation.
 */
#ifndef AD_CONTROL_H
#define AD_CONTROL_H

#include <stdbool.h>
#include <stdint.h>

typedef struct ad_control ad_control_t;

/* Creates a control region with `slots` words (1 .. AD_CONTROL_MAX_SLOTS):
 * a memfd sized for them, header written, sealed against shrinking, growing
 * and further sealing, mapped read/write. name is the memfd's name.
 * Returns 0 and *ret_control, or -EINVAL, -ENOMEM, -errno (memfd_create,
 * ftruncate, fcntl, mmap). */
int ad_control_new(uint32_t slots, const char *name, ad_control_t **ret_control);

#define AD_CONTROL_MAX_SLOTS (1u << 20)

/* Unmaps and closes the region; NULL-safe. A client that still maps it keeps
 * its own mapping. */
void ad_control_free(ad_control_t *control);

/* The memfd (owned by the region; dup it to keep it), or -1 once closed. */
int ad_control_fd(const ad_control_t *control);

/* Closes the memfd: once it is on its way to the client the daemon needs
 * only its mapping, and one fd per client is all a connection costs. */
void ad_control_close_fd(ad_control_t *control);

uint32_t ad_control_slots(const ad_control_t *control);

/* The bytes the client says its allocator holds live (the header's
 * live_bytes, common/ctlword.h; relaxed load), clamped to at_most -- the
 * client's leased bytes: the word is the client's to scribble on, so the
 * figure is for display and never drives a decision. 0 until the client
 * writes it. */
uint64_t ad_control_live_bytes(const ad_control_t *control, uint64_t at_most);

/* Takes a free slot for a new lease, gives it a generation it never had and
 * publishes ACTIVE (release). Returns 0, *ret_slot and *ret_generation, or
 * -ENOSPC (every slot is in use), -ENOMEM. */
int ad_control_acquire(ad_control_t *control, uint32_t *ret_slot, uint64_t *ret_generation);

/* The lease in slot (at generation, from the daemon's records) is gone
 * (released or reclaimed): the slot becomes free. When the word still names
 * this generation and is not RECLAIMED, FREE is stored (release), so a late
 * unpark of the old lease fails. Returns 0 or -EINVAL (slot not in use at
 * that generation: our bug). */
int ad_control_release(ad_control_t *control, uint32_t slot, uint64_t generation);

/* True when the word of slot says PARKED at generation (acquire load). */
bool ad_control_is_parked(const ad_control_t *control, uint32_t slot, uint64_t generation);

/* CAS PARKED -> RECLAIMED at generation (acq_rel). Returns true when the
 * daemon won: the lease is no longer the client's. The slot stays in use
 * until ad_control_release(). */
bool ad_control_reclaim(ad_control_t *control, uint32_t slot, uint64_t generation);

/* The word of slot as the client left it (tests and diagnostics). */
uint64_t ad_control_word(const ad_control_t *control, uint32_t slot);

#endif
