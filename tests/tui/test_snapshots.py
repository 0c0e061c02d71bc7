"""SVG snapshots (pytest-textual-snapshot) of the main screens, at 100x30 and 80x24, with and without NO_COLOR.

Deterministic: a fixed seed, a fixed number of steps run through the runner (never timing-dependent
play), the frame pulled explicitly, no Input on screen (so no blinking cursor); background views wait for their
job to finish, and the parallel view's measured times come from a fixed stand-in.
Update after an intended change with: pytest tests/tui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

import pytest

from rnnsim.tui.app import RnnsimApp

STEPS_PER_ITERATION = 20 + 20 + 1  # T forward steps, T BPTT steps, one update (small scenario)


def _prepare(app, steps: int, view_key: str | None = None):
    async def run_before(pilot):
        await pilot.pause()
        app.runner.wait_idle(60)
        if view_key is not None:  # views that start work (compare: simulation B; 5-7: a background job)
            await pilot.press(view_key)
            app.runner.wait_idle(60)
            job = app.jobs.get(app.view)
            if job is not None:
                assert job.join(120).finished, job.state
        app.runner.send("step", steps)
        app.runner.wait_idle(60)
        app.poll_frame(force=True)
        await pilot.pause()

    return run_before


def _fake_parallel_timing(scenario, lengths=(16,), cells=("rnn",), repeats=3, batch_size=4):
    """Deterministic stand-in for the measured times (counted steps as the core's: T or 1)."""
    from rnnsim.diagnostics import ParallelPoint

    out = []
    for cell in cells:
        for T in lengths:
            fw = 2e-6 * T if cell == "rnn" else 1e-4 + 1e-7 * T * T
            out.append(ParallelPoint(cell, T, T if cell == "rnn" else 1, T - 1 if cell == "rnn" else 1, fw, 1.5 * fw))
    return out


SCREENS = {
    # name: (steps run first, keys pressed)
    "dynamics": (3 * STEPS_PER_ITERATION + 20 + 9, ["full_stop"] * 5),
    "training": (6 * STEPS_PER_ITERATION, ["2"]),
    "help": (0, ["question_mark"]),
    "picker": (0, ["o"]),
    "spectrum": (2 * STEPS_PER_ITERATION, ["3"]),
    "compare": (4 * STEPS_PER_ITERATION + 20 + 10, []),
    "parallel": (0, []),
    "memory": (0, []),
    "influence": (0, []),
    "regimes": (0, []),
}
VIEW_KEYS = {"compare": "4", "parallel": "5", "memory": "6", "influence": "7", "regimes": "8"}


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
    monkeypatch.setattr("rnnsim.diagnostics.parallel_timing", _fake_parallel_timing)
    if screen == "training":
        small = small.with_changes({"training.clip": "norm", "training.clip_threshold": 0.05})
    app = RnnsimApp(small)
    steps, keys = SCREENS[screen]
    try:
        assert snap_compare(app, press=keys, terminal_size=size,
                            run_before=_prepare(app, steps, VIEW_KEYS.get(screen)))
    finally:
        app.runner.stop()
