/*
 * policy.h -- the GIL policy of gilx's long calls, in one short header.
 *
 * What a long call does with the GIL between two chunks of its work is
 * decided in one place, release.c, behind the names declared at the end of
 * this file.  The copy unit is three files: this header, atomics.h (the
 * cancel flag's type) and release.c.  They use nothing else of gilx's: no
 * module state, no helper module; tests/test_copy_unit.py builds them into a
 * small extension of its own.
 */
#ifndef GILX_POLICY_H
#define GILX_POLICY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>

#include "atomics.h"

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
 * On free-threaded builds with the GIL off at run time there is no GIL to
 * hold, and a thread that stays attached through a chunk holds up every
 * stop-the-world pause (gc.collect(), sys.settrace(), os.fork()) until its
 * next eval-loop check, which a C loop never reaches.  So there the GIL-held
 * path runs each chunk detached and re-attaches between chunks: the pause
 * parks the thread while it is detached (the runtime looks for detached
 * threads every millisecond), or when it re-attaches.  Signals and the flag
 * are still looked at after every chunk, as on a GIL build.
 *
 * The chunks, per kernel, since one iteration costs very different amounts
 * in each:
 * GILX_COUNT_CHUNK: the counting kernel runs at about one iteration per
 *   cycle (0.24 ns here), so 2**22 iterations are ~1 ms on a 3-4 GHz core.
 * GILX_COUNTER_CHUNK: a plain load/add/store increment (UnsafeCounter,
 *   LockedCounter) costs about as much as a counting step when the line
 *   stays in one core's cache, so 2**22 of them are ~1 ms alone; when
 *   another core writes the same line they slow to a few ns each, and a
 *   chunk to ~10 ms.  LockedCounter takes its lock once per chunk, so a
 *   waiting thread waits about one chunk for its turn.
 * GILX_ATOMIC_CHUNK: a locked add costs ~5 ns alone and ~12 ns contended,
 *   so the atomic counter takes 2**18 per chunk: 1.3-3 ms.
 * GILX_STREAM_CHUNK_WORDS: the memory kernel reads 8-byte words at a few
 *   GB/s per core; 2**19 words (4 MiB) are ~1 ms.
 *
 * GILX_SIGNAL_CHECK_NS: how often a released loop on the main thread takes
 *   the GIL back for signals.  Each re-take beside a busy Python thread
 *   waits for about its switch interval (5 ms by default), so the contended
 *   cost is about 5-6 ms per interval and Ctrl-C's worst latency about one
 *   interval + 5 ms.  Measured on 2 cores, CPython 3.11, quiet machine,
 *   count_nogil on the main thread beside one spinning Python thread, three
 *   runs each: 10 ms -> 1.44-1.51x its time alone, 20 ms -> 1.23-1.29x,
 *   30 ms -> 1.18-1.19x, 50 ms -> 1.11-1.12x (the re-take after every
 *   chunk: 6.0x).  30 ms is the shortest interval that keeps the contended
 *   cost well under the 1.30x target while leaving Ctrl-C (worst ~35 ms
 *   quiet) more than 60 ms of room under the 100 ms promise for a busy
 *   host.  -DGILX_SIGNAL_CHECK_NS=... rebuilds with another value.
 *
 * GILX_NOGIL_THRESHOLD: below this much work (iterations of count_auto,
 *   words x passes of stream_sum), a call keeps the GIL, because releasing
 *   and re-taking it costs more than it gains (the idea of CPython's
 *   HASHLIB_GIL_MINSIZE, 2048 bytes, and NumPy's
 *   NPY_BEGIN_THREADS_THRESHOLDED, 500 elements, neither of them measured).
 *   Measured by benchmarks/test_crossover.py; the numbers, and the machine
 *   they were measured on, are in BENCHMARKS.md ("The crossover"), not
 *   copied here, where they would go stale.  In short: (a) alone, one
 *   release + re-acquire costs the work of about a hundred iterations; (b)
 *   with a second thread calling too, releasing loses below about a
 *   thousand iterations, and the crossover moves from one run to the next
 *   (benchmarks/results/crossover-runs/, tools/crossover_runs.py).  The
 *   rule: the smallest power of two from which releasing never lost in any
 *   run in the repository; over the seven runs there, 4096 (at 2048 one
 *   run lost, 0.67x).
 *   For stream_sum the same number counts 8-byte words: a cached word costs
 *   about what a counting iteration does, or less once the compiler
 *   vectorises the sum, so there the threshold errs towards releasing (it
 *   was not measured separately).
 * ------------------------------------------------------------------------ */
