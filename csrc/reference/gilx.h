/*
 * gilx.h -- the plumbing of the gilx._core module, shared by its C files.
 *
 * Read policy.h first: it is the GIL policy, and the one header a long call
 * needs to learn.  This one holds what a module of several files shares
 * besides, each in its own section below:
 *   - argument limits and parsing (args.c);
 *   - the counting kernel (count.c, and harness/trace.c);
 *   - critical sections on every build, and portable atomics;
 *   - the module state (no static mutable state anywhere in csrc/) and the
 *     GC helpers of its heap types;
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

/* ------------------------------------------------------------------------
 * Critical sections on every build
 *
 * Py_BEGIN_CRITICAL_SECTION(op) ... Py_END_CRITICAL_SECTION() lock `op`'s
 * per-object mutex on a free-threaded build and are an empty block on a GIL
 * build of 3.13+, where the GIL already serialises the code.  Older Pythons
 * lack them; defining them as the same empty block there lets the code say
 * what it needs once, with no #ifdef Py_GIL_DISABLED, so the free-threaded
 * path is compiled (and -Werror-checked) by every build, not only by a
 * free-threaded one.
 *
 * This is pythoncapi_compat.h's shim (github.com/python/pythoncapi-compat),
 * guard and bodies alike: the macros became public API in 3.13.0b3
 * (0x030D00B3), so a 3.13 alpha or early beta gets the empty block too, and
 * an extension that also includes pythoncapi_compat.h sees the same
 * definitions twice, which C allows, instead of a redefinition error.
 * ------------------------------------------------------------------------ */
#if PY_VERSION_HEX < 0x030D00B3
#  define Py_BEGIN_CRITICAL_SECTION(op) {
#  define Py_END_CRITICAL_SECTION() }
#  define Py_BEGIN_CRITICAL_SECTION2(a, b) {
#  define Py_END_CRITICAL_SECTION2() }
#endif

/* ------------------------------------------------------------------------
 * Atomics
 *
 * C11 <stdatomic.h> where the compiler has it; MSVC's Interlocked
 * intrinsics otherwise (MSVC only ships stdatomic.h behind a flag).  Every
 * atomic in csrc/ goes through these helpers, so that no file needs an MSVC
 * branch of its own.  The order each one gives is in its name or, for the
 * plain ones, relaxed:
 *   - relaxed (add_one, load, store, exchange): a counter or a flag that
 *     publishes no other data.  A counter's reader joins the threads first,
 *     and the join supplies the happens-before; a flag that guards data is
 *     backed by a lock that orders that data (lockdemo.c).
 *   - add_one_release / load_acquire: a StartGate, where arriving must
 *     publish what the arriving thread did before, to every thread that
 *     sees the gate open (gate.c).
 * MSVC's Interlocked functions are full barriers, at least as strong as any
 * of these on every architecture it targets.
 * ------------------------------------------------------------------------ */
#if defined(_MSC_VER) && !defined(__clang__)
#  include <intrin.h>
typedef volatile int64_t gilx_atomic_u64;
static inline void
gilx_atomic_add_one(gilx_atomic_u64 *p)
{
    _InterlockedIncrement64((volatile __int64 *)p);
}
static inline void
gilx_atomic_add_one_release(gilx_atomic_u64 *p)
{
    _InterlockedIncrement64((volatile __int64 *)p);
}
static inline uint64_t
gilx_atomic_load(gilx_atomic_u64 *p)
{
    return (uint64_t)_InterlockedOr64((volatile __int64 *)p, 0);
}
static inline uint64_t
gilx_atomic_load_acquire(gilx_atomic_u64 *p)
{
    return (uint64_t)_InterlockedOr64((volatile __int64 *)p, 0);
}
static inline void
gilx_atomic_store(gilx_atomic_u64 *p, uint64_t v)
{
    _InterlockedExchange64((volatile __int64 *)p, (__int64)v);
}
static inline uint64_t
gilx_atomic_exchange(gilx_atomic_u64 *p, uint64_t v)
{
    return (uint64_t)_InterlockedExchange64((volatile __int64 *)p, (__int64)v);
}
#else
#  include <stdatomic.h>
typedef _Atomic uint64_t gilx_atomic_u64;
static inline void
gilx_atomic_add_one(gilx_atomic_u64 *p)
{
    atomic_fetch_add_explicit(p, 1, memory_order_relaxed);
}
static inline void
gilx_atomic_add_one_release(gilx_atomic_u64 *p)
{
    atomic_fetch_add_explicit(p, 1, memory_order_release);
}
static inline uint64_t
gilx_atomic_load(gilx_atomic_u64 *p)
{
    return atomic_load_explicit(p, memory_order_relaxed);
}
static inline uint64_t
gilx_atomic_load_acquire(gilx_atomic_u64 *p)
{
    return atomic_load_explicit(p, memory_order_acquire);
}
static inline void
gilx_atomic_store(gilx_atomic_u64 *p, uint64_t v)
{
    atomic_store_explicit(p, v, memory_order_relaxed);
}
/* Returns the value it replaced.  One indivisible read-modify-write,
 * whatever its memory order: of several threads exchanging a 1 for a 0 at
 * once, exactly one gets the 1. */
static inline uint64_t
gilx_atomic_exchange(gilx_atomic_u64 *p, uint64_t v)
{
    return atomic_exchange_explicit(p, v, memory_order_relaxed);
}
#endif

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
    /* The thread that runs signal handlers, if this module's interpreter is
     * the main one (release.c); has_signal_thread is 0 in a
     * subinterpreter, where no handler ever runs. */
    int has_signal_thread;
    unsigned long signal_thread;
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

/*
 * Whether the token is cancelled, by cancel() or by its deadline: the flag,
 * then the clock.  No Python API, so a loop that runs with the GIL released
 * can ask it without re-taking the GIL (the heartbeat does, once per beat);
 * the token itself is kept alive by the caller's reference to it.  Reaching
 * the deadline sets the flag, so that every later reader agrees without
 * reading the clock.  Reading the flag alone would miss the deadline: a
 * CancelToken(timeout=...) is never cancel()ed by anyone.
 */
static inline int
gilx_token_cancelled(CancelTokenObject *token)
{
    if (gilx_atomic_load(&token->cancelled)) {
        return 1;
    }
    if (token->deadline_ns != 0 && gilx_monotonic_ns() >= token->deadline_ns) {
        gilx_atomic_store(&token->cancelled, 1);
        return 1;
    }
    return 0;
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
/* release.c: which thread runs signal handlers, read once in Py_mod_exec. */
int gilx_release_exec(gilx_state *state);

/* demo/race.c: the deliberate data race of UnsafeCounter (and the same
 * plain steps that LockedCounter serialises). */
void gilx_plain_increments(volatile uint64_t *value, uint64_t times);
/* lockdemo.c: the demonstration lock, made in exec and freed in m_free. */
int gilx_lockdemo_exec(gilx_state *state);
void gilx_lockdemo_free(gilx_state *state);

#endif /* GILX_H */
