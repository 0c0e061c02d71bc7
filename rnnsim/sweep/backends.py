"""Where the runs of a sweep execute: in this process, in a local process pool, or on a Dask cluster.

Every backend calls :func:`run_job`, which runs a scenario exactly as `rnnsim run` does (rnnsim.results), so the
table is the same on every backend. Numba compiles on first use and concurrent first compiles into one cache
race (numba issue 4807): before any worker starts, the parent runs the smallest run of each kind of kernel
(cell, activation, LayerNorm, readout, dtype, task, optimiser, clipping) itself. Those rows are real rows; the
pool's workers are then forked with the kernels already compiled, and Dask workers load them from the cache.
"""

from __future__ import annotations

import gc
import math
import os
import signal
import sys
import time
from typing import Any, Iterator

from rnnsim.scenario import Scenario
from rnnsim.sweep.spec import Sweep

__all__ = ["Job", "run_job", "run_chunk", "job", "warm_jobs", "cost", "longest_first", "keep_heap", "Chunks", "Serial", "Pool", "DaskCluster", "default_workers",
           "dask_extra_line"]

Job = tuple[int, Scenario, int]
"""(run index, its validated scenario, iterations)."""
Rows = Iterator[tuple[int, dict[str, Any]]]


def run_job(sc: Scenario, n: int) -> dict[str, Any]:
    """One run, as `rnnsim run` with the same scenario and iterations: its result columns (and ``seconds``)."""
    from rnnsim.results import collect, run_passes
    from rnnsim.simulation import Simulation
    from rnnsim.sweep.table import row_from_summary

    start = time.perf_counter()
    sim = Simulation(sc)
    history, single_loss = run_passes(sim, n)
    summary = collect(sim, sc, history, n, single_loss, False)["summary"]
    return row_from_summary(summary, time.perf_counter() - start)


def job(sweep: Sweep, index: int) -> Job:
    """Run ``index`` of ``sweep`` as a job: built where it runs (a worker builds its own Scenarios)."""
    sc = sweep.scenario(sweep.run_at(index))
    return index, sc, sweep.iterations_for(sc)


def run_chunk(sweep: Sweep, indices: list[int]) -> list[tuple[int, dict[str, Any]]]:
    """Several runs of ``sweep`` in a row (one pool or Dask task): [(index, result columns), ...]."""
    return [(index, run_job(sc, n)) for index, sc, n in map(lambda i: job(sweep, i), indices)]


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


HEAP_MMAP_THRESHOLD = 64 << 20
HEAP_TRIM_THRESHOLD = 256 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h


def keep_heap() -> bool:
    """Keep freed memory in this process for the next run instead of handing it back to the kernel (glibc only).

    A run allocates and frees its arrays; with glibc's defaults the heap's top was trimmed and grown again, and
    larger arrays were mmap'ed and unmapped, so every sweep of `regimes` took ~51,000 fresh page faults (~0.1 s of
    system time in a 0.7 s sweep, more when two workers fault at once). With arrays up to 64 MiB served from the
    heap and up to 256 MiB of free heap kept, it takes tens. Called once per sweep process (the pool's workers
    inherit it through fork; Dask workers call it themselves). Returns whether the setting took effect."""
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, HEAP_MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, HEAP_TRIM_THRESHOLD))


def trim_heap() -> None:
    """Hand this process's free heap pages back to the kernel (glibc's malloc_trim).

    A forked pool worker calls it first (``_worker_init``): the free heap it inherited (what ``keep_heap`` kept in
    the parent) is shared with the parent until one of them writes a page, and that first write copies it. Dropped
    in the worker, the worker's arrays get fresh pages and the parent's pages are its own again (its first write is
    a cheap fault, no copy). Against trimming in the parent before the fork (which made the parent fault its arrays
    in again), `python -m benchmarks.ab_pool` gave per-round medians of 0.91-1.00 (six runs of 9-21 rounds): within
    the noise."""
    malloc_trim = _libc_function("malloc_trim")
    if malloc_trim is not None:
        malloc_trim(0)


