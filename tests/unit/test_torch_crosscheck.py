"""An independent implementation: PyTorch's cells, loaded with our state_dict, must give the same numbers (1e-10)."""

import numpy as np
import pytest

from rnnsim import Simulation
from tests.unit.conftest import small_scenario

torch = pytest.importorskip("torch")

TORCH_CELLS = {
    ("rnn", "tanh"): lambda D, H: torch.nn.RNNCell(D, H, nonlinearity="tanh"),
    ("rnn", "relu"): lambda D, H: torch.nn.RNNCell(D, H, nonlinearity="relu"),
    ("lstm", "tanh"): lambda D, H: torch.nn.LSTMCell(D, H),
    ("gru", "tanh"): lambda D, H: torch.nn.GRUCell(D, H),
}


@pytest.mark.parametrize("cell,act", sorted(TORCH_CELLS))
@pytest.mark.parametrize("task", ["sine", "copy"])
def test_matches_torch_cells(cell, act, task):
    extra = {"task.kind": "copy", "task.length": 9, "task.symbols": 2, "task.alphabet": 3} if task == "copy" else {}
    sim = Simulation(small_scenario(**{"model.cell": cell, "model.activation": act}).with_changes(extra))
    loss = sim.forward()
    sim.backward()

    torch.set_default_dtype(torch.float64)
    tcell = TORCH_CELLS[(cell, act)](sim.D, sim.H)
    readout = torch.nn.Linear(sim.H, sim.O)
    sd = sim.state_dict()
    tcell.load_state_dict({k: torch.tensor(v) for k, v in sd.items() if not k.startswith("readout")})
    readout.load_state_dict({k.split(".", 1)[1]: torch.tensor(v) for k, v in sd.items() if k.startswith("readout")})

    x = torch.tensor(np.ascontiguousarray(sim.inputs), requires_grad=True)
    h = torch.zeros(sim.B, sim.H)
    c = torch.zeros(sim.B, sim.H)
    hs, outs = [], []
    for t in range(sim.T):
        if cell == "lstm":
            h, c = tcell(x[:, t], (h, c))
        else:
            h = tcell(x[:, t], h)
        h.retain_grad()
        hs.append(h)
        outs.append(readout(h))
    out = torch.stack(outs, dim=1)
    mask = torch.tensor(sim.loss_mask)
    if sim.classification:
        tloss = torch.nn.functional.cross_entropy(out[mask], torch.tensor(sim.targets)[mask])
    else:
        tloss = torch.nn.functional.mse_loss(out[mask], torch.tensor(sim.targets)[mask])
    tloss.backward()

    assert loss == pytest.approx(tloss.item(), rel=1e-12)
    np.testing.assert_allclose(sim.hidden, torch.stack(hs, 1).detach().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(sim.grad_hidden, torch.stack([h.grad for h in hs], 1).numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(sim.grad_inputs, x.grad.numpy(), rtol=1e-10, atol=1e-14)
    named = dict(tcell.named_parameters()) | {f"readout.{k}": v for k, v in readout.named_parameters()}
    for k, v in named.items():
        np.testing.assert_allclose(sim.grads[k], v.grad.numpy(), rtol=1e-10, atol=1e-14, err_msg=k)


def test_state_dict_of_torch_layer_loads_after_dropping_l0_suffix():
    torch.set_default_dtype(torch.float64)
    sim = Simulation(small_scenario(**{"model.cell": "lstm"}))
    layer = torch.nn.LSTM(sim.D, sim.H, batch_first=True)
    sd = {k.removesuffix("_l0"): v for k, v in layer.state_dict().items()}
    sd |= {k: torch.tensor(v) for k, v in sim.state_dict().items() if k.startswith("readout")}
    sim.load_state_dict(sd)
    sim.forward()
    expected, _ = layer(torch.tensor(np.ascontiguousarray(sim.inputs)))
    np.testing.assert_allclose(sim.hidden, expected.detach().numpy(), rtol=0, atol=1e-12)
