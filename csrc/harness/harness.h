/*
 * harness.h -- gilx's own measuring machinery: not part of the reference.
 *
 * csrc/reference/ is what an extension author copies.  The files here exist
 * for gilx's measurements and tests:
 *   duty.c   the GIL instrument's heartbeat and its ground truth (duty
 *            cycles that hold and release the GIL in a known proportion);
 *   trace.c  count_traced, the counting loop with a record of who ran when
 *            (gilx timeline);
 *   gate.c   StartGate, which lets threads start a released section at the
 *            same instant (race(), the benchmarks);
 *   sched.c  thread_slice, the heartbeat's claim on a CPU without privileges;
 *   blame.c  who held the GIL while other threads waited (gilx watch --top),
 *            with blame_gil.c, the one file that knows where the GIL is.
 * They follow the same rules (gilx.h, policy.h); they are just not patterns
 * anyone needs to copy to release the GIL correctly.
 */
#ifndef GILX_HARNESS_H
#define GILX_HARNESS_H

#include "gilx.h"

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
 * Blame (blame.c, blame_gil.c): who holds the GIL while others wait.
 * ------------------------------------------------------------------------ */
/* Where this interpreter's GIL is (blame_gil.c): the address of CPython's
 * internal struct _gil_runtime_state and its extent. */
typedef struct {
    void *gil;
    uintptr_t begin;
    uintptr_t end;
} gilx_gil_view;

/* Fill `view` for `interp` (GIL held); -1 where the GIL's layout is not
 * known to this build (free-threaded, Windows, no internal headers). */
int gilx_gil_locate(PyInterpreterState *interp, gilx_gil_view *view);
/* The thread state holding the GIL now, as an address to compare and never
 * to follow, or 0 when it is free.  No Python API, no lock. */
uintptr_t gilx_gil_holder(const gilx_gil_view *view);

typedef struct gilx_blame gilx_blame;
/* The blame recorder inside `obj` (a capsule from blame_new), or NULL with
 * TypeError. */
gilx_blame *gilx_blame_from(PyObject *obj);
/* The heartbeat calls this once per beat, with the GIL held: it files what
 * the sampler saw since the last beat under the threads and stacks. */
void gilx_blame_beat(gilx_blame *blame);

/* ------------------------------------------------------------------------
 * What each harness file adds to the module (module.c calls them).
 * ------------------------------------------------------------------------ */
extern PyMethodDef gilx_trace_methods[];    /* trace.c */
extern PyMethodDef gilx_duty_methods[];     /* duty.c  */
extern PyMethodDef gilx_sched_methods[];    /* sched.c */
extern PyMethodDef gilx_blame_methods[];    /* blame.c */
/* gate.c: the StartGate type. */
int gilx_gate_exec(PyObject *module, gilx_state *state);

#endif /* GILX_HARNESS_H */
