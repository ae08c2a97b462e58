"""The text of race, scale and probe: the results render it (gilx._present), the CLI prints it."""

from __future__ import annotations

import pytest

from gilx import _present, cli, machine
from gilx._probe import HOLD_LIMIT, ProbeResult
from gilx._race import RaceResult
from gilx.runner import ScalePoint, ScaleResult, Timing


def _race(kind: str, lost: int, overlap: float, other: float | None, disturbed: bool):
    return RaceResult(kind, 3, 3_000, 3_000 - lost, overlap, other, disturbed)


def test_the_race_table_gives_a_lost_count_only_where_judged():
    results = [
        _race("unsafe", 1_234, 0.8, 0.05, False),
        _race("atomic", 0, 0.0, 0.4, True),  # never overlapped
        _race("locked", 0, 0.5, None, True),  # overlapped, but disturbed
    ]
    lines = _present.race_table(results).splitlines()
    assert lines[0] == "3 threads x 1,000 increments on one shared counter"
    assert lines[1].split() == ["kind", "expected", "observed", "lost", "overlap", "others"]
    assert lines[2].split() == ["unsafe", "3,000", "1,766", "1,234", "80%", "5%"]
    assert lines[3].split()[:6] == ["atomic", "3,000", "3,000", "-", "0%", "40%"]
    assert lines[3].endswith("  threads did not overlap — not judged")
    assert lines[4].split()[:6] == ["locked", "3,000", "3,000", "-", "50%", "?"]
    assert lines[4].endswith(f"  {_present.NOT_JUDGED}")
    assert lines[-1].startswith("not judged: a race whose threads never ran together")


def test_a_judged_race_has_no_not_judged_legend():
    result = _race("unsafe", 7, 0.9, 0.0, False)
    text = result.render()
    assert text == _present.race_table([result])
    assert "not judged" not in text


def test_gilx_race_prints_the_rendered_table(monkeypatch, capsys):
    made = {k: _race(k, 5 if k == "unsafe" else 0, 0.7, 0.01, False) for k in ("unsafe", "atomic")}
    monkeypatch.setattr(cli, "race", lambda kind, threads, increments: made[kind])
    monkeypatch.setattr(cli, "KINDS", ("unsafe", "atomic"))
    assert cli.main(["race", "--threads", "3", "--increments", "1000"]) == 0
    assert capsys.readouterr().out == _present.race_table(list(made.values())) + "\n"


def _scale(disturbed_point: bool, baseline_disturbed: bool) -> ScaleResult:
    base = Timing((1.0, 1.3, 1.1), (0.1, None, 0.3), baseline_disturbed)
    points = tuple(
        ScalePoint(
            k,
            Timing((1.0 / k, 1.1 / k), (None, 0.5)),
            0.9 * k,
            0.123 if k > 1 else None,
            disturbed=disturbed_point and k == 2,
        )
        for k in (1, 2)
    )
    return ScaleResult("py", "processes", 123_456, "loop steps", "fork", base, points, 0.5)


def test_the_scale_text_marks_disturbed_points_and_adds_the_notes(monkeypatch):
    monkeypatch.setattr(machine, "cores", lambda: 2)
    text = _scale(True, True).render(load=0.7)
    lines = text.splitlines()
    assert lines[0].startswith("machine: 2 cores, ")
    assert (
        lines[1] == "1-minute load average 0.70 before measuring: other work may hold cores"
        " the workers need"
    )
    assert lines[2].startswith("py: ")
    assert lines[3] == (
        "on processes; 123,456 loop steps in total, split among the workers; 3 repeats"
    )
    assert lines[5].endswith("start-up")
    row = ["2", "0.5250", "(0.5000..0.5500)", "1.80x", "90%", "50%!", "0.123", "s"]
    assert lines[7].split() == row
    assert f"! = {_present.NOT_JUDGED}" in text
    assert "(the 1-worker baseline was disturbed too)" in text
    assert "~ = repeats spread more than" in text  # the baseline's spread is 30 %


def test_a_quiet_scale_says_no_not_judged():
    text = _scale(False, False).render()
    assert _present.NOT_JUDGED not in text and "load average" not in text


LIMIT = f"{HOLD_LIMIT:.0%}"


def _probe(releases: bool, gil: bool, other: float | None, disturbed: bool) -> ProbeResult:
    return ProbeResult(
        "m:f(4)",
        releases,
        2,
        1.8,
        0.12,
        gil,
        1_000,
        Timing((1.0,)),
        Timing((0.5,)),
        other,
        disturbed,
    )


@pytest.mark.parametrize(
    ("result", "last"),
    [
        (_probe(True, True, 0.1, False), f"  verdict: releases the GIL (held less than {LIMIT}"),
        (_probe(False, True, None, False), f"  verdict: holds the GIL (held at least {LIMIT}"),
        (_probe(True, False, 0.2, False), "  others: other processes took at most 20%"),
        (_probe(True, True, 0.6, True), f"  {_present.NOT_JUDGED}: other processes took up to 60%"),
    ],
)
def test_the_probe_text_gives_a_verdict_only_when_judged(result, last):
    lines = result.render().splitlines()
    assert lines[0] == "probe m:f(4)"
    assert lines[-1].startswith(last)
    assert ("no GIL in this process" in lines[1]) == (not result.gil_enabled)
    assert "  2 threads: 1.80x the speed of 1 thread making the same 2,000 calls" in lines


def test_a_report_keeps_its_sections_as_made_and_echoes_the_text():
    from gilx._present import RULE, Report

    printed: list[str] = []
    report = Report(printed.append)
    report("header line")
    report.heading("1. First")
    report("a")
    report("")
    report.heading("2. Second: looks like a rule below? no")
    report(RULE * 5)  # a line that looks like a rule is still a line, not a heading
    assert report.sections() == [
        {"title": "", "lines": ["header line"]},
        {"title": "1. First", "lines": ["a"]},
        {"title": "2. Second: looks like a rule below? no", "lines": [RULE * 5]},
    ]
    assert printed == [
        "header line",
        "",
        "1. First",
        RULE * 8,
        "a",
        "",
        "",
        "2. Second: looks like a rule below? no",
        RULE * 38,
        RULE * 5,
    ]
    assert report.text() == "\n".join(printed)


def test_the_tour_words_for_results_are_made_here():
    from gilx import _present, runner
    from gilx.timing import Timing

    assert _present.times(1.954) == "1.95x"
    assert _present.ms(0.00623) == "6.23 ms"
    assert _present.median_text(Timing((0.152, 0.150, 0.154))) == "0.152 s"
    assert _present.median_text(Timing((0.009841,))) == "9.841 ms"
    base = Timing((0.2, 0.2, 0.2))
    two = runner.ScalePoint(2, Timing((0.1, 0.1, 0.1)), 2.0, disturbed=True)
    result = runner.ScaleResult("py", "interpreters", 1000, "loop steps", None, base, (two,))
    one_line, two_line = _present.scaling_lines(result, 2, "1 interpreter:", "2 interpreters:")
    assert one_line.startswith("  1 interpreter:  0.200 s")
    assert "(1,000 loop steps in total)" in one_line
    assert two_line.startswith("  2 interpreters: 0.100 s")  # the label never runs into it
    assert two_line.endswith(f"speedup 2.00x  [{_present.NOT_JUDGED}]")
