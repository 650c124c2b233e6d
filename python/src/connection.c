/* SPDX-License-Identifier: MIT
 *
 * connection.c -- arenad.Connection: one connection of this process to
 * arenad, the calls made through it (lease, attach, unshare, stats,
 * notifications) and its pressure callbacks.
 *
 * Lifetime: every Lease holds a strong reference to its Connection, so a
 * Connection is freed only once its leases are. close() refuses while a
 * buffer of one of its leases is alive (the library would unmap it), and
 * is deferred to the end of the last call another thread still runs with
 * the GIL released (`busy`). After fork() the child's first call makes a
 * fresh connection; the parent's one is orphaned by the library (its fds
 * closed in the child, the parent unaffected) and its leases become
 * unusable here. Trusts the library; the daemon's text is only text.
 * Threads: object fields under the GIL; library calls without it.
 */
#include "arenad_ext.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "conn.h"

PyTypeObject *arenad_conn_type;

static PyObject *closed_error(void)
{
    PyErr_SetString(PyExc_ValueError, "the arenad connection is closed");
    return NULL;
}

/* The library's Pressure count of c. */
static uint64_t pressure_total(arena_conn_t *c)
{
    arena__conn_notes_t n;
    return arena__conn_notes(c, &n) == 0 ? n.pressure_total : 0;
}

/* Forgets every lease of self with the reason why. */
static void forget_leases(conn_object_t *self, const char *why)
{
    while (self->leases) {
        lease_object_t *l = self->leases;
        arenad_lease_forget(l);
        l->gone = why;
    }
}

/* Disconnects now (nothing busy). In a fork child the parent's connection
 * is only orphaned: arena_disconnect() would unmap the child's inherited
 * mappings, which buffers made before the fork may still use. */
static void do_close(conn_object_t *self)
{
    arena_conn_t *c = self->conn;
    forget_leases(self, "the lease's connection is closed");
    self->conn = NULL;
    self->closing = false;
    if (!c)
        return;
    if (self->pid != getpid()) {
        (void)arena__conn_poll_notes(c); /* orphans it: closes our copies of its fds */
        return;
    }
    PyThreadState *unlocked = PyEval_SaveThread();
    arena_disconnect(c);
    PyEval_RestoreThread(unlocked);
}

/* In a fork child: a connection of our own. */
static int fork_reconnect(conn_object_t *self)
{
    arena_conn_t *old = self->conn, *c = NULL;
    forget_leases(self, "the lease belongs to the parent process (share it, attach the token)");
    self->busy = 0; /* the parent's threads do not exist here */
    self->conn = NULL;
    int r;
    PyThreadState *unlocked = PyEval_SaveThread();
    (void)arena__conn_poll_notes(old); /* orphans it */
    r = arena_connect(self->socket, &c);
    PyEval_RestoreThread(unlocked);
    self->pid = getpid();
    self->generation++;
    if (r < 0) {
        arenad_raise(r, ARENAD_CALL_CONNECT, "connect (after fork)", NULL);
        return -1;
    }
    self->conn = c;
    self->pressure_seen = pressure_total(c);
    return 0;
}

arena_conn_t *arenad_conn_enter(conn_object_t *self)
{
    if (!self->conn || self->closing)
        return (arena_conn_t *)closed_error();
    if (self->pid != getpid() && fork_reconnect(self) < 0)
        return NULL;
    self->busy++;
    return self->conn;
}

/* Calls every pressure callback. Returns 0 or -1 (propagate). */
static int run_callbacks(conn_object_t *self, bool propagate)
{
    PyObject *cbs = PySequence_List(self->callbacks);
    if (!cbs)
        return propagate ? -1 : (PyErr_WriteUnraisable(self->callbacks), 0);
    int r = 0;
    for (Py_ssize_t i = 0; i < PyList_Size(cbs) && r == 0; i++) {
        PyObject *cb = PyList_GetItem(cbs, i);
        PyObject *res = PyObject_CallNoArgs(cb);
        if (res)
            Py_DECREF(res);
        else if (propagate)
            r = -1;
        else
            PyErr_WriteUnraisable(cb);
    }
    Py_DECREF(cbs);
    return r;
}

int arenad_conn_leave(conn_object_t *self, bool propagate)
{
    if (self->busy > 0)
        self->busy--;
    if (self->closing && self->busy == 0) {
        do_close(self);
        return 0;
    }
    if (!self->conn)
        return 0;
    uint64_t seen = pressure_total(self->conn);
    if (seen == self->pressure_seen)
        return 0;
    self->pressure_seen = seen;
    return run_callbacks(self, propagate);
}

