"""Optimisers and clipping, step for step (issue 17): against a plain NumPy reference written here (always) and
against torch.optim / torch.nn.utils (when torch imports), on rnnsim.optim directly and through
Simulation.apply_update, so a wrong update rule, a missing bias correction, a dropped momentum buffer or an
off-by-sign clamp fails the suite instead of only slowing the loss down."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rnnsim import Simulation
from rnnsim.optim import clip_, global_norm, make_optimizer
from rnnsim.scenario import TrainingSection
from tests.unit.conftest import small_scenario

SHAPES = {"w": (3, 4), "b": (4,)}
STEPS = 6


# ------------------------------------------------------------------------------------ plain NumPy references
# Written from the papers / the torch.optim docs, not from rnnsim/optim.py: the momentum buffer and Adam's moments
# are computed in closed form (weighted sums over all past gradients), a different route from the recursions.
def ref_sgd(p0, gs, lr):
    out, p = [], {k: v.copy() for k, v in p0.items()}
    for g in gs:
        p = {k: p[k] - lr * g[k] for k in p}
        out.append(p)
    return out


def ref_momentum(p0, gs, lr, mu):
    """torch.optim.SGD(momentum=μ, dampening=0): buf_1 = g_1, buf_t = μ buf_{t−1} + g_t = Σ_k μ^{t−k} g_k."""
    out, p = [], {k: v.copy() for k, v in p0.items()}
    for t in range(1, len(gs) + 1):
        buf = {k: sum(mu ** (t - j) * gs[j - 1][k] for j in range(1, t + 1)) for k in p}
        p = {k: p[k] - lr * buf[k] for k in p}
        out.append(p)
    return out


def ref_adam(p0, gs, lr, b1=0.9, b2=0.999, eps=1e-8):
    """Kingma & Ba 2015, algorithm 1: m_t = (1−β1) Σ β1^{t−k} g_k, v_t likewise with g², bias-corrected by
    1 − β^t; p ← p − lr m̂ / (√v̂ + ε)."""
    out, p = [], {k: v.copy() for k, v in p0.items()}
    for t in range(1, len(gs) + 1):
        for k in p:
            m = (1 - b1) * sum(b1 ** (t - j) * gs[j - 1][k] for j in range(1, t + 1))
            v = (1 - b2) * sum(b2 ** (t - j) * gs[j - 1][k] ** 2 for j in range(1, t + 1))
            mhat, vhat = m / (1 - b1 ** t), v / (1 - b2 ** t)
            p = {**p, k: p[k] - lr * mhat / (np.sqrt(vhat) + eps)}
        out.append(p)
    return out


def random_problem(seed=0, steps=STEPS):
    rng = np.random.default_rng(seed)
    p0 = {k: rng.standard_normal(s) for k, s in SHAPES.items()}
    # gradients of changing sign and size (some tiny, where Adam's ε and bias correction matter most)
    gs = [{k: rng.standard_normal(s) * 10.0 ** rng.integers(-3, 2) for k, s in SHAPES.items()} for _ in range(steps)]
    return p0, gs


def run_ours(kind, p0, gs, lr, mu=0.9):
    params = {k: v.copy() for k, v in p0.items()}
    opt = make_optimizer(TrainingSection(optimizer=kind, learning_rate=lr, momentum=mu), params)
    out = []
    for g in gs:
        opt.step(params, {k: v.copy() for k, v in g.items()})
        out.append({k: v.copy() for k, v in params.items()})
    return out


REFS = {"sgd": lambda p0, gs, lr, mu: ref_sgd(p0, gs, lr),
        "momentum": ref_momentum,
        "adam": lambda p0, gs, lr, mu: ref_adam(p0, gs, lr)}


@pytest.mark.parametrize("kind", sorted(REFS))
def test_optimizer_matches_numpy_reference_every_step(kind):
    p0, gs = random_problem(1)
    ours = run_ours(kind, p0, gs, lr=0.05, mu=0.8)
    ref = REFS[kind](p0, gs, 0.05, 0.8)
    for t, (a, b) in enumerate(zip(ours, ref)):
        for k in a:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-12, atol=1e-14, err_msg=f"{kind} step {t + 1} {k}")


def test_adam_first_step_is_lr_times_sign():
    """With bias correction m̂_1 = g, v̂_1 = g², so the first step is lr·g/(|g| + ε) ≈ lr·sign(g) for any |g| ≫ ε
    (without it the step is (1−β1)/√(1−β2) ≈ 3.16 times larger)."""
    p0 = {"w": np.zeros(5)}
    g = {"w": np.array([1e-3, -2.0, 50.0, -1e-4, 7.0])}
    (p1,) = run_ours("adam", p0, [g], lr=0.01)
    np.testing.assert_allclose(p1["w"], -0.01 * np.sign(g["w"]), rtol=1e-4)


def test_momentum_second_step_uses_the_buffer():
    """p_2 = p_1 − lr (μ g_1 + g_2): with g_2 = 0 the parameters still move, by lr·μ·g_1."""
    p0 = {"w": np.array([1.0, -1.0])}
    g1, g2 = {"w": np.array([2.0, -4.0])}, {"w": np.zeros(2)}
    p1, p2 = run_ours("momentum", p0, [g1, g2], lr=0.1, mu=0.9)
    np.testing.assert_allclose(p1["w"], [0.8, -0.6], rtol=1e-15)
    np.testing.assert_allclose(p2["w"], p1["w"] - 0.1 * 0.9 * g1["w"], rtol=1e-15)


@settings(max_examples=30, deadline=None)
@given(kind=st.sampled_from(sorted(REFS)), seed=st.integers(0, 2**16), lr=st.floats(1e-4, 1.0),
       mu=st.floats(0.0, 0.99), steps=st.integers(1, 5))
def test_optimizer_matches_reference_property(kind, seed, lr, mu, steps):
    p0, gs = random_problem(seed, steps)
    for a, b in zip(run_ours(kind, p0, gs, lr, mu), REFS[kind](p0, gs, lr, mu)):
        for k in a:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", sorted(REFS))
def test_apply_update_follows_the_reference_across_iterations(kind):
    """Through the Simulation: the optimizer state carries over from one apply_update to the next."""
    lr, mu = 0.03, 0.7
    sim = Simulation(small_scenario(**{"training.optimizer": kind, "training.learning_rate": lr,
                                       "training.momentum": mu}))
    p0 = sim.state_dict()
    gs, after = [], []
    for _ in range(4):
        sim.forward()
        sim.backward()
        gs.append({k: v.copy() for k, v in sim.grads.items()})
        sim.apply_update()
        after.append(sim.state_dict())
    # the reference replays the same gradients (each was taken at the weights the Simulation then had)
    for t, (a, b) in enumerate(zip(after, REFS[kind](p0, gs, lr, mu))):
        for k in a:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-12, atol=1e-14, err_msg=f"{kind} iteration {t + 1} {k}")


# ------------------------------------------------------------------------------------------- torch.optim
@pytest.mark.parametrize("kind", sorted(REFS))
def test_optimizer_matches_torch_optim_every_step(kind):
    torch = pytest.importorskip("torch")
    p0, gs = random_problem(2)
    lr, mu = 0.05, 0.8
    tp = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in p0.items()}
    topt = {"sgd": lambda ps: torch.optim.SGD(ps, lr=lr),
            "momentum": lambda ps: torch.optim.SGD(ps, lr=lr, momentum=mu),
            "adam": lambda ps: torch.optim.Adam(ps, lr=lr)}[kind](list(tp.values()))
    ours = run_ours(kind, p0, gs, lr, mu)
    for t, g in enumerate(gs):
        for k, p in tp.items():
            p.grad = torch.tensor(g[k], dtype=torch.float64)
        topt.step()
        for k, p in tp.items():
            np.testing.assert_allclose(ours[t][k], p.detach().numpy(), rtol=1e-12, atol=1e-14,
                                       err_msg=f"{kind} step {t + 1} {k}")


def test_clipping_matches_torch_utils():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    raw = {k: rng.standard_normal(s) * 3 for k, s in SHAPES.items()}
    for mode, theta in (("value", 0.7), ("norm", 2.0)):
        ours = {k: v.copy() for k, v in raw.items()}
        res = clip_(ours, mode, theta)
        tp = [torch.zeros(v.shape, dtype=torch.float64, requires_grad=True) for v in raw.values()]
        for p, v in zip(tp, raw.values()):
            p.grad = torch.tensor(v)
        if mode == "value":
            torch.nn.utils.clip_grad_value_(tp, theta)
            rtol = 0.0
        else:
            tn = torch.nn.utils.clip_grad_norm_(tp, theta)
            assert res.norm == pytest.approx(float(tn), rel=1e-14)
            rtol = 1e-6   # torch scales by θ / (‖g‖ + 1e-6)
        for p, v in zip(tp, ours.values()):
            np.testing.assert_allclose(v, p.grad.numpy(), rtol=rtol, err_msg=mode)


# --------------------------------------------------------------------------------------------- clipping
def test_clip_value_is_elementwise_clamp_to_minus_theta_theta():
    g = np.array([-5.0, -1.0, -0.3, 0.0, 0.2, 0.5, 1.0, 3.0, -0.5, 0.49])
    grads = {"a": g.copy().reshape(2, 5), "b": np.array([-0.1, -7.0])}
    before = {k: v.copy() for k, v in grads.items()}
    res = clip_(grads, "value", 0.5)
    for k in grads:
        np.testing.assert_array_equal(grads[k], np.clip(before[k], -0.5, 0.5), err_msg=k)
    # in-range elements are untouched bit for bit, negatives are clamped to −θ (not 0)
    assert grads["a"].ravel()[2] == -0.3 and grads["a"].ravel()[0] == -0.5 and grads["b"][1] == -0.5
    flat_b = np.concatenate([v.ravel() for v in before.values()])
    flat_a = np.concatenate([v.ravel() for v in grads.values()])
    assert res.clipped and res.norm == pytest.approx(np.linalg.norm(flat_b), rel=1e-15)
    assert res.clipped_norm == pytest.approx(np.linalg.norm(flat_a), rel=1e-15)
    assert res.cosine == pytest.approx(flat_a @ flat_b / (np.linalg.norm(flat_a) * np.linalg.norm(flat_b)), rel=1e-14)


def test_clip_value_all_in_range_changes_nothing():
    grads = {"a": np.array([-0.5, 0.5, -0.25, 0.0])}   # ±θ itself is in range
    res = clip_(grads, "value", 0.5)
    assert not res.clipped and res.cosine == pytest.approx(1.0)
    np.testing.assert_array_equal(grads["a"], [-0.5, 0.5, -0.25, 0.0])


@settings(max_examples=60, deadline=None)
@given(g=hnp.arrays(np.float64, st.integers(1, 30), elements=st.floats(-1e3, 1e3)),
       theta=st.floats(1e-3, 1e2))
def test_clip_value_property(g, theta):
    grads = {"g": g.copy()}
    res = clip_(grads, "value", theta)
    clamped = np.clip(g, -theta, theta)
    np.testing.assert_array_equal(grads["g"], clamped)
    assert res.clipped == bool((np.abs(g) > theta).any())
    assert res.cosine == pytest.approx(exact_cosine(g, clamped), rel=1e-12, abs=1e-15)


def exact_cosine(a, b) -> float:
    """cos(a, b) after scaling each by a power of two (exact, even for subnormals) to its largest element."""
    if not np.abs(a).max() > 0 or not np.abs(b).max() > 0:
        return 1.0
    a = np.ldexp(a, -np.frexp(np.abs(a).max())[1])
    b = np.ldexp(b, -np.frexp(np.abs(b).max())[1])
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("scale", [1e-320, 1e-170, 1e-160, 1.0, 1e150, 1e300])
def test_clip_value_cosine_for_tiny_and_huge_gradients(scale):
    """‖g‖·‖clip(g)‖ underflows to 0 for gradients near 1e-170 and below while both norms are > 0: the cosine
    must still be computed (it was a ZeroDivisionError, found by the property test above)."""
    g = np.array([1.0, -3.0, 0.5, 2.0]) * scale
    grads = {"a": g[:2].copy(), "b": g[2:].copy()}
    res = clip_(grads, "value", 1.5 * scale)
    assert res.clipped and 0.0 < res.norm and 0.0 < res.clipped_norm < res.norm
    assert res.cosine == pytest.approx(exact_cosine(g, np.clip(g, -1.5 * scale, 1.5 * scale)), rel=1e-6)


def test_clip_norm_at_exactly_theta_does_nothing():
    """Pascanu et al. 2013: clip only if ‖g‖ > θ. ‖(3, 4)‖ = 5 exactly in floating point."""
    grads = {"a": np.array([3.0]), "b": np.array([[4.0]])}
    assert global_norm(grads) == 5.0
    res = clip_(grads, "norm", 5.0)
    assert res.clipped is False and res.norm == 5.0 and res.clipped_norm == 5.0
    assert grads["a"][0] == 3.0 and grads["b"][0, 0] == 4.0


@pytest.mark.parametrize("theta, clipped", [(np.nextafter(5.0, 6.0), False), (5.0 + 1e-9, False),
                                            (np.nextafter(5.0, 4.0), True), (5.0 * (1 - 1e-12), True), (4.0, True)],
                         ids=["ulp-above", "above", "ulp-below", "below", "well-below"])
def test_clip_norm_just_below_and_just_above(theta, clipped):
    grads = {"a": np.array([3.0, -4.0])}
    res = clip_(grads, "norm", theta)
    assert res.clipped is clipped and res.norm == 5.0
    if clipped:
        np.testing.assert_allclose(grads["a"], np.array([3.0, -4.0]) * theta / 5.0, rtol=1e-15)
        assert res.clipped_norm == pytest.approx(theta, rel=1e-15)
    else:
        np.testing.assert_array_equal(grads["a"], [3.0, -4.0])


def test_apply_update_reports_no_clip_at_exactly_theta():
    """Through the Simulation: set θ to the raw gradient norm itself; nothing may be reported as clipped."""
    sim = Simulation(small_scenario())
    sim.forward()
    sim.backward()
    norm = global_norm(sim.grads)
    sc = sim.scenario.with_changes({"training.clip": "norm", "training.clip_threshold": norm})
    a = Simulation(sc)
    a.forward()
    a.backward()
    raw = {k: v.copy() for k, v in a.grads.items()}
    info = a.apply_update()
    assert info.grad_norm == norm and info.clipped is False and info.clipped_norm == norm
    for k in raw:
        np.testing.assert_array_equal(a.grads[k], raw[k])


def test_apply_update_value_clip_clamps_negative_gradients():
    probe = Simulation(small_scenario())
    probe.forward()
    probe.backward()
    theta = float(np.median(np.abs(np.concatenate([g.ravel() for g in probe.grads.values()]))))
    sim = Simulation(small_scenario(**{"training.clip": "value", "training.clip_threshold": theta,
                                       "training.learning_rate": 0.1}))
    sim.forward()
    sim.backward()
    raw = {k: v.copy() for k, v in sim.grads.items()}
    flat = np.concatenate([g.ravel() for g in raw.values()])
    assert (flat < -theta).any() and (flat > theta).any() and ((np.abs(flat) < theta) & (flat != 0)).any()
    before = sim.state_dict()
    info = sim.apply_update()
    assert info.clipped and info.clipped_norm < info.grad_norm
    for k in raw:
        expected = np.clip(raw[k], -theta, theta)
        np.testing.assert_array_equal(sim.grads[k], expected, err_msg=k)
        np.testing.assert_allclose(sim.params[k], before[k] - 0.1 * expected, rtol=1e-15, atol=1e-17, err_msg=k)


def test_clip_none_and_unknown_mode():
    grads = {"a": np.array([30.0, -40.0])}
    res = clip_(grads, "none", 1.0)
    assert not res.clipped and res.norm == 50.0 and grads["a"].tolist() == [30.0, -40.0]
    with pytest.raises(ValueError, match="allowed none, norm, value"):
        clip_(grads, "sideways", 1.0)
    assert math.isinf(clip_({"a": np.array([np.inf])}, "norm", 1.0).norm)


def test_global_norm_edge_cases():
    assert global_norm({}) == 0.0
    assert global_norm({"a": np.zeros(0), "b": np.zeros((2, 0))}) == 0.0
    assert global_norm({"a": np.zeros(3), "b": np.zeros(0)}) == 0.0
    assert global_norm({"a": np.array([0.6]), "b": np.array([[0.8]])}) == pytest.approx(1.0, rel=1e-15)
    assert global_norm({"a": np.array([3e-200, 4e-200])}) == pytest.approx(5e-200, rel=1e-15)   # underflows squared
    assert math.isnan(global_norm({"a": np.array([np.nan, 1.0])}))


def test_clip_results_say_nothing_happened_when_nothing_did():
    for mode, theta in (("none", 1.0), ("norm", 100.0)):
        grads = {"a": np.array([30.0, -40.0])}
        res = clip_(grads, mode, theta)
        assert (res.norm, res.clipped_norm, res.clipped, res.cosine) == (50.0, 50.0, False, 1.0), mode
    zero = clip_({"a": np.zeros(3)}, "value", 1.0)
    assert (zero.norm, zero.clipped_norm, zero.clipped, zero.cosine) == (0.0, 0.0, False, 1.0)


def test_value_clip_cosine_never_exceeds_one():
    """Nothing clipped: cos(g, g) is 1 exactly, even where the rounded quotient lands on 1 + 2⁻⁵²."""
    rng = np.random.default_rng(0)
    over = 0
    for _ in range(200):
        g = rng.standard_normal(rng.integers(2, 300))
        over += (g @ g) / (np.linalg.norm(g) * np.linalg.norm(g)) > 1.0
        res = clip_({"g": g.copy()}, "value", 1e3)
        assert not res.clipped and -1.0 <= res.cosine <= 1.0
        assert res.cosine == pytest.approx(1.0, abs=1e-15)
    assert over, "no case where the plain quotient rounds above 1: the clamp goes untested"


def test_make_optimizer_refuses_an_unknown_name():
    bad = TrainingSection.model_construct(optimizer="rmsprop", learning_rate=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop': allowed sgd, momentum, adam"):
        make_optimizer(bad, {"w": np.zeros(2)})
