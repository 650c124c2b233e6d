/* SPDX-License-Identifier: MIT
 *
 * test_starve_daemon.c -- the daemon's no-starvation policy without sockets:
 * fair shares (fairshare.c), the control region (control.c), the event ring
 * (events.c) and the lease manager's reclaim, pressure and refusal rules
 * (lease.c) on real heaps and real memfds. The tests map a client's control
 * region themselves and move its state words as a client would, through
 * common/ctlword.h.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_main.h"
#include "config.h"
#include "control.h"
#include "ctlword.h"
#include "events.h"
#include "fairshare.h"
#include "lease.h"

#define MiB (1ull << 20)

/* ---- fair shares ------------------------------------------------------------ */

START_TEST(test_fair_equal_split)
{
    ad_fair_input_t in[3] = {{.demand = 100}, {.demand = 100}, {.demand = 100}};
    uint64_t out[3];
    ad_fairshare_compute(90, in, 3, out);
    for (int i = 0; i < 3; i++)
        ck_assert_uint_eq(out[i], 30);
}
END_TEST

START_TEST(test_fair_small_demand_gives_rest_to_others)
{
    /* Max-min: the small client gets all it asks, the rest share evenly. */
    ad_fair_input_t in[3] = {{.demand = 10}, {.demand = 100}, {.demand = 100}};
    uint64_t out[3];
    ad_fairshare_compute(90, in, 3, out);
    ck_assert_uint_eq(out[0], 10);
    ck_assert_uint_eq(out[1], 40);
    ck_assert_uint_eq(out[2], 40);
}
END_TEST

START_TEST(test_fair_weights_caps_guarantees)
{
    ad_fair_input_t in[3] = {
        {.demand = 100, .weight = 2}, {.demand = 100, .weight = 1}, {.demand = 100, .cap = 5}};
    uint64_t out[3];
    ad_fairshare_compute(95, in, 3, out);
    ck_assert_uint_eq(out[2], 5);
    ck_assert_uint_eq(out[0], 60);
    ck_assert_uint_eq(out[1], 30);
    ad_fair_input_t g[2] = {{.demand = 100, .guarantee = 70}, {.demand = 100}};
    ad_fairshare_compute(100, g, 2, out);
    ck_assert_uint_eq(out[0], 70);
    ck_assert_uint_eq(out[1], 30);
}
END_TEST

START_TEST(test_fair_fits_spare_split)
{
    /* Everything fits: demand plus the spare split by weight. */
    ad_fair_input_t in[3] = {{.demand = 10}, {.demand = 20}, {.demand = 0}};
    uint64_t out[3];
    ad_fairshare_compute(100, in, 3, out);
    ck_assert_uint_eq(out[0], 45);
    ck_assert_uint_eq(out[1], 55);
    ck_assert_uint_gt(out[2], 0);
    /* Never more than the cap. */
    ad_fair_input_t c[1] = {{.demand = 10, .cap = 12}};
    ad_fairshare_compute(100, c, 1, out);
    ck_assert_uint_eq(out[0], 12);
}
END_TEST

/* ---- the control region ----------------------------------------------------- */

static void *map_fd(int fd, size_t *ret_len)
{
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ck_assert_ptr_ne(p, MAP_FAILED);
    *ret_len = (size_t)st.st_size;
    return p;
}

