"""Pilot tests of the issue-5 views (keys 3-7), the compare knob (x), lesson mode (j, k, L) and locked keys."""

from __future__ import annotations

import numpy as np
import pytest

import rnnsim
from rnnsim.tui import jobs
from rnnsim.tui.app import RnnsimApp
from rnnsim.tui.screens.compare import profile_lines
from rnnsim.tui.screens.modals import ParamScreen
from rnnsim.tui.widgets.common import GUTTER, column_ranges

from conftest import settle

SIZE = (100, 30)


@pytest.fixture(autouse=True)
def _quick_jobs(monkeypatch):
    # the real ranges take ~15 s (attention at T = 2048); the views are the same with fewer points
    monkeypatch.setattr(jobs, "PARALLEL_LENGTHS", (16, 32, 64))
    monkeypatch.setattr(jobs, "MEMORY_SIZES", (4, 8, 16))


def plot_columns(text: str) -> list[str]:
    """The data columns of a marker plot's text: the plot rows only (their gutter ends in ┤ or │; the title lines
    and the axis line dropped), the label gutter cut."""
    rows = [line[GUTTER:] for line in text.splitlines() if len(line) >= GUTTER and line[GUTTER - 1] in "┤│"]
    width = max(len(r) for r in rows)
    return ["".join(r.ljust(width)[c] for r in rows) for c in range(width)]


def assert_both_series_plotted(text: str, T: int, width: int, apart: int = 1) -> None:
    """Every data column of the profile plot holds exactly one A marker (o) and one B marker (x), or one * where
    both land in the same cell; nothing else is drawn there; in at least ``apart`` columns A and B are apart.
    (The title "log axis" holds an o and an x itself, so looking for the glyphs anywhere proves nothing.)"""
    ncols = len(column_ranges(T, width - GUTTER)[0])
    cols = plot_columns(text)
    marks = [col.replace(" ", "") for col in cols[:ncols]]
    for c, m in enumerate(marks):
        assert m == "*" or sorted(m) == ["o", "x"], f"column {c}: {cols[c]!r}"
    assert sum(m != "*" for m in marks) >= apart
    assert all(not col.strip() for col in cols[ncols:])


def test_profile_lines_put_each_series_in_its_decade():
    """A decays 10× per step back in time, B stays at 1: A's marker climbs one decade per step, B's stays put."""
    T = 4
    pa = 10.0 ** np.arange(-3, 1)     # 1e-3 .. 1 at t = 0 .. 3
    pb = np.ones(T)
    lines = [s.text for s in profile_lines(pa, pb, GUTTER + T, 2 + 8)]
    cols = plot_columns("\n".join(lines))
    assert len(cols) == T
    rows_a = [col.find("o") if "o" in col else col.find("*") for col in cols]
    rows_b = [col.find("x") if "x" in col else col.find("*") for col in cols]
    assert all(r >= 0 for r in rows_a + rows_b)
    assert rows_a == sorted(rows_a, reverse=True) and len(set(rows_a)) == T   # higher on screen as t grows
    assert len(set(rows_b)) == 1 and cols[-1].count("*") == 1                 # both at 1 at t = T − 1
    assert_both_series_plotted("\n".join(lines), T, GUTTER + T, apart=T - 1)


async def _open_job_view(app, pilot, key: str, view: str):
    await pilot.press(key)
    assert app.view == view and app.query_one("#views").current == view
    state = app.jobs[view].join(120)
    assert state.finished and state.error is None, state
    app.poll_frame()
    await pilot.pause()
    return state


