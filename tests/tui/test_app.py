"""Pilot tests: press every binding and check its effect on the app and on the simulation."""

from __future__ import annotations

import numpy as np
import pytest

from rnnsim.tui.app import RnnsimApp
from rnnsim.tui.runner import SPEEDS, DEFAULT_SPEED_INDEX
from rnnsim.tui.screens.modals import HelpScreen, ParamScreen, PickerScreen

from conftest import settle

SIZE = (100, 30)


async def test_first_frame_and_status(small):
    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        frame = await settle(app, pilot)
        assert frame.ready and not frame.compiling
        assert frame.T == 20 and frame.H == 8 and frame.phase == "idle"
        status = str(app.query_one("#status").render())
        assert "READY" in status and "t 0/20" in status and "rnn tanh" in status and "clip off" in status
        assert app.runner.ui_drawn.is_set()  # the app told the worker it drew a frame (then the kernels load)


async def test_step_keys_walk_forward_backward_update(small):
    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("n")
        f = await settle(app, pilot)
        assert (f.phase, f.t) == ("forward", 1)
        await pilot.press("right")
        f = await settle(app, pilot)
        assert f.t == 2 and app.runner.sim.t == 2
        for _ in range(18):
            await pilot.press("n")
        f = await settle(app, pilot)
        assert f.phase == "forward_done" and f.loss is not None
        assert f.hidden_filled == 20
        for _ in range(20):
            await pilot.press("n")
        f = await settle(app, pilot)
        assert f.phase == "backward_done" and f.grad_filled == 20
        assert np.isfinite(f.profile).all()
        # the core's profile, copied: every number shown comes from the core
        from rnnsim import diagnostics

        assert np.allclose(f.profile, diagnostics.gradient_profile(app.runner.sim))
        await pilot.press("n")  # the update
        f = await settle(app, pilot)
        assert f.iteration == 1 and f.phase == "idle" and len(f.losses) == 1
        assert f.stale  # shows the previous pass until the next step
        assert "it 1" in str(app.query_one("#status").render())


async def test_play_pause_and_speed(small):
    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("plus")
        await pilot.press("plus")
        assert app.runner.wait_idle().speed == SPEEDS[DEFAULT_SPEED_INDEX + 2]
        await pilot.press("minus")
        assert app.runner.wait_idle().speed == SPEEDS[DEFAULT_SPEED_INDEX + 1]
        await pilot.press("space")
        await pilot.pause(0.3)
        assert app.runner.frame.playing
        await pilot.press("space")
        f = await settle(app, pilot)
        assert not f.playing and f.steps_done > 0


async def test_train_toggle(small):
    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("t")
        await pilot.pause(0.5)
        await pilot.press("t")
        f = await settle(app, pilot)
        assert not f.training and f.iteration >= 1
        assert len(f.losses) == f.iteration == len(app.runner.sim.history)
        await pilot.press("2")
        await settle(app, pilot)
        assert app.view == "training"
        assert app.query_one("#views").current == "training"


async def test_clip_cycle_and_threshold(small):
    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        tr = lambda: app.runner.sim.scenario.training  # noqa: E731
        await pilot.press("c")
        await settle(app, pilot)
        assert tr().clip == "norm"
        assert "clip norm" in str(app.query_one("#status").render())
        await pilot.press("c")
        await settle(app, pilot)
        assert tr().clip == "value"
        await pilot.press("c")
        await settle(app, pilot)
        assert tr().clip == "none"
        await pilot.press("right_square_bracket")
        await settle(app, pilot)
        assert tr().clip_threshold == 2.0
        await pilot.press("left_square_bracket", "left_square_bracket")
        await settle(app, pilot)
        assert tr().clip_threshold == 0.5
        # quick repeated presses are not lost: each one sees the previous one's result
        await pilot.press("c", "c")
        await settle(app, pilot)
        assert tr().clip == "value"


