/* SPDX-License-Identifier: MIT
 *
 * test_pool_park.c -- the allocator parks empty segments instead of
 * releasing them (so the daemon can take them without the client's help),
 * and publishes its live bytes.
 *
 * Every test runs against a real arenad (tests/lib/daemon.h: a
 * daemon on a temporary socket per test, started by the checked fixture in
 * the test's own process, always stopped by the teardown, and killed by the
 * kernel through PR_SET_PDEATHSIG if the test process dies first).
 * ARENA_FALLBACK is unset: nothing here silently runs on anonymous memory.
 *
 * What is checked, always through the daemon's own view (the admin
 * listings) as well as the library's:
 *   - freeing everything parks the leases (the daemon lists them PARKED, its
 *     leased bytes do not move); allocating again unparks the same lease ids
 *     and the daemon grants nothing new;
 *   - a parked lease the daemon reclaims is never reused: the next malloc
 *     gets a fresh lease and works;
 *   - a lease released behind the cache's back (the default trim of the
 *     connection layer) is dropped from the cache, not reused;
 *   - the spare empty segment is parked by the purge tick after the decay
 *     time; the cache is bounded (beyond it, segments are released);
 *   - segments parked at once by free keep their pages until arena_trim()
 *     or the decay time purges them in place (still parked, same leases);
 *   - arena__region_park_release() (what pressure does) gives the daemon
 *     everything parked;
 *   - a fork child never touches the parent's parked leases, and does not
 *     write its live bytes into the parent's control region;
 *   - the live bytes the control region header says (and the daemon's client
 *     listing shows) are arena_stats()'s;
 *   - threads parking and unparking through the one cache at once, while
 *     the pressure path releases it (also under TSan, smaller).
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "admin.h"
#include "arena.h"
#include "conn.h"
#include "ctlword.h"
#include "fixture.h"
#include "alloc/internal.h"

#define MiB ((size_t)1 << 20)
/* A large object that lives in a segment's spans (huge objects above
 * ARENA__LARGE_MAX get regions of their own). */
#define SPAN_OBJ (ARENA__LARGE_MAX / 2)
#define SEG      ARENA__SEGMENT_SIZE
#define OBJ      4000
#define MAX_IDS  256

static arena_test_daemon_t daemon_;

/* Every test gets a daemon with a 256 MiB budget (the shared fixture). These
 * cases watch the client's own parking and decay over more than the
 * daemon's parked decay (parked_decay_ms, 1 s by default), which would take
 * the parked leases first: it is off here (test_parked_decay tests it). */
static const char *const daemon_args[] = {"--budget", "256M", NULL};
static const char daemon_config[] = "parked_decay_ms = 0\n";

/* What the daemon says about one client's leases. */
typedef struct view {
    uint64_t leased;  /* bytes */
    uint32_t active;  /* leases not parked */
    uint32_t parked;  /* leases parked */
    uint64_t granted; /* daemon-wide leases_granted_total */
    size_t nids;
    uint64_t ids[MAX_IDS]; /* the client's lease ids */
    bool id_parked[MAX_IDS];
} view_t;

/* The daemon's client id of process pid, or 0. */
static uint64_t client_of(arena_conn_t *c, pid_t pid)
{
    arena__admin_clients_t *cl = NULL;
    ck_assert_int_eq(arena__admin_clients(c, &cl), 0);
    uint64_t id = 0;
    for (size_t i = 0; i < cl->count; i++) {
        /* The admin connection is a client of its own, with no leases. */
        if (cl->items[i].pid == (uint32_t)pid && cl->items[i].leases > 0) {
            id = cl->items[i].client_id;
        }
    }
    arena__admin_clients_free(cl);
    return id;
}

/* The daemon's view of process pid's leases (an admin connection of its
 * own, closed again, so it leaves no control region mapped). */
