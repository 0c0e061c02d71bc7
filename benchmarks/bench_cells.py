"""Forward + backward through T steps, keeping h_t and dL/dh_t for every step: rnnsim vs NumPy vs PyTorch.

Implementations, all on the same data and weights in one process:
  rnnsim      Simulation.forward() + backward() (Numba step kernels; includes readout, loss, weight gradients)
  numpy       the cells' plain NumPy references (rnnsim.cells.*.reference_forward/backward)
  torch-cell  a Python loop over torch.nn.RNNCell/LSTMCell/GRUCell with h_t.retain_grad() (the same job)
  torch-fused torch.nn.RNN/LSTM/GRU forward + backward (keeps less: no per-step dL/dh_t; for reference)
Timing: after a warm-up, the implementations of one row run in interleaved rounds (so a burst of load from other
processes hits all of them alike) and each reports the median of its rounds, per time step; a call slower than
0.5 s is timed once after its warm-up, and a NumPy or PyTorch call slower than 1 s by its warm-up alone (the
table's note says how many and how far the rounds spread). Ratios are taken within this one run. Besides the grid,
the same run measures: time per step against H and against T (scaling; SVG plots with matplotlib), peak RSS for
T = 10 000, H = 512, B = 32 (a subprocess per case, two at a time), cold and warm kernel start-up with the on-disk
cache size, and `rnnsim run vanishing` end to end. Progress goes to stderr.

    python -m benchmarks                                  # everything (the issue-6 benchmark), < 5 minutes
    python -m benchmarks.bench_cells --quick              # H in {16, 64, 256}, B in {1, 32}, float64, grid only
"""

from __future__ import annotations

import argparse
import concurrent.futures
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

from benchmarks import plots
from benchmarks._machine import DOC, machine, write_section
from rnnsim import Simulation
from rnnsim.cells import gru, lstm, rnn
from rnnsim.scenario import Scenario

try:
    import torch
except ImportError:  # optional
    torch = None

REFS = {"rnn": rnn, "lstm": lstm, "gru": gru}
ROOT = Path(__file__).resolve().parent.parent
_START = [time.perf_counter()]


def progress(msg):
    """One progress line on stderr: seconds since the run started, then ``msg``."""
    print(f"[{time.perf_counter() - _START[0]:5.0f} s] {msg}", file=sys.stderr, flush=True)


def scenario(cell, H, B, T, dtype):
    return Scenario.from_dict({
        "scenario": {"name": "bench", "seed": 0},
        "model": {"cell": cell, "hidden_size": H, "dtype": dtype},
        "task": {"kind": "random", "length": T, "batch_size": B, "input_size": 16},
    })


def timeit(fn, budget=0.4, min_reps=3, max_reps=200):
    """Median seconds per call of ``fn`` after a warm-up (and JIT)."""
    return statistics.median(timeit_all({"f": fn}, budget, min_reps, max_reps)["f"])


#: a warm-up call longer than this is the only sample of a function that allocates afresh on every call
ONCE = 1.0
#: the functions of `jobs` that do (NumPy and PyTorch); rnnsim's first call fills its preallocated workspace
FRESH = frozenset({"numpy", "torch-cell", "torch-fused"})


def timeit_all(fns, budget=0.3, min_reps=3, max_reps=200, slow=0.5, once=ONCE, fresh=FRESH):
    """Seconds per call of each function (a list of samples), run in interleaved rounds after one warm-up call
    each. Rounds continue until ``budget`` seconds and ``min_reps`` rounds; a function whose warm-up took more
    than ``slow`` seconds is timed once more only (the largest rows), and one in ``fresh`` whose warm-up took more
    than ``once`` seconds not at all: its warm-up is its sample (the largest NumPy and PyTorch rows; their first
    call does what every call does, and on a busy machine their threaded BLAS can stall for seconds a call)."""
    times = {k: [] for k in fns}
    warm = {}
    for k, f in fns.items():
        t0 = time.perf_counter()
        f()
        warm[k] = time.perf_counter() - t0
        if k in fresh and warm[k] > once:
            times[k].append(warm[k])
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
    return times


