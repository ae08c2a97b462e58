"""The ``gilx`` pytest plugin (entry point ``pytest11``): the ``gil_watch`` fixture.

``gil_watch`` runs :func:`gilx.watch` for the test's body and gives the watch
to the test.  When the test also uses pytest-benchmark's ``benchmark``
fixture, the watch's ``to_dict()`` is stored in ``benchmark.extra_info["gil"]``
so that ``--benchmark-json`` and ``pytest-benchmark compare`` carry it.

A test that raises :class:`gilx.testing.Inconclusive` (an assertion of
:mod:`gilx.testing` on a machine that stayed too busy to judge) is reported
as skipped, with the reason, rather than as failed.

This module is loaded into every pytest run once gilx is installed, so it
imports nothing at load time beyond pytest itself: gilx is imported only when
a test asks for the fixture.
"""

from __future__ import annotations

import sys
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from gilx._watch import Watch


@pytest.fixture
def gil_watch(request: pytest.FixtureRequest) -> Iterator[Watch]:
    """A :func:`gilx.watch` running while the test runs; with ``benchmark``, recorded there."""
    from gilx._watch import watch

    bench: Any = None
    if "benchmark" in request.fixturenames:
        bench = request.getfixturevalue("benchmark")
    with watch() as w:
        yield w
    if bench is not None:
        bench.extra_info["gil"] = w.to_dict()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """A test whose GIL assertion could not be judged is skipped, not failed."""
    try:
        return (yield)
    except Exception as exc:
        # gilx.testing is only looked up, never imported here: a test that
        # raised its Inconclusive has imported it.
        testing = sys.modules.get("gilx.testing")
        inconclusive = getattr(testing, "Inconclusive", None)
        if inconclusive is not None and isinstance(exc, inconclusive):
            pytest.skip(f"gilx: inconclusive: {exc}")
        raise
