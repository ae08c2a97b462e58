"""Every Python block in README.md and docs/*.md runs, so the docs cannot rot.

A block is fenced with ```python; blocks in one file run in order, each in a
fresh subprocess (so one block's threads or imports cannot help another).  A
block that must not run (e.g. it needs an interpreter we don't have) is
fenced ```python no-run and says why next to it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        if not doc.exists():
            continue
        text = doc.read_text(encoding="utf-8")
        for number, match in enumerate(BLOCK.finditer(text), start=1):
            line = text[: match.start()].count("\n") + 1
            found.append((f"{doc.name}:{line}#{number}", match.group(1)))
    return found


BLOCKS = python_blocks()
#: A block that measures (gilx.table) runs for a minute or so; under a sanitizer every
#: allocation is checked and it runs several times slower, so tools/asan.sh scales this up.
TIMEOUT = 300 * float(os.environ.get("GILX_TEST_TIMEOUT_SCALE", "1"))


def test_the_docs_have_python_blocks():
    assert len(BLOCKS) >= 3, "README.md and docs/ should show runnable Python"


@pytest.mark.parametrize(("where", "code"), BLOCKS, ids=[w for w, _ in BLOCKS])
def test_python_block_runs(where, code):
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT
    )
    assert done.returncode == 0, f"{where} failed:\n{done.stderr}"