def spread(samples):
    """Interquartile range / median of at least 3 samples (robust to one stalled round), else None."""
    if len(samples) < 3:
        return None
    q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return (q3 - q1) / statistics.median(samples)


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
                            samples = timeit_all(jobs(cell, H, B, T, dtype))
                            times = {k: statistics.median(v) / T for k, v in samples.items()}
                            gflops = flops_per_step(cell, H, B) / times["rnnsim"] / 1e9
                            rows.append(dict(mode=mode, dtype=dtype, cell=cell, H=H, B=B, times=times,
                                             gflops=gflops, peak=peaks[dtype],
                                             n={k: len(v) for k, v in samples.items()},
                                             spread={k: spread(v) for k, v in samples.items()}))
                            progress(fmt_row(rows[-1]))
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
    """rnnsim's time per step against H (and PyTorch's fused layer beside it), with the local log-log slope.
    Returns the table's lines and the numbers (for `benchmarks.plots`)."""
    rows = []
    for H in Hs:
        fns = jobs(cell, H, B, T, dtype)
        fns = {k: v for k, v in fns.items() if k in ("rnnsim", "torch-fused")}
        rows.append((H, {k: statistics.median(v) / T for k, v in timeit_all(fns, budget=0.3).items()}))
        progress(f"scaling H = {H}: {us(rows[-1][1]['rnnsim'])} µs/step")
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
    series = {"rnnsim": [t["rnnsim"] for _, t in rows]}
    if all("torch-fused" in t for _, t in rows):
        series[f"torch fused nn.{cell.upper()}"] = [t["torch-fused"] for _, t in rows]
    return lines, dict(cell=cell, dtype=dtype, B=B, T=T, H=[H for H, _ in rows], series=series)


def scaling_T(cell="lstm", dtype="float64", H=64, B=32, Ts=(10, 100, 1000, 10000)):
    """rnnsim's time per step against T: should be flat (every step is the same work). Returns the table's lines
    and the numbers (for `benchmarks.plots`)."""
    lines = [f"{cell.upper()}, H = {H}, B = {B}, {dtype}: forward + backward, time per step.", "",
             "| T | rnnsim µs/step |", "|---|---|"]
    per_step = []
    for T in Ts:
        sim = Simulation(scenario(cell, H, B, T, dtype))

        def f():
            sim.forward()
            sim.backward()

        per_step.append(timeit(f, budget=0.3) / T)
        lines.append(f"| {T} | {us(per_step[-1])} |")
        progress(f"scaling T = {T}: {us(per_step[-1])} µs/step")
    return lines, dict(cell=cell, dtype=dtype, H=H, B=B, T=list(Ts), series={"rnnsim": per_step})


def scaling_section(cmd, sH, sT, images=()):
    """The "Cell kernels: scaling" section: both tables, each under its plot if ``images`` (written paths) has it."""
    names = {Path(p).name for p in images}

    def plot(name, alt):
        return [f"![{alt}](images/{name})", ""] if name in names else []

    if names:
        how = "Plots written to docs/images/ by the same command (matplotlib: `pip install -e '.[bench]'`)."
    else:
        how = ("No plots: matplotlib was not installed for this run (`pip install -e '.[bench]'`, then the same "
               "command writes them to docs/images/).")
    return "\n".join([f"From the same run (`{cmd}`). {how}", "", "### Time per step against H (log-log)", ""]
                     + plot(plots.H_SVG, "rnnsim and torch fused time per step against H, log-log") + sH[0]
                     + ["", "### Time per step against T", ""]
                     + plot(plots.T_SVG, "rnnsim time per step against T") + sT[0])


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


def _memory_case(cell, dtype, T, H, B, env):
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _MEM, cell, dtype, str(T), str(H), str(B)], env=env,
                         capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        return f"| {cell} | {dtype} | failed: {(out.stderr.strip().splitlines() or ['?'])[-1]} | | | | | |"
    r = json.loads(out.stdout)
    mib = lambda b: f"{b / 2**20:,.0f} MiB"  # noqa: E731
    line = (f"| {cell} | {dtype} | {mib(r['api'])} | {mib(r['workspace'])} | {mib(r['peak'] - r['base'])} "
            f"| {(r['peak'] - r['base']) / r['api']:.2f}x | {mib(r['peak'])} | {wall:.0f} s |")
    progress(line)
    return line


