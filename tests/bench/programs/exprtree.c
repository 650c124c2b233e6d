/* SPDX-License-Identifier: MIT
 *
 * exprtree.c -- expression trees built, evaluated and freed (binary-trees
 * style), one thread.
 *
 *     exprtree [MAX_DEPTH]      (default 16)
 *
 * A long-lived tree of MAX_DEPTH stays allocated while, for each depth d from
 * 4 to MAX_DEPTH in steps of 2, 2^(MAX_DEPTH - d + 4) trees of depth d are
 * built, evaluated and freed. Inner nodes (an operator and two children, 24
 * bytes) and leaves (a constant, 8 bytes) have different sizes, so two size
 * classes churn side by side, in LIFO-ish order, as in a compiler or an
 * interpreter.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "report.h"

typedef struct node {
    int64_t op; /* 0: a leaf, then the struct is only this field's size */
    struct node *left, *right;
} node_t;

static node_t *build(int depth, uint64_t *seed)
{
    if (depth == 0) {
        int64_t *leaf = malloc(sizeof(int64_t));
        if (!leaf)
            bench_fail("exprtree", "memory");
        *leaf = -(int64_t)(1 + bench_rand(seed) % 100); /* negative: a constant */
        return (node_t *)leaf;
    }
    node_t *n = malloc(sizeof(*n));
    if (!n)
        bench_fail("exprtree", "memory");
    n->op = 1 + (int64_t)(bench_rand(seed) % 3);
    n->left = build(depth - 1, seed);
    n->right = build(depth - 1, seed);
    return n;
}

static int64_t eval(const node_t *n)
{
    int64_t op = *(const int64_t *)n; /* a leaf is only this field */
    if (op < 0)
        return -op;
    int64_t a = eval(n->left), b = eval(n->right);
    switch (op) {
    case 1:
        return (a + b) % 1000003;
    case 2:
        return (a * b) % 1000003;
    default:
        return (a - b + 1000003) % 1000003;
    }
}

static void release(node_t *n)
{
    if (*(const int64_t *)n > 0) {
        release(n->left);
        release(n->right);
    }
    free(n);
}

int main(int argc, char **argv)
{
    int max_depth = argc > 1 ? atoi(argv[1]) : 16;
    if (max_depth < 4 || max_depth > 24) {
        (void)fprintf(stderr, "usage: exprtree [MAX_DEPTH (4..24)]\n");
        return 2;
    }
    uint64_t seed = 0x9E3779B97F4A7C15ULL, check = 0;
    node_t *long_lived = build(max_depth, &seed);
    for (int d = 4; d <= max_depth; d += 2) {
        long iterations = 1L << (max_depth - d + 4);
        for (long i = 0; i < iterations; i++) {
            node_t *t = build(d, &seed);
            check += (uint64_t)eval(t);
            release(t);
        }
    }
    check += (uint64_t)eval(long_lived);
    bench_report(check);
    release(long_lived);
    return 0;
}
