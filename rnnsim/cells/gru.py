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

from rnnsim.cells.base import (block, block_gate_means, bounded, chunk_bytes, named, recurrent_cell_params,
                               state_pair, tanh_candidate)
from rnnsim.kernels import chunked, steps, team
from rnnsim.kernels.chunked import StepCache, prev_state, project_chunk
from rnnsim.kernels.loader import jit
from rnnsim.kernels.modes import Mode, Workspace
from rnnsim.kernels.packed import buffers as packed_buffers, rec_dot
from rnnsim.kernels.steps import begin_forward, finish_backward  # noqa: F401  (the cell protocol's, shared)
from rnnsim.kernels.vmath import sigmoid, sigmoid_np, tanh

G = 3
GATES = ("reset", "update", "new")
GATE_SYMBOLS = "rzn"
GATE_STATS = ("reset", "update")
FORGET_BLOCK = 1         # z, the update gate (the forget gate's role)
CANDIDATE_BLOCK = 2      # n
FOLDS_PROJECTION = False  # dL/d(W_in x + b_in) differs from dL/d(W_hn h + b_hn)
STATE = "h"


# Loops split so that each touches few arrays and LLVM vectorises it (see the note in lstm.py).
@jit
def forward_gates(t, XW, h0, b_hh, Hs, GT, GHN, tmp):
    """forward_step after its recurrent product: tmp = h_{t-1} W_hh^T on entry (its n block is overwritten)."""
    B, H3 = tmp.shape
    H = H3 // 3
    h_prev = h0 if t == 0 else Hs[t - 1]
    one = GT.dtype.type(1.0)   # 1 in the arrays' precision: a 1.0 literal would widen float32 maths to float64
    for b in range(B):
        a = tmp[b]
        xw = XW[t, b]
        gt = GT[t, b]
        ghn = GHN[t, b]
        for k in range(2 * H):                       # r, z
            gt[k] = sigmoid(xw[k] + a[k] + b_hh[k])
        for j in range(H):                           # W_hn h + b_hn
            ghn[j] = a[2 * H + j] + b_hh[2 * H + j]
        # n = tanh(W_in x + b_in + r ⊙ ghn), its argument staged in tmp's (now free) n block: a loop that reads r from
        # gt and writes n into gt was not vectorised in effect (10.4 against ~1.5 ns per element, float32)
        for j in range(H):
            a[2 * H + j] = xw[2 * H + j] + gt[j] * ghn[j]
        for j in range(H):
            gt[2 * H + j] = tanh(a[2 * H + j])
        h = Hs[t, b]
        hp = h_prev[b]
        for j in range(H):
            z = gt[H + j]
            h[j] = (one - z) * gt[2 * H + j] + z * hp[j]


@jit
def forward_loop(t0, t1, XW, h0, W_hhT, b_hh, Hs, GT, GHN, tmp, team):
    """Steps [t0, t1): writes Hs[t], GT[t] = [r, z, n] and GHN[t] = W_hn h_{t-1} + b_hn. XW[t] = W_ih x_t + b_ih."""
    for t in range(t0, t1):
        rec_dot(h0 if t == 0 else Hs[t - 1], W_hhT, tmp, team, t + 1)
        forward_gates(t, XW, h0, b_hh, Hs, GT, GHN, tmp)


@jit
def backward_gates(t, h0, Hs, GT, GHN, DH, DGI, DGH, carry):
    """backward_step before its recurrent product: carry ← dh ⊙ z (the caller adds DGH[t] W_hh)."""
    B, H = carry.shape
    h_prev = h0 if t == 0 else Hs[t - 1]
    one = GT.dtype.type(1.0)   # 1 in the arrays' precision: a 1.0 literal would widen float32 maths to float64
    for b in range(B):
        dh = DH[t, b]
        cb = carry[b]
        for j in range(H):
            dh[j] += cb[j]
        gt = GT[t, b]
        ghn = GHN[t, b]
        hp = h_prev[b]
        dgi = DGI[t, b]
        dgh = DGH[t, b]
        # one loop per written block (a loop writing three blocks of dgi was not vectorised in effect); da_n is staged
        # in dgh's n block, which then becomes da_n ⊙ r
        for j in range(H):                           # da_n
            z = gt[H + j]
            n = gt[2 * H + j]
            dgh[2 * H + j] = dh[j] * (one - z) * (one - n * n)
        for j in range(H):                           # r
            r = gt[j]
            dgi[j] = dgh[2 * H + j] * ghn[j] * r * (one - r)
        for j in range(H):                           # z
            z = gt[H + j]
            dgi[H + j] = dh[j] * (hp[j] - gt[2 * H + j]) * z * (one - z)
        for j in range(H):
            dgi[2 * H + j] = dgh[2 * H + j]
        for k in range(2 * H):
            dgh[k] = dgi[k]
        for j in range(H):
            dgh[2 * H + j] = dgh[2 * H + j] * gt[j]
        for j in range(H):
            cb[j] = dh[j] * gt[H + j]


