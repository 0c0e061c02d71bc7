"""Diagnostics against references written here (issue 17), through the public functions only: the Pascanu verdict
on non-normal W_hh (default pytorch init, where ρ < 1 < σ_max), and every per-step Jacobian norm equal to the
spectral norm of the step Jacobian obtained by central differences of a plain NumPy cell step (DESIGN.md §3)."""

from __future__ import annotations

import numpy as np
import pytest

from rnnsim import Simulation, diagnostics
from tests.unit.conftest import CONFIGS, small_scenario


# ------------------------------------------------------------------------------------------ Pascanu verdict
def _pytorch_init_rnn(seed=0, H=32, scale=1.0):
    return Simulation(small_scenario(**{"model.hidden_size": H, "model.init": "pytorch", "scenario.seed": seed,
                                        "model.recurrent_scale": scale}))


def test_pytorch_init_is_non_normal_and_the_verdict_follows_sigma_max():
    """Default pytorch init, H = 32: ρ ≈ 0.6 but σ_max ≈ 1.05. σ_max ≥ 1/γ, so exploding is possible; a verdict
    from the spectral radius would say "vanishing guaranteed", which is false."""
    sim = _pytorch_init_rnn()
    W = sim.params["weight_hh"]
    rho, smax = np.abs(np.linalg.eigvals(W)).max(), np.linalg.svd(W, compute_uv=False)[0]
    assert rho < 1.0 < smax, "the test needs a seed where ρ < 1 < σ_max"
    s = diagnostics.spectrum(sim)
    assert s.radius == pytest.approx(rho, rel=1e-12) and s.sigma_max == pytest.approx(smax, rel=1e-12)
    assert s.gamma == 1.0 and s.bound == 1.0
    assert s.verdict.startswith("exploding possible") and f"σ_max = {smax:.3g}" in s.verdict
    assert "vanishing" not in s.verdict
    np.testing.assert_allclose(np.sort_complex(s.eigenvalues), np.sort_complex(np.linalg.eigvals(W)), rtol=1e-10)


def test_verdict_vanishing_needs_sigma_max_below_one_not_rho():
    """Scale W so that σ_max is just below 1 (ρ is then far below): vanishing guaranteed. Just above: not."""
    W = _pytorch_init_rnn().params["weight_hh"]
    smax = np.linalg.svd(W, compute_uv=False)[0]
    below = diagnostics.spectrum(_pytorch_init_rnn(scale=0.98 / smax))
    assert below.sigma_max == pytest.approx(0.98) and below.verdict.startswith("vanishing guaranteed")
    above = diagnostics.spectrum(_pytorch_init_rnn(scale=1.02 / smax))
    assert above.radius < 0.7 and above.verdict.startswith("exploding possible")


@pytest.mark.parametrize("cell, block", [("lstm", 2), ("gru", 2)])
def test_gated_cells_report_the_candidate_block(cell, block):
    sim = Simulation(small_scenario(**{"model.cell": cell, "model.hidden_size": 8}))
    H = sim.H
    Wc = sim.params["weight_hh"][block * H:(block + 1) * H]
    s = diagnostics.spectrum(sim)
    assert s.sigma_max == pytest.approx(np.linalg.norm(Wc, 2), rel=1e-12)
    assert s.radius == pytest.approx(np.abs(np.linalg.eigvals(Wc)).max(), rel=1e-12)
    assert s.verdict.startswith("gated cell") and f"{s.sigma_max:.3g}" in s.verdict


