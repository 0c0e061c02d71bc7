"""rnnsim/explain.py: every number the explain panel plugs in equals an independent NumPy recomputation from the
public arrays (hidden, cell_state, grad_hidden, outputs, targets, loss_mask, params), and the BPTT identity
‖dL/dh_t‖ = ‖J_{t+1}ᵀ dL/dh_{t+1} + ∂ℓ_t/∂h_t‖ holds to 1e-12 against the kernel's grad_hidden."""

import math

import numpy as np
import pytest

from rnnsim import Simulation, load_scenario
from rnnsim.explain import NEEDS_WEIGHTS, PassWeights, explain, format_line, num
from tests.unit.conftest import small_scenario

CELLS = {
    "rnn": {"model.cell": "rnn"},
    "relu": {"model.cell": "rnn", "model.activation": "relu"},
    "layernorm": {"model.cell": "rnn", "model.layernorm": True},
    "lstm": {"model.cell": "lstm"},
    "gru": {"model.cell": "gru"},
    "attention": {"model.cell": "attention"},
    "attention-readout": {"model.cell": "rnn", "model.readout": "attention"},
    "lstm-attention-readout": {"model.cell": "lstm", "model.readout": "attention"},
}


def _sim(changes, length=9):
    sim = Simulation(small_scenario(**{"task.length": length, **changes}))
    sim.forward()
    sim.backward()
    return sim


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _dout(sim):
    """dL/dout from the public arrays (mean squared error over the masked elements), (B, T, O)."""
    mask = sim.loss_mask
    n = mask.sum() * sim.O
    return 2.0 * (sim.outputs - sim.targets) * mask[:, :, None] / n


