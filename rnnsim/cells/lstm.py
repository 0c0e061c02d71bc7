"""LSTM cell, PyTorch conventions (``torch.nn.LSTMCell``), gate order i, f, g, o.

    [a_i, a_f, a_g, a_o] = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
    i, f, g, o = σ(a_i), σ(a_f), tanh(a_g), σ(a_o)
    c_t = f ⊙ c_{t-1} + i ⊙ g
    h_t = o ⊙ tanh(c_t)

Backward, given dh_t (total) and dc_t from step t+1:
    dc = dc_{t+1→t} + dh ⊙ o ⊙ (1 − tanh²(c_t));  do = dh ⊙ tanh(c_t);  di = dc ⊙ g;  dg = dc ⊙ i;  df = dc ⊙ c_{t-1}
    da = [di·i(1−i), df·f(1−f), dg·(1−g²), do·o(1−o)];  dL/dh_{t-1} += da W_hh;  dL/dc_{t-1} = dc ⊙ f
"""

from __future__ import annotations

import numpy as np

from rnnsim.cells.base import (block, block_gate_means, bounded, chunk_bytes, folded_bytes, named,
                               recurrent_cell_params, state_pair, tanh_candidate)
from rnnsim.kernels import chunked, folded, steps, team
from rnnsim.kernels.chunked import StepCache, prev_state, project_chunk
from rnnsim.kernels.loader import jit
from rnnsim.kernels.modes import Mode, Workspace
from rnnsim.kernels.packed import buffers as packed_buffers, rec_dot
from rnnsim.kernels.steps import begin_forward, finish_backward  # noqa: F401  (the cell protocol's, shared)
from rnnsim.kernels.vmath import sigmoid, sigmoid_np, tanh

G = 4
GATES = ("input", "forget", "cell", "output")
GATE_SYMBOLS = "ifgo"
GATE_STATS = ("input", "forget", "output")
FORGET_BLOCK = 1         # f
CANDIDATE_BLOCK = 2      # g
FOLDS_PROJECTION = True
STATE = "h, c"


# The loops below are split so that each touches few arrays: LLVM vectorises a loop only when it can prove, with at
# most 8 run-time overlap checks, that its arrays do not overlap (numba does not mark arrays noalias). One loop
# per gate block, each over contiguous j, runs the branch-free sigmoid/tanh 4 doubles at a time.
@jit
def forward_gates(t, xw_t, c0, b_hh, Hs, Cs, GT, tmp):
    """forward_step after its recurrent product: tmp = h_{t-1} W_hh^T on entry; xw_t = XW[t] (B, 4H)."""
    B, H4 = tmp.shape
    H = H4 // 4
    c_prev = c0 if t == 0 else Cs[t - 1]
    for b in range(B):
        a = tmp[b]
        xw = xw_t[b]
        gt = GT[t, b]
        for k in range(2 * H):                       # i, f
            gt[k] = sigmoid(a[k] + xw[k] + b_hh[k])
        # loops from 0 with the block offset in the index: written as range(2 * H, 3 * H), the g loop ran 6x slower
        # (11.7 against 1.9 ns per element, float32; LLVM's vector path was not taken)
        for j in range(H):                           # g
            k = 2 * H + j
            gt[k] = tanh(a[k] + xw[k] + b_hh[k])
        for j in range(H):                           # o
            k = 3 * H + j
            gt[k] = sigmoid(a[k] + xw[k] + b_hh[k])
        c = Cs[t, b]
        h = Hs[t, b]
        cp = c_prev[b]
        for j in range(H):
            c[j] = gt[H + j] * cp[j] + gt[j] * gt[2 * H + j]
        for j in range(H):
            h[j] = gt[3 * H + j] * tanh(c[j])


@jit
def forward_loop(t0, t1, XW, h0, c0, W_hhT, b_hh, Hs, Cs, GT, tmp, team):
    """Steps [t0, t1): tmp = h_{t-1} W_hh^T, then the gates; writes Hs[t], Cs[t], GT[t] = [i, f, g, o]. ``team``:
    None, or the sync array of a helper thread sharing the products (rnnsim/kernels/team.py)."""
    for t in range(t0, t1):
        rec_dot(h0 if t == 0 else Hs[t - 1], W_hhT, tmp, team, t + 1)
        forward_gates(t, XW[t], c0, b_hh, Hs, Cs, GT, tmp)


