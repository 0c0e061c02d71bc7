"""The fixed cost of one pass and the step API's cost per call at small sizes: the fused small pass
(rnnsim/kernels/fused.py) against the unfused drivers it replaced, in one process, pinned to one core, interleaved.

Fixed cost per pass = the intercept of the straight line through the T = 10 and T = 1000 times of a forward +
backward pass (H = 16, B = 1 by default); the step API = T step_forward + T step_backward calls, per call.

    python -m benchmarks.bench_fixed                     # rnn, lstm, gru, float64, 15 rounds
    python -m benchmarks.bench_fixed --cells lstm --rounds 31 --dtype float32
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from benchmarks.peers import loadavg, pinned, scenario
from rnnsim import Simulation


def _fns(cell, T, fused, H, B, dtype):
    sim = Simulation(scenario(cell, H, B, T, dtype))
    if not fused:
        sim._fused = None          # the drivers' path (what every pass ran before the fused kernels)

    def whole():
        sim.forward()
        sim.backward()

    def steps():
        sim.phase = "idle"
        while sim.step_forward():
            pass
        while sim.step_backward():
            pass
    return whole, steps


def measure(cell, H=16, B=1, dtype="float64", rounds=15, Ts=(10, 1000)):
    """{(path, kind, T): median seconds per pass} and the same for the minimum; path 'old' (unfused) or 'new'."""
    fns = {}
    for path in ("old", "new"):
        for T in Ts:
            whole, steps = _fns(cell, T, path == "new", H, B, dtype)
            fns[(path, "pass", T)], fns[(path, "step", T)] = whole, steps
    for f in fns.values():
        f()
    keys = list(fns)
    times = {k: [] for k in keys}
    for r in range(rounds):
        for i in range(len(keys)):
            k = keys[(i + r) % len(keys)]
            reps = 40 if k[2] <= 10 else 2
            t0 = time.perf_counter()
            for _ in range(reps):
                fns[k]()
            times[k].append((time.perf_counter() - t0) / reps)
    return times


def report(cell, times, Ts=(10, 1000)):
    lo, hi = Ts
    lines = []
    for stat in (statistics.median, min):
        m = {k: stat(v) for k, v in times.items()}
        for kind in ("pass", "step"):
            parts = []
            for path in ("old", "new"):
                a, b = m[(path, kind, lo)], m[(path, kind, hi)]
                slope = (b - a) / (hi - lo)
                if kind == "pass":
                    parts.append(f"{path}: fixed {(a - lo * slope) * 1e6:5.1f} µs + {slope * 1e6:.2f} µs/step "
                                 f"(T = {lo}: {a * 1e6:.1f} µs)")
                else:
                    parts.append(f"{path}: {a / (2 * lo) * 1e6:5.2f} µs/call (T = {lo}), {b / (2 * hi) * 1e6:5.2f} "
                                 f"(T = {hi})")
            ratio = m[("new", kind, lo)] / m[("old", kind, lo)]
            lines.append(f"{cell:4} {kind} [{stat.__name__}]  " + "  |  ".join(parts) + f"  new/old at T = {lo}: "
                         f"{ratio:.2f}")
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", default="rnn,lstm,gru")
    ap.add_argument("--dtype", default="float64")
    ap.add_argument("--H", type=int, default=16)
    ap.add_argument("--B", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--core", type=int, default=(os.cpu_count() or 1) - 1, help="the core to pin to")
    a = ap.parse_args(argv)
    core = a.core
    print(f"load before: {loadavg()}; pinned to core {core}; H = {a.H}, B = {a.B}, {a.dtype}, {a.rounds} rounds",
          flush=True)
    with pinned(core):
        for cell in a.cells.split(","):
            for line in report(cell, measure(cell, a.H, a.B, a.dtype, a.rounds)):
                print(line, flush=True)
    print(f"load after: {loadavg()}")


if __name__ == "__main__":
    main()
