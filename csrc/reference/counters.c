/*
 * counters.c -- three counters with one interface, three ways of sharing:
 *
 *   UnsafeCounter   plain load / add one / store, GIL released: loses updates
 *   AtomicCounter   C11 atomic add, GIL released: never loses one
 *   LockedCounter   the same plain steps as UnsafeCounter, but serialised
 *                   (by a lock of its own with the GIL released, or by a
 *                   critical section on free-threaded builds): never loses
 *                   one
 *
 * Each has increment(times), a `value` attribute and reset().  They are heap
 * types made from the specs below in the module's exec slot, so each
 * (sub)interpreter gets its own.
 */
#include "harness.h"      /* StartGate; it includes gilx.h */

typedef struct {
    PyObject_HEAD
    /* volatile, not atomic: see gilx_plain_increments() (demo/race.c). */
    volatile uint64_t value;
} PlainCounterObject;      /* UnsafeCounter */

typedef struct {
    PlainCounterObject plain;   /* first: the plain kernel takes either */
#ifndef Py_GIL_DISABLED
    PyThread_type_lock lock;    /* see locked_kernel() */
#endif
} LockedCounterObject;

typedef struct {
    PyObject_HEAD
    gilx_atomic_u64 value;
} AtomicCounterObject;

/* ------------------------------------------------------------------------
 * The kernels: `times` increments, no Python API, no Python object other
 * than the C fields of `self` (kept alive by the caller's reference).
 * ------------------------------------------------------------------------ */

static void
unsafe_kernel(PyObject *op, uint64_t times)
{
    gilx_plain_increments(&((PlainCounterObject *)op)->value, times);
}

static void
atomic_kernel(PyObject *op, uint64_t times)
{
    gilx_atomic_u64 *value = &((AtomicCounterObject *)op)->value;
    for (uint64_t i = 0; i < times; i++) {
        gilx_atomic_add_one(value);
    }
}

/*
 * LockedCounter does the very same plain steps as UnsafeCounter; only the
 * protection differs.
 *
 * On a GIL build it takes a lock of its own for each chunk, with the GIL
 * released.  It used to hold the GIL for each chunk and hand it round
 * between chunks (Py_BEGIN_ALLOW_THREADS; Py_END_ALLOW_THREADS), the GIL
 * being the lock.  That starves every other thread that wants the GIL:
 * the releasing thread takes it straight back unless a waiter has asked
 * for it, and the GIL does not choose fairly among waiters.  With two
 * threads incrementing, the main thread waited 0.5-10 s for the GIL to run
 * a Ctrl-C handler (CPython 3.11, 2 cores, 18 of 20 tries), and once for
 * more than 15 s.  A lock of its own keeps the GIL free: only the
 * incrementing threads wait for one another.  (PyMutex, 3.13+, would do
 * too and needs no allocation; a PyThread lock covers 3.10-3.12 as well,
 * with one code path.)
 *
 * On a free-threaded build the chunk runs inside a critical section on the
 * object instead: a per-object mutex that the runtime releases if the
 * thread would block, so it cannot deadlock with a stop-the-world pause.
 * A critical section needs an attached thread state, so there the call
 * stays attached (LOCKED_RELEASES below) and offers a pause point between
 * chunks (gilx_loop_next()).
 */
#ifdef Py_GIL_DISABLED
#  define LOCKED_RELEASES 0
#else
#  define LOCKED_RELEASES 1
#endif

static void
locked_kernel(PyObject *op, uint64_t times)
{
#ifdef Py_GIL_DISABLED
    Py_BEGIN_CRITICAL_SECTION(op);
    gilx_plain_increments(&((PlainCounterObject *)op)->value, times);
    Py_END_CRITICAL_SECTION();
#else
    /* The GIL is released here: a PyThread lock is C, not a Python object,
     * and the holder never needs the GIL before it lets go, so waiting
     * for it blocks nobody else. */
    PyThread_type_lock lock = ((LockedCounterObject *)op)->lock;
    PyThread_acquire_lock(lock, WAIT_LOCK);
    gilx_plain_increments(&((PlainCounterObject *)op)->value, times);
    PyThread_release_lock(lock);
#endif
}

