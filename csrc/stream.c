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
    for (uint64_t pass = 0; pass < passes; pass++) {
        Py_ssize_t start = 0;
        do {
            Py_ssize_t chunk = nwords - start;
            if (chunk > GILX_STREAM_CHUNK_WORDS) {
                chunk = GILX_STREAM_CHUNK_WORDS;
            }
            Py_BEGIN_ALLOW_THREADS
            total += sum_words(base + start * 8, chunk);
            Py_END_ALLOW_THREADS
            start += chunk;
            if (gilx_check_interrupts(state, cancel) < 0) {
                PyBuffer_Release(&view);
                return NULL;
            }
        } while (start < nwords);
    }
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLongLong(total);
}

PyDoc_STRVAR(stream_sum_doc,
"stream_sum($module, buffer, passes=1, /, *, cancel=None)\n"
"--\n"
"\n"
"Sum a bytes-like buffer as native-endian unsigned 64-bit words, `passes`\n"
"times over, with the GIL released; return the sum modulo 2**64.\n"
"\n"
"A trailing partial word is ignored.  Memory-bound for buffers larger\n"
"than the caches.  cancel=CancelToken() stops it from another thread\n"
"(gilx.Cancelled), like count_nogil.");

PyMethodDef gilx_stream_methods[] = {
    {"stream_sum", (PyCFunction)(void (*)(void))stream_sum,
     METH_FASTCALL | METH_KEYWORDS, stream_sum_doc},
    {NULL, NULL, 0, NULL}
};