@jit
def backward_loop(t_hi, t_lo, h0, W_hh, Hs, GT, GHN, DH, DGI, DGH, carry, tmp_h, team):
    """BPTT steps t_hi down to t_lo: DH[t] += carry (total dL/dh_t); DGI[t], DGH[t] = dL/d(W_ih x + b_ih),
    dL/d(W_hh h + b_hh); carry ← dL/dh_{t-1} = dh ⊙ z + DGH[t] W_hh."""
    for t in range(t_hi, t_lo - 1, -1):
        backward_gates(t, h0, Hs, GT, GHN, DH, DGI, DGH, carry)
        rec_dot(DGH[t], W_hh, tmp_h, team, t + 1)
        B, H = carry.shape
        for b in range(B):
            for j in range(H):
                carry[b, j] += tmp_h[b, j]


def forward_range(ws, t0, t1, XW, h0, b_hh, Hs, GT, GHN):
    """Steps [t0, t1): the Numba loop, or with per-step BLAS the same steps from Python (kernels/steps.py)."""
    W_hhT, tmp = steps.forward_weight(ws), ws.tmp
    if not ws.step_blas:
        team.run(ws, t1 - t0, W_hhT, tmp, h0, Hs, True, forward_loop, (t0, t1, XW, h0, W_hhT, b_hh, Hs, GT, GHN, tmp))
    else:
        steps.forward_blas(t0, t1, h0, Hs, W_hhT, tmp, lambda t: forward_gates(t, XW, h0, b_hh, Hs, GT, GHN, tmp))


def backward_range(ws, t_hi, t_lo, h0, W_hh, Hs, GT, GHN, DH, DGI, DGH):
    """BPTT steps t_hi down to t_lo, like forward_range (the carry: dh ⊙ z + DGH[t] W_hh)."""
    carry, tmp_h = ws.carry, ws.tmp_h
    if not ws.step_blas:
        W = steps.backward_weight(ws, W_hh)
        team.run(ws, t_hi - t_lo + 1, W, tmp_h, DGH[0], DGH, False,
                 backward_loop, (t_hi, t_lo, h0, W, Hs, GT, GHN, DH, DGI, DGH, carry, tmp_h))
        return

    def product(t):
        np.matmul(DGH[t], W_hh, out=tmp_h)
        np.add(carry, tmp_h, out=carry)

    steps.backward_blas(t_hi, t_lo, lambda t: backward_gates(t, h0, Hs, GT, GHN, DH, DGI, DGH, carry), product)


# ------------------------------------------------------------------------------------ parameters and buffers
init_params, param_count = recurrent_cell_params(G, FORGET_BLOCK)


def cached_bytes(T, B, H, itemsize, model):
    """The per-step caches whose size decides chunked mode: XW, gates, dgh (3H each), ghn (10H per row)."""
    return T * B * 10 * H * itemsize


def buffer_bytes(model, T, B, D, H, itemsize, K, n_params):
    if K:   # h, dh for every step; (K, B, 11H) chunk buffers
        return itemsize * T * B * H * 2 + chunk_bytes(K, B, H, itemsize, 11, n_params, T, G)
    return itemsize * T * B * H * 12


# Two modes (see rnnsim/kernels/modes.py): cached keeps XW, gates, ghn and dgh for every step; chunked keeps
# (K, B, ·) buffers, recomputes a chunk's gates in BPTT, and ws.gates, ws.ghn are StepCaches.
def allocate(T, B, D, H, dtype, model, plan) -> Workspace:
    z = lambda *shape: np.zeros(shape, dtype=dtype)  # noqa: E731
    ws = Workspace(
        plan, h=z(T, B, H), dh=z(T, B, H), dx=z(T, B, D),
        carry=z(B, H), tmp_h=z(B, H), tmp=z(B, 3 * H), h0=z(B, H), W_hhT=z(H, 3 * H),
    )
    if plan.packed:
        packed_buffers(ws, H, 3, dtype)
    if plan.mode is not Mode.CHUNKED:
        ws.__dict__.update(XW=z(T, B, 3 * H), gates=z(T, B, 3 * H), ghn=z(T, B, H), dgh=z(T, B, 3 * H))
    else:
        K = plan.K
        chunked.buffers(ws, K, B, D, H, 3, dtype)
        ws.__dict__.update(gates_k=z(K, B, 3 * H), ghn_k=z(K, B, H), dgh=z(K, B, 3 * H), hs_k=z(K, B, H),
                           gate_mean=np.zeros((T, 3)))
        ws.gates = StepCache(lambda t: _step_gates(ws, t)[0], (T, B, 3 * H))
        ws.ghn = StepCache(lambda t: _step_gates(ws, t)[1], (T, B, H))
    # The input projection XW[t] is dead once step t has run forward, so BPTT writes dL/d(W_ih x_t + b_ih) over it.
    ws.dgi = ws.XW
    return ws


