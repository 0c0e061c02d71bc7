"""Stacked layers against PyTorch: torch.nn.RNN/LSTM/GRU(num_layers=N) gives the same loss, hidden states, dL/dh_t
of every layer, dL/dx_t and parameter gradients (float64, 1e-10); torch modules saved with safetensors load
through ``[model] weights`` and reproduce torch's hidden states (1e-12); rnnsim's saved stacks load back into torch."""

import numpy as np
import pytest

from rnnsim import Simulation, load_scenario
from tests.unit.conftest import small_scenario
from tests.unit.test_weights import scenario_file, torch_state_dict

torch = pytest.importorskip("torch")
st = pytest.importorskip("safetensors.torch")

MODULES = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}


CELLS = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}


def torch_cells(cell, sim, act="tanh"):
    """The network as N torch cells (stepped by hand, so that every h_t of every layer is one node whose grad is
    the total dL/dh_t), loaded from rnnsim's per-layer parameters, plus the readout."""
    kw = {"nonlinearity": act} if cell == "rnn" else {}
    mods = []
    for layer in range(sim.num_layers):
        m = CELLS[cell](sim.D if layer == 0 else sim.H, sim.H, **kw).double()
        m.load_state_dict({k: torch.tensor(v) for k, v in sim.layer_params(layer).items()})
        mods.append(m)
    readout = torch.nn.Linear(sim.H, sim.O).double()
    readout.load_state_dict({k.split(".", 1)[1]: torch.tensor(v) for k, v in sim.params.items()
                             if k.startswith("readout")})
    return mods, readout


def run_cells(cell, mods, x):
    """Every layer's h_t (lists of (B, H) tensors that retain their grad), layer by layer."""
    out, inputs = [], [x[:, t] for t in range(x.shape[1])]
    for m in mods:
        h = torch.zeros(x.shape[0], m.hidden_size, dtype=x.dtype)
        c = torch.zeros_like(h)
        hs = []
        for x_t in inputs:
            if cell == "lstm":
                h, c = m(x_t, (h, c))
            else:
                h = m(x_t, h)
            h.retain_grad()
            hs.append(h)
        out.append(hs)
        inputs = hs
    return out


def torch_loss(sim, out):
    mask = torch.tensor(sim.loss_mask)
    if sim.classification:
        return torch.nn.functional.cross_entropy(out[mask], torch.tensor(sim.targets)[mask])
    return torch.nn.functional.mse_loss(out[mask], torch.tensor(sim.targets)[mask])