/* ---- construction ---------------------------------------------------------- */

static PyObject *conn_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"socket", NULL};
    PyObject *sock = Py_None, *path = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:Connection", kwlist, &sock))
        return NULL;
    if (sock != Py_None && !PyUnicode_FSConverter(sock, &path))
        return NULL;
    conn_object_t *self = (conn_object_t *)PyType_GenericAlloc(type, 0);
    if (!self) {
        Py_XDECREF(path);
        return NULL;
    }
    self->callbacks = PyList_New(0);
    if (!self->callbacks)
        goto fail;
    if (path) {
        char *p;
        Py_ssize_t n;
        if (PyBytes_AsStringAndSize(path, &p, &n) < 0)
            goto fail;
        if (n == 0 || (size_t)n != strlen(p)) {
            PyErr_SetString(PyExc_ValueError, "socket: an empty path or an embedded NUL");
            goto fail;
        }
        self->socket = PyMem_Malloc((size_t)n + 1);
        if (!self->socket) {
            PyErr_NoMemory();
            goto fail;
        }
        memcpy(self->socket, p, (size_t)n + 1);
        Py_CLEAR(path);
    }
    arena_conn_t *c = NULL;
    int r;
    const char *sp = self->socket;
    PyThreadState *unlocked = PyEval_SaveThread();
    r = arena_connect(sp, &c);
    PyEval_RestoreThread(unlocked);
    if (r < 0) {
        arenad_raise(r, ARENAD_CALL_CONNECT, "connect", NULL);
        goto fail;
    }
    self->conn = c;
    self->pid = getpid();
    self->pressure_seen = pressure_total(c);
    return (PyObject *)self;
fail:
    Py_XDECREF(path);
    Py_DECREF(self);
    return NULL;
}

static int conn_traverse(conn_object_t *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE((PyObject *)self));
    Py_VISIT(self->callbacks);
    return 0;
}

static int conn_clear(conn_object_t *self)
{
    Py_CLEAR(self->callbacks);
    return 0;
}

static void conn_dealloc(conn_object_t *self)
{
    PyTypeObject *tp = Py_TYPE((PyObject *)self);
    PyObject_GC_UnTrack(self);
    (void)conn_clear(self);
    self->busy = 0;
    do_close(self); /* no lease is left: each held a reference */
    PyMem_Free(self->socket);
    freefunc tp_free = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    tp_free(self);
    Py_DECREF(tp);
}

/* ---- arguments -------------------------------------------------------------- */

/* wait (seconds, None: do not wait, inf: forever) to the library's ms. */
static int wait_ms_of(PyObject *wait, int *ret_ms)
{
    if (wait == Py_None) {
        *ret_ms = 0;
        return 0;
    }
    if (PyBool_Check(wait) || !PyNumber_Check(wait) || PyComplex_Check(wait)) {
        PyErr_SetString(PyExc_TypeError, "wait must be a number of seconds or None");
        return -1;
    }
    double s = PyFloat_AsDouble(wait);
    if (s == -1.0 && PyErr_Occurred())
        return -1;
    if (isnan(s) || s < 0) {
        PyErr_SetString(PyExc_ValueError, "wait must be >= 0 seconds (or None)");
        return -1;
    }
    double ms = ceil(s * 1000.0);
    *ret_ms = isinf(s) ? -1 : ms >= (double)INT_MAX ? INT_MAX : (int)ms;
    return 0;
}

/* A size in bytes: an int > 0 (anything with __index__). */
static int size_of(PyObject *obj, size_t *ret_size)
{
    if (PyBool_Check(obj) || PyFloat_Check(obj)) {
        PyErr_SetString(PyExc_TypeError, "size must be an int");
        return -1;
    }
    PyObject *i = PyNumber_Index(obj);
    if (!i)
        return -1;
    size_t v = PyLong_AsSize_t(i);
    Py_DECREF(i);
    if (v == (size_t)-1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError))
            return -1;
        PyErr_Clear();
        v = 0;
    }
    if (v == 0) {
        PyErr_SetString(PyExc_ValueError, "size must be > 0 and fit in a size_t");
        return -1;
    }
    *ret_size = v;
    return 0;
}

