"""The single-call small pass (rnnsim/kernels/small_pass.py, ``plan.small_pass``; and one Numba call each for the
input projection and the weight gradients) against the NumPy path it replaces: the same loss, arrays, gradients and
sentinel; and the sentinel's check kernels (rnnsim/kernels/checks.py) that both paths use."""

import numpy as np
import pytest

from rnnsim import Simulation
from rnnsim.kernels import checks
from rnnsim.kernels import config as tunables
from tests.unit.conftest import small_scenario

TASKS = {
    "sine": {},
    "copy": {"task.kind": "copy", "task.length": 9, "task.symbols": 2, "task.alphabet": 3},
    "delayed_recall": {"task.kind": "delayed_recall", "task.delay": 2},   # the mask leaves out the first steps
}


def _pass(sim, stepwise):
    if stepwise:
        while sim.step_forward():
            pass
        while sim.step_backward():
            pass
    else:
        sim.forward()
        sim.backward()


def _snapshot(sim):
    return {"loss": sim.loss, "sentinel": sim.sentinel, "hidden": sim.hidden.copy(), "outputs": sim.outputs.copy(),
            "dout": sim._dout.copy(), "grad_hidden": sim.grad_hidden.copy(), "grad_inputs": sim.grad_inputs.copy(),
            **{f"grads[{k}]": v.copy() for k, v in sim.grads.items()}}


def run_pass(sim, stepwise=False, between=lambda sim: None):
    """A forward pass (whole, or step by step), ``between(sim)``, then BPTT unless the forward tripped the
    sentinel."""
    if stepwise:
        while sim.step_forward():
            pass
    else:
        sim.forward()
    between(sim)
    if sim.sentinel is None or sim.sentinel.phase != "forward":
        if stepwise:
            while sim.step_backward():
                pass
        else:
            sim.backward()


def both_paths(monkeypatch, sc, prepare=lambda sim: None, stepwise=False, between=lambda sim: None):
    """Run a pass on the small pass, then on the NumPy path (every product through ``gemm``'s NumPy branch);
    ``prepare`` edits the simulation before the pass, ``between`` after the forward pass. Two snapshots."""
    out = []
    for fused in (True, False):
        if not fused:
            monkeypatch.setattr(tunables, "MT_GEMM_FLOPS", 0.0)
        sim = Simulation(sc)
        assert sim.workspace.small_pass is fused
        prepare(sim)
        run_pass(sim, stepwise, between)
        out.append(_snapshot(sim))
    return out


@pytest.mark.parametrize("task", ["sine", "copy"])
def test_small_pass_loss_follows_an_edited_loss_mask(task, monkeypatch):
    """loss_mask is a writable view: a mask edited between batches must change the small pass's loss as it
    changes the NumPy path's (the count of masked positions is taken per pass, not cached per batch)."""
    def keep_last_two(sim):
        sim.loss_mask[:] = False
        sim.loss_mask[:, -2:] = True

    fused, numpy_path = both_paths(monkeypatch, small_scenario(**TASKS[task]), prepare=keep_last_two)
    for key in ("loss", "dout", "grad_hidden"):
        np.testing.assert_allclose(fused[key], numpy_path[key], rtol=1e-12, atol=1e-15, err_msg=key)
    monkeypatch.undo()  # both_paths left the NumPy path switched on
    unmasked = both_paths(monkeypatch, small_scenario(**TASKS[task]))[0]
    assert fused["loss"] != unmasked["loss"]


def test_small_pass_path_is_taken_only_where_it_applies(monkeypatch):
    assert Simulation(small_scenario()).workspace.small_pass
    assert not Simulation(small_scenario(**{"model.readout": "attention"})).workspace.small_pass
    assert not Simulation(small_scenario(**{"model.cell": "attention", "model.readout": "linear"})).workspace.small_pass
    monkeypatch.setattr(tunables, "CACHE_LIMIT", 0)          # chunked mode
    assert not Simulation(small_scenario()).workspace.small_pass


