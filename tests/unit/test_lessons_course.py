"""The lessons as a course: `rnnsim list` and the picker in problem order, the measured notes shipped in the package."""

import tomllib
from pathlib import Path

from rnnsim import lessons
from rnnsim.scenario import builtin_scenarios

ROOT = Path(__file__).resolve().parents[2]


def test_course_orders_every_builtin_by_problem_then_its_fixes():
    names = builtin_scenarios()
    entries = lessons.course(names)
    assert sorted(e.name for e in entries) == sorted(names)            # every built-in once
    order = [e.name for e in entries]
    numbers = [int(e.label.split()[0]) for e in entries if e.label][:-1]  # the last, digits-pixel, is problem 1 again
    assert numbers == sorted(numbers) and numbers[0] == 1 and numbers[-1] == 6
    for p in lessons.PROBLEMS:  # each fix right after what it fixes (within its problem)
        for show in p.shows:
            for fix in p.fixes:
                assert order.index(show) < order.index(fix)
    by = {e.name: e.label for e in entries}
    assert by["vanishing"] == "1" and by["clip-value"] == "2 fix" and by["recency"] == "6"
    assert lessons.course(["zzz", "vanishing"])[-1] == lessons.Entry("zzz", "", None)  # unknown ones last


def test_course_matches_readme_lesson_table():
    """README's table "problem | open | the fix" names the same scenarios in the same problems."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    for p in lessons.PROBLEMS:
        row = next(r for r in rows if r.startswith(f"| {p.number} ") and all(f"`{n}`" in r for n in p.shows))
        assert all(f"`{n}`" in row for n in p.fixes), (p, row)


def test_every_lesson_has_measured_notes_and_they_ship_in_the_wheel():
    for name in builtin_scenarios():
        if lessons.problem_of(name) is None:
            continue
        text = lessons.notes(name)
        assert text.startswith("## ") and "Command: `python -m benchmarks.lessons" in text, name
        assert "![" not in text and "Screenshot:" not in text  # no image lines in the terminal
    assert "`clip-value`" in lessons.notes("clip-value") and "digits" in lessons.notes("digits-pixel")
    assert "digits" not in lessons.notes("vanishing").splitlines()[0]
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert cfg["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]["docs/lessons.md"] == "rnnsim/lessons.md"
    assert lessons.notes_path() is not None
