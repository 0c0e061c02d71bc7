"""Every built-in scenario (and the attention variants) opens, steps through an iteration and draws both views."""

from __future__ import annotations

import numpy as np
import pytest

import rnnsim
from rnnsim.scenario import builtin_scenarios
from rnnsim.tui.app import RnnsimApp

from conftest import settle

CASES = [(name, {}) for name in builtin_scenarios()] + [
    ("vanishing", {"model.cell": "attention"}),
    ("vanishing", {"model.readout": "attention"}),
    ("vanishing", {"model.activation": "relu"}),
]


@pytest.mark.parametrize("name, changes", CASES, ids=[f"{n}{'+' + ','.join(c.values()) if c else ''}" for n, c in CASES])
async def test_scenario_draws(name, changes):
    sc = rnnsim.load_scenario(name).with_changes(
        {"task.length": min(rnnsim.load_scenario(name).task.length, 40), **changes}
    )
    app = RnnsimApp(sc)
    async with app.run_test(size=(80, 24)) as pilot:
        f = await settle(app, pilot)
        assert f.ready and f.error is None
        app.runner.send("step", 2 * f.T + 1 + f.T // 2)  # one iteration, then half a forward pass
        f = await settle(app, pilot)
        assert f.error is None and f.iteration == 1 and f.phase == "forward"
        assert f.hidden.shape == (f.T, f.H) and np.isfinite(f.hidden[: f.t]).all()
        heat = app.query_one("#heatmap")
        lines = [heat.render_line(y).text for y in range(heat.size.height)]
        assert "h_t" in lines[0] and "▀" in "".join(lines)
        await pilot.press("2")
        await settle(app, pilot)
        plot = app.query_one("#loss-plot")
        assert "1 iteration ·" in plot.render_line(0).text