START_TEST(test_control_region_sealed_and_headed)
{
    ad_control_t *c = NULL;
    ck_assert_int_eq(ad_control_new(0, "x", &c), -EINVAL);
    ck_assert_int_eq(ad_control_new(AD_CONTROL_MAX_SLOTS + 1, "x", &c), -EINVAL);
    ck_assert_int_eq(ad_control_new(8, "x", &c), 0);
    int fd = ad_control_fd(c);
    int seals = fcntl(fd, F_GET_SEALS);
    ck_assert_int_eq(seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
                     F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    ck_assert_int_eq(ftruncate(fd, 0), -1); /* a client cannot shrink it under us */
    size_t len;
    void *map = map_fd(fd, &len);
    const arena__ctlword_header_t *h = map;
    ck_assert_uint_eq(h->magic, ARENA__CTLWORD_MAGIC);
    ck_assert_uint_eq(h->version, ARENA__CTLWORD_VERSION);
    ck_assert_uint_eq(h->slots, 8);
    ck_assert_uint_ge(len, arena__ctlword_region_size(8));

    uint32_t slot[9];
    uint64_t gen[9];
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(ad_control_acquire(c, &slot[i], &gen[i]), 0);
        ck_assert_uint_eq(arena__ctlword_load_acquire(arena__ctlword_slot(map, slot[i])),
                          arena__ctlword_make(gen[i], ARENA__CTLWORD_ACTIVE));
    }
    ck_assert_int_eq(ad_control_acquire(c, &slot[8], &gen[8]), -ENOSPC);
    /* Reuse gives a new generation, and the old one's CAS fails. */
    ck_assert_int_eq(ad_control_release(c, slot[3], gen[3]), 0);
    ck_assert_int_eq(ad_control_release(c, slot[3], gen[3]), -EINVAL);
    ck_assert_uint_eq(arena__ctlword_load_acquire(arena__ctlword_slot(map, slot[3])),
                      arena__ctlword_make(gen[3], ARENA__CTLWORD_FREE));
    uint32_t s2;
    uint64_t g2;
    ck_assert_int_eq(ad_control_acquire(c, &s2, &g2), 0);
    ck_assert_uint_eq(s2, slot[3]);
    ck_assert_uint_ne(g2, gen[3]);
    ck_assert(!arena__ctlword_park_release(arena__ctlword_slot(map, s2), gen[3]));
    /* Park, reclaim: exactly one side wins. */
    ck_assert(arena__ctlword_park_release(arena__ctlword_slot(map, s2), g2));
    ck_assert(ad_control_is_parked(c, s2, g2));
    ck_assert(!ad_control_reclaim(c, s2, gen[3])); /* a stale generation */
    ck_assert(ad_control_reclaim(c, s2, g2));
    ck_assert(!arena__ctlword_unpark_acquire(arena__ctlword_slot(map, s2), g2));
    ck_assert(!ad_control_reclaim(c, s2, g2));
    /* Release keeps RECLAIMED so the client's unpark keeps failing. */
    ck_assert_int_eq(ad_control_release(c, s2, g2), 0);
    ck_assert_uint_eq(arena__ctlword_load_acquire(arena__ctlword_slot(map, s2)),
                      arena__ctlword_make(g2, ARENA__CTLWORD_RECLAIMED));
    /* A scribbled word is never taken for a parked lease. */
    atomic_store(arena__ctlword_slot(map, slot[0]),
                 arena__ctlword_make(gen[0] + 5, ARENA__CTLWORD_PARKED));
    ck_assert(!ad_control_is_parked(c, slot[0], gen[0]));
    ck_assert(!ad_control_reclaim(c, slot[0], gen[0]));
    ad_control_close_fd(c);
    ck_assert_int_eq(ad_control_fd(c), -1);
    ck_assert_int_eq(munmap(map, len), 0);
    ad_control_free(c);
    ad_control_free(NULL);
}
END_TEST

/* ---- the event ring ----------------------------------------------------------- */

START_TEST(test_events_ring_wraps_and_counts_drops)
{
    ad_events_t *e = NULL;
    ck_assert_int_eq(ad_events_new(4, &e), 0);
    ck_assert_uint_eq(ad_events_last_seq(e), 0);
    for (uint64_t i = 1; i <= 6; i++) {
        ad_event_t ev = {.kind = AD_EVENT_GRANT, .bytes = i};
        ck_assert_uint_eq(ad_events_add(e, &ev), i);
    }
    ad_event_t out[8];
    uint64_t dropped = 99;
    size_t n = ad_events_read(e, 0, out, 8, &dropped);
    ck_assert_uint_eq(n, 4);
    ck_assert_uint_eq(dropped, 2);
    ck_assert_uint_eq(out[0].seq, 3);
    ck_assert_uint_eq(out[0].bytes, 3);
    ck_assert_uint_eq(out[3].seq, 6);
    n = ad_events_read(e, 4, out, 1, &dropped);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(dropped, 0);
    ck_assert_uint_eq(out[0].seq, 5);
    ck_assert_uint_eq(ad_events_read(e, 6, out, 8, &dropped), 0);
    ck_assert_str_eq(ad_event_kind_name(AD_EVENT_REFUSE), "refuse");
    ad_events_free(e);
}
END_TEST

