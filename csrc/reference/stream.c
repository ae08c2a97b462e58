/*
 * stream.c -- stream_sum(): the memory-bound kernel.
 *
 * It reads a buffer of 8-byte words from front to back and adds them up,
 * with the GIL released.  Given a buffer far larger than the caches, each
 * word costs one cache-line fetch per eight words and almost no arithmetic,
 * so the speed is set by memory bandwidth: threads run in parallel (no GIL)
 * yet stop scaling once they saturate the memory bus.
 *
 * It is also the example of releasing the GIL around memory that belongs to
 * a Python object, the way zlibmodule.c does: the buffer is exported
 * (PyObject_GetBuffer) while the GIL is held, which pins it -- a bytearray
 * cannot be resized or freed while an export is held -- and the released
 * region touches only the raw pointer, never the object.
 */
#include "gilx.h"

#include <string.h>

static uint64_t
sum_words(const unsigned char *p, Py_ssize_t nwords)
{
    uint64_t total = 0;
    for (Py_ssize_t i = 0; i < nwords; i++) {
        uint64_t word;
        /* memcpy: the buffer need not be 8-byte aligned; compilers turn
         * this into a single (unaligned) load. */
        memcpy(&word, p + i * 8, sizeof(word));
        total += word;
    }
    return total;
}

static PyObject *
stream_sum(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
           PyObject *kwnames)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_Format(PyExc_TypeError,
                     "stream_sum() takes 1 or 2 positional arguments "
                     "(buffer, passes=1), got %zd", nargs);
        return NULL;
    }
    PyObject *cancel_obj = NULL;
    gilx_kwarg kwargs[] = {{"cancel", &cancel_obj}};
    if (gilx_parse_kwargs("stream_sum", args + nargs, kwnames, kwargs, 1)
        < 0) {
        return NULL;
    }
    gilx_state *state = gilx_get_state(module);
    CancelTokenObject *cancel;
    if (gilx_parse_cancel(state, cancel_obj, &cancel) < 0) {
        return NULL;
    }
    uint64_t passes = 1;
    if (nargs == 2 && gilx_parse_count(args[1], "passes", &passes) < 0) {
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Format(PyExc_TypeError,
                         "buffer must be a bytes-like object, not %.200s",
                         Py_TYPE(args[0])->tp_name);
        }
        return NULL;
    }
    /* Copy out of the view what the released region needs, so it uses
     * C locals only.  A trailing partial word is ignored. */
    const unsigned char *base = (const unsigned char *)view.buf;
    Py_ssize_t nwords = view.len / 8;
    uint64_t total = 0;
    if (nwords == 0 || passes == 0) {
        /* No work: the sum is 0.  A call with passes still looks at its
         * token once, as count_gil(0) does. */
        PyBuffer_Release(&view);
        if (passes > 0 && gilx_check_interrupts(state, cancel) < 0) {
            return NULL;
        }
        return PyLong_FromUnsignedLongLong(0);
    }
    /* The threshold of policy.h, applied to the whole call's work (passes x
     * words), as count_auto applies it to n: a small call keeps the GIL.
     * Neither factor alone decides: 64 bytes summed a million times is 8
     * million words of work.  Both below the threshold means the product
     * is below 2**22, so it cannot overflow. */
    int release = (uint64_t)nwords >= GILX_NOGIL_THRESHOLD
                  || passes >= GILX_NOGIL_THRESHOLD
                  || (uint64_t)nwords * passes >= GILX_NOGIL_THRESHOLD;
    /* A chunk is about GILX_STREAM_CHUNK_WORDS words of work: a piece of
     * one pass over a large buffer, or as many whole passes as fit over a
     * small one (not one chunk per pass, which would release and re-take
     * the GIL a million times for stream_sum(b"x" * 64, 10**6)). */
    uint64_t passes_per_chunk = 1;
    Py_ssize_t piece = nwords;
    if (nwords > GILX_STREAM_CHUNK_WORDS) {
        piece = GILX_STREAM_CHUNK_WORDS;
    }
    else {
        passes_per_chunk = (uint64_t)(GILX_STREAM_CHUNK_WORDS / nwords);
    }
    uint64_t passes_done = 0;
    Py_ssize_t start = 0;       /* where the current pass goes on */
    /* The export pins the buffer: it stays valid while released (above). */
    gilx_loop loop;
    if (gilx_loop_start_token(&loop, state, cancel, release) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    while (passes_done < passes) {
        Py_ssize_t len = nwords - start;
        if (len > piece) {
            len = piece;
        }
        uint64_t reps = 1;
        if (start == 0 && len == nwords) {
            reps = passes - passes_done;
            if (reps > passes_per_chunk) {
                reps = passes_per_chunk;
            }
        }
        for (uint64_t r = 0; r < reps; r++) {
            total += sum_words(base + start * 8, len);
        }
        start += len;
        if (start == nwords) {
            start = 0;
            passes_done += reps;
        }
        if (gilx_loop_next(&loop) < 0) {
            PyBuffer_Release(&view);
            return NULL;
        }
    }
    gilx_loop_stop(&loop);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLongLong(total);
}

PyDoc_STRVAR(stream_sum_doc,
"stream_sum($module, buffer, passes=1, /, *, cancel=None)\n"
"--\n"
"\n"
"Sum a bytes-like buffer as native-endian unsigned 64-bit words, `passes`\n"
"times over, with the GIL released when the whole call's work (words x\n"
"passes) reaches NOGIL_THRESHOLD; return the sum modulo 2**64.\n"
"\n"
"A trailing partial word is ignored.  Memory-bound for buffers larger\n"
"than the caches.  cancel=CancelToken() stops it from another thread\n"
"(gilx.Cancelled), like count_nogil.");

PyMethodDef gilx_stream_methods[] = {
    {"stream_sum", (PyCFunction)(void (*)(void))stream_sum,
     METH_FASTCALL | METH_KEYWORDS, stream_sum_doc},
    {NULL, NULL, 0, NULL}
};
