/*
 * duty.c -- the two C pieces of the GIL instrument (src/gilx/instrument.py):
 *
 *   knock(deadline_ns): the heartbeat's one beat.  Release the GIL, sleep
 *     until a deadline, note the time of waking, take the GIL back, note the
 *     time of getting it.  Waking and getting are read apart, with the GIL
 *     released in between, so the wait for the GIL is measured on its own:
 *     the sleep's lateness (timer slack, a busy scheduler) does not count as
 *     "the GIL was held".  A heartbeat written in Python can only read the
 *     clock after both, which is the bias of gilknocker and of our old one.
 *
 *   duty_cycle(seconds, hold, period): the ground truth the instrument is
 *     checked against.  For `seconds`, in each `period` it spins with the
 *     GIL held for the share `hold` of the period (count_gil-style), then
 *     spins with it released for the rest (count_nogil-style).  It returns
 *     the time it really held the GIL, measured by itself: re-taking the GIL
 *     after a released phase may be late (another thread has it), so the
 *     true share can differ a little from `hold`, and the instrument is
 *     compared with what happened, not with what was asked.
 */
#include "gilx.h"

#if !defined(_WIN32)
#  include <errno.h>
#endif
#if defined(__linux__)
#  include <unistd.h>
#endif

/* A knock never sleeps longer than this: a deadline further away is a bug in
 * the caller, and the heartbeat thread must stay stoppable. */
#define GILX_KNOCK_MAX_SLEEP_NS ((int64_t)10 * 1000000000)

/* A wait for the GIL shorter than this is not worth a second read of the
 * run-queue time (~1 us): it is below the instrument's resolution anyway. */
#define GILX_KNOCK_QUEUE_CHECK_NS ((int64_t)5000)

/* Sleep until the monotonic clock reaches `deadline_ns`.  No Python API:
 * called with the GIL released. */
static void
sleep_until(int64_t deadline_ns)
{
    int64_t left = deadline_ns - gilx_monotonic_ns();
    while (left > 0) {
#if defined(_WIN32)
        /* Windows sleeps in milliseconds; round up so as not to spin. */
        Sleep((DWORD)((left + 999999) / 1000000));
#else
        /* nanosleep rather than clock_nanosleep(TIMER_ABSTIME): macOS has
         * only the former.  A signal cuts it short (EINTR); the loop then
         * sleeps what is left. */
        struct timespec rel;
        rel.tv_sec = (time_t)(left / 1000000000);
        rel.tv_nsec = (long)(left % 1000000000);
        if (nanosleep(&rel, NULL) != 0 && errno != EINTR) {
            return;
        }
#endif
        left = deadline_ns - gilx_monotonic_ns();
    }
}

/*
 * This thread's run-queue statistics from Linux's /proc/thread-self/schedstat,
 * read through `fd` (opened by the caller in this same thread): the time it
 * has spent runnable but waiting for a CPU (ns, second field) and how many
 * times it was put on a CPU (third field).  Returns 0, or -1 where they
 * cannot be read.  No Python API: may be called with the GIL released.
 *
 * Why: a knock's wait for the GIL ends when the OS runs the heartbeat after
 * the holder let go.  On a busy machine that hand-over can take
 * milliseconds during which the GIL is free and nobody holds it; the
 * instrument estimates that time from these two numbers and takes it out.
 */
static int
run_stats(int fd, int64_t *delay_ns, int64_t *runs)
{
#if defined(__linux__)
    char buf[96];
    if (fd < 0) {
        return -1;
    }
    ssize_t len = pread(fd, buf, sizeof(buf) - 1, 0);
    if (len <= 0) {
        return -1;
    }
    buf[len] = '\0';
    int64_t fields[3] = {0, 0, 0};
    const char *p = buf;
    for (int i = 0; i < 3; i++) {
        if (*p < '0' || *p > '9') {
            return -1;
        }
        while (*p >= '0' && *p <= '9') {
            fields[i] = fields[i] * 10 + (*p - '0');
            p++;
        }
        while (*p == ' ') {
            p++;
        }
    }
    *delay_ns = fields[1];
    *runs = fields[2];
    return 0;
#else
    (void)fd;
    (void)delay_ns;
    (void)runs;
    return -1;
#endif
}

