"""SVG snapshots (pytest-textual-snapshot) of the main screens, at 100x30 and 80x24, with and without NO_COLOR.

Deterministic: a fixed seed, a fixed number of steps run through the runner (never timing-dependent
play), the frame pulled explicitly, no Input on screen (so no blinking cursor).
Update after an intended change with: pytest tests/tui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

import pytest

from rnnsim.tui.app import RnnsimApp

STEPS_PER_ITERATION = 20 + 20 + 1  # T forward steps, T BPTT steps, one update (small scenario)


def _prepare(app, steps: int):
    async def run_before(pilot):
        await pilot.pause()
        app.runner.wait_idle(60)
        app.runner.send("step", steps)
        app.runner.wait_idle(60)
        app.poll_frame()
        await pilot.pause()

    return run_before


SCREENS = {
    # name: (steps run first, keys pressed)
    "dynamics": (3 * STEPS_PER_ITERATION + 20 + 9, ["full_stop"] * 5),
    "training": (6 * STEPS_PER_ITERATION, ["2"]),
    "help": (0, ["question_mark"]),
    "picker": (0, ["o"]),
}


@pytest.mark.parametrize("no_color", [False, True], ids=["color", "nocolor"])
@pytest.mark.parametrize("size", [(100, 30), (80, 24)], ids=["100x30", "80x24"])
@pytest.mark.parametrize("screen", list(SCREENS))
def test_snapshot(snap_compare, small, monkeypatch, tmp_path, screen, size, no_color):
    # the picker lists the built-ins and the cwd's *.toml: pin both so new built-ins do not change the picture
    builtins = tmp_path / "builtins"
    builtins.mkdir()
    for name, title in (("alpha", "A fixed built-in"), ("beta", "Another fixed built-in")):
        (builtins / f"{name}.toml").write_text(f'[scenario]\nname = "{title}"\n')
    monkeypatch.setattr(
        "rnnsim.scenario.builtin_scenarios", lambda: {p.stem: p for p in sorted(builtins.glob("*.toml"))}
    )
    (tmp_path / "mine.toml").write_text('[scenario]\nname = "a local file"\n')
    monkeypatch.chdir(tmp_path)
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    if screen == "training":
        small = small.with_changes({"training.clip": "norm", "training.clip_threshold": 0.05})
    app = RnnsimApp(small)
    steps, keys = SCREENS[screen]
    try:
        assert snap_compare(app, press=keys, terminal_size=size, run_before=_prepare(app, steps))
    finally:
        app.runner.stop()
