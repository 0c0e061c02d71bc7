"""Two threads on one time loop: each step's packed product shared with a helper thread on the other core (issue 16).

A recurrent pass is a chain (step t needs step t - 1), so a second core can only help inside a step. With both
cores free to the process, a packed plan's time loop (forward or BPTT, ≥ TEAM_MIN_STEPS steps in one call) runs
with a helper thread: for each step the main thread publishes product k (its operand is ready), and both threads
claim the product's panels (32 columns of W_hh each) from the two ends of one atomic word, the main thread from
the first panel up, the helper from the last down, and compute them with ``packed.panels``. The main thread waits
until every panel is in, then does the step's gate maths alone and publishes the next product. So:

- every panel is computed by the same code whichever thread takes it: results are those of ``packed_dot``, bit
  for bit, with or without the helper (the tests check it);
- the helper may be late or absent (still waking up, or its core busy): the main thread then takes every panel;
- if the main thread ever waits longer than TEAM_WAIT_CYCLES for a panel the helper took (its core was given to
  another process mid-panel), it tells the helper to stop and does the rest of the call alone;
- the helper spins on the word between steps (a futex wake per step would cost more than a step); it leaves the
  loop when the call ends.

After BPTT the whole-sequence products are shared too (``split``): dW_ih, the biases' gradients and dL/dx_t as one
unit (the main thread, first to claim, takes it), then dW_hh = Σ_t dL/da_t^T h_{t-1} in two parts of the steps
sized by ``balance`` so that both threads end together: the later steps into ``ws.team_acc`` (the helper's, as
a rule), the earlier into dW_hh, then added; whoever is free takes the next unit, and each unit writes its own
arrays, so the sums do not depend on which thread ran what. A packed plan computes them as the same four
units on one thread when the team does not apply, and its whole-sequence products run on one thread each either
way (``gemm(..., threads=False)``): so a packed plan's numbers do not depend on the cores, the helper or the
backend (a sweep row equals `rnnsim run`), and no multi-threaded OpenBLAS call leaves a worker spinning on the
helper's core (~0.1 s after each call: it slowed the next shared forward pass at H = 512 from ~360 to ~700 µs per
step). (Measured at LSTM H = 256: the input side ~60 µs per step and dW_hh ~210, so each thread gets ~135.)

Measured (LSTM, H = 256, B = 32, T = 100, float32, both cores free): forward 110-125 µs and BPTT 115-130 µs per
step against ~190 and ~200 on one thread. Off when the process may run on one core only (the one-core benchmark
pins it), in a sweep's pool workers (``disable``: every core already runs a worker) and for the step API.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from typing import Iterator

import numpy as np

from rnnsim.kernels import config
from rnnsim.kernels.loader import jit, on_load
from rnnsim.kernels.packed import panels

# slots of a team's int64 sync array, a cache line (8 slots) apart
CLAIM, FIN, STOP, ACK, SOLO, GOAL, HELPED = 0, 8, 16, 24, 32, 40, 48
SIZE = 56
# the claim word: product k in the top bits, then the next panel from below (lo) and the end of the panels left
# from above (hi); panels lo..hi-1 are unclaimed
K_SHIFT, LO_SHIFT = 40, 20
FIELD = (1 << 20) - 1

_enabled = True
#: back off after a call the helper hardly helped (``stop``); the tests turn it off to check every call's sharing
BACKOFF = True
_skip = 0       # calls still to run alone
_backoff = 0    # log2 of the next back-off
_helper: "_Helper | None" = None
_last: np.ndarray | None = None     # the sync array of the helper's last job (its ACK slot: the job is over)
_lock = threading.Lock()


@on_load
def _define_atomics() -> None:
    """Atomic loads, stores, compare-and-swap and add on an int64 array slot, and the cycle counter (LLVM IR)."""
    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    def slot(context, builder, sig, args):
        arr = context.make_array(sig.args[0])(context, builder, args[0])
        return builder.gep(arr.data, [context.cast(builder, args[1], sig.args[1], types.intp)])

    @intrinsic
    def load(typingctx, arr, i):
        return types.int64(arr, i), lambda ctx, b, sig, args: b.load_atomic(slot(ctx, b, sig, args), "acquire", 8)

    @intrinsic
    def store(typingctx, arr, i, v):
        def codegen(ctx, b, sig, args):
            value = ctx.cast(b, args[2], sig.args[2], types.int64)
            b.store_atomic(value, slot(ctx, b, sig, args), "release", 8)
            return ctx.get_dummy_value()
        return types.void(arr, i, v), codegen

    @intrinsic
    def cas(typingctx, arr, i, old, new):
        def codegen(ctx, b, sig, args):
            pair = b.cmpxchg(slot(ctx, b, sig, args), args[2], args[3], "acq_rel", "acquire")
            return b.extract_value(pair, 1)
        return types.boolean(arr, i, types.int64, types.int64), codegen

    @intrinsic
    def add(typingctx, arr, i, v):
        def codegen(ctx, b, sig, args):
            return b.atomic_rmw("add", slot(ctx, b, sig, args), ctx.cast(b, args[2], sig.args[2], types.int64),
                                "acq_rel")
        return types.int64(arr, i, v), codegen

    @intrinsic
    def cycles(typingctx):
        def codegen(ctx, b, sig, args):
            fn = cgutils.get_or_insert_function(b.module, ir.FunctionType(ir.IntType(64), []),
                                                "llvm.readcyclecounter")
            return b.call(fn, [])
        return types.int64(), codegen

    global _load, _store, _cas, _add, _cycles
    _load, _store, _cas, _add, _cycles = load, store, cas, add, cycles


@jit
def team_dot(a, Wp, out, sync, k):
    """out = a @ W (W packed into Wp): product k (≥ 1) of the call, its panels shared with the helper (main side)."""
    P = Wp.shape[0]
    if sync[SOLO] != 0:
        panels(a, Wp, out, 0, P)
        return
    _store(sync, CLAIM, (k << K_SHIFT) | P)          # publishes the operand: panels 0..P-1 are free
    while True:
        v = _load(sync, CLAIM)
        lo = (v >> LO_SHIFT) & FIELD
        if lo >= (v & FIELD):
            break
        if _cas(sync, CLAIM, v, v + (1 << LO_SHIFT)):
            panels(a, Wp, out, lo, lo + 1)
            _add(sync, FIN, 1)
    goal = sync[GOAL] + P
    sync[GOAL] = goal                                 # panels finished by both threads once this product is in
    start = _cycles()
    while _load(sync, FIN) < goal:
        if sync[SOLO] == 0 and _cycles() - start > config.TEAM_WAIT_CYCLES:
            sync[SOLO] = 1                            # the helper lost its core mid-panel: alone from here
            _store(sync, STOP, 1)


@jit
def help_steps(sync, Wp, out, first, src, forward):
    """The helper's side of one call: until told to stop, take panels of the published product from the top.
    Product k's operand: forward, h_{k-2} (``first`` = h_{-1} for k = 1) from ``src``; BPTT, ``src[k - 1]``."""
    while _load(sync, STOP) == 0:
        v = _load(sync, CLAIM)
        k = v >> K_SHIFT
        lo = (v >> LO_SHIFT) & FIELD
        hi = v & FIELD
        if k >= 1 and lo < hi and _cas(sync, CLAIM, v, v - 1):
            if forward:
                panels(first if k == 1 else src[k - 2], Wp, out, hi - 1, hi)
            else:
                panels(src[k - 1], Wp, out, hi - 1, hi)
            sync[HELPED] += 1                        # (the helper's own slot: how many panels it took)
            _add(sync, FIN, 1)
    _store(sync, ACK, 1)


