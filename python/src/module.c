/* SPDX-License-Identifier: MIT
 *
 * module.c -- the _arenad extension module: its init and the module-level
 * calls. The public face is the pure-Python package arenad (__init__.py),
 * which re-exports what is here.
 *
 * Trusts libarena-client; process-wide calls run with the GIL released.
 */
#include "arenad_ext.h"

static PyObject *mod_trim(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(ignored))
{
    long long r;
    PyThreadState *unlocked = PyEval_SaveThread();
    r = arena_trim();
    PyEval_RestoreThread(unlocked);
    if (r < 0)
        return arenad_raise((int)r, ARENAD_CALL_OTHER, "trim", NULL);
    return PyLong_FromLongLong(r);
}

static PyMethodDef mod_methods[] = {
    {"trim", mod_trim, METH_NOARGS,
     "trim($module, /)\n--\n\n"
     "Gives back what this process's arenad allocator (arena_malloc and friends)\n"
     "does not use, now; returns the bytes given back. Raw leases are untouched."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef mod_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_arenad",
    .m_doc = "The C extension behind the arenad package (see help(arenad)).",
    .m_size = -1,
    .m_methods = mod_methods,
};

/* The module's init (single phase): the exception classes, Connection, Lease,
 * trim() and TOKEN_SIZE. Returns the module, or NULL with an exception set. */
PyMODINIT_FUNC PyInit__arenad(void);

PyMODINIT_FUNC PyInit__arenad(void)
{
    PyObject *m = PyModule_Create(&mod_def);
    if (!m)
        return NULL;
    if (arenad_errors_init(m) < 0 || arenad_conn_init(m) < 0 || arenad_lease_init(m) < 0 ||
        PyModule_AddIntConstant(m, "TOKEN_SIZE", ARENA_TOKEN_SIZE) < 0 ||
        PyModule_AddIntConstant(m, "LIBRARY_VERSION_MAJOR", ARENA_VERSION_MAJOR) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
