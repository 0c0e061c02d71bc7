"""The self-attention cell and the attention readout: Numba kernels against the NumPy references, finite
differences, stepping, float32, PyTorch, and the diagnostics and scenario rules that go with them."""

import math

import numpy as np
import pytest

from rnnsim import Scenario, ScenarioError, Simulation, diagnostics
from rnnsim.cells import attention, gru, lstm, rnn
from rnnsim.scenario import estimate_bytes
from tests.unit.conftest import small_scenario
from tests.unit.test_cells import _fd_check, check_grad_hidden_by_finite_differences
from tests.unit.test_scenario import test_estimate_bytes_bounds_what_a_simulation_allocates as _bytes_bound

ATTN = {
    "attention": {"model.cell": "attention"},
    "rnn+attn-readout": {"model.cell": "rnn", "model.readout": "attention"},
    "lstm+attn-readout": {"model.cell": "lstm", "model.readout": "attention", "model.forget_bias": 1.0},
    "gru+attn-readout": {"model.cell": "gru", "model.readout": "attention"},
}
COPY = {"task.kind": "copy", "task.length": 9, "task.symbols": 2, "task.alphabet": 3}


@pytest.fixture(params=sorted(ATTN))
def aconfig(request):
    return request.param, ATTN[request.param]


def _cell_reference(sim, dh_out):
    X, p, m = sim._X, sim.params, sim.scenario.model
    mod = {"rnn": rnn, "lstm": lstm, "gru": gru, "attention": attention}[m.cell]
    kw = {"activation": m.activation, "layernorm": m.layernorm} if m.cell == "rnn" else {}
    fw = mod.reference_forward(X, p, **kw)
    return fw, (lambda d: mod.reference_backward(X, p, fw, d, **kw))


def reference(sim):
    """NumPy forward and backward of the whole model: (outputs, alpha, h, grads, dh_total, dx)."""
    p = sim.params
    H = sim.H
    fw, backward = _cell_reference(sim, None)
    h = fw["h"]
    dout = sim._dout  # dL/doutputs (checked against the loss by the FD tests)
    if sim.attention_readout:
        W = p["readout.weight"]
        q = h @ p["attn.query.weight"].T
        ctx, alpha = attention.reference_attend(q, h, h)
        out = h @ W[:, :H].T + ctx @ W[:, H:].T + p["readout.bias"]
        dq, dk, dv = attention.reference_attend_backward(q, h, h, alpha, dout @ W[:, H:])
        dh_out = dout @ W[:, :H] + dk + dv + dq @ p["attn.query.weight"]
        g_ro = {"readout.weight": np.einsum("tbo,tbh->oh", dout, np.concatenate([h, ctx], axis=2)),
                "attn.query.weight": np.einsum("tbi,tbj->ij", dq, h)}
    else:
        alpha = fw["alpha"]
        out = h @ p["readout.weight"].T + p["readout.bias"]
        dh_out = dout @ p["readout.weight"]
        g_ro = {"readout.weight": np.einsum("tbo,tbh->oh", dout, h)}
    g, dh, dx = backward(dh_out)
    g_ro["readout.bias"] = dout.sum(axis=(0, 1))
    return out, alpha, h, g | g_ro, dh, dx


