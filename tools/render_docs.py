"""Keep the numbers and code links in README.md and docs/*.md true.

    python tools/render_docs.py            # re-run every command, refresh links
    python tools/render_docs.py --links    # refresh the csrc/ line links only
    python tools/render_docs.py --check    # exit 1 if a csrc/ link is stale (CI)
    python tools/render_docs.py --only @ft # re-run only the blocks whose command has "@ft"

Two kinds of markers, so that no number or line number is typed by hand:

* Output of a command::

      <!-- gilx:run gilx race --increments 1000000 -->
      ```text
      (replaced by what the command printed, on the machine named above it)
      ```
      <!-- gilx:end -->

  ``CMD ::from TEXT`` keeps the output from the first line starting with TEXT;
  ``CMD ::from TEXT ::until END`` also stops before the next line starting with END.
  ``@FLAVOUR CMD`` runs ``CMD`` (its ``gilx`` / ``python``) on a CPython built
  by ``tools/build_cpython.sh FLAVOUR`` (gil, ft, tsan-ft), in a venv beside
  that build with gilx installed from this checkout; ``@FLAVOUR`` as an
  argument is replaced by that interpreter's path.  So numbers from a
  free-threaded build and from the GIL build of the same source are rendered,
  never typed.
  ``<!-- gilx:machine -->...<!-- gilx:end -->`` is replaced by a line naming
  the machine and the date the commands ran on.

* A link into the C sources, titled with what it points at::

      [the chunked loop](csrc/reference/count.c#L47-L80 "count_chunked")

  The line range is recomputed from the title: a function defined at column 0
  (PEP 7 puts the name at the start of its line), a ``#define NAME``, a
  ``typedef ... } NAME;``, or ``text:SOME TEXT`` for the first line holding
  that text.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

RUN = re.compile(
    r"(<!-- gilx:run (?P<cmd>.+?) -->\n)```text\n.*?```\n(<!-- gilx:end -->)", re.DOTALL
)
MACHINE = re.compile(r"(<!-- gilx:machine -->).*?(<!-- gilx:end -->)", re.DOTALL)
LINK = re.compile(r'\]\((?P<path>(?:\.\./)?csrc/[\w./]+)(?:#L\d+(?:-L\d+)?)? "(?P<symbol>[^"]+)"\)')


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"Measured on {datetime.date.today().isoformat()}: {os.cpu_count()} CPU(s) ({cpu}), "
        f"{platform.system()} {platform.release()}, "
        f"{platform.python_implementation()} {platform.python_version()}."
    )


_FLAVOUR_PYTHONS: dict[str, str] = {}


def flavour_python(flavour: str) -> str:
    """A python of the ``flavour`` build (built or reused) with gilx installed from here."""
    if flavour not in _FLAVOUR_PYTHONS:
        built = subprocess.run(
            ["bash", str(ROOT / "tools" / "build_cpython.sh"), flavour],
            capture_output=True,
            text=True,
        )
        if built.returncode != 0:
            raise SystemExit(f"render_docs: no {flavour} build:\n{built.stderr}")
        python = Path(built.stdout.strip().splitlines()[-1])
        venv = python.parent.parent.parent / f"render-venv-{flavour}"
        if not (venv / "bin" / "python").exists():
            subprocess.run([str(python), "-m", "venv", str(venv)], check=True)
        print(f"render_docs: installing gilx into {venv}", file=sys.stderr)
        # From a copy: setuptools builds in ./build, which another build of
        # this checkout (a venv, a test) may be using at the same time.
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "gilx"
            shutil.copytree(
                ROOT,
                src,
                ignore=shutil.ignore_patterns(
                    ".git", ".venv*", "build", "*.egg-info", "__pycache__"
                ),
            )
            pip = [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--prefer-binary",
            ]
            subprocess.run([*pip, "--force-reinstall", "--no-deps", str(src)], check=True)
            subprocess.run([*pip, str(src)], check=True)
        _FLAVOUR_PYTHONS[flavour] = str(venv / "bin" / "python")
    return _FLAVOUR_PYTHONS[flavour]


#: Output of each command run so far: blocks showing parts of one command's output (``::from``)
#: come from one run of it, so they agree with each other (and a tour runs once, not per block).
_OUTPUTS: dict[str, str] = {}


def run_command(cmd: str) -> str:
    """Run ``cmd``; ``CMD ::from TEXT`` keeps its output from the first line starting with TEXT,
    ``::until END`` up to the next line starting with END (without it and the blank lines above)."""
    cmd, _, keep_from = cmd.partition(" ::from ")
    keep_from, _, until = keep_from.partition(" ::until ")
    if cmd not in _OUTPUTS:
        _OUTPUTS[cmd] = _run(cmd)
    lines = _OUTPUTS[cmd].rstrip("\n").splitlines()
    if keep_from:
        starts = [i for i, line in enumerate(lines) if line.startswith(keep_from)]
        if not starts:
            raise SystemExit(f"render_docs: {cmd!r} printed no line starting {keep_from!r}")
        lines = lines[starts[0] :]
    if until:
        ends = [i for i, line in enumerate(lines) if i > 0 and line.startswith(until)]
        if not ends:
            raise SystemExit(f"render_docs: {cmd!r} printed no line starting {until!r}")
        lines = lines[: ends[0]]
        while lines and not lines[-1].strip():
            lines.pop()
    return "\n".join(lines) + "\n"


def _run(cmd: str) -> str:
    """What ``cmd`` printed (its stdout; with a trailing ``2>&1``, stderr too)."""
    # `CMD 2>&1`: show stderr too (gilx watch reports there), whatever the exit status.
    merge = cmd.endswith(" 2>&1")
    argv = shlex.split(cmd.removesuffix(" 2>&1"))
    python = sys.executable
    if argv[0].startswith("@"):
        python = flavour_python(argv.pop(0)[1:])
    argv = [flavour_python(a[1:]) if a.startswith("@") else a for a in argv]
    if argv[0] == "gilx":
        argv = [python, "-m", "gilx", *argv[1:]]
    elif argv[0] == "python":
        argv = [python, *argv[1:]]
    done = subprocess.run(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge else subprocess.PIPE,
        text=True,
        cwd=ROOT,
        timeout=600,
        env={**os.environ, "COLUMNS": "100"},
    )
    if done.returncode != 0 and not merge:
        raise SystemExit(f"render_docs: {cmd!r} failed:\n{done.stderr}")
    return done.stdout


def symbol_lines(source: Path, symbol: str) -> tuple[int, int]:
    """1-based first and last line of ``symbol`` in ``source``."""
    lines = source.read_text(encoding="utf-8").splitlines()
    if symbol.startswith("text:"):
        needle = symbol[len("text:") :]
        for i, line in enumerate(lines):
            if needle in line:
                return i + 1, i + 1
        raise SystemExit(f"render_docs: {needle!r} not found in {source}")
    for i, line in enumerate(lines):
        if re.match(rf"#\s*define {re.escape(symbol)}\b", line):
            return i + 1, i + 1
        if re.match(rf"{re.escape(symbol)}\(", line):  # a function: name at column 0
            first = i if i > 0 and lines[i - 1].strip() and "(" not in lines[i - 1] else i + 1
            for j in range(i, len(lines)):
                if lines[j] == "}" or lines[j].startswith("};"):
                    return first, j + 1
        if re.match(rf"}}\s*{re.escape(symbol)};", line):  # end of a typedef
            for j in range(i, -1, -1):
                if lines[j].startswith("typedef"):
                    return j + 1, i + 1
        if re.match(rf"(static )?(const )?\w[\w ]*\b{re.escape(symbol)}\[\] = {{", line):
            for j in range(i, len(lines)):
                if lines[j].startswith("};"):
                    return i + 1, j + 1
    raise SystemExit(f"render_docs: symbol {symbol!r} not found in {source}")


def refresh_links(doc: Path, text: str) -> str:
    def fix(match: re.Match[str]) -> str:
        path, symbol = match["path"], match["symbol"]
        first, last = symbol_lines((doc.parent / path).resolve(), symbol)
        anchor = f"#L{first}" if first == last else f"#L{first}-L{last}"
        return f']({path}{anchor} "{symbol}")'

    return LINK.sub(fix, text)


def refresh_outputs(text: str, only: str | None = None) -> str:
    if only is None:
        text = MACHINE.sub(lambda m: f"{m[1]}\n{machine_line()}\n{m[2]}", text)

    def rerun(match: re.Match[str]) -> str:
        if only is not None and only not in match["cmd"]:
            return match[0]
        print(f"render_docs: running {match['cmd']}", file=sys.stderr)
        return f"{match[1]}```text\n{run_command(match['cmd'])}```\n{match[3]}"

    return RUN.sub(rerun, text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--links", action="store_true", help="refresh csrc/ links only")
    how.add_argument("--check", action="store_true", help="exit 1 if a csrc/ link is stale")
    how.add_argument("--only", metavar="TEXT", help="re-run only the blocks whose command has TEXT")
    args = parser.parse_args()
    stale = []
    for doc in DOCS:
        old = doc.read_text(encoding="utf-8")
        new = refresh_links(doc, old)
        if not (args.links or args.check):
            new = refresh_outputs(new, args.only)
        if new != old:
            if args.check:
                stale.append(doc.relative_to(ROOT))
            else:
                doc.write_text(new, encoding="utf-8")
                print(f"render_docs: updated {doc.relative_to(ROOT)}", file=sys.stderr)
    if stale:
        print(
            f"render_docs: stale csrc/ links in {', '.join(map(str, stale))}: "
            "run python tools/render_docs.py --links",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
