"""A resize storm (issue 15): many resizes between 120x40, 80x24, 60x20, 40x10 and smaller, with and without a
pause between them, while the simulation plays. No crash, and right after the storm the layout is the one a fresh
app gets at that size (every widget in the same place), with the too-small message only where it belongs."""

from __future__ import annotations

import random

import pytest

from rnnsim.tui.app import MIN_HEIGHT, MIN_WIDTH, RnnsimApp

from conftest import settle

SIZES = [(120, 40), (80, 24), (60, 20), (40, 10), (20, 6), (100, 30), (61, 19), (59, 17), (150, 50)]
WIDGETS = ("#title", "#main", "#views", "#lesson-side", "#lesson-bottom", "#status", "#too-small")


def _layout(app) -> dict:
    out = {}
    for sel in WIDGETS:
        w = app.query_one(sel)
        out[sel] = (w.display, tuple(w.region)) if w.display else (False,)
    out["too-small"] = app.screen.has_class("too-small")
    return out


async def _fresh_layout(small, size) -> dict:
    app = RnnsimApp(small)
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        return _layout(app)


@pytest.mark.slow
@pytest.mark.parametrize("final", [(80, 24), (120, 40), (40, 10)])
async def test_resize_storm_ends_in_the_right_layout(small, final):
    want = await _fresh_layout(small, final)
    app = RnnsimApp(small)
    rng = random.Random(hash(final) & 0xFFFF)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        app.runner.send("play")
        for i in range(60):
            w, h = rng.choice(SIZES)
            await pilot.resize_terminal(w, h)
            if i % 3 == 0:  # bursts: often no pause at all between resizes
                await pilot.pause()
        await pilot.resize_terminal(*final)
        app.runner.send("pause")
        await settle(app, pilot)
        await pilot.pause()
        got = _layout(app)
        assert app.size == final
        assert got["too-small"] == (final[0] < MIN_WIDTH or final[1] < MIN_HEIGHT)
        assert got == want
        # still alive and responsive after the storm
        await pilot.press("n")
        assert (await settle(app, pilot)).steps_done > 0
    assert app.return_code in (None, 0)
