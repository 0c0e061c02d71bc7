"""Elman RNN cell, PyTorch conventions (``torch.nn.RNNCell``), with optional LayerNorm (Ba et al. 2016).

    a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
    h_t = φ(a_t)                      or, with LayerNorm,   h_t = φ(LN(a_t)),  LN over H, eps 1e-5, affine ln.*
    φ = tanh | relu

Backward, given the total gradient dh_t = dL/dh_t:
    dz_t = dh_t ⊙ φ'(z_t)             tanh: 1 − h_t²;  relu: 1[h_t > 0]
    da_t = dz_t                       or LN backward:  rstd (dâ − mean(dâ) − â ⊙ mean(dâ ⊙ â)),  dâ = dz_t ⊙ γ
    dL/dh_{t-1} (through the recurrence) = da_t W_hh        (the Jacobian ∂h_t/∂h_{t-1} = diag(φ') W_hh)
"""

from __future__ import annotations

import math

import numpy as np

from rnnsim.cells.base import chunk_bytes, recurrent_param_count, recurrent_params, state_pair
from rnnsim.kernels import chunked, steps, team
from rnnsim.kernels.chunked import prev_state
from rnnsim.kernels.loader import jit
from rnnsim.kernels.modes import Mode, Workspace
from rnnsim.kernels.packed import buffers as packed_buffers, rec_step_dot
from rnnsim.kernels.steps import begin_forward  # noqa: F401  (part of the cell protocol, shared)
from rnnsim.kernels.vmath import tanh

G = 1
GATES = ("",)
GATE_SYMBOLS = "a"
GATE_STATS = ()
FORGET_BLOCK = None
CANDIDATE_BLOCK = None    # the spectrum reads all of W_hh
FOLDS_PROJECTION = False
STATE = "h"
LN_EPS = 1e-5


# ----------------------------------------------------------------------------------------------- Numba kernels
@jit
def forward_act(t, XW, b_hh, relu, use_ln, ln_w, ln_b, Hs, AHAT, RSTD, tmp):
    """forward_step after its recurrent product: tmp = h_{t-1} W_hh^T on entry."""
    B, H = tmp.shape
    xw = XW[t]
    h = Hs[t]
    zero = Hs.dtype.type(0.0)
    for b in range(B):
        for j in range(H):
            tmp[b, j] += xw[b, j] + b_hh[j]
        if use_ln:
            mu = 0.0
            for j in range(H):
                mu += tmp[b, j]
            mu /= H
            var = 0.0
            for j in range(H):
                d = tmp[b, j] - mu
                var += d * d
            var /= H
            rstd = 1.0 / math.sqrt(var + LN_EPS)
            RSTD[t, b] = rstd
            for j in range(H):
                ahat = (tmp[b, j] - mu) * rstd
                AHAT[t, b, j] = ahat
                tmp[b, j] = ahat * ln_w[j] + ln_b[j]
        if relu:
            for j in range(H):
                z = tmp[b, j]
                h[b, j] = z if z > zero else zero
        else:
            for j in range(H):
                h[b, j] = tanh(tmp[b, j])


@jit
def forward_loop(t0, t1, XW, h0, W_hhT, b_hh, relu, use_ln, ln_w, ln_b, Hs, AHAT, RSTD, tmp, team):
    """Steps [t0, t1): h_t from h_{t-1}, writes Hs[t] (and AHAT[t], RSTD[t] with LayerNorm). XW[t] = W_ih x_t + b_ih."""
    for t in range(t0, t1):
        rec_step_dot(h0 if t == 0 else Hs[t - 1], W_hhT, tmp, team, t + 1)
        forward_act(t, XW, b_hh, relu, use_ln, ln_w, ln_b, Hs, AHAT, RSTD, tmp)