@jit
def backward_gates(t, c0, Cs, GT, DH, DA, carry_h, carry_c):
    """backward_step before its recurrent product (the caller then sets carry_h ← DA[t] W_hh; until then carry_h
    holds tanh(c_t), as scratch)."""
    B, H = carry_h.shape
    c_prev = c0 if t == 0 else Cs[t - 1]
    one = GT.dtype.type(1.0)   # 1 in the arrays' precision: a 1.0 literal would widen float32 maths to float64
    for b in range(B):
        dh = DH[t, b]
        ch = carry_h[b]
        for j in range(H):
            dh[j] += ch[j]
        gt = GT[t, b]
        c = Cs[t, b]
        cc = carry_c[b]
        da = DA[t, b]
        for j in range(H):                           # tanh(c_t), into carry_h (free until the caller's product)
            ch[j] = tanh(c[j])
        for j in range(H):                           # dc (kept in carry_c for now)
            cc[j] += dh[j] * gt[3 * H + j] * (one - ch[j] * ch[j])
        for j in range(H):                           # o
            o = gt[3 * H + j]
            da[3 * H + j] = dh[j] * ch[j] * o * (one - o)
        cp = c_prev[b]
        # one loop per written block (one loop writing the i, f, g blocks and carry_c was not vectorised in effect)
        for j in range(H):                           # i
            i = gt[j]
            da[j] = cc[j] * gt[2 * H + j] * i * (one - i)
        for j in range(H):                           # f
            f = gt[H + j]
            da[H + j] = cc[j] * cp[j] * f * (one - f)
        for j in range(H):                           # g
            g = gt[2 * H + j]
            da[2 * H + j] = cc[j] * gt[j] * (one - g * g)
        for j in range(H):                           # carry_c ← dc ⊙ f
            cc[j] = cc[j] * gt[H + j]


@jit
def backward_loop(t_hi, t_lo, c0, W_hh, Cs, GT, DH, DA, carry_h, carry_c, team):
    """BPTT steps t_hi down to t_lo: DH[t] += carry_h (total dL/dh_t); DA[t] = dL/d(gate pre-activations);
    carry_h ← DA[t] W_hh, carry_c ← dL/dc_{t-1}."""
    for t in range(t_hi, t_lo - 1, -1):
        backward_gates(t, c0, Cs, GT, DH, DA, carry_h, carry_c)
        rec_dot(DA[t], W_hh, carry_h, team, t + 1)


def forward_range(ws, t0, t1, XW, h0, c0, b_hh, Hs, Cs, GT):
    """Steps [t0, t1): the Numba loop, or with per-step BLAS the same steps from Python (kernels/steps.py)."""
    W_hhT, tmp = steps.forward_weight(ws), ws.tmp
    if not ws.step_blas:
        team.run(ws, t1 - t0, W_hhT, tmp, h0, Hs, True,
                 forward_loop, (t0, t1, XW, h0, c0, W_hhT, b_hh, Hs, Cs, GT, tmp))
    else:
        steps.forward_blas(t0, t1, h0, Hs, W_hhT, tmp, lambda t: forward_gates(t, XW[t], c0, b_hh, Hs, Cs, GT, tmp))


def backward_range(ws, t_hi, t_lo, c0, W_hh, Cs, GT, DH, DA):
    """BPTT steps t_hi down to t_lo, like forward_range."""
    carry_h, carry_c = ws.carry, ws.carry_c
    if not ws.step_blas:
        W = steps.backward_weight(ws, W_hh)
        team.run(ws, t_hi - t_lo + 1, W, carry_h, DA[0], DA, False,
                 backward_loop, (t_hi, t_lo, c0, W, Cs, GT, DH, DA, carry_h, carry_c))
    else:
        steps.backward_blas(t_hi, t_lo, lambda t: backward_gates(t, c0, Cs, GT, DH, DA, carry_h, carry_c),
                            lambda t: np.matmul(DA[t], W_hh, out=carry_h))


# ------------------------------------------------------------------------------------ parameters and buffers
init_params, param_count = recurrent_cell_params(G, FORGET_BLOCK)


def cached_bytes(T, B, H, itemsize, model):
    """The per-step caches whose size decides chunked mode: XW, gates (4H each), h, c, dh... (8H per row)."""
    return T * B * 8 * H * itemsize


def buffer_bytes(model, T, B, D, H, itemsize, K, n_params):
    if K:   # h, c, dh for every step; (K, B, 10H) chunk buffers
        return itemsize * T * B * H * 3 + chunk_bytes(K, B, H, itemsize, 10, n_params, T, G)
    return itemsize * T * B * H * 11 + folded_bytes(T, B, D, H, G, itemsize)


