/* SPDX-License-Identifier: MIT
 *
 * fairshare.h -- max-min fair shares of the budget, with weights, caps and
 * guarantees. A pure function: no daemon state.
 */
#ifndef AD_FAIRSHARE_H
#define AD_FAIRSHARE_H

#include <stddef.h>
#include <stdint.h>

typedef struct ad_fair_input {
    uint64_t demand;    /* bytes held plus bytes asked for; 0: not active */
    uint32_t weight;    /* 0 counts as 1 */
    uint64_t cap;       /* the most this client may be given; 0: none */
    uint64_t guarantee; /* a share of at least this much (up to its demand) */
} ad_fair_input_t;

/* Computes every client's fair share of budget into out[0..n).
 *
 * When the demands (each cut to its cap) fit in the budget, every client's
 * share is its demand plus the spare budget split by weight: what it could
 * still take without anyone else going short. Otherwise the shares are
 * max-min fair: a water level L is raised until the budget is used, and
 * client i gets min(demand_i, max(guarantee_i, weight_i * L)); no client can
 * get more without taking from one that has less per unit of weight.
 * Clients with demand 0 get a share as if they asked for one byte more than
 * nothing: weight_i * L (what they would get if they asked now).
 * Guarantees that together pass the budget are honoured as given (the sum of
 * shares may then pass it). */
void ad_fairshare_compute(uint64_t budget, const ad_fair_input_t *in, size_t n, uint64_t *out);

#endif
