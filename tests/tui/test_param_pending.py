"""The parameter panel validates against the worker's latest scenario, changes it has not run yet included
(issue 15 item 9): a rebuild can take the worker seconds, and the frame meanwhile still shows the old scenario."""

from __future__ import annotations

import threading

from rnnsim.tui.app import RnnsimApp
from rnnsim.tui.screens.modals import ParamScreen

from conftest import settle

SIZE = (120, 40)


async def _submit(app, pilot, key: str, value: str) -> str:
    inp = app.screen.query_one("#knob-" + key.replace(".", "-"))
    inp.focus()
    inp.value = value
    await pilot.press("enter")
    await pilot.pause()
    return str(app.screen.query_one("#param-msg").render())


async def test_second_change_is_validated_with_the_first_one_still_pending(small, monkeypatch):
    monkeypatch.setenv("RNNSIM_MAX_BYTES", "200M")
    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        gate = threading.Event()
        handle = app.runner._handle

        def slow(name, args):  # the worker busy rebuilding (as for hidden_size=4096: ~40 s)
            if name == "change":
                gate.wait(30)
            return handle(name, args)

        monkeypatch.setattr(app.runner, "_handle", slow)
        await pilot.press("p")
        assert isinstance(app.screen, ParamScreen)
        try:
            assert "✓" in await _submit(app, pilot, "model.hidden_size", "512")
            assert app.runner.frame.scenario.model.hidden_size == 8  # the frame is stale
            # 100 000 steps × 4 × 512 hidden values do not fit in 200M; with H = 8 (the stale frame) they would
            msg = await _submit(app, pilot, "task.length", "100000")
            assert msg.startswith("✗") and "RNNSIM_MAX_BYTES" in msg, msg
        finally:
            gate.set()
        await pilot.press("escape")
        f = await settle(app, pilot)
        assert f.scenario.model.hidden_size == 512 and f.scenario.task.length == 20
        # once the worker ran the change, the panel builds on the worker's scenario again
        assert app._sc() is f.display_scenario