/* A token: a str without NULs, shorter than ARENA_TOKEN_SIZE. */
static int token_of(PyObject *obj, char tok[ARENA_TOKEN_SIZE])
{
    if (!PyUnicode_Check(obj)) {
        PyErr_SetString(PyExc_TypeError, "token must be a str");
        return -1;
    }
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(obj, &n);
    if (!s)
        return -1;
    if (n <= 0 || n >= ARENA_TOKEN_SIZE || strlen(s) != (size_t)n) {
        PyErr_SetString(PyExc_ValueError, "not an arenad token");
        return -1;
    }
    memcpy(tok, s, (size_t)n + 1);
    return 0;
}

/* ---- methods ---------------------------------------------------------------- */

static PyObject *conn_lease(conn_object_t *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"size", "wait", NULL};
    PyObject *osize, *owait = Py_None;
    size_t size;
    int wait_ms;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:lease", kwlist, &osize, &owait) ||
        size_of(osize, &size) < 0 || wait_ms_of(owait, &wait_ms) < 0)
        return NULL;
    arena_conn_t *c = arenad_conn_enter(self);
    if (!c)
        return NULL;
    arena_lease_t l;
    char msg[ARENAD_MSG_SIZE] = "";
    int r;
    PyThreadState *unlocked = PyEval_SaveThread();
    r = arena_lease(c, size, wait_ms, &l);
    if (r < 0)
        (void)arena__conn_last_error(c, msg, sizeof(msg));
    PyEval_RestoreThread(unlocked);
    PyObject *res = r < 0 ? arenad_raise(r, ARENAD_CALL_LEASE, "lease", msg)
                          : arenad_lease_new(self, &l, false, false);
    (void)arenad_conn_leave(self, false);
    return res;
}

static PyObject *conn_attach(conn_object_t *self, PyObject *arg)
{
    char tok[ARENA_TOKEN_SIZE];
    if (token_of(arg, tok) < 0)
        return NULL;
    arena_conn_t *c = arenad_conn_enter(self);
    if (!c)
        return NULL;
    arena_lease_t l;
    char msg[ARENAD_MSG_SIZE] = "";
    int r;
    PyThreadState *unlocked = PyEval_SaveThread();
    r = arena_attach(c, tok, &l);
    if (r < 0)
        (void)arena__conn_last_error(c, msg, sizeof(msg));
    PyEval_RestoreThread(unlocked);
    PyObject *res;
    if (r == -EINVAL) {
        PyErr_SetString(PyExc_ValueError, "attach: not an arenad token");
        res = NULL;
    } else {
        res = r < 0 ? arenad_raise(r, ARENAD_CALL_OTHER, "attach", msg)
                    : arenad_lease_new(self, &l, true, true);
    }
    (void)arenad_conn_leave(self, false);
    return res;
}

static PyObject *conn_unshare(conn_object_t *self, PyObject *arg)
{
    char tok[ARENA_TOKEN_SIZE];
    if (token_of(arg, tok) < 0)
        return NULL;
    arena_conn_t *c = arenad_conn_enter(self);
    if (!c)
        return NULL;
    char msg[ARENAD_MSG_SIZE] = "";
    int r;
    PyThreadState *unlocked = PyEval_SaveThread();
    r = arena_unshare(c, tok);
    if (r < 0)
        (void)arena__conn_last_error(c, msg, sizeof(msg));
    PyEval_RestoreThread(unlocked);
    (void)arenad_conn_leave(self, false);
    if (r == -EINVAL) {
        PyErr_SetString(PyExc_ValueError, "unshare: not an arenad token");
        return NULL;
    }
    if (r < 0)
        return arenad_raise(r, ARENAD_CALL_OTHER, "unshare", msg);
    Py_RETURN_NONE;
}

