/* SPDX-License-Identifier: MIT
 *
 * fairshare.c -- max-min fair shares by water filling.
 *
 * The level L (bytes per unit of weight) is found by binary search over the
 * integers: f(L) = sum over active clients of min(d_i, max(g_i, w_i * L)) is
 * non-decreasing in L, and the largest L with f(L) <= budget is the fair
 * level. Sixty-four halvings of the range at O(n) each keep this cheap enough
 * to run on every refused request, with the dozens of clients one machine
 * has. Inactive clients (demand 0) take no part in the level; their reported
 * share is what they would get at it. Pure function; any thread.
 */
#include "fairshare.h"

static uint64_t fair_weight(const ad_fair_input_t *c)
{
    return c->weight ? c->weight : 1;
}

static uint64_t fair_demand(const ad_fair_input_t *c)
{
    return (c->cap && c->demand > c->cap) ? c->cap : c->demand;
}

static uint64_t fair_mul_sat(uint64_t a, uint64_t b)
{
    if (a != 0 && b > UINT64_MAX / a)
        return UINT64_MAX;
    return a * b;
}

static uint64_t fair_at(const ad_fair_input_t *c, uint64_t level)
{
    uint64_t d = fair_demand(c);
    uint64_t s = fair_mul_sat(fair_weight(c), level);
    if (s < c->guarantee)
        s = c->guarantee;
    return s < d ? s : d;
}

static uint64_t fair_total(const ad_fair_input_t *in, size_t n, uint64_t level)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i].demand == 0)
            continue;
        uint64_t v = fair_at(&in[i], level);
        sum = sum > UINT64_MAX - v ? UINT64_MAX : sum + v;
    }
    return sum;
}

void ad_fairshare_compute(uint64_t budget, const ad_fair_input_t *in, size_t n, uint64_t *out)
{
    uint64_t demand = 0, weights = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t d = fair_demand(&in[i]);
        demand = demand > UINT64_MAX - d ? UINT64_MAX : demand + d;
        if (in[i].demand > 0)
            weights += fair_weight(&in[i]);
    }
    if (demand <= budget) {
        uint64_t spare = budget - demand;
        uint64_t w = weights ? weights : 1;
        for (size_t i = 0; i < n; i++) {
            uint64_t extra = spare / w * fair_weight(&in[i]);
            uint64_t s = fair_demand(&in[i]) + (in[i].demand ? extra : spare / (w + 1));
            if (in[i].cap && s > in[i].cap)
                s = in[i].cap;
            out[i] = s;
        }
        return;
    }
    uint64_t lo = 0, hi = budget;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo + 1) / 2;
        if (fair_total(in, n, mid) <= budget)
            lo = mid;
        else
            hi = mid - 1;
    }
    for (size_t i = 0; i < n; i++) {
        if (in[i].demand > 0) {
            out[i] = fair_at(&in[i], lo);
        } else {
            uint64_t s = fair_mul_sat(fair_weight(&in[i]), lo);
            if (s < in[i].guarantee)
                s = in[i].guarantee;
            out[i] = (in[i].cap && s > in[i].cap) ? in[i].cap : s;
        }
    }
}
