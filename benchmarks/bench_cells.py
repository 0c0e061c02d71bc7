"""Forward + backward through T steps, keeping h_t and dL/dh_t for every step: rnnsim against its peers.

Implementations, all on the same data, weights and input size D in one process (benchmarks/peers.py: the job, the
peers, the equality check, the rounds):
  rnnsim      Simulation.forward() + backward() (Numba kernels; includes readout, loss, weight gradients)
  numpy       the cells' plain NumPy references (rnnsim.cells.*.reference_forward/backward)
  torch-cell  a Python loop over torch.nn.RNNCell/LSTMCell/GRUCell with h_t.retain_grad() (the same job)
  torch-fused torch.nn.RNN/LSTM/GRU forward + backward (oneDNN; keeps no per-step dL/dh_t)
  jax         jit(grad) of a lax.scan (optional: only when jax imports; its compile time reported apart)
Method: each row first runs every implementation once and checks its h_t, dL/dh_t, dW, db and dL/dx_t against
rnnsim's (max |a − b| / max |b| ≤ 1e-14 in float64, 1e-4 in float32), then times them in interleaved rounds,
each round starting at the next implementation (A B C, B C A, ...), ≥ 7 rounds, median and spread. The one-core
table runs with every thread of the process pinned to one core (os.sched_setaffinity), torch and the BLAS on one
thread, XLA on one thread (XLA_FLAGS); the two-core rows with both cores free, then with the other core busy (a
spinning process). A NumPy or torch-cell call slower than 0.5 s is not timed ("–"). The load average is printed
with every table. Besides the grid, the same run measures: time per step against H and against T (scaling; SVG
plots with matplotlib), peak RSS for T = 10 000, H = 512, B = 32, cold and warm kernel start-up with the on-disk
cache size, and `rnnsim run vanishing` end to end. Progress goes to stderr.

    python -m benchmarks                                  # everything (< 10 minutes on 2 quiet cores)
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

from benchmarks import peers, plots
from benchmarks._machine import DOC, machine, write_section
from benchmarks.peers import loadavg, pinned, spread  # noqa: F401  (spread: for the scripts that import it here)
from rnnsim import Simulation

torch = peers.torch
ROOT = Path(__file__).resolve().parent.parent
_START = [time.perf_counter()]
#: the core the one-core table runs on (the last one: the first tends to take the system's interrupts)
CORE = (os.cpu_count() or 1) - 1
#: a NumPy or torch-cell call slower than this (its warm-up) is not timed at that row
SLOW = 0.3
OPTIONAL = ("numpy", "torch-cell")
COLUMNS = ("rnnsim", "numpy", "torch-cell", "torch-fused", "jax")


def progress(msg):
    """One progress line on stderr: seconds since the run started, then ``msg``."""
    print(f"[{time.perf_counter() - _START[0]:5.0f} s] {msg}", file=sys.stderr, flush=True)


def scenario(cell, H, B, T, dtype):
    return peers.scenario(cell, H, B, T, dtype)


def timeit(fn, budget=0.4, min_reps=3, max_reps=200):
    """Median seconds per call of ``fn`` after a warm-up (and JIT)."""
    return statistics.median(timeit_all({"f": fn}, budget, min_reps, max_reps)["f"])


def timeit_all(fns, budget=0.3, min_reps=3, max_reps=200):
    """Seconds per call of each function (a list of samples): peers.rounds (rotating order, one warm-up each)."""
    return peers.rounds(fns, min_rounds=min_reps, budget=budget, max_rounds=max_reps)


def jobs(cell, H, B, T, dtype, with_jax=False):
    """The row's implementations (benchmarks/peers.py); JAX only when asked (its compile takes ~1 s a shape)."""
    return peers.jobs(cell, H, B, T, dtype, with_jax=with_jax)


@contextlib.contextmanager
def threads(n):
    """One thread pinned to one core (n = 1), or the process as it is (None)."""
    with pinned(CORE if n == 1 else None):
        yield


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


