/*
 * lockdemo.c -- a demonstration for docs/extension-guide.md, not one of
 * gilx's measurements: why a thread must release the GIL before it waits on
 * a lock of its own.
 *
 * The module has one C lock (a PyThread lock in the module state).  Take
 * the usual shape of an extension that guards C data with it: thread A
 * holds the C lock and then needs the GIL (to run a callback, build a
 * result, or simply to come back from a released region); thread B holds
 * the GIL and waits for the C lock.  Neither can go on: a lock-ordering
 * deadlock, with the GIL as one of the two locks.  Waiting with the GIL
 * released removes the GIL from the cycle, and A runs to its release.
 *
 * demo_lock_acquire(timeout, hold_gil=True) waits the wrong way, with a
 * timeout so that the deadlock shows as False instead of a hung process;
 * tests/test_lockdemo.py shows both.  (On a free-threaded build there is no
 * GIL to deadlock on, but a thread blocked while attached still stalls every
 * stop-the-world pause, such as the garbage collector's: detach there too.)
 */
#include "gilx.h"

int
gilx_lockdemo_exec(gilx_state *state)
{
    state->demo_lock = PyThread_allocate_lock();
    if (state->demo_lock == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

void
gilx_lockdemo_free(gilx_state *state)
{
    if (state->demo_lock != NULL) {
        PyThread_free_lock(state->demo_lock);
        state->demo_lock = NULL;
    }
}

static PyObject *
demo_lock_acquire(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"timeout", "hold_gil", NULL};
    double timeout;
    int hold_gil = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "d|$p:demo_lock_acquire",
                                     kwlist, &timeout, &hold_gil)) {
        return NULL;
    }
    /* `!(timeout >= 0)` is also true for NaN. */
    if (!(timeout >= 0) || timeout > 3600.0) {
        PyErr_SetString(PyExc_ValueError,
                        "timeout must be >= 0 and <= 3600 seconds");
        return NULL;
    }
    gilx_state *state = gilx_get_state(module);
    PY_TIMEOUT_T us = (PY_TIMEOUT_T)(timeout * 1e6);
    PyLockStatus status;
    if (hold_gil) {
        /* WRONG, kept for the demonstration: this thread blocks with the
         * GIL held, so the holder of the C lock can never take the GIL it
         * needs before it can release the C lock. */
        status = PyThread_acquire_lock_timed(state->demo_lock, us, 0);
    }
    else {
        /* Right: no GIL while waiting.  The lock and the timeout are C
         * values read before the release. */
        PyThread_type_lock lock = state->demo_lock;
        Py_BEGIN_ALLOW_THREADS
        status = PyThread_acquire_lock_timed(lock, us, 0);
        Py_END_ALLOW_THREADS
    }
    if (status != PY_LOCK_ACQUIRED) {
        Py_RETURN_FALSE;
    }
    gilx_atomic_store(&state->demo_lock_held, 1);
    Py_RETURN_TRUE;
}

static PyObject *
demo_lock_release(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    gilx_state *state = gilx_get_state(module);
    /* Releasing a lock nobody holds is undefined for PyThread locks: refuse.
     * (The flag is set and cleared only by a holder of the lock.) */
    if (!gilx_atomic_load(&state->demo_lock_held)) {
        PyErr_SetString(PyExc_RuntimeError, "the demo lock is not held");
        return NULL;
    }
    gilx_atomic_store(&state->demo_lock_held, 0);
    PyThread_release_lock(state->demo_lock);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(demo_lock_acquire_doc,
"demo_lock_acquire($module, timeout, /, *, hold_gil=False)\n"
"--\n"
"\n"
"Wait up to `timeout` seconds for the module's demonstration C lock;\n"
"return whether it was acquired.  hold_gil=True waits the wrong way, with\n"
"the GIL held: if the lock's holder needs the GIL before it can let go,\n"
"this times out (a deadlock, but for the timeout).  See\n"
"docs/extension-guide.md.");

PyDoc_STRVAR(demo_lock_release_doc,
"demo_lock_release($module, /)\n"
"--\n"
"\n"
"Release the demonstration C lock (RuntimeError if it is not held).");

PyMethodDef gilx_lockdemo_methods[] = {
    {"demo_lock_acquire", (PyCFunction)(void (*)(void))demo_lock_acquire,
     METH_VARARGS | METH_KEYWORDS, demo_lock_acquire_doc},
    {"demo_lock_release", demo_lock_release, METH_NOARGS,
     demo_lock_release_doc},
    {NULL, NULL, 0, NULL}
};
