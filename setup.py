"""Build gilx._core from csrc/.

Everything else about the package is in pyproject.toml; this file only
describes the C extension, which setuptools cannot yet take from there.

Set GILX_STRICT=1 to compile with warnings as errors (CI does); extra flags
for a sanitizer build go in CFLAGS / LDFLAGS as usual.
"""

import os
import sys
from pathlib import Path

from setuptools import Extension, setup

CSRC = Path("csrc")
# csrc/reference: what an extension author copies; csrc/demo: the lost-update race,
# kept apart; csrc/harness: gilx's own measuring machinery (csrc/README.md).
PARTS = ("reference", "demo", "harness")


def compile_args() -> list[str]:
    if sys.platform == "win32":
        # MSVC exports nothing unless told to (PyMODINIT_FUNC says dllexport).
        return ["/W4", "/WX"] if os.environ.get("GILX_STRICT") else []
    # GCC and clang export every non-static function by default: the csrc/ files'
    # shared helpers (gilx_parse_count, the method tables, ...) would be symbols any
    # other library in the process could bind to or clash with.  Hidden by default,
    # only PyInit__core is exported (PyMODINIT_FUNC marks it visibility("default")).
    args = ["-std=c11", "-fvisibility=hidden"]
    if os.environ.get("GILX_STRICT"):
        args += ["-Wall", "-Wextra", "-Werror"]
    return args


setup(
    ext_modules=[
        Extension(
            "gilx._core",
            sources=sorted(str(p) for part in PARTS for p in (CSRC / part).glob("*.c")),
            depends=sorted(str(p) for part in PARTS for p in (CSRC / part).glob("*.h")),
            include_dirs=[str(CSRC / "reference"), str(CSRC / "harness")],
            extra_compile_args=compile_args(),
        )
    ],
)