def memory(cases=(("rnn", "float32"), ("rnn", "float64"), ("gru", "float32"), ("lstm", "float32")),
           T=10_000, H=512, B=32, at_once=2):
    """Peak RSS (VmHWM, or ru_maxrss) of a subprocess that runs one forward + backward, against the API's arrays.
    ``at_once`` subprocesses run side by side (the gated cells first: they take longest): a process's peak RSS does
    not depend on what else runs, only its time does."""
    lines = [f"T = {T}, H = {H}, B = {B}, input size 16: one forward + backward in a fresh process; peak RSS = VmHWM "
             "(Linux; elsewhere ru_maxrss), 'baseline' = the peak after importing and compiling (before the "
             "Simulation); 'arrays the API keeps' = hidden, grad_hidden, inputs, outputs, targets, loss_mask, grad_inputs, cell_state (LSTM), params, grads."
             + (f" The cases run {at_once} at a time (peak RSS is per process; 'time' is the case's wall time beside "
                "the other)." if at_once > 1 else ""),
             "", "| cell | dtype | arrays the API keeps | workspace + data allocated | peak RSS − baseline | "
             "(peak − baseline) / API | peak RSS | time |", "|---|---|---|---|---|---|---|---|"]
    env = dict(os.environ, RNNSIM_MAX_BYTES=str(64 << 30))
    order = sorted(range(len(cases)), key=lambda i: cases[i][0] == "rnn")  # LSTM/GRU first (stable otherwise)
    with concurrent.futures.ThreadPoolExecutor(max_workers=at_once) as pool:
        futures = {i: pool.submit(_memory_case, *cases[i], T, H, B, env) for i in order}
        lines += [futures[i].result() for i in range(len(cases))]
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
t0 = time.perf_counter()
from rnnsim.kernels import load_kernels
load_kernels()  # import numba (+ llvmlite, SciPy's BLAS) and make the dispatchers: machine code comes per call
res["numba"] = time.perf_counter() - t0
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
            progress(f"start-up, {label} cache: float64 {runs[label]['float64']:.1f} s, "
                     f"float32 {runs[label]['float32']:.1f} s")
        size = _du(cache)
        cmd = [sys.executable, "-m", "rnnsim", "run", "vanishing", "--quiet"]
        walls = []  # the cache is warm: the compile subprocess above ran every kernel
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
        f"| `import rnnsim` + Simulation module, no numba yet (cold / warm) | {c['import']:.2f} s / {w['import']:.2f} s "
        "| |",
        f"| import numba, llvmlite and SciPy's BLAS, make the dispatchers (cold / warm) | {c['numba']:.2f} s / "
        f"{w['numba']:.2f} s | |",
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


def sampling_note(rows):
    """One paragraph: how many samples the grid's timings rest on and how far apart their rounds were."""
    n = [(r["n"][k], r["spread"][k], k, r) for r in rows for k in r["n"]]
    single = sum(1 for c, *_ in n if c == 1)
    spreads = sorted((sp, k, r) for c, sp, k, r in n if sp is not None)
    text = (f"Samples: an implementation is timed in ≥ 3 interleaved rounds while a call takes < 0.5 s, once after "
            f"its warm-up above that, and NumPy and PyTorch calls above {ONCE:g} s by their warm-up call alone (they "
            f"allocate afresh on every call); {single} of the {len(n)} timings above rest on one call.")
    if spreads:
        sp, k, r = spreads[-1]
        vals = [v for v, *_ in spreads]
        p90 = statistics.quantiles(vals, n=10, method="inclusive")[-1] if len(vals) > 1 else vals[0]
        text += (f" Spread of the others, interquartile range / median of their rounds: median "
                 f"{100 * statistics.median(vals):.0f}%, 90th percentile {100 * p90:.0f}%, widest {100 * sp:.0f}% "
                 f"({k}, {r['mode']} {r['dtype']} {r['cell']} H = {r['H']} B = {r['B']}).")
    return text


