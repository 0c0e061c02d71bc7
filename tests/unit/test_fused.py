"""The fused small pass (rnnsim/kernels/fused.py: a whole forward or backward, or one step of the step API, as one
Numba call) against the unfused small pass it replaces (the cells' drivers, the Readout's kernels): bit for bit the
same loss, arrays, gradients and sentinel, for every cell configuration, task and dtype, whole passes, the step API
and passes mixing both; and where the plan takes it."""

import numpy as np
import pytest

from rnnsim import Simulation
from rnnsim.kernels import config as tunables
from rnnsim.kernels.fused import FusedPass
from tests.unit.conftest import small_scenario
from tests.unit.test_small_pass import SENTINEL_CASES, TASKS, _snapshot, run_pass


def _pair(sc, prepare=lambda sim: None):
    fused, plain = Simulation(sc), Simulation(sc)
    assert fused._fused is not None
    plain._fused = None                    # the drivers' path, as before the fused kernels
    for sim in (fused, plain):
        prepare(sim)
    return fused, plain


def _assert_same(a, b):
    assert a.keys() == b.keys()
    assert (a["loss"] == b["loss"]) or (np.isnan(a["loss"]) and np.isnan(b["loss"]))
    assert str(a["sentinel"]) == str(b["sentinel"])
    for k in a:
        if k not in ("loss", "sentinel"):
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def _run(sim, how):
    """One pass: whole, step API, or mixed (a few steps, then the rest whole, both ways)."""
    if how == "whole":
        sim.forward()
        sim.backward()
    elif how == "steps":
        while sim.step_forward():
            pass
        while sim.step_backward():
            pass
    else:
        for _ in range(3):
            sim.step_forward()
        sim.forward()
        for _ in range(2):
            sim.step_backward()
        sim.backward()


