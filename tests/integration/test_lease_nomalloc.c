/* SPDX-License-Identifier: MIT
 *
 * test_lease_nomalloc.c -- the connection path never calls malloc and
 * friends (conn.h's hard rule: the preload library's malloc leases through
 * it, so a libc allocation there would recurse).
 *
 * The test binary is linked with -Wl,--wrap for malloc, calloc, realloc,
 * free, strdup, strndup, posix_memalign and aligned_alloc, which redirects every call
 * from the statically linked libarena-client objects to the counters below.
 * While `counting` is set, every library call against a real arenad must
 * leave them at zero: connect, leases of several sizes and alignments,
 * releases, the admin calls, errors from the daemon, arena_strerror, and
 * disconnect.
 */
#include <check.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "admin.h"
#include "arena.h"
#include "conn.h"
#include "fixture.h"
#include "wire.h"

static atomic_bool counting;
static atomic_int calls;

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
int __real_posix_memalign(void **p, size_t a, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
int __wrap_posix_memalign(void **p, size_t a, size_t n);
void *__wrap_aligned_alloc(size_t a, size_t n);

static void seen(void)
{
    if (atomic_load(&counting))
        atomic_fetch_add(&calls, 1);
}

void *__wrap_malloc(size_t n)
{
    seen();
    return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
    seen();
    return __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
    seen();
    return __real_realloc(p, n);
}

void __wrap_free(void *p)
{
    seen();
    __real_free(p);
}

char *__wrap_strdup(const char *s)
{
    seen();
    return __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    seen();
    return __real_strndup(s, n);
}

int __wrap_posix_memalign(void **p, size_t a, size_t n)
{
    seen();
    return __real_posix_memalign(p, a, n);
}

void *__wrap_aligned_alloc(size_t a, size_t n)
{
    seen();
    return __real_aligned_alloc(a, n);
}

static arena_test_daemon_t daemon_;

START_TEST(test_wrap_is_live)
{
    /* The counters see calls made from this binary's own objects, so the
     * wrap is in effect (a test that cannot fail would prove nothing). */
    atomic_store(&counting, true);
    void *volatile p = malloc(16);
    free(p);
    atomic_store(&counting, false);
    ck_assert_int_eq(atomic_load(&calls), 2);
}
END_TEST

START_TEST(test_connection_path_never_allocates)
{
    const char *const args[] = {"--budget", "64M", NULL};
    arena_test_daemon_up(&daemon_, NULL, args, ARENA_TEST_EXPORT_SOCKET);

    atomic_store(&calls, 0);
    atomic_store(&counting, true);
    arena_conn_t *conn = NULL;
    int r_connect = arena_connect(daemon_.socket, &conn);
    arena_lease_t l[6];
    int r_lease[6];
    static const size_t sizes[] = {1, 65536, 1u << 20, 3u << 20, 5u << 20, 9u << 20};
    for (int i = 0; i < 6; i++)
        r_lease[i] = arena_lease(conn, sizes[i], 0, &l[i]);
    arena_lease_t al;
    int r_aligned = arena__conn_lease_aligned(conn, 65536, 8u << 20, 0, &al);
    /* The default connection, made lazily from the environment. */
    arena_lease_t dl;
    int r_default = arena_lease(NULL, 65536, 0, &dl);
    int r_default_rel = arena_release(NULL, &dl);
    /* Errors from the daemon and from the library. */
    arena_lease_t bad;
    int r_big = arena_lease(conn, 1ull << 40, 0, &bad);
    int r_zero = arena_lease(conn, 0, 0, &bad);
    arena_lease_t forged = l[0];
    forged.id += 1000;
    int r_forged = arena_release(conn, &forged);
    char msg[128];
    (void)arena__conn_last_error(conn, msg, sizeof(msg));
    const char *s1 = arena_strerror(r_big);
    const char *s2 = arena_strerror(ARENA_ENOTOWNER);
    /* Admin calls. */
    arena__admin_status_t st;
    int r_status = arena__admin_status(conn, &st);
    arena__admin_clients_t *clients = NULL;
    int r_clients = arena__admin_clients(conn, &clients);
    arena__admin_leases_t *leases = NULL;
    int r_leases = arena__admin_leases(conn, 0, &leases);
    arena__admin_text_t *metrics = NULL;
    int r_metrics = arena__admin_metrics(conn, &metrics);
    uint64_t reclaimed;
    int r_reclaim = arena__admin_reclaim(conn, 0, 0, &reclaimed);
    size_t n_leases = leases ? leases->count : 0;
    arena__admin_clients_free(clients);
    arena__admin_leases_free(leases);
    arena__admin_text_free(metrics);
    int r_release[6];
    for (int i = 0; i < 6; i++)
        r_release[i] = arena_release(conn, &l[i]);
    /* Leave one lease for disconnect to unmap. */
    arena_disconnect(conn);
    arena_conn_t *dflt = NULL;
    (void)arena__conn_default(&dflt);
    arena_disconnect(dflt);
    atomic_store(&counting, false);

    ck_assert_int_eq(r_connect, 0);
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(r_lease[i], 0);
        ck_assert_int_eq(r_release[i], 0);
    }
    ck_assert_int_eq(r_aligned, 0);
    ck_assert_uint_eq((uintptr_t)al.addr % (8u << 20), 0);
    ck_assert_int_eq(r_default, 0);
    ck_assert_int_eq(r_default_rel, 0);
    ck_assert_int_eq(r_big, -E2BIG);
    ck_assert_int_eq(r_zero, -EINVAL);
    ck_assert_int_eq(r_forged, -ENOENT);
    ck_assert_ptr_nonnull(s1);
    ck_assert_ptr_nonnull(s2);
    ck_assert_int_eq(r_status, 0);
    ck_assert_int_eq(r_clients, 0);
    ck_assert_int_eq(r_leases, 0);
    ck_assert_uint_eq(n_leases, 7); /* six plus the aligned one */
    ck_assert_int_eq(r_metrics, 0);
    ck_assert_int_eq(r_reclaim, 0);
    ck_assert_int_eq(atomic_load(&calls), 0);
    ck_assert_int_eq(arena_test_daemon_stop(&daemon_), 0);
}
END_TEST

static Suite *lease_nomalloc_suite(void)
{
    Suite *s = suite_create("lease_nomalloc");
    TCase *tc = tcase_create("nomalloc");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_wrap_is_live);
    tcase_add_test(tc, test_connection_path_never_allocates);
    suite_add_tcase(s, tc);
    return s;
}

ARENA_TEST_MAIN(lease_nomalloc_suite)
