/*
 * gilx.h -- what the C files of gilx._core share.
 *
 * Three things live here and nowhere else:
 *   1. the GIL policy: how much work runs per released chunk, and the size
 *      under which releasing the GIL is not worth it;
 *   2. the module state (no static mutable state anywhere in csrc/);
 *   3. small portable helpers: argument parsing and atomics.
 */
#ifndef GILX_H
#define GILX_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>

/* ------------------------------------------------------------------------
 * The GIL policy
 *
 * A long call runs its kernel in chunks of about 1 ms of work, counted in
 * iterations so that the hot loop has no clock call in it.  What happens
 * between two chunks is the policy, and it lives in one place, the
 * gilx_loop of release.c (declared below):
 *
 * - GIL held (count_gil): check for signals and the token after every
 *   chunk.  Holding the GIL, that costs a few ns.
 * - GIL released, any thread but the main thread of the main interpreter:
 *   never take the GIL back before the call ends.  No signal handler can
 *   run on such a thread, so re-taking it would buy nothing, and it costs a
 *   great deal beside a busy Python thread: the re-take waits for that
 *   thread's switch interval (5 ms) every time -- the convoy effect
 *   (CPython issue 7946).  Measured on 2 cores, CPython 3.11, beside one
 *   spinning Python thread: count_nogil ran 5.5-6.1x and stream_sum 67-72x
 *   slower when they re-took the GIL after every ~1 ms chunk.  A token is
 *   honoured all the same: it is an atomic flag and a deadline, both read
 *   while detached.
 * - GIL released, main thread of the main interpreter: take it back to run
 *   PyErr_CheckSignals() only once GILX_SIGNAL_CHECK_NS has passed on the
 *   clock (read once per chunk, ~20 ns per ~1 ms), so Ctrl-C still ends the
 *   call, beside a busy thread too, at worst one interval + one switch
 *   interval + one chunk after it arrives.
 *
 * On free-threaded builds a detached loop never blocks a stop-the-world
 * pause (detached threads are not waited for), so only loops that stay
 * attached -- the GIL-held path -- offer a pause point between chunks.
 *
 * The chunks, per kernel, since one iteration costs very different amounts
 * in each:
 * GILX_COUNT_CHUNK: the counting kernel runs at about one iteration per
 *   cycle (0.24 ns here), so 2**22 iterations are ~1 ms on a 3-4 GHz core.
 * GILX_COUNTER_CHUNK: a plain load/add/store increment (UnsafeCounter,
 *   LockedCounter) costs about as much as a counting step when the line
 *   stays in one core's cache, so 2**22 of them are ~1 ms alone; when
 *   another core writes the same line they slow to a few ns each, and a
 *   chunk to ~10 ms.  LockedCounter hands the GIL round between chunks; at
 *   2**16 (16 us) chunks its waiting thread lost every hand-off.
 * GILX_ATOMIC_CHUNK: a locked add costs ~5 ns alone and ~12 ns contended,
 *   so the atomic counter takes 2**18 per chunk: 1.3-3 ms.
 * GILX_STREAM_CHUNK_WORDS: the memory kernel reads 8-byte words at a few
 *   GB/s per core; 2**19 words (4 MiB) are ~1 ms.
 *
 * GILX_SIGNAL_CHECK_NS: how often a released loop on the main thread takes
 *   the GIL back for signals.  Each re-take beside a busy Python thread
 *   waits for up to its switch interval (5 ms by default), so the contended
 *   cost is about 5 ms per interval and Ctrl-C's worst latency about one
 *   interval + 5 ms.  BENCHMARKS.md ("The convoy effect") has the numbers
 *   behind the choice.
 *
 * GILX_NOGIL_THRESHOLD: below this much work (iterations of count_auto,
 *   words x passes of stream_sum), a call keeps the GIL, because releasing
 *   and re-taking it costs more than it gains (the idea of CPython's
 *   HASHLIB_GIL_MINSIZE, 2048 bytes, and NumPy's
 *   NPY_BEGIN_THREADS_THRESHOLDED, 500 elements, neither of them measured).
 *   Measured by benchmarks/test_crossover.py; the numbers, and the machine
 *   they were measured on, are in BENCHMARKS.md ("The crossover"), not
 *   copied here, where they would go stale.  In short: (a) alone, one
 *   release + re-acquire costs the work of some tens of iterations; (b) with
 *   a second thread calling too, releasing loses below about a thousand
 *   iterations, and the crossover moves from one quiet run to the next
 *   (benchmarks/results/crossover-runs/, tools/crossover_runs.py).
 *   For stream_sum the same number counts 8-byte words: a cached word costs
 *   about what a counting iteration does, or less once the compiler
 *   vectorises the sum, so there the threshold errs towards releasing (it
 *   was not measured separately).
 * ------------------------------------------------------------------------ */
