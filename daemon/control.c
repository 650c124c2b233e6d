/* SPDX-License-Identifier: MIT
 *
 * control.c -- a client's control region, daemon side (DESIGN.md section 5).
 *
 * The region is a memfd the daemon creates, sizes, seals (SHRINK, GROW and
 * SEAL, so the client can neither truncate it under the daemon -- which would
 * raise SIGBUS in the loop -- nor lift the seals) and maps; the client maps
 * the same fd. It holds one 64-bit state word per slot; the encoding and the
 * orderings of every move live in common/ctlword.h and are used, not
 * repeated, here.
 *
 * Trust: the client may write anything into its region. The daemon keeps
 * which slots are in use and each slot's current generation in its own
 * memory and only ever reads a word to compare it against those records, by
 * a single atomic load or CAS; a scribbled word makes a CAS fail (the lease
 * is then treated as in use) and never changes the daemon's bookkeeping.
 * Generations are daemon-chosen and only grow per slot, so a client's late
 * CAS on a reused slot names an old generation and fails. The header's
 * live_bytes word is the client's to write too: the daemon reads it for
 * display only, clamped to the bytes the client leases.
 *
 * Loop thread only. The in-use array and the free stack grow on demand, so
 * a client with few leases costs a few bytes whatever max_leases_per_client
 * says; the memfd is sparse and touched pages only are resident.
 */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ctlword.h"
#include "memfd.h"

struct ad_control {
    int fd;
    void *map;
    size_t map_len;
    uint32_t slots;
    uint32_t used_hwm;     /* slots [0, used_hwm) have been handed out at least once */
    uint64_t *generations; /* per slot below used_hwm: its current generation */
    uint8_t *in_use;       /* per slot below used_hwm */
    uint32_t cap;          /* room in generations / in_use */
    uint32_t *free_stack;  /* released slots below used_hwm */
    uint32_t free_count;
    uint32_t free_cap;
};

int ad_control_new(uint32_t slots, const char *name, ad_control_t **ret_control)
{
    if (slots == 0 || slots > AD_CONTROL_MAX_SLOTS || !ret_control)
        return -EINVAL;
    ad_control_t *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    c->map_len = (size_t)((arena__ctlword_region_size(slots) + page - 1) & ~(uint64_t)(page - 1));
    int r = ad_memfd_sealed(name ? name : "arenad-control", c->map_len, &c->fd, &c->map);
    if (r < 0) {
        free(c);
        return r;
    }
    arena__ctlword_header_t *h = c->map;
    h->magic = ARENA__CTLWORD_MAGIC;
    h->version = ARENA__CTLWORD_VERSION;
    h->slots = slots;
    c->slots = slots;
    *ret_control = c;
    return 0;
}

void ad_control_free(ad_control_t *c)
{
    if (!c)
        return;
    (void)munmap(c->map, c->map_len);
    if (c->fd >= 0)
        (void)close(c->fd);
    free(c->generations);
    free(c->in_use);
    free(c->free_stack);
    free(c);
}

int ad_control_fd(const ad_control_t *c)
{
    return c->fd;
}

void ad_control_close_fd(ad_control_t *c)
{
    if (c->fd >= 0)
        (void)close(c->fd);
    c->fd = -1;
}

uint32_t ad_control_slots(const ad_control_t *c)
{
    return c->slots;
}

uint64_t ad_control_live_bytes(const ad_control_t *c, uint64_t at_most)
{
    /* One relaxed load of a word only the client writes: whatever it holds,
     * it is a number to show, cut to what the daemon knows is leased. */
    uint64_t live = arena__ctlword_read_live(c->map);
    return live < at_most ? live : at_most;
}

static _Atomic uint64_t *control_word(const ad_control_t *c, uint32_t slot)
{
    return arena__ctlword_slot(c->map, slot);
}

/* Grows the per-slot arrays so that slot `need - 1` fits. */
static int control_reserve(ad_control_t *c, uint32_t need)
{
    if (need <= c->cap)
        return 0;
    uint32_t cap = c->cap ? c->cap : 64;
    while (cap < need)
        cap = cap > c->slots / 2 ? c->slots : cap * 2;
    uint64_t *g = realloc(c->generations, (size_t)cap * sizeof(*g));
    if (!g)
        return -ENOMEM;
    c->generations = g;
    uint8_t *u = realloc(c->in_use, cap);
    if (!u)
        return -ENOMEM;
    memset(u + c->cap, 0, cap - c->cap);
    memset(g + c->cap, 0, (size_t)(cap - c->cap) * sizeof(*g));
    c->in_use = u;
    c->cap = cap;
    return 0;
}

int ad_control_acquire(ad_control_t *c, uint32_t *ret_slot, uint64_t *ret_generation)
{
    uint32_t slot;
    if (c->free_count > 0) {
        slot = c->free_stack[--c->free_count];
    } else {
        if (c->used_hwm >= c->slots)
            return -ENOSPC;
        int r = control_reserve(c, c->used_hwm + 1);
        if (r < 0)
            return r;
        slot = c->used_hwm++;
    }
    /* Generation 0 is never handed out, so a zeroed word is no lease's. */
    uint64_t gen = c->generations[slot] + 1;
    if (gen > (UINT64_MAX >> 2))
        gen = 1; /* after 2^62 reuses of one slot; unreachable in practice */
    c->generations[slot] = gen;
    c->in_use[slot] = 1;
    arena__ctlword_store_active_release(control_word(c, slot), gen);
    *ret_slot = slot;
    *ret_generation = gen;
    return 0;
}

int ad_control_release(ad_control_t *c, uint32_t slot, uint64_t generation)
{
    if (slot >= c->used_hwm || !c->in_use[slot] || c->generations[slot] != generation)
        return -EINVAL;
    if (c->free_count == c->free_cap) {
        uint32_t cap = c->free_cap ? c->free_cap * 2 : 64;
        uint32_t *s = realloc(c->free_stack, (size_t)cap * sizeof(*s));
        if (!s)
            return -ENOMEM;
        c->free_stack = s;
        c->free_cap = cap;
    }
    _Atomic uint64_t *w = control_word(c, slot);
    uint64_t word = arena__ctlword_load_acquire(w);
    /* A RECLAIMED word stays as it is: the client's unpark must see it. Any
     * other word of this generation becomes FREE. A word of another
     * generation is a scribble: overwrite it too, the slot is ours. */
    if (!(arena__ctlword_generation_of(word) == generation &&
          arena__ctlword_state_of(word) == ARENA__CTLWORD_RECLAIMED))
        arena__ctlword_store_free_release(w, generation);
    c->in_use[slot] = 0;
    c->free_stack[c->free_count++] = slot;
    return 0;
}

bool ad_control_is_parked(const ad_control_t *c, uint32_t slot, uint64_t generation)
{
    if (slot >= c->used_hwm || !c->in_use[slot] || c->generations[slot] != generation)
        return false;
    return arena__ctlword_load_acquire(control_word(c, slot)) ==
           arena__ctlword_make(generation, ARENA__CTLWORD_PARKED);
}

bool ad_control_reclaim(ad_control_t *c, uint32_t slot, uint64_t generation)
{
    if (slot >= c->used_hwm || !c->in_use[slot] || c->generations[slot] != generation)
        return false;
    return arena__ctlword_reclaim_acq_rel(control_word(c, slot), generation);
}

uint64_t ad_control_word(const ad_control_t *c, uint32_t slot)
{
    if (slot >= c->slots)
        return 0;
    return arena__ctlword_load_acquire(control_word(c, slot));
}
