/*
 * blame.c -- who holds the GIL while other threads wait (gilx watch --top).
 *
 * Two halves, one on each side of the GIL:
 *
 *   The sampler: a plain POSIX thread with no Python thread state, which
 *     never takes the GIL.  At one random instant in every interval (the
 *     heartbeat's stratified grid) it reads two words of the GIL itself
 *     (blame_gil.c): whether it is locked and the thread state that last
 *     took it.  That address is only ever compared with the addresses of
 *     live thread states, never followed: once the GIL is free it may point
 *     at a thread state already freed.  On Linux it also looks at which of
 *     the program's threads are asleep on the GIL's own mutex or condition
 *     variable (the first argument of the futex call they are blocked in,
 *     /proc/self/task/TID/syscall, readable by a process for its own
 *     threads without ptrace rights): those are waiting for it.  Each
 *     sample goes into a run-length ring under a mutex.
 *
 *     Why a thread of its own and not the heartbeat: the heartbeat is blocked
 *     inside take_gil() for exactly the stretches blame is about, so it
 *     could only look at the instant it knocks, and the knock instants are
 *     not a fair sample of time (they follow the heartbeat's own hand-overs).
 *     The sampler costs the watched program no GIL time at all.
 *
 *   The beat: the heartbeat holds the GIL for an instant at every beat and
 *     then calls gilx_blame_beat().  With the GIL held every other thread is
 *     stopped where it was and the thread list cannot change, so it is safe
 *     to walk it, to match the sampled addresses against it, and to read
 *     each holder's Python stack (where it was when it let the GIL go: a
 *     thread made to drop it is stopped mid-function).  A sampled address
 *     could also be a freed thread state's, since taken by a new one: when
 *     a thread state of the last beat has gone, or one came and went since
 *     (thread state ids are consecutive, so the gap shows), a sample that
 *     matches a new thread state is filed as "unknown" (blame_resolve).
 *
 * Everything is kept as counts of samples: per thread (held, held while
 * another waited, waited, looked at), per (thread, stack) and per (waiter,
 * holder) pair, plus the longest run of waiting samples per thread.
 * blame_take() copies them out for gilx/_blame.py to name and weigh.
 */
#include "harness.h"

#if PY_VERSION_HEX < 0x030B0000
/* PyFrame_GetBack: Python.h only includes it from 3.11 on. */
#  include <frameobject.h>
#endif
#include <string.h>

#if !defined(_WIN32)
#  include <errno.h>
#  include <fcntl.h>
#  include <pthread.h>
#  include <time.h>
#  include <unistd.h>
#  if defined(__linux__)
#    include <sys/prctl.h>
#  endif
#  define GILX_BLAME_POSSIBLE 1
#else
#  define GILX_BLAME_POSSIBLE 0
#endif

#define GILX_BLAME_CAPSULE "gilx._core.blame"

/* Threads whose waiting is looked at (a bit each in a sample).  A program
 * with more threads alive at once has the rest's waits unseen (their holds
 * are still blamed); the report says how many were left out. */
#define GILX_BLAME_SLOTS 64
/* Runs of samples kept between two beats; a beat comes every interval
 * unless a thread keeps the GIL, and consecutive samples with the same
 * holder and waiters share a run, so this lasts seconds of a long hold. */
#define GILX_BLAME_RING 8192
/* Frames kept per stack: the innermost ones. */
#define GILX_BLAME_DEPTH 48
/* Beats a thread not yet in threading._active is looked up again for. */
#define GILX_BLAME_NAME_TRIES 64

#if GILX_BLAME_POSSIBLE

typedef struct {
    uintptr_t holder;       /* thread state address, 0: GIL free */
    uint64_t waiters;       /* bit i: slot i's thread waited for the GIL */
    uint32_t count;         /* samples in this run */
    uint32_t looked;        /* 1: waiters were looked at */
} blame_run;

typedef struct {
    uint64_t id;            /* PyThreadState_GetID: unique, increasing */
    unsigned long ident;    /* threading.get_ident() */
    unsigned long native;   /* the OS thread id, 0 while unknown */
    PyObject *thread;       /* the threading.Thread, or NULL */
    int name_tries;
    uint64_t held;          /* samples at which it held the GIL */
    uint64_t held_waited;   /* ... while another thread waited */
    uint64_t waited;        /* samples at which it waited for it */
    uint64_t looked;        /* samples at which its waiting was looked at */
    uint64_t wait_run;      /* waiting samples in a row, so far */
    uint64_t longest_wait;  /* the longest such run */
} blame_thread;

/* One live thread state, as found by the last walk of the thread list. */
typedef struct {
    uintptr_t address;
    Py_ssize_t index;       /* into threads[] */
} blame_live;

struct gilx_blame {
    gilx_gil_view gil;
    PyInterpreterState *interp;
    int64_t step_ns;
    uint64_t rng;
    pid_t pid;              /* the process it was started in (fork) */

    /* The sampler and what it shares with the beat, under `mutex`. */
    pthread_t sampler;
    int started;
    gilx_atomic_u64 stop;
    pthread_mutex_t mutex;
    blame_run *ring;
    size_t nruns;
    uint64_t dropped;                   /* samples lost to a full ring */
    uint64_t late;                      /* instants labelled after the fact */
    int slot_tid[GILX_BLAME_SLOTS];     /* OS thread ids to look at */
    int nslots;
    uint64_t table_version;             /* bumped when the slots change */

    /* The sampler's own: open /proc files per slot. */
    int slot_fd[GILX_BLAME_SLOTS];
    int fd_tid[GILX_BLAME_SLOTS];
    uint64_t fd_version;