#define GILX_COUNT_CHUNK ((uint64_t)1 << 22)
#define GILX_COUNTER_CHUNK ((uint64_t)1 << 22)
#define GILX_ATOMIC_CHUNK ((uint64_t)1 << 18)
#define GILX_STREAM_CHUNK_WORDS ((Py_ssize_t)1 << 19)
#define GILX_NOGIL_THRESHOLD ((uint64_t)2048)
#ifndef GILX_SIGNAL_CHECK_NS
#  define GILX_SIGNAL_CHECK_NS ((int64_t)20 * 1000 * 1000)
#endif

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
typedef struct {
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

/* ------------------------------------------------------------------------
 * A monotonic clock that may be read with the GIL released (it touches no
 * Python state), in nanoseconds from an arbitrary origin.
 * ------------------------------------------------------------------------ */
#if defined(_WIN32)
#  ifndef WIN32_LEAN_AND_MEAN
#    define WIN32_LEAN_AND_MEAN
#  endif
#  include <windows.h>
static inline int64_t
gilx_monotonic_ns(void)
{
    LARGE_INTEGER freq, now;
    QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&now);
    return (int64_t)((double)now.QuadPart * 1e9 / (double)freq.QuadPart);
}
#else
#  include <time.h>
static inline int64_t
gilx_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
#endif

/* ------------------------------------------------------------------------
 * StartGate (gate.c): lets threads begin a released-GIL section at the same
 * instant.  A Python barrier cannot: after it, each thread must re-take the
 * GIL one by one, and a thread woken from sleep may wait on the scheduler for
 * longer than a short kernel runs.  Threads that arrive at a gate spin with
 * the GIL already released until all parties are there, then go straight
 * into their kernel.
 * ------------------------------------------------------------------------ */
typedef struct {
    PyObject_HEAD
    gilx_atomic_u64 arrived;
    gilx_atomic_u64 aborted;
    uint64_t parties;
    int64_t timeout_ns;
} StartGateObject;

typedef enum {
    GILX_GATE_WAITING,      /* not all parties have arrived yet */
    GILX_GATE_OPEN,         /* all have: go */
    GILX_GATE_ABORTED,      /* abort() was called */
    GILX_GATE_TIMED_OUT     /* the others did not come in time */
} gilx_gate_status;

/* Count the caller in (GIL held or not). */
void gilx_gate_arrive(StartGateObject *gate);
/* Spin for about a millisecond at most, waiting for the others.  No Python
 * API: called with the GIL released.  `since_ns` is when the caller
 * arrived. */
gilx_gate_status gilx_gate_spin(StartGateObject *gate, int64_t since_ns);
/* Set the exception for a gate that did not open; return NULL. */
PyObject *gilx_gate_error(gilx_gate_status status);

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
typedef struct {
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
 * gilx_loop (release.c): the GIL policy above, in one place.  A long call
 * is written once, whatever it does with the GIL:
 *
 *     gilx_loop loop;
 *     gilx_loop_start(&loop, state, cancel, release);
 *     do {
 *         ...one chunk of the kernel, C locals only...
 *         if (gilx_loop_next(&loop) < 0) {
 *             return NULL;             (GIL held, exception set)
 *         }
 *     } while (more);
 *     gilx_loop_stop(&loop);           (GIL held again)
 *
 * With `release`, gilx_loop_start() releases the GIL and the kernel runs
 * released between start and stop; gilx_loop_next() takes it back only
 * where the policy says it must.  Without, everything runs with the GIL
 * held and gilx_loop_next() checks signals and the token every chunk.
 * ------------------------------------------------------------------------ */
typedef struct {
    gilx_state *state;
    CancelTokenObject *cancel;
    PyThreadState *saved;       /* non-NULL while the GIL is released */
    int64_t next_signals_ns;    /* when to re-take it for signals; INT64_MAX:
                                   never (no handler can run on this thread) */
} gilx_loop;

void gilx_loop_start(gilx_loop *loop, gilx_state *state,
                     CancelTokenObject *cancel, int release);
/* The same, for a caller that has already released the GIL (a StartGate
 * that opened): `saved` is what PyEval_SaveThread() returned. */
void gilx_loop_start_released(gilx_loop *loop, gilx_state *state,
                              CancelTokenObject *cancel,
                              PyThreadState *saved);
/* Between two chunks.  Returns 0 to go on, or -1 with the GIL held and
 * KeyboardInterrupt (or what a handler raised) or gilx.Cancelled set. */
int gilx_loop_next(gilx_loop *loop);
/* Take the GIL back if the loop released it. */
void gilx_loop_stop(gilx_loop *loop);
/* release.c: which thread runs signal handlers, read once in Py_mod_exec. */
int gilx_release_exec(gilx_state *state);

/* ------------------------------------------------------------------------
 * What each C file contributes to the module.
 * ------------------------------------------------------------------------ */
extern PyMethodDef gilx_count_methods[];    /* count.c  */
extern PyMethodDef gilx_stream_methods[];   /* stream.c */
extern PyMethodDef gilx_trace_methods[];    /* trace.c  */
extern PyMethodDef gilx_lockdemo_methods[]; /* lockdemo.c */
extern PyMethodDef gilx_duty_methods[];     /* duty.c   */

/* counters.c, gate.c, cancel.c: create the heap types from their specs
 * (and, for cancel.c, the exception class gilx.Cancelled). */
int gilx_counters_exec(PyObject *module, gilx_state *state);
int gilx_gate_exec(PyObject *module, gilx_state *state);
int gilx_cancel_exec(PyObject *module, gilx_state *state);
/* lockdemo.c: the demonstration lock, made in exec and freed in m_free. */
int gilx_lockdemo_exec(gilx_state *state);
void gilx_lockdemo_free(gilx_state *state);

#endif /* GILX_H */
