"""Stacked layers (model.num_layers, rnnsim/layers.py): against the stacked NumPy reference built from each cell's
own reference, finite differences, torch.nn.RNN/LSTM/GRU(num_layers=N), in every execution mode; the step API's
(layer, t) steps; names, state dicts, weights files; the per-layer diagnostics; the memory estimate."""

import numpy as np
import pytest

from rnnsim import Simulation, diagnostics, layers
from rnnsim.cells import CELLS
from rnnsim.kernels import config as tunables
from rnnsim.scenario import Scenario, ScenarioError, estimate_bytes
from tests.unit.conftest import CONFIGS, small_scenario
from tests.unit.test_cells import _fd_check


def stacked(name, N, **extra):
    return small_scenario(**CONFIGS[name], **{"model.num_layers": N}, **extra)


def reference(sim):
    m = sim.scenario.model
    cell = CELLS[m.cell]
    args = (m.activation, m.layernorm) if m.cell == "rnn" else ()
    ps = [sim.layer_params(layer) for layer in range(sim.num_layers)]
    fws = layers.reference_forward(cell, sim._X, ps, *args)
    dh_out = sim._dout @ sim.params["readout.weight"]
    grads, dhs, dx = layers.reference_backward(cell, sim._X, ps, fws, dh_out, *args)
    return fws, grads, dhs, dx


MODES = {
    "cached": {},
    "chunked-K3": {"CACHE_LIMIT": -1, "CHUNK_STEPS": 3},
    "step-blas": {"STEP_GEMM_FLOPS": 0},   # per-step BLAS, and projection-folded for the LSTM
}


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("N", [2, 3])
def test_stack_matches_the_stacked_numpy_reference(config, N, mode, monkeypatch):
    for k, v in MODES[mode].items():
        monkeypatch.setattr(tunables, k, v)
    name, _ = config
    sim = Simulation(stacked(name, N))
    sim.forward()
    sim.backward()
    fws, grads, dhs, dx = reference(sim)
    lh, lgh = sim.layer_hidden, sim.layer_grad_hidden
    assert lh.shape == (N, sim.B, sim.T, sim.H) == lgh.shape
    for layer in range(N):
        np.testing.assert_allclose(lh[layer], fws[layer]["h"].transpose(1, 0, 2), rtol=0, atol=1e-13)
        np.testing.assert_allclose(lgh[layer], dhs[layer].transpose(1, 0, 2), rtol=1e-11, atol=1e-14)
        if name == "lstm":
            np.testing.assert_allclose(sim.layer_cell_state[layer], fws[layer]["c"].transpose(1, 0, 2), atol=1e-13)
        for k, v in grads[layer].items():
            np.testing.assert_allclose(sim.grads[f"{k}_l{layer}"], v, rtol=1e-11, atol=1e-14, err_msg=(layer, k))
    np.testing.assert_array_equal(sim.hidden, lh[-1])
    np.testing.assert_array_equal(sim.grad_hidden, lgh[-1])
    np.testing.assert_allclose(sim.grad_inputs, dx.transpose(1, 0, 2), rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("task", ["sine", "copy"])
@pytest.mark.parametrize("N", [2, 3])
def test_stack_gradients_match_finite_differences(config, N, task):
    name, _ = config
    extra = {"task.kind": "copy", "task.length": 9, "task.symbols": 2, "task.alphabet": 3} if task == "copy" else {}
    sim = Simulation(stacked(name, N).with_changes(extra))
    sim.forward()
    sim.backward()
    grads = {k: v.copy() for k, v in sim.grads.items()}
    dx = sim.grad_inputs.copy()
    for k in sim.params:
        err = _fd_check(sim, sim.params[k], grads[k], n=6, eps=1e-5)  # deep layers: small gradients
        assert err < 1e-6, f"{k}: relative error {err:.2e}"
    err = _fd_check(sim, sim._X, dx.transpose(1, 0, 2), n=6, eps=1e-5)
    assert err < 1e-6, f"grad_inputs: relative error {err:.2e}"


def test_names_follow_torch_and_one_layer_keeps_todays():
    one = Simulation(stacked("lstm", 1))
    assert list(one.params) == ["weight_ih", "weight_hh", "bias_ih", "bias_hh", "readout.weight", "readout.bias"]
    three = Simulation(stacked("rnn-layernorm", 3))
    names = [f"{k}_l{layer}" for layer in range(3)
             for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "ln.weight", "ln.bias")]
    assert list(three.params) == names + ["readout.weight", "readout.bias"]
    assert three.params["weight_ih_l0"].shape == (5, 1) and three.params["weight_ih_l2"].shape == (5, 5)
    # layer 0 is the single-layer network of the same seed; the others differ from it and from each other
    single = Simulation(stacked("rnn-layernorm", 1))
    np.testing.assert_array_equal(three.params["weight_hh_l0"], single.params["weight_hh"])
    assert not np.array_equal(three.params["weight_hh_l1"], three.params["weight_hh_l2"])


