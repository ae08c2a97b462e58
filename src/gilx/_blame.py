"""Blame: which thread, in which function, held the GIL while other threads waited.

Used by ``gilx.watch(top=True)`` and ``gilx watch --top``.  The C side is
csrc/harness/blame.c; what it does, in short:

* **Who holds it.**  A sampler thread of its own (plain C, no Python thread
  state, never takes the GIL) reads, at one random instant per interval, the
  GIL's ``locked`` flag and ``last_holder``: the thread state that holds it,
  exactly, as py-spy reads it from outside.  That address is only compared
  with the live thread states, never followed (it may be freed once the GIL
  is free).  The heartbeat cannot do this itself: it is blocked in the very
  waits blame is about, and the instants it knocks at are not a fair sample.
* **Where.**  At every beat the heartbeat holds the GIL for an instant; then
  every other thread is stopped where it was, and the holders sampled since
  the last beat are matched against the thread list and their Python stacks
  read.  A holder made to let go is stopped mid-function, so its stack is
  where it held the GIL; the stack is the one at the beat after the sample
  (at most an interval plus a wait later), not at the sampled instant.
* **Who waits.**  On Linux the sampler also reads each thread's
  ``/proc/self/task/TID/syscall`` (a process may read its own threads' without
  ptrace rights): a thread asleep in a futex on the GIL's own mutex or
  condition variable is waiting for it.  A waiter that was woken and is only
  waiting for a CPU reads "running" and is missed, so waits are a lower bound
  on a busy machine.  Elsewhere waits are not seen (``waits_seen`` false).

Every count is of sampled instants; seconds are counts times the watch's
seconds per instant.  "Held while another waited" is an instant at which the
GIL was held and at least one other program thread was asleep waiting for it
(the heartbeat and the sampler are not program threads).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, replace
from types import CodeType
from typing import TYPE_CHECKING, Any

from gilx import _core

if TYPE_CHECKING:
    from gilx._watch import Watch

#: Threads whose waits the sampler looks at, at most, at once (csrc's GILX_BLAME_SLOTS).
WAIT_SLOTS = 64


@dataclass(frozen=True)
class ThreadBlame:
    """One thread: shares of the watched time it held the GIL and waited for it."""

    name: str
    native_id: int
    held_share: float
    waited_share: float
    longest_wait_s: float
    held_while_waited_s: float
    waits_seen: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "native_id": self.native_id,
            "held_share": self.held_share,
            "waited_share": self.waited_share,
            "longest_wait_s": self.longest_wait_s,
            "waits_seen": self.waits_seen,
        }


@dataclass(frozen=True)
class Holder:
    """A Python location (innermost frame first in ``stack``) that held the GIL while
    another thread waited: ``seconds`` of it, ``share`` of all such time."""

    function: str
    file: str
    line: int
    thread: str
    seconds: float
    share: float
    stack: tuple[str, ...]
    held_s: float

    def to_dict(self) -> dict[str, object]:
        return {
            "function": self.function,
            "file": self.file,
            "line": self.line,
            "thread": self.thread,
            "seconds": self.seconds,
            "share": self.share,
            "stack": list(self.stack),
        }


@dataclass(frozen=True)
class WaitPair:
    """``waiter`` waited ``seconds`` while ``holder`` held the GIL."""

    waiter: str
    holder: str
    seconds: float

    def to_dict(self) -> dict[str, object]:
        return {"waiter": self.waiter, "holder": self.holder, "seconds": self.seconds}


#: What an instant's holder is called when it could not be named: a thread that ended (or
#: started) between the sample and the next beat, or one of another interpreter.
UNKNOWN_HOLDER = "?"


@dataclass(frozen=True)
class Blame:
    """Who held the GIL while others waited, over one watch.

    ``threads``, ``holders`` (sorted, most first) and ``waits`` as in the contract's
    ``"blame"`` object; ``judged``: false when the watch's reading was disturbed (the
    shares may then be off: they are shown, marked).  ``samples``: instants sampled;
    ``waiting_s``: time the GIL was held while another thread waited; ``unknown_share``:
    of the held instants, those whose holder could not be named; ``notes``: what the
    reader should know about this run's blame, in words.
    """

    seconds: float
    samples: int
    interval: float
    threads: tuple[ThreadBlame, ...]
    holders: tuple[Holder, ...]
    waits: tuple[WaitPair, ...]
    waiting_s: float
    unknown_share: float
    waits_seen: bool
    judged: bool = True
    notes: tuple[str, ...] = ()
    flame: tuple[tuple[tuple[str, ...], int], ...] = ()
    #: Every location that held the GIL, whether or not another thread waited, most first
    #: (``held_s``): where a single thread's holds went.
    holding: tuple[Holder, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "threads": [t.to_dict() for t in self.threads],
            "holders": [h.to_dict() for h in self.holders],
            "waits": [w.to_dict() for w in self.waits],
            "judged": self.judged,
            "samples": self.samples,
            "interval_s": self.interval,
            "held_while_waited_s": self.waiting_s,
            "unknown_share": self.unknown_share,
            "waits_seen": self.waits_seen,
            "notes": list(self.notes),
        }

    def collapsed(self) -> str:
        """The held-while-others-waited samples as collapsed stacks (``root;...;leaf count``
        per line: what flamegraph.pl, inferno and speedscope read), the thread as root."""
        return "".join(f"{';'.join(frames)} {count}\n" for frames, count in self.flame)

    def by_function(self) -> list[tuple[str, str, float, float]]:
        """The holders summed per (function, thread), most first: (function, thread,
        seconds held while another waited, share of all waiting)."""
        sums: dict[tuple[str, str], list[float]] = {}
        for h in self.holders:
            acc = sums.setdefault((h.function, h.thread), [0.0, 0.0])
            acc[0] += h.seconds
            acc[1] += h.share
        rows = [(f, t, secs, share) for (f, t), (secs, share) in sums.items()]
        return sorted(rows, key=lambda r: (-r[2], r[0], r[1]))

    def judged_as(self, judged: bool) -> Blame:
        """This blame, marked judged or not (from the watch's ``disturbed``)."""
        return replace(self, judged=judged)


def _frame_text(code: CodeType, line: int) -> str:
    return f"{code.co_name} ({code.co_filename}:{line})"


def _flame_frame(code: CodeType, line: int) -> str:
    # ';' separates frames and the last ' ' the count: neither may be in a name.
    return f"{code.co_name} ({os.path.basename(code.co_filename)}:{line})".replace(";", ":")


class BlameRecorder:
    """The C recorder (csrc/harness/blame.c) and what its counts mean.

    ``capsule`` goes to the heartbeat (``Heartbeat(blame=...)``), which files the
    sampler's instants at each beat.  ``start()`` before the heartbeat starts, ``stop()``
    after it stopped; ``blame(seconds)`` any time (live) or after.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.capsule = _core.blame_new(round(interval * 1e9), random.getrandbits(64))
        self._names: dict[int, str] = {}

    def start(self) -> None:
        _core.blame_start(self.capsule)

    def stop(self) -> None:
        _core.blame_stop(self.capsule)

    def blame(self, seconds: float, *, judged: bool = True) -> Blame:
        """The blame so far; ``seconds``: the watched time the samples cover."""
        return build(_core.blame_take(self.capsule), seconds, self.interval, judged)


def _thread_name(ident: int, thread: Any) -> str:
    name = getattr(thread, "name", None)
    return str(name) if name is not None else f"thread {ident}"


def build(raw: dict[str, Any], seconds: float, interval: float, judged: bool) -> Blame:
    """A :class:`Blame` from ``_core.blame_take``'s counts."""
    samples = int(raw["samples"])
    per = seconds / samples if samples else 0.0  # seconds per sampled instant
    share = 1.0 / samples if samples else 0.0
    waits_seen = int(raw["looked"]) > 0
    names = [_thread_name(t[0], t[2]) for t in raw["threads"]]
    threads = []
    for (_ident, native, _thread, held, held_waited, waited, looked, longest), name in zip(
        raw["threads"], names, strict=True
    ):
        if held == 0 and waited == 0:
            continue  # alive, never seen holding or waiting: not news
        threads.append(
            ThreadBlame(
                name=name,
                native_id=int(native),
                held_share=held * share,
                waited_share=waited * share,
                longest_wait_s=longest * per,
                held_while_waited_s=held_waited * per,
                waits_seen=looked > 0,
            )
        )
    threads.sort(key=lambda t: (-t.held_share, -t.waited_share, t.name))
    waited_total = sum(s[3] for s in raw["stacks"]) + int(raw["unknown_waited"])
    holders, holding = [], []
    flame = []
    for index, frames, held, held_waited in raw["stacks"]:
        thread = names[index]
        if frames:
            code, line = frames[0]
            function, file, line_no = code.co_name, code.co_filename, int(line)
        else:
            function, file, line_no = "<no Python frame>", "", 0
        holder = Holder(
            function=function,
            file=file,
            line=line_no,
            thread=thread,
            seconds=held_waited * per,
            share=held_waited / waited_total if waited_total else 0.0,
            stack=tuple(_frame_text(c, ln) for c, ln in frames),
            held_s=held * per,
        )
        if held:
            holding.append(holder)
        if held_waited == 0:
            continue
        holders.append(holder)
        root = thread.replace(";", ":").replace(" ", "_")
        flame.append(((root, *(_flame_frame(c, ln) for c, ln in reversed(frames))), held_waited))
    # Threads that share a name (a pool's, one after the other) share their lines: the
    # reader knows them by name.  The per-thread table keeps them apart (native ids).
    holders = _merged(holders)
    holding = _merged(holding)
    holders.sort(key=lambda h: (-h.seconds, h.thread, h.function))
    holding.sort(key=lambda h: (-h.held_s, h.thread, h.function))
    flames: dict[tuple[str, ...], int] = {}
    for frames_, count in flame:
        flames[frames_] = flames.get(frames_, 0) + count
    flame = sorted(flames.items(), key=lambda f: -f[1])
    pair_seconds: dict[tuple[str, str], float] = {}
    for w, h, count in raw["pairs"]:
        key = (names[w], names[h] if h >= 0 else UNKNOWN_HOLDER)
        pair_seconds[key] = pair_seconds.get(key, 0.0) + count * per
    waits = [WaitPair(waiter=w, holder=h, seconds=secs) for (w, h), secs in pair_seconds.items()]
    waits.sort(key=lambda p: (-p.seconds, p.waiter, p.holder))
    held_total = sum(t[3] for t in raw["threads"]) + int(raw["unknown"])
    notes = _notes(raw, waits_seen)
    return Blame(
        seconds=seconds,
        samples=samples,
        interval=interval,
        threads=tuple(threads),
        holders=tuple(holders),
        waits=tuple(waits),
        waiting_s=waited_total * per,
        unknown_share=int(raw["unknown"]) / held_total if held_total else 0.0,
        waits_seen=waits_seen,
        judged=judged,
        notes=tuple(notes),
        flame=tuple(flame),
        holding=tuple(holding),
    )


def _merged(holders: list[Holder]) -> list[Holder]:
    """One line per (thread name, stack): the sums of threads that share a name."""
    merged: dict[tuple[str, tuple[str, ...]], Holder] = {}
    for h in holders:
        key = (h.thread, h.stack)
        seen = merged.get(key)
        merged[key] = (
            h
            if seen is None
            else replace(
                seen,
                seconds=seen.seconds + h.seconds,
                share=seen.share + h.share,
                held_s=seen.held_s + h.held_s,
            )
        )
    return list(merged.values())


def _notes(raw: dict[str, Any], waits_seen: bool) -> list[str]:
    notes = []
    if not waits_seen and int(raw["samples"]) > int(raw["free"]):
        notes.append(
            "waits not seen here (they are read from Linux's /proc/self/task/*/syscall):"
            " waited shares and waiter <- holder pairs are empty, not zero"
        )
    if int(raw["left_out"]):
        notes.append(
            f"more than {WAIT_SLOTS} threads at once: the waits of {raw['left_out']} were"
            " not looked at"
        )
    late = int(raw["late"])
    if int(raw["samples"]) and late / int(raw["samples"]) > 0.05:
        notes.append(
            f"the sampler woke late for {late / int(raw['samples']):.0%} of the instants (a busy"
            " machine): those were labelled with the holder it found on waking"
        )
    if int(raw["dropped"]):
        notes.append(f"{raw['dropped']} samples lost (no heartbeat beat for a long time)")
    if int(raw["errors"]):
        notes.append(f"{raw['errors']} beats could not file their samples (out of memory)")
    return notes


def unavailable_reason() -> str | None:
    """Why blame cannot run in this process, or None when it can."""
    from gilx._gilstate import gil_enabled

    if not gil_enabled():
        return "no GIL in this process (free-threaded build, GIL off): nobody holds it"
    try:
        _core.blame_take(_core.blame_new(1_000_000, 1))
    except NotImplementedError as exc:
        return str(exc)
    return None


def two_culprits(seconds: float) -> Watch:
    """The tour's example (and examples/two_culprits.py's shape): two threads keep the GIL
    (one in Python, one in a C call that does not release it) from four threads that
    answer "requests"; watched with ``top=True``.  Returns the finished watch."""
    import threading
    import time

    from gilx._watch import watch

    stop = threading.Event()

    def _rebuild_index() -> None:
        while not stop.is_set():
            index = {}
            for i in range(20_000):
                index[str(i)] = i * i

    def _checksum_blocks() -> None:
        while not stop.is_set():
            _core.count_gil(3_000_000)

    def _handle_requests() -> None:
        while not stop.is_set():
            time.sleep(0.001)

    threads = [
        threading.Thread(target=_rebuild_index, name="indexer"),
        threading.Thread(target=_checksum_blocks, name="checksummer"),
    ]
    threads += [threading.Thread(target=_handle_requests, name=f"handler-{i}") for i in range(4)]
    with watch(top=True) as w:
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join()
    return w
