"""The execution mode of a Simulation, chosen once when it is built, and the workspace that carries it.

A recurrent cell runs a pass in one of three memory modes (``Mode``), each in its own module of this wing:

    cached              every per-step cache kept for the whole sequence; one GEMM before the time loop for the
                        input projection, GEMMs after BPTT for the weight gradients (rnnsim/kernels/cached.py)
    chunked             per-chunk buffers of K steps, gates recomputed in BPTT (rnnsim/kernels/chunked.py)
    projection-folded   cached, with the input projection folded into the per-step product (LSTM at large sizes,
                        rnnsim/kernels/folded.py)

and, separately, the Simulation may take the single-call small pass (rnnsim/kernels/small_pass.py) for the
readout, the loss and the sentinel's checks. ``choose`` answers every size question once, from the thresholds of
rnnsim/kernels/config.py, into a ``Plan`` stored on the workspace; the cells and the Simulation read it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from rnnsim.kernels import config
from rnnsim.kernels.blas import small_gemms, step_gemm_in_numpy
from rnnsim.kernels.packed import applies


class Mode(enum.Enum):
    CACHED = "cached"
    CHUNKED = "chunked"
    FOLDED = "projection-folded"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Plan:
    """Every decision that depends on the sizes, made once (see ``choose``)."""

    mode: Mode
    K: int                   #: steps per chunk (chunked mode), else 0
    step_blas: bool          #: the per-step recurrent products go to NumPy's BLAS from a Python loop
    small_pass: bool         #: readout, loss and checks as single Numba calls (rnnsim/kernels/small_pass.py)
    small_projection: bool   #: cached mode: the input projection (and W_hh^T) in one Numba call
    small_grads: bool        #: cached mode: the weight gradients and dL/dx_t in one Numba call
    packed: bool = False     #: float32: per-step products against W_hh packed once per pass (kernels/packed.py)

    def describe(self) -> str:
        """e.g. "cached, small pass" or "chunked (K = 64), per-step BLAS"."""
        words = [f"{self.mode} (K = {self.K})" if self.mode is Mode.CHUNKED else str(self.mode)]
        if self.step_blas:
            words.append("per-step BLAS")
        if self.packed:
            words.append("packed W_hh")
        if self.small_pass:
            words.append("small pass")
        return ", ".join(words)


def chunk_steps(cache_bytes: int, T: int) -> int:
    """K, the steps per chunk, or 0 for the whole-sequence modes."""
    return 0 if cache_bytes <= config.CACHE_LIMIT else max(1, min(int(config.CHUNK_STEPS), T))


def choose(cell, T: int, B: int, D: int, H: int, O: int, itemsize: int, model) -> Plan:
    """The plan of a Simulation of ``cell`` (a module of rnnsim/cells) at these sizes.

    - chunked when the cell's per-step caches (``cell.cached_bytes``) exceed CACHE_LIMIT;
    - per-step BLAS when a per-step product B×H by H×G·H reaches STEP_GEMM_FLOPS;
    - packed W_hh for float32 from PACKED_MIN_H, PACKED_MIN_ROWS and PACKED_MIN_FLOPS, H a multiple of 32, on
      AVX-512 (rnnsim/kernels/packed.py):
      then the per-step products stay in the Numba loop (no per-step BLAS, no projection folding);
    - projection-folded for a cell that can fold (``cell.FOLDS_PROJECTION``), cached, whose folded product
      B×(H+D) by (H+D)×G·H reaches STEP_GEMM_FLOPS;
    - the small pass for the linear readout when no product of the pass would leave Numba (every whole-sequence
      product below MT_GEMM_FLOPS, the per-step ones in the Numba loop) and the mode is not chunked.
    """
    G = cell.G
    if G == 0:   # no recurrence (attention): its own GEMMs, no memory modes
        return Plan(Mode.CACHED, 0, False, False, False, False)
    GH = G * H
    K = chunk_steps(cell.cached_bytes(T, B, H, itemsize, model), T)
    packed = applies(itemsize, B, H, G)
    folded = K == 0 and not packed and cell.FOLDS_PROJECTION and step_gemm_in_numpy(B, H + D, GH)
    mode = Mode.CHUNKED if K else Mode.FOLDED if folded else Mode.CACHED
    step_blas = not packed and step_gemm_in_numpy(B, H, GH)
    small_pass = (model.readout == "linear" and K == 0 and not step_blas
                  and small_gemms(T * B, GH, D, H, O))
    return Plan(mode, K, step_blas, small_pass, small_gemms(T * B, GH, D), small_gemms(T * B, GH, D, H), packed)


class Workspace:
    """Preallocated arrays for one forward and backward pass of a cell (attribute bag, time-major), and the plan
    that chose their layout (``ws.plan``; ``ws.mode``, ``ws.K``, ``ws.step_blas``, ``ws.small_pass`` read it)."""

    plan = Plan(Mode.CACHED, 0, False, False, False, False)

    def __init__(self, plan: Plan | None = None, **arrays):
        if plan is not None:
            self.plan = plan
        self.__dict__.update(arrays)

    mode = property(lambda self: self.plan.mode, doc="the memory mode (Mode)")
    K = property(lambda self: self.plan.K, doc="steps per chunk in chunked mode, else 0")
    step_blas = property(lambda self: self.plan.step_blas, doc="per-step products through NumPy's BLAS")
    small_pass = property(lambda self: self.plan.small_pass, doc="the single-call small pass")

    def nbytes(self) -> int:
        """Bytes held, each array counted once (some names alias the same memory)."""
        arrays = {id(a): a for a in self.__dict__.values() if isinstance(a, np.ndarray)}
        return sum(a.nbytes for a in arrays.values())