    /* The beat's (GIL held). */
    blame_run *scratch;
    blame_live *live;
    Py_ssize_t nlive, live_cap;
    Py_ssize_t slot_index[GILX_BLAME_SLOTS];   /* slot -> threads[] */
    int left_out;                       /* most threads not given a slot */
    blame_live *prev;                   /* live[] of the walk before */
    Py_ssize_t nprev, prev_cap;
    uint64_t known_id;                  /* the highest id at the last beat */
    uint64_t ghosts;                    /* ids come and gone since then */
    uint64_t walk_newest;               /* the highest id of the last walk */
    uintptr_t self;                     /* the heartbeat's (compared only) */
    blame_thread *threads;
    Py_ssize_t nthreads, threads_cap;
    PyObject *by_id;                    /* dict: thread state id -> index */
    PyObject *stacks;                   /* dict: bytes key -> index */
    uint64_t (*stack_counts)[2];        /* held, held while another waited */
    Py_ssize_t nstacks, stacks_cap;
    PyObject *codes;                    /* dict: address -> code (kept) */
    PyObject *pairs;                    /* dict: waiter<<32 | holder -> i */
    PyObject *released;                 /* list: Threads let go of at a beat */
    uint64_t *pair_counts;
    Py_ssize_t npairs, pairs_cap;
    uint64_t samples, free_samples, unknown, unknown_waited, heartbeat, looked;
    uint64_t errors, beats;
};

/* ------------------------------------------------------------------------
 * The sampler thread: no Python API, no GIL.
 * ------------------------------------------------------------------------ */

/* xorshift64*, as the heartbeat draws its instants (duty.c). */
static uint64_t
blame_random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * UINT64_C(2685821657736338717);
}

static int64_t
blame_offset(uint64_t *rng, int64_t step)
{
    double unit = (double)(blame_random(rng) >> 11)
                  * (1.0 / 9007199254740992.0);
    return (int64_t)(unit * (double)step);
}

static void
blame_sleep_until(int64_t deadline_ns)
{
    int64_t left = deadline_ns - gilx_monotonic_ns();
    while (left > 0) {
        struct timespec rel;
        rel.tv_sec = (time_t)(left / 1000000000);
        rel.tv_nsec = (long)(left % 1000000000);
        if (nanosleep(&rel, NULL) != 0 && errno != EINTR) {
            return;
        }
        left = deadline_ns - gilx_monotonic_ns();
    }
}

/* Whether the thread behind `fd` (/proc/self/task/TID/syscall) is blocked in
 * a call whose first argument lies inside the GIL: a futex wait on its
 * mutex or condition variable, i.e. inside take_gil() (or, 3.10-3.12,
 * drop_gil() waiting for its successor to take it).  A thread that is
 * runnable reads "running" and counts as not waiting: a waiter just woken
 * and not yet given a CPU is missed, which the report says. */
static int
blame_waiting(const gilx_blame *b, int fd)
{
#if defined(__linux__)
    char buf[160];
    ssize_t len = pread(fd, buf, sizeof(buf) - 1, 0);
    if (len <= 0) {
        return 0;
    }
    buf[len] = '\0';
    if (buf[0] < '0' || buf[0] > '9') {
        return 0;                   /* "running" */
    }
    char *p = strchr(buf, ' ');
    if (p == NULL) {
        return 0;
    }
    unsigned long long arg = strtoull(p + 1, NULL, 16);
    return arg >= b->gil.begin && arg < b->gil.end;
#else
    (void)b;
    (void)fd;
    return 0;
#endif
}

/* Open the /proc files of the slots that changed since the sampler last
 * looked (under the mutex: the beat writes slot_tid). */
static void
blame_refresh_fds(gilx_blame *b)
{
    if (b->fd_version == b->table_version) {
        return;
    }
    b->fd_version = b->table_version;
    for (int i = 0; i < GILX_BLAME_SLOTS; i++) {
        int tid = i < b->nslots ? b->slot_tid[i] : 0;
        if (b->fd_tid[i] == tid) {
            continue;
        }
        if (b->slot_fd[i] >= 0) {
            close(b->slot_fd[i]);
            b->slot_fd[i] = -1;
        }
        b->fd_tid[i] = tid;
#if defined(__linux__)
        if (tid > 0) {
            char path[64];
            snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
            b->slot_fd[i] = open(path, O_RDONLY | O_CLOEXEC);
        }
#endif
    }
}

/* Add `count` samples with this holder and these waiters (mutex held). */
static void
blame_record(gilx_blame *b, uintptr_t holder, uint64_t waiters,
             uint32_t looked, uint32_t count)
{
    if (b->nruns > 0) {
        blame_run *last = &b->ring[b->nruns - 1];
        if (last->holder == holder && last->waiters == waiters
            && last->looked == looked && last->count <= UINT32_MAX - count) {
            last->count += count;
            return;
        }
    }
    if (b->nruns == GILX_BLAME_RING) {
        b->dropped += count;
        return;
    }
    blame_run *run = &b->ring[b->nruns++];
    run->holder = holder;
    run->waiters = waiters;
    run->count = count;
    run->looked = looked;
}