def measure_row(cell, H, B, T, dtype, mode, with_jax=True):
    """One row: build, check equal, time in rounds. Returns the row's dict (times per step, samples, spreads)."""
    fns = jobs(cell, H, B, T, dtype, with_jax=with_jax)
    compile_s = getattr(fns.get("jax"), "compile_s", None)
    diffs, mismatch = peers.check(fns, dtype)
    for k in mismatch:           # not the same job: not timed (the note names it)
        del fns[k]
    skipped = []
    for k in OPTIONAL:               # check's call was the warm-up; a slow first call (lazy init) gets a second
        if k in fns and fns[k].first_s > SLOW:
            t0 = time.perf_counter()
            fns[k]()
            if time.perf_counter() - t0 > SLOW:
                skipped.append(k)
    for k in skipped:
        del fns[k]
    samples = peers.rounds(fns, warm=False)
    times = {k: statistics.median(v) / T for k, v in samples.items()}
    return dict(mode=mode, dtype=dtype, cell=cell, H=H, B=B, times=times,
                gflops=flops_per_step(cell, H, B) / times["rnnsim"] / 1e9,
                n={k: len(v) for k, v in samples.items()}, spread={k: spread(v) for k, v in samples.items()},
                diffs=diffs, mismatch=mismatch, skipped=skipped, jax_compile=compile_s, load=os.getloadavg()[0])


def run(cells, Hs, Bs, dtypes, thread_modes, T, all_cores=None, skip=()):
    """The grid: "1 core" rows (pinned), then "both cores" and "both cores, other busy" rows at ``all_cores``."""
    rows = []
    all_cores = all_cores or {(H, B) for H in Hs for B in Bs}
    for mode in thread_modes:
        busy = None
        if mode == "other core busy":
            busy = peers.busy_core(0 if CORE != 0 else 1)
        try:
            with threads(1 if mode == "1 core" else None):
                peaks = {dt: peak_gflops(dt) for dt in dtypes}
                for dtype in dtypes:
                    for cell in cells:
                        for H in Hs:
                            for B in Bs:
                                if mode != "1 core" and ((H, B) not in all_cores or dtype != "float32"):
                                    continue
                                if (H, B, dtype) in skip:
                                    continue
                                r = measure_row(cell, H, B, T, dtype, mode, with_jax=mode == "1 core")
                                r["peak"] = peaks[dtype]
                                rows.append(r)
                                progress(fmt_row(r) + f"  load {loadavg()}")
        finally:
            if busy is not None:
                busy.terminate()
                busy.wait()
    return rows


def us(x):
    return f"{x * 1e6:,.1f}" if x is not None else "–"


def fmt_row(r):
    t = r["times"]
    ratio = lambda k, f: f.format(t[k] / t["rnnsim"]) if k in t else "–"  # noqa: E731
    cols = [r["mode"], r["dtype"], r["cell"], str(r["H"]), str(r["B"])] + [us(t.get(k)) for k in COLUMNS]
    cols += [ratio("numpy", "{:.1f}x"), ratio("torch-cell", "{:.1f}x"), ratio("torch-fused", "{:.2f}x"),
             ratio("jax", "{:.2f}x"), f"{r['gflops']:.1f} ({100 * r['gflops'] / r['peak']:.0f}%)"]
    return "| " + " | ".join(cols) + " |"


HEADER = ("| cores | dtype | cell | H | B | rnnsim µs/step | NumPy µs/step | torch cell loop µs/step | "
          "torch fused µs/step | JAX µs/step | NumPy / rnnsim | torch cell / rnnsim | torch fused / rnnsim | "
          "JAX / rnnsim | rnnsim GFLOP/s (% of peak) |\n|" + "---|" * 15)


