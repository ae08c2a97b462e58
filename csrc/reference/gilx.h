/*
 * gilx.h -- the plumbing of the gilx._core module, shared by its C files.
 *
 * Read policy.h first: it is the GIL policy, and the one header a long call
 * needs to learn.  This one holds what a module of several files shares
 * besides, each in its own section below:
 *   - argument limits and parsing (args.c);
 *   - the counting kernel (count.c, and harness/trace.c);
 *   - the module state (no static mutable state in csrc/ but release.c's
 *     record of the process's main thread, a fact of the process, not of
 *     an interpreter) and the GC helpers of its heap types;
 *   - CancelToken (cancel.c), which every long call accepts;
 *   - what each C file adds to the module (method tables, exec functions).
 */
#ifndef GILX_H
#define GILX_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>

#include "policy.h"

/* The largest work size any function accepts: the C type is uint64_t, but
 * Python callers see a signed 64-bit limit, which keeps every work size
 * representable as a C long long and the bookkeeping of one call free of
 * wrap-around.  (Results may wrap, well-defined in unsigned arithmetic:
 * stream_sum is modulo 2**64 by definition.) */
#define GILX_MAX_COUNT ((uint64_t)INT64_MAX)

/* ------------------------------------------------------------------------
 * The counting kernel, shared by count.c (count_gil, count_nogil, count_auto)
 * and trace.c (count_traced): one loop, however it is run.
 * ------------------------------------------------------------------------ */
/*
 * Keep the compiler from folding the loop.
 *
 * Left alone, an optimiser turns `for (i < n) count += 1` into
 * `count += n`, and the "work" would cost nothing.  After each increment we
 * pass `count` through an empty asm statement that claims to read and
 * modify it: the compiler must then materialise the value in a register
 * every iteration and cannot predict the next one, so the loop stays a
 * loop (add, add, compare, branch: about one cycle per iteration, cost
 * linear in n).  No instruction is emitted for the asm itself.  Compilers
 * without GNU asm get a volatile local instead, which costs a store and a
 * load per iteration but is just as unfoldable.
 */
#if defined(__GNUC__) || defined(__clang__)
static inline uint64_t
gilx_count_kernel(uint64_t count, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        count += 1;
        __asm__ volatile("" : "+r"(count));
    }
    return count;
}
#else
static inline uint64_t
gilx_count_kernel(uint64_t count, uint64_t n)
{
    volatile uint64_t c = count;
    for (uint64_t i = 0; i < n; i++) {
        c = c + 1;
    }
    return c;
}
#endif

/* Atomics: atomics.h (included by policy.h), the one place where a memory
 * order is chosen, with an MSVC branch (32-bit x86 included). */

/* ------------------------------------------------------------------------
 * Module state: the heap types, created in Py_mod_exec.  One copy per
 * module object, so the module can be loaded in several (sub)interpreters.
 * ------------------------------------------------------------------------ */
typedef struct gilx_state {
    PyTypeObject *start_gate_type;
    PyTypeObject *unsafe_counter_type;
    PyTypeObject *atomic_counter_type;
    PyTypeObject *locked_counter_type;
    PyTypeObject *cancel_token_type;
    PyObject *cancelled_error;      /* the exception class gilx.Cancelled */
    /* Free-threaded builds only (cancel.c, offer_pause): sys._is_gil_enabled
     * and a no-op Python function. */
    PyObject *gil_enabled_func;
    PyObject *pause_point;
    /* lockdemo.c: a PyThread lock (timed, interruptible; lockdemo.c says
     * why not a PyMutex), and 1 while demo_lock_acquire() has it. */
    PyThread_type_lock demo_lock;
    gilx_atomic_u64 demo_lock_held;
} gilx_state;

static inline gilx_state *
gilx_get_state(PyObject *module)
{
    void *state = PyModule_GetState(module);
    assert(state != NULL);
    return (gilx_state *)state;
}

/* ------------------------------------------------------------------------
 * GC support shared by the five heap types (counters, StartGate,
 * CancelToken), as CPython's isolation HOWTO asks of heap types.
 *
 * Their instances hold no Python object but a strong reference to their
 * type, and that is enough for a cycle: an instance stored in the module's
 * namespace makes instance -> type -> module -> module dict -> instance.
 * The collector can only find such a cycle if every object in it says what
 * it refers to, so the types are Py_TPFLAGS_HAVE_GC, tp_traverse visits
 * Py_TYPE(self), and tp_dealloc untracks the object before freeing it (a
 * collection triggered during the free must not see a half-freed object)
 * and then drops the reference to the type.  No tp_clear: the only
 * reference, the type, is not one an instance may drop while alive; the
 * collector breaks the cycle at the module dict instead.
 * ------------------------------------------------------------------------ */