static void *
blame_sampler(void *arg)
{
    gilx_blame *b = (gilx_blame *)arg;
#if defined(__linux__) && defined(PR_SET_NAME)
    /* A name for top -H, and for the cost benchmark to find its CPU time. */
    (void)prctl(PR_SET_NAME, "gilx-blame", 0, 0, 0);
#endif
    int64_t origin = gilx_monotonic_ns();
    int64_t stratum = 0;
    int64_t target = origin + blame_offset(&b->rng, b->step_ns);
    while (!gilx_atomic_load(&b->stop)) {
        blame_sleep_until(target);
        int64_t now = gilx_monotonic_ns();
        /* The instants of later strata that are already past (the OS woke
         * the sampler late) are labelled with what it finds now, as the
         * heartbeat labels the instants it slept through.  Skipping them
         * instead would under-sample the holders that keep the CPUs busy,
         * which are the ones that delay the sampler. */
        uint32_t count = 1;
        for (;;) {
            stratum++;
            int64_t instant = origin + stratum * b->step_ns
                              + blame_offset(&b->rng, b->step_ns);
            if (instant >= now || count == UINT32_MAX) {
                target = instant;
                break;
            }
            count++;
        }
        uintptr_t holder = gilx_gil_holder(&b->gil);
        /* The /proc reads are done outside the mutex, which the beat takes
         * with the GIL held: the sampler must never make it wait long. */
        int fds[GILX_BLAME_SLOTS];
        pthread_mutex_lock(&b->mutex);
        blame_refresh_fds(b);
        uint64_t version = b->table_version;
        int nslots = b->nslots;
        memcpy(fds, b->slot_fd, sizeof(int) * (size_t)nslots);
        pthread_mutex_unlock(&b->mutex);
        uint64_t waiters = 0;
        uint32_t looked = 0;
#if defined(__linux__)
        if (holder != 0) {
            looked = 1;
            for (int i = 0; i < nslots; i++) {
                if (fds[i] >= 0 && blame_waiting(b, fds[i])) {
                    waiters |= UINT64_C(1) << i;
                }
            }
        }
#endif
        pthread_mutex_lock(&b->mutex);
        if (version != b->table_version) {
            /* The slots changed meanwhile: the bits name other threads. */
            waiters = 0;
            looked = 0;
        }
        blame_record(b, holder, waiters, looked, count);
        b->late += count - 1;
        pthread_mutex_unlock(&b->mutex);
    }
    return NULL;
}

/* ------------------------------------------------------------------------
 * The beat: GIL held.
 * ------------------------------------------------------------------------ */

/* Grow `*items` (of `size`-byte elements) to hold at least `need`; -1 with
 * MemoryError. */
static int
blame_grow(void **items, Py_ssize_t *cap, Py_ssize_t need, size_t size)
{
    if (need <= *cap) {
        return 0;
    }
    Py_ssize_t cap2 = *cap < 16 ? 16 : *cap * 2;
    while (cap2 < need) {
        cap2 *= 2;
    }
    void *grown = PyMem_Realloc(*items, (size_t)cap2 * size);
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memset((char *)grown + (size_t)*cap * size, 0,
           (size_t)(cap2 - *cap) * size);
    *items = grown;
    *cap = cap2;
    return 0;
}

/* The index of `key` in `dict`, adding it as `next` if new (*added = 1).
 * -1 with an exception on failure. */
static Py_ssize_t
blame_index(PyObject *dict, PyObject *key, Py_ssize_t next, int *added)
{
    *added = 0;
    PyObject *found = PyDict_GetItemWithError(dict, key);   /* borrowed */
    if (found != NULL) {
        return PyLong_AsSsize_t(found);
    }
    if (PyErr_Occurred()) {
        return -1;
    }
    PyObject *value = PyLong_FromSsize_t(next);
    if (value == NULL) {
        return -1;
    }
    int rc = PyDict_SetItem(dict, key, value);
    Py_DECREF(value);
    if (rc < 0) {
        return -1;
    }
    *added = 1;
    return next;
}

/* Look a thread up in threading._active (GIL held): a new reference to its
 * Thread object, or NULL (no exception) if it is not there. */
static PyObject *
blame_thread_object(unsigned long ident)
{
    PyObject *modules = PyImport_GetModuleDict();       /* borrowed */
    PyObject *threading = PyDict_GetItemString(modules, "threading");
    if (threading == NULL) {
        return NULL;
    }
    PyObject *active = PyObject_GetAttrString(threading, "_active");
    if (active == NULL) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *thread = NULL;
    PyObject *key = PyLong_FromUnsignedLong(ident);
    if (key != NULL && PyDict_Check(active)) {
        thread = PyDict_GetItemWithError(active, key);  /* borrowed */
        Py_XINCREF(thread);
    }
    Py_XDECREF(key);
    Py_DECREF(active);
    PyErr_Clear();
    return thread;
}

/* The threads[] index of thread state `ts`, added on first sight. */
static Py_ssize_t
blame_thread_index(gilx_blame *b, PyThreadState *ts)
{
    uint64_t id = PyThreadState_GetID(ts);
    PyObject *key = PyLong_FromUnsignedLongLong(id);
    if (key == NULL) {
        return -1;
    }
    int added;
    Py_ssize_t index = blame_index(b->by_id, key, b->nthreads, &added);
    Py_DECREF(key);
    if (index < 0 || !added) {
        return index;
    }
    if (blame_grow((void **)&b->threads, &b->threads_cap, b->nthreads + 1,
                   sizeof(blame_thread)) < 0) {
        return -1;
    }
    blame_thread *t = &b->threads[b->nthreads++];
    memset(t, 0, sizeof(*t));
    t->id = id;
    t->ident = ts->thread_id;
#if PY_VERSION_HEX >= 0x030B0000
    t->native = ts->native_thread_id;
#endif
    return index;
}

/* Name a thread from threading, the first beats it is seen (it may not be
 * registered yet when its thread state first shows). */
