"""The 80x24 layout is complete: the footer keeps `?` and `q`, a smaller terminal gets a message (never a clipped
layout), and a resize re-lays out the lesson panel and the status line at once (issue 11, "80x24 must be complete")."""

from __future__ import annotations

import pytest
from textual.widgets._footer import FooterKey

from rnnsim.tui.app import MIN_HEIGHT, MIN_WIDTH, SIDE_LESSON_WIDTH, RnnsimApp

from conftest import settle


def visible_footer_keys(app) -> list[str]:
    """Keys of the footer entries that lie wholly on screen, left of the command palette's key."""
    keys = list(app.query(FooterKey))
    palette = [k for k in keys if k.has_class("-command-palette")]
    right = min([k.region.x for k in palette], default=app.size.width)
    return [k.key for k in keys if not k.has_class("-command-palette") and k.region.width
            and k.region.right <= right]


async def test_footer_shows_help_and_quit_at_80_columns(small):
    app = RnnsimApp(small)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        shown = visible_footer_keys(app)
        assert "question_mark" in shown and "q" in shown, shown
        assert "space" in shown and "n" in shown  # and the keys that run the simulation
        assert "x" not in shown  # the compare knob only in the Compare view: it takes no room elsewhere


def test_min_size_is_the_readme_promise():
    assert (MIN_WIDTH, MIN_HEIGHT) == (80, 24)


@pytest.mark.parametrize("size, small_msg", [((60, 20), True), ((79, 23), True), ((79, 24), True),
                                             ((80, 23), True), ((80, 24), False)])
async def test_below_80x24_a_message_not_a_clipped_layout(small, size, small_msg):
    app = RnnsimApp(small)
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        assert app.screen.has_class("too-small") is small_msg
        main = app.query_one("#main")
        if small_msg:
            assert "Terminal too small" in str(app.query_one("#too-small").render())
            assert not main.display or main.region.height == 0
        else:
            for wid in ("#heatmap", "#gradient", "#cursor-info", "#status"):
                region = app.query_one(wid).region
                assert region.height >= 1 and region.right <= 80 and region.bottom <= 24, wid


def _status_lines(app) -> list[str]:
    return str(app.query_one("#status").render()).split("\n")


async def test_resize_relays_out_lesson_panel_and_status_at_once(small):
    assert small.lesson.steps  # the vanishing lesson's steps
    app = RnnsimApp(small)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("space")  # playing: a long status line
        await pilot.pause(0.2)
        await pilot.press("space")
        await settle(app, pilot)
        views = app.query_one("#views")
        assert app.screen.has_class("lesson-side") and views.region.width == 120 - 40
        for w, h in [(80, 24), (60, 20), (120, 40), (80, 24)]:
            await pilot.resize_terminal(w, h)
            await pilot.pause(0.1)  # no key pressed, no frame needed: the resize alone re-lays out
            await pilot.pause()
            too_small = w < MIN_WIDTH or h < MIN_HEIGHT
            assert app.screen.has_class("too-small") is too_small
            side = w >= SIDE_LESSON_WIDTH
            assert app.screen.has_class("lesson-side") is side, (w, h)
            assert app.screen.has_class("lesson-bottom") is (not side), (w, h)
            if not too_small:
                assert views.region.width == (w - 40 if side else w), (w, h)
                assert app.query_one("#lesson-bottom" if not side else "#lesson-side").region.height >= 4
            status = app.query_one("#status")
            lines = _status_lines(app)
            assert len(lines) == 2 and all(len(line) <= w for line in lines), (w, lines)  # one line each, no wrap
            assert status.region.width == w and status.region.height == 2


async def _train_a_little(app, pilot):
    await pilot.press("t")
    await pilot.pause(0.3)
    await pilot.press("t")
    f = await settle(app, pilot)
    assert f.iteration > 0 and not f.training
    return f


async def test_model_change_after_training_warns_first_then_restarts(small):
    app = RnnsimApp(small)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("m")  # at iteration 0 nothing is lost: no warning
        f = await settle(app, pilot)
        assert app.runner.sim.scenario.model.cell == "lstm"
        f = await _train_a_little(app, pilot)
        trained = f.iteration
        await pilot.press("m")  # first press: the warning only
        f = await settle(app, pilot)
        assert app.runner.sim.scenario.model.cell == "lstm" and f.pending is None and f.iteration == trained
        status = str(app.query_one("#status").render())
        assert f"press m again to change cell: restart from the seed, {trained} iterations lost" in status
        await pilot.press("c")  # a training knob outside Compare acts at the next update: no warning, no restart
        f = await settle(app, pilot)
        assert f.iteration == trained and f.scenario.training.clip == "norm"
        await pilot.press("m")  # the same key again: it goes ahead
        f = await settle(app, pilot)
        target = f.pending if f.pending is not None else f.scenario
        assert target.model.cell == "gru"
        await pilot.press("S")  # a restart is pending or done: the next restarting key does not warn again
        f = await settle(app, pilot)
        target = f.pending if f.pending is not None else f.scenario
        assert target.model.recurrent_scale == pytest.approx(0.95)


