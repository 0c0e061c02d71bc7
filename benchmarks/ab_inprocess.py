"""A/B in one process: this checkout's rnnsim against the package as it was at a git revision, on the small rows.

The package at REV is extracted (``git archive``) into a cache folder as ``rnnsim_base`` (its imports renamed) and
imported next to ``rnnsim``; both simulations, the NumPy reference and the torch jobs of bench_cells run in
interleaved rounds (see fair_rounds: each simulation right after a torch job, as in the grid, where the caches
are cold), so a burst of load from other processes hits old and new alike and ``new/old`` stays meaningful on a
busy machine where absolute times swing 2-3x between runs.

    python -m benchmarks.ab_inprocess --base fb17ea3                  # H in {16, 64}, B in {1, 32}, every cell
    python -m benchmarks.ab_inprocess --base fb17ea3 --cells rnn --B 1 --steps   # and the step API

The first run for a revision compiles its kernels (its own Numba cache folder: later runs are warm).
"""

from __future__ import annotations

import argparse
import io
import re
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from benchmarks.bench_cells import ROOT, jobs, threads
from benchmarks.bench_small import step_api


def base_package(rev: str):
    """Import the package as of ``rev`` as ``rnnsim_base`` (extracted once per commit into the user cache)."""
    sha = subprocess.run(["git", "rev-parse", rev], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    folder = Path.home() / ".cache" / "rnnsim" / "ab" / sha[:12]
    pkg = folder / "rnnsim_base"
    if not pkg.exists():
        tar = subprocess.run(["git", "archive", sha, "rnnsim"], cwd=ROOT, capture_output=True, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(tar)) as t:
            t.extractall(folder / "tmp", filter="data")
        for f in (folder / "tmp" / "rnnsim").rglob("*.py"):
            f.write_text(re.sub(r"\b(from|import) rnnsim\b", r"\1 rnnsim_base", f.read_text()))
        (folder / "tmp" / "rnnsim").rename(pkg)
    sys.path.insert(0, str(folder))
    import rnnsim_base
    from rnnsim_base.scenario import Scenario
    return rnnsim_base.Simulation, Scenario


def fair_rounds(old, new, fns, steps, budget, min_rounds=5):
    """Median seconds per call of each, in rounds until ``budget`` seconds: old and new each run right after a
    torch job (cold caches, as in bench_cells), which one after which job alternating between rounds; the step API
    jobs after NumPy. Without torch, old and new alternate directly after NumPy."""
    torch_jobs = [fns[k] for k in ("torch-cell", "torch-fused") if k in fns] or [fns["numpy"]]
    times = {k: [] for k in ("old", "new", "numpy", *steps)}
    for f in (old, new, fns["numpy"], *steps.values(), *torch_jobs):
        f()                                                          # warm-up
    start, rounds = time.perf_counter(), 0
    while rounds < min_rounds or time.perf_counter() - start < budget:
        pair = [("old", old), ("new", new)][:: 1 if rounds % 2 == 0 else -1]
        for (name, f), cold in zip(pair, torch_jobs * 2):
            cold()
            t0 = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t0)
        for name, f in [("numpy", fns["numpy"]), *steps.items()][:: 1 if rounds % 2 == 0 else -1]:
            t0 = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t0)
        rounds += 1
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="git revision to compare against")
    ap.add_argument("--cells", default="rnn,lstm,gru")
    ap.add_argument("--dtypes", default="float64,float32")
    ap.add_argument("--H", default="16,64")
    ap.add_argument("--B", default="1,32")
    ap.add_argument("--T", type=int, default=100)
    ap.add_argument("--budget", type=float, default=2.0, help="seconds of interleaved rounds per row")
    ap.add_argument("--steps", action="store_true", help="also the step API (µs per step_forward/step_backward call)")
    a = ap.parse_args(argv)
    Old, OldScenario = base_package(a.base)
    T = a.T
    with threads(1):
        for dtype in a.dtypes.split(","):
            for cell in a.cells.split(","):
                for H in map(int, a.H.split(",")):
                    for B in map(int, a.B.split(",")):
                        fns = jobs(cell, H, B, T, dtype)
                        new = fns.pop("rnnsim")
                        old_sim = Old(OldScenario.from_dict({
                            "scenario": {"name": "bench", "seed": 0},
                            "model": {"cell": cell, "hidden_size": H, "dtype": dtype},
                            "task": {"kind": "random", "length": T, "batch_size": B, "input_size": 16}}))

                        def old():
                            old_sim.forward()
                            old_sim.backward()
                        steps = {"old steps": step_api(old_sim), "new steps": step_api(new.sim)} if a.steps else {}
                        t = {k: v / T * 1e6 for k, v in fair_rounds(old, new, fns, steps, a.budget).items()}
                        line = (f"{dtype:8} {cell:5} H={H:3} B={B:3}  old {t['old']:8.2f}  new {t['new']:8.2f} µs/step"
                                f"  new/old {t['new'] / t['old']:.2f}  NumPy/old {t['numpy'] / t['old']:5.1f}x"
                                f"  NumPy/new {t['numpy'] / t['new']:5.1f}x")
                        if a.steps:
                            line += f"  step API old {t['old steps'] / 2:.2f}  new {t['new steps'] / 2:.2f} µs/call"
                        print(line, flush=True)


if __name__ == "__main__":
    main()
