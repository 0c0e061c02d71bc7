"""The per-step products in NumPy's BLAS from a Python loop over steps (large sizes; see STEP_GEMM_FLOPS in
rnnsim/kernels/config.py), forced at tiny sizes, in both the cached and the chunked mode."""

import numpy as np
import pytest

from rnnsim import Simulation
from rnnsim.kernels import blas
from rnnsim.kernels import config as tunables
from rnnsim.kernels.modes import Mode
from tests.unit import test_cells as tc
from tests.unit import test_diagnostics as td
from tests.unit.conftest import small_scenario


@pytest.fixture(params=["cached", "chunked"])
def numpy_steps(request, monkeypatch):
    monkeypatch.setattr(tunables, "STEP_GEMM_FLOPS", 0.0)
    if request.param == "chunked":
        monkeypatch.setattr(tunables, "CACHE_LIMIT", -1)
        monkeypatch.setattr(tunables, "CHUNK_STEPS", 3)
    return request.param


def test_threshold():
    assert blas.step_gemm_in_numpy(32, 512, 2048) and not blas.step_gemm_in_numpy(32, 64, 256)


def test_lstm_runs_projection_folded_in_cached_mode_only(numpy_steps):
    """The LSTM folds its input projection into the per-step product (projection-folded mode) when cached; the
    tests of this module then cover that mode."""
    sim = Simulation(small_scenario(**{"model.cell": "lstm"}))
    assert (sim.workspace.mode is Mode.FOLDED) == (numpy_steps == "cached")
    assert Simulation(small_scenario(**{"model.cell": "gru"})).workspace.mode is not Mode.FOLDED


def test_numpy_steps_step_jacobians_match_finite_differences(config, monkeypatch):
    """The step Jacobians (diagnostics) through the NumPy-steps kernels (the LSTM's projection-folded mode), cached mode."""
    monkeypatch.setattr(tunables, "STEP_GEMM_FLOPS", 0.0)
    td.test_step_jacobians_match_finite_differences(config)


def test_numpy_steps_match_numpy_reference(config, numpy_steps, monkeypatch):
    tc.test_kernels_match_numpy_reference(config)
    for threshold in (0.0, float("inf")):
        tc.test_both_gemm_paths_match_reference(config, threshold, monkeypatch)


@pytest.mark.parametrize("task", ["sine", "copy"])
def test_numpy_steps_gradients_match_finite_differences(config, numpy_steps, task):
    tc.test_gradients_match_finite_differences(config, task)
    tc.test_grad_hidden_matches_finite_differences(config)


def test_numpy_steps_step_by_step_and_float32(config, numpy_steps):
    tc.test_step_by_step_equals_whole_pass(config)
    tc.test_float32_close_to_float64(config)


def test_numpy_steps_equal_numba_steps(config, monkeypatch):
    _, changes = config
    sc = small_scenario(**changes)
    a = Simulation(sc)
    a.forward()
    a.backward()
    monkeypatch.setattr(tunables, "STEP_GEMM_FLOPS", 0.0)
    b = Simulation(sc)
    b.forward()
    b.backward()
    for name in ("hidden", "grad_hidden", "grad_inputs"):
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-12, atol=1e-15, err_msg=name)
    for k in a.grads:
        np.testing.assert_allclose(b.grads[k], a.grads[k], rtol=1e-12, atol=1e-15, err_msg=k)


@pytest.mark.parametrize("changes", [{"model.cell": "lstm"}, {"model.cell": "lstm", "model.dtype": "float32"}])
def test_estimate_bytes_bounds_the_projection_folded_mode(changes, monkeypatch):
    from tests.unit.test_scenario import test_estimate_bytes_bounds_what_a_simulation_allocates as bytes_bound

    monkeypatch.setattr(tunables, "STEP_GEMM_FLOPS", 0.0)
    bytes_bound(changes)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(1, 5, 7), (4, 16, 64), (3, 64, 64), (5, 8, 8), (1, 65, 64)],
                         ids=lambda s: "x".join(map(str, s)))
def test_step_dot_matches_matmul_in_both_branches(shape, dtype):
    """step_dot's loops (tiny products) and its np.dot branch (the rest) against NumPy, NaN and inf included."""
    B, K, N = shape
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((B, K)).astype(dtype), rng.standard_normal((K, N)).astype(dtype)
    out = np.full((B, N), 7.0, dtype=dtype)   # overwritten, not accumulated into
    blas.step_dot(a, b, out)
    np.testing.assert_allclose(out, a @ b, rtol=1e-5 if dtype == np.float32 else 1e-13, atol=1e-5)
    a[0, 1], b[2, 3] = np.nan, np.inf
    a[0, 2] = 0.0
    blas.step_dot(a, b, out)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(np.isfinite(out), np.isfinite(a @ b))
