/*
 * counters.c -- three counters with one interface, three ways of sharing:
 *
 *   UnsafeCounter   plain load / add one / store, GIL released: loses updates
 *   AtomicCounter   C11 atomic add, GIL released: never loses one
 *   LockedCounter   the same plain steps as UnsafeCounter, but serialised
 *                   by a fair lock of its own, GIL released: never loses one
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

/*
 * LockedCounter's lock: a ticket lock (FIFO), waited for with the GIL
 * released, the same on every build.
 *
 * Why not a PyThread lock: it is not fair.  A thread that releases it between
 * two chunks and re-takes it at once wins again and again (on Linux it is a
 * semaphore, and the waker's re-take beats the woken waiter): beside one long
 * increment, ten reads of `value` on the main thread took 0.0 ms seven times
 * and 279, 355 and 432 ms the other three, deaf to Ctrl-C meanwhile.  With
 * tickets, a thread that comes back for the lock queues behind every thread
 * already waiting, so a wait lasts at most one chunk (~1 ms alone, ~10 ms
 * with the cache line shared) per thread ahead of it: the holder does plain
 * C work only, never waits for anything (the GIL least of all) while it
 * holds the lock, and lets go after each chunk.
 *
 * Why not PyMutex (3.13+): it is fair enough (it hands the lock to a waiter
 * that has waited 1 ms) and needs no GIL, but 3.10-3.12 lack it and a second
 * code path would be needed there; this lock is the same forty lines on
 * every build.  Why not a critical section (free-threaded builds), as
 * before: it needs the thread attached, so the loop had to stay attached
 * and, with PYTHON_GIL=1, held the GIL for the whole call.
 *
 * A waiter cannot leave the queue (its ticket cannot be handed back), so a
 * wait is not cut short by Ctrl-C or a token; it is bounded instead, and
 * signals and the token are looked at as soon as the turn has been taken and
 * passed on.  Waiting polls: a short spin, then sleeps of WAIT_SLEEP_NS.
 */
typedef struct {
    gilx_atomic_u64 next;       /* the next ticket to hand out */
    gilx_atomic_u64 serving;    /* the ticket whose holder has the lock */
} TicketLock;

#define WAIT_SPINS 100
#define WAIT_SLEEP_NS 50000

#ifdef _WIN32
#  define wait_a_little() Sleep(0)
#else
static void
wait_a_little(void)
{
    struct timespec ts = {0, WAIT_SLEEP_NS};
    nanosleep(&ts, NULL);
}
#endif

/* Called with the GIL released. */
static void
ticket_acquire(TicketLock *lock)
{
    uint64_t ticket = gilx_atomic_fetch_add(&lock->next, 1);
    /* Acquire: the previous holder's plain increments are visible here. */
    for (int spins = 0; gilx_atomic_load_acquire(&lock->serving) != ticket;
         spins++)
    {
        if (spins >= WAIT_SPINS) {
            wait_a_little();
        }
    }
}

static void
ticket_release(TicketLock *lock)
{
    /* Only the holder writes `serving`; release publishes its steps. */
    gilx_atomic_store_release(&lock->serving,
                              gilx_atomic_load(&lock->serving) + 1);
}

