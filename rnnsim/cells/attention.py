"""Causal single-head self-attention (``model.cell = "attention"``), and the dot-product attention core that the
attention readout (``model.readout = "attention"``) shares with it.

The model, one layer with sinusoidal positional encoding P (Vaswani et al. 2017, §3.5) and a residual:

    e_t = W_e x_t + b_e + P_t                            attn.embed.weight (H, D), attn.embed.bias (H)
    q_t, k_t, v_t = W_q e_t, W_k e_t, W_v e_t            attn.query.weight, attn.key.weight, attn.value.weight (H, H)
    α_tj = softmax_{j ≤ t}(q_t · k_j / √H)               causal: position t sees positions 0..t
    a_t = Σ_{j ≤ t} α_tj v_j
    h_t := z_t = e_t + W_o a_t + b_o                     attn.out.weight (H, H), attn.out.bias (H)

then the usual linear readout on h_t. P_t[2i] = sin(t / 10000^(2i/H)), P_t[2i+1] = cos(t / 10000^(2i/H)).

Backward (nothing later depends on z_t, so dz_t = dL/dz_t is the readout's part only):
    da_t = dz_t W_o;  dα_tj = da_t · v_j;  ds_tj = α_tj (dα_tj − Σ_j' α_tj' dα_tj') / √H
    dq_t = Σ_j ds_tj k_j;  dk_j += ds_tj q_t;  dv_j += α_tj da_t               (over t ≥ j)
    de_t = dz_t + dq_t W_q + dk_t W_k + dv_t W_v;   dL/dx_t = de_t W_e

Work split: e, q, k, v depend on the inputs only, so ``begin_forward`` computes them for every position with
GEMMs (like the RNN's input projection). The per-position kernel ``forward_step(t)`` does the causal attention and
the output projection of position t only: no position waits for another, which is the point of problem 4, so a
whole pass does every position at once with GEMMs (``attend_forward_gemm``: the same maths, tested against the
kernel). BPTT's step t handles query position t; once positions T−1..t are done, k_t and v_t have their complete
gradient (a whole backward again uses GEMMs).
"""

from __future__ import annotations

import math

import numpy as np

from rnnsim.kernels.loader import jit
from rnnsim.kernels.modes import Workspace

G = 0  # no gate blocks, no weight_ih / weight_hh
GATES = ()
GATE_SYMBOLS = ""
GATE_STATS = ()
FORGET_BLOCK = None
CANDIDATE_BLOCK = None
FOLDS_PROJECTION = False
STATE = ""   # no recurrent state: no step Jacobian

PARAM_NAMES = ("attn.embed.weight", "attn.embed.bias", "attn.query.weight", "attn.key.weight",
               "attn.value.weight", "attn.out.weight", "attn.out.bias")