@jit
def backward_act(t, Hs, relu, use_ln, ln_w, AHAT, RSTD, DH, DA, carry, dln_w, dln_b):
    """backward_step before its recurrent product (the caller then sets carry ← DA[t] W_hh)."""
    B, H = carry.shape
    dh = DH[t]
    da = DA[t]
    h = Hs[t]
    one = Hs.dtype.type(1.0)   # 1 in the arrays' precision: a 1.0 literal would widen float32 maths to float64
    zero = Hs.dtype.type(0.0)
    for b in range(B):
        if relu:
            for j in range(H):
                g = dh[b, j] + carry[b, j]
                dh[b, j] = g
                da[b, j] = g if h[b, j] > zero else zero
        else:
            for j in range(H):
                g = dh[b, j] + carry[b, j]
                dh[b, j] = g
                da[b, j] = g * (one - h[b, j] * h[b, j])
        if use_ln:
            # da currently holds dz; turn it into dL/da through LN
            m1 = 0.0
            m2 = 0.0
            for j in range(H):
                ahat = AHAT[t, b, j]
                dln_w[j] += da[b, j] * ahat
                dln_b[j] += da[b, j]
                dahat = da[b, j] * ln_w[j]
                da[b, j] = dahat
                m1 += dahat
                m2 += dahat * ahat
            m1 /= H
            m2 /= H
            rstd = RSTD[t, b]
            for j in range(H):
                da[b, j] = rstd * (da[b, j] - m1 - AHAT[t, b, j] * m2)


@jit
def backward_loop(t_hi, t_lo, Hs, W_hh, relu, use_ln, ln_w, AHAT, RSTD, DH, DA, carry, dln_w, dln_b, team):
    """BPTT steps t_hi down to t_lo. At step t, on entry DH[t] holds ∂ℓ/∂h_t through the readout and ``carry``
    holds (∂h_{t+1}/∂h_t)^T dL/dh_{t+1}; on exit DH[t] is the total dL/dh_t, DA[t] = dL/da_t, and
    ``carry`` = (∂h_t/∂h_{t-1})^T dL/dh_t."""
    for t in range(t_hi, t_lo - 1, -1):
        backward_act(t, Hs, relu, use_ln, ln_w, AHAT, RSTD, DH, DA, carry, dln_w, dln_b)
        rec_step_dot(DA[t], W_hh, carry, team, t + 1)


def forward_range(ws, t0, t1, h0, b_hh, flags, ln_w, ln_b, Hs, AHAT, RSTD):
    """Steps [t0, t1): the Numba loop, or with per-step BLAS the same steps from Python (kernels/steps.py)."""
    relu, ln = flags
    XW, W_hhT, tmp = ws.XW, steps.forward_weight(ws), ws.tmp
    if not ws.step_blas:
        team.run(ws, t1 - t0, W_hhT, tmp, h0, Hs, True,
                 forward_loop, (t0, t1, XW, h0, W_hhT, b_hh, relu, ln, ln_w, ln_b, Hs, AHAT, RSTD, tmp))
    else:
        steps.forward_blas(t0, t1, h0, Hs, W_hhT, tmp,
                           lambda t: forward_act(t, XW, b_hh, relu, ln, ln_w, ln_b, Hs, AHAT, RSTD, tmp))


def backward_range(ws, t_hi, t_lo, Hs, W_hh, flags, ln_w, AHAT, RSTD, DH, DA):
    """BPTT steps t_hi down to t_lo, like forward_range."""
    relu, ln = flags
    carry, dln_w, dln_b = ws.carry, ws.dln_w, ws.dln_b
    if not ws.step_blas:
        W = steps.backward_weight(ws, W_hh)
        team.run(ws, t_hi - t_lo + 1, W, carry, DA[0], DA, False,
                 backward_loop, (t_hi, t_lo, Hs, W, relu, ln, ln_w, AHAT, RSTD, DH, DA, carry, dln_w, dln_b))
    else:
        steps.backward_blas(t_hi, t_lo,
                            lambda t: backward_act(t, Hs, relu, ln, ln_w, AHAT, RSTD, DH, DA, carry, dln_w, dln_b),
                            lambda t: np.matmul(DA[t], W_hh, out=carry))


# ------------------------------------------------------------------------------------ parameters and buffers
def init_params(model, D, rng):
    p = recurrent_params(model, D, rng, G, FORGET_BLOCK)
    if model.layernorm:
        p["ln.weight"] = np.ones(model.hidden_size)
        p["ln.bias"] = np.zeros(model.hidden_size)
    return p


def param_count(model, D, H):
    return recurrent_param_count(G, D, H) + (2 * H if model.layernorm else 0)