@pytest.mark.parametrize("task", ["sine", "copy"])
def test_kernels_match_numpy_reference(aconfig, task):
    _, changes = aconfig
    sim = Simulation(small_scenario(**changes).with_changes(COPY if task == "copy" else {}))
    sim.forward()
    sim.backward()
    out, alpha, h, g, dh, dx = reference(sim)
    ws = sim.workspace
    np.testing.assert_allclose(ws.h, h, rtol=0, atol=1e-13)
    np.testing.assert_allclose(sim._out, out, rtol=0, atol=1e-13)
    np.testing.assert_allclose(ws.ro_alpha if sim.attention_readout else ws.alpha, alpha, rtol=0, atol=1e-14)
    np.testing.assert_allclose(ws.dh, dh, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(ws.dx, dx, rtol=1e-11, atol=1e-14)
    assert set(g) == set(sim.grads)
    for k, v in g.items():
        np.testing.assert_allclose(sim.grads[k], v, rtol=1e-11, atol=1e-14, err_msg=k)


@pytest.mark.parametrize("task", ["sine", "copy"])
def test_gradients_match_finite_differences(aconfig, task):
    """Every parameter (all attn.* included) and dL/dx_t, regression and classification, relative error < 1e-6."""
    _, changes = aconfig
    sim = Simulation(small_scenario(**changes).with_changes(COPY if task == "copy" else {}))
    sim.forward()
    sim.backward()
    grads = {k: v.copy() for k, v in sim.grads.items()}
    dx = sim.grad_inputs.copy()
    assert any(k.startswith("attn.") for k in grads)
    # eps 1e-4: the attention readout's query gradient is ~1e-5 at init (scores near 0), where eps = 1e-6 leaves
    # rounding noise of ~1e-10 / 1e-5; the O(eps²) truncation error stays ~1e-8 relative
    for k in sim.params:
        err = _fd_check(sim, sim.params[k], grads[k], n=20, eps=1e-4)
        assert err < 1e-6, f"{k}: relative error {err:.2e}"
    err = _fd_check(sim, sim._X, dx.transpose(1, 0, 2), n=20, eps=1e-4)
    assert err < 1e-6, f"grad_inputs: relative error {err:.2e}"


@pytest.mark.parametrize("task", ["sine", "copy"])
def test_grad_hidden_matches_finite_differences(aconfig, task):
    """grad_hidden is the total dL/dh_t (readout at t, later attention and recurrence)."""
    _, changes = aconfig
    sim = Simulation(small_scenario(**changes).with_changes(COPY if task == "copy" else {}))
    check_grad_hidden_by_finite_differences(sim, seed=7)


def test_step_by_step_equals_whole_pass(aconfig):
    _, changes = aconfig
    sc = small_scenario(**changes)
    a, b = Simulation(sc), Simulation(sc)
    la = a.forward()
    a.backward()
    while b.step_forward():
        pass
    assert b.loss == pytest.approx(la, rel=1e-14)
    while b.step_backward():
        pass
    for name in ("hidden", "outputs", "grad_hidden", "grad_inputs"):
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-13, atol=1e-15, err_msg=name)
    for k in a.grads:
        np.testing.assert_allclose(b.grads[k], a.grads[k], rtol=1e-13, atol=1e-15, err_msg=k)


def test_attention_cell_position_t_sees_only_the_past():
    """Causality: changing x_s changes z_t only for t >= s, and step t computes position t only."""
    sim = Simulation(small_scenario(**ATTN["attention"]))
    sim.forward()
    z = sim.hidden.copy()
    sim._X[4] += 1.0
    sim.phase = "idle"
    sim.forward()
    np.testing.assert_array_equal(sim.hidden[:, :4], z[:, :4])
    assert np.all(np.abs(sim.hidden[:, 4:] - z[:, 4:]).max(axis=2) > 0)
    sim.phase = "idle"
    for _ in range(3):
        sim.step_forward()
    assert sim.t == 3


def test_float32_close_to_float64(aconfig):
    _, changes = aconfig
    sc = small_scenario(**changes)
    a, b = Simulation(sc), Simulation(sc.with_changes({"model.dtype": "float32"}))
    assert b.hidden.dtype == np.float32 and all(p.dtype == np.float32 for p in b.params.values())
    la, lb = a.forward(), b.forward()
    a.backward()
    b.backward()
    assert lb == pytest.approx(la, rel=1e-4)
    np.testing.assert_allclose(b.hidden, a.hidden, rtol=1e-4, atol=1e-5)
    for k in a.grads:
        scale = np.abs(a.grads[k]).max()
        np.testing.assert_allclose(b.grads[k], a.grads[k], rtol=0, atol=1e-4 * scale + 1e-7, err_msg=k)


