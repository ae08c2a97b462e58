/*
 * atomics.h -- the portable 64-bit atomics of csrc/, in one short header.
 *
 * C11 <stdatomic.h> where the compiler has it; MSVC's Interlocked
 * intrinsics otherwise (MSVC only ships stdatomic.h behind a flag).  Every
 * atomic in csrc/ goes through these helpers, so that no file needs an MSVC
 * branch of its own.  Part of the copy unit (policy.h, atomics.h,
 * release.c): the cancel flag a long call reads is one of these.
 *
 * The order each one gives is in its name or, for the plain ones, relaxed:
 *   - relaxed (add_one, fetch_add, load, store, exchange): a counter or a
 *     flag that publishes no other data.  A counter's reader joins the
 *     threads first, and the join supplies the happens-before; a flag that
 *     guards data is backed by a lock that orders that data (lockdemo.c).
 *   - add_one_release / load_acquire / store_release: a StartGate, where
 *     arriving must publish what the arriving thread did before, to every
 *     thread that sees the gate open (gate.c); LockedCounter's ticket lock,
 *     whose holder publishes its plain increments to the next (counters.c).
 * MSVC's Interlocked functions are full barriers, at least as strong as any
 * of these on every architecture it targets.
 *
 * 32-bit x86 MSVC has _InterlockedCompareExchange64 but not the other 64-bit
 * intrinsics used here (_InterlockedExchangeAdd64, _InterlockedOr64,
 * _InterlockedExchange64), so every helper is a compare-and-swap loop there,
 * and wherever the target is not x64 or ARM64: the very test and loop of
 * CPython's own Include/cpython/pyatomic_msc.h (_Py_atomic_add_int64).
 */
#ifndef GILX_ATOMICS_H
#define GILX_ATOMICS_H

#include <stdint.h>

#if defined(_MSC_VER) && !defined(__clang__)
#  include <intrin.h>
typedef volatile int64_t gilx_atomic_u64;
#  if defined(_M_X64) || defined(_M_ARM64)
#    define GILX_MSC_ADD(p, v) _InterlockedExchangeAdd64((p), (v))
#    define GILX_MSC_XCHG(p, v) _InterlockedExchange64((p), (v))
#    define GILX_MSC_LOAD(p) _InterlockedOr64((p), 0)
#  else
/* Returns the value it replaced, as the x64 intrinsics do.  The first read
 * may be torn (two 32-bit loads); the compare-and-swap then fails and
 * returns the whole value, and the loop goes round once more. */
static inline int64_t
gilx_msc_cas_loop(gilx_atomic_u64 *p, int op, int64_t v)
{
    int64_t old = *p;
    for (;;) {
        /* 0: exchange, 1: add (in unsigned arithmetic, which wraps) */
        int64_t want = op == 0 ? v : (int64_t)((uint64_t)old + (uint64_t)v);
        int64_t seen = _InterlockedCompareExchange64(p, want, old);
        if (seen == old) {
            return old;
        }
        old = seen;
    }
}
#    define GILX_MSC_ADD(p, v) gilx_msc_cas_loop((p), 1, (v))
#    define GILX_MSC_XCHG(p, v) gilx_msc_cas_loop((p), 0, (v))
#    define GILX_MSC_LOAD(p) _InterlockedCompareExchange64((p), 0, 0)
#  endif
static inline void
gilx_atomic_add_one(gilx_atomic_u64 *p)
{
    (void)GILX_MSC_ADD(p, 1);
}
static inline void
gilx_atomic_add_one_release(gilx_atomic_u64 *p)
{
    (void)GILX_MSC_ADD(p, 1);
}
static inline uint64_t
gilx_atomic_fetch_add(gilx_atomic_u64 *p, uint64_t v)
{
    return (uint64_t)GILX_MSC_ADD(p, (int64_t)v);
}
static inline uint64_t
gilx_atomic_load(gilx_atomic_u64 *p)
{
    return (uint64_t)GILX_MSC_LOAD(p);
}
static inline uint64_t
gilx_atomic_load_acquire(gilx_atomic_u64 *p)
{
    return (uint64_t)GILX_MSC_LOAD(p);
}
static inline void
gilx_atomic_store(gilx_atomic_u64 *p, uint64_t v)
{
    (void)GILX_MSC_XCHG(p, (int64_t)v);
}
static inline void
gilx_atomic_store_release(gilx_atomic_u64 *p, uint64_t v)
{
    (void)GILX_MSC_XCHG(p, (int64_t)v);
}
static inline uint64_t
gilx_atomic_exchange(gilx_atomic_u64 *p, uint64_t v)
{
    return (uint64_t)GILX_MSC_XCHG(p, (int64_t)v);
}
#else
#  include <stdatomic.h>
typedef _Atomic uint64_t gilx_atomic_u64;
static inline void
gilx_atomic_add_one(gilx_atomic_u64 *p)
{
    atomic_fetch_add_explicit(p, 1, memory_order_relaxed);
}
static inline void
gilx_atomic_add_one_release(gilx_atomic_u64 *p)
{
    atomic_fetch_add_explicit(p, 1, memory_order_release);
}
/* Returns the value before the add. */
static inline uint64_t
gilx_atomic_fetch_add(gilx_atomic_u64 *p, uint64_t v)
{
    return atomic_fetch_add_explicit(p, v, memory_order_relaxed);
}
static inline uint64_t
gilx_atomic_load(gilx_atomic_u64 *p)
{
    return atomic_load_explicit(p, memory_order_relaxed);
}
static inline uint64_t
gilx_atomic_load_acquire(gilx_atomic_u64 *p)
{
    return atomic_load_explicit(p, memory_order_acquire);
}
static inline void
gilx_atomic_store(gilx_atomic_u64 *p, uint64_t v)
{
    atomic_store_explicit(p, v, memory_order_relaxed);
}
static inline void
gilx_atomic_store_release(gilx_atomic_u64 *p, uint64_t v)
{
    atomic_store_explicit(p, v, memory_order_release);
}
/* Returns the value it replaced.  One indivisible read-modify-write,
 * whatever its memory order: of several threads exchanging a 1 for a 0 at
 * once, exactly one gets the 1. */
static inline uint64_t
gilx_atomic_exchange(gilx_atomic_u64 *p, uint64_t v)
{
    return atomic_exchange_explicit(p, v, memory_order_relaxed);
}
#endif

#endif /* GILX_ATOMICS_H */
