"""estimate_bytes is an upper bound of the measured peak RSS growth of a Simulation's pass, for every cell, memory
mode, readout and task (issue 15 item 5), and the refusal names the real cause.

The measurement runs in one subprocess (benchmarks/memory_bound.py): per case the kernels are loaded on a tiny
copy first, the peak is reset (/proc/self/clear_refs), then Simulation + 2 training iterations + the gradient
profile; peak growth = VmHWM − VmRSS before. Sizes stay at ~150 MB per case at most; CACHE_LIMIT is lowered in the
subprocess so chunked mode runs at these sizes. The big shapes of the issue (attention at T = 8000, alphabet 1000 at
T = 2000) are `python -m benchmarks.memory_bound --big` (numbers in docs/reliability.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnnsim
from rnnsim.scenario import ScenarioError, estimate_bytes

ROOT = Path(__file__).resolve().parents[2]

R = {"task.kind": "random"}
CASES = {
    "rnn cached": {**R, "model.cell": "rnn", "model.hidden_size": 128, "task.length": 1000, "task.batch_size": 16},
    "rnn layernorm": {**R, "model.cell": "rnn", "model.layernorm": True, "model.hidden_size": 64,
                      "task.length": 1000, "task.batch_size": 16},
    "rnn float32": {**R, "model.cell": "rnn", "model.dtype": "float32", "model.hidden_size": 128,
                    "task.length": 1000, "task.batch_size": 16},
    "rnn chunked": {**R, "model.cell": "rnn", "model.hidden_size": 128, "task.length": 2000, "task.batch_size": 16},
    "lstm cached": {**R, "model.cell": "lstm", "model.hidden_size": 32, "task.length": 500, "task.batch_size": 16},
    "lstm chunked": {**R, "model.cell": "lstm", "model.hidden_size": 128, "task.length": 1000,
                     "task.batch_size": 16},
    "lstm folded": {**R, "model.cell": "lstm", "model.hidden_size": 128, "task.input_size": 128,
                    "task.length": 30, "task.batch_size": 32},
    "lstm chunked wide input": {**R, "model.cell": "lstm", "model.hidden_size": 128, "task.input_size": 128,
                                "task.length": 100, "task.batch_size": 32},
    "gru cached": {**R, "model.cell": "gru", "model.hidden_size": 32, "task.length": 500, "task.batch_size": 16},
    "gru chunked": {**R, "model.cell": "gru", "model.hidden_size": 128, "task.length": 1000, "task.batch_size": 16},
    "attention T=2000": {**R, "model.cell": "attention", "model.hidden_size": 16, "task.length": 2000,
                         "task.batch_size": 1},
    "attention readout T=2000": {**R, "model.cell": "rnn", "model.readout": "attention", "model.hidden_size": 16,
                                 "task.length": 2000, "task.batch_size": 1},
    "copy alphabet 1000": {"model.cell": "rnn", "model.hidden_size": 32, "task.kind": "copy", "task.alphabet": 1000,
                           "task.symbols": 10, "task.length": 200, "task.batch_size": 16},
    "wide input": {**R, "model.cell": "gru", "model.hidden_size": 32, "task.input_size": 1024, "task.length": 200,
                   "task.batch_size": 32},
    "adding lstm": {"model.cell": "lstm", "model.hidden_size": 32, "task.kind": "adding", "task.length": 1000,
                    "task.batch_size": 32},
    "digits pixel": {"model.cell": "rnn", "model.hidden_size": 64, "task.kind": "digits", "task.order": "pixel",
                     "task.batch_size": 256},
}

SCRIPT = """
import json, os, sys
os.environ["RNNSIM_MAX_BYTES"] = "64G"
from rnnsim.kernels import config
config.CACHE_LIMIT = 8 << 20   # chunked mode at test sizes (the estimate reads the same limit)
from benchmarks import memory_bound
memory_bound.run(json.loads(sys.argv[1]))
"""


@pytest.fixture(scope="module")
def data_cases(tmp_path_factory):
    d = tmp_path_factory.mktemp("memdata")
    rng = np.random.default_rng(0)
    np.savez(d / "seq.npz", inputs=rng.standard_normal((64, 400, 16)), targets=rng.standard_normal((64, 400, 8)))
    rows = rng.standard_normal((5000, 8))
    (d / "series.csv").write_text("a,b,c,d,e,f,g,h\n" + "\n".join(",".join(f"{v:.6f}" for v in r) for r in rows))
    return {
        "file npz": {"model.cell": "gru", "model.hidden_size": 64, "task.kind": "file",
                     "task.path": str(d / "seq.npz"), "task.batch_size": 32},
        "series csv": {"model.cell": "lstm", "model.hidden_size": 64, "task.kind": "series",
                       "task.path": str(d / "series.csv"), "task.length": 300, "task.batch_size": 32},
    }


@pytest.mark.slow
def test_estimate_is_an_upper_bound_of_measured_peak_rss(data_cases):
    cases = {**CASES, **data_cases}
    from benchmarks.memory_bound import MALLOC_ENV

    proc = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(cases)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={**os.environ, **MALLOC_ENV})
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [r["case"] for r in rows] == list(cases)
    over = [r for r in rows if r["peak"] > r["estimate"]]
    assert not over, over
    # the measurement is real: each case grew by at least a few MB
    assert all(r["peak"] > 2 << 20 for r in rows), rows


def _refusal(changes: dict, limit: str, monkeypatch) -> str:
    monkeypatch.setenv("RNNSIM_MAX_BYTES", limit)
    with pytest.raises(ScenarioError) as err:
        rnnsim.load_scenario("vanishing").with_changes(changes)
    return str(err.value)


def test_refusal_names_t_squared_for_attention(monkeypatch):
    msg = _refusal({"model.cell": "attention", "model.hidden_size": 16, "task.kind": "random",
                    "task.length": 20000, "task.batch_size": 2}, "4G", monkeypatch)
    assert "grow with T²" in msg and "task.length = 20000" in msg and "model.hidden_size =" not in msg
    assert "attention cell" in msg and " … " not in msg and len(msg) <= 300
    msg = _refusal({"model.readout": "attention", "model.hidden_size": 16, "task.kind": "random",
                    "task.length": 20000, "task.batch_size": 2}, "4G", monkeypatch)
    assert "attention readout" in msg and "T²" in msg and " … " not in msg and len(msg) <= 300


def test_refusal_names_the_alphabet(monkeypatch):
    msg = _refusal({"task.kind": "copy", "task.alphabet": 1000, "task.symbols": 10, "task.length": 20000,
                    "task.batch_size": 64}, "4G", monkeypatch)
    assert "task.alphabet = 1000: 1002 one-hot inputs and 1001 outputs per step" in msg and " … " not in msg
    assert "reduce task.alphabet" in msg and "RNNSIM_MAX_BYTES" in msg


def test_refusal_names_the_input_size(monkeypatch):
    msg = _refusal({"task.kind": "random", "task.input_size": 4096, "task.length": 20000, "task.batch_size": 64,
                    "model.hidden_size": 16}, "4G", monkeypatch)
    assert "task.input_size = 4096 inputs per step" in msg and "reduce task.input_size" in msg


def test_refusal_for_hidden_states_keeps_h_t_b(monkeypatch):
    msg = _refusal({"model.hidden_size": 4096, "task.length": 100000, "task.batch_size": 4096}, "8G", monkeypatch)
    assert msg.count("model.hidden_size = 4096, task.length = 100000, task.batch_size = 4096") == 1
    assert "8.0 GiB" in msg and len(msg) < 300


def test_estimate_counts_the_t_squared_terms():
    sc = rnnsim.load_scenario("vanishing").with_changes(
        {"model.cell": "attention", "model.hidden_size": 16, "task.kind": "random", "task.batch_size": 1})
    small, big = (estimate_bytes(sc.with_changes({"task.length": t})) for t in (1000, 2000))
    assert big > 3.5 * small  # quadratic in T, not linear (the T² terms dominate at H = 16)
