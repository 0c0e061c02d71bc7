"""A/B: where a 2-worker sweep hands free heap pages back to the kernel (rnnsim.sweep.backends.trim_heap).

    python -m benchmarks.ab_trim --rounds 21

- ``worker`` (the code): each forked pool worker trims the free heap it inherited as it starts (_worker_init);
- ``parent`` (the code before 2026-12-04): the sweep's process trims its own free heap just before the fork, the
  worker does not.

Each round runs `rnnsim sweep regimes --quiet` at 2 workers once per variant and once at 1 worker (for the speed-up),
in this process, the order alternating (A B C, C B A, ...); after one warm-up round it prints, per configuration,
the median wall time, minor page faults (this process; its reaped workers), CPU (system, user), then the per-round
wall ratio worker/parent and each variant's speed-up over 1 worker. The ``parent`` variant is set up by replacing
functions of rnnsim.sweep.backends in this process (the workers are forked from it).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import types
from pathlib import Path

from benchmarks.bench_sweep import sweep_once
from rnnsim.sweep import backends

_TRIM, _INIT, _GC = backends.trim_heap, backends._worker_init, backends.gc


def _init_without_trim(*args) -> None:
    backends.trim_heap = lambda: None
    try:
        _INIT(*args)
    finally:
        backends.trim_heap = _TRIM


def _freeze_after_trim() -> None:
    _TRIM()             # Pool.results freezes the collector just before the first submit, which forks the worker
    _GC.freeze()


_PARENT_GC = types.SimpleNamespace(freeze=_freeze_after_trim, unfreeze=_GC.unfreeze)


def _variant(name: str) -> None:
    if name == "parent":
        backends._worker_init, backends.gc = _init_without_trim, _PARENT_GC
    else:
        backends._worker_init, backends.gc = _INIT, _GC


def _usage() -> tuple[float, ...]:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_minflt, kids.ru_minflt, me.ru_stime + kids.ru_stime, me.ru_utime + kids.ru_utime


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args(argv)
    configs = [("worker", "2"), ("parent", "2"), ("1 worker", "1")]
    out = Path(tempfile.mkdtemp(prefix="rnnsim-ab-trim-"))
    got: dict[str, list[tuple[float, ...]]] = {name: [] for name, _ in configs}
    for r in range(args.rounds + 1):
        for name, workers in configs if r % 2 == 0 else configs[::-1]:
            _variant(name)
            try:
                before = _usage()
                wall = sweep_once(out, "ab", ["--workers", workers])["wall"]
                after = _usage()
            finally:
                _variant("worker")
            if r:
                got[name].append((wall, *(b - a for a, b in zip(before, after))))
    print(f"`python -m benchmarks.ab_trim --rounds {args.rounds}`: medians over {args.rounds} rounds")
    for name, samples in got.items():
        wall, flt, kid_flt, sys_s, user_s = (statistics.median(c) for c in zip(*samples))
        print(f"- {name}: wall {wall:.3f} s, page faults {flt:.0f} here + {kid_flt:.0f} in the worker, "
              f"CPU {sys_s:.3f} s system + {user_s:.3f} s user")
    ratios = [w[0] / p[0] for w, p in zip(got["worker"], got["parent"])]
    print(f"- wall worker/parent per round: median {statistics.median(ratios):.3f} "
          f"(min {min(ratios):.2f}, max {max(ratios):.2f}; below 1: trimming in the worker is faster)")
    one = statistics.median(s[0] for s in got["1 worker"])
    for name in ("worker", "parent"):
        print(f"- speed-up over 1 worker, {name}: {one / statistics.median(s[0] for s in got[name]):.2f}x")


if __name__ == "__main__":
    main()
