"""benchmarks/jax_sweep.py (bench_sweep's JAX column): its grad_ratio equals rnnsim's on a small grid, so the column
times the same quantity. An independent autodiff check of rnnsim's BPTT too. Skips without jax."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("jax")

from benchmarks import jax_sweep  # noqa: E402
from rnnsim.sweep import around  # noqa: E402
from rnnsim.sweep.spec import make_sweep  # noqa: E402
from rnnsim import load_scenario  # noqa: E402


@pytest.fixture(scope="module")
def grid_and_rows():
    base = load_scenario("vanishing").with_changes({"model.hidden_size": 6, "task.batch_size": 3,
                                                   "model.forget_bias": 1.0})
    sweep = make_sweep(base, {"model.recurrent_scale": [0.5, 1.0, 1.6], "task.length": [4, 12],
                              "model.cell": ["rnn", "lstm", "gru"]}, 0, (0, 1), source="test")
    rows = {i: around.run_point(sweep, i) for i in range(sweep.n_runs)}
    return sweep, rows


def test_jax_grad_ratio_equals_rnnsims(grid_and_rows):
    sweep, rows = grid_and_rows
    grid = jax_sweep.JaxGrid(sweep)
    assert len(grid.groups) == 6  # (cell, T) shapes; scales x seeds vmapped inside each
    assert grid.compile() > 0
    values = grid.run()
    assert sorted(values) == list(range(sweep.n_runs))
    compared = jax_sweep.check(values, rows)
    assert sum(n for n, _ in compared.values()) == sweep.n_runs
    for i, row in rows.items():
        assert math.isclose(values[i], row["grad_ratio"], rel_tol=1e-9), (sweep.run_at(i), values[i], row)


def test_check_refuses_a_different_number(grid_and_rows):
    sweep, rows = grid_and_rows
    values = {i: r["grad_ratio"] for i, r in rows.items()}
    jax_sweep.check(values, rows)
    i = next(i for i, r in rows.items() if r["regime"] != "exploding")
    values[i] *= 1 + 1e-6
    with pytest.raises(AssertionError, match=f"run {i} "):
        jax_sweep.check(values, rows)


def test_unsupported_scenarios_are_refused():
    base = load_scenario("adding")
    sweep = make_sweep(base, {"task.length": [10]}, 0, (0,), source="test")
    with pytest.raises(NotImplementedError):
        jax_sweep.prepare(sweep)