def _libc_function(name: str) -> Any:
    """The C library's function ``name`` (errno kept) on Linux, or None (another system, or a C library without it:
    musl has no mallopt or malloc_trim)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        return getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None


def default_workers() -> int:
    """One worker per core this process may run on."""
    from rnnsim.kernels.team import usable_cores

    return usable_cores()


class Serial:
    """Every run in this process, one after the other (``--workers 1``)."""

    name = "this process"
    workers = 1

    def __init__(self, sweep: Sweep, todo: list[int]):
        self.sweep = sweep
        self.todo = todo

    def start(self) -> None:
        pass

    def results(self) -> Rows:
        for index in self.todo:
            _, sc, n = job(self.sweep, index)
            yield index, run_job(sc, n)

    def stop(self) -> None:
        pass

    def _warm_here(self) -> Rows:
        """Run the warm-up jobs in this process (real rows); ``self.rest`` is then what is left, longest first, and
        ``self.chunks`` hands it out (``self.workers`` workers)."""
        self.warm = warm_jobs(self.sweep, self.todo)
        self._timed = False
        self.costs = {index: cost(self.sweep, index) for index in self.todo}
        warm_ids = {j[0] for j in self.warm}
        self.rest = longest_first(self.sweep, [i for i in self.todo if i not in warm_ids], self.costs)
        self.chunks = Chunks(self.rest, self.workers or 1, costs=[self.costs[i] for i in self.rest])
        for index, sc, n in self.warm:
            result = run_job(sc, n)
            self.chunks.record(result["seconds"], self.costs[index])
            yield index, result

    def _rows(self, rows: list[tuple[int, dict[str, Any]]]) -> list[tuple[int, dict[str, Any]]]:
        """A chunk's rows, their seconds recorded for the next chunks' sizes.

        The first chunk's rows replace the warm-up's: in a new process (every `rnnsim sweep`) the warm-up runs
        include loading or compiling the kernels (~0.6 s for `regimes` against ~0.002 s per run), and kept in the
        estimate they made the worker's chunks single runs for most of the sweep."""
        if not self._timed:
            self.chunks.restart_estimate()
            self._timed = True
        for index, row in rows:
            self.chunks.record(row["seconds"], self.costs[index])
        return rows


_WORKER_SWEEP: Sweep | None = None
EXIT_RESERVE = 0.006
"""Seconds of work (estimated) that the pool's own process keeps for itself at the end, while its forked workers
exit (~7 ms each to end a process with its copy of this address space, measured on `regimes`)."""


def _die_with_parent(parent: int) -> None:
    """End this worker when the sweep's process dies, even by SIGKILL (it would otherwise run on, orphaned, and keep
    the parent's stdout open). Linux: the kernel's parent-death signal; elsewhere a thread that polls."""
    prctl = _libc_function("prctl")
    if prctl is not None:
        PR_SET_PDEATHSIG = 1
        prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # died before prctl took effect
            os._exit(1)
        return
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="rnnsim-parent-watch").start()


def _worker_init(sweep: Sweep, close_fds: tuple[int, ...], parent: int) -> None:
    """A pool worker: Ctrl+C is the parent's (it stops the pool and keeps the rows); it dies with the parent; it
    hands back the free heap it inherited (``trim_heap``); the parent's open table is closed here (a forked copy
    would keep its lock); the sweep is received once."""
    global _WORKER_SWEEP
    from rnnsim.kernels import team

    team.disable()      # the other cores run the other workers: no helper thread per worker (kernels/team.py)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent)
    trim_heap()         # the parent's free heap, inherited: fresh pages here, and no copies in the parent
    for fd in close_fds:
        try:
            os.close(fd)
        except OSError:
            pass
    _WORKER_SWEEP = sweep


def _pool_chunk(indices: list[int]) -> list[tuple[int, dict[str, Any]]]:
    assert _WORKER_SWEEP is not None
    return run_chunk(_WORKER_SWEEP, indices)