@pytest.mark.parametrize("how", ["whole", "steps", "mixed"])
@pytest.mark.parametrize("task", sorted(TASKS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fused_equals_unfused_bit_for_bit(config, task, dtype, how):
    _, changes = config
    sc = small_scenario(**changes, **{"model.dtype": dtype}).with_changes(TASKS[task])
    if sc.model.cell == "attention" or sc.model.readout != "linear":
        pytest.skip("no fused pass for this configuration")
    fused, plain = _pair(sc)
    for _ in range(2):                                   # two iterations: the update in between is in place
        for sim in (fused, plain):
            _run(sim, how)
        _assert_same(_snapshot(fused), _snapshot(plain))
        for sim in (fused, plain):
            sim.apply_update()


@pytest.mark.parametrize("stepwise", [False, True], ids=["whole", "step-api"])
@pytest.mark.parametrize("case", sorted(SENTINEL_CASES))
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_fused_sentinel_equals_unfused(case, cell, stepwise):
    task, prepare, between, _ = SENTINEL_CASES[case]
    sc = small_scenario(**{"model.cell": cell}).with_changes(TASKS[task])
    sims = _pair(sc, prepare or (lambda sim: None))
    for sim in sims:
        run_pass(sim, stepwise, between or (lambda s: None))
    a, b = (_snapshot(s) for s in sims)
    assert a["sentinel"] is not None
    _assert_same(a, b)


def test_fused_pass_is_taken_only_where_the_small_pass_runs_in_cached_mode(monkeypatch):
    assert Simulation(small_scenario()).workspace.small_pass
    for cell in ("rnn", "lstm", "gru"):
        assert Simulation(small_scenario(**{"model.cell": cell}))._fused is not None
    assert Simulation(small_scenario(**{"model.readout": "attention"}))._fused is None
    assert Simulation(small_scenario(**{"model.cell": "attention", "model.readout": "linear"}))._fused is None
    monkeypatch.setattr(tunables, "CACHE_LIMIT", 0)          # chunked mode
    assert Simulation(small_scenario())._fused is None
    monkeypatch.undo()
    monkeypatch.setattr(tunables, "STEP_GEMM_FLOPS", 0.0)    # per-step BLAS
    assert FusedPass.make(Simulation(small_scenario())) is None


def _kernel_calls(sim):
    """Record the fused kernels' calls of ``sim``: ("f", t0, t1) and ("b", t_hi, t_lo)."""
    calls = []
    fp = sim._fused
    forward, backward = fp.forward, fp.backward
    fp.forward = lambda t0, t1, *rest: calls.append(("f", t0, t1)) or forward(t0, t1, *rest)
    fp.backward = lambda t_hi, t_lo, *rest: calls.append(("b", t_hi, t_lo)) or backward(t_hi, t_lo, *rest)
    return calls


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_whole_pass_fast_path_equals_the_general_path_in_every_phase(cell):
    """forward() and backward() from the start of a pass take one kernel call each, without _begin_forward /
    _begin_backward and the loop over _forward_to / _backward_to, and leave the same state as that general path,
    from every phase they start from: idle, forward_done (forward again: a new pass), backward_done (backward
    again), backward (a new forward pass), and in the middle of a stepped pass (the general path)."""
    sc = small_scenario(**{"model.cell": cell})
    fast, slow = Simulation(sc), Simulation(sc)
    T = fast.T
    calls = _kernel_calls(fast)
    slow.forward = lambda: _general_forward(slow)
    slow.backward = lambda: _general_backward(slow)

    def same(expected):
        assert (fast.phase, fast.t, fast.bt, fast.layer) == (slow.phase, slow.t, slow.bt, slow.layer)
        _assert_same(_snapshot(fast), _snapshot(slow))
        assert calls == expected
        calls.clear()

    for sim in (fast, slow):
        sim.forward()
    same([("f", 0, T)])
    for sim in (fast, slow):
        sim.forward()                                        # from forward_done: a new pass
        sim.backward()
        sim.backward()                                       # from backward_done: BPTT again
    same([("f", 0, T), ("b", T - 1, 0), ("b", T - 1, 0)])
    for sim in (fast, slow):
        sim.apply_update()
        sim.step_forward()
        sim.forward()                                        # finishes the stepped pass: the general path
        sim.step_backward()
        sim.backward()
    same([("f", 0, 1), ("f", 1, T), ("b", T - 1, T - 1), ("b", T - 2, 0)])
    for sim in (fast, slow):                                 # from backward (mid-BPTT): a new forward pass
        sim.apply_update()
        sim.forward()
        sim.step_backward()
        sim.forward()
    same([("f", 0, T), ("b", T - 1, T - 1), ("f", 0, T)])


def _general_forward(sim):
    """Simulation.forward without the fused fast path (as it was before it)."""
    if sim.phase != "forward":
        sim._begin_forward()
    while sim.phase == "forward":
        sim._forward_to(sim.T)
    return sim.loss


def _general_backward(sim):
    """Simulation.backward without the fused fast path (as it was before it)."""
    sim._require_forward()
    if sim.phase != "backward":
        sim._begin_backward()
    while sim.phase == "backward":
        sim._backward_to(sim.T)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_boxed_arguments_and_their_fallback_give_the_same_pass(cell, monkeypatch):
    """The kernels called with the arguments boxed once (rnnsim/kernels/fused_args.py) and, where boxing fails,
    with the arrays one by one: bit for bit the pass of the unfused path, sentinel included (a NaN weight)."""
    from rnnsim.kernels import fused_args

    sc = small_scenario(**{"model.cell": cell})
    boxed, plain = _pair(sc)
    for sim in (boxed, plain):
        _run(sim, "steps")
    monkeypatch.setattr(fused_args, "make", lambda fw, bw: 1 / 0)    # boxing fails from here on
    unboxed = Simulation(sc)
    _run(unboxed, "steps")
    sims = (boxed, plain, unboxed)
    assert isinstance(boxed._fused._args, fused_args.PassArgs) and unboxed._fused._args is False
    for sim in sims:
        sim.apply_update()
        _run(sim, "whole")
    _assert_same(_snapshot(boxed), _snapshot(plain))
    _assert_same(_snapshot(unboxed), _snapshot(plain))
    for sim in sims:
        sim.apply_update()
        sim.params["weight_hh"][0, 0] = np.nan
        _run(sim, "whole")
    assert boxed.sentinel is not None
    _assert_same(_snapshot(boxed), _snapshot(plain))
    _assert_same(_snapshot(unboxed), _snapshot(plain))
