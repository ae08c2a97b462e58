"""The extension exports one symbol, PyInit__core, and nothing of csrc/'s internals.

GCC and clang export every non-static function unless told otherwise; setup.py builds
with -fvisibility=hidden, and PyMODINIT_FUNC marks the init function visible.  Without
it the .so exported 17 internal names (gilx_parse_count, the method tables, ...), which
any other library loaded into the process could bind to or clash with.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from gilx import _core


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads ELF dynamic symbols")
def test_only_the_module_init_function_is_exported():
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm (binutils) is not installed")
    listing = subprocess.run(
        [nm, "-D", "--defined-only", _core.__file__],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    exported = sorted(line.split()[-1] for line in listing.splitlines() if line.strip())
    assert exported == ["PyInit__core"]
