/* SPDX-License-Identifier: MIT
 *
 * error.c -- error codes: the daemon's ErrorCode mapped to client codes, and
 * arena_strerror().
 *
 * The client speaks -errno plus a few ARENA_E* codes (arena.h). The daemon's
 * codes map one to one onto them, so a caller can act on a code without
 * knowing the wire. arena_strerror() must be thread-safe and must not
 * allocate (the preload library may call it), so errno text comes from
 * glibc's static table (strerrordesc_np, glibc >= 2.32) rather than
 * strerror(), whose unknown-value path writes a shared buffer. Pure
 * functions, any thread.
 */
#include <errno.h>
#include <string.h>

#include "arena.h"
#include "conn.h"
#include "wire.h"

int arena__error_from_wire(int wire_code)
{
    switch (wire_code) {
    case ARENA__WIRE_ERROR_INVALID_ARGUMENT:
        return -EINVAL;
    case ARENA__WIRE_ERROR_NO_MEMORY:
        return -ENOMEM;
    case ARENA__WIRE_ERROR_TOO_LARGE:
        return -E2BIG;
    case ARENA__WIRE_ERROR_NOT_FOUND:
        return -ENOENT;
    case ARENA__WIRE_ERROR_NOT_OWNER:
        return ARENA_ENOTOWNER;
    case ARENA__WIRE_ERROR_PERMISSION:
        return -EPERM;
    case ARENA__WIRE_ERROR_LIMIT:
        return ARENA_ELIMIT;
    case ARENA__WIRE_ERROR_FRAME_TOO_LARGE:
        return -EMSGSIZE;
    case ARENA__WIRE_ERROR_INTERNAL:
        return ARENA_EDAEMON;
    case ARENA__WIRE_ERROR_TIMED_OUT:
        return -ETIMEDOUT;
    case ARENA__WIRE_ERROR_CONFLICT:
        return -EBUSY;
    case ARENA__WIRE_ERROR_VERSION:
        return ARENA_EVERSION;
    case ARENA__WIRE_ERROR_PROTOCOL:
    default:
        /* ERROR_NONE in an Error message is itself a protocol violation. */
        return ARENA_EPROTOCOL;
    }
}

const char *arena_strerror(int err)
{
    switch (err) {
    case 0:
        return "Success";
    case ARENA_ENODAEMON:
        return "No arenad daemon answers at the socket";
    case ARENA_EVERSION:
        return "arenad speaks another protocol version";
    case ARENA_ENOTOWNER:
        return "The lease belongs to another client";
    case ARENA_ELIMIT:
        return "An arenad limit was reached";
    case ARENA_EDISCONNECTED:
        return "The connection to arenad was lost";
    case ARENA_EPROTOCOL:
        return "arenad sent a message that cannot be parsed";
    case ARENA_EDAEMON:
        return "arenad failed on its own side";
    case ARENA_ERECLAIMED:
        return "arenad took the parked lease back";
    default:
        break;
    }
    if (err < 0 && err > -4096) {
        const char *s = strerrordesc_np(-err);
        if (s)
            return s;
    }
    if (err > 0 && err < 4096) {
        /* A positive errno by mistake: still say what it is. */
        const char *s = strerrordesc_np(err);
        if (s)
            return s;
    }
    return "Unknown error";
}
