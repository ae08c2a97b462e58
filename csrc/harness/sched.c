/*
 * sched.c -- the heartbeat's claim on a CPU, for an ordinary user.
 *
 *   thread_slice(ns): ask Linux's fair scheduler (EEVDF, Linux 6.6+) for a
 *     time slice of `ns` nanoseconds for the calling thread, and return the
 *     one it had (0: the kernel's default), or None where there is no such
 *     knob.
 *
 * Why the heartbeat needs it: it sleeps almost all the time and must run at
 * its sampled instants.  When its timer fires, the CPU it wakes on is often
 * the one running the thread that holds the GIL (the heartbeat last ran
 * there, woken by that thread's release).  Under EEVDF a waking thread with
 * the default slice (about 3 ms) does not preempt the running one until the
 * latter has used its own slice ("run to parity"), so the heartbeat waited
 * in the run queue until the holder blocked, just after it let go of the
 * GIL, and a held instant read free: as an ordinary user, 1 ms holds between
 * 3 ms sleeps read 0.03 for a true 0.25 (issue 25).  Since Linux 6.12 a
 * thread whose requested slice is shorter preempts at wake-up (the
 * scheduler's PREEMPT_SHORT), and any thread may shorten its own slice with
 * sched_setattr(): no privilege, unlike SCHED_FIFO.  The heartbeat runs for
 * microseconds per beat, so a 0.1 ms slice costs it nothing and takes
 * nothing from anyone.  Kernels before 6.12 accept the call but ignore the
 * value; the slice is read back, and None says it did not take.
 */
#include "harness.h"

#if defined(__linux__)
#  include <errno.h>
#  include <sched.h>
#  include <stdint.h>
#  include <string.h>
#  include <sys/syscall.h>
#  include <unistd.h>
#endif

#if defined(__linux__) && defined(SYS_sched_setattr) && defined(SYS_sched_getattr)
#  define GILX_HAVE_SCHED_ATTR 1

/* Linux's struct sched_attr (include/uapi/linux/sched/types.h), first
 * version: glibc before 2.41 has neither the type nor a wrapper. */
typedef struct {
    uint32_t size;
    uint32_t sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime;    /* SCHED_OTHER: the requested slice, ns */
    uint64_t sched_deadline;
    uint64_t sched_period;
} gilx_sched_attr;

static int
sched_attr_get(gilx_sched_attr *attr)
{
    memset(attr, 0, sizeof(*attr));
    return (int)syscall(SYS_sched_getattr, 0, attr,
                        (unsigned int)sizeof(*attr), 0U);
}
#endif

static PyObject *
thread_slice(PyObject *Py_UNUSED(module), PyObject *arg)
{
    long long ns = PyLong_AsLongLong(arg);
    if (ns == -1 && PyErr_Occurred()) {
        return NULL;
    }
    /* The kernel's own bounds for a requested slice are 0.1 to 100 ms; 0
     * asks for its default back. */
    if (ns != 0 && (ns < 100000 || ns > 100000000)) {
        PyErr_Format(PyExc_ValueError,
                     "thread_slice: ns must be 0 (the default) or "
                     "100000..100000000, got %lld", ns);
        return NULL;
    }
#ifdef GILX_HAVE_SCHED_ATTR
    gilx_sched_attr attr;
    if (sched_attr_get(&attr) != 0) {
        if (errno == ENOSYS) {
            Py_RETURN_NONE;
        }
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    /* Only the fair classes have a slice; a real-time thread keeps what it
     * has (and needs nothing more). */
    if (attr.sched_policy != SCHED_OTHER && attr.sched_policy != SCHED_BATCH) {
        Py_RETURN_NONE;
    }
    uint64_t old = attr.sched_runtime;
    /* The same policy and nice value: only the slice changes, so a thread
     * started under `nice` is not asked to raise its priority (refused). */
    attr.size = (uint32_t)sizeof(attr);
    attr.sched_flags = 0;
    attr.sched_runtime = (uint64_t)ns;
    if (syscall(SYS_sched_setattr, 0, &attr, 0U) != 0) {
        if (errno == ENOSYS || errno == E2BIG) {
            Py_RETURN_NONE;
        }
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    gilx_sched_attr now;
    if (ns != 0 && (sched_attr_get(&now) != 0
                    || now.sched_runtime != (uint64_t)ns)) {
        Py_RETURN_NONE;    /* a kernel without custom slices ignored it */
    }
    return PyLong_FromUnsignedLongLong(old);
#else
    Py_RETURN_NONE;
#endif
}

PyDoc_STRVAR(thread_slice_doc,
"thread_slice($module, ns, /)\n"
"--\n"
"\n"
"Ask the OS scheduler for a time slice of `ns` nanoseconds for the calling\n"
"thread (Linux 6.12+, EEVDF; no privilege needed) and return the slice it\n"
"had before (0: the default), which thread_slice(old) puts back.  None\n"
"where there is no such knob (another OS, an older kernel, a real-time\n"
"thread).  `ns` is 0 (the default) or 100000..100000000.");

PyMethodDef gilx_sched_methods[] = {
    {"thread_slice", thread_slice, METH_O, thread_slice_doc},
    {NULL, NULL, 0, NULL}
};