def test_params_names_shapes_and_init_streams():
    sc = small_scenario(**ATTN["attention"])
    sim = Simulation(sc)
    H, D, O = sim.H, sim.D, sim.O
    shapes = {k: v.shape for k, v in sim.params.items()}
    assert shapes == {"attn.embed.weight": (H, D), "attn.embed.bias": (H,), "attn.query.weight": (H, H),
                      "attn.key.weight": (H, H), "attn.value.weight": (H, H), "attn.out.weight": (H, H),
                      "attn.out.bias": (H,), "readout.weight": (O, H), "readout.bias": (O,)}
    k = 1 / math.sqrt(H)
    assert all(np.abs(v).max() <= k for v in sim.params.values())
    # the readout's stream is the recurrent cells' one; init knobs are ignored
    rnn_sim = Simulation(small_scenario())
    np.testing.assert_array_equal(sim.params["readout.weight"], rnn_sim.params["readout.weight"])
    np.testing.assert_array_equal(sim.inputs, rnn_sim.inputs)
    other = Simulation(sc.with_changes({"model.init": "identity", "model.recurrent_scale": 3.0,
                                        "model.layernorm": True, "model.forget_bias": 2.0}))
    for name in sim.params:
        np.testing.assert_array_equal(other.params[name], sim.params[name])
    # the attention readout: readout.weight on [h; c], query weight from its own stream, cell weights unchanged
    ro = Simulation(small_scenario(**ATTN["rnn+attn-readout"]))
    assert ro.params["readout.weight"].shape == (O, 2 * H) and ro.params["attn.query.weight"].shape == (H, H)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        np.testing.assert_array_equal(ro.params[name], rnn_sim.params[name])


def test_state_dict_round_trip_includes_attn_names(aconfig):
    _, changes = aconfig
    a = Simulation(small_scenario(**changes))
    b = Simulation(small_scenario(**changes).with_changes({"scenario.seed": 9}))
    sd = a.state_dict()
    assert any(k.startswith("attn.") for k in sd)
    b.load_state_dict(sd)
    b._X[:] = a._X
    b._Y[:] = a._Y
    b._M[:] = a._M
    assert b.forward() == a.forward()
    with pytest.raises(KeyError):
        b.load_state_dict({k: v for k, v in sd.items() if k != "attn.query.weight"})


def test_positional_encoding_is_vaswani():
    P = attention.positional_encoding(50, 6)
    for t in (0, 7, 49):
        for i in range(3):
            w = 10000.0 ** (-2 * i / 6)
            assert P[t, 2 * i] == pytest.approx(math.sin(t * w), abs=1e-15)
            assert P[t, 2 * i + 1] == pytest.approx(math.cos(t * w), abs=1e-15)
    odd = attention.positional_encoding(5, 5)
    np.testing.assert_allclose(odd[:, 4], np.sin(np.arange(5) * 10000.0 ** (-4 / 5)))


@pytest.mark.parametrize("T", [1, 8, 64])
def test_dependent_steps_and_path_length(T):
    base = {"task.length": T, "task.kind": "sine"}
    att = Simulation(small_scenario(**ATTN["attention"]).with_changes(base))
    assert att.dependent_steps == 1 and att.max_path_length == min(1, T - 1)
    for cell in ("rnn", "lstm", "gru"):
        sim = Simulation(small_scenario(**{"model.cell": cell}).with_changes(base))
        assert sim.dependent_steps == T and sim.max_path_length == T - 1
    ro = Simulation(small_scenario(**ATTN["rnn+attn-readout"]).with_changes(base))
    assert ro.dependent_steps == T and ro.max_path_length == min(1, T - 1)


def test_diagnostics_for_the_attention_cell():
    sim = Simulation(small_scenario(**ATTN["attention"]))
    sim.forward()
    sim.backward()
    assert np.isnan(diagnostics.jacobian_norms(sim)).all()
    sp = diagnostics.spectrum(sim)
    assert sp.eigenvalues.size == 0 and "does not apply" in sp.verdict
    assert diagnostics.gate_means(sim) == {}
    with pytest.raises(ValueError, match="recurrent"):
        diagnostics.step_jacobians(sim, 0)
    prof = diagnostics.gradient_profile(sim)
    assert np.isfinite(prof).all() and np.isfinite(diagnostics.input_influence(sim)).all()