/*
 * Parse increment()'s arguments: `times`, and the optional keywords `start`
 * (a StartGate) and `cancel` (a CancelToken).  Their types live in the
 * module state, reached through the class that defines the method
 * (PEP 573), not through a global.
 */
static int
parse_increment_args(PyTypeObject *defining_class, PyObject *const *args,
                     Py_ssize_t nargs, PyObject *kwnames, gilx_state **state,
                     uint64_t *times, StartGateObject **gate,
                     CancelTokenObject **cancel)
{
    if (nargs != 1) {
        PyErr_Format(PyExc_TypeError,
                     "increment() takes exactly 1 positional argument "
                     "(times), got %zd", nargs);
        return -1;
    }
    PyObject *start_obj = NULL;
    PyObject *cancel_obj = NULL;
    gilx_kwarg kwargs[] = {{"start", &start_obj}, {"cancel", &cancel_obj}};
    if (gilx_parse_kwargs("increment", args + nargs, kwnames, kwargs, 2) < 0) {
        return -1;
    }
    *state = PyType_GetModuleState(defining_class);
    if (*state == NULL) {
        return -1;
    }
    *gate = NULL;
    if (start_obj != NULL && start_obj != Py_None) {
        if (!PyObject_TypeCheck(start_obj, (*state)->start_gate_type)) {
            PyErr_Format(PyExc_TypeError,
                         "start must be a StartGate or None, not %.200s",
                         Py_TYPE(start_obj)->tp_name);
            return -1;
        }
        *gate = (StartGateObject *)start_obj;
    }
    if (gilx_parse_cancel(*state, cancel_obj, cancel) < 0) {
        return -1;
    }
    return gilx_parse_count(args[0], "times", times);
}

/*
 * Wait at `gate` until all its parties have arrived.  Called with the GIL
 * held; the caller has already counted itself in (gilx_gate_arrive) at
 * `arrived_ns`.  The waiting is done with the GIL released, in spin rounds
 * of about a millisecond (gate.c); between two rounds the GIL is taken back
 * for gilx_check_interrupts(), as between two chunks, so a thread waiting
 * for parties that never come still answers Ctrl-C and its token.
 *
 * When the gate opens, this returns WITHOUT taking the GIL back: the result
 * is this thread's saved state, for the caller's PyEval_RestoreThread().  A
 * thread that re-took the GIL here would queue for it behind the other
 * parties, which serialises again the very start the gate synchronises; a
 * releasing kernel therefore starts its first chunk in this same released
 * region.  On failure (gate aborted or timed out, interrupted, cancelled) it
 * returns NULL with the GIL held and an exception set.
 */
static PyThreadState *
gate_wait(gilx_state *state, StartGateObject *gate, int64_t arrived_ns,
          CancelTokenObject *cancel)
{
    for (;;) {
        PyThreadState *released = PyEval_SaveThread();
        gilx_gate_status status = gilx_gate_spin(gate, arrived_ns);
        if (status == GILX_GATE_OPEN) {
            return released;
        }
        PyEval_RestoreThread(released);
        if (status != GILX_GATE_WAITING) {
            gilx_gate_error(status);
            return NULL;
        }
        if (gilx_check_interrupts(state, cancel) < 0) {
            return NULL;
        }
    }
}

/*
 * Run `kernel` over `times` increments in chunks of `max_chunk` (policy.h),
 * the loop of count.c's count_run(): with `release` the GIL is released
 * for the call, and taken back between chunks only where the policy of
 * policy.h says so (gilx_loop_next()).
 *
 * `released` is the one extra: non-NULL when a gate opened (gate_wait())
 * and left this thread with the GIL released; the loop then starts in that
 * released region, without re-taking the GIL in between.
 */