def cached_bytes(T, B, H, itemsize, model):
    """The per-step cache whose size decides chunked mode: the input projection XW (H per row)."""
    return T * B * H * itemsize


def buffer_bytes(model, T, B, D, H, itemsize, K, n_params):
    ln = 2 if model.layernorm else 0   # â_t and rstd, kept in both modes
    if K:   # h, dh for every step; a (K, B, H) chunk buffer
        return itemsize * T * B * H * (2 + ln) + chunk_bytes(K, B, H, itemsize, 1, n_params, T, G)
    return itemsize * T * B * H * (3 + ln)


# Two modes (see rnnsim/kernels/modes.py): cached keeps the input projection XW for every step (reused as dL/da);
# chunked keeps a (K, B, H) buffer. BPTT needs only h_t (and, with LayerNorm, â_t and rstd, which both modes keep
# for every step: the diagnostics read them), so chunked mode recomputes nothing.
def allocate(T, B, D, H, dtype, model, plan) -> Workspace:
    ln = bool(model.layernorm)
    z = lambda *shape: np.zeros(shape, dtype=dtype)  # noqa: E731
    ws = Workspace(
        plan, h=z(T, B, H), dh=z(T, B, H), dx=z(T, B, D),
        ahat=z(T, B, H) if ln else z(1, 1, 1), rstd=z(T, B) if ln else z(1, 1),
        carry=z(B, H), tmp=z(B, H), h0=z(B, H), W_hhT=z(H, H),
        dln_w=z(H), dln_b=z(H), dummy=z(H),
    )
    if plan.packed:
        packed_buffers(ws, H, 1, dtype)
    if plan.mode is Mode.CHUNKED:
        chunked.buffers(ws, plan.K, B, D, H, 1, dtype)
    else:
        ws.XW = z(T, B, H)
    # The input projection XW[t] is dead once step t has run forward, so BPTT writes dL/da_t over it.
    ws.da = ws.dgi = ws.dgh = ws.XW
    return ws


# ------------------------------------------------------------------------------------ drivers used by Simulation
def _flags(model):
    return model.activation == "relu", bool(model.layernorm)


def run_forward(ws, params, model, t0, t1):
    flags = _flags(model)
    ln = flags[1]
    ln_w = params["ln.weight"] if ln else ws.dummy
    ln_b = params["ln.bias"] if ln else ws.dummy
    b_hh = params["bias_hh"]
    if ws.mode is not Mode.CHUNKED:
        forward_range(ws, t0, t1, ws.h0, b_hh, flags, ln_w, ln_b, ws.h, ws.ahat, ws.rstd)
        return

    def chunk_steps(lo, hi, a, b):
        forward_range(ws, a - lo, b - lo, prev_state(ws, ws.h, lo, ws.h0), b_hh, flags, ln_w, ln_b, ws.h[lo:hi],
                      ws.ahat[lo:hi] if ln else ws.ahat, ws.rstd[lo:hi] if ln else ws.rstd)

    chunked.run_forward(ws, params, t0, t1, chunk_steps)


def begin_backward(ws):
    ws.carry[:] = 0
    ws.dln_w[:] = 0
    ws.dln_b[:] = 0
    steps.begin_backward(ws)


def run_backward(ws, params, model, t_hi, t_lo):
    flags = _flags(model)
    ln = flags[1]
    ln_w = params["ln.weight"] if ln else ws.dummy
    W_hh = params["weight_hh"]
    if ws.mode is not Mode.CHUNKED:
        backward_range(ws, t_hi, t_lo, ws.h, W_hh, flags, ln_w, ws.ahat, ws.rstd, ws.dh, ws.da)
        return

    def chunk_steps(lo, hi, a, b):
        backward_range(ws, a - lo, b - lo, ws.h[lo:hi], W_hh, flags, ln_w, ws.ahat[lo:hi] if ln else ws.ahat,
                       ws.rstd[lo:hi] if ln else ws.rstd, ws.dh[lo:hi], ws.XW)

    chunked.run_backward(ws, params, t_hi, t_lo, lambda lo, hi: None, chunk_steps, ws.XW)


def finish_backward(ws, X, params, grads, model):
    steps.finish_backward(ws, X, params, grads)
    if model.layernorm:
        grads["ln.weight"][:] = ws.dln_w
        grads["ln.bias"][:] = ws.dln_b