static inline int
gilx_traverse_type(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static inline void
gilx_dealloc(PyObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    type->tp_free(self);        /* PyObject_GC_Del, inherited */
    Py_DECREF(type);
}

/* ------------------------------------------------------------------------
 * Argument parsing
 *
 * Every work size (n, times, passes) goes through gilx_parse_count(): it
 * takes anything with __index__ (int, bool, NumPy integers), and raises
 * TypeError / ValueError / OverflowError with a message naming the
 * argument.  Returns 0 on success, -1 with an exception set.
 * ------------------------------------------------------------------------ */
int gilx_parse_count(PyObject *obj, const char *name, uint64_t *out);

/*
 * Keyword arguments of a METH_FASTCALL | METH_KEYWORDS function.  Each entry
 * names one accepted keyword and where to store its (borrowed) value; a
 * keyword that is not in the table is a TypeError naming `funcname`.
 * Entries whose keyword was not passed are left untouched.  Returns 0, or
 * -1 with an exception set.
 */
typedef struct {
    const char *name;
    PyObject **value;
} gilx_kwarg;

int gilx_parse_kwargs(const char *funcname, PyObject *const *kwvalues,
                      PyObject *kwnames, gilx_kwarg *table, size_t ntable);

/* The arguments `(n, /, *, cancel=None)` of a METH_FASTCALL |
 * METH_KEYWORDS function: n through gilx_parse_count(), cancel borrowed
 * (NULL when not passed; gilx_loop_start() checks its type). */
int gilx_parse_n_cancel(const char *funcname, PyObject *const *args,
                        Py_ssize_t nargs, PyObject *kwnames, uint64_t *n,
                        PyObject **cancel);

/* ------------------------------------------------------------------------
 * CancelToken (cancel.c): stopping a long call from another thread.
 *
 * Ctrl-C reaches a long call only in the main thread of the MAIN
 * interpreter: CPython runs signal handlers there and nowhere else, so
 * PyErr_CheckSignals() in a worker thread never raises -- and neither does
 * it in a subinterpreter (which module.c declares gilx supports), not even
 * in the OS main thread; the signal waits for the main interpreter.  A call
 * running in a worker or a subinterpreter is stopped instead
 * through a CancelToken passed as its keyword-only `cancel` argument:
 * token.cancel(), from any thread, sets an atomic flag; the call checks the
 * flag at the same place as signals, between its ~1 ms chunks (and between
 * the spin rounds of a StartGate), and raises gilx.Cancelled.  A token only
 * ever goes from "not cancelled" to "cancelled", so one relaxed atomic load
 * per chunk is the whole cost, and reading it needs no lock and no GIL.
 *
 * One case no other thread can reach: count_gil in a worker thread of a GIL
 * build holds the GIL from start to end, so no Python code anywhere runs
 * until it returns -- not cancel(), and not even the main thread's Ctrl-C
 * handler.  That is what holding the GIL means, and the demonstration keeps
 * it.  For that case a token can carry a deadline, CancelToken(timeout=s):
 * the call itself reads the clock between chunks (one ~20 ns read per ~1 ms
 * chunk) and cancels itself when the deadline has passed.
 * ------------------------------------------------------------------------ */
typedef struct CancelTokenObject {
    PyObject_HEAD
    gilx_atomic_u64 cancelled;
    int64_t deadline_ns;        /* gilx_monotonic_ns() time; 0: none.
                                   Set in tp_new, read-only after. */
} CancelTokenObject;

/* Whether the token is cancelled, by cancel() or by its deadline (policy.h's
 * gilx_cancelled(): no Python API, so a loop running with the GIL released
 * can ask it; the caller's reference keeps the token alive). */
static inline int
gilx_token_cancelled(CancelTokenObject *token)
{
    return gilx_cancelled(&token->cancelled, token->deadline_ns);
}

/* Turn the `cancel` argument into a token: None (or not passed, obj ==
 * NULL) gives *out = NULL; anything but a CancelToken is a TypeError. */
int gilx_parse_cancel(gilx_state *state, PyObject *obj,
                      CancelTokenObject **out);

/*
 * What every long call does between two chunks, with the GIL held: run
 * pending signal handlers (Ctrl-C raises KeyboardInterrupt here, in the main
 * thread), then honour the token.  Returns 0 to go on, or -1 with
 * KeyboardInterrupt (or whatever a handler raised) or gilx.Cancelled set.
 */
int gilx_check_interrupts(gilx_state *state, CancelTokenObject *cancel);

/*
 * gilx's front end to gilx_loop_begin() (policy.h), in cancel.c: the flag and
 * the deadline are the token's, and a cancelled loop raises gilx.Cancelled.
 * gilx_loop_start() takes the module and the `cancel` argument as passed
 * (NULL or None: none; anything but a CancelToken: TypeError);
 * gilx_loop_start_token() a token already parsed (NULL: none).  Both return
 * 0, or -1 with an exception set and the GIL held.
 */
int gilx_loop_start(gilx_loop *loop, PyObject *module, PyObject *cancel,
                    int release);
int gilx_loop_start_token(gilx_loop *loop, gilx_state *state,
                          CancelTokenObject *cancel, int release);

/* ------------------------------------------------------------------------
 * What each C file contributes to the module.
 * ------------------------------------------------------------------------ */
extern PyMethodDef gilx_count_methods[];    /* count.c  */
extern PyMethodDef gilx_stream_methods[];   /* stream.c */
extern PyMethodDef gilx_lockdemo_methods[]; /* lockdemo.c */

/* counters.c, cancel.c: create the heap types from their specs (and, for
 * cancel.c, the exception class gilx.Cancelled). */
int gilx_counters_exec(PyObject *module, gilx_state *state);
int gilx_cancel_exec(PyObject *module, gilx_state *state);

/* demo/race.c: the deliberate data race of UnsafeCounter (and the same
 * plain steps that LockedCounter serialises). */
void gilx_plain_increments(volatile uint64_t *value, uint64_t times);
/* lockdemo.c: the demonstration lock, made in exec and freed in m_free. */
int gilx_lockdemo_exec(gilx_state *state);
void gilx_lockdemo_free(gilx_state *state);

#endif /* GILX_H */
