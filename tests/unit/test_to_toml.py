"""Scenario.to_toml round trips: load(to_toml(s)) == s for every built-in, for scenarios with every knob changed
(Hypothesis), with lesson and locked sections, and with relative `weights` / `path` (a written file loads from the
folder it was written to)."""

from __future__ import annotations

import os
import tomllib

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import rnnsim
from rnnsim.export import write_scenario
from rnnsim.scenario import ModelSection, Scenario, ScenarioError, TaskSection, TrainingSection, builtin_scenarios

KNOWN_KEYS = [f"{sec}.{k}" for sec, model in (("model", ModelSection), ("task", TaskSection),
                                             ("training", TrainingSection)) for k in model.model_fields]
# printable text (the schema refuses control characters), quotes and backslashes included
TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=80)
FLOAT = dict(allow_nan=False, allow_infinity=False)


@st.composite
def every_knob(draw):
    cell = draw(st.sampled_from(["rnn", "lstm", "gru", "attention"]))
    kind = draw(st.sampled_from(["adding", "copy", "delayed_recall", "random", "sine"]))
    symbols = draw(st.integers(1, 6))
    delay = draw(st.integers(0, 30))
    length = max(draw(st.integers(1, 60)), 2 * symbols + 1, delay + 1, 2)
    return {
        "scenario.name": draw(TEXT),
        "scenario.description": draw(st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=200)),
        "scenario.seed": draw(st.integers(0, 2**32 - 1)),
        "scenario.locked": draw(st.lists(st.sampled_from(KNOWN_KEYS), max_size=5, unique=True)),
        "model.cell": cell,
        "model.activation": draw(st.sampled_from(["tanh", "relu"])),
        "model.hidden_size": draw(st.integers(1, 24)),
        "model.num_layers": 1 if cell == "attention" else draw(st.integers(1, 3)),
        "model.layernorm": draw(st.booleans()),
        "model.init": draw(st.sampled_from(["pytorch", "orthogonal", "identity", "normal"])),
        "model.recurrent_scale": draw(st.floats(0, 100, **FLOAT)),
        "model.forget_bias": draw(st.one_of(st.none(), st.floats(-100, 100, **FLOAT))),
        "model.readout": "linear" if cell == "attention" else draw(st.sampled_from(["linear", "attention"])),
        "model.dtype": draw(st.sampled_from(["float64", "float32"])),
        "task.kind": kind,
        "task.length": length,
        "task.batch_size": draw(st.integers(1, 16)),
        "task.symbols": symbols,
        "task.alphabet": draw(st.integers(2, 12)),
        "task.delay": delay,
        "task.input_size": draw(st.integers(1, 8)),
        "task.period": draw(st.floats(2, 1e6, **FLOAT)),
        "task.holdout": draw(st.one_of(st.none(), st.floats(0, 0.99, **FLOAT))),
        "training.optimizer": draw(st.sampled_from(["sgd", "momentum", "adam"])),
        "training.learning_rate": draw(st.floats(1e-12, 10, **FLOAT)),
        "training.momentum": draw(st.floats(0, 0.999, **FLOAT)),
        "training.clip": draw(st.sampled_from(["none", "norm", "value"])),
        "training.clip_threshold": draw(st.floats(1e-9, 1e9, **FLOAT)),
        "training.iterations": draw(st.integers(0, 10_000_000)),
        "training.fresh_data": draw(st.booleans()),
        "lesson.steps": draw(st.lists(st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1,
                                              max_size=120), max_size=4)),
    }


@settings(max_examples=3, deadline=None)
@given(changes=every_knob())
def test_every_knob_strategy_covers_every_field(changes):
    keys = set(changes)
    for sec, model in (("model", ModelSection), ("task", TaskSection), ("training", TrainingSection)):
        missing = {f"{sec}.{k}" for k in model.model_fields} - keys - {"model.weights", "task.path", "task.order",
                                                                          "task.permute"}
        assert not missing, missing


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=every_knob())
def test_every_knob_round_trips_through_a_file(changes, tmp_path_factory):
    try:
        sc = Scenario().with_changes(changes)
    except ScenarioError:
        assume(False)
    text = sc.to_toml()
    assert Scenario.from_dict(tomllib.loads(text)) == sc
    folder = tmp_path_factory.mktemp("w")
    path = write_scenario(sc, folder)
    again = rnnsim.load_scenario(str(path))
    assert again == sc and again.scenario.locked == sc.scenario.locked and again.lesson.steps == sc.lesson.steps


