"""Build examples/copy_unit/spin.c from the copy unit that csrc/README.md names, and nothing else.

Shared by tests/test_copy_unit.py and benchmarks/test_every_process.py.  The files are
copied into a fresh folder first, so the compiler can reach no other file of csrc/.
The compiler and flags are the ones this Python was built with (sysconfig), as for any
extension; CI has both, since it builds gilx itself from source.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
SPIN_C = ROOT / "examples" / "copy_unit" / "spin.c"

_UNIT_LINE = re.compile(r"^\*\*The copy unit\*\*: (.*?)\.\s", re.MULTILINE)


def unit_files() -> list[str]:
    """The file names csrc/README.md gives as the copy unit, in its order."""
    match = _UNIT_LINE.search((CSRC / "README.md").read_text(encoding="utf-8"))
    if match is None:
        raise LookupError("csrc/README.md names no copy unit ('**The copy unit**: ...')")
    return re.findall(r"`([\w.]+)`", match.group(1))


def compiler() -> list[str] | None:
    """The C compiler this Python was built with, if it is on this machine."""
    cc = sysconfig.get_config_var("CC")
    if sys.platform == "win32" or not cc:
        return None
    words = shlex.split(cc)
    return words if shutil.which(words[0]) else None


def build(dest: Path) -> ModuleType:
    """Compile spin.c with the copy unit in ``dest`` and import it as ``spin``."""
    cc = compiler()
    if cc is None:
        raise RuntimeError("no C compiler for this Python")
    for name in unit_files():
        shutil.copy(CSRC / "reference" / name, dest / name)
    shutil.copy(SPIN_C, dest / "spin.c")
    sources = [str(dest / n) for n in unit_files() if n.endswith(".c")] + [str(dest / "spin.c")]
    target = dest / ("spin" + sysconfig.get_config_var("EXT_SUFFIX"))
    flags = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-O2", "-fPIC", "-shared"]
    if sys.platform == "darwin":
        flags += ["-undefined", "dynamic_lookup"]
    include = sysconfig.get_paths()["include"]
    proc = subprocess.run(
        [*cc, *flags, f"-I{include}", f"-I{dest}", *sources, "-o", str(target)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the copy unit did not compile:\n{proc.stderr}")
    spec = importlib.util.spec_from_file_location("spin", target)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
