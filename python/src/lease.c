/* SPDX-License-Identifier: MIT
 *
 * lease.c -- arenad.Lease: a lease (or an attach) mapped in this process,
 * exported through the buffer protocol without a copy, shared by token.
 *
 * Invariant: while `exports` > 0 the mapping stays: release() refuses with
 * BufferError, and the connection refuses to close. Once `gone` is set
 * (released, connection closed, or inherited across fork) every use raises
 * ValueError and the object no longer touches the mapping. A read-only
 * attach gives read-only buffers only (a writable request is TypeError).
 * Trusts the library for the mapping; learns whether an attach is
 * read-only from the mapping itself. Threads: fields under the GIL.
 */
#include "arenad_ext.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conn.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

PyTypeObject *arenad_lease_type;

/* Whether [addr, addr + 1 page) is mapped writable. MADV_POPULATE_WRITE
 * (Linux 5.14) succeeds on a writable mapping only and changes no byte; if
 * it fails (read-only, or an older kernel) /proc/self/maps decides. */
static bool mapping_writable(void *addr)
{
    long page = sysconf(_SC_PAGESIZE);
    if (madvise(addr, (size_t)(page > 0 ? page : 4096), MADV_POPULATE_WRITE) == 0)
        return true;
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return false;
    bool w = false;
    unsigned long lo, hi;
    char perms[8];
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && (uintptr_t)addr >= lo &&
            (uintptr_t)addr < hi) {
            w = perms[1] == 'w';
            break;
        }
    }
    (void)fclose(f);
    return w;
}

static void link_lease(lease_object_t *self)
{
    conn_object_t *o = self->owner;
    self->prev = NULL;
    self->next = o->leases;
    if (o->leases)
        o->leases->prev = self;
    o->leases = self;
}

void arenad_lease_forget(lease_object_t *self)
{
    conn_object_t *o = self->owner;
    if (self->prev)
        self->prev->next = self->next;
    else if (o && o->leases == self)
        o->leases = self->next;
    if (self->next)
        self->next->prev = self->prev;
    self->prev = self->next = NULL;
    if (!self->gone)
        self->gone = "the lease is released";
}

PyObject *arenad_lease_new(conn_object_t *owner, const arena_lease_t *l, bool attached,
                           bool maybe_readonly)
{
    bool readonly = maybe_readonly && !mapping_writable(l->addr);
    lease_object_t *self = (lease_object_t *)PyType_GenericAlloc(arenad_lease_type, 0);
    if (!self) {
        arena_conn_t *c = owner->conn;
        PyThreadState *unlocked = PyEval_SaveThread();
        (void)arena_release(c, l);
        PyEval_RestoreThread(unlocked);
        return NULL;
    }
    self->owner = (conn_object_t *)Py_NewRef((PyObject *)owner);
    self->lease = *l;
    self->generation = owner->generation;
    self->attached = attached;
    self->readonly = readonly;
    link_lease(self);
    return (PyObject *)self;
}

/* Raises ValueError when the lease is not usable. Returns 0 or -1. */
static int check_live(lease_object_t *self)
{
    if (self->gone) {
        PyErr_SetString(PyExc_ValueError, self->gone);
        return -1;
    }
    if (self->owner->pid != getpid()) {
        /* A fork child: the next call on the connection forgets it; say
         * so already. */
        PyErr_SetString(PyExc_ValueError,
                        "the lease belongs to the parent process (share it, attach the token)");
        return -1;
    }
    return 0;
}

/* Gives the lease back through the library. GIL held on entry and exit. */
static int release_now(lease_object_t *self)
{
    conn_object_t *o = self->owner;
    arena_lease_t l = self->lease;
    arenad_lease_forget(self);
    arena_conn_t *c = arenad_conn_enter(o);
    if (!c)
        return -1;
    char msg[ARENAD_MSG_SIZE] = "";
    int r;
    PyThreadState *unlocked = PyEval_SaveThread();
    r = arena_release(c, &l);
    if (r < 0)
        (void)arena__conn_last_error(c, msg, sizeof(msg));
    PyEval_RestoreThread(unlocked);
    (void)arenad_conn_leave(o, false);
    /* No daemon to tell: it took the lease back when the connection broke. */
    if (r < 0 && r != ARENA_EDISCONNECTED && r != ARENA_ENODAEMON) {
        arenad_raise(r, ARENAD_CALL_OTHER, "release", msg);
        return -1;
    }
    return 0;
}

