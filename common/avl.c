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

static int node_height(const arena__avl_node_t *n)
{
    return n ? n->height : 0;
}

/* Recomputes height and aggregate; returns whether either changed. */
static bool node_update(arena__avl_node_t *n, arena__avl_update_fn update)
{
    int l = node_height(n->link[0]), r = node_height(n->link[1]);
    int h = 1 + (l > r ? l : r);
    bool changed = h != n->height;
    n->height = h;
    if (update && update(n))
        changed = true;
    return changed;
}

/* Rotates so that the child on side !dir comes up; dir is the side n goes to. */
static arena__avl_node_t *node_rotate(arena__avl_node_t *n, int dir, arena__avl_update_fn up)
{
    arena__avl_node_t *c = n->link[!dir];
    n->link[!dir] = c->link[dir];
    c->link[dir] = n;
    (void)node_update(n, up);
    (void)node_update(c, up);
    return c;
}

/* Restores balance at n after a change below it. Sets *ret_changed when
 * something an ancestor depends on changed: the subtree's root, its height or
 * its aggregate. Insert and remove stop rebalancing at the first ancestor
 * that reports no change, which keeps most updates near the leaves. */
static arena__avl_node_t *node_balance(arena__avl_node_t *n, arena__avl_update_fn up,
                                       bool *ret_changed)
{
    *ret_changed = node_update(n, up);
    int b = node_height(n->link[0]) - node_height(n->link[1]);
    if (b > 1) {
        if (node_height(n->link[0]->link[0]) < node_height(n->link[0]->link[1]))
            n->link[0] = node_rotate(n->link[0], 0, up);
        *ret_changed = true;
        return node_rotate(n, 1, up);
    }
    if (b < -1) {
        if (node_height(n->link[1]->link[1]) < node_height(n->link[1]->link[0]))
            n->link[1] = node_rotate(n->link[1], 1, up);
        *ret_changed = true;
        return node_rotate(n, 0, up);
    }
    return n;
}

static arena__avl_node_t *node_insert(const arena__avl_t *t, arena__avl_node_t *root,
                                      arena__avl_node_t *n, bool *ret_changed)
{
    if (!root) {
        n->link[0] = n->link[1] = NULL;
        n->height = 0;
        (void)node_update(n, t->update);
        *ret_changed = true;
        return n;
    }
    int side = t->cmp(n, root) > 0;
    bool below = false;
    root->link[side] = node_insert(t, root->link[side], n, &below);
    if (!below) {
        *ret_changed = false;
        return root;
    }
    return node_balance(root, t->update, ret_changed);
}

static arena__avl_node_t *node_remove_min(const arena__avl_t *t, arena__avl_node_t *root,
                                          arena__avl_node_t **ret_min)
{
    if (!root->link[0]) {
        *ret_min = root;
        return root->link[1];
    }
    bool changed;
    root->link[0] = node_remove_min(t, root->link[0], ret_min);
    return node_balance(root, t->update, &changed);
}

static arena__avl_node_t *node_remove(const arena__avl_t *t, arena__avl_node_t *root,
                                      arena__avl_node_t *n, bool *ret_found, bool *ret_changed)
{
    *ret_changed = false;
    if (!root)
        return NULL;
    if (root == n) {
        *ret_found = true;
        *ret_changed = true;
        if (!n->link[0])
            return n->link[1];
        if (!n->link[1])
            return n->link[0];
        arena__avl_node_t *m = NULL;
        arena__avl_node_t *right = node_remove_min(t, n->link[1], &m);
        m->link[0] = n->link[0];
        m->link[1] = right;
        bool changed;
        return node_balance(m, t->update, &changed);
    }
    int side = t->cmp(n, root) > 0;
    bool below = false;
    root->link[side] = node_remove(t, root->link[side], n, ret_found, &below);
    if (!below)
        return root;
    return node_balance(root, t->update, ret_changed);
}

static void node_refresh(const arena__avl_t *t, arena__avl_node_t *root, arena__avl_node_t *n)
{
    if (!root)
        return;
    if (root != n)
        node_refresh(t, root->link[t->cmp(n, root) > 0], n);
    (void)t->update(root);
}

void arena__avl_init(arena__avl_t *tree, arena__avl_cmp_fn cmp)
{
    arena__avl_init_augmented(tree, cmp, NULL);
}

void arena__avl_init_augmented(arena__avl_t *tree, arena__avl_cmp_fn cmp,
                               arena__avl_update_fn update)
{
    tree->root = NULL;
    tree->cmp = cmp;
    tree->update = update;
    tree->count = 0;
}

void arena__avl_refresh(arena__avl_t *tree, arena__avl_node_t *node)
{
    if (tree->update)
        node_refresh(tree, tree->root, node);
}

void arena__avl_insert(arena__avl_t *tree, arena__avl_node_t *node)
{
    bool changed;
    tree->root = node_insert(tree, tree->root, node, &changed);
    tree->count++;
}

void arena__avl_remove(arena__avl_t *tree, arena__avl_node_t *node)
{
    bool found = false, changed;
    tree->root = node_remove(tree, tree->root, node, &found, &changed);
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