static PyObject *
counter_run(PyObject *self, PyTypeObject *defining_class,
            PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
            void (*kernel)(PyObject *, uint64_t), uint64_t max_chunk,
            int release)
{
    gilx_state *state;
    uint64_t times;
    StartGateObject *gate;
    CancelTokenObject *cancel;
    if (parse_increment_args(defining_class, args, nargs, kwnames, &state,
                             &times, &gate, &cancel) < 0) {
        return NULL;
    }
    PyThreadState *released = NULL;
    if (gate != NULL) {
        int64_t arrived_ns = gilx_monotonic_ns();
        gilx_gate_arrive(gate);
        released = gate_wait(state, gate, arrived_ns, cancel);
        if (released == NULL) {
            return NULL;
        }
        if (!release) {
            /* A kernel that stays attached (LockedCounter's critical
             * section): attach now.  It waited released all the same,
             * because spinning while attached would keep a stop-the-world
             * pause, and with a GIL the other parties, waiting. */
            PyEval_RestoreThread(released);
            released = NULL;
        }
    }
    if (release && released == NULL) {
        released = PyEval_SaveThread();
    }
    gilx_loop loop;     /* the policy of policy.h */
    gilx_loop_begin(&loop, state, cancel, released);
    uint64_t done = 0;
    do {
        uint64_t chunk = times - done;
        if (chunk > max_chunk) {
            chunk = max_chunk;
        }
        kernel(self, chunk);
        done += chunk;
        if (gilx_loop_next(&loop) < 0) {
            return NULL;
        }
    } while (done < times);
    gilx_loop_stop(&loop);
    Py_RETURN_NONE;
}

#define INCREMENT_PARAMS \
    PyObject *self, PyTypeObject *defining_class, PyObject *const *args, \
    Py_ssize_t nargs, PyObject *kwnames
#define INCREMENT_ARGS self, defining_class, args, nargs, kwnames

static PyObject *
unsafe_increment(INCREMENT_PARAMS)
{
    return counter_run(INCREMENT_ARGS, unsafe_kernel, GILX_COUNTER_CHUNK, 1);
}

static PyObject *
atomic_increment(INCREMENT_PARAMS)
{
    return counter_run(INCREMENT_ARGS, atomic_kernel, GILX_ATOMIC_CHUNK, 1);
}

static PyObject *
locked_increment(INCREMENT_PARAMS)
{
    return counter_run(INCREMENT_ARGS, locked_kernel, GILX_COUNTER_CHUNK,
                       LOCKED_RELEASES);
}

/* ------------------------------------------------------------------------
 * value and reset()
 * ------------------------------------------------------------------------ */

static PyObject *
unsafe_get_value(PyObject *op, void *Py_UNUSED(closure))
{
    /* Unsynchronised on purpose, like the increments: read it after the
     * incrementing threads have been joined. */
    return PyLong_FromUnsignedLongLong(((PlainCounterObject *)op)->value);
}

static PyObject *
unsafe_reset(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    ((PlainCounterObject *)op)->value = 0;
    Py_RETURN_NONE;
}

static PyObject *
atomic_get_value(PyObject *op, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLongLong(
        gilx_atomic_load(&((AtomicCounterObject *)op)->value));
}

static PyObject *
atomic_reset(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    gilx_atomic_store(&((AtomicCounterObject *)op)->value, 0);
    Py_RETURN_NONE;
}

/*
 * value and reset(), under the increments' protection.  Called with the GIL
 * held.  On a GIL build an increment chunk holds the lock for about a
 * millisecond: wait for it with the GIL released rather than stall every
 * other thread meanwhile.
 */
static uint64_t
locked_read(PyObject *op, int and_reset)
{
    volatile uint64_t *value = &((PlainCounterObject *)op)->value;
    uint64_t seen;
#ifdef Py_GIL_DISABLED
    Py_BEGIN_CRITICAL_SECTION(op);
    seen = *value;
    if (and_reset) {
        *value = 0;
    }
    Py_END_CRITICAL_SECTION();
#else
    PyThread_type_lock lock = ((LockedCounterObject *)op)->lock;
    if (!PyThread_acquire_lock(lock, NOWAIT_LOCK)) {
        Py_BEGIN_ALLOW_THREADS
        PyThread_acquire_lock(lock, WAIT_LOCK);
        Py_END_ALLOW_THREADS
    }
    seen = *value;
    if (and_reset) {
        *value = 0;
    }
    PyThread_release_lock(lock);
#endif
    return seen;
}