static PyObject *lease_release(lease_object_t *self, PyObject *Py_UNUSED(ignored))
{
    if (self->gone)
        Py_RETURN_NONE;
    if (self->exports > 0) {
        PyErr_Format(PyExc_BufferError,
                     "cannot release the lease: %zd buffer(s) of it (memoryview, NumPy "
                     "array, ...) are still alive; release or delete them first",
                     self->exports);
        return NULL;
    }
    if (self->owner->pid != getpid()) {
        arenad_lease_forget(self); /* the parent's: the parent releases it */
        Py_RETURN_NONE;
    }
    if (release_now(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *lease_share(lease_object_t *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"readonly", "once", NULL};
    int readonly = 0, once = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$pp:share", kwlist, &readonly, &once))
        return NULL;
    if (check_live(self) < 0)
        return NULL;
    arena_conn_t *c = arenad_conn_enter(self->owner);
    if (!c)
        return NULL;
    unsigned flags = (readonly ? ARENA_SHARE_READONLY : 0u) | (once ? ARENA_SHARE_ONCE : 0u);
    arena_lease_t l = self->lease;
    char tok[ARENA_TOKEN_SIZE] = "";
    char msg[ARENAD_MSG_SIZE] = "";
    int r;
    PyThreadState *unlocked = PyEval_SaveThread();
    r = arena_share(c, &l, flags, tok);
    if (r < 0)
        (void)arena__conn_last_error(c, msg, sizeof(msg));
    PyEval_RestoreThread(unlocked);
    (void)arenad_conn_leave(self->owner, false);
    if (r < 0)
        return arenad_raise(r, ARENAD_CALL_OTHER, "share", msg);
    return PyUnicode_FromString(tok);
}

static PyObject *lease_enter_cm(lease_object_t *self, PyObject *Py_UNUSED(ignored))
{
    if (check_live(self) < 0)
        return NULL;
    return Py_NewRef((PyObject *)self);
}

static PyObject *lease_exit_cm(lease_object_t *self, PyObject *Py_UNUSED(args))
{
    return lease_release(self, NULL);
}

/* ---- the buffer protocol ------------------------------------------------------ */

static int lease_getbuffer(lease_object_t *self, Py_buffer *view, int flags)
{
    if (check_live(self) < 0 || self->owner->closing) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "the lease's connection is closing");
        view->obj = NULL;
        return -1;
    }
    if (self->readonly && (flags & PyBUF_WRITABLE)) {
        PyErr_SetString(PyExc_TypeError, "the lease is a read-only attach: no writable buffer");
        view->obj = NULL;
        return -1;
    }
    if (PyBuffer_FillInfo(view, (PyObject *)self, self->lease.addr, (Py_ssize_t)self->lease.size,
                          self->readonly, flags) < 0)
        return -1;
    self->exports++;
    return 0;
}

static void lease_releasebuffer(lease_object_t *self, Py_buffer *Py_UNUSED(view))
{
    self->exports--;
}

/* ---- attributes ------------------------------------------------------------ */

static Py_ssize_t lease_len(lease_object_t *self)
{
    return check_live(self) < 0 ? -1 : (Py_ssize_t)self->lease.size;
}

static PyObject *lease_get_size(lease_object_t *self, void *Py_UNUSED(closure))
{
    return check_live(self) < 0 ? NULL : PyLong_FromSize_t(self->lease.size);
}

static PyObject *lease_get_id(lease_object_t *self, void *Py_UNUSED(closure))
{
    return check_live(self) < 0 ? NULL : PyLong_FromUnsignedLongLong(self->lease.id);
}

static PyObject *lease_get_zeroed(lease_object_t *self, void *Py_UNUSED(closure))
{
    return check_live(self) < 0 ? NULL : PyBool_FromLong(self->lease.zeroed);
}

static PyObject *lease_get_address(lease_object_t *self, void *Py_UNUSED(closure))
{
    return check_live(self) < 0 ? NULL : PyLong_FromVoidPtr(self->lease.addr);
}

static PyObject *lease_get_readonly(lease_object_t *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->readonly);
}

static PyObject *lease_get_attached(lease_object_t *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->attached);
}

static PyObject *lease_get_released(lease_object_t *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->gone != NULL || self->owner->pid != getpid());
}