/* ---- the lease manager -------------------------------------------------------- */

static ad_leases_t *mgr;

typedef struct note_log {
    int reclaimed;
    int pressure;
    uint64_t last_client;
    uint64_t last_bytes;
} note_log_t;

static note_log_t notes;

static void on_note(void *ctx, void *data, const ad_leases_note_t *note)
{
    (void)ctx;
    ck_assert_ptr_eq(data, (void *)(uintptr_t)note->client_id);
    if (note->kind == AD_LEASES_NOTE_RECLAIMED)
        notes.reclaimed++;
    else
        notes.pressure++;
    notes.last_client = note->client_id;
    notes.last_bytes = note->bytes;
}

static void setup(void)
{
    ad_leases_config_t c = {.budget = 64 * MiB,
                            .heap_size = 128 * MiB,
                            .small_limit = 4 * MiB,
                            .decay_ms = 1000,
                            .max_leases_per_client = 100};
    ck_assert_int_eq(ad_leases_new(&c, &mgr), 0);
    ad_leases_set_notify(mgr, on_note, NULL);
    memset(&notes, 0, sizeof(notes));
}

static void teardown(void)
{
    ad_leases_free(mgr);
    mgr = NULL;
}

typedef struct cl {
    uint64_t id;
    void *map;
    size_t len;
} cl_t;

static cl_t client(pid_t pid)
{
    cl_t c = {0};
    ck_assert_int_eq(ad_leases_client_new(mgr, pid, 1000, 1000, "t", 0, &c.id), 0);
    ck_assert_int_eq(ad_leases_client_set_data(mgr, c.id, (void *)(uintptr_t)c.id), 0);
    int fd;
    uint32_t slots;
    ck_assert_int_eq(ad_leases_control_info(mgr, c.id, &fd, &slots), 0);
    ck_assert_uint_ge(slots, 100);
    c.map = map_fd(fd, &c.len);
    ad_leases_control_close_fd(mgr, c.id);
    return c;
}

static void client_done(cl_t *c)
{
    ck_assert_int_eq(munmap(c->map, c->len), 0);
}

static ad_lease_grant_t grant(const cl_t *c, uint64_t size)
{
    ad_lease_grant_t g;
    ck_assert_int_eq(ad_leases_grant(mgr, c->id, size, 1, &g), 0);
    ck_assert_uint_eq(arena__ctlword_load_acquire(arena__ctlword_slot(c->map, g.slot)),
                      arena__ctlword_make(g.generation, ARENA__CTLWORD_ACTIVE));
    return g;
}

static void park(const cl_t *c, const ad_lease_grant_t *g)
{
    ck_assert(arena__ctlword_park_release(arena__ctlword_slot(c->map, g->slot), g->generation));
}

static ad_client_view_t view(const cl_t *c)
{
    ad_client_view_t v;
    ck_assert_int_eq(ad_leases_client_view(mgr, c->id, &v), 0);
    return v;
}

/* Counts events of one kind, checking the no-starvation rule on refusals. */
static int events_of(ad_event_kind_t kind)
{
    ad_event_t ev[256];
    size_t n = ad_events_read(ad_leases_events(mgr), 0, ev, 256, NULL);
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        if (ev[i].kind == AD_EVENT_REFUSE && ev[i].leased + ev[i].bytes <= ev[i].fair_share)
            ck_assert_uint_eq(ev[i].reclaimable, 0);
        if (ev[i].kind == kind)
            count++;
    }
    return count;
}