static view_t view_of(pid_t pid)
{
    view_t v;
    memset(&v, 0, sizeof(v));
    arena_conn_t *c = NULL;
    ck_assert_int_eq(arena_connect(daemon_.socket, &c), 0);
    arena__admin_status_t st;
    ck_assert_int_eq(arena__admin_status(c, &st), 0);
    v.granted = st.leases_granted_total;
    uint64_t id = client_of(c, pid);
    if (id != 0) {
        arena__admin_leases_t *ls = NULL;
        ck_assert_int_eq(arena__admin_leases(c, id, &ls), 0);
        for (size_t i = 0; i < ls->count; i++) {
            const arena__admin_lease_t *l = &ls->items[i];
            v.leased += l->size;
            if (l->parked) {
                v.parked++;
            } else {
                v.active++;
            }
            if (v.nids < MAX_IDS) {
                v.id_parked[v.nids] = l->parked;
                v.ids[v.nids++] = l->lease_id;
            }
        }
        arena__admin_leases_free(ls);
    }
    arena_disconnect(c);
    return v;
}

static view_t view_self(void)
{
    return view_of(getpid());
}

static bool has_id(const view_t *v, uint64_t id)
{
    for (size_t i = 0; i < v->nids; i++) {
        if (v->ids[i] == id) {
            return true;
        }
    }
    return false;
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i += 97) {
        p[i] = (unsigned char)(seed + i);
    }
}

static bool check_fill(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i += 97) {
        if (p[i] != (unsigned char)(seed + i)) {
            return false;
        }
    }
    return true;
}

/* count objects of OBJ bytes, filled; false when one failed. */
static bool alloc_many(void **objs, size_t count, unsigned seed)
{
    for (size_t i = 0; i < count; i++) {
        objs[i] = arena_malloc(OBJ);
        if (objs[i] == NULL) {
            return false;
        }
        fill(objs[i], OBJ, seed + (unsigned)i);
    }
    return true;
}

static bool check_many(void **objs, size_t count, unsigned seed)
{
    for (size_t i = 0; i < count; i++) {
        if (!check_fill(objs[i], OBJ, seed + (unsigned)i)) {
            return false;
        }
    }
    return true;
}

static void free_many(void **objs, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        arena_free(objs[i]);
        objs[i] = NULL;
    }
}

#define NOBJ 4000 /* ~16 MB of 4000-byte objects: 4 to 5 segments */
static void *objs[NOBJ * 10];

/* ---- parking and reuse ------------------------------------------------------- */

START_TEST(test_free_parks_then_reuses)
{
    ck_assert(alloc_many(objs, NOBJ, 1));
    view_t full = view_self();
    ck_assert_uint_ge(full.active, 4);
    ck_assert_uint_eq(full.parked, 0);
    arena_stats_t st;
    ck_assert_int_eq(arena_stats(&st), 0);
    ck_assert_uint_eq(full.leased, st.leased_bytes);

    /* Freeing everything parks all but one spare at once, without a call
     * to the daemon; arena_trim() parks the spare too. */
    free_many(objs, NOBJ);
    view_t freed = view_self();
    ck_assert_uint_eq(freed.leased, full.leased); /* nothing released */
    ck_assert_uint_eq(freed.granted, full.granted);
    ck_assert_uint_ge(freed.parked, full.active - 2);
    ck_assert_int_ge(arena_trim(), 0);
    view_t trimmed = view_self();
    ck_assert_uint_eq(trimmed.leased, full.leased);
    ck_assert_uint_eq(trimmed.active, 0);
    ck_assert_uint_eq(trimmed.parked, full.active);
    ck_assert_int_eq(arena_stats(&st), 0);
    ck_assert_uint_eq(st.lease_count, 0);
    ck_assert_uint_eq(st.leased_bytes, 0);
    ck_assert_uint_eq(st.live_bytes, 0);
    ck_assert_uint_eq(st.parked_bytes, full.leased);
    arena__region_park_info_t pi;
    arena__region_park_info(&pi);
    ck_assert_uint_eq(pi.count, full.active);
    ck_assert_uint_eq(pi.bytes, full.leased);

    /* Allocating again unparks the same leases: no new grant, same ids,
     * and the memory works. */
    uint64_t hits = pi.hits;
    ck_assert(alloc_many(objs, NOBJ, 7));
    ck_assert(check_many(objs, NOBJ, 7));
    view_t again = view_self();
    ck_assert_uint_eq(again.granted, full.granted);
    ck_assert_uint_eq(again.parked, 0);
    ck_assert_uint_eq(again.nids, full.nids);
    for (size_t i = 0; i < full.nids; i++) {
        ck_assert_msg(has_id(&again, full.ids[i]), "lease %" PRIu64 " not reused", full.ids[i]);
    }
    arena__region_park_info(&pi);
    ck_assert_uint_eq(pi.hits - hits, full.active);
    ck_assert_uint_eq(pi.count, 0);
    ck_assert(arena__heap_is_valid());
    free_many(objs, NOBJ);
}
END_TEST

