/*
 * trace.c -- the counting kernel with a record of who ran when, for
 * `gilx timeline`.
 *
 * count_traced(n, release) runs what count_gil (release=False) or
 * count_nogil (release=True) runs -- the same kernel, the same chunks, the
 * same GIL policy, but no cancel= argument (Ctrl-C still works in the main
 * thread, and n is capped below) -- and also notes, per chunk, when it
 * started and ended (gilx_monotonic_ns) and on which CPU (sched_getcpu,
 * Linux only).  It is a
 * separate function so that the untraced calls carry no recording cost at
 * all.  The record lives in a C array while the GIL may be released and
 * becomes Python objects only afterwards, with the GIL held.
 */
#include "harness.h"

#if defined(__linux__)
#  include <sched.h>
#endif

/* The largest n count_traced accepts: 2**36 iterations are ~16 s of work and
 * 16,384 chunk records (384 KiB), enough for any picture. */
#define GILX_TRACE_MAX_N ((uint64_t)1 << 36)

typedef struct {
    int64_t start_ns;
    int64_t end_ns;
    int cpu;
} chunk_record;

/* The CPU the calling thread is on now, or -1 where the platform does not
 * tell.  Safe without the GIL. */
static int
current_cpu(void)
{
#if defined(__linux__)
    return sched_getcpu();
#else
    return -1;
#endif
}

static void
run_recorded_chunk(chunk_record *rec, uint64_t *count, uint64_t chunk)
{
    rec->start_ns = gilx_monotonic_ns();
    rec->cpu = current_cpu();
    *count = gilx_count_kernel(*count, chunk);
    rec->end_ns = gilx_monotonic_ns();
}

/* The records as a list of (start_ns, end_ns, cpu) tuples. */
static PyObject *
records_to_list(const chunk_record *records, Py_ssize_t n)
{
    PyObject *list = PyList_New(n);
    if (list == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = Py_BuildValue("(LLi)", (long long)records[i].start_ns,
                                       (long long)records[i].end_ns,
                                       records[i].cpu);
        if (item == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, item);     /* steals the reference */
    }
    return list;
}

static PyObject *
count_traced(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    gilx_state *state = gilx_get_state(module);
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError,
                     "count_traced() takes 2 positional arguments "
                     "(n, release), got %zd", nargs);
        return NULL;
    }
    uint64_t n;
    if (gilx_parse_count(args[0], "n", &n) < 0) {
        return NULL;
    }
    if (n > GILX_TRACE_MAX_N) {
        PyErr_Format(PyExc_ValueError,
                     "n is too large to trace: at most %llu",
                     (unsigned long long)GILX_TRACE_MAX_N);
        return NULL;
    }
    int release = PyObject_IsTrue(args[1]);
    if (release < 0) {
        return NULL;
    }
    /* One record per chunk; the do-while below runs at least one. */
    Py_ssize_t capacity = (Py_ssize_t)(n / GILX_COUNT_CHUNK) + 1;
    chunk_record *records = PyMem_New(chunk_record, capacity);
    if (records == NULL) {
        return PyErr_NoMemory();
    }
    uint64_t count = 0;
    uint64_t done = 0;
    Py_ssize_t used = 0;
    gilx_loop loop;     /* the policy of policy.h; there is no token */
    if (gilx_loop_start_token(&loop, state, NULL, release) < 0) {
        PyMem_Free(records);
        return NULL;
    }
    do {
        uint64_t chunk = n - done;
        if (chunk > GILX_COUNT_CHUNK) {
            chunk = GILX_COUNT_CHUNK;
        }
        run_recorded_chunk(&records[used++], &count, chunk);
        done += chunk;
        if (gilx_loop_next(&loop) < 0) {
            PyMem_Free(records);
            return NULL;
        }
    } while (done < n);
    gilx_loop_stop(&loop);
    PyObject *list = records_to_list(records, used);
    PyMem_Free(records);
    if (list == NULL) {
        return NULL;
    }
    PyObject *result = Py_BuildValue("(KN)", (unsigned long long)count, list);
    return result;
}

static PyObject *
monotonic_ns(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLongLong((long long)gilx_monotonic_ns());
}

static PyObject *
cpu_now(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLong(current_cpu());
}

PyDoc_STRVAR(count_traced_doc,
"count_traced($module, n, release, /)\n"
"--\n"
"\n"
"Run count_nogil(n) (release true) or count_gil(n) (release false) and\n"
"return (count, chunks): chunks is a list of (start_ns, end_ns, cpu), one\n"
"per ~1 ms chunk, on the monotonic_ns() clock; cpu is -1 where unknown.");

PyDoc_STRVAR(monotonic_ns_doc,
"monotonic_ns($module, /)\n"
"--\n"
"\n"
"The clock of count_traced's records, in nanoseconds.");

PyDoc_STRVAR(cpu_now_doc,
"cpu_now($module, /)\n"
"--\n"
"\n"
"The CPU the calling thread runs on now (sched_getcpu), or -1 where the\n"
"platform does not tell.");

PyMethodDef gilx_trace_methods[] = {
    {"count_traced", (PyCFunction)(void (*)(void))count_traced, METH_FASTCALL,
     count_traced_doc},
    {"monotonic_ns", monotonic_ns, METH_NOARGS, monotonic_ns_doc},
    {"cpu_now", cpu_now, METH_NOARGS, cpu_now_doc},
    {NULL, NULL, 0, NULL}
};
