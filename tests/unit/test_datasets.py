"""[task] kind = "file" | "series" | "digits" (rnnsim/datasets.py): batches are rows of the source data, drawn
without replacement within an epoch; every bad file refuses with one line."""

import os
import subprocess
import sys

import numpy as np
import pytest

from rnnsim import Simulation, datasets, load_scenario
from rnnsim.scenario import Scenario, ScenarioError, task_dims
from tests.unit.refusal import refusal


def scenario(tmp_path, task: str, model: str = 'hidden_size = 4', name="scen.toml"):
    path = tmp_path / name
    path.write_text(f"[scenario]\nseed = 1\n[model]\n{model}\n[task]\n{task}\n", encoding="utf-8")
    return path


def seqs(tmp_path, N=10, T=6, D=3, O=2, classes=None, mask=True, name="seqs.npz", **extra):
    rng = np.random.default_rng(0)
    arrays = {"inputs": rng.standard_normal((N, T, D))}
    arrays["targets"] = rng.integers(0, classes, (N, T)) if classes else rng.standard_normal((N, T, O))
    if mask:
        arrays["mask"] = rng.random((N, T)) < 0.5
        arrays["mask"][:, -1] = True
    arrays |= extra
    np.savez(tmp_path / name, **arrays)
    return arrays


def find_rows(batch_x, source_x):
    """Index in source_x of each sequence of batch_x (asserting each is one of them, exactly)."""
    out = []
    for x in batch_x:
        hits = [i for i, s in enumerate(source_x) if np.array_equal(s, x)]
        assert len(hits) == 1
        out.append(hits[0])
    return out


# ---------------------------------------------------------------------------------------------- file
def test_file_regression_batches_are_rows_without_replacement(tmp_path):
    a = seqs(tmp_path, N=10)
    sc = load_scenario(str(scenario(tmp_path, 'kind = "file"\npath = "seqs.npz"\nbatch_size = 3')))
    assert sc.task.length == 6 and task_dims(sc.task) == (3, 2, False)
    sim = Simulation(sc)
    seen = []
    for _ in range(3):          # one epoch of 10 // 3 = 3 batches
        sim.forward()           # (each iteration's forward takes the next batch)
        rows = find_rows(sim.inputs, a["inputs"])
        np.testing.assert_array_equal(sim.targets, a["targets"][rows])
        np.testing.assert_array_equal(sim.loss_mask, a["mask"][rows])
        seen += rows
        sim.backward()
        sim.apply_update()
    assert len(set(seen)) == 9   # without replacement within the epoch
    again = Simulation(sc)
    np.testing.assert_array_equal(again.inputs, Simulation(sc).inputs)   # deterministic from the seed
    other = Simulation(sc.with_changes({"scenario.seed": 2}))
    assert not np.array_equal(other.inputs, again.inputs)


def test_file_classification_loss_matches_a_plain_computation(tmp_path):
    a = seqs(tmp_path, N=8, classes=5, mask=False)
    sc = load_scenario(str(scenario(tmp_path, 'kind = "file"\npath = "seqs.npz"\nbatch_size = 4')))
    assert task_dims(sc.task) == (3, a["targets"].max() + 1, True)
    sim = Simulation(sc)
    assert sim.loss_mask.all()   # no mask array: every position
    rows = find_rows(sim.inputs, a["inputs"])
    np.testing.assert_array_equal(sim.targets, a["targets"][rows])
    loss = sim.forward()
    out = sim.outputs
    logp = out - np.log(np.exp(out).sum(axis=2, keepdims=True))
    ref = -np.take_along_axis(logp, sim.targets[..., None], 2).mean()
    assert loss == pytest.approx(ref, rel=1e-12)
    # baseline: the entropy of the training class frequencies
    p = np.bincount(a["targets"].ravel()) / a["targets"].size
    p = p[p > 0]
    assert sim.baseline == pytest.approx(-(p * np.log(p)).sum())