@pytest.mark.parametrize("name", ["attention", "gru+attn-readout"])
def test_attention_weights(name):
    sim = Simulation(small_scenario(**ATTN[name]))
    sim.step_forward()
    sim.step_forward()
    A = diagnostics.attention_weights(sim)
    assert A.shape == (sim.T, sim.T)
    assert np.isnan(A[2:]).all() and A[0, 0] == pytest.approx(1.0)
    sim.forward()
    A = diagnostics.attention_weights(sim)
    upper = np.triu(np.ones((sim.T, sim.T), dtype=bool), 1)
    assert np.isnan(A[upper]).all() and np.isfinite(A[~upper]).all()
    np.testing.assert_allclose(np.nansum(A, axis=1), 1.0, rtol=1e-12)
    alpha = sim.workspace.ro_alpha if sim.attention_readout else sim.workspace.alpha
    np.testing.assert_allclose(A[~upper], alpha.mean(axis=1)[~upper], rtol=1e-14)
    with pytest.raises(ValueError):
        diagnostics.attention_weights(Simulation(small_scenario()))


def test_attention_cell_needs_linear_readout():
    with pytest.raises(ScenarioError, match="model.readout") as info:
        Scenario().with_changes({"model.cell": "attention", "model.readout": "attention"})
    assert "\n" not in str(info.value) and "linear" in str(info.value)


@pytest.mark.parametrize("changes", [
    {"model.cell": "attention"}, {"model.cell": "attention", "task.kind": "copy", "model.dtype": "float32"},
    {"model.cell": "rnn", "model.readout": "attention"}, {"model.cell": "lstm", "model.readout": "attention"},
    {"model.cell": "gru", "model.readout": "attention", "task.kind": "copy"},
])
def test_estimate_bytes_bounds_attention(changes):
    _bytes_bound(changes)


def test_estimate_bytes_grows_quadratically_in_T_for_attention():
    small = Scenario().with_changes({"model.cell": "attention", "task.length": 100})
    big = Scenario().with_changes({"model.cell": "attention", "task.length": 1000})
    assert estimate_bytes(big) > 20 * estimate_bytes(small)  # linear in T would be 10x
    ro = Scenario().with_changes({"model.readout": "attention", "task.length": 1000})
    assert estimate_bytes(ro) > 20 * estimate_bytes(ro.with_changes({"task.length": 100}))


def test_attention_cell_learns_a_fixed_batch():
    sc = small_scenario(**ATTN["attention"]).with_changes({"training.optimizer": "adam", "training.fresh_data": False,
                                                           "training.learning_rate": 0.01})
    sim = Simulation(sc)
    hist = sim.train(60)
    assert all(h.finite for h in hist) and hist[-1].loss < 0.5 * hist[0].loss


