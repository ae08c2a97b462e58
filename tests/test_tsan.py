"""ThreadSanitizer: the intentional race is the only race.

Active only in a process where TSan is loaded (``tools/tsan.sh`` builds the
extension with -fsanitize=thread and preloads libtsan into Debian's
python3.11); elsewhere the tests skip, or fail if GILX_REQUIRE_TSAN=1 (set by
tools/tsan.sh, so that a broken setup cannot pass as a skipped check).

Each workload runs in a child process (which inherits LD_PRELOAD) so that one
report cannot hide another: safe ones must produce no report at all, the
UnsafeCounter one must produce a data race report inside gilx_plain_increments,
and nothing else.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest


def tsan_loaded() -> bool:
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return False
    return "libtsan" in maps


if not tsan_loaded():
    if os.environ.get("GILX_REQUIRE_TSAN") == "1":
        raise RuntimeError("GILX_REQUIRE_TSAN=1 but ThreadSanitizer is not loaded")
    pytest.skip("ThreadSanitizer not loaded (run tools/tsan.sh)", allow_module_level=True)

WORKLOADS = Path(__file__).with_name("tsan_workloads.py")
SAFE = [
    "atomic",
    "locked",
    "locked_reads",
    "count_nogil",
    "count_gil",
    "count_auto",
    "stream_sum",
    "race",
    "cancel",
]


def run(name: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    # Report every race (not only the first per pair of stacks) and keep going.
    # history_size=7: the most access history TSan keeps per thread (4M
    # accesses; default 128K), so that the stack of a race's *previous* access
    # can usually be restored even though the racing loop makes millions.
    env["TSAN_OPTIONS"] = (
        env.get("TSAN_OPTIONS", "") + " halt_on_error=0 exitcode=66 history_size=7"
    )
    return subprocess.run(
        [sys.executable, str(WORKLOADS), name],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def reports(stderr: str) -> list[str]:
    """The TSan reports in ``stderr``, one string each."""
    return re.findall(r"WARNING: ThreadSanitizer:.*?\n={10,}", stderr, flags=re.S)


@pytest.mark.parametrize("name", SAFE)
def test_safe_workload_has_no_race(name):
    proc = run(name)
    found = reports(proc.stderr)
    assert not found, "\n".join(found)
    assert "ThreadSanitizer" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert f"done {name}" in proc.stdout


def test_unsafe_counter_race_is_reported_in_gilx_plain_increments():
    # A race needs two threads in the kernel at once: retried, like the
    # lost-update tests.
    for _ in range(5):
        proc = run("unsafe")
        found = reports(proc.stderr)
        if found:
            break
    assert found, f"no TSan report for the intentional race:\n{proc.stderr[-3000:]}"
    for report in found:
        assert "WARNING: ThreadSanitizer: data race" in report, report
        # Both accesses of every report are in the unsafe increment.
        accesses = re.findall(
            r"(?:Read|Write|Previous write|Previous read) of size.*?\n\n", report, flags=re.S
        )
        assert len(accesses) >= 2, report
        # TSan cannot always restore the stack of the previous access (its
        # history was overwritten; it says "[failed to restore the stack]"):
        # that access is unknown, not elsewhere.  Every access it could
        # restore must be in the kernel, and each report has at least one.
        restored = [a for a in accesses if "[failed to restore the stack]" not in a]
        assert restored, report
        for access in restored:
            first_frame = re.search(r"#0 (\S+)", access)
            assert first_frame and first_frame.group(1) == "gilx_plain_increments", report
    sys.stderr.write(found[0])  # shown with pytest -s (tools/tsan.sh saves it)
    out = Path(os.environ.get("GILX_TSAN_REPORT", "/dev/null"))
    out.write_text(found[0] + "\n")