static PyObject *conn_stats(conn_object_t *self, PyObject *Py_UNUSED(ignored))
{
    arena_conn_t *c = arenad_conn_enter(self);
    if (!c)
        return NULL;
    arena__conn_info_t info;
    arena__conn_notes_t notes;
    arena__admin_status_t st;
    arena_stats_t ps;
    size_t tracked;
    char msg[ARENAD_MSG_SIZE] = "";
    int r;
    PyThreadState *unlocked = PyEval_SaveThread();
    (void)arena__conn_info(c, &info);
    (void)arena__conn_notes(c, &notes);
    (void)arena_stats(&ps);
    tracked = arena__conn_tracked(c);
    r = arena__admin_status(c, &st);
    if (r < 0)
        (void)arena__conn_last_error(c, msg, sizeof(msg));
    PyEval_RestoreThread(unlocked);
    (void)arenad_conn_leave(self, false);
    if (r < 0)
        return arenad_raise(r, ARENAD_CALL_OTHER, "stats", msg);
    return Py_BuildValue(
        "{s:K,s:s,s:s,s:K,s:K,s:K,s:n,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K}", "client_id",
        (unsigned long long)info.client_id, "socket", info.socket_path, "daemon_version",
        info.daemon_version, "budget", (unsigned long long)info.budget, "granule",
        (unsigned long long)info.granule, "heap_size", (unsigned long long)info.heap_size, "leases",
        (Py_ssize_t)tracked, "pressure_notices", (unsigned long long)notes.pressure_total,
        "reclaimed_notices", (unsigned long long)notes.reclaimed_total, "daemon_budget",
        (unsigned long long)st.budget, "daemon_leased_bytes", (unsigned long long)st.leased_bytes,
        "process_leased_bytes", (unsigned long long)ps.leased_bytes, "process_live_bytes",
        (unsigned long long)ps.live_bytes, "process_parked_bytes",
        (unsigned long long)ps.parked_bytes, "process_lease_count",
        (unsigned long long)ps.lease_count);
}

static PyObject *conn_fileno(conn_object_t *self, PyObject *Py_UNUSED(ignored))
{
    arena_conn_t *c = arenad_conn_enter(self);
    if (!c)
        return NULL;
    int fd = arena__conn_socket_fd(c);
    (void)arenad_conn_leave(self, false);
    if (fd < 0)
        return arenad_raise(ARENA_EDISCONNECTED, ARENAD_CALL_OTHER, "fileno", NULL);
    return PyLong_FromLong(fd);
}

static PyObject *conn_process_notifications(conn_object_t *self, PyObject *Py_UNUSED(ignored))
{
    arena_conn_t *c = arenad_conn_enter(self);
    if (!c)
        return NULL;
    int r;
    PyThreadState *unlocked = PyEval_SaveThread();
    r = arena__conn_poll_notes(c);
    arena__conn_after_notes(c);
    PyEval_RestoreThread(unlocked);
    if (arenad_conn_leave(self, true) < 0)
        return NULL;
    if (r < 0)
        return arenad_raise(r, ARENAD_CALL_OTHER, "process_notifications", NULL);
    return PyLong_FromLong(r);
}

static PyObject *conn_on_pressure(conn_object_t *self, PyObject *cb)
{
    if (!PyCallable_Check(cb)) {
        PyErr_SetString(PyExc_TypeError, "on_pressure: callback must be callable");
        return NULL;
    }
    if (!self->callbacks || PyList_Append(self->callbacks, cb) < 0)
        return NULL;
    return Py_NewRef(cb);
}

static PyObject *conn_close(conn_object_t *self, PyObject *Py_UNUSED(ignored))
{
    if (!self->conn || self->closing)
        Py_RETURN_NONE;
    for (lease_object_t *l = self->leases; l; l = l->next) {
        if (l->exports > 0) {
            PyErr_SetString(PyExc_BufferError,
                            "cannot close the connection: a buffer of one of its leases "
                            "(memoryview, NumPy array) is still alive");
            return NULL;
        }
    }
    if (self->busy > 0 && self->pid == getpid())
        self->closing = true; /* the last call running closes */
    else
        do_close(self);
    Py_RETURN_NONE;
}

static PyObject *conn_enter_cm(conn_object_t *self, PyObject *Py_UNUSED(ignored))
{
    if (!self->conn || self->closing)
        return closed_error();
    return Py_NewRef((PyObject *)self);
}

static PyObject *conn_exit_cm(conn_object_t *self, PyObject *Py_UNUSED(args))
{
    return conn_close(self, NULL);
}

static PyObject *conn_get_closed(conn_object_t *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(!self->conn || self->closing);
}

static PyObject *conn_repr(conn_object_t *self)
{
    if (!self->conn)
        return PyUnicode_FromString("<arenad.Connection closed>");
    arena__conn_info_t info;
    (void)arena__conn_info(self->conn, &info);
    return PyUnicode_FromFormat("<arenad.Connection socket=%s client_id=%llu>", info.socket_path,
                                (unsigned long long)info.client_id);
}

