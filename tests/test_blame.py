"""Blame (`gilx watch --top`, `gilx.watch(top=True)`): who held the GIL while others waited.

The programs here have culprits known by construction: a thread spinning in a named
Python function, a thread that holds the GIL while blocked in a foreign call
(``ctypes.PyDLL(...).usleep`` keeps the GIL), a thread burning CPU with the GIL
released, a thread sleeping.  Blame is a sample, and a busy machine moves its shares, so
the tests assert who is named and who is not, with retries, not how many milliseconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import gilx

needs_gil = pytest.mark.skipif(not gilx.gil_enabled(), reason="no GIL: nothing to blame")
linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="waits: Linux /proc")
# Blame judges several threads of one process at once: not with copies of itself.
alone = pytest.mark.thread_unsafe(reason="judges the threads of its own process")

ATTEMPTS = 4

CULPRITS = """
import ctypes, sys, threading, time
import gilx

stop = threading.Event()

def hog_python():
    while not stop.is_set():
        total = 0
        for i in range(5000):
            total += i

def hog_blocked():
    usleep = ctypes.PyDLL(None).usleep   # PyDLL: the GIL stays held in the call
    while not stop.is_set():
        usleep(2000)
        time.sleep(0.001)

def burn_released():
    while not stop.is_set():
        gilx.count_nogil(2_000_000)

def sleep_often():
    while not stop.is_set():
        time.sleep(0.001)

