"""GRU cell, PyTorch conventions (``torch.nn.GRUCell``), gate order r, z, n.

    r = σ(W_ir x + b_ir + W_hr h + b_hr)
    z = σ(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
    h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}

Backward, given dh_t (total): dn = dh(1 − z);  dz = dh(h_{t-1} − n);  da_n = dn(1 − n²);
    dr = da_n ⊙ (W_hn h + b_hn);  dgi = [dr·r(1−r), dz·z(1−z), da_n];  dgh = [same r, same z, da_n ⊙ r]
    dL/dh_{t-1} = dh ⊙ z + dgh W_hh
"""

from __future__ import annotations

import numpy as np

from rnnsim.cells._common import Workspace, input_projection, jit, sigmoid, sigmoid_np, tanh, weight_grads

G = 3
GATES = ("reset", "update", "new")


# Loops split so that each touches few arrays and LLVM vectorises it (see the note in lstm.py).
@jit
def forward_step(t, XW, h0, W_hhT, b_hh, Hs, GT, GHN, tmp):
    """Writes Hs[t], GT[t] = [r, z, n] and GHN[t] = W_hn h_{t-1} + b_hn. XW[t] = W_ih x_t + b_ih."""
    B, H3 = tmp.shape
    H = H3 // 3
    h_prev = h0 if t == 0 else Hs[t - 1]
    np.dot(h_prev, W_hhT, tmp)
    for b in range(B):
        a = tmp[b]
        xw = XW[t, b]
        gt = GT[t, b]
        ghn = GHN[t, b]
        for k in range(2 * H):                       # r, z
            gt[k] = sigmoid(xw[k] + a[k] + b_hh[k])
        for j in range(H):                           # n
            gh = a[2 * H + j] + b_hh[2 * H + j]
            ghn[j] = gh
            gt[2 * H + j] = tanh(xw[2 * H + j] + gt[j] * gh)
        h = Hs[t, b]
        hp = h_prev[b]
        for j in range(H):
            z = gt[H + j]
            h[j] = (1.0 - z) * gt[2 * H + j] + z * hp[j]


@jit
def backward_step(t, h0, W_hh, Hs, GT, GHN, DH, DGI, DGH, carry, tmp_h):
    """DH[t] += carry (total dL/dh_t); DGI[t], DGH[t] = dL/d(W_ih x + b_ih), dL/d(W_hh h + b_hh);
    carry ← dL/dh_{t-1} = dh ⊙ z + DGH[t] W_hh."""
    B, H = carry.shape
    h_prev = h0 if t == 0 else Hs[t - 1]
    for b in range(B):
        dh = DH[t, b]
        cb = carry[b]
        for j in range(H):
            dh[j] += cb[j]
        gt = GT[t, b]
        ghn = GHN[t, b]
        hp = h_prev[b]
        dgi = DGI[t, b]
        for j in range(H):
            r = gt[j]
            z = gt[H + j]
            n = gt[2 * H + j]
            dan = dh[j] * (1.0 - z) * (1.0 - n * n)
            dgi[j] = dan * ghn[j] * r * (1.0 - r)
            dgi[H + j] = dh[j] * (hp[j] - n) * z * (1.0 - z)
            dgi[2 * H + j] = dan
        dgh = DGH[t, b]
        for k in range(2 * H):
            dgh[k] = dgi[k]
        for j in range(H):
            dgh[2 * H + j] = dgi[2 * H + j] * gt[j]
        for j in range(H):
            cb[j] = dh[j] * gt[H + j]
    np.dot(DGH[t], W_hh, tmp_h)
    for b in range(B):
        for j in range(H):
            carry[b, j] += tmp_h[b, j]


@jit
def forward_range(t0, t1, XW, h0, W_hhT, b_hh, Hs, GT, GHN, tmp):
    for t in range(t0, t1):
        forward_step(t, XW, h0, W_hhT, b_hh, Hs, GT, GHN, tmp)


@jit
def backward_range(t_hi, t_lo, h0, W_hh, Hs, GT, GHN, DH, DGI, DGH, carry, tmp_h):
    for t in range(t_hi, t_lo - 1, -1):
        backward_step(t, h0, W_hh, Hs, GT, GHN, DH, DGI, DGH, carry, tmp_h)


