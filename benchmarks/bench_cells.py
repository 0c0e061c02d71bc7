"""Forward + backward through T steps, keeping h_t and dL/dh_t for every step: rnnsim vs NumPy vs PyTorch.

Implementations, all on the same data and weights in one process:
  rnnsim      Simulation.forward() + backward() (Numba step kernels; includes readout, loss, weight gradients)
  numpy       the cells' plain NumPy references (rnnsim.cells.*.reference_forward/backward)
  torch-cell  a Python loop over torch.nn.RNNCell/LSTMCell/GRUCell with h_t.retain_grad() (the same job)
  torch-fused torch.nn.RNN/LSTM/GRU forward + backward (keeps less: no per-step dL/dh_t; for reference)
Timing: after a warm-up, the implementations of one row run in interleaved rounds (so a burst of load from other
processes hits all of them alike) and each reports the median of its rounds, per time step. Ratios are taken
within this one run. Besides the grid, the same run measures: time per step against H and against T (scaling),
peak RSS for T = 10 000, H = 512, B = 32 (a subprocess per case), cold and warm kernel start-up with the on-disk
cache size, and `rnnsim run vanishing` end to end.

    python -m benchmarks                                  # everything (the issue-6 benchmark), < 5 minutes
    python -m benchmarks.bench_cells --quick              # H in {16, 64, 256}, B in {1, 32}, float64, grid only
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._machine import machine, write_section
from rnnsim import Simulation
from rnnsim.cells import gru, lstm, rnn
from rnnsim.scenario import Scenario

try:
    import torch
except ImportError:  # optional
    torch = None

REFS = {"rnn": rnn, "lstm": lstm, "gru": gru}
ROOT = Path(__file__).resolve().parent.parent


def scenario(cell, H, B, T, dtype):
    return Scenario.from_dict({
        "scenario": {"name": "bench", "seed": 0},
        "model": {"cell": cell, "hidden_size": H, "dtype": dtype},
        "task": {"kind": "random", "length": T, "batch_size": B, "input_size": 16},
    })


def timeit(fn, budget=0.4, min_reps=3, max_reps=200):
    """Median seconds per call of ``fn`` after a warm-up (and JIT)."""
    return timeit_all({"f": fn}, budget, min_reps, max_reps)["f"]


def timeit_all(fns, budget=0.3, min_reps=3, max_reps=200, slow=0.5):
    """Median seconds per call of each function, run in interleaved rounds after one warm-up call each.
    Rounds continue until ``budget`` seconds and ``min_reps`` rounds; a function whose warm-up took more than
    ``slow`` seconds is timed once more only (the largest NumPy and PyTorch rows)."""
    times = {k: [] for k in fns}
    warm = {}
    for k, f in fns.items():
        t0 = time.perf_counter()
        f()
        warm[k] = time.perf_counter() - t0
    start = time.perf_counter()
    rounds = 0
    while rounds < max_reps and (rounds < min_reps or time.perf_counter() - start < budget):
        for k, f in fns.items():
            if warm[k] > slow and times[k]:
                continue
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
        rounds += 1
    return {k: statistics.median(v) for k, v in times.items()}


def jobs(cell, H, B, T, dtype):
    sim = Simulation(scenario(cell, H, B, T, dtype))

    def run_rnnsim():
        sim.forward()
        sim.backward()

    run_rnnsim.sim = sim  # for other measurements of the same simulation (bench_small: the step API)
    X, p = sim._X, sim.params
    ref = REFS[cell]
    dh_out = np.zeros((T, B, H), dtype=sim.dtype)
    dh_out[-1] = 1.0

    def run_numpy():
        fw = ref.reference_forward(X, p)
        ref.reference_backward(X, p, fw, dh_out)

    out = {"rnnsim": run_rnnsim, "numpy": run_numpy}
    if torch is not None:
        tdt = torch.float64 if dtype == "float64" else torch.float32
        Cell = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}[cell]
        Layer = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
        tcell = Cell(sim.D, H).to(tdt)
        layer = Layer(sim.D, H).to(tdt)
        x = torch.tensor(X, dtype=tdt)

        def run_torch_cell():
            h = torch.zeros(B, H, dtype=tdt)
            c = torch.zeros(B, H, dtype=tdt)
            hs = []
            for t in range(T):
                if cell == "lstm":
                    h, c = tcell(x[t], (h, c))
                else:
                    h = tcell(x[t], h)
                h.retain_grad()
                hs.append(h)
            hs[-1].sum().backward()

        def run_torch_fused():
            y, _ = layer(x)
            y[-1].sum().backward()

        out["torch-cell"] = run_torch_cell
        out["torch-fused"] = run_torch_fused
    return out


@contextlib.contextmanager
def threads(n):
    """Limit BLAS (threadpoolctl), Numba and torch to n threads (None: leave as is)."""
    if n is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    old = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(n)
    with threadpool_limits(limits=n):
        yield
    if torch is not None:
        torch.set_num_threads(old)


def peak_gflops(dtype, n=2048):
    a = np.random.default_rng(0).standard_normal((n, n)).astype(dtype)
    b = a.copy()
    t = timeit(lambda: a @ b, budget=1.0)
    return 2 * n**3 / t / 1e9


def flops_per_step(cell, H, B, D=16):
    """Multiply-add FLOPs of one forward+backward step: recurrent GEMM forward, da W_hh and dW_hh backward,
    and the input projection, its weight gradient and dL/dx (elementwise work not counted)."""
    G = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    return 2 * B * G * H * (3 * H + 3 * D)


def run(cells, Hs, Bs, dtypes, thread_modes, T, all_cores=None):
    rows = []
    all_cores = all_cores or {(H, B) for H in Hs for B in Bs}
    for mode in thread_modes:
        with threads(1 if mode == "1 thread" else None):
            peaks = {dt: peak_gflops(dt) for dt in dtypes}
            for dtype in dtypes:
                for cell in cells:
                    for H in Hs:
                        for B in Bs:
                            if mode != "1 thread" and (H, B) not in all_cores:
                                continue
                            times = {k: v / T for k, v in timeit_all(jobs(cell, H, B, T, dtype)).items()}
                            gflops = flops_per_step(cell, H, B) / times["rnnsim"] / 1e9
                            rows.append(dict(mode=mode, dtype=dtype, cell=cell, H=H, B=B, times=times,
                                             gflops=gflops, peak=peaks[dtype]))
                            print(fmt_row(rows[-1]), file=sys.stderr, flush=True)
    return rows


def us(x):
    return f"{x * 1e6:,.1f}" if x is not None else "–"


def fmt_row(r):
    t = r["times"]
    cols = [r["mode"], r["dtype"], r["cell"], str(r["H"]), str(r["B"]), us(t["rnnsim"]), us(t["numpy"]),
            us(t.get("torch-cell")), us(t.get("torch-fused")),
            f"{t['numpy'] / t['rnnsim']:.1f}x",
            f"{t['torch-cell'] / t['rnnsim']:.1f}x" if "torch-cell" in t else "–",
            f"{t['torch-fused'] / t['rnnsim']:.2f}x" if "torch-fused" in t else "–",
            f"{r['gflops']:.1f} ({100 * r['gflops'] / r['peak']:.0f}%)"]
    return "| " + " | ".join(cols) + " |"


HEADER = ("| threads | dtype | cell | H | B | rnnsim µs/step | NumPy µs/step | torch cell loop µs/step | "
          "torch fused µs/step | NumPy / rnnsim | torch cell / rnnsim | torch fused / rnnsim | "
          "rnnsim GFLOP/s (% of peak) |\n|" + "---|" * 13)


# ------------------------------------------------------------------------------------------------- scaling
def scaling_H(cell="lstm", dtype="float32", B=32, T=100, Hs=(16, 32, 64, 128, 256, 512, 1024)):
    """rnnsim's time per step against H (and PyTorch's fused layer beside it), with the local log-log slope."""
    rows = []
    for H in Hs:
        fns = jobs(cell, H, B, T, dtype)
        fns = {k: v for k, v in fns.items() if k in ("rnnsim", "torch-fused")}
        rows.append((H, {k: v / T for k, v in timeit_all(fns, budget=0.3).items()}))
        print(f"scaling H={H}: {us(rows[-1][1]['rnnsim'])} µs/step", file=sys.stderr, flush=True)
    lines = [f"{cell.upper()}, B = {B}, {dtype}, T = {T}; slope = d log(time) / d log(H) from the previous row "
             "(2 = the H² of the recurrent GEMM; below 2 while per-call overhead still counts).", "",
             "| H | rnnsim µs/step | slope | torch fused µs/step |", "|---|---|---|---|"]
    for k, (H, t) in enumerate(rows):
        if k == 0:
            slope = "–"
        else:
            H0, t0 = rows[k - 1]
            slope = f"{math.log(t['rnnsim'] / t0['rnnsim']) / math.log(H / H0):.2f}"
        lines.append(f"| {H} | {us(t['rnnsim'])} | {slope} | {us(t.get('torch-fused'))} |")
    return lines


def scaling_T(cell="lstm", dtype="float64", H=64, B=32, Ts=(10, 100, 1000, 10000)):
    """rnnsim's time per step against T: should be flat (every step is the same work)."""
    lines = [f"{cell.upper()}, H = {H}, B = {B}, {dtype}: forward + backward, time per step.", "",
             "| T | rnnsim µs/step |", "|---|---|"]
    for T in Ts:
        sim = Simulation(scenario(cell, H, B, T, dtype))

        def f():
            sim.forward()
            sim.backward()

        lines.append(f"| {T} | {us(timeit(f, budget=0.3) / T)} |")
    return lines


