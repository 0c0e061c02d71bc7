"""[model] weights, Simulation.save_weights and --save-weights (rnnsim/weights.py), against real PyTorch files."""

import os
import pickle

import numpy as np
import pytest

from rnnsim import Simulation, load_scenario
from rnnsim.cells import init_params
from rnnsim.scenario import Scenario, task_dims
from tests.unit.refusal import refusal
from rnnsim.weights import expected_shapes

torch = pytest.importorskip("torch")
st = pytest.importorskip("safetensors.torch")


def scenario_file(tmp_path, weights, cell="lstm", H=6, extra="", task='kind = "sine"\nlength = 9\nbatch_size = 3'):
    text = f'[scenario]\nseed = 2\n[model]\ncell = "{cell}"\nhidden_size = {H}\nweights = "{weights}"\n{extra}\n[task]\n{task}\n'
    path = tmp_path / "scen.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "attention"])
@pytest.mark.parametrize("readout", ["linear", "attention"])
@pytest.mark.parametrize("layernorm", [False, True])
def test_expected_shapes_are_init_params_shapes(cell, readout, layernorm):
    if cell == "attention" and readout == "attention":
        pytest.skip("the attention cell takes the linear readout only")
    sc = Scenario().with_changes({"model.cell": cell, "model.readout": readout, "model.layernorm": layernorm,
                                  "model.hidden_size": 7, "task.kind": "random", "task.input_size": 3})
    D, O, _ = task_dims(sc.task)
    shapes, how = expected_shapes(sc.model, D, O)
    assert shapes == {k: v.shape for k, v in init_params(sc.model, D, O, 0, np.float64).items()}
    assert set(how) == set(shapes)


TORCH = {
    "rnn": (torch.nn.RNNCell, torch.nn.RNN),
    "lstm": (torch.nn.LSTMCell, torch.nn.LSTM),
    "gru": (torch.nn.GRUCell, torch.nn.GRU),
}


def torch_forward(cell, module, x):
    """Hidden states (B, T, H) of a torch cell or layer on x (B, T, D), float64."""
    if isinstance(module, (torch.nn.RNN, torch.nn.LSTM, torch.nn.GRU)):
        return module(x)[0]
    B, T, _ = x.shape
    h = torch.zeros(B, module.hidden_size, dtype=x.dtype)
    c = torch.zeros_like(h)
    out = []
    for t in range(T):
        if cell == "lstm":
            h, c = module(x[:, t], (h, c))
        else:
            h = module(x[:, t], h)
        out.append(h)
    return torch.stack(out, 1)


@pytest.mark.parametrize("cell", sorted(TORCH))
@pytest.mark.parametrize("layer", [False, True], ids=["Cell", "layer_l0"])
@pytest.mark.parametrize("fmt", ["safetensors", "npz"])
def test_torch_saved_weights_reproduce_torch_hidden_states(tmp_path, cell, layer, fmt):
    torch.manual_seed(5)
    make = TORCH[cell][1] if layer else TORCH[cell][0]
    module = make(1, 6, batch_first=True).double() if layer else make(1, 6).double()
    sd = module.state_dict()
    assert any(k.endswith("_l0") for k in sd) == layer
    if fmt == "safetensors":
        st.save_file(sd, str(tmp_path / "w.safetensors"))
    else:
        np.savez(tmp_path / "w.npz", **{k: v.numpy() for k, v in sd.items()})
    sim = Simulation(load_scenario(str(scenario_file(tmp_path, f"w.{fmt}", cell=cell))))
    for k, v in sd.items():
        np.testing.assert_array_equal(sim.params[k.removesuffix("_l0")], v.numpy())
    sim.forward()
    expected = torch_forward(cell, module, torch.tensor(np.ascontiguousarray(sim.inputs)))
    np.testing.assert_allclose(sim.hidden, expected.detach().numpy(), rtol=0, atol=1e-12)