static PyObject *
knock(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError,
                     "knock() takes 2 arguments (deadline_ns, schedstat_fd), "
                     "got %zd", nargs);
        return NULL;
    }
    long long deadline = PyLong_AsLongLong(args[0]);
    if (deadline == -1 && PyErr_Occurred()) {
        return NULL;
    }
    long fd_long = PyLong_AsLong(args[1]);
    if (fd_long == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (fd_long < -1 || fd_long > INT_MAX) {
        PyErr_SetString(PyExc_ValueError,
                        "knock: schedstat_fd must be a file descriptor or -1");
        return NULL;
    }
    int fd = (int)fd_long;
    int64_t entered = gilx_monotonic_ns();
    if ((int64_t)deadline - entered > GILX_KNOCK_MAX_SLEEP_NS) {
        PyErr_SetString(PyExc_ValueError,
                        "knock: deadline_ns is more than 10 s away");
        return NULL;
    }
    int64_t woke, delay0 = 0, runs0 = 0;
    int have_stats;
    Py_BEGIN_ALLOW_THREADS
    sleep_until((int64_t)deadline);
    have_stats = run_stats(fd, &delay0, &runs0) == 0;
    /* After the read, so that its cost is not part of the wait. */
    woke = gilx_monotonic_ns();
    Py_END_ALLOW_THREADS
    /* Read after the GIL is ours again: got - woke is the wait for it. */
    int64_t got = gilx_monotonic_ns();
    /* Only a wait long enough to matter pays for a second read. */
    int64_t queued = 0, runs = 0;
    if (have_stats && got - woke > GILX_KNOCK_QUEUE_CHECK_NS) {
        int64_t delay1, runs1;
        if (run_stats(fd, &delay1, &runs1) == 0 && delay1 >= delay0) {
            queued = delay1 - delay0;
            runs = runs1 - runs0;
        }
    }
    return Py_BuildValue("(LLLLL)", (long long)entered, (long long)woke,
                         (long long)got, (long long)queued, (long long)runs);
}

/* Busy-wait (no Python API, no sleeping: this is CPU work) until the
 * monotonic clock reaches `until_ns`. */
static void
spin_until(int64_t until_ns)
{
    while (gilx_monotonic_ns() < until_ns) {
    }
}

static PyObject *
duty_cycle(PyObject *module, PyObject *args)
{
    double seconds, hold, period;
    if (!PyArg_ParseTuple(args, "ddd:duty_cycle", &seconds, &hold, &period)) {
        return NULL;
    }
    /* `!(x > 0)` is also true for NaN. */
    if (!(seconds > 0) || seconds > 3600.0) {
        PyErr_SetString(PyExc_ValueError,
                        "duty_cycle: seconds must be > 0 and <= 3600");
        return NULL;
    }
    if (!(hold >= 0) || hold > 1) {
        PyErr_SetString(PyExc_ValueError,
                        "duty_cycle: hold must be between 0 and 1");
        return NULL;
    }
    if (!(period >= 1e-6) || period > 60.0) {
        PyErr_SetString(PyExc_ValueError,
                        "duty_cycle: period must be >= 1e-6 and <= 60 seconds");
        return NULL;
    }
    gilx_state *state = gilx_get_state(module);
    int64_t period_ns = (int64_t)(period * 1e9);
    int64_t hold_ns = (int64_t)(hold * (double)period_ns);
    int64_t start = gilx_monotonic_ns();
    int64_t end = start + (int64_t)(seconds * 1e9);
    int64_t held_ns = 0;
    int64_t held_since = start;     /* we hold the GIL from the call on */
    /* Phases on a fixed grid from `start`: a late re-take shortens the hold
     * phase that follows instead of shifting every later period. */
    for (int64_t phase = start; phase < end; phase += period_ns) {
        int64_t release_at = phase + hold_ns;
        int64_t next = phase + period_ns;
        if (next > end) {
            next = end;
        }
        if (release_at > next) {
            release_at = next;
        }
        spin_until(release_at);
        if (release_at < next) {
            held_ns += gilx_monotonic_ns() - held_since;
            Py_BEGIN_ALLOW_THREADS
            spin_until(next);
            Py_END_ALLOW_THREADS
            held_since = gilx_monotonic_ns();
        }
        /* GIL held here: Ctrl-C ends the call within one period. */
        if (gilx_check_interrupts(state, NULL) < 0) {
            return NULL;
        }
    }
    int64_t stop = gilx_monotonic_ns();
    held_ns += stop - held_since;
    return Py_BuildValue("(dd)", (double)held_ns / 1e9,
                         (double)(stop - start) / 1e9);
}

PyDoc_STRVAR(knock_doc,
"knock($module, deadline_ns, schedstat_fd, /)\n"
"--\n"
"\n"
"Release the GIL, sleep until monotonic_ns() reaches deadline_ns, take the\n"
"GIL back; return (entered_ns, woke_ns, got_ns, queued_ns, runs).  got_ns -\n"
"woke_ns is how long this thread waited for the GIL; queued_ns, the part of\n"
"that wait it spent runnable but without a CPU, and runs, how many times\n"
"it was put on a CPU meanwhile (read from schedstat_fd, this thread's\n"
"/proc/thread-self/schedstat; both 0 when it is -1 or the wait was short).\n"
"One beat of gilx's heartbeat.");

PyDoc_STRVAR(duty_cycle_doc,
"duty_cycle($module, seconds, hold, period, /)\n"
"--\n"
"\n"
"For `seconds`, hold the GIL for the share `hold` of every `period` (CPU\n"
"work, GIL held) and release it for the rest (CPU work, GIL released).\n"
"Return (held_seconds, total_seconds) as measured by the call itself: the\n"
"ground truth for gilx's hold-fraction estimate.");

PyMethodDef gilx_duty_methods[] = {
    {"knock", (PyCFunction)(void (*)(void))knock, METH_FASTCALL, knock_doc},
    {"duty_cycle", duty_cycle, METH_VARARGS, duty_cycle_doc},
    {NULL, NULL, 0, NULL}
};
