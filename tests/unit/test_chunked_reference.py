"""Chunked mode (gates recomputed in BPTT, and for the diagnostics) against references that do not share its code
(issue 17): gradients against central differences of the loss, which only the forward pass computes, and against
torch autograd; step Jacobians against central differences of a plain NumPy cell step. With a large bias_hh, so a
recompute that drops it cannot hide."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import numpy as np
import pytest

import rnnsim
from rnnsim import Simulation, diagnostics
from tests.unit.conftest import small_scenario
from tests.unit.test_diagnostics_reference import fd_jacobian


def _knob_modules():
    """Every loaded rnnsim module (outside the TUI) that holds the chunking knobs, wherever they live now."""
    for info in pkgutil.walk_packages(rnnsim.__path__, "rnnsim."):
        if ".tui" not in info.name and info.name.startswith(("rnnsim.cells", "rnnsim.kernels")):
            importlib.import_module(info.name)
    return [m for name, m in sorted(sys.modules.items())
            if name.startswith("rnnsim.") and hasattr(m, "CACHE_LIMIT") and hasattr(m, "CHUNK_STEPS")]


@pytest.fixture
def chunked(monkeypatch):
    """Every Simulation built in the test runs chunked with 3 steps per chunk (T = 7: 3 does not divide it)."""
    mods = _knob_modules()
    assert mods, "no module holds CACHE_LIMIT and CHUNK_STEPS: update this fixture to the new knobs"
    for m in mods:
        monkeypatch.setattr(m, "CACHE_LIMIT", -1)
        monkeypatch.setattr(m, "CHUNK_STEPS", 3)


def _sim(cell, **extra):
    sim = Simulation(small_scenario(**{"model.cell": cell, **extra}))
    sd = sim.state_dict()
    sd["bias_hh"] = np.random.default_rng(7).uniform(-1.5, 1.5, sd["bias_hh"].shape)   # large and all different
    sim.load_state_dict(sd)
    return sim


def _loss_at(sim, name, idx, value):
    old = sim.params[name][idx]
    sim.params[name][idx] = value
    try:
        return sim.forward()
    finally:
        sim.params[name][idx] = old


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_chunked_gradients_match_finite_differences_of_the_loss(cell, chunked):
    sim = _sim(cell)
    assert sim.workspace.K == 3
    sim.forward()
    sim.backward()
    grads = {k: v.copy() for k, v in sim.grads.items()}
    rng = np.random.default_rng(0)
    eps = 1e-6
    for name in ("bias_hh", "weight_hh", "bias_ih", "weight_ih"):
        p = sim.params[name]
        flat = range(p.size) if name == "bias_hh" else rng.choice(p.size, 8, replace=False)
        for f in flat:
            idx = np.unravel_index(f, p.shape)
            v = p[idx]
            num = (_loss_at(sim, name, idx, v + eps) - _loss_at(sim, name, idx, v - eps)) / (2 * eps)
            assert grads[name][idx] == pytest.approx(num, rel=1e-5, abs=1e-9), f"{cell} {name}{idx}"


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_chunked_gradients_match_torch_autograd(cell, chunked):
    torch = pytest.importorskip("torch")
    sim = _sim(cell)
    sim.forward()
    sim.backward()
    sd = sim.state_dict()
    tcell = {"lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}[cell](sim.D, sim.H).double()
    tcell.load_state_dict({k: torch.tensor(v) for k, v in sd.items() if not k.startswith("readout")})
    W = torch.tensor(sd["readout.weight"], requires_grad=True)
    b = torch.tensor(sd["readout.bias"], requires_grad=True)
    x = torch.tensor(np.ascontiguousarray(sim.inputs))
    h = torch.zeros(sim.B, sim.H, dtype=torch.float64)
    c = torch.zeros_like(h)
    outs = []
    for t in range(sim.T):
        if cell == "lstm":
            h, c = tcell(x[:, t], (h, c))
        else:
            h = tcell(x[:, t], h)
        outs.append(h @ W.T + b)
    out = torch.stack(outs, 1)
    mask = torch.tensor(sim.loss_mask)
    loss = torch.nn.functional.mse_loss(out[mask], torch.tensor(sim.targets)[mask])
    loss.backward()
    assert sim.loss == pytest.approx(loss.item(), rel=1e-12)
    for name, p in tcell.named_parameters():
        np.testing.assert_allclose(sim.grads[name], p.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=f"{cell} {name}")


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_chunked_step_jacobians_and_gate_means_match_references(cell, chunked):
    sim = _sim(cell)
    sim.forward()
    H = sim.H
    for t in range(sim.T):
        J = diagnostics.step_jacobians(sim, t, slice(0, sim.B))
        ref = np.stack([fd_jacobian(sim, t, b) for b in range(sim.B)])
        np.testing.assert_allclose(J, ref, atol=1e-7, err_msg=f"{cell} t = {t}")
    norms = diagnostics.jacobian_norms(sim)
    for t in range(sim.T):
        assert norms[t] == pytest.approx(np.mean([np.linalg.norm(fd_jacobian(sim, t, b), 2) for b in range(sim.B)]),
                                         rel=1e-6)
    # gate means from the gates recomputed with NumPy from the public arrays
    p = sim.params
    h_prev = np.concatenate([np.zeros((sim.B, 1, H)), sim.hidden[:, :-1]], axis=1)
    a = sim.inputs @ p["weight_ih"].T + p["bias_ih"]
    gh = h_prev @ p["weight_hh"].T + p["bias_hh"]
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    g = diagnostics.gate_means(sim)
    if cell == "lstm":
        z = a + gh
        expect = {"input": sig(z[..., :H]), "forget": sig(z[..., H:2 * H]), "output": sig(z[..., 3 * H:])}
    else:
        expect = {"reset": sig(a[..., :H] + gh[..., :H]), "update": sig(a[..., H:2 * H] + gh[..., H:2 * H])}
    assert set(g) == set(expect)
    for k, v in expect.items():
        np.testing.assert_allclose(g[k], v.mean(axis=(0, 2)), rtol=1e-12, err_msg=k)