async def test_model_knobs_apply_at_iteration_boundary_with_same_data(small):
    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        inputs0 = app.runner.sim.inputs.copy()
        await pilot.press("n")  # mid-pass: the change must wait
        await pilot.press("m")
        f = await settle(app, pilot)
        assert app.runner.sim.scenario.model.cell == "rnn"
        assert f.pending is not None and f.pending.model.cell == "lstm"
        assert "pending" in str(app.query_one("#status").render())
        for _ in range(19 + 20 + 1):  # finish forward, BPTT, update
            await pilot.press("n")
        f = await settle(app, pilot)
        sim = app.runner.sim
        assert sim.scenario.model.cell == "lstm" and f.pending is None
        assert sim.scenario.scenario.seed == 0
        np.testing.assert_array_equal(sim.inputs, inputs0)  # same seed, same data
        # at the boundary a change applies at once: gru
        await pilot.press("m")
        await settle(app, pilot)
        assert app.runner.sim.scenario.model.cell == "gru"
        await pilot.press("n")
        f = await settle(app, pilot)
        assert set(f.gates) == {"reset", "update"}
        await pilot.press("m")
        await settle(app, pilot)
        assert app.runner.frame.pending.model.cell == "attention"  # rnn → lstm → gru → attention → rnn
        for _ in range(20 + 20 + 1):
            await pilot.press("n")
        f = await settle(app, pilot)
        assert app.runner.sim.scenario.model.cell == "attention" and f.gates == {}
        assert "no recurrence" in app.query_one("#gradient").render_line(app.query_one("#gradient").size.height - 2).text
        await pilot.press("m")  # mid-pass again: pending
        f = await settle(app, pilot)
        assert f.pending.model.cell == "rnn"


@pytest.mark.parametrize(
    "key, field, before, after",
    [
        ("a", "activation", "tanh", "relu"),
        ("l", "layernorm", False, True),
        ("s", "recurrent_scale", 0.9, 0.85),
        ("S", "recurrent_scale", 0.9, 0.95),
        ("i", "init", "orthogonal", "identity"),
    ],
)
async def test_model_keys(small, key, field, before, after):
    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert getattr(app.runner.sim.scenario.model, field) == before
        await pilot.press(key)
        await settle(app, pilot)
        assert getattr(app.runner.sim.scenario.model, field) == pytest.approx(after)


async def test_reset_and_new_seed(small):
    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        w0 = app.runner.sim.params["weight_hh"].copy()
        await pilot.press("t")
        await pilot.pause(0.3)
        await pilot.press("t")
        f = await settle(app, pilot)
        assert f.iteration > 0
        assert not np.array_equal(app.runner.sim.params["weight_hh"], w0)
        await pilot.press("r")
        f = await settle(app, pilot)
        assert f.iteration == 0 and f.phase == "idle" and len(f.losses) == 0
        np.testing.assert_array_equal(app.runner.sim.params["weight_hh"], w0)
        await pilot.press("R")
        f = await settle(app, pilot)
        assert app.runner.sim.scenario.scenario.seed == 1
        assert not np.array_equal(app.runner.sim.params["weight_hh"], w0)


async def test_cursor_keys(small):
    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("full_stop", "full_stop")
        assert app.cursor == 2
        await pilot.press("greater_than_sign")
        assert app.cursor == 12
        await pilot.press("greater_than_sign")
        assert app.cursor == 19  # clamped to T-1
        await pilot.press("less_than_sign", "comma")
        assert app.cursor == 8
        for _ in range(20):
            await pilot.press("n")
        await settle(app, pilot)
        info = str(app.query_one("#cursor-info").render())
        h = app.runner.sim.hidden[0, 8]
        assert "t=8" in info and f"{h[0]:+.2f}" in info


async def test_views_and_help(small):
    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        assert app.view == "training"
        await pilot.press("1")
        assert app.view == "dynamics"
        await pilot.press("tab")
        assert app.view == "training"
        await pilot.press("tab")
        assert app.view == "dynamics"
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        from rich.console import Console

        console = Console(width=100, record=True, file=open("/dev/null", "w"))
        console.print(app.screen.table)
        text = console.export_text()
        for keys, _ in RnnsimApp.HELP_ROWS:
            assert keys.split()[0] in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


