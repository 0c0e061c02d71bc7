"""`rnnsim sweep` (rnnsim/sweep/): validation of every grid point, the tidy table, backends, resume, the plot."""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from rnnsim import results
from rnnsim.cli import cli
from rnnsim.scenario import ScenarioError
from rnnsim.sweep import builtin_sweeps, is_sweep_file, load_sweep
from rnnsim.sweep.table import RESULT_COLUMNS

ROOT = Path(__file__).resolve().parents[2]

BASE = """\
[scenario]
name = "small"
seed = 5

[model]
cell = "rnn"
hidden_size = 8
init = "orthogonal"
recurrent_scale = 1.0

[task]
kind = "random"
length = 12
batch_size = 4

[training]
clip = "norm"
clip_threshold = 0.05
learning_rate = 0.05
iterations = 50
"""

SWEEP = """\
[sweep]
scenario = "base.toml"
iterations = {iterations}
seeds = [0, 1]

[sweep.grid]
"model.recurrent_scale" = [0.5, 1.0, 1.6]
"task.length" = [6, 12]
"""


@pytest.fixture
def files(tmp_path):
    (tmp_path / "base.toml").write_text(BASE)
    path = tmp_path / "grid.toml"
    path.write_text(SWEEP.format(iterations=2))
    return tmp_path, path


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def rnnsim_process(*args, cwd=None, **kwargs):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("RNNSIM_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "rnnsim", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300, **kwargs)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def without_seconds(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


# ------------------------------------------------------------------------------------------ the sweep file


def test_load_sweep_lists_the_product_in_order(files):
    _, path = files
    sweep = load_sweep(str(path))
    assert sweep.keys == ("model.recurrent_scale", "task.length")
    assert sweep.n_runs == 3 * 2 * 2
    runs = list(sweep.runs())
    assert [r.index for r in runs] == list(range(12))
    assert [(r.values, r.seed) for r in runs[:3]] == [((0.5, 6), 0), ((0.5, 6), 1), ((0.5, 12), 0)]
    sc = sweep.scenario(runs[3])
    assert (sc.model.recurrent_scale, sc.task.length, sc.scenario.seed, sc.model.hidden_size) == (0.5, 12, 1, 8)


def test_scenario_path_is_relative_to_the_sweep_file(files, monkeypatch, tmp_path_factory):
    _, path = files
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    assert load_sweep(str(path)).base.scenario.name == "small"


@pytest.mark.parametrize("grid, needle", [
    ('"model.hidden_siz" = [4]', "model.hidden_siz: unknown key; did you mean 'hidden_size'?"),
    ('"model.hidden_size" = [4, 0]', "model.hidden_size = 0: allowed: an integer from 1 to 4096"),
    ('"model.cell" = ["rnn", "lstn"]', "model.cell = 'lstn': allowed: 'rnn', 'lstm', 'gru', 'attention'"),
    ('"task.length" = [12.5]', "task.length = 12.5: wrong type (float)"),
    ('hidden_size = [4]', "did you mean 'model.hidden_size'?"),
    ('"model.hidden_size" = 4', "sweep.grid.model.hidden_size = 4: allowed: a non-empty array"),
    ('"model.hidden_size" = []', "allowed: a non-empty array"),
    ('"model.hidden_size" = [4, 4]', "a value appears twice"),
    ('"scenario.seed" = [1, 2]', "allowed: sweep.seeds"),
    ('"task.kind" = ["copy"]\n"task.length" = [30, 5]', "task.length = 5: the copy task needs task.length >= 2*task.symbols + 1"),
])
def test_bad_grid_values_are_refused_with_the_scenario_loaders_words(files, grid, needle):
    tmp, _ = files
    path = tmp / "bad.toml"
    path.write_text(f'[sweep]\nscenario = "base.toml"\n\n[sweep.grid]\n{grid}\n')
    with pytest.raises(ScenarioError) as err:
        load_sweep(str(path))
    assert needle in str(err.value)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("sweep_table, needle", [
    ('scenario = "base.toml"\niteration = 2', "sweep.iteration: unknown key; did you mean 'iterations'?"),
    ('scenario = "bse.toml"', "sweep.scenario = 'bse.toml'"),
    ('scenario = "vanishng"', "did you mean 'vanishing'?"),
    ('scenario = "base.toml"\nseeds = [-1]', "sweep.seeds = -1: allowed: an array of integers from 0 to 4294967295"),
    ('scenario = "base.toml"\nseeds = [1, 1]', "a seed appears twice"),
    ('scenario = "base.toml"\niterations = -3', "sweep.iterations = -3: allowed: an integer from 0 to 10000000"),
    ('scenario = 4', "sweep.scenario = 4: wrong type (int)"),
])
def test_bad_sweep_tables_are_refused(files, sweep_table, needle):
    tmp, _ = files
    path = tmp / "bad.toml"
    path.write_text(f'[sweep]\n{sweep_table}\n\n[sweep.grid]\n"model.hidden_size" = [4]\n')
    with pytest.raises(ScenarioError) as err:
        load_sweep(str(path))
    assert needle in str(err.value)


def test_unknown_section_and_missing_grid(files):
    tmp, _ = files
    path = tmp / "bad.toml"
    path.write_text('[sweep]\nscenario = "base.toml"\n[modle]\nx = 1\n')
    with pytest.raises(ScenarioError, match=r"modle: unknown section .*allowed sections: sweep"):
        load_sweep(str(path))
    path.write_text('[sweep]\nscenario = "base.toml"\n')
    with pytest.raises(ScenarioError, match="sweep.grid: missing or empty"):
        load_sweep(str(path))


def test_the_memory_bound_applies_to_every_run(files, monkeypatch):
    tmp, _ = files
    path = tmp / "big.toml"
    path.write_text('[sweep]\nscenario = "base.toml"\n[sweep.grid]\n"task.batch_size" = [4, 4096]\n"task.length" = [12, 5000]\n')
    monkeypatch.setenv("RNNSIM_MAX_BYTES", "64M")
    with pytest.raises(ScenarioError) as err:
        load_sweep(str(path))
    assert "task.batch_size = 4096" in str(err.value) and "above the limit of 64.0 MiB" in str(err.value)
    assert "task.length = 5000, task.batch_size = 4096" in str(err.value)
    monkeypatch.setenv("RNNSIM_MAX_BYTES", "64G")
    assert load_sweep(str(path)).n_runs == 4


def test_too_many_runs(files):
    tmp, _ = files
    path = tmp / "huge.toml"
    values = list(range(1, 401))
    path.write_text(f'[sweep]\nscenario = "base.toml"\n[sweep.grid]\n"task.length" = {values}\n"model.hidden_size" = {values}\n')
    with pytest.raises(ScenarioError, match=r"400 x 400 = 160000 runs; allowed: at most 100000"):
        load_sweep(str(path))


def test_builtin_sweeps_load_and_are_listed():
    names = builtin_sweeps()
    assert "regimes" in names
    for name in names:
        sweep = load_sweep(name)
        assert sweep.n_runs >= 4 and sweep.description
        assert is_sweep_file(name) and is_sweep_file(str(names[name]))
    regimes = load_sweep("regimes")
    assert regimes.keys == ("model.recurrent_scale", "task.length", "model.cell")
    out = invoke("list").output
    assert "regimes" in out and "rnnsim sweep regimes" in out
    assert not is_sweep_file("vanishing")


def test_validate_accepts_sweep_files_and_reports_bad_ones(files):
    tmp, path = files
    ok = invoke("validate", path, "vanishing", "regimes")
    assert ok.exit_code == 0 and f"ok  {path}" in ok.output and "ok  regimes" in ok.output
    bad = tmp / "bad.toml"
    bad.write_text('[sweep]\nscenario = "base.toml"\n[sweep.grid]\n"model.hidden_size" = [0, 5000]\n')
    result = invoke("validate", bad)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and "hidden_size = 0" in lines[0] and "hidden_size = 5000" in lines[1]


def test_bad_sweep_is_one_line_exit_2_and_nothing_written(files):
    tmp, _ = files
    bad = tmp / "bad.toml"
    bad.write_text('[sweep]\nscenario = "base.toml"\n[sweep.grid]\n"model.hiden_size" = [4]\n')
    proc = rnnsim_process("sweep", bad, "--out", tmp / "out.csv")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "did you mean 'hidden_size'?" in proc.stderr
    assert "Traceback" not in proc.stderr and "\x1b" not in proc.stderr
    assert not (tmp / "out.csv").exists() and not (tmp / "out.csv.sweep.json").exists()
    proc = rnnsim_process("sweep", files[1], "--out", tmp / "out.txt")
    assert proc.returncode == 2 and "allowed suffixes: .csv, .parquet" in proc.stderr


# ------------------------------------------------------------------------------------------ the regime rule


def test_regime_rule():
    assert results.regime(1e-3, True) == "vanishing"
    assert results.regime(0.0, True) == "vanishing"
    assert results.regime(0.011, True) == "stable"
    assert results.regime(99.0, True) == "stable"
    assert results.regime(101.0, True) == "exploding"
    assert results.regime(0.5, False) == "exploding"
    assert results.regime(None, True) == "stable"


# ------------------------------------------------------------------------------------------ rows


def test_a_row_equals_rnnsim_run_with_the_same_overrides(files):
    tmp, path = files
    out = tmp / "t.csv"
    result = invoke("sweep", path, "--out", out, "--workers", "1")
    assert result.exit_code == 0, result.output
    rows = read_csv(out)
    assert list(rows[0]) == ["model.recurrent_scale", "task.length", *RESULT_COLUMNS]
    assert len(rows) == 12
    clipped = 0
    for row in (rows[0], rows[7], rows[11]):
        js = tmp / "run.json"
        run = invoke("run", tmp / "base.toml", "--iterations", "2", "--quiet", "--out", js,
                     "--set", f"model.recurrent_scale={row['model.recurrent_scale']}",
                     "--set", f"task.length={row['task.length']}", "--set", f"scenario.seed={row['seed']}")
        assert run.exit_code == 0, run.output
        s = json.loads(js.read_text())["summary"]
        assert float(row["final_loss"]) == s["final_loss"]  # bit for bit (repr round-trips)
        assert float(row["grad_ratio"]) == s["gradient_ratio"]
        assert float(row["max_grad_norm"]) == s["max_grad_norm"]
        assert int(row["clip_events"]) == s["clipping_events"]
        assert row["finite"] == ("true" if s["finite"] else "false")
        assert row["regime"] == s["regime"]
        clipped += int(row["clip_events"])
    assert clipped > 0  # the threshold 0.05 clips: the column is exercised


def test_grad_ratio_is_the_batch_mean_norm_ratio_of_the_last_pass(files):
    """The documented definition, from the arrays with plain NumPy (iterations = 0: one pass)."""
    import rnnsim

    tmp, path = files
    path.write_text(SWEEP.format(iterations=0))
    out = tmp / "t0.csv"
    assert invoke("sweep", path, "--out", out, "-j", "1").exit_code == 0
    sweep = load_sweep(str(path))
    for run, row in zip(sweep.runs(), read_csv(out)):
        sim = rnnsim.Simulation(sweep.scenario(run))
        loss = sim.forward()
        sim.backward()
        norms = np.linalg.norm(sim.grad_hidden, axis=2).mean(axis=0)  # (T,): batch mean of ‖dL/dh_t‖
        assert float(row["grad_ratio"]) == pytest.approx(norms[0] / norms[-1], rel=1e-12)
        assert float(row["final_loss"]) == loss
        expected = "vanishing" if norms[0] / norms[-1] < 1e-2 else ("exploding" if norms[0] / norms[-1] > 1e2 else "stable")
        assert row["regime"] == expected
    regimes = {r["regime"] for r in read_csv(out)}
    assert "vanishing" in regimes and "stable" in regimes


def test_one_and_two_workers_give_the_same_table(files):
    tmp, path = files
    one, two = tmp / "one.csv", tmp / "two.csv"
    p1 = rnnsim_process("sweep", path, "--out", one, "--workers", "1")
    p2 = rnnsim_process("sweep", path, "--out", two, "--workers", "2")
    assert p1.returncode == 0 and p2.returncode == 0, p1.stderr + p2.stderr
    assert "2 local workers (this process and 1 forked)" in p2.stdout
    assert without_seconds(read_csv(one)) == without_seconds(read_csv(two))
    rows = read_csv(two)
    assert [(r["model.recurrent_scale"], r["task.length"], r["seed"]) for r in rows[:3]] == [
        ("0.5", "6", "0"), ("0.5", "6", "1"), ("0.5", "12", "0")]  # grid order, whatever finished first
    assert all(float(r["seconds"]) > 0 for r in rows)


# ------------------------------------------------------------------------------------------ resume and safety


def test_resume_after_deleting_rows_runs_only_the_missing(files):
    tmp, path = files
    out = tmp / "r.csv"
    assert invoke("sweep", path, "--out", out, "-j", "1").exit_code == 0
    full = read_csv(out)
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:4] + lines[7:]))  # rows 3, 4, 5 gone
    result = invoke("sweep", path, "--out", out, "-j", "1")
    assert result.exit_code == 0
    assert "3 runs on this process" in result.output and "9 already in" in result.output
    again = read_csv(out)
    assert without_seconds(again) == without_seconds(full)
    assert [r["seconds"] for r in again[:3]] == [r["seconds"] for r in full[:3]]  # kept, not rerun
    assert "nothing to run" in invoke("sweep", path, "--out", out).output


