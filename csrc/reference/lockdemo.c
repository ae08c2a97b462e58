/*
 * lockdemo.c -- a demonstration for docs/extension-guide.md, not one of
 * gilx's measurements: why a thread must release the GIL before it waits on
 * a lock of its own, and how to wait so that Ctrl-C still gets through.
 *
 * The module has one C lock (in the module state).  Take the usual shape of
 * an extension that guards C data with it: thread A holds the C lock and
 * then needs the GIL (to run a callback, build a result, or simply to come
 * back from a released region); thread B holds the GIL and waits for the C
 * lock.  Neither can go on: a lock-ordering deadlock, with the GIL as one of
 * the two locks.  Waiting with the GIL released removes the GIL from the
 * cycle, and A runs to its release.
 *
 * demo_lock_acquire(timeout, hold_gil=True) waits the wrong way, with a
 * timeout so that the deadlock shows as False instead of a hung process;
 * tests/test_lockdemo.py shows both.  (On a free-threaded build there is no
 * GIL to deadlock on, but a thread blocked while attached still stalls every
 * stop-the-world pause, such as the garbage collector's: detach there too.)
 *
 * Which lock.  This one is held across Python code (thread A above) and
 * waited for with a timeout that Ctrl-C must be able to cut short: the job
 * of threading.Lock.  In the public C API only a PyThread lock does both:
 * PyThread_acquire_lock_timed() takes a timeout, and with intr_flag=1 it
 * returns PY_LOCK_INTR when a signal arrives.  PyMutex (3.13+) is the lock
 * for the other job, a short section around C data that calls no Python
 * code: PyMutex_Lock() detaches while it waits, so it cannot deadlock with
 * the GIL, but it has no timeout and no way to be interrupted (3.13's
 * _thread gets both from _PyMutex_LockTimed(), an internal function that an
 * extension cannot call), so a PyMutex held across Python code would make
 * its waiters deaf to Ctrl-C.
 */
#include "gilx.h"

/* The longest the right way waits with the GIL released before it takes
 * the GIL back to run signal handlers.  Where a signal interrupts the wait
 * (Linux: the lock is a semaphore, and the wait returns PY_LOCK_INTR at
 * once), this never matters; where a lock's wait ignores signals (a
 * condition variable, as on macOS), it bounds Ctrl-C's latency. */
#define DEMO_WAIT_SLICE_US ((PY_TIMEOUT_T)50000)

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

/*
 * Wait up to `timeout_ns` for `lock`, the way CPython's _thread module did
 * up to 3.12 (acquire_timed() in Modules/_threadmodule.c): first a try that
 * does not release the GIL, so that a free lock costs no GIL round trip;
 * then timed waits with the GIL released and intr_flag=1, and between two of
 * them, with the GIL held, PyErr_CheckSignals(), which runs the handlers
 * (Ctrl-C raises KeyboardInterrupt here, in the main thread).  The
 * remaining time is read off the clock each round, so neither signals nor
 * slices stretch the timeout.  Called with the GIL held; returns
 * PY_LOCK_ACQUIRED, PY_LOCK_FAILURE (timed out), or PY_LOCK_INTR with the
 * handler's exception set.
 */
static PyLockStatus
acquire_interruptibly(PyThread_type_lock lock, int64_t timeout_ns)
{
    if (PyThread_acquire_lock_timed(lock, 0, 0) == PY_LOCK_ACQUIRED) {
        return PY_LOCK_ACQUIRED;
    }
    int64_t deadline = gilx_monotonic_ns() + timeout_ns;
    for (;;) {
        int64_t left_ns = deadline - gilx_monotonic_ns();
        if (left_ns <= 0) {
            return PY_LOCK_FAILURE;
        }
        /* Rounded up: a wait of 0 us would be a try, and the loop would
         * spin through the last microsecond. */
        PY_TIMEOUT_T us = (PY_TIMEOUT_T)((left_ns + 999) / 1000);
        if (us > DEMO_WAIT_SLICE_US) {
            us = DEMO_WAIT_SLICE_US;
        }
        PyLockStatus status;
        Py_BEGIN_ALLOW_THREADS
        status = PyThread_acquire_lock_timed(lock, us, 1);
        Py_END_ALLOW_THREADS
        if (status == PY_LOCK_ACQUIRED) {
            return PY_LOCK_ACQUIRED;
        }
        /* Interrupted, or a slice is over: the GIL is held again. */
        if (PyErr_CheckSignals() < 0) {
            return PY_LOCK_INTR;
        }
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
    PyLockStatus status;
    if (hold_gil) {
        /* WRONG, kept for the demonstration: this thread blocks with the
         * GIL held, so the holder of the C lock can never take the GIL it
         * needs before it can release the C lock (and no signal handler
         * can run until the timeout). */
        status = PyThread_acquire_lock_timed(state->demo_lock,
                                             (PY_TIMEOUT_T)(timeout * 1e6), 0);
    }
    else {
        /* Right: no GIL while waiting, and Ctrl-C heard. */
        status = acquire_interruptibly(state->demo_lock,
                                       (int64_t)(timeout * 1e9));
        if (status == PY_LOCK_INTR) {
            return NULL;
        }
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
    /* Releasing a lock nobody holds is undefined for PyThread locks (a
     * semaphore would count up to 2, and two threads would then get "the"
     * lock), so a release must be matched by an acquire.  The flag records
     * that, and it is taken from 1 to 0 in one atomic exchange: exactly one
     * of several simultaneous callers sees the 1 and releases.  A load and
     * a later store would let two of them see 1 and both release: on a GIL
     * build the GIL happens to serialise them, but this module declares
     * Py_MOD_GIL_NOT_USED, and on a free-threaded build nothing would. */
    if (gilx_atomic_exchange(&state->demo_lock_held, 0) == 0) {
        PyErr_SetString(PyExc_RuntimeError, "the demo lock is not held");
        return NULL;
    }
    PyThread_release_lock(state->demo_lock);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(demo_lock_acquire_doc,
"demo_lock_acquire($module, timeout, /, *, hold_gil=False)\n"
"--\n"
"\n"
"Wait up to `timeout` seconds for the module's demonstration C lock;\n"
"return whether it was acquired.  The wait releases the GIL, and a signal\n"
"handler that raises (Ctrl-C) ends it with that exception.  hold_gil=True\n"
"waits the wrong way, with the GIL held: if the lock's holder needs the GIL\n"
"before it can let go, this times out (a deadlock, but for the timeout),\n"
"and Ctrl-C waits for the timeout too.  See docs/extension-guide.md.");

PyDoc_STRVAR(demo_lock_release_doc,
"demo_lock_release($module, /)\n"
"--\n"
"\n"
"Release the demonstration C lock (RuntimeError if it is not held; of\n"
"several threads releasing it at once, exactly one succeeds).");

PyMethodDef gilx_lockdemo_methods[] = {
    {"demo_lock_acquire", (PyCFunction)(void (*)(void))demo_lock_acquire,
     METH_VARARGS | METH_KEYWORDS, demo_lock_acquire_doc},
    {"demo_lock_release", demo_lock_release, METH_NOARGS,
     demo_lock_release_doc},
    {NULL, NULL, 0, NULL}
};
