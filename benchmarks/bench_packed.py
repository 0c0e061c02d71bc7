"""The per-step products of the cells at B = 32, float32, one core: packed (rnnsim/kernels/packed.py) against the
two BLAS paths rnnsim used before (SciPy's OpenBLAS through numba's np.dot inside the time loop; NumPy's OpenBLAS
from a Python loop, ``STEP_GEMM_FLOPS``), on the same operands, interleaved in one process.

Each sample is ``--steps`` products in a row (as a time loop makes them: the same right factor every time), timed
per product; rounds rotate the order of the three (A B C, B C A, ...). The packing itself (once per pass) is timed
apart. Every result is checked against a float64 product first.

    python -m benchmarks.bench_packed                 # pinned to core 0, 11 rounds
    python -m benchmarks.bench_packed --core 1 --rounds 21 --H 128,512
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from benchmarks.peers import loadavg, pinned

CELLS = {"rnn": 1, "gru": 3, "lstm": 4}


def _kernels():
    from rnnsim.kernels import packed
    from rnnsim.kernels.loader import jit, load_kernels

    @jit
    def loop_packed(n, a, Wp, out):
        for _ in range(n):
            packed.packed_dot(a, Wp, out)

    @jit
    def loop_dot(n, a, W, out):
        for _ in range(n):
            np.dot(a, W, out)

    load_kernels()
    return packed, loop_packed, loop_dot


def products(cell: str, H: int, B: int = 32):
    """(name, K, N) of the forward's and the backward's per-step product."""
    GH = CELLS[cell] * H
    return [("forward", H, GH), ("backward", GH, H)]


def measure(K: int, N: int, B: int, rounds: int, steps: int, rng) -> dict:
    packed, loop_packed, loop_dot = _kernels()
    from rnnsim.kernels.blas import numpy_blas_one_thread

    a = rng.standard_normal((B, K)).astype(np.float32)
    W = rng.standard_normal((K, N)).astype(np.float32)
    Wp = np.zeros((N // packed.NR, K, packed.NR), np.float32)
    t0 = time.perf_counter()
    packed.pack(Wp, W)
    pack_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(5):
        packed.pack(Wp, W)
    pack_s = (time.perf_counter() - t0) / 5
    ref = a.astype(np.float64) @ W.astype(np.float64)
    outs = {k: np.zeros((B, N), np.float32) for k in ("packed", "numba np.dot", "NumPy matmul")}

    def run_numpy(n, out):
        with numpy_blas_one_thread():
            for _ in range(n):
                np.matmul(a, W, out=out)

    fns = {
        "packed": lambda n: loop_packed(n, a, Wp, outs["packed"]),
        "numba np.dot": lambda n: loop_dot(n, a, W, outs["numba np.dot"]),
        "NumPy matmul": lambda n: run_numpy(n, outs["NumPy matmul"]),
    }
    for name, fn in fns.items():
        fn(1)
        err = np.abs(outs[name] - ref).max() / np.abs(ref).max()
        assert err < 1e-5, f"{name}: relative error {err:.1e}"
    names = list(fns)
    times = {k: [] for k in names}
    for r in range(rounds):
        for i in range(len(names)):
            name = names[(r + i) % len(names)]
            t0 = time.perf_counter()
            fns[name](steps)
            times[name].append((time.perf_counter() - t0) / steps)
    return {"times": times, "pack": pack_s, "flops": 2.0 * B * K * N}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--H", default="128,256,512")
    ap.add_argument("--cells", default="lstm,gru,rnn")
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--core", type=int, default=0)
    args = ap.parse_args(argv)
    from rnnsim.kernels import packed

    if not packed.available():
        print("this CPU has no AVX-512F: rnnsim keeps the BLAS paths here, nothing to compare")
        return 0
    rng = np.random.default_rng(0)
    print(f"Command: `python -m benchmarks.bench_packed --H {args.H} --cells {args.cells} --rounds {args.rounds} "
          f"--steps {args.steps} --core {args.core}`; load average before: {loadavg()}; pinned to core {args.core}, "
          "BLAS on one thread; B = 32, float32.\n")
    print("| cell | product | B×K by K×N | packed µs | numba np.dot µs | NumPy matmul µs | packed GFLOP/s "
          "| np.dot / packed | matmul / packed | packing W once, µs |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with pinned(args.core):
        for cell in args.cells.split(","):
            for H in (int(h) for h in args.H.split(",")):
                for what, K, N in products(cell, H):
                    m = measure(K, N, 32, args.rounds, args.steps, rng)
                    med = {k: statistics.median(v) for k, v in m["times"].items()}
                    p, d, n = med["packed"], med["numba np.dot"], med["NumPy matmul"]
                    print(f"| {cell} H={H} | {what} | 32×{K} by {K}×{N} | {p * 1e6:.1f} | {d * 1e6:.1f} | "
                          f"{n * 1e6:.1f} | {m['flops'] / p / 1e9:.1f} | {d / p:.2f}x | {n / p:.2f}x | "
                          f"{m['pack'] * 1e6:.0f} |", flush=True)
    print(f"\nLoad average after: {loadavg()}. Medians of {args.rounds} interleaved rounds of {args.steps} products.")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    raise SystemExit(main())