START_TEST(test_parked_leases_reclaimed_for_a_starving_client)
{
    cl_t gen = client(10), sim = client(11);
    ad_lease_grant_t g[16];
    for (int i = 0; i < 16; i++)
        g[i] = grant(&gen, 4 * MiB);
    /* Only parked leases can go: park half. */
    for (int i = 0; i < 8; i++)
        park(&gen, &g[i]);
    ck_assert_uint_eq(view(&gen).parked_bytes, 32 * MiB);
    ad_lease_grant_t s;
    ck_assert_int_eq(ad_leases_grant(mgr, sim.id, 24 * MiB, 2, &s), 0);
    ck_assert_uint_eq(view(&gen).leased_bytes, 40 * MiB);
    ck_assert_uint_eq(view(&gen).parked_bytes, 8 * MiB);
    ck_assert_int_eq(notes.reclaimed, 6);
    ck_assert_uint_eq(notes.last_client, gen.id);
    ck_assert_int_eq(events_of(AD_EVENT_RECLAIM), 6);
    /* The reclaimed words say RECLAIMED: the client's unpark fails. */
    int lost = 0;
    for (int i = 0; i < 8; i++) {
        if (!arena__ctlword_unpark_acquire(arena__ctlword_slot(gen.map, g[i].slot),
                                           g[i].generation))
            lost++;
    }
    ck_assert_int_eq(lost, 6);
    /* A reclaimed lease is no longer the client's to release. */
    ck_assert_int_eq(ad_leases_release(mgr, gen.id, g[0].lease_id, 3), -ENOENT);
    ck_assert(ad_leases_is_valid(mgr));
    client_done(&gen);
    client_done(&sim);
}
END_TEST

/* The pool heap of a client, mapped whole (a test plays both clients). */
static unsigned char *map_pool(const cl_t *c, size_t *ret_len)
{
    ad_pool_info_t pi;
    ck_assert_int_eq(ad_leases_pool_info(mgr, c->id, &pi), 0);
    unsigned char *p =
        mmap(NULL, (size_t)pi.heap_size, PROT_READ | PROT_WRITE, MAP_SHARED, pi.fd, 0);
    ck_assert_ptr_ne(p, MAP_FAILED);
    *ret_len = (size_t)pi.heap_size;
    return p;
}

static uint64_t resident(const cl_t *c)
{
    ad_pool_info_t pi;
    struct stat st;
    ck_assert_int_eq(ad_leases_pool_info(mgr, c->id, &pi), 0);
    ck_assert_int_eq(fstat(pi.fd, &st), 0);
    return (uint64_t)st.st_blocks * 512;
}

/* A starving request moves the budget, not the pages: it is granted clean
 * space at once, and the reclaimed, touched extent is punched afterwards by
 * the purge, a slice at a time (bench-reclaim measures the difference). */
START_TEST(test_reclaim_grants_clean_space_and_punches_after)
{
    cl_t gen = client(10), sim = client(11);
    size_t plen;
    unsigned char *pool = map_pool(&gen, &plen);
    ad_lease_grant_t g[16];
    for (int i = 0; i < 16; i++) {
        g[i] = grant(&gen, 4 * MiB);
        memset(pool + g[i].offset, 0x5a, g[i].size);
        park(&gen, &g[i]);
    }
    ck_assert_uint_ge(resident(&gen), 64 * MiB);
    ad_lease_grant_t s;
    ck_assert_int_eq(ad_leases_grant(mgr, sim.id, 4 * MiB, 2, &s), 0);
    ck_assert_int_eq(notes.reclaimed, 1);
    ck_assert(s.zeroed);
    /* Clean space: no reclaimed extent overlaps the grant, and nothing was
     * punched on the way (the generator's pages are all still there). */
    for (int i = 0; i < 16; i++)
        ck_assert(s.offset + s.size <= g[i].offset || s.offset >= g[i].offset + g[i].size);
    ck_assert_uint_ge(resident(&gen), 64 * MiB);
    ad_leases_stats_t st;
    ad_leases_stats(mgr, &st);
    ck_assert_uint_eq(st.dirty_bytes, 4 * MiB);
    ck_assert_uint_eq(st.leased_bytes, 64 * MiB);
    /* The purge is due now and punches 512 KiB per call, 1 ms apart. */
    ck_assert_uint_le(ad_leases_next_purge_ms(mgr), 2);
    uint64_t now = 2, punched = 0;
    int calls = 0;
    while (ad_leases_next_purge_ms(mgr) <= now + 1 && calls < 100) {
        now = ad_leases_next_purge_ms(mgr) > now ? ad_leases_next_purge_ms(mgr) : now;
        uint64_t p = ad_leases_purge(mgr, now);
        ck_assert_uint_le(p, 512 * 1024);
        punched += p;
        calls++;
    }
    ck_assert_uint_eq(punched, 4 * MiB);
    ck_assert_int_eq(calls, 8);
    ck_assert_uint_lt(resident(&gen), 61 * MiB);
    ad_leases_stats(mgr, &st);
    ck_assert_uint_eq(st.dirty_bytes, 0);
    /* Whichever lease went, its pages read zero now. */
    int zero = 0;
    for (int i = 0; i < 16; i++)
        zero += pool[g[i].offset] == 0 && pool[g[i].offset + g[i].size - 1] == 0;
    ck_assert_int_eq(zero, 1);
    ck_assert(ad_leases_is_valid(mgr));
    (void)munmap(pool, plen);
    client_done(&gen);
    client_done(&sim);
}
END_TEST

