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
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A test whose GIL assertion could not be judged is reported skipped, at the test."""
    report = yield
    # gilx.testing is only looked up, never imported here: a test that raised
    # its Inconclusive has imported it.
    inconclusive = getattr(sys.modules.get("gilx.testing"), "Inconclusive", None)
    excinfo = call.excinfo
    if (
        call.when == "call"
        and excinfo is not None
        and inconclusive is not None
        and isinstance(excinfo.value, inconclusive)
    ):
        path, line, _ = item.reportinfo()
        report.outcome = "skipped"
        report.longrepr = (
            str(path), (line or 0) + 1, f"Skipped: gilx: inconclusive: {excinfo.value}"
        )
    return report