async def test_spectrum_view_live(small):
    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        f = await settle(app, pilot)
        await pilot.press("3")
        assert app.view == "spectrum"
        W = app.runner.sim.params["weight_hh"]
        np.testing.assert_allclose(np.sort_complex(f.spectrum.eigenvalues), np.sort_complex(np.linalg.eigvals(W)))
        info = str(app.query_one("#spectrum-info").render())
        assert "vanishing guaranteed" in info and "σ_max" in info and "1/γ" in info
        plot = app.query_one("#spectrum-plot").text
        assert any(0x2800 < ord(ch) <= 0x28FF for ch in plot)  # braille dots
        v0 = f.spectrum_version
        await pilot.press("t")
        await pilot.pause(0.4)
        await pilot.press("t")
        f = await settle(app, pilot)
        assert f.spectrum_version > v0 and f.iteration > 0  # recomputed after updates (weights changed)
        np.testing.assert_allclose(
            np.sort_complex(f.spectrum.eigenvalues), np.sort_complex(np.linalg.eigvals(app.runner.sim.params["weight_hh"]))
        )
        v1 = f.spectrum_version
        await pilot.press("n")  # a forward step does not change the weights: no new eigenvalues
        f = await settle(app, pilot)
        assert f.spectrum_version == v1


async def test_spectrum_view_gated_and_attention(small):
    app = RnnsimApp(small.with_changes({"model.cell": "lstm"}))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("3")
        await settle(app, pilot)
        assert "candidate block g" in str(app.query_one("#spectrum-info").render())
    app = RnnsimApp(small.with_changes({"model.cell": "attention"}))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("3")
        await settle(app, pilot)
        assert "does not apply" in str(app.query_one("#spectrum-info").render())


async def test_compare_view_and_knob(small):
    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("n", "n")
        await settle(app, pilot)
        await pilot.press("4")
        f = await settle(app, pilot)
        assert app.view == "compare" and f.compare is not None
        assert (f.compare.knob, f.compare.value_a, f.compare.value_b) == ("model.cell", "rnn", "lstm")
        assert f.t == 0 and f.iteration == 0  # both restarted from the seed
        a, b = app.runner.sim, app.runner.sim_b
        np.testing.assert_array_equal(a.inputs, b.inputs)  # same seed, same data
        await pilot.press("t")
        await pilot.pause(0.4)
        await pilot.press("t")
        f = await settle(app, pilot)
        assert f.iteration > 0 and f.compare.iteration == f.iteration  # stepped together
        assert len(f.compare.losses) == len(f.losses)
        nums = str(app.query_one("#compare-numbers").render())
        assert "A rnn tanh" in nums and "B lstm" in nums and "last loss" in nums
        grad = app.query_one("#compare-grad")
        assert_both_series_plotted(grad.text, len(f.profile), grad.size.width, apart=3)   # rnn and lstm differ
        await pilot.press("x")  # first press after training: only the warning (restarting both loses the training)
        f = await settle(app, pilot)
        assert f.compare.knob == "model.cell" and f.iteration > 0
        assert "press x again" in str(app.query_one("#status").render())
        for knob, va, vb in [("training.clip", "none", "norm"), ("model.init", "orthogonal", "identity"),
                             ("model.layernorm", False, True), ("model.activation", "tanh", "relu"),
                             ("model.cell", "rnn", "lstm")]:
            await pilot.press("x")
            f = await settle(app, pilot)
            assert (f.compare.knob, f.compare.value_a, f.compare.value_b) == (knob, va, vb)
            assert f.iteration == 0 and f.compare.iteration == 0
        await pilot.press("n")
        f = await settle(app, pilot)
        assert f.t == 1 and app.runner.sim_b.t == 1
        await pilot.press("1")  # x does nothing outside the compare view
        await pilot.press("x")
        f = await settle(app, pilot)
        assert f.compare.knob == "model.cell"


async def test_compare_b_keeps_running_after_a_explodes():
    app = RnnsimApp(rnnsim.load_scenario("exploding"))  # blows up after the first update without clipping
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("4", "x")  # clip: none (A) vs norm (B)
        f = await settle(app, pilot)
        assert f.compare.knob == "training.clip"
        await pilot.press("t")
        await pilot.pause(1.0)
        await pilot.press("t")
        f = await settle(app, pilot)
        assert f.sentinel and f.compare.sentinel is None and f.compare.iteration > f.iteration


async def test_parallel_view(small):
    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        state = await _open_job_view(app, pilot, "5", "parallel")
        pts = {(p.cell, p.length): p for p in state.results}
        assert pts[("rnn", 64)].dependent_steps == 64 and pts[("attention", 64)].dependent_steps == 1
        table = str(app.query_one("#parallel-table").render())
        assert "64/1" in table and "63/1" in table
        assert "O(T²)" in str(app.query_one("#parallel-note").render())
        assert "2 cores" in str(app.query_one("#parallel-note").render())
        job = app.jobs["parallel"]
        await pilot.press("1", "5")  # opening again reuses the result
        assert app.jobs["parallel"] is job


