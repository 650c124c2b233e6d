/* SPDX-License-Identifier: MIT
 *
 * share_demo.h -- `arena-demo --share` (share_demo.c), called by the demo's
 * main once a daemon runs.
 */
#ifndef ARENA_DEMO_SHARE_H
#define ARENA_DEMO_SHARE_H

#include <stddef.h>

/* Runs the hand-off story against the daemon at socket with a scenario of
 * scenario_mb MiB; prints what happened and a RESULT line. Returns the
 * process exit code (0: the simulator read the generator's bytes after the
 * generator had exited). */
int arena_demo_share(const char *socket, size_t scenario_mb);

#endif
