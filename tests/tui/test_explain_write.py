"""Pilot tests of `e` (the explain panel) and `w` (write the scenario as TOML)."""

from __future__ import annotations

import os
import tomllib

import numpy as np
import pytest

import rnnsim
from rnnsim.tui.app import RnnsimApp
from rnnsim.tui.screens.explain import ExplainScreen
from rnnsim.tui.widgets.status import StatusBar
from textual.geometry import Region

from conftest import settle

SIZE = (80, 24)


async def _wait_answer(pilot, screen, rounds=200):
    for _ in range(rounds):
        if screen.request.done.is_set() and "computing" not in str(screen.query_one("#explain-body").render()):
            return
        await pilot.pause(0.05)
    raise AssertionError("the explain panel got no answer")


def _body_text(screen) -> str:
    """The panel's text as drawn (one string per screen row, joined by newlines)."""
    body = screen.query_one("#explain-body")
    return "\n".join(s.text for s in body.render_lines(Region(0, 0, body.size.width, body.size.height)))


def _squash(text: str) -> str:
    return "".join(text.split())


async def test_e_opens_the_panel_fits_80x24_and_closes(small):
    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.runner.send("step", 20 + 8)           # forward pass, then BPTT down to t = 12
        await settle(app, pilot)
        for _ in range(13):
            await pilot.press("full_stop")        # cursor to t = 13
        await pilot.press("e")
        screen = app.screen
        assert isinstance(screen, ExplainScreen) and screen.t == 13
        await _wait_answer(pilot, screen)
        await pilot.pause()
        expl = screen.request.result
        assert expl.t == 13
        ident = expl.line("identity")
        assert ident.result == pytest.approx(np.linalg.norm(app.runner.sim.grad_hidden[0, 13]), rel=1e-12)
        # the panel lies inside the 80x24 screen and every character of the text is on it (wrapped, never cut)
        box = screen.query_one("Vertical")
        assert Region(0, 0, *SIZE).contains_region(box.region)
        body = screen.query_one("#explain-body")
        assert body.size.width <= SIZE[0] - 4
        strips = body.render_lines(Region(0, 0, body.size.width, body.size.height))
        shown = "".join(s.text for s in strips)
        assert _squash(shown) == _squash("".join(expl.text_lines()))
        assert all(s.cell_length <= body.size.width for s in strips)
        await pilot.press("e")
        await pilot.pause()
        assert not isinstance(app.screen, ExplainScreen)
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, ExplainScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ExplainScreen) and len(app.screen_stack) == 1


@pytest.mark.parametrize("how", ["steps", "train"])
async def test_e_after_an_update_uses_the_weights_the_pass_used(small, how):
    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        if how == "steps":
            app.runner.send("step", 20 + 20 + 1)  # forward, BPTT, the update (Runner._step)
        else:
            app.runner.send("train")              # whole iterations (Runner._train_one), then pause
            await pilot.pause(0.3)
            app.runner.send("pause")
        frame = await settle(app, pilot)
        assert frame.phase == "idle" and frame.iteration >= 1
        await pilot.press("e")
        await _wait_answer(pilot, app.screen)
        expl = app.screen.request.result
        assert expl.line("pass_weights").kind == "note"
        sim = app.runner.sim
        assert expl.line("identity").result == pytest.approx(np.linalg.norm(sim.grad_hidden[0, 0]), rel=1e-12)
        assert _squash("kept before the update") in _squash(_body_text(app.screen))
        await pilot.press("escape")


async def test_e_before_any_pass_names_what_is_missing(small):
    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("e")
        await _wait_answer(pilot, app.screen)
        text = _squash(_body_text(app.screen))
        assert _squash("not there yet") in text and _squash("no forward pass yet") in text
        await pilot.press("escape")


async def test_e_after_the_sentinel_says_not_finite(small):
    """A network that overflowed: the panel writes NaN/inf as such and names the sentinel, it does not crash."""
    blown = small.with_changes({"model.activation": "relu", "model.init": "identity", "model.recurrent_scale": 60.0,
                                "task.length": 200})
    app = RnnsimApp(blown)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.runner.send("step", 200)                  # the forward pass overflows part way
        await settle(app, pilot)
        assert app.runner.sim.sentinel is not None
        t = app.runner.sim.sentinel.t                  # the step where h overflowed: the last one done
        assert t is not None and app.runner.sim.t == t + 1
        for _ in range(t // 10):
            await pilot.press("greater_than_sign")
        for _ in range(t % 10):
            await pilot.press("full_stop")
        assert app.cursor == t
        await pilot.press("e")
        await _wait_answer(pilot, app.screen)
        text = _squash(_body_text(app.screen))
        assert _squash("non-finite value in hidden") in text and _squash("values of h_t are NaN or inf") in text
        assert app._exception is None
        await pilot.press("escape")


def _status(app) -> str:
    return str(app.query_one(StatusBar).render())


async def test_w_writes_the_scenario_with_pending_changes_and_never_overwrites(small, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("c")                    # clipping none -> norm: in effect at once
        await pilot.press("n")                    # mid-pass: the next model change waits
        await settle(app, pilot)
        await pilot.press("m")                    # cell rnn -> lstm: pending until the next iteration
        await settle(app, pilot)
        assert app.runner.frame.pending is not None
        await pilot.press("w")
        await pilot.pause()
        first = tmp_path / "rnnsim-vanishing-1.toml"
        assert first.is_file()
        status = _status(app)
        assert "wrote ./rnnsim-vanishing-1.toml, pending included: model.cell=lstm" in status
        loaded = rnnsim.load_scenario(str(first))
        assert loaded == app.runner.frame.pending
        assert loaded.model.cell == "lstm" and loaded.training.clip == "norm"
        await pilot.press("w")
        await pilot.pause()
        assert (tmp_path / "rnnsim-vanishing-2.toml").is_file()
        assert rnnsim.load_scenario(str(first)) == loaded       # the first file is untouched
        assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
async def test_w_in_a_read_only_folder_is_one_status_line(small, tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    monkeypatch.chdir(ro)
    app = RnnsimApp(small)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            await pilot.press("w")
            await pilot.pause()
            status = _status(app)
            assert "scenario not written" in status and "writable" in status
            assert os.listdir(ro) == []
    finally:
        ro.chmod(0o755)


def test_write_scenario_refuses_a_read_only_folder_as_one_line(tmp_path, monkeypatch):
    from rnnsim.export import ExportError, write_scenario

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("rnnsim.tempfiles.make_temp", refuse)
    with pytest.raises(ExportError) as info:
        write_scenario(rnnsim.load_scenario("vanishing"), tmp_path)
    msg = str(info.value)
    assert "\n" not in msg and str(tmp_path) in msg and "Permission denied" in msg
    assert os.listdir(tmp_path) == []


def test_written_text_is_toml_of_the_scenario(tmp_path):
    from rnnsim.export import write_scenario

    sc = rnnsim.load_scenario("adding-lstm")
    path = write_scenario(sc, tmp_path)
    assert path.name == "rnnsim-adding-lstm-1.toml"
    assert tomllib.loads(path.read_text(encoding="utf-8"))["model"]["cell"] == "lstm"
    assert rnnsim.load_scenario(str(path)) == sc