# ------------------------------------------------------------------------------------ step Jacobian norms
def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def numpy_step(sim, x, state):
    """One step of the scenario's cell from DESIGN.md §3, on one sample: state (h,) or (h, c) -> the new state as
    one vector (the LSTM's is [h; c])."""
    p, m, H = sim.params, sim.scenario.model, sim.H
    h = state[:H]
    a = p["weight_ih"] @ x + p["bias_ih"]
    gh = p["weight_hh"] @ h + p["bias_hh"]
    if m.cell == "rnn":
        pre = a + gh
        if m.layernorm:
            mu, var = pre.mean(), pre.var()
            pre = (pre - mu) / np.sqrt(var + 1e-5) * p["ln.weight"] + p["ln.bias"]
        return np.maximum(pre, 0.0) if m.activation == "relu" else np.tanh(pre)
    if m.cell == "lstm":
        c = state[H:]
        z = a + gh
        i, f, g, o = _sigmoid(z[:H]), _sigmoid(z[H:2 * H]), np.tanh(z[2 * H:3 * H]), _sigmoid(z[3 * H:])
        c_new = f * c + i * g
        return np.concatenate([o * np.tanh(c_new), c_new])
    r = _sigmoid(a[:H] + gh[:H])
    z = _sigmoid(a[H:2 * H] + gh[H:2 * H])
    n = np.tanh(a[2 * H:] + r * gh[2 * H:])
    return (1.0 - z) * n + z * h


def fd_jacobian(sim, t, b, eps=1e-6):
    """∂s_t/∂s_{t−1} of sample b by central differences of numpy_step (s_{−1} = 0)."""
    H = sim.H
    lstm = sim.scenario.model.cell == "lstm"
    if t > 0:
        s = np.concatenate([sim.hidden[b, t - 1], sim.cell_state[b, t - 1]]) if lstm else sim.hidden[b, t - 1].copy()
    else:
        s = np.zeros(2 * H if lstm else H)
    x = sim.inputs[b, t]
    J = np.zeros((s.size, s.size))
    for j in range(s.size):
        d = np.zeros_like(s)
        d[j] = eps
        J[:, j] = (numpy_step(sim, x, s + d) - numpy_step(sim, x, s - d)) / (2 * eps)
    return J


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_jacobian_norm_is_the_largest_singular_value_of_the_step_jacobian(name):
    changes = {**CONFIGS[name], "model.hidden_size": 6, "task.batch_size": 10, "task.length": 6}
    if name == "rnn-relu":   # keep the ReLU units away from 0, where the difference quotient straddles the kink
        changes["task.kind"] = "random"
    sim = Simulation(small_scenario(**changes))
    lstm = sim.scenario.model.cell == "lstm"
    sim.forward()
    # the numpy step reproduces the simulation's states (so its Jacobian is the Jacobian of this pass)
    for t in range(sim.T):
        for b in range(sim.B):
            prev = (np.concatenate([sim.hidden[b, t - 1], sim.cell_state[b, t - 1]]) if lstm
                    else sim.hidden[b, t - 1]) if t else np.zeros(2 * sim.H if lstm else sim.H)
            new = numpy_step(sim, sim.inputs[b, t], prev)
            np.testing.assert_allclose(new[:sim.H], sim.hidden[b, t], rtol=1e-12, atol=1e-14)
    norms = diagnostics.jacobian_norms(sim, max_batch=8)
    assert norms.shape == (sim.T,)
    for t in range(sim.T):
        Js = [fd_jacobian(sim, t, b) for b in range(8)]
        np.testing.assert_allclose(diagnostics.step_jacobians(sim, t, slice(0, 8)), np.stack(Js), atol=1e-7,
                                   err_msg=f"{name} t = {t}")
        sig = [np.linalg.norm(J, 2) for J in Js]
        assert norms[t] == pytest.approx(np.mean(sig), rel=1e-7), f"{name} t = {t}"
        # and not some other singular value: the smallest is well below (a non-degenerate check)
        assert np.mean([np.linalg.svd(J, compute_uv=False)[-1] for J in Js]) < 0.9 * norms[t]


def test_jacobian_norms_only_for_steps_done_and_nan_for_attention():
    sim = Simulation(small_scenario(**{"model.hidden_size": 6}))
    sim.step_forward()
    sim.step_forward()
    n = diagnostics.jacobian_norms(sim)
    assert np.isfinite(n[:2]).all() and np.isnan(n[2:]).all()
    assert n[1] == pytest.approx(np.mean([np.linalg.norm(fd_jacobian(sim, 1, b), 2) for b in range(sim.B)]),
                                 rel=1e-7)
    att = Simulation(small_scenario(**{"model.cell": "attention"}))
    att.forward()
    assert np.isnan(diagnostics.jacobian_norms(att)).all()