static void
blame_name(blame_thread *t)
{
    if (t->thread != NULL || t->name_tries >= GILX_BLAME_NAME_TRIES) {
        return;
    }
    t->name_tries++;
    t->thread = blame_thread_object(t->ident);
    if (t->thread != NULL && t->native == 0) {
        /* The attribute behind the native_id property: a property would run
         * Python code here, and Python code may hand the GIL over. */
        PyObject *native = PyObject_GetAttrString(t->thread, "_native_id");
        if (native != NULL && PyLong_Check(native)) {
            t->native = PyLong_AsUnsignedLong(native);
        }
        Py_XDECREF(native);
        PyErr_Clear();
    }
}

/* Walk the thread list: live[] gets every thread state but the heartbeat's
 * (the last walk's is kept in prev[]), and b->ghosts the number of thread
 * states made and gone again since the last beat.  Ids are handed out one
 * after the other per interpreter, so an id above the last beat's highest
 * that is not in the list now belonged to a thread state that came and went
 * in between: its address may have been taken since by a new one. */
static int
blame_walk(gilx_blame *b)
{
    if (blame_grow((void **)&b->prev, &b->prev_cap, b->nlive,
                   sizeof(blame_live)) < 0) {
        return -1;
    }
    if (b->nlive > 0) {
        memcpy(b->prev, b->live, (size_t)b->nlive * sizeof(blame_live));
    }
    b->nprev = b->nlive;
    b->nlive = 0;
    uint64_t newest = b->known_id, made = 0;
    for (PyThreadState *ts = PyInterpreterState_ThreadHead(b->interp);
         ts != NULL; ts = PyThreadState_Next(ts)) {
        uint64_t id = PyThreadState_GetID(ts);
        if (id > b->known_id) {
            made++;
            newest = id > newest ? id : newest;
        }
        if ((uintptr_t)ts == b->self) {
            continue;
        }
        /* Most beats find the same threads in the same order: the last
         * walk's entry at this place is reused without a dict look-up when
         * it is the same thread state (address and unique id). */
        Py_ssize_t index = -1;
        if (b->nlive < b->live_cap
            && b->live[b->nlive].address == (uintptr_t)ts) {
            Py_ssize_t last = b->live[b->nlive].index;
            if (last >= 0 && last < b->nthreads
                && b->threads[last].id == PyThreadState_GetID(ts)) {
                index = last;
            }
        }
        if (index < 0) {
            index = blame_thread_index(b, ts);
            if (index < 0) {
                return -1;
            }
        }
        if (blame_grow((void **)&b->live, &b->live_cap, b->nlive + 1,
                       sizeof(blame_live)) < 0) {
            return -1;
        }
        b->live[b->nlive].address = (uintptr_t)ts;
        b->live[b->nlive].index = index;
        b->nlive++;
        blame_thread *t = &b->threads[index];
        /* A thread state is made by the thread that starts the new one and
         * carries that thread's ident until the new thread binds it: a
         * name looked up before then is its parent's.  So the ident is read
         * at every walk, and a change means: look the name up again. */
        if (t->ident != ts->thread_id) {
            t->ident = ts->thread_id;
            if (t->thread != NULL) {
                /* Released later, outside the beat: a Thread subclass's
                 * __del__ must not run here. */
                if (PyList_Append(b->released, t->thread) < 0) {
                    return -1;
                }
                Py_CLEAR(t->thread);
            }
            t->name_tries = 0;
            t->native = 0;
        }
#if PY_VERSION_HEX >= 0x030B0000
        t->native = ts->native_thread_id;
#endif
        blame_name(t);
    }
    b->ghosts = newest - b->known_id - made;
    b->walk_newest = newest;
    return 0;
}

/* The threads[] index of the live thread state at `address`, or -1 if
 * there is none or the sample may have been another thread's: the address
 * of a thread state alive at the last beat and now can only be its own, and
 * so can a new one's, unless it was a thread state's at the last beat that
 * has gone since, or some thread state came and went in between. */
static Py_ssize_t
blame_resolve(const gilx_blame *b, uintptr_t address)
{
    for (Py_ssize_t i = 0; i < b->nlive; i++) {
        if (b->live[i].address != address) {
            continue;
        }
        Py_ssize_t index = b->live[i].index;
        if (b->threads[index].id <= b->known_id) {
            return index;
        }
        if (b->ghosts != 0) {
            return -1;
        }
        for (Py_ssize_t j = 0; j < b->nprev; j++) {
            if (b->prev[j].address == address) {
                return -1;
            }
        }
        return index;
    }
    return -1;
}

/* The stack of thread state `ts` as a key: its threads[] index, then
 * (code address, line) per frame, innermost first.  New reference. */
static PyObject *
blame_stack_key(PyThreadState *ts, Py_ssize_t index)
{
    uint64_t words[1 + 2 * GILX_BLAME_DEPTH];
    Py_ssize_t n = 0;
    words[n++] = (uint64_t)index;
    PyFrameObject *frame = PyThreadState_GetFrame(ts);     /* new or NULL */
    int depth = 0;
    while (frame != NULL && depth < GILX_BLAME_DEPTH) {
        PyCodeObject *code = PyFrame_GetCode(frame);        /* new */
        words[n++] = (uint64_t)(uintptr_t)code;
        words[n++] = (uint64_t)(int64_t)PyFrame_GetLineNumber(frame);
        depth++;
        Py_DECREF(code);    /* its frame keeps it alive through the beat */
        PyFrameObject *back = PyFrame_GetBack(frame);
        Py_DECREF(frame);
        frame = back;
    }
    Py_XDECREF(frame);
    return PyBytes_FromStringAndSize((const char *)words,
                                     (Py_ssize_t)(n * sizeof(uint64_t)));
}

