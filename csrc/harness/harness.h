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
 *   sched.c  thread_slice, the heartbeat's claim on a CPU without privileges.
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
 * What each harness file adds to the module (module.c calls them).
 * ------------------------------------------------------------------------ */
extern PyMethodDef gilx_trace_methods[];    /* trace.c */
extern PyMethodDef gilx_duty_methods[];     /* duty.c  */
extern PyMethodDef gilx_sched_methods[];    /* sched.c */
/* gate.c: the StartGate type. */
int gilx_gate_exec(PyObject *module, gilx_state *state);

#endif /* GILX_HARNESS_H */