/* With no clean space in the heap, the grant lands on the reclaimed pages and
 * they are punched before the new owner gets them: never another's data. */
START_TEST(test_reclaim_without_clean_space_punches_first)
{
    ad_leases_free(mgr);
    ad_leases_config_t c = {.budget = 16 * MiB,
                            .heap_size = 16 * MiB,
                            .small_limit = 4 * MiB,
                            .decay_ms = 1000,
                            .max_leases_per_client = 100};
    ck_assert_int_eq(ad_leases_new(&c, &mgr), 0);
    ad_leases_set_notify(mgr, on_note, NULL);
    cl_t gen = client(10), sim = client(11);
    size_t plen;
    unsigned char *pool = map_pool(&gen, &plen);
    ad_lease_grant_t g[4];
    for (int i = 0; i < 4; i++) {
        g[i] = grant(&gen, 4 * MiB);
        memset(pool + g[i].offset, 0xa5, g[i].size);
        park(&gen, &g[i]);
    }
    ad_lease_grant_t s;
    ck_assert_int_eq(ad_leases_grant(mgr, sim.id, 4 * MiB, 2, &s), 0);
    ck_assert(s.zeroed);
    /* Blocks first: reading a hole through a shared mapping allocates it. */
    ck_assert_uint_le(resident(&gen), 12 * MiB);
    for (uint64_t off = 0; off < s.size; off += 4096)
        ck_assert_uint_eq(pool[s.offset + off], 0);
    ck_assert(ad_leases_is_valid(mgr));
    /* The admin's reclaim punches at once: nothing stays dirty. */
    ck_assert_int_eq(ad_leases_reclaim_parked(mgr, gen.id, 0, 3), 12 * MiB);
    ad_leases_stats_t st;
    ad_leases_stats(mgr, &st);
    ck_assert_uint_eq(st.dirty_bytes, 0);
    ck_assert_uint_le(resident(&gen), 4 * MiB);
    (void)munmap(pool, plen);
    client_done(&gen);
    client_done(&sim);
}
END_TEST

START_TEST(test_reclaim_order_furthest_above_share_first)
{
    cl_t a = client(10), b = client(11), c = client(12);
    ad_lease_grant_t ga[10], gb[4];
    for (int i = 0; i < 10; i++) {
        ga[i] = grant(&a, 4 * MiB);
        park(&a, &ga[i]);
    }
    for (int i = 0; i < 4; i++) {
        gb[i] = grant(&b, 4 * MiB);
        park(&b, &gb[i]);
    }
    ad_lease_grant_t s;
    /* 8 MiB free; c asks for 16: a (40 MiB) is far above its share. */
    ck_assert_int_eq(ad_leases_grant(mgr, c.id, 16 * MiB, 2, &s), 0);
    ck_assert_uint_eq(view(&b).leased_bytes, 16 * MiB);
    ck_assert_uint_eq(view(&a).leased_bytes, 32 * MiB);
    /* admin reclaim of one client takes all its parked leases. */
    ck_assert_int_eq(ad_leases_reclaim_parked(mgr, b.id, 0, 3), (int64_t)(16 * MiB));
    ck_assert_uint_eq(view(&b).leased_bytes, 0);
    ck_assert_int_eq(ad_leases_reclaim_parked(mgr, 999, 0, 3), -ENOENT);
    ck_assert(ad_leases_is_valid(mgr));
    client_done(&a);
    client_done(&b);
    client_done(&c);
}
END_TEST

