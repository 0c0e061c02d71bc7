"""Forward + backward through T steps, keeping h_t and dL/dh_t for every step: rnnsim vs NumPy vs PyTorch.

Implementations, all on the same data and weights in one process:
  rnnsim      Simulation.forward() + backward() (Numba step kernels; includes readout, loss, weight gradients)
  numpy       the cells' plain NumPy references (rnnsim.cells.*.reference_forward/backward)
  torch-cell  a Python loop over torch.nn.RNNCell/LSTMCell/GRUCell with h_t.retain_grad() (the same job)
  torch-fused torch.nn.RNN/LSTM/GRU forward + backward (keeps less: no per-step dL/dh_t; for reference)
Timing: the median of repeats after a warm-up; reported per time step. Ratios are taken within this one run.

    python -m benchmarks.bench_cells                      # the full grid, 1 thread and all cores
    python -m benchmarks.bench_cells --quick              # H in {16, 64, 256}, B in {1, 32}, float64
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time

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


def scenario(cell, H, B, T, dtype):
    return Scenario.from_dict({
        "scenario": {"name": "bench", "seed": 0},
        "model": {"cell": cell, "hidden_size": H, "dtype": dtype},
        "task": {"kind": "random", "length": T, "batch_size": B, "input_size": 16},
    })


def timeit(fn, budget=0.4, min_reps=3, max_reps=200):
    fn()  # warm-up (and JIT)
    times = []
    start = time.perf_counter()
    while len(times) < max_reps and (len(times) < min_reps or time.perf_counter() - start < budget):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def jobs(cell, H, B, T, dtype):
    sim = Simulation(scenario(cell, H, B, T, dtype))

    def run_rnnsim():
        sim.forward()
        sim.backward()

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


def run(cells, Hs, Bs, dtypes, thread_modes, T):
    rows = []
    for mode in thread_modes:
        with threads(1 if mode == "1 thread" else None):
            peaks = {dt: peak_gflops(dt) for dt in dtypes}
            for dtype in dtypes:
                for cell in cells:
                    for H in Hs:
                        for B in Bs:
                            times = {k: timeit(f) / T for k, f in jobs(cell, H, B, T, dtype).items()}
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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="H 16/64/256, B 1/32, float64, all threads")
    ap.add_argument("--cells", default="rnn,lstm,gru")
    ap.add_argument("--T", type=int, default=100)
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = ap.parse_args(argv)
    cells = args.cells.split(",")
    if args.quick:
        grid = dict(Hs=[16, 64, 256], Bs=[1, 32], dtypes=["float64"], thread_modes=["all cores"])
    else:
        grid = dict(Hs=[16, 64, 256, 512], Bs=[1, 32], dtypes=["float32", "float64"],
                    thread_modes=["1 thread", "all cores"])
    t0 = time.perf_counter()
    rows = run(cells, T=args.T, **grid)
    wall = time.perf_counter() - t0
    cmd = "python -m benchmarks.bench_cells" + (" --quick" if args.quick else "")
    peaks = sorted({(r["mode"], r["dtype"], r["peak"]) for r in rows})
    body = [f"Command: `{cmd}` (took {wall:.0f} s). Machine: {machine()}.", "",
            f"Forward + backward through T = {args.T} steps, keeping h_t and dL/dh_t at every step; time per step "
            "(median of repeats). Ratios > 1 mean rnnsim is faster. torch rows: "
            + (f"PyTorch {torch.__version__}." if torch is not None else "skipped (torch not installed)."),
            "GFLOP/s counts the GEMM work of a step (see `flops_per_step`); peak = a 2048² NumPy matmul in the same "
            "run: " + ", ".join(f"{m} {d} {p:.0f} GFLOP/s" for m, d, p in peaks) + ".", "", HEADER]
    body += [fmt_row(r) for r in rows]
    text = "\n".join(body)
    print(text)
    if not args.no_write:
        write_section("Cell kernels" + (" (quick)" if args.quick else ""), text)


if __name__ == "__main__":
    main()
