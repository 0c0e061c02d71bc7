"""Projection-folded mode: a cached LSTM at the sizes whose per-step products go to NumPy's BLAS.

Step t multiplies [h_{t-1}, x_t] (a row of ``hx``, (T, B, H + D)) by [W_hh^T; W_ih^T] (``W_cat``), K = H + D
instead of H, which costs the same time within noise at H = 512, D = 16, where the separate whole-sequence
projection (a thin 3200×16 by 16×2048 GEMM, then + b_ih) cost as much as 10% of a pass and its (T, B, G·H) result had
to be written once and read back per step. After BPTT one GEMM over hx gives [dW_hh, dW_ih] (no thin GEMM for dW_ih
either). b_ih enters the gates as ``xb``, b_ih in every row, where the cached mode's XW[t] entered. Only for cells
whose dL/d(input projection) equals dL/d(recurrent product) (``FOLDS_PROJECTION``: the LSTM; not the GRU, whose n
block differs); ``XW`` then is dL/da only. Chosen by rnnsim/kernels/modes.py (STEP_GEMM_FLOPS).
"""

from __future__ import annotations

import numpy as np

from rnnsim.kernels.blas import gemm, numpy_blas_one_thread, transpose_into
from rnnsim.kernels.cached import bias_grads


def buffers(ws, T, B, D, H, G, dtype) -> None:
    z = lambda *shape: np.zeros(shape, dtype=dtype)  # noqa: E731
    ws.__dict__.update(hx=z(T, B, H + D), W_cat=z(H + D, G * H), xb=z(B, G * H), dW_cat=z(G * H, H + D))


def begin_forward(ws, X, params) -> None:
    H = ws.h.shape[2]
    transpose_into(ws.W_cat[:H], params["weight_hh"])
    transpose_into(ws.W_cat[H:], params["weight_ih"])
    ws.xb[:] = params["bias_ih"]
    ws.hx[:, :, H:] = X


def forward_range(t0, t1, ws, gates):
    """Steps [t0, t1) from Python: h_{t-1} into its row of hx (copied at step t, so that step t reads
    ws.h[t − 1] as in the other modes), ``tmp`` = [h_{t-1}, x_t] W_cat, then ``gates(t)`` (the cell's gate kernel,
    with ``xb`` for its XW[t])."""
    H = ws.h.shape[2]
    with numpy_blas_one_thread():
        for t in range(t0, t1):
            ws.hx[t, :, :H] = ws.h[t - 1] if t > 0 else ws.h0
            np.matmul(ws.hx[t], ws.W_cat, out=ws.tmp)
            gates(t)


def weight_grads(ws, params, grads, da) -> None:
    """The cached mode's weight_grads, from da (T, B, G·H) = dL/d(gate pre-activations)."""
    T, B, GH = da.shape
    H = ws.h.shape[2]
    da2 = da.reshape(T * B, GH)
    gemm(da2.T, ws.hx.reshape(T * B, -1), ws.dW_cat)
    grads["weight_hh"][:] = ws.dW_cat[:, :H]
    grads["weight_ih"][:] = ws.dW_cat[:, H:]
    bias_grads(da2, None, grads)
    gemm(da2, params["weight_ih"], ws.dx.reshape(T * B, -1))