def main(seconds):
    threads = [threading.Thread(target=f, name=f.__name__)
               for f in (hog_python, hog_blocked, burn_released, sleep_often)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
"""


def gilx_watch(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gilx", "watch", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def program(tmp_path: Path, tail: str, name: str = "prog.py") -> str:
    path = tmp_path / name
    path.write_text(CULPRITS + textwrap.dedent(tail))
    return str(path)


def last_json(stderr: str) -> dict[str, object]:
    report: dict[str, object] = json.loads(stderr.strip().splitlines()[-1])
    return report


def culprits_named(blame: dict[str, object]) -> bool:
    """The two hogs are the top two holders while others waited, each named by its own
    function and thread; the released burner and the sleeper share at most 5 % of it."""
    holders = blame["holders"]
    assert isinstance(holders, list)
    by_function: dict[str, float] = {}
    for h in holders:
        by_function[h["function"]] = by_function.get(h["function"], 0.0) + h["share"]
        if h["function"] in ("hog_python", "hog_blocked"):
            assert h["thread"] == h["function"], h  # the stack is the holder's own
    top_two = sorted(by_function, key=lambda f: -by_function[f])[:2]
    innocent = by_function.get("burn_released", 0.0) + by_function.get("sleep_often", 0.0)
    return set(top_two) == {"hog_python", "hog_blocked"} and innocent <= 0.05


def run_culprits(seconds: float) -> tuple[gilx.Watch, dict[str, object]]:
    namespace: dict[str, object] = {}
    exec(compile(CULPRITS, "culprits", "exec"), namespace)
    main = namespace["main"]
    with gilx.watch(top=True) as w:
        main(seconds)  # type: ignore[operator]
    blame = w.to_dict()["blame"]
    assert isinstance(blame, dict)
    return w, blame


@needs_gil
@alone
def test_blame_names_the_threads_and_functions_that_held_the_gil():
    for _ in range(ATTEMPTS):
        w, blame = run_culprits(1.0)
        if culprits_named(blame):
            break
    else:
        pytest.fail(f"blame did not name the two hogs in {ATTEMPTS} runs: {blame['holders']}")
    assert w.blame is not None and w.blame.holders
    top = w.blame.holders[0]
    assert top.stack and top.stack[0].startswith(top.function)
    assert 0 < top.share <= 1 and top.seconds > 0


@needs_gil
def test_blame_json_has_the_contract_shape():
    _, blame = run_culprits(0.3)
    for t in blame["threads"]:  # type: ignore[attr-defined]
        assert isinstance(t["name"], str) and isinstance(t["native_id"], int)
        for key in ("held_share", "waited_share"):
            assert isinstance(t[key], float) and 0 <= t[key] <= 1
        assert isinstance(t["longest_wait_s"], float) and t["longest_wait_s"] >= 0
    for h in blame["holders"]:  # type: ignore[attr-defined]
        assert {"function", "file", "line", "thread", "seconds", "share", "stack"} <= set(h)
        assert isinstance(h["line"], int) and isinstance(h["stack"], list)
        assert all(isinstance(f, str) for f in h["stack"])
    for p in blame["waits"]:  # type: ignore[attr-defined]
        assert set(p) == {"waiter", "holder", "seconds"} and p["seconds"] > 0
    assert isinstance(blame["judged"], bool)
    json.dumps(blame)


@needs_gil
@linux
@alone
def test_waiters_and_pairs_name_who_made_whom_wait():
    for _ in range(ATTEMPTS):
        w, _ = run_culprits(1.0)
        blame = w.blame
        assert blame is not None
        if not blame.waits_seen:
            pytest.fail(f"waits not seen on Linux: {blame.notes}")
        threads = {t.name: t for t in blame.threads}
        pairs = {(p.waiter, p.holder) for p in blame.waits}
        # The sleeper wants the GIL back every millisecond and the hogs keep it: it waits,
        # and it waits on them.
        if (
            threads.get("sleep_often") is not None
            and threads["sleep_often"].waited_share > 0
            and threads["sleep_often"].longest_wait_s > 0
            and ("sleep_often", "hog_python") in pairs
        ):
            break
    else:
        pytest.fail(f"no wait of sleep_often on hog_python seen: {blame.waits}")


@needs_gil
def test_a_disturbed_reading_marks_its_blame_not_judged():
    from gilx._present import NOT_JUDGED, blame_text

    w, _ = run_culprits(0.2)
    assert w.blame is not None
    assert w.blame.judged == w.judgement.judged  # one judgement, the watch's
    unjudged = w.blame.judged_as(False)
    assert unjudged.to_dict()["judged"] is False
    assert NOT_JUDGED in blame_text(unjudged, None, 0.0, 0.0)
    assert NOT_JUDGED not in blame_text(w.blame.judged_as(True), None, 0.0, 0.0)


def test_a_plain_watch_has_no_blame():
    with gilx.watch() as w:
        time.sleep(0.01)
    assert "blame" not in w.to_dict() and w.blame is None


def test_top_must_be_a_bool():
    with pytest.raises(TypeError, match="top"):
        gilx.watch(top=1)  # type: ignore[arg-type]


@pytest.mark.skipif(gilx.gil_enabled(), reason="a GIL build has a GIL to blame")
def test_no_gil_no_blame_and_says_why(tmp_path):
    with gilx.watch(top=True) as w:
        time.sleep(0.05)
    assert w.to_dict()["blame"] is None
    assert w.blame_unavailable and "free-threaded" in w.blame_unavailable
    assert w.to_dict()["blame_unavailable"] == w.blame_unavailable
    prog = tmp_path / "p.py"
    prog.write_text("import time\ntime.sleep(0.05)\n")
    done = gilx_watch("--top", str(prog))
    assert done.returncode == 0
    assert "blame: none" in done.stderr and "stop-the-world" in done.stderr
    assert "held while another thread waited" not in done.stderr


# --- the command line -------------------------------------------------------------------


@needs_gil
@alone
def test_cli_top_reports_threads_holders_and_pairs(tmp_path):
    prog = program(tmp_path, "main(1.0)\n")
    for _ in range(ATTEMPTS):
        done = gilx_watch("--top", "--json", prog)
        assert done.returncode == 0, done.stderr
        report = last_json(done.stderr)
        blame = report["blame"]
        assert isinstance(blame, dict)
        if culprits_named(blame):
            break
    else:
        pytest.fail(f"--top did not name the two hogs: {done.stderr[-2000:]}")
    text = gilx_watch("--top", prog)
    assert text.returncode == 0
    assert "held the GIL while another thread waited" in text.stderr
    assert "hog_python" in text.stderr and "who made whom wait" in text.stderr
    assert "\x1b[" not in text.stderr  # no live view when stderr is not a terminal


@needs_gil
def test_cli_flame_writes_collapsed_stacks(tmp_path):
    prog = program(tmp_path, "main(0.5)\n")
    flame = tmp_path / "out.folded"
    done = gilx_watch("--flame", str(flame), prog)
    assert done.returncode == 0, done.stderr
    lines = flame.read_text().splitlines()
    assert lines, done.stderr
    for line in lines:
        frames, count = line.rsplit(" ", 1)
        assert int(count) > 0
        assert frames.split(";")[0] in {
            "hog_python",
            "hog_blocked",
            "burn_released",
            "sleep_often",
            "MainThread",
        }
    assert any(line.split(";")[-1].startswith(("hog_python", "hog_blocked")) for line in lines)


@pytest.mark.parametrize(
    ("tail", "status"),
    [("main(0.3)\nsys.exit(3)\n", 3), ("main(0.3)\nraise ValueError('boom')\n", 1)],
)
def test_a_script_that_exits_or_raises_keeps_its_status_and_gets_blame(tmp_path, tail, status):
    prog = program(tmp_path, tail)
    done = gilx_watch("--top", "--json", prog)
    assert done.returncode == status, done.stderr
    blame = last_json(done.stderr)["blame"]
    if gilx.gil_enabled():
        assert isinstance(blame, dict) and blame["threads"]
    else:  # no GIL: no blame, said so, whatever the exit
        assert blame is None and "blame: none" not in done.stderr  # --json: no text
    if status == 1:
        assert "ValueError: boom" in done.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--top", "no_such_script.py"], "no such file"),
        (["--top", "--interval", "0", "x.py"], "--interval"),
        (["--top", "--interval", "-1", "x.py"], "--interval"),
        (["--top", "--flame"], "--flame needs"),
        (["--flame", "/no/such/dir/out.folded", "PROG"], "cannot write"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, words):
    prog = tmp_path / "x.py"
    prog.write_text("print('ran')\n")
    args = [str(prog) if a in ("PROG", "x.py") else a for a in args]
    done = gilx_watch(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""  # the program did not run
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], done.stderr


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root")
def test_unwritable_flame_file_is_refused_before_the_run(tmp_path):
    target = tmp_path / "locked.folded"
    target.write_text("")
    target.chmod(0o400)
    prog = tmp_path / "x.py"
    prog.write_text("print('ran')\n")
    done = gilx_watch("--flame", str(target), str(prog))
    assert done.returncode == 2 and done.stdout == ""
    assert "cannot write" in done.stderr


# --- never crash the watched program ----------------------------------------------------

CHURN = """
import os, sys, threading, time
import gilx

stop = threading.Event()

def hog():
    while not stop.is_set():
        sum(range(2000))

def short_life(i):
    total = 0
    for k in range(200 + i % 300):
        total += k

def churn(rounds):
    for r in range(rounds):
        batch = [threading.Thread(target=short_life, args=(i,), name=f"churn-{r}-{i}")
                 for i in range(20)]
        for t in batch:
            t.start()
        for t in batch:
            t.join()

def forked():
    pid = os.fork()
    if pid == 0:
        # The child: the sampler and the heartbeat are not here.  Threads, a watch of
        # its own, and a normal exit must all work.
        t = threading.Thread(target=short_life, args=(1,))
        t.start(); t.join()
        with gilx.watch(top=True) as w:
            short_life(5000)
        os._exit(0 if w.to_dict()["blame"] is not None else 7)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)

