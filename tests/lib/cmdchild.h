/* SPDX-License-Identifier: MIT
 *
 * cmdchild.h -- a forked child driven by one-byte commands: the test writes
 * a command on one pipe, the child answers with a fixed-size record on the
 * other. Integration tests use it to hold leases, share and attach them in
 * separate processes step by step. No Check here: every call returns -errno
 * and the test asserts on it.
 */
#ifndef ARENA_TESTLIB_CMDCHILD_H
#define ARENA_TESTLIB_CMDCHILD_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct arena_test_cmd_child {
    pid_t pid; /* 0 when not running */
    int cmd;   /* the test writes commands here */
    int resp;  /* and reads answers here */
} arena_test_cmd_child_t;

/* Runs in the child: reads commands from cmd, answers on resp. */
typedef void (*arena_test_cmd_child_fn)(int cmd, int resp, void *arg);

/* Forks a child that dies with the test process (PR_SET_PDEATHSIG, exit 100
 * when the test is already gone), runs fn(cmd, resp, arg) and exits 0.
 * stdio is flushed first so the child does not print the parent's buffers
 * again. Returns 0 and fills *c, or -errno (nothing is left behind). */
int arena_test_cmd_child_spawn(arena_test_cmd_child_t *c, arena_test_cmd_child_fn fn, void *arg);

/* Writes the one-byte command. Returns 0 or -errno (-EPIPE: the child is gone). */
int arena_test_cmd_child_send(const arena_test_cmd_child_t *c, char cmd);

/* Reads exactly len bytes of answer. Returns 0, -EPIPE when the child went
 * away first, or -errno. */
int arena_test_cmd_child_read(const arena_test_cmd_child_t *c, void *buf, size_t len);

/* In the child: the next command byte, or 0 when the test closed the pipe
 * (or a read failed). */
char arena_test_cmd_child_next(int cmd);

/* arena_test_cmd_child_wait()'s answer when the child could not be reaped. */
#define ARENA_TEST_CMD_CHILD_LOST INT_MIN

/* Closes both pipes, waits for the child (EINTR retried) and reaps it.
 * Returns its exit status (0 to 255), -signal when a signal ended it (as
 * -WTERMSIG), or ARENA_TEST_CMD_CHILD_LOST when it could not be reaped;
 * c->pid is 0 afterwards either way. */
int arena_test_cmd_child_wait(arena_test_cmd_child_t *c);

#endif
