"""What a worker costs, a process against an interpreter (gilx._costs), and how it is said."""

from __future__ import annotations

import threading

import pytest

from gilx import _costs, _extras, _present
from gilx.backends import interpreters as interp_backend


def _missing() -> str | None:
    try:
        interp_backend.require()
    except (ValueError, _extras.MissingExtra) as exc:
        return str(exc)
    return None


needs_interpreters = pytest.mark.skipif(
    _missing() is not None, reason=f"no interpreters here: {_missing()}"
)


def made(passing: tuple[_costs.Passing, ...] = ()) -> _costs.Costs:
    return _costs.Costs("fork", 0.003, 0.030, 2 << 20, 6 << 20, passing)


def test_the_ratios_are_the_process_cost_over_the_interpreter_cost():
    c = made((_costs.Passing(1024, 30e-6, 10e-6),))
    assert c.startup_ratio == pytest.approx(0.1)
    assert c.memory_ratio == pytest.approx(1 / 3)
    assert c.passing[0].ratio == pytest.approx(3.0)
    assert _costs.Costs("fork", 1.0, 1.0, None, 5, ()).memory_ratio is None
    d = c.to_dict()
    assert d["startup"] == {"processes": 0.003, "interpreters": 0.030, "ratio": c.startup_ratio}
    assert d["passing"] == [
        {"bytes": 1024, "processes": 30e-6, "interpreters": 10e-6, "ratio": c.passing[0].ratio}
    ]


def test_the_cost_table_shows_each_cost_and_its_ratio():
    text = "\n".join(_present.costs_table(made((_costs.Passing(65536, 60e-6, 20e-6),))))
    assert "start-up" in text and "3.00 ms" in text and "30.00 ms" in text and "0.10x" in text
    assert "2 MiB" in text and "6 MiB" in text and "0.33x" in text
    assert "64 KiB round trip" in text and "60.0 µs" in text and "3.00x" in text
    assert "start method fork" in text
    unknown = "\n".join(_present.costs_table(_costs.Costs("spawn", 1, 1, None, None, ())))
    assert "? (no /proc here)" in unknown


def test_sizes_and_short_times_read_in_their_unit():
    assert [_present.size_text(n) for n in (100, 1024, 65536, 1 << 20, 3 << 19)] == [
        "100 B",
        "1 KiB",
        "64 KiB",
        "1 MiB",
        "1.5 MiB",
    ]
    assert _present.seconds_short(2.5) == "2.50 s"
    assert _present.seconds_short(0.0125) == "12.50 ms"
    assert _present.seconds_short(48e-6) == "48.0 µs"


@needs_interpreters
@pytest.mark.thread_unsafe  # counts the process's threads
def test_measured_costs_are_positive_and_leave_nothing_behind():
    threads = threading.active_count()
    c = _costs.measure(quick=True, sizes=(1024, 65536))
    assert c.startup_process > 0 and c.startup_interpreter > 0
    assert [p.size for p in c.passing] == [1024, 65536]
    assert all(p.process > 0 and p.interpreter > 0 for p in c.passing)
    if c.memory_process is not None:
        assert c.memory_process > 0
    assert threading.active_count() == threads


@needs_interpreters
def test_a_bytes_queue_carries_bytes_both_ways_unchanged():
    interp = interp_backend.Interpreter()
    inbox, outbox = interp_backend.BytesQueue(), interp_backend.BytesQueue()
    try:
        inbox.bind(interp, "inbox")
        outbox.bind(interp, "outbox")
        payload = bytes(range(256)) * 100
        inbox.put(payload)
        interp.run("outbox_put(inbox_get()[::-1])")
        assert outbox.get() == payload[::-1]
    finally:
        interp.close()
        inbox.close()
        outbox.close()


def test_before_3_12_measuring_costs_says_it_needs_3_12():
    if interp_backend.unsupported() is None:
        pytest.skip("this Python has per-interpreter GILs")
    with pytest.raises(ValueError, match=r"needs CPython 3\.12"):
        _costs.measure(quick=True)
