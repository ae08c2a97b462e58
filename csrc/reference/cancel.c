/*
 * cancel.c -- CancelToken and gilx.Cancelled: stopping a long call that runs
 * in a thread other than the main one, where Ctrl-C never arrives.
 *
 * The design is in gilx.h.  In short: the token is one atomic flag; every
 * long call takes it as `cancel=token` and looks at it between its ~1 ms
 * chunks, where it also checks for signals; a set flag makes the call raise
 * gilx.Cancelled (a RuntimeError) with the GIL held, so the exception is
 * raised in the calling thread like any other.
 */
#include "gilx.h"

int
gilx_parse_cancel(gilx_state *state, PyObject *obj, CancelTokenObject **out)
{
    *out = NULL;
    if (obj == NULL || obj == Py_None) {
        return 0;
    }
    if (!PyObject_TypeCheck(obj, state->cancel_token_type)) {
        PyErr_Format(PyExc_TypeError,
                     "cancel must be a CancelToken or None, not %.200s",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    /* Borrowed: the caller's argument keeps the token alive for the whole
     * call, which is the only time we use it. */
    *out = (CancelTokenObject *)obj;
    return 0;
}

int
gilx_loop_start_token(gilx_loop *loop, gilx_state *state,
                      CancelTokenObject *cancel, int release)
{
    if (cancel == NULL) {
        return gilx_loop_begin(loop, release, NULL, 0, state->cancelled_error);
    }
    return gilx_loop_begin(loop, release, &cancel->cancelled,
                           cancel->deadline_ns, state->cancelled_error);
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
    return gilx_loop_start_token(loop, state, token, release);
}

#ifdef Py_GIL_DISABLED
/*
 * Let a pending stop-the-world pause proceed (free-threaded builds), where
 * a loop stays attached between two checks: the harness's GIL-held spin
 * (harness/duty.c).  gilx_loop needs none of this: on a free-threaded build
 * with the GIL off it runs each chunk detached (release.c).
 *
 * The runtime stops every thread for gc.collect(), sys.settrace() and
 * friends, os.fork() and more: the thread that asks marks every attached
 * thread, then waits until each has parked itself, which it does at its next
 * eval-loop check (or when it blocks in a detached region).  A C loop that
 * stays attached between its chunks reaches no such check, so every
 * stop-the-world in the process waited for the whole call (measured on
 * 3.13.5t: gc.collect() took 2.6 s beside a count_gil stopped by a 3 s
 * token, when count_gil stayed attached).
 *
 * The usual advice, an empty Py_BEGIN_ALLOW_THREADS / Py_END_ALLOW_THREADS,
 * does not do it on 3.13: detaching does not look for a pending pause, and
 * the waiting thread polls for detached threads once a millisecond, so a
 * window of a few ns is almost never seen (measured: no change at all); a
 * whole chunk run detached is seen, which is what gilx_loop does.  What
 * parks an attached thread is the eval loop's check, which runs on entry to
 * any Python function.  So call a no-op Python function: ~50 ns per ~1 ms chunk
 * (count_gil(0) timed before and after; docs/extension-guide.md, section
 * 7).  Its check also lets memory freed by other threads be reclaimed
 * (QSBR) and raises an exception another thread sent with
 * PyThreadState_SetAsyncExc(), as any Python code would.
 *
 * Not when the GIL is on at run time (PYTHON_GIL=1, -X gil=1, or a module
 * imported without Py_mod_gil): the same check would hand the GIL to a
 * waiting thread, and count_gil must keep it for the whole call, as on a GIL
 * build (where no other thread can ask for a pause anyway).  3.13 has no C
 * API for that question; sys._is_gil_enabled() is a C function, so asking
 * it runs no bytecode.
 *
 * Callers hold no critical section here: parking detaches the thread, and a
 * detached thread's critical sections are suspended (another thread may
 * take them).
 */
static int
offer_pause(gilx_state *state)
{
    PyObject *enabled = PyObject_CallNoArgs(state->gil_enabled_func);
    if (enabled == NULL) {
        return -1;
    }
    int gil_on = enabled == Py_True;
    Py_DECREF(enabled);
    if (gil_on) {
        return 0;
    }
    PyObject *result = PyObject_CallNoArgs(state->pause_point);
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    return 0;
}

/* The two functions offer_pause() calls, kept in the module state so that a
 * chunk boundary looks nothing up. */
static int
pause_exec(gilx_state *state)
{
    state->gil_enabled_func = PySys_GetObject("_is_gil_enabled");
    if (state->gil_enabled_func == NULL) {
        PyErr_SetString(PyExc_ImportError,
                        "gilx: a free-threaded build without "
                        "sys._is_gil_enabled()");
        return -1;
    }
    Py_INCREF(state->gil_enabled_func);     /* PySys_GetObject: borrowed */
    /* A function of gilx._pause, not one compiled here from source: the
     * compiler of CPython 3.13 crashes when an allocation fails inside it
     * (a NULL instruction sequence, found by tests/test_nomemory.py), while
     * an import reports MemoryError like any call. */
    PyObject *module = PyImport_ImportModule("gilx._pause");
    if (module == NULL) {
        return -1;
    }
    state->pause_point = PyObject_GetAttrString(module, "point");
    Py_DECREF(module);
    return state->pause_point == NULL ? -1 : 0;
}
#endif

int
gilx_check_interrupts(gilx_state *state, CancelTokenObject *cancel)
{
#ifdef Py_GIL_DISABLED
    if (offer_pause(state) < 0) {
        return -1;
    }
#endif
    /* Signals first: in the main thread Ctrl-C should read as
     * KeyboardInterrupt even when a token was cancelled at the same time. */
    if (PyErr_CheckSignals() < 0) {
        return -1;
    }
    if (cancel != NULL && gilx_token_cancelled(cancel)) {
        PyErr_SetString(state->cancelled_error, GILX_CANCELLED_MESSAGE);
        return -1;
    }
    return 0;
}

static PyObject *
token_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"timeout", NULL};
    PyObject *timeout_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:CancelToken", kwlist,
                                     &timeout_obj)) {
        return NULL;
    }
    int64_t deadline_ns = 0;
    if (timeout_obj != Py_None) {
        double timeout = PyFloat_AsDouble(timeout_obj);
        if (timeout == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
        /* `!(timeout >= 0)` is also true for NaN; the upper bound keeps the
         * deadline far from int64 overflow. */
        if (!(timeout >= 0) || timeout > 86400.0 * 365) {
            PyErr_SetString(PyExc_ValueError,
                            "timeout must be None or >= 0 and <= one year "
                            "(in seconds)");
            return NULL;
        }
        /* +1 so that timeout=0 still gives a deadline (0 means none). */
        deadline_ns = gilx_monotonic_ns() + (int64_t)(timeout * 1e9) + 1;
    }
    /* tp_alloc zero-fills: a new token is not cancelled. */
    CancelTokenObject *self = (CancelTokenObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->deadline_ns = deadline_ns;
    return (PyObject *)self;
}

static PyObject *
token_cancel(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    /* May be called from any thread, with or without the GIL held
     * elsewhere: an atomic store is all it takes, and calls in flight see
     * it at their next chunk boundary. */
    gilx_atomic_store(&((CancelTokenObject *)op)->cancelled, 1);
    Py_RETURN_NONE;
}

static PyObject *
token_get_cancelled(PyObject *op, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(gilx_token_cancelled((CancelTokenObject *)op));
}

static PyObject *
token_repr(PyObject *op)
{
    int cancelled = gilx_token_cancelled((CancelTokenObject *)op);
    return PyUnicode_FromFormat("%s(cancelled=%s)", Py_TYPE(op)->tp_name,
                                cancelled ? "True" : "False");
}

static PyMethodDef token_methods[] = {
    {"cancel", token_cancel, METH_NOARGS,
     PyDoc_STR("cancel($self, /)\n--\n\n"
               "Make every call running with this token raise gilx.Cancelled\n"
               "at its next chunk boundary (about 1 ms), and every later\n"
               "call with it raise after its first chunk.  Thread-safe; a\n"
               "token cannot be un-cancelled.")},
    {NULL, NULL, 0, NULL}
};

static PyGetSetDef token_getset[] = {
    {"cancelled", token_get_cancelled, NULL,
     PyDoc_STR("Whether cancel() was called or the timeout has passed."),
     NULL},
    {NULL, NULL, NULL, NULL, NULL}
};

PyDoc_STRVAR(token_doc,
"CancelToken(timeout=None)\n"
"--\n"
"\n"
"A way to stop long gilx calls running in other threads, which Ctrl-C\n"
"cannot reach.  Pass it as the keyword argument cancel= of count_gil,\n"
"count_nogil, count_auto, stream_sum or a counter's increment; calling\n"
"cancel() from any thread makes those calls raise gilx.Cancelled within\n"
"about a millisecond.\n"
"\n"
"With timeout (seconds), the token also cancels itself that long after it\n"
"was made: the only way to bound count_gil in a worker thread on a GIL\n"
"build, where no other Python code can run to call cancel().");

static PyType_Slot token_slots[] = {
    {Py_tp_doc, (void *)token_doc},
    {Py_tp_new, token_new},
    {Py_tp_repr, token_repr},
    {Py_tp_dealloc, gilx_dealloc},       /* GC: see gilx.h */
    {Py_tp_traverse, gilx_traverse_type},
    {Py_tp_methods, token_methods},
    {Py_tp_getset, token_getset},
    {0, NULL}
};

static PyType_Spec token_spec = {
    .name = "gilx.CancelToken",
    .basicsize = sizeof(CancelTokenObject),
    .flags = (Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE
              | Py_TPFLAGS_HAVE_GC),
    .slots = token_slots,
};

PyDoc_STRVAR(cancelled_doc,
"Raised by a gilx call whose CancelToken was cancelled.\n"
"\n"
"A RuntimeError, so `except Exception` in a worker thread catches it.  The\n"
"work done before the call stopped is not undone (a counter keeps the\n"
"increments it made).");

int
gilx_cancel_exec(PyObject *module, gilx_state *state)
{
    PyObject *type = PyType_FromModuleAndSpec(module, &token_spec, NULL);
    if (type == NULL) {
        return -1;
    }
    if (PyModule_AddType(module, (PyTypeObject *)type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    state->cancel_token_type = (PyTypeObject *)type;

    /* A heap exception class per module object, like the types, so each
     * (sub)interpreter has its own. */
    PyObject *error = PyErr_NewExceptionWithDoc("gilx.Cancelled",
                                                cancelled_doc,
                                                PyExc_RuntimeError, NULL);
    if (error == NULL) {
        return -1;
    }
    if (PyModule_AddObjectRef(module, "Cancelled", error) < 0) {
        Py_DECREF(error);
        return -1;
    }
    state->cancelled_error = error;
#ifdef Py_GIL_DISABLED
    return pause_exec(state);
#else
    return 0;
#endif
}
