"""Pieces shared by the cell kernels: the jit decorator, scalar activations, the workspace.

Layout (time-major, like cuDNN): every per-step array is (T, B, width) and C-contiguous, so the slice for one time
step is a contiguous (B, width) block that BLAS can read and write in place. The Simulation exposes (B, T, ...)
views of these arrays, which is what DESIGN.md §2 promises.

Work split (the same for every cell):
- before the time loop, one GEMM computes the input projection of the whole sequence, x_t W_ih^T + b_ih;
- the time loop (``forward_step``/``backward_step``, Numba) does only what is sequential: the recurrent product
  h_{t-1} W_hh^T (forward) or da_t W_hh (backward) and the elementwise gate maths, into preallocated arrays;
- after the time loop, one GEMM each gives dW_ih, dW_hh and dL/dx_t for all steps at once.
"""

from __future__ import annotations

import math
import os

import numba
import numpy as np

import rnnsim._numba_env  # noqa: F401  (sets NUMBA_CACHE_DIR before numba compiles anything)

jit = numba.njit(cache=True, nogil=True)


def _single_threaded_step_blas() -> None:
    """Run the BLAS that the jitted time loop calls (SciPy's, through numba's np.dot) on one thread.

    The per-step products are small (B×H by H×G·H); a multi-threaded BLAS spins up threads for each of them, and
    when the other core is busy (the TUI's own thread, a shared lab machine) each call waits for a descheduled
    thread: measured here 2.4 ms instead of 22 µs per step for an RNN at H = 16, B = 32. NumPy's own BLAS, used
    for the whole-sequence products outside the time loop, keeps its threads.
    """
    try:
        import scipy.linalg.cython_blas  # noqa: F401  (loads the library numba calls)
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return
    for lib in ThreadpoolController().lib_controllers:
        folder = os.path.basename(os.path.dirname(lib.filepath or ""))
        if lib.user_api == "blas" and folder.startswith("scipy"):
            lib.set_num_threads(1)


_single_threaded_step_blas()

LN_EPS = 1e-5


@jit
def sigmoid(x):
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def sigmoid_np(x):
    """Plain NumPy logistic function, for the references (stable for large |x|)."""
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1.0 + e)
    return out


class Workspace:
    """Preallocated arrays for one forward and backward pass of a cell (attribute bag, time-major)."""

    def __init__(self, **arrays):
        self.__dict__.update(arrays)

    def nbytes(self) -> int:
        """Bytes held, each array counted once (some names alias the same memory)."""
        arrays = {id(a): a for a in self.__dict__.values() if isinstance(a, np.ndarray)}
        return sum(a.nbytes for a in arrays.values())


def weight_grads(ws, X, h0, W_ih, grads, dgi, dgh):
    """dW_ih, dW_hh, db_ih, db_hh and dL/dx_t for all steps at once from the per-step gate gradients.

    ``dgi`` (T, B, G·H) is dL/d(x_t W_ih^T + b_ih) and ``dgh`` the same for h_{t-1} W_hh^T + b_hh (equal but for
    the GRU's n block). Computed once after the whole BPTT, as two GEMMs over T·B rows.
    """
    T, B, GH = dgi.shape
    Hs = ws.h
    H = Hs.shape[2]
    D = X.shape[2]
    gi2 = dgi.reshape(T * B, GH)
    np.matmul(gi2.T, X.reshape(T * B, D), out=grads["weight_ih"])
    # h_{t-1} for t = 0..T-1 is (h0, h_0, ..., h_{T-2})
    np.matmul(dgh[0].T, h0, out=grads["weight_hh"])
    if T > 1:
        grads["weight_hh"] += dgh[1:].reshape((T - 1) * B, GH).T @ Hs[:-1].reshape((T - 1) * B, H)
    np.sum(gi2, axis=0, out=grads["bias_ih"])
    np.sum(dgh.reshape(T * B, GH), axis=0, out=grads["bias_hh"])
    np.matmul(gi2, W_ih, out=ws.dx.reshape(T * B, D))
