"""What two cores give two processes that share nothing: the ceiling for a 2-worker sweep's speed-up.

    python -m benchmarks.sweep_ceiling --rounds 10

Each process (started fresh, `python -m benchmarks.sweep_ceiling --child START ROUNDS`) builds the `regimes` sweep's
240 jobs once, runs them all once (Numba's cache load, its heap), waits until the wall-clock START, then times ROUNDS
passes over every job (backends.run_job, no table, no pool, no fork) and prints the median. The parent first starts
one such process alone, then two at once (the same START), alternating alone/together for --pairs pairs, and
reports each process's median time together against alone: how much slower a run is only because the other core is
busy too (memory, caches, the host), with none of a pool's costs (fork, copy-on-write, fresh pages, messages).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def child(start: float, rounds: int) -> None:
    from rnnsim.sweep import load_sweep
    from rnnsim.sweep.backends import job, keep_heap, run_job

    keep_heap()
    sweep = load_sweep("regimes")
    jobs = [job(sweep, i)[1:] for i in range(sweep.n_runs)]
    for sc, n in jobs:
        run_job(sc, n)
    while time.time() < start:
        time.sleep(0.001)
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for sc, n in jobs:
            run_job(sc, n)
        times.append(time.perf_counter() - t0)
    print(statistics.median(times))


def _run(n: int, rounds: int) -> list[float]:
    start = time.time() + 6.0           # after the imports and the warm-up pass of every process
    procs = [subprocess.Popen([sys.executable, "-m", "benchmarks.sweep_ceiling", "--child", str(start), str(rounds)],
                              stdout=subprocess.PIPE, text=True) for _ in range(n)]
    out = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit("a child process failed")
    return [float(o) for o in out]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="timed passes per process (default 10)")
    parser.add_argument("--pairs", type=int, default=3, help="alone/together pairs (default 3)")
    parser.add_argument("--child", nargs=2, metavar=("START", "ROUNDS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(float(args.child[0]), int(args.child[1]))
        return
    alone, together = [], []
    for _ in range(args.pairs):
        alone += _run(1, args.rounds)
        together += _run(2, args.rounds)
    a, t = statistics.median(alone), statistics.median(together)
    print(f"`python -m benchmarks.sweep_ceiling --rounds {args.rounds} --pairs {args.pairs}`: the regimes sweep's 240 "
          f"runs, one process alone: median {a:.3f} s (of {len(alone)} processes: {min(alone):.3f}-{max(alone):.3f}); "
          f"two at once: median {t:.3f} s ({min(together):.3f}-{max(together):.3f}); together/alone {t / a:.3f}, "
          f"so two workers sharing nothing would give {2 * a / t:.2f}x")


if __name__ == "__main__":
    main()
