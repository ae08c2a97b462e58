"""The GIL instrument: the hold-fraction estimate against a known duty cycle, the heartbeat's
life cycle and bounded memory, and watch()'s interface.

Ground truth: ``_core.duty_cycle(seconds, hold, period)`` holds the GIL for the share
``hold`` of every period and releases it for the rest, and returns the time it really held
it.  Bounds here are generous and retried (the machine may be busy); the tight error
numbers are in benchmarks/test_instrument.py.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import pytest
from conftest import retry

import gilx
from gilx import _core
from gilx.instrument import (
    HEARTBEAT_SLOTS,
    OTHERS_SHARE_DISTURBED,
    Heartbeat,
    LatencyHistogram,
    Tally,
    check_interval,
)
from gilx.machine import CpuMeter

GIL = gilx.gil_enabled()
ATTEMPTS = 4
needs_gil = pytest.mark.skipif(not GIL, reason="no GIL in this process: nothing holds it")


def measured(hold: float, period: float = 0.005, seconds: float = 0.3) -> tuple[float, float]:
    """(estimated hold fraction, true hold fraction) for one duty cycle."""
    with Heartbeat() as heart:
        before = heart.snapshot()
        held, total = _core.duty_cycle(seconds, hold, period)
        reading = heart.snapshot().since(before)
    return reading.hold_fraction, held / total


@needs_gil
def test_a_call_that_always_holds_the_gil_reads_near_one():
    assert retry(ATTEMPTS, lambda: measured(1.0)[0] > 0.8)


@needs_gil
def test_a_thread_running_python_nonstop_reads_near_one():
    # Python code, unlike the C call above, hands the GIL over when the heartbeat has
    # waited for the switch interval: the loop must not count that hand-over as free.
    def near_one() -> bool:
        with Heartbeat() as heart:
            before = heart.snapshot()
            gilx.count_py(3_000_000)
            return heart.snapshot().since(before).hold_fraction > 0.9

    assert retry(ATTEMPTS, near_one)


def test_a_call_that_never_holds_the_gil_reads_near_zero():
    assert retry(ATTEMPTS, lambda: measured(0.0)[0] < 0.2)


@needs_gil
@pytest.mark.parametrize("period", [0.002, 0.02])
def test_the_estimate_follows_the_true_share_of_a_duty_cycle(period):
    def close() -> bool:
        estimate, truth = measured(0.5, period, seconds=0.4)
        return abs(estimate - truth) < 0.15

    assert retry(ATTEMPTS, close)


@needs_gil
@pytest.mark.parametrize("hold_ms, rest_ms", [(1.0, 3.0), (2.0, 1.0)])
def test_a_server_loop_reads_right_or_is_not_judged(hold_ms, rest_ms):
    # Short holds between blocking calls: as an ordinary user (no real-time priority) the
    # heartbeat used to queue behind the holder and read 1 ms holds between 3 ms sleeps as
    # 0.03 for a true 0.25 (issue 25).  A judged reading must never be off by much; and on
    # a machine where nothing else runs, one of a few readings is judged and close.
    period = (hold_ms + rest_ms) / 1e3
    share = hold_ms / (hold_ms + rest_ms)
    wrong: list[tuple[float, float]] = []
    quiet_but_disturbed: list[list[str]] = []
    busy: list[list[str]] = []

    def judged_and_close() -> bool:
        meter = CpuMeter()
        with Heartbeat() as heart:
            meter.start()
            before = heart.snapshot()
            held, total = _core.duty_block(0.4, share, period, "sleep")
            tally = Tally.between(before, heart.snapshot())
            use = meter.stop()
        reading = tally.reading(use, heart.priority)
        error = abs(reading.hold_fraction - held / total)
        if not reading.disturbed:
            if error > 0.05:
                wrong.append((reading.hold_fraction, held / total))
            return error <= 0.05
        others = reading.others_share
        (busy if others is None or others > OTHERS_SHARE_DISTURBED else quiet_but_disturbed).append(
            reading.disturbances()
        )
        return False

    ok = retry(ATTEMPTS + 3, judged_and_close)
    assert not wrong, f"judged readings off by more than 0.05 (read, truth): {wrong}"
    if not ok and not quiet_but_disturbed:
        pytest.skip(f"the machine was busy at every attempt: {busy[-1]}")
    assert ok, f"disturbed with the machine quiet (the heartbeat starved): {quiet_but_disturbed}"


def test_an_ordinary_user_gets_a_heartbeat_that_claims_its_cpu():
    # CI's unprivileged step sets GILX_EXPECT_ORDINARY_USER=1 (tools/as_user.sh): there the
    # suite must really run without privileges, and on Linux 6.12+ the heartbeat must have
    # its short slice, the claim that makes the readings above right for such a user.
    if os.environ.get("GILX_EXPECT_ORDINARY_USER") != "1":
        pytest.skip("only in the unprivileged CI step (tools/as_user.sh)")
    assert os.geteuid() != 0
    heart = Heartbeat()
    with heart:
        time.sleep(0.01)
    assert heart.priority == ("short-slice" if _slice_supported() else "normal")


@needs_gil
def test_the_estimate_grows_with_the_share_held():
    def increasing() -> bool:
        readings = [measured(h, 0.004)[0] for h in (0.0, 0.5, 1.0)]
        return readings[0] < readings[1] < readings[2]

    assert retry(ATTEMPTS, increasing)


@needs_gil
def test_a_held_gil_shows_in_the_latency():
    with gilx.watch() as w:
        time.sleep(0.005)
        _core.duty_cycle(0.05, 1.0, 0.01)  # 50 ms without letting go
    assert w.latency.max >= 0.02
    assert w.latency.p50 <= w.latency.p90 <= w.latency.p99 <= w.latency.max


@pytest.mark.skipif(GIL, reason="this process has a GIL")
def test_without_a_gil_there_is_no_hold():
    with gilx.watch() as w:
        _core.duty_cycle(0.05, 1.0, 0.01)
    assert w.gil_enabled is False
    assert w.hold_fraction == 0.0


def test_the_heartbeat_can_start_again_and_keeps_its_totals():
    heart = Heartbeat(0.001)
    for _ in range(2):
        heart.start()
        time.sleep(0.03)
        heart.stop()
    assert not heart.running
    snap = heart.snapshot()
    assert snap.beats >= 2 and snap.samples >= snap.beats
    with pytest.raises(RuntimeError, match="already running"):
        with heart:
            heart.start()


def test_memory_stays_bounded_however_long_it_runs():
    heart = Heartbeat(0.0001)
    with heart:
        time.sleep(0.1)
    snap = heart.snapshot()
    assert snap.beats > 50
    assert len(snap.waits) == LatencyHistogram.SIZE
    assert sum(snap.waits) == snap.beats
    assert len(heart._totals) == 8 + LatencyHistogram.SIZE  # the only store: fixed size


def test_the_heartbeat_measures_its_own_cost():
    with gilx.watch() as w:
        time.sleep(0.05)
    reading = w.reading()
    assert reading.beats > 5
    assert 0 < reading.cost_per_beat < 0.01  # seconds the heartbeat held the GIL per beat


def test_percentiles_come_from_the_histogram():
    counts = [0] * LatencyHistogram.SIZE
    for ns in [500] * 50 + [2_000] * 40 + [100_000] * 10:
        counts[LatencyHistogram.index(ns)] += 1
    p = tuple(counts)
    assert LatencyHistogram.percentile_ns(p, 0.5, 100_000) <= 1_024
    assert 2_000 <= LatencyHistogram.percentile_ns(p, 0.9, 100_000) <= 2_000 * 1.125
    assert LatencyHistogram.percentile_ns(p, 0.99, 100_000) == 100_000
    assert LatencyHistogram.percentile_ns((0,) * LatencyHistogram.SIZE, 0.5, 0) == 0


def test_watch_gives_the_contract_fields():
    with gilx.watch(interval=0.002) as w:
        time.sleep(0.02)
        live = w.seconds
    d = w.to_dict()
    assert list(d)[:4] == ["seconds", "hold_fraction", "latency", "gil_enabled"]
    assert set(d["latency"]) == {"p50", "p90", "p99", "max"}  # type: ignore[arg-type]
    assert w.hold_fraction < 0.3  # asleep: the GIL was free (and on a no-GIL build, never held)
    assert w.seconds >= 0.02 > 0 < live <= w.seconds
    assert w.gil_enabled is GIL


def test_watch_sees_other_threads():
    if not GIL:
        pytest.skip("no GIL in this process")

    def busy() -> bool:
        with gilx.watch() as w:
            t = threading.Thread(target=_core.duty_cycle, args=(0.2, 1.0, 0.01))
            t.start()
            t.join()
        return w.hold_fraction > 0.7

    assert retry(ATTEMPTS, busy)


@pytest.mark.parametrize(
    ("interval", "error", "match"),
    [
        ("0.001", TypeError, "number of seconds"),
        (None, TypeError, "number of seconds"),
        (True, TypeError, "number of seconds"),
        (0, ValueError, "positive"),
        (-0.5, ValueError, "positive"),
        (float("nan"), ValueError, "positive"),
        (5.0, ValueError, "between"),
    ],
)
def test_watch_refuses_a_bad_interval(interval, error, match):
    with pytest.raises(error, match=match):
        gilx.watch(interval)
    with pytest.raises(error, match=match):
        check_interval(interval)


def test_a_watch_must_be_entered_before_it_is_read():
    with pytest.raises(RuntimeError, match="with"):
        gilx.watch().reading()


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0.0, 0.5, 0.001), "seconds"),
        ((0.1, 1.5, 0.001), "hold"),
        ((0.1, -0.1, 0.001), "hold"),
        ((0.1, 0.5, 0.0), "period"),
    ],
)
def test_duty_cycle_refuses_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        _core.duty_cycle(*args)


def test_duty_cycle_reports_what_it_held():
    held, total = _core.duty_cycle(0.02, 1.0, 0.005)
    assert held == pytest.approx(total, rel=0.01)
    assert 0.02 <= total < 1.0
    held, total = _core.duty_cycle(0.02, 0.0, 0.005)
    assert held < total / 2


def test_the_c_loop_refuses_bad_arguments():
    from array import array

    totals = array("Q", bytes(8 * HEARTBEAT_SLOTS))
    token = _core.CancelToken()
    with pytest.raises(ValueError, match="interval_ns"):
        _core.heartbeat_run(totals, 10, token, 1, -1)
    with pytest.raises(TypeError, match="CancelToken"):
        _core.heartbeat_run(totals, 1_000_000, None, 1, -1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="64-bit words"):
        _core.heartbeat_run(array("Q", [0] * 3), 1_000_000, token, 1, -1)
    with pytest.raises(ValueError, match="64-bit words"):
        _core.heartbeat_read(b"short")
    with pytest.raises(BufferError):
        _core.heartbeat_run(b"x" * len(totals) * 8, 1_000_000, token, 1, -1)  # read-only
    token.cancel()
    _core.heartbeat_run(totals, 1_000_000, token, 1, -1)  # cancelled: one beat at most
    assert _core.heartbeat_read(totals)[3] <= 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="timer slack is Linux's")
def test_the_c_loop_gives_its_thread_back_its_timer_slack():
    # The loop asks Linux for no timer slack while it runs (it learns wake-up costs from
    # its own lateness); the thread it ran on must get its own setting back.
    import ctypes
    from array import array

    pr_get_timerslack = 30
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    before = prctl(pr_get_timerslack, 0, 0, 0, 0)
    assert before > 1
    totals = array("Q", bytes(8 * HEARTBEAT_SLOTS))
    token = _core.CancelToken()
    token.cancel()
    _core.heartbeat_run(totals, 1_000_000, token, 1, -1)
    assert prctl(pr_get_timerslack, 0, 0, 0, 0) == before


@pytest.mark.parametrize(
    "interval_ns",
    [
        1_000_000,  # the deadline passes between two beats
        # The deadline falls inside the first sleep: with seed 1 the first knock is due
        # 2.8 s after the start, and the loop must not sleep through the deadline to it.
        10_000_000_000,
    ],
)
def test_the_c_loop_stops_at_its_tokens_deadline(interval_ns):
    # A CancelToken(timeout=...) is never cancel()ed by anyone: the loop must read the
    # deadline, not only the flag (it read only the flag, and ran on for ever).
    from array import array

    totals = array("Q", bytes(8 * HEARTBEAT_SLOTS))
    token = _core.CancelToken(timeout=0.05)
    stopped = threading.Event()

    def run() -> None:
        _core.heartbeat_run(totals, interval_ns, token, 1, -1)
        stopped.set()

    thread = threading.Thread(target=run, daemon=True)
    start = time.monotonic()
    thread.start()
    try:
        assert stopped.wait(5), "heartbeat_run ran on past its token's deadline"
        assert time.monotonic() - start < 1.0
    finally:
        token.cancel()
        thread.join(15)
    assert not thread.is_alive()
    assert _core.heartbeat_read(totals)[6] == 0  # GILX_HB_RUNNING: the loop has left


class _Alarm(Exception):
    pass


@pytest.mark.thread_unsafe(reason="sets a process-wide SIGALRM handler")
@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer")
@pytest.mark.parametrize("hold", [1.0, 0.5, 0.0])
def test_duty_cycle_with_a_long_period_stays_interruptible(hold):
    # A 60 s period used to be checked for signals once per period: a hold share of it
    # kept the GIL, and Ctrl-C out, for up to a minute.  Now a signal handler runs within
    # ~1 ms held or 10 ms released, whatever the period.
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers run in the main thread only")

    def alarm(signum, frame):
        raise _Alarm

    old = signal.signal(signal.SIGALRM, alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        start = time.monotonic()
        with pytest.raises(_Alarm):
            _core.duty_cycle(5.0, hold, 60.0)
        assert time.monotonic() - start < 1.0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# ---------------------------------------------------------------------------
# Ground truth that blocks: duty_block
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["sleep", "poll"])
def test_duty_block_reports_what_it_held(how):
    held, total = _core.duty_block(0.03, 1.0, 0.005, how)
    assert held == pytest.approx(total, rel=0.01)
    held, total = _core.duty_block(0.03, 0.0, 0.005, how)
    assert held < total / 2
    held, total = _core.duty_block(0.05, 0.5, 0.01, how)
    assert 0.0 < held < total


@pytest.mark.parametrize("how", ["sleep", "poll"])
def test_duty_block_releases_the_gil_while_it_blocks(how):
    # A Python thread beside it gets work done during the blocking phases.
    done = []

    def spin() -> None:
        end = time.perf_counter() + 0.1
        n = 0
        while time.perf_counter() < end:
            n += 1
        done.append(n)

    t = threading.Thread(target=spin)
    t.start()
    _core.duty_block(0.1, 0.0, 0.01, how)
    t.join()
    assert done[0] > 1000


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((0.0, 0.5, 0.001, "sleep"), ValueError, "seconds"),
        ((float("nan"), 0.5, 0.001, "sleep"), ValueError, "seconds"),
        ((0.1, 1.5, 0.001, "poll"), ValueError, "hold"),
        ((0.1, 0.5, 0.0, "sleep"), ValueError, "period"),
        ((0.1, 0.5, 0.001, "spin"), ValueError, "'sleep' or 'poll'"),
        ((0.1, 0.5, 0.001, 3), TypeError, "str"),
        (("1", 0.5, 0.001, "sleep"), TypeError, "real number"),
    ],
)
def test_duty_block_refuses_bad_arguments(args, error, match):
    with pytest.raises(error, match=match):
        _core.duty_block(*args)


def test_duty_block_refuses_a_cancel_that_is_not_a_token():
    with pytest.raises(TypeError, match="CancelToken"):
        _core.duty_block(0.01, 0.5, 0.005, "sleep", cancel=object())  # type: ignore[arg-type]


@pytest.mark.parametrize("how", ["sleep", "poll"])
def test_duty_block_stops_soon_when_cancelled_in_a_long_blocking_phase(how):
    token = _core.CancelToken(timeout=0.05)
    start = time.perf_counter()
    with pytest.raises(gilx.Cancelled):
        _core.duty_block(30.0, 0.0, 30.0, how, cancel=token)
    assert time.perf_counter() - start < 1.0


@pytest.mark.thread_unsafe(reason="sends SIGINT to the process: only the main thread may get it")
@pytest.mark.skipif(sys.platform == "win32", reason="signals to the main thread: POSIX")
def test_duty_block_stops_with_keyboard_interrupt_in_a_long_blocking_phase():
    import signal

    timer = threading.Timer(0.05, os.kill, args=(os.getpid(), signal.SIGINT))
    timer.start()
    start = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt):
            _core.duty_block(30.0, 0.0, 30.0, "sleep")
    finally:
        timer.cancel()
    assert time.perf_counter() - start < 1.0


# ---------------------------------------------------------------------------
# What the meter saw: every reading says it, and flags a starved heartbeat
# ---------------------------------------------------------------------------


def test_a_reading_carries_what_the_meter_saw():
    with gilx.watch() as w:
        _core.duty_block(0.1, 0.25, 0.004, "sleep")
    d = w.to_dict()
    assert isinstance(d["disturbed"], bool) and d["disturbed"] == w.disturbed
    meter = d["meter"]
    assert 0.0 <= meter["late_share"] <= 1.0 and 0.0 <= meter["missed_share"] <= 1.0
    if sys.platform.startswith("linux"):
        assert meter["other_cores"] >= 0.0 and meter["steal_cores"] >= 0.0
    assert meter["heartbeat_priority"] in ("fifo", "short-slice", "normal")


def test_a_reading_with_many_late_instants_is_disturbed():
    from gilx.instrument import LATE_SHARE_DISTURBED, Tally

    def tally(late: int) -> Tally:
        return Tally(1.0, 1000, 500, 0, late, 1000, 1000, 0, (0,) * LatencyHistogram.SIZE)

    few = tally(int(1000 * LATE_SHARE_DISTURBED)).reading()
    many = tally(int(1000 * LATE_SHARE_DISTURBED) + 10).reading()
    assert not few.disturbed and few.late_share == pytest.approx(LATE_SHARE_DISTURBED)
    assert many.disturbed == GIL  # without a GIL there is nothing to mislabel
    assert not few.disturbances()
    if GIL:
        assert "waited for a CPU" in many.disturbances()[0]


def test_a_reading_while_others_took_the_cpu_it_needed_is_disturbed():
    from gilx.instrument import Tally
    from gilx.machine import CpuUse

    counts = Tally(1.0, 1000, 500, 0, 0, 1000, 1000, 0, (0,) * LatencyHistogram.SIZE)
    # 2 cores; this process used one of them; others used the other one: nothing taken.
    beside = counts.reading(CpuUse(1.0, 2, other_cores=1.0, own_cores=1.0, steal_cores=0.0))
    # ... others used 1.6 cores: 0.6 of the core this process needed.
    crowded = counts.reading(CpuUse(1.0, 2, other_cores=1.6, own_cores=1.0, steal_cores=0.0))
    stolen = counts.reading(CpuUse(1.0, 2, other_cores=0.1, own_cores=1.0, steal_cores=0.1))
    assert not beside.disturbed
    assert crowded.disturbed == GIL and stolen.disturbed == GIL
    if GIL:
        assert "other processes took 60%" in crowded.disturbances()[0]
        assert "steal" in stolen.disturbances()[0]
    assert crowded.to_dict()["meter"]["others_share_of_needed"] == pytest.approx(0.6)


def test_tallies_add_up():
    from gilx.instrument import Tally

    with Heartbeat() as heart:
        a = heart.snapshot()
        time.sleep(0.02)
        b = heart.snapshot()
        time.sleep(0.02)
        c = heart.snapshot()
    whole = Tally.between(a, c)
    parts = Tally.between(a, b) + Tally.between(b, c)
    assert parts.samples == whole.samples and parts.waits == whole.waits
    assert parts.seconds == pytest.approx(whole.seconds)


@pytest.mark.skipif(not hasattr(os, "sched_getscheduler"), reason="no scheduling classes here")
def test_the_heartbeat_gives_its_thread_back_its_scheduling():
    # Where it may, the heartbeat asks for real-time scheduling; the thread must end with
    # its own policy back (the thread ends anyway, but a pool could reuse it).
    from gilx.instrument import _realtime_priority

    result: list[object] = []

    def run() -> None:
        before = os.sched_getscheduler(0)
        restore = _realtime_priority()
        during = os.sched_getscheduler(0)
        if restore is not None:
            restore()
        result.extend([before, during, os.sched_getscheduler(0), restore is not None])

    t = threading.Thread(target=run)
    t.start()
    t.join()
    before, during, after, raised = result
    assert after == before
    assert (during == os.SCHED_FIFO) == raised


def test_a_heartbeat_told_not_to_claim_a_cpu_runs_normal():
    heart = Heartbeat(realtime=False, short_slice=False)
    with heart:
        time.sleep(0.01)
    assert heart.priority == "normal"


def _slice_supported() -> bool:
    """Whether this OS honours a thread's requested slice (Linux 6.12+), asked on a
    throw-away thread so the test process's own threads keep theirs."""
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(_core.thread_slice(100_000)))
    t.start()
    t.join()
    return out[0] is not None