static PyObject *lease_repr(lease_object_t *self)
{
    if (self->gone)
        return PyUnicode_FromString("<arenad.Lease released>");
    return PyUnicode_FromFormat(
        "<arenad.Lease id=%llu size=%zu%s%s>", (unsigned long long)self->lease.id, self->lease.size,
        self->attached ? " attached" : "", self->readonly ? " read-only" : "");
}

static int lease_traverse(lease_object_t *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE((PyObject *)self));
    Py_VISIT(self->owner);
    return 0;
}

static void lease_dealloc(lease_object_t *self)
{
    PyTypeObject *tp = Py_TYPE((PyObject *)self);
    PyObject_GC_UnTrack(self);
    if (!self->gone && self->owner->conn && self->owner->pid == getpid()) {
        PyObject *exc_type, *exc_value, *exc_tb;
        PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
        if (release_now(self) < 0)
            PyErr_Clear(); /* the daemon takes it back when we disconnect */
        PyErr_Restore(exc_type, exc_value, exc_tb);
    }
    arenad_lease_forget(self);
    Py_CLEAR(self->owner);
    freefunc tp_free = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    tp_free(self);
    Py_DECREF(tp);
}

static PyMethodDef lease_methods[] = {
    {"release", (PyCFunction)lease_release, METH_NOARGS,
     "release($self, /)\n--\n\n"
     "Gives the lease back (an attach: detaches). Refuses with BufferError while a\n"
     "buffer of it (memoryview, NumPy array) is alive: delete or release those\n"
     "first. From then on every use raises ValueError. Idempotent; not an error\n"
     "when the daemon is gone (it took the lease back when the connection broke)."},
    {"share", (PyCFunction)(void (*)(void))lease_share, METH_VARARGS | METH_KEYWORDS,
     "share($self, /, *, readonly=False, once=False)\n--\n\n"
     "A token for this lease, to pass to another process of the same user by any\n"
     "channel (argv, a pipe, a file); Connection.attach(token) there maps the same\n"
     "pages. readonly: attachers get a read-only mapping; once: the first attach\n"
     "spends the token. The token is void once unshared or when this lease is\n"
     "released; those attached keep the pages."},
    {"__enter__", (PyCFunction)lease_enter_cm, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)lease_exit_cm, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef lease_getset[] = {
    {"size", (getter)lease_get_size, NULL, "Bytes (the request rounded up to the granule).", NULL},
    {"id", (getter)lease_get_id, NULL, "The daemon-wide lease id.", NULL},
    {"zeroed", (getter)lease_get_zeroed, NULL, "True when the pages are known to read as zero.",
     NULL},
    {"address", (getter)lease_get_address, NULL, "The address of the mapping in this process.",
     NULL},
    {"readonly", (getter)lease_get_readonly, NULL, "True for a read-only attach.", NULL},
    {"attached", (getter)lease_get_attached, NULL, "True when made by Connection.attach().", NULL},
    {"released", (getter)lease_get_released, NULL,
     "True once released (or its connection closed, or inherited across fork).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot lease_slots[] = {
    {Py_tp_doc, "Lease: shared memory leased from arenad, mapped in this process.\n\n"
                "Made by Connection.lease() or Connection.attach(). A buffer: memoryview(lease)\n"
                "and numpy.frombuffer(lease, dtype) see its pages without a copy (read-only\n"
                "for a read-only attach). len(lease) == lease.size. A context manager:\n"
                "released on exit. Using a released lease raises ValueError; releasing one\n"
                "while a buffer of it is alive raises BufferError (nothing is released)."},
    {Py_tp_dealloc, lease_dealloc},
    {Py_tp_traverse, lease_traverse},
    {Py_tp_methods, lease_methods},
    {Py_tp_getset, lease_getset},
    {Py_tp_repr, lease_repr},
    {Py_bf_getbuffer, lease_getbuffer},
    {Py_bf_releasebuffer, lease_releasebuffer},
    {Py_sq_length, lease_len},
    {Py_mp_length, lease_len},
    {0, NULL},
};

static PyType_Spec lease_spec = {
    .name = "arenad.Lease",
    .basicsize = sizeof(lease_object_t),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = lease_slots,
};

int arenad_lease_init(PyObject *m)
{
    arenad_lease_type = (PyTypeObject *)PyType_FromSpec(&lease_spec);
    if (!arenad_lease_type)
        return -1;
    return PyModule_AddObjectRef(m, "Lease", (PyObject *)arenad_lease_type);
}