/* A new stack's code objects, kept alive in b->codes from now on, so that
 * the address in a key stays that code object's for as long as the key
 * exists.  (A key found again names the same code objects: they are alive,
 * so their addresses cannot have been reused.)  The frames that hold them
 * are still there: the beat has run no Python code since reading them. */
static int
blame_keep_codes(gilx_blame *b, PyObject *key)
{
    const uint64_t *words = (const uint64_t *)PyBytes_AS_STRING(key);
    Py_ssize_t nwords = PyBytes_GET_SIZE(key) / (Py_ssize_t)sizeof(uint64_t);
    for (Py_ssize_t f = 1; f + 1 < nwords; f += 2) {
        PyObject *code = (PyObject *)(uintptr_t)words[f];
        PyObject *address = PyLong_FromVoidPtr(code);
        if (address == NULL) {
            return -1;
        }
        /* borrowed */
        PyObject *kept = PyDict_SetDefault(b->codes, address, code);
        Py_DECREF(address);
        if (kept == NULL) {
            return -1;
        }
    }
    return 0;
}

/* The thread state at `address` if it is in the interpreter's list now,
 * else NULL.  The list itself is walked, not live[]: the only thread state
 * ever followed is one that is alive at this very moment. */
static PyThreadState *
blame_state_at(const gilx_blame *b, uintptr_t address)
{
    for (PyThreadState *ts = PyInterpreterState_ThreadHead(b->interp);
         ts != NULL; ts = PyThreadState_Next(ts)) {
        if ((uintptr_t)ts == address) {
            return ts;
        }
    }
    return NULL;
}

static int
blame_add_pair(gilx_blame *b, Py_ssize_t waiter, Py_ssize_t holder,
               uint64_t count)
{
    PyObject *key = PyLong_FromUnsignedLongLong(
        ((unsigned long long)(waiter + 1) << 32)
        | (unsigned long long)(holder + 1));
    if (key == NULL) {
        return -1;
    }
    int added;
    Py_ssize_t index = blame_index(b->pairs, key, b->npairs, &added);
    Py_DECREF(key);
    if (index < 0) {
        return -1;
    }
    if (added) {
        if (blame_grow((void **)&b->pair_counts, &b->pairs_cap, b->npairs + 1,
                       sizeof(uint64_t)) < 0) {
            return -1;
        }
        b->npairs++;
    }
    b->pair_counts[index] += count;
    return 0;
}

/* File one run of samples.  `stack` is the holder's stack index or -1. */
static int
blame_file(gilx_blame *b, const blame_run *run, Py_ssize_t holder,
           Py_ssize_t stack)
{
    uint64_t count = run->count;
    uint64_t others = run->waiters;
    if (holder < 0 && others != 0) {
        b->unknown_waited += count;
    }
    if (holder >= 0) {
        for (int i = 0; i < b->nslots; i++) {
            if (b->slot_index[i] == holder) {
                others &= ~(UINT64_C(1) << i);     /* not waiting on itself */
            }
        }
        b->threads[holder].held += count;
        if (others != 0) {
            b->threads[holder].held_waited += count;
        }
        if (stack >= 0) {
            b->stack_counts[stack][0] += count;
            b->stack_counts[stack][1] += others != 0 ? count : 0;
        }
    }
    if (!run->looked) {
        return 0;
    }
    b->looked += count;
    for (int i = 0; i < b->nslots; i++) {
        blame_thread *t = &b->threads[b->slot_index[i]];
        t->looked += count;
        if (others & (UINT64_C(1) << i)) {
            t->waited += count;
            t->wait_run += count;
            if (t->wait_run > t->longest_wait) {
                t->longest_wait = t->wait_run;
            }
            if (blame_add_pair(b, b->slot_index[i], holder, count) < 0) {
                return -1;
            }
        }
        else {
            t->wait_run = 0;
        }
    }
    return 0;
}

/* File the runs the sampler left since the last beat. */
static int
blame_drain(gilx_blame *b, const blame_run *runs, size_t nruns)
{
    /* One stack per holder per beat: where it stands now, stopped. */
    Py_ssize_t seen_holder[8];
    Py_ssize_t seen_stack[8];
    int nseen = 0;
    for (size_t r = 0; r < nruns; r++) {
        const blame_run *run = &runs[r];
        b->samples += run->count;
        if (run->holder == 0) {
            b->free_samples += run->count;
            continue;
        }
        Py_ssize_t holder = blame_resolve(b, run->holder);
        if (holder < 0) {
            if (run->holder == b->self) {
                b->heartbeat += run->count;
                continue;
            }
            b->unknown += run->count;
        }
        Py_ssize_t stack = -1;
        if (holder >= 0) {
            for (int i = 0; i < nseen; i++) {
                if (seen_holder[i] == holder) {
                    stack = seen_stack[i];
                }
            }
            PyThreadState *ts = NULL;
            if (stack < 0) {
                ts = blame_state_at(b, run->holder);
            }
            if (stack < 0 && ts != NULL) {
                PyObject *key = blame_stack_key(ts, holder);
                if (key == NULL) {
                    return -1;
                }
                int added;
                stack = blame_index(b->stacks, key, b->nstacks, &added);
                if (stack >= 0 && added && blame_keep_codes(b, key) < 0) {
                    /* Not filed: a key whose code objects are not kept
                     * must not stay (its index is not counted either).
                     * Keeping them fails only for want of memory. */
                    PyErr_Clear();
                    if (PyDict_DelItem(b->stacks, key) < 0) {
                        PyErr_Clear();
                    }
                    PyErr_NoMemory();
                    stack = -1;
                }
                Py_DECREF(key);
                if (stack < 0) {
                    return -1;
                }
                if (added) {
                    if (blame_grow((void **)&b->stack_counts, &b->stacks_cap,
                                   b->nstacks + 1, sizeof(uint64_t[2])) < 0) {
                        return -1;
                    }
                    b->nstacks++;
                }
                if (nseen < 8) {
                    seen_holder[nseen] = holder;
                    seen_stack[nseen] = stack;
                    nseen++;
                }
            }
        }
        if (blame_file(b, run, holder, stack) < 0) {
            return -1;
        }
    }
    return 0;
}