START_TEST(test_busy_client_gets_pressure_then_waiter_served)
{
    cl_t a = client(10), b = client(11);
    ad_lease_grant_t ga[14];
    for (int i = 0; i < 14; i++)
        ga[i] = grant(&a, 4 * MiB);
    ad_lease_grant_t s;
    int r = ad_leases_request(mgr, b.id, 24 * MiB, 1000, &b, 7, 5, &s);
    ck_assert_int_eq(r, 1); /* queued */
    ck_assert_int_eq(notes.pressure, 1);
    ck_assert_uint_eq(notes.last_client, a.id);
    ck_assert_uint_gt(notes.last_bytes, 0);
    ck_assert_uint_eq(view(&b).waiting, 1);
    ck_assert_uint_eq(view(&b).waiting_bytes, 24 * MiB);
    ck_assert_int_eq(events_of(AD_EVENT_QUEUE), 1);
    /* Nothing freed: the queue stays blocked and retries with pressure. */
    ck_assert_uint_eq(ad_leases_serve_waiters(mgr, 6, NULL, NULL), 0);
    ck_assert_uint_le(ad_leases_next_deadline(mgr), 6 + 100);
    ck_assert_uint_eq(ad_leases_serve_waiters(mgr, 200, NULL, NULL), 0);
    ck_assert_int_eq(notes.pressure, 2);
    /* a trims: the waiter is served. */
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(ad_leases_release(mgr, a.id, ga[i].lease_id, 300), 0);
    ck_assert_uint_eq(ad_leases_serve_waiters(mgr, 300, NULL, NULL), 1);
    ck_assert_uint_eq(view(&b).leased_bytes, 24 * MiB);
    ck_assert_uint_eq(view(&b).waiting, 0);
    ck_assert(ad_leases_is_valid(mgr));
    client_done(&a);
    client_done(&b);
}
END_TEST

static int waiter_result;

static void on_waiter(void *ctx, void *owner, uint64_t request_id, uint64_t size, int result,
                      const ad_lease_grant_t *g)
{
    (void)ctx;
    (void)owner;
    (void)request_id;
    (void)size;
    (void)g;
    waiter_result = result;
}

START_TEST(test_refusal_at_deadline_records_no_reclaimable)
{
    cl_t a = client(10), b = client(11);
    for (int i = 0; i < 16; i++)
        (void)grant(&a, 4 * MiB);
    ad_lease_grant_t s;
    ck_assert_int_eq(ad_leases_request(mgr, b.id, 8 * MiB, 100, &b, 1, 5, &s), 1);
    waiter_result = 1;
    ck_assert_uint_eq(ad_leases_serve_waiters(mgr, 100, on_waiter, NULL), 1);
    ck_assert_int_eq(waiter_result, -ETIMEDOUT);
    ck_assert_int_eq(events_of(AD_EVENT_REFUSE), 1);
    /* No wait: refused at once, the event names the share and no parked bytes. */
    ck_assert_int_eq(ad_leases_grant(mgr, b.id, 8 * MiB, 101, &s), -ENOMEM);
    ad_event_t ev[64];
    size_t n = ad_events_read(ad_leases_events(mgr), 0, ev, 64, NULL);
    ck_assert_uint_gt(n, 0);
    ck_assert_uint_eq(ev[n - 1].kind, AD_EVENT_REFUSE);
    ck_assert_uint_eq(ev[n - 1].client_id, b.id);
    ck_assert_uint_eq(ev[n - 1].reclaimable, 0);
    ck_assert_uint_ge(ev[n - 1].fair_share, 8 * MiB);
    ck_assert_int_eq(events_of(AD_EVENT_REFUSE), 2);
    client_done(&a);
    client_done(&b);
}
END_TEST

START_TEST(test_disconnect_with_parked_leases)
{
    cl_t a = client(10);
    ad_lease_grant_t g = grant(&a, 4 * MiB);
    park(&a, &g);
    ck_assert_uint_eq(view(&a).parked_bytes, 4 * MiB);
    ad_leases_stats_t st;
    ad_leases_stats(mgr, &st);
    ck_assert_uint_eq(st.parked_bytes, 4 * MiB);
    client_done(&a);
    ck_assert_int_eq(ad_leases_client_free(mgr, a.id, 2, true), 1);
    ad_leases_stats(mgr, &st);
    ck_assert_uint_eq(st.parked_bytes, 0);
    ck_assert_uint_eq(st.leased_bytes, 0);
    ck_assert(ad_leases_is_valid(mgr));
}
END_TEST

