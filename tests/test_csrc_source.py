"""Checks of csrc/'s source text that no behaviour test can make.

- Every atomic operation goes through atomics.h's helpers, so that each memory order is
  chosen, and explained, in one place, and no file has an MSVC branch of its own.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CSRC = Path(__file__).resolve().parent.parent / "csrc"
pytestmark = pytest.mark.skipif(not CSRC.is_dir(), reason="no csrc/ next to tests/")

# C11 atomics, MSVC's Interlocked intrinsics, GCC's __atomic/__sync builtins.
RAW_ATOMIC = re.compile(
    r"\batomic_(load|store|exchange|compare_exchange|fetch_|thread_fence|signal_fence|init|flag)"
    r"|\b(memory_order_\w+|_Atomic|_Interlocked\w+|__atomic_\w+|__sync_\w+)\b|stdatomic\.h"
)


def test_atomics_are_used_through_atomics_h_only():
    offenders = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(CSRC.glob("*/*.c"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if RAW_ATOMIC.search(line)
    ]
    assert offenders == []


def test_atomics_h_defines_every_helper_for_msvc_and_c11():
    # The two branches of the atomics header must offer the same helpers.
    text = (CSRC / "reference" / "atomics.h").read_text(encoding="utf-8")
    section = text[text.index("#if defined(_MSC_VER) && !defined(__clang__)") :]
    msvc, c11 = section.split("#else", 1)
    c11 = c11.split("#endif", 1)[0]
    names = re.compile(r"^(gilx_atomic_\w+)\(", re.MULTILINE)
    assert sorted(names.findall(msvc)) == sorted(names.findall(c11))
    assert len(names.findall(c11)) >= 6


def test_32_bit_msvc_uses_no_64_bit_intrinsic_it_lacks():
    # 32-bit x86 MSVC has _InterlockedCompareExchange64 and none of the other 64-bit
    # Interlocked intrinsics; CPython's pyatomic_msc.h takes them only on _M_X64 and
    # _M_ARM64 and loops on a compare-and-swap elsewhere.  No MSVC can be installed here
    # (Debian and PyPI have none; clang's MSVC-target intrin.h declares the 64-bit
    # intrinsics for i686 too, so it cannot stand in), hence a check of the text.
    text = (CSRC / "reference" / "atomics.h").read_text(encoding="utf-8")
    msvc = text[text.index("#if defined(_MSC_VER)") : text.index("#else\n#  include <stdatomic.h>")]
    wide, narrow = msvc.split("#  if defined(_M_X64) || defined(_M_ARM64)\n", 1)[1].split(
        "#  else\n", 1
    )
    narrow = narrow.split("#  endif", 1)[0]
    assert set(re.findall(r"_Interlocked\w+64", narrow)) == {"_InterlockedCompareExchange64"}
    assert re.findall(r"_Interlocked\w+64", wide)
    # Everything outside the two branches goes through the macros they define.
    after = msvc.split("#  endif", 1)[1]
    assert not re.findall(r"_Interlocked\w+", after)


def _project_names_used(path: Path) -> set[str]:
    """gilx's own names that ``path`` uses but does not define (comments and strings out).

    A name is gilx's if it is ``gilx_*``, ``GILX_*`` or a ``*Object`` type other than
    CPython's ``PyObject``; the file's own functions, tables and enum values do not count.
    """
    text = re.sub(r"/\*.*?\*/", "", path.read_text(encoding="utf-8"), flags=re.S)
    text = re.sub(r'"(\\.|[^"\\])*"', '""', text)
    used = set(re.findall(r"\b(gilx_\w+|GILX_\w+|[A-Z]\w*Object)\b", text)) - {"PyObject"}
    defined = set(re.findall(r"^\w[\w \*]*?\b(\w+)\(", text, flags=re.M))
    defined |= set(re.findall(r"}\s*(\w+);", text))
    defined |= set(re.findall(r"^PyMethodDef (\w+)\[", text, flags=re.M))
    defined |= set(re.findall(r"^\s+(GILX_\w+)[,\s]", text, flags=re.M))  # enum values
    return used - defined


def test_the_counting_functions_need_at_most_eight_project_names():
    # Issue 20's target: an author reading count.c learns at most 8 of gilx's names.
    names = _project_names_used(CSRC / "reference" / "count.c")
    assert names == {
        "gilx_loop",
        "gilx_loop_start",
        "gilx_loop_next",
        "gilx_loop_stop",
        "gilx_parse_n_cancel",
        "gilx_count_kernel",
        "GILX_COUNT_CHUNK",
        "GILX_NOGIL_THRESHOLD",
    }


def test_the_deliberate_race_lives_apart_from_the_reference():
    # UnsafeCounter's data race is csrc/demo/race.c; nothing in reference/ writes a
    # counter with plain, unsynchronised steps of its own.
    race = (CSRC / "demo" / "race.c").read_text(encoding="utf-8")
    assert "gilx_plain_increments(volatile uint64_t *value" in race
    for path in (CSRC / "reference").glob("*.c"):
        assert "*value = seen + 1" not in path.read_text(encoding="utf-8"), path.name
