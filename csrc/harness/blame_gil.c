/*
 * blame_gil.c -- where this interpreter's GIL is, for blame.c.
 *
 * CPython does not publish its GIL: `locked`, `last_holder` and
 * `switch_number` live in struct _gil_runtime_state, an internal structure
 * (Include/internal/pycore_gil.h), reached through _PyRuntime.ceval.gil on
 * 3.10 and 3.11 and through the interpreter's ceval.gil pointer from 3.12
 * on.  Debuggers and py-spy read the same fields from outside the process;
 * 3.13 publishes their offsets in _Py_DebugOffsets for that reason.  This is
 * the one file of gilx compiled with Py_BUILD_CORE, so that the compiler
 * takes the layout from the very headers of the Python it builds for
 * instead of gilx copying offsets per version.  It only computes addresses:
 * what may be done with them (atomic reads of `locked` and `last_holder`,
 * which is compared, never followed) is blame.c's business.
 */
#define Py_BUILD_CORE 1
#include "harness.h"

#if defined(Py_GIL_DISABLED) || defined(_WIN32)
/* A free-threaded build has no GIL to blame (its struct keeps one for
 * PYTHON_GIL=1, but the thread states then hold it differently); Windows
 * lacks the POSIX threads blame.c samples with. */
#  define GILX_GIL_KNOWN 0
#elif defined(__has_include)
#  if PY_VERSION_HEX >= 0x030C0000 && __has_include("internal/pycore_interp.h")
#    include "internal/pycore_interp.h"
#    define GILX_GIL_KNOWN 1
#  elif PY_VERSION_HEX < 0x030C0000 && __has_include("internal/pycore_runtime.h")
#    include "internal/pycore_runtime.h"
#    define GILX_GIL_KNOWN 1
#  else
#    define GILX_GIL_KNOWN 0
#  endif
#else
#  define GILX_GIL_KNOWN 0
#endif

int
gilx_gil_locate(PyInterpreterState *interp, gilx_gil_view *view)
{
#if GILX_GIL_KNOWN
#  if PY_VERSION_HEX >= 0x030C0000
    struct _gil_runtime_state *gil = interp->ceval.gil;
#  else
    (void)interp;
    struct _gil_runtime_state *gil = &_PyRuntime.ceval.gil;
#  endif
    if (gil == NULL) {
        return -1;
    }
    view->gil = gil;
    view->begin = (uintptr_t)gil;
    view->end = (uintptr_t)gil + sizeof(*gil);
    return 0;
#else
    (void)interp;
    (void)view;
    return -1;
#endif
}

/* Whether the GIL is held and, if so, by which thread state (0 when it is
 * free).  Two relaxed atomic reads, no lock, no Python API: called by the
 * sampler thread, which has no thread state.  `last_holder` is set by
 * take_gil() just after `locked` (and by drop_gil() just before it is
 * cleared), so for an instant a holder may read as the thread before it. */
uintptr_t
gilx_gil_holder(const gilx_gil_view *view)
{
#if GILX_GIL_KNOWN
    struct _gil_runtime_state *gil = (struct _gil_runtime_state *)view->gil;
#  if PY_VERSION_HEX >= 0x030D0000
    if (!_Py_atomic_load_int_relaxed(&gil->locked)) {
        return 0;
    }
    return (uintptr_t)_Py_atomic_load_ptr_relaxed(&gil->last_holder);
#  else
    if (!_Py_atomic_load_relaxed(&gil->locked)) {
        return 0;
    }
    return (uintptr_t)_Py_atomic_load_relaxed(&gil->last_holder);
#  endif
#else
    (void)view;
    return 0;
#endif
}