def test_every_binding_is_in_help():
    """Every key bound by the app appears in the help rows (and so in the README table)."""
    help_keys = " ".join(k for k, _ in RnnsimApp.HELP_ROWS)
    for b in RnnsimApp.BINDINGS:
        display = b.key_display or b.key
        for k in display.split("/") if "/" in display else display.split(","):
            k = {"space": "space", "comma": ",", "full_stop": ".", "question_mark": "?",
                 "less_than_sign": "<", "greater_than_sign": ">"}.get(k, k)
            assert k in help_keys, k


async def test_picker_loads_a_builtin(small, tmp_path, monkeypatch):
    (tmp_path / "mine.toml").write_text(
        '[scenario]\nname = "my file"\n[model]\nhidden_size = 8\n[task]\nkind = "random"\nlength = 12\nbatch_size = 2\n'
    )
    monkeypatch.chdir(tmp_path)
    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("o")
        assert isinstance(app.screen, PickerScreen)
        targets = app.screen.targets
        assert "vanishing" in targets and any(t.endswith("mine.toml") for t in targets)
        idx = next(i for i, t in enumerate(targets) if t.endswith("mine.toml"))
        app.screen.query_one("#picker-list").highlighted = idx
        await pilot.press("enter")
        f = await settle(app, pilot)
        assert not isinstance(app.screen, PickerScreen)
        assert app.runner.sim.scenario.scenario.name == "my file" and f.T == 12


async def test_param_panel_edits_and_errors(small):
    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("p")
        assert isinstance(app.screen, ParamScreen)
        inp = app.screen.query_one("#knob-model-hidden_size")
        assert inp.value == "8"
        inp.focus()
        inp.value = "12"
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.runner.sim.H == 12
        assert "✓" in str(app.screen.query_one("#param-msg").render())
        bad = app.screen.query_one("#knob-training-clip")
        bad.focus()
        bad.value = "sometimes"
        await pilot.press("enter")
        msg = str(app.screen.query_one("#param-msg").render())
        assert "training.clip" in msg and "none" in msg  # the schema's one-line message
        assert app.runner.sim.scenario.training.clip == "none"
        await pilot.press("escape")
        assert not isinstance(app.screen, ParamScreen)


async def test_sentinel_warning(small):
    boom = small.with_changes(
        {"model.activation": "relu", "model.init": "identity", "model.recurrent_scale": 4.0, "task.length": 600}
    )
    app = RnnsimApp(boom)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("t")
        await pilot.pause(0.2)
        f = await settle(app, pilot)
        assert app.runner.sim.sentinel is not None and f.sentinel
        assert not f.training  # stops itself
        status = str(app.query_one("#status").render())
        assert "non-finite" in status and "press r" in status
        await pilot.press("r")
        f = await settle(app, pilot)
        assert f.sentinel is None


@pytest.mark.parametrize("key", ["q", "ctrl+q"])
async def test_quit_stops_worker(small, key):
    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("space")  # quitting while playing must not hang
        await pilot.pause(0.1)
        await pilot.press(key)
    app.runner._thread.join(2)
    assert not app.runner.alive


async def test_small_terminal_message(small):
    app = RnnsimApp(small)
    async with app.run_test(size=(50, 12)) as pilot:
        await settle(app, pilot)
        assert app.screen.has_class("too-small")
        assert "too small" in str(app.query_one("#too-small").render())
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.3)
        assert not app.screen.has_class("too-small")


async def test_layout_80x24_shows_everything(small):
    app = RnnsimApp(small)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        for wid in ("#heatmap", "#gradient", "#cursor-info", "#status"):
            w = app.query_one(wid)
            assert w.region.height >= 1 and w.region.bottom <= 24, wid
        assert app.query_one("#gradient").region.height >= 6
