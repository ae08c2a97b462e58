"""Assertions about the GIL for your own test suite.

::

    from gilx.testing import assert_releases_gil

    def test_my_extension_releases_the_gil():
        assert_releases_gil(my_ext.compress, big_buffer)

Both rest on :func:`gilx.probe`'s hold fraction: while one thread calls the
function, the instrument's heartbeat samples instants and notes whether the
GIL was held at each.  That needs no second core -- a held GIL keeps the
heartbeat waiting whether or not another core is free -- so the assertions are
reliable on a 1-core CI runner, where a speedup test cannot tell anything.

A measurement that cannot be judged (:attr:`ProbeResult.judgement`: the
heartbeat's own reading was disturbed -- it waited for a CPU at its instants --
or other processes took the CPU the calls needed) is made once more; if it
still cannot be judged, the assertion raises :class:`Inconclusive` -- neither
a pass nor a fail.  The ``gilx`` pytest plugin turns that into a skip that
gives the reason.  Where the machine cannot be metered (no ``/proc``), the
assertion's message says so.
"""

from __future__ import annotations

from collections.abc import Callable

from gilx import _present
from gilx._probe import ProbeResult, probe

__all__ = ["Inconclusive", "assert_holds_gil", "assert_releases_gil"]


class Inconclusive(Exception):
    """The measurement could not be judged: the heartbeat's reading was disturbed, or other
    processes took the CPU the probe needed, even after re-measuring.

    Not an :class:`AssertionError`: nothing was found wrong with the callable.
    ``result`` is the last (disturbed) :class:`~gilx.ProbeResult`.
    """

    def __init__(self, message: str, result: ProbeResult) -> None:
        super().__init__(message)
        self.result = result


#: A disturbed probe is made this many times in all before it is called inconclusive.
ATTEMPTS = 2


def _judgeable_probe(
    func: Callable[..., object], args: tuple[object, ...], seconds: float
) -> ProbeResult:
    """:func:`probe` ``func(*args)``, again while disturbed; Inconclusive if it stays so."""
    for _ in range(ATTEMPTS):
        result = probe(func, *args, seconds=seconds, repeats=1)
        if not result.disturbed:
            return result
    raise Inconclusive(
        f"{result.callable}: not judged in {ATTEMPTS} attempts"
        f" ({_present.why_not(result.judged)}); the GIL read held"
        f" {result.hold_fraction:.1%} of the time, not a verdict{_note(result)}",
        result,
    )


def _note(result: ProbeResult) -> str:
    """``; <note>`` where the machine could not be metered, else ``""``."""
    note = result.judged.note
    return f"; {note}" if note else ""


def _check_share(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number between 0 and 1, not {type(value).__name__}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {value!r}")


def assert_releases_gil(
    func: Callable[..., object], /, *args: object, max_hold: float = 0.2, seconds: float = 0.2
) -> ProbeResult:
    """Fail unless ``func(*args)`` holds the GIL at most ``max_hold`` of the time.

    The calls run for about ``seconds`` on one thread while the heartbeat
    samples the GIL; the share of sampled instants at which it was held is the
    measured share.  Reliable on 1-core machines: the measurement does not
    need a second core (see the module's docstring).  Returns the
    :class:`~gilx.ProbeResult`.  On a build without a GIL it always passes.
    Raises :class:`Inconclusive` when the machine stayed too busy to judge.
    """
    _check_share("max_hold", max_hold)
    result = _judgeable_probe(func, args, seconds)
    if result.gil_enabled and result.hold_fraction > max_hold:
        raise AssertionError(
            f"{result.callable} held the GIL {result.hold_fraction:.1%} of the time, "
            f"more than max_hold={max_hold:.1%}: it does not release the GIL{_note(result)}"
        )
    return result


def assert_holds_gil(
    func: Callable[..., object], /, *args: object, min_hold: float = 0.8, seconds: float = 0.2
) -> ProbeResult:
    """Fail unless ``func(*args)`` holds the GIL at least ``min_hold`` of the time.

    The opposite of :func:`assert_releases_gil`, measured the same way (and as
    reliable on 1-core machines).  On a build without a GIL nothing holds it,
    so this fails there with a message saying so.  Raises
    :class:`Inconclusive` when the machine stayed too busy to judge.
    """
    _check_share("min_hold", min_hold)
    result = _judgeable_probe(func, args, seconds)
    if not result.gil_enabled:
        raise AssertionError(
            f"{result.callable}: no GIL in this process, nothing can hold it{_note(result)}"
        )
    if result.hold_fraction < min_hold:
        raise AssertionError(
            f"{result.callable} held the GIL only {result.hold_fraction:.1%} of the time, "
            f"less than min_hold={min_hold:.1%}: it releases the GIL{_note(result)}"
        )
    return result