class _Helper:
    """The helper thread: runs queued jobs ``fn(sync, ...)`` one after the other, each acknowledged in its sync
    array when over. A job that fails (it never should) turns the team off for the process: every later call runs
    alone, and the ``rnnsim`` logger (RNNSIM_LOG) has the error."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._serve, daemon=True, name="rnnsim-team").start()

    def _serve(self) -> None:
        global _enabled
        while True:
            fn, args = self.jobs.get()
            try:
                fn(*args)
            except Exception:  # noqa: BLE001 - the main thread goes on alone; the log says why
                _enabled = False
                logging.getLogger("rnnsim").exception("helper thread job %s failed; products run alone", fn)
            finally:
                args[0][ACK] = 1


def _forget() -> None:
    """In a forked child (a sweep's pool worker) the parent's helper thread does not exist: start afresh."""
    global _helper, _last, _lock, _skip, _backoff
    _helper, _last, _lock, _skip, _backoff = None, None, threading.Lock(), 0, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget)


def disable() -> None:
    """No helper thread in this process (a sweep's pool worker: the other cores run the other workers)."""
    global _enabled
    _enabled = False


@contextlib.contextmanager
def alone() -> Iterator[None]:
    """No helper thread while the block runs (a sweep's parent running chunks beside its pool's workers)."""
    global _enabled
    was, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = was


def usable_cores() -> int:
    """How many cores this process may run on (its affinity mask; the CPU count where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def applies(ws, steps: int) -> bool:
    """Whether a call of ``steps`` steps of this workspace's time loop runs with the helper."""
    return (_enabled and ws.plan.packed and steps >= config.TEAM_MIN_STEPS and usable_cores() >= config.TEAM_MIN_CORES)


def _submit(fn, args, sync) -> bool:
    """Queue a job for the helper unless it is still on its last one (then the caller works alone)."""
    global _helper, _last
    with _lock:
        if not _free():
            return False
        if _helper is None:
            _helper = _Helper()
        _last = sync
        _helper.jobs.put((fn, args))
        return True


#: how long a call waits for the helper to leave its last job (a call that just ended: the helper finishes the panel
#: in hand, then acknowledges) before it runs alone
FREE_WAIT = 0.002


def _free(wait: float | None = None) -> bool:
    """Whether the helper is done with its last job, waiting up to ``wait`` (FREE_WAIT) seconds for it."""
    if _last is None or _last[ACK]:
        return True
    deadline = time.perf_counter() + (FREE_WAIT if wait is None else wait)
    while time.perf_counter() < deadline:
        time.sleep(1e-5)                  # releases the GIL, which a helper not yet started needs to leave
        if _last[ACK]:
            return True
    return False


def start(ws, steps: int, Wp, out, first, src, forward: bool):
    """The sync array to pass to a time loop of ``steps`` steps (None: the loop runs alone). The caller calls
    ``stop`` with it when the loop returns (or raises)."""
    global _skip
    if not applies(ws, steps):
        return None
    if _skip:
        _skip -= 1
        return None
    sync = np.zeros(SIZE, dtype=np.int64)
    if not _submit(help_steps, (sync, Wp, out, first, src, forward), sync):
        return None
    return sync


def stop(sync) -> None:
    """End the helper's part of a call (it finishes a panel in hand, then leaves), and back off if it hardly
    helped: when it took under a quarter of the panels, the next 2, 4, ... 64 calls run alone. Its core is then
    busy with another process, and a spinning helper that shares a core with this thread would slow it down
    (measured with the other core busy: LSTM H = 256 passes ~10% slower than alone). A call that went alone after
    one long wait (SOLO: the helper was preempted once, by a kernel thread say) does not back off if the helper
    had done its share until then."""
    global _skip, _backoff
    if sync is None:
        return
    sync[STOP] = 1
    if BACKOFF and 4 * sync[HELPED] < sync[GOAL]:
        _backoff = min(_backoff + 1, 6)
        _skip = 1 << _backoff
    else:
        _backoff = 0


def run(ws, steps: int, Wp, out, first, src, forward: bool, loop, args) -> None:
    """``loop(*args, sync)``: a cell's time loop of ``steps`` steps, with the helper when the team applies (its
    products: ``out = a @ W`` with W packed into ``Wp``; operands as in ``help_steps``)."""
    sync = start(ws, steps, Wp, out, first, src, forward)
    try:
        loop(*args, sync)
    finally:
        stop(sync)


class _Units:
    """Jobs that either thread may run (each once): ``claim`` hands out the next one; ``done`` counts them."""

    def __init__(self, units) -> None:
        self.units = units
        self.next = 0
        self.done = 0
        self.error: BaseException | None = None
        self.lock = threading.Lock()

    def claim(self):
        with self.lock:
            if self.next == len(self.units):
                return None
            self.next += 1
            return self.units[self.next - 1]

    def work(self) -> None:
        while (unit := self.claim()) is not None:
            try:
                unit()
            except BaseException as exc:
                self.error = exc
                raise
            finally:
                with self.lock:
                    self.done += 1


def _help_units(sync, units: _Units) -> None:
    units.work()


#: the input side's cost per element of dL/da (rows × G·H), against 2·H for dW_hh's: 4·D FLOPs for dW_ih and
#: dL/dx plus memory-bound passes (the bias sums) worth ~120, measured at LSTM H = 256, D = 8 (~60 against ~210 µs
#: per step)
INPUT_SIDE_COST = 120


def balance(T: int, D: int, H: int) -> int:
    """The step a splitting dW_hh's rows 1..T-1 into [1, a) (after the input side, on the thread that took it) and
    [a, T) (on the other), so that both threads end at about the same time."""
    side, hh = 4 * D + INPUT_SIDE_COST, 2 * H
    other = min(1.0, max(0.5, (side + hh) / (2 * hh)))        # the share of dW_hh for the thread without the side
    return max(1, min(T - 1, T - round(other * (T - 1))))


def split(ws, steps: int, units) -> bool:
    """Run ``units`` (functions of no argument, each writing its own arrays, whose heavy part releases the GIL) on
    this thread and the helper: whoever is free takes the next one, so the results do not depend on who ran what.
    False (nothing run) when the team does not apply to a pass of ``steps`` steps."""
    if not applies(ws, steps):
        return False
    sync = np.zeros(SIZE, dtype=np.int64)
    jobs = _Units(units)
    _submit(_help_units, (sync, jobs), sync)
    jobs.work()
    while jobs.done < len(units):          # the helper's last unit, if it took one: at most one unit's wait
        time.sleep(0.0001)
    if jobs.error is not None:             # a unit failed on the helper: as if it had failed here
        raise jobs.error
    return True
