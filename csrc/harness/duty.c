/*
 * duty.c -- the C pieces of the GIL instrument (src/gilx/instrument.py):
 *
 *   heartbeat_run(totals, interval_ns, cancel, seed, schedstat_fd): the
 *     heartbeat's whole loop.  Each beat ("knock") releases the GIL, sleeps
 *     until the next sampled instant, notes the time of waking, takes the
 *     GIL back, notes the time of getting it, and gives it straight back.
 *     Waking and getting are read apart, with the GIL released in between,
 *     so the wait for the GIL is measured on its own: the sleep's lateness
 *     (timer slack, a busy scheduler) does not count as "the GIL was held".
 *     A heartbeat written in Python can only read the clock after both,
 *     which is the bias of gilknocker and of gilx's first heartbeat.  The
 *     loop also learns, from its own sleeps, how late this machine wakes a
 *     thread, and corrects for it twice: each sleep aims early by the mean
 *     lateness, and each wait loses the mean time an idle CPU takes to
 *     wake (the GIL is free while the holder's signal wakes the heartbeat).
 *     The labelling of sampled instants and the running totals are done here
 *     too, with the GIL released, so that the heartbeat holds the GIL for
 *     about a microsecond per beat.  heartbeat_read(totals) copies them.
 *
 *   duty_cycle(seconds, hold, period): the ground truth the instrument is
 *     checked against.  For `seconds`, in each `period` it spins with the
 *     GIL held for the share `hold` of the period (count_gil-style), then
 *     spins with it released for the rest (count_nogil-style).  It returns
 *     the time it really held the GIL, measured by itself: re-taking the GIL
 *     after a released phase may be late (another thread has it), so the
 *     true share can differ a little from `hold`, and the instrument is
 *     compared with what happened, not with what was asked.  However long
 *     the period, it looks for Ctrl-C every ~1 ms while it holds the GIL
 *     and every 10 ms while it does not (GILX_DUTY_HELD_CHECK_NS).
 *
 *   duty_block(seconds, hold, period, how): the same, with a release phase
 *     that blocks in the kernel (nanosleep, or poll() on a pipe) as real
 *     code does, instead of spinning.
 */
#include "harness.h"

#if !defined(_WIN32)
#  include <errno.h>
#endif
#if defined(__linux__)
#  include <sys/prctl.h>
#  include <unistd.h>
#endif

/* The longest interval between knocks: the heartbeat must stay stoppable. */
#define GILX_KNOCK_MAX_SLEEP_NS ((int64_t)10 * 1000000000)

/* A wait for the GIL shorter than this is not worth a second read of the
 * run-queue time (~1 us): it is below the instrument's resolution anyway. */
#define GILX_KNOCK_QUEUE_CHECK_NS ((int64_t)4000)

/* A knock that waited longer than this for the GIL found it held.  Taking a
 * free GIL takes 1-3 us (99 % under 5 us on a busy VM); a heartbeat
 * preempted in between can take longer.  Where the run-queue statistics
 * tell a wait that slept from one that was only slow, the threshold is
 * lower: a knock that comes just before the holder lets go also waits only
 * microseconds, and such a knock labelled free is a held instant lost. */
#define GILX_HB_BLOCKED_NS ((int64_t)10000)
#define GILX_HB_BLOCKED_SLEPT_NS ((int64_t)5000)

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

/*
 * Linux lets a timer fire up to the thread's "timer slack" (50 us by default)
 * late, to batch wake-ups.  The heartbeat's lateness is what it learns the
 * machine's wake-up cost from (below), and slack is not part of that cost, so
 * the loop asks for none.  Returns the slack to restore, or -1 where there is
 * no such setting.  No Python API: called with the GIL released.
 */
static long
timer_slack_off(void)
{
#if defined(__linux__) && defined(PR_SET_TIMERSLACK)
    int old = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    if (old > 0 && prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0) == 0) {
        return old;
    }
#endif
    return -1;
}

static void
timer_slack_restore(long old)
{
#if defined(__linux__) && defined(PR_SET_TIMERSLACK)
    if (old > 0) {
        (void)prctl(PR_SET_TIMERSLACK, (unsigned long)old, 0, 0, 0);
    }
#else
    (void)old;
#endif
}

/* A running mean that forgets over about `memory` samples: the machine's
 * wake-up cost changes with its load, and the heartbeat should follow it,
 * but slowly: one sleep that ran late because the host took the CPU away
 * would otherwise move the mean for the next dozens of beats.  For the same
 * reason a sample is taken as at most `cap_ns`. */
