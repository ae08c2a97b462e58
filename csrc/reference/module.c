/*
 * module.c -- the gilx._core module: definition, state, slots.
 *
 * Multi-phase initialisation (PEP 489) with per-module state, in the shape of
 * CPython's Modules/xxlimited_3_13.c: nothing is created at import time in
 * static storage; Py_mod_exec builds the heap types and the constants into
 * each new module object, so the module can be imported in several
 * interpreters at once, each with its own GIL.
 */
#include "harness.h"      /* trace.c, duty.c, gate.c, blame.c; includes gilx.h */

/* Add the GIL policy of policy.h as module constants, so Python code and the
 * benchmarks read the values the C code uses instead of copying them. */
static int
add_policy_constants(PyObject *module)
{
    struct {
        const char *name;
        unsigned long long value;
    } constants[] = {
        {"COUNT_CHUNK", GILX_COUNT_CHUNK},
        {"COUNTER_CHUNK", GILX_COUNTER_CHUNK},
        {"ATOMIC_CHUNK", GILX_ATOMIC_CHUNK},
        {"STREAM_CHUNK_WORDS", (unsigned long long)GILX_STREAM_CHUNK_WORDS},
        {"NOGIL_THRESHOLD", GILX_NOGIL_THRESHOLD},
        {"MAX_COUNT", GILX_MAX_COUNT},
        {"SIGNAL_CHECK_NS", (unsigned long long)GILX_SIGNAL_CHECK_NS},
    };
    for (size_t i = 0; i < sizeof(constants) / sizeof(constants[0]); i++) {
        PyObject *value = PyLong_FromUnsignedLongLong(constants[i].value);
        if (value == NULL) {
            return -1;
        }
        /* PyModule_AddObjectRef leaves our reference alone, success or
         * not (unlike PyModule_AddObject), so one DECREF fits both paths. */
        int rc = PyModule_AddObjectRef(module, constants[i].name, value);
        Py_DECREF(value);
        if (rc < 0) {
            return -1;
        }
    }
    return 0;
}

static int
gilx_exec(PyObject *module)
{
    gilx_state *state = gilx_get_state(module);
    if (PyModule_AddFunctions(module, gilx_count_methods) < 0) {
        return -1;
    }
    if (PyModule_AddFunctions(module, gilx_stream_methods) < 0) {
        return -1;
    }
    if (PyModule_AddFunctions(module, gilx_trace_methods) < 0) {
        return -1;
    }
    if (PyModule_AddFunctions(module, gilx_lockdemo_methods) < 0) {
        return -1;
    }
    if (gilx_lockdemo_exec(state) < 0) {
        return -1;
    }
    if (PyModule_AddFunctions(module, gilx_duty_methods) < 0) {
        return -1;
    }
    if (PyModule_AddFunctions(module, gilx_sched_methods) < 0) {
        return -1;
    }
    if (PyModule_AddFunctions(module, gilx_blame_methods) < 0) {
        return -1;
    }
    if (gilx_cancel_exec(module, state) < 0) {
        return -1;
    }
    if (gilx_gate_exec(module, state) < 0) {
        return -1;
    }
    if (gilx_counters_exec(module, state) < 0) {
        return -1;
    }
    if (add_policy_constants(module) < 0) {
        return -1;
    }
    /* Which build this module was compiled for, as opposed to whether the
     * GIL is on right now (sys._is_gil_enabled() can say it was turned
     * back on). */
#ifdef Py_GIL_DISABLED
    if (PyModule_AddIntConstant(module, "FREE_THREADED_BUILD", 1) < 0) {
        return -1;
    }
#else
    if (PyModule_AddIntConstant(module, "FREE_THREADED_BUILD", 0) < 0) {
        return -1;
    }
#endif
    return 0;
}

/* The module state holds strong references to the types (and to the
 * exception class); the garbage
 * collector must see them (a type refers back to its module). */
static int
gilx_traverse(PyObject *module, visitproc visit, void *arg)
{
    gilx_state *state = gilx_get_state(module);
    Py_VISIT(state->start_gate_type);
    Py_VISIT(state->unsafe_counter_type);
    Py_VISIT(state->atomic_counter_type);
    Py_VISIT(state->locked_counter_type);
    Py_VISIT(state->cancel_token_type);
    Py_VISIT(state->cancelled_error);
    Py_VISIT(state->gil_enabled_func);
    Py_VISIT(state->pause_point);
    return 0;
}

static int
gilx_clear(PyObject *module)
{
    gilx_state *state = gilx_get_state(module);
    Py_CLEAR(state->start_gate_type);
    Py_CLEAR(state->unsafe_counter_type);
    Py_CLEAR(state->atomic_counter_type);
    Py_CLEAR(state->locked_counter_type);
    Py_CLEAR(state->cancel_token_type);
    Py_CLEAR(state->cancelled_error);
    Py_CLEAR(state->gil_enabled_func);
    Py_CLEAR(state->pause_point);
    return 0;
}

static void
gilx_free(void *module)
{
    (void)gilx_clear((PyObject *)module);
    gilx_lockdemo_free(gilx_get_state((PyObject *)module));
}

static PyModuleDef_Slot gilx_slots[] = {
    {Py_mod_exec, gilx_exec},
#ifdef Py_mod_multiple_interpreters
    /* 3.12+: no static mutable state but release.c's atomic record of the
     * process's main thread, which no GIL guards anyway, so each interpreter
     * may have its own GIL. */
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#ifdef Py_mod_gil
    /* 3.13+: the module is safe without the GIL (its shared mutable data
     * are the counters, each protected as documented, and the gate and
     * token flags, which are atomic), so importing it does not re-enable
     * the GIL on a free-threaded build. */
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL}
};

PyDoc_STRVAR(gilx_doc,
"The C core of gilx: a counting loop run with the GIL held and released,\n"
"a memory-bound kernel, and three shared counters (unsafe, atomic, locked).");

static struct PyModuleDef gilx_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "gilx._core",
    .m_doc = gilx_doc,
    .m_size = sizeof(gilx_state),
    .m_methods = NULL,      /* added in gilx_exec, one table per C file */
    .m_slots = gilx_slots,
    .m_traverse = gilx_traverse,
    .m_clear = gilx_clear,
    .m_free = gilx_free,
};

PyMODINIT_FUNC
PyInit__core(void)
{
    return PyModuleDef_Init(&gilx_module);
}