/* Give the sampler the threads to look at: every live one, up to the slots. */
static void
blame_set_slots(gilx_blame *b)
{
    int tids[GILX_BLAME_SLOTS];
    Py_ssize_t index[GILX_BLAME_SLOTS];
    int n = 0;
    for (Py_ssize_t i = 0; i < b->nlive && n < GILX_BLAME_SLOTS; i++) {
        blame_thread *t = &b->threads[b->live[i].index];
        if (t->native != 0 && t->native <= INT_MAX) {
            tids[n] = (int)t->native;
            index[n] = b->live[i].index;
            n++;
        }
    }
    if (b->nlive - n > b->left_out) {
        b->left_out = (int)(b->nlive - n);
    }
    int same = n == b->nslots;
    for (int i = 0; same && i < n; i++) {
        same = tids[i] == b->slot_tid[i];
    }
    if (!same) {
        memcpy(b->slot_tid, tids, sizeof(int) * (size_t)n);
        b->nslots = n;
        b->table_version++;
    }
    memcpy(b->slot_index, index, sizeof(Py_ssize_t) * (size_t)n);
}

static void
blame_beat(gilx_blame *b)
{
    if (b->pid != getpid()) {
        return;         /* a forked child: the sampler is not here */
    }
    /* Take the runs out; the slots they refer to are still those of the
     * last beat, so they are filed before the slots change. */
    pthread_mutex_lock(&b->mutex);
    size_t nruns = b->nruns;
    memcpy(b->scratch, b->ring, nruns * sizeof(blame_run));
    b->nruns = 0;
    pthread_mutex_unlock(&b->mutex);
    b->beats++;
    /* No collection during the beat: on 3.10 and 3.11 allocating a frame
     * object may start one, and a finalizer would run Python code here,
     * which may hand the GIL over while thread states are being looked at. */
    int gc_was_on = PyGC_Disable();
    if (blame_walk(b) < 0 || blame_drain(b, b->scratch, nruns) < 0) {
        /* Out of memory: the beat's samples are lost, the watched program
         * and the heartbeat go on.  blame_take() reports how many beats. */
        PyErr_Clear();
        b->errors++;
    }
    if (gc_was_on) {
        PyGC_Enable();
    }
    if (b->walk_newest > b->known_id) {
        b->known_id = b->walk_newest;
    }
    pthread_mutex_lock(&b->mutex);
    blame_set_slots(b);
    pthread_mutex_unlock(&b->mutex);
}

void
gilx_blame_beat(gilx_blame *b)
{
    /* The heartbeat's own holds (an instant per beat) are not the
     * program's: its thread is left out of the walk and counted apart. */
    b->self = (uintptr_t)PyThreadState_Get();
    blame_beat(b);
}

/* ------------------------------------------------------------------------
 * The capsule and its functions.
 * ------------------------------------------------------------------------ */

static void
blame_join(gilx_blame *b)
{
    if (!b->started) {
        return;
    }
    b->started = 0;
    if (b->pid != getpid()) {
        return;         /* the sampler thread does not exist in a fork */
    }
    gilx_atomic_store(&b->stop, 1);
    /* The sampler never takes the GIL, so it may be joined with it held. */
    pthread_join(b->sampler, NULL);
}

static void
blame_free(gilx_blame *b)
{
    blame_join(b);
    for (int i = 0; i < GILX_BLAME_SLOTS; i++) {
        if (b->slot_fd[i] >= 0) {
            close(b->slot_fd[i]);
        }
    }
    for (Py_ssize_t i = 0; i < b->nthreads; i++) {
        Py_XDECREF(b->threads[i].thread);
    }
    Py_XDECREF(b->by_id);
    Py_XDECREF(b->stacks);
    Py_XDECREF(b->codes);
    Py_XDECREF(b->pairs);
    Py_XDECREF(b->released);
    PyMem_Free(b->threads);
    PyMem_Free(b->live);
    PyMem_Free(b->prev);
    PyMem_Free(b->stack_counts);
    PyMem_Free(b->pair_counts);
    PyMem_Free(b->ring);
    PyMem_Free(b->scratch);
    if (b->pid == getpid()) {
        pthread_mutex_destroy(&b->mutex);
    }
    PyMem_Free(b);
}

static void
blame_capsule_free(PyObject *capsule)
{
    gilx_blame *b = (gilx_blame *)PyCapsule_GetPointer(capsule,
                                                       GILX_BLAME_CAPSULE);
    if (b != NULL) {
        blame_free(b);
    }
    else {
        PyErr_Clear();
    }
}

gilx_blame *
gilx_blame_from(PyObject *obj)
{
    if (!PyCapsule_IsValid(obj, GILX_BLAME_CAPSULE)) {
        PyErr_SetString(PyExc_TypeError,
                        "expected a blame recorder from blame_new()");
        return NULL;
    }
    return (gilx_blame *)PyCapsule_GetPointer(obj, GILX_BLAME_CAPSULE);
}

