"""Chunked mode (large sizes, see CACHE_LIMIT in rnnsim/kernels/config.py): the input projection per chunk of K
steps into a (K, B, G·H) buffer, BPTT recomputing a chunk's gates from h_{t-1}, c_{t-1}, x_t (one extra forward
step each, into scratch), and dW_ih, dW_hh, db, dL/dx_t accumulated per chunk from a (K, B, G·H) buffer of dL/da.
Memory then is the arrays the API keeps plus O(K·B·G·H). The cells say which arrays a chunk's steps use; the
walking over chunks is here.
"""

from __future__ import annotations

import numpy as np

from rnnsim.kernels.blas import gemm


def buffers(ws, K, B, D, H, G, dtype) -> None:
    """The per-chunk input projection (reused as dL/da), and the weight-gradient accumulators."""
    z = lambda *shape: np.zeros(shape, dtype=dtype)  # noqa: E731
    ws.__dict__.update(XW=z(K, B, G * H), acc_ih=z(G * H, D), acc_hh=z(G * H, H), acc_bih=z(G * H),
                       acc_bhh=z(G * H), tmp_ih=z(G * H, D), tmp_hh=z(G * H, H), tmp_b=z(G * H))
    ws.fw_chunk = -1
    ws.bw_chunk = -1


def chunk_of(ws, t):
    """(lo, hi): the chunk holding step t."""
    lo = t // ws.K * ws.K
    return lo, min(lo + ws.K, ws.h.shape[0])


def prev_state(ws, arr, lo, init):
    """The state before step lo: arr[lo − 1], or the initial state at lo = 0."""
    return arr[lo - 1] if lo > 0 else init


def project_chunk(ws, lo, hi, params) -> None:
    """ws.XW[:hi − lo] = x_t W_ih^T + b_ih for t in [lo, hi)."""
    X = ws.X
    n, B, D = hi - lo, X.shape[1], X.shape[2]
    xw = ws.XW[:n].reshape(n * B, -1)
    gemm(X[lo:hi].reshape(n * B, D), params["weight_ih"].T, xw)
    xw += params["bias_ih"]


def begin_backward(ws) -> None:
    ws.bw_chunk = -1
    ws.fw_chunk = -1          # BPTT writes dL/da over ws.XW
    for a in (ws.acc_ih, ws.acc_hh, ws.acc_bih, ws.acc_bhh):
        a[:] = 0


def chunk_grads(ws, lo, hi, W_ih, dgi, dgh) -> None:
    """Add chunk [lo, hi)'s share of dW_ih, dW_hh, db_ih, db_hh; write its dL/dx_t. dgi, dgh: (≥ hi − lo, B, G·H)."""
    X, Hs = ws.X, ws.h
    n, B, D = hi - lo, X.shape[1], X.shape[2]
    H = Hs.shape[2]
    GH = dgi.shape[2]
    gi2 = dgi[:n].reshape(n * B, GH)
    gh2 = dgh[:n].reshape(n * B, GH)
    gemm(gi2.T, X[lo:hi].reshape(n * B, D), ws.tmp_ih)
    ws.acc_ih += ws.tmp_ih
    if lo > 0:
        gemm(gh2.T, Hs[lo - 1:hi - 1].reshape(n * B, H), ws.tmp_hh)
        ws.acc_hh += ws.tmp_hh
    else:
        if n > 1:
            gemm(gh2[B:].T, Hs[:n - 1].reshape((n - 1) * B, H), ws.tmp_hh)
            ws.acc_hh += ws.tmp_hh
        if ws.h0.any():
            ws.acc_hh += dgh[0].T @ ws.h0
    np.sum(gi2, axis=0, out=ws.tmp_b)
    ws.acc_bih += ws.tmp_b
    np.sum(gh2, axis=0, out=ws.tmp_b)
    ws.acc_bhh += ws.tmp_b
    gemm(gi2, W_ih, ws.dx[lo:hi].reshape(n * B, D))


def finish(ws, grads) -> None:
    grads["weight_ih"][:] = ws.acc_ih
    grads["weight_hh"][:] = ws.acc_hh
    grads["bias_ih"][:] = ws.acc_bih
    grads["bias_hh"][:] = ws.acc_bhh


def run_forward(ws, params, t0, t1, steps) -> None:
    """Forward steps [t0, t1) chunk by chunk: project the chunk's inputs when entering it, then
    ``steps(lo, hi, a, b)`` runs steps [a, b) of chunk [lo, hi) (absolute indices)."""
    t = t0
    while t < t1:
        lo, hi = chunk_of(ws, t)
        if ws.fw_chunk != lo:
            project_chunk(ws, lo, hi, params)
            ws.fw_chunk = lo
        e = min(t1, hi)
        steps(lo, hi, t, e)
        t = e


def run_backward(ws, params, t_hi, t_lo, recompute, steps, dgh) -> None:
    """BPTT steps t_hi down to t_lo chunk by chunk: ``recompute(lo, hi)`` when entering a chunk (from its top),
    ``steps(lo, hi, a, b)`` runs steps a down to b; once a chunk's step lo is done, its weight gradients are added
    and its dL/dx_t written. dL/da of the chunk is in ws.XW (dL/d(W_ih x + b_ih)); ``dgh`` the same for
    W_hh h + b_hh (ws.XW but for the GRU)."""
    t = t_hi
    while t >= t_lo:
        lo, hi = chunk_of(ws, t)
        if ws.bw_chunk != lo:
            recompute(lo, hi)
            ws.bw_chunk = lo
        e = max(t_lo, lo)
        steps(lo, hi, t, e)
        if e == lo:
            chunk_grads(ws, lo, hi, params["weight_ih"], ws.XW, dgh)
        t = e - 1


class StepCache:
    """Stands in for a (T, B, width) per-step cache that chunked mode does not keep: ``cache[t, ...]`` recomputes
    step t (from h_{t-1}, c_{t-1}, x_t and the current parameters) and indexes the (B, width) result."""

    def __init__(self, compute, shape):
        self._compute = compute
        self.shape = shape

    def __getitem__(self, key):
        if not isinstance(key, tuple):
            key = (key,)
        t = int(key[0])
        if t < 0:
            t += self.shape[0]
        if not 0 <= t < self.shape[0]:
            raise IndexError(f"step {key[0]} out of range for {self.shape[0]} steps")
        return self._compute(t)[key[1:]]

