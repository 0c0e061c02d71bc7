"""`rnnsim sweep --scheduler`: the same table on a Dask LocalCluster and on a real `dask scheduler` + `dask worker`
pair on loopback as in one process. Skips without the 'dask' extra."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]

BASE = """\
[scenario]
name = "dask small"
seed = 2
[model]
cell = "rnn"
hidden_size = 8
init = "orthogonal"
[task]
kind = "random"
length = 10
batch_size = 4
[training]
clip = "norm"
clip_threshold = 0.1
"""

SWEEP = """\
[sweep]
scenario = "base.toml"
iterations = 2
seeds = [0, 1]
[sweep.grid]
"model.recurrent_scale" = [0.5, 1.0, 1.5]
"model.cell" = ["rnn", "gru"]
"""


def _env():
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("RNNSIM_DEBUG", None)
    return env


def sweep(*args, cwd):
    proc = subprocess.run([sys.executable, "-m", "rnnsim", "sweep", *map(str, args)], capture_output=True,
                          text=True, env=_env(), cwd=cwd, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


def table(path):
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


@pytest.fixture
def grid(tmp_path):
    (tmp_path / "base.toml").write_text(BASE)
    (tmp_path / "grid.toml").write_text(SWEEP)
    sweep("grid.toml", "--out", "serial.csv", "--workers", "1", cwd=tmp_path)
    return tmp_path


def test_local_cluster_gives_the_same_table(grid):
    proc = sweep("grid.toml", "--out", "local.csv", "--scheduler", "local", "--workers", "2", cwd=grid)
    assert "a local Dask cluster" in proc.stdout
    assert table(grid / "local.csv") == table(grid / "serial.csv")


@pytest.fixture
def dask_cluster(tmp_path):
    """`dask scheduler` and `dask worker --nworkers 2` as subprocesses, on 127.0.0.1 only."""
    info = tmp_path / "scheduler.json"
    procs = []
    try:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", str(info)],
            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 60
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(info.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", "2", "--nthreads", "1",
             "--host", "127.0.0.1", "--no-dashboard"],
            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=90)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def test_dask_scheduler_and_workers_give_the_same_table(grid, dask_cluster):
    proc = sweep("grid.toml", "--out", "cluster.csv", "--scheduler", dask_cluster, cwd=grid)
    assert f"the Dask scheduler at {dask_cluster}" in proc.stdout
    assert table(grid / "cluster.csv") == table(grid / "serial.csv")
    assert len(table(grid / "serial.csv")) == 12


def test_unreachable_scheduler_is_one_line(grid):
    proc = subprocess.run([sys.executable, "-m", "rnnsim", "sweep", "grid.toml", "--out", "x.csv", "--scheduler",
                           "tcp://127.0.0.1:9"], capture_output=True, text=True, cwd=grid, timeout=120,
                          env={**_env(), "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"})
    assert proc.returncode == 1
    assert "cannot reach a Dask scheduler" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