def test_lstm_from_safetensors_gradients_equal_torch(tmp_path):
    """A torch.nn.LSTM + nn.Linear saved by safetensors.torch.save_file: rnnsim's loss and every gradient equal
    torch's autograd on the same batch (float64)."""
    torch.manual_seed(1)
    lstm = torch.nn.LSTM(1, 6, batch_first=True).double()
    readout = torch.nn.Linear(6, 1).double()
    sd = dict(lstm.state_dict()) | {f"readout.{k}": v for k, v in readout.state_dict().items()}
    st.save_file(sd, str(tmp_path / "lstm.safetensors"))
    sim = Simulation(load_scenario(str(scenario_file(tmp_path, "lstm.safetensors"))))
    loss = sim.forward()
    sim.backward()

    x = torch.tensor(np.ascontiguousarray(sim.inputs))
    out = readout(lstm(x)[0])
    mask = torch.tensor(sim.loss_mask)
    tloss = torch.nn.functional.mse_loss(out[mask], torch.tensor(sim.targets)[mask])
    tloss.backward()
    assert loss == pytest.approx(tloss.item(), rel=1e-12)
    for name, p in list(lstm.named_parameters()) + [(f"readout.{k}", v) for k, v in readout.named_parameters()]:
        np.testing.assert_allclose(sim.grads[name.removesuffix("_l0")], p.grad.numpy(), rtol=1e-10, atol=1e-14,
                                   err_msg=name)


def test_readout_is_optional_and_kept_from_the_init(tmp_path):
    lstm = torch.nn.LSTM(1, 6).double()
    st.save_file(lstm.state_dict(), str(tmp_path / "w.safetensors"))
    sc = load_scenario(str(scenario_file(tmp_path, "w.safetensors")))
    sim = Simulation(sc)
    fresh = Simulation(sc.with_changes({"model.weights": None}))
    np.testing.assert_array_equal(sim.params["readout.weight"], fresh.params["readout.weight"])
    assert not np.array_equal(sim.params["weight_hh"], fresh.params["weight_hh"])


def test_a_whole_model_state_dict_with_a_prefix_loads(tmp_path):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(1, 6, batch_first=True)
            self.readout = torch.nn.Linear(6, 1)

    net = Net().double()
    st.save_file(net.state_dict(), str(tmp_path / "net.safetensors"))
    sim = Simulation(load_scenario(str(scenario_file(tmp_path, "net.safetensors"))))
    np.testing.assert_array_equal(sim.params["weight_hh"], net.lstm.weight_hh_l0.detach().numpy())
    np.testing.assert_array_equal(sim.params["readout.weight"], net.readout.weight.detach().numpy())


def torch_state_dict(path):
    """A file --save-weights wrote, read back as torch reads a state_dict: safetensors.torch, or the .npz's arrays as
    tensors."""
    if str(path).endswith(".safetensors"):
        return st.load_file(str(path))
    with np.load(path, allow_pickle=False) as z:
        return {k: torch.tensor(z[k]) for k in z.files}


@pytest.mark.parametrize("fmt", ["safetensors", "npz"])
def test_saved_weights_load_into_torch_lstm_and_lstmcell(tmp_path, fmt):
    sc = Scenario().with_changes({"model.cell": "lstm", "model.hidden_size": 5, "task.kind": "sine",
                                  "task.length": 8, "task.batch_size": 2})
    sim = Simulation(sc)
    sim.train(3)
    path = tmp_path / f"trained.{fmt}"
    sim.save_weights(path)
    sd = torch_state_dict(path)
    assert set(sd) == {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "readout.weight", "readout.bias"}
    lstm = torch.nn.LSTM(1, 5, batch_first=True).double()
    res = lstm.load_state_dict(sd, strict=False)
    assert res.missing_keys == [] and sorted(res.unexpected_keys) == ["readout.bias", "readout.weight"]
    cell = torch.nn.LSTMCell(1, 5).double()
    cell.load_state_dict({k.removesuffix("_l0"): v for k, v in sd.items() if not k.startswith("readout")})
    sim.forward()
    x = torch.tensor(np.ascontiguousarray(sim.inputs))
    np.testing.assert_allclose(lstm(x)[0].detach().numpy(), sim.hidden, rtol=0, atol=1e-12)
    np.testing.assert_allclose(torch_forward("lstm", cell, x).detach().numpy(), sim.hidden, rtol=0, atol=1e-12)
    # and back into rnnsim: the same parameters
    again = Simulation(sc.with_changes({"model.weights": str(path)}))
    for k, v in sim.params.items():
        np.testing.assert_array_equal(again.params[k], v)


