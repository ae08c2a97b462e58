"""The C snippets of docs/extension-guide.md compile against the copy unit.

Every ```c block of the guide is a piece of an extension built on csrc/README.md's copy
unit: each is compiled on its own, after ``#include "policy.h"``, with the copy unit's
files (and nothing else of csrc/) on the include path, -Wall -Wextra -Werror, against
this Python's headers.  A snippet that calls a function with the wrong arguments, or
drops an error return, no longer compiles (-Werror=unused-result is not needed: the
snippets check every return themselves, and the test reads them for it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest
from copy_unit import CSRC, ROOT, compiler, unit_files

GUIDE = ROOT / "docs" / "extension-guide.md"
pytestmark = [
    pytest.mark.thread_unsafe(reason="runs a compiler in a shared folder; once is enough"),
    pytest.mark.skipif(not GUIDE.is_file(), reason="no docs/ next to tests/"),
    pytest.mark.skipif(compiler() is None, reason="no C compiler for this Python"),
]


def snippets() -> list[str]:
    return re.findall(r"^```c\n(.*?)^```", GUIDE.read_text(encoding="utf-8"), re.S | re.M)


def test_the_guide_has_c_snippets():
    assert len(snippets()) >= 1


@pytest.mark.parametrize("index", range(len(snippets())))
def test_the_snippet_compiles_against_the_copy_unit(tmp_path: Path, index: int):
    for name in unit_files():
        shutil.copy(CSRC / "reference" / name, tmp_path / name)
    source = tmp_path / "snippet.c"
    source.write_text('#include "policy.h"\n\n' + snippets()[index], encoding="utf-8")
    cc = compiler()
    assert cc is not None
    proc = subprocess.run(
        [
            *cc,
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-Wno-unused-function",
            "-fsyntax-only",
            f"-I{sysconfig.get_paths()['include']}",
            f"-I{tmp_path}",
            str(source),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


def test_every_loop_call_in_a_snippet_checks_its_result():
    # gilx_loop_begin() and gilx_loop_next() can fail; a snippet must not drop that.
    for text in snippets():
        for call in re.findall(r"^\s*(gilx_loop_(?:begin|next)\(.*)$", text, re.M):
            pytest.fail(f"result ignored: {call.strip()}")