static PyObject *
blame_new(PyObject *Py_UNUSED(module), PyObject *args)
{
    long long step;
    unsigned long long seed;
    if (!PyArg_ParseTuple(args, "LK:blame_new", &step, &seed)) {
        return NULL;
    }
    if (step < 1000 || step > (long long)1000000000) {
        PyErr_SetString(PyExc_ValueError,
                        "blame_new: interval_ns must be >= 1000 and <= 1 s");
        return NULL;
    }
    gilx_gil_view view;
    PyInterpreterState *interp = PyInterpreterState_Get();
    if (gilx_gil_locate(interp, &view) < 0) {
#ifdef Py_GIL_DISABLED
        PyErr_SetString(PyExc_NotImplementedError,
                        "a free-threaded build: blame does not read the "
                        "GIL that PYTHON_GIL=1 turns on there");
#else
        PyErr_SetString(PyExc_NotImplementedError,
                        "blame needs a GIL build whose GIL this build of "
                        "gilx can find (CPython 3.10+, POSIX, its internal "
                        "headers)");
#endif
        return NULL;
    }
    gilx_blame *b = PyMem_Calloc(1, sizeof(gilx_blame));
    if (b == NULL) {
        return PyErr_NoMemory();
    }
    b->gil = view;
    b->interp = interp;
    b->step_ns = (int64_t)step;
    b->rng = (uint64_t)seed | 1;
    b->pid = getpid();
    pthread_mutex_init(&b->mutex, NULL);
    for (int i = 0; i < GILX_BLAME_SLOTS; i++) {
        b->slot_fd[i] = -1;
    }
    b->ring = PyMem_Calloc(GILX_BLAME_RING, sizeof(blame_run));
    b->scratch = PyMem_Calloc(GILX_BLAME_RING, sizeof(blame_run));
    b->by_id = PyDict_New();
    b->stacks = PyDict_New();
    b->codes = PyDict_New();
    b->pairs = PyDict_New();
    b->released = PyList_New(0);
    PyObject *capsule = NULL;
    if (b->ring == NULL || b->scratch == NULL) {
        PyErr_NoMemory();
    }
    else if (b->by_id != NULL && b->stacks != NULL && b->codes != NULL
             && b->pairs != NULL && b->released != NULL) {
        capsule = PyCapsule_New(b, GILX_BLAME_CAPSULE, blame_capsule_free);
    }
    if (capsule == NULL) {
        blame_free(b);
    }
    return capsule;
}

