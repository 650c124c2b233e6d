/* SPDX-License-Identifier: MIT
 *
 * test_avl.c -- the intrusive AVL tree against a sorted-array model: random
 * inserts and removes (seeded), validator after every step, and every query.
 */
#include <check.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "avl.h"

typedef struct item {
    arena__avl_node_t node;
    int key;
} item_t;

static int item_cmp(const arena__avl_node_t *a, const arena__avl_node_t *b)
{
    int x = ARENA_AVL_ENTRY(a, item_t, node)->key, y = ARENA_AVL_ENTRY(b, item_t, node)->key;
    return (x > y) - (x < y);
}

static int item_key(const void *key, const arena__avl_node_t *n)
{
    int x = *(const int *)key, y = ARENA_AVL_ENTRY(n, item_t, node)->key;
    return (x > y) - (x < y);
}

#define N 2000

START_TEST(test_random_against_model)
{
    static item_t items[N];
    static bool in[N];
    memset(in, 0, sizeof(in));
    arena__avl_t t;
    arena__avl_init(&t, item_cmp);
    srand(1234 + (unsigned)_i);
    for (int i = 0; i < N; i++)
        items[i].key = i * 2; /* even keys, so odd probes fall between */
    for (int step = 0; step < 20000; step++) {
        int k = rand() % N;
        if (in[k])
            arena__avl_remove(&t, &items[k].node);
        else
            arena__avl_insert(&t, &items[k].node);
        in[k] = !in[k];
        ck_assert_int_eq(arena__avl_check(&t), 0);
        if (step % 97)
            continue;
        /* Queries against the model. */
        int probe = rand() % (2 * N + 2) - 1;
        int want_lb = -1, want_floor = -1;
        for (int i = 0; i < N; i++) {
            if (!in[i])
                continue;
            if (want_lb < 0 && items[i].key >= probe)
                want_lb = i;
            if (items[i].key <= probe)
                want_floor = i;
        }
        arena__avl_node_t *lb = arena__avl_lower_bound(&t, item_key, &probe);
        arena__avl_node_t *fl = arena__avl_floor(&t, item_key, &probe);
        ck_assert_ptr_eq(lb, want_lb < 0 ? NULL : &items[want_lb].node);
        ck_assert_ptr_eq(fl, want_floor < 0 ? NULL : &items[want_floor].node);
        /* Full in-order walk both ways. */
        size_t seen = 0;
        int prev = -1;
        for (arena__avl_node_t *n = arena__avl_first(&t); n; n = arena__avl_next(&t, n)) {
            int key = ARENA_AVL_ENTRY(n, item_t, node)->key;
            ck_assert_int_gt(key, prev);
            ck_assert(in[key / 2]);
            prev = key;
            seen++;
        }
        ck_assert_uint_eq(seen, t.count);
        seen = 0;
        for (arena__avl_node_t *n = arena__avl_last(&t); n; n = arena__avl_prev(&t, n))
            seen++;
        ck_assert_uint_eq(seen, t.count);
    }
}
END_TEST

START_TEST(test_sequential_stays_balanced)
{
    static item_t items[1 << 16];
    arena__avl_t t;
    arena__avl_init(&t, item_cmp);
    for (int i = 0; i < (1 << 16); i++) {
        items[i].key = i;
        arena__avl_insert(&t, &items[i].node);
    }
    ck_assert_int_eq(arena__avl_check(&t), 0);
    /* AVL height bound: 1.44 log2(n + 2). */
    ck_assert_int_le(t.root->height, 24);
    for (int i = 0; i < (1 << 16); i += 2)
        arena__avl_remove(&t, &items[i].node);
    ck_assert_int_eq(arena__avl_check(&t), 0);
    ck_assert_uint_eq(t.count, 1 << 15);
    arena__avl_t empty;
    arena__avl_init(&empty, item_cmp);
    ck_assert_ptr_null(arena__avl_first(&empty));
    ck_assert_ptr_null(arena__avl_last(&empty));
    int k = 5;
    ck_assert_ptr_null(arena__avl_lower_bound(&empty, item_key, &k));
}
END_TEST

static Suite *avl_suite(void)
{
    Suite *s = suite_create("avl");
    TCase *tc = tcase_create("avl");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_random_against_model, 0, 3);
    tcase_add_test(tc, test_sequential_stays_balanced);
    suite_add_tcase(s, tc);
    return s;
}

ARENA_TEST_MAIN(avl_suite)
