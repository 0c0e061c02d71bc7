"""What a sweep runs, in which order and in which pieces: the jobs, their estimated cost, the warm-up's choice.

Pure bookkeeping over a Sweep's grid (no process, no pool): :func:`job` builds one run; :func:`warm_jobs` picks the
smallest run of each kind of kernel for the warm-up; :func:`cost` estimates a run's time from its grid point alone;
:func:`longest_first` orders the runs by it; :class:`Chunks` hands them out in guided chunks. The backends
(rnnsim.sweep.backends) run what these hand out.
"""

from __future__ import annotations

import math
from typing import Any

from rnnsim.scenario import Scenario
from rnnsim.sweep.spec import Sweep

__all__ = ["Job", "job", "warm_jobs", "cost", "threaded_blas", "longest_first", "Chunks", "PASS_OVERHEAD"]

Job = tuple[int, Scenario, int]
"""(run index, its validated scenario, iterations)."""


def job(sweep: Sweep, index: int) -> Job:
    """Run ``index`` of ``sweep`` as a job: built where it runs (a worker builds its own Scenarios)."""
    sc = sweep.scenario(sweep.run_at(index))
    return index, sc, sweep.iterations_for(sc)


_KIND_KEYS = ("model.cell", "model.activation", "model.layernorm", "model.readout", "model.dtype", "task.kind",
              "training.optimizer", "training.clip")
_SIZE_KEYS = ("task.length", "task.batch_size", "model.hidden_size")


def _value(sweep: Sweep, changes: dict[str, Any], key: str) -> Any:
    if key in changes:
        return changes[key]
    section, name = key.split(".", 1)
    return getattr(getattr(sweep.base, section), name)


def _iterations(sweep: Sweep, changes: dict[str, Any]) -> int:
    return sweep.iterations if sweep.iterations is not None else int(_value(sweep, changes, "training.iterations"))


_GATES = {"rnn": 1, "gru": 3, "lstm": 4, "attention": 4}


def _size(sweep: Sweep, changes: dict[str, Any], n: int) -> int:
    """A run's size for the warm-up choice: length x batch x hidden x its iterations."""
    return math.prod(int(_value(sweep, changes, k)) for k in _SIZE_KEYS) * max(n, 1)


PASS_OVERHEAD = 1.5e6
"""A pass's cost outside its steps (building the run, the Python around the kernels), in :func:`cost`'s units: a
T = 25 RNN pass took ~0.8 ms and a T = 200 one ~3.1 ms on the regimes sweep (B = 16, H = 32), ~0.4 ns per unit, so
~0.5 ms is ~1.5e6 units."""


def _point(sweep: Sweep, index: int) -> tuple[dict[str, Any], int, int, int, str]:
    """Run ``index``'s changes, length, batch, hidden size and cell, read from the grid values and the base."""
    changes = sweep.changes(sweep.run_at(index))
    length, batch, hidden = (int(_value(sweep, changes, k)) for k in _SIZE_KEYS)
    return changes, length, batch, hidden, str(_value(sweep, changes, "model.cell"))


def cost(sweep: Sweep, index: int) -> float:
    """A run's estimated time, in arbitrary units, from its grid point alone (no Scenario is built).

    Per pass (iterations, or one pass for 0): its steps (length x layers) times the work of one step for the batch
    (the gate products, gates x H^2 each, plus one H^2 for the rest of the step: an H = 32 RNN step cost ~13 us at
    B = 16, an LSTM's ~30 us; an attention layer's scores add ~ length x H), plus :data:`PASS_OVERHEAD`."""
    changes, length, batch, hidden, cell = _point(sweep, index)
    layers = int(_value(sweep, changes, "model.num_layers"))
    gates = _GATES.get(cell, 4) + (length / max(hidden, 1) if cell == "attention" else 0)
    per_pass = length * layers * batch * hidden * hidden * (gates + 1.0) + PASS_OVERHEAD
    return max(_iterations(sweep, changes), 1) * per_pass


