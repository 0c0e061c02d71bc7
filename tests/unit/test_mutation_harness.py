"""benchmarks/mutation.py itself (not the mutation run, which takes minutes): its mutants are well formed, a
mutant whose text moved stops the run with a message, and the table lands between docs/testing.md's markers."""

from __future__ import annotations

import pytest

from benchmarks import mutation


def test_mutants_are_well_formed():
    names = [m.name for m in mutation.MUTANTS]
    assert len(names) == len(set(names))
    for m in mutation.MUTANTS:
        assert m.old != m.new and m.tests and m.what
        assert all(t.startswith("tests/") for t in m.tests)


def test_apply_replaces_exactly_once_or_stops(tmp_path):
    m = mutation.Mutant("x", "pkg/a.py", "b = 1", "b = 2", "what", ("tests/unit/test_x.py",))
    (tmp_path / "pkg").mkdir()
    f = tmp_path / "pkg" / "a.py"
    f.write_text("a = 0\nb = 1\n")
    mutation.apply(tmp_path, m)
    assert f.read_text() == "a = 0\nb = 2\n"
    with pytest.raises(SystemExit, match="pkg/a.py holds the original text 0 times"):
        mutation.apply(tmp_path, m)
    f.write_text("b = 1\nb = 1\n")
    with pytest.raises(SystemExit, match="2 times"):
        mutation.apply(tmp_path, m)


def test_render_marks_survivors():
    ms = mutation.MUTANTS[:2]
    table = mutation.render([(ms[0], ["tests/unit/test_a.py::test_one", "tests/unit/test_a.py::test_two"], 1.0),
                             (ms[1], [], 1.0)])
    lines = table.splitlines()
    assert lines[2].startswith(f"| `{ms[0].name}` |") and "| 2 | `test_one`, `test_two` |" in lines[2]
    assert "**0: survived**" in lines[3]


def test_write_doc_replaces_between_markers(tmp_path, monkeypatch):
    (tmp_path / "docs").mkdir()
    doc = tmp_path / "docs" / "testing.md"
    doc.write_text(f"head\n{mutation.BEGIN}\nold\n{mutation.END}\ntail\n")
    monkeypatch.setattr(mutation, "REPO", tmp_path)
    mutation.write_doc("| new |")
    assert doc.read_text() == f"head\n{mutation.BEGIN}\n| new |\n{mutation.END}\ntail\n"


def test_the_docs_page_has_the_markers():
    text = (mutation.REPO / "docs" / "testing.md").read_text(encoding="utf-8")
    assert text.count(mutation.BEGIN) == 1 and text.count(mutation.END) == 1


def test_list_and_unknown_names(capsys):
    assert mutation.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert all(m.name in out for m in mutation.MUTANTS)
    with pytest.raises(SystemExit):
        mutation.main(["--only", "no-such-mutant"])
    assert "unknown mutant" in capsys.readouterr().err
