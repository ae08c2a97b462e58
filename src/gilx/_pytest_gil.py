"""The ``gilx`` pytest plugin's hooks and fixtures (loaded by :mod:`gilx.pytest_plugin`).

* Fixture ``gil_watch``: a :func:`gilx.watch` running while the test runs; the test gets
  the watch.
* With pytest-benchmark's ``benchmark`` in the same test, the reading covers the
  benchmark's **rounds only**, as its timings do: not the test's set-up, not the
  calibration or warm-up runs.  The heartbeat runs for the whole test, and each round
  (each call of the benchmark's runner whose time becomes a statistic) is bracketed by two
  snapshots of its counts; the rounds' counts are summed.  The reading's ``to_dict()`` is
  stored in ``benchmark.extra_info["gil"]``, so ``--benchmark-json`` and
  ``pytest-benchmark compare`` carry it, with ``"covers": "benchmark rounds"``.  Where the
  rounds cannot be told apart (a pytest-benchmark whose internals differ, or
  ``--benchmark-disable``), the whole test's reading is stored under
  ``extra_info["gil_whole_test"]`` instead, and says so.
* Marker ``@pytest.mark.gil_watch(interval=0.001, max_hold=None, min_hold=None)``: watches
  the test (no need to ask for the fixture) and, with a limit, fails it when the share of
  the time the GIL was held is above ``max_hold`` / below ``min_hold``.  A reading that
  cannot be judged (:func:`gilx._judgement.of_reading`: the heartbeat could not get a CPU
  in time, or other processes took the CPU the test needed) gives no verdict: the test is
  skipped, with the reason.
* Options, in their own group ``gilx``: ``--gil-interval``, ``--gil-max-hold``,
  ``--gil-min-hold`` (defaults for every watched test; a marker's own values win) and
  ``--gil-no-summary``.
* The terminal summary has one line per watched test.
* A test that raises :class:`gilx.testing.Inconclusive` (an assertion of
  :mod:`gilx.testing` that could not be judged) is reported as skipped, with the reason,
  rather than as failed.

The hooks are old-style wrappers (``hookwrapper=True``), which every pluggy pytest 7 and
later allows (0.12 on) understands; ``wrapper=True`` needs pluggy 1.2.  Nothing heavy is
imported at load time: gilx's measuring modules only when a test is watched.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from gilx._watch import Watch
    from gilx.instrument import Reading, Tally
    from gilx.machine import CpuMeter, CpuUse

_MARKER_ARGS = ("interval", "max_hold", "min_hold")


@dataclass
class _Watched:
    """What the plugin knows of one watched test."""

    nodeid: str
    watch: Watch
    max_hold: float | None
    min_hold: float | None
    rounds: Tally | None = None
    round_count: int = 0
    # What the rest of the machine used from the benchmark's first run of the function on.
    meter: CpuMeter | None = None
    rounds_cpu: CpuUse | None = None
    benchmarked: bool = False
    final: Reading | None = None
    checks: list[str] = field(default_factory=list)

    def reading(self) -> tuple[Reading, str]:
        """The reading that describes the test, and what it covers."""
        if self.rounds is not None:
            cpu = self.rounds_cpu
            if cpu is None and self.meter is not None:
                cpu = self.meter.stop()
            return self.rounds.reading(cpu, self.watch.priority), "benchmark rounds"
        return self.final or self.watch.reading(), "test body"


_RECORDS = pytest.StashKey[list[_Watched]]()
_ITEM = pytest.StashKey[_Watched]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gilx", "GIL measurements (gilx: gil_watch fixture and marker)")
    group.addoption(
        "--gil-interval",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds between the heartbeat's sampled instants (default 0.001)",
    )
    group.addoption(
        "--gil-max-hold",
        type=float,
        default=None,
        metavar="FRACTION",
        help="fail a watched test whose share of time with the GIL held is above this",
    )
    group.addoption(
        "--gil-min-hold",
        type=float,
        default=None,
        metavar="FRACTION",
        help="fail a watched test whose share of time with the GIL held is below this",
    )
    group.addoption(
        "--gil-no-summary",
        action="store_true",
        default=False,
        help="no line per watched test in the terminal summary",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "gil_watch(interval=0.001, max_hold=None, min_hold=None): watch the GIL during the "
        "test (the benchmark's rounds with pytest-benchmark); fail it beyond a limit",
    )
    config.stash[_RECORDS] = []
    for name in ("gil_interval", "gil_max_hold", "gil_min_hold"):
        _check_option(name, config.getoption(name))


def _check_option(name: str, value: object) -> None:
    if value is None:
        return
    flag = "--" + name.replace("_", "-")
    if name == "gil_interval":
        from gilx.instrument import check_interval

        try:
            check_interval(value)
        except (TypeError, ValueError) as exc:
            raise pytest.UsageError(f"{flag}: {exc}") from None
    elif not isinstance(value, float) or not 0.0 <= value <= 1.0:
        raise pytest.UsageError(f"{flag} must be a share between 0 and 1, got {value!r}")


def _settings(request: pytest.FixtureRequest) -> tuple[float | None, float | None, float | None]:
    """(interval, max_hold, min_hold): the marker's, else the options'."""
    config = request.config
    values: dict[str, Any] = {
        "interval": config.getoption("gil_interval"),
        "max_hold": config.getoption("gil_max_hold"),
        "min_hold": config.getoption("gil_min_hold"),
    }
    marker = request.node.get_closest_marker("gil_watch")
    if marker is not None:
        if marker.args:
            raise pytest.UsageError(
                f"{request.node.nodeid}: gil_watch takes keywords only ({', '.join(_MARKER_ARGS)})"
            )
        unknown = set(marker.kwargs) - set(_MARKER_ARGS)
        if unknown:
            raise pytest.UsageError(
                f"{request.node.nodeid}: gil_watch got unknown keyword(s) {sorted(unknown)};"
                f" it takes {', '.join(_MARKER_ARGS)}"
            )
        for key, value in marker.kwargs.items():
            if (
                key != "interval"
                and value is not None
                and (
                    isinstance(value, bool)
                    or not isinstance(value, (int, float))
                    or not 0.0 <= value <= 1.0
                )
            ):
                raise pytest.UsageError(
                    f"{request.node.nodeid}: gil_watch({key}=...) must be a share between 0"
                    f" and 1, got {value!r}"
                )
        values.update(marker.kwargs)
    return values["interval"], values["max_hold"], values["min_hold"]


@pytest.fixture
def gil_watch(request: pytest.FixtureRequest) -> Iterator[Watch]:
    """A :func:`gilx.watch` running while the test runs; with ``benchmark``, its rounds only."""
    from gilx._watch import Watch
    from gilx.instrument import DEFAULT_INTERVAL, check_interval

    interval, max_hold, min_hold = _settings(request)
    try:
        # With a max_hold, blame too: a failure names where the GIL was held most.
        w = Watch(
            DEFAULT_INTERVAL if interval is None else check_interval(interval),
            top=max_hold is not None,
        )
    except (TypeError, ValueError) as exc:
        raise pytest.UsageError(f"{request.node.nodeid}: gil_watch: {exc}") from None
    record = _Watched(request.node.nodeid, w, max_hold, min_hold)
    bench: Any = None
    if "benchmark" in request.fixturenames:
        bench = request.getfixturevalue("benchmark")
    with w:
        if bench is not None:
            record.benchmarked = _watch_rounds(bench, w, record)
        request.node.stash[_ITEM] = record
        yield w
    record.final = w.reading()
    if record.meter is not None:
        record.rounds_cpu = record.meter.stop()
    request.config.stash[_RECORDS].append(record)
    if bench is not None:
        reading, covers = record.reading()
        if record.rounds is not None:
            bench.extra_info["gil"] = {
                **reading.to_dict(),
                "covers": covers,
                "rounds": record.round_count,
            }
        else:
            bench.extra_info["gil_whole_test"] = {**record.final.to_dict(), "covers": "whole test"}


def _watch_rounds(bench: Any, w: Watch, record: _Watched) -> bool:
    """Bracket each of the benchmark's rounds with snapshots; False where that cannot be done.

    pytest-benchmark times a round by calling a *runner* made by ``_make_runner``; the
    runner's result becomes a statistic through ``stats.update(duration)`` (``stats``
    made by ``_make_stats``), for ``benchmark(...)`` and ``benchmark.pedantic(...)``
    alike.  Calibration and warm-up call runners too, but never update the statistics, so
    the runner call just before each ``update`` is a round.
    """
    from gilx.instrument import Tally
    from gilx.machine import CpuMeter

    make_runner = getattr(bench, "_make_runner", None)
    make_stats = getattr(bench, "_make_stats", None)
    if not callable(make_runner) or not callable(make_stats):
        return False
    last: list[Tally] = []

    def watched_make_runner(*args: Any, **kwargs: Any) -> Callable[..., Any]:
        runner = make_runner(*args, **kwargs)

        def watched_runner(*r_args: Any, **r_kwargs: Any) -> Any:
            if record.meter is None:
                record.meter = CpuMeter()
                record.meter.start()
            before = w.snapshot()
            try:
                return runner(*r_args, **r_kwargs)
            finally:
                last[:] = [Tally.between(before, w.snapshot())]

        return watched_runner

    def watched_make_stats(*args: Any, **kwargs: Any) -> Any:
        stats = make_stats(*args, **kwargs)
        update = stats.update

        def watched_update(duration: Any) -> Any:
            if last:
                record.rounds = last[0] if record.rounds is None else record.rounds + last[0]
                record.round_count += 1
                last.clear()
            return update(duration)

        stats.update = watched_update
        return stats

    bench._make_runner = watched_make_runner
    bench._make_stats = watched_make_stats
    return True


@pytest.fixture(autouse=True)
def _gil_watch_marker(request: pytest.FixtureRequest) -> None:
    """A test marked ``gil_watch`` is watched without asking for the fixture."""
    if request.node.get_closest_marker("gil_watch") is not None:
        request.getfixturevalue("gil_watch")


@pytest.hookimpl(hookwrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, Any, None]:
    """After the test function: its limits, if it has any, judged on its reading."""
    outcome = yield
    record = pyfuncitem.stash.get(_ITEM, None)
    if record is None or outcome.excinfo is not None:
        return
    if record.max_hold is None and record.min_hold is None:
        return
    reading, covers = record.reading()
    problem = _limit_problem(reading, covers, record.max_hold, record.min_hold)
    if problem is None:
        return
    from gilx._judgement import of_reading

    exc: BaseException
    if not of_reading(reading).judged:
        exc = pytest.skip.Exception(problem)
    else:
        if record.max_hold is not None and reading.hold_fraction > record.max_hold:
            problem += _top_holder(record.watch)
        exc = AssertionError(problem)
    force = getattr(outcome, "force_exception", None)
    if force is not None:
        force(exc)
    else:  # pluggy < 1.1
        raise exc


def _limit_problem(
    reading: Reading, covers: str, max_hold: float | None, min_hold: float | None
) -> str | None:
    from gilx._judgement import of_reading

    held = reading.hold_fraction
    where = f"the GIL was held {held:.1%} of the time ({covers}, {reading.samples} instants)"
    judgement = of_reading(reading)
    note = f"; {judgement.note}" if judgement.note else ""
    if not judgement.judged:
        return f"gil_watch: no verdict ({judgement.why()}); {where}{note}"
    if max_hold is not None and held > max_hold:
        return f"gil_watch: {where}, more than max_hold={max_hold:.1%}{note}"
    if min_hold is not None and held < min_hold:
        return f"gil_watch: {where}, less than min_hold={min_hold:.1%}{note}"
    return None


def _top_holder(w: Watch) -> str:
    """Where the GIL was held most during the test, for a failed max_hold ("" if unknown)."""
    blame = w.blame
    if blame is None or not blame.holding:
        return ""
    h = blame.holding[0]
    where = f"{h.file}:{h.line}" if h.file else "no Python frame"
    return (
        f"; held most at {h.function} ({where}) in thread {h.thread}:"
        f" {h.held_s * 1e3:.0f} ms of the whole test"
    )


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    records = config.stash.get(_RECORDS, [])
    if not records or config.getoption("gil_no_summary"):
        return
    from gilx._judgement import of_reading

    terminalreporter.section("gilx: the GIL in watched tests")
    for record in records:
        reading, covers = record.reading()
        judgement = of_reading(reading)
        flag = "" if judgement.judged else f"  [not judged: {judgement.why()}]"
        if judgement.note:
            flag += f"  [{judgement.note}]"
        rounds = f" x{record.round_count}" if record.rounds is not None else ""
        terminalreporter.write_line(
            f"{record.nodeid}: GIL held {reading.hold_fraction:.1%}"
            f" ({covers}{rounds}, {reading.seconds:.3f} s, {reading.samples} instants),"
            f" wait p99 {reading.latency.p99 * 1e3:.3f} ms{flag}"
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """A test whose GIL assertion could not be judged is reported skipped, at the test."""
    outcome = yield
    if outcome.excinfo is not None:
        return
    report = outcome.get_result()
    # gilx.testing is only looked up, never imported here: a test that raised
    # its Inconclusive has imported it.
    inconclusive = getattr(sys.modules.get("gilx.testing"), "Inconclusive", None)
    excinfo = call.excinfo
    if (
        call.when == "call"
        and excinfo is not None
        and inconclusive is not None
        and isinstance(excinfo.value, inconclusive)
    ):
        path, line, _ = item.reportinfo()
        report.outcome = "skipped"
        report.longrepr = (
            str(path),
            (line or 0) + 1,
            f"Skipped: gilx: inconclusive: {excinfo.value}",
        )
