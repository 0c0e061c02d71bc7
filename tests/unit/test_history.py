"""Simulation.history is bounded and keeps every extreme and event (issue 15 item 6)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnnsim.history import HISTORY_CAP, Bin, History
from rnnsim.simulation import UpdateInfo


def _info(i, loss=1.0, g=1.0, clipped=False, finite=True):
    return UpdateInfo(i, loss, g, min(g, 5.0) if clipped else g, clipped, finite)


def test_cap_holds_and_the_newest_half_stays_exact():
    h = History(cap=64)
    for i in range(1, 10_001):
        h.append(_info(i, loss=1.0 / i, g=float(i % 7)))
        assert len(h) <= 64
    assert h.iterations == 10_000  # no iteration lost: every one is in an entry's count
    tail = h[-32:]
    assert [e.iteration for e in tail] == list(range(10_000 - 31, 10_001))
    assert all(isinstance(e, UpdateInfo) for e in tail)
    # entries cover consecutive iterations, the oldest bins the widest
    firsts = [getattr(e, "first", e.iteration) for e in h]
    lasts = [e.iteration for e in h]
    assert firsts[0] == 1 and all(a + 1 == b for a, b in zip(lasts, firsts[1:]))
    # the old part: bins of one width (a power of two), aligned on multiples of it; the last may be partial
    bins = [e for e in h if isinstance(e, Bin)]
    assert bins and all(b.count == h.width for b in bins[:-1]) and bins[-1].count <= h.width
    assert all((b.first - 1) % h.width == 0 for b in bins) and h.width & (h.width - 1) == 0
    assert h.compactions > 0


def test_extremes_and_events_survive_any_number_of_merges():
    h = History(cap=16)
    for i in range(1, 5001):
        g = 1.36e6 if i == 123 else 1.0 + (i % 3)            # one spike
        loss = 1e-4 if i == 456 else 2.0 + math.sin(i)      # one low loss
        h.append(_info(i, loss=loss, g=g, clipped=(i == 777)))
    h.append(_info(5001, loss=math.nan, g=math.inf, finite=False))
    for i in range(5002, 5202):  # push the events deep into the old bins
        h.append(_info(i))
    spike = [e for e in h if getattr(e, "first", e.iteration) <= 123 <= e.iteration][0]
    assert spike.grad_norm == 1.36e6
    low = [e for e in h if getattr(e, "first", e.iteration) <= 456 <= e.iteration][0]
    assert low.loss_min == 1e-4
    clip = [e for e in h if getattr(e, "first", e.iteration) <= 777 <= e.iteration][0]
    assert clip.clipped and clip.n_clipped == 1
    bad = [e for e in h if getattr(e, "first", e.iteration) <= 5001 <= e.iteration][0]
    assert not bad.finite and bad.n_nonfinite == 1 and bad.grad_norm == math.inf
    assert sum(getattr(e, "n_clipped", int(e.clipped)) for e in h) == 1


def test_merge_against_a_plain_reference():
    rng = np.random.default_rng(0)
    infos = [_info(i + 1, float(rng.lognormal()), float(rng.lognormal()), bool(rng.random() < 0.1))
             for i in range(37)]
    b = Bin.of(infos[0])
    for e in infos[1:]:
        b = b.merge(e)
    losses = [e.loss for e in infos]
    norms = [e.grad_norm for e in infos]
    assert (b.first, b.iteration, b.count) == (1, 37, 37)
    assert (b.loss, b.loss_min, b.loss_max) == (losses[-1], min(losses), max(losses))
    assert (b.grad_norm, b.grad_norm_min, b.grad_norm_last) == (max(norms), min(norms), norms[-1])
    assert b.n_clipped == sum(e.clipped for e in infos) and b.clipped == any(e.clipped for e in infos)


def test_unbounded_without_cap_and_cap_validated():
    h = History()
    h.extend(_info(i) for i in range(1, 3000))
    assert len(h) == 2999 and h.compactions == 0
    with pytest.raises(ValueError):
        History(cap=2)


def test_simulation_history_is_bounded():
    import rnnsim
    from rnnsim.simulation import Simulation

    sc = rnnsim.load_scenario("vanishing").with_changes(
        {"model.hidden_size": 2, "task.length": 2, "task.batch_size": 1, "task.kind": "random"})
    sim = Simulation(sc)
    sim.history.cap = 32  # the same code path as HISTORY_CAP, at a size a test runs in a blink
    out = sim.train(500)
    assert len(out) == 500  # train's return value holds what was asked for
    assert len(sim.history) <= 32 and sim.history.iterations == 500 == sim.iteration
    assert sim.history[-1] == out[-1]
    assert HISTORY_CAP >= 1024