static PyObject *
locked_get_value(PyObject *op, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLongLong(locked_read(op, 0));
}

static PyObject *
locked_reset(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    (void)locked_read(op, 1);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------
 * Construction, repr, deallocation: shared by the three types.
 * ------------------------------------------------------------------------ */

static PyObject *
counter_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) != 0
        || (kwds != NULL && PyDict_GET_SIZE(kwds) != 0)) {
        PyErr_Format(PyExc_TypeError, "%s() takes no arguments",
                     type->tp_name);
        return NULL;
    }
    /* tp_alloc zero-fills: every counter starts at 0. */
    return type->tp_alloc(type, 0);
}

static PyObject *
counter_repr(PyObject *self)
{
    PyObject *value = PyObject_GetAttrString(self, "value");
    if (value == NULL) {
        return NULL;
    }
    PyObject *repr = PyUnicode_FromFormat("%s(value=%S)",
                                          Py_TYPE(self)->tp_name, value);
    Py_DECREF(value);
    return repr;
}

/* LockedCounter's lock (GIL builds), made and freed with the object. */
static PyObject *
locked_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *self = counter_new(type, args, kwds);
#ifndef Py_GIL_DISABLED
    if (self != NULL) {
        PyThread_type_lock lock = PyThread_allocate_lock();
        if (lock == NULL) {
            Py_DECREF(self);        /* locked_dealloc: lock still NULL */
            return PyErr_NoMemory();
        }
        ((LockedCounterObject *)self)->lock = lock;
    }
#endif
    return self;
}

static void
locked_dealloc(PyObject *self)
{
#ifndef Py_GIL_DISABLED
    /* No increment() can hold it: each call holds a reference to self. */
    PyThread_type_lock lock = ((LockedCounterObject *)self)->lock;
    if (lock != NULL) {
        PyThread_free_lock(lock);
    }
#endif
    gilx_dealloc(self);
}

PyDoc_STRVAR(increment_doc,
"increment($self, times, /, *, start=None, cancel=None)\n"
"--\n"
"\n"
"Add one to the counter `times` times.\n"
"\n"
"With start=StartGate(k), wait (GIL released) until k threads have\n"
"called increment with that gate, so that they all begin together.\n"
"With cancel=CancelToken(), token.cancel() from any thread makes the call\n"
"raise gilx.Cancelled at its next chunk boundary (or while it waits at\n"
"the gate); the increments already made stay.");

PyDoc_STRVAR(reset_doc,
"reset($self, /)\n"
"--\n"
"\n"
"Set the counter to 0.");

PyDoc_STRVAR(value_doc, "The current count.");

/* ------------------------------------------------------------------------
 * The specs.  One per type; they differ only in their kernels.
 * ------------------------------------------------------------------------ */

/* GC-tracked: see gilx_dealloc() in gilx.h for the cycle they can be in. */
#define COUNTER_FLAGS \
    (Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_HAVE_GC)

static PyMethodDef unsafe_methods[] = {
    {"increment", (PyCFunction)(void (*)(void))unsafe_increment,
     METH_METHOD | METH_FASTCALL | METH_KEYWORDS, increment_doc},
    {"reset", unsafe_reset, METH_NOARGS, reset_doc},
    {NULL, NULL, 0, NULL}
};
static PyGetSetDef unsafe_getset[] = {
    {"value", unsafe_get_value, NULL, value_doc, NULL},
    {NULL, NULL, NULL, NULL, NULL}
};

PyDoc_STRVAR(unsafe_doc,
"UnsafeCounter()\n"
"--\n"
"\n"
"A refcount-style counter whose increments are separate, non-atomic\n"
"load / add-one / store steps run with the GIL released.  Threads sharing\n"
"one counter lose updates: the data race the GIL exists to prevent.");

static PyType_Slot unsafe_slots[] = {
    {Py_tp_doc, (void *)unsafe_doc},
    {Py_tp_new, counter_new},
    {Py_tp_repr, counter_repr},
    {Py_tp_dealloc, gilx_dealloc},
    {Py_tp_traverse, gilx_traverse_type},
    {Py_tp_methods, unsafe_methods},
    {Py_tp_getset, unsafe_getset},
    {0, NULL}
};
static PyType_Spec unsafe_spec = {
    .name = "gilx.UnsafeCounter",
    .basicsize = sizeof(PlainCounterObject),
    .flags = COUNTER_FLAGS,
    .slots = unsafe_slots,
};

