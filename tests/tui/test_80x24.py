"""Issue 11, "80x24 must be complete": every view of the built-in lessons rendered at 80x24, with the lesson panel
shown and hidden, in colour and under NO_COLOR; the words each view must show (the decay sentence and its ratio,
the heatmap legend, the chance value, θ, the ‖J_t‖ scale, "* both", "Jaeger: MC ≤ H", ...) are on the screen."""

from __future__ import annotations

import pytest

import rnnsim
from rnnsim.tui import jobs
from rnnsim.tui.app import RnnsimApp

from conftest import settle
from test_snapshots import _fake_parallel_timing


def screen_text(app) -> str:
    return "\n".join(s.text for s in app.screen._compositor.render_strips())


async def _render(name: str, view_key: str | None, lesson: bool, prepare=None, no_color=False, monkeypatch=None):
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    app = RnnsimApp(rnnsim.load_scenario(name))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot, 120)
        if prepare is not None:
            prepare(app.runner)
        if view_key is not None:
            await pilot.press(view_key)
            job = app.jobs.get(app.view)
            if job is not None:
                assert job.join(300).finished, job.state
        if not lesson:
            await pilot.press("L")
        f = await settle(app, pilot, 120)
        app.poll_frame(force=True)
        await pilot.pause()
        text = screen_text(app)
    assert len(text.splitlines()) == 24 and all(len(ln) <= 80 for ln in text.splitlines())
    return text, f


def one_pass(runner):
    runner.send("speed", 10)
    runner.send("one_pass")
    runner.wait_idle(120)


def iterations(n):
    def run(runner):
        runner.send("step", n * (2 * runner.frame.T + 1))
        runner.wait_idle(300)
    return run


LESSON = pytest.mark.parametrize("lesson", [True, False], ids=["lesson", "no-lesson"])
COLOR = pytest.mark.parametrize("no_color", [False, True], ids=["color", "nocolor"])


@LESSON
@COLOR
async def test_dynamics_vanishing_shows_the_decay_sentence_ratio_legend_and_j_scale(lesson, no_color, monkeypatch):
    text, f = await _render("vanishing", None, lesson, one_pass, no_color, monkeypatch)
    sentence, ratio = f.decay_text.split(" (ratio")
    assert sentence in text                                     # "×0.838 per step back in time; 10⁻³ ... t = 61"
    assert "(ratio" + ratio in text                             # "(ratio ‖dL/dh_0‖/‖dL/dh_99‖ ≈ 10⁻⁸)"
    assert "vanishing guaranteed: σ_max = 0.9 < 1/γ = 1" in text
    assert ("shade = |h| ' ░▒▓█' ±1" if no_color else "blue − · + red ±1") in text
    assert "‖J_t‖" in text and "1.05" in text                    # the ‖J_t‖ ramp's edges
    status = next(ln for ln in text.splitlines() if "bptt 100/100" in ln)
    assert "BPTT DONE max" in status                           # the play speed (f ran at max), in the badge


@LESSON
async def test_training_copy_shows_the_chance_value_and_theta(lesson, monkeypatch):
    text, f = await _render("copy", "2", lesson, iterations(3), False, monkeypatch)
    assert f.baseline is not None
    assert f"╌ chance {f.baseline:.3g}" in text and f"{f.baseline:.3g}" == "0.116"
    assert "╌ clip θ 1" in text
    assert "loss per iteration (log)" in text and "‖grad‖ before clipping (log)" in text
    assert "events" in text


@LESSON
async def test_training_clip_norm_shows_chance_and_theta(lesson, monkeypatch):
    text, _ = await _render("clip-norm", "2", lesson, iterations(2), True, monkeypatch)
    assert "╌ chance 1" in text and "╌ clip θ 1" in text and "c = clipped (2×)" in text


@LESSON
async def test_memory_bottleneck_title_and_delay_16(lesson, monkeypatch):
    monkeypatch.setattr(jobs, "MEMORY_SIZES", (4, 8, 16))
    text, _ = await _render("bottleneck", "6", lesson, None, False, monkeypatch)
    assert "(Jaeger: MC ≤ H)" in text and "MC=H" in text
    k_axis = next(ln for ln in text.splitlines() if ln.startswith("    k └"))
    assert k_axis.rstrip().endswith("16")


@LESSON
async def test_parallel_legend_is_complete(lesson, monkeypatch):
    monkeypatch.setattr("rnnsim.diagnostics.parallel_timing", _fake_parallel_timing)
    text, _ = await _render("parallel", "5", lesson, None, False, monkeypatch)
    assert "r/R rnn fwd/bwd" in text and "a/A attention fwd/bwd" in text and "* both" in text
    t_axis = next(ln for ln in text.splitlines() if " T └" in ln)
    assert t_axis.rstrip().endswith("2048")


@LESSON
async def test_influence_recency_names_what_overlaps(lesson, monkeypatch):
    monkeypatch.setattr(jobs, "INFLUENCE_SAMPLES", 32)
    text, _ = await _render("recency", "7", lesson, None, False, monkeypatch)
    assert "in one cell:" in text or "no two curves share a cell" in text
    assert "last 10%" in text


@LESSON
async def test_compare_says_the_axis_is_shared(lesson, monkeypatch):
    text, _ = await _render("vanishing", "4", lesson, None, False, monkeypatch)
    assert "A and B share the axis" in text


async def test_y_locks_the_axes_and_the_titles_say_so(small):
    """y: the training plots keep the decades they had; a larger spike later does not rescale them; y again frees."""
    app = RnnsimApp(small.with_changes({"training.clip": "norm"}))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        iterations(2)(app.runner)
        await pilot.press("2")
        await pilot.press("y")
        await settle(app, pilot)
        text = screen_text(app)
        assert app.axis_lock.on and text.count("axis locked") == 2
        locked = dict(app.axis_lock.ranges)
        assert set(locked) == {"loss-plot", "grad-plot"}
        app.runner.send("change", {"model.recurrent_scale": 3.0})   # a bigger gradient from the next iteration
        iterations(3)(app.runner)
        await settle(app, pilot)
        assert app.axis_lock.ranges == locked
        assert f"axis locked 1e{locked['grad-plot'][0]}..1e{locked['grad-plot'][1]} (y)" in screen_text(app)
        await pilot.press("y")
        await settle(app, pilot)
        assert not app.axis_lock.on and "axis locked" not in screen_text(app)


async def test_dynamics_title_complete_when_locked_at_80x24(monkeypatch):
    """Locked (y) after a complete pass: the ratio and the lock note both on screen, lesson shown and hidden."""
    app = RnnsimApp(rnnsim.load_scenario("vanishing"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot, 120)
        one_pass(app.runner)
        await settle(app, pilot)
        await pilot.press("y")
        for _ in range(2):
            f = await settle(app, pilot)
            text = screen_text(app)
            lo, hi = app.axis_lock.ranges["gradient"]
            assert f"axis locked 1e{lo}..1e{hi} (y)" in text and "(ratio ‖dL/dh_0‖/‖dL/dh_99‖ ≈ 10⁻⁸)" in text
            await pilot.press("L")
