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

from rnnsim.cells._common import (StepCache, Workspace, begin_chunked_backward, begin_forward, chunk_buffers,
                                  chunk_steps, finish_chunked, gate_block_means, jit, numpy_blas_one_thread, prev_state,
                                  project_chunk, run_chunked_backward, run_chunked_forward, sigmoid, sigmoid_np,
                                  step_gemm_in_numpy, tanh, weight_grads)

# begin_forward, shared by the recurrent cells, is part of this module's driver interface (see cells/__init__)

G = 3
GATES = ("reset", "update", "new")


# Loops split so that each touches few arrays and LLVM vectorises it (see the note in lstm.py).
@jit
def forward_step(t, XW, h0, W_hhT, b_hh, Hs, GT, GHN, tmp):
    """Writes Hs[t], GT[t] = [r, z, n] and GHN[t] = W_hn h_{t-1} + b_hn. XW[t] = W_ih x_t + b_ih."""
    np.dot(h0 if t == 0 else Hs[t - 1], W_hhT, tmp)
    forward_gates(t, XW, h0, b_hh, Hs, GT, GHN, tmp)


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
def backward_step(t, h0, W_hh, Hs, GT, GHN, DH, DGI, DGH, carry, tmp_h):
    """DH[t] += carry (total dL/dh_t); DGI[t], DGH[t] = dL/d(W_ih x + b_ih), dL/d(W_hh h + b_hh);
    carry ← dL/dh_{t-1} = dh ⊙ z + DGH[t] W_hh."""
    backward_gates(t, h0, Hs, GT, GHN, DH, DGI, DGH, carry)
    np.dot(DGH[t], W_hh, tmp_h)
    B, H = carry.shape
    for b in range(B):
        for j in range(H):
            carry[b, j] += tmp_h[b, j]


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
def _forward_range(t0, t1, XW, h0, W_hhT, b_hh, Hs, GT, GHN, tmp):
    for t in range(t0, t1):
        forward_step(t, XW, h0, W_hhT, b_hh, Hs, GT, GHN, tmp)


@jit
def _backward_range(t_hi, t_lo, h0, W_hh, Hs, GT, GHN, DH, DGI, DGH, carry, tmp_h):
    for t in range(t_hi, t_lo - 1, -1):
        backward_step(t, h0, W_hh, Hs, GT, GHN, DH, DGI, DGH, carry, tmp_h)


def forward_range(t0, t1, XW, h0, W_hhT, b_hh, Hs, GT, GHN, tmp):
    """Steps [t0, t1): one Numba call, or (per-step products of at least STEP_GEMM_FLOPS) a Python loop whose
    recurrent products go to NumPy's BLAS (see _common.step_gemm_in_numpy)."""
    if not step_gemm_in_numpy(tmp.shape[0], W_hhT.shape[0], W_hhT.shape[1]):
        _forward_range(t0, t1, XW, h0, W_hhT, b_hh, Hs, GT, GHN, tmp)
        return
    with numpy_blas_one_thread():
        for t in range(t0, t1):
            np.matmul(h0 if t == 0 else Hs[t - 1], W_hhT, out=tmp)
            forward_gates(t, XW, h0, b_hh, Hs, GT, GHN, tmp)


def backward_range(t_hi, t_lo, h0, W_hh, Hs, GT, GHN, DH, DGI, DGH, carry, tmp_h):
    """BPTT steps t_hi down to t_lo, like forward_range."""
    if not step_gemm_in_numpy(carry.shape[0], W_hh.shape[1], W_hh.shape[0]):
        _backward_range(t_hi, t_lo, h0, W_hh, Hs, GT, GHN, DH, DGI, DGH, carry, tmp_h)
        return
    with numpy_blas_one_thread():
        for t in range(t_hi, t_lo - 1, -1):
            backward_gates(t, h0, Hs, GT, GHN, DH, DGI, DGH, carry)
            np.matmul(DGH[t], W_hh, out=tmp_h)
            carry += tmp_h


# ------------------------------------------------------------------------------------ driver used by Simulation
# Two modes (see CACHE_LIMIT in _common): cached (ws.K == 0) keeps XW, gates, ghn and dgh for every step; chunked
# (ws.K > 0) keeps (K, B, ·) buffers, recomputes a chunk's gates in BPTT, and ws.gates, ws.ghn are StepCaches.
def allocate(T, B, D, H, dtype, model) -> Workspace:
    z = lambda *shape: np.zeros(shape, dtype=dtype)  # noqa: E731
    K = chunk_steps(T * B * 10 * H * np.dtype(dtype).itemsize, T)
    ws = Workspace(
        h=z(T, B, H), dh=z(T, B, H), dx=z(T, B, D),
        carry=z(B, H), tmp_h=z(B, H), tmp=z(B, 3 * H), h0=z(B, H), W_hhT=z(H, 3 * H),
    )
    if K == 0:
        ws.K = 0
        ws.__dict__.update(XW=z(T, B, 3 * H), gates=z(T, B, 3 * H), ghn=z(T, B, H), dgh=z(T, B, 3 * H))
    else:
        chunk_buffers(ws, K, B, D, H, 3, dtype)
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


def run_forward(ws, params, model, t0, t1):
    if ws.K == 0:
        forward_range(t0, t1, ws.XW, ws.h0, ws.W_hhT, params["bias_hh"], ws.h, ws.gates, ws.ghn, ws.tmp)
        return
    B, H = ws.h0.shape

    def steps(lo, hi, a, b):
        forward_range(a - lo, b - lo, ws.XW, prev_state(ws, ws.h, lo, ws.h0), ws.W_hhT, params["bias_hh"],
                      ws.h[lo:hi], ws.gates_k, ws.ghn_k, ws.tmp)
        ws.gate_mean[a:b] = ws.gates_k[a - lo:b - lo].reshape(b - a, B, 3, H).mean(axis=(1, 3))

    run_chunked_forward(ws, params, t0, t1, steps)


def begin_backward(ws):
    ws.carry[:] = 0
    if ws.K:
        begin_chunked_backward(ws)


def run_backward(ws, params, model, t_hi, t_lo):
    if ws.K == 0:
        backward_range(t_hi, t_lo, ws.h0, params["weight_hh"], ws.h, ws.gates, ws.ghn, ws.dh, ws.dgi, ws.dgh,
                       ws.carry, ws.tmp_h)
        return

    def recompute(lo, hi):   # the chunk's gates and ghn, one forward step each into scratch h (same values)
        project_chunk(ws, lo, hi, params)
        forward_range(0, hi - lo, ws.XW, prev_state(ws, ws.h, lo, ws.h0), ws.W_hhT, params["bias_hh"], ws.hs_k,
                      ws.gates_k, ws.ghn_k, ws.tmp)

    def steps(lo, hi, a, b):
        backward_range(a - lo, b - lo, prev_state(ws, ws.h, lo, ws.h0), params["weight_hh"], ws.h[lo:hi],
                       ws.gates_k, ws.ghn_k, ws.dh[lo:hi], ws.XW, ws.dgh, ws.carry, ws.tmp_h)

    run_chunked_backward(ws, params, t_hi, t_lo, recompute, steps, ws.dgh)


def finish_backward(ws, X, params, grads, model):
    if ws.K == 0:
        weight_grads(ws, X, ws.h0, params["weight_ih"], grads, ws.dgi, ws.dgh)
    else:
        finish_chunked(ws, grads)


def gate_means(ws, t_done):
    return gate_block_means(ws, t_done, GATES, skip="new")


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
