"""The suite's soak: one minute of play and training in the headless TUI (benchmarks/soak.py), in a subprocess.
Pass: RSS at the end < 10% above RSS after the warm-up, no growth of the median frame time (the 30-minute run and
its numbers: docs/reliability.md). The history stays bounded: the worker's sim.history never exceeds its cap."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rnnsim.history import HISTORY_CAP

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_one_minute_soak_holds():
    proc = subprocess.run([sys.executable, "-m", "benchmarks.soak", "--minutes", "1", "--sample", "4"], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines and lines[-1].get("summary"), proc.stderr[-2000:]
    summary, samples = lines[-1], lines[:-1]
    assert len(samples) >= 8
    assert summary["iterations"] > 0 and summary["steps"] > 0  # it really played and trained
    assert {s["phase"] for s in samples} >= {"play max", "train max"}
    assert all(s["history"] <= HISTORY_CAP for s in samples)
    assert summary["rss_ok"], summary
    assert summary["frame_ok"], summary
    assert proc.returncode == 0