@pytest.mark.parametrize("task", ["sine", "copy"])
@pytest.mark.parametrize("N", [2, 3])
@pytest.mark.parametrize("cell,act", [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")])
def test_stack_equals_torch_num_layers(cell, act, N, task):
    extra = {"task.kind": "copy", "task.length": 9, "task.symbols": 2, "task.alphabet": 3} if task == "copy" else {}
    sim = Simulation(small_scenario(**{"model.cell": cell, "model.activation": act, "model.num_layers": N})
                     .with_changes(extra))
    loss = sim.forward()
    sim.backward()

    # 1. one torch.nn.RNN/LSTM/GRU(num_layers=N), loaded with rnnsim's state_dict as it is
    kw = {"nonlinearity": act} if cell == "rnn" else {}
    net = MODULES[cell](sim.D, sim.H, num_layers=N, batch_first=True, **kw).double()
    sd = sim.state_dict()
    res = net.load_state_dict({k: torch.tensor(v) for k, v in sd.items()}, strict=False)
    assert res.missing_keys == [] and sorted(res.unexpected_keys) == ["readout.bias", "readout.weight"]
    _, readout = torch_cells(cell, sim, act)
    x = torch.tensor(np.ascontiguousarray(sim.inputs), requires_grad=True)
    y, _ = net(x)
    tloss = torch_loss(sim, readout(y))
    tloss.backward()
    assert loss == pytest.approx(tloss.item(), rel=1e-12)
    np.testing.assert_allclose(sim.hidden, y.detach().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(sim.grad_inputs, x.grad.numpy(), rtol=1e-10, atol=1e-14)
    for k, v in net.named_parameters():
        np.testing.assert_allclose(sim.grads[k], v.grad.numpy(), rtol=1e-10, atol=1e-14, err_msg=k)

    # 2. every layer's total dL/dh_t (through the readout or the layer above, and through the recurrence): the
    # same network as N torch cells stepped by hand, each h_t retaining its grad (nn.LSTM's output grad would be
    # the part from above only)
    mods, readout = torch_cells(cell, sim, act)
    hs = run_cells(cell, mods, torch.tensor(np.ascontiguousarray(sim.inputs)))
    torch_loss(sim, readout(torch.stack(hs[-1], 1))).backward()
    for layer, h in enumerate(hs):
        np.testing.assert_allclose(sim.layer_hidden[layer], torch.stack(h, 1).detach().numpy(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(sim.layer_grad_hidden[layer], torch.stack([v.grad for v in h], 1).numpy(),
                                   rtol=1e-10, atol=1e-14, err_msg=layer)


@pytest.mark.parametrize("cell", sorted(MODULES))
@pytest.mark.parametrize("N", [1, 3])
@pytest.mark.parametrize("fmt", ["safetensors", "npz"])
def test_torch_stack_through_a_weights_file_reproduces_its_hidden_states(tmp_path, cell, N, fmt):
    torch.manual_seed(7)
    net = MODULES[cell](1, 6, num_layers=N, batch_first=True).double()
    sd = net.state_dict()
    if fmt == "safetensors":
        st.save_file(sd, str(tmp_path / "w.safetensors"))
    else:
        np.savez(tmp_path / "w.npz", **{k: v.numpy() for k, v in sd.items()})
    sim = Simulation(load_scenario(str(scenario_file(tmp_path, f"w.{fmt}", cell=cell, extra=f"num_layers = {N}"))))
    for k, v in sd.items():
        np.testing.assert_array_equal(sim.params[k if N > 1 else k.removesuffix("_l0")], v.numpy())
    sim.forward()
    expected, _ = net(torch.tensor(np.ascontiguousarray(sim.inputs)))
    np.testing.assert_allclose(sim.hidden, expected.detach().numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("fmt", ["safetensors", "npz"])
def test_saved_stack_loads_into_torch_lstm_num_layers(tmp_path, fmt):
    sc = small_scenario(**{"model.cell": "lstm", "model.num_layers": 3})
    sim = Simulation(sc)
    sim.train(3)
    path = tmp_path / f"stack.{fmt}"
    sim.save_weights(path)
    sd = torch_state_dict(path)
    net = torch.nn.LSTM(sim.D, sim.H, num_layers=3, batch_first=True).double()
    res = net.load_state_dict(sd, strict=False)
    assert res.missing_keys == [] and sorted(res.unexpected_keys) == ["readout.bias", "readout.weight"]
    sim.forward()
    y, _ = net(torch.tensor(np.ascontiguousarray(sim.inputs)))
    np.testing.assert_allclose(y.detach().numpy(), sim.hidden, rtol=0, atol=1e-12)
    again = Simulation(sc.with_changes({"model.weights": str(path)}))   # and back into rnnsim
    for k, v in sim.params.items():
        np.testing.assert_array_equal(again.params[k], v)


def test_a_bad_tensor_of_an_upper_layer_is_named_with_the_shape_it_should_have(tmp_path):
    from tests.unit.refusal import refusal

    sd = dict(torch.nn.LSTM(1, 6, num_layers=2).double().state_dict())
    sd["weight_ih_l1"] = torch.zeros(24, 3, dtype=torch.float64)   # layer 1 reads layer 0's h_t: (4·H, H)
    st.save_file(sd, str(tmp_path / "w.safetensors"))
    refusal(scenario_file(tmp_path, "w.safetensors", extra="num_layers = 2"), "tensor 'weight_ih_l1' has shape (24, 3)",
            "the scenario implies (24, 6) = 4·H × H for cell lstm")
    del sd["weight_ih_l1"]
    st.save_file(sd, str(tmp_path / "w.safetensors"))
    refusal(scenario_file(tmp_path, "w.safetensors", extra="num_layers = 2"), "tensor 'weight_ih_l1' is missing")