# Three modes (see rnnsim/kernels/modes.py): cached keeps XW and the gates for every step; chunked keeps (K, B, 4H)
# buffers, recomputes a chunk's gates in BPTT, and ws.gates is a StepCache; projection-folded is cached without
# the input projection (XW is only dL/da).
def allocate(T, B, D, H, dtype, model, plan) -> Workspace:
    z = lambda *shape: np.zeros(shape, dtype=dtype)  # noqa: E731
    ws = Workspace(
        plan, h=z(T, B, H), c=z(T, B, H), dh=z(T, B, H), dx=z(T, B, D),
        carry=z(B, H), carry_c=z(B, H), tmp=z(B, 4 * H), h0=z(B, H), c0=z(B, H),
    )
    if plan.packed:
        packed_buffers(ws, H, 4, dtype)
    if plan.mode is Mode.FOLDED:
        folded.buffers(ws, T, B, D, H, 4, dtype)
    else:
        ws.W_hhT = z(H, 4 * H)
    if plan.mode is not Mode.CHUNKED:
        ws.XW = z(T, B, 4 * H)
        ws.gates = z(T, B, 4 * H)
    else:
        K = plan.K
        chunked.buffers(ws, K, B, D, H, 4, dtype)
        ws.gates_k = z(K, B, 4 * H)
        ws.hs_k = z(K, B, H)
        ws.cs_k = z(K, B, H)
        ws.gate_mean = np.zeros((T, 4))
        ws.gates = StepCache(lambda t: _step_gates(ws, t), (T, B, 4 * H))
    # The input projection XW[t] is dead once step t has run forward, so BPTT writes dL/da_t over it.
    ws.da = ws.dgi = ws.dgh = ws.XW
    return ws


def _step_gates(ws, t):
    """The activated gates [i, f, g, o] of step t, recomputed (chunked mode's ws.gates[t])."""
    p = ws.params
    H = ws.h.shape[2]
    h_prev = prev_state(ws, ws.h, t, ws.h0)
    a = ws.X[t] @ p["weight_ih"].T + p["bias_ih"] + h_prev @ p["weight_hh"].T + p["bias_hh"]
    out = np.empty_like(a)
    out[:, :2 * H] = sigmoid_np(a[:, :2 * H])
    out[:, 2 * H:3 * H] = np.tanh(a[:, 2 * H:3 * H])
    out[:, 3 * H:] = sigmoid_np(a[:, 3 * H:])
    return out


# ------------------------------------------------------------------------------------ drivers used by Simulation
def run_forward(ws, params, model, t0, t1):
    b_hh = params["bias_hh"]
    if ws.mode is Mode.FOLDED:
        folded.forward_range(t0, t1, ws, lambda t: forward_gates(t, ws.xb, ws.c0, b_hh, ws.h, ws.c, ws.gates,
                                                                 ws.tmp))
    elif ws.mode is Mode.CACHED:
        forward_range(ws, t0, t1, ws.XW, ws.h0, ws.c0, b_hh, ws.h, ws.c, ws.gates)
    else:
        B, H = ws.h0.shape

        def chunk_steps(lo, hi, a, b):
            forward_range(ws, a - lo, b - lo, ws.XW, prev_state(ws, ws.h, lo, ws.h0), prev_state(ws, ws.c, lo, ws.c0),
                          b_hh, ws.h[lo:hi], ws.c[lo:hi], ws.gates_k)
            ws.gate_mean[a:b] = ws.gates_k[a - lo:b - lo].reshape(b - a, B, 4, H).mean(axis=(1, 3))

        chunked.run_forward(ws, params, t0, t1, chunk_steps)


def begin_backward(ws):
    ws.carry[:] = 0
    ws.carry_c[:] = 0
    steps.begin_backward(ws)


