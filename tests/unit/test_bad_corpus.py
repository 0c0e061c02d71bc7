"""Every file in tests/data/bad/ (MANIFEST.json: file -> words its message must contain) is refused by
`validate`, `run` and the TUI start: exit 2, one line of at most 300 characters, no traceback, no raw control
byte, nothing written, the TUI never started. (The 1 MiB shapes are generated in test_reliability.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import rnnsim
from rnnsim import safe_text
from rnnsim.cli import main

BAD = Path(__file__).resolve().parents[1] / "data" / "bad"
MANIFEST = json.loads((BAD / "MANIFEST.json").read_text())


@pytest.fixture
def no_tui(monkeypatch):
    import rnnsim.terminal
    import types, sys

    started = []
    app = types.ModuleType("rnnsim.tui.app")
    app.run_app = lambda sc: started.append(sc)
    monkeypatch.setitem(sys.modules, "rnnsim.tui.app", app)
    monkeypatch.setattr(rnnsim.terminal, "tui_problem", lambda scenario: None)
    monkeypatch.setattr(rnnsim, "Simulation", lambda sc: started.append(sc), raising=False)
    return started


def test_the_corpus_is_complete():
    files = {p.name for p in BAD.glob("*.toml")}
    assert files == set(MANIFEST) and len(files) >= 30


@pytest.mark.parametrize("name", sorted(MANIFEST))
@pytest.mark.parametrize("command", ["validate", "run", "tui"])
def test_bad_file_is_refused_in_one_safe_line(name, command, no_tui, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = str(BAD / name)
    argv = {"validate": ["validate", path], "run": ["run", path, "--out", str(tmp_path / "r.json")], "tui": [path]}
    with pytest.raises(SystemExit) as info:
        main(argv[command])
    out, err = capsys.readouterr()
    assert info.value.code == 2
    lines = err.strip().splitlines()
    if command == "validate":
        assert all(line.startswith(path) for line in lines)
    else:
        assert len(lines) == 1
    for line in lines:
        assert len(line) <= safe_text.MAX_LINE + len("rnnsim: ") and not safe_text.has_control(line)
        assert "Traceback" not in line and "internal error" not in line
    text = " ".join(lines)
    for word in MANIFEST[name]:
        if word.startswith("(+") and command == "validate":  # validate prints every problem instead
            continue
        assert word in text, (name, word, text)
    assert no_tui == [] and list(tmp_path.iterdir()) == []  # nothing started, nothing written