static void
running_mean_add(double *mean, int64_t *count, int64_t sample_ns,
                 int64_t memory, int64_t cap_ns)
{
    if (sample_ns < 0) {
        sample_ns = 0;
    }
    if (sample_ns > cap_ns) {
        sample_ns = cap_ns;
    }
    *count += 1;
    double weight = 1.0 / (double)(*count < memory ? *count : memory);
    *mean += ((double)sample_ns - *mean) * weight;
}

/*
 * How long a CPU takes to wake depends on how long it has been idle: a guest
 * kernel polls for a while before it halts, and halting (on a VM, giving the
 * CPU back to the host) makes the next wake-up slower.  So the wake-up cost
 * is learnt per length of idle time, in buckets with these upper edges.
 */
static const int64_t idle_edges_ns[] = {
    100000, 200000, 400000, 800000, 1600000, INT64_MAX
};
#define GILX_IDLE_BUCKETS ((int)(sizeof(idle_edges_ns) / sizeof(idle_edges_ns[0])))

typedef struct {
    double mean[GILX_IDLE_BUCKETS];
    int64_t count[GILX_IDLE_BUCKETS];
} wake_costs;

static int
idle_bucket(int64_t idle_ns)
{
    int b = 0;
    while (b < GILX_IDLE_BUCKETS - 1 && idle_ns >= idle_edges_ns[b]) {
        b++;
    }
    return b;
}

/* The mean wake-up cost after `idle_ns` of idleness: its bucket's, or the
 * nearest bucket's that has samples; 0 before any sample. */