# ------------------------------------------------------------------------------------------------- PyTorch
def _torch_model(sim, torch):
    """The same computation from torch ops (autograd), from the simulation's state_dict."""
    p = {k: torch.tensor(v, requires_grad=True) for k, v in sim.state_dict().items()}
    x = torch.tensor(np.ascontiguousarray(sim.inputs), requires_grad=True)  # (B, T, D)
    T, H = sim.T, sim.H
    causal = torch.ones(T, T, dtype=torch.bool).tril()

    def attend(q, k, v):
        s = q @ k.transpose(1, 2) / math.sqrt(H)
        alpha = torch.softmax(s.masked_fill(~causal, float("-inf")), dim=-1)
        return alpha @ v

    if sim.cell_name == "attention":
        P = torch.tensor(attention.positional_encoding(T, H))
        e = x @ p["attn.embed.weight"].T + p["attn.embed.bias"] + P
        q, k, v = (e @ p[f"attn.{n}.weight"].T for n in ("query", "key", "value"))
        h = e + attend(q, k, v) @ p["attn.out.weight"].T + p["attn.out.bias"]
        h.retain_grad()
        out = h @ p["readout.weight"].T + p["readout.bias"]
    else:
        cls = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}[sim.cell_name]
        hs, c, hprev = [], torch.zeros(sim.B, H), torch.zeros(sim.B, H)
        for t in range(T):
            args = (x[:, t], p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"])
            if cls is torch.nn.LSTMCell:
                hprev, c = torch._VF.lstm_cell(x[:, t], (hprev, c), *args[1:])
            elif cls is torch.nn.GRUCell:
                hprev = torch._VF.gru_cell(*args[:1], hprev, *args[1:])
            else:
                hprev = torch._VF.rnn_tanh_cell(*args[:1], hprev, *args[1:])
            hprev.retain_grad()  # the total dL/dh_t: through the readout and the recurrence
            hs.append(hprev)
        h = torch.stack(hs, 1)
        ctx = attend(h @ p["attn.query.weight"].T, h, h)
        out = torch.cat([h, ctx], dim=2) @ p["readout.weight"].T + p["readout.bias"]
    # after backward: the total dL/dh_t (z_t for the attention cell)
    grad_h = (lambda: h.grad) if sim.cell_name == "attention" else (lambda: torch.stack([a.grad for a in hs], 1))
    return p, x, h, out, grad_h


@pytest.mark.parametrize("task", ["sine", "copy"])
def test_matches_torch(aconfig, task):
    torch = pytest.importorskip("torch")
    _, changes = aconfig
    sim = Simulation(small_scenario(**changes).with_changes(COPY if task == "copy" else {}))
    loss = sim.forward()
    sim.backward()
    torch.set_default_dtype(torch.float64)
    p, x, h, out, grad_h = _torch_model(sim, torch)
    mask = torch.tensor(sim.loss_mask)
    F = torch.nn.functional
    tgt = torch.tensor(sim.targets)
    tloss = F.cross_entropy(out[mask], tgt[mask]) if sim.classification else F.mse_loss(out[mask], tgt[mask])
    tloss.backward()
    assert loss == pytest.approx(tloss.item(), rel=1e-12)
    np.testing.assert_allclose(sim.hidden, h.detach().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(sim.outputs, out.detach().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(sim.grad_hidden, grad_h().numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(sim.grad_inputs, x.grad.numpy(), rtol=1e-10, atol=1e-14)
    for k, v in p.items():
        np.testing.assert_allclose(sim.grads[k], v.grad.numpy(), rtol=1e-10, atol=1e-14, err_msg=k)


@pytest.mark.parametrize("t0,t1", [(0, 9), (3, 9), (4, 5)])
def test_numba_core_and_gemm_core_match_reference(rng, t0, t1):
    """Both implementations of the causal attention core (the per-position Numba kernel and the whole-range GEMMs,
    forward and backward) against the NumPy reference, on any range of query positions."""
    T, B, H = 9, 3, 4
    Q, K, V, DOUT = (rng.standard_normal((T, B, H)) for _ in range(4))
    out_ref, alpha_ref = attention.reference_attend(Q, K, V)
    dq_ref, dk_ref, dv_ref = attention.reference_attend_backward(Q, K, V, alpha_ref, DOUT)
    rows = slice(t0, t1)
    for fwd, bwd in ((attention.attend_forward, attention.attend_backward),
                     (attention.attend_forward_gemm, attention.attend_backward_gemm)):
        A, OUT = np.full((T, B, T), 7.0), np.zeros((T, B, H))
        fwd(t0, t1, Q, K, V, 1 / math.sqrt(H), A, OUT)
        np.testing.assert_allclose(A[rows], alpha_ref[rows], rtol=0, atol=1e-15)
        np.testing.assert_allclose(OUT[rows], out_ref[rows], rtol=0, atol=1e-14)
        # backward over the same query rows: dK, dV get the contributions of those rows only
        dQ, dK, dV = np.zeros((T, B, H)), np.zeros((T, B, H)), np.zeros((T, B, H))
        A_full = alpha_ref.copy()
        args = (t1 - 1, t0, Q, K, V, A_full, DOUT, 1 / math.sqrt(H), dQ, dK, dV)
        bwd(*args, np.zeros(T)) if bwd is attention.attend_backward else bwd(*args)
        mask = np.zeros(T, dtype=bool)
        mask[rows] = True
        sub = attention.reference_attend_backward(Q, K, V, alpha_ref * mask[:, None, None], DOUT)
        np.testing.assert_allclose(dQ[rows], dq_ref[rows], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(dK, sub[1], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(dV, sub[2], rtol=1e-12, atol=1e-14)
