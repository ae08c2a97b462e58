/*
 * count.c -- count_gil, count_nogil and count_auto: one counting kernel,
 * run three ways.
 *
 * The kernel is the seed's `count += 1` loop.  All three functions call the
 * same static inline gilx_count_kernel() (gilx.h), so any difference in
 * how they behave on threads comes only from what they do with the GIL
 * around it.
 */
#include "gilx.h"

/* What the three functions do with the GIL; see count_run(). */
typedef enum {
    GILX_HOLD,          /* count_gil   */
    GILX_RELEASE,       /* count_nogil */
    GILX_AUTO           /* count_auto: release above the threshold */
} gilx_gil_policy;

/*
 * Parse `(n, /, *, cancel=None)` and run the kernel over n iterations, in
 * chunks of GILX_COUNT_CHUNK, with the GIL released or held from start to
 * end.  The kernel touches only C locals, never a Python object, so it may
 * run released; what happens between chunks -- signals, the token, when
 * (if ever) the GIL is taken back -- is the policy of policy.h, all of it
 * in gilx_loop_next().  One call site for the kernel, whatever the policy.
 *
 * Vectorcall (METH_FASTCALL | METH_KEYWORDS) rather than a tuple and a
 * dict: these functions are timed at n == 0 to measure one GIL release, so
 * the call itself must cost as little as possible.  The loop is a do-while
 * for the same reason: even n == 0 releases and re-takes the GIL once, so
 * count_nogil(0) measures exactly the cost of one release.
 */
static PyObject *
count_run(PyObject *module, const char *funcname, PyObject *const *args,
          Py_ssize_t nargs, PyObject *kwnames, gilx_gil_policy policy)
{
    uint64_t n;
    PyObject *cancel;
    if (gilx_parse_n_cancel(funcname, args, nargs, kwnames, &n, &cancel) < 0) {
        return NULL;
    }
    int release = policy == GILX_RELEASE
                  || (policy == GILX_AUTO && n >= GILX_NOGIL_THRESHOLD);
    gilx_loop loop;
    if (gilx_loop_start(&loop, module, cancel, release) < 0) {
        return NULL;
    }
    uint64_t count = 0;
    uint64_t done = 0;
    do {
        uint64_t chunk = n - done;
        if (chunk > GILX_COUNT_CHUNK) {
            chunk = GILX_COUNT_CHUNK;
        }
        count = gilx_count_kernel(count, chunk);
        done += chunk;
        if (gilx_loop_next(&loop) < 0) {
            return NULL;
        }
    } while (done < n);
    gilx_loop_stop(&loop);
    /* The result is what the kernel counted, not `done`: a test that it
     * equals n checks the kernel, not this bookkeeping. */
    return PyLong_FromUnsignedLongLong(count);
}

static PyObject *
count_gil(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
          PyObject *kwnames)
{
    return count_run(module, "count_gil", args, nargs, kwnames, GILX_HOLD);
}

static PyObject *
count_nogil(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
            PyObject *kwnames)
{
    return count_run(module, "count_nogil", args, nargs, kwnames,
                     GILX_RELEASE);
}

static PyObject *
count_auto(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
           PyObject *kwnames)
{
    /* The policy of policy.h: release only when the work pays for it. */
    return count_run(module, "count_auto", args, nargs, kwnames, GILX_AUTO);
}

PyDoc_STRVAR(count_gil_doc,
"count_gil($module, n, /, *, cancel=None)\n"
"--\n"
"\n"
"Count to n in C with the GIL held for the whole call; return n.\n"
"\n"
"Other Python threads cannot run meanwhile (on GIL builds).  Signals are\n"
"still checked about every millisecond, so Ctrl-C stops it; in another\n"
"thread, cancel=CancelToken() gives a way to stop it (gilx.Cancelled).");

PyDoc_STRVAR(count_nogil_doc,
"count_nogil($module, n, /, *, cancel=None)\n"
"--\n"
"\n"
"Count to n in C with the GIL released; return n.\n"
"\n"
"Same kernel as count_gil.  The GIL stays released until the call ends,\n"
"except on the main thread, where it is re-taken every 30 ms to run\n"
"signal handlers (Ctrl-C).  A cancel=CancelToken() is honoured about every\n"
"millisecond (gilx.Cancelled).");

PyDoc_STRVAR(count_auto_doc,
"count_auto($module, n, /, *, cancel=None)\n"
"--\n"
"\n"
"Count to n in C, releasing the GIL only when n >= NOGIL_THRESHOLD;\n"
"return n.\n"
"\n"
"The policy a well-behaved extension follows: small work keeps the GIL,\n"
"because releasing it would cost more than the work itself.  cancel= as\n"
"for count_nogil.");

PyMethodDef gilx_count_methods[] = {
    {"count_gil", (PyCFunction)(void (*)(void))count_gil,
     METH_FASTCALL | METH_KEYWORDS, count_gil_doc},
    {"count_nogil", (PyCFunction)(void (*)(void))count_nogil,
     METH_FASTCALL | METH_KEYWORDS, count_nogil_doc},
    {"count_auto", (PyCFunction)(void (*)(void))count_auto,
     METH_FASTCALL | METH_KEYWORDS, count_auto_doc},
    {NULL, NULL, 0, NULL}
};