def test_a_torn_last_line_is_dropped_on_resume(files):
    tmp, path = files
    out = tmp / "torn.csv"
    assert invoke("sweep", path, "--out", out, "-j", "1").exit_code == 0
    full = read_csv(out)
    text = out.read_text()
    cut = text.rstrip("\n").rfind("\n")
    out.write_text(text[: cut + 1] + text[cut + 1: cut + 15])  # the last row half-written
    assert invoke("sweep", path, "--out", out, "-j", "1").exit_code == 0
    assert without_seconds(read_csv(out)) == without_seconds(full)


def test_a_changed_sweep_or_a_foreign_file_is_refused(files):
    tmp, path = files
    out = tmp / "c.csv"
    assert invoke("sweep", path, "--out", out, "-j", "1").exit_code == 0
    before = out.read_bytes()
    path.write_text(SWEEP.format(iterations=3))
    result = invoke("sweep", path, "--out", out)
    assert result.exit_code == 2 and "holds the runs of another sweep" in result.stderr
    assert out.read_bytes() == before
    mine = tmp / "mine.csv"
    mine.write_text("my,own,data\n1,2,3\n")
    result = invoke("sweep", path, "--out", mine)
    assert result.exit_code == 2 and "is not a table of `rnnsim sweep`" in result.stderr
    assert mine.read_text() == "my,own,data\n1,2,3\n"