@pytest.mark.parametrize("name", sorted(builtin_scenarios()))
def test_every_builtin_round_trips_through_write_scenario(name, tmp_path, monkeypatch):
    sc = rnnsim.load_scenario(name)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)                       # load from a folder that is not the file's
    path = write_scenario(sc, tmp_path)
    assert rnnsim.load_scenario(str(path)) == sc


# ---------------------------------------------------------------- relative weights and data paths
@pytest.fixture
def own_files(tmp_path):
    """a/scenario.toml with weights = "w/mine.npz" and path = "seqs.npz", both relative to a/."""
    a = tmp_path / "a"
    (a / "w").mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.savez(a / "seqs.npz", inputs=rng.standard_normal((12, 6, 2)), targets=rng.standard_normal((12, 6, 1)))
    text = ('[scenario]\nname = "mine"\n[model]\ncell = "gru"\nhidden_size = 4\n'
            '[task]\nkind = "file"\npath = "seqs.npz"\nbatch_size = 3\n[lesson]\nsteps = ["look"]\n')
    (a / "plain.toml").write_text(text, encoding="utf-8")
    rnnsim.Simulation(rnnsim.load_scenario(str(a / "plain.toml"))).save_weights(a / "w" / "mine.npz")
    text = text.replace('hidden_size = 4\n', 'hidden_size = 4\nweights = "w/mine.npz"\n')
    (a / "scenario.toml").write_text(text, encoding="utf-8")
    return a


def _resolved(sc, folder):
    d = sc.to_dict()
    return {k: os.path.normpath(os.path.join(folder, v)) for k, v in (("weights", d["model"]["weights"]),
                                                                       ("path", d["task"]["path"]))}


def test_relative_paths_in_the_same_folder_are_kept(own_files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sc = rnnsim.load_scenario(str(own_files / "scenario.toml"))
    assert sc.to_toml(folder=own_files) == sc.to_toml()
    path = write_scenario(sc, own_files)
    assert rnnsim.load_scenario(str(path)) == sc


def test_relative_paths_written_elsewhere_load_from_there(own_files, tmp_path, monkeypatch):
    sc = rnnsim.load_scenario(str(own_files / "scenario.toml"))
    other = tmp_path / "b" / "c"
    other.mkdir(parents=True)
    path = write_scenario(sc, other)
    monkeypatch.chdir(tmp_path / "b")                  # the current folder plays no part
    again = rnnsim.load_scenario(str(path))
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert data["model"]["weights"] == os.path.join("..", "..", "a", "w", "mine.npz")
    assert data["task"]["path"] == os.path.join("..", "..", "a", "seqs.npz")
    assert _resolved(again, other) == _resolved(sc, own_files)
    a, b = again.to_dict(), sc.to_dict()
    for d in (a, b):
        d["model"].pop("weights")
        d["task"].pop("path")
    assert a == b
    sim_a, sim_b = rnnsim.Simulation(again), rnnsim.Simulation(sc)
    for k, v in sim_b.params.items():                  # the same weights file, the same data
        np.testing.assert_array_equal(sim_a.params[k], v)
    np.testing.assert_array_equal(sim_a.inputs, sim_b.inputs)


def test_absolute_paths(own_files, tmp_path):
    sc = rnnsim.load_scenario(str(own_files / "scenario.toml"))
    data = tomllib.loads(sc.to_toml(absolute=True))
    assert data["model"]["weights"] == str(own_files / "w" / "mine.npz")
    assert data["task"]["path"] == str(own_files / "seqs.npz")
    (tmp_path / "x.toml").write_text(sc.to_toml(absolute=True), encoding="utf-8")
    assert _resolved(rnnsim.load_scenario(str(tmp_path / "x.toml")), tmp_path) == _resolved(sc, own_files)


def test_changed_scenario_keeps_its_folder_for_paths(own_files, tmp_path):
    """A knob changed in the TUI (with_changes) keeps the scenario's folder, so `w` still finds its files."""
    sc = rnnsim.load_scenario(str(own_files / "scenario.toml")).with_changes({"training.clip": "norm"})
    path = write_scenario(sc, tmp_path)
    again = rnnsim.load_scenario(str(path))
    assert again.training.clip == "norm"
    assert _resolved(again, tmp_path) == _resolved(sc, own_files)