def main():
    h = threading.Thread(target=hog, name="hog")
    h.start()
    churn(15)                     # 300 short-lived threads
    code = forked()
    churn(10)
    stop.set()
    h.join()
    print("child", code)
"""


@needs_gil
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_churn_of_short_threads_and_a_fork_never_crash(tmp_path):
    prog = tmp_path / "churn.py"
    prog.write_text(CHURN + "\nif __name__ == '__main__':\n    main()\n")
    done = gilx_watch("--top", "--json", "--interval", "0.0002", str(prog))
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "child 0"
    blame = last_json(done.stderr)["blame"]
    assert isinstance(blame, dict)
    names = {t["name"] for t in blame["threads"]}  # type: ignore[union-attr]
    assert "hog" in names
    # A holder's stack is read from the thread state that matched the sample: the hog's
    # function is never filed under a churn thread, nor a churn thread's under the hog.
    for h in blame["holders"]:  # type: ignore[union-attr]
        if h["thread"] == "hog":
            assert h["function"] != "short_life", h
        if h["thread"].startswith("churn-"):
            assert h["function"] != "hog", h


# --- an ordinary user --------------------------------------------------------------------


def _capabilities() -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except OSError:
        return None
    return None


@needs_gil
@linux
@alone
@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="runs as root; CI runs this test again as an unprivileged user (gilxuser)",
)
def test_blame_works_as_an_unprivileged_user(tmp_path):
    """No root, no capabilities, no ptrace: blame still names the holders and sees the
    waiters (a process may read its own threads' /proc/self/task/*/syscall)."""
    assert _capabilities() in (0, None)
    for _ in range(ATTEMPTS):
        w, blame = run_culprits(1.0)
        assert w.blame is not None and w.blame.waits_seen, w.blame and w.blame.notes
        if culprits_named(blame):
            break
    else:
        pytest.fail(f"as an ordinary user, blame did not name the hogs: {blame['holders']}")


@alone
def test_live_threads_are_not_disturbed_by_a_blame_watch():
    """A watch with top=True joins its sampler thread at the end: no thread is left."""
    before = threading.active_count()
    with gilx.watch(top=True):
        time.sleep(0.02)
    assert threading.active_count() == before
