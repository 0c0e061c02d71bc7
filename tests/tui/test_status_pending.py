"""The status line shows pending changes of every kind (a pending cell change used to hide a later clip change)."""

from __future__ import annotations

from rnnsim.tui.app import RnnsimApp
from rnnsim.tui.widgets.status import alert_text, status_text

from conftest import settle


async def test_cell_then_clip_mid_pass_both_shown_pending(small):
    app = RnnsimApp(small)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("n", "m", "c", "right_square_bracket")  # mid-pass: all three wait for the boundary
        f = await settle(app, pilot)
        assert f.pending is not None and app.runner.sim.scenario.training.clip == "none"
        status = str(app.query_one("#status").render())
        line, alert = status.split("\n")
        assert "clip off→norm ‖g‖≤2*" in line and "rnn tanh→lstm*" in line
        assert "model.cell=lstm" in alert and "training.clip=norm" in alert and "training.clip_threshold=2.0" in alert
        for _ in range(19 + 20 + 1):  # finish forward, BPTT, update: everything applies
            await pilot.press("n")
        f = await settle(app, pilot)
        sc = app.runner.sim.scenario
        assert f.pending is None and (sc.model.cell, sc.training.clip, sc.training.clip_threshold) == ("lstm", "norm",
                                                                                                       2.0)
        line = str(app.query_one("#status").render()).split("\n")[0]
        assert "clip norm ‖g‖≤2" in line and "→" not in line and "*" not in line


def test_other_pending_keys_are_counted_and_listed(small):
    from rnnsim.tui.frames import Frame

    pending = small.with_changes({"model.hidden_size": 12, "training.learning_rate": 0.5})
    f = Frame(ready=True, compiling=False, scenario=small, pending=pending, T=20)
    line = str(status_text(f))
    assert "+2*" in line and "→" not in line  # neither the cell nor the clipping changes
    alert = str(alert_text(f))
    assert "model.hidden_size=12" in alert and "training.learning_rate=0.5" in alert
    assert "+" not in str(status_text(Frame(ready=True, compiling=False, scenario=small, T=20)))