def test_save_is_atomic(tmp_path, monkeypatch):
    import safetensors.numpy

    sim = Simulation(Scenario().with_changes({"task.length": 5, "task.batch_size": 2}))
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"old")

    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(safetensors.numpy, "save", boom)
    with pytest.raises(RuntimeError):
        sim.save_weights(path)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["w.safetensors"]
    monkeypatch.undo()
    sim.save_weights(path)
    assert set(st.load_file(str(path))) >= {"weight_hh_l0", "readout.weight"}
    assert os.listdir(tmp_path) == ["w.safetensors"]


# ---------------------------------------------------------------------------------------------- bad files
def lstm_sd(H=6, D=1):
    return torch.nn.LSTM(D, H).double().state_dict()


def test_shape_mismatch_names_file_tensor_found_and_implied(tmp_path):
    st.save_file(lstm_sd(H=8), str(tmp_path / "w.safetensors"))
    refusal(scenario_file(tmp_path, "w.safetensors", H=6), "scen.toml: model.weights = 'w.safetensors'",
            "'weight_ih_l0' has shape (32, 1)", "implies (24, 1) = 4·H × D", "cell lstm", "H = model.hidden_size = 6")


def test_wrong_cell_is_refused(tmp_path):
    st.save_file(lstm_sd(), str(tmp_path / "w.safetensors"))
    refusal(scenario_file(tmp_path, "w.safetensors", cell="gru"), "'weight_ih_l0' has shape (24, 1)",
            "implies (18, 1) = 3·H × D for cell gru")


def test_missing_tensor(tmp_path):
    sd = dict(lstm_sd())
    del sd["bias_hh_l0"]
    st.save_file(sd, str(tmp_path / "w.safetensors"))
    refusal(scenario_file(tmp_path, "w.safetensors"), "tensor 'bias_hh' (or bias_hh_l0) is missing", "shape (24,)")


def test_partial_readout_is_missing_tensor(tmp_path):
    sd = dict(lstm_sd()) | {"readout.weight": torch.zeros(1, 6, dtype=torch.float64)}
    st.save_file(sd, str(tmp_path / "w.safetensors"))
    refusal(scenario_file(tmp_path, "w.safetensors"), "'readout.bias'", "missing", "all of it or none")


def test_extra_tensors_are_listed(tmp_path):
    sd = dict(lstm_sd()) | {"fc.weight": torch.zeros(2, 6), "emb.weight": torch.zeros(3, 3)}
    st.save_file(sd, str(tmp_path / "w.safetensors"))
    refusal(scenario_file(tmp_path, "w.safetensors"), "unexpected tensors 'emb.weight', 'fc.weight'",
            "allowed for cell lstm: weight_ih[_l0]")


def test_a_layer_count_other_than_num_layers_is_refused_naming_both(tmp_path):
    st.save_file(torch.nn.LSTM(1, 6, num_layers=2).double().state_dict(), str(tmp_path / "w.safetensors"))
    refusal(scenario_file(tmp_path, "w.safetensors"), "the file holds 2 recurrent layers", "'weight_hh_l1'",
            "model.num_layers = 1", "set model.num_layers = 2")
    refusal(scenario_file(tmp_path, "w.safetensors", extra="num_layers = 3"), "the file holds 2 recurrent layers",
            "model.num_layers = 3")
    st.save_file(torch.nn.LSTMCell(1, 6).double().state_dict(), str(tmp_path / "c.safetensors"))
    refusal(scenario_file(tmp_path, "c.safetensors", extra="num_layers = 2"), "the file holds 1 recurrent layer;",
            "model.num_layers = 2")