class Pool(Serial):
    """Every core: this process and ``workers - 1`` processes of a concurrent.futures pool, forked after this process
    has compiled the kernels.

    Runs go out in chunks of grid indices (:class:`Chunks`), longest runs first (:func:`longest_first`). Each pool
    worker builds its own Scenarios from the sweep it received once, so this process only hands out index lists;
    between collecting their rows it runs chunks itself, with the team's helper thread off (the other cores are
    busy). Measured on the `regimes` sweep against ``workers`` forked processes (benchmarks/bench_sweep.py's
    rounds, paired): 1.5-7% faster, from one fork and one worker exit less (the kernel copies, then frees, the page
    tables of this process's memory), no copy-on-write faults on this core, and this core on the runs as soon as the
    warm-up ends. At most two chunks per pool worker are queued (about 0.1 s each), and this process's own chunks
    are a quarter of that, so a worker does not wait while this process runs one. The last EXIT_RESERVE seconds of
    work are this process's alone: the workers are told to exit then and do so while it runs them (the ~7-10 ms
    between the last row and the end of the sweep became ~1.5 ms).
    """

    def __init__(self, sweep: Sweep, todo: list[int], workers: int, close_fds: tuple[int, ...] = ()):
        super().__init__(sweep, todo)
        self.workers = workers
        self.close_fds = close_fds
        self.name = f"{workers} local workers (this process and {workers - 1} forked)"
        self._executor: Any = None
        self._workers: list[Any] | None = None
        self._manager: Any = None

    def results(self) -> Rows:
        import concurrent.futures as cf
        import contextlib
        import multiprocessing as mp

        from rnnsim.kernels import blas, team

        yield from self._warm_here()
        forked = self.workers - 1
        method = "fork" if sys.platform.startswith("linux") else None  # fork: the compiled kernels come along
        self._executor = cf.ProcessPoolExecutor(forked, mp_context=mp.get_context(method),
                                                initializer=_worker_init,
                                                initargs=(self.sweep, self.close_fds, os.getpid()))
        pending: set[Any] = set()

        def fill() -> None:
            while len(pending) < 2 * forked and self._feeding() and (chunk := self.chunks.next()):
                pending.add(self._executor.submit(_pool_chunk, chunk))

        # One worker per core: when the runs are large enough for NumPy's BLAS to use its threads, it runs on one
        # thread here and in the workers (forked with that setting); two workers each waking a BLAS thread on the
        # other's core slow both down. This process gets its threads back at the end.
        one_thread = blas.numpy_blas_one_thread() if threaded_blas(self.sweep, self.rest) else contextlib.nullcontext()
        with team.alone(), one_thread:
            gc.freeze()  # the workers fork at the first submit: the collector must not touch (and copy) shared pages
            try:
                fill()
            finally:
                gc.unfreeze()
            while True:
                for future in [f for f in pending if f.done()]:
                    pending.discard(future)
                    yield from self._rows(future.result())
                fill()
                if self._workers is None and not self._feeding():
                    self._let_workers_exit()
                # this process's own chunks are a quarter of the size (they cost no messages), so it is back to
                # refill the queues long before the workers' queued chunks run out
                chunk = self.chunks.next(share=0.25)
                if chunk:
                    yield from self._rows(run_chunk(self.sweep, chunk))
                elif pending:
                    cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                else:
                    break
        if self._workers is None:
            self._let_workers_exit()
        if self._manager is not None:
            self._manager.join()      # what shutdown(wait=True) joins: it joins the workers
        for p in self._workers or ():
            p.join()
        self._executor = self._workers = self._manager = None

    def _feeding(self) -> bool:
        """Whether the workers still get chunks: not for the last EXIT_RESERVE seconds of work (estimated from the
        runs done), which this process runs while they finish their queued chunks and exit; never again once they
        were told to exit (the estimate may rise again as runs are timed)."""
        return (self._workers is None and self.chunks.pos < len(self.chunks.todo)
                and self.chunks.seconds_left() > EXIT_RESERVE)

    def _let_workers_exit(self) -> None:
        """Nothing more goes to the workers: each exits as soon as its queued chunks are done, while this process
        runs the rest (the executor sends the workers their sentinels once its queued work is done).
        shutdown(wait=False) forgets the executor's thread and processes: they are kept here, to be joined at the
        end or ended by ``stop``."""
        self._workers = list((getattr(self._executor, "_processes", None) or {}).values())
        self._manager = getattr(self._executor, "_executor_manager_thread", None)
        self._executor.shutdown(wait=False)

    def stop(self) -> None:
        """Cancel what has not started and end the workers (after Ctrl+C or an error)."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        processes = self._workers if self._workers is not None else list(
            (getattr(executor, "_processes", None) or {}).values())  # no public API ends running workers
        self._workers = self._manager = None
        executor.shutdown(wait=False, cancel_futures=True)
        for p in processes:
            if p.is_alive():
                p.terminate()
        for p in processes:
            p.join(timeout=5)


def dask_extra_line(what: str) -> str:
    return f"{what} needs the 'dask' extra: pip install 'rnnsim[dask]'"


class DaskCluster(Serial):
    """A Dask distributed cluster: an existing scheduler (``tcp://HOST:PORT``) or a LocalCluster (``local``)."""

    def __init__(self, sweep: Sweep, todo: list[int], address: str, workers: int | None, key: str):
        super().__init__(sweep, todo)
        self.address = address
        self.workers = workers
        self.key = key
        self.client: Any = None
        self.cluster: Any = None
        self._futures: set[Any] = set()
        self.name = "a local Dask cluster" if address == "local" else f"the Dask scheduler at {address}"

    def start(self) -> None:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise RuntimeError(dask_extra_line("--scheduler")) from None
        if self.address == "local":
            n = self.workers or default_workers()
            self.cluster = LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
            )
            self.client = Client(self.cluster)
        else:
            try:
                self.client = Client(self.address)  # timeout: Dask's distributed.comm.timeouts.connect
            except (OSError, TimeoutError) as exc:
                raise ConnectionError(
                    f"--scheduler {self.address}: cannot reach a Dask scheduler there ({' '.join(str(exc).split())})"
                ) from None

    def results(self) -> Rows:
        from dask.distributed import as_completed

        yield from self._warm_here()  # compiles into this machine's cache
        warm = [(sc, n) for _, sc, n in self.warm]
        workers = list(self.client.scheduler_info().get("workers", {}))
        for worker in workers:  # one worker after another: no concurrent first compiles
            self.client.run(_warm_worker, warm, workers=[worker])
        sweep = self.client.scatter(self.sweep, broadcast=True)  # sent once, not with every task
        chunks = self.chunks
        chunks.workers = max(1, len(workers))
        submit = lambda chunk: self.client.submit(  # noqa: E731
            run_chunk, sweep, chunk, key=f"rnnsim-{self.key}-{chunk[0]}", pure=False)
        first = []
        while len(first) < 2 * max(1, len(workers)) and (chunk := chunks.next()):
            first.append(submit(chunk))
        self._futures = set(first)
        queue = as_completed(first)
        for future in queue:
            self._futures.discard(future)
            rows = self._rows(future.result())
            chunk = chunks.next()
            if chunk:
                nxt = submit(chunk)
                self._futures.add(nxt)
                queue.add(nxt)
            yield from rows
        self._futures = set()

    def stop(self) -> None:
        if self.client is not None:
            if self._futures:
                self.client.cancel(list(self._futures))
            self.client.close()
            self.client = None
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None


def _warm_worker(jobs: list[tuple[Scenario, int]]) -> None:
    from rnnsim.kernels import team

    team.disable()      # a Dask worker shares its machine's cores with the other workers (and its nanny has set
    keep_heap()         # OPENBLAS_NUM_THREADS=1 and friends: Dask's distributed.nanny.pre-spawn-environ)
    for sc, n in jobs:
        run_job(sc, n)