def _step_gates(ws, t):
    """[r, z, n] and W_hn h_{t-1} + b_hn of step t, recomputed (chunked mode's ws.gates[t], ws.ghn[t])."""
    p = ws.params
    H = ws.h.shape[2]
    h_prev = prev_state(ws, ws.h, t, ws.h0)
    gi = ws.X[t] @ p["weight_ih"].T + p["bias_ih"]
    gh = h_prev @ p["weight_hh"].T + p["bias_hh"]
    out = np.empty_like(gi)
    out[:, :2 * H] = sigmoid_np(gi[:, :2 * H] + gh[:, :2 * H])
    ghn = gh[:, 2 * H:]
    out[:, 2 * H:] = np.tanh(gi[:, 2 * H:] + out[:, :H] * ghn)
    return out, ghn


# ------------------------------------------------------------------------------------ drivers used by Simulation
def run_forward(ws, params, model, t0, t1):
    b_hh = params["bias_hh"]
    if ws.mode is not Mode.CHUNKED:
        forward_range(ws, t0, t1, ws.XW, ws.h0, b_hh, ws.h, ws.gates, ws.ghn)
        return
    B, H = ws.h0.shape

    def chunk_steps(lo, hi, a, b):
        forward_range(ws, a - lo, b - lo, ws.XW, prev_state(ws, ws.h, lo, ws.h0), b_hh, ws.h[lo:hi], ws.gates_k,
                      ws.ghn_k)
        ws.gate_mean[a:b] = ws.gates_k[a - lo:b - lo].reshape(b - a, B, 3, H).mean(axis=(1, 3))

    chunked.run_forward(ws, params, t0, t1, chunk_steps)


def begin_backward(ws):
    ws.carry[:] = 0
    steps.begin_backward(ws)


def run_backward(ws, params, model, t_hi, t_lo):
    W_hh = params["weight_hh"]
    if ws.mode is not Mode.CHUNKED:
        backward_range(ws, t_hi, t_lo, ws.h0, W_hh, ws.h, ws.gates, ws.ghn, ws.dh, ws.dgi, ws.dgh)
        return

    def recompute(lo, hi):   # the chunk's gates and ghn, one forward step each into scratch h (same values)
        project_chunk(ws, lo, hi, params)
        forward_range(ws, 0, hi - lo, ws.XW, prev_state(ws, ws.h, lo, ws.h0), params["bias_hh"], ws.hs_k,
                      ws.gates_k, ws.ghn_k)

    def chunk_steps(lo, hi, a, b):
        backward_range(ws, a - lo, b - lo, prev_state(ws, ws.h, lo, ws.h0), W_hh, ws.h[lo:hi], ws.gates_k,
                       ws.ghn_k, ws.dh[lo:hi], ws.XW, ws.dgh)

    chunked.run_backward(ws, params, t_hi, t_lo, recompute, chunk_steps, ws.dgh)


# ------------------------------------------------------------------------------------ what the views show
gate_means = block_gate_means(GATES, GATE_STATS)
describe = named("gru")
bounded_state, candidate_activation = bounded, tanh_candidate


def step_jacobian(ws, params, model, t, batch):
    """∂h_t/∂h_{t-1} per sample, (b, H, H), float64."""
    H = ws.h.shape[2]
    W = params["weight_hh"].astype(np.float64)
    _, h_prev = state_pair(ws, ws.h, t, batch)
    gates = ws.gates[t, batch].astype(np.float64)
    r, z, n = (gates[:, block(k, H)] for k in range(3))
    ghn = ws.ghn[t, batch].astype(np.float64)
    Wr, Wz, Wn = (W[block(k, H)] for k in range(3))
    dr = (r * (1 - r))[:, :, None] * Wr
    dz = (z * (1 - z))[:, :, None] * Wz
    dn = (1 - n * n)[:, :, None] * (r[:, :, None] * Wn + ghn[:, :, None] * dr)
    return np.einsum("bi,ij->bij", z, np.eye(H)) + (h_prev - n)[:, :, None] * dz + (1 - z)[:, :, None] * dn


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
