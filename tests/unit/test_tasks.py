"""Every task's inputs, targets and loss mask checked against the task's definition (DESIGN.md §3, issue 17), on
batches from rnnsim.tasks.make_batch over many lengths and seeds (hypothesis) and on a Simulation's own arrays.
Each checker recomputes the target from the inputs alone, so an off-by-one in a generator fails here."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnsim import Simulation, tasks
from rnnsim.scenario import task_dims
from tests.unit.conftest import small_scenario


def check_adding(task, x, y, mask):
    """Channel 0 ~ U(0, 1); channel 1 marks exactly two positions, one in [0, T//2) and one in [T//2, T); the target
    at the last step is the sum of the two marked values; only the last step enters the loss."""
    B, T, _ = x.shape
    assert x.shape[2] == 2 and y.shape == (B, T, 1)
    assert ((0 <= x[:, :, 0]) & (x[:, :, 0] < 1)).all()
    marks = x[:, :, 1]
    assert np.isin(marks, (0.0, 1.0)).all() and (marks.sum(axis=1) == 2).all()
    half = max(T // 2, 1)
    assert (marks[:, :half].sum(axis=1) == 1).all() and (marks[:, half:].sum(axis=1) == 1).all()
    for b in range(B):
        i, j = np.flatnonzero(marks[b])
        assert y[b, -1, 0] == x[b, i, 0] + x[b, j, 0]
    np.testing.assert_array_equal(y[:, -1, 0], (x[:, :, 0] * marks).sum(axis=1))
    assert (y[:, :-1] == 0).all()
    assert mask[:, -1].all() and not mask[:, :-1].any()


def check_copy(task, x, y, mask):
    """One-hot inputs: S data symbols in 1..K, blanks (0), the delimiter K + 1 at T − S − 1, blanks; targets blank
    until the last S steps, which recall the S symbols in order; every step enters the loss."""
    B, T, D = x.shape
    S, K = task.symbols, task.alphabet
    assert D == K + 2 and y.shape == (B, T) and y.dtype == np.int64
    assert (x.sum(axis=2) == 1).all() and np.isin(x, (0.0, 1.0)).all()
    codes = x.argmax(axis=2)
    assert ((1 <= codes[:, :S]) & (codes[:, :S] <= K)).all()
    assert (codes[:, T - S - 1] == K + 1).all()
    rest = np.delete(codes, list(range(S)) + [T - S - 1], axis=1)
    assert (rest == 0).all()
    np.testing.assert_array_equal(y[:, T - S:], codes[:, :S])
    assert (y[:, :T - S] == 0).all() and ((0 <= y) & (y <= K)).all()
    assert mask.all()


def check_delayed_recall(task, x, y, mask):
    """u_t ~ U(−0.5, 0.5); y_t = u_{t−k} for t ≥ k; the first k steps are outside the loss."""
    B, T, _ = x.shape
    k = task.delay
    assert x.shape[2] == 1 and y.shape == (B, T, 1)
    assert ((-0.5 <= x) & (x < 0.5)).all()
    for t in range(k, T):
        np.testing.assert_array_equal(y[:, t, 0], x[:, t - k, 0])
    assert not mask[:, :k].any() and mask[:, k:].all()


def check_sine(task, x, y, mask):
    """x_t = sin(2πt/P + φ) with one φ per sequence, target x_{t+1} at every step: the samples satisfy the sine
    recurrence s_{t+1} = 2 cos(2π/P) s_t − s_{t−1} and have amplitude 1; y_t = x_{t+1}."""
    B, T, _ = x.shape
    assert y.shape == (B, T, 1) and mask.all()
    np.testing.assert_array_equal(y[:, :-1, 0], x[:, 1:, 0])
    s = np.concatenate([x[:, :, 0], y[:, -1:, 0]], axis=1)   # s_0 .. s_T
    w = 2 * math.pi / task.period
    np.testing.assert_allclose(s[:, 2:], 2 * math.cos(w) * s[:, 1:-1] - s[:, :-2], atol=1e-12)
    # the phase from s_0 = sin φ and s_1 = sin(w + φ): then every sample is sin(w t + φ)
    phi = np.arctan2(s[:, 0] * math.sin(w), s[:, 1] - s[:, 0] * math.cos(w))
    t = np.arange(T + 1)
    np.testing.assert_allclose(s, np.sin(w * t[None, :] + phi[:, None]), atol=1e-12)


def check_random(task, x, y, mask):
    B, T, D = x.shape
    assert D == task.input_size and y.shape == (B, T, 1)
    assert (y[:, :-1] == 0).all() and mask[:, -1].all() and not mask[:, :-1].any()
    assert np.isfinite(x).all() and np.unique(x).size == x.size   # continuous draws


CHECKERS = {"adding": check_adding, "copy": check_copy, "delayed_recall": check_delayed_recall,
            "sine": check_sine, "random": check_random}


def test_every_generator_has_a_checker():
    assert set(tasks.GENERATORS) <= set(CHECKERS), "a new task needs a checker against its definition here"


def _task(kind, length, **extra):
    return small_scenario(**{"task.kind": kind, "task.length": length, **extra}).task


@settings(max_examples=40, deadline=None)
@given(T=st.integers(2, 60), B=st.integers(1, 9), seed=st.integers(0, 2**31 - 1))
def test_adding_targets(T, B, seed):
    task = _task("adding", T)
    check_adding(task, *tasks.make_batch(task, np.random.default_rng(seed), batch_size=B))


@settings(max_examples=40, deadline=None)
@given(S=st.integers(1, 6), K=st.integers(2, 9), lag=st.integers(1, 20), seed=st.integers(0, 2**31 - 1))
def test_copy_targets(S, K, lag, seed):
    task = _task("copy", 2 * S + lag, **{"task.symbols": S, "task.alphabet": K})
    check_copy(task, *tasks.make_batch(task, np.random.default_rng(seed), batch_size=5))


@settings(max_examples=40, deadline=None)
@given(T=st.integers(2, 40), data=st.data(), seed=st.integers(0, 2**31 - 1))
def test_delayed_recall_targets(T, data, seed):
    task = _task("delayed_recall", T, **{"task.delay": data.draw(st.integers(0, T - 1))})
    check_delayed_recall(task, *tasks.make_batch(task, np.random.default_rng(seed), batch_size=4))


@settings(max_examples=40, deadline=None)
@given(T=st.integers(2, 50), P=st.floats(2.5, 200.0), seed=st.integers(0, 2**31 - 1))
def test_sine_targets(T, P, seed):
    task = _task("sine", T, **{"task.period": P})
    check_sine(task, *tasks.make_batch(task, np.random.default_rng(seed), batch_size=4))


def test_random_targets():
    task = _task("random", 12, **{"task.input_size": 3})
    check_random(task, *tasks.make_batch(task, np.random.default_rng(0), batch_size=4))


def test_adding_target_is_not_a_neighbour_of_a_marked_value():
    """Pin the definition with a hand-made case: the generator's own draws, re-read by position."""
    task = _task("adding", 10)
    x, y, _ = tasks.make_batch(task, np.random.default_rng(3), batch_size=200)
    i = x[:, :, 1].argmax(axis=1)
    j = x.shape[1] - 1 - x[:, ::-1, 1].argmax(axis=1)
    rows = np.arange(200)
    np.testing.assert_array_equal(y[:, -1, 0], x[rows, i, 0] + x[rows, j, 0])
    for di, dj in ((0, -1), (-1, 0), (1, 0), (0, 1)):
        ii, jj = np.clip(i + di, 0, 9), np.clip(j + dj, 0, 9)
        assert not np.allclose(y[:, -1, 0], x[rows, ii, 0] + x[rows, jj, 0])


@pytest.mark.parametrize("kind, extra", [("adding", {}), ("copy", {"task.symbols": 2, "task.alphabet": 3}),
                                         ("delayed_recall", {"task.delay": 2}), ("sine", {"task.period": 4.0}),
                                         ("random", {"task.input_size": 2})])
def test_simulation_arrays_obey_the_definition(kind, extra):
    """The Simulation's own inputs/targets/loss_mask (batch-major, DESIGN.md §2), first batch and a fresh one."""
    sc = small_scenario(**{"task.kind": kind, "task.length": 9, **extra})
    sim = Simulation(sc)
    D, O, classification = task_dims(sc.task)
    assert sim.inputs.shape == (sim.B, sim.T, D)
    for _ in range(2):
        CHECKERS[kind](sc.task, sim.inputs, sim.targets, sim.loss_mask)
        sim.train(1)
        sim.forward()


@pytest.mark.parametrize("kind, extra, expected", [
    ("adding", {}, 1 / 6), ("delayed_recall", {"task.delay": 2}, 1 / 12), ("sine", {}, 0.5), ("random", {}, 1.0),
])
def test_regression_baselines_are_the_input_blind_mse(kind, extra, expected):
    """The best constant answer's MSE, measured on a large batch, equals tasks.baseline (to sampling error)."""
    task = _task(kind, 40, **extra)
    x, y, mask = tasks.make_batch(task, np.random.default_rng(0), batch_size=4000)
    vals = y[mask]
    best_constant = {"adding": 1.0}.get(kind, 0.0)
    assert tasks.baseline(task) == pytest.approx(expected)
    assert np.mean((vals - best_constant) ** 2) == pytest.approx(expected, rel=0.05)


def test_copy_baseline_is_the_memoryless_cross_entropy():
    """Blank with certainty outside the recall phase (CE 0), uniform over K in it (CE log K): S log K / T."""
    task = _task("copy", 30, **{"task.symbols": 4, "task.alphabet": 5})
    x, y, mask = tasks.make_batch(task, np.random.default_rng(0), batch_size=16)
    probs = np.zeros((16, 30, 6))
    probs[:, :, 0] = 1.0
    probs[:, 26:, 0] = 0.0
    probs[:, 26:, 1:] = 1 / 5
    ce = -np.log(np.take_along_axis(probs, y[:, :, None], axis=2)[mask])
    assert ce.mean() == pytest.approx(tasks.baseline(task), rel=1e-12)


def test_draws_are_independent_per_sequence():
    """Each sequence draws its own marker positions, symbols and phase (a scalar draw broadcast over the batch, or
    a symbol range that misses one symbol, passes the per-sequence checks above)."""
    rng = np.random.default_rng(0)
    add = _task("adding", 20)
    x, _, _ = tasks.make_batch(add, rng, batch_size=400)
    first = x[:, :10, 1].argmax(axis=1)
    second = 10 + x[:, 10:, 1].argmax(axis=1)
    assert set(first) == set(range(10)) and set(second) == set(range(10, 20))
    cp = _task("copy", 12, **{"task.symbols": 3, "task.alphabet": 4})
    x, _, _ = tasks.make_batch(cp, rng, batch_size=400)
    codes = x.argmax(axis=2)[:, :3]
    assert all(set(codes[:, s]) == {1, 2, 3, 4} for s in range(3))
    assert len({tuple(r) for r in codes}) > 50
    sine = _task("sine", 8, **{"task.period": 8.0})
    x, _, _ = tasks.make_batch(sine, rng, batch_size=400)
    phi = np.mod(np.arctan2(x[:, 0, 0], x[:, 2, 0]), 2 * math.pi)   # sin φ and sin(φ + π/2) = cos φ
    counts, _ = np.histogram(phi, bins=8, range=(0, 2 * math.pi))
    assert (counts > 20).all(), counts                               # φ ~ U(0, 2π)


@pytest.mark.parametrize("kind", sorted(CHECKERS))
def test_make_batch_dtype(kind):
    task = _task(kind, 9, **{"task.symbols": 2, "task.delay": 2})
    x, y, mask = tasks.make_batch(task, np.random.default_rng(0), dtype=np.float32, batch_size=3)
    assert x.dtype == np.float32 and mask.dtype == bool
    assert y.dtype == (np.int64 if kind == "copy" else np.float32)
