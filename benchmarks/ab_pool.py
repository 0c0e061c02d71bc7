"""A/B of the local pool's choices on the `regimes` sweep at 2 workers: the code against the code with one choice undone.

    python -m benchmarks.ab_pool --rounds 21                     # every variant
    python -m benchmarks.ab_pool --rounds 21 --variants trim-in-parent

- ``now``: the code as it is;
- ``trim-in-parent`` (before 2026-12-04): the sweep's process trims its free heap just before the fork
  (backends.trim_heap), the forked worker does not;
- ``no-exit-reserve`` (before 2026-12-04): the worker gets chunks to the end and its exit is waited for
  (backends.EXIT_RESERVE below zero).

Each round runs `rnnsim sweep regimes --quiet` once per variant at 2 workers and once at 1 worker (for the speed-up),
in this process, the order alternating (A B C, C B A, ...); after one warm-up round it prints, per configuration,
the median wall time, minor page faults (this process; its reaped workers) and CPU (system, user), then each
variant's per-round wall ratio to ``now`` and its speed-up over 1 worker. A variant is set up by replacing
functions or constants of rnnsim.sweep.backends in this process (the workers are forked from it).
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
_RESERVE = backends.EXIT_RESERVE
VARIANTS = ("trim-in-parent", "no-exit-reserve")


def _variant(name: str) -> None:
    backends._worker_init, backends.gc, backends.EXIT_RESERVE = _INIT, _GC, _RESERVE
    if name == "trim-in-parent":
        backends._worker_init, backends.gc = _init_without_trim, _PARENT_GC
    elif name == "no-exit-reserve":
        backends.EXIT_RESERVE = -float("inf")


def _usage() -> tuple[float, ...]:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_minflt, kids.ru_minflt, me.ru_stime + kids.ru_stime, me.ru_utime + kids.ru_utime


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    args = parser.parse_args(argv)
    configs = [("now", "2"), *((v, "2") for v in args.variants), ("1 worker", "1")]
    out = Path(tempfile.mkdtemp(prefix="rnnsim-ab-pool-"))
    got: dict[str, list[tuple[float, ...]]] = {name: [] for name, _ in configs}
    for r in range(args.rounds + 1):
        for name, workers in configs if r % 2 == 0 else configs[::-1]:
            _variant(name)
            try:
                before = _usage()
                wall = sweep_once(out, "ab", ["--workers", workers])["wall"]
                after = _usage()
            finally:
                _variant("now")
            if r:
                got[name].append((wall, *(b - a for a, b in zip(before, after))))
    print(f"`python -m benchmarks.ab_pool --rounds {args.rounds} --variants {' '.join(args.variants)}`: medians over "
          f"{args.rounds} rounds")
    for name, samples in got.items():
        wall, flt, kid_flt, sys_s, user_s = (statistics.median(c) for c in zip(*samples))
        print(f"- {name}: wall {wall:.3f} s, page faults {flt:.0f} here + {kid_flt:.0f} in the worker, "
              f"CPU {sys_s:.3f} s system + {user_s:.3f} s user")
    one = statistics.median(s[0] for s in got["1 worker"])
    for name in ("now", *args.variants):
        line = f"- {name}: speed-up over 1 worker {one / statistics.median(s[0] for s in got[name]):.2f}x"
        if name != "now":
            ratios = [n[0] / v[0] for n, v in zip(got["now"], got[name])]
            line += (f"; wall now/{name} per round: median {statistics.median(ratios):.3f} (min {min(ratios):.2f}, "
                     f"max {max(ratios):.2f}; below 1: the code is faster)")
        print(line)


if __name__ == "__main__":
    main()