def test_forget_bias_applies_to_every_layer():
    sim = Simulation(small_scenario(**{"model.cell": "lstm", "model.forget_bias": 2.5, "model.num_layers": 3}))
    H = sim.H
    for layer in range(3):
        np.testing.assert_array_equal(sim.params[f"bias_ih_l{layer}"][H:2 * H], 2.5)
        np.testing.assert_array_equal(sim.params[f"bias_hh_l{layer}"][H:2 * H], 0.0)


def test_attention_with_layers_is_refused_in_one_line():
    with pytest.raises(ScenarioError) as info:
        Scenario().with_changes({"model.cell": "attention", "model.num_layers": 2})
    msg = str(info.value)
    assert "\n" not in msg and "model.num_layers = 2" in msg and "allowed: model.num_layers = 1" in msg
    with pytest.raises(ScenarioError, match="less than or equal to 8|from 1 to 8"):
        Scenario().with_changes({"model.num_layers": 9})


@pytest.mark.parametrize("name", ["rnn-tanh", "lstm", "gru"])
def test_step_api_walks_layer_by_layer_and_equals_the_whole_pass(name):
    sc = stacked(name, 3)
    a, b = Simulation(sc), Simulation(sc)
    la = a.forward()
    a.backward()
    seen = []
    while b.step_forward():
        seen.append((b.layer, b.t))
        assert b.phase == "forward"
    T = b.T
    # one (layer, t) step each: layer 0 over the sequence, then 1, then 2 (the last call completes t = T of layer 2)
    assert len(seen) + 1 == 3 * T and seen[0] == (0, 1) and seen[T - 1] == (1, 0) and seen[-1] == (2, T - 1)
    assert b.phase == "forward_done" and (b.layer, b.t) == (2, T) and b.loss == pytest.approx(la, rel=1e-14)
    assert b.step_forward() is False
    back = []
    while b.step_backward():
        back.append((b.layer, b.bt))
    assert len(back) + 1 == 3 * T and back[0] == (2, 1) and back[T - 1] == (1, 0) and back[-1] == (0, T - 1)
    assert b.phase == "backward_done" and (b.layer, b.bt) == (0, T)
    for attr in ("layer_hidden", "layer_grad_hidden", "outputs", "grad_inputs"):
        np.testing.assert_allclose(getattr(b, attr), getattr(a, attr), rtol=1e-13, atol=1e-15, err_msg=attr)
    for k in a.grads:
        np.testing.assert_allclose(b.grads[k], a.grads[k], rtol=1e-13, atol=1e-15, err_msg=k)


def test_layer_steps_and_per_layer_profiles_are_truthful_mid_pass():
    sim = Simulation(stacked("rnn-tanh", 3))
    T = sim.T
    for _ in range(T + 2):          # layer 0 done, layer 1 two steps in
        sim.step_forward()
    assert [sim.layer_steps(k) for k in range(3)] == [(T, 0), (2, 0), (0, 0)]
    assert np.isnan(diagnostics.jacobian_norms(sim, layer=1)[2:]).all()
    assert np.isfinite(diagnostics.jacobian_norms(sim, layer=1)[:2]).all()
    assert np.isnan(diagnostics.jacobian_norms(sim)).all()       # the last layer has not started
    sim.forward()
    for _ in range(T + 3):          # layer 2 done, layer 1 three steps back
        sim.step_backward()
    assert [sim.layer_steps(k) for k in range(3)] == [(T, 0), (T, 3), (T, T)]
    depth = diagnostics.depth_profile(sim)
    assert depth.shape == (3, T)
    assert np.isnan(depth[0]).all() and np.isnan(depth[1, :T - 3]).all() and np.isfinite(depth[1, T - 3:]).all()
    assert np.isfinite(depth[2]).all()
    np.testing.assert_allclose(depth[2], np.linalg.norm(sim.grad_hidden, axis=2).mean(axis=0))
    sim.backward()
    sim.apply_update()   # idle: the latest pass stays readable
    assert [sim.layer_steps(k) for k in range(3)] == [(T, T)] * 3
    full = diagnostics.depth_profile(sim)
    np.testing.assert_allclose(full, np.linalg.norm(sim.layer_grad_hidden, axis=3).mean(axis=1))
    assert np.isfinite(diagnostics.input_influence(sim)).all()