SLOW = """\
[sweep]
scenario = "base.toml"
iterations = 60

[sweep.grid]
"model.recurrent_scale" = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2]
"task.length" = [150, 200]
"""


def _marked_processes(mark):
    """Live processes started with RNNSIM_TEST_MARK=mark in their environment (a sweep and its forked workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environ = (entry / "environ").read_bytes().split(b"\0")
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if f"RNNSIM_TEST_MARK={mark}".encode() in environ and state != "Z":
                found.append(int(entry.name))
    return found


@pytest.mark.parametrize("sig, workers", [(signal.SIGKILL, "1"), (signal.SIGKILL, "2"), (signal.SIGINT, "2")])
def test_killed_or_interrupted_mid_sweep_keeps_rows_and_resumes(files, sig, workers):
    tmp, _ = files
    path = tmp / "slow.toml"
    path.write_text(SLOW)
    out = tmp / "k.csv"
    mark = f"{os.getpid()}-{time.monotonic_ns()}"
    env = dict(os.environ, PYTHONPATH=str(ROOT), RNNSIM_TEST_MARK=mark)
    proc = subprocess.Popen([sys.executable, "-m", "rnnsim", "sweep", str(path), "--out", str(out), "-j", workers],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_text().count("\n") >= 3:  # header + 2 rows
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep finished before it could be stopped: make SLOW slower"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if sig == signal.SIGKILL and workers != "1":  # the killed parent's pool workers must not hold the table
        deadline = time.monotonic() + 30          # (they inherited its open, locked journal by fork)
        while time.monotonic() < deadline and _marked_processes(mark):
            time.sleep(0.1)
        assert not _marked_processes(mark), "pool workers outlived their killed parent"
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "rerun the same command" in err and "Traceback" not in err
    kept = read_csv(out)  # readable after the kill
    assert 2 <= len(kept) < 16
    assert invoke("sweep", path, "--out", out, "-j", "1").exit_code == 0
    rows = read_csv(out)
    keys = [(r["model.recurrent_scale"], r["task.length"]) for r in rows]
    assert len(keys) == 16 and len(set(keys)) == 16  # no duplicate, no lost row
    by_key = {(r["model.recurrent_scale"], r["task.length"]): r for r in rows}
    for r in kept:
        assert by_key[(r["model.recurrent_scale"], r["task.length"])]["final_loss"] == r["final_loss"]


# ------------------------------------------------------------------------------------------ parquet, plot


def test_parquet_table_matches_csv(files):
    pq = pytest.importorskip("pyarrow.parquet")
    tmp, path = files
    csv_out, pq_out = tmp / "p.csv", tmp / "p.parquet"
    assert invoke("sweep", path, "--out", csv_out, "-j", "1").exit_code == 0
    assert invoke("sweep", path, "--out", pq_out, "-j", "1").exit_code == 0
    table = pq.read_table(pq_out)
    assert table.column_names == ["model.recurrent_scale", "task.length", *RESULT_COLUMNS]
    assert str(table.schema.field("task.length").type) == "int64"
    assert str(table.schema.field("finite").type) == "bool"
    assert not (tmp / "p.parquet.partial.csv").exists()
    for a, b in zip(table.to_pylist(), read_csv(csv_out)):
        assert a["final_loss"] == float(b["final_loss"]) and a["grad_ratio"] == float(b["grad_ratio"])
        assert a["model.recurrent_scale"] == float(b["model.recurrent_scale"]) and a["seed"] == int(b["seed"])
        assert a["regime"] == b["regime"] and a["finite"] == (b["finite"] == "true")
    assert "nothing to run" in invoke("sweep", path, "--out", pq_out).output  # resumes from the Parquet file


def test_plot_draws_the_regime_map(files):
    pytest.importorskip("matplotlib")
    from rnnsim.sweep.plot import cell_values

    tmp, path = files
    path.write_text(SWEEP.format(iterations=0))
    out, svg = tmp / "m.csv", tmp / "m.svg"
    result = invoke("sweep", path, "--out", out, "-j", "1", "--plot", svg)
    assert result.exit_code == 0, result.output
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    sweep = load_sweep(str(path))
    rows = read_csv(out)
    cells = cell_values(sweep, [{**r, "model.recurrent_scale": float(r["model.recurrent_scale"]),
                                 "task.length": int(r["task.length"]), "finite": r["finite"] == "true",
                                 "grad_ratio": float(r["grad_ratio"])} for r in rows])
    mean = np.mean([math.log10(float(r["grad_ratio"])) for r in rows
                    if r["model.recurrent_scale"] == "0.5" and r["task.length"] == "12"])
    assert cells[(None, 12, 0.5)] == pytest.approx(mean)
    bad = invoke("sweep", path, "--out", out, "--plot", tmp / "m.gif")
    assert bad.exit_code == 2 and "allowed: .svg, .png, .pdf" in bad.stderr


def test_appending_after_a_torn_line_leaves_a_readable_journal(files):
    """Resume, append one row, and be killed again before the final rewrite: the journal must still parse."""
    from rnnsim.sweep.table import Table, read_rows

    tmp, path = files
    out = tmp / "j.csv"
    assert invoke("sweep", path, "--out", out, "-j", "1").exit_code == 0
    sweep = load_sweep(str(path))
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:-2]) + lines[-2][:10])  # the last row lost, the one before torn
    table = Table(sweep, out)
    done = table.open()
    assert sorted(done) == list(range(10))
    row = dict(zip(table.names, next(csv.reader([lines[-1]]))))
    table.append(row)
    table.close()  # no finish(): as if killed now
    with open(out, newline="") as f:
        again = read_rows(sweep, list(csv.reader(f)), str(out))
    assert sorted(again) == list(range(10)) + [11]


@pytest.mark.parametrize("module, args, extra", [
    ("dask", ["--scheduler", "local"], "'dask' extra: pip install 'rnnsim[dask]'"),
    ("pyarrow", ["--out", "x.parquet"], "'data' extra: pip install 'rnnsim[data]'"),
    ("matplotlib", ["--plot", "x.svg"], "'plot' extra: pip install 'rnnsim[plot]'"),
])
def test_a_missing_extra_is_one_line_naming_it(files, monkeypatch, module, args, extra):
    tmp, path = files
    monkeypatch.chdir(tmp)
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    for name in [m for m in sys.modules if m.startswith(module + ".")]:
        monkeypatch.setitem(sys.modules, name, None)
    result = invoke("sweep", path, *args)
    assert result.exit_code == 2
    assert extra in result.stderr and result.stderr.count("\n") == 1
    assert not any(p.name.startswith("x.") for p in tmp.iterdir()) and not (tmp / "grid.csv").exists()


def test_show_draws_the_map_in_the_terminal_from_the_table_alone(files):
    tmp, path = files
    path.write_text(SWEEP.format(iterations=0))
    out = tmp / "s.csv"
    assert invoke("sweep", path, "--out", out, "-j", "1").exit_code == 0
    path.unlink()  # --show needs only the table and its OUT.sweep.json
    result = invoke("sweep", "--show", out)
    assert result.exit_code == 0, result.output
    rows = read_csv(out)
    for scale, length in (("0.5", "12"), ("1.6", "6")):
        logs = [math.log10(float(r["grad_ratio"])) for r in rows
                if r["model.recurrent_scale"] == scale and r["task.length"] == length]
        mean = sum(logs) / len(logs)
        letter = "V" if mean < -2 else ("E" if mean > 2 else "S")
        line = next(l for l in result.output.splitlines() if l.split() and l.split()[0] == length)
        assert f"{mean:.1f}{letter}" in line.split()
    assert "\x1b" not in result.output  # not a terminal: no colour codes, the letters carry the regime
    assert invoke("sweep", "--show", out, path).exit_code == 2
    missing = invoke("sweep", "--show", tmp / "none.csv")
    assert missing.exit_code == 2 and "no such file" in missing.stderr


def test_show_reads_a_partial_table(files):
    tmp, path = files
    out = tmp / "part.csv"
    assert invoke("sweep", path, "--out", out, "-j", "1").exit_code == 0
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:5]))
    result = invoke("sweep", "--show", out)
    assert result.exit_code == 0 and "4 of 12 runs" in result.output
    assert out.read_text() == "".join(lines[:5])  # --show writes nothing


def test_run_on_a_sweep_file_points_to_rnnsim_sweep(files):
    _, path = files
    for name in ("regimes", str(path)):
        result = invoke("run", name)
        assert result.exit_code == 2
        assert f"{name}: a sweep file, not a scenario; run it with `rnnsim sweep {name}`" in result.stderr


# ------------------------------------------------------------------------------------------ chunked tasks


def test_run_at_is_the_run_runs_lists(files):
    _, path = files
    sweep = load_sweep(path)
    runs = list(sweep.runs())
    assert [sweep.run_at(r.index) for r in runs] == runs
    with pytest.raises(IndexError):
        sweep.run_at(len(runs))


def test_chunks_hand_out_every_run_once_in_order_and_end_with_single_runs():
    from rnnsim.sweep.backends import Chunks

    todo = list(range(3, 1003, 2))  # 500 runs, not starting at 0
    chunks = Chunks(todo, workers=2, target=0.1)
    chunks.record(0.001)  # runs of about 1 ms: a chunk of ~100 by time
    sizes, seen = [], []
    while chunk := chunks.next():
        sizes.append(len(chunk))
        seen += chunk
        for _ in chunk:
            chunks.record(0.001)
    assert seen == todo
    assert max(sizes) > 1 and sizes[-1] == 1
    assert sizes[0] <= -(-len(todo) // 8)  # at most 1/(4 x workers) of what is left
    assert sizes == sorted(sizes, reverse=True)  # guided: never larger than the one before

    slow = Chunks(list(range(100)), workers=2, target=0.1)
    slow.record(5.0)  # runs of 5 s: one run per task, so progress and Ctrl+C stay fine-grained
    assert slow.next() == [0] and slow.next() == [1]


def test_chunks_weighted_by_cost_hold_a_share_of_the_cost_not_of_the_count():
    """With the longest runs first, a chunk's estimated cost (not its number of runs) is at most 1/(4 x workers) of
    the cost left, and the chunk lasts about ``target`` seconds at the measured seconds per unit of cost."""
    from rnnsim.sweep.backends import Chunks

    costs = [10.0] * 20 + [1.0] * 200          # 400 units: the first 20 runs are half the work
    todo = list(range(len(costs)))
    chunks = Chunks(todo, workers=2, target=0.1, costs=costs)
    seen, left = [], sum(costs)
    while chunk := chunks.next():
        spent = sum(costs[i] for i in chunk)
        assert spent <= left / 8 or len(chunk) == 1
        left -= spent
        seen += chunk
    assert seen == todo and left == 0
    first = Chunks(todo, workers=2, target=0.1, costs=costs).next()
    assert len(first) == 5                     # 50 units of 400 (uniform costs would give 28 runs, 235 units)
    timed = Chunks(todo, workers=2, target=0.1, costs=costs)
    timed.record(0.02, 10.0)                   # 2 ms per unit: 0.1 s is 50 units
    timed.record(0.002, 1.0)
    assert sum(costs[i] for i in timed.next()) <= 0.1 / (0.022 / 11.0)
    uniform = Chunks(todo, workers=2, target=0.1)
    assert len(uniform.next()) == len(todo) // 8


def test_a_chunk_gives_the_rows_of_single_runs(files):
    from rnnsim.sweep.backends import job, run_chunk, run_job

    _, path = files
    sweep = load_sweep(path)
    indices = [1, 2, 3, 7]
    chunk = run_chunk(sweep, indices)
    assert [i for i, _ in chunk] == indices
    for i, row in chunk:
        _, sc, n = job(sweep, i)
        assert sc == sweep.scenario(list(sweep.runs())[i])
        single = run_job(sc, n)
        assert {k: v for k, v in row.items() if k != "seconds"} == {k: v for k, v in single.items() if k != "seconds"}


def test_warm_jobs_pick_the_smallest_run_of_each_kernel_kind_without_building_every_scenario(files, monkeypatch):
    from rnnsim.sweep import backends, schedule
    from rnnsim.sweep.spec import make_sweep

    _, path = files
    base = load_sweep(path).base
    sweep = make_sweep(base, {"task.length": [12, 6, 30], "model.cell": ["rnn", "gru"],
                              "training.clip": ["none", "norm"]}, 2, (0, 1), source="t")
    # brute force: build every run's Scenario and group by what the kernels depend on
    brute: dict = {}
    for run in sweep.runs():
        sc = sweep.scenario(run)
        kind = (sc.model.cell, sc.training.clip)
        if kind not in brute or sc.task.length < brute[kind][1]:
            brute[kind] = (run.index, sc.task.length)
    built = []
    real = schedule.job
    monkeypatch.setattr(schedule, "job", lambda s, i: built.append(i) or real(s, i))   # where warm_jobs finds it
    warm = backends.warm_jobs(sweep, list(range(sweep.n_runs)))
    assert [j[0] for j in warm] == [index for index, _ in brute.values()]
    assert all(j[1].task.length == 6 for j in warm) and len(warm) == 4
    assert sorted(built) == sorted(j[0] for j in warm)  # only the chosen jobs were built
    rest = [i for i in range(sweep.n_runs) if i % 2 == 1]  # a resumed sweep: only seed 1 left
    assert all(j[0] % 2 == 1 for j in backends.warm_jobs(sweep, rest))


def test_longest_first_orders_by_estimated_cost_and_keeps_grid_order_on_ties(files):
    from rnnsim.sweep import backends
    from rnnsim.sweep.spec import make_sweep

    _, path = files
    base = load_sweep(path).base
    sweep = make_sweep(base, {"task.length": [12, 6, 30], "model.cell": ["rnn", "lstm"]}, 0, (0, 1), source="t")
    todo = list(range(sweep.n_runs))
    order = backends.longest_first(sweep, todo)
    assert sorted(order) == todo
    runs = [sweep.scenario(sweep.run_at(i)) for i in order]
    # the same cell: longer first; the same length: the LSTM (4 gate products) before the RNN
    lengths = {cell: [sc.task.length for sc in runs if sc.model.cell == cell] for cell in ("rnn", "lstm")}
    assert lengths == {"rnn": [30, 30, 12, 12, 6, 6], "lstm": [30, 30, 12, 12, 6, 6]}
    assert runs[0].model.cell == "lstm" and runs[0].task.length == 30
    assert runs[-1].model.cell == "rnn" and runs[-1].task.length == 6
    # ties (the two seeds of one point) keep the grid order
    assert all(order[i] < order[i + 1] for i in range(0, len(order), 2))
    # a costlier point by iterations and layers
    deeper = make_sweep(base, {"model.num_layers": [1, 2]}, 0, (0,), source="t")
    assert backends.longest_first(deeper, [0, 1]) == [1, 0]
    longer = make_sweep(base, {"training.iterations": [1, 3]}, None, (0,), source="t")
    assert backends.cost(longer, 1) == 3 * backends.cost(longer, 0)


def test_a_pool_hands_out_the_longest_runs_first_and_writes_the_table_in_grid_order(files):
    from rnnsim.sweep import backends

    _, path = files
    sweep = load_sweep(path)
    todo = list(range(sweep.n_runs))
    pool = backends.Pool(sweep, todo, workers=2)
    rows = list(pool.results())
    assert sorted(i for i, _ in rows) == todo
    assert pool.rest == backends.longest_first(sweep, [i for i in todo if i not in {j[0] for j in pool.warm}])
    costs = [backends.cost(sweep, i) for i in pool.rest]
    assert costs == sorted(costs, reverse=True) and costs[0] > costs[-1]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt and malloc_trim are glibc's")
def test_keep_heap_stops_the_page_faults_of_repeated_runs():
    """backends.keep_heap: after it, the same run again and again takes (almost) no fresh pages from the kernel;
    before, each run's freed arrays went back to the kernel and came back as page faults. In a child process: the
    setting is for the whole process."""
    code = """