# -------------------------------------------------------------------------------------------------- memory
_MEM = r"""
import json, resource, sys

def hwm():  # peak RSS in bytes: VmHWM (Linux's ru_maxrss starts from the parent's peak across fork + exec)
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
from rnnsim import Simulation
from rnnsim.scenario import Scenario
scenario = lambda cell, H, B, T, dtype: Scenario.from_dict({"scenario": {"name": "bench", "seed": 0},
    "model": {"cell": cell, "hidden_size": H, "dtype": dtype},
    "task": {"kind": "random", "length": T, "batch_size": B, "input_size": 16}})
cell, dtype, T, H, B = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
small = Simulation(scenario(cell, 8, 2, 3, dtype)); small.forward(); small.backward(); del small   # compile first
base = hwm()
sim = Simulation(scenario(cell, H, B, T, dtype))
sim.forward(); sim.backward()
peak = hwm()
api = [sim.hidden, sim.grad_hidden, sim.inputs, sim.outputs, sim.targets, sim.grad_inputs, sim.loss_mask]
api += [sim.cell_state] if sim.cell_state is not None else []
api_bytes = sum(a.nbytes for a in api) + sum(v.nbytes for d in (sim.params, sim.grads) for v in d.values())
print(json.dumps(dict(base=base, peak=peak, api=api_bytes, workspace=sim.workspace.nbytes())))
"""