def threaded_blas(sweep: Sweep, todo: list[int]) -> bool:
    """Whether a run of ``todo`` has a whole-sequence product large enough for NumPy's BLAS to use its threads
    (the rule of rnnsim.kernels.blas.gemm and small_gemms, for the largest: (T·B x G·H) by (G·H x H), the
    recurrent weights' gradient). Read from the grid values, one seed per point."""
    from rnnsim.kernels.blas import small_gemms

    points = {index // len(sweep.seeds): index for index in todo}  # the seed picks weights and data, not sizes
    for index in points.values():
        _, length, batch, hidden, cell = _point(sweep, index)
        if not small_gemms(length * batch, _GATES.get(cell, 4) * hidden, hidden):
            return True
    return False


def longest_first(sweep: Sweep, todo: list[int], costs: dict[int, float] | None = None) -> list[int]:
    """``todo`` with the most expensive runs first (by :func:`cost`, or ``costs``; ties keep the grid order).

    With the guided chunks shrinking towards the end, the last chunks are then the cheapest runs and the workers
    finish together (longest processing time first). In grid order the regimes sweep ended on its longest runs
    (T = 200 at the largest scale) and one worker idled up to ~10 ms while the other finished them. The table is
    still written in grid order."""
    costs = costs if costs is not None else {index: cost(sweep, index) for index in todo}
    return sorted(todo, key=lambda index: -costs[index])


def warm_jobs(sweep: Sweep, todo: list[int]) -> list[Job]:
    """The smallest job of each kind of kernel (cell, activation, LayerNorm, readout, dtype, task, optimiser,
    clipping, and whether it trains), in order of first appearance.

    Read from the grid values and the base scenario, without building a Scenario per run (only the chosen jobs
    are built); the seed picks only weights and data, never a kernel, so one seed per grid point is looked at."""
    best: dict[tuple, tuple[int, int]] = {}
    per_point = len(sweep.seeds)
    seen: set[int] = set()
    for index in todo:
        if index // per_point in seen:
            continue
        seen.add(index // per_point)
        changes = sweep.changes(sweep.run_at(index))
        n = _iterations(sweep, changes)
        kind = (*(_value(sweep, changes, k) for k in _KIND_KEYS), n == 0)
        size = _size(sweep, changes, n)
        if kind not in best or size < best[kind][1]:
            best[kind] = (index, size)
    return [job(sweep, index) for index, _ in best.values()]


class Chunks:
    """Hands out the runs still to do in chunks of consecutive runs (guided self-scheduling, weighted by cost).

    Each run has an estimated cost (:func:`cost`; 1 each when none are given). A chunk holds at most 1/(4 x workers)
    of the cost still to hand out and lasts about ``target`` seconds (from the seconds per unit of cost of the runs
    finished so far), at least one run and at most ``cap``. So the parent's cost is per chunk, not per run, every
    worker stays busy to the end (the last chunks are single runs), progress and resume stay fine-grained (a chunk's
    rows are written as soon as it returns), and with the longest runs first the first chunks hold fewer runs: a
    chunk queued early is not an early share of the work many times over.
    """

    def __init__(self, todo: list[int], workers: int, target: float = 0.1, cap: int = 256,
                 costs: list[float] | None = None):
        self.todo, self.workers, self.target, self.cap = todo, workers, target, cap
        self.costs = list(costs) if costs is not None else [1.0] * len(todo)
        self.pos = 0
        self.left = sum(self.costs)
        self.done = 0.0     # cost of the runs recorded
        self.seconds = 0.0  # and their seconds

    def record(self, seconds: float, cost: float = 1.0) -> None:
        self.done += cost
        self.seconds += seconds

    def restart_estimate(self) -> None:
        """Forget the seconds recorded so far (the next ones start the estimate of the seconds per unit of cost)."""
        self.done = self.seconds = 0.0

    def seconds_left(self) -> float:
        """The seconds the runs not handed out yet should take on one worker (inf before any is recorded)."""
        return self.left * self.seconds / self.done if self.done > 0 else math.inf

    def next(self, share: float = 1.0) -> list[int]:
        """The next chunk; ``share`` < 1 for a smaller one (still at least one run)."""
        if self.pos >= len(self.todo):
            return []
        budget = self.left / (4 * self.workers)
        if self.done > 0:
            budget = min(budget, self.target * self.done / max(self.seconds, 1e-9))
        budget *= share
        end, spent = self.pos + 1, self.costs[self.pos]
        while end < len(self.todo) and end - self.pos < self.cap and spent + self.costs[end] <= budget:
            spent += self.costs[end]
            end += 1
        chunk = self.todo[self.pos:end]
        self.pos, self.left = end, self.left - spent
        return chunk
