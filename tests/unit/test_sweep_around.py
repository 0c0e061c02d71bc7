"""View 8's computation (rnnsim.sweep.around, run by rnnsim.tui.jobs.regimes_job) against a direct `rnnsim sweep`."""

from __future__ import annotations

import csv

import pytest
from click.testing import CliRunner

from rnnsim.cli import cli
from rnnsim.scenario import ScenarioError, load_scenario
from rnnsim.sweep import around

BASE = """\
[scenario]
name = "around"
seed = 3
[model]
cell = "gru"
hidden_size = 6
init = "orthogonal"
recurrent_scale = 1.3
forget_bias = 1.0
[task]
kind = "random"
length = 30
batch_size = 3
"""


def test_the_grid_holds_the_scenarios_own_point_in_place_of_the_nearest_default():
    sc = load_scenario("vanishing")  # scale 0.9, T = 100: both defaults
    assert around.grid_around(sc) == {"model.recurrent_scale": list(around.SCALES),
                                      "task.length": list(around.LENGTHS)}
    other = sc.with_changes({"model.recurrent_scale": 1.3, "task.length": 30})
    grid = around.grid_around(other)
    assert grid["model.recurrent_scale"] == [0.5, 0.75, 0.9, 1.0, 1.1, 1.3, 1.5]  # 1.3 replaced 1.25
    assert grid["task.length"] == [10, 30, 50, 100, 200]  # 30 replaced 25 (nearest on a log scale)
    sweep = around.around(other)
    assert sweep.iterations == 0 and sweep.seeds == (other.scenario.seed,) and sweep.n_runs == 35


def test_a_point_the_scenario_cannot_take_is_a_scenario_error(monkeypatch):
    sc = load_scenario("vanishing")
    monkeypatch.setattr(around, "LENGTHS", (10, 25, 50, 100, 10**7))  # beyond task.length's limit
    with pytest.raises(ScenarioError, match="task.length"):
        around.around(sc)


def test_view_8_rows_equal_rnnsim_sweep_of_the_same_grid(tmp_path):
    from rnnsim.tui import jobs

    (tmp_path / "base.toml").write_text(BASE)
    sc = load_scenario(str(tmp_path / "base.toml"))
    job = jobs.regimes_job(sc).start()
    state = job.join(300)
    assert state.finished and state.error is None, state
    sweep = job.info
    grid = around.grid_around(sc)
    lines = ['[sweep]', 'scenario = "base.toml"', 'iterations = 0', f'seeds = [{sc.scenario.seed}]', '[sweep.grid]']
    lines += [f'"{key}" = [{", ".join(repr(v) for v in values)}]' for key, values in grid.items()]
    (tmp_path / "grid.toml").write_text("\n".join(lines) + "\n")
    out = tmp_path / "grid.csv"
    result = CliRunner().invoke(cli, ["sweep", str(tmp_path / "grid.toml"), "--out", str(out), "-j", "2", "-q"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    with open(out, newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(state.results) == sweep.n_runs == 35
    for row, direct in zip(state.results, table):
        for key in (*around.KEYS, "seed", "regime", "finite", "clip_events"):
            assert str(row[key]).lower() == direct[key].lower(), key
        for key in ("final_loss", "grad_ratio", "max_grad_norm"):  # bit for bit: CSV holds repr(float)
            assert repr(row[key]) == direct[key], key
    assert {r["regime"] for r in state.results} >= {"vanishing", "stable"}
