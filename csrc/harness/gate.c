/*
 * gate.c -- StartGate: start several threads' released-GIL work together.
 *
 * Used by gilx.race(): two threads that each do 1,000,000 increments in a
 * quarter of a millisecond only race if they really run at the same time.
 * Started behind a Python barrier, the second thread is often still being
 * woken up (re-taking the GIL, waiting for the OS scheduler) when the first
 * has finished.  Each counter's increment(times, start=gate) instead
 * releases the GIL, then spins at the gate until every party has arrived,
 * and only then runs its kernel, in the same released region.
 */
#include "harness.h"

#if defined(_WIN32)
/* windows.h, for SwitchToThread(), comes in through policy.h. */
#  define gilx_yield_cpu() ((void)SwitchToThread())
#else
#  include <sched.h>
#  define gilx_yield_cpu() ((void)sched_yield())
#endif

/* How long one spin round lasts before the caller re-takes the GIL to check
 * for signals (the 1 ms chunk of the GIL policy, policy.h). */
#define GATE_SPIN_ROUND_NS 1000000

/*
 * Memory order.  A start gate is a barrier, and it promises what a barrier
 * does: whatever a thread did before it arrived happens before whatever any
 * thread does after it sees the gate open.  So arriving is a release (the
 * count's read-modify-write), and the spinners' read of the count is an
 * acquire: the read that sees `parties` takes the value written by the last
 * arrival, and every earlier arrival's release reaches it too, because each
 * later increment, a read-modify-write, continues that release sequence.
 * Today no party reads, after the gate opens, anything another wrote before
 * arriving (each then works on its counter, whose ordering counters.c
 * states), so relaxed would happen to suffice; the barrier's contract costs
 * nothing measurable (x86: the very same instructions; ARM64: a load-acquire
 * instead of a plain load in the spin) and keeps the gate correct for
 * whoever relies on it next.  (The add used to be acq_rel, with relaxed
 * loads in the spinners: the acquire half was on the side that needs none,
 * and the side that needs it had none.)
 *
 * `aborted` is relaxed: abort() publishes nothing, and a spinner that sees
 * it only leaves.  The `arrived` getter is relaxed too: a number for people,
 * not a signal.
 */
void
gilx_gate_arrive(StartGateObject *gate)
{
    gilx_atomic_add_one_release(&gate->arrived);
}

gilx_gate_status
gilx_gate_spin(StartGateObject *gate, int64_t since_ns)
{
    int64_t round_end = gilx_monotonic_ns() + GATE_SPIN_ROUND_NS;
    for (uint64_t spins = 0;; spins++) {
        if (gilx_atomic_load(&gate->aborted)) {
            return GILX_GATE_ABORTED;
        }
        if (gilx_atomic_load_acquire(&gate->arrived) >= gate->parties) {
            return GILX_GATE_OPEN;
        }
        /* Reading the clock costs ~20 ns: do it every 256 spins only.
         * Yield the CPU there too: with more parties than cores, spinners
         * would otherwise take the CPU time the threads still being started
         * need to arrive (race(threads=100) on two cores timed out).  With
         * a core free the yield returns at once and costs ~1 us. */
        if ((spins & 255) == 255) {
            gilx_yield_cpu();
            int64_t now = gilx_monotonic_ns();
            if (now - since_ns > gate->timeout_ns) {
                return GILX_GATE_TIMED_OUT;
            }
            if (now > round_end) {
                return GILX_GATE_WAITING;
            }
        }
    }
}

PyObject *
gilx_gate_error(gilx_gate_status status)
{
    if (status == GILX_GATE_ABORTED) {
        PyErr_SetString(PyExc_RuntimeError, "the start gate was aborted");
    }
    else {
        PyErr_SetString(PyExc_TimeoutError,
                        "the start gate timed out: not all parties arrived");
    }
    return NULL;
}

static PyObject *
gate_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"parties", "timeout", NULL};
    PyObject *parties_obj;
    double timeout = 10.0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|d:StartGate", kwlist,
                                     &parties_obj, &timeout)) {
        return NULL;
    }
    uint64_t parties;
    if (gilx_parse_count(parties_obj, "parties", &parties) < 0) {
        return NULL;
    }
    if (parties < 1) {
        PyErr_SetString(PyExc_ValueError, "parties must be >= 1, got 0");
        return NULL;
    }
    /* `!(timeout > 0)` is also true for NaN. */
    if (!(timeout > 0) || timeout > 86400.0) {
        PyErr_SetString(PyExc_ValueError,
                        "timeout must be > 0 and <= 86400 seconds");
        return NULL;
    }
    StartGateObject *self = (StartGateObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->parties = parties;
    self->timeout_ns = (int64_t)(timeout * 1e9);
    return (PyObject *)self;
}

static PyObject *
gate_abort(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    gilx_atomic_store(&((StartGateObject *)op)->aborted, 1);
    Py_RETURN_NONE;
}

static PyObject *
gate_get_parties(PyObject *op, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLongLong(((StartGateObject *)op)->parties);
}

static PyObject *
gate_get_arrived(PyObject *op, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLongLong(
        gilx_atomic_load(&((StartGateObject *)op)->arrived));
}

static PyObject *
gate_repr(PyObject *op)
{
    StartGateObject *self = (StartGateObject *)op;
    unsigned long long arrived = gilx_atomic_load(&self->arrived);
    return PyUnicode_FromFormat("%s(parties=%llu, arrived=%llu)",
                                Py_TYPE(op)->tp_name,
                                (unsigned long long)self->parties, arrived);
}

static PyMethodDef gate_methods[] = {
    {"abort", gate_abort, METH_NOARGS,
     PyDoc_STR("abort($self, /)\n--\n\n"
               "Make every thread waiting at the gate raise RuntimeError.")},
    {NULL, NULL, 0, NULL}
};

static PyGetSetDef gate_getset[] = {
    {"parties", gate_get_parties, NULL,
     PyDoc_STR("How many threads the gate waits for."), NULL},
    {"arrived", gate_get_arrived, NULL,
     PyDoc_STR("How many threads have arrived so far."), NULL},
    {NULL, NULL, NULL, NULL, NULL}
};

PyDoc_STRVAR(gate_doc,
"StartGate(parties, timeout=10.0)\n"
"--\n"
"\n"
"A start line for `parties` threads, passed as increment(times, start=gate):\n"
"each caller releases the GIL, waits (spinning) until all parties have\n"
"arrived, then runs its increments.  Single use.  Waiting longer than\n"
"`timeout` seconds raises TimeoutError; abort() makes waiters raise\n"
"RuntimeError.");

static PyType_Slot gate_slots[] = {
    {Py_tp_doc, (void *)gate_doc},
    {Py_tp_new, gate_new},
    {Py_tp_repr, gate_repr},
    {Py_tp_dealloc, gilx_dealloc},        /* GC: see gilx.h */
    {Py_tp_traverse, gilx_traverse_type},
    {Py_tp_methods, gate_methods},
    {Py_tp_getset, gate_getset},
    {0, NULL}
};

static PyType_Spec gate_spec = {
    .name = "gilx.StartGate",
    .basicsize = sizeof(StartGateObject),
    .flags = (Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE
              | Py_TPFLAGS_HAVE_GC),
    .slots = gate_slots,
};

int
gilx_gate_exec(PyObject *module, gilx_state *state)
{
    PyObject *type = PyType_FromModuleAndSpec(module, &gate_spec, NULL);
    if (type == NULL) {
        return -1;
    }
    if (PyModule_AddType(module, (PyTypeObject *)type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    state->start_gate_type = (PyTypeObject *)type;
    return 0;
}
