"""Where the runs of a sweep execute: in this process, in a local process pool, or on a Dask cluster.

Every backend calls :func:`run_job`, which runs a scenario exactly as `rnnsim run` does (rnnsim.results), so the
table is the same on every backend. Numba compiles on first use and concurrent first compiles into one cache
race (numba issue 4807): before any worker starts, the parent runs the smallest run of each kind of kernel
(cell, activation, LayerNorm, readout, dtype, task, optimiser, clipping) itself. Those rows are real rows; the
pool's workers are then forked with the kernels already compiled, and Dask workers load them from the cache.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import time
from typing import Any, Iterator

from rnnsim.scenario import Scenario
from rnnsim.sweep.heap import keep_heap, libc_function, trim_heap
from rnnsim.sweep.schedule import Chunks, Job, cost, job, longest_first, threaded_blas, warm_jobs
from rnnsim.sweep.spec import Sweep

# What to run and in which order lives in rnnsim.sweep.schedule, the heap settings in rnnsim.sweep.heap; their
# names are here too, for the callers of the backends.
__all__ = ["Job", "run_job", "run_chunk", "job", "warm_jobs", "cost", "threaded_blas", "longest_first", "keep_heap",
           "trim_heap", "Chunks", "Serial", "Pool", "DaskCluster", "default_workers", "dask_extra_line"]

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


def run_chunk(sweep: Sweep, indices: list[int]) -> list[tuple[int, dict[str, Any]]]:
    """Several runs of ``sweep`` in a row (one pool or Dask task): [(index, result columns), ...]."""
    return [(index, run_job(sc, n)) for index, sc, n in map(lambda i: job(sweep, i), indices)]


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
STOP_WAIT = 5.0
"""Seconds ``Pool.stop`` waits for a worker to end after SIGTERM before it sends SIGKILL."""
EXIT_RESERVE = 0.006
"""Seconds of work (estimated) that the pool's own process keeps for itself at the end, while its forked workers
exit (~7 ms each to end a process with its copy of this address space, measured on `regimes`)."""


def _die_with_parent(parent: int) -> None:
    """End this worker when the sweep's process dies, even by SIGKILL (it would otherwise run on, orphaned, and keep
    the parent's stdout open). Linux: the kernel's parent-death signal; elsewhere a thread that polls."""
    prctl = libc_function("prctl")
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
    """A pool worker: Ctrl+C is the parent's (it stops the pool and keeps the rows); SIGTERM (``stop``) ends it,
    whatever handler the forking process had installed; it dies with the parent; it hands back the free heap it
    inherited (``trim_heap``); the parent's open table is closed here (a forked copy would keep its lock); the sweep
    is received once."""
    global _WORKER_SWEEP
    from rnnsim.kernels import team

    team.disable()      # the other cores run the other workers: no helper thread per worker (kernels/team.py)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A Python handler inherited from the parent (a program embedding the sweep, `rnnsim run`'s StopSignals) would
    # turn stop()'s SIGTERM into an exception inside a chunk, which the executor sends back as a result, and the
    # worker would then wait for work forever.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
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
        if self._workers is not None:
            processes, manager = self._workers, self._manager
        else:  # no public API ends running workers
            processes = list((getattr(executor, "_processes", None) or {}).values())
            manager = getattr(executor, "_executor_manager_thread", None)
        self._workers = self._manager = None
        executor.shutdown(wait=False, cancel_futures=True)
        for p in processes:
            if p.is_alive():
                p.terminate()
        # The executor's thread joins the workers too. Joined first: a worker that thread has reaped but not yet
        # marked as ended would look alive here (waitpid fails with ECHILD and multiprocessing reads that as alive).
        if manager is not None:
            manager.join(timeout=STOP_WAIT)
        for p in processes:
            p.join(timeout=STOP_WAIT)
            if p.is_alive():    # SIGTERM ignored by code the worker ran: no worker is left behind
                p.kill()
                p.join(timeout=STOP_WAIT)


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