def positional_encoding(T, H, dtype=np.float64):
    """(T, H) sinusoidal encoding: P[t, 2i] = sin(t ω_i), P[t, 2i+1] = cos(t ω_i), ω_i = 10000^(−2i/H)."""
    pos = np.arange(T, dtype=np.float64)[:, None]
    i2 = np.arange(0, H, 2, dtype=np.float64)
    ang = pos / np.power(10000.0, i2 / H)
    P = np.zeros((T, H))
    P[:, 0::2] = np.sin(ang)
    P[:, 1::2] = np.cos(ang[:, : H // 2])
    return P.astype(dtype)


def init_params(model, D, rng):
    """Every attn.* weight U(−1/√H, 1/√H), drawn in PARAM_NAMES order from ``rng`` (the cell's stream); init,
    recurrent_scale, forget_bias, activation and layernorm do not apply."""
    H = model.hidden_size
    k = 1.0 / math.sqrt(H)
    shapes = {"attn.embed.weight": (H, D), "attn.embed.bias": (H,), "attn.query.weight": (H, H),
              "attn.key.weight": (H, H), "attn.value.weight": (H, H), "attn.out.weight": (H, H),
              "attn.out.bias": (H,)}
    return {name: rng.uniform(-k, k, size=shapes[name]) for name in PARAM_NAMES}


# ----------------------------------------------------------------------------------- Numba kernels (shared core)
@jit
def attend_forward(t0, t1, Q, K, V, scale, A, OUT):
    """Causal dot-product attention for query positions t0..t1−1 (each independent of the others):
    A[t, b, j] = softmax_{j ≤ t}(scale · Q[t, b] · K[j, b]) (0 for j > t), OUT[t, b] = Σ_j A[t, b, j] V[j, b]."""
    T, B, H = Q.shape
    for t in range(t0, t1):
        for b in range(B):
            m = -np.inf
            for j in range(t + 1):
                s = 0.0
                for k in range(H):
                    s += Q[t, b, k] * K[j, b, k]
                s *= scale
                A[t, b, j] = s
                if s > m:
                    m = s
            tot = 0.0
            for j in range(t + 1):
                e = math.exp(A[t, b, j] - m)
                A[t, b, j] = e
                tot += e
            inv = 1.0 / tot
            for j in range(t + 1):
                A[t, b, j] *= inv
            for j in range(t + 1, T):
                A[t, b, j] = 0.0
            for k in range(H):
                OUT[t, b, k] = 0.0
            for j in range(t + 1):
                a = A[t, b, j]
                for k in range(H):
                    OUT[t, b, k] += a * V[j, b, k]


@jit
def attend_backward(t_hi, t_lo, Q, K, V, A, DOUT, scale, dQ, dK, dV, dalpha):
    """Backward of ``attend_forward`` for query positions t = t_hi, t_hi − 1, ..., t_lo, given DOUT = dL/dOUT.

    Writes dQ[t]; accumulates into dK[j] and dV[j] for j ≤ t (zero them first; they may be the same array, as in the
    attention readout where keys and values are both h). ``dalpha`` is a (T,) scratch row.
    """
    T, B, H = Q.shape
    for t in range(t_hi, t_lo - 1, -1):
        for b in range(B):
            tot = 0.0
            for j in range(t + 1):
                d = 0.0
                for k in range(H):
                    d += DOUT[t, b, k] * V[j, b, k]
                dalpha[j] = d
                tot += A[t, b, j] * d
            for k in range(H):
                dQ[t, b, k] = 0.0
            for j in range(t + 1):
                a = A[t, b, j]
                ds = a * (dalpha[j] - tot) * scale
                for k in range(H):
                    dQ[t, b, k] += ds * K[j, b, k]
                    dK[j, b, k] += ds * Q[t, b, k]
                    dV[j, b, k] += a * DOUT[t, b, k]


# -------------------------------------------------------- whole ranges: the same maths as GEMMs, one sample at a time
def attend_forward_gemm(t0, t1, Q, K, V, scale, A, OUT):
    """``attend_forward`` for query positions t0..t1−1 at once: per sample, S = Q Kᵀ (a GEMM straight into A),
    the causal softmax in place, OUT = A V. What a whole pass uses: no position waits for another."""
    B = Q.shape[1]
    future = np.arange(t1)[None, :] > np.arange(t0, t1)[:, None]   # (t1 − t0, t1): j > t is masked
    for b in range(B):
        S = A[t0:t1, b, :t1]
        np.matmul(Q[t0:t1, b], K[:t1, b].T, out=S)
        S *= scale
        S[future] = -np.inf
        S -= S.max(axis=1, keepdims=True)
        np.exp(S, out=S)
        S /= S.sum(axis=1, keepdims=True)
        A[t0:t1, b, t1:] = 0.0
        np.matmul(S, V[:t1, b], out=OUT[t0:t1, b])


def attend_backward_gemm(t_hi, t_lo, Q, K, V, A, DOUT, scale, dQ, dK, dV):
    """``attend_backward`` for query positions t_lo..t_hi at once (GEMMs per sample); dK and dV accumulate and
    may be the same array."""
    t1 = t_hi + 1
    for b in range(Q.shape[1]):
        a = A[t_lo:t1, b, :t1]
        do = DOUT[t_lo:t1, b]
        ds = do @ V[:t1, b].T                          # dα
        ds -= (a * ds).sum(axis=1, keepdims=True)
        ds *= a
        ds *= scale
        np.matmul(ds, K[:t1, b], out=dQ[t_lo:t1, b])
        dK[:t1, b] += ds.T @ Q[t_lo:t1, b]
        dV[:t1, b] += a.T @ do


def attend(t0, t1, Q, K, V, scale, A, OUT):
    """Causal attention for query positions [t0, t1): the per-position Numba kernel for one step (the step API),
    GEMMs for a longer range (a whole pass)."""
    if t1 - t0 > 1:
        attend_forward_gemm(t0, t1, Q, K, V, scale, A, OUT)
    else:
        attend_forward(t0, t1, Q, K, V, scale, A, OUT)


def attend_grad(t_hi, t_lo, Q, K, V, A, DOUT, scale, dQ, dK, dV, dalpha):
    """Backward of ``attend`` for query positions t_hi down to t_lo (Numba for one step, GEMMs for a range)."""
    if t_hi > t_lo:
        attend_backward_gemm(t_hi, t_lo, Q, K, V, A, DOUT, scale, dQ, dK, dV)
    else:
        attend_backward(t_hi, t_lo, Q, K, V, A, DOUT, scale, dQ, dK, dV, dalpha)


@jit
def forward_range(t0, t1, E, Q, K, V, scale, W_oT, b_o, A, ATT, Z):
    """Positions t0..t1−1 one by one: the causal attention over 0..t, then Z[t] = E[t] + ATT[t] W_o^T + b_o."""
    B, H = E.shape[1], E.shape[2]
    for t in range(t0, t1):
        attend_forward(t, t + 1, Q, K, V, scale, A, ATT)
        np.dot(ATT[t], W_oT, Z[t])
        for b in range(B):
            for k in range(H):
                Z[t, b, k] += E[t, b, k] + b_o[k]


@jit
def backward_range(t_hi, t_lo, Q, K, V, A, DZ, W_o, scale, DATT, dQ, dK, dV, dalpha):
    """Query positions t_hi down to t_lo one by one: DATT[t] = DZ[t] W_o, then the attention backward for t (dQ[t],
    dK/dV for j ≤ t)."""
    for t in range(t_hi, t_lo - 1, -1):
        np.dot(DZ[t], W_o, DATT[t])
        attend_backward(t, t, Q, K, V, A, DATT, scale, dQ, dK, dV, dalpha)


# ------------------------------------------------------------------------------------ parameters and buffers
def param_count(model, D, H):
    return H * D + 4 * H * H + 2 * H


def cached_bytes(T, B, H, itemsize, model):
    return 0   # no memory modes


def buffer_bytes(model, T, B, D, H, itemsize, K, n_params):
    """e, q, k, v, a, z, dz, dq, dk, dv, da (T, B, H) + a little slack; P (T, H); W_o^T and slack (2 H²). α and
    the other T² terms: ``quadratic_bytes``."""
    return itemsize * T * B * H * 12 + itemsize * T * H + 2 * itemsize * H * H


def quadratic_bytes(T, B, H, itemsize):
    """α (T, B, T) and the per-sample T×T temporaries of the GEMM paths (cells/base.py ``quadratic_bytes``)."""
    from rnnsim.cells.base import quadratic_bytes as quad

    return quad(T, B, itemsize)


def allocate(T, B, D, H, dtype, model, plan) -> Workspace:
    z = lambda *shape: np.zeros(shape, dtype=dtype)  # noqa: E731
    ws = Workspace(
        plan,
        E=z(T, B, H), q=z(T, B, H), k=z(T, B, H), v=z(T, B, H), alpha=z(T, B, T), att=z(T, B, H),
        h=z(T, B, H), dh=z(T, B, H), dx=z(T, B, D),
        dq=z(T, B, H), dk=z(T, B, H), dv=z(T, B, H), datt=z(T, B, H),
        P=positional_encoding(T, H, dtype), W_oT=z(H, H), dalpha=z(T),
    )
    # dL/de_t is assembled after the backward pass, when the attention output a_t is no longer needed
    ws.de = ws.att
    return ws


def begin_forward(ws, X, params):
    T, B, D = X.shape
    H = ws.h.shape[2]
    np.matmul(X.reshape(T * B, D), params["attn.embed.weight"].T, out=ws.E.reshape(T * B, H))
    ws.E += params["attn.embed.bias"]
    ws.E += ws.P[:, None, :]
    E2 = ws.E.reshape(T * B, H)
    np.matmul(E2, params["attn.query.weight"].T, out=ws.q.reshape(T * B, H))
    np.matmul(E2, params["attn.key.weight"].T, out=ws.k.reshape(T * B, H))
    np.matmul(E2, params["attn.value.weight"].T, out=ws.v.reshape(T * B, H))
    np.copyto(ws.W_oT, params["attn.out.weight"].T)


# ------------------------------------------------------------------------------------ drivers used by Simulation
def _scale(ws):
    return 1.0 / math.sqrt(ws.h.shape[2])


def run_forward(ws, params, model, t0, t1):
    if t1 - t0 == 1:
        forward_range(t0, t1, ws.E, ws.q, ws.k, ws.v, _scale(ws), ws.W_oT, params["attn.out.bias"],
                      ws.alpha, ws.att, ws.h)
        return
    # a range of positions (a whole pass): every position at once, with GEMMs
    attend_forward_gemm(t0, t1, ws.q, ws.k, ws.v, _scale(ws), ws.alpha, ws.att)
    H = ws.h.shape[2]
    Z = ws.h[t0:t1].reshape(-1, H)
    np.matmul(ws.att[t0:t1].reshape(-1, H), ws.W_oT, out=Z)
    Z += ws.E[t0:t1].reshape(-1, H)
    Z += params["attn.out.bias"]


def begin_backward(ws):
    ws.dk[:] = 0
    ws.dv[:] = 0


def run_backward(ws, params, model, t_hi, t_lo):
    if t_hi > t_lo:
        H = ws.h.shape[2]
        np.matmul(ws.dh[t_lo:t_hi + 1].reshape(-1, H), params["attn.out.weight"],
                  out=ws.datt[t_lo:t_hi + 1].reshape(-1, H))
        attend_backward_gemm(t_hi, t_lo, ws.q, ws.k, ws.v, ws.alpha, ws.datt, _scale(ws), ws.dq, ws.dk, ws.dv)
        return
    backward_range(t_hi, t_lo, ws.q, ws.k, ws.v, ws.alpha, ws.dh, params["attn.out.weight"], _scale(ws),
                   ws.datt, ws.dq, ws.dk, ws.dv, ws.dalpha)


def finish_backward(ws, X, params, grads, model):
    """All weight gradients and dL/dx_t, with GEMMs over the T·B rows."""
    T, B, D = X.shape
    r = lambda a: a.reshape(T * B, -1)  # noqa: E731
    np.matmul(r(ws.dh).T, r(ws.att), out=grads["attn.out.weight"])
    np.sum(r(ws.dh), axis=0, out=grads["attn.out.bias"])
    E2 = r(ws.E)
    np.matmul(r(ws.dq).T, E2, out=grads["attn.query.weight"])
    np.matmul(r(ws.dk).T, E2, out=grads["attn.key.weight"])
    np.matmul(r(ws.dv).T, E2, out=grads["attn.value.weight"])
    de = r(ws.de)  # overwrites a_t (dead now)
    np.matmul(r(ws.dq), params["attn.query.weight"], out=de)
    de += r(ws.dk) @ params["attn.key.weight"]
    de += r(ws.dv) @ params["attn.value.weight"]
    de += r(ws.dh)
    np.matmul(de.T, r(X), out=grads["attn.embed.weight"])
    np.sum(de, axis=0, out=grads["attn.embed.bias"])
    np.matmul(de, params["attn.embed.weight"], out=r(ws.dx))


# ------------------------------------------------------------------------------------ what the views show
def gate_means(ws, t_done):
    return {}


def describe(model):
    return "attention"


def bounded_state(model):
    return True     # z_t = e_t + W_o a_t + b_o: O(1) terms; the heatmap keeps its fixed scale, as before


def candidate_activation(model):
    return "tanh"   # not used: no recurrent matrix (spectrum says so)


def step_jacobian(ws, params, model, t, batch):
    raise ValueError("step Jacobians need a recurrent state; the attention cell has none (z_t depends on "
                     "the inputs only)")


# ------------------------------------------------------------------------------------ plain NumPy reference
def reference_attend(Q, K, V):
    """Causal attention, (T, B, H) time-major: returns (OUT (T,B,H), α (T,B,T) with zeros above the diagonal)."""
    T, B, H = Q.shape
    s = np.einsum("tbk,jbk->tbj", Q, K) / np.sqrt(H)
    causal = np.tril(np.ones((T, T), dtype=bool))[:, None, :]
    s = np.where(causal, s, -np.inf)
    s = s - s.max(axis=2, keepdims=True)
    w = np.exp(s)
    alpha = w / w.sum(axis=2, keepdims=True)
    return np.einsum("tbj,jbk->tbk", alpha, V), alpha


def reference_attend_backward(Q, K, V, alpha, dout):
    """Gradients (dQ, dK, dV) of ``reference_attend`` given dL/dOUT."""
    H = Q.shape[2]
    dalpha = np.einsum("tbk,jbk->tbj", dout, V)
    ds = alpha * (dalpha - (alpha * dalpha).sum(axis=2, keepdims=True)) / np.sqrt(H)
    dQ = np.einsum("tbj,jbk->tbk", ds, K)
    dK = np.einsum("tbj,tbk->jbk", ds, Q)
    dV = np.einsum("tbj,tbk->jbk", alpha, dout)
    return dQ, dK, dV


def reference_forward(X, p):
    """Readable whole-sequence forward. Returns dict with h (= z, T,B,H) and what backward needs."""
    T, B, D = X.shape
    H = p["attn.query.weight"].shape[0]
    e = X @ p["attn.embed.weight"].T + p["attn.embed.bias"] + positional_encoding(T, H, X.dtype)[:, None, :]
    q, k, v = (e @ p[f"attn.{n}.weight"].T for n in ("query", "key", "value"))
    a, alpha = reference_attend(q, k, v)
    z = e + a @ p["attn.out.weight"].T + p["attn.out.bias"]
    return {"h": z, "e": e, "q": q, "k": k, "v": v, "a": a, "alpha": alpha}


def reference_backward(X, p, fw, dh_out):
    """``dh_out`` (T,B,H) is dL/dz_t through the readout. Returns (grads, dh_total, dx); dh_total = dh_out."""
    g = {}
    dz = dh_out
    g["attn.out.weight"] = np.einsum("tbi,tbj->ij", dz, fw["a"])
    g["attn.out.bias"] = dz.sum(axis=(0, 1))
    da = dz @ p["attn.out.weight"]
    dq, dk, dv = reference_attend_backward(fw["q"], fw["k"], fw["v"], fw["alpha"], da)
    de = dz.copy()
    for name, d in (("query", dq), ("key", dk), ("value", dv)):
        g[f"attn.{name}.weight"] = np.einsum("tbi,tbj->ij", d, fw["e"])
        de = de + d @ p[f"attn.{name}.weight"]
    g["attn.embed.weight"] = np.einsum("tbi,tbj->ij", de, X)
    g["attn.embed.bias"] = de.sum(axis=(0, 1))
    dx = de @ p["attn.embed.weight"]
    return g, dz.copy(), dx