def targets(rows, walls_run):
    """The issue's targets, checked on this run's numbers: (text, met) pairs; met is None when this run cannot
    check it (PyTorch not installed)."""
    out = []
    small = [r for r in rows if r["H"] <= 64 and r["B"] == 1]
    if small:
        if all("torch-cell" in r["times"] for r in small):
            tc = min(r["times"]["torch-cell"] / r["times"]["rnnsim"] for r in small)
            out.append((f"H ≤ 64, B = 1: ≥ 10x faster than the PyTorch cell loop (worst row: {tc:.1f}x)", tc >= 10))
        else:
            out.append(("H ≤ 64, B = 1: ≥ 10x faster than the PyTorch cell loop (torch not installed)", None))
        npr = min(r["times"]["numpy"] / r["times"]["rnnsim"] for r in small)
        out.append((f"H ≤ 64, B = 1: ≥ 5x faster than NumPy (worst row: {npr:.1f}x)", npr >= 5))
    big = [r for r in rows if r["H"] == 512 and r["B"] == 32 and r["dtype"] == "float32" and r["cell"] == "lstm"]
    for r in big:
        if "torch-fused" in r["times"]:
            f = r["times"]["torch-fused"] / r["times"]["rnnsim"]
            out.append((f"LSTM H = 512, B = 32, float32, {r['mode']}: no slower than fused nn.LSTM ({f:.2f}x)", f >= 1))
        else:
            out.append((f"LSTM H = 512, B = 32, float32, {r['mode']}: no slower than fused nn.LSTM (torch not "
                        "installed)", None))
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
    t0 = _START[0] = time.perf_counter()
    if torch is None:
        progress("note: torch not installed, the PyTorch columns are skipped (`pip install torch==2.13.0` for them)")
    progress(f"grid: {len(cells)} cells, H {grid['Hs']}, B {grid['Bs']}, {', '.join(grid['dtypes'])}, "
             f"{', '.join(grid['thread_modes'])}")
    rows = run(cells, T=args.T, **grid)
    extra = not (args.quick or args.grid_only)
    if extra:
        progress("scaling with H")
        sH = scaling_H()
        progress("scaling with T")
        sT = scaling_T()
        progress("memory (a subprocess per case)")
        mem = memory(cases=(("rnn", "float32"), ("rnn", "float64"), ("lstm", "float32")))
        progress("start-up (subprocesses, cold and warm numba cache)")
        start, wall_run = startup()
    wall = time.perf_counter() - t0
    progress(f"done in {wall:.0f} s")
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
    body += ["", sampling_note(rows)]
    if extra:
        body += ["", "Targets (checked on this run):", ""]
        verdict = {True: "met", False: "MISSED", None: "not checked"}
        body += [f"- {verdict[ok]}: {text}" for text, ok in targets(rows, wall_run)]
    text = "\n".join(body)
    print(text)
    if extra:
        print("\n".join(["", "Scaling with H:"] + sH[0] + ["", "Scaling with T:"] + sT[0] + ["", "Memory:"] + mem
                        + ["", "Start-up:"] + start))
    if not args.no_write:
        write_section("Cell kernels" + (" (quick)" if args.quick else ""), text)
        if extra:
            images = plots.scaling_svgs(DOC.parent / "images", sH[1], sT[1])
            write_section("Cell kernels: scaling", scaling_section(cmd, sH, sT, images))
            write_section("Cell kernels: memory", "\n".join([f"From the same run (`{cmd}`).", ""] + mem))
            write_section("Cell kernels: start-up", "\n".join(
                [f"From the same run (`{cmd}`); each row a fresh process; cold = an empty temporary "
                 "NUMBA_CACHE_DIR. The first TUI frame is measured by `benchmarks/bench_tui.py` (section TUI).", ""]
                + start))


if __name__ == "__main__":
    main()
