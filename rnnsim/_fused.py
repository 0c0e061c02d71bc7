"""Numba kernels for the Simulation's work around the cell: the linear readout, the loss, their gradients and the
non-finite sentinel's checks, each a single call per pass (or per step of the step API).

At small sizes (H ≤ 64, B = 1: a pass of T = 100 steps is a few hundred µs) the cell's time loop is a small part of
a pass; the rest was a dozen NumPy calls per pass (GEMM helpers, bias adds, ``isfinite(...).all()`` per array,
the loss, ``errstate``), each with µs of fixed cost, and several times that when another job has just evicted the
caches. The Simulation uses these kernels when every product of the pass is small (see Simulation._build); the NumPy
code stays for the rest (chunked mode, the attention readout, large products that use NumPy's threaded BLAS).

Same numbers as that NumPy code: the same formulas, in the same order for the sentinel (the first step, in pass
order, of the first array in the list that has a NaN or inf), the same roundings for float32 outputs and dL/dout
(the scale factors are passed in the array dtype); sums may add in another order (they accumulate in float64).
"""

from __future__ import annotations

import math

import numpy as np

from rnnsim.cells._common import jit

#: sentinel codes returned by the kernels: which array (in check order) had the first non-finite value
OK = 0
HIDDEN, CELL_STATE, OUTPUTS, LOSS = 1, 2, 3, 4                     # forward
GRAD_HIDDEN, GRAD_INPUTS, GRADS = 1, 2, 3                          # backward


@jit
def _exponent_never_full(u, m):
    """Whether no element of the integer array ``u`` has all the bits of ``m`` set."""
    ok = True
    for j in range(u.shape[0]):
        ok &= (u[j] & m) != m
    return ok


@jit
def all_finite(x):
    """Whether the 1-D C-contiguous float64/float32 array ``x`` has no NaN or inf: no element has all its exponent
    bits set. A test on the bits as integers, which LLVM vectorises; the float compare |x| < inf did not vectorise
    for float64 (100 × 32 × 64 values: 162 µs, against 46 µs for np.isfinite(...).all())."""
    if x.itemsize == 8:
        return _exponent_never_full(x.view(np.uint64), np.uint64(0x7FF0000000000000))
    return _exponent_never_full(x.view(np.uint32), np.uint32(0x7F800000))


@jit
def _step_finite(a, t):
    """Whether a[t] (a C-contiguous (B, W) block) is all finite."""
    return all_finite(a[t].reshape(-1))


@jit
def first_nonfinite_step(a, t0, t1, reverse):
    """The first step t in [t0, t1), in pass order (descending if ``reverse``), where a[t] has a NaN or inf; −1."""
    for i in range(t1 - t0):
        t = t1 - 1 - i if reverse else t0 + i
        if not _step_finite(a, t):
            return t
    return -1


@jit
def _readout(t0, t1, B, H2, WoT, bo, out2):
    """outputs of steps [t0, t1): out = h W_o^T + b_o, on the (T·B, ·) views."""
    lo, hi = t0 * B, t1 * B
    np.dot(H2[lo:hi], WoT, out2[lo:hi])
    for r in range(lo, hi):
        for k in range(bo.shape[0]):
            out2[r, k] += bo[k]


@jit
def _forward_checks(t0, t1, Hs, Cs, check_c, out):
    """(code, t) of the first non-finite value of steps [t0, t1): hidden, then cell_state, then outputs."""
    t = first_nonfinite_step(Hs, t0, t1, False)
    if t >= 0:
        return HIDDEN, t
    if check_c:
        t = first_nonfinite_step(Cs, t0, t1, False)
        if t >= 0:
            return CELL_STATE, t
    t = first_nonfinite_step(out, t0, t1, False)
    if t >= 0:
        return OUTPUTS, t
    return OK, -1


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
    code, tb = _forward_checks(t0, t1, Hs, Cs, check_c, out) if check else (OK, -1)
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


@jit
def backward_checks(DH, t_lo, t_hi, DX, grads):
    """(code, t) of the first non-finite value once BPTT is done: dL/dh_t over steps t_hi down to t_lo (those of
    this call), then dL/dx_t (the last step that has one, as in the NumPy check), then each of ``grads`` (1-D views,
    in the order of Simulation.grads; t is then its index)."""
    t = first_nonfinite_step(DH, t_lo, t_hi + 1, True)
    if t >= 0:
        return GRAD_HIDDEN, t
    for i in range(DX.shape[0]):
        t = DX.shape[0] - 1 - i
        if not _step_finite(DX, t):
            return GRAD_INPUTS, t
    for i, g in enumerate(grads):
        if not all_finite(g):
            return GRADS, i
    return OK, -1
