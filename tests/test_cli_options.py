"""The gilx command's options: one spelling for the number of workers, the options the README
calls shared on every command, ``--version``, and every value out of an option's bounds a
one-line error with exit status 2 (never a traceback, never a measurement first)."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

import gilx
from gilx import cli
from gilx.cli import _build_parser, main

NO_FOLDER = "/no/such/folder/gilx.png"

#: (command line, text the one stderr line must contain).  Every option of every command that
#: has a type or choices appears here with values past its bounds (test_every_option_is_walked).
BAD = [
    (["teleport"], "invalid choice"),
    (["--bogus"], "unrecognized arguments"),
    (["tour", "--workers", "1"], "must be >= 2"),
    (["tour", "--workers", "257"], "must be <= 256"),
    (["tour", "--workers", "two"], "not an integer"),
    (["tour", "--start-method", "teleport"], "invalid choice"),
    (["tour", "--json", "--bogus"], "unrecognized arguments"),
    (["table", "--workers", "-3"], "must be >= 2"),
    (["table", "--workers", "1"], "must be >= 2"),
    (["table", "--workers", "257"], "must be <= 256"),
    (["table", "--workers", "1.5"], "not an integer"),
    (["table", "--start-method", "teleport"], "invalid choice"),
    (["race", "--kind", "bogus"], "invalid choice"),
    (["race", "--workers", "0"], "must be >= 1"),
    (["race", "--workers", "1025"], "must be <= 1024"),
    (["race", "--threads", "0"], "must be >= 1"),
    (["race", "--threads", "5000"], "must be <= 1024"),
    (["race", "--threads", "x"], "not an integer"),
    (["race", "--increments", "0"], "must be >= 1"),
    (["race", "--increments", "x"], "not an integer"),
    (["race", "--increments", str(2**63)], f"must be <= {2**63 - 1}"),
    (["race", "--threads", "4", "--increments", str(2**62)], "too large"),
    (["scale"], "required"),
    (["scale", "--workload", "gpu"], "invalid choice"),
    (["scale", "--workload", "py", "--mode", "fibers"], "invalid choice"),
    (["scale", "--workload", "py", "--workers", "0"], "must be >= 1"),
    (["scale", "--workload", "py", "--workers", "1,257"], "must be <= 256"),
    (["scale", "--workload", "py", "--workers", "1,x"], "not an integer"),
    (["scale", "--workload", "py", "--workers", ","], "expected worker counts"),
    (["scale", "--workload", "py", "--size", "0"], "must be >= 1"),
    (["scale", "--workload", "py", "--size", str(2**63)], f"must be <= {2**63 - 1}"),
    (["scale", "--workload", "py", "--size", "1e6"], "not an integer"),
    (["scale", "--workload", "py", "--repeats", "0"], "must be >= 1"),
    (["scale", "--workload", "py", "--repeats", "x"], "not an integer"),
    (["scale", "--workload", "py", "--start-method", "teleport"], "invalid choice"),
    (["scale", "--workload", "py", "--png", NO_FOLDER], "no such folder"),
    (["probe"], "required"),
    (["probe", "time"], "MODULE:CALLABLE"),
    (["probe", "no_such_module_gilx:f"], "cannot import"),
    (["probe", "time:no_such_function"], "no attribute"),
    (["probe", "sys:version"], "not callable"),
    (["probe", "time:sleep", "'a'"], "raised TypeError"),
    (["probe", "os:getpid", "--workers", "1"], "must be >= 2"),
    (["probe", "os:getpid", "--workers", "257"], "must be <= 256"),
    (["probe", "os:getpid", "--workers", "x"], "not an integer"),
    (["probe", "os:getpid", "--seconds", "0"], "must be a number of seconds > 0"),
    (["probe", "os:getpid", "--seconds", "-1"], "must be a number of seconds > 0"),
    (["probe", "os:getpid", "--seconds", "nan"], "must be a number of seconds > 0"),
    (["probe", "os:getpid", "--seconds", "inf"], "<= 60"),
    (["probe", "os:getpid", "--seconds", "61"], "<= 60"),
    (["probe", "os:getpid", "--seconds", "x"], "not a number"),
    (["timeline"], "required"),
    (["timeline", "--workload", "gpu"], "invalid choice"),
    (["timeline", "--workload", "py", "--workers", "0"], "must be >= 1"),
    (["timeline", "--workload", "py", "--workers", "17"], "must be <= 16"),
    (["timeline", "--workload", "py", "--threads", "17"], "must be <= 16"),
    (["timeline", "--workload", "py", "--seconds", "0"], "must be a number of seconds > 0"),
    (["timeline", "--workload", "py", "--seconds", "61"], "<= 60"),
    (["timeline", "--workload", "py", "--seconds", "nan"], "must be a number of seconds > 0"),
    (["timeline", "--workload", "py", "--width", "23"], "must be >= 24"),
    (["timeline", "--workload", "py", "--width", "1001"], "must be <= 1000"),
    (["timeline", "--workload", "py", "--width", "x"], "not an integer"),
    (["timeline", "--workload", "py", "--png", NO_FOLDER], "no such folder"),
    (["convoy", "--workload", "gpu"], "unknown workload 'gpu'"),
    (["convoy", "--workload", ","], "expected workloads"),
    (["convoy", "--beside", "gpu"], "invalid choice"),
    (["convoy", "--workers", "0"], "must be >= 1"),
    (["convoy", "--threads", "0"], "must be >= 1"),
    (["convoy", "--threads", "257"], "must be <= 256"),
]


def _one_line_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    try:
        status = main(args)
    except SystemExit as exc:  # argparse's own errors leave through exit(2)
        status = exc.code
    captured = capsys.readouterr()
    assert status == 2, captured
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_out_of_bounds_is_one_line_and_exit_2(args, message, capsys):
    assert message in _one_line_exit_2(args, capsys)


def test_png_naming_a_folder_is_refused_before_measuring(tmp_path, capsys):
    line = _one_line_exit_2(["scale", "--workload", "py", "--png", str(tmp_path)], capsys)
    assert "is a folder" in line


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = cli._build_parser()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_every_option_is_walked():
    """A new option with a type or choices needs its bounds in BAD."""
    missing = []
    for name, command in _commands().items():
        for action in command._actions:
            if not action.option_strings or (action.type is None and action.choices is None):
                continue
            if not any(a[:1] == [name] and set(a) & set(action.option_strings) for a, _ in BAD):
                missing.append(f"{name} {action.option_strings[0]}")
    assert missing == []


#: ``gilx watch`` runs the user's program and starts no workers of its own; its options
#: (--json, --interval) come before SCRIPT and gilx.watch_cli parses them (test_watch_cli.py).
MEASURING = {name: command for name, command in _commands().items() if name != "watch"}


def test_watch_is_the_one_command_without_workers():
    assert set(_commands()) - set(MEASURING) == {"watch"}


def test_workers_is_spelled_the_same_in_every_command():
    for name, command in MEASURING.items():
        spellings = {s for a in command._actions if a.dest == "workers" for s in a.option_strings}
        assert "--workers" in spellings, name


@pytest.mark.parametrize("spelling", ["--threads", "--workers"])
def test_race_and_timeline_keep_the_threads_spelling(spelling):
    parser = cli._build_parser()
    assert parser.parse_args(["race", spelling, "3"]).workers == 3
    assert parser.parse_args(["timeline", "--workload", "py", spelling, "3"]).workers == 3


def test_every_command_takes_the_shared_options():
    # The README's reference: --progress, --workers and --json everywhere (the tour's JSON is
    # its sections and its table), --start-method where processes start.
    for name, command in MEASURING.items():
        options = {s for a in command._actions for s in a.option_strings}
        assert {"--progress", "--workers"} <= options, name
        assert "--json" in options, name
        assert ("--start-method" in options) == (name in {"tour", "table", "scale"}), name


def test_version():
    done = subprocess.run(
        [sys.executable, "-m", "gilx", "--version"], capture_output=True, text=True, timeout=120
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, f"gilx {gilx.__version__}\n", "")


@pytest.mark.parametrize(
    "args",
    [
        ["probe", "os:getpid", "--workers", "1"],
        ["scale", "--workload", "py", "--size", str(2**64)],
        ["race", "--threads", "2", "--increments", str(2**62 * 3)],
        ["nonsense"],
    ],
)
def test_the_installed_command_prints_no_traceback(args):
    done = subprocess.run(
        [sys.executable, "-m", "gilx", *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = _build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("name", [n for n in _subcommands() if n != "watch"])
def test_every_subcommand_says_what_it_does_and_every_option_has_help(name):
    cmd = _subcommands()[name]
    assert cmd.description and len(cmd.description) > 40, name
    for action in cmd._actions:
        assert action.help, f"gilx {name} {action.option_strings or action.dest}: no help"


def test_workers_has_one_meaning_in_every_command():
    for name, cmd in _subcommands().items():
        for action in cmd._actions:
            if "--workers" in action.option_strings:
                assert action.help.startswith("how many workers run at once"), name


def test_watch_help_is_the_full_help():
    done = subprocess.run(
        [sys.executable, "-m", "gilx", "watch", "-h"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    for option in ("--json", "--interval", "-m MODULE", "SCRIPT"):
        assert option in done.stdout
    assert len(done.stdout.splitlines()) > 10


@pytest.mark.parametrize(
    "argv",
    [
        ["watch", "--interval", "abc", "x.py"],
        ["race", "--increments", "abc"],
        ["probe", "os:getpid", "--seconds", "abc"],
        ["scale", "--workload", "py", "--workers", "a,b"],
        ["timeline", "--workload", "py", "--width", "wide"],
    ],
    ids=lambda argv: argv[0],
)
def test_a_conversion_error_is_one_clean_line(argv):
    done = subprocess.run(
        [sys.executable, "-m", "gilx", *argv], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "could not convert" not in line and "invalid literal" not in line  # Python's words
    assert "Traceback" not in done.stderr