START_TEST(test_unparked_memory_is_dirty)
{
    /* Segments parked by free (no trim) keep their pages: an unparked
     * region says zeroed = false, so calloc must clear what it hands out. */
    ck_assert(alloc_many(objs, NOBJ, 3));
    free_many(objs, NOBJ);
    arena__region_park_info_t before, after;
    arena__region_park_info(&before);
    ck_assert_uint_ge(before.count, 2);
    enum { N = 12 * MiB / SPAN_OBJ };
    unsigned char *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = arena_calloc(1, SPAN_OBJ);
        ck_assert_ptr_nonnull(p[i]);
    }
    arena__region_park_info(&after);
    ck_assert_uint_ge(after.hits - before.hits, 2);
    for (int i = 0; i < N; i++) {
        for (size_t j = 0; j < SPAN_OBJ; j += 97) {
            ck_assert_uint_eq(p[i][j], 0);
        }
        arena_free(p[i]);
    }
}
END_TEST

START_TEST(test_trim_purges_parked)
{
    /* Segments parked at once by free keep their pages (a hot reuse; at
     * most two do, span.c); arena_trim() purges them in place: still
     * parked, same leases, and their memory reads as zero when unparked. */
    ck_assert(alloc_many(objs, NOBJ, 13));
    free_many(objs, NOBJ);
    arena__region_park_info_t pi;
    arena__region_park_info(&pi);
    ck_assert_uint_ge(pi.dirty, 1);
    ck_assert_uint_le(pi.dirty, 2);
    view_t before = view_self();
    ck_assert_int_gt(arena_trim(), 0);
    arena__region_park_info(&pi);
    ck_assert_uint_eq(pi.dirty, 0);
    view_t after = view_self();
    ck_assert_uint_eq(after.active, 0);
    ck_assert_uint_eq(after.parked, before.parked + before.active);
    for (size_t i = 0; i < before.nids; i++) {
        ck_assert(has_id(&after, before.ids[i]));
    }
    /* Reused: nothing left of the old objects (malloc, not calloc). */
    enum { N = 12 * MiB / SPAN_OBJ };
    unsigned char *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = arena_malloc(SPAN_OBJ);
        ck_assert_ptr_nonnull(p[i]);
    }
    ck_assert_uint_eq(view_self().granted, after.granted);
    for (int i = 0; i < N; i++) {
        for (size_t j = 0; j < SPAN_OBJ; j += 97) {
            ck_assert_uint_eq(p[i][j], 0);
        }
        arena_free(p[i]);
    }
}
END_TEST

START_TEST(test_decay_purges_parked)
{
    /* Without a trim, the purge tick purges parked segments once they have
     * been parked for the decay time. */
    void *big = arena_malloc(SPAN_OBJ); /* its free runs the tick below */
    ck_assert_ptr_nonnull(big);
    /* Something stays live, so the free of big is the tick's and not the
     * idle action's (test_idle_gives_everything_back). */
    void *keep = arena_malloc(64);
    ck_assert_ptr_nonnull(keep);
    ck_assert(alloc_many(objs, NOBJ * 2, 14));
    free_many(objs, NOBJ * 2);
    arena__region_park_info_t pi;
    arena__region_park_info(&pi);
    ck_assert_uint_ge(pi.dirty, 2);
    uint32_t count = pi.count;
    usleep((ARENA__DECAY_MS + 300) * 1000);
    arena_free(big);
    arena__region_park_info(&pi);
    ck_assert_uint_eq(pi.dirty, 0);
    ck_assert_uint_ge(pi.count, count); /* still parked (the spare joined) */
    arena_free(keep);
}
END_TEST

