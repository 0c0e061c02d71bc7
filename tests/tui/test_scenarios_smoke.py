"""Every built-in scenario (and the attention variants) opens, steps through an iteration and draws both views."""

from __future__ import annotations

import numpy as np
import pytest

import rnnsim
from rnnsim.scenario import builtin_scenarios
from rnnsim.tui.app import RnnsimApp
from rnnsim.tui.screenshot import units_per_iteration

from conftest import settle

CASES = [(name, {}) for name in builtin_scenarios()] + [
    ("vanishing", {"model.cell": "attention"}),
    ("vanishing", {"model.readout": "attention"}),
    ("vanishing", {"model.activation": "relu"}),
]


def shorter(sc, n):
    """task.length capped at n; the data tasks take their length from the data (digits: its short row order)."""
    if sc.task.kind == "digits":
        return {"task.order": "row"}
    return {} if sc.task.kind == "file" else {"task.length": min(sc.task.length, n)}


@pytest.mark.parametrize("name, changes", CASES, ids=[f"{n}{'+' + ','.join(c.values()) if c else ''}" for n, c in CASES])
async def test_scenario_draws(name, changes):
    sc = rnnsim.load_scenario(name).with_changes({**shorter(rnnsim.load_scenario(name), 40), **changes})
    app = RnnsimApp(sc)
    async with app.run_test(size=(80, 24)) as pilot:
        f = await settle(app, pilot)
        assert f.ready and f.error is None
        # one iteration (N·T forward steps, N·T BPTT steps for N layers, the update; attention: its whole pass is one step each way),
        # then half a forward pass (attention has no half pass)
        sequential = units_per_iteration(sc) == 2 * sc.model.num_layers * f.T + 1
        assert sequential or (sc.model.cell == "attention" and units_per_iteration(sc) == 3)
        app.runner.send("step", units_per_iteration(sc) + (f.T // 2 if sequential else 0))
        f = await settle(app, pilot)
        assert f.error is None and f.iteration == 1 and f.phase == ("forward" if sequential else "idle")
        assert f.hidden.shape == (f.T, f.H) and np.isfinite(f.hidden[: f.hidden_filled]).all()
        heat = app.query_one("#heatmap")
        lines = [heat.render_line(y).text for y in range(heat.size.height)]
        assert "h_t" in lines[0] and "▀" in "".join(lines)
        await pilot.press("2")
        await settle(app, pilot)
        plot = app.query_one("#loss-plot")
        assert "1 iteration ·" in plot.render_line(0).text


@pytest.mark.parametrize("name", list(builtin_scenarios()))
async def test_scenario_new_views_draw(name, monkeypatch):
    """Keys 3-7 on every built-in: each view draws (background jobs shortened: the full ones are the same code)."""
    from rnnsim.tui import jobs

    monkeypatch.setattr(jobs, "PARALLEL_LENGTHS", (16, 32))
    monkeypatch.setattr(jobs, "MEMORY_SIZES", (4, 8))
    monkeypatch.setattr(jobs, "INFLUENCE_SAMPLES", 8)
    base = rnnsim.load_scenario(name)
    sc = base.with_changes(shorter(base, 40)) if shorter(base, 40) else base
    app = RnnsimApp(sc)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        if sc.lesson.steps:
            assert "Lesson 1/" in str(app.query_one("#lesson-bottom").render())
        await pilot.press("3")
        f = await settle(app, pilot)
        assert f.spectrum is not None and str(app.query_one("#spectrum-info").render()).strip()
        await pilot.press("4")
        app.runner.send("step", 2 * sc.model.num_layers * f.T + 1)   # one iteration ((layer, t) steps in a stack)
        f = await settle(app, pilot)
        assert f.compare is not None and f.compare.iteration == f.iteration == 1
        assert "‖dL/dh_t‖" in app.query_one("#compare-grad").text
        for key, view, probe in (("5", "parallel", "#parallel-plot"), ("6", "memory", "#memory-total"),
                                 ("7", "influence", "#influence-plot")):
            await pilot.press(key)
            state = app.jobs[view].join(120)
            assert state.finished and state.error is None, (view, state)
            app.poll_frame()
            await pilot.pause()
            assert app.query_one(probe).text.strip(), view
