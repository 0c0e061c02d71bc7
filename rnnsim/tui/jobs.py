"""Background computations for the Parallel, Memory, Influence and Regimes views (plain threads, no Textual).

Each job runs a list of small calls into rnnsim.diagnostics, one after another, in a daemon thread, and
publishes an immutable `JobState` after each call (pull model, as the Runner: the app reads `job.state` on its
timer and never waits). Cancelling sets an event checked between calls, so a cancelled job stops after the call
that is under way (the longest, attention at T = 2048, takes a few seconds on 2 cores).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class JobState:
    key: Any = None
    done: int = 0
    total: int = 0
    label: str = ""  # what is being computed now
    results: tuple = ()  # one entry per finished call, in order
    finished: bool = False
    cancelled: bool = False
    error: str | None = None
    version: int = 0

    @property
    def running(self) -> bool:
        return not (self.finished or self.cancelled or self.error)


@dataclass
class Job:
    """Run `calls` [(label, fn)] in order in a daemon thread; `state` is the newest JobState."""

    key: Any
    calls: list[tuple[str, Callable[[], Any]]]
    info: Any = None  # what the view needs besides the results (view 8: the Sweep)
    state: JobState = field(init=False)

    def __post_init__(self) -> None:
        self._cancel = threading.Event()
        self.state = JobState(key=self.key, total=len(self.calls), label=self.calls[0][0] if self.calls else "")
        self._thread = threading.Thread(target=self._run, name="rnnsim-job", daemon=True)

    def start(self) -> "Job":
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    def join(self, timeout: float | None = None) -> JobState:
        self._thread.join(timeout)
        return self.state

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        results: list = []
        for i, (label, fn) in enumerate(self.calls):
            if self._cancel.is_set():
                self.state = JobState(self.key, i, len(self.calls), label, tuple(results), False, True, None, i + 1)
                return
            self.state = JobState(self.key, i, len(self.calls), label, tuple(results), version=i + 1)
            try:
                results.append(fn())
            except Exception as exc:  # noqa: BLE001 - shown in the view
                self.state = JobState(self.key, i, len(self.calls), label, tuple(results), False, False,
                                      f"{type(exc).__name__}: {exc}", i + 2)
                return
        n = len(self.calls)
        self.state = JobState(self.key, n, n, "", tuple(results), True, False, None, n + 2)


# --------------------------------------------------------------------------- the three views' jobs
PARALLEL_LENGTHS = (16, 32, 64, 128, 256, 512, 1024, 2048)
PARALLEL_CELLS = ("rnn", "attention")
MEMORY_SIZES = (4, 8, 16, 32, 64)
INFLUENCE_CELLS = ("rnn", "lstm", "attention")
INFLUENCE_SAMPLES = 256  # issue 5: at least 256 sequences


def _diag():
    from rnnsim import diagnostics

    return diagnostics


def parallel_key(sc) -> tuple:
    m = sc.model
    return ("parallel", m.hidden_size, m.dtype, m.activation, sc.task.kind, sc.scenario.seed)


def parallel_job(sc, lengths=None, cells=None) -> Job:
    """One diagnostics.parallel_timing call per (cell, T), short lengths first for each cell."""
    lengths = PARALLEL_LENGTHS if lengths is None else lengths
    cells = PARALLEL_CELLS if cells is None else cells
    calls = []
    for cell in cells:
        for T in lengths:
            calls.append((f"{cell} T={T}",
                          lambda cell=cell, T=T: _diag().parallel_timing(sc, lengths=(T,), cells=(cell,))[0]))
    return Job(parallel_key(sc), calls)


def memory_key(sc) -> tuple:
    return ("memory", sc.model.model_dump_json(), sc.scenario.seed)


def memory_job(sc, sizes=None) -> Job:
    """MC(k) of the scenario's own network first, then the total MC for each H in `sizes`."""
    sizes = MEMORY_SIZES if sizes is None else sizes
    # delays k = 0..2H, and up to the task's own delay (bottleneck: k = 16 with H = 8)
    K = max(2 * sc.model.hidden_size, sc.task.delay + 1 if sc.task.kind == "delayed_recall" else 0)
    calls = [(f"MC(k), H={sc.model.hidden_size}", lambda: _diag().memory_capacity(sc, max_delay=K))]
    for H in sizes:
        # a weights file fits its own hidden size only: the other sizes are measured at the init's weights
        other = {"model.weights": None} if H != sc.model.hidden_size else {}
        calls.append((f"total MC, H={H}",
                      lambda H=H, other=other: _diag().memory_capacity(sc.with_changes({"model.hidden_size": H}
                                                                                         | other))))
    return Job(memory_key(sc), calls)


def influence_key(sc) -> tuple:
    return ("influence", sc.model.model_dump_json(), sc.task.model_dump_json(), sc.scenario.seed)


def influence_job(sc, cells=None, samples: int | None = None) -> Job:
    """diagnostics.influence_by_cell one cell at a time (same task, seed and data), `samples` sequences."""
    cells = INFLUENCE_CELLS if cells is None else cells
    samples = INFLUENCE_SAMPLES if samples is None else samples
    calls = [(f"{cell}, {samples} samples",
              lambda cell=cell: (cell, *_diag().influence_by_cell(sc, cells=(cell,), samples=samples)[cell]))
             for cell in cells]
    return Job(influence_key(sc), calls)


def regimes_key(sc) -> tuple:
    return ("regimes", sc.model.model_dump_json(), sc.task.model_dump_json(), sc.training.model_dump_json(),
            sc.scenario.seed)


def regimes_job(sc) -> Job:
    """View 8: the sweep recurrent_scale x task.length around the scenario (rnnsim.sweep.around), one run per
    call through the sweep's own code; each result is a full table row. A grid point the scenario cannot take
    (its task's length limits, the memory bound) is the job's error line."""
    from rnnsim.sweep import around

    try:
        sweep = around.around(sc)
    except ValueError as exc:  # ScenarioError: shown as the view's error line
        def fail(msg=" ".join(str(exc).split())):
            raise ValueError(msg)

        return Job(regimes_key(sc), [("the grid", fail)])
    calls = []
    for i in range(sweep.n_runs):
        run = sweep.run_at(i)
        calls.append((f"scale {run.values[0]:g}, T = {run.values[1]}", lambda i=i: around.run_point(sweep, i)))
    return Job(regimes_key(sc), calls, info=sweep)