/* ---- the daemon takes parked leases --------------------------------------------- */

START_TEST(test_reclaimed_not_reused)
{
    ck_assert(alloc_many(objs, NOBJ, 2));
    free_many(objs, NOBJ);
    (void)arena_trim();
    view_t parked = view_self();
    ck_assert_uint_gt(parked.parked, 0);
    ck_assert_uint_eq(parked.active, 0);

    /* The daemon takes every parked lease back, as it would for a starving
     * client; we run no code meanwhile. */
    arena_conn_t *c = NULL;
    ck_assert_int_eq(arena_connect(daemon_.socket, &c), 0);
    uint64_t got = 0;
    ck_assert_int_eq(arena__admin_reclaim(c, 0, client_of(c, getpid()), &got), 0);
    arena_disconnect(c);
    ck_assert_uint_ge(got, parked.leased); /* and dirty pages, if any */
    view_t taken = view_self();
    ck_assert_uint_eq(taken.leased, 0);

    /* malloc works, on fresh leases; none of the taken ids comes back. */
    arena__region_park_info_t before, after;
    arena__region_park_info(&before);
    ck_assert(alloc_many(objs, NOBJ, 9));
    ck_assert(check_many(objs, NOBJ, 9));
    view_t fresh = view_self();
    ck_assert_uint_gt(fresh.granted, parked.granted);
    ck_assert_uint_gt(fresh.active, 0);
    for (size_t i = 0; i < parked.nids; i++) {
        ck_assert(!has_id(&fresh, parked.ids[i]));
    }
    arena__region_park_info(&after);
    ck_assert_uint_eq(after.hits, before.hits);
    ck_assert_uint_eq(after.lost - before.lost, parked.parked);
    ck_assert_uint_eq(after.count, 0);
    ck_assert(arena__heap_is_valid());
    free_many(objs, NOBJ);
}
END_TEST

START_TEST(test_released_behind_cache_back)
{
    /* The connection's own trim (the default pressure hook) releases parked
     * leases without asking the pools: the cache must drop them. */
    ck_assert(alloc_many(objs, NOBJ, 4));
    free_many(objs, NOBJ);
    (void)arena_trim();
    view_t parked = view_self();
    ck_assert_uint_gt(parked.parked, 0);
    arena_conn_t *def = NULL;
    ck_assert_int_eq(arena__conn_default(&def), 0);
    ck_assert_int_eq(arena__conn_release_parked(def), (long long)parked.leased);
    ck_assert_uint_eq(view_self().leased, 0);
    arena__region_park_info_t before, after;
    arena__region_park_info(&before);
    ck_assert(alloc_many(objs, NOBJ, 5));
    ck_assert(check_many(objs, NOBJ, 5));
    arena__region_park_info(&after);
    ck_assert_uint_eq(after.hits, before.hits);
    ck_assert_uint_eq(after.lost - before.lost, parked.parked);
    view_t fresh = view_self();
    for (size_t i = 0; i < parked.nids; i++) {
        ck_assert(!has_id(&fresh, parked.ids[i]));
    }
    free_many(objs, NOBJ);
}
END_TEST

START_TEST(test_park_release_gives_all)
{
    /* What pressure does after trimming: the parked cache is released, the
     * daemon has every byte back at once. */
    ck_assert(alloc_many(objs, NOBJ, 6));
    free_many(objs, NOBJ);
    (void)arena_trim();
    view_t parked = view_self();
    ck_assert_uint_gt(parked.parked, 0);
    ck_assert_int_eq(arena__region_park_release(), (long long)parked.leased);
    ck_assert_uint_eq(view_self().leased, 0);
    ck_assert_uint_eq(arena__region_parked_bytes(), 0);
    ck_assert_int_eq(arena__region_park_release(), 0);
    ck_assert(alloc_many(objs, 10, 6));
    free_many(objs, 10);
}
END_TEST

/* ---- the spare, the bound ------------------------------------------------------- */

