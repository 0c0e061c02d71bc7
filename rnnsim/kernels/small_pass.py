"""The single-call small pass: the Simulation's work around the cell (the linear readout, the loss, their gradients
and the sentinel's checks) as one Numba call per pass (or per step of the step API).

At small sizes (H ≤ 64, B = 1: a pass of T = 100 steps is a few hundred µs) the cell's time loop is a small part of
a pass; the rest was a dozen NumPy calls per pass (GEMM helpers, bias adds, ``isfinite(...).all()`` per array,
the loss, ``errstate``), each with µs of fixed cost, and several times that when another job has just evicted the
caches. The Simulation uses these kernels when its plan says so (``plan.small_pass``, chosen in
rnnsim/kernels/modes.py: the linear readout, cached, every product small); the NumPy code stays for the rest
(chunked mode, the attention readout, large products that use NumPy's threaded BLAS).

Same numbers as that NumPy code: the same formulas, the same checks (rnnsim/kernels/checks.py), the same roundings
for float32 outputs and dL/dout (the scale factors are passed in the array dtype); the loss's sum may add in
another order (it accumulates in float64).
"""

from __future__ import annotations

import math

import numpy as np

from rnnsim.kernels.checks import OK, forward_checks
from rnnsim.kernels.loader import jit


@jit
def _readout(t0, t1, B, H2, WoT, bo, out2):
    """outputs of steps [t0, t1): out = h W_o^T + b_o, on the (T·B, ·) views."""
    lo, hi = t0 * B, t1 * B
    np.dot(H2[lo:hi], WoT, out2[lo:hi])
    for r in range(lo, hi):
        for k in range(bo.shape[0]):
            out2[r, k] += bo[k]


@jit
def mse(out, Y, M, dout, scale, count):
    """Mean squared error over the masked elements; dout = 2 (out − y)·mask / count (``scale`` = 2/count in the
    outputs' dtype). Masked-out elements enter as (out − y)·0, as in NumPy (an inf there gives NaN)."""
    zero = scale - scale
    total = 0.0
    for t in range(out.shape[0]):
        for b in range(out.shape[1]):
            m = M[t, b]
            for k in range(out.shape[2]):
                d = out[t, b, k] - Y[t, b, k]
                if not m:
                    d = d * zero
                dout[t, b, k] = d * scale
                total += d * d
    return total / count


@jit
def cross_entropy(out, Y, M, dout, n):
    """Mean cross entropy over the ``n`` masked positions (log-softmax with the max subtracted; a NaN logit makes
    the max NaN, as np.max does); dout = (softmax − onehot) / n there, 0 elsewhere."""
    total = 0.0
    for t in range(out.shape[0]):
        for b in range(out.shape[1]):
            row = out[t, b]
            d = dout[t, b]
            if not M[t, b]:
                d[:] = 0
                continue
            mx = row[0]
            for k in range(1, row.shape[0]):
                if mx == mx and not row[k] <= mx:
                    mx = row[k]
            s = 0.0
            for k in range(row.shape[0]):
                s += math.exp(row[k] - mx)
            lse = math.log(s)
            y = Y[t, b]
            total -= row[y] - mx - lse
            for k in range(row.shape[0]):
                e = math.exp(row[k] - mx - lse)
                if k == y:
                    e -= 1.0
                d[k] = e / n
    return total / n


@jit
def forward_tail(t0, t1, B, H2, WoT, bo, out2, Hs, Cs, check_c, check, out, Y_reg, Y_cls, M, dout, scale, n):
    """Readout of steps [t0, t1) on the (T·B, ·) views, the sentinel's checks of those steps (when ``check``; Cs
    only if ``check_c``), and at t1 = T the loss and dout: MSE against ``Y_reg`` (``scale`` = 2/(n·O) in the
    outputs' dtype), or cross entropy against the classes ``Y_cls`` (the other one is None); 0 if no position is
    masked in (n = 0). Returns (code, t, loss); loss is NaN before the last step."""
    _readout(t0, t1, B, H2, WoT, bo, out2)
    code, tb = forward_checks(t0, t1, Hs, Cs, check_c, out) if check else (OK, -1)
    loss = np.nan
    if t1 == out.shape[0]:
        if n == 0:
            dout[:] = 0
            loss = 0.0
        # two tests on the argument that is None (not if/else): numba prunes the branch typed for the other task
        if n > 0 and Y_reg is not None:
            loss = mse(out, Y_reg, M, dout, scale, n * out.shape[2])
        if n > 0 and Y_cls is not None:
            loss = cross_entropy(out, Y_cls, M, dout, n)
    return code, tb, loss


@jit
def readout_backward(dout2, Wo, H2, dh2, gWo, gbo):
    """The readout's part of dL/dh_t for every step (dh = dout W_o), and dL/dW_o, dL/db_o."""
    np.dot(dout2, Wo, dh2)
    np.dot(dout2.T, H2, gWo)
    gbo[:] = 0
    for r in range(dout2.shape[0]):
        for k in range(dout2.shape[1]):
            gbo[k] += dout2[r, k]