def test_file_holdout_and_evaluate(tmp_path):
    a = seqs(tmp_path, N=20, classes=3, mask=False)
    sc = load_scenario(str(scenario(tmp_path, 'kind = "file"\npath = "seqs.npz"\nbatch_size = 4\nholdout = 0.25')))
    data = datasets.load(sc.task)
    assert len(data.test) == 5 and len(data.train) == 15 and not set(data.test) & set(data.train)
    sim = Simulation(sc)
    for _ in range(6):
        sim.forward()
        assert not set(find_rows(sim.inputs, a["inputs"])) & set(data.test)   # never trains on the held-out
        sim.backward()
        sim.apply_update()
    res = datasets.evaluate(sim)
    # the same numbers from a plain NumPy pass of the held-out sequences through sim's weights
    ref = Simulation(sc.with_changes({"task.batch_size": 5, "task.holdout": 0.0}))
    ref.load_state_dict(sim.state_dict())
    ref.inputs[...] = a["inputs"][data.test]
    ref.targets[...] = a["targets"][data.test]
    ref.loss_mask[...] = True
    assert res["heldout_loss"] == pytest.approx(ref.forward(), rel=1e-10)
    acc = (ref.outputs.argmax(axis=2) == a["targets"][data.test]).mean()
    assert res["heldout_accuracy"] == pytest.approx(acc)
    assert res["heldout_sequences"] == 5


def test_file_length_comes_from_the_file(tmp_path):
    seqs(tmp_path)
    refusal(scenario(tmp_path, 'kind = "file"\npath = "seqs.npz"\nlength = 7\nbatch_size = 2'),
            "task.length = 7", "sequences of length 6", "leave task.length out")
    sc = load_scenario(str(scenario(tmp_path, 'kind = "file"\npath = "seqs.npz"\nlength = 6\nbatch_size = 2')))
    assert sc.task.length == 6
    # switching kind keeps working: the new source's length is taken
    sine = Scenario().with_changes({"task.kind": "sine", "task.length": 30})
    assert sine.with_changes({"task.kind": "file", "task.path": str(tmp_path / "seqs.npz"),
                              "task.batch_size": 2}).task.length == 6
    assert sc.with_changes({"training.clip": "norm"}).task.length == 6
    refusal(scenario(tmp_path, 'kind = "file"\npath = "seqs.npz"\nbatch_size = 11'),
            "task.batch_size = 11", "has 10 training sequences", "at most 10")