START_TEST(test_spare_parked_after_decay)
{
    /* Two large objects share a segment that stays in use; small objects
     * fill others. After freeing the small ones, one empty segment stays
     * active as the spare. Once it has been empty for the decay time, the
     * next purge tick (here: the free of a large object) parks it. */
    void *big1 = arena_malloc(SPAN_OBJ);
    void *big2 = arena_malloc(SPAN_OBJ);
    ck_assert_ptr_nonnull(big1);
    ck_assert_ptr_nonnull(big2);
    ck_assert(alloc_many(objs, NOBJ, 8));
    /* A small object of a class not used so far lands in the last segment:
     * two segments stay in use, so the heap has not shrunk back and keeps
     * its spare (no idle action, test_idle_gives_everything_back). */
    void *late = arena_malloc(3000);
    ck_assert_ptr_nonnull(late);
    free_many(objs, NOBJ);
    arena_stats_t st0, st1;
    ck_assert_int_eq(arena_stats(&st0), 0);
    view_t v0 = view_self();
    ck_assert_uint_ge(v0.active, 2); /* the large objects' segment, the spare */
    usleep((ARENA__DECAY_MS + 300) * 1000);
    arena_free(big1); /* a large free runs the heap's tick */
    ck_assert_int_eq(arena_stats(&st1), 0);
    view_t v1 = view_self();
    ck_assert_uint_eq(v1.active, v0.active - 1);
    ck_assert_uint_eq(v1.parked, v0.parked + 1);
    ck_assert_uint_eq(v1.granted, v0.granted);
    ck_assert_uint_eq(st1.lease_count, st0.lease_count - 1);
    ck_assert_uint_eq(st1.leased_bytes, st0.leased_bytes - SEG);
    ck_assert(arena__heap_is_valid());
    arena_free(big2);
    arena_free(late);
}
END_TEST

START_TEST(test_cache_bounded)
{
    /* ~160 MB freed: the cache keeps its bound parked and releases the
     * rest. */
    size_t n = NOBJ * 10;
    ck_assert(alloc_many(objs, n, 11));
    view_t full = view_self();
    ck_assert_uint_gt(full.leased, ARENA__PARK_CACHE_BYTES + 16 * MiB);
    free_many(objs, n);
    (void)arena_trim();
    view_t v = view_self();
    arena__region_park_info_t pi;
    arena__region_park_info(&pi);
    ck_assert_uint_eq(pi.count, ARENA__PARK_CACHE_BYTES / SEG);
    ck_assert_uint_eq(pi.bytes, ARENA__PARK_CACHE_BYTES);
    ck_assert_uint_eq(v.parked, ARENA__PARK_CACHE_BYTES / SEG);
    ck_assert_uint_eq(v.active, 0);
    ck_assert_uint_eq(v.leased, ARENA__PARK_CACHE_BYTES);
}
END_TEST

/* ---- threads ---------------------------------------------------------------------- */

#define CHURN_THREADS 4
#define CHURN_OBJS    1500 /* ~6 MB: more than a segment per round */

typedef struct churn {
    unsigned seed;
    int rounds;
    bool ok;
    void *objs[CHURN_OBJS];
} churn_t;

static void *churn_thread(void *arg)
{
    churn_t *c = arg;
    c->ok = true;
    for (int r = 0; r < c->rounds && c->ok; r++) {
        unsigned seed = c->seed * 1000u + (unsigned)r;
        for (size_t i = 0; i < CHURN_OBJS; i++) {
            c->objs[i] = arena_malloc(OBJ);
            if (c->objs[i] == NULL) {
                c->ok = false;
                return NULL;
            }
            fill(c->objs[i], OBJ, seed + (unsigned)i);
        }
        for (size_t i = 0; i < CHURN_OBJS; i++) {
            if (!check_fill(c->objs[i], OBJ, seed + (unsigned)i)) {
                c->ok = false;
            }
            arena_free(c->objs[i]);
        }
        /* Every other round gives the spare back too: segments move between
         * threads through the cache. */
        if (r % 2 == 1) {
            (void)arena_trim();
        }
    }
    return NULL;
}

