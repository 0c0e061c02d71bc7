"""`rnnsim run --plot` (the `plot` extra), the CSV gradient profile and the notebook reprs."""

from __future__ import annotations

import csv
import json
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from click.testing import CliRunner

import rnnsim
from rnnsim import diagnostics
from rnnsim.cli import cli

SMALL = ["--set", "model.hidden_size=8", "--set", "task.length=20", "--set", "task.batch_size=4"]


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def small_scenario(**changes):
    sc = rnnsim.load_scenario("exploding")
    return sc.with_changes({"model.hidden_size": 8, "task.length": 20, "task.batch_size": 4, **changes})


def test_first_profile_is_the_first_iterations_and_the_csv_has_it(tmp_path):
    out = tmp_path / "r.csv"
    res = invoke("run", "exploding", *SMALL, "-n", "5", "--out", str(out), "--quiet")
    assert res.exit_code == 0, res.output
    # independent reference: the same scenario, one forward and backward pass at the initial weights
    sim = rnnsim.Simulation(small_scenario())
    sim.forward()
    sim.backward()
    expected_first = diagnostics.gradient_profile(sim)
    sim.apply_update()
    for _ in range(4):
        sim.forward(), sim.backward(), sim.apply_update()
    expected_last = diagnostics.gradient_profile(sim)
    with open(tmp_path / "r.profile.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == list(range(20))
    first = np.array([float(r["grad_norm_first"]) for r in rows])
    last = np.array([float(r["grad_norm_last"]) for r in rows])
    np.testing.assert_allclose(first, expected_first, rtol=1e-12)
    np.testing.assert_allclose(last, expected_last, rtol=1e-12)
    assert not np.allclose(first, last)  # five updates of the exploding RNN change the profile
    with open(out, newline="") as f:
        assert len(list(csv.DictReader(f))) == 5  # the main CSV keeps one row per iteration


@pytest.mark.parametrize("suffix", [".svg", ".png", ".pdf"])
def test_plot_writes_a_file_that_parses(tmp_path, monkeypatch, suffix):
    pytest.importorskip("matplotlib", reason="the 'plot' extra (matplotlib) is not installed")
    monkeypatch.chdir(tmp_path)
    path = tmp_path / f"fig{suffix}"
    res = invoke("run", "exploding", *SMALL, "--set", "training.clip=norm", "-n", "8", "--plot", path.name)
    assert res.exit_code == 0, res.output
    assert f"figure                  │ {path.name}" in res.output  # the summary names the figure
    data = path.read_bytes()
    if suffix == ".svg":
        root = ET.fromstring(data)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert "gradient profile" in data.decode() and "clipping threshold" in data.decode()
    elif suffix == ".png":
        import matplotlib.image

        img = matplotlib.image.imread(path)
        assert img.ndim == 3 and img.shape[0] > 500 and img.shape[1] > 500
        assert img[..., :3].std() > 0.05  # not a blank page
    else:
        assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF") and b"/Type /Page" in data
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary file left


def test_figure_shows_what_the_run_did():
    pytest.importorskip("matplotlib", reason="the 'plot' extra (matplotlib) is not installed")
    from rnnsim import plot

    first = np.geomspace(1e-6, 1.0, 20)
    last = np.geomspace(1e-3, 1.0, 20)
    history = [
        {"iteration": 1, "loss": 2.0, "grad_norm": 50.0, "clipped": True, "finite": True},
        {"iteration": 2, "loss": 1.0, "grad_norm": 0.5, "clipped": False, "finite": True},
        {"iteration": 3, "loss": float("nan"), "grad_norm": float("nan"), "clipped": False, "finite": False},
    ]
    fig = plot.figure(history, first, last, baseline=0.167, clip="norm", threshold=1.0, title="t")
    prof, loss, grad = fig.axes
    assert prof.get_yscale() == "log" and grad.get_yscale() == "log"
    lines = {ln.get_label(): ln for ln in prof.get_lines()}
    np.testing.assert_allclose(lines["first iteration"].get_ydata(), first)
    np.testing.assert_allclose(lines["last iteration"].get_ydata(), last)
    loss_lines = {ln.get_label(): ln for ln in loss.get_lines()}
    assert list(loss_lines["chance level 0.167"].get_ydata()) == [0.167, 0.167]
    assert len(loss_lines["non-finite value"].get_xdata()) == 1
    grad_lines = {ln.get_label(): ln for ln in grad.get_lines()}
    assert list(grad_lines["clipping threshold θ = 1"].get_ydata()) == [1.0, 1.0]
    assert list(grad_lines["clipped (1)"].get_xdata()) == [1.0]
    assert list(grad_lines["non-finite (1)"].get_xdata()) == [3.0]


def test_bad_plot_path_and_missing_extra_are_one_line(tmp_path, monkeypatch):
    res = CliRunner().invoke(cli, ["run", "vanishing", "--plot", str(tmp_path / "fig.gif")])
    assert res.exit_code == 2 and "allowed suffixes: .svg, .png, .pdf" in res.output
    assert res.output.count("\n") == 1
    res = CliRunner().invoke(cli, ["run", "vanishing", "--plot", str(tmp_path / "no" / "fig.svg")])
    assert res.exit_code == 2 and "does not exist" in res.output
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    res = CliRunner().invoke(cli, ["run", "vanishing", "--plot", str(tmp_path / "fig.svg"), "-n", "1"])
    assert res.exit_code == 2
    assert res.output.strip() == "rnnsim: rnnsim run --plot needs the 'plot' extra (matplotlib): pip install 'rnnsim[plot]'"
    assert not (tmp_path / "fig.svg").exists()


def test_simulation_and_history_draw_themselves_in_notebooks(monkeypatch):
    pytest.importorskip("matplotlib", reason="the 'plot' extra (matplotlib) is not installed")
    sim = rnnsim.Simulation(small_scenario(**{"training.clip": "norm"}))
    assert sim.history._repr_svg_() is None  # nothing to draw yet
    history = sim.train(4)
    for svg in (sim._repr_svg_(), history._repr_svg_(), sim.history._repr_svg_()):
        root = ET.fromstring(svg)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert "gradient profile" in sim._repr_svg_() and "gradient profile" not in history._repr_svg_()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert sim._repr_svg_() is None  # IPython falls back to the text repr


def test_plot_of_one_pass_says_initial_weights(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib", reason="the 'plot' extra (matplotlib) is not installed")
    monkeypatch.chdir(tmp_path)
    assert invoke("run", "vanishing", *SMALL, "-n", "0", "--plot", "one.svg", "--quiet").exit_code == 0
    svg = (tmp_path / "one.svg").read_text()
    assert "initial weights" in svg and "loss per iteration" not in svg and "last iteration" not in svg


def test_json_keeps_both_profiles(tmp_path):
    out = tmp_path / "r.json"
    assert invoke("run", "exploding", *SMALL, "-n", "3", "--out", str(out), "--quiet").exit_code == 0
    arrays = json.loads(out.read_text())["arrays"]
    assert len(arrays["gradient_profile_first"]) == len(arrays["gradient_profile"]) == 20