async def test_memory_view(small):
    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        state = await _open_job_view(app, pilot, "6", "memory")
        own, *totals = state.results
        assert own.hidden_size == 8 and len(own.per_delay) == 16
        assert [m.hidden_size for m in totals] == [4, 8, 16]
        assert all(m.total <= m.hidden_size for m in totals)
        assert "MC = H" in app.query_one("#memory-total").text
        assert "docs/lessons.md" in str(app.query_one("#memory-note").render())


async def test_influence_view(small):
    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        state = await _open_job_view(app, pilot, "7", "influence")
        assert [r[0] for r in state.results] == ["rnn", "lstm", "attention"]
        shares = str(app.query_one("#influence-shares").render())
        for cell, infl, share in state.results:
            assert len(infl) == 20 and f"{cell} {share:.2f}" in shares
        assert "256" in shares


async def test_job_cancelled_when_scenario_changes(small, monkeypatch):
    monkeypatch.setattr(jobs, "PARALLEL_LENGTHS", (16, 32, 64, 128, 256, 512))
    app = RnnsimApp(small)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("5")
        first = app.jobs["parallel"]
        app.apply_changes({"model.hidden_size": 12})
        await settle(app, pilot)
        await pilot.press("1", "5")
        assert app.jobs["parallel"] is not first
        assert first.join(60).cancelled or first.state.finished
        app.jobs["parallel"].cancel()


async def test_lesson_keys_80x24(small):
    app = RnnsimApp(small)  # the vanishing lesson: 4 steps
    steps = small.lesson.steps
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        panel = app.query_one("#lesson-bottom")
        assert app.screen.has_class("lesson-bottom") and panel.region.height == 4
        assert "Lesson 1/4" in str(panel.render()) and app.lesson_step() == 0
        for _ in range(8):
            await pilot.press("j")
            if app.lesson_step() == 1:
                break
        assert app.lesson_step() == 1 and "Lesson 2/4" in str(panel.render())
        await pilot.press("k")
        assert app.lesson_step() == 0
        for _ in range(20):
            await pilot.press("j")
        assert app.lesson_step() == len(steps) - 1 and "last step" in str(panel.render())
        await pilot.press("L")
        assert not app.lesson_visible and not app.screen.has_class("lesson-bottom")
        await pilot.press("L")
        assert app.lesson_visible
        # the dynamics view still fits above it
        for wid in ("#heatmap", "#gradient", "#cursor-info", "#status", "#lesson-bottom"):
            w = app.query_one(wid)
            assert w.region.height >= 1 and w.region.bottom <= 24, wid


async def test_lesson_side_panel_wide(small):
    app = RnnsimApp(small)
    async with app.run_test(size=(130, 30)) as pilot:
        await settle(app, pilot)
        assert app.screen.has_class("lesson-side")
        side = str(app.query_one("#lesson-side").render())
        assert "Lesson 1/4" in side and small.lesson.steps[0].split()[-1] in side.replace("\n", " ")
        await pilot.press("j")
        assert app.lesson_step() == 1  # a whole step per page


async def test_no_lesson_no_panel(small):
    app = RnnsimApp(small.with_changes({"lesson.steps": []}))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert not app.screen.has_class("lesson-bottom")
        await pilot.press("j")
        assert app.lesson_pos == 0


async def test_locked_keys_refused(small):
    locked = small.with_changes({"scenario.locked": ["model.cell", "training.clip"]})
    app = RnnsimApp(locked)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("m")
        f = await settle(app, pilot)
        assert app.runner.sim.scenario.model.cell == "rnn" and f.pending is None
        status = str(app.query_one("#status").render())
        assert "model.cell is locked by this lesson" in status
        await pilot.press("c")
        await settle(app, pilot)
        assert app.runner.sim.scenario.training.clip == "none"
        await pilot.press("a")  # not locked
        await settle(app, pilot)
        assert app.runner.sim.scenario.model.activation == "relu"
        assert "locked" not in str(app.query_one("#status").render())
        assert "locked" in app.apply_changes({"model.cell": "gru"}, notify=False)
        await pilot.press("p")
        assert isinstance(app.screen, ParamScreen)
        assert app.screen.query_one("#knob-model-cell").disabled
        assert not app.screen.query_one("#knob-model-hidden_size").disabled


