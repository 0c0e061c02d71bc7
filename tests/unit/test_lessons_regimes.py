"""The `regime-map` lesson (view 8): each claim its steps make, measured on the shipped scenario."""

from __future__ import annotations

import math

import pytest

from rnnsim import load_scenario
from rnnsim.sweep import around


@pytest.fixture(scope="module")
def maps():
    """{cell: {(scale, T): log10 grad_ratio}} of the runs view 8 makes for `regime-map` and its LSTM."""
    out = {}
    for cell in ("rnn", "lstm"):
        sc = load_scenario("regime-map").with_changes({"model.cell": cell})
        rows = around.rows_of(around.around(sc))
        out[cell] = {(r["model.recurrent_scale"], r["task.length"]):
                     math.inf if not r["finite"] else math.log10(r["grad_ratio"]) for r in rows}
    return out


def test_the_scenario_is_a_tanh_rnn_at_scale_1_and_t_50_with_orthogonal_weights():
    sc = load_scenario("regime-map")
    m = sc.model
    assert (m.cell, m.activation, m.init, m.recurrent_scale, sc.task.length) == ("rnn", "tanh", "orthogonal", 1.0, 50)
    steps = " ".join(sc.lesson.steps)
    assert "Press 8" in steps and "σ_max(W_hh) < 1/γ" in steps and "Press m" in steps


def test_its_own_point_just_vanishes(maps):
    assert round(maps["rnn"][(1.0, 50)], 1) == -2.2  # step 1: "-2.2: just vanishing"


def test_pascanu_bound_holds_below_scale_1(maps):
    """σ_max = scale < 1/γ = 1: ‖∂L/∂h_0‖ ≤ scale^(T−1)·‖∂L/∂h_T−1‖ per sample, so for the batch mean too."""
    for (s, T), v in maps["rnn"].items():
        if s < 1:
            assert v <= (T - 1) * math.log10(s) + 1e-9, (s, T, v)
    assert round(maps["rnn"][(0.5, 200)]) == -63
    assert round(maps["rnn"][(0.9, 100)], 1) == -7.6


def test_scale_1_and_1_1_still_vanish_and_only_1_5_explodes(maps):
    rnn = maps["rnn"]
    assert round(rnn[(1.0, 200)], 1) == -8.8
    assert all(rnn[(1.1, T)] < -2 for T in (100, 200)) and rnn[(1.1, 50)] >= -2
    exploding = {k for k, v in rnn.items() if v > 2}
    assert exploding == {(1.5, 100), (1.5, 200)}
    assert round(rnn[(1.5, 100)], 1) == 2.5 and round(rnn[(1.5, 200)], 1) == 3.9
    assert all(v <= 2 for (s, T), v in rnn.items() if T == 10)


def test_the_lstm_map_hardly_depends_on_the_scale_and_never_explodes(maps):
    spread = {c: max(m[(s, 100)] for s in around.SCALES) - min(m[(s, 100)] for s in around.SCALES)
              for c, m in maps.items()}
    assert round(spread["lstm"], 1) == 5.5 and round(spread["rnn"]) == 34
    assert all(v <= 2 for v in maps["lstm"].values())
    # its vanishing is set by T: along every scale column the ratio falls as T grows
    for s in around.SCALES:
        col = [maps["lstm"][(s, T)] for T in around.LENGTHS]
        assert col == sorted(col, reverse=True), s
