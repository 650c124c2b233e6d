/* SPDX-License-Identifier: MIT
 *
 * errors.c -- the exceptions of the arenad module and the mapping from
 * libarena-client's codes to them.
 *
 * arenad.Error is an OSError carrying the errno (the nearest errno for the
 * library's own ARENA_E* codes), the library's text and the daemon's;
 * NoMemory (also a MemoryError) is a refusal of memory, DaemonUnavailable
 * (also a ConnectionError) a daemon that is not there or went away. Trusts
 * the daemon's text only as text. GIL held everywhere.
 */
#include "arenad_ext.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

PyObject *arenad_error;
PyObject *arenad_no_memory;
PyObject *arenad_daemon_unavailable;

/* The errno for a library code. */
static int code_errno(int code)
{
    switch (code) {
    case ARENA_ENODAEMON:
        return ECONNREFUSED;
    case ARENA_EVERSION:
    case ARENA_EPROTOCOL:
        return EPROTO;
    case ARENA_ENOTOWNER:
        return EPERM;
    case ARENA_ELIMIT:
        return EDQUOT;
    case ARENA_EDISCONNECTED:
        return ECONNRESET;
    case ARENA_EDAEMON:
        return EIO;
    case ARENA_ERECLAIMED:
        return ESTALE;
    default:
        return code < 0 && code > -4096 ? -code : EIO;
    }
}

static PyObject *code_class(int code, arenad_call_t call)
{
    if (code == ARENA_ENODAEMON || code == ARENA_EDISCONNECTED)
        return arenad_daemon_unavailable;
    if (call == ARENAD_CALL_CONNECT &&
        (code == -ENOENT || code == -ECONNREFUSED || code == -ECONNRESET))
        return arenad_daemon_unavailable;
    if (call == ARENAD_CALL_LEASE &&
        (code == -ENOMEM || code == -E2BIG || code == -ETIMEDOUT || code == ARENA_ELIMIT))
        return arenad_no_memory;
    return arenad_error;
}

PyObject *arenad_raise(int code, arenad_call_t call, const char *what, const char *daemon_msg)
{
    bool has_msg = daemon_msg && daemon_msg[0] != '\0';
    char text[512];
    if (has_msg)
        (void)snprintf(text, sizeof(text), "%s: %s: %s", what, arena_strerror(code), daemon_msg);
    else
        (void)snprintf(text, sizeof(text), "%s: %s", what, arena_strerror(code));
    PyObject *cls = code_class(code, call);
    PyObject *exc = PyObject_CallFunction(cls, "is", code_errno(code), text);
    if (!exc)
        return NULL;
    PyObject *pycode = PyLong_FromLong(code);
    PyObject *pymsg =
        has_msg ? PyUnicode_DecodeUTF8(daemon_msg, (Py_ssize_t)strlen(daemon_msg), "replace")
                : Py_NewRef(Py_None);
    if (!pycode || !pymsg || PyObject_SetAttrString(exc, "code", pycode) < 0 ||
        PyObject_SetAttrString(exc, "daemon_message", pymsg) < 0) {
        Py_XDECREF(pycode);
        Py_XDECREF(pymsg);
        Py_DECREF(exc);
        return NULL;
    }
    Py_DECREF(pycode);
    Py_DECREF(pymsg);
    PyErr_SetObject(cls, exc);
    Py_DECREF(exc);
    return NULL;
}

/* One class named arenad.NAME with doc and bases; added to m. */
static PyObject *new_class(PyObject *m, const char *name, const char *doc, PyObject *bases)
{
    char full[64];
    (void)snprintf(full, sizeof(full), "arenad.%s", name);
    PyObject *cls = PyErr_NewExceptionWithDoc(full, doc, bases, NULL);
    Py_DECREF(bases);
    if (!cls)
        return NULL;
    if (PyModule_AddObjectRef(m, name, cls) < 0) {
        Py_DECREF(cls);
        return NULL;
    }
    return cls;
}

int arenad_errors_init(PyObject *m)
{
    PyObject *b = PyTuple_Pack(1, PyExc_OSError);
    if (!b)
        return -1;
    arenad_error =
        new_class(m, "Error",
                  "A call to arenad failed. An OSError: .errno is the errno (the nearest one\n"
                  "for the library's own codes), .strerror the library's text followed by the\n"
                  "daemon's; .code is libarena-client's code and .daemon_message the daemon's\n"
                  "text (None when it said nothing).",
                  b);
    if (!arenad_error)
        return -1;
    b = PyTuple_Pack(2, arenad_error, PyExc_MemoryError);
    if (!b)
        return -1;
    arenad_no_memory =
        new_class(m, "NoMemory",
                  "The daemon refused memory: none free now (and none came within `wait`),\n"
                  "more than it could ever grant, or one of its limits. Also a MemoryError.",
                  b);
    if (!arenad_no_memory)
        return -1;
    b = PyTuple_Pack(2, arenad_error, PyExc_ConnectionError);
    if (!b)
        return -1;
    arenad_daemon_unavailable =
        new_class(m, "DaemonUnavailable",
                  "No daemon answers at the socket, or the connection to it was lost.\n"
                  "Also a ConnectionError.",
                  b);
    return arenad_daemon_unavailable ? 0 : -1;
}
