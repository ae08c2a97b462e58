"""StartGate: threads begin their released-GIL work together; misuse fails cleanly."""

from __future__ import annotations

import threading

import pytest

import gilx
from gilx._core import StartGate


def test_parties_arrive_then_all_run():
    gate = StartGate(3)
    counter = gilx.AtomicCounter()
    threads = [
        threading.Thread(target=counter.increment, args=(1000,), kwargs={"start": gate})
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert gate.arrived == 3
    assert counter.value == 3000
    assert repr(gate) == "gilx.StartGate(parties=3, arrived=3)"


@pytest.mark.parametrize("cls", [gilx.UnsafeCounter, gilx.AtomicCounter, gilx.LockedCounter])
def test_single_party_gate_opens_at_once(cls):
    c = cls()
    c.increment(10, start=StartGate(1))
    c.increment(5, start=None)
    assert c.value == 15


def test_missing_parties_time_out():
    c = gilx.LockedCounter()
    with pytest.raises(TimeoutError, match="not all parties arrived"):
        c.increment(10, start=StartGate(2, timeout=0.05))
    assert c.value == 0


def test_abort_releases_waiters():
    gate = StartGate(2)
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            gilx.UnsafeCounter().increment(1, start=gate)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=wait)
    t.start()
    while gate.arrived < 1:
        pass
    gate.abort()
    t.join(timeout=30)
    assert not t.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError)


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        ((0,), {}, ValueError),
        ((-1,), {}, ValueError),
        ((1.5,), {}, TypeError),
        ((2**64,), {}, OverflowError),
        ((2,), {"timeout": 0}, ValueError),
        ((2,), {"timeout": float("nan")}, ValueError),
        ((2,), {"timeout": "1"}, TypeError),
        ((), {}, TypeError),
    ],
)
def test_gate_bad_arguments(args, kwargs, error):
    with pytest.raises(error):
        StartGate(*args, **kwargs)


def test_increment_bad_keywords():
    c = gilx.AtomicCounter()
    with pytest.raises(TypeError, match="start must be a StartGate or None"):
        c.increment(1, start=3)
    with pytest.raises(TypeError, match="unexpected keyword argument 'begin'"):
        c.increment(1, begin=None)
    with pytest.raises(TypeError, match="exactly 1 positional argument"):
        c.increment()
    with pytest.raises(TypeError, match="exactly 1 positional argument"):
        c.increment(1, 2)
    with pytest.raises(TypeError, match="exactly 1 positional argument"):
        c.increment(times=1)
    assert c.value == 0
