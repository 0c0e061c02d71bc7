"""The small rows of the issue-6 grid (H ≤ 64) on one thread, where per-pass overhead decides: rnnsim vs NumPy,
with the torch jobs interleaved as in bench_cells (they evict the caches between rnnsim's passes, which is what the
grid measures), and the step API (T step_forward + T step_backward calls, as the TUI drives it).

    python -m benchmarks.bench_small                      # every cell, both dtypes, H in {16, 64}, B in {1, 32}
    python -m benchmarks.bench_small --cells rnn --B 1 --json   # one JSON object per row (for A/B scripts)

Compare two checkouts by running this alternately from each (PYTHONPATH=<checkout>), several times: one run's
numbers move with the load of the machine.
"""

from __future__ import annotations

import argparse
import json
import sys

from benchmarks.bench_cells import jobs, threads, timeit_all


def step_api(sim):
    """One pass through the step API: step_forward until done, then step_backward until done."""
    def run():
        sim.phase = "idle"
        while sim.step_forward():
            pass
        while sim.step_backward():
            pass
    return run


def row(cell, H, B, dtype, T=100, budget=1.0, with_torch=True):
    fns = jobs(cell, H, B, T, dtype)
    if not with_torch:
        fns = {k: fns[k] for k in ("rnnsim", "numpy")}
    # the step API after NumPy, so that rnnsim's pass follows the torch jobs as in bench_cells (not its own steps,
    # which would leave its code and data in the caches)
    run = fns.pop("rnnsim")
    fns = {"rnnsim": run, "numpy": fns.pop("numpy"), "step-api": step_api(run.sim), **fns}
    times = timeit_all(fns, budget=budget, max_reps=2000)
    return {"cell": cell, "dtype": dtype, "H": H, "B": B,
            "rnnsim_us": times["rnnsim"] / T * 1e6, "numpy_us": times["numpy"] / T * 1e6,
            "ratio": times["numpy"] / times["rnnsim"], "step_api_us": times["step-api"] / (2 * T) * 1e6}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", default="rnn,lstm,gru")
    ap.add_argument("--dtypes", default="float64,float32")
    ap.add_argument("--H", default="16,64")
    ap.add_argument("--B", default="1,32")
    ap.add_argument("--budget", type=float, default=1.0, help="seconds of interleaved rounds per row")
    ap.add_argument("--no-torch", action="store_true", help="leave the torch jobs out of the rounds")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    with threads(1):
        for dtype in a.dtypes.split(","):
            for cell in a.cells.split(","):
                for H in map(int, a.H.split(",")):
                    for B in map(int, a.B.split(",")):
                        r = row(cell, H, B, dtype, budget=a.budget, with_torch=not a.no_torch)
                        if a.json:
                            print(json.dumps(r), flush=True)
                        else:
                            print(f"{dtype:8} {cell:5} H={H:3} B={B:3}  rnnsim {r['rnnsim_us']:8.2f} µs/step  "
                                  f"numpy {r['numpy_us']:8.2f}  ratio {r['ratio']:5.2f}x  "
                                  f"step API {r['step_api_us']:6.2f} µs/call", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
