"""The ``gilx`` pytest plugin (entry point ``pytest11``): the ``gil_watch`` fixture.

``gil_watch`` runs :func:`gilx.watch` for the test's body and gives the watch
to the test.  When the test also uses pytest-benchmark's ``benchmark``
fixture, the watch's ``to_dict()`` is stored in ``benchmark.extra_info["gil"]``
so that ``--benchmark-json`` and ``pytest-benchmark compare`` carry it.

This module is loaded into every pytest run once gilx is installed, so it
imports nothing at load time beyond pytest itself: gilx is imported only when
a test asks for the fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from gilx.watch import Watch


@pytest.fixture
def gil_watch(request: pytest.FixtureRequest) -> Iterator[Watch]:
    """A :func:`gilx.watch` running while the test runs; with ``benchmark``, recorded there."""
    from gilx.watch import watch

    bench: Any = None
    if "benchmark" in request.fixturenames:
        bench = request.getfixturevalue("benchmark")
    with watch() as w:
        yield w
    if bench is not None:
        bench.extra_info["gil"] = w.to_dict()