static PyMethodDef conn_methods[] = {
    {"lease", (PyCFunction)(void (*)(void))conn_lease, METH_VARARGS | METH_KEYWORDS,
     "lease($self, /, size, wait=None)\n--\n\n"
     "Leases at least `size` bytes (rounded up to the daemon's granule) of shared\n"
     "memory, mapped read/write here. wait: seconds the daemon may queue the\n"
     "request when memory is short (None: answer at once; math.inf: forever).\n"
     "Raises NoMemory when refused (the daemon's reason in the message),\n"
     "ValueError for a size <= 0 or a negative wait, TypeError for other types."},
    {"attach", (PyCFunction)conn_attach, METH_O,
     "attach($self, token, /)\n--\n\n"
     "Maps the lease a token names (see Lease.share) into this process, without a\n"
     "copy: its pages are the sharer's. The Lease is read-only when the share is.\n"
     "Its release() detaches; the pages live while any holder holds them, even\n"
     "after the sharer exits or is killed. Raises ValueError for a malformed\n"
     "token, Error (errno ENOENT) for one revoked, spent or never made."},
    {"unshare", (PyCFunction)conn_unshare, METH_O,
     "unshare($self, token, /)\n--\n\n"
     "Revokes a token made through this connection: no new attaches; those\n"
     "attached keep theirs."},
    {"stats", (PyCFunction)conn_stats, METH_NOARGS,
     "stats($self, /)\n--\n\n"
     "The connection (client_id, socket, daemon_version, budget, granule, heap_size,\n"
     "leases held, pressure_notices, reclaimed_notices), the daemon\n"
     "(daemon_budget, daemon_leased_bytes: everyone's) and this process's allocator\n"
     "(process_*_bytes, process_lease_count)."},
    {"fileno", (PyCFunction)conn_fileno, METH_NOARGS,
     "fileno($self, /)\n--\n\n"
     "A descriptor that becomes readable when the daemon sent notifications\n"
     "(memory pressure): hand it to select/selectors/asyncio and call\n"
     "process_notifications() when it is. Owned by the connection: never close it.\n"
     "It changes when the library reconnects to a restarted daemon: ask again then."},
    {"process_notifications", (PyCFunction)conn_process_notifications, METH_NOARGS,
     "process_notifications($self, /)\n--\n\n"
     "Reads the notifications waiting, without blocking, runs the pressure\n"
     "callbacks if one was Pressure (their exceptions propagate), and returns\n"
     "how many were read."},
    {"on_pressure", (PyCFunction)conn_on_pressure, METH_O,
     "on_pressure($self, callback, /)\n--\n\n"
     "Registers callback() (no arguments; usable as a decorator), called with the\n"
     "GIL held when the daemon said memory is short and this process holds more\n"
     "than its share: it should release leases it can do without. Called from\n"
     "process_notifications() or after any call on this connection that read the\n"
     "notice (there its exceptions are reported as unraisable)."},
    {"close", (PyCFunction)conn_close, METH_NOARGS,
     "close($self, /)\n--\n\n"
     "Disconnects: the daemon takes back every lease still held through this\n"
     "connection (their Lease objects raise ValueError from then on). Raises\n"
     "BufferError while a buffer of one of its leases is alive. Idempotent."},
    {"__enter__", (PyCFunction)conn_enter_cm, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)conn_exit_cm, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef conn_getset[] = {
    {"closed", (getter)conn_get_closed, NULL, "True once close() was called.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot conn_slots[] = {
    {Py_tp_doc, "Connection(socket=None)\n--\n\n"
                "A connection to arenad: see arenad.connect(). A context manager (closes on\n"
                "exit). Safe to use from several threads; after os.fork() the child's first\n"
                "call connects anew."},
    {Py_tp_new, conn_new},
    {Py_tp_dealloc, conn_dealloc},
    {Py_tp_traverse, conn_traverse},
    {Py_tp_clear, conn_clear},
    {Py_tp_methods, conn_methods},
    {Py_tp_getset, conn_getset},
    {Py_tp_repr, conn_repr},
    {0, NULL},
};

static PyType_Spec conn_spec = {
    .name = "arenad.Connection",
    .basicsize = sizeof(conn_object_t),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = conn_slots,
};

int arenad_conn_init(PyObject *m)
{
    arenad_conn_type = (PyTypeObject *)PyType_FromSpec(&conn_spec);
    if (!arenad_conn_type)
        return -1;
    return PyModule_AddObjectRef(m, "Connection", (PyObject *)arenad_conn_type);
}
