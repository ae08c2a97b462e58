"""PNG pictures (extra ``plot``): valid files, and a clear error before measuring."""

from __future__ import annotations

import subprocess
import sys

import pytest

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _gilx(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gilx", *args], capture_output=True, text=True, timeout=300
    )


def test_scale_png_draws_threads_and_processes(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "scale.png"
    out = _gilx(
        "scale",
        "--workload",
        "gil",
        "--workers",
        "1,2",
        "--size",
        "2000000",
        "--repeats",
        "1",
        "--json",
        "--png",
        str(png),
    )
    assert out.returncode == 0, out.stderr
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert out.stdout.count("\n") == 1  # --json: still exactly one JSON object on stdout


def test_png_into_a_missing_folder_fails_before_measuring(tmp_path):
    out = _gilx("scale", "--workload", "gil", "--png", str(tmp_path / "nope" / "x.png"))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"gilx scale: error: --png: no such folder: {tmp_path / 'nope'}"
    ]