def test_non_float_dtype(tmp_path):
    sd = dict(lstm_sd())
    sd["bias_ih_l0"] = torch.arange(24)
    st.save_file(sd, str(tmp_path / "w.safetensors"))
    refusal(scenario_file(tmp_path, "w.safetensors"), "tensor 'bias_ih_l0' has dtype I64", "allowed: F16, F32, F64")
    np.savez(tmp_path / "w.npz", **({k: v.numpy() for k, v in lstm_sd().items()} | {"bias_ih_l0": np.arange(24)}))
    refusal(scenario_file(tmp_path, "w.npz"), "tensor 'bias_ih_l0' has dtype int64", "allowed: float16")


def test_bfloat16_says_how_to_convert(tmp_path):
    st.save_file({k: v.to(torch.bfloat16) for k, v in lstm_sd().items()}, str(tmp_path / "w.safetensors"))
    refusal(scenario_file(tmp_path, "w.safetensors"), "dtype BF16", "tensor.float()")


def test_float32_file_loads_into_float64(tmp_path):
    sd = torch.nn.LSTM(1, 6).state_dict()   # float32
    st.save_file(sd, str(tmp_path / "w.safetensors"))
    sim = Simulation(load_scenario(str(scenario_file(tmp_path, "w.safetensors"))))
    assert sim.params["weight_hh"].dtype == np.float64
    np.testing.assert_array_equal(sim.params["weight_hh"], sd["weight_hh_l0"].numpy().astype(np.float64))


def test_pickle_renamed_safetensors(tmp_path):
    torch.save(lstm_sd(), tmp_path / "w.safetensors")
    refusal(scenario_file(tmp_path, "w.safetensors"), "not a safetensors file", "torch.save",
            "safetensors.torch.save_file")
    (tmp_path / "w.safetensors").write_bytes(pickle.dumps({"weight_hh": np.zeros(3)}))
    refusal(scenario_file(tmp_path, "w.safetensors"), "Python pickle, which rnnsim never loads")


def test_pickled_npz_and_object_arrays(tmp_path):
    (tmp_path / "w.npz").write_bytes(pickle.dumps({"weight_hh": np.zeros(3)}))
    refusal(scenario_file(tmp_path, "w.npz"), "pickled data, which rnnsim never loads")
    np.savez(tmp_path / "w.npz", weight_hh=np.array([{"a": 1}], dtype=object))
    refusal(scenario_file(tmp_path, "w.npz"), "'weight_hh' is an object array")


def test_corrupt_files(tmp_path):
    st.save_file(lstm_sd(), str(tmp_path / "w.safetensors"))
    data = (tmp_path / "w.safetensors").read_bytes()
    (tmp_path / "w.safetensors").write_bytes(data[:100])
    refusal(scenario_file(tmp_path, "w.safetensors"), "not a valid safetensors file")
    (tmp_path / "w.safetensors").write_bytes(b"")
    refusal(scenario_file(tmp_path, "w.safetensors"), "not a valid safetensors file")
    (tmp_path / "w.npz").write_bytes(b"PK\x03\x04 truncated zip")
    refusal(scenario_file(tmp_path, "w.npz"), "not a valid .npz archive")


def test_nan_weights_missing_file_and_suffix(tmp_path):
    sd = dict(lstm_sd())
    sd["weight_hh_l0"] = sd["weight_hh_l0"].clone()
    sd["weight_hh_l0"][0, 0] = float("nan")
    st.save_file(sd, str(tmp_path / "w.safetensors"))
    refusal(scenario_file(tmp_path, "w.safetensors"), "'weight_hh_l0' has non-finite values")
    refusal(scenario_file(tmp_path, "nope.safetensors"), "no such file", str(tmp_path / "nope.safetensors"))
    refusal(scenario_file(tmp_path, "w.pt"), "unknown file type '.pt'", "allowed: .safetensors, .npz")


def test_escape_bytes_in_tensor_names_are_escaped(tmp_path):
    sd = dict(lstm_sd()) | {"evil\x1b[31m": torch.zeros(1)}
    st.save_file(sd, str(tmp_path / "w.safetensors"))
    msg = refusal(scenario_file(tmp_path, "w.safetensors"), "unexpected tensors")
    assert "\\x1b[31m" in msg