def memory(cases=(("rnn", "float32"), ("rnn", "float64"), ("gru", "float32"), ("lstm", "float32")),
           T=10_000, H=512, B=32):
    """Peak RSS (VmHWM, or ru_maxrss) of a subprocess that runs one forward + backward, against the API's arrays."""
    lines = [f"T = {T}, H = {H}, B = {B}, input size 16: one forward + backward in a fresh process; peak RSS = VmHWM "
             "(Linux; elsewhere ru_maxrss), 'baseline' = the peak after importing and compiling (before the "
             "Simulation); 'arrays the API keeps' = hidden, grad_hidden, inputs, outputs, targets, loss_mask, grad_inputs, cell_state (LSTM), params, grads.",
             "", "| cell | dtype | arrays the API keeps | workspace + data allocated | peak RSS − baseline | "
             "(peak − baseline) / API | peak RSS | time |", "|---|---|---|---|---|---|---|---|"]
    env = dict(os.environ, RNNSIM_MAX_BYTES=str(64 << 30))
    for cell, dtype in cases:
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", _MEM, cell, dtype, str(T), str(H), str(B)], env=env,
                             capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - t0
        if out.returncode != 0:
            lines.append(f"| {cell} | {dtype} | failed: {out.stderr.strip().splitlines()[-1]} | | | | | |")
            continue
        r = json.loads(out.stdout)
        mib = lambda b: f"{b / 2**20:,.0f} MiB"  # noqa: E731
        lines.append(f"| {cell} | {dtype} | {mib(r['api'])} | {mib(r['workspace'])} | {mib(r['peak'] - r['base'])} "
                     f"| {(r['peak'] - r['base']) / r['api']:.2f}x | {mib(r['peak'])} | {wall:.0f} s |")
        print(lines[-1], file=sys.stderr, flush=True)
    return lines


