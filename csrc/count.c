/*
 * count.c -- count_gil, count_nogil and count_auto: one counting kernel,
 * run three ways.
 *
 * The kernel is the seed's `count += 1` loop.  All three functions call the
 * same static inline gilx_count_kernel() (gilx.h), so any difference in how they behave
 * on threads comes only from what they do with the GIL around it.
 */
#include "gilx.h"

/*
 * Run the kernel over n iterations in chunks of GILX_COUNT_CHUNK.  With
 * `release`, the GIL is released around each chunk and nothing else: the
 * kernel touches only C locals, never a Python object.  Between chunks the
 * GIL is held and pending signals are handled, so Ctrl-C ends the call
 * (GIL held or not) after at most one chunk.
 *
 * The loop is a do-while on purpose: even n == 0 releases and re-takes the
 * GIL once, so count_nogil(0) measures exactly the cost of one release.
 */
static PyObject *
count_chunked(uint64_t n, int release)
{
    uint64_t count = 0;
    uint64_t done = 0;
    do {
        uint64_t chunk = n - done;
        if (chunk > GILX_COUNT_CHUNK) {
            chunk = GILX_COUNT_CHUNK;
        }
        if (release) {
            Py_BEGIN_ALLOW_THREADS
            count = gilx_count_kernel(count, chunk);
            Py_END_ALLOW_THREADS
        }
        else {
            count = gilx_count_kernel(count, chunk);
        }
        done += chunk;
        if (PyErr_CheckSignals() < 0) {
            return NULL;
        }
    } while (done < n);
    /* The result is what the kernel counted, not `done`: a test that it
     * equals n checks the kernel, not this bookkeeping. */
    return PyLong_FromUnsignedLongLong(count);
}

static PyObject *
count_gil(PyObject *Py_UNUSED(module), PyObject *arg)
{
    uint64_t n;
    if (gilx_parse_count(arg, "n", &n) < 0) {
        return NULL;
    }
    return count_chunked(n, 0);
}

static PyObject *
count_nogil(PyObject *Py_UNUSED(module), PyObject *arg)
{
    uint64_t n;
    if (gilx_parse_count(arg, "n", &n) < 0) {
        return NULL;
    }
    return count_chunked(n, 1);
}

static PyObject *
count_auto(PyObject *Py_UNUSED(module), PyObject *arg)
{
    uint64_t n;
    if (gilx_parse_count(arg, "n", &n) < 0) {
        return NULL;
    }
    /* The policy of gilx.h: release only when the work pays for it. */
    return count_chunked(n, n >= GILX_NOGIL_THRESHOLD);
}

PyDoc_STRVAR(count_gil_doc,
"count_gil($module, n, /)\n"
"--\n"
"\n"
"Count to n in C with the GIL held for the whole call; return n.\n"
"\n"
"Other Python threads cannot run meanwhile (on GIL builds).  Signals are\n"
"still checked about every millisecond, so Ctrl-C stops it.");

PyDoc_STRVAR(count_nogil_doc,
"count_nogil($module, n, /)\n"
"--\n"
"\n"
"Count to n in C with the GIL released; return n.\n"
"\n"
"Same kernel as count_gil.  The GIL is released in chunks of about 1 ms\n"
"and re-taken between them to check for signals.");

PyDoc_STRVAR(count_auto_doc,
"count_auto($module, n, /)\n"
"--\n"
"\n"
"Count to n in C, releasing the GIL only when n >= NOGIL_THRESHOLD; return n.\n"
"\n"
"The policy a well-behaved extension follows: small work keeps the GIL,\n"
"because releasing it would cost more than the work itself.");

PyMethodDef gilx_count_methods[] = {
    {"count_gil", count_gil, METH_O, count_gil_doc},
    {"count_nogil", count_nogil, METH_O, count_nogil_doc},
    {"count_auto", count_auto, METH_O, count_auto_doc},
    {NULL, NULL, 0, NULL}
};
