/*
 * release.c -- gilx_loop: the GIL policy of policy.h, in one place.
 *
 * Every long call (count.c, stream.c, counters.c, harness/trace.c) runs its
 * chunks through these functions (declared in policy.h), so what a call
 * does with the GIL between two chunks is decided here and nowhere else.
 */
#include "gilx.h"

#include <limits.h>

/*
 * Which thread runs signal handlers.  CPython runs them only in the main
 * thread of the main interpreter; PyErr_CheckSignals() anywhere else
 * returns 0 at once.  A released loop on such a thread therefore never
 * needs the GIL before it ends, and must not take it: beside a busy Python
 * thread, each re-take waits for that thread's switch interval.
 *
 * The main thread's identity comes from _thread._get_main_thread_ident()
 * (3.13+) or threading.main_thread() (older Pythons, where threading is
 * imported at start-up by site, on the main thread).  A subinterpreter's
 * module never re-takes: its signals wait for the main interpreter.
 */
int
gilx_release_exec(gilx_state *state)
{
    state->has_signal_thread = 0;
    if (PyInterpreterState_Get() != PyInterpreterState_Main()) {
        return 0;
    }
    PyObject *ident;
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *thread = PyImport_ImportModule("_thread");
    if (thread == NULL) {
        return -1;
    }
    ident = PyObject_CallMethod(thread, "_get_main_thread_ident", NULL);
    Py_DECREF(thread);
#else
    PyObject *threading = PyImport_ImportModule("threading");
    if (threading == NULL) {
        return -1;
    }
    PyObject *main = PyObject_CallMethod(threading, "main_thread", NULL);
    Py_DECREF(threading);
    if (main == NULL) {
        return -1;
    }
    ident = PyObject_GetAttrString(main, "ident");
    Py_DECREF(main);
#endif
    if (ident == NULL) {
        return -1;
    }
    state->signal_thread = PyLong_AsUnsignedLong(ident);
    Py_DECREF(ident);
    if (state->signal_thread == (unsigned long)-1 && PyErr_Occurred()) {
        return -1;
    }
    state->has_signal_thread = 1;
    return 0;
}

void
gilx_loop_begin(gilx_loop *loop, gilx_state *state, CancelTokenObject *cancel,
                PyThreadState *saved)
{
    loop->state = state;
    loop->cancel = cancel;
    loop->saved = saved;
    loop->next_signals_ns = INT64_MAX;
    /* Both read only C data: no GIL needed, so `saved` may be set. */
    if (state->has_signal_thread
        && PyThread_get_thread_ident() == state->signal_thread)
    {
        loop->next_signals_ns = gilx_monotonic_ns() + GILX_SIGNAL_CHECK_NS;
    }
}

int
gilx_loop_start(gilx_loop *loop, PyObject *module, PyObject *cancel,
                int release)
{
    gilx_state *state = gilx_get_state(module);
    CancelTokenObject *token;
    if (gilx_parse_cancel(state, cancel, &token) < 0) {
        return -1;
    }
    gilx_loop_begin(loop, state, token, release ? PyEval_SaveThread() : NULL);
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

int
gilx_loop_next(gilx_loop *loop)
{
    if (loop->saved == NULL) {
        /* GIL held: checking costs a few ns and hands nothing over. */
        return gilx_check_interrupts(loop->state, loop->cancel);
    }
    /* Released: the token is read detached; the GIL is taken back only to
     * raise. */
    if (loop->cancel != NULL && gilx_token_cancelled(loop->cancel)) {
        gilx_loop_stop(loop);
        return gilx_check_interrupts(loop->state, loop->cancel);
    }
    if (loop->next_signals_ns == INT64_MAX
        || gilx_monotonic_ns() < loop->next_signals_ns)
    {
        return 0;
    }
    /* Main thread, interval passed: run the handlers. */
    gilx_loop_stop(loop);
    if (PyErr_CheckSignals() < 0) {
        return -1;
    }
    loop->saved = PyEval_SaveThread();
    loop->next_signals_ns = gilx_monotonic_ns() + GILX_SIGNAL_CHECK_NS;
    return 0;
}
