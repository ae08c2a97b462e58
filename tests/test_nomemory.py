"""Allocation failure: every gilx call works or raises MemoryError, never crashes or leaks.

``_testcapi.set_nomemory(start)`` makes every allocation from the start-th on
fail.  For each call and each ``start`` from 0 up, a child process runs the
call under failing allocations and checks that it either returned the right
result or raised MemoryError (a documented exception whose creation itself
failed is MemoryError too), and that the reference counts of the arguments
and of gilx's types are the same afterwards.  A crash kills the child and
fails the test.

gilx.race() is not in the list: it is Python code on top of ``threading``,
whose own Event.set() / Thread.start() are not written to survive failing
allocations (a worker that cannot signal it has finished leaves the caller
waiting); its C parts (the counters, StartGate, CancelToken) are.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

try:
    import _testcapi
except ImportError:
    _testcapi = None

pytestmark = pytest.mark.skipif(
    _testcapi is None or not hasattr(_testcapi, "set_nomemory"),
    reason="needs _testcapi.set_nomemory (a CPython built with its test modules)",
)

CHILD = textwrap.dedent(
    """
    import _imp, gc, importlib.util, sys
    import _testcapi
    import gilx
    from gilx import _core

    SPEC = importlib.util.find_spec("gilx._core")

    def fresh_module():
        # A second module object from the same extension: PyInit, then the
        # Py_mod_exec slot, whose every error path failing allocations reach.
        # (_imp directly: importlib's Python half loops under failing
        # allocations in module_from_spec, which is CPython's, not ours.)
        module = _imp.create_dynamic(SPEC)
        _imp.exec_dynamic(module)
        return module

    arg = int("123456789012")            # not a cached small int
    small = int("1000")
    buf = bytearray(b"\\x01" * 64)
    gate = _core.StartGate(1)
    token = gilx.CancelToken()
    counter = {counter}()

    CALLS = {{
        "count_gil": (lambda: gilx.count_gil(small, cancel=token), 1000),
        "count_nogil": (lambda: gilx.count_nogil(small), 1000),
        "count_auto": (lambda: _core.count_auto(small), 1000),
        "count_gil_error": (lambda: gilx.count_gil(-arg), ValueError),
        "count_nogil_overflow": (lambda: gilx.count_nogil(arg ** 3), OverflowError),
        "count_nogil_type": (lambda: gilx.count_nogil(1.5), TypeError),
        "stream_sum": (lambda: _core.stream_sum(buf, 2, cancel=token),
                       2 * 8 * 0x0101010101010101),
        "stream_sum_error": (lambda: _core.stream_sum(None), TypeError),
        "counter_new": (lambda: type({counter}()).__name__, "{name}"),
        "increment": (lambda: counter.increment(small, start=gate, cancel=token), None),
        "increment_error": (lambda: counter.increment(small, start=3), TypeError),
        "value": (lambda: counter.value >= 0, True),
        "repr": (lambda: repr(counter).startswith("gilx."), True),
        "gate_new": (lambda: _core.StartGate(2, timeout=1.0).parties, 2),
        "gate_error": (lambda: _core.StartGate(0), ValueError),
        "token_new": (lambda: gilx.CancelToken(timeout=5).cancelled, False),
        "cancelled": (lambda: gilx.count_nogil(small, cancel=CANCELLED), gilx.Cancelled),
        "module_exec": (lambda: fresh_module().AtomicCounter().value, 0),
    }}
    CANCELLED = gilx.CancelToken()
    CANCELLED.cancel()

    watched = [arg, small, buf, gate, token, counter, CANCELLED, {counter},
               _core.StartGate, gilx.CancelToken, gilx.Cancelled]

    def refcounts():
        gc.collect()
        return [sys.getrefcount(o) for o in watched]

    name = sys.argv[1]
    call, want = CALLS[name]
    for _ in range(2):          # warm caches (method lookups, interned names)
        try:
            call()
        except BaseException:
            pass
    before = refcounts()
    outcomes = {{"ok": 0, "MemoryError": 0, "documented": 0}}
    def attempt(start, set_nomemory=_testcapi.set_nomemory,
                remove=_testcapi.remove_mem_hooks):
        # A function, so that everything between the two hooks uses fast
        # locals: a store into module globals may itself allocate.
        result = error = None
        set_nomemory(start, 0)
        try:
            result = call()
        except BaseException as exc:
            error = exc
        finally:
            remove()  # until this, every allocation fails
        return result, error

    for start in range(0, {starts}):
        result, error = attempt(start)
        if isinstance(error, MemoryError):
            outcomes["MemoryError"] += 1
        elif error is not None:
            if not (isinstance(want, type) and isinstance(error, want)):
                print(f"{{name}}: start={{start}}: unexpected {{error!r}}")
                sys.exit(1)
            outcomes["documented"] += 1
        elif isinstance(want, type) or result != want:
            print(f"{{name}}: start={{start}}: returned {{result!r}}, wanted {{want!r}}")
            sys.exit(1)
        else:
            outcomes["ok"] += 1
        del result, error
    after = refcounts()
    if before != after:
        print(f"{{name}}: reference counts changed: {{before}} -> {{after}}")
        sys.exit(1)
    print(name, outcomes)
    """
)

CALL_NAMES = [
    "count_gil",
    "count_nogil",
    "count_auto",
    "count_gil_error",
    "count_nogil_overflow",
    "count_nogil_type",
    "stream_sum",
    "stream_sum_error",
    "counter_new",
    "increment",
    "increment_error",
    "value",
    "repr",
    "gate_new",
    "gate_error",
    "token_new",
    "cancelled",
    "module_exec",
]
# These succeed without allocating (they return None, True or a cached small int).
ALLOCATE_NOTHING = {"increment", "value", "repr", "token_new"}
COUNTERS = [("UnsafeCounter", "unsafe"), ("AtomicCounter", "atomic"), ("LockedCounter", "locked")]


# Calls on a counter run for each counter type; the rest once.
PER_COUNTER = {"counter_new", "increment", "increment_error", "value", "repr"}
CASES = [
    (name, counter, kind)
    for name in CALL_NAMES
    for counter, kind in (COUNTERS if name in PER_COUNTER else COUNTERS[:1])
]


@pytest.mark.parametrize(
    ("name", "counter", "kind"),
    CASES,
    ids=[f"{n}-{c}" if n in PER_COUNTER else n for n, c, _ in CASES],
)
def test_failing_allocations_give_result_or_memory_error(name, counter, kind):
    code = CHILD.format(counter=f"gilx.{counter}", name=counter, kind=kind, starts=250)
    proc = subprocess.run(
        [sys.executable, "-c", code, name], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    assert proc.stdout.startswith(name), proc.stdout
    if name not in ALLOCATE_NOTHING:
        # Allocation did fail at some point: the check is not vacuous.
        assert "'MemoryError': 0," not in proc.stdout, proc.stdout