static int64_t
wake_cost(const wake_costs *costs, int64_t idle_ns)
{
    int b = idle_bucket(idle_ns);
    for (int d = 0; d < GILX_IDLE_BUCKETS; d++) {
        if (b - d >= 0 && costs->count[b - d] > 0) {
            return (int64_t)costs->mean[b - d];
        }
        if (b + d < GILX_IDLE_BUCKETS && costs->count[b + d] > 0) {
            return (int64_t)costs->mean[b + d];
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * The heartbeat loop.
 *
 * Its running totals live in a caller-owned buffer of GILX_HB_SLOTS
 * uint64 words (an array('Q')), so that the Python object can be read by
 * heartbeat_read() from any thread while the loop adds to it with the GIL
 * released; every word is read and written atomically.
 * ------------------------------------------------------------------------ */
enum {
    GILX_HB_SAMPLES,        /* sampled instants labelled */
    GILX_HB_HELD,           /* ... of which the GIL was held */
    GILX_HB_MISSED,         /* ... of which the heartbeat slept through */
    GILX_HB_BEATS,          /* knocks */
    GILX_HB_BUSY_NS,        /* time the heartbeat itself held the GIL */
    GILX_HB_MAX_WAIT_NS,    /* longest wait for the GIL */
    GILX_HB_RUNNING,        /* 1 while the loop runs with the GIL released */
    GILX_HB_WAITS,          /* first bucket of the wait histogram */
    /* Bucket 0: waits under 1024 ns.  Then 8 buckets per power of two (the
     * three bits after the leading one), from 2**10 ns up to 2**36 ns
     * (~69 s); the last bucket takes anything longer. */
    GILX_HB_BUCKETS = 1 + 8 * 26,
    /* After the histogram: sampled instants at which the heartbeat was
     * waiting for a CPU (runnable, not running), so labelled late. */
    GILX_HB_LATE = GILX_HB_WAITS + GILX_HB_BUCKETS,
    GILX_HB_SLOTS = GILX_HB_LATE + 1
};

static Py_ssize_t
wait_bucket(int64_t ns)
{
    if (ns < 1024) {
        return 0;
    }
    int e = 10;
    while (e < 62 && (ns >> (e + 1)) != 0) {
        e++;
    }
    Py_ssize_t index = 1 + (Py_ssize_t)(e - 10) * 8 + (Py_ssize_t)((ns >> (e - 3)) & 7);
    return index < GILX_HB_BUCKETS ? index : GILX_HB_BUCKETS - 1;
}

/* xorshift64*: the random instant in each stratum.  Quality needs are
 * modest (a uniform position); what matters is that no Python call is
 * needed with the GIL released. */
static uint64_t
next_random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * UINT64_C(2685821657736338717);
}

/* A uniform offset in [0, step). */
static int64_t
draw_offset(uint64_t *rng, int64_t step)
{
    double unit = (double)(next_random(rng) >> 11) * (1.0 / 9007199254740992.0);
    return (int64_t)(unit * (double)step);
}

static void
add_to(gilx_atomic_u64 *totals, int slot, uint64_t amount)
{
    gilx_atomic_store(&totals[slot], gilx_atomic_load(&totals[slot]) + amount);
}

static int
totals_buffer(PyObject *obj, Py_buffer *view, int writable)
{
    if (PyObject_GetBuffer(obj, view,
                           writable ? PyBUF_WRITABLE : PyBUF_SIMPLE) < 0) {
        return -1;
    }
    if (view->len != (Py_ssize_t)(GILX_HB_SLOTS * sizeof(uint64_t))
        || ((uintptr_t)view->buf % sizeof(uint64_t)) != 0) {
        PyErr_Format(PyExc_ValueError,
                     "totals must be an aligned buffer of %d 64-bit words",
                     (int)GILX_HB_SLOTS);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static PyObject *
heartbeat_run(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 && nargs != 6) {
        PyErr_Format(PyExc_TypeError,
                     "heartbeat_run() takes 5 or 6 arguments (totals, interval_ns, "
                     "cancel, seed, schedstat_fd[, blame]), got %zd", nargs);
        return NULL;
    }
    /* Blame (blame.c) rides on the beats: the one moment per beat the
     * heartbeat holds the GIL is when the other threads can be looked at. */
    gilx_blame *blame = NULL;
    if (nargs == 6 && args[5] != Py_None) {
        blame = gilx_blame_from(args[5]);
        if (blame == NULL) {
            return NULL;
        }
    }
    long long step = PyLong_AsLongLong(args[1]);
    if (step == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (step < 1000 || step > GILX_KNOCK_MAX_SLEEP_NS) {
        PyErr_SetString(PyExc_ValueError,
                        "heartbeat_run: interval_ns must be >= 1000 and <= 10 s");
        return NULL;
    }
    CancelTokenObject *cancel;
    if (gilx_parse_cancel(gilx_get_state(module), args[2], &cancel) < 0) {
        return NULL;
    }
    if (cancel == NULL) {
        PyErr_SetString(PyExc_TypeError,
                        "heartbeat_run: cancel must be a CancelToken (how it stops)");
        return NULL;
    }
    unsigned long long seed = PyLong_AsUnsignedLongLongMask(args[3]);
    if (seed == (unsigned long long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    long fd_long = PyLong_AsLong(args[4]);
    if (fd_long == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (fd_long < -1 || fd_long > INT_MAX) {
        PyErr_SetString(PyExc_ValueError,
                        "heartbeat_run: schedstat_fd must be a file descriptor or -1");
        return NULL;
    }
    int fd = (int)fd_long;
    /* CPython's switch interval: a knock that has waited that long has been
     * woken by its timed wait, found the GIL still held and asked the holder
     * to let go, so the GIL was held then.  Read once: a watch lasting
     * through a sys.setswitchinterval() keeps the old value. */
    double switch_s = 0.005;
    PyObject *getter = PySys_GetObject("getswitchinterval");   /* borrowed */
    if (getter != NULL) {
        PyObject *value = PyObject_CallNoArgs(getter);
        if (value == NULL) {
            return NULL;
        }
        switch_s = PyFloat_AsDouble(value);
        Py_DECREF(value);
        if (switch_s == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
    }
    int64_t switch_ns = (int64_t)(switch_s * 1e9);
    if (switch_ns < 1000) {
        switch_ns = 1000;
    }
    Py_buffer view;
    if (totals_buffer(args[0], &view, 1) < 0) {
        return NULL;
    }
    /* The buffer export keeps the memory in place (an array cannot resize
     * while exported) until PyBuffer_Release, after the loop. */
    gilx_atomic_u64 *totals = (gilx_atomic_u64 *)view.buf;
    uint64_t rng = seed | 1;        /* xorshift must not start at 0 */

    Py_BEGIN_ALLOW_THREADS
    gilx_atomic_store(&totals[GILX_HB_RUNNING], 1);
    long old_slack = timer_slack_off();
    /* Two running means learnt from the heartbeat's own sleeps, which end at
     * instants that have nothing to do with the GIL:
     *   late: how long after the deadline the thread runs.  The sleep aims
     *     that much early, so that the knock lands on the sampled instant on
     *     average.  Knocking late instead is a bias, not noise: a knock
     *     that oversleeps into a hold phase labels a free instant held,
     *     while the opposite error cannot happen when the heartbeat already
     *     waits for the GIL at the end of the hold.
     *   wakes: the part of that lateness that is the machine waking an
     *     idle CPU (not the run-queue time, which schedstat gives per
     *     knock), per length of the sleep.  A knock that waits for the GIL
     *     is woken the same way when the holder lets go: the GIL is free
     *     for that long before the heartbeat gets it, on a VM often
     *     30-300 us, and schedstat does not see it. */
    double late_mean = 0.0;
    int64_t late_count = 0;
    wake_costs wakes = {{0.0}, {0}};
    int64_t last_delay = -1;        /* run-queue time when the last beat ended */
    int64_t origin = gilx_monotonic_ns();
    int64_t stratum = 0;
    int64_t target = origin + draw_offset(&rng, step);
    /* The token's flag and its deadline (gilx.h): the flag alone would
     * let a CancelToken(timeout=...) run on for ever. */
    while (!gilx_token_cancelled(cancel)) {
        int64_t delay0 = 0, runs0 = 0;
        int64_t aim = (int64_t)late_mean;
        if (aim > step / 2) {
            aim = step / 2;
        }
        int64_t deadline = target - aim;
        /* A token deadline inside this sleep ends the loop there, not up to
         * an interval (at most 10 s) later. */
        if (cancel->deadline_ns != 0 && cancel->deadline_ns < deadline) {
            sleep_until(cancel->deadline_ns);
            continue;       /* the loop's test now sees it cancelled */
        }
        int64_t asleep = gilx_monotonic_ns();
        int slept = deadline > asleep;
        sleep_until(deadline);
        int64_t awake = gilx_monotonic_ns();
        int have_stats = run_stats(fd, &delay0, &runs0) == 0;
        int64_t woke = gilx_monotonic_ns();
        /* Late instants: the run-queue time since the last beat ended is
         * time the heartbeat was ready but had no CPU, taken as just before
         * it woke.  An instant in that stretch is labelled with what the
         * heartbeat found afterwards, which may be wrong: a thread that
         * blocks gives its CPU to the queued heartbeat just as it lets go
         * of the GIL, so held instants read free. */
        int64_t late_since = awake;
        if (have_stats && last_delay >= 0 && delay0 > last_delay) {
            late_since = awake - (delay0 - last_delay);
        }
        /* Ask for the GIL, note when it came, and give it straight back:
         * the beat holds it for nothing longer than two clock reads. */
        Py_BLOCK_THREADS
        int64_t got = gilx_monotonic_ns();
        if (blame != NULL) {
            gilx_blame_beat(blame);     /* its time counts in busy_ns */
        }
        Py_UNBLOCK_THREADS
        int64_t released = gilx_monotonic_ns();

        if (slept) {
            int64_t late = awake - deadline;
            running_mean_add(&late_mean, &late_count, late, 256, step / 2);
            if (have_stats && last_delay >= 0 && delay0 >= last_delay) {
                int b = idle_bucket(deadline - asleep);
                running_mean_add(&wakes.mean[b], &wakes.count[b],
                                 late - (delay0 - last_delay), 64, step / 2);
            }
        }

        /* The run-queue part of the hand-over: on a busy machine the
         * heartbeat, woken when the holder let go, waits for a CPU while the
         * GIL is free.  A long wait also wakes up once per switch interval,
         * so this part is the mean run-queue time per time it ran. */
        int64_t queued = 0, runs = -1;
        last_delay = have_stats ? delay0 : -1;
        if (have_stats && got - woke > GILX_KNOCK_QUEUE_CHECK_NS) {
            int64_t delay1, runs1;
            if (run_stats(fd, &delay1, &runs1) == 0 && delay1 >= delay0) {
                runs = runs1 - runs0;
                queued = runs > 0 ? (delay1 - delay0) / runs : delay1 - delay0;
                last_delay = delay1;
            }
        }
        /* Whether the GIL was held when the knock came is plain from the
         * wait; where the hold ended is the wait less the hand-over.  A
         * knock that found the GIL held went to sleep until it was free, so
         * it ran again at least once (runs >= 1).  One that did not was
         * slow for another reason: on a VM, the host took the CPU away
         * (steal time, which the guest's run-queue times do not show). */
        int64_t wait = got - queued - woke;
        int blocked;
        if (runs < 0) {
            blocked = wait > GILX_HB_BLOCKED_NS;
        }
        else {
            blocked = runs > 0 && wait > GILX_HB_BLOCKED_SLEPT_NS;
        }
        int64_t freed = got - queued;
        if (blocked && runs >= 0) {
            /* How long before `got` the holder let go: the time it took to
             * wake the heartbeat up.  Each timed wait that ended (one per
             * switch interval, see switch_ns) woke it once and found the
             * GIL still held; if it woke more often than that, the last
             * wake-up was the holder's signal, after sleeping since the
             * last timeout: the idle time its wake-up cost is looked up by.
             * If not, it was awake when the holder let go (a holder running
             * Python does so microseconds after the timed wait asks it to),
             * and there was no wake-up to take off. */
            int64_t timeouts = wait / switch_ns;
            if (runs > timeouts) {
                int64_t still_held = woke + timeouts * switch_ns;
                freed -= wake_cost(&wakes, freed - still_held);
                if (freed < still_held) {
                    freed = still_held;
                }
            }
        }
        uint64_t samples = 1, held = (uint64_t)blocked, missed = 0;
        uint64_t late_instants = (uint64_t)(target >= late_since && target < awake);

        /* Label the instants of the later strata that are already past. */
        stratum++;
        for (;;) {
            int64_t base = origin + stratum * step;
            if (blocked && base >= woke && base + step <= freed) {
                int64_t whole = (freed - base) / step;  /* inside the wait */
                samples += (uint64_t)whole;
                held += (uint64_t)whole;
                stratum += whole;
                continue;
            }
            int64_t instant = base + draw_offset(&rng, step);
            if (instant >= got) {
                target = instant;
                break;
            }
            /* Inside the wait: held until the holder let go.  Before waking
             * (the OS let the heartbeat sleep past it): labelled with the
             * state found on waking, and counted as missed. */
            samples++;
            held += (uint64_t)(blocked && instant < freed);
            missed += (uint64_t)(instant <= woke);
            late_instants += (uint64_t)(instant >= late_since && instant < awake);
            stratum++;
        }
        add_to(totals, GILX_HB_SAMPLES, samples);
        add_to(totals, GILX_HB_HELD, held);
        add_to(totals, GILX_HB_MISSED, missed);
        add_to(totals, GILX_HB_LATE, late_instants);
        add_to(totals, GILX_HB_BEATS, 1);
        add_to(totals, GILX_HB_BUSY_NS, (uint64_t)(released - got));
        add_to(totals, GILX_HB_WAITS + (int)wait_bucket(wait), 1);
        if (wait > 0
            && (uint64_t)wait > gilx_atomic_load(&totals[GILX_HB_MAX_WAIT_NS])) {
            gilx_atomic_store(&totals[GILX_HB_MAX_WAIT_NS], (uint64_t)wait);
        }
    }
    timer_slack_restore(old_slack);
    gilx_atomic_store(&totals[GILX_HB_RUNNING], 0);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

static PyObject *
heartbeat_read(PyObject *Py_UNUSED(module), PyObject *arg)
{
    Py_buffer view;
    if (totals_buffer(arg, &view, 0) < 0) {
        return NULL;
    }
    gilx_atomic_u64 *totals = (gilx_atomic_u64 *)view.buf;
    PyObject *result = PyTuple_New(GILX_HB_SLOTS);
    if (result != NULL) {
        for (Py_ssize_t i = 0; i < GILX_HB_SLOTS; i++) {
            PyObject *value = PyLong_FromUnsignedLongLong(
                gilx_atomic_load(&totals[i]));
            if (value == NULL) {
                Py_CLEAR(result);
                break;
            }
            PyTuple_SET_ITEM(result, i, value);     /* steals the reference */
        }
    }
    PyBuffer_Release(&view);
    return result;
}

/* Busy-wait (no Python API, no sleeping: this is CPU work) until the
 * monotonic clock reaches `until_ns`. */
static void
spin_until(int64_t until_ns)
{
    while (gilx_monotonic_ns() < until_ns) {
    }
}

/*
 * How often duty_cycle looks for Ctrl-C, whatever its period (up to 60 s).
 *
 * While it holds the GIL, looking costs one PyErr_CheckSignals() and
 * releases nothing, so the hold it reports stays exact: it looks every ~1 ms
 * of hold, as count_gil does between its chunks.  While it has released the
 * GIL, looking means taking it back for about a microsecond, a short hold
 * that the heartbeat may see (and that held_ns counts): every 10 ms keeps
 * those to ~0.01 % of the released time and Ctrl-C to within 10 ms.  A long
 * period is what a test of the instrument may well want (a hold of seconds,
 * as a slow C call would make), so it is not refused; it is sliced.
 */
#define GILX_DUTY_HELD_CHECK_NS ((int64_t)1000000)
#define GILX_DUTY_RELEASED_CHECK_NS ((int64_t)10000000)

/* One period of a duty cycle on its fixed grid: the GIL is held from
 * `phase` to *release_at and released from there to *next, both clipped to
 * `end` (the last period may be cut short). */
static void
phase_bounds(int64_t phase, int64_t period_ns, int64_t hold_ns, int64_t end,
             int64_t *release_at, int64_t *next)
{
    *next = phase + period_ns;
    if (*next > end) {
        *next = end;
    }
    *release_at = phase + hold_ns;
    if (*release_at > *next) {
        *release_at = *next;
    }
}

/* The arguments duty_cycle() and duty_block() share: ValueError naming
 * `funcname` unless seconds, hold and period are in range.  `!(x > 0)` is
 * also true for NaN. */
static int
check_duty_args(const char *funcname, double seconds, double hold,
                double period)
{
    if (!(seconds > 0) || seconds > 3600.0) {
        PyErr_Format(PyExc_ValueError,
                     "%s: seconds must be > 0 and <= 3600", funcname);
        return -1;
    }
    if (!(hold >= 0) || hold > 1) {
        PyErr_Format(PyExc_ValueError,
                     "%s: hold must be between 0 and 1", funcname);
        return -1;
    }
    if (!(period >= 1e-6) || period > 60.0) {
        PyErr_Format(PyExc_ValueError,
                     "%s: period must be >= 1e-6 and <= 60 seconds", funcname);
        return -1;
    }
    return 0;
}

static PyObject *
duty_cycle(PyObject *module, PyObject *args)
{
    double seconds, hold, period;
    if (!PyArg_ParseTuple(args, "ddd:duty_cycle", &seconds, &hold, &period)) {
        return NULL;
    }
    if (check_duty_args("duty_cycle", seconds, hold, period) < 0) {
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
        int64_t release_at, next;
        phase_bounds(phase, period_ns, hold_ns, end, &release_at, &next);
        /* The hold phase, in slices; between two, Ctrl-C is looked for with
         * the GIL still held. */
        int64_t now = gilx_monotonic_ns();
        while (now < release_at) {
            int64_t until = now + GILX_DUTY_HELD_CHECK_NS;
            spin_until(until < release_at ? until : release_at);
            if (gilx_check_interrupts(state, NULL) < 0) {
                return NULL;
            }
            now = gilx_monotonic_ns();
        }
        /* The release phase, in slices; between two, the GIL is taken back
         * to look for Ctrl-C, and that short hold is counted. */
        while (now < next) {
            int64_t until = now + GILX_DUTY_RELEASED_CHECK_NS;
            if (until > next) {
                until = next;
            }
            held_ns += gilx_monotonic_ns() - held_since;
            Py_BEGIN_ALLOW_THREADS
            spin_until(until);
            Py_END_ALLOW_THREADS
            held_since = gilx_monotonic_ns();
            if (gilx_check_interrupts(state, NULL) < 0) {
                return NULL;
            }
            now = gilx_monotonic_ns();
        }
    }
    int64_t stop = gilx_monotonic_ns();
    held_ns += stop - held_since;
    return Py_BuildValue("(dd)", (double)held_ns / 1e9,
                         (double)(stop - start) / 1e9);
}

/* ------------------------------------------------------------------------
 * Ground truth that blocks: duty_block(seconds, hold, period, how).
 *
 * Real code rarely releases the GIL to spin: it releases it to block, in
 * sleep(), select() or a read.  A blocked thread leaves its CPU, and that is
 * what makes the heartbeat's job different: the watched thread's CPU goes
 * idle, the scheduler may put both threads on one CPU, and each hold phase
 * begins with a wake-up.  So the same duty cycle, with a release phase that
 * blocks in the kernel ("sleep": nanosleep; "poll": waiting for a pipe that
 * nobody writes to, with a timeout) instead of spinning.
 * ------------------------------------------------------------------------ */
#if !defined(_WIN32)
#  include <poll.h>
#  include <unistd.h>       /* pipe, close */
#endif

enum { GILX_BLOCK_SLEEP, GILX_BLOCK_POLL };

/* A release phase longer than this is cut into slices of it; between two
 * slices the call takes the GIL back for an instant to run signal handlers
 * and honour its CancelToken (the GIL policy's 10-50 ms).  Those instants
 * are counted in the time it held the GIL, like every other. */
#define GILX_BLOCK_SLICE_NS ((int64_t)20000000)

/* Block (GIL released, no Python API) for `ns` nanoseconds at most, the way
 * `how` says.  Returns 0, or -1 with errno set on a failure other than
 * EINTR (a signal ends the wait early; the caller decides what follows). */
static int
block_for(int how, int read_fd, int64_t ns)
{
#if defined(_WIN32)
    (void)how;
    (void)read_fd;
    Sleep((DWORD)((ns + 999999) / 1000000));
    return 0;
#else
    struct timespec rel;
    rel.tv_sec = (time_t)(ns / 1000000000);
    rel.tv_nsec = (long)(ns % 1000000000);
    if (how == GILX_BLOCK_SLEEP) {
        if (nanosleep(&rel, NULL) != 0 && errno != EINTR) {
            return -1;
        }
        return 0;
    }
    struct pollfd pfd;
    pfd.fd = read_fd;
    pfd.events = POLLIN;
    pfd.revents = 0;
#  if defined(__linux__)
    int rc = ppoll(&pfd, 1, &rel, NULL);
#  else
    /* poll() counts in milliseconds: round up, the caller loops anyway. */
    int rc = poll(&pfd, 1, (int)((ns + 999999) / 1000000));
#  endif
    if (rc < 0 && errno != EINTR) {
        return -1;
    }
    return 0;
#endif
}

/* One release phase, GIL released: block until `next` (monotonic ns), one
 * slice at a time.  Returns 0 when the phase is over (or `cancel` was
 * cancelled: the caller's check raises), 1 when it stopped early with time
 * left (a slice of GILX_BLOCK_SLICE_NS is over, or a signal came) so that
 * the caller can run signal handlers, -1 with errno set on a failure. */
static int
block_until(int how, int read_fd, int64_t next, CancelTokenObject *cancel)
{
    int64_t left = next - gilx_monotonic_ns();
    if (left <= 0 || (cancel != NULL && gilx_atomic_load(&cancel->cancelled))) {
        return 0;
    }
    int64_t slice = left < GILX_BLOCK_SLICE_NS ? left : GILX_BLOCK_SLICE_NS;
    if (block_for(how, read_fd, slice) < 0) {
        return -1;
    }
    /* A poll() that rounds to milliseconds may come back a little early;
     * the loop in the caller takes it round again. */
    return gilx_monotonic_ns() < next ? 1 : 0;
}

static PyObject *
duty_block(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"seconds", "hold", "period", "how", "cancel", NULL};
    double seconds, hold, period;
    const char *how_name;
    PyObject *cancel_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "ddds|$O:duty_block", kwlist,
                                     &seconds, &hold, &period, &how_name,
                                     &cancel_obj)) {
        return NULL;
    }
    if (check_duty_args("duty_block", seconds, hold, period) < 0) {
        return NULL;
    }
    int how;
    if (strcmp(how_name, "sleep") == 0) {
        how = GILX_BLOCK_SLEEP;
    }
    else if (strcmp(how_name, "poll") == 0) {
        how = GILX_BLOCK_POLL;
    }
    else {
        PyErr_Format(PyExc_ValueError,
                     "duty_block: how must be 'sleep' or 'poll', not '%.50s'",
                     how_name);
        return NULL;
    }
    gilx_state *state = gilx_get_state(module);
    CancelTokenObject *cancel;
    if (gilx_parse_cancel(state, cancel_obj, &cancel) < 0) {
        return NULL;
    }
    int fds[2] = {-1, -1};
#if defined(_WIN32)
    if (how == GILX_BLOCK_POLL) {
        PyErr_SetString(PyExc_ValueError,
                        "duty_block: how='poll' needs poll(), not on Windows");
        return NULL;
    }
#else
    /* A pipe nobody writes to: poll() on its read end waits for the whole
     * timeout, the way a thread waits for a socket that has nothing yet. */
    if (how == GILX_BLOCK_POLL && pipe(fds) != 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
#endif
    int64_t period_ns = (int64_t)(period * 1e9);
    int64_t hold_ns = (int64_t)(hold * (double)period_ns);
    int64_t start = gilx_monotonic_ns();
    int64_t end = start + (int64_t)(seconds * 1e9);
    int64_t held_ns = 0;
    int64_t held_since = start;
    PyObject *result = NULL;
    /* The same fixed grid as duty_cycle: a hold phase that starts late (the
     * wake-up, or another thread has the GIL) is shorter. */
    for (int64_t phase = start; phase < end; phase += period_ns) {
        int64_t release_at, next;
        phase_bounds(phase, period_ns, hold_ns, end, &release_at, &next);
        spin_until(release_at);
        while (release_at < next) {
            held_ns += gilx_monotonic_ns() - held_since;
            int more;
            Py_BEGIN_ALLOW_THREADS
            more = block_until(how, fds[0], next, cancel);
            Py_END_ALLOW_THREADS
            held_since = gilx_monotonic_ns();
            if (more < 0) {
                PyErr_SetFromErrno(PyExc_OSError);
                goto done;
            }
            if (more == 0) {
                break;
            }
            if (gilx_check_interrupts(state, cancel) < 0) {
                goto done;
            }
        }
        /* GIL held here: Ctrl-C ends the call within one period. */
        if (gilx_check_interrupts(state, cancel) < 0) {
            goto done;
        }
    }
    int64_t stop = gilx_monotonic_ns();
    held_ns += stop - held_since;
    result = Py_BuildValue("(dd)", (double)held_ns / 1e9,
                           (double)(stop - start) / 1e9);
done:
#if !defined(_WIN32)
    if (fds[0] >= 0) {
        close(fds[0]);
        close(fds[1]);
    }
#endif
    return result;
}

PyDoc_STRVAR(duty_block_doc,
"duty_block($module, seconds, hold, period, how, /, *, cancel=None)\n"
"--\n"
"\n"
"Like duty_cycle, but the release phase of each period blocks in the\n"
"kernel instead of spinning: how='sleep' (nanosleep) or how='poll' (poll()\n"
"on a pipe nobody writes to, with a timeout).  Return (held_seconds,\n"
"total_seconds) as measured by the call itself.  Ctrl-C (main thread) or\n"
"`cancel` stops it within one period or 20 ms, whichever is sooner.");

PyDoc_STRVAR(duty_cycle_doc,
"duty_cycle($module, seconds, hold, period, /)\n"
"--\n"
"\n"
"For `seconds`, hold the GIL for the share `hold` of every `period` (CPU\n"
"work, GIL held) and release it for the rest (CPU work, GIL released).\n"
"Return (held_seconds, total_seconds) as measured by the call itself: the\n"
"ground truth for gilx's hold-fraction estimate.  Ctrl-C ends it within\n"
"about 1 ms of holding the GIL or 10 ms of releasing it, whatever the\n"
"period.");

PyDoc_STRVAR(heartbeat_run_doc,
"heartbeat_run($module, totals, interval_ns, cancel, seed, schedstat_fd, "
"blame=None, /)\n"
"--\n"
"\n"
"The GIL instrument's heartbeat loop; runs until `cancel` (a CancelToken) is\n"
"cancelled or its timeout has passed, adding to `totals` (an array('Q') of\n"
"HEARTBEAT_SLOTS words) with the GIL released.  See gilx.instrument.");

PyDoc_STRVAR(heartbeat_read_doc,
"heartbeat_read($module, totals, /)\n"
"--\n"
"\n"
"The heartbeat's totals, read atomically, as a tuple of ints.");

PyMethodDef gilx_duty_methods[] = {
    {"heartbeat_run", (PyCFunction)(void (*)(void))heartbeat_run, METH_FASTCALL,
     heartbeat_run_doc},
    {"heartbeat_read", heartbeat_read, METH_O, heartbeat_read_doc},
    {"duty_cycle", duty_cycle, METH_VARARGS, duty_cycle_doc},
    {"duty_block", (PyCFunction)(void (*)(void))duty_block,
     METH_VARARGS | METH_KEYWORDS, duty_block_doc},
    {NULL, NULL, 0, NULL}
};