# ------------------------------------------------------------------------------------ driver used by Simulation
def allocate(T, B, D, H, dtype, model) -> Workspace:
    z = lambda *shape: np.zeros(shape, dtype=dtype)  # noqa: E731
    ws = Workspace(
        XW=z(T, B, 3 * H), h=z(T, B, H), gates=z(T, B, 3 * H), ghn=z(T, B, H), dh=z(T, B, H), dx=z(T, B, D),
        dgh=z(T, B, 3 * H), carry=z(B, H), tmp_h=z(B, H), tmp=z(B, 3 * H), h0=z(B, H), W_hhT=z(H, 3 * H),
    )
    # The input projection XW[t] is dead once step t has run forward, so BPTT writes dL/d(W_ih x_t + b_ih) over it.
    ws.dgi = ws.XW
    return ws


def begin_forward(ws, X, params):
    input_projection(ws, X, params)


def run_forward(ws, params, model, t0, t1):
    forward_range(t0, t1, ws.XW, ws.h0, ws.W_hhT, params["bias_hh"], ws.h, ws.gates, ws.ghn, ws.tmp)


def begin_backward(ws):
    ws.carry[:] = 0


def run_backward(ws, params, model, t_hi, t_lo):
    backward_range(t_hi, t_lo, ws.h0, params["weight_hh"], ws.h, ws.gates, ws.ghn, ws.dh, ws.dgi, ws.dgh, ws.carry, ws.tmp_h)


def finish_backward(ws, X, params, grads, model):
    weight_grads(ws, X, ws.h0, params["weight_ih"], grads, ws.dgi, ws.dgh)


def gate_means(ws, t_done):
    H = ws.h.shape[2]
    return {name: ws.gates[:t_done, :, k * H:(k + 1) * H].mean(axis=(1, 2))
            for k, name in enumerate(GATES) if name != "new"}


# ------------------------------------------------------------------------------------ plain NumPy reference
def reference_forward(X, p):
    T, B, _ = X.shape
    H = p["weight_hh"].shape[1]
    W_ir, W_iz, W_in = np.split(p["weight_ih"], 3)
    W_hr, W_hz, W_hn = np.split(p["weight_hh"], 3)
    b_ir, b_iz, b_in = np.split(p["bias_ih"], 3)
    b_hr, b_hz, b_hn = np.split(p["bias_hh"], 3)
    h = np.zeros((B, H), dtype=X.dtype)
    out = {"h": [], "r": [], "z": [], "n": [], "ghn": []}
    for t in range(T):
        x = X[t]
        r = sigmoid_np(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
        z = sigmoid_np(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
        ghn = h @ W_hn.T + b_hn
        n = np.tanh(x @ W_in.T + b_in + r * ghn)
        h = (1 - z) * n + z * h
        for k, v in zip(("h", "r", "z", "n", "ghn"), (h, r, z, n, ghn)):
            out[k].append(v)
    return {k: np.stack(v) for k, v in out.items()}


def reference_backward(X, p, fw, dh_out):
    T, B, _ = X.shape
    H = p["weight_hh"].shape[1]
    g = {k: np.zeros_like(v) for k, v in p.items() if not k.startswith("readout")}
    dh_total = np.zeros_like(dh_out)
    dx = np.zeros_like(X)
    dh_next = np.zeros((B, H), dtype=X.dtype)
    for t in reversed(range(T)):
        dh = dh_out[t] + dh_next
        dh_total[t] = dh
        r, z, n, ghn = fw["r"][t], fw["z"][t], fw["n"][t], fw["ghn"][t]
        h_prev = fw["h"][t - 1] if t > 0 else np.zeros_like(n)
        dan = dh * (1 - z) * (1 - n**2)
        dar = dan * ghn * r * (1 - r)
        daz = dh * (h_prev - n) * z * (1 - z)
        dgi = np.concatenate([dar, daz, dan], axis=1)
        dgh = np.concatenate([dar, daz, dan * r], axis=1)
        g["weight_ih"] += dgi.T @ X[t]
        g["weight_hh"] += dgh.T @ h_prev
        g["bias_ih"] += dgi.sum(0)
        g["bias_hh"] += dgh.sum(0)
        dx[t] = dgi @ p["weight_ih"]
        dh_next = dh * z + dgh @ p["weight_hh"]
    return g, dh_total, dx