# ------------------------------------------------------------------------------ verdict edges, attention
def test_verdict_at_sigma_max_exactly_one_is_not_vanishing():
    """Identity init: W_hh = I, σ_max = 1 = 1/γ exactly. σ_max < 1/γ is the sufficient condition; at equality
    vanishing is not guaranteed."""
    sim = Simulation(small_scenario(**{"model.init": "identity", "model.activation": "relu"}))
    s = diagnostics.spectrum(sim)
    assert s.sigma_max == 1.0 and s.radius == 1.0
    assert s.verdict.startswith("exploding possible") and "≥ 1/γ = 1" in s.verdict


def test_layernorm_verdict_decides_nothing():
    s = diagnostics.spectrum(Simulation(small_scenario(**{"model.layernorm": True})))
    assert s.verdict.startswith("LayerNorm rescales") and f"σ_max = {s.sigma_max:.3g}" in s.verdict


def test_attention_cell_has_no_spectrum_and_no_step_jacobians():
    sim = Simulation(small_scenario(**{"model.cell": "attention"}))
    s = diagnostics.spectrum(sim)
    assert s.eigenvalues.shape == (0,) and s.eigenvalues.dtype == complex
    assert np.isnan(s.radius) and np.isnan(s.sigma_max) and (s.gamma, s.bound) == (1.0, 1.0)
    assert s.verdict.startswith("does not apply: the attention cell has no recurrent matrix")
    sim.forward()
    with pytest.raises(ValueError, match="step Jacobians need a recurrent state; the attention cell has none"):
        diagnostics.step_jacobians(sim, 0)


# ------------------------------------------------------------------------------ influence and decay summary
def test_input_influence_is_nan_until_bptt_ends():
    sim = Simulation(small_scenario())
    sim.forward()
    sim.step_backward()
    infl = diagnostics.input_influence(sim)
    assert infl.shape == (sim.T,) and infl.dtype == np.float64 and np.isnan(infl).all()


@pytest.mark.parametrize("values, fraction, expected", [
    ([1] * 10, 0.1, 0.1),                   # k = ceil(0.1·10) = 1 of 10 equal parts
    ([1] * 10, 0.25, 0.3),                  # k = ceil(2.5) = 3
    ([1] * 3, 0.1, 1 / 3),                  # at least one position
    ([0, 0, 0, 2, 6], 0.2, 0.75),           # 6 / 8
    ([np.nan, 1, 1, 2], 0.25, 0.5),         # NaN counts as nothing
    ([1, 0, 0, 0], 0.25, 0.0),
])
def test_influence_share_last(values, fraction, expected):
    assert diagnostics.influence_share_last(values, fraction) == pytest.approx(expected, rel=1e-15)


def test_influence_share_last_of_nothing_is_nan():
    assert np.isnan(diagnostics.influence_share_last([0, 0, 0]))
    assert np.isnan(diagnostics.influence_share_last([np.nan, np.nan]))


def _profile(rate, T, last=1.0):
    """A gradient profile that shrinks by ``rate`` per step back in time: p_t = last·rate^(T−1−t)."""
    return last * rate ** np.arange(T - 1, -1, -1, dtype=float)


def test_decay_summary_of_a_geometric_decay():
    """p_t = 0.5^(T−1−t), T = 21: ratio 0.5²⁰ ≈ 9.5e−7, rate 0.5, 10⁻³ of the last step's gradient first reached
    at 0.5¹⁰ ≈ 9.8e−4, i.e. t = 10; the ratio's decade 10⁻⁷."""
    s = diagnostics.decay_summary(_profile(0.5, 21))
    assert s.ratio == pytest.approx(0.5 ** 20, rel=1e-15) and s.rate == pytest.approx(0.5, rel=1e-14)
    assert s.t_at_1e3 == 10
    assert s.text == ("×0.5 per step back in time; 10⁻³ of the last step's gradient by t = 10 "
                      "(ratio ‖dL/dh_0‖/‖dL/dh_20‖ ≈ 10⁻⁷)")


