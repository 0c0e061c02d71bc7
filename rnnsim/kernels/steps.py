"""What every recurrent cell does the same way in each mode (the cells pass their arrays and kernels):

- ``begin_forward``: the whole input projection (cached), its buffers (projection-folded), or only W_hh^T
  (chunked: the projection is then made chunk by chunk);
- ``forward_blas`` / ``backward_blas``: a range of steps, with ``plan.step_blas``, as a Python loop whose
  recurrent products go to NumPy's BLAS on one thread (otherwise the cell calls its own Numba loop);
- ``finish_backward``: the weight gradients and dL/dx_t of the mode.
"""

from __future__ import annotations

import numpy as np

from rnnsim.kernels import cached, chunked, folded, packed
from rnnsim.kernels.blas import numpy_blas_one_thread, transpose_into
from rnnsim.kernels.modes import Mode


def begin_forward(ws, X, params) -> None:
    """Start a pass (the same for every recurrent cell)."""
    ws.X = X
    ws.params = params
    if ws.mode is Mode.FOLDED:
        folded.begin_forward(ws, X, params)
    elif ws.mode is Mode.CACHED:
        cached.input_projection(ws, X, params)
    else:
        transpose_into(ws.W_hhT, params["weight_hh"])
        ws.fw_chunk = -1
    if ws.plan.packed:   # after the branches above: it packs their W_hh^T
        packed.pack_weights(ws, params["weight_hh"])


def forward_weight(ws):
    """The right factor of the forward's per-step products: W_hh^T, or its packed copy (rnnsim/kernels/packed.py)."""
    return ws.Wp_f if ws.plan.packed else ws.W_hhT


def backward_weight(ws, W_hh):
    """The right factor of BPTT's per-step products: W_hh, or its packed copy."""
    return ws.Wp_b if ws.plan.packed else W_hh


def forward_blas(t0, t1, h0, Hs, W_hhT, tmp, gates) -> None:
    """Steps [t0, t1) with per-step BLAS: for each t, tmp = h_{t-1} W_hh^T (h_{-1} = ``h0``, else ``Hs[t - 1]``) in
    NumPy, then ``gates(t)`` (the cell's gate kernel)."""
    with numpy_blas_one_thread():
        for t in range(t0, t1):
            np.matmul(h0 if t == 0 else Hs[t - 1], W_hhT, out=tmp)
            gates(t)


def backward_blas(t_hi, t_lo, gates, product) -> None:
    """BPTT steps t_hi down to t_lo with per-step BLAS: for each t, ``gates(t)`` (the cell's gate kernel) then
    ``product(t)`` (the carry's recurrent product, in NumPy)."""
    with numpy_blas_one_thread():
        for t in range(t_hi, t_lo - 1, -1):
            gates(t)
            product(t)


def begin_backward(ws) -> None:
    if ws.mode is Mode.CHUNKED:
        chunked.begin_backward(ws)


def finish_backward(ws, X, params, grads, model=None) -> None:
    """dW_ih, dW_hh, db_ih, db_hh and dL/dx_t once BPTT is done, from ``ws.dgi`` = dL/d(W_ih x + b_ih) per step
    and ``ws.dgh``, the same for W_hh h + b_hh (the same array but for the GRU)."""
    dgi, dgh = ws.dgi, ws.dgh
    if ws.mode is Mode.FOLDED:
        folded.weight_grads(ws, params, grads, dgi)
    elif ws.mode is Mode.CACHED:
        cached.weight_grads(ws, X, ws.h0, params["weight_ih"], grads, dgi, dgh)
    else:
        chunked.finish(ws, grads)