#define GILX_COUNT_CHUNK ((uint64_t)1 << 22)
#define GILX_COUNTER_CHUNK ((uint64_t)1 << 22)
#define GILX_ATOMIC_CHUNK ((uint64_t)1 << 18)
#define GILX_STREAM_CHUNK_WORDS ((Py_ssize_t)1 << 19)
#define GILX_NOGIL_THRESHOLD ((uint64_t)4096)
#ifndef GILX_SIGNAL_CHECK_NS
#  define GILX_SIGNAL_CHECK_NS ((int64_t)30 * 1000 * 1000)
#endif

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
 * gilx_loop (release.c): the policy above, as code.  A long call is written
 * once, whatever it does with the GIL, and its kernel has one call site
 * (NumPy's NPY_BEGIN_THREADS_THRESHOLDED shape: the decision to release is
 * a flag, not a second copy of the loop):
 *
 *     gilx_loop loop;
 *     if (gilx_loop_begin(&loop, n >= threshold, &flag, deadline_ns,
 *                         PyExc_TimeoutError) < 0) {
 *         return NULL;
 *     }
 *     do {
 *         ...one chunk of the kernel: C locals only...
 *         if (gilx_loop_next(&loop) < 0) {
 *             return NULL;             (GIL held, exception set)
 *         }
 *     } while (more);
 *     gilx_loop_stop(&loop);           (GIL held again)
 *
 * With `release`, gilx_loop_begin() releases the GIL and the kernel runs
 * released between begin and stop; gilx_loop_next() takes the GIL back only
 * where the policy says it must.  Without, everything runs with the GIL held
 * (free-threaded with the GIL off: each chunk detached, above) and
 * gilx_loop_next() checks signals and the cancel flag after every chunk.
 *
 * Which thread runs signal handlers is asked at every begin that releases,
 * with the GIL held, not remembered from import: after os.fork() from a thread other than
 * the main one, CPython makes the forking thread the child's main thread,
 * and on 3.10-3.12 threading.main_thread() is whichever thread imported
 * threading first, not always the main one (release.c).
 * ------------------------------------------------------------------------ */

/* The message of the exception a cancelled loop raises. */
#define GILX_CANCELLED_MESSAGE \
    "the call was cancelled: its cancel flag was set or its deadline passed"

typedef struct {
    gilx_atomic_u64 *cancel;    /* nonzero: stop; NULL: none */
    int64_t deadline_ns;        /* gilx_monotonic_ns() time; 0: none */
    PyObject *cancelled;        /* the exception class to raise (borrowed) */
    PyThreadState *saved;       /* non-NULL while the GIL is released */
    int64_t next_signals_ns;    /* when to re-take it for signals; INT64_MAX:
                                   never (no handler can run on this thread);
                                   0: after every chunk */
} gilx_loop;

/*
 * Set up a loop, GIL held.  `cancel`: a flag another thread may set
 * (gilx_atomic_store(flag, 1)), read between chunks with the GIL released or
 * not; `deadline_ns`: a gilx_monotonic_ns() time after which the loop
 * cancels itself (0: none); `cancelled`: the exception class raised then
 * (the caller keeps it alive).  Returns 0, or -1 with an exception set and
 * the GIL held.
 */
int gilx_loop_begin(gilx_loop *loop, int release, gilx_atomic_u64 *cancel,
                    int64_t deadline_ns, PyObject *cancelled);
/* Between two chunks.  Returns 0 to go on, or -1 with the GIL held and
 * KeyboardInterrupt (or what a handler raised) or `cancelled` set. */
int gilx_loop_next(gilx_loop *loop);
/* Take the GIL back if the loop released it. */
void gilx_loop_stop(gilx_loop *loop);
/* Whether the flag is set or the deadline has passed; no GIL needed. */
int gilx_cancelled(gilx_atomic_u64 *cancel, int64_t deadline_ns);

#endif /* GILX_POLICY_H */
