/* SPDX-License-Identifier: MIT
 *
 * arenad_ext.h -- what the files of the _arenad extension share: the two
 * object types (Connection, Lease), the exceptions and the error mapping.
 *
 * The extension is built against the stable ABI of Python 3.11 (the buffer
 * protocol is part of it from 3.11). Every object field is read and written
 * with the GIL held; calls into libarena-client that may wait on the daemon
 * run with the GIL released, on values copied out of the objects first.
 */
#ifndef ARENAD_EXT_H
#define ARENAD_EXT_H

#define Py_LIMITED_API 0x030B0000
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "arena.h"

#define ARENAD_MSG_SIZE 256 /* the daemon's error text kept per failed call */

typedef struct lease_object lease_object_t;

/* A Connection: one arena_conn_t of this process. */
typedef struct conn_object {
    PyObject_HEAD arena_conn_t *conn; /* NULL once closed */
    char *socket;                     /* the path asked for (PyMem), NULL: the defaults */
    pid_t pid;                        /* the process that made conn */
    unsigned generation;              /* bumped when a fork child connects anew */
    int busy;                         /* calls running with the GIL released */
    bool closing;                     /* close() asked while busy: the last call closes */
    uint64_t pressure_seen;           /* the library's Pressure count already reported */
    PyObject *callbacks;              /* list of on_pressure callables */
    lease_object_t *leases;           /* live leases of this connection (borrowed) */
} conn_object_t;

/* A Lease: a raw lease or an attach, mapped in this process. */
struct lease_object {
    PyObject_HEAD conn_object_t *owner; /* strong reference */
    arena_lease_t lease;
    unsigned generation;  /* owner->generation when made */
    bool readonly;        /* a read-only attach: buffers are read-only */
    bool attached;        /* made by attach(), not lease() */
    const char *gone;     /* NULL while usable, else why not (ValueError's text) */
    Py_ssize_t exports;   /* buffers handed out and not yet given back */
    lease_object_t *prev; /* in owner->leases */
    lease_object_t *next;
};

extern PyObject *arenad_error;              /* arenad.Error(OSError) */
extern PyObject *arenad_no_memory;          /* arenad.NoMemory(Error, MemoryError) */
extern PyObject *arenad_daemon_unavailable; /* arenad.DaemonUnavailable(Error, ConnectionError) */
extern PyTypeObject *arenad_conn_type;
extern PyTypeObject *arenad_lease_type;

/* Creates the three exception classes and adds them to module m. Returns 0
 * or -1 with an exception set. */
int arenad_errors_init(PyObject *m);

/* What a failed call was, for the choice of exception. */
typedef enum arenad_call {
    ARENAD_CALL_CONNECT, /* a missing socket means no daemon */
    ARENAD_CALL_LEASE,   /* a refusal is NoMemory */
    ARENAD_CALL_OTHER,
} arenad_call_t;

/* Raises the exception for library code `code` (< 0): NoMemory for a
 * refusal of a lease (no memory now, too large, timed out, a daemon
 * limit), DaemonUnavailable for no daemon / disconnected, Error otherwise.
 * errno is the code's errno (or the nearest one for the library's own
 * codes), strerror "what: the library's text: the daemon's text"
 * (daemon_msg may be NULL or ""); the exception also carries .code (the
 * library's code) and .daemon_message (str or None). Returns NULL. */
PyObject *arenad_raise(int code, arenad_call_t call, const char *what, const char *daemon_msg);

/* Creates the Connection type and adds it to m. Returns 0 or -1. */
int arenad_conn_init(PyObject *m);

/* Creates the Lease type and adds it to m. Returns 0 or -1. */
int arenad_lease_init(PyObject *m);

/* The connection's library handle for a call, after the checks every call
 * makes: not closed (ValueError), and in a fork child connected anew
 * (the parent's leases become unusable here). Counts the call as busy:
 * pair with arenad_conn_leave(). Returns NULL with an exception set. */
arena_conn_t *arenad_conn_enter(conn_object_t *self);

/* Ends a call begun by arenad_conn_enter() (GIL held): closes the
 * connection if close() came meanwhile, and runs the pressure callbacks
 * when the library read a Pressure notice (their exceptions are
 * propagated when `propagate`, else reported as unraisable). Returns 0 or
 * -1 with an exception set (only when propagate). */
int arenad_conn_leave(conn_object_t *self, bool propagate);

/* A new Lease of owner for l (the mapping is now the object's). Returns
 * NULL with an exception set; then l is released. */
PyObject *arenad_lease_new(conn_object_t *owner, const arena_lease_t *l, bool attached,
                           bool readonly);

/* Marks a lease as no longer usable through this object (its connection
 * was closed, or it belongs to the parent of a fork child) and unlinks it.
 * The mapping is left to the library. */
void arenad_lease_forget(lease_object_t *lease);

#endif
