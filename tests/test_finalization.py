"""A daemon thread inside a long gilx call when the interpreter shuts down.

Its next re-attach (the end of a released chunk) happens after finalization began:
up to 3.13 the runtime ends the thread there, from 3.14 it parks it forever.  Either
way the process must exit promptly and cleanly, with the work never finished and no
crash (docs/extension-guide.md, "Finalization").
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent(
    """
    import threading, gilx
    started = threading.Event()
    def forever():
        started.set()
        gilx.{call}
        print("finished", flush=True)  # never reached
    threading.Thread(target=forever, daemon=True).start()
    started.wait()
    print("exiting", flush=True)
    """
)


# Not count_gil: on a GIL build it never releases the GIL, so the main thread could not
# even reach its exit (gilx.h, CancelToken: the case no other thread can reach).
@pytest.mark.parametrize(
    "call",
    ["count_nogil(2**62)", "UnsafeCounter().increment(2**62)", "LockedCounter().increment(2**62)"],
)
def test_daemon_thread_in_a_long_call_does_not_block_exit(call: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD.format(call=call)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["exiting"]
    assert "Fatal" not in proc.stderr, proc.stderr