def test_relative_path_is_relative_to_the_scenario_folder(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    seqs(tmp_path / "sub")
    path = scenario(tmp_path / "sub", 'kind = "file"\npath = "seqs.npz"\nbatch_size = 2')
    monkeypatch.chdir(tmp_path)
    sc = load_scenario(str(path))
    assert sc.with_changes({"task.batch_size": 3}).task.batch_size == 3   # overrides keep the folder
    refusal(scenario(tmp_path, 'kind = "file"\nbatch_size = 2'), "task.kind = 'file' needs task.path")


@pytest.mark.parametrize("arrays,parts", [
    ({"inputs": np.zeros((4, 5)), "targets": np.zeros((4, 5, 1))}, ["'inputs' has shape (4, 5)", "(N, T, D) float"]),
    ({"inputs": np.zeros((4, 5, 2), dtype=np.int64), "targets": np.zeros((4, 5, 1))}, ["dtype int64"]),
    ({"inputs": np.zeros((4, 5, 2)), "targets": np.zeros((4, 6, 1))}, ["'targets' has shape (4, 6, 1)",
                                                                       "(4, 5, O) float", "(4, 5) integer"]),
    ({"inputs": np.zeros((4, 5, 2)), "targets": np.zeros((4, 5))}, ["'targets' has shape (4, 5) and dtype float64"]),
    ({"inputs": np.zeros((4, 5, 2))}, ["'targets' is missing"]),
    ({"inputs": np.zeros((4, 5, 2)), "targets": np.zeros((4, 5, 1)), "labels": np.zeros(3)},
     ["unexpected arrays 'labels'", "allowed: inputs"]),
    ({"inputs": np.zeros((4, 5, 2)), "targets": np.zeros((4, 5, 1)), "mask": np.ones((4, 5))},
     ["'mask' has shape (4, 5) and dtype float64", "allowed: (4, 5) bool"]),
    ({"inputs": np.zeros((4, 5, 2)), "targets": np.zeros((4, 5, 1)), "mask": np.zeros((4, 5), bool)},
     ["'mask' is false everywhere"]),
    ({"inputs": np.where(np.arange(40).reshape(4, 5, 2) == 13, np.nan, 0.0), "targets": np.zeros((4, 5, 1))},
     ["'inputs' has a NaN or inf at [1, 1, 1]"]),
    ({"inputs": np.zeros((4, 5, 2)), "targets": np.full((4, 5, 1), np.inf)}, ["'targets' has a NaN or inf at [0, 0, 0]"]),
    ({"inputs": np.zeros((4, 5, 2)), "targets": -np.ones((4, 5), dtype=np.int64)}, ["class -1 at a masked position"]),
    ({"inputs": np.zeros((4, 5, 2)), "targets": np.zeros((4, 5, 1)), "extra": np.array([{}], dtype=object)},
     ["unexpected arrays 'extra'"]),
    ({"inputs": np.array([[[{}]]], dtype=object), "targets": np.zeros((1, 1, 1))}, ["'inputs' is an object array"]),
])
def test_bad_npz_files(tmp_path, arrays, parts):
    np.savez(tmp_path / "seqs.npz", **arrays)
    refusal(scenario(tmp_path, 'kind = "file"\npath = "seqs.npz"\nbatch_size = 1'), "scen.toml: task.path = 'seqs.npz'",
            *parts)


def test_unmasked_classes_are_ignored(tmp_path):
    """PyTorch's ignore_index convention (-100 at padding) works when the mask leaves those positions out."""
    y = np.full((3, 4), -100)
    y[:, -1] = [0, 2, 1]
    mask = np.zeros((3, 4), bool)
    mask[:, -1] = True
    np.savez(tmp_path / "seqs.npz", inputs=np.ones((3, 4, 1)), targets=y, mask=mask)
    sc = load_scenario(str(scenario(tmp_path, 'kind = "file"\npath = "seqs.npz"\nbatch_size = 3')))
    assert task_dims(sc.task) == (1, 3, True)
    assert np.isfinite(Simulation(sc).forward())


def test_pickled_corrupt_and_too_large_npz(tmp_path, monkeypatch):
    import pickle

    path = scenario(tmp_path, 'kind = "file"\npath = "seqs.npz"\nbatch_size = 1')
    (tmp_path / "seqs.npz").write_bytes(pickle.dumps({"inputs": 1}))
    refusal(path, "a Python pickle, which rnnsim never loads")
    (tmp_path / "seqs.npz").write_bytes(b"not a zip at all")
    refusal(path, "not an .npz archive")
    np.savez_compressed(tmp_path / "seqs.npz", inputs=np.zeros((50, 20, 10)), targets=np.zeros((50, 20, 1)))
    monkeypatch.setenv("RNNSIM_MAX_BYTES", "60K")
    refusal(path, "the arrays need", "above the memory bound of 61440 bytes", "RNNSIM_MAX_BYTES")
    monkeypatch.setenv("RNNSIM_MAX_BYTES", "100")
    refusal(path, "file too large")


def test_cli_bad_data_file_is_one_line_exit_2(tmp_path):
    np.savez(tmp_path / "seqs.npz", inputs=np.zeros((4, 5)), targets=np.zeros((4, 5, 1)))
    path = scenario(tmp_path, 'kind = "file"\npath = "seqs.npz"\nbatch_size = 1')
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    res = subprocess.run([sys.executable, "-m", "rnnsim", "run", str(path)], capture_output=True, text=True, env=env)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.count("\n") == 1 and "'inputs' has shape (4, 5)" in res.stderr


# ---------------------------------------------------------------------------------------------- series
def write_csv(tmp_path, text, name="data.csv"):
    (tmp_path / name).write_text(text, encoding="utf-8")


def test_series_windows_and_next_step_targets(tmp_path):
    values = np.round(np.random.default_rng(3).standard_normal((30, 2)), 6)
    write_csv(tmp_path, "temp,rain\n" + "\n".join(f"{a},{b}" for a, b in values) + "\n")
    sc = load_scenario(str(scenario(tmp_path, 'kind = "series"\npath = "data.csv"\nlength = 5\nbatch_size = 4')))
    assert task_dims(sc.task) == (2, 2, False) and sc.task.length == 5
    sim = Simulation(sc)
    starts = []
    for b in range(4):
        x = sim.inputs[b]
        hits = [i for i in range(30 - 5) if np.array_equal(values[i:i + 5], x)]
        assert len(hits) == 1
        np.testing.assert_array_equal(sim.targets[b], values[hits[0] + 1:hits[0] + 6])
        starts.append(hits[0])
    assert len(set(starts)) == 4 and sim.loss_mask.all()
    t = values[1:]
    assert sim.baseline == pytest.approx(((t - t.mean(axis=0)) ** 2).mean())


@pytest.mark.parametrize("text,parts", [
    ("a,b\n1,2\n3,x\n4,5\n", ["line 3, column 'b': 'x' is not a number"]),
    ("a,b\n1,2\n3,nan\n4,5\n", ["line 3, column 'b': 'nan' is not finite"]),
    ("a,b\n1,2\n3\n4,5\n", ["line 3 has 1 cells; the header has 2 columns"]),
    ("1,2\n3,4\n5,6\n", ["line 1 is numbers, not a header"]),
    ("", ["the CSV is empty"]),
    ("a\n1\n2\n", ["2 rows of data are too few for one window of task.length = 3", "length + 1 = 4 rows"]),
    ("date,value\n1949-01,112\n1949-02,118\n1949-03,132\n1949-04,129\n", ["column 'date': '1949-01' is not a number"]),
])
def test_bad_csv_files(tmp_path, text, parts):
    write_csv(tmp_path, text)
    refusal(scenario(tmp_path, 'kind = "series"\npath = "data.csv"\nlength = 3\nbatch_size = 1'),
            "task.path = 'data.csv'", *parts)


def test_series_escape_bytes_are_escaped(tmp_path):
    write_csv(tmp_path, "a\x1b[31m\n1\n\x1b[2J\n3\n4\n5\n")
    msg = refusal(scenario(tmp_path, 'kind = "series"\npath = "data.csv"\nlength = 3\nbatch_size = 1'))
    assert "\\x1b[2J" in msg


# ---------------------------------------------------------------------------------------------- digits
@pytest.fixture
def digits():
    sk = pytest.importorskip("sklearn.datasets")
    return sk.load_digits()


@pytest.mark.parametrize("order,shape", [("row", (8, 8)), ("pixel", (64, 1))])
def test_digits_batches_are_images(digits, order, shape):
    sc = Scenario().with_changes({"task.kind": "digits", "task.order": order, "task.batch_size": 16})
    assert sc.task.length == shape[0] and task_dims(sc.task) == (shape[1], 10, True)
    sim = Simulation(sc)
    flat = digits.images.reshape(-1, 64) / 16.0
    for b in range(16):
        hits = np.nonzero((flat == sim.inputs[b].reshape(64)).all(axis=1))[0]
        assert len(hits) >= 1
        assert digits.target[hits[0]] == sim.targets[b, -1]
    assert sim.loss_mask[:, -1].all() and not sim.loss_mask[:, :-1].any()
    data = datasets.load(sc.task)
    assert len(data.test) == 359 and len(data.train) == 1438 and not set(data.test) & set(data.train)


def test_digits_permute_is_one_fixed_pixel_order(digits):
    base = Scenario().with_changes({"task.kind": "digits", "task.order": "pixel", "task.batch_size": 4})
    plain = datasets.load(base.task).inputs[:, :, 0]
    perm = datasets.load(base.with_changes({"task.permute": True}).task).inputs[:, :, 0]
    assert not np.array_equal(plain, perm)
    np.testing.assert_array_equal(np.sort(plain, axis=1), np.sort(perm, axis=1))   # each image's pixels, reordered
    # one order for every image: each permuted position holds one original position's column
    cols = {j: [i for i in range(64) if np.array_equal(perm[:, j], plain[:, i])] for j in range(64)}
    assert all(cols.values())
    again = datasets.load(base.with_changes({"task.permute": True, "scenario.seed": 9}).task).inputs[:, :, 0]
    np.testing.assert_array_equal(again, perm)   # the same order for every seed


def test_digits_length_and_order(digits):
    sc = Scenario().with_changes({"task.kind": "digits", "task.batch_size": 4})
    assert sc.task.length == 8
    assert sc.with_changes({"task.order": "pixel"}).task.length == 64
    with pytest.raises(ScenarioError, match="task.length = 10: .* has sequences of length 8"):
        sc.with_changes({"task.length": 10})


def test_digits_without_scikit_learn_names_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sklearn" else real(name, *a))
    with pytest.raises(ScenarioError, match=r"needs the 'data' extra \(scikit-learn is not installed\): pip install"):
        Scenario().with_changes({"task.kind": "digits"})


def test_run_reports_heldout_accuracy(digits, tmp_path):
    from click.testing import CliRunner

    from rnnsim.cli import cli

    out = tmp_path / "r.json"
    res = CliRunner().invoke(cli, ["run", "digits-pixel", "-n", "3", "--set", "task.order=row", "--set",
                                   "model.hidden_size=8", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "held-out accuracy" in res.output
    import json

    s = json.loads(out.read_text())["summary"]
    assert s["heldout_sequences"] == 359 and 0 <= s["heldout_accuracy"] <= 1


def test_influence_of_a_small_data_file_uses_every_sequence(tmp_path):
    from rnnsim import diagnostics

    seqs(tmp_path, N=5, classes=3)
    sc = load_scenario(str(scenario(tmp_path, 'kind = "file"\npath = "seqs.npz"\nbatch_size = 2')))
    assert datasets.max_batch(sc.task) == 5 and datasets.max_batch(Scenario().task) is None
    out = diagnostics.influence_by_cell(sc, cells=("rnn",), samples=256)   # not 256 > 5 sequences
    assert out["rnn"][0].shape == (6,)
