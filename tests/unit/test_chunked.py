"""Chunked mode (large sizes: per-chunk input projection, gates recomputed in BPTT, weight gradients accumulated per
chunk; see CACHE_LIMIT in rnnsim/kernels/config.py), forced at tiny sizes, against the NumPy reference, finite
differences, the cached mode and the diagnostics that read the workspace."""

import numpy as np
import pytest

from rnnsim import Simulation, diagnostics
from rnnsim.kernels import config as tunables
from tests.unit import test_cells as tc
from tests.unit.conftest import small_scenario


@pytest.fixture(params=[1, 3, 64], ids=["K1", "K3", "K64"])
def chunked(request, monkeypatch):
    """Every Simulation built inside the test runs chunked, with K steps per chunk (T = 7: 3 does not divide it)."""
    monkeypatch.setattr(tunables, "CACHE_LIMIT", -1)
    monkeypatch.setattr(tunables, "CHUNK_STEPS", request.param)
    return request.param


def test_threshold_picks_the_mode(config, monkeypatch):
    _, changes = config
    assert Simulation(small_scenario(**changes)).workspace.K == 0
    monkeypatch.setattr(tunables, "CACHE_LIMIT", -1)
    monkeypatch.setattr(tunables, "CHUNK_STEPS", 3)
    assert Simulation(small_scenario(**changes)).workspace.K == 3


def test_chunked_matches_numpy_reference(config, chunked):
    assert Simulation(small_scenario(**config[1])).workspace.K == min(chunked, 7)
    tc.test_kernels_match_numpy_reference(config)


def test_chunked_both_gemm_paths_and_float32(config, chunked, monkeypatch):
    for threshold in (0.0, float("inf")):
        tc.test_both_gemm_paths_match_reference(config, threshold, monkeypatch)


@pytest.mark.parametrize("task", ["sine", "copy"])
def test_chunked_gradients_match_finite_differences(config, chunked, task):
    tc.test_gradients_match_finite_differences(config, task)


def test_chunked_grad_hidden_matches_finite_differences(config, chunked):
    tc.test_grad_hidden_matches_finite_differences(config)


def test_chunked_step_by_step_equals_whole_pass(config, chunked):
    tc.test_step_by_step_equals_whole_pass(config)


def test_chunked_float32_close_to_float64(config, chunked):
    tc.test_float32_close_to_float64(config)


def test_chunked_equals_cached_mode_and_diagnostics_agree(config, monkeypatch):
    """Same arrays, gradients, gate means and step Jacobians in both modes; stepping interleaved with diagnostics."""
    _, changes = config
    sc = small_scenario(**changes)
    a = Simulation(sc)
    a.forward()
    a.backward()
    monkeypatch.setattr(tunables, "CACHE_LIMIT", -1)
    monkeypatch.setattr(tunables, "CHUNK_STEPS", 3)
    b = Simulation(sc)
    assert b.workspace.nbytes() < a.workspace.nbytes() or a.cell_name == "rnn"
    while b.step_forward():
        # gate means and Jacobians of the steps done so far, mid-pass
        for name, v in diagnostics.gate_means(b).items():
            np.testing.assert_allclose(v[:b.t], diagnostics.gate_means(a)[name][:b.t], rtol=1e-13, err_msg=name)
        t = b.t - 1
        np.testing.assert_allclose(diagnostics.step_jacobians(b, t, slice(0, 2)),
                                   diagnostics.step_jacobians(a, t, slice(0, 2)), rtol=1e-12, atol=1e-14)
    while b.step_backward():
        pass
    for name in ("hidden", "outputs", "grad_hidden", "grad_inputs"):
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-13, atol=1e-15, err_msg=name)
    for k in a.grads:
        np.testing.assert_allclose(b.grads[k], a.grads[k], rtol=1e-12, atol=1e-15, err_msg=k)
    if a.cell_name != "rnn":
        ga, gb = a.workspace.gates, b.workspace.gates
        np.testing.assert_allclose(gb[4, 1], ga[4, 1], rtol=1e-13)
        np.testing.assert_allclose(gb[-1], ga[-1], rtol=1e-13)
        with pytest.raises(IndexError):
            gb[b.T]
    # a second pass after an update re-projects with the new weights
    for s in (a, b):
        s.apply_update()
        s.forward()
        s.backward()
    np.testing.assert_allclose(b.hidden, a.hidden, rtol=1e-13, atol=1e-15)
    for k in a.grads:
        np.testing.assert_allclose(b.grads[k], a.grads[k], rtol=1e-12, atol=1e-15, err_msg=k)


def test_sentinel_checks_find_the_first_step_in_pass_order():
    """The finiteness checks (rnnsim/kernels/checks.py: no temporary, however long the sequence) find the first
    step in pass order: forward from t = 0, backward from t = T − 1; the sentinel names it."""
    from rnnsim.kernels import checks

    sim = Simulation(small_scenario(**{"task.length": 20}))
    sim.forward()
    assert sim.sentinel is None
    assert checks.first_nonfinite_step(sim._ws.h, 0, sim.T, False) == -1
    sim._ws.h[[5, 11], 1, 2] = np.nan
    assert checks.first_nonfinite_step(sim._ws.h, 0, sim.T, False) == 5
    assert checks.first_nonfinite_step(sim._ws.h, 0, sim.T, True) == 11
    sim.phase = "idle"
    sim._X[5, 1, :] = np.nan   # a NaN input: hidden goes NaN from t = 5 on
    sim._new_batch_due = False
    sim.forward()
    assert (sim.sentinel.t, sim.sentinel.array) == (5, "hidden")


@pytest.mark.parametrize("changes", [
    {"model.cell": "rnn"}, {"model.cell": "rnn", "model.layernorm": True}, {"model.cell": "lstm"},
    {"model.cell": "gru"}, {"model.cell": "lstm", "task.kind": "copy", "model.dtype": "float32"},
])
@pytest.mark.parametrize("K", [5, 64])
def test_estimate_bytes_bounds_a_chunked_simulation(changes, K, monkeypatch):
    """The same bound as tests/unit/test_scenario.py's, with the cells forced into chunked mode (the estimate also
    counts a pass's temporaries: measured against peak RSS in test_memory_bound.py)."""
    from rnnsim.scenario import Scenario, estimate_bytes

    monkeypatch.setattr(tunables, "CACHE_LIMIT", -1)
    monkeypatch.setattr(tunables, "CHUNK_STEPS", K)
    sc = Scenario().with_changes({"task.length": 40, "task.batch_size": 8, **changes})
    sim = Simulation(sc)
    assert sim.workspace.K == min(K, sc.task.length)
    real = sim.workspace.nbytes() + sum(a.nbytes for a in (sim._X, sim._Y, sim._M, sim._out, sim._dout))
    real += 2 * sum(p.nbytes for p in sim.params.values())
    assert real <= estimate_bytes(sc) <= 2.5 * real + 64 * 1024