START_TEST(test_fair_rules_cap)
{
    ad_leases_free(mgr);
    ad_fair_rule_t rules[1] = {{.uid = 1000, .weight = 3, .cap = 8 * MiB}};
    ad_leases_config_t c = {.budget = 64 * MiB,
                            .heap_size = 128 * MiB,
                            .small_limit = 4 * MiB,
                            .decay_ms = 1000,
                            .fair_rules = rules,
                            .fair_rule_count = 1};
    ck_assert_int_eq(ad_leases_new(&c, &mgr), 0);
    cl_t a = client(10);
    ck_assert_uint_eq(view(&a).weight, 3);
    (void)grant(&a, 8 * MiB);
    ad_lease_grant_t g;
    ck_assert_int_eq(ad_leases_grant(mgr, a.id, 4096, 2, &g), -EDQUOT);
    ck_assert_int_eq(ad_leases_grant(mgr, a.id, 16 * MiB, 2, &g), -E2BIG);
    client_done(&a);
}
END_TEST

START_TEST(test_config_fair_keys)
{
    ad_config_t cfg;
    ad_config_defaults(&cfg);
    char err[AD_CONFIG_ERR_MAX];
    ck_assert_int_eq(ad_config_set(&cfg, "weight.1000", "3", err, sizeof(err)), 0);
    ck_assert_int_eq(ad_config_set(&cfg, "cap.1000", "8M", err, sizeof(err)), 0);
    ck_assert_int_eq(ad_config_set(&cfg, "guarantee.42", "1G", err, sizeof(err)), 0);
    ck_assert_uint_eq(cfg.fair_count, 2);
    ck_assert_uint_eq(cfg.fair[0].uid, 1000);
    ck_assert_uint_eq(cfg.fair[0].weight, 3);
    ck_assert_uint_eq(cfg.fair[0].cap, 8 * MiB);
    ck_assert_uint_eq(cfg.fair[1].guarantee, 1024 * MiB);
    ck_assert_int_eq(ad_config_set(&cfg, "weight.1000", "0", err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(ad_config_set(&cfg, "weight.x", "2", err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(ad_config_set(&cfg, "weight.", "2", err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(ad_config_set(&cfg, "cap.5", "lots", err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(ad_config_set(&cfg, "bogus.5", "1", err, sizeof(err)), -ENOENT);
    ck_assert_uint_eq(cfg.fair_count, 2); /* failures change nothing */
    ck_assert_uint_eq(cfg.fair[0].weight, 3);
}
END_TEST

static Suite *starve_suite(void)
{
    Suite *s = suite_create("starve_daemon");
    TCase *fair = tcase_create("fairshare");
    tcase_set_timeout(fair, 30);
    tcase_add_test(fair, test_fair_equal_split);
    tcase_add_test(fair, test_fair_small_demand_gives_rest_to_others);
    tcase_add_test(fair, test_fair_weights_caps_guarantees);
    tcase_add_test(fair, test_fair_fits_spare_split);
    tcase_add_test(fair, test_config_fair_keys);
    suite_add_tcase(s, fair);
    TCase *ctl = tcase_create("control");
    tcase_set_timeout(ctl, 30);
    tcase_add_test(ctl, test_control_region_sealed_and_headed);
    tcase_add_test(ctl, test_events_ring_wraps_and_counts_drops);
    suite_add_tcase(s, ctl);
    TCase *lm = tcase_create("policy");
    tcase_set_timeout(lm, 30);
    tcase_add_checked_fixture(lm, setup, teardown);
    tcase_add_test(lm, test_parked_leases_reclaimed_for_a_starving_client);
    tcase_add_test(lm, test_reclaim_grants_clean_space_and_punches_after);
    tcase_add_test(lm, test_reclaim_without_clean_space_punches_first);
    tcase_add_test(lm, test_reclaim_order_furthest_above_share_first);
    tcase_add_test(lm, test_busy_client_gets_pressure_then_waiter_served);
    tcase_add_test(lm, test_refusal_at_deadline_records_no_reclaimable);
    tcase_add_test(lm, test_disconnect_with_parked_leases);
    tcase_add_test(lm, test_fair_rules_cap);
    suite_add_tcase(s, lm);
    return s;
}

ARENA_TEST_MAIN(starve_suite)