START_TEST(test_threads_share_cache)
{
    /* Threads park and unpark segments through the one cache at the same
     * time; the pressure path releases it meanwhile. Each segment's data
     * stays its thread's, and afterwards the daemon's books and ours agree. */
    static churn_t ch[CHURN_THREADS];
    pthread_t t[CHURN_THREADS];
    const char *small = getenv("POOL_TEST_SMALL");
    int rounds = small != NULL && small[0] == '1' ? 6 : 20;
    for (unsigned i = 0; i < CHURN_THREADS; i++) {
        ch[i].seed = i + 1;
        ch[i].rounds = rounds;
        ck_assert_int_eq(pthread_create(&t[i], NULL, churn_thread, &ch[i]), 0);
    }
    for (int i = 0; i < 5; i++) {
        usleep(20 * 1000);
        (void)arena__region_park_release();
    }
    for (unsigned i = 0; i < CHURN_THREADS; i++) {
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
        ck_assert(ch[i].ok);
    }
    arena__region_park_info_t pi;
    arena__region_park_info(&pi);
    ck_assert_uint_gt(pi.hits, 0);
    (void)arena_trim(); /* adopts what the exited threads left */
    arena_stats_t st;
    ck_assert_int_eq(arena_stats(&st), 0);
    ck_assert_uint_eq(st.live_bytes, 0);
    ck_assert_uint_eq(st.lease_count, 0);
    view_t v = view_self();
    ck_assert_uint_eq(v.active, 0);
    ck_assert_uint_eq(v.leased, arena__region_parked_bytes());
}
END_TEST

/* ---- live bytes ------------------------------------------------------------------ */

/* The live bytes in this process's control region header: the mapping of
 * the daemon's "arenad-control-N" memfd, found in /proc/self/maps. The test
 * holds only the default connection then, so exactly one is mapped.
 * Returns false when none or several are mapped. */
static bool header_live(uint64_t *ret_live)
{
    FILE *f = fopen("/proc/self/maps", "re");
    ck_assert_ptr_nonnull(f);
    char line[512];
    int found = 0;
    uint64_t live = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strstr(line, "/memfd:arenad-control-") == NULL) {
            continue;
        }
        unsigned long lo = 0;
        ck_assert_int_eq(sscanf(line, "%lx-", &lo), 1);
        const arena__ctlword_header_t *h = (const arena__ctlword_header_t *)(uintptr_t)lo;
        ck_assert(h->magic == ARENA__CTLWORD_MAGIC);
        live = arena__ctlword_read_live(h);
        found++;
    }
    (void)fclose(f);
    if (found != 1) {
        return false;
    }
    *ret_live = live;
    return true;
}

/* What the daemon's client listing says process pid holds live. */
static uint64_t daemon_live(pid_t pid)
{
    arena_conn_t *c = NULL;
    ck_assert_int_eq(arena_connect(daemon_.socket, &c), 0);
    arena__admin_clients_t *cl = NULL;
    ck_assert_int_eq(arena__admin_clients(c, &cl), 0);
    uint64_t live = 0;
    for (size_t i = 0; i < cl->count; i++) {
        if (cl->items[i].pid == (uint32_t)pid) {
            live += cl->items[i].live_bytes;
        }
    }
    arena__admin_clients_free(cl);
    arena_disconnect(c);
    return live;
}

START_TEST(test_live_bytes_published)
{
    void *keep[100];
    for (int i = 0; i < 100; i++) {
        keep[i] = arena_malloc(10000);
        ck_assert_ptr_nonnull(keep[i]);
    }
    void *large = arena_malloc(300000);
    ck_assert_ptr_nonnull(large);
    (void)arena_trim(); /* publishes */
    arena_stats_t st;
    ck_assert_int_eq(arena_stats(&st), 0);
    ck_assert_uint_ge(st.live_bytes, 100 * 10000 + 300000);
    uint64_t live = 0;
    ck_assert(header_live(&live));
    ck_assert_uint_eq(live, st.live_bytes);
    /* And the daemon shows it (arenactl clients: LIVE). */
    ck_assert_uint_eq(daemon_live(getpid()), st.live_bytes);

    /* The purge tick publishes too: free some, wait a tick, take a slow
     * path (a large free). */
    for (int i = 0; i < 50; i++) {
        arena_free(keep[i]);
    }
    usleep((ARENA__PURGE_TICK_MS + 50) * 1000);
    arena_free(large);
    ck_assert_int_eq(arena_stats(&st), 0);
    ck_assert(header_live(&live));
    ck_assert_uint_eq(live, st.live_bytes);
    for (int i = 50; i < 100; i++) {
        arena_free(keep[i]);
    }
    (void)arena_trim();
    ck_assert(header_live(&live));
    ck_assert_uint_eq(live, 0);
    ck_assert_uint_eq(daemon_live(getpid()), 0);
}
END_TEST