# ------------------------------------------------------------------------------------------------ start-up
_COMPILE = r"""
import json, time
t0 = time.perf_counter()
from rnnsim import Simulation
t_import = time.perf_counter() - t0
from rnnsim.scenario import Scenario
scenario = lambda cell, H, B, T, dtype: Scenario.from_dict({"scenario": {"name": "bench", "seed": 0},
    "model": {"cell": cell, "hidden_size": H, "dtype": dtype},
    "task": {"kind": "random", "length": T, "batch_size": B, "input_size": 16}})
res = {"import": t_import}
for dtype in ("float64", "float32"):
    t0 = time.perf_counter()
    for cell, extra in (("rnn", {}), ("rnn", {"model.activation": "relu"}), ("rnn", {"model.layernorm": True}),
                        ("lstm", {}), ("gru", {})):
        sim = Simulation(scenario(cell, 8, 2, 3, dtype).with_changes(extra))
        sim.forward(); sim.backward()
    res[dtype] = time.perf_counter() - t0
print(json.dumps(res))
"""


def _du(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def startup():
    """Kernel compile (empty NUMBA_CACHE_DIR) vs cache load, the cache's size, and `rnnsim run vanishing`."""
    lines = ["| measurement | result | target |", "|---|---|---|"]
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        runs = {}
        for label in ("cold", "warm"):
            out = subprocess.run([sys.executable, "-c", _COMPILE], env=env, capture_output=True, text=True, cwd=ROOT)
            runs[label] = json.loads(out.stdout)
        size = _du(cache)
        cmd = [sys.executable, "-m", "rnnsim", "run", "vanishing", "--quiet"]
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, cwd=ROOT)  # populates nothing new: already warm
        walls = []
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env, capture_output=True, cwd=ROOT)
            walls.append(time.perf_counter() - t0)
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        subprocess.run(cmd, env=dict(os.environ, NUMBA_CACHE_DIR=cache), capture_output=True, cwd=ROOT)
        cold_run = time.perf_counter() - t0
    c, w = runs["cold"], runs["warm"]
    lines += [
        f"| `import rnnsim` + Simulation module (cold / warm) | {c['import']:.2f} s / {w['import']:.2f} s | |",
        f"| compile every float64 kernel (rnn tanh, relu, LayerNorm, lstm, gru), empty cache | {c['float64']:.2f} s | "
        "in the background (the TUI draws first) |",
        f"| the same float32 kernels, empty cache | {c['float32']:.2f} s | |",
        f"| load them from the cache (float64 / float32) | {w['float64']:.2f} s / {w['float32']:.2f} s | |",
        f"| numba cache on disk (both dtypes, every cell) | {size / 2**20:.1f} MiB | report |",
        f"| `rnnsim run vanishing --quiet`, warm cache, end to end (median of 3) | {statistics.median(walls):.2f} s "
        "| < 1.5 s |",
        f"| the same, empty cache | {cold_run:.2f} s | |",
    ]
    return lines, statistics.median(walls)