static PyMethodDef atomic_methods[] = {
    {"increment", (PyCFunction)(void (*)(void))atomic_increment,
     METH_METHOD | METH_FASTCALL | METH_KEYWORDS, increment_doc},
    {"reset", atomic_reset, METH_NOARGS, reset_doc},
    {NULL, NULL, 0, NULL}
};
static PyGetSetDef atomic_getset[] = {
    {"value", atomic_get_value, NULL, value_doc, NULL},
    {NULL, NULL, NULL, NULL, NULL}
};

PyDoc_STRVAR(atomic_doc,
"AtomicCounter()\n"
"--\n"
"\n"
"A counter whose increments are C11 atomic adds run with the GIL\n"
"released.  Never loses an update.");

static PyType_Slot atomic_slots[] = {
    {Py_tp_doc, (void *)atomic_doc},
    {Py_tp_new, counter_new},
    {Py_tp_repr, counter_repr},
    {Py_tp_dealloc, gilx_dealloc},
    {Py_tp_traverse, gilx_traverse_type},
    {Py_tp_methods, atomic_methods},
    {Py_tp_getset, atomic_getset},
    {0, NULL}
};
static PyType_Spec atomic_spec = {
    .name = "gilx.AtomicCounter",
    .basicsize = sizeof(AtomicCounterObject),
    .flags = COUNTER_FLAGS,
    .slots = atomic_slots,
};

static PyMethodDef locked_methods[] = {
    {"increment", (PyCFunction)(void (*)(void))locked_increment,
     METH_METHOD | METH_FASTCALL | METH_KEYWORDS, increment_doc},
    {"reset", locked_reset, METH_NOARGS, reset_doc},
    {NULL, NULL, 0, NULL}
};
static PyGetSetDef locked_getset[] = {
    {"value", locked_get_value, NULL, value_doc, NULL},
    {NULL, NULL, NULL, NULL, NULL}
};

PyDoc_STRVAR(locked_doc,
"LockedCounter()\n"
"--\n"
"\n"
"A counter doing the same plain steps as UnsafeCounter, serialised by a\n"
"lock of its own with the GIL released (a critical section on\n"
"free-threaded builds).  Never loses an update.");

static PyType_Slot locked_slots[] = {
    {Py_tp_doc, (void *)locked_doc},
    {Py_tp_new, locked_new},
    {Py_tp_repr, counter_repr},
    {Py_tp_dealloc, locked_dealloc},
    {Py_tp_traverse, gilx_traverse_type},
    {Py_tp_methods, locked_methods},
    {Py_tp_getset, locked_getset},
    {0, NULL}
};
static PyType_Spec locked_spec = {
    .name = "gilx.LockedCounter",
    .basicsize = sizeof(LockedCounterObject),
    .flags = COUNTER_FLAGS,
    .slots = locked_slots,
};

/* Create one type from its spec, bound to `module`, and add it there. */
static PyTypeObject *
add_type(PyObject *module, PyType_Spec *spec)
{
    PyObject *type = PyType_FromModuleAndSpec(module, spec, NULL);
    if (type == NULL) {
        return NULL;
    }
    if (PyModule_AddType(module, (PyTypeObject *)type) < 0) {
        Py_DECREF(type);
        return NULL;
    }
    return (PyTypeObject *)type;     /* a new reference, owned by the state */
}

int
gilx_counters_exec(PyObject *module, gilx_state *state)
{
    state->unsafe_counter_type = add_type(module, &unsafe_spec);
    if (state->unsafe_counter_type == NULL) {
        return -1;
    }
    state->atomic_counter_type = add_type(module, &atomic_spec);
    if (state->atomic_counter_type == NULL) {
        return -1;
    }
    state->locked_counter_type = add_type(module, &locked_spec);
    if (state->locked_counter_type == NULL) {
        return -1;
    }
    return 0;
}