/* ---- fork ------------------------------------------------------------------------ */

START_TEST(test_fork_leaves_parent_parked)
{
    void *keep = arena_malloc(100); /* the parent has live bytes */
    ck_assert_ptr_nonnull(keep);
    ck_assert(alloc_many(objs, NOBJ, 12));
    free_many(objs, NOBJ);
    (void)arena_trim();
    view_t before = view_self();
    ck_assert_uint_gt(before.parked, 0);
    uint64_t parent_live = 0;
    ck_assert(header_live(&parent_live));
    ck_assert_uint_gt(parent_live, 0);

    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* The parent's parked regions are gone from the child's cache. */
        arena__region_park_info_t pi;
        arena__region_park_info(&pi);
        if (pi.count != 0 || pi.bytes != 0) {
            _exit(2);
        }
        /* The child allocates, frees and trims on leases of its own; its
         * own segments get parked in its own cache. */
        for (int round = 0; round < 2; round++) {
            if (!alloc_many(objs, NOBJ, 20u + (unsigned)round)) {
                _exit(3);
            }
            if (!check_many(objs, NOBJ, 20u + (unsigned)round)) {
                _exit(4);
            }
            free_many(objs, NOBJ);
            (void)arena_trim();
        }
        arena__region_park_info(&pi);
        if (pi.count == 0 || pi.hits == 0) {
            _exit(5);
        }
        void *big = arena_malloc(3 * MiB); /* a live figure that would show */
        if (big == NULL) {
            _exit(6);
        }
        (void)arena_trim();
        _exit(0);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);

    /* The parent's leases are still parked, the same ones, and its header
     * still says its own live bytes. */
    view_t after = view_self();
    ck_assert_uint_eq(after.parked, before.parked);
    ck_assert_uint_eq(after.active, before.active);
    ck_assert_uint_eq(after.nids, before.nids);
    for (size_t i = 0; i < before.nids; i++) {
        ck_assert(has_id(&after, before.ids[i]));
    }
    uint64_t live = 0;
    ck_assert(header_live(&live));
    ck_assert_uint_eq(live, parent_live);
    /* And the parent reuses them. */
    uint64_t granted = after.granted;
    ck_assert(alloc_many(objs, NOBJ, 30));
    ck_assert(check_many(objs, NOBJ, 30));
    ck_assert_uint_eq(view_self().granted, granted);
    free_many(objs, NOBJ);
    arena_free(keep);
}
END_TEST

static Suite *park_suite(void)
{
    Suite *s = suite_create("pool_park");
    TCase *tc = tcase_create("park");
    tcase_set_timeout(tc, 120);
    arena_test_fixture_use(&daemon_, daemon_config, daemon_args, ARENA_TEST_EXPORT_SOCKET);
    tcase_add_checked_fixture(tc, arena_test_fixture_setup, arena_test_fixture_teardown);
    tcase_add_test(tc, test_free_parks_then_reuses);
    tcase_add_test(tc, test_unparked_memory_is_dirty);
    tcase_add_test(tc, test_trim_purges_parked);
    tcase_add_test(tc, test_decay_purges_parked);
    tcase_add_test(tc, test_reclaimed_not_reused);
    tcase_add_test(tc, test_released_behind_cache_back);
    tcase_add_test(tc, test_park_release_gives_all);
    tcase_add_test(tc, test_spare_parked_after_decay);
    tcase_add_test(tc, test_cache_bounded);
    tcase_add_test(tc, test_live_bytes_published);
    tcase_add_test(tc, test_fork_leaves_parent_parked);
    tcase_add_test(tc, test_threads_share_cache);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    (void)unsetenv("ARENA_FALLBACK");
    return arena_test_run(park_suite(), NULL);
}