import resource, sys
from rnnsim.sweep import load_sweep
from rnnsim.sweep.backends import job, keep_heap, run_job, trim_heap
sweep = load_sweep("regimes")
_, sc, n = job(sweep, sweep.n_runs - 1)          # the largest run of the grid (T = 200)
def faults(repeats):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(repeats):
        run_job(sc, n)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults(3)
default = faults(20)
assert keep_heap() is True
faults(3)
kept = faults(20)
trim_heap()                                       # hands the free pages back: the next runs fault again
after_trim = faults(1)
print(default, kept, after_trim)
"""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    default, kept, after_trim = map(int, result.stdout.split())
    assert kept < 200 and default > 20 * 100, (default, kept)   # ~1000 pages per run before, ~0 after
    assert after_trim > 100


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt and malloc_trim are glibc's")
def test_a_forked_worker_hands_back_the_free_heap_it_inherited_and_the_parent_keeps_its_own():
    """The parent's free heap (kept by keep_heap) is shared with a forked worker until one of them writes a page,
    and that first write copies it: the worker drops its mapping of it at start (_worker_init trims), the parent
    keeps it (Pool does not trim this process). Resident sizes from /proc, in a child process (the malloc
    settings are for the whole process)."""
    code = """
import os, sys
import numpy as np
from rnnsim.sweep import load_sweep
from rnnsim.sweep import backends
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page
assert backends.keep_heap() is True
sweep = load_sweep("regimes")
list(backends.Pool(sweep, list(range(4)), workers=2).results())     # the kernels loaded: rss grows no more
a = np.ones(48 * 2**20 // 8)                      # 48 MiB from the heap (below the 64 MiB mmap threshold)
del a                                             # freed, kept mapped
kept = rss()
pid = os.fork()
if pid == 0:
    before = rss()
    backends._worker_init(None, (), os.getppid())
    os._exit(0 if before - rss() > 32 * 2**20 else 3)
_, status = os.waitpid(pid, 0)
worker_trimmed = os.waitstatus_to_exitcode(status) == 0
list(backends.Pool(sweep, list(range(4, 8)), workers=2).results())
print(worker_trimmed, kept - rss() < 16 * 2**20)
"""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]


def test_threaded_blas_is_read_from_the_largest_grid_point(files):
    from rnnsim.sweep import backends
    from rnnsim.sweep.spec import make_sweep

    _, path = files
    base = load_sweep(path).base
    small = make_sweep(base, {"model.hidden_size": [8, 16]}, 0, (0, 1), source="t")
    assert backends.threaded_blas(small, list(range(small.n_runs))) is False
    # T = 200, B = 32, an LSTM at H = 128: (T·B x 4H) by (4H x H) is 2·6400·512·128 = 0.84 GFLOP
    big = make_sweep(base, {"model.hidden_size": [8, 128], "model.cell": ["lstm"], "task.length": [200],
                            "task.batch_size": [32]}, 0, (0, 1), source="t")
    assert backends.threaded_blas(big, list(range(big.n_runs))) is True
    assert backends.threaded_blas(big, [0, 1]) is False          # only the H = 8 point left (a resumed sweep)


def _blas_threads_chunk(sweep, indices):
    from threadpoolctl import threadpool_info

    threads = max(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"
                  and not os.path.basename(os.path.dirname(lib["filepath"] or "")).startswith("scipy"))
    return [(i, {"seconds": 0.0, "threads": threads}) for i in indices]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the pool forks on Linux")
@pytest.mark.parametrize("large", [False, True])
def test_pool_workers_get_numpy_blas_on_one_thread_when_the_runs_are_large(files, monkeypatch, large):
    """The real Pool, its workers forked: with runs large enough for NumPy's threaded BLAS they run it on one
    thread (one worker per core); with small runs nothing is changed (no threadpoolctl scan before the fork). The
    parent keeps its threads either way."""
    from threadpoolctl import threadpool_info

    from rnnsim.sweep import backends

    def numpy_threads():
        return max(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"
                   and not os.path.basename(os.path.dirname(lib["filepath"] or "")).startswith("scipy"))

    before = numpy_threads()
    if before < 2:
        pytest.skip("NumPy's BLAS has one thread here already")
    _, path = files
    sweep = load_sweep(path)
    monkeypatch.setattr(backends, "threaded_blas", lambda s, todo: large)
    monkeypatch.setattr(backends, "run_chunk", _blas_threads_chunk)  # what the forked workers run
    pool = backends.Pool(sweep, list(range(sweep.n_runs)), workers=2)
    rows = [row for _, row in pool.results() if "threads" in row]
    assert rows and {row["threads"] for row in rows} == ({1} if large else {before})
    assert numpy_threads() == before


def _pid_chunk(sweep, indices):
    from rnnsim.kernels import team

    time.sleep(0.002 * len(indices))  # runs that take a little time, so both processes get some
    return [(i, {"seconds": 0.002, "pid": os.getpid(), "team": team._enabled}) for i in indices]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the pool forks on Linux")
def test_two_local_workers_are_this_process_and_one_forked_process(files, monkeypatch):
    """--workers 2: this process runs chunks itself beside one forked pool worker, with the team's helper thread
    off while it does (both cores are busy) and back on after; every run is handed out once."""
    from rnnsim.kernels import team
    from rnnsim.sweep import backends

    monkeypatch.setattr(team, "_enabled", True)
    _, path = files
    sweep = load_sweep(path)
    monkeypatch.setattr(backends, "run_chunk", _pid_chunk)
    pool = backends.Pool(sweep, list(range(sweep.n_runs)), workers=2)
    rows = list(pool.results())
    assert sorted(i for i, _ in rows) == list(range(sweep.n_runs))
    chunked = [row for _, row in rows if "pid" in row]
    pids = {row["pid"] for row in chunked}
    assert os.getpid() in pids and len(pids) == 2
    assert all(row["team"] is False for row in chunked)
    assert team._enabled is True
    assert pool.name == "2 local workers (this process and 1 forked)"


def test_chunks_estimate_the_seconds_of_what_is_not_handed_out_yet():
    from rnnsim.sweep.backends import Chunks

    chunks = Chunks(list(range(10)), workers=2, costs=[3.0] * 5 + [1.0] * 5)
    assert chunks.seconds_left() == math.inf            # nothing measured yet: keep feeding the workers
    chunks.record(0.03, 3.0)                            # 10 ms per unit of cost
    assert chunks.seconds_left() == pytest.approx(0.2)  # 20 units left
    handed = chunks.next()
    assert chunks.seconds_left() == pytest.approx(0.01 * (20 - sum(3.0 if i < 5 else 1.0 for i in handed)))


def _tail_pool(files, monkeypatch, reserve):
    from rnnsim.sweep import backends

    from rnnsim.sweep.spec import make_sweep

    _, path = files
    scales = [round(0.5 + 0.025 * k, 3) for k in range(40)]
    sweep = make_sweep(load_sweep(path).base, {"model.recurrent_scale": scales}, 0, (0, 1), source="t")  # 80 runs
    monkeypatch.setattr(backends, "run_chunk", _pid_chunk)   # 2 ms per run
    # the warm-up's runs too: the work left is estimated from them, and real runs of this size take ~1 ms here or
    # more under load, so with real runs the estimate could start under the reserve and nothing went to the worker
    monkeypatch.setattr(backends, "run_job", lambda sc, n: _pid_chunk(None, [0])[0][1])
    monkeypatch.setattr(backends, "EXIT_RESERVE", reserve)
    pool = backends.Pool(sweep, list(range(sweep.n_runs)), workers=2)
    told = []
    original = backends.Pool._let_workers_exit

    def let_exit(self):
        told.append((len(rows), list(self.chunks.todo[self.chunks.pos:]), self.chunks.seconds_left()))
        original(self)

    monkeypatch.setattr(backends.Pool, "_let_workers_exit", let_exit)
    rows: list = []
    return sweep, pool, told, rows


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the pool forks on Linux")
def test_the_pool_worker_exits_while_this_process_runs_the_last_runs(files, monkeypatch):
    """The last ~EXIT_RESERVE seconds of work stay in this process: the worker is told to exit once nothing more will be
    handed to it, and exits while this process runs them (its exit is not waited for at the end); every run is
    still handed out once, and the worker is joined when results() ends."""
    sweep, pool, told, rows = _tail_pool(files, monkeypatch, reserve=0.03)
    for item in pool.results():
        rows.append(item)
        if told and not hasattr(pool, "_seen_workers"):
            pool._seen_workers = list(pool._workers)
    assert sorted(i for i, _ in rows) == list(range(sweep.n_runs))
    assert len(told) == 1
    at, left, seconds_left = told[0]
    assert left and seconds_left <= 0.03                # told once the work left is under the reserve
    by = {i: row["pid"] for i, row in rows[at:] if "pid" in row}
    assert all(by[i] == os.getpid() for i in left)      # and that work ran here
    workers = pool._seen_workers
    assert len(workers) == 1 and not workers[0].is_alive() and workers[0].exitcode == 0
    assert pool._executor is None and pool._workers is None


def _rows_until_told(pool, told, rows):
    """The pool's rows until its workers are told to exit (a Ctrl+C in the last runs comes next): the open results
    generator and the one worker the pool kept."""
    results = pool.results()
    for item in results:
        rows.append(item)
        if told:
            break
    assert len(pool._workers) == 1
    return results, pool._workers[0]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the pool forks on Linux")
def test_stopping_the_pool_after_its_worker_was_told_to_exit_still_ends_it(files, monkeypatch):
    """Ctrl+C in the last runs (after shutdown(wait=False), which forgets the executor's processes): stop() ends
    the worker it kept."""
    sweep, pool, told, rows = _tail_pool(files, monkeypatch, reserve=0.1)     # told after ~half of the runs
    results, worker = _rows_until_told(pool, told, rows)
    manager = pool._manager
    assert manager is not None
    pool.stop()
    # the executor's thread, which joins the workers too, is joined by stop(): a worker it reaped but had not yet
    # marked as ended would look alive (ECHILD from waitpid), so the assertions below failed now and then
    assert not manager.is_alive()
    results.close()
    worker.join(timeout=10)
    assert not worker.is_alive() and pool._executor is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the pool forks on Linux")
def test_stop_ends_a_worker_forked_while_a_python_sigterm_handler_was_installed(files, monkeypatch):
    """A process embedding the sweep may have a Python SIGTERM handler that does not exit; the forked worker
    inherits it. Its init puts SIGTERM back to the default, so stop()'s SIGTERM ends it (exit by SIGTERM, not by the
    SIGKILL that follows a timeout)."""
    sweep, pool, told, rows = _tail_pool(files, monkeypatch, reserve=0.1)
    calls: list = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(signum))
    try:
        results, worker = _rows_until_told(pool, told, rows)
        assert worker.is_alive()
        pool.stop()
        results.close()
        worker.join(timeout=10)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert not worker.is_alive() and worker.exitcode == -signal.SIGTERM
    assert calls == []      # the signal went to the worker, not here


_IGNORING: dict = {}
"""The test process's pid and the marker file's path, for :func:`_ignoring_chunk` (set by the test)."""


def _ignoring_chunk(sweep, indices):
    """In a forked worker: ignore SIGTERM, say so in a file, then take far longer than the test."""
    if os.getpid() != _IGNORING["parent"]:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        Path(_IGNORING["marker"]).touch()
        time.sleep(60)
    return _pid_chunk(sweep, indices)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the pool forks on Linux")
def test_stop_kills_a_worker_that_ignores_sigterm(files, monkeypatch, tmp_path):
    """A worker that ignores SIGTERM (code it ran changed the disposition) is killed after STOP_WAIT: stop() never
    leaves a worker behind."""
    from rnnsim.sweep import backends

    sweep, pool, told, rows = _tail_pool(files, monkeypatch, reserve=0.03)
    marker = tmp_path / "ignoring"
    monkeypatch.setitem(_IGNORING, "parent", os.getpid())
    monkeypatch.setitem(_IGNORING, "marker", str(marker))
    monkeypatch.setattr(backends, "run_chunk", _ignoring_chunk)
    monkeypatch.setattr(backends, "STOP_WAIT", 0.5)
    results = pool.results()
    for item in results:
        rows.append(item)
        if marker.exists():
            break
    assert marker.exists()
    workers = list(pool._workers or pool._executor._processes.values())
    assert len(workers) == 1 and workers[0].is_alive()
    started = time.monotonic()
    pool.stop()
    results.close()
    assert not workers[0].is_alive() and workers[0].exitcode == -signal.SIGKILL
    assert time.monotonic() - started < 30     # not the worker's 60 s sleep


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the pool forks on Linux")
def test_the_workers_get_nothing_more_once_told_to_exit_even_if_the_estimate_rises(files, monkeypatch):
    """The time left is re-estimated as runs are timed and may rise above the reserve again after the workers were
    told to exit; nothing more is submitted then (a shut-down executor refuses it), and every run is still done."""
    from rnnsim.sweep import backends

    sweep, pool, told, rows = _tail_pool(files, monkeypatch, reserve=0.01)
    calls = []

    def seconds_left(self):
        calls.append(1)
        return 0.0 if len(calls) == 3 else math.inf      # under the reserve once, then far above it again

    monkeypatch.setattr(backends.Chunks, "seconds_left", seconds_left)
    for item in pool.results():
        rows.append(item)
    assert len(told) == 1 and len(calls) > 3
    assert sorted(i for i, _ in rows) == list(range(sweep.n_runs))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the pool forks on Linux")
def test_the_chunk_sizes_forget_the_warm_up_once_real_rows_are_timed(files, monkeypatch):
    """In a new process the warm-up runs include loading the kernels (~0.6 s for `regimes`): kept in the estimate,
    they made the worker's chunks single runs. The first chunk's rows replace them: what the chunks record is then
    only the rows of real chunks, and the worker's chunks grow past one run."""
    from rnnsim.sweep import backends

    sweep, pool, told, rows = _tail_pool(files, monkeypatch, reserve=0.006)
    monkeypatch.setattr(backends, "run_job", lambda sc, n: {"seconds": 0.5})     # the warm-up: a kernel load
    sizes = []
    original = backends.Chunks.next

    def next_chunk(self, share=1.0):
        chunk = original(self, share)
        if share == 1.0 and chunk:
            sizes.append(len(chunk))
        return chunk

    monkeypatch.setattr(backends.Chunks, "next", next_chunk)
    rows += list(pool.results())
    warm = {index for index, _, _ in pool.warm}
    assert sorted(i for i, _ in rows) == list(range(sweep.n_runs))
    assert pool.chunks.seconds == pytest.approx(sum(r["seconds"] for i, r in rows if i not in warm))
    assert max(sizes[2:]) > 1          # after the first two (sized by the warm-up), chunks of several runs