# ------------------------------------------------------------------------------------------------- scaling
def scaling_H(cell="lstm", dtype="float32", B=32, T=100, Hs=(16, 32, 64, 128, 256, 512, 1024), grid=()):
    """rnnsim's time per step against H (and PyTorch's fused layer beside it), with the local log-log slope; an H
    the one-core ``grid`` rows measured already is taken from there. Returns the table's lines and the numbers
    (for `benchmarks.plots`)."""
    rows = []
    known = {r["H"]: r["times"] for r in grid if r["mode"] == "1 core" and r["cell"] == cell
             and r["dtype"] == dtype and r["B"] == B}
    for H in Hs:
        if H in known:
            rows.append((H, {k: v for k, v in known[H].items() if k in ("rnnsim", "torch-fused")}))
            continue
        fns = {k: v for k, v in peers.jobs(cell, H, B, T, dtype, with_numpy=False, with_jax=False).items()
               if k in ("rnnsim", "torch-fused")}
        rows.append((H, {k: statistics.median(v) / T for k, v in peers.rounds(fns).items()}))
        progress(f"scaling H = {H}: {us(rows[-1][1]['rnnsim'])} µs/step")
    lines = [f"{cell.upper()}, B = {B}, {dtype}, T = {T}, one core; slope = d log(time) / d log(H) from the previous "
             "row "
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
    """One paragraph: how many rounds the grid's timings rest on, how far apart they were, what was left out, how
    equal the results were, and JAX's compile times."""
    n = [(r["n"][k], r["spread"][k], k, r) for r in rows for k in r["n"]]
    fewest = min((c for c, *_ in n), default=0)
    spreads = sorted((sp, k, r) for c, sp, k, r in n if sp is not None)
    text = (f"Samples: every implementation of a row in ≥ {peers.MIN_ROUNDS} interleaved rounds (rotating order; "
            f"fewest in this run: {fewest}) after one warm-up call; NumPy and torch-cell calls slower than {SLOW:g} s "
            f"are not timed (–: {sum(len(r.get('skipped', ())) for r in rows)} of the row cells).")
    if spreads:
        sp, k, r = spreads[-1]
        vals = [v for v, *_ in spreads]
        p90 = statistics.quantiles(vals, n=10, method="inclusive")[-1] if len(vals) > 1 else vals[0]
        text += (f" Spread, interquartile range / median of the rounds: median "
                 f"{100 * statistics.median(vals):.0f}%, 90th percentile {100 * p90:.0f}%, widest {100 * sp:.0f}% "
                 f"({k}, {r['mode']} {r['dtype']} {r['cell']} H = {r['H']} B = {r['B']}).")
    for dt in ("float64", "float32"):
        d = [v for r in rows if r["dtype"] == dt for v in r.get("diffs", {}).values()]
        if d:
            text += (f" Checked equal before timing, {dt}: worst max |a − b| / max |rnnsim| over h_t, dL/dh_t, dW, "
                     f"db, dL/dx_t {max(d):.1e} (tolerance {peers.TOL[dt]:g}).")
    bad = [(r, k) for r in rows for k in r.get("mismatch", ())]
    if bad:
        text += " NOT EQUAL (left out of the row): " + ", ".join(
            f"{k} at {r['dtype']} {r['cell']} H = {r['H']} B = {r['B']}" for r, k in bad) + "."
    comp = [r["jax_compile"] for r in rows if r.get("jax_compile") is not None]
    if comp:
        text += (f" JAX compile (trace + XLA + first call, not in its times): median {statistics.median(comp):.2f} s, "
                 f"max {max(comp):.2f} s per row.")
    return text


def _ratio_target(rows, peer, label, text, where):
    sel = [r for r in rows if where(r)]
    if not sel:
        return []
    if not all(peer in r["times"] for r in sel):
        return [(f"{text} ({label} not measured)", None)]
    worst = min(sel, key=lambda r: r["times"][peer] / r["times"]["rnnsim"])
    f = worst["times"][peer] / worst["times"]["rnnsim"]
    return [(f"{text} (worst row: {f:.2f}x, {worst['dtype']} {worst['cell']} H = {worst['H']} B = {worst['B']}, "
             f"{worst['mode']})", f >= 1)]


def targets(rows, walls_run):
    """The issue's targets, checked on this run's numbers: (text, met) pairs; met is None when this run cannot
    check it (PyTorch or JAX not installed)."""
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
    one = [r for r in rows if r["mode"] in ("1 core", "1 thread")]
    out += _ratio_target(one, "torch-fused", "torch",
                         "LSTM and GRU, float32, B = 32, H = 64 to 512, one core: no slower than torch fused",
                         lambda r: r["cell"] in ("lstm", "gru") and r["dtype"] == "float32" and r["B"] == 32
                         and 64 <= r["H"] <= 512)
    out += _ratio_target(one, "jax", "JAX", "every one-core row: faster than JAX", lambda r: True)
    big = [r for r in rows if r["H"] == 512 and r["B"] == 32 and r["dtype"] == "float32" and r["cell"] == "lstm"]
    for r in big:
        share = r["gflops"] / r["peak"]
        out.append((f"LSTM H = 512, B = 32, float32, {r['mode']}: ≥ 50% of peak matmul ({100 * share:.0f}% of "
                    f"{r['peak']:.0f} GFLOP/s)", share >= 0.5))
    two = [r for r in rows if r["mode"] == "both cores"]
    out += _ratio_target(two, "torch-fused", "torch", "both cores free: no slower than torch fused (2 threads)",
                         lambda r: True)
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
        grid = dict(Hs=[16, 64, 256], Bs=[1, 32], dtypes=["float64"], thread_modes=["1 core"])
    else:
        # two-core rows only at B = 32, H = 256 and 512, float32, where threads can matter (rnnsim's time loop runs
        # on one core; a multi-threaded peer at small sizes on a busy 2-core machine mostly measures the scheduler)
        grid = dict(Hs=[16, 64, 256, 512], Bs=[1, 32], dtypes=["float32", "float64"],
                    thread_modes=["1 core", "both cores", "other core busy"], all_cores={(256, 32), (512, 32)},
                    skip={(512, 1, "float64"), (512, 32, "float64")})   # the run's time: under 10 minutes
    load0 = os.getloadavg()
    t0 = _START[0] = time.perf_counter()
    if torch is None:
        progress("note: torch not installed, the PyTorch columns are skipped (`pip install torch==2.13.0` for them)")
    progress(f"grid: {len(cells)} cells, H {grid['Hs']}, B {grid['Bs']}, {', '.join(grid['dtypes'])}, "
             f"{', '.join(grid['thread_modes'])}")
    rows = run(cells, T=args.T, **grid)
    extra = not (args.quick or args.grid_only)
    if extra:
        with threads(1):
            progress("scaling with H (one core)")
            sH = scaling_H(grid=rows)
            progress("scaling with T (one core)")
            sT = scaling_T()
        progress("memory (a subprocess per case)")
        mem = memory(cases=(("rnn", "float32"), ("lstm", "float32")))
        progress("start-up (subprocesses, cold and warm numba cache)")
        start, wall_run = startup()
    wall = time.perf_counter() - t0
    progress(f"done in {wall:.0f} s")
    load1 = os.getloadavg()
    cmd = ("python -m benchmarks.bench_cells --quick" if args.quick else
           "python -m benchmarks" + (" --grid-only" if args.grid_only else ""))
    peaks = sorted({(r["mode"], r["dtype"], r["peak"]) for r in rows})
    body = [f"Command: `{cmd}` (took {wall:.0f} s). Machine: {machine()}.",
            f"Load average (/proc/loadavg 1, 5, 15 min) at start: {' '.join(f'{x:.2f}' for x in load0)}; at end: "
            f"{' '.join(f'{x:.2f}' for x in load1)}; 1-min load per row: {min(r['load'] for r in rows):.2f} to "
            f"{max(r['load'] for r in rows):.2f} on {os.cpu_count()} cores (the ratios come from interleaved rounds "
            "in one process, so they are fairer than the absolute times).",
            f"Cores: '1 core' = every thread pinned to core {CORE}, torch / BLAS / XLA on one thread; 'both cores' = "
            "unpinned, torch and NumPy with their default threads (rnnsim: packed float32 plans share each step's "
            "product with a helper thread, rnnsim/kernels/team.py; the others run their time loop on one thread); "
            "'other core busy' = the same with a spinning process pinned to the other core.", "",
            f"Forward + backward through T = {args.T} steps, keeping h_t and dL/dh_t at every step; time per step "
            "(median of interleaved rounds). Ratios > 1 mean rnnsim is faster. torch rows: "
            + (f"PyTorch {torch.__version__}." if torch is not None else
               "skipped (torch not installed: `pip install torch==2.13.0` for them).")
            + (f" JAX {peers.jax_module().__version__} (jit + lax.scan + grad, one core only)."
               if peers.jax_module() is not None else " JAX: not installed (never a dependency), no column."),
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
