import math

import numpy as np
import pytest

from rnnsim import Simulation, diagnostics
from tests.unit.conftest import small_scenario


def test_step_jacobians_match_finite_differences(config):
    """∂s_t/∂s_{t-1} from the analytic formula equals a central difference through the cell's own kernel."""
    _, changes = config
    sim = Simulation(small_scenario(**changes))
    sim.forward()
    ws, H, t = sim.workspace, sim.H, 4
    lstm = sim.cell_name == "lstm"
    J = diagnostics.step_jacobians(sim, t, slice(0, 1))[0]
    S = 2 * H if lstm else H
    num = np.zeros((S, S))
    eps = 1e-6
    saved = {k: getattr(ws, k).copy() for k in ("h", "c", "gates", "ahat", "rstd", "ghn") if hasattr(ws, k)}

    def state_after(delta):
        for k, v in saved.items():
            getattr(ws, k)[:] = v
        if j < H:
            ws.h[t - 1, 0, j] += delta
        else:
            ws.c[t - 1, 0, j - H] += delta
        sim._cell.run_forward(ws, sim.params, sim.scenario.model, t, t + 1)
        return np.concatenate([ws.h[t, 0], ws.c[t, 0]]) if lstm else ws.h[t, 0].copy()

    for j in range(S):
        num[:, j] = (state_after(eps) - state_after(-eps)) / (2 * eps)
    np.testing.assert_allclose(J, num, atol=1e-8)


def test_jacobian_norms_and_profile_for_vanishing_rnn():
    sim = Simulation(small_scenario(**{"model.init": "orthogonal", "model.recurrent_scale": 0.5,
                                       "task.kind": "random", "task.length": 30}))
    assert np.isnan(diagnostics.jacobian_norms(sim)).all()
    sim.forward()
    sim.backward()
    jn = diagnostics.jacobian_norms(sim)
    assert np.isfinite(jn).all() and (jn < 0.5 + 1e-12).all()   # ‖diag(1−h²) W‖ ≤ σ_max = 0.5
    prof = diagnostics.gradient_profile(sim)
    assert (np.diff(prof) > 0).all()                              # shrinking back in time
    s = diagnostics.decay_summary(prof)
    assert s.ratio == pytest.approx(prof[0] / prof[-1]) and s.rate < 0.5
    assert s.t_at_1e3 is not None and prof[s.t_at_1e3] <= 1e-3 * prof[-1] < prof[s.t_at_1e3 + 1]
    assert "per step" in s.text and f"t = {s.t_at_1e3}" in s.text


def test_diagnostics_still_describe_the_last_pass_after_train():
    sim = Simulation(small_scenario(**{"model.cell": "gru"}))
    sim.train(2)
    prof = diagnostics.gradient_profile(sim)
    np.testing.assert_allclose(prof, np.linalg.norm(sim.grad_hidden, axis=2).mean(0))
    assert np.isfinite(diagnostics.jacobian_norms(sim)).all()
    assert np.isfinite(diagnostics.input_influence(sim)).all()
    sim.step_forward()   # a new pass begins: the old BPTT arrays no longer describe it
    assert np.isnan(diagnostics.gradient_profile(sim)).all()
    assert np.isfinite(diagnostics.jacobian_norms(sim)[:1]).all() and np.isnan(diagnostics.jacobian_norms(sim)[1:]).all()


def test_decay_summary_growth_and_incomplete():
    grow = diagnostics.decay_summary(1.1 ** np.arange(20)[::-1])
    assert grow.rate == pytest.approx(1.1) and grow.t_at_1e3 is None and "grows" in grow.text
    part = diagnostics.decay_summary(np.array([np.nan, 1.0, 2.0]))
    assert math.isnan(part.ratio)


def test_spectrum_and_pascanu_verdict():
    low = Simulation(small_scenario(**{"model.init": "orthogonal", "model.recurrent_scale": 0.9}))
    s = diagnostics.spectrum(low)
    assert s.sigma_max == pytest.approx(0.9) and s.radius == pytest.approx(0.9)
    assert s.verdict.startswith("vanishing guaranteed")
    high = Simulation(small_scenario(**{"model.init": "orthogonal", "model.recurrent_scale": 1.5}))
    assert diagnostics.spectrum(high).verdict.startswith("exploding possible")
    assert "gated" in diagnostics.spectrum(Simulation(small_scenario(**{"model.cell": "lstm"}))).verdict


def test_gate_means_and_input_influence():
    sim = Simulation(small_scenario(**{"model.cell": "lstm", "model.forget_bias": 3.0}))
    sim.step_forward()
    sim.step_forward()
    g = diagnostics.gate_means(sim)
    assert set(g) == {"input", "forget", "output"}
    assert np.isfinite(g["forget"][:2]).all() and np.isnan(g["forget"][2:]).all()
    assert g["forget"][0] > 0.9   # σ(3 + small) ≈ 0.95
    sim.forward()
    sim.backward()
    infl = diagnostics.input_influence(sim)
    np.testing.assert_allclose(infl, np.linalg.norm(sim.grad_inputs, axis=2).mean(0))
    share = diagnostics.influence_share_last(infl, 0.1)
    assert 0 < share < 1
    idle = diagnostics.gate_means(Simulation(small_scenario(**{"model.cell": "gru"})))
    assert set(idle) == {"reset", "update"} and all(np.isnan(v).all() for v in idle.values())
    assert diagnostics.gate_means(Simulation(small_scenario())) == {}


def test_memory_capacity_is_bounded_by_h_and_grows_with_h():
    """Jaeger (2001): MC = Σ_k r²(u_{t−k}, readout of h_t) ≤ H; measured held out, so no overfitting past H."""
    sc = small_scenario(**{"model.init": "orthogonal", "model.recurrent_scale": 0.95})
    totals = []
    for H in (4, 8, 16, 32):
        mc = diagnostics.memory_capacity(sc.with_changes({"model.hidden_size": H}), length=3000)
        assert len(mc.per_delay) == 2 * H and ((0 <= mc.per_delay) & (mc.per_delay <= 1)).all()
        assert mc.total <= H
        totals.append(mc.total)
    assert all(b > a for a, b in zip(totals, totals[1:]))
    assert totals[-1] > 0.6 * 32          # a near-orthogonal tanh RNN uses most of its state
    # a network that forgets fast has less: recurrent scale 0.3 keeps little beyond the last few inputs
    forgetful = diagnostics.memory_capacity(sc.with_changes({"model.hidden_size": 32, "model.recurrent_scale": 0.3}))
    assert forgetful.total < 0.5 * totals[-1]