typedef struct {
    PlainCounterObject plain;   /* first: the plain kernel takes either */
    TicketLock lock;
    /* The value after the last chunk or reset, stored under the lock: what
     * `value` reads, with no lock and no wait. */
    gilx_atomic_u64 published;
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
 * protection differs: its lock (above), taken for each chunk with the GIL
 * released, on every build.
 *
 * It used to hold the GIL for each chunk and hand it round between chunks
 * (Py_BEGIN_ALLOW_THREADS; Py_END_ALLOW_THREADS), the GIL being the lock.
 * That starves every other thread that wants the GIL: the releasing thread
 * takes it straight back unless a waiter has asked for it, and the GIL does
 * not choose fairly among waiters.  With two threads incrementing, the main
 * thread waited 0.5-10 s for the GIL to run a Ctrl-C handler (CPython 3.11,
 * 2 cores, 18 of 20 tries), and once for more than 15 s.  A lock of its own
 * keeps the GIL free: only the incrementing threads wait for one another.
 */
static void
locked_kernel(PyObject *op, uint64_t times)
{
    LockedCounterObject *self = (LockedCounterObject *)op;
    ticket_acquire(&self->lock);
    gilx_plain_increments(&self->plain.value, times);
    gilx_atomic_store(&self->published, self->plain.value);
    ticket_release(&self->lock);
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
 * Wait at `gate` until all its parties have arrived, with the GIL released
 * (the loop has released it) in spin rounds of about a millisecond
 * (gate.c); between two rounds gilx_loop_next() looks at the token and, on
 * the main thread, by the clock, at signals, as between two chunks, so a
 * thread waiting for parties that never come still answers Ctrl-C and its
 * token.  When the gate opens it returns 0 still released: a thread that
 * re-took the GIL here would queue for it behind the other parties, which
 * serialises again the very start the gate synchronises.  On failure (gate
 * aborted or timed out, interrupted, cancelled) it returns -1 with the GIL
 * held and an exception set.
 */
static int
gate_wait(gilx_loop *loop, StartGateObject *gate)
{
    int64_t arrived_ns = gilx_monotonic_ns();
    gilx_gate_arrive(gate);
    for (;;) {
        gilx_gate_status status = gilx_gate_spin(gate, arrived_ns);
        if (status == GILX_GATE_OPEN) {
            return 0;
        }
        if (status != GILX_GATE_WAITING) {
            gilx_loop_stop(loop);
            gilx_gate_error(status);
            return -1;
        }
        if (gilx_loop_next(loop) < 0) {
            return -1;
        }
    }
}

/*
 * Run `kernel` over `times` increments in chunks of `max_chunk` (policy.h),
 * the loop of count.c's count_run(), with the GIL released for the call and
 * taken back between chunks only where the policy of policy.h says so
 * (gilx_loop_next()).  With a gate, the threads wait there in the same
 * released region, and start their first chunk together.
 */
static PyObject *
counter_run(PyObject *self, PyTypeObject *defining_class,
            PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
            void (*kernel)(PyObject *, uint64_t), uint64_t max_chunk)
{
    gilx_state *state;
    uint64_t times;
    StartGateObject *gate;
    CancelTokenObject *cancel;
    if (parse_increment_args(defining_class, args, nargs, kwnames, &state,
                             &times, &gate, &cancel) < 0) {
        return NULL;
    }
    gilx_loop loop;     /* the policy of policy.h */
    if (gilx_loop_start_token(&loop, state, cancel, 1) < 0) {
        return NULL;
    }
    if (gate != NULL && gate_wait(&loop, gate) < 0) {
        return NULL;
    }
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
    return counter_run(INCREMENT_ARGS, unsafe_kernel, GILX_COUNTER_CHUNK);
}

static PyObject *
atomic_increment(INCREMENT_PARAMS)
{
    return counter_run(INCREMENT_ARGS, atomic_kernel, GILX_ATOMIC_CHUNK);
}

static PyObject *
locked_increment(INCREMENT_PARAMS)
{
    return counter_run(INCREMENT_ARGS, locked_kernel, GILX_COUNTER_CHUNK);
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
 * `value` takes the published value: no lock, no wait, so a read (and repr)
 * never stalls, whatever the incrementing threads do.  It is the count after
 * some chunk, as a read under the lock between two chunks would be.
 */
static PyObject *
locked_get_value(PyObject *op, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLongLong(
        gilx_atomic_load(&((LockedCounterObject *)op)->published));
}

/*
 * reset() writes, so it takes the lock: with the GIL released (the holder
 * never needs the GIL, but other Python threads do meanwhile), and lets it go
 * before it takes the GIL back, so that no thread ever waits for the GIL
 * while it holds the lock.  The wait is one chunk per thread ahead at most.
 */
static PyObject *
locked_reset(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    LockedCounterObject *self = (LockedCounterObject *)op;
    Py_BEGIN_ALLOW_THREADS
    ticket_acquire(&self->lock);
    self->plain.value = 0;
    gilx_atomic_store(&self->published, 0);
    ticket_release(&self->lock);
    Py_END_ALLOW_THREADS
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
"fair lock of its own with the GIL released.  Never loses an update;\n"
"`value` reads the count as of the last chunk without waiting.");

static PyType_Slot locked_slots[] = {
    {Py_tp_doc, (void *)locked_doc},
    {Py_tp_new, counter_new},
    {Py_tp_repr, counter_repr},
    {Py_tp_dealloc, gilx_dealloc},
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
