"""Pilot tests of stacked layers in the TUI: d / D pick the layer the Dynamics view shows (heatmap, gradient
panel, J row, spectrum, titles and status say "layer l/N"), and the depth × time map of ‖dL/dh_t^l‖."""

from __future__ import annotations

import numpy as np

from rnnsim import diagnostics
from rnnsim.tui.app import RnnsimApp
from rnnsim.tui.widgets.common import GUTTER, column_ranges
from rnnsim.tui.widgets.status import status_text
from rnnsim.tui.widgets.depth import DepthMap, decade_range, levels, scale
from rnnsim.tui.widgets.gradient import GradientPanel
from rnnsim.tui.widgets.heatmap import Heatmap

from conftest import settle

SIZE = (80, 24)


def lines(widget) -> list[str]:
    return ["".join(seg.text for seg in widget.render_line(y)) for y in range(widget.size.height)]


async def test_d_picks_the_layer_and_the_depth_map_shows_where_the_gradient_dies(small):
    app = RnnsimApp(small.with_changes({"model.num_layers": 3}))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        sim = app.runner.sim
        T = sim.T
        await pilot.press(*["n"] * (3 * T + T + 5))   # forward (3·T steps), the top layer's BPTT, 5 steps of layer 2
        f = await settle(app, pilot)
        assert (f.phase, f.layer_now, f.bt, f.layer) == ("backward", 1, 5, 2)
        assert "bptt 5/20 layer 2/3" in status_text(f).plain
        # the shown layer is the last one by default: its profile and hidden states are the core's
        np.testing.assert_array_equal(f.profile, diagnostics.gradient_profile(sim, 2))
        np.testing.assert_array_equal(f.hidden, sim.layer_hidden[2][0])
        assert app.query_one(Heatmap).title.startswith(" layer 3/3 h_t")
        assert lines(app.query_one(GradientPanel))[0].startswith(" layer 3/3 ‖dL/dh_t‖")

        depth = app.query_one(DepthMap)
        assert depth.display and depth.size.height == 4
        rows = lines(depth)
        assert rows[0].startswith(" log10‖dL/dh_t^l‖ depth×time") and "1e" in rows[0]
        # top layer on top; the shown one marked ▸; layer 1 not reached (·), layer 2 only its last 5 steps
        assert rows[1].lstrip().startswith("L3▸") and rows[2].lstrip().startswith("L2 ")
        cols, _ = column_ranges(T, SIZE[0] - GUTTER)   # the heatmap's mapping: here 3 columns per step
        data = ["".join(r[GUTTER + cols.index((t, t + 1))] for t in range(T)) for r in rows[1:]]
        assert "·" not in data[0] and set(data[2]) <= {"·", "│"}
        assert set(data[1][:T - 5]) <= {"·", "│"} and "·" not in data[1][T - 5:]
        # the colour of a cell is its decade: the top layer's last step is the largest, its first the smallest
        np.testing.assert_array_equal(f.depth, diagnostics.depth_profile(sim))
        lo, hi = decade_range(f.depth)
        lev = levels(f.depth[2], lo, hi)
        assert lev[-1] == lev.max() and lev[0] == lev.min() < lev[-1]

        await pilot.press("d")
        f = await settle(app, pilot)
        assert f.layer == 1 and "showing layer 2/3" in f.message
        np.testing.assert_array_equal(f.profile, diagnostics.gradient_profile(sim, 1))
        np.testing.assert_array_equal(f.jacobian, diagnostics.jacobian_norms(sim, layer=1))
        assert app.query_one(Heatmap).title.startswith(" layer 2/3 h_t")
        assert lines(app.query_one(DepthMap))[2].lstrip().startswith("L2▸")
        await pilot.press("d", "d", "d")            # clamped at the bottom layer
        f = await settle(app, pilot)
        assert f.layer == 0
        await pilot.press("D")
        f = await settle(app, pilot)
        assert f.layer == 1
        await pilot.press("3")                      # the spectrum of the shown layer's W_hh
        f = await settle(app, pilot)
        np.testing.assert_allclose(np.sort_complex(f.spectrum.eigenvalues),
                                   np.sort_complex(np.linalg.eigvals(sim.params["weight_hh_l1"])))
        assert "layer 2/3" in str(app.query_one("#spectrum-info").render())


async def test_one_layer_has_no_depth_map_and_d_says_so(small):
    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert not app.query_one(DepthMap).display
        await pilot.press("d")
        f = await settle(app, pilot)
        assert f.layer == 0 and "one layer" in f.message and f.depth is None
        assert app.query_one(Heatmap).title.startswith(" h_t")


def test_depth_scale_levels_are_whole_decades():
    assert scale(-3, 0) == (0.5, 6) and scale(-8, 0) == (1.0, 8) and scale(-20, 0) == (3.0, 7)
    v = np.array([1e-3, 4e-3, 0.9e-2, 1e-2, 0.5, np.nan, np.inf])
    # half-decade levels from 1e-3: [1e-3, 10^-2.5 ≈ 3.2e-3) is level 0, [3.2e-3, 1e-2) level 1, ...
    assert levels(v, -3, 0).tolist() == [0, 1, 1, 2, 5, -1, -2]