def test_per_layer_jacobians_spectrum_and_gates_read_that_layer():
    sim = Simulation(stacked("rnn-tanh", 3))
    sim.forward()
    for layer in range(3):
        W = sim.params[f"weight_hh_l{layer}"]
        h = sim.layer_hidden[layer][:, 4]                      # (B, H) at t = 4
        J = (1 - h * h)[:, :, None] * W[None]                  # diag(1 − h_t²) W_hh of that layer
        np.testing.assert_allclose(diagnostics.step_jacobians(sim, 4, layer=layer), J, rtol=1e-13)
        sp = diagnostics.spectrum(sim, layer)
        assert sp.sigma_max == pytest.approx(np.linalg.svd(W, compute_uv=False)[0], rel=1e-12)
    with pytest.raises(ValueError, match="layer 3: the network has 3 layers"):
        diagnostics.gradient_profile(sim, 3)
    lstm = Simulation(stacked("lstm", 2))
    lstm.forward()
    fws = layers.reference_forward(CELLS["lstm"], lstm._X, [lstm.layer_params(k) for k in range(2)])
    for layer in range(2):
        np.testing.assert_allclose(diagnostics.gate_means(lstm, layer)["forget"], fws[layer]["f"].mean(axis=(1, 2)),
                                   rtol=1e-12)


def test_sentinel_names_the_lower_layer():
    sim = Simulation(stacked("rnn-tanh", 2))
    sim.params["weight_hh_l0"][:] = np.nan
    sim.forward()
    assert (sim.sentinel.array, sim.sentinel.t, sim.sentinel.phase) == ("layer_hidden[0]", 0, "forward")  # NaN · h_{-1} = NaN · 0 is NaN


def test_state_dict_round_trip_keeps_every_layer():
    a = Simulation(stacked("gru", 3))
    a.train(2)
    b = Simulation(stacked("gru", 3))
    b.load_state_dict(a.state_dict())
    for layer in range(3):   # the drivers' per-layer views see the loaded arrays
        for k, v in b.layer_params(layer).items():
            np.testing.assert_array_equal(v, a.params[f"{k}_l{layer}"])
    assert not np.array_equal(b.params["weight_hh_l2"], Simulation(stacked("gru", 3)).params["weight_hh_l2"])
    with pytest.raises(KeyError, match="weight_ih_l2"):
        Simulation(stacked("gru", 2)).load_state_dict(a.state_dict())


@pytest.mark.parametrize("mode", ["cached", "chunked-K3"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_estimate_bytes_counts_every_layer(cell, mode, monkeypatch):
    for k, v in MODES[mode].items():
        monkeypatch.setattr(tunables, k, v)
    sc = Scenario().with_changes({"model.cell": cell, "task.length": 40, "task.batch_size": 8})
    sizes = []
    for N in (1, 3):
        s = sc.with_changes({"model.num_layers": N})
        sim = Simulation(s)
        real = sim._stack.nbytes() + sum(a.nbytes for a in (sim._X, sim._Y, sim._M, sim._out, sim._dout))
        real += 2 * sum(p.nbytes for p in sim.params.values())
        assert real <= estimate_bytes(s) <= 2.5 * real + 64 * 1024   # (temporaries included: rnnsim/memory.py)
        sizes.append(estimate_bytes(s))
    assert sizes[1] > 2.5 * sizes[0] - 64 * 1024


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("layernorm", [False, True])
def test_expected_weight_shapes_are_the_stack_init_shapes(cell, layernorm):
    from rnnsim.cells import init_params
    from rnnsim.scenario import task_dims
    from rnnsim.weights import expected_shapes

    sc = Scenario().with_changes({"model.cell": cell, "model.layernorm": layernorm, "model.num_layers": 3,
                                  "model.hidden_size": 7, "task.kind": "random", "task.input_size": 3})
    D, O, _ = task_dims(sc.task)
    shapes, how = expected_shapes(sc.model, D, O)
    assert shapes == {k: v.shape for k, v in init_params(sc.model, D, O, 0, np.float64).items()}
    assert set(how) == set(shapes) and how["weight_ih_l1"].endswith("H × H") and how["weight_ih_l0"].endswith("× D")


def test_attention_readout_on_a_stack_matches_finite_differences():
    sim = Simulation(stacked("gru", 2, **{"model.readout": "attention"}))
    sim.forward()
    sim.backward()
    grads = {k: v.copy() for k, v in sim.grads.items()}
    for k in ("weight_hh_l0", "weight_ih_l1", "attn.query.weight", "readout.weight"):
        err = _fd_check(sim, sim.params[k], grads[k], n=6, eps=1e-5)
        assert err < 1e-6, f"{k}: relative error {err:.2e}"


def test_float32_stack_close_to_float64():
    a = Simulation(stacked("lstm", 3))
    b = Simulation(stacked("lstm", 3, **{"model.dtype": "float32"}))
    for sim in (a, b):
        sim.forward()
        sim.backward()
    assert b.layer_hidden.dtype == np.float32
    np.testing.assert_allclose(b.layer_hidden, a.layer_hidden, atol=1e-5)
    np.testing.assert_allclose(b.layer_grad_hidden, a.layer_grad_hidden, rtol=1e-3, atol=1e-6)