def test_missing_safetensors_names_the_extra(tmp_path, monkeypatch):
    import sys

    st.save_file(lstm_sd(), str(tmp_path / "w.safetensors"))
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    refusal(scenario_file(tmp_path, "w.safetensors"), "needs the 'data' extra", "pip install 'rnnsim[data]'")


# ---------------------------------------------------------------------------------------------- command line
def test_cli_run_loads_and_saves_weights(tmp_path):
    from click.testing import CliRunner

    from rnnsim.cli import cli

    torch.manual_seed(0)
    lstm = torch.nn.LSTM(1, 6, batch_first=True).double()
    st.save_file(lstm.state_dict(), str(tmp_path / "w.safetensors"))
    path = scenario_file(tmp_path, "w.safetensors")
    out = tmp_path / "trained.safetensors"
    res = CliRunner().invoke(cli, ["run", str(path), "-n", "2", "--save-weights", str(out)])
    assert res.exit_code == 0, res.output
    assert "│ weights" in res.output and out.is_file()
    sd = st.load_file(str(out))
    assert sd["weight_hh_l0"].shape == (24, 6)
    # two SGD steps moved the weights away from the file's
    assert not torch.equal(sd["weight_hh_l0"], lstm.weight_hh_l0.detach())


def test_cli_bad_weights_is_one_line_exit_2(tmp_path):
    import subprocess
    import sys

    torch.save(lstm_sd(), tmp_path / "w.safetensors")
    path = scenario_file(tmp_path, "w.safetensors")
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    for args in (["run", str(path)], ["validate", str(path)]):
        res = subprocess.run([sys.executable, "-m", "rnnsim", *args], capture_output=True, text=True, env=env)
        assert res.returncode == 2
        assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
        assert "not a safetensors file" in res.stderr
    bad = subprocess.run([sys.executable, "-m", "rnnsim", "run", "vanishing", "-n", "0", "--save-weights",
                          str(tmp_path / "w.pt")], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "allowed suffixes: .safetensors, .npz" in bad.stderr
    missing = subprocess.run([sys.executable, "-m", "rnnsim", "run", "vanishing", "-n", "0", "--save-weights",
                              str(tmp_path / "no" / "w.npz")], capture_output=True, text=True, env=env)
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_diagnostics_of_a_weights_scenario(tmp_path):
    """The views' comparisons change the cell, the size or the task: the file's weights are kept where they fit
    (the scenario's own cell and size) and the init's are used elsewhere, instead of failing."""
    from rnnsim import diagnostics

    lstm = torch.nn.LSTM(1, 6).double()
    st.save_file(lstm.state_dict(), str(tmp_path / "w.safetensors"))
    sc = load_scenario(str(scenario_file(tmp_path, "w.safetensors")))
    infl = diagnostics.influence_by_cell(sc, samples=4)
    assert set(infl) == {"rnn", "lstm", "attention"}
    own = diagnostics.memory_capacity(sc, washout=20, length=200)
    init = diagnostics.memory_capacity(sc.with_changes({"model.weights": None}), washout=20, length=200)
    assert own.total != init.total    # the file's network, not the init's
    assert diagnostics.parallel_timing(sc, lengths=(8,), repeats=1)


def test_memory_capacity_of_weights_for_other_sizes_measures_the_init(tmp_path):
    from rnnsim import diagnostics

    st.save_file(torch.nn.LSTM(3, 6).double().state_dict(), str(tmp_path / "w.safetensors"))
    sc = load_scenario(str(scenario_file(tmp_path, "w.safetensors", task='kind = "random"\ninput_size = 3\n'
                                                                         'length = 9\nbatch_size = 3')))
    mc = diagnostics.memory_capacity(sc, washout=20, length=200)
    ref = diagnostics.memory_capacity(sc.with_changes({"model.weights": None}), washout=20, length=200)
    assert mc.total == ref.total