def test_without_real_time_the_heartbeat_asks_for_a_short_slice():
    # What an ordinary user gets (root too, when told not to ask for real-time).
    heart = Heartbeat(realtime=False)
    with heart:
        time.sleep(0.01)
    assert heart.priority == ("short-slice" if _slice_supported() else "normal")


def test_thread_slice_sets_reads_back_and_restores():
    if not _slice_supported():
        pytest.skip("this OS has no per-thread scheduler slice (Linux 6.12+ has)")
    out: list[object] = []

    def run() -> None:
        first = _core.thread_slice(200_000)
        out.append(_core.thread_slice(300_000))  # the 200 us just set
        out.append(_core.thread_slice(0))  # back to the default: gives the 300 us
        out.append(first)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert out[0] == 200_000 and out[1] == 300_000
    assert isinstance(out[2], int) and out[2] > 0


@pytest.mark.parametrize("bad", [0.5, "100000", None])
def test_thread_slice_refuses_a_non_integer(bad):
    with pytest.raises(TypeError):
        _core.thread_slice(bad)


@pytest.mark.parametrize("bad", [-1, 1, 99_999, 100_000_001])
def test_thread_slice_refuses_a_slice_linux_would_not_take(bad):
    with pytest.raises(ValueError, match=r"100000\.\.100000000"):
        _core.thread_slice(bad)


def test_thread_slice_refuses_a_number_too_big_for_c():
    with pytest.raises(OverflowError):
        _core.thread_slice(2**70)


def test_a_heartbeat_that_cannot_start_says_so(monkeypatch):
    # A heartbeat thread that dies before its first beat would leave all-zero totals: a
    # reading of 0.0 that looks judged.  start() must raise instead.
    from gilx import instrument

    def broken(**_: bool) -> None:
        raise OSError("refused")

    monkeypatch.setattr(instrument, "_claim_cpu", broken)
    heart = Heartbeat()
    with pytest.raises(RuntimeError, match=r"failed to start.*refused"):
        heart.start()
    assert not heart.running