def test_decay_summary_mild_decay_and_growth():
    mild = diagnostics.decay_summary(_profile(0.9, 11, last=2.0))   # ratio 0.9¹⁰ ≈ 0.349: no decade tag
    assert mild.t_at_1e3 is None and mild.rate == pytest.approx(0.9, rel=1e-14)
    assert mild.text == "×0.9 per step back in time; still 0.35 of the last step's gradient at t = 0"
    grow = diagnostics.decay_summary(_profile(2.0, 11))             # ratio 2¹⁰ = 1024: decade 10³
    assert grow.ratio == pytest.approx(1024.0) and grow.t_at_1e3 is None
    assert grow.text == ("×2 per step back in time; grows to 1.02e+03× the last step's gradient at t = 0 "
                         "(ratio ‖dL/dh_0‖/‖dL/dh_10‖ ≈ 10³)")
    flat = diagnostics.decay_summary(np.ones(5))
    assert flat.rate == 1.0 and flat.text == "×1 per step back in time; grows to 1× the last step's gradient at t = 0"


def test_decay_summary_threshold_is_inclusive_and_relative_to_the_last_step():
    p = np.array([1e-3, 2e-3, 1.0]) * 4.0        # p_0 = 10⁻³·p_last exactly
    assert diagnostics.decay_summary(p).t_at_1e3 == 0
    assert diagnostics.decay_summary(np.array([1e-4, 1.0, 1.0, 1.0])).t_at_1e3 == 0


@pytest.mark.parametrize("profile, text", [
    ([1.0], "T = 1"),
    ([np.nan, 1.0, 2.0], "needs a complete backward pass"),      # BPTT has not reached t = 0 yet
    ([np.nan, np.nan, np.nan], "needs a complete backward pass"),
    ([np.inf, 1.0, 2.0], "non-finite gradient: it exploded"),
    ([np.nan, np.inf, 2.0], "non-finite gradient: it exploded"),
    ([1.0, np.nan, 2.0], "non-finite gradient: it exploded"),     # NaN after a reached step: not a prefix
    ([1.0, 2.0, 0.0], "zero gradient at the last step (dead units?)"),
])
def test_decay_summary_special_cases(profile, text):
    s = diagnostics.decay_summary(np.array(profile))
    assert s.text == text and np.isnan(s.ratio) and np.isnan(s.rate) and s.t_at_1e3 is None


def test_decay_summary_mid_backward_pass():
    """A stepped backward pass halfway: the profile is NaN where BPTT has not reached; that is no explosion."""
    sim = Simulation(small_scenario())
    sim.forward()
    for _ in range(3):
        sim.step_backward()
    prof = diagnostics.gradient_profile(sim)
    assert np.isnan(prof[:-3]).all() and np.isfinite(prof[-3:]).all()
    assert diagnostics.decay_summary(prof).text == "needs a complete backward pass"


def test_decay_summary_falls_to_zero():
    s = diagnostics.decay_summary(np.array([0.0, 0.0, 1e-5, 1.0]))
    assert s.ratio == 0.0 and s.rate == 0.0 and s.t_at_1e3 == 2 and s.text == "falls to exactly 0 by t = 2"


