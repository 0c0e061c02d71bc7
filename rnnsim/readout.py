"""The work around the cell: the readout (outputs from h_t), the loss and dL/dout, the readout's part of dL/dh_t,
and the sentinel's checks of each pass, for both ways a pass runs: the single-call small pass
(rnnsim/kernels/small_pass.py; ``plan.small_pass``) or NumPy. The checks are the same kernels either way
(rnnsim/kernels/checks.py).
"""

from __future__ import annotations

import math
import weakref

import numpy as np

from rnnsim.cells.attention import attend, attend_grad
from rnnsim.kernels import checks, small_pass
from rnnsim.kernels.blas import gemm


class Readout:
    """Linear (``readout.*``) or attention readout (``attn.query.weight`` too) of a Simulation's arrays."""

    def __init__(self, sim):
        # A weak reference: the Simulation owns its Readout, so a strong one back made a cycle, and every
        # Simulation (its workspace: MBs of arrays) waited for the cyclic garbage collector instead of being freed
        # when its last reference went (a sweep worker's memory grew by ~5 MB per run until a collection).
        self.sim = weakref.proxy(sim)
        ws, T, B, H, O = sim._ws, sim.T, sim.B, sim.H, sim.O
        self.attention = sim.scenario.model.readout == "attention"
        self.small = ws.small_pass
        self.lstm = sim.cell_name == "lstm"
        # (T·B, ·) views for the kernels
        self._h2, self._dh2 = ws.h.reshape(T * B, H), ws.dh.reshape(T * B, H)
        self._out2, self._dout2 = sim._out.reshape(T * B, O), sim._dout.reshape(T * B, O)
        self._cs_checked = ws.c if self.lstm else ws.h
        self._grads_ids = self._grads_flat = None
        if self.attention:
            # the attention readout's arrays live in the same workspace (counted by nbytes, read by diagnostics)
            z = lambda *shape: np.zeros(shape, dtype=sim.dtype)  # noqa: E731
            ws.__dict__.update(ro_q=z(T, B, H), ro_ctx=z(T, B, H), ro_alpha=z(T, B, T), ro_dq=z(T, B, H),
                               ro_dc=z(T, B, H), ro_dalpha=z(T))

    # ------------------------------------------------------------------------------------------ forward
    def forward(self, t0: int, t1: int, check: bool):
        """outputs of steps [t0, t1), the checks of those steps (when ``check``) and at t1 = T the loss and dL/dout:
        (code, t, loss) with a code of rnnsim.kernels.checks (loss NaN before the last step)."""
        sim = self.sim
        if self.small:
            p, ws = sim.params, sim._ws
            # counted per pass, not per batch: loss_mask is a writable view of _M
            n = int(sim._M.sum()) if t1 == sim.T else 0
            scale = sim.dtype.type(2.0 / max(1, n * sim.O))  # 2/count in the arrays' dtype, as NumPy rounds it
            return small_pass.forward_tail(
                t0, t1, sim.B, self._h2, p["readout.weight"].T, p["readout.bias"], self._out2, ws.h,
                self._cs_checked, self.lstm, check, sim._out, None if sim.classification else sim._Y,
                sim._Y if sim.classification else None, sim._M, sim._dout, scale, n)
        self.outputs(t0, t1)
        code, t = checks.forward_checks(t0, t1, sim._ws.h, self._cs_checked, self.lstm, sim._out) if check \
            else (checks.OK, -1)
        return code, t, (self.loss() if t1 == sim.T else math.nan)

    def outputs(self, t0: int, t1: int) -> None:
        """outputs for steps [t0, t1) from h_0..h_{t1-1}, in NumPy: linear, or the attention readout."""
        sim = self.sim
        if self.attention:
            self._attention_forward(t0, t1)
        else:
            gemm(sim._ws.h[t0:t1].reshape(-1, sim.H), sim.params["readout.weight"].T,
                 sim._out[t0:t1].reshape(-1, sim.O))
        sim._out[t0:t1] += sim.params["readout.bias"]

    def _attention_forward(self, t0: int, t1: int) -> None:
        """out_t = W_o [h_t; c_t] (bias added by the caller), c_t = Σ_{j≤t} α_tj h_j, α_t = softmax_j(q_t·h_j/√H),
        q_t = W_q h_t, for t in [t0, t1): each step needs only h_0..h_t, so stepping works."""
        sim = self.sim
        ws, p, H = sim._ws, sim.params, sim.H
        h = ws.h[t0:t1].reshape(-1, H)
        np.matmul(h, p["attn.query.weight"].T, out=ws.ro_q[t0:t1].reshape(-1, H))
        attend(t0, t1, ws.ro_q, ws.h, ws.h, 1.0 / math.sqrt(H), ws.ro_alpha, ws.ro_ctx)
        W = p["readout.weight"]
        out = sim._out[t0:t1].reshape(-1, sim.O)
        np.matmul(h, W[:, :H].T, out=out)
        out += ws.ro_ctx[t0:t1].reshape(-1, H) @ W[:, H:].T

    def loss(self) -> float:
        """The loss and, into ``_dout``, its gradient with respect to every output (NumPy)."""
        sim = self.sim
        out, M = sim._out, sim._M
        n = int(M.sum())
        sim._dout[:] = 0
        if n == 0:
            return 0.0
        if sim.classification:
            logits = out[M]                                   # (n, O)
            shifted = logits - logits.max(axis=1, keepdims=True)
            logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            y = sim._Y[M]
            loss = -logp[np.arange(n), y].mean()
            d = np.exp(logp)
            d[np.arange(n), y] -= 1.0
            sim._dout[M] = d / n
        else:
            diff = (out - sim._Y) * M[:, :, None]
            count = n * sim.O
            loss = float(np.vdot(diff, diff)) / count
            sim._dout[:] = diff * (2.0 / count)
        return float(loss)

    def loss_step(self) -> int | None:
        """The first step t whose loss terms make the loss non-finite (a term that is inf or NaN, or the running sum of
        the terms up to t overflowing), for the sentinel; None if the loss is finite. NumPy, run only after a
        non-finite loss (never in the time loop)."""
        sim = self.sim
        out, M = sim._out, sim._M
        with np.errstate(all="ignore"):
            if sim.classification:
                logits = out.astype(np.float64)
                shifted = logits - logits.max(axis=2, keepdims=True)
                logp = shifted - np.log(np.exp(shifted).sum(axis=2, keepdims=True))
                y = np.where(M, sim._Y, 0)
                terms = -np.take_along_axis(logp, y[:, :, None], axis=2)[:, :, 0]
                terms = np.where(M | ~np.isfinite(terms), terms, 0.0)
            else:
                diff = (out - sim._Y) * M[:, :, None]
                terms = (diff * diff).reshape(sim.T, -1)
            per_t = terms.sum(axis=1)
            bad = ~np.isfinite(np.cumsum(per_t))
        return int(np.argmax(bad)) if bad.any() else None

    # ----------------------------------------------------------------------------------------- backward
    def backward(self) -> None:
        """The part of dL/dh_t that comes through the readout at step t (BPTT adds the recurrent part), and the
        readout's weight gradients."""
        sim = self.sim
        Wo, grads = sim.params["readout.weight"], sim.grads
        if self.small:
            small_pass.readout_backward(self._dout2, Wo, self._h2, self._dh2, grads["readout.weight"],
                                        grads["readout.bias"])
            return
        if self.attention:
            self._attention_backward()
        else:
            gemm(self._dout2, Wo, self._dh2)
            gemm(self._dout2.T, self._h2, grads["readout.weight"])
        np.sum(sim._dout, axis=(0, 1), out=grads["readout.bias"])

    def _attention_backward(self) -> None:
        """The attention readout's whole gradient with respect to every h_j, into ws.dh (before BPTT: the readout
        does not feed the recurrence), and the gradients of readout.weight and attn.query.weight:
            dh_t  = dout_t W_o[:, :H]                       (direct)
            dc_t  = dout_t W_o[:, H:];  dα_tj = dc_t·h_j;  ds_tj = α_tj (dα_tj − Σ α_t dα_t)/√H
            dh_j += α_tj dc_t + ds_tj q_t   (j ≤ t: h_j as value and as key);  dq_t = Σ_j ds_tj h_j
            dh_t += dq_t W_q                                (h_t as the query)
        """
        sim = self.sim
        ws, p, H = sim._ws, sim.params, sim.H
        dout, h, dh = self._dout2, self._h2, self._dh2
        W = p["readout.weight"]
        np.matmul(dout, W[:, :H], out=dh)
        gW = sim.grads["readout.weight"]
        gW[:, :H] = dout.T @ h
        gW[:, H:] = dout.T @ ws.ro_ctx.reshape(-1, H)
        np.matmul(dout, W[:, H:], out=ws.ro_dc.reshape(-1, H))
        attend_grad(sim.T - 1, 0, ws.ro_q, ws.h, ws.h, ws.ro_alpha, ws.ro_dc, 1.0 / math.sqrt(H),
                    ws.ro_dq, ws.dh, ws.dh, ws.ro_dalpha)
        dq = ws.ro_dq.reshape(-1, H)
        dh += dq @ p["attn.query.weight"]
        np.matmul(dq.T, h, out=sim.grads["attn.query.weight"])

    def backward_checks(self, t_lo: int, t_hi: int, done: bool, ws=None):
        """(code, t) of the first non-finite value of BPTT steps t_hi down to t_lo; once ``done``, then of dL/dx_t
        and each gradient (t is then its index in ``grads``). ``ws``: a stacked layer's workspace (default: the
        last layer's)."""
        ws = self.sim._ws if ws is None else ws
        if not done:
            t = checks.first_nonfinite_step(ws.dh, t_lo, t_hi + 1, True)
            return (checks.GRAD_HIDDEN if t >= 0 else checks.OK), t
        return checks.backward_checks(ws.dh, t_lo, t_hi, ws.dx, self.flat(self.sim.grads))

    def flat(self, arrays: dict) -> tuple:
        """1-D views of the gradient arrays, in order (cached; rebuilt if an entry was replaced: the views keep the
        arrays they were made from alive, so their ids cannot be reused meanwhile)."""
        ids = tuple(map(id, arrays.values()))
        if ids != self._grads_ids:
            self._grads_flat = tuple([g.reshape(-1) for g in arrays.values()])
            self._grads_ids = ids
        return self._grads_flat
