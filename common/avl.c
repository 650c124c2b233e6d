/* SPDX-License-Identifier: MIT
 *
 * avl.c -- intrusive AVL tree.
 *
 * The daemon's free-extent indexes hold up to millions of nodes and must stay
 * O(log n) in the worst case, whatever order clients release in, so this is a
 * height-balanced tree rather than a treap or skip list. Insert and remove are
 * recursive (depth is at most 1.44 log2 n, about 40 for 1e9 nodes); there are
 * no parent pointers, which keeps a node at three words. arena__avl_check()
 * validates a whole tree for tests.
 */
#include "avl.h"

#include <stdbool.h>

static int node_height(const arena__avl_node_t *n)
{
    return n ? n->height : 0;
}

static void node_update(arena__avl_node_t *n)
{
    int l = node_height(n->link[0]), r = node_height(n->link[1]);
    n->height = 1 + (l > r ? l : r);
}

/* Rotates so that the child on side !dir comes up; dir is the side n goes to. */
static arena__avl_node_t *node_rotate(arena__avl_node_t *n, int dir)
{
    arena__avl_node_t *c = n->link[!dir];
    n->link[!dir] = c->link[dir];
    c->link[dir] = n;
    node_update(n);
    node_update(c);
    return c;
}

static arena__avl_node_t *node_balance(arena__avl_node_t *n)
{
    node_update(n);
    int b = node_height(n->link[0]) - node_height(n->link[1]);
    if (b > 1) {
        if (node_height(n->link[0]->link[0]) < node_height(n->link[0]->link[1]))
            n->link[0] = node_rotate(n->link[0], 0);
        return node_rotate(n, 1);
    }
    if (b < -1) {
        if (node_height(n->link[1]->link[1]) < node_height(n->link[1]->link[0]))
            n->link[1] = node_rotate(n->link[1], 1);
        return node_rotate(n, 0);
    }
    return n;
}

static arena__avl_node_t *node_insert(arena__avl_node_t *root, arena__avl_node_t *n,
                                      arena__avl_cmp_fn cmp)
{
    if (!root) {
        n->link[0] = n->link[1] = NULL;
        n->height = 1;
        return n;
    }
    int side = cmp(n, root) > 0;
    root->link[side] = node_insert(root->link[side], n, cmp);
    return node_balance(root);
}

static arena__avl_node_t *node_remove_min(arena__avl_node_t *root, arena__avl_node_t **ret_min)
{
    if (!root->link[0]) {
        *ret_min = root;
        return root->link[1];
    }
    root->link[0] = node_remove_min(root->link[0], ret_min);
    return node_balance(root);
}

static arena__avl_node_t *node_remove(arena__avl_node_t *root, arena__avl_node_t *n,
                                      arena__avl_cmp_fn cmp, bool *ret_found)
{
    if (!root)
        return NULL;
    if (root == n) {
        *ret_found = true;
        if (!n->link[0])
            return n->link[1];
        if (!n->link[1])
            return n->link[0];
        arena__avl_node_t *m = NULL;
        arena__avl_node_t *right = node_remove_min(n->link[1], &m);
        m->link[0] = n->link[0];
        m->link[1] = right;
        return node_balance(m);
    }
    int side = cmp(n, root) > 0;
    root->link[side] = node_remove(root->link[side], n, cmp, ret_found);
    return node_balance(root);
}

void arena__avl_init(arena__avl_t *tree, arena__avl_cmp_fn cmp)
{
    tree->root = NULL;
    tree->cmp = cmp;
    tree->count = 0;
}

void arena__avl_insert(arena__avl_t *tree, arena__avl_node_t *node)
{
    tree->root = node_insert(tree->root, node, tree->cmp);
    tree->count++;
}

void arena__avl_remove(arena__avl_t *tree, arena__avl_node_t *node)
{
    bool found = false;
    tree->root = node_remove(tree->root, node, tree->cmp, &found);
    if (found)
        tree->count--;
}

static arena__avl_node_t *tree_edge(const arena__avl_t *tree, int side)
{
    arena__avl_node_t *n = tree->root;
    while (n && n->link[side])
        n = n->link[side];
    return n;
}

arena__avl_node_t *arena__avl_first(const arena__avl_t *tree)
{
    return tree_edge(tree, 0);
}

arena__avl_node_t *arena__avl_last(const arena__avl_t *tree)
{
    return tree_edge(tree, 1);
}

arena__avl_node_t *arena__avl_lower_bound(const arena__avl_t *tree, arena__avl_key_fn key_cmp,
                                          const void *key)
{
    arena__avl_node_t *best = NULL, *n = tree->root;
    while (n) {
        if (key_cmp(key, n) <= 0) {
            best = n;
            n = n->link[0];
        } else {
            n = n->link[1];
        }
    }
    return best;
}

arena__avl_node_t *arena__avl_floor(const arena__avl_t *tree, arena__avl_key_fn key_cmp,
                                    const void *key)
{
    arena__avl_node_t *best = NULL, *n = tree->root;
    while (n) {
        if (key_cmp(key, n) >= 0) {
            best = n;
            n = n->link[1];
        } else {
            n = n->link[0];
        }
    }
    return best;
}

arena__avl_node_t *arena__avl_next(const arena__avl_t *tree, const arena__avl_node_t *node)
{
    if (node->link[1]) {
        arena__avl_node_t *n = node->link[1];
        while (n->link[0])
            n = n->link[0];
        return n;
    }
    arena__avl_node_t *best = NULL, *n = tree->root;
    while (n && n != node) {
        if (tree->cmp(node, n) < 0) {
            best = n;
            n = n->link[0];
        } else {
            n = n->link[1];
        }
    }
    return best;
}

arena__avl_node_t *arena__avl_prev(const arena__avl_t *tree, const arena__avl_node_t *node)
{
    if (node->link[0]) {
        arena__avl_node_t *n = node->link[0];
        while (n->link[1])
            n = n->link[1];
        return n;
    }
    arena__avl_node_t *best = NULL, *n = tree->root;
    while (n && n != node) {
        if (tree->cmp(node, n) > 0) {
            best = n;
            n = n->link[1];
        } else {
            n = n->link[0];
        }
    }
    return best;
}

/* Returns the subtree height, or -1 when anything below is broken. */
static int node_check(const arena__avl_t *tree, const arena__avl_node_t *n,
                      const arena__avl_node_t **prev, size_t *count)
{
    if (!n)
        return 0;
    int l = node_check(tree, n->link[0], prev, count);
    if (l < 0)
        return -1;
    if (*prev && tree->cmp(*prev, n) >= 0)
        return -1;
    *prev = n;
    (*count)++;
    int r = node_check(tree, n->link[1], prev, count);
    if (r < 0 || l - r > 1 || r - l > 1)
        return -1;
    int h = 1 + (l > r ? l : r);
    return h == n->height ? h : -1;
}

int arena__avl_check(const arena__avl_t *tree)
{
    const arena__avl_node_t *prev = NULL;
    size_t count = 0;
    if (node_check(tree, tree->root, &prev, &count) < 0)
        return -1;
    return count == tree->count ? 0 : -1;
}
