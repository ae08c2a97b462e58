/*
 * args.c -- turning Python arguments into C work sizes.
 */
#include "gilx.h"

int
gilx_parse_count(PyObject *obj, const char *name, uint64_t *out)
{
    /* Accept what the language treats as an integer (int, bool, NumPy
     * integers: anything with __index__) and nothing else; a float such as
     * 1e6 is a TypeError rather than a silent truncation. */
    if (!PyIndex_Check(obj)) {
        PyErr_Format(PyExc_TypeError,
                     "%s must be an integer (an object with __index__), "
                     "not %.200s",
                     name, Py_TYPE(obj)->tp_name);
        return -1;
    }
    PyObject *index = PyNumber_Index(obj);
    if (index == NULL) {
        return -1;
    }
    int overflow = 0;
    long long value = PyLong_AsLongLongAndOverflow(index, &overflow);
    if (value == -1 && PyErr_Occurred()) {
        Py_DECREF(index);
        return -1;
    }
    if (overflow < 0 || (overflow == 0 && value < 0)) {
        PyErr_Format(PyExc_ValueError, "%s must be >= 0, got %R",
                     name, index);
        Py_DECREF(index);
        return -1;
    }
    if (overflow > 0) {
        PyErr_Format(PyExc_OverflowError,
                     "%s is too large: got %R, the limit is %llu",
                     name, index, (unsigned long long)GILX_MAX_COUNT);
        Py_DECREF(index);
        return -1;
    }
    Py_DECREF(index);
    *out = (uint64_t)value;
    return 0;
}

int
gilx_parse_kwargs(const char *funcname, PyObject *const *kwvalues,
                  PyObject *kwnames, gilx_kwarg *table, size_t ntable)
{
    /* Vectorcall hands keywords over as a tuple of names plus the values
     * after the positional ones.  The interpreter has already refused a
     * keyword given twice, and the names are always str (a non-str key in
     * **kwargs is a TypeError before the call), but we check rather than
     * trust: the tuple is the C API's, not ours. */
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        size_t j = 0;
        if (PyUnicode_Check(name)) {
            while (j < ntable
                   && PyUnicode_CompareWithASCIIString(name,
                                                       table[j].name) != 0) {
                j++;
            }
        }
        else {
            j = ntable;
        }
        if (j == ntable) {
            PyErr_Format(PyExc_TypeError,
                         "%s() got an unexpected keyword argument %R",
                         funcname, name);
            return -1;
        }
        *table[j].value = kwvalues[i];
    }
    return 0;
}

int
gilx_parse_n_cancel(const char *funcname, PyObject *const *args,
                    Py_ssize_t nargs, PyObject *kwnames, uint64_t *n,
                    PyObject **cancel)
{
    if (nargs != 1) {
        PyErr_Format(PyExc_TypeError,
                     "%s() takes exactly 1 positional argument (n), got %zd",
                     funcname, nargs);
        return -1;
    }
    *cancel = NULL;
    gilx_kwarg kwargs[] = {{"cancel", cancel}};
    if (gilx_parse_kwargs(funcname, args + nargs, kwnames, kwargs, 1) < 0) {
        return -1;
    }
    return gilx_parse_count(args[0], "n", n);
}
