"""dW_hh on the second core while BPTT runs on the first (packed plans, cached mode, both cores free to us).

BPTT is a chain: step t needs step t + 1. The weight gradient dW_hh = Σ_t dL/da_t^T h_{t-1} is not: once BPTT
has passed a block of steps, that block's share is one GEMM that nothing later changes. So a whole-pass BPTT runs
in blocks from the top (``blocks``), and after each block a worker thread computes its share on SciPy's BLAS on
one thread (a nogil Numba call) while the main thread goes on down the chain with the packed products (which call
no BLAS). ``finish`` waits for the shares and adds the rows no block covered (the last block's, computed after
the chain anyway, is usually all that is left). With both cores free that takes the largest whole-sequence GEMM off
the critical path (LSTM H = 512, B = 32, T = 100: ~0.7 ms per step of 2.4).

Only where it can help and cannot change float64 numbers: the plan is packed (float32; the sums of the blocks
round differently from one GEMM, within float32 accuracy), cached mode, BPTT of at least OVERLAP_MIN_STEPS steps in
one call, and this thread may run on at least two cores (a process pinned to one core, as in the one-core
benchmark, would only time-slice the two). The step API (one BPTT step per call) never overlaps.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from rnnsim.kernels import config
from rnnsim.kernels.blas import _dot
from rnnsim.kernels.modes import Mode

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _forget_pool() -> None:
    """In a forked child (a sweep's pool worker) the parent's worker thread does not exist: start afresh."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(1, thread_name_prefix="rnnsim-dW")
        return _pool


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def applies(ws, t_hi: int, t_lo: int) -> bool:
    """Whether BPTT steps t_hi down to t_lo of this workspace run in overlapped blocks (contiguous with what is
    covered so far: from the top, or on from the last block)."""
    return (ws.plan.packed and ws.plan.mode is Mode.CACHED and t_hi == ws.ov_lo - 1
            and t_hi - t_lo + 1 >= config.OVERLAP_MIN_STEPS and _cores() >= config.OVERLAP_MIN_CORES)


def begin(ws) -> None:
    """A new BPTT: nothing covered yet (rows t ≥ ov_lo of dW_hh are in ws.ov_acc once the shares are in); a share
    still running from an abandoned BPTT is waited for first."""
    finish(ws)
    ws.ov_lo = ws.h.shape[0]


def blocks(t_hi: int, t_lo: int, n: int) -> list[tuple[int, int]]:
    """[(hi, lo), ...]: steps t_hi down to t_lo in ``n`` blocks of (nearly) equal size, the top first."""
    count = t_hi - t_lo + 1
    n = max(1, min(n, count))
    edges = [t_hi + 1 - (count * i) // n for i in range(n + 1)]
    return [(edges[i] - 1, edges[i + 1]) for i in range(n)]


def _share(acc, first, dgh, Hs, lo, hi, tmp) -> None:
    """acc (+)= Σ_{t=lo..hi} dgh[t]^T h_{t-1} (lo ≥ 1): one GEMM over the block's rows."""
    T, B, GH = dgh.shape
    H = Hs.shape[2]
    rows = (hi - lo + 1) * B
    _dot(dgh[lo:hi + 1].reshape(rows, GH).T, Hs[lo - 1:hi].reshape(rows, H), acc if first else tmp)
    if not first:
        np.add(acc, tmp, out=acc)


def run(ws, t_hi: int, t_lo: int, run_block) -> None:
    """BPTT steps t_hi down to t_lo as ``run_block(hi, lo)`` calls, each block's dW_hh share handed to the
    worker as soon as the block is done."""
    if not hasattr(ws, "ov_acc"):     # once per Simulation: (G·H, H), dW_hh's shape
        ws.ov_acc = np.zeros((ws.dgh.shape[2], ws.h.shape[2]), dtype=ws.h.dtype)
        ws.ov_tmp = np.zeros_like(ws.ov_acc)
    pool = _executor()
    for hi, lo in blocks(t_hi, t_lo, config.OVERLAP_BLOCKS):
        run_block(hi, lo)
        share_lo = max(lo, 1)
        if share_lo <= hi:
            first = not ws.ov_jobs
            ws.ov_jobs.append(pool.submit(_share, ws.ov_acc, first, ws.dgh, ws.h, share_lo, hi, ws.ov_tmp))
        ws.ov_lo = lo


def finish(ws) -> int:
    """Wait for the shares; the first step t whose row of dW_hh is not in ws.ov_acc yet (T: none is; then
    ws.ov_acc is not used), after which the caller adds rows 1..t-1 and h0's."""
    jobs, ws.ov_jobs = getattr(ws, "ov_jobs", []), []
    for job in jobs:
        job.result()
    return max(ws.ov_lo, 1) if jobs else ws.h.shape[0]
