"""What two cores give two processes that share nothing: the ceiling for a 2-worker sweep's speed-up.

    python -m benchmarks.sweep_ceiling --rounds 10

Each sample forks ``n`` children of this process (n = 1, then 2, alternating A B, B A over the rounds). Each child
runs every run of the `regimes` sweep once untimed (its own copy of the pages it writes, its heap), waits until all
are ready, then, released together, runs them all again, timed: for every run the same work as the 1-worker sweep's
(the job built from the grid, then its Simulation) and nothing else, no validation, no pool, no messages, no table.
The pair's time is its slower child's. Two children against one: how much slower a run is only because the other
core is busy too (memory, caches, the host), with none of a pool's costs (fork, copy-on-write, fresh pages,
messages). benchmarks/bench_sweep.py measures the same samples between its sweeps, so the pool's speed-up and this
ceiling come from the same minutes.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import struct
import sys
import time

ALONE = "1 forked process, the runs only"
PAIR = "2 forked processes sharing nothing, the runs only"


def one_pass(sweep) -> float:
    """Seconds to run every run of ``sweep`` here, as the 1-worker sweep does (job, then run_job), nothing else."""
    from rnnsim.sweep.backends import job, run_job

    t0 = time.perf_counter()
    for index in range(sweep.n_runs):
        _, sc, n = job(sweep, index)
        run_job(sc, n)
    return time.perf_counter() - t0


def _read(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise RuntimeError("a ceiling child ended early")
        data += chunk
    return data


def _child(sweep, ready: int, go: int, result: int) -> None:
    """A ceiling child: each pipe end it writes is closed once written, so the parent sees the end of a pipe, not a
    wait, when a child fails."""
    from rnnsim.kernels import team

    team.disable()          # as in the pool's workers: no helper thread on the other core
    one_pass(sweep)         # untimed: this child's pages and heap
    os.write(ready, b"r")
    os.close(ready)
    _read(go, 1)
    os.write(result, struct.pack("d", one_pass(sweep)))
    os.close(result)


def forked_passes(sweep, n: int) -> list[float]:
    """Fork ``n`` children; each runs ``sweep`` once untimed, then, all released together, once timed. Returns each
    child's timed seconds. Linux/macOS (os.fork)."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    result_r, result_w = os.pipe()
    mine, theirs = (ready_r, go_w, result_r), (ready_w, go_r, result_w)
    pids = []
    gc.freeze()  # as the pool does before it forks: the collector must not touch (and copy) the shared pages
    try:
        for _ in range(n):
            pid = os.fork()
            if pid == 0:  # the child: never returns into the caller's code
                status = 1
                try:
                    for fd in mine:
                        os.close(fd)
                    _child(sweep, *theirs)
                    status = 0
                except BaseException:  # noqa: BLE001 - said here; the parent sees the status
                    import traceback

                    traceback.print_exc()
                finally:
                    os._exit(status)
            pids.append(pid)
        gc.unfreeze()
        for fd in theirs:
            os.close(fd)
        theirs = ()
        _read(ready_r, n)
        os.write(go_w, b"g" * n)
        return [struct.unpack("d", _read(result_r, 8))[0] for _ in range(n)]
    finally:
        gc.unfreeze()
        for fd in (*mine, *theirs):
            os.close(fd)
        bad = [pid for pid in pids if os.waitpid(pid, 0)[1] != 0]
        if bad:
            raise RuntimeError(f"{len(bad)} of {n} ceiling children failed")


def sample(sweep, n: int) -> dict:
    """One sample in bench_sweep's form: ``n`` children's runs, the slower child's time as the wall time."""
    seconds = forked_passes(sweep, n)
    wall = max(seconds)
    return {"wall": wall, "runs": n * sweep.n_runs, "run_seconds": sum(seconds)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="alone/together rounds (default 10)")
    args = parser.parse_args(argv)
    from rnnsim.sweep import load_sweep
    from rnnsim.sweep.heap import keep_heap

    keep_heap()
    sweep = load_sweep("regimes")
    alone, together, ratios = [], [], []
    for r in range(args.rounds):
        pair = {}
        for n in ((1, 2) if r % 2 == 0 else (2, 1)):
            pair[n] = sample(sweep, n)["wall"]
        alone.append(pair[1])
        together.append(pair[2])
        ratios.append(2 * pair[1] / pair[2])
        print(f"round {r + 1}: alone {pair[1]:.3f} s, two at once {pair[2]:.3f} s", file=sys.stderr, flush=True)
    a, t = statistics.median(alone), statistics.median(together)
    print(f"`python -m benchmarks.sweep_ceiling --rounds {args.rounds}`: the regimes sweep's {sweep.n_runs} runs, "
          f"one forked process alone: median {a:.3f} s ({min(alone):.3f}-{max(alone):.3f}); two at once: median "
          f"{t:.3f} s, the slower of the two ({min(together):.3f}-{max(together):.3f}); together/alone {t / a:.3f}, "
          f"so two workers sharing nothing would give {2 * a / t:.2f}x (per round {min(ratios):.2f}-"
          f"{max(ratios):.2f}x)")


if __name__ == "__main__":
    main()