# ------------------------------------------------------------------------------------ what the views show
def gate_means(ws, t_done):
    return {}


def describe(model):
    return f"rnn {model.activation}" + ("+LN" if model.layernorm else "")


def bounded_state(model):
    return model.activation != "relu"


def candidate_activation(model):
    return model.activation


def step_jacobian(ws, params, model, t, batch):
    """∂h_t/∂h_{t-1} = diag(φ'(z_t)) (∂LN/∂a) W_hh per sample, (b, H, H), float64."""
    H = ws.h.shape[2]
    W = params["weight_hh"].astype(np.float64)
    h, _ = state_pair(ws, ws.h, t, batch)
    dphi = (h > 0).astype(float) if model.activation == "relu" else 1.0 - h * h
    if not model.layernorm:
        return dphi[:, :, None] * W[None]
    ahat = ws.ahat[t, batch].astype(np.float64)
    rstd = ws.rstd[t, batch].astype(np.float64)
    # ∂LN(a)/∂a = rstd (I − 11ᵀ/H − â âᵀ/H), then the affine weight γ
    dln = rstd[:, None, None] * (np.eye(H) - 1.0 / H - ahat[:, :, None] * ahat[:, None, :] / H)
    dln = params["ln.weight"][None, :, None] * dln
    return dphi[:, :, None] * (dln @ W)


# ------------------------------------------------------------------------------------ plain NumPy reference
def reference_forward(X, p, activation="tanh", layernorm=False):
    """Readable NumPy forward pass over the whole sequence. Returns dict with h (T,B,H) and what backward needs."""
    T, B, _ = X.shape
    H = p["weight_hh"].shape[0]
    h = np.zeros((B, H), dtype=X.dtype)
    hs, zs, ahats, rstds = [], [], [], []
    for t in range(T):
        a = X[t] @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]
        if layernorm:
            mu = a.mean(axis=1, keepdims=True)
            var = a.var(axis=1, keepdims=True)
            rstd = 1.0 / np.sqrt(var + LN_EPS)
            ahat = (a - mu) * rstd
            z = ahat * p["ln.weight"] + p["ln.bias"]
            ahats.append(ahat)
            rstds.append(rstd)
        else:
            z = a
        h = np.maximum(z, 0.0) if activation == "relu" else np.tanh(z)
        hs.append(h)
        zs.append(z)
    return {"h": np.stack(hs), "z": np.stack(zs), "ahat": ahats, "rstd": rstds}


def reference_backward(X, p, fw, dh_out, activation="tanh", layernorm=False):
    """NumPy BPTT. ``dh_out`` (T,B,H) is ∂ℓ/∂h_t through the readout. Returns (grads, dh_total, dx)."""
    T, B, _ = X.shape
    H = p["weight_hh"].shape[0]
    g = {k: np.zeros_like(v) for k, v in p.items() if not k.startswith("readout")}
    dh_total = np.zeros_like(dh_out)
    dx = np.zeros_like(X)
    carry = np.zeros((B, H), dtype=X.dtype)
    for t in reversed(range(T)):
        dh = dh_out[t] + carry
        dh_total[t] = dh
        h = fw["h"][t]
        dz = dh * ((fw["z"][t] > 0) if activation == "relu" else (1.0 - h**2))
        if layernorm:
            ahat, rstd = fw["ahat"][t], fw["rstd"][t]
            g["ln.weight"] += (dz * ahat).sum(0)
            g["ln.bias"] += dz.sum(0)
            dahat = dz * p["ln.weight"]
            da = rstd / H * (H * dahat - dahat.sum(1, keepdims=True) - ahat * (dahat * ahat).sum(1, keepdims=True))
        else:
            da = dz
        h_prev = fw["h"][t - 1] if t > 0 else np.zeros_like(h)
        g["weight_ih"] += da.T @ X[t]
        g["weight_hh"] += da.T @ h_prev
        g["bias_ih"] += da.sum(0)
        g["bias_hh"] += da.sum(0)
        dx[t] = da @ p["weight_ih"]
        carry = da @ p["weight_hh"]
    return g, dh_total, dx