async def test_cosine_in_status(small):
    app = RnnsimApp(small.with_changes({"training.clip": "value", "training.clip_threshold": 0.01}))
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        app.runner.send("step", 41)
        f = await settle(app, pilot)
        assert f.cosine is not None and f.cosine < 1
        assert f"cos {f.cosine:.2f}" in str(app.query_one("#status").render())


def test_keys_bound_once():
    keys = []
    for b in RnnsimApp.BINDINGS:
        keys += [k.strip() for k in b.key.split(",")]
    dup = {k for k in keys if keys.count(k) > 1}
    assert not dup, dup


def _text_of(widget) -> str:
    """What a widget draws, as plain text lines."""
    from textual.geometry import Region

    return "\n".join(strip.text for strip in widget.render_lines(Region(0, 0, *widget.size)))


async def test_regimes_view_draws_the_sweep_map_with_this_scenario_marked(small, monkeypatch):
    import math

    from rnnsim.sweep import around
    from rnnsim.sweep.show import cell_text, rule_text

    monkeypatch.setenv("NO_COLOR", "1")  # the map must read without colour: letters and the * mark
    app = RnnsimApp(small)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        state = await _open_job_view(app, pilot, "8", "regimes")
        sweep = app.jobs["regimes"].info
        assert sweep.keys == around.KEYS and sweep.n_runs == 35 and sweep.iterations == 0
        assert small.model.recurrent_scale in sweep.values[0] and small.task.length in sweep.values[1]
        rows = list(state.results)
        assert [(r["model.recurrent_scale"], r["task.length"]) for r in rows] == [
            run.values for run in sweep.runs()]
        shown = _text_of(app.query_one("#regimes-map"))
        # the marked cell: this scenario's own run, its value as `rnnsim sweep --show` writes it, with a *
        own = next(r for r in rows if (r["model.recurrent_scale"], r["task.length"])
                   == (small.model.recurrent_scale, small.task.length))
        mark = "*" + cell_text(math.log10(own["grad_ratio"]))[0]
        assert shown.count("*") == 1 and mark in shown, shown
        marked_line = next(line for line in shown.splitlines() if "*" in line)
        assert marked_line.split()[0] == str(small.task.length)  # on the row of its own T
        assert all(len(line.rstrip()) <= 80 for line in shown.splitlines())
        assert "V" in shown and "S" in shown  # regimes by letter, not only by colour
        note = _text_of(app.query_one("#regimes-note")).replace("\n", " ")
        assert "* this scenario" in note and "1/γ" in " ".join(note.split())
        assert " ".join(rule_text().split())[:40] in " ".join(note.split())
        job = app.jobs["regimes"]
        await pilot.press("1", "8")  # opening again reuses the result
        assert app.jobs["regimes"] is job
        app.apply_changes({"model.recurrent_scale": 1.2})  # the map shown is now of the old scenario: it says so
        await settle(app, pilot)
        app.poll_frame(force=True)
        await pilot.pause()
        assert "press 8 again" in _text_of(app.query_one("#regimes-note"))
        assert mark in _text_of(app.query_one("#regimes-map"))  # still the old map, its own point marked
        await pilot.press("8")
        state = app.jobs["regimes"].join(120)
        assert app.jobs["regimes"] is not job and state.finished and state.error is None
        app.poll_frame(force=True)
        await pilot.pause()
        assert 1.2 in app.jobs["regimes"].info.values[0]
        assert "press 8 again" not in _text_of(app.query_one("#regimes-note"))
        marked_line = next(line for line in _text_of(app.query_one("#regimes-map")).splitlines() if "*" in line)
        assert marked_line.split()[0] == str(small.task.length)
