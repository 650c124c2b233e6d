/* SPDX-License-Identifier: MIT
 *
 * paths.h -- where arenad listens and clients look, and frame limits both sides
 * agree on.
 */
#ifndef ARENA_COMMON_PATHS_H
#define ARENA_COMMON_PATHS_H

#include <stddef.h>

/* Frames: 4-byte little-endian length, then one protobuf Envelope. */
#define ARENA_FRAME_HEADER          4u
#define ARENA_DEFAULT_MAX_FRAME     (64u * 1024u)         /* daemon's limit on requests */
#define ARENA_MAX_REPLY_FRAME       (16u * 1024u * 1024u) /* client's limit on replies */
#define ARENA_DEFAULT_SYSTEM_SOCKET "/run/arenad/arenad.sock"

/* Resolves the default socket path: $ARENAD_SOCKET, else the system socket
 * when running as root, else $XDG_RUNTIME_DIR/arenad.sock. Writes it into buf.
 * Returns 0, -ENOENT (no rule applies: not root and no XDG_RUNTIME_DIR), or
 * -ENAMETOOLONG (longer than len or than a sockaddr_un path). */
int arena__default_socket_path(char *buf, size_t len);

/* Resolves where a client looks for the daemon: $ARENAD_SOCKET; as root the
 * system socket; otherwise $XDG_RUNTIME_DIR/arenad.sock when a socket exists
 * there (a per-user daemon), else the system socket when one exists (arenad
 * under systemd), else the per-user path (or, without XDG_RUNTIME_DIR, the
 * system path) so that error messages name a sensible place. Writes it into
 * buf. Returns 0 or -ENAMETOOLONG. */
int arena__client_socket_path(char *buf, size_t len);

#endif