def targets(rows, walls_run):
    """The issue's targets, checked on this run's numbers: (text, met) pairs."""
    out = []
    small = [r for r in rows if r["H"] <= 64 and r["B"] == 1 and "torch-cell" in r["times"]]
    if small:
        tc = min(r["times"]["torch-cell"] / r["times"]["rnnsim"] for r in small)
        npr = min(r["times"]["numpy"] / r["times"]["rnnsim"] for r in small)
        out.append((f"H ≤ 64, B = 1: ≥ 10x faster than the PyTorch cell loop (worst row: {tc:.1f}x)", tc >= 10))
        out.append((f"H ≤ 64, B = 1: ≥ 5x faster than NumPy (worst row: {npr:.1f}x)", npr >= 5))
    big = [r for r in rows if r["H"] == 512 and r["B"] == 32 and r["dtype"] == "float32" and r["cell"] == "lstm"]
    for r in big:
        if "torch-fused" in r["times"]:
            f = r["times"]["torch-fused"] / r["times"]["rnnsim"]
            out.append((f"LSTM H = 512, B = 32, float32, {r['mode']}: no slower than fused nn.LSTM ({f:.2f}x)", f >= 1))
        share = r["gflops"] / r["peak"]
        out.append((f"LSTM H = 512, B = 32, float32, {r['mode']}: ≥ 50% of peak matmul ({100 * share:.0f}% of "
                    f"{r['peak']:.0f} GFLOP/s)", share >= 0.5))
    if walls_run is not None:
        out.append((f"`rnnsim run vanishing` warm < 1.5 s ({walls_run:.2f} s)", walls_run < 1.5))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="grid only: H 16/64/256, B 1/32, float64, all threads")
    ap.add_argument("--grid-only", action="store_true", help="the table only (no scaling, memory, start-up)")
    ap.add_argument("--cells", default="rnn,lstm,gru")
    ap.add_argument("--T", type=int, default=100)
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = ap.parse_args(argv)
    cells = args.cells.split(",")
    if args.quick:
        grid = dict(Hs=[16, 64, 256], Bs=[1, 32], dtypes=["float64"], thread_modes=["all cores"])
    else:
        # all-core rows only at H = 512, B = 32, where threads can matter (rnnsim's time loop runs on one core;
        # a multi-threaded NumPy/PyTorch at small sizes on a busy 2-core machine mostly measures the scheduler)
        grid = dict(Hs=[16, 64, 256, 512], Bs=[1, 32], dtypes=["float32", "float64"],
                    thread_modes=["1 thread", "all cores"], all_cores={(512, 32)})
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    rows = run(cells, T=args.T, **grid)
    extra = not (args.quick or args.grid_only)
    if extra:
        sH = scaling_H()
        sT = scaling_T()
        mem = memory(cases=(("rnn", "float32"), ("rnn", "float64"), ("lstm", "float32")))
        start, wall_run = startup()
    wall = time.perf_counter() - t0
    load1 = os.getloadavg()
    cmd = ("python -m benchmarks.bench_cells --quick" if args.quick else
           "python -m benchmarks" + (" --grid-only" if args.grid_only else ""))
    peaks = sorted({(r["mode"], r["dtype"], r["peak"]) for r in rows})
    body = [f"Command: `{cmd}` (took {wall:.0f} s). Machine: {machine()}.",
            f"Load average (1 min) at start / end: {load0[0]:.1f} / {load1[0]:.1f} on {os.cpu_count()} cores "
            "(other jobs shared the machine; rows run their implementations interleaved, so ratios are fairer than "
            "absolute times).", "",
            f"Forward + backward through T = {args.T} steps, keeping h_t and dL/dh_t at every step; time per step "
            "(median of interleaved rounds). Ratios > 1 mean rnnsim is faster. torch rows: "
            + (f"PyTorch {torch.__version__}." if torch is not None else
               "skipped (torch not installed: `pip install torch==2.13.0` for them)."),
            "GFLOP/s counts the GEMM work of a step (see `flops_per_step`); peak = a 2048² NumPy matmul in the same "
            "run: " + ", ".join(f"{m} {d} {p:.0f} GFLOP/s" for m, d, p in peaks) + ".", "", HEADER]
    body += [fmt_row(r) for r in rows]
    if extra:
        body += ["", "Targets (checked on this run):", ""]
        body += [f"- {'met' if ok else 'MISSED'}: {text}" for text, ok in targets(rows, wall_run)]
    text = "\n".join(body)
    print(text)
    if extra:
        print("\n".join(["", "Scaling with H:"] + sH + ["", "Scaling with T:"] + sT + ["", "Memory:"] + mem
                        + ["", "Start-up:"] + start))
    if not args.no_write:
        write_section("Cell kernels" + (" (quick)" if args.quick else ""), text)
        if extra:
            write_section("Cell kernels: scaling", "\n".join(
                [f"From the same run (`{cmd}`).", "", "### Time per step against H (log-log)", ""] + sH
                + ["", "### Time per step against T", ""] + sT))
            write_section("Cell kernels: memory", "\n".join([f"From the same run (`{cmd}`).", ""] + mem))
            write_section("Cell kernels: start-up", "\n".join(
                [f"From the same run (`{cmd}`); each row a fresh process; cold = an empty temporary "
                 "NUMBA_CACHE_DIR. The first TUI frame is measured by `benchmarks/bench_tui.py` (section TUI).", ""]
                + start))


if __name__ == "__main__":
    main()