static PyObject *
blame_start(PyObject *Py_UNUSED(module), PyObject *obj)
{
    gilx_blame *b = gilx_blame_from(obj);
    if (b == NULL) {
        return NULL;
    }
    if (b->started) {
        PyErr_SetString(PyExc_RuntimeError, "blame: already started");
        return NULL;
    }
    /* Thread states alive now are known: only one made later can be a
     * reused address (see blame_resolve). */
    b->self = 0;
    if (blame_walk(b) < 0) {
        return NULL;
    }
    b->known_id = b->walk_newest;
    pthread_mutex_lock(&b->mutex);
    blame_set_slots(b);
    b->nruns = 0;
    pthread_mutex_unlock(&b->mutex);
    gilx_atomic_store(&b->stop, 0);
    b->pid = getpid();
    int rc = pthread_create(&b->sampler, NULL, blame_sampler, b);
    if (rc != 0) {
        errno = rc;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    b->started = 1;
    Py_RETURN_NONE;
}

static PyObject *
blame_stop(PyObject *Py_UNUSED(module), PyObject *obj)
{
    gilx_blame *b = gilx_blame_from(obj);
    if (b == NULL) {
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    /* Joined with the GIL released all the same: it may be in a read. */
    if (b->started && b->pid == getpid()) {
        gilx_atomic_store(&b->stop, 1);
        pthread_join(b->sampler, NULL);
    }
    Py_END_ALLOW_THREADS
    b->started = 0;
    /* What it sampled after the last beat is filed now, by this thread
     * (the heartbeat, stopped first, is still left out by its address). */
    blame_beat(b);
    Py_RETURN_NONE;
}

/* A list of the threads: (ident, native_id, thread or None, held,
 * held_waited, waited, looked, longest_wait). */
static PyObject *
blame_threads_out(gilx_blame *b)
{
    PyObject *list = PyList_New(b->nthreads);
    if (list == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < b->nthreads; i++) {
        blame_thread *t = &b->threads[i];
        PyObject *item = Py_BuildValue(
            "(kkOKKKKK)", t->ident, t->native,
            t->thread != NULL ? t->thread : Py_None,
            (unsigned long long)t->held, (unsigned long long)t->held_waited,
            (unsigned long long)t->waited, (unsigned long long)t->looked,
            (unsigned long long)t->longest_wait);
        if (item == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, item);
    }
    return list;
}

/* A list of (thread index, ((code, line), ...), held, held_waited). */
static PyObject *
blame_stacks_out(gilx_blame *b)
{
    PyObject *list = PyList_New(0);
    if (list == NULL) {
        return NULL;
    }
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(b->stacks, &pos, &key, &value)) {
        Py_ssize_t index = PyLong_AsSsize_t(value);
        const uint64_t *words = (const uint64_t *)PyBytes_AS_STRING(key);
        Py_ssize_t nwords = PyBytes_GET_SIZE(key)
                            / (Py_ssize_t)sizeof(uint64_t);
        PyObject *frames = PyTuple_New((nwords - 1) / 2);
        if (frames == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        for (Py_ssize_t f = 0; f < (nwords - 1) / 2; f++) {
            PyObject *address = PyLong_FromVoidPtr(
                (void *)(uintptr_t)words[1 + 2 * f]);
            PyObject *code = NULL;      /* borrowed */
            if (address != NULL) {
                code = PyDict_GetItemWithError(b->codes, address);
            }
            Py_XDECREF(address);
            PyObject *pair = code != NULL
                ? Py_BuildValue("(OL)", code,
                                (long long)(int64_t)words[2 + 2 * f])
                : NULL;
            if (pair == NULL) {
                if (!PyErr_Occurred()) {
                    PyErr_SetString(PyExc_RuntimeError,
                                    "blame: lost a code object");
                }
                Py_DECREF(frames);
                Py_DECREF(list);
                return NULL;
            }
            PyTuple_SET_ITEM(frames, f, pair);
        }
        unsigned long long held = b->stack_counts[index][0];
        unsigned long long waited = b->stack_counts[index][1];
        PyObject *item = Py_BuildValue("(nNKK)", (Py_ssize_t)words[0],
                                       frames, held, waited);
        if (item == NULL || PyList_Append(list, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(item);
    }
    return list;
}

/* A list of (waiter index, holder index or -1, samples). */
static PyObject *
blame_pairs_out(gilx_blame *b)
{
    PyObject *list = PyList_New(0);
    if (list == NULL) {
        return NULL;
    }
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(b->pairs, &pos, &key, &value)) {
        unsigned long long packed = PyLong_AsUnsignedLongLong(key);
        Py_ssize_t index = PyLong_AsSsize_t(value);
        unsigned long long count = b->pair_counts[index];
        PyObject *item = Py_BuildValue("(nnK)",
                                       (Py_ssize_t)(packed >> 32) - 1,
                                       (Py_ssize_t)(packed & 0xffffffffu) - 1,
                                       count);
        if (item == NULL || PyList_Append(list, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(item);
    }
    return list;
}

static PyObject *
blame_take(PyObject *Py_UNUSED(module), PyObject *obj)
{
    gilx_blame *b = gilx_blame_from(obj);
    if (b == NULL) {
        return NULL;
    }
    PyObject *threads = blame_threads_out(b);
    PyObject *stacks = threads != NULL ? blame_stacks_out(b) : NULL;
    PyObject *pairs = stacks != NULL ? blame_pairs_out(b) : NULL;
    if (pairs == NULL) {
        Py_XDECREF(threads);
        Py_XDECREF(stacks);
        return NULL;
    }
    unsigned long long dropped = 0, late = 0;
    if (b->pid == getpid()) {   /* in a fork the mutex may be held for ever */
        pthread_mutex_lock(&b->mutex);
        dropped = b->dropped;
        late = b->late;
        pthread_mutex_unlock(&b->mutex);
    }
    return Py_BuildValue(
        "{sNsNsNsKsKsKsKsKsKsKsKsKsKsisK}",
        "threads", threads, "stacks", stacks, "pairs", pairs,
        "samples", (unsigned long long)b->samples,
        "free", (unsigned long long)b->free_samples,
        "unknown", (unsigned long long)b->unknown,
        "unknown_waited", (unsigned long long)b->unknown_waited,
        "heartbeat", (unsigned long long)b->heartbeat,
        "looked", (unsigned long long)b->looked,
        "errors", (unsigned long long)b->errors,
        "beats", (unsigned long long)b->beats,
        "dropped", dropped,
        "late", late,
        "left_out", b->left_out,
        "interval_ns", (unsigned long long)b->step_ns);
}

#else   /* !GILX_BLAME_POSSIBLE */

gilx_blame *
gilx_blame_from(PyObject *Py_UNUSED(obj))
{
    PyErr_SetString(PyExc_NotImplementedError, "blame needs POSIX threads");
    return NULL;
}

void
gilx_blame_beat(gilx_blame *Py_UNUSED(b))
{
}

static PyObject *
blame_unavailable(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(args))
{
    PyErr_SetString(PyExc_NotImplementedError, "blame needs POSIX threads");
    return NULL;
}
#  define blame_new blame_unavailable
#  define blame_start blame_unavailable
#  define blame_stop blame_unavailable
#  define blame_take blame_unavailable

#endif

PyDoc_STRVAR(blame_new_doc,
"blame_new($module, interval_ns, seed, /)\n"
"--\n"
"\n"
"A blame recorder (a capsule) sampling the GIL's holder once per interval;\n"
"NotImplementedError where this build cannot find the GIL.  See gilx._blame.");

PyDoc_STRVAR(blame_start_doc,
"blame_start($module, blame, /)\n"
"--\n"
"\n"
"Start the recorder's sampler thread (no Python state, never takes the GIL).");

PyDoc_STRVAR(blame_stop_doc,
"blame_stop($module, blame, /)\n"
"--\n"
"\n"
"Stop the sampler and file what it saw since the last heartbeat.");

PyDoc_STRVAR(blame_take_doc,
"blame_take($module, blame, /)\n"
"--\n"
"\n"
"The counts so far, as a dict (threads, stacks, pairs, totals).");

PyMethodDef gilx_blame_methods[] = {
    {"blame_new", blame_new, METH_VARARGS, blame_new_doc},
    {"blame_start", blame_start, METH_O, blame_start_doc},
    {"blame_stop", blame_stop, METH_O, blame_stop_doc},
    {"blame_take", blame_take, METH_O, blame_take_doc},
    {NULL, NULL, 0, NULL}
};
