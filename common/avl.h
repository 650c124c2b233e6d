/* SPDX-License-Identifier: MIT
 *
 * avl.h -- an intrusive AVL tree ordered by a caller-supplied comparison.
 *
 * Nodes are embedded in the caller's structs (one node per index the struct
 * is in), so the tree never allocates. Keys must be unique under the
 * comparison. Every operation is O(log n) worst case. Not thread-safe: the
 * owner of the tree serialises access.
 */
#ifndef ARENA_COMMON_AVL_H
#define ARENA_COMMON_AVL_H

#include <stdbool.h>
#include <stddef.h>

typedef struct arena__avl_node {
    struct arena__avl_node *link[2]; /* [0] smaller, [1] larger */
    int height;                      /* of the subtree rooted here; leaves are 1 */
} arena__avl_node_t;

/* <0, 0, >0 as a orders before, equal to, after b. */
typedef int (*arena__avl_cmp_fn)(const arena__avl_node_t *a, const arena__avl_node_t *b);
/* <0, 0, >0 as key orders before, equal to, after node. */
typedef int (*arena__avl_key_fn)(const void *key, const arena__avl_node_t *node);

/* Optional augmentation: recomputes a node's subtree aggregate (e.g. the
 * largest value below it) from the node and its children, which are already
 * up to date, and returns whether it changed. Called bottom-up wherever the
 * shape below a node changes; propagation stops where nothing changed. */
typedef bool (*arena__avl_update_fn)(arena__avl_node_t *node);

typedef struct arena__avl {
    arena__avl_node_t *root;
    arena__avl_cmp_fn cmp;
    arena__avl_update_fn update; /* NULL: no augmentation */
    size_t count;
} arena__avl_t;

/* Recovers the struct that embeds a node. */
#define ARENA_AVL_ENTRY(node, type, member)                                                        \
    ((type *)(void *)((char *)(node)-offsetof(type, member)))

/* Makes an empty tree ordered by cmp. */
void arena__avl_init(arena__avl_t *tree, arena__avl_cmp_fn cmp);

/* Makes an empty augmented tree: update keeps each node's subtree aggregate. */
void arena__avl_init_augmented(arena__avl_t *tree, arena__avl_cmp_fn cmp,
                               arena__avl_update_fn update);

/* Recomputes the aggregates from node up to the root after the caller changed
 * a value the aggregate depends on (not the node's key order). O(log n). */
void arena__avl_refresh(arena__avl_t *tree, arena__avl_node_t *node);

/* Inserts node, which must not compare equal to a node already in the tree. */
void arena__avl_insert(arena__avl_t *tree, arena__avl_node_t *node);

/* Removes node, which must be in the tree. */
void arena__avl_remove(arena__avl_t *tree, arena__avl_node_t *node);

/* The smallest and largest nodes, NULL when empty. */
arena__avl_node_t *arena__avl_first(const arena__avl_t *tree);
arena__avl_node_t *arena__avl_last(const arena__avl_t *tree);

/* The first node not ordered before key (key <= node), or NULL. */
arena__avl_node_t *arena__avl_lower_bound(const arena__avl_t *tree, arena__avl_key_fn key_cmp,
                                          const void *key);

/* The last node not ordered after key (node <= key), or NULL. */
arena__avl_node_t *arena__avl_floor(const arena__avl_t *tree, arena__avl_key_fn key_cmp,
                                    const void *key);

/* In-order neighbours of a node in the tree, found from the root: O(log n). */
arena__avl_node_t *arena__avl_next(const arena__avl_t *tree, const arena__avl_node_t *node);
arena__avl_node_t *arena__avl_prev(const arena__avl_t *tree, const arena__avl_node_t *node);

/* Validator for tests: order, heights, balance and count. Returns 0 when the
 * tree is valid, -1 otherwise. O(n). */
int arena__avl_check(const arena__avl_t *tree);

#endif
