"""Measured peak RSS growth against `estimate_bytes` for cells, readouts and tasks (issue 15 item 5).

One process runs every case (glibc's malloc thresholds fixed, freed memory trimmed, so one case's freed arrays
do not hide the next one's growth): before each, the kernels of its cell are loaded on a tiny copy, the peak is
reset (``/proc/self/clear_refs`` = 5), and VmRSS is read; the case builds a Simulation, trains 2 iterations and reads
the gradient profile; its peak growth is VmHWM − VmRSS before. Prints one JSON line per case:
``{"case", "estimate", "peak", "ratio"}`` (ratio = peak / estimate: the estimate is an upper bound while < 1).

    python -m benchmarks.memory_bound            # the default cases (a few hundred MB at most)
    python -m benchmarks.memory_bound --big      # also T = 8000 attention and the 1000-symbol copy task (GBs)
"""

from __future__ import annotations

import gc
import json
import os
import sys

BASE = {"scenario.seed": 0, "training.iterations": 2, "training.optimizer": "adam"}

#: name -> dotted changes of the vanishing scenario
CASES: dict[str, dict] = {
    "rnn cached": {"model.cell": "rnn", "model.hidden_size": 256, "task.kind": "random", "task.length": 2000,
                   "task.batch_size": 16},
    "rnn layernorm": {"model.cell": "rnn", "model.layernorm": True, "model.hidden_size": 128, "task.kind": "random",
                      "task.length": 2000, "task.batch_size": 16},
    "rnn chunked": {"model.cell": "rnn", "model.hidden_size": 512, "task.kind": "random", "task.length": 4000,
                    "task.batch_size": 32},
    "lstm cached": {"model.cell": "lstm", "model.hidden_size": 128, "task.kind": "random", "task.length": 1000,
                    "task.batch_size": 16},
    "lstm chunked": {"model.cell": "lstm", "model.hidden_size": 256, "task.kind": "random", "task.length": 3000,
                     "task.batch_size": 16},
    "lstm folded": {"model.cell": "lstm", "model.hidden_size": 64, "task.kind": "random", "task.length": 500,
                    "task.batch_size": 4, "task.input_size": 64},
    "gru cached": {"model.cell": "gru", "model.hidden_size": 128, "task.kind": "random", "task.length": 1000,
                   "task.batch_size": 16},
    "gru chunked": {"model.cell": "gru", "model.hidden_size": 256, "task.kind": "random", "task.length": 3000,
                    "task.batch_size": 16},
    "attention T=1500": {"model.cell": "attention", "model.hidden_size": 16, "task.kind": "random",
                         "task.length": 1500, "task.batch_size": 8},
    "attention readout T=1500": {"model.cell": "rnn", "model.readout": "attention", "model.hidden_size": 16,
                                 "task.kind": "random", "task.length": 1500, "task.batch_size": 8},
    "copy alphabet 1000": {"model.cell": "rnn", "model.hidden_size": 32, "task.kind": "copy", "task.alphabet": 1000,
                           "task.symbols": 10, "task.length": 400, "task.batch_size": 16},
    "copy alphabet 1000 gru": {"model.cell": "gru", "model.hidden_size": 32, "task.kind": "copy",
                               "task.alphabet": 1000, "task.symbols": 10, "task.length": 300, "task.batch_size": 16},
    "adding": {"model.cell": "lstm", "model.hidden_size": 64, "task.kind": "adding", "task.length": 2000,
               "task.batch_size": 32},
    "digits pixel": {"model.cell": "rnn", "model.hidden_size": 64, "task.kind": "digits", "task.order": "pixel",
                     "task.batch_size": 256},
    "random wide input": {"model.cell": "rnn", "model.hidden_size": 32, "task.kind": "random",
                          "task.input_size": 2048, "task.length": 200, "task.batch_size": 32},
}
BIG: dict[str, dict] = {
    "attention T=8000": {"model.cell": "attention", "model.hidden_size": 16, "task.kind": "random",
                         "task.length": 8000, "task.batch_size": 2},
    "attention readout T=8000": {"model.cell": "rnn", "model.readout": "attention", "model.hidden_size": 16,
                                 "task.kind": "random", "task.length": 8000, "task.batch_size": 2},
    "attention T=4000 B=1": {"model.cell": "attention", "model.hidden_size": 16, "task.kind": "random",
                             "task.length": 4000, "task.batch_size": 1},
    "attention readout T=4000 B=1": {"model.cell": "rnn", "model.readout": "attention", "model.hidden_size": 16,
                                     "task.kind": "random", "task.length": 4000, "task.batch_size": 1},
    "copy alphabet 1000 big": {"model.cell": "rnn", "model.hidden_size": 64, "task.kind": "copy",
                               "task.alphabet": 1000, "task.symbols": 10, "task.length": 2000,
                               "task.batch_size": 32},
}


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def _trim() -> None:
    """Give freed heap memory back to the system (glibc), so the next case's growth is not hidden by reuse."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


#: glibc raises its mmap threshold after each large free (up to 32 MiB), after which freed arrays stay in the heap
#: and the next case reuses them unseen; a fixed threshold keeps large arrays in mmap (returned when freed)
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}


def measure(sc) -> int:
    """Peak RSS growth (bytes) of building ``sc``'s Simulation, 2 iterations and the gradient profile."""
    from rnnsim import diagnostics
    from rnnsim.simulation import Simulation

    # the case's hidden size: whether the per-step products run packed (rnnsim/kernels/packed.py) depends on it,
    # and those kernels must be loaded before measuring too
    small = {"task.batch_size": 1, "model.hidden_size": sc.model.hidden_size}
    if sc.task.kind not in ("file", "series", "digits", "copy"):
        small["task.length"] = min(sc.task.length, 32)
    t = Simulation(sc.with_changes(small))  # loads the kernels (and a data set's modules) before measuring
    t.train(1)
    diagnostics.gradient_profile(t)
    del t
    gc.collect()
    _trim()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _status("VmRSS")
    sim = Simulation(sc)
    sim.train(2)
    diagnostics.gradient_profile(sim)
    peak = _status("VmHWM") - before
    del sim
    gc.collect()
    return peak


def run(cases: dict[str, dict], out=sys.stdout) -> list[dict]:
    import rnnsim
    from rnnsim.scenario import estimate_bytes

    rows = []
    for name, changes in cases.items():
        sc = rnnsim.load_scenario("vanishing").with_changes({**BASE, **changes})
        est = estimate_bytes(sc)
        peak = measure(sc)
        row = {"case": name, "estimate": est, "peak": peak, "ratio": round(peak / est, 3)}
        rows.append(row)
        print(json.dumps(row), file=out, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cases = dict(CASES)
    if "--big" in argv:
        cases.update(BIG)
    only = [a for a in argv if not a.startswith("--")]
    if only:
        cases = {k: v for k, v in {**CASES, **BIG}.items() if k in only}
    if any(os.environ.get(k) != v for k, v in MALLOC_ENV.items()):  # re-run with glibc's thresholds fixed
        os.execve(sys.executable, [sys.executable, "-m", "benchmarks.memory_bound", *argv],
                  {**os.environ, **MALLOC_ENV})
    os.environ.setdefault("RNNSIM_MAX_BYTES", "64G")
    rows = run(cases)
    return 0 if all(r["ratio"] < 1 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