def run_backward(ws, params, model, t_hi, t_lo):
    W_hh = params["weight_hh"]
    if ws.mode is not Mode.CHUNKED:
        backward_range(ws, t_hi, t_lo, ws.c0, W_hh, ws.c, ws.gates, ws.dh, ws.da)
        return

    def recompute(lo, hi):   # the chunk's gates, one forward step each into scratch h, c (same values as forward)
        project_chunk(ws, lo, hi, params)
        forward_range(ws, 0, hi - lo, ws.XW, prev_state(ws, ws.h, lo, ws.h0), prev_state(ws, ws.c, lo, ws.c0),
                      params["bias_hh"], ws.hs_k, ws.cs_k, ws.gates_k)

    def chunk_steps(lo, hi, a, b):
        backward_range(ws, a - lo, b - lo, prev_state(ws, ws.c, lo, ws.c0), W_hh, ws.c[lo:hi], ws.gates_k,
                       ws.dh[lo:hi], ws.XW)

    chunked.run_backward(ws, params, t_hi, t_lo, recompute, chunk_steps, ws.XW)


# ------------------------------------------------------------------------------------ what the views show
gate_means = block_gate_means(GATES, GATE_STATS)
describe = named("lstm")
bounded_state, candidate_activation = bounded, tanh_candidate


def step_jacobian(ws, params, model, t, batch):
    """∂(h_t, c_t)/∂(h_{t-1}, c_{t-1}) per sample, (b, 2H, 2H), float64."""
    H = ws.h.shape[2]
    W = params["weight_hh"].astype(np.float64)
    gates = ws.gates[t, batch].astype(np.float64)
    i, f, g, o = (gates[:, block(k, H)] for k in range(4))
    c, c_prev = state_pair(ws, ws.c, t, batch)
    Wi, Wf, Wg, Wo = (W[block(k, H)] for k in range(4))
    tc = np.tanh(c)
    dc_dh = ((g * i * (1 - i))[:, :, None] * Wi + (c_prev * f * (1 - f))[:, :, None] * Wf
             + (i * (1 - g * g))[:, :, None] * Wg)
    dc_dc = np.einsum("bi,ij->bij", f, np.eye(H))
    dh_dh = (tc * o * (1 - o))[:, :, None] * Wo + (o * (1 - tc * tc))[:, :, None] * dc_dh
    dh_dc = (o * (1 - tc * tc))[:, :, None] * dc_dc
    top = np.concatenate([dh_dh, dh_dc], axis=2)
    bottom = np.concatenate([dc_dh, dc_dc], axis=2)
    return np.concatenate([top, bottom], axis=1)


# ------------------------------------------------------------------------------------ plain NumPy reference
def reference_forward(X, p):
    T, B, _ = X.shape
    H = p["weight_hh"].shape[1]
    h = np.zeros((B, H), dtype=X.dtype)
    c = np.zeros((B, H), dtype=X.dtype)
    out = {"h": [], "c": [], "i": [], "f": [], "g": [], "o": []}
    for t in range(T):
        a = X[t] @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]
        a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)
        i, f, g, o = sigmoid_np(a_i), sigmoid_np(a_f), np.tanh(a_g), sigmoid_np(a_o)
        c = f * c + i * g
        h = o * np.tanh(c)
        for k, v in zip("hcifgo", (h, c, i, f, g, o)):
            out[k].append(v)
    return {k: np.stack(v) for k, v in out.items()}


def reference_backward(X, p, fw, dh_out):
    T, B, _ = X.shape
    H = p["weight_hh"].shape[1]
    g = {k: np.zeros_like(v) for k, v in p.items() if not k.startswith("readout")}
    dh_total = np.zeros_like(dh_out)
    dx = np.zeros_like(X)
    dh_next = np.zeros((B, H), dtype=X.dtype)
    dc_next = np.zeros((B, H), dtype=X.dtype)
    for t in reversed(range(T)):
        dh = dh_out[t] + dh_next
        dh_total[t] = dh
        i, f, gg, o, c = fw["i"][t], fw["f"][t], fw["g"][t], fw["o"][t], fw["c"][t]
        c_prev = fw["c"][t - 1] if t > 0 else np.zeros_like(c)
        h_prev = fw["h"][t - 1] if t > 0 else np.zeros_like(c)
        dc = dc_next + dh * o * (1 - np.tanh(c) ** 2)
        da = np.concatenate([dc * gg * i * (1 - i), dc * c_prev * f * (1 - f),
                             dc * i * (1 - gg**2), dh * np.tanh(c) * o * (1 - o)], axis=1)
        g["weight_ih"] += da.T @ X[t]
        g["weight_hh"] += da.T @ h_prev
        g["bias_ih"] += da.sum(0)
        g["bias_hh"] += da.sum(0)
        dx[t] = da @ p["weight_ih"]
        dh_next = da @ p["weight_hh"]
        dc_next = dc * f
    return g, dh_total, dx