async def test_opening_compare_after_training_warns_first(small):
    app = RnnsimApp(small)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        f = await _train_a_little(app, pilot)
        await pilot.press("4")
        f = await settle(app, pilot)
        assert app.view == "dynamics" and f.compare is None and f.iteration > 0
        assert "press 4 again to open Compare" in str(app.query_one("#status").render())
        await pilot.press("4")
        f = await settle(app, pilot)
        assert app.view == "compare" and f.compare is not None and f.iteration == 0


async def test_screenshot_train_is_exact(small):
    """`python -m rnnsim.tui.screenshot --train N` trains exactly N iterations (it used to overshoot: 50 gave 59)."""
    from rnnsim.tui.screenshot import _train_exactly, units_per_iteration

    assert units_per_iteration(small) == 20 + 20 + 1  # T forward steps, T BPTT steps, the update
    app = RnnsimApp(small)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert _train_exactly(app.runner, 13) == 13 and app.runner.sim.iteration == 13
        app.runner.send("step", 7)  # a pass under way (as after --steps)
        assert _train_exactly(app.runner, 4) == 4 and app.runner.sim.iteration == 17
        assert app.runner.frame.phase == "idle"


async def test_param_panel_has_focus_at_once_and_down_up_move_it():
    import rnnsim
    from textual.widgets import Input

    from rnnsim.tui.screens.modals import KNOBS, ParamScreen

    sc = rnnsim.load_scenario("vanishing-lstm")  # locks model.cell: skipped by down/up
    app = RnnsimApp(sc)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("p")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ParamScreen)
        ids = ["knob-" + k.replace(".", "-") for k, _ in KNOBS]
        assert screen.focused is not None and screen.focused.id == ids[0]  # scenario.seed, without a key press
        await pilot.press("down")
        assert screen.focused.id == "knob-model-activation"  # model.cell is locked: skipped
        await pilot.press("down", "up")
        assert screen.focused.id == "knob-model-activation"
        await pilot.press("down", "down", "down", "down", "down")  # a quick burst: every key counts
        assert screen.focused.id == ids[ids.index("knob-model-activation") + 5]   # none of these five is locked
        await pilot.press("up", "up", "up", "up", "up")
        assert screen.focused.id == "knob-model-activation"
        await pilot.press("up", "up")
        assert screen.focused.id == ids[-1]  # wraps around
        row = screen.focused.parent
        assert row.has_pseudo_class("focus-within")
        focused_bg = row.styles.background
        other = screen.query_one("#knob-model-init", Input).parent
        assert focused_bg != other.styles.background  # the focused row is marked, not just its cursor


async def test_help_shows_the_lessons_measured_notes_and_the_picker_is_in_course_order(small, tmp_path, monkeypatch):
    from textual.widgets import Markdown

    from rnnsim import lessons
    from rnnsim.scenario import builtin_scenarios
    from rnnsim.tui.screens.modals import HelpScreen, PickerScreen

    monkeypatch.chdir(tmp_path)  # no *.toml files here: the picker lists the built-ins only
    app = RnnsimApp(small)  # loaded from the built-in `vanishing`
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        notes = app.screen.query_one("#help-notes", Markdown)
        assert app.screen.notes == lessons.notes("vanishing") and "Vanishing gradients (problem 1)" in app.screen.notes
        assert notes is not None
        await pilot.press("escape")
        await pilot.press("2")  # a view other than Dynamics: opening a lesson goes back to Dynamics
        await pilot.press("o")
        await pilot.pause()
        assert isinstance(app.screen, PickerScreen)
        targets = app.screen.targets
        assert targets == [e.name for e in lessons.course(builtin_scenarios())]
        app.screen.query_one("#picker-list").highlighted = targets.index("clip-norm")
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.view == "dynamics" and app.runner.sim.scenario.scenario.name.startswith("Clipping by norm")
        await pilot.press("question_mark")
        await pilot.pause()
        assert "`clip-norm`" in app.screen.notes


async def test_keys_right_after_reset_do_not_warn(small):
    """The lessons say "press r, then S twice": the reset drops the training anyway, even before its frame arrives."""
    app = RnnsimApp(small)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await _train_a_little(app, pilot)
        await pilot.press("r", "S", "S")
        f = await settle(app, pilot)
        target = f.pending if f.pending is not None else f.scenario
        assert target.model.recurrent_scale == pytest.approx(1.0) and "again" not in str(
            app.query_one("#status").render())


async def test_a_frame_polled_while_the_widgets_are_torn_down_draws_nothing(small):
    """The frame timer can fire while the app exits and its widgets are being removed (CI caught a NoMatches on
    '#title' at the end of a test): such a poll draws nothing instead of raising."""
    app = RnnsimApp(small)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert app.poll_frame(force=True) is True
        await app.query_one("#title").remove()
        assert app.poll_frame(force=True) is False
