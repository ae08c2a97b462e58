/*
 * race.c -- the lost update, on purpose.
 *
 * Kept apart from csrc/reference/: this is the one function in gilx that
 * does what an extension must never do, so that UnsafeCounter can show
 * what the GIL prevents.  counters.c builds UnsafeCounter around it (GIL
 * released: threads lose updates) and LockedCounter (the same steps
 * serialised: they do not); tools/tsan.sh checks that every data race
 * ThreadSanitizer reports in gilx is in this function.
 */
#include "gilx.h"

/*
 * THIS IS A DELIBERATE DATA RACE.  It is the seed's picture of two threads
 * doing `refcount++` at once: each increment is a separate load, add and
 * store.  When two threads run this on one counter on two cores, both can
 * load the same old value and both store old + 1: one increment is lost
 * ("Expected 3, Got 2").
 *
 * `volatile` forces the compiler to emit exactly one load and one store per
 * increment (it may not merge them into `value += times`), which keeps the
 * race visible at every step.  The accesses are deliberately not relaxed
 * atomics: an atomic access, even a relaxed one, is by definition not a data
 * race, and ThreadSanitizer would then stay silent.  As a plain access it is
 * undefined behaviour in C11 and TSan reports it, which is the point: the
 * race is the demonstration.
 *
 * A real ob_refcnt updated like this would be corrupted the same way: a lost
 * increment makes the count too low, so the object is freed while still in
 * use (use-after-free, "memory corruption" in the seed); a lost decrement
 * leaks it.  The GIL (or, on free-threaded builds, biased atomic reference
 * counting) is what prevents that in CPython.
 */
void
gilx_plain_increments(volatile uint64_t *value, uint64_t times)
{
    for (uint64_t i = 0; i < times; i++) {
        uint64_t seen = *value;     /* load                           */
        *value = seen + 1;          /* store: may undo another thread's */
    }
}

