"""Cached mode: the whole-sequence products around the time loop, for every recurrent cell.

Layout (time-major, like cuDNN): every per-step array is (T, B, width) and C-contiguous, so the slice for one time
step is a contiguous (B, width) block that BLAS can read and write in place. Before the time loop one GEMM computes
the input projection of the whole sequence, x_t W_ih^T + b_ih (``input_projection``); the time loop (the cell's
kernels) does only what is sequential; after BPTT one GEMM each gives dW_ih, dW_hh and dL/dx_t for all steps
(``weight_grads``). At small sizes (``plan.small_projection``, ``plan.small_grads``) each of those is one Numba call.
"""

from __future__ import annotations

import numpy as np

from rnnsim.kernels import team
from rnnsim.kernels.blas import gemm, transpose_into
from rnnsim.kernels.loader import jit


@jit
def _any_nonzero(a):
    """np.any(a != 0) for a 2-D array, without the temporary boolean array (NaN counts, as there)."""
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            if a[i, j] != 0.0:
                return True
    return False


@jit
def _weight_grads_small(gi2, gh2, X2, H2, h0, W_ih, gW_ih, gW_hh, gb_ih, gb_hh, dx2):
    """weight_grads in one Numba call, on the (T·B, ·) views (h0 is (B, H))."""
    B = h0.shape[0]
    TB = gi2.shape[0]
    np.dot(gi2.T, X2, gW_ih)
    if TB > B:
        np.dot(gh2[B:].T, H2[:TB - B], gW_hh)
    else:
        gW_hh[:] = 0.0
    if _any_nonzero(h0):
        for i in range(gW_hh.shape[0]):
            for j in range(gW_hh.shape[1]):
                s = 0.0
                for b in range(B):
                    s += gh2[b, i] * h0[b, j]
                gW_hh[i, j] += s
    gb_ih[:] = 0.0
    gb_hh[:] = 0.0
    for r in range(TB):
        for k in range(gb_ih.shape[0]):
            gb_ih[k] += gi2[r, k]
            gb_hh[k] += gh2[r, k]
    np.dot(gi2, W_ih, dx2)


def weight_grads(ws, X, h0, W_ih, grads, dgi, dgh):
    """dW_ih, dW_hh, db_ih, db_hh and dL/dx_t for all steps at once from the per-step gate gradients.

    ``dgi`` (T, B, G·H) is dL/d(x_t W_ih^T + b_ih) and ``dgh`` the same for h_{t-1} W_hh^T + b_hh (equal but for
    the GRU's n block). Computed once after the whole BPTT, as GEMMs over T·B rows (small ones: one Numba call).
    """
    T, B, GH = dgi.shape
    Hs = ws.h
    H = Hs.shape[2]
    D = X.shape[2]
    gi2 = dgi.reshape(T * B, GH)
    if ws.plan.small_grads:
        _weight_grads_small(gi2, dgh.reshape(T * B, GH), X.reshape(T * B, D), Hs.reshape(T * B, H), h0, W_ih,
                            grads["weight_ih"], grads["weight_hh"], grads["bias_ih"], grads["bias_hh"],
                            ws.dx.reshape(T * B, D))
        return
    gh2 = None if dgh is dgi else dgh.reshape(T * B, GH)
    # a packed plan's whole-sequence products run on one thread each, as units the team may share (kernels/team.py)
    threads = not ws.plan.packed

    def input_side():               # dW_ih, db_ih, db_hh, dL/dx_t
        gemm(gi2.T, X.reshape(T * B, D), grads["weight_ih"], threads)
        bias_grads(gi2, gh2, grads)
        gemm(gi2, W_ih, ws.dx.reshape(T * B, D), threads)

    # dW_hh = Σ_t dgh[t]^T h_{t-1}, h_{t-1} for t = 0..T-1 being (h0, h_0, ..., h_{T-2})
    def weight_hh(lo, hi, out):
        gemm(dgh[lo:hi].reshape((hi - lo) * B, GH).T, Hs[lo - 1:hi - 1].reshape((hi - lo) * B, H), out, threads)

    if ws.plan.packed and T >= 3:   # three units, on two threads when the team applies; the same sums either way
        if getattr(ws, "team_acc", None) is None:
            ws.team_acc = np.zeros_like(grads["weight_hh"])
        a = team.balance(T, D, H)
        units = [input_side, lambda: weight_hh(a, T, ws.team_acc), lambda: weight_hh(1, a, grads["weight_hh"])]
        if not team.split(ws, T, units):
            for unit in units:
                unit()
        grads["weight_hh"] += ws.team_acc
    else:
        input_side()
        if T > 1:
            weight_hh(1, T, grads["weight_hh"])
        else:
            grads["weight_hh"][:] = 0.0
    if h0.any():
        grads["weight_hh"] += dgh[0].T @ h0


def bias_grads(gi2, gh2, grads) -> None:
    """db_ih and db_hh: column sums of the (rows, G·H) gate gradients; ``gh2`` None when it equals ``gi2`` (LSTM,
    RNN: one pass over the rows instead of two)."""
    np.sum(gi2, axis=0, out=grads["bias_ih"])
    if gh2 is None:
        grads["bias_hh"][:] = grads["bias_ih"]
    else:
        np.sum(gh2, axis=0, out=grads["bias_hh"])



@jit
def _project_small(X2, W_ihT, b_ih, XW2, W_hh, W_hhT):
    """input_projection in one Numba call, on the (T·B, ·) views."""
    np.dot(X2, W_ihT, XW2)
    for r in range(XW2.shape[0]):
        for k in range(XW2.shape[1]):
            XW2[r, k] += b_ih[k]
    transpose_into(W_hhT, W_hh)


def input_projection(ws, X, params):
    """XW = x_t W_ih^T + b_ih for every step (one GEMM), and W_hh^T for the time loop."""
    T, B, D = X.shape
    XW2 = ws.XW.reshape(T * B, -1)
    if ws.plan.small_projection:
        _project_small(X.reshape(T * B, D), params["weight_ih"].T, params["bias_ih"], XW2, params["weight_hh"],
                       ws.W_hhT)
        return
    gemm(X.reshape(T * B, D), params["weight_ih"].T, XW2, not ws.plan.packed)
    ws.XW += params["bias_ih"]
    transpose_into(ws.W_hhT, params["weight_hh"])

