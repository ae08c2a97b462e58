/*
 * release.c -- gilx_loop: the GIL policy of policy.h, in one place.
 *
 * Every long call of gilx (count.c, stream.c, counters.c, harness/trace.c)
 * runs its chunks through these functions, so what a call does with the GIL
 * between two chunks is decided here and nowhere else.  Part of the copy
 * unit (policy.h, atomics.h, release.c): it includes nothing else of gilx's.
 */
#include "policy.h"

#include <limits.h>

#if PY_VERSION_HEX >= 0x030D0000 && defined(HAVE_FORK)
#  include <pthread.h>
#endif

/*
 * Whether this thread runs signal handlers: the main thread of the main
 * interpreter, and no other (PyErr_CheckSignals() anywhere else returns 0 at
 * once).  Asked with the GIL held, at every gilx_loop_begin() that releases,
 * because the answer is not fixed at import:
 *
 * - after os.fork() from a thread other than the main one, CPython makes the
 *   forking thread the child's main thread.  An ident remembered at import
 *   would make that thread ignore Ctrl-C, and a new thread that happens to
 *   get the parent's main-thread ident re-take the GIL for nothing.
 * - threading.main_thread() on 3.10-3.12 is whichever thread imported
 *   threading first (nothing imports it at start-up), so an extension
 *   imported first on an embedder's thread would get that thread.
 *
 * 3.10-3.12: _PyOS_IsMainThread(), the very test PyErr_CheckSignals()
 * makes, declared in their public intrcheck.h (it moved to an internal
 * header in 3.13; those versions will not change).  3.13+:
 * _thread._get_main_thread_ident(), which reads the same runtime field,
 * asked once per process and again after each fork (a pthread_atfork()
 * child handler forgets the answer; the process-wide cache is right for
 * every interpreter, since the main thread is a fact of the process).
 */
#if PY_VERSION_HEX >= 0x030D0000
/* The main thread's ident; 0 while not known. */
static gilx_atomic_u64 main_thread_ident;

#  ifdef HAVE_FORK
static gilx_atomic_u64 atfork_registered;

static void
forget_main_thread(void)
{
    gilx_atomic_store(&main_thread_ident, 0);
}
#  endif

static int
is_signal_thread(void)
{
    if (PyInterpreterState_Get() != PyInterpreterState_Main()) {
        return 0;
    }
    uint64_t main = gilx_atomic_load(&main_thread_ident);
    if (main == 0) {
#  ifdef HAVE_FORK
        if (gilx_atomic_exchange(&atfork_registered, 1) == 0
            && pthread_atfork(NULL, NULL, forget_main_thread) != 0)
        {
            gilx_atomic_store(&atfork_registered, 0);
            PyErr_SetString(PyExc_OSError, "pthread_atfork() failed");
            return -1;
        }
#  endif
        PyObject *thread = PyImport_ImportModule("_thread");
        if (thread == NULL) {
            return -1;
        }
        PyObject *ident = PyObject_CallMethod(thread, "_get_main_thread_ident",
                                              NULL);
        Py_DECREF(thread);
        if (ident == NULL) {
            return -1;
        }
        main = PyLong_AsUnsignedLongLong(ident);
        Py_DECREF(ident);
        if (main == (uint64_t)-1 && PyErr_Occurred()) {
            return -1;
        }
        gilx_atomic_store(&main_thread_ident, main);
    }
    return (uint64_t)PyThread_get_thread_ident() == main;
}
#else
static int
is_signal_thread(void)
{
    return _PyOS_IsMainThread();
}
#endif

#ifdef Py_GIL_DISABLED
/* Whether the GIL is on at run time (PYTHON_GIL=1, or a module imported
 * without Py_mod_gil).  3.13 has no C API for it; sys._is_gil_enabled() is
 * a C function, so asking it runs no bytecode. */
static int
gil_enabled(void)
{
    PyObject *func = PySys_GetObject("_is_gil_enabled");     /* borrowed */
    if (func == NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "a free-threaded build without sys._is_gil_enabled()");
        return -1;
    }
    PyObject *enabled = PyObject_CallNoArgs(func);
    if (enabled == NULL) {
        return -1;
    }
    int on = enabled == Py_True;
    Py_DECREF(enabled);
    return on;
}
#endif

int
gilx_cancelled(gilx_atomic_u64 *cancel, int64_t deadline_ns)
{
    if (cancel != NULL && gilx_atomic_load(cancel)) {
        return 1;
    }
    /* The flag may be shared by many calls (a module's, in spin.c): a
     * deadline is this call's own, so reaching it does not set the flag. */
    return deadline_ns != 0 && gilx_monotonic_ns() >= deadline_ns;
}

int
gilx_loop_begin(gilx_loop *loop, int release, gilx_atomic_u64 *cancel,
                int64_t deadline_ns, PyObject *cancelled)
{
    loop->cancel = cancel;
    loop->deadline_ns = deadline_ns;
    loop->cancelled = cancelled;
    loop->saved = NULL;
    loop->next_signals_ns = INT64_MAX;
    if (!release) {
#ifdef Py_GIL_DISABLED
        /* No GIL to hold: run each chunk detached, so that a stop-the-world
         * pause need not wait for it (policy.h), and re-attach after every
         * chunk for signals and the flag, as the held path does. */
        int on = gil_enabled();
        if (on < 0) {
            return -1;
        }
        if (!on) {
            loop->next_signals_ns = 0;
            loop->saved = PyEval_SaveThread();
        }
#endif
        return 0;
    }
    int main = is_signal_thread();
    if (main < 0) {
        return -1;
    }
    if (main) {
        loop->next_signals_ns = gilx_monotonic_ns() + GILX_SIGNAL_CHECK_NS;
    }
    loop->saved = PyEval_SaveThread();
    return 0;
}

void
gilx_loop_stop(gilx_loop *loop)
{
    if (loop->saved != NULL) {
        PyEval_RestoreThread(loop->saved);
        loop->saved = NULL;
    }
}

/* GIL held: run pending signal handlers (Ctrl-C raises KeyboardInterrupt
 * here, in the main thread), then honour the flag.  Signals first, so that
 * Ctrl-C reads as KeyboardInterrupt even when the flag was set too. */
static int
check_held(gilx_loop *loop)
{
    if (PyErr_CheckSignals() < 0) {
        return -1;
    }
    if (gilx_cancelled(loop->cancel, loop->deadline_ns)) {
        PyErr_SetString(loop->cancelled, GILX_CANCELLED_MESSAGE);
        return -1;
    }
    return 0;
}

int
gilx_loop_next(gilx_loop *loop)
{
    if (loop->saved == NULL) {
        /* GIL held: checking costs a few ns and hands nothing over. */
        return check_held(loop);
    }
    /* Released: the flag is read detached; the GIL is taken back only to
     * raise. */
    if (gilx_cancelled(loop->cancel, loop->deadline_ns)) {
        gilx_loop_stop(loop);
        return check_held(loop);
    }
    if (loop->next_signals_ns == INT64_MAX
        || (loop->next_signals_ns != 0
            && gilx_monotonic_ns() < loop->next_signals_ns))
    {
        return 0;
    }
    /* Main thread and the interval passed, or a free-threaded held loop:
     * attach, run the handlers, detach again. */
    gilx_loop_stop(loop);
    if (check_held(loop) < 0) {
        return -1;
    }
    loop->saved = PyEval_SaveThread();
    if (loop->next_signals_ns != 0) {
        loop->next_signals_ns = gilx_monotonic_ns() + GILX_SIGNAL_CHECK_NS;
    }
    return 0;
}