@pytest.mark.parametrize("stepwise", [False, True], ids=["whole", "step-api"])
@pytest.mark.parametrize("task", sorted(TASKS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_small_pass_pass_equals_numpy_path(config, task, dtype, stepwise, monkeypatch):
    _, changes = config
    sc = small_scenario(**changes, **{"model.dtype": dtype}).with_changes(TASKS[task])
    fused, ref = both_paths(monkeypatch, sc, stepwise=stepwise)
    tol = {"rtol": 1e-12, "atol": 1e-14} if dtype == "float64" else {"rtol": 2e-5, "atol": 1e-6}
    assert fused["sentinel"] is None and ref["sentinel"] is None
    assert fused["loss"] == pytest.approx(ref["loss"], rel=tol["rtol"])
    for k in ref:
        if k not in ("loss", "sentinel"):
            np.testing.assert_allclose(fused[k], ref[k], **tol, err_msg=k)


def _set(name, index, value):
    def edit(sim):
        arr = {"X": sim._X, "Y": sim._Y, "dout": sim._dout}.get(name)
        (arr if arr is not None else sim.params[name])[index] = value
    return edit


#: (task, prepare before the pass, edit between forward and backward, the sentinel expected on both paths)
SENTINEL_CASES = {
    "nan-input-at-t3": ("sine", _set("X", (3, 1, 0), np.nan), None, ("forward", 3, "hidden")),
    "inf-readout-weight": ("sine", _set("readout.weight", (0, 0), np.inf), None, ("forward", 0, "outputs")),
    "nan-target": ("sine", _set("Y", (4, 0, 0), np.nan), None, ("forward", 4, "loss")),  # the planted target's step
    "inf-target-masked-out": ("delayed_recall", _set("Y", (0, 2, 0), np.inf), None, ("forward", 0, "loss")),
    "inf-logit-weight": ("copy", _set("readout.weight", (1, 0), np.inf), None, ("forward", 0, "outputs")),
    "nan-dout-at-t5": ("sine", None, _set("dout", (5, 0, 0), np.nan), ("backward", 5, "grad_hidden")),
    "inf-weight-ih": ("sine", None, _set("weight_ih", (0, 0), np.inf), ("backward", 6, "grad_inputs")),
    "inf-input-after-forward": ("sine", None, _set("X", (2, 0, 0), np.inf), ("backward", None, "grads[weight_ih]")),
}


@pytest.mark.parametrize("stepwise", [False, True], ids=["whole", "step-api"])
@pytest.mark.parametrize("case", sorted(SENTINEL_CASES))
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_small_pass_sentinel_equals_numpy_path(case, cell, stepwise, monkeypatch):
    task, prepare, between, expected = SENTINEL_CASES[case]
    sc = small_scenario(**{"model.cell": cell}).with_changes(TASKS[task])
    fused, ref = both_paths(monkeypatch, sc, prepare or (lambda sim: None), stepwise, between or (lambda sim: None))
    s, r = fused["sentinel"], ref["sentinel"]
    assert r is not None and s is not None
    assert (s.iteration, s.phase, s.t, s.array) == (r.iteration, r.phase, r.t, r.array)
    assert (s.phase, s.t, s.array) == expected


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_first_nonfinite_step_matches_numpy(dtype):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((20, 3, 7)).astype(dtype)
    assert checks.first_nonfinite_step(a, 0, 20, False) == -1
    a[4, 2, 6] = np.inf
    a[11, 0, 0] = np.nan
    a[15, 1, 3] = -np.inf
    for t0, t1, reverse, want in [(0, 20, False, 4), (0, 20, True, 15), (5, 15, False, 11), (5, 15, True, 11),
                                  (12, 15, False, -1), (4, 5, True, 4), (16, 20, True, -1)]:
        assert checks.first_nonfinite_step(a, t0, t1, reverse) == want, (t0, t1, reverse)


def test_backward_checks_order():
    """grad_hidden (steps of this call, last first), then grad_inputs (the last bad step), then grads in order."""
    z = lambda *s: np.zeros(s)  # noqa: E731
    dh, dx, grads = z(6, 2, 3), z(6, 2, 4), (z(5), z(3), z(2))
    assert checks.backward_checks(dh, 0, 5, dx, grads) == (checks.OK, -1)
    grads[2][1] = np.nan
    grads[1][0] = np.inf
    assert checks.backward_checks(dh, 0, 5, dx, grads) == (checks.GRADS, 1)
    dx[1, 0, 0] = dx[3, 1, 2] = np.nan
    assert checks.backward_checks(dh, 0, 5, dx, grads) == (checks.GRAD_INPUTS, 3)
    dh[2, 0, 0] = dh[4, 1, 1] = np.inf
    assert checks.backward_checks(dh, 0, 5, dx, grads) == (checks.GRAD_HIDDEN, 4)
    assert checks.backward_checks(dh, 0, 3, dx, grads) == (checks.GRAD_HIDDEN, 2)
    assert checks.backward_checks(dh, 0, 1, dx, grads) == (checks.GRAD_INPUTS, 3)


def test_forward_checks_order():
    """hidden, then cell_state (if checked), then outputs, each at its first bad step."""
    h, c, out = np.zeros((6, 2, 3)), np.zeros((6, 2, 3)), np.zeros((6, 2, 1))
    assert checks.forward_checks(0, 6, h, c, True, out) == (checks.OK, -1)
    out[1, 0, 0] = np.nan
    c[3, 1, 2] = np.inf
    assert checks.forward_checks(0, 6, h, c, True, out) == (checks.CELL_STATE, 3)
    assert checks.forward_checks(0, 6, h, c, False, out) == (checks.OUTPUTS, 1)
    h[5, 0, 0] = np.nan
    assert checks.forward_checks(0, 6, h, c, True, out) == (checks.HIDDEN, 5)
    assert checks.forward_checks(2, 5, h, c, True, out) == (checks.CELL_STATE, 3)
