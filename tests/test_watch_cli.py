"""`gilx watch`: runs a program in-process as `python SCRIPT` would, then reports on stderr."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import asan_loaded

from gilx import gil_enabled

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "threaded_work.py"


def gilx_watch(
    *args: str, stdin: str = "", cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gilx", "watch", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "prog.py"
    path.write_text(textwrap.dedent(body))
    return str(path)


def test_the_program_runs_as_main_with_its_argv_stdin_and_stdout(tmp_path):
    prog = script(
        tmp_path,
        """
        import sys
        if __name__ == "__main__":
            print("argv", sys.argv[1:], "in", sys.stdin.read().strip())
        """,
    )
    done = gilx_watch(prog, "a", "--json", "-x", stdin="hello\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "argv ['a', '--json', '-x'] in hello\n"
    assert "GIL held" in done.stderr and "wait for the GIL" in done.stderr


def test_json_report_is_the_last_line_of_stderr(tmp_path):
    prog = script(tmp_path, "import sys\nprint('out')\nprint('err', file=sys.stderr)\n")
    done = gilx_watch("--json", "--interval", "0.002", prog)
    assert done.returncode == 0
    assert done.stdout == "out\n"
    lines = done.stderr.strip().splitlines()
    assert lines[0] == "err"
    report = json.loads(lines[-1])
    assert {"seconds", "hold_fraction", "latency", "gil_enabled"} <= set(report)
    assert set(report["latency"]) == {"p50", "p90", "p99", "max"}


def test_json_report_has_the_schema_and_machine_block_of_the_other_commands(tmp_path):
    from gilx import machine
    from gilx._present import JSON_SCHEMA

    done = gilx_watch("--json", script(tmp_path, "import time\ntime.sleep(0.02)\n"))
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["schema"] == JSON_SCHEMA
    assert set(report["machine"]) == set(machine.describe())
    assert isinstance(report["disturbed"], bool)
    meter = report["meter"]
    assert {"missed_share", "late_share", "other_cores", "steal_cores"} <= set(meter)
    assert meter["heartbeat_priority"] in ("fifo", "short-slice", "normal")


def test_the_exit_status_is_the_programs(tmp_path):
    assert gilx_watch(script(tmp_path, "import sys\nsys.exit(3)\n")).returncode == 3
    done = gilx_watch(script(tmp_path, "raise SystemExit('bye')\n"))
    assert done.returncode == 1 and "bye" in done.stderr


def test_an_exception_prints_its_traceback_then_the_report(tmp_path):
    prog = script(tmp_path, "def f():\n    raise ValueError('boom')\nf()\n")
    done = gilx_watch(prog)
    assert done.returncode == 1
    err = done.stderr
    assert err.startswith("Traceback (most recent call last):")
    assert "ValueError: boom" in err and "runpy" not in err and "watch_cli" not in err
    assert err.index("ValueError: boom") < err.index("GIL held")


def test_a_module_runs_with_dash_m(tmp_path):
    (tmp_path / "watched_mod_gilx.py").write_text(
        "import sys\nif __name__ == '__main__':\n    print('module', sys.argv[1:])\n"
    )
    done = gilx_watch("-m", "watched_mod_gilx", "x", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "module ['x']\n"


def test_the_gilx_launcher_finds_a_module_in_the_current_directory(tmp_path):
    launcher = Path(sys.executable).with_name("gilx")
    if not launcher.exists():
        pytest.skip("no gilx launcher next to this interpreter")
    (tmp_path / "here_mod_gilx.py").write_text("print('found', __name__)\n")
    done = subprocess.run(
        [str(launcher), "watch", "-m", "here_mod_gilx"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "found __main__\n"


def test_the_report_waits_for_the_programs_threads(tmp_path):
    prog = script(
        tmp_path,
        """
        import threading
        from gilx import _core
        threading.Thread(target=_core.duty_cycle, args=(0.3, 1.0, 0.01)).start()
        """,
    )
    done = gilx_watch("--json", prog)
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["seconds"] >= 0.3


def test_the_example_script_runs_under_watch():
    done = gilx_watch("--json", str(EXAMPLE), "2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("2 threads done")
    hold = json.loads(done.stderr.splitlines()[-1])["hold_fraction"]
    # The threads alternate a pure-Python loop (GIL held) with hashing and sleeping
    # (released): neither never nor always held, where there is a GIL.  Under ASan the
    # Python loop runs several times slower than the rest, and the mix really moves
    # towards held (0.974 read in CI): there only "not always" is the claim.
    if gil_enabled():
        assert 0.05 < hold < (0.995 if asan_loaded() else 0.95)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no_such_script_gilx.py"], "no such file"),
        (["-m", "no_such_module_gilx"], "no module named"),
        ([], "which program"),
        (["-m"], "needs a module"),
        (["--interval", "0", "x.py"], "positive"),
        (["--interval", "soon", "x.py"], "--interval"),
        (["--bogus", "x.py"], "unknown option"),
    ],
)
def test_mistakes_are_one_line_and_exit_2(args, message):
    done = gilx_watch(*args)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert message in done.stderr and "Traceback" not in done.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a pseudo-terminal")
def test_a_terminal_gets_a_live_status_line(tmp_path):
    import os
    import pty

    prog = script(tmp_path, "import time\ntime.sleep(1.3)\n")
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gilx", "watch", prog], stdin=slave, stdout=slave, stderr=slave
    )
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert proc.wait(timeout=60) == 0
    text = seen.decode(errors="replace")
    assert "\rgilx watch:" in text and "GIL held" in text  # the live line, then the report


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT")
def test_ctrl_c_gives_the_traceback_the_report_and_status_130(tmp_path):
    import signal
    import time

    prog = script(tmp_path, "import time\nprint('ready', flush=True)\ntime.sleep(60)\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gilx", "watch", prog],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "KeyboardInterrupt" in err and "GIL held" in err
