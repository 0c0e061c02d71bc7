"""Switching views does not grow memory (issue 15 item 6, found by benchmarks/soak.py): every refresh_bindings
recomposes Textual's Footer, which keeps its removed keys alive through their data bindings (~13 FooterKey widgets
per switch: ~44 KB/s in the 30-minute soak, which switched views every 5 s). The app refreshes the bindings only
when what they depend on changed (the compare view's knob)."""

from __future__ import annotations

import gc
import warnings

from textual.widgets._footer import FooterKey

from rnnsim.tui.app import RnnsimApp

from conftest import settle


def _footer_keys() -> int:
    gc.collect()
    with warnings.catch_warnings():  # isinstance on every live object touches deprecated module attributes (torch's)
        warnings.simplefilter("ignore", FutureWarning)
        return sum(isinstance(o, FooterKey) for o in gc.get_objects())


async def test_switching_views_keeps_the_footer_keys_bounded(small):
    app = RnnsimApp(small)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(app, pilot)
        before = _footer_keys()
        for i in range(40):
            await pilot.press("2" if i % 2 else "1")
            await pilot.pause()
        assert _footer_keys() <= before + 20  # (before: +520)
        await pilot.press("4")  # the compare view shows its knob key in the footer, and leaving hides it again
        await settle(app, pilot)
        assert app.check_action("compare_knob", ()) is True
        await pilot.press("1")
        await pilot.pause()
        assert app.check_action("compare_knob", ()) is False  # hidden from the footer outside Compare
