"""Where the runs of a sweep execute: in this process, in a local process pool, or on a Dask cluster.

Every backend calls :func:`run_job`, which runs a scenario exactly as `rnnsim run` does (rnnsim.results), so the
table is the same on every backend. Numba compiles on first use and concurrent first compiles into one cache
race (numba issue 4807): before any worker starts, the parent runs the smallest run of each kind of kernel
(cell, activation, LayerNorm, readout, dtype, task, optimiser, clipping) itself. Those rows are real rows; the
pool's workers are then forked with the kernels already compiled, and Dask workers load them from the cache.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any, Callable, Iterator

from rnnsim.scenario import Scenario

__all__ = ["Job", "run_job", "warm_jobs", "Serial", "Pool", "DaskCluster", "default_workers", "dask_extra_line"]

Job = tuple[int, Scenario, int]
"""(run index, its validated scenario, iterations)."""
Jobs = Callable[[], Iterator[Job]]
"""Makes the jobs afresh on each call (a sweep of many runs is never held in memory as Scenarios at once)."""


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


def _run_indexed(index: int, sc: Scenario, n: int) -> tuple[int, dict[str, Any]]:
    return index, run_job(sc, n)


def _kernel_kind(sc: Scenario, n: int) -> tuple:
    m, t = sc.model, sc.task
    return (m.cell, m.activation, m.layernorm, m.readout, m.dtype, t.kind, sc.training.optimizer, sc.training.clip, n == 0)


def _size(job: Job) -> int:
    _, sc, n = job
    return sc.task.length * sc.task.batch_size * sc.model.hidden_size * max(n, 1)


def warm_jobs(jobs: Jobs) -> list[Job]:
    """The smallest job of each kind of kernel, in order of first appearance."""
    best: dict[tuple, Job] = {}
    for job in jobs():
        kind = _kernel_kind(job[1], job[2])
        if kind not in best or _size(job) < _size(best[kind]):
            best[kind] = job
    return list(best.values())


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class Serial:
    """Every run in this process, one after the other (``--workers 1``)."""

    name = "this process"

    def __init__(self, jobs: Jobs):
        self.jobs = jobs

    def start(self) -> None:
        pass

    def results(self) -> Iterator[tuple[int, dict[str, Any]]]:
        for index, sc, n in self.jobs():
            yield index, run_job(sc, n)

    def stop(self) -> None:
        pass

    def _warm_here(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """Run the warm-up jobs in this process (real rows), then remember which they were."""
        self.warm = warm_jobs(self.jobs)
        for index, sc, n in self.warm:
            yield index, run_job(sc, n)
        self._warm_ids = {job[0] for job in self.warm}

    def _rest(self) -> Iterator[Job]:
        return (job for job in self.jobs() if job[0] not in self._warm_ids)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the parent's: it stops the pool and keeps the rows


class Pool(Serial):
    """A local process pool (concurrent.futures), forked after the parent has compiled the kernels.

    At most ``4 × workers`` runs are queued at a time, so a long sweep's scenarios are never all in memory.
    """

    def __init__(self, jobs: Jobs, workers: int):
        super().__init__(jobs)
        self.workers = workers
        self.name = f"{workers} local worker processes"
        self._executor: Any = None

    def results(self) -> Iterator[tuple[int, dict[str, Any]]]:
        import concurrent.futures as cf
        import multiprocessing as mp

        yield from self._warm_here()
        method = "fork" if sys.platform.startswith("linux") else None  # fork: the compiled kernels come along
        self._executor = cf.ProcessPoolExecutor(self.workers, mp_context=mp.get_context(method),
                                                initializer=_ignore_sigint)
        rest = self._rest()
        pending: set[Any] = set()

        def fill() -> None:
            for job in rest:
                pending.add(self._executor.submit(_run_indexed, *job))
                if len(pending) >= 4 * self.workers:
                    break

        fill()
        while pending:
            finished, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for future in finished:
                pending.discard(future)
                yield future.result()
            fill()
        self._executor.shutdown(wait=True)
        self._executor = None

    def stop(self) -> None:
        """Cancel what has not started and end the workers (after Ctrl+C or an error)."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        processes = list(getattr(executor, "_processes", {}).values())  # no public API ends running workers
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

    def __init__(self, jobs: Jobs, address: str, workers: int | None, key: str):
        super().__init__(jobs)
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

    def results(self) -> Iterator[tuple[int, dict[str, Any]]]:
        from dask.distributed import as_completed

        yield from self._warm_here()  # compiles into this machine's cache
        warm = [(sc, n) for _, sc, n in self.warm]
        workers = list(self.client.scheduler_info().get("workers", {}))
        for worker in workers:  # one worker after another: no concurrent first compiles
            self.client.run(_warm_worker, warm, workers=[worker])
        window = max(8, 4 * len(workers))
        rest = self._rest()
        submit = lambda job: self.client.submit(_run_indexed, *job, key=f"rnnsim-{self.key}-{job[0]}", pure=False)  # noqa: E731
        first = [submit(job) for _, job in zip(range(window), rest)]
        self._futures = set(first)
        queue = as_completed(first)
        for future in queue:
            self._futures.discard(future)
            yield future.result()
            job = next(rest, None)
            if job is not None:
                nxt = submit(job)
                self._futures.add(nxt)
                queue.add(nxt)
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
    for sc, n in jobs:
        run_job(sc, n)