@pytest.mark.parametrize("name", sorted(CELLS))
def test_bptt_identity_holds_to_1e12(name):
    sim = _sim(CELLS[name])
    for b in range(sim.B):
        for t in range(sim.T):
            line = explain(sim, t, b).line("identity")
            kernel = np.linalg.norm(sim.grad_hidden[b, t])
            assert line.result == pytest.approx(kernel, rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("name", ["rnn", "relu", "layernorm", "lstm", "gru", "attention"])
def test_readout_and_recurrent_parts_match_public_arrays(name):
    """Linear readout: ∂ℓ_t/∂h_t = dL/dout_t W_o; the recurrent part is what remains of grad_hidden."""
    sim = _sim(CELLS[name])
    d = _dout(sim)
    W = sim.params["readout.weight"]
    b = 1
    for t in range(sim.T):
        readout = d[b, t] @ W
        line = explain(sim, t, b).line("identity")
        assert line.value("‖∂ℓ_t/∂h_t‖") == pytest.approx(np.linalg.norm(readout), rel=1e-10)
        rest = np.linalg.norm(sim.grad_hidden[b, t] - readout)
        assert line.value("‖J_{t+1}ᵀ dL/dh_{t+1}‖") == pytest.approx(rest, rel=1e-9, abs=1e-15)
    if name == "attention":   # no recurrence: the J term is 0 at every step
        assert all(explain(sim, t, b).line("identity").value("‖J_{t+1}ᵀ dL/dh_{t+1}‖") == 0 for t in range(sim.T))


@pytest.mark.parametrize("name", sorted(CELLS))
def test_gradient_mean_and_ratio(name):
    sim = _sim(CELLS[name])
    norms = np.linalg.norm(sim.grad_hidden, axis=2).mean(axis=0)   # (T,) batch mean
    for t in (0, 4, sim.T - 1):
        e = explain(sim, t)
        assert e.line("grad").result == pytest.approx(norms[t], rel=1e-12)
        assert e.line("ratio").result == pytest.approx(norms[t] / norms[-1], rel=1e-12)


def test_tanh_jacobian_bound_numbers():
    sim = _sim({"model.recurrent_scale": 1.3})
    W = sim.params["weight_hh"]
    smax = np.linalg.svd(W, compute_uv=False)[0]
    for t in range(sim.T):
        h = sim.hidden[0, t]
        e = explain(sim, t)
        bound = e.line("jacobian_bound")
        assert bound.value("σ_max(W_hh)") == pytest.approx(smax, rel=1e-12)
        assert bound.value("max(1 − h_t²)") == pytest.approx(np.max(1 - h * h), rel=1e-12)
        assert bound.result == pytest.approx(smax * np.max(1 - h * h), rel=1e-12)
        jn = np.linalg.svd((1 - h * h)[:, None] * W, compute_uv=False)[0]
        assert e.line("jacobian").result == pytest.approx(jn, rel=1e-10)
        assert e.line("jacobian").result <= bound.result * (1 + 1e-12)
    p = e.line("pascanu")
    assert p.value("σ_max") == pytest.approx(smax, rel=1e-12)
    assert p.value("1/γ") == 1.0
    assert ("necessary, not sufficient" in p.text) == (smax >= 1)


def test_pascanu_vanishing_wording():
    sim = _sim({"model.init": "orthogonal", "model.recurrent_scale": 0.5})
    p = explain(sim, 0).line("pascanu")
    assert p.value("σ_max") == pytest.approx(0.5, rel=1e-12)
    assert "sufficient" in p.text and "guaranteed" in p.text


def test_relu_active_share():
    sim = _sim(CELLS["relu"])
    for t in range(sim.T):
        line = explain(sim, t, 2).line("active")
        assert line.result == pytest.approx(np.mean(sim.hidden[2, t] > 0))
        assert line.value("batch") == pytest.approx(np.mean(sim.hidden[:, t] > 0))


def test_layernorm_bound_includes_ln_jacobian():
    sim = _sim(CELLS["layernorm"])
    for t in (0, 5):
        e = explain(sim, t)
        bound = e.line("jacobian_bound")
        assert "LN" in bound.label and "‖∂LN/∂a_t‖" in dict(bound.values)
        assert e.line("jacobian").result <= bound.result * (1 + 1e-12)


def _lstm_gates(sim):
    """(T, B, H) i, f, g recomputed from the public arrays and weights."""
    p, X, Hs = sim.params, sim.inputs, sim.hidden
    B, T, H = Hs.shape
    out = {"i": [], "f": [], "g": []}
    for t in range(T):
        h_prev = Hs[:, t - 1] if t > 0 else np.zeros((B, H))
        a = X[:, t] @ p["weight_ih"].T + p["bias_ih"] + h_prev @ p["weight_hh"].T + p["bias_hh"]
        out["i"].append(_sigmoid(a[:, :H]))
        out["f"].append(_sigmoid(a[:, H:2 * H]))
        out["g"].append(np.tanh(a[:, 2 * H:3 * H]))
    return {k: np.stack(v) for k, v in out.items()}


def test_lstm_forget_path_numbers():
    sim = _sim(CELLS["lstm"])
    gates = _lstm_gates(sim)
    fbar = gates["f"].mean(axis=(1, 2))
    for t in range(sim.T):
        e = explain(sim, t, 1)
        cell = e.line("lstm_cell")
        for k in "fig":
            assert cell.value(f"mean {k}") == pytest.approx(gates[k][t].mean(), rel=1e-12)
        c_prev = sim.cell_state[1, t - 1] if t > 0 else np.zeros(sim.H)
        assert cell.value("‖c_{t−1}‖") == pytest.approx(np.linalg.norm(c_prev), rel=1e-12, abs=1e-300)
        assert cell.result == pytest.approx(np.linalg.norm(sim.cell_state[1, t]), rel=1e-12)
        assert e.line("forget_product").result == pytest.approx(np.prod(fbar[t:]), rel=1e-12)


def test_gru_update_gate_numbers():
    sim = _sim(CELLS["gru"])
    p, X, Hs = sim.params, sim.inputs, sim.hidden
    H = sim.H
    for t in range(sim.T):
        h_prev = Hs[:, t - 1] if t > 0 else np.zeros((sim.B, H))
        z = _sigmoid(X[:, t] @ p["weight_ih"][H:2 * H].T + p["bias_ih"][H:2 * H]
                     + h_prev @ p["weight_hh"][H:2 * H].T + p["bias_hh"][H:2 * H])
        line = explain(sim, t).line("gru")
        assert line.value("mean z") == pytest.approx(z.mean(), rel=1e-12)
        assert line.result == pytest.approx(np.linalg.norm(Hs[0, t]), rel=1e-12)


def test_attention_weights_max_and_entropy():
    from rnnsim.cells.attention import positional_encoding

    sim = _sim(CELLS["attention"])
    p, X = sim.params, sim.inputs[0]
    T, H = sim.T, sim.H
    e_ = X @ p["attn.embed.weight"].T + p["attn.embed.bias"] + positional_encoding(T, H)
    q, k = e_ @ p["attn.query.weight"].T, e_ @ p["attn.key.weight"].T
    for t in range(T):
        s = q[t] @ k[: t + 1].T / math.sqrt(H)
        a = np.exp(s - s.max())
        a /= a.sum()
        line = explain(sim, t).line("attention")
        assert line.value("max α") == pytest.approx(a.max(), rel=1e-12)
        assert line.result == pytest.approx(-(a * np.log(a)).sum(), rel=1e-10, abs=1e-14)
        assert "1:" in explain(sim, t).line("path").text
    assert "does not apply" in explain(sim, 0).line("pascanu").text


def test_missing_numbers_before_the_pass_reaches_t():
    sim = Simulation(small_scenario(**{"task.length": 9}))
    e = explain(sim, 4)
    assert e.line("grad").kind == "missing" and e.line("forward").kind == "missing"
    for _ in range(3):
        sim.step_forward()
    assert explain(sim, 2).line("jacobian").kind == "formula"
    assert explain(sim, 3).line("forward").kind == "missing"
    sim.forward()
    for _ in range(3):
        sim.step_backward()                      # BPTT did t = 8, 7, 6
    assert explain(sim, 6).line("identity").kind == "formula"
    assert explain(sim, 5).line("grad").kind == "missing"
    assert "BPTT has done t = 8..6" in explain(sim, 5).line("grad").text
    sim.backward()
    sim.apply_update()                           # the weights are no longer those of the pass
    e = explain(sim, 5)
    assert e.line("grad").kind == "formula"      # arrays only: still the pass's
    assert e.line("identity").kind == "missing" and e.line("identity").text == NEEDS_WEIGHTS
    assert e.line("jacobian").kind == "missing"


def test_non_finite_values_are_named_not_raised():
    sim = Simulation(load_scenario("exploding"))
    sim.train(5)
    assert sim.sentinel is not None
    for t in range(0, sim.T, 7):
        text = "\n".join(explain(sim, t).text_lines())
        assert "non-finite" in text
    sim2 = Simulation(load_scenario("exploding").with_changes({"model.recurrent_scale": 3.0, "task.length": 800}))
    sim2.forward()
    sim2.backward()
    assert sim2.sentinel is not None and sim2.sentinel.array == "hidden"  # h overflowed
    text = "\n".join(explain(sim2, sim2.T - 10).text_lines())
    assert "max|h_t| = +inf (not finite)" in text and "NaN (not finite)" in text
    bad = int((~np.isfinite(sim2.hidden[:, sim2.T - 10])).sum())
    assert bad and f"{bad} of the batch's {sim2.B * sim2.H} values of h_t are NaN or inf" in text


@pytest.mark.parametrize("name", ["lstm", "gru", "layernorm"])
def test_identity_in_chunked_mode(name, monkeypatch):
    """Chunked mode keeps no gates (they are recomputed per step): the same numbers come out."""
    from rnnsim.kernels import config as tunables

    monkeypatch.setattr(tunables, "CACHE_LIMIT", -1)
    monkeypatch.setattr(tunables, "CHUNK_STEPS", 3)
    sim = _sim(CELLS[name])
    assert sim.workspace.K == 3
    for t in range(sim.T):
        line = explain(sim, t, 2).line("identity")
        assert line.result == pytest.approx(np.linalg.norm(sim.grad_hidden[2, t]), rel=1e-12, abs=1e-300)
    sim.apply_update()
    assert explain(sim, 3).line("jacobian").kind == "missing"   # chunked gates would be recomputed from new weights


def test_number_words():
    assert num(float("nan")).startswith("NaN") and num(float("inf")).startswith("+inf") and num(0.5) == "0.5"
    from rnnsim.explain import Line

    assert format_line(Line("missing", "x", text="why")) == ["x: not there yet: why"]


@pytest.mark.parametrize("name", ["rnn", "layernorm", "lstm", "gru", "attention-readout"])
def test_weights_kept_before_the_update_bring_the_numbers_back(name):
    sim = _sim(CELLS[name])
    kept = PassWeights()
    kept.keep(sim)
    J_before = explain(sim, 4).line("jacobian").result
    sim.apply_update()
    assert any(not np.array_equal(v, kept.get(sim)[k]) for k, v in sim.params.items())   # the update moved them
    for t in range(sim.T):
        e = explain(sim, t, 1, kept.get(sim))
        assert e.line("pass_weights").kind == "note"
        assert e.line("identity").result == pytest.approx(np.linalg.norm(sim.grad_hidden[1, t]), rel=1e-12,
                                                          abs=1e-300)
    assert explain(sim, 4, 0, kept.get(sim)).line("jacobian").result == pytest.approx(J_before, rel=1e-12)
    sim.step_forward()                         # a new pass: the kept weights no longer belong to what is shown
    assert kept.get(sim) is None
    sim.reset()
    assert kept.get(sim) is None


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_stack_explains_the_top_layer(cell):
    """With num_layers = 3 the panel explains the top layer: the identity holds against grad_hidden (the top
    layer's), its J comes from weight_hh_l2, and a note says which layer."""
    sim = _sim({"model.cell": cell, "model.num_layers": 3})
    e = explain(sim, 3, 1)
    assert "top layer (3 of 3)" in e.line("layer").text
    for t in range(sim.T):
        line = explain(sim, t, 1).line("identity")
        assert line.result == pytest.approx(np.linalg.norm(sim.grad_hidden[1, t]), rel=1e-12, abs=1e-300)
    before = explain(sim, 0, 1).line("identity").value("‖J_{t+1}ᵀ dL/dh_{t+1}‖")
    sim.params["weight_hh_l2"][:] *= 0.0          # the top layer's W_hh alone carries the J term
    assert before > 0
    after = explain(sim, 0, 1).line("identity").value("‖J_{t+1}ᵀ dL/dh_{t+1}‖")
    if cell == "rnn":
        assert after == 0.0                       # J = diag(1 − h²) W_hh_l2 = 0
    else:                                         # gated: the carry (c, or z ⊙ h) remains, changed
        assert after != pytest.approx(before, rel=1e-6)
