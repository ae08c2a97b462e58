/*
 * spin.c -- an extension that is not gilx, built from gilx's copy unit alone
 * (csrc/reference/policy.h, atomics.h, release.c; tests/test_copy_unit.py
 * compiles exactly the files csrc/README.md names, with this one).
 *
 *   spin(n, release=True, timeout=0.0) -> int   n xorshift steps, in chunks
 *   stop()                                       make running spins raise
 *   clear()                                      let later spins run again
 *
 * A stopped spin, or one past its timeout, raises TimeoutError.
 */
#include "policy.h"

#define CHUNK ((uint64_t)1 << 20)       /* ~1 ms of xorshift steps */

typedef struct {
    gilx_atomic_u64 stop;               /* the cancel flag, per module */
} spin_state;

static PyObject *
spin(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"n", "release", "timeout", NULL};
    unsigned long long n;
    int release = 1;
    double timeout = 0.0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "K|pd:spin", kwlist, &n,
                                     &release, &timeout)) {
        return NULL;
    }
    spin_state *state = PyModule_GetState(module);
    int64_t deadline = timeout > 0 ? gilx_monotonic_ns()
                                     + (int64_t)(timeout * 1e9) : 0;
    gilx_loop loop;
    if (gilx_loop_begin(&loop, release, &state->stop, deadline,
                        PyExc_TimeoutError) < 0) {
        return NULL;
    }
    uint64_t x = 88172645463325252u, done = 0;
    do {
        uint64_t chunk = n - done < CHUNK ? n - done : CHUNK;
        for (uint64_t i = 0; i < chunk; i++) {  /* C locals only */
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        done += chunk;
        if (gilx_loop_next(&loop) < 0) {
            return NULL;
        }
    } while (done < n);
    gilx_loop_stop(&loop);
    return PyLong_FromUnsignedLongLong(x);
}

static PyObject *
set_stop(PyObject *module, uint64_t value)
{
    gilx_atomic_store(&((spin_state *)PyModule_GetState(module))->stop, value);
    Py_RETURN_NONE;
}

static PyObject *
stop(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    return set_stop(module, 1);
}

static PyObject *
clear(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    return set_stop(module, 0);
}

static PyMethodDef spin_methods[] = {
    {"spin", (PyCFunction)(void (*)(void))spin, METH_VARARGS | METH_KEYWORDS,
     NULL},
    {"stop", stop, METH_NOARGS, NULL},
    {"clear", clear, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL}
};

static PyModuleDef_Slot spin_slots[] = {
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL}
};

static struct PyModuleDef spin_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "spin",
    .m_size = sizeof(spin_state),
    .m_methods = spin_methods,
    .m_slots = spin_slots,
};

PyMODINIT_FUNC
PyInit_spin(void)
{
    return PyModuleDef_Init(&spin_module);
}