# ------------------------------------------------------------------------------------------ memory capacity
def test_memory_capacity_against_a_least_squares_reference():
    """MC(k) recomputed from its definition (Jaeger 2001) with np.linalg.lstsq: drive the network with one
    U(−0.5, 0.5) sequence, drop the washout, fit u_{t−k} from h_t (with an intercept) on the first half, and take
    the squared correlation of prediction and u_{t−k} on the second half."""
    sc = small_scenario(**{"model.hidden_size": 6, "model.init": "orthogonal", "model.recurrent_scale": 0.9})
    washout, length, K = 50, 600, 9
    mc = diagnostics.memory_capacity(sc, max_delay=K, length=length, washout=washout)
    sim = Simulation(sc.with_changes({"task.kind": "delayed_recall", "task.delay": 0, "task.batch_size": 1,
                                      "task.length": washout + length}))
    sim.forward()
    h, u = sim.hidden[0], sim.inputs[0, :, 0]
    assert ((-0.5 <= u) & (u < 0.5)).all()
    X = np.hstack([h[washout:], np.ones((length, 1))])
    half = length // 2
    ref = np.zeros(K)
    for k in range(K):
        y = u[washout - k: washout - k + length]
        w, *_ = np.linalg.lstsq(X[:half], y[:half], rcond=None)
        ref[k] = np.corrcoef(X[half:] @ w, y[half:])[0, 1] ** 2
    np.testing.assert_array_equal(mc.delays, np.arange(K))
    np.testing.assert_allclose(mc.per_delay, ref, rtol=1e-4, atol=1e-7)   # the ridge λ = 1e-8·n: a nudge only
    assert mc.total == pytest.approx(ref.sum(), rel=1e-4) and mc.hidden_size == 6
    assert ref[0] > 0.9 and ref[-1] < ref[0]   # a non-trivial case: the newest input is well remembered


def test_parallel_timing_times_are_durations():
    """Times are differences of perf_counter readings: positive and small for a T = 8 pass (a sum of two readings
    would be the machine's uptime)."""
    pts = diagnostics.parallel_timing(small_scenario(), lengths=(8,), cells=("rnn",), repeats=1, batch_size=2)
    assert len(pts) == 1 and 0 < pts[0].forward_s < 30 and 0 < pts[0].backward_s < 30


def test_influence_by_cell_uses_the_fraction_asked_for():
    out = diagnostics.influence_by_cell(small_scenario(), cells=("rnn",), samples=4, fraction=0.5)
    infl, share = out["rnn"]
    assert share == pytest.approx(diagnostics.influence_share_last(infl, 0.5), rel=1e-15)
    assert share != pytest.approx(diagnostics.influence_share_last(infl, 0.1))


def test_spectral_norms_equal_the_svd_s_largest_singular_value():
    """diagnostics.spectral_norms (eigenvalues of JᵀJ for large states) against NumPy's SVD: random, ill-conditioned,
    rank-deficient, repeated top singular values, and a stack with a NaN (then the SVD's own answer); small states
    are the SVD bit for bit."""
    rng = np.random.default_rng(7)
    S = diagnostics.SPECTRAL_EIGH_FROM + 32   # the eigenvalue path (smaller states take the SVD itself)
    small = rng.standard_normal((3, 40, 40))
    np.testing.assert_array_equal(diagnostics.spectral_norms(small), np.linalg.svd(small, compute_uv=False)[:, 0])
    U, _ = np.linalg.qr(rng.standard_normal((S, S)))
    V, _ = np.linalg.qr(rng.standard_normal((S, S)))
    stacks = [
        rng.standard_normal((5, S, S)),
        np.stack([U @ np.diag(np.logspace(-12, 3, S)) @ V.T]),            # condition 1e15
        np.stack([U @ np.diag(np.r_[np.full(3, 2.5), np.zeros(S - 3)]) @ V.T]),  # rank 3, a triple top value
        np.zeros((2, S, S)),
    ]
    for J in stacks:
        ref = np.linalg.svd(J, compute_uv=False)[:, 0]
        np.testing.assert_allclose(diagnostics.spectral_norms(J), ref, rtol=1e-13, atol=1e-300)
    bad = rng.standard_normal((2, S, S))
    bad[1, 3, 4] = np.nan
    with pytest.raises(np.linalg.LinAlgError):
        np.linalg.svd(bad, compute_uv=False)
    with pytest.raises(np.linalg.LinAlgError):
        diagnostics.spectral_norms(bad)  # as before: the SVD's behaviour for a non-finite Jacobian
