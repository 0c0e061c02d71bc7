"""Key bursts and key storms (issue 15, item 1): no ScreenStackError, no traceback, the app still quits with 0.

Keys are sent the way a terminal delivers a burst (a paste, a repeating key): every event posted to the
driver before any is handled. Pilot's own ``press`` waits for idle after each key, which hides the race.
"""

from __future__ import annotations

import asyncio
import random
import traceback

from textual import events

import rnnsim
from rnnsim.tui.app import RnnsimApp
from rnnsim.tui.screens.modals import HelpScreen, ParamScreen, PickerScreen

from conftest import SMALL, settle

SIZE = (100, 30)


def burst(app, *keys: str) -> None:
    """Post every key at once, as a terminal delivers a burst."""
    for key in keys:
        char = key if len(key) == 1 else {"space": " ", "enter": "\r"}.get(key)
        event = events.Key(key, char)
        event.set_sender(app)
        app._driver.send_message(event)


async def drain(app, pilot, rounds: int = 6) -> None:
    for _ in range(rounds):
        await pilot.pause(0.02)


def small_file(tmp_path, name="zz-small.toml", title="zz small"):
    sc = rnnsim.load_scenario("vanishing").with_changes({**SMALL, "scenario.name": title})
    path = tmp_path / name
    path.write_text(sc.to_toml())
    return path


async def test_open_then_enter_enter_in_one_burst_does_not_pop_the_main_screen(small, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    small_file(tmp_path)
    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        burst(app, "o", "end", "enter", "enter")  # the last option is ./zz-small.toml (small: loads fast)
        await drain(app, pilot)
        assert app._exception is None
        assert len(app.screen_stack) == 1 and not isinstance(app.screen, PickerScreen)
        await settle(app, pilot)
        assert app.runner.sim.scenario.scenario.name == "zz small"
        burst(app, "question_mark", "escape", "escape", "escape", "p", "escape", "escape", "o", "escape", "escape")
        await drain(app, pilot)
        assert app._exception is None and len(app.screen_stack) == 1
        await pilot.press("q")
    assert app.return_code == 0 and app._exception is None


async def test_escape_bursts_close_each_dialog_once(small):
    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        for opener in ("question_mark", "p", "o"):
            burst(app, opener, "escape", "escape", "escape")
            await drain(app, pilot)
            assert app._exception is None and len(app.screen_stack) == 1, (opener, app.screen_stack)
        burst(app, "question_mark", "q", "q")  # q closes help; the second q then quits
        await drain(app, pilot)
    assert app._exception is None and app.return_code == 0


# keys of the app's bindings (q and ctrl+q quit: they end the storm instead), some editing keys, and junk
def _storm_keys(app) -> list[str]:
    keys = set()
    for binding in app.BINDINGS:
        for key in binding.key.split(","):
            key = key.strip()
            if key not in ("q", "ctrl+q", "ctrl+c"):
                keys.add(key)
    keys |= {"enter", "escape", "up", "down", "home", "end", "backspace", "delete", "pageup", "pagedown",
             "z", "0", "9", "ctrl+x", "f5", "shift+tab", "space", "o", "p", "question_mark"}
    return sorted(keys)


async def _storm(small, tmp_path, seed: int, n: int = 1000) -> None:
    small_file(tmp_path)
    app = RnnsimApp(small)
    rng = random.Random(seed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        keys = _storm_keys(app)
        sent = 0
        while sent < n:
            size = rng.choice([1, 2, 5, 20, 50])
            chunk = [rng.choice(keys) for _ in range(size)]
            if rng.random() < 0.15:  # bursts inside the picker and the panel
                chunk = [rng.choice(["o", "p"]), *chunk[:10], "enter", "enter"]
            burst(app, *chunk)
            sent += len(chunk)
            await pilot.pause(0.005)
            assert app._exception is None, f"seed {seed}: after {sent} keys: {app._exception!r}: " + "".join(
                traceback.format_exception(app._exception))[-1500:]
        await drain(app, pilot)
        if app.return_code is not None:
            # the storm ran the palette's Quit (ctrl+p, letters, Enter): a clean exit, not a crash
            assert app._exception is None and app.return_code == 0
            return
        # close whatever dialog is open (a dialog whose key was still queued may open late: wait until the stack
        # stays at the main screen), then help, then quit
        quiet = 0
        for _ in range(40):
            if len(app.screen_stack) == 1:
                quiet += 1
                if quiet == 3:
                    break
            else:
                quiet = 0
                await pilot.press("escape")
            await pilot.pause(0.1)
        assert len(app.screen_stack) == 1, app.screen_stack
        await pilot.press("question_mark")
        for _ in range(20):
            if isinstance(app.screen, HelpScreen):
                break
            await pilot.pause(0.1)
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("q")
        await pilot.press("q")
    assert app._exception is None
    assert app.return_code == 0


async def test_key_storm_seed_0(small, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    await _storm(small, tmp_path, seed=0)


async def test_key_storm_seed_1(small, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    await _storm(small, tmp_path, seed=1)


async def test_ctrl_c_quits(small):
    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+c")  # Textual's default only says "press ctrl+q to quit"
        await asyncio.sleep(0.2)
    assert app.return_code == 0 and app._exception is None
